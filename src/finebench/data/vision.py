"""Real vision datasets (official files, official splits) and ``imagefolder`` (bring your own).

Every image is decoded once, its shorter side resized to ``resize`` and centre-cropped to ``resize x resize``, and
stored as uint8 in a memory-mapped ``{split}_x.npy`` (10^5 images at 256 px = 19.7 GB on disk, never all in RAM).
At train time the loader takes a random resized crop of ``image_size`` plus a horizontal flip; at eval time the
centre ``image_size`` crop. The stored form is model-agnostic uint8; each model's own mean/std (a pretrained timm
model's, from its weights' config) is applied by the loader.

Layouts read (``root:`` points at the folder the official archive extracts to):
- ``cub200``: ``CUB_200_2011/`` with images.txt, image_class_labels.txt, train_test_split.txt, classes.txt, images/
- ``fgvc_aircraft``: ``fgvc-aircraft-2013b/`` with data/variants.txt, data/images_variant_{train,val,test}.txt,
  data/images/; the 20-pixel copyright banner at the bottom of every image is cut off (``crop_bottom: 20``), as the
  dataset's README asks
- ``flowers102``: a folder with jpg/, imagelabels.mat, setid.mat
- ``oxford_pets``: a folder with images/ and annotations/{trainval,test}.txt
- ``imagefolder``: root/[train|val|test/]class/image — missing splits are carved from train. A file that is not an
  image, an unreadable image or an empty class folder is an error naming it; ``skip_bad_files: true`` skips such files
  instead (counted in the manifest's ``skipped``), ``min_per_class: N`` drops classes with fewer than N images

A partial or edited copy of a release (a subset of the classes keeping the release's ids, images deleted, list files
re-saved with CRLF, blank lines or trailing spaces, names in other case) is prepared as far as it is consistent: the
classes are those with an image in the copy, renumbered 0..K-1 in the release's order with their names kept; listed
images missing on disk are left out; a class with a single training image keeps it (no val example is carved from
it). Each such finding is a WARNING naming counts and examples (kept in the manifest's ``source.partial_copy``), and
the count comparison with the release follows (registry.check_official). A copy that cannot be read — a class list
missing or empty, a line not in the format, a label beyond the class list — is an error naming the file and line.
"""

from __future__ import annotations

import os
import sys
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from finebench.data.download import Remote
from finebench.data.layout import (
    CopyFindings,
    examples,
    folder_records,
    id_rows,
    list_lines,
    name_index,
    name_key,
    need,
    ranges,
    root_of,
    skipped_files,
)
from finebench.data.registry import SPLITS, DatasetSource, carve_splits, drop_rare_classes, register
from finebench.errors import FinebenchError, did_you_mean

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
VISION_DEFAULTS = {"root": None, "image_size": 224, "resize": 256, "val_fraction": 0.1, "test_fraction": 0.2,
                   "seed": 0, "workers": 0, "crop_bottom": 0}


# --- Partial or edited copies of a release (used by every real-dataset parser: vision, text and speech) ---------------
# A copy that differs from the release (a subset of the classes, images deleted, a list file re-saved by an editor) is
# read as far as it is consistent, each difference is one WARNING naming counts and examples (recorded in the
# manifest's source.partial_copy), and registry.check_official then compares the counts with the release's. A copy
# that cannot be read (a class list missing, a line that is not what the format says, a label beyond the class list)
# is a FinebenchError naming the file and line.

def load_image_or_reason(args) -> np.ndarray | str:
    """Like :func:`load_image`, but an unreadable image gives the error message instead of raising
    (``skip_bad_files``)."""
    try:
        return load_image(args)
    except FinebenchError as exc:
        return str(exc)


def load_image(args) -> np.ndarray:
    """(path, size, crop_bottom) -> uint8 [3, size, size]: the bottom ``crop_bottom`` pixels (of the original) cut
    off, shorter side resized to ``size``, centre crop."""
    path, size, crop_bottom = args
    from PIL import Image

    im: Image.Image  # the opened file, then converted, cropped and resized copies
    try:
        with Image.open(path) as im:
            full_height = im.size[1]
            im.draft("RGB", (size, size))  # JPEG: decode at reduced scale when possible
            im = im.convert("RGB")
            w, h = im.size
            if crop_bottom:
                cut = round(crop_bottom * h / full_height)
                if cut >= h:
                    raise FinebenchError(f"{path}: crop_bottom {crop_bottom} px removes the whole "
                                         f"{full_height}-px-high image")
                im, h = im.crop((0, 0, w, h - cut)), h - cut
            scale = size / min(w, h)
            # Pillow sets its filter constants (Image.BILINEAR = Image.Resampling.BILINEAR's value) dynamically
            im = im.resize((max(size, round(w * scale)), max(size, round(h * scale))),
                           Image.BILINEAR, reducing_gap=3.0)  # type: ignore[attr-defined]
            w, h = im.size
            left, top = (w - size) // 2, (h - size) // 2
            return np.asarray(im.crop((left, top, left + size, top + size)), dtype=np.uint8).transpose(2, 0, 1)
    except OSError as exc:
        raise FinebenchError(f"{path}: cannot read image ({exc})") from exc


