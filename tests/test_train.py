import json

import pytest

from finebench import config
from finebench.data import DATASETS, prepare_task
from finebench.loader import spec_augment
from finebench.train import fit, lr_factor

TINY = {**DATASETS["typefaces"].defaults, "families": ["NimbusSans", "URWGothic"], "styles_per_family": 2,
        "vocabulary": 200, "train_per_class": 16, "val_per_class": 4, "test_per_class": 6}


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    out = tmp_path_factory.mktemp("data") / "tf"
    prepare_task("tf", "typefaces", TINY, out)
    return out


def spec(model="cnn", arch="small_cnn", seed=0, **kw):
    cfg = config.with_defaults({
        "experiment": "t", "seeds": [seed], "tasks": {"tf": {"dataset": "typefaces"}},
        "training": {"epochs": 2, "batch_size": 16, "lr": 0.003},
        "models": {model: {"family": "cnn", "modality": "vision", "arch": arch, "channels": [8, 16], **kw}},
    })
    return config.resolve_spec(cfg, "tf", model, seed)


def mlflow_run(experiment_file, run_id):
    from mlflow.tracking import MlflowClient

    info = json.loads(experiment_file.read_text())
    return MlflowClient(info["tracking_uri"]), MlflowClient(info["tracking_uri"]).get_run(run_id)


def test_fit_writes_outputs_and_logs_to_mlflow(tmp_path, tiny_data, experiment_file):
    m = fit(spec(), tiny_data, tmp_path / "run", experiment_file)
    out = tmp_path / "run"
    assert json.loads((out / "metrics.json").read_text()) == m
    assert m["status"] == "FINISHED" and 0 <= m["test_accuracy"] <= 1 and m["n_test"] == 24
    assert m["test_top5"] is None  # 4 classes: no top-5
    assert m["n_params"] > 0 and m["train_seconds"] > 0 and m["train_samples_per_s"] > 0
    assert m["chance_accuracy"] == 0.25
    assert (out / "history.csv").read_text().count("\n") == 3  # header + 2 epochs
    for name in ("confusion.csv", "confusion.svg", "spec.json"):
        assert (out / name).stat().st_size > 0
    # per-example test predictions in the prepared test order: the report's test-sample intervals and paired tests
    import numpy as np
    import pandas as pd

    pred = pd.read_csv(out / "predictions.csv")
    assert list(pred.columns) == ["index", "label", "prediction", "correct", "log_p_label"]
    assert list(pred["index"]) == list(range(24)) and list(pred["label"]) == list(np.load(tiny_data / "test_y.npy"))
    assert pred["correct"].mean() == m["test_accuracy"]
    assert (pred["correct"] == (pred["label"] == pred["prediction"])).all() and (pred["log_p_label"] <= 0).all()
    assert -pred["log_p_label"].mean() == pytest.approx(m["test_loss"], rel=1e-4)  # the test cross-entropy
    client, run = mlflow_run(experiment_file, m["mlflow_run_id"])
    assert run.info.status == "FINISHED" and run.info.run_name == "tf/cnn/seed0"
    assert run.info.experiment_id == json.loads(experiment_file.read_text())["experiment_id"]
    assert run.data.tags["family"] == "cnn" and run.data.tags["task"] == "tf" and run.data.tags["config_hash"]
    assert run.data.params["training.lr"] == "0.003"
    assert [h.step for h in client.get_metric_history(run.info.run_id, "val_accuracy")] == [1, 2]
    assert run.data.metrics["test_accuracy"] == pytest.approx(m["test_accuracy"])
    assert {a.path for a in client.list_artifacts(run.info.run_id)} >= {"history.csv", "confusion.svg", "spec.json"}
    # provenance: what produced the run, in metrics.json and as tags
    from importlib import metadata

    env = m["environment"]
    assert env["torch"] == metadata.version("torch") and env["timm"] == metadata.version("timm")
    assert env["mlflow"] == metadata.version("mlflow") and env["snakemake"] == metadata.version("snakemake")
    assert env["transformers"] == metadata.version("transformers") and env["finebench"]
    assert env["git_dirty"] in (True, False) and len(env["git_commit"]) == 40  # the tests run in a checkout
    assert env["cuda"] is None and env["cudnn"] is None  # on the CPU
    assert run.data.tags["env.torch"] == env["torch"] and run.data.tags["env.git_dirty"] == str(env["git_dirty"])


