"""The GPU input path, checked on the CPU (#33 items 4, 6): every host-to-device copy of every loader is pinned and
non-blocking (recorded under a torch function mode with the device set to CUDA); speech-recognition batches are
built in a background thread and capped by audio duration on request, the same batches with and without the thread;
the CUDA speed keys (channels_last, cudnn_benchmark, tf32) and their defaults, which leave every spec unchanged."""

import numpy as np
import pytest
import torch
from torch.overrides import TorchFunctionMode

from finebench import config
from finebench.tasks.asr.objective import ASRLoader, form_batches, padding_ratio
from test_asr import prepared as prepared_asr  # noqa: E402
from test_asr import utterances


class FakeCuda(TorchFunctionMode):
    """Records every ``Tensor.to`` / ``Tensor.cuda`` / ``Tensor.pin_memory`` and runs none of them that needs CUDA: a
    copy "to CUDA" returns its source (the data stays on the CPU), pin_memory marks the tensor as pinned."""

    def __init__(self):
        super().__init__()
        self.copies, self.pinned = [], set()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        if name == "pin_memory":
            self.pinned.add(id(args[0]))
            return args[0]
        if name == "cuda" or (name == "to" and any(isinstance(a, torch.device) and a.type == "cuda" or a == "cuda"
                                                   for a in (*args[1:], kwargs.get("device")))):
            src = args[0]
            self.copies.append({"pinned": id(src) in self.pinned, "non_blocking": bool(kwargs.get("non_blocking")),
                                "shape": tuple(src.shape)})
            rest = [a for a in args[1:] if isinstance(a, torch.dtype)] + \
                   ([kwargs["dtype"]] if isinstance(kwargs.get("dtype"), torch.dtype) else [])
            return src.to(rest[0]) if rest else src
        return func(*args, **kwargs)


def copies_of(loader):
    with FakeCuda() as mode:
        batches = list(loader)
    return batches, mode.copies


def assert_every_copy_pinned_and_non_blocking(copies):
    assert copies, "no host-to-device copy recorded"
    blocking = [c for c in copies if not (c["pinned"] and c["non_blocking"])]
    assert not blocking, f"{len(blocking)} of {len(copies)} copies block the host: {blocking[:3]}"


@pytest.fixture(scope="module")
def asr_data(tmp_path_factory):
    seconds = [0.1 * (1 + (7 * i) % 40) for i in range(40)]  # 0.1-4.0 s, scrambled
    train = [{**utterances(["go no"], s)[0], "id": f"u{i}"} for i, s in enumerate(seconds)]
    return prepared_asr(tmp_path_factory.mktemp("asr"), {"train": train, "val": utterances(["up"]),
                                                         "test": utterances(["up", "go"])})


def test_the_speech_recognition_loader_copies_pinned_batches_without_blocking(asr_data):
    aug = {"freq_masks": 1, "freq_width": 5, "time_masks": 1, "time_width": 3}
    loader = ASRLoader(asr_data, "train", 8, "cuda", train=True, generator=torch.Generator().manual_seed(0),
                       buckets=2, spec_aug=aug, prefetch=0)  # the mode records this thread's calls only
    batches, copies = copies_of(loader)
    assert len(batches) == 5 and len(copies) == 4 * 5  # values and lengths of x and y, per batch
    assert_every_copy_pinned_and_non_blocking(copies)


def test_the_classification_loader_copies_pinned_batches_without_blocking(tmp_path_factory):
    from finebench.data import DATASETS, Prepared, prepare_task
    from finebench.loader import Loader

    out = tmp_path_factory.mktemp("tf") / "tf"
    prepare_task("tf", "typefaces", {**DATASETS["typefaces"].defaults, "families": ["NimbusSans", "URWGothic"],
                                     "styles_per_family": 1, "vocabulary": 60, "train_per_class": 8,
                                     "val_per_class": 2, "test_per_class": 2}, out)
    loader = Loader(Prepared(out), "train", 4, "cuda", shuffle=True, generator=torch.Generator().manual_seed(0),
                    augment=True, prefetch=0)
    batches, copies = copies_of(loader)
    assert len(copies) == 2 * len(batches)
    assert_every_copy_pinned_and_non_blocking(copies)


def test_the_super_resolution_loader_copies_pinned_batches_without_blocking(tmp_path):
    from finebench.data.superres import SRData
    from finebench.tasks.superres.objective import SRLoader
    from test_superres import prepare  # noqa: E402

    _, path = prepare(tmp_path, train_images=["astronaut"], val_images=["chelsea"], test_images=["camera"],
                      max_side=48, patch_size=8, patches_per_epoch=16, example_crop=16)
    data = SRData(path)
    for train in (True, False):
        loader = SRLoader(data, "train" if train else "test", 4, "cuda", train=train,
                          generator=torch.Generator().manual_seed(0) if train else None, prefetch=0)
        batches, copies = copies_of(loader)
        assert len(copies) == 2 * len(batches) > 0
        assert_every_copy_pinned_and_non_blocking(copies)


