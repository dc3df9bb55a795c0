"""Acoustic models for speech recognition (task type ``asr``): log-mel frames -> per-frame character logits for CTC.

Each takes a finebench.tasks.asr.objective.Padded (features ``[B, T, n_mels]`` and frame counts) and returns
``(logits [B, T', V], output lengths [B])``; ``output_lengths(frames)`` gives T' without running the model (the
trainer's check that every transcript fits the model's output frames). One per family, written for finebench after
the papers (not their code), tiny by default (a 2-core CPU), scaled by their options:

- ``quartznet`` (CNN): QuartzNet (Kriman et al. 2020) — 1-D time-channel separable convolutions (a depthwise
  convolution over time per channel, then a pointwise one across channels, batch norm, ReLU), ``blocks`` residual
  blocks of ``repeats`` such sub-blocks with growing kernels, a stride-2 first layer; QuartzNet 15x5 is
  ``blocks: 15`` with ``kernels`` the paper's 5 sizes x 3, ``repeats: 5`` (one ``channels`` width for every block:
  the paper's 256 -> 512 widening is not an option).
- ``ds2`` (RNN): Deep Speech 2 (Amodei et al. 2016) — two 2-D convolutions over time x frequency (the first of stride
  2 in time), then ``layers`` bidirectional GRUs (``cell: lstm`` for LSTMs), a linear output. Each layer runs one
  RNN forward over the padded batch and one over every utterance reversed within its own length (padding stays at
  the end), so no output frame reads another utterance's padding — without packed sequences, whose backward pass is
  slow on a CPU (measured, one thread: the embedded ds2's GRU run trains in 60-63 s instead of 68-72 s; an LSTM
  layer takes 17 instead of 64 ms per batch of 8, PyTorch's CPU LSTM kernel being about twice as fast as its GRU).
- ``conformer`` (Transformer): a convolutional subsampling front-end (``subsampling`` 2 or 4 in time), a linear
  projection and torchaudio's ``Conformer`` encoder (Gulati et al. 2020: macaron feed-forwards, relative-free
  multi-head self-attention with the padding masked, a depthwise convolution module); Conformer-S is ``dim: 144``,
  ``layers: 16``, ``heads: 4``, ``kernel: 31`` with 4x subsampling.

All three keep 20 ms output frames at the default 10 ms hop (time stride 2): CTC needs one frame per character (two
for a doubled letter), and 4x subsampling is too coarse for fast synthetic speech in characters.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def halve(lengths: torch.Tensor) -> torch.Tensor:
    """Frames after a stride-2 convolution with kernel k and padding k // 2 (k odd): ceil(L / 2)."""
    return torch.div(lengths + 1, 2, rounding_mode="floor")


def time_mask(lengths: torch.Tensor, t: int) -> torch.Tensor:
    return torch.arange(t, device=lengths.device)[None] < lengths[:, None]


def masked_convs(layers, h: torch.Tensor, lengths: list) -> torch.Tensor:
    """2-D convolutions over ``[B, C, time, freq]``, the frames past each utterance's length zeroed after every
    layer (a conv's bias and norm make padding non-zero; the next layer would read it at the utterance's end)."""
    for layer, n in zip(layers, lengths):
        h = layer(h)
        h = h * time_mask(n, h.shape[2])[:, None, :, None].to(h.dtype)
    return h


