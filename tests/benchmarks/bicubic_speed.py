"""Benchmark: the MATLAB-style bicubic resize (finebench.data.superres.imresize) at DIV2K size, before and after it
went sparse.

    .venv/bin/python tests/benchmarks/bicubic_speed.py [--repeats 3] [--height 1356 --width 2040]

For each scale 2, 3, 4 it times, on one 2040 x 1356 RGB image (a DIV2K-size HR image; the content does not change
the work): the downscale HR -> LR that preparation runs once per image, and the upscale LR -> HR of the bicubic
baseline; each by the dense implementation imresize had before (two einsum / BLAS products with the full
``[out, in]`` matrices, copied below), by the sparse one now in the package, and by Pillow's bicubic for scale.
Prints seconds per HR megapixel (best of ``--repeats``), the speed-up, whether the uint8 results are identical, and
what the downscale costs for DIV2K train (800 images of this size) at one scale. Measures and prints; asserts nothing.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from finebench.data.superres import imresize, pil_bicubic, resize_matrix


def dense_imresize(img: np.ndarray, scale: float) -> np.ndarray:
    """imresize as it was: dense resize matrices applied by einsum (OpenBLAS GEMM), rounded once to uint8."""
    a = np.asarray(img, dtype=np.float64)
    h, w = a.shape[:2]
    size = (int(np.ceil(h * scale)), int(np.ceil(w * scale)))
    mh, mw = resize_matrix(h, size[0], scale), resize_matrix(w, size[1], scale)
    out = np.einsum("oh,hwc->owc", mh, a.reshape(h, w, -1), optimize=True)
    out = np.einsum("pw,owc->opc", mw, out, optimize=True).reshape(size + a.shape[2:])
    return np.clip(np.floor(out + 0.5), 0, 255).astype(np.uint8)


def best_of(fn, repeats: int) -> tuple[float, np.ndarray]:
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--height", type=int, default=1356)
    ap.add_argument("--width", type=int, default=2040)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    import os

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0 : args.height, 0 : args.width]
    smooth = np.stack([128 + 90 * np.sin(xx / (9 + c) + yy / (13 + c)) for c in range(3)], axis=2)
    hr = np.clip(smooth + rng.normal(0, 12, smooth.shape), 0, 255).astype(np.uint8)
    mp = args.height * args.width / 1e6
    print(f"image {args.width} x {args.height} x 3 ({mp:.2f} MP), best of {args.repeats}; "
          f"{os.cpu_count()} CPUs visible; seconds per HR megapixel")
    print(f"{'scale':>5} {'step':<22} {'dense (before)':>15} {'sparse (now)':>13} {'speed-up':>9} "
          f"{'Pillow':>8} {'uint8 identical':>16}")
    for s in (2, 3, 4):
        crop = hr[: args.height - args.height % s, : args.width - args.width % s]
        lr = imresize(crop, 1 / s)
        for step, src, factor in (("downscale HR -> LR", crop, 1 / s), ("upscale LR -> HR", lr, s)):
            t_old, old = best_of(lambda src=src, factor=factor: dense_imresize(src, factor), args.repeats)
            t_new, new = best_of(lambda src=src, factor=factor: imresize(src, factor), args.repeats)
            size = new.shape[:2]
            t_pil, _ = best_of(lambda src=src, size=size: pil_bicubic(src, size), args.repeats)
            print(f"{s:>5} {step:<22} {t_old / mp:>15.4f} {t_new / mp:>13.4f} {t_old / t_new:>8.1f}x "
                  f"{t_pil / mp:>8.4f} {str(np.array_equal(old, new)):>16}")
            if factor < 1:
                print(f"{'':>5} {'  DIV2K train, 800 images':<22} {800 * t_old / 60:>13.1f} min "
                      f"{800 * t_new / 60:>9.1f} min")


if __name__ == "__main__":
    main()
