"""Every hookspec has a test (as datasette's test_plugins.py checks): a test function somewhere
under tests/ named `test_hook_<hook name>...`, so adding a hook without a test fails CI."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from ecgarena import hookspecs
from ecgarena.host import HOOKS

TESTS = Path(__file__).resolve().parent


def defined_tests() -> set[str]:
    """The names of every test function under tests/, but this module's."""
    names = set()
    for path in TESTS.rglob("test_*.py"):
        if path.name != Path(__file__).name:
            tree = ast.parse(path.read_text(encoding="utf-8"))
            names |= {
                n.name
                for n in ast.walk(tree)
                if isinstance(n, ast.FunctionDef) and n.name.startswith("test_")
            }
    return names


def test_hooks_are_the_hookspecs_module_s_hooks():
    declared = {n for n in dir(hookspecs) if hasattr(getattr(hookspecs, n), "ecgarena_spec")}
    assert (
        set(HOOKS) == declared
        and {
            "ecgarena_register_datasets",
            "ecgarena_register_models",
            "ecgarena_register_attacks",
            "ecgarena_register_defenses",
            "ecgarena_result",
        }
        <= declared
    )


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_has_a_test(hook):
    name = f"test_hook_{hook}"
    tests = [t for t in defined_tests() if t == name or t.startswith(f"{name}_")]
    assert tests, f"hook {hook} has no test: add a {name}... test function under tests/"


def test_a_hook_without_a_test_fails_the_check():
    with pytest.raises(AssertionError, match="hook ecgarena_untested has no test"):
        test_every_hook_has_a_test("ecgarena_untested")
