"""Speech recognition: characters from speech with CTC; WER ranks (lower is better), CER beside it.

objective.py: padded variable-length batches, CTC loss, greedy decoding, the best epoch by validation WER (ties:
CER), ``hypotheses.csv`` per run. metrics.py: WER / CER sclite-style with jiwer (errors summed over utterances ÷
reference words or characters). tables.py: its leaderboard (WER and CER with intervals, ranks, families, costs per
second of audio, a few reference / hypothesis pairs per family), the per-utterance errors for the report's paired
test; plots.py: validation WER per epoch, WER against cost. Data: finebench.data.asr (the prepared form, the
transcript normaliser); models: finebench.models.asr.
"""

from finebench.tasks.registry import Metric, TaskType, register

TASK = register(TaskType(
    name="asr",
    title="speech recognition",
    metrics=(
        Metric("test_wer", "WER %", "%", higher_is_better=False, fmt=".1f", scale=100.0, primary=True),
        Metric("test_cer", "CER %", "%", higher_is_better=False, fmt=".1f", scale=100.0, interval=True),
    ),
    objective="finebench.tasks.asr.objective:SpeechRecognition",
    tables="finebench.tasks.asr.tables:SpeechRecognitionTables",
    run_files=("hypotheses.csv",),
    table_files=("leaderboard_asr.csv", "families_asr.csv"),
    plot_kinds=("learning_curves", "pareto"),
    training={
        "batch_seconds": {"type": ["number", "null"], "exclusiveMinimum": 0, "description": (
            "Speech recognition: training batches capped by audio as well as by batch_size — a batch's padded "
            "length (its utterances × its longest, in seconds) stays within this (SpeechBrain's dynamic batching, "
            "ESPnet's batch bins), so short utterances come in larger batches and long ones in smaller; use it "
            "with length_buckets (e.g. 16) so that batches are formed among similar lengths. Padding on a "
            "LibriSpeech-like length distribution: tests/benchmarks/asr_batches.py. Default null: batch_size "
            "utterances per batch.")},
        "length_buckets": {"type": "integer", "minimum": 1, "description": (
            "Speech recognition: training batches are formed in pools of this many batches — each pool of the "
            "shuffled utterances sorted by length and cut into batches, the batches then shuffled — so a batch "
            "pads its utterances to lengths close to their own (default 1: batches straight from the shuffled "
            "order). Evaluation keeps the prepared order. A recipe choice, not only a speed-up: on the embedded "
            "task 16 cut the padded frames from 1.45x to 1.04x the real ones, but raised QuartzNet's WER from "
            "about 33 to about 75 % and lowered the Conformer's (docs/explanation/results.md).")},
    },
    hf_head=True,
))
