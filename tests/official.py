"""Tiny fixtures in each real dataset's exact official layout and file formats (made by the tests, never downloaded).

Every writer returns the folder a user would pass as ``root:`` and the counts the parser must report.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def jpeg(path: Path, seed: int, size=(40, 30), banner: int = 0) -> None:
    """A noise JPEG; with ``banner``, dark noise above a white band that many pixels high (FGVC-Aircraft's
    copyright banner)."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 100 if banner else 255, (size[1], size[0], 3), dtype=np.uint8)
    if banner:
        pixels[-banner:] = 255
    Image.fromarray(pixels).save(path, quality=90)


def wav(path: Path, seed: int, sr: int = 16000, seconds: float = 1.0) -> None:
    import soundfile as sf

    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    sf.write(path, (0.1 * rng.standard_normal(int(sr * seconds))).astype(np.float32), sr)


def cub(base: Path) -> tuple[Path, dict]:
    root = base / "CUB_200_2011"
    classes = ["001.Black_footed_Albatross", "002.Laysan_Albatross", "003.Sooty_Albatross"]
    images, labels, split = [], [], []
    k = 0
    for c, cname in enumerate(classes, 1):
        for j in range(4):
            k += 1
            rel = f"{cname}/{cname.split('.', 1)[1]}_{j:04d}_{1000 + k}.jpg"
            jpeg(root / "images" / rel, k)
            images.append(f"{k} {rel}")
            labels.append(f"{k} {c}")
            split.append(f"{k} {1 if j < 3 else 0}")  # 1 = training image, 0 = test
    (root / "images.txt").write_text("\n".join(images) + "\n")
    (root / "image_class_labels.txt").write_text("\n".join(labels) + "\n")
    (root / "train_test_split.txt").write_text("\n".join(split) + "\n")
    (root / "classes.txt").write_text("\n".join(f"{i} {c}" for i, c in enumerate(classes, 1)) + "\n")
    return root, {"classes": 3, "train+val": 9, "test": 3}


def aircraft(base: Path) -> tuple[Path, dict]:
    root = base / "fgvc-aircraft-2013b"
    data = root / "data"
    variants = ["707-320", "Cessna 172", "Gulfstream IV"]  # official names contain spaces
    data.mkdir(parents=True)
    (data / "variants.txt").write_text("\n".join(variants) + "\n")
    k = 1000000
    for split, n in (("train", 3), ("val", 2), ("test", 2)):
        rows = []
        for v in variants:
            for _ in range(n):
                k += 1
                jpeg(data / "images" / f"{k:07d}.jpg", k, size=(48, 64), banner=20)  # 20-px banner, as released
                rows.append(f"{k:07d} {v}")
        (data / f"images_variant_{split}.txt").write_text("\n".join(rows) + "\n")
    return root, {"classes": 3, "train": 9, "val": 6, "test": 6}


def flowers(base: Path) -> tuple[Path, dict]:
    from scipy.io import savemat

    root = base / "flowers-102"
    labels = np.array([1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2, 3])
    for i in range(1, len(labels) + 1):
        jpeg(root / "jpg" / f"image_{i:05d}.jpg", i)
    savemat(root / "imagelabels.mat", {"labels": labels[None, :].astype(np.uint8)})
    savemat(root / "setid.mat", {"trnid": np.array([[1, 2, 3, 4, 5, 6]], dtype=np.uint16),
                                 "valid": np.array([[7, 8, 9]], dtype=np.uint16),
                                 "tstid": np.array([[10, 11, 12, 13, 14, 15]], dtype=np.uint16)})
    return root, {"classes": 3, "train": 6, "val": 3, "test": 6}


def pets(base: Path) -> tuple[Path, dict]:
    root = base / "oxford-iiit-pet"
    header = ("#Image CLASS-ID SPECIES BREED ID\n#ID: 1:37 Class ids\n#SPECIES: 1:Cat 2:Dog\n"
              "#BREED ID: 1-25:Cat 1:12:Dog\n")
    breeds = [("Abyssinian", 1, 1), ("american_bulldog", 2, 1), ("Bengal", 1, 2)]
    files = {"trainval.txt": [], "test.txt": []}
    for cid, (breed, species, bid) in enumerate(breeds, 1):
        for j in range(1, 6):
            name = f"{breed}_{j}"
            jpeg(root / "images" / f"{name}.jpg", cid * 10 + j)
            files["trainval.txt" if j <= 3 else "test.txt"].append(f"{name} {cid} {species} {bid}")
    (root / "annotations").mkdir(parents=True)
    for fname, rows in files.items():
        (root / "annotations" / fname).write_text(header + "\n".join(rows) + "\n")
    return root, {"classes": 3, "train+val": 9, "test": 6, "names": [b for b, _, _ in breeds]}


