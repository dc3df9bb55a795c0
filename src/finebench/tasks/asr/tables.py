"""Speech recognition's table sections: its leaderboard fields (beside the WER statistics finebench.report computes
for every task type), the "no output" row (every word deleted: WER = CER = 100 %), costs per second of audio,
families, a few reference / hypothesis pairs per family and published references — the CSVs of
finebench.tasks.asr's ``table_files`` and a speech-recognition part of each shared Markdown / HTML file.

Its per-example scores (:func:`example_scores`, for the report's test-sample intervals and paired tests): each
test utterance's linearised WER (finebench.tasks.asr.metrics.linearised_wer, from ``hypotheses.csv``), whose mean is
the run's sclite-style WER and whose spread is the delta-method spread of that ratio of sums.
"""

from __future__ import annotations

import html
import math
from pathlib import Path

import numpy as np
import pandas as pd

from finebench.labels import task_label
from finebench.stats import ALPHA
from finebench.tasks.asr import TASK
from finebench.tasks.tables import (
    TEST_COLUMNS,
    Column,
    Tables,
    human_column,
    num_column,
    params_column,
    stat_columns,
    tabulate_rows,
    train_seconds_column,
)

BOARD_COLUMNS = ["task", "modality", "model", "family", "arch", "n_seeds", "seeds", *stat_columns(TASK), "params",
                 "flops_per_audio_second", "rtf_mean", "latency_ms_batch1_mean", "train_seconds_mean",
                 "peak_memory_mb_max", "device_name", "n_test", "test_ref_words", "decoding", "data_note",
                 *TEST_COLUMNS, "is_baseline"]
FAMILY_COLUMNS = ["task", "modality", "family", "n_models", "best_model", "best_test_wer_mean", "best_test_wer_ci95",
                  "best_test_wer_ci95_comb", "best_test_cer_mean", "best_n_seeds", "family_mean_test_wer",
                  "best_params", "best_is_task_best", "best_tie_with_task_best"]
INTEGER_RANK = False  # the "no output" row has no rank: ranks are floats in leaderboard_asr.csv
REFERENCE_COLUMNS = ["dataset", "test_set", "model", "family", "wer", "source", "notes"]
EXAMPLES_PER_FAMILY = 3
NO_OUTPUT = "no output"

UNCERTAINTY = (
    "mean over seeds ± the 95 % half-width over seeds and test utterances, sqrt(seeds² + test²): the seeds' "
    "Student-t half-width and the test sample's (Student's t over the utterances' linearised WER, averaged over "
    "seeds: WER is a ratio of sums, so each utterance counts by its errors minus the corpus rate times its length) "
    "added in quadrature; with one seed the test sample's alone. †: a model without usable per-utterance scores (no "
    "hypotheses.csv, or one test utterance; the note under the table says which): its ± is the 95 % CI over seeds "
    "alone (Student's t) and its ≈ comes from Welch's t-test."
)
INTRO = ("Word and character error rates in % (lower is better), sclite-style: errors (substitutions + deletions + "
         "insertions) summed over every test utterance ÷ reference words (characters, the spaces counted) summed over "
         "them (jiwer); both transcripts normalised first (finebench.data.asr: lower case, punctuation removed, "
         f"spaces collapsed). Decoding: greedy CTC, no language model. WER: {UNCERTAINTY} *± seeds*: its 95 % CI "
         "half-width over seeds alone (Student's t; the test set held fixed). *± test*: the test sample's alone. "
         "CER: mean ± 95 % CI over seeds. **Bold**: the best WER in the task; ≈: not significantly different from it "
         "by a paired test on the same utterances, seeds and test sample combined the same way (two-sided, "
         f"α = {ALPHA}). *no output*: a model that outputs nothing (every word deleted) — "
         "an untrained CTC model mostly emits blanks and scores near it (docs: Task types). FLOPs per second of audio "
         "(forward, torch FlopCounterMode over the first 8 test utterances, each at its own length); RTF: the "
         "median batch-1 latency on the first test utterance ÷ its duration.")


def col(g: pd.DataFrame, name: str) -> pd.Series:
    return g[name].astype(float) if name in g else pd.Series([np.nan] * len(g), index=g.index)


def example_scores(runs: pd.DataFrame) -> dict:
    """{(task, model, seed): each test utterance's linearised WER} from each run's hypotheses.csv (beside its
    metrics.json); the mean of each is the run's WER."""
    from finebench.tasks.asr.metrics import linearised_wer

    out: dict[tuple, np.ndarray] = {}
    if "metrics_file" not in runs:
        return out
    for _, r in runs.iterrows():
        path = Path(str(r["metrics_file"])).parent / "hypotheses.csv"
        if path.is_file():
            h = pd.read_csv(path, usecols=["word_errors", "ref_words"])
            out[r["task"], r["model"], r["seed"]] = linearised_wer(h["word_errors"], h["ref_words"])
    return out


