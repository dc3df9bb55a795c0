"""The verdict across tasks: which family wins, over how many tasks, and how sure we can be.

    families_summary.csv / families_summary.md  (written by finebench.report.aggregate)

One block per trained task, every task type: a super-resolution model scored on several test sets counts once, by
its first set (the one its plots show: ``Tables.plotted_as``), since the other sets score the same trained models
and are not independent tasks. Per task and family: the family's best model (a maximum over ``n_models`` members),
its score with the leaderboard's interval and ≈ mark, and its gap to the task's best in the task's own units —
accuracy, dB and WER are never averaged together; ranks and win counts are the common scale.

- **Ranks that respect ties**: the families of a task in the order of their best models' means; the first and every
  family after it, in that order, whose best model is not significantly different from the first's (the
  leaderboard's test: paired over seeds and test examples, else Welch's over seeds; two-sided, α = 0.05; no test
  possible counts as not different) form a group sharing the average of their positions; the next family starts the
  next group. A rank difference is then a significant difference within the task.
- **Win / tie / loss** per pair of families over the tasks both ran: a win is a significant difference by the same
  test; the **win rate** of a family is the fraction of the other families of a task it beats, averaged over tasks.
- **Tests across tasks**: Friedman's χ² over the tasks × families matrix of best-model means (the tasks every family
  ran; scipy.stats.friedmanchisquare, the χ² approximation), and per pair the exact two-sided **sign test** over
  the tasks (scipy.stats.binomtest: the count of tasks each wins by mean; exact equalities split evenly, Demšar 2006)
  with **Holm's** correction over the pairs — the sign test, not Wilcoxon's signed-rank test, because differences in
  points of accuracy, dB and WER points are not commensurable, and pairwise tests rather than mean-rank post-hoc
  tests, whose verdict on two families depends on the others in the pool (Benavoli, Corani & Mangili 2016). With N
  tasks no sign test can go below p = 2/2^N, so below 6 tasks (0.0625 at N = 5) the table says that no pair can be
  declared different at α = 0.05, instead of printing tests that cannot reject.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from itertools import combinations

import numpy as np
import pandas as pd

from finebench.stats import ALPHA, paired_p, welch_p
from finebench.tasks.tables import interval_cell, show, tabulate_rows

SUMMARY_COLUMNS = ["task", "task_type", "metric", "higher_is_better", "family", "n_models", "best_model",
                   "best_mean", "best_ci95", "best_ci95_comb", "best_n_seeds", "gap_to_best", "is_task_best",
                   "tie_with_task_best", "rank", "n_families"]
MIN_TASKS = 6  # below it no exact two-sided sign test reaches p < 0.05 (2 / 2**5 = 0.0625)


def tie_ranks(means: dict[str, float], up: bool, p: Callable[[str, str], float]) -> dict[str, float]:
    """Ranks of ``means`` (1 = best in the direction ``up``) where each group — a leader and the families after it in
    mean order not significantly different from it (``p(leader, other) >= ALPHA`` or NaN) — shares the average of
    its positions."""
    order = sorted(means, key=lambda f: (-means[f] if up else means[f], f))
    ranks: dict[str, float] = {}
    i = 0
    while i < len(order):
        j = i + 1
        while j < len(order) and not p(order[i], order[j]) < ALPHA:
            j += 1
        for f in order[i:j]:
            ranks[f] = (i + 1 + j) / 2  # the mean of positions i+1 … j
        i = j
    return ranks


def holm(pvalues: list[float]) -> list[float]:
    """Holm's step-down adjusted p-values (in the input order): p₍ᵢ₎ × (m − i + 1), made monotone, capped at 1."""
    m = len(pvalues)
    order = sorted(range(m), key=lambda i: pvalues[i])
    out, running = [0.0] * m, 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        out[i] = running
    return out


def sign_test(wins: float, losses: float) -> float:
    """The exact two-sided sign test's p-value of ``wins`` against ``losses`` (halves from split ties rounded down,
    Demšar 2006); 1 with no task decided."""
    from scipy import stats

    w, n = int(math.floor(wins)), int(math.floor(wins) + math.floor(losses))
    return float(stats.binomtest(w, n, 0.5).pvalue) if n else 1.0


