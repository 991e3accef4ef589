"""Installed plugin bundles under `plugins_dir`: install, uninstall, list, download, per-plugin config.

Layout (Racetrack's, plus a deps directory and an index):

    {plugins_dir}/{name}-{version}.zip          the bundle as uploaded
    {plugins_dir}/extracted/{stem}/             its files
    {plugins_dir}/deps/{stem}/                  its requirements, installed with uv --target
    {plugins_dir}/config/{stem}/config.yaml     its config, `plugin.config_path`
    {plugins_dir}/installed.json                what is installed, in installation order
    {plugins_dir}/last-change.txt               rewritten after every change; components watch it

An install is checked completely in a staging directory first (safe paths, no links, a valid
manifest, requirements that install, a `plugin.py` that imports in a separate process) and only
then moved into place; `installed.json` is written last and is the commit point, so a failed or
interrupted install leaves nothing that is loaded.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import json
import os
import shutil
import stat
import subprocess
import sys
import threading
import time
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from trackside.build.confined import TreeWriter, read_chunks, staged_directory
from trackside.errors import AlreadyExists, InvalidInput, NotFound
from trackside.plugins.loader import PLUGIN_FILE
from trackside.plugins.manifest import MANIFEST_FILE, PluginManifest, load_plugin_manifest, parse_plugin_manifest
from trackside.safe_yaml import load_yaml

INDEX_FILE = "installed.json"
LAST_CHANGE_FILE = "last-change.txt"
REQUIREMENTS_FILE = "requirements.txt"
MAX_ENTRIES = 10_000
MAX_UNPACKED_BYTES = 512 * 1024 * 1024
IMPORT_CHECK_TIMEOUT = 120.0
REQUIREMENTS_TIMEOUT = 900.0


@dataclass
class InstalledPlugin:
    manifest: PluginManifest
    install_id: str  # changes when the same name and version is installed again
    order: int  # position in installation order
    extracted_dir: Path
    deps_dir: Path | None
    config_path: Path
    zip_path: Path


class PluginStore:
    def __init__(self, plugins_dir: Path) -> None:
        self.root = Path(plugins_dir)
        self._lock = threading.RLock()

    # -- paths -------------------------------------------------------------------------------------

    @property
    def last_change_path(self) -> Path:
        return self.root / LAST_CHANGE_FILE

    def zip_path(self, stem: str) -> Path:
        return self.root / f"{stem}.zip"

    def extracted_dir(self, stem: str) -> Path:
        return self.root / "extracted" / stem

    def deps_dir(self, stem: str) -> Path:
        return self.root / "deps" / stem

    def config_path(self, stem: str) -> Path:
        return self.root / "config" / stem / "config.yaml"

    # -- reading -----------------------------------------------------------------------------------

    def _read_index(self) -> list[dict[str, Any]]:
        path = self.root / INDEX_FILE
        if not path.is_file():
            return []
        try:
            entries = json.loads(path.read_text())
        except (OSError, ValueError):
            return []
        return entries if isinstance(entries, list) else []

    def _write_index(self, entries: list[dict[str, Any]]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f".{INDEX_FILE}.{uuid.uuid4().hex}"
        tmp.write_text(json.dumps(entries, indent=2))
        tmp.replace(self.root / INDEX_FILE)

    def list(self) -> list[InstalledPlugin]:
        """Installed plugins in installation order."""
        found = []
        for order, entry in enumerate(self._read_index()):
            try:
                manifest = parse_plugin_manifest(entry["manifest"], source=f"{INDEX_FILE} entry {order}")
            except (KeyError, InvalidInput):
                continue
            stem = manifest.stem
            deps = self.deps_dir(stem)
            found.append(
                InstalledPlugin(
                    manifest=manifest,
                    install_id=str(entry.get("install_id", "")),
                    order=order,
                    extracted_dir=self.extracted_dir(stem),
                    deps_dir=deps if deps.is_dir() else None,
                    config_path=self.config_path(stem),
                    zip_path=self.zip_path(stem),
                )
            )
        return found

    def get(self, name: str, version: str) -> InstalledPlugin:
        for plugin in self.list():
            if plugin.manifest.name == name and plugin.manifest.version == version:
                return plugin
        raise NotFound(f"plugin {name} version {version} is not installed")

    def read_bundle(self, name: str, version: str) -> Path:
        path = self.get(name, version).zip_path
        if not path.is_file():
            raise NotFound(f"the bundle of plugin {name} version {version} is missing from {self.root}")
        return path

    # -- config ------------------------------------------------------------------------------------

    def read_config(self, name: str, version: str) -> str:
        path = self.get(name, version).config_path
        return path.read_text() if path.is_file() else ""

    def write_config(self, name: str, version: str, config_data: str) -> None:
        plugin = self.get(name, version)
        load_yaml(config_data, f"config of plugin {name} {version}", invalid="not valid YAML")
        with self._locked():
            plugin.config_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = plugin.config_path.with_name(f".config.{uuid.uuid4().hex}")
            tmp.write_text(config_data)
            tmp.replace(plugin.config_path)
            self.touch_last_change()

    # -- changes -----------------------------------------------------------------------------------

    def touch_last_change(self) -> None:
        """Every component reloads its plugins when this file changes (see `reload.PluginWatcher`)."""
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f".{LAST_CHANGE_FILE}.{uuid.uuid4().hex}"
        tmp.write_text(f"{time.time_ns()} {uuid.uuid4().hex}\n")
        tmp.replace(self.last_change_path)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Serialises changes between threads and between processes sharing the directory."""
        self.root.mkdir(parents=True, exist_ok=True)
        with self._lock, open(self.root / ".lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def install(self, data: bytes, filename: str | None = None, replace: bool = False) -> PluginManifest:
        """Check and install a bundle; nothing is installed unless every check passes."""
        label = filename or "the uploaded bundle"
        self.root.mkdir(parents=True, exist_ok=True)
        staging = self.root / ".staging" / uuid.uuid4().hex
        try:
            staging.mkdir(parents=True)
            extracted = staging / "extracted"
            manifest = unpack_bundle(data, extracted, label)
            config_text = _default_config(extracted)
            deps = staging / "deps"
            if (extracted / REQUIREMENTS_FILE).is_file():
                install_requirements(extracted / REQUIREMENTS_FILE, deps, manifest.stem)
            check_import(extracted, deps if deps.is_dir() else None, manifest.stem)
            with self._locked():
                self._commit(manifest, data, staging, config_text, replace)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return manifest

    def _commit(
        self, manifest: PluginManifest, data: bytes, staging: Path, config_text: str | None, replace: bool
    ) -> None:
        entries = self._read_index()
        same_name = [e for e in entries if e.get("manifest", {}).get("name") == manifest.name]
        others = [e for e in same_name if str(e["manifest"].get("version")) != manifest.version]
        if manifest.category == "infrastructure" and others and not replace:
            versions = ", ".join(str(e["manifest"].get("version")) for e in others)
            raise AlreadyExists(
                f"infrastructure plugin {manifest.name} is already installed (version {versions});"
                " install with replace to swap it"
            )
        removed = same_name if replace else [e for e in same_name if e not in others]
        stem = manifest.stem
        # Take the old files out of the way first, then move the staged ones in.
        for entry in removed:
            self._remove_files(parse_plugin_manifest(entry["manifest"]).stem, keep_config=True)
        self._remove_files(stem, keep_config=True)
        self.extracted_dir(stem).parent.mkdir(parents=True, exist_ok=True)
        os.replace(staging / "extracted", self.extracted_dir(stem))
        if (staging / "deps").is_dir():
            self.deps_dir(stem).parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging / "deps", self.deps_dir(stem))
        tmp_zip = staging / "bundle.zip"
        tmp_zip.write_bytes(data)
        os.replace(tmp_zip, self.zip_path(stem))
        config = self.config_path(stem)
        if config_text is not None and not config.exists():
            config.parent.mkdir(parents=True, exist_ok=True)
            config.write_text(config_text)
        kept = [e for e in entries if e not in removed]
        kept.append({"manifest": manifest.to_api(), "install_id": uuid.uuid4().hex, "installed_at": time.time()})
        self._write_index(kept)
        self.touch_last_change()

    def uninstall(self, name: str, version: str) -> None:
        with self._locked():
            entries = self._read_index()
            matching = [
                e
                for e in entries
                if e.get("manifest", {}).get("name") == name and str(e["manifest"].get("version")) == version
            ]
            if not matching:
                raise NotFound(f"plugin {name} version {version} is not installed")
            self._write_index([e for e in entries if e not in matching])
            self._remove_files(f"{name}-{version}", keep_config=True)
            self.touch_last_change()

    def uninstall_all(self) -> None:
        with self._locked():
            entries = self._read_index()
            self._write_index([])
            for entry in entries:
                with contextlib.suppress(KeyError, InvalidInput):
                    self._remove_files(parse_plugin_manifest(entry["manifest"]).stem, keep_config=True)
            self.touch_last_change()

    def _remove_files(self, stem: str, keep_config: bool) -> None:
        """Remove a version's files; a running component may still hold its code in memory, never on disk."""
        self.zip_path(stem).unlink(missing_ok=True)
        for path in (self.extracted_dir(stem), self.deps_dir(stem)):
            if path.exists():
                trash = self.root / ".staging" / f"trash-{uuid.uuid4().hex}"
                trash.parent.mkdir(parents=True, exist_ok=True)
                os.replace(path, trash)  # atomic removal from view, then the slow delete
                shutil.rmtree(trash, ignore_errors=True)
        if not keep_config:
            shutil.rmtree(self.config_path(stem).parent, ignore_errors=True)


