"""The reproducibility promise as one assertion for every test that compares numbers across code paths
(README, "Reproducibility"; benchmark.provenance.REPRODUCIBLE_RTOL). Bit equality is asserted only
where the promise gives it: the same command, machine and thread count."""
from __future__ import annotations

import pandas as pd

from benchmark.provenance import REPRODUCIBLE_RTOL, reproduced


def metric_values(metrics: pd.DataFrame) -> dict[str, float]:
    """{"run_id|metric|backbone|split|n": value} of a metrics table: every row named by all that is not its value."""
    keys = (metrics["run_id"] + "|" + metrics["metric"] + "|" + metrics["backbone"].fillna("") + "|"
            + metrics["split"] + "|" + metrics["n"].astype(str))
    assert keys.is_unique
    return dict(zip(keys, metrics["value"].astype(float)))


def assert_reproduced(got: dict[str, float], expected: dict[str, float], rtol: float = REPRODUCIBLE_RTOL) -> None:
    """The same rows, every value within rtol of the other (NaN only where the other is NaN)."""
    assert sorted(got) == sorted(expected), f"rows differ: {sorted(set(got) ^ set(expected))[:10]}"
    off = {key: (got[key], expected[key]) for key in expected if not reproduced(got[key], expected[key], rtol)}
    assert not off, f"{len(off)} of {len(expected)} values differ by more than {rtol:g} relative: {dict(list(off.items())[:5])}"
