"""Model registry. Importing this package declares every built-in architecture (without importing torch)."""

from finebench.models.registry import (
    ARCHS,
    TIMM_PREFIX,
    arch_task_type,
    build_model,
    check_arch,
    check_options,
    declare,
    default_family,
    known_archs,
    param_groups,
    preprocessing,
    register,
    solves,
)

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
# Super-resolution (task type superres): LR image -> HR image; see models/superres.py.
declare("edsr", "cnn", ("vision",), "finebench.models.superres:EDSR",
        "EDSR-style residual CNN, pixel-shuffle upsampling (super-resolution)", task_type="superres")
declare("convgru_sr", "rnn", ("vision",), "finebench.models.superres:ConvGRUSR",
        "Recurrent refinement: a ConvGRU cell unrolled over steps, DRCN-style (super-resolution)", task_type="superres")
declare("swinir_lite", "transformer", ("vision",), "finebench.models.superres:SwinIRLite",
        "Small SwinIR-style model on timm's window-attention Swin blocks (super-resolution)", task_type="superres")
# Speech recognition (task type asr): log-mel frames -> per-frame characters for CTC; see models/asr.py.
declare("quartznet", "cnn", ("speech",), "finebench.models.asr:QuartzNet",
        "QuartzNet-style 1-D time-channel separable convolutions, residual blocks (speech recognition, CTC)",
        task_type="asr")
declare("ds2", "rnn", ("speech",), "finebench.models.asr:DeepSpeech2",
        "Deep Speech 2-style 2-D conv front-end + bidirectional GRU/LSTM (speech recognition, CTC)", task_type="asr")
declare("conformer", "transformer", ("speech",), "finebench.models.asr:ConformerCTC",
        "Conv subsampling + torchaudio Conformer encoder (speech recognition, CTC)", task_type="asr")

__all__ = ["ARCHS", "TIMM_PREFIX", "arch_task_type", "build_model", "check_arch", "check_options", "declare",
           "default_family", "known_archs", "param_groups", "preprocessing", "register", "solves"]
