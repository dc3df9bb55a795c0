"""Real text datasets (official files, official splits) and ``text_table`` (bring your own).

Layouts read (``root:``):
- ``sst5``: the folder holding ``trees/{train,dev,test}.txt`` (PTB trees); the label is the root node's (0-4), the
  text the tree's leaves (-LRB-/-RRB- restored to brackets)
- ``trec50``: the folder with ``train_5500.label`` and ``TREC_10.label`` (latin-1, ``COARSE:fine question`` lines);
  labels are the 50 fine classes (``granularity: coarse`` for the 6 coarse ones); val carved from train
- ``goemotions``: the folder with ``train.tsv`` / ``dev.tsv`` / ``test.tsv`` (text, comma-separated label ids, id) and
  ``emotions.txt``; only single-label examples are kept (multi-label ones are dropped and counted in the manifest)
- ``text_table``: one csv / tsv / jsonl file (``path``, ``encoding`` utf-8) with ``text_column`` and ``label_column``
  (and optionally ``split_column`` with train/val/test); missing splits are carved from train. An empty label cell, an
  empty text cell (unless ``drop_empty_text: true``) or a class too small for the splits (unless ``min_per_class: N``
  drops classes with fewer than N rows) is an error naming the file and rows; what was dropped is in the manifest's
  ``skipped``

Partial or edited copies of the releases are read as vision.py describes (the helpers are shared): classes without an
example are left out and the rest renumbered (names kept), blank lines / CRLF / a byte-order mark / trailing spaces
are ignored, TREC labels differing only in case are one class, a TREC class with a single training question keeps it
in train; a root label beyond 0-4, a GoEmotions label id beyond emotions.txt or a malformed line is an error naming
the file and line.
"""

from __future__ import annotations

import re
from pathlib import Path

from finebench.data.download import Remote
from finebench.data.layout import CopyFindings, examples, list_lines, name_index, name_key, need, root_of
from finebench.data.registry import SPLITS, DatasetSource, carve_splits, drop_rare_classes, register
from finebench.data.text import encode_splits
from finebench.errors import FinebenchError

TEXT_DEFAULTS = {"root": None, "vocab_size": 16000, "max_len": 64, "val_fraction": 0.1, "test_fraction": 0.2, "seed": 0}
SST_CLASSES = ["very negative", "negative", "neutral", "positive", "very positive"]
PTB_LEAF = re.compile(r"\(\d+ ([^()\s]+)\)")
PTB_ESCAPES = {"-LRB-": "(", "-RRB-": ")", "-LSB-": "[", "-RSB-": "]", "-LCB-": "{", "-RCB-": "}"}


def finish(work: Path, records: dict[str, list], classes: list[str], opt: dict, source: dict,
           carved: dict | None = None) -> dict:
    if carved is None:
        records, carved = carve_splits(records, opt, classes)
    texts = {s: [t for t, _ in records[s]] for s in SPLITS}
    labels = {s: [lab for _, lab in records[s]] for s in SPLITS}
    arrays, info, stats = encode_splits(work, texts, labels, opt)
    return {"arrays": arrays, "manifest": {"input": info, "classes": classes, "carved_splits": carved,
                                          "token_stats": stats, "source": source}}


def parse_ptb(line: str, path: Path, lineno: int) -> tuple[str, int]:
    m = re.match(r"\s*\((\d) ", line)
    leaves = PTB_LEAF.findall(line)
    if not m or not leaves:
        raise FinebenchError(f"{path}:{lineno}: not a PTB sentiment tree")
    if int(m.group(1)) >= len(SST_CLASSES):
        raise FinebenchError(f"{path}:{lineno}: root label {m.group(1)} is not one of SST-5's 0-4")
    return " ".join(PTB_ESCAPES.get(w, w) for w in leaves), int(m.group(1))


def build_sst5(work: Path, opt: dict) -> dict:
    trees = root_of(opt, "sst5") / "trees"
    found = CopyFindings("sst5")
    records = {}
    for split, fname in (("train", "train.txt"), ("val", "dev.txt"), ("test", "test.txt")):
        path = trees / fname
        records[split] = [parse_ptb(line, path, i) for i, line in list_lines(path, f"SST PTB trees ({fname})")]
        if not records[split]:
            raise FinebenchError(f"{path}: holds no tree")
    records, classes = found.present_classes(records, SST_CLASSES, "of SST-5")
    return finish(work, records, classes, opt, found.source({"layout": "SST PTB trees", "root": str(trees.parent)}))


