"""Which of a version's deployments serves while a side-by-side redeploy runs two of them.

Until the new deployment's replicas are all ready the earlier one serves (and is what the store points
at); once they are, the new one does. With no deployment wholly ready, the newest is reported, with its
errors. Shared by the targets that run deployments side by side (local, docker).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

T = TypeVar("T")


def by_tag(replicas: Iterable[T], tag: Callable[[T], str]) -> dict[str, list[T]]:
    """Replicas grouped by their deployment tag, in the order given."""
    groups: dict[str, list[T]] = {}
    for replica in replicas:
        groups.setdefault(tag(replica), []).append(replica)
    return groups


def serving(generations: dict[str, list[T]], started: Callable[[T], Any], ready: Callable[[T], bool]) -> list[T]:
    """The members of the serving deployment: the newest (by `started`) whose members are all `ready`."""
    if len(generations) == 1:
        return next(iter(generations.values()))
    newest_first = sorted(generations.values(), key=lambda members: max(started(m) for m in members), reverse=True)
    for members in newest_first:
        if all(ready(member) for member in members):
            return members
    return newest_first[0]


__all__ = ["by_tag", "serving"]
