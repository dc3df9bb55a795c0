"""Super-resolution plots: ``{task}_learning_curves.png`` (validation PSNR), ``{task}_pareto.png`` (PSNR vs cost,
bicubic as a line) and ``{task}_sr_examples.png`` (one test crop: LR / bicubic / each family's best / HR)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from finebench.plots import _plt, draw_per_task, metric_vs_cost, per_epoch_curves


def sr_learning_curves(runs: pd.DataFrame, task: str, path: Path) -> None:
    g_task = runs[runs.task == task]
    bicubic = (float(g_task["bicubic_val_psnr"].iloc[0]), "bicubic") if "bicubic_val_psnr" in g_task else None
    per_epoch_curves(runs, task, path, "val_psnr", 1, "validation PSNR on Y (dB)",
                     f"{task}: validation PSNR per epoch (mean ± 1 std over seeds)", family_colors=True,
                     baseline=bicubic)


def sr_pareto(board: pd.DataFrame, task: str, path: Path) -> None:
    g = board[board.task == task]
    models, base = g[~g["is_baseline"].astype(bool)], g[g["is_baseline"].astype(bool)].iloc[0]
    metric_vs_cost(models, (("flops_per_output_pixel", "FLOPs per output pixel (forward, log scale)"),
                            ("train_seconds_mean", "training time per run (s, log scale)")),
                   "test_psnr_mean", 1,
                   "test PSNR on Y (dB)\nmean ± 95 % CI over seeds and test images",
                   (base["test_psnr_mean"], "bicubic"), f"{task}: PSNR vs cost (×{int(base['scale'])})", path)


def sr_examples(runs: pd.DataFrame, fam: pd.DataFrame, task: str, path: Path) -> None:
    """LR (shown with nearest-neighbour enlargement) / bicubic / each family's best model (its lowest seed) / HR, on
    the test crop chosen at preparation (the most detailed window of the first test image); PSNR of the crop on Y (a
    grey image: on its own values)."""
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
    # scored as the test images are (tasks.superres.metrics.sr_scores: Y, a grey image on its own values), unshaved
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
    from finebench.tasks.superres import TASK

    return draw_per_task(runs["task"].unique(), TASK.plot_kinds, lambda task: {
        "learning_curves": lambda p: sr_learning_curves(runs, task, p),
        "sr_examples": lambda p: sr_examples(runs, fam, task, p),
        "pareto": lambda p: sr_pareto(board, task, p)}, out)
