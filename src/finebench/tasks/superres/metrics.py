"""Super-resolution metrics as the literature reports them: PSNR and SSIM on the Y channel of YCbCr.

The protocol of SRCNN / VDSR / EDSR / SwinIR tables (and of their MATLAB evaluation scripts):
- the super-resolved image is quantised to 8 bits (``round``, clipped to 0..255) before scoring;
- both images are converted to Y with ITU-R BT.601 as MATLAB's ``rgb2ycbcr`` does
  (``Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255`` for R, G, B in 0..255, giving 16..235); Y is kept in
  floating point (as the Python ports of those scripts do; MATLAB on uint8 input rounds Y, which moves PSNR by
  ~0.01 dB);
- a grey (one-channel) HR image is scored on its own values, not on the Y of three equal channels (which is
  16 + 0.859 v: every error shrunk by 219/255, PSNR raised by 20 log10(255/219) = 1.32 dB). See :func:`sr_scores`;
- ``scale`` pixels are cropped from every border;
- PSNR = 10 log10(255^2 / MSE); SSIM (Wang et al. 2004) with an 11x11 Gaussian window of sigma 1.5,
  K1 = 0.01, K2 = 0.03, L = 255, population (not sample) covariances, averaged over the window positions that fit
  inside the image ("valid") — the settings of scikit-image's ``structural_similarity(gaussian_weights=True,
  sigma=1.5, use_sample_covariance=False, data_range=255)``, against which tests/test_superres.py checks both;
- a test set's score is the mean of the per-image scores.

Computed in float64 with torch (no scikit-image import in training jobs).
"""

from __future__ import annotations

import math

import numpy as np

BT601 = np.array([65.481, 128.553, 24.966]) / 255.0  # rgb2ycbcr's Y row for 0..255 inputs (offset 16)
GREY = BT601 / BT601.sum()  # the same weights summing to 1 (0.299, 0.587, 0.114): Y = 16 + 219 / 255 * GREY @ rgb
SSIM_SIGMA, SSIM_RADIUS, K1, K2, PEAK = 1.5, 5, 0.01, 0.03, 255.0


def to_uint8(img) -> np.ndarray:
    """Float image in 0..255 (numpy or torch) -> uint8, rounding half up as MATLAB's im2uint8."""
    a = img.detach().cpu().numpy() if hasattr(img, "detach") else np.asarray(img)
    if a.dtype == np.uint8:
        return a
    return np.clip(np.floor(a.astype(np.float64) + 0.5), 0, 255).astype(np.uint8)


def rgb_to_y(img: np.ndarray) -> np.ndarray:
    """``[H, W, 3]`` or ``[H, W, 1]`` / ``[H, W]`` values in 0..255 -> Y ``[H, W]`` float64 (BT.601, 16..235)."""
    a = np.asarray(img, dtype=np.float64)
    if a.ndim == 2:
        return a
    if a.shape[-1] == 1:
        return a[..., 0]
    if a.shape[-1] != 3:
        raise ValueError(f"rgb_to_y: expected 1 or 3 channels last, got shape {a.shape}")
    return 16.0 + a @ BT601


def rgb_to_grey(img: np.ndarray) -> np.ndarray:
    """``[H, W, 3]`` in 0..255 -> ``[H, W]`` float64 on the grey image's own scale: (Y - 16) * 255 / 219, i.e. BT.601
    luma with weights summing to 1; exactly the common value where the three channels are equal."""
    a = np.asarray(img, dtype=np.float64)
    r, g, b = a[..., 0], a[..., 1], a[..., 2]
    return r + GREY[1] * (g - r) + GREY[2] * (b - r)  # = GREY @ (r, g, b), written so that r = g = b gives r exactly


def shave(y: np.ndarray, border: int) -> np.ndarray:
    return y[border:-border, border:-border] if border > 0 else y


