"""aebench command line: run, tune, report, claims, check, list, fetch.

Every user mistake ends as one line on stderr and exit code 2; Ctrl-C / SIGTERM end with 130 and
leave the results valid (the next identical command finishes the grid).
"""
from __future__ import annotations

import signal
import sys

import click

from aebench.errors import UserError, choices
from aebench.run.options import RUN_OPTIONS
from models.swae import OBJECTIVES as SWAE_OBJECTIVES  # for a help that names them (torch is loaded already)


def _parse_overrides(items: tuple[str, ...]) -> dict[str, dict]:
    """--set vae.latent_dim=32 --set swae.K=100 -> {"vae": {"latent_dim": "32"}, "swae": {"K": "100"}}."""
    overrides: dict[str, dict] = {}
    for item in items:
        key, sep, value = item.partition("=")
        model, dot, field = key.partition(".")
        if not sep or not dot or not model or not field:
            raise UserError(f"--set {item!r}: expected MODEL.FIELD=VALUE, for example vae.latent_dim=32")
        overrides.setdefault(model.strip(), {})[field.strip()] = value.strip()
    return overrides


def _resolve_device(name: str) -> str:
    import torch

    available = {"cpu": True, "cuda": torch.cuda.is_available(), "mps": torch.backends.mps.is_available()}
    if name == "auto":
        return "cuda" if available["cuda"] else "mps" if available["mps"] else "cpu"
    if name not in available:
        raise UserError(f"unknown device '{name}'; choices: auto, {choices(available)}")
    if not available[name]:
        raise UserError(f"device '{name}' is not available on this machine; choices here: auto, "
                        f"{choices(k for k, ok in available.items() if ok)}")
    return name


@click.group()
def cli():
    """aebench: train and compare generative autoencoders (SWAE, VAE, beta-VAE, WAE, VampPrior)."""


def _joined(given: dict) -> dict:
    """Values of repeated flags (a tuple, possibly empty) as one comma-separated value, or None."""
    return {k: (",".join(v) or None) if isinstance(v, tuple) else v for k, v in given.items()}


def _executor_and_device(config: dict):
    """Where the cells run and on which device: a Ray cluster picks its own devices (cpu unless asked)."""
    from aebench.plumbing.precision import check_precision
    from aebench.run.executors import make_executor

    executor = make_executor(config["executor"], config["jobs"], config.get("ray_address"),
                             config["ray_cpus_per_run"], config["ray_gpus_per_run"])
    local = config["executor"] == "local" or config["device"] != "auto"
    device = _resolve_device(config["device"]) if local else "cpu"
    # Only training needs the hardware (--weights-from trains nothing); a Ray worker checks its own (aebench.run.cell).
    if config["executor"] == "local" and not config.get("weights_from"):
        check_precision(config["precision"], device)
    return executor, device


def _fetch_missing(config: dict, datasets: list[str]) -> None:
    """Missing datasets are fetched (unless --no-fetch) before anything is written or trained."""
    from aebench.data.fetch import fetch_missing_datasets

    fetch_missing_datasets(datasets, config.get("data_root"), config["fetch"], log=click.echo)


def _run_option_flags(command):
    """Every run option of aebench.run.options as a click option (each declared once, there)."""
    for option in reversed(RUN_OPTIONS):
        command = click.option(option.cli_flag, option.key, default=None, multiple=option.repeatable,
                               metavar=option.metavar, help=option.help)(command)
    return command


@cli.command()
@click.option("--config", "config_file", default=None, help="A study file (TOML) listing the grid; options override it.")
@_run_option_flags
@click.option("--set", "sets", multiple=True, metavar="MODEL.FIELD=VALUE", help="Override a model hyperparameter.")
@click.option("--retry-failed", is_flag=True, help="Run again the cells recorded as failed.")
@click.option("--tune-first", is_flag=True,
              help="First tune the models the study gives no hyperparameters (e.g. yours, added to a tuned reference "
                   "study) with its tuning_budget trials each, as `tune` would, then run every model.")
@click.option("--budget", type=int, default=None, metavar="B",
              help="With --tune-first: trials per tuned model, for a study file that records no tuning_budget "
                   "(the reference study's budget).")
