"""Which way is better for each metric: the one place that knows it.

Used by the report (best marks, ranks), the figures (arrows), the regression check and the
threshold derivation. Plain Python: reading results never needs torch.
"""
from __future__ import annotations

from aebench.metrics.samplers import split_sampler

HIGHER, LOWER = "max", "min"
ARROWS = {HIGHER: "↑", LOWER: "↓", None: ""}
# Higher is better for all four (density can exceed 1 when samples crowd dense reference regions; a
# larger value still means more samples lie where reference images are). kid_std has no direction.
SAMPLE_FIDELITY = ("precision", "recall", "density", "coverage")


def direction(metric: str) -> str | None:
    """HIGHER when a larger value is better, LOWER when a smaller one is, None when unknown. A sampler's
    row (fid_gmm, precision_gmm, ...) goes the way of its base metric."""
    metric = split_sampler(metric)[0]
    if metric == "fid_backbone_acc":  # describes the FID backbone, the same for every model: not a score
        return None
    if metric.endswith("_acc") or metric.startswith(("trustworthiness", "continuity")) or metric in SAMPLE_FIDELITY:
        return HIGHER
    if metric.startswith(("recon_", "fid", "denoise")) or metric == "kid":
        return LOWER
    return None
