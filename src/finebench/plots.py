"""Plots: learning curves, confusion matrices, accuracy-vs-cost Pareto fronts. Every plot has a title, axis labels
and units; files are PNG under ``results/plots/``: ``{task}_learning_curves.png``, ``{task}_confusion_best.png``,
``{task}_pareto.png``."""

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
    out += [f'<defs><linearGradient id="blues" x1="0" y1="1" x2="0" y2="0"><stop offset="0" stop-color="rgb(247,251,255)"/>'
            f'<stop offset="1" stop-color="rgb(8,48,107)"/></linearGradient></defs>',
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


def learning_curves(runs: pd.DataFrame, task: str, path: Path) -> None:
    per_epoch_curves(runs, task, path, "val_accuracy", 100, "validation accuracy (%)",
                     f"{label(runs, task)}: validation accuracy per epoch (mean ± 1 std over seeds)")


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


def best_confusion(runs: pd.DataFrame, board: pd.DataFrame, task: str, path: Path) -> None:
    best = board[(board.task == task)].sort_values("rank").iloc[0]
    files = runs[(runs.task == task) & (runs.model == best["model"])]["metrics_file"]
    mats = [pd.read_csv(Path(f).parent / "confusion.csv", index_col=0) for f in files]
    cm = sum(m.to_numpy() for m in mats)
    plot_confusion(cm, list(mats[0].columns), path,
                   f"{label(runs, task)}: best model {best['model']} — test confusion summed over {len(mats)} seeds")


def pareto(board: pd.DataFrame, task: str, path: Path) -> None:
    plt = _plt()
    g = board[board.task == task]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), sharey=True)
    for ax, xcol, xlabel in ((axes[0], "flops_per_sample", "FLOPs per sample (forward, log scale)"),
                             (axes[1], "train_seconds_mean", "training time per run (s, log scale)")):
        d = g.dropna(subset=[xcol]).sort_values(xcol)
        for _, r in d.iterrows():
            err = 0 if np.isnan(r["test_accuracy_ci95"]) else 100 * r["test_accuracy_ci95"]
            ax.errorbar(r[xcol], 100 * r["test_accuracy_mean"], yerr=err, fmt="o", capsize=3,
                        color=FAMILY_COLORS.get(r["family"], "tab:gray"))
            ax.annotate(r["model"], (r[xcol], 100 * r["test_accuracy_mean"]), textcoords="offset points",
                        xytext=(5, 4), fontsize=8)
        # Pareto front: models no other model beats on both cost and accuracy.
        front, best = [], -np.inf
        for _, r in d.iterrows():
            if r["test_accuracy_mean"] > best:
                front.append((r[xcol], 100 * r["test_accuracy_mean"]))
                best = r["test_accuracy_mean"]
        if front:
            ax.step(*zip(*front), where="post", color="black", alpha=0.4, lw=1, label="Pareto front")
        ax.set_xscale("log")
        ax.set_xlabel(xlabel)
        acc, ci = 100 * g["test_accuracy_mean"], 100 * g["test_accuracy_ci95"].fillna(0)
        ax.set_ylim(max(0.0, (acc - ci).min() - 5), min(100.0, (acc + ci).max() + 5))
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("test accuracy (%, mean ± 95 % CI)")
    handles = [plt.Line2D([], [], marker="o", ls="", color=c, label=f) for f, c in FAMILY_COLORS.items()
               if f in set(g["family"])]
    axes[1].legend(handles=handles + [plt.Line2D([], [], color="black", alpha=0.4, label="Pareto front")], fontsize=8)
    fig.suptitle(f"{label(board, task)}: accuracy vs cost")
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


def all_plots(runs: pd.DataFrame, board: pd.DataFrame, out: Path) -> list[Path]:
    from finebench.tasks import get

    return draw_per_task(board["task"].unique(), get("classification").plot_kinds, lambda task: {
        "learning_curves": lambda p: learning_curves(runs, task, p),
        "confusion_best": lambda p: best_confusion(runs, board, task, p),
        "pareto": lambda p: pareto(board, task, p)}, out)


# ---------------------------------------------------------------------------------------------------------------------
# Super-resolution tasks: ``{task}_learning_curves.png`` (val PSNR), ``{task}_pareto.png`` (PSNR vs cost, bicubic as
# a line) and ``{task}_sr_examples.png`` (one test crop: LR / bicubic / each family's best / HR).


