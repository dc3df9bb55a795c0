"""The device script's pieces, checked on the CPU (tests/benchmarks/gpu_check.sh, benchmark_time.py, gpu_sections.py):
the projection covers every run of benchmark.yaml; its synthetic speech-recognition data and hf: token ids read like
the prepared forms the trainer expects; the check's table lists each section's own row first."""

import subprocess
import sys
from argparse import Namespace
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "benchmarks"))

import benchmark_time as bt  # noqa: E402
import gpu_sections  # noqa: E402

from finebench import config as fbconfig  # noqa: E402


def test_the_projection_covers_every_run_of_the_benchmark_config():
    cfg = fbconfig.load(REPO / "config" / "benchmark.yaml")
    pairs = bt.plan(cfg, Namespace(config="config/benchmark.yaml", tasks=None, models=None, every_pair=False))
    assert [f"{p.task}/{p.model}" for p in pairs if p.skip] == []
    assert len(pairs) * len(cfg["seeds"]) == 126
    new = sorted(f"{p.task}/{p.model}" for p in pairs if p.new)  # hf: models and speech recognition
    assert new == ["goemotions/distilbert", "librispeech100/conformer", "librispeech100/ds2",
                   "librispeech100/quartznet", "librispeech100/wav2vec2_ctc", "speech_commands/wav2vec2",
                   "sst5/distilbert", "trec50/distilbert"]
    keys = {p.key for p in pairs}  # a model on tasks of the same input shape is measured once
    assert len(keys) < len(pairs)
    assert len({p.key for p in pairs if p.model == "resnet50"}) == 1
    assert len({p.key for p in pairs if p.model == "distilbert"}) == 1
    assert len({p.key for p in pairs if p.model == "edsr_baseline"}) == 2  # x2 and x4


def test_librispeech_sizes_are_the_published_ones():
    cfg = fbconfig.load(REPO / "config" / "benchmark.yaml")
    sizes = bt.librispeech_sizes(fbconfig.task_options(cfg, "librispeech100"))
    assert sizes == {"train": {"utterances": 28539, "hours": 100.6}, "val": {"utterances": 2703, "hours": 5.4},
                     "test": {"utterances": 2620, "hours": 5.4}}


def test_synthetic_speech_recognition_data_is_a_prepared_asr_task(tmp_path):
    import torch

    from finebench.data import DATASETS
    from finebench.data.asr import ASRData
    from finebench.models import build_model
    from finebench.tasks.asr.objective import ASRLoader, check_alignable

    options = DATASETS["librispeech"].defaults
    bt.write_asr_prepared(tmp_path, options, {"train": 6, "val": 2, "test": 2}, waveform=True)
    data = ASRData(tmp_path)
    assert data.count("train") == 6 and data.input["n_mels"] == 80 and data.input["waveform"]
    index = data.index("train")
    for i in range(6):
        seconds = index[i, 5] / 16000
        assert 1.5 <= seconds <= 17 and data.features("train", i).shape == (index[i, 1], 80)
        assert data.waveform("train", i).shape == (index[i, 5],) and index[i, 1] == index[i, 5] // 160
        text = data.utterances("train")["text"][i]
        assert text == "".join(data.vocab[c] for c in data.labels("train", i))
        assert text == text.strip() and "  " not in text and set(text) <= set(data.vocab[1:])
    cfg = fbconfig.load(REPO / "config" / "benchmark.yaml")
    for model in ("ds2", "quartznet", "conformer"):
        spec = fbconfig.resolve_spec(cfg, "librispeech100", model, 0)
        module = build_model(spec["arch"], spec["model_kwargs"], data.input, len(data.vocab))
        check_alignable(module, data)  # every synthetic transcript fits the model's output frames
    x, y = next(iter(ASRLoader(data, "train", 4, "cpu", train=True, generator=torch.Generator().manual_seed(0))))
    assert x.values.shape[0] == 4 and x.values.shape[2] == 80 and int(y.lengths.min()) >= 2


def test_synthetic_hf_token_ids_pass_the_models_tokenizer_check(tmp_path):
    import torch

    from finebench.models.hf_modules import HFTextClassifier
    from hf_tiny import save_tiny_bert

    folder = save_tiny_bert(tmp_path / "bert")
    kwargs = {"pretrained_dir": str(folder), "max_length": 16}
    info = bt.hf_tokens_info("tiny-bert", kwargs)
    assert info["max_len"] == 16 and info["pad_id"] == 0 and len(info["tokenizer_sha256"]) == 64
    bt.write_prepared(tmp_path / "tokens", info, 3, {"train": 8, "val": 4, "test": 4}, first_id=5)
    x = np.load(tmp_path / "tokens" / "train_x.npy")
    assert x.shape == (8, 16) and x.dtype == np.int32 and x.max() < info["vocab_size"]
    for row in x:  # right-padded: no pad id before the last token
        assert (row[: int((row != 0).sum())] != 0).all()
    model = HFTextClassifier("tiny-bert", kwargs, info, 3)  # raises if the fingerprint were not its tokenizer's
    assert model(torch.from_numpy(x).long()).shape == (8, 3)


def test_the_check_table_lists_each_sections_own_row_first(tmp_path, capsys):
    rows = tmp_path / "rows.tsv"
    gpu_sections.add_row(str(rows), "sync", "Loader image", "n/a on cpu", 1.25, "20 batches")
    gpu_sections.add_row(str(rows), "sync", "(section)", "ok", 3, "log sync.log")
    gpu_sections.add_row(str(rows), "loop", "(section)", "TIMEOUT", 150, "stopped | at its cap")
    gpu_sections.table(Namespace(rows_file=str(rows), md=[str(tmp_path / "t.md")]))
    lines = (tmp_path / "t.md").read_text().splitlines()
    assert lines[0] == "| section | item | status | seconds | result |"
    assert [ln.split(" | ")[1] for ln in lines[2:]] == ["(section)", "Loader image", "(section)"]
    assert "stopped / at its cap" in lines[4]
    assert subprocess.run(["bash", "-n", str(REPO / "tests" / "benchmarks" / "gpu_check.sh")]).returncode == 0
