"""Connections from the gateway to jobs: a response-parsing protocol and a keep-alive pool.

Each `UpstreamConnection` parses responses with httptools and hands the events to whoever is
using it (a `ResponseSink`, the client connection being served) as they arrive, so bodies stream
and nothing is buffered whole. Idle connections wait in a per-"host:port" LIFO stack: the most
recently used one is the least likely to have been closed by the job's keep-alive timeout, and
connections idle longer than `idle_timeout` (kept below uvicorn's 5 s default) are not reused.

A connection goes back to the pool only when its last response's framing can be trusted, so the
next response read from it starts where it should: not after a response that announced a body it
cannot have (Content-Length or chunked on a 204, 304 or HEAD answer: the body may still come),
not when any byte followed the response's end in the same read, not when bytes arrive while it
idles, not after a response without a length (it ends with the connection), and not after a 500
(an app server that crashed on a request, as uvicorn does, closes the connection right after).
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

import httptools

# (name as sent, lower-case name, value)
Headers = list[tuple[bytes, bytes, bytes]]


class ResponseSink(Protocol):
    """Receives one upstream response; the connection calls it only while the response is in flight.

    Body bytes skip the sink's methods: the connection appends them (chunk-framed when
    `chunk_out` is set) to the `out` list given to `begin`, and calls `upstream_flush` after each
    read, so one read from the job becomes one write to the client.
    """

    def upstream_informational(self, conn: UpstreamConnection, status: int, headers: Headers) -> None: ...

    def upstream_head(self, conn: UpstreamConnection, status: int, headers: Headers) -> None: ...

    def upstream_flush(self, conn: UpstreamConnection) -> None: ...

    def upstream_end(self, conn: UpstreamConnection, keep_alive: bool) -> None: ...

    def upstream_lost(self, conn: UpstreamConnection, exc: BaseException | None) -> None: ...

    def upstream_pause_writing(self) -> None: ...

    def upstream_resume_writing(self) -> None: ...


class UpstreamConnection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection to a job replica, serving one request at a time."""

    def __init__(self, pool: UpstreamPool, key: str) -> None:
        self.pool = pool
        self.key = key
        self.transport: asyncio.Transport = None  # type: ignore[assignment]  # set in connection_made
        self.sink: ResponseSink | None = None
        self.out: list[bytes] = []
        self.chunk_out = False
        self.parser = httptools.HttpResponseParser(self)
        self.headers: Headers = []
        self.status = 0
        self.got_bytes = False
        self.head_done = False
        self.done = True
        self.ended: ResponseSink | None = None  # the sink of a response that ended in the read being parsed
        self.reuse = False  # keep-alive, and the framing of the response can be trusted
        self.trusted = True
        self.stray = False  # bytes came after the end of the response
        self.length = b""
        self.no_body = False
        self.head_request = False
        self.close_delimited = False
        self.has_length = False
        self.chunked = False
        self.informational = False
        self.reused = False
        self.in_pool = False
        self.closed = False
        self.read_paused = False
        self.idle_since = 0.0

    # -- used by the client side --------------------------------------------------------------

    def begin(self, sink: ResponseSink, out: list[bytes], head_request: bool) -> None:
        """Attach the sink that receives the response to the request about to be written."""
        self.sink = sink
        self.out = out
        self.chunk_out = False
        self.head_request = head_request
        self.got_bytes = False
        self.head_done = False
        self.done = False
        self.headers = []
        self.has_length = False
        self.chunked = False
        self.trusted = True

    def detach(self) -> None:
        self.sink = None

    def pause_reading(self) -> None:
        if not self.read_paused and not self.closed:
            self.read_paused = True
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.read_paused and not self.closed:
            self.read_paused = False
            self.transport.resume_reading()

    def close(self) -> None:
        self.sink = None
        if not self.closed:
            self.transport.close()

    # -- asyncio.Protocol ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        sink = self.sink
        if sink is None:
            # Bytes on an idle connection (or after the response we wanted): it is out of sync.
            self.transport.close()
            return
        self.got_bytes = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            ended = self.ended
            if ended is not None:  # garbage after a complete response: deliver it, drop the connection
                self.ended = None
                ended.upstream_end(self, False)
                return
            sink = self.sink
            self.sink = None
            self.transport.close()
            if sink is not None and not self.done:
                sink.upstream_lost(self, exc)
            return
        # The response's end is handed on only now, once this whole read is parsed: whatever came
        # after it decides whether the connection may be reused, and nobody can reuse it meanwhile.
        ended = self.ended
        if ended is not None:
            self.ended = None
            ended.upstream_end(self, self.reuse and not self.stray)
            return
        sink = self.sink
        if sink is not None:
            sink.upstream_flush(self)

    def eof_received(self) -> bool | None:
        return False  # close our side too; connection_lost settles a close-delimited body

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.in_pool:
            self.pool.discard(self)
        sink = self.sink
        self.sink = None
        if sink is None or self.done:
            return
        if self.head_done and self.close_delimited:
            self.done = True
            sink.upstream_end(self, False)
        else:
            sink.upstream_lost(self, exc)

    def pause_writing(self) -> None:
        if self.sink is not None:
            self.sink.upstream_pause_writing()

    def resume_writing(self) -> None:
        if self.sink is not None:
            self.sink.upstream_resume_writing()

    # -- httptools callbacks ------------------------------------------------------------------

    def on_message_begin(self) -> None:
        if self.done:
            self.stray = True  # a second response to one request

    def on_header(self, name: bytes, value: bytes) -> None:
        lname = name.lower()
        self.headers.append((name, lname, value))
        if lname == b"content-length":
            self.has_length = True
            self.length = value
        elif lname == b"transfer-encoding":
            self.chunked = True

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        self.status = status
        sink = self.sink
        if sink is None:
            self.stray = True
            return
        if status < 200:
            self.informational = True
            sink.upstream_informational(self, status, self.headers)
            self.headers = []
            self.has_length = False
            self.chunked = False
            return
        self.head_done = True
        no_body = self.no_body = self.head_request or status in (204, 304)
        self.close_delimited = not no_body and not self.has_length and not self.chunked
        # A bodiless answer that announces a body may still send it: its framing can't be trusted.
        self.trusted = status != 500 and not (
            no_body and (self.chunked or (self.has_length and self.length.strip() != b"0"))
        )
        sink.upstream_head(self, status, self.headers)
        if self.head_request and self.sink is not None:
            # httptools cannot be told a response has no body, so a HEAD response's Content-Length
            # would make it wait for bytes that never come: end here and start a fresh parser (the
            # old one goes on with the rest of this read, so any bytes in it count as stray).
            self.reuse = self.parser.should_keep_alive() and self.trusted
            self.parser = httptools.HttpResponseParser(self)
            self._ended()

    def on_body(self, body: bytes) -> None:
        if self.sink is not None:
            if self.chunk_out:
                self.out += (b"%x\r\n" % len(body), body, b"\r\n")
            else:
                self.out.append(body)
        elif self.done:
            self.stray = True

    def on_message_complete(self) -> None:
        if self.informational:
            self.informational = False
            return
        if not self.done:
            self.reuse = self.parser.should_keep_alive() and self.trusted
            self._ended()

    def _ended(self) -> None:
        """The response is complete; data_received hands it on once the read is parsed."""
        self.done = True
        self.ended = self.sink
        self.sink = None