def board_fields(g: pd.DataFrame) -> dict:
    flops, audio = col(g, "flops_per_sample").iloc[0], col(g, "cost_audio_seconds").iloc[0]
    rtf = col(g, "latency_ms_batch1") / 1000 / col(g, "cost_first_seconds")
    return {"modality": g["modality"].iloc[0], "family": g["family"].iloc[0], "arch": g["arch"].iloc[0],
            "params": int(g["n_params"].iloc[0]), "flops_per_audio_second": flops / audio if audio else np.nan,
            "rtf_mean": rtf.mean(), "latency_ms_batch1_mean": col(g, "latency_ms_batch1").mean(),
            "train_seconds_mean": g["train_seconds"].mean(), "peak_memory_mb_max": col(g, "peak_memory_mb").max(),
            "n_test": int(g["n_test"].iloc[0]), "test_ref_words": int(g["test_ref_words"].iloc[0]),
            "decoding": g["decoding"].iloc[0], "data_note": g["data_note"].iloc[0] if "data_note" in g else ""}


def baseline_rows(runs: pd.DataFrame) -> list[dict]:
    """Per task the "no output" row: every reference word deleted (WER = CER = 1 exactly)."""
    rows = []
    for task, g in runs.groupby("task", sort=False):
        rows.append({"task": task, "modality": g["modality"].iloc[0], "model": NO_OUTPUT, "family": "baseline",
                     "arch": "", "n_seeds": 0, "seeds": "", "test_wer_mean": 1.0, "test_cer_mean": 1.0,
                     "n_test": int(g["n_test"].iloc[0]),
                     "data_note": g["data_note"].iloc[0] if "data_note" in g else "",
                     "rank": np.nan, "is_best": False, "tie_with_best": False})
    return rows


def family_fields(best: pd.Series, g: pd.DataFrame) -> dict:
    return {"best_params": best["params"]}


def pct(x: float, digits: int = 1) -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.{digits}f}"


def heading(g: pd.DataFrame) -> str:
    first = g.iloc[0]
    return f"{task_label(first)} (speech recognition, {int(first['n_test'])} test utterances)"


def examples(runs: pd.DataFrame, fam: pd.DataFrame, task: str, n: int = EXAMPLES_PER_FAMILY) -> list[dict]:
    """The first ``n`` test utterances as each family's best model (its lowest seed) transcribed them."""
    out = []
    for _, f in fam[fam.task == task].iterrows():
        g = runs[(runs.task == task) & (runs.model == f["best_model"])].sort_values("seed")
        if g.empty or "metrics_file" not in g:
            continue
        path = Path(str(g["metrics_file"].iloc[0])).parent / "hypotheses.csv"
        if not path.is_file():
            continue
        h = pd.read_csv(path, keep_default_na=False).head(n)
        for _, u in h.iterrows():
            out.append({"family": f["family"], "model": f["best_model"], "seed": int(g["seed"].iloc[0]),
                        "id": u["id"], "reference": u["reference"], "hypothesis": u["hypothesis"],
                        "word_errors": int(u["word_errors"]), "ref_words": int(u["ref_words"])})
    return out


def examples_markdown(ex: list[dict]) -> list[str]:
    from tabulate import tabulate

    if not ex:
        return []
    return ["Transcripts of the first test utterances by each family's best model (its lowest seed; hypotheses.csv "
            "has every one):", "",
            tabulate([[e["family"], e["model"], e["id"], e["reference"], e["hypothesis"] or "(empty)",
                       f"{e['word_errors']}/{e['ref_words']}"] for e in ex],
                     headers=["family", "model", "utterance", "reference", "hypothesis", "word errors"],
                     tablefmt="github", disable_numparse=True), ""]


def references_table(runs: pd.DataFrame, board: pd.DataFrame, refs: pd.DataFrame) -> pd.DataFrame:
    """Each published WER beside our best model of the same family on every task of that dataset and test set."""
    out = []
    first = runs.groupby("task")[["dataset", "test_set"] if "test_set" in runs else ["dataset"]].first()
    models = board[~board["is_baseline"].astype(bool)]
    for _, ref in refs.iterrows():
        same = (first["dataset"] == ref["dataset"]) & (first.get("test_set", ref["test_set"]) == ref["test_set"])
        for task in first[same].index:
            g = models[models.task == task]
            if g.empty:
                continue
            same = g[g.family == ref["family"]]
            ours = (same if len(same) else g).sort_values("rank").iloc[0]
            out.append({"task": task, "dataset": ref["dataset"], "test_set": ref["test_set"],
                        "reference_model": ref["model"], "reference_family": ref["family"],
                        "reference_wer": ref["wer"] / 100, "source": ref["source"], "notes": ref["notes"],
                        "our_model": ours["model"], "our_test_wer_mean": ours["test_wer_mean"],
                        "our_n_seeds": ours["n_seeds"]})
    return pd.DataFrame(out, columns=["task", "dataset", "test_set", "reference_model", "reference_family",
                                      "reference_wer", "source", "notes", "our_model", "our_test_wer_mean",
                                      "our_n_seeds"])


