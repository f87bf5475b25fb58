"""`aebench tune`: search spaces, equal budgets, seeded Optuna draws, validation-only selection, resume,
edges and widening, tuned.toml, the trade-off figure."""
import json
import math
import signal
import subprocess
from collections import deque

import pandas as pd
import pytest
import torch
from interrupt import ROOT, cli_command, interrupt_after_first_run

import cli
from aebench.catalog.models import MODELS
from aebench.data.datasets import load_dataset
from aebench.features.backbones import CLASSIFIER_VERSION
from aebench.run import cell, executors
from aebench.run.evaluation import metric_row
from aebench.run.profiles import get_profile, model_settings
from aebench.run.runner import plan
from aebench.run.study import load_study, resolve
from aebench.tune import search as tuning_search
from aebench.tune import tuner as tuning
from aebench.tune.search_space import Dimension, ModelSpace, model_space
from aebench.tune.tuner import RANKED_METRICS, TUNING_COLUMNS, make_trial, plan_tuning, scored_metrics
from baselines.beta_vae import BetaVAE
from baselines.vae import VAE
from models.contract import AutoEncoder, FloatRange, IntRange

# The hyperparameters each model searches (issue 12).
SEARCHED = {"swae": {"beta", "lam", "K"}, "vae": {"warmup_epochs"}, "beta-vae": {"beta_norm"}, "wae": {"lam"},
            "vampprior": {"K", "warmup_epochs"}}
# The authors' published settings (issue 26), in the units each space is searched in.
PUBLISHED = [("swae", "beta", 0.5), ("swae", "lam", 1.0), ("swae", "K", 4000), ("wae", "lam", 200.0),
             ("wae", "lam", 2000.0), ("vampprior", "K", 500), ("vampprior", "warmup_epochs", 100),
             ("beta-vae", "beta", 4.0), ("vae", "warmup_epochs", 100)]
MNIST_SHAPE, MNIST_TRAIN, DIGITS_TRAIN = (1, 28, 28), 50000, 1257
VAL_BEST, TEST_BEST = 20, 50  # the warm-up the fake evaluation favours on validation and on test images