def test_speech_recognition_batches_are_the_same_with_and_without_the_loader_thread(asr_data):
    aug = {"freq_masks": 1, "freq_width": 5, "time_masks": 1, "time_width": 3}

    def epoch(prefetch, **kw):
        loader = ASRLoader(asr_data, "train", 8, "cpu", train=True, generator=torch.Generator().manual_seed(3),
                           buckets=2, spec_aug=aug, prefetch=prefetch, **kw)
        return [(x.values.clone(), x.lengths.clone(), y.values.clone()) for x, y in loader]

    for kw in ({}, {"batch_seconds": 6.0}):
        inline, threaded = epoch(0, **kw), epoch(2, **kw)
        assert len(inline) == len(threaded) > 0
        assert all(all(torch.equal(a, b) for a, b in zip(p, q)) for p, q in zip(inline, threaded))


def test_duration_capped_batches_by_hand():
    lengths = np.array([10, 40, 20, 30, 10, 50])
    order = np.arange(6)
    # one pool of 6 (size 3, 2 buckets), sorted: 0(10) 4(10) 2(20) 3(30) 1(40) 5(50); cap 60 = count × longest
    assert [b.tolist() for b in form_batches(order, lengths, 3, 2, cap=60)] == [[0, 4, 2], [3], [1], [5]]
    # without a cap: batches of 3 in sorted order
    assert [b.tolist() for b in form_batches(order, lengths, 3, 2)] == [[0, 4, 2], [3, 1, 5]]
    # an utterance longer than the cap is a batch of its own
    assert ([b.tolist() for b in form_batches(np.arange(4), np.array([10, 10, 50, 10]), 6, 1, cap=45)]
            == [[0, 1], [2], [3]])
    assert padding_ratio([np.array([0, 4, 2])], lengths) == pytest.approx(60 / 40)


def test_duration_capped_training_batches_cover_every_utterance_once_within_the_cap(asr_data):
    lengths = asr_data.index("train")[:, 1]
    loader = ASRLoader(asr_data, "train", 16, "cpu", train=True, generator=torch.Generator().manual_seed(0),
                       buckets=4, batch_seconds=4.0)
    batches = loader.batches()
    cap = 4.0 * asr_data.input["sample_rate"] / asr_data.input["hop"]
    assert sorted(np.concatenate(batches).tolist()) == list(range(40))
    assert all(len(b) * lengths[b].max() <= cap or len(b) == 1 for b in batches)
    assert len({len(b) for b in batches}) > 1  # short utterances in larger batches
    estimate = ASRLoader(asr_data, "train", 16, "cpu", train=True, generator=torch.Generator().manual_seed(0),
                         buckets=4, batch_seconds=4.0)
    assert estimate.steps_estimate() == len(batches) == len(estimate)  # read from a copy of the generator


def test_speed_keys_apply_on_cuda_only_and_channels_last_auto_picks_cnns():
    from finebench.train import speed_settings

    saved = (torch.backends.cudnn.benchmark, torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    image = {"kind": "image"}
    try:
        torch.backends.cudnn.benchmark = False
        assert speed_settings({}, torch.device("cpu"), "cnn", image) is False  # the CPU: nothing changes
        assert torch.backends.cudnn.benchmark is False
        assert speed_settings({"channels_last": True}, torch.device("cpu"), "rnn", image) is True  # asked: applied
        cuda = torch.device("cuda")
        assert speed_settings({}, cuda, "cnn", image) is True
        assert torch.backends.cudnn.benchmark and torch.backends.cuda.matmul.allow_tf32
        assert speed_settings({}, cuda, "transformer", image) is False
        assert speed_settings({}, cuda, "cnn", {"kind": "tokens"}) is False
        assert speed_settings({"channels_last": False, "cudnn_benchmark": False, "tf32": False}, cuda, "cnn",
                              image) is False
        assert not torch.backends.cudnn.benchmark and not torch.backends.cuda.matmul.allow_tf32
    finally:
        torch.backends.cudnn.benchmark, torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def test_the_speed_keys_at_their_defaults_leave_the_spec_unchanged(repo):
    import yaml

    cfg = config.with_defaults(yaml.safe_load((repo / "config" / "config.yaml").read_text()))
    spec = config.resolve_spec(cfg, *config.runs(cfg)[0])
    assert not {"channels_last", "cudnn_benchmark", "tf32", "precision", "batch_seconds"} & set(spec["training"])
    cfg["training"] = {**cfg["training"], "tf32": False, "channels_last": True}
    spec = config.resolve_spec(cfg, *config.runs(cfg)[0])
    assert spec["training"]["tf32"] is False and spec["training"]["channels_last"] is True
