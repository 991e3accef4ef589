"""The "racetrack-compat" layer: the packages Racetrack's job wrapper brings, seen by a job's venv.

Racetrack installs its wrapper (fastapi, pydantic, python-multipart, httpx, Jinja2, PyYAML,
prometheus-client, a2wsgi) into every python3 job's image, so jobs import them without listing them
(the docs-formatter sample's FastAPI forms need python-multipart). Trackside's runtime needs none of
them, so they are not installed into job venvs; instead they are installed once per interpreter into
a shared, content-addressed site directory (`CACHE/racetrack-compat/KEY`, made with
`uv pip install --target`), and a venv that wants them gets a `racetrack_compat.pth` file naming that
directory. Python appends it to `sys.path` after the venv's own site-packages, so the job's own
pins always win and the runtime's perform path is untouched. The layer key is part of the venv key,
so a cached deploy reuses its venv as before.

Whether a job gets the layer (docs/racetrack-compat.md): `jobtype_extra.racetrack_compat` when set;
otherwise yes when the manifest names a Racetrack python3 job type version (`python3:2.*`: the
versions of Racetrack's plugin), or when the job's own code imports one of the wrapper's packages.
A layer that can't be built fails the build only when the manifest asked for it; otherwise the build
log says so and the job is built without it.

For images the same packages are made into wheels on the build host (image.py) and installed into
`/opt/racetrack-compat` in the image, with the same `.pth` file.
"""

from __future__ import annotations

import ast
import hashlib
import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from trackside.build.jobtypes.python3.options import PythonOptions
from trackside.build.jobtypes.python3.venvs import INSTALL_TIMEOUT_S, Interpreter, VenvCache, run_streaming, uv_bin
from trackside.errors import BuildFailed

LAYER_SCHEMA = "racetrack-compat-1"
PTH_NAME = "racetrack_compat.pth"
IMAGE_DIR = "/opt/racetrack-compat"

# The wrapper's own dependencies (racetrack-job-runner 1.16.5 lists them unpinned), pinned so a
# layer's key says what is in it.
REQUIREMENTS: tuple[str, ...] = (
    "fastapi==0.165.0",
    "pydantic==2.14.4",
    "python-multipart==0.0.34",
    "httpx==0.28.1",
    "Jinja2==3.1.6",
    "PyYAML==6.0.4",
    "prometheus-client==0.26.0",
    "a2wsgi==1.10.10",
)

# Import names whose use in a job's code switches the layer on when the manifest doesn't say.
MODULES = frozenset(
    {
        "fastapi",
        "starlette",
        "pydantic",
        "multipart",
        "python_multipart",
        "httpx",
        "jinja2",
        "yaml",
        "prometheus_client",
        "a2wsgi",
    }
)
_MENTIONS = re.compile(rb"\b(" + b"|".join(m.encode() for m in sorted(MODULES)) + rb")\b")
_SKIP_DIRS = {".git", "__pycache__", ".venv", "venv", "node_modules", "site-packages", ".tox"}
MAX_SCANNED_FILES = 2000
MAX_SCANNED_BYTES = 1024 * 1024

Log = Callable[[str], None]


def racetrack_jobtype_version(version: str) -> bool:
    """`2.4.0`, `2.*`: a version of Racetrack's python3 job type plugin (Trackside's own are 1.x)."""
    major = version.split(".", 1)[0]
    return major.isdigit() and int(major) >= 2


def wanted(manifest: Any, options: PythonOptions, workspace: Path) -> tuple[bool, bool, str]:
    """(layer on?, asked for explicitly?, why) for a job."""
    if options.racetrack_compat is not None:
        state = "on" if options.racetrack_compat else "off"
        return options.racetrack_compat, options.racetrack_compat, f"{state} (jobtype_extra.racetrack_compat)"
    version = str(getattr(manifest, "jobtype_version", "") or "")
    if racetrack_jobtype_version(version):
        return True, False, f"on (jobtype names Racetrack's python3:{version})"
    found = imported_wrapper_modules(workspace)
    if found:
        return True, False, f"on (the job imports {', '.join(sorted(found))})"
    return False, False, "off (set jobtype_extra.racetrack_compat: true to have it)"


def imported_wrapper_modules(workspace: Path) -> set[str]:
    """Which of MODULES the job's own Python files import (module level or not)."""
    found: set[str] = set()
    scanned = 0
    for dirpath, dirnames, filenames in os.walk(workspace):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS)
        for name in sorted(filenames):
            if not name.endswith(".py"):
                continue
            scanned += 1
            if scanned > MAX_SCANNED_FILES:
                return found
            path = Path(dirpath) / name
            try:
                if path.stat().st_size > MAX_SCANNED_BYTES:
                    continue
                data = path.read_bytes()
            except OSError:
                continue
            if not _MENTIONS.search(data):
                continue
            found |= _imports(data) & MODULES
    return found


def _imports(source: bytes) -> set[str]:
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return set()
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def requirements_text() -> str:
    return "".join(f"{line}\n" for line in REQUIREMENTS)


def layer_key(interpreter: Interpreter) -> str:
    digest = hashlib.sha256()
    for part in (LAYER_SCHEMA, interpreter.path, interpreter.version, requirements_text()):
        digest.update(part.encode())
        digest.update(b"\0")
    return digest.hexdigest()[:24]


def ensure_layer(cache_dir: Path, interpreter: Interpreter, env: dict[str, str], log: Log) -> Path:
    """The site directory of the layer for `interpreter`, built once (and by one build at a time)."""
    key = layer_key(interpreter)

    def build(target: Path) -> None:
        target.mkdir(parents=True)
        (target / "requirements.txt").write_text(requirements_text())
        started = time.monotonic()
        rc, tail = run_streaming(
            [
                uv_bin(), "pip", "install",
                "--python", interpreter.path,
                "--target", str(target / "site"),
                "--compile-bytecode",
                "-r", str(target / "requirements.txt"),
            ],
            target,
            env,
            lambda line: None,
            timeout=INSTALL_TIMEOUT_S,
        )  # fmt: skip
        if rc != 0:
            lines = [line for line in tail if line.strip()][-8:]
            raise BuildFailed("the racetrack-compat layer failed to install:\n" + "\n".join(lines))
        log(f"racetrack-compat layer installed in {time.monotonic() - started:.2f} s")

    def tell(line: str) -> None:
        log("racetrack-compat: " + line.replace("virtualenv", "layer"))

    return VenvCache(cache_dir / "racetrack-compat").ensure(key, build, tell) / "site"


def link_layer(venv: Path, site: Path) -> None:
    """Make the venv see the layer: a .pth line is appended to sys.path after its site-packages."""
    for packages in sorted((venv / "lib").glob("python*/site-packages")):
        (packages / PTH_NAME).write_text(f"{site}\n")
