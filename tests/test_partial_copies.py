"""Partial or edited copies of the real datasets (issue 21, item 9): each parser prepares what the copy holds, with a
warning naming what differs and the counts against the release's, or stops with an error naming the file and line.

Every copy here is one of tests/official.py's fixtures edited as a user's copy may be: a subset of the classes keeping
the release's ids (gaps), files listed but deleted, names re-saved with trailing spaces / other case / CRLF / blank
lines."""

import json
import shutil

import numpy as np
import pytest

import official
from finebench.data import DATASETS, prepare_task
from finebench.errors import FinebenchError


def prep(tmp_path, dataset, root, **opts):
    options = {**DATASETS[dataset].defaults, "root": str(root), **opts}
    if DATASETS[dataset].modality == "vision":
        options.update(image_size=24, resize=28, workers=1)
    return prepare_task(dataset, dataset, options, tmp_path / "prepared" / dataset)


def labels_used(tmp_path, dataset):
    return sorted({int(v) for s in ("train", "val", "test")
                   for v in np.load(tmp_path / "prepared" / dataset / f"{s}_y.npy")})


def check_manifest(tmp_path, m, classes):
    """The prepared classes are those present, renumbered 0..K-1, and every one is used."""
    assert m["classes"] == classes and m["num_classes"] == len(classes)
    assert labels_used(tmp_path, m["dataset"]) == list(range(len(classes)))
    on_disk = json.loads((tmp_path / "prepared" / m["dataset"] / "manifest.json").read_text())
    assert on_disk["classes"] == classes and on_disk["source"]["partial_copy"] == m["source"]["partial_copy"]


# --- vision -----------------------------------------------------------------------------------------------------------

def test_cub200_class_subset_missing_image_trailing_spaces(tmp_path, capsys):
    root, _ = official.cub(tmp_path)
    # keep the release's class ids 1 and 3 (class 2's images deleted and unlisted)
    gone = {str(k) for k in range(5, 9)}  # the images of class 2
    for f in ("images.txt", "image_class_labels.txt", "train_test_split.txt"):
        official.edit_lines(root / f, lambda line: None if line.split()[0] in gone else line)
    official.edit_lines(root / "classes.txt", lambda line: None if line.startswith("2 ") else line + "  ",
                        newline="\r\n", blank_lines=2)
    shutil.rmtree(root / "images" / "002.Laysan_Albatross")
    (root / "images" / "003.Sooty_Albatross" / "Sooty_Albatross_0000_1009.jpg").unlink()  # listed, not on disk
    m = prep(tmp_path, "cub200", root)
    check_manifest(tmp_path, m, ["001.Black_footed_Albatross", "003.Sooty_Albatross"])
    assert m["splits"]["test"]["n"] == 2 and m["splits"]["train"]["n"] + m["splits"]["val"]["n"] == 5
    err = capsys.readouterr().err
    assert "1 images listed but not on disk, left out: train 1 of 6 (train_test_split.txt)" in err
    assert "Sooty_Albatross_0000_1009.jpg" in err
    assert "classes 2 (official 200), train 5 (official 5994), test 2 (official 5794)" in err
    assert [f["kind"] for f in m["source"]["partial_copy"]] == ["missing_files"]


def test_cub200_class_listed_without_images_is_dropped_and_unknown_class_id_is_an_error(tmp_path, capsys):
    root, _ = official.cub(tmp_path)
    gone = {str(k) for k in range(1, 5)}  # class 1's images; classes.txt still lists it
    for f in ("images.txt", "image_class_labels.txt", "train_test_split.txt"):
        official.edit_lines(root / f, lambda line: None if line.split()[0] in gone else line)
    m = prep(tmp_path, "cub200", root)
    check_manifest(tmp_path, m, ["002.Laysan_Albatross", "003.Sooty_Albatross"])
    err = capsys.readouterr().err
    assert ("1 of the 3 classes of classes.txt have no example in this copy: 001.Black_footed_Albatross; the 2 "
            "present are prepared as classes 0-1") in err
    assert "classes 2 (official 200)" in err
    # an image whose class is not in classes.txt: the line is named
    official.edit_lines(root / "image_class_labels.txt", lambda line: "6 7" if line.startswith("6 ") else line)
    with pytest.raises(FinebenchError, match=r"image_class_labels\.txt:2: image 6 has class id '7', which is not in "
                                             r"classes\.txt \(its ids: 1-3\)"):
        prep(tmp_path / "again", "cub200", root)
    (root / "classes.txt").write_text("\n\n")
    with pytest.raises(FinebenchError, match=r"classes\.txt: lists no class"):
        prep(tmp_path / "again", "cub200", root)


