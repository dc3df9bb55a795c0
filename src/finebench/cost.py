"""Cost measurements of a trained model: FLOPs per sample, inference latency and throughput, peak memory.

FLOPs come from ``torch.utils.flop_counter.FlopCounterMode``: forward passes of single samples (text: each at its own
length), averaged over the first test samples; it counts matmuls, convolutions and attention, 2 FLOPs per
multiply-accumulate; elementwise ops are not counted. Recurrent layers (``nn.LSTM`` / ``nn.GRU`` / ``nn.RNN``) are
counted from their shapes and the time steps they ran (``recurrent_flops``), the same on every device: their fused
kernels (cuDNN's ``_cudnn_rnn``, oneDNN's ``mkldnn_rnn_layer``) have no FlopCounterMode formula, so on a GPU an RNN
would otherwise count as almost free. Latency is the median wall time of a batch-1 forward; throughput is samples/s
of batched forwards. Peak memory is ``torch.cuda.max_memory_allocated`` on CUDA and the process's peak resident set
size on CPU.
"""

from __future__ import annotations

import contextlib
import resource
import sys
import time

import numpy as np


def recurrent_flops(rnn, input) -> int:
    """Forward FLOPs of one call of ``rnn`` (an ``nn.RNNBase``: LSTM, GRU, RNN) on ``input`` (a tensor, batched or
    not, or a PackedSequence), from its shapes alone: for every layer and direction, at every time step of every
    sample, 2 FLOPs per weight — gates x hidden x (layer input + recurrent input), plus the projection of an LSTM with
    ``proj_size``; biases and the gates' elementwise ops are not counted, as FlopCounterMode counts a linear layer.
    A packed batch runs sum(lengths) steps (padding never enters the recurrence), a padded one batch x length."""
    from torch.nn.utils.rnn import PackedSequence

    steps = input.data.shape[0] if isinstance(input, PackedSequence) else input.numel() // input.shape[-1]
    gates = {"LSTM": 4, "GRU": 3, "RNN_TANH": 1, "RNN_RELU": 1}[rnn.mode]
    out = rnn.proj_size or rnn.hidden_size  # what a layer emits per direction, and feeds back
    directions = 2 if rnn.bidirectional else 1
    weights = sum(gates * rnn.hidden_size * ((rnn.input_size if layer == 0 else directions * out) + out)
                  + rnn.proj_size * rnn.hidden_size for layer in range(rnn.num_layers))
    return 2 * steps * directions * weights


@contextlib.contextmanager
def recurrent_layers_by_shape(model, counter):
    """While open, each call of an ``nn.RNNBase`` inside ``model`` is counted by ``recurrent_flops`` instead of by
    what ``counter`` (a FlopCounterMode) saw inside it: the yielded list's one number is the correction to add to
    ``counter.get_total_flops()``. On the CPU a GRU or a packed LSTM decomposes into counted matmuls (the same count),
    a padded LSTM runs oneDNN's uncounted ``mkldnn_rnn_layer``; on CUDA both run cuDNN's uncounted ``_cudnn_rnn``."""
    from torch import nn

    correction, started = [0], []

    def before(module, args, kwargs):
        started.append(counter.get_total_flops())

    def after(module, args, kwargs, output):
        seen = counter.get_total_flops() - started.pop()
        correction[0] += recurrent_flops(module, args[0] if args else kwargs["input"]) - seen

    handles = [hook for m in model.modules() if isinstance(m, nn.RNNBase)
               for hook in (m.register_forward_pre_hook(before, with_kwargs=True),
                            m.register_forward_hook(after, with_kwargs=True))]
    try:
        yield correction
    finally:
        for hook in handles:
            hook.remove()


def flops_per_sample(model, xs, trim=None, n: int = 8) -> float:
    """Mean forward FLOPs over the first ``n`` samples, each run alone (``trim`` drops a sequence's padding).

    PyTorch's fused fast path for nn.TransformerEncoder in eval mode is invisible to FlopCounterMode, so it is
    switched off while counting; recurrent layers are counted by shape (``recurrent_layers_by_shape``).
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
            with (torch.no_grad(), FlopCounterMode(display=False) as counter,
                  recurrent_layers_by_shape(model, counter) as correction):
                model(x1)
            counts.append(counter.get_total_flops() + correction[0])
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
