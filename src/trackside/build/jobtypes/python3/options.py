"""The python3 job type's options (`jobtype_extra`), read the same way whatever the manifest gives.

The manifest offers a typed view (`python_extra`); a plain `jobtype_extra` dict is accepted too, so
the builder does not depend on how the manifest model spells its defaults.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from trackside.errors import BuildFailed


@dataclass
class PythonOptions:
    entrypoint_path: str
    entrypoint_class: str | None = None
    requirements_path: str | None = None
    python_version: str | None = None
    max_concurrency: int | None = None
    max_concurrency_queue: int | None = None
    home_page: str | None = None
    racetrack_compat: bool | None = None  # None: decided by compat.wanted()

    @classmethod
    def from_manifest(cls, manifest: Any) -> PythonOptions:
        view = getattr(manifest, "python_extra", None)
        if callable(view):
            view = view()
        raw: dict[str, Any] = dict(getattr(manifest, "jobtype_extra", None) or {})

        def get(name: str) -> Any:
            value = getattr(view, name, None) if view is not None else None
            return raw.get(name) if value is None else value

        entrypoint_path = get("entrypoint_path")
        if not entrypoint_path:
            raise BuildFailed("jobtype_extra.entrypoint_path is required by the python3 job type")

        def optional_int(name: str) -> int | None:
            value = get(name)
            if value is None or value == "":
                return None
            try:
                return int(value)
            except (TypeError, ValueError) as exc:
                raise BuildFailed(f"jobtype_extra.{name} must be an integer, got {value!r}") from exc

        def optional_str(name: str) -> str | None:
            value = get(name)
            return None if value is None or value == "" else str(value)

        compat = raw.get("racetrack_compat")
        if compat is not None and not isinstance(compat, bool):
            lowered = str(compat).strip().lower()
            if lowered not in ("true", "false"):
                raise BuildFailed(f"jobtype_extra.racetrack_compat must be true or false, got {compat!r}")
            compat = lowered == "true"

        return cls(
            entrypoint_path=str(entrypoint_path),
            entrypoint_class=optional_str("entrypoint_class"),
            requirements_path=optional_str("requirements_path"),
            # Only an explicit request picks another interpreter; the model's default ("3.11", the
            # Docker base image's) must not make a build on a newer server look for an older Python.
            python_version=None if raw.get("python_version") in (None, "") else str(raw["python_version"]),
            max_concurrency=optional_int("max_concurrency"),
            max_concurrency_queue=optional_int("max_concurrency_queue"),
            home_page=optional_str("home_page"),
            racetrack_compat=compat,
        )