def build_trec(work: Path, opt: dict) -> dict:
    root = root_of(opt, "trec50")
    found = CopyFindings("trec50")
    raw: dict[str, list[tuple[str, str]]] = {}  # split: [(question, label)]
    spelling: dict[str, str] = {}  # name_key -> the first spelling met (train's)
    respelt: dict[str, str] = {}  # spelling -> where it was met
    for split, fname in (("train", "train_5500.label"), ("test", "TREC_10.label")):
        rows = []
        for i, line in list_lines(root / fname, "a TREC .label file", encoding="latin-1"):
            parts = line.split(None, 1)
            if len(parts) != 2 or ":" not in parts[0]:
                raise FinebenchError(f"{root / fname}:{i}: expected 'COARSE:fine question', got {line[:60]!r}")
            written = parts[0] if opt["granularity"] == "fine" else parts[0].split(":")[0]
            label = spelling.setdefault(name_key(written), written)
            if label != written:
                respelt.setdefault(written, f"{fname}:{i}")
            rows.append((parts[1].strip(), label))
        if not rows:
            raise FinebenchError(f"{root / fname}: holds no question")
        raw[split] = rows
    if respelt:
        found.warn("respelt_names", f"{len(respelt)} label(s) differ from an earlier spelling only in case, read as "
                   f"that spelling: {examples(f'{k} ({where})' for k, where in respelt.items())}", names=respelt)
    classes = sorted({lab for rows in raw.values() for _, lab in rows})
    index = {c: i for i, c in enumerate(classes)}
    records = {s: [(t, index[lab]) for t, lab in rows] for s, rows in raw.items()}
    records, carved = found.carve_val(records, opt, classes)
    return finish(work, records, classes, opt, found.source(
        {"layout": "TREC (Li & Roth)", "granularity": opt["granularity"], "root": str(root)}), carved)


def build_goemotions(work: Path, opt: dict) -> dict:
    import csv

    root = root_of(opt, "goemotions")
    found = CopyFindings("goemotions")
    class_file = root / "emotions.txt"
    listed = list(list_lines(class_file, "the list of emotions, one per line"))
    if not listed:
        raise FinebenchError(f"{class_file}: lists no emotion")
    classes = [name for _, name in listed]
    name_index(classes, class_file, [i for i, _ in listed])
    records, dropped = {}, {}
    for split, fname in (("train", "train.tsv"), ("val", "dev.tsv"), ("test", "test.tsv")):
        rows, multi = [], 0
        with open(need(root / fname, fname), encoding="utf-8-sig", newline="") as f:
            for i, row in enumerate(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE), 1):
                if not "".join(row).strip():  # a blank line (an editor's trailing newline)
                    continue
                if len(row) != 3:
                    raise FinebenchError(f"{root / fname}:{i}: expected 3 tab-separated columns (text, labels, id)")
                ids = [x.strip() for x in row[1].split(",") if x.strip()]
                bad = [x for x in ids if not x.isdigit() or int(x) >= len(classes)]
                if not ids or bad:
                    raise FinebenchError(
                        f"{root / fname}:{i}: label {(bad or [row[1]])[0]!r} is not an emotion id: expected "
                        f"comma-separated ids 0-{len(classes) - 1} ({class_file.name} lists {len(classes)} emotions)")
                if len(ids) == 1:
                    rows.append((row[0], int(ids[0])))
                else:
                    multi += 1
        if not rows:
            raise FinebenchError(f"{root / fname}: holds no single-label example ({multi} multi-label rows)")
        records[split], dropped[split] = rows, multi
    records, classes = found.present_classes(records, classes, f"of {class_file.name}")
    return finish(work, records, classes, opt, found.source({"layout": "GoEmotions tsv", "root": str(root),
                                                             "single_label_only": True, "dropped": dropped,
                                                             "dropped_reason": "multi-label examples"}))


