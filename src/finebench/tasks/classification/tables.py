"""Classification's table sections: its leaderboard fields (beside the primary metric's statistics, which
finebench.report computes for every task type), costs, families, average ranks across tasks and published
references — the CSVs of finebench.tasks.classification's ``table_files`` and its part of each shared Markdown /
HTML file. Headings carry chance and the majority class's accuracy. Its per-example scores (:func:`example_scores`,
for the report's intervals over seeds and test examples and its paired tests): each run's ``predictions.csv``
``correct`` column.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from finebench.labels import task_label
from finebench.protocol import protocol_differences, protocol_text
from finebench.stats import ALPHA
from finebench.tasks.classification import TASK
from finebench.tasks.tables import (
    TEST_COLUMNS,
    Column,
    Tables,
    human_column,
    interval_cell,
    num_column,
    params_column,
    stat_columns,
    train_seconds_column,
)

ID_COLS = ["task", "modality", "model", "family", "arch"]
BOARD_COLUMNS = [*ID_COLS, "n_seeds", "seeds", *stat_columns(TASK), "params", "flops_per_sample",
                 "train_seconds_mean", "train_samples_per_s_mean", "latency_ms_batch1_mean",
                 "inference_samples_per_s_mean", "peak_memory_mb_max", "device_name", "chance_accuracy", "data_note",
                 "majority_accuracy", *TEST_COLUMNS]
FAMILY_COLUMNS = ["task", "modality", "family", "n_models", "best_model", "best_test_accuracy_mean",
                  "best_test_accuracy_ci95", "best_test_accuracy_ci95_comb", "best_n_seeds",
                  "family_mean_test_accuracy", "best_params", "best_train_seconds_mean", "best_is_task_best",
                  "best_tie_with_task_best"]
INTEGER_RANK = True  # every row is a model: ranks are whole numbers (1, not 1.0, in leaderboard.csv)
REFERENCE_COLUMNS = ["dataset", "model", "family", "accuracy", "source", "protocol"]  # config/references.yaml


def col(g: pd.DataFrame, name: str) -> pd.Series:
    """A metrics column, all-NaN when the runs predate it."""
    return g[name].astype(float) if name in g else pd.Series([np.nan] * len(g), index=g.index)


def example_scores(runs: pd.DataFrame) -> dict:
    """{(task, model, seed): 0/1 correctness per test example} from the ``predictions.csv`` beside each run's
    metrics.json (its ``metrics_file``); a run without one (an older version's) is left out."""
    out: dict[tuple, np.ndarray] = {}
    if "metrics_file" not in runs:
        return out
    for _, r in runs.iterrows():
        path = Path(r["metrics_file"]).parent / "predictions.csv"
        if isinstance(r["metrics_file"], str) and path.is_file():
            out[r["task"], r["model"], r["seed"]] = pd.read_csv(path, usecols=["correct"])["correct"].to_numpy(float)
    return out


def board_fields(g: pd.DataFrame) -> dict:
    """The leaderboard fields of one (task, model)'s runs besides the metrics' statistics (finebench.report)."""
    return {
        "modality": g["modality"].iloc[0], "family": g["family"].iloc[0], "arch": g["arch"].iloc[0],
        "params": int(col(g, "n_params").fillna(col(g, "params")).iloc[0]),  # metrics.json before 0.2: "params"
        "flops_per_sample": col(g, "flops_per_sample").iloc[0],
        "train_seconds_mean": g["train_seconds"].mean(),
        "train_samples_per_s_mean": g["train_samples_per_s"].mean(),
        "latency_ms_batch1_mean": col(g, "latency_ms_batch1").mean(),
        "inference_samples_per_s_mean": col(g, "inference_samples_per_s").mean(),
        "peak_memory_mb_max": col(g, "peak_memory_mb").max(),
        "chance_accuracy": g["chance_accuracy"].iloc[0],
        "data_note": g["data_note"].iloc[0] if "data_note" in g else "",
        "majority_accuracy": g["majority_accuracy"].iloc[0],
    }


def family_fields(best: pd.Series, g: pd.DataFrame) -> dict:
    return {"best_params": best["params"], "best_train_seconds_mean": best["train_seconds_mean"]}


def ranks(board: pd.DataFrame, fam: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Average rank across tasks: of each model (within the tasks it ran on) and of each family (``family_rank``,
    put in by finebench.report: the rank of the family's best model among the families of each task), plus each
    family's mean best accuracy per modality."""
    models = (board.groupby(["modality", "model", "family"], sort=False)
              .agg(n_tasks=("task", "nunique"), mean_rank=("rank", "mean"),
                   mean_test_accuracy=("test_accuracy_mean", "mean"))
              .reset_index().sort_values(["modality", "mean_rank", "model"], kind="stable"))
    families_ = (fam.groupby(["modality", "family"], sort=False)
                 .agg(n_tasks=("task", "nunique"), mean_family_rank=("family_rank", "mean"),
                      mean_best_test_accuracy=("best_test_accuracy_mean", "mean"))
                 .reset_index())
    overall = (fam.groupby("family").agg(n_tasks=("task", "nunique"), mean_family_rank=("family_rank", "mean"),
                                         mean_best_test_accuracy=("best_test_accuracy_mean", "mean"))
               .reset_index().assign(modality="all"))
    families_ = pd.concat([families_, overall], ignore_index=True).sort_values(["modality", "mean_family_rank"],
                                                                               kind="stable")
    return models.reset_index(drop=True), families_.reset_index(drop=True)


def ranks_markdown(model_ranks: pd.DataFrame, family_ranks: pd.DataFrame) -> str:
    from tabulate import tabulate

    parts = ["# Average ranks across tasks", "",
             "Family rank per task = rank of the family's best model among the families (1 = best). "
             "Accuracy in %.", "", "## Families", ""]
    parts.append(tabulate(
        [[r["modality"], r["family"], r["n_tasks"], f"{r['mean_family_rank']:.2f}",
          f"{100 * r['mean_best_test_accuracy']:.1f}"]
         for _, r in family_ranks.iterrows()],
        headers=["modality", "family", "tasks", "mean family rank", "mean best acc %"], tablefmt="github",
        disable_numparse=True))
    parts += ["", "## Models", ""]
    parts.append(tabulate(
        [[r["modality"], r["model"], r["family"], r["n_tasks"], f"{r['mean_rank']:.2f}",
          f"{100 * r['mean_test_accuracy']:.1f}"]
         for _, r in model_ranks.iterrows()],
        headers=["modality", "model", "family", "tasks", "mean rank", "mean acc %"], tablefmt="github",
        disable_numparse=True))
    return "\n".join(parts) + "\n"


UNCERTAINTY = (
    "mean over seeds ± the 95 % half-width over seeds and test examples, sqrt(seeds² + test²): the seeds' "
    "Student-t half-width and the test sample's (Student's t over the test examples' seed-averaged correctness; "
    "every seed is scored on the same test set, so its sampling noise does not average out over seeds) added in "
    "quadrature — never narrower than either; with one seed the test sample's alone. "
    "†: a model without usable per-example test predictions (metrics.json of an older version, or one test example; "
    "the note under the table says which): its ± is the "
    "95 % CI over seeds alone (Student's t) and its ≈ comes from Welch's t-test."
)
LEADERBOARD_INTRO = (
    f"Test accuracy in %: {UNCERTAINTY} *± seeds*: the 95 % CI half-width over seeds alone (Student's t; the test "
    "set held fixed); *± test*: the test sample's alone. **Bold**: best mean in the task; ≈: not significantly "
    "different from the best by a paired test on the same test examples, seeds and test sample combined the same "
    "way (Welch's seed term, the per-example differences' test term; two-sided, "
    f"α = {ALPHA}). leaderboard.csv also keeps Welch's t-test over seed scores alone (`p_vs_best_welch`). "
    "Class-avg acc: the mean of per-class accuracies (the official metric of FGVC-Aircraft and Flowers-102; equal to "
    "accuracy on a balanced test set)."
)
COSTS_INTRO = ("Forward FLOPs per sample (torch FlopCounterMode), mean training time per run, training throughput, "
               "median batch-1 latency, batched inference throughput (batch <= 256), peak memory (CUDA: allocated; "
               "CPU: the training process's peak RSS). Sorted by FLOPs. Test accuracy %: " + UNCERTAINTY)
FAMILIES_INTRO = ("Test accuracy %: " + UNCERTAINTY + " ✓: the family's best is the task's best; ≈: tied with it "
                  "(the leaderboard's test).")


def task_heading(g: pd.DataFrame) -> str:
    first = g.iloc[0]
    return (f"{task_label(first)} ({first['modality']}, chance {100 * first['chance_accuracy']:.1f} %, "
            f"majority class {100 * first['majority_accuracy']:.1f} %)")


def references_table(runs: pd.DataFrame, board: pd.DataFrame, refs: pd.DataFrame) -> pd.DataFrame:
    """Each published reference beside our best model of the same family on every task using that dataset."""
    rows = []
    task_dataset = runs.groupby("task")["dataset"].first()
    for _, ref in refs.iterrows():
        for task in task_dataset[task_dataset == ref["dataset"]].index:
            g = board[board.task == task]
            same = g[g.family == ref["family"]]
            ours = (same if len(same) else g).sort_values("rank").iloc[0]
            protocol = (runs[(runs.task == task) & (runs.model == ours["model"])]["protocol"].iloc[0]
                        if "protocol" in runs else {})
            protocol = protocol if isinstance(protocol, dict) else {}
            why = protocol_differences(ref["protocol"] or {}, protocol)
            rows.append({
                "task": task, "dataset": ref["dataset"], "reference_model": ref["model"],
                "reference_family": ref["family"], "reference_accuracy": ref["accuracy"] / 100, "source": ref["source"],
                "our_model": ours["model"], "our_family": ours["family"],
                "our_test_accuracy_mean": ours["test_accuracy_mean"],
                "our_test_accuracy_ci95": ours["test_accuracy_ci95"],
                "our_test_accuracy_ci95_comb": ours["test_accuracy_ci95_comb"], "our_n_seeds": ours["n_seeds"],
                "our_protocol": protocol_text(protocol), "protocol_differs": bool(why),
                "protocol_notes": "; ".join(why),
            })
    return pd.DataFrame(rows)


def references_markdown(table: pd.DataFrame) -> str:
    from tabulate import tabulate

    parts = ["# Published references", "",
             "Published test accuracy beside ours (the best of our models of the same family, else our best). "
             "⚠: the protocols differ (see notes) — read the gap with that in mind. Sources: config/references.yaml. "
             "Ours: " + UNCERTAINTY, ""]
    if table.empty:
        return "\n".join(parts + ["No task in this run uses a dataset with published references.", ""])
    parts.append(tabulate(
        [[r["task"], r["reference_model"], f"{100 * r['reference_accuracy']:.1f}",
          f"{r['our_model']} ({r['our_family']})",
          interval_cell(TASK.primary, r["our_test_accuracy_mean"], r["our_test_accuracy_ci95_comb"],
                        r["our_test_accuracy_ci95"], r["our_n_seeds"]),
          ("⚠ " + r["protocol_notes"]) if r["protocol_differs"] else "comparable", r["source"]]
         for _, r in table.iterrows()],
        headers=["task", "published model", "published %", "ours", "ours %", "protocol", "source"],
        tablefmt="github", disable_numparse=True))
    return "\n".join(parts) + "\n"


EMPTY_NOTE = "No classification task in this run."


class ClassificationTables(Tables):
    """Classification's tables: the leaderboard shows the std over seeds and every secondary metric; the HTML its
    cost tables; its own: chance and the majority class in the headings, ranks across tasks, references."""

    BOARD_COLUMNS = BOARD_COLUMNS
    FAMILY_COLUMNS = FAMILY_COLUMNS
    REFERENCE_COLUMNS = REFERENCE_COLUMNS
    leads = True
    titles = {"leaderboard": "finebench leaderboard", "costs": "Cost of each model",
              "families": "Best model of each family per task"}
    intros = {"leaderboard": LEADERBOARD_INTRO, "costs": COSTS_INTRO, "families": FAMILIES_INTRO}
    show_std = True
    family_modality = True
    family_headers = ("best test acc %", "family mean %")
    cost_sort = "flops_per_sample"
    fallback_hint = " Retraining a run writes its predictions.csv."

    def board_fields(self, g: pd.DataFrame) -> dict:
        return board_fields(g)

    def family_fields(self, best: pd.Series, g: pd.DataFrame) -> dict:
        return family_fields(best, g)

    def example_scores(self, runs: pd.DataFrame) -> dict:
        return example_scores(runs)

    def heading(self, g: pd.DataFrame) -> str:
        return task_heading(g)

    def board_columns(self) -> list[Column]:
        return [params_column(), human_column("FLOPs/sample", "flops_per_sample"), train_seconds_column()]

    def cost_columns(self) -> list[Column]:
        return [human_column("FLOPs/sample", "flops_per_sample"), train_seconds_column(),
                num_column("train samples/s", "train_samples_per_s_mean", ".0f"),
                num_column("latency ms (b=1)", "latency_ms_batch1_mean", ".2f"),
                num_column("infer samples/s", "inference_samples_per_s_mean", ".0f"),
                num_column("peak MB", "peak_memory_mb_max", ".0f"), self.primary_column(self.metric.label)]

    def extra_frames(self, runs: pd.DataFrame, board: pd.DataFrame, fam: pd.DataFrame, refs: pd.DataFrame) -> dict:
        """Ranks and references."""
        model_ranks, family_ranks = ranks(board, fam)
        return {"model_ranks.csv": model_ranks, "family_ranks.csv": family_ranks,
                "references.csv": references_table(runs, board, refs)}

    def own_sections(self, runs: pd.DataFrame, board: pd.DataFrame, fam: pd.DataFrame, frames: dict,
                     refs: pd.DataFrame) -> dict[str, str]:
        return {"ranks.md": ranks_markdown(frames["model_ranks.csv"], frames["family_ranks.csv"]),
                "references.md": references_markdown(frames["references.csv"])}

    def plots(self, runs: pd.DataFrame, board: pd.DataFrame, fam: pd.DataFrame, out: Path) -> list[Path]:
        from finebench.tasks.classification import plots as drawing

        return drawing.all_plots(runs, board, out)

    def empty(self) -> tuple[dict, dict]:
        """No classification task ran: its CSVs with headers only, and a line saying so in each shared file."""
        frames = {name: pd.DataFrame(columns=cols) for name, cols in (
            ("leaderboard.csv", ID_COLS), ("families.csv", ["task", "modality", "family"]),
            ("model_ranks.csv", ["modality", "model", "family"]), ("family_ranks.csv", ["modality", "family"]),
            ("references.csv", ["task", "dataset"]))}
        texts = {name: f"# {title}\n\n{EMPTY_NOTE}\n" for name, title in (
            ("leaderboard.md", "finebench leaderboard"), ("costs.md", "Cost of each model"),
            ("families.md", "Best model of each family per task"), ("ranks.md", "Average ranks across tasks"),
            ("references.md", "Published references"))}
        texts["leaderboard.html"] = ("<!doctype html><meta charset='utf-8'><title>finebench leaderboard</title>"
                                     f"<h1>finebench leaderboard</h1><p>{EMPTY_NOTE}</p>\n")
        return frames, texts
