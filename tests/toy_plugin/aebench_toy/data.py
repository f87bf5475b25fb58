"""A toy dataset outside the suite, declared under the entry-point group aebench.datasets: the first
600 of scikit-learn's 8x8 digits, inverted (so that its numbers differ from the built-in digits').
Not a test module: a user's dataset plug-in, so it holds no asserts; tests/test_own_datasets.py asserts
what the suite does with it (listing, loading, run ids, a broken declaration refused in one line)."""
from __future__ import annotations

from aebench.data.splits import DatasetSpec, RawData


def _load(roots) -> RawData:
    from sklearn.datasets import load_digits

    digits = load_digits()
    return RawData((1.0 - digits.images[:600] / 16.0).astype("float32"), digits.target[:600],
                   source="aebench_toy: inverted digits 0-599")


TOY_DIGITS = DatasetSpec("toydigits", "the first 600 8x8 digits, inverted (a plug-in's dataset)", _load,
                         lambda roots: None, n_val=60, n_test=120)


def broken_dataset():
    """A declaration that is not a DatasetSpec, for the tests of refusals."""
    return {"not": "a DatasetSpec"}
