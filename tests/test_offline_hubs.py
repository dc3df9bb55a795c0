"""Compute nodes without internet (finebench.prefetch): pretrained weights and tokenizers are fetched once by the local
rule prefetch_weights (one job per weight) into {download.cache}/hub, and the jobs that read them run with the hubs
offline.

No network, ever: the "hub" is a Hugging Face cache written by hand in huggingface_hub's layout (blobs, snapshots,
refs) holding tests/hf_tiny.py's tiny BERT and a tiny timm ViT's weights; every process that loads from it runs with
HF_HUB_OFFLINE=1 and proxies that refuse every connection (finebench.prefetch.NO_NETWORK)."""

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from finebench import config as fbconfig
from finebench import prefetch
from finebench.config import load_yaml
from finebench.errors import FinebenchError
from hf_tiny import save_tiny_bert

torch = pytest.importorskip("torch")

VIT = "test_vit.r160_in1k"  # a ~0.4 M-parameter ViT that timm takes from the hub repo timm/test_vit.r160_in1k
RESNET = "test_resnet.r160_in1k"
BERT = "finebench-tests/tiny-bert"
WEIGHTS = [{"arch": f"timm:{VIT}", "models": ["vit"]},
           {"arch": f"hf:{BERT}", "models": ["bert"], "loads": ["AutoTokenizer", "AutoModel"]}]
COMMITS = {BERT: "a1" * 20, f"timm/{VIT}": "b2" * 20, f"timm/{RESNET}": "c3" * 20}


def put_in_hub(cache: Path, repo: str, folder: Path, commit: str) -> None:
    """``folder``'s files as huggingface_hub stores a download: blobs/<sha256>, snapshots/<commit>/<name> linking to
    them, refs/main naming the commit."""
    base = cache / ("models--" + repo.replace("/", "--"))
    snap = base / "snapshots" / commit
    snap.mkdir(parents=True)
    (base / "blobs").mkdir(exist_ok=True)
    (base / "refs").mkdir(exist_ok=True)
    for f in sorted(folder.iterdir()):
        data = f.read_bytes()
        blob = base / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        (snap / f.name).symlink_to(os.path.relpath(blob, snap))
    (base / "refs" / "main").write_text(commit)


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    """The tiny models' files: a BERT with its tokenizer, a timm ViT's state dict as model.safetensors."""
    import timm
    from safetensors.torch import save_file

    base = tmp_path_factory.mktemp("sources")
    save_tiny_bert(base / "bert", words=["animal", "plant", "move"])
    torch.manual_seed(0)
    for name, folder in ((VIT, "vit"), (RESNET, "resnet")):
        model = timm.create_model(name, pretrained=False)
        (base / folder).mkdir()
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, base / folder / "model.safetensors")
    return base


def fill_hub(root: Path, sources: Path) -> Path:
    """``root`` as prefetch_weights leaves it (the hub cache under root/huggingface/hub), marker aside."""
    cache = Path(prefetch.job_env(str(root))["HF_HUB_CACHE"])
    put_in_hub(cache, BERT, sources / "bert", COMMITS[BERT])
    put_in_hub(cache, f"timm/{VIT}", sources / "vit", COMMITS[f"timm/{VIT}"])
    put_in_hub(cache, f"timm/{RESNET}", sources / "resnet", COMMITS[f"timm/{RESNET}"])
    return root


def offline_env(**extra) -> dict:
    """This environment less any hub, cache or proxy setting, with the hubs offline and every connection refused."""
    drop = ("HF_", "TRANSFORMERS_", "TORCH_HOME", "NO_PROXY", "no_proxy")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    return {**env, "HF_HUB_OFFLINE": "1", **prefetch.NO_NETWORK, **extra}


def run_python(code: str, env: dict, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=600)


# ------------------------------------------------------------------------------------------------ what to fetch


def needed(cfg: dict) -> dict:
    cfg = fbconfig.with_defaults(cfg)
    return prefetch.weights_needed(cfg["models"], [m for _, m, _ in fbconfig.runs(cfg)])


