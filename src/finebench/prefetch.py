"""Pretrained weights and tokenizers fetched once, where the datasets download, for jobs that run with the hubs offline.

Many clusters' compute nodes have no outbound network, and elsewhere a benchmark's jobs would all fetch the same
weights at once. So every pretrained weight a config needs — ``timm:`` models with ``pretrained: true`` (timm takes
almost all weights from the Hugging Face hub, the rest from a URL through ``torch.hub``) and ``hf:`` models (weights
plus tokenizer or feature extractor) — is fetched by the local rule ``prefetch_weights`` (workflow/rules/hf.smk), one
job per weight, into ``{download.cache}/hub``:

- ``hub/huggingface/hub`` — the Hugging Face hub cache (``HF_HUB_CACHE``; huggingface_hub's own layout, so
  transformers and timm find the files by themselves);
- ``hub/torch`` — ``TORCH_HOME``, for timm weights hosted at a URL (``hub/torch/hub/checkpoints``);
- ``hub/<weight>.prefetched.json`` — one marker per weight (``timm--resnet50.a1_in1k``,
  ``hf--facebook--wav2vec2-base``), written last and atomically once the weight has loaded again *offline* (hubs
  offline, network blocked): the repository, the commit hash its revision resolved to, the files. Rewritten only when
  that changes, so fetching again never makes a finished run stale, and a new commit retrains exactly that weight's
  runs.

Models with ``pretrained_file:`` (timm) or ``pretrained_dir:`` (hf) are local already: nothing to fetch. The training,
tuning and tokenize jobs of the others wait for their weight's marker and read the cache with ``HF_HUB_OFFLINE=1``
and ``TRANSFORMERS_OFFLINE=1`` (:func:`job_env`); one whose files are missing stops with :func:`missing_hint`'s fix,
not a hub traceback.

    python -m finebench prefetch --configfile config/benchmark.yaml     # all of a config's, ahead of a run
    python -m finebench prefetch --weights '[{"arch": "timm:resnet50.a1_in1k"}]' --hub-cache results/downloads/hub \\
        --out results/downloads/hub/timm--resnet50.a1_in1k.prefetched.json   # what the rule runs

The fetch and the check each run in a child process (``python -m finebench.prefetch load``) with the jobs'
environment: huggingface_hub reads its cache and offline settings once, when it is imported.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

from finebench.errors import FinebenchError

HUB_FOLDER = "hub"  # under download.cache
MARKER_SUFFIX = ".prefetched.json"  # {hub}/{weight}.prefetched.json, written last
# What an hf: model loads besides its weights, by modality (models/hf_modules.py). Its weights are checked with
# AutoModel: every head class (sequence or audio classification, CTC) reads the same config.json and weight files, so
# a weight's fetch does not depend on the task types it runs on.
HF_LOADS = {"text": ("AutoTokenizer", "AutoModel"), "speech": ("AutoFeatureExtractor", "AutoModel")}
HF_WHAT = {"AutoTokenizer": "tokenizer", "AutoFeatureExtractor": "feature extractor"}  # else "model"
# The check after the fetch must not reach the network: proxies that refuse every connection at once.
NO_NETWORK = {var: "http://127.0.0.1:9" for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy")}
FETCH_COMMAND = "python -m finebench prefetch --configfile CONFIG"
CHECKED = "loaded again with HF_HUB_OFFLINE=1 and the network blocked"


def hub_root(download_cache: str) -> str:
    return f"{download_cache}/{HUB_FOLDER}"


def weight_slug(arch: str, revision: str | None = None) -> str:
    """A weight's marker name: ``timm:resnet50.a1_in1k`` -> ``timm--resnet50.a1_in1k``, a pinned revision appended."""
    base = arch.replace(":", "--", 1).replace("/", "--") + (f"-rev-{revision}" if revision else "")
    return re.sub(r"[^A-Za-z0-9_.-]", "_", base)


def marker_path(download_cache: str, slug: str) -> str:
    return f"{hub_root(download_cache)}/{slug}{MARKER_SUFFIX}"


def job_env(root: str | None, offline: bool = True) -> dict[str, str]:
    """The environment of a job that reads the hubs: offline (as on a compute node without network), and, given the
    prefetched cache ``root``, its Hugging Face hub cache and torch.hub folder."""
    env = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"} if offline else {}
    if root:
        env.update({"HF_HUB_CACHE": f"{root}/huggingface/hub", "TORCH_HOME": f"{root}/torch"})
    return env


def shell_env(root: str | None) -> str:
    """:func:`job_env` as the assignments that prefix a rule's command (``HF_HUB_OFFLINE=1 … python -m …``)."""
    return "".join(f"{k}={shlex.quote(v)} " for k, v in job_env(root).items())


def hubs_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in {"1", "ON", "YES", "TRUE"}


