import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from finebench import protocol, report
from finebench import stats as stats_mod
from finebench.protocol import run_protocol
from finebench.tasks import get
from finebench.tasks.classification import tables as ctables
from finebench.tasks.tables import interval_cell

CLS = get("classification").table_code  # classification's tables: the one renderer with its declarations


def runs_frame(accs: dict[str, list[float]], task="t", modality="vision", families=None):
    rows = []
    for model, values in accs.items():
        for seed, acc in enumerate(values):
            rows.append({
                "task": task, "modality": modality, "model": model,
                "family": (families or {}).get(model, "cnn"), "arch": f"arch_{model}", "dataset": "d", "seed": seed,
                "test_accuracy": acc, "test_macro_f1": acc - 0.01, "test_top5": min(1.0, acc + 0.1),
                "n_params": 1000, "train_seconds": 10.0 + seed, "train_samples_per_s": 100.0,
                "chance_accuracy": 0.1, "majority_accuracy": 0.12,
                "flops_per_sample": 2e6, "latency_ms_batch1": 1.0 + seed, "inference_samples_per_s": 500.0,
                "peak_memory_mb": 100.0 + seed,
            })
    return pd.DataFrame(rows)


def test_statistics_match_scipy():
    a, b = [0.80, 0.82, 0.84], [0.70, 0.74, 0.71]
    board = report.leaderboard(runs_frame({"a": a, "b": b})).set_index("model")
    assert board.loc["a", "test_accuracy_mean"] == pytest.approx(np.mean(a))
    assert board.loc["a", "test_accuracy_std"] == pytest.approx(np.std(a, ddof=1))
    lo, hi = stats.t.interval(0.95, len(a) - 1, loc=np.mean(a), scale=stats.sem(a))
    assert board.loc["a", "test_accuracy_ci95"] == pytest.approx((hi - lo) / 2)
    assert board.loc["b", "p_vs_best"] == pytest.approx(stats.ttest_ind(a, b, equal_var=False).pvalue)
    assert board.loc["a", "is_best"] and not board.loc["b", "tie_with_best"]
    assert board.loc["a", "train_seconds_mean"] == pytest.approx(11.0)


def test_overlapping_models_are_marked_tied():
    board = report.leaderboard(runs_frame({"a": [0.80, 0.90, 0.70], "b": [0.79, 0.88, 0.71], "c": [0.1, 0.11, 0.12]}))
    ties = dict(zip(board["model"], board["tie_with_best"]))
    assert ties == {"a": False, "b": True, "c": False}
    md = CLS.leaderboard_markdown(board)
    assert "**80.0 ±" in md and "79.3 ± " in md and " ≈" in md


def test_single_seed_has_no_ci_and_says_so():
    board = report.leaderboard(runs_frame({"a": [0.8, 0.82], "solo": [0.5]}))
    solo = board.set_index("model").loc["solo"]
    assert solo["n_seeds"] == 1 and math.isnan(solo["test_accuracy_ci95"]) and math.isnan(solo["p_vs_best"])
    assert not solo["tie_with_best"]
    assert "50.0 (1 seed, no CI)" in CLS.leaderboard_markdown(board)


def test_missing_seeds_are_visible():
    board = report.leaderboard(runs_frame({"a": [0.8, 0.82, 0.81], "b": [0.7, 0.72]}))
    assert dict(zip(board["model"], board["seeds"])) == {"a": "0 1 2", "b": "0 1"}


