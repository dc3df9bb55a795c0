"""The accelerator's code path, exercised on the CPU: bf16 autocast (``training.precision``) through the whole trainer
for every modality and the super-resolution objective, and ``training.compile`` / ``channels_last``.

A GPU run uses bf16 autocast by default; no session so far had a GPU, so these tests are what keeps that path honest
between GPU checks (tests/benchmarks/gpu_check.sh): a half-precision tensor reaching numpy, a metric summed in bf16
or a checkpoint written from the compiled wrapper would fail here first.
"""

import json
import math
import shutil

import pytest

from finebench import config
from finebench.data import DATASETS, prepare_task
from finebench.train import fit

TYPEFACES = {**DATASETS["typefaces"].defaults, "families": ["NimbusSans", "URWGothic"], "styles_per_family": 2,
             "vocabulary": 200, "train_per_class": 16, "val_per_class": 4, "test_per_class": 6}
SPEECH = {**DATASETS["speech_commands_synth"].defaults, "words": ["three", "tree", "bed"], "speakers": 10,
          "val_fraction": 0.2, "test_fraction": 0.2}
PHOTOS = {**DATASETS["skimage_photos"].defaults, "train_images": ["astronaut", "coffee"], "val_images": ["chelsea"],
          "test_images": ["camera"], "max_side": 48, "patch_size": 8, "patches_per_epoch": 32, "example_crop": 16}


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """One tiny prepared task per modality, and a super-resolution one; built on first use."""
    root, made = tmp_path_factory.mktemp("prepared"), {}

    def get(name: str, tiny_wordnet=None):
        if name not in made:
            dataset, opts = {"vision": ("typefaces", TYPEFACES), "speech": ("speech_commands_synth", SPEECH),
                             "sr": ("skimage_photos", PHOTOS),
                             "text": ("wordnet_supersenses", {**DATASETS["wordnet_supersenses"].defaults,
                                                              "wordnet_dir": str(tiny_wordnet), "min_per_class": 5,
                                                              "vocab_size": 200, "max_len": 16})}[name]
            prepare_task(name, dataset, opts, root / name)
            made[name] = (dataset, root / name)
        return made[name]

    return get


def spec(task, dataset, modality, arch, training=None, **kw):
    family = {"small_cnn": "cnn", "transformer": "transformer", "crnn": "rnn", "edsr": "cnn"}[arch]
    cfg = config.with_defaults({
        "experiment": "t", "seeds": [0], "tasks": {task: {"dataset": dataset}},
        "training": {"epochs": 2, "batch_size": 16, "lr": 0.003, **(training or {})},
        "models": {arch: {"family": family, "modality": modality, "arch": arch, **kw}},
    })
    return config.resolve_spec(cfg, task, arch, 0)


CASES = {  # modality -> (arch, builder options)
    "vision": ("small_cnn", {"channels": [8, 16]}),
    "text": ("transformer", {"dim": 32, "depth": 1, "heads": 2}),
    "speech": ("crnn", {"stem": [8], "hidden": 16}),
    "sr": ("edsr", {"channels": 8, "blocks": 1}),
}


@pytest.mark.slow
@pytest.mark.parametrize("modality", list(CASES))
def test_bf16_autocast_runs_the_whole_trainer(modality, prepared, tiny_wordnet, tmp_path, experiment_file):
    """``training.precision: bf16`` on the CPU takes the GPU's default path: every metric finite, the precision
    recorded in metrics.json and as an MLflow tag, and the numbers differ from fp32 (autocast really was on)."""
    from mlflow.tracking import MlflowClient

    dataset, path = prepared(modality, tiny_wordnet)
    arch, kw = CASES[modality]
    results = {}
    for precision in ("bf16", "fp32"):
        s = spec(modality, dataset, "vision" if modality == "sr" else modality, arch, {"precision": precision}, **kw)
        results[precision] = fit(s, path, tmp_path / precision, experiment_file, device="cpu")
    bf16, fp32 = results["bf16"], results["fp32"]
    assert bf16["precision"] == "bf16" and fp32["precision"] == "fp32"
    loss = "test_loss"
    assert math.isfinite(bf16[loss]) and bf16["flops_per_sample"] > 0 and bf16["latency_ms_batch1"] > 0
    assert bf16[loss] != fp32[loss]
    stored = json.loads((tmp_path / "bf16" / "metrics.json").read_text())
    assert stored["precision"] == "bf16"
    tracking = json.loads(experiment_file.read_text())["tracking_uri"]
    assert MlflowClient(tracking).get_run(bf16["mlflow_run_id"]).data.tags["precision"] == "bf16"


