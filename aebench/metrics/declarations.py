"""What each metric row is: its name (or name pattern), which way is better, the qualifiers it carries.

Every metric the evaluation writes is declared here, grouped by the module that computes it; that
module imports its declarations (its METRICS) and names its values by them. They live here rather
than in those modules because most of them import torch, and directions.py, which reads these, is
imported by the report on machines that hold only CSV files. Plain Python: no torch, no numpy.

A parametrised name is a pattern: knn{k}_acc matches knn5_acc. A metric of generated samples is
computed once per sampler (per_sampler): each sampler's row (fid_gmm) is declared by its base metric,
and aebench.metrics.samplers reads from here which metrics those are.
"""
from __future__ import annotations

import re
import string
from dataclasses import dataclass
from functools import cached_property

HIGHER, LOWER = "max", "min"
QUALIFIERS = ("split", "n", "backbone")  # the columns of a metric row beside its value (evaluation.metric_row)
PLAIN = ("split", "n")
FEATURES = ("split", "n", "backbone")  # computed in a backbone's features: the row names the backbone
# What a pattern's placeholders stand for: an integer k, and a sigma as f"{sigma:g}" writes it.
PLACEHOLDERS = {"k": r"[0-9]+", "sigma": r"(?:[0-9]+(?:\.[0-9]+)?(?:e[+-][0-9]+)?|inf)"}


@dataclass(frozen=True)
class Metric:
    name: str  # the row name, or a pattern with {k} / {sigma} placeholders
    direction: str | None  # HIGHER or LOWER is better; None: not a score to rank (shown, not marked)
    qualifiers: tuple[str, ...]  # which of QUALIFIERS its rows set (backbone: computed in its features)
    description: str
    # computed once per generation sampler, from its samples: rows fid (prior), fid_gmm (aebench.metrics.samplers)
    per_sampler: bool = False

    def __post_init__(self):
        if self.direction not in (HIGHER, LOWER, None):
            raise ValueError(f"metric {self.name}: direction {self.direction!r} is not HIGHER, LOWER or None")
        if not set(self.qualifiers) <= set(QUALIFIERS):
            raise ValueError(f"metric {self.name}: qualifiers {self.qualifiers} not among {QUALIFIERS}")
        self.regex  # an unknown placeholder fails here, at import, not on the first lookup
        if self.per_sampler and self.is_pattern:
            # a sampler's row is split from its suffix by the exact base name (samplers.split_sampler)
            raise ValueError(f"metric {self.name}: a per-sampler metric needs a plain name, not a pattern")

    @cached_property
    def regex(self) -> re.Pattern:
        parts = [re.escape(text) + (PLACEHOLDERS[field] if field is not None else "")
                 for text, field, _, _ in string.Formatter().parse(self.name)]
        return re.compile("".join(parts))

    @property
    def is_pattern(self) -> bool:
        """Whether the name has placeholders (knn{k}_acc) rather than being one row's name."""
        return any(field is not None for _, field, _, _ in string.Formatter().parse(self.name))

    def matches(self, metric: str) -> bool:
        return self.regex.fullmatch(metric) is not None

    def format(self, **values) -> str:
        """The row name for these placeholder values: KNN_ACC.format(k=5) -> knn5_acc."""
        return self.name.format(**values)


# aebench/metrics/reconstruction.py
RECON_SSE = Metric("recon_sse", LOWER, PLAIN, "per-image sum of squared reconstruction error, averaged")
RECON_MSE = Metric("recon_mse", LOWER, PLAIN, "recon_sse per pixel")
# aebench/metrics/probes.py
KNN_ACC = Metric("knn{k}_acc", HIGHER, PLAIN, "k-nearest-neighbour probe's test accuracy on the codes")
LINEAR_ACC = Metric("linear_acc", HIGHER, PLAIN, "logistic-regression probe's test accuracy on the codes")
# aebench/metrics/latent_usage.py: more is not better (a model may need few dimensions), it flags collapse
ACTIVE_UNITS = Metric("active_units", None, PLAIN, "latent dimensions whose test codes vary (variance > 0.01)")
# aebench/metrics/denoising.py
DENOISE_SSE = Metric("denoise_sse_s{sigma}", LOWER, PLAIN, "SSE of reconstruct(clip(x + sigma noise)) against x")
# aebench/metrics/local_structure.py
TRUSTWORTHINESS = Metric("trustworthiness_k{k}", HIGHER, PLAIN, "latent neighbours that are pixel neighbours")
CONTINUITY = Metric("continuity_k{k}", HIGHER, PLAIN, "pixel neighbours that stay latent neighbours")
# aebench/metrics/fid.py (fid_backbone_acc describes the backbone, the same for every model: not a score)
FID = Metric("fid", LOWER, FEATURES, "Frechet distance of generated samples to the reference test images",
             per_sampler=True)
FID_RECON = Metric("fid_recon", LOWER, FEATURES, "Frechet distance of reconstructions to the same reference")
FID_BACKBONE_ACC = Metric("fid_backbone_acc", None, FEATURES, "the classifier backbone's test accuracy")
# aebench/metrics/fidelity.py. Density can exceed 1 when samples crowd dense reference regions; a larger
# value still means more samples lie where reference images are. kid_std is KID's spread over subsets.
KID = Metric("kid", LOWER, FEATURES, "kernel inception distance, mean over subsets", per_sampler=True)
KID_STD = Metric("kid_std", None, FEATURES, "kernel inception distance, standard deviation over subsets",
                 per_sampler=True)
PRECISION = Metric("precision", HIGHER, FEATURES, "share of samples inside the reference manifold (k = 3)",
                   per_sampler=True)
RECALL = Metric("recall", HIGHER, FEATURES, "share of reference images inside the samples' manifold (k = 3)",
                per_sampler=True)
DENSITY = Metric("density", HIGHER, FEATURES, "reference neighbourhoods holding each sample (k = 5)", per_sampler=True)
COVERAGE = Metric("coverage", HIGHER, FEATURES, "share of reference neighbourhoods holding a sample (k = 5)",
                  per_sampler=True)
# aebench/metrics/copying.py: about 1 (0) generalises, below copies, above underfits: neither way is better
NN_TRAIN_RATIO = Metric("nn_train_ratio", None, PLAIN, "samples' median distance to training images over test's",
                        per_sampler=True)
COPYING_CT = Metric("copying_ct", None, FEATURES, "Meehan et al.'s data-copying statistic C_T", per_sampler=True)

DECLARED = (RECON_SSE, RECON_MSE, KNN_ACC, LINEAR_ACC, ACTIVE_UNITS, DENOISE_SSE, TRUSTWORTHINESS, CONTINUITY,
            FID, FID_RECON, FID_BACKBONE_ACC, KID, KID_STD, PRECISION, RECALL, DENSITY, COVERAGE,
            NN_TRAIN_RATIO, COPYING_CT)
