"""The prepared form of speech-recognition tasks (task type ``asr``), written once by every ASR source.

Transcripts are normalised by one documented rule (:func:`normalize_transcript`) and spelled in a character
vocabulary with a CTC blank (:func:`vocabulary`). Audio is resampled to ``sample_rate`` (16 kHz) and turned into
log-mel features (finebench.data.audio.log_mel: ``n_mels`` bands, ``hop`` samples per frame), one utterance at a
time, appended to flat memory maps, so a long corpus never sits in memory:

- ``{split}_feats.npy``: float16 ``[frames of every utterance, n_mels]``, time-major, back to back;
- ``{split}_labels.npy``: int16 character ids of every transcript, back to back (no blank, no padding);
- ``{split}_wav.npy``: float16 samples of every utterance, back to back (``waveform: true``; ``hf:`` audio models
  take the waveform and extract their own features);
- ``{split}_index.npy``: int64 ``[N, 6]``, one row per utterance: feature start, frames, label start, label length,
  waveform start, samples;
- ``{split}_utterances.csv``: id, speaker, seconds and the normalised transcript, in the index's order (the order of
  ``hypotheses.csv``).

``manifest.json``: ``task_type: asr``; ``input`` (kind ``asr_features``, n_mels, hop, sample rate, the train split's
per-band mean and std, the vocabulary and the blank id); ``classes`` is the vocabulary (the models' output size);
per split the number of utterances, speakers, hours, words and characters; what was skipped and why.

Bad input is named before anything trains: a character outside the vocabulary (after normalisation) names the file
and line it came from; an empty transcript likewise; audio longer than ``max_seconds`` is named, or skipped and
counted with ``skip_long: true``; a transcript without audio and audio without a transcript are named by the
parsers (finebench.data.asr_sources).
"""

from __future__ import annotations

import csv
import json
import re
import sys
import unicodedata
from pathlib import Path

import numpy as np

from finebench.data.audio import log_mel, resample
from finebench.data.registry import SPLITS
from finebench.errors import FinebenchError

BLANK = "<blank>"
ALPHABET = "abcdefghijklmnopqrstuvwxyz'"  # after normalisation: lower-case letters, the apostrophe and the space
NORMALISER = ("NFKC; case folded; ’ ‘ ʼ ` → '; - – — _ / → space; every other punctuation or symbol character "
              "removed; runs of whitespace → one space; leading and trailing spaces removed")
APOSTROPHES = str.maketrans({"’": "'", "‘": "'", "ʼ": "'", "`": "'"})
SEPARATORS = re.compile(r"[-–—_/]")


def normalize_transcript(text: str) -> str:
    """The one transcript rule of the ``asr`` task type (:data:`NORMALISER`): references and hypotheses are scored
    after it. ``"Hello, World -- it's 'me'!"`` -> ``"hello world it's 'me'"``. Digits and letters of other scripts
    stay (and are then outside the default vocabulary: named by :func:`encode`)."""
    text = unicodedata.normalize("NFKC", text).casefold().translate(APOSTROPHES)
    text = SEPARATORS.sub(" ", text)
    text = "".join(c for c in text if c == "'" or not unicodedata.category(c).startswith(("P", "S")))
    return " ".join(text.split())


def vocabulary(alphabet: str = ALPHABET) -> list[str]:
    """The output symbols: the CTC blank (id 0), the space (id 1), then ``alphabet``'s characters."""
    if len(set(alphabet)) != len(alphabet) or " " in alphabet:
        raise FinebenchError(f"alphabet: {alphabet!r} — each character once, no space (the space is always id 1)")
    return [BLANK, " ", *alphabet]


def encode(text: str, vocab: list[str], where: str) -> np.ndarray:
    """Character ids of a normalised transcript; a character outside ``vocab`` is an error naming ``where`` (the file
    and line the transcript came from)."""
    index = {c: i for i, c in enumerate(vocab)}
    bad = sorted({c for c in text if c not in index})
    if bad:
        shown = ", ".join(f"{c!r} (U+{ord(c):04X})" for c in bad[:8])
        raise FinebenchError(f"{where}: transcript {text!r} has characters outside the vocabulary after normalisation "
                             f"({NORMALISER}): {shown} — spell them out in the transcript (e.g. digits as words), or "
                             f"add them to tasks.<task>.alphabet")
    return np.array([index[c] for c in text], dtype=np.int16)


def decode(ids, vocab: list[str]) -> str:
    return "".join(vocab[i] for i in ids)


