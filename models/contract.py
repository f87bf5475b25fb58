"""The contract every model of the suite fulfils, and the typed hyperparameters each one declares.

A model is an nn.Module with encode / decode / sample / reconstruct / loss (see docs/architecture.md). The loop,
the metrics and the runner only ever call these methods, so nothing outside a model's own file needs
to know which model it is.
"""
from __future__ import annotations

import contextlib
import dataclasses
import typing
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from aebench.errors import UserError


class HyperparameterError(UserError):
    """A bad hyperparameter value; the message names the model, the field and what is allowed."""


@dataclass
class Hyperparameters:
    """Base of every model's hyperparameter dataclass: shared fields, validation, JSON round trip."""

    latent_dim: int = 16
    arch: str = "auto"  # shared network family: auto, mlp, conv, gated (see models.networks)

    def __post_init__(self):
        from models.networks import ARCHITECTURES

        self.require(self.latent_dim >= 1, "latent_dim", "must be >= 1")
        self.require(self.arch == "auto" or self.arch in ARCHITECTURES, "arch",
                     f"must be one of auto, {', '.join(sorted(ARCHITECTURES))}")

    def require(self, ok: bool, field: str, rule: str) -> None:
        if not ok:
            raise HyperparameterError(f"{type(self).__qualname__}.{field} = {getattr(self, field)!r}: {rule}")

    def check_data(self, n_train: int) -> None:
        """Hook: reject settings the training set cannot support (e.g. more pseudo-inputs than images)."""

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def field_names(cls) -> set[str]:
        return {f.name for f in dataclasses.fields(cls)}

    @classmethod
    def from_overrides(cls, overrides: dict, model_name: str = "") -> "Hyperparameters":
        """Build from {field: value}; values may be strings (from the command line) and are converted."""
        hints = typing.get_type_hints(cls)
        unknown = set(overrides) - cls.field_names()
        if unknown:
            raise HyperparameterError(
                f"model '{model_name}' has no hyperparameter {', '.join(sorted(unknown))}; "
                f"choices: {', '.join(sorted(cls.field_names()))}"
            )
        return cls(**{k: _convert(v, hints[k], f"{model_name}.{k}") for k, v in overrides.items()})


_KIND_WORDS = {int: "an integer", float: "a number", bool: "true or false"}


def _convert(value, kind, label: str):
    if not isinstance(value, str) or kind is str:
        return value
    try:
        if kind is bool:
            if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(value)
            return value.lower() in ("true", "1", "yes")  # never bool("false") == True
        return kind(value)
    except ValueError:
        raise HyperparameterError(f"{label} = {value!r}: expected {_KIND_WORDS.get(kind, kind.__name__)}") from None


@dataclass(frozen=True)
class FloatRange:
    """Real values in [low, high], drawn uniformly or, with log, uniformly in log scale. `above`: a limit the
    space keeps even when `tune --widen` widens it (values must stay > above), beyond the Config's own rules.
    `epochs_cap`: the values are numbers of training epochs (a warm-up), so `tune` widens the range no
    further than the epochs it trains, as it caps K at the training images."""

    low: float
    high: float
    log: bool = False
    above: float | None = None
    epochs_cap: bool = False

    def __post_init__(self):
        if not self.low < self.high or (self.log and self.low <= 0) or (self.above is not None and self.low <= self.above):
            raise ValueError(f"{self}: needs low < high, low > 0 on a log scale, low > above")

    def describe(self) -> str:
        return f"{self.low:g}..{self.high:g}" + (" log" if self.log else "")


@dataclass(frozen=True)
class IntRange(FloatRange):
    """Integers in [low, high], drawn as FloatRange draws them."""

    low: int
    high: int

    def __post_init__(self):
        super().__post_init__()
        if not (isinstance(self.low, int) and isinstance(self.high, int)):
            raise ValueError(f"{self}: needs integer bounds")