def sst(base: Path, sizes=(5, 3, 4)) -> tuple[Path, dict]:
    root = base / "sst"
    trees = root / "trees"
    trees.mkdir(parents=True)
    lines = [
        "(3 (2 It) (4 (4 (2 's) (4 (3 (2 a) (4 (3 lovely) (2 film))) (3 (2 with) (4 (3 (3 lovely) (2 performances)) "
        "(2 (2 by) (2 (2 (2 Buy) (2 and)) (2 Accorsi))))))) (2 .)))",
        "(0 (1 (2 The) (1 plot)) (0 (0 (2 is) (0 (0 dreadful) (2 (2 -LRB-) (2 really) (2 -RRB-)))) (2 .)))",
        "(2 (2 It) (2 (2 (2 is) (2 a) (2 movie)) (2 .)))",
        "(1 (2 Not) (1 (1 good) (2 .)))",
        "(4 (4 Brilliant) (2 .))",
    ]
    counts = dict(zip(("train.txt", "dev.txt", "test.txt"), sizes))
    for fname, n in counts.items():
        (trees / fname).write_text("\n".join(lines[i % len(lines)] for i in range(n)) + "\n")
    return root, {"classes": 5, **dict(zip(("train", "val", "test"), sizes)),
                  "first_text": "It 's a lovely film with lovely performances by Buy and Accorsi ."}


def trec(base: Path) -> tuple[Path, dict]:
    root = base / "trec"
    root.mkdir(parents=True)
    train = ["DESC:manner How did serfdom develop in and then leave Russia ?",
             "ENTY:cremat What films featured the character Popeye Doyle ?",
             "HUM:ind Who was the café owner in Casablanca ?",  # written in latin-1 below
             "NUM:date When was Ozzy Osbourne born ?"] * 5
    test = ["NUM:dist How far is it from Denver to Aspen ?", "LOC:city What county is Modesto , California in ?",
            "HUM:ind Who was Galileo ?"]
    (root / "train_5500.label").write_bytes(("\n".join(train) + "\n").encode("latin-1"))
    (root / "TREC_10.label").write_bytes(("\n".join(test) + "\n").encode("latin-1"))
    return root, {"classes": 6, "train+val": 20, "test": 3}


def goemotions(base: Path) -> tuple[Path, dict]:
    root = base / "goemotions"
    root.mkdir(parents=True)
    emotions = ["admiration", "amusement", "anger", "neutral"]
    (root / "emotions.txt").write_text("\n".join(emotions) + "\n")
    rows = {"train.tsv": [("That is great work", "0"), ("lol that is funny", "1"), ("I am so angry", "2"),
                          ("ok then", "3"), ("funny and great", "0,1"), ("whatever", "3"), ("so mad", "2")],
            "dev.tsv": [("nice", "0"), ("haha", "1"), ("hmm", "3,2")],
            "test.tsv": [("wow", "0"), ("grr", "2"), ("meh", "3")]}
    for fname, rs in rows.items():
        (root / fname).write_text("".join(f"{t}\t{lab}\teid{i}\n" for i, (t, lab) in enumerate(rs)))
    return root, {"classes": 4, "train": 6, "val": 2, "test": 3, "dropped": {"train": 1, "val": 1, "test": 0}}


def speech_commands(base: Path) -> tuple[Path, dict]:
    root = base / "speech_commands_v0.02"
    words = ["bed", "bird", "yes"]
    val, test = [], []
    k = 0
    for w in words:
        for spk in ("0a7c2a8d", "0b09edd3", "0c40e715", "0d2bcf9d", "0e4d22f1"):
            k += 1
            rel = f"{w}/{spk}_nohash_0.wav"
            wav(root / rel, k, sr=16000, seconds=0.8 + 0.1 * (k % 3))
            if spk == "0d2bcf9d":
                val.append(rel)
            elif spk == "0e4d22f1":
                test.append(rel)
    wav(root / "_background_noise_" / "white_noise.wav", 99, seconds=2.0)
    (root / "validation_list.txt").write_text("\n".join(val) + "\n")
    (root / "testing_list.txt").write_text("\n".join(test) + "\n")
    (root / "LICENSE").write_text("CC BY 4.0\n")
    return root, {"classes": 3, "train": 9, "val": 3, "test": 3}


# --- Editing a fixture into a partial or edited copy, as a user's copy may be -----------------------------------------

def edit_lines(path: Path, change=lambda line: line, newline: str = "\n", encoding: str = "utf-8",
               bom: bool = False, blank_lines: int = 0) -> None:
    """Rewrite a list file line by line: ``change(line)`` returns the new line, or None to drop it; ``newline``
    "\\r\\n" as a Windows editor saves it, ``bom`` a UTF-8 byte-order mark, ``blank_lines`` empty lines at the end."""
    lines = [new for line in path.read_bytes().decode(encoding).splitlines() if (new := change(line)) is not None]
    text = newline.join(lines) + newline * (1 + blank_lines)
    path.write_bytes(("\ufeff" if bom else "").encode("utf-8") + text.encode(encoding))