def cache_images(work: Path, split: str, paths: list[Path], size: int, workers: int, crop_bottom: int = 0,
                 skip_bad: bool = False) -> tuple[Path, list[tuple[Path, str]]]:
    """Decode + resize every image once into a memory-mapped uint8 [N, 3, size, size] array. An unreadable image is
    an error naming it, or with ``skip_bad`` left out (the array compacted); returns the array and those skipped."""
    out = work / f"{split}_x.npy"
    arr = np.lib.format.open_memmap(out, mode="w+", dtype=np.uint8, shape=(len(paths), 3, size, size))
    jobs = [(p, size, crop_bottom) for p in paths]
    load = load_image_or_reason if skip_bad else load_image
    workers = workers or min(8, os.cpu_count() or 1)
    bad = {}  # index -> reason

    def store(i, img):
        if isinstance(img, str):
            bad[i] = img.removeprefix(f"{paths[i]}: ")
        else:
            arr[i] = img  # noqa: F821 (arr: the enclosing function's, deleted only after the last store())

    if workers > 1 and len(jobs) > 64:
        with get_context("spawn").Pool(workers) as pool:
            for i, img in enumerate(pool.imap(load, jobs, chunksize=32)):
                store(i, img)
    else:
        for i, job in enumerate(jobs):
            store(i, load(job))
    if bad:  # compact: move the good rows up, in order, then cut the file to the new length
        keep = [i for i in range(len(paths)) if i not in bad]
        compact = np.lib.format.open_memmap(work / f".{split}_x.compact.npy", mode="w+", dtype=np.uint8,
                                            shape=(len(keep), 3, size, size))
        for start in range(0, len(keep), 1024):
            compact[start : start + 1024] = arr[keep[start : start + 1024]]
        compact.flush()
        del compact
    arr.flush()
    del arr
    if bad:
        os.replace(work / f".{split}_x.compact.npy", out)
    return out, [(paths[i], why) for i, why in bad.items()]


def build_images(work: Path, records: dict[str, list], classes: list[str], opt: dict, source: dict,
                 skipped: list | None = None) -> dict:
    records, carved = carve_splits(records, opt, classes)
    skip_bad = bool(opt.get("skip_bad_files"))
    skipped = list(skipped or [])
    arrays = {}
    for split in SPLITS:
        paths = [p for p, _ in records[split]]
        x, bad = cache_images(work, split, paths, opt["resize"], opt["workers"], opt["crop_bottom"], skip_bad)
        gone = {p for p, _ in bad}
        arrays[split] = (x, np.array([lab for p, lab in records[split] if p not in gone], dtype=np.int64))
        skipped += bad
    if skipped:
        print(f"[finebench] skip_bad_files: skipped {len(skipped)} file(s), e.g. {skipped[0][0]} ({skipped[0][1]})",
              file=sys.stderr, flush=True)
    return {
        "arrays": arrays,
        "manifest": {
            "input": {"kind": "image", "channels": 3, "height": opt["image_size"], "width": opt["image_size"],
                      "stored_size": opt["resize"], "augment": "random_resized_crop_flip",
                      "cropped_bottom_px": opt["crop_bottom"]},
            "classes": classes,
            "carved_splits": carved,
            "source": source,
            "skipped": {"bad_files": skipped_files(skipped)} if skipped else {},
        },
    }


