"""The shared tracking server (`python -m finebench tracking-server`, src/finebench/server.py) has authentication.

A real server (PostgreSQL + `mlflow server --app-name basic-auth`) is started once for the module in
WORK/results/tracking-server, as `make tracking-server` does in a clone: without credentials every write is refused
with 401; the credentials file (0600) lets a client log a run; a finebench training job run in WORK finds it by
itself and logs as before; a job elsewhere is told how to authenticate. The server is stopped by its pids at the end.
Needs PostgreSQL's server programs (installed with apt-get when this is root, as `make server-deps` does); skipped
otherwise with the reason. The checks of `use_credentials` and of `--no-auth` need no server.
"""

import base64
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from cluster.local_slurm import free_port, pid_alive
from finebench import config
from finebench.errors import FinebenchError
from finebench.server import CLIENT_ENV, CREDENTIALS_ENV, TrackingServer, read_credentials, use_credentials

CMD = [sys.executable, "-m", "finebench"]


@pytest.fixture
def clean_env(monkeypatch):
    """No credentials in the environment, and whatever use_credentials sets is undone after the test."""
    for k in (*CLIENT_ENV, CREDENTIALS_ENV):
        monkeypatch.setenv(k, "")
        monkeypatch.delenv(k)
    return monkeypatch


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in (*CLIENT_ENV, CREDENTIALS_ENV)}
    return {**env, **extra}


# -- no server needed ---------------------------------------------------------------------------------------------
def _credentials_file(folder: Path, port: int = 5000, hosts: str = "127.0.0.1,localhost,login1") -> Path:
    path = folder / "results" / "tracking-server" / "credentials"
    path.parent.mkdir(parents=True)
    path.write_text(f"[mlflow]\nmlflow_tracking_username = admin\nmlflow_tracking_password = s3cret-s3cret\n\n"
                    f"[finebench]\nport = {port}\nhosts = {hosts}\n")
    return path


def test_credentials_found_in_the_working_directory_only_for_their_own_server(tmp_path, clean_env):
    _credentials_file(tmp_path)
    clean_env.chdir(tmp_path)
    for uri in ("sqlite:///results/mlflow.db", "http://otherhost:5000", "http://127.0.0.1:5001"):
        assert use_credentials(uri) is None and not any(os.environ.get(k) for k in CLIENT_ENV), uri
    assert use_credentials("http://login1:5000/") == Path("results/tracking-server/credentials")
    assert (os.environ["MLFLOW_TRACKING_USERNAME"],
            os.environ["MLFLOW_TRACKING_PASSWORD"]) == ("admin", "s3cret-s3cret")


