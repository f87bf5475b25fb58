"""The committed study files (studies/*.toml): each one plans, carries the values `tune` chose, and
describes the runs its committed results folder holds (same run ids), checked without training."""
from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pandas as pd
import pytest
from benchmark_script import load_script

from aebench.plumbing.tomlfile import read_toml
from aebench.run.evaluation import EvalConfig
from aebench.run.runner import plan_config
from aebench.run.study import load_study, resolve

ROOT = Path(__file__).resolve().parent.parent
reference_study = load_script("reference_study")
CLAIMS_FILE = "claims.toml"  # the claims' declaration (aebench.report.claims_file), the one file there that is not a study
STUDIES = sorted(p for p in (ROOT / "studies").glob("*.toml") if p.name != CLAIMS_FILE)
RUN_STUDIES = [p for p in STUDIES if not p.name.startswith("tune-")]


def resolved(path: Path, tmp_path: Path | None = None) -> dict:
    """The study's configuration; a study on the Inception backbone is given a stand-in weights file,
    since planning checks that the weights exist and CI has none (the path is not part of a run id)."""
    config = resolve(load_study(path), {}, {}, path)
    if config.get("fid_backbone") == "inception" and tmp_path is not None:
        stand_in = tmp_path / "inception.pth"
        stand_in.write_bytes(b"")
        config["inception_weights"] = str(stand_in)
    return config


def tuned_of(dataset: str) -> dict:
    """The tuned.toml that `tune --config studies/tune-standard-DATASET.toml` wrote."""
    path = ROOT / "results" / "reference" / f"tune-standard-{dataset}" / "tuned.toml"
    assert path.is_file(), f"{path.relative_to(ROOT)} is missing: finish that tuning study first"
    return read_toml(path, "tuned values")


def test_there_are_study_files():
    assert {"tune-standard-mnist.toml", "tune-standard-fashion-mnist.toml"} <= {p.name for p in STUDIES}


@pytest.mark.parametrize("path", STUDIES, ids=lambda p: p.name)
def test_every_study_file_plans_without_error(path, tmp_path):
    config = resolved(path, tmp_path)
    _, specs = plan_config(config)
    assert specs and config["out"] == "results/reference" and config["experiment"] == path.stem
    if path in RUN_STUDIES:
        assert config["profile"] == "standard" and config["fid_backbone"] in ("classifier", "inception")


@pytest.mark.parametrize("path", [p for p in RUN_STUDIES if p.name.startswith("reference-")], ids=lambda p: p.name)
def test_a_reference_study_carries_the_tuned_values_of_its_dataset(path):
    config = resolved(path)
    (dataset,) = config["datasets"]
    tuned = tuned_of(dataset)
    assert config["models"] == tuned["models"] and config["hparams"] == tuned["hparams"]
    assert config["seeds"] == [0, 1, 2, 3, 4] or len(config["seeds"]) >= 3


@pytest.mark.parametrize("path", [p for p in RUN_STUDIES if p.name.startswith("reference-")], ids=lambda p: p.name)
def test_a_reference_study_file_is_what_the_script_writes_from_tuned_toml(path):
    """benchmarks/reference_study.py wrote it: regenerated from tuned.toml, it is the same text."""
    (dataset,) = resolved(path)["datasets"]
    assert path.read_text(encoding="utf-8") == reference_study.reference_study(dataset, tuned_of(dataset))


def test_the_script_carries_the_tuning_budget_that_tuned_toml_records(tmp_path):
    tuned = tuned_of("mnist")
    assert "tuning_budget" not in reference_study.reference_study("mnist", tuned)  # written before the key
    study = tmp_path / "reference-mnist.toml"
    study.write_text(reference_study.reference_study("mnist", tuned | {"tuning_budget": 4}), encoding="utf-8")
    assert resolved(study)["tuning_budget"] == 4


