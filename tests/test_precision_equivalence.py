"""benchmarks/precision_equivalence.py on crafted fp32 and bf16 experiment folders whose answers are known."""
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from benchmark_script import BENCHMARKS, load_script

from aebench.store.folder import METRIC_COLUMNS, RUN_COLUMNS

precision_equivalence = load_script("precision_equivalence")

MODELS = ("vae", "swae")
SEEDS = (0, 1, 2)
SEED_SPREAD = {0: -1.0, 1: 0.0, 2: 1.0}  # fp32's values over seeds: standard deviation 1
TINY = {0: 0.01, 1: -0.02, 2: 0.01}  # bf16's departure from fp32 when it changes nothing: mean 0
BASE = {"recon_sse": 20.0, "fid": 30.0}
EVAL = {"batch_size": 1000, "fid_backbone": "classifier", "fid_samples": 1000, "protocol": 2}
COMMIT = {"fp32": "aaaa111", "bf16": "bbbb222"}
FID = "fid [classifier-v4] ↓"  # the table's metric label: backbone, then the better direction


def fp32_value(model, seed, metric):
    return BASE[metric] + SEED_SPREAD[seed]


def near_fp32(model, seed, metric):
    return fp32_value(model, seed, metric) + TINY[seed]


def vae_fid_shifted(model, seed, metric):
    return near_fp32(model, seed, metric) + (10.0 if (model, metric) == ("vae", "fid") else 0.0)


def run_row(model, seed, precision, eval_config):
    train = {"epochs": 300, "batch_size": 100, "lr": 0.001, "optimizer": "adam", "patience": 10}
    train |= {"precision": "bf16"} if precision == "bf16" else {}  # TrainConfig.to_dict leaves fp32 out
    return {"run_id": f"{model}_mnist-5k_s{seed}_{precision}", "model": model, "dataset": "mnist-5k", "seed": seed,
            "profile": "quick", "status": "ok", "hparams": json.dumps({"latent_dim": 16, "arch": "auto"}),
            "train_config": json.dumps(train), "eval_config": json.dumps(eval_config), "binarize": False,
            "epochs_run": 20 if precision == "fp32" else 10, "train_seconds": 100.0 if precision == "fp32" else 50.0,
            "git_commit": COMMIT[precision], "precision": precision}


def write_folder(folder, precision, value, eval_config=EVAL, seeds=SEEDS, odd_run_precision=None):
    """runs.csv and metrics.csv of MODELS x seeds trained in `precision` (the last run in odd_run_precision
    where given), each metric's value given by value(model, seed, metric)."""
    folder.mkdir()
    runs = [run_row(m, s, precision, eval_config) for m in MODELS for s in seeds]
    if odd_run_precision:
        runs[-1]["precision"] = odd_run_precision
    metrics = [{"run_id": r["run_id"], "model": r["model"], "dataset": r["dataset"], "seed": r["seed"], "metric": metric,
                "value": value(r["model"], r["seed"], metric), "split": "test", "n": 1000,
                "backbone": "classifier-v4" if metric == "fid" else ""} for r in runs for metric in BASE]
    pd.DataFrame(runs, columns=RUN_COLUMNS).to_csv(folder / "runs.csv", index=False)
    pd.DataFrame(metrics, columns=METRIC_COLUMNS).to_csv(folder / "metrics.csv", index=False)
    return folder


def table_row(text, model, metric):
    return next(line for line in text.splitlines() if line.startswith(f"| mnist-5k | {model} | {metric}"))


def test_bf16_equal_to_fp32_up_to_tiny_noise_is_within_noise_everywhere(tmp_path, capsys):
    fp32 = write_folder(tmp_path / "fp32", "fp32", fp32_value)
    bf16 = write_folder(tmp_path / "bf16", "bf16", near_fp32)
    out = tmp_path / "equivalence.md"
    assert precision_equivalence.main([str(fp32), str(bf16), "--out", str(out)]) == 0
    text = out.read_text()
    for model in MODELS:
        for metric in ("recon_sse ↓", FID):
            assert table_row(text, model, metric).endswith("| 1 | 1 | within noise |")  # paired p and Holm p 1
    assert "Every headline metric of every model is within noise: conv-profile studies may train in bf16." in text
    assert f"precision_equivalence.py {fp32} {bf16} --out {out}`" in text
    assert "git_commit `aaaa111`" in text and "git_commit `bbbb222`" in text
    assert "| mnist-5k | vae | 100 | 50 | 2.00 | 20 | 10 | 1.00 |" in text  # twice as fast, half of it fewer epochs


