"""Route resolution: the one place that decides whether a job call may pass and where it goes.

The gateway asks a `RouteResolver` for every job call. `LifecycleResolver` asks the lifecycle's
`can-call-job` endpoint (Racetrack's single Pub -> Lifecycle call, issue #155) and caches the
answer, positive or negative, for a short TTL, so the proxy path costs a dict lookup on a hit.
httpx is fine here: it only runs on cache misses, off the hot path. `StaticResolver` serves a
fixed table, for tests and for embedding the gateway in front of known services.

Resolvers may also offer `resolve_cached(...)`, a synchronous peek that returns a `Route`,
raises a cached `RouteError`, or returns None when `resolve` must be awaited; the gateway uses it
to skip creating a task per request.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable
from urllib.parse import quote

import httpx

from trackside.manifest.versions import resolve_job_version

if TYPE_CHECKING:
    from trackside.gateway.metrics import GatewayMetrics


_CONTROL = {c: " " for c in range(32)} | {127: " "}


@dataclass
class Route:
    """Where a job call goes: `replicas` are "host:port" of the job's serving replicas.

    `caller` names the authenticated caller; the gateway sends it to the job as `X-Caller-Name`
    (`caller_line`, made once per decision). `forward_caller_token` is the job's manifest opt-in to
    receive the caller's own token (`X-Racetrack-Auth` and its cookie), which is stripped otherwise.
    """

    job_name: str
    resolved_version: str
    status: str = "running"
    replicas: list[str] = field(default_factory=list)
    caller: str | None = None
    remote_gateway_url: str | None = None
    remote_gateway_token: str | None = None
    forward_caller_token: bool = False
    caller_line: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.caller:
            # A header value on one line whatever the name holds.
            value = self.caller.translate(_CONTROL).encode("latin-1", "replace")
            self.caller_line = b"X-Caller-Name: " + value + b"\r\n"
        else:
            self.caller_line = b""


class RouteError(Exception):
    """A refused call: 401, 403, 404, 502 (lifecycle unreachable) or 503, with the reason."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message


@runtime_checkable
class RouteResolver(Protocol):
    """Decides whether `token` may call `path` of job `job_name` at `version`, and where it runs."""

    auth_required: bool

    async def resolve(self, job_name: str, version: str, path: str, token: str | None) -> Route: ...


class StaticResolver:
    """A fixed routing table keyed by (name, exact version); `latest` and `1.x` resolve over it.

    With `tokens` (token -> caller name) every call needs one of those tokens (401 otherwise);
    without it every call passes with no caller.
    """

    def __init__(self, routes: Mapping[tuple[str, str], Route], *, tokens: Mapping[str, str] | None = None) -> None:
        self.routes = dict(routes)
        self.tokens = dict(tokens) if tokens is not None else None
        self.auth_required = tokens is not None

    def resolve_cached(self, job_name: str, version: str, path: str, token: str | None) -> Route:
        caller: str | None = None
        if self.tokens is not None:
            if token is None:
                raise RouteError(401, "Unauthenticated: no auth token given")
            caller = self.tokens.get(token)
            if caller is None:
                raise RouteError(401, "Unauthenticated: invalid auth token")
        route = self.routes.get((job_name, version))
        if route is None:
            versions = [v for (name, v) in self.routes if name == job_name]
            resolved = resolve_job_version(version, versions)
            if resolved is None:
                raise RouteError(404, f"job {job_name} version {version} not found")
            route = self.routes[(job_name, resolved)]
        if caller is not None and route.caller != caller:
            route = dataclasses.replace(route, caller=caller)
        return route

    async def resolve(self, job_name: str, version: str, path: str, token: str | None) -> Route:
        return self.resolve_cached(job_name, version, path, token)


CacheKey = tuple[str, str, str, str]


@dataclass
class _Entry:
    expires_at: float
    stored_at: float
    decision: Route | RouteError


_digests: dict[str, str] = {}