@click.option("--quiet", is_flag=True, help="No per-epoch progress (finished cells are still listed).")
def run(config_file, sets, retry_failed, tune_first, budget, quiet, **given):
    """Train and evaluate every (model, dataset, seed) cell not already recorded."""
    from pathlib import Path

    from aebench.plumbing.writer_lock import writing
    from aebench.run.rescoring import attach_trained_weights
    from aebench.run.reuse import copy_finished_runs, reuse_sources
    from aebench.run.runner import plan_config, preflight, run_grid, save_resolved_config
    from aebench.run.study import load_study, resolve
    from aebench.store.folder import ResultsStore

    config = resolve(load_study(config_file) if config_file else {}, _joined(given), _parse_overrides(sets), config_file)
    if budget is not None and not tune_first:
        raise UserError("--budget is the trials per model of --tune-first; give --tune-first, or use `tune --budget`")
    pool = device = None
    if tune_first:
        from aebench.tune.first import trials_per_model
        from aebench.tune.first import tune_first as tune_models

        budget = trials_per_model(config, budget)
        _fetch_missing(config, config.get("datasets") or [])
        pool, device = _executor_and_device(config)
        config = tune_models(config, budget, "mean-rank", device, pool, progress=not quiet, log=click.echo)
    prof, specs = plan_config(config)
    _fetch_missing(config, [spec.dataset for spec in specs])
    if pool is None:
        pool, device = _executor_and_device(config)
    preflight(specs, config.get("data_root"), device)
    folder = Path(config["out"]) / (config.get("experiment") or prof.name)
    if config.get("weights_from"):
        specs = attach_trained_weights(specs, config["weights_from"], folder)
    sources = reuse_sources(config.get("reuse_from", []))
    store = ResultsStore(folder)
    with writing(folder, "run"):
        save_resolved_config(folder, config, specs)
        if sources:
            copied = copy_finished_runs([spec.run_id for spec in specs], sources, store)
            click.echo(f"{len(copied)} finished runs copied from {', '.join(config['reuse_from'])} (the same run ids)")
        outcome = run_grid(specs, store, device, config.get("data_root"), retry_failed, progress=not quiet,
                           executor=pool)
    if outcome.skipped and not (outcome.done or outcome.failed or outcome.lost):
        click.echo(f"Nothing to do: all {len(outcome.skipped)} runs are already recorded in {folder}.")
    else:
        click.echo(f"{len(outcome.done)} runs done, {len(outcome.failed)} failed, {len(outcome.lost)} lost, "
                   f"{len(outcome.skipped)} already recorded; results in {folder}")
    if outcome.skipped_failed:
        click.echo(f"{len(outcome.skipped_failed)} runs failed earlier and were not retried (--retry-failed runs them).")
    if outcome.lost:
        click.echo(f"{len(outcome.lost)} runs were lost with their worker; run the same command again to finish them.")
    if outcome.failed or outcome.lost:
        sys.exit(1)


@cli.command()
@click.option("--config", "config_file", default=None, help="A study file (TOML) of run options; options override it.")
@_run_option_flags
@click.option("--budget", type=int, default=None, metavar="B",
              help="Trials per model, the same for every model (Optuna TPE over each model's whole space; default: "
                   "the study file's tuning_budget, else 12).")
@click.option("--select-by", default="mean-rank", show_default=True, metavar="METRIC",
              help="mean-rank (of recon_sse, knn5_acc, fid) or one metric, on the validation split.")
@click.option("--widen", multiple=True, metavar="MODEL.NAME=LOW:HIGH",
              help="Widen a range of a model's search space (when a choice is on its edge); the study keeps its trials.")
