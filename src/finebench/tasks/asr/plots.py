"""Speech-recognition plots: ``{task}_learning_curves.png`` (validation WER per epoch) and ``{task}_pareto.png``
(test WER against FLOPs per second of audio and against training time; the "no output" WER of 100 % as a line)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from finebench.plots import FAMILY_COLORS, _plt, draw_per_task, label, per_epoch_curves


def learning_curves(runs: pd.DataFrame, task: str, path: Path) -> None:
    per_epoch_curves(runs, task, path, "val_wer", 100, "validation WER % (greedy CTC)",
                     f"{label(runs, task)}: validation WER per epoch (mean ± 1 std over seeds)", family_colors=True,
                     baseline=(100.0, "no output (100 %)"))


def pareto(board: pd.DataFrame, task: str, path: Path) -> None:
    plt = _plt()
    g = board[(board.task == task) & ~board["is_baseline"].astype(bool)]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), sharey=True)
    for ax, xcol, xlabel in ((axes[0], "flops_per_audio_second", "forward FLOPs per second of audio (log scale)"),
                             (axes[1], "train_seconds_mean", "training time per run (s, log scale)")):
        for _, r in g.dropna(subset=[xcol]).iterrows():
            err = r["test_wer_ci95_comb"] if not np.isnan(r["test_wer_ci95_comb"]) else r["test_wer_ci95"]
            ax.errorbar(r[xcol], 100 * r["test_wer_mean"], yerr=0 if np.isnan(err) else 100 * err, fmt="o", capsize=3,
                        color=FAMILY_COLORS.get(r["family"], "tab:gray"))
            ax.annotate(r["model"], (r[xcol], 100 * r["test_wer_mean"]), textcoords="offset points", xytext=(5, 4),
                        fontsize=8)
        ax.axhline(100.0, color="black", ls="--", lw=1)
        ax.set_xscale("log")
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("test WER % (mean ± 95 % CI; lower is better)")
    handles = [plt.Line2D([], [], marker="o", ls="", color=c, label=f) for f, c in FAMILY_COLORS.items()
               if f in set(g["family"])]
    axes[1].legend(handles=handles + [plt.Line2D([], [], color="black", ls="--", label="no output")], fontsize=8)
    fig.suptitle(f"{label(g, task)}: WER vs cost")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def asr_plots(runs: pd.DataFrame, board: pd.DataFrame, out: Path, kinds) -> list[Path]:
    return draw_per_task(board["task"].unique(), kinds, lambda task: {
        "learning_curves": lambda p: learning_curves(runs, task, p),
        "pareto": lambda p: pareto(board, task, p)}, out)