def test_precision_auto_is_fp32_on_the_cpu_and_leaves_existing_specs_alone(prepared, tmp_path, experiment_file):
    """The default (key absent) and ``auto`` give the same run on the CPU; the key is not added to specs that do
    not set it, so upgrading finebench does not retrain every finished run (Snakemake reruns a job whose spec
    changed)."""
    dataset, path = prepared("vision")
    absent = spec("vision", dataset, "vision", "small_cnn", channels=[8, 16])
    assert "precision" not in absent["training"]
    auto = spec("vision", dataset, "vision", "small_cnn", {"precision": "auto"}, channels=[8, 16])
    assert auto == absent  # written out, the default is the same spec: same hash, nothing retrains
    a = fit(absent, path, tmp_path / "absent", experiment_file, device="cpu")
    b = fit(auto, path, tmp_path / "auto", experiment_file, device="cpu")
    assert a["precision"] == b["precision"] == "fp32"
    assert (a["test_loss"], a["test_accuracy"]) == (b["test_loss"], b["test_accuracy"])
    bf16 = spec("vision", dataset, "vision", "small_cnn", {"precision": "bf16"}, channels=[8, 16])
    assert config.spec_hash(bf16) != config.spec_hash(absent)


def test_auto_is_bf16_only_on_gpus_with_bf16_units(monkeypatch):
    """On a V100 or T4 (compute capability < 8.0) bf16 would be emulated, slower than fp32: auto picks fp32 there."""
    import torch

    from finebench.train import resolve_precision

    cuda, asked = torch.device("cuda"), []

    def supported(answer):
        def is_bf16_supported(including_emulation=True):
            asked.append(including_emulation)
            return answer or including_emulation  # emulation is always "supported"
        return is_bf16_supported

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", supported(False))
    assert resolve_precision(None, cuda) == resolve_precision("auto", cuda) == "fp32"
    assert resolve_precision("bf16", cuda) == "bf16" and resolve_precision("fp16", cuda) == "fp16"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", supported(True))
    assert resolve_precision(None, cuda) == "bf16"
    assert resolve_precision(None, torch.device("cpu")) == "fp32"
    assert set(asked) == {False}  # native bf16 units only


def test_an_unknown_precision_names_the_key():
    from finebench.errors import ConfigError

    cfg = {"experiment": "t", "seeds": [0], "tasks": {"tf": {"dataset": "typefaces"}},
           "training": {"precision": "half"},
           "models": {"m": {"family": "cnn", "modality": "vision", "arch": "small_cnn"}}}
    with pytest.raises(ConfigError, match=r"training\.precision.*half"):
        config.validate_schema(cfg)


