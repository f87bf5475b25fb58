"""Which way is better for each metric, as its declaration says (aebench/metrics/declarations.py).

Used by the report (best marks, ranks), the figures (arrows), the regression check and the
threshold derivation. Plain Python: reading results never needs torch.
"""
from __future__ import annotations

from functools import lru_cache

from aebench.metrics.declarations import DECLARED, HIGHER, LOWER, Metric
from aebench.metrics.samplers import split_sampler

ARROWS = {HIGHER: "↑", LOWER: "↓", None: ""}


class UndeclaredMetric(ValueError):
    """A metric name that no declaration matches."""


@lru_cache(maxsize=None)  # the report asks once per row
def declaration(metric: str) -> Metric | None:
    """The declaration of a row name (a sampler's row, fid_gmm, by its base metric's); None when none matches."""
    base = split_sampler(metric)[0]
    return next((m for m in DECLARED if m.matches(base)), None)


def declared(metric: str) -> Metric:
    """The declaration of a row name; UndeclaredMetric when none matches (a metric the evaluation must not write)."""
    found = declaration(metric)
    if found is None:
        raise UndeclaredMetric(f"metric {metric!r} is not declared: declare it in aebench/metrics/declarations.py "
                               f"(known: {', '.join(m.name for m in DECLARED)})")
    return found


def direction(metric: str) -> str | None:
    """HIGHER when a larger value is better, LOWER when a smaller one is, None for a declared metric
    without a direction and for a name no declaration matches (results of another version, say: the
    report shows them unranked; the evaluation cannot write one, see evaluation.metric_row)."""
    found = declaration(metric)
    return found.direction if found else None
