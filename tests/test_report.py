"""The report on a hand-made experiment whose every number is known in advance."""
from __future__ import annotations

import math
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import cli
from aebench.errors import UserError
from aebench.metrics.directions import direction
from aebench.report.summary import significance, summarize
from aebench.report.writer import write_report
from aebench.store.values import load_results, resolve_experiment

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# (model, seed) -> {column: value}; the failed vae seed 2 has rows that must never count.
VALUES = {
    ("vae", 0): {"knn5_acc": 0.80, "recon_sse": 10.0, "fid@inception-pool3": 30.0, "mystery": 1.0},
    ("vae", 1): {"knn5_acc": 0.90, "recon_sse": 14.0, "fid@inception-pool3": 34.0, "mystery": 3.0},
    ("swae", 0): {"knn5_acc": 0.90, "recon_sse": 11.0, "fid@inception-pool3": 20.0, "mystery": 5.0,
                  "fid@classifier-digits-v1": 7.0},
    ("swae", 1): {"knn5_acc": 0.94, "recon_sse": 15.0, "fid@inception-pool3": 22.0, "mystery": 9.0,
                  "fid@classifier-digits-v1": 9.0},
    ("vae", 2): {"knn5_acc": 0.0, "recon_sse": 999.0},
}
FAILED = {("vae", 2)}


def write_experiment(folder, values=VALUES, failed=FAILED, dataset="digits"):
    """metrics.csv and runs.csv as the runner writes them, for the given values."""
    folder.mkdir(parents=True, exist_ok=True)
    metrics, runs = [], []
    for (model, seed), row in values.items():
        run_id = f"{model}_{dataset}_s{seed}_abcd1234"
        status = "failed" if (model, seed) in failed else "ok"
        runs.append({"run_id": run_id, "model": model, "dataset": dataset, "seed": seed, "profile": "smoke",
                     "status": status, "reason": "non-finite loss" if status == "failed" else "",
                     "config_hash": "abcd1234", "hparams": '{"latent_dim": 8}'})
        for key, value in row.items():
            metric, _, backbone = key.partition("@")
            n = 1000 if metric.startswith("fid") else 360
            metrics.append({"run_id": run_id, "model": model, "dataset": dataset, "seed": seed, "metric": metric,
                            "value": value, "split": "test", "n": n, "backbone": backbone})
    pd.DataFrame(metrics).to_csv(folder / "metrics.csv", index=False)
    pd.DataFrame(runs).to_csv(folder / "runs.csv", index=False)
    return folder


def row(summary, model, column):
    found = summary[(summary["model"] == model) & (summary["column"] == column)]
    assert len(found) == 1, (model, column, found)
    return found.iloc[0]


@pytest.fixture
def experiment(tmp_path):
    return write_experiment(tmp_path / "results" / "exp")


def test_direction_table():
    assert direction("knn5_acc") == direction("linear_acc") == direction("trustworthiness_k10") == "max"
    assert direction("recon_sse") == direction("fid") == direction("fid_recon") == direction("denoise_sse_s0.1") == "min"
    assert direction("continuity_k10") == "max"
    assert direction("mystery") is None and direction("fid_backbone_acc") is None  # describes the backbone


def test_means_stds_and_seed_counts_are_exact(experiment):
    summary = summarize(load_results(experiment).values)
    expected = {  # (model, column): (mean, sample std with ddof=1, seeds), worked out by hand
        ("vae", "knn5_acc"): (0.85, math.sqrt(0.005), 2),
        ("swae", "knn5_acc"): (0.92, math.sqrt(0.0008), 2),
        ("vae", "recon_sse"): (12.0, math.sqrt(8.0), 2),
        ("swae", "recon_sse"): (13.0, math.sqrt(8.0), 2),
        ("vae", "fid [inception-pool3]"): (32.0, math.sqrt(8.0), 2),
        ("swae", "fid [inception-pool3]"): (21.0, math.sqrt(2.0), 2),
        ("swae", "fid [classifier-digits-v1]"): (8.0, math.sqrt(2.0), 2),
        ("vae", "mystery"): (2.0, math.sqrt(2.0), 2),
        ("swae", "mystery"): (7.0, math.sqrt(8.0), 2),
    }
    assert len(summary) == len(expected)  # the failed run adds nothing, backbones are not merged
    for (model, column), (mean, std, seeds) in expected.items():
        r = row(summary, model, column)
        assert r["mean"] == pytest.approx(mean, abs=1e-12)
        assert r["std"] == pytest.approx(std, abs=1e-12)
        assert r["n_seeds"] == seeds


