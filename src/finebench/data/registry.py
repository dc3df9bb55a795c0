"""Dataset registry and the uniform prepared form every trainer input comes from.

A dataset *source* turns options into arrays. ``prepare_task`` runs it once into
``results/data/{task}/``: ``{split}_x.npy`` / ``{split}_y.npy`` for split in train/val/test, any extra files the
source writes (e.g. ``tokenizer.json``), and ``manifest.json`` — written into a sibling temporary folder and renamed
into place only when complete, so a half-prepared dataset is never consumed.

Input kinds (``manifest["input"]["kind"]``) tell the loader how to turn stored arrays into model inputs:
- ``image``: uint8 ``[N, C, H, W]`` -> float in [-1, 1]
- ``tokens``: int32 ``[N, T]`` padded with ``pad_id`` (0) -> int64, each batch trimmed to its longest sequence
- ``spectrogram``: float16 ``[N, 1, n_mels, frames]`` -> float, standardised with the train split's mean/std
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from finebench.errors import FinebenchError

SPLITS = ("train", "val", "test")


@dataclass
class DatasetSource:
    name: str
    modality: str  # vision | text | speech
    description: str
    defaults: dict
    build: Callable[[Path, dict], dict]  # (work_dir, options) -> {"arrays": {split: (x, y)}, "manifest": {...}}
    citation: str = ""
    extra: dict = field(default_factory=dict)


DATASETS: dict[str, DatasetSource] = {}


def register(source: DatasetSource) -> DatasetSource:
    if source.name in DATASETS:
        raise ValueError(f"dataset {source.name!r} registered twice")
    DATASETS[source.name] = source
    return source


def prepare_task(task: str, dataset: str, options: dict, out_dir: str | Path) -> dict:
    """Build ``dataset`` with ``options`` into ``out_dir`` atomically; returns the manifest."""
    source = DATASETS[dataset]
    out_dir = Path(out_dir)
    work = out_dir.parent / f".{out_dir.name}.partial-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        t0 = time.perf_counter()
        built = source.build(work, dict(options))
        manifest = {
            "task": task,
            "dataset": dataset,
            "modality": source.modality,
            "description": source.description,
            "citation": source.citation,
            "options": options,
            **built["manifest"],
        }
        classes = manifest["classes"]
        manifest["num_classes"] = len(classes)
        manifest["splits"] = {}
        for split in SPLITS:
            x, y = built["arrays"][split]
            if len(x) != len(y) or len(x) == 0:
                raise FinebenchError(f"dataset {dataset!r}: split {split!r} is empty or x/y lengths differ")
            y = np.asarray(y, dtype=np.int64)
            if y.min() < 0 or y.max() >= len(classes):
                raise FinebenchError(f"dataset {dataset!r}: split {split!r} has labels outside 0..{len(classes) - 1}")
            np.save(work / f"{split}_x.npy", x)
            np.save(work / f"{split}_y.npy", y)
            manifest["splits"][split] = {
                "n": int(len(y)),
                "class_counts": np.bincount(y, minlength=len(classes)).tolist(),
            }
        manifest["prepare_seconds"] = round(time.perf_counter() - t0, 2)
        (work / "manifest.json").write_text(json.dumps(manifest, indent=2))
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(work, out_dir)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return manifest


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

    def arrays(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        x = np.load(self.path / f"{split}_x.npy", mmap_mode="r")
        y = np.load(self.path / f"{split}_y.npy")
        return x, y

    def to_tensor(self, x: np.ndarray, device):
        """Stored batch -> model input tensor, per input kind."""
        import torch

        kind = self.input["kind"]
        if kind == "image":
            t = torch.from_numpy(np.ascontiguousarray(x)).to(device)
            return t.float().div_(127.5).sub_(1.0)
        if kind == "tokens":
            t = torch.from_numpy(np.ascontiguousarray(x)).to(device).long()
            longest = int((t != self.input.get("pad_id", 0)).sum(1).max().clamp(min=1))
            return t[:, :longest]
        if kind == "spectrogram":
            t = torch.from_numpy(np.ascontiguousarray(x)).to(device).float()
            return (t - self.input["mean"]) / self.input["std"]
        raise FinebenchError(f"{self.path}: unknown input kind {kind!r}")

    def batches(self, split: str, batch_size: int, device, shuffle: bool = False, generator=None):
        """Yield (x, y) tensors. Shuffling uses ``generator`` (a seeded torch.Generator) for reproducibility."""
        import torch

        x, y = self.arrays(split)
        n = len(y)
        order = torch.randperm(n, generator=generator).numpy() if shuffle else np.arange(n)
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            yield self.to_tensor(x[idx], device), torch.from_numpy(y[idx]).to(device)
