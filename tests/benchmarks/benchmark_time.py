"""Benchmark: how long `make benchmark` (or any config) takes on this machine, projected from measured throughput.

    .venv/bin/python tests/benchmarks/benchmark_time.py --config config/benchmark.yaml --device cuda --steps 30
    .venv/bin/python tests/benchmarks/benchmark_time.py --tasks sst5 trec50 --steps 5     # a quick CPU look
    .venv/bin/python tests/benchmarks/benchmark_time.py --tasks trec50 librispeech100 --models distilbert ds2 \\
        --steps 2 --eval-batch-size 8 --threads 2                                     # hf: and asr rows on the CPU

Every (task, model) of the config is covered, offline, with synthetic data of the task's real shapes (throughput
does not depend on content): for each it writes a prepared dataset, runs the real training job (`python -m finebench
train`, the command the Snakemake rule runs, in its own process) for 2 epochs of ``--steps`` batches at the config's
batch size, and reads back the second epoch's training-loop time (the first pays for warm-up: cuDNN autotuning,
allocator growth), the inference throughput and the job's fixed overhead (start-up, model build, cost measurement =
wall time minus the epochs and the synthetic test pass). Then it projects each run with the real split sizes and
sums over models and seeds, one job at a time (`--resources gpu=1`):

- **classification** (official split sizes from the dataset registry; a carved validation split taken out of train):
  epochs x (n_train / train samples/s + n_val / inference samples/s) + n_test / inference samples/s + overhead.
  Random pixels / log-mels / token ids of the task's input shape and class count. Text batches are trimmed to their
  longest sequence, so token lengths are drawn uniformly from [max_len/4, max_len]: real short texts (SST ~20
  tokens) train faster than this estimate.
- **hf: models** (DistilBERT, wav2vec 2.0): the tokens form the ``tokenize`` rule writes (``results/tokens/{task}/
  {tokenizer}``: ids ``[N, max_length]`` right-padded with the pad id, the tokenizer's sha256 in the manifest) or the
  16 kHz waveform form (``results/waveform/{task}``), synthesized directly — no tokenizer run, no network. The
  weights: a same-size architecture with random init saved with save_pretrained into ``--work`` and passed as
  ``pretrained_dir`` (:data:`HF_STANDINS`: DistilBertConfig() and Wav2Vec2Config() defaults are distilbert-base's
  and wav2vec2-base's sizes); a model entry's own ``pretrained_dir`` is used where it exists.
- **speech recognition** (``librispeech``): the prepared ``asr`` form (finebench.data.asr) with utterance durations
  drawn from the LibriSpeech-like distribution of asr_batches.py, random log-mels (and waveforms, for hf: models),
  ~15 random characters per second of audio; a run is epochs x (train utterances / utterances/s + validation audio /
  audio seconds per second) + test audio / that rate + overhead, with LibriSpeech's published sizes
  (:data:`LIBRISPEECH_HOURS`; utterances: finebench.data.asr_sources.LIBRISPEECH_COUNTS). The evaluation rate is the
  synthetic validation pass's (greedy decoding and WER included), its lengths drawn from the training distribution
  (dev-clean and test-clean are shorter on average: 7.2 s against 12.7 s).
- **super-resolution** (``sr_benchmark``): random 480 x 480 HR images (``hr_folder``, the task's scale, patch size and
  patches per epoch); epochs x (steps x seconds per step + validation pixels / pixels per second) + test pixels /
  pixels per second + overhead, with the evaluation sets' pixel counts from :data:`SR_EVAL_MEGAPIXELS`
  (approximate; training dominates).

Pairs of the same model, training keys and input shape on several tasks (the four vision tasks, the three text
tasks) are measured once and projected with each task's sizes (``measured_as``; ``--every-pair`` measures each).
Pairs that earlier versions could not project (hf: models, speech recognition) are measured first; ``--time-limit``
stops starting jobs after that many seconds (the rest are listed as not measured) and ``--out`` is rewritten after
every pair, so a killed run leaves what it measured; ``--reuse`` keeps the rows of an earlier ``--out`` and measures
only the others; ``--only-missing`` measures only the pairs earlier versions left out. Not included: downloads and
the one-off data preparation per task. A job that fails is reported and left out; the others still run. Pretrained
weights are switched off (same architecture, same speed, no hub access needed). Measures and prints; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from finebench import config as fbconfig
from finebench import data as fbdata

sys.path.insert(0, str(Path(__file__).parent))
from asr_batches import seconds as librispeech_like_seconds  # noqa: E402  (a sibling script)

# LibriSpeech's published sizes in hours per subset: Panayotov, Chen, Povey, Khudanpur (2015), "LibriSpeech: an ASR
# corpus based on public domain audio books", ICASSP, Table 1 (also OpenSLR SLR12's page). Utterances per subset are
# finebench.data.asr_sources.LIBRISPEECH_COUNTS (the parser checks a download against them): train-clean-100 28,539
# utterances in 100.6 h, dev-clean 2,703 in 5.4 h, test-clean 2,620 in 5.4 h, test-other 2,939 in 5.1 h.
LIBRISPEECH_HOURS = {"train-clean-100": 100.6, "train-clean-360": 363.6, "train-other-500": 496.7,
                     "dev-clean": 5.4, "dev-other": 5.3, "test-clean": 5.4, "test-other": 5.1}
# Characters per second of audio in the synthetic transcripts: about LibriSpeech's read speech (~2.7 words of ~4.4
# letters plus a space each per second) — an approximation; CTC's cost barely depends on it.
CHARS_PER_SECOND = 15
SYNTHETIC_SECONDS_SEED = 0


def split_sizes(source, options: dict) -> dict[str, int]:
    """The official split sizes, with val carved out of train the way carve_splits does when the release has none."""
    sizes = dict(source.official["splits"])
    if "val" not in sizes:
        val = int(round(sizes["train"] * options.get("val_fraction", 0.1)))
        sizes = {"train": sizes["train"] - val, "val": val, "test": sizes["test"]}
    return sizes


def input_info(source, options: dict) -> dict:
    if source.modality == "vision":
        return {"kind": "image", "channels": 3, "height": options["image_size"], "width": options["image_size"],
                "stored_size": options["resize"], "augment": "random_resized_crop_flip"}
    if source.modality == "text":
        return {"kind": "tokens", "vocab_size": options["vocab_size"], "pad_id": 0, "max_len": options["max_len"]}
    frames = int(options["sample_rate"] * options["clip_seconds"]) // options["hop"]
    return {"kind": "spectrogram", "channels": 1, "n_mels": options["n_mels"], "frames": frames, "mean": 0.0,
            "std": 1.0}


def waveform_info(options: dict) -> dict:
    """The input of a speech task's waveform view (results/waveform/{task}), what hf: audio models read."""
    sr = options["sample_rate"]
    return {"kind": "waveform", "sample_rate": sr, "samples": int(sr * options["clip_seconds"]), "dtype": "float16"}


