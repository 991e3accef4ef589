"""A job's recent output as a target reports it: the last lines of each replica of its current
deployment, and a deploy failure that quotes the failing replica's last lines.

Shared by the targets whose replicas carry an index and a deployment tag (docker containers,
kubernetes pods); each passes how to read one replica's last lines.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NoReturn, Protocol, TypeVar

from trackside.errors import DeployFailed

ERROR_LOG_LINES = 20


class TaggedReplica(Protocol):
    @property
    def index(self) -> int: ...

    @property
    def tag(self) -> str: ...


Replica = TypeVar("Replica", bound=TaggedReplica)


def recent_logs(
    replicas: Sequence[Replica], tag: str | None, last_lines: Callable[[Replica, int], list[str]], tail: int
) -> str:
    """The last `tail` lines of each replica (all when tail=0) of the deployment tagged `tag` (of every
    replica when none carries it, as after a restart), prefixed `[replica-i]` when there are several."""
    if tag and any(r.tag == tag for r in replicas):
        replicas = [r for r in replicas if r.tag == tag]
    if len(replicas) == 1:
        return "\n".join(last_lines(replicas[0], tail))
    return "\n".join(f"[replica-{r.index}] {line}" for r in replicas for line in last_lines(r, tail))


def fail_deploy(
    reason: str, replica: Replica | None, last_lines: Callable[[Replica, int], list[str]] | None
) -> NoReturn:
    """Raise the deploy's failure, quoting the replica's last lines when there is one and a reader
    (none: the caller asked for no logs)."""
    if replica is None or last_lines is None:
        raise DeployFailed(reason)
    lines = "\n".join(last_lines(replica, ERROR_LOG_LINES))
    raise DeployFailed(f"{reason}; its last lines:\n{lines}" if lines else reason)
