"""The one report builder: ``metrics.json`` files -> comparison tables (CSV + Markdown) and plots.

    python -m finebench aggregate results/runs/*/*/seed*/metrics.json --out results/tables --plots results/plots

Reads only the metrics files (never MLflow), so tables can be rebuilt anywhere. Statistics per (task, model) over
seeds: mean, sample std, 95 % confidence half-width from Student's t (none for a single seed — shown as such, not as
zero), min/max. Within a task, the best mean is marked and every model whose accuracy is not significantly different
from it (Welch's unequal-variance t-test, two-sided, alpha 0.05; needs >= 2 seeds on both sides) is marked as a tie.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from finebench.stats import ALPHA, ci95, human, num, welch_p

from finebench import plots
from finebench.labels import task_label

ID_COLS = ["task", "modality", "model", "family", "arch"]
# Every file :func:`aggregate` writes into the tables folder: the workflow's aggregate rule declares exactly these.
TABLE_FILES = ("leaderboard.csv", "leaderboard.md", "leaderboard.html", "costs.md", "families.csv", "families.md",
               "runs.csv", "model_ranks.csv", "family_ranks.csv", "ranks.md", "references.csv", "references.md",
               "leaderboard_sr.csv", "families_sr.csv", "family_ranks_sr.csv")  # *_sr: report_sr (header only if no SR task)


def load_metrics(paths) -> pd.DataFrame:
    rows = []
    for p in paths:
        m = json.loads(Path(p).read_text())
        m["metrics_file"] = str(p)
        rows.append(m)
    if not rows:
        raise ValueError("no metrics.json files given")
    return pd.DataFrame(rows)


def col(g: pd.DataFrame, name: str) -> pd.Series:
    """A metrics column, all-NaN when the runs predate it."""
    return g[name].astype(float) if name in g else pd.Series([np.nan] * len(g), index=g.index)


def leaderboard(runs: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for key, g in runs.groupby(ID_COLS, sort=False):
        acc = g["test_accuracy"].to_numpy(float)
        rows.append({
            **dict(zip(ID_COLS, key)),
            "n_seeds": len(g),
            "seeds": " ".join(str(s) for s in sorted(g["seed"])),
            "test_accuracy_mean": acc.mean(),
            "test_accuracy_std": float(np.std(acc, ddof=1)) if len(acc) > 1 else float("nan"),
            "test_accuracy_ci95": ci95(acc),
            "test_accuracy_min": acc.min(),
            "test_accuracy_max": acc.max(),
            "test_mean_class_accuracy_mean": col(g, "test_mean_class_accuracy").mean(),
            "test_macro_f1_mean": g["test_macro_f1"].mean(),
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
        })
    board = pd.DataFrame(rows)
    board["rank"] = board.groupby("task")["test_accuracy_mean"].rank(ascending=False, method="min").astype(int)
    board["is_best"] = board["rank"] == 1
    board["p_vs_best"] = np.nan
    for task, g in board.groupby("task", sort=False):
        best = g.loc[g["test_accuracy_mean"].idxmax(), "model"]
        best_acc = runs[(runs.task == task) & (runs.model == best)]["test_accuracy"].to_numpy(float)
        for i, row in g.iterrows():
            if row["model"] != best:
                other = runs[(runs.task == task) & (runs.model == row["model"])]["test_accuracy"].to_numpy(float)
                board.loc[i, "p_vs_best"] = welch_p(best_acc, other)
    board["tie_with_best"] = board["p_vs_best"] >= ALPHA
    return board.sort_values(["task", "rank", "model"], kind="stable").reset_index(drop=True)


def families(board: pd.DataFrame) -> pd.DataFrame:
    """Per task and family: the best model of the family and the family's mean over its models."""
    rows = []
    for (task, modality, family), g in board.groupby(["task", "modality", "family"], sort=False):
        best = g.loc[g["test_accuracy_mean"].idxmax()]
        rows.append({
            "task": task, "modality": modality, "family": family, "n_models": len(g),
            "best_model": best["model"],
            "best_test_accuracy_mean": best["test_accuracy_mean"],
            "best_test_accuracy_ci95": best["test_accuracy_ci95"],
            "best_n_seeds": best["n_seeds"],
            "family_mean_test_accuracy": g["test_accuracy_mean"].mean(),
            "best_params": best["params"],
            "best_train_seconds_mean": best["train_seconds_mean"],
            "best_is_task_best": bool(best["is_best"]),
            "best_tie_with_task_best": bool(best["tie_with_best"]),
        })
    out = pd.DataFrame(rows)
    return out.sort_values(["task", "best_test_accuracy_mean"], ascending=[True, False], kind="stable").reset_index(drop=True)