@click.option("--quiet", is_flag=True, help="No per-epoch progress (finished cells are still listed).")
def tune(config_file, budget, select_by, widen, quiet, **given):
    """Choose each model's own hyperparameters on the validation split, B trials per model, and write
    tuned.toml for `run --config` (results in --out/tune-PROFILE unless --experiment)."""
    from aebench.run.profiles import get_profile
    from aebench.run.study import TUNING_BUDGET, load_study, resolve
    from aebench.tune.tuner import DEFAULT_BUDGET, plan_tuning, run_tuning, summary_lines

    study = load_study(config_file) if config_file else {}
    if study.get("hparams"):
        raise UserError(f"study file {config_file}: tune chooses the hyperparameters itself; remove its [hparams] tables")
    config = resolve(study, _joined(given), {}, config_file)
    _fetch_missing(config, config.get("datasets") or [get_profile(config["profile"]).dataset])
    # --budget overrides the file, as every option does: a larger budget is how a tune is extended. Popped, so
    # that config.json records the budget once (as "budget").
    recorded = config.pop(TUNING_BUDGET, DEFAULT_BUDGET)
    budget = recorded if budget is None else budget
    tuning = plan_tuning(config, budget, select_by, widen)
    executor, device = _executor_and_device(config)
    outcome = run_tuning(tuning, device, executor, progress=not quiet)
    for line in summary_lines(outcome):
        click.echo(line)
    if not outcome.ok:
        sys.exit(1)


@cli.command(name="fetch")
@click.argument("name")
@click.option("--data-root", default=None, help="Where datasets go (default: $AEBENCH_DATA or ./data).")
def fetch_command(name, data_root):
    """Get NAME for offline use: mnist, fashion-mnist (datasets) or inception (the FID network's
    weights). Checksum-verified and atomic; a second fetch does nothing."""
    from aebench.data.fetch import fetch

    click.echo(fetch(name, data_root, log=click.echo))


@cli.command(name="list")
@click.option("--data-root", default=None, help="Folder with IDX files (default: $AEBENCH_DATA or ./data).")
def list_command(data_root):
    """The models, datasets (and whether each is here), the precisions this CPU trains in, and profiles."""
    from aebench.catalog.models import ABLATIONS, MODELS, plugin_models
    from aebench.data.builtin import BUILTIN_DATASETS
    from aebench.data.datasets import availability, plugin_datasets
    from aebench.data.fetch import DATASET_SOURCES, fetch_status
    from aebench.plumbing.precision import cpu_support_line
    from aebench.run.profiles import PROFILES

    click.echo("Models:")
    for name, cls in MODELS.items():
        defaults = ", ".join(f"{k}={v}" for k, v in cls.Config().to_dict().items())
        click.echo(f"  {name:<14} {cls.__name__}: {defaults}")
    click.echo("Ablation variants (named with --models only): " + ", ".join(
        f"{name} ({cls.__doc__.strip().rstrip('.')})" for name, cls in ABLATIONS.items()))
    plugins = plugin_models()
    click.echo("Plug-in models (entry points of aebench.models; or --models package.module:Class): "
               + (", ".join(f"{p.name} ({p.target}, from {p.package or 'an installed package'})"
                            for p in plugins.values()) or "none installed"))
    click.echo("Datasets:")
    for name, spec in BUILTIN_DATASETS.items():
        reason = availability(name, data_root)
        state = "available" if reason is None else f"NOT available: {reason}"
        if reason is not None and name in DATASET_SOURCES:
            state += f" (run fetches it; or python cli.py fetch {name})"
        click.echo(f"  {name:<14} {spec.description}\n  {'':<14} {state}")
    datasets = plugin_datasets()
    click.echo("Plug-in datasets (entry points of aebench.datasets): "
               + (", ".join(f"{p.name} ({p.target}, from {p.package or 'an installed package'})"
                            for p in datasets.values()) or "none installed"))
    click.echo("Your own images: --dataset npz:PATH (arrays x, optional y and split) or folder:PATH[@SIZE] "
               "(one subfolder per class; resized to SIZE x SIZE only if @SIZE is given); docs/adding-a-dataset.md")
    reason = fetch_status("inception")
    click.echo("FID backbones:\n  classifier     trained by the suite on each dataset, cached: always available")
    click.echo(f"  inception      {'present' if reason is None else f'NOT present: {reason}'} (python cli.py fetch inception)")
    click.echo(f"Training precisions (--precision) on this CPU: {cpu_support_line()}")
    click.echo("Profiles:")
    for name, p in PROFILES.items():
        click.echo(f"  {name:<14} {p.description} (default dataset: {p.dataset})")


