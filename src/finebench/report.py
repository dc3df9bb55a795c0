"""The one report builder: ``metrics.json`` files -> comparison tables (CSV + Markdown + HTML) and plots.

    python -m finebench aggregate results/runs/*/*/seed*/metrics.json --out results/tables --plots results/plots

Reads the metrics files (never MLflow) and, through the task type's ``example_scores``, the per-example test scores
each run wrote beside its metrics.json, so tables can be rebuilt anywhere. For every task type (finebench.tasks),
over its runs: per (task, model), the primary metric's mean, sample std, 95 % confidence half-width from Student's t
over seeds (``{metric}_ci95``; none for a single seed — shown as such, not as zero), min and max; the test
sample's 95 % half-width (``{metric}_ci95_test``) and the combined half-width over seeds and test examples
(``{metric}_ci95_comb`` = sqrt(ci95² + ci95_test²); finebench.stats); ranks in the metric's direction (higher or
lower is better); the task's best model, and every model not significantly different from it marked as a tie
(``p_vs_best`` >= alpha 0.05): ``p_vs_best`` is the paired test on the same test examples, seeds and test sample
combined (finebench.stats.paired_p; ``tie_test`` = "paired"), or — where
the model's or the best model's runs lack per-example scores (``stats_note`` says why) — Welch's unequal-variance
t-test over the seed scores (``tie_test`` = "Welch"; needs >= 2 seeds on both sides); ``p_vs_best_welch`` keeps
Welch's p for every model. Per family its best model; each family's rank per task. The task type's table sections
(its ``tables`` module) add their own fields, baseline rows, CSVs and their part of each shared Markdown / HTML
file, in the order the task types are registered.

Every declared secondary metric gets its mean over seeds (``{metric}_mean``; a seed without it makes the mean
unknown) and, where the metric declares ``interval``, its 95 % CI over seeds (``{metric}_ci95``); each family its
best model's (``best_{metric}_mean``). What the builder asks of a task type's tables, and the one renderer of its
leaderboard, costs and families sections: finebench.tasks.tables.Tables.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from finebench import tuning, verdict
from finebench.errors import FinebenchError
from finebench.stats import ALPHA, ci95, ci95_test, combine_ci95, paired_p, welch_p
from finebench.tasks import TASK_TYPES, TaskType
from finebench.tasks.registry import LEGACY
from finebench.tasks.tables import html_paragraph

# The Markdown / HTML files every task type writes a part of, in its registration order.
SHARED_FILES = ("leaderboard.md", "leaderboard.html", "costs.md", "families.md", "ranks.md", "references.md")
# Every file :func:`aggregate` writes into the tables folder: the workflow's aggregate rule declares exactly these.
# The verdict across tasks and task types (finebench.verdict)
SUMMARY_FILES = ("families_summary.csv", "families_summary.md")
TABLE_FILES = (*SHARED_FILES, "runs.csv", *(f for tt in TASK_TYPES.values() for f in tt.table_files), *SUMMARY_FILES)
# With tuning (config `tuning:`): every board's last columns, and the files written besides (finebench.tuning)
TUNING_COLUMNS = ["tuning", "tuned_values"]
TUNING_FILES = tuning.TUNING_FILES


def load_metrics(paths) -> pd.DataFrame:
    """Every run's ``metrics.json`` as a row. A run whose file is not a JSON object, whose primary test metric (its
    task type's: finebench.tasks) is not a finite number (null, NaN, a string: an edited or damaged file), or whose
    other declared metrics are not numbers, is left out with a warning naming the file and the field;
    ``frame.attrs["left_out"]`` lists them as ``(metrics_file, why)`` for the tables to say so. A secondary metric
    that is null (top-5 below five classes: not measured) or NaN is shown as "—"."""
    from finebench.tasks import get

    rows, left_out = [], []
    for p in paths:
        try:
            m = json.loads(Path(p).read_text())
        except (OSError, ValueError) as exc:
            left_out.append((str(p), f"not readable as JSON ({exc})"))
            continue
        if not isinstance(m, dict):
            left_out.append((str(p), "not a JSON object"))
            continue
        try:
            declared = get(m.get("task_type") or LEGACY).metrics
        except FinebenchError as exc:  # an unknown task type: the error names the registered ones
            left_out.append((str(p), str(exc)))
            continue
        bad = []
        for d in declared:
            v: Any = m.get(d.name)  # any JSON value: `number` says whether it is one
            number = isinstance(v, (int, float)) and not isinstance(v, bool)
            if d.primary and not (number and math.isfinite(v)):
                bad.append(f"{d.name} is {'missing' if d.name not in m else json.dumps(v)}")
            elif not d.primary and v is not None and not number:
                bad.append(f"{d.name} is {json.dumps(v)}")
            elif not d.primary and number and not math.isfinite(v):  # shown as "—", like an absent metric
                print(f"[finebench] WARNING {p}: {d.name} is {v}; shown as — (not measured)", file=sys.stderr)
                m[d.name] = None
        if bad:
            left_out.append((str(p), ", ".join(bad)))
            continue
        m["metrics_file"] = str(p)
        rows.append(m)
    for path, why in left_out:
        print(f"[finebench] WARNING {path}: {why} — this run is left out of every table (rerun it: delete its "
              f"folder and run snakemake again)", file=sys.stderr, flush=True)
    if not rows:
        raise FinebenchError("no usable metrics.json: " + ("; ".join(f"{p}: {w}" for p, w in left_out) or
                                                           "none given"))
    frame = pd.DataFrame(rows)
    frame.attrs["left_out"] = left_out
    return frame


def left_out_note(frame: pd.DataFrame) -> str:
    """The Markdown paragraph under the leaderboard naming the runs :func:`load_metrics` left out (empty if none)."""
    left = frame.attrs.get("left_out") or []
    if not left:
        return ""
    return ("\n**Left out of every table** (their metrics.json is damaged; rerun them): "
            + "; ".join(f"`{p}` ({why})" for p, why in left) + ".\n")


def task_type_of(runs: pd.DataFrame) -> pd.Series:
    """Each run's task type (metrics.json ``task_type``; classification runs of older versions have none)."""
    if "task_type" not in runs:
        return pd.Series(LEGACY, index=runs.index)
    return runs["task_type"].fillna(LEGACY)


