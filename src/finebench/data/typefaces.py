"""``typefaces`` (vision): typeface recognition from rendered words — an embedded fine-grained task.

Classes are font families x styles of the URW base35 core fonts (Debian ``fonts-urw-base35``): e.g. NimbusSans-Regular
vs NimbusSans-Bold vs NimbusSansNarrow-Regular vs URWGothic-Book. Each sample is a pseudo-word rendered in one font
with jitter (size, position, rotation, blur, ink/paper contrast, noise). The word vocabulary is split first, so the
words of the test (and val) split never occur in training: a model must recognise the type design, not the word.
Everything is drawn from ``numpy.random.default_rng(seed)``: the same seed and fonts give the same arrays.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from finebench.data.registry import SPLITS, DatasetSource, register
from finebench.errors import FinebenchError

FONT_PACKAGE = "fonts-urw-base35"
FAMILIES = ["C059", "NimbusMonoPS", "NimbusRoman", "NimbusSans", "NimbusSansNarrow", "P052", "URWBookman", "URWGothic"]
# Each family's four styles, in the file names the package uses (regular, bold, italic, bold italic).
STYLES = {
    "C059": ["Roman", "Bold", "Italic", "BdIta"],
    "NimbusMonoPS": ["Regular", "Bold", "Italic", "BoldItalic"],
    "NimbusRoman": ["Regular", "Bold", "Italic", "BoldItalic"],
    "NimbusSans": ["Regular", "Bold", "Italic", "BoldItalic"],
    "NimbusSansNarrow": ["Regular", "Bold", "Oblique", "BoldOblique"],
    "P052": ["Roman", "Bold", "Italic", "BoldItalic"],
    "URWBookman": ["Light", "Demi", "LightItalic", "DemiItalic"],
    "URWGothic": ["Book", "Demi", "BookOblique", "DemiOblique"],
}
ONSETS = ["", "b", "c", "d", "f", "g", "h", "j", "k", "l", "m", "n", "p", "qu", "r", "s", "t", "v", "w", "x", "y", "z",
          "br", "ch", "cl", "dr", "fl", "gr", "ph", "pl", "sh", "st", "th", "tr", "wh"]
VOWELS = ["a", "e", "i", "o", "u", "y", "ae", "ai", "ea", "ee", "oa", "oo", "ou"]
CODAS = ["", "", "b", "ck", "d", "g", "k", "l", "m", "n", "ng", "p", "r", "s", "st", "t", "x", "z", "ft", "mp", "nd"]


def font_files(font_dir: str, families: list[str], styles_per_family: int) -> dict[str, Path]:
    root = Path(font_dir)
    if not root.is_dir():
        raise FinebenchError(
            f"typefaces: font folder {root} not found — install the Debian package {FONT_PACKAGE} "
            f"(apt-get install -y {FONT_PACKAGE}) or set tasks.<task>.font_dir"
        )
    out = {}
    for fam in families:
        if fam not in STYLES:
            raise FinebenchError(f"typefaces: unknown font family {fam!r}; known: {', '.join(FAMILIES)}")
        for style in STYLES[fam][:styles_per_family]:
            path = root / f"{fam}-{style}.otf"
            if not path.is_file():
                raise FinebenchError(f"typefaces: font file {path} missing — "
                                     f"reinstall the Debian package {FONT_PACKAGE}")
            out[f"{fam}-{style}"] = path
    return out


def make_words(rng: np.random.Generator, n: int) -> list[str]:
    words: set[str] = set()
    while len(words) < n:
        syllables = rng.integers(1, 4)
        w = "".join(rng.choice(ONSETS) + rng.choice(VOWELS) + rng.choice(CODAS) for _ in range(syllables))
        if not 3 <= len(w) <= 9:
            continue
        case = rng.random()
        w = w.capitalize() if case < 0.3 else (w.upper() if case < 0.4 else w)
        words.add(w)
    return sorted(words)  # sorted so the split below depends only on the rng, not on set order


def render(word: str, font_path: Path, size: int, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    from PIL import Image, ImageDraw, ImageFilter, ImageFont

    font = ImageFont.truetype(str(font_path), size)
    left, top, right, bottom = font.getbbox(word)
    # Pillow annotates getbbox as floats; a FreeTypeFont's (truetype) are ints
    canvas = Image.new("L", (max(width, right - left) + 2 * size, height + 2 * size), 0)  # type: ignore[arg-type]
    ImageDraw.Draw(canvas).text((size - left, size - top), word, font=font, fill=255)
    angle = rng.uniform(-4, 4)
    # Pillow sets its filter constants (Image.BILINEAR = Image.Resampling.BILINEAR's value) dynamically
    canvas = canvas.rotate(angle, resample=Image.BILINEAR,  # type: ignore[attr-defined]
                           center=(size + (right - left) / 2, size + (bottom - top) / 2))
    text_w, text_h = right - left, bottom - top
    # Random offset: word roughly centred vertically; horizontally anywhere it fits (cropped if wider than the frame).
    x0 = (size - int(rng.uniform(0, max(1, width - text_w))) if text_w < width
          else size + int(rng.uniform(0, text_w - width + 1)))
    y0 = size - (height - text_h) // 2 + int(rng.integers(-3, 4))
    ink = canvas.crop((x0, y0, x0 + width, y0 + height))
    blur = rng.uniform(0, 0.8)
    if blur > 0.2:
        ink = ink.filter(ImageFilter.GaussianBlur(blur))
    paper, ink_level = rng.uniform(170, 255), rng.uniform(0, 90)
    img = paper + (ink_level - paper) * (np.asarray(ink, dtype=np.float32) / 255.0)
    img += rng.normal(0, rng.uniform(0, 10), img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def build(work: Path, opt: dict) -> dict:
    from PIL import features

    fonts = font_files(opt["font_dir"], opt["families"], opt["styles_per_family"])
    rng = np.random.default_rng(opt["seed"])
    per_class = {"train": opt["train_per_class"], "val": opt["val_per_class"], "test": opt["test_per_class"]}
    words = make_words(rng, opt["vocabulary"])
    rng.shuffle(words)
    n_val = n_test = int(len(words) * opt["heldout_word_fraction"])
    word_sets = {"val": words[:n_val], "test": words[n_val : n_val + n_test], "train": words[n_val + n_test :]}
    (work / "words.json").write_text(json.dumps(word_sets))
    classes = list(fonts)
    lo, hi = opt["font_size"]
    arrays = {}
    for split in SPLITS:
        xs, ys = [], []
        for label, name in enumerate(classes):
            for _ in range(per_class[split]):
                word = word_sets[split][rng.integers(len(word_sets[split]))]
                xs.append(render(word, fonts[name], int(rng.integers(lo, hi + 1)), opt["height"], opt["width"], rng))
                ys.append(label)
        arrays[split] = (np.stack(xs)[:, None], np.array(ys))
    return {
        "arrays": arrays,
        "manifest": {
            "input": {"kind": "image", "channels": 1, "height": opt["height"], "width": opt["width"]},
            "classes": classes,
            "source": {
                "debian_package": FONT_PACKAGE,
                "freetype": features.version_module("freetype2"),
                "fonts": {n: {"file": str(p), "sha256": hashlib.sha256(p.read_bytes()).hexdigest()}
                          for n, p in fonts.items()},
            },
            "words": {s: len(w) for s, w in word_sets.items()},
            "example_words": {s: w[:5] for s, w in word_sets.items()},
        },
    }


register(
    DatasetSource(
        name="typefaces",
        modality="vision",
        description="Typeface recognition: pseudo-words rendered in the URW base35 fonts (family x style), "
        "render jitter; val/test words never appear in training",
        defaults={
            "font_dir": "/usr/share/fonts/opentype/urw-base35",
            "families": FAMILIES,
            "styles_per_family": 4,
            "height": 32,
            "width": 64,
            "font_size": [18, 24],
            "vocabulary": 3000,
            "heldout_word_fraction": 0.15,
            "train_per_class": 120,
            "val_per_class": 25,
            "test_per_class": 50,
            "seed": 0,
        },
        build=build,
    )
)
