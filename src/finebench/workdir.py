"""Housekeeping of a finebench working folder: what `make clean*` removes, and the stale-lock recovery of `make run`.

    python -m finebench.workdir clean [--data] [--mlflow] [--downloads DIR]   # prints what it removed and kept
    python -m finebench.workdir unlock-stale [snakemake args …]               # before a run: a dead run's lock

`clean` (no flag) removes what is cheap to rebuild — tables, plots, the report, runs, logs and Snakemake's metadata
(.snakemake) — and keeps the prepared datasets (deterministic, but minutes to rebuild at benchmark scale), the MLflow
store (the history of every run) and the download cache (gigabytes); each of those has its own flag / make target.

A Snakemake killed with SIGKILL (or by a power cut) leaves its lock in .snakemake/locks and the next run refuses to
start. `unlock-stale` removes that lock with `snakemake --unlock` only when no snakemake process of this machine
works in this folder; while one does, it says which and stops (two snakemakes must never share a folder).
A run's trainer leaves a small ``finished.pt`` beside its outputs (finebench.train): a job Snakemake marks failed after
it trained (on Slurm: the time limit hit while Snakemake wrapped up) is then rerun as a re-evaluation. The workflow
calls :func:`discard_finished` once Snakemake has accepted every job's outputs (its `onsuccess` hook).
Only stdlib here (plus psutil, a Snakemake dependency, for the process check), so `make clean` works without the venv.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

CHEAP = ["results/tables", "results/plots", "results/report.html", "results/runs", "results/logs", ".snakemake"]
DATA = ["results/data"]
MLFLOW = ["results/mlflow.db", "results/mlartifacts", "results/mlflow"]
FINISHED_CHECKPOINT = "finished.pt"  # written by finebench.train after a run's last epoch
KEPT_BY_DEFAULT = {"data": (DATA, "prepared datasets", "make clean-data"),
                   "mlflow": (MLFLOW, "the MLflow store: every run's history", "make clean-mlflow"),
                   "downloads": (["results/downloads"], "downloaded archives", "make clean-downloads")}


def size_of(path: Path) -> tuple[int, int]:
    """(files, bytes) under ``path``."""
    if path.is_file() or path.is_symlink():
        return 1, path.lstat().st_size
    files = total = 0
    for dirpath, _, names in os.walk(path):
        for name in names:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
                files += 1
            except OSError:
                pass
    return files, total


def human(n: float) -> str:  # a number of bytes
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n} B"


def directory_arg(cmd: list[str]) -> str | None:
    """The working folder a snakemake command line names, in any spelling argparse accepts: ``--directory DIR``,
    ``--directory=DIR``, an abbreviation (``--dir DIR``, ``--dir=DIR``), ``-d DIR``, ``-dDIR``; the last one wins."""
    found = None
    for i, arg in enumerate(cmd):
        flag, eq, value = arg.partition("=")
        if len(flag) >= 5 and "--directory".startswith(flag):
            found = value if eq else (cmd[i + 1] if i + 1 < len(cmd) else found)
        elif arg == "-d":
            found = cmd[i + 1] if i + 1 < len(cmd) else found
        elif arg.startswith("-d") and not arg.startswith("--"):
            found = arg[2:]
    return found


def stale_lock_hint(folder: str | Path, argv: list[str]) -> str | None:
    """What to tell a user whose snakemake will stop at a lock that no snakemake of this host holds (one killed with
    SIGKILL, a lost session): the one command that clears it. None when there is no lock, or a live snakemake holds
    it. The lock is not removed here: another host sharing the folder may be running (make run clears it itself,
    since it knows it runs locally)."""
    import importlib.util
    import shlex

    locks = Path(folder) / ".snakemake" / "locks"
    if not locks.is_dir() or not any(locks.iterdir()) or not importlib.util.find_spec("psutil") \
            or live_snakemakes(folder):
        return None

    return (f"[finebench] {locks} holds a lock, and no snakemake runs in {Path(folder).resolve()} on this host — left "
            f"by one that was killed? If none runs on another host either, clear it with:\n"
            f"    snakemake --unlock {shlex.join(argv)}")


def live_snakemakes(folder: str | Path) -> list[tuple[int, str]]:
    """(pid, command line) of the snakemake processes of this machine whose working folder is ``folder``."""
    try:
        import psutil
    except ImportError:  # without psutil (no venv yet) nothing can be checked: report none
        return []
    folder = Path(folder).resolve()
    found = []
    for proc in psutil.process_iter(["pid", "cmdline", "cwd"]):
        cmd, cwd = proc.info["cmdline"] or [], proc.info["cwd"]
        if proc.info["pid"] == os.getpid() or not cwd:
            continue
        is_snakemake = any(Path(a).name == "snakemake" for a in cmd[:2]) or \
            any(a == "-m" and b == "snakemake" for a, b in zip(cmd, cmd[1:]))
        if not is_snakemake or "--unlock" in cmd:
            continue
        workdir = Path(cwd) / (directory_arg(cmd) or ".")
        try:
            if workdir.resolve() == folder:
                found.append((proc.info["pid"], " ".join(cmd)))
        except OSError:
            pass
    return found


def refuse_if_running(folder: Path, doing: str) -> None:
    running = live_snakemakes(folder)
    if running:
        pid, cmd = running[0]
        sys.exit(f"finebench: snakemake (pid {pid}: {cmd[:120]}) is running in {folder}; {doing} would pull the "
                 f"ground from under it. Wait for it to finish, or stop it first (kill {pid}).")


def clean(folder: Path, data: bool = False, mlflow: bool = False, downloads: str | None = None,
          cheap: bool = True) -> list[Path]:
    refuse_if_running(folder, "cleaning")
    targets = (CHEAP if cheap else []) + (DATA if data else []) + (MLFLOW if mlflow else []) + \
        ([downloads] if downloads else [])
    removed = []
    for rel in targets:
        path = folder / rel
        if not (path.exists() or path.is_symlink()):
            continue
        # a link is removed as a link (its target is left alone), so where the link itself lies is what counts
        where = path.parent.resolve() / path.name if path.is_symlink() else path.resolve()
        if folder.resolve() not in where.parents:
            sys.exit(f"finebench: refusing to remove {rel}: it resolves to {where}, outside {folder.resolve()} — "
                     f"remove it yourself if you mean it")
        files, total = size_of(path)
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
        removed.append(path)
        print(f"  removed {rel} ({files} file{'s' if files != 1 else ''}, {human(total)})")
    if not removed:
        print("  nothing to remove")
    asked = {"data": data, "mlflow": mlflow, "downloads": bool(downloads)}
    for key, (paths, what, target) in KEPT_BY_DEFAULT.items():
        present = [p for p in paths if (folder / p).exists()]
        if asked[key] or not present:
            continue
        total = sum(size_of(folder / p)[1] for p in present)
        print(f"  kept    {', '.join(present)} ({what}, {human(total)}) — remove with `{target}`")
    return removed


def discard_finished(runs: str | Path) -> list[Path]:
    """Remove the ``finished.pt`` of every run (or tuning trial) under ``runs`` whose ``metrics.json`` is there; the
    removed paths."""
    removed = []
    for ckpt in sorted(p for pattern in ("seed*", "trial*")
                       for p in Path(runs).glob(f"*/*/{pattern}/{FINISHED_CHECKPOINT}")):
        if (ckpt.parent / "metrics.json").is_file():
            ckpt.unlink(missing_ok=True)
            removed.append(ckpt)
    return removed


def unlock_stale(folder: Path, snakemake_args: list[str]) -> int:
    """0 when the folder is free to run in (no lock, or a stale lock removed); 1 when a live snakemake holds it."""
    locks = folder / ".snakemake" / "locks"
    if not locks.is_dir() or not any(locks.iterdir()):
        return 0
    running = live_snakemakes(folder)
    if running:
        pid, cmd = running[0]
        print(f"finebench: snakemake (pid {pid}) is already running in {folder}: {cmd[:160]}\n"
              f"  wait for it to finish, or stop it (kill {pid}; it then ends its jobs' MLflow runs KILLED)",
              file=sys.stderr)
        return 1
    print(f"[finebench] {locks} holds the lock of a snakemake that is gone (killed?); no snakemake runs in {folder} "
          f"— unlocking", file=sys.stderr)
    out = subprocess.run([sys.executable, "-m", "snakemake", "--unlock", *snakemake_args], cwd=folder,
                         capture_output=True, text=True)
    if out.returncode != 0:
        print(out.stdout[-2000:] + out.stderr[-2000:], file=sys.stderr)
        print(f"finebench: `snakemake --unlock` failed; run it yourself: snakemake --unlock {' '.join(snakemake_args)}",
              file=sys.stderr)
        return out.returncode
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m finebench.workdir", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("clean", help="remove what is cheap to rebuild; flags add the expensive parts")
    c.add_argument("--data", action="store_true", help="also the prepared datasets (results/data)")
    c.add_argument("--mlflow", action="store_true", help="also the MLflow store (mlflow.db, mlartifacts, mlflow/)")
    c.add_argument("--downloads", metavar="DIR", help="also the download cache DIR (e.g. results/downloads)")
    c.add_argument("--only", action="store_true", help="only what the flags name, not the cheap outputs")
    sub.add_parser("unlock-stale", help="remove a dead snakemake's lock (none of this folder is running); other "
                                        "arguments (e.g. --configfile FILE) are passed to snakemake --unlock")
    args, rest = p.parse_known_args(argv)
    if rest and args.command != "unlock-stale":
        p.error(f"unrecognized arguments: {' '.join(rest)}")
    folder = Path.cwd()
    if args.command == "clean":
        clean(folder, args.data, args.mlflow, args.downloads, cheap=not args.only)
        return 0
    return unlock_stale(folder, rest)


if __name__ == "__main__":
    sys.exit(main())
