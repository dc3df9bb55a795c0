"""Pretrained Hugging Face Transformers: ``arch: hf:<model id>`` for text and speech.

    models:
      distilbert:
        family: transformer          # the default for hf: models
        modality: text
        arch: hf:distilbert-base-uncased
        max_length: 128              # tokens per text (the model's own tokenizer; cached per task and tokenizer)
        pretrained_dir: /models/distilbert-base-uncased   # optional: a save_pretrained() folder (offline)

- **text**: ``AutoModelForSequenceClassification`` over ids made by the model's *own* tokenizer. Those ids come from
  the tokenisation cache (``finebench.data.hf_tokens``, Snakemake rule ``tokenize``): ``results/tokens/{task}/{slug}``,
  whose manifest names the tokenizer and its sha256. The model checks that hash against its own tokenizer before
  training, so ids made by one tokenizer are never fed to a model of another.
- **speech**: ``AutoModelForAudioClassification`` (wav2vec2, HuBERT, WavLM, AST …) over the task's raw 16 kHz
  waveform (``{split}_wav.npy`` in the prepared speech form, seen through ``results/waveform/{task}``). The model's
  own feature extractor turns it into what the model expects: wav2vec2-style extractors (per-clip normalisation) run
  as torch ops on the batch's device, any other (AST's Kaldi filterbanks, Whisper's log-mels …) through the
  extractor itself on the CPU.
- **weights**: from the hub by id (cached by huggingface_hub), or from ``pretrained_dir`` — a folder written by
  ``model.save_pretrained(DIR)`` plus ``tokenizer.save_pretrained(DIR)`` / ``feature_extractor.save_pretrained(DIR)``.
  Offline without that folder, the job stops with an error that says so. The classification head is always new
  (``num_labels`` = the task's classes; a checkpoint's own head of another size is dropped).
- **fine-tuning defaults** (:data:`TRAINING_DEFAULTS`): a pretrained encoder needs a much smaller learning rate than
  the from-scratch models, so hf: models take these in place of the config-wide and task ``training:`` values; the
  model's own ``training:`` entry still wins over them.

Model options (the model's config entry): ``pretrained_dir``, ``revision`` (a hub revision to pin), ``max_length``
(text, default 128), ``freeze_feature_encoder`` (wav2vec2-style speech models, default true: the convolutional
waveform encoder stays as pretrained, the usual fine-tuning recipe); any other key overrides an attribute of the
model's config (e.g. ``hidden_dropout_prob: 0.2``, ``use_weighted_layer_sum: true``).

``transformers`` is imported only when an hf: model is built or tokenised, never by jobs of other models.
"""

from __future__ import annotations

import re
from pathlib import Path

from finebench.errors import ConfigError, FinebenchError

HF_PREFIX = "hf:"
HF_MODALITIES = ("text", "speech")
DEFAULT_MAX_LENGTH = 128
# Keys of a model entry that are ours, not attributes of the checkpoint's config.
OWN_KEYS = {"pretrained_dir", "revision", "max_length", "freeze_feature_encoder"}
# Fine-tuning defaults per modality (in place of the from-scratch `training:` values; a model's own `training:` wins):
# text as in the BERT/RoBERTa GLUE recipes (lr 2e-5, weight decay 0.01, linear warm-up over ~10 % of a few epochs,
# gradient clipping at 1); speech as in the usual wav2vec2 / AST keyword-spotting fine-tuning (lr 3e-5).
TRAINING_DEFAULTS = {
    "text": {"lr": 2e-5, "weight_decay": 0.01, "warmup_epochs": 0.5, "grad_clip": 1.0},
    "speech": {"lr": 3e-5, "weight_decay": 0.01, "warmup_epochs": 0.5, "grad_clip": 1.0},
}
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*(/[A-Za-z0-9][A-Za-z0-9_.-]*)?$")


def is_hf(arch: str) -> bool:
    return isinstance(arch, str) and arch.startswith(HF_PREFIX)


def model_id(arch: str) -> str:
    return arch[len(HF_PREFIX) :] if is_hf(arch) else arch


def check_hf_arch(name: str, modality: str, key: str = "arch") -> None:
    """Raise ConfigError naming ``key`` unless ``hf:<name>`` can be built for ``modality`` (no import, no network:
    whether the id exists is only known when the weights are fetched)."""
    if modality not in HF_MODALITIES:
        raise ConfigError(f"{key}: hf: models are for {' and '.join(HF_MODALITIES)}, not {modality} "
                          f"(for vision use 'timm:<name>', e.g. with pretrained: true)")
    if not _ID.match(name):
        raise ConfigError(f"{key}: {HF_PREFIX}{name!r} is not a Hugging Face model id; expected 'hf:<name>' or "
                          f"'hf:<organisation>/<name>', e.g. 'hf:distilbert-base-uncased' or 'hf:facebook/wav2vec2-base'")


def training_defaults(arch: str, modality: str) -> dict:
    """Fine-tuning defaults for ``arch`` (empty for anything but hf: models)."""
    return dict(TRAINING_DEFAULTS.get(modality, {})) if is_hf(arch) else {}


def pretraining_label(name: str, kwargs: dict) -> str:
    """What the metrics' ``protocol.pretraining`` says for this model (and the tables flag)."""
    folder = kwargs.get("pretrained_dir")
    return f"folder {Path(folder).name} ({name})" if folder else f"hf hub weights {name}"


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
    return (f"Offline? Download it where there is network — e.g. `{what}.from_pretrained('{name}').save_pretrained(DIR)` "
            f"for the model and for its tokenizer or feature extractor — and set `pretrained_dir: DIR` in the model's entry")


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
        raise FinebenchError(f"hf:{name}: could not load the {what} from the Hugging Face hub and found no local copy "
                             f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}). "
                             f"{offline_hint(name, auto_cls.__name__)}") from exc


def build_hf(name: str, kwargs: dict, input_info: dict, num_classes: int):
    """An nn.Module whose ``forward(x)`` takes what the trainer passes — padded ids ``[B, T]`` (text) or waveforms
    ``[B, samples]`` (speech) — and returns logits ``[B, num_classes]``."""
    kind = input_info.get("kind")
    if kind in ("tokens", "waveform"):
        from finebench.models import hf_modules  # torch + transformers: imported by hf: jobs only

        cls = hf_modules.HFTextClassifier if kind == "tokens" else hf_modules.HFAudioClassifier
        return cls(name, dict(kwargs), input_info, num_classes)
    if kind == "spectrogram":
        raise FinebenchError(f"hf:{name}: pretrained audio models take the raw waveform, but this job was given the "
                             f"log-mel form — run it through the workflow (its data is results/waveform/<task>), or pass "
                             f"that folder as --data")
    raise FinebenchError(f"hf:{name}: input kind {kind!r} is not supported (hf: models take text or speech)")


def load_model(auto_cls, name: str, kwargs: dict, num_classes: int):
    """The pretrained encoder with a new ``num_classes`` head; other keys of the entry override config attributes."""
    overrides = {k: v for k, v in kwargs.items() if k not in OWN_KEYS}
    try:
        return load_pretrained(auto_cls, name, kwargs, "model", num_labels=num_classes, ignore_mismatched_sizes=True,
                               **overrides)
    except TypeError as exc:
        raise FinebenchError(f"hf:{name}: bad option in the model's config entry ({exc}); options are "
                             f"{', '.join(sorted(OWN_KEYS))} or attributes of the checkpoint's config") from exc
