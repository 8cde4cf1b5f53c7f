"""Shared fixtures. Also makes an empty collection an error: a suite that runs no test
must fail loudly, never pass as pytest's exit code 5."""

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

os.environ.setdefault("OMP_NUM_THREADS", "1")


def pytest_collection_finish(session):
    if not session.items and not session.config.option.collectonly:
        raise pytest.UsageError("no tests were collected: the suite must never run empty")


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


# ----------------------------------------------- generator pipeline (test_cli, test_drift, ...)


@pytest.fixture(scope="session")
def small_generation(tmp_path_factory) -> Path:
    """``d2timm-gen generate convnext_atto resnet18 --package pkg_small --jobs 1`` run once
    per session (PYTHONHASHSEED=0), shared by the xdist workers. Read-only: copy it first
    (``small_copy``) to change anything."""
    from tests.helpers import generate_small, shared_dir

    return shared_dir(tmp_path_factory, "small-generation", generate_small)


@pytest.fixture
def small_copy(small_generation, tmp_path) -> Path:
    """A private copy of ``small_generation`` to edit, regenerate or check."""
    from tests.helpers import copy_tree

    return copy_tree(small_generation, tmp_path / "out")
