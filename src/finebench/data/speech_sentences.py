"""``speech_sentences_synth`` (speech, task type ``asr``): connected speech SYNTHESIZED with espeak-ng.

Not recordings: every utterance is a sequence of 2–6 words drawn from the 35 Speech Commands v2 words (the digits
zero–nine among them; the confusable pairs three/tree, bed/bird, off/up, dog/down, go/no, learn/left kept), spoken
as one sentence by espeak-ng through the synthesis, voice and speaker machinery of
finebench.data.speech_synth (a synthetic *speaker* is an accent x voice variant x pitch x pitch range x speaking
rate). Each utterance is resampled to 16 kHz, placed after a random lead-in of silence and mixed with white noise at
a random SNR. Speakers are split into train / val / test (no voice configuration in two splits), and no word
sequence of val or test is ever spoken in train. Prepared in the ``asr`` form (finebench.data.asr).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from finebench.data.asr import write_asr
from finebench.data.audio import resample
from finebench.data.registry import DatasetSource, register
from finebench.data.speech_synth import ACCENTS, VARIANTS, WORDS, make_speakers, synthesize
from finebench.errors import FinebenchError


def word_sequences(rng: np.random.Generator, n: int, words: list[str], lengths: tuple[int, int], avoid: set) -> list:
    """``n`` distinct word sequences (tuples) of ``lengths[0]..lengths[1]`` words, none in ``avoid``."""
    out: list[tuple[str, ...]] = []
    seen, tries = set(avoid), 0
    while len(out) < n:
        tries += 1
        if tries > 100 * n + 1000:
            raise FinebenchError(f"words_per_utterance {list(lengths)}: too few distinct word sequences of "
                                 f"{len(words)} words for {n} utterances")
        k = int(rng.integers(lengths[0], lengths[1] + 1))
        seq = tuple(words[i] for i in rng.integers(0, len(words), k))
        if seq not in seen:
            seen.add(seq)
            out.append(seq)
    return out


def build(work: Path, opt: dict) -> dict:
    words = opt["words"]
    unknown = [w for w in words if w not in WORDS]
    if unknown:
        hint = (" (YAML reads unquoted yes/no/on/off as booleans: quote them)"
                if any(isinstance(w, bool) for w in unknown) else "")
        raise FinebenchError(f"tasks.<task>.words: not Speech Commands v2 words: {unknown}{hint}")
    lo, hi = opt["words_per_utterance"]
    if not 1 <= lo <= hi:
        raise FinebenchError(f"tasks.<task>.words_per_utterance: {[lo, hi]} — two whole numbers, 1 <= first <= second")
    rng = np.random.default_rng(opt["seed"])
    sr = opt["sample_rate"]
    speakers = make_speakers(rng, opt["speakers"], opt)
    order = rng.permutation(len(speakers))
    n_val, n_test = round(len(order) * opt["val_fraction"]), round(len(order) * opt["test_fraction"])
    split_of = {speakers[idx]["id"]: "val" if j < n_val else ("test" if j < n_val + n_test else "train")
                for j, idx in enumerate(order)}
    per = opt["utterances_per_speaker"]
    n_of = {s: per * sum(v == s for v in split_of.values()) for s in ("train", "val", "test")}
    seqs = {"train": word_sequences(rng, n_of["train"], words, (lo, hi), set())}
    seqs["val"] = word_sequences(rng, n_of["val"], words, (lo, hi), set(seqs["train"]))
    seqs["test"] = word_sequences(rng, n_of["test"], words, (lo, hi), set(seqs["train"]) | set(seqs["val"]))
    taken = {s: iter(v) for s, v in seqs.items()}
    plan = [(spk, split_of[spk["id"]], next(taken[split_of[spk["id"]]])) for spk in speakers for _ in range(per)]
    requests = [(" ".join(seq), spk["voice"], spk["rate"], spk["pitch"], spk["range"], int(rng.integers(2**31)))
                for spk, _, seq in plan]
    waves, synth_rate, version = synthesize(requests)
    splits: dict[str, list[dict]] = {"train": [], "val": [], "test": []}
    count: dict[str, int] = {}  # utterances so far per speaker id
    for (spk, split, seq), raw in zip(plan, waves):
        wav = resample(raw.astype(np.float32) / 32768.0, synth_rate, sr)
        wav = wav / max(1e-4, float(np.abs(wav).max())) * rng.uniform(0.3, 0.9)
        lead, tail = (int(rng.uniform(*opt["silence_seconds"]) * sr) for _ in range(2))
        clip = np.concatenate([np.zeros(lead, np.float32), wav, np.zeros(tail, np.float32)])
        noise_power = float(np.mean(wav**2)) / 10 ** (rng.uniform(*opt["snr_db"]) / 10)
        clip += rng.normal(0, np.sqrt(noise_power), len(clip)).astype(np.float32)
        k = count[spk["id"]] = count.get(spk["id"], 0) + 1
        uid = f"{spk['id']}-{k:03d}"
        splits[split].append({"id": uid, "speaker": spk["id"], "text": " ".join(seq), "audio": clip,
                              "audio_rate": sr, "where": f"speech_sentences_synth utterance {uid}"})
    out = write_asr(work, splits, opt, {"library": "espeak-ng (via PyPI espeakng-loader, ctypes, synchronous mode)",
                                        "espeak_ng_version": version, "synth_sample_rate": synth_rate})
    out["manifest"].update({
        "speakers": {s: sorted(k for k, v in split_of.items() if v == s) for s in ("train", "val", "test")},
        "speaker_params": speakers,
        "unseen_sequences": True,  # no val/test word sequence occurs in train (checked by construction)
    })
    return out


register(DatasetSource(
    name="speech_sentences_synth",
    modality="speech",
    task_type="asr",
    description="SYNTHESIZED connected speech (espeak-ng): 2-6 of the 35 Speech Commands v2 words per utterance x "
                "synthetic speakers (accent x voice variant x pitch x rate), noise; split by speaker, test word "
                "sequences unseen in training",
    citation="Word list: Warden (2018), Speech Commands v2, arXiv:1804.03209. Audio: espeak-ng synthesis",
    data_note="SYNTHESIZED speech (espeak-ng)",
    defaults={
        "words": WORDS,
        "words_per_utterance": [2, 6],
        "speakers": 120,
        "utterances_per_speaker": 6,
        "accents": ACCENTS,
        "variants": VARIANTS,
        "pitch": [25, 75],
        "pitch_range": [20, 80],
        "rate": [130, 210],
        "snr_db": [10.0, 30.0],
        "silence_seconds": [0.05, 0.3],
        "val_fraction": 0.15,
        "test_fraction": 0.15,
        "sample_rate": 16000,
        "n_fft": 400,                   # 25 ms window
        "hop": 160,                     # 10 ms hop
        "n_mels": 40,
        "max_seconds": None,
        "skip_long": False,
        "waveform": True,
        "alphabet": None,               # None: a-z and the apostrophe (finebench.data.asr.ALPHABET)
        "seed": 0,
    },
    build=build,
))