def synthetic_x(info: dict, n: int, rng, first_id: int = 2) -> np.ndarray:
    if info["kind"] == "image":
        s = info["stored_size"]
        return rng.integers(0, 256, (n, 3, s, s), dtype=np.uint8)
    if info["kind"] == "tokens":  # ids in [first_id, vocab), right-padded with the pad id
        x = rng.integers(first_id, info["vocab_size"], (n, info["max_len"]), dtype=np.int32)
        x[x == info["pad_id"]] = first_id
        lengths = rng.integers(info["max_len"] // 4, info["max_len"] + 1, n)
        x[np.arange(info["max_len"])[None, :] >= lengths[:, None]] = info["pad_id"]
        return x
    if info["kind"] == "waveform":
        return (0.1 * rng.standard_normal((n, info["samples"]), dtype=np.float32)).astype(np.float16)
    return rng.standard_normal((n, 1, info["n_mels"], info["frames"])).astype(np.float16)


def write_prepared(out: Path, info: dict, classes: int, n: dict[str, int], seed: int = 0, first_id: int = 2) -> None:
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    splits = {}
    for split, size in n.items():
        np.save(out / f"{split}_x.npy", synthetic_x(info, size, rng, first_id))
        y = rng.integers(0, classes, size).astype(np.int64)
        np.save(out / f"{split}_y.npy", y)
        splits[split] = {"n": size, "class_counts": np.bincount(y, minlength=classes).tolist()}
    manifest = {"task": out.name, "dataset": "synthetic", "input": info, "classes": [f"c{i}" for i in range(classes)],
                "num_classes": classes, "splits": splits, "carved_splits": {}, "synthetic_benchmark": True}
    (out / "manifest.json").write_text(json.dumps(manifest))


# ---------------------------------------------------------------------------------------------------------------------
# Speech recognition: the prepared asr form, synthesized


def librispeech_sizes(options: dict) -> dict[str, dict] | None:
    """{split: {"utterances", "hours"}} of a ``librispeech`` task from the published sizes; None if a subset it uses
    has none here."""
    from finebench.data.asr_sources import LIBRISPEECH_COUNTS

    sizes = {}
    for split in ("train", "val", "test"):
        subsets = options[split] if isinstance(options[split], list) else [options[split]]
        if any(s not in LIBRISPEECH_COUNTS or s not in LIBRISPEECH_HOURS for s in subsets):
            return None
        sizes[split] = {"utterances": sum(LIBRISPEECH_COUNTS[s] for s in subsets),
                        "hours": sum(LIBRISPEECH_HOURS[s] for s in subsets)}
    return sizes


def write_asr_prepared(out: Path, options: dict, n: dict[str, int], waveform: bool, seed: int = 0,
                       duration_scale: float = 1.0) -> dict:
    """The ``asr`` prepared form (finebench.data.asr.write_asr's layout) of ``n[split]`` synthetic utterances:
    LibriSpeech-like durations (times ``duration_scale``: shorter only to rehearse on a CPU), random float16 log-mels
    (standardised: mean 0, std 1), random words of the task's alphabet at :data:`CHARS_PER_SECOND`, random waveforms
    when ``waveform``. Returns the manifest."""
    from finebench.data.asr import ALPHABET, NORMALISER, vocabulary

    vocab = vocabulary(options.get("alphabet") or ALPHABET)
    sr, hop, n_mels = options["sample_rate"], options["hop"], options["n_mels"]
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    counts = {}
    for split, size in n.items():
        secs = librispeech_like_seconds(rng, size) * duration_scale
        samples = np.round(secs * sr).astype(np.int64)
        frames = samples // hop
        chars = np.maximum(2, np.round(secs * CHARS_PER_SECOND)).astype(np.int64)
        feats = np.lib.format.open_memmap(out / f"{split}_feats.npy", "w+", np.float16, (int(frames.sum()), n_mels))
        for s in range(0, len(feats), 1 << 20):  # in blocks: a few hundred MB at --steps 30
            block = feats[s : s + (1 << 20)]
            block[:] = rng.standard_normal(block.shape, dtype=np.float32)
        feats.flush()
        del feats
        labels = rng.integers(2, len(vocab), int(chars.sum())).astype(np.int16)  # letters and the apostrophe
        l_start = np.concatenate([[0], np.cumsum(chars)[:-1]])
        for start, length in zip(l_start, chars):  # a space after every 5th character: words, never at either end
            labels[start + 5 : start + length - 1 : 6] = 1
        np.save(out / f"{split}_labels.npy", labels)
        w_start = np.concatenate([[0], np.cumsum(samples)[:-1]]) if waveform else np.zeros(size, np.int64)
        if waveform:
            wav = np.lib.format.open_memmap(out / f"{split}_wav.npy", "w+", np.float16, (int(samples.sum()),))
            for s in range(0, len(wav), 1 << 24):
                block = wav[s : s + (1 << 24)]
                block[:] = 0.1 * rng.standard_normal(block.shape, dtype=np.float32)
            wav.flush()
            del wav
        f_start = np.concatenate([[0], np.cumsum(frames)[:-1]])
        w_len = samples if waveform else np.zeros(size, np.int64)
        index = np.stack([f_start, frames, l_start, chars, w_start, w_len], 1)
        np.save(out / f"{split}_index.npy", index.astype(np.int64))
        texts = ["".join(vocab[i] for i in labels[a : a + b]) for a, b in zip(l_start, chars)]
        pd.DataFrame({"id": [f"{split}-{i}" for i in range(size)], "speaker": [str(i % 40) for i in range(size)],
                      "seconds": np.round(secs, 4), "text": texts}).to_csv(out / f"{split}_utterances.csv", index=False)
        counts[split] = {"n": size, "speakers": min(size, 40), "hours": round(float(secs.sum()) / 3600, 4),
                         "words": sum(len(t.split()) for t in texts), "characters": int(chars.sum()),
                         "frames": int(frames.sum())}
    manifest = {"task": out.name, "dataset": "synthetic", "modality": "speech", "task_type": "asr",
                "input": {"kind": "asr_features", "n_mels": n_mels, "hop": hop, "n_fft": options["n_fft"],
                          "sample_rate": sr, "mean": [0.0] * n_mels, "std": [1.0] * n_mels, "vocab": vocab,
                          "blank": 0, "waveform": bool(waveform)},
                "classes": vocab, "num_classes": len(vocab), "normaliser": NORMALISER, "splits": counts,
                "source": {"layout": "synthetic (benchmark_time.py)"}, "synthetic_benchmark": True}
    (out / "manifest.json").write_text(json.dumps(manifest))
    return manifest


# ---------------------------------------------------------------------------------------------------------------------
# hf: models: same-size stand-ins with random weights, and their inputs


def save_distilbert_base(folder: Path) -> None:
    """distilbert-base-uncased's architecture (DistilBertConfig's defaults: vocabulary 30,522, dim 768, 6 layers, 12
    heads, FFN 3072) with random weights, and a WordPiece tokenizer (tests/hf_tiny.py; its fingerprint is what the
    synthetic token ids are checked against — the model never runs it)."""
    import torch
    from transformers import DistilBertConfig, DistilBertForSequenceClassification

    sys.path.insert(0, str(Path(__file__).parents[1]))
    from hf_tiny import wordpiece_tokenizer

    torch.manual_seed(0)
    DistilBertForSequenceClassification(DistilBertConfig()).save_pretrained(folder)
    wordpiece_tokenizer().save_pretrained(folder)


def save_wav2vec2_base(folder: Path) -> None:
    """facebook/wav2vec2-base's architecture (Wav2Vec2Config's defaults: 7 conv layers of 512, 12 layers of 768, 12
    heads, group-norm feature encoder) with random weights, and its feature extractor's settings."""
    import torch
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2ForSequenceClassification

    torch.manual_seed(0)
    Wav2Vec2ForSequenceClassification(Wav2Vec2Config()).save_pretrained(folder)
    Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, padding_value=0.0, do_normalize=True,
                             return_attention_mask=False).save_pretrained(folder)


