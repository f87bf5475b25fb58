"""Is bf16 training equivalent to fp32? The same runs trained in both precisions, compared metric by metric.

    python benchmarks/precision_equivalence.py FP32_FOLDER BF16_FOLDER [--out FILE.md]

FP32_FOLDER and BF16_FOLDER are experiment folders (runs.csv, metrics.csv) whose runs differ in their
training precision only. The committed reference (mnist-5k, quick profile, the five models, three
seeds) is made by
    python cli.py run --profile quick --dataset mnist-5k --seeds 0,1,2 --precision fp32 --experiment precision-fp32 --out results/reference
    python cli.py run --profile quick --dataset mnist-5k --seeds 0,1,2 --precision bf16 --experiment precision-bf16 --out results/reference
    python benchmarks/precision_equivalence.py results/reference/precision-fp32 results/reference/precision-bf16 --out results/reference/precision-bf16/equivalence.md
(no study file: tests/test_studies.py holds every run study to the standard profile).

Runs are paired by (model, dataset, seed). The script refuses, with one line and exit code 2, a missing
folder or one without results, a first folder with a run not in fp32 or a second with a run not in
bf16, a pair whose settings (hparams, train_config without its precision, eval_config, binarize) or
whose metric's qualifiers (split, n, backbone) differ, and two folders that share no pair.

Per (dataset, model) and headline metric (aebench.report.tables.HEADLINE_METRICS, fid_gmm included, where
both folders measured it): the means, their difference bf16 - fp32, the seed band (what two independent
sets of n seeds differ by in 95% of cases, from both precisions' between-seed spreads), a paired t-test
over seeds (aebench.report.stats) and its Holm adjustment over every test of the table. The decision rule
(DECISION_RULE below says why):
    within noise  iff  |mean difference| <= the seed band  AND  Holm-adjusted p >= 0.05.
Then the median training time and epochs of each model in both precisions, and a conclusion: whether
every headline metric of every model is within noise (conv-profile studies may then train in bf16), or
which (model, metric) are not (keep fp32 for them).
"""
from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
from pathlib import Path

import pandas as pd
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from aebench.errors import UserError  # noqa: E402
from aebench.metrics.directions import ARROWS, direction  # noqa: E402
from aebench.report.stats import holm, pairwise_comparisons  # noqa: E402
from aebench.report.tables import HEADLINE_METRICS, join_names  # noqa: E402
from aebench.store.values import load_results, run_precisions  # noqa: E402

ALPHA = 0.05
PAIR_KEYS = ["model", "dataset", "seed"]
QUALIFIERS = ["split", "n", "backbone"]  # what else than the name makes two values the same quantity
JSON_SETTINGS = ["hparams", "train_config", "eval_config"]
WITHIN, NOT_WITHIN, TOO_FEW, NO_VARIANCE = ("within noise", "NOT within noise", "untested (n < 2)",
                                            "untested (same difference on every seed)")
DECISION_RULE = (
    f"**Decision rule.** A metric is *within noise* iff |mean difference| <= the seed band AND the Holm-adjusted "
    f"paired p >= {ALPHA}. The seed band is what two independent sets of n seeds of one precision differ by in 95% "
    "of cases: t(0.975, 2n - 2) x sqrt((sd_fp32^2 + sd_bf16^2) / n), the sds being each precision's between-seed "
    "standard deviation. It says that bf16 moves the metric no more than training again with other seeds does; "
    "with 3 seeds the paired test has little power, and the band is what catches a large shift the test misses. "
    "Under exact equivalence about 5% of the metrics fall outside it by chance (a bound of one fp32 sd, the first "
    "version of this rule, flags about a third of them even when bf16 changes nothing), so an error of this rule "
    "keeps a metric on fp32, never the other way. The test catches a shift smaller than the band but "
    "systematic (pairing by seed removes what runs of one seed share); Holm over every test of the table keeps "
    "the chance of a false alarm anywhere in it at 5%.")


# ---------------------------------------------------------------- reading and checking the two folders


