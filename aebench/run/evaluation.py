"""The one evaluation protocol: evaluate(model, data, config) -> metric rows, identical for all models.

The cell only calls this and stores the rows; each metric lives in aebench/metrics/ (docs/evaluation.md
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
The rows of generated samples (fid to copying_ct but fid_recon and fid_backbone_acc: those declared
per_sampler) are written once per sampler (aebench.metrics.samplers): the model's prior (the names
above) and a Gaussian mixture fitted on the training codes (the same names with _gmm), as many samples each.
With scope "generation" only the samples are scored: fid, kid, kid_std, precision, recall, density,
coverage of each sampler (and fid_backbone_acc), the rows that depend on the backbone. That is what
rescoring trained weights on another backbone needs (`run --weights-from`), without fid_recon's and
C_T's extra images.
Beside the rows, evaluate() gives the per-image metrics' values image by image, in the order of
the scored split (recon_sse, recon_mse, knn{k}_acc as 0/1, denoise_sse_s{sigma}): each row's value is
the mean of its array, and n its length, so a bootstrap over test images can pair two runs image by image.
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

from aebench.data.splits import DataSplits
from aebench.errors import UserError
from aebench.features.backbones import BACKBONES, choose_backbone, get_backbone, require_inception_weights
from aebench.metrics.batching import batched, sample_batched
from aebench.metrics.copying import METRICS as COPYING_DECLARED
from aebench.metrics.copying import copying_ct, nn_train_ratio
from aebench.metrics.denoising import denoise_metric_name, denoising_per_image
from aebench.metrics.directions import declared
from aebench.metrics.fid import cached_features, feature_statistics, frechet_distance
from aebench.metrics.fidelity import fidelity_scores
from aebench.metrics.gmm import MixtureFitError, fit_code_mixture
from aebench.metrics.latent_usage import active_units
from aebench.metrics.local_structure import fixed_subset, neighbourhood_scores
from aebench.metrics.probes import knn_correct, linear_accuracy
from aebench.metrics.reconstruction import reconstruction_per_image
from aebench.metrics.samplers import PER_SAMPLER_METRICS, SAMPLERS, sampler_metric
from models.contract import AutoEncoder, HyperparameterError

SCOPES = ("all", "generation")
# The per-sampler metrics (their declarations say which) split by scope: the data-copying ones compare the
# samples with the training images, which the generation scope leaves out, so they are scope "all" only.
COPYING_METRICS = [metric.name for metric in COPYING_DECLARED]
SAMPLE_METRICS = [name for name in PER_SAMPLER_METRICS if name not in COPYING_METRICS]  # in both scopes
GENERATION_METRICS = [*(sampler_metric(m, s) for s in SAMPLERS for m in SAMPLE_METRICS), "fid_backbone_acc"]
# Inception FID's sample sizes, both sides: above its 2048 feature dimensions, so that the covariances are
# full rank (the TF reference code asks for more than 2048; 10k is common practice).
INCEPTION_MIN_IMAGES = 5000


@dataclass
class EvalConfig:
    knn_ks: tuple[int, ...] = (1, 3, 5, 10)
    batch_size: int = 1000
    fid_backbone: str = "auto"  # auto | inception | classifier (see aebench.features.backbones)
    fid_samples: int = 10000  # generated images per sampler; 0 skips the FID rows
    fid_reference: int = 10000  # reference test images, at most (all of them where the split is smaller)
    denoise_sigmas: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5)
    neighbours_k: int = 10  # k of trustworthiness / continuity
    neighbours_subset: int = 1000  # test images they are computed on
    copying_cells: int = 5  # k-means cells of the C_T test (Meehan et al.'s setting at this sample size)
    copying_train: int = 0  # training images of the C_T test, at most (0: all of them)
    seed: int = 0  # of every draw the evaluation makes
    scope: str = "all"  # all | generation (the samples' scores only; see the module's docstring)
    # Bumped when the protocol changes meaning (2: like-for-like probes and FID reference, data-copying,
    # active units; 3: KID, precision, recall, density, coverage beside FID; 4: the GMM sampler's rows,
    # 10000 samples against up to 10000 test images, Inception's size rule), so that the config hash
    # keeps old and new results apart.
    protocol: int = 4
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
            require_inception_samples(self, "asked for")

    def to_dict(self) -> dict:
        values = asdict(self)
        values.pop("inception_weights")
        if values["scope"] == "all":  # scope came after protocol 3's first runs: at its default it stays out
            values.pop("scope")       # of the config hash, so that those runs keep their ids
        return values


def _require_int(value, low: int, what: str, rule: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise UserError(f"{what} = {value!r}: must be {rule}")


def require_inception_samples(config: EvalConfig, how: str) -> None:
    """UserError unless an Inception FID of `config` draws at least INCEPTION_MIN_IMAGES samples."""
    if config.fid_samples < INCEPTION_MIN_IMAGES:
        raise UserError(f"fid_samples = {config.fid_samples}: Inception FID ({how}) needs at least "
                        f"{INCEPTION_MIN_IMAGES} samples, above its 2048 feature dimensions; give --fid-samples "
                        f"{INCEPTION_MIN_IMAGES} or more, or --fid-backbone classifier")


def reference_size(config: EvalConfig, data: DataSplits, log=None) -> int:
    """How many test images FID's reference holds on `data`: fid_reference, or all of the scored split
    where it has fewer. UserError where Inception's rule refuses the sizes: at least INCEPTION_MIN_IMAGES
    samples and reference images, or the whole split when it has fewer (then `log` says so)."""
    available = len(data.test_grey)
    size = min(config.fid_reference, available)
    if choose_backbone(config.fid_backbone, data.image_shape, config.inception_weights) != "inception":
        return size
    how = "chosen by --fid-backbone auto: its weights are present" if config.fid_backbone == "auto" else "asked for"
    require_inception_samples(config, how)
    if size < min(INCEPTION_MIN_IMAGES, available):
        raise UserError(f"fid_reference = {config.fid_reference}: Inception FID ({how}) needs at least "
                        f"{INCEPTION_MIN_IMAGES} reference images, or the whole {data.eval_split} split of "
                        f"{data.name} ({available}) where it has fewer; give --fid-reference {INCEPTION_MIN_IMAGES} "
                        f"or more, or --fid-backbone classifier")
    if available < INCEPTION_MIN_IMAGES and log:
        log(f"Inception FID on {data.name}: its {data.eval_split} split has {available} images, fewer than the "
            f"rule's {INCEPTION_MIN_IMAGES}: the reference is all of them")
    return size


def check_fid_sizes(config: EvalConfig, data: DataSplits) -> None:
    """Before anything runs: UserError where evaluating on `data` would break Inception's size rule, or
    would need the classifier backbone on images without labels (it is trained on them)."""
    if not config.fid_samples:
        return
    reference_size(config, data)
    if not data.labelled and choose_backbone(config.fid_backbone, data.image_shape,
                                             config.inception_weights) == "classifier":
        raise UserError(f"dataset {data.name} has no labels, and the classifier FID backbone is trained on labels: "
                        "give --fid-backbone inception (python cli.py fetch inception), or --fid-samples 0 "
                        "(no FID), or labels (an npz `y` array, or one subfolder per class)")


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
        names += [*(sampler_metric(m, s) for s in SAMPLERS for m in (*SAMPLE_METRICS, *COPYING_METRICS)),
                  "fid_recon", "fid_backbone_acc"]
    return names


def per_image_names(config: EvalConfig) -> list[str]:
    """The metrics evaluate() gives image by image, in Scores.per_image (none in the generation scope)."""
    if config.scope == "generation":
        return []
    return ["recon_sse", "recon_mse", *(f"knn{k}_acc" for k in config.knn_ks),
            *(denoise_metric_name(sigma) for sigma in config.denoise_sigmas)]


def metric_row(metric: str, value: float, split: str, n: int, backbone: str = "") -> dict:
    """One row of metrics.csv. UndeclaredMetric for a name that aebench/metrics/declarations.py does not
    declare: its row would have no direction and drop out of every rank without a word."""
    declared(metric)
    return {"metric": metric, "value": float(value), "split": split, "n": int(n), "backbone": backbone}


def nan_row(metric: str, split: str, n: int, backbone: str) -> dict:
    """A row recording that `metric` could not be computed, with the backbone where its declaration has one."""
    return metric_row(metric, float("nan"), split, n, backbone if "backbone" in declared(metric).qualifiers else "")


class Scores(list):
    """What evaluate() returns: its metric rows (a list of dicts), and in `per_image`, for the per-image
    metrics among them, one value per scored image in the order of the scored split: the row's value is
    the mean of its array and its n the array's length."""

    def __init__(self, rows=(), per_image: dict[str, np.ndarray] | None = None):
        super().__init__(rows)
        self.per_image = dict(per_image or {})

    def add_per_image(self, values: dict[str, np.ndarray], split: str) -> None:
        for name, array in values.items():
            self.append(metric_row(name, array.mean(), split, len(array)))
            self.per_image[name] = array

    def extend_scores(self, other: "Scores") -> None:
        self.extend(other)
        self.per_image |= other.per_image


