import json

import numpy as np
import pytest

from finebench.data import DATASETS, Prepared, prepare_task
from finebench.errors import FinebenchError

TYPEFACES = {**DATASETS["typefaces"].defaults, "families": ["NimbusSans", "URWGothic"], "styles_per_family": 2,
             "vocabulary": 200, "train_per_class": 6, "val_per_class": 2, "test_per_class": 3}
SPEECH = {**DATASETS["speech_commands_synth"].defaults, "words": ["three", "tree", "bed"], "speakers": 10,
          "val_fraction": 0.2, "test_fraction": 0.2}


def arrays(path):
    return {f.name: np.load(f) for f in sorted(path.glob("*.npy"))}


def test_typefaces_prepared_form_and_determinism(tmp_path):
    m = prepare_task("tf", "typefaces", TYPEFACES, tmp_path / "a")
    assert m["classes"] == ["NimbusSans-Regular", "NimbusSans-Bold", "URWGothic-Book", "URWGothic-Demi"]
    assert {s: v["n"] for s, v in m["splits"].items()} == {"train": 24, "val": 8, "test": 12}
    assert all(len(f["sha256"]) == 64 for f in m["source"]["fonts"].values())
    x = np.load(tmp_path / "a" / "train_x.npy")
    assert x.shape == (24, 1, 32, 64) and x.dtype == np.uint8 and x.std() > 10
    prepare_task("tf", "typefaces", TYPEFACES, tmp_path / "b")
    a, b = arrays(tmp_path / "a"), arrays(tmp_path / "b")
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    prepare_task("tf", "typefaces", {**TYPEFACES, "seed": 1}, tmp_path / "c")
    assert not np.array_equal(a["train_x.npy"], np.load(tmp_path / "c" / "train_x.npy"))


def test_typefaces_test_words_never_in_training(tmp_path):
    m = prepare_task("tf", "typefaces", TYPEFACES, tmp_path / "tf")
    words = json.loads((tmp_path / "tf" / "words.json").read_text())
    assert set(words["train"]).isdisjoint(words["test"]) and set(words["train"]).isdisjoint(words["val"])
    assert m["words"] == {s: len(w) for s, w in words.items()}


def test_missing_fonts_name_the_package(tmp_path):
    with pytest.raises(FinebenchError, match="fonts-urw-base35"):
        prepare_task("tf", "typefaces", {**TYPEFACES, "font_dir": str(tmp_path / "nofonts")}, tmp_path / "out")
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.partial*"))


def test_wordnet_parser_split_by_synset_and_train_only_tokenizer(tmp_path, tiny_wordnet):
    # A word that appears only in the test split must not be in the tokenizer's vocabulary.
    opts = {**DATASETS["wordnet_supersenses"].defaults, "wordnet_dir": str(tiny_wordnet), "min_per_class": 5,
            "vocab_size": 200, "max_len": 16}
    m = prepare_task("wn", "wordnet_supersenses", opts, tmp_path / "wn")
    assert m["classes"] == ["noun.animal", "noun.plant", "verb.motion"]
    assert {s: v["n"] for s, v in m["splits"].items()} == {"train": 63, "val": 9, "test": 18}
    texts = {s: [json.loads(line)["text"] for line in open(tmp_path / "wn" / f"{s}_text.jsonl")]
             for s in ("train", "val", "test")}
    assert all(set(texts["train"]).isdisjoint(texts[s]) for s in ("val", "test"))  # each synset in one split
    assert not any('"' in t for t in texts["train"])  # usage examples stripped from the gloss
    vocab = json.loads((tmp_path / "wn" / "tokenizer.json").read_text())["model"]["vocab"]
    train_words = {w for t in texts["train"] for w in t.lower().split()}
    test_only = {w for t in texts["test"] for w in t.lower().split()} - train_words
    assert len(test_only) == 18  # one made-up word per test synset, used twice in its gloss
    assert all(w not in vocab for w in test_only)
    assert sum(w in vocab for w in train_words if w.startswith("zq")) > 30  # ...while train-only ones are kept
    assert vocab["[PAD]"] == 0
    x = np.load(tmp_path / "wn" / "train_x.npy")
    assert x.dtype == np.int32 and x.shape == (63, 16) and (x[:, 0] != 0).all()


def test_wordnet_missing_database_names_the_package(tmp_path):
    opts = {**DATASETS["wordnet_supersenses"].defaults, "wordnet_dir": str(tmp_path / "none")}
    with pytest.raises(FinebenchError, match="wordnet-base"):
        prepare_task("wn", "wordnet_supersenses", opts, tmp_path / "wn")


def test_wordnet_malformed_line_names_file_and_line(tmp_path, tiny_wordnet):
    with open(tiny_wordnet / "data.verb", "a") as f:
        f.write("this is not a wordnet line\n")
    opts = {**DATASETS["wordnet_supersenses"].defaults, "wordnet_dir": str(tiny_wordnet)}
    with pytest.raises(FinebenchError, match=r"data\.verb:\d+: not a WordNet data line"):
        prepare_task("wn", "wordnet_supersenses", opts, tmp_path / "wn")
    assert not (tmp_path / "wn").exists()


