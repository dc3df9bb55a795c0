"""Text preparation shared by every text dataset: one tokenizer per task, fitted on the train split only.

``encode_splits`` fits a byte-pair-encoding tokenizer (HF ``tokenizers``) on the train texts, stores it as
``tokenizer.json`` beside the arrays, and encodes every split to int32 ``[N, max_len]`` with ``[PAD]`` = id 0, so every
text model of the task sees identical inputs. Raw texts are kept in ``{split}_text.jsonl`` for inspection and for
non-neural baselines (``python -m finebench baseline``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

PAD, UNK = "[PAD]", "[UNK]"


def fit_tokenizer(texts: list[str], vocab_size: int, min_frequency: int = 2):
    """BERT-style normalisation and pre-tokenisation, then BPE merges learnt within words.

    Plain BPE, not WordPiece: tokenizers' WordPiece trainer (and BPE with a continuing-subword prefix or an
    end-of-word suffix) numbers the prefixed pieces in hash-map order and breaks ties between equally frequent merges
    by those numbers, so the same texts give a different vocabulary from run to run (huggingface/tokenizers#1794,
    measured here: 9,278 vs 9,280 tokens on the WordNet glosses). Without prefixed pieces every id comes from the
    sorted alphabet or an earlier merge, and training is deterministic (tests/test_data.py checks it).
    """
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token=UNK))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True, strip_accents=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                  special_tokens=[PAD, UNK], show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer)
    assert tok.token_to_id(PAD) == 0
    return tok


def encode(tok, texts: list[str], max_len: int) -> np.ndarray:
    out = np.zeros((len(texts), max_len), dtype=np.int32)
    for i, enc in enumerate(tok.encode_batch(texts)):
        ids = enc.ids[:max_len]
        out[i, : len(ids)] = ids
    return out


def encode_splits(work: Path, texts: dict[str, list[str]], labels: dict[str, list[int]], opt: dict):
    """Fit on ``texts['train']`` only; write tokenizer + raw texts; return (arrays, input_info, stats)."""
    tok = fit_tokenizer(texts["train"], opt["vocab_size"])
    tok.save(str(work / "tokenizer.json"))
    arrays, stats = {}, {}
    for split, xs in texts.items():
        x = encode(tok, xs, opt["max_len"])
        arrays[split] = (x, np.asarray(labels[split]))
        lengths = (x != 0).sum(1)
        stats[split] = {"mean_tokens": float(lengths.mean()), "truncated": int((lengths == opt["max_len"]).sum())}
        with open(work / f"{split}_text.jsonl", "w") as f:
            for t, y in zip(xs, labels[split]):
                f.write(json.dumps({"text": t, "label": int(y)}) + "\n")
    info = {"kind": "tokens", "vocab_size": tok.get_vocab_size(), "pad_id": 0, "max_len": opt["max_len"],
            "tokenizer": "tokenizer.json (BPE, fitted on train only)"}
    return arrays, info, stats


def read_texts(prepared_dir: str | Path, split: str) -> tuple[list[str], list[int]]:
    rows = [json.loads(line) for line in open(Path(prepared_dir) / f"{split}_text.jsonl")]
    return [r["text"] for r in rows], [r["label"] for r in rows]
