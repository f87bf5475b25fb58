"""The claims table (aebench/report/claims.py) on tiny experiment folders whose answer is known: the CSVs (and
the claims files) are written directly, nothing is trained."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import cli
from aebench.metrics.directions import HIGHER, direction
from aebench.report.claims import claims_report
from aebench.report.claims_file import load_claims_file
from aebench.report.stats import NOTE_TOO_FEW

# Every metric the test claims read, with its backbone (fid as the report names its column: "fid [clf]").
CLAIMED = {"knn5_acc": "", "linear_acc": "", "recon_sse": "", "fid": "clf", "fid_gmm": "clf", "denoise_sse_s0.3": ""}
SUMMARY_HEADER = ["model", "dataset", "metric", "split", "n", "backbone", "mean", "std", "n_seeds"]
PAIR_HEADER = ["dataset", "column", "model_a", "model_b", "n_pairs", "mean_diff", "statistic", "p_value", "p_holm",
               "significant", "better", "note"]
AFTER_EVERY_DECLARATION = "2027-01-01T00:00:00+00:00"  # runs that finished after every line below was declared

CLAIMS = """
ours = "swae"

[[claim]]
text = "Superior reconstruction"
declared = 2026-12-01
lines = [{ metric = "recon_sse" }]

[[claim]]
text = "Superior classification"
declared = 2026-12-01
lines = [{ metric = "knn5_acc" }, { metric = "linear_acc" }]

[[claim]]
text = "Superior generation"
declared = 2026-12-01
lines = [{ metric = "fid" }, { metric = "fid", sampler = "gmm" }]

[[claim]]
text = "Denoising"
declared = 2026-12-01
lines = [{ metric = "denoise_sse_s*" }, { metric = "denoise_sse_s*", objectives = ["xz", "zrec"] }]

[[claim]]
text = "The reconstruction term"
declared = 2026-12-01
lines = [{ metric = "fid", objectives = ["xzrec", "xz"] }, { metric = "recon_sse", objectives = ["xzrec", "xz"] }]
"""
MODEL_CLAIMS = ["Superior reconstruction", "Superior classification", "Superior generation"]
RECON_TERM = "The reconstruction term"


# ---------------------------------------------------------------- building experiment folders


def column(metric: str) -> str:
    return f"{metric} [{CLAIMED[metric]}]" if CLAIMED.get(metric) else metric


def means(metric: str, swae_ahead: bool) -> dict[str, float]:
    """swae, wae, vae means: wae ahead of vae, swae ahead of (or behind) both, by the metric's direction."""
    up = 1.0 if direction(metric) == HIGHER else -1.0
    ranks = {"swae": 3 if swae_ahead else 0, "wae": 2, "vae": 1}
    return {model: 50.0 + up * rank for model, rank in ranks.items()}


def pair_row(dataset: str, col: str, a: str, b: str, p: float, diff: float, n_pairs: int = 3, note: str = "") -> dict:
    """A comparisons.csv row whose raw p and column-Holm p are both p (the tests set the table's family)."""
    significant = p == p and p <= 0.05
    return dict(zip(PAIR_HEADER, [dataset, col, a, b, n_pairs, diff, 2.0, p, p, significant, "", note]))


def dataset_rows(dataset: str, swae_ahead: bool, p: float | dict, skip=()) -> tuple[list[dict], list[dict]]:
    """summary and comparisons rows of one dataset: every claimed metric but `skip`; the swae-wae pair has
    raw p `p` (or p[metric]), the swae-vae pair 0.001."""
    summary, pairs = [], []
    for metric, backbone in CLAIMED.items():
        if metric in skip:
            continue
        found = means(metric, swae_ahead)
        for model, mean in found.items():
            summary.append(dict(zip(SUMMARY_HEADER, [model, dataset, metric, "test", 100, backbone, mean, 0.5, 3])))
        p_here = p[metric] if isinstance(p, dict) else p
        pairs.append(pair_row(dataset, column(metric), "swae", "wae", p_here, found["swae"] - found["wae"]))
        pairs.append(pair_row(dataset, column(metric), "swae", "vae", 0.001, found["swae"] - found["vae"]))
    return summary, pairs