def test_marks_need_a_direction_and_two_models(experiment):
    _, marks = significance(load_results(experiment).values)
    marked = {(r.label, r.column): r.mark for r in marks.itertuples() if r.mark}
    # Two seeds each: no difference is significant (knn5_acc p = 0.26, FID p = 0.058, recon_sse a constant
    # difference: untestable), so both models tie in each ranked column; mystery has no direction and the
    # classifier FID has one model only: neither is marked.
    columns = ("knn5_acc", "recon_sse", "fid [inception-pool3]")
    assert marked == {(model, column): "tie" for model in ("vae", "swae") for column in columns}


def test_mean_rank_averages_the_ranked_columns(experiment):
    from aebench.report.summary import mean_ranks

    ranks = mean_ranks(summarize(load_results(experiment).values))
    # ranked columns: knn5_acc, recon_sse, fid [inception-pool3]
    assert ranks[("digits", "swae")] == pytest.approx((1 + 2 + 1) / 3)
    assert ranks[("digits", "vae")] == pytest.approx((2 + 1 + 2) / 3)


def test_ties_share_the_tie_mark_and_the_rank(tmp_path):
    values = {(m, s): {"knn5_acc": 0.5 + 0.25 * s} for m in ("a", "b") for s in (0, 1)}
    loaded = load_results(write_experiment(tmp_path / "tie", values, set())).values
    assert (significance(loaded)[1]["mark"] == "tie").all()
    assert (summarize(loaded)["rank"] == 1.5).all()


def test_report_files_tables_and_terminal(experiment):
    outcome = write_report(experiment, figures=False)
    for name in ("report.md", "summary.csv", "tables.tex"):
        assert (experiment / name).is_file()

    tidy = pd.read_csv(experiment / "summary.csv", keep_default_na=False)
    assert list(tidy.columns) == ["model", "dataset", "metric", "split", "n", "backbone", "mean", "std", "n_seeds"]
    fid = tidy[tidy["metric"] == "fid"].set_index(["model", "backbone"])
    assert set(fid.index) == {("vae", "inception-pool3"), ("swae", "inception-pool3"), ("swae", "classifier-digits-v1")}
    assert fid.loc[("swae", "classifier-digits-v1"), "mean"] == pytest.approx(8.0)
    assert (fid["n"] == 1000).all() and (tidy[tidy["metric"] == "knn5_acc"]["n"] == 360).all()

    md = (experiment / "report.md").read_text()
    vae_row = next(line for line in md.splitlines() if line.startswith("| vae |"))
    swae_row = next(line for line in md.splitlines() if line.startswith("| swae |"))
    assert "| 12.0 ± 2.8 ≈ |" in vae_row and "| 0.850 ± 0.071 ≈ |" in vae_row and "1.67 |" in vae_row
    assert "| 0.920 ± 0.028 ≈ |" in swae_row and "| 21.0 ± 1.4 ≈ |" in swae_row and "| 8.0 ± 1.4 |" in swae_row
    assert "**" not in vae_row + swae_row  # two seeds: no difference is significant
    assert "fid [inception-pool3] ↓" in md and "fid [classifier-digits-v1] ↓" in md and "| mystery |" in md
    assert "vae_digits_s2_abcd1234" in md and "non-finite loss" in md  # the failed run, listed apart

    tex = (experiment / "tables.tex").read_text()
    assert all(word in tex for word in (r"\toprule", r"\midrule", r"\bottomrule", r"knn5\_acc $\uparrow$"))
    assert r"12.0 $\pm$ 2.8 $\approx$ &" in tex and r"0.920 $\pm$ 0.028 $\approx$ &" in tex
    assert r"\textbf{" not in tex.split(r"\midrule")[1]

    assert "0.920 +- 0.028 ~" in outcome.terminal and "12.0 +- 2.8 ~" in outcome.terminal


def test_single_seed_has_no_std_and_fewer_seeds_are_flagged(tmp_path):
    values = {("vae", 0): {"knn5_acc": 0.5, "fid@x": 3.0}, ("vae", 1): {"knn5_acc": 0.75}}
    folder = write_experiment(tmp_path / "e", values, set())
    summary = summarize(load_results(folder).values)
    assert math.isnan(row(summary, "vae", "fid [x]")["std"]) and row(summary, "vae", "fid [x]")["n_seeds"] == 1
    write_report(folder, figures=False)
    assert "| 3 (n=1) |" in (folder / "report.md").read_text()


