"""The runtime bounds a request head: URL (414), header count and head size (431), as JSON errors."""

from __future__ import annotations

import json
import socket
from typing import Any

import pytest
from tests.runtime.harness import ADDER, RunningJob

from trackside.runtime.settings import RuntimeSettings, SettingsError


def send_and_read(port: int, request: bytes, pieces: int = 1) -> tuple[int, dict[str, Any]]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        size = -(-len(request) // pieces)
        for start in range(0, len(request), size):
            sock.sendall(request[start : start + size])
        received = b""
        while b"\r\n\r\n" not in received or len(received.partition(b"\r\n\r\n")[2]) < int(
            received.lower().split(b"content-length: ")[1].split(b"\r\n")[0]
        ):
            chunk = sock.recv(65536)
            assert chunk, received
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), json.loads(body)


def get(path: bytes, headers: list[bytes] | None = None) -> bytes:
    lines = b"".join(h + b"\r\n" for h in headers or [])
    return b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n" + lines + b"\r\n"


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from tests.runtime.conftest import _starter

    for start in _starter(tmp_path_factory.mktemp("small")):
        yield start(ADDER, env={"JOB_MAX_URL_BYTES": "1024", "JOB_MAX_HEAD_BYTES": "4096", "JOB_MAX_HEADERS": "10"})


def test_a_one_megabyte_path_is_414(adder: RunningJob) -> None:
    status, body = send_and_read(adder.port, get(b"/" + b"a" * 1_000_000))
    assert status == 414
    assert body["type"] == "RequestUriTooLong" and "16384" in body["error"]
    assert adder.client.get("/live").status_code == 200


def test_the_default_limits_admit_a_16k_url_and_100_headers(adder: RunningJob) -> None:
    url = b"/live?" + b"q" * (16384 - len(b"/live?"))
    assert send_and_read(adder.port, get(url))[0] == 200
    assert send_and_read(adder.port, get(url + b"q"))[0] == 414
    ninety_nine = [b"X-H%d: v" % i for i in range(99)]  # with Host: 100
    assert send_and_read(adder.port, get(b"/live", ninety_nine))[0] == 200
    status, body = send_and_read(adder.port, get(b"/live", [*ninety_nine, b"X-Extra: v"]))
    assert status == 431 and body["type"] == "RequestHeaderFieldsTooLarge"


def test_limits_come_from_the_environment(small: RunningJob) -> None:
    url = b"/live?" + b"q" * (1024 - len(b"/live?"))
    assert send_and_read(small.port, get(url), pieces=len(url))[0] == 200
    assert send_and_read(small.port, get(url + b"q"), pieces=100)[0] == 414
    nine = [b"X-H%d: v" % i for i in range(9)]
    assert send_and_read(small.port, get(b"/live", nine))[0] == 200
    assert send_and_read(small.port, get(b"/live", [*nine, b"X-H: v"]))[0] == 431
    filler = b"X-Big: " + b"b" * (4096 - len(get(b"/live", [b"X-Big: "])))
    assert len(get(b"/live", [filler])) == 4096
    assert send_and_read(small.port, get(b"/live", [filler]), pieces=50)[0] == 200
    status, body = send_and_read(small.port, get(b"/live", [filler + b"b"]), pieces=50)
    assert status == 431 and body["type"] == "RequestHeaderFieldsTooLarge" and "4096" in body["error"]


def test_a_body_does_not_count_against_the_head(small: RunningJob) -> None:
    payload = json.dumps({"a": 1, "b": 2, "pad": "p" * 100_000}).encode()
    request = b"POST /api/v1/perform HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(payload) + payload
    status, _ = send_and_read(small.port, request)
    assert status in (200, 400)  # answered as a request: the padding is an unknown argument


def test_an_endless_url_is_cut_off_without_reading_it_all(adder: RunningJob) -> None:
    piece = b"z" * 65536
    sent = 0
    with socket.create_connection(("127.0.0.1", adder.port), timeout=10) as sock:
        sock.sendall(b"GET /")
        try:
            while sent < 32 * 1024 * 1024:
                sock.sendall(piece)
                sent += len(piece)
        except (BrokenPipeError, ConnectionResetError):
            pass
    assert sent < 32 * 1024 * 1024
    assert adder.client.get("/live").status_code == 200


def test_limit_settings_are_read_and_checked() -> None:
    settings = RuntimeSettings.from_env(
        {"JOB_MAX_URL_BYTES": "2048", "JOB_MAX_HEAD_BYTES": "8192", "JOB_MAX_HEADERS": "20"}
    )
    assert (settings.max_url_bytes, settings.max_head_bytes, settings.max_headers) == (2048, 8192, 20)
    defaults = RuntimeSettings.from_env({})
    assert (defaults.max_url_bytes, defaults.max_head_bytes, defaults.max_headers) == (16384, 65536, 100)
    with pytest.raises(SettingsError, match="JOB_MAX_HEADERS"):
        RuntimeSettings.from_env({"JOB_MAX_HEADERS": "many"})
    with pytest.raises(SettingsError, match="JOB_MAX_HEAD_BYTES must be at least 1024"):
        RuntimeSettings.from_env({"JOB_MAX_HEAD_BYTES": "10"})
