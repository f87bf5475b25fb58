"""The claims table (benchmark/claims.py) on tiny experiment folders whose answer is known: the CSVs are
written directly, nothing is trained."""
from __future__ import annotations

import json

import pandas as pd
import pytest

import cli
from benchmark.claims import claims_report
from benchmark.metrics.directions import HIGHER, direction
from benchmark.stats import NOTE_TOO_FEW

BASELINES = ("vae", "wae")  # wae is always the best baseline below, vae the worse one
# Every metric the claims read (fid with a backbone, as the report names its column).
CLAIMED = {"knn5_acc": "", "linear_acc": "", "recon_sse": "", "fid": "clf", "kid": "", "precision": "",
           "recall": "", "denoise_sse_s0.3": "", "trustworthiness_k10": "", "continuity_k10": ""}
SUMMARY_HEADER = ["model", "dataset", "metric", "split", "n", "backbone", "mean", "std", "n_seeds"]
PAIR_HEADER = ["dataset", "column", "model_a", "model_b", "n_pairs", "mean_diff", "statistic", "p_value", "p_holm",
               "significant", "better", "note"]


# ---------------------------------------------------------------- building experiment folders


def column(metric: str) -> str:
    return f"{metric} [{CLAIMED[metric]}]" if CLAIMED.get(metric) else metric


def means(metric: str, swae_ahead: bool) -> dict[str, float]:
    """swae, wae, vae means: wae ahead of vae, swae ahead of (or behind) both, by the metric's direction."""
    up = 1.0 if direction(metric) == HIGHER else -1.0
    ranks = {"swae": 3 if swae_ahead else 0, "wae": 2, "vae": 1}
    return {model: 50.0 + up * rank for model, rank in ranks.items()}


def pair_row(dataset: str, col: str, a: str, b: str, p_holm: float, better: str, n_pairs: int = 3, note: str = "") -> dict:
    significant = p_holm == p_holm and p_holm <= 0.05
    return dict(zip(PAIR_HEADER, [dataset, col, a, b, n_pairs, 1.0, 2.0, p_holm, p_holm, significant,
                                  better if significant else "", note]))


def dataset_rows(dataset: str, swae_ahead: bool, p_holm: float, skip=()) -> tuple[list[dict], list[dict]]:
    """summary and comparisons rows of one dataset: every claimed metric but `skip`; the swae-wae pair has
    p_holm (significant in the leader's favour when <= 0.05), the swae-vae pair is always significant."""
    summary, pairs = [], []
    for metric, backbone in CLAIMED.items():
        if metric in skip:
            continue
        for model, mean in means(metric, swae_ahead).items():
            summary.append(dict(zip(SUMMARY_HEADER, [model, dataset, metric, "test", 100, backbone, mean, 0.5, 3])))
        pairs.append(pair_row(dataset, column(metric), "swae", "wae", p_holm, "swae" if swae_ahead else "wae"))
        pairs.append(pair_row(dataset, column(metric), "swae", "vae", 0.001, "swae" if swae_ahead else "vae"))
    return summary, pairs


def write_experiment(folder, *datasets: tuple[list[dict], list[dict]]):
    folder.mkdir()
    pd.DataFrame([r for s, _ in datasets for r in s], columns=SUMMARY_HEADER).to_csv(folder / "summary.csv", index=False)
    pd.DataFrame([r for _, p in datasets for r in p], columns=PAIR_HEADER).to_csv(folder / "comparisons.csv", index=False)
    return folder


def write_runs(folder, values: dict[tuple[str, str], dict[str, list[float]]], model_of=lambda label: label):
    """runs.csv and metrics.csv: values[(label, metric)] = {dataset: per-seed values}; a label is the
    model name, or an objective when model_of maps it to swae (its hparams then name the objective)."""
    folder.mkdir()
    runs, metrics = {}, []
    for (label, metric), per_dataset in values.items():
        for dataset, seeds in per_dataset.items():
            for seed, value in enumerate(seeds):
                run_id = f"{label}_{dataset}_s{seed}"
                runs[run_id] = [run_id, model_of(label), dataset, seed, "ok", json.dumps({"objective": label}), 7.5, 20]
                metrics.append([run_id, model_of(label), dataset, seed, metric, value, "test", 100, ""])
    pd.DataFrame(runs.values(), columns=["run_id", "model", "dataset", "seed", "status", "hparams", "train_seconds",
                                         "epochs_run"]).to_csv(folder / "runs.csv", index=False)
    pd.DataFrame(metrics, columns=["run_id", "model", "dataset", "seed", "metric", "value", "split", "n",
                                   "backbone"]).to_csv(folder / "metrics.csv", index=False)
    return folder