def evaluate(model: AutoEncoder, data: DataSplits, config: EvalConfig, log=print) -> Scores:
    """Every metric row of the protocol, with the per-image values behind the per-image metrics."""
    model.eval()
    if config.scope == "generation":
        return Scores(sample_quality_rows(model, data, None, config, log))
    x_test, n_test, split = data.test_x, len(data.test_x), data.eval_split  # split: "test", or "val" when tuning
    x_hat = batched(model.reconstruct, x_test, config.batch_size)
    scores = Scores()
    scores.add_per_image(reconstruction_per_image(x_hat, x_test.cpu()), split)
    train_z = batched(model.encode, data.train_fixed, config.batch_size)  # prepared as the test images are
    test_z = batched(model.encode, x_test, config.batch_size)
    if data.labelled:
        scores.extend_scores(probe_rows(train_z.numpy(), data.train_y.cpu().numpy(), test_z.numpy(),
                                        data.test_y.cpu().numpy(), config, split))
    elif log:
        log(f"{data.name} has no labels: the probes (kNN and linear accuracy) are skipped")
    scores.append(metric_row("active_units", active_units(test_z.flatten(1).numpy()), split, n_test))
    scores.add_per_image(denoising_per_image(model.reconstruct, x_test, config.denoise_sigmas, config.seed,
                                             config.batch_size), split)
    scores += neighbourhood_rows(x_test, test_z, config, split)
    if config.fid_samples:
        scores += sample_quality_rows(model, data, x_hat, config, log, train_z)
    return scores


