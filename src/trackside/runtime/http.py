"""A small HTTP/1.1 server on asyncio Protocols: the job runtime's hot path.

Why hand-written: Racetrack's runner spends most of its time in framework layers (docs/architecture.md,
"Hot paths"); a raw asyncio server answers a small JSON POST in ~17 us of CPU. This
module parses only what the runtime needs (request line, headers, Content-Length or chunked
bodies), answers requests of one connection strictly in order (so pipelining is safe: the next
request is parsed only after the previous response is written) and writes each response with
one `transport.write`. It must stay stdlib-only: it runs inside the job's own virtualenv.

A request head is bounded (`HeadLimits`, from the JOB_MAX_* settings): a URL over the limit is
answered 414, more header lines or a longer head 431, as soon as the buffered bytes prove it, so
an endless head is never read to its end; the search for the head's end resumes where the last
one stopped, so a head arriving in many small pieces costs linear time. After refusing a request
the connection is half-closed and the rest of what the client sends is discarded for a while
(a "lingering close", as nginx does), so the client reads the answer instead of a reset.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from email.utils import formatdate
from typing import Any, Union, cast
from urllib.parse import unquote

MAX_BODY_BYTES = 256 * 1024 * 1024
HIGH_WATER = 1024 * 1024  # pause reading while a request runs and this much is buffered
LINGER_BYTES = 1024 * 1024  # after refusing a request, discard at most this much more, then close
LINGER_SECONDS = 5.0
# A request line holds the URL plus at most this much: method, two spaces, "HTTP/1.1".
_LINE_OVERHEAD = 32

REASONS = {
    100: "Continue",
    200: "OK",
    201: "Created",
    202: "Accepted",
    204: "No Content",
    301: "Moved Permanently",
    302: "Found",
    304: "Not Modified",
    307: "Temporary Redirect",
    308: "Permanent Redirect",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    411: "Length Required",
    413: "Content Too Large",
    414: "URI Too Long",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    505: "HTTP Version Not Supported",
}

_COMMON = b"server: trackside-job\r\naccess-control-allow-origin: *\r\n"
_STATUS_LINES: dict[int, bytes] = {}
JSON = b"application/json"
_HEX = b"0123456789abcdefABCDEF"


def status_line(status: int) -> bytes:
    """`HTTP/1.1 <status> <reason>` plus the headers every response carries, cached per status."""
    line = _STATUS_LINES.get(status)
    if line is None:
        reason = REASONS.get(status, "Unknown")
        line = f"HTTP/1.1 {status} {reason}\r\n".encode("latin-1") + _COMMON
        _STATUS_LINES[status] = line
    return line


class _Clock:
    """The `date:` header line, recomputed at most once a second."""

    second = 0
    line = b""

    @classmethod
    def date_line(cls) -> bytes:
        now = int(time.time())
        if now != cls.second:
            cls.second = now
            cls.line = b"date: " + formatdate(now, usegmt=True).encode("ascii") + b"\r\n"
        return cls.line


class Response:
    """What a handler returns: status, content type, body and optional extra headers."""

    __slots__ = ("status", "content_type", "body", "headers")

    def __init__(
        self,
        status: int,
        body: bytes = b"",
        content_type: bytes = JSON,
        headers: list[tuple[str, str]] | None = None,
    ) -> None:
        self.status = status
        self.body = body
        self.content_type = content_type
        self.headers = headers


class Request:
    """One parsed request. `base` and `route` are set by the router (`/pub/job/x/1` + `/live`)."""

    __slots__ = (
        "method",
        "target",
        "path",
        "query",
        "version",
        "headers",
        "body",
        "keep_alive",
        "base",
        "route",
        "endpoint",
        "started",
    )

    def __init__(self, method: str, target: str, version: str, headers: dict[str, str], body: bytes) -> None:
        self.method = method
        self.target = target
        qpos = target.find("?")
        if qpos >= 0:
            path, self.query = target[:qpos], target[qpos + 1 :]
        else:
            path, self.query = target, ""
        self.path = unquote(path) if "%" in path else path
        self.version = version
        self.headers = headers
        self.body = body
        conn = headers.get("connection", "").lower()
        if version == "HTTP/1.1":
            self.keep_alive = "close" not in conn
        else:
            self.keep_alive = "keep-alive" in conn
        self.base = ""
        self.route = self.path
        self.endpoint: str | None = None
        self.started = 0.0


Handled = Union[Response, "asyncio.Future[Response]"]
Handler = Callable[[Request], Handled]


class HeadLimits:
    """Bounds on a request head: URL bytes (414), whole head bytes and header lines (431)."""

    __slots__ = ("max_url_bytes", "max_head_bytes", "max_headers")

    def __init__(self, max_url_bytes: int = 16 * 1024, max_head_bytes: int = 64 * 1024, max_headers: int = 100) -> None:
        self.max_url_bytes = max_url_bytes
        self.max_head_bytes = max_head_bytes
        self.max_headers = max_headers


_ERROR_TYPES = {414: "RequestUriTooLong", 431: "RequestHeaderFieldsTooLarge", 413: "ContentTooLarge"}


class BadRequest(Exception):
    """A malformed request: answered with `status` and the connection is closed."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status
        self.type_name = _ERROR_TYPES.get(status, "BadRequest")


