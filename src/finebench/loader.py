"""The input pipeline: stored batches gathered in a background thread, transformed on the device.

    loader = Loader(data, "train", 64, device, shuffle=True, generator=gen, augment=True, preprocess=pre)
    for x, y in loader: ...          # loader.data_seconds: time the consumer waited for input

Two halves, so that input never stalls an accelerator and runs stay reproducible:
- **host side, in a thread** (``prefetch`` batches ahead): gather a batch of rows from the memory-mapped
  ``{split}_x.npy`` (sorted indices = sequential reads), wrap them as tensors, pin them on CUDA. This half draws no
  random numbers.
- **device side, in the training thread**: a non-blocking copy, then every per-kind transform as batched tensor ops
  (no per-sample Python loop): images — centre crop, or random resized crop + horizontal flip as one ``grid_sample``
  with per-sample affine boxes — and normalisation with the *model's* mean/std; tokens — trim to the batch's longest
  sequence; spectrograms — standardise with the train split's statistics, optional SpecAugment masks.
  The epoch's permutation and every augmentation parameter are drawn here from one seeded ``torch.Generator`` in
  batch order, so a CPU run is bit-identical whatever the thread's timing.
"""

from __future__ import annotations

import math
import queue
import threading
import time
from typing import Any

import numpy as np

from finebench.errors import FinebenchError

# uint8 [0, 255] -> [-1, 1]
DEFAULT_PREPROCESS: dict[str, Any] = {"mean": (0.5,), "std": (0.5,), "interpolation": "bilinear"}


def channel_stats(values, channels: int) -> tuple[float, ...]:
    """Mean/std tuples fitted to ``channels``: a 1-value tuple is repeated, 3 values on a 1-channel input averaged
    (the grey image of a model whose first conv was adapted by summing its RGB kernels)."""
    values = tuple(float(v) for v in values)
    if len(values) == channels:
        return values
    if len(values) == 1:
        return values * channels
    if channels == 1:
        return (sum(values) / len(values),)
    raise FinebenchError(f"normalisation statistics {values} do not fit {channels} input channels")


def normalize_images(t, preprocess: dict):
    """uint8-valued float images ``[B, C, H, W]`` -> model input, in place where possible."""
    import torch

    c = t.shape[1]
    mean, std = channel_stats(preprocess["mean"], c), channel_stats(preprocess["std"], c)
    if all(m == 0.5 for m in mean) and all(s == 0.5 for s in std):
        return t.div_(127.5).sub_(1.0)
    m = torch.tensor(mean, device=t.device).view(1, c, 1, 1)
    s = torch.tensor(std, device=t.device).view(1, c, 1, 1)
    return (t / 255.0 - m) / s


def centre_crop(t, h: int, w: int):
    H, W = t.shape[-2:]
    if (H, W) == (h, w):
        return t
    top, left = (H - h) // 2, (W - w) // 2
    return t[..., top : top + h, left : left + w]


def random_resized_crop_flip(t, h: int, w: int, generator, interpolation: str = "bilinear",
                             scale=(0.25, 1.0), ratio=(3 / 4, 4 / 3)):
    """Per-sample random resized crop (area fraction in ``scale``, aspect ratio log-uniform in ``ratio``) resampled
    to ``h`` x ``w``, and a horizontal flip with probability 1/2 — for the whole batch in one ``grid_sample``.
    Parameters come from the CPU ``generator`` (seeded), so the crops are the same on any device."""
    import torch

    b, _, H, W = t.shape
    uniform = lambda: torch.rand(b, generator=generator, dtype=torch.float64)  # noqa: E731
    area = H * W * (scale[0] + (scale[1] - scale[0]) * uniform())
    r = torch.exp(math.log(ratio[0]) + (math.log(ratio[1]) - math.log(ratio[0])) * uniform())
    ch = torch.sqrt(area / r).round().clamp(1, H)
    cw = torch.sqrt(area * r).round().clamp(1, W)
    top = (uniform() * (H - ch + 1)).floor()
    left = (uniform() * (W - cw + 1)).floor()
    flip = torch.rand(b, generator=generator) < 0.5
    return crop_resize(t, torch.stack([top, left, ch, cw], 1), flip, h, w, interpolation)