def probe_rows(train_z, train_y, test_z, test_y, config: EvalConfig, split: str = "test") -> Scores:
    """kNN accuracies (with each test code's 0/1 correctness) and the linear probe's accuracy."""
    probes = Scores()
    probes.add_per_image({f"knn{k}_acc": knn_correct(train_z, train_y, test_z, test_y, k) for k in config.knn_ks},
                         split)
    with warnings.catch_warnings():  # a non-converged probe is still a valid score; don't flood the log
        warnings.simplefilter("ignore")
        probes.append(metric_row("linear_acc", linear_accuracy(train_z, train_y, test_z, test_y), split,
                                      len(test_z)))
    return probes


def neighbourhood_rows(x_test: torch.Tensor, test_z: torch.Tensor, config: EvalConfig, split: str = "test") -> list[dict]:
    subset = fixed_subset(len(x_test), config.neighbours_subset, config.seed)
    if len(subset) <= 2 * config.neighbours_k:
        return []  # too few test images for this k: no row rather than a meaningless one
    k = config.neighbours_k
    trust, continuity = neighbourhood_scores(x_test.cpu()[subset], test_z[subset], k)
    return [metric_row(f"trustworthiness_k{k}", trust, split, len(subset)),
            metric_row(f"continuity_k{k}", continuity, split, len(subset))]


