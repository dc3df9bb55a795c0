"""End to end on real-dataset layouts: root: copies, a download through a mirror, and every bring-your-own format."""

import json

import pandas as pd
import pytest
import yaml

import official
from test_workflow import snakemake

pytestmark = pytest.mark.slow


def test_pipeline_on_roots_download_and_byo(repo, tmp_path):
    data = tmp_path / "data"
    cub_root, _ = official.cub(data)
    sst_root, _ = official.sst(data)
    sc_root, _ = official.speech_commands(data)
    trec_root, _ = official.trec(data)  # served through download.mirror (a local folder): exercises the download rule
    for c in ("cat", "dog"):
        for i in range(6):
            official.jpeg(data / "imgs" / c / f"{i}.jpg", i)
    for w in ("up", "down"):
        for i in range(6):
            official.wav(data / "audio" / w / f"{i}.wav", i, sr=22050)
    pd.DataFrame({"text": [f"good {i}" for i in range(8)] + [f"bad {i}" for i in range(8)],
                  "label": ["pos"] * 8 + ["neg"] * 8}).to_csv(data / "table.csv", index=False)
    small_img = {"image_size": 24, "resize": 28, "workers": 1}
    cfg = {
        "experiment": "real-e2e", "seeds": [0],
        "download": {"cache": str(tmp_path / "cache"), "mirror": str(trec_root), "lock": str(tmp_path / "lock.json")},
        "tasks": {
            "cub": {"dataset": "cub200", "root": str(cub_root), **small_img},
            "pics": {"dataset": "imagefolder", "root": str(data / "imgs"), **small_img},
            "sst": {"dataset": "sst5", "root": str(sst_root)},
            "trec": {"dataset": "trec50"},
            "table": {"dataset": "text_table", "path": str(data / "table.csv")},
            "commands": {"dataset": "speech_commands", "root": str(sc_root)},
            "sounds": {"dataset": "audiofolder", "root": str(data / "audio")},
        },
        "training": {"epochs": 1, "batch_size": 8},
        "models": {
            "cnn": {"family": "cnn", "modality": "vision", "arch": "small_cnn", "channels": [4, 8]},
            "textcnn": {"family": "cnn", "modality": "text", "arch": "textcnn", "embed_dim": 8, "filters": 4},
            "speech_cnn": {"family": "cnn", "modality": "speech", "arch": "small_cnn", "channels": [4, 8]},
        },
    }
    path = tmp_path / "real.yaml"
    path.write_text(yaml.safe_dump(cfg))
    snakemake(repo, tmp_path, path)
    board = pd.read_csv(tmp_path / "results" / "tables" / "leaderboard.csv")
    assert sorted(board["task"]) == sorted(cfg["tasks"])
    marker = json.loads((tmp_path / "cache" / "trec50.ready.json").read_text())
    assert (tmp_path / "cache" / "trec50" / "root" / "TREC_10.label").is_file() and marker["dataset"] == "trec50"
    assert len(json.loads((tmp_path / "lock.json").read_text())) == 2  # both TREC files recorded on first use
    refs = pd.read_csv(tmp_path / "results" / "tables" / "references.csv")
    assert set(refs["task"]) == {"sst", "cub"}
    notes = dict(zip(refs["reference_model"], refs["protocol_notes"]))
    assert "pretraining" in notes["B-CNN [D,M]"] and "pretraining" in notes["CNN-non-static"]  # ImageNet / word2vec
    # CUB's val comes out of train; SST has dev
    assert "carved" in notes["B-CNN [D,M]"] and "carved" not in notes["RNTN"]
    assert notes["RNTN"] == "data: our copy's counts differ from the official release"  # tiny fixture, not the release
    manifest = json.loads((tmp_path / "results" / "data" / "trec" / "manifest.json").read_text())
    assert manifest["splits"]["test"]["n"] == 3


def test_sr_benchmark_scored_on_two_test_sets_end_to_end(repo, tmp_path):
    """DIV2K + Set14 + Set5 in EDSR's layout (root:): one training per model and seed, both sets scored; the
    tables, the MLflow summaries and the report come out, one leaderboard per set, the plots once per task."""
    from mlflow.tracking import MlflowClient

    from test_superres import benchmark_root

    root = benchmark_root(tmp_path / "sr")
    cfg = {"experiment": "sr-sets", "seeds": [0],
           "tasks": {"div2k": {"dataset": "sr_benchmark", "root": str(root), "scale": 2, "test_set": ["Set14", "set5"],
                               "val_images": 1, "patch_size": 8, "patches_per_epoch": 16, "example_crop": 16}},
           "training": {"epochs": 1, "batch_size": 8, "weight_decay": 0.0},
           "models": {"edsr": {"modality": "vision", "arch": "edsr", "channels": 8, "blocks": 1}}}
    path = tmp_path / "sr.yaml"
    path.write_text(yaml.safe_dump(cfg))
    snakemake(repo, tmp_path, path)
    results = tmp_path / "results"
    assert json.loads((results / "data" / "div2k" / "manifest.json").read_text())["options"]["test_set"] == \
        ["set14", "set5"]  # one canonical form
    metrics = json.loads((results / "runs" / "div2k" / "edsr" / "seed0" / "metrics.json").read_text())
    assert metrics["sr_test_set"] == "set14" and set(metrics["more_tests"]) == {"set5"}
    board = pd.read_csv(results / "tables" / "leaderboard_sr.csv")
    assert sorted(set(board["task"])) == ["div2k@set14", "div2k@set5"] and len(board) == 4  # edsr + bicubic each
    assert sorted(p.name for p in (results / "plots").glob("div2k*")) == \
        ["div2k_learning_curves.png", "div2k_pareto.png", "div2k_sr_examples.png"]
    assert not list((results / "runs").rglob("*.pt"))
    client = MlflowClient(f"sqlite:///{results / 'mlflow.db'}")
    info = json.loads((results / "mlflow" / "experiment.json").read_text())
    names = sorted(r.info.run_name for r in client.search_runs([info["experiment_id"]]))
    assert names == ["div2k/edsr/seed0", "div2k@set14/summary", "div2k@set5/summary"]
    snakemake(repo, tmp_path, path, "--report", "results/report.html")
    assert "div2k@set5" in (results / "tables" / "leaderboard.html").read_text()
    assert (results / "report.html").stat().st_size > 10_000
