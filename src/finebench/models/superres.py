"""Super-resolution architectures (task type ``superres``): LR ``[B, 3, h, w]`` in 0..1 -> SR ``[B, 3, s*h, s*w]``.

One per family, small enough for a 2-core CPU, written for finebench (after the papers, not their code):
- ``edsr`` (CNN): Lim et al. 2017 — conv head, residual blocks without batch norm (conv-ReLU-conv, scaled
  residual), a long skip, sub-pixel (pixel-shuffle) upsampling.
- ``convgru_sr`` (RNN): recurrent refinement in the spirit of DRCN (Kim et al. 2016) — one convolutional GRU cell
  applied ``steps`` times with shared weights to the LR features, each step refining the hidden state; the final
  state is upsampled by pixel shuffle. With ``ensemble: true`` every step is reconstructed and the outputs are
  mixed with learned weights, as DRCN does.
- ``swinir_lite`` (Transformer): after SwinIR (Liang et al. 2021) — shallow conv, residual groups of timm's
  ``SwinTransformerBlock`` (window attention, alternate windows shifted by half) each closed by a conv, pixel-shuffle
  upsampling. Inputs are reflect-padded to a multiple of the window and the output cropped back, so whole images of
  any size are super-resolved.

All three add the input's bicubic upsampling to their output (``residual: true``, the default; VDSR-style global
residual learning) and start their last convolution at zero, so an untrained network outputs exactly that bicubic
upsampling (torch's, a = -0.75 — not the MATLAB kernel of the baseline row) and training learns the residual.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Upsampler(nn.Sequential):
    """Sub-pixel convolution (Shi et al. 2016): conv to ``s^2`` x channels, pixel shuffle; x4 as two x2 stages."""

    def __init__(self, ch: int, scale: int):
        if scale not in (2, 3, 4):
            raise ValueError(f"scale {scale} not supported (2, 3 or 4)")
        layers = []
        for s in ((2, 2) if scale == 4 else (scale,)):
            layers += [nn.Conv2d(ch, ch * s * s, 3, padding=1), nn.PixelShuffle(s)]
        super().__init__(*layers)


class SRModel(nn.Module):
    """Shared frame: body(LR) -> upsample -> 3 channels (+ bicubic of the input)."""

    def __init__(self, scale: int, residual: bool = True):
        super().__init__()
        self.scale, self.residual = scale, residual

    def body(self, x):  # [B, 3, h, w] -> [B, 3, s*h, s*w]
        raise NotImplementedError

    def zero_tail(self):
        """Start the last conv at zero: with the bicubic residual an untrained model outputs bicubic exactly."""
        if self.residual:
            nn.init.zeros_(self.tail.weight)
            nn.init.zeros_(self.tail.bias)

    def forward(self, x):
        out = self.body(x)
        if self.residual:
            out = out + F.interpolate(x, scale_factor=self.scale, mode="bicubic", align_corners=False)
        return out


class ResBlock(nn.Module):
    def __init__(self, ch: int, res_scale: float):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(ch, ch, 3, padding=1), nn.Conv2d(ch, ch, 3, padding=1)
        self.res_scale = res_scale

    def forward(self, x):
        return x + self.res_scale * self.conv2(F.relu(self.conv1(x)))


class EDSR(SRModel):
    def __init__(self, input_info, num_classes=0, channels=32, blocks=4, res_scale=1.0, residual=True):
        super().__init__(int(input_info["scale"]), residual)
        self.head = nn.Conv2d(3, channels, 3, padding=1)
        self.blocks = nn.Sequential(*[ResBlock(channels, res_scale) for _ in range(blocks)],
                                    nn.Conv2d(channels, channels, 3, padding=1))
        self.up = Upsampler(channels, self.scale)
        self.tail = nn.Conv2d(channels, 3, 3, padding=1)
        self.zero_tail()

    def body(self, x):
        f = self.head(x)
        return self.tail(self.up(f + self.blocks(f)))


class ConvGRUCell(nn.Module):
    """h' = (1 - z) h + z tanh(W [x, r h]) with z, r = sigmoid(U [x, h]); 3x3 convolutions."""

    def __init__(self, ch: int):
        super().__init__()
        self.gates = nn.Conv2d(2 * ch, 2 * ch, 3, padding=1)
        self.cand = nn.Conv2d(2 * ch, ch, 3, padding=1)

    def forward(self, x, h):
        z, r = torch.sigmoid(self.gates(torch.cat([x, h], 1))).chunk(2, 1)
        return (1 - z) * h + z * torch.tanh(self.cand(torch.cat([x, r * h], 1)))