HF_STANDINS = {"distilbert-base-uncased": save_distilbert_base, "facebook/wav2vec2-base": save_wav2vec2_base}


def hf_folder(model_id: str, kwargs: dict, work: Path) -> Path:
    """The ``pretrained_dir`` to run ``hf:model_id`` with: the entry's own when it exists, else a stand-in in
    ``work`` (built once)."""
    own = kwargs.get("pretrained_dir")
    if own and (Path(own).expanduser() / "config.json").is_file():
        return Path(own).expanduser()
    if model_id not in HF_STANDINS:
        raise JobFailed(f"hf:{model_id}: no same-size stand-in in benchmark_time.HF_STANDINS and no pretrained_dir — "
                        f"add a builder of its architecture there")
    folder = work / "hf" / model_id.replace("/", "--")
    if not (folder / "standin.json").is_file():
        import shutil

        tmp = folder.with_name(folder.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        HF_STANDINS[model_id](tmp)
        (tmp / "standin.json").write_text(json.dumps({"stands_in_for": model_id, "weights": "random"}))
        shutil.rmtree(folder, ignore_errors=True)
        tmp.rename(folder)
    return folder


def hf_tokens_info(model_id: str, kwargs: dict) -> dict:
    """The input of the tokens form for ``hf:model_id`` (finebench.data.hf_tokens.tokenize_task's manifest), with the
    fingerprint of the tokenizer in ``kwargs['pretrained_dir']``, which the model checks."""
    from finebench.data.hf_tokens import max_length_of
    from finebench.models.hf_load import load_tokenizer, tokenizer_sha256

    tok = load_tokenizer(model_id, kwargs)
    vocab = json.loads((Path(kwargs["pretrained_dir"]) / "config.json").read_text())["vocab_size"]
    return {"kind": "tokens", "vocab_size": int(vocab), "pad_id": int(tok.pad_token_id),
            "max_len": max_length_of(kwargs), "tokenizer": f"{type(tok).__name__} of {kwargs['pretrained_dir']}",
            "tokenizer_sha256": tokenizer_sha256(tok)}


# ---------------------------------------------------------------------------------------------------------------------
# Super-resolution

# HR megapixels scored per evaluation, for the super-resolution projection: Set5 (512², 288², 256², 280², 228x344) and
# BSD100 (100 x 481x321) are exact; DIV2K valid images are 2040 px on the long side (~1,350-1,400 on the other: 2.8 MP
# assumed), Set14 is summed from its 14 image sizes as commonly distributed, Urban100 (~1024 px on the long side) is a
# rough estimate.
SR_EVAL_MEGAPIXELS = {"div2k_valid_image": 2.8, "set5": 0.57, "set14": 3.2, "bsd100": 15.4, "urban100": 80.0}
SR_SYNTHETIC_SIDE = 480  # divisible by 2, 3 and 4


def write_sr_prepared(out: Path, task: str, options: dict, work: Path) -> None:
    """A prepared super-resolution task (the real ``hr_folder`` path) from random images of SR_SYNTHETIC_SIDE²."""
    from PIL import Image

    rng = np.random.default_rng(0)
    folder = work / "sr-images" / task
    for split, n in (("train", 4), ("val", 1), ("test", 1)):
        (folder / split).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            img = rng.integers(0, 256, (SR_SYNTHETIC_SIDE, SR_SYNTHETIC_SIDE, 3), dtype=np.uint8)
            Image.fromarray(img).save(folder / split / f"{i}.png")
    opts = {**fbdata.DATASETS["hr_folder"].defaults, "root": str(folder), "example_crop": 48,
            **{k: options[k] for k in ("scale", "patch_size", "patches_per_epoch", "degradation")}}
    fbdata.prepare_task(task, "hr_folder", opts, out)


def sr_eval_megapixels(options: dict) -> tuple[float, float]:
    """(HR megapixels of one validation pass, of the final test on every test set) of an ``sr_benchmark`` task."""
    from finebench.data.superres import test_set_names

    val = int(options.get("val_images") or 10) * SR_EVAL_MEGAPIXELS["div2k_valid_image"]
    return val, sum(SR_EVAL_MEGAPIXELS[k] for k in test_set_names(options.get("test_set") or "set5"))


# ---------------------------------------------------------------------------------------------------------------------
# Running one job


class JobFailed(Exception):
    """A training job of the benchmark failed (its last stderr line): reported, and the other models still run."""


def run_job(spec: dict, data_dir: Path, exp_file: Path, out: Path, device: str, threads: int,
            timeout: float | None = None) -> float:
    t0 = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, "-m", "finebench", "train", "--spec", json.dumps(spec), "--data",
                               str(data_dir), "--experiment-file", str(exp_file), "--out", str(out), "--device",
                               device, "--threads", str(threads), "--no-progress"], capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        raise JobFailed(f"stopped after {timeout:.0f} s (--time-limit)") from None
    if proc.returncode:
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
        raise JobFailed(lines[-1] if lines else f"exit status {proc.returncode}")
    return time.perf_counter() - t0


