"""The claims file (default studies/claims.toml): which lines each claim is tested on, and when each was
declared. The claims command reads it; aebench/report/claims.py knows no claim of its own.

    ours = "swae"                     # the model whose claims these are
    [[claim]]
    text = "Superior generation"
    declared = 2026-11-30             # a TOML date (or date-time): when these lines were written down
    lines = [
      { metric = "fid" },                                          # ours against the best other model
      { metric = "fid", sampler = "gmm", declared = 2026-12-05 },  # a line added later: its own date
      { metric = "fid", backbone = "inception", dataset = "mnist", against = "vampprior" },
      { metric = "recon_sse", objectives = ["xzrec", "xz"] },      # an ablation line (--ablation folder)
    ]

A line's keys: metric (required; `denoise_sse_s*` stands for the one noise level read per dataset),
sampler (prior or gmm, generation metrics only; default prior: the metric's row as named today, gmm its
`_gmm` row), dataset and backbone (only that dataset; only columns whose backbone starts with it;
default: every one measured), against (a model; default: the best mean among the other models) or
objectives (two of ours' objectives, the claimed better first: an ablation line), declared (default:
its claim's). Every mistake (unknown key, metric or sampler, a missing or malformed date) is a
UserError naming the file, the claim and the line.

The declaration rule. A line declared after its data existed cannot be a test of a prediction: it was
chosen knowing the outcome. A line is exploratory when any successful run it reads (every run of its
dataset in the folder it reads, runs.csv `finished_at`) finished before its declaration, or when those
finish times are unknown (no runs.csv or no finished_at: nothing shows the line came first). A date
counts as the end of that day (UTC), so a run finished on the day of the declaration makes the line
exploratory; a date-time without a zone is UTC. Exploratory lines are shown, marked, and left out of
the verdict (exploratory_reason applies the rule to a folder's runs.csv).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path

import pandas as pd

from aebench.errors import UserError, choices
from aebench.metrics.directions import direction
from aebench.metrics.samplers import PER_SAMPLER_METRICS, SAMPLERS, sampler_metric
from aebench.plumbing.provenance import PROJECT_ROOT
from aebench.plumbing.tomlfile import read_toml

DEFAULT_PATH = PROJECT_ROOT / "studies" / "claims.toml"
DENOISE = "denoise_sse_s*"  # stands for the one denoise_sse_s<sigma> column chosen per dataset
FILE_KEYS = {"ours", "claim"}
CLAIM_KEYS = {"text", "declared", "lines"}
LINE_KEYS = {"metric", "sampler", "dataset", "backbone", "against", "objectives", "declared"}
DEFAULT_SAMPLER = "prior"


@dataclass(frozen=True)
class LineSpec:
    """One declared line; a claims table line per dataset and column it finds (aebench/report/claims.py)."""

    metric: str  # as declared (fid, denoise_sse_s*), whatever the sampler
    declared: datetime  # the instant from which the line counts as declared (module docstring)
    sampler: str = ""  # prior or gmm for a generation metric, "" for any other
    dataset: str = ""  # "": every dataset
    backbone: str = ""  # "": every backbone; else a prefix of the backbone's name
    against: str = ""  # "": the best mean among the other models
    objectives: tuple[str, str] | None = None  # an ablation line: (claimed better, other)
    declared_as: str = ""  # the date as the file gives it

    @property
    def row_metric(self) -> str:
        """The metric as metrics.csv names it: fid_gmm for fid with the gmm sampler."""
        return sampler_metric(self.metric, self.sampler) if self.sampler else self.metric


@dataclass(frozen=True)
class ClaimSpec:
    text: str
    lines: tuple[LineSpec, ...]


@dataclass(frozen=True)
class ClaimsFile:
    shown: str  # the file as the table names it (never an absolute path)
    ours: str
    claims: tuple[ClaimSpec, ...]


def declaration_instant(value, where: str) -> datetime:
    """A TOML date counts from the end of its day (UTC); a date-time as given (UTC when it has no zone)."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, date):
        return datetime.combine(value + timedelta(days=1), time(), tzinfo=timezone.utc)
    raise UserError(f"{where}: declared must be a TOML date such as 2026-12-05 (unquoted), got {value!r}")


def exploratory_reason(runs: pd.DataFrame | None, dataset: str, spec: LineSpec) -> str:
    """Why a line reading the successful runs of `dataset` in `runs` is exploratory; "" when every one of
    them finished after its declaration (the declaration rule, module docstring)."""
    if runs is None or "finished_at" not in runs:
        return "finish times unknown: no runs.csv with finished_at"
    ok = runs[(runs["dataset"] == dataset) & (runs["status"].astype(str) == "ok")]
    finished = pd.to_datetime(ok["finished_at"], utc=True, errors="coerce")
    if ok.empty or finished.isna().any():
        return "finish times unknown: a run without finished_at"
    first = finished.min()
    if first < spec.declared:
        return f"declared {spec.declared_as}, after a run it reads finished at {first:%Y-%m-%d %H:%M} UTC"
    return ""


