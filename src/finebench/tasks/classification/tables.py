"""Classification's table sections: its leaderboard fields (beside the primary metric's statistics, which
finebench.report computes for every task type), costs, families, average ranks across tasks and published
references — the CSVs of finebench.tasks.classification's ``table_files`` and its part of each shared Markdown /
HTML file. Headings carry chance and the majority class's accuracy. Its per-example scores (:func:`example_scores`,
for the report's intervals over seeds and test examples and its paired tests): each run's ``predictions.csv``
``correct`` column.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from finebench.labels import task_label
from finebench.protocol import protocol_differences, protocol_text
from finebench.stats import ALPHA, human, num

ID_COLS = ["task", "modality", "model", "family", "arch"]
BOARD_COLUMNS = [*ID_COLS, "n_seeds", "seeds", "test_accuracy_mean", "test_accuracy_std", "test_accuracy_ci95",
                 "test_accuracy_ci95_test", "test_accuracy_ci95_comb",
                 "test_accuracy_min", "test_accuracy_max", "test_mean_class_accuracy_mean", "test_macro_f1_mean",
                 "test_top5_mean", "params", "flops_per_sample", "train_seconds_mean", "train_samples_per_s_mean",
                 "latency_ms_batch1_mean", "inference_samples_per_s_mean", "peak_memory_mb_max", "device_name",
                 "chance_accuracy", "data_note", "majority_accuracy", "rank", "is_best", "p_vs_best", "tie_test",
                 "tie_with_best", "p_vs_best_welch", "stats_note"]
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
    """The leaderboard fields of one (task, model)'s runs besides the primary metric's statistics."""
    return {
        "modality": g["modality"].iloc[0], "family": g["family"].iloc[0], "arch": g["arch"].iloc[0],
        # a seed without it (null: damaged, or an older version) makes the mean unknown ("—"), not a mean of fewer seeds
        "test_mean_class_accuracy_mean": col(g, "test_mean_class_accuracy").mean(skipna=False),
        "test_macro_f1_mean": col(g, "test_macro_f1").mean(skipna=False),
        "test_top5_mean": g["test_top5"].mean() if "test_top5" in g and g["test_top5"].notna().any() else float("nan"),
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


def pct(mean: float, ci: float, n: int) -> str:
    """Mean ± the seed-only Student's t half-width, in % (the Welch fallback's cell, and the seed CI)."""
    if n < 2 or math.isnan(ci):
        return f"{100 * mean:.1f} (1 seed, no CI)"
    return f"{100 * mean:.1f} ± {100 * ci:.1f}"


def acc_cell(mean: float, comb: float, ci: float, n: int) -> str:
    """Mean ± the combined half-width over seeds and test examples, in %; where there is none (no per-example
    predictions), the seed-only interval marked †. One seed: the ± is the test sample's alone."""
    if comb is None or math.isnan(comb):
        return f"{pct(mean, ci, n)} †"
    return f"{100 * mean:.1f} ± {100 * comb:.1f}" + (" (1 seed)" if n < 2 else "")


def half_width(ci: float) -> str:
    """A half-width alone, in % ("—" where there is none)."""
    return "—" if ci is None or math.isnan(ci) else f"{100 * ci:.1f}"


def mark(text: str, best: bool, tie: bool, bold) -> str:
    return bold(text) if best else (f"{text} ≈" if tie else text)


LEADERBOARD_HEADERS = ["#", "model", "family", "arch", "seeds", "test acc %", "± seeds", "± test", "std",
                       "class-avg acc %", "macro-F1 %", "top-5 %", "params", "FLOPs/sample", "train s"]
COST_HEADERS = ["model", "family", "params", "FLOPs/sample", "train s", "train samples/s", "latency ms (b=1)",
                "infer samples/s", "peak MB", "test acc %"]
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


def fallback_note(g: pd.DataFrame) -> str:
    from finebench.report import table_notes as note

    return note(g, "test_accuracy", " Retraining a run writes its predictions.csv.")


