"""Reading and adjusting a Dockerfile before it is built: the images it names, mapped to local ones.

An air-gapped engine cannot pull the public base images jobs name (`FROM python:3.9-slim`,
`FROM golang:1.19-alpine`). The operator maps such names to images the engine has
(`docker_image_map` in the settings); `map_images` rewrites the image of every `FROM` line and of
`COPY --from=IMAGE` / `RUN --mount=...,from=IMAGE` accordingly, leaving stage names alone. Keys are
image references as written (`python:3.9-slim-bullseye`) or shell-style patterns (`python:3.*`); an
exact key wins over a pattern, a longer pattern over a shorter one. A reference holding a build
argument (`FROM python:${PY}`) is left as it is.

`pull_failures` reads a failed build's output for images the engine could not pull, so the build
log can say which image and which setting maps it.
"""

from __future__ import annotations

import fnmatch
import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

IMAGE_MAP_SETTING = "docker_image_map"

_FROM = re.compile(r"^(?P<head>\s*FROM\s+(?:--\S+\s+)*)(?P<image>\S+)(?P<tail>(?:\s+AS\s+(?P<stage>\S+))?.*)$", re.I)
_COPY_FROM = re.compile(r"(?P<head>^\s*(?:COPY|ADD)\b.*?--from=)(?P<image>[^\s]+)", re.I)
_MOUNT_FROM = re.compile(r"(?P<head>--mount=\S*?\bfrom=)(?P<image>[^,\s]+)", re.I)
# What BuildKit says when it cannot get an image's manifest (pull refused, no network, no such image).
_PULL_FAILURE = re.compile(
    r"(?:failed to resolve source metadata for|pull access denied for) "
    r"(?:docker\.io/library/|docker\.io/)?(?P<image>[^\s:,]+(?::[^\s:,]+)?)",
    re.I,
)
_FETCH_MARKERS = (
    "failed to resolve",
    "pull access denied",
    "failed to do request",
    "dial tcp",
    "no such host",
    "manifest unknown",
    "not found",
    "i/o timeout",
)


@dataclass(frozen=True)
class Mapped:
    """One image reference of a Dockerfile replaced by the operator's mapping."""

    line: int  # 1-based
    image: str
    local: str


def _lookup(image: str, mapping: Mapping[str, str]) -> str | None:
    if image in mapping:
        return mapping[image]
    patterns = [key for key in mapping if any(c in key for c in "*?[") and fnmatch.fnmatchcase(image, key)]
    if not patterns:
        return None
    return mapping[max(patterns, key=len)]


def _is_image(reference: str, stages: set[str]) -> bool:
    return bool(reference) and "$" not in reference and reference.lower() not in stages and reference != "scratch"


def map_images(text: str, mapping: Mapping[str, str]) -> tuple[str, list[Mapped]]:
    """`text` with mapped images replaced, and what was replaced (in order)."""
    stages: set[str] = set()
    out: list[str] = []
    mapped: list[Mapped] = []

    def replace(match: re.Match[str], number: int) -> str:
        image = match.group("image")
        local = _lookup(image, mapping) if _is_image(image, stages) and not image.isdigit() else None
        if local is None:
            return match.group(0)
        mapped.append(Mapped(number, image, local))
        return f"{match.group('head')}{local}"

    for number, line in enumerate(text.splitlines(keepends=True), start=1):
        body = line.rstrip("\r\n")
        ending = line[len(body) :]
        from_match = _FROM.match(body)
        if from_match is not None:
            image = from_match.group("image")
            local = _lookup(image, mapping) if _is_image(image, stages) else None
            if local is not None:
                mapped.append(Mapped(number, image, local))
                body = f"{from_match.group('head')}{local}{from_match.group('tail')}"
            if from_match.group("stage"):
                stages.add(from_match.group("stage").lower())
        else:
            body = _COPY_FROM.sub(functools.partial(replace, number=number), body)
            body = _MOUNT_FROM.sub(functools.partial(replace, number=number), body)
        out.append(body + ending)
    return "".join(out), mapped


def base_images(text: str) -> list[str]:
    """The images a Dockerfile's `FROM` lines name (stage names, `scratch` and `${ARG}`s left out)."""
    stages: set[str] = set()
    found: list[str] = []
    for line in text.splitlines():
        match = _FROM.match(line)
        if match is None:
            continue
        image = match.group("image")
        if _is_image(image, stages) and image not in found:
            found.append(image)
        if match.group("stage"):
            stages.add(match.group("stage").lower())
    return found


def pull_failures(lines: Iterable[str], missing: Iterable[str] = ()) -> list[str]:
    """Images a failed build's output says could not be pulled, in order of appearance.

    `missing` are the Dockerfile's images the engine did not have before the build: one named on a
    line of the output that says it could not be fetched is reported too, however BuildKit put it."""
    candidates = list(missing)
    found: list[str] = []
    for line in lines:
        for match in _PULL_FAILURE.finditer(line):
            image = match.group("image")
            if image not in found:
                found.append(image)
        lowered = line.lower()
        if any(marker in lowered for marker in _FETCH_MARKERS):
            found.extend(image for image in candidates if image in line and image not in found)
    return found


def pull_failure_hint(image: str) -> str:
    """The build log's line for an image the engine could not pull."""
    return (
        f"the Docker engine could not pull image {image}: map it to an image the engine has with the setting "
        f'{IMAGE_MAP_SETTING} (e.g. {IMAGE_MAP_SETTING}: {{"{image}": "LOCAL_IMAGE"}} in the config file)'
    )
