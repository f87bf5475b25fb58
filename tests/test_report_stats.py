"""Significance in the report, on hand-made experiments whose answer is known in advance."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats
from test_report import PNG_SIGNATURE, is_png, write_experiment

from aebench.report.stats import NOTE_IDENTICAL, NOTE_TOO_FEW, friedman_nemenyi
from aebench.report.summary import COMPARISON_COLUMNS, friedman_over_columns, summarize
from aebench.report.writer import portable, write_report
from aebench.store.values import load_results

SEEDS = (0, 1, 2)
# Three small, different noise patterns (one per model), so that no paired difference is constant.
NOISE = {"swae": [0.0, 0.004, -0.003], "wae": [0.002, -0.003, 0.001], "vae": [-0.001, 0.003, 0.0]}
CENTRES = {  # model -> metric key -> centre; the noise is added per seed (FID: its own large spread)
    "swae": {"knn5_acc": 0.95, "linear_acc": 0.90, "nn_train_ratio": 1.0, "active_units": 8.0},
    "wae": {"knn5_acc": 0.80, "linear_acc": 0.90, "nn_train_ratio": 2.0, "active_units": 7.0},
    "vae": {"knn5_acc": 0.70, "linear_acc": 0.60, "nn_train_ratio": 3.0, "active_units": 6.0},
}
RECON = {"swae": [10.0, 10.3, 9.8], "wae": [10.0, 10.3, 9.8], "vae": [14.0, 14.5, 13.9]}  # swae = wae per seed
FID = {"swae": [20.0, 26.0, 17.0], "wae": [22.0, 18.0, 25.0], "vae": [21.0, 24.0, 19.0]}  # noise only
# What each model's mean ranks in the four ranked columns every model has (swae, wae, vae).
EXPECTED_RANKS = {"knn5_acc": [1, 2, 3], "linear_acc": [1, 2, 3], "recon_sse": [1.5, 1.5, 3], "fid [inception-pool3]": [1, 3, 2]}


def clear_values() -> dict:
    """swae wins knn5_acc on every seed by a wide margin; swae = wae on recon_sse, both far ahead of vae;
    swae and wae tie on linear_acc; FID is noise; nn_train_ratio differs widely but has no direction."""
    values = {}
    for model, centres in CENTRES.items():
        for i, seed in enumerate(SEEDS):
            row = {key: centre + NOISE[model][i] for key, centre in centres.items()}
            values[(model, seed)] = row | {"recon_sse": RECON[model][i], "fid@inception-pool3": FID[model][i]}
    return values


def identical_values() -> dict:
    """a and b have the same value on every seed."""
    return {(model, seed): {"knn5_acc": 0.9 + NOISE["swae"][i], "recon_sse": RECON["vae"][i]}
            for model in ("a", "b") for i, seed in enumerate(SEEDS)}


def report(folder, values, figures=False, **kwargs) -> str:
    write_experiment(folder, values, set(), **kwargs)
    write_report(folder, figures=figures)
    return (folder / "report.md").read_text()


def table_rows(md: str, model: str) -> list[str]:
    """The model's rows: the headline table's first, the appendix table's last."""
    return [line for line in md.splitlines() if line.startswith(f"| {model} |")]


def header_cells(md: str, after: str) -> list[str]:
    """The cells of the first table header below the line `after`."""
    lines = md.splitlines()
    start = lines.index(after)
    header = next(line for line in lines[start:] if line.startswith("| model |"))
    return [cell.strip() for cell in header.strip("|").split("|")]


def cell(row: str, index: int) -> str:
    return row.strip("|").split("|")[index].strip()


