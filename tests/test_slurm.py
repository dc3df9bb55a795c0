"""The Slurm profile against a real Slurm cluster, logging to the shared MLflow tracking server on PostgreSQL.

Brings up a single-node Slurm cluster from Debian packages (tests/cluster/local_slurm.py: munged, MariaDB + slurmdbd,
slurmctld, slurmd), starts `python -m finebench tracking-server` (PostgreSQL + mlflow server with authentication) on
all interfaces, runs config/smoke.yaml with `--workflow-profile workflow/profiles/slurm` against both — the jobs get
the server's credentials file through FINEBENCH_TRACKING_CREDENTIALS, which sbatch passes on — and compares with a
local run of the same config.
Everything started here is stopped here, by pid. Needs root and apt-get (as in CI); skipped otherwise with the
reason, or failed when FINEBENCH_REQUIRE_SLURM=1 (`make test-slurm`).
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from cluster.local_slurm import ACCOUNT, LocalSlurm, Unavailable, free_port, pid_alive, unavailable_reason
from finebench import config as fbconfig
from finebench.tasks import TASK_TYPES

# Columns of leaderboard.csv that are measurements of this machine's speed, not results.
MEASURED = re.compile(r"seconds|per_s|latency|memory")
TIMEOUT = 1200


def _unavailable(reason: str):
    if os.environ.get("FINEBENCH_REQUIRE_SLURM") == "1":
        pytest.fail(f"cannot run the local Slurm cluster: {reason}")
    pytest.skip(f"local Slurm cluster not possible here: {reason}")


@pytest.fixture(scope="module")
def say(pytestconfig):
    """Print a measurement past pytest's capture (the README quotes these lines)."""
    capture = pytestconfig.pluginmanager.getplugin("capturemanager")

    def say(text: str) -> None:
        with capture.global_and_fixture_disabled():
            print(f"\n[test_slurm] {text}", flush=True)

    return say


# -- without a cluster: the GPU decision and what the profile asks Slurm for (dry runs) ------------------------------
@pytest.mark.parametrize("device, gpus_per_job, local, cluster", [
    ("cuda", None, 1, 1), ("cpu", None, 0, 0), ("auto", None, 1, 0), ("auto", 1, 1, 1), ("cuda", 2, 2, 2),
    ("auto", 0, 0, 0),
])
def test_gpus_per_training_job(device, gpus_per_job, local, cluster):
    from finebench.cluster import train_gpus

    cfg = {"device": device, "gpus_per_job": gpus_per_job}
    assert (train_gpus(cfg, cluster=False), train_gpus(cfg, cluster=True)) == (local, cluster)


def _planned_resources(repo, tmp_path, *args, env=None) -> dict[str, list[dict]]:
    """{rule: [resources of each planned job]} from a dry run."""
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-n", "-s", str(repo / "Snakefile"), "--directory",
                           str(tmp_path), "--configfile", str(repo / "config" / "smoke.yaml"), *args],
                          capture_output=True, text=True, env={**os.environ, **(env or {})})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = {}
    for rule, res in re.findall(r"^rule (\w+):\n(?:    .*\n)*?    resources: (.*)$", proc.stdout + proc.stderr, re.M):
        out.setdefault(rule, []).append(dict(kv.split("=", 1) for kv in res.split(", ")))
    return out


def _training_plan(plan: dict) -> dict:
    """The training jobs of every task type (rules train_classification, train_superres …) as "train"."""
    return {**plan, "train": [job for tt in TASK_TYPES.values() for job in plan.pop(tt.rule, [])]}