def read_table(path: Path, encoding: str):
    """The table as a DataFrame of strings (empty cells are ""; "NA", "null" … stay text), or an error naming the file
    and line of the first undecodable byte."""
    import pandas as pd

    raw = path.read_bytes()
    try:
        raw.decode(encoding)
    except UnicodeDecodeError as exc:
        lineno = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise FinebenchError(
            f"{path}:{lineno}: not valid {encoding} (byte 0x{raw[exc.start]:02x} at column {column}); save the file as "
            f"UTF-8, or set tasks.<task>.encoding to its encoding (e.g. latin-1, cp1252)") from None
    if path.suffix == ".jsonl":
        import json

        rows, lines = [], []
        for i, line in enumerate(raw.decode(encoding).splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise FinebenchError(f"{path}:{i}: not a JSON object ({exc.msg})") from None
            if not isinstance(row, dict):
                raise FinebenchError(f"{path}:{i}: not a JSON object")
            rows.append({k: "" if v is None else str(v) for k, v in row.items()})
            lines.append(i)
        return pd.DataFrame(rows, index=lines).fillna(""), "line"
    try:
        df = pd.read_csv(path, sep="\t" if path.suffix == ".tsv" else ",", dtype=str, keep_default_na=False,
                         encoding=encoding)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise FinebenchError(f"{path}: not a readable {path.suffix[1:]} table ({exc})") from None
    df.index = range(2, len(df) + 2)  # as a spreadsheet numbers them: the header is row 1
    return df, "row"


def build_text_table(work: Path, opt: dict) -> dict:
    if not opt.get("path"):
        raise FinebenchError("text_table: set tasks.<task>.path to a csv, tsv or jsonl file")
    path = Path(opt["path"])
    need(path, "a csv / tsv / jsonl file")
    if path.suffix not in (".csv", ".tsv", ".jsonl"):
        raise FinebenchError(f"{path}: unsupported table format {path.suffix!r}; use .csv, .tsv or .jsonl")
    df, row_word = read_table(path, opt.get("encoding") or "utf-8")
    for key in ("text_column", "label_column") + (("split_column",) if opt.get("split_column") else ()):
        if opt[key] not in df.columns:
            raise FinebenchError(f"tasks.<task>.{key}: column {opt[key]!r} not in {path} "
                                 f"(columns: {', '.join(map(str, df.columns))})")

    def rows_named(mask) -> str:
        rows = [str(i) for i in df.index[mask]]
        header = " (the header is row 1)" if row_word == "row" else ""
        return (f"{row_word}{'s' if len(rows) > 1 else ''} {', '.join(rows[:10])}{' …' if len(rows) > 10 else ''}"
                f"{header}")

    text, label = df[opt["text_column"]].str.strip(), df[opt["label_column"]].str.strip()
    no_label = (label == "").to_numpy()
    if no_label.any():
        raise FinebenchError(f"{path}: {no_label.sum()} row(s) have an empty {opt['label_column']!r} (label) cell, "
                             f"{rows_named(no_label)}; fill them in or remove those rows")
    no_text = (text == "").to_numpy()
    skipped = {}
    if no_text.any():
        if not opt.get("drop_empty_text"):
            raise FinebenchError(f"{path}: {no_text.sum()} row(s) have an empty {opt['text_column']!r} (text) cell, "
                                 f"{rows_named(no_text)}; fill them in, remove them, or set "
                                 f"tasks.<task>.drop_empty_text: true to drop such rows (counted in the manifest)")
        skipped["empty_text"] = {"n": int(no_text.sum()), "rows": [int(i) for i in df.index[no_text][:100]]}
        df, text, label = df[~no_text], text[~no_text], label[~no_text]
    classes = sorted(label.unique())
    index = {c: i for i, c in enumerate(classes)}
    split = df[opt["split_column"]].str.strip() if opt.get("split_column") else ["train"] * len(df)
    bad = sorted(set(split) - set(SPLITS))
    if bad:
        raise FinebenchError(f"{path}: column {opt['split_column']!r} has values {bad}; expected train/val/test")
    records = {s: [(t, index[lab]) for t, lab, sp in zip(text, label, split) if sp == s] for s in SPLITS}
    records, classes, rare = drop_rare_classes(records, classes, opt)
    if rare:
        skipped["rare_classes"] = {"min_per_class": opt["min_per_class"], "classes": rare,
                                   "n": sum(rare.values())}
    out = finish(work, records, classes, opt, {"layout": "text_table", "path": str(path)})
    out["manifest"]["skipped"] = skipped
    return out


register(DatasetSource(
    name="sst5", modality="text",
    description="SST-5: 5 sentiment levels, official PTB train/dev/test (sentence = root)",
    defaults=TEXT_DEFAULTS, build=build_sst5, archive_root="",
    remotes=[Remote("https://nlp.stanford.edu/sentiment/trainDevTestTrees_PTB.zip")],
    citation="Socher et al. (2013), Recursive Deep Models for Semantic Compositionality, EMNLP",
    official={"classes": 5, "splits": {"train": 8544, "val": 1101, "test": 2210}}))
register(DatasetSource(
    name="trec50", modality="text",
    description="TREC question classification, 50 fine classes; official train/test, val carved",
    defaults={**TEXT_DEFAULTS, "granularity": "fine"}, build=build_trec,
    remotes=[Remote("https://cogcomp.seas.upenn.edu/Data/QA/QC/train_5500.label", extract=False),
             Remote("https://cogcomp.seas.upenn.edu/Data/QA/QC/TREC_10.label", extract=False)],
    citation="Li & Roth (2002), Learning Question Classifiers, COLING",
    official={"classes": 50, "splits": {"train": 5452, "test": 500}, "options": {"granularity": "fine"}}))
register(DatasetSource(
    name="goemotions", modality="text",
    description="GoEmotions: 27 emotions + neutral; official splits, single-label examples only",
    defaults=TEXT_DEFAULTS, build=build_goemotions,
    remotes=[Remote(f"https://raw.githubusercontent.com/google-research/google-research/master/goemotions/data/{f}",
                    extract=False)
             for f in ("train.tsv", "dev.tsv", "test.tsv", "emotions.txt")],
    citation="Demszky et al. (2020), GoEmotions: A Dataset of Fine-Grained Emotions, ACL",
    # rows, before the single-label filter
    official={"classes": 28, "splits": {"train": 43410, "val": 5426, "test": 5427}}))
register(DatasetSource(
    name="text_table", modality="text", description="Bring your own: csv / tsv / jsonl with text and label columns",
    defaults={**TEXT_DEFAULTS, "path": None, "text_column": "text", "label_column": "label", "split_column": None,
              "encoding": "utf-8", "drop_empty_text": False, "min_per_class": None},
    build=build_text_table))

