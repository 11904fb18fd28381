"""pytest plugin shipped with the core (entry point `pytest11`): fixtures for plugin authors."""

from __future__ import annotations

import pytest

from .testing import tiny_classifier


@pytest.fixture
def ecgarena_classifier():
    """A tiny seeded 2-lead, 3-class classifier in eval mode, for attack conformance tests."""
    return tiny_classifier()