@pytest.mark.slow  # four dry runs
def test_slurm_profile_resources(repo, tmp_path):
    profile = ["--workflow-profile", str(repo / "workflow/profiles/slurm")]
    env = {"FINEBENCH_SLURM_PARTITION": "short", "FINEBENCH_SLURM_ACCOUNT": "lab42"}
    plan = _training_plan(_planned_resources(repo, tmp_path, *profile, env=env))
    smoke = yaml.safe_load((repo / "config" / "smoke.yaml").read_text())
    assert len(plan["train"]) == len(fbconfig.runs(fbconfig.with_defaults(smoke)))  # every task type's runs
    assert len(plan["prepare_data"]) == len(smoke["tasks"])
    for job in plan["train"]:  # device: auto on a CPU partition: no GPU asked for
        assert job["gpu"] == "0" and job["slurm_partition"] == "short" and job["slurm_account"] == "lab42"
        assert job["runtime"] == "720" and job["mem_mb"] == "16000"
    for job in plan["prepare_data"]:
        assert job["slurm_partition"] == "short" and job["runtime"] == "120" and "gpu" not in job
    # a GPU partition for training only, and gpus_per_job: 1 (device: auto)
    plan = _training_plan(_planned_resources(repo, tmp_path, *profile, "--config", "gpus_per_job=1",
                                             env={**env, "FINEBENCH_SLURM_TRAIN_PARTITION": "gpu",
                                                  "FINEBENCH_SLURM_GPU_MODEL": "h100",
                                                  "FINEBENCH_SLURM_CONSTRAINT": "gpu80g"}))
    assert {(j["gpu"], j["slurm_partition"]) for j in plan["train"]} == {("1", "gpu")}
    # one GPU model for every training job (#33 item 9: cost columns measured alike), pinned from the environment
    assert {(j["gpu_model"], j["constraint"]) for j in plan["train"]} == {("h100", "gpu80g")}
    assert {j["slurm_partition"] for j in plan["prepare_data"]} == {"short"}
    assert not any("gpu_model" in j or "constraint" in j for j in plan["prepare_data"])
    # device: cuda asks for a GPU without gpus_per_job; without the variables no partition/account is forced
    plan = _training_plan(_planned_resources(repo, tmp_path, *profile, "--config", "device=cuda"))
    assert {j["gpu"] for j in plan["train"]} == {"1"} and not any("slurm_partition" in j for j in plan["train"])
    # locally, device: auto still takes one GPU slot per training job (`--resources gpu=N`)
    plan = _training_plan(_planned_resources(repo, tmp_path, "--cores", "2"))
    assert {j["gpu"] for j in plan["train"]} == {"1"}


# -- on a real single-node Slurm cluster -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def slurm(say):
    reason = unavailable_reason()
    if reason:
        _unavailable(reason)
    root = Path(tempfile.mkdtemp(prefix="finebench-slurm-", dir="/tmp"))
    cluster = LocalSlurm(root)
    try:
        t0 = time.monotonic()
        cluster.start()
        say(f"Slurm cluster up in {time.monotonic() - t0:.1f} s (packages included) at {root}")
    except Unavailable as exc:
        cluster.stop()
        _unavailable(str(exc))
    try:
        yield cluster
    finally:
        stopped = cluster.stop()
        say(f"stopped {', '.join(stopped)}")
        for name, proc in cluster.procs.items():
            assert proc.poll() is not None, f"{name} (pid {proc.pid}) still running"
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def tracking_server(repo, slurm, say):
    """`python -m finebench tracking-server start` on all interfaces, as on a login node (jobs use the host name)."""
    root = Path(tempfile.mkdtemp(prefix="finebench-mlflow-", dir="/tmp"))
    root.chmod(0o755)  # the postgres user must reach its folders inside
    cmd = [sys.executable, "-m", "finebench", "tracking-server"]
    where = ["--dir", str(root)]
    t0 = time.monotonic()
    proc = subprocess.run([*cmd, "start", *where, "--host", "0.0.0.0", "--port", str(free_port()),
                           "--pg-port", str(free_port())], capture_output=True, text=True, cwd=repo)
    state_file = root / "server.json"
    try:
        assert proc.returncode == 0, f"tracking-server start failed:\n{proc.stdout}\n{proc.stderr}"
        uri = re.search(r"^tracking_uri: (\S+)$", proc.stdout, re.M).group(1)
        state = json.loads(state_file.read_text())
        assert uri == state["tracking_uri"] and uri.startswith("http://")
        assert state["auth"] == "basic-auth" and Path(state["credentials"]) == root / "credentials"
        say(f"tracking server {uri} up in {time.monotonic() - t0:.1f} s")
        yield state
    finally:
        pids = {f: int(f.read_text()) for f in (root / "mlflow.pid", root / "postgres.pid") if f.is_file()}
        stop = subprocess.run([*cmd, "stop", *where], capture_output=True, text=True, cwd=repo)
        assert stop.returncode == 0, stop.stderr
        for f, pid in pids.items():
            assert not pid_alive(pid), f"{f.name}: pid {pid} still running after stop"
        shutil.rmtree(root, ignore_errors=True)