def precision_runs(folder: Path, precision: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The ok runs and the metric values of an experiment folder whose runs all trained in `precision`."""
    if not folder.is_dir():
        raise UserError(f"{folder} is not a folder; give an experiment folder (runs.csv, metrics.csv)")
    results = load_results(folder)  # UserError when it holds no value of a successful run
    precisions = run_precisions(results.runs)
    if (precisions != precision).any():
        others = ", ".join(sorted(set(precisions) - {precision}))
        raise UserError(f"{folder}: {int((precisions != precision).sum())} of its {len(precisions)} runs trained in "
                        f"{others}, not {precision}; give a folder of {precision} runs only")
    ok = results.runs[results.runs["status"] == "ok"]
    twice = ok[ok.duplicated(PAIR_KEYS, keep=False)]
    if not twice.empty:
        model, dataset, seed = twice.iloc[0][PAIR_KEYS]
        raise UserError(f"{folder} holds several configurations of {model} on {dataset}, seed {seed}; "
                        "give folders with one run per (model, dataset, seed)")
    return ok, results.values


def run_settings(pair: pd.Series, suffix: str) -> dict:
    """One side of a run pair's settings, flattened to names like train_config.lr; precision left out."""
    flat = {"binarize": str(pair[f"binarize{suffix}"])}
    for column in JSON_SETTINGS:
        text = pair[f"{column}{suffix}"]
        settings = json.loads(text) if isinstance(text, str) and text else {}
        flat |= {f"{column}.{key}": value for key, value in settings.items()}
    flat.pop("train_config.precision", None)  # the one setting that is meant to differ
    return flat


def check_same_settings(pair: pd.Series) -> None:
    fp32, bf16 = run_settings(pair, "_fp32"), run_settings(pair, "_bf16")
    for name in sorted(fp32.keys() | bf16.keys()):
        if fp32.get(name, "absent") != bf16.get(name, "absent"):
            raise UserError(f"{pair['model']} on {pair['dataset']}, seed {pair['seed']}: {name} is "
                            f"{fp32.get(name, 'absent')} in fp32 but {bf16.get(name, 'absent')} in bf16; "
                            "the two folders must differ in precision only")


def paired_runs(fp32_runs: pd.DataFrame, bf16_runs: pd.DataFrame) -> pd.DataFrame:
    """One row per (model, dataset, seed) that both folders ran, each run's columns suffixed _fp32 / _bf16."""
    pairs = fp32_runs.merge(bf16_runs, on=PAIR_KEYS, suffixes=("_fp32", "_bf16"))
    if pairs.empty:
        spell = lambda runs: ", ".join(sorted({f"{m} s{s}" for m, s in zip(runs["model"], runs["seed"])}))
        raise UserError(f"the two folders share no (model, dataset, seed): fp32 ran {spell(fp32_runs)}; "
                        f"bf16 ran {spell(bf16_runs)}")
    for _, pair in pairs.iterrows():
        check_same_settings(pair)
    return pairs


def paired_values(fp32_values: pd.DataFrame, bf16_values: pd.DataFrame) -> pd.DataFrame:
    """The headline values both folders measured, one row per run pair and metric (value_fp32, value_bf16)."""
    def headline(values):
        return values[values["metric"].isin(HEADLINE_METRICS)][PAIR_KEYS + ["metric", *QUALIFIERS, "value"]]

    merged = headline(fp32_values).merge(headline(bf16_values), on=PAIR_KEYS + ["metric"], suffixes=("_fp32", "_bf16"))
    for qualifier in QUALIFIERS:
        differs = merged[merged[f"{qualifier}_fp32"].astype(str) != merged[f"{qualifier}_bf16"].astype(str)]
        if not differs.empty:
            row = differs.iloc[0]
            raise UserError(f"{row['metric']} of {row['model']} on {row['dataset']}, seed {row['seed']}: {qualifier} is "
                            f"{row[f'{qualifier}_fp32']} in fp32 but {row[f'{qualifier}_bf16']} in bf16")
    return merged


# ---------------------------------------------------------------- the comparison


def compare_metric(values: pd.DataFrame) -> dict:
    """bf16 against fp32 on one (dataset, model, metric): means, difference, fp32 seed spread, paired test."""
    finite = values[values["value_fp32"].notna() & values["value_bf16"].notna()]
    long = pd.concat([finite.assign(model="bf16", value=finite["value_bf16"]),  # first: mean_diff is bf16 - fp32
                      finite.assign(model="fp32", value=finite["value_fp32"])])[["model", "seed", "value"]]
    test = pairwise_comparisons(long, None, ALPHA).iloc[0] if len(finite) else {"mean_diff": math.nan, "p_value": math.nan}
    return {"n_pairs": len(finite), "fp32_mean": finite["value_fp32"].mean(), "bf16_mean": finite["value_bf16"].mean(),
            "mean_diff": test["mean_diff"], "band": seed_band(finite["value_fp32"], finite["value_bf16"]),
            "p": test["p_value"]}


def seed_band(fp32: pd.Series, bf16: pd.Series) -> float:
    """What two independent sets of n seeds differ by in their means in 95% of cases (a two-sample t interval
    from both precisions' between-seed spreads): the size of a difference that re-seeding alone explains."""
    n = len(fp32)
    if n < 2:
        return math.nan
    return float(stats.t.ppf(1 - ALPHA / 2, 2 * n - 2) * math.sqrt((fp32.var() + bf16.var()) / n))


def verdict(row: pd.Series) -> str:
    if row["n_pairs"] < 2:
        return TOO_FEW
    if math.isnan(row["p_holm"]):  # the t statistic is undefined without variance (aebench.report.stats)
        return NO_VARIANCE
    return WITHIN if abs(row["mean_diff"]) <= row["band"] and row["p_holm"] >= ALPHA else NOT_WITHIN


def equivalence_table(values: pd.DataFrame) -> pd.DataFrame:
    """One row per (dataset, model, headline metric), in HEADLINE_METRICS order, with Holm over the whole table."""
    rows = [{"dataset": dataset, "model": model, "metric": metric, "backbone": group["backbone_fp32"].iloc[0],
             **compare_metric(group)}
            for (dataset, model), runs in values.groupby(["dataset", "model"], sort=False)
            for metric in HEADLINE_METRICS
            if not (group := runs[runs["metric"] == metric]).empty]
    if not rows:
        raise UserError(f"the two folders share no headline metric ({', '.join(HEADLINE_METRICS)})")
    table = pd.DataFrame(rows)
    tested = table["p"].notna()
    table["p_holm"] = math.nan
    table.loc[tested, "p_holm"] = holm(table.loc[tested, "p"].to_numpy(dtype=float))
    table["verdict"] = table.apply(verdict, axis=1)
    return table


def time_table(pairs: pd.DataFrame) -> pd.DataFrame:
    """Median training seconds and epochs of each (dataset, model) in both precisions, and their ratios."""
    per_epoch = {side: pairs[f"train_seconds_{side}"] / pairs[f"epochs_run_{side}"] for side in ("fp32", "bf16")}
    grouped = pairs.assign(epoch_fp32=per_epoch["fp32"], epoch_bf16=per_epoch["bf16"]).groupby(["dataset", "model"], sort=False)
    medians = grouped[["train_seconds_fp32", "train_seconds_bf16", "epochs_run_fp32", "epochs_run_bf16",
                       "epoch_fp32", "epoch_bf16"]].median()
    medians["ratio"] = medians["train_seconds_fp32"] / medians["train_seconds_bf16"]
    medians["epoch_ratio"] = medians["epoch_fp32"] / medians["epoch_bf16"]
    return medians.reset_index()


# ---------------------------------------------------------------- the Markdown


def number(value, spec: str) -> str:
    return "—" if pd.isna(value) else format(value, spec)


def markdown_rows(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header), *("| " + " | ".join(r) + " |" for r in rows)]


