"""Super-resolution datasets (task type ``superres``): HR photographs, LR made by bicubic downscaling.

Degradation: MATLAB's ``imresize(HR, 1/scale, 'bicubic')`` — the one SRCNN, VDSR, EDSR and SwinIR train and test
with — reimplemented here (:func:`imresize`): Keys cubic kernel with a = -0.5, widened by ``scale`` when shrinking
(antialiasing), symmetric padding at the borders, computed in float64 and rounded once to 8 bits; each 1-D pass is
a banded matrix (<= 4 x scale + 2 taps per output pixel) applied as a scipy.sparse CSR product: on a 2040 x 1356
image 0.012-0.02 s per HR megapixel to downscale, 0.03 to upscale, 4-9x faster than the dense product it replaced,
with the same uint8 results (tests/benchmarks/bicubic_speed.py; Pillow: 0.007-0.015). Pillow's
``Image.resize(..., BICUBIC)`` uses the same kernel and widening but renormalises the weights at the borders
instead of mirroring and rounds to 8 bits between the horizontal and vertical passes: on astronaut / coffee x2,
14-16 % of the LR pixels differ, by <= 5 grey levels inside and up to 11 at the border (``degradation: pil_bicubic``
selects it; published numbers are MATLAB's).
HR images are first cropped to a multiple of ``scale`` ("modcrop"), so LR x scale = HR exactly.

Prepared form (``results/data/{task}/``), images of any size stored back to back in flat uint8 memory maps:
``{split}_hr.npy`` / ``{split}_lr.npy`` and ``{split}_index.npy`` (int64 rows: hr_offset, H, W, lr_offset, h, w,
channels; HWC, 3 channels for colour, 1 for grey; folders prepared before the channels column hold 3).
``manifest.json`` has ``task_type: superres``, ``input`` (scale, LR patch size, patches per epoch), per-split image
names, the bicubic baseline's PSNR/SSIM on val and test and the test crop shown in the report.
:class:`SRData` reads it: random LR/HR patch pairs with the 8 flips/rotations for training, whole images for
evaluation.

Sources: ``skimage_photos`` (embedded, offline: the photographs bundled in the scikit-image wheel, split by source
image), ``sr_benchmark`` (DIV2K train + Set5 / Set14 / BSD100 / Urban100 for test, by download or ``root:``)
and ``hr_folder`` (bring your own: a folder of HR images).

More test sets: ``sr_benchmark``'s ``test_set`` may list several (``[set5, set14, bsd100, urban100]``): one training,
every set scored. The first is the ``test`` split (the report's example crop, the cost input); each other is stored
as split ``test_{name}`` and listed in ``manifest["more_tests"]`` ({name: split}), with its own bicubic baseline.

Grey images (a one-channel file, e.g. Set14's ``bridge``; scikit-image's ``camera`` and ``coins``) stay grey: stored
with one channel, their LR made (or read) grey, scored on their own grey values
(finebench.tasks.superres.metrics.sr_scores); the models, which take RGB, get them as three equal channels (training
patches and evaluation input alike).

Counts: ``sr_benchmark`` compares the images it finds with the official counts (DIV2K 800 train / 100 valid; Set5
5, Set14 14, B100 100, Urban100 100) through ``registry.check_official``: a partial copy gets one warning naming each
count, and the comparison is recorded in ``manifest["source"]["official_counts"]``.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import numpy as np

from finebench.data.download import Remote
from finebench.data.registry import DATASETS, SPLITS, DatasetSource, check_official, register
from finebench.errors import FinebenchError

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}
SCALES = (2, 3, 4)


# ---------------------------------------------------------------------------------------------------------------------
# MATLAB-compatible bicubic resize


def _cubic(x: np.ndarray) -> np.ndarray:
    """Keys (1981) cubic convolution kernel with a = -0.5 (MATLAB's ``cubic``)."""
    ax = np.abs(x)
    ax2, ax3 = ax**2, ax**3
    return ((1.5 * ax3 - 2.5 * ax2 + 1) * (ax <= 1)
            + (-0.5 * ax3 + 2.5 * ax2 - 4 * ax + 2) * ((ax > 1) & (ax <= 2)))


def _taps(in_len: int, out_len: int, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """``(src, w)``, both ``[out_len, taps]``: the 0-based input index (mirrored) and weight of every tap of every
    output pixel, as MATLAB's imresize computes them: output pixel x (1-based) samples the input at
    u = x / scale + 0.5 (1 - 1 / scale); when shrinking the kernel is stretched by 1 / scale (antialiasing); weights
    are normalised to sum 1; indices beyond the border mirror (symmetric padding)."""
    width = 4.0
    antialias = scale < 1
    if antialias:
        width /= scale
    x = np.arange(1, out_len + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(u - width / 2)
    taps = int(np.ceil(width)) + 2
    idx = left[:, None] + np.arange(taps)[None, :]  # 1-based input positions
    dist = u[:, None] - idx
    w = scale * _cubic(dist * scale) if antialias else _cubic(dist)
    w /= w.sum(1, keepdims=True)
    mirror = np.concatenate([np.arange(in_len), np.arange(in_len - 1, -1, -1)])
    src = mirror[np.mod(idx - 1, 2 * in_len).astype(np.int64)]
    return src, w


def resize_matrix(in_len: int, out_len: int, scale: float) -> np.ndarray:
    """``[out_len, in_len]`` dense matrix M with ``out = M @ in`` along one axis (see :func:`_taps`); taps that mirror
    onto the same input pixel are summed, in tap order."""
    src, w = _taps(in_len, out_len, scale)
    m = np.zeros((out_len, in_len))
    np.add.at(m, (np.repeat(np.arange(out_len), src.shape[1]), src.ravel()), w.ravel())
    return m


def resize_operator(in_len: int, out_len: int, scale: float):
    """:func:`resize_matrix` as a scipy.sparse CSR matrix, built without the dense one: the same weights to the last
    bit (mirrored taps onto one input pixel summed in the same order, from 0.0), exact zeros left out."""
    from scipy import sparse

    src, w = _taps(in_len, out_len, scale)
    key = (np.arange(out_len)[:, None] * in_len + src).ravel()  # row-major: row, then tap (np.add.at's order)
    cells, where = np.unique(key, return_inverse=True)  # sorted: by row, then by input index
    vals = np.zeros(len(cells))
    np.add.at(vals, where, w.ravel())
    keep = vals != 0
    cells, vals = cells[keep], vals[keep]
    indptr = np.concatenate([[0], np.cumsum(np.bincount(cells // in_len, minlength=out_len))])
    return sparse.csr_matrix((vals, cells % in_len, indptr), shape=(out_len, in_len))


def imresize(img: np.ndarray, scale: float | None = None, size: tuple[int, int] | None = None,
             as_uint8: bool = True) -> np.ndarray:
    """Bicubic resize of ``[H, W]`` or ``[H, W, C]`` by ``scale`` (or to ``size`` = (h, w)) the MATLAB way.

    Float64 throughout; with ``as_uint8`` the result is rounded (half up) and clipped to 0..255 once at the end.
    Each pass is a sparse product (:func:`resize_operator`): every output value is its taps' products summed in input
    order. The dense product this replaced (OpenBLAS GEMM: fused multiply-adds) rounds differently: at scales 2 and 4
    the weights are dyadic and every product and sum exact, so both give the same float64 bits; at scale 3 they differ
    by <= ~2e-13, while the exact values lie >= 1/13122 away from any x.5 (their denominators are powers of 3), so the
    uint8 results are identical (tests/test_superres.py checks both against the dense version).
    """
    a = np.asarray(img, dtype=np.float64)
    h, w = a.shape[:2]
    if size is None:
        if scale is None:
            raise ValueError("imresize: give scale or size")
        size = (int(np.ceil(h * scale)), int(np.ceil(w * scale)))
    sh, sw = (size[0] / h, size[1] / w) if scale is None else (scale, scale)
    flat = a.reshape(h, w, -1)
    c = flat.shape[2]
    out = resize_operator(h, size[0], sh) @ flat.reshape(h, w * c)  # along H: [size0, w * c]
    out = out.reshape(size[0], w, c).transpose(1, 0, 2).reshape(w, size[0] * c)  # W first (a copy)
    out = resize_operator(w, size[1], sw) @ out  # along W: [size1, size0 * c]
    out = out.reshape(size[1], size[0], c).transpose(1, 0, 2).reshape(size + a.shape[2:])
    return np.clip(np.floor(out + 0.5), 0, 255).astype(np.uint8) if as_uint8 else out


def pil_bicubic(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Pillow's bicubic resize (8-bit, rounded between passes) to ``size`` = (h, w)."""
    from PIL import Image

    return np.asarray(Image.fromarray(img).resize((size[1], size[0]), Image.Resampling.BICUBIC))


def modcrop(img: np.ndarray, scale: int) -> np.ndarray:
    h, w = img.shape[:2]
    return img[: h - h % scale, : w - w % scale]


def downscale(hr: np.ndarray, scale: int, degradation: str = "matlab_bicubic") -> np.ndarray:
    """HR (already modcropped) -> LR of exactly (H / scale, W / scale)."""
    size = (hr.shape[0] // scale, hr.shape[1] // scale)
    if degradation == "matlab_bicubic":
        return imresize(hr, 1 / scale)
    if degradation == "pil_bicubic":
        return pil_bicubic(hr, size)
    raise FinebenchError(f"degradation: unknown {degradation!r}; valid: {', '.join(DEGRADATIONS)}")


def bicubic_upscale(lr: np.ndarray, scale: int) -> np.ndarray:
    """The baseline every SR table starts with: MATLAB-style bicubic upscaling of the LR image."""
    return imresize(lr, scale)


def as_image(img: np.ndarray) -> np.ndarray:
    """uint8 HWC: one channel for a grey image (2-D, one channel, or grey + alpha), three for colour (alpha dropped)."""
    a = np.asarray(img)
    if a.dtype != np.uint8:
        if a.dtype == bool:
            a = a.astype(np.uint8) * 255
        elif np.issubdtype(a.dtype, np.floating) and a.max() <= 1.0:
            a = np.clip(np.floor(a * 255 + 0.5), 0, 255).astype(np.uint8)
        else:
            a = np.clip(a, 0, 255).astype(np.uint8)
    if a.ndim == 2:
        a = a[..., None]
    if a.ndim != 3 or a.shape[2] not in (1, 2, 3, 4):
        raise FinebenchError(f"expected a grey or colour image (H, W[, 1-4 channels]), got shape {a.shape}")
    if a.shape[2] in (2, 4):  # grey + alpha, RGBA
        a = a[..., : a.shape[2] - 1]
    return np.ascontiguousarray(a)


def as_rgb(img: np.ndarray) -> np.ndarray:
    """uint8 HWC with 3 channels (grey replicated, alpha dropped): what the models take."""
    a = as_image(img)
    return np.ascontiguousarray(np.repeat(a, 3, axis=2)) if a.shape[2] == 1 else a


GREY_MODES = {"1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"}  # Pillow's one-channel (+ alpha) modes


def load_image(path: Path) -> np.ndarray:
    """An image file as uint8 HWC: one channel if the file is grey (as MATLAB's ``imread`` gives it), else RGB."""
    from PIL import Image

    with Image.open(path) as im:
        return as_image(np.asarray(im.convert("L" if im.mode in GREY_MODES else "RGB")))


def _channels_as(lr: np.ndarray | None, channels: int) -> np.ndarray | None:
    """An official LR image with the HR image's channel count: grey replicated for a colour HR, a colour file whose
    three channels are equal taken as grey for a grey HR; None (make the LR here) when it cannot be."""
    if lr is None or lr.shape[2] == channels:
        return lr
    if channels == 3:
        return as_rgb(lr)
    return lr[..., :1] if (lr[..., :1] == lr).all() else None


# ---------------------------------------------------------------------------------------------------------------------
# Prepared form: writing and reading


def write_split(work: Path, split: str, items: list, scale: int, degradation: str) -> dict:
    """Write one split's HR/LR stores. ``items``: list of (name, loader) where ``loader()`` returns the HR image
    (uint8 HWC: 3 channels, or 1 for a grey image) or (HR, official LR or None). Images are decoded twice (sizes
    first, then data) so that memory stays at one image however many there are."""
    index, names, grey, hr_total, lr_total = [], [], [], 0, 0
    shapes = []
    for name, loader in items:
        got = loader()
        hr = modcrop(as_image(got[0] if isinstance(got, tuple) else got), scale)
        h, w, c = hr.shape
        if h < 2 * scale or w < 2 * scale:
            raise FinebenchError(f"{name}: image {hr.shape[:2]} too small for scale {scale}")
        shapes.append((h, w))
        index.append((hr_total, h, w, lr_total, h // scale, w // scale, c))
        hr_total += h * w * c
        lr_total += (h // scale) * (w // scale) * c
        names.append(name)
        if c == 1:
            grey.append(name)
    if not names:
        raise FinebenchError(f"split {split!r} has no images")
    hr_mm = np.lib.format.open_memmap(work / f"{split}_hr.npy", mode="w+", dtype=np.uint8, shape=(hr_total,))
    lr_mm = np.lib.format.open_memmap(work / f"{split}_lr.npy", mode="w+", dtype=np.uint8, shape=(lr_total,))
    official_lr = 0
    for (_name, loader), (ho, h, w, lo, lh, lw, c) in zip(items, index):
        got = loader()
        hr, lr = (got if isinstance(got, tuple) else (got, None))
        hr = modcrop(as_image(hr), scale)
        lr = _channels_as(None if lr is None else as_image(lr), c)
        if lr is not None and lr.shape[:2] == (lh, lw):
            official_lr += 1
        else:
            lr = downscale(hr, scale, degradation)  # a grey HR gives a grey LR (imresize works per channel)
        hr_mm[ho : ho + h * w * c] = hr.reshape(-1)
        lr_mm[lo : lo + lh * lw * c] = lr.reshape(-1)
    hr_mm.flush()
    lr_mm.flush()
    del hr_mm, lr_mm
    np.save(work / f"{split}_index.npy", np.asarray(index, dtype=np.int64))
    if grey:
        print(f"[finebench] {split}: {len(grey)} grey image(s) kept grey (one channel): {', '.join(grey[:5])}"
              f"{' …' if len(grey) > 5 else ''} — scored on their own grey values, fed to the models as three equal "
              f"channels", file=sys.stderr, flush=True)
    return {"n": len(names), "hr_pixels": int(sum(h * w for h, w in shapes)), "images": names,
            "official_lr": official_lr, "grey_images": grey}


_OLD_FORM_WARNED: set[str] = set()  # prepared folders already warned about (once per process)


class SRData:
    """Read side of the prepared super-resolution form."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        mf = self.path / "manifest.json"
        if not mf.is_file():
            raise FinebenchError(f"{self.path}: no manifest.json — the dataset was not prepared (or not completely)")
        self.manifest = json.loads(mf.read_text())
        if self.manifest.get("task_type") != "superres":
            raise FinebenchError(f"{self.path}: task_type is {self.manifest.get('task_type')!r}, not 'superres'")
        self.input = self.manifest["input"]
        self.scale = int(self.input["scale"])
        self._cache: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}  # split: (hr, lr, index)

    def _split(self, split: str):
        if split not in self._cache:
            index = np.load(self.path / f"{split}_index.npy")
            if index.shape[1] == 6:  # prepared before the channels column: every image on three channels
                index = np.concatenate([index, np.full((len(index), 1), 3, index.dtype)], axis=1)
                if str(self.path) not in _OLD_FORM_WARNED:
                    _OLD_FORM_WARNED.add(str(self.path))
                    print(f"[finebench] WARNING {self.path}: prepared by an older finebench, which stored grey images "
                          f"as RGB (scored on Y, 1.32 dB too high); remove the folder to prepare it again",
                          file=sys.stderr, flush=True)
            self._cache[split] = (np.load(self.path / f"{split}_hr.npy", mmap_mode="r"),
                                  np.load(self.path / f"{split}_lr.npy", mmap_mode="r"), index)
        return self._cache[split]

    def count(self, split: str) -> int:
        return len(self._split(split)[2])

    def names(self, split: str) -> list[str]:
        return self.manifest["superres"]["splits"][split]["images"]

    def pair(self, split: str, i: int) -> tuple[np.ndarray, np.ndarray]:
        """(LR, HR) uint8 HWC views of image ``i``: 3 channels, or 1 for a grey image (``as_rgb`` for a model)."""
        hr, lr, index = self._split(split)
        ho, h, w, lo, lh, lw, c = (int(v) for v in index[i])
        return lr[lo : lo + lh * lw * c].reshape(lh, lw, c), hr[ho : ho + h * w * c].reshape(h, w, c)

    def patches(self, n: int, generator, patch: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``n`` random training pairs: LR ``[n, 3, p, p]`` and HR ``[n, 3, p*s, p*s]`` uint8, each from an image
        drawn with probability proportional to its area, at a random position, under one of the 8 flips/rotations.
        A grey image gives its patch on three equal channels. Draws come from ``generator`` (a seeded
        ``numpy.random.Generator``)."""
        p = int(patch or self.input["patch_size"])
        s = self.scale
        _, _, index = self._split("train")
        lh, lw = index[:, 4], index[:, 5]
        fit = (lh >= p) & (lw >= p)
        if not fit.any():
            raise FinebenchError(f"{self.path}: no training image is at least {p}x{p} LR pixels (patch_size)")
        weight = np.where(fit, (lh - p + 1) * (lw - p + 1), 0).astype(np.float64)
        picks = generator.choice(len(index), size=n, p=weight / weight.sum())
        lrs, hrs = np.empty((n, p, p, 3), np.uint8), np.empty((n, p * s, p * s, 3), np.uint8)
        for k, i in enumerate(picks):
            lr, hr = self.pair("train", int(i))
            top = int(generator.integers(0, lr.shape[0] - p + 1))
            left = int(generator.integers(0, lr.shape[1] - p + 1))
            a = lr[top : top + p, left : left + p]
            b = hr[top * s : (top + p) * s, left * s : (left + p) * s]
            flip_h, flip_v, transpose = generator.integers(0, 2, size=3)
            if flip_h:
                a, b = a[:, ::-1], b[:, ::-1]
            if flip_v:
                a, b = a[::-1], b[::-1]
            if transpose:
                a, b = a.transpose(1, 0, 2), b.transpose(1, 0, 2)
            lrs[k], hrs[k] = a, b  # a grey (one-channel) patch broadcasts to three equal channels
        return lrs.transpose(0, 3, 1, 2), hrs.transpose(0, 3, 1, 2)


def bicubic_scores(work: Path, split: str, scale: int) -> dict:
    """Mean PSNR/SSIM of MATLAB-style bicubic upscaling on a prepared split (the baseline row); a grey image is
    upscaled and scored grey."""
    from finebench.tasks.superres.metrics import sr_scores

    hr_mm = np.load(work / f"{split}_hr.npy", mmap_mode="r")
    lr_mm = np.load(work / f"{split}_lr.npy", mmap_mode="r")
    per = []
    for ho, h, w, lo, lh, lw, c in np.load(work / f"{split}_index.npy"):
        hr = hr_mm[ho : ho + h * w * c].reshape(h, w, c)
        lr = lr_mm[lo : lo + lh * lw * c].reshape(lh, lw, c)
        per.append(sr_scores(hr, bicubic_upscale(lr, scale), scale))
    return {"psnr": float(np.mean([p["psnr"] for p in per])), "ssim": float(np.mean([p["ssim"] for p in per])),
            "per_image": per}


def example_crop(work: Path, scale: int, size: int) -> dict:
    """The test crop shown in the report: the ``size`` x ``size`` HR window (on the LR grid) of the first test
    image with the most detail (largest mean gradient of the bicubic error)."""
    hr_mm = np.load(work / "test_hr.npy", mmap_mode="r")
    lr_mm = np.load(work / "test_lr.npy", mmap_mode="r")
    ho, h, w, lo, lh, lw, c = (int(v) for v in np.load(work / "test_index.npy")[0])
    hr = hr_mm[ho : ho + h * w * c].reshape(h, w, c).astype(np.float64)
    lr = lr_mm[lo : lo + lh * lw * c].reshape(lh, lw, c)
    err = np.abs(hr - bicubic_upscale(lr, scale)).mean(2)
    size = min(size, (h // scale) * scale, (w // scale) * scale)
    step = max(scale, (size // 2) // scale * scale)
    best, where = -1.0, (0, 0)
    for top in range(0, h - size + 1, step):
        for left in range(0, w - size + 1, step):
            e = float(err[top : top + size, left : left + size].mean())
            if e > best:
                best, where = e, (top, left)
    return {"image": 0, "top": where[0], "left": where[1], "size": size}


def build_sr(work: Path, splits: dict[str, list], opt: dict, source: dict, more_tests: dict | None = None) -> dict:
    """Shared tail of every SR source: write the stores, score bicubic, pick the report crop, return the manifest.
    ``more_tests``: {test set name: items} scored besides ``test`` (stored as split ``test_{name}``)."""
    scale = int(opt["scale"])
    if scale not in SCALES:
        raise FinebenchError(f"scale: {scale} not supported; valid: {', '.join(map(str, SCALES))}")
    more = {name: f"test_{name}" for name in (more_tests or {})}
    splits = {**splits, **{more[name]: items for name, items in (more_tests or {}).items()}}
    written = {split: write_split(work, split, splits[split], scale, opt["degradation"]) for split in splits}
    baseline = {split: bicubic_scores(work, split, scale) for split in splits if split != "train"}
    for split in written:
        for name in written[split]["images"]:
            others = [s for s in written if s != split and name in written[s]["images"]]
            if others:
                raise FinebenchError(f"image {name!r} is in both {split} and {others[0]} — "
                                     f"splits must not share images")
    manifest = {
        "classes": [],
        "source": source,
        "input": {"kind": "superres", "channels": 3, "scale": scale, "patch_size": int(opt["patch_size"]),
                  "patches_per_epoch": int(opt["patches_per_epoch"]), "degradation": opt["degradation"],
                  "range": "0..1 floats (uint8 / 255)"},
        "superres": {"splits": written, "split_by": "source image"},
        "more_tests": more,  # {test set: split} scored besides test (finebench.train)
        "baseline": {"bicubic": {s: {"psnr": b["psnr"], "ssim": b["ssim"]} for s, b in baseline.items()},
                     **{f"bicubic_per_image_{s}": b["per_image"] for s, b in baseline.items() if s != "val"}},
        "example": example_crop(work, scale, int(opt.get("example_crop", 48))),
    }
    return {"arrays": None, "splits": written, "manifest": manifest}


SR_DEFAULTS = {"scale": 2, "patch_size": 24, "patches_per_epoch": 1600, "degradation": "matlab_bicubic",
               "example_crop": 48, "seed": 0}
DEGRADATIONS = ("matlab_bicubic", "pil_bicubic")


def check_sr_options(opt: dict) -> dict:
    """The options every SR source shares, checked before any job (DatasetSource.normalize): scale, degradation and
    the positive sizes. Raises FinebenchError("option: what is wrong")."""
    if isinstance(opt["scale"], bool) or opt["scale"] not in SCALES:
        raise FinebenchError(f"scale: {opt['scale']!r} not supported; valid: {', '.join(map(str, SCALES))}")
    if opt["degradation"] not in DEGRADATIONS:
        raise FinebenchError(f"degradation: unknown {opt['degradation']!r}; valid: {', '.join(DEGRADATIONS)}")
    for key in ("patch_size", "patches_per_epoch", "example_crop"):
        if isinstance(opt[key], bool) or not isinstance(opt[key], int) or opt[key] < 1:
            raise FinebenchError(f"{key}: {opt[key]!r} — a positive whole number")
    return opt


# ---------------------------------------------------------------------------------------------------------------------
# Embedded: scikit-image's bundled photographs

# Photographs (not drawings, text, textures or masks) that the scikit-image 0.26 wheel ships in skimage/data — no
# download (pooch) needed. Split by source image; the stereo pair's right view is left out (same scene as the left).
SKIMAGE_SPLITS = {
    "train": ["astronaut", "rocket", "immunohistochemistry", "retina", "hubble_deep_field", "coins"],
    "val": ["chelsea"],
    "test": ["coffee", "motorcycle_left", "camera"],  # camera (and coins): grey, kept grey (one channel)
}
SKIMAGE_EXTRA = {"motorcycle_left": lambda d: d.stereo_motorcycle()[0]}


def _skimage_loader(name: str):
    def load():
        import skimage.data as d

        return as_image(SKIMAGE_EXTRA[name](d) if name in SKIMAGE_EXTRA else getattr(d, name)())

    return load


def build_skimage_photos(work: Path, opt: dict) -> dict:
    try:
        import skimage
        import skimage.data  # noqa: F401
    except ImportError as exc:
        raise FinebenchError("skimage_photos needs scikit-image "
                             "(pinned in requirements.txt; run `make setup`)") from exc
    splits = {}
    for split in SPLITS:
        names = list(opt.get(f"{split}_images") or SKIMAGE_SPLITS[split])
        for n in names:
            if n not in SKIMAGE_EXTRA and not callable(getattr(skimage.data, n, None)):
                raise FinebenchError(f"{split}_images: {n!r} is not a scikit-image sample image")
        # training images are centre-cropped to max_side (cheap preparation); val and test images are used whole
        side = opt.get("max_side") if split == "train" else None
        splits[split] = [(n, _max_side(_skimage_loader(n), side)) for n in names]
    # scikit-image's __init__.pyi (lazy loading) leaves out __version__, which __init__.py sets
    return build_sr(work, splits, opt, {"package": "scikit-image",
                                        "version": skimage.__version__,  # type: ignore[attr-defined]
                                        "images": {s: [n for n, _ in v] for s, v in splits.items()}})


def _max_side(loader, max_side):
    """Centre-crop an image to at most ``max_side`` pixels per side."""
    if not max_side:
        return loader

    def load():
        img = loader()
        h, w = img.shape[:2]
        top, left = max(0, (h - max_side) // 2), max(0, (w - max_side) // 2)
        return img[top : top + max_side, left : left + max_side]

    return load


register(DatasetSource(
    name="skimage_photos",
    modality="vision",
    task_type="superres",
    description="Super-resolution on the photographs bundled in scikit-image (offline); split by source image",
    defaults={**SR_DEFAULTS, "train_images": None, "val_images": None, "test_images": None, "max_side": 384},
    build=build_skimage_photos,
    citation="scikit-image sample images (skimage.data; see each image's source in its docstring)",
    normalize=check_sr_options,
))


# ---------------------------------------------------------------------------------------------------------------------
# Real: DIV2K (train) + a standard test set; bring your own folder

# EDSR's benchmark archive holds Set5, Set14, B100 and Urban100 as benchmark/<set>/HR/*.png plus the official MATLAB
# bicubic LR images benchmark/<set>/LR_bicubic/X<s>/<name>x<s>.png (used when present, else made here).
TEST_SETS = {"set5": ("Set5", 5), "set14": ("Set14", 14), "bsd100": ("B100", 100), "urban100": ("Urban100", 100)}
DIV2K_COUNTS = {"DIV2K_train_HR": 800, "DIV2K_valid_HR": 100}  # the NTIRE 2017 release: 0001-0800, 0801-0900
# ETH publishes no checksum for DIV2K; these md5s are the ones independent SR libraries pin (e.g. torchSR, which
# downloads the same URLs) and agree on. benchmark.tar has none anywhere: its sha256 goes into the lock file on first
# download (trust on first use, see data/download.py).
DIV2K_REMOTES = [
    Remote("http://data.vision.ee.ethz.ch/cvl/DIV2K/DIV2K_train_HR.zip", md5="bdc2d9338d4e574fe81bf7d158758658"),
    Remote("http://data.vision.ee.ethz.ch/cvl/DIV2K/DIV2K_valid_HR.zip", md5="9fcdda83005c5e5997799b69f955ff88"),
    Remote("https://cv.snu.ac.kr/research/EDSR/benchmark.tar"),
]


def _images_in(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise FinebenchError(f"{folder}: missing — expected a folder of images (is tasks.<task>.root right?)")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
    if not files:
        raise FinebenchError(f"{folder}: no images ({', '.join(sorted(IMAGE_EXTENSIONS))})")
    return files


def _with_lr(hr_path: Path, lr_path: Path | None):
    def load():
        hr = load_image(hr_path)
        return hr, (load_image(lr_path) if lr_path is not None and lr_path.is_file() else None)

    return load


def build_sr_benchmark(work: Path, opt: dict) -> dict:
    if not opt.get("root"):
        raise FinebenchError("sr_benchmark: no root — set tasks.<task>.root (or let the download rule fetch it)")
    root, scale = Path(opt["root"]), int(opt["scale"])
    keys = test_set_names(opt["test_set"])
    div2k = {folder: _images_in(root / folder) for folder in DIV2K_COUNTS}
    train = div2k["DIV2K_train_HR"][: opt.get("train_images") or None]
    val = div2k["DIV2K_valid_HR"][: int(opt["val_images"])]
    tests = {key: _benchmark_set(root, key, scale, opt["official_lr"]) for key in keys}
    counts = official_counts(opt, {**{folder: len(files) for folder, files in div2k.items()},
                                   **{TEST_SETS[key][0]: len(items) for key, items in tests.items()}})
    splits = {"train": [(p.stem, _with_lr(p, None)) for p in train], "val": [(p.stem, _with_lr(p, None)) for p in val],
              "test": tests[keys[0]]}
    n_train, n_valid = (len(div2k[folder]) for folder in DIV2K_COUNTS)
    built = build_sr(work, splits, opt, {"root": str(root), "test_set": keys[0], "test_sets": keys,
                                         "train": f"DIV2K train: {len(train)} of the {n_train} images found",
                                         "val": f"DIV2K valid: the first {len(val)} of the {n_valid} found",
                                         "test": TEST_SETS[keys[0]][0], "official_counts": counts},
                     more_tests={key: tests[key] for key in keys[1:]})
    built["manifest"]["official_counts"] = counts  # the run protocol's counts_match (registry keeps a build's own)
    return built


def official_counts(opt: dict, found: dict[str, int]) -> dict:
    """Compare the images found per folder (DIV2K train / valid, each test set's HR) with the official counts, with the
    classification datasets' check (``registry.check_official``): one warning naming each count that differs.
    Returns ``{"expected", "found", "match"}`` (the manifest's ``official_counts``, and in ``manifest["source"]``)."""
    expected = {**DIV2K_COUNTS, **{folder: n for folder, n in TEST_SETS.values() if folder in found}}
    source = dataclasses.replace(DATASETS["sr_benchmark"], official={"classes": 0, "splits": expected})
    # check_official reads split sizes the classification way (registry.official_split_sizes): it wants a "train"
    # entry, which no folder here is called; left out of "splits" it is never compared
    parsed = {"num_classes": 0, "splits": {"train": {"n": 0}, **{k: {"n": n} for k, n in found.items()}}}
    got = check_official(source, opt, parsed)
    assert got is not None  # None only for a source without official counts: they are given just above
    return {k: ({f: n for f, n in v.items() if f != "classes"} if isinstance(v, dict) else v) for k, v in got.items()}


def test_set_names(value) -> list[str]:
    """``test_set``: one name or a list of names of :data:`TEST_SETS` (lower-cased, in order, no repeats)."""
    values = value if isinstance(value, (list, tuple)) else [value]
    if not all(isinstance(v, str) for v in values):
        raise FinebenchError(f"test_set: {value!r} — give a test set's name or a list of names "
                             f"({', '.join(TEST_SETS)})")
    keys = [v.lower() for v in values]
    for key in keys:
        if key not in TEST_SETS:
            raise FinebenchError(f"test_set: unknown {key!r}; valid: {', '.join(TEST_SETS)}")
    if not keys or len(set(keys)) != len(keys):
        raise FinebenchError(f"test_set: {value!r} — give one or more different test sets ({', '.join(TEST_SETS)})")
    return keys


def canonical_test_set(value) -> str | list[str]:
    """``Set5``, ``set5`` and ``[set5]`` -> ``set5``; several sets -> their lower-case names in order."""
    keys = test_set_names(value)
    return keys[0] if len(keys) == 1 else keys


def _benchmark_set(root: Path, key: str, scale: int, official_lr: bool) -> list:
    """One standard test set of EDSR's benchmark archive: (name, loader of HR and official LR) items."""
    folder = TEST_SETS[key][0]
    test_dir = root / "benchmark" / folder
    test = _images_in(test_dir / "HR")
    lr_dir = test_dir / "LR_bicubic" / f"X{scale}"  # the count is checked by official_counts
    return [(f"{folder}/{p.stem}", _with_lr(p, lr_dir / f"{p.stem}x{scale}{p.suffix}" if official_lr else None))
            for p in test]


def build_hr_folder(work: Path, opt: dict) -> dict:
    if not opt.get("root"):
        raise FinebenchError("hr_folder: no root — set tasks.<task>.root to a folder of HR images "
                             "([train|val|test/]*.png)")
    root = Path(opt["root"])
    if not root.is_dir():
        raise FinebenchError(f"{root}: folder not found (tasks.<task>.root)")
    have = {s: root / s for s in SPLITS if (root / s).is_dir()}
    if have and "train" not in have:
        raise FinebenchError(f"{root}: has {sorted(have)} folders but no train/")
    files = {s: _images_in(d) for s, d in have.items()} if have else {"train": _images_in(root)}
    rng = np.random.default_rng(opt.get("seed", 0))
    carved = {}
    for split, fraction in (("test", opt["test_fraction"]), ("val", opt["val_fraction"])):
        if split in files:
            continue
        pool = files["train"]
        n = max(1, int(round(len(pool) * fraction)))
        if len(pool) - n < 1:
            raise FinebenchError(f"{root}: {len(pool)} image(s) are too few to carve a {split} split from")
        take = set(rng.permutation(len(pool))[:n].tolist())
        files[split] = [p for i, p in enumerate(pool) if i in take]
        files["train"] = [p for i, p in enumerate(pool) if i not in take]
        carved[split] = {"from": "train", "fraction": fraction, "n": n, "seed": opt.get("seed", 0)}
    splits = {s: [(str(p.relative_to(root)), _with_lr(p, None)) for p in files[s]] for s in SPLITS}
    built = build_sr(work, splits, opt, {"layout": "hr_folder", "root": str(root)})
    if carved:
        built["manifest"]["carved_splits"] = carved
    return built


register(DatasetSource(
    name="sr_benchmark",
    modality="vision",
    task_type="superres",
    description="Super-resolution: DIV2K train (val: first DIV2K valid images), test on Set5/Set14/BSD100/Urban100 "
                "(one or several: test_set: [set5, set14])",
    defaults={**SR_DEFAULTS, "patch_size": 48, "patches_per_epoch": 16000, "root": None, "test_set": "set5",
              "train_images": None, "val_images": 10, "official_lr": True},
    build=build_sr_benchmark,
    normalize=lambda opt: {**check_sr_options(opt), "test_set": canonical_test_set(opt["test_set"])},
    citation="Agustsson & Timofte (2017), NTIRE 2017 Challenge on Single Image Super-Resolution: Dataset and Study, "
             "CVPRW (DIV2K); Bevilacqua et al. 2012 (Set5); Zeyde et al. 2010 (Set14); Martin et al. 2001 (BSD100); "
             "Huang et al. 2015 (Urban100)",
    remotes=DIV2K_REMOTES,
))

register(DatasetSource(
    name="hr_folder",
    modality="vision",
    task_type="superres",
    description="Bring your own super-resolution data: root/[train|val|test/]*.png (HR images; LR made by bicubic)",
    defaults={**SR_DEFAULTS, "root": None, "val_fraction": 0.1, "test_fraction": 0.2},
    build=build_hr_folder,
    normalize=check_sr_options,
))
