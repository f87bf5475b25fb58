"""Figures of the report (seaborn on matplotlib's Agg backend), written as PNG under <experiment>/figures/.

From the CSV alone: each metric across models and datasets. From history/ and samples/ when they are
there: training curves, sample grids. From checkpoints/ plus the dataset: reconstructions and a 2-D
view of the test latents. Everything beyond the CSV is best effort: what cannot be drawn becomes a
note in report.md, never an error, so the report works on a machine with no data and no checkpoints.
"""
from __future__ import annotations

import io
import json
import math
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, never a window (seaborn imports pyplot)
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from PIL import Image  # noqa: E402

from aebench.metrics.directions import ARROWS, direction  # noqa: E402
from aebench.plumbing.atomic import write_atomic  # noqa: E402
from aebench.report.cd_diagram import cd_diagram  # noqa: E402
from aebench.report.stats import FriedmanResult  # noqa: E402
from aebench.store.folder import rescored  # noqa: E402

FIGURES = "figures"
RECONSTRUCTED_IMAGES = 10  # one test image of each of the first classes
COPYING_SAMPLES = 8  # samples shown beside their nearest training image, per model
LATENT_POINTS = 2000  # test images shown in each latent map
DPI = 100


def _file_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text)


def new_figure(width: float, height: float) -> Figure:
    # A bare Figure, not pyplot's: nothing global to close, and no garbage collection pass per figure.
    return Figure(figsize=(width, height))


def save_png(fig: Figure, path: Path) -> None:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    write_atomic(path, buffer.getvalue())


def _grid(n: int, per_row: int, width: float, height: float):
    cols = min(per_row, n)
    rows = math.ceil(n / cols)
    fig = new_figure(width * cols, height * rows)
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat[:n])


# ---------------------------------------------------------------- from the CSV


def metric_bars(values: pd.DataFrame, directions: dict[str, str | None], path: Path) -> None:
    """One panel per table column: point = mean over seeds, error bar = sample std, colour = dataset.
    Points, not bars: accuracies near 0.9 differ by less than a bar starting at zero can show."""
    columns = list(values["column"].drop_duplicates())
    fig, axes = _grid(len(columns), 4, 4.2, 3.4)
    datasets = list(values["dataset"].drop_duplicates())
    colours = dict(zip(datasets, sns.color_palette(n_colors=len(datasets))))  # one colour per dataset everywhere
    several = len(datasets) > 1
    for ax, column in zip(axes, columns):
        part = values[values["column"] == column]
        sns.pointplot(data=part, x="label", y="value", hue="dataset", palette=colours, hue_order=datasets,
                      errorbar="sd", capsize=0.15, ax=ax,
                      linestyle="none", dodge=0.3 if several else False, legend=several and ax is axes[0])
        ax.set_title(f"{column} {ARROWS.get(directions.get(column), '')}".rstrip(), fontsize=10)
        ax.set_xlabel("")
        ax.set_ylabel("")
        ax.tick_params(axis="x", rotation=30 if part["label"].nunique() > 3 else 0)
    fig.suptitle("Mean over seeds; error bars: standard deviation" + ("" if several else f" ({values['dataset'].iloc[0]})"))
    fig.tight_layout()
    save_png(fig, path)


def _run_folder(run, folder: Path) -> Path:
    """Where a run's files are: its own experiment folder (a reference's under `report --against`)."""
    return Path(getattr(run, "folder", None) or folder)


