"""The options of `run`, each declared once.

One table, RUN_OPTIONS, generates the command-line flags of `run`, the keys of a study file with
their accepted TOML types and their defaults, and says where each value goes: `target = "eval"`
values become the EvalConfig field of the same name; the others are read by the command itself
(the grid, the executor, the output folder). Adding an option = one entry here plus its use.

Values arrive as text from the command line or as TOML values from a study file; each entry's
`parse` turns either into the typed value, and an error names the option as the user spelled it
(`--epochs` on the command line, `epochs` in a study file). Plain Python: importing it costs nothing.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from aebench.errors import UserError, choices
from aebench.plumbing.precision import DEFAULT_PRECISION, PRECISIONS

# --------------------------------------------------------------------------- value parsers


def _text(value, where: str) -> str:
    return str(value)


def _names(value, where: str) -> list[str]:
    """"a,b" or ["a", "b"] -> ["a", "b"], repeats dropped, order kept."""
    items = value if isinstance(value, list) else str(value).split(",")
    names = [str(v).strip() for v in items if str(v).strip()]
    if not names:
        raise UserError(f"{where} is empty")
    return list(dict.fromkeys(names))


def _seeds(value, where: str) -> list[int]:
    text = ",".join(str(v) for v in value) if isinstance(value, list) else str(value)
    try:
        seeds = [int(s) for s in _names(text, where)]
    except ValueError:
        raise UserError(f"{where} {text!r}: expected comma-separated integers such as 0,1,2") from None
    if min(seeds) < 0:
        raise UserError(f"{where} {text!r}: seeds must be >= 0")
    return seeds


def _switch(value, where: str) -> bool:
    return value  # a bool already: click's flag pair gives one, and load_study checks a study file's type


def _integer(minimum: int) -> Callable:
    def parse(value, where: str) -> int:
        try:
            number = int(str(value).strip())
        except ValueError:
            number = None
        if isinstance(value, (bool, float)) or number is None or number < minimum:
            raise UserError(f"{where} {value!r}: expected an integer >= {minimum}")
        return number
    return parse


def _number(minimum: float) -> Callable:
    def parse(value, where: str) -> float:
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = float("nan")
        if isinstance(value, bool) or not number >= minimum:
            raise UserError(f"{where} {value!r}: expected a number >= {minimum:g}")
        return number
    return parse


def _one_of(names: tuple[str, ...]) -> Callable:
    def parse(value, where: str) -> str:
        if str(value) not in names:
            raise UserError(f"{where} {value!r}: unknown; choices: {choices(names)}")
        return str(value)
    return parse


# --------------------------------------------------------------------------- the table


@dataclass(frozen=True)
class RunOption:
    key: str  # study-file key, config.json key and (dashed) command-line flag
    help: str
    kinds: tuple[type, ...]  # TOML types a study file may give
    parse: Callable = _text
    default: object = None  # None: unset unless given (then the profile decides)
    target: str = "run"  # "eval": the EvalConfig field of the same name; "run": read by the command
    flag: str = ""  # command-line spelling, when not --key-with-dashes
    repeatable: bool = False  # the flag may be given several times (values are joined with commas)
    metavar: str | None = None

    @property
    def cli_flag(self) -> str:
        return self.flag or "--" + self.key.replace("_", "-")


RUN_OPTIONS = [
    RunOption("models", "Comma-separated model names (default: every registered model).", (list, str), _names),
    RunOption("datasets", "Dataset name; repeat or comma-separate for several (default: the profile's dataset).",
              (list, str), _names, flag="--dataset", repeatable=True),
    RunOption("seeds", "Comma-separated seeds (default: 0).", (list, str, int), _seeds, default="0"),
    RunOption("epochs", "Override the profile's number of epochs.", (int,), _integer(1)),
    RunOption("profile", "smoke, quick (default), standard or paper.", (str,), default="quick"),
    RunOption("data_root", "Folder with IDX files (default: $AEBENCH_DATA or ./data).", (str,)),
    RunOption("fetch", "Fetch a missing dataset (mnist, fashion-mnist) into the data root before any run, as "
              "`python cli.py fetch NAME` does (default); --no-fetch: fail naming that command instead.", (bool,),
              _switch, default=True, flag="--fetch/--no-fetch"),
    RunOption("out", "Folder holding the experiments (default: results).", (str,), default="results"),
    RunOption("experiment", "Experiment subfolder (default: the profile's name).", (str,)),
    RunOption("device", "auto (default), cpu, cuda or mps.", (str,), default="auto"),
    RunOption("precision", "Training arithmetic: fp32 (default) or bf16 (bfloat16 autocast where the CPU or GPU has "
              "it natively; evaluation stays float32). Part of the run id.", (str,), _one_of(PRECISIONS),
              default=DEFAULT_PRECISION),
    RunOption("jobs", "Grid cells run at once on this machine, each in its own process (default 1).", (int,),
              _integer(1), default=1),
    RunOption("executor", "local (default) or ray.", (str,), default="local"),
    RunOption("ray_address", "Address of a running Ray cluster (default: start Ray locally).", (str,)),
    RunOption("ray_cpus_per_run", "CPUs each Ray task reserves (default 1).", (int, float), _number(0.01), default=1.0),
    RunOption("ray_gpus_per_run", "GPUs each Ray task reserves; > 0 trains on cuda (default 0).", (int, float),
              _number(0), default=0.0),
    RunOption("fid_backbone", "FID feature network: auto (default), inception or classifier.", (str,), target="eval"),
    RunOption("fid_samples", "Generated images per FID (default: the profile's; 0: no FID).", (int,), _integer(0),
              target="eval"),
    RunOption("fid_reference", "Test images of the FID reference, at most (default: the profile's).", (int,),
              _integer(0), target="eval"),
    RunOption("scope", "Metrics to compute: all (default) or generation (the samples' fid, kid, precision, recall, "
              "density, coverage only).", (str,), target="eval"),
    RunOption("weights_from", "Score the trained weights of the same runs in this experiment folder instead of "
              "training (needs its checkpoints), e.g. with --fid-backbone inception --scope generation.", (str,),
              metavar="FOLDER"),
    RunOption("reuse_from", "Experiment folders whose finished runs with the same run id are copied instead of "
              "trained again (comma-separated).", (list, str), _names, metavar="FOLDERS"),
    RunOption("note", "A line about the experiment, shown at the top of its report (tuned.toml says how its "
              "hyperparameters were chosen).", (str,)),
    RunOption("inception_weights", "pytorch-fid's Inception weights file (default: $TORCH_HOME/hub/checkpoints/"
              "pt_inception-2015-12-05-6726825d.pth).", (str,), target="eval", metavar="PATH"),
]
OPTIONS_BY_KEY = {option.key: option for option in RUN_OPTIONS}
DEFAULTS = {option.key: option.default for option in RUN_OPTIONS if option.default is not None}


def parse_options(values: dict, where: Callable[[RunOption], str]) -> dict:
    """{key: raw value} -> {key: typed value}; None (not given) is left out. `where` names an option
    as its source spells it, for error messages."""
    parsed = {}
    for key, value in values.items():
        if value is None:
            continue
        option = OPTIONS_BY_KEY[key]
        parsed[key] = option.parse(value, where(option))
    return parsed


def eval_settings(config: dict) -> dict:
    """The resolved options that are EvalConfig fields, by field name."""
    return {o.key: config[o.key] for o in RUN_OPTIONS if o.target == "eval" and config.get(o.key) is not None}
