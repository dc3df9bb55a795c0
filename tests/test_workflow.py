"""End to end: the Snakemake workflow on config/smoke.yaml in a temporary directory (every stage, every modality).

The smoke run is shared by the tests of this module and never changed by them: a test that edits the config or the
results works on its own copy (``workdir_copy``), so every test passes alone and in any order.
"""

import copy
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
import yaml

pytestmark = pytest.mark.slow


def read_default_profile(proc) -> bool:
    """Snakemake's own line saying it read profiles/default (relative to the working directory, or absolute)."""
    return re.search(r"Using workflow specific profile \S*profiles/default for setting default",
                     proc.stderr) is not None


def snakemake_cmd(repo, workdir, configfile, *args):
    # args before --configfile, which takes every word up to the next option (a target would be read as a config)
    return [sys.executable, "-m", "snakemake", "-s", str(repo / "Snakefile"), "--directory", str(workdir),
            "--cores", "2", *args, "--configfile", str(configfile)]


def snakemake(repo, workdir, configfile, *args, check=True):
    proc = subprocess.run(snakemake_cmd(repo, workdir, configfile, *args), capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}")
    return proc


def planned_jobs(proc) -> dict[str, int]:
    """Parse the 'Job stats' table of a dry run into {rule: count}."""
    text = proc.stdout + proc.stderr
    if "Nothing to be done" in text:
        return {}
    block = text.split("Job stats:")[1].split("\n\n")[0]
    return {m[0]: int(m[1]) for m in re.findall(r"^(\w+)\s+(\d+)$", block, re.M) if m[0] != "total"}


def planned_training(proc) -> list[str]:
    """The metrics.json outputs of the train jobs a dry run plans."""
    return sorted(re.findall(r"rule train_classification:\n(?:.*\n)*?\s+output: [^\n]*?([^\s,]+/metrics\.json)",
                             proc.stdout + proc.stderr))


def workdir_copy(smoke_run, dest):
    """A copy of the smoke run (results, Snakemake's records, the config) that a test may change."""
    work, path, cfg = smoke_run
    shutil.copytree(work, dest, symlinks=True)  # keeps modification times: nothing looks newer than it is
    return dest, dest / path.name, copy.deepcopy(cfg)


@pytest.fixture(scope="module")
def smoke_run(repo, tmp_path_factory):
    work = tmp_path_factory.mktemp("smoke")
    cfg = yaml.safe_load((repo / "config" / "smoke.yaml").read_text())
    path = work / "smoke.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    snakemake(repo, work, path)
    return work, path, cfg


def task_types(cfg) -> dict[str, list[str]]:
    from finebench.config import task_type_of

    out = {"classification": [], "superres": [], "asr": []}
    for task in cfg["tasks"]:
        out[task_type_of(cfg, task)].append(task)
    return out


def test_tables_cover_every_task_model_and_seed(smoke_run):
    work, _, cfg = smoke_run
    board = pd.read_csv(work / "results" / "tables" / "leaderboard.csv")
    assert set(board["task"]) == set(task_types(cfg)["classification"])
    assert len(board) == 9 and (board["n_seeds"] == len(cfg["seeds"])).all()
    assert set(board["family"]) == {"cnn", "rnn", "transformer"}
    assert board["test_accuracy_mean"].between(0, 1).all() and (board["params"] > 0).all()
    md = (work / "results" / "tables" / "leaderboard.md").read_text()
    for task in cfg["tasks"]:
        assert f"## {task} (" in md or f"## {task} [" in md
    assert "## speech [SYNTHESIZED speech (espeak-ng)] (speech" in md  # labelled wherever it is shown
    fam = pd.read_csv(work / "results" / "tables" / "families.csv")
    assert len(fam) == 9 and set(fam["family"]) == {"cnn", "rnn", "transformer"}
    runs = pd.read_csv(work / "results" / "tables" / "runs.csv")
    assert len(runs) == 30 and (runs["status"] == "FINISHED").all()  # 18 classification + 6 super-resolution + 6 asr
    assert (runs["flops_per_sample"] > 0).all() and (runs["latency_ms_batch1"] > 0).all()
    sr = pd.read_csv(work / "results" / "tables" / "leaderboard_sr.csv")
    assert set(sr["task"]) == set(task_types(cfg)["superres"]) == {"sr"}
    assert set(sr["family"]) == {"cnn", "rnn", "transformer", "baseline"} and len(sr) == 4
    assert ((sr[sr.model != "bicubic"]["n_seeds"] == len(cfg["seeds"])).all()
            and sr["test_psnr_mean"].between(10, 60).all())
    assert "# Super-resolution" in md and "## sr (super-resolution ×2" in md
    asr = pd.read_csv(work / "results" / "tables" / "leaderboard_asr.csv")
    assert set(asr["task"]) == set(task_types(cfg)["asr"]) == {"sentences"} and len(asr) == 4
    assert set(asr["family"]) == {"cnn", "rnn", "transformer", "baseline"}
    assert asr["test_wer_mean"].between(0, 5).all() and asr["test_cer_mean"].between(0, 5).all()
    assert "# Speech recognition" in md and "## sentences [SYNTHESIZED speech (espeak-ng)] (speech recognition" in md


