"""Waiting for a condition in tests: poll it until it holds, with a generous deadline, never a fixed sleep."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def wait_until(
    condition: Callable[[], Any], timeout: float = 60.0, what: str = "condition", interval: float = 0.05
) -> Any:
    """The first truthy value `condition()` returns; AssertionError naming `what` once `timeout` passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout} s")
        time.sleep(interval)