@pytest.mark.slow
def test_compiled_training_counts_its_compile_apart_and_checkpoints_plain_weights(prepared, tmp_path,
                                                                                   experiment_file, capfd):
    """``training.compile`` (with ``channels_last``): the first epoch pays the compile; ``compile_seconds`` is that
    epoch minus the others' pace, throughput leaves it out, ``train_seconds`` keeps it. The checkpoints hold the
    plain module's weights (no ``_orig_mod.`` prefix of the compiled wrapper), so a rerun re-evaluates from them."""
    import pandas as pd
    import torch

    if not any(shutil.which(c) for c in ("g++", "clang++", "c++")):
        pytest.skip("no C++ compiler on PATH: torch.compile cannot build CPU kernels on this machine")
    dataset, path = prepared("vision")
    s = spec("vision", dataset, "vision", "small_cnn", {"compile": True, "channels_last": True, "epochs": 3},
             channels=[8, 16])
    out = tmp_path / "run"
    r = fit(s, path, out, experiment_file, device="cpu")
    hist = pd.read_csv(out / "history.csv")
    pace = hist["train_seconds"][1:].mean()
    assert hist["train_seconds"][0] > 2 * hist["train_seconds"][1:].max()  # compiling is slow, even for a tiny model
    assert r["compile_seconds"] == pytest.approx(hist["train_seconds"][0] - pace)
    assert r["train_seconds"] == pytest.approx(hist["train_seconds"].sum())
    assert r["train_samples_per_s"] == pytest.approx(3 * r["n_train"] / (r["train_seconds"] - r["compile_seconds"]))
    assert "s compiling" in capfd.readouterr().err

    weights = torch.load(out / "finished.pt", weights_only=True)["state"]["best_state"]
    assert weights and not any(k.startswith("_orig_mod.") for k in weights)
    (out / "metrics.json").unlink()
    again = fit(s, path, out, experiment_file, device="cpu")  # from finished.pt: evaluation only
    assert "trained earlier" in capfd.readouterr().err
    assert (again["test_accuracy"], again["compile_seconds"]) == (r["test_accuracy"], r["compile_seconds"])


def test_compile_without_a_compiler_fails_before_any_run_exists(prepared, tmp_path, experiment_file, monkeypatch):
    from mlflow.tracking import MlflowClient

    from finebench.errors import FinebenchError

    dataset, path = prepared("vision")
    s = spec("vision", dataset, "vision", "small_cnn", {"compile": True}, channels=[8, 16])
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.delenv("CXX", raising=False)
    with pytest.raises(FinebenchError, match=r"training\.compile: torch\.compile needs a C\+\+ compiler.*g\+\+"):
        fit(s, path, tmp_path / "run", experiment_file, device="cpu")
    info = json.loads(experiment_file.read_text())
    assert MlflowClient(info["tracking_uri"]).search_runs([info["experiment_id"]]) == []
    assert not (tmp_path / "run" / "metrics.json").exists()


@pytest.mark.slow
def test_fp16_scales_its_loss_checkpoints_the_scale_and_resumes_exactly(prepared, tmp_path, experiment_file,
                                                                        monkeypatch):
    """``precision: fp16`` (V100, T4): float16 autocast with a loss scaler, whose state goes into the checkpoint; a run
    interrupted after epoch 1 resumes to exactly the metrics of an uninterrupted one."""
    import torch

    import finebench.train as train_mod

    dataset, path = prepared("vision")
    s = spec("vision", dataset, "vision", "small_cnn", {"precision": "fp16", "epochs": 3, "grad_clip": 1.0,
                                                             "checkpoint_minutes": 0},
             channels=[8, 16])
    whole = fit(s, path, tmp_path / "whole", experiment_file, device="cpu")
    fp32 = fit(spec("vision", dataset, "vision", "small_cnn", {"epochs": 3, "grad_clip": 1.0}, channels=[8, 16]),
               path, tmp_path / "fp32", experiment_file, device="cpu")
    assert (whole["precision"] == "fp16" and math.isfinite(whole["test_loss"])
            and whole["test_loss"] != fp32["test_loss"])

    real, calls = train_mod.evaluate, []

    def interrupted_in_epoch_2(job, split):
        calls.append(split)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(job, split)

    out = tmp_path / "resumed"
    monkeypatch.setattr(train_mod, "evaluate", interrupted_in_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        fit(s, path, out, experiment_file, device="cpu")
    scaler = torch.load(out / "checkpoint.pt", weights_only=True)["scaler"]
    assert scaler["scale"] > 1 and scaler["_growth_tracker"] > 0  # the scaler really ran
    job = train_mod.set_up(s, path, "cpu")
    assert train_mod.load_checkpoint(job, out / "checkpoint.pt")
    assert job.scaler.state_dict() == scaler  # restored, not a fresh scaler (whose growth tracker is 0)
    monkeypatch.setattr(train_mod, "evaluate", real)
    resumed = fit(s, path, out, experiment_file, device="cpu")
    assert (resumed["test_loss"], resumed["test_accuracy"]) == (whole["test_loss"], whole["test_accuracy"])
