"""Training precision (`--precision fp32|bf16`): the option through CLI, study file and run id; the
hardware check; bf16 trains finite losses; evaluation is float32 whatever the training precision; the
report keeps precisions apart.

bf16 must be testable on any CPU: AEBENCH_CPU_FLAGS stands in for /proc/cpuinfo's flags (emulated
bfloat16 computes the same values as native, only slower), and a flag list without avx512_bf16 /
amx_bf16 simulates a CPU without it."""
from __future__ import annotations

import math

import pandas as pd
import pytest
import torch

import cli
from aebench.catalog.models import MODELS, build_model
from aebench.errors import UserError
from aebench.plumbing.precision import check_precision, cpu_support_line, training_autocast
from aebench.run.cell import RunSpec, train_and_evaluate
from aebench.run.evaluation import evaluate
from aebench.run.profiles import get_profile
from aebench.run.runner import plan
from aebench.run.study import load_study, resolve
from aebench.run.training import TrainConfig
from aebench.store.checkpoints import load_model
from aebench.store.values import load_results

NATIVE = "fpu sse2 avx2 avx512f avx512_bf16"
WITHOUT = "fpu sse2 avx2 avx512f"


@pytest.fixture
def native_bf16(monkeypatch):
    monkeypatch.setenv("AEBENCH_CPU_FLAGS", NATIVE)


def run_cli(capsys, *argv):
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def smoke_spec(model: str, precision: str, epochs: int = 2, **hparams) -> RunSpec:
    return plan(get_profile("smoke"), [model], ["digits"], [0], epochs, {model: hparams} if hparams else None,
                precision=precision)[0]


# --------------------------------------------------------------------------- the option and the run id


def test_fp32_run_ids_hash_no_precision_and_bf16_ones_differ():
    assert "precision" not in TrainConfig().to_dict()  # every fp32 run keeps the id it had before the option
    assert TrainConfig(precision="bf16").to_dict()["precision"] == "bf16"
    fp32, bf16 = smoke_spec("vae", "fp32"), smoke_spec("vae", "bf16")
    assert fp32.train.precision == "fp32" and bf16.train.precision == "bf16"
    assert fp32.run_id != bf16.run_id and fp32.identity() == {**bf16.identity(), "train": fp32.train.to_dict()}


def test_precision_round_trips_through_command_line_and_study_file(tmp_path):
    assert resolve({}, {}, {})["precision"] == "fp32"
    assert resolve({"precision": "bf16"}, {}, {})["precision"] == "bf16"
    assert resolve({"precision": "bf16"}, {"precision": "fp32"}, {})["precision"] == "fp32"  # the flag wins
    with pytest.raises(UserError, match=r"study file s.toml: precision 'fp16': unknown; choices: bf16, fp32"):
        resolve({"precision": "fp16"}, {}, {}, "s.toml")


def test_bf16_grid_records_its_precision_and_report_keeps_precisions_apart(capsys, tmp_path, native_bf16):
    common = ["run", "--models", "vae", "--profile", "smoke", "--epochs", "2", "--out", str(tmp_path), "--quiet"]
    assert run_cli(capsys, *common)[0] == 0
    code, out, _ = run_cli(capsys, *common, "--precision", "bf16")
    assert code == 0 and "1 runs done" in out  # another run id, so not "already recorded"
    folder = tmp_path / "smoke"
    runs = pd.read_csv(folder / "runs.csv")
    assert sorted(runs["precision"]) == ["bf16", "fp32"]
    assert set(load_results(folder).values["label"]) == {"vae", "vae@bf16"}
    code, _, _ = run_cli(capsys, "report", str(folder), "--no-figures")
    report = (folder / "report.md").read_text()
    assert code == 0 and "training precision bf16, fp32" in report and "**Mixed precisions.** Of the 2 runs" in report


# --------------------------------------------------------------------------- the hardware check


