"""LibriSpeech, mini LibriSpeech and asr_table on fixtures in their official layouts: what is read, the pinned
downloads, and bad input named by file and line."""

import json

import numpy as np
import pandas as pd
import pytest

from finebench.data import DATASETS, prepare_task
from finebench.errors import FinebenchError

SMALL = {"n_mels": 40}


def flac(path, seconds=0.4, rate=16000, seed=0):
    import soundfile as sf

    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), np.random.default_rng(seed).normal(0, 0.1, int(seconds * rate)).astype(np.float32), rate,
             format="FLAC")


def chapter(root, subset, speaker, ch, texts, seed=0):
    """One chapter in the official layout: {subset}/{speaker}/{chapter}/{speaker}-{chapter}.trans.txt + .flac."""
    d = root / subset / str(speaker) / str(ch)
    lines = []
    for k, text in enumerate(texts):
        uid = f"{speaker}-{ch}-{k:04d}"
        flac(d / f"{uid}.flac", seed=seed + k)
        lines.append(f"{uid} {text}")
    d.mkdir(parents=True, exist_ok=True)
    (d / f"{speaker}-{ch}.trans.txt").write_text("\n".join(lines) + "\n")
    return d


@pytest.fixture
def libri(tmp_path):
    root = tmp_path / "LibriSpeech"
    chapter(root, "train-clean-100", 19, 198, ["NORTHANGER ABBEY", "CHAPTER ONE"])
    chapter(root, "train-clean-100", 26, 495, ["NO ONE WHO HAD EVER SEEN CATHERINE"], seed=5)
    chapter(root, "dev-clean", 84, 121123, ["GO DO YOU HEAR"])
    chapter(root, "test-clean", 1089, 134686, ["HE HOPED THERE WOULD BE STEW FOR DINNER", "STUFF IT INTO YOU"])
    return root


def test_librispeech_in_its_official_layout_is_read_per_subset(libri, tmp_path):
    m = prepare_task("ls", "librispeech", {**DATASETS["librispeech"].defaults, **SMALL, "root": str(libri)},
                     tmp_path / "out")
    assert m["task_type"] == "asr"
    assert [m["splits"][s]["n"] for s in ("train", "val", "test")] == [3, 1, 2]
    assert m["splits"]["train"]["speakers"] == 2 and m["splits"]["test"]["words"] == 8 + 4
    test = pd.read_csv(tmp_path / "out" / "test_utterances.csv")
    assert test["id"].tolist() == ["1089-134686-0000", "1089-134686-0001"]
    assert test["text"].tolist() == ["he hoped there would be stew for dinner", "stuff it into you"]  # normalised
    assert test["speaker"].astype(str).tolist() == ["1089", "1089"]
    oc = m["official_counts"]
    assert oc["found"] == {"train-clean-100": 3, "dev-clean": 1, "test-clean": 2} and not oc["match"]
    assert oc["expected"]["test-clean"] == 2620


def test_the_downloads_are_the_official_archives_with_pinned_checksums():
    ls, mini = DATASETS["librispeech"], DATASETS["mini_librispeech"]
    urls = {r.url: r.sha256 for r in ls.remotes}
    assert urls["https://www.openslr.org/resources/12/test-clean.tar.gz"] == \
        "39fde525e59672dc6d1551919b1478f724438a95aa55f874b576be21967e6c23"
    assert set(urls) == {f"https://www.openslr.org/resources/12/{s}.tar.gz"
                         for s in ("train-clean-100", "dev-clean", "test-clean", "test-other")}
    assert all(len(sha) == 64 for sha in urls.values()) and ls.archive_root == "LibriSpeech"
    assert {r.url: r.md5 for r in mini.remotes} == {
        "https://www.openslr.org/resources/31/train-clean-5.tar.gz": "5df7d4e78065366204ca6845bb08f490",
        "https://www.openslr.org/resources/31/dev-clean-2.tar.gz": "6d7ab67ac6a1d2c993d050e16d61080d"}


def test_mini_librispeech_holds_out_training_speakers_for_validation(tmp_path):
    root = tmp_path / "LibriSpeech"
    for k, spk in enumerate((19, 26, 32, 39, 40)):
        chapter(root, "train-clean-5", spk, 100 + k, ["ONE TWO", "THREE"], seed=10 * k)
    chapter(root, "dev-clean-2", 84, 121123, ["GO DO YOU HEAR"])
    m = prepare_task("mini", "mini_librispeech", {**DATASETS["mini_librispeech"].defaults, **SMALL,
                                                  "root": str(root), "val_fraction": 0.2}, tmp_path / "out")
    assert [m["splits"][s]["n"] for s in ("train", "val", "test")] == [8, 2, 1]
    held = m["carved_splits"]["val"]["speakers"]
    assert len(held) == 1 and m["splits"]["val"]["speakers"] == 1
    train = pd.read_csv(tmp_path / "out" / "train_utterances.csv", dtype=str)
    assert held[0] not in set(train["speaker"])


