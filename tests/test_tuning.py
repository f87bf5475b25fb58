"""`aebench tune`: search spaces, equal budgets, validation-only selection, determinism, resume, tuned.toml."""
import json
import signal
import subprocess

import pandas as pd
import pytest
import torch

import cli
from baselines.vae import VAE
from benchmark import cell
from benchmark.data import load_dataset
from benchmark.evaluation import metric_row
from benchmark.metrics.backbones import CLASSIFIER_VERSION
from benchmark.profiles import get_profile
from benchmark.registry import MODELS
from benchmark.runner import plan
from benchmark.study import load_study, resolve
from benchmark.tuning import TUNING_COLUMNS, plan_tuning, scored_metrics, search_grid
from interrupt import ROOT, cli_command, interrupt_after_first_run
from models.contract import AutoEncoder

# The hyperparameters each model searches (issue 12).
SEARCHED = {"swae": {"beta", "lam", "K"}, "vae": {"warmup_epochs"}, "beta-vae": {"beta_norm"}, "wae": {"lam"},
            "vampprior": {"K", "warmup_epochs"}}
VAL_BEST, TEST_BEST = 20, 50  # the warm-up the fake evaluation favours on validation and on test images


def tune(capsys, tmp_path, *args):
    argv = ["tune", "--dataset", "digits", "--profile", "smoke", "--epochs", "1", "--out", str(tmp_path), "--quiet"]
    code = cli.main(argv + list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def smoke_config(tmp_path, **given) -> dict:
    return resolve({}, {"datasets": "digits", "profile": "smoke", "epochs": "1", "out": str(tmp_path)} | given, {})


def read_table(tmp_path) -> pd.DataFrame:
    return pd.read_csv(tmp_path / "tune-smoke" / "tuning.csv")


@pytest.fixture
def fake_evaluate(monkeypatch, digits):
    """evaluate() replaced by scores that say which images they were given: on the validation images
    the trial whose warm-up is nearest VAL_BEST wins every metric, on the test images the one nearest
    TEST_BEST. Returns the list of splits it was called on."""
    calls = []

    def fake(model, data, config, log=print):
        images = data.test_x.cpu()
        seen = "val" if torch.equal(images, digits.val_x) else "test" if torch.equal(images, digits.test_x) else "?"
        calls.append(seen)
        value = next(float(getattr(model.config, field)) for field in type(model).search_space)
        gap = abs(value - (VAL_BEST if seen == "val" else TEST_BEST))
        return [metric_row(name, score, data.eval_split, len(images)) for name, score in
                (("recon_sse", gap), ("knn5_acc", 1 / (1 + gap)), ("fid", 10 * gap))]

    monkeypatch.setattr(cell, "evaluate", fake)
    return calls


# --------------------------------------------------------------------------- search spaces and the draw


def test_every_model_declares_its_own_search_space_of_valid_values():
    assert AutoEncoder.search_space == {}  # the base class: nothing to tune
    assert {name: set(cls.search_space) for name, cls in MODELS.items()} == SEARCHED
    for name, cls in MODELS.items():
        assert set(cls.search_space) <= cls.Config.field_names()
        for point in search_grid(cls):
            cls.Config.from_overrides(point, name).check_data(50000)  # every declared value is valid


def test_equal_budgets_deterministic_draws_and_k_filtered_by_the_training_set(tmp_path):
    tuning = plan_tuning(smoke_config(tmp_path), 6, "mean-rank")
    counts = {model: len(tuning.trials_of(model)) for model in MODELS}
    grids = {model: len(search_grid(cls)) for model, cls in MODELS.items()}
    assert counts == {model: min(6, grids[model]) for model in MODELS}  # 6 each, or the whole (smaller) grid
    assert counts["vae"] == 5 and counts["swae"] == 6
    assert tuning.spaces["swae"].dropped == 3 * 5 * 2  # K = 2000 and 4000 exceed digits' 1257 training images
    assert all(t.values.get("K", 0) <= 1257 for t in tuning.trials)
    assert len({json.dumps(t.values) for t in tuning.trials_of("swae")}) == 6  # distinct configurations

    again = plan_tuning(smoke_config(tmp_path), 6, "mean-rank")
    assert [t.run_ids for t in again.trials] == [t.run_ids for t in tuning.trials]  # a rerun picks the same
    smaller = plan_tuning(smoke_config(tmp_path), 2, "mean-rank")
    for model in MODELS:  # a larger budget keeps the trials of a smaller one
        assert [t.values for t in smaller.trials_of(model)] == [t.values for t in tuning.trials_of(model)[:2]]


def test_a_trial_has_its_own_run_id_but_the_test_run_s_hyperparameters(tmp_path):
    trial = plan_tuning(smoke_config(tmp_path, models="wae"), 1, "mean-rank").trials[0]
    test_run = plan(get_profile("smoke"), ["wae"], ["digits"], [0], 1, {"wae": trial.values})[0]
    assert trial.specs[0].split == "val" and test_run.split == "test"
    assert trial.specs[0].hparams == test_run.hparams and trial.run_ids[0] != test_run.run_id


# --------------------------------------------------------------------------- the command


def test_selection_uses_the_validation_split_never_the_test_split(capsys, tmp_path, fake_evaluate):
    code, out, _ = tune(capsys, tmp_path, "--models", "vae", "--budget", "6")
    assert code == 0, out
    assert set(fake_evaluate) == {"val"} and len(fake_evaluate) == 5  # the test images were never scored
    table = read_table(tmp_path)
    winner = json.loads(table.loc[table["selected"], "hparams"].item())
    assert winner == {"warmup_epochs": VAL_BEST}  # the test images would have chosen TEST_BEST
    study = load_study(tmp_path / "tune-smoke" / "tuned.toml")
    assert study["hparams"] == {"vae": {"warmup_epochs": VAL_BEST}}
    assert (table["trials"] == 5).all() and (table["budget"] == 6).all() and "its whole grid" in out
    metrics = pd.read_csv(tmp_path / "tune-smoke" / "metrics.csv")
    assert set(metrics["split"]) == {"val"}


def test_tune_twice_does_nothing_and_a_larger_budget_resumes(capsys, tmp_path, fake_evaluate):
    code, out, _ = tune(capsys, tmp_path, "--models", "vae,wae", "--budget", "1")
    assert code == 0 and "2 done" in out
    folder = tmp_path / "tune-smoke"
    before = {name: (folder / name).read_bytes() for name in ("runs.csv", "tuning.csv", "tuned.toml")}
    code, out, _ = tune(capsys, tmp_path, "--models", "vae,wae", "--budget", "1")
    assert code == 0 and "Nothing to do: all 2 trial runs" in out
    assert {name: (folder / name).read_bytes() for name in before} == before
    code, out, _ = tune(capsys, tmp_path, "--models", "vae,wae", "--budget", "2")  # an interrupted tune, resumed
    assert code == 0 and "2 done, 0 failed, 0 lost, 2 recorded earlier" in out
    table = read_table(tmp_path)
    assert table.groupby("model").size().to_dict() == {"vae": 2, "wae": 2} and (table["status"] == "ok").all()
    assert table.groupby("model")["selected"].sum().to_dict() == {"vae": 1, "wae": 1}
    assert list(table.columns[:5]) == TUNING_COLUMNS[:5] and "val_knn5_acc" in table


def test_tuned_toml_is_a_study_that_retrains_the_selected_trials_on_test(capsys, tmp_path, fake_evaluate):
    code, _, _ = tune(capsys, tmp_path, "--models", "vae,wae", "--budget", "2", "--seeds", "0,1")
    assert code == 0
    folder = tmp_path / "tune-smoke"
    text = (folder / "tuned.toml").read_text()
    assert "# budget: 2 trials per model" in text and "criterion: mean-rank" in text and "seeds: [0, 1]" in text
    study = load_study(folder / "tuned.toml")
    assert (study["models"], study["datasets"], study["profile"]) == (["vae", "wae"], ["digits"], "smoke")
    assert study["experiment"] == "tune-smoke-tuned" and study["epochs"] == 1
    assert "tuned by `aebench tune` on the validation split of digits" in study["note"]
    assert "2 trials per model" in study["note"] and "mean-rank" in study["note"]
    config = resolve(study, {"seeds": "0,1"}, {})
    retrained = plan(get_profile("smoke"), config["models"], config["datasets"], config["seeds"], config["epochs"],
                     config["hparams"])
    runs = pd.read_csv(folder / "runs.csv").set_index("run_id")
    table = read_table(tmp_path)
    for row in table[table["selected"]].itertuples():
        trial_ids = row.run_ids.split(";")
        assert json.loads(row.hparams).items() <= study["hparams"][row.model].items()
        test_specs = [s for s in retrained if s.model == row.model]
        assert [json.loads(runs.at[i, "hparams"]) for i in trial_ids] == [s.hparams for s in test_specs]
        assert not {s.run_id for s in test_specs} & set(trial_ids)


def test_a_failed_trial_is_not_a_candidate(capsys, tmp_path, fake_evaluate, monkeypatch):
    fake = cell.evaluate

    def failing(model, data, config, log=print):
        if model.config.warmup_epochs == VAL_BEST:
            raise FloatingPointError("non-finite")
        return fake(model, data, config, log)

    monkeypatch.setattr(cell, "evaluate", failing)
    code, out, _ = tune(capsys, tmp_path, "--models", "vae", "--budget", "5")
    assert code == 1 and "Trials with a failed run: 1" in out
    table = read_table(tmp_path).set_index("hparams")
    assert table.at[json.dumps({"warmup_epochs": VAL_BEST}), "status"] == "failed"
    assert json.loads(table.index[table["selected"]].item()) == {"warmup_epochs": 10}  # the next nearest
    assert (tmp_path / "tune-smoke" / "tuned.toml").exists()


def test_real_evaluation_scores_trials_on_validation_images(capsys, tmp_path):
    code, out, _ = tune(capsys, tmp_path, "--models", "wae", "--budget", "2", "--select-by", "knn5_acc")
    assert code == 0, out
    metrics = pd.read_csv(tmp_path / "tune-smoke" / "metrics.csv", keep_default_na=False)
    samples = get_profile("smoke").eval.fid_samples
    assert set(metrics["split"]) == {"val"} and set(metrics["n"]) == {180, samples}  # digits: 180 validation images
    assert set(metrics.loc[metrics["backbone"] != "", "backbone"]) == {f"classifier-digits-val-v{CLASSIFIER_VERSION}"}
    assert set(scored_metrics(get_profile("smoke").eval)) <= set(metrics["metric"])
    table = read_table(tmp_path)
    assert list(table.columns) == TUNING_COLUMNS[:5] + ["val_knn5_acc"] + TUNING_COLUMNS[5:]
    assert table.loc[table["selected"], "val_knn5_acc"].item() == table["val_knn5_acc"].max()


@pytest.mark.parametrize("args,message", [
    (["--models", "vea", "--budget", "2"], "unknown model 'vea'; choices: "),
    (["--models", "vae", "--budget", "0"], "--budget 0: expected an integer >= 1"),
    (["--models", "vae"], "Missing option '--budget'"),
    (["--models", "vae", "--budget", "2", "--select-by", "fdi"], "--select-by 'fdi': not a metric"),
    (["--models", "vae", "--budget", "2", "--select-by", "active_units"], "--select-by 'active_units': not a metric"),
    (["--models", "vae", "--budget", "2", "--fid-samples", "0"], "mean-rank needs fid"),
    (["--models", "vae", "--budget", "2", "--dataset", "mnist-5k"], "tune one dataset at a time"),
    (["--models", "vae,plain", "--budget", "2"], "model 'plain' declares no search space"),
])
def test_user_mistakes_are_one_line_exit_2_and_write_nothing(capsys, tmp_path, monkeypatch, args, message):
    monkeypatch.setitem(MODELS, "plain", type("Plain", (VAE,), {"search_space": {}}))
    code, out, err = tune(capsys, tmp_path, *args)
    assert code == 2 and message in err and err.count("\n") == 1 and "Traceback" not in err
    assert not any(tmp_path.iterdir())


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_killed_tune_resumes_and_finishes(tmp_path, sig):
    argv = cli_command("tune", "--models", "vae", "--dataset", "digits", "--profile", "smoke", "--budget", "3",
                       "--epochs", "40", "--out", str(tmp_path), "--quiet")
    err = interrupt_after_first_run(argv, tmp_path / "tune-smoke" / "runs.csv", sig)
    assert ("interrupted" in err) == (sig == signal.SIGTERM)
    assert not (tmp_path / "tune-smoke" / "tuning.csv").exists()
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "recorded earlier" in done.stdout
    runs = pd.read_csv(tmp_path / "tune-smoke" / "runs.csv")
    assert len(runs) == 3 and runs["run_id"].is_unique and (read_table(tmp_path)["status"] == "ok").all()


def test_the_validation_view_holds_validation_images_only():
    data = load_dataset("digits", binarize=True)
    view = data.scored_on("val")
    assert view.eval_split == "val" and view.name == "digits-val" and data.scored_on("test") is data
    assert torch.equal(view.test_x, data.val_x) and torch.equal(view.test_y, data.val_y)
    assert torch.equal(view.test_grey, load_dataset("digits").val_x)  # the FID reference: grey validation images
    assert torch.equal(view.train_x, data.train_x) and view.to("cpu").eval_split == "val"


def test_every_committed_study_file_plans_a_grid():
    """studies/*.toml: each loads and resolves to cells of known models, datasets and profile."""
    from pathlib import Path

    from benchmark.profiles import get_profile
    from benchmark.runner import plan
    from benchmark.study import load_study, resolve

    files = sorted((Path(__file__).resolve().parent.parent / "studies").glob("*.toml"))
    assert files
    for path in files:
        config = resolve(load_study(path), {}, {}, path)
        specs = plan(get_profile(config["profile"]), config["models"], config["datasets"], config["seeds"],
                     overrides=config["hparams"])
        assert specs and config["out"] == "results/reference" and config["experiment"] == path.stem, path.name


def test_tune_takes_a_study_file_but_not_its_hyperparameters(tmp_path, capsys):
    from cli import main

    study = tmp_path / "study.toml"
    study.write_text('models = ["wae"]\nprofile = "smoke"\n[hparams.wae]\nlam = 3.0\n')
    assert main(["tune", "--config", str(study), "--budget", "2"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "tune chooses the hyperparameters itself" in err
