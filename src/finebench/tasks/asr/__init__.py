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
))