class ASRModel(nn.Module):
    takes_waveform = False

    def output_lengths(self, frames: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class SeparableConv(nn.Sequential):
    """Depthwise conv over time (one filter per channel) + pointwise conv across channels + batch norm."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1):
        super().__init__(nn.Conv1d(c_in, c_in, kernel, stride=stride, padding=kernel // 2, groups=c_in, bias=False),
                         nn.Conv1d(c_in, c_out, 1, bias=False), nn.BatchNorm1d(c_out))


class QuartzBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, kernel: int, repeats: int, dropout: float):
        super().__init__()
        self.subs = nn.ModuleList(SeparableConv(c_in if i == 0 else c_out, c_out, kernel) for i in range(repeats))
        self.residual = nn.Sequential(nn.Conv1d(c_in, c_out, 1, bias=False), nn.BatchNorm1d(c_out))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x, mask):
        out = x
        for i, sub in enumerate(self.subs):
            out = sub(out)
            if i < len(self.subs) - 1:
                out = self.dropout(F.relu(out)) * mask
        return self.dropout(F.relu(out + self.residual(x))) * mask


class QuartzNet(ASRModel):
    def __init__(self, input_info, num_classes, channels: int = 128, blocks: int = 3, repeats: int = 2,
                 kernels: list | None = None, stem_kernel: int = 11, head_channels: int | None = None,
                 dropout: float = 0.0):
        super().__init__()
        kernels = list(kernels or [11 + 4 * i for i in range(blocks)])
        if len(kernels) != blocks or any(k % 2 == 0 for k in kernels):
            raise ValueError(f"kernels: {kernels} — one odd kernel size per block ({blocks})")
        n_mels, head = input_info["n_mels"], head_channels or 2 * channels
        self.stem = SeparableConv(n_mels, channels, stem_kernel | 1, stride=2)
        self.blocks = nn.ModuleList(QuartzBlock(channels, channels, k, repeats, dropout) for k in kernels)
        self.head = nn.Sequential(SeparableConv(channels, head, kernels[-1] + 4), nn.ReLU(),
                                  nn.Conv1d(head, head, 1, bias=False), nn.BatchNorm1d(head), nn.ReLU(),
                                  nn.Conv1d(head, num_classes, 1))

    def output_lengths(self, frames):
        return halve(frames)

    def forward(self, x):
        lengths = self.output_lengths(x.lengths)
        h = x.values.transpose(1, 2)  # [B, n_mels, T]
        h = F.relu(self.stem(h))
        mask = time_mask(lengths, h.shape[-1])[:, None].to(h.dtype)
        h = h * mask
        for block in self.blocks:
            h = block(h, mask)
        return self.head(h).transpose(1, 2), lengths


class DeepSpeech2(ASRModel):
    def __init__(self, input_info, num_classes, conv_channels: int = 16, hidden: int = 128, layers: int = 2,
                 cell: str = "gru", dropout: float = 0.0):
        super().__init__()
        if cell not in ("gru", "lstm"):
            raise ValueError(f"cell: {cell!r} — gru or lstm")
        c = conv_channels
        self.conv = nn.ModuleList([
            nn.Sequential(nn.Conv2d(1, c, (5, 11), stride=(2, 2), padding=(2, 5), bias=False), nn.BatchNorm2d(c),
                          nn.Hardtanh(0, 20)),
            nn.Sequential(nn.Conv2d(c, c, (5, 11), stride=(1, 2), padding=(2, 5), bias=False), nn.BatchNorm2d(c),
                          nn.Hardtanh(0, 20))])
        freq = input_info["n_mels"]
        for _ in range(2):
            freq = (freq + 1) // 2
        rnn = nn.GRU if cell == "gru" else nn.LSTM
        self.rnns = nn.ModuleList(
            nn.ModuleList([rnn(c * freq if i == 0 else 2 * hidden, hidden, batch_first=True) for _ in range(2)])
            for i in range(layers))  # per layer: forward, backward
        self.dropout = nn.Dropout(dropout)  # between layers, as nn.GRU's own dropout
        self.out = nn.Linear(2 * hidden, num_classes)

    def output_lengths(self, frames):
        return halve(frames)

    def forward(self, x):
        lengths = self.output_lengths(x.lengths)
        h = masked_convs(self.conv, x.values.unsqueeze(1), [lengths, lengths])  # [B, C, T', F']
        b, c, t, f = h.shape
        h = h.permute(0, 2, 1, 3).reshape(b, t, c * f)
        # Frame j of utterance i <-> frame len_i - 1 - j; padding frames stay where they are.
        back = lengths[:, None] - 1 - torch.arange(t, device=h.device)[None]
        back = torch.where(back >= 0, back, torch.arange(t, device=h.device)[None].expand(b, t))[:, :, None]

        def flip(z):  # its own inverse
            return z.gather(1, back.expand(-1, -1, z.shape[2]))

        for i, (forward, backward) in enumerate(self.rnns):
            if i:
                h = self.dropout(h)
            ahead, _ = forward(h)
            behind, _ = backward(flip(h))
            h = torch.cat([ahead, flip(behind)], -1)
        return self.out(h), lengths


class ConformerCTC(ASRModel):
    def __init__(self, input_info, num_classes, dim: int = 96, layers: int = 2, heads: int = 4,
                 ffn_dim: int | None = None, kernel: int = 15, subsampling: int = 2, dropout: float = 0.1):
        super().__init__()
        from torchaudio.models import Conformer

        if subsampling not in (2, 4):
            raise ValueError(f"subsampling: {subsampling} — 2 or 4")
        c = dim // 2
        self.subsampling = subsampling
        self.front = nn.ModuleList([nn.Sequential(nn.Conv2d(1, c, 3, stride=2, padding=1), nn.ReLU()),
                                    nn.Sequential(nn.Conv2d(c, c, 3, stride=(2 if subsampling == 4 else 1, 2),
                                                            padding=1), nn.ReLU())])
        freq = input_info["n_mels"]
        for _ in range(2):
            freq = (freq + 1) // 2
        self.proj = nn.Linear(c * freq, dim)
        self.encoder = Conformer(input_dim=dim, num_heads=heads, ffn_dim=ffn_dim or 4 * dim, num_layers=layers,
                                 depthwise_conv_kernel_size=kernel, dropout=dropout)
        self.out = nn.Linear(dim, num_classes)
        # torchaudio's convolution module does not mask: its depthwise convolution would read the padding of a
        # shorter utterance (non-zero after the layer norm). A pre-hook zeroes it, so an utterance's output does
        # not depend on what it is batched with (tests/test_asr.py).
        self._mask = None
        for layer in self.encoder.conformer_layers:
            layer.conv_module.sequential[2].register_forward_pre_hook(self._zero_padding)

    def _zero_padding(self, module, args):
        return (args[0] * self._mask,) if self._mask is not None else None

    def output_lengths(self, frames):
        out = halve(frames)
        return halve(out) if self.subsampling == 4 else out

    def forward(self, x):
        lengths = self.output_lengths(x.lengths)
        h = masked_convs(self.front, x.values.unsqueeze(1), [halve(x.lengths), lengths])  # [B, C, T', F']
        b, c, t, f = h.shape
        h = self.proj(h.permute(0, 2, 1, 3).reshape(b, t, c * f))
        self._mask = time_mask(lengths, t)[:, None].to(h.dtype)  # [B, 1, T'] for the depthwise convolutions
        try:
            h, _ = self.encoder(h, lengths.clamp(min=1))
        finally:
            self._mask = None
        return self.out(h), lengths