@dataclass(frozen=True)
class Choice:
    """One of a few unordered values (a category: no bound to be near, nothing to widen)."""

    values: tuple

    def describe(self) -> str:
        return "{" + ", ".join(map(str, self.values)) + "}"


@dataclass(frozen=True)
class Rescaled:
    """A field searched in another unit: `name` is drawn from `space`, and the field is set to the drawn
    value times factor(config, image_shape) (beta-VAE: raw beta searched, beta_norm stored)."""

    name: str
    space: FloatRange
    factor: typing.Callable[["Hyperparameters", tuple[int, int, int]], float]

    def describe(self) -> str:
        return f"{self.name} {self.space.describe()}"


SearchDimension = FloatRange | IntRange | Choice | Rescaled


class AutoEncoder(nn.Module):
    """Base class of every model. Subclasses set `Config` and implement encode, decode, sample, loss."""

    Config: ClassVar[type[Hyperparameters]] = Hyperparameters
    # Per-profile hyperparameter overrides that belong to this model (e.g. SWAE's K), by profile name.
    profile_defaults: ClassVar[dict[str, dict]] = {}
    # What `aebench tune` searches (aebench/tune/tuner.py), as data: {field: FloatRange | IntRange | Choice |
    # Rescaled} over the model's own hyperparameters, e.g. {"lam": FloatRange(0.01, 100.0, log=True)}. The
    # fields not listed keep their defaults (profile's, then the Config's). A range's upper bound above what
    # the training set supports (Config.check_data, e.g. K > training images) is lowered to the largest
    # supported value. Empty (the default): nothing to tune, and `tune` refuses the model with a UserError.
    search_space: ClassVar[dict[str, "SearchDimension"]] = {}
    # Set by the training loop while a warm-up runs (aebench.run.training); a model with a warmed-up
    # term (the KL of the VAE family) multiplies it by this. 1 outside training and after the warm-up.
    warmup_weight: float = 1.0

    def __init__(self, image_shape: tuple[int, int, int], config: Hyperparameters):
        super().__init__()
        self.image_shape = tuple(image_shape)
        self.config = config

    def prepare(self, train_x: torch.Tensor, generator: torch.Generator) -> None:
        """Hook: see the training images once before training (e.g. to initialise pseudo-inputs)."""

    def after_step(self) -> None:
        """Hook: called after each optimiser step, to keep parameters in their domain (e.g. [0, 1])."""

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Deterministic representation for the probes (the posterior mean for VAEs)."""
        raise NotImplementedError

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1]."""
        raise NotImplementedError

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n images drawn from the model's prior through the decoder."""
        raise NotImplementedError

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    def loss(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """{"loss": what is minimised, plus each named term}, all scalars averaged over the batch."""
        raise NotImplementedError

    @property
    def warmup_epochs(self) -> int:
        """Epochs of the warm-up: the config's `warmup_epochs` where the model has one, else 0."""
        return getattr(self.config, "warmup_epochs", 0)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def noise(self, shape, generator: torch.Generator | None) -> torch.Tensor:
        """Standard normal noise on the model's device; drawn on the CPU when a generator is given
        so that seeded draws are the same on every device."""
        if generator is None:
            return torch.randn(shape, device=self.device)
        return torch.randn(shape, generator=generator).to(self.device)


def per_image_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum over every dimension but the batch: per-image SSE, KL over latent dims, ...; in float32 at least
    (a bfloat16 input, from a network of a model's own under autocast, is summed in float32)."""
    return (t.float() if t.dtype in LOW_PRECISION else t).flatten(1).sum(1)


LOW_PRECISION = (torch.bfloat16, torch.float16)


@contextlib.contextmanager
def without_autocast(t: torch.Tensor):
    """Runs a statistic between codes or images (distances, kernels) in float32 even while the networks
    train under autocast: its differences of near-equal numbers would lose their digits in bfloat16, and
    it is cheap next to the networks."""
    with torch.autocast(t.device.type, enabled=False):
        yield
