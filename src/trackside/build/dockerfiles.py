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
_PULL_FAILURE = re.compile(r"(?:failed to resolve source metadata for|pull access denied for) (?P<image>[^\s,]+)", re.I)
_LOAD_METADATA = re.compile(r"^#(?P<step>\d+) \[internal\] load metadata for (?P<image>\S+)")
_STEP_ERROR = re.compile(r"^#(?P<step>\d+) ERROR\b")


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


def _normalized(reference: str) -> str:
    """An image reference as BuildKit prints it, back in the short form a Dockerfile uses."""
    for prefix in ("docker.io/library/", "docker.io/"):
        if reference.startswith(prefix):
            reference = reference[len(prefix) :]
            break
    return reference


def pull_failures(lines: Iterable[str], missing: Iterable[str] = ()) -> list[str]:
    """Images a failed build's output says could not be pulled, in order of appearance.

    BuildKit's plain progress names the image on a step (`#3 [internal] load metadata for
    docker.io/library/python:3.9`) and fails that step (`#3 ERROR: ...`), or says it in one line.
    `missing` are the Dockerfile's images the engine lacked, reported as the Dockerfile wrote them."""
    written = {name: name for name in missing}
    written.update({f"{name}:latest": name for name in missing if ":" not in name.rsplit("/", 1)[-1]})
    loading: dict[str, str] = {}
    found: list[str] = []

    def add(reference: str) -> None:
        reference = _normalized(reference.rstrip(":"))
        image = written.get(reference, reference)
        if image not in found:
            found.append(image)

    for line in lines:
        step = _LOAD_METADATA.match(line)
        if step is not None:
            loading[step.group("step")] = step.group("image")
            continue
        error = _STEP_ERROR.match(line)
        if error is not None and error.group("step") in loading:
            add(loading[error.group("step")])
        for match in _PULL_FAILURE.finditer(line):
            add(match.group("image"))
    return found


def pull_failure_hint(image: str) -> str:
    """The build log's line for an image the engine could not pull."""
    return (
        f"the Docker engine could not pull image {image}: map it to an image the engine has with the setting "
        f'{IMAGE_MAP_SETTING} (e.g. {IMAGE_MAP_SETTING}: {{"{image}": "LOCAL_IMAGE"}} in the config file)'
    )
