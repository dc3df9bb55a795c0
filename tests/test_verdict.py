"""The verdict across tasks (finebench.verdict, #35): each statistic against a case computed by hand, and the
summary the aggregate writes."""

import json
import math
import re

import numpy as np
import pandas as pd
import pytest

from finebench import report, verdict


def test_tied_families_share_the_average_of_their_positions():
    means = {"a": 0.90, "b": 0.85, "c": 0.80, "d": 0.50}
    p = {("a", "b"): 0.30, ("a", "c"): 0.01, ("a", "d"): 0.001, ("b", "c"): 0.2, ("b", "d"): 0.001,
         ("c", "d"): 0.20}

    def test(x, y):
        return p[(x, y) if x < y else (y, x)]

    # a leads {a, b} (b not different from a), c leads {c, d}: positions 1-2 and 3-4
    assert verdict.tie_ranks(means, True, test) == {"a": 1.5, "b": 1.5, "c": 3.5, "d": 3.5}
    # lower is better (WER): d leads {d, c} (c is tied with d, b is not); b leads {b, a}
    assert verdict.tie_ranks(means, False, test) == {"d": 1.5, "c": 1.5, "b": 3.5, "a": 3.5}
    # no test possible (NaN) is not a difference; every pair significant: plain ranks
    assert verdict.tie_ranks({"a": 2.0, "b": 1.0}, True, lambda x, y: float("nan")) == {"a": 1.5, "b": 1.5}
    assert verdict.tie_ranks(means, True, lambda x, y: 0.0) == {"a": 1.0, "b": 2.0, "c": 3.0, "d": 4.0}


def test_holm_by_hand():
    # sorted 0.01, 0.03, 0.04: × 3, × 2, × 1 = 0.03, 0.06, 0.04 → monotone 0.03, 0.06, 0.06
    assert verdict.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert verdict.holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])  # capped at 1


def test_the_exact_sign_test_and_its_floor_by_hand():
    assert verdict.sign_test(5, 0) == pytest.approx(2 / 2 ** 5)  # 0.0625: the floor at N = 5
    assert verdict.sign_test(6, 0) == pytest.approx(2 / 2 ** 6)
    assert verdict.sign_test(5, 1) == pytest.approx(2 * (1 + 6) / 2 ** 6)  # 2 · (C(6,0) + C(6,1)) / 64
    assert verdict.sign_test(2.5, 2.5) == pytest.approx(1.0)  # a split tie: halves rounded down, 2 vs 2
    assert verdict.smallest_sign_p(5) == 0.0625 > 0.05 > verdict.smallest_sign_p(6)


def summary_of(matrix: dict[str, list[float]], up: bool = True) -> pd.DataFrame:
    return pd.DataFrame([{"task": f"t{i}", "family": fam, "best_mean": v, "higher_is_better": up}
                         for fam, values in matrix.items() for i, v in enumerate(values)])


def test_friedman_on_a_6_by_3_matrix_with_ties_by_hand():
    # rank sums 15.5, 12.5, 8 → 12/(N k (k+1)) Σ R² − 3 N (k+1) = 460.5/6 − 72 = 4.75; ties (a pair in t2, a triple in
    # t6): Σ(t³ − t) = 6 + 24 = 30 → ÷ (1 − 30 / (N k (k² − 1))) = ÷ (1 − 30/144) → χ² = 6.0, df 2, p = e^−3
    matrix = {"a": [0.9, 0.8, 0.7, 0.6, 0.9, 0.5], "b": [0.8, 0.8, 0.9, 0.5, 0.7, 0.5],
              "c": [0.7, 0.6, 0.5, 0.4, 0.8, 0.5]}
    out = verdict.friedman(summary_of(matrix))
    assert out["statistic"] == pytest.approx(6.0) and out["df"] == 2 and out["n_tasks"] == 6 and out["k"] == 3
    assert out["p"] == pytest.approx(math.exp(-3))
    # lower is better ranks every task the other way round: the same statistic
    flipped = verdict.friedman(summary_of(matrix, up=False))
    assert flipped["statistic"] == pytest.approx(6.0)
    assert verdict.friedman(summary_of({"a": [1, 2], "b": [2, 1]})) == {}  # 2 families: no Friedman