def test_cost_columns_and_ranks():
    a = runs_frame({"a": [0.8, 0.82], "b": [0.7, 0.72]}, task="t1", families={"a": "cnn", "b": "rnn"})
    b = runs_frame({"a": [0.5, 0.52], "b": [0.6, 0.62]}, task="t2", families={"a": "cnn", "b": "rnn"})
    board = report.leaderboard(pd.concat([a, b], ignore_index=True))
    row = board[(board.task == "t1") & (board.model == "a")].iloc[0]
    assert (row["flops_per_sample"] == 2e6 and row["latency_ms_batch1_mean"] == 1.5
            and row["peak_memory_mb_max"] == 101.0)
    model_ranks, family_ranks = ctables.ranks(board, report.with_family_rank(report.families(board)))
    assert dict(zip(model_ranks["model"], model_ranks["mean_rank"])) == {"a": 1.5, "b": 1.5}
    overall = family_ranks[family_ranks.modality == "all"].set_index("family")
    assert overall.loc["cnn", "mean_family_rank"] == 1.5 and overall.loc["cnn", "n_tasks"] == 2
    assert overall.loc["cnn", "mean_best_test_accuracy"] == pytest.approx((0.81 + 0.51) / 2)
    md = CLS.leaderboard_markdown(board)
    assert "2.00M" in md and "latency" not in md
    costs = CLS.costs_markdown(board)
    assert "| 1.50 " in costs and "| 101 " in costs and "| 500 " in costs
    html = CLS.leaderboard_html(board)
    assert "<b>81.0 ± " in html and "<table>" in html
    assert "<strong>Bold</strong>" in html and "<em>± test</em>" in html and "**" not in html  # Markdown rendered


def test_html_paragraph_renders_marks_and_keeps_html_as_text():
    assert report.html_paragraph("**Bold**: best; *± seeds*; `a < b`") == (
        "<p><strong>Bold</strong>: best; <em>± seeds</em>; <code>a &lt; b</code></p>")
    assert report.html_paragraph("model <script>x</script> & test_wer") == (
        "<p>model &lt;script&gt;x&lt;/script&gt; &amp; test_wer</p>")
    assert report.html_paragraph("") == ""


def test_families_pick_best_model_per_family():
    runs = runs_frame({"r18": [0.8, 0.82], "r50": [0.7, 0.72], "lstm": [0.6, 0.61]},
                      families={"r18": "cnn", "r50": "cnn", "lstm": "rnn"})
    fam = report.families(report.leaderboard(runs)).set_index("family")
    assert fam.loc["cnn", "best_model"] == "r18" and fam.loc["cnn", "n_models"] == 2
    assert fam.loc["cnn", "family_mean_test_accuracy"] == pytest.approx(np.mean([0.81, 0.71]))
    assert fam.loc["cnn", "best_is_task_best"] and not fam.loc["rnn", "best_is_task_best"]


def test_aggregate_writes_exactly_the_declared_tables_and_plots(tmp_path):
    import json

    from finebench.tasks import get

    PLOT_KINDS = get("classification").plot_kinds

    files = []
    for _, row in runs_frame({"a": [0.8, 0.9], "b": [0.5, 0.6]}).iterrows():
        run = tmp_path / "runs" / f"{row['model']}_{row['seed']}"
        run.mkdir(parents=True)
        (run / "metrics.json").write_text(json.dumps(row.to_dict()))
        pd.DataFrame({"epoch": [1, 2], "val_accuracy": [0.4, row["test_accuracy"]]}).to_csv(run / "history.csv",
                                                                                          index=False)
        pd.DataFrame([[3, 1], [0, 4]], index=pd.Index(["x", "y"], name="true"),
                     columns=["x", "y"]).to_csv(run / "confusion.csv")
        files.append(run / "metrics.json")
    report.aggregate(files, tmp_path / "tables", tmp_path / "plots")
    board = pd.read_csv(tmp_path / "tables" / "leaderboard.csv")
    assert list(board["model"]) == ["a", "b"] and list(board["n_seeds"]) == [2, 2]
    # the workflow's aggregate rule declares report.TABLE_FILES and the task type's plot_kinds: nothing more, nothing
    # less
    assert sorted(p.name for p in (tmp_path / "tables").iterdir()) == sorted(report.TABLE_FILES)
    assert (sorted(p.name for p in (tmp_path / "plots").iterdir())
            == sorted(f"t_{kind}.png" for kind in PLOT_KINDS))
    assert all((tmp_path / "tables" / name).stat().st_size > 0 for name in report.TABLE_FILES)


