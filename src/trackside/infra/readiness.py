"""Waiting for freshly started replicas: every one live (with this deployment's timestamp), then ready.

Shared by the targets whose replicas the platform probes itself (local, docker). It polls fast at
first, since the local target aims at a first answer within 2 s of a deploy, and fails at once when
a replica dies or reports a failed start on `/live`, instead of waiting for a timeout.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn

from trackside.infra.probes import live_error, probe


@dataclass
class ReplicaEndpoint:
    index: int
    address: str  # host:port
    running: bool = True  # False while it (re)starts: not done yet, not failed either
    handle: Any = None  # handed back to `fail`, e.g. to show that replica's last log lines


def split_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host, int(port or 0)


def wait_until_ready(
    replicas: Callable[[], list[ReplicaEndpoint]],
    fail: Callable[[str, Any], NoReturn],
    *,
    deployment_timestamp: int,
    on_job_alive: Callable[[], None] | None,
    live_timeout: float,
    ready_timeout: float,
    first_delay: float = 0.02,
    max_delay: float = 0.5,
) -> None:
    """Return once every replica is ready; otherwise `fail(reason, handle)`, which raises.

    `replicas()` is called on every poll; it raises (or calls `fail`) itself for replicas that died.
    """
    phase, phase_started, delay = "live", time.monotonic(), first_delay
    last_reason = "no answer yet"
    while True:
        current = replicas()
        done = True
        for replica in current:
            if not replica.running:
                done, last_reason = False, f"replica {replica.index}: starting"
                continue
            host, port = split_address(replica.address)
            if phase == "live":
                result = probe(host, port, "/live")
                if result.status == 500:
                    fail(f"job failed to start: {live_error(result)}", replica.handle)
                if not result.ok:
                    done, last_reason = False, f"replica {replica.index}: {result.describe()}"
                    continue
                answered = result.json().get("deployment_timestamp")
                if deployment_timestamp and str(answered) != str(deployment_timestamp):
                    done = False
                    last_reason = (
                        f"replica {replica.index} answers deployment_timestamp {answered}, "
                        f"expected {deployment_timestamp}"
                    )
            else:
                ready = probe(host, port, "/ready")
                if not ready.ok:
                    done, last_reason = False, f"replica {replica.index}: {ready.describe()}"
                    if ready.status == 500:  # loading the job may have failed after /live first passed
                        live = probe(host, port, "/live")
                        if live.status == 500:
                            fail(f"job failed to start: {live_error(live)}", replica.handle)
        if done and phase == "live":
            if on_job_alive is not None:
                on_job_alive()
            phase, phase_started, delay = "ready", time.monotonic(), first_delay
            continue
        if done:
            return
        timeout = live_timeout if phase == "live" else ready_timeout
        if time.monotonic() - phase_started > timeout:
            verb = "become live" if phase == "live" else "become ready"
            fail(f"job did not {verb} within {timeout:g}s ({last_reason})", current[0].handle if current else None)
        time.sleep(delay)
        delay = min(max_delay, delay * 1.5)
