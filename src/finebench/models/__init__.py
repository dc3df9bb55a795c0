"""Model registry. Importing this package declares every built-in architecture (without importing torch)."""

from finebench.models.registry import (ARCHS, TIMM_PREFIX, build_model, check_arch, check_options, declare,
                                       default_family, known_archs, param_groups, preprocessing, register)

declare("textcnn", "cnn", ("text",), "finebench.models.text:TextCNN",
        "TextCNN (Kim 2014): filter widths 3/4/5, max-over-time pooling")
declare("birnn", "rnn", ("text",), "finebench.models.text:BiRNN",
        "Bidirectional LSTM (cell: gru for a GRU) over packed sequences, masked mean pooling")
declare("transformer", "transformer", ("text",), "finebench.models.text:TransformerEncoderClassifier",
        "Transformer encoder trained from scratch, learned positions, masked mean (or CLS) pooling")
declare("crnn", "rnn", ("vision", "speech"), "finebench.models.vision:CRNN",
        "Conv stem + BiLSTM over columns (time for spectrograms, left-to-right for images)")
declare("column_rnn", "rnn", ("vision", "speech"), "finebench.models.vision:ColumnRNN",
        "BiLSTM (or GRU) over raw image columns / spectrogram frames, no conv stem")
declare("small_cnn", "cnn", ("vision", "speech"), "finebench.models.vision:SmallCNN",
        "VGG-style CNN (3x3 conv blocks + global pooling); a light CNN baseline")

__all__ = ["ARCHS", "TIMM_PREFIX", "build_model", "check_arch", "check_options", "declare", "default_family",
           "known_archs", "param_groups", "preprocessing", "register"]
