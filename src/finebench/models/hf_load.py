"""Loading Hugging Face weights, tokenizers and feature extractors for ``arch: hf:…`` — from ``pretrained_dir`` or
the hub — with errors that name the fix (finebench.models.hf documents the options). A leaf module: transformers is
imported inside the functions, so importing this costs nothing."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from finebench.errors import FinebenchError

DEFAULT_MAX_LENGTH = 128
# Keys of a model entry that are ours, not attributes of the checkpoint's config.
OWN_KEYS = {"pretrained_dir", "revision", "max_length", "freeze_feature_encoder", "layer_decay"}

def source_of(name: str, kwargs: dict) -> str:
    """Where weights, tokenizer and feature extractor come from: the local folder if given, else the hub id."""
    folder = kwargs.get("pretrained_dir")
    if folder:
        folder = Path(folder).expanduser()
        if not (folder / "config.json").is_file():
            raise FinebenchError(
                f"pretrained_dir: {folder} holds no config.json — save the model there with "
                f"model.save_pretrained('{folder}') (and its tokenizer / feature extractor the same way)")
        return str(folder)
    return name


def offline_hint(name: str, what: str) -> str:
    return (f"Offline? Download it where there is network — e.g. "
            f"`{what}.from_pretrained('{name}').save_pretrained(DIR)` for the model and for its tokenizer or feature "
            f"extractor — and set `pretrained_dir: DIR` in the model's entry")


def load_pretrained(auto_cls, name: str, kwargs: dict, what: str, **extra):
    """``auto_cls.from_pretrained`` from the folder or the hub, with an error that names the fix."""
    src = source_of(name, kwargs)
    revision = kwargs.get("revision")
    try:
        return auto_cls.from_pretrained(src, **({"revision": revision} if revision and src == name else {}), **extra)
    except (OSError, ValueError, ImportError) as exc:
        if src != name:
            raise FinebenchError(f"hf:{name}: could not load the {what} from pretrained_dir {src} "
                                 f"({type(exc).__name__}: {exc})") from exc
        from finebench.prefetch import missing_hint  # offline jobs: the prefetched cache and how to fill it

        raise FinebenchError(f"hf:{name}: could not load the {what} from the Hugging Face hub and found no local copy "
                             f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}). "
                             f"{missing_hint()}{offline_hint(name, auto_cls.__name__)}") from exc


def load_model(auto_cls, name: str, kwargs: dict, num_classes: int):
    """The pretrained encoder with a new ``num_classes`` head; other keys of the entry override config attributes."""
    overrides = {k: v for k, v in kwargs.items() if k not in OWN_KEYS}
    try:
        return load_pretrained(auto_cls, name, kwargs, "model", num_labels=num_classes, ignore_mismatched_sizes=True,
                               **overrides)
    except TypeError as exc:
        raise FinebenchError(f"hf:{name}: bad option in the model's config entry ({exc}); options are "
                             f"{', '.join(sorted(OWN_KEYS))} or attributes of the checkpoint's config") from exc


def load_tokenizer(name: str, kwargs: dict):
    """The model's own tokenizer (from ``pretrained_dir`` or the hub), right-padding, with a pad token."""
    from transformers import AutoTokenizer

    tok = load_pretrained(AutoTokenizer, name, kwargs, "tokenizer")
    if tok.pad_token is None:
        if tok.eos_token is None:
            raise FinebenchError(f"hf:{name}: the tokenizer has neither a pad nor an end-of-text token to pad with")
        tok.pad_token = tok.eos_token  # GPT-2 style tokenizers
    tok.padding_side = "right"
    return tok


def tokenizer_sha256(tok) -> str:
    """A fingerprint of what the tokenizer does: its full fast-tokenizer definition (normaliser, pre-tokeniser, vocab
    and merges, special tokens and the template that adds them), less the run-time truncation/padding settings, plus
    the pad token; for a tokenizer without a fast backend, the files it saves."""
    h = hashlib.sha256(type(tok).__name__.encode())
    backend = getattr(tok, "backend_tokenizer", None)
    if backend is not None:
        state = json.loads(backend.to_str())
        state.pop("truncation", None)
        state.pop("padding", None)
        h.update(json.dumps(state, sort_keys=True).encode())
    else:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            tok.save_pretrained(tmp)
            for f in sorted(Path(tmp).iterdir()):
                h.update(f.name.encode() + f.read_bytes())
    h.update(f"pad={tok.pad_token}:{tok.pad_token_id}".encode())
    return h.hexdigest()