def missing_hint(where: str | None = None) -> str:
    """For a job with the hubs offline: where it looked for a model's files (``where``, default the hub cache) and the
    command that fetches them; empty when the hubs are online (then the download itself failed)."""
    if not hubs_offline():
        return ""
    where = where or os.environ.get("HF_HUB_CACHE") or "the default Hugging Face cache (HF_HUB_CACHE unset)"
    return (f"Its files are not in the prefetched cache {where}, and this job runs with the hubs offline "
            f"(HF_HUB_OFFLINE=1: compute nodes may have no network). Fetch the config's pretrained weights and "
            f"tokenizers where the datasets download — `{FETCH_COMMAND}` (what the workflow's prefetch_weights jobs "
            f"run) — into a download.cache the jobs see, then rerun. ")


def needs_hub(arch: str, kwargs: dict) -> bool:
    """Whether a model starts from weights the jobs take from a hub: ``timm:`` with ``pretrained: true`` and no
    ``pretrained_file``, ``hf:`` without ``pretrained_dir``."""
    if arch.startswith("timm:"):
        return bool(kwargs.get("pretrained")) and not kwargs.get("pretrained_file")
    return arch.startswith("hf:") and not kwargs.get("pretrained_dir")


def model_weight(entry: dict) -> dict | None:
    """The hub weight a config's model entry starts from — ``{"arch", "revision" (hf:, if pinned), "loads"
    (hf:)}`` — or None (from scratch, or a local copy)."""
    if not needs_hub(entry["arch"], entry):
        return None
    if entry["arch"].startswith("timm:"):
        return {"arch": entry["arch"]}
    return {"arch": entry["arch"], **({"revision": entry["revision"]} if entry.get("revision") else {}),
            "loads": list(HF_LOADS[entry["modality"]])}


def weights_needed(models: dict[str, dict], used) -> dict[str, dict]:
    """Every hub weight that the ``used`` models (the config's run list's, in its order) start from, once each, by
    :func:`weight_slug`: the weight (what its prefetch job is given, so a model added later leaves the other jobs
    alone) and ``models``, the config's models that use it. ``models`` is the config's ``models:``. No import of torch,
    a hub or the config module (which imports this one's users)."""
    found: dict[str, dict] = {}
    for model in dict.fromkeys(used):
        weight = model_weight(models[model])
        if weight is None:
            continue
        entry = found.setdefault(weight_slug(weight["arch"], weight.get("revision")), {**weight, "models": []})
        for cls in weight.get("loads", ()):  # one hf: id as text and as speech: both
            if cls not in entry["loads"]:
                entry["loads"].append(cls)
        entry["models"].append(model)
    return found


# ------------------------------------------------------------------------------------------------ the fetch itself


def prefetch(weights: list[dict], root: str | Path, outs: list[str | Path] | None = None) -> list[dict]:
    """Fetch ``weights`` into ``root`` (online unless HF_HUB_OFFLINE is set here: then from what the cache holds),
    load each again offline with the network blocked, then write each one's marker (``outs``, default
    ``root/<slug>.prefetched.json``) — only where it changed. Returns the markers."""
    root = Path(root)
    outs = [Path(o) for o in outs] if outs else [root / f"{weight_slug(w['arch'], w.get('revision'))}{MARKER_SUFFIX}"
                                                 for w in weights]
    if len(outs) != len(weights):
        raise FinebenchError(f"prefetch: {len(weights)} weight(s) but {len(outs)} marker(s)")
    root.mkdir(parents=True, exist_ok=True)
    if not weights:
        print("[finebench] no pretrained weights to fetch", file=sys.stderr)
        return []
    _load(weights, {**os.environ, **job_env(str(root), offline=False)}, "fetch")
    own = {k: v for k, v in os.environ.items() if k not in ("NO_PROXY", "no_proxy")}  # no host exempt from NO_NETWORK
    records = _load(weights, {**own, **job_env(str(root)), **NO_NETWORK}, "check")  # as a job sees it
    markers = []
    for weight, record, out in zip(weights, records, outs):
        marker = {k: v for k, v in record.items() if k != "models"}
        written = write_if_changed(out, {**marker, "checked": CHECKED})
        print(f"[finebench] {weight['arch']}" + (f" ({', '.join(weight['models'])})" if weight.get("models") else "")
              + f": {marker.get('repo') or marker.get('url')} @ {marker.get('commit') or marker.get('file')}, "
              f"{len(marker['files'])} file(s) -> {out}{'' if written else ' (unchanged)'}", file=sys.stderr)
        markers.append(marker)
    return markers


def write_if_changed(path: str | Path, obj: dict) -> bool:
    """Write ``obj`` as JSON, atomically, unless ``path`` already holds it (its mtime is what Snakemake compares)."""
    from finebench.files import write_json_atomic

    path = Path(path)
    try:
        if json.loads(path.read_text()) == obj:
            return False
    except (OSError, ValueError):
        pass
    write_json_atomic(path, obj)
    return True


def _load(weights: list[dict], env: dict, step: str) -> list[dict]:
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        cmd = [sys.executable, "-m", "finebench.prefetch", "load", "--weights", json.dumps(weights), "--report",
               str(report)]
        proc = subprocess.run(cmd, env=env)
        if proc.returncode != 0:
            raise FinebenchError(
                f"prefetch: the {step} of the pretrained weights failed (the message above names the model)"
                + (": fetched, yet not loadable offline" if step == "check" else ""))
        return json.loads(report.read_text())