def metric_label(metric: str, backbone) -> str:
    """The metric with its backbone (the report's column name) and its better direction."""
    label = f"{metric} [{backbone}]" if isinstance(backbone, str) and backbone else metric
    arrow = ARROWS[direction(metric)]
    return f"{label} {arrow}" if arrow else label


def equivalence_markdown(table: pd.DataFrame) -> list[str]:
    header = ["dataset", "model", "metric", "n pairs", "fp32 mean", "bf16 mean", "bf16 - fp32", "seed band (95%)",
              "paired p", "Holm p", "verdict"]
    rows = [[r.dataset, r.model, metric_label(r.metric, r.backbone), str(r.n_pairs), number(r.fp32_mean, ".4g"),
             number(r.bf16_mean, ".4g"), number(r.mean_diff, "+.3g"), number(r.band, ".3g"), number(r.p, ".3g"),
             number(r.p_holm, ".3g"), r.verdict if r.verdict != NOT_WITHIN else f"**{r.verdict}**"]
            for r in table.itertuples()]
    return markdown_rows(header, rows)


def time_markdown(times: pd.DataFrame) -> list[str]:
    header = ["dataset", "model", "train s fp32", "train s bf16", "ratio fp32/bf16", "epochs fp32", "epochs bf16",
              "per-epoch ratio fp32/bf16"]
    rows = [[t.dataset, t.model, number(t.train_seconds_fp32, ".0f"), number(t.train_seconds_bf16, ".0f"),
             number(t.ratio, ".2f"), number(t.epochs_run_fp32, "g"), number(t.epochs_run_bf16, "g"),
             number(t.epoch_ratio, ".2f")] for t in times.itertuples()]
    return markdown_rows(header, rows)


