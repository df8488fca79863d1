"""Shared fixtures: where ../shared/data lives (tests that need it skip cleanly without it)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def shared_data() -> Path:
    from routing_core.data.shared import shared_data_dir

    d = shared_data_dir()
    if d is None:
        pytest.skip("../shared/data is not present on this machine")
    return d
