"""Drawing helpers every task type's plots use (finebench.tasks.<type>.plots): per-epoch curves over seeds, confusion
matrices, one file per task and kind. Every plot has a title, axis labels and units; files are PNG under
``results/plots/``: ``{task}_{kind}.png``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from finebench.labels import task_label

FAMILY_COLORS = {"cnn": "tab:blue", "rnn": "tab:orange", "transformer": "tab:green", "other": "tab:gray"}


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_confusion(cm: np.ndarray, classes: list[str], path: Path, title: str) -> None:
    """Row-normalised confusion matrix (fraction of each true class predicted as each class)."""
    plt = _plt()
    k = len(classes)
    size = max(5.0, 0.28 * k + 2)
    fig, ax = plt.subplots(figsize=(size, size * 0.9))
    norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    fontsize = max(4, 9 - k // 12)
    ax.set_xticks(range(k), classes, rotation=90, fontsize=fontsize)
    ax.set_yticks(range(k), classes, fontsize=fontsize)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title)
    fig.colorbar(im, ax=ax, fraction=0.046, label="fraction of true class")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def confusion_svg(cm: np.ndarray, classes: list[str], path: Path, title: str) -> None:
    """The run's row-normalised confusion matrix as a small SVG (a training job's artifact, shown by the MLflow UI;
    hovering a cell shows its count). Written as text: importing matplotlib would cost every training job ~1 s."""
    from html import escape

    k = len(classes)
    cell = max(6, min(28, 640 // max(k, 1)))
    font = max(6, min(11, cell - 3))
    left = 24 + int(0.62 * font * max(len(c) for c in classes))
    top, grid = 34, cell * k
    width, height = max(left + grid + 80, int(7.5 * len(title)) + 20), top + grid + left - 8
    norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    light, dark = np.array([247, 251, 255]), np.array([8, 48, 107])  # white to dark blue, like matplotlib's Blues
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="DejaVu Sans, '
           f'sans-serif" font-size="{font}"><rect width="100%" height="100%" fill="white"/>',
           f'<text x="{width / 2:.0f}" y="16" text-anchor="middle" font-size="13">{escape(title)}</text>']
    for i in range(k):
        y = top + i * cell
        out.append(f'<text x="{left - 4}" y="{y + cell / 2:.1f}" text-anchor="end" dominant-baseline="middle">'
                   f'{escape(classes[i])}</text>')
        for j in range(k):
            r, g, b = (light + (dark - light) * norm[i, j]).round().astype(int)
            out.append(f'<rect x="{left + j * cell}" y="{y}" width="{cell}" height="{cell}" fill="rgb({r},{g},{b})">'
                       f'<title>true {escape(classes[i])}, predicted {escape(classes[j])}: {int(cm[i, j])} '
                       f'({norm[i, j]:.1%} of the class)</title></rect>')
    for j in range(k):
        x = left + j * cell + cell / 2
        out.append(f'<text transform="translate({x:.1f},{top + grid + 4}) rotate(90)" dominant-baseline="middle">'
                   f'{escape(classes[j])}</text>')
    bar = left + grid + 16
    out += ['<defs><linearGradient id="blues" x1="0" y1="1" x2="0" y2="0">'
            '<stop offset="0" stop-color="rgb(247,251,255)"/><stop offset="1" stop-color="rgb(8,48,107)"/>'
            '</linearGradient></defs>',
            f'<rect x="{bar}" y="{top}" width="12" height="{grid}" fill="url(#blues)" stroke="#888"/>',
            f'<text x="{bar + 16}" y="{top + 4}">1</text><text x="{bar + 16}" y="{top + grid}">0</text>',
            f'<text transform="translate({bar + 40},{top + grid / 2:.0f}) rotate(90)" text-anchor="middle">'
            f'fraction of true class</text>',
            f'<text x="{left + grid / 2:.0f}" y="{height - 4}" text-anchor="middle">predicted class</text>',
            f'<text transform="translate(12,{top + grid / 2:.0f}) rotate(-90)" text-anchor="middle">true class</text>',
            "</svg>"]
    path.write_text("\n".join(out) + "\n")


def label(frame: pd.DataFrame, task: str) -> str:
    return task_label(frame[frame.task == task].iloc[0])


def per_epoch_curves(runs: pd.DataFrame, task: str, path: Path, column: str, scale: float, ylabel: str, title: str,
                     family_colors: bool = False, baseline: tuple[float, str] | None = None) -> None:
    """One line per model: ``column`` of its runs' history.csv (x ``scale``), mean over seeds with a ±1 std band;
    ``baseline``: (value, label) drawn as a dashed line."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for (model, family), g in runs[runs.task == task].groupby(["model", "family"], sort=False):
        hist = [pd.read_csv(Path(f).parent / "history.csv") for f in g["metrics_file"]]
        epochs = min(len(h) for h in hist)
        values = np.stack([h[column].to_numpy()[:epochs] for h in hist]) * scale
        x = np.arange(1, epochs + 1)
        mean = values.mean(0)
        line, = ax.plot(x, mean, marker="o", ms=3, label=f"{model} ({family}, {len(hist)} seeds)",
                        **({"color": FAMILY_COLORS.get(family)} if family_colors else {}))
        if len(hist) > 1:
            std = values.std(0, ddof=1)
            ax.fill_between(x, mean - std, mean + std, alpha=0.2, color=line.get_color())
    if baseline is not None:
        ax.axhline(baseline[0], color="black", ls="--", lw=1, label=baseline[1])
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# The plots of each task, ``{task}_{kind}.png``, kinds as its task type declares them (finebench.tasks: plot_kinds);
# the workflow's aggregate rule declares one file per task and kind.


