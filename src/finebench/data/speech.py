"""Real speech: Speech Commands v2 (official lists) and ``audiofolder`` (bring your own).

Audio is read with soundfile, mixed to mono, resampled to ``sample_rate`` (16 kHz), zero-padded or centre-cropped to
``clip_seconds`` and turned into log-mel features in chunks written to a memory-mapped array, so 10^5 clips never sit
in memory as waveforms.

Layouts read (``root:``):
- ``speech_commands``: the folder the official archive extracts to: one folder per word (35), ``_background_noise_``
  (ignored), ``validation_list.txt`` and ``testing_list.txt``; every other clip is train
- ``audiofolder``: root/[train|val|test/]label/*.wav (any sample rate); missing splits carved from train
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from finebench.data.audio import fit_length, log_mel, resample
from finebench.data.download import Remote
from finebench.data.registry import SPLITS, DatasetSource, carve_splits, register
from finebench.data.layout import folder_records, read_lines, root_of
from finebench.errors import FinebenchError

SPEECH_DEFAULTS = {"root": None, "sample_rate": 16000, "clip_seconds": 1.0, "n_fft": 480, "hop": 160, "n_mels": 40,
                   "val_fraction": 0.1, "test_fraction": 0.2, "seed": 0, "chunk": 2048}


def read_clip(path: Path, sr: int, n: int) -> np.ndarray:
    import soundfile as sf

    try:
        wav, file_sr = sf.read(str(path), dtype="float32", always_2d=True)
    except RuntimeError as exc:
        raise FinebenchError(f"{path}: cannot read audio ({exc})") from exc
    wav = resample(wav.mean(1), file_sr, sr)
    return fit_length(wav, n, (n - len(wav)) // 2)  # centred: pad both sides, or crop the middle


def build_features(work: Path, records: dict[str, list], classes: list[str], opt: dict, source: dict) -> dict:
    records, carved = carve_splits(records, opt)
    sr, n = opt["sample_rate"], int(opt["sample_rate"] * opt["clip_seconds"])
    frames = n // opt["hop"]
    arrays, total, total_sq, count = {}, 0.0, 0.0, 0
    for split in SPLITS:
        paths = [p for p, _ in records[split]]
        out = work / f"{split}_x.npy"
        arr = np.lib.format.open_memmap(out, mode="w+", dtype=np.float16, shape=(len(paths), 1, opt["n_mels"], frames))
        # The raw clips too (float16 [N, samples], memory-mapped): pretrained audio models (hf:) take waveforms.
        wav = np.lib.format.open_memmap(work / f"{split}_wav.npy", mode="w+", dtype=np.float16, shape=(len(paths), n))
        for start in range(0, len(paths), opt["chunk"]):
            clips = np.stack([read_clip(p, sr, n) for p in paths[start : start + opt["chunk"]]])
            wav[start : start + len(clips)] = clips
            feats = log_mel(clips, sr, opt["n_fft"], opt["hop"], opt["n_mels"])
            arr[start : start + len(feats)] = feats
            if split == "train":
                f64 = feats.astype(np.float64)
                total, total_sq, count = total + f64.sum(), total_sq + (f64**2).sum(), count + f64.size
        arr.flush()
        wav.flush()
        del arr, wav
        arrays[split] = (out, np.array([lab for _, lab in records[split]], dtype=np.int64))
    mean = total / count
    return {
        "arrays": arrays,
        "manifest": {
            "input": {"kind": "spectrogram", "channels": 1, "n_mels": opt["n_mels"], "frames": frames, "sample_rate": sr,
                      "n_fft": opt["n_fft"], "hop": opt["hop"], "mean": float(mean),
                      "std": float(np.sqrt(max(total_sq / count - mean**2, 1e-12)))},
            "waveform": {"file": "{split}_wav.npy", "sample_rate": sr, "samples": n, "dtype": "float16"},
            "classes": classes,
            "carved_splits": carved,
            "source": source,
        },
    }


def build_speech_commands(work: Path, opt: dict) -> dict:
    root = root_of(opt, "speech_commands")
    lists = {s: set(read_lines(root / f)) for s, f in (("val", "validation_list.txt"), ("test", "testing_list.txt"))}
    classes = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith(("_", ".")))
    if not classes:
        raise FinebenchError(f"{root}: no word folders found")
    records = {s: [] for s in SPLITS}
    for label, word in enumerate(classes):
        for wav in sorted((root / word).glob("*.wav")):
            rel = f"{word}/{wav.name}"
            split = "val" if rel in lists["val"] else ("test" if rel in lists["test"] else "train")
            records[split].append((wav, label))
    missing = [r for s in ("val", "test") for r in lists[s] if not (root / r).is_file()]
    if missing:
        raise FinebenchError(f"{root}: {len(missing)} clips named in the list files are missing, e.g. {missing[0]}")
    return build_features(work, records, classes, opt, {"layout": "Speech Commands v2", "root": str(root)})


def build_audiofolder(work: Path, opt: dict) -> dict:
    root = root_of(opt, "audiofolder")
    records, classes = folder_records(root, lambda p: p.suffix.lower() in {".wav", ".flac", ".ogg"})
    return build_features(work, records, classes, opt, {"layout": "audiofolder", "root": str(root)})


register(DatasetSource(
    name="speech_commands", modality="speech",
    description="Speech Commands v2: 35 words; official validation_list / testing_list splits",
    defaults=SPEECH_DEFAULTS, build=build_speech_commands,
    remotes=[Remote("http://download.tensorflow.org/data/speech_commands_v0.02.tar.gz", md5="6b74f3901214cb2c2934e98196829835")],
    citation="Warden (2018), Speech Commands: A Dataset for Limited-Vocabulary Speech Recognition, arXiv:1804.03209",
    official={"classes": 35, "splits": {"train": 84843, "val": 9981, "test": 11005}}))
register(DatasetSource(
    name="audiofolder", modality="speech", description="Bring your own: root/[split/]label/*.wav (any sample rate)",
    defaults=SPEECH_DEFAULTS, build=build_audiofolder))
