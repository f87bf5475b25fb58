"""The reproducibility promise as one assertion for every test that compares numbers across code paths
(README, "Reproducibility"; aebench.plumbing.provenance.REPRODUCIBLE_RTOL). Bit equality is asserted only
where the promise gives it: the same command, machine and thread count."""
from __future__ import annotations

import pandas as pd

from aebench.metrics.samplers import sampler_metric, split_sampler
from aebench.plumbing.provenance import REPRODUCIBLE_RTOL, SPREAD_OF, reproduced


def metric_values(metrics: pd.DataFrame) -> dict[str, float]:
    """{"run_id|metric|backbone|split|n": value} of a metrics table: every row named by all that is not its value."""
    keys = (metrics["run_id"] + "|" + metrics["metric"] + "|" + metrics["backbone"].fillna("") + "|"
            + metrics["split"] + "|" + metrics["n"].astype(str))
    assert keys.is_unique
    return dict(zip(keys, metrics["value"].astype(float)))


def assert_reproduced(got: dict[str, float], expected: dict[str, float], rtol: float = REPRODUCIBLE_RTOL) -> None:
    """The same rows, every value within rtol of the other (NaN only where the other is NaN)."""
    assert sorted(got) == sorted(expected), f"rows differ: {sorted(set(got) ^ set(expected))[:10]}"
    off = {key: (got[key], expected[key]) for key in expected
           if not reproduced(got[key], expected[key], rtol, spread_scale(key, expected))}
    assert not off, f"{len(off)} of {len(expected)} values differ by more than {rtol:g} relative: {dict(list(off.items())[:5])}"


def spread_scale(key: str, values: dict[str, float]) -> float:
    """For a spread's row (kid_std, kid_std_gmm) the value of the row it spreads: the same key with the metric
    part replaced (provenance.SPREAD_OF), else 0. The promise holds a spread within rtol of that value."""
    parts = key.split("|")
    for i, part in enumerate(parts):
        base, sampler = split_sampler(part)
        if base in SPREAD_OF:
            of = "|".join(parts[:i] + [sampler_metric(SPREAD_OF[base], sampler)] + parts[i + 1:])
            return abs(values.get(of, 0.0))
    return 0.0