def test_published_references_beside_ours_with_protocol_flags(tmp_path, repo):
    runs = runs_frame({"textcnn": [0.40, 0.42], "bilstm": [0.44, 0.46]}, task="sst", modality="text",
                      families={"textcnn": "cnn", "bilstm": "rnn"})
    runs["dataset"] = "sst5"
    runs["protocol"] = [{"official_split": True, "counts_match": True, "carved_splits": [], "pretraining": "none",
                         "pretrained_file": None, "resolution": None}] * len(runs)
    board = report.leaderboard(runs)
    refs = report.load_references(repo / "config" / "references.yaml")
    assert {"sst5", "cub200", "fgvc_aircraft"} <= set(refs["dataset"])
    table = ctables.references_table(runs, board, refs).set_index("reference_model")
    cnn = table.loc["CNN-non-static"]
    assert cnn["our_model"] == "textcnn" and cnn["reference_accuracy"] == pytest.approx(0.48)
    assert cnn["protocol_differs"] and "pretraining" in cnn["protocol_notes"]  # word2vec vs from scratch
    assert not table.loc["RNTN", "protocol_differs"]  # both from scratch: comparable
    assert table.loc["Bidirectional LSTM", "our_model"] == "bilstm"
    md = ctables.references_markdown(ctables.references_table(runs, board, refs))
    assert "| sst    | CNN-non-static" in md and "48.0" in md and "⚠ pretraining" in md


def test_resolution_difference_is_flagged():
    ref = {"pretraining": "ImageNet", "resolution": 448}
    ours = {"official_split": True, "counts_match": True, "carved_splits": [], "pretraining": "timm_hub",
            "pretrained_file": None, "resolution": 224}
    assert protocol.protocol_differences(ref, ours) == ["resolution: published 448 px, ours 224 px"]
    assert protocol.protocol_differences(ref, {**ours, "resolution": 448}) == []
    ours = {**ours, "resolution": 448, "counts_match": False, "carved_splits": ["val"]}
    assert protocol.protocol_differences({**ref, "split": "official train/test"}, ours) == [
        "data: our copy's counts differ from the official release",
        "training set: ours holds out a validation split carved from the official train split"]
    assert protocol.protocol_differences({"pretraining": "none"},
                                         {**ours, "pretraining": "file", "pretrained_file": "w.pth"})[0] \
        == "pretraining: published none, ours file"


def test_protocol_fields_from_manifest_and_spec_rendered_only_by_the_report():
    manifest = {"input": {"kind": "image", "height": 224, "width": 224}, "official_split": True,
                "official_counts": {"match": False}, "carved_splits": {"val": {"from": "train", "n": 5}}}
    spec = {"model_kwargs": {"pretrained_file": "/w/resnet50.safetensors"}}
    fields = run_protocol(manifest, spec)
    assert fields == {"official_split": True, "counts_match": False, "carved_splits": ["val"], "pretraining": "file",
                      "pretrained_file": "resnet50.safetensors", "resolution": 224}
    assert protocol.protocol_text(fields) == ("official split (counts differ from the release), val carved from train; "
                                            "pretraining: file resnet50.safetensors; 224 px")
    speech = run_protocol({"input": {"kind": "spectrogram"}}, {"model_kwargs": {}})
    assert speech == {"official_split": False, "counts_match": None, "carved_splits": [], "pretraining": "none",
                      "pretrained_file": None, "resolution": None}
    assert protocol.protocol_text(speech) == "the dataset's own split; pretraining: none"


