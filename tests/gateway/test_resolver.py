"""LifecycleResolver's caching, stale-if-error and coalescing, against a stand-in lifecycle.

`StandInLifecycle` is NOT Trackside's lifecycle: it is a tiny Starlette app that answers
`can-call-job` from fixed data and counts its calls, so these tests can pin the resolver's own
behaviour (what it caches, when it asks again, what it does when the lifecycle fails). The real
lifecycle's can-call-job is tested end to end with the whole platform elsewhere.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route as StarletteRoute
from tests.gateway.conftest import RunningGateway
from tests.gateway.doubles import JobDouble
from tests.support.ports import free_port

from trackside.gateway.resolver import LifecycleResolver, Route, RouteError, StaticResolver


class StandInLifecycle:
    """Answers can-call-job for job `adder` (1.0.0, also as `latest`); token `good` may call it."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.mode = "ok"  # ok | error500 | maintenance
        self.delay = 0.0
        self.replicas: list[str] = ["127.0.0.1:7001"]
        app = Starlette(
            routes=[
                StarletteRoute("/lifecycle/api/v1/auth/can-call-job/{name}/{version}/{path:path}", self.can_call_job)
            ]
        )
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/lifecycle"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
        self._thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self._sock]}, daemon=True)

    def start(self) -> StandInLifecycle:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "stand-in lifecycle did not start"
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self._thread.join(5)

    async def can_call_job(self, request: Request) -> JSONResponse:
        params = request.path_params
        token = request.headers.get("x-racetrack-auth")
        self.calls.append({**params, "token": token})
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.mode == "error500":
            return JSONResponse({"error": "database is gone"}, status_code=500)
        if self.mode == "maintenance":
            return JSONResponse({"error": "maintenance mode", "type": "Unavailable"}, status_code=503)
        if token is None:
            return JSONResponse({"error": "Unauthenticated: no token", "type": "Unauthorized"}, status_code=401)
        if token != "good":
            return JSONResponse({"error": "no call_job permission", "type": "Forbidden"}, status_code=403)
        if params["name"] != "adder" or params["version"] not in ("1.0.0", "latest"):
            error = f"job {params['name']} version {params['version']} not found"
            return JSONResponse({"error": error, "type": "NotFound"}, status_code=404)
        job = {
            "name": "adder",
            "version": "1.0.0",
            "status": "running",
            "internal_name": self.replicas[0] if self.replicas else None,
            "replica_internal_names": self.replicas,
        }
        return JSONResponse({"job": job, "caller": "User alice", "remote_gateway_url": None})


@pytest.fixture
def lifecycle() -> Iterator[StandInLifecycle]:
    stand_in = StandInLifecycle().start()
    yield stand_in
    stand_in.stop()


def run(coro: Any) -> Any:
    return asyncio.run(coro)