# ---------------------------------------------------------------- reading the Markdown


def claim_rows(text: str) -> list[dict]:
    """The claims table's rows as dicts, the claim and verdict carried down to every line of a claim."""
    table = text.split("## Claims\n", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in table.splitlines() if line.startswith("|")]
    header = [cell.strip() for cell in lines[0].strip("|").split(" | ")]
    rows, last = [], {}
    for line in lines[2:]:
        row = dict(zip(header, (cell.strip() for cell in line[2:-2].split(" | "))))
        last = {k: row[k] or last.get(k, "") for k in ("claim", "verdict")} if row["claim"] else last
        rows.append(row | last)
    return rows


def verdicts(text: str) -> dict[str, str]:
    return {row["claim"]: row["verdict"].strip("*") for row in claim_rows(text)}


def lines_of(text: str, metric: str) -> list[dict]:
    return [row for row in claim_rows(text) if row["metric"].startswith(metric)]


MODEL_CLAIMS = ["Superior kNN classification of latent codes", "Superior reconstruction", "Superior generation",
                "Local structure preserved in latent space"]
DENOISING = "Denoising effect from the data-space loss"
RECON_TERM = "The reconstruction term benefits generation and reconstruction"


# ---------------------------------------------------------------- verdicts of model lines


def test_swae_winning_every_line_significantly_holds(tmp_path):
    text = claims_report([write_experiment(tmp_path / "exp", dataset_rows("digits", True, 0.01))])
    found = verdicts(text)
    assert all(found[claim] == "holds" for claim in MODEL_CLAIMS)
    rows = claim_rows(text)
    assert all(r["outcome"] == "SWAE better (significant)" for r in rows if r["dataset"] == "digits")
    fid = lines_of(text, "fid")[0]
    assert fid["metric"] == "fid [clf]" and fid["best baseline"].startswith("wae: 48")  # lower is better: wae
    assert fid["p (Holm)"] == "0.01"  # the swae-wae pair's p, not the swae-vae one's
    # No ablation folder: the denoising claim's ablation line and the whole last claim are not tested.
    assert found[DENOISING] == "mixed" and found[RECON_TERM] == "does not hold (nothing tested)"


def test_baseline_winning_significantly_does_not_hold(tmp_path):
    text = claims_report([write_experiment(tmp_path / "exp", dataset_rows("digits", False, 0.01))])
    assert all(verdicts(text)[claim] == "does not hold (a baseline significantly better)" for claim in MODEL_CLAIMS + [DENOISING])
    recon = lines_of(text, "recon_sse")[0]
    assert recon["outcome"] == "SWAE worse (significant)" and recon["best baseline"].startswith("wae: ")


def test_mixed_across_two_datasets(tmp_path):
    folder = write_experiment(tmp_path / "exp", dataset_rows("digits", True, 0.01), dataset_rows("mnist", False, 0.01))
    text = claims_report([folder])
    assert all(verdicts(text)[claim] == "mixed" for claim in MODEL_CLAIMS)
    outcomes = {row["dataset"]: row["outcome"] for row in lines_of(text, "knn5_acc")}
    assert outcomes == {"digits": "SWAE better (significant)", "mnist": "SWAE worse (significant)"}


def test_holm_p_above_alpha_is_within_noise(tmp_path):
    text = claims_report([write_experiment(tmp_path / "exp", dataset_rows("digits", True, 0.2))])
    assert {row["outcome"] for row in claim_rows(text) if row["dataset"] == "digits"} == {"within noise"}
    assert lines_of(text, "recon_sse")[0]["p (Holm)"] == "0.2"
    assert all(verdicts(text)[claim] == "does not hold (within noise: not shown)" for claim in MODEL_CLAIMS)


def test_missing_metric_and_too_few_seeds_are_not_tested(tmp_path):
    summary, pairs = dataset_rows("digits", True, 0.01, skip=("kid",))
    pairs = [p for p in pairs if not (p["column"] == "recall" and p["model_b"] == "wae")]
    pairs.append(pair_row("digits", "recall", "swae", "wae", float("nan"), "", n_pairs=1, note=NOTE_TOO_FEW))
    text = claims_report([write_experiment(tmp_path / "exp", (summary, pairs))])
    assert lines_of(text, "kid")[0]["outcome"].startswith("not tested")
    assert lines_of(text, "recall")[0]["outcome"] == "not tested (fewer than 2 shared seeds)"
    assert lines_of(text, "recall")[0]["p (Holm)"] == "—"
    assert verdicts(text)["Superior generation"] == "mixed"  # fid and precision win, kid and recall are not wins


