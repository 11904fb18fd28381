"""The core's own plugin: built-in datasets, registered through the same hooks as any plugin."""

from __future__ import annotations

from collections.abc import Callable

from .datasets.mitdb import MITDBDataset
from .datasets.ptbxl import PTBXLDataset
from .datasets.synthetic import SyntheticDataset
from .hookspecs import hookimpl


@hookimpl
def ecgarena_register_datasets(register: Callable[[type], None]) -> None:
    register(SyntheticDataset)
    register(PTBXLDataset)
    register(MITDBDataset)
