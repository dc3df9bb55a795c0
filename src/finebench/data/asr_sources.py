"""Real speech-recognition corpora (task type ``asr``): LibriSpeech, mini LibriSpeech and ``asr_table`` (bring your
own), read into the prepared form of finebench.data.asr.

Layouts read (``root:``, or what the download rule fetched and extracted):

- ``librispeech`` (OpenSLR resource 12): ``{subset}/{speaker}/{chapter}/{speaker}-{chapter}.trans.txt`` beside that
  chapter's ``{speaker}-{chapter}-{utterance}.flac`` files; ``root`` is the folder holding the subset folders (the
  archives extract to ``LibriSpeech/``). Splits: ``train`` (train-clean-100), ``val`` (dev-clean), ``test``
  (test-clean; test-other is a second task with ``test: test-other``), each a subset name or a list of them.
- ``mini_librispeech`` (OpenSLR resource 31, for a quick run): train-clean-5 and dev-clean-2 in the same layout;
  dev-clean-2 is the test split and ``val_fraction`` of train-clean-5's speakers are held out for validation.
- ``asr_table``: a table (``table:``, csv / tsv / jsonl, in ``encoding`` utf-8) with columns ``path`` (relative to
  ``root``, and inside it) and ``text``, optionally ``speaker`` and ``split`` (train / val / test); missing val / test
  splits are carved from train by speaker (by utterance where there is no speaker column). Any audio format
  libsndfile reads, any sample rate.

Bad input is named, file and line: a transcript line without its audio file, an audio file without a transcript
line (``skip_unpaired: true`` skips both kinds and counts them in the manifest instead), an utterance id that is not
``{speaker}-{chapter}-…``, an id given twice, unreadable audio or audio with NaN / inf samples; in a table also an
undecodable byte, a jsonl line that is not an object or has no path, a path outside ``root``, and one audio file (or
one utterance id: the path without its extension) in two rows — compared resolved, so ``./a.wav`` and
``b/../a.wav`` are ``a.wav``: no file leaks from one split into another. The prepared form names characters outside
the vocabulary, empty transcripts and audio longer than ``max_seconds``.
"""

from __future__ import annotations

import codecs
import os
import sys
from pathlib import Path

import numpy as np

from finebench.data.asr import write_asr
from finebench.data.download import Remote
from finebench.data.layout import root_of
from finebench.data.registry import DatasetSource, register
from finebench.data.speech import audio_extensions, header_problem
from finebench.data.textsets import read_table
from finebench.errors import FinebenchError

# max_seconds 60: LibriSpeech was cut into utterances of at most 35 s; without a cap one 30-minute file reached the
# Conformer's attention and died in the allocator instead of being named here (issue 32, item 8d)
ASR_DEFAULTS = {"root": None, "sample_rate": 16000, "n_fft": 400, "hop": 160, "n_mels": 80, "max_seconds": 60,
                "skip_long": False, "skip_unpaired": False, "waveform": True, "alphabet": None, "seed": 0}
OPENSLR = "https://www.openslr.org/resources"
# sha256 as torchaudio pins them (torchaudio/datasets/librispeech.py _CHECKSUMS)
LIBRISPEECH = {
    "train-clean-100": "d4ddd1d5a6ab303066f14971d768ee43278a5f2a0aa43dc716b0e64ecbbbf6e2",
    "dev-clean": "76f87d090650617fca0cac8f88b9416e0ebf80350acb97b343a85fa903728ab3",
    "test-clean": "39fde525e59672dc6d1551919b1478f724438a95aa55f874b576be21967e6c23",
    "test-other": "d09c181bba5cf717b3dee7d4d592af11a3ee3a09e08ae025c5506f6ebe961c29",
}
# md5 as OpenSLR publishes them (resources/31/md5sum.txt; no sha256 is published)
MINI_LIBRISPEECH = {"train-clean-5": "5df7d4e78065366204ca6845bb08f490",
                    "dev-clean-2": "6d7ab67ac6a1d2c993d050e16d61080d"}
# utterances per subset in the releases
LIBRISPEECH_COUNTS = {"train-clean-100": 28539, "dev-clean": 2703, "test-clean": 2620, "test-other": 2939,
                      "train-clean-5": 1519, "dev-clean-2": 1089}


