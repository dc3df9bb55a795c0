"""Small file helpers shared by every stage."""

from __future__ import annotations

import errno
import json
import math
import os
import re
import shutil
import socket
import sys
from contextlib import contextmanager
from pathlib import Path

from finebench.errors import FinebenchError


def write_json_atomic(path: str | Path, obj) -> None:
    """Write JSON to a temporary sibling and rename it into place: readers see the old file or the new, never half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with replacing(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2) + "\n")


@contextmanager
def replacing(path: str | Path):
    """Yield ``{path}.tmp{pid}`` to write; renamed onto ``path`` when the block succeeds, removed when it fails (a
    full disk, a kill): a reader sees the old file or the new, and nothing half-written stays behind."""
    path = Path(path)
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


TEMPORARY = re.compile(r".+\.tmp(\d+)$")  # what replacing() writes


def remove_stale_temporaries(folder: str | Path) -> list[Path]:
    """Remove ``*.tmp{pid}`` files in ``folder`` left by a process of this host that is gone (kill -9, power loss —
    the cases where ``replacing`` cannot clean up). Returns the files removed."""
    removed = []
    for f in Path(folder).glob("*.tmp*"):
        m = TEMPORARY.match(f.name)
        if m and f.is_file() and int(m.group(1)) != os.getpid() and not pid_alive(int(m.group(1))):
            f.unlink(missing_ok=True)
            removed.append(f)
    return removed


LOW_SPACE_BYTES = 1 << 20  # a failed write with less than this left on its file system is taken for a full disk


def out_of_space(exc: BaseException, folder: str | Path) -> FinebenchError | None:
    """A FinebenchError naming ``folder``, its file system's free space and the remedy when ``exc`` is a write that
    failed for lack of space — ENOSPC / EDQUOT, or a library's own write error (torch.save: "unexpected pos …") with
    almost nothing left; None otherwise."""
    folder = Path(folder)
    try:
        usage = shutil.disk_usage(next(p for p in (folder, *folder.parents) if p.exists()))
    except (OSError, StopIteration):
        usage = None
    full = isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)
    low = usage is not None and usage.free < LOW_SPACE_BYTES
    if not (full or low and any(s in str(exc).lower() for s in ("unexpected pos", "write", "disk is full"))):
        return None
    where = f" ({getattr(exc, 'filename', None)})" if getattr(exc, "filename", None) else ""
    space = (f"{usage.free / 2**20:,.1f} MiB free of {usage.total / 2**30:,.1f} GiB" if usage is not None else
             "free space unknown")
    quota = " or the user's quota is used up" if isinstance(exc, OSError) and exc.errno == errno.EDQUOT else ""
    return FinebenchError(f"no space left writing to {folder}{where}: its file system is full{quota} ({space}) — free "
                          f"space there (or move results/ to a larger disk), then rerun: finished epochs are kept "
                          f"in the checkpoint")


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
        print(f"[finebench] removed {work}: left half-built by process {pid}, which is gone", file=sys.stderr,
              flush=True)
    return removed


def owned(path: str | Path, owner: str | Path) -> Path:
    """``path`` resolved, after checking that it lies strictly inside ``owner``: every folder finebench replaces or
    removes passes here first, so that no name (a task called ``..``) or setting makes it delete its owner or
    anything outside it (the config check refuses such names too; this is the guard at the point of deletion)."""
    resolved, root = Path(path).resolve(), Path(owner).resolve()
    if root not in resolved.parents:
        raise FinebenchError(f"refusing to replace or remove {path}: it resolves to {resolved}, which is not inside "
                             f"{root} — check the task and model names and results: in the config")
    return resolved


@contextmanager
def atomic_dir(target: str | Path):
    """Yield a temporary sibling folder to fill; on success it replaces ``target`` in one rename, on any error it is
    removed — a half-built folder is never seen under ``target``'s name. Partial folders that killed processes left
    behind are removed first (see :func:`remove_stale_partials`)."""
    target = Path(target)
    owned(target, target.parent)  # results/data/.. is results/ itself: never replaced
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


@contextmanager
def full_disk_named(folder: str | Path):
    """Turn a write that failed for lack of space into the FinebenchError of :func:`out_of_space`."""
    try:
        yield
    except FinebenchError:
        raise
    except Exception as exc:
        named = out_of_space(exc, folder)
        if named is None:
            raise
        raise named from exc


def finite_or_none(value):
    """JSON has no NaN/Infinity: non-finite floats become null (and are shown as such, never as a number)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite_or_none(v) for k, v in value.items()}
    return value