def write_experiment(folder, *datasets: tuple[list[dict], list[dict]], finished=AFTER_EVERY_DECLARATION):
    """summary.csv and comparisons.csv, and runs.csv with the runs' finish times (`finished`: one for all,
    None for no runs.csv)."""
    folder.mkdir()
    summary = pd.DataFrame([r for s, _ in datasets for r in s], columns=SUMMARY_HEADER)
    summary.to_csv(folder / "summary.csv", index=False)
    pd.DataFrame([r for _, p in datasets for r in p], columns=PAIR_HEADER).to_csv(folder / "comparisons.csv", index=False)
    if finished is not None:
        runs = [[f"{m}_{d}_s{s}", m, d, s, "ok", finished] for d, m in summary[["dataset", "model"]].drop_duplicates()
                .itertuples(index=False) for s in range(3)]
        pd.DataFrame(runs, columns=["run_id", "model", "dataset", "seed", "status", "finished_at"]).to_csv(
            folder / "runs.csv", index=False)
    return folder


def write_runs(folder, values: dict[tuple[str, str], dict[str, list[float]]], model_of=lambda label: label,
               finished=AFTER_EVERY_DECLARATION):
    """runs.csv and metrics.csv: values[(label, metric)] = {dataset: per-seed values}; a label is the
    model name, or an objective when model_of maps it to swae (its hparams then name the objective)."""
    folder.mkdir()
    runs, metrics = {}, []
    for (label, metric), per_dataset in values.items():
        for dataset, seeds in per_dataset.items():
            for seed, value in enumerate(seeds):
                run_id = f"{label}_{dataset}_s{seed}"
                runs[run_id] = [run_id, model_of(label), dataset, seed, "ok", json.dumps({"objective": label}), 7.5,
                                20, finished]
                metrics.append([run_id, model_of(label), dataset, seed, metric, value, "test", 100, ""])
    pd.DataFrame(runs.values(), columns=["run_id", "model", "dataset", "seed", "status", "hparams", "train_seconds",
                                         "epochs_run", "finished_at"]).to_csv(folder / "runs.csv", index=False)
    pd.DataFrame(metrics, columns=["run_id", "model", "dataset", "seed", "metric", "value", "split", "n",
                                   "backbone"]).to_csv(folder / "metrics.csv", index=False)
    return folder


@pytest.fixture
def claims(tmp_path):
    path = tmp_path / "claims.toml"
    path.write_text(CLAIMS)
    return path


def report(claims_path, folders, ablation=None) -> str:
    return claims_report(folders, ablation, claims_path)


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


# ---------------------------------------------------------------- verdicts, one family


def test_swae_winning_every_line_significantly_holds(tmp_path, claims):
    text = report(claims, [write_experiment(tmp_path / "exp", dataset_rows("digits", True, 0.001))])
    found = verdicts(text)
    assert all(found[claim] == "holds" for claim in MODEL_CLAIMS)
    assert all(r["outcome"] == "swae better (significant)" for r in claim_rows(text) if r["dataset"] == "digits")
    fid = lines_of(text, "fid [")[0]
    assert fid["metric"] == "fid [clf]" and fid["sampler"] == "prior" and fid["other"].startswith("wae: 48")
    # six tested lines of raw p 0.001: Holm over the table scales the smallest by 6, and the running
    # maximum carries 0.006 to every one; the column's own Holm p stays 0.001
    assert fid["p (column Holm)"] == "0.001" and fid["p (table Holm)"] == "0.006"
    # No ablation folder: the denoising claim's ablation line is not tested, so it does not hold; the
    # last claim has no line that could be tested.
    assert found["Denoising"] == "1 win, 0 losses, 0 within noise, 1 not tested"
    assert found[RECON_TERM] == "does not hold (nothing tested)"


def test_the_gmm_sampler_reads_the_suffixed_rows(tmp_path, claims):
    p = dict.fromkeys(CLAIMED, 0.001) | {"fid_gmm": 0.3}
    text = report(claims, [write_experiment(tmp_path / "exp", dataset_rows("digits", True, p))])
    gmm = [row for row in claim_rows(text) if row["sampler"] == "gmm"]
    assert [(row["metric"], row["outcome"]) for row in gmm] == [("fid_gmm [clf]", "within noise")]
    assert verdicts(text)["Superior generation"] == "1 win, 0 losses, 1 within noise"


