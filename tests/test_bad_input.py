"""Bad bring-your-own input (#11.6): every case is an error naming the file (and row or line), or a documented
option whose effect is counted in the manifest. Nothing half-written is left or consumed."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import official
from finebench.data import DATASETS, prepare_task
from finebench.errors import FinebenchError


def table(tmp_path, rows, name="t.csv", header="text,label", **opts):
    path = tmp_path / name
    path.write_bytes(rows if isinstance(rows, bytes) else (header + "\n" + "\n".join(rows) + "\n").encode())
    options = {**DATASETS["text_table"].defaults, "path": str(path), **opts}
    return path, options


def good_rows(classes=("pos", "neg"), n=10):
    return [f"{c} example number {i},{c}" for c in classes for i in range(n)]


def test_text_table_non_utf8_names_file_and_line(tmp_path):
    rows = good_rows()
    rows[6] = "caf\xe9 au lait,pos"
    path, opt = table(tmp_path, ("text,label\n" + "\n".join(rows) + "\n").encode("latin-1"))
    with pytest.raises(FinebenchError,
                       match=rf"^{path}:8: not valid utf-8 \(byte 0xe9 at column 4\).*tasks\.mine\.encoding"):
        prepare_task("mine", "text_table", opt, tmp_path / "out")
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.partial-*"))
    m = prepare_task("mine", "text_table", {**opt, "encoding": "latin-1"}, tmp_path / "out")  # the documented fix
    assert m["num_classes"] == 2 and sum(s["n"] for s in m["splits"].values()) == 20


def test_text_table_empty_label_names_rows(tmp_path):
    rows = good_rows()
    rows[2] = "a text without label,"
    rows[11] = "another one,  "
    path, opt = table(tmp_path, rows)
    with pytest.raises(FinebenchError, match=rf"^{path}: 2 row\(s\) have an empty 'label' \(label\) cell, rows 4, 13 "
                                             r"\(the header is row 1\)"):
        prepare_task("mine", "text_table", opt, tmp_path / "out")


def test_text_table_jsonl_empty_label_names_lines(tmp_path):
    lines = [json.dumps({"text": f"t {i}", "label": "a" if i % 2 else "b"}) for i in range(20)]
    lines[5] = json.dumps({"text": "no label", "label": None})
    lines.insert(3, "")
    path, opt = table(tmp_path, ("\n".join(lines) + "\n").encode(), name="t.jsonl")
    with pytest.raises(FinebenchError, match=rf"^{path}: 1 row\(s\) have an empty 'label' \(label\) cell, line 7;"):
        prepare_task("mine", "text_table", opt, tmp_path / "out")


def test_text_table_empty_text_is_an_error_or_dropped_and_counted(tmp_path):
    rows = good_rows()
    rows[4] = ",pos"
    rows[15] = '"   ",neg'
    path, opt = table(tmp_path, rows)
    with pytest.raises(FinebenchError, match=r"2 row\(s\) have an empty 'text' \(text\) cell, rows 6, 17 .*"
                                             r"tasks\.mine\.drop_empty_text: true"):
        prepare_task("mine", "text_table", opt, tmp_path / "out")
    m = prepare_task("mine", "text_table", {**opt, "drop_empty_text": True}, tmp_path / "out")
    assert m["skipped"]["empty_text"] == {"n": 2, "rows": [6, 17]}
    assert sum(s["n"] for s in m["splits"].values()) == 18
    texts = [json.loads(line)["text"] for s in ("train", "val", "test")
             for line in (tmp_path / "out" / f"{s}_text.jsonl").read_text().splitlines()]
    assert len(texts) == 18 and all(t.strip() and t != "nan" for t in texts)


def test_text_table_na_strings_stay_text(tmp_path):
    """pandas' default turns "NA" / "null" / "nan" cells into NaN, which were then trained on as "nan"."""
    rows = [f"{w} {i},{c}" for c in ("NA", "null") for i, w in enumerate(["nan", "None", "NA"] * 4)]
    path, opt = table(tmp_path, rows)
    m = prepare_task("mine", "text_table", opt, tmp_path / "out")
    assert m["classes"] == ["NA", "null"]


def test_text_table_label_seen_once_names_the_class(tmp_path):
    rows = good_rows() + ["a lonely example,rare"]
    path, opt = table(tmp_path, rows)
    with pytest.raises(FinebenchError, match=r"1 class\(es\) have too few examples to carve test and val from train "
                                             r"\(each class needs 3.*\): 'rare' \(1\).*tasks\.mine\.min_per_class: 3"):
        prepare_task("mine", "text_table", opt, tmp_path / "out")
    m = prepare_task("mine", "text_table", {**opt, "min_per_class": 3}, tmp_path / "out")
    assert m["classes"] == ["neg", "pos"]
    assert m["skipped"]["rare_classes"] == {"min_per_class": 3, "classes": {"rare": 1}, "n": 1}
    for split in ("train", "val", "test"):  # every kept class is in every split
        assert min(m["splits"][split]["class_counts"]) >= 1


