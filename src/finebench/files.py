"""Small file helpers shared by every stage."""

from __future__ import annotations

import json
import os
from pathlib import Path


def write_json_atomic(path: str | Path, obj) -> None:
    """Write JSON to a temporary sibling and rename it into place: readers see the old file or the new, never half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(obj, indent=2) + "\n")
    os.replace(tmp, path)