_FRAMING = frozenset({"content-length", "transfer-encoding", "connection"})
_LINE_BREAKS = str.maketrans("\r\n", "  ")


def encode_response(resp: Response, keep_alive: bool, head_only: bool, tracing_id: str | None) -> bytes:
    """Serialise a response; the common prefix is cached, the rest is a few concatenations."""
    body = resp.body
    out = status_line(resp.status) + _Clock.date_line()
    if resp.status == 204 or resp.status == 304:
        body = b""  # these never carry a body, nor a Content-Length (RFC 9110 8.6)
    else:
        out += b"content-type: " + resp.content_type + b"\r\ncontent-length: " + str(len(body)).encode() + b"\r\n"
    if resp.headers:
        for name, value in resp.headers:
            if name.lower() in _FRAMING:
                continue  # the framing is the runtime's own, written above
            line = f"{name}: {value}"
            if "\r" in line or "\n" in line:  # a value taken from the request: keep it on its line
                line = line.translate(_LINE_BREAKS)
            out += (line + "\r\n").encode("latin-1", "replace")
    if tracing_id is not None:
        if "\r" in tracing_id or "\n" in tracing_id:
            tracing_id = tracing_id.translate(_LINE_BREAKS)
        out += b"x-request-tracing-id: " + tracing_id.encode("latin-1", "replace") + b"\r\n"
    if not keep_alive:
        out += b"connection: close\r\n"
    out += b"\r\n"
    if head_only:
        return out
    return out + body


def _error_body(message: str, type_name: str) -> bytes:
    import json

    return json.dumps({"error": message, "type": type_name}).encode()


