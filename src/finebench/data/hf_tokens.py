"""Inputs for pretrained Hugging Face models (``arch: hf:…``), derived from a prepared task without touching it.

- **Tokenisation cache, one per (task, tokenizer)**: ``results/tokens/{task}/{slug}/`` holds the task's texts
  (``results/data/{task}/{split}_text.jsonl``) encoded by the model's *own* tokenizer — ``{split}_x.npy`` int32
  ``[N, max_length]``, right-padded with the tokenizer's pad id, ``{split}_y.npy`` and a ``manifest.json`` (the task's,
  with ``input`` naming the tokenizer, its sha256 and pad id). ``slug`` names the tokenizer (hub id, or folder name +
  a hash of its path) and the length, so two tokenizers never share a cache; Snakemake's rule ``tokenize`` makes it,
  and reruns it when the tokenizer's files in ``pretrained_dir`` change. The finebench BPE ids in the prepared task
  stay for the from-scratch models.
- **Waveform view**: ``results/waveform/{task}/`` shows a prepared speech task's raw clips (``{split}_wav.npy``) as
  the ``{split}_x.npy`` of an input of kind ``waveform`` (relative symlinks, no copy), for hf: audio models.

    python -m finebench.data.hf_tokens tokenize --data results/data/sst5 --model distilbert-base-uncased \\
        --options '{"max_length": 128}' --out results/tokens/sst5/distilbert-base-uncased.L128
    python -m finebench.data.hf_tokens waveform-view --data results/data/speech_commands \\
        --out results/waveform/speech_commands
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
from pathlib import Path

import numpy as np

from finebench.errors import FinebenchError
from finebench.files import atomic_dir
from finebench.models.hf_load import DEFAULT_MAX_LENGTH, load_tokenizer, tokenizer_sha256  # noqa: F401 (re-exported)

SPLITS = ("train", "val", "test")
# Files that make up a saved tokenizer (whichever of them the folder holds are the tokenize rule's inputs).
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
                   "vocab.txt", "vocab.json", "merges.txt", "spiece.model", "sentencepiece.bpe.model",
                   "tokenizer.model")


def max_length_of(kwargs: dict) -> int:
    return int(kwargs.get("max_length") or DEFAULT_MAX_LENGTH)


def cache_slug(name: str, kwargs: dict) -> str:
    """The tokenisation cache's folder name for model ``name`` with options ``kwargs`` (no import, no I/O)."""
    folder = kwargs.get("pretrained_dir")
    if folder:
        path = str(Path(folder).expanduser().resolve())
        base = f"{Path(path).name}-{hashlib.sha256(path.encode()).hexdigest()[:8]}"
    else:
        base = name.replace("/", "--")
        if kwargs.get("revision"):
            base += f"@{kwargs['revision']}"
    return re.sub(r"[^A-Za-z0-9_.@-]", "_", base).replace("@", "-rev-") + f".L{max_length_of(kwargs)}"


def tokenizer_files(kwargs: dict) -> list[str]:
    """The tokenizer's files in ``pretrained_dir`` (empty for hub models); an error if the folder holds none."""
    folder = kwargs.get("pretrained_dir")
    if not folder:
        return []
    folder = Path(folder).expanduser()
    files = [str(folder / f) for f in TOKENIZER_FILES if (folder / f).is_file()]
    if not files:
        raise FinebenchError(f"pretrained_dir: {folder} holds no tokenizer "
                             f"(none of {', '.join(TOKENIZER_FILES[:6])} …) — "
                             f"save the model's tokenizer there with tokenizer.save_pretrained('{folder}')")
    return files


