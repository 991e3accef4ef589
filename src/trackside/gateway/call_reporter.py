"""Sends the gateway's call counts, per job version and minute, to the lifecycle's store.

The proxy path is not touched: every `interval` seconds this task reads the cumulative counters that
`GatewayMetrics` keeps anyway, adds the difference since its last look to the current minute, and
posts the running totals of recent minutes to `POST {lifecycle}/api/v1/calls/report`. A gateway
rewrites its own rows (keyed by a per-process id), so a resent report never counts twice and any
number of gateways add up. Minutes the lifecycle has not acknowledged are resent, for up to an hour.

The report is authenticated with an internal token (scope `call_admin_api`) signed with the auth
key: split gateways share the key with the lifecycle (`TRACKSIDE_AUTH_KEY`, as lifecycle replicas do).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from dataclasses import dataclass, field

import httpx

from trackside.config import Settings
from trackside.gateway.metrics import BUCKETS, GatewayMetrics, JobKey

log = logging.getLogger(__name__)

KEEP_UNSENT_S = 3600


@dataclass
class _Seen:
    count: int = 0
    errors: int = 0
    seconds: float = 0.0
    buckets: list[int] = field(default_factory=lambda: [0] * (len(BUCKETS) + 1))


@dataclass
class _Minute:
    requests: int = 0
    errors: int = 0
    seconds_sum: float = 0.0
    buckets: list[int] = field(default_factory=lambda: [0] * (len(BUCKETS) + 1))


class CallReporter:
    def __init__(self, metrics: GatewayMetrics, lifecycle_url: str, token: str, interval: float) -> None:
        self.metrics = metrics
        self.url = lifecycle_url.rstrip("/") + "/api/v1/calls/report"
        self.token = token
        self.interval = interval
        self.gateway_id = uuid.uuid4().hex
        self._seen: dict[JobKey, _Seen] = {}
        self._minutes: dict[tuple[str, str, int], _Minute] = {}
        self._dirty: set[tuple[str, str, int]] = set()
        self._task: asyncio.Task[None] | None = None
        self._client: httpx.AsyncClient | None = None
        self._warned = False

    @classmethod
    def from_settings(cls, settings: Settings, metrics: GatewayMetrics, lifecycle_url: str) -> CallReporter:
        from trackside.auth.keys import load_auth_key
        from trackside.auth.tokens import SubjectType, encode_token

        token = encode_token(load_auth_key(settings), "gateway", SubjectType.INTERNAL, ["call_admin_api"])
        return cls(metrics, lifecycle_url, token, settings.call_report_interval)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.flush(), timeout=2)
        if self._client is not None:
            await self._client.aclose()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.flush()
            except Exception:  # never let a report stop the loop: counts wait for the next one
                log.debug("call report failed", exc_info=True)

    def sample(self, now: float | None = None) -> None:
        """Move what the counters gained since the last look into the current minute."""
        minute = int(time.time() if now is None else now) // 60 * 60
        for key, stats in list(self.metrics.jobs.items()):
            errors = sum(n for code, n in stats.codes.items() if code >= 500)
            seen = self._seen.get(key)
            if seen is None or stats.seconds_count < seen.count:
                seen = self._seen[key] = _Seen()
            gained = stats.seconds_count - seen.count
            if gained <= 0:
                continue
            slot_key = (key[0], key[1], minute)
            slot = self._minutes.setdefault(slot_key, _Minute())
            slot.requests += gained
            slot.errors += max(0, errors - seen.errors)
            slot.seconds_sum += max(0.0, stats.seconds_sum - seen.seconds)
            for i, value in enumerate(stats.buckets):
                slot.buckets[i] += max(0, value - seen.buckets[i])
            seen.count, seen.errors, seen.seconds, seen.buckets = (
                stats.seconds_count,
                errors,
                stats.seconds_sum,
                list(stats.buckets),
            )
            self._dirty.add(slot_key)

    def pending(self) -> list[dict[str, object]]:
        return [
            {
                "job_name": name,
                "job_version": version,
                "minute": minute,
                "requests": slot.requests,
                "errors": slot.errors,
                "seconds_sum": slot.seconds_sum,
                "latency_buckets": slot.buckets,
            }
            for (name, version, minute), slot in self._minutes.items()
            if (name, version, minute) in self._dirty
        ]

    async def flush(self) -> None:
        self.sample()
        minutes = self.pending()
        if not minutes:
            return
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=10)
        sent = set(self._dirty)
        response = await self._client.post(
            self.url, json={"gateway_id": self.gateway_id, "minutes": minutes}, headers={"X-Racetrack-Auth": self.token}
        )
        now_minute = int(time.time()) // 60 * 60
        if response.status_code == 200:
            self._dirty -= sent
            # Past minutes are final once stored; the current one keeps growing.
            for key in [k for k in self._minutes if k[2] < now_minute and k not in self._dirty]:
                del self._minutes[key]
            return
        if response.status_code in (401, 403) and not self._warned:
            self._warned = True
            log.warning(
                "the lifecycle refused the gateway's call report (%s): give the gateway the lifecycle's auth key"
                " (TRACKSIDE_AUTH_KEY) so the dashboard's call charts fill",
                response.status_code,
            )
        for key in [k for k in self._minutes if k[2] < now_minute - KEEP_UNSENT_S]:
            del self._minutes[key]
            self._dirty.discard(key)
