"""Real speech: Speech Commands v2 (official lists) and ``audiofolder`` (bring your own).

Audio is read with soundfile, mixed to mono, resampled to ``sample_rate`` (16 kHz), zero-padded or centre-cropped to
``clip_seconds`` and turned into log-mel features in chunks written to a memory-mapped array, so 10^5 clips never sit
in memory as waveforms.

Layouts read (``root:``):
- ``speech_commands``: the folder the official archive extracts to: one folder per word (35), ``_background_noise_``
  (ignored), ``validation_list.txt`` and ``testing_list.txt``; every other clip is train. A partial copy (fewer words,
  clips deleted) is read as it is: listed clips not on disk are left out and a word folder without a clip is not a
  class, each with a warning naming the counts (see vision.py for the shared rules)
- ``audiofolder``: root/[train|val|test/]label/*.wav (or any other format libsndfile reads: flac, ogg, mp3, aiff …;
  any sample rate); missing splits carved from train. A file in another format, an unreadable or truncated file (a
  WAV whose header promises more data than it holds) or an empty class folder is an error naming it;
  ``skip_bad_files: true`` skips such files instead (counted in the manifest's ``skipped``), ``min_per_class: N``
  drops classes with fewer than N clips
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np

from finebench.data.audio import fit_length, log_mel, resample
from finebench.data.download import Remote
from finebench.data.layout import CopyFindings, examples, folder_records, list_lines, root_of, skipped_files
from finebench.data.registry import SPLITS, DatasetSource, carve_splits, drop_rare_classes, register
from finebench.errors import FinebenchError

SPEECH_DEFAULTS = {"root": None, "sample_rate": 16000, "clip_seconds": 1.0, "n_fft": 480, "hop": 160, "n_mels": 40,
                   "val_fraction": 0.1, "test_fraction": 0.2, "seed": 0, "chunk": 2048}


# File extensions of the containers libsndfile reads, by its format name (MP3 needs libsndfile >= 1.1).
SOUNDFILE_EXTENSIONS = {"WAV": [".wav"], "WAVEX": [".wav"], "FLAC": [".flac"], "OGG": [".ogg", ".oga", ".opus"],
                        "MP3": [".mp3"], "AIFF": [".aif", ".aiff", ".aifc"], "AU": [".au", ".snd"], "CAF": [".caf"],
                        "W64": [".w64"], "RF64": [".rf64"]}
# libsndfile's header log names a data chunk longer than the file holds: "data : 32000 (should be 15978)".
SHORT_CHUNK = re.compile(r"^(?:data|SSND)\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)


def audio_extensions() -> set[str]:
    import soundfile as sf

    return {ext for fmt in sf.available_formats() for ext in SOUNDFILE_EXTENSIONS.get(fmt, [])}


def header_problem(f) -> str | None:
    """Why an open soundfile.SoundFile cannot be trusted, from its header alone (None when it looks whole)."""
    short = SHORT_CHUNK.search(f.extra_info or "")
    if short and int(short.group(2)) < int(short.group(1)):
        return (f"truncated: the header promises {int(short.group(1)):,} bytes of audio, the file holds "
                f"{int(short.group(2)):,} (a partial copy or an interrupted download?)")
    if f.frames == 0:
        return "holds no audio frames"
    return None


def audio_problem(path: Path) -> str | None:
    """Open the header only: None when the file looks readable and whole, else the reason."""
    import soundfile as sf

    try:
        with sf.SoundFile(str(path)) as f:
            return header_problem(f)
    except (RuntimeError, sf.SoundFileError) as exc:
        return f"cannot read audio ({exc})"


def read_clip(path: Path, sr: int, n: int) -> np.ndarray:
    import soundfile as sf

    try:
        with sf.SoundFile(str(path)) as f:
            problem = header_problem(f)
            if problem is None:
                wav, file_sr = f.read(dtype="float32", always_2d=True), f.samplerate
                if f.frames > 0 and len(wav) < f.frames:
                    problem = f"truncated: the header promises {f.frames:,} frames, the file holds {len(wav):,}"
    except (RuntimeError, sf.SoundFileError) as exc:
        raise FinebenchError(f"{path}: cannot read audio ({exc})") from exc
    if problem:
        raise FinebenchError(f"{path}: {problem}; replace the file, or (audiofolder) set tasks.<task>.skip_bad_files: "
                             f"true to skip such files")
    wav = resample(wav.mean(1), file_sr, sr)
    return fit_length(wav, n, (n - len(wav)) // 2)  # centred: pad both sides, or crop the middle


def build_features(work: Path, records: dict[str, list], classes: list[str], opt: dict, source: dict) -> dict:
    records, carved = carve_splits(records, opt, classes)
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
            "input": {"kind": "spectrogram", "channels": 1, "n_mels": opt["n_mels"], "frames": frames,
                      "sample_rate": sr, "n_fft": opt["n_fft"], "hop": opt["hop"], "mean": float(mean),
                      "std": float(np.sqrt(max(total_sq / count - mean**2, 1e-12)))},
            "waveform": {"file": "{split}_wav.npy", "sample_rate": sr, "samples": n, "dtype": "float16"},
            "classes": classes,
            "carved_splits": carved,
            "source": source,
        },
    }


def build_speech_commands(work: Path, opt: dict) -> dict:
    """Every clip of a word folder is train unless a list file names it. A partial copy (fewer words, clips deleted)
    is read as it is: listed clips that are not on disk are left out with a warning (those of words without a folder
    counted apart), a word folder without a clip is not a class."""
    root = root_of(opt, "speech_commands")
    found = CopyFindings("speech_commands")
    if not root.is_dir():
        raise FinebenchError(f"{root}: folder not found (tasks.<task>.root)")
    lists, listed = {"val": root / "validation_list.txt", "test": root / "testing_list.txt"}, {}
    for split, path in lists.items():
        # "word/clip.wav"; an edited copy may write backslashes, "./", other case or trailing spaces
        listed[split] = {line.replace("\\", "/").removeprefix("./").casefold()
                         for _, line in list_lines(path, "a list file")}
        if not listed[split]:
            raise FinebenchError(f"{path}: lists no clip")
    words = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith(("_", ".")))
    if not words:
        raise FinebenchError(f"{root}: no word folders found")
    records: dict[str, list[tuple[Path, int]]] = {s: [] for s in SPLITS}  # (wav, label)
    on_disk: set[str] = set()  # word/file.wav, case-folded
    for label, word in enumerate(words):
        for wav in sorted((root / word).glob("*.wav")):
            rel = f"{word}/{wav.name}".casefold()
            on_disk.add(rel)
            records["val" if rel in listed["val"]
                    else ("test" if rel in listed["test"] else "train")].append((wav, label))
    folders = {w.casefold() for w in words}
    for split, path in lists.items():
        if not records[split]:
            raise FinebenchError(f"{path}: none of the {len(listed[split])} clips it lists is in {root}, e.g. "
                                 f"{min(listed[split])}")
    missing = {s: sorted(r for r in listed[s] if r not in on_disk) for s in lists}
    if any(missing.values()):
        parts = []
        for split, rels in missing.items():
            if rels:
                no_word = sorted({r.split("/")[0] for r in rels if r.split("/")[0] not in folders})
                in_word = [r for r in rels if r.split("/")[0] in folders]
                parts.append(f"{split} {len(rels)} of {len(listed[split])} ({lists[split].name}: "
                             + (f"{len(rels) - len(in_word)} of words without a folder here: {examples(no_word)}"
                                if no_word else "")
                             + ("; " if no_word and in_word else "")
                             + (f"{len(in_word)} missing from their word folder, e.g. {in_word[0]}" if in_word else "")
                             + ")")
        found.warn("missing_files", f"{sum(map(len, missing.values()))} clip(s) listed but not on disk, left out: "
                   + ", ".join(parts), n={s: len(r) for s, r in missing.items()})
    records, classes = found.present_classes(records, words, f"(word folders in {root})")
    return build_features(work, records, classes, opt,
                          found.source({"layout": "Speech Commands v2", "root": str(root)}))


def build_audiofolder(work: Path, opt: dict) -> dict:
    root = root_of(opt, "audiofolder")
    skip = bool(opt.get("skip_bad_files"))
    records, classes, unsupported = folder_records(root, audio_extensions(), "audio files", skip)
    bad = [(p, "unsupported format") for p in unsupported]
    unreadable = [(p, why) for rows in records.values() for p, _ in rows if (why := audio_problem(p))]
    if unreadable and not skip:
        raise FinebenchError(
            f"{len(unreadable)} audio file(s) are unreadable or truncated: "
            f"{'; '.join(f'{p}: {why}' for p, why in unreadable[:5])}{' …' if len(unreadable) > 5 else ''}. Replace "
            f"them, or set tasks.<task>.skip_bad_files: true to skip them (counted in the manifest)")
    if unreadable:
        gone = {p for p, _ in unreadable}
        records = {s: [(p, lab) for p, lab in rows if p not in gone] for s, rows in records.items()}
        bad += unreadable
    if bad:
        print(f"[finebench] skip_bad_files: skipped {len(bad)} file(s), e.g. {bad[0][0]} ({bad[0][1]})",
              file=sys.stderr, flush=True)
    records, classes, rare = drop_rare_classes(records, classes, opt)
    out = build_features(work, records, classes, opt, {"layout": "audiofolder", "root": str(root)})
    out["manifest"]["skipped"] = {**({"bad_files": skipped_files(bad)} if bad else {}),
                                  **({"rare_classes": {"min_per_class": opt["min_per_class"], "classes": rare,
                                                       "n": sum(rare.values())}} if rare else {})}
    return out


register(DatasetSource(
    name="speech_commands", modality="speech",
    description="Speech Commands v2: 35 words; official validation_list / testing_list splits",
    defaults=SPEECH_DEFAULTS, build=build_speech_commands,
    remotes=[Remote("http://download.tensorflow.org/data/speech_commands_v0.02.tar.gz",
                    md5="6b74f3901214cb2c2934e98196829835")],
    citation="Warden (2018), Speech Commands: A Dataset for Limited-Vocabulary Speech Recognition, arXiv:1804.03209",
    official={"classes": 35, "splits": {"train": 84843, "val": 9981, "test": 11005}}))
register(DatasetSource(
    name="audiofolder", modality="speech", description="Bring your own: root/[split/]label/*.wav (any sample rate)",
    defaults={**SPEECH_DEFAULTS, "skip_bad_files": False, "min_per_class": None}, build=build_audiofolder))