def test_a_transcript_without_audio_and_audio_without_a_transcript_are_named(libri, tmp_path):
    opt = {**DATASETS["librispeech"].defaults, **SMALL, "root": str(libri)}
    d = libri / "test-clean" / "1089" / "134686"
    (d / "1089-134686-0001.flac").unlink()
    flac(d / "1089-134686-0009.flac")
    with pytest.raises(FinebenchError, match=r"2 unpaired item\(s\): .*1089-134686\.trans\.txt:2: transcript of "
                                             r"1089-134686-0001 but no 1089-134686-0001\.flac; "
                                             r".*1089-134686-0009\.flac: audio without a line"):
        prepare_task("ls", "librispeech", opt, tmp_path / "a")
    m = prepare_task("ls", "librispeech", {**opt, "skip_unpaired": True}, tmp_path / "b")
    assert m["splits"]["test"]["n"] == 1 and m["skipped"]["unpaired"]["n"] == 2


def test_a_wrong_utterance_id_and_characters_outside_the_vocabulary_name_the_line(libri, tmp_path):
    opt = {**DATASETS["librispeech"].defaults, **SMALL, "root": str(libri)}
    trans = libri / "dev-clean" / "84" / "121123" / "84-121123.trans.txt"
    trans.write_text("84-121124-0000 GO DO YOU HEAR\n")
    with pytest.raises(FinebenchError,
                       match=r"84-121123\.trans\.txt:1: utterance id '84-121124-0000' is not 84-121123-<n>"):
        prepare_task("ls", "librispeech", opt, tmp_path / "a")
    trans.write_text("84-121123-0000 GO DO YOU HEAR 2\n")
    with pytest.raises(FinebenchError, match=r"84-121123\.trans\.txt:1: transcript 'go do you hear 2' has characters "
                                             r"outside the vocabulary"):
        prepare_task("ls", "librispeech", opt, tmp_path / "b")


def test_bring_your_own_audio_and_transcript_table(tmp_path):
    root = tmp_path / "mine"
    rows = []
    for spk in ("ann", "bob", "cy", "dee"):
        for k in range(3):
            flac(root / spk / f"{k}.flac", seed=len(rows))
            rows.append({"path": f"{spk}/{k}.flac", "text": f"Hello, {spk}! Take {k + 1} — done.".replace("1", "one")
                         .replace("2", "two").replace("3", "three"), "speaker": spk})
    pd.DataFrame(rows).to_csv(root / "transcripts.csv", index=False)
    opt = {**DATASETS["asr_table"].defaults, **SMALL, "root": str(root), "table": "transcripts.csv",
           "val_fraction": 0.25, "test_fraction": 0.25}
    m = prepare_task("mine", "asr_table", opt, tmp_path / "out")
    assert [m["splits"][s]["n"] for s in ("train", "val", "test")] == [6, 3, 3]
    assert m["carved_splits"]["test"]["by"] == "speaker"
    val = pd.read_csv(tmp_path / "out" / "val_utterances.csv")
    assert val["text"].str.match(r"^hello [a-z]+ take (one|two|three) done$").all()
    flac(root / "stray.flac")
    with pytest.raises(FinebenchError, match=r"stray\.flac: audio without a row in transcripts\.csv"):
        prepare_task("mine", "asr_table", opt, tmp_path / "a")
    (root / "stray.flac").unlink()
    (root / "bob" / "1.flac").unlink()
    with pytest.raises(FinebenchError, match=r"transcripts\.csv:6: transcript of bob/1\.flac but no such file"):
        prepare_task("mine", "asr_table", opt, tmp_path / "b")
    (root / "t.jsonl").write_text("".join(json.dumps({"path": f"ann/{k}.flac", "text": t, "split": s}) + "\n"
                                          for k, t, s in ((0, "", "train"), (1, "go", "val"), (2, "no", "test"))))
    with pytest.raises(FinebenchError, match=r"t\.jsonl:1: empty transcript for utterance 'ann/0'"):
        prepare_task("mine", "asr_table", {**opt, "table": "t.jsonl", "skip_unpaired": True}, tmp_path / "c")
