"""A shared MLflow tracking server on PostgreSQL, so that jobs on many machines (a Slurm cluster) log to one store.

    python -m finebench tracking-server start  [--dir results/tracking-server] [--host 127.0.0.1] [--port 5000]
    python -m finebench tracking-server status [--dir ...]
    python -m finebench tracking-server stop   [--dir ...]
    (make tracking-server / make tracking-server-stop)

``start`` runs, in the background, until ``stop``:

1. **PostgreSQL** (Debian ``postgresql``; the newest ``/usr/lib/postgresql/*/bin``): a database cluster initialised once
   in ``DIR/pg`` (owned by the ``postgres`` user when started as root — PostgreSQL refuses to run as root), with its
   own port and **no TCP listener**: it accepts connections only on a Unix socket in ``DIR/pg-run`` (mode 0700), so
   nothing else on the host can reach the database. Database ``mlflow``.
2. **mlflow server** on it (``postgresql+psycopg2://`` store), with artifact serving: artifacts are uploaded over HTTP
   to ``DIR/artifacts`` (``--artifacts-destination``), so jobs on any node need no shared file system for MLflow.
   One uvicorn worker (several workers cost ~44 ms per request on a kept-alive connection); MLflow's job execution
   and telemetry are off.

It prints the ``tracking_uri`` to put in the config (``http://HOST:PORT``; with ``--host 0.0.0.0`` the machine's
name, which compute nodes must be able to resolve). ``stop`` stops exactly what ``start`` started, by the pids it
recorded (``DIR/mlflow.pid``: the server's whole process group, its workers included; ``DIR/postgres.pid``:
``pg_ctl stop`` on ``DIR/pg``). The data stays in ``DIR``: a later ``start`` serves the same runs.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from finebench.errors import FinebenchError
from finebench.files import pid_alive

DEFAULT_DIR = "results/tracking-server"
DATABASE = "mlflow"
PG_USER = "postgres"
SERVER_ENV = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}


def _log(msg: str) -> None:
    print(f"[finebench] {msg}", file=sys.stderr, flush=True)


# -- PostgreSQL ----------------------------------------------------------------------------------------------------
def postgres_bindir() -> Path:
    """The newest Debian PostgreSQL server programs (initdb, pg_ctl, postgres)."""
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"),
                        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0)
    if not candidates:
        raise FinebenchError("PostgreSQL server programs not found (/usr/lib/postgresql/*/bin/pg_ctl): install "
                             "Debian's `postgresql` (`make tracking-server` does it when run as root)")
    return candidates[-1].parent


def _as_pg_user(cmd: list[str]) -> list[str]:
    """As root, run PostgreSQL programs as the `postgres` user; otherwise as ourselves."""
    if os.geteuid() != 0:
        return cmd
    try:
        import pwd

        pwd.getpwnam(PG_USER)
    except KeyError:
        raise FinebenchError(f"user {PG_USER!r} not found: install Debian's `postgresql`, which creates it") from None
    return ["setpriv", f"--reuid={PG_USER}", f"--regid={PG_USER}", "--init-groups", "--", *cmd]


def _owned_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o700)
    if os.geteuid() == 0:
        shutil.chown(path, PG_USER, PG_USER)
        for parent in path.parents:
            if parent.stat().st_mode & 0o001 == 0:
                raise FinebenchError(f"{parent}: not searchable by the {PG_USER!r} user, so PostgreSQL cannot reach "
                                     f"{path}; choose a --dir whose parent folders are (e.g. under /var/tmp)")
    return path


def _run(cmd: list[str], what: str, timeout: float = 120) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise FinebenchError(f"{what} failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stdout[-2000:]}"
                             f"{proc.stderr[-3000:]}")
    return proc


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


class TrackingServer:
    """The PostgreSQL + mlflow server pair that lives in one folder."""

    def __init__(self, directory: str | Path = DEFAULT_DIR):
        self.dir = Path(directory).resolve()
        self.pg_data = self.dir / "pg"
        self.pg_run = self.dir / "pg-run"  # socket + log, owned by postgres
        self.artifacts = self.dir / "artifacts"
        self.state_file = self.dir / "server.json"
        self.mlflow_pid_file = self.dir / "mlflow.pid"
        self.pg_pid_file = self.dir / "postgres.pid"
        self.mlflow_log = self.dir / "mlflow.log"

    # -- state ---------------------------------------------------------------------------------------------------
    def state(self) -> dict:
        return json.loads(self.state_file.read_text()) if self.state_file.is_file() else {}

    def _pid(self, pid_file: Path, marker: str) -> int | None:
        """The recorded pid if that process is still alive and still the program we started (not a reused pid)."""
        if not pid_file.is_file():
            return None
        pid = int(pid_file.read_text().split()[0])
        return pid if pid_alive(pid) and marker in _cmdline(pid) else None

    def running(self) -> dict:
        return {"mlflow": self._pid(self.mlflow_pid_file, "mlflow"), "postgres": self._pid(self.pg_pid_file, "postgres")}

    def store_uri(self, pg_port: int) -> str:
        return f"postgresql+psycopg2://{PG_USER}@/{DATABASE}?host={self.pg_run}&port={pg_port}"

    # -- start ---------------------------------------------------------------------------------------------------
    def start(self, host: str = "127.0.0.1", port: int = 5000, pg_port: int = 5433, allowed_hosts: str | None = None,
              timeout: float = 180) -> dict:
        running = self.running()
        if running["mlflow"] and running["postgres"]:
            state = self.state()
            _log(f"tracking server already running (mlflow pid {running['mlflow']}, postgres pid "
                 f"{running['postgres']}): {state.get('tracking_uri')}")
            return state
        if running["mlflow"] or running["postgres"]:
            raise FinebenchError(f"{self.dir}: half running ({running}); run `python -m finebench tracking-server "
                                 f"stop --dir {self.dir}` first")
        if not _port_free(host, port):
            raise FinebenchError(f"port {port} on {host} is taken: choose another with --port (make tracking-server "
                                 f"PORT=...)")
        self.dir.mkdir(parents=True, exist_ok=True)
        t0 = time.monotonic()
        self._start_postgres(pg_port)
        try:
            self._create_database(pg_port)
            uri = self._start_mlflow(host, port, pg_port, allowed_hosts, timeout)
        except BaseException:
            self.stop(quiet=True)
            raise
        state = {"tracking_uri": uri, "host": host, "port": port, "pg_port": pg_port,
                 "backend_store_uri": self.store_uri(pg_port), "artifacts_destination": str(self.artifacts),
                 "mlflow_pid": self._pid(self.mlflow_pid_file, "mlflow"),
                 "postgres_pid": self._pid(self.pg_pid_file, "postgres"),
                 "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "start_seconds": round(time.monotonic() - t0, 1)}
        self.state_file.write_text(json.dumps(state, indent=2) + "\n")
        return state

    def _start_postgres(self, pg_port: int) -> None:
        bindir = postgres_bindir()
        _owned_dir(self.pg_run)
        if not (self.pg_data / "PG_VERSION").is_file():
            _owned_dir(self.pg_data)
            _log(f"PostgreSQL: initdb {self.pg_data}")
            _run(_as_pg_user([str(bindir / "initdb"), "-D", str(self.pg_data), "-U", PG_USER, "-E", "UTF8",
                              "--auth-local=trust", "--auth-host=reject", "--no-instructions"]), "initdb")
        sock = self.pg_run / f".s.PGSQL.{pg_port}"
        if len(str(sock)) > 100:
            raise FinebenchError(f"{sock}: path too long for a Unix socket (> 100 characters); choose a shorter --dir")
        if sock.exists() or not _port_free("127.0.0.1", pg_port):
            raise FinebenchError(f"PostgreSQL port {pg_port} is in use (socket {sock}); choose another with --pg-port")
        # no TCP listener (listen_addresses=''); the socket in pg-run is the only way in
        _run(_as_pg_user([str(bindir / "pg_ctl"), "-D", str(self.pg_data), "-l", str(self.pg_run / "postgres.log"),
                          "-w", "-t", "60", "-o", f"-p {pg_port} -k {self.pg_run} -c listen_addresses=''", "start"]),
             f"PostgreSQL start (log: {self.pg_run / 'postgres.log'})")
        pid = int((self.pg_data / "postmaster.pid").read_text().split()[0])
        self.pg_pid_file.write_text(f"{pid}\n")
        _log(f"PostgreSQL {bindir.parent.name} running (pid {pid}, port {pg_port}, socket in {self.pg_run})")

    def _create_database(self, pg_port: int) -> None:
        import psycopg2

        conn = psycopg2.connect(host=str(self.pg_run), port=pg_port, user=PG_USER, dbname="postgres")
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,))
                if cur.fetchone() is None:
                    cur.execute(f"CREATE DATABASE {DATABASE}")
        finally:
            conn.close()

    def _start_mlflow(self, host: str, port: int, pg_port: int, allowed_hosts: str | None, timeout: float) -> str:
        self.artifacts.mkdir(parents=True, exist_ok=True)
        public = host if host not in ("0.0.0.0", "::", "") else socket.gethostname()
        uri = f"http://{public}:{port}"
        cmd = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", self.store_uri(pg_port),
               "--artifacts-destination", str(self.artifacts), "--host", host, "--port", str(port), "--workers", "1"]
        if allowed_hosts is None and public != host:
            # MLflow accepts only localhost / private-IP Host headers by default; jobs call it by this machine's name
            names = {public, socket.getfqdn(), "localhost", "127.0.0.1"}
            allowed_hosts = ",".join(sorted({f"{n}:{port}" for n in names} | names))
            allowed_hosts += ",10.*,192.168.*,172.*"
        if allowed_hosts:
            cmd += ["--allowed-hosts", allowed_hosts]
        env = {**os.environ, **SERVER_ENV}
        env.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
        log = open(self.mlflow_log, "ab")
        # its own session = its own process group, which `stop` signals as a whole (uvicorn's workers included)
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                start_new_session=True, cwd=self.dir)
        log.close()
        self.mlflow_pid_file.write_text(f"{proc.pid}\n")
        _log(f"mlflow server starting (pid {proc.pid}, log {self.mlflow_log}) ...")
        probe = f"http://127.0.0.1:{port}/health" if public != host else f"{uri}/health"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise FinebenchError(f"mlflow server exited ({proc.returncode}) while starting; last lines of "
                                     f"{self.mlflow_log}:\n{self.mlflow_log.read_text(errors='replace')[-3000:]}")
            try:
                with urllib.request.urlopen(probe, timeout=2) as r:
                    if r.status == 200:
                        return uri
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.5)
        raise FinebenchError(f"mlflow server not answering {probe} after {timeout:.0f} s; see {self.mlflow_log}")

    # -- stop ----------------------------------------------------------------------------------------------------
    def stop(self, quiet: bool = False, timeout: float = 30) -> list[str]:
        """Stop what `start` started: the mlflow server's process group, then PostgreSQL (pg_ctl stop on DIR/pg)."""
        stopped = []
        if self.mlflow_pid_file.is_file():
            pgid = int(self.mlflow_pid_file.read_text().split()[0])
            if self._group_alive(pgid):
                leader = _cmdline(pgid)
                if leader and "mlflow" not in leader:
                    raise FinebenchError(f"{self.mlflow_pid_file}: pid {pgid} is now {leader!r}, not the mlflow "
                                         f"server; not touching it")
                os.killpg(pgid, signal.SIGTERM)
                deadline = time.monotonic() + timeout
                while self._group_alive(pgid) and time.monotonic() < deadline:
                    time.sleep(0.2)
                if self._group_alive(pgid):
                    os.killpg(pgid, signal.SIGKILL)
                try:  # reap it if it is our own child (start and stop in one process)
                    os.waitpid(pgid, os.WNOHANG)
                except ChildProcessError:
                    pass
                stopped.append(f"mlflow server (process group {pgid})")
            self.mlflow_pid_file.unlink()
        if self.pg_pid_file.is_file():
            pid = int(self.pg_pid_file.read_text().split()[0])
            if pid_alive(pid) and "postgres" in _cmdline(pid):
                _run(_as_pg_user([str(postgres_bindir() / "pg_ctl"), "-D", str(self.pg_data), "-m", "fast", "-w",
                                  "stop"]), "PostgreSQL stop")
                stopped.append(f"PostgreSQL (pid {pid})")
            self.pg_pid_file.unlink()
        if not quiet:
            _log("stopped: " + (", ".join(stopped) if stopped else f"nothing was running from {self.dir}"))
        return stopped

    @staticmethod
    def _group_alive(pgid: int) -> bool:
        """Whether any live (non-zombie) process is left in the process group."""
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(") ", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                return True
        return False
