"""job.yaml: the schema, loading (`extends`, `-e` overrides), version aliases and secret env files."""

from trackside.manifest.load import (
    apply_overrides,
    deep_merge,
    load_manifest,
    load_manifest_dict,
    manifest_to_dict,
    manifest_to_yaml,
    parse_manifest,
)
from trackside.manifest.model import GitConfig, Manifest, PythonJobExtra, ResourcesConfig

__all__ = [
    "GitConfig",
    "Manifest",
    "PythonJobExtra",
    "ResourcesConfig",
    "apply_overrides",
    "deep_merge",
    "load_manifest",
    "load_manifest_dict",
    "manifest_to_dict",
    "manifest_to_yaml",
    "parse_manifest",
]
