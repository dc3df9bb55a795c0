"""Super-resolution's table sections: its leaderboard fields (beside the PSNR statistics finebench.report computes
for every task type), the bicubic baseline as a row of its own, costs, families, family ranks and published
references — the CSVs of finebench.tasks.superres's ``table_files`` and a super-resolution part of each shared
Markdown / HTML file.

A task scored on several test sets (metrics.json ``more_tests``) is ranked per set, as task ``task@set``
(:func:`expand`); its plots show the first set. Per SR task: PSNR and SSIM on Y, the bicubic baseline on the same
test images, each model's gain over bicubic and whether it is above it (every seed's model above bicubic's PSNR;
bicubic is deterministic, so this is a plain count per seed), params, FLOPs per output pixel (and for a 1280x720
output), batch-1 latency on a 64 x 64 LR input, training time. Its per-example scores (:func:`example_scores`, for
the report's intervals over seeds and test images and its paired tests): each run's per-image PSNR on the table
task's test set (``per_image.csv``).
"""

from __future__ import annotations

import html
import math
from pathlib import Path

import numpy as np
import pandas as pd

from finebench.stats import ALPHA, ci95, human, num

OUTPUT_720P = 1280 * 720
SR_COLUMNS = ["task", "modality", "scale", "model", "family", "arch", "n_seeds", "seeds", "test_psnr_mean",
              "test_psnr_std", "test_psnr_ci95", "test_psnr_ci95_test", "test_psnr_ci95_comb",
              "test_psnr_min", "test_psnr_max", "test_ssim_mean", "test_ssim_ci95",
              "bicubic_psnr", "gain_db_vs_bicubic", "above_bicubic", "seeds_above_bicubic", "params",
              "flops_per_output_pixel", "gflops_720p", "latency_ms_lr64_mean", "train_seconds_mean",
              "peak_memory_mb_max", "device_name", "n_test", "rank", "is_best", "p_vs_best", "tie_test",
              "tie_with_best", "p_vs_best_welch", "stats_note", "is_baseline"]
FAMILY_COLUMNS = ["task", "modality", "family", "n_models", "best_model", "best_test_psnr_mean", "best_test_psnr_ci95",
                  "best_test_psnr_ci95_comb",
                  "best_test_ssim_mean", "best_n_seeds", "family_mean_test_psnr", "best_gain_db_vs_bicubic",
                  "best_above_bicubic", "best_is_task_best", "best_tie_with_task_best"]
RANK_COLUMNS = ["family", "n_tasks", "mean_family_rank", "mean_best_gain_db_vs_bicubic"]
UNCERTAINTY = (
    "mean over seeds ± the 95 % half-width over seeds and test images, sqrt(seeds² + test²): the seeds' Student-t "
    "half-width and the test images' (Student's t over the images' seed-averaged PSNR, each run's PSNR being the "
    "mean over images; every seed is scored on the same images, so their sampling noise does not average out over "
    "seeds) added in quadrature — never narrower than either; with one seed the images' alone. †: a model without "
    "usable per-image scores (none written, or one test image; the note under the table says which): its ± is the "
    "95 % CI over seeds alone (Student's t) and its ≈ comes from Welch's t-test."
)
INTRO = ("PSNR (dB) and SSIM on the Y channel (BT.601), `scale` pixels shaved at the border, 8-bit outputs — the "
         f"literature's protocol. PSNR: {UNCERTAINTY} *± seeds*: the PSNR's 95 % CI half-width over seeds alone "
         "(Student's t; the test images held fixed); *± test*: the test images' alone. "
         "SSIM: mean ± 95 % CI over seeds (Student's t). **Bold**: best PSNR in the task; ≈: not significantly "
         "different from it by a paired test on the same test images, seeds and test images combined the same way "
         f"(Welch's seed term, the per-image differences' test term; two-sided, α = {ALPHA}); leaderboard_sr.csv "
         "also keeps Welch's t-test over seed scores alone (`p_vs_best_welch`). *vs bicubic*: gain over MATLAB-style "
         "bicubic upscaling on the same test images; ✗ marks a model not above bicubic with every seed. "
         "FLOPs per output pixel (forward, torch FlopCounterMode on a 64×64 LR input) and for a 1280×720 output; "
         "latency: median batch-1 forward on a 64×64 LR input.")


