import json

import pytest
import torch

from aebench.catalog.models import MODELS, get_model_class
from aebench.errors import UserError
from aebench.run.profiles import get_profile, model_settings
from aebench.run.runner import plan, run_grid
from aebench.store.folder import ResultsStore


def test_plan_resolves_profile_settings_and_overrides():
    specs = plan(get_profile("smoke"), ["vae"], ["digits"], [0, 1], epochs=3, overrides={"vae": {"latent_dim": "5"}})
    assert [(s.model, s.dataset, s.seed) for s in specs] == [("vae", "digits", 0), ("vae", "digits", 1)]
    assert specs[0].train.epochs == 3 and specs[0].hparams["latent_dim"] == 5 and specs[0].hparams["arch"] == "mlp"
    assert specs[0].run_id != specs[1].run_id and specs[0].run_id.startswith("vae_digits_s0_")


def test_config_hash_changes_with_anything_that_changes_the_numbers():
    smoke = get_profile("smoke")
    base = plan(smoke, ["vae"], ["digits"], [0])[0]
    assert plan(smoke, ["vae"], ["digits"], [0])[0].config_hash == base.config_hash
    assert plan(smoke, ["vae"], ["digits"], [0], epochs=2)[0].config_hash != base.config_hash
    assert plan(smoke, ["vae"], ["digits"], [0], overrides={"vae": {"sigma": "0.2"}})[0].config_hash != base.config_hash


@pytest.mark.parametrize("kwargs,message", [
    ({"models": ["vea"]}, "unknown model 'vea'"),
    ({"overrides": {"vae": {"latent_dim": "0"}}}, "latent_dim"),
    ({"overrides": {"wae-x": {"latent_dim": "3"}}}, "not in this run"),
    ({"datasets": ["mnsit"]}, "unknown dataset 'mnsit'"),
])
def test_plan_rejects_bad_input_before_running_anything(kwargs, message):
    args = {"models": ["vae"], "datasets": ["digits"], "seeds": [0]} | kwargs
    with pytest.raises(UserError, match=message):
        plan(get_profile("smoke"), **args)


def test_every_registered_model_builds_under_every_profile():
    shared = {"smoke": (8, "mlp"), "quick": (16, "auto"), "paper": (40, "gated")}  # latent_dim, arch
    for name in MODELS:
        for profile, (latent_dim, arch) in shared.items():
            cls = get_model_class(name)
            config = cls.Config.from_overrides(model_settings(get_profile(profile), cls), name)
            assert isinstance(config, cls.Config) and (config.latent_dim, config.arch) == (latent_dim, arch)
            for field, value in cls.profile_defaults.get(profile, {}).items():
                assert getattr(config, field) == value  # the model's own per-profile values are applied
            model = cls((1, 28, 28), config)
            assert model.encode(torch.rand(2, 1, 28, 28)).shape == (2, latent_dim)


def test_grid_records_runs_and_skips_them_next_time(tmp_path):
    store = ResultsStore(tmp_path)
    specs = plan(get_profile("smoke"), ["vae"], ["digits"], [0], epochs=2)
    first = run_grid(specs, store, progress=False, log=lambda *_: None)
    assert first.done == [specs[0].run_id] and not first.failed
    runs = store.runs()
    assert runs["status"].tolist() == ["ok"] and json.loads(runs["hparams"][0])["latent_dim"] == 8
    assert set(store.metrics()["metric"]) >= {"recon_sse", "recon_mse", "knn5_acc", "linear_acc"}
    assert store.metrics()["value"].between(0, 1).sum() >= 5  # accuracies and per-pixel error
    second = run_grid(specs, store, progress=False, log=lambda *_: None)
    assert second.skipped == [specs[0].run_id] and not second.done


def test_a_failing_cell_is_recorded_and_the_grid_goes_on(tmp_path, monkeypatch):
    import aebench.run.cell as cell

    real_fit = cell.fit

    def fit_that_breaks_seed_1(model, data, config, seed, **display):
        if seed == 1:
            raise RuntimeError("boom")
        return real_fit(model, data, config, seed, **display)

    monkeypatch.setattr(cell, "fit", fit_that_breaks_seed_1)
    store = ResultsStore(tmp_path)
    specs = plan(get_profile("smoke"), ["vae"], ["digits"], [1, 0], epochs=1)
    outcome = run_grid(specs, store, progress=False, log=lambda *_: None)
    assert outcome.failed == [specs[0].run_id] and outcome.done == [specs[1].run_id]
    runs = store.runs().set_index("run_id")
    assert runs.loc[specs[0].run_id, "reason"] == "RuntimeError: boom"
    assert set(store.metrics()["run_id"]) == {specs[1].run_id}
    # failed cells are skipped on a plain rerun, retried on request
    rerun = run_grid(specs, store, progress=False, log=lambda *_: None)
    assert rerun.skipped == [s.run_id for s in specs] and rerun.skipped_failed == [specs[0].run_id]
    monkeypatch.setattr(cell, "fit", real_fit)
    retried = run_grid(specs, store, retry_failed=True, progress=False, log=lambda *_: None)
    assert retried.done == [specs[0].run_id] and store.recorded()[specs[0].run_id] == "ok"


def test_paper_profile_pieces_run_together_on_a_small_set():
    """Gated networks, AdamNormGrad, dynamic binarisation and latent 40 end to end (one epoch on
    digits, K lowered to fit its 1257 training images); the full paper scale needs a GPU."""
    from aebench.data.datasets import load_dataset
    from aebench.run.cell import train_and_evaluate
    from aebench.store.checkpoints import read_checkpoint

    spec = plan(get_profile("paper"), ["swae"], ["digits"], [0], epochs=1, overrides={"swae": {"K": "50"}},
                eval_overrides={"fid_samples": 0})[0]
    assert spec.binarize and spec.train.optimizer == "adam-normgrad" and spec.train.batch_size == 100
    assert spec.hparams["arch"] == "gated" and spec.hparams["latent_dim"] == 40
    cell = train_and_evaluate(spec, load_dataset("digits", binarize=True), "cpu")
    assert cell.run["status"] == "ok", cell.run["reason"]
    values = {m["metric"]: m["value"] for m in cell.metrics}
    assert values["knn5_acc"] > 0.3 and "fid" not in values  # one epoch: far above chance (0.1) already
    assert read_checkpoint(cell.checkpoint)["hparams"]["K"] == 50