def test_wins_ties_losses_and_win_rate():
    tests = pd.DataFrame([
        # t0: a beats b significantly; t1: a better by mean, not significantly; t2: b beats a
        {"task": "t0", "family": "a", "other": "b", "p": 0.01, "better": True, "equal": False},
        {"task": "t0", "family": "b", "other": "a", "p": 0.01, "better": False, "equal": False},
        {"task": "t1", "family": "a", "other": "b", "p": 0.40, "better": True, "equal": False},
        {"task": "t1", "family": "b", "other": "a", "p": 0.40, "better": False, "equal": False},
        {"task": "t2", "family": "a", "other": "b", "p": 0.001, "better": False, "equal": False},
        {"task": "t2", "family": "b", "other": "a", "p": 0.001, "better": True, "equal": False},
    ])
    pairs = verdict.pairwise(tests)
    assert len(pairs) == 1
    row = pairs.iloc[0]
    assert (row["family"], row["other"], row["tasks"]) == ("a", "b", 3)
    assert (row["wins"], row["ties"], row["losses"]) == (1, 1, 1)
    assert (row["sign_wins"], row["sign_losses"]) == (2, 1)  # by mean: a better on t0 and t1
    assert row["sign_p"] == pytest.approx(1.0) and row["sign_p_holm"] == pytest.approx(1.0)
    summary = pd.DataFrame([{"task": t, "family": f, "rank": r, "n_families": 2}
                            for t, f, r in (("t0", "a", 1), ("t0", "b", 2), ("t1", "a", 1.5), ("t1", "b", 1.5),
                                            ("t2", "a", 2), ("t2", "b", 1))])
    ranks = verdict.family_ranks(summary, tests).set_index("family")
    assert ranks.loc["a", "mean_rank"] == pytest.approx(1.5) and ranks.loc["a", "win_rate"] == pytest.approx(1 / 3)
    assert ranks.loc["b", "win_rate"] == pytest.approx(1 / 3) and ranks.loc["a", "n_tasks"] == 3


def test_the_aggregate_writes_the_summary_and_says_why_five_tasks_cannot_decide(tmp_path):
    from test_report import correct_on, write_classification_runs

    files = []
    for t in range(5):  # 5 tasks, cnn clearly ahead of rnn on each (40 examples, 3 seeds)
        correct = {"c": [correct_on(40, (0, 36 - s)) for s in range(3)],
                   "r": [correct_on(40, (0, 20 + s)) for s in range(3)]}
        for f in write_classification_runs(tmp_path / f"t{t}", correct, families={"c": "cnn", "r": "rnn"}):
            m = json.loads(f.read_text())
            f.write_text(json.dumps({**m, "task": f"t{t}"}))
            files.append(f)
    out = report.aggregate(files, tmp_path / "tables")
    summary = pd.read_csv(tmp_path / "tables" / "families_summary.csv")
    assert summary["task"].nunique() == 5 and set(summary["family"]) == {"cnn", "rnn"}
    ranks = summary.groupby("family")["rank"]
    assert (ranks.max()["cnn"], ranks.min()["rnn"]) == (1, 2)
    gap = summary[summary.family == "rnn"]["gap_to_best"].iloc[0]
    assert gap == pytest.approx(np.mean([36, 35, 34]) / 40 - np.mean([20, 21, 22]) / 40)
    assert len(out["summary"]) == 10
    md = (tmp_path / "tables" / "families_summary.md").read_text()
    assert re.search(r"\| cnn +\| rnn +\| 5 +\| 5 +\| 0 +\| 0 +\|", md)  # 5 significant wins of 5
    assert "with 5 tasks no pair of families can be declared different at α = 0.05" in md and "0.0625" in md
    assert "Friedman's test needs at least 3 families" in md


def test_matched_families_recompute_the_verdict_within_each_pretraining_group(tmp_path):
    from test_report import correct_on, write_classification_runs

    correct = {"cp": [correct_on(40, (0, 38 - s)) for s in range(3)],  # a pretrained CNN, far ahead
               "cs": [correct_on(40, (0, 22 + s)) for s in range(3)],  # the from-scratch CNN, behind the RNN
               "r": [correct_on(40, (0, 30 + s)) for s in range(3)]}
    files = write_classification_runs(tmp_path, correct, families={"cp": "cnn", "cs": "cnn", "r": "rnn"})
    for f in files:
        m = json.loads(f.read_text())
        pre = "timm_hub" if m["model"] == "cp" else "none"
        f.write_text(json.dumps({**m, "protocol": {"pretraining": pre}}))
    report.aggregate(files, tmp_path / "tables")
    summary = pd.read_csv(tmp_path / "tables" / "families_summary.csv")
    best = summary.set_index(["members", "family"])["best_model"]
    assert best["all", "cnn"] == "cp" and best["trained from scratch", "cnn"] == "cs"
    assert best["trained from scratch", "rnn"] == "r" and list(best["pretrained"].index) == ["cnn"]
    rank = summary.set_index(["members", "family"])["rank"]
    assert rank["all", "cnn"] == 1 and rank["trained from scratch", "rnn"] == 1  # the order flips when matched
    assert int(summary[summary.members == "all"]["n_models"][summary.family == "cnn"].iloc[0]) == 2
    md = (tmp_path / "tables" / "families_summary.md").read_text()
    assert "### Trained from scratch" in md and "#### Ranks over 1 task " in md
    assert "### Pretrained\n\nOne family only (cnn): nothing to compare." in md


