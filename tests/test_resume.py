"""Killed jobs resume where they stopped; one current MLflow run per (task, model, seed); divergence fails loudly."""

import contextlib
import json
import os
import re
import shlex
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


DEFAULT_INTERVAL = config.TRAINING_DEFAULTS["checkpoint_minutes"]


def spec(epochs=5, lr=0.003, **training):
    """A tiny run (epochs of a tenth of a second) that saves its checkpoint after every epoch, unless
    ``checkpoint_minutes`` says otherwise (DEFAULT_INTERVAL: nothing saved before finished.pt)."""
    cfg = config.with_defaults({
        "experiment": "t", "seeds": [0], "tasks": {"tf": {"dataset": "typefaces"}},
        "training": {"epochs": epochs, "batch_size": 8, "lr": lr, "checkpoint_minutes": 0, **training},
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


def wait_for_match(path, pattern, proc, timeout=600) -> re.Match:
    t0 = time.time()
    while time.time() - t0 < timeout:
        m = path.is_file() and re.search(pattern, path.read_text())
        if m:
            return m
        if proc.poll() is not None:
            raise AssertionError(f"job ended early:\n{path.read_text()}")
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {pattern!r}")


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


# -- when checkpoints are written (finebench.checkpoint): an interval, Slurm's warning signal, the end -----------------

LONG = 16  # epochs of the runs interrupted between two saves


@pytest.fixture(scope="module")
def uninterrupted(tiny_data, tmp_path_factory):
    """A run of LONG epochs at the default interval (5 min: nothing saved before finished.pt), never interrupted."""
    from finebench.tracking import init_experiment

    root = tmp_path_factory.mktemp("uninterrupted")
    exp = root / "mlflow" / "experiment.json"
    init_experiment(f"sqlite:///{root}/mlflow.db", "tests", root / "artifacts", exp)
    s = spec(epochs=LONG, checkpoint_minutes=DEFAULT_INTERVAL)
    subprocess.run(train_cmd(s, tiny_data, exp, root / "run"), check=True, capture_output=True)
    return root / "run"


def resumed_equals_uninterrupted(s, data, experiment_file, out, saved, uninterrupted) -> dict:
    """Rerun the killed job in ``out``: it continues after epoch ``saved`` and ends as the uninterrupted run did."""
    done = subprocess.run(train_cmd(s, data, experiment_file, out), check=True, capture_output=True, text=True)
    assert f"resuming after epoch {saved} " in done.stderr, done.stderr
    got, want = (json.loads((d / "metrics.json").read_text()) for d in (out, uninterrupted))
    assert {k: got[k] for k in STABLE} == {k: want[k] for k in STABLE}
    assert (out / "history.csv").read_text().splitlines()[-1].split(",")[:5] == \
        (uninterrupted / "history.csv").read_text().splitlines()[-1].split(",")[:5]
    assert not (out / "checkpoint.pt").exists() and (out / "finished.pt").is_file()
    return got


@pytest.mark.slow
@pytest.mark.parametrize("how", ["SIGUSR1 to the trainer", "SIGURG to every process of the job step"])
def test_a_signal_saves_after_its_epoch_training_carries_on_and_the_rerun_resumes_from_it(
        how, tmp_path, tiny_data, experiment_file, uninterrupted):
    """Slurm's warning before the time limit (workflow/profiles/slurm: --signal=URG@120, which slurmstepd sends to
    every process of the job step: Snakemake, its shell, the trainer; by hand: kill -USR1 PID). The trainer saves at
    the end of the epoch and trains on — its parents too; killed later (at the limit), its rerun resumes from that
    save and ends with the uninterrupted run's numbers."""
    import torch

    s, out, log = spec(epochs=LONG, checkpoint_minutes=DEFAULT_INTERVAL), tmp_path / "run", tmp_path / "run.log"
    cmd, name = train_cmd(s, tiny_data, experiment_file, out), how.split()[0]
    if name == "SIGURG":  # a Python parent without handlers (as Snakemake) and a shell above the trainer, one group
        cmd = [sys.executable, "-c", "import subprocess, sys; sys.exit(subprocess.call(sys.argv[1:]))",
               "bash", "-c", shlex.join(cmd)]
    with open(log, "w") as f:
        proc = subprocess.Popen(cmd, stderr=f, stdout=f, start_new_session=True)
    try:
        wait_for(log, "epoch 1:", proc)
        if name == "SIGURG":
            os.killpg(proc.pid, signal.SIGURG)  # as slurmstepd signals a step's processes (proctrack/cgroup: all)
        else:
            proc.send_signal(signal.SIGUSR1)
        saved = int(wait_for_match(log, rf"checkpoint after epoch (\d+) on {name}", proc).group(1))
        wait_for(log, f"epoch {saved + 2}:", proc)  # trained on, the parents alive; nothing saved since (5 min)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # the time limit; this test's own process group
        proc.wait()
    assert not (out / "metrics.json").exists()
    size = (out / "checkpoint.pt").stat().st_size
    assert torch.load(out / "checkpoint.pt", weights_only=True)["state"]["epoch"] == saved

    got = resumed_equals_uninterrupted(s, tiny_data, experiment_file, out, saved, uninterrupted)
    # the bytes of the run's saves, both processes: the signalled checkpoint, then the rerun's finished.pt
    assert got["checkpoint_bytes_written"] == size + (out / "finished.pt").stat().st_size


@pytest.mark.slow
def test_a_kill_9_between_two_interval_saves_resumes_from_the_last_one(tmp_path, tiny_data, experiment_file,
                                                                        uninterrupted):
    """checkpoint_minutes: a save every ~3 epochs on this machine; the job is stopped (SIGSTOP: nothing moves while
    it is looked at) at a moment when epochs have finished since the last save, and killed with SIGKILL. The rerun
    continues after the last saved epoch — the later ones are trained again — and ends with the numbers of an
    uninterrupted run at the default interval."""
    import torch

    rows = (uninterrupted / "history.csv").read_text().splitlines()
    col = rows[0].split(",").index("epoch_seconds")
    epoch_seconds = sum(float(r.split(",")[col]) for r in rows[1:]) / (len(rows) - 1)
    s = spec(epochs=LONG, checkpoint_minutes=3 * epoch_seconds / 60)
    out, log = tmp_path / "run", tmp_path / "run.log"
    with open(log, "w") as f:
        proc = subprocess.Popen(train_cmd(s, tiny_data, experiment_file, out), stderr=f, stdout=f)
    try:
        while True:
            assert proc.poll() is None, f"the run ended before a kill between two saves:\n{log.read_text()}"
            if (out / "checkpoint.pt").is_file():
                proc.send_signal(signal.SIGSTOP)
                os.waitpid(proc.pid, os.WUNTRACED)  # stopped: the files and the log stay as they are now
                saved = torch.load(out / "checkpoint.pt", weights_only=True)["state"]["epoch"]
                last = max(int(e) for e in re.findall(r"seed0 epoch (\d+):", log.read_text()))
                if last > saved:  # finished epochs since the last save: the kill loses them
                    break
                proc.send_signal(signal.SIGCONT)
            time.sleep(0.02)
    finally:
        proc.kill()
        proc.wait()
    assert 1 <= saved < last < LONG and not (out / "metrics.json").exists()
    resumed_equals_uninterrupted(s, tiny_data, experiment_file, out, saved, uninterrupted)


def test_the_save_schedule_interval_signals_and_the_end(capsys):
    from finebench.checkpoint import SaveSchedule

    now = [0.0]
    every = SaveSchedule(1, clock=lambda: now[0])
    now[0] = 59.0
    assert every.due(1, 10) is None
    now[0] = 60.0
    assert every.due(2, 10) == "1 min since the last save"
    every.saved("tf/crnn/seed0", 2, 2**20)
    now[0] = 100.0
    assert every.due(3, 10) is None
    os.kill(os.getpid(), signal.SIGUSR1)  # handled (not the default: ending the process); saved at the epoch's end
    assert every.due(3, 10) == "SIGUSR1"
    every.saved("tf/crnn/seed0", 3, 2**20)
    assert "tf/crnn/seed0: checkpoint after epoch 3 on SIGUSR1" in capsys.readouterr().err
    assert every.due(4, 10) is None  # the request was consumed
    assert every.due(10, 10) is None  # the last epoch: finished.pt follows in any case
    assert SaveSchedule(1, keep=True).due(10, 10) == "the last epoch"  # keep_checkpoint: the whole checkpoint
    assert SaveSchedule(0).due(1, 10) == "every epoch"


def test_checkpoints_hold_the_best_weights_once_and_metrics_count_their_bytes(tmp_path, tiny_data, experiment_file,
                                                                             monkeypatch):
    """Best weights: kept in memory (CPU, no optimizer state) and written into a checkpoint only when they are not the
    model's own there. Results are those of a run saved at the default interval; the report takes the new field."""
    import torch

    import finebench.train as train_mod
    from finebench.report import aggregate

    real, seen = train_mod.save_checkpoint, []

    def recorded(job, path, finished=False):
        size = real(job, path, finished)
        ckpt = torch.load(path, weights_only=True)
        seen.append((ckpt["state"]["epoch"], ckpt["state"]["best"][1], ckpt["best_is_model"],
                     ckpt["state"]["best_state"] is None, "optimizer" in ckpt, size, path.stat().st_size))
        if ckpt["best_is_model"]:  # loaded back, the best weights are the model's
            job2 = train_mod.set_up(job.spec, tiny_data, "cpu")
            assert train_mod.load_checkpoint(job2, path)
            assert all(torch.equal(v, job.state["best_state"][k]) for k, v in job2.state["best_state"].items())
        return size

    monkeypatch.setattr(train_mod, "save_checkpoint", recorded)
    every = train_mod.fit(spec(epochs=3), tiny_data, tmp_path / "every", experiment_file,
                          device="cpu")
    # the last epoch's whole checkpoint is not written: finished.pt follows at once
    assert [s[0] for s in seen] == [1, 2, 3] and [s[4] for s in seen] == [True, True, False]
    for epoch, best, best_is_model, no_copy, _full, size, on_disk in seen[:-1]:
        assert best_is_model == (best == epoch) == no_copy and size == on_disk
    assert any(s[2] for s in seen[:-1]) and not all(s[2] for s in seen[:-1])  # both cases met (epoch 2 is worse)
    assert every["checkpoint_bytes_written"] == sum(s[5] for s in seen)
    print(f"\ncheckpoint bytes written, 3 epochs, every epoch: {every['checkpoint_bytes_written']:,}")

    seen.clear()
    default = train_mod.fit(spec(epochs=3, checkpoint_minutes=DEFAULT_INTERVAL), tiny_data, tmp_path / "default",
                            experiment_file, device="cpu")
    assert [s[0] for s in seen] == [3] and not seen[0][4]  # finished.pt only
    assert {k: default[k] for k in STABLE} == {k: every[k] for k in STABLE}
    assert default["checkpoint_bytes_written"] == (tmp_path / "default" / "finished.pt").stat().st_size
    print(f"checkpoint bytes written, 3 epochs, every 5 min: {default['checkpoint_bytes_written']:,}")

    tables = aggregate([tmp_path / "default" / "metrics.json", tmp_path / "every" / "metrics.json"], tmp_path / "t")
    assert "checkpoint_bytes_written" in tables["runs"] and (tmp_path / "t" / "leaderboard.md").is_file()