def test_the_table_wide_holm_decides_and_can_undo_a_column_win(tmp_path, claims):
    """Raw p 0.01 on each of the six tested lines: significant within each column (Holm there: 0.01),
    not over the table (Holm: 0.06)."""
    text = report(claims, [write_experiment(tmp_path / "exp", dataset_rows("digits", True, 0.01))])
    recon = lines_of(text, "recon_sse")[0]
    assert (recon["p (column Holm)"], recon["p (table Holm)"], recon["outcome"]) == ("0.01", "0.06", "within noise")
    assert all(verdicts(text)[claim] == "does not hold" for claim in MODEL_CLAIMS)


def test_table_holm_over_a_known_p_vector(tmp_path, claims):
    """p = 0.01, 0.04, 0.03, 0.005, 0.2, 0.02 (recon, knn, linear, fid, fid_gmm, denoise): Holm's step-down
    gives 0.005*6 = 0.03, 0.01*5 = 0.05, 0.02*4 = 0.08, 0.03*3 = 0.09, 0.04*2 = 0.08 -> 0.09, 0.2."""
    p = {"recon_sse": 0.01, "knn5_acc": 0.04, "linear_acc": 0.03, "fid": 0.005, "fid_gmm": 0.2, "denoise_sse_s0.3": 0.02}
    text = report(claims, [write_experiment(tmp_path / "exp", dataset_rows("digits", True, p))])
    table = {row["metric"]: row["p (table Holm)"] for row in claim_rows(text) if row["dataset"] == "digits"}
    assert table == {"recon_sse": "0.05", "knn5_acc": "0.09", "linear_acc": "0.09", "fid [clf]": "0.03",
                     "fid_gmm [clf]": "0.2", "denoise_sse_s0.3": "0.08"}
    outcomes = {row["metric"]: row["outcome"] for row in claim_rows(text) if row["dataset"] == "digits"}
    assert outcomes["fid [clf]"] == "swae better (significant)" and outcomes["recon_sse"] == "swae better (significant)"
    assert outcomes["knn5_acc"] == "within noise"  # 0.04 alone would have been significant


def test_verdict_counts_wins_losses_and_noise(tmp_path):
    """recon_sse a win (digits), a loss (mnist); knn5_acc within noise on both; linear_acc untested."""
    path = tmp_path / "claims.toml"
    path.write_text('ours = "swae"\n[[claim]]\ntext = "Mixed"\ndeclared = 2026-12-01\n'
                    'lines = [{ metric = "recon_sse" }, { metric = "knn5_acc" }, { metric = "linear_acc" }]\n')
    p = {"recon_sse": 0.0001, "knn5_acc": 0.5, "linear_acc": float("nan")}
    skip = ("fid", "fid_gmm", "denoise_sse_s0.3")
    folder = write_experiment(tmp_path / "exp", dataset_rows("digits", True, p, skip), dataset_rows("mnist", False, p, skip))
    text = report(path, [folder])
    assert verdicts(text)["Mixed"] == "1 win, 1 loss, 2 within noise, 2 not tested"
    outcomes = {row["dataset"]: row["outcome"] for row in lines_of(text, "recon_sse")}
    assert outcomes == {"digits": "swae better (significant)", "mnist": "swae worse (significant)"}


def test_missing_metric_and_too_few_seeds_are_not_tested(tmp_path, claims):
    summary, pairs = dataset_rows("digits", True, 0.001, skip=("fid_gmm",))
    pairs = [p for p in pairs if not (p["column"] == "linear_acc" and p["model_b"] == "wae")]
    pairs.append(pair_row("digits", "linear_acc", "swae", "wae", float("nan"), 1.0, n_pairs=1, note=NOTE_TOO_FEW))
    text = report(claims, [write_experiment(tmp_path / "exp", (summary, pairs))])
    assert lines_of(text, "fid_gmm")[0]["outcome"] == "not tested (metric not measured)"
    linear = lines_of(text, "linear_acc")[0]
    assert linear["outcome"] == "not tested (fewer than 2 shared seeds)" and linear["p (table Holm)"] == "—"
    assert verdicts(text)["Superior generation"] == "1 win, 0 losses, 0 within noise, 1 not tested"


