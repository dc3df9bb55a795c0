"""``wordnet_supersenses`` (text): WordNet 3.0 gloss -> lexicographer category ("supersense").

Reads the system WordNet database (Debian ``wordnet-base``: ``/usr/share/wordnet/data.noun`` and ``data.verb``;
``wordnet_dir`` option to point elsewhere). Each synset line of a ``data.*`` file carries its lexicographer file number
(field 2) and, after ``|``, its gloss. The input text is the gloss's definition (the part before the quoted usage
examples), the label its lexicographer file: noun.animal, noun.plant, noun.artifact, verb.motion ... (26 noun + 15
verb categories = 41 classes). A seeded, class-balanced sample (``per_class_cap`` synsets per class) is split by
synset — every synset lands in exactly one split.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np

from finebench.data.registry import DatasetSource, register
from finebench.data.text import encode_splits
from finebench.errors import FinebenchError

PACKAGE = "wordnet-base"
# Lexicographer file numbers -> names, as listed in WordNet's lexnames(5WN).
LEXNAMES = [
    "adj.all", "adj.pert", "adv.all", "noun.Tops", "noun.act", "noun.animal", "noun.artifact", "noun.attribute",
    "noun.body", "noun.cognition", "noun.communication", "noun.event", "noun.feeling", "noun.food", "noun.group",
    "noun.location", "noun.motive", "noun.object", "noun.person", "noun.phenomenon", "noun.plant", "noun.possession",
    "noun.process", "noun.quantity", "noun.relation", "noun.shape", "noun.state", "noun.substance", "noun.time",
    "verb.body", "verb.change", "verb.cognition", "verb.communication", "verb.competition", "verb.consumption",
    "verb.contact", "verb.creation", "verb.emotion", "verb.motion", "verb.perception", "verb.possession",
    "verb.social", "verb.stative", "verb.weather", "adj.ppl",
]
EXAMPLE = re.compile(r';?\s*"')


def read_data_file(path: Path) -> list[tuple[str, int, str]]:
    """(synset offset, lexicographer file number, definition) for every synset line of a WordNet data.* file."""
    rows = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for lineno, line in enumerate(f, 1):
            if line.startswith("  "):  # licence header lines start with two spaces
                continue
            head, sep, gloss = line.partition(" | ")
            fields = head.split()
            if not sep or len(fields) < 4 or not fields[1].isdigit():
                raise FinebenchError(f"{path}:{lineno}: not a WordNet data line "
                                     f"(expected 'offset lex_filenum ss_type ... | gloss')")
            definition = EXAMPLE.split(gloss.strip(), maxsplit=1)[0].strip().rstrip(";").strip()
            if definition:
                rows.append((fields[0], int(fields[1]), definition))
    return rows


def build(work: Path, opt: dict) -> dict:
    root = Path(opt["wordnet_dir"])
    files = [root / f"data.{pos}" for pos in opt["parts_of_speech"]]
    for f in files:
        if not f.is_file():
            raise FinebenchError(
                f"wordnet_supersenses: {f} not found — install the Debian package {PACKAGE} "
                f"(apt-get install -y {PACKAGE}) or set tasks.<task>.wordnet_dir to a WordNet 3.0 dict folder"
            )
    by_class: dict[str, list[str]] = {}
    for f in files:
        for _offset, lexnum, definition in read_data_file(f):
            by_class.setdefault(LEXNAMES[lexnum], []).append(definition)
    classes = sorted(c for c, v in by_class.items() if len(v) >= opt["min_per_class"])
    rng = np.random.default_rng(opt["seed"])
    texts: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    labels: dict[str, list[int]] = {"train": [], "val": [], "test": []}
    for label, cls in enumerate(classes):
        defs = by_class[cls]
        pick = rng.permutation(len(defs))[: opt["per_class_cap"]]
        n_val = max(1, round(len(pick) * opt["val_fraction"]))
        n_test = max(1, round(len(pick) * opt["test_fraction"]))
        parts = {"val": pick[:n_val], "test": pick[n_val : n_val + n_test], "train": pick[n_val + n_test :]}
        for split, idx in parts.items():
            texts[split] += [defs[i] for i in idx]
            labels[split] += [label] * len(idx)
    arrays, info, stats = encode_splits(work, texts, labels, opt)
    return {
        "arrays": arrays,
        "manifest": {
            "input": info,
            "classes": classes,
            "source": {
                "debian_package": PACKAGE,
                "files": {str(f): hashlib.sha256(f.read_bytes()).hexdigest() for f in files},
                "synsets_per_class_available": {c: len(by_class[c]) for c in classes},
                "dropped_classes": sorted(set(by_class) - set(classes)),
            },
            "token_stats": stats,
            "examples": [{"text": t, "label": classes[y]} for t, y in zip(texts["train"][:3], labels["train"][:3])],
        },
    }


register(
    DatasetSource(
        name="wordnet_supersenses",
        modality="text",
        description="WordNet 3.0 gloss -> lexicographer category (41 noun/verb supersenses), split by synset",
        citation="Miller (1995), WordNet: a lexical database for English. CACM 38(11)",
        defaults={
            "wordnet_dir": "/usr/share/wordnet",
            "parts_of_speech": ["noun", "verb"],
            "per_class_cap": 250,
            "min_per_class": 20,
            "val_fraction": 0.1,
            "test_fraction": 0.2,
            "vocab_size": 8000,
            "max_len": 48,
            "seed": 0,
        },
        build=build,
    )
)