def split_host_port(key: str) -> tuple[str, int]:
    """ "host:port" or "[v6]:port" -> (host, port); ValueError names the bad address."""
    host, sep, port = key.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"upstream address {key!r} is not host:port")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port)


class UpstreamPool:
    """Idle keep-alive connections per "host:port", reused most-recent-first."""

    def __init__(
        self, *, max_idle_per_host: int = 64, idle_timeout: float = 4.0, connect_timeout: float = 10.0
    ) -> None:
        self.max_idle_per_host = max_idle_per_host
        self.idle_timeout = idle_timeout
        self.connect_timeout = connect_timeout
        self._idle: dict[str, list[UpstreamConnection]] = {}
        self.connections_made = 0

    def acquire_nowait(self, key: str) -> UpstreamConnection | None:
        stack = self._idle.get(key)
        if not stack:
            return None
        now = time.monotonic()
        while stack:
            conn = stack.pop()
            conn.in_pool = False
            if conn.closed or conn.transport.is_closing():
                continue
            if now - conn.idle_since > self.idle_timeout:
                # Everything below it in the stack is older still.
                conn.close()
                for older in stack:
                    older.in_pool = False
                    older.close()
                stack.clear()
                return None
            conn.reused = True
            return conn
        return None

    async def connect(self, key: str) -> UpstreamConnection:
        """A fresh connection; raises OSError or TimeoutError."""
        host, port = split_host_port(key)
        loop = asyncio.get_running_loop()
        _, conn = await asyncio.wait_for(
            loop.create_connection(lambda: UpstreamConnection(self, key), host, port), self.connect_timeout
        )
        self.connections_made += 1
        return conn

    def release(self, conn: UpstreamConnection) -> None:
        """Return a connection whose response is complete; it is closed when the stack is full."""
        conn.sink = None
        if conn.closed:
            return
        if conn.read_paused:
            conn.resume_reading()
        stack = self._idle.get(conn.key)
        if stack is None:
            stack = self._idle[conn.key] = []
        if len(stack) >= self.max_idle_per_host:
            conn.close()
            return
        conn.idle_since = time.monotonic()
        conn.in_pool = True
        stack.append(conn)

    def discard(self, conn: UpstreamConnection) -> None:
        conn.in_pool = False
        stack = self._idle.get(conn.key)
        if stack and conn in stack:
            stack.remove(conn)

    def idle_count(self, key: str) -> int:
        return len(self._idle.get(key, ()))

    def sweep(self) -> None:
        """Close connections idle longer than `idle_timeout` (called periodically)."""
        deadline = time.monotonic() - self.idle_timeout
        for stack in self._idle.values():
            stale = [c for c in stack if c.idle_since < deadline]
            for conn in stale:
                stack.remove(conn)
                conn.in_pool = False
                conn.close()

    def close(self) -> None:
        for stack in self._idle.values():
            for conn in stack:
                conn.in_pool = False
                conn.close()
        self._idle.clear()


