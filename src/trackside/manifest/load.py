"""Reading `job.yaml` from disk: file lookup, `extends`, `-e` overrides, and errors that say where.

The order is Racetrack's client order: read the file, merge it over its `extends` base (one level),
then apply `-e key.path=value` overrides, then validate. `load_manifest_dict` stops before
validation so the CLI can post exactly what the user wrote to the lifecycle API.
"""

from __future__ import annotations

import copy
import logging
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from trackside.errors import InvalidInput
from trackside.manifest.model import Manifest, format_validation_error, validate_python_extra
from trackside.safe_yaml import load_yaml

log = logging.getLogger(__name__)

MANIFEST_FILENAME = "job.yaml"
LEGACY_MANIFEST_FILENAME = "fatman.yaml"

_OVERRIDE_KEY_RE = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")


def parse_yaml(text: str, source: str) -> Any:
    """Parse YAML from a user (`safe_yaml.load_yaml`); InvalidInput names `source` and the line or limit."""
    return load_yaml(text, source)


def _legacy_name_warning(file: Path) -> str:
    return f"{file}: the name '{LEGACY_MANIFEST_FILENAME}' is deprecated; rename it to '{MANIFEST_FILENAME}'"


def resolve_manifest_path(path: Path) -> tuple[Path, list[str]]:
    """The manifest file for `path` (a file, or a directory holding job.yaml or legacy fatman.yaml)."""
    warnings: list[str] = []
    if path.is_dir():
        candidate = path / MANIFEST_FILENAME
        legacy = path / LEGACY_MANIFEST_FILENAME
        if candidate.is_file():
            return candidate, warnings
        if legacy.is_file():
            warnings.append(_legacy_name_warning(legacy))
            return legacy, warnings
        raise InvalidInput(f"{path}: no {MANIFEST_FILENAME} in this directory")
    if not path.exists():
        raise InvalidInput(f"{path}: manifest file not found")
    if path.name == LEGACY_MANIFEST_FILENAME:
        warnings.append(_legacy_name_warning(path))
    return path, warnings


def _read_mapping(file: Path) -> dict[str, Any]:
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"{file}: cannot read manifest: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise InvalidInput(f"{file}: manifest is not UTF-8 text") from None
    data = parse_yaml(text, str(file))
    if data is None:
        raise InvalidInput(f"{file}: manifest is empty")
    if not isinstance(data, dict):
        raise InvalidInput(f"{file}: manifest must be a mapping of fields, got {_kind(data)}")
    return data


def _kind(value: Any) -> str:
    return "a list" if isinstance(value, list) else f"a {type(value).__name__}"


def deep_merge(base: Mapping[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    """Merge `overlay` into a copy of `base`: mappings merge recursively, anything else is replaced."""
    merged: dict[str, Any] = copy.deepcopy(dict(base))
    for key, value in overlay.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def apply_overrides(data: Mapping[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Apply `key.path=value` overrides (value parsed as YAML) to a copy of `data`."""
    result: dict[str, Any] = copy.deepcopy(dict(data))
    for override in overrides:
        key, sep, raw_value = override.partition("=")
        key = key.strip()
        if not sep or not _OVERRIDE_KEY_RE.match(key):
            raise InvalidInput(
                f"override '{override}': expected KEY=VALUE with a dotted KEY, "
                "e.g. -e jobtype_extra.python_version=3.12"
            )
        value = parse_yaml(raw_value, f"override '{override}'")
        parts = key.split(".")
        target = result
        for depth, part in enumerate(parts[:-1]):
            child = target.get(part)
            if child is None:
                child = target[part] = {}
            elif not isinstance(child, dict):
                prefix = ".".join(parts[: depth + 1])
                raise InvalidInput(f"override '{override}': '{prefix}' is {_kind(child)}, not a mapping")
            target = child
        target[parts[-1]] = value
    return result


def _load(path: Path, overrides: Sequence[str]) -> tuple[dict[str, Any], Path, list[str]]:
    file, warnings = resolve_manifest_path(path)
    data = _read_mapping(file)
    extends = data.pop("extends", None)
    if extends is not None:
        if not isinstance(extends, str) or not extends.strip():
            raise InvalidInput(f"{file}: field 'extends': expected a relative path to a base manifest")
        base_path = file.parent / extends
        if not base_path.exists():
            raise InvalidInput(f"{file}: field 'extends': base manifest '{extends}' not found ({base_path})")
        base_file, base_warnings = resolve_manifest_path(base_path)
        warnings.extend(base_warnings)
        base = _read_mapping(base_file)
        if "extends" in base:
            raise InvalidInput(
                f"{file}: field 'extends': base manifest {base_file} itself extends '{base['extends']}'; "
                "only one level of 'extends' is supported"
            )
        data = deep_merge(base, data)
    data = apply_overrides(data, overrides)
    for warning in warnings:
        log.warning("%s", warning)
    return data, file, warnings


def load_manifest_dict(path: Path, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """The manifest as a dict after `extends` and overrides, before validation (and without `extends`)."""
    return _load(Path(path), overrides)[0]


def parse_manifest(data: Any, source: str = "manifest") -> Manifest:
    """Validate a manifest dict; InvalidInput lists each problem as `SOURCE: field 'path': problem`."""
    if not isinstance(data, dict):
        raise InvalidInput(f"{source}: manifest must be a mapping of fields, got {_kind(data)}")
    try:
        manifest = Manifest.model_validate(data)
    except ValidationError as exc:
        raise InvalidInput(format_validation_error(exc, source)) from None
    if manifest.jobtype_name == "python3":
        validate_python_extra(manifest.jobtype_extra, source)
    return manifest


def load_manifest(path: Path, overrides: Sequence[str] = ()) -> Manifest:
    """Read, merge, override and validate the manifest at `path` (a file or a job directory)."""
    data, file, warnings = _load(Path(path), overrides)
    manifest = parse_manifest(data, source=str(file))
    manifest.warnings[:0] = warnings
    return manifest


def manifest_to_dict(manifest: Manifest) -> dict[str, Any]:
    """The manifest as plain data with unset and None fields left out, so it parses back equal."""
    return manifest.model_dump(mode="json", exclude_none=True, exclude_unset=True)


def manifest_to_yaml(manifest: Manifest) -> str:
    return yaml.safe_dump(manifest_to_dict(manifest), sort_keys=False, allow_unicode=True)


def manifest_from_yaml(text: str, source: str = "manifest") -> Manifest:
    """Parse and validate manifest YAML text (as posted to the API in `manifest_yaml`)."""
    return parse_manifest(parse_yaml(text, source), source)
