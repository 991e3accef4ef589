"""The gateway ("pub"): a lean HTTP/1.1 reverse proxy in front of jobs.

Why not a framework: the proxy hop is on every job call. An ASGI app forwarding with httpx adds
1.5-2.8 ms of CPU per call (docs/architecture.md, "Hot paths"); this module is a raw asyncio Protocol (uvloop when
available) parsing with httptools, writing each request straight onto a pooled keep-alive
connection and streaming response bytes back as they arrive. A call whose routing decision is
cached and whose upstream connection idles in the pool is forwarded without a task: callbacks
only, one `_Exchange`, one write each way.

Measured by `python -m bench --only gateway` (docs/benchmarks.md: `trackside up` with a deployed
job, token checks on, wrk at 64 connections, all servers on one core of a shared 2-core VM):
0.61-0.66x nginx's throughput in front of the same job (the target is 0.6), p50 added at one
connection 0.19 ms on a quiet machine (nginx: 0.08 ms; 0.86 ms at a load average of 20), 60-85 us
of CPU per call in the `trackside up` process, which includes the lifecycle and supervisor threads
(nginx: 21-32 us). Nearly all of the difference is CPython executing the per-call logic (about
115k instructions per call under cachegrind, `python -m bench --only instructions`, ~30 Python
calls); a hand-written response-head parser was tried and cost more than httptools' callbacks.

What the gateway adds, strips and refuses (framing it writes itself, the caller's identity and
token, forwarding headers, request head limits, when upstream connections are reused or a call is
resent) is in docs/security.md; the checks are on the hot path and cost no measurable time.

Per client connection, requests are served in order (HTTP/1.1 pipelining is honoured by queueing).
Bodies stream both ways with flow control: a side whose peer cannot keep up stops being read.
Routing and authorization are decided by the `RouteResolver` alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import importlib.metadata
import itertools
import json
import os
import signal
import time
from bisect import bisect_left
from collections import deque
from dataclasses import dataclass
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httptools

from trackside.gateway.async_calls import AsyncCalls
from trackside.gateway.call_reporter import CallReporter
from trackside.gateway.forwarding import TrustedProxies
from trackside.gateway.metrics import BUCKETS, GatewayMetrics, JobStats
from trackside.gateway.paths import JobTarget, PathRefused, is_job_path, parse_job_path
from trackside.gateway.resolver import LifecycleResolver, Route, RouteError, RouteResolver
from trackside.gateway.tokens import COOKIE_NAME, TOKEN_HEADERS, extract_token
from trackside.gateway.upstream import Headers, UpstreamConnection, UpstreamPool

if TYPE_CHECKING:
    from trackside.config import Settings

try:
    VERSION = importlib.metadata.version("trackside")
except importlib.metadata.PackageNotFoundError:  # pragma: no cover - running from a bare checkout
    VERSION = "0.0.0"

TRACING_HEADER = b"X-Request-Tracing-Id"
CALLER_HEADER = b"X-Caller-Name"


def _spellings(*names: bytes) -> frozenset[bytes]:
    """Each name with any of its dashes written as underscores.

    WSGI's environ, CGI and servers built on them read `X_Caller_Name` as `X-Caller-Name`, so a
    header the gateway vouches for must not reach a job under another spelling either.
    """
    spelled: set[bytes] = set()
    for name in names:
        first, *rest = name.split(b"-")
        for separators in itertools.product((b"-", b"_"), repeat=len(rest)):
            spelled.add(first + b"".join(sep + part for sep, part in zip(separators, rest, strict=True)))
    return frozenset(spelled)


# Never forwarded in either direction (RFC 9110 section 7.6.1); framing is redone per hop.
HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"upgrade",
        b"transfer-encoding",
    }
)
# The body's framing: written by the gateway from what it parsed, never copied (so never removable).
_FRAMING = frozenset({b"content-length", b"transfer-encoding"})
# Who the client is: replaced by what the gateway saw unless a trusted proxy sent them.
_FORWARDING = _spellings(b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host", b"x-real-ip", b"forwarded")
# The caller's credentials: reach a job only by its manifest's opt-in, the lifecycle always.
_TOKEN_ONLY = (b"x-racetrack-auth", b"x-racetrack-user-auth", b"x-racetrack-esc-auth")
_TOKEN_NAMES = ((b"x-racetrack-auth", b"X-Racetrack-Auth"), *((n, n.title()) for n in _TOKEN_ONLY[1:]))
# Request headers not copied as they are: hop-by-hop ones, framing, and those the gateway sets or vets.
_NOT_FORWARDED = (
    HOP_BY_HOP
    | _FRAMING
    | _FORWARDING
    | _spellings(*_TOKEN_ONLY, b"x-caller-name", b"x-trackside-gateway", b"x-racetrack-gateway-token")
    | {b"host", b"expect", b"x-request-tracing-id", b"cookie", b"authorization"}
)
# Remote gateway mode: a job call that did not come from the main gateway.
REMOTE_REFUSED = (
    "remote gateway: job calls come through the main gateway only (X-Racetrack-Gateway-Token missing or wrong)"
)
# Response headers not copied as they are (Content-Length and Location are, after a look).
_RESPONSE_SPECIAL = HOP_BY_HOP | {b"x-request-tracing-id", b"content-length", b"location"}

# Request headers the gateway reads (lower-case); the rest are only copied.
_WATCHED = frozenset(
    {
        b"host",
        b"content-length",
        b"transfer-encoding",
        b"expect",
        b"connection",
        b"x-request-tracing-id",
        b"x-forwarded-for",
        b"x-forwarded-proto",
        b"x-forwarded-host",
        b"x-real-ip",
        b"forwarded",
        b"x-racetrack-gateway-token",
        *TOKEN_HEADERS,
    }
)

_SPECIAL = _WATCHED | _NOT_FORWARDED

IDEMPOTENT = frozenset({b"GET", b"HEAD", b"OPTIONS", b"TRACE", b"PUT", b"DELETE"})

_LOCAL_PATHS = frozenset({"/pub/health", "/pub/live", "/pub/ready", "/pub/metrics"})
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"

# Stop reading a client once this much of its request body waits for an upstream connection.
BODY_BUFFER_LIMIT = 256 * 1024
# Request bytes kept to resend an idempotent call whose pooled connection turns out dead.
REPLAY_LIMIT = 1024 * 1024
CLIENT_IDLE_TIMEOUT = 75.0
SWEEP_INTERVAL = 2.0
# After refusing a request head, read and drop at most this much more before closing, so the client
# reads the answer rather than a reset (nginx's "lingering close"); the sweep ends it sooner.
LINGER_BYTES = 1024 * 1024

_ERROR_TYPES = {400: "BadRequest", 414: "RequestUriTooLong", 431: "RequestHeaderFieldsTooLarge"}

_PAUSE_BUFFER = 1
_PAUSE_UPSTREAM = 2

_REASONS = {s.value: s.phrase.encode() for s in HTTPStatus}
_STATUS_LINES = {code: b"HTTP/1.1 %d %s\r\n" % (code, phrase) for code, phrase in _REASONS.items()}


_request_ids: list[bytes] = []
_UUID_VERSION = bytes((x & 0x0F) | 0x40 for x in range(256))
_UUID_VARIANT = bytes((x & 0x3F) | 0x80 for x in range(256))


@dataclass(frozen=True)
class RequestLimits:
    """What the gateway reads of a request head (nginx's large_client_header_buffers, roughly).

    A longer URL is answered 414, more header lines or a longer head 431. The head is counted from
    the request line to the empty line that ends it; the checks cost a few comparisons per request.
    """

    max_url_bytes: int = 16 * 1024
    max_head_bytes: int = 64 * 1024
    max_headers: int = 100

    @classmethod
    def of(cls, settings: Settings) -> RequestLimits:
        return cls(settings.gateway_max_url_bytes, settings.gateway_max_head_bytes, settings.gateway_max_headers)


class _HeadRefused(Exception):
    """Raised inside a parser callback to stop reading a request head that is over a limit."""


def new_request_id() -> bytes:
    """A uuid4 hex for a request that came without a tracing id; made 256 at a time (uuid4() is slow)."""
    if not _request_ids:
        raw = bytearray(os.urandom(16 * 256))
        raw[6::16] = raw[6::16].translate(_UUID_VERSION)
        raw[8::16] = raw[8::16].translate(_UUID_VARIANT)
        hexed = raw.hex().encode()
        _request_ids.extend([hexed[i : i + 32] for i in range(0, len(hexed), 32)])
    return _request_ids.pop()


def _relative_location(value: bytes, upstream_key: str) -> bytes:
    """`http://{upstream}/x` -> `/x`: the client cannot reach the job's own address."""
    for scheme in (b"http://", b"https://"):
        if value.startswith(scheme):
            authority, slash, path = value[len(scheme) :].partition(b"/")
            if authority.decode("latin-1").lower() == upstream_key.lower():
                return b"/" + path if slash else b"/"
    return value


def _json_body(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(", ", ": ")).encode()


class _Exchange:
    """One request/response on a client connection, from the request head to the response's end.

    Defaults live on the class, so an instance only stores what a call actually changes.
    """

    method: bytes
    url: bytes
    path: str
    query: bytes
    fwd: list[bytes]  # the header lines to forward (hop-by-hop and rewritten ones left out)
    watched: dict[bytes, bytes]
    http10: bool
    keep_alive: bool
    chunked_in: bool
    has_body: bool
    request_id: bytes
    started: float
    body_buf: list[bytes] | None = None
    body_size = 0
    body_complete = False
    is_job = False
    job_name = ""
    job_version = ""
    job_path = ""
    token: str | None = None
    route: Route | None = None
    stats: JobStats | None = None
    upstream_key = ""
    head: list[bytes] | None = None
    upstream: UpstreamConnection | None = None
    forwarding = False
    replay: list[bytes] | None = None  # what was written upstream, while it may still be resent
    replay_size = 0
    terminated = False  # the chunked request body's last chunk has been written upstream
    retried = False
    response_started = False
    status = 0
    finished = False
    sent_continue = False


class _ClientConnection(asyncio.Protocol):
    """One client connection: parses requests, routes them, and is the sink of upstream responses."""

    def __init__(self, server: GatewayServer) -> None:
        self.server = server
        self.transport: asyncio.Transport = None  # type: ignore[assignment]  # set in connection_made
        self.parser = httptools.HttpRequestParser(self)
        self.peer = b""
        self.queue: deque[_Exchange] = deque()
        self.active: _Exchange | None = None
        self.reading: _Exchange | None = None
        self.closed = False
        self.closing = False  # close once the exchange in progress is served
        self.paused = 0
        self.write_paused = False
        self.served = 0  # exchanges finished; the idle sweep compares it between rounds
        self.served_at_sweep = -1
        self.idle_sweeps = 0
        self.limits = server.limits
        self.lingering = 0  # after a refused head: bytes dropped since, plus one
        self.trusted = False  # the peer is an operator-trusted proxy
        self.forwarded = b""  # the forwarding header lines for an untrusted peer, made once
        self._url = b""  # the request target (its first piece while it arrives in several)
        self._url_parts: list[bytes] | None = None
        self._url_size = 0
        self._headers: list[tuple[bytes, bytes]] = []
        self._read_size = 0  # size of the read being parsed
        self._head_split = False  # the head being parsed began in an earlier read
        self._head_more = 0  # bytes of the reads after the one it began in
        self._refused: tuple[int, str] | None = None
        self._out: list[bytes] = []  # response bytes gathered during one upstream read

    # -- asyncio.Protocol ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        self.peer = str(peer[0]).encode() if peer else b""
        server = self.server
        self.trusted = bool(server.trusted_proxies) and str(peer[0] if peer else "") in server.trusted_proxies
        self.forwarded = b"X-Forwarded-For: %s\r\nX-Forwarded-Proto: http\r\n" % self.peer
        server._connections.add(self)

    def data_received(self, data: bytes) -> None:
        if self.closing:
            if self.lingering:
                self._linger(len(data))
            return
        self._read_size = len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            # Protocol upgrades (websockets) are not proxied: answer the request as plain HTTP, then close.
            self.closing = True
            if self.reading is not None:
                self.reading.body_complete = True
                self.reading.keep_alive = False
                self.reading = None
            self._pause(_PAUSE_BUFFER)
        except httptools.HttpParserError as exc:
            refused = self._refused
            if refused is not None:
                self._reject(*refused)
            else:
                self._malformed(exc)
            return
        if self._url and self._head_incomplete(len(data)):
            return
        if self.active is None and self.queue:
            self._start(self.queue[0])

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.server._connections.discard(self)
        for ex in self.queue:
            ex.finished = True
            conn = ex.upstream
            if conn is not None:
                ex.upstream = None
                conn.close()
        self.queue.clear()
        self.active = None

    def pause_writing(self) -> None:
        self.write_paused = True
        ex = self.active
        if ex is not None and ex.upstream is not None:
            ex.upstream.pause_reading()

    def resume_writing(self) -> None:
        self.write_paused = False
        ex = self.active
        if ex is not None and ex.upstream is not None:
            ex.upstream.resume_reading()

    def _pause(self, reason: int) -> None:
        if not self.paused and not self.closed:
            self.transport.pause_reading()
        self.paused |= reason

    def _resume(self, reason: int) -> None:
        if self.paused & reason:
            self.paused &= ~reason
            if not self.paused and not self.closed:
                self.transport.resume_reading()

    # -- request head limits --------------------------------------------------------------------

    def _refuse(self, status: int, message: str) -> None:
        """From a parser callback: stop parsing; data_received answers `status`."""
        self._refused = (status, message)
        raise _HeadRefused(message)

    def _more_url(self, piece: bytes) -> None:
        """The URL arrives in several reads: gather the pieces (joined once), within the limit."""
        parts = self._url_parts
        if parts is None:
            parts = self._url_parts = [self._url]
            self._url_size = len(self._url)
        parts.append(piece)
        self._url_size += len(piece)
        limit = self.limits.max_url_bytes
        if self._url_size > limit:
            self._refuse(414, f"request URL is over the limit of {limit} bytes")

    def _head_incomplete(self, size: int) -> bool:
        """After a read that left a request head unfinished: count it; True when the head is refused."""
        if not self._head_split:
            self._head_split = True  # it began in this read: counted exactly once complete
            return False
        self._head_more += size
        limit = self.limits.max_head_bytes
        if self._head_more > limit:
            self._reject(431, f"request head is over the limit of {limit} bytes")
            return True
        return False

    def _check_head(self, method: bytes, url: bytes, headers: list[tuple[bytes, bytes]]) -> None:
        limits = self.limits
        if len(url) > limits.max_url_bytes:
            self._refuse(414, f"request URL is over the limit of {limits.max_url_bytes} bytes")
        if len(headers) > limits.max_headers:
            self._refuse(431, f"more than {limits.max_headers} header lines in the request")
        # The exact size only when the head may be near the limit: split across reads, or a big read.
        if self._head_split or self._read_size > limits.max_head_bytes:
            self._head_split = False
            self._head_more = 0
            # "GET " URL " HTTP/1.1\r\n", each "Name: value\r\n", the closing "\r\n"
            size = len(method) + len(url) + 14 + sum(len(name) + len(value) + 4 for name, value in headers)
            if size > limits.max_head_bytes:
                self._refuse(431, f"request head is over the limit of {limits.max_head_bytes} bytes")

    # -- httptools request callbacks -----------------------------------------------------------

    def on_url(self, url: bytes) -> None:
        if self._url:
            self._more_url(url)
        else:
            self._url = url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        parser = self.parser
        method = parser.get_method()
        url = self._url
        if self._url_parts is not None:
            url = b"".join(self._url_parts)
            self._url_parts = None
        self._url = b""
        headers = self._headers
        self._headers = []
        limits = self.limits
        if (
            len(url) > limits.max_url_bytes
            or len(headers) > limits.max_headers
            or self._head_split
            or self._read_size > limits.max_head_bytes
        ):
            self._check_head(method, url, headers)
        ex = _Exchange()
        ex.started = time.perf_counter()
        ex.method = method
        ex.url = url
        path, qmark, query = url.partition(b"?")
        if path[:1] != b"/":
            # absolute-form target (a client treating us as a forward proxy): keep only the path
            parsed = httptools.parse_url(url)
            path = parsed.path or b"/"
            query = parsed.query or b""
            qmark = b"?" if query else b""
            ex.url = path + qmark + query
        ex.path = path.decode("latin-1")
        ex.query = qmark + query
        # One pass over the headers: note the ones the gateway reads, keep the lines it forwards.
        watched: dict[bytes, bytes] = {}
        fwd: list[bytes] = []
        for name, value in headers:
            lname = name.lower()
            if lname in _SPECIAL:
                if lname in watched:
                    watched[lname] += (b"; " if lname == b"cookie" else b", ") + value
                else:
                    watched[lname] = value
                if lname in _NOT_FORWARDED:
                    continue
            fwd += (name, b": ", value, b"\r\n")
        ex.watched = watched
        keep_alive = ex.keep_alive = parser.should_keep_alive()
        # An HTTP/1.0 request is only kept alive when it says so: skip asking httptools (it formats
        # a string) for a keep-alive request that did not send a Connection header.
        if keep_alive and b"connection" not in watched:
            ex.http10 = False
        else:
            ex.http10 = parser.get_http_version() == "1.0"
            if b"connection" in watched:
                fwd = _refilter(headers, watched)
        te = watched.get(b"transfer-encoding")
        # httptools refuses a request whose Transfer-Encoding does not end in chunked.
        chunked = ex.chunked_in = te is not None and b"chunked" in te.lower()
        ex.fwd = fwd
        cl = watched.get(b"content-length")
        ex.has_body = chunked or (cl is not None and cl.strip() not in (b"0", b""))
        ex.request_id = watched.get(b"x-request-tracing-id") or (
            _request_ids.pop() if _request_ids else new_request_id()
        )
        self.reading = ex
        self.queue.append(ex)

    def on_body(self, body: bytes) -> None:
        ex = self.reading
        if ex is None or ex.finished:
            return
        conn = ex.upstream
        if ex.forwarding and conn is not None:
            framed = (b"%x\r\n" % len(body), body, b"\r\n") if ex.chunked_in else None
            replay = ex.replay
            if replay is not None:  # settled before writing: a failed write may end the exchange
                ex.replay_size += len(body)
                if ex.replay_size > REPLAY_LIMIT or conn.got_bytes or ex.method not in IDEMPOTENT:
                    ex.replay = None  # a non-idempotent body goes out: never sent twice
                elif framed is not None:
                    replay += framed
                else:
                    replay.append(body)
            if framed is not None:
                conn.transport.writelines(framed)
            else:
                conn.transport.write(body)
        else:
            if ex.body_buf is None:
                ex.body_buf = []
            ex.body_buf.append(body)
            ex.body_size += len(body)
            if ex.body_size > BODY_BUFFER_LIMIT:
                self._pause(_PAUSE_BUFFER)

    def on_message_complete(self) -> None:
        ex = self.reading
        if ex is None:
            return
        self.reading = None
        ex.body_complete = True
        conn = ex.upstream
        if ex.forwarding and conn is not None and ex.chunked_in and not ex.finished:
            ex.terminated = True
            conn.transport.write(b"0\r\n\r\n")
            if ex.replay is not None:
                ex.replay.append(b"0\r\n\r\n")

    # -- routing ------------------------------------------------------------------------------

    def _start(self, ex: _Exchange) -> None:
        self.active = ex
        server = self.server
        target = server._targets.get(ex.path)
        if target is None:
            self._start_uncached(ex)
            return
        # A job path seen before: the hot path.
        ex.is_job = True
        ex.job_name = target.name
        ex.job_version = target.version
        ex.job_path = target.path
        watched = ex.watched
        if server.remote_token is not None and not server.from_main_gateway(watched):
            self._respond_json(ex, 401, {"error": REMOTE_REFUSED})
            return
        raw_token = watched.get(b"x-racetrack-auth")
        token = ex.token = raw_token.decode("latin-1").strip() if raw_token else extract_token(watched)
        peek = server._resolve_cached
        if peek is not None:
            try:
                route = peek(target.name, target.version, target.path or "/", token)
            except RouteError as exc:
                self._route_error(ex, exc)
                return
            if route is not None:
                self._forward_job(ex, route)
                return
        server._spawn(self._resolve_and_forward(ex))

    def _start_uncached(self, ex: _Exchange) -> None:
        path = ex.path
        if path.startswith("/pub"):
            if path in _LOCAL_PATHS:
                self._serve_local(ex)
                return
            if path.startswith("/pub/async/") and self.server.async_calls is not None:
                self.server._spawn(self.server.async_calls.serve(self, ex))
                return
            if is_job_path(path):
                try:
                    target = parse_job_path(path)
                except PathRefused as exc:
                    ex.is_job = True
                    self._respond_json(ex, exc.status_code, {"error": exc.message})
                    return
                targets = self.server._targets
                if len(targets) >= 4096:
                    targets.clear()
                targets[path] = target
                self._start(ex)
                return
        fallback = self.server.fallback_key
        if fallback is None:
            self._respond_json(ex, 404, {"error": f"not found: {path}"})
            return
        ex.upstream_key = fallback
        ex.head = self._fallback_head(ex)
        self._send(ex)

    def _serve_local(self, ex: _Exchange) -> None:
        server = self.server
        if ex.path == "/pub/health":
            server.metrics.health_requests += 1
            payload = {
                "service": "pub",
                "version": VERSION,
                "status": "pass",
                "auth_required": bool(getattr(server.resolver, "auth_required", True)),
            }
            self._respond_json(ex, 200, payload)
        elif ex.path == "/pub/live":
            self._respond_json(ex, 200, {"service": "pub", "live": True})
        elif ex.path == "/pub/ready":
            self._respond_json(ex, 200, {"service": "pub", "ready": True})
        else:
            body = server.metrics.render().encode()
            self._respond(ex, 200, body, b"text/plain; version=0.0.4; charset=utf-8")

    async def _resolve_and_forward(self, ex: _Exchange) -> None:
        try:
            route = await self.server.resolver.resolve(ex.job_name, ex.job_version, ex.job_path or "/", ex.token)
        except RouteError as exc:
            if not ex.finished:
                self._route_error(ex, exc)
            return
        except Exception as exc:  # a resolver bug must not hang the client
            if not ex.finished:
                self._respond_json(ex, 500, {"error": f"Proxy request error: {type(exc).__name__}: {exc}"})
            return
        if not ex.finished:
            self._forward_job(ex, route)

    # -- for handlers off the proxy path (async calls) ----------------------------------------------

    async def whole_body(self, ex: _Exchange, limit: int) -> bytes | None:
        """The request's whole body, read before anything is done with it; None past `limit` bytes."""
        while not ex.body_complete:
            if ex.finished or self.closed or ex.body_size > limit:
                return None
            self._resume(_PAUSE_BUFFER)  # all of it is kept: read on past the forwarding buffer's limit
            await asyncio.sleep(0.005)
        if ex.body_size > limit:
            return None
        return b"".join(ex.body_buf or ())

    def respond(self, ex: _Exchange, status: int, body: bytes, content_type: bytes) -> None:
        self._respond(ex, status, body, content_type)

    def respond_json(self, ex: _Exchange, status: int, payload: dict[str, Any]) -> None:
        self._respond_json(ex, status, payload)

    def _route_error(self, ex: _Exchange, exc: RouteError) -> None:
        if exc.status_code in (401, 403):
            self.server.metrics.auth_failed += 1
        self._respond_json(ex, exc.status_code, {"error": exc.message})

    def _forward_job(self, ex: _Exchange, route: Route, may_reresolve: bool = True) -> None:
        ex.route = route
        if ex.stats is None:
            metrics = self.server.metrics
            stats = metrics.jobs.get((route.job_name, route.resolved_version))
            if stats is None:
                stats = metrics.job(route.job_name, route.resolved_version)
            ex.stats = stats
            stats.requests += 1
        replicas = route.replicas
        if len(replicas) == 1 and route.status != "starting" and not route.remote_gateway_url:
            replica = replicas[0]
        else:
            picked = self._pick_replica(ex, route)
            if picked is None:
                return
            replica = picked
        ex.upstream_key = replica
        # The request head, as pieces joined once with the body when written.
        parts = [
            ex.method,
            b" /pub/job/",
            route.job_name.encode(),
            b"/",
            route.resolved_version.encode(),
            ex.job_path.encode("latin-1"),
            ex.query,
            b" HTTP/1.1\r\nHost: ",
            replica.encode(),
            b"\r\n",
        ]
        parts += ex.fwd
        # What the gateway vouches for, written by the gateway: framing, forwarding, tracing, caller.
        watched = ex.watched
        if ex.chunked_in:
            parts += (b"Transfer-Encoding: ", watched[b"transfer-encoding"], b"\r\n")
        else:
            length = watched.get(b"content-length")
            if length is not None:
                parts += (b"Content-Length: ", length, b"\r\n")
        if self.trusted:
            parts += self._trusted_forwarding(watched)
        else:
            parts.append(self.forwarded)
            host = watched.get(b"host")
            if host is not None:
                parts += (b"X-Forwarded-Host: ", host, b"\r\n")
        parts += (b"X-Request-Tracing-Id: ", ex.request_id, b"\r\n")
        caller_line = route.caller_line
        if caller_line:
            parts.append(caller_line)
        if route.forward_caller_token or route.remote_gateway_url:  # the remote gateway asks the lifecycle too
            parts += _credential_lines(watched, None)
        elif b"cookie" in watched or b"authorization" in watched:
            parts += _credential_lines(watched, ex.token)
        if route.remote_gateway_url:
            prefix = urlsplit(route.remote_gateway_url).path.rstrip("/").encode()
            parts[1] = b" " + prefix + b"/job/"
            if route.remote_gateway_token:
                parts += (b"X-Racetrack-Gateway-Token: ", route.remote_gateway_token.encode(), b"\r\n")
        parts.append(b"\r\n")
        ex.head = parts
        conn = self.server.pool.acquire_nowait(replica)
        if conn is not None:
            self._attach(ex, conn, None)
        else:
            self.server._spawn(self._connect_and_attach(ex, replica, may_reresolve, None))

    def _pick_replica(self, ex: _Exchange, route: Route) -> str | None:
        """The slow cases of replica choice: remote gateways, round robin, and jobs not ready."""
        if route.remote_gateway_url:
            parts = urlsplit(route.remote_gateway_url)
            if parts.scheme != "http" or not parts.hostname:
                self._proxy_error(ex, "bad_remote", f"remote gateway {route.remote_gateway_url!r} is not http://host")
                return None
            return f"{parts.hostname}:{parts.port or 80}"
        replicas = route.replicas
        if route.status == "starting" or not replicas:
            payload = {
                "error": f"job {route.job_name} {route.resolved_version} is not ready",
                "jobName": route.job_name,
                "jobVersion": route.resolved_version,
                "jobStatus": route.status,
            }
            self._respond_json(ex, 503, payload)
            return None
        rr = self.server._round_robin
        key = (route.job_name, route.resolved_version)
        turn = rr.get(key, 0)
        rr[key] = turn + 1
        return replicas[turn % len(replicas)]

    def _trusted_forwarding(self, watched: dict[bytes, bytes]) -> list[bytes]:
        """Forwarding headers behind an operator-trusted proxy: what it said, with this hop added."""
        forwarded_for = watched.get(b"x-forwarded-for")
        lines = [b"X-Forwarded-For: ", forwarded_for + b", " + self.peer if forwarded_for else self.peer, b"\r\n"]
        lines += (b"X-Forwarded-Proto: ", watched.get(b"x-forwarded-proto") or b"http", b"\r\n")
        host = watched.get(b"x-forwarded-host") or watched.get(b"host")
        if host:
            lines += (b"X-Forwarded-Host: ", host, b"\r\n")
        for lname, name in ((b"x-real-ip", b"X-Real-IP"), (b"forwarded", b"Forwarded")):
            value = watched.get(lname)
            if value:
                lines += (name, b": ", value, b"\r\n")
        return lines

    def _fallback_head(self, ex: _Exchange) -> list[bytes]:
        """The request as the client sent it (Host and credentials included), minus what a proxy manages."""
        parts = [ex.method, b" ", ex.url, b" HTTP/1.1\r\n"]
        watched = ex.watched
        host = watched.get(b"host")
        if host is not None:
            parts += (b"Host: ", host, b"\r\n")
        parts += ex.fwd
        if ex.chunked_in:
            parts += (b"Transfer-Encoding: ", watched[b"transfer-encoding"], b"\r\n")
        else:
            length = watched.get(b"content-length")
            if length is not None:
                parts += (b"Content-Length: ", length, b"\r\n")
        if self.trusted:
            parts += self._trusted_forwarding(watched)
        else:
            parts.append(self.forwarded)
            if host is not None:
                parts += (b"X-Forwarded-Host: ", host, b"\r\n")
        parts += (b"X-Request-Tracing-Id: ", ex.request_id, b"\r\n")
        parts += _credential_lines(watched, None)
        secret = self.server.fallback_secret
        if secret is not None:
            parts += (b"X-Trackside-Gateway: ", secret, b"\r\n")
        parts.append(b"\r\n")
        return parts

    def _send(self, ex: _Exchange) -> None:
        conn = self.server.pool.acquire_nowait(ex.upstream_key)
        if conn is not None:
            self._attach(ex, conn, None)
        else:
            self.server._spawn(self._connect_and_attach(ex, ex.upstream_key, True, None))

    # -- talking to the upstream --------------------------------------------------------------

    async def _connect_and_attach(self, ex: _Exchange, key: str, may_reresolve: bool, replay: bytes | None) -> None:
        server = self.server
        try:
            conn = await server.pool.connect(key)
        except (OSError, TimeoutError, ValueError) as exc:
            if ex.finished:
                return
            invalidate = getattr(server.resolver, "invalidate", None)
            if may_reresolve and ex.route is not None and invalidate is not None:
                # The lifecycle's answer may be outdated (job redeployed elsewhere): ask once more.
                invalidate(ex.job_name, ex.job_version)
                try:
                    route = await server.resolver.resolve(ex.job_name, ex.job_version, ex.job_path or "/", ex.token)
                except RouteError as route_exc:
                    if not ex.finished:
                        self._route_error(ex, route_exc)
                    return
                if ex.finished:
                    return
                self._forward_job(ex, route, may_reresolve=False)
                return
            if isinstance(exc, ConnectionRefusedError):
                cause, detail = "connection_refused", f"connection refused by {key}"
            elif isinstance(exc, TimeoutError):
                cause, detail = "context_deadline", f"timed out connecting to {key}"
            else:
                cause, detail = "connection_error", f"cannot connect to {key}: {exc}"
            self._proxy_error(ex, cause, detail)
            return
        if ex.finished:
            server.pool.release(conn)
            return
        self._attach(ex, conn, replay)

    def _attach(self, ex: _Exchange, conn: UpstreamConnection, replay: bytes | None) -> None:
        """Write the request (head and whatever body arrived) to `conn` and stream the rest."""
        ex.upstream = conn
        conn.begin(self, self._out, ex.method == b"HEAD")
        parts = ex.head if replay is None else [replay]
        assert parts is not None
        body_buf = ex.body_buf
        body_sent = bool(body_buf)
        if body_buf:
            if ex.chunked_in:
                for chunk in body_buf:
                    parts += (b"%x\r\n" % len(chunk), chunk, b"\r\n")
            else:
                parts += body_buf
            ex.body_buf = None
            ex.body_size = 0
        if ex.body_complete and ex.chunked_in and not ex.terminated:
            ex.terminated = True
            parts.append(b"0\r\n\r\n")
        data = parts[0] if len(parts) == 1 else b"".join(parts)
        if replay is None and (not body_sent or ex.method in IDEMPOTENT):
            # Kept until the response starts, to resend it if this pooled connection proves dead:
            # safe while the method is idempotent or nothing of the body has gone out yet.
            ex.replay = [data]
            ex.replay_size = len(data)
        ex.forwarding = True
        if not ex.body_complete and not ex.sent_continue and b"expect" in ex.watched:
            self._maybe_continue(ex)
        conn.transport.write(data)
        if self.write_paused:
            conn.pause_reading()
        elif conn.read_paused:
            conn.resume_reading()
        if self.paused & _PAUSE_BUFFER:
            self._resume(_PAUSE_BUFFER)

    def _maybe_continue(self, ex: _Exchange) -> None:
        """Answer `Expect: 100-continue` ourselves (the route is decided), so the client sends its body."""
        if not ex.http10 and b"100-continue" in ex.watched[b"expect"].lower():
            ex.sent_continue = True
            self.transport.write(_CONTINUE)

    # -- ResponseSink: events of the active exchange's upstream response ------------------------

    def upstream_informational(self, conn: UpstreamConnection, status: int, headers: Headers) -> None:
        ex = self.active
        if ex is None or status == 100 or ex.http10 or status == 101:
            return
        parts = [b"HTTP/1.1 %d %s\r\n" % (status, _REASONS.get(status, b"Informational"))]
        for name, lname, value in headers:
            if lname not in HOP_BY_HOP:
                parts += (name, b": ", value, b"\r\n")
        parts.append(b"\r\n")
        self.transport.write(b"".join(parts))

    def upstream_head(self, conn: UpstreamConnection, status: int, headers: Headers) -> None:
        ex = self.active
        if ex is None:
            return
        ex.status = status
        ex.response_started = True
        out = self._out
        out.append(_STATUS_LINES.get(status) or b"HTTP/1.1 %d %s\r\n" % (status, _REASONS.get(status, b"Unknown")))
        # RFC 9112 6.3: with Transfer-Encoding, Content-Length is meaningless and must go.
        has_length = conn.has_length and not conn.chunked
        for name, lname, value in headers:
            if lname in _RESPONSE_SPECIAL:
                if lname == b"location":
                    value = _relative_location(value, ex.upstream_key)
                elif lname != b"content-length" or not has_length:
                    continue
            out += (name, b": ", value, b"\r\n")
        out += (b"X-Request-Tracing-Id: ", ex.request_id, b"\r\n")
        if conn.no_body or has_length:
            pass
        elif ex.http10:
            ex.keep_alive = False
        else:
            conn.chunk_out = True
            out.append(b"Transfer-Encoding: chunked\r\n")
        if not ex.keep_alive or self.closing:
            out.append(b"Connection: close\r\n\r\n")
        elif ex.http10:
            out.append(b"Connection: keep-alive\r\n\r\n")
        else:
            out.append(b"\r\n")

    def upstream_flush(self, conn: UpstreamConnection | None) -> None:
        out = self._out
        if out:
            if not self.closed:
                self.transport.write(b"".join(out))
            out.clear()

    def upstream_end(self, conn: UpstreamConnection, keep_alive: bool) -> None:
        ex = self.active
        if ex is None or ex.upstream is not conn:
            conn.close()
            return
        ex.upstream = None
        out = self._out
        if conn.chunk_out:
            out.append(b"0\r\n\r\n")
        if out:
            if not self.closed:
                self.transport.write(b"".join(out))
            out.clear()
        if keep_alive and ex.body_complete:
            self.server.pool.release(conn)
        else:
            conn.close()
        if self.paused & _PAUSE_UPSTREAM:
            self._resume(_PAUSE_UPSTREAM)
        stats = ex.stats
        if stats is not None:
            seconds = time.perf_counter() - ex.started
            codes = stats.codes
            codes[ex.status] = codes.get(ex.status, 0) + 1
            stats.buckets[bisect_left(BUCKETS, seconds)] += 1
            stats.seconds_sum += seconds
            stats.seconds_count += 1
        self._finish(ex, not ex.keep_alive)

    def upstream_lost(self, conn: UpstreamConnection, exc: BaseException | None) -> None:
        ex = self.active
        if ex is None or ex.upstream is not conn:
            return
        ex.upstream = None
        self._resume(_PAUSE_UPSTREAM)
        if not ex.response_started:
            if conn.reused and not conn.got_bytes and ex.replay is not None and not ex.retried:
                # A pooled connection the job closed as the request arrived (its keep-alive ran out):
                # resend what was written on a fresh connection, as nginx's `proxy_next_upstream
                # error` does. Only kept while safe: an idempotent method, or no body byte sent yet.
                # Body bytes still to come are buffered meanwhile.
                ex.retried = True
                ex.forwarding = False
                replay = b"".join(ex.replay)
                ex.replay = None
                self.server._spawn(self._connect_and_attach(ex, ex.upstream_key, False, replay))
                return
            if isinstance(exc, httptools.HttpParserError):
                cause, detail = "bad_response", f"malformed response from {ex.upstream_key}: {exc}"
            elif conn.got_bytes:
                cause, detail = "connection_broken", f"{ex.upstream_key} closed the connection mid-response (EOF)"
            elif exc is not None:
                cause, detail = "connection_broken", f"connection to {ex.upstream_key} failed: {exc}"
            else:
                cause, detail = "connection_broken", f"{ex.upstream_key} closed the connection before responding (EOF)"
            self._out.clear()
            self._proxy_error(ex, cause, detail)
            return
        # Headers already went out: all we can do is cut the client off so it sees a truncated body.
        self.upstream_flush(conn)
        if ex.stats is not None:
            errors = ex.stats.errors
            errors["connection_broken"] = errors.get("connection_broken", 0) + 1
        ex.finished = True
        self.closing = True
        self.transport.close()

    def upstream_pause_writing(self) -> None:
        self._pause(_PAUSE_UPSTREAM)

    def upstream_resume_writing(self) -> None:
        self._resume(_PAUSE_UPSTREAM)

    # -- answers made by the gateway itself ---------------------------------------------------

    def _proxy_error(self, ex: _Exchange, cause: str, detail: str) -> None:
        payload: dict[str, Any] = {"error": f"Reverse proxy error: {detail}"}
        route = ex.route
        if ex.is_job:
            payload["jobName"] = route.job_name if route else ex.job_name
            payload["jobVersion"] = route.resolved_version if route else ex.job_version
            payload["jobStatus"] = route.status if route else None
            payload["caller"] = route.caller if route else None
            self.server.metrics.count_error(payload["jobName"], payload["jobVersion"], cause)
        self._respond_json(ex, 502, payload)

    def _respond_json(self, ex: _Exchange, status: int, payload: dict[str, Any]) -> None:
        """A JSON answer; error bodies always carry the request's tracing id as `requestId`."""
        if status >= 400:
            payload["requestId"] = ex.request_id.decode("latin-1")
        self._respond(ex, status, _json_body(payload), b"application/json")

    def _respond(self, ex: _Exchange, status: int, body: bytes, content_type: bytes) -> None:
        if ex.finished or self.closed:
            return
        close = not ex.keep_alive or not ex.body_complete or self.closing
        head = b"HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\nX-Request-Tracing-Id: %s\r\n%s\r\n" % (
            status,
            _REASONS.get(status, b"Unknown"),
            content_type,
            len(body),
            ex.request_id,
            b"Connection: close\r\n" if close else (b"Connection: keep-alive\r\n" if ex.http10 else b""),
        )
        self.transport.write(head if ex.method == b"HEAD" else head + body)
        if ex.is_job and ex.job_name:
            stats = ex.stats or self.server.metrics.job(ex.job_name, ex.job_version)
            stats.observe(status, time.perf_counter() - ex.started)
        self._finish(ex, close)

    def _malformed(self, exc: Exception) -> None:
        self._reject(400, f"malformed HTTP request: {exc}")

    def _reject(self, status: int, message: str) -> None:
        """Refuse the request being parsed (400 malformed, 414/431 over a limit); read no more requests."""
        self.closing = True
        active = self.active
        if active is not None:
            self._pause(_PAUSE_BUFFER)
            while len(self.queue) > 1:
                self.queue.pop().finished = True
            self.reading = None
            if active.body_complete:
                return  # the bad bytes came after it: let the request in progress finish
            # The bad bytes are in its body: the job will never get the rest.
            conn = active.upstream
            if conn is not None:
                active.upstream = None
                conn.close()
            if active.response_started:
                active.finished = True
                self.transport.close()
            else:
                self._respond_json(active, 400, {"error": message.replace("request:", "request body:", 1)})
            return
        self.queue.clear()
        self.reading = None
        payload = {"error": message, "type": _ERROR_TYPES[status], "requestId": new_request_id().decode()}
        body = _json_body(payload)
        transport = self.transport
        transport.write(
            b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
            % (status, _REASONS[status], len(body), body)
        )
        if not transport.can_write_eof():
            transport.close()
            return
        # Half-close and drop what the client still sends: closing with unread bytes would reset the
        # connection, and the reset can overtake the answer.
        transport.write_eof()
        self.lingering = 1
        if self.paused:
            self.paused = 0
            transport.resume_reading()

    def _linger(self, size: int) -> None:
        self.lingering += size
        if self.lingering > LINGER_BYTES:
            self.transport.close()

    def _finish(self, ex: _Exchange, close: bool) -> None:
        ex.finished = True
        queue = self.queue
        if queue and queue[0] is ex:
            queue.popleft()
        self.active = None
        self.served += 1
        if self.closed:
            return
        if close or not ex.body_complete or (self.closing and not queue):
            self.closing = True
            self.transport.close()
            return
        if self.paused & _PAUSE_BUFFER:
            self._resume(_PAUSE_BUFFER)
        if queue:
            self._start(queue[0])


def _without_auth_cookie(cookie: bytes) -> bytes:
    """The Cookie header value minus the platform's auth cookie (any capitalisation of its name)."""
    kept = [
        pair
        for pair in cookie.split(b";")
        if pair.strip() and pair.partition(b"=")[0].strip().lower() != COOKIE_NAME.lower().encode()
    ]
    return b";".join(kept).strip()


def _credential_lines(watched: dict[bytes, bytes], token: str | None) -> list[bytes]:
    """The credential headers to send on: all of them (`token` None), or those not carrying `token`.

    With a token, the platform's token headers and auth cookie are left out, and `Authorization`
    too when it is `Bearer <token>`; a job's own credentials (other cookies, other schemes) pass.
    """
    lines: list[bytes] = []
    if token is None:
        for lname, name in _TOKEN_NAMES:
            value = watched.get(lname)
            if value is not None:
                lines += (name, b": ", value, b"\r\n")
    cookie = watched.get(b"cookie")
    if cookie is not None:
        if token is not None and COOKIE_NAME.lower().encode() in cookie.lower():
            cookie = _without_auth_cookie(cookie)
        if cookie:
            lines += (b"Cookie: ", cookie, b"\r\n")
    authorization = watched.get(b"authorization")
    if authorization is not None:
        scheme, _, credentials = authorization.strip().partition(b" ")
        if token is None or scheme.lower() != b"bearer" or credentials.strip().decode("latin-1") != token:
            lines += (b"Authorization: ", authorization, b"\r\n")
    return lines


def _refilter(headers: list[tuple[bytes, bytes]], watched: dict[bytes, bytes]) -> list[bytes]:
    """The rare second pass: also drop the headers the request's Connection header names.

    Only headers that would be copied can go: the framing and every header the gateway sets are
    written by the gateway itself, so `Connection: Content-Length` cannot separate a body from its
    length (request smuggling).
    """
    drop = set(_NOT_FORWARDED)
    drop.update(token.strip().lower() for token in watched[b"connection"].split(b","))
    fwd: list[bytes] = []
    for name, value in headers:
        if name.lower() not in drop:
            fwd += (name, b": ", value, b"\r\n")
    return fwd


class GatewayServer:
    """The gateway's listening socket, its connections, upstream pool and metrics."""

    def __init__(
        self,
        resolver: RouteResolver,
        *,
        fallback_upstream: tuple[str, int] | None = None,
        metrics: GatewayMetrics | None = None,
        pool: UpstreamPool | None = None,
        limits: RequestLimits | None = None,
        trusted_proxies: TrustedProxies | None = None,
        fallback_secret: str | None = None,
        remote_token: str | None = None,
    ) -> None:
        """`fallback_secret` is sent to the fallback upstream (the lifecycle in `trackside up`) as
        `X-Trackside-Gateway`, so it knows the forwarding headers come from the platform's own gateway.
        `remote_token` makes it a remote gateway (remote gateway mode): job calls must carry it as
        `X-Racetrack-Gateway-Token`, as the main gateway sends them."""
        self.resolver = resolver
        self.remote_token = remote_token.encode() if remote_token else None
        self.limits = limits or RequestLimits()
        self.trusted_proxies = trusted_proxies or TrustedProxies()
        self.fallback_secret = fallback_secret.encode() if fallback_secret is not None else None
        self.metrics = metrics or GatewayMetrics()
        self.pool = pool or UpstreamPool()
        self.fallback_key: str | None = None
        if fallback_upstream is not None:
            host, port = fallback_upstream
            self.fallback_key = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        bind = getattr(resolver, "bind_metrics", None)
        if bind is not None:
            bind(self.metrics)
        self._resolve_cached = getattr(resolver, "resolve_cached", None)
        self.async_calls: AsyncCalls | None = None  # `/pub/async/...`, when the platform keeps async calls
        self._round_robin: dict[tuple[str, str], int] = {}
        self._targets: dict[str, JobTarget] = {}
        self._connections: set[_ClientConnection] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._server: asyncio.base_events.Server | None = None
        self._sweeper: asyncio.Task[None] | None = None

    async def start(self, host: str, port: int) -> int:
        """Listen on host:port (0 picks a free port); returns the bound port."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _ClientConnection(self), host, port, backlog=2048, reuse_address=True
        )
        self._sweeper = loop.create_task(self._sweep())
        return int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        if self._sweeper is not None:
            self._sweeper.cancel()
        for conn in list(self._connections):
            conn.transport.close()
        for task in list(self._tasks):
            task.cancel()
        if self.async_calls is not None:
            await self.async_calls.aclose()
        self.pool.close()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None

    def from_main_gateway(self, watched: dict[bytes, bytes]) -> bool:
        """Remote gateway mode: whether the call carries this gateway's token, as the main gateway sends it."""
        sent = watched.get(b"x-racetrack-gateway-token")
        return (
            sent is not None and self.remote_token is not None and hmac.compare_digest(sent.strip(), self.remote_token)
        )

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _sweep(self) -> None:
        """Close idle upstream connections, and client connections idle for CLIENT_IDLE_TIMEOUT."""
        rounds = max(1, int(CLIENT_IDLE_TIMEOUT / SWEEP_INTERVAL))
        while True:
            await asyncio.sleep(SWEEP_INTERVAL)
            self.pool.sweep()
            for conn in list(self._connections):
                if conn.lingering:  # it had a sweep's time to read its answer
                    conn.transport.close()
                    continue
                if conn.active is not None or conn.reading is not None or conn.served != conn.served_at_sweep:
                    conn.served_at_sweep = conn.served
                    conn.idle_sweeps = 0
                    continue
                conn.idle_sweeps += 1
                if conn.idle_sweeps >= rounds:
                    conn.transport.close()


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency except on Windows
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def run_gateway(settings: Settings) -> None:
    """Serve the gateway on settings.host:settings.port until SIGINT/SIGTERM (`trackside serve gateway`)."""

    async def serve() -> None:
        remote_token = settings.gateway_remote_token or None
        resolver = LifecycleResolver(
            settings.lifecycle_url, ttl=settings.gateway_cache_ttl, remote_mode=remote_token is not None
        )
        server = GatewayServer(
            resolver,
            limits=RequestLimits.of(settings),
            trusted_proxies=TrustedProxies(settings.trusted_proxies),
            remote_token=remote_token,
        )
        server.async_calls = AsyncCalls.from_settings(settings, settings.lifecycle_url)
        port = await server.start(settings.host, settings.port)
        local = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
        server.async_calls.bind(f"http://{local}:{port}")
        reporter = CallReporter.from_settings(settings, server.metrics, settings.lifecycle_url)
        reporter.start()
        print(f"trackside gateway listening on http://{settings.host}:{port}/pub", flush=True)
        stopped = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stopped.set)
        try:
            await stopped.wait()
        finally:
            await reporter.stop()
            await server.stop()
            await resolver.aclose()

    with asyncio.Runner(loop_factory=_new_loop) as runner:
        runner.run(serve())
