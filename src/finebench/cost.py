"""Cost measurements of a trained model: FLOPs per sample, inference latency and throughput, peak memory.

FLOPs come from ``torch.utils.flop_counter.FlopCounterMode``: forward passes of single samples (text: each at its own
length), averaged over the first test samples; it counts matmuls, convolutions, recurrent cells and attention,
2 FLOPs per multiply-accumulate; elementwise ops are not counted. Latency is the median
wall time of a batch-1 forward; throughput is samples/s of batched forwards. Peak memory is
``torch.cuda.max_memory_allocated`` on CUDA and the process's peak resident set size on CPU.
"""

from __future__ import annotations

import resource
import sys
import time

import numpy as np


def _mkldnn_rnn_layer_flops(input_shape, w_ih, w_hh, *args, out_shape=None, **kwargs) -> int:
    """One direction of one LSTM layer as the CPU (oneDNN) kernel runs it — an op FlopCounterMode has no formula
    for: 2 FLOPs per weight per time step per sample (GRUs decompose into counted matmuls on their own)."""
    return 2 * input_shape[0] * input_shape[1] * (w_ih[0] * w_ih[1] + w_hh[0] * w_hh[1])


def flops_per_sample(model, xs, trim=None, n: int = 8) -> float:
    """Mean forward FLOPs over the first ``n`` samples, each run alone (``trim`` drops a sequence's padding).

    PyTorch's fused fast path for nn.TransformerEncoder in eval mode is invisible to FlopCounterMode, so it is
    switched off while counting.
    """
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    model.eval()
    fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        counts = []
        for i in range(min(n, len(xs))):
            x1 = xs[i : i + 1] if trim is None else trim(xs[i : i + 1])
            # keys are op packets: that is how FlopCounterMode looks formulas up
            rnn_ops = {torch.ops.aten.mkldnn_rnn_layer: _mkldnn_rnn_layer_flops}
            with torch.no_grad(), FlopCounterMode(display=False, custom_mapping=rnn_ops) as counter:
                model(x1)
            counts.append(counter.get_total_flops())
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)
    return float(np.mean(counts))


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


def trim_padding(pad_id: int = 0):
    """A function that cuts a single right-padded token sequence ``[1, T]`` to its own length."""
    from finebench.loader import token_lengths

    return lambda x1: x1[:, : int(token_lengths(x1, pad_id)[0])]


def measure(model, x_batch, autocast, device, reps_single: int = 20, reps_batch: int = 3,
            pad_id: int | None = None) -> dict:
    """Cost metrics for ``model`` on inputs like ``x_batch`` (a batch of real test inputs; token sequences give
    ``pad_id``, so that each sample's FLOPs are counted at its own length)."""
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
        "flops_per_sample": flops_per_sample(model, x_batch, None if pad_id is None else trim_padding(pad_id)),
        "latency_ms_batch1": 1000 * float(np.median(single)),
        "inference_samples_per_s": len(x_batch) / float(np.median(batched)),
        "inference_batch_size": int(len(x_batch)),
        "peak_memory_mb": float(peak),
    }
