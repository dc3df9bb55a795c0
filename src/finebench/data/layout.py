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


# Files a class folder may hold besides its items without anyone noticing (hidden files are ignored too).
HARMLESS_FILES = {"thumbs.db", "desktop.ini"}


def folder_records(root: Path, extensions: set[str], what: str, skip_bad_files: bool = False
                   ) -> tuple[dict[str, list], list[str], list[Path]]:
    """root/[split/]label/file -> ({split: [(path, label)]}, classes, skipped files). Splits present: train (+ val,
    test). Files whose extension is not in ``extensions`` are an error naming them, or, with ``skip_bad_files``,
    skipped and returned; a class folder with no usable file is an error naming the folder."""
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
    unsupported, empty = [], []
    for split, base in layout.items():
        for c in classes:
            folder = base / c
            if not folder.is_dir():
                continue
            files = [p for p in sorted(folder.iterdir())
                     if p.is_file() and not p.name.startswith(".") and p.name.lower() not in HARMLESS_FILES]
            items = [p for p in files if p.suffix.lower() in extensions]
            unsupported += [p for p in files if p.suffix.lower() not in extensions]
            if not items:
                empty.append(f"{folder}{f' (only {len(files)} unsupported file(s))' if files else ''}")
            records[split] += [(p, index[c]) for p in items]
    if unsupported and not skip_bad_files:
        kinds = ", ".join(sorted({p.suffix.lower() or "(no extension)" for p in unsupported}))
        raise FinebenchError(
            f"{root}: {len(unsupported)} file(s) are not {what} this reader supports ({kinds}), e.g. "
            f"{', '.join(str(p) for p in unsupported[:5])}; supported: {', '.join(sorted(extensions))}. Convert or "
            f"remove them, or set tasks.<task>.skip_bad_files: true to skip them (counted in the manifest)")
    if empty:
        raise FinebenchError(
            f"{len(empty)} class folder(s) hold no {what}: {'; '.join(empty[:10])}{' …' if len(empty) > 10 else ''}. "
            f"An empty class folder would become a class that is never seen; add files or remove the folder")
    return records, classes, unsupported


def skipped_files(files: list[tuple[Path, str]]) -> dict:
    """Manifest entry for files left out by ``skip_bad_files``: how many, why, and the first 100 by name."""
    from collections import Counter

    return {"n": len(files), "reasons": dict(Counter(reason for _, reason in files)),
            "files": [f"{p}: {reason}" for p, reason in files[:100]]}