# -- checks ----------------------------------------------------------------------------------------


def _entry_parts(name: str, label: str) -> tuple[str, ...]:
    """The safe relative path of a zip entry, or InvalidInput naming the entry."""
    normalized = name.replace("\\", "/")
    if normalized.startswith("/") or (len(normalized) > 1 and normalized[1] == ":"):
        raise InvalidInput(f"{label}: entry {name!r} has an absolute path; bundle paths must be relative")
    parts = tuple(p for p in PurePosixPath(normalized).parts if p not in ("", "."))
    if ".." in parts:
        raise InvalidInput(f"{label}: entry {name!r} escapes the plugin directory ('..' in its path)")
    return parts


def unpack_bundle(data: bytes, dest: Path, label: str = "bundle") -> PluginManifest:
    """Check every entry of the zip, extract it into `dest` and return its manifest.

    `dest` must not exist yet. Links are refused outright (a bundle has no use for them), and files are
    written by `TreeWriter`, which follows no link and overwrites nothing, beside `dest` and moved into
    place whole: a refused bundle leaves nothing behind.
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise InvalidInput(f"{label}: not a valid zip archive ({exc})") from None
    with archive:
        infos = archive.infolist()
        if len(infos) > MAX_ENTRIES:
            raise InvalidInput(f"{label}: {len(infos)} entries, more than the {MAX_ENTRIES} allowed")
        total = 0
        files: list[tuple[zipfile.ZipInfo, tuple[str, ...]]] = []
        for info in infos:
            parts = _entry_parts(info.filename, label)
            mode = info.external_attr >> 16
            kind = stat.S_IFMT(mode)
            if kind == stat.S_IFLNK:
                raise InvalidInput(f"{label}: entry {info.filename!r} is a symbolic link; bundles can't hold links")
            if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
                raise InvalidInput(f"{label}: entry {info.filename!r} is not a regular file or directory")
            total += info.file_size
            if total > MAX_UNPACKED_BYTES:
                raise InvalidInput(f"{label}: unpacks to more than {MAX_UNPACKED_BYTES // 2**20} MiB")
            if parts and not info.is_dir():
                files.append((info, parts))
        names = {"/".join(parts) for _, parts in files}
        for required in (MANIFEST_FILE, PLUGIN_FILE):
            if required not in names:
                nested = sorted(n for n in names if n.endswith("/" + required))
                hint = f" (found {nested[0]}: put the plugin's files at the root of the zip)" if nested else ""
                raise InvalidInput(f"{label}: {required} is missing{hint}")
        manifest = load_plugin_manifest(archive.read(MANIFEST_FILE), source=f"{label}: {MANIFEST_FILE}")
        seen: set[str] = set()
        with staged_directory(dest) as staging, TreeWriter(staging) as writer:
            for info, parts in files:
                key = "/".join(parts)
                if key in seen:
                    raise InvalidInput(f"{label}: entry {info.filename!r} appears twice in the bundle")
                seen.add(key)
                mode = 0o755 if (info.external_attr >> 16) & 0o111 else 0o644
                try:
                    with archive.open(info) as source:
                        writer.write_file(parts, read_chunks(source, info.file_size), mode)
                except (zipfile.BadZipFile, OSError, RuntimeError, ValueError) as exc:
                    raise InvalidInput(f"{label}: entry {info.filename!r} can't be extracted: {exc}") from None
    return manifest


def _default_config(extracted: Path) -> str | None:
    """A bundle's own `config.yaml` becomes the plugin's initial config (the admin may edit it later)."""
    path = extracted / "config.yaml"
    return path.read_text() if path.is_file() else None


def _tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def install_requirements(requirements: Path, target: Path, label: str) -> None:
    """`uv pip install --target` into the plugin's own directory; InvalidInput with uv's reason."""
    import uv

    command = [
        uv.find_uv_bin(),
        "pip",
        "install",
        "--quiet",
        "--python",
        sys.executable,
        "--target",
        str(target),
        "-r",
        str(requirements),
    ]
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONHOME")}
    env.update(NO_COLOR="1", UV_NO_PROGRESS="1")
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, env=env, timeout=REQUIREMENTS_TIMEOUT, cwd=requirements.parent
        )
    except subprocess.TimeoutExpired:
        raise InvalidInput(
            f"plugin {label}: installing {REQUIREMENTS_FILE} took over {REQUIREMENTS_TIMEOUT:.0f}s"
        ) from None
    if result.returncode != 0:
        raise InvalidInput(
            f"plugin {label}: installing {REQUIREMENTS_FILE} failed:\n{_tail(result.stderr or result.stdout)}"
        )


def check_import(plugin_dir: Path, deps_dir: Path | None, label: str) -> None:
    """Import `plugin.py` and instantiate `Plugin` in a fresh process; InvalidInput with the reason."""
    command = [sys.executable, "-m", "trackside.plugins.loader", str(plugin_dir)]
    if deps_dir is not None:
        command.append(str(deps_dir))
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=IMPORT_CHECK_TIMEOUT, cwd=plugin_dir)
    except subprocess.TimeoutExpired:
        raise InvalidInput(f"plugin {label}: importing {PLUGIN_FILE} took over {IMPORT_CHECK_TIMEOUT:.0f}s") from None
    if result.returncode != 0:
        reason = _tail(result.stderr or result.stdout, 5) or f"exit code {result.returncode}"
        raise InvalidInput(f"plugin {label}: {reason}")
