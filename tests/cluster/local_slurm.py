"""A real single-node Slurm cluster on this machine, from Debian packages, for the Slurm tests.

    python tests/cluster/local_slurm.py up DIR      # install (root + apt-get), configure, start; prints the env to use
    python tests/cluster/local_slurm.py down DIR    # stop exactly the daemons `up` started (pid files in DIR)

What it starts, every daemon in the foreground as a child whose pid is recorded in DIR/pids/ (no systemd here):
munged (as the `munge` user), mariadbd (as `mysql`; the accounting database), slurmdbd, slurmctld, slurmd.
Everything lives in DIR: the configuration (clients find it through SLURM_CONF=DIR/etc/slurm.conf), the munge key and
socket, the database, state, spool and logs. All ports are picked free at start. One thing outside DIR: srun inside a
job runs without SLURM_CONF (the executor plugin's job step removes SLURM_* variables), so while the cluster runs
/etc/slurm/slurm.conf is a symlink to DIR/etc/slurm.conf — made only where no Slurm configuration exists, removed by
`down`.

The node is this host (`hostname -s`) with the CPUs `slurmd -C` reports, one fake GPU (gres `gpu`, File=/dev/null:
enough for Slurm to schedule `--gpus=1`, nothing a program can use) and two partitions, `cpu` (default) and `gpu`.
Account `finebench` holds the submitting user. Memory is not a consumable resource here (CR_Core), so the node declares
at least 32 GB (`SlurmdParameters=config_overrides`) and a profile's memory requests fit on a smaller test machine.
"""

from __future__ import annotations

import getpass
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from finebench.files import pid_alive

# Debian 12: Slurm 22.05, munge 0.5; slurmdbd + MariaDB for accounting (sacct); PostgreSQL for the tracking server.
PACKAGES = ["slurmctld", "slurmd", "slurm-client", "slurmdbd", "munge", "mariadb-server", "postgresql"]
PROGRAMS = ["munged", "mariadbd", "mariadb-install-db", "mariadb", "slurmdbd", "slurmctld", "slurmd", "sbatch", "sacct",
            "sacctmgr", "sinfo", "setpriv"]
SBIN = ["/usr/sbin", "/usr/bin", "/sbin", "/bin"]
DAEMONS = ["munged", "mariadbd", "slurmdbd", "slurmctld", "slurmd"]  # start order; stopped in reverse
# Where Slurm's programs look when SLURM_CONF is unset. The executor plugin's job step drops SLURM_* variables before
# it calls srun inside a job, so srun must find the cluster here: a symlink to DIR/etc/slurm.conf while it runs.
SYSTEM_CONF = Path("/etc/slurm/slurm.conf")
ACCOUNT = "finebench"


class Unavailable(RuntimeError):
    """This machine cannot run the local cluster (the message says why)."""


def _which(name: str) -> str | None:
    return shutil.which(name, path=os.pathsep.join([os.environ.get("PATH", ""), *SBIN]))


def missing_packages() -> list[str]:
    out = []
    for pkg in PACKAGES:
        proc = subprocess.run(["dpkg-query", "-W", "-f=${Status}", pkg], capture_output=True, text=True)
        if proc.returncode != 0 or "ok installed" not in proc.stdout:
            out.append(pkg)
    return out


def unavailable_reason() -> str | None:
    """Why this machine cannot run the cluster, or None. Needs Linux, root, and dpkg/apt-get (or the packages)."""
    if not sys.platform.startswith("linux"):
        return f"needs Linux (this is {sys.platform})"
    if os.geteuid() != 0:
        return "needs root: it installs Debian packages and runs slurmd/munged/mariadbd as system users"
    if not _which("dpkg-query"):
        return "needs a Debian/Ubuntu system (dpkg-query not found)"
    missing = missing_packages()
    if missing and not _which("apt-get"):
        return f"Debian packages missing and no apt-get to install them: {' '.join(missing)}"
    return None