def test_a_training_job_imports_no_plotting_compiler_or_unused_model_library(tmp_path, tiny_data, experiment_file):
    """Every job pays its imports (benchmark: tests/benchmarks/startup.py): the job that the train rule runs must not
    pull in matplotlib (its confusion matrix is an SVG), torch's compiler (torch.compile not asked for; torch.optim
    itself imports torch._dynamo), or timm / torchvision / transformers for a built-in architecture."""
    import subprocess
    import sys

    code = ("import json, sys\n"
            "from finebench.cli import main\n"
            "main(sys.argv[1:])\n"
            "heavy = ('matplotlib', 'torch._inductor.compile_fx', 'timm', 'transformers', 'torchvision')\n"
            "print(json.dumps(sorted(m for m in heavy if m in sys.modules)))\n")
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-c", code, "train", "--spec", json.dumps(spec()), "--data", str(tiny_data),
                           "--experiment-file", str(experiment_file), "--out", str(out), "--device", "cpu",
                           "--no-progress"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (out / "metrics.json").is_file()
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == []


def test_same_seed_same_metrics_on_cpu(tmp_path, tiny_data, experiment_file):
    keys = ["test_accuracy", "test_macro_f1", "test_loss", "best_epoch", "best_val_accuracy"]
    a = fit(spec(seed=3), tiny_data, tmp_path / "a", experiment_file, device="cpu")
    b = fit(spec(seed=3), tiny_data, tmp_path / "b", experiment_file, device="cpu")
    c = fit(spec(seed=4), tiny_data, tmp_path / "c", experiment_file, device="cpu")
    assert {k: a[k] for k in keys} == {k: b[k] for k in keys}
    assert (tmp_path / "a" / "history.csv").read_text().split("\n")[1].split(",")[:4] == \
        (tmp_path / "b" / "history.csv").read_text().split("\n")[1].split(",")[:4]
    assert a["test_loss"] != c["test_loss"]


def test_a_model_that_cannot_be_built_fails_before_any_run_exists(tmp_path, tiny_data, experiment_file):
    s = spec(arch="crnn", stem=[4], hidden=2, cell="not-a-cell")
    del s["model_kwargs"]["channels"]  # only the bad cell is wrong, so the error below is the one this test is about
    with pytest.raises(KeyError, match="not-a-cell"):
        fit(s, tiny_data, tmp_path / "bad", experiment_file)
    assert not (tmp_path / "bad" / "metrics.json").exists()
    from mlflow.tracking import MlflowClient

    info = json.loads(experiment_file.read_text())
    # the model is built before the MLflow run is created: no run at all, so none left RUNNING
    assert MlflowClient(info["tracking_uri"]).search_runs([info["experiment_id"]]) == []


def test_failure_during_training_marks_run_failed(tmp_path, tiny_data, experiment_file, monkeypatch):
    import finebench.train as train_mod

    def boom(*a, **k):
        raise RuntimeError("boom in evaluation")

    monkeypatch.setattr(train_mod, "evaluate", boom)
    with pytest.raises(RuntimeError, match="boom"):
        fit(spec(), tiny_data, tmp_path / "x", experiment_file)
    from mlflow.tracking import MlflowClient

    info = json.loads(experiment_file.read_text())
    runs = MlflowClient(info["tracking_uri"]).search_runs([info["experiment_id"]])
    assert [r.info.status for r in runs] == ["FAILED"]
    assert runs[0].data.tags["error"] == "RuntimeError: boom in evaluation"
    assert not (tmp_path / "x" / "metrics.json").exists()


