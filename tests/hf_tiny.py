"""Tiny, randomly initialised Hugging Face models saved with save_pretrained — the offline stand-ins for hub checkpoints
in the hf: tests (no download, ever). Each folder holds what ``pretrained_dir:`` expects: model + tokenizer (text) or
model + feature extractor (speech)."""

from __future__ import annotations

import string
from pathlib import Path

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def wordpiece_tokenizer(words=()):
    """A BERT-style WordPiece tokenizer built locally with `tokenizers`: every letter and digit (alone and as a ##
    continuation) so any text encodes, plus whole ``words``; wrapped in PreTrainedTokenizerFast."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    chars = list(string.ascii_lowercase + string.digits) + list(".,;:'\"()-!?&/")
    vocab = SPECIALS + chars + [f"##{c}" for c in string.ascii_lowercase + string.digits] + list(words)
    tok = Tokenizer(models.WordPiece({t: i for i, t in enumerate(dict.fromkeys(vocab))}, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", vocab.index("[CLS]")), ("[SEP]", vocab.index("[SEP]"))])
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]",
                                   sep_token="[SEP]", mask_token="[MASK]")


def save_tiny_bert(folder: Path, words=(), seed: int = 0) -> Path:
    """A 1-layer, 32-wide BERT + its WordPiece tokenizer in ``folder``."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    tok = wordpiece_tokenizer(words)
    torch.manual_seed(seed)
    cfg = BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=160, pad_token_id=tok.pad_token_id)
    BertForSequenceClassification(cfg).save_pretrained(folder)
    tok.save_pretrained(folder)
    return Path(folder)


def save_tiny_wav2vec2(folder: Path, seed: int = 0) -> Path:
    """A 1-layer, 32-wide wav2vec2 (two small conv layers, 16x downsampling) + its feature extractor."""
    import torch
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2ForSequenceClassification

    torch.manual_seed(seed)
    cfg = Wav2Vec2Config(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                         conv_dim=(16, 16), conv_stride=(4, 4), conv_kernel=(8, 4), num_conv_pos_embeddings=8,
                         num_conv_pos_embedding_groups=2, classifier_proj_size=16, mask_time_prob=0.0,
                         do_stable_layer_norm=False, feat_extract_norm="group")
    Wav2Vec2ForSequenceClassification(cfg).save_pretrained(folder)
    Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, padding_value=0.0, do_normalize=True,
                             return_attention_mask=False).save_pretrained(folder)
    return Path(folder)


def save_tiny_ast(folder: Path, seed: int = 0) -> Path:
    """A 1-layer, 32-wide AST over 1 s of 32-bin Kaldi filterbanks (100 frames) + its feature extractor."""
    import torch
    from transformers import ASTConfig, ASTFeatureExtractor, ASTForAudioClassification

    torch.manual_seed(seed)
    cfg = ASTConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                    num_mel_bins=32, max_length=100, frequency_stride=16, time_stride=16)
    ASTForAudioClassification(cfg).save_pretrained(folder)
    ASTFeatureExtractor(num_mel_bins=32, max_length=100, sampling_rate=16000).save_pretrained(folder)
    return Path(folder)