def test_a_fid_shifted_by_ten_seed_sds_is_not_within_noise_and_named(tmp_path):
    fp32 = write_folder(tmp_path / "fp32", "fp32", fp32_value)
    bf16 = write_folder(tmp_path / "bf16", "bf16", vae_fid_shifted)
    text = precision_equivalence.precision_equivalence(fp32, bf16, "python benchmarks/precision_equivalence.py")
    shifted = table_row(text, "vae", FID)
    # seed band: t(0.975, 4) x sqrt((1 + 1) / 3) = 2.776 x 0.816 = 2.27 (both precisions' seed sd is 1)
    assert "| 30 | 40 | +10 | 2.27 |" in shifted and shifted.endswith("| **NOT within noise** |")
    assert table_row(text, "swae", FID).endswith("| within noise |")
    assert table_row(text, "vae", "recon_sse ↓").endswith("| within noise |")
    assert text.rstrip().endswith("Not within noise: (vae, fid); keep fp32 for them.")


def test_a_single_seed_is_untested_and_never_allows_bf16(tmp_path):
    fp32 = write_folder(tmp_path / "fp32", "fp32", fp32_value, seeds=(0,))
    bf16 = write_folder(tmp_path / "bf16", "bf16", near_fp32, seeds=(0,))
    text = precision_equivalence.precision_equivalence(fp32, bf16, "command")
    assert table_row(text, "vae", FID).endswith("| untested (n < 2) |")
    assert "may train in bf16" not in text and "Untested, so not shown within noise: (vae, recon_sse)" in text


REFUSALS = {
    "a bf16 run in the fp32 folder": (dict(odd_run_precision="bf16"), {}, "runs trained in bf16, not fp32"),
    "an fp32 run in the bf16 folder": ({}, dict(odd_run_precision="fp32"), "runs trained in fp32, not bf16"),
    "another eval_config": ({}, dict(eval_config=EVAL | {"fid_samples": 500}),
                            "eval_config.fid_samples is 1000 in fp32 but 500 in bf16"),
    "no shared seed": (dict(seeds=(0, 1)), dict(seeds=(2,)), "share no (model, dataset, seed)"),
}


@pytest.mark.parametrize("case", REFUSALS, ids=list(REFUSALS))
def test_folders_that_differ_in_more_than_precision_are_refused_in_one_line(case, tmp_path, capsys):
    fp32_options, bf16_options, message = REFUSALS[case]
    fp32 = write_folder(tmp_path / "fp32", "fp32", fp32_value, **fp32_options)
    bf16 = write_folder(tmp_path / "bf16", "bf16", near_fp32, **bf16_options)
    assert precision_equivalence.main([str(fp32), str(bf16)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and message in captured.err and captured.err.count("\n") == 1


def test_a_missing_folder_exits_2_with_one_line_and_no_traceback(tmp_path):
    fp32 = write_folder(tmp_path / "fp32", "fp32", fp32_value)
    done = subprocess.run([sys.executable, str(BENCHMARKS / "precision_equivalence.py"), str(fp32), str(tmp_path / "gone")],
                          capture_output=True, text=True)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == f"error: {tmp_path / 'gone'} is not a folder; give an experiment folder (runs.csv, metrics.csv)\n"


def test_the_seed_band_flags_five_percent_of_metrics_when_precision_changes_nothing():
    # The rule's calibration: both "precisions" drawn from one distribution, 3 seeds each.
    rng = np.random.default_rng(0)
    fp32, bf16 = rng.normal(size=(20000, 3)), rng.normal(size=(20000, 3))
    outside = [abs(b.mean() - a.mean()) > precision_equivalence.seed_band(pd.Series(a), pd.Series(b))
               for a, b in zip(fp32, bf16)]
    assert 0.04 < np.mean(outside) < 0.06