def test_protocols_of_older_metrics_files_still_compare():
    legacy = {"pretraining": "timm hub weights", "resolution": 224,
              "split": "official (counts differ from the release) + val carved from train"}
    assert protocol.protocol_fields(legacy) == {"official_split": True, "counts_match": False, "carved_splits": ["val"],
                                              "pretraining": "timm_hub", "pretrained_file": None, "resolution": 224}
    assert protocol.protocol_differences({"pretraining": "ImageNet", "resolution": 224}, legacy) == [
        "data: our copy's counts differ from the official release",
        "training set: ours holds out a validation split carved from the official train split"]


def test_parameter_count_read_from_old_and_new_metrics_files():
    runs = runs_frame({"a": [0.8, 0.82], "b": [0.7, 0.71]})
    runs.loc[runs.model == "b", "params"] = 2000  # a metrics.json written before the metric was named n_params
    runs.loc[runs.model == "b", "n_params"] = np.nan
    board = report.leaderboard(runs).set_index("model")
    assert board.loc["a", "params"] == 1000 and board.loc["b", "params"] == 2000


def test_broken_references_file_names_the_entry(tmp_path):
    bad = tmp_path / "refs.yaml"
    bad.write_text("references:\n  - {dataset: sst5, model: X}\n")
    with pytest.raises(ValueError, match=r"references\[0\] \(X\) lacks family, accuracy, source, protocol"):
        report.load_references(bad)


def test_data_caveat_is_shown_with_the_task():
    runs = runs_frame({"a": [0.8, 0.82]}, task="cmds", modality="speech")
    runs["data_note"] = "SYNTHESIZED speech (espeak-ng)"
    board = report.leaderboard(runs)
    assert "## cmds [SYNTHESIZED speech (espeak-ng)] (speech, chance" in CLS.leaderboard_markdown(board)


def test_run_confusion_svg_shows_every_cell_with_its_count(tmp_path):
    """The training job's confusion artifact: a well-formed SVG, one cell per (true, predicted) pair, shaded by the
    row-normalised fraction, each naming its count; class names are escaped."""
    import xml.etree.ElementTree as ET

    from finebench.plots import confusion_svg

    cm = np.array([[8, 2, 0], [0, 5, 5], [0, 0, 0]])
    confusion_svg(cm, ["a<b", "c&d", "e"], tmp_path / "c.svg", "t/m/seed0 — test confusion")
    root = ET.parse(tmp_path / "c.svg").getroot()
    ns = "{http://www.w3.org/2000/svg}"
    cells = [r for r in root.iter(f"{ns}rect") if r.find(f"{ns}title") is not None]
    assert len(cells) == 9
    titles = [c.find(f"{ns}title").text for c in cells]
    assert titles[0] == "true a<b, predicted a<b: 8 (80.0% of the class)"
    assert titles[5] == "true c&d, predicted e: 5 (50.0% of the class)"
    assert cells[0].get("fill") == "rgb(56,89,137)" and cells[8].get("fill") == "rgb(247,251,255)"  # empty class: blank


