"""Scoring another experiment's trained weights instead of training (run --weights-from, --scope)."""
import json

import numpy as np
import pytest
from reproducibility import assert_reproduced

import cli
from aebench.errors import UserError
from aebench.metrics.samplers import SAMPLERS, sampler_metric
from aebench.run.evaluation import GENERATION_METRICS, EvalConfig, metric_names, per_image_names
from aebench.run.profiles import get_profile
from aebench.run.rescoring import attach_trained_weights
from aebench.run.runner import plan, run_grid
from aebench.store.folder import ResultsStore

QUIET = {"progress": False, "log": lambda *_: None}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A finished two-epoch VAE run on digits, seed 0, with its checkpoint."""
    folder = tmp_path_factory.mktemp("trained") / "source"
    specs = plan(get_profile("smoke"), ["vae"], ["digits"], [0], epochs=2)
    store = ResultsStore(folder)
    assert run_grid(specs, store, **QUIET).done == [specs[0].run_id]
    return folder, store


def rescore(source, out, scope="all", seeds=(0,)):
    specs = plan(get_profile("smoke"), ["vae"], ["digits"], list(seeds), epochs=2, eval_overrides={"scope": scope})
    specs = attach_trained_weights(specs, source, out)
    store = ResultsStore(out)
    outcome = run_grid(specs, store, **QUIET)
    return specs, store, outcome


def by_metric(metrics):
    return dict(zip(metrics["metric"] + "|" + metrics["backbone"].fillna(""), metrics["value"]))


def test_rescoring_with_the_same_evaluation_reproduces_every_number(trained, tmp_path):
    source, store = trained
    specs, rescored, outcome = rescore(source, tmp_path / "again")
    assert outcome.done == [specs[0].run_id] and not outcome.failed
    # same weights, same seeded evaluation: bit for bit on one machine and thread count, within the
    # promise's tolerance wherever the kernels differ (tests/test_kernels.py), which is what is asserted
    assert_reproduced(by_metric(rescored.metrics()), by_metric(store.metrics()))
    run, original = rescored.runs().iloc[0], store.runs().iloc[0]
    assert run["run_id"] != original["run_id"]  # a run of its own, that names its source
    assert run["weights_from"] == original["run_id"] and run["train_seconds"] == 0.0
    assert (run["epochs_run"], run["best_epoch"], run["stopped"]) == (original["epochs_run"], original["best_epoch"],
                                                                      original["stopped"])
    assert (tmp_path / "again" / "checkpoints" / f"{run['run_id']}.pt").is_file()
    # the per-image values too: the same test images in the same order, so the two runs pair image by image
    again, first = rescored.per_image(run["run_id"]), store.per_image(original["run_id"])
    assert sorted(again) == sorted(first)
    for name in first:
        np.testing.assert_allclose(again[name], first[name], rtol=1e-6)


def test_per_image_values_are_stored_with_the_run_and_average_to_its_metrics(trained):
    _, store = trained
    run_id = store.runs()["run_id"].item()
    rows = store.metrics().set_index("metric")
    values = store.per_image(run_id)
    assert sorted(values) == sorted(per_image_names(get_profile("smoke").eval))
    for name, array in values.items():
        assert array.ndim == 1 and len(array) == rows.at[name, "n"] == 360
        assert array.mean() == pytest.approx(rows.at[name, "value"], rel=1e-12)  # as read back from metrics.csv


def test_generation_scope_scores_only_the_samples_with_the_full_protocols_values(trained, tmp_path):
    source, store = trained
    _, rescored, _ = rescore(source, tmp_path / "generation", scope="generation")
    got, full = by_metric(rescored.metrics()), by_metric(store.metrics())
    assert {key.split("|")[0] for key in got} == set(GENERATION_METRICS)
    assert_reproduced(got, {key: full[key] for key in got})  # the same samples, the same reference
    # both samplers: the prior's rows and the mixture's, fitted on training codes encoded in this scope too
    metrics = rescored.metrics().set_index("metric")
    samples = get_profile("smoke").eval.fid_samples
    for sampler in SAMPLERS:
        assert metrics.at[sampler_metric("fid", sampler), "n"] == metrics.at[sampler_metric("kid", sampler), "n"] == samples
        assert np.isfinite(metrics.at[sampler_metric("fid", sampler), "value"])
    assert rescored.per_image(rescored.runs()["run_id"].item()) is None  # no per-image metric in this scope


def test_the_default_scope_leaves_run_ids_as_they_were():
    assert "scope" not in EvalConfig().to_dict()  # runs made before scope existed keep their ids
    spec = plan(get_profile("smoke"), ["vae"], ["digits"], [0])[0]
    assert spec.run_id == "vae_digits_s0_0bc28c46"  # its id in results/reference/smoke-digits (protocol 4)
    generation = plan(get_profile("smoke"), ["vae"], ["digits"], [0], eval_overrides={"scope": "generation"})[0]
    assert generation.run_id != spec.run_id
    assert metric_names(generation.eval) == GENERATION_METRICS


def test_generation_scope_needs_samples_and_a_known_scope_name():
    with pytest.raises(UserError, match="fid_samples must be >= 2"):
        EvalConfig(scope="generation", fid_samples=0)
    with pytest.raises(UserError, match="unknown scope; choices: all, generation"):
        EvalConfig(scope="samples")


def test_a_cell_without_a_trained_run_is_refused_before_anything_runs(trained, tmp_path):
    source, _ = trained
    with pytest.raises(UserError, match="no finished run of vae on digits, seed 1"):
        rescore(source, tmp_path / "other", seeds=(0, 1))
    assert not (tmp_path / "other").exists()


def test_a_missing_checkpoint_or_folder_is_named(trained, tmp_path):
    source, store = trained
    copy = tmp_path / "no-checkpoints"
    copy.mkdir()
    (copy / "runs.csv").write_bytes((source / "runs.csv").read_bytes())
    with pytest.raises(UserError, match="the checkpoint of vae_digits_s0_.* is missing"):
        rescore(copy, tmp_path / "out")
    with pytest.raises(UserError, match="no runs.csv there"):
        rescore(tmp_path / "nowhere", tmp_path / "out")
    with pytest.raises(UserError, match="this command's own experiment folder"):
        rescore(source, source)


def test_the_command_line_rescores_and_reports_mistakes_in_one_line(trained, tmp_path, capsys):
    source, store = trained
    argv = ["run", "--models", "vae", "--profile", "smoke", "--epochs", "2", "--out", str(tmp_path),
            "--experiment", "rescored", "--scope", "generation", "--quiet"]
    assert cli.main(argv + ["--weights-from", str(source)]) == 0
    runs = ResultsStore(tmp_path / "rescored").runs()
    assert runs["weights_from"].tolist() == store.runs()["run_id"].tolist()
    config = json.loads((tmp_path / "rescored" / "config.json").read_text())
    assert config["config"]["weights_from"] == str(source)
    assert cli.main(["report", str(tmp_path / "rescored")]) == 0
    assert "Rescored: 1 of the 1 runs trained nothing here" in (tmp_path / "rescored" / "report.md").read_text()
    capsys.readouterr()
    assert cli.main(argv + ["--weights-from", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert "no runs.csv there" in err and err.count("\n") == 1


# ---------------------------------------------------------------- reusing finished runs (run --reuse-from)


def test_reused_runs_are_copied_whole_and_only_the_others_train(trained, tmp_path, capsys):
    source, store = trained
    argv = ["run", "--models", "vae", "--profile", "smoke", "--epochs", "2", "--seeds", "0,1", "--out", str(tmp_path),
            "--experiment", "both", "--quiet", "--reuse-from", f"{tmp_path / 'empty'},{source}"]
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "runs.csv").write_text("run_id,status\n")
    assert cli.main(argv) == 0
    assert "1 finished runs copied from" in capsys.readouterr().out
    both = ResultsStore(tmp_path / "both")
    original, runs = store.runs().iloc[0], both.runs().set_index("run_id")
    copied = runs.loc[original["run_id"]]
    assert (copied["finished_at"], copied["train_seconds"], copied["git_commit"]) == (
        original["finished_at"], original["train_seconds"], original["git_commit"])  # the same run, not a new one
    mine = both.metrics()[both.metrics()["run_id"] == original["run_id"]]
    assert by_metric(mine) == by_metric(store.metrics())
    for sub, suffix in (("history", "csv"), ("samples", "png"), ("checkpoints", "pt")):
        name = f"{original['run_id']}.{suffix}"
        assert (tmp_path / "both" / sub / name).read_bytes() == (source / sub / name).read_bytes()
    assert len(runs) == 2 and runs.drop(index=original["run_id"]).iloc[0]["seed"] == 1  # seed 1 was trained


def test_reuse_from_a_folder_without_runs_is_one_line_exit_2(tmp_path, capsys):
    code = cli.main(["run", "--models", "vae", "--profile", "smoke", "--out", str(tmp_path), "--quiet",
                     "--reuse-from", str(tmp_path / "nowhere")])
    err = capsys.readouterr().err
    assert code == 2 and "--reuse-from" in err and "no runs.csv there" in err and err.count("\n") == 1
    assert not (tmp_path / "smoke").exists()  # refused before anything was written