def ranks(board: pd.DataFrame, fam: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Average rank across tasks: of each model (within the tasks it ran on) and of each family (the rank of the
    family's best model among the families of each task), plus each family's mean best accuracy per modality."""
    models = (board.groupby(["modality", "model", "family"], sort=False)
              .agg(n_tasks=("task", "nunique"), mean_rank=("rank", "mean"), mean_test_accuracy=("test_accuracy_mean", "mean"))
              .reset_index().sort_values(["modality", "mean_rank", "model"], kind="stable"))
    fam = fam.copy()
    fam["family_rank"] = fam.groupby("task")["best_test_accuracy_mean"].rank(ascending=False, method="min")
    families_ = (fam.groupby(["modality", "family"], sort=False)
                 .agg(n_tasks=("task", "nunique"), mean_family_rank=("family_rank", "mean"),
                      mean_best_test_accuracy=("best_test_accuracy_mean", "mean"))
                 .reset_index())
    overall = (fam.groupby("family").agg(n_tasks=("task", "nunique"), mean_family_rank=("family_rank", "mean"),
                                         mean_best_test_accuracy=("best_test_accuracy_mean", "mean"))
               .reset_index().assign(modality="all"))
    families_ = pd.concat([families_, overall], ignore_index=True).sort_values(["modality", "mean_family_rank"], kind="stable")
    return models.reset_index(drop=True), families_.reset_index(drop=True)


def ranks_markdown(model_ranks: pd.DataFrame, family_ranks: pd.DataFrame) -> str:
    from tabulate import tabulate

    parts = ["# Average ranks across tasks", "",
             "Family rank per task = rank of the family's best model among the families (1 = best). "
             "Accuracy in %.", "", "## Families", ""]
    parts.append(tabulate(
        [[r["modality"], r["family"], r["n_tasks"], f"{r['mean_family_rank']:.2f}", f"{100 * r['mean_best_test_accuracy']:.1f}"]
         for _, r in family_ranks.iterrows()],
        headers=["modality", "family", "tasks", "mean family rank", "mean best acc %"], tablefmt="github",
        disable_numparse=True))
    parts += ["", "## Models", ""]
    parts.append(tabulate(
        [[r["modality"], r["model"], r["family"], r["n_tasks"], f"{r['mean_rank']:.2f}", f"{100 * r['mean_test_accuracy']:.1f}"]
         for _, r in model_ranks.iterrows()],
        headers=["modality", "model", "family", "tasks", "mean rank", "mean acc %"], tablefmt="github", disable_numparse=True))
    return "\n".join(parts) + "\n"


def pct(mean: float, ci: float, n: int) -> str:
    if n < 2 or math.isnan(ci):
        return f"{100 * mean:.1f} (1 seed, no CI)"
    return f"{100 * mean:.1f} ± {100 * ci:.1f}"


def mark(text: str, best: bool, tie: bool, bold) -> str:
    return bold(text) if best else (f"{text} ≈" if tie else text)


LEADERBOARD_HEADERS = ["#", "model", "family", "arch", "seeds", "test acc %", "std", "class-avg acc %", "macro-F1 %",
                       "top-5 %", "params", "FLOPs/sample", "train s"]
COST_HEADERS = ["model", "family", "params", "FLOPs/sample", "train s", "train samples/s", "latency ms (b=1)",
                "infer samples/s", "peak MB", "test acc %"]
LEADERBOARD_INTRO = (
    "Test accuracy in % as mean ± 95 % CI half-width (Student's t over seeds). Bold: best mean in the task; "
    f"≈: not significantly different from the best (Welch's t-test, two-sided, α = {ALPHA}; needs ≥ 2 seeds each). "
    "Class-avg acc: the mean of per-class accuracies (the official metric of FGVC-Aircraft and Flowers-102; equal to "
    "accuracy on a balanced test set)."
)


def task_heading(g: pd.DataFrame) -> str:
    first = g.iloc[0]
    return (f"{task_label(first)} ({first['modality']}, chance {100 * first['chance_accuracy']:.1f} %, "
            f"majority class {100 * first['majority_accuracy']:.1f} %)")


def leaderboard_rows(g: pd.DataFrame, bold) -> list[list]:
    return [
        [
            r["rank"], r["model"], r["family"], r["arch"], r["n_seeds"],
            mark(pct(r["test_accuracy_mean"], r["test_accuracy_ci95"], r["n_seeds"]), r["is_best"], r["tie_with_best"], bold),
            "—" if math.isnan(r["test_accuracy_std"]) else f"{100 * r['test_accuracy_std']:.1f}",
            num(100 * r["test_mean_class_accuracy_mean"], ".1f"),
            f"{100 * r['test_macro_f1_mean']:.1f}",
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
         pct(r["test_accuracy_mean"], r["test_accuracy_ci95"], r["n_seeds"])]
        for _, r in g.sort_values("flops_per_sample", na_position="last").iterrows()
    ]


def costs_markdown(board: pd.DataFrame) -> str:
    from tabulate import tabulate

    parts = ["# Cost of each model", "",
             "Forward FLOPs per sample (torch FlopCounterMode), mean training time per run, training throughput, "
             "median batch-1 latency, batched inference throughput (batch <= 256), peak memory (CUDA: allocated; "
             "CPU: the training process's peak RSS). Sorted by FLOPs.", ""]
    for _, g in board.groupby("task", sort=False):
        parts += [f"## {task_heading(g)}", "",
                  tabulate(cost_rows(g), headers=COST_HEADERS, tablefmt="github", disable_numparse=True), ""]
    return "\n".join(parts)


def leaderboard_markdown(board: pd.DataFrame) -> str:
    from tabulate import tabulate

    parts = ["# finebench leaderboard", "", LEADERBOARD_INTRO.replace("Bold", "**Bold**"), ""]
    for _, g in board.groupby("task", sort=False):
        parts += [f"## {task_heading(g)}", "",
                  tabulate(leaderboard_rows(g, lambda t: f"**{t}**"), headers=LEADERBOARD_HEADERS, tablefmt="github",
                           disable_numparse=True), ""]
    return "\n".join(parts)


def leaderboard_html(board: pd.DataFrame) -> str:
    import html

    from tabulate import tabulate

    parts = ["<!doctype html><meta charset='utf-8'><title>finebench leaderboard</title>",
             "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}</style>",
             "<h1>finebench leaderboard</h1>", f"<p>{html.escape(LEADERBOARD_INTRO)}</p>"]
    for _, g in board.groupby("task", sort=False):
        rows = [[html.escape(str(c)) for c in row] for row in leaderboard_rows(g, lambda t: t)]
        for row, (_, r) in zip(rows, g.iterrows()):
            if r["is_best"]:
                row[5] = f"<b>{row[5]}</b>"
        parts += [f"<h2>{html.escape(task_heading(g))}</h2>",
                  tabulate(rows, headers=LEADERBOARD_HEADERS, tablefmt="unsafehtml", disable_numparse=True),
                  "<h3>Cost</h3>",
                  tabulate([[html.escape(str(c)) for c in row] for row in cost_rows(g)], headers=COST_HEADERS,
                           tablefmt="unsafehtml", disable_numparse=True)]
    return "\n".join(parts) + "\n"


def families_markdown(fam: pd.DataFrame) -> str:
    from tabulate import tabulate

    parts = ["# Best model of each family per task", "",
             "Test accuracy % (mean ± 95 % CI). ✓: the family's best is the task's best; ≈: statistically tied with it.", ""]
    table = [
        [r["task"], r["modality"], r["family"], r["best_model"],
         pct(r["best_test_accuracy_mean"], r["best_test_accuracy_ci95"], r["best_n_seeds"]),
         f"{100 * r['family_mean_test_accuracy']:.1f}", r["n_models"],
         "✓" if r["best_is_task_best"] else ("≈" if r["best_tie_with_task_best"] else "")]
        for _, r in fam.iterrows()
    ]
    parts.append(tabulate(table, headers=["task", "modality", "family", "best model", "best test acc %",
                                          "family mean %", "models", "vs task best"],
                          tablefmt="github", disable_numparse=True))
    return "\n".join(parts) + "\n"


def load_references(path: str | Path | None) -> pd.DataFrame:
    from finebench.config import load_yaml

    cols = ["dataset", "model", "family", "accuracy", "source", "protocol"]
    if not path or not Path(path).is_file():
        return pd.DataFrame(columns=cols)
    refs = (load_yaml(Path(path).read_text()) or {}).get("references") or []
    refs = [r for r in refs if r.get("task_type", "classification") == "classification"]  # SR: report_sr
    for i, r in enumerate(refs):
        missing = [c for c in cols if c not in r]
        if missing:
            raise ValueError(f"{path}: references[{i}] lacks {', '.join(missing)}")
    return pd.DataFrame(refs, columns=cols)


PRETRAINING_TEXT = {"none": "none", "timm_hub": "timm hub weights", "file": "file", "hf_hub": "hf hub weights",
                    "hf_folder": "hf folder"}


def protocol_fields(protocol: dict | None) -> dict:
    """A run's protocol as fields (finebench.protocol.run_protocol); metrics.json files written before the fields
    existed held ``split`` as a sentence and ``pretraining`` as words, read here once into the same fields."""
    p = dict(protocol or {})
    if "split" in p and "official_split" not in p:
        split = str(p.pop("split"))
        carved = split.split(" + ")[1].split(" carved")[0].split("/") if " carved from train" in split else []
        p.update(official_split=split.startswith("official"), carved_splits=carved,
                 counts_match=False if "counts differ" in split else None)
    pre = str(p.get("pretraining") or "none")
    if pre not in PRETRAINING_TEXT:  # legacy words: "timm hub weights", "file NAME"
        p["pretraining"], p["pretrained_file"] = ("file", pre[5:]) if pre.startswith("file ") else ("timm_hub", None)
    return p


def protocol_text(protocol: dict | None) -> str:
    """One run's protocol in words, e.g. "official split (counts differ from the release), val carved from train;
    pretraining: timm hub weights; 224 px"."""
    p = protocol_fields(protocol)
    split = "official split" if p.get("official_split") else "the dataset's own split"
    if p.get("counts_match") is False:
        split += " (counts differ from the release)"
    if p.get("carved_splits"):
        split += f", {'/'.join(p['carved_splits'])} carved from train"
    pre = PRETRAINING_TEXT[p.get("pretraining") or "none"]
    if p.get("pretrained_file"):
        pre += f" {p['pretrained_file']}"
    return "; ".join([split, f"pretraining: {pre}"] + ([f"{p['resolution']} px"] if p.get("resolution") else []))


def protocol_differences(ref: dict, ours: dict) -> list[str]:
    """Why a published number is not directly comparable with ours (empty: comparable as far as we can tell).
    ``ref``: a protocol from config/references.yaml (words, as the paper gives them); ``ours``: run_protocol's fields."""
    why = []
    ours = protocol_fields(ours)
    ref_pre = str(ref.get("pretraining", "none")).lower()
    our_pre = ours.get("pretraining") or "none"
    if (ref_pre == "none") != (our_pre == "none"):
        why.append(f"pretraining: published {ref.get('pretraining')}, ours {PRETRAINING_TEXT[our_pre]}")
    if ref.get("resolution") and ours.get("resolution") and int(ref["resolution"]) != int(ours["resolution"]):
        why.append(f"resolution: published {ref['resolution']} px, ours {ours['resolution']} px")
    if ours.get("counts_match") is False:
        why.append("data: our copy's counts differ from the official release")
    carved = ours.get("carved_splits") or []
    if carved and "carved" not in str(ref.get("split", "")):
        held_out = " and a ".join({"val": "validation"}.get(s, s) for s in carved)
        why.append(f"training set: ours holds out a {held_out} split carved from the official train split")
    return why


def references_table(runs: pd.DataFrame, board: pd.DataFrame, refs: pd.DataFrame) -> pd.DataFrame:
    """Each published reference beside our best model of the same family on every task using that dataset."""
    rows = []
    task_dataset = runs.groupby("task")["dataset"].first()
    for _, ref in refs.iterrows():
        for task in task_dataset[task_dataset == ref["dataset"]].index:
            g = board[board.task == task]
            same = g[g.family == ref["family"]]
            ours = (same if len(same) else g).sort_values("rank").iloc[0]
            protocol = runs[(runs.task == task) & (runs.model == ours["model"])]["protocol"].iloc[0] if "protocol" in runs else {}
            protocol = protocol if isinstance(protocol, dict) else {}
            why = protocol_differences(ref["protocol"] or {}, protocol)
            rows.append({
                "task": task, "dataset": ref["dataset"], "reference_model": ref["model"], "reference_family": ref["family"],
                "reference_accuracy": ref["accuracy"] / 100, "source": ref["source"],
                "our_model": ours["model"], "our_family": ours["family"], "our_test_accuracy_mean": ours["test_accuracy_mean"],
                "our_test_accuracy_ci95": ours["test_accuracy_ci95"], "our_n_seeds": ours["n_seeds"],
                "our_protocol": protocol_text(protocol), "protocol_differs": bool(why), "protocol_notes": "; ".join(why),
            })
    return pd.DataFrame(rows)


def references_markdown(table: pd.DataFrame) -> str:
    from tabulate import tabulate

    parts = ["# Published references", "",
             "Published test accuracy beside ours (the best of our models of the same family, else our best). "
             "⚠: the protocols differ (see notes) — read the gap with that in mind. Sources: config/references.yaml.", ""]
    if table.empty:
        return "\n".join(parts + ["No task in this run uses a dataset with published references.", ""])
    parts.append(tabulate(
        [[r["task"], r["reference_model"], f"{100 * r['reference_accuracy']:.1f}",
          f"{r['our_model']} ({r['our_family']})", pct(r["our_test_accuracy_mean"], r["our_test_accuracy_ci95"], r["our_n_seeds"]),
          ("⚠ " + r["protocol_notes"]) if r["protocol_differs"] else "comparable", r["source"]]
         for _, r in table.iterrows()],
        headers=["task", "published model", "published %", "ours", "ours %", "protocol", "source"],
        tablefmt="github", disable_numparse=True))
    return "\n".join(parts) + "\n"


def aggregate(metrics_files, out_dir: str | Path, plots_dir: str | Path | None = None,
              references: str | Path | None = None) -> dict[str, pd.DataFrame]:
    from finebench import report_sr

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    all_runs = load_metrics(metrics_files)
    runs, sr_runs = report_sr.split_runs(all_runs)  # classification tables as always; super-resolution: report_sr
    if runs.empty:
        no_classification(out_dir)
        sr = report_sr.aggregate(sr_runs, out_dir, plots_dir, references)
        all_runs.drop(columns=["metrics_file"]).to_csv(out_dir / "runs.csv", index=False)
        return {"runs": all_runs, "leaderboard": pd.DataFrame(), "families": pd.DataFrame(),
                "leaderboard_sr": sr["leaderboard"], "families_sr": sr["families"]}
    board = leaderboard(runs)
    fam = families(board)
    model_ranks, family_ranks = ranks(board, fam)
    refs = references_table(runs, board, load_references(references))
    refs.to_csv(out_dir / "references.csv", index=False)
    (out_dir / "references.md").write_text(references_markdown(refs))
    model_ranks.to_csv(out_dir / "model_ranks.csv", index=False)
    family_ranks.to_csv(out_dir / "family_ranks.csv", index=False)
    (out_dir / "ranks.md").write_text(ranks_markdown(model_ranks, family_ranks))
    if plots_dir is not None:
        plots.all_plots(runs, board, Path(plots_dir))
    runs.drop(columns=["metrics_file"]).to_csv(out_dir / "runs.csv", index=False)
    board.to_csv(out_dir / "leaderboard.csv", index=False)
    (out_dir / "leaderboard.md").write_text(leaderboard_markdown(board))
    (out_dir / "leaderboard.html").write_text(leaderboard_html(board))
    (out_dir / "costs.md").write_text(costs_markdown(board))
    fam.to_csv(out_dir / "families.csv", index=False)
    (out_dir / "families.md").write_text(families_markdown(fam))
    sr = report_sr.aggregate(sr_runs, out_dir, plots_dir, references)
    if not sr_runs.empty:
        all_runs.drop(columns=["metrics_file"]).to_csv(out_dir / "runs.csv", index=False)
    return {"runs": all_runs, "leaderboard": board, "families": fam, "leaderboard_sr": sr["leaderboard"],
            "families_sr": sr["families"]}


def no_classification(out_dir: Path) -> None:
    """The classification tables of a run with no classification task: headers only, and a line saying so."""
    note = "No classification task in this run."
    for name, cols in (("leaderboard.csv", ID_COLS), ("families.csv", ["task", "modality", "family"]),
                       ("model_ranks.csv", ["modality", "model", "family"]),
                       ("family_ranks.csv", ["modality", "family"]), ("references.csv", ["task", "dataset"])):
        pd.DataFrame(columns=cols).to_csv(out_dir / name, index=False)
    for name, title in (("leaderboard.md", "finebench leaderboard"), ("costs.md", "Cost of each model"),
                        ("families.md", "Best model of each family per task"), ("ranks.md", "Average ranks across tasks"),
                        ("references.md", "Published references")):
        (out_dir / name).write_text(f"# {title}\n\n{note}\n")
    (out_dir / "leaderboard.html").write_text(
        "<!doctype html><meta charset='utf-8'><title>finebench leaderboard</title>"
        f"<h1>finebench leaderboard</h1><p>{note}</p>\n")
