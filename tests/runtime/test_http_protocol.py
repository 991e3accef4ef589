"""The runtime's own HTTP/1.1 server: keep-alive, pipelining, chunked bodies, 100-continue, errors."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import httpx
from tests.runtime.harness import RunningJob


class Conn:
    """A raw client connection that reads responses one at a time (Content-Length framed)."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.buf = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self) -> bool:
        chunk = self.sock.recv(65536)
        self.buf += chunk
        return bool(chunk)

    def read_response(self, head_only: bool = False) -> tuple[int, dict[str, str], bytes]:
        while b"\r\n\r\n" not in self.buf:
            assert self._fill(), f"connection closed before a response; got {self.buf!r}"
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
        length = 0 if head_only or status in (100, 204) else int(headers.get("content-length", "0"))
        while len(self.buf) < length:
            assert self._fill(), "connection closed mid-body"
        body, self.buf = self.buf[:length], self.buf[length:]
        return status, headers, body

    def closed_by_server(self) -> bool:
        """True once the server closed the connection; our end is closed then too."""
        try:
            closed = not self._fill() and not self.buf
        except ConnectionResetError:
            closed = True
        if closed:
            self.close()
        return closed

    def close(self) -> None:
        self.sock.close()


def post(path: str, body: bytes, extra: str = "") -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n{extra}\r\n"
    ).encode() + body


def test_keep_alive_serves_many_requests_on_one_connection(adder: RunningJob) -> None:
    conn = Conn(adder.port)
    for i in range(5):
        conn.send(post("/api/v1/perform", json.dumps({"a": i, "b": 1}).encode()))
        status, headers, body = conn.read_response()
        assert (status, json.loads(body)) == (200, i + 1)
        assert "connection" not in headers
    conn.close()


def test_httpx_client_reuses_its_connection(adder: RunningJob) -> None:
    ports = set()
    with httpx.Client(base_url=adder.url) as client:
        for _ in range(3):
            resp = client.post("/api/v1/perform", json={"a": 1}, extensions={})
            assert resp.status_code == 200
            stream = resp.extensions["network_stream"]
            ports.add(stream.get_extra_info("socket").getsockname()[1])
    assert len(ports) == 1


def test_pipelined_requests_are_answered_in_order(adder: RunningJob) -> None:
    conn = Conn(adder.port)
    batch = b"".join(post("/api/v1/perform", json.dumps({"a": i}).encode()) for i in range(10))
    batch += b"GET /live HTTP/1.1\r\nHost: x\r\n\r\n"
    conn.send(batch)
    answers = [json.loads(conn.read_response()[2]) for _ in range(10)]
    assert answers == list(range(10))
    assert json.loads(conn.read_response()[2])["live"] is True
    conn.close()


def test_request_split_across_packets_is_reassembled(adder: RunningJob) -> None:
    conn = Conn(adder.port)
    data = post("/api/v1/perform", b'{"a": 20, "b": 22}')
    for i in range(0, len(data), 7):
        conn.send(data[i : i + 7])
    status, _, body = conn.read_response()
    assert (status, body) == (200, b"42")
    conn.close()


def test_chunked_request_body(adder: RunningJob) -> None:
    conn = Conn(adder.port)
    conn.send(
        b"POST /api/v1/perform HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b'5\r\n{"a":\r\n'
        b'a;ext=1\r\n 30, "b": \r\n'
    )
    conn.send(b"3\r\n12}\r\n0\r\nX-Trailer: yes\r\n\r\n")
    status, _, body = conn.read_response()
    assert (status, body) == (200, b"42")
    # The connection stays usable after a chunked body.
    conn.send(post("/api/v1/perform", b'{"a": 1}'))
    assert conn.read_response()[2] == b"1"
    conn.close()


def test_chunked_body_from_httpx_generator(adder: RunningJob) -> None:
    def parts() -> Iterator[bytes]:
        yield b'{"a": 2,'
        yield b' "b": 3}'

    resp = httpx.post(f"{adder.url}/api/v1/perform", content=parts())
    assert resp.json() == 5


def test_expect_100_continue_gets_interim_response(adder: RunningJob) -> None:
    conn = Conn(adder.port)
    body = b'{"a": 3, "b": 4}'
    head = post("/api/v1/perform", b"", "Expect: 100-continue\r\n")
    conn.send(head.replace(b"Content-Length: 0", b"Content-Length: 16"))
    status, _, _ = conn.read_response()
    assert status == 100
    conn.send(body)
    status, _, answer = conn.read_response()
    assert (status, answer) == (200, b"7")
    conn.close()


