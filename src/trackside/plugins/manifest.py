"""`plugin-manifest.yaml`: the metadata of a plugin bundle (docs/plugins.md, "Writing a plugin").

Parsed strictly enough that a bad bundle is refused at install with the field named, and leniently
enough that Racetrack's own plugins (which may carry fields we don't use) install unchanged: unknown
fields are ignored. `name` and `version` end up in file names, so they are limited to safe characters.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from trackside.errors import InvalidInput
from trackside.safe_yaml import load_yaml

MANIFEST_FILE = "plugin-manifest.yaml"
CATEGORIES = ("job-type", "infrastructure", "core")
COMPONENTS = ("lifecycle", "image-builder", "supervisor", "gateway")
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$")


@dataclass
class PluginManifest:
    name: str
    version: str
    url: str | None = None
    priority: int = 0
    category: str | None = None
    components: list[str] = field(default_factory=list)
    build_date: str | None = None

    @property
    def stem(self) -> str:
        """`{name}-{version}`: the zip's file name without `.zip`, and the key of its directories."""
        return f"{self.name}-{self.version}"

    def to_api(self) -> dict[str, Any]:
        return asdict(self)


def parse_plugin_manifest(data: Any, source: str = MANIFEST_FILE) -> PluginManifest:
    """Validate a decoded manifest; InvalidInput names `source` and the field that is wrong."""
    if not isinstance(data, dict):
        raise InvalidInput(f"{source}: expected a mapping with at least 'name' and 'version'")

    def fail(field_name: str, problem: str) -> InvalidInput:
        return InvalidInput(f"{source}: field '{field_name}' {problem}")

    values: dict[str, Any] = {}
    for key in ("name", "version"):
        value = data.get(key)
        if value is None or value == "":
            raise fail(key, "is required")
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise fail(key, f"must be a string, got {type(value).__name__}")
        text = str(value)
        if not _SAFE_NAME.match(text):
            raise fail(key, f"{text!r} may only contain letters, digits and . _ + - (it names files)")
        values[key] = text
    url = data.get("url")
    if url is not None and not isinstance(url, str):
        raise fail("url", "must be a string")
    priority = data.get("priority", 0)
    if priority is None:
        priority = 0
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise fail("priority", f"must be an integer, got {priority!r}")
    category = data.get("category")
    if category is not None and category not in CATEGORIES:
        raise fail("category", f"must be one of {', '.join(CATEGORIES)}, got {category!r}")
    components = data.get("components") or []
    if not isinstance(components, list) or not all(isinstance(c, str) for c in components):
        raise fail("components", "must be a list of component names, e.g. [lifecycle]")
    build_date = data.get("build_date")
    return PluginManifest(
        name=values["name"],
        version=values["version"],
        url=url,
        priority=priority,
        category=category,
        components=list(components),
        build_date=None if build_date is None else str(build_date),
    )


def load_plugin_manifest(text: str | bytes, source: str = MANIFEST_FILE) -> PluginManifest:
    data = load_yaml(text, source, invalid="not valid YAML")
    return parse_plugin_manifest(data, source)


def manifest_from_class(cls: type, fallback_name: str) -> PluginManifest:
    """A built-in plugin's manifest: its `plugin_manifest` class attribute (dict or PluginManifest)."""
    declared = getattr(cls, "plugin_manifest", None)
    if isinstance(declared, PluginManifest):
        return declared
    if isinstance(declared, dict):
        return parse_plugin_manifest(declared, source=f"built-in plugin {fallback_name}")
    return PluginManifest(name=fallback_name, version="builtin")
