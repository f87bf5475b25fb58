"""What a change of protocol did to a verdict: two reported experiments of the same models, side by side.

    python benchmarks/before_after.py BEFORE AFTER [--out FILE.md]

BEFORE and AFTER are experiment folders that `python cli.py report` has written (summary.csv and
comparisons.csv beside runs.csv). For every metric of HEADLINE that both measured, per dataset:
- each model's mean ± std over seeds, before and after;
- the verdict of the column in each: the best model by mean, and whether it is significantly better
  than every other model there (comparisons.csv: paired t-test over seeds, Holm within the column),
  or which models are within noise of it;
- SWAE against the best baseline (every other model) by mean: the difference and its Holm p.
Columns are matched by metric name, not by backbone: a FID read on classifier v3 and one on v4 are
different quantities (the backbone of each side is shown), so compare their verdicts, not their values.
Each model's hyperparameters come from runs.csv (the searched values differ between the two).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from aebench.metrics.directions import HIGHER, direction  # noqa: E402
from aebench.store.folder import ResultsStore  # noqa: E402

SWAE = "swae"
HEADLINE = ("recon_sse", "knn5_acc", "linear_acc", "denoise_sse_s0.3", "fid", "fid_gmm", "kid", "kid_gmm",
            "precision", "precision_gmm", "recall", "recall_gmm", "trustworthiness_k10")


def reported(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """summary.csv, comparisons.csv and runs.csv of a reported experiment; exits with one line otherwise."""
    missing = [name for name in ("summary.csv", "comparisons.csv", "runs.csv") if not (folder / name).is_file()]
    if missing:
        sys.exit(f"{folder}: no {', '.join(missing)}; run `python cli.py report {folder}` first")
    summary = pd.read_csv(folder / "summary.csv", keep_default_na=False, na_values=[""])
    comparisons = pd.read_csv(folder / "comparisons.csv", keep_default_na=False, na_values=[""])
    return summary, comparisons, ResultsStore(folder).runs()


def column_name(metric: str, backbone) -> str:
    """The report's column label (aebench.store.values): the backbone in brackets where there is one."""
    return f"{metric} [{backbone}]" if isinstance(backbone, str) and backbone else metric


def column_verdict(summary: pd.DataFrame, comparisons: pd.DataFrame, dataset: str, metric: str) -> dict:
    """Best model of one (dataset, metric) column and how it stands against the others."""
    rows = summary[(summary["dataset"] == dataset) & (summary["metric"] == metric)]
    if rows.empty:
        return {}
    better_high = direction(metric) == HIGHER
    best = rows.sort_values("mean", ascending=not better_high).iloc[0]
    column = column_name(metric, best["backbone"])
    pairs = comparisons[(comparisons["dataset"] == dataset) & (comparisons["column"] == column)]
    against_best = pairs[(pairs["model_a"] == best["model"]) | (pairs["model_b"] == best["model"])]
    tied = sorted(set(against_best.loc[~against_best["significant"].astype(bool), ["model_a", "model_b"]]
                      .to_numpy().ravel()) - {best["model"]})
    verdict = f"{best['model']} best" + (f", within noise: {', '.join(tied)}" if tied else ", significantly")
    return {"backbone": best["backbone"] if isinstance(best["backbone"], str) else "", "verdict": verdict,
            "swae": swae_against_best_baseline(rows, pairs, better_high)}


def swae_against_best_baseline(rows: pd.DataFrame, pairs: pd.DataFrame, better_high: bool) -> str:
    baselines = rows[rows["model"] != SWAE]
    if SWAE not in set(rows["model"]) or baselines.empty:
        return "—"
    rival = baselines.sort_values("mean", ascending=not better_high).iloc[0]["model"]
    pair = pairs[((pairs["model_a"] == SWAE) & (pairs["model_b"] == rival))
                 | ((pairs["model_a"] == rival) & (pairs["model_b"] == SWAE))]
    diff = rows.set_index("model").loc[SWAE, "mean"] - rows.set_index("model").loc[rival, "mean"]
    if pair.empty or pd.isna(pair.iloc[0]["p_holm"]):
        return f"vs {rival}: {diff:+.4g} (not tested)"
    return f"vs {rival}: {diff:+.4g}, p_holm {pair.iloc[0]['p_holm']:.3g}"


def cell(summary: pd.DataFrame, dataset: str, metric: str, model: str) -> str:
    row = summary[(summary["dataset"] == dataset) & (summary["metric"] == metric) & (summary["model"] == model)]
    if row.empty:
        return "—"
    mean, std = row.iloc[0]["mean"], row.iloc[0]["std"]
    return f"{mean:.4g} ± {std:.2g}" if pd.notna(std) else f"{mean:.4g}"


def hparams_table(before: pd.DataFrame, after: pd.DataFrame) -> list[str]:
    def values(runs, model):
        chosen = runs[(runs["model"] == model) & (runs["status"] == "ok")]["hparams"].drop_duplicates()
        return "; ".join(chosen) if len(chosen) else "—"

    lines = ["| model | before | after |", "|---|---|---|"]
    for model in dict.fromkeys([*before["model"], *after["model"]]):
        lines.append(f"| {model} | `{values(before, model)}` | `{values(after, model)}` |")
    return lines


def before_after(before_dir: Path, after_dir: Path) -> str:
    (sb, cb, rb), (sa, ca, ra) = reported(before_dir), reported(after_dir)
    lines = [f"# Before and after: {before_dir.name} -> {after_dir.name}", "",
             "Generated by `python benchmarks/before_after.py` from each folder's summary.csv, comparisons.csv "
             "and runs.csv.", "", "## Hyperparameters (runs.csv)", "", *hparams_table(rb, ra)]
    models = list(dict.fromkeys([*sb["model"], *sa["model"]]))
    for dataset in sorted(set(sb["dataset"]) & set(sa["dataset"])):
        lines += ["", f"## {dataset}", "", "| metric | side | backbone | verdict | SWAE vs best baseline | "
                  + " | ".join(models) + " |", "|---|---|---|---|---|" + "---|" * len(models)]
        for metric in HEADLINE:
            for side, summary, comparisons in (("before", sb, cb), ("after", sa, ca)):
                verdict = column_verdict(summary, comparisons, dataset, metric)
                if not verdict:
                    lines.append(f"| {metric} | {side} | | not measured | — | " + " | ".join("—" for _ in models) + " |")
                    continue
                lines.append(f"| {metric} | {side} | {verdict['backbone']} | {verdict['verdict']} | {verdict['swae']} | "
                             + " | ".join(cell(summary, dataset, metric, m) for m in models) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--out", type=Path, help="write the Markdown there (default: print it)")
    args = parser.parse_args(argv)
    text = before_after(args.before, args.after)
    if args.out:
        args.out.write_text(text)
        print(f"wrote {args.out}")
    else:
        print(text, end="")


if __name__ == "__main__":
    main()
