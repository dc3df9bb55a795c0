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

3. **Authentication**: MLflow's own ``basic-auth`` app (``mlflow server --app-name basic-auth``), always on — also on
   127.0.0.1, which every user of a shared login node reaches. Without credentials every request but ``/health`` is
   refused (HTTP 401), so nobody who merely reaches the port can delete experiments or runs or write artifacts. Its
   user database is ``DIR/auth/basic_auth.db`` (SQLite; config ``DIR/auth/basic_auth.ini``, folder mode 0700). The
   first ``start`` creates the admin user ``admin`` with a random password and writes it to ``DIR/credentials``
   (mode 0600, MLflow's own ``~/.mlflow/credentials`` format); later starts reuse it. To rotate it, delete the file
   and ``start`` again (a new password is set in the user database). Jobs find the file by themselves
   (:func:`use_credentials`, called by ``finebench.tracking`` before it opens an ``http(s)://`` URI): the one named by
   ``FINEBENCH_TRACKING_CREDENTIALS``, else ``results/tracking-server/credentials`` in the working directory when it
   belongs to the server the URI names; ``MLFLOW_TRACKING_USERNAME`` / ``_PASSWORD`` already set win over both.
   ``--no-auth`` turns it off, for a loopback host only: an unauthenticated server on an address other machines reach
   is refused, not merely warned about — no workflow needs one, as jobs get the credentials without being told.

It prints the ``tracking_uri`` to put in the config (``http://HOST:PORT``; with ``--host 0.0.0.0`` the machine's
name, which compute nodes must be able to resolve). ``stop`` stops exactly what ``start`` started, by the pids it
recorded (``DIR/mlflow.pid``: the server's whole process group, its workers included; ``DIR/postgres.pid``:
``pg_ctl stop`` on ``DIR/pg``). The data stays in ``DIR``: a later ``start`` serves the same runs.
"""

from __future__ import annotations

import configparser
import ipaddress
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

from finebench.errors import FinebenchError
from finebench.files import pid_alive

DEFAULT_DIR = "results/tracking-server"
DATABASE = "mlflow"
PG_USER = "postgres"
SERVER_ENV = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
AUTH_APP = "basic-auth"
ADMIN_USER = "admin"
CREDENTIALS_ENV = "FINEBENCH_TRACKING_CREDENTIALS"  # names a credentials file for the jobs
DEFAULT_CREDENTIALS = f"{DEFAULT_DIR}/credentials"  # found by itself in the working directory
# MLflow's client reads these (or ~/.mlflow/credentials); set by the user, they win over any file
CLIENT_ENV = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")
_USED: dict[str, Path] = {}  # tracking URI -> the credentials file use_credentials() applied for it


def _log(msg: str) -> None:
    print(f"[finebench] {msg}", file=sys.stderr, flush=True)


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# -- credentials (the server writes them, jobs read them) ---------------------------------------------------------
def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by this user only (0600 from the first byte on), atomically."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)


def read_credentials(path: str | Path) -> dict:
    """{username, password, hosts, port} from a credentials file written by ``tracking-server start``."""
    path = Path(path)
    cfg = configparser.ConfigParser()
    try:
        cfg.read_string(path.read_text())
        mlflow = cfg["mlflow"]
        user, password = mlflow["mlflow_tracking_username"], mlflow["mlflow_tracking_password"]
    except OSError as exc:
        raise FinebenchError(f"tracking server credentials {path}: cannot read it ({exc.strerror}); it is readable "
                             f"only by the user who started the server") from None
    except (configparser.Error, KeyError):
        raise FinebenchError(f"tracking server credentials {path}: not a credentials file (an [mlflow] section with "
                             f"mlflow_tracking_username and mlflow_tracking_password)") from None
    server = cfg["finebench"] if cfg.has_section("finebench") else {}
    hosts = [h for h in server.get("hosts", "").split(",") if h]
    return {"username": user, "password": password, "hosts": hosts, "port": int(server.get("port", 0) or 0)}


def _names(uri: str) -> tuple[str, int]:
    u = urlparse(uri)
    return (u.hostname or "").lower(), u.port or (443 if u.scheme == "https" else 80)


def use_credentials(tracking_uri: str) -> Path | None:
    """Before a client opens an ``http(s)://`` tracking URI: set ``MLFLOW_TRACKING_USERNAME`` / ``_PASSWORD`` (which
    MLflow's client sends) from a tracking server's credentials file, unless the user set them. The file is the one
    ``FINEBENCH_TRACKING_CREDENTIALS`` names (missing: an error), else ``results/tracking-server/credentials`` in the
    working directory if it is that of the server the URI names (its port and one of its host names: a password is
    never sent to another server). Returns the file used, or None."""
    if not tracking_uri.lower().startswith(("http://", "https://")) or any(os.environ.get(k) for k in CLIENT_ENV):
        return None
    named = os.environ.get(CREDENTIALS_ENV)
    path = Path(named or DEFAULT_CREDENTIALS)
    if not path.is_file():
        if named:
            raise FinebenchError(f"{CREDENTIALS_ENV}={named}: no such file; it is the `credentials` file in the "
                                 f"tracking server's folder (printed by `make tracking-server`)")
        return None
    creds = read_credentials(path)
    if not named and _names(tracking_uri) not in {(h, creds["port"]) for h in creds["hosts"]}:
        return None
    os.environ[CLIENT_ENV[0]], os.environ[CLIENT_ENV[1]] = creds["username"], creds["password"]
    _USED[tracking_uri] = path
    return path


def unauthorized_hint(tracking_uri: str) -> str:
    """What to do when a tracking server answers 401 (no or wrong credentials)."""
    used = _USED.get(tracking_uri)
    if used:
        sent = f"refused the credentials in {used} (another server's file, or a password changed since?)"
    elif any(os.environ.get(k) for k in CLIENT_ENV):
        sent = "refused MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD"
    else:
        sent = "no credentials were sent"
    return (f"the MLflow server {tracking_uri} requires authentication and {sent}: export {CREDENTIALS_ENV}="
            f"SERVER_DIR/credentials (the file `make tracking-server` prints; found without it as "
            f"{DEFAULT_CREDENTIALS} when the workflow runs in the folder the server was started from), or set "
            f"MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD")


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
        self.auth_dir = self.dir / "auth"  # MLflow's basic-auth: its config and user database (mode 0700)
        self.auth_ini = self.auth_dir / "basic_auth.ini"
        self.auth_db = self.auth_dir / "basic_auth.db"
        self.credentials = self.dir / "credentials"  # the admin user's password (mode 0600)

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
        return {"mlflow": self._pid(self.mlflow_pid_file, "mlflow"),
                "postgres": self._pid(self.pg_pid_file, "postgres")}

    def store_uri(self, pg_port: int) -> str:
        return f"postgresql+psycopg2://{PG_USER}@/{DATABASE}?host={self.pg_run}&port={pg_port}"

    # -- start ---------------------------------------------------------------------------------------------------
    def start(self, host: str = "127.0.0.1", port: int = 5000, pg_port: int = 5433, allowed_hosts: str | None = None,
              timeout: float = 180, auth: bool = True) -> dict:
        if not auth and not is_loopback(host):
            raise FinebenchError(f"--no-auth with --host {host}: anyone who reaches port {port} could delete every "
                                 f"experiment, run and artifact; a server without authentication binds only "
                                 f"127.0.0.1. Drop --no-auth: the jobs read the credentials from "
                                 f"{self.credentials} by themselves")
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
            uri = self._start_mlflow(host, port, pg_port, allowed_hosts, timeout, auth)
        except BaseException:
            self.stop(quiet=True)
            raise
        state = {"tracking_uri": uri, "host": host, "port": port, "pg_port": pg_port,
                 "auth": AUTH_APP if auth else None, "credentials": str(self.credentials) if auth else None,
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

    def _start_mlflow(self, host: str, port: int, pg_port: int, allowed_hosts: str | None, timeout: float,
                      auth: bool = True) -> str:
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
        env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_AUTH_")}
        env.update(SERVER_ENV)
        env.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
        if auth:
            try:
                import flask_wtf  # noqa: F401  (mlflow[auth]: without it the auth app dies at start)
            except ImportError:
                raise FinebenchError("MLflow's basic-auth app needs Flask-WTF (mlflow[auth]): run `make server-deps` "
                                     "or `.venv/bin/pip install Flask-WTF==1.3.0`") from None
            cmd += ["--app-name", AUTH_APP]
            env.update(self._prepare_auth(host, public, port))
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

    def _prepare_auth(self, host: str, public: str, port: int) -> dict:
        """Write MLflow's auth config and the credentials file; the environment the auth app needs at start."""
        self.auth_dir.mkdir(parents=True, exist_ok=True)
        self.auth_dir.chmod(0o700)
        # One uvicorn worker, so caching a checked password (scrypt, ~0.1 s a request otherwise) is never stale
        # across workers; a password changed through the REST API takes effect at once on the one worker.
        self.auth_ini.write_text(f"""[mlflow]
default_permission = READ
database_uri = sqlite:///{self.auth_db}
admin_username = {ADMIN_USER}
authorization_function = mlflow.server.auth:authenticate_request_basic_auth
auth_cache_ttl_seconds = 300
""")
        if self.credentials.is_file():
            creds = read_credentials(self.credentials)
            user, password = creds["username"], creds["password"]
        else:
            user, password = ADMIN_USER, secrets.token_urlsafe(24)
            if self.auth_db.is_file():  # the admin exists with a password nobody has any more: set the new one
                self._set_password(user, password)
        names = {host, public, socket.gethostname(), socket.getfqdn(), "localhost", "127.0.0.1", "::1"}
        try:
            names |= set(socket.gethostbyname_ex(socket.gethostname())[2])
        except OSError:
            pass
        _write_private(self.credentials, f"""\
# MLflow credentials of the finebench tracking server in {self.dir}: its admin user (MLflow basic-auth).
# Readable by you only (mode 0600); never commit it. Jobs read it (FINEBENCH_TRACKING_CREDENTIALS=this file, or
# found as {DEFAULT_CREDENTIALS} in the working directory); the [mlflow] section is MLflow's own
# ~/.mlflow/credentials format. New password: delete this file and start the server again.
[mlflow]
mlflow_tracking_username = {user}
mlflow_tracking_password = {password}

[finebench]
tracking_uri = http://{public}:{port}
port = {port}
hosts = {",".join(sorted(n.lower() for n in names if n))}
""")
        return {"MLFLOW_AUTH_CONFIG_PATH": str(self.auth_ini), "MLFLOW_AUTH_ADMIN_USERNAME": user,
                "MLFLOW_AUTH_ADMIN_PASSWORD": password,  # used only to create the admin user in a new database
                "MLFLOW_FLASK_SERVER_SECRET_KEY": secrets.token_urlsafe(32)}  # CSRF of the sign-up page

    def _set_password(self, user: str, password: str) -> None:
        from mlflow.server.auth.sqlalchemy_store import SqlAlchemyStore

        store = SqlAlchemyStore()
        store.init_db(f"sqlite:///{self.auth_db}")
        if store.has_user(user, use_primary=True):
            store.update_user(user, password=password)
            _log(f"{self.credentials} was missing: new password for MLflow user {user!r} in {self.auth_db}")
        store.engine.dispose()

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