def task_heading(g: pd.DataFrame) -> str:
    first = g.iloc[0]
    return (f"{task_label(first)} ({first['modality']}, chance {100 * first['chance_accuracy']:.1f} %, "
            f"majority class {100 * first['majority_accuracy']:.1f} %)")


def leaderboard_rows(g: pd.DataFrame, bold) -> list[list]:
    return [
        [
            r["rank"], r["model"], r["family"], r["arch"], r["n_seeds"],
            mark(acc_cell(r["test_accuracy_mean"], r["test_accuracy_ci95_comb"], r["test_accuracy_ci95"], r["n_seeds"]),
                 r["is_best"], r["tie_with_best"], bold),
            half_width(r["test_accuracy_ci95"]), half_width(r["test_accuracy_ci95_test"]),
            "—" if math.isnan(r["test_accuracy_std"]) else f"{100 * r['test_accuracy_std']:.1f}",
            num(100 * r["test_mean_class_accuracy_mean"], ".1f"),
            num(100 * r["test_macro_f1_mean"], ".1f"),
            "—" if math.isnan(r["test_top5_mean"]) else f"{100 * r['test_top5_mean']:.1f}",
            human(r["params"]), human(r["flops_per_sample"]), f"{r['train_seconds_mean']:.1f}",
        ]
        for _, r in g.iterrows()
    ]


def cost_rows(g: pd.DataFrame) -> list[list]:
    return [
        [r["model"], r["family"], human(r["params"]), human(r["flops_per_sample"]), f"{r['train_seconds_mean']:.1f}",
         num(r["train_samples_per_s_mean"], ".0f"), num(r["latency_ms_batch1_mean"], ".2f"),
         num(r["inference_samples_per_s_mean"], ".0f"), num(r["peak_memory_mb_max"], ".0f"),
         acc_cell(r["test_accuracy_mean"], r["test_accuracy_ci95_comb"], r["test_accuracy_ci95"], r["n_seeds"])]
        for _, r in g.sort_values("flops_per_sample", na_position="last").iterrows()
    ]


def costs_markdown(board: pd.DataFrame) -> str:
    from tabulate import tabulate

    from finebench.report import cost_groups

    parts = ["# Cost of each model", "",
             "Forward FLOPs per sample (torch FlopCounterMode), mean training time per run, training throughput, "
             "median batch-1 latency, batched inference throughput (batch <= 256), peak memory (CUDA: allocated; "
             "CPU: the training process's peak RSS). Sorted by FLOPs. Test accuracy %: " + UNCERTAINTY, ""]
    for _, g in board.groupby("task", sort=False):
        parts += [f"## {task_heading(g)}", ""]
        for device, d in cost_groups(g):  # one table per device the costs were measured on
            parts += [device, "", tabulate(cost_rows(d), headers=COST_HEADERS, tablefmt="github",
                                           disable_numparse=True), ""]
    return "\n".join(parts)


def leaderboard_markdown(board: pd.DataFrame) -> str:
    from tabulate import tabulate

    parts = ["# finebench leaderboard", "", LEADERBOARD_INTRO, ""]
    for _, g in board.groupby("task", sort=False):
        note = fallback_note(g)
        parts += [f"## {task_heading(g)}", "",
                  tabulate(leaderboard_rows(g, lambda t: f"**{t}**"), headers=LEADERBOARD_HEADERS, tablefmt="github",
                           disable_numparse=True), "", *([note, ""] if note else [])]
    return "\n".join(parts)