def set_task(task: str, test_set: str) -> str:
    """The table name of ``task`` scored on ``test_set``, e.g. ``div2k_x2@set14`` (task names never hold "@")."""
    return f"{task}@{test_set}"


def plot_task(name: str, first_sets) -> str | None:
    """The task whose plots show table task ``name``: ``name`` itself for a plain task; for a task scored on several
    sets, the task for its first set (``first_sets``: those ``task@set`` names) and None for the others."""
    if "@" not in name:
        return name
    return name.split("@")[0] if name in first_sets else None


def per_test_set(runs: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, str]]:
    """One row per (run, test set). The runs of a task scored on several test sets (``sr_benchmark`` with
    ``test_set: [set5, set14, …]``, metrics.json ``more_tests``) become one task per set, named ``task@set`` (task
    names never hold "@"), so every table ranks each set on its own; other tasks are unchanged. Also returns
    {``task@set``: task} for the first set of each such task (the plots, drawn per task, show that one)."""
    if "more_tests" not in runs:
        return runs, {}
    more = runs["more_tests"].map(lambda m: m if isinstance(m, dict) else {})
    several = set(runs.loc[more.map(bool), "task"])
    rows, first = [], {}
    for (_, r), extra in zip(runs.iterrows(), more):
        if r["task"] not in several:
            rows.append(r)
            continue
        first[set_task(r["task"], r["sr_test_set"])] = r["task"]
        for test_set, scores in [(r["sr_test_set"], {}), *extra.items()]:
            row = r.copy()
            for k, v in {**scores, "task": set_task(r["task"], test_set), "sr_test_set": test_set}.items():
                row[k] = v
            rows.append(row)
    return pd.DataFrame(rows).drop(columns=["more_tests"]).reset_index(drop=True), first


def expand(runs: pd.DataFrame) -> pd.DataFrame:
    """The rows the tables rank: one per (run, test set) (:func:`per_test_set`)."""
    return per_test_set(runs)[0]


def plotted_as(name: str, runs: pd.DataFrame) -> str | None:
    """The task whose plots show table task ``name`` (see :func:`plot_task`)."""
    first = {set_task(r.task, r.sr_test_set) for r in runs.itertuples()
             if isinstance(getattr(r, "sr_test_set", None), str)}
    return plot_task(name, first)


def example_scores(runs: pd.DataFrame) -> dict:
    """{(task, model, seed): PSNR per test image} from the ``per_image.csv`` beside each run's metrics.json (its
    ``metrics_file``): the rows of the table task's test set (``sr_test_set``, which :func:`expand` sets per
    ``task@set`` row; "test" for a task without a named set), in the prepared order."""
    out: dict[tuple, np.ndarray] = {}  # (task, model, seed): PSNR per test image
    read: dict[Path, pd.DataFrame | None] = {}  # per_image.csv read once (None: absent)
    if "metrics_file" not in runs:
        return out
    for _, r in runs.iterrows():
        if not isinstance(r["metrics_file"], str):
            continue
        path = Path(r["metrics_file"]).parent / "per_image.csv"
        if path not in read:
            read[path] = pd.read_csv(path, usecols=["test_set", "psnr"]) if path.is_file() else None
        per = read[path]
        test_set = r.get("sr_test_set")
        rows = None if per is None else per[per["test_set"] == (test_set if isinstance(test_set, str) else "test")]
        if rows is not None and len(rows):
            out[r["task"], r["model"], r["seed"]] = rows["psnr"].to_numpy(float)
    return out


def _col(g: pd.DataFrame, name: str) -> pd.Series:
    return g[name].astype(float) if name in g else pd.Series([np.nan] * len(g), index=g.index)