def test_interrupt_marks_run_killed(tmp_path, tiny_data, experiment_file, monkeypatch):
    import finebench.train as train_mod

    def interrupt(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(train_mod, "evaluate", interrupt)
    with pytest.raises(KeyboardInterrupt):
        fit(spec(), tiny_data, tmp_path / "x", experiment_file)
    from mlflow.tracking import MlflowClient

    info = json.loads(experiment_file.read_text())
    assert [r.info.status
            for r in MlflowClient(info["tracking_uri"]).search_runs([info["experiment_id"]])] == ["KILLED"]


@pytest.mark.parametrize("phase,key", [("train_one_epoch", "batch_size"), ("evaluate", "eval_batch_size")])
def test_out_of_memory_names_the_batch_size_to_lower(phase, key, tmp_path, tiny_data, experiment_file, monkeypatch):
    """An accelerator's out-of-memory error (raised here without one) becomes an error that names the key to lower
    and where to set it; the MLflow run ends FAILED with that message."""
    import torch
    from mlflow.tracking import MlflowClient

    import finebench.train as train_mod
    from finebench.errors import FinebenchError

    def oom(*a, **k):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 23.65 GiB total)\nmore")

    monkeypatch.setattr(train_mod, phase, oom)
    with pytest.raises(FinebenchError) as err:
        fit(spec(), tiny_data, tmp_path / "x", experiment_file)
    doing = "training" if key == "batch_size" else "evaluating"
    value = 16 if key == "batch_size" else 512
    assert str(err.value).startswith(f"tf/cnn/seed0: out of cpu memory while {doing} (CUDA out of memory. Tried to "
                                     f"allocate 2.00 GiB (GPU 0; 23.65 GiB total)) — lower training.{key} (now "
                                     f"{value}) where this run gets it: models.cnn.training, tasks.tf.training or the "
                                     f"top-level training:")
    info = json.loads(experiment_file.read_text())
    (run,) = MlflowClient(info["tracking_uri"]).search_runs([info["experiment_id"]])
    assert run.info.status == "FAILED" and f"lower training.{key}" in run.data.tags["error"]
    assert not (tmp_path / "x" / "metrics.json").exists()


def test_out_of_memory_in_the_final_evaluation_is_fixed_without_retraining(tmp_path, tiny_data, experiment_file,
                                                                            monkeypatch, capfd):
    """The remedy the error names — a smaller eval_batch_size — is another spec, but not another training: the rerun
    re-evaluates the trained run from its finished.pt instead of starting at epoch 1. Running out of memory in the
    cost measurement names the batch it measured."""
    import torch

    import finebench.train as train_mod
    from finebench.errors import FinebenchError

    real_evaluate = train_mod.evaluate

    def oom_on_test(job, split):
        if split == "test":
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 8.00 GiB")
        return real_evaluate(job, split)

    out = tmp_path / "run"
    monkeypatch.setattr(train_mod, "evaluate", oom_on_test)
    with pytest.raises(FinebenchError, match=r"while evaluating .* lower training\.eval_batch_size \(now 512\).*"
                                             r"the rerun keeps the trained epochs"):
        fit(spec(), tiny_data, out, experiment_file)
    assert (out / "finished.pt").is_file() and "epoch 2:" in capfd.readouterr().err
    monkeypatch.setattr(train_mod, "evaluate", real_evaluate)
    smaller = spec()
    smaller["training"]["eval_batch_size"] = 8
    m = fit(smaller, tiny_data, out, experiment_file)
    err = capfd.readouterr().err
    assert "trained earlier" in err and "epoch 1:" not in err
    assert m["test_accuracy"] == fit(spec(), tiny_data, tmp_path / "whole", experiment_file)["test_accuracy"]

    import finebench.cost as cost_mod

    def oom_cost(*a, **k):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 1.00 GiB")

    monkeypatch.setattr(cost_mod, "measure", oom_cost)
    with pytest.raises(FinebenchError, match=r"while measuring cost .* lower training\.eval_batch_size \(now 512, 24 "
                                             r"in this measurement\)"):
        fit(spec(), tiny_data, tmp_path / "cost", experiment_file)