def leaderboard_html(board: pd.DataFrame) -> str:
    import html

    from tabulate import tabulate

    from finebench.report import cost_groups, html_paragraph

    parts = ["<!doctype html><meta charset='utf-8'><title>finebench leaderboard</title>",
             "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}</style>",
             "<h1>finebench leaderboard</h1>", html_paragraph(LEADERBOARD_INTRO)]
    for _, g in board.groupby("task", sort=False):
        rows = [[html.escape(str(c)) for c in row] for row in leaderboard_rows(g, lambda t: t)]
        for row, (_, r) in zip(rows, g.iterrows()):
            if r["is_best"]:
                row[5] = f"<b>{row[5]}</b>"
        parts += [f"<h2>{html.escape(task_heading(g))}</h2>",
                  tabulate(rows, headers=LEADERBOARD_HEADERS, tablefmt="unsafehtml", disable_numparse=True),
                  html_paragraph(fallback_note(g)),
                  "<h3>Cost</h3>"]
        for device, d in cost_groups(g):
            parts += [html_paragraph(device),
                      tabulate([[html.escape(str(c)) for c in row] for row in cost_rows(d)], headers=COST_HEADERS,
                               tablefmt="unsafehtml", disable_numparse=True)]
    return "\n".join(parts) + "\n"


def families_markdown(fam: pd.DataFrame) -> str:
    from tabulate import tabulate

    parts = ["# Best model of each family per task", "",
             "Test accuracy %: " + UNCERTAINTY + " ✓: the family's best is the task's best; ≈: tied with it "
             "(the leaderboard's test).", ""]
    table = [
        [r["task"], r["modality"], r["family"], r["best_model"],
         acc_cell(r["best_test_accuracy_mean"], r["best_test_accuracy_ci95_comb"], r["best_test_accuracy_ci95"],
                  r["best_n_seeds"]),
         f"{100 * r['family_mean_test_accuracy']:.1f}", r["n_models"],
         "✓" if r["best_is_task_best"] else ("≈" if r["best_tie_with_task_best"] else "")]
        for _, r in fam.iterrows()
    ]
    parts.append(tabulate(table, headers=["task", "modality", "family", "best model", "best test acc %",
                                          "family mean %", "models", "vs task best"],
                          tablefmt="github", disable_numparse=True))
    return "\n".join(parts) + "\n"


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
          acc_cell(r["our_test_accuracy_mean"], r["our_test_accuracy_ci95_comb"], r["our_test_accuracy_ci95"],
                   r["our_n_seeds"]),
          ("⚠ " + r["protocol_notes"]) if r["protocol_differs"] else "comparable", r["source"]]
         for _, r in table.iterrows()],
        headers=["task", "published model", "published %", "ours", "ours %", "protocol", "source"],
        tablefmt="github", disable_numparse=True))
    return "\n".join(parts) + "\n"


def extra_frames(runs: pd.DataFrame, board: pd.DataFrame, fam: pd.DataFrame, refs: pd.DataFrame) -> dict:
    """Its CSVs besides the leaderboard and families (finebench.report writes those): ranks and references."""
    model_ranks, family_ranks = ranks(board, fam)
    return {"model_ranks.csv": model_ranks, "family_ranks.csv": family_ranks,
            "references.csv": references_table(runs, board, refs)}


def sections(runs: pd.DataFrame, board: pd.DataFrame, fam: pd.DataFrame, frames: dict, refs: pd.DataFrame
             ) -> dict[str, str]:
    """Its part of each shared Markdown / HTML file (classification comes first: the files' titles are its)."""
    return {"leaderboard.md": leaderboard_markdown(board), "leaderboard.html": leaderboard_html(board),
            "costs.md": costs_markdown(board), "families.md": families_markdown(fam),
            "ranks.md": ranks_markdown(frames["model_ranks.csv"], frames["family_ranks.csv"]),
            "references.md": references_markdown(frames["references.csv"])}


def plots(runs: pd.DataFrame, board: pd.DataFrame, fam: pd.DataFrame, out: Path) -> list[Path]:
    from finebench.tasks.classification import plots as drawing

    return drawing.all_plots(runs, board, out)


EMPTY_NOTE = "No classification task in this run."


def empty() -> tuple[dict, dict]:
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
