"""Baseline model plugins: a small fast CNN and a 1-D ResNet-18 (both output logits)."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import ecgarena
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from .nets import CNN, ResNet1d


class CNNModel(BaseModel):
    """Three strided conv blocks, global average+max pooling, a linear head."""

    model_config = ConfigDict(extra="forbid")
    name: ClassVar[str] = "cnn"
    width: int = Field(32, ge=4, le=512)
    dropout: float = Field(0.1, ge=0, lt=1)

    def build(self, n_leads: int, n_samples: int, n_classes: int) -> nn.Module:
        return CNN(n_leads, n_classes, self.width, self.dropout)


class ResNet1d18Model(BaseModel):
    """ResNet-18 layout ([2, 2, 2, 2] basic blocks) with 1-D convolutions (kernel 7)."""

    model_config = ConfigDict(extra="forbid")
    name: ClassVar[str] = "resnet1d18"
    width: int = Field(64, ge=4, le=512, description="channels of the first stage")
    kernel: int = Field(7, ge=3, le=31)

    def build(self, n_leads: int, n_samples: int, n_classes: int) -> nn.Module:
        return ResNet1d(n_leads, n_classes, (2, 2, 2, 2), self.width, self.kernel)


@ecgarena.hookimpl
def ecgarena_register_models(register: Callable[[type], None]) -> None:
    register(CNNModel)
    register(ResNet1d18Model)