def test_fgvc_aircraft_trailing_space_case_missing_image_absent_variant(tmp_path, capsys):
    root, _ = official.aircraft(tmp_path)
    data = root / "data"
    official.edit_lines(data / "variants.txt", lambda line: line + " ", newline="\r\n", blank_lines=1)  # "Cessna 172 "
    official.edit_lines(data / "images_variant_test.txt", lambda line: line.replace("Cessna 172", "cessna  172"))
    for split in ("train", "val", "test"):  # Gulfstream IV: listed in variants.txt, no image in this copy
        official.edit_lines(data / f"images_variant_{split}.txt",
                            lambda line: None if line.endswith("Gulfstream IV") else line)
    first_train = (data / "images_variant_train.txt").read_text().split()[0]
    (data / "images" / f"{first_train}.jpg").unlink()
    m = prep(tmp_path, "fgvc_aircraft", root)
    check_manifest(tmp_path, m, ["707-320", "Cessna 172"])
    assert {s: v["n"] for s, v in m["splits"].items()} == {"train": 5, "val": 4, "test": 4}
    err = capsys.readouterr().err
    assert "'cessna  172' -> 'Cessna 172'" in err
    assert "1 images listed but not on disk, left out: train 1 of 6 (images_variant_train.txt); e.g. " in err
    assert "1 of the 3 classes of variants.txt have no example in this copy: Gulfstream IV" in err
    assert "classes 2 (official 100), train 5 (official 3334), val 4 (official 3333), test 4 (official 3333)" in err
    official.edit_lines(data / "images_variant_val.txt", lambda line: line.replace("707-320", "707-321"))
    with pytest.raises(FinebenchError, match=r"images_variant_val\.txt:1: variant '707-321' is not in variants\.txt "
                                             r"\(did you mean '707-320'"):
        prep(tmp_path / "again", "fgvc_aircraft", root)


def test_flowers102_label_gaps_and_missing_jpg(tmp_path, capsys):
    from scipy.io import savemat

    root, _ = official.flowers(tmp_path)
    # a subset keeping the release's labels 1, 2 and 6 (no flower 3-5)
    labels = np.array([1, 2, 6] * 5)
    savemat(root / "imagelabels.mat", {"labels": labels[None, :].astype(np.uint8)})
    (root / "jpg" / "image_00013.jpg").unlink()  # in tstid
    m = prep(tmp_path, "flowers102", root)
    check_manifest(tmp_path, m, ["flower_001", "flower_002", "flower_006"])
    assert np.load(tmp_path / "prepared/flowers102/val_y.npy").tolist() == [0, 1, 2]
    err = capsys.readouterr().err
    assert ("3 of the 6 classes numbered 1-6 in imagelabels.mat have no example in this copy: flower_003, "
            "flower_004, flower_005; the 3 present are prepared as classes 0-2") in err
    assert "1 images listed but not on disk, left out: test 1 of 6 (setid.mat); e.g. " in err
    assert "classes 3 (official 102), train 6 (official 1020), val 3 (official 1020), test 5 (official 6149)" in err
    savemat(root / "imagelabels.mat", {"labels": labels[None, :12].astype(np.uint8)})
    with pytest.raises(FinebenchError, match=r"setid\.mat: 'tstid' names image 13, but imagelabels\.mat labels "
                                             r"images 1-12 only"):
        prep(tmp_path / "again", "flowers102", root)