def test_a_line_can_name_its_dataset_backbone_and_other_model(tmp_path):
    path = tmp_path / "claims.toml"
    path.write_text('ours = "swae"\n[[claim]]\ntext = "Against vae"\ndeclared = 2026-12-01\n'
                    'lines = [{ metric = "fid", backbone = "cl", dataset = "mnist", against = "vae" },\n'
                    '         { metric = "fid", backbone = "inception" }]\n')
    folder = write_experiment(tmp_path / "exp", dataset_rows("digits", True, 0.5), dataset_rows("mnist", True, 0.5))
    rows = claim_rows(report(path, [folder]))
    assert [(r["metric"], r["dataset"], r["other"].split(":")[0], r["outcome"]) for r in rows] == [
        ("fid [clf]", "mnist", "vae", "swae better (significant)"),  # the swae-vae pair: p 0.001
        ("fid", "digits", "—", "not tested (metric not measured)"), ("fid", "mnist", "—", "not tested (metric not measured)")]


def test_a_rescoring_folder_adds_its_columns_without_untested_lines_for_the_rest(tmp_path, claims):
    full = write_experiment(tmp_path / "full", dataset_rows("digits", True, 0.001, skip=("fid_gmm",)))
    generation_only = [m for m in CLAIMED if m not in ("fid", "fid_gmm")]
    inception = write_experiment(tmp_path / "inception", dataset_rows("digits", True, 0.2, skip=generation_only))
    text = report(claims, [full, inception])
    assert [row["dataset"] for row in lines_of(text, "knn5_acc")] == ["digits (full)"]  # no line for inception
    assert [row["dataset"] for row in lines_of(text, "fid_gmm")] == ["digits (inception)"]  # measured there only
    assert [(row["dataset"], row["outcome"]) for row in lines_of(text, "fid [")] == [
        ("digits (full)", "swae better (significant)"), ("digits (inception)", "within noise")]
    assert verdicts(text)["Superior classification"] == "holds"


# ---------------------------------------------------------------- declared before the data, or not


def dated_claims(tmp_path, claim_date: str, line_date: str = "") -> object:
    path = tmp_path / "dated.toml"
    late = f", declared = {line_date}" if line_date else ""
    path.write_text(f'ours = "swae"\n[[claim]]\ntext = "Dated"\ndeclared = {claim_date}\n'
                    f'lines = [{{ metric = "recon_sse" }}, {{ metric = "knn5_acc"{late} }}]\n')
    return path


@pytest.mark.parametrize("claim_date,line_date,exploratory", [
    ("2026-11-30", "", []),  # the end of 2026-11-30 is before the runs (2026-12-01 10:00)
    ("2026-12-01T09:00:00Z", "", []),
    ("2026-12-01", "", ["recon_sse", "knn5_acc"]),  # a date counts from the end of its day: after the runs
    ("2026-12-01T11:00:00Z", "", ["recon_sse", "knn5_acc"]),
    ("2026-11-30", "2026-12-02", ["knn5_acc"]),  # a line added later carries its own date
])
def test_a_line_declared_after_its_runs_finished_is_exploratory(tmp_path, claim_date, line_date, exploratory):
    p = {"recon_sse": 0.001, "knn5_acc": 0.001}
    folder = write_experiment(tmp_path / "exp", dataset_rows("digits", True, p, skip=("linear_acc", "fid", "fid_gmm",
                              "denoise_sse_s0.3")), finished="2026-12-01T10:00:00+00:00")
    rows = claim_rows(report(dated_claims(tmp_path, claim_date, line_date), [folder]))
    marked = [row["metric"] for row in rows if "exploratory" in row["outcome"]]
    assert marked == exploratory
    for row in rows:
        if row["metric"] in exploratory:
            assert row["outcome"].startswith("swae better (significant); exploratory, not counted: declared ")
            assert "after a run it reads finished at 2026-12-01 10:00 UTC" in row["outcome"]
    assert rows[0]["verdict"].strip("*") == ("no verdict (every line exploratory)" if len(exploratory) == 2 else "holds")