def test_summary_runs_are_kept_while_the_tables_hold_and_superseded_when_they_change(tmp_path, experiment_file):
    import json

    from mlflow.entities import ViewType
    from mlflow.tracking import MlflowClient

    from finebench.tracking import log_summaries

    def aggregate(accs):
        files = []
        for _, row in runs_frame(accs).iterrows():
            run = tmp_path / "runs" / f"{row['model']}_{row['seed']}"
            run.mkdir(parents=True, exist_ok=True)
            (run / "metrics.json").write_text(json.dumps({**row.to_dict(), "mlflow_run_id": f"r{row['seed']}"}))
            files.append(run / "metrics.json")
        report.aggregate(files, tmp_path / "tables")
        (tmp_path / "plots").mkdir(exist_ok=True)
        return log_summaries(experiment_file, tmp_path / "tables", tmp_path / "plots", tmp_path / "s.json")

    info = json.loads(experiment_file.read_text())
    client = MlflowClient(info["tracking_uri"])

    def summaries():
        runs = client.search_runs([info["experiment_id"]], "tags.`finebench.summary` = 'true'",
                                  run_view_type=ViewType.ALL)
        return {r.info.run_id: r.data.tags["finebench.superseded"] for r in runs}

    first = aggregate({"a": [0.8, 0.9], "b": [0.5, 0.6]})["summary_runs"]["t"]
    assert aggregate({"a": [0.8, 0.9], "b": [0.5, 0.6]})["summary_runs"]["t"] == first  # same tables: kept
    assert summaries() == {first: "false"}
    # the summary run's description gives the verdict across tasks; the experiment keeps the runs table's view
    described = client.get_run(first).data.tags["mlflow.note.content"]
    assert described.startswith("**t**: best model a (cnn).")
    assert "Across the run's 1 task, mean rank: cnn 1.00" in described
    assert "With 1 task no pair of families can be declared different at 0.05" in described
    view = json.loads(client.get_experiment(info["experiment_id"]).tags["mlflow.sharedViewState.finebench"])
    assert view["searchFilter"] == "tags.`finebench.superseded` = 'false'"
    assert "metrics.`test_accuracy`" in view["selectedColumns"] and "tags.`model`" in view["selectedColumns"]
    assert "metrics.`test_psnr`" not in view["selectedColumns"]  # only the task types that ran
    second = aggregate({"a": [0.8, 0.9], "b": [0.5, 0.7]})["summary_runs"]["t"]  # a changed table: filed anew
    assert second != first and summaries() == {first: "true", second: "false"}


def test_ui_links_open_each_experiment_on_its_current_runs_and_the_experiment_says_what_they_are(experiment_file):
    import json

    from mlflow.tracking import MlflowClient

    from finebench.tracking import EXPERIMENT_DESCRIPTION, share_view, ui_links

    info = json.loads(experiment_file.read_text())
    client = MlflowClient(info["tracking_uri"])
    assert client.get_experiment(info["experiment_id"]).tags["mlflow.note.content"] == EXPERIMENT_DESCRIPTION
    assert ui_links(info["tracking_uri"], "http://127.0.0.1:5000") == []  # no runs yet: nothing to open
    for superseded in ("false", "true"):
        client.create_run(info["experiment_id"], run_name="t/m/seed0", tags={"finebench.superseded": superseded})
    assert ui_links(info["tracking_uri"], "http://127.0.0.1:5000/") == [
        f"tests (current runs: 1): http://127.0.0.1:5000/#/experiments/{info['experiment_id']}/runs?searchFilter="
        "tags.%60finebench.superseded%60%20%3D%20%27false%27"]
    share_view(client, info["experiment_id"], ["test_accuracy"])  # filed by the workflow with the summaries
    assert ui_links(info["tracking_uri"], "http://127.0.0.1:5000/") == [
        f"tests (current runs: 1): http://127.0.0.1:5000/#/experiments/{info['experiment_id']}/runs"
        "?viewStateShareKey=finebench"]


# --- uncertainty over seeds and test examples (finebench.stats through report.leaderboard) -------------------------


def write_classification_runs(root, correct: dict[str, list[np.ndarray]], without_predictions=(), families=None):
    """metrics.json (test_accuracy = the mean of ``correct``) and predictions.csv per (model, seed) under ``root``;
    the models in ``without_predictions`` get no predictions.csv (as a run of an older version)."""
    import json

    files = []
    for model, seeds in correct.items():
        row = runs_frame({model: [float(np.mean(c)) for c in seeds]}, families=families)
        for (_, r), c in zip(row.iterrows(), seeds):
            run = root / model / f"seed{r['seed']}"
            run.mkdir(parents=True)
            (run / "metrics.json").write_text(json.dumps(r.to_dict()))
            if model not in without_predictions:
                pd.DataFrame({"index": range(len(c)), "label": 0, "prediction": 1 - np.asarray(c, int),
                              "correct": np.asarray(c, int), "log_p_label": -0.5}).to_csv(run / "predictions.csv",
                                                                                          index=False)
            files.append(run / "metrics.json")
    return files


