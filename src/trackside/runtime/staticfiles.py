"""Files the job publishes: `static_endpoints()` and the webview's `static/` directory."""

from __future__ import annotations

import mimetypes
import os
from typing import Any

from .http import Response


class StaticFiles:
    """Exact file routes plus directory prefixes; a request never escapes its directory."""

    def __init__(self) -> None:
        self.files: dict[str, tuple[str, str | None]] = {}
        self.dirs: list[tuple[str, str, str | None]] = []  # (route prefix + "/", real dir, mimetype)

    def add(self, route: str, target: str, mimetype: str | None = None) -> None:
        path = os.path.realpath(target)
        if os.path.isdir(path):
            self.dirs.append((route.rstrip("/") + "/", path, mimetype))
            self.dirs.sort(key=lambda d: -len(d[0]))  # longest prefix wins
        elif os.path.isfile(path):
            self.files[route] = (path, mimetype)
        else:
            raise FileNotFoundError(f"static endpoint {route!r}: {target!r} is neither a file nor a directory")

    def routes(self) -> list[str]:
        return list(self.files) + [prefix + "{path}" for prefix, _, _ in self.dirs]

    def lookup(self, route: str) -> tuple[str, str | None] | None:
        found = self.files.get(route)
        if found is not None:
            return found
        for prefix, root, mimetype in self.dirs:
            if route.startswith(prefix):
                rel = route[len(prefix) :]
                candidate = os.path.realpath(os.path.join(root, rel))
                if candidate != root and not candidate.startswith(root + os.sep):
                    return None  # `..` or a symlink pointing out of the directory
                if os.path.isfile(candidate):
                    return candidate, mimetype
                return None
        return None

    def serve(self, route: str) -> Response | None:
        found = self.lookup(route)
        if found is None:
            return None
        return file_response(*found)


def file_response(path: str, mimetype: str | None = None) -> Response:
    with open(path, "rb") as f:
        body = f.read()
    if not mimetype:
        mimetype = mimetypes.guess_type(path)[0] or "text/plain"
    return Response(200, body, mimetype.encode("latin-1"))


def parse_static_endpoints(mapping: Any, prefix: str = "/api/v1") -> StaticFiles:
    """`{path: file | (file, mimetype)}` from the job's `static_endpoints()`, checked entry by entry."""
    files = StaticFiles()
    if not isinstance(mapping, dict):
        raise TypeError(f"static_endpoints() must return a dict {{path: file}}, got {type(mapping).__name__}")
    for path, target in mapping.items():
        if not isinstance(path, str):
            raise TypeError(f"static_endpoints(): path {path!r} must be a string")
        mimetype = None
        if isinstance(target, (tuple, list)):
            if len(target) != 2:
                raise TypeError(f"static_endpoints()[{path!r}] must be a file or (file, mimetype)")
            target, mimetype = target
        files.add(prefix + "/" + path.lstrip("/"), os.fspath(target), mimetype)
    return files