def test_an_exploratory_loss_does_not_count_and_unknown_finish_times_are_exploratory(tmp_path):
    p = {"recon_sse": 0.001, "knn5_acc": 0.001}
    skip = ("linear_acc", "fid", "fid_gmm", "denoise_sse_s0.3")
    digits_win, mnist_loss = dataset_rows("digits", True, p, skip), dataset_rows("mnist", False, p, skip)
    folder = write_experiment(tmp_path / "exp", digits_win, mnist_loss, finished="2026-12-01T10:00:00+00:00")
    runs = pd.read_csv(folder / "runs.csv")
    runs.loc[runs["dataset"] == "mnist", "finished_at"] = "2026-11-01T10:00:00+00:00"  # before the line
    runs.to_csv(folder / "runs.csv", index=False)
    path = dated_claims(tmp_path, "2026-11-30")
    assert verdicts(report(path, [folder]))["Dated"] == "holds"  # mnist's losses are exploratory
    (folder / "runs.csv").unlink()
    rows = claim_rows(report(path, [folder]))
    assert all("exploratory, not counted: finish times unknown" in row["outcome"] for row in rows)


def test_the_ablation_line_added_after_its_runs_is_exploratory(tmp_path, claims):
    main = write_experiment(tmp_path / "exp", dataset_rows("digits", True, 0.001))
    ablation = ablation_folder(tmp_path / "ablation", WIDE, finished="2026-11-15T00:00:00+00:00")
    text = report(claims, [main], ablation)
    assert verdicts(text)[RECON_TERM] == "no verdict (every line exploratory)"


# ---------------------------------------------------------------- the ablation


WIDE = {"xzrec": [10.0, 11.0, 12.5, 10.3, 11.7], "xz": [50.0, 52.5, 49.0, 51.0, 53.0], "zrec": [80.0, 84.0, 79.0, 85.0, 81.0]}


def ablation_folder(folder, per_objective: dict[str, list[float]], model_of=lambda objective: "swae", **kwargs):
    values = {(objective, metric): {"digits": seeds} for objective, seeds in per_objective.items()
              for metric in ("fid", "recon_sse", "denoise_sse_s0.3")}
    return write_runs(folder, values, model_of=model_of, **kwargs)


def test_ablation_reads_the_named_variants_of_the_registry(tmp_path, claims):
    """`--models swae,swae-xz,swae-zrec`: the objective is read from each run's hparams, whatever its name."""
    main = write_experiment(tmp_path / "exp", dataset_rows("digits", True, 0.001))
    named = {"xzrec": "swae", "xz": "swae-xz", "zrec": "swae-zrec"}
    text = report(claims, [main], ablation_folder(tmp_path / "ablation", WIDE, model_of=named.get))
    assert verdicts(text)[RECON_TERM] == "holds"
    assert [row["outcome"] for row in claim_rows(text) if row["claim"] == RECON_TERM] == ["xzrec better (significant)"] * 2


def test_ablation_wide_margin_on_every_seed_is_significant(tmp_path, claims):
    main = write_experiment(tmp_path / "exp", dataset_rows("digits", True, 0.001))
    text = report(claims, [main], ablation_folder(tmp_path / "ablation", WIDE))
    lines = [row for row in claim_rows(text) if row["claim"] == RECON_TERM]
    assert [row["metric"] for row in lines] == ["fid", "recon_sse"]
    assert all(row["outcome"] == "xzrec better (significant)" and row["swae"].startswith("xzrec: ")
               and row["other"].startswith("xz: ") and row["dataset"] == "digits (ablation ablation)" for row in lines)
    denoising = [row for row in lines_of(text, "denoise_sse_s0.3") if row["dataset"] != "digits"]
    assert [(row["swae"].split(":")[0], row["other"].split(":")[0]) for row in denoising] == [("xz", "zrec")]
    assert verdicts(text)["Denoising"] == "holds"  # swae beats wae; xz (50-53) beats zrec (79-85)


