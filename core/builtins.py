"""The core's own plugin: built-in datasets, registered through the same hooks as any plugin."""

from __future__ import annotations

from collections.abc import Callable

from .datasets.cinc2017 import CinC2017Dataset
from .datasets.cinc2021 import CinC2021Dataset
from .datasets.cpsc2018 import CPSC2018Dataset
from .datasets.mitdb import MITDBDataset
from .datasets.mitdb_beats import MITDBBeatsDataset
from .datasets.ptbxl import PTBXLDataset
from .datasets.synthetic import SyntheticDataset
from .hookspecs import hookimpl


@hookimpl
def ecgarena_register_datasets(register: Callable[[type], None]) -> None:
    register(SyntheticDataset)
    register(PTBXLDataset)
    register(MITDBDataset)
    register(CinC2017Dataset)
    register(CPSC2018Dataset)
    register(MITDBBeatsDataset)
    register(CinC2021Dataset)