def test_credentials_named_by_the_environment_and_user_set_credentials_win(tmp_path, clean_env):
    path = _credentials_file(tmp_path, hosts="login1")
    clean_env.setenv(CREDENTIALS_ENV, str(path))  # named explicitly: used for whatever host the config names
    assert use_credentials("http://10.1.2.3:5000") == path and os.environ["MLFLOW_TRACKING_PASSWORD"] == "s3cret-s3cret"
    clean_env.setenv("MLFLOW_TRACKING_USERNAME", "alice")
    clean_env.setenv("MLFLOW_TRACKING_PASSWORD", "alices-password")
    assert use_credentials("http://login1:5000") is None and os.environ["MLFLOW_TRACKING_PASSWORD"] == "alices-password"
    clean_env.delenv("MLFLOW_TRACKING_USERNAME")
    clean_env.delenv("MLFLOW_TRACKING_PASSWORD")
    clean_env.setenv(CREDENTIALS_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(FinebenchError, match=rf"{CREDENTIALS_ENV}=.*nowhere: no such file"):
        use_credentials("http://login1:5000")
    (tmp_path / "bad").write_text("password = x\n")
    clean_env.setenv(CREDENTIALS_ENV, str(tmp_path / "bad"))
    with pytest.raises(FinebenchError, match="not a credentials file"):
        use_credentials("http://login1:5000")


def test_no_auth_on_an_address_other_machines_reach_is_refused(tmp_path):
    for host in ("0.0.0.0", "::", "10.0.0.5", "login1"):
        with pytest.raises(FinebenchError, match=rf"--no-auth with --host {re.escape(host)}: anyone who reaches"):
            TrackingServer(tmp_path / "srv").start(host=host, auth=False)
    assert not (tmp_path / "srv").exists()  # refused before anything was created or started
    proc = subprocess.run([*CMD, "tracking-server", "start", "--dir", str(tmp_path / "srv"), "--host", "0.0.0.0",
                           "--no-auth"], capture_output=True, text=True)
    assert proc.returncode == 2 and "--no-auth with --host 0.0.0.0" in proc.stderr and not (tmp_path / "srv").exists()


def test_a_dead_server_uri_suggests_the_server_with_authentication():
    uri = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(config.ConfigError, match=rf"the MLflow server {uri} does not answer") as err:
        config.check_tracking_uri(uri, timeout=2)
    assert "make tracking-server" in str(err.value) and "0.0.0.0" not in str(err.value)


# -- a real server ------------------------------------------------------------------------------------------------
def _postgres_reason() -> str | None:
    from finebench.server import postgres_bindir

    try:
        postgres_bindir()
        return None
    except FinebenchError:
        pass
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return "PostgreSQL's server programs are missing (apt-get install postgresql; `make server-deps` as root)"
    policy = Path("/usr/sbin/policy-rc.d")  # no service starts while installing (as make server-deps)
    made = not policy.exists()
    if made:
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
    try:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "--no-install-recommends",
                                                   "postgresql"]):
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
            if proc.returncode != 0:
                return f"`{' '.join(cmd)}` failed: {proc.stderr[-1000:]}"
    finally:
        if made:
            policy.unlink()
    return None


@pytest.fixture(scope="module")
def server():
    """`tracking-server start` on 127.0.0.1 in WORK/results/tracking-server; yields WORK, the URI and the state."""
    reason = _postgres_reason()
    if reason:
        pytest.skip(reason)
    work = Path(tempfile.mkdtemp(prefix="finebench-server-", dir="/tmp"))
    work.chmod(0o755)  # the postgres user must reach its folders inside
    (work / "results").mkdir(mode=0o755)
    where = ["--dir", str(work / "results" / "tracking-server")]
    start = [*CMD, "tracking-server", "start", *where, "--port", str(free_port()), "--pg-port", str(free_port())]
    proc = subprocess.run(start, capture_output=True, text=True, cwd=work, env=_env())
    state_file = work / "results" / "tracking-server" / "server.json"
    try:
        assert proc.returncode == 0, f"tracking-server start failed:\n{proc.stdout}\n{proc.stderr}"
        uri = re.search(r"^tracking_uri: (\S+)$", proc.stdout, re.M).group(1)
        yield {"work": work, "uri": uri, "start": start, "out": proc.stderr,
               "state": json.loads(state_file.read_text())}
    finally:
        dirs = work / "results" / "tracking-server"
        pids = {f: int(f.read_text()) for f in (dirs / "mlflow.pid", dirs / "postgres.pid") if f.is_file()}
        stop = subprocess.run([*CMD, "tracking-server", "stop", *where], capture_output=True, text=True)
        assert stop.returncode == 0, stop.stderr
        for f, pid in pids.items():
            assert not pid_alive(pid), f"{f.name}: pid {pid} still running after stop"
        shutil.rmtree(work, ignore_errors=True)