def test_text_table_class_only_in_test_split_is_an_error(tmp_path):
    rows = [f"t {i},{'a' if i % 2 else 'b'},{'train' if i < 16 else 'test'}" for i in range(20)]
    rows.append("unseen,c,test")
    path, opt = table(tmp_path, rows, header="text,label,split", split_column="split")
    with pytest.raises(FinebenchError, match=r"1 class\(es\) have no training example: 'c'"):
        prepare_task("mine", "text_table", opt, tmp_path / "out")


def test_messages_name_the_real_task(tmp_path):
    path, opt = table(tmp_path, good_rows(), text_column="sentence")
    with pytest.raises(FinebenchError, match=r"^tasks\.reviews\.text_column: column 'sentence' not in") as err:
        prepare_task("reviews", "text_table", opt, tmp_path / "out")
    assert "<task>" not in str(err.value)
    out = subprocess.run([sys.executable, "-m", "finebench", "prepare", "--task", "reviews", "--dataset", "imagefolder",
                          "--options", json.dumps({"root": str(tmp_path / "nowhere")}), "--out", str(tmp_path / "o")],
                         capture_output=True, text=True)
    assert out.returncode == 2 and "(tasks.reviews.root)" in out.stderr and "<task>" not in out.stderr


# --- image and audio folders ------------------------------------------------------------------------------------

def image_opts(root, **kw):
    return {**DATASETS["imagefolder"].defaults, "root": str(root), "image_size": 16, "resize": 20, "workers": 1, **kw}


def audio_opts(root, **kw):
    return {**DATASETS["audiofolder"].defaults, "root": str(root), **kw}


def test_empty_class_folder_is_named(tmp_path):
    for c in ("cat", "dog"):
        for i in range(6):
            official.jpeg(tmp_path / "img" / c / f"{i}.jpg", i)
    (tmp_path / "img" / "bird").mkdir()
    with pytest.raises(FinebenchError, match=rf"1 class folder\(s\) hold no images: {tmp_path}/img/bird\. "):
        prepare_task("pets", "imagefolder", image_opts(tmp_path / "img"), tmp_path / "out")
    (tmp_path / "img" / "bird" / ".DS_Store").write_bytes(b"x")  # hidden files do not count
    with pytest.raises(FinebenchError, match=rf"hold no images: {tmp_path}/img/bird\. "):
        prepare_task("pets", "imagefolder", image_opts(tmp_path / "img"), tmp_path / "out")
    (tmp_path / "img" / "bird").rename(tmp_path / "bird")
    m = prepare_task("pets", "imagefolder", image_opts(tmp_path / "img"), tmp_path / "out")
    assert m["classes"] == ["cat", "dog"]


def test_unsupported_image_files_named_or_skipped(tmp_path):
    for c in ("cat", "dog"):
        for i in range(6):
            official.jpeg(tmp_path / "img" / c / f"{i}.jpg", i)
    (tmp_path / "img" / "cat" / "notes.txt").write_text("not an image")
    (tmp_path / "img" / "dog" / "5.jpg").write_bytes(b"\xff\xd8\xff garbage")  # corrupt JPEG
    with pytest.raises(FinebenchError, match=r"1 file\(s\) are not images this reader supports \(\.txt\), e.g. "
                                             rf"{tmp_path}/img/cat/notes\.txt"):
        prepare_task("pets", "imagefolder", image_opts(tmp_path / "img"), tmp_path / "out")
    (tmp_path / "img" / "cat" / "notes.txt").unlink()
    with pytest.raises(FinebenchError, match=rf"{tmp_path}/img/dog/5\.jpg: cannot read image"):
        prepare_task("pets", "imagefolder", image_opts(tmp_path / "img"), tmp_path / "out")
    (tmp_path / "img" / "cat" / "notes.txt").write_text("not an image")
    m = prepare_task("pets", "imagefolder", image_opts(tmp_path / "img", skip_bad_files=True), tmp_path / "out")
    bad = m["skipped"]["bad_files"]
    assert bad["n"] == 2 and bad["reasons"]["unsupported format"] == 1
    assert any("notes.txt: unsupported format" in f for f in bad["files"])
    assert any("5.jpg: cannot read image" in f for f in bad["files"])
    assert sum(s["n"] for s in m["splits"].values()) == 11
    for split in ("train", "val", "test"):  # arrays and labels stay aligned after the compaction
        x = np.load(tmp_path / "out" / f"{split}_x.npy")
        y = np.load(tmp_path / "out" / f"{split}_y.npy")
        assert len(x) == len(y) == m["splits"][split]["n"] and x.reshape(len(x), -1).std(1).min() > 0


