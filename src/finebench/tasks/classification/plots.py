"""Classification plots: ``{task}_learning_curves.png`` (validation accuracy), ``{task}_confusion_best.png``
(the best model's test confusion, summed over seeds), ``{task}_pareto.png`` (accuracy vs FLOPs and training time)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from finebench.plots import FAMILY_COLORS, _plt, draw_per_task, error_bars, label, per_epoch_curves, plot_confusion


def learning_curves(runs: pd.DataFrame, task: str, path: Path) -> None:
    per_epoch_curves(runs, task, path, "val_accuracy", 100, "validation accuracy (%)",
                     f"{label(runs, task)}: validation accuracy per epoch (mean ± 1 std over seeds)")


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
    acc, ci = 100 * g["test_accuracy_mean"], 100 * error_bars(g, "test_accuracy_mean")
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), sharey=True)
    for ax, xcol, xlabel in ((axes[0], "flops_per_sample", "FLOPs per sample (forward, log scale)"),
                             (axes[1], "train_seconds_mean", "training time per run (s, log scale)")):
        d = g.dropna(subset=[xcol]).sort_values(xcol)
        for i, r in d.iterrows():
            ax.errorbar(r[xcol], acc[i], yerr=ci[i], fmt="o", capsize=3,
                        color=FAMILY_COLORS.get(r["family"], "tab:gray"))
            ax.annotate(r["model"], (r[xcol], acc[i]), textcoords="offset points",
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
        ax.set_ylim(max(0.0, (acc - ci).min() - 5), min(100.0, (acc + ci).max() + 5))
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("test accuracy (%)\nmean ± 95 % CI over seeds and test examples")
    handles = [plt.Line2D([], [], marker="o", ls="", color=c, label=f) for f, c in FAMILY_COLORS.items()
               if f in set(g["family"])]
    axes[1].legend(handles=handles + [plt.Line2D([], [], color="black", alpha=0.4, label="Pareto front")], fontsize=8)
    fig.suptitle(f"{label(board, task)}: accuracy vs cost")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def all_plots(runs: pd.DataFrame, board: pd.DataFrame, out: Path) -> list[Path]:
    from finebench.tasks.classification import TASK

    return draw_per_task(board["task"].unique(), TASK.plot_kinds, lambda task: {
        "learning_curves": lambda p: learning_curves(runs, task, p),
        "confusion_best": lambda p: best_confusion(runs, board, task, p),
        "pareto": lambda p: pareto(board, task, p)}, out)