class ConvGRUSR(SRModel):
    def __init__(self, input_info, num_classes=0, channels=32, steps=4, ensemble=False, residual=True):
        super().__init__(int(input_info["scale"]), residual)
        self.head = nn.Sequential(nn.Conv2d(3, channels, 3, padding=1), nn.ReLU(inplace=True),
                                  nn.Conv2d(channels, channels, 3, padding=1))
        self.cell = ConvGRUCell(channels)
        self.steps, self.ensemble = steps, ensemble
        self.up = Upsampler(channels, self.scale)
        self.tail = nn.Conv2d(channels, 3, 3, padding=1)
        if ensemble:
            self.mix = nn.Parameter(torch.zeros(steps))
        self.zero_tail()

    def body(self, x):
        f = self.head(x)
        h = torch.tanh(f)
        states = []
        for _ in range(self.steps):
            h = self.cell(f, h)
            states.append(h)
        if not self.ensemble:
            return self.tail(self.up(h))
        w = torch.softmax(self.mix, 0)
        return sum(wi * self.tail(self.up(s)) for wi, s in zip(w, states))


class ResidualSwinGroup(nn.Module):
    """``depth`` Swin blocks (alternately shifted windows) + a 3x3 conv, with a residual connection (SwinIR's RSTB)."""

    def __init__(self, dim, depth, heads, window, mlp_ratio):
        from timm.models.swin_transformer import SwinTransformerBlock

        super().__init__()
        self.blocks = nn.ModuleList([
            SwinTransformerBlock(dim, input_resolution=(window * 4, window * 4), num_heads=heads, window_size=window,
                                 shift_size=0 if i % 2 == 0 else window // 2, always_partition=True,
                                 dynamic_mask=True, mlp_ratio=mlp_ratio)
            for i in range(depth)])
        self.conv = nn.Conv2d(dim, dim, 3, padding=1)

    def forward(self, x):  # [B, C, H, W]
        t = x.permute(0, 2, 3, 1)
        for blk in self.blocks:
            t = blk(t)
        return x + self.conv(t.permute(0, 3, 1, 2))


class SwinIRLite(SRModel):
    def __init__(self, input_info, num_classes=0, dim=32, groups=2, depth=2, heads=2, window=8, mlp_ratio=2.0,
                 residual=True):
        super().__init__(int(input_info["scale"]), residual)
        self.window = window
        self.head = nn.Conv2d(3, dim, 3, padding=1)
        self.groups = nn.Sequential(*[ResidualSwinGroup(dim, depth, heads, window, mlp_ratio) for _ in range(groups)])
        self.norm_conv = nn.Conv2d(dim, dim, 3, padding=1)
        self.up = Upsampler(dim, self.scale)
        self.tail = nn.Conv2d(dim, 3, 3, padding=1)
        self.zero_tail()

    def body(self, x):
        h, w = x.shape[-2:]
        ph, pw = (-h) % self.window, (-w) % self.window
        xp = F.pad(x, (0, pw, 0, ph), mode="reflect") if (ph or pw) else x
        f = self.head(xp)
        out = self.tail(self.up(f + self.norm_conv(self.groups(f))))
        return out[..., : h * self.scale, : w * self.scale]


__all__ = ["EDSR", "ConvGRUSR", "SwinIRLite", "Upsampler"]