def read_audio(path: Path):
    """A loader of ``path``: mono float32 samples and the file's rate (soundfile; the header checked first)."""
    def load():
        import soundfile as sf

        try:
            with sf.SoundFile(str(path)) as f:
                problem = header_problem(f)
                if problem is None:
                    wav, rate = f.read(dtype="float32", always_2d=True), f.samplerate
        except (RuntimeError, sf.SoundFileError) as exc:
            raise FinebenchError(f"{path}: cannot read audio ({exc})") from exc
        if problem:
            raise FinebenchError(f"{path}: {problem}; replace the file")
        wav = wav.mean(1)
        bad = int(np.count_nonzero(~np.isfinite(wav)))
        if bad:  # one NaN would make every band's mean and std NaN, and training "diverge" for the wrong reason
            raise FinebenchError(f"{path}: {bad} of {len(wav)} samples are not finite (NaN or inf) — a damaged float "
                                 f"file; replace it, or leave it out")
        return wav, rate

    return load


class Unpaired:
    """Transcripts without audio and audio without a transcript: an error naming the first few, or — with
    ``skip_unpaired`` — left out, counted and named in the manifest."""

    def __init__(self, skip: bool | None):  # skip_unpaired; None: not set (no skipping)
        self.skip = skip
        self.found: list[str] = []

    def add(self, what: str) -> None:
        self.found.append(what)

    def check(self) -> dict:
        if self.found and not self.skip:
            raise FinebenchError(f"{len(self.found)} unpaired item(s): {'; '.join(self.found[:5])}"
                                 f"{' …' if len(self.found) > 5 else ''} — add the missing transcripts or audio, or "
                                 f"set tasks.<task>.skip_unpaired: true to leave such items out (counted in the "
                                 f"manifest)")
        if self.found:
            print(f"[finebench] skip_unpaired: left out {len(self.found)} item(s), e.g. {self.found[0]}",
                  file=sys.stderr, flush=True)
        return {"unpaired": {"n": len(self.found), "items": self.found[:100]}} if self.found else {}