class HttpProtocol(asyncio.Protocol):
    """One connection. Requests are parsed from `_buf` and answered one at a time, in order."""

    __slots__ = (
        "_handler",
        "_server",
        "_transport",
        "_buf",
        "_busy",
        "_closed",
        "_write_paused",
        "_read_paused",
        "_head",
        "_chunks",
        "_chunk_need",
        "_sent_continue",
        "_on_done_cb",
        "_current",
        "_limits",
        "_scanned",
        "_lingering",
    )

    def __init__(self, handler: Handler, server: ServerState) -> None:
        self._handler = handler
        self._server = server
        self._transport: asyncio.Transport | None = None
        self._buf = bytearray()
        self._busy = False
        self._closed = False
        self._write_paused = False
        self._read_paused = False
        # A head parsed but whose body has not fully arrived: (method, target, version, headers,
        # content_length or -1 for chunked).
        self._head: tuple[str, str, str, dict[str, str], int] | None = None
        self._chunks: list[bytes] = []
        self._chunk_need = -1  # chunked decoder: bytes of chunk data still expected, -1 = size line
        self._sent_continue = False
        self._current: Request | None = None
        self._on_done_cb = self._on_done
        self._limits = server.limits
        self._scanned = 0  # how far the search for the head's end got in `_buf`
        self._lingering = 0  # bytes discarded after a refusal, +1; 0 when not lingering

    # asyncio callbacks ------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's aren't asyncio subclasses
        self._server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._server.connections.discard(self)
        self._transport = None

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        self._process()

    def data_received(self, data: bytes) -> None:
        if self._busy or self._write_paused:
            if self._lingering:
                self._linger(len(data))
                return
            self._buf += data
            if len(self._buf) > HIGH_WATER and not self._read_paused and self._transport is not None:
                self._read_paused = True
                self._transport.pause_reading()
            return
        self._buf += data
        self._process()

    # state ------------------------------------------------------------------------------------
    @property
    def idle(self) -> bool:
        """No request in progress and nothing half-received (or only lingering): safe to close on shutdown."""
        return self._lingering > 0 or (not self._busy and self._head is None and not self._buf)

    def close(self) -> None:
        if self._transport is not None and not self._closed:
            self._closed = True
            self._transport.close()

    # parsing ----------------------------------------------------------------------------------
    def _process(self) -> None:
        try:
            while not self._busy and not self._closed and not self._write_paused and self._buf:
                req = self._parse_one()
                if req is None:
                    break
                self._dispatch(req)
        except BadRequest as exc:
            self._fail(exc)
        if self._read_paused and not self._busy and self._transport is not None and not self._closed:
            self._read_paused = False
            self._transport.resume_reading()

    def _parse_one(self) -> Request | None:
        buf = self._buf
        if self._head is None:
            scanned = self._scanned
            end = buf.find(b"\r\n\r\n", scanned - 3 if scanned > 3 else 0)
            if end < 0:
                self._incomplete_head()
                return None
            self._scanned = 0
            start = 0
            while buf.startswith(b"\r\n", start):
                start += 2
            if end < start:  # only empty lines so far
                del buf[:start]
                return None
            if end + 4 - start > self._limits.max_head_bytes:
                raise BadRequest(f"request head is over the limit of {self._limits.max_head_bytes} bytes", 431)
            head = bytes(buf[start:end])
            del buf[: end + 4]
            self._head = self._parse_head(head, self._limits)
            self._sent_continue = False
        method, target, version, headers, length = self._head
        if length == 0:
            body = b""
        elif length > 0:
            if len(buf) < length:
                self._maybe_continue(headers, version)
                return None
            body = bytes(buf[:length])
            del buf[:length]
        else:
            done = self._decode_chunked()
            if not done:
                self._maybe_continue(headers, version)
                return None
            body = b"".join(self._chunks)
            self._chunks = []
        self._head = None
        return Request(method, target, version, headers, body)

    def _incomplete_head(self) -> None:
        """No complete head buffered yet: refuse as soon as the bytes prove it is over a limit."""
        buf = self._buf
        if buf.startswith(b"\r\n"):  # tolerated empty lines between pipelined requests
            del buf[:2]
            self._scanned = 0
            return
        limits = self._limits
        size = len(buf)
        if size >= limits.max_url_bytes + _LINE_OVERHEAD and buf.find(b"\r\n", 0, size) < 0:
            raise BadRequest(f"request URL is over the limit of {limits.max_url_bytes} bytes", 414)
        if size >= limits.max_head_bytes:
            raise BadRequest(f"request head is over the limit of {limits.max_head_bytes} bytes", 431)
        self._scanned = size

    @staticmethod
    def _parse_head(head: bytes, limits: HeadLimits) -> tuple[str, str, str, dict[str, str], int]:
        try:
            text = head.decode("latin-1")
        except UnicodeDecodeError as exc:  # pragma: no cover - latin-1 decodes any byte
            raise BadRequest("undecodable request head") from exc
        lines = text.split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3:
            raise BadRequest(f"malformed request line: {lines[0][:100]!r}")
        method, target, version = parts
        if not method or not method.isalpha() or not method.isupper():
            raise BadRequest(f"malformed method in request line: {method[:40]!r}")
        if version != "HTTP/1.1" and version != "HTTP/1.0":
            if version.startswith("HTTP/"):
                raise BadRequest(f"unsupported HTTP version {version[:20]!r}", 505)
            raise BadRequest(f"malformed request line: {lines[0][:100]!r}")
        if len(target) > limits.max_url_bytes:
            raise BadRequest(f"request URL is over the limit of {limits.max_url_bytes} bytes", 414)
        if not target or (target[0] != "/" and target != "*"):
            if target.startswith(("http://", "https://")):  # absolute-form: keep the path
                slash = target.find("/", target.find("//") + 2)
                target = target[slash:] if slash > 0 else "/"
            else:
                raise BadRequest(f"malformed request target: {target[:100]!r}")
        if len(lines) - 1 > limits.max_headers:
            raise BadRequest(f"more than {limits.max_headers} header lines in the request", 431)
        headers: dict[str, str] = {}
        for line in lines[1:]:
            colon = line.find(":")
            if colon <= 0 or line[0] in " \t" or line[colon - 1] in " \t":
                raise BadRequest(f"malformed header line: {line[:100]!r}")
            name = line[:colon].lower()
            value = line[colon + 1 :].strip(" \t")
            if name in headers:
                headers[name] = headers[name] + ", " + value
            else:
                headers[name] = value
        if version == "HTTP/1.1" and "host" not in headers:
            raise BadRequest("missing Host header (required by HTTP/1.1)")
        te = headers.get("transfer-encoding")
        if te is not None:
            if "content-length" in headers:
                raise BadRequest("both Transfer-Encoding and Content-Length are set")
            if te.lower().replace(" ", "").split(",")[-1] != "chunked":
                raise BadRequest(f"unsupported Transfer-Encoding {te!r}", 501)
            return method, target, version, headers, -1
        cl = headers.get("content-length")
        if cl is None:
            return method, target, version, headers, 0
        if not cl.isdigit():
            raise BadRequest(f"malformed Content-Length {cl[:40]!r}")
        length = int(cl)
        if length > MAX_BODY_BYTES:
            raise BadRequest(f"request body of {length} bytes is over the limit of {MAX_BODY_BYTES}", 413)
        return method, target, version, headers, length

    def _maybe_continue(self, headers: dict[str, str], version: str) -> None:
        if (
            not self._sent_continue
            and version == "HTTP/1.1"
            and headers.get("expect", "").lower() == "100-continue"
            and self._transport is not None
        ):
            self._sent_continue = True
            self._transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def _decode_chunked(self) -> bool:
        """Consume complete chunks from the buffer; True once the last chunk and trailers are in."""
        buf = self._buf
        while True:
            if self._chunk_need < 0:
                eol = buf.find(b"\r\n")
                if eol < 0:
                    if len(buf) > 4096:
                        raise BadRequest("malformed chunk size line")
                    return False
                size_text = bytes(buf[:eol]).split(b";", 1)[0].strip(b" \t")
                if not size_text or size_text.strip(_HEX):
                    raise BadRequest(f"malformed chunk size {size_text[:20]!r}")
                size = int(size_text, 16)
                if size == 0:
                    # Last chunk: trailers (ignored) end with an empty line.
                    end = buf.find(b"\r\n\r\n", eol)
                    if end < 0:
                        if len(buf) > self._limits.max_head_bytes:
                            raise BadRequest("chunked trailers too large", 431)
                        return False
                    del buf[: end + 4]
                    return True
                total = sum(len(c) for c in self._chunks) + size
                if total > MAX_BODY_BYTES:
                    raise BadRequest(f"request body is over the limit of {MAX_BODY_BYTES} bytes", 413)
                del buf[: eol + 2]
                self._chunk_need = size
            need = self._chunk_need
            if len(buf) < need + 2:
                return False
            if buf[need : need + 2] != b"\r\n":
                raise BadRequest("chunk data not followed by CRLF")
            self._chunks.append(bytes(buf[:need]))
            del buf[: need + 2]
            self._chunk_need = -1

    # dispatch ---------------------------------------------------------------------------------
    def _dispatch(self, req: Request) -> None:
        self._busy = True
        self._current = req
        try:
            result = self._handler(req)
        except Exception as exc:  # a bug in the runtime itself: never kill the connection loop
            result = _internal_error(exc)
        if isinstance(result, Response):
            self._finish(req, result)
        else:
            result.add_done_callback(self._on_done_cb)

    def _on_done(self, fut: asyncio.Future[Response]) -> None:
        req = self._current
        assert req is not None
        if fut.cancelled():
            resp = Response(503, _error_body("request cancelled (server shutting down)", "Unavailable"))
        else:
            exc = fut.exception()
            resp = _internal_error(exc) if exc is not None else fut.result()
        self._finish(req, resp)
        self._process()

    def _finish(self, req: Request, resp: Response) -> None:
        self._server.on_response(req, resp)
        self._busy = False
        self._current = None
        keep_alive = req.keep_alive and not self._server.stopping
        if self._transport is None or self._closed:
            return
        data = encode_response(resp, keep_alive, req.method == "HEAD", req.headers.get("x-request-tracing-id"))
        self._transport.write(data)
        if not keep_alive:
            self.close()

    def _fail(self, exc: BadRequest) -> None:
        """Answer a malformed request and close: the stream can't be trusted after it.

        Closing with unread bytes in the socket makes the kernel send a reset, which can reach the
        client before our answer: half-close instead, discard what still comes, then close.
        """
        self._head = None
        self._buf.clear()
        transport = self._transport
        if transport is None or self._closed:
            return
        body = _error_body(str(exc), exc.type_name)
        transport.write(encode_response(Response(exc.status, body), False, False, None))
        if not transport.can_write_eof():
            self.close()
            return
        transport.write_eof()
        self._busy = True  # nothing more is parsed on this connection
        self._lingering = 1
        if self._read_paused:
            self._read_paused = False
            transport.resume_reading()
        asyncio.get_running_loop().call_later(LINGER_SECONDS, self.close)

    def _linger(self, size: int) -> None:
        self._lingering += size
        if self._lingering > LINGER_BYTES:
            self.close()


def _internal_error(exc: BaseException) -> Response:
    print(f"trackside runtime: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
    return Response(500, _error_body(f"{type(exc).__name__}: {exc}", "InternalError"))


class ServerState:
    """What all connections share: open connections, the shutdown flag, a response hook, head limits."""

    def __init__(self, on_response: Callable[[Request, Response], Any], limits: HeadLimits | None = None) -> None:
        self.connections: set[HttpProtocol] = set()
        self.stopping = False
        self.on_response = on_response
        self.limits = limits or HeadLimits()

    def busy_connections(self) -> int:
        return sum(1 for c in self.connections if not c.idle)

    def close_idle(self) -> None:
        for conn in list(self.connections):
            if conn.idle:
                conn.close()
