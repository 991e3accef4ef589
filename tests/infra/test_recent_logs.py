"""The recent output a docker or kubernetes target reports: per replica of the current deployment."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from trackside.errors import DeployFailed
from trackside.infra.recent_logs import ERROR_LOG_LINES, fail_deploy, recent_logs


@dataclass
class Replica:
    index: int
    tag: str
    output: list[str]


def last_lines(replica: Replica, tail: int) -> list[str]:
    return replica.output[-tail:] if tail > 0 else replica.output


def test_one_replica_answers_its_lines_unprefixed() -> None:
    assert recent_logs([Replica(0, "t1", ["a", "b", "c"])], "t1", last_lines, 2) == "b\nc"


def test_several_replicas_are_prefixed_and_only_the_deployments_own_count() -> None:
    replicas = [Replica(0, "old", ["gone"]), Replica(0, "new", ["x"]), Replica(1, "new", ["y", "z"])]
    assert recent_logs(replicas, "new", last_lines, 0) == "[replica-0] x\n[replica-1] y\n[replica-1] z"


def test_without_a_replica_of_the_deployment_every_replica_counts() -> None:
    replicas = [Replica(0, "a", ["one"]), Replica(1, "b", ["two"])]
    assert recent_logs(replicas, "c", last_lines, 20) == "[replica-0] one\n[replica-1] two"


def test_a_failed_deploy_quotes_the_replicas_last_lines() -> None:
    output = [f"line {i}" for i in range(ERROR_LOG_LINES + 5)]
    with pytest.raises(DeployFailed) as failure:
        fail_deploy("job exited", Replica(0, "t", output), last_lines)
    assert failure.value.message == "job exited; its last lines:\n" + "\n".join(output[5:])


@pytest.mark.parametrize("replica", [None, Replica(0, "t", [])])
def test_a_failed_deploy_without_lines_says_only_why(replica: Replica | None) -> None:
    with pytest.raises(DeployFailed) as failure:
        fail_deploy("job exited", replica, last_lines)
    assert failure.value.message == "job exited"


def test_a_failed_deploy_asked_for_no_logs_reads_none() -> None:
    with pytest.raises(DeployFailed) as failure:
        fail_deploy("job exited", Replica(0, "t", ["secret"]), None)
    assert failure.value.message == "job exited"
