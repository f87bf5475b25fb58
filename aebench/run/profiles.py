"""Profiles: named bundles of training, data and shared model settings.

smoke: seconds per model on digits (tests, CI). quick: minutes per model on a CPU (mnist-5k).
standard: the reference studies: full MNIST / Fashion-MNIST (50k / 10k / 10k) on a laptop CPU, MLPs,
converged by early stopping (docs/evaluation.md, "The standard profile", says why each value).
paper: the SWAE paper's settings (docs/swae.md), meant for a GPU; it runs on a CPU, slowly.
A model's own per-profile values (SWAE's K, say) live in its file as `profile_defaults`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from aebench.errors import UserError, choices
from aebench.run.evaluation import EvalConfig
from aebench.run.training import TrainConfig


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    dataset: str  # used when --dataset is not given
    train: TrainConfig
    model: dict  # shared model settings, applied to every model that has the field
    binarize: bool = False
    eval: EvalConfig = field(default_factory=EvalConfig)


PROFILES = {
    p.name: p
    for p in [
        # Caps are limits, not budgets: early stopping (patience on the validation loss) ends the runs,
        # and a run the cap stops is flagged as under-trained. KL warm-up of 20 epochs: measured on
        # digits, it halved VampPrior's epochs to convergence (114 -> 55) at equal or better kNN accuracy.
        Profile("smoke", "seconds per model on digits: MLP, latent 8, early stopping (cap 300 epochs)", "digits",
                TrainConfig(epochs=300, batch_size=64, lr=2e-3, patience=10, optimizer="adam"),
                {"latent_dim": 8, "arch": "mlp", "warmup_epochs": 20},
                eval=EvalConfig(fid_samples=2000)),  # against all 360 test images: cheap in the classifier's 64-d
        Profile("quick", "minutes per model on a CPU: conv net, latent 16, early stopping (cap 300 epochs)", "mnist-5k",
                TrainConfig(epochs=300, batch_size=100, lr=1e-3, patience=10, optimizer="adam"),
                {"latent_dim": 16, "arch": "auto", "warmup_epochs": 20},
                eval=EvalConfig(fid_samples=10000, fid_reference=10000)),  # against all 1000 test images
        # MLPs (784-256-256-latent, ReLU: the suite's "mlp"), as pythae's default MNIST networks
        # (784-512-latent) and the VampPrior paper's main results (784-300-300-latent, gated) are;
        # latent 40 as in the SWAE and VampPrior papers; grey images (no binarisation) so that
        # Fashion-MNIST's textures survive. Patience 10 epochs (5000 steps) on 10k validation images; the cap of 500 is a
        # limit early stopping is meant never to reach (runs.csv `stopped` says whether it did).
        Profile("standard", "full MNIST / Fashion-MNIST on a CPU: MLP 256-256, latent 40, Adam 1e-3, batch 100, "
                "early stopping (patience 10, cap 500)", "mnist",
                TrainConfig(epochs=500, batch_size=100, lr=1e-3, patience=10, optimizer="adam"),
                {"latent_dim": 40, "arch": "mlp", "warmup_epochs": 20},
                eval=EvalConfig(fid_samples=10000, fid_reference=10000)),  # 10k samples vs the 10k test images
        Profile("paper", "the SWAE paper: gated nets, latent 40, AdamNormGrad lr 5e-4, batch 100, "
                "200 epochs, patience 50, KL warm-up 100 epochs, dynamic binarisation", "mnist",
                TrainConfig(epochs=200, batch_size=100, lr=5e-4, patience=50, optimizer="adam-normgrad"),
                {"latent_dim": 40, "arch": "gated", "warmup_epochs": 100}, binarize=True,
                # 10k vs the 10k test images: auto picks Inception here when its weights are present, and
                # Inception needs at least 5000 on both sides (the SWAE paper's 2000 samples are too few)
                eval=EvalConfig(fid_samples=10000, fid_reference=10000)),
    ]
}


def get_profile(name: str) -> Profile:
    if name not in PROFILES:
        raise UserError(f"unknown profile '{name}'; choices: {choices(PROFILES)}")
    return PROFILES[name]


def model_settings(profile: Profile, model_cls) -> dict:
    """Hyperparameter overrides a profile gives one model: the shared ones it has, then its own."""
    fields = model_cls.Config.field_names()
    shared = {k: v for k, v in profile.model.items() if k in fields}
    return shared | model_cls.profile_defaults.get(profile.name, {})
