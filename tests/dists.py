"""A real installed plugin distribution for tests: modules and a dist-info folder on a path,
made visible to this process and its children."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def install(root: Path, dist: str, entry_points: dict[str, str], modules: dict[str, str]) -> None:
    """A real installed distribution `dist` under `root` (on sys.path): its modules, and a
    dist-info with METADATA and the `ecgarena` entry points."""
    for module, text in modules.items():
        (root / f"{module}.py").write_text(text)
    info = root / f"{dist.replace('-', '_')}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    lines = "".join(f"{name} = {value}\n" for name, value in entry_points.items())
    (info / "entry_points.txt").write_text(f"[ecgarena]\n{lines}")


@contextmanager
def visible(root: Path, plugins: str, modules: tuple[str, ...]) -> Iterator[Path]:
    """Put `root` on this process's path and child processes' PYTHONPATH, with plugin
    selection `plugins`, and a fresh host; everything is restored (and `modules` forgotten)
    afterwards."""
    from ecgarena.host import get_host

    saved = {k: os.environ.get(k) for k in ("PYTHONPATH", "ECGARENA_PLUGINS")}
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), saved["PYTHONPATH"]]))
    os.environ["ECGARENA_PLUGINS"] = plugins
    sys.path.insert(0, str(root))
    get_host.cache_clear()
    try:
        yield root
    finally:
        sys.path.remove(str(root))
        for k, v in saved.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
        for module in modules:
            sys.modules.pop(module, None)
        get_host.cache_clear()
