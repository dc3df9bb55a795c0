"""Helpers for reading datasets laid out on disk (official layouts and bring-your-own folders), and for saying what a
partial or edited copy of a release lacks (:class:`CopyFindings`)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from finebench.data.registry import SPLITS, carve_splits
from finebench.errors import FinebenchError


def need(path: Path, what: str) -> Path:
    if not path.exists():
        raise FinebenchError(f"{path}: missing — expected {what} "
                             f"(is tasks.<task>.root the folder the official archive extracts to?)")
    return path


def read_lines(path: Path, encoding: str = "utf-8") -> list[str]:
    return [line.rstrip("\n\r") for line in open(need(path, "a list file"), encoding=encoding) if line.strip()]


def root_of(opt: dict, name: str) -> Path:
    if not opt.get("root"):
        raise FinebenchError(f"{name}: no root — set tasks.<task>.root to the extracted official files "
                             f"(or let the download rule fetch them)")
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
    classes = sorted({d.name for base in layout.values() for d in base.iterdir()
                      if d.is_dir() and not d.name.startswith((".", "_"))})
    if not classes:
        raise FinebenchError(f"{root}: no class folders found (expected root/[split/]label/files)")
    index = {c: i for i, c in enumerate(classes)}
    records: dict[str, list[tuple[Path, int]]] = {s: [] for s in layout}
    unsupported: list[Path] = []
    empty: list[str] = []
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


def list_lines(path: Path, what: str, encoding: str = "utf-8-sig"):
    """(line number, line without surrounding spaces) of a list file's non-blank lines: a trailing newline, blank
    lines, CRLF endings, a byte-order mark and stray trailing spaces are what editors leave, never an error."""
    with open(need(path, what), encoding=encoding) as f:
        for i, line in enumerate(f, 1):
            if line.strip():
                yield i, line.strip()


def id_rows(path: Path, what: str) -> dict[int, tuple[str, int]]:
    """'<id> <value>' lines -> {id: (value, line number)}; a line without both, an id that is not a number or an id
    given twice is an error naming the file and line."""
    rows: dict[int, tuple[str, int]] = {}
    for i, line in list_lines(path, f"a list of '<id> <{what}>' lines"):
        parts = line.split(None, 1)
        if len(parts) != 2 or not parts[0].isdigit():
            raise FinebenchError(f"{path}:{i}: expected '<id> <{what}>', got {line!r}")
        k = int(parts[0])
        if k in rows:
            raise FinebenchError(f"{path}:{i}: id {k} is given twice (first at line {rows[k][1]})")
        rows[k] = (parts[1].strip(), i)
    return rows


def name_key(name: str) -> str:
    """A class name as two files of one release (or an edited copy) may spell it: spaces and case aside."""
    return " ".join(name.split()).casefold()


def name_index(names: list[str], path: Path, lines: list[int] | None = None) -> dict[str, int]:
    """{name_key(name): position} of a class list; two names that differ only in spaces or case are an error."""
    index: dict[str, int] = {}
    for k, name in enumerate(names):
        if name_key(name) in index:
            where = f":{lines[k]}" if lines else ""
            raise FinebenchError(f"{path}{where}: class {name!r} is listed twice "
                                 f"(also as {names[index[name_key(name)]]!r})")
        index[name_key(name)] = k
    return index


def ranges(ids) -> str:
    """[1, 2, 3, 6, 8, 9] -> '1-3, 6, 8-9' (the first 12 runs)."""
    ids = sorted(ids)
    runs: list[list[int]] = []  # [first, last] of each run
    for k in ids:
        if runs and k == runs[-1][1] + 1:
            runs[-1][1] = k
        else:
            runs.append([k, k])
    text = ", ".join(f"{a}-{b}" if b > a else f"{a}" for a, b in runs[:12])
    return text + (" …" if len(runs) > 12 else "")


def examples(items, n: int = 5) -> str:
    items = list(items)
    return ", ".join(map(str, items[:n])) + (f" … ({len(items)} in all)" if len(items) > n else "")


class CopyFindings:
    """What a parser met in a copy of a release that the release does not have: each finding is printed as one
    ``[finebench] WARNING <dataset>: …`` line and kept for the manifest (``source.partial_copy``)."""

    def __init__(self, dataset: str):
        self.dataset = dataset
        self.found: list[dict] = []

    def warn(self, kind: str, message: str, **details) -> None:
        print(f"[finebench] WARNING {self.dataset}: {message}", file=sys.stderr, flush=True)
        self.found.append({"kind": kind, "message": message, **details})

    def source(self, source: dict) -> dict:
        return {**source, "partial_copy": self.found} if self.found else source

    def missing_files(self, records: dict[str, list], lists: dict[str, Path], what: str = "images") -> dict[str, list]:
        """Leave out the records whose file is not on disk (each folder listed once, not one stat per file), with one
        warning naming how many per split; a split whose every file is missing is an error naming its list file."""
        listing: dict[Path, set] = {}

        def on_disk(p: Path) -> bool:
            if p.parent not in listing:
                try:
                    listing[p.parent] = set(os.listdir(p.parent))
                except OSError:
                    listing[p.parent] = set()
            return p.name in listing[p.parent]

        out, counts, first = {}, {}, None
        for split, rows in records.items():
            out[split] = [r for r in rows if on_disk(r[0])]
            if len(out[split]) < len(rows):
                counts[split] = (len(rows) - len(out[split]), len(rows))
                gone = next(p for p, _ in rows if not on_disk(p))
                first = first or gone
                if not out[split]:
                    raise FinebenchError(
                        f"{lists[split]}: none of the {len(rows)} {what} it lists for {split} is on disk (e.g. {gone}) "
                        f"— is tasks.<task>.root the folder the official archive extracts to?")
        if counts:
            per = ", ".join(f"{s} {n} of {total} ({lists[s].name})" for s, (n, total) in counts.items())
            self.warn("missing_files", f"{sum(n for n, _ in counts.values())} {what} listed but not on disk, left out: "
                      f"{per}; e.g. {first}", n={s: n for s, (n, _) in counts.items()}, first=str(first))
        return out

    def present_classes(self, records: dict[str, list], classes: list[str], where: str
                        ) -> tuple[dict[str, list], list[str]]:
        """The classes with at least one example in the copy (any split), renumbered 0..K-1 in the release's order,
        their names kept; a warning names those without one."""
        seen = {lab for rows in records.values() for _, lab in rows}
        if len(seen) == len(classes):
            return records, classes
        keep = sorted(seen)
        absent = [classes[k] for k in range(len(classes)) if k not in seen]
        self.warn("absent_classes", f"{len(absent)} of the {len(classes)} classes {where} have no example in this "
                  f"copy: {examples(absent, 10)}; the {len(keep)} present are prepared as classes 0-{len(keep) - 1} "
                  f"(in the release's order, names kept)", absent=absent)
        new = {old: i for i, old in enumerate(keep)}
        return {s: [(item, new[lab]) for item, lab in rows] for s, rows in records.items()}, [classes[k] for k in keep]

    def carve_val(self, records: dict[str, list], opt: dict, classes: list[str]) -> tuple[dict[str, list], dict]:
        """carve_splits for a release without a val file, except that a class with a single training example (a
        partial copy) keeps it in train (it gets no val example, with a warning) instead of stopping preparation."""
        from collections import Counter

        n = Counter(lab for _, lab in records["train"])
        single = sorted(lab for lab, c in n.items() if c == 1)
        if records.get("val") or not single:
            return carve_splits(records, opt, classes)
        kept = [r for r in records["train"] if n[r[1]] == 1]
        rest, carved = carve_splits({**records, "train": [r for r in records["train"] if n[r[1]] > 1]}, opt, classes)
        rest["train"] += kept
        self.warn("single_train_example", f"{len(single)} class(es) have a single training example, kept in train "
                  f"(so no val example is carved for them): {examples([classes[k] for k in single], 10)}",
                  classes=[classes[k] for k in single])
        return rest, carved