def smallest_sign_p(n_tasks: int) -> float:
    """The smallest two-sided p-value an exact sign test over ``n_tasks`` can give: 2 / 2**N."""
    return min(1.0, 2.0 / 2 ** n_tasks)


class Comparer:
    """The leaderboard's test between two models of a task: paired on their per-example scores where both have them
    on the same examples, else Welch's over their seed scores."""

    def __init__(self, runs: pd.DataFrame, key: str, mats: dict):
        self.runs, self.key, self.mats = runs, key, mats

    def p(self, task: str, a: str, b: str) -> float:
        ma, mb = self.mats.get((task, a)), self.mats.get((task, b))
        if ma is not None and mb is not None and ma.shape[1] == mb.shape[1]:
            return paired_p(ma, mb)
        seeds = [self.runs[(self.runs.task == task) & (self.runs.model == m)][self.key].to_numpy(float) for m in (a, b)]
        return welch_p(*seeds)


def task_blocks(tt, runs: pd.DataFrame, fam: pd.DataFrame, mats: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The summary rows of one task type's trained tasks (see the module), and the leaderboard's test between every
    two families' best models of each: (task, family, other, p, better: whether ``family``'s mean is better)."""
    code, metric = tt.table_code, tt.primary
    key, up = metric.name, metric.higher_is_better
    compare = Comparer(runs, key, mats)
    rows, tests = [], []
    for name, f in fam.groupby("task", sort=False):
        task = code.plotted_as(name, runs)
        if task is None:  # a second test set of the same trained models: not a task of its own
            continue
        bests = dict(zip(f["family"], f["best_model"]))
        means = dict(zip(f["family"], f[f"best_{key}_mean"].astype(float)))
        p = {(a, b): compare.p(name, bests[a], bests[b]) for a, b in combinations(sorted(bests), 2)}
        for (a, b), pv in p.items():
            better = means[a] > means[b] if up else means[a] < means[b]
            tests += [{"task": task, "family": a, "other": b, "p": pv, "better": better,
                       "equal": means[a] == means[b]},
                      {"task": task, "family": b, "other": a, "p": pv, "better": not better and means[a] != means[b],
                       "equal": means[a] == means[b]}]
        def between(a: str, b: str, p: dict = p) -> float:
            return p[(a, b) if a < b else (b, a)]

        ranks = tie_ranks(means, up, between)
        top = max(means.values()) if up else min(means.values())
        for _, r in f.iterrows():
            rows.append({"task": task, "task_type": tt.name, "metric": key, "higher_is_better": up,
                         "family": r["family"], "n_models": int(r["n_models"]), "best_model": r["best_model"],
                         "best_mean": r[f"best_{key}_mean"], "best_ci95": r[f"best_{key}_ci95"],
                         "best_ci95_comb": r[f"best_{key}_ci95_comb"], "best_n_seeds": int(r["best_n_seeds"]),
                         "gap_to_best": abs(top - float(r[f"best_{key}_mean"])),
                         "is_task_best": bool(r["best_is_task_best"]),
                         "tie_with_task_best": bool(r["best_tie_with_task_best"]), "rank": ranks[r["family"]],
                         "n_families": len(f)})
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS), pd.DataFrame(
        tests, columns=["task", "family", "other", "p", "better", "equal"])


def significant_win(t: pd.DataFrame) -> pd.Series:
    return (t["p"] < ALPHA) & t["better"]


def pairwise(tests: pd.DataFrame) -> pd.DataFrame:
    """Per pair of families (each pair once): wins, ties and losses of ``family`` over the tasks both ran (a win: a
    significant difference by the leaderboard's test; a tie: none, or no test possible), the sign test's counts of
    tasks each wins by mean (exact equalities split evenly) and its exact two-sided p, Holm-adjusted over the
    pairs."""
    rows = []
    for (a, b), g in tests.groupby(["family", "other"], sort=True):
        if a > b:
            continue
        win, lose = significant_win(g), (g["p"] < ALPHA) & ~g["better"] & ~g["equal"]
        sw = float(g["better"].sum() + g["equal"].sum() / 2)
        sl = float((~g["better"] & ~g["equal"]).sum() + g["equal"].sum() / 2)
        rows.append({"family": a, "other": b, "tasks": len(g), "wins": int(win.sum()),
                     "ties": int(len(g) - win.sum() - lose.sum()), "losses": int(lose.sum()), "sign_wins": sw,
                     "sign_losses": sl, "sign_p": sign_test(sw, sl)})
    out = pd.DataFrame(rows, columns=["family", "other", "tasks", "wins", "ties", "losses", "sign_wins",
                                      "sign_losses", "sign_p"])
    out["sign_p_holm"] = holm(out["sign_p"].tolist()) if len(out) else []
    return out


def family_ranks(summary: pd.DataFrame, tests: pd.DataFrame) -> pd.DataFrame:
    """Per family: its tasks (N), mean tie-aware rank, and win rate — the fraction of a task's other families it
    beats significantly, averaged over its tasks that have another family."""
    beaten = tests.assign(win=significant_win(tests)).groupby(["task", "family"])["win"].sum()
    rows = []
    for fam, g in summary.groupby("family", sort=True):
        rates = [beaten.get((r["task"], fam), 0) / (r["n_families"] - 1) for _, r in g.iterrows()
                 if r["n_families"] > 1]
        rows.append({"family": fam, "n_tasks": len(g), "mean_rank": float(g["rank"].mean()),
                     "win_rate": float(np.mean(rates)) if rates else float("nan")})
    return pd.DataFrame(rows, columns=["family", "n_tasks", "mean_rank", "win_rate"]).sort_values(
        ["mean_rank", "family"], kind="stable").reset_index(drop=True)


def friedman(summary: pd.DataFrame) -> dict:
    """Friedman's χ² over the tasks every family ran (rows) × the families (columns) of best-model means, oriented so
    that larger is better; {} when fewer than 3 families or 2 such tasks."""
    from scipy import stats

    fams = sorted(summary["family"].unique())
    oriented = summary.assign(score=np.where(summary["higher_is_better"].astype(bool), summary["best_mean"],
                                             -summary["best_mean"]))
    matrix = oriented.pivot_table(index="task", columns="family", values="score", sort=False).dropna()
    if len(fams) < 3 or len(matrix) < 2:
        return {}
    res = stats.friedmanchisquare(*(matrix[f].to_numpy(float) for f in fams))
    return {"statistic": float(res.statistic), "p": float(res.pvalue), "n_tasks": len(matrix), "k": len(fams),
            "df": len(fams) - 1}


def summarise(typed: list[tuple]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(summary rows, the tests between families within each task) over ``typed``: (task type, its scored runs, its
    families table, its per-example score matrices: finebench.report.example_matrices) for each type that ran."""
    blocks, tests = [], []
    for tt, runs, fam, mats in typed:
        b, t = task_blocks(tt, runs, fam, mats)
        blocks.append(b)
        tests.append(t)
    if not blocks:
        return pd.DataFrame(columns=SUMMARY_COLUMNS), pd.DataFrame(columns=["task", "family", "other", "p", "better",
                                                                            "equal"])
    return pd.concat(blocks, ignore_index=True), pd.concat(tests, ignore_index=True)


def gap_text(metric, gap: float) -> str:
    """How far a family's best is behind the task's best, in the task's units ("3.2 pts" of a % metric)."""
    return f"{show(metric, gap)} {'pts' if metric.unit == '%' else metric.unit}".rstrip()


def markdown(summary: pd.DataFrame, tests: pd.DataFrame,
             groups: dict[str, tuple[pd.DataFrame, pd.DataFrame]] | None = None) -> str:
    from finebench.tasks import get

    parts = ["# Which family wins across tasks", "",
             "One block per trained task (a super-resolution model scored on several test sets counts once, by its "
             "first set: the other sets score the same trained models). Per task and family: the family's best model "
             "(a maximum over *models* members — a family with more members has more tries), its score with the "
             "leaderboard's interval (**bold**: the task's best; ≈: tied with it by the leaderboard's paired test) "
             "and how far it is behind the task's best in the task's own units. Accuracy, dB and WER are never "
             "averaged together: ranks and win counts are the common scale. *Rank*: families in the order of their "
             "best models' means; a family not significantly different from the first of its group shares the "
             "group's averaged rank, so a rank difference is a significant difference within the task (two-sided, "
             f"α = {ALPHA}; no test possible counts as not different).", ""]
    if summary.empty:
        return "\n".join(parts + ["No task in this run.", ""])
    table = []
    for _, r in summary.iterrows():
        metric = get(r["task_type"]).primary
        cell = interval_cell(metric, r["best_mean"], r["best_ci95_comb"], r["best_ci95"], int(r["best_n_seeds"]))
        cell = f"**{cell}**" if r["is_task_best"] else (f"{cell} ≈" if r["tie_with_task_best"] else cell)
        table.append([r["task"], get(r["task_type"]).title, r["family"], r["n_models"], r["best_model"],
                      f"{metric.label}: {cell}", "—" if r["is_task_best"] else gap_text(metric, r["gap_to_best"]),
                      f"{r['rank']:g}"])
    parts += ["## Per task", "", tabulate_rows(table, ["task", "type", "family", "models", "best model",
                                                        "best model's score", "behind the best", "rank"]), ""]
    parts += rank_sections(summary, tests, "##")
    return "\n".join(parts + matched_sections(summary, groups or {}))


def rank_sections(summary: pd.DataFrame, tests: pd.DataFrame, level: str) -> list[str]:
    """Mean ranks and win rates, wins / ties / losses per pair, the tests across tasks (Markdown lines)."""
    if summary["family"].nunique() < 2:
        return [f"One family only ({', '.join(summary['family'].unique())}): nothing to compare.", ""]
    ranks = family_ranks(summary, tests)
    n, k, types = summary["task"].nunique(), summary["family"].nunique(), summary["task_type"].nunique()
    parts = [f"{level} Ranks over {n} task{'' if n == 1 else 's'} ({types} task type{'' if types == 1 else 's'}), "
             f"{k} families", "",
             "Mean of the tie-aware ranks over the tasks a family ran (1 = best); win rate: the fraction of a task's "
             "other families it beats significantly, averaged over its tasks. Both depend on which families are in "
             "the pool.", "",
             tabulate_rows([[r["family"], r["n_tasks"], f"{r['mean_rank']:.2f}",
                             "—" if math.isnan(r["win_rate"]) else f"{100 * r['win_rate']:.0f} %"]
                            for _, r in ranks.iterrows()], ["family", "tasks", "mean rank", "win rate"]), ""]
    pairs = pairwise(tests)
    most = int(pairs["tasks"].max()) if len(pairs) else 0
    testable = most >= MIN_TASKS
    parts += [f"{level} Wins, ties and losses", "",
              "Per pair of families over the tasks both ran: a win or a loss is a significant difference by the "
              "leaderboard's test on that task, a tie is none.", ""]
    if len(pairs):
        head = ["family", "vs", "tasks", "wins", "ties", "losses"]
        rows = [[r["family"], r["other"], r["tasks"], r["wins"], r["ties"], r["losses"]] for _, r in pairs.iterrows()]
        if testable:
            head += ["sign test p", "Holm p"]
            rows = [[*row, f"{r['sign_p']:.3g}", f"{r['sign_p_holm']:.3g}"] for row, (_, r) in
                    zip(rows, pairs.iterrows())]
        parts += [tabulate_rows(rows, head), ""]
    parts += [f"{level} Tests across tasks", ""]
    fr = friedman(summary)
    if fr:
        parts += [f"Friedman's test over the {fr['n_tasks']} tasks every family ran × {fr['k']} families (best-model "
                  f"means, ranked per task): χ²({fr['df']}) = {fr['statistic']:.2f}, p = {fr['p']:.3g} "
                  "(the χ² approximation, rough for few tasks).", ""]
    else:
        parts += ["Friedman's test needs at least 3 families and 2 tasks that every family ran: not computed.", ""]
    if testable:
        parts += ["Pairwise: the exact two-sided sign test over the tasks (tasks won by mean; exact equalities split "
                  "evenly), Holm-adjusted over the pairs; the sign test because differences in points of accuracy, "
                  "dB and WER points are not commensurable (Benavoli, Corani & Mangili 2016 advise pairwise tests "
                  "over mean-rank post-hoc tests, whose verdict on two families depends on the others in the pool).",
                  ""]
    else:
        parts += [f"Pairwise: with {most} tasks no pair of families can be declared different at α = {ALPHA}: an "
                  f"exact two-sided sign test over N tasks cannot go below p = 2/2^N ({smallest_sign_p(most):.4g} at "
                  f"N = {most}), and Wilcoxon's signed-rank test has the same floor. It takes {MIN_TASKS} tasks; the "
                  "counts above describe these tasks and are not a test.", ""]
    return parts




def matched_sections(summary: pd.DataFrame, groups: dict[str, tuple[pd.DataFrame, pd.DataFrame]]) -> list[str]:
    """The verdict again within each pretraining group ({"trained from scratch" | "pretrained": (summary, tests)}): a
    pretrained member against a from-scratch one is not a comparison of architectures."""
    if not groups:
        return []
    parts = ["## Matched families: by pretraining", "",
             "The same verdict with each family's members of one kind only: every family's best among its members "
             "trained from scratch, then among its pretrained ones (metrics.json's protocol `pretraining`). Ranks "
             "and ties are recomputed within each group.", ""]
    everyone = set(zip(summary["task"], summary["best_model"]))
    for name, (sub, sub_tests) in groups.items():
        if sub.empty:
            parts += [f"### {name.capitalize()}", "", f"No model of this run is {name}.", ""]
        elif set(zip(sub["task"], sub["best_model"])) == everyone and len(sub) == len(summary):
            parts += [f"### {name.capitalize()}", "", f"Every family's best model above is {name}: the verdict "
                      "above is this group's.", ""]
        else:
            parts += [f"### {name.capitalize()}", "", *rank_sections(sub, sub_tests, "####")]
    return parts


def cd_diagram(summary: pd.DataFrame, tests: pd.DataFrame, path) -> bool:
    """A critical-difference diagram (scikit-posthocs; Demšar 2006's drawing) of the families' mean tie-aware ranks,
    families joined by a bar where the Holm-adjusted pairwise sign test does not reject at α — drawn only when a pair
    of families shares at least MIN_TASKS tasks (below that no pair can differ, and a diagram would only say so).
    Returns whether it drew ``path``."""
    from pathlib import Path

    import scikit_posthocs as sp

    from finebench.plots import _plt

    pairs = pairwise(tests)
    if summary["family"].nunique() < 2 or not len(pairs) or int(pairs["tasks"].max()) < MIN_TASKS:
        return False
    fams = sorted(summary["family"].unique())
    sig = pd.DataFrame(1.0, index=fams, columns=fams)
    for _, r in pairs.iterrows():
        sig.loc[r["family"], r["other"]] = sig.loc[r["other"], r["family"]] = r["sign_p_holm"]
    ranks = family_ranks(summary, tests).set_index("family")["mean_rank"]
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.0, 0.6 + 0.35 * len(fams)))
    sp.critical_difference_diagram(ranks, sig, ax=ax, alpha=ALPHA)
    ax.set_title(f"Mean tie-aware rank over {summary['task'].nunique()} tasks (bars: not different, Holm-adjusted "
                 "sign test)", fontsize=9)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


