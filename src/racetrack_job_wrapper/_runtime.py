"""The runtime this package delegates to: the job's private copy, or the installed Trackside's."""

from __future__ import annotations

import importlib
from types import ModuleType


def _load(name: str) -> ModuleType:
    try:  # inside a deployed job: the runtime copied next to this package
        return importlib.import_module(f"trackside_runtime.{name}")
    except ImportError:  # Trackside installed (tests, local development)
        return importlib.import_module(f"trackside.runtime.{name}")


client = _load("client")
current_request = _load("current_request")
