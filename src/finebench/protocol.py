"""The protocol a run followed, stored as facts (fields) — put into words only by the report.

    from finebench.protocol import run_protocol
    run_protocol(json.load(open("results/data/birds/manifest.json")), spec)
    # {'official_split': True, 'counts_match': True, 'carved_splits': ['val'], 'pretraining': 'none',
    #  'pretrained_file': None, 'resolution': 224}

The trainer writes this dict into each run's ``metrics.json`` (``protocol``); ``report.protocol_differences`` compares
it with a published number's protocol (config/references.yaml) and ``report.protocol_text`` renders it.
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
