"""`ecgarena new plugin NAME --kind K`: a ready plugin package from the templates shipped with
the core (`core/templates`): pyproject with the entry point, a working module, a README and
tests that use the plugin kit. It installs, appears in `ecgarena plugins` and joins a run."""

from __future__ import annotations

import re
from importlib.resources import files
from pathlib import Path
from string import Template

from .errors import UserError

KINDS = ("attack", "defense", "model", "dataset")
NAME = re.compile(r"[a-z][a-z0-9]*(-[a-z0-9]+)*")
SUMMARY = {
    "attack": "An iterative signed-gradient ℓ∞ attack",
    "defense": "A Gaussian-smoothing preprocessing defense",
    "model": "A small 1-D CNN",
    "dataset": "A folder of WFDB records labelled by a CSV",
}
TRY_IT = {
    "attack": "ecgarena run --attack $name --eps 50uV",
    "defense": "ecgarena run --attack pgd --defense $name",
    "model": "ecgarena run --attack pgd --model $name",
    "dataset": "ecgarena data info $name --data-dir FOLDER",
}


def _values(name: str, kind: str) -> dict[str, str]:
    """The placeholders of the templates for plugin `name`."""
    from . import __version__

    module = f"ecgarena_{name.replace('-', '_')}"
    words = "".join(part.capitalize() for part in name.split("-"))
    return {
        "name": name,
        "kind": kind,
        "kinds": f"{kind}s",
        "dist": f"ecgarena-{name}",
        "module": module,
        "cls": f"{words}{kind.capitalize()}",
        "summary": SUMMARY[kind],
        "core_version": __version__,
        "try_it": Template(TRY_IT[kind]).substitute(name=name),
    }


def new_plugin(name: str, kind: str, dest: Path) -> Path:
    """Write the package `dest/ecgarena-NAME` for a plugin of `kind`; never over a folder that
    exists. Returns the package folder."""
    if kind not in KINDS:
        raise UserError(f"unknown plugin kind {kind!r} (valid: {', '.join(KINDS)})")
    if not NAME.fullmatch(name) or len(name) > 40:
        raise UserError(
            f"plugin name {name!r} must be lower-case letters and digits with single hyphens, "
            "starting with a letter, at most 40 characters (e.g. my-attack)"
        )
    values = _values(name, kind)
    root = Path(dest) / values["dist"]
    if root.exists():
        raise UserError(f"{root} exists already: choose another --dest or name (nothing written)")
    templates = files("ecgarena") / "templates"
    outputs = {
        "pyproject.toml": templates / "pyproject.toml.tmpl",
        "README.md": templates / "README.md.tmpl",
        f"{values['module']}/__init__.py": templates / kind / "module.py.tmpl",
        f"tests/test_{values['module'].removeprefix('ecgarena_')}.py": templates
        / kind
        / "test.py.tmpl",
    }
    for relative, template in outputs.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(Template(template.read_text(encoding="utf-8")).substitute(values))
    return root