class GrowingNpy:
    """A ``.npy`` file of rows appended one block at a time (the row count unknown until the end): the header is
    written for a placeholder count and rewritten, padded to the same length, on :meth:`close`."""

    PLACEHOLDER = 10**15

    def __init__(self, path: Path, dtype, row_shape: tuple = ()):
        self.path, self.dtype, self.row_shape, self.n = Path(path), np.dtype(dtype), tuple(row_shape), 0
        self.f = open(self.path, "wb")
        self.header_len = len(self._header(self.PLACEHOLDER))
        self.f.write(self._header(self.PLACEHOLDER))

    def _header(self, n: int, pad_to: int | None = None) -> bytes:
        d = {"descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False, "shape": (n, *self.row_shape)}
        body = repr(d).encode("latin1")
        total = pad_to or -(-(10 + len(body) + 1) // 64) * 64
        body = body + b" " * (total - 10 - len(body) - 1) + b"\n"
        return b"\x93NUMPY\x01\x00" + len(body).to_bytes(2, "little") + body

    def append(self, rows: np.ndarray) -> int:
        """Append rows; returns the index of the first."""
        rows = np.ascontiguousarray(rows, dtype=self.dtype).reshape(-1, *self.row_shape)
        start = self.n
        self.f.write(rows.tobytes())
        self.n += len(rows)
        return start

    def close(self) -> None:
        self.f.seek(0)
        self.f.write(self._header(self.n, pad_to=self.header_len))
        self.f.close()


def utterance_features(wav: np.ndarray, opt: dict) -> np.ndarray:
    """``[samples]`` float waveform at ``sample_rate`` -> float16 ``[frames, n_mels]`` log-mel (frames = samples //
    hop)."""
    return log_mel(wav[None], opt["sample_rate"], opt["n_fft"], opt["hop"], opt["n_mels"])[0, 0].T


def write_asr(work: Path, splits: dict[str, list[dict]], opt: dict, source: dict) -> dict:
    """Write the prepared form from ``splits[split]``: dicts with ``id``, ``speaker``, ``text`` (raw), ``where`` (the
    file and line it came from) and ``audio`` — a waveform (float32 at ``audio_rate``) or a callable returning
    ``(waveform, rate)``. Returns the source's ``build`` result (``"arrays": None``: it counted its splits itself)."""
    vocab = vocabulary(opt.get("alphabet") or ALPHABET)
    sr, max_seconds = opt["sample_rate"], opt.get("max_seconds")
    waveform = opt.get("waveform", True)
    counts: dict[str, dict] = {}
    skipped: dict[str, list[str]] = {"too_long": []}
    stats: tuple[np.ndarray, np.ndarray] | None = None  # the train split's feature mean and std
    for split in SPLITS:
        rows = splits.get(split) or []
        if not rows:
            raise FinebenchError(f"split {split!r} has no utterance — check the source's split options")
        feats = GrowingNpy(work / f"{split}_feats.npy", np.float16, (opt["n_mels"],))
        labels = GrowingNpy(work / f"{split}_labels.npy", np.int16)
        wavs = GrowingNpy(work / f"{split}_wav.npy", np.float16) if waveform else None
        index, table = [], []
        total_sum = total_sq = None
        n_frames = 0
        try:
            for r in rows:
                text = normalize_transcript(r["text"])
                if not text:
                    raise FinebenchError(f"{r['where']}: empty transcript for utterance {r['id']!r}"
                                         + (f" (after normalisation: {NORMALISER})" if r["text"].strip() else "")
                                         + " — give it a transcript, or remove the utterance")
                ids = encode(text, vocab, r["where"])
                audio = r["audio"]
                wav, rate = audio() if callable(audio) else (audio, r.get("audio_rate", sr))
                wav = resample(np.asarray(wav, dtype=np.float32), rate, sr)
                seconds = len(wav) / sr
                if max_seconds and seconds > max_seconds:
                    if not opt.get("skip_long"):
                        raise FinebenchError(f"{r['where']}: utterance {r['id']!r} is {seconds:.1f} s long, over "
                                             f"tasks.<task>.max_seconds ({max_seconds}) — raise max_seconds, or set "
                                             f"tasks.<task>.skip_long: true to skip such utterances (counted in the "
                                             f"manifest)")
                    skipped["too_long"].append(f"{split}/{r['id']} ({seconds:.1f} s)")
                    continue
                if len(wav) < opt["hop"]:
                    raise FinebenchError(f"{r['where']}: utterance {r['id']!r} holds {len(wav)} samples, under one "
                                         f"feature frame ({opt['hop']} samples)")
                f = utterance_features(wav, opt)
                f_start = feats.append(f)
                l_start = labels.append(ids)
                w_start = wavs.append(wav) if wavs else 0
                index.append((f_start, len(f), l_start, len(ids), w_start, len(wav) if wavs else 0))
                table.append({"id": r["id"], "speaker": r["speaker"], "seconds": round(seconds, 4), "text": text})
                n_frames += len(f)
                if split == "train":
                    f64 = f.astype(np.float64)
                    s, q = f64.sum(0), (f64**2).sum(0)
                    total_sum, total_sq = (s, q) if total_sum is None else (total_sum + s, total_sq + q)
        finally:
            for g in (feats, labels, wavs):
                if g:
                    g.close()
        if not index:
            raise FinebenchError(f"split {split!r}: every utterance was skipped ({len(skipped['too_long'])} over "
                                 f"max_seconds {max_seconds})")
        np.save(work / f"{split}_index.npy", np.array(index, dtype=np.int64))
        with open(work / f"{split}_utterances.csv", "w", newline="", encoding="utf-8") as fh:
            w = csv.DictWriter(fh, fieldnames=["id", "speaker", "seconds", "text"])
            w.writeheader()
            w.writerows(table)
        if split == "train":
            assert total_sum is not None and total_sq is not None  # the split has an utterance (checked above)
            mean = total_sum / n_frames
            stats = (mean, np.sqrt(np.maximum(total_sq / n_frames - mean**2, 1e-8)))
        counts[split] = {"n": len(index), "speakers": len({t["speaker"] for t in table}),
                         "hours": round(sum(t["seconds"] for t in table) / 3600, 4),
                         "words": sum(len(t["text"].split()) for t in table),
                         "characters": sum(len(t["text"]) for t in table), "frames": n_frames}
    if skipped["too_long"]:
        print(f"[finebench] skip_long: skipped {len(skipped['too_long'])} utterance(s) over max_seconds "
              f"{max_seconds}, e.g. {skipped['too_long'][0]}", file=sys.stderr, flush=True)
    assert stats is not None  # set by the train split
    return {
        "arrays": None,
        "splits": counts,
        "manifest": {
            "input": {"kind": "asr_features", "n_mels": opt["n_mels"], "hop": opt["hop"], "n_fft": opt["n_fft"],
                      "sample_rate": sr, "mean": [float(v) for v in stats[0]], "std": [float(v) for v in stats[1]],
                      "vocab": vocab, "blank": 0, "waveform": bool(waveform)},
            "classes": vocab,
            "normaliser": NORMALISER,
            "source": source,
            "skipped": {"too_long": {"n": len(skipped["too_long"]), "max_seconds": max_seconds,
                                     "utterances": skipped["too_long"][:100]}} if skipped["too_long"] else {},
        },
    }


class ASRData:
    """Read side of the ``asr`` prepared form: memory-mapped features, labels and waveforms per split."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.manifest = json.loads((self.path / "manifest.json").read_text())
        self.input = self.manifest["input"]
        self.vocab = self.input["vocab"]
        self.mean = np.asarray(self.input["mean"], dtype=np.float32)
        self.std = np.asarray(self.input["std"], dtype=np.float32)
        self._cache: dict = {}

    def _split(self, split: str) -> dict:
        if split not in self._cache:
            try:
                self._cache[split] = {
                    "feats": np.load(self.path / f"{split}_feats.npy", mmap_mode="r"),
                    "labels": np.load(self.path / f"{split}_labels.npy", mmap_mode="r"),
                    "index": np.load(self.path / f"{split}_index.npy"),
                }
            except (OSError, ValueError) as exc:
                raise FinebenchError(f"{self.path}: split {split!r} cannot be read ({exc}) — prepare it again: remove "
                                     f"{self.path} and rerun the workflow") from None
        return self._cache[split]

    def count(self, split: str) -> int:
        return len(self._split(split)["index"])

    def index(self, split: str) -> np.ndarray:
        return self._split(split)["index"]

    def features(self, split: str, i: int) -> np.ndarray:
        """Utterance ``i``'s log-mel frames ``[frames, n_mels]``, standardised per band with the train split's
        statistics (float32)."""
        s = self._split(split)
        start, n = s["index"][i, 0], s["index"][i, 1]
        return (np.asarray(s["feats"][start : start + n], dtype=np.float32) - self.mean) / self.std

    def labels(self, split: str, i: int) -> np.ndarray:
        s = self._split(split)
        start, n = s["index"][i, 2], s["index"][i, 3]
        return np.asarray(s["labels"][start : start + n], dtype=np.int64)

    def waveform(self, split: str, i: int) -> np.ndarray:
        if not self.input.get("waveform"):
            raise FinebenchError(f"{self.path}: prepared without waveforms (tasks.<task>.waveform: false); hf: audio "
                                 f"models need them — set waveform: true")
        s = self._split(split)
        if "wav" not in s:
            s["wav"] = np.load(self.path / f"{split}_wav.npy", mmap_mode="r")
        start, n = s["index"][i, 4], s["index"][i, 5]
        return np.asarray(s["wav"][start : start + n], dtype=np.float32)

    def utterances(self, split: str):
        import pandas as pd

        return pd.read_csv(self.path / f"{split}_utterances.csv", dtype={"id": str, "speaker": str, "text": str},
                           keep_default_na=False)


__all__ = ["ALPHABET", "ASRData", "BLANK", "NORMALISER", "decode", "encode", "normalize_transcript", "vocabulary",
           "write_asr"]
