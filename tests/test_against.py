"""`report EXPERIMENT --against REFERENCE`: a plug-in model (tests/toy_plugin's `mytoy`, installed
through its entry point) set beside the committed small reference tests/data/reference-smoke (vae and
swae on digits, seeds 0 and 1), whose runs are read and never retrained; any setting that differs is a
one-line refusal naming it, exit 2, with nothing written."""
from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
import pytest

import cli
from aebench.tune.first import trials_per_model

REFERENCE = Path(__file__).resolve().parent / "data" / "reference-smoke"
# the reference's settings (tests/data/README.md)
SETTINGS = ["--profile", "smoke", "--dataset", "digits", "--seeds", "0,1", "--epochs", "8", "--fid-samples", "200"]


def run_cli(capsys, *argv):
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _run(capsys, out: Path, experiment: str, *changes):
    settings = list(SETTINGS)
    for flag, value in zip(changes[::2], changes[1::2]):
        settings[settings.index(flag) + 1] = value
    code, _, err = run_cli(capsys, "run", "--models", "mytoy", *settings, "--out", str(out),
                           "--experiment", experiment, "--quiet")
    assert code == 0, err
    return out / experiment


def _digest(folder: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(folder)).encode() + path.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def mine(tmp_path_factory):
    out = tmp_path_factory.mktemp("against")
    code = cli.main(["run", "--models", "mytoy", *SETTINGS, "--out", str(out), "--experiment", "mine", "--quiet"])
    assert code == 0
    return out / "mine"


def test_a_plugin_is_reported_beside_the_reference_without_retraining_it(capsys, mine):
    before = _digest(REFERENCE)
    code, out, err = run_cli(capsys, "report", str(mine), "--against", str(REFERENCE), "--no-figures")
    assert code == 0, err
    assert _digest(REFERENCE) == before  # read, never written
    assert set(pd.read_csv(mine / "runs.csv")["model"]) == {"mytoy"}  # nothing of the reference was copied
    summary = pd.read_csv(mine / "summary.csv")
    assert set(summary["model"]) == {"mytoy", "vae", "swae"}
    # the baselines' numbers are the reference's own: its metrics.csv, averaged over its seeds
    reference = pd.read_csv(REFERENCE / "metrics.csv")
    expected = reference[(reference["model"] == "vae") & (reference["metric"] == "recon_sse")]["value"].mean()
    got = summary[(summary["model"] == "vae") & (summary["metric"] == "recon_sse")]["mean"].iloc[0]
    assert got == pytest.approx(expected, rel=1e-12)
    # the same tests for every model: paired comparisons of mytoy with each baseline, per-image intervals for all
    comparisons = pd.read_csv(mine / "comparisons.csv")
    recon = comparisons[comparisons["column"] == "recon_sse"]
    assert {frozenset(pair) for pair in zip(recon["model_a"], recon["model_b"])} == {
        frozenset(("mytoy", "vae")), frozenset(("mytoy", "swae")), frozenset(("vae", "swae"))}
    assert (recon["n_pairs"] == 2).all()  # paired by seed across the two folders
    assert summary[summary["metric"] == "recon_sse"]["ci_low"].notna().all()  # per-image files of both folders
    report = (mine / "report.md").read_text()
    assert "**Against a reference.** The runs of swae, vae are read from `reference-smoke`" in report


@pytest.mark.parametrize("changes, message", [
    (("--seeds", "0"), "seeds on digits differ: yours [0], the reference's [0, 1]; run your model with --seeds 0,1"),
    (("--fid-samples", "100"), "the evaluation settings on digits differ: fid_samples (yours 100; reference 200)"),
    (("--epochs", "5"), "the training settings on digits differ: epochs (yours 5; reference 8)"),
])
def test_a_setting_that_differs_is_refused_naming_it(capsys, tmp_path, changes, message):
    folder = _run(capsys, tmp_path, "other", *changes)
    before = _digest(folder)
    code, _, err = run_cli(capsys, "report", str(folder), "--against", str(REFERENCE))
    assert code == 2 and message in err and err.count("\n") == 1 and "Traceback" not in err, err
    assert _digest(folder) == before and not (folder / "report.md").exists()


def test_another_dataset_or_a_model_in_both_folders_is_refused(capsys, tmp_path):
    code, _, err = run_cli(capsys, "run", "--models", "vae", *SETTINGS, "--out", str(tmp_path), "--experiment",
                           "both", "--quiet")
    assert code == 0, err
    code, _, err = run_cli(capsys, "report", str(tmp_path / "both"), "--against", str(REFERENCE))
    assert code == 2 and "vae ran in both folders" in err and err.count("\n") == 1
    code, _, err = run_cli(capsys, "report", str(tmp_path / "both"), "--against", str(tmp_path / "missing"))
    assert code == 2 and "not found" in err and err.count("\n") == 1


def _study(folder: Path, extra: str = "") -> Path:
    """The reference's study file with `extra` appended, in `folder`."""
    study = folder / "study.toml"
    study.write_text((REFERENCE.parent / "reference-smoke.toml").read_text() + extra)
    return study


@pytest.mark.parametrize("extra, flags, message", [
    ("", ["--tune-first"], "--tune-first needs --budget B"),
    ("", ["--budget", "2"], "--budget is the trials per model of --tune-first"),
    ("tuning_budget = 2\n", ["--tune-first", "--budget", "3"],
     ("--budget 3: the study's models were tuned with 2 trials each (tuning_budget = 2), and a model added to it "
      "gets the same budget; leave --budget out or give --budget 2")),
])
def test_tune_first_and_budget_go_together(capsys, tmp_path, extra, flags, message):
    out = tmp_path / "out"
    code, _, err = run_cli(capsys, "run", "--config", str(_study(tmp_path, extra)), "--models", "mytoy", *flags,
                           "--out", str(out), "--experiment", "mine")
    assert code == 2 and message in err and err.count("\n") == 1 and not out.exists(), err


@pytest.mark.parametrize("recorded, given, budget", [(None, 3, 3), (4, None, 4), (4, 4, 4)])
def test_the_tune_first_budget_is_the_recorded_one_or_the_given_one(recorded, given, budget):
    config = {} if recorded is None else {"tuning_budget": recorded}
    assert trials_per_model(config, given) == budget


@pytest.mark.parametrize("recorded, flags", [("", ["--budget", "2"]), ("tuning_budget = 2\n", [])],
                         ids=["budget-given", "budget-recorded"])
def test_tune_first_tunes_only_the_models_the_study_leaves_untuned(capsys, tmp_path, recorded, flags):
    study = _study(tmp_path, recorded + "\n[hparams.vae]\nwarmup_epochs = 5\n")
    code, out, err = run_cli(capsys, "run", "--config", str(study), "--models", "vae,mytoy", "--tune-first",
                             *flags, "--out", str(tmp_path), "--experiment", "mine", "--quiet")
    assert code == 0, err
    tuning = pd.read_csv(tmp_path / "mine-tune" / "tuning.csv")
    assert set(tuning["model"]) == {"mytoy"}  # vae keeps the study's
    assert list(tuning["trial"]) == [1, 2] and set(tuning["budget"]) == {2}
    runs = pd.read_csv(tmp_path / "mine" / "runs.csv")
    assert sorted(runs["model"]) == ["mytoy", "mytoy", "vae", "vae"]
    assert all('"warmup_epochs": 5' in h for h in runs[runs["model"] == "vae"]["hparams"])