def test_benchmark_needs_its_pretrained_weights_once_each_and_the_embedded_suite_none(repo):
    cfg = load_yaml((repo / "config" / "benchmark.yaml").read_text())
    weights = needed(cfg)
    text, speech = ["AutoTokenizer", "AutoModel"], ["AutoFeatureExtractor", "AutoModel"]
    assert {slug: (w["arch"], w["models"], w.get("loads")) for slug, w in weights.items()} == {
        "timm--resnet50.a1_in1k": ("timm:resnet50.a1_in1k", ["resnet50"], None),
        "timm--convnext_tiny.in12k_ft_in1k": ("timm:convnext_tiny.in12k_ft_in1k", ["convnext_tiny"], None),
        "timm--vit_small_patch16_224.augreg_in21k_ft_in1k":
            ("timm:vit_small_patch16_224.augreg_in21k_ft_in1k", ["vit_small"], None),
        "hf--distilbert-base-uncased": ("hf:distilbert-base-uncased", ["distilbert"], text),
        # one encoder, two heads (the keyword task's classifier, librispeech100's CTC): one weight
        "hf--facebook--wav2vec2-base": ("hf:facebook/wav2vec2-base", ["wav2vec2", "wav2vec2_ctc"], speech),
    }
    # local copies fetch nothing; a pinned revision is a weight of its own
    cfg["models"]["resnet50"]["pretrained_file"] = "/weights/resnet50.pth"
    cfg["models"]["distilbert"]["pretrained_dir"] = "/models/distilbert"
    cfg["models"]["wav2vec2_ctc"]["revision"] = "v2"
    weights = needed(cfg)
    assert set(weights) == {"timm--convnext_tiny.in12k_ft_in1k", "timm--vit_small_patch16_224.augreg_in21k_ft_in1k",
                            "hf--facebook--wav2vec2-base", "hf--facebook--wav2vec2-base-rev-v2"}
    assert weights["hf--facebook--wav2vec2-base-rev-v2"] == {"arch": "hf:facebook/wav2vec2-base", "revision": "v2",
                                                            "loads": speech, "models": ["wav2vec2_ctc"]}
    for name in ("config", "smoke"):
        assert needed(load_yaml((repo / "config" / f"{name}.yaml").read_text())) == {}


def test_jobs_run_with_the_hubs_offline_and_the_prefetched_cache():
    assert prefetch.shell_env(None) == "HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 "
    assert prefetch.shell_env("my downloads/hub") == (
        "HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_HUB_CACHE='my downloads/hub/huggingface/hub' "
        "TORCH_HOME='my downloads/hub/torch' ")
    assert prefetch.marker_path("results/downloads", "timm--x") == "results/downloads/hub/timm--x.prefetched.json"


# ------------------------------------------------------------------------------------------------ the rule's command


