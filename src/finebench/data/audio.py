"""Audio helpers shared by speech datasets: resampling, fixed-length clips, log-mel features (torch)."""

from __future__ import annotations

import math

import numpy as np


def resample(x: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    from scipy.signal import resample_poly

    if sr_in == sr_out:
        return x.astype(np.float32)
    g = math.gcd(sr_in, sr_out)
    return resample_poly(x, sr_out // g, sr_in // g).astype(np.float32)


def fit_length(x: np.ndarray, n: int, offset: int = 0) -> np.ndarray:
    """Place ``x`` at ``offset`` in a zero clip of ``n`` samples (cropping whatever falls outside)."""
    out = np.zeros(n, dtype=np.float32)
    src0, dst0 = max(0, -offset), max(0, offset)
    k = min(len(x) - src0, n - dst0)
    if k > 0:
        out[dst0 : dst0 + k] = x[src0 : src0 + k]
    return out


def mel_filterbank(n_fft: int, n_mels: int, sr: int, fmin: float, fmax: float):
    """Triangular filters on the HTK mel scale, shape [n_fft // 2 + 1, n_mels]."""
    import torch

    def hz_to_mel(f):
        return 2595.0 * np.log10(1.0 + np.asarray(f) / 700.0)

    freqs = np.linspace(0, sr / 2, n_fft // 2 + 1)
    mel_points = np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2)
    hz_points = 700.0 * (10 ** (mel_points / 2595.0) - 1.0)
    lower, centre, upper = hz_points[:-2, None], hz_points[1:-1, None], hz_points[2:, None]
    up = (freqs[None] - lower) / (centre - lower)
    down = (upper - freqs[None]) / (upper - centre)
    return torch.from_numpy(np.maximum(0, np.minimum(up, down)).T.astype(np.float32))


def log_mel(clips: np.ndarray, sr: int, n_fft: int, hop: int, n_mels: int, fmin: float = 20.0,
            fmax: float | None = None, batch: int = 512) -> np.ndarray:
    """``[N, samples]`` float waveforms -> ``[N, 1, n_mels, samples // hop]`` float16 log-mel power spectrograms.

    Centred frames; the last one (which only covers the clip's final half window) is dropped so a 1 s clip at a
    10 ms hop gives exactly 100 frames — divisible by common patch widths.
    """
    import torch

    fb = mel_filterbank(n_fft, n_mels, sr, fmin, fmax or sr / 2)
    window = torch.hann_window(n_fft)
    out = []
    for i in range(0, len(clips), batch):
        x = torch.from_numpy(np.ascontiguousarray(clips[i : i + batch], dtype=np.float32))
        spec = torch.stft(x, n_fft, hop_length=hop, window=window, center=True, return_complex=True).abs() ** 2
        spec = spec[..., : x.shape[1] // hop]
        mel = torch.matmul(spec.transpose(1, 2), fb).transpose(1, 2)  # [B, n_mels, frames]
        out.append(torch.log(mel + 1e-6).unsqueeze(1).half().numpy())
    return np.concatenate(out)