def install_packages(log=print) -> list[str]:
    """Install the missing Debian packages with apt-get (root). Services are not started by the packages'
    maintainer scripts (a temporary policy-rc.d says no): this harness starts its own daemons."""
    missing = missing_packages()
    if not missing:
        return []
    reason = unavailable_reason()
    if reason:
        raise Unavailable(reason)
    policy = Path("/usr/sbin/policy-rc.d")
    created = not policy.exists()
    if created:
        policy.write_text("#!/bin/sh\n# finebench tests/cluster: no service starts while installing\nexit 101\n")
        policy.chmod(0o755)
    try:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        log(f"[local_slurm] apt-get install {' '.join(missing)}")
        for cmd in (["apt-get", "update", "-qq"],
                    ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing]):
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
            if proc.returncode != 0:
                raise Unavailable(f"`{' '.join(cmd)}` failed ({proc.returncode}):\n"
                                  f"{proc.stdout[-2000:]}{proc.stderr[-3000:]}")
    finally:
        if created:
            policy.unlink()
    return missing


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _chown(path: Path, user: str) -> None:
    shutil.chown(path, user, user)


class LocalSlurm:
    """One single-node cluster rooted at ``root`` (an empty or previously used folder)."""

    def __init__(self, root: str | Path):
        self.root = Path(root).resolve()
        self.etc = self.root / "etc"
        self.pids = self.root / "pids"
        self.logs = self.root / "log"
        self.host = socket.gethostname().split(".")[0]
        self.conf = self.etc / "slurm.conf"
        self.procs: dict[str, subprocess.Popen] = {}

    # -- environment for clients (sbatch, sacct, snakemake's Slurm executor) --------------------------------------
    @property
    def env(self) -> dict[str, str]:
        return {"SLURM_CONF": str(self.conf)}

    def run(self, *cmd: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
        proc = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, **self.env})
        if check and proc.returncode != 0:
            raise RuntimeError(f"`{' '.join(cmd)}` failed ({proc.returncode}): {proc.stdout}{proc.stderr}")
        return proc

    # -- start ---------------------------------------------------------------------------------------------------
    def start(self, timeout: float = 90) -> "LocalSlurm":
        reason = unavailable_reason()
        if reason:
            raise Unavailable(reason)
        install_packages()
        for prog in PROGRAMS:
            if not _which(prog):
                raise Unavailable(f"{prog} not found after installing {' '.join(PACKAGES)}")
        if self.pids.is_dir() and any(self.pids.iterdir()):
            raise RuntimeError(f"{self.pids}: pid files of an earlier start — run `down {self.root}` first")
        for d in (self.etc, self.pids, self.logs):
            d.mkdir(parents=True, exist_ok=True)
        # munge / mysql must reach their folders: the root and its parents must be searchable by them
        self.root.chmod(0o755)
        for parent in self.root.parents:
            if parent.stat().st_mode & 0o001 == 0:
                raise Unavailable(f"{parent}: not searchable by other users (munge, mysql); put the cluster elsewhere")
        if SYSTEM_CONF.exists() or SYSTEM_CONF.is_symlink():
            if not (SYSTEM_CONF.is_symlink() and not SYSTEM_CONF.exists()):  # a dangling link of ours is replaced
                raise Unavailable(f"{SYSTEM_CONF} exists: this machine has a Slurm configuration of its own, which "
                                  f"the test cluster will not replace")
            SYSTEM_CONF.unlink()
        self.ports = {k: free_port() for k in ("slurmctld", "slurmd", "slurmdbd", "mariadb")}
        try:
            self._start_munge()
            self._start_mariadb()
            self._start_slurmdbd()
            self._start_slurmctld_and_slurmd(timeout)
            self._add_account()
        except BaseException:
            self.stop()
            raise
        return self

    def _spawn(self, name: str, cmd: list[str], user: str | None = None) -> subprocess.Popen:
        if user:  # setpriv execs the daemon: the pid we record is the daemon's own
            cmd = ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups", "--", *cmd]
        log = open(self.logs / f"{name}.out", "ab")
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env={**os.environ, **self.env}, start_new_session=True)
        log.close()
        self.procs[name] = proc
        (self.pids / f"{name}.pid").write_text(f"{proc.pid}\n")
        return proc

    def _wait(self, what: str, ready, timeout: float, name: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            proc = self.procs.get(name)
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"{name} exited ({proc.returncode}) before {what}:\n{self._tail(name)}")
            try:
                if ready():
                    return
            except (OSError, RuntimeError, subprocess.SubprocessError):
                pass
            time.sleep(0.3)
        raise RuntimeError(f"{name}: not {what} after {timeout:.0f} s:\n{self._tail(name)}")

    def _tail(self, name: str, n: int = 3000) -> str:
        texts = []
        for f in sorted(self.logs.glob(f"{name}*")):
            texts.append(f"--- {f}\n{f.read_text(errors='replace')[-n:]}")
        return "\n".join(texts)

    def _start_munge(self) -> None:
        d = self.root / "munge"
        d.mkdir(exist_ok=True)
        d.chmod(0o755)  # munged: clients need to reach the socket
        key = d / "munge.key"
        if not key.exists():
            key.write_bytes(secrets.token_bytes(1024))
        key.chmod(0o400)
        for p in (d, key):
            _chown(p, "munge")
        self.munge_socket = d / "munge.socket"
        self._spawn("munged", [_which("munged"), "--foreground", f"--key-file={key}", f"--socket={self.munge_socket}",
                               f"--pid-file={d / 'munged.pid'}", f"--seed-file={d / 'munged.seed'}",
                               f"--log-file={d / 'munged.log'}"], user="munge")
        self._wait("listening", self.munge_socket.exists, 20, "munged")

    def _start_mariadb(self) -> None:
        data = self.root / "mysql"
        run = self.root / "mysql-run"
        for p in (data, run):
            p.mkdir(exist_ok=True)
            _chown(p, "mysql")
        self.mysql_socket = run / "mysqld.sock"
        if not (data / "mysql").is_dir():
            proc = subprocess.run([_which("mariadb-install-db"), "--no-defaults", f"--datadir={data}", "--user=mysql",
                                   "--skip-test-db", "--auth-root-authentication-method=socket"],
                                  capture_output=True, text=True)
            if proc.returncode != 0:
                raise RuntimeError(f"mariadb-install-db failed: {proc.stdout[-2000:]}{proc.stderr[-2000:]}")
        self._spawn("mariadbd", [_which("mariadbd"), "--no-defaults", f"--datadir={data}", "--user=mysql",
                                 f"--socket={self.mysql_socket}", f"--port={self.ports['mariadb']}",
                                 "--bind-address=127.0.0.1", f"--pid-file={run / 'mariadbd.pid'}",
                                 f"--log-error={self.logs / 'mariadbd.err'}", "--innodb-buffer-pool-size=64M"])
        self._wait("accepting connections", lambda: self._sql("SELECT 1").returncode == 0, 60, "mariadbd")
        self.db_password = secrets.token_hex(12)
        sql = "; ".join(
            f"CREATE USER IF NOT EXISTS 'slurm'@'{h}' IDENTIFIED BY '{self.db_password}'; "
            f"ALTER USER 'slurm'@'{h}' IDENTIFIED BY '{self.db_password}'; "
            f"GRANT ALL ON slurm_acct_db.* TO 'slurm'@'{h}'" for h in ("127.0.0.1", "localhost"))
        proc = self._sql(sql)
        if proc.returncode != 0:
            raise RuntimeError(f"creating the slurm database user failed: {proc.stderr}")

    def _sql(self, sql: str) -> subprocess.CompletedProcess:
        return subprocess.run([_which("mariadb"), "--no-defaults", f"--socket={self.mysql_socket}", "-u", "root",
                               "-e", sql], capture_output=True, text=True, timeout=30)

    def _common_conf(self) -> list[str]:
        return ["AuthType=auth/munge", f"AuthInfo=socket={self.munge_socket}"]

    def _start_slurmdbd(self) -> None:
        conf = self.etc / "slurmdbd.conf"
        conf.write_text("\n".join([
            *self._common_conf(),
            "DbdHost=localhost", f"DbdPort={self.ports['slurmdbd']}", "SlurmUser=root",
            f"PidFile={self.root / 'slurmdbd.pid'}", f"LogFile={self.logs / 'slurmdbd.log'}", "DebugLevel=info",
            "StorageType=accounting_storage/mysql", "StorageHost=127.0.0.1", f"StoragePort={self.ports['mariadb']}",
            "StorageUser=slurm", f"StoragePass={self.db_password}", "StorageLoc=slurm_acct_db",
        ]) + "\n")
        conf.chmod(0o600)
        self._write_slurm_conf()  # slurmdbd finds its file beside SLURM_CONF
        SYSTEM_CONF.parent.mkdir(parents=True, exist_ok=True)
        SYSTEM_CONF.symlink_to(self.conf)
        (self.pids / "system-conf").write_text(f"{SYSTEM_CONF}\n")
        self._spawn("slurmdbd", [_which("slurmdbd"), "-D"])
        self._wait("listening", lambda: self._port_open(self.ports["slurmdbd"]), 60, "slurmdbd")

    @staticmethod
    def _port_open(port: int) -> bool:
        with socket.socket() as s:
            s.settimeout(0.5)
            return s.connect_ex(("127.0.0.1", port)) == 0

    def _node_line(self) -> str:
        out = subprocess.run([_which("slurmd"), "-C"], capture_output=True, text=True, check=True).stdout
        line = next(row for row in out.splitlines() if row.startswith("NodeName="))
        fields = dict(f.split("=", 1) for f in line.split())
        fields["NodeName"] = self.host
        fields["RealMemory"] = str(max(int(fields.get("RealMemory", "0")), 32768))
        return " ".join(f"{k}={v}" for k, v in fields.items()) + " Gres=gpu:1 State=UNKNOWN"

    def _write_slurm_conf(self) -> None:
        state, spool = self.root / "state", self.root / "spool"
        for d in (state, spool):
            d.mkdir(exist_ok=True)
        self.conf.write_text("\n".join([
            "ClusterName=finebench", f"SlurmctldHost={self.host}",
            f"SlurmctldPort={self.ports['slurmctld']}", f"SlurmdPort={self.ports['slurmd']}",
            "SlurmUser=root", "SlurmdUser=root", *self._common_conf(), "CredType=cred/munge",
            f"StateSaveLocation={state}", f"SlurmdSpoolDir={spool}",
            f"SlurmctldPidFile={self.root / 'slurmctld.pid'}", f"SlurmdPidFile={self.root / 'slurmd.pid'}",
            f"SlurmctldLogFile={self.logs / 'slurmctld.log'}", f"SlurmdLogFile={self.logs / 'slurmd.log'}",
            "ProctrackType=proctrack/linuxproc", "TaskPlugin=task/none", "MpiDefault=none",
            "SelectType=select/cons_tres", "SelectTypeParameters=CR_Core", "SchedulerType=sched/backfill",
            "ReturnToService=2", "MailProg=/bin/true", "SlurmdParameters=config_overrides", "MinJobAge=300",
            "JobAcctGatherType=jobacct_gather/none", "AccountingStorageType=accounting_storage/slurmdbd",
            "AccountingStorageHost=localhost", f"AccountingStoragePort={self.ports['slurmdbd']}",
            f"AccountingStoragePass={self.munge_socket}",  # the munge socket for talking to slurmdbd
            "AccountingStorageTRES=gres/gpu", "AccountingStoreFlags=job_comment",
            "GresTypes=gpu", self._node_line(),
            f"PartitionName=cpu Nodes={self.host} Default=YES MaxTime=INFINITE State=UP",
            f"PartitionName=gpu Nodes={self.host} MaxTime=INFINITE State=UP",
        ]) + "\n")
        (self.etc / "gres.conf").write_text(f"NodeName={self.host} Name=gpu File=/dev/null\n")

    def _start_slurmctld_and_slurmd(self, timeout: float) -> None:
        self._spawn("slurmctld", [_which("slurmctld"), "-D", "-i"])
        self._wait("answering", lambda: self.run("sinfo", "-h", check=True, timeout=5).returncode == 0, 60, "slurmctld")
        self._spawn("slurmd", [_which("slurmd"), "-D"])
        self._wait("idle", lambda: "idle" in self.run("sinfo", "-h", "-o", "%T", timeout=5).stdout, timeout, "slurmd")

    def _add_account(self) -> None:
        # slurmctld registers the cluster with slurmdbd itself; wait for it, then an account for the submitting user
        self._wait("registered", lambda: "finebench" in self.run("sacctmgr", "-n", "-P", "list", "cluster",
                                                                  "format=cluster", timeout=10).stdout, 60, "slurmctld")
        self.run("sacctmgr", "-i", "add", "account", ACCOUNT, "Description=finebench tests", "Organization=finebench")
        self.run("sacctmgr", "-i", "add", "user", getpass.getuser(), f"Account={ACCOUNT}")

    # -- stop ------------------------------------------------------------------------------------------------------
    def stop(self, timeout: float = 30) -> list[str]:
        """Cancel this cluster's jobs, then stop exactly the daemons started here (by their recorded pids)."""
        stopped = []
        if (self.pids / "slurmctld.pid").exists() and self.conf.exists():
            try:
                self.run("scancel", "--full", "--user", getpass.getuser(), check=False, timeout=10)
                deadline = time.monotonic() + 20
                while time.monotonic() < deadline and self.run("squeue", "-h", check=False, timeout=10).stdout.strip():
                    time.sleep(0.5)
            except (OSError, subprocess.SubprocessError):
                pass
        for name in reversed(DAEMONS):
            pidfile = self.pids / f"{name}.pid"
            if not pidfile.exists():
                continue
            pid = int(pidfile.read_text())
            proc = self.procs.get(name)
            if pid_alive(pid):
                os.kill(pid, signal.SIGTERM)
                deadline = time.monotonic() + timeout
                while pid_alive(pid) and time.monotonic() < deadline:
                    if proc is not None:
                        proc.poll()
                    time.sleep(0.2)
                if pid_alive(pid):
                    os.kill(pid, signal.SIGKILL)
                stopped.append(f"{name} ({pid})")
            if proc is not None:
                proc.wait(timeout=10)
            pidfile.unlink()
        marker = self.pids / "system-conf"
        if marker.exists():
            if SYSTEM_CONF.is_symlink() and Path(os.readlink(SYSTEM_CONF)) == self.conf:
                SYSTEM_CONF.unlink()
                stopped.append(f"{SYSTEM_CONF} (symlink)")
            marker.unlink()
        return stopped


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("up", "down"):
        print(__doc__, file=sys.stderr)
        return 2
    cluster = LocalSlurm(argv[1])
    if argv[0] == "up":
        try:
            cluster.start()
        except Unavailable as exc:
            print(f"[local_slurm] cannot run a local Slurm cluster here: {exc}", file=sys.stderr)
            return 1
        print(json.dumps({"env": cluster.env, "pids": {n: p.pid for n, p in cluster.procs.items()}}, indent=2))
        return 0
    print("[local_slurm] stopped: " + (", ".join(cluster.stop()) or "nothing was running"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
