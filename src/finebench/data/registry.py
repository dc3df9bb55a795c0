"""Dataset registry and the uniform prepared form every trainer input comes from.

A dataset *source* turns options into arrays. ``prepare_task`` runs it once into
``results/data/{task}/``: ``{split}_x.npy`` / ``{split}_y.npy`` for split in train/val/test, any extra files the
source writes (e.g. ``tokenizer.json``), and ``manifest.json`` — written into a sibling temporary folder and renamed
into place only when complete, so a half-prepared dataset is never consumed.

Input kinds (``manifest["input"]["kind"]``) tell the loader (finebench.loader) how to turn stored arrays into model
inputs; the stored form is model-agnostic:
- ``image``: uint8 ``[N, C, H, W]`` -> float, normalised with the *model's* mean/std (a pretrained timm model's own,
  else [-1, 1]); images stored larger than ``height`` x ``width`` (``stored_size``) are centre-cropped for evaluation
  and, with ``augment: random_resized_crop_flip``, randomly crop-resized and flipped for training
- ``tokens``: int32 ``[N, T]`` padded with ``pad_id`` (0) -> int64, each batch trimmed to its longest sequence
- ``spectrogram``: float16 ``[N, 1, n_mels, frames]`` -> float, standardised with the train split's mean/std
- ``waveform``: float16 ``[N, samples]`` raw audio -> float (hf: audio models extract their own features)
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from finebench.errors import FinebenchError
from finebench.files import atomic_dir

SPLITS = ("train", "val", "test")


@dataclass
class DatasetSource:
    name: str
    modality: str  # vision | text | speech
    description: str
    defaults: dict
    build: Callable[[Path, dict], dict]  # (work_dir, options) -> {"arrays": {split: (x, y)}, "manifest": {...}}
    citation: str = ""
    remotes: list = field(default_factory=list)  # download.Remote files; empty = nothing to download
    archive_root: str = ""  # where the official layout's root lies inside the extracted downloads
    # The release's published counts: {"classes": n, "splits": {split: n per official file}, "options": {...}} —
    # checked after every build (see ``check_official``); "options" lists the option values the counts hold for.
    official: dict | None = None
    task_type: str = "classification"  # a registered task type (finebench.tasks); written into the manifest
    # A caveat about the data shown wherever its results are (table headings, plot titles, the MLflow tag data_note),
    # e.g. "SYNTHESIZED speech (espeak-ng)"; written into the manifest as ``data_note``.
    data_note: str = ""
    # Cores its preparation keeps busy (the Snakemake rule's threads; capped by --cores): 1 for the embedded
    # generators, so two of them — or one and a training job — run side by side; more for decoding pools.
    prepare_threads: int = 1
    # The task's options checked and in one canonical form (config.check before any job, config.task_options), so that
    # equivalent spellings never prepare the data again; raises FinebenchError("option: what is wrong")
    normalize: Callable[[dict], dict] | None = None

    @property
    def downloadable(self) -> bool:
        return bool(self.remotes)


DATASETS: dict[str, DatasetSource] = {}


def check_option_values(source: DatasetSource, options: dict) -> None:
    """What every source's options must be, checked before any job: a value of the type of its default (a whole
    number >= 0 where the default is one, true/false where it is), fractions in [0, 1) that leave training examples.
    Raises FinebenchError("option: what is wrong")."""
    for key, default in source.defaults.items():
        value = options.get(key)
        if value is None or default is None:
            continue
        if key.endswith("_fraction"):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
                raise FinebenchError(f"{key}: {value!r} — a fraction, at least 0 and below 1")
        elif isinstance(default, bool):
            if not isinstance(value, bool):
                raise FinebenchError(f"{key}: {value!r} — true or false")
        elif isinstance(default, int) and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise FinebenchError(f"{key}: {value!r} — a whole number, 0 or more")
    carved = sum(options.get(k) or 0 for k in ("val_fraction", "test_fraction"))
    if carved >= 1:
        raise FinebenchError(f"val_fraction + test_fraction: {carved:g} — they must leave examples for training")


def register(source: DatasetSource) -> DatasetSource:
    if source.name in DATASETS:
        raise ValueError(f"dataset {source.name!r} registered twice")
    DATASETS[source.name] = source
    return source


def carve_splits(records: dict[str, list], opt: dict, classes: list[str] | None = None) -> tuple[dict[str, list], dict]:
    """Fill a missing ``val`` (and ``test``) split from ``train``: stratified by label, seeded by ``opt['seed']``.

    ``records[split]`` is a list of ``(item, label)``. Returns the completed splits and what was carved (for the
    manifest). Every class must keep one training example and give one to each carved split; a class with fewer
    examples is an error naming it (``min_per_class`` drops such classes first, see :func:`drop_rare_classes`).
    """
    carved = {}
    rng = np.random.default_rng(opt.get("seed", 0))
    to_carve = [s for s in ("test", "val") if not records.get(s)]
    if to_carve:
        counts = np.bincount([lab for _, lab in records["train"]], minlength=len(classes or ()))
        need_n = 1 + len(to_carve)
        short = [(lab, int(n)) for lab, n in enumerate(counts) if 0 < n < need_n]
        if short:
            names = ", ".join(f"{classes[lab] if classes else lab!r} ({n})" for lab, n in short[:10])
            more = f" and {len(short) - 10} more" if len(short) > 10 else ""
            raise FinebenchError(
                f"{len(short)} class(es) have too few examples to carve {' and '.join(to_carve)} from train "
                f"(each class needs {need_n}: one for train and one per carved split): {names}{more}. "
                f"Add examples, or set tasks.<task>.min_per_class: {need_n} to drop such classes "
                f"(they are listed in the manifest)")
    for split, fraction in (("test", opt.get("test_fraction", 0.2)), ("val", opt.get("val_fraction", 0.1))):
        if records.get(split):
            continue
        train = records["train"]
        labels = np.array([lab for _, lab in train])
        take = set()
        for lab in np.unique(labels):
            idx = np.flatnonzero(labels == lab)
            n = int(round(len(idx) * fraction))
            if len(idx) > 1 and n == 0:
                n = 1
            take.update(rng.permutation(idx)[:n].tolist())
        records[split] = [r for i, r in enumerate(train) if i in take]
        records["train"] = [r for i, r in enumerate(train) if i not in take]
        carved[split] = {"from": "train", "fraction": fraction, "n": len(records[split]), "seed": opt.get("seed", 0)}
    return records, carved


def drop_rare_classes(records: dict[str, list], classes: list[str],
                      opt: dict) -> tuple[dict[str, list], list[str], dict]:
    """``min_per_class: N`` (bring-your-own datasets): drop the classes with fewer than N examples (all splits
    together) and renumber the rest. Returns the records, the kept classes and ``{class: count}`` of those dropped."""
    minimum = opt.get("min_per_class")
    if not minimum:
        return records, classes, {}
    counts = np.zeros(len(classes), dtype=int)
    for rows in records.values():
        for _, lab in rows:
            counts[lab] += 1
    keep = [lab for lab in range(len(classes)) if counts[lab] >= minimum]
    dropped = {classes[lab]: int(counts[lab]) for lab in range(len(classes)) if counts[lab] < minimum}
    if not keep:
        raise FinebenchError(f"tasks.<task>.min_per_class: {minimum} drops every class "
                             f"(the largest has {counts.max()} examples)")
    if dropped:
        print(f"[finebench] min_per_class {minimum}: dropped {len(dropped)} class(es) with fewer examples: "
              f"{', '.join(f'{c} ({n})' for c, n in list(dropped.items())[:10])}", file=sys.stderr, flush=True)
    new = {old: i for i, old in enumerate(keep)}
    records = {s: [(item, new[lab]) for item, lab in rows if lab in new] for s, rows in records.items()}
    return records, [classes[lab] for lab in keep], dropped


def official_split_sizes(manifest: dict) -> dict[str, int]:
    """How many examples each official split file held: carved splits go back to train, dropped rows are added."""
    carved = manifest.get("carved_splits") or {}
    read = {s: v["n"] for s, v in manifest["splits"].items() if s not in carved}
    read["train"] += sum(c["n"] for c in carved.values())
    for split, n in (manifest.get("source", {}).get("dropped") or {}).items():
        read[split] += n
    return read


def check_official(source: DatasetSource, options: dict, manifest: dict) -> dict | None:
    """Compare what was parsed with the release's published counts; None when the source has none to compare."""
    want = source.official
    if not want or any(options.get(k) != v for k, v in want.get("options", {}).items()):
        return None
    read = official_split_sizes(manifest)
    expected = {"classes": want["classes"], **want["splits"]}
    found = {"classes": manifest["num_classes"], **{s: read.get(s, 0) for s in want["splits"]}}
    differ = [f"{k} {found[k]} (official {v})" for k, v in expected.items() if found[k] != v]
    if differ:
        print(f"[finebench] WARNING {source.name}: the files at {options.get('root')} differ from the official "
              f"release: {', '.join(differ)} — a partial or modified copy? The results will not be comparable with "
              f"published ones.",
              file=sys.stderr, flush=True)
    return {"expected": expected, "found": found, "match": not differ}


