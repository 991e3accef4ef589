"""Job logs on the local target: recent lines, rotation, following and streaming sessions."""

from __future__ import annotations

import threading
from pathlib import Path

from tests.infra.local.localjob import LocalHarness, http_get, monitor
from tests.support.polling import wait_until

from trackside.infra.local.logs import LocalLogsStreamer, follow_files, rotate_if_needed, tail_lines


def test_recent_logs_show_the_last_lines_of_the_job(local: LocalHarness) -> None:
    target = local.target()
    local.artifact()
    job = local.deploy(target)
    monitor(target).check_job_condition(job, 1_700_000_001)
    for _ in range(3):
        http_get(job.internal_name or "", "/env")

    logs = monitor(target).read_recent_logs(job, tail=2)
    everything = monitor(target).read_recent_logs(job, tail=0)

    assert logs.splitlines() == ["serving /env", "serving /env"]
    assert everything.splitlines()[0].startswith("fake job starting on port")
    assert len(everything.splitlines()) == 4


def test_recent_logs_of_several_replicas_are_prefixed_with_the_replica(local: LocalHarness) -> None:
    target = local.target()
    local.artifact()
    job = local.deploy(target, replicas=2)
    monitor(target).check_job_condition(job, 1_700_000_001)

    lines = monitor(target).read_recent_logs(job, tail=1).splitlines()

    assert [line.split(" ", 1)[0] for line in lines] == ["[replica-0]", "[replica-1]"]
    assert all("fake job starting on port" in line for line in lines)


def test_streaming_session_sends_recent_lines_then_new_ones_until_closed(local: LocalHarness) -> None:
    target = local.target()
    local.artifact()
    job = local.deploy(target)
    monitor(target).check_job_condition(job, 1_700_000_001)
    received: list[tuple[str, str]] = []
    streamer = target.logs_streamer
    assert isinstance(streamer, LocalLogsStreamer)

    streamer.create_session(
        "s1", {"job_name": "adder", "job_version": "1.0.0", "tail": "5"}, lambda sid, line: received.append((sid, line))
    )
    wait_until(lambda: received, timeout=5)
    http_get(job.internal_name or "", "/env")
    wait_until(lambda: ("s1", "serving /env") in received, timeout=5)
    streamer.close_session("s1")
    count = len(received)
    http_get(job.internal_name or "", "/env")
    threading.Event().wait(0.5)

    assert received[0][1].startswith("fake job starting on port")
    assert len(received) == count  # nothing after the session was closed


def test_follow_survives_copytruncate_without_losing_lines(tmp_path: Path) -> None:
    path = tmp_path / "replica-0.log"
    path.write_text("old 1\nold 2\n")
    stop = threading.Event()
    lines = follow_files(lambda: [path], 1, stop, interval=0.01)

    assert next(lines) == "old 2"
    with open(path, "a") as f:
        f.write("before rotation\n")
    assert next(lines) == "before rotation"
    with open(path, "a") as f:
        f.write("written just before the copy\n")
    assert rotate_if_needed(path, max_bytes=10, keep=3)
    with open(path, "a") as f:
        f.write("after rotation\npartial")
    assert next(lines) == "written just before the copy"
    assert next(lines) == "after rotation"
    with open(path, "a") as f:
        f.write(" line completed\n")
    assert next(lines) == "partial line completed"
    stop.set()


def test_rotation_keeps_a_bounded_number_of_copies(tmp_path: Path) -> None:
    path = tmp_path / "replica-0.log"
    for round_ in range(5):
        path.write_text(f"round {round_}\n" * 20)
        assert rotate_if_needed(path, max_bytes=50, keep=3)
    path.write_text("small\n")

    assert not rotate_if_needed(path, max_bytes=50, keep=3)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "replica-0.log",
        "replica-0.log.1",
        "replica-0.log.2",
        "replica-0.log.3",
    ]
    assert (tmp_path / "replica-0.log.1").read_text().startswith("round 4")
    assert (tmp_path / "replica-0.log.3").read_text().startswith("round 2")
    assert tail_lines(path, 3) == ["round 4", "round 4", "small"]  # the rotated copy fills the tail


def test_watcher_rotates_a_running_jobs_log_and_the_job_keeps_writing(local: LocalHarness) -> None:
    target = local.target(log_max_bytes=4000, rotate_interval=0.05)
    local.artifact(env={"FAKE_MODE": "chatty"})
    job = local.deploy(target)
    monitor(target).check_job_condition(job, 1_700_000_001)
    log = local.layout.log_file("adder", "1.0.0", 0)

    wait_until(lambda: log.with_name("replica-0.log.1").exists(), timeout=5)
    http_get(job.internal_name or "", "/env")
    content = wait_until(lambda: (c := log.read_bytes()).endswith(b"serving /env\n") and c, timeout=5)

    rotated = "".join(p.read_text() for p in log.parent.glob("replica-0.log.*"))
    assert "chatty line 0000" in rotated
    assert b"\0" not in content and len(content) < 4000  # O_APPEND: the job wrote at the new start