def encode(tok, texts: list[str], max_length: int, chunk: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """ids ``[N, max_length]`` int32, right-padded with the pad id; and each text's untruncated length in tokens."""
    ids = np.full((len(texts), max_length), tok.pad_token_id, dtype=np.int32)
    full = np.zeros(len(texts), dtype=np.int64)
    for start in range(0, len(texts), chunk):
        part = texts[start : start + chunk]
        enc = tok(part, truncation=True, max_length=max_length, padding="max_length", return_tensors="np")
        ids[start : start + len(part)] = enc["input_ids"]
        full[start : start + len(part)] = [len(x) for x in tok(part)["input_ids"]]
    return ids, full


def read_texts(prepared: Path, split: str) -> tuple[list[str], list[int]]:
    path = prepared / f"{split}_text.jsonl"
    if not path.is_file():
        raise FinebenchError(f"{prepared}: no {path.name} — not a prepared text task (hf: text models re-tokenise the "
                             f"raw texts that text tasks keep there)")
    rows = [json.loads(line) for line in path.open(encoding="utf-8")]
    return [r["text"] for r in rows], [int(r["label"]) for r in rows]


def tokenize_task(prepared: str | Path, out: str | Path, name: str, kwargs: dict) -> dict:
    """Encode a prepared text task's texts with ``name``'s tokenizer into ``out`` (atomically); returns the manifest."""
    from finebench.data.registry import array_records

    prepared, out = Path(prepared), Path(out)
    manifest = json.loads((prepared / "manifest.json").read_text())
    if manifest.get("modality") != "text":
        raise FinebenchError(f"{prepared}: task {manifest.get('task')!r} is {manifest.get('modality')}, not text")
    tok = load_tokenizer(name, kwargs)
    sha = tokenizer_sha256(tok)  # before encoding: encoding switches the backend's truncation/padding on
    length = max_length_of(kwargs)
    stats = {}
    with atomic_dir(out) as work:
        for split in SPLITS:
            texts, labels = read_texts(prepared, split)
            y = np.load(prepared / f"{split}_y.npy")
            if len(texts) != len(y) or not np.array_equal(np.asarray(labels), y):
                raise FinebenchError(f"{prepared}: {split}_text.jsonl and {split}_y.npy disagree — "
                                     f"prepare the task again")
            ids, full = encode(tok, texts, length)
            np.save(work / f"{split}_x.npy", ids)
            np.save(work / f"{split}_y.npy", y)
            stats[split] = {"mean_tokens": float(np.minimum(full, length).mean()),
                            "truncated": int((full > length).sum()), "longest": int(full.max())}
        source = kwargs.get("pretrained_dir") or name
        manifest = {
            **manifest,
            "input": {"kind": "tokens", "vocab_size": len(tok), "pad_id": int(tok.pad_token_id), "max_len": length,
                      "tokenizer": f"{type(tok).__name__} of {source}", "tokenizer_sha256": sha},
            "token_stats": stats,
            "tokenized_from": {"prepared": str(prepared), "model": name, "source": str(source),
                               "revision": kwargs.get("revision")},
            "arrays": array_records(work),
        }
        (work / "manifest.json").write_text(json.dumps(manifest, indent=2))
    truncated = sum(s["truncated"] for s in stats.values())
    if truncated:
        print(f"[finebench] {manifest['task']}: {truncated} texts longer than max_length {length} tokens were "
              f"truncated (longest {max(s['longest'] for s in stats.values())})", file=sys.stderr)
    return manifest


def waveform_view(prepared: str | Path, out: str | Path) -> dict:
    """``out`` = the prepared speech task with its raw clips as the input (kind ``waveform``), by relative symlinks."""
    from finebench.data.registry import array_records

    prepared, out = Path(prepared), Path(out)
    manifest = json.loads((prepared / "manifest.json").read_text())
    wave = manifest.get("waveform")
    if manifest.get("modality") != "speech" or not wave:
        raise FinebenchError(f"{prepared}: no raw waveforms in this prepared task ({{split}}_wav.npy) — "
                             f"hf: audio models need them: prepare the speech task again with this version of "
                             f"finebench")
    with atomic_dir(out) as work:
        for split in SPLITS:
            for ours, theirs in ((f"{split}_x.npy", wave["file"].format(split=split)),
                                 (f"{split}_y.npy", f"{split}_y.npy")):
                target = prepared / theirs
                if not target.is_file():
                    raise FinebenchError(f"{target}: missing — prepare the task again")
                os.symlink(os.path.relpath(target.resolve(), out.parent.resolve() / out.name), work / ours)
        view = {**manifest, "input": {"kind": "waveform", "sample_rate": wave["sample_rate"],
                                      "samples": wave["samples"], "dtype": wave["dtype"]}, "view_of": str(prepared),
                "arrays": array_records(work)}
        (work / "manifest.json").write_text(json.dumps(view, indent=2))
    return view


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m finebench.data.hf_tokens", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("tokenize", help="encode a prepared text task with a Hugging Face model's own tokenizer")
    s.add_argument("--data", required=True, help="prepared text task, e.g. results/data/sst5")
    s.add_argument("--model", required=True, help="the model id after hf:")
    s.add_argument("--options", default="{}",
                   help="the model entry's options as JSON (pretrained_dir, revision, max_length)")
    s.add_argument("--out", required=True)
    s = sub.add_parser("waveform-view", help="show a prepared speech task's raw waveforms as the model input")
    s.add_argument("--data", required=True)
    s.add_argument("--out", required=True)
    args = p.parse_args(argv)
    try:
        if args.command == "tokenize":
            m = tokenize_task(args.data, args.out, args.model, json.loads(args.options))
            print(f"[finebench] {m['task']}: tokenised with {m['input']['tokenizer']} (sha256 "
                  f"{m['input']['tokenizer_sha256'][:12]}) -> {args.out}", file=sys.stderr)
        else:
            waveform_view(args.data, args.out)
            print(f"[finebench] waveform view of {args.data} -> {args.out}", file=sys.stderr)
    except FinebenchError as exc:
        print(f"finebench {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