def test_ablation_identical_values_are_not_significant(tmp_path, claims):
    main = write_experiment(tmp_path / "exp", dataset_rows("digits", True, 0.001))
    same = {"xzrec": WIDE["xzrec"], "xz": WIDE["xzrec"]}
    text = report(claims, [main], ablation_folder(tmp_path / "ablation", same))
    lines = [row for row in claim_rows(text) if row["claim"] == RECON_TERM]
    assert {row["outcome"] for row in lines} == {"within noise"} and {row["p (column Holm)"] for row in lines} == {"1"}
    assert verdicts(text)[RECON_TERM] == "does not hold"
    denoising = [row for row in lines_of(text, "denoise_sse_s0.3") if row["dataset"] != "digits"]
    assert denoising[0]["outcome"] == "not tested (objective zrec not run)"



def test_ablation_cells_average_finite_values_and_an_objective_without_one_still_ran(tmp_path, claims):
    """The objectives go through the report's summarize and significance: a non-finite value is left out
    of its objective's mean and seed count; an objective whose every value is non-finite shows —, and its
    lines are untested for want of seeds, not "not run"."""
    main = write_experiment(tmp_path / "exp", dataset_rows("digits", True, 0.001))
    values = {"xzrec": [10.0, float("inf"), 12.5, 10.3, 11.7], "xz": [float("nan")] * 5, "zrec": WIDE["zrec"]}
    text = report(claims, [main], ablation_folder(tmp_path / "ablation", values))
    lines = [row for row in claim_rows(text) if row["claim"] == RECON_TERM]
    assert [(row["swae"], row["other"]) for row in lines] == [("xzrec: 11.1 ± 1.2 (n=4)", "xz: —")] * 2
    assert {row["outcome"] for row in lines} == {"not tested (fewer than 2 shared seeds)"}

# ---------------------------------------------------------------- intervals that resample test images


def write_per_image(folder, arrays: dict[str, dict[str, np.ndarray]]) -> None:
    """per_image/<run_id>.npz: arrays[run_id] = {metric: per-image values}."""
    (folder / "per_image").mkdir()
    for run_id, metrics in arrays.items():
        np.savez(folder / "per_image" / f"{run_id}.npz", **metrics)


def shifted_experiment(folder, shift: float):
    """swae's recon_sse is wae's minus `shift` on every image of every seed; vae far behind."""
    rng = np.random.default_rng(0)
    wae = [rng.gamma(2.0, 2.0, 100) + seed for seed in range(3)]
    per_model = {"wae": wae, "swae": [a - shift for a in wae], "vae": [a + 5.0 for a in wae]}
    write_runs(folder, {(m, "recon_sse"): {"digits": [float(a.mean()) for a in arrays]} for m, arrays in per_model.items()})
    write_per_image(folder, {f"{m}_digits_s{seed}": {"recon_sse": a} for m, arrays in per_model.items()
                             for seed, a in enumerate(arrays)})
    return folder


def test_the_difference_interval_of_a_constant_shift_is_that_shift(tmp_path, claims):
    folder = shifted_experiment(tmp_path / "exp", 0.25)
    recon = lines_of(report(claims, [folder]), "recon_sse")[0]
    assert recon["other"].startswith("wae: ") and recon["difference, 95% interval"] == "[-0.25, -0.25]"


def test_without_per_image_values_the_interval_cell_says_why(tmp_path, claims):
    folder = shifted_experiment(tmp_path / "exp", 0.25)
    np.savez(folder / "per_image" / "wae_digits_s1.npz", recon_sse=np.zeros(100))  # mean 0, metrics.csv says more
    recon = lines_of(report(claims, [folder]), "recon_sse")[0]
    assert recon["difference, 95% interval"].startswith("per_image/wae_digits_s1.npz: the mean of recon_sse (0) is not")
    for name in ("per_image",):
        for file in (folder / name).iterdir():
            file.unlink()
        (folder / name).rmdir()
    recon = lines_of(report(claims, [folder]), "recon_sse")[0]
    assert recon["difference, 95% interval"] == "no per_image/ folder"
    assert lines_of(report(claims, [folder]), "knn5_acc")[0]["difference, 95% interval"] == "—"  # not measured