def build_cub(work: Path, opt: dict) -> dict:
    """Images are those of images.txt with a class (image_class_labels.txt) and a split (train_test_split.txt) whose
    file is on disk; the classes those of classes.txt with an image (class ids may have gaps)."""
    root = root_of(opt, "cub200")
    found = CopyFindings("cub200")
    class_file, label_file, split_file = (root / "classes.txt", root / "image_class_labels.txt",
                                          root / "train_test_split.txt")
    images = id_rows(root / "images.txt", "image path")
    names = id_rows(class_file, "class name")
    if not names:
        raise FinebenchError(f"{class_file}: lists no class (expected '<class id> <name>' lines)")
    class_ids = sorted(names)
    position = {cid: k for k, cid in enumerate(class_ids)}
    labels, is_train = id_rows(label_file, "class id"), id_rows(split_file, "is_training_image")
    unlisted = {f.name: [i for i in images if i not in rows]
                for f, rows in ((label_file, labels), (split_file, is_train))}
    if any(unlisted.values()):
        found.warn("unlabelled_images", "; ".join(
            f"{len(ids)} image(s) of images.txt have no line in {f} (ids {ranges(ids)})" for f, ids in unlisted.items()
            if ids) + ": left out", n={f: len(ids) for f, ids in unlisted.items()})
    usable = [i for i in sorted(images) if i in labels and i in is_train]
    records: dict[str, list[tuple[Path, int]]] = {"train": [], "test": []}  # (path, image id), then class position
    for i in usable:  # which split, from the 1/0 flag
        flag, line = is_train[i]
        if flag not in ("0", "1"):
            raise FinebenchError(f"{split_file}:{line}: expected '<image id> 1' (train) or '<image id> 0' (test), got "
                                 f"{i} {flag!r}")
        records["train" if flag == "1" else "test"].append((root / "images" / images[i][0], i))
    for split in records:
        if not records[split]:
            raise FinebenchError(f"{split_file}: no image of images.txt is marked {split} "
                                 f"({'1' if split == 'train' else '0'})")
    records = found.missing_files(records, {"train": split_file, "test": split_file})
    for split, rows in records.items():  # image id -> class position; only images on disk need a known class
        labelled = []
        for path, i in rows:
            cid, line = labels[i]
            if not cid.isdigit() or int(cid) not in position:
                raise FinebenchError(f"{label_file}:{line}: image {i} has class id {cid!r}, which is not in "
                                     f"{class_file.name} (its ids: {ranges(class_ids)}); add the class there or "
                                     f"remove the image's lines")
            labelled.append((path, position[int(cid)]))
        records[split] = labelled
    records, classes = found.present_classes(records, [names[c][0] for c in class_ids], f"of {class_file.name}")
    records, carved = found.carve_val(records, opt, classes)
    out = build_images(work, records, classes, opt, found.source({"layout": "CUB-200-2011", "root": str(root)}))
    out["manifest"]["carved_splits"] = carved
    return out


def build_aircraft(work: Path, opt: dict) -> dict:
    """Images of images_{level}_{split}.txt whose file is on disk; the classes those of {level}s.txt with an image.
    Names are matched without regard to spaces or case (an edited copy may differ there)."""
    data = root_of(opt, "fgvc_aircraft") / "data"
    level, found = opt["level"], CopyFindings("fgvc_aircraft")
    class_file = data / f"{level}s.txt"
    listed = list(list_lines(class_file, f"the list of {level}s"))
    if not listed:
        raise FinebenchError(f"{class_file}: lists no {level}")
    classes = [" ".join(name.split()) for _, name in listed]
    index = name_index(classes, class_file, [i for i, _ in listed])
    records: dict[str, list[tuple[Path, int]]] = {}  # (path, class position)
    lists: dict[str, Path] = {}
    respelt: dict[str, str] = {}  # "'name' -> 'listed name'": the split list
    for split in SPLITS:
        lists[split] = data / f"images_{level}_{split}.txt"
        records[split] = []
        for i, line in list_lines(lists[split], f"the {split} list"):
            parts = line.split(None, 1)  # names contain spaces
            if len(parts) != 2:
                raise FinebenchError(f"{lists[split]}:{i}: expected '<image id> <{level}>', got {line!r}")
            img, name = parts
            k = index.get(name_key(name))
            if k is None:
                raise FinebenchError(f"{lists[split]}:{i}: {level} {name!r} is not in {class_file.name}"
                                     f"{did_you_mean(name, classes)}; add it there or remove the line")
            if " ".join(name.split()) != classes[k]:
                respelt.setdefault(f"{name!r} -> {classes[k]!r}", lists[split].name)
            records[split].append((data / "images" / f"{img}.jpg", k))
        if not records[split]:
            raise FinebenchError(f"{lists[split]}: lists no image")
    if respelt:
        found.warn("respelt_names", f"{len(respelt)} {level} name(s) in the split lists differ from "
                   f"{class_file.name} in case or spacing, read as the {class_file.name} name: {examples(respelt)}",
                   names=respelt)
    records = found.missing_files(records, lists)
    records, classes = found.present_classes(records, classes, f"of {class_file.name}")
    return build_images(work, records, classes, opt, found.source(
        {"layout": "FGVC-Aircraft 2013b", "level": level, "root": str(data.parent)}))


