"""Recurrent layers kept out of autocast: ``fp32_recurrent(model)``.

On CUDA, autocast's kernel for cuDNN's RNN op (``_cudnn_rnn``, PyTorch's aten/src/ATen/cudnn/AutocastRNN.cpp) casts
the input, the hidden states and the flattened weights to float16, hard-coded: under
``torch.autocast("cuda", dtype=torch.bfloat16)`` an LSTM / GRU runs in fp16 anyway, with fp16's narrow range, and
finebench's bf16 runs have no loss scaler to keep its gradients from underflowing. ``fp32_recurrent`` runs every
``nn.LSTM`` / ``nn.GRU`` / ``nn.RNN`` of a model outside autocast in its weights' dtype (float32 in the trainer).

    .venv/bin/python -c "import torch; from finebench.models.precision import fp32_recurrent
    m = fp32_recurrent(torch.nn.LSTM(4, 8))
    with torch.autocast('cpu', dtype=torch.bfloat16): print(m(torch.randn(3, 2, 4))[0].dtype)"  # torch.float32
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence


class _Float32Recurrent:
    """Mixin for an ``nn.RNNBase`` subclass: under autocast, its forward runs with autocast off, the input (tensor or
    PackedSequence) and hidden state cast to the weights' dtype; outputs come back in that dtype. Without autocast
    it is the plain forward."""

    def forward(self, input, hx=None):
        device = (input.data if isinstance(input, PackedSequence) else input).device.type
        if not torch.is_autocast_enabled(device):
            return super().forward(input, hx)
        dtype = self.weight_ih_l0.dtype
        input = input.to(dtype)
        if hx is not None:
            hx = tuple(h.to(dtype) for h in hx) if isinstance(hx, tuple) else hx.to(dtype)
        with torch.autocast(device, enabled=False):
            return super().forward(input, hx)


# Named module-level classes, so that a converted model still pickles and deep-copies.
class Float32LSTM(_Float32Recurrent, nn.LSTM):
    pass


class Float32GRU(_Float32Recurrent, nn.GRU):
    pass


class Float32RNN(_Float32Recurrent, nn.RNN):
    pass


FLOAT32 = {nn.LSTM: Float32LSTM, nn.GRU: Float32GRU, nn.RNN: Float32RNN}


def fp32_recurrent(model: nn.Module) -> nn.Module:
    """Run every recurrent layer of ``model`` (``nn.RNNBase``: LSTM, GRU, RNN) outside autocast, in float32; the rest
    of the model keeps autocast. Converted in place (each layer's class becomes a subclass whose forward turns
    autocast off around the original one), returned for chaining; calling it twice changes nothing.

    Parameters, ``state_dict`` keys and checkpoints are unchanged: only the forward's precision differs. The cost:
    the recurrent matmuls run in fp32 instead of on fp16/bf16 tensor cores — slower, and an RNN-heavy model gains
    less from autocast. The trainer applies it to every bf16 run (``finebench.train.set_up``): on CUDA cuDNN would
    run the layers in fp16; on the CPU the same numerics as on a GPU, and an LSTM fed float32 no longer reaches
    oneDNN's bf16 kernel, which fails on CPUs without bf16 units ("could not create a primitive descriptor").
    fp16 runs keep cuDNN's fp16 RNNs: they have a loss scaler. A subclass of LSTM/GRU/RNN of one's own gets a class
    made on the fly (it works, but a model holding it no longer pickles)."""
    for m in model.modules():
        if isinstance(m, nn.RNNBase) and not isinstance(m, _Float32Recurrent):
            cls = type(m)
            if cls not in FLOAT32:
                FLOAT32[cls] = type(f"Float32{cls.__name__}", (_Float32Recurrent, cls), {})
            m.__class__ = FLOAT32[cls]
    return model
