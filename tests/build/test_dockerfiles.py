from __future__ import annotations

from trackside.build.dockerfiles import base_images, map_images, pull_failure_hint, pull_failures

DOCKERFILE = """\
FROM golang:1.19-alpine AS build
COPY go.mod /src/
FROM --platform=linux/amd64 python:3.9-slim-bullseye
COPY --from=build /src/app /app
COPY --from=golang:1.19-alpine /usr/local/go /go
RUN --mount=type=cache,from=python:3.9-slim-bullseye,target=/c true
FROM python:${PY}
FROM scratch
"""


def test_from_and_copy_from_images_are_mapped_but_stage_names_args_and_scratch_are_not() -> None:
    mapping = {"python:3.9-slim-bullseye": "local/python:bookworm", "golang:1.*": "local/golang"}
    text, mapped = map_images(DOCKERFILE, mapping)
    lines = text.splitlines()
    assert lines[0] == "FROM local/golang AS build"
    assert lines[2] == "FROM --platform=linux/amd64 local/python:bookworm"
    assert lines[3] == "COPY --from=build /src/app /app"
    assert lines[4] == "COPY --from=local/golang /usr/local/go /go"
    assert lines[5] == "RUN --mount=type=cache,from=local/python:bookworm,target=/c true"
    assert lines[6:] == ["FROM python:${PY}", "FROM scratch"]
    assert [(m.line, m.image, m.local) for m in mapped] == [
        (1, "golang:1.19-alpine", "local/golang"),
        (3, "python:3.9-slim-bullseye", "local/python:bookworm"),
        (5, "golang:1.19-alpine", "local/golang"),
        (6, "python:3.9-slim-bullseye", "local/python:bookworm"),
    ]


def test_an_exact_key_wins_over_a_pattern_and_a_longer_pattern_over_a_shorter() -> None:
    mapping = {"python:*": "any", "python:3.9*": "three-nine", "python:3.9-slim": "exact"}
    assert map_images("FROM python:3.9-slim\n", mapping)[0] == "FROM exact\n"
    assert map_images("FROM python:3.9-alpine\n", mapping)[0] == "FROM three-nine\n"
    assert map_images("FROM python:3.11\n", mapping)[0] == "FROM any\n"
    assert map_images("FROM pythonic:1\n", mapping) == ("FROM pythonic:1\n", [])


def test_base_images_leave_out_stages_arguments_and_scratch() -> None:
    assert base_images(DOCKERFILE) == ["golang:1.19-alpine", "python:3.9-slim-bullseye"]


def test_a_failed_pull_is_found_in_buildkits_output_and_the_hint_names_the_setting() -> None:
    # What the engine's BuildKit prints when it cannot reach a registry (plain progress).
    output = [
        "#3 [internal] load metadata for docker.io/library/python:3.9-slim-bullseye",
        "#3 sha256:93660a529357a9b1eb0f051630b7b6ce5832bd990caa1ffb8068ba23cfb300e9",
        '#3 ERROR: failed to do request: Head "https://registry-1.docker.io/v2/library/python/manifests/'
        '3.9-slim-bullseye": dial tcp: lookup registry-1.docker.io: no such host',
        "failed to solve with frontend dockerfile.v0: failed to create LLB definition: failed to do request",
    ]
    assert pull_failures(output) == ["python:3.9-slim-bullseye"]
    untagged = ["#2 [internal] load metadata for docker.io/library/ubuntu:latest", "#2 ERROR: pull access denied"]
    assert pull_failures(untagged, missing=["ubuntu"]) == ["ubuntu"]  # as the Dockerfile wrote it
    one_line = ["ERROR: failed to solve: failed to resolve source metadata for docker.io/me/app:1: not found"]
    assert pull_failures(one_line) == ["me/app:1"]
    loaded = ["#3 [internal] load metadata for docker.io/library/python:3.9", "#3 DONE 0.1s", "#7 ERROR: exit 1"]
    assert pull_failures(loaded, missing=["python:3.9"]) == []
    hint = pull_failure_hint("python:3.9-slim-bullseye")
    assert "could not pull image python:3.9-slim-bullseye" in hint and "docker_image_map" in hint
