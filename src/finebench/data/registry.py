"""Dataset registry and the uniform prepared form every trainer input comes from.

A dataset *source* turns options into arrays. ``prepare_task`` runs it once into
``results/data/{task}/``: ``{split}_x.npy`` / ``{split}_y.npy`` for split in train/val/test, any extra files the
source writes (e.g. ``tokenizer.json``), and ``manifest.json`` — written into a sibling temporary folder and renamed
into place only when complete, so a half-prepared dataset is never consumed.

Input kinds (``manifest["input"]["kind"]``) tell the loader how to turn stored arrays into model inputs:
- ``image``: uint8 ``[N, C, H, W]`` -> float in [-1, 1], or ImageNet-standardised with ``normalize: imagenet``;
  images stored larger than ``height`` x ``width`` (``stored_size``) are centre-cropped for evaluation and, with
  ``augment: random_resized_crop_flip``, randomly crop-resized and flipped for training
- ``tokens``: int32 ``[N, T]`` padded with ``pad_id`` (0) -> int64, each batch trimmed to its longest sequence
- ``spectrogram``: float16 ``[N, 1, n_mels, frames]`` -> float, standardised with the train split's mean/std
- ``waveform``: float16 ``[N, samples]`` raw audio -> float (hf: audio models extract their own features)
"""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from finebench.errors import FinebenchError
from finebench.files import atomic_dir

SPLITS = ("train", "val", "test")
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


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

    @property
    def downloadable(self) -> bool:
        return bool(self.remotes)


DATASETS: dict[str, DatasetSource] = {}


def register(source: DatasetSource) -> DatasetSource:
    if source.name in DATASETS:
        raise ValueError(f"dataset {source.name!r} registered twice")
    DATASETS[source.name] = source
    return source


def carve_splits(records: dict[str, list], opt: dict) -> tuple[dict[str, list], dict]:
    """Fill a missing ``val`` (and ``test``) split from ``train``: stratified by label, seeded by ``opt['seed']``.

    ``records[split]`` is a list of ``(item, label)``. Returns the completed splits and what was carved (for the
    manifest).
    """
    carved = {}
    rng = np.random.default_rng(opt.get("seed", 0))
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
        print(f"[finebench] WARNING {source.name}: the files at {options.get('root')} differ from the official release: "
              f"{', '.join(differ)} — a partial or modified copy? The results will not be comparable with published ones.",
              file=sys.stderr, flush=True)
    return {"expected": expected, "found": found, "match": not differ}


def prepare_task(task: str, dataset: str, options: dict, out_dir: str | Path) -> dict:
    """Build ``dataset`` with ``options`` into ``out_dir`` atomically; returns the manifest."""
    source = DATASETS[dataset]
    out_dir = Path(out_dir)
    with atomic_dir(out_dir) as work:
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
        manifest["official_split"] = bool(source.official)  # the release defines the splits (else the source does)
        manifest["official_counts"] = check_official(source, options, manifest)
        manifest["prepare_seconds"] = round(time.perf_counter() - t0, 2)
        (work / "manifest.json").write_text(json.dumps(manifest, indent=2))
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

    def to_tensor(self, x: np.ndarray, device, augment: bool = False, generator=None):
        """Stored batch -> model input tensor, per input kind (``augment``: train-time augmentation)."""
        import torch

        kind = self.input["kind"]
        if kind == "image":
            t = torch.from_numpy(np.ascontiguousarray(x)).to(device).float()
            t = self._crop(t, augment and self.input.get("augment"), generator)
            if self.input.get("normalize") == "imagenet":
                mean = torch.tensor(IMAGENET_MEAN, device=t.device).view(1, 3, 1, 1)
                std = torch.tensor(IMAGENET_STD, device=t.device).view(1, 3, 1, 1)
                return (t / 255.0 - mean) / std
            return t.div_(127.5).sub_(1.0)
        if kind == "tokens":
            t = torch.from_numpy(np.ascontiguousarray(x)).to(device).long()
            longest = int((t != self.input.get("pad_id", 0)).sum(1).max().clamp(min=1))
            return t[:, :longest]
        if kind == "spectrogram":
            t = torch.from_numpy(np.ascontiguousarray(x)).to(device).float()
            return (t - self.input["mean"]) / self.input["std"]
        if kind == "waveform":  # raw float16 [N, samples] clips for pretrained audio models (data/hf_tokens.py)
            return torch.from_numpy(np.ascontiguousarray(x)).to(device).float()
        raise FinebenchError(f"{self.path}: unknown input kind {kind!r}")

    def _crop(self, t, augment, generator):
        """Centre crop (eval) or random resized crop + horizontal flip (train) to the task's height x width."""
        import torch
        import torch.nn.functional as F

        h, w = self.input["height"], self.input["width"]
        H, W = t.shape[-2:]
        if not augment:
            if (H, W) == (h, w):
                return t
            top, left = (H - h) // 2, (W - w) // 2
            return t[..., top : top + h, left : left + w]
        out = []
        for img in t:
            area = H * W * (0.25 + 0.75 * torch.rand(1, generator=generator).item())
            ratio = math.exp(math.log(3 / 4) + (math.log(4 / 3) - math.log(3 / 4)) * torch.rand(1, generator=generator).item())
            ch, cw = min(H, round(math.sqrt(area / ratio))), min(W, round(math.sqrt(area * ratio)))
            top = int(torch.randint(0, H - ch + 1, (1,), generator=generator))
            left = int(torch.randint(0, W - cw + 1, (1,), generator=generator))
            crop = F.interpolate(img[None, :, top : top + ch, left : left + cw], size=(h, w), mode="bilinear",
                                 align_corners=False)[0]
            if torch.rand(1, generator=generator).item() < 0.5:
                crop = crop.flip(-1)
            out.append(crop)
        return torch.stack(out)

    def batches(self, split: str, batch_size: int, device, shuffle: bool = False, generator=None, augment: bool = False):
        """Yield (x, y) tensors. Shuffling and augmentation draw from ``generator`` (a seeded torch.Generator)."""
        import torch

        x, y = self.arrays(split)
        n = len(y)
        order = torch.randperm(n, generator=generator).numpy() if shuffle else np.arange(n)
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            if shuffle:
                idx = np.sort(idx)  # sequential reads from the memory map; the batch's content is the same set
            yield self.to_tensor(x[idx], device, augment, generator), torch.from_numpy(y[idx]).to(device)
