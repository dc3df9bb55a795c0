"""The input pipeline: batched augmentation, model normalisation, determinism whatever the thread's timing."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from finebench.data import DATASETS, Prepared, prepare_task
from finebench.loader import Loader, crop_resize, normalize_images, random_resized_crop_flip


def test_batched_crop_resize_equals_interpolating_each_crop():
    torch.manual_seed(0)
    t = torch.rand(3, 2, 20, 30) * 255
    boxes = torch.tensor([[0, 0, 20, 30], [3, 5, 10, 12], [7, 1, 13, 29]])
    flip = torch.tensor([False, True, False])
    out = crop_resize(t, boxes, flip, 8, 16)
    for i, (top, left, h, w) in enumerate(boxes.tolist()):
        ref = F.interpolate(t[i : i + 1, :, top : top + h, left : left + w], size=(8, 16), mode="bilinear",
                            align_corners=False)[0]
        torch.testing.assert_close(out[i], ref.flip(-1) if flip[i] else ref, rtol=1e-4, atol=1e-3)


def test_random_resized_crop_is_seeded_and_varied():
    t = torch.rand(16, 3, 40, 40)
    a = random_resized_crop_flip(t, 24, 24, torch.Generator().manual_seed(1))
    b = random_resized_crop_flip(t, 24, 24, torch.Generator().manual_seed(1))
    c = random_resized_crop_flip(t, 24, 24, torch.Generator().manual_seed(2))
    assert a.shape == (16, 3, 24, 24) and torch.equal(a, b) and not torch.equal(a, c)


def test_normalisation_uses_the_model_statistics():
    x = torch.tensor([0.0, 127.5, 255.0]).view(1, 1, 1, 3).repeat(1, 3, 1, 1)
    torch.testing.assert_close(normalize_images(x.clone(), {"mean": (0.5,), "std": (0.5,)})[0, 0, 0],
                               torch.tensor([-1.0, 0.0, 1.0]))
    imagenet = {"mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225)}
    got = normalize_images(x.clone(), imagenet)
    torch.testing.assert_close(got[0, 2, 0, 0], torch.tensor((0 - 0.406) / 0.225))
    grey = normalize_images(x[:, :1].clone(), imagenet)  # a 1-channel input: the channel-averaged statistics
    torch.testing.assert_close(grey[0, 0, 0, 2], torch.tensor((1 - 0.449) / 0.226), rtol=1e-4, atol=1e-4)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    out = tmp_path_factory.mktemp("data") / "tf"
    opts = {**DATASETS["typefaces"].defaults, "families": ["NimbusSans", "URWGothic"], "styles_per_family": 1,
            "vocabulary": 100, "train_per_class": 20, "val_per_class": 2, "test_per_class": 2}
    prepare_task("tf", "typefaces", opts, out)
    return Prepared(out)


def test_prefetch_thread_gives_the_same_batches_as_inline_loading(prepared):
    def epoch(prefetch):
        loader = Loader(prepared, "train", 6, "cpu", shuffle=True, generator=torch.Generator().manual_seed(5),
                        augment=True, prefetch=prefetch)
        return [(x.clone(), y.clone()) for x, y in loader], loader

    inline, _ = epoch(0)
    threaded, loader = epoch(2)
    assert len(inline) == len(threaded) == 7 and loader.data_seconds >= 0
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(inline, threaded))
    assert sorted(torch.cat([y for _, y in inline]).tolist()) == sorted(np.load(prepared.path / "train_y.npy").tolist())


def test_stopping_early_stops_the_loader_thread(prepared):
    import threading

    loader = Loader(prepared, "train", 4, "cpu", prefetch=2)
    for i, _ in enumerate(loader):
        if i == 1:
            break
    assert not [t for t in threading.enumerate() if t.name == "finebench-loader" and t.is_alive()]