def test_oxford_pets_class_ids_with_gaps(tmp_path, capsys):
    """The bug of issue 21 item 9: a subset keeping the real ids 1, 2, 6 crashed with KeyError: 2."""
    root, want = official.pets(tmp_path)
    for f in ("trainval.txt", "test.txt"):
        official.edit_lines(root / "annotations" / f, lambda line: line.replace(" 3 1 2", " 6 1 2") + "  ",
                            newline="\r\n", blank_lines=1)
    m = prep(tmp_path, "oxford_pets", root)
    check_manifest(tmp_path, m, want["names"])
    err = capsys.readouterr().err
    assert ("the annotations number 3 classes with gaps: ids 1-2, 6 (the release numbers its 37 classes 1-37); they "
            "are prepared as classes 0-2 in id order, names kept") in err
    assert "classes 3 (official 37), train 9 (official 3680), test 6 (official 3669)" in err


def test_oxford_pets_missing_images_and_a_single_train_image(tmp_path, capsys):
    root, want = official.pets(tmp_path)
    for j in (1, 2):  # Bengal keeps one trainval image: too few to carve val from, kept in train
        (root / "images" / f"Bengal_{j}.jpg").unlink()
    for j in (4, 5):  # american_bulldog's test images are gone
        (root / "images" / f"american_bulldog_{j}.jpg").unlink()
    m = prep(tmp_path, "oxford_pets", root)
    check_manifest(tmp_path, m, want["names"])
    assert m["splits"]["train"]["class_counts"][2] == 1 and m["splits"]["val"]["class_counts"][2] == 0
    err = capsys.readouterr().err
    assert ("4 images listed but not on disk, left out: train 2 of 9 (trainval.txt), test 2 of 6 (test.txt); e.g. "
            in err)
    assert ("1 class(es) have a single training example, kept in train (so no val example is carved for them): Bengal"
            in err)
    assert "classes 3 (official 37), train 7 (official 3680), test 4 (official 3669)" in err
    official.edit_lines(root / "annotations" / "test.txt",
                        lambda line: line.replace("Abyssinian_5 1", "Abyssinian_5 x"))
    with pytest.raises(FinebenchError, match=r"test\.txt:\d+: expected '<image> <class id 1, 2, …> <species> "
                                             r"<breed id>', got 'Abyssinian_5 x 1 1'"):
        prep(tmp_path / "again", "oxford_pets", root)


# --- text -------------------------------------------------------------------------------------------------------------

def test_sst5_absent_labels_bom_crlf_blank_lines(tmp_path, capsys):
    root, _ = official.sst(tmp_path, sizes=(3, 3, 3))  # root labels 3, 0, 2 only: no 'negative', 'very positive'
    for f in ("train.txt", "dev.txt", "test.txt"):
        official.edit_lines(root / "trees" / f, newline="\r\n", bom=True, blank_lines=2)  # saved by a Windows editor
    m = prep(tmp_path, "sst5", root)
    check_manifest(tmp_path, m, ["very negative", "neutral", "positive"])
    assert json.loads(open(tmp_path / "prepared/sst5/train_text.jsonl").readline())["label"] == 2  # 'positive'
    err = capsys.readouterr().err
    assert ("2 of the 5 classes of SST-5 have no example in this copy: negative, very positive; the 3 present are "
            "prepared as classes 0-2") in err
    assert "classes 3 (official 5), train 3 (official 8544), val 3 (official 1101), test 3 (official 2210)" in err
    official.edit_lines(root / "trees" / "dev.txt", lambda line: line.replace("(2 (2 It)", "(7 (2 It)"))
    with pytest.raises(FinebenchError, match=r"dev\.txt:3: root label 7 is not one of SST-5's 0-4"):
        prep(tmp_path / "again", "sst5", root)


