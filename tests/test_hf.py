"""arch: hf:<model id> — pretrained Hugging Face models for text and speech, offline: tiny randomly initialised models
saved with save_pretrained (tests/hf_tiny.py) stand in for hub checkpoints. No network, ever (HF_HUB_OFFLINE=1)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import yaml

os.environ["HF_HUB_OFFLINE"] = "1"  # before transformers/huggingface_hub are imported anywhere in this process

import official  # noqa: E402
from finebench import config as fbconfig  # noqa: E402
from finebench import protocol  # noqa: E402
from finebench.data import DATASETS, Prepared, prepare_task  # noqa: E402
from finebench.data.hf_tokens import cache_slug, load_tokenizer, tokenize_task, tokenizer_sha256, waveform_view  # noqa: E402
from finebench.errors import ConfigError, FinebenchError  # noqa: E402
from finebench.models import build_model, check_arch, default_family  # noqa: E402
from hf_tiny import save_tiny_ast, save_tiny_bert, save_tiny_wav2vec2  # noqa: E402

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    base = tmp_path_factory.mktemp("hf")
    return {"bert_a": save_tiny_bert(base / "bert_a"),
            "bert_b": save_tiny_bert(base / "bert_b", words=["a", "the", "small", "animal", "plant", "move"], seed=1),
            "w2v": save_tiny_wav2vec2(base / "w2v"), "ast": save_tiny_ast(base / "ast")}


@pytest.fixture
def wordnet_task(tmp_path, tiny_wordnet):
    opts = {**DATASETS["wordnet_supersenses"].defaults, "wordnet_dir": str(tiny_wordnet), "min_per_class": 5,
            "vocab_size": 200, "max_len": 16}
    prepare_task("wn", "wordnet_supersenses", opts, tmp_path / "wn")
    return tmp_path / "wn"


def test_config_accepts_hf_models_and_names_the_key_at_fault():
    check_arch("hf:distilbert-base-uncased", "text")
    check_arch("hf:facebook/wav2vec2-base", "speech")
    assert default_family("hf:roberta-base") == "transformer"
    with pytest.raises(ConfigError, match=r"models.x.arch: hf: models are for text and speech, not vision .*timm:"):
        check_arch("hf:google/vit-base-patch16-224", "vision", key="models.x.arch")
    with pytest.raises(ConfigError, match=r"models.x.arch: hf:'a b' is not a Hugging Face model id"):
        check_arch("hf:a b", "text", key="models.x.arch")


def test_fine_tuning_defaults_replace_from_scratch_values_but_the_model_entry_wins():
    cfg = {"experiment": "e", "seeds": [0], "training": {"lr": 1e-3, "epochs": 9},
           "tasks": {"wn": {"dataset": "wordnet_supersenses", "training": {"lr": 5e-3}}},
           "models": {"bert": {"modality": "text", "arch": "hf:bert-base-uncased"},
                      "bert_fast": {"modality": "text", "arch": "hf:bert-base-uncased", "training": {"lr": 5e-5}},
                      "cnn": {"modality": "text", "arch": "textcnn"}}}
    fbconfig.check(cfg)
    bert = fbconfig.resolve_spec(cfg, "wn", "bert", 0)
    assert bert["family"] == "transformer"
    assert (bert["training"]["lr"] == 2e-5 and bert["training"]["weight_decay"] == 0.01
            and bert["training"]["epochs"] == 9)
    assert fbconfig.resolve_spec(cfg, "wn", "bert_fast", 0)["training"]["lr"] == 5e-5
    assert fbconfig.resolve_spec(cfg, "wn", "cnn", 0)["training"]["lr"] == 5e-3  # from-scratch models untouched


def test_tokenisation_cache_is_keyed_by_tokenizer(tmp_path, tiny, wordnet_task):
    a = tokenize_task(wordnet_task, tmp_path / "tok_a", "tiny-bert",
                      {"pretrained_dir": str(tiny["bert_a"]), "max_length": 20})
    b = tokenize_task(wordnet_task, tmp_path / "tok_b", "tiny-bert",
                      {"pretrained_dir": str(tiny["bert_b"]), "max_length": 20})
    assert cache_slug("tiny-bert", {"pretrained_dir": str(tiny["bert_a"]), "max_length": 20}) != \
        cache_slug("tiny-bert", {"pretrained_dir": str(tiny["bert_b"]), "max_length": 20})
    assert a["input"]["tokenizer_sha256"] != b["input"]["tokenizer_sha256"]
    assert a["input"]["tokenizer_sha256"] == tokenizer_sha256(
        load_tokenizer("x", {"pretrained_dir": str(tiny["bert_a"])}))
    assert str(tiny["bert_a"]) in a["input"]["tokenizer"] and a["input"]["pad_id"] == 0 and a["input"]["max_len"] == 20
    xa, xb = np.load(tmp_path / "tok_a/train_x.npy"), np.load(tmp_path / "tok_b/train_x.npy")
    assert xa.shape == xb.shape == (63, 20) and not np.array_equal(xa, xb)
    np.testing.assert_array_equal(np.load(tmp_path / "tok_a/test_y.npy"), np.load(wordnet_task / "test_y.npy"))
    # ids are the tokenizer's own: [CLS] text [SEP] then padding, the first text decodes back to its words
    tok = load_tokenizer("x", {"pretrained_dir": str(tiny["bert_b"])})
    text = json.loads((wordnet_task / "train_text.jsonl").read_text().splitlines()[0])["text"]
    assert xb[0][0] == tok.cls_token_id and tok.sep_token_id in xb[0]
    assert tok.decode(xb[0], skip_special_tokens=True).replace(" ##", "").split()[:3] == text.lower().split()[:3]
    assert a["task"] == "wn" and a["classes"] == ["noun.animal", "noun.plant", "verb.motion"]  # the task's manifest
    # the finebench BPE form of the task stays as it was
    assert json.loads((wordnet_task / "manifest.json").read_text())["input"]["pad_id"] == 0
    # ids made by one tokenizer are never fed to a model of another
    with pytest.raises(FinebenchError, match="made by another tokenizer"):
        build_model("hf:tiny-bert", {"pretrained_dir": str(tiny["bert_b"])}, a["input"], 3)
    with pytest.raises(FinebenchError, match="finebench's own BPE tokenizer"):
        build_model("hf:tiny-bert", {"pretrained_dir": str(tiny["bert_a"])}, Prepared(wordnet_task).input, 3)


def test_text_model_masks_padding_and_trains(tmp_path, tiny, wordnet_task):
    m = tokenize_task(wordnet_task, tmp_path / "tok", "tiny-bert", {"pretrained_dir": str(tiny["bert_b"])})
    torch.manual_seed(0)
    model = build_model("hf:tiny-bert", {"pretrained_dir": str(tiny["bert_b"])}, m["input"], 3)
    data = Prepared(tmp_path / "tok")
    x, y = next(data.batches("train", 8, "cpu"))
    assert x.dtype == torch.long and x.shape[1] < 128  # trimmed to the batch's longest text
    model.eval()
    with torch.no_grad():
        ref = model(x)
        padded = model(torch.cat([x, torch.zeros(8, 7, dtype=torch.long)], 1))
    assert ref.shape == (8, 3)
    torch.testing.assert_close(padded, ref, rtol=1e-4, atol=1e-5)
    model.train()
    loss = torch.nn.functional.cross_entropy(model(x), y)
    loss.backward()
    assert model.net.bert.embeddings.word_embeddings.weight.grad.abs().sum() > 0


def test_layer_wise_lr_decay_reaches_the_optimizer(tmp_path, tiny, wordnet_task):
    from finebench.train import make_optimizer

    m = tokenize_task(wordnet_task, tmp_path / "tok", "tiny-bert", {"pretrained_dir": str(tiny["bert_a"])})
    t = {"lr": 1e-3, "weight_decay": 0.01, "optimizer": "adamw"}
    model = build_model("hf:tiny-bert", {"pretrained_dir": str(tiny["bert_a"]), "layer_decay": 0.5}, m["input"], 3)
    lr_of = {id(p): g["lr"] for g in make_optimizer(model, t).param_groups for p in g["params"]}
    bert = model.net.bert  # one encoder layer: head x1, layer 0 x0.5, embeddings x0.25
    assert lr_of[id(model.net.classifier.weight)] == lr_of[id(bert.pooler.dense.weight)] == 1e-3
    assert lr_of[id(bert.encoder.layer[0].attention.self.query.weight)] == 5e-4
    assert lr_of[id(bert.embeddings.word_embeddings.weight)] == 2.5e-4
    opt = make_optimizer(model, t)
    assert opt.param_groups[0]["lr"] == 1e-3  # the full-lr group first (the trainer logs the first group's lr)
    assert {g["weight_decay"] for g in opt.param_groups} == {0.0, 0.01}
    plain = build_model("hf:tiny-bert", {"pretrained_dir": str(tiny["bert_a"])}, m["input"], 3)
    assert {g["lr"] for g in make_optimizer(plain, t).param_groups} == {1e-3}  # off by default


def test_offline_without_a_folder_says_what_failed_and_how_to_fix_it(tmp_path, wordnet_task):
    with pytest.raises(FinebenchError) as err:
        tokenize_task(wordnet_task, tmp_path / "tok", "finebench-tests/no-such-model", {})
    msg = str(err.value)
    assert "could not load the tokenizer from the Hugging Face hub" in msg and "set `pretrained_dir: DIR`" in msg
    assert "save_pretrained(DIR)" in msg and not (tmp_path / "tok").exists()
    wave = {"kind": "waveform", "sample_rate": 16000, "samples": 16000}
    with pytest.raises(FinebenchError, match=r"hf:finebench-tests/no-such-model: could not load the feature extractor "
                                             r"from the Hugging Face hub.*set `pretrained_dir: DIR`"):
        build_model("hf:finebench-tests/no-such-model", {}, wave, 3)
    with pytest.raises(FinebenchError, match=r"pretrained_dir: .*nowhere holds no config.json .*save_pretrained"):
        build_model("hf:x", {"pretrained_dir": str(tmp_path / "nowhere")}, wave, 3)


def test_speech_prepared_form_keeps_the_raw_waveform(tmp_path):
    from finebench.data.speech import read_clip

    root, _ = official.speech_commands(tmp_path)
    m = prepare_task("sc", "speech_commands", {**DATASETS["speech_commands"].defaults, "root": str(root)},
                     tmp_path / "sc")
    assert m["waveform"] == {"file": "{split}_wav.npy", "sample_rate": 16000, "samples": 16000, "dtype": "float16"}
    wav = np.load(tmp_path / "sc/test_wav.npy", mmap_mode="r")
    assert isinstance(wav, np.memmap) and wav.dtype == np.float16 and wav.shape == (3, 16000)
    clip = read_clip(root / "bed/0e4d22f1_nohash_0.wav", 16000, 16000)  # the first test clip (sorted by word)
    np.testing.assert_allclose(wav[0].astype(np.float32), clip, atol=1e-3)
    view = waveform_view(tmp_path / "sc", tmp_path / "wave")
    assert view["input"]["kind"] == "waveform" and os.path.islink(tmp_path / "wave/test_x.npy")
    x, y = next(Prepared(tmp_path / "wave").batches("test", 2, "cpu"))
    assert x.dtype == torch.float32 and x.shape == (2, 16000)
    torch.testing.assert_close(x[0], torch.from_numpy(wav[0].astype(np.float32)))
    np.testing.assert_array_equal(y.numpy(), np.load(tmp_path / "sc/test_y.npy")[:2])
    with pytest.raises(FinebenchError, match="take the raw waveform"):
        build_model("hf:x", {}, Prepared(tmp_path / "sc").input, 3)


def test_wav2vec2_features_in_torch_equal_its_feature_extractor(tiny):
    info = {"kind": "waveform", "sample_rate": 16000, "samples": 16000}
    model = build_model("hf:tiny-w2v", {"pretrained_dir": str(tiny["w2v"])}, info, 4)
    assert model.torch_features
    assert not any(p.requires_grad for p in model.net.wav2vec2.feature_extractor.parameters())  # frozen by default
    wav = torch.randn(3, 16000) * 0.2 + 0.05
    ref = model.extractor(list(wav.numpy()), sampling_rate=16000, return_tensors="pt")["input_values"]
    torch.testing.assert_close(model.features(wav)["input_values"], ref, rtol=1e-4, atol=1e-4)
    out = model(wav)
    assert out.shape == (3, 4)
    out.sum().backward()
    unfrozen = build_model("hf:tiny-w2v", {"pretrained_dir": str(tiny["w2v"]), "freeze_feature_encoder": False},
                           info, 4)
    assert all(p.requires_grad for p in unfrozen.net.wav2vec2.feature_extractor.parameters())


def test_ast_takes_its_own_filterbanks(tiny):
    info = {"kind": "waveform", "sample_rate": 16000, "samples": 16000}
    model = build_model("hf:tiny-ast", {"pretrained_dir": str(tiny["ast"])}, info, 5)
    assert not model.torch_features
    feats = model.features(torch.randn(2, 16000) * 0.1)
    assert feats["input_values"].shape == (2, 100, 32)  # Kaldi fbank: 100 frames x 32 mel bins
    out = model(torch.randn(2, 16000) * 0.1)
    assert out.shape == (2, 5)
    out.sum().backward()
    with pytest.raises(FinebenchError, match="expects 16000 Hz audio, but the task is prepared at 8000 Hz"):
        build_model("hf:tiny-ast", {"pretrained_dir": str(tiny["ast"])}, {**info, "sample_rate": 8000}, 5)


def test_pretraining_is_in_the_protocol_and_flagged_against_from_scratch_references():
    from finebench.protocol import run_protocol

    manifest = {"input": {"kind": "tokens"}, "official_split": True}
    hub = run_protocol(manifest, {"arch": "hf:distilbert-base-uncased", "model_kwargs": {"max_length": 128}})
    folder = run_protocol(manifest, {"arch": "hf:distilbert-base-uncased",
                                     "model_kwargs": {"pretrained_dir": "/models/distilbert-local"}})
    scratch = run_protocol(manifest, {"arch": "transformer", "model_kwargs": {}})
    assert (hub["pretraining"], hub["pretrained_file"]) == ("hf_hub", None)
    assert (folder["pretraining"], folder["pretrained_file"]) == ("hf_folder", "distilbert-local")
    assert protocol.protocol_text(hub).endswith("pretraining: hf hub weights")
    assert protocol.protocol_text(folder).endswith("pretraining: hf folder distilbert-local")
    assert protocol.protocol_differences({"pretraining": "none"}, hub) == [
        "pretraining: published none, ours hf hub weights"]
    assert protocol.protocol_differences({"pretraining": "none"}, folder)
    assert protocol.protocol_differences({"pretraining": "BooksCorpus + English Wikipedia (BERT)"}, hub) == []
    assert protocol.protocol_differences({"pretraining": "BooksCorpus + English Wikipedia (BERT)"}, scratch)


def test_jobs_without_hf_models_never_import_transformers(repo):
    """Config checks, spec resolution, registry look-ups and a from-scratch model stay free of transformers."""
    code = (
        "import sys, yaml; from finebench import config; from finebench.models import build_model\n"
        f"cfg = yaml.safe_load(open({str(repo / 'config' / 'benchmark.yaml')!r}))\n"
        "config.check(cfg); [config.resolve_spec(cfg, t, m, s) for t, m, s in config.runs(config.with_defaults(cfg))]\n"
        "build_model('textcnn', {}, {'kind': 'tokens', 'vocab_size': 50, 'pad_id': 0, 'max_len': 8}, 3)\n"
        "assert 'hf:' in str(cfg['models']), 'benchmark.yaml should hold hf: models'\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'transformers'))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# ---------------------------------------------------------------------------------------------------- end to end


def snakemake(repo, workdir, configfile, *args):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "snakemake", "-s", str(repo / "Snakefile"), "--directory", str(workdir),
           "--cores", "2", "--configfile", str(configfile), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise AssertionError(f"snakemake failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}")
    return proc


def planned(proc) -> dict[str, int]:
    import re

    text = proc.stdout + proc.stderr
    if "Nothing to be done" in text:
        return {}
    block = text.split("Job stats:")[1].split("\n\n")[0]
    return {m[0]: int(m[1]) for m in re.findall(r"^(\w+)\s+(\d+)$", block, re.M) if m[0] != "total"}


def test_workflow_refuses_a_pretrained_dir_without_model_or_tokenizer_before_any_job(repo, tmp_path, tiny):
    cfg = yaml.safe_load((repo / "config" / "smoke.yaml").read_text())
    cfg["tasks"] = {"wordnet": cfg["tasks"]["wordnet"]}
    cfg["models"] = {"bert": {"modality": "text", "arch": "hf:tiny-bert", "pretrained_dir": str(tmp_path / "empty")}}
    (tmp_path / "empty").mkdir()
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(cfg))
    cmd = [sys.executable, "-m", "snakemake", "-s", str(repo / "Snakefile"), "--directory", str(tmp_path / "run"),
           "--cores", "1", "--configfile", str(path), "-n"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert proc.returncode != 0
    assert f"models.bert.pretrained_dir: {tmp_path / 'empty'} holds no config.json" in proc.stdout + proc.stderr
    # a model, no tokenizer
    (tmp_path / "empty" / "config.json").write_text((tiny["bert_a"] / "config.json").read_text())
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert proc.returncode != 0 and "holds no tokenizer" in proc.stdout + proc.stderr
    assert not (tmp_path / "run" / "results").exists()


@pytest.mark.slow
def test_workflow_with_pretrained_text_and_speech_models(repo, tmp_path, tiny):
    """A real Snakemake pass (smoke data): two hf: text models with different tokenizers, one hf: speech model and a
    from-scratch model; tokenisation cached per tokenizer, retokenised when a tokenizer changes."""
    cfg = yaml.safe_load((repo / "config" / "smoke.yaml").read_text())
    cfg["tasks"] = {k: cfg["tasks"][k] for k in ("wordnet", "speech")}
    cfg["seeds"] = [0]
    cfg["training"] = {"epochs": 1, "batch_size": 32, "max_train_batches": 4}
    cfg["models"] = {
        "textcnn": cfg["models"]["textcnn"],
        "bert_a": {"modality": "text", "arch": "hf:tiny-bert", "pretrained_dir": str(tiny["bert_a"]), "max_length": 32},
        "bert_b": {"modality": "text", "arch": "hf:tiny-bert", "pretrained_dir": str(tiny["bert_b"]), "max_length": 32},
        "w2v": {"modality": "speech", "arch": "hf:tiny-w2v", "pretrained_dir": str(tiny["w2v"])},
    }
    path = tmp_path / "hf.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    work = tmp_path / "run"
    snakemake(repo, work, path)

    caches = sorted(p for p in (work / "results/tokens/wordnet").iterdir())
    assert [p.name.split("-")[0] for p in caches] == ["bert_a", "bert_b"]
    manifests = [json.loads((p / "manifest.json").read_text()) for p in caches]
    assert manifests[0]["input"]["tokenizer_sha256"] != manifests[1]["input"]["tokenizer_sha256"]
    assert (work / "results/waveform/speech/manifest.json").is_file()

    runs = {(r["task"], r["model"]): r for r in
            (json.loads(p.read_text()) for p in (work / "results/runs").glob("*/*/seed0/metrics.json"))}
    assert set(runs) == {("wordnet", "textcnn"), ("wordnet", "bert_a"), ("wordnet", "bert_b"), ("speech", "w2v")}
    for key in (("wordnet", "bert_a"), ("wordnet", "bert_b"), ("speech", "w2v")):
        assert runs[key]["family"] == "transformer" and runs[key]["status"] == "FINISHED"
        assert runs[key]["protocol"]["pretraining"] == "hf_folder"
        assert runs[key]["protocol"]["pretrained_file"] == tiny[key[1]].name
        assert json.loads((work / f"results/runs/{key[0]}/{key[1]}/seed0/spec.json").read_text())["training"]["lr"] \
            == 2e-5 or key[0] == "speech"
    assert runs[("wordnet", "textcnn")]["protocol"]["pretraining"] == "none"
    board = (work / "results/tables/leaderboard.md").read_text()
    assert "hf:tiny-bert" in board and "hf:tiny-w2v" in board

    assert planned(snakemake(repo, work, path, "-n")) == {}
    # A changed tokenizer (same folder, new vocabulary) retokenises and retrains that model only.
    save_tiny_bert(tiny["bert_a"], words=["gloss", "forest"], seed=0)
    jobs = planned(snakemake(repo, work, path, "-n"))
    assert jobs.get("tokenize") == 1 and jobs.get("train_classification") == 1, jobs
    snakemake(repo, work, path)
    after = json.loads((caches[0] / "manifest.json").read_text())
    assert after["input"]["tokenizer_sha256"] != manifests[0]["input"]["tokenizer_sha256"]
    assert json.loads((caches[1] / "manifest.json").read_text()) == manifests[1]