def _smoke_config(repo: Path, work: Path, **overrides) -> Path:
    cfg = yaml.safe_load((repo / "config" / "smoke.yaml").read_text())
    cfg.update(overrides)
    work.mkdir(parents=True, exist_ok=True)
    path = work / "smoke.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def _snakemake(repo: Path, work: Path, configfile: Path, *args: str, env: dict | None = None) -> tuple[str, float]:
    cmd = [sys.executable, "-m", "snakemake", "-s", str(repo / "Snakefile"), "--directory", str(work),
           "--configfile", str(configfile), *args]
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, **(env or {})})
    try:
        out, _ = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired as err:
        proc.send_signal(signal.SIGTERM)  # the Slurm executor cancels its jobs on SIGTERM (not promptly on SIGINT)
        out, _ = proc.communicate(timeout=120)
        raise AssertionError(f"snakemake did not finish in {TIMEOUT} s:\n{out[-6000:]}") from err
    seconds = time.monotonic() - t0
    if proc.returncode != 0:
        raise AssertionError(f"snakemake failed ({proc.returncode}):\n{out[-8000:]}")
    return out, seconds


@pytest.fixture(scope="module")
def workdirs(request, say):
    """Work folders of the runs below, kept (and named) when a test failed: the Slurm jobs' logs are in them."""
    root = Path(tempfile.mkdtemp(prefix="finebench-slurm-runs-", dir="/tmp"))
    failed_before = request.session.testsfailed
    yield root
    if request.session.testsfailed > failed_before:
        say(f"kept the runs' folders for inspection: {root}")
    else:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def local_run(repo, workdirs, say):
    work = workdirs / "local"
    _, seconds = _snakemake(repo, work, _smoke_config(repo, work), "--cores", "2")
    say(f"smoke suite, local (--cores 2): {seconds:.0f} s")
    return work, seconds


def _slurm_env(slurm, **extra) -> dict:
    env = {**slurm.env, "FINEBENCH_SLURM_ACCOUNT": ACCOUNT, "FINEBENCH_SLURM_PARTITION": "cpu", **extra}
    for k in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "FINEBENCH_TRACKING_CREDENTIALS"):
        env.setdefault(k, "")  # nothing from the test's own environment: the jobs get only what `extra` gives
    return env


def _server_credentials(tracking_server) -> dict:
    from finebench.server import read_credentials

    creds = read_credentials(tracking_server["credentials"])
    return {"MLFLOW_TRACKING_USERNAME": creds["username"], "MLFLOW_TRACKING_PASSWORD": creds["password"]}


@pytest.fixture(scope="module")
def slurm_run(repo, slurm, tracking_server, local_run, workdirs, say):
    work = workdirs / "slurm"
    config = _smoke_config(repo, work, tracking_uri=tracking_server["tracking_uri"])
    # the work folder is not the server's clone: the credentials file is named, as the profile's header says
    out, seconds = _snakemake(repo, work, config, "--workflow-profile", str(repo / "workflow/profiles/slurm"),
                              env=_slurm_env(slurm, FINEBENCH_TRACKING_CREDENTIALS=tracking_server["credentials"]))
    assert "Using workflow specific profile" in out
    run_id = re.search(r"SLURM run ID: (\S+)", out).group(1)
    jobs = _sacct(slurm, run_id)
    say(f"smoke suite through Slurm: {seconds:.0f} s, {len(jobs)} Slurm jobs "
                  f"(local: {local_run[1]:.0f} s)")
    return work, jobs