def test_varying_qualifiers_split_columns(tmp_path):
    folder = write_experiment(tmp_path / "e", {("a", 0): {"fid@x": 1.0}, ("b", 0): {"fid@x": 2.0}}, set())
    metrics = pd.read_csv(folder / "metrics.csv")
    metrics.loc[metrics["model"] == "b", "n"] = 500
    metrics.to_csv(folder / "metrics.csv", index=False)
    columns = set(load_results(folder).values["column"])
    assert columns == {"fid [x, n=1000]", "fid [x, n=500]"}


def test_same_model_with_two_configurations_is_not_merged(tmp_path):
    folder = write_experiment(tmp_path / "e", {("vae", 0): {"knn5_acc": 0.5}, ("vae", 1): {"knn5_acc": 0.75}}, set())
    runs = pd.read_csv(folder / "runs.csv")
    runs.loc[1, "hparams"] = '{"latent_dim": 16}'
    runs.to_csv(folder / "runs.csv", index=False)
    labels = sorted(load_results(folder).values["label"].unique())
    assert len(labels) == 2 and all(label.startswith("vae (") for label in labels)


def is_png(path):
    assert path.read_bytes()[:8] == PNG_SIGNATURE, path
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        return image.size


def test_figures_are_png_and_the_report_works_without_checkpoints(experiment):
    (experiment / "history").mkdir()
    (experiment / "samples").mkdir()
    for (model, seed) in VALUES:
        run_id = f"{model}_digits_s{seed}_abcd1234"
        epochs = np.arange(1, 6)
        pd.DataFrame({"epoch": epochs, "train_loss": 10.0 / epochs, "train_kl": 1.0 * epochs,
                      "val_loss": 11.0 / epochs, "val_kl": 1.1 * epochs, "seconds": 0.1}).to_csv(
            experiment / "history" / f"{run_id}.csv", index=False)
        Image.fromarray(np.full((80, 80), 40 * seed, np.uint8)).save(experiment / "samples" / f"{run_id}.png")

    outcome = write_report(experiment)
    figures = experiment / "figures"
    for name in ("metrics.png", "curves_digits.png", "samples_digits.png"):
        width, height = is_png(figures / name)
        assert width > 100 and height > 100
    assert not (figures / "reconstructions_digits.png").exists()
    md = (experiment / "report.md").read_text()
    for name in ("metrics.png", "curves_digits.png", "samples_digits.png"):
        assert f"](figures/{name})" in md
    assert "no checkpoint" in md and any("no checkpoint" in note for note in outcome.notes)


def test_missing_training_history_is_noted_only_for_runs_that_trained(experiment):
    runs = pd.read_csv(experiment / "runs.csv")
    runs.assign(weights_from=np.where(runs["model"] == "swae", "a_trained_run", "")).to_csv(
        experiment / "runs.csv", index=False)
    history_notes = [note for note in write_report(experiment).notes if "no training history" in note]
    # the swae runs are rescored: they scored another run's weights, so they have no history of their own
    assert history_notes == ["digits: no training history for vae_digits_s0_abcd1234, vae_digits_s1_abcd1234"]


def test_reconstructions_and_latent_maps_from_checkpoints(tmp_path):
    import torch

    from aebench.catalog.models import build_model
    from aebench.store.checkpoints import checkpoint_bytes

    values = {("vae", 0): {"knn5_acc": 0.5}, ("vae", 1): {"knn5_acc": 0.75}}
    folder = write_experiment(tmp_path / "e", values, set())
    (folder / "checkpoints").mkdir()
    torch.manual_seed(0)
    model = build_model("vae", (1, 8, 8), {"latent_dim": 3, "arch": "mlp"})
    checkpoint = checkpoint_bytes(model, "vae", {"latent_dim": 3, "arch": "mlp"}, "vae_digits_s0_abcd1234")
    (folder / "checkpoints" / "vae_digits_s0_abcd1234.pt").write_bytes(checkpoint)
    outcome = write_report(folder)
    assert is_png(folder / "figures" / "reconstructions_digits.png")
    assert is_png(folder / "figures" / "latents_digits.png")
    md = (folder / "report.md").read_text()
    assert "](figures/reconstructions_digits.png)" in md and "](figures/latents_digits.png)" in md
    assert not any("checkpoint" in note for note in outcome.notes)  # seed 0 stands for vae and has one


def test_missing_data_is_a_note_not_an_error(tmp_path):
    folder = write_experiment(tmp_path / "e", {("vae", 0): {"knn5_acc": 0.5}}, set(), dataset="mnist")
    outcome = write_report(folder)
    assert any("mnist" in note and "could not be loaded" in note for note in outcome.notes)
    assert "could not be loaded" in (folder / "report.md").read_text()


