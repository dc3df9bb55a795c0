"""seeds_per_job: the final seeds of a (task, model) in one process (finebench train-runs) — the same numbers as a
process per seed, each run resumable and kept on its own, one Snakemake job per group (#33 item 8)."""

import json
import signal
import subprocess
import sys

import pandas as pd
import pytest
import yaml

from finebench import config
from finebench.tasks import TASK_TYPES
from test_resume import STABLE, TINY, spec, tiny_data, train_cmd, wait_for  # noqa: F401 (tiny_data: a fixture)
from test_workflow import planned_jobs, snakemake

RUN_FILES = TASK_TYPES["classification"].run_files
SMALL = {k: TINY[k] for k in ("families", "styles_per_family", "vocabulary", "train_per_class", "val_per_class",
                              "test_per_class")}


def seed_spec(seed, **kw):
    return {**spec(**kw), "seed": seed}


def runs_cmd(specs, data, exp, root, out, *extra):
    return [sys.executable, "-m", "finebench", "train-runs", "--specs", json.dumps(specs), "--data", str(data),
            "--experiment-file", str(exp), "--out-root", str(root), "--out", str(out), "--run-files", *RUN_FILES,
            "--device", "cpu", *extra]


def stable(path):
    m = json.loads(path.read_text())
    return {k: m[k] for k in STABLE}


@pytest.fixture(scope="module")
def one_process_each(tiny_data, tmp_path_factory):
    """Seeds 0 and 1 of the tiny run, each trained by `finebench train` in a process of its own."""
    from finebench.tracking import init_experiment

    tmp = tmp_path_factory.mktemp("each")
    exp = tmp / "mlflow" / "experiment.json"
    init_experiment(f"sqlite:///{tmp}/mlflow.db", "each", tmp / "artifacts", exp)
    for seed in (0, 1):
        subprocess.run(train_cmd(seed_spec(seed), tiny_data, exp, tmp / f"seed{seed}"), check=True,
                       capture_output=True)
    return {seed: stable(tmp / f"seed{seed}" / "metrics.json") for seed in (0, 1)}


