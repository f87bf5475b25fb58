"""Frechet Inception Distance on the features of a backbone (see backbones.py), with cached references.

FID = |mu_a - mu_b|^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2)), computed by pytorch-fid's
calculate_frechet_distance on the mean and covariance (float64) of two feature sets.

The features of fixed images (the reference test images; the training images of the data-copying
test) are cached on disk under $AEBENCH_CACHE/features, in a file named by dataset, split, backbone
and n, and keyed by a hash of the backbone's weights, of the images themselves and of the kernels
that computed them (device, thread count, oneDNN on or off): a changed split, binarisation or
retrained backbone can never be served stale numbers, and a run reads the features it would have
computed itself, bit for bit, not those of a process with another thread count (whose float32
rounding can differ in the last bits).
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from aebench.features.backbones import Backbone
from aebench.metrics.declarations import FID, FID_BACKBONE_ACC, FID_RECON
from aebench.plumbing.atomic import cache_root, computed_once, write_cache

# What this module computes (declared in declarations.py: torch-free). fid_backbone_acc is the
# backbone's own accuracy (aebench.features), listed here beside the distance it qualifies.
METRICS = (FID, FID_RECON, FID_BACKBONE_ACC)


@dataclass
class FeatureStats:
    mu: np.ndarray
    sigma: np.ndarray
    n: int


def feature_statistics(features: np.ndarray) -> FeatureStats:
    features = np.asarray(features, dtype=np.float64)
    if len(features) < 2:
        raise ValueError(f"FID needs at least 2 feature vectors, got {len(features)}")
    return FeatureStats(features.mean(0), np.cov(features, rowvar=False), len(features))


def frechet_distance(a: FeatureStats, b: FeatureStats) -> float:
    """pytorch-fid's formula; NaN when either set is not finite (a diverged model's samples)."""
    from pytorch_fid.fid_score import calculate_frechet_distance

    if not all(np.isfinite(s).all() for s in (a.mu, a.sigma, b.mu, b.sigma)):
        return float("nan")
    # pytorch-fid prints a note when it regularises a singular product, and newer scipy warns about
    # its `disp` argument: neither tells the user anything, so keep the run's log clean.
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore", DeprecationWarning)
        return float(calculate_frechet_distance(a.mu, a.sigma, b.mu, b.sigma))


def fid_of_features(a: np.ndarray, b: np.ndarray) -> float:
    return frechet_distance(feature_statistics(a), feature_statistics(b))


def images_fingerprint(x: torch.Tensor) -> str:
    digest = hashlib.sha256(str(tuple(x.shape)).encode())
    digest.update(x.detach().float().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def kernel_context(device: torch.device) -> str:
    """What decides the rounding of a feature pass besides its inputs, on this machine."""
    if device.type != "cpu":
        return device.type
    return f"cpu-t{torch.get_num_threads()}-onednn{int(torch.backends.mkldnn.enabled)}"


def features_path(label: str, split: str, backbone: Backbone, images: torch.Tensor) -> Path:
    identity = f"{backbone.fingerprint}/{images_fingerprint(images)}/{kernel_context(images.device)}"
    key = hashlib.sha256(identity.encode()).hexdigest()[:12]
    return cache_root() / "features" / f"{label}_{split}_{backbone.name}_n{len(images)}_{key}.npz"


def cached_features(backbone: Backbone, images: torch.Tensor, label: str, split: str) -> np.ndarray:
    """Backbone features of fixed dataset images (the FID reference, the training images of the
    data-copying test), from the disk cache when computed before. Kept as float32 both when computed
    and when read back, so a cached value is exactly the value computed.

    label: the dataset's name, used only to name the file; the key hashes the weights and images."""
    path = features_path(label, split, backbone, images)
    with computed_once(path):
        if path.is_file():
            try:
                with np.load(path) as cached:
                    return cached["features"].astype(np.float64)
            except Exception:  # a corrupt cache file is recomputed over, never trusted
                pass
        features = backbone.features(images).astype(np.float32)
        buffer = io.BytesIO()
        np.savez(buffer, features=features)
        write_cache(path, buffer.getvalue(), "backbone features")
    return features.astype(np.float64)


def reference_statistics(backbone: Backbone, images: torch.Tensor, label: str, split: str = "test") -> FeatureStats:
    """FID statistics of the reference images' (cached) features."""
    return feature_statistics(cached_features(backbone, images, label, split))