def test_no_checkpoint_is_left_once_the_workflow_succeeds(smoke_run):
    work, _, cfg = smoke_run
    runs = work / "results" / "runs"
    assert len(list(runs.glob("*/*/seed*/metrics.json"))) == 30
    assert list(runs.glob("*/*/seed*/*.pt")) == []  # checkpoint.pt / finished.pt: removed (onsuccess)


def test_plots_for_every_task(smoke_run):
    work, _, cfg = smoke_run
    from finebench.config import task_type_of
    from finebench.tasks import get

    for task in cfg["tasks"]:
        for kind in get(task_type_of(cfg, task)).plot_kinds:
            png = work / "results" / "plots" / f"{task}_{kind}.png"
            assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


def test_report_html_has_tables_and_plots(repo, smoke_run):
    work, path, _ = smoke_run
    snakemake(repo, work, path, "--report", "results/report.html")
    html = (work / "results" / "report.html").read_text(errors="replace")
    assert "leaderboard.html" in html and "typefaces_pareto.png" in html and "Pareto front" in html


def test_mlflow_store_has_every_run_finished_named_and_tagged(smoke_run):
    work, _, cfg = smoke_run
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{work}/results/mlflow.db")
    exp = client.get_experiment_by_name(cfg["experiment"])
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    names = {r.info.run_name for r in runs}
    assert "typefaces/crnn/seed1" in names and "speech/speech_kwt/seed0" in names
    runs = [r for r in runs if r.data.tags.get("finebench.summary") != "true"]
    assert len(runs) == 30
    for r in runs:
        assert r.info.status == "FINISHED"
        assert {"task", "dataset", "modality", "family", "model", "seed", "config_hash"} <= set(r.data.tags)
        score = {"classification": "accuracy", "superres": "psnr", "asr": "wer"}[
            next(k for k, tasks in task_types(cfg).items() if r.data.tags["task"] in tasks)]
        assert f"test_{score}" in r.data.metrics and "train_seconds" in r.data.metrics
        assert len(client.get_metric_history(r.info.run_id, f"val_{score}")) == cfg["training"]["epochs"]
    # nothing filed under "Default" (id 0)
    assert client.search_runs(["0"]) == []
    # one summary run per task, holding the task's table and plots
    summaries = client.search_runs([exp.experiment_id], filter_string="tags.`finebench.summary` = 'true'")
    assert sorted(r.info.run_name for r in summaries) == sorted(f"{t}/summary" for t in cfg["tasks"])
    arts = {a.path for a in client.list_artifacts(summaries[0].info.run_id)}
    assert {"leaderboard.csv", "plots", "all_tasks"} <= arts
    speech = [r for r in runs if r.data.tags["task"] == "speech"]
    assert speech and all(r.data.tags["data_note"] == "SYNTHESIZED speech (espeak-ng)" for r in speech)
    # each metrics.json names its MLflow run
    m = json.loads((work / "results/runs/wordnet/textcnn/seed0/metrics.json").read_text())
    assert client.get_run(m["mlflow_run_id"]).info.run_name == "wordnet/textcnn/seed0"


def test_noop_rerun_does_nothing(repo, smoke_run):
    work, path, _ = smoke_run
    assert planned_jobs(snakemake(repo, work, path, "-n")) == {}


