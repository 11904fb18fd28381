"""The networks behind the baseline models; inputs are standardised `(batch, leads, time)`."""

from __future__ import annotations

import torch
from torch import nn


def conv_bn(c_in: int, c_out: int, k: int, stride: int = 1) -> list[nn.Module]:
    return [nn.Conv1d(c_in, c_out, k, stride, padding=k // 2, bias=False), nn.BatchNorm1d(c_out)]


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


class BasicBlock1d(nn.Module):
    """Two k-wide convolutions with a residual connection (projected when the shape changes)."""

    def __init__(self, c_in: int, c_out: int, k: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            *conv_bn(c_in, c_out, k, stride), nn.ReLU(), *conv_bn(c_out, c_out, k)
        )
        self.skip = (
            nn.Sequential(*conv_bn(c_in, c_out, 1, stride))
            if stride != 1 or c_in != c_out
            else nn.Identity()
        )
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + self.skip(x))


class ResNet1d(nn.Module):
    """1-D ResNet: stem (k=15, stride 2, max-pool), four stages doubling width, GAP, linear."""

    def __init__(
        self, n_leads: int, n_classes: int, blocks: tuple[int, ...], width: int, k: int
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            *conv_bn(n_leads, width, 15, 2),
            nn.ReLU(),
            nn.MaxPool1d(3, 2, 1),
        ]
        c = width
        for i, n in enumerate(blocks):
            c_out = width * 2**i
            for j in range(n):
                layers.append(BasicBlock1d(c, c_out, k, 2 if (j == 0 and i > 0) else 1))
                c = c_out
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(c, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean(-1))