def correct_on(n: int, *ranges) -> np.ndarray:
    c = np.zeros(n)
    for lo, hi in ranges:
        c[lo:hi] = 1
    return c


def test_combined_interval_and_paired_test_come_from_the_runs_predictions(tmp_path):
    rng = np.random.default_rng(0)
    a = [(rng.random(300) < 0.8).astype(float) for _ in range(3)]
    b = [(rng.random(300) < 0.5).astype(float) for _ in range(3)]
    board = report.leaderboard(report.load_metrics(write_classification_runs(tmp_path, {"a": a, "b": b})))
    row = board.set_index("model")
    assert row.loc["a", "test_accuracy_ci95_test"] == stats_mod.ci95_test(np.stack(a))
    assert row.loc["a", "test_accuracy_ci95_comb"] == pytest.approx(stats_mod.ci95_combined(np.stack(a)))
    assert row.loc["a", "test_accuracy_ci95_comb"] == pytest.approx(
        math.hypot(row.loc["a", "test_accuracy_ci95"], row.loc["a", "test_accuracy_ci95_test"]))
    assert row.loc["b", "p_vs_best"] == stats_mod.paired_p(np.stack(a), np.stack(b))
    assert row.loc["b", "tie_test"] == "paired" and not row.loc["b", "tie_with_best"]
    assert row.loc["b", "p_vs_best_welch"] == pytest.approx(
        stats.ttest_ind([x.mean() for x in a], [x.mean() for x in b], equal_var=False).pvalue)
    assert (board["stats_note"] == "").all()
    md = CLS.leaderboard_markdown(board)
    # main cell: mean ± the combined half-width; "± seeds", "± test": each term alone
    mean, comb, seed_ci, test_ci = (row.loc["a", c] for c in ("test_accuracy_mean", "test_accuracy_ci95_comb",
                                                              "test_accuracy_ci95", "test_accuracy_ci95_test"))
    cells = [c.strip() for c in md.split("| a ")[1].split("\n")[0].split("|")]
    assert cells[4:7] == [f"**{100 * mean:.1f} ± {100 * comb:.1f}**", f"{100 * seed_ci:.1f}", f"{100 * test_ci:.1f}"]
    assert "| ± seeds " in md and "| ± test " in md and "†" not in md.split("\n## ")[1] and "paired test" in md


def test_the_tie_mark_follows_the_paired_test_not_welch(tmp_path):
    """50 test examples. Seeds agree closely (a: 41, 41, 42 right; b: 39, 39, 40), so Welch's t-test over the seed
    accuracies calls b worse (p ≈ 0.02); but the two models disagree on 20 of the 50 examples (a alone right on 11,
    b alone on 9), so on the same test examples the 4-point gap is well within chance: the paired test calls a tie."""
    n = 50
    a = [correct_on(n, (0, 41)), correct_on(n, (0, 41)), correct_on(n, (0, 42))]
    b = [correct_on(n, (0, 30), (41, 50)), correct_on(n, (0, 30), (41, 50)), correct_on(n, (0, 31), (41, 50))]
    files = write_classification_runs(tmp_path, {"a": a, "b": b}, families={"a": "cnn", "b": "rnn"})
    board = report.leaderboard(report.load_metrics(files))
    row = board.set_index("model").loc["b"]
    assert row["p_vs_best_welch"] < 0.05 and row["p_vs_best"] >= 0.05
    assert row["tie_with_best"] and row["tie_test"] == "paired"
    assert "≈" in CLS.leaderboard_markdown(board).split("| b ")[1].split("\n")[0]
    fam = report.families(board)
    assert fam.set_index("best_model").loc["b", "best_tie_with_task_best"]