def test_speech_split_by_speaker_determinism_and_shapes(tmp_path):
    m = prepare_task("sp", "speech_commands_synth", SPEECH, tmp_path / "a")
    spk = m["speakers"]
    assert sum(len(v) for v in spk.values()) == 10
    assert set(spk["train"]).isdisjoint(spk["test"]) and set(spk["train"]).isdisjoint(spk["val"])
    assert set(spk["val"]).isdisjoint(spk["test"])
    assert {s: v["n"] for s, v in m["splits"].items()} == {s: 3 * len(spk[s]) for s in spk}
    x = np.load(tmp_path / "a" / "train_x.npy")
    assert x.shape == (3 * len(spk["train"]), 1, 40, 50) and x.dtype == np.float16 and np.isfinite(x).all()
    assert m["data_note"] == "SYNTHESIZED speech (espeak-ng)" and m["source"]["espeak_ng_version"]
    prepare_task("sp", "speech_commands_synth", SPEECH, tmp_path / "b")
    a, b = arrays(tmp_path / "a"), arrays(tmp_path / "b")
    assert all(np.array_equal(a[k], b[k]) for k in a)
    import soundfile as sf

    wav, sr = sf.read(next((tmp_path / "a" / "examples").glob("*_three.wav")))
    assert sr == 16000 and len(wav) == 16000


def test_speech_words_typo_and_yaml_booleans(tmp_path):
    with pytest.raises(FinebenchError, match="quote them"):
        prepare_task("sp", "speech_commands_synth", {**SPEECH, "words": ["three", False]}, tmp_path / "x")


def test_loader_trims_token_batches_and_scales_images(tmp_path, tiny_wordnet):
    import torch

    prepare_task("tf", "typefaces", TYPEFACES, tmp_path / "tf")
    data = Prepared(tmp_path / "tf")
    x, y = next(data.batches("train", 5, "cpu"))
    assert x.shape == (5, 1, 32, 64) and x.min() >= -1 and x.max() <= 1 and y.dtype == torch.int64
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    ys1 = [b[1] for b in data.batches("train", 5, "cpu", shuffle=True, generator=g1)]
    ys2 = [b[1] for b in data.batches("train", 5, "cpu", shuffle=True, generator=g2)]
    assert all(torch.equal(a, b) for a, b in zip(ys1, ys2))
    opts = {**DATASETS["wordnet_supersenses"].defaults, "wordnet_dir": str(tiny_wordnet), "vocab_size": 200,
            "max_len": 40}
    prepare_task("wn", "wordnet_supersenses", opts, tmp_path / "wn")
    wn = Prepared(tmp_path / "wn")
    x, _ = next(wn.batches("test", 4, "cpu"))
    assert x.shape[1] < 40 and (x[:, -1] != 0).any()  # trimmed to the longest sequence in the batch


def test_unprepared_folder_is_refused(tmp_path):
    (tmp_path / "half").mkdir()
    with pytest.raises(FinebenchError, match="no manifest.json"):
        Prepared(tmp_path / "half")


def test_tfidf_baseline_on_prepared_text(tmp_path, tiny_wordnet):
    from finebench.baselines import text_baselines

    opts = {**DATASETS["wordnet_supersenses"].defaults, "wordnet_dir": str(tiny_wordnet), "vocab_size": 200}
    prepare_task("wn", "wordnet_supersenses", opts, tmp_path / "wn")
    out = text_baselines(tmp_path / "wn")
    assert out["majority_test_accuracy"] == pytest.approx(1 / 3)
    assert out["tfidf_logreg_test_accuracy"] == 1.0  # the fixture's classes have disjoint vocabularies


def test_every_voice_variant_is_reproducible():
    from finebench.data.speech_synth import VARIANTS, synthesize

    requests = [(w, f"{accent}+{v}", 160, 50, 50, 7) for v in VARIANTS for accent in ("en-us", "en-gb-scotland")
                for w in ("three", "sheila")]
    first, sr, _ = synthesize(requests)
    second, _, _ = synthesize(requests)
    assert sr == 22050 and all(len(a) > 1000 for a in first)
    differs = sorted({r[1] for r, a, b in zip(requests, first, second) if not np.array_equal(a, b)})
    assert differs == []


def test_tokenizer_training_is_deterministic():
    """The same train texts always give the same vocabulary and ids (tokenizers' WordPiece trainer does not)."""
    from finebench.data.text import fit_tokenizer

    rng = np.random.default_rng(0)
    syllables = ["ka", "lo", "mi", "ne", "ru", "sa", "ti", "po", "ve", "zu"]
    words = ["".join(rng.choice(syllables, rng.integers(1, 4))) for _ in range(400)]
    texts = [" ".join(rng.choice(words, 8)) for _ in range(300)]  # many equally frequent pairs: ties to break
    first = fit_tokenizer(texts, 300).to_str()
    assert all(fit_tokenizer(texts, 300).to_str() == first for _ in range(20))
