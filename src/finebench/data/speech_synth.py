"""``speech_commands_synth`` (speech): the 35 Speech Commands v2 words, SYNTHESIZED with espeak-ng.

This is synthesized speech, not recordings: every clip is produced by the espeak-ng library that the PyPI package
``espeakng-loader`` ships (library + voice data), driven through ctypes in synchronous mode. Each synthetic *speaker* is
an English accent x voice variant x pitch x pitch range x speaking rate; each speaker says every word, then the clip is
resampled to 16 kHz, shifted at random inside a 1 s window and mixed with white noise at a random SNR. Speakers are
split into train / val / test, so no voice configuration is heard in two splits. Features: log-mel spectrograms,
computed once here. Confusable pairs (three/tree, bed/bird, off/up, dog/down, go/no, learn/left) make it fine-grained.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from pathlib import Path

import numpy as np

from finebench.data.audio import fit_length, log_mel, resample
from finebench.data.registry import DatasetSource, register
from finebench.errors import FinebenchError

WORDS = [
    "backward", "bed", "bird", "cat", "dog", "down", "eight", "five", "follow", "forward", "four", "go", "happy",
    "house", "learn", "left", "marvin", "nine", "no", "off", "on", "one", "right", "seven", "sheila", "six", "stop",
    "three", "tree", "two", "up", "visual", "wow", "yes", "zero",
]
ACCENTS = ["en-us", "en", "en-gb-x-rp", "en-gb-scotland", "en-029", "en-us-nyc", "en-gb-x-gbclan", "en-gb-x-gbcwmd"]
# Voice variants whose output is reproducible. Left out on purpose: f2, f3, f5, Alicia, victor — their breath noise
# differs from run to run even with a seeded rand() (measured with espeak-ng 1.52), which would break determinism.
VARIANTS = ["m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f4", "adam", "belinda", "david", "grandma", "iven",
            "linda", "max", "michel", "annie", "Andrea", "aunty", "anika", "ian", "norbert"]
AUDIO_OUTPUT_SYNCHRONOUS, INITIALIZE_DONT_EXIT = 0x02, 0x8000
RATE, PITCH, RANGE = 1, 3, 4


class Espeak:
    """Minimal ctypes binding: synchronous synthesis of one string to int16 samples at the library's rate."""

    _CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)

    def __init__(self):
        try:
            import espeakng_loader
        except ImportError as exc:
            raise FinebenchError("speech_commands_synth needs the PyPI package espeakng-loader "
                                 "(pip install espeakng-loader)") from exc
        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
                                     ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
        lib.espeak_Info.restype = ctypes.c_char_p
        data_parent = os.path.dirname(espeakng_loader.get_data_path())
        self.sample_rate = lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, data_parent.encode(),
                                                 INITIALIZE_DONT_EXIT)
        if self.sample_rate <= 0:
            raise FinebenchError(f"espeak-ng failed to initialise with data at {data_parent}")
        self.version = lib.espeak_Info(None).decode()
        self._chunks: list[np.ndarray] = []
        self._cb = self._CALLBACK(self._collect)  # keep a reference: ctypes callbacks must outlive their use
        lib.espeak_SetSynthCallback(self._cb)
        self.lib = lib
        # Breathy variants draw noise from libc's rand(): seeding it per utterance makes every clip reproducible.
        self.libc = ctypes.CDLL(ctypes.util.find_library("c"))

    def _collect(self, wav, n, events):
        if n > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        return 0

    def speak(self, text: str, voice: str, rate: int, pitch: int, pitch_range: int, seed: int = 1) -> np.ndarray:
        self.libc.srand(int(seed))
        if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise FinebenchError(f"espeak-ng has no voice {voice!r}")
        for param, value in ((RATE, rate), (PITCH, pitch), (RANGE, pitch_range)):
            self.lib.espeak_SetParameter(param, int(value), 0)
        self._chunks = []
        data = text.encode()
        if self.lib.espeak_Synth(data, len(data) + 1, 0, 0, 0, 0, None, None) != 0:
            raise FinebenchError(f"espeak-ng failed to synthesise {text!r} with voice {voice!r}")
        return np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)


def _synthesize(requests: list[tuple]) -> tuple[list[np.ndarray], int, str]:
    tts = Espeak()
    return [tts.speak(*r) for r in requests], tts.sample_rate, tts.version


def synthesize(requests: list[tuple]) -> tuple[list[np.ndarray], int, str]:
    """Synthesize (text, voice, rate, pitch, range, seed) requests in a fresh process.

    espeak-ng keeps synthesis state in process globals (an utterance's exact samples depend on what the same process
    synthesized before), so a fresh process per build — plus a seeded rand() per utterance — is what makes a dataset
    reproducible for its seed.
    """
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(_synthesize, (requests,))


def make_speakers(rng: np.random.Generator, n: int, opt: dict) -> list[dict]:
    speakers = []
    for i in range(n):
        speakers.append({
            "id": f"spk{i:03d}",
            "voice": f"{rng.choice(opt['accents'])}+{rng.choice(opt['variants'])}",
            "pitch": int(rng.integers(opt["pitch"][0], opt["pitch"][1] + 1)),
            "range": int(rng.integers(opt["pitch_range"][0], opt["pitch_range"][1] + 1)),
            "rate": int(rng.integers(opt["rate"][0], opt["rate"][1] + 1)),
        })
    return speakers


