"""A model's search space as one tuning searches it, and where a selected point sits in it.

A model declares its space in its own file (`search_space`, types in models/contract.py). What a tuning
searches is that declaration (1) as wide as an earlier tune of the same study left it, (2) widened by
`tune --widen MODEL.NAME=LOW:HIGH`, and (3) with an integer range's upper bound lowered to the largest
value the training set supports (Config.check_data: K <= training images). A range of epochs (a warm-up,
declared with epochs_cap) is widened no further than the epochs the training runs: a longer warm-up never
reaches its full weight. Its declared range stays as declared (it holds the authors' setting, which a
short --epochs would otherwise cut away). A Rescaled field is drawn in its own unit (beta-VAE's raw beta)
and stored as the field (beta_norm). A range may only be widened, never narrowed: earlier trials must stay
inside it.

A selected value within EDGE of a bound (a fraction of the range, in its scale: log for a log range) is
"on the edge": the optimum may lie beyond it, and the space should be widened.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from aebench.errors import UserError, choices
from models.contract import Choice, FloatRange, HyperparameterError, IntRange, Rescaled

EDGE = 0.1  # within 10% of a bound, in the range's scale


@dataclass(frozen=True)
class Dimension:
    name: str  # what is drawn: the field itself, or a Rescaled's quantity
    field: str  # the hyperparameter it sets
    domain: FloatRange | Choice  # as searched now (IntRange is a FloatRange)
    declared: FloatRange | Choice  # as the model declares it
    factor: float = 1.0  # field value = drawn value * factor (Rescaled), else the drawn value itself
    cap: str = ""  # why the upper bound cannot rise (the training images, the training epochs), or ""
    limit: int | None = None  # the most the upper bound may be widened to (the training epochs), or None

    @property
    def is_range(self) -> bool:
        return isinstance(self.domain, FloatRange)

    def field_value(self, drawn):
        return drawn if self.field == self.name else drawn * self.factor

    def describe(self) -> str:
        text = f"{self.name} {self.domain.describe()}"
        if self.is_range and (self.domain.low, self.domain.high) != (self.declared.low, self.declared.high):
            text += f" (declared {self.declared.describe()}{'; ' + self.cap if self.cap else ''})"
        if self.field != self.name:
            text += f" (sets {self.field} = {self.name} x {self.factor:.4g})"
        return text

    def position(self, value: float) -> float:
        """Where a value sits in the range: 0 at low, 1 at high, in the range's scale."""
        scale = math.log if self.domain.log else float
        low, high = scale(self.domain.low), scale(self.domain.high)
        return (scale(value) - low) / (high - low)

    def edge(self, value) -> str:
        """"low" or "high" when the value is within EDGE of that bound, else ""."""
        if not self.is_range:
            return ""
        at = self.position(value)
        return "low" if at <= EDGE else "high" if at >= 1 - EDGE else ""