def test_trec50_case_tabs_and_a_single_train_question(tmp_path, capsys):
    root, _ = official.trec(tmp_path)
    seen = set()

    def once(line):  # DESC:manner keeps one training question; the others are tab-separated, as re-saved copies are
        if line.startswith("DESC:manner"):
            if "DESC" in seen:
                return None
            seen.add("DESC")
        return line.replace(" ", "\t", 1) + " "

    official.edit_lines(root / "train_5500.label", once, encoding="latin-1", newline="\r\n", blank_lines=1)
    official.edit_lines(root / "TREC_10.label", lambda line: line.replace("HUM:ind", "hum:IND"), encoding="latin-1")
    m = prep(tmp_path, "trec50", root)
    assert m["classes"] == ["DESC:manner", "ENTY:cremat", "HUM:ind", "LOC:city", "NUM:date", "NUM:dist"]
    assert m["splits"]["train"]["class_counts"][0] == 1 and m["splits"]["val"]["class_counts"][0] == 0
    texts = [json.loads(line)["text"] for s in ("train", "val")
             for line in open(tmp_path / f"prepared/trec50/{s}_text.jsonl")]
    assert "Who was the café owner in Casablanca ?" in texts
    err = capsys.readouterr().err
    assert ("1 label(s) differ from an earlier spelling only in case, read as that spelling: hum:IND (TREC_10.label:3)"
            in err)
    assert ("1 class(es) have a single training example, kept in train (so no val example is carved for them): "
            "DESC:manner" in err)
    assert "classes 6 (official 50), train 16 (official 5452), test 3 (official 500)" in err
    (root / "TREC_10.label").write_text("\n")
    with pytest.raises(FinebenchError, match=r"TREC_10\.label: holds no question"):
        prep(tmp_path / "again", "trec50", root)


def test_goemotions_trailing_spaces_blank_lines_absent_emotion(tmp_path, capsys):
    root, _ = official.goemotions(tmp_path)
    official.edit_lines(root / "emotions.txt", lambda line: line + " ", newline="\r\n", blank_lines=1)  # "anger \r\n"
    for f in ("train.tsv", "dev.tsv", "test.tsv"):  # no single-label 'amusement' example left; a blank line at the end
        official.edit_lines(root / f, lambda line: None if "\t1\t" in line else line, blank_lines=1)
    m = prep(tmp_path, "goemotions", root)
    check_manifest(tmp_path, m, ["admiration", "anger", "neutral"])
    assert m["source"]["dropped"] == {"train": 1, "val": 1, "test": 0}
    err = capsys.readouterr().err
    assert ("1 of the 4 classes of emotions.txt have no example in this copy: amusement; the 3 present are prepared "
            "as classes 0-2") in err
    assert "classes 3 (official 28), train 6 (official 43410), val 2 (official 5426), test 3 (official 5427)" in err
    official.edit_lines(root / "test.tsv", lambda line: line.replace("grr\t2", "grr\t4"))
    with pytest.raises(FinebenchError, match=r"test\.tsv:2: label '4' is not an emotion id: expected comma-separated "
                                             r"ids 0-3 \(emotions\.txt lists 4 emotions\)"):
        prep(tmp_path / "again", "goemotions", root)


# --- speech -----------------------------------------------------------------------------------------------------------

def test_speech_commands_partial_copy(tmp_path, capsys):
    root, _ = official.speech_commands(tmp_path)
    shutil.rmtree(root / "bird")  # a copy of fewer words: the lists still name bird's clips
    (root / "yes" / "0e4d22f1_nohash_0.wav").unlink()  # one listed test clip deleted
    (root / "dog").mkdir()  # an empty word folder is not a class
    for f in ("validation_list.txt", "testing_list.txt"):
        official.edit_lines(root / f, lambda line: line + " ", newline="\r\n", blank_lines=1)
    m = prep(tmp_path, "speech_commands", root)
    check_manifest(tmp_path, m, ["bed", "yes"])
    assert {s: v["n"] for s, v in m["splits"].items()} == {"train": 6, "val": 2, "test": 1}
    err = capsys.readouterr().err
    assert ("3 clip(s) listed but not on disk, left out: val 1 of 3 (validation_list.txt: 1 of words without a folder "
            "here: bird), test 2 of 3 (testing_list.txt: 1 of words without a folder here: bird; 1 missing from their "
            "word folder, e.g. yes/0e4d22f1_nohash_0.wav)") in err
    assert "1 of the 3 classes (word folders in" in err and "have no example in this copy: dog" in err
    assert "classes 2 (official 35), train 6 (official 84843), val 2 (official 9981), test 1 (official 11005)" in err
    (root / "testing_list.txt").write_text("bird/0e4d22f1_nohash_0.wav\n")
    with pytest.raises(FinebenchError, match=r"testing_list\.txt: none of the 1 clips it lists is in"):
        prep(tmp_path / "again", "speech_commands", root)
