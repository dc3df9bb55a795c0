"""hf: wav2vec2-style models fine-tuned with CTC on an asr task, offline: a tiny randomly initialised wav2vec2 saved
locally (tests/hf_tiny.py) stands in for a hub checkpoint."""

import os

os.environ["HF_HUB_OFFLINE"] = "1"  # before transformers/huggingface_hub are imported anywhere in this process

import json  # noqa: E402

import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from finebench import config  # noqa: E402
from finebench.data import DATASETS, prepare_task  # noqa: E402
from hf_tiny import save_tiny_wav2vec2  # noqa: E402

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

TINY = {**DATASETS["speech_sentences_synth"].defaults, "speakers": 8, "utterances_per_speaker": 3,
        "val_fraction": 0.25, "test_fraction": 0.25}


@pytest.fixture(scope="module")
def w2v_and_data(tmp_path_factory):
    base = tmp_path_factory.mktemp("asr_hf")
    prepare_task("sent", "speech_sentences_synth", TINY, base / "sent")
    return save_tiny_wav2vec2(base / "w2v"), base / "sent"


def test_an_hf_speech_model_gets_a_ctc_head_on_asr_tasks_and_a_classifier_on_keyword_tasks(w2v_and_data):
    from finebench.data.asr import ASRData
    from finebench.models import build_model, solves
    from finebench.tasks.asr.objective import ASRLoader

    folder, data_dir = w2v_and_data
    assert solves("hf:tiny/w2v", "asr") and solves("hf:tiny/w2v", "classification") and not solves("hf:x", "superres")
    data = ASRData(data_dir)
    model = build_model("hf:tiny/w2v", {"pretrained_dir": str(folder)}, data.input, len(data.vocab))
    assert model.takes_waveform and model.net.lm_head.out_features == len(data.vocab) == 29
    x, y = next(iter(ASRLoader(data, "test", 3, "cpu", waveform=True)))
    assert x.kind == "wav" and x.values.shape[1] == int(x.lengths.max())  # 16 kHz samples, padded
    logits, lengths = model(x)
    assert logits.shape[:2] == (3, int(lengths.max())) and logits.shape[2] == 29
    assert lengths.tolist() == model.output_lengths(x.lengths).tolist()  # two convs of stride 4: ~samples / 16
    assert all(abs(int(n) - int(s) / 16) <= 2 for n, s in zip(lengths, x.lengths))


def test_an_hf_ctc_run_trains_scores_and_writes_hypotheses_offline(w2v_and_data, tmp_path, experiment_file):
    from finebench.train import fit

    folder, data_dir = w2v_and_data
    cfg = config.with_defaults({
        "experiment": "t", "seeds": [0], "tasks": {"sent": {"dataset": "speech_sentences_synth"}},
        "training": {"epochs": 2, "batch_size": 4},
        "models": {"w2v": {"modality": "speech", "arch": "hf:tiny/w2v", "pretrained_dir": str(folder),
                           "training": {"lr": 1e-3}}}})
    config.check(cfg)
    assert config.task_models(cfg, "sent") == ["w2v"]
    spec = config.resolve_spec(cfg, "sent", "w2v", 0)
    m = fit(spec, data_dir, tmp_path / "run", experiment_file, device="cpu")
    assert m["task_type"] == "asr" and m["family"] == "transformer" and m["protocol"]["pretraining"] == "hf_folder"
    h = pd.read_csv(tmp_path / "run" / "hypotheses.csv", keep_default_na=False)
    assert len(h) == m["n_test"] == 6
    assert h["word_errors"].sum() / h["ref_words"].sum() == pytest.approx(m["test_wer"])
    hist = pd.read_csv(tmp_path / "run" / "history.csv")
    assert len(hist) == 2 and hist["train_loss"].notna().all() and (hist["train_loss"] > 0).all()
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["flops_per_sample"] > 0
