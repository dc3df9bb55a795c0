"""Vision (and spectrogram) architectures that timm does not provide. Inputs: float ``[B, C, H, W]``."""

from __future__ import annotations

from torch import nn

from finebench.models.registry import image_hw


def conv_stem(in_ch: int, channels: list[int]) -> nn.Sequential:
    """3x3 conv -> BN -> ReLU -> 2x2 max-pool per entry of ``channels`` (each halves H and W)."""
    layers, c = [], in_ch
    for out in channels:
        layers += [nn.Conv2d(c, out, 3, padding=1, bias=False), nn.BatchNorm2d(out), nn.ReLU(inplace=True),
                   nn.MaxPool2d(2)]
        c = out
    return nn.Sequential(*layers)


class CRNN(nn.Module):
    """Conv stem + bidirectional LSTM/GRU scanning the feature map left to right (columns = time steps).

    With ``stem: []`` it is a plain RNN over raw pixel columns. Output: mean of the BiRNN states -> linear.
    """

    def __init__(self, input_info, num_classes, stem=(32, 64), hidden=128, layers=1, cell="lstm", dropout=0.1):
        super().__init__()
        h, w = image_hw(input_info)
        stem = list(stem)
        self.stem = conv_stem(input_info.get("channels", 1), stem)
        feat = (stem[-1] if stem else input_info.get("channels", 1)) * (h // 2 ** len(stem))
        rnn = {"lstm": nn.LSTM, "gru": nn.GRU}[cell]
        self.rnn = rnn(feat, hidden, num_layers=layers, batch_first=True, bidirectional=True,
                       dropout=dropout if layers > 1 else 0.0)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(2 * hidden, num_classes))

    def forward(self, x):
        f = self.stem(x)  # [B, C, H', W']
        seq = f.flatten(1, 2).transpose(1, 2)  # [B, W', C*H']
        out, _ = self.rnn(seq)
        return self.head(out.mean(1))



class ColumnRNN(CRNN):
    """Bidirectional LSTM (or GRU: ``cell: gru``) over the raw input's columns — image columns left to right,
    spectrogram frames in time — with no conv stem: the RNN baseline with no convolutional help."""

    def __init__(self, input_info, num_classes, hidden=128, layers=1, cell="lstm", dropout=0.1):
        super().__init__(input_info, num_classes, stem=(), hidden=hidden, layers=layers, cell=cell, dropout=dropout)



class SmallCNN(nn.Module):
    """A plain VGG-style CNN: conv stem blocks -> global average pool -> linear."""

    def __init__(self, input_info, num_classes, channels=(32, 64, 128), dropout=0.1):
        super().__init__()
        self.features = conv_stem(input_info.get("channels", 1), list(channels))
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout),
                                  nn.Linear(channels[-1], num_classes))

    def forward(self, x):
        return self.head(self.features(x))

__all__ = ["CRNN", "ColumnRNN", "SmallCNN", "conv_stem"]