@dataclass(frozen=True)
class ModelSpace:
    model: str
    dimensions: tuple[Dimension, ...]

    def field_values(self, draw: dict) -> dict:
        """The hyperparameters a drawn point sets, {field: value}."""
        return {d.field: d.field_value(draw[d.name]) for d in self.dimensions}

    def describe(self) -> str:
        return "; ".join(d.describe() for d in self.dimensions)

    def on_edge(self, draw: dict) -> list[str]:
        """Each drawn value within EDGE of a bound, as "name (low|high bound B[, why])"."""
        flags = []
        for d in self.dimensions:
            side = d.edge(draw[d.name])
            if side:
                bound = d.domain.low if side == "low" else d.domain.high
                limit = f", {d.cap}" if side == "high" and d.cap else ""
                flags.append(f"{d.name} ({side} bound {bound:g}{limit})")
        return flags

    def widen_hints(self, draw: dict) -> list[str]:
        """A --widen argument for each value on the edge that can be widened: a decade further on a log
        range (on the low side never down to the range's `above` limit: halfway there in log scale; on the
        high side never past its `limit`), placeholders on a linear one (whose limits only the model's
        Config knows)."""
        hints = []
        for d in self.dimensions:
            side = d.edge(draw[d.name])
            if not side or (side == "high" and d.cap):
                continue
            low, high = d.domain.low, d.domain.high
            if d.domain.log:
                low, high = (low / 10, high) if side == "low" else (low, raised(high * 10, d.limit))
                above = getattr(d.domain, "above", None)
                if above is not None and low <= above:  # a decade lower would leave the model's space (beta-VAE: beta > 1)
                    low = math.sqrt(above * d.domain.low) if above > 0 else d.domain.low / 2
                hints.append(f"--widen {self.model}.{d.name}={low:.3g}:{high:g}")
            else:
                hints.append(f"--widen {self.model}.{d.name}=LOW:HIGH (now {d.domain.describe()})")
        return hints

    def bounds(self) -> dict[str, list]:
        """The ranges as searched, {name: [low, high]}: what the study keeps for the next tune."""
        return {d.name: [d.domain.low, d.domain.high] for d in self.dimensions if d.is_range}


def raised(high, limit: int | None):
    """A widened upper bound, no higher than the limit (when there is one)."""
    return high if limit is None else min(high, limit)


def model_space(model: str, cls, base: dict, n_train: int, image_shape: tuple, earlier: dict | None = None,
                widen: dict | None = None, epochs: int | None = None) -> ModelSpace:
    """The space this tuning searches for one model. base: the model's settings before the search (the
    profile's); earlier: {name: [low, high]} an earlier tune searched; widen: {name: (low, high)} asked now;
    epochs: what each trial trains at most (the limit of a range declared with epochs_cap)."""
    earlier, widen = earlier or {}, widen or {}
    config = cls.Config.from_overrides(base, model)
    dimensions = []
    for field, declared in cls.search_space.items():
        name, factor = (declared.name, declared.factor(config, image_shape)) if isinstance(declared, Rescaled) \
            else (field, 1.0)
        domain = declared.space if isinstance(declared, Rescaled) else declared
        limit = epochs if getattr(domain, "epochs_cap", False) else None
        dimension = Dimension(name, field, domain, domain, factor, limit=limit)
        if dimension.is_range:
            dimension = dataclasses.replace(dimension, domain=hull(domain, earlier.get(name)))
        if name in widen:
            dimension = widened(model, dimension, *widen[name])
        dimensions.append(supported(model, cls, base, at_epochs_cap(dimension), n_train))
    unknown = set(widen) - {d.name for d in dimensions}
    if unknown:
        raise UserError(f"--widen {model}.{sorted(unknown)[0]}: {model} searches no such range; choices: "
                        f"{choices(d.name for d in dimensions if d.is_range)}")
    return ModelSpace(model, tuple(dimensions))


def hull(domain: FloatRange, earlier: list | None) -> FloatRange:
    """The declared range, widened to hold what an earlier tune searched."""
    if not earlier:
        return domain
    return dataclasses.replace(domain, low=min(domain.low, earlier[0]), high=max(domain.high, earlier[1]))


def widened(model: str, dimension: Dimension, low, high) -> Dimension:
    """The dimension widened to [low, high], which must hold its current range and its limits."""
    label, domain = f"--widen {model}.{dimension.name}={low:g}:{high:g}", dimension.domain
    if not dimension.is_range:
        raise UserError(f"{label}: {dimension.name} is a choice among {domain.describe()}, not a range to widen")
    if isinstance(domain, IntRange) and not (float(low).is_integer() and float(high).is_integer()):
        raise UserError(f"{label}: {dimension.name} is an integer; give integer bounds")
    if not (low <= domain.low and high >= domain.high):
        raise UserError(f"{label}: must hold the range searched so far, {domain.describe()} (a space is only "
                        "widened: earlier trials stay inside it)")
    if domain.above is not None and low <= domain.above:
        raise UserError(f"{label}: {dimension.name} must stay > {domain.above:g} ({model}'s space)")
    if domain.log and low <= 0:
        raise UserError(f"{label}: {dimension.name} is searched in log scale; its bounds must be > 0")
    kind = int if isinstance(domain, IntRange) else float
    high = max(raised(high, dimension.limit), domain.high)  # to the limit, as K to the training images
    return dataclasses.replace(dimension, domain=dataclasses.replace(domain, low=kind(low), high=kind(high)))


