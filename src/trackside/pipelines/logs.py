"""Where a step attempt's files live, and reading a step's log.

Each attempt has a work directory, `{data_dir}/pipelines/runs/{run}/{job}/{attempt}/`, with its `log`
(written by the executor: the local wrapper itself, `docker logs -f` for containers, the request and
answer for a call step). When an attempt ends its log is also copied into the step's row (the last
LOG_KEEP bytes), so the API can show it from any lifecycle replica and after the files are gone.
"""

from __future__ import annotations

from pathlib import Path

LOG_KEEP = 1024 * 1024


def attempt_dir(data_dir: Path, run_uid: str, job: str, attempt: int) -> Path:
    return data_dir / "pipelines" / "runs" / run_uid / job / str(attempt)


def log_path(data_dir: Path, run_uid: str, job: str, attempt: int) -> Path:
    return attempt_dir(data_dir, run_uid, job, attempt) / "log"


def read_log(path: Path, limit: int = LOG_KEEP) -> str | None:
    """The last `limit` bytes of a log file, or None when there is none."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, 2)
            size = handle.tell()
            handle.seek(max(0, size - limit))
            data = handle.read()
    except OSError:
        return None
    return data.decode("utf-8", errors="replace")


def read_from(path: Path, offset: int) -> tuple[str, int]:
    """Whole lines written past `offset`, and the offset after them (for following a log)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(offset)
            data = handle.read()
    except OSError:
        return "", offset
    end = data.rfind(b"\n")
    if end < 0:
        return "", offset
    return data[: end + 1].decode("utf-8", errors="replace"), offset + end + 1
