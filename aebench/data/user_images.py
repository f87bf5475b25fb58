"""Readers for a user's own images: an .npz file or a folder of image files.

npz (`np.load(allow_pickle=False)`): array `x`, N x H x W or N x C x H x W with C 1 or 3 (channels-last
is refused: N x H x W x 3 and N x 3 x H x W cannot always be told apart), uint8 or float in [0, 1];
optional `y`, N integer labels >= 0; optional `split`, N entries "train" / "val" / "test" (or 0 / 1 / 2),
each part non-empty. No other array names.

folder: one subfolder per class (sorted names give labels 0..K-1), images directly inside each, or
images directly in the folder itself (unlabelled). Extensions: see IMAGE_EXTENSIONS; other files and
names starting with "." are ignored. Greyscale images give C = 1, anything else C = 3 (alpha dropped).

Every problem with the user's data is a one-line UserError naming the file.

content_digest names the data by its bytes. Reading them all is the slow part of naming a large dataset,
and every process that names it (each command, each worker of a grid) did it again, so a digest is
cached under $AEBENCH_CACHE/digests (never in the user's data folder), keyed by the path and, for each
file, its relative path, size, mtime_ns and ctime_ns: a file written since (even one whose mtime was set
back: ctime cannot be) is read again. A file modified in the last RECENT_SECONDS is not trusted by its
stat (timestamps tick coarsely on some file systems, so a rewrite within the tick would look unchanged):
its digest is computed but not cached.
"""
from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from aebench.errors import UserError, choices
from aebench.plumbing.atomic import cache_root, write_cache

IMAGE_EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png", ".tif", ".tiff", ".webp")
SPLITS = ("train", "val", "test")  # an integer split means the index in this tuple
NPZ_ARRAYS = ("x", "y", "split")
MIN_SIDE = 4
DIGEST_CACHE_VERSION = 1  # raise when content_digest's stream changes: older entries then never match
RECENT_SECONDS = 3  # above FAT's 2 s timestamps
_GREY_MODES = {"1", "L", "LA"}


@dataclass(frozen=True)
class UserImages:
    """A user's images as read, before any split or scaling: what the suite builds its datasets from."""

    images: np.ndarray  # N x C x H x W, C in {1, 3}; uint8, or float32 in [0, 1]
    labels: np.ndarray | None  # int64, shape (N,), values 0..K-1
    split: np.ndarray | None  # str, each "train", "val" or "test"
    class_names: tuple[str, ...] | None
    source: str


# ---------------------------------------------------------------- npz


def read_npz(path) -> UserImages:
    """Read and check an .npz (arrays x, optional y and split); see the module docstring."""
    path = Path(path).expanduser().absolute()
    if not path.is_file():
        raise UserError(f"npz file {path} {'is not a file' if path.exists() else 'not found'}")
    try:
        with open(path, "rb") as f:
            magic = f.read(6)
    except OSError as e:
        raise UserError(f"cannot read npz file {path} ({e})") from None
    if magic == b"\x93NUMPY":
        raise UserError(f"{path} is a .npy file (one array); expected an .npz with arrays {', '.join(NPZ_ARRAYS)}")
    if not magic.startswith(b"PK"):  # else numpy tries pickle and says to trust the file: wrong advice here
        raise UserError(f"{path} is not an .npz file (not a zip archive); write one with np.savez(path, x=...)")
    try:
        npz = np.load(path, allow_pickle=False)
    except Exception as e:  # whatever numpy or zipfile raise here, the archive is damaged
        raise UserError(f"{path} is a damaged .npz file ({type(e).__name__}: {e})") from None
    with npz:
        unknown = sorted(set(npz.files) - set(NPZ_ARRAYS))
        if unknown:
            raise UserError(f"{path} holds unknown arrays {', '.join(unknown)}; known arrays: {', '.join(NPZ_ARRAYS)}")
        if "x" not in npz.files:
            raise UserError(f"{path} has no array x (the images); known arrays: {', '.join(NPZ_ARRAYS)}")
        arrays = {}
        for name in npz.files:
            try:  # members are read lazily: corruption inside the archive shows up only here
                arrays[name] = npz[name]
            except Exception as e:
                raise UserError(f"cannot read array {name} from {path} ({type(e).__name__}: {e}); the file is damaged, "
                                f"or the array holds Python objects (only numbers and strings are read)") from None
    x = _npz_images(path, arrays["x"])
    y = _npz_labels(path, arrays["y"], len(x)) if "y" in arrays else None
    split = _npz_split(path, arrays["split"], len(x)) if "split" in arrays else None
    return UserImages(x, y, split, None, f"npz file {path} ({len(arrays)} arrays: {', '.join(sorted(arrays))})")


