"""The networks behind the baseline models; inputs are standardised `(batch, leads, time)`.
The ResNet (`ecgarena.ResNet1d`) is shared with other plugins and lives in the core."""

from __future__ import annotations

import torch
from ecgarena import conv_bn
from torch import nn


class CNN(nn.Module):
    """A small CNN that trains in seconds on CPU: the arena's test workhorse."""

    def __init__(self, n_leads: int, n_classes: int, width: int = 32, dropout: float = 0.1) -> None:
        super().__init__()
        w = width
        self.features = nn.Sequential(
            *conv_bn(n_leads, w, 7, 2),
            nn.ReLU(),
            *conv_bn(w, 2 * w, 5, 2),
            nn.ReLU(),
            *conv_bn(2 * w, 2 * w, 5, 2),
            nn.ReLU(),
        )
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(4 * w, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.features(x)
        return self.head(torch.cat([h.mean(-1), h.amax(-1)], dim=1))


def conv_vit_patches(n_samples: int, patch: int) -> int:
    """Patches the conv stem (k=7, stride 2, pad 3) then a patch-wide, patch-strided conv yield."""
    stem = (n_samples - 1) // 2 + 1
    return stem // patch


class ConvViT(nn.Module):
    """ViT on a conv patch embedding (stride-2 stem, patch conv), [CLS], pre-norm encoder.

    Positions are sized for `n_samples`; stem outputs that do not fill a last patch are dropped.
    """

    def __init__(
        self,
        n_leads: int,
        n_samples: int,
        n_classes: int,
        dim: int = 64,
        depth: int = 2,
        heads: int = 4,
        patch: int = 8,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        if dim % heads != 0:
            raise ValueError(f"dim {dim} must be divisible by heads {heads}")
        self.n_samples = n_samples
        self.n_patches = conv_vit_patches(n_samples, patch)
        if self.n_patches < 1:
            raise ValueError(
                f"n_samples {n_samples} is too short for patch {patch}: the stride-2 stem "
                f"gives {(n_samples - 1) // 2 + 1} samples, fewer than one patch "
                f"(needs n_samples >= {2 * patch - 1})"
            )
        self.embed = nn.Sequential(
            *conv_bn(n_leads, dim // 2, 7, 2),
            nn.GELU(),
            nn.Conv1d(dim // 2, dim, patch, patch),
        )
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos = nn.Parameter(torch.zeros(1, self.n_patches + 1, dim))
        nn.init.trunc_normal_(self.cls, std=0.02)
        nn.init.trunc_normal_(self.pos, std=0.02)
        self.drop = nn.Dropout(dropout)
        layer = nn.TransformerEncoderLayer(
            dim,
            heads,
            dim_feedforward=4 * dim,
            dropout=dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.n_samples:
            raise ValueError(f"ConvViT built for {self.n_samples} samples, got {x.shape[-1]}")
        h = self.embed(x).transpose(1, 2)  # (batch, patches, dim)
        h = torch.cat([self.cls.expand(h.shape[0], -1, -1), h], dim=1) + self.pos
        h = self.encoder(self.drop(h))
        return self.head(self.norm(h[:, 0]))
