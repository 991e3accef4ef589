"""Two platforms on one Docker engine: each lists, retires and removes only its own containers.

Both deploy a job of the same name and version on the `docker` target; their containers differ only in
the platform label. A forced redeploy and a delete on one leave the other's container running, and
its job keeps answering and stays `running` through both platforms' supervisor passes.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.conftest import fresh_database
from tests.infra.docker.support import platform_with_docker, require_engine
from tests.support.calls import generation_source
from tests.support.platform import RunningPlatform, deploy_and_wait, write_job

from trackside.infra.docker.engine import DockerEngine
from trackside.infra.docker.naming import LABEL_NAME, LABEL_PLATFORM

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.store]

NAME = "twin"  # the same job on both platforms; no other test uses this name


@pytest.fixture
def platforms(tmp_path: Path) -> Iterator[tuple[RunningPlatform, RunningPlatform]]:
    with contextlib.ExitStack() as stack:
        running = []
        for side in ("a", "b"):
            (tmp_path / side).mkdir()
            url = stack.enter_context(fresh_database(tmp_path / side))
            running.append(stack.enter_context(platform_with_docker(tmp_path / side, url)))
        yield running[0], running[1]


def containers(engine: DockerEngine) -> dict[str, str]:
    """Container id -> platform label, of every container of the job on the engine."""
    out = engine.run(
        ["ps", "-a", "-q", "--no-trunc", "--filter", f"label={LABEL_NAME}={NAME}", "--format", "{{.ID}}"]
    ).stdout.split()
    labels = {}
    for container in out:
        labels[container] = engine.run(
            ["inspect", "--format", f'{{{{index .Config.Labels "{LABEL_PLATFORM}"}}}}', container]
        ).stdout.strip()
    return labels


def platform_id(platform: RunningPlatform) -> str:
    """The platform's identity: its store adopted the id its data dir was given on the first start."""
    return (platform.data_dir / "platform-id").read_text().strip()


def which(platform: RunningPlatform) -> str:
    answer = platform.http.post(f"{platform.url}/pub/job/{NAME}/0.0.1/api/v1/which", json={})
    assert answer.status_code == 200, answer.text
    return str(answer.json())


def job(platform: RunningPlatform) -> dict[str, object]:
    found = platform.http.get(f"{platform.api}/job/{NAME}/0.0.1").json()
    assert isinstance(found, dict)
    return found


def test_two_platforms_on_one_engine_never_list_retire_or_remove_each_others_containers(
    platforms: tuple[RunningPlatform, RunningPlatform], tmp_path: Path
) -> None:
    engine = require_engine()
    a, b = platforms
    for platform, side in ((a, "a"), (b, "b")):
        job_dir = write_job(
            tmp_path / f"job-{side}", NAME, generation_source(side), extra="infrastructure_target: docker\n"
        )
        assert deploy_and_wait(platform, job_dir)["status"] == "done"
    first = containers(engine)
    assert sorted(first.values()) == sorted([platform_id(a), platform_id(b)]), first  # one each, labelled apart
    (b_container,) = [container for container, label in first.items() if label == platform_id(b)]
    assert which(a) == "a" and which(b) == "b"

    # A forced redeploy on `a` retires a's earlier container only.
    job_dir = write_job(tmp_path / "job-a2", NAME, generation_source("a2"), extra="infrastructure_target: docker\n")
    assert deploy_and_wait(a, job_dir, force=True)["status"] == "done"
    after_redeploy = containers(engine)
    assert b_container in after_redeploy and len(after_redeploy) == 2, after_redeploy
    # Each platform's supervisor (a pass every 0.5 s) lists only its own containers: one seeing both would
    # take the other's, of another deployment of the same version, for its job's and route calls there.
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        assert which(a) == "a2" and which(b) == "b"
        assert job(a)["status"] == "running" and job(b)["status"] == "running"
        time.sleep(0.2)

    # A delete on `a` removes a's container only.
    assert a.http.delete(f"{a.api}/job/{NAME}/0.0.1").status_code == 200
    assert list(containers(engine)) == [b_container]
    assert which(b) == "b" and job(b)["status"] == "running"