def _npz_images(path: Path, x: np.ndarray) -> np.ndarray:
    shapes = "N x H x W or N x C x H x W with C 1 or 3 (channels-last N x H x W x C is not accepted)"
    if x.ndim == 3:
        x = x[:, None]
    elif x.ndim != 4 or x.shape[1] not in (1, 3):
        raise UserError(f"{path}: x has shape {x.shape}; expected {shapes}")
    if len(x) == 0:
        raise UserError(f"{path}: x holds no images (N = 0)")
    if min(x.shape[2:]) < MIN_SIDE:
        raise UserError(f"{path}: images are {x.shape[2]} x {x.shape[3]}; at least {MIN_SIDE} x {MIN_SIDE} needed")
    if x.dtype == np.uint8:
        return x
    if x.dtype not in (np.float16, np.float32, np.float64):
        raise UserError(f"{path}: x has dtype {x.dtype}; expected uint8 (0..255) or float16/32/64 in [0, 1]")
    if not np.isfinite(x).all():
        raise UserError(f"{path}: x holds NaN or infinite values; float images must be finite, in [0, 1]")
    low, high = float(x.min()), float(x.max())
    if low < 0 or high > 1:
        raise UserError(f"{path}: float images must lie in [0, 1], x spans [{low:g}, {high:g}] "
                        f"(divide 0..255 data by 255, or store it as uint8)")
    return x.astype(np.float32)


def _npz_labels(path: Path, y: np.ndarray, n: int) -> np.ndarray:
    if y.ndim != 1 or y.dtype.kind not in "iu":
        raise UserError(f"{path}: y must be a 1-D integer array of labels, got shape {y.shape} dtype {y.dtype}")
    if len(y) != n:
        raise UserError(f"{path}: y has {len(y)} labels but x has {n} images")
    if (y < 0).any():
        raise UserError(f"{path}: y holds negative labels ({y.min()}); labels must be integers >= 0")
    return y.astype(np.int64)


def _npz_split(path: Path, split: np.ndarray, n: int) -> np.ndarray:
    valid = f"{choices(SPLITS)} (or integers 0 = train, 1 = val, 2 = test)"
    if split.ndim != 1:
        raise UserError(f"{path}: split must be 1-D, got shape {split.shape}; values: {valid}")
    if len(split) != n:
        raise UserError(f"{path}: split has {len(split)} entries but x has {n} images")
    if split.dtype.kind in "iu":
        bad = sorted(set(split.tolist()) - set(range(len(SPLITS))))
        if bad:
            raise UserError(f"{path}: split holds unknown values {', '.join(map(str, bad[:5]))}; values: {valid}")
        split = np.array(SPLITS)[split]
    elif split.dtype.kind in "US":
        split = np.char.decode(split, "latin-1") if split.dtype.kind == "S" else split
        bad = sorted(set(split.tolist()) - set(SPLITS))
        if bad:
            raise UserError(f"{path}: split holds unknown values {', '.join(map(repr, bad[:5]))}; values: {valid}")
        split = split.astype(str)
    else:
        raise UserError(f"{path}: split has dtype {split.dtype}; values: {valid}")
    for part in SPLITS:  # training early-stops on val and is scored on test: none may be empty
        if not (split == part).any():
            raise UserError(f"{path}: split has no '{part}' images; train, val and test must each be non-empty")
    return split


# ---------------------------------------------------------------- folder


def _is_image(p: Path) -> bool:
    return p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_EXTENSIONS


def _listing(root: Path) -> tuple[list[Path], list[int] | None, tuple[str, ...] | None]:
    """The image files read_folder reads, in order, with their labels and class names (or None)."""
    if not root.is_dir():
        raise UserError(f"image folder {root} {'is not a folder' if root.exists() else 'not found'}")
    # sorted by name (code points): the same order, labels and digest on every machine
    entries = sorted((p for p in root.iterdir() if not p.name.startswith(".")), key=lambda p: p.name)
    classes = [p for p in entries if p.is_dir()]
    loose = [p for p in entries if _is_image(p)]
    if not classes:
        if not loose:
            raise UserError(f"image folder {root} holds no images ({', '.join(IMAGE_EXTENSIONS)}) "
                            f"and no class subfolders")
        return loose, None, None
    if loose:
        raise UserError(f"image folder {root} holds both class subfolders and images ({loose[0].name}); "
                        f"put every image in a class subfolder, or use a folder without subfolders (unlabelled)")
    files, labels = [], []
    for label, folder in enumerate(classes):
        found = sorted((p for p in folder.iterdir() if _is_image(p)), key=lambda p: p.name)
        if not found:
            raise UserError(f"class subfolder {folder} holds no images ({', '.join(IMAGE_EXTENSIONS)})")
        files += found
        labels += [label] * len(found)
    return files, labels, tuple(p.name for p in classes)


def _open(path: Path, action):
    try:
        with Image.open(path) as im:
            return action(im)
    except UserError:
        raise
    except Exception as e:  # Pillow raises many types for broken files; all mean "cannot read this image"
        raise UserError(f"cannot read image {path} ({type(e).__name__}: {e})") from None


