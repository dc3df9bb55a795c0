"""Cost measurements of a trained model: FLOPs per sample, inference latency and throughput, peak memory.

FLOPs come from ``torch.utils.flop_counter.FlopCounterMode`` on one forward pass of one sample (it counts matmuls,
convolutions and attention: 2 FLOPs per multiply-accumulate; elementwise ops are not counted). Latency is the median
wall time of a batch-1 forward; throughput is samples/s of batched forwards. Peak memory is
``torch.cuda.max_memory_allocated`` on CUDA and the process's peak resident set size on CPU.
"""

from __future__ import annotations

import resource
import sys
import time

import numpy as np


def flops_per_sample(model, x1) -> int:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x1)
    return int(counter.get_total_flops())


def timed_forward(model, x, reps: int, autocast, device) -> list[float]:
    import torch

    times = []
    with torch.no_grad():
        for i in range(reps + 1):
            t0 = time.perf_counter()
            with autocast():
                model(x)
            if device.type == "cuda":
                torch.cuda.synchronize()
            if i:  # the first call is a warm-up
                times.append(time.perf_counter() - t0)
    return times


def measure(model, x_batch, autocast, device, reps_single: int = 20, reps_batch: int = 3) -> dict:
    """Cost metrics for ``model`` on inputs like ``x_batch`` (a batch of real test inputs)."""
    import torch

    model.eval()
    single = timed_forward(model, x_batch[:1], reps_single, autocast, device)
    batched = timed_forward(model, x_batch, reps_batch, autocast, device)
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device) / 2**20
    else:
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
        peak = rss / (2**20 if sys.platform == "darwin" else 2**10)
    return {
        "flops_per_sample": flops_per_sample(model, x_batch[:1]),
        "latency_ms_batch1": 1000 * float(np.median(single)),
        "inference_samples_per_s": len(x_batch) / float(np.median(batched)),
        "inference_batch_size": int(len(x_batch)),
        "peak_memory_mb": float(peak),
    }