def test_add_a_model_trains_only_that_model(repo, smoke_run, tmp_path):
    work, path, cfg = workdir_copy(smoke_run, tmp_path / "work")
    cfg["models"]["mobilenet"] = {"family": "cnn", "modality": "vision", "arch": "timm:mobilenetv3_small_050"}
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    proc = snakemake(repo, work, path, "-n")
    assert planned_jobs(proc) == {"train_classification": 2, "aggregate": 1, "log_summary": 1, "all": 1}
    assert planned_training(proc) == [f"results/runs/typefaces/mobilenet/seed{s}/metrics.json" for s in (0, 1)]
    snakemake(repo, work, path)
    board = pd.read_csv(work / "results" / "tables" / "leaderboard.csv")
    row = board[board["model"] == "mobilenet"]
    assert len(row) == 1 and row["task"].item() == "typefaces" and row["n_seeds"].item() == 2
    assert planned_jobs(snakemake(repo, work, path, "-n")) == {}

    # Changing one model's hyperparameters retrains that model only.
    cfg["models"]["crnn"]["hidden"] = 12
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    proc = snakemake(repo, work, path, "-n")
    assert planned_jobs(proc) == {"train_classification": 2, "aggregate": 1, "log_summary": 1, "all": 1}
    assert planned_training(proc) == [f"results/runs/typefaces/crnn/seed{s}/metrics.json" for s in (0, 1)]


def test_misspelled_arch_fails_before_any_job(repo, tmp_path):
    cfg = yaml.safe_load((repo / "config" / "smoke.yaml").read_text())
    cfg["models"]["vit"]["arch"] = "timm:vit_tiny_patch16_22"
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(cfg))
    proc = snakemake(repo, tmp_path, path, check=False)
    assert proc.returncode != 0
    assert "models.vit.arch: unknown timm architecture 'vit_tiny_patch16_22'" in proc.stderr + proc.stdout
    assert not (tmp_path / "results").exists()


def test_schema_violation_fails_before_any_job(repo, tmp_path):
    cfg = yaml.safe_load((repo / "config" / "smoke.yaml").read_text())
    cfg["training"]["optimiser"] = "adamw"
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(cfg))
    proc = snakemake(repo, tmp_path, path, check=False)
    assert proc.returncode != 0 and "optimiser" in proc.stderr + proc.stdout
    assert not (tmp_path / "results").exists()


def test_bookkeeping_never_makes_finished_runs_stale(repo, smoke_run, tmp_path):
    work, path, _ = workdir_copy(smoke_run, tmp_path / "work")
    # re-creating the MLflow experiment record reruns that step only
    assert planned_jobs(snakemake(repo, work, path, "-n", "--forcerun", "init_tracking")) == {"init_tracking": 1}
    experiment = work / "results" / "mlflow" / "experiment.json"
    experiment.write_text(json.dumps(json.loads(experiment.read_text())))  # rewritten: newer, other bytes
    assert planned_jobs(snakemake(repo, work, path, "-n")) == {}


def test_aggregate_declares_every_file_it_reads(repo, smoke_run, tmp_path):
    work, path, _ = workdir_copy(smoke_run, tmp_path / "work")
    run = work / "results" / "runs" / "wordnet" / "textcnn" / "seed0"
    for name in ("history.csv", "confusion.csv"):  # read for the learning curves and the best model's confusion plot
        with open(run / name, "a") as f:  # a changed file (Snakemake ignores a mere touch of an unchanged one)
            f.write("\n")
        assert planned_jobs(snakemake(repo, work, path, "-n")) == {"aggregate": 1, "log_summary": 1, "all": 1}, name
        snakemake(repo, work, path, "--touch")  # back to up to date


def test_a_deleted_run_folder_is_retrained_and_the_tables_rebuilt(repo, smoke_run, tmp_path):
    work, path, _ = workdir_copy(smoke_run, tmp_path / "work")
    shutil.rmtree(work / "results" / "runs" / "wordnet" / "textcnn" / "seed0")
    proc = snakemake(repo, work, path, "-n")
    assert planned_jobs(proc) == {"train_classification": 1, "aggregate": 1, "log_summary": 1, "all": 1}
    assert planned_training(proc) == ["results/runs/wordnet/textcnn/seed0/metrics.json"]
    shutil.rmtree(work / "results" / "runs" / "speech")  # a whole task's runs
    speech_runs = (pd.read_csv(work / "results" / "tables" / "runs.csv")["task"] == "speech").sum()
    assert speech_runs > 1
    assert planned_jobs(snakemake(repo, work, path, "-n"))["train_classification"] == 1 + speech_runs


