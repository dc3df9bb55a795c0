"""Speech-recognition runs through the one trainer: hypotheses.csv adds up to the WER in metrics.json, the tables
and MLflow carry WER / CER, an untrained model is at or above 100 % WER, and a run killed with SIGKILL resumes
to the same numbers as an uninterrupted one."""

import json
import signal
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from finebench import config
from finebench.data import DATASETS, prepare_task

TINY = {**DATASETS["speech_sentences_synth"].defaults, "speakers": 12, "utterances_per_speaker": 4,
        "val_fraction": 0.25, "test_fraction": 0.25}
MODELS = {"qn": {"family": "cnn", "modality": "speech", "arch": "quartznet", "channels": 32, "blocks": 2,
                 "repeats": 1},
          "conf": {"family": "transformer", "modality": "speech", "arch": "conformer", "dim": 32, "layers": 1,
                   "heads": 2}}


@pytest.fixture(scope="module")
def tiny_speech(tmp_path_factory):
    out = tmp_path_factory.mktemp("data") / "sent"
    prepare_task("sent", "speech_sentences_synth", TINY, out)
    return out


def spec(model="qn", epochs=2, seed=0, **training):
    cfg = config.with_defaults({
        "experiment": "t", "seeds": [seed], "tasks": {"sent": {"dataset": "speech_sentences_synth"}},
        "training": {"epochs": epochs, "batch_size": 8, "lr": 0.003, "weight_decay": 0.0, **training},
        "models": MODELS})
    return config.resolve_spec(cfg, "sent", model, seed)


def test_the_tiny_set_keeps_speakers_and_word_sequences_apart(tiny_speech):
    m = json.loads((tiny_speech / "manifest.json").read_text())
    assert m["task_type"] == "asr" and m["data_note"] == "SYNTHESIZED speech (espeak-ng)"
    assert [m["splits"][s]["n"] for s in ("train", "val", "test")] == [24, 12, 12]
    assert not set(m["speakers"]["train"]) & (set(m["speakers"]["val"]) | set(m["speakers"]["test"]))
    texts = {s: set(pd.read_csv(tiny_speech / f"{s}_utterances.csv")["text"]) for s in ("train", "val", "test")}
    assert not texts["train"] & (texts["val"] | texts["test"])  # no test sequence is ever heard in training
    words = {w for t in texts["train"] for w in t.split()}
    assert words <= set(DATASETS["speech_sentences_synth"].defaults["words"])
    assert all(2 <= len(t.split()) <= 6 for s in texts.values() for t in s)


UNTRAINED = {**MODELS, "ds2": {"family": "rnn", "modality": "speech", "arch": "ds2", "conv_channels": 4, "hidden": 32}}


@pytest.mark.parametrize("model", list(UNTRAINED))
def test_an_untrained_model_scores_no_better_than_no_output(tiny_speech, model):
    import torch

    from finebench.data.asr import ASRData
    from finebench.models import build_model
    from finebench.tasks.asr.objective import ASRLoader, SpeechRecognition

    torch.manual_seed(0)
    data = ASRData(tiny_speech)
    kw = {k: v for k, v in UNTRAINED[model].items() if k not in ("family", "modality", "arch")}
    net = build_model(UNTRAINED[model]["arch"], kw, data.input, len(data.vocab))
    ev = SpeechRecognition().evaluate(net, ASRLoader(data, "test", 8, "cpu"),
                                      lambda: torch.autocast("cpu", enabled=False))
    assert ev["wer"] >= 0.95 and ev["cer"] >= 0.9


