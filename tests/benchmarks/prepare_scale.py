"""Benchmark: preparing 10^5 images / clips stays memory-flat (memory-mapped outputs, chunked features).

    .venv/bin/python tests/benchmarks/prepare_scale.py --images 100000 --clips 20000 --work /tmp/fb-scale

Writes a synthetic imagefolder (small JPEGs) and audiofolder (1 s WAVs) of the requested sizes, runs
``python -m finebench prepare`` on each in a child process and prints wall time, the peak *anonymous* resident memory
of that process (sampled from /proc every 0.1 s; page cache of the memory-mapped output is excluded, since the kernel
can drop it) and the prepared arrays' size on disk. Measures and prints; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def make_images(root: Path, n: int, classes: int = 100) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (classes, 48, 64, 3), dtype=np.uint8)
    for i in range(n):
        c = i % classes
        d = root / f"c{c:03d}"
        d.mkdir(parents=True, exist_ok=True)
        img = np.clip(base[c].astype(int) + rng.integers(-20, 20, base[c].shape), 0, 255).astype(np.uint8)
        Image.fromarray(img).save(d / f"{i:06d}.jpg", quality=85)


def make_clips(root: Path, n: int, classes: int = 35) -> None:
    import soundfile as sf

    rng = np.random.default_rng(0)
    for i in range(n):
        d = root / f"w{i % classes:02d}"
        d.mkdir(parents=True, exist_ok=True)
        sf.write(d / f"{i:06d}.wav", (0.1 * rng.standard_normal(16000)).astype(np.float32), 16000)


def anon_kib(pid: int) -> int:
    """Anonymous resident memory of a process (excludes page cache of memory-mapped files)."""
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def prepare(dataset: str, options: dict, out: Path) -> dict:
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "finebench", "prepare", "--task", out.name, "--dataset", dataset,
                             "--options", json.dumps(options), "--out", str(out)])
    peak_anon = 0
    while proc.poll() is None:
        peak_anon = max(peak_anon, anon_kib(proc.pid))
        time.sleep(0.1)
    if proc.returncode:
        raise SystemExit(f"prepare failed ({proc.returncode})")
    manifest = json.loads((out / "manifest.json").read_text())
    disk = sum(f.stat().st_size for f in out.glob("*_x.npy"))
    return {"dataset": dataset, "samples": sum(s["n"] for s in manifest["splits"].values()),
            "seconds": round(time.perf_counter() - t0, 1), "peak_anon_rss_mb": round(peak_anon / 1024),
            "arrays_on_disk_mb": round(disk / 2**20)}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--images", type=int, default=100_000)
    p.add_argument("--clips", type=int, default=20_000)
    p.add_argument("--work", default="/tmp/fb-scale")
    args = p.parse_args()
    work = Path(args.work)
    results = []
    for n, kind, make, dataset, options in (
            (args.images, "images", make_images, "imagefolder", {"image_size": 56, "resize": 64, "workers": 2}),
            (args.clips, "clips", make_clips, "audiofolder", {})):
        if not n:
            continue
        root = work / f"{kind}{n}"
        if not root.exists():
            t0 = time.perf_counter()
            make(root, n)
            print(f"wrote {n} {kind} in {time.perf_counter() - t0:.0f} s", flush=True)
        results.append(prepare(dataset, {"root": str(root), **options}, work / f"prepared_{kind}"))
    for r in results:
        print(json.dumps(r))


if __name__ == "__main__":
    main()