class BufferedResponse:
    """A `ResponseSink` that keeps one whole response: for callers that want the answer, not a stream
    (the pipeline scheduler's `call` steps, which reach the gateway over this same lean client: httpx
    cost about 1 ms of CPU per call there, several times what the request itself needs)."""

    def __init__(self) -> None:
        self.status = 0
        self.headers: Headers = []
        self.body: list[bytes] = []
        self.done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

    def upstream_informational(self, conn: UpstreamConnection, status: int, headers: Headers) -> None:
        pass

    def upstream_head(self, conn: UpstreamConnection, status: int, headers: Headers) -> None:
        self.status = status
        self.headers = headers

    def upstream_flush(self, conn: UpstreamConnection) -> None:
        pass

    def upstream_end(self, conn: UpstreamConnection, keep_alive: bool) -> None:
        if not self.done.done():
            self.done.set_result(keep_alive)

    def upstream_lost(self, conn: UpstreamConnection, exc: BaseException | None) -> None:
        if not self.done.done():
            self.done.set_exception(ConnectionError(f"the connection closed mid-response: {exc or 'no reason given'}"))

    def upstream_pause_writing(self) -> None:
        pass

    def upstream_resume_writing(self) -> None:
        pass

    def header(self, lname: bytes) -> bytes | None:
        return next((value for _, name, value in self.headers if name == lname), None)


async def send_buffered(pool: UpstreamPool, key: str, request: bytes, head_request: bool = False) -> BufferedResponse:
    """Write one whole request (head and body) to `key` over a pooled connection; the whole answer.

    A reused connection that closes before answering a byte was closed idle by the server: the
    request is written once more on a fresh connection (nothing of it was processed). Raises OSError,
    TimeoutError or ConnectionError."""
    conn = pool.acquire_nowait(key)
    for _ in range(2):
        if conn is None:
            conn = await pool.connect(key)
        response = BufferedResponse()
        conn.begin(response, response.body, head_request)
        conn.transport.write(request)
        try:
            keep_alive = await response.done
        except ConnectionError:
            if conn.reused and not conn.got_bytes:
                conn = None
                continue
            raise
        except BaseException:
            conn.close()  # cancelled mid-response: its framing is lost
            raise
        if keep_alive:
            pool.release(conn)
        else:
            conn.close()
        return response
    raise ConnectionError("the connection closed before answering")  # unreachable: a fresh one is never reused
