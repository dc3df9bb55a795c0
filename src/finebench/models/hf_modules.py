"""The nn.Modules behind ``arch: hf:<model id>`` (see finebench.models.hf; imported only by jobs that build one)."""

from __future__ import annotations

import re
from typing import Any

from torch import nn
from transformers import (
    AutoFeatureExtractor,
    AutoModelForAudioClassification,
    AutoModelForCTC,
    AutoModelForSequenceClassification,
    Wav2Vec2FeatureExtractor,
)
from transformers.utils import logging as hf_logging

from finebench.errors import FinebenchError
from finebench.models.hf_load import OWN_KEYS, load_model, load_pretrained, load_tokenizer, tokenizer_sha256

hf_logging.disable_progress_bar()  # job logs are files: keep transformers' load report, drop its progress bars


# encoder.layer.3. (BERT, DistilBERT, RoBERTa, AST), encoder.layers.3. (wav2vec2)
LAYER = re.compile(r"\.layers?\.(\d+)\.")
HEAD_PARTS = {"classifier", "pre_classifier", "pooler", "projector", "score"}


class LayerDecay:
    """Layer-wise learning-rate decay (``layer_decay: d`` in the model's entry; off by default): the new head learns
    at the trainer's lr, the top encoder layer at d x lr, each layer below at d times the one above, embeddings (and
    a wav2vec2 feature encoder) at d^(L+1) x lr — the pretrained lower layers move least (ELECTRA, BEiT)."""

    layer_decay: float | None = None
    # the transformers model (AutoModelFor… .from_pretrained), set by the nn.Module this is mixed into; Any: its
    # methods differ by model class (freeze_feature_encoder, _get_feat_extract_output_lengths …)
    net: Any

    def lr_scales(self) -> dict:
        d = self.layer_decay
        if not d or d == 1:
            return {}
        n = int(self.net.config.num_hidden_layers)
        scales = {}
        for name, p in self.net.named_parameters():
            layer = LAYER.search(name)
            depth = n + 1 if HEAD_PARTS & set(name.split(".")) else (int(layer[1]) + 1 if layer else 0)
            scales[p] = float(d) ** (n + 1 - depth)
        return scales


class HFTextClassifier(LayerDecay, nn.Module):
    """``AutoModelForSequenceClassification`` over right-padded ids ``[B, T]`` made by the model's own tokenizer; the
    attention mask is ``ids != pad_id``."""

    def __init__(self, name: str, kwargs: dict, input_info: dict, num_classes: int):
        super().__init__()
        want = input_info.get("tokenizer_sha256")
        if not want:
            raise FinebenchError(
                f"hf:{name}: this task's token ids were made by finebench's own BPE tokenizer, not by the model's "
                f"tokenizer — hf: text models read results/tokens/<task>/<tokenizer>/ (Snakemake rule tokenize; by "
                f"hand: python -m finebench.data.hf_tokens tokenize --help)")
        have = tokenizer_sha256(load_tokenizer(name, kwargs))
        if have != want:
            raise FinebenchError(
                f"hf:{name}: the token ids given were made by another tokenizer ({input_info.get('tokenizer')}, sha256 "
                f"{want[:12]}…) than the model's own ({have[:12]}…) — delete that tokens folder and rerun, so the "
                f"texts are tokenised again with the model's tokenizer")
        self.pad_id = int(input_info["pad_id"])
        self.layer_decay = kwargs.get("layer_decay")
        self.net = load_model(AutoModelForSequenceClassification, name, kwargs, num_classes)
        if self.net.config.pad_token_id is None:  # GPT-2-style models find each text's last token with it
            self.net.config.pad_token_id = self.pad_id

    def forward(self, x):
        mask = (x != self.pad_id).long()
        mask[:, 0] = 1  # an empty text still attends to its first position
        return self.net(input_ids=x, attention_mask=mask).logits