def test_the_script_leaves_an_existing_study_file_alone_and_needs_a_finished_tuning(capsys):
    committed = (ROOT / "studies" / "reference-mnist.toml").read_bytes()
    assert reference_study.main(["mnist"]) == 2
    assert (ROOT / "studies" / "reference-mnist.toml").read_bytes() == committed
    assert "exists" in capsys.readouterr().err
    assert reference_study.main(["digits"]) == 2  # never tuned on the standard profile
    assert "tune-standard-digits/tuned.toml does not exist" in capsys.readouterr().err
    assert not (ROOT / "studies" / "reference-digits.toml").exists()


@pytest.mark.parametrize("path", [p for p in RUN_STUDIES if p.name.startswith("ablation-swae-")], ids=lambda p: p.name)
def test_the_ablation_gives_every_objective_swaes_tuned_values(path):
    config = resolved(path)
    (dataset,) = config["datasets"]
    swae = tuned_of(dataset)["hparams"]["swae"]
    assert config["models"] == ["swae", "swae-xz", "swae-zrec"]
    assert all(config["hparams"][model] == swae for model in config["models"])


@pytest.mark.parametrize("path", RUN_STUDIES, ids=lambda p: p.name)
def test_the_committed_folder_holds_only_runs_its_study_file_plans(path, tmp_path):
    config = resolved(path, tmp_path)
    folder = ROOT / config["out"] / config["experiment"]
    if not (folder / "runs.csv").is_file():
        pytest.skip(f"{folder.relative_to(ROOT)} not run yet")  # stated in results/reference/README.md
    runs = pd.read_csv(folder / "runs.csv")
    if config.get("weights_from"):  # rescored runs: their ids hash their source's, whose checkpoints CI lacks
        source = pd.read_csv(ROOT / config["weights_from"] / "runs.csv")
        assert set(runs["weights_from"]) <= set(source["run_id"])
        return
    _, specs = plan_config(config)
    # The committed folders are protocol v1 (results/reference/README.md): their runs are the study's grid
    # scored under the evaluation settings they recorded, which today's protocol has since changed.
    recorded = {json.dumps(json.loads(text), sort_keys=True) for text in runs["eval_config"]}
    assert len(recorded) == 1
    made_under = EvalConfig(**json.loads(recorded.pop()))
    assert set(runs["run_id"]) <= {dataclasses.replace(spec, eval=made_under).run_id for spec in specs}


def test_the_standard_profiles_defaults_are_mnists_tuned_values_but_beta_vaes():
    """`run --profile standard --dataset mnist` trains the very runs of the mnist reference study, but
    beta-VAE's: its protocol v1 choice (raw beta 0.98) is a VAE, so the profile keeps a beta above 1."""
    config = resolved(ROOT / "studies" / "reference-mnist.toml")
    _, with_tables = plan_config(config)
    _, defaults_only = plan_config(config | {"hparams": {}})
    tuned = {s.run_id for s in with_tables}
    assert {s.run_id for s in defaults_only if s.model != "beta-vae"} <= tuned
    beta_vae = [s for s in defaults_only if s.model == "beta-vae"]
    assert beta_vae and not {s.run_id for s in beta_vae} & tuned
    assert all(s.hparams["beta_norm"] * 784 / s.hparams["latent_dim"] > 1 for s in beta_vae)


def test_the_reproduction_script_runs_every_study_after_what_it_reads():
    script = (ROOT / "benchmarks" / "reproduce_reference.sh").read_text()
    order = list(dict.fromkeys(re.findall(r"studies/([\w-]+)\.toml", script)))  # first mention of each
    assert {p.stem for p in STUDIES} <= set(order)
    experiment_of = {p.stem: resolve(load_study(p), {}, {}, p)["experiment"] for p in STUDIES}
    study_writing = {experiment: stem for stem, experiment in experiment_of.items()}
    for stem in order:
        needs = [f"tune-standard-{stem.removeprefix('reference-')}"] if stem.startswith("reference-") else []
        if stem in experiment_of:
            path = ROOT / "studies" / f"{stem}.toml"
            config = resolve(load_study(path), {}, {}, path)
            read = [config.get("weights_from")] + list(config.get("reuse_from") or [])
            needs += [study_writing[Path(folder).name] for folder in read if folder]
        for needed in needs:
            assert order.index(needed) < order.index(stem), f"{stem} runs before {needed}, whose results it reads"