def references_markdown(table: pd.DataFrame) -> str:
    from tabulate import tabulate

    parts = ["", "# Published speech-recognition references", "",
             "Published WER beside ours (the best of our models of the same family). ⚠ marks how the published "
             "protocol differs (training hours, language model, decoder, test set). Sources: config/references.yaml.",
             ""]
    if table.empty:
        return "\n".join(parts + ["No speech-recognition task in this run uses a dataset with published references.",
                                  ""])
    parts.append(tabulate([[r["task"], r["test_set"], r["reference_model"], f"{100 * r['reference_wer']:.2f}",
                            r["our_model"], pct(r["our_test_wer_mean"], 2), f"⚠ {r['notes']}" if r["notes"] else "",
                            r["source"]] for _, r in table.iterrows()],
                          headers=["task", "test set", "published model", "published WER %", "ours", "ours WER %",
                                   "protocol", "source"], tablefmt="github", disable_numparse=True))
    return "\n".join(parts) + "\n"


COSTS_INTRO = ("Forward FLOPs per second of audio (torch FlopCounterMode over the first 8 test utterances, each at "
               "its own length, ÷ their mean duration), real-time factor (median batch-1 latency on the first test "
               "utterance ÷ its duration), peak memory, training time per run. Sorted by FLOPs. WER %: " + UNCERTAINTY)
FAMILIES_INTRO = "WER %: " + UNCERTAINTY + " ✓: the task's best; ≈: tied with it."


class SpeechRecognitionTables(Tables):
    """Speech recognition's tables: the "no output" row, costs per second of audio, a few transcripts per family
    under each task, published references of its own."""

    BOARD_COLUMNS = BOARD_COLUMNS
    FAMILY_COLUMNS = FAMILY_COLUMNS
    INTEGER_RANK = False  # the "no output" row has no rank: ranks are floats in leaderboard_asr.csv
    REFERENCE_COLUMNS = REFERENCE_COLUMNS
    titles = {"leaderboard": "Speech recognition", "costs": "Cost of each speech-recognition model",
              "families": "Best model of each family per speech-recognition task"}
    intros = {"leaderboard": INTRO, "costs": COSTS_INTRO, "families": FAMILIES_INTRO}
    family_headers = ("best WER %", "family mean WER %")
    cost_sort = "flops_per_audio_second"
    fallback_hint = " Retraining a run writes its hypotheses.csv."

    def board_fields(self, g: pd.DataFrame) -> dict:
        return board_fields(g)

    def family_fields(self, best: pd.Series, g: pd.DataFrame) -> dict:
        return family_fields(best, g)

    def baseline_rows(self, runs: pd.DataFrame) -> list[dict]:
        return baseline_rows(runs)

    def example_scores(self, runs: pd.DataFrame) -> dict:
        return example_scores(runs)

    def heading(self, g: pd.DataFrame) -> str:
        return heading(g)

    def board_columns(self) -> list[Column]:
        return [params_column(), human_column("FLOPs / s audio", "flops_per_audio_second"),
                num_column("RTF", "rtf_mean", ".3f"), train_seconds_column()]

    def cost_columns(self) -> list[Column]:
        return [human_column("FLOPs / s audio", "flops_per_audio_second"), num_column("RTF", "rtf_mean", ".3f"),
                num_column("latency ms (b=1)", "latency_ms_batch1_mean", ".1f"),
                num_column("peak MB", "peak_memory_mb_max", ".0f"), train_seconds_column(),
                self.primary_column(self.metric.label)]

    def family_columns(self) -> list[Column]:
        return [Column("its CER %", lambda r: pct(r["best_test_cer_mean"]))]

    def extras_markdown(self, task: str, runs: pd.DataFrame, fam: pd.DataFrame) -> list[str]:
        return examples_markdown(examples(runs, fam, task))

    def extras_html(self, task: str, runs: pd.DataFrame, fam: pd.DataFrame) -> list[str]:
        ex = examples(runs, fam, task)
        if not ex:
            return []
        return ["<h3>Transcripts</h3>", tabulate_rows(
            [[html.escape(str(e[k])) for k in ("family", "model", "id", "reference", "hypothesis")] for e in ex],
            ["family", "model", "utterance", "reference", "hypothesis"], "unsafehtml")]

    def own_sections(self, runs: pd.DataFrame, board: pd.DataFrame, fam: pd.DataFrame, frames: dict,
                     refs: pd.DataFrame) -> dict[str, str]:
        return {"references.md": references_markdown(references_table(runs, board, refs))}

    def plots(self, runs: pd.DataFrame, board: pd.DataFrame, fam: pd.DataFrame, out: Path) -> list[Path]:
        from finebench.tasks.asr.plots import asr_plots

        return asr_plots(runs, board, out, self.task_type.plot_kinds)
