"""Baseline model plugins: a small fast CNN, a 1-D ResNet-18 and a conv ViT (all output logits)."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import ecgarena
from ecgarena import Options, ResNet1d, UserError
from pydantic import Field, ValidationInfo, field_validator
from torch import nn

from .nets import CNN, ConvViT


class CNNModel(Options):
    """Three strided conv blocks, global average+max pooling, a linear head."""

    name: ClassVar[str] = "cnn"
    width: int = Field(32, ge=4, le=512)
    dropout: float = Field(0.1, ge=0, lt=1)

    def build(self, n_leads: int, n_samples: int, n_classes: int) -> nn.Module:
        return CNN(n_leads, n_classes, self.width, self.dropout)


class ResNet1d18Model(Options):
    """ResNet-18 layout ([2, 2, 2, 2] basic blocks) with 1-D convolutions (kernel 7)."""

    name: ClassVar[str] = "resnet1d18"
    width: int = Field(64, ge=4, le=512, description="channels of the first stage")
    kernel: int = Field(7, ge=3, le=31)

    def build(self, n_leads: int, n_samples: int, n_classes: int) -> nn.Module:
        return ResNet1d(n_leads, n_classes, (2, 2, 2, 2), self.width, self.kernel)


class ConvViTModel(Options):
    """A small vision transformer: conv stem + patch conv, [CLS] token, pre-norm encoder."""

    name: ClassVar[str] = "conv-vit"
    dim: int = Field(64, ge=8, le=1024, description="token width (embedding dimension)")
    depth: int = Field(2, ge=1, le=24, description="number of transformer encoder layers")
    heads: int = Field(4, ge=1, le=32, description="attention heads; must divide dim")
    patch: int = Field(
        8, ge=1, le=256, description="patch length in samples of the stride-2 stem output"
    )
    dropout: float = Field(0.1, ge=0, lt=1, description="dropout in the embedding and encoder")

    @field_validator("heads")
    @classmethod
    def _heads_divide_dim(cls, heads: int, info: ValidationInfo) -> int:
        dim = info.data.get("dim")
        if dim is not None and dim % heads != 0:
            raise ValueError(f"dim {dim} must be divisible by heads {heads}")
        return heads

    def build(self, n_leads: int, n_samples: int, n_classes: int) -> nn.Module:
        try:
            return ConvViT(
                n_leads,
                n_samples,
                n_classes,
                self.dim,
                self.depth,
                self.heads,
                self.patch,
                self.dropout,
            )
        except ValueError as e:  # records too short for one patch: the user's choice of data
            raise UserError(f"model 'conv-vit': {e}") from None


@ecgarena.hookimpl
def ecgarena_register_models(register: Callable[[type], None]) -> None:
    register(CNNModel)
    register(ResNet1d18Model)
    register(ConvViTModel)