def of_type(runs: pd.DataFrame, name: str) -> pd.DataFrame:
    """The runs of one task type, without the columns only the other types' runs fill."""
    kind = task_type_of(runs)
    mine = kind == name
    others_only = [c for c in runs if runs.loc[mine, c].isna().all() and runs.loc[~mine, c].notna().any()]
    return runs[mine].drop(columns=others_only + ["task_type"], errors="ignore").reset_index(drop=True)


def _type(task_type: str | TaskType | None) -> TaskType:
    from finebench.tasks import get

    return task_type if isinstance(task_type, TaskType) else get(task_type or LEGACY)


NO_EXAMPLES = "no per-example test scores: metrics.json of an older version"


def example_matrices(runs: pd.DataFrame, code, key: str) -> tuple[dict, dict]:
    """({(task, model): [seeds, examples] per-example scores of the primary metric ``key``}, {(task, model): why
    there are none}) from the tables' ``example_scores``. A (task, model) gets a matrix only when every run of it has
    scores, all on the same number of examples, each averaging to the run's ``key``."""
    scores = code.example_scores(runs)
    mats, why = {}, {}
    for (task, model), g in runs.groupby(["task", "model"], sort=False):
        # (seed, score, per-example scores or None: `missing`, which ends this pair when any is None)
        rows: list[tuple[Any, float, Any]] = [(r["seed"], float(r[key]), scores.get((task, model, r["seed"])))
                                              for _, r in g.iterrows()]
        missing = [str(seed) for seed, _, s in rows if s is None]
        if missing:
            why[task, model] = NO_EXAMPLES + ("" if len(missing) == len(rows) else f": seed {', '.join(missing)}")
            continue
        if len({len(s) for _, _, s in rows}) > 1:
            why[task, model] = f"per-example scores of different lengths ({', '.join(str(len(s)) for *_, s in rows)})"
            continue
        if len(rows[0][2]) < 2:  # the test sample's variation is unknown, not zero: no interval, no paired test
            why[task, model] = f"{len(rows[0][2])} test example: no interval over the test sample, no paired test"
            continue
        off = [str(seed) for seed, m, s in rows if not abs(float(np.mean(s)) - m) <= 1e-6 * max(1.0, abs(m))]
        if off:
            why[task, model] = f"per-example scores do not average to {key} (seed {', '.join(off)})"
            continue
        mats[task, model] = np.stack([np.asarray(s, dtype=float) for *_, s in rows])
    return mats, why