def tune(capsys, tmp_path, *args):
    argv = ["tune", "--dataset", "digits", "--profile", "smoke", "--epochs", "1", "--out", str(tmp_path), "--quiet"]
    code = cli.main(argv + list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def smoke_config(tmp_path, **given) -> dict:
    return resolve({}, {"datasets": "digits", "profile": "smoke", "epochs": "1", "out": str(tmp_path)} | given, {})


def read_table(tmp_path) -> pd.DataFrame:
    return pd.read_csv(tmp_path / "tune-smoke" / "tuning.csv", keep_default_na=False, na_values=[""])


def drawn(tmp_path) -> list[tuple[str, int, dict]]:
    """(model, trial, hyperparameters) of every trial in tuning.csv."""
    table = read_table(tmp_path)
    return [(row.model, row.trial, json.loads(row.hparams)) for row in table.itertuples()]


def standard_space(model: str, n_train: int = MNIST_TRAIN, shape=MNIST_SHAPE, **widen) -> ModelSpace:
    cls = MODELS[model]
    return model_space(model, cls, model_settings(get_profile("standard"), cls), n_train, shape, widen=widen)


@pytest.fixture
def fake_evaluate(monkeypatch, digits):
    """evaluate() replaced by scores that say which images they were given: on the validation images
    the trial whose searched value is nearest VAL_BEST wins every metric, on the test images the one nearest
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


@pytest.fixture
def tpe_early(monkeypatch):
    """TPE from the second trial on, so that later draws depend on earlier results."""
    monkeypatch.setattr(tuning_search, "STARTUP_TRIALS", 1)


# --------------------------------------------------------------------------- search spaces and the draw


def test_every_model_declares_its_own_search_space_of_valid_values():
    assert AutoEncoder.search_space == {}  # the base class: nothing to tune
    assert {name: set(cls.search_space) for name, cls in MODELS.items()} == SEARCHED
    for name, cls in MODELS.items():
        assert set(cls.search_space) <= cls.Config.field_names()
        space = standard_space(name)  # raises if a bound is not a valid value
        assert all(d.is_range for d in space.dimensions) and not any(d.cap for d in space.dimensions)


@pytest.mark.parametrize("model,name,value", PUBLISHED, ids=lambda x: str(x))
def test_every_space_holds_its_authors_setting_away_from_its_edges(model, name, value):
    (dimension,) = [d for d in standard_space(model).dimensions if d.name == name]
    assert 0.1 < dimension.position(value) < 0.9, dimension.describe()


@pytest.mark.parametrize("shape,settings", [((1, 8, 8), "smoke"), (MNIST_SHAPE, "quick"), (MNIST_SHAPE, "standard")])
def test_beta_vae_searches_raw_beta_above_one_only(shape, settings):
    cls = MODELS["beta-vae"]
    base = model_settings(get_profile(settings), cls)
    (dimension,) = model_space("beta-vae", cls, base, MNIST_TRAIN, shape).dimensions
    for drawn_beta in (dimension.domain.low, 4.0, dimension.domain.high):
        config = cls.Config.from_overrides(base | {"beta_norm": dimension.field_value(drawn_beta)}, "beta-vae")
        assert BetaVAE(shape, config).kl_weight == pytest.approx(drawn_beta)  # the weight the loss gives the KL
    assert dimension.domain.low > 1


def test_the_k_bound_is_lowered_to_the_training_set(tmp_path):
    spaces = plan_tuning(smoke_config(tmp_path, models="swae,vampprior"), 2, "mean-rank").spaces
    for model in ("swae", "vampprior"):
        (k,) = [d for d in spaces[model].dimensions if d.name == "K"]
        assert (k.domain.high, k.cap) == (DIGITS_TRAIN, f"capped by the {DIGITS_TRAIN} training images")
        assert spaces[model].on_edge({"K": DIGITS_TRAIN, "warmup_epochs": 20, "beta": 0.5, "lam": 1.0}) == \
            [f"K (high bound {DIGITS_TRAIN}, capped by the {DIGITS_TRAIN} training images)"]
    assert not any(tmp_path.iterdir())  # planning writes nothing


def quick_vampprior_space(**given) -> ModelSpace:
    """VampPrior's space on the quick profile (300 epochs at most) and mnist-5k's 3500 training images."""
    cls = MODELS["vampprior"]
    return model_space("vampprior", cls, model_settings(get_profile("quick"), cls), 3500, MNIST_SHAPE,
                       **{"epochs": get_profile("quick").train.epochs} | given)


def warm_up(space: ModelSpace) -> Dimension:
    (dimension,) = [d for d in space.dimensions if d.name == "warmup_epochs"]
    return dimension


def test_a_warm_up_is_widened_no_further_than_the_training_epochs():
    assert get_profile("quick").train.epochs == 300
    on_high_edge = {"K": 500, "warmup_epochs": 190}  # of the declared 1..200 (log)
    assert quick_vampprior_space().widen_hints(on_high_edge) == ["--widen vampprior.warmup_epochs=1:300"]  # not 1:2000
    assert quick_vampprior_space(epochs=None).widen_hints(on_high_edge) == ["--widen vampprior.warmup_epochs=1:2000"]
    # widened to the cap (as tune-quick-mnist-5k-v2 was), or asked past it: like K at the training images
    for space in (quick_vampprior_space(earlier={"warmup_epochs": [1, 300]}),
                  quick_vampprior_space(widen={"warmup_epochs": (1, 2000)})):
        assert (warm_up(space).domain.high, warm_up(space).cap) == (300, "capped by the 300 training epochs")
        at_cap = {"K": 500, "warmup_epochs": 300}
        assert space.on_edge(at_cap) == ["warmup_epochs (high bound 300, capped by the 300 training epochs)"]
        assert space.widen_hints(at_cap) == []
    # fewer epochs than the declared range: the range keeps its authors' 100 but is not widened further
    short = quick_vampprior_space(epochs=50)
    assert (warm_up(short).domain.high, warm_up(short).cap) == (200, "above the 50 training epochs")
    assert short.widen_hints(on_high_edge) == []
    assert warm_up(quick_vampprior_space(epochs=50, widen={"warmup_epochs": (1, 400)})).domain.high == 200


@pytest.mark.parametrize("epochs, hint", [("150", []), ("1000", ["--widen vae.warmup_epochs=1:1000"])])
def test_the_warm_up_cap_is_the_epochs_a_trial_trains(tmp_path, epochs, hint):
    space = plan_tuning(smoke_config(tmp_path, models="vae", epochs=epochs), 2, "mean-rank").spaces["vae"]
    assert space.widen_hints({"warmup_epochs": 190}) == hint
    default = plan_tuning(smoke_config(tmp_path, models="vae", epochs=None), 2, "mean-rank").spaces["vae"]
    assert warm_up(default).limit == get_profile("smoke").train.epochs == 300


def test_a_value_within_ten_percent_of_a_bound_in_its_scale_is_on_the_edge():
    space = ModelSpace("m", (Dimension("lam", "lam", FloatRange(0.01, 100.0, log=True), FloatRange(0.01, 100.0, log=True)),
                             Dimension("beta", "beta", FloatRange(0.0, 1.0), FloatRange(0.0, 1.0))))
    assert space.on_edge({"lam": 1.0, "beta": 0.5}) == []
    assert space.on_edge({"lam": 0.025, "beta": 0.5}) == ["lam (low bound 0.01)"]  # 0.1 of four decades: 0.0251
    assert space.on_edge({"lam": 0.03, "beta": 0.95}) == ["beta (high bound 1)"]
    assert space.widen_hints({"lam": 60.0, "beta": 0.05}) == ["--widen m.lam=0.01:1000",
                                                               "--widen m.beta=LOW:HIGH (now 0..1)"]


def test_draws_are_seeded_by_model_and_dataset(tmp_path):
    space = standard_space("swae")

    def first_draws(folder, dataset, model="swae"):
        study = tuning_search.open_study(folder, "s", ["minimize"])
        return [tuning_search.ask(study, space, tuning_search.draw_seed(model, dataset, n))[1] for n in (1, 2)]

    mnist = first_draws(tmp_path / "a", "mnist")
    assert first_draws(tmp_path / "b", "mnist") == mnist  # another folder, another process state: the same
    assert first_draws(tmp_path / "c", "fashion-mnist") != mnist
    assert first_draws(tmp_path / "d", "mnist", "swae-xz") != mnist
    assert mnist[0] != mnist[1]


def test_a_trial_has_its_own_run_id_but_the_test_run_s_hyperparameters(tmp_path):
    tuning = plan_tuning(smoke_config(tmp_path, models="wae"), 1, "mean-rank")
    trial = make_trial(tuning, get_profile("smoke"), "wae", 1, {"lam": 200.0})
    test_run = plan(get_profile("smoke"), ["wae"], ["digits"], [0], 1, {"wae": trial.values})[0]
    assert trial.specs[0].split == "val" and test_run.split == "test"
    assert trial.specs[0].hparams == test_run.hparams and trial.run_ids[0] != test_run.run_id


# --------------------------------------------------------------------------- the command


def test_selection_uses_the_validation_split_never_the_test_split(capsys, tmp_path, fake_evaluate):
    code, out, _ = tune(capsys, tmp_path, "--models", "vae", "--budget", "3")
    assert code == 0, out
    assert set(fake_evaluate) == {"val"} and len(fake_evaluate) == 3  # the test images were never scored
    warmups = [values["warmup_epochs"] for _, _, values in drawn(tmp_path)]
    nearest = min(warmups, key=lambda w: abs(w - VAL_BEST))  # the test images would have chosen TEST_BEST
    table = read_table(tmp_path)
    assert json.loads(table.loc[table["selected"], "hparams"].item()) == {"warmup_epochs": nearest}
    assert load_study(tmp_path / "tune-smoke" / "tuned.toml")["hparams"] == {"vae": {"warmup_epochs": nearest}}
    assert (table["trials"] == 3).all() and (table["budget"] == 3).all()
    assert (table["space"] == "warmup_epochs 1..200 log").all() and "warmup_epochs 1..200 log" in out
    metrics = pd.read_csv(tmp_path / "tune-smoke" / "metrics.csv")
    assert set(metrics["split"]) == {"val"}
    assert (tmp_path / "tune-smoke" / "figures" / "tradeoff-vae.png").stat().st_size > 0


def test_tune_twice_does_nothing_and_a_larger_budget_resumes(capsys, tmp_path, fake_evaluate):
    code, out, _ = tune(capsys, tmp_path, "--models", "vae,wae", "--budget", "1")
    assert code == 0 and "2 done" in out
    folder = tmp_path / "tune-smoke"
    before = {name: (folder / name).read_bytes() for name in ("runs.csv", "tuning.csv", "tuned.toml")}
    code, out, _ = tune(capsys, tmp_path, "--models", "vae,wae", "--budget", "1")
    assert code == 0 and "Nothing to do: all 2 trial runs" in out
    assert {name: (folder / name).read_bytes() for name in before} == before
    code, out, _ = tune(capsys, tmp_path, "--models", "vae,wae", "--budget", "2")
    assert code == 0 and "2 done, 0 failed, 0 lost, 2 recorded earlier" in out
    table = read_table(tmp_path)
    assert table.groupby("model").size().to_dict() == {"vae": 2, "wae": 2} and (table["status"] == "ok").all()
    assert table.groupby("model")["selected"].sum().to_dict() == {"vae": 1, "wae": 1}
    assert list(table.columns[:5]) == TUNING_COLUMNS[:5] and "val_knn5_acc" in table


def test_a_killed_tune_resumes_with_the_trials_an_uninterrupted_one_draws(capsys, tmp_path, fake_evaluate, tpe_early,
                                                                         monkeypatch):
    whole, parts, killed = tmp_path / "whole", tmp_path / "parts", tmp_path / "killed"
    assert tune(capsys, whole, "--models", "vae", "--budget", "3")[0] == 0
    assert tune(capsys, parts, "--models", "vae", "--budget", "2")[0] == 0  # part of the budget, then all of it
    calls = len(fake_evaluate)
    code, out, _ = tune(capsys, parts, "--models", "vae", "--budget", "3")
    assert code == 0 and "1 done, 0 failed, 0 lost, 2 recorded earlier" in out and len(fake_evaluate) == calls + 1
    assert drawn(parts) == drawn(whole)

    fake = cell.evaluate

    def killed_in_trial_2(model, data, config, log=print):
        if len(fake_evaluate) == calls + 2:  # trial 1 scored, trial 2 trained: the process is stopped
            raise KeyboardInterrupt
        return fake(model, data, config, log)

    monkeypatch.setattr(cell, "evaluate", killed_in_trial_2)
    assert tune(capsys, killed, "--models", "vae", "--budget", "3")[0] == 130
    assert len(pd.read_csv(killed / "tune-smoke" / "runs.csv")) == 1
    monkeypatch.setattr(cell, "evaluate", fake)
    code, out, _ = tune(capsys, killed, "--models", "vae", "--budget", "3")
    assert code == 0 and "2 done, 0 failed, 0 lost, 1 recorded earlier" in out  # trial 1 is not retrained
    assert drawn(killed) == drawn(whole)
    assert len({json.dumps(values) for _, _, values in drawn(whole)}) == 3


def test_startup_draws_are_asked_together_then_one_trial_per_result(capsys, tmp_path, fake_evaluate, monkeypatch):
    """The draws before TPE models results do not depend on them: a fresh tune asks them at once, then one
    trial as soon as the model's trials are all scored, and draws exactly what a tune that adds one trial
    at a time draws."""
    monkeypatch.setattr(tuning_search, "STARTUP_TRIALS", 2)
    asks = []  # (trial number, runs scored when it was asked)
    next_trial = tuning.next_trial

    def recording(tuned, profile, model, study):
        trial = next_trial(tuned, profile, model, study)
        asks.append((trial.number, len(fake_evaluate)))
        return trial

    monkeypatch.setattr(tuning, "next_trial", recording)
    assert tune(capsys, tmp_path / "together", "--models", "vae", "--budget", "4")[0] == 0
    assert asks == [(1, 0), (2, 0), (3, 2), (4, 3)]
    for budget in range(1, 5):
        assert tune(capsys, tmp_path / "one-by-one", "--models", "vae", "--budget", str(budget))[0] == 0
    assert drawn(tmp_path / "together") == drawn(tmp_path / "one-by-one")
    assert len({json.dumps(values) for _, _, values in drawn(tmp_path / "together")}) == 4


class OrderedExecutor(executors.SerialExecutor):
    """Runs the cells in this process, one at a time, in the order `pick` chooses from those queued, and says
    it runs several at once: what --jobs changes (which cell finishes first). ran: the models, in run order."""

    parallelism = 2

    def __init__(self, pick):
        self.pick, self.ran = pick, []

    def run(self, cells, data_root, device, on_epoch=None):
        while cells:
            spec = self.pick(list(cells))
            cells.remove(spec)
            self.ran.append(spec.model)
            yield from super().run(deque([spec]), data_root, device, on_epoch)


def test_the_same_trials_whatever_jobs(capsys, tmp_path, fake_evaluate, tpe_early, monkeypatch):
    assert tune(capsys, tmp_path / "serial", "--models", "vae,wae", "--budget", "3")[0] == 0
    monkeypatch.setattr(executors, "ProcessExecutor", lambda jobs: OrderedExecutor(lambda queued: queued[-1]))
    code, out, _ = tune(capsys, tmp_path / "jobs", "--models", "vae,wae", "--budget", "3", "--jobs", "2")
    assert code == 0, out
    assert drawn(tmp_path / "jobs") == drawn(tmp_path / "serial")


def test_a_model_s_next_trial_does_not_wait_for_the_other_models(capsys, tmp_path, fake_evaluate, tpe_early,
                                                                  monkeypatch):
    """No rounds, and the slowest model first: with wae measured as the slower model, a free worker starts
    wae's waiting trial, whose next one is asked as soon as it is scored, so wae's trials 2 and 3 run
    before vae's first (rounds would have waited for vae's trial 1). The draws are those of any order."""
    assert tune(capsys, tmp_path / "serial", "--models", "vae,wae", "--budget", "3")[0] == 0
    first_queued = OrderedExecutor(lambda queued: queued[0])
    monkeypatch.setattr(executors, "ProcessExecutor", lambda jobs: first_queued)
    monkeypatch.setattr(tuning, "model_seconds", lambda runs: {"vae": 1.0, "wae": 100.0})
    code, out, _ = tune(capsys, tmp_path / "jobs", "--models", "vae,wae", "--budget", "3", "--jobs", "2")
    assert code == 0, out
    assert first_queued.ran == ["wae"] * 3 + ["vae"] * 3
    assert drawn(tmp_path / "jobs") == drawn(tmp_path / "serial")


def test_a_model_s_expected_seconds_are_its_runs_mean_and_an_unmeasured_model_has_none():
    runs = pd.DataFrame({"model": ["vae", "vae", "wae"], "train_seconds": [10.0, 30.0, 5.0],
                         "eval_seconds": [2.0, None, 1.0]})
    assert tuning.model_seconds(runs) == {"vae": 21.0, "wae": 6.0}
    assert tuning.model_seconds(runs.iloc[:0]) == {}


def test_a_value_on_the_edge_is_flagged_and_the_space_widened(capsys, tmp_path, fake_evaluate, monkeypatch):
    monkeypatch.setattr(VAE, "search_space", {"warmup_epochs": IntRange(19, 20)})  # every value is on an edge
    code, out, _ = tune(capsys, tmp_path, "--models", "vae", "--budget", "2")
    assert code == 0
    table = read_table(tmp_path)
    chosen = table.loc[table["selected"]].iloc[0]
    side = "high bound 20" if json.loads(chosen.hparams) == {"warmup_epochs": 20} else "low bound 19"
    assert chosen.on_edge == f"warmup_epochs ({side})" and table.loc[~table["selected"], "on_edge"].isna().all()
    assert f"on the edge: warmup_epochs ({side}): widen the space (--widen vae.warmup_epochs=LOW:HIGH" in out
    first = drawn(tmp_path)

    code, out, _ = tune(capsys, tmp_path, "--models", "vae", "--budget", "4", "--widen", "vae.warmup_epochs=2:60")
    assert code == 0 and "2 done, 0 failed, 0 lost, 2 recorded earlier" in out
    assert drawn(tmp_path)[:2] == first  # the same study: the earlier trials kept, not retrained
    assert (read_table(tmp_path)["space"] == "warmup_epochs 2..60 (declared 19..20)").all()
    assert all(2 <= values["warmup_epochs"] <= 60 for _, _, values in drawn(tmp_path))
    code, out, _ = tune(capsys, tmp_path, "--models", "vae", "--budget", "4")  # the study remembers its space
    assert code == 0 and "Nothing to do" in out and "warmup_epochs 2..60" in out


def test_tuned_toml_is_a_study_that_retrains_the_selected_trials_on_test(capsys, tmp_path, fake_evaluate):
    code, _, _ = tune(capsys, tmp_path, "--models", "vae,wae", "--budget", "2", "--seeds", "0,1")
    assert code == 0
    folder = tmp_path / "tune-smoke"
    text = (folder / "tuned.toml").read_text()
    assert "# budget: 2 trials per model" in text and "criterion: mean-rank" in text and "seeds: [0, 1]" in text
    assert "#   wae: lam 0.1..10000 log" in text
    study = load_study(folder / "tuned.toml")
    assert (study["models"], study["datasets"], study["profile"]) == (["vae", "wae"], ["digits"], "smoke")
    assert study["experiment"] == "tune-smoke-tuned" and study["epochs"] == 1
    assert study["tuning_budget"] == 2 and resolve(study, {}, {})["tuning_budget"] == 2  # for run --tune-first
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
        if len(fake_evaluate) == 1:  # the second trial
            fake_evaluate.append("failed")
            raise FloatingPointError("non-finite")
        return fake(model, data, config, log)

    monkeypatch.setattr(cell, "evaluate", failing)
    code, out, _ = tune(capsys, tmp_path, "--models", "vae", "--budget", "3")
    assert code == 1 and "Trials with a failed run: 1" in out
    table = read_table(tmp_path).set_index("trial")
    assert table["status"].to_dict() == {1: "ok", 2: "failed", 3: "ok"}
    gaps = {n: abs(json.loads(table.at[n, "hparams"])["warmup_epochs"] - VAL_BEST) for n in (1, 3)}
    assert table.index[table["selected"]].item() == min(gaps, key=gaps.get)
    assert (tmp_path / "tune-smoke" / "tuned.toml").exists()


def test_real_evaluation_scores_trials_on_validation_images(capsys, tmp_path):
    code, out, _ = tune(capsys, tmp_path, "--models", "wae", "--budget", "2", "--select-by", "knn5_acc")
    assert code == 0, out
    metrics = pd.read_csv(tmp_path / "tune-smoke" / "metrics.csv", keep_default_na=False)
    samples = get_profile("smoke").eval.fid_samples
    assert set(metrics["split"]) == {"val"} and {180, samples} <= set(metrics["n"])  # digits: 180 validation images
    assert set(metrics.loc[metrics["backbone"] != "", "backbone"]) == {f"classifier-digits-val-v{CLASSIFIER_VERSION}"}
    assert set(scored_metrics(get_profile("smoke").eval)) <= set(metrics["metric"])
    table = read_table(tmp_path)
    assert list(table.columns) == TUNING_COLUMNS[:5] + [f"val_{m}" for m in RANKED_METRICS] + TUNING_COLUMNS[5:]
    assert table.loc[table["selected"], "val_knn5_acc"].item() == table["val_knn5_acc"].max()
    assert all(math.isfinite(v) for v in table["val_fid"])
    assert (tmp_path / "tune-smoke" / "figures" / "tradeoff-wae.png").is_file()


def test_the_default_budget_is_twelve_trials_per_model():
    (budget,) = [p for p in cli.tune.params if p.name == "budget"]
    assert tuning.DEFAULT_BUDGET == 12 and budget.default is None and not budget.required  # None: not given


@pytest.mark.parametrize("recorded, flags, trials", [("", [], 1), ("tuning_budget = 2\n", [], 2),
                                                     ("tuning_budget = 2\n", ["--budget", "3"], 3)])
def test_tune_s_budget_is_the_flag_then_the_study_s_then_the_default(capsys, tmp_path, fake_evaluate, monkeypatch,
                                                                      recorded, flags, trials):
    monkeypatch.setattr(tuning, "DEFAULT_BUDGET", 1)  # read when the command runs; 12 trials would be slow
    study = tmp_path / "study.toml"
    study.write_text('models = ["vae"]\n' + recorded)
    code, _, err = tune(capsys, tmp_path, "--config", str(study), *flags)
    assert code == 0, err
    assert list(read_table(tmp_path)["trial"]) == list(range(1, trials + 1))
    assert load_study(tmp_path / "tune-smoke" / "tuned.toml")["tuning_budget"] == trials


@pytest.mark.parametrize("args,message", [
    (["--models", "vea", "--budget", "2"], "unknown model 'vea'; choices: "),
    (["--models", "vae", "--budget", "0"], "--budget 0: expected an integer >= 1"),
    (["--models", "vae", "--budget", "2", "--select-by", "fdi"], "--select-by 'fdi': not a metric"),
    (["--models", "vae", "--budget", "2", "--select-by", "active_units"], "--select-by 'active_units': not a metric"),
    (["--models", "vae", "--budget", "2", "--fid-samples", "0"], "mean-rank needs fid"),
    (["--models", "vae", "--budget", "2", "--dataset", "mnist-5k"], "tune one dataset at a time"),
    (["--models", "vae,plain", "--budget", "2"], "model 'plain' declares no search space"),
    (["--models", "vae", "--widen", "vae.warmup_epochs=1:x"], "expected MODEL.NAME=LOW:HIGH with numbers"),
    (["--models", "vae", "--widen", "vae.warmup_epochs"], "expected MODEL.NAME=LOW:HIGH with numbers"),
    (["--models", "vae", "--widen", "wae.lam=1:2"], "model 'wae' is not tuned here; choices: vae"),
    (["--models", "vae", "--widen", "vae.warmup_epochs=300:1"], "LOW must be below HIGH"),
    (["--models", "vae", "--widen", "vae.warmup=1:300"], "vae searches no such range; choices: warmup_epochs"),
    (["--models", "vae", "--widen", "vae.warmup_epochs=30:300"], "must hold the range searched so far, 1..200 log"),
    (["--models", "vae", "--widen", "vae.warmup_epochs=1:300.5"], "warmup_epochs is an integer"),
    (["--models", "beta-vae", "--widen", "beta-vae.beta=0.5:30"], "beta must stay > 1"),
    (["--models", "swae", "--widen", "swae.beta=0.01:1.5"], "beta = 1.5 is not a valid value"),
])
def test_user_mistakes_are_one_line_exit_2_and_write_nothing(capsys, tmp_path, monkeypatch, args, message):
    monkeypatch.setitem(MODELS, "plain", type("Plain", (VAE,), {"search_space": {}}))
    code, out, err = tune(capsys, tmp_path, *args)
    assert code == 2 and message in err and err.count("\n") == 1 and "Traceback" not in err, err
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

    from aebench.run.profiles import get_profile
    from aebench.run.runner import plan
    from aebench.run.study import load_study, resolve

    files = sorted(p for p in (Path(__file__).resolve().parent.parent / "studies").glob("*.toml")
                   if p.name != "claims.toml")  # the claims' declaration (aebench.report.claims), not a study
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


def test_a_widen_hint_never_leaves_the_models_space():
    # beta-VAE's beta stays > 1 (above=1): a decade lower (0.15) would make it a VAE; halfway in log scale instead
    beta = FloatRange(1.5, 20.0, log=True, above=1.0)
    space = ModelSpace("beta-vae", (Dimension("beta", "beta_norm", beta, beta),))
    assert space.widen_hints({"beta": 1.55}) == ["--widen beta-vae.beta=1.22:20"]
    assert space.widen_hints({"beta": 19.0}) == ["--widen beta-vae.beta=1.5:200"]  # the high side is not limited