def test_bf16_is_refused_on_a_cpu_without_native_bfloat16_before_anything_is_written(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("AEBENCH_CPU_FLAGS", WITHOUT)
    code, _, err = run_cli(capsys, "run", "--models", "vae", "--profile", "smoke", "--precision", "bf16",
                           "--out", str(tmp_path))
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert "--precision bf16 refused" in err and "avx512_bf16" in err and "choices here: fp32" in err
    assert list(tmp_path.iterdir()) == []
    code, out, _ = run_cli(capsys, "list", "--data-root", str(tmp_path))
    assert code == 0 and "Training precisions (--precision) on this CPU: fp32 only (this CPU has no native" in out


def test_native_flags_allow_bf16_and_list_says_which(monkeypatch):
    for flags, native in ((NATIVE, "avx512_bf16"), ("sse2 amx_bf16 amx_tile", "amx_bf16"), ("fp asimd bf16", "bf16")):
        monkeypatch.setenv("AEBENCH_CPU_FLAGS", flags)
        check_precision("bf16", "cpu")
        assert cpu_support_line() == f"fp32, bf16 (native bfloat16: {native})"
    monkeypatch.setenv("AEBENCH_CPU_FLAGS", WITHOUT)
    check_precision("fp32", "cpu")  # fp32 needs nothing
    with pytest.raises(UserError, match="unknown precision 'fp8'; choices: bf16, fp32"):
        check_precision("fp8", "cpu")


def test_a_worker_without_bf16_fails_its_cell_naming_the_feature(digits, monkeypatch):
    # What a Ray worker on another machine does: the driver's check does not speak for it.
    monkeypatch.setenv("AEBENCH_CPU_FLAGS", WITHOUT)
    cell = train_and_evaluate(smoke_spec("vae", "bf16"), digits, "cpu")
    assert cell.run["status"] == "failed" and "avx512_bf16" in cell.run["reason"] and not cell.metrics


# --------------------------------------------------------------------------- training and evaluation


@pytest.mark.parametrize("model,hparams", [(name, {}) for name in MODELS] + [("vae", {"arch": "conv"}),
                                                                              ("swae", {"arch": "conv"})])
def test_bf16_training_keeps_every_loss_term_finite_on_the_smoke_grid(digits, native_bf16, model, hparams):
    cell = train_and_evaluate(smoke_spec(model, "bf16", **hparams), digits, "cpu")
    assert cell.run["status"] == "ok" and cell.run["precision"] == "bf16"
    assert cell.history and all(math.isfinite(v) for row in cell.history for v in row.values())


@pytest.mark.parametrize("model", list(MODELS))
def test_under_autocast_the_layers_run_in_bfloat16_and_every_loss_term_is_float32(digits, model):
    spec = smoke_spec(model, "bf16", arch="conv")
    net = build_model(model, digits.image_shape, spec.hparams)
    net.prepare(digits.train_x, torch.Generator().manual_seed(0))
    seen = []
    handles = [m.register_forward_hook(lambda _m, _i, out: seen.append(out.dtype))
               for m in net.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    with training_autocast("bf16", "cpu"):
        terms = net.loss(digits.train_x[:64])
    for handle in handles:
        handle.remove()
    assert seen and set(seen) == {torch.bfloat16}  # autocast is really on
    assert {t.dtype for t in terms.values()} == {torch.float32}  # the objective is computed in float32


def test_a_bf16_run_is_evaluated_exactly_as_float32_weights_are(digits, native_bf16, tmp_path):
    spec = smoke_spec("swae", "bf16")
    cell = train_and_evaluate(spec, digits, "cpu")
    assert cell.run["status"] == "ok"
    checkpoint = tmp_path / "swae.pt"
    checkpoint.write_bytes(cell.checkpoint)
    model = load_model(checkpoint)
    assert {p.dtype for p in model.parameters()} == {torch.float32}  # master weights stay float32
    torch.manual_seed(spec.seed)  # as train_and_evaluate seeds its evaluation
    rows = evaluate(model, digits.scored_on(spec.split), spec.eval)
    again = {(r["metric"], r.get("backbone")): r["value"] for r in rows}
    scored = {(r["metric"], r.get("backbone")): r["value"] for r in cell.metrics}
    assert again.keys() == scored.keys() and len(scored) > 10
    for key, value in scored.items():  # bit-equal: the same code path on the same machine
        assert value == again[key] or (math.isnan(value) and math.isnan(again[key])), key



def test_tune_trains_its_trials_in_the_precision_asked_and_tuned_toml_carries_it(capsys, tmp_path, native_bf16):
    argv = ["tune", "--models", "wae", "--dataset", "digits", "--profile", "smoke", "--epochs", "1", "--budget", "1",
            "--out", str(tmp_path), "--quiet"]
    assert run_cli(capsys, *argv, "--precision", "bf16")[0] == 0
    folder = tmp_path / "tune-smoke"
    assert set(pd.read_csv(folder / "runs.csv")["precision"]) == {"bf16"}
    assert resolve(load_study(folder / "tuned.toml"), {}, {})["precision"] == "bf16"
    assert run_cli(capsys, *argv, "--experiment", "fp32-tune")[0] == 0
    assert "precision" not in (tmp_path / "fp32-tune" / "tuned.toml").read_text()  # as an fp32 tune always wrote it


def test_rescoring_bf16_weights_needs_no_bf16_hardware_and_gives_their_numbers(capsys, tmp_path, monkeypatch):
    common = ["run", "--models", "vae", "--profile", "smoke", "--epochs", "2", "--precision", "bf16", "--quiet"]
    monkeypatch.setenv("AEBENCH_CPU_FLAGS", NATIVE)
    assert run_cli(capsys, *common, "--out", str(tmp_path / "trained"))[0] == 0
    monkeypatch.setenv("AEBENCH_CPU_FLAGS", WITHOUT)  # scoring trains nothing: no bfloat16 needed
    code, _, err = run_cli(capsys, *common, "--out", str(tmp_path / "rescored"),
                           "--weights-from", str(tmp_path / "trained" / "smoke"))
    assert code == 0, err
    first, again = (pd.read_csv(tmp_path / side / "smoke" / "metrics.csv").set_index("metric")["value"]
                    for side in ("trained", "rescored"))
    assert len(first) > 10 and first.sort_index().equals(again.sort_index())  # bit-equal: the same float32 scoring