def sr_learning_curves(runs: pd.DataFrame, task: str, path: Path) -> None:
    g_task = runs[runs.task == task]
    bicubic = (float(g_task["bicubic_val_psnr"].iloc[0]), "bicubic") if "bicubic_val_psnr" in g_task else None
    per_epoch_curves(runs, task, path, "val_psnr", 1, "validation PSNR on Y (dB)",
                     f"{task}: validation PSNR per epoch (mean ± 1 std over seeds)", family_colors=True, baseline=bicubic)


def sr_pareto(board: pd.DataFrame, task: str, path: Path) -> None:
    plt = _plt()
    g = board[board.task == task]
    models, base = g[~g["is_baseline"].astype(bool)], g[g["is_baseline"].astype(bool)].iloc[0]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), sharey=True)
    for ax, xcol, xlabel in ((axes[0], "flops_per_output_pixel", "FLOPs per output pixel (forward, log scale)"),
                             (axes[1], "train_seconds_mean", "training time per run (s, log scale)")):
        for _, r in models.dropna(subset=[xcol]).iterrows():
            err = 0 if np.isnan(r["test_psnr_ci95"]) else r["test_psnr_ci95"]
            ax.errorbar(r[xcol], r["test_psnr_mean"], yerr=err, fmt="o", capsize=3,
                        color=FAMILY_COLORS.get(r["family"], "tab:gray"))
            ax.annotate(r["model"], (r[xcol], r["test_psnr_mean"]), textcoords="offset points", xytext=(5, 4), fontsize=8)
        ax.axhline(base["test_psnr_mean"], color="black", ls="--", lw=1)
        ax.set_xscale("log")
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("test PSNR on Y (dB, mean ± 95 % CI)")
    handles = [plt.Line2D([], [], marker="o", ls="", color=c, label=f) for f, c in FAMILY_COLORS.items()
               if f in set(models["family"])]
    axes[1].legend(handles=handles + [plt.Line2D([], [], color="black", ls="--", label="bicubic")], fontsize=8)
    fig.suptitle(f"{task}: PSNR vs cost (×{int(base['scale'])})")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def sr_examples(runs: pd.DataFrame, fam: pd.DataFrame, task: str, path: Path) -> None:
    """LR (shown with nearest-neighbour enlargement) / bicubic / each family's best model (its lowest seed) / HR, on
    the test crop chosen at preparation (the most detailed window of the first test image); PSNR of the crop on Y (a grey
    image: on its own values)."""
    from finebench.tasks.superres.metrics import sr_scores

    plt = _plt()
    best = fam[fam.task == task].sort_values("family")
    panels = []
    for _, f in best.iterrows():
        g = runs[(runs.task == task) & (runs.model == f["best_model"])].sort_values("seed")
        ex = np.load(Path(g["metrics_file"].iloc[0]).parent / "examples.npz")
        panels.append((f"{f['family']}: {f['best_model']} (seed {int(g['seed'].iloc[0])})", ex["sr"]))
    if not panels:
        return
    ex = np.load(Path(runs[(runs.task == task) & (runs.model == best.iloc[0]["best_model"])]
                      .sort_values("seed")["metrics_file"].iloc[0]).parent / "examples.npz")
    scale = ex["hr"].shape[0] // ex["lr"].shape[0]
    lr_big = np.repeat(np.repeat(ex["lr"], scale, 0), scale, 1)
    # scored as the test images are (metrics_sr.sr_scores: Y, a grey image on its own values), the crop unshaved
    hr = ex["hr"][..., :1] if "grey" in ex and bool(ex["grey"]) else ex["hr"]
    panels = [("LR (input)", lr_big), ("bicubic", ex["bicubic"])] + panels + [("HR (ground truth)", ex["hr"])]
    fig, axes = plt.subplots(1, len(panels), figsize=(2.6 * len(panels), 3.1))
    for ax, (title, img) in zip(np.atleast_1d(axes), panels):
        ax.imshow(img, interpolation="nearest")
        label = title if title.startswith(("LR", "HR")) else f"{title}\n{sr_scores(hr, img, 0)['psnr']:.2f} dB (crop)"
        ax.set_title(label, fontsize=8)
        ax.axis("off")
    top, left, size = (int(v) for v in ex["box"])
    fig.suptitle(f"{task}: test image {ex['image']} crop at ({top}, {left}), {size}×{size} HR px, ×{scale}", fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.9))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def sr_plots(runs: pd.DataFrame, board: pd.DataFrame, fam: pd.DataFrame, out: Path) -> list[Path]:
    from finebench.tasks import get

    return draw_per_task(runs["task"].unique(), get("superres").plot_kinds, lambda task: {
        "learning_curves": lambda p: sr_learning_curves(runs, task, p),
        "sr_examples": lambda p: sr_examples(runs, fam, task, p),
        "pareto": lambda p: sr_pareto(board, task, p)}, out)
