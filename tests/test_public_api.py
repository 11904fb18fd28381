"""The plugin contract: first-party plugins import only the public API re-exported from
`ecgarena` (plus the author kit), every public name is documented in code and in
CONTRIBUTING.md, and the kit's optional dependencies stay optional."""

from __future__ import annotations

import ast
import inspect
import re
import subprocess
import sys
import tomllib
from importlib.resources import files
from pathlib import Path

import ecgarena

ROOT = Path(__file__).resolve().parent.parent
PUBLIC = set(ecgarena.__all__)
KIT = {"ecgarena.testing"}  # the plugin author kit, for plugin tests and code alike
TESTS_ONLY = {"ecgarena.cli"}  # CLI tests drive the Typer app
# Plugin tests that deliberately test core internals (path, module): why.
INTERNAL_TESTS = {
    ("plugins/scar/tests/test_scar.py", "ecgarena.audit"): (
        "checks SCAR's intermediate updates against the audit's exact band rule (`band_check`)"
    ),
    ("plugins/dna/tests/test_cli.py", "ecgarena.ensemble"): (
        "tests the engine's DNA-paper numbers (`member0_protocol`, `wilson`) for ensembles"
    ),
}


def plugin_sources() -> list[Path]:
    """Every Python file of the first-party plugins, code and tests."""
    skip = {"build", "__pycache__"}
    return sorted(
        p
        for p in (ROOT / "plugins").rglob("*.py")
        if not skip & set(p.parts) and not any(part.endswith(".egg-info") for part in p.parts)
    )


def private_uses(path: Path, root: Path = ROOT) -> list[tuple[int, str]]:
    """(line, what) for each use of a name or module outside the plugin contract."""
    rel = path.relative_to(root).as_posix()
    allowed = KIT | (TESTS_ONLY if "tests" in path.parts else set())
    allowed |= {module for (file, module) in INTERNAL_TESTS if file == rel}
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [
                (node.lineno, f"import {a.name}")
                for a in node.names
                if a.name.startswith("ecgarena.") and a.name not in allowed
            ]
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            if node.module == "ecgarena":
                found += [
                    (node.lineno, f"from ecgarena import {a.name}")
                    for a in node.names
                    if a.name not in PUBLIC
                ]
            elif node.module.startswith("ecgarena.") and node.module not in allowed:
                found.append((node.lineno, f"from {node.module} import ..."))
        elif (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "ecgarena"
            and node.attr not in PUBLIC
            and f"ecgarena.{node.attr}" not in allowed
        ):
            found.append((node.lineno, f"ecgarena.{node.attr}"))
    return found


def test_plugins_use_only_the_public_api() -> None:
    sources = plugin_sources()
    assert len(sources) > 40, "the plugin sources were not found"
    bad = [
        f"{path.relative_to(ROOT)}:{line}: {what}"
        for path in sources
        for line, what in private_uses(path)
    ]
    assert not bad, "private ecgarena imports (use the names in ecgarena.__all__):\n" + "\n".join(
        bad
    )


def test_every_internal_test_exception_is_still_needed() -> None:
    for file, module in INTERNAL_TESTS:
        tree = ast.parse((ROOT / file).read_text())
        modules = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert module in modules, f"{file} no longer imports {module}: drop its exception"


def test_private_imports_are_reported_with_file_and_line(tmp_path: Path) -> None:
    source = tmp_path / "plugins" / "x" / "mod.py"
    source.parent.mkdir(parents=True)
    source.write_text(
        "import ecgarena\nfrom ecgarena.gradients import pgd\nimport ecgarena.training\n"
        "from ecgarena import filters, pgd\nx = ecgarena.metrics\ny = ecgarena.pgd\n"
    )
    assert private_uses(source, tmp_path) == [
        (2, "from ecgarena.gradients import ..."),
        (3, "import ecgarena.training"),
        (4, "from ecgarena import filters"),
        (5, "ecgarena.metrics"),
    ]


def test_every_public_name_resolves_and_has_a_docstring() -> None:
    assert len(PUBLIC) == len(ecgarena.__all__), "duplicates in ecgarena.__all__"
    for name in ecgarena.__all__:
        obj = getattr(ecgarena, name)
        if isinstance(obj, str | int | float):  # constants: documented in CONTRIBUTING.md
            continue
        doc = vars(obj).get("__doc__") if inspect.isclass(obj) else inspect.getdoc(obj)
        assert doc and doc.strip(), f"ecgarena.{name} has no docstring"
        assert not doc.startswith(f"{name}("), f"ecgarena.{name}: only a generated docstring"


def test_contributing_documents_every_public_name() -> None:
    text = (ROOT / "CONTRIBUTING.md").read_text()
    section = text.split("## Plugin utilities", 1)[1].split("\n## ", 1)[0]
    missing = [
        n for n in ecgarena.__all__ if not re.search(rf"`ecgarena\.{re.escape(n)}\b", section)
    ]
    assert not missing, f"CONTRIBUTING.md's Plugin utilities do not mention: {missing}"


def test_pytest_and_hypothesis_are_the_testing_extra() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = " ".join(project["dependencies"])
    assert "pytest" not in runtime and "hypothesis" not in runtime
    extras = project["optional-dependencies"]
    assert {r.split(">")[0] for r in extras["testing"]} == {"pytest", "hypothesis"}
    assert "ecgarena[testing]" in extras["test"]


def test_the_registry_is_package_data() -> None:
    shipped = files("ecgarena") / "registry.toml"
    assert shipped.read_text() == (ROOT / "registry.toml").read_text()


CHECK_IMPORTS = """
import os, sys
sys.modules["hypothesis"] = sys.modules["pytest"] = None  # as without `ecgarena[testing]`
import ecgarena, ecgarena.cli
del sys.modules["pytest"]
env = dict(os.environ)
import torch
state = torch.get_num_threads(), torch.initial_seed(), torch.random.get_rng_state()
import ecgarena.pytest_plugin
assert dict(os.environ) == env, "the pytest plugin changed the environment"
now = torch.get_num_threads(), torch.initial_seed(), torch.random.get_rng_state()
assert state[:2] == now[:2] and torch.equal(state[2], now[2]), "the pytest plugin changed torch"
try:
    import ecgarena.testing
except ModuleNotFoundError as e:
    print(e)
"""


def test_the_core_imports_without_the_kit_and_the_pytest_plugin_has_no_side_effects() -> None:
    out = subprocess.run(
        [sys.executable, "-c", CHECK_IMPORTS], capture_output=True, text=True, check=True
    )
    assert out.stdout == "ecgarena.testing needs hypothesis: pip install 'ecgarena[testing]'\n"
