"""Restart backoff for crashed replicas: how long the watcher waits before starting one again.

A replica that keeps crashing waits 1 s, 2 s, 4 s, ... up to `max_delay`; one that ran for
`healthy_uptime` seconds before it crashed starts over at 1 s, as a pod's CrashLoopBackOff does.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RestartBackoff:
    max_delay: float = 30.0
    healthy_uptime: float = 60.0

    def crashes_in_a_row(self, previous: int, uptime: float) -> int:
        """The count of consecutive crashes after one more, given how long the replica ran."""
        return 1 if uptime >= self.healthy_uptime else previous + 1

    def delay(self, crashes_in_a_row: int) -> float:
        """Seconds to wait before the next start, after `crashes_in_a_row` (>= 1) failures."""
        return min(self.max_delay, 2.0 ** (crashes_in_a_row - 1))
