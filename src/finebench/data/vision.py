"""Real vision datasets (official files, official splits) and ``imagefolder`` (bring your own).

Every image is decoded once, its shorter side resized to ``resize`` and centre-cropped to ``resize x resize``, and
stored as uint8 in a memory-mapped ``{split}_x.npy`` (10^5 images at 256 px = 19.7 GB on disk, never all in RAM).
At train time the loader takes a random resized crop of ``image_size`` plus a horizontal flip; at eval time the
centre ``image_size`` crop. The stored form is model-agnostic uint8; each model's own mean/std (a pretrained timm
model's, from its weights' config) is applied by the loader.

Layouts read (``root:`` points at the folder the official archive extracts to):
- ``cub200``: ``CUB_200_2011/`` with images.txt, image_class_labels.txt, train_test_split.txt, classes.txt, images/
- ``fgvc_aircraft``: ``fgvc-aircraft-2013b/`` with data/variants.txt, data/images_variant_{train,val,test}.txt, data/images/;
  the 20-pixel copyright banner at the bottom of every image is cut off (``crop_bottom: 20``), as the dataset's README
  asks
- ``flowers102``: a folder with jpg/, imagelabels.mat, setid.mat
- ``oxford_pets``: a folder with images/ and annotations/{trainval,test}.txt
- ``imagefolder``: root/[train|val|test/]class/image — missing splits are carved from train. A file that is not an
  image, an unreadable image or an empty class folder is an error naming it; ``skip_bad_files: true`` skips such files
  instead (counted in the manifest's ``skipped``), ``min_per_class: N`` drops classes with fewer than N images
"""

from __future__ import annotations

import os
import sys
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from finebench.data.download import Remote
from finebench.data.layout import folder_records, need, read_lines, root_of, skipped_files
from finebench.data.registry import SPLITS, DatasetSource, carve_splits, drop_rare_classes, register
from finebench.errors import FinebenchError

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
VISION_DEFAULTS = {"root": None, "image_size": 224, "resize": 256, "val_fraction": 0.1, "test_fraction": 0.2,
                   "seed": 0, "workers": 0, "crop_bottom": 0}


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

    try:
        with Image.open(path) as im:
            full_height = im.size[1]
            im.draft("RGB", (size, size))  # JPEG: decode at reduced scale when possible
            im = im.convert("RGB")
            w, h = im.size
            if crop_bottom:
                cut = round(crop_bottom * h / full_height)
                if cut >= h:
                    raise FinebenchError(f"{path}: crop_bottom {crop_bottom} px removes the whole {full_height}-px-high image")
                im, h = im.crop((0, 0, w, h - cut)), h - cut
            scale = size / min(w, h)
            im = im.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.BILINEAR, reducing_gap=3.0)
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
            arr[i] = img

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
    root = root_of(opt, "cub200")
    ids = {int(a): b for a, b in (l.split(" ", 1) for l in read_lines(root / "images.txt"))}
    labels = {int(a): int(b) for a, b in (l.split() for l in read_lines(root / "image_class_labels.txt"))}
    is_train = {int(a): b == "1" for a, b in (l.split() for l in read_lines(root / "train_test_split.txt"))}
    classes = [b for _, b in sorted((int(a), b) for a, b in (l.split(" ", 1) for l in read_lines(root / "classes.txt")))]
    records = {"train": [], "test": []}
    for i in sorted(ids):
        records["train" if is_train[i] else "test"].append((root / "images" / ids[i], labels[i] - 1))
    return build_images(work, records, classes, opt, {"layout": "CUB-200-2011", "root": str(root)})


def build_aircraft(work: Path, opt: dict) -> dict:
    data = root_of(opt, "fgvc_aircraft") / "data"
    classes = read_lines(data / f"{opt['level']}s.txt")
    index = {c: i for i, c in enumerate(classes)}
    records = {}
    for split in SPLITS:
        rows = [l.split(" ", 1) for l in read_lines(data / f"images_{opt['level']}_{split}.txt")]  # names contain spaces
        records[split] = [(data / "images" / f"{img}.jpg", index[name]) for img, name in rows]
    return build_images(work, records, classes, opt, {"layout": "FGVC-Aircraft 2013b", "level": opt["level"], "root": str(data.parent)})