def crop_resize(t, boxes, flip, h: int, w: int, interpolation: str = "bilinear"):
    """Crop each image of ``t`` [B, C, H, W] to its box (rows of ``top, left, height, width`` in pixels), resample it
    to ``h`` x ``w`` (as ``F.interpolate`` of the crop, align_corners=False: samples past the crop's edge take the edge
    pixel, never a pixel outside the box) and mirror it where ``flip``."""
    import torch
    import torch.nn.functional as F

    b, _, H, W = t.shape
    top, left, ch, cw = boxes.double().unbind(1)
    # Output grid [-1, 1] -> the crop box in the input's normalised coordinates (align_corners=False). The few
    # per-sample numbers are made here; the [B, h, w, 2] grid itself is built on the images' device.
    theta = torch.zeros(b, 2, 3, dtype=torch.float64)
    theta[:, 0, 0] = (cw / W) * torch.where(flip.cpu(), -1.0, 1.0).double()
    theta[:, 0, 2] = -1 + (2 * left + cw) / W
    theta[:, 1, 1] = ch / H
    theta[:, 1, 2] = -1 + (2 * top + ch) / H
    # Clamp to the centres of the box's edge pixels, as interpolating the cropped tensor would.
    lo = torch.stack([(2 * left + 1) / W - 1, (2 * top + 1) / H - 1], 1)[:, None, None, :]
    hi = torch.stack([(2 * (left + cw) - 1) / W - 1, (2 * (top + ch) - 1) / H - 1], 1)[:, None, None, :]
    theta, lo, hi = (v.to(t.device, t.dtype) for v in (theta, lo, hi))
    grid = F.affine_grid(theta, [b, t.shape[1], h, w], align_corners=False)
    grid = torch.maximum(torch.minimum(grid, hi), lo)
    return F.grid_sample(t, grid, mode=interpolation, padding_mode="border", align_corners=False)


def spec_augment(x, generator, freq_masks=2, freq_width=5, time_masks=2, time_width=10):
    """SpecAugment-style masking (Park et al. 2019) of ``[B, C, F, T]`` inputs: zero random frequency bands and time
    spans per sample (zero = the train mean after standardisation). Positions come from the seeded ``generator``."""
    import torch

    b, _, f, t = x.shape
    keep = torch.ones(b, 1, f, t, dtype=torch.bool)
    for n, width, size, dim in ((freq_masks, freq_width, f, 2), (time_masks, time_width, t, 3)):
        for _ in range(n):
            w = torch.randint(0, width + 1, (b,), generator=generator)
            start = (torch.rand(b, generator=generator) * (size - w + 1)).long()
            pos = torch.arange(size)
            band = (pos[None] >= start[:, None]) & (pos[None] < (start + w)[:, None])  # [B, size]
            keep &= ~(band[:, None, :, None] if dim == 2 else band[:, None, None, :])
    return x * keep.to(x.device, x.dtype)


def token_lengths(t, pad_id: int = 0):
    """Each right-padded row's length: one past its last non-pad token (at least 1). A pad id that also occurs inside
    a text (GPT-2 pads with its end-of-text token; its id 0 is "!") does not cut the text short."""
    import torch

    positions = torch.arange(1, t.shape[1] + 1, device=t.device)
    return ((t != pad_id) * positions).amax(1).clamp(min=1)


def to_model_input(x, info: dict, *, augment: bool = False, generator=None, preprocess: dict | None = None,
                   spec_aug: dict | None = None):
    """A stored batch already on its device -> the model's input tensor, per input kind (``info`` = the manifest's
    ``input``). ``augment``: train-time augmentation (needs ``generator``)."""
    kind = info["kind"]
    if kind == "image":
        t = x.float()
        h, w = info["height"], info["width"]
        if augment and info.get("augment"):
            t = random_resized_crop_flip(t, h, w, generator, (preprocess or DEFAULT_PREPROCESS)["interpolation"])
        else:
            t = centre_crop(t, h, w)
        return normalize_images(t, preprocess or DEFAULT_PREPROCESS)
    if kind == "tokens":
        t = x.long()
        return t[:, : int(token_lengths(t, info.get("pad_id", 0)).max())]
    if kind == "spectrogram":
        t = (x.float() - info["mean"]) / info["std"]
        if augment and spec_aug:
            t = spec_augment(t, generator, **spec_aug)
        return t
    if kind == "waveform":  # raw float16 [B, samples] clips: hf: audio models extract their own features
        return x.float()
    raise FinebenchError(f"unknown input kind {kind!r} in the prepared manifest")