def test_resolve_experiment_by_name_path_and_latest(tmp_path):
    out = tmp_path / "results"
    old, new = write_experiment(out / "old"), write_experiment(out / "new")
    (out / "not-an-experiment").mkdir()
    os.utime(old / "runs.csv", (1e9, 1e9))
    os.utime(old / "metrics.csv", (1e9, 1e9))
    assert resolve_experiment(None, out) == new
    assert resolve_experiment("old", out) == old
    assert resolve_experiment(str(old), tmp_path / "elsewhere") == old
    with pytest.raises(UserError, match=r"experiment 'nope' not found.*experiments under .*: new, old"):
        resolve_experiment("nope", out)
    with pytest.raises(UserError, match="no experiment found"):
        resolve_experiment(None, tmp_path / "empty")
    with pytest.raises(UserError, match="holds no results"):
        resolve_experiment("not-an-experiment", out)


def test_no_successful_results_is_a_user_error(tmp_path):
    folder = write_experiment(tmp_path / "e", {("vae", 0): {"knn5_acc": 0.5}}, {("vae", 0)})
    with pytest.raises(UserError, match=r"no metric values of successful runs \(1 runs recorded, 1 failed"):
        load_results(folder)


def test_cli_report_prints_the_table_and_errors_in_one_line(experiment, capsys):
    assert cli.main(["report", "exp", "--out", str(experiment.parent), "--no-figures"]) == 0
    out = capsys.readouterr().out
    assert "0.920 +- 0.028 ~" in out and "report.md" in out
    assert cli.main(["report", "missing", "--out", str(experiment.parent)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "experiment 'missing' not found" in err and "exp" in err


def test_values_of_runs_stopped_by_the_cap_are_marked_under_trained(tmp_path):
    folder = write_experiment(tmp_path / "e")
    runs = pd.read_csv(folder / "runs.csv")
    runs["stopped"] = ["cap", "patience", "patience", "patience", ""]  # vae seed 0 hit the epoch cap
    runs.to_csv(folder / "runs.csv", index=False)
    write_report(folder, figures=False)
    md = (folder / "report.md").read_text()
    vae_row = next(line for line in md.splitlines() if line.startswith("| vae |"))
    swae_row = next(line for line in md.splitlines() if line.startswith("| swae |"))
    assert "2 (1 under-trained)" in vae_row and vae_row.count("†") >= 3 and "†" not in swae_row
    assert "under-trained" in md and "vae 1 of 2" in md


def test_cost_line_sums_run_time_and_measures_wall_time_of_parallel_runs():
    import pandas as pd

    from aebench.report.writer import cost_line

    runs = pd.DataFrame({"train_seconds": [50.0, 60.0, 100.0], "eval_seconds": [10.0, 12.0, 20.0],
                         "finished_at": ["2026-11-30T10:01:00+00:00", "2026-11-30T10:01:12+00:00",
                                         "2026-11-30T10:03:12+00:00"]})
    # two jobs: runs 1 and 2 start at 10:00:00, run 3 starts at 10:01:12 (when run 2 ends) and ends 10:03:12
    line = cost_line(runs)
    assert "4.2 min of training and evaluation" in line and "wall time 3.2 min" in line
    assert cost_line(runs.assign(finished_at=["", "", ""])) == ""  # unknown times: no claim
    # resumed a day later: the third run starts 2026-12-01 at 10:00:00; the night between is not wall time
    resumed = runs.assign(finished_at=runs["finished_at"].where(runs.index < 2, "2026-12-01T10:02:00+00:00"))
    assert "wall time 3.2 min" in cost_line(resumed)  # 1.2 min on the first day, 2 min on the second


def test_a_tuning_folders_report_shows_each_models_trade_off_figure(tmp_path):
    """The committed protocol v1 tuning (5 models, 4 trials each): one trade-off figure per model, linked."""
    source = Path(__file__).resolve().parent.parent / "results" / "reference" / "tune-quick-mnist-5k"
    for name in ("runs.csv", "metrics.csv", "config.json", "tuning.csv"):
        shutil.copy(source / name, tmp_path / name)
    write_report(tmp_path, figures=True)
    report = (tmp_path / "report.md").read_text()
    for model in ("swae", "vae", "beta-vae", "wae", "vampprior"):
        assert (tmp_path / "figures" / f"tradeoff-{model}.png").stat().st_size > 0
        assert f"](figures/tradeoff-{model}.png)" in report
