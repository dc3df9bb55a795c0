"""Parsers for the real datasets, on fixtures in each dataset's exact official layout (tests/official.py)."""

import json

import numpy as np
import pytest

import official
from finebench.data import DATASETS, Prepared, prepare_task
from finebench.errors import FinebenchError


def prep(tmp_path, dataset, root, **opts):
    options = {**DATASETS[dataset].defaults, "root": str(root), **opts}
    if DATASETS[dataset].modality == "vision":
        options.update(image_size=24, resize=28, workers=1)
    return prepare_task(dataset, dataset, options, tmp_path / "prepared" / dataset)


def sizes(m):
    return {s: v["n"] for s, v in m["splits"].items()}


def test_cub200(tmp_path):
    root, want = official.cub(tmp_path)
    m = prep(tmp_path, "cub200", root)
    assert m["num_classes"] == 3 and m["classes"][0] == "001.Black_footed_Albatross"
    assert sizes(m)["test"] == want["test"] and sizes(m)["train"] + sizes(m)["val"] == want["train+val"]
    assert m["carved_splits"]["val"]["from"] == "train"
    x = np.load(tmp_path / "prepared/cub200/train_x.npy", mmap_mode="r")
    assert x.shape[1:] == (3, 28, 28) and x.dtype == np.uint8


def test_fgvc_aircraft_variant_names_with_spaces(tmp_path):
    root, want = official.aircraft(tmp_path)
    m = prep(tmp_path, "fgvc_aircraft", root)
    assert m["classes"] == ["707-320", "Cessna 172", "Gulfstream IV"]
    assert sizes(m) == {k: want[k] for k in ("train", "val", "test")} and not m["carved_splits"]
    # the white 20-px copyright banner is cut off before resizing (the README asks for it); kept with crop_bottom: 0
    assert m["input"]["cropped_bottom_px"] == 20
    assert np.load(tmp_path / "prepared/fgvc_aircraft/test_x.npy").max() < 200
    prep(tmp_path / "kept", "fgvc_aircraft", root, crop_bottom=0)
    assert np.load(tmp_path / "kept/prepared/fgvc_aircraft/test_x.npy")[:, :, -4:].min() > 200


def test_official_counts_are_checked(tmp_path, capsys):
    """Every built-in dataset states the release's counts; a copy that differs is flagged (stderr + manifest)."""
    root, want = official.cub(tmp_path)
    m = prep(tmp_path, "cub200", root)
    got = m["official_counts"]
    assert got["expected"] == {"classes": 200, "train": 5994, "test": 5794}
    # the carved val split is counted back into train: these are the official files' sizes
    assert got["found"] == {"classes": 3, "train": want["train+val"], "test": want["test"]} and not got["match"]
    err = capsys.readouterr().err
    assert "WARNING cub200" in err and "classes 3 (official 200)" in err and "train 9 (official 5994)" in err
    # dropped rows count too (GoEmotions' files hold multi-label rows the single-label task drops)
    root, want = official.goemotions(tmp_path)
    found = prep(tmp_path, "goemotions", root)["official_counts"]["found"]
    assert found == {"classes": 4, **{s: want[s] + want["dropped"][s] for s in ("train", "val", "test")}}
    # counts are only compared for the options they were published for
    root, _ = official.trec(tmp_path)
    assert prep(tmp_path, "trec50", root, granularity="coarse")["official_counts"] is None
    assert all(DATASETS[d].official for d in ("cub200", "fgvc_aircraft", "flowers102", "oxford_pets", "sst5",
                                              "trec50", "goemotions", "speech_commands"))


def test_sst5_at_official_size_matches_the_release(tmp_path, capsys):
    root, _ = official.sst(tmp_path, sizes=(8544, 1101, 2210))
    m = prep(tmp_path, "sst5", root)
    assert m["official_counts"]["match"] and sizes(m) == {"train": 8544, "val": 1101, "test": 2210}
    assert "WARNING" not in capsys.readouterr().err


def test_flowers102_mat_files(tmp_path):
    root, want = official.flowers(tmp_path)
    m = prep(tmp_path, "flowers102", root)
    assert m["num_classes"] == 3 and sizes(m) == {k: want[k] for k in ("train", "val", "test")}
    y = np.load(tmp_path / "prepared/flowers102/val_y.npy")
    assert y.tolist() == [0, 1, 2]  # images 7, 8, 9 have labels 1, 2, 3 (1-based in the .mat)


