"""Benchmark: how long `make benchmark` (or any config) takes on this machine, projected from measured throughput.

    .venv/bin/python tests/benchmarks/benchmark_time.py --config config/benchmark.yaml --device cuda --steps 30
    .venv/bin/python tests/benchmarks/benchmark_time.py --tasks sst5 trec50 --steps 5     # a quick CPU look

For every (task, model) of the config it writes a synthetic prepared dataset with the task's real input shape and
class count (random pixels / tokens / log-mels: throughput does not depend on content), runs the real training job
(`python -m finebench train`, the command the Snakemake rule runs, in its own process) for 2 epochs of ``--steps``
batches at the config's batch size, and reads back the second epoch's training-loop time (the first pays for
warm-up: cuDNN autotuning, allocator growth), the batched inference throughput and the job's fixed overhead
(start-up, model build, cost measurement = wall time minus the epochs). Then, with the official split sizes from
the dataset registry (a carved validation split taken out of train), it projects each run:

    epochs x (n_train / train samples/s + n_val / inference samples/s) + n_test / inference samples/s + overhead

and sums over models and seeds, one job at a time (`--resources gpu=1`). Super-resolution tasks: the synthetic data
are random 480 x 480 HR images (``hr_folder``, the task's scale, patch size and patches per epoch); a run is projected
as epochs x (steps x seconds per step + validation pixels / pixels per second) + test pixels / pixels per second +
overhead, with the evaluation sets' pixel counts from :data:`SR_EVAL_MEGAPIXELS` (approximate; training dominates).
Not included: downloads and the one-off data preparation per task, and ``hf:`` models (their inputs need the
model's own tokenizer). A job that fails is
reported and left out; the others still run. Pretrained weights are switched off (same architecture, same speed,
no hub access needed). Text batches are trimmed to their longest sequence, so token lengths are drawn uniformly from
[max_len/4, max_len]: real short texts (SST ~20 tokens) train faster than this estimate. Measures and prints;
asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from finebench import config as fbconfig
from finebench import data as fbdata


def split_sizes(source, options: dict) -> dict[str, int]:
    """The official split sizes, with val carved out of train the way carve_splits does when the release has none."""
    sizes = dict(source.official["splits"])
    if "val" not in sizes:
        val = int(round(sizes["train"] * options.get("val_fraction", 0.1)))
        sizes = {"train": sizes["train"] - val, "val": val, "test": sizes["test"]}
    return sizes


def input_info(source, options: dict) -> dict:
    if source.modality == "vision":
        return {"kind": "image", "channels": 3, "height": options["image_size"], "width": options["image_size"],
                "stored_size": options["resize"], "augment": "random_resized_crop_flip"}
    if source.modality == "text":
        return {"kind": "tokens", "vocab_size": options["vocab_size"], "pad_id": 0, "max_len": options["max_len"]}
    frames = int(options["sample_rate"] * options["clip_seconds"]) // options["hop"]
    return {"kind": "spectrogram", "channels": 1, "n_mels": options["n_mels"], "frames": frames, "mean": 0.0, "std": 1.0}


def synthetic_x(info: dict, n: int, rng) -> np.ndarray:
    if info["kind"] == "image":
        s = info["stored_size"]
        return rng.integers(0, 256, (n, 3, s, s), dtype=np.uint8)
    if info["kind"] == "tokens":
        x = rng.integers(2, info["vocab_size"], (n, info["max_len"]), dtype=np.int32)
        lengths = rng.integers(info["max_len"] // 4, info["max_len"] + 1, n)
        x[np.arange(info["max_len"])[None, :] >= lengths[:, None]] = 0
        return x
    return rng.standard_normal((n, 1, info["n_mels"], info["frames"])).astype(np.float16)


def write_prepared(out: Path, info: dict, classes: int, n: dict[str, int], seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    splits = {}
    for split, size in n.items():
        np.save(out / f"{split}_x.npy", synthetic_x(info, size, rng))
        y = rng.integers(0, classes, size).astype(np.int64)
        np.save(out / f"{split}_y.npy", y)
        splits[split] = {"n": size, "class_counts": np.bincount(y, minlength=classes).tolist()}
    manifest = {"task": out.name, "dataset": "synthetic", "input": info, "classes": [f"c{i}" for i in range(classes)],
                "num_classes": classes, "splits": splits, "carved_splits": {}, "synthetic_benchmark": True}
    (out / "manifest.json").write_text(json.dumps(manifest))


# HR megapixels scored per evaluation, for the super-resolution projection: Set5 (512², 288², 256², 280², 228x344) and
# BSD100 (100 x 481x321) are exact; DIV2K valid images are 2040 px on the long side (~1,350-1,400 on the other: 2.8 MP
# assumed), Set14 is summed from its 14 image sizes as commonly distributed, Urban100 (~1024 px on the long side) is a
# rough estimate.
SR_EVAL_MEGAPIXELS = {"div2k_valid_image": 2.8, "set5": 0.57, "set14": 3.2, "bsd100": 15.4, "urban100": 80.0}
SR_SYNTHETIC_SIDE = 480  # divisible by 2, 3 and 4


def write_sr_prepared(out: Path, task: str, options: dict, work: Path) -> None:
    """A prepared super-resolution task (the real ``hr_folder`` path) from random images of SR_SYNTHETIC_SIDE²."""
    from PIL import Image

    rng = np.random.default_rng(0)
    folder = work / "sr-images" / task
    for split, n in (("train", 4), ("val", 1), ("test", 1)):
        (folder / split).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            img = rng.integers(0, 256, (SR_SYNTHETIC_SIDE, SR_SYNTHETIC_SIDE, 3), dtype=np.uint8)
            Image.fromarray(img).save(folder / split / f"{i}.png")
    opts = {**fbdata.DATASETS["hr_folder"].defaults, "root": str(folder), "example_crop": 48,
            **{k: options[k] for k in ("scale", "patch_size", "patches_per_epoch", "degradation")}}
    fbdata.prepare_task(task, "hr_folder", opts, out)


def sr_eval_megapixels(options: dict) -> tuple[float, float]:
    """(HR megapixels of one validation pass, of the final test on every test set) of an ``sr_benchmark`` task."""
    from finebench.data.superres import test_set_names

    val = int(options.get("val_images") or 10) * SR_EVAL_MEGAPIXELS["div2k_valid_image"]
    return val, sum(SR_EVAL_MEGAPIXELS[k] for k in test_set_names(options.get("test_set") or "set5"))


def run_job(spec: dict, data_dir: Path, exp_file: Path, out: Path, device: str, threads: int) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "finebench", "train", "--spec", json.dumps(spec), "--data",
                           str(data_dir), "--experiment-file", str(exp_file), "--out", str(out), "--device", device,
                           "--threads", str(threads), "--no-progress"], capture_output=True, text=True)
    if proc.returncode:
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
        raise JobFailed(lines[-1] if lines else f"exit status {proc.returncode}")
    return time.perf_counter() - t0


class JobFailed(Exception):
    """A training job of the benchmark failed (its last stderr line): reported, and the other models still run."""


def measure(spec: dict, data_dir: Path, exp_file: Path, out: Path, device: str, threads: int, failed: list):
    """Run one job: (wall seconds, history.csv, metrics.json), or None when it failed (printed, added to ``failed``)."""
    name = f"{spec['task']}/{spec['model']}"
    try:
        wall = run_job(spec, data_dir, exp_file, out, device, threads)
    except JobFailed as exc:
        failed.append(f"{name}: {exc}")
        print(f"{spec['task']:16s} {spec['model']:16s} FAILED: {exc}", flush=True)
        return None
    return wall, pd.read_csv(out / "history.csv"), json.loads((out / "metrics.json").read_text())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default="config/benchmark.yaml")
    ap.add_argument("--tasks", nargs="*", help="only these tasks (default: all with official counts, and sr_benchmark tasks)")
    ap.add_argument("--models", nargs="*", help="only these models")
    ap.add_argument("--steps", type=int, default=30, help="training batches per measured epoch")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=None, help="default: the config's threads")
    ap.add_argument("--work", default="/tmp/finebench-benchmark-time")
    ap.add_argument("--out", help="also write the table as CSV here")
    ap.add_argument("--gpus", type=int, nargs="*", default=[2, 4, 8],
                    help="also project the wall time with this many GPUs, one job on each (make benchmark GPUS=N)")
    args = ap.parse_args()

    cfg = fbconfig.load(args.config)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    exp_file = work / "experiment.json"
    subprocess.run([sys.executable, "-m", "finebench", "init-tracking", "--tracking-uri",
                    f"sqlite:///{work}/mlflow.db", "--experiment", "benchmark-time", "--artifact-root",
                    str(work / "mlartifacts"), "--out", str(exp_file)], check=True, capture_output=True)
    threads = args.threads or cfg["threads"]
    rows, failed = [], []
    for task in args.tasks or list(cfg["tasks"]):
        dataset = cfg["tasks"][task]["dataset"]
        source = fbdata.DATASETS[dataset]
        if source.task_type == "superres":
            if dataset != "sr_benchmark":
                print(f"skip {task}: {dataset} has no known evaluation sizes (only sr_benchmark is projected)",
                      file=sys.stderr)
                continue
            for model in fbconfig.task_models(cfg, task):
                if not args.models or model in args.models:
                    project_sr(cfg, task, model, args, work, exp_file, threads, rows, failed)
            continue
        if not source.official:
            print(f"skip {task}: {dataset} has no official split sizes to project with", file=sys.stderr)
            continue
        options = fbconfig.task_options(cfg, task)
        info = input_info(source, options)
        sizes = split_sizes(source, options)
        for model in fbconfig.task_models(cfg, task):
            if args.models and model not in args.models:
                continue
            spec = fbconfig.resolve_spec(cfg, task, model, 0)
            if spec["arch"].startswith("hf:"):  # their inputs come from the model's own tokenizer / feature extractor
                failed.append(f"{task}/{model}: hf: models are not projected (synthetic data has no model tokenizer)")
                continue
            t = spec["training"]
            spec["model_kwargs"] = {k: v for k, v in spec["model_kwargs"].items() if k not in ("pretrained", "pretrained_file")}
            spec["training"] = {**t, "epochs": 2, "max_train_batches": args.steps, "warmup_epochs": 0.0}
            data_dir = work / "data" / task
            n_syn = {"train": args.steps * t["batch_size"], "val": t["eval_batch_size"], "test": t["eval_batch_size"]}
            if not (data_dir / "manifest.json").is_file() or \
                    json.loads((data_dir / "manifest.json").read_text())["splits"]["train"]["n"] != n_syn["train"]:
                write_prepared(data_dir, info, source.official["classes"], n_syn)
            measured = measure(spec, data_dir, exp_file, work / "runs" / task / model, args.device, threads, failed)
            if measured is None:
                continue
            wall, hist, m = measured
            train_sps = n_syn["train"] / hist["train_seconds"].iloc[-1]
            infer_sps = m["inference_samples_per_s"]
            overhead = max(0.0, wall - hist["epoch_seconds"].sum())
            per_run = (t["epochs"] * (sizes["train"] / train_sps + sizes["val"] / infer_sps)
                       + sizes["test"] / infer_sps + overhead)
            seeds = len(cfg["seeds"])
            rows.append({"task": task, "model": model, "device": m["device"], "batch_size": t["batch_size"],
                         "epochs": t["epochs"], "n_train": sizes["train"], "train_samples_per_s": round(train_sps, 1),
                         "inference_samples_per_s": round(infer_sps, 1), "overhead_s": round(overhead, 1),
                         "peak_memory_mb": m.get("peak_memory_mb"), "minutes_per_run": round(per_run / 60, 2),
                         "seeds": seeds, "minutes_all_seeds": round(seeds * per_run / 60, 1)})
            r = rows[-1]
            print(f"{task:16s} {model:16s} train {r['train_samples_per_s']:8.1f}/s  infer {r['inference_samples_per_s']:8.1f}/s"
                  f"  overhead {r['overhead_s']:5.1f}s  -> {r['minutes_per_run']:7.2f} min/run x {seeds}", flush=True)
    table = pd.DataFrame(rows)
    if failed:  # e.g. hf: models on a machine without the Hugging Face hub (give them pretrained_dir:)
        print(f"\n{len(failed)} model(s) not in the projection:\n  " + "\n  ".join(failed))
    if table.empty:
        return 1
    print()
    print(table.to_string(index=False))
    total = table["minutes_all_seeds"].sum()
    print(f"\nprojected training time, one job at a time: {total:.0f} min = {total / 60:.1f} h "
          f"({len(table)} task x model pairs, {int(table['seeds'].sum())} runs; downloads and preparation excluded)")
    runs = [m / n for m, n in zip(table["minutes_all_seeds"], table["seeds"]) for _ in range(int(n))]
    for gpus in args.gpus:
        wall = packed_minutes(runs, gpus)
        print(f"with {gpus} jobs at once (make benchmark GPUS={gpus}: one per GPU; longest first — Snakemake's own "
              f"order may pack worse): {wall:.0f} min = {wall / 60:.1f} h")
    if args.out:
        table.to_csv(args.out, index=False)
    return 0


def packed_minutes(runs: list[float], workers: int) -> float:
    """Wall time of ``runs`` (minutes each) on ``workers`` slots, each run started on the first free slot, longest
    first (the LPT rule: within 4/3 of the best possible packing)."""
    import heapq

    slots = [0.0] * max(1, workers)
    for minutes in sorted(runs, reverse=True):
        heapq.heapreplace(slots, slots[0] + minutes)
    return max(slots)


def project_sr(cfg, task, model, args, work, exp_file, threads, rows, failed) -> None:
    """One super-resolution (task, model): measure 2 epochs of --steps batches on synthetic data, project the run."""
    options = fbconfig.task_options(cfg, task)
    spec = fbconfig.resolve_spec(cfg, task, model, 0)
    t = spec["training"]
    spec["training"] = {**t, "epochs": 2, "max_train_batches": args.steps, "warmup_epochs": 0.0}
    data_dir = work / "data" / task
    manifest = data_dir / "manifest.json"
    if not manifest.is_file() or json.loads(manifest.read_text())["input"]["scale"] != options["scale"]:
        write_sr_prepared(data_dir, task, options, work)
    measured = measure(spec, data_dir, exp_file, work / "runs" / task / model, args.device, threads, failed)
    if measured is None:
        return
    wall, hist, m = measured
    last = hist.iloc[-1]
    steps = min(args.steps, math.ceil(options["patches_per_epoch"] / t["batch_size"]))
    step_s = last["train_seconds"] / steps
    mpx_s = SR_SYNTHETIC_SIDE**2 / 1e6 / max(1e-9, last["epoch_seconds"] - last["train_seconds"])  # one val image
    overhead = max(0.0, wall - hist["epoch_seconds"].sum())
    val_mpx, test_mpx = sr_eval_megapixels(options)
    steps_per_epoch = math.ceil(options["patches_per_epoch"] / t["batch_size"])
    per_run = t["epochs"] * (steps_per_epoch * step_s + val_mpx / mpx_s) + test_mpx / mpx_s + overhead
    seeds = len(cfg["seeds"])
    rows.append({"task": task, "model": model, "device": m["device"], "batch_size": t["batch_size"],
                 "epochs": t["epochs"], "n_train": options["patches_per_epoch"],
                 "train_samples_per_s": round(t["batch_size"] / step_s, 1),
                 "inference_samples_per_s": None, "infer_megapixels_per_s": round(mpx_s, 2),
                 "overhead_s": round(overhead, 1), "peak_memory_mb": m.get("peak_memory_mb"),
                 "minutes_per_run": round(per_run / 60, 2), "seeds": seeds,
                 "minutes_all_seeds": round(seeds * per_run / 60, 1)})
    r = rows[-1]
    print(f"{task:16s} {model:16s} train {r['train_samples_per_s']:8.1f} patches/s  infer {mpx_s:8.2f} MP/s"
          f"  overhead {r['overhead_s']:5.1f}s  -> {r['minutes_per_run']:7.2f} min/run x {seeds}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
