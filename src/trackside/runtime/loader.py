"""Import the user's entrypoint module (as `racetrack_job`) and construct its job class."""

from __future__ import annotations

import importlib.util
import inspect
import os
import sys
import traceback
from typing import Any


class EntrypointError(Exception):
    """The entrypoint can't be used as it is (missing file, no class or several classes)."""


def load_job(entrypoint_path: str, entrypoint_class: str | None = None) -> Any:
    """Import the module and return an instance of the job class, as Racetrack's wrapper does."""
    cwd = os.getcwd()
    for extra in (cwd, os.environ.get("VENV_PACKAGES_PATH", "")):
        if extra and extra not in sys.path:
            sys.path.insert(0, extra)
    path = os.path.abspath(entrypoint_path)
    if not os.path.isfile(path):
        raise EntrypointError(f"entrypoint file {entrypoint_path!r} not found (looked in {cwd})")
    spec = importlib.util.spec_from_file_location("racetrack_job", path)
    if spec is None or spec.loader is None:
        raise EntrypointError(f"entrypoint {entrypoint_path!r} is not an importable Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules["racetrack_job"] = module
    spec.loader.exec_module(module)
    cls = _pick_class(module, entrypoint_path, entrypoint_class)
    return cls()


def _pick_class(module: Any, entrypoint_path: str, name: str | None) -> type:
    defined = [obj for obj in vars(module).values() if inspect.isclass(obj) and obj.__module__ == module.__name__]
    if name:
        cls = getattr(module, name, None)
        if not inspect.isclass(cls):
            names = ", ".join(c.__name__ for c in defined) or "none"
            raise EntrypointError(
                f"entrypoint class {name!r} not found in {entrypoint_path} (classes defined there: {names})"
            )
        return cls
    if len(defined) == 1:
        return defined[0]
    if not defined:
        raise EntrypointError(f"no class defined in {entrypoint_path}; define the job class there")
    names = ", ".join(c.__name__ for c in defined)
    raise EntrypointError(
        f"several classes defined in {entrypoint_path} ({names}); "
        "name the job class with entrypoint_class in job.yaml (--entrypoint-class)"
    )


def describe_error(exc: BaseException) -> str:
    """`Type: message (file:line in func)`: one line for `/live`; the full traceback goes to stderr."""
    text = f"{type(exc).__name__}: {exc}"
    frames = traceback.extract_tb(exc.__traceback__)
    user = [f for f in frames if "trackside" not in f.filename and "importlib" not in f.filename]
    frame = (user or frames)[-1] if frames else None
    if frame is not None and not isinstance(exc, EntrypointError):
        text += f" ({os.path.basename(frame.filename)}:{frame.lineno} in {frame.name})"
    return text