def at_epochs_cap(dimension: Dimension) -> Dimension:
    """The dimension with its cap named when its upper bound has reached its limit, the training epochs
    (then, like K at the training images, it is not widened further)."""
    if dimension.limit is None or dimension.domain.high < dimension.limit:
        return dimension
    where = "capped by" if dimension.domain.high == dimension.limit else "above"
    return dataclasses.replace(dimension, cap=f"{where} the {dimension.limit} training epochs")


def supported(model: str, cls, base: dict, dimension: Dimension, n_train: int) -> Dimension:
    """The dimension with bounds every Config accepts, an integer range's upper bound lowered to the
    largest value the training set supports (check_data); UserError when its low bound is not supported."""
    if not dimension.is_range:
        for value in dimension.domain.values:
            fits(model, cls, base, dimension, value, n_train)
        return dimension
    low, high = dimension.domain.low, dimension.domain.high
    if not fits(model, cls, base, dimension, low, n_train):
        raise UserError(f"{model}.{dimension.name} = {low:g}, the low bound of its search space, is more than the "
                        f"{n_train} training images support")
    if fits(model, cls, base, dimension, high, n_train):
        return dimension
    if not isinstance(dimension.domain, IntRange):
        raise UserError(f"{model}.{dimension.name} = {high:g}, the high bound of its search space, is more than "
                        f"the {n_train} training images support")
    while high - low > 1:  # the largest supported integer, by bisection (check_data is monotone in it)
        middle = (low + high) // 2
        low, high = (middle, high) if fits(model, cls, base, dimension, middle, n_train) else (low, middle)
    return dataclasses.replace(dimension, domain=dataclasses.replace(dimension.domain, high=low),
                               cap=f"capped by the {n_train} training images")


def fits(model: str, cls, base: dict, dimension: Dimension, value, n_train: int) -> bool:
    """Whether the training set supports this value; a value no Config accepts is a UserError."""
    try:
        config = cls.Config.from_overrides(base | {dimension.field: dimension.field_value(value)}, model)
    except HyperparameterError as e:
        raise UserError(f"{model}'s search space: {dimension.name} = {value:g} is not a valid value ({e})") from None
    try:
        config.check_data(n_train)
    except HyperparameterError:
        return False
    return True


def parse_widen(items, models: list[str]) -> dict[str, dict[str, tuple[float, float]]]:
    """--widen swae.lam=0.001:1000 (repeatable) -> {"swae": {"lam": (0.001, 1000.0)}}."""
    parsed: dict[str, dict] = {}
    for item in items:
        key, sep, value = item.partition("=")
        model, dot, name = key.strip().partition(".")
        low, colon, high = value.partition(":")
        try:
            bounds = (float(low), float(high))
        except ValueError:
            bounds = None
        if not (sep and dot and model and name and colon) or bounds is None or not all(map(math.isfinite, bounds)):
            raise UserError(f"--widen {item!r}: expected MODEL.NAME=LOW:HIGH with numbers, for example "
                            "swae.lam=0.001:1000")
        if model not in models:
            raise UserError(f"--widen {item!r}: model '{model}' is not tuned here; choices: {choices(models)}")
        if bounds[0] >= bounds[1]:
            raise UserError(f"--widen {item!r}: LOW must be below HIGH")
        parsed.setdefault(model, {})[name.strip()] = bounds
    return parsed