def test_bare_snakemake_in_the_repository_reads_the_default_profile(repo, tmp_path):
    """`make run` and a bare `snakemake` run in the repository root with no -s: Snakemake finds the Snakefile and,
    beside it, profiles/default (and says so)."""
    cmd = [sys.executable, "-m", "snakemake", "-n", "--directory", str(tmp_path),
           "--configfile", str(repo / "config" / "smoke.yaml")]
    proc = subprocess.run(cmd, cwd=repo, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert read_default_profile(proc)
    # the --configfile replaced the embedded suite (replace-workflow-config)
    assert planned_jobs(proc)["train_classification"] == 18


def test_profile_reruns_a_job_killed_mid_way(repo, tmp_path):
    """rerun-incomplete is in force: Snakemake is killed while a job runs; the job still writes its output, which
    Snakemake's records mark incomplete. Without the profile the next run refuses (IncompleteFilesException); with it,
    the job is planned again."""
    path = tmp_path / "smoke.yaml"
    shutil.copy(repo / "config" / "smoke.yaml", path)
    target = "results/mlflow/experiment.json"
    proc = subprocess.Popen(snakemake_cmd(repo, tmp_path, path, target), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    log = tmp_path / "results" / "logs" / "init_tracking.log"
    deadline = time.monotonic() + 180
    while not log.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert log.exists() and proc.poll() is None, "the init_tracking job did not start"
    os.kill(proc.pid, signal.SIGKILL)  # Snakemake only: its job runs on and writes the output
    proc.wait()
    while not (tmp_path / target).exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert (tmp_path / target).exists(), "the orphaned init_tracking job did not finish"

    without = snakemake(repo, tmp_path, path, "-n", target, "--workflow-profile", "none", check=False)
    assert without.returncode != 0 and "IncompleteFilesException" in without.stdout + without.stderr
    with_profile = snakemake(repo, tmp_path, path, "-n", target)
    assert read_default_profile(with_profile)
    assert planned_jobs(with_profile) == {"init_tracking": 1}


def test_profile_keeps_going_after_a_failed_job(repo, tmp_path):
    """keep-going is in force: one task's preparation fails; the other task is still prepared and trained."""
    pd.DataFrame({"text": ["a b", "c d"] * 10, "category": ["x", "y"] * 10}).to_csv(tmp_path / "bad.csv", index=False)
    pd.DataFrame({"text": [f"good {i}" for i in range(10)] + [f"bad {i}" for i in range(10)],
                  "label": ["pos"] * 10 + ["neg"] * 10}).to_csv(tmp_path / "good.csv", index=False)
    cfg = {"experiment": "keep-going", "seeds": [0],
           "tasks": {"broken": {"dataset": "text_table", "path": str(tmp_path / "bad.csv")},
                     "fine": {"dataset": "text_table", "path": str(tmp_path / "good.csv")}},
           "training": {"epochs": 1, "batch_size": 8},
           "models": {"textcnn": {"family": "cnn", "modality": "text", "arch": "textcnn", "embed_dim": 8,
                                  "filters": 4}}}
    path = tmp_path / "keep_going.yaml"
    path.write_text(yaml.safe_dump(cfg))
    proc = snakemake(repo, tmp_path, path, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and read_default_profile(proc)
    assert "label" in (tmp_path / "results" / "logs" / "prepare" / "broken.log").read_text()  # why it failed
    metrics = json.loads((tmp_path / "results" / "runs" / "fine" / "textcnn" / "seed0" / "metrics.json").read_text())
    assert metrics["status"] == "FINISHED"
    assert not (tmp_path / "results" / "tables" / "leaderboard.csv").exists()  # needs both tasks
    # the finished run keeps its small finished.pt (a rerun re-evaluates) until a whole run of the workflow succeeds
    assert (tmp_path / "results" / "runs" / "fine" / "textcnn" / "seed0" / "finished.pt").is_file()
    assert "Error in rule prepare_data" in out