class HFAudioClassifier(LayerDecay, nn.Module):
    """``AutoModelForAudioClassification`` over raw waveforms ``[B, samples]``, through the model's own feature
    extractor: wav2vec2-style ones (per-clip normalisation) as torch ops on the batch's device, any other (AST's
    Kaldi filterbanks …) by calling the extractor on the CPU."""

    def __init__(self, name: str, kwargs: dict, input_info: dict, num_classes: int):
        super().__init__()
        self.extractor = load_pretrained(AutoFeatureExtractor, name, kwargs, "feature extractor")
        sr = int(input_info["sample_rate"])
        want_sr = int(getattr(self.extractor, "sampling_rate", sr))
        if want_sr != sr:
            raise FinebenchError(f"hf:{name}: the model's feature extractor expects {want_sr} Hz audio, but the task "
                                 f"is prepared at {sr} Hz — set the task's sample_rate: {want_sr}")
        self.sample_rate = sr
        self.layer_decay = kwargs.get("layer_decay")
        self.torch_features = isinstance(self.extractor, Wav2Vec2FeatureExtractor)
        self.normalize = bool(getattr(self.extractor, "do_normalize", False))
        self.net = load_model(AutoModelForAudioClassification, name, kwargs, num_classes)
        if kwargs.get("freeze_feature_encoder", True) and hasattr(self.net, "freeze_feature_encoder"):
            self.net.freeze_feature_encoder()

    def features(self, wav) -> dict:
        if self.torch_features:
            x = wav.float()
            if self.normalize:  # as Wav2Vec2FeatureExtractor.zero_mean_unit_var_norm, per clip
                x = (x - x.mean(1, keepdim=True)) / (x.var(1, unbiased=False, keepdim=True) + 1e-7).sqrt()
            return {"input_values": x}
        feats = self.extractor(list(wav.detach().float().cpu().numpy()), sampling_rate=self.sample_rate,
                               return_tensors="pt")
        return {k: v.to(wav.device) for k, v in feats.items()}

    def forward(self, wav):
        return self.net(**self.features(wav)).logits


class HFCTC(LayerDecay, nn.Module):
    """``AutoModelForCTC`` (wav2vec2, HuBERT, WavLM …) for speech recognition (task type ``asr``): the padded 16 kHz
    waveforms of a finebench.tasks.asr.objective.Padded batch -> ``(logits [B, frames, vocabulary], output
    lengths)``. The CTC head is new, sized to the task's character vocabulary (blank = id 0, which is also the pad
    id the model's config is given); the checkpoint's own vocabulary, if any, is dropped. Normalisation as the
    wav2vec2 feature extractor's (zero mean, unit variance) over each utterance's own samples, the padding left at
    0; the attention mask is passed only where the extractor asks for one (checkpoints with layer-norm feature
    encoders; group-norm ones such as wav2vec2-base expect zero padding and no mask)."""

    takes_waveform = True

    def __init__(self, name: str, kwargs: dict, input_info: dict, num_classes: int):
        super().__init__()
        extractor = load_pretrained(AutoFeatureExtractor, name, kwargs, "feature extractor")
        sr, want_sr = (int(input_info["sample_rate"]),
                       int(getattr(extractor, "sampling_rate", input_info["sample_rate"])))
        if want_sr != sr:
            raise FinebenchError(f"hf:{name}: the model's feature extractor expects {want_sr} Hz audio, but the task "
                                 f"is prepared at {sr} Hz — set the task's sample_rate: {want_sr}")
        if not input_info.get("waveform"):
            raise FinebenchError(f"hf:{name}: takes the 16 kHz waveform, but the task was prepared without it "
                                 f"(waveform: false) — set the task's waveform: true")
        self.normalize = bool(getattr(extractor, "do_normalize", False))
        self.use_mask = bool(getattr(extractor, "return_attention_mask", False))
        self.layer_decay = kwargs.get("layer_decay")
        overrides = {k: v for k, v in kwargs.items() if k not in OWN_KEYS}
        self.net = load_pretrained(AutoModelForCTC, name, kwargs, "model", vocab_size=num_classes, pad_token_id=0,
                                   ignore_mismatched_sizes=True, **overrides)
        if kwargs.get("freeze_feature_encoder", True) and hasattr(self.net, "freeze_feature_encoder"):
            self.net.freeze_feature_encoder()

    def output_lengths(self, samples):
        return self.net._get_feat_extract_output_lengths(samples).long()

    def forward(self, x):
        import torch

        wav, lengths = x.values.float(), x.lengths
        mask = (torch.arange(wav.shape[1], device=wav.device)[None] < lengths[:, None]).to(wav.dtype)
        if self.normalize:  # per utterance, over its own samples
            n = lengths.clamp(min=1)[:, None].to(wav.dtype)
            mean = (wav * mask).sum(1, keepdim=True) / n
            var = (((wav - mean) * mask) ** 2).sum(1, keepdim=True) / n
            wav = (wav - mean) / (var + 1e-7).sqrt() * mask
        out = self.net(input_values=wav, attention_mask=mask.long() if self.use_mask else None)
        return out.logits, self.output_lengths(lengths).clamp(max=out.logits.shape[1])