def _sacct(slurm, run_id: str) -> list[dict]:
    fields = ["JobID", "JobName", "Partition", "Account", "State", "ExitCode", "AllocTRES", "Comment"]
    out = slurm.run("sacct", "-X", "-P", "-n", "-S", "2000-01-01", "--name", run_id,
                    "-o", ",".join(fields)).stdout
    return [dict(zip(fields, line.split("|"))) for line in out.splitlines() if line.strip()]


def _train_outputs(work: Path) -> list[str]:
    return sorted(str(p.parent.relative_to(work / "results" / "runs"))
                  for p in (work / "results" / "runs").glob("*/*/seed*/metrics.json"))


@pytest.mark.slow
def test_every_training_and_preparation_job_ran_as_a_slurm_job(slurm_run, local_run):
    work, jobs = slurm_run
    cfg = yaml.safe_load((work / "smoke.yaml").read_text())
    rules = [j["Comment"].split("_wildcards_")[0] for j in jobs]
    n_runs = len(_train_outputs(local_run[0]))
    assert n_runs == len(fbconfig.runs(fbconfig.with_defaults(cfg)))
    # one Slurm job per training run (train_<task type>) and per task's preparation; download,
    # init_tracking and log_summary are local rules (aggregate may be either: it needs neither MLflow nor the internet)
    trains = {f"rule_{task_type.rule}" for task_type in TASK_TYPES.values()}  # train_classification, _superres, _asr
    assert sum(rules.count(name) for name in trains) == n_runs, rules
    assert rules.count("rule_prepare_data") == len(cfg["tasks"]), rules
    assert set(rules) <= trains | {"rule_prepare_data", "rule_aggregate"}, rules
    for j in jobs:
        assert j["State"] == "COMPLETED" and j["ExitCode"] == "0:0", j
        assert j["Partition"] == "cpu" and j["Account"] == ACCOUNT, j
        assert "gres/gpu" not in j["AllocTRES"], f"a CPU-partition job asked for a GPU: {j}"  # device: auto
    assert _train_outputs(work) == _train_outputs(local_run[0])


@pytest.mark.slow
def test_every_run_in_the_server_store_is_finished_in_the_experiment(slurm_run, tracking_server, say):
    work, _ = slurm_run
    cfg = yaml.safe_load((work / "smoke.yaml").read_text())
    from mlflow.entities import ViewType
    from mlflow.tracking import MlflowClient

    # the server's own store (PostgreSQL), read directly: nothing was filed anywhere else
    store = MlflowClient(tracking_server["backend_store_uri"])
    experiments = store.search_experiments(view_type=ViewType.ALL)
    runs = [r for e in experiments
            for r in store.search_runs([e.experiment_id], run_view_type=ViewType.ALL, max_results=1000)]
    exp = store.get_experiment_by_name(cfg["experiment"])
    assert {r.info.experiment_id for r in runs} == {exp.experiment_id}
    assert all(r.info.status == "FINISHED" for r in runs), [(r.info.run_name, r.info.status) for r in runs]
    training = [r for r in runs if r.data.tags.get("finebench.summary") != "true"]
    summaries = [r for r in runs if r.data.tags.get("finebench.summary") == "true"]
    assert sorted(r.info.run_name for r in training) == _train_outputs(work)  # task/model/seedN
    assert sorted(r.info.run_name for r in summaries) == sorted(f"{t}/summary" for t in cfg["tasks"])
    say(f"server store: {len(runs)} runs ({len(training)} training + {len(summaries)} summaries), "
                  f"all FINISHED in experiment {cfg['experiment']!r}")
    # artifacts went over HTTP into the server's --artifacts-destination, not into the job's working directory
    os.environ.update(_server_credentials(tracking_server))
    try:
        _check_served_artifacts(work, training, exp, tracking_server)
    finally:
        for k in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
            os.environ.pop(k, None)