def build_flowers(work: Path, opt: dict) -> dict:
    from scipy.io import loadmat

    root = root_of(opt, "flowers102")
    labels = loadmat(need(root / "imagelabels.mat", "imagelabels.mat"))["labels"].ravel().astype(int)
    setid = loadmat(need(root / "setid.mat", "setid.mat"))
    records = {}
    for split, key in (("train", "trnid"), ("val", "valid"), ("test", "tstid")):
        records[split] = [(root / "jpg" / f"image_{i:05d}.jpg", labels[i - 1] - 1) for i in setid[key].ravel().astype(int)]
    classes = [f"flower_{k:03d}" for k in range(1, labels.max() + 1)]
    return build_images(work, records, classes, opt, {"layout": "Oxford Flowers-102", "root": str(root)})


def build_pets(work: Path, opt: dict) -> dict:
    root = root_of(opt, "oxford_pets")
    records, names = {}, {}
    for split, fname in (("train", "trainval.txt"), ("test", "test.txt")):
        rows = [l.split() for l in read_lines(root / "annotations" / fname) if not l.startswith("#")]
        records[split] = [(root / "images" / f"{r[0]}.jpg", int(r[1]) - 1) for r in rows]
        names.update({int(r[1]) - 1: r[0].rsplit("_", 1)[0] for r in rows})
    classes = [names[k] for k in range(len(names))]
    return build_images(work, records, classes, opt, {"layout": "Oxford-IIIT Pet", "root": str(root)})


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
     [Remote("https://data.caltech.edu/records/65de6-vp158/files/CUB_200_2011.tgz?download=1", md5="97eceeb196236b17998738112f37df78")],
     "CUB_200_2011", {}, "Wah et al. (2011), The Caltech-UCSD Birds-200-2011 Dataset, CNS-TR-2011-001",
     {"classes": 200, "splits": {"train": 5994, "test": 5794}}),
    ("fgvc_aircraft", "FGVC-Aircraft 2013b: 100 aircraft variants; official train/val/test", build_aircraft,
     [Remote("https://www.robots.ox.ac.uk/~vgg/data/fgvc-aircraft/archives/fgvc-aircraft-2013b.tar.gz")],
     "fgvc-aircraft-2013b", {"level": "variant", "crop_bottom": 20},
     "Maji et al. (2013), Fine-Grained Visual Classification of Aircraft, arXiv:1306.5151",
     {"classes": 100, "splits": {"train": 3334, "val": 3333, "test": 3333}, "options": {"level": "variant"}}),
    ("flowers102", "Oxford Flowers-102: 102 species; official setid.mat train/val/test", build_flowers,
     [Remote("https://www.robots.ox.ac.uk/~vgg/data/flowers/102/102flowers.tgz", md5="52808999861908f626f3c1f4e79d11fa"),
      Remote("https://www.robots.ox.ac.uk/~vgg/data/flowers/102/imagelabels.mat", md5="e0620be6f572b9609742df49c70aed4d", extract=False),
      Remote("https://www.robots.ox.ac.uk/~vgg/data/flowers/102/setid.mat", md5="a5357ecc9cb78c4bef273ce3793fc85c", extract=False)],
     "", {}, "Nilsback & Zisserman (2008), Automated Flower Classification over a Large Number of Classes, ICVGIP",
     {"classes": 102, "splits": {"train": 1020, "val": 1020, "test": 6149}}),
    ("oxford_pets", "Oxford-IIIT Pet: 37 breeds; official trainval/test, val carved from trainval", build_pets,
     [Remote("https://www.robots.ox.ac.uk/~vgg/data/pets/data/images.tar.gz", md5="5c4f3ee8e5d25df40f4fd59a7f44e54c"),
      Remote("https://www.robots.ox.ac.uk/~vgg/data/pets/data/annotations.tar.gz", md5="95a8c909bbe2e81eed6a22bccdf3f68f")],
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
