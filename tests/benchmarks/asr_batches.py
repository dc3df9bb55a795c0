"""Padding of speech-recognition training batches on a LibriSpeech-like length distribution (#33 item 4): fixed
batches of utterances against batches capped by audio (training.batch_seconds), with and without length pools
(training.length_buckets). Measures and prints; asserts nothing.

    .venv/bin/python tests/benchmarks/asr_batches.py

The lengths are synthetic, shaped like LibriSpeech train-clean-100 (28,539 utterances, 100.6 h: a mean of 12.7 s;
segments cut at most 35 s, most of them 13-17 s): 70 % uniform in 13-17 s, 30 % uniform in 1.5-13 s, at 100
feature frames per second (hop 160 at 16 kHz). Padding ratio = padded frames / real frames over an epoch.
"""

from __future__ import annotations

import numpy as np

from finebench.tasks.asr.objective import form_batches, padding_ratio

FRAMES_PER_SECOND = 100
N = 28539


def seconds(rng, n: int = N) -> np.ndarray:
    """``n`` utterance durations in seconds, LibriSpeech-like (the module's docstring); also the synthetic speech
    recognition data of benchmark_time.py and gpu_check.sh."""
    long = rng.random(n) < 0.7
    return np.where(long, rng.uniform(13, 17, n), rng.uniform(1.5, 13, n))


def lengths(rng) -> np.ndarray:
    return np.round(seconds(rng) * FRAMES_PER_SECOND).astype(int)


def main() -> None:
    rng = np.random.default_rng(0)
    frames = lengths(rng)
    order = rng.permutation(N)
    print(f"{N} utterances, mean {frames.mean() / FRAMES_PER_SECOND:.1f} s, "
          f"{frames.sum() / FRAMES_PER_SECOND / 3600:.1f} h")
    print(f"{'batches':<44} {'count':>7} {'utt/batch':>10} {'padded s/batch':>15} {'padding':>8}")
    for label, size, buckets, cap_s in [
        ("32 utterances, no pools", 32, 1, None),
        ("32 utterances, pools of 16 batches", 32, 16, None),
        ("≤ 64 utterances and ≤ 480 s padded, pools 16", 64, 16, 480.0),
        ("≤ 64 utterances and ≤ 480 s padded, no pools", 64, 1, 480.0),
    ]:
        b = form_batches(order, frames, size, buckets, None if cap_s is None else cap_s * FRAMES_PER_SECOND)
        padded = np.mean([len(x) * frames[x].max() for x in b]) / FRAMES_PER_SECOND
        print(f"{label:<44} {len(b):>7} {N / len(b):>10.1f} {padded:>15.0f} {padding_ratio(b, frames):>7.3f}x")


if __name__ == "__main__":
    main()
