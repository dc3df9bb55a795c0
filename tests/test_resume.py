"""Killed jobs resume where they stopped; one current MLflow run per (task, model, seed); divergence fails loudly."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from finebench import config
from finebench.data import DATASETS, prepare_task

TINY = {**DATASETS["typefaces"].defaults, "families": ["NimbusSans", "URWGothic"], "styles_per_family": 2,
        "vocabulary": 200, "train_per_class": 24, "val_per_class": 4, "test_per_class": 6}
STABLE = ["test_accuracy", "test_macro_f1", "test_mean_class_accuracy", "test_loss", "best_epoch", "best_val_accuracy",
          "n_params", "flops_per_sample"]


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    out = tmp_path_factory.mktemp("data") / "tf"
    prepare_task("tf", "typefaces", TINY, out)
    return out


def spec(epochs=5, lr=0.003, **training):
    cfg = config.with_defaults({
        "experiment": "t", "seeds": [0], "tasks": {"tf": {"dataset": "typefaces"}},
        "training": {"epochs": epochs, "batch_size": 8, "lr": lr, **training},
        "models": {"crnn": {"family": "rnn", "modality": "vision", "arch": "crnn", "stem": [8], "hidden": 16}},
    })
    return config.resolve_spec(cfg, "tf", "crnn", 0)


def train_cmd(s, data, exp, out):
    return [sys.executable, "-m", "finebench", "train", "--spec", json.dumps(s), "--data", str(data),
            "--experiment-file", str(exp), "--out", str(out), "--device", "cpu", "--no-progress"]


def runs_of(experiment_file, name="tf/crnn/seed0"):
    from mlflow.tracking import MlflowClient

    info = json.loads(experiment_file.read_text())
    client = MlflowClient(info["tracking_uri"])
    return client, client.search_runs([info["experiment_id"]], filter_string=f"attributes.run_name = '{name}'")


def wait_for(path, text, proc, timeout=600):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if path.is_file() and text in path.read_text():
            return
        if proc.poll() is not None:
            raise AssertionError(f"job ended early:\n{path.read_text()}")
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {text!r}")


@pytest.mark.slow
def test_kill_9_mid_run_resumes_and_equals_an_uninterrupted_run(tmp_path, tiny_data, experiment_file):
    s = spec()
    ref = tmp_path / "ref"
    subprocess.run(train_cmd(s, tiny_data, experiment_file, ref), check=True, capture_output=True)
    want = json.loads((ref / "metrics.json").read_text())

    out, log = tmp_path / "killed", tmp_path / "killed.log"
    with open(log, "w") as f:
        proc = subprocess.Popen(train_cmd(s, tiny_data, experiment_file, out), stderr=f, stdout=f)
    wait_for(log, "tf/crnn/seed0 epoch 3:", proc)  # the checkpoint after epoch 3 is on disk before this line
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "metrics.json").exists() and (out / "checkpoint.pt").is_file()
    client, runs = runs_of(experiment_file)
    killed_id = [r.info.run_id for r in runs if r.info.status == "RUNNING"]
    assert len(killed_id) == 1  # the dead process's run, still RUNNING until its job is rerun

    done = subprocess.run(train_cmd(s, tiny_data, experiment_file, out), check=True, capture_output=True, text=True)
    assert "resuming after epoch 3" in done.stderr
    got = json.loads((out / "metrics.json").read_text())
    assert {k: got[k] for k in STABLE} == {k: want[k] for k in STABLE}
    assert (out / "history.csv").read_text().splitlines()[-1].split(",")[:5] == \
        (ref / "history.csv").read_text().splitlines()[-1].split(",")[:5]
    assert not (out / "checkpoint.pt").exists() and (out / "finished.pt").is_file()  # replaced after the last epoch
    # the resumed job continued its own MLflow run; the uninterrupted run's is now superseded
    assert got["mlflow_run_id"] == killed_id[0]
    client, runs = runs_of(experiment_file)
    status = {r.info.run_id: (r.info.status, r.data.tags["finebench.superseded"]) for r in runs}
    assert status == {killed_id[0]: ("FINISHED", "false"), want["mlflow_run_id"]: ("FINISHED", "true")}
    steps = [m.step for m in client.get_metric_history(killed_id[0], "val_accuracy")]
    assert sorted(set(steps)) == [1, 2, 3, 4, 5]
    assert client.get_run(killed_id[0]).data.tags["finebench.resumed_after_epoch"] == "3"


@pytest.mark.slow
def test_sigterm_ends_the_run_killed_and_the_rerun_finishes_it(tmp_path, tiny_data, experiment_file):
    s, out, log = spec(epochs=3), tmp_path / "run", tmp_path / "run.log"
    with open(log, "w") as f:
        proc = subprocess.Popen(train_cmd(s, tiny_data, experiment_file, out), stderr=f, stdout=f)
    wait_for(log, "epoch 1:", proc)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait() != 0
    _, runs = runs_of(experiment_file)
    assert [r.info.status for r in runs] == ["KILLED"]
    subprocess.run(train_cmd(s, tiny_data, experiment_file, out), check=True, capture_output=True)
    _, runs = runs_of(experiment_file)
    assert [(r.info.status, r.data.tags["finebench.superseded"]) for r in runs] == [("FINISHED", "false")]


@pytest.mark.slow
def test_a_finished_run_whose_outputs_were_deleted_reruns_as_a_re_evaluation(tmp_path, tiny_data, experiment_file):
    """On Slurm a job can finish training and still be marked failed (its time limit hit while Snakemake wraps up);
    Snakemake then deletes its outputs. The rerun evaluates the kept best weights (finished.pt) instead of training
    again, with the same metrics, in the same MLflow run."""
    from finebench.workdir import discard_finished

    s, out = spec(epochs=3), tmp_path / "runs" / "tf" / "crnn" / "seed0"
    first = subprocess.run(train_cmd(s, tiny_data, experiment_file, out), check=True, capture_output=True, text=True)
    want = json.loads((out / "metrics.json").read_text())
    history = (out / "history.csv").read_text()
    assert not (out / "checkpoint.pt").exists() and (out / "finished.pt").is_file()
    for name in ("metrics.json", "history.csv", "confusion.csv"):  # what Snakemake removes from a failed job
        (out / name).unlink()

    again = subprocess.run(train_cmd(s, tiny_data, experiment_file, out), check=True, capture_output=True, text=True)
    assert "epoch 1:" in first.stderr and "epoch 1:" not in again.stderr, again.stderr  # no training
    assert "trained earlier" in again.stderr and "evaluating its best epoch" in again.stderr
    got = json.loads((out / "metrics.json").read_text())
    assert {k: got[k] for k in STABLE} == {k: want[k] for k in STABLE}
    assert got["train_seconds"] == want["train_seconds"] and got["mlflow_run_id"] == want["mlflow_run_id"]
    assert (out / "history.csv").read_text() == history and (out / "confusion.csv").is_file()
    _, runs = runs_of(experiment_file)
    assert [(r.info.status, r.data.tags["finebench.resumed_after_epoch"]) for r in runs] == [("FINISHED", "3")]

    assert discard_finished(tmp_path / "runs") == [out / "finished.pt"] and not (out / "finished.pt").exists()
    (out / "metrics.json").unlink()  # without finished.pt (or with metrics.json missing) nothing is discarded
    assert discard_finished(tmp_path / "runs") == []


def test_a_checkpoint_of_other_data_or_weights_that_do_not_fit_is_ignored(tmp_path, tiny_data, experiment_file, capsys):
    """Same spec, but the task's data were prepared again with other options since (or the saved weights no longer
    fit the model): the run trains again instead of re-evaluating stale weights, or failing on every rerun."""
    import torch

    from finebench.train import fit

    out = tmp_path / "run"
    first = fit(spec(epochs=2), tiny_data, out, experiment_file, device="cpu")
    other = tmp_path / "tf_other"
    prepare_task("tf", "typefaces", {**TINY, "train_per_class": 16}, other)
    (out / "metrics.json").unlink()
    capsys.readouterr()
    again = fit(spec(epochs=2), other, out, experiment_file, device="cpu")
    err = capsys.readouterr().err
    assert "ignoring" in err and "trained on other prepared data" in err and "epoch 1:" in err
    assert again["n_train"] < first["n_train"] and again["mlflow_run_id"] != first["mlflow_run_id"]

    ckpt = torch.load(out / "finished.pt", weights_only=True)
    ckpt["state"]["best_state"] = {f"old.{k}": v for k, v in ckpt["state"]["best_state"].items()}  # renamed layers
    torch.save(ckpt, out / "finished.pt")
    (out / "metrics.json").unlink()
    third = fit(spec(epochs=2), other, out, experiment_file, device="cpu")
    err = capsys.readouterr().err
    assert "ignoring" in err and "missing: " in err and "epoch 1:" in err
    assert third["test_accuracy"] == again["test_accuracy"]  # trained afresh: the same numbers


def test_a_re_evaluation_whose_mlflow_run_was_deleted_logs_everything_into_a_new_run(tmp_path, tiny_data,
                                                                                      experiment_file):
    from finebench.train import fit

    out = tmp_path / "run"
    first = fit(spec(epochs=2), tiny_data, out, experiment_file, device="cpu")
    client, _ = runs_of(experiment_file)
    client.delete_run(first["mlflow_run_id"])
    (out / "metrics.json").unlink()
    again = fit(spec(epochs=2), tiny_data, out, experiment_file, device="cpu")  # re-evaluates finished.pt
    assert again["train_seconds"] == first["train_seconds"] and again["mlflow_run_id"] != first["mlflow_run_id"]
    run = client.get_run(again["mlflow_run_id"])
    assert "finebench.resumed_after_epoch" not in run.data.tags and run.data.metrics["n_params"] == first["n_params"]
    assert [m.step for m in client.get_metric_history(run.info.run_id, "val_accuracy")] == [1, 2]


def test_checkpoint_of_another_spec_is_ignored(tmp_path, tiny_data, experiment_file):
    from finebench.train import fit

    out = tmp_path / "run"
    fit(spec(epochs=2, keep_checkpoint=True), tiny_data, out, experiment_file, device="cpu")
    full = (out / "checkpoint.pt").stat().st_size
    m = fit(spec(epochs=2, lr=0.001), tiny_data, out, experiment_file, device="cpu")  # hyperparameter changed
    assert m["status"] == "FINISHED" and m["best_epoch"] and not (out / "checkpoint.pt").exists()
    # what a finished run keeps: the best weights and the state, not the optimizer's moments (AdamW: 2 x weights)
    assert (out / "finished.pt").stat().st_size < 0.6 * full
    _, runs = runs_of(experiment_file)
    current = [r for r in runs if r.data.tags["finebench.superseded"] == "false"]
    assert [r.info.run_id for r in current] == [m["mlflow_run_id"]] and len(runs) == 2


def test_divergence_fails_the_run_with_epoch_and_step(tmp_path, tiny_data, experiment_file):
    from finebench.train import Diverged, fit

    with pytest.raises(Diverged, match=r"non-finite loss at epoch \d+, step \d+") as err:
        fit(spec(epochs=3, lr=1e6), tiny_data, tmp_path / "nan", experiment_file, device="cpu")
    assert not (tmp_path / "nan" / "metrics.json").exists()
    _, runs = runs_of(experiment_file)
    assert [r.info.status for r in runs] == ["FAILED"] and "non-finite loss" in runs[0].data.tags["error"]
    assert err.value.mlflow_run_id == runs[0].info.run_id  # a diverged trial's record names it: nested in its search


def test_ghost_runs_are_ended_at_the_end_of_the_pipeline(tmp_path, experiment_file):
    from mlflow.tracking import MlflowClient

    from finebench.tracking import end_ghost_runs

    info = json.loads(experiment_file.read_text())
    client = MlflowClient(info["tracking_uri"])
    ghost = client.create_run(info["experiment_id"], run_name="tf/crnn/seed0").info.run_id
    live = client.create_run(info["experiment_id"], run_name="tf/crnn/seed0").info.run_id
    other = client.create_run(info["experiment_id"], run_name="other/model/seed0").info.run_id
    assert end_ghost_runs(client, info["experiment_id"], {"tf/crnn/seed0": live}) == [ghost]
    assert client.get_run(ghost).info.status == "KILLED"
    assert client.get_run(other).info.status == "RUNNING"  # not this pipeline's: left alone


def test_metrics_json_is_strict_json(tmp_path, tiny_data, experiment_file):
    from finebench.train import fit

    fit(spec(epochs=1), tiny_data, tmp_path / "r", experiment_file, device="cpu")
    text = (tmp_path / "r" / "metrics.json").read_text()
    json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))
    assert os.path.getsize(tmp_path / "r" / "metrics.json") > 100


def test_a_diverged_trial_is_recorded_and_nested_under_its_search(tmp_path, tiny_data, experiment_file):
    """train-trials: a trial whose loss goes non-finite is a result (DIVERGED, no score), not a failed job; the
    selection then files its FAILED MLflow run under the search's parent like every other trial."""
    from mlflow.tracking import MlflowClient

    identity = {"space": {"lr": {"loguniform": [1e-4, 1e6]}}, "budget": 2, "sampler": "random", "seed": 0}
    trials = [{**spec(epochs=1, lr=lr), "trial": k, "seed": 1000 + k, "tuned_values": {"lr": lr}}
              for k, lr in enumerate((0.003, 1e6))]
    chunk, selected = tmp_path / "chunk.json", tmp_path / "selected.json"
    base = [sys.executable, "-m", "finebench"]
    subprocess.run(base + ["train-trials", "--specs", json.dumps(trials), "--data", str(tiny_data),
                           "--experiment-file", str(experiment_file), "--out-root", str(tmp_path / "tune"),
                           "--out", str(chunk), "--device", "cpu"], check=True, capture_output=True)
    ok, bad = json.loads(chunk.read_text())
    assert ok["status"] == "FINISHED" and bad["status"] == "DIVERGED" and bad["val_score"] is None
    assert "non-finite loss" in bad["error"]
    subprocess.run(base + ["select-trials", str(chunk), "--identity", json.dumps(identity), "--experiment-file",
                           str(experiment_file), "--out", str(selected)], check=True, capture_output=True)
    sel = json.loads(selected.read_text())
    assert sel["trial"] == 0 and sel["diverged"] == 1
    client = MlflowClient(json.loads(experiment_file.read_text())["tracking_uri"])
    failed = client.get_run(bad["mlflow_run_id"])
    assert failed.info.status == "FAILED" and failed.data.tags["mlflow.parentRunId"] == sel["mlflow_parent_run_id"]
    assert client.get_run(ok["mlflow_run_id"]).data.tags["mlflow.parentRunId"] == sel["mlflow_parent_run_id"]