def _request(uri: str, method: str, path: str, body: dict | bytes | None = None, auth: tuple[str, str] | None = None):
    """(HTTP status, body text) of one request; no MLflow client (it would send the environment's credentials)."""
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    req = urllib.request.Request(uri.rstrip("/") + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    if auth:
        req.add_header("Authorization", "Basic " + base64.b64encode(":".join(auth).encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _admin(server) -> tuple[str, str]:
    creds = read_credentials(server["state"]["credentials"])
    return creds["username"], creds["password"]


@pytest.mark.slow
def test_the_credentials_file_is_private_and_its_password_works(server):
    path = Path(server["state"]["credentials"])
    assert path == server["work"] / "results" / "tracking-server" / "credentials"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and path.stat().st_uid == os.geteuid()
    assert stat.S_IMODE((path.parent / "auth").stat().st_mode) == 0o700  # MLflow's user database
    assert server["state"]["auth"] == "basic-auth" and f"password in {path} (mode 0600)" in server["out"]
    user, password = _admin(server)
    assert len(password) >= 24 and password not in server["out"] and password not in json.dumps(server["state"])
    assert _request(server["uri"], "GET", "/api/2.0/mlflow/experiments/search?max_results=1",
                    auth=(user, password))[0] == 200
    assert _request(server["uri"], "GET", "/api/2.0/mlflow/experiments/search?max_results=1",
                    auth=(user, password + "x"))[0] == 401


@pytest.mark.slow
def test_without_credentials_nothing_can_be_deleted_created_or_uploaded(server):
    uri, admin = server["uri"], _admin(server)
    status, body = _request(uri, "POST", "/api/2.0/mlflow/experiments/create", {"name": "victim"}, auth=admin)
    assert status == 200, body
    exp_id = json.loads(body)["experiment_id"]
    assert _request(uri, "GET", "/health")[0] == 200  # what config.check_tracking_uri asks before any job
    config.check_tracking_uri(uri)
    refused = [
        ("POST", "/api/2.0/mlflow/experiments/delete", {"experiment_id": exp_id}),
        ("POST", "/api/2.0/mlflow/runs/create", {"experiment_id": exp_id}),
        ("PUT", f"/api/2.0/mlflow-artifacts/artifacts/{exp_id}/planted.txt", b"planted"),
        ("POST", "/api/2.0/mlflow/users/create", {"username": "mallory", "password": "mallory-password-1"}),
        ("GET", "/api/2.0/mlflow/experiments/search?max_results=10", None),
    ]
    for method, path, body in refused:
        status, text = _request(uri, method, path, body)
        assert status == 401, (method, path, status, text)
    status, body = _request(uri, "GET", f"/api/2.0/mlflow/experiments/get?experiment_id={exp_id}", auth=admin)
    assert json.loads(body)["experiment"]["lifecycle_stage"] == "active"
    status, body = _request(uri, "POST", "/api/2.0/mlflow/runs/search", {"experiment_ids": [exp_id]}, auth=admin)
    assert status == 200 and "runs" not in json.loads(body)
    assert not list((server["work"] / "results" / "tracking-server" / "artifacts").rglob("planted.txt"))


@pytest.mark.slow
def test_a_client_with_the_credentials_logs_a_run(server, clean_env):
    from finebench.tracking import _client

    clean_env.setenv(CREDENTIALS_ENV, server["state"]["credentials"])
    client = _client(server["uri"])
    exp_id = client.create_experiment("client-run")
    run = client.create_run(exp_id, run_name="by-hand")
    client.log_metric(run.info.run_id, "loss", 0.5)
    client.set_terminated(run.info.run_id)
    got = client.get_run(run.info.run_id)
    assert got.info.status == "FINISHED" and got.data.metrics == {"loss": 0.5}


def _prepare_tiny(out: Path) -> None:
    from finebench.data import DATASETS, prepare_task

    tiny = {**DATASETS["typefaces"].defaults, "families": ["NimbusSans", "URWGothic"], "styles_per_family": 2,
            "vocabulary": 200, "train_per_class": 16, "val_per_class": 4, "test_per_class": 6}
    prepare_task("tf", "typefaces", tiny, out)


def _spec() -> dict:
    cfg = config.with_defaults({
        "experiment": "t", "seeds": [0], "tasks": {"tf": {"dataset": "typefaces"}},
        "training": {"epochs": 2, "batch_size": 16, "lr": 0.003},
        "models": {"cnn": {"family": "cnn", "modality": "vision", "arch": "small_cnn", "channels": [8, 16]}},
    })
    return config.resolve_spec(cfg, "tf", "cnn", 0)


@pytest.mark.slow
def test_a_training_job_in_the_servers_folder_logs_to_it_by_itself(server, tmp_path):
    """As in the README: the server started from the clone, the workflow run there — nobody exports anything."""
    work, uri = server["work"], server["uri"]
    init = [*CMD, "init-tracking", "--tracking-uri", uri, "--experiment", "jobs", "--artifact-root",
            "results/mlartifacts", "--out", "results/mlflow/experiment.json"]
    # elsewhere, without credentials: refused in seconds, saying how to authenticate
    proc = subprocess.run(init, capture_output=True, text=True, cwd=tmp_path, env=_env())
    assert proc.returncode == 2, proc.stderr
    assert f"the MLflow server {uri} requires authentication and no credentials were sent" in proc.stderr
    assert f"export {CREDENTIALS_ENV}=" in proc.stderr
    # in the clone: the credentials file is found, for the init step and for the training job
    proc = subprocess.run(init, capture_output=True, text=True, cwd=work, env=_env())
    assert proc.returncode == 0, proc.stderr
    _prepare_tiny(tmp_path / "data")
    t0 = time.monotonic()
    proc = subprocess.run([*CMD, "train", "--spec", json.dumps(_spec()), "--data", str(tmp_path / "data"),
                           "--experiment-file", "results/mlflow/experiment.json", "--out", "results/runs/tf/cnn/seed0",
                           "--device", "cpu", "--no-progress"], capture_output=True, text=True, cwd=work, env=_env())
    assert proc.returncode == 0, proc.stderr[-3000:]
    seconds = time.monotonic() - t0
    metrics = json.loads((work / "results/runs/tf/cnn/seed0/metrics.json").read_text())
    from mlflow.tracking import MlflowClient

    # read back with the credentials, the way a user would: MLflow's own variables
    user, password = _admin(server)
    os.environ.update(MLFLOW_TRACKING_USERNAME=user, MLFLOW_TRACKING_PASSWORD=password)
    try:
        client = MlflowClient(uri)
        run = client.get_run(metrics["mlflow_run_id"])
        assert run.info.status == "FINISHED" and run.info.run_name == "tf/cnn/seed0"
        assert [m.step for m in client.get_metric_history(run.info.run_id, "val_accuracy")] == [1, 2]
        assert {"history.csv", "spec.json"} <= {a.path for a in client.list_artifacts(run.info.run_id)}
        assert run.info.artifact_uri.startswith("mlflow-artifacts:/")
    finally:
        for k in CLIENT_ENV:
            os.environ.pop(k, None)
    assert seconds < 120


@pytest.mark.slow
def test_a_restart_keeps_the_password_and_a_deleted_file_gets_a_new_one(server):
    """Last in the module: it restarts the module's server (which stays up, with the new password, for the rest)."""
    work, uri = server["work"], server["uri"]
    where = ["--dir", str(work / "results" / "tracking-server")]
    old = _admin(server)

    def restart():
        stop = subprocess.run([*CMD, "tracking-server", "stop", *where], capture_output=True, text=True)
        assert stop.returncode == 0, stop.stderr
        proc = subprocess.run(server["start"], capture_output=True, text=True, cwd=work, env=_env())
        assert proc.returncode == 0, proc.stderr
        return _admin(server)

    assert restart() == old
    assert _request(uri, "GET", "/api/2.0/mlflow/experiments/search?max_results=1", auth=old)[0] == 200
    Path(server["state"]["credentials"]).unlink()
    new = restart()
    assert new[0] == old[0] and new[1] != old[1]
    search = "/api/2.0/mlflow/experiments/search?max_results=1"
    assert _request(uri, "GET", search, auth=old)[0] == 401 and _request(uri, "GET", search, auth=new)[0] == 200
