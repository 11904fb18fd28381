"""pytest plugin shipped with the core (entry point `pytest11`): fixtures and an ini option for
plugin authors. Importing it changes nothing: it acts only where a test or an ini file asks."""

from __future__ import annotations

from typing import TYPE_CHECKING

try:
    import pytest
except ModuleNotFoundError as e:  # the kit's dependencies are the `testing` extra
    raise ModuleNotFoundError(
        f"ecgarena.pytest_plugin needs {e.name}: pip install 'ecgarena[testing]'", name=e.name
    ) from None

if TYPE_CHECKING:
    from .protocols import Classifier

THREADS_INI = "ecgarena_xdist_torch_threads"


def pytest_addoption(parser: pytest.Parser) -> None:
    """Declare the ini option (it does nothing until an ini file sets it)."""
    parser.addini(
        THREADS_INI,
        "torch threads in each pytest-xdist worker (workers × threads beyond the cores "
        "oversubscribe the CPU and slow small-model tests many-fold); unset: torch's default",
        default="",
    )


def pytest_configure(config: pytest.Config) -> None:
    """Apply `ecgarena_xdist_torch_threads` in xdist workers, only when the ini file sets it."""
    threads = config.getini(THREADS_INI)
    if threads and hasattr(config, "workerinput"):
        import torch

        torch.set_num_threads(int(threads))


@pytest.fixture
def ecgarena_classifier() -> Classifier:
    """A tiny seeded 2-lead, 3-class classifier in eval mode, for attack conformance tests."""
    from .testing import tiny_classifier

    return tiny_classifier()