def measure(spec: dict, data_dir: Path, exp_file: Path, out: Path, device: str, threads: int, failed: list,
            timeout: float | None = None):
    """Run one job: (wall seconds, history.csv, metrics.json), or None when it failed (printed, added to ``failed``)."""
    name = f"{spec['task']}/{spec['model']}"
    try:
        wall = run_job(spec, data_dir, exp_file, out, device, threads, timeout)
    except JobFailed as exc:
        failed.append(f"{name}: {exc}")
        print(f"{spec['task']:16s} {spec['model']:16s} FAILED: {exc}", flush=True)
        return None
    return wall, pd.read_csv(out / "history.csv"), json.loads((out / "metrics.json").read_text())


# ---------------------------------------------------------------------------------------------------------------------
# The pairs of a config, measured and projected


@dataclass
class Pair:
    task: str
    model: str
    dataset: str
    kind: str  # classification, asr, superres
    spec: dict
    options: dict
    new: bool  # hf: or speech recognition: not projected by earlier versions of this script
    key: str = ""  # pairs with the same key run at the same speed: measured once
    skip: str | None = None
    extra: dict = field(default_factory=dict)


def plan(cfg: dict, args) -> list[Pair]:
    pairs = []
    for task in args.tasks or list(cfg["tasks"]):
        if task not in cfg["tasks"]:
            raise SystemExit(f"--tasks: no task {task!r} in {args.config}; tasks: {', '.join(cfg['tasks'])}")
        dataset = cfg["tasks"][task]["dataset"]
        source = fbdata.DATASETS[dataset]
        options = fbconfig.task_options(cfg, task)
        for model in fbconfig.task_models(cfg, task):
            if args.models and model not in args.models:
                continue
            spec = fbconfig.resolve_spec(cfg, task, model, 0)
            hf = spec["arch"].startswith("hf:")
            kind = source.task_type
            p = Pair(task, model, dataset, kind, spec, options, new=hf or kind == "asr")
            if kind == "superres" and dataset != "sr_benchmark":
                p.skip = f"{dataset} has no known evaluation sizes (only sr_benchmark is projected)"
            elif kind == "asr" and (dataset != "librispeech" or librispeech_sizes(options) is None):
                p.skip = f"{dataset}: no published split sizes here (LIBRISPEECH_HOURS covers librispeech)"
            elif kind == "classification" and not source.official:
                p.skip = f"{dataset} has no official split sizes to project with"
            training = {k: v for k, v in spec["training"].items() if k != "epochs"}
            shape = options if kind != "classification" else (
                {"modality": source.modality} if hf else input_info(source, options))
            p.key = json.dumps([kind, model, spec["arch"], spec["model_kwargs"], training, shape], sort_keys=True,
                               default=str)
            if args.every_pair:
                p.key += task
            pairs.append(p)
    return pairs


