"""The like-for-like evaluation protocol: probes and FID on identically prepared images, data-copying
and active units as numbers, and beta-VAE that does not collapse."""
import dataclasses
import math

import numpy as np
import pytest
import torch

import aebench.run.evaluation as evaluation
from aebench.catalog.models import build_model, get_model_class
from aebench.data.datasets import load_dataset
from aebench.run.evaluation import EvalConfig, evaluate
from aebench.run.profiles import get_profile, model_settings
from aebench.run.runner import plan
from aebench.run.training import TrainConfig, fit


def is_binary(x: torch.Tensor) -> bool:
    return bool(((x == 0) | (x == 1)).all())


def test_binarised_data_keeps_grey_test_images_and_fixed_binary_training_images():
    grey, binary = load_dataset("digits"), load_dataset("digits", binarize=True)
    assert is_binary(binary.test_x) and is_binary(binary.train_fixed) and not is_binary(binary.test_grey)
    assert torch.equal(binary.test_grey, grey.test_x) and torch.equal(binary.train_x, grey.train_x)
    assert torch.equal(load_dataset("digits", binarize=True).train_fixed, binary.train_fixed)  # fixed seed
    assert grey.train_fixed is grey.train_x and grey.test_grey is grey.test_x  # nothing changes without it


def test_probes_fit_on_training_codes_prepared_like_the_test_codes(monkeypatch):
    data = load_dataset("digits", binarize=True)
    torch.manual_seed(0)
    model = build_model("vae", data.image_shape, {"latent_dim": 3, "arch": "mlp"}).eval()
    fitted = []
    real = evaluation.probe_rows
    monkeypatch.setattr(evaluation, "probe_rows", lambda train_z, *args: fitted.append(train_z) or real(train_z, *args))
    evaluate(model, data, EvalConfig(fid_samples=0))
    with torch.no_grad():
        binary_codes, grey_codes = model.encode(data.train_fixed).numpy(), model.encode(data.train_x).numpy()
    assert np.allclose(fitted[0], binary_codes, atol=1e-6) and not np.allclose(fitted[0], grey_codes, atol=1e-3)


def test_fid_reference_is_the_grey_test_set_and_the_row_says_so(monkeypatch):
    data = load_dataset("digits", binarize=True)
    torch.manual_seed(0)
    model = build_model("vae", data.image_shape, {"latent_dim": 3, "arch": "mlp"})
    references = []
    real = evaluation.cached_features
    monkeypatch.setattr(evaluation, "cached_features",
                        lambda backbone, images, label, split: references.append((images, split)) or real(backbone, images, label, split))
    rows = {r["metric"]: r for r in evaluate(model, data, EvalConfig(fid_samples=100, fid_backbone="classifier"))}
    test_reference = [images for images, split in references if split == "test-grey"]
    assert len(test_reference) == 1 and torch.equal(test_reference[0], data.test_grey)
    assert rows["fid"]["split"] == "test-grey" and rows["fid_recon"]["split"] == "test-grey"


def test_copying_and_active_unit_rows_for_every_run(digits):
    torch.manual_seed(0)
    model = build_model("wae", digits.image_shape, {"latent_dim": 4, "arch": "mlp"})
    rows = {r["metric"]: r for r in evaluate(model, digits, EvalConfig(fid_samples=200, fid_backbone="classifier"))}
    assert rows["active_units"]["value"] in range(0, 5)
    assert rows["nn_train_ratio"]["value"] > 0 and rows["nn_train_ratio"]["backbone"] == ""
    assert math.isfinite(rows["copying_ct"]["value"]) and rows["copying_ct"]["backbone"].startswith("classifier")


class TrainingCopies(torch.nn.Module):
    """A 'generator' that hands back training images: the extreme of data-copying."""

    def __init__(self, data):
        super().__init__()
        self.data = data

    def sample(self, n, generator=None):
        return self.data.train_x[torch.randint(len(self.data.train_x), (n,), generator=generator)]


def test_a_model_that_copies_training_images_is_caught(digits):
    config = EvalConfig(fid_samples=300, fid_backbone="classifier")
    copier = TrainingCopies(digits)
    backbone = evaluation.get_backbone("classifier", digits)
    samples = copier.sample(300, torch.Generator().manual_seed(0))
    rows = {r["metric"]: r["value"] for r in evaluation.copying_rows(
        samples, backbone.features(samples), digits.test_x, backbone.features(digits.test_x), digits, backbone,
        "test", config)}
    assert rows["nn_train_ratio"] < 0.1 and rows["copying_ct"] < -3


def test_beta_vae_default_keeps_its_latent_code_on_digits(digits):
    """The raw beta = 4 of the old default collapsed here (no active unit, all samples alike)."""
    profile = get_profile("smoke")
    cls = get_model_class("beta-vae")
    hparams = cls.Config.from_overrides(model_settings(profile, cls), "beta-vae").to_dict()
    torch.manual_seed(0)
    model = build_model("beta-vae", digits.image_shape, hparams)
    result = fit(model, digits, TrainConfig(epochs=40, batch_size=64, lr=2e-3, patience=40), seed=0, progress=False)
    rows = {r["metric"]: r["value"] for r in evaluate(model, digits, EvalConfig(fid_samples=0))}
    assert rows["active_units"] >= 3, rows["active_units"]
    assert result.history[-1]["val_kl"] > 1.0


def test_beta_is_normalised_by_pixels_and_latent_size():
    model = build_model("beta-vae", (1, 28, 28), {"latent_dim": 16, "beta_norm": 0.1})
    assert model.kl_weight == pytest.approx(0.1 * 784 / 16)
    assert build_model("beta-vae", (1, 8, 8), {"latent_dim": 8, "beta_norm": 0.1}).kl_weight == pytest.approx(0.8)


def test_protocol_4_is_part_of_every_run_id():
    """Protocol 4 (a GMM sampler's rows, 10000 samples, Inception's size rule) keeps its runs apart from
    protocol 3's: the version is in the configuration hash, so no protocol-3 run is skipped as done."""
    spec = plan(get_profile("smoke"), ["vae"], ["digits"], [0])[0]
    assert EvalConfig().protocol == 4 and spec.identity()["eval"]["protocol"] == 4
    older = dataclasses.replace(spec, eval=dataclasses.replace(spec.eval, protocol=3))
    assert older.run_id != spec.run_id and older.run_id.startswith("vae_digits_s0_")