def prepare_task(task: str, dataset: str, options: dict, out_dir: str | Path) -> dict:
    """Build ``dataset`` with ``options`` into ``out_dir`` atomically; returns the manifest."""
    source = DATASETS[dataset]
    out_dir = Path(out_dir)
    try:
        return _prepare(task, source, options, out_dir)
    except FinebenchError as exc:  # messages name options as tasks.<task>.key: put the real task name in
        raise FinebenchError(str(exc).replace("tasks.<task>", f"tasks.{task}")) from exc


def _prepare(task: str, source: DatasetSource, options: dict, out_dir: Path) -> dict:
    dataset = source.name
    with atomic_dir(out_dir) as work:
        t0 = time.perf_counter()
        built = source.build(work, dict(options))
        manifest = {
            "task": task,
            "dataset": dataset,
            "modality": source.modality,
            "task_type": source.task_type,
            "description": source.description,
            "citation": source.citation,
            "data_note": source.data_note,
            "options": options,
            **built["manifest"],
        }
        classes = manifest["classes"]
        manifest["num_classes"] = len(classes)
        manifest["splits"] = {}
        for split in SPLITS:
            if built.get("arrays") is None:  # the source wrote its own files and counted them (e.g. super-resolution)
                manifest["splits"][split] = built["splits"][split]
                continue
            x, y = built["arrays"][split]
            if isinstance(x, (str, Path)):  # the source already wrote {split}_x.npy (memory-mapped, large data)
                x = np.load(x, mmap_mode="r")
            if len(x) != len(y) or len(x) == 0:
                raise FinebenchError(f"dataset {dataset!r}: split {split!r} is empty or x/y lengths differ")
            y = np.asarray(y, dtype=np.int64)
            if y.min() < 0 or y.max() >= len(classes):
                raise FinebenchError(f"dataset {dataset!r}: split {split!r} has labels outside 0..{len(classes) - 1}")
            if not isinstance(x, np.memmap):
                np.save(work / f"{split}_x.npy", x)
            np.save(work / f"{split}_y.npy", y)
            manifest["splits"][split] = {
                "n": int(len(y)),
                "class_counts": np.bincount(y, minlength=len(classes)).tolist(),
            }
        if built.get("arrays") is not None:  # labelled examples: every class needs training examples
            check_class_coverage(source, manifest)
        manifest["official_split"] = bool(source.official)  # the release defines the splits (else the source does)
        # compared here for a release with fixed splits; a source that compared its own folders keeps its result
        manifest["official_counts"] = check_official(source, options, manifest) or manifest.get("official_counts")
        manifest["arrays"] = array_records(work)
        manifest["prepare_seconds"] = round(time.perf_counter() - t0, 2)
        (work / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return manifest


# ---------------------------------------------------------------------------------------------------------------
# What was prepared, checked by every job: a truncated array would otherwise fail as numpy's "mmap length is greater
# than file size" naming no file, and a zero-filled one would train silently to chance and be ranked.

# Every job checks each array's shape, dtype and size (its .npy header and the file's length: microseconds); it
# hashes the arrays too while their total is at most this many bytes (sha256 reads ~1.6 GB/s on this 2-core
# machine's page cache, so ≤ ~0.7 s per job); above it the hash is checked by `python -m finebench verify-data DIR`.
HASH_LIMIT_BYTES = int(os.environ.get("FINEBENCH_VERIFY_HASH_BYTES", 1 << 30))


def _npy_header(path: Path) -> tuple[list[int], str, int]:
    """(shape, dtype, expected file size) from a .npy file's header, without reading its data."""
    with open(path, "rb") as f:
        version = np.lib.format.read_magic(f)
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, dtype = read(f)
        return list(shape), dtype.str, f.tell() + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


def array_records(folder: Path) -> dict:
    """``{file: {shape, dtype, bytes, sha256}}`` for every ``.npy`` in ``folder`` (symlinks followed): the manifest's
    ``arrays``, what :func:`verify_arrays` checks."""
    records = {}
    for path in sorted(Path(folder).glob("*.npy")):
        shape, dtype, _ = _npy_header(path)
        records[path.name] = {"shape": shape, "dtype": dtype, "bytes": path.stat().st_size, "sha256": _sha256(path)}
    return records


def verify_arrays(folder: str | Path, manifest: dict, full: bool | None = None) -> str:
    """Check the arrays of a prepared folder against its manifest: shape, dtype and size always, the sha256 when
    ``full`` (default: while the arrays total at most ``HASH_LIMIT_BYTES``). Raises FinebenchError naming the file and
    the fix; returns what was checked, in words. Folders prepared by older versions (no ``arrays``) pass."""
    folder, records = Path(folder), manifest.get("arrays")
    if not records:
        return "not checked (prepared by an older finebench: no array records in its manifest)"
    redo = (f"prepare it again: remove {folder} and rerun the workflow (Snakemake rebuilds it and retrains the runs "
            f"that read it)")
    total = sum(r["bytes"] for r in records.values())
    if full is None:
        full = total <= HASH_LIMIT_BYTES
    for name, want in records.items():
        path = folder / name
        try:
            shape, dtype, size_from_header = _npy_header(path)
            size = path.stat().st_size
        except FileNotFoundError:
            raise FinebenchError(f"{path}: missing from the prepared data — {redo}") from None
        except (OSError, ValueError) as exc:
            raise FinebenchError(f"{path}: not a readable .npy array ({exc}) — {redo}") from None
        if (shape, dtype) != (want["shape"], want["dtype"]):
            raise FinebenchError(f"{path}: holds {dtype} {shape}, prepared as {want['dtype']} {want['shape']} — {redo}")
        if size != want["bytes"] or size != size_from_header:
            raise FinebenchError(f"{path}: {size:,} bytes, prepared as {want['bytes']:,} (truncated or overwritten?) — "
                                 f"{redo}")
        if full and _sha256(path) != want["sha256"]:
            raise FinebenchError(f"{path}: its content changed since it was prepared (sha256 differs from the "
                                 f"manifest's) — {redo}")
    return (f"{len(records)} arrays, {total / 2**20:,.1f} MiB: shapes, sizes"
            + (" and sha256 checked" if full else f" checked; sha256 not (over {HASH_LIMIT_BYTES / 2**20:,.0f} MiB: "
               f"python -m finebench verify-data {folder})"))


def check_class_coverage(source: DatasetSource, manifest: dict) -> None:
    """A class with no training example can never be predicted: in a bring-your-own dataset an error naming it. A
    class missing from a split of a release (a partial copy: the official counts flag it too), or from val or test,
    is a warning naming it, recorded in the manifest (``classes_without_examples``)."""
    classes, splits = manifest["classes"], manifest["splits"]
    missing = {s: [classes[i] for i, n in enumerate(splits[s]["class_counts"]) if n == 0] for s in SPLITS}
    missing = {s: names for s, names in missing.items() if names}
    if missing.get("train") and not source.official:
        untrained = missing["train"]
        raise FinebenchError(
            f"dataset {source.name!r}: {len(untrained)} class(es) have no training example: "
            f"{', '.join(map(repr, untrained[:10]))}{' …' if len(untrained) > 10 else ''} — add training examples for "
            f"them or remove them (or set tasks.<task>.min_per_class to drop rare classes)")
    for split, names in missing.items():
        print(f"[finebench] WARNING dataset {source.name!r}: {len(names)} class(es) have no {split} example: "
              f"{', '.join(names[:10])}{' …' if len(names) > 10 else ''}", file=sys.stderr, flush=True)
    if missing:
        manifest["classes_without_examples"] = missing


class Prepared:
    """Read side of the prepared form: memory-mapped arrays + batching for the trainer."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        manifest_path = self.path / "manifest.json"
        if not manifest_path.is_file():
            raise FinebenchError(f"{self.path}: no manifest.json — the dataset was not prepared (or not completely)")
        self.manifest = json.loads(manifest_path.read_text())
        self.input = self.manifest["input"]
        self.classes = self.manifest["classes"]
        self.num_classes = len(self.classes)

    def verify(self, full: bool | None = None) -> str:
        """Check the arrays against the manifest (see :func:`verify_arrays`); returns what was checked."""
        return verify_arrays(self.path, self.manifest, full)

    def arrays(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        try:
            return np.load(self.path / f"{split}_x.npy", mmap_mode="r"), np.load(self.path / f"{split}_y.npy")
        except (OSError, ValueError) as exc:  # e.g. "mmap length is greater than file size": name the folder
            raise FinebenchError(f"{self.path}: split {split!r} cannot be read ({exc}) — prepare it again: remove "
                                 f"{self.path} and rerun the workflow") from None

    def batches(self, split: str, batch_size: int, device="cpu", shuffle: bool = False, generator=None,
                augment: bool = False, preprocess: dict | None = None):
        """Yield model-ready ``(x, y)`` tensors (see finebench.loader.Loader; no prefetch thread here)."""
        from finebench.loader import Loader

        yield from Loader(self, split, batch_size, device, shuffle=shuffle, generator=generator, augment=augment,
                          preprocess=preprocess, prefetch=0)
