"""Bodies stream through the gateway in both directions, with flow control, never buffered whole."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator

import httpx
from tests.gateway.conftest import RunningGateway
from tests.gateway.doubles import JobDouble

MB = 1024 * 1024


def test_large_download_streams_before_the_job_has_finished_sending(gateway: RunningGateway, job: JobDouble) -> None:
    # The job sends 1 MB, then waits until we say we saw it; a buffering proxy would deadlock here.
    url = f"{gateway.url}/pub/job/adder/1.0.0/stream?chunks=20&size={MB}&wait=1"
    total = 0
    with httpx.stream("GET", url, timeout=30) as response:
        for piece in response.iter_raw():
            if total == 0:
                assert not job.finished_stream.is_set()
                job.release.set()
            total += len(piece)
    assert total == 20 * MB


def test_large_upload_streams_before_the_client_has_finished_sending(gateway: RunningGateway, job: JobDouble) -> None:
    digest = hashlib.sha256()
    piece = b"u" * MB
    seen_early: list[bool] = []

    def body() -> Iterator[bytes]:
        digest.update(piece)
        yield piece
        # the job must get bytes while we still hold back 19 MB
        seen_early.append(job.first_bytes_seen.wait(10))
        for i in range(19):
            chunk = bytes([i]) * MB
            digest.update(chunk)
            yield chunk

    response = httpx.post(f"{gateway.url}/pub/job/adder/1.0.0/upload-stream", content=body(), timeout=30)
    assert seen_early == [True]
    assert response.json()["received"] == 20 * MB
    assert response.json()["sha256"] == digest.hexdigest()


def test_content_length_bodies_arrive_intact_both_ways(gateway: RunningGateway) -> None:
    payload = bytes(range(256)) * (80 * 1024)  # 20 MB
    response = httpx.post(f"{gateway.url}/pub/job/adder/1.0.0/echo", content=payload, timeout=30)
    echo = response.json()
    assert echo["body_length"] == len(payload)
    assert echo["body_sha256"] == hashlib.sha256(payload).hexdigest()

    size = 20 * MB + 7
    download = httpx.get(f"{gateway.url}/pub/job/adder/1.0.0/big?size={size}", timeout=30)
    assert len(download.content) == size
    assert download.headers["content-length"] == str(size)


def _client_side_buffers(gateway: RunningGateway) -> int:
    return max((c.transport.get_write_buffer_size() for c in list(gateway.server._connections)), default=0)


def test_slow_client_pauses_the_job_instead_of_buffering_its_response(gateway: RunningGateway) -> None:
    url = f"{gateway.url}/pub/job/adder/1.0.0/big?size={200 * MB}"
    with httpx.stream("GET", url, timeout=30) as response:
        stream = response.iter_raw(65536)
        next(stream)
        time.sleep(1.0)  # stop reading: the job keeps trying to send 200 MB
        buffered = _client_side_buffers(gateway)
        assert buffered < 8 * MB, f"gateway buffered {buffered} bytes for a client that stopped reading"
        received = 65536 + sum(len(p) for p in stream)
    assert received >= 200 * MB - 65536


def test_slow_job_pauses_the_client_instead_of_buffering_its_upload(gateway: RunningGateway, job: JobDouble) -> None:
    # /slow-reader waits for `release` before reading; meanwhile the client pushes 200 MB.
    observed: list[int] = []

    def watch() -> None:
        time.sleep(1.0)
        for conn in list(gateway.server._connections):
            active = conn.active
            if active is not None and active.upstream is not None:
                observed.append(active.upstream.transport.get_write_buffer_size())
        job.release.set()

    watcher = threading.Thread(target=watch)
    watcher.start()
    response = httpx.post(
        f"{gateway.url}/pub/job/adder/1.0.0/slow-reader",
        content=(b"s" * MB for _ in range(200)),
        timeout=60,
    )
    watcher.join()
    assert response.json()["received"] == 200 * MB
    assert observed and max(observed) < 8 * MB, f"gateway buffered {observed} bytes towards a job not reading"