class Clock:
    """A clock the test moves by hand, so TTLs expire exactly when the test says (no sleeping)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def test_a_decision_carries_the_route_and_the_caller(lifecycle: StandInLifecycle) -> None:
    async def scenario() -> Route:
        resolver = LifecycleResolver(lifecycle.url)
        try:
            return await resolver.resolve("adder", "latest", "/api/v1/perform", "good")
        finally:
            await resolver.aclose()

    route = run(scenario())
    assert route == Route("adder", "1.0.0", "running", ["127.0.0.1:7001"], "User alice", None, None)
    assert lifecycle.calls == [{"name": "adder", "version": "latest", "path": "api/v1/perform", "token": "good"}]


def test_decisions_are_cached_for_the_ttl_per_token_and_path(lifecycle: StandInLifecycle) -> None:
    clock = Clock()

    async def scenario() -> None:
        resolver = LifecycleResolver(lifecycle.url, ttl=0.3, clock=clock)
        for _ in range(3):
            await resolver.resolve("adder", "1.0.0", "/x", "good")
        assert len(lifecycle.calls) == 1
        await resolver.resolve("adder", "1.0.0", "/y", "good")  # another path
        with pytest.raises(RouteError):
            await resolver.resolve("adder", "1.0.0", "/x", "other")  # another token
        assert len(lifecycle.calls) == 3
        clock.advance(0.29)
        await resolver.resolve("adder", "1.0.0", "/x", "good")
        assert len(lifecycle.calls) == 3
        clock.advance(0.02)
        await resolver.resolve("adder", "1.0.0", "/x", "good")
        assert len(lifecycle.calls) == 4
        await resolver.aclose()

    run(scenario())


@pytest.mark.parametrize(
    ("token", "name", "status", "message"),
    [
        (None, "adder", 401, "Unauthenticated: no token"),
        ("bad", "adder", 403, "no call_job permission"),
        ("good", "ghost", 404, "job ghost version 1.0.0 not found"),
    ],
)
def test_refusals_keep_the_lifecycle_status_and_message_and_are_cached(
    lifecycle: StandInLifecycle, token: str | None, name: str, status: int, message: str
) -> None:
    async def scenario() -> None:
        resolver = LifecycleResolver(lifecycle.url, ttl=5)
        for _ in range(2):
            with pytest.raises(RouteError) as refused:
                await resolver.resolve(name, "1.0.0", "/x", token)
            assert (refused.value.status_code, refused.value.message) == (status, message)
        await resolver.aclose()

    run(scenario())
    assert len(lifecycle.calls) == 1
    assert "token" in lifecycle.calls[0] and lifecycle.calls[0]["token"] == token


def test_maintenance_503_is_passed_on(lifecycle: StandInLifecycle) -> None:
    lifecycle.mode = "maintenance"

    async def scenario() -> None:
        resolver = LifecycleResolver(lifecycle.url)
        try:
            with pytest.raises(RouteError) as refused:
                await resolver.resolve("adder", "1.0.0", "/x", "good")
        finally:
            await resolver.aclose()
        assert refused.value.status_code == 503

    run(scenario())


def test_stale_decisions_are_served_while_the_lifecycle_fails_up_to_ten_ttls(lifecycle: StandInLifecycle) -> None:
    clock = Clock()

    async def scenario() -> None:
        resolver = LifecycleResolver(lifecycle.url, ttl=0.1, clock=clock)
        try:
            fresh = await resolver.resolve("adder", "1.0.0", "/x", "good")
            lifecycle.mode = "error500"
            clock.advance(0.15)  # expired, but within 10 x ttl
            assert await resolver.resolve("adder", "1.0.0", "/x", "good") == fresh
            clock.advance(1.0)  # older than 10 x ttl now
            with pytest.raises(RouteError) as failed:
                await resolver.resolve("adder", "1.0.0", "/x", "good")
            assert failed.value.status_code == 502
            assert "lifecycle unreachable" in failed.value.message
        finally:
            await resolver.aclose()

    run(scenario())
    assert len(lifecycle.calls) == 3


def test_unreachable_lifecycle_without_a_cached_decision_is_502() -> None:
    port = free_port()

    async def scenario() -> None:
        resolver = LifecycleResolver(f"http://127.0.0.1:{port}/lifecycle")
        try:
            with pytest.raises(RouteError) as failed:
                await resolver.resolve("adder", "1.0.0", "/x", "good")
        finally:
            await resolver.aclose()
        assert failed.value.status_code == 502
        assert failed.value.message.startswith("lifecycle unreachable")

    run(scenario())


def test_concurrent_misses_for_one_key_share_one_lifecycle_call(lifecycle: StandInLifecycle) -> None:
    lifecycle.delay = 0.3

    async def scenario() -> list[Route]:
        resolver = LifecycleResolver(lifecycle.url)
        routes = await asyncio.gather(*(resolver.resolve("adder", "1.0.0", "/x", "good") for _ in range(20)))
        await resolver.aclose()
        return list(routes)

    routes = run(scenario())
    assert len(routes) == 20 and all(r.job_name == "adder" for r in routes)
    assert len(lifecycle.calls) == 1


def test_invalidate_forgets_a_job_versions_decisions(lifecycle: StandInLifecycle) -> None:
    async def scenario() -> None:
        resolver = LifecycleResolver(lifecycle.url)
        await resolver.resolve("adder", "latest", "/x", "good")
        await resolver.resolve("adder", "1.0.0", "/x", "good")
        resolver.invalidate("adder", "1.0.0")  # the resolved version drops the `latest` entry too
        await resolver.resolve("adder", "latest", "/x", "good")
        await resolver.resolve("adder", "1.0.0", "/x", "good")
        await resolver.aclose()

    run(scenario())
    assert len(lifecycle.calls) == 4


def test_gateway_asks_the_lifecycle_once_then_serves_from_cache(
    lifecycle: StandInLifecycle, job: JobDouble, start_gateway: Callable[..., RunningGateway]
) -> None:
    lifecycle.replicas = [job.address]
    gateway = start_gateway(LifecycleResolver(lifecycle.url, ttl=60))
    with httpx.Client(base_url=gateway.url, headers={"X-Racetrack-Auth": "good"}) as client:
        for _ in range(5):
            response = client.post("/pub/job/adder/latest/api/v1/perform", content=b"{}")
            assert response.status_code == 200
        assert {k.lower(): v for k, v in response.json()["headers"]}["x-caller-name"] == "User alice"
        assert client.get("/pub/job/adder/latest/x", headers={"X-Racetrack-Auth": "bad"}).status_code == 403
    metrics = gateway.server.metrics
    assert len(lifecycle.calls) == 2
    assert (metrics.lifecycle_calls, metrics.lifecycle_cache_hits, metrics.auth_failed) == (2, 4, 1)


def test_gateway_reasks_the_lifecycle_when_a_replica_refuses_connections(
    lifecycle: StandInLifecycle, job: JobDouble, start_gateway: Callable[..., RunningGateway]
) -> None:
    dead = f"127.0.0.1:{free_port()}"
    lifecycle.replicas = [dead]
    gateway = start_gateway(LifecycleResolver(lifecycle.url, ttl=60))
    url = f"{gateway.url}/pub/job/adder/1.0.0/x"
    assert httpx.get(url, headers={"X-Racetrack-Auth": "good"}).status_code == 502
    assert len(lifecycle.calls) == 2  # asked again after the refusal, got the same dead replica
    lifecycle.replicas = [job.address]  # redeployed elsewhere
    # The cached decision still points at the dead replica: the refusal triggers a fresh one.
    assert httpx.get(url, headers={"X-Racetrack-Auth": "good"}).status_code == 200
    assert len(lifecycle.calls) == 3


def test_static_resolver_resolves_latest_and_wildcards_to_the_highest_stable_version() -> None:
    routes = {
        ("adder", v): Route("adder", v, replicas=["127.0.0.1:1"]) for v in ("1.0.0", "1.2.0", "2.0.0-rc1", "0.9.0")
    }
    resolver = StaticResolver(routes)
    assert resolver.resolve_cached("adder", "latest", "/", None).resolved_version == "1.2.0"
    assert resolver.resolve_cached("adder", "0.x", "/", None).resolved_version == "0.9.0"
    assert resolver.resolve_cached("adder", "2.0.0-rc1", "/", None).resolved_version == "2.0.0-rc1"
    with pytest.raises(RouteError) as missing:
        resolver.resolve_cached("adder", "3.x", "/", None)
    assert missing.value.status_code == 404
