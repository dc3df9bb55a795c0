"""Text architectures over padded token ids ``[B, T]`` (pad id 0).

Every model masks padding: a sequence's logits are the same however much padding follows it (tested).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def padding_mask(x: torch.Tensor, pad_id: int = 0) -> torch.Tensor:
    """True at real tokens. A fully padded row keeps its first position so pooling stays defined."""
    mask = x != pad_id
    mask[:, 0] |= ~mask.any(1)
    return mask


def masked_mean(h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    m = mask.unsqueeze(-1).to(h.dtype)
    return (h * m).sum(1) / m.sum(1).clamp(min=1)


class TextCNN(nn.Module):
    """Kim (2014): parallel 1-D convolutions of several widths, max-over-time pooling, dropout, linear."""

    def __init__(self, input_info, num_classes, embed_dim=128, widths=(3, 4, 5), filters=100, dropout=0.5):
        super().__init__()
        self.embed = nn.Embedding(input_info["vocab_size"], embed_dim, padding_idx=0)
        self.widths = list(widths)
        self.convs = nn.ModuleList(nn.Conv1d(embed_dim, filters, w) for w in self.widths)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(filters * len(self.widths), num_classes))

    def forward(self, x):
        mask = padding_mask(x)
        e = (self.embed(x) * mask.unsqueeze(-1)).transpose(1, 2)  # [B, E, T], zero at padding
        pooled = []
        for w, conv in zip(self.widths, self.convs):
            # Right-pad by w-1 so every window starting at a real token exists whatever the batch's padding.
            h = F.relu(conv(F.pad(e, (0, w - 1))))  # [B, F, T]: window starting at each position
            h = h.masked_fill(~mask.unsqueeze(1), float("-inf"))
            pooled.append(h.max(2).values)
        return self.head(torch.cat(pooled, 1))


class BiRNN(nn.Module):
    """Bidirectional LSTM/GRU over packed sequences (padding never enters the recurrence), masked mean pooling."""

    def __init__(self, input_info, num_classes, embed_dim=128, hidden=128, layers=1, cell="lstm", dropout=0.3):
        super().__init__()
        self.embed = nn.Embedding(input_info["vocab_size"], embed_dim, padding_idx=0)
        rnn = {"lstm": nn.LSTM, "gru": nn.GRU}[cell]
        self.rnn = rnn(embed_dim, hidden, num_layers=layers, batch_first=True, bidirectional=True,
                       dropout=dropout if layers > 1 else 0.0)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(2 * hidden, num_classes))

    def forward(self, x):
        mask = padding_mask(x)
        if bool(mask.all()):  # no padding in this batch: no need to pack
            h, _ = self.rnn(self.embed(x))
        else:
            lengths = mask.sum(1).cpu()
            packed = nn.utils.rnn.pack_padded_sequence(self.embed(x), lengths, batch_first=True, enforce_sorted=False)
            out, _ = self.rnn(packed)
            h, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
        return self.head(masked_mean(h, mask))


class TransformerEncoderClassifier(nn.Module):
    """Transformer encoder from scratch: token + learned position embeddings, pre-norm layers with a key padding
    mask, masked mean pooling (or the first token with ``pool: cls``, which prepends a learned CLS token)."""

    def __init__(self, input_info, num_classes, dim=128, depth=2, heads=4, mlp_ratio=2.0, dropout=0.1, pool="mean"):
        super().__init__()
        self.pool = pool
        self.embed = nn.Embedding(input_info["vocab_size"], dim, padding_idx=0)
        self.pos = nn.Parameter(torch.zeros(1, input_info["max_len"] + 1, dim))
        nn.init.trunc_normal_(self.pos, std=0.02)
        self.cls = nn.Parameter(torch.zeros(1, 1, dim)) if pool == "cls" else None
        layer = nn.TransformerEncoderLayer(dim, heads, int(dim * mlp_ratio), dropout, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(dim, num_classes))

    def no_weight_decay(self) -> set[str]:
        """Exempt from weight decay (timm's convention): the position table and the CLS token."""
        return {"pos", "cls"}

    def forward(self, x):
        mask = padding_mask(x)
        h = self.embed(x)
        if self.cls is not None:
            h = torch.cat([self.cls.expand(len(x), -1, -1), h], 1)
            mask = torch.cat([torch.ones_like(mask[:, :1]), mask], 1)
        h = h + self.pos[:, : h.shape[1]]
        h = self.norm(self.encoder(h, src_key_padding_mask=~mask))
        return self.head(h[:, 0] if self.cls is not None else masked_mean(h, mask))