def draw_per_task(tasks, kinds, drawers, out: Path) -> list[Path]:
    """``{task}_{kind}.png`` for every task and kind: ``drawers(task)`` maps each kind to a function of the path."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for task in tasks:
        draw = drawers(task)
        for kind in kinds:
            path = out / f"{task}_{kind}.png"
            draw[kind](path)
            written.append(path)
    return written


def error_bars(frame: pd.DataFrame, mean: str) -> pd.Series:
    """Each row's error bar for the column ``mean`` (``test_accuracy_mean``): the leaderboard's interval over seeds and
    the test sample (``…_ci95_comb``), over seeds alone (``…_ci95``) where a row has none; 0 where neither is."""
    base = mean.removesuffix("_mean")
    return frame[[f"{base}_ci95_comb", f"{base}_ci95"]].bfill(axis=1).iloc[:, 0].fillna(0.0)


def metric_vs_cost(models: pd.DataFrame, axes_spec, y: str, scale: float, ylabel: str, baseline, title: str,
                   path: Path) -> None:
    """Two panels, the test metric ``scale`` × ``y`` (a ``…_mean`` column) of each model against two costs
    (``axes_spec``: [(column, label)] × 2, log x), with :func:`error_bars`, coloured by family, a baseline
    ``(value, label)`` as a dashed line."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), sharey=True)
    err = error_bars(models, y)
    for ax, (xcol, xlabel) in zip(axes, axes_spec):
        for i, r in models.dropna(subset=[xcol]).iterrows():
            ax.errorbar(r[xcol], scale * r[y], yerr=scale * err[i], fmt="o", capsize=3,
                        color=FAMILY_COLORS.get(r["family"], "tab:gray"))
            ax.annotate(r["model"], (r[xcol], scale * r[y]), textcoords="offset points", xytext=(5, 4), fontsize=8)
        ax.axhline(baseline[0], color="black", ls="--", lw=1)
        ax.set_xscale("log")
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(ylabel)
    handles = [plt.Line2D([], [], marker="o", ls="", color=c, label=f) for f, c in FAMILY_COLORS.items()
               if f in set(models["family"])]
    axes[1].legend(handles=handles + [plt.Line2D([], [], color="black", ls="--", label=baseline[1])], fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
