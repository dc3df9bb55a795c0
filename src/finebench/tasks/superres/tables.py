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

from pathlib import Path

import numpy as np
import pandas as pd

from finebench.stats import ALPHA
from finebench.tasks.superres import TASK
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

OUTPUT_720P = 1280 * 720
SR_COLUMNS = ["task", "modality", "scale", "model", "family", "arch", "n_seeds", "seeds", *stat_columns(TASK),
              "bicubic_psnr", "gain_db_vs_bicubic", "above_bicubic", "seeds_above_bicubic", "params",
              "flops_per_output_pixel", "gflops_720p", "latency_ms_lr64_mean", "train_seconds_mean",
              "peak_memory_mb_max", "device_name", "n_test", *TEST_COLUMNS, "is_baseline"]
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
    """The leaderboard fields of one (task, model)'s runs besides the metrics' statistics (finebench.report)."""
    psnr = g["test_psnr"].to_numpy(float)
    bic = float(g["bicubic_psnr"].iloc[0])
    out_px = float(g["cost_output_pixels"].iloc[0]) if "cost_output_pixels" in g else float("nan")
    flops_px = _col(g, "flops_per_sample").iloc[0] / out_px
    return {
        "modality": g["modality"].iloc[0], "scale": int(g["scale"].iloc[0]), "family": g["family"].iloc[0],
        "arch": g["arch"].iloc[0],
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
    return {"best_gain_db_vs_bicubic": best["gain_db_vs_bicubic"],
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


def heading(g: pd.DataFrame) -> str:
    first = g.iloc[0]
    base = g[g["is_baseline"].astype(bool)].iloc[0]
    return (f"{first['task']} (super-resolution ×{int(first['scale'])}, {int(first['n_test'])} test images; "
            f"bicubic {base['test_psnr_mean']:.2f} dB / SSIM {base['test_ssim_mean']:.4f})")


def gain_text(r: pd.Series) -> str:
    return f"{r['gain_db_vs_bicubic']:+.2f} dB" + ("" if r["above_bicubic"] else f" ✗ ({r['seeds_above_bicubic']})")


def verdict(g: pd.DataFrame) -> str:
    """One honest sentence per task: which families beat bicubic and which do not."""
    models = g[~g["is_baseline"].astype(bool)]
    below = models[~models["above_bicubic"].astype(bool)]
    if below.empty:
        return "Every model is above the bicubic baseline with every seed."
    names = ", ".join(f"{r['model']} ({r['family']}, mean {r['gain_db_vs_bicubic']:+.2f} dB, "
                      f"{r['seeds_above_bicubic']} seeds above)" for _, r in below.iterrows())
    return f"Not above the bicubic baseline with every seed: {names}."


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
          interval_cell(TASK.primary, r["our_test_psnr_mean"], r["our_test_psnr_ci95_comb"], r["our_test_psnr_ci95"],
                        r["our_n_seeds"]),
          r["source"]] for _, r in table.iterrows()],
        headers=["task", "test set", "scale", "published model", "published dB", "ours", "ours dB", "source"],
        tablefmt="github", disable_numparse=True))
    return "\n".join(parts) + "\n"


# ---------------------------------------------------------------------------------------------------------------------


REFERENCE_COLUMNS = ["dataset", "scale", "model", "family", "psnr", "ssim", "source", "protocol"]
COSTS_INTRO = ("FLOPs per output pixel and for a 1280×720 output, median batch-1 latency on a 64×64 LR input, mean "
               "training time per run, peak memory. Sorted by FLOPs. PSNR: " + UNCERTAINTY)
FAMILIES_INTRO = ("PSNR dB on Y, higher is better: " + UNCERTAINTY + " ✗: not above bicubic with every seed. "
                  "✓: the task's best; ≈: tied with it (the leaderboard's test).")