def secondary_fields(g: pd.DataFrame, tt: TaskType) -> dict:
    """One (task, model)'s secondary metrics over its seeds: the mean (NaN where a seed lacks it: null in
    metrics.json, not measured, or an older version — never a mean of fewer seeds) and, where declared, the 95 % CI
    over seeds (Student's t)."""
    out = {}
    for m in tt.metrics:
        if m.primary:
            continue
        v = g[m.name].astype(float) if m.name in g else pd.Series(np.nan, index=g.index)
        out[f"{m.name}_mean"] = v.mean(skipna=False)
        if m.interval:
            out[f"{m.name}_ci95"] = ci95(v.to_numpy(float))
    return out


def leaderboard(runs: pd.DataFrame, task_type: str | TaskType | None = None) -> pd.DataFrame:
    """One row per (task, model): the primary metric over seeds (and, from per-example scores, over seeds and test
    examples), ranked in its direction, with the best and the models tied with it; the task type's own fields and
    baseline rows."""
    tt = _type(task_type)
    code, metric = tt.table_code, tt.primary
    key, up = metric.name, metric.higher_is_better
    mats, why = example_matrices(runs, code, key)
    tuned = "tuning" in runs and runs["tuning"].notna().any()  # a tuned model's runs (finebench.tuning)
    rows = []
    for (task, model), g in runs.groupby(["task", "model"], sort=False):
        v = g[key].to_numpy(float)
        seed_ci = ci95(v)
        test_ci = ci95_test(mats[task, model]) if (task, model) in mats else float("nan")
        rows.append({"task": task, "model": model, "n_seeds": len(g),
                     "seeds": " ".join(str(s) for s in sorted(g["seed"])),
                     f"{key}_mean": v.mean(), f"{key}_std": float(np.std(v, ddof=1)) if len(v) > 1 else float("nan"),
                     f"{key}_ci95": seed_ci, f"{key}_ci95_test": test_ci,
                     f"{key}_ci95_comb": combine_ci95(seed_ci, test_ci) if (task, model) in mats else float("nan"),
                     f"{key}_min": v.min(), f"{key}_max": v.max(), **secondary_fields(g, tt), **code.board_fields(g),
                     "stats_note": why.get((task, model), ""), "is_baseline": False, "device_name": devices_of(g),
                     **(tuning.board_fields(g) if tuned else {})})
    board = pd.DataFrame(rows)
    board["rank"] = board.groupby("task")[f"{key}_mean"].rank(ascending=not up, method="min")
    if code.INTEGER_RANK:
        board["rank"] = board["rank"].astype(int)
    board["is_best"] = board["rank"] == 1
    board["p_vs_best"] = board["p_vs_best_welch"] = np.nan
    board["tie_test"] = ""
    for task, g in board.groupby("task", sort=False):
        best = g.loc[g[f"{key}_mean"].idxmax() if up else g[f"{key}_mean"].idxmin(), "model"]
        best_v = runs[(runs.task == task) & (runs.model == best)][key].to_numpy(float)
        for i, row in g.iterrows():
            if row["model"] != best:
                other = runs[(runs.task == task) & (runs.model == row["model"])][key].to_numpy(float)
                welch = welch_p(best_v, other)
                board.loc[i, "p_vs_best_welch"] = welch
                if ((task, best) in mats and (task, row["model"]) in mats
                        and mats[task, best].shape[1] != mats[task, row["model"]].shape[1]):
                    why[task, row["model"]] = (f"{mats[task, row['model']].shape[1]} test examples, the best model "
                                               f"({best}) {mats[task, best].shape[1]}")
                    board.loc[i, "stats_note"] = why[task, row["model"]]
                    del mats[task, row["model"]]
                if (task, best) in mats and (task, row["model"]) in mats:
                    board.loc[i, ["p_vs_best", "tie_test"]] = [
                        paired_p(mats[task, best], mats[task, row["model"]]), "paired"]
                else:
                    board.loc[i, ["p_vs_best", "tie_test"]] = [welch, "Welch"]
                    if not board.loc[i, "stats_note"]:
                        board.loc[i, "stats_note"] = f"the best model ({best}): {why[task, best]}"
    board.loc[~board["is_best"] & board["p_vs_best"].isna(), "tie_test"] = "none"  # no test possible (stats.py)
    board["tie_with_best"] = board["p_vs_best"] >= ALPHA
    baseline = code.baseline_rows(runs)
    if baseline:
        board = pd.concat([board, pd.DataFrame([{**b, "is_baseline": True} for b in baseline])], ignore_index=True)
    board = board.sort_values(["task", "is_baseline", "rank", "model"], kind="stable", na_position="last")
    return board[code.BOARD_COLUMNS + (TUNING_COLUMNS if tuned else [])].reset_index(drop=True)


