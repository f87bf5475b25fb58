"""The one evaluation protocol: evaluate(model, data, config) -> metric rows, identical for all models.

The runner only calls this and stores the rows; each metric lives in benchmark/metrics/. Rows, all on
the test split (n = images scored; backbone set on FID rows only):
  recon_sse, recon_mse                   reconstruction error (per-image sum; per pixel)
  knn{k}_acc, linear_acc                 probes fit on train latents, scored on test latents
  denoise_sse_s{sigma}                   SSE of reconstruct(clip(x + sigma noise)) against the clean x
  trustworthiness_k{k}, continuity_k{k}  neighbourhood preservation, x-space vs z-space (fixed subset)
  fid                                    fid_samples generated images vs the reference test images
  fid_recon                              reconstructions of the reference images vs the same reference
  fid_backbone_acc                       the classifier backbone's test accuracy (no row for Inception)
Every random draw (samples, noise, subsets) comes from generators seeded by config.seed: the same
checkpoint gives the same numbers.
"""
from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass

import torch

from benchmark.data import DataSplits
from benchmark.errors import UserError
from benchmark.metrics.backbones import BACKBONES, get_backbone, require_inception_weights
from benchmark.metrics.batching import batched, sample_batched
from benchmark.metrics.denoising import denoising_errors
from benchmark.metrics.fid import feature_statistics, frechet_distance, reference_statistics
from benchmark.metrics.local_structure import fixed_subset, neighbourhood_scores
from benchmark.metrics.probes import knn_accuracy, linear_accuracy
from benchmark.metrics.reconstruction import reconstruction_errors
from models.contract import AutoEncoder, HyperparameterError


@dataclass
class EvalConfig:
    knn_ks: tuple[int, ...] = (1, 3, 5, 10)
    batch_size: int = 1000
    fid_backbone: str = "auto"  # auto | inception | classifier (see benchmark.metrics.backbones)
    fid_samples: int = 2000  # generated images (the paper's 2000); 0 skips the FID rows
    fid_reference: int = 5000  # reference test images, at most (the paper: up to 5000)
    denoise_sigmas: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5)
    neighbours_k: int = 10  # k of trustworthiness / continuity
    neighbours_subset: int = 1000  # test images they are computed on
    seed: int = 0  # of every draw the evaluation makes
    # A path on this machine, not part of what a run is (to_dict leaves it out of the config hash);
    # the backbone name on each FID row says which weights were used.
    inception_weights: str | None = None

    def __post_init__(self):
        self.knn_ks = tuple(self.knn_ks)
        self.denoise_sigmas = tuple(float(s) for s in self.denoise_sigmas)
        if not self.knn_ks or min(self.knn_ks) < 1:
            raise HyperparameterError(f"evaluation knn_ks = {self.knn_ks!r}: must be integers >= 1")
        if self.fid_backbone not in BACKBONES:
            raise UserError(f"fid_backbone = {self.fid_backbone!r}: unknown backbone; choices: {', '.join(BACKBONES)}")
        _require_int(self.fid_samples, 0, "fid_samples", "0 (no FID) or at least 2")
        if self.fid_samples == 1:
            raise UserError("fid_samples = 1: must be 0 (no FID) or at least 2")
        _require_int(self.fid_reference, 2, "fid_reference", "an integer >= 2")
        _require_int(self.batch_size, 1, "evaluation batch_size", "an integer >= 1")
        _require_int(self.neighbours_k, 1, "evaluation neighbours_k", "an integer >= 1")
        _require_int(self.neighbours_subset, 2 * self.neighbours_k + 1, "evaluation neighbours_subset",
                     f"an integer > 2 * neighbours_k = {2 * self.neighbours_k}")
        if any(not s >= 0 for s in self.denoise_sigmas):
            raise HyperparameterError(f"evaluation denoise_sigmas = {self.denoise_sigmas!r}: must be >= 0")
        if self.fid_backbone == "inception" and self.fid_samples:
            require_inception_weights(self.inception_weights)  # fail before training, not after

    def to_dict(self) -> dict:
        values = asdict(self)
        values.pop("inception_weights")
        return values