def build(work: Path, opt: dict) -> dict:
    import soundfile as sf

    words = opt["words"]
    unknown = [w for w in words if w not in WORDS]
    if unknown:
        hint = (" (YAML reads unquoted yes/no/on/off as booleans: quote them)"
                if any(isinstance(w, bool) for w in unknown) else "")
        raise FinebenchError(f"tasks.<task>.words: not Speech Commands v2 words: {unknown}{hint}")
    rng = np.random.default_rng(opt["seed"])
    sr, n_samples = opt["sample_rate"], int(opt["sample_rate"] * opt["clip_seconds"])
    speakers = make_speakers(rng, opt["speakers"], opt)
    order = rng.permutation(len(speakers))
    n_val, n_test = round(len(order) * opt["val_fraction"]), round(len(order) * opt["test_fraction"])
    split_of = {}
    for j, idx in enumerate(order):
        split_of[speakers[idx]["id"]] = "val" if j < n_val else ("test" if j < n_val + n_test else "train")
    clips: dict[str, list[np.ndarray]] = {"train": [], "val": [], "test": []}
    labels: dict[str, list[int]] = {"train": [], "val": [], "test": []}
    examples = work / "examples"
    examples.mkdir()
    requests = [(word, spk["voice"], spk["rate"], spk["pitch"], spk["range"], int(rng.integers(2**31)))
                for spk in speakers for word in words for _ in range(opt["repeats"])]
    synthesized, synth_rate, version = synthesize(requests)
    waves = iter(synthesized)
    for spk in speakers:
        split = split_of[spk["id"]]
        for label, word in enumerate(words):
            for _ in range(opt["repeats"]):
                wav = next(waves).astype(np.float32) / 32768.0
                wav = resample(wav, synth_rate, sr)
                wav = wav / max(1e-4, float(np.abs(wav).max())) * rng.uniform(0.3, 0.9)
                slack = n_samples - len(wav)
                offset = int(rng.integers(0, slack + 1)) if slack > 0 else -int(rng.integers(0, -slack + 1))
                clip = fit_length(wav, n_samples, offset)
                snr_db = rng.uniform(*opt["snr_db"])
                signal_power = float(np.mean(wav**2)) if len(wav) else 1e-8
                clip += rng.normal(0, np.sqrt(signal_power / 10 ** (snr_db / 10)), n_samples).astype(np.float32)
                clips[split].append(clip)
                labels[split].append(label)
                if spk is speakers[0] and word in ("three", "tree"):
                    sf.write(examples / f"{spk['id']}_{word}.wav", clip, sr)
    arrays, frames = {}, None
    for split in clips:
        # The raw clips too (float16 [N, samples]): pretrained audio models (hf:) take waveforms.
        np.save(work / f"{split}_wav.npy", np.stack(clips[split]).astype(np.float16))
        feats = log_mel(np.stack(clips[split]), sr, opt["n_fft"], opt["hop"], opt["n_mels"])
        arrays[split] = (feats, np.array(labels[split]))
        frames = feats.shape[-1]
    train = arrays["train"][0].astype(np.float32)
    return {
        "arrays": arrays,
        "manifest": {
            "input": {"kind": "spectrogram", "channels": 1, "n_mels": opt["n_mels"], "frames": frames,
                      "sample_rate": sr, "n_fft": opt["n_fft"], "hop": opt["hop"],
                      "mean": float(train.mean()), "std": float(train.std())},
            "waveform": {"file": "{split}_wav.npy", "sample_rate": sr, "samples": n_samples, "dtype": "float16"},
            "classes": list(words),
            "source": {"library": "espeak-ng (via PyPI espeakng-loader, ctypes, synchronous mode)",
                       "espeak_ng_version": version, "synth_sample_rate": synth_rate},
            "speakers": {s: sorted(k for k, v in split_of.items() if v == s) for s in ("train", "val", "test")},
            "speaker_params": speakers,
            "clips_per_word": {s: int(len(labels[s]) // len(words)) for s in labels},
        },
    }


register(
    DatasetSource(
        name="speech_commands_synth",
        modality="speech",
        description="SYNTHESIZED speech (espeak-ng): the 35 Speech Commands v2 words x synthetic speakers "
        "(accent x voice variant x pitch x rate), noise + time shift, 1 s at 16 kHz; split by speaker",
        citation="Word list: Warden (2018), Speech Commands v2, arXiv:1804.03209. Audio: espeak-ng synthesis",
        data_note="SYNTHESIZED speech (espeak-ng)",
        defaults={
            "words": WORDS,
            "speakers": 120,
            "repeats": 1,
            "accents": ACCENTS,
            "variants": VARIANTS,
            "pitch": [25, 75],
            "pitch_range": [20, 80],
            "rate": [120, 230],
            "snr_db": [5.0, 30.0],
            "val_fraction": 0.15,
            "test_fraction": 0.15,
            "sample_rate": 16000,
            "clip_seconds": 1.0,
            "n_fft": 480,                   # 30 ms window
            "hop": 320,                     # 20 ms hop -> 50 frames per 1 s clip
            "n_mels": 40,
            "seed": 0,
        },
        build=build,
    )
)
