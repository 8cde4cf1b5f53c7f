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