def _token_digest(token: str | None) -> str:
    """sha256 of the token, memoized: a client sends the same token on every call."""
    if token is None:
        return ""
    digest = _digests.get(token)
    if digest is None:
        if len(_digests) >= 10_000:
            _digests.clear()
        digest = _digests[token] = hashlib.sha256(token.encode()).hexdigest()
    return digest


def route_from_can_call_job(data: Mapping[str, Any]) -> Route:
    """Turn the lifecycle's can-call-job answer `{job, caller, remote_gateway_*}` into a Route."""
    job = data["job"]
    replicas = list(job.get("replica_internal_names") or [])
    if not replicas and job.get("internal_name"):
        replicas = [job["internal_name"]]
    return Route(
        job_name=job["name"],
        resolved_version=job["version"],
        status=job.get("status") or "running",
        replicas=replicas,
        caller=data.get("caller"),
        remote_gateway_url=data.get("remote_gateway_url"),
        remote_gateway_token=data.get("remote_gateway_token"),
        forward_caller_token=bool(job.get("forward_caller_token", False)),
    )


class LifecycleResolver:
    """Asks the lifecycle `GET /api/v1/auth/can-call-job/{name}/{version}{path}` and caches answers.

    Decisions (routes and 401/403/404/503 refusals) are cached for `ttl` seconds from when the
    lifecycle was asked, per (name, requested version, path, sha256(token)). When the lifecycle is unreachable or fails
    with a 5xx other than 503, an entry up to `stale_factor * ttl` old is served instead
    (stale-if-error); with none, the call fails with 502. Concurrent misses for one key share a
    single lifecycle request.

    `internal_token` is the gateway's own credential, kept for calls on the gateway's own behalf
    (none yet); can-call-job always carries the caller's token, or no token at all.
    """

    def __init__(
        self,
        lifecycle_url: str,
        internal_token: str | None = None,
        ttl: float = 2.0,
        *,
        stale_factor: float = 10.0,
        timeout: float = 10.0,
        auth_required: bool = True,
        metrics: GatewayMetrics | None = None,
        clock: Callable[[], float] = time.monotonic,
        remote_mode: bool = False,
    ) -> None:
        self.lifecycle_url = lifecycle_url.rstrip("/")
        # A remote gateway (remote gateway mode) is where a target's remote_gateway_url leads: it
        # routes to the replicas itself, never on to a remote gateway.
        self.remote_mode = remote_mode
        self.clock = clock  # seconds; tests pass their own to step over TTLs without sleeping
        self.internal_token = internal_token
        self.ttl = ttl
        self.transient_ttl = min(ttl, 0.2)
        self.stale_ttl = ttl * stale_factor
        self.timeout = timeout
        self.auth_required = auth_required
        self.metrics = metrics
        self._cache: dict[CacheKey, _Entry] = {}
        self._inflight: dict[CacheKey, asyncio.Future[Route]] = {}
        self._client: httpx.AsyncClient | None = None

    def bind_metrics(self, metrics: GatewayMetrics) -> None:
        """Called by the gateway so lifecycle calls and cache hits land in its metrics."""
        if self.metrics is None:
            self.metrics = metrics

    def _key(self, job_name: str, version: str, path: str, token: str | None) -> CacheKey:
        return (job_name, version, path, _token_digest(token))

    def resolve_cached(self, job_name: str, version: str, path: str, token: str | None) -> Route | None:
        # On every proxied call: the digest lookup is inlined rather than calling _key().
        digest = "" if token is None else (_digests.get(token) or _token_digest(token))
        entry = self._cache.get((job_name, version, path, digest))
        if entry is None or self.clock() > entry.expires_at:
            return None
        if self.metrics is not None:
            self.metrics.lifecycle_cache_hits += 1
        if isinstance(entry.decision, RouteError):
            raise entry.decision
        return entry.decision

    async def resolve(self, job_name: str, version: str, path: str, token: str | None) -> Route:
        cached = self.resolve_cached(job_name, version, path, token)
        if cached is not None:
            return cached
        key = self._key(job_name, version, path, token)
        task = self._inflight.get(key)
        if task is None:
            # A task of its own, so a caller that gives up (client gone) does not cancel the others.
            task = asyncio.ensure_future(self._ask_lifecycle(key, job_name, version, path, token))
            self._inflight[key] = task
            task.add_done_callback(lambda t: self._settled(key, t))
        return await asyncio.shield(task)

    def _settled(self, key: CacheKey, task: asyncio.Future[Route]) -> None:
        if self._inflight.get(key) is task:
            del self._inflight[key]
        if not task.cancelled():
            task.exception()  # retrieved here too, in case every waiter gave up

    async def _ask_lifecycle(self, key: CacheKey, job_name: str, version: str, path: str, token: str | None) -> Route:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.timeout)
        if not path.startswith("/"):
            path = "/" + path
        url = (
            f"{self.lifecycle_url}/api/v1/auth/can-call-job/"
            f"{quote(job_name, safe='')}/{quote(version, safe='')}{quote(path, safe='/%:@!$&()*+,;=-._~')}"
        )
        headers = {"X-Racetrack-Auth": token} if token is not None else {}
        if self.metrics is not None:
            self.metrics.lifecycle_calls += 1
        # A decision is as old as the question: counted from here, no route outlives `ttl` after the
        # store said otherwise, which the lifecycle relies on before it stops replaced replicas.
        asked = self.clock()
        try:
            response = await self._client.get(url, headers=headers)
        except httpx.InvalidURL as exc:  # the caller's path made a URL httpx refuses (over 64 KiB)
            raise RouteError(414 if "too long" in str(exc).lower() else 400, f"job path refused: {exc}") from None
        except httpx.HTTPError as exc:
            return self._stale_or_fail(key, f"lifecycle unreachable: {type(exc).__name__}: {exc}")
        status = response.status_code
        if status == 200:
            try:
                route = route_from_can_call_job(response.json())
            except (ValueError, KeyError, TypeError) as exc:
                return self._stale_or_fail(key, f"lifecycle sent a malformed can-call-job answer: {exc!r}")
            if self.remote_mode:
                route.remote_gateway_url = route.remote_gateway_token = None
            self._store(key, route, self.ttl if route.status != "starting" else self.transient_ttl, asked)
            return route
        if status in (401, 403, 404, 503):
            error = RouteError(status, _error_message(response, status))
            # "No such job" and "not ready" end when a deploy finishes: don't make its first caller
            # wait a whole TTL. Refusals of a token keep the full TTL (docs/auth.md).
            self._store(key, error, self.ttl if status in (401, 403) else self.transient_ttl, asked)
            raise error
        if status >= 500:
            return self._stale_or_fail(key, f"lifecycle unreachable: it answered {status}")
        raise RouteError(502, f"lifecycle answered can-call-job with unexpected status {status}")

    def _store(self, key: CacheKey, decision: Route | RouteError, ttl: float, asked: float) -> None:
        self._cache[key] = _Entry(asked + ttl, self.clock(), decision)

    def _stale_or_fail(self, key: CacheKey, reason: str) -> Route:
        if self.metrics is not None:
            self.metrics.lifecycle_errors += 1
        entry = self._cache.get(key)
        if entry is not None and self.clock() - entry.stored_at <= self.stale_ttl:
            if self.metrics is not None:
                self.metrics.lifecycle_stale_hits += 1
            if isinstance(entry.decision, RouteError):
                raise entry.decision
            return entry.decision
        raise RouteError(502, reason)

    def invalidate(self, job_name: str, version: str) -> None:
        """Forget decisions about a job version (requested or resolved), e.g. after a refused connection."""
        for key in [
            k
            for k, entry in self._cache.items()
            if k[0] == job_name
            and (k[1] == version or (isinstance(entry.decision, Route) and entry.decision.resolved_version == version))
        ]:
            del self._cache[key]

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


def _error_message(response: httpx.Response, status: int) -> str:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return str(body["error"])
    text = response.text.strip()
    return text[:500] if text else f"lifecycle refused the call with status {status}"