def psnr(ref: np.ndarray, test: np.ndarray, peak: float = PEAK) -> float:
    """PSNR in dB of two same-shape arrays (inf when identical)."""
    ref, test = np.asarray(ref, np.float64), np.asarray(test, np.float64)
    if ref.shape != test.shape:
        raise ValueError(f"psnr: shapes differ {ref.shape} vs {test.shape}")
    mse = float(np.mean((ref - test) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(peak**2 / mse)


def _gauss_kernel():
    import torch

    x = torch.arange(-SSIM_RADIUS, SSIM_RADIUS + 1, dtype=torch.float64)
    g = torch.exp(-(x**2) / (2 * SSIM_SIGMA**2))
    return g / g.sum()


def ssim(ref: np.ndarray, test: np.ndarray, peak: float = PEAK) -> float:
    """Mean SSIM of two single-channel images (Gaussian 11x11, sigma 1.5, valid window positions)."""
    import torch
    import torch.nn.functional as F

    ref, test = np.asarray(ref, np.float64), np.asarray(test, np.float64)
    if ref.shape != test.shape or ref.ndim != 2:
        raise ValueError(f"ssim: expected two equal 2-D arrays, got {ref.shape} and {test.shape}")
    if min(ref.shape) < 2 * SSIM_RADIUS + 1:
        raise ValueError(f"ssim: image {ref.shape} smaller than the 11x11 window")
    g = _gauss_kernel()
    gh, gw = g.view(1, 1, -1, 1), g.view(1, 1, 1, -1)

    def blur(t):
        return F.conv2d(F.conv2d(t, gh), gw)

    x = torch.from_numpy(ref)[None, None]
    y = torch.from_numpy(test)[None, None]
    mx, my = blur(x), blur(y)
    vx = blur(x * x) - mx * mx
    vy = blur(y * y) - my * my
    cxy = blur(x * y) - mx * my
    c1, c2 = (K1 * peak) ** 2, (K2 * peak) ** 2
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return float(s.mean())


def sr_scores(hr: np.ndarray, sr: np.ndarray, scale: int) -> dict:
    """PSNR and SSIM of one super-resolved image against its HR original, the literature's way.

    ``hr``: uint8 ``[H, W, 3]``, or ``[H, W, 1]`` / ``[H, W]`` for a grey image; ``sr``: uint8 or float in 0..255
    (quantised to 8 bits here), ``[H, W, 3]`` (a model's output) or grey like ``hr``.

    Colour: Y of both. Grey HR: its own values, against the SR image's own values if grey, else (a model fed the
    grey image as three equal channels returns three nearly equal ones) against :func:`rgb_to_grey` of the
    quantised output — the grey value with the output's Y, equal to the channels' common value where they agree.
    Sources: MATLAB's ``rgb2ycbcr`` is applied only where ``size(img, 3) == 3`` in the evaluation scripts of
    EDSR (limbee/NTIRE2017 demo/evaluation.m at 0177fa4: for a grey target on Set5/Set14/B100/Urban100 it scores
    the target's values against the output's first channel, no rgb2ycbcr) and of RCAN and its followers
    (Evaluate_PSNR_SSIM.m, ``Cal_Y_PSNRSSIM``); BasicSR's and SwinIR's ``calculate_psnr(test_y_channel=True)``
    convert only ``ndim == 3 and shape[2] == 3`` images. But their data loaders read every file in colour (SwinIR
    main_test_swinir.py: ``cv2.imread(path, cv2.IMREAD_COLOR)``; BasicSR ``imfrombytes(flag='color')``; EDSR-PyTorch
    ``set_channel(n_channels=3)`` and ``calc_psnr``'s Y weights on the difference), so the numbers those Python
    scripts print — SwinIR's tables among them — score Set14's grey ``bridge`` on the Y of three equal channels,
    ~1.3 dB above this (about +0.09 dB on the Set14 mean at x2).
    """
    hr, sr = to_uint8(hr), to_uint8(sr)
    hr, sr = (a[..., None] if a.ndim == 2 else a for a in (hr, sr))
    if hr.shape[:2] != sr.shape[:2] or hr.shape[2] not in (1, 3) or sr.shape[2] not in (1, hr.shape[2], 3) \
            or (hr.shape[2] == 3 and sr.shape[2] != 3):
        raise ValueError(f"sr_scores: HR {hr.shape} and SR {sr.shape} do not match (colour HR needs a colour SR)")
    if hr.shape[2] == 1:
        y_hr = hr[..., 0].astype(np.float64)
        y_sr = sr[..., 0].astype(np.float64) if sr.shape[2] == 1 else rgb_to_grey(sr)
    else:
        y_hr, y_sr = rgb_to_y(hr), rgb_to_y(sr)
    y_hr, y_sr = shave(y_hr, scale), shave(y_sr, scale)
    return {"psnr": psnr(y_hr, y_sr), "ssim": ssim(y_hr, y_sr)}