def conclusion(table: pd.DataFrame) -> str:
    several_datasets = table["dataset"].nunique() > 1
    name = lambda r: f"({r.model}, {r.metric}" + (f", {r.dataset})" if several_datasets else ")")
    failing = [name(r) for r in table.itertuples() if r.verdict == NOT_WITHIN]
    untested = [name(r) for r in table.itertuples() if r.verdict not in (WITHIN, NOT_WITHIN)]
    if not failing and not untested:
        return "Every headline metric of every model is within noise: conv-profile studies may train in bf16."
    text = f"Not within noise: {join_names(failing)}; keep fp32 for them." if failing else ""
    if untested:  # not shown equivalent is not equivalent: more seeds would decide
        text += f" Untested, so not shown within noise: {join_names(untested)}; keep fp32 for them too."
    return text.strip()


def git_commits(runs: pd.DataFrame) -> str:
    commits = sorted(runs["git_commit"].dropna().astype(str).unique()) if "git_commit" in runs else []
    return ", ".join(f"`{c}`" for c in commits) or "not recorded"


def precision_equivalence(fp32_dir: Path, bf16_dir: Path, command: str) -> str:
    (fp32_runs, fp32_values), (bf16_runs, bf16_values) = precision_runs(fp32_dir, "fp32"), precision_runs(bf16_dir, "bf16")
    pairs = paired_runs(fp32_runs, bf16_runs)
    table = equivalence_table(paired_values(fp32_values, bf16_values))
    lines = ["# Training precision: bf16 against fp32", "", f"Generated by `{command}`.", "",
             f"- fp32: `{fp32_dir}`, git_commit {git_commits(fp32_runs)}",
             f"- bf16: `{bf16_dir}`, git_commit {git_commits(bf16_runs)}",
             f"- {len(pairs)} run pairs by (model, dataset, seed), identical settings but the precision", "",
             DECISION_RULE, "", "## Headline metrics", "",
             "bf16 - fp32 is the mean over the paired seeds; seed band: t(0.975, 2n - 2) x sqrt((sd_fp32^2 + sd_bf16^2) "
             "/ n) over them; paired p: t-test over seeds; Holm p: adjusted over every test of this table.", "",
             *equivalence_markdown(table), "", "## Training time", "",
             "Medians over the paired runs; a ratio above 1 means bf16 trained faster. bf16 may stop at another "
             "epoch than fp32 (early stopping), so the per-epoch ratio isolates the arithmetic.", "",
             *time_markdown(time_table(pairs)), "", "## Conclusion", "", conclusion(table)]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("fp32", type=Path, help="experiment folder of the fp32 runs")
    parser.add_argument("bf16", type=Path, help="experiment folder of the same runs in bf16")
    parser.add_argument("--out", type=Path, help="write the Markdown there (default: print it)")
    args = parser.parse_args(argv)
    command = shlex.join(["python", "benchmarks/precision_equivalence.py", *argv])
    try:
        text = precision_equivalence(args.fp32, args.bf16, command)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.out:
        args.out.write_text(text)
        print(f"wrote {args.out}")
    else:
        print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