def read_histories(folder: Path, runs: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Long frame (label, seed, epoch, term, phase, value) of every loss term of the given runs."""
    frames, missing = [], []
    for run in runs.itertuples():
        path = _run_folder(run, folder) / "history" / f"{run.run_id}.csv"
        if not path.is_file():
            missing.append(run.run_id)
            continue
        history = pd.read_csv(path)
        terms = [c for c in history.columns if c.startswith(("train_", "val_"))]
        long = history.melt(id_vars=["epoch"], value_vars=terms, var_name="column", value_name="value")
        long[["phase", "term"]] = long["column"].str.split("_", n=1, expand=True)
        frames.append(long.assign(label=run.label, seed=run.seed))
    return (pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()), missing


def training_curves(histories: pd.DataFrame, title: str, path: Path) -> None:
    """One panel per loss term: line = mean over seeds, band = std; solid train, dashed validation."""
    terms = list(histories["term"].drop_duplicates())
    labels = list(histories["label"].drop_duplicates())
    colours = dict(zip(labels, sns.color_palette(n_colors=len(labels))))  # one colour per model in every panel
    fig, axes = _grid(len(terms), 3, 4.5, 3.2)
    for ax, term in zip(axes, terms):
        sns.lineplot(data=histories[histories["term"] == term], x="epoch", y="value", hue="label", hue_order=labels,
                     palette=colours, style="phase", style_order=["train", "val"], errorbar="sd", ax=ax,
                     legend=ax is axes[0])
        ax.set_title(term, fontsize=10)
        ax.set_ylabel("")
    if axes and axes[0].get_legend() is not None:
        sns.move_legend(axes[0], "upper right", fontsize=8, title=None)
    fig.suptitle(title)
    fig.tight_layout()
    save_png(fig, path)


def sample_grids(images: list[tuple[str, Path]], title: str, path: Path) -> None:
    fig, axes = _grid(len(images), 5, 3.2, 3.4)
    for ax, (label, image_path) in zip(axes, images):
        with Image.open(image_path) as image:
            ax.imshow(np.asarray(image.convert("RGB")), interpolation="nearest")
        ax.set_title(label, fontsize=10)
        ax.axis("off")
    fig.suptitle(title)
    fig.tight_layout()
    save_png(fig, path)


# ---------------------------------------------------------------- from checkpoints and data


def _strip(images: np.ndarray) -> np.ndarray:
    """(N, C, H, W) in [0, 1] -> one (H, N*W, C) row with a 1-pixel gap between images."""
    n, c, h, w = images.shape
    row = np.ones((h, n * (w + 1) - 1, c))
    for i, image in enumerate(images):
        row[:, i * (w + 1): i * (w + 1) + w] = image.transpose(1, 2, 0)
    return row if c == 3 else row[..., 0]


def reconstruction_rows(originals: np.ndarray, reconstructions: dict[str, np.ndarray], title: str, path: Path) -> None:
    reconstruction_rows_like([("original", originals), *reconstructions.items()], title, path)


def copying_rows(pairs: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]], title: str, path: Path) -> None:
    """Per model: a row of samples, and under it the nearest training image of each (pixel L2)."""
    rows = []
    for label, (samples, nearest, distances) in pairs.items():
        rows += [(f"{label}\nsamples", samples),
                 (f"nearest training\n(L2 {np.median(distances):.2g} median)", nearest)]
    reconstruction_rows_like(rows, title, path)


def reconstruction_rows_like(rows: list[tuple[str, np.ndarray]], title: str, path: Path) -> None:
    """Labelled strips of images, one under the other."""
    width = max(len(images) for _, images in rows)
    fig = new_figure(0.8 * width + 1.8, 0.9 * len(rows) + 0.6)
    axes = fig.subplots(len(rows), 1, squeeze=False)
    for ax, (label, images) in zip(axes[:, 0], rows):
        ax.imshow(_strip(np.clip(images, 0, 1)), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
    fig.suptitle(title, fontsize=10)
    save_png(fig, path)


def project_2d(z: np.ndarray) -> tuple[np.ndarray, str]:
    """The latents themselves when 2-D or less, else their first two principal components."""
    if z.shape[1] <= 2:
        return np.pad(z, ((0, 0), (0, 2 - z.shape[1]))), "latent coordinates"
    from sklearn.decomposition import PCA

    pca = PCA(n_components=2).fit(z)
    return pca.transform(z), f"PCA, {100 * pca.explained_variance_ratio_.sum():.0f}% of variance"


def latent_maps(latents: dict[str, tuple[np.ndarray, np.ndarray]], title: str, path: Path) -> None:
    fig, axes = _grid(len(latents), 4, 3.8, 3.6)
    for ax, (label, (z, y)) in zip(axes, latents.items()):
        points, how = project_2d(z)
        sns.scatterplot(x=points[:, 0], y=points[:, 1], hue=y.astype(str), hue_order=sorted(set(y.astype(str)), key=_natural),
                        palette="tab10", s=6, linewidth=0, ax=ax, legend=ax is axes[0])
        ax.set_title(f"{label}\n({how})", fontsize=9)
    if axes and axes[0].get_legend() is not None:
        sns.move_legend(axes[0], "center left", bbox_to_anchor=(-0.55, 0.5), title="class", fontsize=7, markerscale=2)
    fig.suptitle(title)
    fig.tight_layout()
    save_png(fig, path)


def _natural(text: str):
    return (0, int(text)) if text.lstrip("-").isdigit() else (1, text)


def _one_per_class(labels: np.ndarray, k: int) -> np.ndarray:
    """Indices of the first test image of each of the first k classes (then the next images, if fewer classes)."""
    chosen = [int(np.flatnonzero(labels == c)[0]) for c in sorted(np.unique(labels))[:k]]
    rest = [i for i in range(len(labels)) if i not in chosen]
    return np.array(chosen + rest[: k - len(chosen)])


def _dataset_arguments(folder: Path) -> list[str]:
    """The --dataset arguments of the experiment's last command (config.json), e.g. npz:PATH."""
    try:
        return list(json.loads((folder / "config.json").read_text())["config"].get("datasets") or [])
    except (OSError, ValueError, KeyError, TypeError):
        return []


def model_views(folder: Path, dataset: str, picks: pd.DataFrame, data_root, out: Path) -> tuple[list, list[str]]:
    """Reconstructions and latent maps of one dataset, one checkpoint per model; (links, notes)."""
    try:
        import torch

        from aebench.data.datasets import load_dataset, name_for_key
        from aebench.metrics.copying import nearest_training_indices
        from aebench.store.checkpoints import load_model

        binarize = bool(picks["binarize"].iloc[0]) if "binarize" in picks and pd.notna(picks["binarize"].iloc[0]) else False
        data = load_dataset(name_for_key(dataset, _dataset_arguments(folder)), data_root, binarize=binarize)
    except Exception as e:  # no data here (or no model code): the tables do not need it
        return [], [f"reconstructions and latent maps of {dataset} not drawn: its data could not be loaded ({e})"]
    labels = data.test_y.numpy()
    shown = _one_per_class(labels, RECONSTRUCTED_IMAGES)
    subset = np.arange(min(LATENT_POINTS, len(labels)))
    reconstructions, latents, copies, notes = {}, {}, {}, []
    for pick in picks.itertuples():
        checkpoint = _run_folder(pick, folder) / "checkpoints" / f"{pick.run_id}.pt"
        if not checkpoint.is_file():
            notes.append(f"{pick.label} on {dataset}: no checkpoint checkpoints/{pick.run_id}.pt; no reconstructions or latent map")
            continue
        try:
            model = load_model(checkpoint)
            with torch.inference_mode():
                reconstructions[pick.label] = model.reconstruct(data.test_x[shown]).float().numpy()
                latents[pick.label] = (model.encode(data.test_x[subset]).float().flatten(1).numpy(), labels[subset])
                samples = model.sample(COPYING_SAMPLES, torch.Generator().manual_seed(int(pick.seed))).float()
            nearest, distances = nearest_training_indices(samples.flatten(1).numpy(), data.train_x.flatten(1).numpy())
            copies[pick.label] = (samples.numpy(), data.train_x[torch.as_tensor(nearest)].numpy(), distances)
        except Exception as e:  # an old or foreign checkpoint must not stop the report
            notes.append(f"{pick.label} on {dataset}: checkpoint {checkpoint.name} not usable ({type(e).__name__}: {e})")
    links = []
    seeds = f"seed {picks['seed'].min()}" if picks["seed"].nunique() == 1 else "lowest seed of each model"
    if reconstructions:
        name = f"reconstructions_{_file_name(dataset)}.png"
        reconstruction_rows(data.test_x[shown].numpy(), reconstructions, f"{dataset}: test images and reconstructions ({seeds})", out / name)
        links.append(("Reconstructions", f"{FIGURES}/{name}"))
    if copies:
        name = f"copying_{_file_name(dataset)}.png"
        copying_rows(copies, f"{dataset}: samples beside their nearest training image ({seeds})", out / name)
        links.append(("Samples and their nearest training images", f"{FIGURES}/{name}"))
    if latents:
        name = f"latents_{_file_name(dataset)}.png"
        latent_maps(latents, f"{dataset}: {len(subset)} test latents by class ({seeds})", out / name)
        links.append(("Latent space", f"{FIGURES}/{name}"))
    return links, notes


# ---------------------------------------------------------------- all figures of a report


def make_figures(results, data_root=None) -> tuple[dict[str, list[tuple[str, str]]], list[str]]:
    """Draw every figure the experiment allows. Returns ({dataset: [(title, relative path)], "": [...]}, notes);
    the key "" holds the figures that span datasets."""
    folder = results.folder
    out = folder / FIGURES
    out.mkdir(exist_ok=True)
    values = results.values
    directions = values.drop_duplicates("column").set_index("column")["metric"].map(direction).to_dict()
    metric_bars(values, directions, out / "metrics.png")
    links: dict[str, list[tuple[str, str]]] = {"": [("All metrics", f"{FIGURES}/metrics.png")]}
    notes: list[str] = []
    ok_runs = results.runs.merge(values[["run_id", "label"]].drop_duplicates(), on="run_id")
    for dataset in values["dataset"].drop_duplicates():
        runs = ok_runs[ok_runs["dataset"] == dataset]
        links[dataset] = []
        links[dataset] += _curves(folder, dataset, runs, out, notes)
        # The lowest seed of each model stands for it in the image figures.
        picks = runs.sort_values("seed").drop_duplicates("label")
        links[dataset] += _samples(folder, dataset, picks, out, notes)
        view_links, view_notes = model_views(folder, dataset, picks, data_root, out)
        links[dataset] += view_links
        notes += view_notes
    return links, notes


def cd_figure(folder: Path, result: FriedmanResult) -> str:
    """Demsar's critical-difference diagram (aebench/report/cd_diagram.py) as figures/cd_diagram.png; its relative path."""
    (folder / FIGURES).mkdir(exist_ok=True)
    cd_diagram(result, folder / FIGURES / "cd_diagram.png")
    return f"{FIGURES}/cd_diagram.png"


def _curves(folder: Path, dataset: str, runs: pd.DataFrame, out: Path, notes: list[str]) -> list:
    histories, missing = read_histories(folder, runs[~rescored(runs)])  # a rescored run trained nothing
    if missing:
        notes.append(f"{dataset}: no training history for {', '.join(missing)}")
    if histories.empty:
        return []
    name = f"curves_{_file_name(dataset)}.png"
    training_curves(histories, f"{dataset}: loss terms per epoch (mean over seeds, band: std)", out / name)
    return [("Training curves", f"{FIGURES}/{name}")]


def _samples(folder: Path, dataset: str, picks: pd.DataFrame, out: Path, notes: list[str]) -> list:
    images = []
    for pick in picks.itertuples():
        path = _run_folder(pick, folder) / "samples" / f"{pick.run_id}.png"
        if path.is_file():
            images.append((f"{pick.label} (seed {pick.seed})", path))
        else:
            notes.append(f"{pick.label} on {dataset}: no sample grid samples/{pick.run_id}.png")
    if not images:
        return []
    name = f"samples_{_file_name(dataset)}.png"
    sample_grids(images, f"{dataset}: samples from the prior", out / name)
    return [("Samples", f"{FIGURES}/{name}")]
