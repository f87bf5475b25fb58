"""The one evaluation protocol: evaluate(model, data, config) -> metric rows, identical for all models.

The cell only calls this and stores the rows; each metric lives in benchmark/metrics/ (docs/evaluation.md
describes the protocol). Rows, all on the test split (n = images scored; backbone set where features are used),
or all on the validation split when tuning scores a candidate (data.scored_on("val"): split "val"):
  recon_sse, recon_mse                   reconstruction error (per-image sum; per pixel)
  knn{k}_acc, linear_acc                 probes fit on train codes, scored on test codes
  active_units                           latent dimensions whose test codes vary (variance > 0.01)
  denoise_sse_s{sigma}                   SSE of reconstruct(clip(x + sigma noise)) against the clean x
  trustworthiness_k{k}, continuity_k{k}  neighbourhood preservation, x-space vs z-space (fixed subset)
  fid                                    fid_samples generated images vs the reference test images
  fid_recon                              reconstructions of the reference images vs the same reference
  fid_backbone_acc                       the classifier backbone's test accuracy (no row for Inception)
  kid, kid_std                           KID of the same samples against the same reference (mean, std over subsets)
  precision, recall, density, coverage   of the same samples against the same reference (k = 3; k = 5)
  nn_train_ratio                         data-copying: samples' median distance to their nearest training
                                         image over the same for the reference test images (pixels)
  copying_ct                             data-copying: Meehan et al.'s C_T in the backbone's features
With scope "generation" only the samples are scored: fid, kid, kid_std, precision, recall, density,
coverage (and fid_backbone_acc), the rows that depend on the backbone. That is what rescoring trained
weights on another backbone needs (`run --weights-from`), without fid_recon's and C_T's extra images.
Like is compared with like: with binarised data (the paper profile) the probes are fit on training
images binarised once, as the test images are, and FID's reference is the GREY test images (what the
model is asked to match; its split is then recorded as "test-grey"). Every random draw (samples,
noise, subsets) comes from generators seeded by config.seed: the same checkpoint gives the same numbers.
"""
from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass

import numpy as np
import torch

from benchmark.data import DataSplits
from benchmark.errors import UserError
from benchmark.metrics.backbones import BACKBONES, get_backbone, require_inception_weights
from benchmark.metrics.batching import batched, sample_batched
from benchmark.metrics.copying import copying_ct, nn_train_ratio
from benchmark.metrics.denoising import denoise_metric_name, denoising_errors
from benchmark.metrics.fid import cached_features, feature_statistics, frechet_distance
from benchmark.metrics.fidelity import fidelity_scores
from benchmark.metrics.latent_usage import active_units
from benchmark.metrics.local_structure import fixed_subset, neighbourhood_scores
from benchmark.metrics.probes import knn_accuracy, linear_accuracy
from benchmark.metrics.reconstruction import reconstruction_errors
from models.contract import AutoEncoder, HyperparameterError


SCOPES = ("all", "generation")
FIDELITY_METRICS = ["kid", "kid_std", "precision", "recall", "density", "coverage"]
GENERATION_METRICS = ["fid", *FIDELITY_METRICS, "fid_backbone_acc"]


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
    copying_cells: int = 5  # k-means cells of the C_T test (Meehan et al.'s setting at this sample size)
    copying_train: int = 0  # training images of the C_T test, at most (0: all of them)
    seed: int = 0  # of every draw the evaluation makes
    scope: str = "all"  # all | generation (the samples' scores only; see the module's docstring)
    # Bumped when the protocol changes meaning (2: like-for-like probes and FID reference, data-copying,
    # active units; 3: KID, precision, recall, density, coverage beside FID), so that the config hash
    # keeps old and new results apart.
    protocol: int = 3
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
        _require_int(self.copying_cells, 1, "evaluation copying_cells", "an integer >= 1")
        _require_int(self.copying_train, 0, "evaluation copying_train", "an integer >= 0 (0: all training images)")
        if any(not s >= 0 for s in self.denoise_sigmas):
            raise HyperparameterError(f"evaluation denoise_sigmas = {self.denoise_sigmas!r}: must be >= 0")
        if self.scope not in SCOPES:
            raise UserError(f"evaluation scope = {self.scope!r}: unknown scope; choices: {', '.join(SCOPES)}")
        if self.scope == "generation" and not self.fid_samples:
            raise UserError("evaluation scope = 'generation' scores generated samples: fid_samples must be >= 2, not 0")
        if self.fid_backbone == "inception" and self.fid_samples:
            require_inception_weights(self.inception_weights)  # fail before training, not after

    def to_dict(self) -> dict:
        values = asdict(self)
        values.pop("inception_weights")
        if values["scope"] == "all":  # scope came after protocol 3's first runs: at its default it stays out
            values.pop("scope")       # of the config hash, so that those runs keep their ids
        return values