def _require_int(value, low: int, what: str, rule: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise UserError(f"{what} = {value!r}: must be {rule}")


def metric_row(metric: str, value: float, split: str, n: int, backbone: str = "") -> dict:
    return {"metric": metric, "value": float(value), "split": split, "n": int(n), "backbone": backbone}


def evaluate(model: AutoEncoder, data: DataSplits, config: EvalConfig, log=print) -> list[dict]:
    model.eval()
    x_test, n_test = data.test_x, len(data.test_x)
    x_hat = batched(model.reconstruct, x_test, config.batch_size)
    rows = [metric_row(name, value, "test", n_test) for name, value in reconstruction_errors(x_hat, x_test.cpu()).items()]
    train_z = batched(model.encode, data.train_x, config.batch_size)
    test_z = batched(model.encode, x_test, config.batch_size)
    rows += probe_rows(train_z.numpy(), data.train_y.cpu().numpy(), test_z.numpy(), data.test_y.cpu().numpy(), config)
    rows += [metric_row(name, value, "test", n_test) for name, value in
             denoising_errors(model.reconstruct, x_test, config.denoise_sigmas, config.seed, config.batch_size).items()]
    rows += neighbourhood_rows(x_test, test_z, config)
    if config.fid_samples:
        rows += fid_rows(model, data, x_hat, config, log)
    return rows


def probe_rows(train_z, train_y, test_z, test_y, config: EvalConfig) -> list[dict]:
    n = len(test_z)
    rows = [metric_row(f"knn{k}_acc", knn_accuracy(train_z, train_y, test_z, test_y, k), "test", n) for k in config.knn_ks]
    with warnings.catch_warnings():  # a non-converged probe is still a valid score; don't flood the log
        warnings.simplefilter("ignore")
        rows.append(metric_row("linear_acc", linear_accuracy(train_z, train_y, test_z, test_y), "test", n))
    return rows


def neighbourhood_rows(x_test: torch.Tensor, test_z: torch.Tensor, config: EvalConfig) -> list[dict]:
    subset = fixed_subset(len(x_test), config.neighbours_subset, config.seed)
    if len(subset) <= 2 * config.neighbours_k:
        return []  # too few test images for this k: no row rather than a meaningless one
    k = config.neighbours_k
    trust, continuity = neighbourhood_scores(x_test.cpu()[subset], test_z[subset], k)
    return [metric_row(f"trustworthiness_k{k}", trust, "test", len(subset)),
            metric_row(f"continuity_k{k}", continuity, "test", len(subset))]


def fid_rows(model: AutoEncoder, data: DataSplits, x_hat: torch.Tensor, config: EvalConfig, log=print) -> list[dict]:
    """FID of samples and of reconstructions against the same reference: a seeded random subset of
    at most fid_reference test images (all of them when the test split is smaller)."""
    backbone = get_backbone(config.fid_backbone, data, config.inception_weights, log)
    device = data.test_x.device
    reference = fixed_subset(len(data.test_x), config.fid_reference, config.seed)
    label = data.name + ("-bin" if data.binarized else "")
    reference_stats = reference_statistics(backbone, data.test_x[reference.to(device)], label, "test")
    generator = torch.Generator().manual_seed(config.seed)
    samples = sample_batched(model, config.fid_samples, config.batch_size, generator)
    fid = frechet_distance(feature_statistics(backbone.features(samples.to(device))), reference_stats)
    fid_recon = frechet_distance(feature_statistics(backbone.features(x_hat[reference].to(device))), reference_stats)
    rows = [metric_row("fid", fid, "test", config.fid_samples, backbone.name),
            metric_row("fid_recon", fid_recon, "test", len(reference), backbone.name)]
    if backbone.accuracy is not None:
        rows.append(metric_row("fid_backbone_acc", backbone.accuracy, "test", len(data.test_x), backbone.name))
    return rows