def _header(path: Path, im: Image.Image):
    if im.mode in ("I", "F") or im.mode.startswith("I;16"):  # no fixed range: scaling them would be a guess
        raise UserError(f"image {path} has mode {im.mode} (16-bit or float); convert it to 8-bit grey or RGB")
    return im.mode, im.size


def read_folder(path, size: int | None = None) -> UserImages:
    """Read a folder of class subfolders (or of images only, unlabelled) as uint8 images; with `size`,
    every image is resized to size x size, else all must already share one size."""
    root = Path(path).expanduser().absolute()
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < MIN_SIDE):
        raise UserError(f"image size must be an integer >= {MIN_SIDE}, got {size!r}")
    files, labels, class_names = _listing(root)
    # First pass reads headers only (cheap): the colour and the size of the whole set are known
    # before any pixel is decoded, so the images go straight into one preallocated array.
    headers = [_open(f, lambda im, f=f: _header(f, im)) for f in files]
    grey = all(mode in _GREY_MODES for mode, _ in headers)
    if size is None:
        w, h = headers[0][1]
        other = next((i for i, (_, s) in enumerate(headers) if s != (w, h)), None)
        if other is not None:
            ow, oh = headers[other][1]
            raise UserError(f"images in {root} differ in size: {files[0].relative_to(root)} is {w} x {h}, "
                            f"{files[other].relative_to(root)} is {ow} x {oh} (W x H); "
                            f"give a size to resize every image to size x size")
        if min(w, h) < MIN_SIDE:
            raise UserError(f"images in {root} are {w} x {h}; at least {MIN_SIDE} x {MIN_SIDE} needed")
    else:
        w = h = size
    images = np.empty((len(files), 1 if grey else 3, h, w), dtype=np.uint8)

    def pixels(im: Image.Image) -> np.ndarray:
        im = im.convert("L" if grey else "RGB")  # first frame of a GIF/TIFF; alpha dropped
        if size is not None:  # resizing happens only when asked: never silently change the data
            im = im.resize((size, size), Image.BILINEAR)
        a = np.asarray(im, dtype=np.uint8)
        return a[None] if grey else a.transpose(2, 0, 1)

    for i, f in enumerate(files):
        images[i] = _open(f, pixels)
    kind = "unlabelled" if class_names is None else f"{len(class_names)} classes"
    return UserImages(images, None if labels is None else np.array(labels, dtype=np.int64), None, class_names,
                      f"image folder {root} ({len(files)} images, {kind})")


# ---------------------------------------------------------------- digest


def _hash_file(digest, path: Path) -> None:
    try:
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
    except OSError as e:
        raise UserError(f"cannot read {path} ({e})") from None


def content_digest(path) -> str:
    """First 12 hex digits of a sha256 of the content only: a file's bytes (what `sha256sum` gives), or
    for a folder each image's relative POSIX path, length and bytes, so moving the data keeps its id.
    Cached on disk while no file changes (module docstring)."""
    path = Path(path).expanduser().absolute()
    if not path.exists():
        raise UserError(f"dataset {path} not found")
    files = [path] if path.is_file() else _listing(path)[0]
    before = _file_states(path, files)
    key = json.dumps([DIGEST_CACHE_VERSION, str(path), before]).encode()
    entry = cache_root() / "digests" / f"{hashlib.sha256(key).hexdigest()[:32]}.txt"
    cached = _cached_digest(entry)
    if cached:
        return cached
    digest = _read_digest(path, files)
    if _file_states(path, files) == before and not _recent(before):  # else the stat may not show a change
        write_cache(entry, digest.encode(), "a dataset's digest")
    return digest


def _read_digest(path: Path, files: list[Path]) -> str:
    digest = hashlib.sha256()
    for f in files:
        if f != path:  # a folder's files framed by path and length: no two folders give the same stream
            name = f.relative_to(path).as_posix().encode()
            digest.update(len(name).to_bytes(8, "big") + name + _stat(f).st_size.to_bytes(8, "big"))
        _hash_file(digest, f)
    return digest.hexdigest()[:12]


def _stat(path: Path):
    try:
        return path.stat()
    except OSError as e:
        raise UserError(f"cannot read {path} ({e})") from None


def _file_states(path: Path, files: list[Path]) -> list[tuple]:
    """What the cache key covers besides the path: each file's name, size and timestamps."""
    return [(f.relative_to(path).as_posix(), s.st_size, s.st_mtime_ns, s.st_ctime_ns)
            for f, s in ((f, _stat(f)) for f in files)]


def _recent(states: list[tuple]) -> bool:
    """Whether a file was modified in the last RECENT_SECONDS (its timestamps could still tick)."""
    newest = max(max(mtime, ctime) for _, _, mtime, ctime in states)
    return time.time_ns() - newest < RECENT_SECONDS * 10**9


def _cached_digest(entry: Path) -> str | None:
    """The digest an earlier process cached, or None (no entry, or one that does not read as a digest)."""
    try:
        text = entry.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None
    return text if re.fullmatch(r"[0-9a-f]{12}", text) else None
