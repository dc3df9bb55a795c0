"""Small file helpers shared by every stage."""

from __future__ import annotations

import json
import os
import shutil
from contextlib import contextmanager
from pathlib import Path


def write_json_atomic(path: str | Path, obj) -> None:
    """Write JSON to a temporary sibling and rename it into place: readers see the old file or the new, never half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(obj, indent=2) + "\n")
    os.replace(tmp, path)


@contextmanager
def atomic_dir(target: str | Path):
    """Yield a temporary sibling folder to fill; on success it replaces ``target`` in one rename, on any error it is
    removed — a half-built folder is never seen under ``target``'s name."""
    target = Path(target)
    work = target.parent / f".{target.name}.partial-{os.getpid()}"
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