def board_fields(g: pd.DataFrame) -> dict:
    """The leaderboard fields of one (task, model)'s runs besides the PSNR statistics."""
    psnr, ssim = g["test_psnr"].to_numpy(float), g["test_ssim"].to_numpy(float)
    bic = float(g["bicubic_psnr"].iloc[0])
    out_px = float(g["cost_output_pixels"].iloc[0]) if "cost_output_pixels" in g else float("nan")
    flops_px = _col(g, "flops_per_sample").iloc[0] / out_px
    return {
        "modality": g["modality"].iloc[0], "scale": int(g["scale"].iloc[0]), "family": g["family"].iloc[0],
        "arch": g["arch"].iloc[0], "test_ssim_mean": ssim.mean(), "test_ssim_ci95": ci95(ssim),
        "bicubic_psnr": bic, "gain_db_vs_bicubic": psnr.mean() - bic, "above_bicubic": bool(psnr.min() > bic),
        "seeds_above_bicubic": f"{int((psnr > bic).sum())}/{len(psnr)}",
        "params": int(_col(g, "n_params").fillna(_col(g, "params")).iloc[0]), "flops_per_output_pixel": flops_px,
        "gflops_720p": flops_px * OUTPUT_720P / 1e9,
        "latency_ms_lr64_mean": _col(g, "latency_ms_batch1").mean(),
        "train_seconds_mean": g["train_seconds"].mean(), "peak_memory_mb_max": _col(g, "peak_memory_mb").max(),
        "n_test": int(g["n_test"].iloc[0]),
    }


def baseline_rows(runs: pd.DataFrame) -> list[dict]:
    """The bicubic baseline of each task, on the same test images: a row of the board, ranked with no one."""
    rows = []
    for task, g in runs.groupby("task", sort=False):
        first = g.iloc[0]
        rows.append({"task": task, "modality": first["modality"], "scale": int(first["scale"]),
                     "model": "bicubic", "family": "baseline", "arch": "bicubic (MATLAB imresize)", "n_seeds": 0,
                     "seeds": "", "test_psnr_mean": float(first["bicubic_psnr"]),
                     "test_ssim_mean": float(first["bicubic_ssim"]), "bicubic_psnr": float(first["bicubic_psnr"]),
                     "gain_db_vs_bicubic": 0.0, "above_bicubic": False, "params": 0,
                     "n_test": int(first["n_test"]), "is_best": False, "tie_with_best": False})
    return rows


def family_fields(best: pd.Series, g: pd.DataFrame) -> dict:
    return {"best_test_ssim_mean": best["test_ssim_mean"], "best_gain_db_vs_bicubic": best["gain_db_vs_bicubic"],
            "best_above_bicubic": bool(best["above_bicubic"])}


def family_ranks(fam: pd.DataFrame) -> pd.DataFrame:
    """Average over SR tasks of each family's rank (``family_rank``, put in by finebench.report: its best model's
    PSNR among the families; 1 = best)."""
    if fam.empty:
        return pd.DataFrame(columns=RANK_COLUMNS)
    out = (fam.groupby("family").agg(n_tasks=("task", "nunique"), mean_family_rank=("family_rank", "mean"),
                                     mean_best_gain_db_vs_bicubic=("best_gain_db_vs_bicubic", "mean"))
           .reset_index().sort_values(["mean_family_rank", "family"], kind="stable"))
    return out[RANK_COLUMNS].reset_index(drop=True)


# ---------------------------------------------------------------------------------------------------------------------
# Markdown / HTML


def db(mean: float, ci: float, n: int, digits: int = 2) -> str:
    if mean is None or math.isnan(mean):
        return "—"
    if n < 2 or ci is None or math.isnan(ci):
        return f"{mean:.{digits}f}" + ("" if n == 0 else " (1 seed, no CI)")
    return f"{mean:.{digits}f} ± {ci:.{digits}f}"


def psnr_cell(mean: float, comb: float, ci: float, n: int) -> str:
    """Mean ± the combined half-width over seeds and test images; where there is none (no per-image scores), the
    seed-only interval marked †. One seed: the ± is the test images' alone."""
    if comb is None or math.isnan(comb):
        return f"{db(mean, ci, n)} †"
    return f"{mean:.2f} ± {comb:.2f}" + (" (1 seed)" if n < 2 else "")


def fallback_note(g: pd.DataFrame) -> str:
    from finebench.report import table_notes as note

    return note(g, "test_psnr")


def heading(g: pd.DataFrame) -> str:
    first = g.iloc[0]
    base = g[g["is_baseline"].astype(bool)].iloc[0]
    return (f"{first['task']} (super-resolution ×{int(first['scale'])}, {int(first['n_test'])} test images; "
            f"bicubic {base['test_psnr_mean']:.2f} dB / SSIM {base['test_ssim_mean']:.4f})")