def build_flowers(work: Path, opt: dict) -> dict:
    """Images of setid.mat whose jpg is on disk; the classes (flower_001 … by label) those with an image."""
    from scipy.io import loadmat

    root = root_of(opt, "flowers102")
    found = CopyFindings("flowers102")
    label_file, setid_file = root / "imagelabels.mat", root / "setid.mat"

    def array(mat: dict, key: str, path: Path) -> np.ndarray:
        if key not in mat:
            keys = ", ".join(k for k in mat if not k.startswith("__"))
            raise FinebenchError(f"{path}: no {key!r} array (it holds: {keys or 'nothing'})")
        return np.asarray(mat[key]).ravel().astype(int)

    labels = array(loadmat(need(label_file, "imagelabels.mat")), "labels", label_file)
    if not labels.size or labels.min() < 1:
        raise FinebenchError(f"{label_file}: 'labels' must hold one class number (1, 2, …) per image"
                             + (f"; image {int(np.argmin(labels)) + 1} has {labels.min()}" if labels.size else ""))
    setid = loadmat(need(setid_file, "setid.mat"))
    records = {}
    for split, key in (("train", "trnid"), ("val", "valid"), ("test", "tstid")):
        ids = array(setid, key, setid_file)
        bad = ids[(ids < 1) | (ids > len(labels))]
        if bad.size:
            raise FinebenchError(f"{setid_file}: {key!r} names image {bad[0]}, but {label_file.name} labels images "
                                 f"1-{len(labels)} only ({bad.size} such id(s)); the two files are from different "
                                 f"copies?")
        if not ids.size:
            raise FinebenchError(f"{setid_file}: {key!r} lists no image")
        records[split] = [(root / "jpg" / f"image_{i:05d}.jpg", labels[i - 1] - 1) for i in ids]
    records = found.missing_files(records, {s: setid_file for s in records})
    records, classes = found.present_classes(records, [f"flower_{k:03d}" for k in range(1, labels.max() + 1)],
                                             f"numbered 1-{labels.max()} in {label_file.name}")
    return build_images(work, records, classes, opt, found.source({"layout": "Oxford Flowers-102", "root": str(root)}))


def build_pets(work: Path, opt: dict) -> dict:
    """Images of annotations/{trainval,test}.txt whose jpg is on disk; the classes the class ids with an image (a
    subset may keep ids with gaps, e.g. 1, 2, 6), named by their images (Abyssinian_12 -> Abyssinian)."""
    root = root_of(opt, "oxford_pets")
    found = CopyFindings("oxford_pets")
    records: dict[str, list[tuple[Path, int]]] = {}  # (path, class id)
    lists: dict[str, Path] = {}
    names: dict[int, tuple[str, str, int]] = {}  # class id -> (name, file, line)
    for split, fname in (("train", "trainval.txt"), ("test", "test.txt")):
        lists[split] = path = root / "annotations" / fname
        records[split] = []
        for i, line in list_lines(path, f"the {fname} split list"):
            if line.startswith("#"):
                continue
            parts = line.split()
            if len(parts) < 2 or not parts[1].isdigit() or int(parts[1]) < 1:
                raise FinebenchError(f"{path}:{i}: expected '<image> <class id 1, 2, …> <species> <breed id>', "
                                     f"got {line!r}")
            image, cid = parts[0], int(parts[1])
            name = image.rsplit("_", 1)[0]
            first = names.setdefault(cid, (name, fname, i))
            if name_key(first[0]) != name_key(name):
                raise FinebenchError(f"{path}:{i}: class id {cid} is {name!r} here but {first[0]!r} at "
                                     f"{first[1]}:{first[2]}; one class id per breed")
            records[split].append((root / "images" / f"{image}.jpg", cid))
        if not records[split]:
            raise FinebenchError(f"{path}: lists no image")
    records = found.missing_files(records, lists)
    ids = sorted(names)
    if ids != list(range(1, len(ids) + 1)):
        found.warn("class_id_gaps", f"the annotations number {len(ids)} classes with gaps: ids {ranges(ids)} "
                   f"(the release numbers its 37 classes 1-37); they are prepared as classes 0-{len(ids) - 1} in "
                   f"id order, names kept", ids=ids)
    position = {cid: k for k, cid in enumerate(ids)}
    records = {s: [(p, position[cid]) for p, cid in rows] for s, rows in records.items()}
    records, classes = found.present_classes(records, [names[c][0] for c in ids], "of the annotations")
    records, carved = found.carve_val(records, opt, classes)
    out = build_images(work, records, classes, opt, found.source({"layout": "Oxford-IIIT Pet", "root": str(root)}))
    out["manifest"]["carved_splits"] = carved
    return out


