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
- **speech recognition** (task type ``asr``): ``AutoModelForCTC`` with a new CTC head over the task's characters,
  fed the 16 kHz waveforms the prepared ``asr`` form keeps (``hf_modules.HFCTC``). An hf: speech model runs on the
  speech tasks of both types: a classification head on keyword tasks, a CTC head on ``asr`` tasks.
- **weights**: from the hub by id (cached by huggingface_hub), or from ``pretrained_dir`` — a folder written by
  ``model.save_pretrained(DIR)`` plus ``tokenizer.save_pretrained(DIR)`` / ``feature_extractor.save_pretrained(DIR)``.
  Offline without that folder, the job stops with an error that says so. The classification head is always new
  (``num_labels`` = the task's classes; a checkpoint's own head of another size is dropped).
- **fine-tuning defaults** (:data:`TRAINING_DEFAULTS`): a pretrained encoder needs a much smaller learning rate than
  the from-scratch models, so hf: models take these in place of the config-wide and task ``training:`` values; the
  model's own ``training:`` entry still wins over them.

Model options (the model's config entry): ``pretrained_dir``, ``revision`` (a hub revision to pin), ``max_length``
(text, default 128), ``freeze_feature_encoder`` (wav2vec2-style speech models, default true: the convolutional
waveform encoder stays as pretrained, the usual fine-tuning recipe), ``layer_decay`` (layer-wise learning-rate decay,
e.g. 0.9; off by default — ``hf_modules.LayerDecay``); any other key overrides an attribute of the model's config
(e.g. ``hidden_dropout_prob: 0.2``, ``use_weighted_layer_sum: true``).

``transformers`` is imported only when an hf: model is built or tokenised, never by jobs of other models. Modules:
this one (config checks, defaults, protocol fields, ``build_hf``), ``hf_load`` (loading from a folder or the hub, the
tokenizer fingerprint), ``hf_modules`` (the nn.Modules; imports torch and transformers).
"""

from __future__ import annotations

import re
from pathlib import Path

from finebench.errors import ConfigError, FinebenchError

HF_PREFIX = "hf:"
HF_MODALITIES = ("text", "speech")
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
                          f"'hf:<organisation>/<name>', e.g. 'hf:distilbert-base-uncased' or "
                          f"'hf:facebook/wav2vec2-base'")


def training_defaults(arch: str, modality: str) -> dict:
    """Fine-tuning defaults for ``arch`` (empty for anything but hf: models)."""
    return dict(TRAINING_DEFAULTS.get(modality, {})) if is_hf(arch) else {}


def pretraining_fields(kwargs: dict) -> tuple[str, str | None]:
    """The run protocol's ``pretraining`` and ``pretrained_file`` for an hf: model (finebench.protocol): weights from
    the hub (the id is the run's arch) or from the folder ``pretrained_dir`` (its name)."""
    folder = kwargs.get("pretrained_dir")
    return ("hf_folder", Path(folder).name) if folder else ("hf_hub", None)


def build_hf(name: str, kwargs: dict, input_info: dict, num_classes: int):
    """An nn.Module whose ``forward(x)`` takes what the trainer passes — padded ids ``[B, T]`` (text) or waveforms
    ``[B, samples]`` (speech) — and returns logits ``[B, num_classes]``."""
    kind = input_info.get("kind")
    if kind in ("tokens", "waveform"):
        from finebench.models import hf_modules  # torch + transformers: imported by hf: jobs only

        cls = hf_modules.HFTextClassifier if kind == "tokens" else hf_modules.HFAudioClassifier
        return cls(name, dict(kwargs), input_info, num_classes)
    if kind == "asr_features":  # speech recognition: a CTC head over the waveform the prepared form keeps
        from finebench.models import hf_modules

        return hf_modules.HFCTC(name, dict(kwargs), input_info, num_classes)
    if kind == "spectrogram":
        raise FinebenchError(f"hf:{name}: pretrained audio models take the raw waveform, but this job was given the "
                             f"log-mel form — run it through the workflow (its data is results/waveform/<task>), "
                             f"or pass that folder as --data")
    raise FinebenchError(f"hf:{name}: input kind {kind!r} is not supported (hf: models take text or speech)")