def job_spec(p: Pair, steps: int | None, eval_batch: int | None) -> dict:
    spec = json.loads(json.dumps(p.spec))
    t = spec["training"]
    spec["model_kwargs"] = {k: v for k, v in spec["model_kwargs"].items() if k not in ("pretrained", "pretrained_file")}
    spec["training"] = {**t, "epochs": 2, "warmup_epochs": 0.0, **({"max_train_batches": steps} if steps else {}),
                        **({"eval_batch_size": eval_batch} if eval_batch else {})}
    return spec


def measure_classification(p: Pair, args, work: Path, exp_file: Path, threads: int, failed: list, timeout):
    source = fbdata.DATASETS[p.dataset]
    spec = job_spec(p, args.steps, args.eval_batch_size)
    t = spec["training"]
    n_syn = {"train": args.steps * t["batch_size"], "val": t["eval_batch_size"], "test": t["eval_batch_size"]}
    first_id = 2
    if spec["arch"].startswith("hf:"):
        model_id = spec["arch"][3:]
        spec["model_kwargs"]["pretrained_dir"] = str(hf_folder(model_id, p.spec["model_kwargs"], work))
        if source.modality == "text":
            info = hf_tokens_info(model_id, spec["model_kwargs"])
            first_id = min(1000, info["vocab_size"] // 2)  # past BERT-style special and unused ids
        else:
            info = waveform_info(p.options)
        tag = f"{info['kind']}-{Path(spec['model_kwargs']['pretrained_dir']).name}"
    else:
        info = input_info(source, p.options)
        tag = info["kind"]
    data_dir = work / "data" / f"{p.task}.{tag}.{n_syn['train']}-{n_syn['val']}"
    if not (data_dir / "manifest.json").is_file():
        write_prepared(data_dir, info, source.official["classes"], n_syn, first_id=first_id)
    measured = measure(spec, data_dir, exp_file, work / "runs" / p.task / p.model, args.device, threads, failed,
                       timeout)
    if measured is None:
        return None
    wall, hist, m = measured
    infer_sps = m["inference_samples_per_s"]
    return {"device": m["device"], "batch_size": t["batch_size"],
            "train_samples_per_s": n_syn["train"] / hist["train_seconds"].iloc[-1],
            "inference_samples_per_s": infer_sps, "peak_memory_mb": m.get("peak_memory_mb"),
            "overhead_s": max(0.0, wall - hist["epoch_seconds"].sum() - n_syn["test"] / infer_sps)}


def project_classification(p: Pair, r: dict) -> dict:
    sizes = split_sizes(fbdata.DATASETS[p.dataset], p.options)
    epochs = p.spec["training"]["epochs"]
    train, infer = r["train_samples_per_s"], r["inference_samples_per_s"]
    per_run = epochs * (sizes["train"] / train + sizes["val"] / infer) + sizes["test"] / infer + r["overhead_s"]
    return {"n_train": sizes["train"], "train_samples_per_s": round(train, 1),
            "inference_samples_per_s": round(infer, 1), "per_run_s": per_run}


def measure_asr(p: Pair, args, work: Path, exp_file: Path, threads: int, failed: list, timeout):
    spec = job_spec(p, None, args.eval_batch_size)  # every synthetic utterance each epoch (batch_seconds too)
    t = spec["training"]
    n_syn = {"train": args.steps * t["batch_size"], "val": 2 * t["eval_batch_size"], "test": t["eval_batch_size"]}
    waveform = spec["arch"].startswith("hf:")
    if waveform:
        spec["model_kwargs"]["pretrained_dir"] = str(hf_folder(spec["arch"][3:], p.spec["model_kwargs"], work))
    data_dir = work / "data" / f"{p.task}.asr{'-wav' if waveform else ''}.{n_syn['train']}-{n_syn['val']}"
    if not (data_dir / "manifest.json").is_file():
        write_asr_prepared(data_dir, p.options, n_syn, waveform, SYNTHETIC_SECONDS_SEED)
    manifest = json.loads((data_dir / "manifest.json").read_text())
    measured = measure(spec, data_dir, exp_file, work / "runs" / p.task / p.model, args.device, threads, failed,
                       timeout)
    if measured is None:
        return None
    wall, hist, m = measured
    last = hist.iloc[-1]
    audio_per_s = manifest["splits"]["val"]["hours"] * 3600 / max(1e-9, last["epoch_seconds"] - last["train_seconds"])
    return {"device": m["device"], "batch_size": t["batch_size"],
            "train_samples_per_s": n_syn["train"] / last["train_seconds"],
            "train_audio_s_per_s": manifest["splits"]["train"]["hours"] * 3600 / last["train_seconds"],
            "infer_audio_s_per_s": audio_per_s, "peak_memory_mb": m.get("peak_memory_mb"),
            "overhead_s": max(0.0, wall - hist["epoch_seconds"].sum()
                              - manifest["splits"]["test"]["hours"] * 3600 / audio_per_s)}


def project_asr(p: Pair, r: dict) -> dict:
    sizes = librispeech_sizes(p.options)
    epochs = p.spec["training"]["epochs"]
    rate = r["infer_audio_s_per_s"]
    per_run = (epochs * (sizes["train"]["utterances"] / r["train_samples_per_s"] + sizes["val"]["hours"] * 3600 / rate)
               + sizes["test"]["hours"] * 3600 / rate + r["overhead_s"])
    return {"n_train": sizes["train"]["utterances"], "train_samples_per_s": round(r["train_samples_per_s"], 2),
            "train_audio_s_per_s": round(r["train_audio_s_per_s"], 1), "infer_audio_s_per_s": round(rate, 1),
            "per_run_s": per_run}


def measure_sr(p: Pair, args, work: Path, exp_file: Path, threads: int, failed: list, timeout):
    spec = job_spec(p, args.steps, None)
    t = spec["training"]
    data_dir = work / "data" / f"{p.task}.sr"
    manifest = data_dir / "manifest.json"
    if not manifest.is_file() or json.loads(manifest.read_text())["input"]["scale"] != p.options["scale"]:
        write_sr_prepared(data_dir, p.task, p.options, work)
    measured = measure(spec, data_dir, exp_file, work / "runs" / p.task / p.model, args.device, threads, failed,
                       timeout)
    if measured is None:
        return None
    wall, hist, m = measured
    last = hist.iloc[-1]
    steps = min(args.steps, math.ceil(p.options["patches_per_epoch"] / t["batch_size"]))
    eval_s = max(1e-9, last["epoch_seconds"] - last["train_seconds"])  # one synthetic validation image
    return {"device": m["device"], "batch_size": t["batch_size"], "step_s": last["train_seconds"] / steps,
            "mpx_s": SR_SYNTHETIC_SIDE**2 / 1e6 / eval_s, "peak_memory_mb": m.get("peak_memory_mb"),
            "overhead_s": max(0.0, wall - hist["epoch_seconds"].sum() - eval_s)}


def project_sr(p: Pair, r: dict) -> dict:
    t = p.spec["training"]
    val_mpx, test_mpx = sr_eval_megapixels(p.options)
    steps_per_epoch = math.ceil(p.options["patches_per_epoch"] / t["batch_size"])
    per_run = (t["epochs"] * (steps_per_epoch * r["step_s"] + val_mpx / r["mpx_s"]) + test_mpx / r["mpx_s"]
               + r["overhead_s"])
    return {"n_train": p.options["patches_per_epoch"], "train_samples_per_s": round(t["batch_size"] / r["step_s"], 1),
            "infer_megapixels_per_s": round(r["mpx_s"], 2), "per_run_s": per_run}


KINDS = {"classification": (measure_classification, project_classification),
         "asr": (measure_asr, project_asr), "superres": (measure_sr, project_sr)}
UNITS = {"classification": "samples", "asr": "utterances", "superres": "patches"}


def row_of(p: Pair, r: dict, seeds: int, measured_as: str) -> dict:
    proj = KINDS[p.kind][1](p, r)
    per_run = proj.pop("per_run_s")
    return {"task": p.task, "model": p.model, "kind": p.kind, "device": r["device"], "batch_size": r["batch_size"],
            "epochs": p.spec["training"]["epochs"], **proj, "overhead_s": round(r["overhead_s"], 1),
            "peak_memory_mb": r.get("peak_memory_mb"), "minutes_per_run": round(per_run / 60, 2), "seeds": seeds,
            "minutes_all_seeds": round(seeds * per_run / 60, 1), "measured_as": measured_as}


def print_row(r: dict) -> None:
    speed = {"asr": f"infer {r.get('infer_audio_s_per_s', 0):8.1f} audio s/s",
             "superres": f"infer {r.get('infer_megapixels_per_s', 0):8.2f} MP/s"}.get(
        r["kind"], f"infer {r.get('inference_samples_per_s', 0):8.1f}/s")
    print(f"{r['task']:16s} {r['model']:16s} train {r['train_samples_per_s']:8.1f} {UNITS[r['kind']]}/s  {speed}"
          f"  overhead {r['overhead_s']:5.1f}s  -> {r['minutes_per_run']:7.2f} min/run x {r['seeds']}"
          + ("" if r["measured_as"] == f"{r['task']}/{r['model']}" else f"  (speed of {r['measured_as']})"), flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default="config/benchmark.yaml")
    ap.add_argument("--tasks", nargs="*", help="only these tasks (default: all)")
    ap.add_argument("--models", nargs="*", help="only these models")
    ap.add_argument("--steps", type=int, default=30, help="training batches per measured epoch")
    ap.add_argument("--eval-batch-size", type=int, default=None,
                    help="default: the config's; smaller for a quick CPU look (inference is then measured at it)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=None, help="default: the config's threads")
    ap.add_argument("--work", default="/tmp/finebench-benchmark-time")
    ap.add_argument("--out", help="also write the table as CSV here (rewritten after every pair)")
    ap.add_argument("--gpus", type=int, nargs="*", default=[2, 4, 8],
                    help="also project the wall time with this many GPUs, one job on each (make benchmark GPUS=N)")
    ap.add_argument("--only-missing", action="store_true",
                    help="only the pairs earlier versions left out: hf: models and speech recognition")
    ap.add_argument("--every-pair", action="store_true",
                    help="measure every (task, model), also where another task has the same model and input shape")
    ap.add_argument("--time-limit", type=float, default=None,
                    help="seconds: start no job after this, stop a running one at it (the rest: not measured)")
    ap.add_argument("--reuse", help="an earlier --out CSV: keep its rows, measure only the pairs it lacks")
    args = ap.parse_args()
    t_start = time.perf_counter()

    cfg = fbconfig.load(args.config)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    exp_file = work / "experiment.json"
    subprocess.run([sys.executable, "-m", "finebench", "init-tracking", "--tracking-uri",
                    f"sqlite:///{work}/mlflow.db", "--experiment", "benchmark-time", "--artifact-root",
                    str(work / "mlartifacts"), "--out", str(exp_file)], check=True, capture_output=True)
    threads = args.threads or cfg["threads"]
    seeds = len(cfg["seeds"])
    pairs = plan(cfg, args)
    reused = pd.read_csv(args.reuse) if args.reuse and Path(args.reuse).is_file() else pd.DataFrame()
    done = set(zip(reused["task"], reused["model"])) if len(reused) else set()
    rows = reused.to_dict("records")
    order = {(p.task, p.model): i for i, p in enumerate(pairs)}

    def in_config_order(row: dict) -> int:
        return order.get((row["task"], row["model"]), -1)

    failed, not_measured, speeds = [], [], {}
    for p in pairs:
        if p.skip:
            print(f"skip {p.task}/{p.model}: {p.skip}", file=sys.stderr)
    todo = [p for p in pairs if not p.skip and (p.task, p.model) not in done and (p.new or not args.only_missing)]
    todo.sort(key=lambda p: not p.new)  # the pairs never projected before first: the unknown part of the total
    for p in todo:
        if p.key not in speeds:
            elapsed = time.perf_counter() - t_start
            if args.time_limit and elapsed >= args.time_limit:
                not_measured.append(f"{p.task}/{p.model}")
                continue
            timeout = max(5.0, args.time_limit - elapsed) if args.time_limit else None
            try:
                r = KINDS[p.kind][0](p, args, work, exp_file, threads, failed, timeout)
            except JobFailed as exc:  # no job could be set up (e.g. an hf: model without a stand-in)
                failed.append(f"{p.task}/{p.model}: {exc}")
                print(f"{p.task:16s} {p.model:16s} FAILED: {exc}", flush=True)
                r = None
            speeds[p.key] = (r, f"{p.task}/{p.model}")
        r, measured_as = speeds[p.key]
        if r is None:
            if measured_as != f"{p.task}/{p.model}":
                failed.append(f"{p.task}/{p.model}: as {measured_as}")
            continue
        rows.append(row_of(p, r, seeds, measured_as))
        print_row(rows[-1])
        if args.out:  # after every pair: a run stopped from outside leaves what it measured
            pd.DataFrame(sorted(rows, key=in_config_order)).to_csv(args.out, index=False)
    table = pd.DataFrame(sorted(rows, key=in_config_order))
    if failed:  # e.g. an hf: model without a stand-in, or a job out of memory
        print(f"\n{len(failed)} pair(s) not in the projection (failed):\n  " + "\n  ".join(failed))
    if not_measured:
        print(f"\n{len(not_measured)} pair(s) not measured (--time-limit {args.time_limit:.0f} s reached): "
              + ", ".join(not_measured))
    if table.empty:
        return 1
    print()
    print(table.drop(columns=["kind"], errors="ignore").to_string(index=False))
    total = table["minutes_all_seeds"].sum()
    planned = [p for p in pairs if not p.skip]
    print(f"\nprojected training time, one job at a time: {total:.0f} min = {total / 60:.1f} h "
          f"({len(table)} of {len(planned)} task x model pairs, {int(table['seeds'].sum())} runs; downloads and "
          f"preparation excluded)")
    runs = [m / n for m, n in zip(table["minutes_all_seeds"], table["seeds"]) for _ in range(int(n))]
    for gpus in args.gpus:
        wall = packed_minutes(runs, gpus)
        print(f"with {gpus} jobs at once (make benchmark GPUS={gpus}: one per GPU; longest first — Snakemake's own "
              f"order may pack worse): {wall:.0f} min = {wall / 60:.1f} h")
    if args.out:
        table.to_csv(args.out, index=False)
    return 0


def packed_minutes(runs: list[float], workers: int) -> float:
    """Wall time of ``runs`` (minutes each) on ``workers`` slots, each run started on the first free slot, longest
    first (the LPT rule: within 4/3 of the best possible packing)."""
    import heapq

    slots = [0.0] * max(1, workers)
    for minutes in sorted(runs, reverse=True):
        heapq.heapreplace(slots, slots[0] + minutes)
    return max(slots)


if __name__ == "__main__":
    sys.exit(main())
