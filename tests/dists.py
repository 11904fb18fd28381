"""A real installed plugin distribution for tests: modules and a dist-info folder on a path."""

from __future__ import annotations

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