def load_all(weights: list[dict]) -> list[dict]:
    """Load every weight as the jobs do (the environment says where from and whether offline); one record each."""
    records = [{**item, **(_load_timm(item) if item["arch"].startswith("timm:") else _load_hf(item))}
               for item in weights]
    return [{k: v for k, v in r.items() if v is not None} for r in records]


def _users(item: dict) -> str:
    return f" (models {', '.join(item['models'])})" if item.get("models") else ""


def _load_timm(item: dict) -> dict:
    import timm

    name = item["arch"][len("timm:") :]
    try:
        timm.create_model(name, pretrained=True)
    except Exception as exc:
        raise FinebenchError(f"timm:{name}{_users(item)}: could not load its pretrained weights "
                             f"({type(exc).__name__}: {_first_line(exc)})") from exc
    source = timm_source(name)
    if source.get("repo"):
        return {**source, **_snapshot(source["repo"], source.get("revision"))}
    path = Path(source["file"])
    return {**source, "files": [path.name], "bytes": path.stat().st_size}


def _load_hf(item: dict) -> dict:
    """``from_pretrained`` of each class the jobs load (models/hf_load.py does it there, with the same revision)."""
    import transformers

    name = item["arch"][len("hf:") :]
    revision = {"revision": item["revision"]} if item.get("revision") else {}
    for cls in item["loads"]:
        try:
            getattr(transformers, cls).from_pretrained(name, **revision)
        except (OSError, ValueError, ImportError) as exc:
            raise FinebenchError(f"hf:{name}{_users(item)}: could not load its {HF_WHAT.get(cls, 'model')} "
                                 f"({type(exc).__name__}: {_first_line(exc)})") from exc
    return {"repo": name, "revision": item.get("revision"), **_snapshot(name, item.get("revision"))}


def timm_source(name: str) -> dict:
    """Where timm takes ``name``'s pretrained weights from (as timm's ``_resolve_pretrained_source`` decides with
    huggingface_hub installed): ``{"repo", "revision", "filename"}`` on the hub, or ``{"url", "file"}``."""
    from timm.models import get_pretrained_cfg

    cfg = get_pretrained_cfg(name)
    if cfg is None:
        raise FinebenchError(f"timm:{name}: timm knows no pretrained weights for it")
    if cfg.hf_hub_id:
        repo, _, revision = cfg.hf_hub_id.partition("@")
        return {"repo": repo, "revision": revision or None, "filename": cfg.hf_hub_filename}
    if cfg.url:
        from urllib.parse import urlparse

        import torch.hub

        # BUG?: timm's PretrainedCfg.url may also be a (url, file name) pair (timm's download_cached_file takes the
        # file name from it), which urlparse cannot read; no timm model of the pinned version gives one
        file = Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(cfg.url).path).name  # type: ignore[arg-type]
        return {"url": cfg.url, "file": str(file)}
    raise FinebenchError(f"timm:{name}: its pretrained weights are neither on the hub nor at a URL")


def check_timm_offline(name: str) -> None:
    """With the hubs offline, a timm checkpoint hosted at a URL (torch.hub, which knows no offline mode) that was not
    prefetched fails here by name instead of trying the network; hub-hosted ones fail fast by themselves."""
    if not hubs_offline():
        return
    source = timm_source(name)
    if source.get("url") and not Path(source["file"]).is_file():
        raise FinebenchError(f"timm:{name}: no pretrained weights at {source['file']} (torch.hub's cache). "
                             f"{missing_hint(str(Path(source['file']).parent))}".rstrip())


def _snapshot(repo: str, revision: str | None) -> dict:
    """The commit a repository's revision resolved to in HF_HUB_CACHE, and the files of that snapshot (each must be
    there: a snapshot links into blobs/)."""
    from huggingface_hub import constants
    from huggingface_hub.file_download import repo_folder_name

    folder = Path(constants.HF_HUB_CACHE) / repo_folder_name(repo_id=repo, repo_type="model")
    ref = folder / "refs" / (revision or "main")
    commit = ref.read_text().strip() if ref.is_file() else revision
    snap = folder / "snapshots" / str(commit)
    if not commit or not snap.is_dir():
        raise FinebenchError(f"{repo}: no snapshot of revision {revision or 'main'} in {folder}")
    files = sorted(str(p.relative_to(snap)) for p in snap.rglob("*") if not p.is_dir())
    broken = [f for f in files if not (snap / f).exists()]
    if broken:
        raise FinebenchError(f"{repo}@{commit}: {', '.join(broken)} link to missing blobs in {folder} — fetch again")
    return {"commit": commit, "files": files}


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else ""


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m finebench.prefetch", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("load", help="load pretrained weights as the jobs do, in this environment (a step of prefetch)")
    s.add_argument("--weights", required=True, help="JSON list (finebench.prefetch.weights_needed's values)")
    s.add_argument("--report", required=True, help="JSON file: what was loaded, from which commit, its files")
    args = p.parse_args(argv)
    try:
        Path(args.report).write_text(json.dumps(load_all(json.loads(args.weights)), indent=2))
    except FinebenchError as exc:
        print(f"finebench prefetch: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