def test_runs_without_predictions_fall_back_to_welch_and_the_seed_ci_and_say_so(tmp_path):
    rng = np.random.default_rng(1)
    correct = {m: [(rng.random(100) < p).astype(float) for _ in range(3)]
               for m, p in (("a", 0.8), ("b", 0.7), ("c", 0.3))}
    files = write_classification_runs(tmp_path / "mixed", correct, without_predictions=("c",))
    board = report.leaderboard(report.load_metrics(files)).set_index("model")
    assert board.loc["b", "tie_test"] == "paired" and board.loc["b", "stats_note"] == ""
    c = board.loc["c"]
    assert math.isnan(c["test_accuracy_ci95_comb"]) and c["tie_test"] == "Welch"
    assert c["p_vs_best"] == c["p_vs_best_welch"] and "older version" in c["stats_note"]
    md = CLS.leaderboard_markdown(report.leaderboard(report.load_metrics(files)))
    cell = interval_cell(CLS.metric, c["test_accuracy_mean"], float("nan"), c["test_accuracy_ci95"], 3)
    assert cell.endswith(" †") and cell in md and "Seed-only statistics" in md and "c (no per-example test scores" in md
    # the best model without predictions: every comparison falls back, and the note says whose are missing
    files = write_classification_runs(tmp_path / "old_best", correct, without_predictions=("a",))
    board = report.leaderboard(report.load_metrics(files)).set_index("model")
    assert (board.loc[["b", "c"], "tie_test"] == "Welch").all()
    assert board.loc["b", "stats_note"].startswith("the best model (a)")
    assert board.loc["b", "test_accuracy_ci95_comb"] > 0  # its own interval still has its predictions
    md = CLS.leaderboard_markdown(report.leaderboard(report.load_metrics(files)))
    assert "b (≈ only — the best model (a): no per-example test scores" in md


def test_predictions_that_do_not_average_to_the_runs_accuracy_are_not_used(tmp_path):
    files = write_classification_runs(tmp_path, {"a": [correct_on(20, (0, 15))] * 2,
                                                 "b": [correct_on(20, (0, 10))] * 2})
    pd.DataFrame({"correct": np.ones(20, int)}).to_csv(files[-1].parent / "predictions.csv", index=False)  # stale
    board = report.leaderboard(report.load_metrics(files)).set_index("model")
    # seed-only, and both models' seed scores are constant: Welch's t is undefined, so no test (not p = 0)
    assert board.loc["b", "tie_test"] == "none"
    assert "do not average to test_accuracy (seed 1)" in board.loc["b", "stats_note"]


def test_aggregate_reads_predictions_beside_each_metrics_file(tmp_path):
    n = 60
    files = write_classification_runs(tmp_path / "runs", {"a": [correct_on(n, (0, 50))] * 2,
                                                          "b": [correct_on(n, (10, 50))] * 2})
    for f in files:
        pd.DataFrame({"epoch": [1], "val_accuracy": [0.5]}).to_csv(f.parent / "history.csv", index=False)
        pd.DataFrame([[3, 1], [0, 4]], index=pd.Index(["x", "y"], name="true"), columns=["x", "y"]).to_csv(
            f.parent / "confusion.csv")
    report.aggregate(files, tmp_path / "tables")
    board = pd.read_csv(tmp_path / "tables" / "leaderboard.csv").set_index("model")
    # constant seeds: the paired t-test on the 60 per-example differences (1 on the first 10, else 0)
    assert board.loc["b", "tie_test"] == "paired" and board.loc["b", "p_vs_best"] == pytest.approx(
        stats.ttest_rel(correct_on(n, (0, 50)), correct_on(n, (10, 50))).pvalue)
    assert math.isnan(board.loc["b", "p_vs_best_welch"]) or board.loc["b", "p_vs_best_welch"] == 0.0  # constant seeds
    fam = pd.read_csv(tmp_path / "tables" / "families.csv")
    assert fam["best_test_accuracy_ci95_comb"].notna().all()


