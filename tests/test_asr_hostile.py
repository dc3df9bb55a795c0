"""asr_table against hostile input (issue 32, items 5 and 8): one file in two splits, paths outside root, an
undecodable table, jsonl lines that are no object or have no path, NaN samples and a 30-minute file — each a
FinebenchError naming the file and line (or the audio file) and the option that changes it, never a traceback or a
silent leak."""

import json
import re

import numpy as np
import pandas as pd
import pytest

from finebench.data import DATASETS, prepare_task
from finebench.errors import FinebenchError


def wav(path, seconds=0.4, rate=16000, seed=0, subtype=None):
    import soundfile as sf

    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), np.random.default_rng(seed).normal(0, 0.1, int(seconds * rate)).astype(np.float32), rate,
             subtype=subtype)


@pytest.fixture
def mine(tmp_path):
    """Two speakers, three utterances each, one per split: root and the options of a table ``t.csv`` in it."""
    root = tmp_path / "mine"
    rows = []
    for s, spk in enumerate(("spk0", "spk1")):
        for k, split in enumerate(("train", "val", "test")):
            wav(root / spk / f"u{k}.wav", seed=10 * s + k)
            rows.append({"path": f"{spk}/u{k}.wav", "text": "go", "speaker": spk, "split": split})
    opt = {**DATASETS["asr_table"].defaults, "n_mels": 40, "root": str(root), "table": "t.csv"}
    return root, rows, opt


def table(root, rows, name="t.csv"):
    pd.DataFrame(rows).to_csv(root / name, index=False)


def test_the_fixture_prepares(mine, tmp_path):
    root, rows, opt = mine
    table(root, rows)
    m = prepare_task("mine", "asr_table", opt, tmp_path / "out")
    assert [m["splits"][s]["n"] for s in ("train", "val", "test")] == [2, 2, 2]


@pytest.mark.parametrize("alias, line, same", [
    ("./spk0/u0.wav", 8, "the same file as spk0/u0.wav at line 2 (split train)"),
    ("spk1/../spk0/u0.wav", 8, "the same file as spk0/u0.wav at line 2 (split train)"),
    ("spk0/u0.flac", 8, "the same utterance id 'spk0/u0' (its path without the extension) as spk0/u0.wav at line 2"),
])
def test_one_file_in_two_splits_is_named_with_both_lines(mine, tmp_path, alias, line, same):
    root, rows, opt = mine
    wav(root / "spk0" / "u0.flac")
    table(root, rows + [{"path": alias, "text": "go", "speaker": "spk0", "split": "test"}])
    with pytest.raises(FinebenchError) as err:
        prepare_task("mine", "asr_table", opt, tmp_path / "out")
    assert f"t.csv:{line}: {alias} (split test) is {same}" in str(err.value)
    assert "list each audio file once, in one split" in str(err.value)


@pytest.mark.parametrize("outside", ["../outside.wav", "ABS"])
def test_a_path_outside_root_is_an_error_naming_the_line(mine, tmp_path, outside):
    root, rows, opt = mine
    wav(tmp_path / "outside.wav")
    path = str(tmp_path / "outside.wav") if outside == "ABS" else outside
    table(root, rows + [{"path": path, "text": "go", "speaker": "spk0", "split": "train"}])
    with pytest.raises(FinebenchError, match=rf"t\.csv:8: {re.escape(path)} is outside root .*tasks\.mine\.root"):
        prepare_task("mine", "asr_table", opt, tmp_path / "out")


def test_an_absolute_path_inside_root_is_read(mine, tmp_path):
    root, rows, opt = mine
    rows[0]["path"] = str(root / "spk0" / "u0.wav")
    table(root, rows)
    prepare_task("mine", "asr_table", opt, tmp_path / "out")
    assert "spk0/u0" in pd.read_csv(tmp_path / "out" / "train_utterances.csv")["id"].tolist()


def test_a_table_not_in_utf8_names_line_and_the_encoding_option(mine, tmp_path):
    root, rows, opt = mine
    rows[3]["text"] = "café"
    (root / "t.csv").write_bytes(pd.DataFrame(rows).to_csv(index=False).encode("latin-1"))
    with pytest.raises(FinebenchError, match=r"t\.csv:5: not valid utf-8.*byte 0xe9.*tasks\.mine\.encoding"):
        prepare_task("mine", "asr_table", opt, tmp_path / "a")
    prepare_task("mine", "asr_table", {**opt, "encoding": "latin-1", "alphabet": "abcdefghijklmnopqrstuvwxyz'é"},
                 tmp_path / "b")
    assert "café" in pd.read_csv(tmp_path / "b" / "train_utterances.csv")["text"].tolist()
    assert DATASETS["asr_table"].defaults["encoding"] == "utf-8"
    with pytest.raises(FinebenchError, match=r"tasks\.mine\.encoding: 'latn1' is not an encoding"):
        prepare_task("mine", "asr_table", {**opt, "encoding": "latn1"}, tmp_path / "c")


@pytest.mark.parametrize("line, message", [
    ('["spk0/u0.wav", "go"]', r"t\.jsonl:2: not a JSON object"),
    ('{"text": "go", "split": "val"}', r"t\.jsonl:2: no path"),
])
def test_a_jsonl_line_that_is_no_object_or_has_no_path_is_named(mine, tmp_path, line, message):
    root, rows, opt = mine
    lines = [json.dumps(r) for r in rows]
    lines[1] = line
    (root / "t.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(FinebenchError, match=message):
        prepare_task("mine", "asr_table", {**opt, "table": "t.jsonl"}, tmp_path / "out")


def test_a_nan_sample_names_the_audio_file(mine, tmp_path):
    import soundfile as sf

    root, rows, opt = mine
    x = np.random.default_rng(0).normal(0, 0.1, 6400).astype(np.float32)
    x[100] = np.nan
    sf.write(str(root / "spk1" / "u0.wav"), x, 16000, subtype="FLOAT")
    table(root, rows)
    with pytest.raises(FinebenchError, match=r"spk1/u0\.wav: 1 of 6400 samples are not finite \(NaN or inf\)"):
        prepare_task("mine", "asr_table", opt, tmp_path / "out")


def test_a_30_minute_file_is_named_with_its_duration_and_max_seconds(mine, tmp_path):
    root, rows, opt = mine
    assert all(DATASETS[d].defaults["max_seconds"] == 60 for d in ("asr_table", "librispeech", "mini_librispeech"))
    wav(root / "spk0" / "u1.wav", seconds=1800, rate=8000)
    table(root, rows)
    with pytest.raises(FinebenchError, match=r"t\.csv:3: utterance 'spk0/u1' is 1800\.0 s long, over "
                                             r"tasks\.mine\.max_seconds \(60\).*skip_long"):
        prepare_task("mine", "asr_table", opt, tmp_path / "a")
    m = prepare_task("mine", "asr_table", {**opt, "skip_long": True}, tmp_path / "b")
    assert m["splits"]["val"]["n"] == 1 and m["skipped"]["too_long"]["n"] == 1
