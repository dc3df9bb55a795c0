"""Small file helpers shared by every stage."""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
from contextlib import contextmanager
from pathlib import Path


def write_json_atomic(path: str | Path, obj) -> None:
    """Write JSON to a temporary sibling and rename it into place: readers see the old file or the new, never half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(obj, indent=2) + "\n")
    os.replace(tmp, path)


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this host (a zombie — exited, not yet reaped — counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):  # no /proc (macOS) or it just exited
        return True


def remove_stale_partials(target: str | Path) -> list[Path]:
    """Remove ``.{name}.partial-{host}-{pid}`` siblings of ``target`` left by a killed process (kill -9, power loss)
    of this host whose pid is no longer alive; the older ``.{name}.partial-{pid}`` form too. A partial folder of a
    live process, or of another host (shared file systems), is left alone. Returns the folders removed."""
    target = Path(target)
    removed = []
    host = socket.gethostname()
    for work in target.parent.glob(f".{target.name}.partial-*"):
        tag = work.name[len(f".{target.name}.partial-"):]
        owner, _, pid = tag.rpartition("-") if "-" in tag else (host, "", tag)
        if owner != host or not pid.isdigit() or int(pid) == os.getpid() or pid_alive(int(pid)):
            continue
        shutil.rmtree(work, ignore_errors=True)
        removed.append(work)
        print(f"[finebench] removed {work}: left half-built by process {pid}, which is gone", file=sys.stderr, flush=True)
    return removed


@contextmanager
def atomic_dir(target: str | Path):
    """Yield a temporary sibling folder to fill; on success it replaces ``target`` in one rename, on any error it is
    removed — a half-built folder is never seen under ``target``'s name. Partial folders that killed processes left
    behind are removed first (see :func:`remove_stale_partials`)."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_partials(target)
    work = target.parent / f".{target.name}.partial-{socket.gethostname()}-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        yield work
        if target.exists():
            shutil.rmtree(target)
        os.replace(work, target)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
