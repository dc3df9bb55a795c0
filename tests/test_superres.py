"""Super-resolution: metrics against scikit-image, the MATLAB-style bicubic, the prepared form and its split by source
image, the real-dataset parsers on fixtures in the official layouts, the models, the tables, and a training run."""

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from finebench import config as fbconfig
from finebench.data import DATASETS, prepare_task
from finebench.data.superres import SRData, bicubic_upscale, imresize, pil_bicubic, resize_matrix, resize_operator
from finebench.errors import ConfigError, FinebenchError
from finebench.tasks import get
from finebench.tasks.superres import metrics as metrics_sr


def photo(seed=0, h=64, w=80) -> np.ndarray:
    """A smooth colour image with edges (so PSNR/SSIM are in a realistic range), uint8 HWC."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([128 + 100 * np.sin(xx / (5 + c) + yy / (7 + c) + seed) for c in range(3)], axis=2)
    img[h // 3 : h // 2, w // 4 : w // 2] = (20, 200, 90)
    return np.clip(img + rng.normal(0, 4, img.shape), 0, 255).astype(np.uint8)


# --- metrics -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_psnr_and_ssim_match_scikit_image(seed):
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    hr = photo(seed)
    sr = np.clip(hr.astype(int) + np.random.default_rng(seed + 10).integers(-12, 13, hr.shape), 0, 255).astype(np.uint8)
    scale = 2 + seed
    got = metrics_sr.sr_scores(hr, sr, scale)
    y_hr = metrics_sr.rgb_to_y(hr)[scale:-scale, scale:-scale]
    y_sr = metrics_sr.rgb_to_y(sr)[scale:-scale, scale:-scale]
    assert got["psnr"] == pytest.approx(peak_signal_noise_ratio(y_hr, y_sr, data_range=255), abs=1e-9)
    want = structural_similarity(y_hr, y_sr, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                 data_range=255)
    assert got["ssim"] == pytest.approx(want, abs=1e-9)
    assert 20 < got["psnr"] < 40 and 0.3 < got["ssim"] < 1


def test_y_channel_is_bt601_as_rgb2ycbcr():
    from skimage.color import rgb2ycbcr

    img = photo(3)
    assert np.allclose(metrics_sr.rgb_to_y(img), rgb2ycbcr(img / 255.0)[..., 0], atol=1e-9)
    assert metrics_sr.rgb_to_y(np.zeros((2, 2, 3)))[0, 0] == 16
    assert metrics_sr.rgb_to_y(np.full((2, 2, 3), 255))[0, 0] == 235


def test_border_of_scale_pixels_is_not_scored():
    hr = photo(4)
    sr = hr.copy()
    sr[:3] = 0  # damage only the top 3 rows
    assert math.isinf(metrics_sr.sr_scores(hr, sr, 3)["psnr"])
    assert metrics_sr.sr_scores(hr, sr, 2)["psnr"] < 30


def test_sr_output_is_quantised_to_8_bits():
    hr = photo(5)
    assert math.isinf(metrics_sr.sr_scores(hr, hr.astype(float) + 0.4, 2)["psnr"])  # rounds back to hr
    assert metrics_sr.sr_scores(hr, hr.astype(float) + 0.6, 2)["psnr"] < 60


def test_a_grey_image_is_scored_on_its_own_values():
    """A one-channel HR image against a three-channel output (what a model fed it as RGB returns): PSNR on the grey
    values, not on Y = 16 + 0.859 v of three equal channels (1.32 dB higher). The expected numbers are worked out by
    hand below: 16 x 16 image, scale 2 shaves 2 px, so 12 x 12 = 144 pixels are scored."""
    from skimage.metrics import structural_similarity

    hr = (np.arange(256).reshape(16, 16) % 200 + 20).astype(np.uint8)
    sr = np.repeat(hr[..., None], 3, axis=2).astype(np.float64)
    sr[5, 5] += 4  # all three channels: the grey value is off by 4
    sr[8, 3] -= 2  # off by -2
    sr[10, 10, 0] += 3  # red only: the grey value (BT.601 luma, weights 65.481 / 219 = 0.299 ...) is off by 0.897
    sr[0, 0] += 60  # in the shaved border: not scored
    got = metrics_sr.sr_scores(hr, sr, 2)
    # MSE = (4^2 + 2^2 + 0.897^2) / 144 = 20.804609 / 144; PSNR = 10 log10(255^2 / MSE)
    assert got["psnr"] == pytest.approx(56.53283294849964, abs=1e-9)
    assert got["psnr"] == pytest.approx(10 * math.log10(255**2 * 144 / (4**2 + 2**2 + 0.897**2)), abs=1e-9)
    # the old way (Y of three equal channels) would be 20 log10(255 / 219) = 1.3219 dB higher
    y_way = metrics_sr.psnr(metrics_sr.rgb_to_y(np.repeat(hr[..., None], 3, 2))[2:-2, 2:-2],
                            metrics_sr.rgb_to_y(sr)[2:-2, 2:-2])
    assert y_way - got["psnr"] == pytest.approx(1.3219213118767368, abs=1e-6)
    grey_sr = hr.astype(np.float64)
    grey_sr[5, 5] += 4
    grey_sr[8, 3] -= 2
    grey_sr[10, 10] += 0.897
    want = structural_similarity(hr[2:-2, 2:-2].astype(float), grey_sr[2:-2, 2:-2], gaussian_weights=True, sigma=1.5,
                                 use_sample_covariance=False, data_range=255)
    assert got["ssim"] == pytest.approx(want, abs=1e-9)
    # a grey output (one channel, e.g. the bicubic baseline of a grey LR): (4^2 + 2^2) / 144
    one = metrics_sr.sr_scores(hr[..., None], np.round(grey_sr)[..., None], 2)  # 0.897 rounds to 1: three errors
    assert one["psnr"] == pytest.approx(10 * math.log10(255**2 * 144 / (16 + 4 + 1)), abs=1e-9)
    assert math.isinf(metrics_sr.sr_scores(hr, np.repeat(hr[..., None], 3, 2), 2)["psnr"])  # equal channels: exact
    with pytest.raises(ValueError, match="colour HR needs a colour SR"):
        metrics_sr.sr_scores(photo(0, 16, 16), hr[..., None], 2)


# --- bicubic ------------------------------------------------------------------------------------------------------


def test_imresize_reproduces_a_linear_ramp_and_a_constant():
    ramp = np.tile(np.arange(40, dtype=float), (8, 1))
    down = imresize(ramp, 0.5, as_uint8=False)
    # output pixel i samples the input at 2i + 0.5 (0-based); a cubic kernel reproduces linear functions exactly
    assert np.allclose(down[:, 2:-2], 2 * np.arange(20)[2:-2] + 0.5)
    assert np.all(imresize(np.full((9, 12, 3), 77, np.uint8), 1 / 3) == 77)
    assert imresize(photo(), 0.5).shape == (32, 40, 3) and imresize(photo(), 3).shape == (192, 240, 3)


def test_imresize_equals_antialiased_bicubic_inside_the_border():
    """Away from the borders, MATLAB's imresize and torch's antialiased bicubic (the same a = -0.5 kernel, stretched
    by the scale) agree to float precision; at the borders MATLAB mirrors, torch renormalises."""
    import torch
    import torch.nn.functional as F

    img = photo(6).astype(np.float64)
    ours = imresize(img, 0.5, as_uint8=False)
    t = torch.from_numpy(img).permute(2, 0, 1)[None]
    theirs = F.interpolate(t, scale_factor=0.5, mode="bicubic", antialias=True,
                           align_corners=False)[0].permute(1, 2, 0).numpy()
    assert np.allclose(ours[3:-3, 3:-3], theirs[3:-3, 3:-3], atol=1e-6)
    assert np.abs(ours - theirs).max() > 1e-3  # the borders differ


def dense_imresize(img, scale, as_uint8=True):
    """The dense implementation imresize had before it went sparse (kept here as the reference): the same resize
    matrices, applied by einsum (a BLAS GEMM)."""
    a = np.asarray(img, dtype=np.float64)
    h, w = a.shape[:2]
    size = (int(np.ceil(h * scale)), int(np.ceil(w * scale)))
    mh, mw = dense_resize_matrix(h, size[0], scale), dense_resize_matrix(w, size[1], scale)
    out = np.einsum("oh,hwc->owc", mh, a.reshape(h, w, -1), optimize=True)
    out = np.einsum("pw,owc->opc", mw, out, optimize=True).reshape(size + a.shape[2:])
    return np.clip(np.floor(out + 0.5), 0, 255).astype(np.uint8) if as_uint8 else out


def dense_resize_matrix(in_len, out_len, scale):
    """resize_matrix as it was written before the change (copied, so that the reference cannot drift with it)."""
    def cubic(x):
        ax = np.abs(x)
        return ((1.5 * ax**3 - 2.5 * ax**2 + 1) * (ax <= 1)
                + (-0.5 * ax**3 + 2.5 * ax**2 - 4 * ax + 2) * ((ax > 1) & (ax <= 2)))

    width = 4.0
    antialias = scale < 1
    if antialias:
        width /= scale
    u = np.arange(1, out_len + 1, dtype=np.float64) / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(u - width / 2)
    taps = int(np.ceil(width)) + 2
    idx = left[:, None] + np.arange(taps)[None, :]
    dist = u[:, None] - idx
    wts = scale * cubic(dist * scale) if antialias else cubic(dist)
    wts /= wts.sum(1, keepdims=True)
    mirror = np.concatenate([np.arange(in_len), np.arange(in_len - 1, -1, -1)])
    src = mirror[np.mod(idx - 1, 2 * in_len).astype(np.int64)]
    m = np.zeros((out_len, in_len))
    np.add.at(m, (np.repeat(np.arange(out_len), taps), src.ravel()), wts.ravel())
    return m


@pytest.mark.parametrize("in_len,out_len,scale", [(2040, 1020, 0.5), (1356, 452, 1 / 3), (2040, 510, 0.25),
                                                  (339, 1356, 4), (452, 1356, 3), (5, 10, 2), (3, 1, 1 / 3),
                                                  (7, 2, 0.25), (2, 8, 4), (10, 7, 0.7), (6, 13, 13 / 6)])
def test_sparse_resize_weights_are_the_dense_ones_to_the_bit(in_len, out_len, scale):
    dense = dense_resize_matrix(in_len, out_len, scale)
    assert np.array_equal(resize_matrix(in_len, out_len, scale), dense)
    op = resize_operator(in_len, out_len, scale)
    assert op.has_sorted_indices and np.array_equal(op.toarray(), dense)  # tiny sizes: taps mirror several times


def realistic_images():
    import skimage.data

    rng = np.random.default_rng(42)
    yield "astronaut", skimage.data.astronaut()[:300, :420]
    yield "camera (grey)", skimage.data.camera()[:252, :300, None]
    yield "coffee", skimage.data.coffee()[:204, :300]
    yield "chelsea", skimage.data.chelsea()[:241, :310]  # odd sizes
    yield "photo", photo(8, 96, 132)
    yield "noise", rng.integers(0, 256, (120, 144, 3), dtype=np.uint8)
    yield "saturated", np.where(rng.random((96, 120, 3)) < 0.5, 0, 255).astype(np.uint8)  # clipping at 0 and 255
    yield "ramp", np.tile(np.arange(96, dtype=np.uint8)[None, :, None] * 2, (60, 1, 3))


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_sparse_imresize_equals_the_dense_one(scale):
    """The sparse product sums each output's taps in input order; the dense GEMM it replaced (OpenBLAS: fused
    multiply-adds in blocks) rounds differently. At scales 2 and 4 the weights are dyadic and every product and sum is
    exact, so the float64 values agree to the bit; at scale 3 they differ at ~1e-13, and the uint8 results — what is
    stored and scored — agree everywhere (the exact values lie >= 1/13122 away from any x.5)."""
    for name, img in realistic_images():
        for factor, src in ((1 / scale, img), (scale, dense_imresize(img, 1 / scale))):  # down, then the LR back up
            new, old = imresize(src, factor, as_uint8=False), dense_imresize(src, factor, as_uint8=False)
            assert new.shape == old.shape, name
            if scale in (2, 4):
                assert np.array_equal(new, old), (name, factor)
            else:
                assert np.abs(new - old).max() < 1e-11, (name, factor)
            assert np.array_equal(imresize(src, factor), dense_imresize(src, factor)), (name, factor)


def test_pil_bicubic_differs_slightly_from_matlab():
    img = photo(7)
    ours, pil = imresize(img, 0.5).astype(int), pil_bicubic(img, (32, 40)).astype(int)
    assert np.abs(ours - pil)[3:-3, 3:-3].max() <= 2 and (ours != pil).any()


# --- prepared form and split -------------------------------------------------------------------------------------


def prepare(tmp_path, dataset="skimage_photos", **options):
    opts = {**DATASETS[dataset].defaults, **options}
    return prepare_task("sr", dataset, opts, tmp_path / "prepared"), tmp_path / "prepared"


@pytest.fixture(scope="module")
def tiny_photos(tmp_path_factory):
    return prepare(tmp_path_factory.mktemp("photos"), train_images=["astronaut", "coffee", "rocket"],
                   val_images=["chelsea"], test_images=["camera", "motorcycle_left"], max_side=64, patch_size=8,
                   patches_per_epoch=32, example_crop=16)


def test_split_by_source_image_and_lr_is_matlab_bicubic(tiny_photos):
    manifest, path = tiny_photos
    assert manifest["task_type"] == "superres" and manifest["input"]["scale"] == 2
    names = {s: set(manifest["splits"][s]["images"]) for s in ("train", "val", "test")}
    assert names["train"] == {"astronaut", "coffee", "rocket"} and names["test"] == {"camera", "motorcycle_left"}
    assert (not (names["train"] & names["test"]) and not (names["train"] & names["val"])
            and not (names["val"] & names["test"]))
    data = SRData(path)
    import skimage.data

    for i in range(data.count("test")):
        lr, hr = data.pair("test", i)
        assert hr.shape[0] % 2 == 0 and lr.shape[:2] == (hr.shape[0] // 2, hr.shape[1] // 2)
        assert np.array_equal(lr, imresize(hr, 0.5))
    lr, hr = data.pair("test", data.names("test").index("camera"))
    assert hr.shape == (512, 512, 1) and lr.shape == (256, 256, 1)  # the grey cameraman stays grey
    assert np.array_equal(hr[..., 0], skimage.data.camera())  # test images are whole
    assert manifest["superres"]["splits"]["test"]["grey_images"] == ["camera"]
    lr, hr = data.pair("train", data.names("train").index("astronaut"))
    full = skimage.data.astronaut()
    top, left = (full.shape[0] - 64) // 2, (full.shape[1] - 64) // 2  # training images: centre crop to max_side
    assert np.array_equal(hr, full[top : top + 64, left : left + 64])


def test_bicubic_baseline_is_scored_on_the_test_images(tiny_photos):
    manifest, path = tiny_photos
    data = SRData(path)
    per = [metrics_sr.sr_scores(hr, bicubic_upscale(lr, 2), 2) for lr, hr in (data.pair("test", i) for i in range(2))]
    assert manifest["baseline"]["bicubic"]["test"]["psnr"] == pytest.approx(np.mean([p["psnr"] for p in per]))
    assert manifest["baseline"]["bicubic"]["test"]["ssim"] == pytest.approx(np.mean([p["ssim"] for p in per]))
    # the grey cameraman: bicubic of its grey LR, against its own grey values (here by hand: MSE over the unshaved part)
    lr, hr = data.pair("test", data.names("test").index("camera"))
    err = hr[2:-2, 2:-2, 0].astype(float) - bicubic_upscale(lr, 2)[2:-2, 2:-2, 0]
    camera = manifest["baseline"]["bicubic_per_image_test"][data.names("test").index("camera")]
    assert camera["psnr"] == pytest.approx(10 * math.log10(255**2 / np.mean(err**2)), abs=1e-9)


def test_training_patches_are_aligned_pairs_from_training_images(tiny_photos):
    _, path = tiny_photos
    data = SRData(path)
    lr, hr = data.patches(64, np.random.default_rng(0))
    assert lr.shape == (64, 3, 8, 8) and hr.shape == (64, 3, 16, 16) and lr.dtype == np.uint8
    # LR = MATLAB-bicubic of the whole HR image; away from the patch border it equals the bicubic of the HR patch,
    # which holds only if the pair is aligned and shares its flip/rotation
    for a, b in zip(lr, hr):
        down = imresize(b.transpose(1, 2, 0), 0.5)
        assert np.array_equal(down[2:-2, 2:-2], a.transpose(1, 2, 0)[2:-2, 2:-2])
    shifted = imresize(np.roll(hr[0].transpose(1, 2, 0), 1, axis=0), 0.5)
    assert not np.array_equal(shifted[2:-2, 2:-2], lr[0].transpose(1, 2, 0)[2:-2, 2:-2])
    again = data.patches(64, np.random.default_rng(0))
    assert np.array_equal(again[0], lr) and np.array_equal(again[1], hr)  # seeded


def test_an_image_in_two_splits_is_refused(tmp_path):
    with pytest.raises(FinebenchError, match="in both"):
        prepare(tmp_path, train_images=["astronaut", "coffee"], val_images=["chelsea"], test_images=["coffee"],
                max_side=48, patch_size=8)


def test_unknown_sample_image_names_the_option(tmp_path):
    with pytest.raises(FinebenchError, match="test_images: 'camera_man'"):
        prepare(tmp_path, test_images=["camera_man"])


# --- real datasets: fixtures in the official layouts ------------------------------------------------------------


def write_png(path: Path, img: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(path)


def test_sr_benchmark_reads_div2k_and_a_test_set_with_official_lr(tmp_path, capsys):
    root = tmp_path / "root"
    for i in range(1, 4):
        write_png(root / "DIV2K_train_HR" / f"{i:04d}.png", photo(i, 48, 64))
    for i in (801, 802):
        write_png(root / "DIV2K_valid_HR" / f"{i:04d}.png", photo(i, 40, 40))
    for name in ("baby", "bird"):
        hr = photo(len(name), 41, 51)  # odd sizes: modcrop to 40 x 50
        write_png(root / "benchmark" / "Set5" / "HR" / f"{name}.png", hr)
        official = np.full((20, 25, 3), 7, np.uint8) if name == "baby" else imresize(hr[:40, :50], 0.5)
        write_png(root / "benchmark" / "Set5" / "LR_bicubic" / "X2" / f"{name}x2.png", official)
    manifest, path = prepare(tmp_path, "sr_benchmark", root=str(root), test_set="set5", val_images=1,
                             patch_size=8, patches_per_epoch=16, example_crop=16)
    assert [manifest["splits"][s]["n"] for s in ("train", "val", "test")] == [3, 1, 2]
    assert manifest["splits"]["test"]["images"] == ["Set5/baby", "Set5/bird"]
    assert manifest["splits"]["test"]["official_lr"] == 2
    lr, hr = SRData(path).pair("test", 0)
    assert hr.shape == (40, 50, 3) and (lr == 7).all()  # the official LR file is used as is
    # a partial copy: one warning naming each count (the classification datasets' check, registry.check_official)
    err = capsys.readouterr().err
    assert (f"[finebench] WARNING sr_benchmark: the files at {root} differ from the official release: "
            f"DIV2K_train_HR 3 (official 800), DIV2K_valid_HR 2 (official 100), Set5 2 (official 5) — a partial or "
            f"modified copy?") in err
    assert err.count("WARNING") == 1 and "Traceback" not in err
    assert manifest["source"]["official_counts"] == {
        "expected": {"DIV2K_train_HR": 800, "DIV2K_valid_HR": 100, "Set5": 5},
        "found": {"DIV2K_train_HR": 3, "DIV2K_valid_HR": 2, "Set5": 2}, "match": False}
    assert manifest["source"]["train"] == "DIV2K train: 3 of the 3 images found"
    from finebench.protocol import run_protocol

    assert manifest["official_counts"] == manifest["source"]["official_counts"]
    assert run_protocol(manifest, {"arch": "edsr", "model_kwargs": {}})["counts_match"] is False  # shown in the tables


def test_sr_benchmark_complete_counts_give_no_warning_and_grey_images_stay_grey(tmp_path, capsys):
    """800 / 100 DIV2K files and a 14-image Set14 (only the images used need be real: the others are counted, never
    read). Set14's bridge is grey, as in EDSR's benchmark archive: stored with one channel, its official grey LR used,
    its bicubic baseline scored on its own values."""
    root = tmp_path / "root"
    for folder, first, n in (("DIV2K_train_HR", 1, 800), ("DIV2K_valid_HR", 801, 100)):
        (root / folder).mkdir(parents=True)
        for i in range(first, first + n):
            (root / folder / f"{i:04d}.png").touch()
    for i in (1, 2, 801):
        write_png(root / ("DIV2K_train_HR" if i < 801 else "DIV2K_valid_HR") / f"{i:04d}.png", photo(i, 40, 48))
    names = ["baboon", "barbara", "bridge", "coastguard", "comic", "face", "flowers", "foreman", "lenna", "man",
             "monarch", "pepper", "ppt3", "zebra"]
    for k, name in enumerate(names):
        hr = photo(k, 36, 44)
        if name == "bridge":
            hr = hr[..., 1]  # grey: a one-channel PNG (mode L)
        write_png(root / "benchmark" / "Set14" / "HR" / f"{name}.png", hr)
        write_png(root / "benchmark" / "Set14" / "LR_bicubic" / "X2" / f"{name}x2.png", imresize(hr, 0.5))
    manifest, path = prepare(tmp_path, "sr_benchmark", root=str(root), test_set="set14", train_images=2,
                             val_images=1, patch_size=8, patches_per_epoch=16, example_crop=16)
    err = capsys.readouterr().err
    assert "WARNING" not in err and "1 grey image(s) kept grey (one channel): Set14/bridge" in err
    assert manifest["source"]["official_counts"]["match"] is True
    assert manifest["source"]["official_counts"]["found"] == {"DIV2K_train_HR": 800, "DIV2K_valid_HR": 100, "Set14": 14}
    assert manifest["splits"]["test"]["official_lr"] == 14
    assert manifest["splits"]["test"]["grey_images"] == ["Set14/bridge"]
    data = SRData(path)
    i = data.names("test").index("Set14/bridge")
    lr, hr = data.pair("test", i)
    assert hr.shape == (36, 44, 1) and lr.shape == (18, 22, 1)
    err = hr[2:-2, 2:-2, 0].astype(float) - bicubic_upscale(lr, 2)[2:-2, 2:-2, 0]
    assert manifest["baseline"]["bicubic_per_image_test"][i]["psnr"] == pytest.approx(
        10 * math.log10(255**2 / np.mean(err**2)), abs=1e-9)
    lr_batch, hr_batch = data.patches(64, np.random.default_rng(0))
    assert lr_batch.shape == (64, 3, 8, 8) and hr_batch.shape == (64, 3, 16, 16)


def test_sr_benchmark_names_what_is_missing(tmp_path):
    (tmp_path / "root" / "DIV2K_train_HR").mkdir(parents=True)
    write_png(tmp_path / "root" / "DIV2K_train_HR" / "0001.png", photo(1, 32, 32))
    with pytest.raises(FinebenchError, match="DIV2K_valid_HR: missing"):
        prepare(tmp_path, "sr_benchmark", root=str(tmp_path / "root"))
    with pytest.raises(FinebenchError, match="test_set: unknown 'set6'"):
        prepare(tmp_path, "sr_benchmark", root=str(tmp_path / "root"), test_set="set6")


def benchmark_root(root: Path, sets=("Set5", "Set14"), grey=()) -> Path:
    """DIV2K train/valid and the given benchmark sets (two images each, official x2 LR) in EDSR's layout; the image
    names in ``grey`` (e.g. ``set14_b``) are written as one-channel PNGs."""
    for i in range(1, 4):
        write_png(root / "DIV2K_train_HR" / f"{i:04d}.png", photo(i, 48, 64))
    for i in (801, 802):
        write_png(root / "DIV2K_valid_HR" / f"{i:04d}.png", photo(i, 40, 40))
    for k, folder in enumerate(sets):
        for j, name in enumerate(("a", "b")):
            hr = photo(10 * k + j, 36 + 4 * k, 44)
            if f"{folder.lower()}_{name}" in grey:
                hr = hr[..., 0]
            write_png(root / "benchmark" / folder / "HR" / f"{folder.lower()}_{name}.png", hr)
            write_png(root / "benchmark" / folder / "LR_bicubic" / "X2" / f"{folder.lower()}_{name}x2.png",
                      imresize(hr, 0.5))
    return root


def test_one_training_is_scored_on_several_test_sets(tmp_path, experiment_file):
    """test_set: [set14, set5] — one DIV2K training, both sets scored (Set14 is the test split; Set5 a further
    one), each with its own bicubic baseline, per-image rows, MLflow metrics and leaderboard."""
    from mlflow.tracking import MlflowClient

    from finebench.report import aggregate
    from finebench.train import fit

    root = benchmark_root(tmp_path / "root", grey=("set14_b",))
    manifest, path = prepare(tmp_path, "sr_benchmark", root=str(root), test_set=["set14", "set5"], val_images=1,
                             patch_size=8, patches_per_epoch=16, example_crop=16)
    assert manifest["more_tests"] == {"set5": "test_set5"} and manifest["source"]["test_sets"] == ["set14", "set5"]
    assert manifest["splits"]["test"]["images"] == ["Set14/set14_a", "Set14/set14_b"]
    assert manifest["superres"]["splits"]["test_set5"]["images"] == ["Set5/set5_a", "Set5/set5_b"]
    assert manifest["superres"]["splits"]["test_set5"]["official_lr"] == 2
    data = SRData(path)
    per = [metrics_sr.sr_scores(hr, bicubic_upscale(lr, 2), 2)
           for lr, hr in (data.pair("test_set5", i) for i in range(2))]
    assert manifest["baseline"]["bicubic"]["test_set5"]["psnr"] == pytest.approx(np.mean([p["psnr"] for p in per]))
    assert manifest["baseline"]["bicubic"]["test"]["psnr"] != manifest["baseline"]["bicubic"]["test_set5"]["psnr"]

    spec = {"task": "div2k", "dataset": "sr_benchmark", "modality": "vision", "model": "edsr", "family": "cnn",
            "arch": "edsr", "model_kwargs": {"channels": 8, "blocks": 1}, "seed": 0,
            "training": {**fbconfig.TRAINING_DEFAULTS, "epochs": 1, "batch_size": 8, "weight_decay": 0.0}}
    out = tmp_path / "runs" / "div2k" / "edsr" / "seed0"
    result = fit(spec, path, out, experiment_file, device="cpu")
    five = result["more_tests"]["set5"]
    assert result["sr_test_set"] == "set14" and result["n_test"] == 2 and five["n_test"] == 2
    assert five["bicubic_psnr"] == pytest.approx(manifest["baseline"]["bicubic"]["test_set5"]["psnr"])
    assert 15 < five["test_psnr"] < 60 and five["test_psnr"] != result["test_psnr"]
    rows = pd.read_csv(out / "per_image.csv")
    assert list(rows["test_set"]) == ["set14", "set14", "set5", "set5"]
    assert rows[rows.test_set == "set5"]["psnr"].mean() == pytest.approx(five["test_psnr"])
    assert rows[rows.test_set == "set14"]["psnr"].mean() == pytest.approx(result["test_psnr"])
    # the grey set14_b, scored on its own values: an (almost) untrained EDSR is bicubic plus a little, within ~1 dB
    grey = rows[rows.image == "Set14/set14_b"].iloc[0]
    assert abs(grey["psnr"] - grey["bicubic_psnr"]) < 1
    logged = MlflowClient(json.loads(experiment_file.read_text())["tracking_uri"]).get_run(result["mlflow_run_id"])
    assert logged.data.metrics["set5.test_psnr"] == pytest.approx(five["test_psnr"])

    refs = tmp_path / "refs.yaml"
    refs.write_text("references:\n  - {task_type: superres, dataset: Set5, scale: 2, model: EDSR, family: cnn, "
                    "psnr: 38.11, ssim: 0.9601, source: Lim et al. 2017}\n")
    second = {**result, "seed": 1, "test_psnr": result["test_psnr"] + 0.1,
              "more_tests": {"set5": {**five, "test_psnr": five["test_psnr"] + 0.2}}}
    shutil.copytree(out, out.parent / "seed1")
    (out.parent / "seed1" / "metrics.json").write_text(json.dumps(second))
    shifted = rows.assign(psnr=rows["psnr"] + rows["test_set"].map({"set14": 0.1, "set5": 0.2}))
    shifted.to_csv(out.parent / "seed1" / "per_image.csv", index=False)  # per-image PSNRs that average to seed 1's
    aggregate(sorted((tmp_path / "runs").glob("*/*/seed*/metrics.json")), tmp_path / "tables", tmp_path / "plots",
              references=refs)
    # plots stay one set per task (its first: Set14), under the task's own name, as the workflow declares them
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == \
        ["div2k_learning_curves.png", "div2k_pareto.png", "div2k_sr_examples.png"]
    board = pd.read_csv(tmp_path / "tables" / "leaderboard_sr.csv").set_index(["task", "model"])
    assert sorted(set(board.index.get_level_values(0))) == ["div2k@set14", "div2k@set5"]
    assert board.loc[("div2k@set5", "edsr"), "test_psnr_mean"] == pytest.approx(five["test_psnr"] + 0.1)
    assert board.loc[("div2k@set14", "edsr"), "test_psnr_mean"] == pytest.approx(result["test_psnr"] + 0.05)
    assert board.loc[("div2k@set5", "bicubic"), "test_psnr_mean"] == pytest.approx(five["bicubic_psnr"])
    assert board.loc[("div2k@set5", "edsr"), "n_seeds"] == 2
    # the interval over seeds and test images read each set's own rows of per_image.csv
    for task in ("div2k@set14", "div2k@set5"):
        assert pd.isna(board.loc[(task, "edsr"), "stats_note"]) and board.loc[(task, "edsr"), "test_psnr_ci95_comb"] > 0
    md = (tmp_path / "tables" / "references.md").read_text()
    cells = [[c.strip() for c in line.split("|")[1:6]] for line in md.splitlines() if line.startswith("| div2k")]
    assert cells == [["div2k@set5", "Set5", "×2", "EDSR", "38.11"]]  # the published Set5 figure, on the Set5 rows only
    assert "## div2k@set5 (super-resolution ×2, 2 test images" in (tmp_path / "tables" / "leaderboard.md").read_text()

    from finebench.tracking import log_summaries

    ids = log_summaries(experiment_file, tmp_path / "tables", tmp_path / "plots",
                        tmp_path / "summary.json")["summary_runs"]
    client = MlflowClient(json.loads(experiment_file.read_text())["tracking_uri"])
    plotted = {task: sorted(f.path for f in client.list_artifacts(rid, "plots")) for task, rid in ids.items()}
    assert plotted == {"div2k@set14": ["plots/div2k_learning_curves.png", "plots/div2k_pareto.png",
                                       "plots/div2k_sr_examples.png"], "div2k@set5": []}  # drawn for the first set


def test_an_unknown_or_repeated_test_set_fails_the_config_check():
    cfg = {"experiment": "x", "seeds": [0], "models": {"sr": {"modality": "vision", "arch": "edsr"}},
           "tasks": {"div2k": {"dataset": "sr_benchmark", "root": "/", "test_set": ["set5", "set6"]}}}
    with pytest.raises(ConfigError,
                       match=r"tasks.div2k.test_set: unknown 'set6'; valid: set5, set14, bsd100, urban100"):
        fbconfig.check(cfg)
    cfg["tasks"]["div2k"]["test_set"] = ["Set5", "set5"]
    with pytest.raises(ConfigError, match=r"tasks.div2k.test_set: .* give one or more different test sets"):
        fbconfig.check(cfg)
    cfg["tasks"]["div2k"]["test_set"] = None
    with pytest.raises(ConfigError, match=r"tasks.div2k.test_set: None — give a test set's name or a list of names"):
        fbconfig.check(cfg)
    cfg["tasks"]["div2k"]["test_set"] = ["Set14", "urban100"]
    fbconfig.check(cfg)
    # one canonical form, so that equivalent spellings never prepare DIV2K again (the options are the prepare params)
    assert fbconfig.task_options(cfg, "div2k")["test_set"] == ["set14", "urban100"]
    for same in ("Set5", "set5", ["SET5"]):
        cfg["tasks"]["div2k"]["test_set"] = same
        assert fbconfig.task_options(cfg, "div2k")["test_set"] == "set5"


def test_hr_folder_carves_val_and_test_by_image(tmp_path):
    for i in range(10):
        write_png(tmp_path / "mine" / f"img{i}.png", photo(i, 36, 44))
    manifest, _ = prepare(tmp_path, "hr_folder", root=str(tmp_path / "mine"), patch_size=8, example_crop=16)
    sets = {s: set(manifest["splits"][s]["images"]) for s in ("train", "val", "test")}
    assert [len(sets[s]) for s in ("train", "val", "test")] == [7, 1, 2]
    assert set.union(*sets.values()) == {f"img{i}.png" for i in range(10)} and sum(map(len, sets.values())) == 10
    assert manifest["carved_splits"]["test"]["n"] == 2


# --- models and config ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("arch,kw", [("edsr", {"channels": 8, "blocks": 1}),
                                     ("convgru_sr", {"channels": 8, "steps": 2}),
                                     ("convgru_sr", {"channels": 8, "steps": 2, "ensemble": True}),
                                     ("swinir_lite", {"dim": 8, "groups": 1, "depth": 2, "heads": 2, "window": 4})])
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_models_upscale_any_size_and_start_at_bicubic(arch, kw, scale):
    import torch
    import torch.nn.functional as F

    from finebench.models import build_model

    torch.manual_seed(0)
    model = build_model(arch, kw, {"kind": "superres", "scale": scale}, 0)
    x = torch.rand(2, 3, 13, 17)
    out = model(x)
    assert out.shape == (2, 3, 13 * scale, 17 * scale)
    assert torch.allclose(out, F.interpolate(x, scale_factor=scale, mode="bicubic", align_corners=False), atol=1e-6)
    out.mean().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def sr_config(**models):
    return {"experiment": "x", "seeds": [0], "tasks": {"photos": {"dataset": "skimage_photos"},
                                                         "fonts": {"dataset": "typefaces"}},
            "models": {"cnn": {"family": "cnn", "modality": "vision", "arch": "small_cnn"},
                       "sr": {"modality": "vision", "arch": "edsr"}, **models}}


def test_sr_models_run_on_sr_tasks_only():
    cfg = sr_config()
    fbconfig.check(cfg)
    assert fbconfig.task_models(cfg, "photos") == ["sr"] and fbconfig.task_models(cfg, "fonts") == ["cnn"]
    assert fbconfig.resolve_spec(cfg, "photos", "sr", 0)["family"] == "cnn"
    with pytest.raises(ConfigError, match="models.bad.tasks: task 'photos' is a superres task, but 'small_cnn'"):
        fbconfig.check(sr_config(bad={"family": "cnn", "modality": "vision", "arch": "small_cnn", "tasks": ["photos"]}))


# --- tables -------------------------------------------------------------------------------------------------------


def sr_runs(psnr: dict[str, list[float]], bicubic=30.0, task="photos"):
    fam = {"a": "cnn", "b": "rnn", "c": "transformer"}
    return [{"task": task, "dataset": "skimage_photos", "modality": "vision", "model": m, "family": fam[m],
             "arch": f"arch_{m}", "seed": s, "task_type": "superres", "scale": 2, "test_psnr": v,
             "test_ssim": 0.9 + v / 1000, "bicubic_psnr": bicubic, "bicubic_ssim": 0.88, "bicubic_val_psnr": 31.0,
             "n_test": 2, "n_params": 1000, "train_seconds": 10.0, "flops_per_sample": 4096.0 * 4 * 100,
             "cost_output_pixels": 128 * 128, "latency_ms_batch1": 2.0, "peak_memory_mb": 100.0, "status": "FINISHED"}
            for m, values in psnr.items() for s, v in enumerate(values)]


def cls_runs():
    return [{"task": "fonts", "dataset": "typefaces", "modality": "vision", "model": m, "family": f, "arch": m,
             "seed": s, "test_accuracy": acc + s / 100, "test_mean_class_accuracy": acc, "test_macro_f1": acc,
             "test_top5": 1.0, "n_params": 10, "train_seconds": 1.0, "train_samples_per_s": 5.0, "chance_accuracy": 0.1,
             "majority_accuracy": 0.1, "flops_per_sample": 100.0, "latency_ms_batch1": 1.0, "status": "FINISHED",
             "protocol": {"pretraining": "none"}, "data_note": ""}
            for m, f, acc in (("cnn", "cnn", 0.8), ("rnn", "rnn", 0.7)) for s in range(3)]


def write_runs(root: Path, rows: list[dict]) -> list[Path]:
    files = []
    for r in rows:
        p = root / r["task"] / r["model"] / f"seed{r['seed']}" / "metrics.json"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(r))
        files.append(p)
    return files


def test_sr_leaderboard_ranks_by_psnr_and_says_who_is_not_above_bicubic():
    from finebench import report
    from finebench.tasks.superres import tables as sr_tables

    runs = pd.DataFrame(sr_runs({"a": [31.0, 31.2, 31.1], "b": [30.5, 29.0, 31.9], "c": [29.0, 29.2, 28.9]}))
    board = report.leaderboard(runs, "superres").set_index("model")
    assert list(board.index) == ["a", "b", "c", "bicubic"]
    assert board.loc["a", "rank"] == 1 and board.loc["a", "is_best"] and board.loc["c", "rank"] == 3
    assert (board.loc["a", "above_bicubic"] and not board.loc["b", "above_bicubic"]
            and not board.loc["c", "above_bicubic"])
    assert board.loc["a", "gain_db_vs_bicubic"] == pytest.approx(1.1)
    assert board.loc["bicubic", "test_psnr_mean"] == 30.0 and board.loc["bicubic", "is_baseline"]
    assert board.loc["a", "flops_per_output_pixel"] == pytest.approx(100.0)
    md = get("superres").table_code.leaderboard_markdown(report.leaderboard(runs, "superres"))
    assert "Not above the bicubic baseline" in md and "b (rnn" in md and "c (transformer" in md
    page = get("superres").table_code.leaderboard_html(report.leaderboard(runs, "superres"))
    cost = page.split("<h3>Cost</h3>")[1]  # every type's HTML carries its cost table, baselines left out
    assert "FLOPs/px" in cost and "bicubic" not in cost and "<td><b>31.10" in page
    fam = report.families(report.leaderboard(runs, "superres"), "superres")
    ranks = sr_tables.family_ranks(report.with_family_rank(fam, "superres")).set_index("family")
    assert ranks.loc["cnn", "mean_family_rank"] == 1 and ranks.loc["transformer", "mean_family_rank"] == 3


def test_classification_tables_are_unchanged_by_an_sr_task(tmp_path):
    from finebench.report import aggregate

    only = write_runs(tmp_path / "a", cls_runs())
    aggregate(only, tmp_path / "t1")
    both = write_runs(tmp_path / "b", cls_runs() + sr_runs({"a": [31, 31.5], "b": [30.5, 30.7], "c": [30.2, 30.9]}))
    out = aggregate(both, tmp_path / "t2")
    for name in ("leaderboard.csv", "families.csv", "model_ranks.csv", "family_ranks.csv"):
        assert (tmp_path / "t1" / name).read_text() == (tmp_path / "t2" / name).read_text(), name
    for name in ("leaderboard.md", "families.md", "ranks.md", "costs.md"):
        first = (tmp_path / "t1" / name).read_text()
        second = (tmp_path / "t2" / name).read_text()
        assert second.startswith(first) and "uper-resolution" in second[len(first):], name
    sr = pd.read_csv(tmp_path / "t2" / "leaderboard_sr.csv")
    assert set(sr["model"]) == {"a", "b", "c", "bicubic"} and len(out["runs"]) == 12
    assert len(pd.read_csv(tmp_path / "t2" / "runs.csv")) == 12
    empty = pd.read_csv(tmp_path / "t1" / "leaderboard_sr.csv")
    assert empty.empty and "test_psnr_mean" in empty.columns


def test_sr_only_run_writes_every_table(tmp_path):
    from finebench.report import aggregate

    files = write_runs(tmp_path / "r", sr_runs({"a": [31, 31.5], "b": [30.5, 30.7], "c": [30.2, 30.9]}))
    aggregate(files, tmp_path / "t")
    assert "No classification task" in (tmp_path / "t" / "leaderboard.md").read_text()
    assert "# Super-resolution" in (tmp_path / "t" / "leaderboard.md").read_text()
    assert pd.read_csv(tmp_path / "t" / "leaderboard.csv").empty


# --- training end to end ------------------------------------------------------------------------------------------


def test_training_run_beats_nothing_it_should_not_and_writes_sr_artifacts(tiny_photos, tmp_path, experiment_file):
    from finebench.train import fit

    _, path = tiny_photos
    spec = {"task": "sr", "dataset": "skimage_photos", "modality": "vision", "model": "edsr", "family": "cnn",
            "arch": "edsr", "model_kwargs": {"channels": 8, "blocks": 1}, "seed": 0,
            "training": {**fbconfig.TRAINING_DEFAULTS, "epochs": 2, "batch_size": 8, "weight_decay": 0.0}}
    out = tmp_path / "run"
    result = fit(spec, path, out, experiment_file, device="cpu")
    assert result["task_type"] == "superres" and result["scale"] == 2 and result["n_test"] == 2
    assert 15 < result["test_psnr"] < 60 and 0 < result["test_ssim"] <= 1
    assert result["bicubic_psnr"] == pytest.approx(json.loads((path / "manifest.json").read_text())
                                                   ["baseline"]["bicubic"]["test"]["psnr"])
    assert result["best_val_psnr"] > 0 and result["flops_per_sample"] > 0 and result["cost_lr_size"] == [64, 64]
    hist = pd.read_csv(out / "history.csv")
    assert list(hist["epoch"]) == [1, 2] and {"val_psnr", "val_ssim", "train_loss"} <= set(hist.columns)
    per = pd.read_csv(out / "per_image.csv")
    assert list(per["image"]) == ["camera", "motorcycle_left"]
    assert np.mean(per["psnr"]) == pytest.approx(result["test_psnr"])
    ex = np.load(out / "examples.npz")
    assert ex["hr"].shape == (16, 16, 3) and ex["lr"].shape == (8, 8, 3) and ex["sr"].shape == (16, 16, 3)
    again = fit(spec, path, tmp_path / "run2", experiment_file, device="cpu")
    assert again["test_psnr"] == result["test_psnr"]  # reproducible on the CPU


def test_out_of_memory_in_sr_evaluation_says_images_are_scored_whole(tiny_photos, tmp_path, experiment_file,
                                                                     monkeypatch):
    import torch

    import finebench.train as train_mod
    from finebench.errors import FinebenchError

    def oom(*a, **k):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 9.00 GiB")

    monkeypatch.setattr(train_mod, "evaluate", oom)
    _, path = tiny_photos
    spec = {"task": "sr", "dataset": "skimage_photos", "modality": "vision", "model": "edsr", "family": "cnn",
            "arch": "edsr", "model_kwargs": {"channels": 8, "blocks": 1}, "seed": 0,
            "training": {**fbconfig.TRAINING_DEFAULTS, "epochs": 1, "batch_size": 8, "weight_decay": 0.0}}
    with pytest.raises(FinebenchError, match=r"sr/edsr/seed0: out of cpu memory while evaluating \(CUDA out of memory"
                                             r"\. Tried to allocate 9\.00 GiB\) — super-resolution scores every "
                                             r"validation and test image whole"):
        train_mod.fit(spec, path, tmp_path / "run", experiment_file, device="cpu")


def write_sr_runs_with_images(root: Path, psnr: dict[str, list[list[float]]], set14: dict | None = None,
                              without=()) -> list[Path]:
    """SR runs whose metrics.json test_psnr is the mean of their per_image.csv PSNRs (on set5; with ``set14``, the
    same per further set, as metrics.json ``more_tests``); the models in ``without`` have no per_image.csv."""
    rows = sr_runs({m: [float(np.mean(v)) for v in per] for m, per in psnr.items()})
    for r in rows:
        r["sr_test_set"], r["n_test"] = "set5", len(psnr[r["model"]][r["seed"]])
        if set14:
            v = set14[r["model"]][r["seed"]]
            r["more_tests"] = {"set14": {"test_psnr": float(np.mean(v)), "test_ssim": 0.9, "bicubic_psnr": 29.0,
                                         "bicubic_ssim": 0.85, "n_test": len(v)}}
    files = write_runs(root, rows)
    for f, r in zip(files, rows):
        if r["model"] in without:
            continue
        sets = [("set5", psnr[r["model"]][r["seed"]])] + ([("set14", set14[r["model"]][r["seed"]])] if set14 else [])
        pd.DataFrame([{"test_set": name, "image": f"img{i}", "psnr": v, "ssim": 0.9, "bicubic_psnr": 30.0,
                       "bicubic_ssim": 0.88} for name, values in sets for i, v in enumerate(values)]
                     ).to_csv(f.parent / "per_image.csv", index=False)
    return files


def test_sr_psnr_interval_and_tie_come_from_per_image_psnr_on_each_test_set(tmp_path):
    """A task scored on set5 and set14 is two table tasks (task@set); each one's interval reads the per-image PSNRs
    of its own set (per_image.csv test_set), which average to that set's PSNR."""
    from finebench import report, stats
    from finebench.tasks.superres import tables as sr_tables

    rng = np.random.default_rng(0)
    set5 = {"a": [list(32 + rng.normal(0, 2, 5)) for _ in range(3)],
            "b": [list(31.5 + rng.normal(0, 2, 5)) for _ in range(3)]}
    set14 = {"a": [list(30 + rng.normal(0, 2, 14)) for _ in range(3)],
             "b": [list(20 + rng.normal(0, 1, 14)) for _ in range(3)]}
    files = write_sr_runs_with_images(tmp_path, set5, set14)
    runs = sr_tables.expand(report.of_type(report.load_metrics(files), "superres"))
    board = report.leaderboard(runs, "superres")
    assert set(board["task"]) == {"photos@set5", "photos@set14"}
    models = board[~board["is_baseline"].astype(bool)].set_index(["task", "model"])
    assert (models["stats_note"] == "").all() and (models["tie_test"].isin(["", "paired"])).all()
    assert models.loc[("photos@set14", "a"), "test_psnr_ci95_test"] == stats.ci95_test(np.array(set14["a"]))
    assert models.loc[("photos@set14", "a"), "test_psnr_ci95_comb"] == pytest.approx(
        stats.ci95_combined(np.array(set14["a"])))
    assert models.loc[("photos@set5", "b"), "p_vs_best"] == stats.paired_p(np.array(set5["a"]), np.array(set5["b"]))
    assert models.loc[("photos@set5", "b"), "tie_with_best"]  # 0.5 dB apart on 5 images with 2 dB spread
    assert not models.loc[("photos@set14", "b"), "tie_with_best"]  # 10 dB apart
    md = get("superres").table_code.leaderboard_markdown(board)
    comb = models.loc[("photos@set14", "a"), "test_psnr_ci95_comb"]
    assert f"**{models.loc[('photos@set14', 'a'), 'test_psnr_mean']:.2f} ± {comb:.2f}**" in md
    assert "| ± seeds " in md and "| ± test " in md and "paired test on the same test images" in md
    assert "†" not in md.split("## ")[1]


def test_sr_runs_without_per_image_scores_fall_back_to_welch(tmp_path):
    from finebench import report

    files = write_sr_runs_with_images(tmp_path, {"a": [[31, 32], [31.5, 32.5]], "b": [[30, 31], [30.2, 31.2]]},
                                      without=("b",))
    board = report.leaderboard(report.of_type(report.load_metrics(files), "superres"), "superres")
    b = board.set_index("model").loc["b"]
    assert b["tie_test"] == "Welch" and b["p_vs_best"] == b["p_vs_best_welch"] and np.isnan(b["test_psnr_ci95_comb"])
    md = get("superres").table_code.leaderboard_markdown(board)
    assert " †" in md and "Seed-only statistics" in md and "b (no per-example test scores" in md
