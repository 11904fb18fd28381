"""CASLCNet and its ingredients for ecgarena: ℓ∞-distance nets (certified), CAS, MART, TRADES.

Models: `linf-dist-net` (a pure ℓ∞-distance net) and `caslcnet` (1-D ResNet with CAS blocks and
an ℓ∞-distance head). Defenses: `mart`, `trades`, `cas`, `linf-dist` (certified) and `caslcnet`
(MART on the main and every CAS head, Eq. 8, + Eq. 9's clean MSE where enabled, on the caslcnet
model; it certifies nothing). See METHODS.md §6–7 and its corrections.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import ecgarena
from ecgarena import Options, UserError
from pydantic import Field
from torch import nn

from .cas import CASLCNet
from .defenses import CAS, DEFENSES, MART, TRADES, CASLCNetDefense, LinfDist
from .linf_dist import LinfDistNet

__all__ = [
    "CAS",
    "MART",
    "TRADES",
    "CASLCNet",
    "CASLCNetDefense",
    "CASLCNetModel",
    "LinfDist",
    "LinfDistNet",
    "LinfDistNetModel",
]


class LinfDistNetModel(Options):
    """ℓ∞-distance net: strided conv-distance layers, then two dense distance layers."""

    name: ClassVar[str] = "linf-dist-net"
    width: int = Field(32, ge=2, le=512, description="channels of the conv-distance layers")
    hidden: int = Field(256, ge=2, le=4096, description="units of the dense distance layer")

    def build(self, n_leads: int, n_samples: int, n_classes: int) -> nn.Module:
        try:
            return LinfDistNet(n_leads, n_samples, n_classes, self.width, self.hidden)
        except ValueError as e:
            raise UserError(f"model {self.name!r}: {e}") from None


class CASLCNetModel(Options):
    """1-D ResNet whose last stage has two CAS blocks, with an ℓ∞-distance head."""

    name: ClassVar[str] = "caslcnet"
    width: int = Field(16, ge=2, le=256, description="channels of the first stage (×2, ×4)")
    kernel: int = Field(7, ge=3, le=31, description="convolution width (samples)")

    def build(self, n_leads: int, n_samples: int, n_classes: int) -> nn.Module:
        return CASLCNet(n_leads, n_classes, self.width, self.kernel)


@ecgarena.hookimpl
def ecgarena_register_models(register: Callable[[type], None]) -> None:
    register(LinfDistNetModel)
    register(CASLCNetModel)


@ecgarena.hookimpl
def ecgarena_register_defenses(register: Callable[[type], None]) -> None:
    for defense in DEFENSES:
        register(defense)