def test_cosine_schedule_with_warmup():
    assert lr_factor(0, 100, 10, "cosine") == pytest.approx(0.1)
    assert lr_factor(10, 100, 10, "cosine") == pytest.approx(1.0)
    assert lr_factor(55, 100, 10, "cosine") == pytest.approx(0.5)
    assert lr_factor(99, 100, 0, "cosine") < 0.01
    assert lr_factor(99, 100, 0, "constant") == 1.0


def test_spec_augment_masks_bands_reproducibly():
    import torch

    x = torch.ones(4, 1, 40, 50)
    a = spec_augment(x, torch.Generator().manual_seed(0), freq_masks=1, freq_width=8, time_masks=1, time_width=10)
    b = spec_augment(x, torch.Generator().manual_seed(0), freq_masks=1, freq_width=8, time_masks=1, time_width=10)
    assert torch.equal(a, b) and a.shape == x.shape
    masked = (a == 0).float().mean().item()
    assert 0 < masked < 0.5


@pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true")  # class 6, on purpose
def test_macro_f1_and_class_average_match_sklearn():
    import numpy as np
    import torch
    from sklearn.metrics import balanced_accuracy_score, f1_score

    from finebench.tasks.classification.metrics import classification_metrics

    rng = np.random.default_rng(0)
    y = torch.from_numpy(rng.integers(0, 6, 200))
    logits = torch.from_numpy(rng.normal(size=(200, 7))).float()  # class 6 never true, sometimes predicted
    logits[:120, :] += torch.nn.functional.one_hot(y[:120], 7) * 3
    got, _ = classification_metrics(logits, y, 7)
    want = f1_score(y.numpy(), logits.argmax(1).numpy(), average="macro", labels=np.arange(7), zero_division=0)
    assert got["macro_f1"] == pytest.approx(want)
    # mean per-class accuracy over the classes present in the test set (class 6 never is)
    assert got["mean_class_accuracy"] == pytest.approx(balanced_accuracy_score(y.numpy(), logits.argmax(1).numpy()))
    assert got["mean_class_accuracy"] != pytest.approx(got["accuracy"])  # the classes are imbalanced here


def test_a_crash_mid_training_ends_the_run_failed_with_the_reason(tmp_path, tiny_data, experiment_file, monkeypatch):
    import finebench.train as train_mod

    real = train_mod.train_one_epoch

    def crash_in_epoch_2(job, epoch, show):
        if epoch == 2:
            raise RuntimeError("crash in epoch 2")
        return real(job, epoch, show)

    monkeypatch.setattr(train_mod, "train_one_epoch", crash_in_epoch_2)
    s = spec()
    s["training"]["checkpoint_minutes"] = 0  # a checkpoint after every epoch: epoch 1's is there to check
    with pytest.raises(RuntimeError, match="crash in epoch 2"):
        fit(s, tiny_data, tmp_path / "x", experiment_file)
    from mlflow.tracking import MlflowClient

    info = json.loads(experiment_file.read_text())
    client = MlflowClient(info["tracking_uri"])
    (run,) = client.search_runs([info["experiment_id"]])
    assert run.info.status == "FAILED" and run.data.tags["error"] == "RuntimeError: crash in epoch 2"
    assert [h.step for h in client.get_metric_history(run.info.run_id, "val_accuracy")] == [1]
    assert not (tmp_path / "x" / "metrics.json").exists() and (tmp_path / "x" / "checkpoint.pt").is_file()
