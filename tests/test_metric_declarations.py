"""Metric declarations (aebench/metrics/declarations.py) and the directions read from them."""
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from aebench.metrics import copying, denoising, fid, fidelity, latent_usage, local_structure, probes, reconstruction
from aebench.metrics.declarations import DECLARED, FEATURES, QUALIFIERS, Metric
from aebench.metrics.directions import HIGHER, LOWER, UndeclaredMetric, declared, direction
from aebench.metrics.samplers import split_sampler
from aebench.run.evaluation import EvalConfig, metric_names, metric_row, per_image_names

REFERENCE = Path(__file__).resolve().parent.parent / "results" / "reference"

# Known answers: every built-in name (prior and GMM sampler, parametrised), as direction() gave them
# before the declarations, and as docs/evaluation.md states them.
DIRECTIONS = {
    "recon_sse": LOWER, "recon_mse": LOWER,
    "knn1_acc": HIGHER, "knn5_acc": HIGHER, "knn10_acc": HIGHER, "knn25_acc": HIGHER, "linear_acc": HIGHER,
    "active_units": None,
    "denoise_sse_s0": LOWER, "denoise_sse_s0.05": LOWER, "denoise_sse_s0.3": LOWER, "denoise_sse_s1e-05": LOWER,
    "trustworthiness_k10": HIGHER, "trustworthiness_k3": HIGHER, "continuity_k10": HIGHER,
    "fid": LOWER, "fid_gmm": LOWER, "fid_recon": LOWER, "fid_backbone_acc": None,
    "kid": LOWER, "kid_gmm": LOWER, "kid_std": None, "kid_std_gmm": None,
    "precision": HIGHER, "recall": HIGHER, "density": HIGHER, "coverage": HIGHER,
    "precision_gmm": HIGHER, "recall_gmm": HIGHER, "density_gmm": HIGHER, "coverage_gmm": HIGHER,
    "nn_train_ratio": None, "nn_train_ratio_gmm": None, "copying_ct": None, "copying_ct_gmm": None,
}
# Names no declaration matches: not written by any version of the evaluation.
UNDECLARED = ["foo", "foo_acc", "recon_bce", "fidelity", "knn_acc", "knnk_acc", "denoise_sse_0.1", "trustworthiness",
              "fid_recon_gmm", "fid_backbone_acc_gmm", "active_units_gmm", "val_knn5_acc", "knn5_acc_gmm"]


@pytest.mark.parametrize("metric", DIRECTIONS)
def test_direction_of_each_built_in_metric(metric):
    assert direction(metric) == DIRECTIONS[metric]
    assert declared(metric).direction == DIRECTIONS[metric]


@pytest.mark.parametrize("metric", UNDECLARED)
def test_an_undeclared_name_is_reported(metric):
    with pytest.raises(UndeclaredMetric, match="not declared"):
        declared(metric)
    assert direction(metric) is None  # the report reading another version's rows shows them unranked


def test_the_evaluation_refuses_to_write_an_undeclared_metric():
    with pytest.raises(UndeclaredMetric):
        metric_row("sharpness", 1.0, "test", 10)
    assert metric_row("knn5_acc", 0.5, "test", 10)["metric"] == "knn5_acc"


CONFIGS = [EvalConfig(), EvalConfig(scope="generation"),
           EvalConfig(knn_ks=(2, 7), denoise_sigmas=(0, 0.05, 1e-5, 1.5), neighbours_k=3)]


@pytest.mark.parametrize("config", CONFIGS, ids=["default", "generation", "other-parameters"])
def test_every_name_the_evaluation_writes_matches_exactly_one_declaration(config):
    names = metric_names(config) + per_image_names(config)
    assert names
    for name in names:
        matching = [m.name for m in DECLARED if m.matches(split_sampler(name)[0])]
        assert len(matching) == 1, (name, matching)


def test_each_declaration_belongs_to_one_metric_module():
    modules = (reconstruction, probes, latent_usage, denoising, local_structure, fid, fidelity, copying)
    listed = [m for module in modules for m in module.METRICS]
    assert sorted(m.name for m in listed) == sorted(m.name for m in DECLARED)
    assert len({m.name for m in DECLARED}) == len(DECLARED)
    assert all(set(m.qualifiers) <= set(QUALIFIERS) and m.description for m in DECLARED)


def test_patterns_match_whole_names_only():
    knn = declared("knn5_acc")
    assert knn.format(k=5) == "knn5_acc" and knn.matches("knn10_acc")
    assert not knn.matches("knn5_acc_x") and not knn.matches("xknn5_acc") and not knn.matches("knn_acc")
    assert declared("denoise_sse_s0.3").format(sigma="0.3") == "denoise_sse_s0.3"
    assert denoising.denoise_metric_name(0.3) == "denoise_sse_s0.3"  # the module names its rows by it
    with pytest.raises(ValueError, match="direction"):
        Metric("sharpness", "up", ("split", "n"), "")
    with pytest.raises(KeyError):  # an unknown placeholder fails where it is declared
        Metric("sharpness_r{radius}", HIGHER, ("split", "n"), "")


def test_a_per_sampler_metric_has_a_plain_name():
    """A sampler's row (fid_gmm) is split from its suffix by the exact base name: a pattern could never match."""
    assert Metric("sharpness", HIGHER, FEATURES, "", per_sampler=True).per_sampler
    assert not Metric("sharpness_r{k}", HIGHER, FEATURES, "").per_sampler  # the default
    with pytest.raises(ValueError, match="plain name"):
        Metric("sharpness_r{k}", HIGHER, FEATURES, "", per_sampler=True)


@pytest.mark.skipif(not REFERENCE.is_dir(), reason="no reference results in this checkout")
def test_declared_qualifiers_match_the_reference_rows():
    """backbone is set on a stored row exactly where its declaration says it carries one."""
    rows = pd.concat([pd.read_csv(path, keep_default_na=False) for path in REFERENCE.glob("*/metrics.csv")])
    for metric, backbones in rows.groupby("metric")["backbone"]:
        assert set(backbones.ne("")) == {"backbone" in declared(metric).qualifiers}, metric


def test_directions_import_without_torch():
    """The report reads directions on machines with only CSV files."""
    code = ("import sys; sys.modules['torch'] = None; "
            "from aebench.metrics.directions import direction; assert direction('fid_gmm') == 'min'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parent.parent)