def families(board: pd.DataFrame, task_type: str | TaskType | None = None) -> pd.DataFrame:
    """Per task and family: the family's best model (in the primary metric's direction) and its mean over models."""
    tt = _type(task_type)
    code, key, up = tt.table_code, tt.primary.name, tt.primary.higher_is_better
    models = board[~board["is_baseline"].astype(bool)] if "is_baseline" in board else board
    rows = []
    for (task, modality, family), g in models.groupby(["task", "modality", "family"], sort=False):
        best = g.loc[g[f"{key}_mean"].idxmax() if up else g[f"{key}_mean"].idxmin()]
        rows.append({"task": task, "modality": modality, "family": family, "n_models": len(g),
                     "best_model": best["model"], f"best_{key}_mean": best[f"{key}_mean"],
                     f"best_{key}_ci95": best[f"{key}_ci95"],
                     f"best_{key}_ci95_comb": best.get(f"{key}_ci95_comb", float("nan")),
                     "best_n_seeds": best["n_seeds"],
                     f"family_mean_{key}": g[f"{key}_mean"].mean(),
                     "best_is_task_best": bool(best["is_best"]), "best_tie_with_task_best": bool(best["tie_with_best"]),
                     **{f"best_{m.name}_mean": best.get(f"{m.name}_mean", float("nan"))
                        for m in tt.metrics if not m.primary},
                     **code.family_fields(best, g)})
    out = pd.DataFrame(rows, columns=code.FAMILY_COLUMNS)
    return out.sort_values(["task", f"best_{key}_mean"], ascending=[True, not up], kind="stable").reset_index(drop=True)


def with_family_rank(fam: pd.DataFrame, task_type: str | TaskType | None = None) -> pd.DataFrame:
    """``fam`` plus ``family_rank``: the rank of the family's best model among the task's families (1 = best)."""
    tt = _type(task_type)
    key = f"best_{tt.primary.name}_mean"
    return fam.assign(family_rank=fam.groupby("task")[key].rank(ascending=not tt.primary.higher_is_better,
                                                                method="min"))


def pretraining_of(runs: pd.DataFrame) -> pd.Series:
    """Each run's pretraining (its protocol's ``pretraining``: "none" or where the weights came from;
    finebench.protocol), None for a run of a version that did not record it."""
    if "protocol" not in runs:
        return pd.Series(None, index=runs.index, dtype=object)
    return runs["protocol"].map(lambda p: p.get("pretraining") if isinstance(p, dict) else None)


def pretraining_groups(typed: list[tuple]) -> dict[str, list[tuple]]:
    """The verdict's inputs (task type, scored runs, families, per-example matrices) again with only the runs trained
    from scratch, and only the pretrained ones: the families' bests, ties and ranks recomputed within each group.
    A run without a recorded pretraining is in neither."""
    keep = {"trained from scratch": lambda p: p == "none", "pretrained": lambda p: p is not None and p != "none"}
    groups: dict[str, list[tuple]] = {}
    for name, member in keep.items():
        groups[name] = []
        for entry in typed:
            tt, scored = entry[0], entry[1]
            sub = scored[pretraining_of(scored).map(member).astype(bool)].reset_index(drop=True)
            if len(sub) == len(scored):  # every run of the type is in the group: its board, families and scores
                groups[name].append(entry)
            elif not sub.empty:
                fam = families(leaderboard(sub, tt), tt)
                groups[name].append((tt, sub, fam, example_matrices(sub, tt.table_code, tt.primary.name)[0]))
    return groups