def test_a_rescoring_folder_adds_its_columns_without_untested_lines_for_the_rest(tmp_path):
    full = write_experiment(tmp_path / "full", dataset_rows("digits", True, 0.01, skip=("kid",)))
    generation_only = [m for m in CLAIMED if m not in ("fid", "kid")]
    inception = write_experiment(tmp_path / "inception", dataset_rows("digits", True, 0.2, skip=generation_only))
    text = claims_report([full, inception])
    assert [row["dataset"] for row in lines_of(text, "knn5_acc")] == ["digits (full)"]  # no line for inception
    assert [row["dataset"] for row in lines_of(text, "kid")] == ["digits (inception)"]  # measured there only
    assert [(row["dataset"], row["outcome"]) for row in lines_of(text, "fid [")] == [
        ("digits (full)", "SWAE better (significant)"), ("digits (inception)", "within noise")]
    assert verdicts(text)["Superior kNN classification of latent codes"] == "holds"
    assert verdicts(text)["Superior generation"] == "mixed"  # the inception lines are within noise


# ---------------------------------------------------------------- the ablation


WIDE = {"xzrec": [10.0, 11.0, 12.5, 10.3, 11.7], "xz": [50.0, 52.5, 49.0, 51.0, 53.0], "zrec": [80.0, 84.0, 79.0, 85.0, 81.0]}


def ablation_folder(folder, per_objective: dict[str, list[float]], model_of=lambda objective: "swae"):
    values = {(objective, metric): {"digits": seeds} for objective, seeds in per_objective.items()
              for metric in ("fid", "recon_sse", "denoise_sse_s0.3")}
    return write_runs(folder, values, model_of=model_of)


def test_ablation_reads_the_named_variants_of_the_registry(tmp_path):
    """`--models swae,swae-xz,swae-zrec`: the objective is read from each run's hparams, whatever its name."""
    main = write_experiment(tmp_path / "exp", dataset_rows("digits", True, 0.01))
    named = {"xzrec": "swae", "xz": "swae-xz", "zrec": "swae-zrec"}
    text = claims_report([main], ablation_folder(tmp_path / "ablation", WIDE, model_of=named.get))
    assert verdicts(text)[RECON_TERM] == "holds"
    assert [row["outcome"] for row in claim_rows(text) if row["claim"] == RECON_TERM] == ["xzrec better (significant)"] * 2


def test_ablation_wide_margin_on_every_seed_is_significant(tmp_path):
    main = write_experiment(tmp_path / "exp", dataset_rows("digits", True, 0.01))
    text = claims_report([main], ablation_folder(tmp_path / "ablation", WIDE))
    lines = [row for row in claim_rows(text) if row["claim"] == RECON_TERM]
    assert [row["metric"] for row in lines] == ["fid", "recon_sse"]
    assert all(row["outcome"] == "xzrec better (significant)" and row["SWAE"].startswith("xzrec: ")
               and row["best baseline"].startswith("xz: ") and row["dataset"] == "digits (ablation ablation)"
               for row in lines)
    assert verdicts(text)[RECON_TERM] == "holds"
    denoising = [row for row in lines_of(text, "denoise_sse_s0.3") if row["dataset"] != "digits"]
    assert [(row["SWAE"].split(":")[0], row["best baseline"].split(":")[0]) for row in denoising] == [
        ("xz", "zrec"), ("xzrec", "zrec")]  # with and without the data-space term
    assert verdicts(text)[DENOISING] == "holds"  # swae beats wae; xz (50-53) and xzrec (10-12.5) beat zrec (79-85)


def test_ablation_identical_values_are_not_significant(tmp_path):
    main = write_experiment(tmp_path / "exp", dataset_rows("digits", True, 0.01))
    same = {"xzrec": WIDE["xzrec"], "xz": WIDE["xzrec"]}
    text = claims_report([main], ablation_folder(tmp_path / "ablation", same))
    lines = [row for row in claim_rows(text) if row["claim"] == RECON_TERM]
    assert {row["outcome"] for row in lines} == {"within noise"} and {row["p (Holm)"] for row in lines} == {"1"}
    assert verdicts(text)[RECON_TERM] == "does not hold (within noise: not shown)"
    denoising = [row for row in lines_of(text, "denoise_sse_s0.3") if row["dataset"] != "digits"]
    assert denoising[0]["outcome"] == "not tested (objective zrec not run)"


# ---------------------------------------------------------------- without summary.csv, and the extra table


