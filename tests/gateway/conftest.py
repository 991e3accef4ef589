"""Fixtures for gateway tests: job doubles on loopback and a gateway running in its own loop thread."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar

import pytest
import uvloop
from tests.gateway.doubles import JobDouble

from trackside.gateway.resolver import Route, RouteResolver, StaticResolver
from trackside.gateway.server import GatewayServer

T = TypeVar("T")


class RunningGateway:
    """A GatewayServer on 127.0.0.1:0, served by a uvloop loop in a background thread."""

    def __init__(self, resolver: RouteResolver, fallback: tuple[str, int] | None = None, **options: Any) -> None:
        self.resolver = resolver
        self.loop = uvloop.new_event_loop()
        self.server = GatewayServer(resolver, fallback_upstream=fallback, **options)
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.port = self.call(self.server.start("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.port}"

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    def on_loop(self, fn: Callable[[], T]) -> T:
        """Run `fn` on the gateway's loop thread (its objects are not thread-safe) and return its result."""

        async def run() -> T:
            return fn()

        return self.call(run())

    def stop(self) -> None:
        self.call(self.server.stop())
        aclose = getattr(self.resolver, "aclose", None)
        if aclose is not None:  # a LifecycleResolver's client connections live on this loop
            self.call(aclose())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        self.loop.close()


@pytest.fixture
def job() -> Iterator[JobDouble]:
    double = JobDouble("replica-1").start()
    yield double
    double.stop()


@pytest.fixture
def job2() -> Iterator[JobDouble]:
    double = JobDouble("replica-2").start()
    yield double
    double.stop()


@pytest.fixture
def start_gateway() -> Iterator[Callable[..., RunningGateway]]:
    started: list[RunningGateway] = []

    def start(resolver: RouteResolver, fallback: tuple[str, int] | None = None, **options: Any) -> RunningGateway:
        """A gateway on `resolver`; `options` go to GatewayServer (limits, trusted_proxies, ...)."""
        gateway = RunningGateway(resolver, fallback, **options)
        started.append(gateway)
        return gateway

    yield start
    for gateway in started:
        gateway.stop()


@pytest.fixture
def gateway(job: JobDouble, start_gateway: Callable[..., RunningGateway]) -> RunningGateway:
    """A gateway routing job `adder` 1.0.0 (and `latest`) to one job double."""
    routes = {("adder", "1.0.0"): Route("adder", "1.0.0", status="running", replicas=[job.address])}
    return start_gateway(StaticResolver(routes))