def make_audio(root, words=("up", "down"), n=5, sr=16000):
    for w in words:
        for i in range(n):
            official.wav(root / w / f"{i}.wav", i, sr=sr)


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_truncated_wav_is_named_or_skipped(tmp_path):
    make_audio(tmp_path / "a")
    truncate(tmp_path / "a" / "up" / "3.wav")
    with pytest.raises(FinebenchError, match=rf"{tmp_path}/a/up/3\.wav: truncated: the header promises 32,000 bytes "
                                             r"of audio, the file holds 15,978.*skip_bad_files"):
        prepare_task("words", "audiofolder", audio_opts(tmp_path / "a"), tmp_path / "out")
    assert not (tmp_path / "out").exists()
    m = prepare_task("words", "audiofolder", audio_opts(tmp_path / "a", skip_bad_files=True), tmp_path / "out")
    assert m["skipped"]["bad_files"]["n"] == 1 and "3.wav: truncated" in m["skipped"]["bad_files"]["files"][0]
    assert sum(s["n"] for s in m["splits"].values()) == 9


def test_truncated_wav_in_speech_commands_is_named(tmp_path):
    from finebench.data.speech import read_clip

    official.wav(tmp_path / "x.wav", 0)
    truncate(tmp_path / "x.wav")
    with pytest.raises(FinebenchError, match=r"x\.wav: truncated"):
        read_clip(tmp_path / "x.wav", 16000, 16000)


def test_mp3_is_read_and_unsupported_formats_are_named(tmp_path):
    import soundfile as sf

    make_audio(tmp_path / "a")
    if "MP3" in sf.available_formats():  # libsndfile >= 1.1 reads MP3: such files are used, not skipped
        sf.write(tmp_path / "a" / "up" / "extra.mp3", np.zeros(16000, dtype=np.float32) + 0.01, 16000)
    (tmp_path / "a" / "down" / "4.m4a").write_bytes(b"\x00\x00\x00\x20ftypM4A ")
    with pytest.raises(FinebenchError, match=r"1 file\(s\) are not audio files this reader supports \(\.m4a\), e.g. "
                                             rf"{tmp_path}/a/down/4\.m4a; supported: .*\.wav"):
        prepare_task("words", "audiofolder", audio_opts(tmp_path / "a"), tmp_path / "out")
    m = prepare_task("words", "audiofolder", audio_opts(tmp_path / "a", skip_bad_files=True), tmp_path / "out")
    assert m["skipped"]["bad_files"]["reasons"] == {"unsupported format": 1}
    n_mp3 = 1 if "MP3" in sf.available_formats() else 0
    assert sum(s["n"] for s in m["splits"].values()) == 10 + n_mp3


def test_empty_audio_class_folder_is_named(tmp_path):
    make_audio(tmp_path / "a")
    (tmp_path / "a" / "left").mkdir()
    (tmp_path / "a" / "left" / "song.m4a").write_bytes(b"x")
    with pytest.raises(FinebenchError,
                       match=rf"hold no audio files: {tmp_path}/a/left \(only 1 unsupported file\(s\)\)"):
        prepare_task("words", "audiofolder", audio_opts(tmp_path / "a", skip_bad_files=True), tmp_path / "out")


# --- stale partial folders --------------------------------------------------------------------------------------

def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_stale_partial_folder_of_a_killed_prepare_is_removed(tmp_path):
    import socket

    from finebench.files import atomic_dir

    host = socket.gethostname()
    stale = tmp_path / f".words.partial-{host}-{dead_pid()}"
    legacy = tmp_path / f".words.partial-{dead_pid()}"
    live = tmp_path / f".words.partial-{host}-{os.getppid()}"  # a live process: left alone
    other = tmp_path / ".words.partial-otherhost-1"  # another machine's (shared file system): left alone
    for d in (stale, legacy, live, other):
        (d / "train_x.npy").parent.mkdir(parents=True)
        (d / "train_x.npy").write_bytes(b"half")
    with atomic_dir(tmp_path / "words") as work:
        (work / "manifest.json").write_text("{}")
    assert not stale.exists() and not legacy.exists() and live.exists() and other.exists()
    assert (tmp_path / "words" / "manifest.json").is_file()


def test_kill_9_during_prepare_then_rerun_cleans_up(tmp_path):
    """A real kill -9 of a prepare process mid-build: the half-built folder is never taken for the dataset, and the
    next prepare removes it."""
    import signal
    import time

    make_audio(tmp_path / "a", n=40)
    out = tmp_path / "data" / "words"
    cmd = [sys.executable, "-c",
           "import sys, time, finebench.data.speech as sp\n"
           "orig = sp.read_clip\n"
           "def slow(*a):\n    time.sleep(0.05)\n    return orig(*a)\n"
           "sp.read_clip = slow\n"
           "from finebench.cli import main\n"
           f"sys.exit(main(['prepare', '--task', 'words', '--dataset', 'audiofolder', '--options', "
           f"'{json.dumps({'root': str(tmp_path / 'a')})}', '--out', '{out}']))\n"]
    proc = subprocess.Popen(cmd)
    deadline = time.monotonic() + 60
    while not list(out.parent.glob(".words.partial-*/train_x.npy")) and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = list(out.parent.glob(".words.partial-*"))
    assert len(partial) == 1 and not out.exists()
    m = prepare_task("words", "audiofolder", audio_opts(tmp_path / "a"), out)
    assert not partial[0].exists() and (out / "manifest.json").is_file()
    assert sum(s["n"] for s in m["splits"].values()) == 80