@pytest.mark.slow
def test_seeds_sharing_a_process_give_the_numbers_of_a_process_each_and_a_third_seed_trains_alone(
        tmp_path, tiny_data, experiment_file, one_process_each):
    root, out = tmp_path / "runs" / "tf" / "crnn", tmp_path / "runs" / "tf" / "crnn" / "seeds0.json"
    done = subprocess.run(runs_cmd([seed_spec(0), seed_spec(1)], tiny_data, experiment_file, root, out),
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    for seed in (0, 1):  # the second seed after the first in one process: the digits of a process of its own
        assert stable(root / f"seed{seed}" / "metrics.json") == one_process_each[seed]
        assert all((root / f"seed{seed}" / name).is_file() for name in ("history.csv", *RUN_FILES))
    listed = json.loads(out.read_text())
    assert [m["seed"] for m in listed] == [0, 1] and {m["status"] for m in listed} == {"FINISHED"}
    assert "tf/crnn/seed1: run 2 of 2 in this process" in done.stderr
    assert "process: 2 run(s)" in done.stderr
    run_ids = {m["mlflow_run_id"] for m in listed}
    assert len(run_ids) == 2  # a run of its own each in MLflow

    # the group grows (seeds_per_job 3 after 2): the finished seeds are kept, only the new one trains
    out3 = root / "seeds0b.json"
    again = subprocess.run(runs_cmd([seed_spec(s) for s in (0, 1, 2)], tiny_data, experiment_file, root, out3),
                           capture_output=True, text=True)
    assert again.returncode == 0, again.stderr[-3000:]
    for seed in (0, 1):
        assert f"tf/crnn/seed{seed}: done earlier ({root / f'seed{seed}' / 'metrics.json'}), kept" in again.stderr
    assert "tf/crnn/seed2: run 3 of 3 in this process" in again.stderr
    assert [m["seed"] for m in json.loads(out3.read_text())] == [0, 1, 2]
    assert {m["mlflow_run_id"] for m in json.loads(out3.read_text())[:2]} == run_ids

    # a seed whose run files are incomplete (confusion.csv deleted) is not kept: it is evaluated again from its
    # finished checkpoint, not retrained, and gives the same numbers
    (root / "seed1" / "confusion.csv").unlink()
    third = subprocess.run(runs_cmd([seed_spec(1)], tiny_data, experiment_file, root, out3), capture_output=True,
                           text=True)
    assert third.returncode == 0, third.stderr[-3000:]
    assert "trained earlier" in third.stderr and (root / "seed1" / "confusion.csv").is_file()
    assert stable(root / "seed1" / "metrics.json") == one_process_each[1]


@pytest.mark.slow
def test_a_group_killed_in_its_second_run_keeps_the_first_and_resumes_the_second(
        tmp_path, tiny_data, experiment_file, one_process_each):
    root, out, log = tmp_path / "runs", tmp_path / "seeds0.json", tmp_path / "group.log"
    cmd = runs_cmd([seed_spec(0), seed_spec(1)], tiny_data, experiment_file, root, out)
    with open(log, "w") as f:
        proc = subprocess.Popen(cmd, stdout=f, stderr=f)
    wait_for(log, "tf/crnn/seed1 epoch 2:", proc)  # its checkpoint after epoch 2 is on disk before this line
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert (root / "seed0" / "metrics.json").is_file() and not (root / "seed1" / "metrics.json").exists()
    assert not out.exists()  # the group's list is written last: a killed job leaves none

    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "tf/crnn/seed0: done earlier" in done.stderr and "resuming after epoch 2" in done.stderr
    for seed in (0, 1):
        assert stable(root / f"seed{seed}" / "metrics.json") == one_process_each[seed]
    assert [m["seed"] for m in json.loads(out.read_text())] == [0, 1]


def test_train_runs_refuses_specs_that_are_not_one_models_seeds(tmp_path, tiny_data, experiment_file):
    other = {**seed_spec(1), "model": "other"}
    for specs, why in (([seed_spec(0), other], "the final runs of one (task, model), one per seed"),
                       ([seed_spec(0), seed_spec(0)], "one per seed"),
                       ([{**seed_spec(0), "trial": 0}], "trials: train-trials"),
                       ([], "a JSON list of run specs, each with `seed`")):
        proc = subprocess.run(runs_cmd(specs, tiny_data, experiment_file, tmp_path / "r", tmp_path / "o.json"),
                              capture_output=True, text=True)
        assert proc.returncode == 2 and why in proc.stderr, proc.stderr[-2000:]
    assert not (tmp_path / "r").exists() and not (tmp_path / "o.json").exists()


def test_seed_groups_follow_seeds_per_job():
    base = {"experiment": "x", "tasks": {}, "models": {}}
    assert config.seed_groups(config.with_defaults({**base, "seeds": [0, 1, 2]})) == [[0], [1], [2]]
    assert config.seed_groups({**base, "seeds": [5, 1, 9], "seeds_per_job": 2}) == [[5, 1], [9]]
    assert config.seed_groups({**base, "seeds": [5, 1, 9], "seeds_per_job": 8}) == [[5, 1, 9]]


def tiny_workflow(work, repo, seeds, per_job):
    cfg = {"experiment": "groups", "tracking_uri": "sqlite:///results/mlflow.db", "seeds": seeds,
           "seeds_per_job": per_job, "tasks": {"tf": {"dataset": "typefaces", **SMALL}},
           "training": {"epochs": 2, "batch_size": 8},
           "models": {"crnn": {"family": "rnn", "modality": "vision", "arch": "crnn", "stem": [8], "hidden": 16},
                      "resnet": {"family": "cnn", "modality": "vision", "arch": "timm:resnet18",
                                 "channels": [8, 8, 8, 8], "stem_width": 8}}}
    path = work / "groups.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def test_seeds_per_job_is_checked_by_the_schema():
    with pytest.raises(config.ConfigError, match="seeds_per_job"):
        config.validate_schema({"experiment": "x", "seeds": [0], "seeds_per_job": 0,
                                "tasks": {"t": {"dataset": "typefaces"}},
                                "models": {}})


@pytest.mark.slow
def test_the_workflow_trains_a_job_per_group_of_seeds_and_a_regrouping_retrains_nothing(repo, tmp_path):
    path = tiny_workflow(tmp_path, repo, [0, 1, 2], 2)
    jobs = planned_jobs(snakemake(repo, tmp_path, path, "-n"))
    assert jobs["train_classification"] == 4  # 2 models x groups [0, 1] and [2]
    snakemake(repo, tmp_path, path)
    res = tmp_path / "results"
    logs = sorted(p.name for p in (res / "logs" / "train" / "tf" / "crnn").iterdir())
    assert logs == ["seeds0.log", "seeds1.log"]
    assert "process: 2 run(s)" in (res / "logs" / "train" / "tf" / "crnn" / "seeds0.log").read_text()
    board = pd.read_csv(res / "tables" / "leaderboard.csv")
    assert len(board) == 2 and (board["n_seeds"] == 3).all()
    runs = pd.read_csv(res / "tables" / "runs.csv")
    assert len(runs) == 6 and sorted(runs["seed"].unique()) == [0, 1, 2]
    before = (res / "tables" / "leaderboard.csv").read_text()
    assert "Nothing to be done" in snakemake(repo, tmp_path, path, "-n").stdout

    # all three seeds in one job now: each group job reruns (its specs changed) but every seed is kept
    path = tiny_workflow(tmp_path, repo, [0, 1, 2], 3)
    proc = snakemake(repo, tmp_path, path)
    log = (res / "logs" / "train" / "tf" / "crnn" / "seeds0.log").read_text()
    assert log.count("done earlier") == 3 and " epoch 1:" not in log
    assert (res / "tables" / "leaderboard.csv").read_text() == before, proc.stderr[-2000:]
