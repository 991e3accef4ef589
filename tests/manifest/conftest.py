"""Fixtures for manifest tests: a minimal valid manifest and a helper writing YAML files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def minimal() -> dict[str, Any]:
    return {
        "name": "adder",
        "owner_email": "owner@example.com",
        "jobtype": "python3:latest",
        "jobtype_extra": {"entrypoint_path": "adder.py"},
    }


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, str], Path]:
    def _write(relative: str, text: str) -> Path:
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    return _write
