"""pytest plugin shipped with the core (entry point `pytest11`): fixtures for plugin authors."""

from __future__ import annotations

import os

import pytest
import torch

from .testing import tiny_classifier


@pytest.fixture
def ecgarena_classifier():
    """A tiny seeded 2-lead, 3-class classifier in eval mode, for attack conformance tests."""
    return tiny_classifier()


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist each worker gets one torch thread: workers × threads beyond the
    cores oversubscribe the CPU and slow small-model tests many-fold."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        torch.set_num_threads(1)