@cli.command()
@click.argument("experiment", required=False)
@click.option("--out", default="results", show_default=True, help="Folder holding the experiments.")
@click.option("--data-root", default=None, help="Where the data is looked for, for reconstructions and latent maps.")
@click.option("--no-figures", is_flag=True, help="Tables only (no figures).")
@click.option("--against", "reference", default=None, metavar="FOLDER",
              help="A reference experiment (e.g. results/reference/reference-mnist): its models' runs are read, "
                   "never retrained, and reported beside EXPERIMENT's, after checking that both share datasets, "
                   "seeds, evaluation and training settings.")
def report(experiment, out, data_root, no_figures, reference):
    """Tables and figures of EXPERIMENT (a name under --out or a path; default: the latest)."""
    from aebench.report.writer import write_report
    from aebench.store.values import resolve_experiment

    folder = resolve_experiment(experiment, out)
    if reference is not None:
        reference = resolve_experiment(reference, out)
    outcome = write_report(folder, data_root, figures=not no_figures, reference=reference)
    click.echo(outcome.terminal)
    for note in outcome.notes:
        click.echo(f"note: {note}")
    click.echo(f"\nWrote {', '.join(str(p.relative_to(outcome.folder)) for p in outcome.files)} in {outcome.folder}")


@cli.command(name="claims")
@click.argument("folders", nargs=-1, required=True, metavar="FOLDER [FOLDER ...]")
@click.option("--ablation", default=None, metavar="FOLDER",
              help=f"A SWAE ablation experiment: swae runs differing in objective ({', '.join(SWAE_OBJECTIVES)}).")
@click.option("--claims", "claims_file", default=None, metavar="FILE",
              help="The claims and their lines (TOML; default studies/claims.toml).")
@click.option("--out", "out_file", default=None, metavar="FILE", help="Write the Markdown to FILE instead of printing it.")
def claims_command(folders, ablation, claims_file, out_file):
    """Does each claim of the SWAE paper hold in the experiment FOLDERs? A Markdown table of SWAE against
    the best baseline per claim, metric and dataset, from summary.csv and comparisons.csv; the claims and
    their lines are declared in --claims."""
    from aebench.report.claims import claims_report, write_claims

    text = claims_report(folders, ablation, claims_file)
    if out_file is None:
        click.echo(text, nl=False)
    else:
        command = " ".join([*folders, *(["--ablation", ablation] if ablation else []),
                            *(["--claims", claims_file] if claims_file else []), "--out", out_file])
        click.echo(f"Wrote {write_claims(out_file, text, command)}")


@cli.command()
@click.argument("experiment", required=False)
@click.option("--thresholds", required=True, help="TOML file of bounds per dataset, model and metric.")
@click.option("--out", default="results", show_default=True, help="Folder holding the experiments.")
def check(experiment, thresholds, out):
    """Compare EXPERIMENT's mean metrics with the bounds in --thresholds; exit 1 on any regression."""
    from aebench.report.check import check as check_bounds
    from aebench.report.check import load_thresholds
    from aebench.store.values import load_results, resolve_experiment

    bounds = load_thresholds(thresholds)  # a malformed file is reported before the experiment is read
    folder = resolve_experiment(experiment, out)
    outcomes = check_bounds(bounds, load_results(folder))
    for outcome in outcomes:
        click.echo(outcome.line())
    failures = [o for o in outcomes if not o.passed]
    click.echo(f"\n{folder}: {len(outcomes) - len(failures)} of {len(outcomes)} checks hold.")
    if failures:
        click.echo(f"{len(failures)} regressions:")
        for outcome in failures:
            click.echo(f"  {outcome.name}: {outcome.text}")
        sys.exit(1)


def _raise_keyboard_interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv=None) -> int:
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)  # SIGTERM ends like Ctrl-C
    # A study left running with its output in a log file reports each run as it finishes, not in one
    # block-buffered burst at the end (or never, if the machine stops it).
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(line_buffering=True)
    try:
        cli.main(args=argv, prog_name="aebench", standalone_mode=False)
    except UserError as e:
        click.echo(f"error: {e}", err=True)
        return 2
    except click.UsageError as e:
        click.echo(f"error: {e.format_message()}", err=True)
        return 2
    except (KeyboardInterrupt, click.exceptions.Abort):
        click.echo("interrupted: the results written so far are valid; run the same command again to finish.", err=True)
        return 130
    except click.exceptions.Exit as e:
        return e.exit_code
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
