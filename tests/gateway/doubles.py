"""A test double for a *job*: a real HTTP/1.1 server on loopback, run in a thread.

It stands in for a deployed job behind the gateway (not for any Trackside component): it echoes
what it received and has a few endpoints that misbehave on purpose (slow streams, connections
closed mid-response, absolute redirects). It counts the TCP connections it accepted, so tests can
see whether the gateway reuses upstream connections.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


class JobDouble:
    """An echoing job replica; `name` tells replicas apart in responses."""

    def __init__(self, name: str = "replica") -> None:
        self.name = name
        self.connections = 0
        self.requests: list[dict[str, Any]] = []
        self.release = threading.Event()  # lets /stream?wait=1 send the rest of its body
        self.first_bytes_seen = threading.Event()  # set by /upload-stream after its first read
        self.finished_stream = threading.Event()
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        double = self

        class Handler(_Handler):
            job = double

        self.httpd = _QuietServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.address = f"127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def start(self) -> JobDouble:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def count_connection(self, sock: socket.socket) -> None:
        with self._lock:
            self.connections += 1
            self._sockets.append(sock)

    def drop_connections(self) -> None:
        """Close every accepted connection, as a job does when its keep-alive timeout expires."""
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            self._sockets.clear()


class _QuietServer(ThreadingHTTPServer):
    """Peers that hang up are part of these tests (the gateway drops connections it won't reuse)."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    job: JobDouble

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence per-request logging
        pass

    def setup(self) -> None:
        super().setup()
        self.job.count_connection(self.connection)

    # every method goes through one dispatcher
    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = do_GET

    def _read_body(self, on_chunk: Any = None) -> bytes:
        """Read the request body (Content-Length or chunked) piece by piece."""
        pieces: list[bytes] = []
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                data = self.rfile.read(size)
                self.rfile.readline()
                pieces.append(data)
                if on_chunk:
                    on_chunk(data)
        else:
            remaining = int(self.headers.get("Content-Length") or 0)
            while remaining:
                data = self.rfile.read(min(remaining, 65536))
                if not data:
                    break
                remaining -= len(data)
                pieces.append(data)
                if on_chunk:
                    on_chunk(data)
        return b"".join(pieces)

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _dispatch(self) -> None:
        url = urlsplit(self.path)
        # the job serves under /pub/job/{name}/{version}: look at what follows
        parts = url.path.split("/", 5)
        sub = "/" + parts[5] if len(parts) > 5 else "/"
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        self.job.requests.append({"method": self.command, "path": self.path, "headers": dict(self.headers)})
        if sub == "/stream":
            return self._stream(int(query.get("chunks", "5")), int(query.get("size", "1000")), "wait" in query)
        if sub == "/big":
            return self._big(int(query["size"]))
        if sub == "/upload-stream":
            return self._upload_stream()
        if sub == "/slow-reader":
            self.job.release.wait(10)
            return self._upload_stream()
        if sub == "/close-early":
            self._read_body()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return None
        if sub == "/close-mid":
            self._read_body()
            self.send_response(200)
            self.send_header("Content-Length", "100000")
            self.end_headers()
            self.wfile.write(b"x" * 10)
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return None
        if sub == "/close-delimited":
            self._read_body()
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(b"until the end")
            self.close_connection = True
            return None
        if sub == "/redirect":
            self._read_body()
            host = self.headers.get("Host", "")
            return self._send(
                302,
                b"",
                {"Location": f"http://{host}{url.path.rsplit('/', 1)[0]}/target", "X-Other": "http://elsewhere/x"},
            )
        if sub == "/foreign-redirect":
            self._read_body()
            return self._send(302, b"", {"Location": "http://example.org/somewhere"})
        if sub.startswith("/status/"):
            self._read_body()
            return self._send(int(sub.rsplit("/", 1)[1]), b'{"ok": false}', {"Content-Type": "application/json"})
        body = self._read_body()
        echo = {
            "replica": self.job.name,
            "method": self.command,
            "path": self.path,
            "headers": [[k, v] for k, v in self.headers.items()],
            "body_length": len(body),
            "body_sha256": hashlib.sha256(body).hexdigest(),
            "body": body.decode("utf-8", "replace") if len(body) < 10000 else None,
        }
        return self._send(200, json.dumps(echo).encode(), {"Content-Type": "application/json"})

    def _stream(self, chunks: int, size: int, wait: bool) -> None:
        self._read_body()
        self.send_response(200)
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Content-Type", "application/octet-stream")
        self.end_headers()
        for i in range(chunks):
            piece = bytes([65 + i % 26]) * size
            self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.flush()
            if i == 0 and wait and not self.job.release.wait(10):
                break  # nobody saw the first chunk in time: end early (the test fails on length)
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()
        self.job.finished_stream.set()

    def _big(self, size: int) -> None:
        self._read_body()
        self.send_response(200)
        self.send_header("Content-Length", str(size))
        self.end_headers()
        block = b"0123456789abcdef" * 4096
        sent = 0
        while sent < size:
            piece = block[: min(len(block), size - sent)]
            self.wfile.write(piece)
            sent += len(piece)

    def _upload_stream(self) -> None:
        digest = hashlib.sha256()
        seen = [0]

        def on_chunk(data: bytes) -> None:
            digest.update(data)
            seen[0] += len(data)
            self.job.first_bytes_seen.set()

        started = time.monotonic()
        self._read_body(on_chunk)
        body = json.dumps(
            {"received": seen[0], "sha256": digest.hexdigest(), "seconds": time.monotonic() - started}
        ).encode()
        self._send(200, body, {"Content-Type": "application/json"})


class RawConnection:
    """One connection accepted by a `ScriptedJob`: read requests and write raw bytes, byte for byte."""

    def __init__(self, sock: socket.socket, index: int, job: ScriptedJob) -> None:
        self.sock = sock
        self.index = index
        self.job = job
        self.buf = b""

    def _fill(self) -> bool:
        try:
            chunk = self.sock.recv(65536)
        except OSError:
            return False
        self.buf += chunk
        return bool(chunk)

    def _read_head(self) -> tuple[bytes, dict[str, str]] | None:
        """The next request's line and lower-case headers; None when the peer closed first."""
        while b"\r\n\r\n" not in self.buf:
            if not self._fill():
                return None
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        line, *header_lines = head.split(b"\r\n")
        headers = {}
        for raw in header_lines:
            name, _, value = raw.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        return line, headers

    def _record(self, line: bytes, headers: dict[str, str], body: bytes) -> None:
        with self.job.lock:
            self.job.requests.append((self.index, line, headers, body))

    def read_request(self) -> tuple[bytes, dict[str, str], bytes] | None:
        """(request line, lower-case headers, body) of the next request; None when the peer closed first."""
        read = self._read_head()
        if read is None:
            return None
        line, headers = read
        length = int(headers.get("content-length", "0"))
        while len(self.buf) < length:
            if not self._fill():
                return None
        body, self.buf = self.buf[:length], self.buf[length:]
        self._record(line, headers, body)
        return line, headers, body

    def read_head_only(self) -> tuple[bytes, dict[str, str]] | None:
        """The next request's line and headers, leaving any body unread."""
        read = self._read_head()
        if read is not None:
            self._record(*read, b"")
        return read

    def peer_closed(self) -> bool:
        """Blocks until the peer sends more or closes; True when it closed (EOF or reset)."""
        return not self.buf and not self._fill()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def respond(self, status: int = 200, body: bytes = b"ok", headers: bytes = b"") -> None:
        self.send(b"HTTP/1.1 %d X\r\nContent-Length: %d\r\n%s\r\n%s" % (status, len(body), headers, body))


class ScriptedJob:
    """A job replica that misbehaves exactly as told: `script(conn)` runs for every accepted connection.

    Made for what a well-behaved HTTP server cannot do on purpose: bodies on 204s, bytes after a
    response, closing a kept-alive connection as the next request arrives. It knows the order of
    events on each connection (it reads the next request before misbehaving), so tests built on it
    never depend on timing.
    """

    def __init__(self, script: Any) -> None:
        self.script = script
        self.lock = threading.Lock()
        self.requests: list[tuple[int, bytes, dict[str, str], bytes]] = []
        self.connections = 0
        self._open: list[socket.socket] = []
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port = self._listener.getsockname()[1]
        self.address = f"127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            with self.lock:
                index = self.connections
                self.connections += 1
                self._open.append(sock)
            threading.Thread(target=self._serve, args=(RawConnection(sock, index, self),), daemon=True).start()

    def _serve(self, conn: RawConnection) -> None:
        try:
            self.script(conn)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                conn.sock.shutdown(socket.SHUT_RDWR)
            conn.sock.close()

    def request_lines(self) -> list[bytes]:
        with self.lock:
            return [line for _, line, _, _ in self.requests]

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        self._thread.join(5)
        with self.lock:
            for sock in self._open:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