def test_a_critical_difference_diagram_from_six_tasks_on(tmp_path):
    def frames(n_tasks):
        means = {"a": 0.9, "b": 0.8, "c": 0.5}
        summary = pd.DataFrame([{"task": f"t{t}", "family": f, "rank": r + 1, "n_families": 3, "best_mean": m,
                                 "higher_is_better": True} for t in range(n_tasks)
                                for r, (f, m) in enumerate(means.items())])
        tests = pd.DataFrame([{"task": f"t{t}", "family": x, "other": y, "p": 0.001, "better": means[x] > means[y],
                               "equal": False} for t in range(n_tasks) for x in means for y in means if x != y])
        return summary, tests

    assert not verdict.cd_diagram(*frames(5), tmp_path / "five.png")  # no pair can differ: no diagram
    assert not (tmp_path / "five.png").exists()
    summary, tests = frames(6)
    pairs = verdict.pairwise(tests).set_index(["family", "other"])
    assert pairs.loc[("a", "b"), "sign_p"] == pytest.approx(2 / 2 ** 6)  # 6 wins of 6
    assert pairs.loc[("a", "b"), "sign_p_holm"] == pytest.approx(3 * 2 / 2 ** 6)  # three equal p's: × 3
    assert verdict.cd_diagram(summary, tests, tmp_path / "six.png")
    assert (tmp_path / "six.png").stat().st_size > 5_000
    md = verdict.markdown(summary.assign(task_type="classification", metric="test_accuracy", n_models=1,
                                         best_model="m", best_ci95=0.01, best_ci95_comb=0.02, best_n_seeds=3,
                                         gap_to_best=0.0, is_task_best=False, tie_with_task_best=False), tests)
    assert "sign test p" in md and "Holm p" in md and "no pair of families can be declared" not in md


def test_eight_tasks_declare_a_winner_and_three_refuse(tmp_path):
    def frames(wins, ties):  # family a better on `wins` tasks (significantly), equal on `ties`
        rows, tests = [], []
        for t in range(wins + ties):
            a, b = (0.9, 0.8) if t < wins else (0.8, 0.8)
            rows += [{"task": f"t{t}", "family": "a", "rank": 1 if t < wins else 1.5, "n_families": 2, "best_mean": a,
                      "higher_is_better": True},
                     {"task": f"t{t}", "family": "b", "rank": 2 if t < wins else 1.5, "n_families": 2, "best_mean": b,
                      "higher_is_better": True}]
            p = 0.001 if t < wins else 1.0
            tests += [{"task": f"t{t}", "family": "a", "other": "b", "p": p, "better": a > b, "equal": a == b},
                      {"task": f"t{t}", "family": "b", "other": "a", "p": p, "better": False, "equal": a == b}]
        return pd.DataFrame(rows), pd.DataFrame(tests)

    summary, tests = frames(7, 1)
    pair = verdict.pairwise(tests).iloc[0]
    assert (pair["wins"], pair["ties"], pair["losses"]) == (7, 1, 0)
    assert pair["sign_p_holm"] == pytest.approx(2 / 2 ** 7) and pair["sign_p_holm"] < 0.05  # the tie split away
    assert verdict.cd_diagram(summary, tests, tmp_path / "cd.png") and (tmp_path / "cd.png").is_file()
    few, few_tests = frames(3, 0)
    md = verdict.markdown(few.assign(task_type="classification", metric="test_accuracy", n_models=1, best_model="m",
                                     best_ci95=0.01, best_ci95_comb=0.02, best_n_seeds=3, gap_to_best=0.0,
                                     is_task_best=False, tie_with_task_best=False), few_tests)
    assert "with 3 tasks no pair of families can be declared different at α = 0.05" in md and "0.25" in md
    assert not verdict.cd_diagram(few, few_tests, tmp_path / "few.png")