def _shown_date(value) -> str:
    if isinstance(value, datetime):
        return f"{value.astimezone(timezone.utc) if value.tzinfo else value:%Y-%m-%d %H:%M} UTC"
    return value.isoformat()


def _unknown_keys(table: dict, allowed: set[str], where: str) -> None:
    unknown = set(table) - allowed
    if unknown:
        raise UserError(f"{where}: unknown key {', '.join(sorted(unknown))}; valid keys: {choices(allowed)}")


def _text(table: dict, key: str, where: str) -> str:
    value = table.get(key, "")
    if not isinstance(value, str):
        raise UserError(f"{where}: {key} must be a string, got {value!r}")
    return value.strip()


def _metric(table: dict, where: str) -> str:
    metric = _text(table, "metric", where)
    if not metric:
        raise UserError(f"{where}: no metric (e.g. metric = \"fid\")")
    if metric != DENOISE and direction(metric) is None:
        raise UserError(f"{where}: unknown metric {metric!r}; a claim needs a metric with a direction, e.g. "
                        f"recon_sse, knn5_acc, linear_acc, fid, kid, precision, recall, {DENOISE}, "
                        f"trustworthiness_k10 (aebench/metrics/directions.py)")
    return metric


def _sampler(table: dict, metric: str, where: str) -> str:
    if metric not in PER_SAMPLER_METRICS:
        if "sampler" in table:
            raise UserError(f"{where}: {metric} is not a generation metric, so it has no sampler; samplers apply "
                            f"to {', '.join(PER_SAMPLER_METRICS)}")
        return ""
    sampler = _text(table, "sampler", where) or DEFAULT_SAMPLER
    if sampler not in SAMPLERS:
        raise UserError(f"{where}: unknown sampler {sampler!r}; choices: {choices(SAMPLERS)}")
    return sampler


def _objectives(table: dict, where: str) -> tuple[str, str] | None:
    if "objectives" not in table:
        return None
    value = table["objectives"]
    if "against" in table:
        raise UserError(f"{where}: a line has either against (a model) or objectives (an ablation), not both")
    if not (isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) and v for v in value)
            and value[0] != value[1]):
        raise UserError(f"{where}: objectives must be two different objectives, the claimed better first, "
                        f"e.g. [\"xzrec\", \"zrec\"]; got {value!r}")
    return value[0], value[1]


def _line(table, claim_declared, where: str) -> LineSpec:
    if not isinstance(table, dict):
        raise UserError(f"{where}: a line must be a table such as {{ metric = \"fid\" }}, got {table!r}")
    _unknown_keys(table, LINE_KEYS, where)
    if "declared" not in table and claim_declared is None:
        raise UserError(f"{where}: no declared date (give the claim or the line one, e.g. declared = 2026-12-05)")
    metric, declared = _metric(table, where), table.get("declared", claim_declared)
    return LineSpec(metric, declaration_instant(declared, where), _sampler(table, metric, where),
                    _text(table, "dataset", where), _text(table, "backbone", where), _text(table, "against", where),
                    _objectives(table, where), _shown_date(declared))


def _claim(table, where: str) -> ClaimSpec:
    if not isinstance(table, dict):
        raise UserError(f"{where}: a claim must be a [[claim]] table")
    _unknown_keys(table, CLAIM_KEYS, where)
    text = _text(table, "text", where)
    if not text:
        raise UserError(f"{where}: no text (the claim in words)")
    lines = table.get("lines")
    if not isinstance(lines, list) or not lines:
        raise UserError(f"{where} ({text}): no lines (lines = [{{ metric = \"...\" }}, ...])")
    if "declared" in table:
        declaration_instant(table["declared"], where)  # a bad claim date is reported even if every line has its own
    return ClaimSpec(text, tuple(_line(line, table.get("declared"), f"{where} ({text}), line {i}")
                                 for i, line in enumerate(lines, 1)))


def load_claims_file(path: str | Path | None = None, shown: str | None = None) -> ClaimsFile:
    """The claims of `path` (default DEFAULT_PATH); UserError on any mistake, naming where it is."""
    path = Path(path) if path is not None else DEFAULT_PATH
    shown = shown or str(path)
    document = read_toml(path, "claims file")
    _unknown_keys(document, FILE_KEYS, f"claims file {shown}")
    ours = _text(document, "ours", f"claims file {shown}")
    if not ours:
        raise UserError(f"claims file {shown}: no ours (the model whose claims these are, e.g. ours = \"swae\")")
    claims = document.get("claim")
    if not isinstance(claims, list) or not claims:
        raise UserError(f"claims file {shown}: no claim ([[claim]] tables)")
    return ClaimsFile(shown, ours, tuple(_claim(c, f"claims file {shown}, claim {i}") for i, c in enumerate(claims, 1)))