def build_imagefolder(work: Path, opt: dict) -> dict:
    root = root_of(opt, "imagefolder")
    records, classes, unsupported = folder_records(root, IMAGE_EXTENSIONS, "images", bool(opt.get("skip_bad_files")))
    records, classes, rare = drop_rare_classes(records, classes, opt)
    out = build_images(work, records, classes, opt, {"layout": "imagefolder", "root": str(root)},
                       skipped=[(p, "unsupported format") for p in unsupported])
    if rare:
        out["manifest"]["skipped"]["rare_classes"] = {
            "min_per_class": opt["min_per_class"], "classes": rare, "n": sum(rare.values())}
    return out


REAL = [
    ("cub200", "CUB-200-2011: 200 bird species; official train/test, val carved from train", build_cub,
     [Remote("https://data.caltech.edu/records/65de6-vp158/files/CUB_200_2011.tgz?download=1",
             md5="97eceeb196236b17998738112f37df78")],
     "CUB_200_2011", {}, "Wah et al. (2011), The Caltech-UCSD Birds-200-2011 Dataset, CNS-TR-2011-001",
     {"classes": 200, "splits": {"train": 5994, "test": 5794}}),
    ("fgvc_aircraft", "FGVC-Aircraft 2013b: 100 aircraft variants; official train/val/test", build_aircraft,
     [Remote("https://www.robots.ox.ac.uk/~vgg/data/fgvc-aircraft/archives/fgvc-aircraft-2013b.tar.gz")],
     "fgvc-aircraft-2013b", {"level": "variant", "crop_bottom": 20},
     "Maji et al. (2013), Fine-Grained Visual Classification of Aircraft, arXiv:1306.5151",
     {"classes": 100, "splits": {"train": 3334, "val": 3333, "test": 3333}, "options": {"level": "variant"}}),
    ("flowers102", "Oxford Flowers-102: 102 species; official setid.mat train/val/test", build_flowers,
     [Remote("https://www.robots.ox.ac.uk/~vgg/data/flowers/102/102flowers.tgz",
             md5="52808999861908f626f3c1f4e79d11fa"),
      Remote("https://www.robots.ox.ac.uk/~vgg/data/flowers/102/imagelabels.mat",
             md5="e0620be6f572b9609742df49c70aed4d", extract=False),
      Remote("https://www.robots.ox.ac.uk/~vgg/data/flowers/102/setid.mat",
             md5="a5357ecc9cb78c4bef273ce3793fc85c", extract=False)],
     "", {}, "Nilsback & Zisserman (2008), Automated Flower Classification over a Large Number of Classes, ICVGIP",
     {"classes": 102, "splits": {"train": 1020, "val": 1020, "test": 6149}}),
    ("oxford_pets", "Oxford-IIIT Pet: 37 breeds; official trainval/test, val carved from trainval", build_pets,
     [Remote("https://www.robots.ox.ac.uk/~vgg/data/pets/data/images.tar.gz", md5="5c4f3ee8e5d25df40f4fd59a7f44e54c"),
      Remote("https://www.robots.ox.ac.uk/~vgg/data/pets/data/annotations.tar.gz",
             md5="95a8c909bbe2e81eed6a22bccdf3f68f")],
     "", {}, "Parkhi et al. (2012), Cats and Dogs, CVPR",
     {"classes": 37, "splits": {"train": 3680, "test": 3669}}),
]
for name, desc, fn, remotes, archive_root, extra, cite, official in REAL:
    register(DatasetSource(name=name, modality="vision", description=desc, defaults={**VISION_DEFAULTS, **extra},
                           prepare_threads=8,  # the JPEG decoding pool (workers: 0 = min(8, cores))
                           build=fn, citation=cite, remotes=remotes, archive_root=archive_root, official=official))

register(DatasetSource(name="imagefolder", modality="vision", description="Bring your own: root/[split/]class/image",
                       prepare_threads=8,
                       defaults={**VISION_DEFAULTS, "skip_bad_files": False, "min_per_class": None},
                       build=build_imagefolder))
