"""The protocol a run followed, stored as facts (fields), and put into words for the tables.

    from finebench.protocol import run_protocol
    run_protocol(json.load(open("results/data/birds/manifest.json")), spec)
    # {'official_split': True, 'counts_match': True, 'carved_splits': ['val'], 'pretraining': 'none',
    #  'pretrained_file': None, 'resolution': 224}

The trainer writes this dict into each run's ``metrics.json`` (``protocol``); :func:`protocol_differences` compares it
with a published number's protocol (config/references.yaml) and :func:`protocol_text` renders it.
"""

from __future__ import annotations

PRETRAINING = ("none", "timm_hub", "file", "hf_hub", "hf_folder")  # the values of the "pretraining" field


def run_protocol(manifest: dict, spec: dict) -> dict:
    """The protocol of one run, from its prepared data's manifest and its resolved spec.

    - ``official_split``: the release defines train/val/test (else the dataset source does, e.g. by speaker or seed)
    - ``counts_match``: the local copy's class and split counts equal the release's; None when there are none to check
    - ``carved_splits``: splits held out of train because the release has none (e.g. ``["val"]``)
    - ``pretraining``: one of ``PRETRAINING``; ``pretrained_file``: the checkpoint's file name for ``file``
    - ``resolution``: the input height in pixels for images (None for other inputs)
    """
    from finebench.models.registry import pretrained_weights

    weights = pretrained_weights(spec.get("model_kwargs") or {})  # None, "hub" or the file's name
    pretraining = "none" if weights is None else ("timm_hub" if weights == "hub" else "file")
    if str(spec.get("arch", "")).startswith("hf:"):  # pretrained Hugging Face models (models/hf.py)
        from finebench.models.hf import pretraining_fields

        pretraining, weights = pretraining_fields(spec.get("model_kwargs") or {})
    counts = manifest.get("official_counts")
    input_info = manifest["input"]
    return {
        "official_split": bool(manifest.get("official_split")),
        "counts_match": bool(counts["match"]) if counts else None,
        "carved_splits": list(manifest.get("carved_splits") or {}),
        "pretraining": pretraining,
        "pretrained_file": weights if pretraining in ("file", "hf_folder") else None,
        "resolution": input_info.get("height") if input_info["kind"] == "image" else None,
    }


# In words, where the tables show them (every task type's references, the protocol notes)

PRETRAINING_TEXT = {"none": "none", "timm_hub": "timm hub weights", "file": "file", "hf_hub": "hf hub weights",
                    "hf_folder": "hf folder"}


def protocol_fields(protocol: dict | None) -> dict:
    """A run's protocol as fields (finebench.protocol.run_protocol); metrics.json files written before the fields
    existed held ``split`` as a sentence and ``pretraining`` as words, read here once into the same fields."""
    p = dict(protocol or {})
    if "split" in p and "official_split" not in p:
        split = str(p.pop("split"))
        carved = split.split(" + ")[1].split(" carved")[0].split("/") if " carved from train" in split else []
        p.update(official_split=split.startswith("official"), carved_splits=carved,
                 counts_match=False if "counts differ" in split else None)
    pre = str(p.get("pretraining") or "none")
    if pre not in PRETRAINING_TEXT:  # legacy words: "timm hub weights", "file NAME"
        p["pretraining"], p["pretrained_file"] = ("file", pre[5:]) if pre.startswith("file ") else ("timm_hub", None)
    return p


def protocol_text(protocol: dict | None) -> str:
    """One run's protocol in words, e.g. "official split (counts differ from the release), val carved from train;
    pretraining: timm hub weights; 224 px"."""
    p = protocol_fields(protocol)
    split = "official split" if p.get("official_split") else "the dataset's own split"
    if p.get("counts_match") is False:
        split += " (counts differ from the release)"
    if p.get("carved_splits"):
        split += f", {'/'.join(p['carved_splits'])} carved from train"
    pre = PRETRAINING_TEXT[p.get("pretraining") or "none"]
    if p.get("pretrained_file"):
        pre += f" {p['pretrained_file']}"
    return "; ".join([split, f"pretraining: {pre}"] + ([f"{p['resolution']} px"] if p.get("resolution") else []))


def protocol_differences(ref: dict, ours: dict) -> list[str]:
    """Why a published number is not directly comparable with ours (empty: comparable as far as we can tell).
    ``ref``: a protocol from config/references.yaml (words, as the paper gives them); ``ours``: run_protocol's
    fields."""
    why = []
    ours = protocol_fields(ours)
    ref_pre = str(ref.get("pretraining", "none")).lower()
    our_pre = ours.get("pretraining") or "none"
    if (ref_pre == "none") != (our_pre == "none"):
        why.append(f"pretraining: published {ref.get('pretraining')}, ours {PRETRAINING_TEXT[our_pre]}")
    if ref.get("resolution") and ours.get("resolution") and int(ref["resolution"]) != int(ours["resolution"]):
        why.append(f"resolution: published {ref['resolution']} px, ours {ours['resolution']} px")
    if ours.get("counts_match") is False:
        why.append("data: our copy's counts differ from the official release")
    carved = ours.get("carved_splits") or []
    if carved and "carved" not in str(ref.get("split", "")):
        held_out = " and a ".join({"val": "validation"}.get(s, s) for s in carved)
        why.append(f"training set: ours holds out a {held_out} split carved from the official train split")
    return why