# ---------------------------------------------------------------- without summary.csv, and the extra table


def test_tables_are_computed_from_runs_and_metrics_when_missing(tmp_path, claims):
    seeds = {"swae": [1.0, 1.1, 0.9, 1.05], "wae": [2.0, 2.2, 1.9, 2.1], "vae": [3.0, 3.3, 2.8, 3.1]}
    folder = write_runs(tmp_path / "exp", {(model, "recon_sse"): {"digits": v} for model, v in seeds.items()})
    text = report(claims, [folder])
    recon = lines_of(text, "recon_sse")[0]
    assert recon["outcome"] == "swae better (significant)" and recon["other"].startswith("wae: ")
    assert lines_of(text, "knn5_acc")[0]["outcome"] == "not tested (metric not measured)"
    assert not (folder / "summary.csv").exists()  # read-only: nothing written into the experiment
    extra = text.split("## What a reader must also know", 1)[1]
    assert "| digits | swae |" in extra and "| 7.5 | 20 |" in extra  # training cost from runs.csv
    assert str(tmp_path) not in text  # folders by name, never by absolute path


def test_a_rescored_experiment_has_no_row_of_training_cost(tmp_path, claims):
    seeds = {"swae": [1.0, 1.1, 0.9], "wae": [2.0, 2.2, 1.9]}
    trained = write_runs(tmp_path / "trained", {(m, "recon_sse"): {"digits": v} for m, v in seeds.items()})
    rescored = write_runs(tmp_path / "rescored", {(m, "fid"): {"digits": v} for m, v in seeds.items()})
    runs = pd.read_csv(rescored / "runs.csv")
    runs.assign(weights_from="a_trained_run", train_seconds=0.0).to_csv(rescored / "runs.csv", index=False)
    extra = report(claims, [trained, rescored]).split("## What a reader must also know", 1)[1]
    assert "| digits (trained) | swae |" in extra and "(rescored)" not in extra


# ---------------------------------------------------------------- the default claims file


def test_the_committed_claims_file_declares_both_samplers_of_every_generation_line():
    claims = load_claims_file()
    assert claims.ours == "swae"
    generation = next(c for c in claims.claims if c.text == "Superior generation")
    found = {(line.metric, line.sampler) for line in generation.lines}
    assert found == {(m, s) for m in ("fid", "kid", "precision", "recall") for s in ("prior", "gmm")}
    assert {line.row_metric for line in generation.lines if line.sampler == "gmm"} == {
        "fid_gmm", "kid_gmm", "precision_gmm", "recall_gmm"}
    first = min(line.declared for claim in claims.claims for line in claim.lines)
    later = [line for claim in claims.claims for line in claim.lines if line.declared > first]
    assert {(line.metric, line.objectives) for line in later} == {  # the lines declared after the first ones
        (m, None) for m in ("fid", "kid", "precision", "recall")} | {("denoise_sse_s*", ("xzrec", "zrec"))}


# ---------------------------------------------------------------- the command line


def run_cli(capsys, *argv):
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_prints_or_writes_the_table(capsys, tmp_path, claims):
    folder = write_experiment(tmp_path / "exp", dataset_rows("digits", True, 0.001))
    code, out, _ = run_cli(capsys, "claims", str(folder), "--claims", str(claims))
    assert code == 0 and out.startswith("Claims declared in ") and "`exp` (digits, 3 seeds)" in out
    code, out, _ = run_cli(capsys, "claims", str(folder), "--claims", str(claims), "--out", str(tmp_path / "claims.md"))
    written = (tmp_path / "claims.md").read_text()
    assert code == 0 and written.startswith("Claims declared in ")
    code, out, _ = run_cli(capsys, "claims", str(folder))  # the default claims file
    assert code == 0 and "Claims declared in `" in out and "claims.toml`" in out and "| kid_gmm |" in out