HEADERS = ["#", "model", "family", "arch", "seeds", "PSNR dB (Y)", "± seeds", "± test", "SSIM (Y)", "vs bicubic",
           "params", "FLOPs/px", "GFLOPs @720p", "latency ms (64² LR)", "train s"]


def rows(g: pd.DataFrame, bold) -> list[list]:
    out = []
    for _, r in g.iterrows():
        if r["is_baseline"]:
            out.append(["—", "bicubic", "baseline", r["arch"], "—", f"{r['test_psnr_mean']:.2f}", "—", "—",
                        f"{r['test_ssim_mean']:.4f}", "—", "0", "—", "—", "—", "—"])
            continue
        psnr = psnr_cell(r["test_psnr_mean"], r["test_psnr_ci95_comb"], r["test_psnr_ci95"], r["n_seeds"])
        psnr = bold(psnr) if r["is_best"] else (f"{psnr} ≈" if r["tie_with_best"] else psnr)
        gain = f"{r['gain_db_vs_bicubic']:+.2f} dB" + ("" if r["above_bicubic"] else f" ✗ ({r['seeds_above_bicubic']})")
        out.append([int(r["rank"]), r["model"], r["family"], r["arch"], r["n_seeds"], psnr,
                    num(r["test_psnr_ci95"], ".2f"), num(r["test_psnr_ci95_test"], ".2f"),
                    db(r["test_ssim_mean"], r["test_ssim_ci95"], r["n_seeds"], 4), gain, human(r["params"]),
                    human(r["flops_per_output_pixel"]), num(r["gflops_720p"], ".1f"),
                    num(r["latency_ms_lr64_mean"], ".2f"), f"{r['train_seconds_mean']:.1f}"])
    return out


def verdict(g: pd.DataFrame) -> str:
    """One honest sentence per task: which families beat bicubic and which do not."""
    models = g[~g["is_baseline"].astype(bool)]
    below = models[~models["above_bicubic"].astype(bool)]
    if below.empty:
        return "Every model is above the bicubic baseline with every seed."
    names = ", ".join(f"{r['model']} ({r['family']}, mean {r['gain_db_vs_bicubic']:+.2f} dB, "
                      f"{r['seeds_above_bicubic']} seeds above)" for _, r in below.iterrows())
    return f"Not above the bicubic baseline with every seed: {names}."


def leaderboard_markdown(board: pd.DataFrame) -> str:
    from tabulate import tabulate

    parts = ["", "# Super-resolution", "", INTRO, ""]
    for _, g in board.groupby("task", sort=False):
        note = fallback_note(g)
        parts += [f"## {heading(g)}", "", tabulate(rows(g, lambda t: f"**{t}**"), headers=HEADERS, tablefmt="github",
                                                   disable_numparse=True), "", verdict(g), "",
                  *([note, ""] if note else [])]
    return "\n".join(parts)


def leaderboard_html(board: pd.DataFrame) -> str:
    from tabulate import tabulate

    from finebench.report import html_paragraph

    parts = ["<h1>Super-resolution</h1>", html_paragraph(INTRO)]
    for _, g in board.groupby("task", sort=False):
        table = [[html.escape(str(c)) for c in row] for row in rows(g, lambda t: f"<b>{t}</b>")]
        for row, (_, r) in zip(table, g.iterrows()):
            if r["is_best"] and not r["is_baseline"]:
                row[5] = row[5].replace("&lt;b&gt;", "<b>").replace("&lt;/b&gt;", "</b>")
        parts += [f"<h2>{html.escape(heading(g))}</h2>",
                  tabulate(table, headers=HEADERS, tablefmt="unsafehtml", disable_numparse=True),
                  html_paragraph(verdict(g)),
                  html_paragraph(fallback_note(g))]
    return "\n".join(parts) + "\n"