@pytest.fixture(scope="module")
def clear(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clear") / "exp"
    return folder, report(folder, clear_values())


# ---------------------------------------------------------------- marks and verdicts


def test_identical_models_tie_and_nothing_is_bold(tmp_path):
    md = report(tmp_path / "same", identical_values())
    comparisons = pd.read_csv(tmp_path / "same" / "comparisons.csv", keep_default_na=False)
    assert len(comparisons) == 2 and not comparisons["significant"].any()
    assert (comparisons["p_value"] == 1.0).all() and (comparisons["note"] == NOTE_IDENTICAL).all()
    for model in ("a", "b"):
        headline = table_rows(md, model)[0]
        assert "**" not in headline
        assert cell(headline, 2).endswith(" ≈") and cell(headline, 3).endswith(" ≈")  # recon_sse, knn5_acc
    assert "- recon_sse: best mean a, not significantly better than b" in md
    assert "- knn5_acc: best mean a, not significantly better than b" in md
    assert "significant against" not in md
    assert "Skipped: fewer than 3 models (2)" in md


def test_a_model_better_on_every_seed_is_bold_and_significant(clear):
    _, md = clear
    header = header_cells(md, "## Headline")
    knn = header.index("knn5_acc ↑")
    swae, wae, vae = (table_rows(md, m)[0] for m in ("swae", "wae", "vae"))
    assert re.fullmatch(r"\*\*0\.95\d* ± 0\.00\d+\*\*", cell(swae, knn))
    assert "**" not in wae + vae and "≈" not in cell(wae, knn) + cell(vae, knn)
    assert "- knn5_acc: swae best (significant against every other model, paired t-test, Holm)" in md
    # recon_sse: swae = wae on every seed, both significantly ahead of vae
    recon = header.index("recon_sse ↓")
    assert cell(swae, recon).endswith(" ≈") and cell(wae, recon).endswith(" ≈") and "≈" not in cell(vae, recon)
    assert "- recon_sse: best mean swae, not significantly better than wae; vae significantly behind swae" in md
    assert "- linear_acc: best mean swae, not significantly better than wae; vae significantly behind swae" in md
    assert "- fid [inception-pool3]: best mean swae, not significantly better than vae and wae" in md


def test_a_column_without_direction_is_not_marked(clear):
    _, md = clear
    header = header_cells(md, "## Headline")
    ratio = header.index("nn_train_ratio")  # no arrow: no direction
    for model in ("swae", "wae", "vae"):
        value = cell(table_rows(md, model)[0], ratio)
        assert value and "**" not in value and "≈" not in value and "untested" not in value
    assert "- nn_train_ratio: no direction is better; shown, not marked or ranked" in md


def test_one_seed_per_model_marks_nothing_significant(tmp_path):
    values = {key: row for key, row in clear_values().items() if key[1] == 0}
    md = report(tmp_path / "one", values)
    assert "**" not in md.split("## Headline")[1] and " ≈ |" not in md
    header = header_cells(md, "## Headline")
    knn = header.index("knn5_acc ↑")
    assert cell(table_rows(md, "swae")[0], knn) == "0.95 (untested)"
    assert "(untested)" not in cell(table_rows(md, "wae")[0], knn)
    assert "- knn5_acc: swae best mean, untested (fewer than 2 shared seeds: no test possible)" in md
    assert "No significance test was possible in" in md
    comparisons = pd.read_csv(tmp_path / "one" / "comparisons.csv", keep_default_na=False)
    assert (comparisons["note"] == NOTE_TOO_FEW).all() and not comparisons["significant"].any()


# ---------------------------------------------------------------- comparisons.csv


def test_comparisons_csv_traces_every_pair_and_mark(clear):
    folder, md = clear
    comparisons = pd.read_csv(folder / "comparisons.csv", keep_default_na=False)
    assert list(comparisons.columns) == COMPARISON_COLUMNS
    assert COMPARISON_COLUMNS[:11] == ["dataset", "column", "model_a", "model_b", "n_pairs", "mean_diff", "statistic",
                                       "p_value", "p_holm", "significant", "better"]
    # 3 pairs in each of the 6 columns (knn5_acc, linear_acc, nn_train_ratio, active_units, recon_sse, fid)
    assert len(comparisons) == 18 and (comparisons["n_pairs"] == 3).all() and (comparisons["dataset"] == "digits").all()
    knn = comparisons[comparisons["column"] == "knn5_acc"].set_index(["model_a", "model_b"])
    swae = 0.95 + np.array(NOISE["swae"])
    for other, centre in (("wae", 0.80), ("vae", 0.70)):
        row = knn.loc[("swae", other)]
        expected = scipy_stats.ttest_rel(swae, centre + np.array(NOISE[other]))
        assert row["p_value"] == pytest.approx(expected.pvalue) and row["statistic"] == pytest.approx(expected.statistic)
        assert row["mean_diff"] == pytest.approx(0.95 - centre, abs=0.01)
        assert row["p_holm"] <= 0.05 and row["significant"] and row["better"] == "swae"
    # the bold swae of knn5_acc is traced: it is the better model of every pair it is in
    assert set(knn["better"]) == {"swae", "wae"} and (knn.loc[[("swae", "wae"), ("swae", "vae")], "better"] == "swae").all()
    same = comparisons[(comparisons["column"] == "recon_sse") & (comparisons["model_a"] == "swae")
                       & (comparisons["model_b"] == "wae")].iloc[0]
    assert same["p_value"] == 1.0 and not same["significant"] and same["better"] == ""
    ratio = comparisons[comparisons["column"] == "nn_train_ratio"]
    assert ratio["significant"].all() and (ratio["better"] == "").all()  # significant, but no direction: no winner


# ---------------------------------------------------------------- Friedman, Nemenyi and the CD diagram


def test_friedman_and_cd_diagram_over_the_ranked_columns(tmp_path):
    folder = tmp_path / "exp"
    md = report(folder, clear_values(), figures=True)
    expected = friedman_nemenyi(pd.DataFrame(EXPECTED_RANKS, index=["swae", "wae", "vae"]).T)
    assert expected.n_blocks == 4 and expected.mean_ranks.to_dict() == pytest.approx(
        {"swae": 1.125, "wae": 2.125, "vae": 2.75})
    section = md.split("## Across datasets and metrics")[1].split("\n## ")[0]
    assert f"statistic {expected.statistic:.3g}, p = {expected.p_value:.3g}, over N = 4 blocks" in section
    assert "k = 3 models" in section and f"CD = {expected.critical_difference:.2f} (α = 0.05)" in section
    assert "swae 1.12, wae 2.12, vae 2.75" in section and "descriptive" in section
    assert "![Critical-difference diagram](figures/cd_diagram.png)" in section
    width, height = is_png(folder / "figures" / "cd_diagram.png")
    assert width > 200 and height > 50


def test_friedman_is_skipped_with_one_block_or_two_models(tmp_path):
    one_column = {(m, s): {"knn5_acc": 0.5 + i / 10 + s / 100} for i, m in enumerate("abc") for s in SEEDS}
    summary = summarize(load_results(write_experiment(tmp_path / "e", one_column, set())).values)
    assert friedman_over_columns(summary).startswith("fewer than 2 blocks (1)")
    two_models = summary[summary["label"] != "c"]
    assert friedman_over_columns(two_models).startswith("fewer than 3 models (2)")
    # A ranked column that vae lacks (a second FID backbone) is no complete block; nn_train_ratio and
    # active_units have no direction: no blocks either.
    values = {(m, s): row | ({"fid@other": 5.0 + s} if m != "vae" else {}) for (m, s), row in clear_values().items()}
    summary = summarize(load_results(write_experiment(tmp_path / "f", values, set())).values)
    assert summary["rank"].notna().sum() == 3 * 4 + 2
    result = friedman_over_columns(summary)
    assert result.n_blocks == 4
    assert result.mean_ranks.to_dict() == pytest.approx({"swae": 1.125, "wae": 2.125, "vae": 2.75})


# ---------------------------------------------------------------- layout and paths


def test_headline_first_and_the_appendix_holds_every_metric(clear):
    folder, md = clear
    assert md.index("## Headline") < md.index("Verdict:") < md.index("## Appendix: every metric")
    headline = header_cells(md, "## Headline")
    assert headline == ["model", "seeds", "recon_sse ↓", "knn5_acc ↑", "linear_acc ↑", "fid [inception-pool3] ↓",
                        "nn_train_ratio", "mean rank"]
    appendix = header_cells(md, "## Appendix: every metric")
    columns = set(load_results(folder).values["column"])
    assert len(columns) == 6 and {c.removesuffix(" ↑").removesuffix(" ↓") for c in appendix[2:-1]} == columns
    assert len(table_rows(md, "swae")) == 2  # one row in the headline, one in the appendix


def test_the_report_names_no_absolute_path(tmp_path):
    folder = tmp_path / "results" / "exp"
    write_experiment(folder, clear_values(), set(), dataset="mnist")  # no mnist data here: a note with paths
    runs = pd.read_csv(folder / "runs.csv", dtype={"reason": str})
    runs.loc[0, ["status", "reason"]] = ["failed", f"cannot read {folder / 'checkpoints' / 'x.pt'} nor /opt/data/y.bin"]
    runs.to_csv(folder / "runs.csv", index=False)
    outcome = write_report(folder, data_root=tmp_path / "data")
    md = (folder / "report.md").read_text()
    assert "could not be loaded" in md and "cannot read checkpoints/x.pt nor .../y.bin" in md
    assert str(tmp_path) not in md and "/opt/" not in md
    assert "Experiment `exp`" in md
    assert any(str(tmp_path) in note for note in outcome.notes)  # the terminal's notes may say where data was looked for
    assert (folder / "figures" / "cd_diagram.png").read_bytes()[:8] == PNG_SIGNATURE


def test_portable_paths():
    folder = Path("/srv/runs/exp")
    text = "no /srv/runs/exp/checkpoints/a.pt; data in /home/u/data/mnist, 1/2 n/a figures/m.png https://x.org/a"
    assert portable(text, folder) == "no checkpoints/a.pt; data in .../mnist, 1/2 n/a figures/m.png https://x.org/a"