@pytest.mark.parametrize("case,message", [
    ("missing", "missing: no such folder"),
    ("empty", "empty: no summary.csv and comparisons.csv, and no metrics.csv and runs.csv"),
    ("ablation without objectives", "not an ablation of swae (no swae run with an objective in its hparams)"),
    ("ablation with one objective", "not an ablation of swae (only objective xz)"),
    ("ablation without csv", "an ablation folder needs runs.csv and metrics.csv"),
    ("no folder", "Missing argument"),
])
def test_cli_mistakes_are_one_line_and_exit_2(capsys, tmp_path, claims, case, message):
    main = write_experiment(tmp_path / "exp", dataset_rows("digits", True, 0.001))
    (tmp_path / "empty").mkdir()
    baselines_only = write_runs(tmp_path / "baselines", {("vae", "fid"): {"digits": [1.0, 2.0]}})
    one_objective = write_runs(tmp_path / "one", {("xz", "fid"): {"digits": [1.0, 2.0]}}, model_of=lambda label: "swae")
    argv = {"missing": [str(tmp_path / "missing")], "empty": [str(tmp_path / "empty")],
            "ablation without objectives": [str(main), "--ablation", str(baselines_only)],
            "ablation with one objective": [str(main), "--ablation", str(one_objective)],
            "ablation without csv": [str(main), "--ablation", str(tmp_path / "empty")], "no folder": []}[case]
    code, out, err = run_cli(capsys, "claims", *argv, "--claims", str(claims))
    assert code == 2 and message in err and err.count("\n") == 1 and "Traceback" not in err and out == ""


GOOD_LINE = '{ metric = "fid" }'


@pytest.mark.parametrize("claim,line,message", [
    ('tex = "x"', GOOD_LINE, "claim 1: unknown key tex; valid keys: declared, lines, text"),
    ('text = "x"\ndeclared = 2026-12-01', '{ metrc = "fid" }', "claim 1 (x), line 1: unknown key metrc; valid keys:"),
    ('text = "x"\ndeclared = 2026-12-01', '{ metric = "fdi" }', "claim 1 (x), line 1: unknown metric 'fdi'"),
    ('text = "x"\ndeclared = "2026-12-01"', GOOD_LINE, "declared must be a TOML date such as 2026-12-05 (unquoted)"),
    ('text = "x"\ndeclared = 2026-13-01', GOOD_LINE, "is not valid TOML"),
    ('text = "x"', GOOD_LINE, "claim 1 (x), line 1: no declared date"),
    ('text = "x"\ndeclared = 2026-12-01', '{ metric = "fid", sampler = "flow" }', "unknown sampler 'flow'; choices: gmm, prior"),
    ('text = "x"\ndeclared = 2026-12-01', '{ metric = "recon_sse", sampler = "gmm" }', "recon_sse is not a generation metric"),
    ('text = "x"\ndeclared = 2026-12-01', '{ metric = "fid", objectives = ["xz"] }', "objectives must be two different"),
])
def test_a_bad_claims_file_is_one_line_and_exit_2(capsys, tmp_path, claim, line, message):
    folder = write_experiment(tmp_path / "exp", dataset_rows("digits", True, 0.001))
    path = tmp_path / "bad.toml"
    path.write_text(f'ours = "swae"\n[[claim]]\n{claim}\nlines = [{line}]\n')
    code, out, err = run_cli(capsys, "claims", str(folder), "--claims", str(path))
    assert code == 2 and message in err and err.count("\n") == 1 and out == "", err
    code, out, err = run_cli(capsys, "claims", str(folder), "--claims", str(tmp_path / "absent.toml"))
    assert code == 2 and "claims file" in err and "does not exist" in err


def test_out_into_a_document_replaces_only_its_generated_section(tmp_path):
    from aebench.report.claims import BEGIN, END, write_claims

    document = tmp_path / "README.md"
    document.write_text(f"# Title\n\nHand-written text.\n\n{BEGIN} old`; x -->\nold table\n{END}\n\nAfter.\n")
    write_claims(document, "new table\n", "exp --out README.md")
    text = document.read_text()
    assert text.startswith("# Title\n\nHand-written text.\n\n") and text.endswith(f"{END}\n\nAfter.\n")
    assert "new table" in text and "old table" not in text and "`python cli.py claims exp --out README.md`" in text
    write_claims(tmp_path / "plain.md", "only the table\n")  # no section yet: the whole file
    assert (tmp_path / "plain.md").read_text() == "only the table\n"