def sample_quality_rows(model: AutoEncoder, data: DataSplits, x_hat: torch.Tensor | None, config: EvalConfig,
                        log=print, train_codes: torch.Tensor | None = None) -> list[dict]:
    """FID of each sampler's samples and of reconstructions, and the data-copying measures, against one
    reference: a seeded random subset of at most fid_reference grey test images (all of them when fewer).
    Without reconstructions (x_hat None: the generation scope) only the samples' scores. train_codes:
    the codes of data.train_fixed that the GMM sampler is fitted on (encoded here when not given)."""
    backbone = get_backbone(config.fid_backbone, data, config.inception_weights, log)
    device = data.test_x.device
    reference = fixed_subset(len(data.test_grey), reference_size(config, data, log), config.seed).to(device)
    reference_images = data.test_grey[reference]
    split = f"{data.eval_split}-grey" if data.binarized else data.eval_split
    reference_features = cached_features(backbone, reference_images, data.name, split)
    reference_stats = feature_statistics(reference_features)
    if train_codes is None:
        train_codes = batched(model.encode, data.train_fixed, config.batch_size)
    rows = []
    for sampler in SAMPLERS:
        samples = SAMPLER_IMAGES[sampler](model, train_codes, config, log)
        scored = sampler_rows(samples, reference_images, reference_features, reference_stats, data, backbone, split,
                              config, x_hat is not None, log)
        rows += [{**row, "metric": sampler_metric(row["metric"], sampler)} for row in scored]
    if x_hat is not None:
        fid_recon = frechet_distance(feature_statistics(backbone.features(x_hat[reference.cpu()].to(device))),
                                     reference_stats)
        rows.append(metric_row("fid_recon", fid_recon, split, len(reference), backbone.name))
    if backbone.accuracy is not None:
        rows.append(metric_row("fid_backbone_acc", backbone.accuracy, data.eval_split, len(data.test_x), backbone.name))
    return rows


def prior_images(model: AutoEncoder, train_codes: torch.Tensor, config: EvalConfig, log=print) -> torch.Tensor:
    """fid_samples images of the model's own sampler (its prior through its decoder), seeded."""
    return sample_batched(model, config.fid_samples, config.batch_size, torch.Generator().manual_seed(config.seed))


def mixture_images(model: AutoEncoder, train_codes: torch.Tensor, config: EvalConfig, log=print) -> torch.Tensor | None:
    """fid_samples images decoded from draws of a Gaussian mixture fitted on the training codes (the
    fit and the draws seeded); None, with the reason logged, where no mixture can be fitted."""
    try:
        mixture = fit_code_mixture(train_codes.numpy(), config.seed)
    except MixtureFitError as e:
        log(f"gmm sampler: no Gaussian mixture fitted on the training codes, its rows are NaN: {e}")
        return None
    if not mixture.converged:
        log("gmm sampler: the mixture's EM did not converge within scikit-learn's iterations; its draws are scored")
    codes = torch.from_numpy(mixture.sample(config.fid_samples, config.seed))
    return batched(model.decode, codes.to(model.device), config.batch_size)


SAMPLER_IMAGES = {"prior": prior_images, "gmm": mixture_images}  # one per aebench.metrics.samplers.SAMPLERS


def sampler_rows(samples: torch.Tensor | None, reference_images, reference_features, reference_stats,
                 data: DataSplits, backbone, split: str, config: EvalConfig, copying: bool, log=print) -> list[dict]:
    """fid, kid to coverage and (with `copying`) the data-copying rows of one sampler's samples, under
    their base names; NaN rows where the sampler gave no samples."""
    if samples is None:
        names = SAMPLE_METRICS + (COPYING_METRICS if copying else [])
        return [nan_row(name, split, config.fid_samples, backbone.name) for name in names]
    sample_features = backbone.features(samples.to(data.test_x.device))
    fid = frechet_distance(feature_statistics(sample_features), reference_stats)
    rows = [metric_row("fid", fid, split, len(samples), backbone.name)]
    rows += fidelity_rows(sample_features, reference_features, split, config, backbone.name, log)
    if copying:
        rows += copying_rows(samples, sample_features, reference_images, reference_features, data, backbone,
                             split, config, log)
    return rows


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
        # a diverged model: no distances
        return [nan_row(name, split, len(samples), backbone.name) for name in COPYING_METRICS]
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