def costs_markdown(board: pd.DataFrame) -> str:
    from tabulate import tabulate

    from finebench.report import cost_groups

    parts = ["", "# Cost of each super-resolution model", "",
             "FLOPs per output pixel and for a 1280×720 output, median batch-1 latency on a 64×64 LR input, mean "
             "training time per run, peak memory. Sorted by FLOPs. PSNR: " + UNCERTAINTY, ""]
    models = board[~board["is_baseline"].astype(bool)]
    for _, g in models.groupby("task", sort=False):
        parts += [f"## {g.iloc[0]['task']} (×{int(g.iloc[0]['scale'])})", ""]
        for device, d in cost_groups(g):  # one table per device the costs were measured on
            table = [[r["model"], r["family"], human(r["params"]), human(r["flops_per_output_pixel"]),
                      num(r["gflops_720p"], ".1f"), num(r["latency_ms_lr64_mean"], ".2f"),
                      f"{r['train_seconds_mean']:.1f}", num(r["peak_memory_mb_max"], ".0f"),
                      psnr_cell(r["test_psnr_mean"], r["test_psnr_ci95_comb"], r["test_psnr_ci95"], r["n_seeds"])]
                     for _, r in d.sort_values("flops_per_output_pixel", na_position="last").iterrows()]
            parts += [device, "", tabulate(table, headers=["model", "family", "params", "FLOPs/px", "GFLOPs @720p",
                                                           "latency ms (64² LR)", "train s", "peak MB", "PSNR dB"],
                                           tablefmt="github", disable_numparse=True), ""]
    return "\n".join(parts)


def families_markdown(fam: pd.DataFrame) -> str:
    from tabulate import tabulate

    table = [[r["task"], r["family"], r["best_model"],
              psnr_cell(r["best_test_psnr_mean"], r["best_test_psnr_ci95_comb"], r["best_test_psnr_ci95"],
                        r["best_n_seeds"]),
              num(r["best_test_ssim_mean"], ".4f"),
              f"{r['best_gain_db_vs_bicubic']:+.2f}" + ("" if r["best_above_bicubic"] else " ✗"),
              f"{r['family_mean_test_psnr']:.2f}", r["n_models"],
              "✓" if r["best_is_task_best"] else ("≈" if r["best_tie_with_task_best"] else "")]
             for _, r in fam.iterrows()]
    return "\n".join(["", "# Super-resolution: best model of each family per task", "",
                      "PSNR dB on Y, higher is better: " + UNCERTAINTY + " ✗: not above bicubic with every seed. "
                      "✓: the task's best; ≈: tied with it (the leaderboard's test).", "",
                      tabulate(table, headers=["task", "family", "best model", "best PSNR dB", "SSIM",
                                               "vs bicubic dB", "family mean dB", "models", "vs task best"],
                               tablefmt="github", disable_numparse=True), ""])


def ranks_markdown(ranks: pd.DataFrame) -> str:
    from tabulate import tabulate

    table = [[r["family"], r["n_tasks"], f"{r['mean_family_rank']:.2f}", f"{r['mean_best_gain_db_vs_bicubic']:+.2f}"]
             for _, r in ranks.iterrows()]
    return "\n".join(["", "## Super-resolution families", "",
                      "Family rank per SR task = rank of the family's best model by PSNR (1 = best).", "",
                      tabulate(table, headers=["family", "tasks", "mean family rank", "mean gain over bicubic dB"],
                               tablefmt="github", disable_numparse=True), ""])


# ---------------------------------------------------------------------------------------------------------------------
# Published references (config/references.yaml entries with task_type: superres)


def references_table(runs: pd.DataFrame, board: pd.DataFrame, refs: pd.DataFrame) -> pd.DataFrame:
    """Each published PSNR beside our best model of the same family, on every task testing on that set and scale."""
    out: list[dict] = []
    if refs.empty or "sr_test_set" not in runs:
        return pd.DataFrame(out)
    for task, g in runs.groupby("task", sort=False):
        test_set, scale = str(g["sr_test_set"].iloc[0]).lower(), int(g["scale"].iloc[0])
        for _, ref in refs[(refs["dataset"].str.lower() == test_set) & (refs["scale"] == scale)].iterrows():
            b = board[(board.task == task)]
            same = b[b.family == ref["family"]] if ref["family"] != "baseline" else b[b.is_baseline.astype(bool)]
            ours = (same if len(same) else b[~b.is_baseline.astype(bool)]).sort_values("test_psnr_mean",
                                                                                        ascending=False).iloc[0]
            out.append({"task": task, "dataset": ref["dataset"], "scale": scale, "reference_model": ref["model"],
                        "reference_family": ref["family"], "reference_psnr": ref["psnr"], "reference_ssim": ref["ssim"],
                        "source": ref["source"], "our_model": ours["model"], "our_family": ours["family"],
                        "our_test_psnr_mean": ours["test_psnr_mean"], "our_test_psnr_ci95": ours["test_psnr_ci95"],
                        "our_test_psnr_ci95_comb": ours["test_psnr_ci95_comb"],
                        "our_n_seeds": ours["n_seeds"]})
    return pd.DataFrame(out)