def test_oxford_pets(tmp_path):
    root, want = official.pets(tmp_path)
    m = prep(tmp_path, "oxford_pets", root)
    assert m["classes"] == want["names"] and sizes(m)["test"] == want["test"]
    assert sizes(m)["train"] + sizes(m)["val"] == want["train+val"]


def test_sst5_ptb_trees(tmp_path):
    root, want = official.sst(tmp_path)
    m = prep(tmp_path, "sst5", root)
    assert m["classes"] == ["very negative", "negative", "neutral", "positive", "very positive"]
    assert sizes(m) == {k: want[k] for k in ("train", "val", "test")}
    rows = [json.loads(line) for line in open(tmp_path / "prepared/sst5/train_text.jsonl")]
    assert rows[0] == {"text": want["first_text"], "label": 3}
    assert rows[1]["text"].endswith("dreadful ( really ) .") and rows[1]["label"] == 0


def test_trec50_latin1(tmp_path):
    root, want = official.trec(tmp_path)
    m = prep(tmp_path, "trec50", root)
    assert m["num_classes"] == want["classes"] and "HUM:ind" in m["classes"]
    assert sizes(m)["test"] == want["test"] and sizes(m)["train"] + sizes(m)["val"] == want["train+val"]
    texts = [json.loads(line)["text"] for s in ("train", "val")
             for line in open(tmp_path / f"prepared/trec50/{s}_text.jsonl")]
    assert any("café" in t for t in texts)
    coarse = prepare_task("t", "trec50", {**DATASETS["trec50"].defaults, "root": str(root), "granularity": "coarse"},
                          tmp_path / "coarse")
    assert coarse["classes"] == ["DESC", "ENTY", "HUM", "LOC", "NUM"]


def test_goemotions_single_label_only(tmp_path):
    root, want = official.goemotions(tmp_path)
    m = prep(tmp_path, "goemotions", root)
    assert m["classes"] == ["admiration", "amusement", "anger", "neutral"]
    assert sizes(m) == {k: want[k] for k in ("train", "val", "test")}
    assert m["source"]["dropped"] == want["dropped"]


def test_speech_commands_lists(tmp_path):
    root, want = official.speech_commands(tmp_path)
    m = prep(tmp_path, "speech_commands", root)
    assert m["classes"] == ["bed", "bird", "yes"]  # _background_noise_ is not a class
    assert sizes(m) == {k: want[k] for k in ("train", "val", "test")}
    x = np.load(tmp_path / "prepared/speech_commands/test_x.npy")
    assert x.shape == (3, 1, 40, 100) and np.isfinite(x).all()


def test_speech_commands_missing_listed_clip(tmp_path, capsys):
    """A listed clip deleted from the copy is left out with a warning naming it (a partial copy is read as it is);
    tests/test_partial_copies.py has a copy of fewer words."""
    root, want = official.speech_commands(tmp_path)
    (root / "bed" / "0d2bcf9d_nohash_0.wav").unlink()
    m = prep(tmp_path, "speech_commands", root)
    assert sizes(m) == {**{k: want[k] for k in ("train", "test")}, "val": want["val"] - 1}
    err = capsys.readouterr().err
    assert "1 clip(s) listed but not on disk, left out: val 1 of 3" in err and "e.g. bed/0d2bcf9d_nohash_0.wav" in err
    assert "val 2 (official 9981)" in err


def test_wrong_root_names_the_missing_file(tmp_path):
    with pytest.raises(FinebenchError, match=r"images\.txt: missing .*tasks\.cub200\.root"):
        prep(tmp_path, "cub200", tmp_path)


def test_imagefolder_with_and_without_splits(tmp_path):
    for c in ("cat", "dog"):
        for i in range(6):
            official.jpeg(tmp_path / "flat" / c / f"{i}.png", i)
            official.jpeg(tmp_path / "split" / ("train" if i < 4 else "test") / c / f"{i}.jpg", i)
    m = prep(tmp_path, "imagefolder", tmp_path / "flat")
    assert (m["classes"] == ["cat", "dog"] and sum(sizes(m).values()) == 12
            and set(m["carved_splits"]) == {"val", "test"})
    m2 = prepare_task("s", "imagefolder", {**DATASETS["imagefolder"].defaults, "root": str(tmp_path / "split"),
                                           "image_size": 16, "resize": 20, "workers": 1}, tmp_path / "s")
    assert sizes(m2)["test"] == 4 and list(m2["carved_splits"]) == ["val"]