def librispeech_subset(root: Path, subset: str, unpaired: Unpaired) -> list[dict]:
    """The utterances of one LibriSpeech subset folder, in sorted speaker / chapter / utterance order."""
    base = root / subset
    if not base.is_dir():
        raise FinebenchError(f"{base}: missing — expected the {subset} folder of LibriSpeech "
                             f"({{speaker}}/{{chapter}}/{{speaker}}-{{chapter}}.trans.txt beside the .flac files); "
                             f"is tasks.<task>.root the folder the archives extract to (LibriSpeech/)?")
    rows = []
    for chapter in sorted(p for p in base.glob("*/*") if p.is_dir()):
        speaker, ch = chapter.parent.name, chapter.name
        trans = chapter / f"{speaker}-{ch}.trans.txt"
        audio = {p.stem: p for p in chapter.glob("*.flac")}
        listed: dict[str, int] = {}  # utterance id: its line in the transcript
        if not trans.is_file():
            unpaired.add(f"{chapter}: {len(audio)} audio file(s) but no {trans.name}")
            continue
        for i, line in enumerate(trans.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            uid, _, text = line.strip().partition(" ")
            where = f"{trans}:{i}"
            if not uid.startswith(f"{speaker}-{ch}-"):
                raise FinebenchError(f"{where}: utterance id {uid!r} is not {speaker}-{ch}-<n> (the chapter's "
                                     f"speaker and chapter)")
            if uid in listed:
                raise FinebenchError(f"{where}: utterance {uid!r} is given twice (first at line {listed[uid]})")
            listed[uid] = i
            if uid not in audio:
                unpaired.add(f"{where}: transcript of {uid} but no {uid}.flac")
                continue
            rows.append({"id": uid, "speaker": speaker, "text": text, "where": where, "audio": read_audio(audio[uid])})
        for stem in sorted(set(audio) - set(listed)):
            unpaired.add(f"{audio[stem]}: audio without a line in {trans.name}")
    if not rows:
        raise FinebenchError(f"{base}: no utterance with both audio and transcript")
    return rows


def subsets(value) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def split_by_speaker(rows: list[dict], fraction: float, seed: int) -> tuple[list[dict], list[dict], dict]:
    """Hold out ``fraction`` of the speakers (at least one), seeded: (kept, held out, what was carved)."""
    speakers = sorted({r["speaker"] for r in rows})
    n = max(1, round(len(speakers) * fraction))
    if n >= len(speakers):
        raise FinebenchError(f"val_fraction {fraction}: {len(speakers)} speaker(s) cannot give {n} to a carved split "
                             f"and keep one for training")
    held = set(np.random.default_rng(seed).permutation(speakers)[:n].tolist())
    out = [r for r in rows if r["speaker"] in held]
    return ([r for r in rows if r["speaker"] not in held], out,
            {"from": "train", "by": "speaker", "fraction": fraction, "speakers": sorted(held), "n": len(out),
             "seed": seed})


def counted(source: dict, read: dict[str, int]) -> dict:
    """The official utterance counts of the subsets read beside the numbers found (a warning where they differ)."""
    found = {name: n for name, n in read.items()}
    expected = {name: LIBRISPEECH_COUNTS[name] for name in found if name in LIBRISPEECH_COUNTS}
    differ = [f"{k} {found[k]} (official {v})" for k, v in expected.items() if found[k] != v]
    if differ:
        print(f"[finebench] WARNING {source['layout']}: the files at {source['root']} differ from the official "
              f"release: {', '.join(differ)} — a partial or modified copy? The results will not be comparable with "
              f"published ones.", file=sys.stderr, flush=True)
    return {"expected": expected, "found": found, "match": not differ}


def build_librispeech(work: Path, opt: dict) -> dict:
    root = root_of(opt, "librispeech")
    unpaired = Unpaired(opt.get("skip_unpaired"))
    splits: dict[str, list[dict]] = {}
    read: dict[str, int] = {}  # subset: utterances read
    for split in ("train", "val", "test"):
        splits[split] = []
        for name in subsets(opt[split]):
            rows = librispeech_subset(root, name, unpaired)
            read[name] = len(rows)
            splits[split] += rows
    skipped = unpaired.check()
    source = {"layout": "LibriSpeech", "root": str(root), "subsets": {s: subsets(opt[s]) for s in splits}}
    out = write_asr(work, splits, opt, source)
    out["manifest"]["official_counts"] = counted(source, read)
    out["manifest"]["skipped"].update(skipped)
    return out


def build_mini_librispeech(work: Path, opt: dict) -> dict:
    root = root_of(opt, "mini_librispeech")
    unpaired = Unpaired(opt.get("skip_unpaired"))
    train = librispeech_subset(root, "train-clean-5", unpaired)
    test = librispeech_subset(root, "dev-clean-2", unpaired)
    skipped = unpaired.check()
    train, val, carved = split_by_speaker(train, opt["val_fraction"], opt["seed"])
    source = {"layout": "mini LibriSpeech", "root": str(root), "subsets": {"train": ["train-clean-5"],
                                                                           "test": ["dev-clean-2"]}}
    out = write_asr(work, {"train": train, "val": val, "test": test}, opt, source)
    out["manifest"]["carved_splits"] = {"val": carved}
    out["manifest"]["official_counts"] = counted(source, {"train-clean-5": len(train) + len(val),
                                                          "dev-clean-2": len(test)})
    out["manifest"]["skipped"].update(skipped)
    return out


def table_rows(path: Path, encoding: str) -> list[tuple[int, dict]]:
    """(line number, row of strings) of a csv / tsv / jsonl transcript table, read as ``text_table`` reads one
    (finebench.data.textsets.read_table: an undecodable byte or a jsonl line that is not an object is named with its
    line)."""
    if not path.is_file():
        raise FinebenchError(f"{path}: transcript table not found (tasks.<task>.table)")
    if path.suffix not in (".csv", ".tsv", ".jsonl"):
        raise FinebenchError(f"{path}: a transcript table is .csv, .tsv or .jsonl")
    try:
        utf8 = codecs.lookup(encoding).name == "utf-8"
    except LookupError:
        raise FinebenchError(f"tasks.<task>.encoding: {encoding!r} is not an encoding (e.g. utf-8, latin-1, "
                             f"cp1252)") from None
    df, _ = read_table(path, "utf-8-sig" if utf8 else encoding)  # -sig: a byte-order mark is not part of a path
    return list(zip(df.index.tolist(), df.fillna("").to_dict("records")))


def build_asr_table(work: Path, opt: dict) -> dict:
    root = root_of(opt, "asr_table")
    if not opt.get("table"):
        raise FinebenchError("asr_table: no table — set tasks.<task>.table to a csv / tsv / jsonl file with path and "
                             "text columns")
    table = Path(opt["table"]) if Path(opt["table"]).is_absolute() else root / opt["table"]
    rows = table_rows(table, opt.get("encoding") or "utf-8")
    missing = [c for c in ("path", "text") if rows and c not in rows[0][1]]
    if missing or not rows:
        raise FinebenchError(f"{table}: needs the columns path and text (optional: speaker, split)"
                             + (f"; missing: {', '.join(missing)}" if missing else "; it has no row"))
    unpaired = Unpaired(opt.get("skip_unpaired"))
    base = Path(os.path.abspath(root))
    splits: dict[str, list[dict]] = {"train": [], "val": [], "test": []}
    # (line, path, split) of each audio file (resolved) and each utterance id already listed
    seen: dict[Path, tuple[int, str, str]] = {}
    ids: dict[str, tuple[int, str, str]] = {}
    for i, row in rows:
        where = f"{table}:{i}"
        rel = str(row.get("path") or "").strip()
        if not rel:
            raise FinebenchError(f"{where}: no path — each row names its audio file (path, relative to root)")
        split = str(row.get("split") or "train").strip()
        if split not in splits:
            raise FinebenchError(f"{where}: split {split!r} — train, val or test")
        audio = Path(os.path.normpath(base / rel))  # ./a.wav, b/../a.wav -> a.wav; an absolute path stays itself
        if base not in audio.parents and base.resolve() in audio.resolve().parents:  # root a link, rel its target's
            audio = base / audio.resolve().relative_to(base.resolve())
        if base not in audio.parents:
            raise FinebenchError(f"{where}: {rel} is outside root {base} — audio paths are relative to "
                                 f"tasks.<task>.root and stay inside it")
        key, uid = audio.resolve(), audio.relative_to(base).with_suffix("").as_posix()  # resolved: a link is its file
        first = seen.get(key) or ids.get(uid)
        if first:
            same = "the same file as" if key in seen else f"the same utterance id {uid!r} (its path without the " \
                                                          f"extension) as"
            raise FinebenchError(f"{where}: {rel} (split {split}) is {same} {first[1]} at line {first[0]} (split "
                                 f"{first[2]}) — list each audio file once, in one split")
        seen[key] = ids[uid] = (i, rel, split)
        if not audio.is_file():
            unpaired.add(f"{where}: transcript of {rel} but no such file in {root}")
            continue
        speaker = str(row.get("speaker") or "").strip() or Path(rel).stem
        splits[split].append({"id": uid, "speaker": speaker, "text": str(row.get("text") or ""), "where": where,
                              "audio": read_audio(audio)})
    listed = set(seen)
    for p in sorted(root.rglob("*")):
        if p.is_file() and p.suffix.lower() in audio_extensions() and p.resolve() not in listed:
            unpaired.add(f"{p}: audio without a row in {table.name}")
    skipped = unpaired.check()
    carved = {}
    by_speaker = any(row.get("speaker") for _, row in rows)
    for split, fraction in (("test", opt["test_fraction"]), ("val", opt["val_fraction"])):
        if not splits[split]:
            if by_speaker:
                splits["train"], splits[split], carved[split] = split_by_speaker(splits["train"], fraction,
                                                                                 opt["seed"])
            else:  # one utterance per "speaker": carved by utterance
                keep, held, carved[split] = split_by_speaker(splits["train"], fraction, opt["seed"])
                splits["train"], splits[split] = keep, held
                carved[split]["by"] = "utterance"
    out = write_asr(work, splits, opt, {"layout": "asr_table", "root": str(root), "table": str(table)})
    out["manifest"]["carved_splits"] = carved
    out["manifest"]["skipped"].update(skipped)
    return out


register(DatasetSource(
    name="librispeech", modality="speech", task_type="asr",
    description="LibriSpeech (OpenSLR 12): read English audiobooks, 16 kHz; train-clean-100 / dev-clean / test-clean",
    defaults={**ASR_DEFAULTS, "train": "train-clean-100", "val": "dev-clean", "test": "test-clean"},
    build=build_librispeech, archive_root="LibriSpeech",
    remotes=[Remote(f"{OPENSLR}/12/{name}.tar.gz", sha256=sha) for name, sha in LIBRISPEECH.items()],
    citation="Panayotov, Chen, Povey, Khudanpur (2015), LibriSpeech: an ASR corpus based on public domain audio "
             "books, ICASSP"))
register(DatasetSource(
    name="mini_librispeech", modality="speech", task_type="asr",
    description="Mini LibriSpeech (OpenSLR 31): train-clean-5 (val: held-out speakers) / dev-clean-2 as test",
    defaults={**ASR_DEFAULTS, "val_fraction": 0.1},
    build=build_mini_librispeech, archive_root="LibriSpeech",
    remotes=[Remote(f"{OPENSLR}/31/{name}.tar.gz", md5=md5) for name, md5 in MINI_LIBRISPEECH.items()],
    citation="Subsets of LibriSpeech (Panayotov et al. 2015) for regression testing, OpenSLR resource 31"))
register(DatasetSource(
    name="asr_table", modality="speech", task_type="asr",
    description="Bring your own: audio files under root + a transcript table (path, text, optional speaker, split)",
    defaults={**ASR_DEFAULTS, "table": None, "encoding": "utf-8", "val_fraction": 0.1, "test_fraction": 0.1},
    build=build_asr_table))
