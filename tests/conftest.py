"""Shared fixtures: a fixed plugin set, a throw-away home folder, and the real data folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Tests run with the first-party plugins only, whatever else is installed.
os.environ["ECGARENA_PLUGINS"] = (
    "basic-models,basic-attacks,basic-defenses,sap,scar,universal-deepfool,randomized-smoothing,"
    "adversarial-distillation,cpr,caslcnet,dna,autoattack"
)
os.environ.pop("ECGARENA_DISABLE_PLUGINS", None)

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("ECGARENA_TEST_DATA", ROOT.parent / "shared" / "data"))


def real_data(name: str) -> Path:
    """The real-data folder `name` under ../shared/data, or skip the test saying why."""
    path = SHARED_DATA / name
    if not path.is_dir():
        pytest.skip(
            f"real data {path} is absent (set ECGARENA_TEST_DATA to the shared data folder)"
        )
    return path


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """A fresh ECGARENA_HOME for each test."""
    path = tmp_path / "home"
    monkeypatch.setenv("ECGARENA_HOME", str(path))
    return path


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory) -> Path:
    """One dataset/weights home shared by the slower tests of a session."""
    return tmp_path_factory.mktemp("shared-home")
