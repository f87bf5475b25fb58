"""A user's own images as a dataset: `--dataset npz:PATH` or `--dataset folder:PATH[@SIZE]`.

The readers (aebench/data/user_images.py) check the files; this module turns them into a DatasetSpec
like a built-in one. What a researcher would expect where the files say nothing:

- **Split.** An npz `split` array is used as given. Otherwise the split is fixed and seeded like the
  small built-ins': 20% test, 10% validation, the rest training (SPLIT_SEED, the same for every run).
- **Name in results.** The path is where the data is on this machine, not what it is, so run ids,
  results and the FID classifier's cache name the data by its file (or folder) name and a digest of
  its content: `npz-STEM-DIGEST8` (`folder-NAME-SIZEpx-DIGEST8` when resized). The same file in
  another folder or on another machine gives the same ids; a changed file gives new ones.
- **Size.** Images are resized only when asked (`folder:PATH@SIZE`, to SIZE x SIZE).
"""
from __future__ import annotations

import functools
import re
from pathlib import Path

import numpy as np
import torch

from aebench.data.splits import SPLIT_SEED, DatasetSpec, RawData
from aebench.data.user_images import content_digest, read_folder, read_npz
from aebench.errors import UserError

SCHEMES = ("npz", "folder")
TEST_FRACTION, VAL_FRACTION = 0.2, 0.1
MIN_IMAGES = 10  # so that the seeded split leaves at least one test and one validation image


def is_own_images(name: str) -> bool:
    scheme, sep, rest = name.partition(":")
    return bool(sep) and scheme in SCHEMES


def _folder_argument(rest: str) -> tuple[Path, int | None]:
    path, sep, size = rest.rpartition("@")
    if not sep or "/" in size:  # no @, or an @ inside a folder name
        return Path(rest).expanduser(), None
    if not size.isdigit() or int(size) < 4:
        raise UserError(f"--dataset folder:{rest}: the size after @ must be a whole number of pixels >= 4 "
                        f"(e.g. folder:{path}@32)")
    return Path(path).expanduser(), int(size)


def _seeded_split(n: int, where: str) -> np.ndarray:
    if n < MIN_IMAGES:
        raise UserError(f"{where}: {n} images; at least {MIN_IMAGES} are needed for a train / validation / test "
                        "split (or give an npz `split` array)")
    n_test, n_val = max(1, round(TEST_FRACTION * n)), max(1, round(VAL_FRACTION * n))
    order = torch.randperm(n, generator=torch.Generator().manual_seed(SPLIT_SEED)).numpy()
    split = np.full(n, "train", dtype="<U5")
    split[order[:n_test]], split[order[n_test:n_test + n_val]] = "test", "val"
    return split


def _raw(images, where: str) -> RawData:
    split = images.split if images.split is not None else _seeded_split(len(images.images), where)
    return RawData(images.images, images.labels, source=images.source, split=split)


@functools.lru_cache(maxsize=None)
def own_images_spec(name: str) -> DatasetSpec:
    """The DatasetSpec of `npz:PATH` or `folder:PATH[@SIZE]` (checked to exist; read when loaded)."""
    scheme, _, rest = name.partition(":")
    if not rest:
        raise UserError(f"--dataset {name}: give a path after '{scheme}:' (e.g. {scheme}:data/mine"
                        f"{'.npz' if scheme == 'npz' else ''})")
    path, size = (Path(rest).expanduser(), None) if scheme == "npz" else _folder_argument(rest)
    if not path.exists():
        raise UserError(f"--dataset {name}: {path} not found")
    stem = re.sub(r"[^A-Za-z0-9]+", "-", path.resolve().stem if scheme == "npz" else path.resolve().name).strip("-")
    key = "-".join([scheme, stem or "data", *([f"{size}px"] if size else []), content_digest(path)[:8]])

    def load(roots) -> RawData:
        return _raw(read_npz(path) if scheme == "npz" else read_folder(path, size), name)

    def locate(roots) -> str | None:
        return None if path.exists() else f"{path} not found"

    what = "npz file" if scheme == "npz" else f"image folder{f', resized to {size}x{size}' if size else ''}"
    return DatasetSpec(name, f"your images: {what} {path.resolve()}", load, locate, n_val=0, key=key)
