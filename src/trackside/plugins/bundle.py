"""`trackside plugin bundle`: turn a plugin directory into `{name}-{version}.zip`.

As `racetrack plugin bundle`: the directory needs `plugin.py` and `plugin-manifest.yaml`; files named
by `.racetrackignore` (or our `.trackside-ignore`) are left out; the manifest in the zip gets
`build_date`; entries are stored uncompressed. Entries are written in sorted order with a fixed
timestamp, so the same directory bundles to the same bytes apart from the build date.
"""

from __future__ import annotations

import fnmatch
import zipfile
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import yaml

from trackside.errors import InvalidInput
from trackside.plugins.manifest import MANIFEST_FILE, load_plugin_manifest
from trackside.safe_yaml import load_yaml

PLUGIN_FILE = "plugin.py"
IGNORE_FILES = (".racetrackignore", ".trackside-ignore")
# Never worth shipping: caches and VCS data.
ALWAYS_IGNORED = ("__pycache__/", "*.pyc", ".git/", ".venv/", ".pytest_cache/", ".mypy_cache/", ".ruff_cache/")
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


class IgnoreRules:
    """A gitignore-like subset: `#` comments, `dir/` for directories, `a/b` anchored, else any depth."""

    def __init__(self, patterns: list[str]) -> None:
        self.patterns = [p.strip() for p in patterns if p.strip() and not p.strip().startswith("#")]

    @classmethod
    def for_directory(cls, root: Path) -> IgnoreRules:
        patterns = list(ALWAYS_IGNORED)
        for name in IGNORE_FILES:
            path = root / name
            if path.is_file():
                patterns += path.read_text().splitlines()
        return cls(patterns)

    def ignored(self, relative: str, is_dir: bool) -> bool:
        name = relative.rsplit("/", 1)[-1]
        for pattern in self.patterns:
            dir_only = pattern.endswith("/")
            body = pattern.rstrip("/")
            if dir_only and not is_dir:
                continue
            if "/" in body:
                if fnmatch.fnmatchcase(relative, body.lstrip("/")):
                    return True
            elif fnmatch.fnmatchcase(name, body):
                return True
        return False


def bundle_files(root: Path, rules: IgnoreRules, exclude: set[Path]) -> list[Path]:
    """Files to ship, relative to `root`, sorted; ignored directories are not descended into."""
    found: list[Path] = []

    def walk(directory: Path) -> None:
        for child in sorted(directory.iterdir()):
            relative = child.relative_to(root).as_posix()
            if child.is_symlink():
                raise InvalidInput(f"plugin directory {root}: {relative} is a symbolic link; bundles can't hold links")
            if child.is_dir():
                if not rules.ignored(relative, is_dir=True):
                    walk(child)
            elif child.is_file() and child.resolve() not in exclude and not rules.ignored(relative, is_dir=False):
                found.append(Path(relative))

    walk(root)
    return found


def bundle_plugin(
    plugin_dir: Path,
    out_dir: Path | None = None,
    out_filename: str | None = None,
    plugin_version: str | None = None,
) -> Path:
    """Write the bundle of `plugin_dir` (into `out_dir`, default the plugin directory); return its path."""
    root = Path(plugin_dir).resolve()
    if not root.is_dir():
        raise InvalidInput(f"plugin directory {plugin_dir} does not exist")
    for required in (PLUGIN_FILE, MANIFEST_FILE):
        if not (root / required).is_file():
            raise InvalidInput(f"plugin directory {root}: {required} is missing")
    manifest = load_plugin_manifest((root / MANIFEST_FILE).read_bytes(), source=str(root / MANIFEST_FILE))
    if plugin_version:
        manifest = replace(manifest, version=plugin_version)
    manifest = replace(manifest, build_date=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
    # Keep the author's manifest as written (comments aside), with version and build date set.
    raw = load_yaml((root / MANIFEST_FILE).read_text(), str(root / MANIFEST_FILE), invalid="not valid YAML") or {}
    raw.update(version=manifest.version, build_date=manifest.build_date)

    target_dir = Path(out_dir).resolve() if out_dir else root
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / (out_filename or f"{manifest.stem}.zip")
    # Earlier bundles of this plugin lying in the directory are never bundled into the new one.
    exclude = {target.resolve(), *(p.resolve() for p in root.glob(f"{manifest.name}-*.zip"))}
    files = bundle_files(root, IgnoreRules.for_directory(root), exclude)
    partial = target.with_name(target.name + ".partial")
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_STORED) as archive:
        for relative in files:
            info = zipfile.ZipInfo(relative.as_posix(), date_time=_ZIP_TIME)
            info.external_attr = ((root / relative).stat().st_mode & 0o777 | 0o100000) << 16
            if relative.as_posix() == MANIFEST_FILE:
                archive.writestr(info, yaml.safe_dump(raw, sort_keys=False))
            else:
                archive.writestr(info, (root / relative).read_bytes())
    partial.replace(target)
    return target