def _check_served_artifacts(work, training, exp, tracking_server):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_server["tracking_uri"])
    run = next(r for r in training if r.info.run_name == "wordnet/textcnn/seed0")  # a classification run
    assert run.info.artifact_uri.startswith("mlflow-artifacts:/")
    assert {"history.csv", "spec.json", "confusion.csv"} <= {a.path for a in client.list_artifacts(run.info.run_id)}
    stored = Path(tracking_server["artifacts_destination"]) / exp.experiment_id / run.info.run_id / "artifacts"
    assert (stored / "history.csv").is_file()
    assert not (work / "results" / "mlartifacts").exists() and not (work / "results" / "mlflow.db").exists()
    metrics = json.loads((work / "results/runs/wordnet/textcnn/seed0/metrics.json").read_text())
    assert client.get_run(metrics["mlflow_run_id"]).info.run_name == "wordnet/textcnn/seed0"


@pytest.mark.slow
def test_the_server_on_all_interfaces_refuses_requests_without_credentials(slurm_run, tracking_server):
    """Called by the host name, as a compute node does: no deleting, no runs, no artifacts without the password."""
    import urllib.error
    import urllib.request

    uri = tracking_server["tracking_uri"]
    exp_id = json.loads((slurm_run[0] / "results" / "mlflow" / "experiment.json").read_text())["experiment_id"]
    for method, path, body in [("POST", "/api/2.0/mlflow/experiments/delete", {"experiment_id": exp_id}),
                               ("POST", "/api/2.0/mlflow/runs/create", {"experiment_id": exp_id}),
                               ("PUT", f"/api/2.0/mlflow-artifacts/artifacts/{exp_id}/planted.txt", "x")]:
        req = urllib.request.Request(uri + path, data=json.dumps(body).encode(), method=method,
                                     headers={"Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(req, timeout=30)
        assert err.value.code == 401, (method, path)
    from mlflow.tracking import MlflowClient

    assert MlflowClient(tracking_server["backend_store_uri"]).get_experiment(exp_id).lifecycle_stage == "active"


@pytest.mark.slow
def test_leaderboard_equals_the_local_run(slurm_run, local_run):
    boards = [pd.read_csv(w / "results" / "tables" / "leaderboard.csv") for w in (slurm_run[0], local_run[0])]
    keep = [c for c in boards[1].columns if not MEASURED.search(c)]
    assert "test_accuracy_mean" in keep and "test_macro_f1_mean" in keep and "params" in keep
    assert list(boards[0].columns) == list(boards[1].columns)
    pd.testing.assert_frame_equal(boards[0][keep], boards[1][keep], check_exact=True)


@pytest.mark.slow
def test_a_gpu_partition_job_asks_for_a_gpu(repo, slurm, slurm_run, workdirs):
    """device: auto on a GPU partition (gpus_per_job: 1): the training job gets `--gpus=1` on the `gpu` partition
    (the test node's GPU is a gres placeholder, so training runs on the CPU and must give the same numbers)."""
    work = workdirs / "gpu"
    smoke = yaml.safe_load((repo / "config" / "smoke.yaml").read_text())
    config = _smoke_config(repo, work, tasks={"wordnet": smoke["tasks"]["wordnet"]},
                           models={"textcnn": smoke["models"]["textcnn"]}, seeds=[0],
                           tracking_uri="sqlite:///results/mlflow.db")
    out, _ = _snakemake(repo, work, config, "--workflow-profile", str(repo / "workflow/profiles/slurm"),
                        "--config", "gpus_per_job=1", env=_slurm_env(slurm, FINEBENCH_SLURM_TRAIN_PARTITION="gpu"))
    jobs = {j["Comment"].split("_wildcards_")[0]: j
            for j in _sacct(slurm, re.search(r"SLURM run ID: (\S+)", out).group(1))}
    assert {"rule_prepare_data", "rule_train_classification"} <= set(jobs) <= {"rule_prepare_data",
                                                                                "rule_train_classification",
                                                                                "rule_aggregate"}
    assert (jobs["rule_train_classification"]["Partition"] == "gpu"
            and "gres/gpu=1" in jobs["rule_train_classification"]["AllocTRES"])
    assert jobs["rule_prepare_data"]["Partition"] == "cpu" and "gres/gpu" not in jobs["rule_prepare_data"]["AllocTRES"]
    got = json.loads((work / "results/runs/wordnet/textcnn/seed0/metrics.json").read_text())
    want = json.loads((slurm_run[0] / "results/runs/wordnet/textcnn/seed0/metrics.json").read_text())
    assert got["device"] == "cpu" and got["test_accuracy"] == want["test_accuracy"]


@pytest.mark.slow
def test_a_training_job_past_its_time_limit_is_resubmitted_and_resumes(repo, slurm, workdirs, say):
    """Slurm kills a training job at its time limit (TIMEOUT); the profile's `retries` resubmits it and training
    continues after its last finished epoch (checkpoint.pt) — or, when an attempt finished training but was still
    marked TIMEOUT, only re-evaluates (finished.pt) — until the run is done, all in one MLflow run."""
    profile = yaml.safe_load((repo / "workflow/profiles/slurm/config.yaml").read_text())
    assert profile["retries"] >= 1
    work = workdirs / "timeout"
    cfg = yaml.safe_load((repo / "config" / "smoke.yaml").read_text())
    typefaces = {**cfg["tasks"]["typefaces"], "train_per_class": 120}
    config = _smoke_config(repo, work, seeds=[0], tasks={"typefaces": typefaces},
                           models={"crnn": cfg["models"]["crnn"]},
                           training={**cfg["training"], "epochs": 250, "checkpoint_minutes": 0})
    # ~90 s of training under a 1-minute limit; more attempts than the profile's 2 retries, so that a machine slowed
    # down by other tests still gets there (each attempt trains ~40-60 s)
    out, seconds = _snakemake(repo, work, config, "--workflow-profile", str(repo / "workflow/profiles/slurm"),
                              "--set-resources", "train_classification:runtime=1", "--retries", "6",
                              env=_slurm_env(slurm))
    run = work / "results" / "runs" / "typefaces" / "crnn" / "seed0"
    log = (work / "results" / "logs" / "train" / "typefaces" / "crnn" / "seed0.log").read_text()
    last = re.search(r"resuming after epoch (\d+)|trained earlier", log)  # the last attempt's log
    assert last, log[-3000:]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["status"] == "FINISHED" and len(pd.read_csv(run / "history.csv")) == 250
    assert not list(run.glob("*.pt"))  # checkpoints removed once the workflow succeeded
    states = [j["State"].split()[0] for j in _sacct(slurm, re.search(r"SLURM run ID: (\S+)", out).group(1))
              if j["Comment"].startswith("rule_train")]
    assert states[-1] == "COMPLETED" and len(states) >= 2 and set(states[:-1]) == {"TIMEOUT"}, states

    from mlflow.tracking import MlflowClient

    info = json.loads((work / "results" / "mlflow" / "experiment.json").read_text())
    assert info["tracking_uri"] == "sqlite:///results/mlflow.db"  # relative to the work folder
    client = MlflowClient(f"sqlite:///{work / 'results' / 'mlflow.db'}")
    runs = client.search_runs([info["experiment_id"]], filter_string="attributes.run_name = 'typefaces/crnn/seed0'")
    assert [r.info.run_id for r in runs] == [metrics["mlflow_run_id"]] and runs[0].info.status == "FINISHED"
    steps = {m.step for m in client.get_metric_history(runs[0].info.run_id, "val_accuracy")}
    assert steps == set(range(1, 251))  # every epoch logged once into the one run, across the attempts
    say(f"time limit 1 min, 250 epochs: Slurm states {states}, the last attempt: {last.group(0)} ({seconds:.0f} s)")