def test_cost_plot_error_bars_are_the_leaderboards_combined_interval(tmp_path, monkeypatch):
    """The accuracy-vs-cost plot's bars: the CI over seeds and test examples, seeds alone where a model has none."""
    import matplotlib.axes

    from finebench.tasks.classification import plots as cplots

    board = report.leaderboard(runs_frame({"a": [0.8, 0.82, 0.84], "b": [0.7, 0.74, 0.71]}))
    board["test_accuracy_ci95_comb"] = np.where(board["model"] == "a", 0.1, np.nan)
    seen = []
    real = matplotlib.axes.Axes.errorbar

    def errorbar(self, x, y, yerr=None, **kw):
        seen.append((round(y, 6), yerr))
        return real(self, x, y, yerr, **kw)

    monkeypatch.setattr(matplotlib.axes.Axes, "errorbar", errorbar)
    cplots.pareto(board, "t", tmp_path / "t_pareto.png")
    b_mean, b_seed_ci = (round(100 * np.mean([0.7, 0.74, 0.71]), 6),
                         100 * board.set_index("model").loc["b", "test_accuracy_ci95"])
    # one bar per model in each of the two panels: a's combined 10 points, b's seed-only interval
    assert sorted(seen) == sorted([(82.0, pytest.approx(10.0)), (b_mean, pytest.approx(b_seed_ci))] * 2)
    assert (tmp_path / "t_pareto.png").stat().st_size > 0


def test_the_one_renderer_writes_each_metric_in_its_declared_scale_and_format():
    """The cells of every type's tables, from the Metric declarations: hand-written expectations per case."""
    from finebench.tasks import Metric
    from finebench.tasks.tables import interval_cell, seed_cell

    acc = Metric("test_accuracy", "test acc %", "%", fmt=".1f", scale=100, primary=True)
    wer = Metric("test_wer", "WER %", "%", higher_is_better=False, fmt=".1f", scale=100.0, primary=True)
    psnr = Metric("test_psnr", "PSNR dB (Y)", "dB", fmt=".2f", primary=True)
    ssim = Metric("test_ssim", "SSIM (Y)", fmt=".4f", interval=True)
    nan = float("nan")
    assert interval_cell(acc, 0.8125, 0.0312, 0.02, 3) == "81.2 ± 3.1"  # combined half-width over seeds and test
    assert interval_cell(acc, 0.8125, 0.0312, nan, 1) == "81.2 ± 3.1 (1 seed)"  # the test sample's alone
    assert interval_cell(acc, 0.8125, nan, 0.02, 3) == "81.2 ± 2.0 †"  # no per-example scores: seeds alone
    assert interval_cell(acc, 0.8125, nan, nan, 1) == "81.2 (1 seed, no CI) †"
    assert interval_cell(wer, 0.3456, 0.0123, 0.01, 3) == "34.6 ± 1.2"
    assert interval_cell(wer, 1.0, nan, nan, 0) == "100.0"  # a baseline row: the value alone
    assert interval_cell(psnr, 31.234, 0.456, 0.3, 3) == "31.23 ± 0.46"
    assert seed_cell(ssim, 0.91234, 0.00456, 3) == "0.9123 ± 0.0046"
    assert seed_cell(ssim, 0.91234, nan, 1) == "0.9123 (1 seed, no CI)"
    assert seed_cell(ssim, 0.91234, nan, 0) == "0.9123" and seed_cell(ssim, nan, nan, 3) == "—"


def test_every_type_s_html_leaderboard_bolds_its_best_and_escapes_names(tmp_path):
    correct = {m: [correct_on(40, (0, n - s)) for s in range(3)] for m, n in (("<a>", 36), ("b", 20))}
    board = report.leaderboard(report.load_metrics(write_classification_runs(tmp_path, correct)))
    page = CLS.leaderboard_html(board)
    assert "&lt;a&gt;" in page and "<a>" not in page.split("</style>")[1]  # a model name stays text
    best = board.loc[board["is_best"]].iloc[0]
    assert f"<td><b>{100 * best['test_accuracy_mean']:.1f} ± " in page and "<h3>Cost</h3>" in page