def test_tables_are_computed_from_runs_and_metrics_when_missing(tmp_path):
    seeds = {"swae": [1.0, 1.1, 0.9, 1.05], "wae": [2.0, 2.2, 1.9, 2.1], "vae": [3.0, 3.3, 2.8, 3.1]}
    folder = write_runs(tmp_path / "exp", {(model, "recon_sse"): {"digits": v} for model, v in seeds.items()})
    text = claims_report([folder])
    recon = lines_of(text, "recon_sse")[0]
    assert recon["outcome"] == "SWAE better (significant)" and recon["best baseline"].startswith("wae: ")
    assert lines_of(text, "knn5_acc")[0]["outcome"] == "not tested (metric not measured)"
    assert not (folder / "summary.csv").exists()  # read-only: nothing written into the experiment
    extra = text.split("## What a reader must also know", 1)[1]
    assert "| digits | swae |" in extra and "| 7.5 | 20 |" in extra  # training cost from runs.csv
    assert str(tmp_path) not in text  # folders by name, never by absolute path


def test_a_rescored_experiment_has_no_row_of_training_cost(tmp_path):
    seeds = {"swae": [1.0, 1.1, 0.9], "wae": [2.0, 2.2, 1.9]}
    trained = write_runs(tmp_path / "trained", {(m, "recon_sse"): {"digits": v} for m, v in seeds.items()})
    rescored = write_runs(tmp_path / "rescored", {(m, "fid"): {"digits": v} for m, v in seeds.items()})
    runs = pd.read_csv(rescored / "runs.csv")
    runs.assign(weights_from="a_trained_run", train_seconds=0.0).to_csv(rescored / "runs.csv", index=False)
    extra = claims_report([trained, rescored]).split("## What a reader must also know", 1)[1]
    assert "| digits (trained) | swae |" in extra and "(rescored)" not in extra


# ---------------------------------------------------------------- the command line


def run_cli(capsys, *argv):
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_prints_or_writes_the_table(capsys, tmp_path):
    folder = write_experiment(tmp_path / "exp", dataset_rows("digits", True, 0.01))
    code, out, _ = run_cli(capsys, "claims", str(folder))
    assert code == 0 and out.startswith("Claims of the SWAE paper") and "`exp` (digits, 3 seeds)" in out
    code, out, _ = run_cli(capsys, "claims", str(folder), "--out", str(tmp_path / "claims.md"))
    assert code == 0 and (tmp_path / "claims.md").read_text().startswith("Claims of the SWAE paper")


@pytest.mark.parametrize("case,message", [
    ("missing", "missing: no such folder"),
    ("empty", "empty: no summary.csv and comparisons.csv, and no metrics.csv and runs.csv"),
    ("ablation without objectives", "not a SWAE ablation (no swae run with an objective in its hparams)"),
    ("ablation with one objective", "not a SWAE ablation (only objective xz)"),
    ("ablation without csv", "an ablation folder needs runs.csv and metrics.csv"),
    ("no folder", "Missing argument"),
])
def test_cli_mistakes_are_one_line_and_exit_2(capsys, tmp_path, case, message):
    main = write_experiment(tmp_path / "exp", dataset_rows("digits", True, 0.01))
    (tmp_path / "empty").mkdir()
    baselines_only = write_runs(tmp_path / "baselines", {("vae", "fid"): {"digits": [1.0, 2.0]}})
    one_objective = write_runs(tmp_path / "one", {("xz", "fid"): {"digits": [1.0, 2.0]}}, model_of=lambda label: "swae")
    argv = {"missing": [str(tmp_path / "missing")], "empty": [str(tmp_path / "empty")],
            "ablation without objectives": [str(main), "--ablation", str(baselines_only)],
            "ablation with one objective": [str(main), "--ablation", str(one_objective)],
            "ablation without csv": [str(main), "--ablation", str(tmp_path / "empty")], "no folder": []}[case]
    code, out, err = run_cli(capsys, "claims", *argv)
    assert code == 2 and message in err and err.count("\n") == 1 and "Traceback" not in err and out == ""


def test_out_into_a_document_replaces_only_its_generated_section(tmp_path):
    from benchmark.claims import BEGIN, END, write_claims

    document = tmp_path / "README.md"
    document.write_text(f"# Title\n\nHand-written text.\n\n{BEGIN} old`; x -->\nold table\n{END}\n\nAfter.\n")
    write_claims(document, "new table\n", "exp --out README.md")
    text = document.read_text()
    assert text.startswith("# Title\n\nHand-written text.\n\n") and text.endswith(f"{END}\n\nAfter.\n")
    assert "new table" in text and "old table" not in text and "`python cli.py claims exp --out README.md`" in text
    write_claims(tmp_path / "plain.md", "only the table\n")  # no section yet: the whole file
    assert (tmp_path / "plain.md").read_text() == "only the table\n"
