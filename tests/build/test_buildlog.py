"""The build log: thread-safe, mirrored to a file, secrets never stored."""

from __future__ import annotations

import threading
from pathlib import Path

from trackside.build.buildlog import BuildLog


def test_secret_values_are_redacted_in_memory_and_in_the_file(tmp_path: Path) -> None:
    log = BuildLog(tmp_path / "logs" / "build.log", secrets=["hunter2"])
    log.add_secrets(["tok", "tok-longer", ""])
    log("password is hunter2")
    log("values tok-longer and tok")
    assert log.lines == ["password is ***", "values *** and ***"]
    assert (tmp_path / "logs" / "build.log").read_text() == "password is ***\nvalues *** and ***\n"


def test_multi_line_messages_become_separate_lines(tmp_path: Path) -> None:
    log = BuildLog()
    log("one\ntwo\n")
    assert log.lines == ["one", "two"]
    assert log.text() == "one\ntwo\n"


def test_lines_from_many_threads_are_all_kept_whole(tmp_path: Path) -> None:
    path = tmp_path / "build.log"
    log = BuildLog(path)

    def write(n: int) -> None:
        for i in range(200):
            log(f"thread {n} line {i}")

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(log.lines) == 800
    assert sorted(path.read_text().splitlines()) == sorted(log.lines)


def test_memory_keeps_the_end_of_a_very_long_log(tmp_path: Path) -> None:
    log = BuildLog(tmp_path / "build.log", max_lines=3)
    for i in range(5):
        log(f"line {i}")
    assert log.lines == ["... 2 earlier lines dropped", "line 2", "line 3", "line 4"]
    assert len((tmp_path / "build.log").read_text().splitlines()) == 5
