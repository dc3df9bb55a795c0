"""Speech-recognition plots: ``{task}_learning_curves.png`` (validation WER per epoch) and ``{task}_pareto.png``
(test WER against FLOPs per second of audio and against training time; the "no output" WER of 100 % as a line)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from finebench.plots import draw_per_task, label, metric_vs_cost, per_epoch_curves


def learning_curves(runs: pd.DataFrame, task: str, path: Path) -> None:
    per_epoch_curves(runs, task, path, "val_wer", 100, "validation WER % (greedy CTC)",
                     f"{label(runs, task)}: validation WER per epoch (mean ± 1 std over seeds)", family_colors=True,
                     baseline=(100.0, "no output (100 %)"))


def pareto(board: pd.DataFrame, task: str, path: Path) -> None:
    g = board[(board.task == task) & ~board["is_baseline"].astype(bool)]
    metric_vs_cost(g, (("flops_per_audio_second", "forward FLOPs per second of audio (log scale)"),
                       ("train_seconds_mean", "training time per run (s, log scale)")),
                   "test_wer_mean", 100,
                   "test WER % (lower is better)\nmean ± 95 % CI over seeds and test utterances", (100.0, "no output"),
                   f"{label(g, task)}: WER vs cost", path)


def asr_plots(runs: pd.DataFrame, board: pd.DataFrame, out: Path, kinds) -> list[Path]:
    return draw_per_task(board["task"].unique(), kinds, lambda task: {
        "learning_curves": lambda p: learning_curves(runs, task, p),
        "pareto": lambda p: pareto(board, task, p)}, out)