class SuperResolutionTables(Tables):
    """Super-resolution's tables: the bicubic baseline as a row, each model's gain over it and a verdict sentence;
    a task scored on several test sets ranked per set (:func:`expand`); costs per output pixel; family ranks and
    published references of its own."""

    BOARD_COLUMNS = SR_COLUMNS
    FAMILY_COLUMNS = FAMILY_COLUMNS
    INTEGER_RANK = False  # the bicubic row has no rank: ranks are floats (1.0) in leaderboard_sr.csv
    REFERENCE_COLUMNS = REFERENCE_COLUMNS
    OPTIONAL_REFERENCE_COLUMNS = ("ssim", "protocol")
    titles = {"leaderboard": "Super-resolution", "costs": "Cost of each super-resolution model",
              "families": "Super-resolution: best model of each family per task"}
    intros = {"leaderboard": INTRO, "costs": COSTS_INTRO, "families": FAMILIES_INTRO}
    family_headers = ("best PSNR dB", "family mean dB")
    cost_sort = "flops_per_output_pixel"

    def board_fields(self, g: pd.DataFrame) -> dict:
        return board_fields(g)

    def family_fields(self, best: pd.Series, g: pd.DataFrame) -> dict:
        return family_fields(best, g)

    def expand(self, runs: pd.DataFrame) -> pd.DataFrame:
        return expand(runs)

    def baseline_rows(self, runs: pd.DataFrame) -> list[dict]:
        return baseline_rows(runs)

    def plotted_as(self, name: str, runs: pd.DataFrame) -> str | None:
        return plotted_as(name, runs)

    def example_scores(self, runs: pd.DataFrame) -> dict:
        return example_scores(runs)

    def heading(self, g: pd.DataFrame) -> str:
        return heading(g)

    def cost_heading(self, g: pd.DataFrame) -> str:
        return f"{g.iloc[0]['task']} (×{int(g.iloc[0]['scale'])})"

    def notes(self, g: pd.DataFrame) -> list[str]:
        return [verdict(g), *super().notes(g)]

    def board_columns(self) -> list[Column]:
        return [Column("vs bicubic", gain_text), params_column(),
                human_column("FLOPs/px", "flops_per_output_pixel"), num_column("GFLOPs @720p", "gflops_720p", ".1f"),
                num_column("latency ms (64² LR)", "latency_ms_lr64_mean", ".2f"), train_seconds_column()]

    def cost_columns(self) -> list[Column]:
        return [human_column("FLOPs/px", "flops_per_output_pixel"), num_column("GFLOPs @720p", "gflops_720p", ".1f"),
                num_column("latency ms (64² LR)", "latency_ms_lr64_mean", ".2f"), train_seconds_column(),
                num_column("peak MB", "peak_memory_mb_max", ".0f"), self.primary_column("PSNR dB")]

    def family_columns(self) -> list[Column]:
        return [num_column("SSIM", "best_test_ssim_mean", ".4f"),
                Column("vs bicubic dB", lambda r: f"{r['best_gain_db_vs_bicubic']:+.2f}"
                       + ("" if r["best_above_bicubic"] else " ✗"))]

    def extra_frames(self, runs: pd.DataFrame, board: pd.DataFrame, fam: pd.DataFrame, refs: pd.DataFrame) -> dict:
        """The family ranks (its references go into references.md only)."""
        return {"family_ranks_sr.csv": family_ranks(fam)}

    def own_sections(self, runs: pd.DataFrame, board: pd.DataFrame, fam: pd.DataFrame, frames: dict,
                     refs: pd.DataFrame) -> dict[str, str]:
        return {"ranks.md": ranks_markdown(frames["family_ranks_sr.csv"]),
                "references.md": references_markdown(references_table(runs, board, refs))}

    def plots(self, runs: pd.DataFrame, board: pd.DataFrame, fam: pd.DataFrame, out: Path) -> list[Path]:
        """Drawn per task: a task scored on several test sets shows its first."""
        from finebench.tasks.superres import plots as drawing

        def first_set(table):
            names = table["task"].map(lambda name: plotted_as(name, runs))
            return table[names.notna()].assign(task=names[names.notna()])

        return drawing.sr_plots(runs, first_set(board), first_set(fam), out)

    def empty(self) -> tuple[dict, dict]:
        frames, texts = super().empty()
        return {**frames, "family_ranks_sr.csv": pd.DataFrame(columns=RANK_COLUMNS)}, texts