CD_FILE = "families_cd.png"


def write(typed: list[tuple], out_dir, groups: dict[str, list[tuple]] | None = None,
          plots_dir=None) -> tuple[pd.DataFrame, str]:
    """families_summary.csv and families_summary.md in ``out_dir``, over every member of every family (``members``
    "all") and within each group of ``groups`` ({name: typed}, e.g. the from-scratch members only), and with
    ``plots_dir`` the critical-difference diagram (:func:`cd_diagram`, ``families_cd.png``) where enough tasks allow
    one; returns the summary of every member and the Markdown."""
    from pathlib import Path

    summary, tests = summarise(typed)
    within = {name: summarise(sub) for name, sub in (groups or {}).items()}
    text = markdown(summary, tests, within)
    if plots_dir is not None and not summary.empty and cd_diagram(summary, tests, Path(plots_dir) / CD_FILE):
        text += (f"\nThe critical-difference diagram of these ranks and tests: `plots/{CD_FILE}` (scikit-posthocs; "
                 "a bar joins families the Holm-adjusted sign test does not separate).\n")
    pd.concat([summary.assign(members="all"), *(g.assign(members=name) for name, (g, _) in within.items())],
              ignore_index=True).to_csv(Path(out_dir) / "families_summary.csv", index=False)
    (Path(out_dir) / "families_summary.md").write_text(text)
    return summary, text