def load_references(path: str | Path | None, task_type: str | TaskType | None = None) -> pd.DataFrame:
    """The entries of ``path`` (config/references.yaml) for a task type (``task_type:``, classification if absent),
    with the columns its tables ask for; an entry lacking one is an error naming it."""
    from finebench.config import load_yaml

    tt = _type(task_type)
    cols = tt.table_code.REFERENCE_COLUMNS
    if not path or not Path(path).is_file():
        return pd.DataFrame(columns=cols)
    entries = (load_yaml(Path(path).read_text(), str(path)) or {}).get("references") or []
    refs = [(i, r) for i, r in enumerate(entries) if r.get("task_type", LEGACY) == tt.name]
    for i, r in refs:
        missing = [c for c in cols if c not in r and c not in tt.table_code.OPTIONAL_REFERENCE_COLUMNS]
        if missing:
            raise ValueError(f"{path}: references[{i}] ({r.get('model')}) lacks {', '.join(missing)}")
    return pd.DataFrame([r for _, r in refs], columns=cols)


def aggregate(metrics_files, out_dir: str | Path, plots_dir: str | Path | None = None,
              references: str | Path | None = None, selected_files=()) -> dict:
    """Every table file (TABLE_FILES) and, with ``plots_dir``, every plot; returns {"runs": all runs, task type:
    {"leaderboard", "families"}} for the task types that ran. ``selected_files``: the tunings' selected.json
    (finebench.tuning): also TUNING_FILES and each tuned task's ``{task}_evp.png``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    all_runs = load_metrics(metrics_files)
    texts: dict[str, list[str]] = {name: [] for name in SHARED_FILES}
    out = {"runs": all_runs}
    typed = []  # (task type, its scored runs, families, per-example matrices) for the verdict across tasks
    for tt in TASK_TYPES.values():
        code = tt.table_code
        runs = of_type(all_runs, tt.name)
        if runs.empty:
            frames, parts = code.empty()
        else:
            scored = code.expand(runs)
            board = leaderboard(scored, tt)
            fam = families(board, tt)
            refs = load_references(references, tt)
            frames = {tt.table_files[0]: board, tt.table_files[1]: fam,
                      **code.extra_frames(scored, board, with_family_rank(fam, tt), refs)}
            parts = code.sections(scored, board, fam, frames, refs)
            if plots_dir is not None:
                code.plots(runs, board, fam, Path(plots_dir))
            out[tt.name] = {"leaderboard": board, "families": fam}
            typed.append((tt, scored, fam, example_matrices(scored, code, tt.primary.name)[0]))
        for name, frame in frames.items():
            frame.to_csv(out_dir / name, index=False)
        for name, text in parts.items():
            texts[name].append(text)
    texts["leaderboard.md"].append(left_out_note(all_runs))
    out["summary"], summary_md = verdict.write(typed, out_dir, pretraining_groups(typed), plots_dir)
    texts["leaderboard.html"].append(html_paragraph(summary_md, tables=True) + "\n")  # the verdict across tasks
    for name, chunks in texts.items():
        (out_dir / name).write_text("".join(chunks))
    all_runs.drop(columns=["metrics_file"]).to_csv(out_dir / "runs.csv", index=False)
    if selected_files:
        out["tuning"] = tuning.write_tables(selected_files, out_dir, plots_dir)
    return out


def devices_of(runs: pd.DataFrame) -> str:
    """The devices (metrics.json ``device_name``: the GPU or CPU model) a model's runs were timed on, " + "-joined;
    "" for runs of a version that did not record it."""
    if "device_name" not in runs:
        return ""
    return " + ".join(sorted({str(d) for d in runs["device_name"].dropna() if str(d)}))