def references_markdown(table: pd.DataFrame) -> str:
    from tabulate import tabulate

    parts = ["", "## Super-resolution", "",
             "Published PSNR (Y, MATLAB bicubic degradation, DIV2K-trained unless noted) beside ours; our bicubic row "
             "checks the degradation and metric (it should match the published bicubic to ~0.01 dB). Our models are "
             "trained for minutes, the published ones for days. Ours: " + UNCERTAINTY, ""]
    if table.empty:
        return "\n".join(parts + ["No super-resolution task in this run tests on a set with published references.", ""])
    parts.append(tabulate(
        [[r["task"], r["dataset"], f"×{r['scale']}", r["reference_model"], f"{r['reference_psnr']:.2f}",
          f"{r['our_model']} ({r['our_family']})",
          psnr_cell(r["our_test_psnr_mean"], r["our_test_psnr_ci95_comb"], r["our_test_psnr_ci95"], r["our_n_seeds"])
          if r["our_n_seeds"] else db(r["our_test_psnr_mean"], r["our_test_psnr_ci95"], 0),
          r["source"]] for _, r in table.iterrows()],
        headers=["task", "test set", "scale", "published model", "published dB", "ours", "ours dB", "source"],
        tablefmt="github", disable_numparse=True))
    return "\n".join(parts) + "\n"


# ---------------------------------------------------------------------------------------------------------------------


REFERENCE_COLUMNS = ["dataset", "scale", "model", "family", "psnr", "ssim", "source", "protocol"]
OPTIONAL_REFERENCE_COLUMNS = ("ssim", "protocol")
INTEGER_RANK = False  # the bicubic row has no rank: ranks are floats (1.0) in leaderboard_sr.csv
BOARD_COLUMNS = SR_COLUMNS


def extra_frames(runs: pd.DataFrame, board: pd.DataFrame, fam: pd.DataFrame, refs: pd.DataFrame) -> dict:
    """Its CSVs besides the leaderboard and families: the family ranks (its references go into references.md only)."""
    return {"family_ranks_sr.csv": family_ranks(fam)}


def sections(runs: pd.DataFrame, board: pd.DataFrame, fam: pd.DataFrame, frames: dict, refs: pd.DataFrame
             ) -> dict[str, str]:
    """A super-resolution part of each shared Markdown / HTML file."""
    return {"leaderboard.md": leaderboard_markdown(board), "costs.md": costs_markdown(board),
            "families.md": families_markdown(fam), "ranks.md": ranks_markdown(frames["family_ranks_sr.csv"]),
            "references.md": references_markdown(references_table(runs, board, refs)),
            "leaderboard.html": leaderboard_html(board)}


def plots(runs: pd.DataFrame, board: pd.DataFrame, fam: pd.DataFrame, out: Path) -> list[Path]:
    """Drawn per task: a task scored on several test sets shows its first."""
    from finebench.tasks.superres import plots as drawing

    def first_set(table):
        names = table["task"].map(lambda name: plotted_as(name, runs))
        return table[names.notna()].assign(task=names[names.notna()])

    return drawing.sr_plots(runs, first_set(board), first_set(fam), out)


def empty() -> tuple[dict, dict]:
    """No super-resolution task ran: its CSVs with headers only; nothing in the shared files."""
    return {"leaderboard_sr.csv": pd.DataFrame(columns=SR_COLUMNS),
            "families_sr.csv": pd.DataFrame(columns=FAMILY_COLUMNS),
            "family_ranks_sr.csv": pd.DataFrame(columns=RANK_COLUMNS)}, {}
