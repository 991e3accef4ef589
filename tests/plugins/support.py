"""Helpers for plugin tests: plugin files and zips written on the fly, a webhook sink."""

from __future__ import annotations

import base64
import hashlib
import io
import stat
import textwrap
import threading
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_PLUGINS = REPO_ROOT / "plugins"


def plugin_files(
    name: str = "demo", version: str = "1.0.0", source: str = "class Plugin:\n    pass\n", **manifest: Any
) -> dict[str, str | bytes]:
    """The files of a minimal plugin bundle."""
    return {
        "plugin-manifest.yaml": yaml.safe_dump({"name": name, "version": version, **manifest}),
        "plugin.py": textwrap.dedent(source),
    }


def make_zip(files: dict[str, str | bytes], links: dict[str, str] | None = None) -> bytes:
    """A zip of `files`; `links` adds symbolic-link entries (name -> target)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content)
        for name, target in (links or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, target)
    return buffer.getvalue()


def write_plugin(directory: Path, files: dict[str, str | bytes]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)
    return directory


@dataclass
class WebhookSink:
    url: str
    events: list[dict[str, Any]] = field(default_factory=list)
    arrived: threading.Condition = field(default_factory=threading.Condition)

    def wait_for(self, event: str, timeout: float = 20) -> dict[str, Any]:
        with self.arrived:
            found = self.arrived.wait_for(lambda: any(e.get("event") == event for e in self.events), timeout=timeout)
            assert found, f"no {event!r} event within {timeout}s; got {self.events}"
            return next(e for e in self.events if e.get("event") == event)


def tiny_wheel() -> bytes:
    """A real, minimal wheel (no build backend or network needed to install it)."""
    files = {
        "tinydep/__init__.py": b"VALUE = 42\n",
        "tinydep-0.1.dist-info/METADATA": b"Metadata-Version: 2.1\nName: tinydep\nVersion: 0.1\n",
        "tinydep-0.1.dist-info/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    record = []
    for name, content in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(content).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(content)}")
    record.append("tinydep-0.1.dist-info/RECORD,,")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content)
        archive.writestr("tinydep-0.1.dist-info/RECORD", "\n".join(record) + "\n")
    return buffer.getvalue()
