"""The samplers whose images the generation metrics score, and how their rows are named: the one place
that knows it (evaluation writes the rows, directions, reports and claims read the names).

prior  the model's own sample(): its prior through its decoder. Today's rows, names unchanged.
gmm    ex-post density estimation (Ghosh et al. 2020, "From Variational to Deterministic Autoencoders";
       pythae's benchmark): a 10-component full-covariance Gaussian mixture fitted on the training
       codes, its draws decoded by the same decoder (aebench.metrics.gmm). Rows carry a suffix,
       e.g. fid_gmm, so that the two readings are never merged into one column.

Plain Python: reading results never needs torch.
"""
from __future__ import annotations

from aebench.metrics.declarations import DECLARED

SAMPLERS = {"prior": "", "gmm": "_gmm"}  # sampler -> the suffix of its metric names
# The metrics computed once per sampler, from that sampler's images, as their declarations say (in the
# declarations' order, which is evaluate()'s).
PER_SAMPLER_METRICS = tuple(metric.name for metric in DECLARED if metric.per_sampler)


def sampler_metric(metric: str, sampler: str) -> str:
    """The row name of `metric` for `sampler`: fid -> fid (prior), fid_gmm (gmm)."""
    return metric + SAMPLERS[sampler]


def split_sampler(metric: str) -> tuple[str, str | None]:
    """(base metric, sampler) of a row name: fid_gmm -> (fid, gmm), fid -> (fid, prior);
    (metric, None) for a metric that is not computed per sampler (recon_sse, fid_recon, ...)."""
    for sampler, suffix in SAMPLERS.items():
        if suffix and metric.endswith(suffix) and metric[:-len(suffix)] in PER_SAMPLER_METRICS:
            return metric[:-len(suffix)], sampler
    return metric, ("prior" if metric in PER_SAMPLER_METRICS else None)