class Loader:
    """One pass over a split; iterate it once per epoch. See the module docstring."""

    def __init__(self, data, split: str, batch_size: int, device, *, shuffle: bool = False, generator=None,
                 augment: bool = False, preprocess: dict | None = None, spec_aug: dict | None = None,
                 max_batches: int | None = None, prefetch: int = 2, channels_last: bool = False):
        self.data, self.split, self.batch_size, self.device = data, split, batch_size, device
        self.shuffle, self.generator, self.augment = shuffle, generator, augment
        self.preprocess, self.spec_aug, self.max_batches = preprocess, spec_aug, max_batches
        self.prefetch, self.channels_last = prefetch, channels_last
        self.data_seconds = 0.0  # time spent waiting for the next host batch (accumulates over iterations)

    def __len__(self) -> int:
        n = math.ceil(len(self.data.arrays(self.split)[1]) / self.batch_size)
        return min(n, self.max_batches) if self.max_batches else n

    def _index_batches(self, n: int) -> list[np.ndarray]:
        import torch

        order = torch.randperm(n, generator=self.generator).numpy() if self.shuffle else np.arange(n)
        batches = [order[s : s + self.batch_size] for s in range(0, n, self.batch_size)]
        if self.max_batches:
            batches = batches[: self.max_batches]
        # sorted rows = sequential reads from the memory map; the batch holds the same set
        return [np.sort(b) for b in batches] if self.shuffle else batches

    def _host_batches(self, x, y, index_batches, pin: bool):
        import torch

        for idx in index_batches:
            xb, yb = torch.from_numpy(np.ascontiguousarray(x[idx])), torch.from_numpy(np.ascontiguousarray(y[idx]))
            yield (xb.pin_memory(), yb.pin_memory()) if pin else (xb, yb)

    def __iter__(self):
        import torch

        x, y = self.data.arrays(self.split)
        index_batches = self._index_batches(len(y))
        dev = torch.device(self.device)
        host = self._host_batches(x, y, index_batches, pin=dev.type == "cuda")
        for xb, yb in (prefetched(host, self.prefetch, self) if self.prefetch else timed(host, self)):
            xb, yb = xb.to(dev, non_blocking=True), yb.to(dev, non_blocking=True)
            xb = to_model_input(xb, self.data.input, augment=self.augment, generator=self.generator,
                                preprocess=self.preprocess, spec_aug=self.spec_aug)
            if self.channels_last and xb.ndim == 4:
                xb = xb.contiguous(memory_format=torch.channels_last)
            yield xb, yb


def timed(iterable, owner):
    """Iterate in this thread, adding the time each item took to ``owner.data_seconds``."""
    it = iter(iterable)
    while True:
        t0 = time.perf_counter()
        try:
            item = next(it)
        except StopIteration:
            return
        owner.data_seconds += time.perf_counter() - t0
        yield item


_DONE = object()


def prefetched(iterable, depth: int, owner):
    """Run ``iterable`` in a daemon thread ``depth`` items ahead; the time spent waiting in ``get`` is added to
    ``owner.data_seconds``. Errors in the thread are raised here; stopping early stops the thread."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce():
        try:
            for item in iterable:
                while not stop.is_set():
                    try:
                        q.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(_DONE)
        except BaseException as exc:  # handed to the consumer, raised there
            q.put(exc)

    thread = threading.Thread(target=produce, name="finebench-loader", daemon=True)
    thread.start()
    try:
        while True:
            t0 = time.perf_counter()
            item = q.get()
            owner.data_seconds += time.perf_counter() - t0
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting on a full queue
            try:
                q.get_nowait()
            except queue.Empty:
                thread.join(0.05)