def _require_int(value, low: int, what: str, rule: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise UserError(f"{what} = {value!r}: must be {rule}")


def metric_names(config: EvalConfig) -> list[str]:
    """Every metric evaluate() writes under `config`, in its order. A row can still be missing where the
    data cannot support it (too few test images for the neighbourhoods or the nearest neighbours of
    precision and recall), and fid_backbone_acc is written for the classifier backbone only."""
    if config.scope == "generation":
        return list(GENERATION_METRICS)
    k = config.neighbours_k
    names = ["recon_sse", "recon_mse", *(f"knn{n}_acc" for n in config.knn_ks), "linear_acc", "active_units",
             *(denoise_metric_name(sigma) for sigma in config.denoise_sigmas),
             f"trustworthiness_k{k}", f"continuity_k{k}"]
    if config.fid_samples:
        names += ["fid", "fid_recon", *FIDELITY_METRICS, "fid_backbone_acc", "nn_train_ratio", "copying_ct"]
    return names


def metric_row(metric: str, value: float, split: str, n: int, backbone: str = "") -> dict:
    return {"metric": metric, "value": float(value), "split": split, "n": int(n), "backbone": backbone}


def evaluate(model: AutoEncoder, data: DataSplits, config: EvalConfig, log=print) -> list[dict]:
    model.eval()
    if config.scope == "generation":
        return sample_quality_rows(model, data, None, config, log)
    x_test, n_test, split = data.test_x, len(data.test_x), data.eval_split  # split: "test", or "val" when tuning
    x_hat = batched(model.reconstruct, x_test, config.batch_size)
    rows = [metric_row(name, value, split, n_test) for name, value in reconstruction_errors(x_hat, x_test.cpu()).items()]
    train_z = batched(model.encode, data.train_fixed, config.batch_size)  # prepared as the test images are
    test_z = batched(model.encode, x_test, config.batch_size)
    rows += probe_rows(train_z.numpy(), data.train_y.cpu().numpy(), test_z.numpy(), data.test_y.cpu().numpy(), config,
                       split)
    rows.append(metric_row("active_units", active_units(test_z.flatten(1).numpy()), split, n_test))
    rows += [metric_row(name, value, split, n_test) for name, value in
             denoising_errors(model.reconstruct, x_test, config.denoise_sigmas, config.seed, config.batch_size).items()]
    rows += neighbourhood_rows(x_test, test_z, config, split)
    if config.fid_samples:
        rows += sample_quality_rows(model, data, x_hat, config, log)
    return rows


def probe_rows(train_z, train_y, test_z, test_y, config: EvalConfig, split: str = "test") -> list[dict]:
    n = len(test_z)
    rows = [metric_row(f"knn{k}_acc", knn_accuracy(train_z, train_y, test_z, test_y, k), split, n) for k in config.knn_ks]
    with warnings.catch_warnings():  # a non-converged probe is still a valid score; don't flood the log
        warnings.simplefilter("ignore")
        rows.append(metric_row("linear_acc", linear_accuracy(train_z, train_y, test_z, test_y), split, n))
    return rows


def neighbourhood_rows(x_test: torch.Tensor, test_z: torch.Tensor, config: EvalConfig, split: str = "test") -> list[dict]:
    subset = fixed_subset(len(x_test), config.neighbours_subset, config.seed)
    if len(subset) <= 2 * config.neighbours_k:
        return []  # too few test images for this k: no row rather than a meaningless one
    k = config.neighbours_k
    trust, continuity = neighbourhood_scores(x_test.cpu()[subset], test_z[subset], k)
    return [metric_row(f"trustworthiness_k{k}", trust, split, len(subset)),
            metric_row(f"continuity_k{k}", continuity, split, len(subset))]


def sample_quality_rows(model: AutoEncoder, data: DataSplits, x_hat: torch.Tensor | None, config: EvalConfig,
                        log=print) -> list[dict]:
    """FID of samples and of reconstructions, and the data-copying measures, against one reference:
    a seeded random subset of at most fid_reference grey test images (all of them when fewer).
    Without reconstructions (x_hat None: the generation scope) only the samples' scores."""
    backbone = get_backbone(config.fid_backbone, data, config.inception_weights, log)
    device = data.test_x.device
    reference = fixed_subset(len(data.test_grey), config.fid_reference, config.seed).to(device)
    reference_images = data.test_grey[reference]
    split = f"{data.eval_split}-grey" if data.binarized else data.eval_split
    reference_features = cached_features(backbone, reference_images, data.name, split)
    reference_stats = feature_statistics(reference_features)
    samples = sample_batched(model, config.fid_samples, config.batch_size, torch.Generator().manual_seed(config.seed))
    sample_features = backbone.features(samples.to(device))
    fid = frechet_distance(feature_statistics(sample_features), reference_stats)
    rows = [metric_row("fid", fid, split, config.fid_samples, backbone.name)]
    if x_hat is not None:
        fid_recon = frechet_distance(feature_statistics(backbone.features(x_hat[reference.cpu()].to(device))),
                                     reference_stats)
        rows.append(metric_row("fid_recon", fid_recon, split, len(reference), backbone.name))
    rows += fidelity_rows(sample_features, reference_features, split, config, backbone.name, log)
    if backbone.accuracy is not None:
        rows.append(metric_row("fid_backbone_acc", backbone.accuracy, data.eval_split, len(data.test_x), backbone.name))
    if x_hat is None:
        return rows
    return rows + copying_rows(samples, sample_features, reference_images, reference_features, data, backbone,
                               split, config, log)


def fidelity_rows(sample_features, reference_features, split: str, config: EvalConfig, backbone: str,
                  log=print) -> list[dict]:
    """KID and precision / recall / density / coverage: the samples against the FID reference."""
    try:
        scores = fidelity_scores(sample_features, reference_features, config.seed)
    except ValueError as e:  # sets too small for KID's subsets or the k nearest neighbours: say so, no rows
        log(f"kid, precision, recall, density, coverage not computed: {e}")
        return []
    return [metric_row(name, value, split, len(sample_features), backbone) for name, value in scores.items()]


def copying_rows(samples, sample_features, reference_images, reference_features, data: DataSplits, backbone,
                 split: str, config: EvalConfig, log=print) -> list[dict]:
    """nn_train_ratio in pixel space (every training image) and C_T in the backbone's feature space."""
    if not (torch.isfinite(samples).all() and np.isfinite(sample_features).all()):
        return [metric_row(name, float("nan"), split, len(samples), b) for name, b in
                (("nn_train_ratio", ""), ("copying_ct", backbone.name))]  # a diverged model: no distances
    ratio = nn_train_ratio(samples.flatten(1).cpu().numpy(), data.train_x.flatten(1).cpu().numpy(),
                           reference_images.flatten(1).cpu().numpy())
    rows = [metric_row("nn_train_ratio", ratio, split, len(samples))]
    n_train = config.copying_train or len(data.train_x)
    chosen = fixed_subset(len(data.train_x), n_train, config.seed).to(data.train_x.device)
    train_features = cached_features(backbone, data.train_x[chosen], data.name, "train")
    try:
        ct = copying_ct(train_features, reference_features, sample_features, config.copying_cells, config.seed)
    except ValueError as e:  # e.g. too few samples for any cell to count: say so, record no number
        log(f"copying_ct not computed: {e}")
        ct = float("nan")
    return rows + [metric_row("copying_ct", ct, split, len(samples), backbone.name)]