@pytest.mark.slow
def test_asr_runs_write_hypotheses_that_add_up_and_are_tabled(tmp_path, tiny_speech, experiment_file):
    from mlflow.tracking import MlflowClient

    from finebench import report
    from finebench.train import fit

    files = []
    for model in MODELS:
        for seed in (0, 1):
            out = tmp_path / "runs" / model / f"seed{seed}"
            m = fit(spec(model, seed=seed), tiny_speech, out, experiment_file, device="cpu")
            h = pd.read_csv(out / "hypotheses.csv", keep_default_na=False)
            assert len(h) == m["n_test"] == 12 and list(h.columns[:4]) == ["id", "speaker", "reference", "hypothesis"]
            assert h["word_errors"].sum() / h["ref_words"].sum() == pytest.approx(m["test_wer"])
            assert h["char_errors"].sum() / h["ref_chars"].sum() == pytest.approx(m["test_cer"])
            assert m["task_type"] == "asr" and m["decoding"].startswith("greedy CTC")
            assert m["best_val_wer"] == min(pd.read_csv(out / "history.csv")["val_wer"])
            assert m["flops_per_sample"] > 0 and m["cost_audio_seconds"] > 0
            files.append(out / "metrics.json")
    tables = report.aggregate(files, tmp_path / "tables", tmp_path / "plots")
    board = pd.read_csv(tmp_path / "tables" / "leaderboard_asr.csv").set_index("model")
    assert set(board.index) == {"qn", "conf", "no output"}
    assert board.loc["no output", "test_wer_mean"] == 1.0 and board.loc["no output", "is_baseline"]
    runs = tables["runs"]
    for model in MODELS:
        assert board.loc[model, "test_wer_mean"] == pytest.approx(runs[runs.model == model]["test_wer"].mean())
        # per-utterance scores found
        assert board.loc[model, "n_seeds"] == 2 and board.loc[model, "test_wer_ci95_test"] >= 0
    best = min(MODELS, key=lambda m: board.loc[m, "test_wer_mean"])  # (two epochs of a tiny set: both may be at 100 %)
    other = next(m for m in MODELS if m != best)
    assert board.loc[best, "rank"] == 1.0 and board.loc[best, "is_best"] and board.loc[other, "tie_test"] == "paired"
    assert board.loc[other, "rank"] == (1.0 if board.loc[other, "test_wer_mean"] == board.loc[best, "test_wer_mean"]
                                        else 2.0)
    md = (tmp_path / "tables" / "leaderboard.md").read_text()
    assert "# Speech recognition" in md and "## sent [SYNTHESIZED speech (espeak-ng)]" in md and "no output" in md
    assert "| reference" in md  # transcripts per family
    assert ((tmp_path / "plots" / "sent_learning_curves.png").is_file()
            and (tmp_path / "plots" / "sent_pareto.png").is_file())
    info = json.loads(experiment_file.read_text())
    client = MlflowClient(info["tracking_uri"])
    run = client.get_run(json.loads(files[0].read_text())["mlflow_run_id"])
    assert [m.step for m in client.get_metric_history(run.info.run_id, "val_wer")] == [1, 2]
    assert "test_cer" in run.data.metrics and "val_cer" in run.data.metrics
    from finebench.tracking import log_summaries

    summary = log_summaries(experiment_file, tmp_path / "tables", tmp_path / "plots", tmp_path / "summary.json")
    srun = client.get_run(summary["summary_runs"]["sent"])
    tagged = srun.data.tags["best_model"]  # a best model (both may be tied at 100 % after two epochs)
    assert srun.info.run_name == "sent/summary" and board.loc[tagged, "is_best"]
    assert srun.data.metrics[f"{tagged}.test_wer_mean"] == pytest.approx(board.loc[tagged, "test_wer_mean"])


def train_cmd(s, data, exp, out):
    return [sys.executable, "-m", "finebench", "train", "--spec", json.dumps(s), "--data", str(data),
            "--experiment-file", str(exp), "--out", str(out), "--device", "cpu", "--no-progress"]


@pytest.mark.slow
def test_an_asr_run_killed_with_sigkill_resumes_to_the_same_numbers(tmp_path, tiny_speech, experiment_file):
    from test_resume import wait_for

    s = spec("qn", epochs=4, checkpoint_minutes=0)  # a checkpoint after every epoch, for the kill to land between
    ref = tmp_path / "ref"
    subprocess.run(train_cmd(s, tiny_speech, experiment_file, ref), check=True, capture_output=True)
    want = json.loads((ref / "metrics.json").read_text())
    out, log = tmp_path / "killed", tmp_path / "killed.log"
    with open(log, "w") as f:
        proc = subprocess.Popen(train_cmd(s, tiny_speech, experiment_file, out), stderr=f, stdout=f)
    wait_for(log, "sent/qn/seed0 epoch 2:", proc)  # its checkpoint is on disk before this line
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "metrics.json").exists() and (out / "checkpoint.pt").is_file()
    done = subprocess.run(train_cmd(s, tiny_speech, experiment_file, out), check=True, capture_output=True, text=True)
    assert "resuming after epoch 2" in done.stderr
    got = json.loads((out / "metrics.json").read_text())
    stable = ["test_wer", "test_cer", "test_loss", "best_epoch", "best_val_wer", "best_val_cer", "n_params"]
    assert {k: got[k] for k in stable} == {k: want[k] for k in stable}
    assert (out / "hypotheses.csv").read_text() == (ref / "hypotheses.csv").read_text()
    assert np.allclose(pd.read_csv(out / "history.csv")["val_wer"], pd.read_csv(ref / "history.csv")["val_wer"])