def test_text_table_formats(tmp_path):
    import pandas as pd

    df = pd.DataFrame({"sentence": [f"good {i}" for i in range(10)] + [f"bad {i}" for i in range(10)],
                       "y": ["pos"] * 10 + ["neg"] * 10, "part": (["train"] * 7 + ["test"] * 3) * 2})
    df.to_csv(tmp_path / "t.csv", index=False)
    df.to_csv(tmp_path / "t.tsv", sep="\t", index=False)
    df.to_json(tmp_path / "t.jsonl", orient="records", lines=True)
    for ext in ("csv", "tsv", "jsonl"):
        m = prepare_task("t", "text_table", {**DATASETS["text_table"].defaults, "path": str(tmp_path / f"t.{ext}"),
                                             "text_column": "sentence", "label_column": "y", "split_column": "part"},
                         tmp_path / ext)
        assert m["classes"] == ["neg", "pos"] and sizes(m)["test"] == 6 and sizes(m)["train"] + sizes(m)["val"] == 14
    with pytest.raises(FinebenchError, match=r"text_column: column 'text' not in"):
        prepare_task("t", "text_table", {**DATASETS["text_table"].defaults, "path": str(tmp_path / "t.csv")},
                     tmp_path / "x")


def test_audiofolder_resamples_any_rate(tmp_path):
    for w in ("up", "down"):
        for i in range(5):
            official.wav(tmp_path / "audio" / w / f"{i}.wav", i, sr=8000 if i % 2 else 44100, seconds=0.5 + 0.2 * i)
    m = prep(tmp_path, "audiofolder", tmp_path / "audio")
    assert m["classes"] == ["down", "up"] and sum(sizes(m).values()) == 10
    assert np.load(tmp_path / "prepared/audiofolder/train_x.npy").shape[1:] == (1, 40, 100)


def test_real_vision_augmentation_and_normalisation(tmp_path):
    import torch

    root, _ = official.cub(tmp_path)
    prep(tmp_path, "cub200", root)
    data = Prepared(tmp_path / "prepared" / "cub200")
    x_eval, _ = next(data.batches("train", 6, "cpu"))
    x_train, _ = next(data.batches("train", 6, "cpu", shuffle=True, generator=torch.Generator().manual_seed(0),
                                   augment=True))
    assert x_eval.shape == x_train.shape == (6, 3, 24, 24)
    assert -3 < float(x_eval.min()) < 0 < float(x_eval.max()) < 3  # ImageNet-standardised
    again, _ = next(data.batches("train", 6, "cpu", shuffle=True, generator=torch.Generator().manual_seed(0),
                                 augment=True))
    assert torch.equal(x_train, again)


def test_pretrained_file_loads_matching_weights(tmp_path):
    import timm
    import torch

    from finebench.models import build_model

    src = timm.create_model("resnet18", num_classes=10)
    torch.save(src.state_dict(), tmp_path / "r18.pth")
    info = {"kind": "image", "channels": 1, "height": 32, "width": 32}
    model = build_model("timm:resnet18", {"pretrained_file": str(tmp_path / "r18.pth")}, info, 4)
    torch.testing.assert_close(model.layer2[0].conv1.weight, src.layer2[0].conv1.weight)
    assert model.conv1.weight.shape[1] == 1 and model.fc.out_features == 4  # input conv adapted, new head
    with pytest.raises(FinebenchError, match="pretrained_file: .* not found"):
        build_model("timm:resnet18", {"pretrained_file": str(tmp_path / "none.pth")}, info, 4)


def test_pretrained_unreachable_says_how_to_provide_weights(monkeypatch):
    import timm

    from finebench.models import build_model

    real = timm.create_model

    def offline(name, pretrained=False, **kw):
        if pretrained:
            raise OSError("We couldn't connect to 'https://huggingface.co'")
        return real(name, pretrained=False, **kw)

    monkeypatch.setattr(timm, "create_model", offline)
    info = {"kind": "image", "channels": 3, "height": 32, "width": 32}
    with pytest.raises(FinebenchError,
                       match=r"could not fetch pretrained weights .*pretrained_file: /path/to/resnet18\.pth"):
        build_model("timm:resnet18", {"pretrained": True}, info, 4)
