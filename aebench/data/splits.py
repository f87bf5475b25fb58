"""A dataset in memory: what a loader returns (RawData), what a dataset declares (DatasetSpec), and the
fixed train / validation / test split every model is trained and scored on (DataSplits).

Every dataset gives float images in [0, 1] shaped (N, C, H, W) and integer labels (labels feed the
probes and the FID classifier only; a user's unlabelled images carry -1). Splits are fixed by
SPLIT_SEED, not by the run's seed, so that every run of every model is scored on the same test images.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from aebench.errors import UserError

SPLIT_SEED = 0
BINARIZE_SEED = 1234  # validation and test sets are binarised once, always the same way
PROBE_BINARIZE_SEED = 1235  # the training images the probes are fit on, binarised once the same way
SPLIT_NAMES = ("train", "val", "test")


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
    labelled: bool = True  # False for a user's images without labels: every label is -1, the probes are skipped

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
        return int(self.train_y.max().item()) + 1 if self.labelled else 0

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
    labels: np.ndarray | None  # None: unlabelled (a user's images)
    test_images: np.ndarray | None = None
    test_labels: np.ndarray | None = None
    source: str = ""
    split: np.ndarray | None = None  # "train" / "val" / "test" per image: the user's own split, used as given


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    description: str
    load: Callable[[list[Path]], RawData]
    locate: Callable[[list[Path]], str | None]  # a reason why it is unavailable, or None
    n_val: int
    n_test: int = 0  # carved from the data when there is no standard test set
    key: str = ""  # the dataset's name in run ids, results and caches, when not `name` (a user's data: see key_of)
    # Where `aebench fetch` gets it (FetchSources of aebench/data/sources.py, in the order tried; none:
    # not fetchable), and the IdxExpectation every fetched copy is checked against before it is published.
    fetch_sources: tuple = ()
    expected: object = None




def _as_float_images(images: np.ndarray) -> torch.Tensor:
    x = torch.as_tensor(np.asarray(images))
    x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
    return x.unsqueeze(1) if x.dim() == 3 else x  # (N, H, W) -> (N, 1, H, W)


def _as_labels(labels: np.ndarray | None, n: int) -> torch.Tensor:
    return torch.full((n,), -1, dtype=torch.long) if labels is None else torch.as_tensor(np.asarray(labels)).long()


def _split(spec: DatasetSpec, raw: RawData):
    x, y = _as_float_images(raw.images), _as_labels(raw.labels, len(raw.images))
    if raw.split is not None:  # the user's own split, as given
        parts = [torch.as_tensor(np.flatnonzero(np.asarray(raw.split) == name)) for name in SPLIT_NAMES]
        return tuple((x[index], y[index]) for index in parts)
    if raw.test_images is not None:  # standard test set; validation is the end of the training file
        tx, ty = _as_float_images(raw.test_images), torch.as_tensor(np.asarray(raw.test_labels)).long()
        n_train = len(x) - spec.n_val
        return (x[:n_train], y[:n_train]), (x[n_train:], y[n_train:]), (tx, ty)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(SPLIT_SEED))
    test, val, train = order[: spec.n_test], order[spec.n_test: spec.n_test + spec.n_val], order[spec.n_test + spec.n_val:]
    return (x[train], y[train]), (x[val], y[val]), (x[test], y[test])


def make_splits(spec: DatasetSpec, raw: RawData, binarize: bool = False) -> DataSplits:
    """The dataset's fixed split; with binarize, validation and test are binarised once (fixed seed)."""
    (trx, try_), (vax, vay), (tex, tey) = _split(spec, raw)
    name, labelled = spec.key or spec.name, raw.labels is not None
    if not binarize:
        return DataSplits(name, trx, try_, vax, vay, tex, tey, source=raw.source, labelled=labelled)
    g = torch.Generator().manual_seed(BINARIZE_SEED)
    binary_val, binary_test = torch.bernoulli(vax, generator=g), torch.bernoulli(tex, generator=g)
    binary_train = torch.bernoulli(trx, generator=torch.Generator().manual_seed(PROBE_BINARIZE_SEED))
    return DataSplits(name, trx, try_, binary_val, vay, binary_test, tey, binarized=True, source=raw.source,
                      test_grey=tex, train_fixed=binary_train, val_grey=vax, labelled=labelled)
