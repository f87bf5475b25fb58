"""Models from outside the suite: an installed plug-in (tests/toy_plugin, installed by the README's test
command, declares `mytoy` in the entry-point group aebench.models) runs, is set, tuned and reported like a
built-in; `package.module:Class` works without an entry point; a plug-in that breaks the contract is
one line and exit 2 before anything is written; a plug-in never shadows a built-in."""
from __future__ import annotations

from importlib import metadata

import pandas as pd
import pytest

import cli
from aebench.catalog import plugins
from aebench.catalog.models import get_model_class, plugin_models
from aebench.catalog.plugins import PluginModel
from aebench.plumbing import entry_points
from baselines.vae import VAE


def run_cli(capsys, *argv):
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def smoke(tmp_path, *argv):
    return ["run", "--profile", "smoke", "--epochs", "2", "--out", str(tmp_path), "--quiet", *argv]


def test_the_toy_plugin_is_installed():
    names = {entry.name for entry in metadata.entry_points(group="aebench.models")}
    assert "mytoy" in names, "install the test plug-in: pip install -e tests/toy_plugin (README's test command)"


def test_an_installed_plugin_runs_is_set_and_reported_like_a_built_in(capsys, tmp_path):
    code, out, err = run_cli(capsys, *smoke(tmp_path, "--models", "mytoy,vae", "--set", "mytoy.noise=0.2"))
    assert code == 0 and "2 runs done" in out, err
    runs = pd.read_csv(tmp_path / "smoke" / "runs.csv")
    toy = runs[runs["model"] == "mytoy"].iloc[0]
    assert toy["status"] == "ok" and '"noise": 0.2' in toy["hparams"] and toy["run_id"].startswith("mytoy_digits_s0_")
    code, out, _ = run_cli(capsys, "report", str(tmp_path / "smoke"), "--no-figures")
    assert code == 0 and "| mytoy |" in (tmp_path / "smoke" / "report.md").read_text()
    code, out, _ = run_cli(capsys, "list", "--data-root", str(tmp_path))
    assert "mytoy (aebench_toy:MyToy, from aebench-toy-plugin)" in out


def test_an_installed_plugin_is_tuned_over_its_own_search_space(capsys, tmp_path):
    code, out, err = run_cli(capsys, "tune", "--models", "mytoy", "--dataset", "digits", "--profile", "smoke",
                             "--epochs", "1", "--budget", "2", "--out", str(tmp_path), "--quiet")
    assert code == 0, err
    table = pd.read_csv(tmp_path / "tune-smoke" / "tuning.csv")
    assert list(table["model"]) == ["mytoy", "mytoy"] and table["hparams"].str.contains('"noise"').all()
    assert "[hparams.mytoy]" in (tmp_path / "tune-smoke" / "tuned.toml").read_text()


def test_a_class_path_works_without_an_entry_point(capsys, tmp_path):
    code, out, err = run_cli(capsys, *smoke(tmp_path, "--models", "aebench_toy:MyToy"))
    assert code == 0, err
    run = pd.read_csv(tmp_path / "smoke" / "runs.csv").iloc[0]
    assert run["model"] == "aebench_toy:MyToy" and run["run_id"].startswith("aebench_toy-MyToy_digits_s0_")
    assert (tmp_path / "smoke" / "checkpoints" / f"{run['run_id']}.pt").is_file()


@pytest.mark.parametrize("name,message", [
    ("aebench_toy:NoLoss", "model 'aebench_toy:NoLoss': does not implement loss"),
    ("aebench_toy:WrongShape", "decode returned shape (8, 64), expected (8, 1, 8, 8)"),
    ("aebench_toy:NonFiniteLoss", "loss term 'loss' is not finite (nan) on training images"),
    ("aebench_toy:NoConfig", "its class has no Config"),
    ("aebench_toy:NotAModel", "aebench_toy:NotAModel is not a subclass of models.contract.AutoEncoder"),
    ("aebench_toy:Missing", "cannot load aebench_toy:Missing (AttributeError"),
    ("no_such_package:Model", "cannot load no_such_package:Model (ModuleNotFoundError"),
    ("mytoi", "unknown model 'mytoi'; choices: beta-vae, mytoy, swae"),
])
def test_a_broken_plugin_is_one_line_and_exit_2_before_anything_is_written(capsys, tmp_path, name, message):
    code, _, err = run_cli(capsys, *smoke(tmp_path, "--models", name))
    assert code == 2 and message in err and err.count("\n") == 1 and "Traceback" not in err, err
    assert not (tmp_path / "smoke").exists()


def test_a_plugin_never_shadows_a_built_in_and_says_so(capsys, monkeypatch):
    declared = [PluginModel("vae", "aebench_toy:MyToy", "shadowing-package"),
                PluginModel("othertoy", "aebench_toy:MyToy", "shadowing-package")]
    monkeypatch.setattr(entry_points, "entries", lambda group: declared if group == plugins.MODEL_GROUP else [])
    entry_points.declared.cache_clear()
    try:
        assert get_model_class("vae") is VAE and set(plugin_models()) == {"othertoy"}
        assert get_model_class("othertoy").__name__ == "MyToy"
        err = capsys.readouterr().err
        assert err.count("warning: plug-in model 'vae' (aebench_toy:MyToy, from shadowing-package) is not used: "
                         "'vae' is a built-in model; use --models aebench_toy:MyToy") == 1
    finally:
        entry_points.declared.cache_clear()