def test_prefetch_checks_every_weight_offline_and_writes_its_marker_last(tmp_path, sources):
    root = fill_hub(tmp_path / "hub", sources)
    markers = [root / f"timm--{VIT}.prefetched.json", root / "hf--finebench-tests--tiny-bert.prefetched.json"]
    cmd = [sys.executable, "-m", "finebench", "prefetch", "--hub-cache", str(root), "--weights"]

    # one weight the cache lacks: named, with its config model, and no marker
    missing = [*WEIGHTS, {"arch": "hf:finebench-tests/absent", "models": ["absent"], "loads": ["AutoTokenizer"]}]
    proc = subprocess.run([*cmd, json.dumps(missing)], env=offline_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "hf:finebench-tests/absent (models absent): could not load its tokenizer (OSError" in proc.stderr
    assert not any(m.exists() for m in markers)

    proc = subprocess.run([*cmd, json.dumps(WEIGHTS)], env=offline_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    vit, bert = (json.loads(m.read_text()) for m in markers)
    assert vit == {"arch": f"timm:{VIT}", "repo": f"timm/{VIT}", "commit": COMMITS[f"timm/{VIT}"],
                   "files": ["model.safetensors"], "checked": prefetch.CHECKED}
    assert (bert["arch"], bert["repo"], bert["commit"], bert["loads"]) == (
        f"hf:{BERT}", BERT, COMMITS[BERT], ["AutoTokenizer", "AutoModel"])
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"} <= set(bert["files"])
    assert f"{BERT} @ {COMMITS[BERT]}" in proc.stderr

    # fetched again, unchanged: the markers stay as they were (their age is what Snakemake compares)
    os.utime(markers[0], (1_000_000_000, 1_000_000_000))
    proc = subprocess.run([*cmd, json.dumps(WEIGHTS[:1])], env=offline_env(), capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0 and "(unchanged)" in proc.stderr, proc.stderr[-3000:]
    assert markers[0].stat().st_mtime == 1_000_000_000


def test_check_fails_on_a_snapshot_whose_blob_is_gone(tmp_path, sources):
    root = fill_hub(tmp_path / "hub", sources)
    cache = Path(prefetch.job_env(str(root))["HF_HUB_CACHE"])
    for blob in (cache / "models--finebench-tests--tiny-bert" / "blobs").iterdir():
        blob.unlink()
    proc = subprocess.run([sys.executable, "-m", "finebench", "prefetch", "--hub-cache", str(root), "--weights",
                           json.dumps(WEIGHTS[1:])], env=offline_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 2 and f"hf:{BERT}" in proc.stderr, proc.stderr[-3000:]
    assert not (root / "hf--finebench-tests--tiny-bert.prefetched.json").exists()


# ------------------------------------------------------------------------------------------------ the jobs

BUILD = """
import json, sys, torch
from safetensors.torch import load_file
from finebench.data import Prepared
from finebench.data.hf_tokens import tokenize_task
from finebench.errors import FinebenchError
from finebench.models import build_model

sources, wordnet, out = sys.argv[1:]
image = {"kind": "image", "channels": 3, "height": 32, "width": 32}
result = {}
try:  # the training job of a timm model with pretrained: true
    vit = build_model("timm:test_vit.r160_in1k", {"pretrained": True}, image, 5)
    saved = load_file(f"{sources}/vit/model.safetensors")
    result["vit_loaded"] = torch.equal(vit.blocks[0].attn.qkv.weight, saved["blocks.0.attn.qkv.weight"])
except FinebenchError as exc:
    result["vit_error"] = str(exc)
try:  # the tokenize job, then the training job of an hf: text model
    m = tokenize_task(wordnet, out, "finebench-tests/tiny-bert", {"max_length": 20})
    bert = build_model("hf:finebench-tests/tiny-bert", {}, m["input"], 3)
    saved = load_file(f"{sources}/bert/model.safetensors")
    key = "bert.encoder.layer.0.attention.self.query.weight"
    result["bert_loaded"] = torch.equal(bert.net.bert.encoder.layer[0].attention.self.query.weight, saved[key])
    x, y = next(Prepared(out).batches("train", 8, "cpu"))
    torch.nn.functional.cross_entropy(bert(x), y).backward()
    result["bert_trains"] = bool(bert.net.classifier.weight.grad.abs().sum() > 0)
except FinebenchError as exc:
    result["bert_error"] = str(exc)
print("RESULT " + json.dumps(result))
"""


@pytest.fixture
def wordnet_task(tmp_path, tiny_wordnet):
    from finebench.data import DATASETS, prepare_task

    opts = {**DATASETS["wordnet_supersenses"].defaults, "wordnet_dir": str(tiny_wordnet), "min_per_class": 5,
            "vocab_size": 200, "max_len": 16}
    prepare_task("wn", "wordnet_supersenses", opts, tmp_path / "wn")
    return tmp_path / "wn"


def build_in_job_env(root: Path, sources: Path, wordnet: Path, out: Path) -> dict:
    """Run BUILD as a job runs: the rule's environment (prefetch.job_env) and no network."""
    proc = run_python(BUILD, offline_env(**prefetch.job_env(str(root))), str(sources), str(wordnet), str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.split("RESULT ", 1)[1])


def test_jobs_build_and_train_from_the_prefetched_cache_with_the_network_blocked(tmp_path, sources, wordnet_task):
    result = build_in_job_env(fill_hub(tmp_path / "hub", sources), sources, wordnet_task, tmp_path / "tok")
    assert result == {"vit_loaded": True, "bert_loaded": True, "bert_trains": True}


def test_a_job_without_the_prefetched_files_names_the_model_and_the_command(tmp_path, sources, wordnet_task):
    root = tmp_path / "hub"
    root.mkdir()
    result = build_in_job_env(root, sources, wordnet_task, tmp_path / "tok")
    cache = f"{root}/huggingface/hub"
    vit, bert = result["vit_error"], result["bert_error"]
    assert vit.startswith(f"timm:{VIT}: could not fetch pretrained weights (LocalEntryNotFoundError")
    assert bert.startswith(f"hf:{BERT}: could not load the tokenizer from the Hugging Face hub and found no local copy")
    for msg in (vit, bert):
        assert f"Its files are not in the prefetched cache {cache}, and this job runs with the hubs offline" in msg
        assert "`python -m finebench prefetch --configfile CONFIG` (what the workflow's prefetch_weights jobs" in msg
        assert "Traceback" not in msg and "\n" not in msg
    assert not (tmp_path / "tok").exists()


def test_a_checkpoint_at_a_url_not_prefetched_fails_before_torch_hub_tries_the_network(tmp_path, monkeypatch):
    file = tmp_path / "torch" / "hub" / "checkpoints" / "old_0-abc.pth"
    source = {"url": "https://example.org/old_0-abc.pth", "file": str(file)}
    monkeypatch.setattr(prefetch, "timm_source", lambda name: source)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    prefetch.check_timm_offline("old")  # hubs online: torch.hub downloads it itself
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(FinebenchError, match=rf"timm:old: no pretrained weights at {re.escape(str(file))} .*Its files "
                                             rf"are not in the prefetched cache {re.escape(str(file.parent))}.*CONFIG"):
        prefetch.check_timm_offline("old")
    file.parent.mkdir(parents=True)
    file.write_bytes(b"weights")
    prefetch.check_timm_offline("old")


# ------------------------------------------------------------------------------------------------ the DAG


def dry_run(repo, workdir, configfile, *args, env=None):
    cmd = [sys.executable, "-m", "snakemake", "-s", str(repo / "Snakefile"), "--directory", str(workdir),
           "--cores", "1", *args, "--configfile", str(configfile)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    if proc.returncode != 0:
        raise AssertionError(f"snakemake failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}")
    return proc


def planned(proc) -> dict[str, int]:
    text = proc.stdout + proc.stderr
    if "Nothing to be done" in text:
        return {}
    block = text.split("Job stats:")[1].split("\n\n")[0]
    return {m[0]: int(m[1]) for m in re.findall(r"^(\w+)\s+(\d+)$", block, re.M) if m[0] != "total"}


def test_benchmark_dag_has_one_prefetch_job_per_weight_feeding_exactly_its_models_jobs(repo, tmp_path):
    dot = dry_run(repo, tmp_path, repo / "config" / "benchmark.yaml", "--dag").stdout
    labels = dict(re.findall(r'^\s*(\d+)\[label = "(.*?)"', dot, re.M))
    edges = re.findall(r"^\s*(\d+) -> (\d+)", dot, re.M)
    fetch = {n: re.search(r"weights: ([^\\]+)", label).group(1) for n, label in labels.items()
             if label.startswith("prefetch_weights")}
    cfg = fbconfig.with_defaults(load_yaml((repo / "config" / "benchmark.yaml").read_text()))
    weights = needed(cfg)
    assert sorted(fetch.values()) == sorted(weights) and len(fetch) == 5

    fed = {}  # weight -> the models of the training jobs it feeds, and how many tokenize jobs
    for a, b in edges:
        if a in fetch:
            label = labels[b]
            key = "tokenize" if label.startswith("tokenize") else re.search(r"model: ([^\\]+)", label).group(1)
            fed.setdefault(fetch[a], []).append(key)
    for slug, weight in weights.items():
        expected = [m for _, m, _ in fbconfig.runs(cfg) if m in weight["models"]]
        assert sorted(k for k in fed[slug] if k != "tokenize") == sorted(expected), slug
    assert fed["hf--distilbert-base-uncased"].count("tokenize") == 3  # sst5, trec50, goemotions
    assert sum(len(v) for v in fed.values()) == 51 + 3  # 3 vision x 4 tasks x 3 seeds, 3 text x 3, 2 x 1 speech x 3

    for name in ("config", "smoke"):  # the embedded suites: no such job, the same DAG as before
        jobs = planned(dry_run(repo, tmp_path / name, repo / "config" / f"{name}.yaml", "-n"))
        assert "prefetch_weights" not in jobs and "download" not in jobs, jobs


@pytest.mark.slow
def test_workflow_fetches_once_then_trains_offline(repo, tmp_path, sources):
    """A real Snakemake pass (smoke data) with a pretrained timm model, an hf: text model and one from scratch:
    prefetch_weights (here from a cache filled by hand, hubs offline) feeds the tokenize and training jobs of the
    pretrained two, which run with the hubs offline; a model added later trains alone."""
    cfg = yaml.safe_load((repo / "config" / "smoke.yaml").read_text())
    cfg["tasks"] = {k: cfg["tasks"][k] for k in ("typefaces", "wordnet")}
    cfg["seeds"] = [0]
    cfg["training"] = {"epochs": 1, "batch_size": 32, "max_train_batches": 4}
    cfg["download"] = {"cache": str(tmp_path / "downloads")}
    cfg["models"] = {
        "textcnn": cfg["models"]["textcnn"],
        "vit": {"family": "transformer", "modality": "vision", "arch": f"timm:{VIT}", "pretrained": True},
        "bert": {"modality": "text", "arch": f"hf:{BERT}", "max_length": 32},
    }
    path = tmp_path / "offline.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    hub = fill_hub(tmp_path / "downloads" / "hub", sources)
    work = tmp_path / "run"
    env = offline_env()  # the hand-filled cache is the "hub": prefetch_weights reads it with the hubs offline

    first = dry_run(repo, work, path, "-n", "-p", env=env)
    assert planned(first)["prefetch_weights"] == 2
    shells = re.findall(r"^(?:Shell command: )?(HF_HUB_OFFLINE=1 .*?) python -m finebench(?:\.data\.hf_tokens)? (\S+)",
                        first.stdout + first.stderr, re.M)
    assert len(shells) == 4  # tokenize + the three training jobs, each with the hubs offline
    with_cache = [cmd for env_, cmd in shells if f"HF_HUB_CACHE={hub}/huggingface/hub " in env_]
    assert sorted(with_cache) == ["tokenize", "train", "train"]  # textcnn's job reads no hub

    dry_run(repo, work, path, env=env)
    markers = {p.name: json.loads(p.read_text()) for p in hub.glob("*.prefetched.json")}
    assert {name: m["commit"] for name, m in markers.items()} == {
        f"timm--{VIT}.prefetched.json": COMMITS[f"timm/{VIT}"],
        "hf--finebench-tests--tiny-bert.prefetched.json": COMMITS[BERT]}
    runs = {(r["task"], r["model"]): r for r in
            (json.loads(p.read_text()) for p in (work / "results/runs").glob("*/*/seed0/metrics.json"))}
    assert {k: r["status"] for k, r in runs.items()} == {
        ("typefaces", "vit"): "FINISHED", ("wordnet", "bert"): "FINISHED", ("wordnet", "textcnn"): "FINISHED"}
    assert runs[("typefaces", "vit")]["protocol"]["pretraining"] == "timm_hub"
    assert runs[("wordnet", "bert")]["protocol"]["pretraining"] == "hf_hub"
    assert planned(dry_run(repo, work, path, "-n", env=env)) == {}
    log = (work / "results/logs/train/typefaces/vit/seed0.log").read_text()
    assert "Traceback" not in log

    # fetched again ahead of a run (same commits): nothing becomes stale
    proc = subprocess.run([sys.executable, "-m", "finebench", "prefetch", "--configfile", str(path)], env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0 and proc.stderr.count("(unchanged)") == 2, proc.stderr[-3000:]
    assert planned(dry_run(repo, work, path, "-n", env=env)) == {}

    # another model on the same weights trains alone; one on new weights fetches them first, and trains alone
    cfg["models"]["vit2"] = {**cfg["models"]["vit"], "drop_rate": 0.1}
    cfg["models"]["resnet"] = {"family": "cnn", "modality": "vision", "arch": f"timm:{RESNET}", "pretrained": True}
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    proc = dry_run(repo, work, path, "-n", env=env)
    assert planned(proc) == {"prefetch_weights": 1, "train_classification": 2, "aggregate": 1, "log_summary": 1,
                             "all": 1}, proc.stdout[-3000:]
    assert f"hub/timm--{RESNET}.prefetched.json" in proc.stdout