def test_head_returns_headers_without_body(adder: RunningJob) -> None:
    conn = Conn(adder.port)
    conn.send(b"HEAD /health HTTP/1.1\r\nHost: x\r\n\r\n")
    status, headers, _ = conn.read_response(head_only=True)
    assert status == 200
    assert int(headers["content-length"]) > 10
    conn.send(b"GET /live HTTP/1.1\r\nHost: x\r\n\r\n")  # nothing stray was sent after the head
    status, _, body = conn.read_response()
    assert status == 200 and json.loads(body)["live"] is True
    conn.close()


def test_connection_close_is_honoured(adder: RunningJob) -> None:
    conn = Conn(adder.port)
    conn.send(b"GET /live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    status, headers, _ = conn.read_response()
    assert status == 200 and headers["connection"] == "close"
    assert conn.closed_by_server()


def test_http_1_0_closes_unless_keep_alive(adder: RunningJob) -> None:
    conn = Conn(adder.port)
    conn.send(b"GET /live HTTP/1.0\r\n\r\n")
    assert conn.read_response()[0] == 200
    assert conn.closed_by_server()
    conn = Conn(adder.port)
    conn.send(b"GET /live HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    assert conn.read_response()[0] == 200
    conn.send(b"GET /ready HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    assert conn.read_response()[0] == 200
    conn.close()


def _bad(adder: RunningJob, raw: bytes) -> tuple[int, dict[str, str]]:
    conn = Conn(adder.port)
    conn.send(raw)
    status, _, body = conn.read_response()
    assert conn.closed_by_server()
    return status, json.loads(body)


def test_malformed_requests_get_400_and_the_connection_closes(adder: RunningJob) -> None:
    cases = {
        b"GARBAGE\r\n\r\n": "malformed request line",
        b"GET /live HTTP/1.1\r\nHost: x\r\nNo colon here\r\n\r\n": "malformed header line",
        b"GET /live HTTP/1.1\r\n\r\n": "missing Host header",
        b"POST /api/v1/perform HTTP/1.1\r\nHost: x\r\nContent-Length: ten\r\n\r\n": "malformed Content-Length",
        b"POST /api/v1/perform HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n": (
            "both Transfer-Encoding and Content-Length"
        ),
        b"POST /api/v1/perform HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n": "chunk size",
        b"get /live HTTP/1.1\r\nHost: x\r\n\r\n": "malformed method",
        b"GET live HTTP/1.1\r\nHost: x\r\n\r\n": "malformed request target",
    }
    for raw, message in cases.items():
        status, body = _bad(adder, raw)
        assert status == 400, raw
        assert message in body["error"], (raw, body)
    status, _ = _bad(adder, b"GET /live HTTP/2.0\r\nHost: x\r\n\r\n")
    assert status == 505
    # The server is still fine afterwards.
    assert adder.client.get("/live").status_code == 200


def test_oversized_head_is_431(adder: RunningJob) -> None:
    status, body = _bad(adder, b"GET /live HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70000 + b"\r\n\r\n")
    assert status == 431


def test_client_disconnect_mid_request_does_not_hurt_the_server(adder: RunningJob) -> None:
    conn = Conn(adder.port)
    conn.send(b'POST /api/v1/perform HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"a"')
    conn.close()
    assert adder.client.post("/api/v1/perform", json={"a": 1}).json() == 1


def test_unknown_path_is_404_json(adder: RunningJob) -> None:
    resp = adder.client.get("/nope")
    assert resp.status_code == 404
    assert resp.json() == {"error": "no such endpoint: GET /nope", "type": "NotFound"}


def test_a_reflected_header_value_cannot_split_the_response(adder: RunningJob) -> None:
    """The runtime echoes X-Request-Tracing-Id (and CORS request headers): a bare LF in them stays on its line."""
    conn = Conn(adder.port)
    conn.send(
        b"OPTIONS /api/v1/perform HTTP/1.1\r\nHost: x\r\nX-Request-Tracing-Id: t-1\nSet-Cookie: session=evil\r\n"
        b"Access-Control-Request-Headers: a\rContent-Length: 5\r\n\r\n"
    )
    status, headers, _ = conn.read_response()
    assert status == 204
    assert "set-cookie" not in headers
    assert headers["x-request-tracing-id"] == "t-1 Set-Cookie: session=evil"
    assert headers["access-control-allow-headers"] == "a Content-Length: 5"
    conn.send(b"GET /live HTTP/1.1\r\nHost: x\r\n\r\n")  # nothing stray was sent: the next answer parses
    assert conn.read_response()[0] == 200
    conn.close()
