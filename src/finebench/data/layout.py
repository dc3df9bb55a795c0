"""Helpers for reading datasets laid out on disk (official layouts and bring-your-own folders)."""

from __future__ import annotations

from pathlib import Path

from finebench.data.registry import SPLITS
from finebench.errors import FinebenchError


def need(path: Path, what: str) -> Path:
    if not path.exists():
        raise FinebenchError(f"{path}: missing — expected {what} (is tasks.<task>.root the folder the official archive extracts to?)")
    return path


def read_lines(path: Path, encoding: str = "utf-8") -> list[str]:
    return [line.rstrip("\n\r") for line in open(need(path, "a list file"), encoding=encoding) if line.strip()]


def root_of(opt: dict, name: str) -> Path:
    if not opt.get("root"):
        raise FinebenchError(f"{name}: no root — set tasks.<task>.root to the extracted official files (or let the download rule fetch them)")
    return Path(opt["root"])


def folder_records(root: Path, is_item) -> tuple[dict[str, list], list[str]]:
    """root/[split/]label/file -> ({split: [(path, label)]}, classes). Splits present: train (+ val, test)."""
    if not root.is_dir():
        raise FinebenchError(f"{root}: folder not found (tasks.<task>.root)")
    split_dirs = {s: root / s for s in SPLITS if (root / s).is_dir()}
    if split_dirs and "train" not in split_dirs:
        raise FinebenchError(f"{root}: has {sorted(split_dirs)} folders but no train/")
    layout = split_dirs or {"train": root}
    classes = sorted({d.name for base in layout.values() for d in base.iterdir() if d.is_dir() and not d.name.startswith((".", "_"))})
    if not classes:
        raise FinebenchError(f"{root}: no class folders found (expected root/[split/]label/files)")
    index = {c: i for i, c in enumerate(classes)}
    records = {s: [] for s in layout}
    for split, base in layout.items():
        for c in classes:
            if (base / c).is_dir():
                records[split] += [(p, index[c]) for p in sorted((base / c).iterdir()) if is_item(p)]
    return records, classes
