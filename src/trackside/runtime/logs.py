"""Job logging set up as Racetrack's runner sets it up, so a job's `logging` calls print the same.

One handler on the root logger writes to stdout (the job's output, which the platform collects).
The root logger stays at INFO, so imported libraries don't flood the output with DEBUG lines; the
`racetrack` logger, which Racetrack's jobs log to (`logging.getLogger('racetrack')`), gets the level
`LOG_LEVEL` names (debug by default). Lines look like Racetrack's: `[2024-05-01 10:00:00] DEBUG
message`, or one JSON object per line with `LOG_STRUCTURED=true` (`time`, `lvl`, `msg`, and the
request's `tracing_id` / `caller_name`). Jobs may replace the formatter of the root handler (the
python-logging-format sample does).

Records logged while a request is served carry its tracing id, and its caller's name when
`LOG_CALLER_NAME` is on; the access log (reqlog.py) is written apart from `logging`, off the hot path.
"""

from __future__ import annotations

import json
import logging
import sys
import time
import traceback
from typing import Any, TextIO

from .current_request import caller_header_name, request_context, tracing_header_name

LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "crit": logging.CRITICAL,
    "critical": logging.CRITICAL,
    "off": logging.CRITICAL + 10,
}
_LABELS = {"DEBUG": "DEBUG", "INFO": "INFO ", "WARNING": "WARN ", "ERROR": "ERROR", "CRITICAL": "CRIT "}
_EXTRA_KEYS = ("tracing_id", "caller_name")
logger = logging.getLogger("racetrack")


def iso_time(created: float) -> str:
    micros = int((created % 1) * 1_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created)) + f".{micros:06d}Z"


class RequestInfo(logging.Filter):
    """Adds the current request's tracing id (and caller name, when asked) to each record."""

    def __init__(self, caller_name: bool) -> None:
        super().__init__()
        self.caller_name = caller_name
        self.tracing_header = tracing_header_name()
        self.caller_header = caller_header_name()

    def filter(self, record: logging.LogRecord) -> bool:
        req = request_context.get()
        if req is not None:
            if getattr(record, "tracing_id", None) is None:
                record.tracing_id = req.headers.get(self.tracing_header)
            if self.caller_name and getattr(record, "caller_name", None) is None:
                record.caller_name = req.headers.get(self.caller_header)
        return True


class PlainFormatter(logging.Formatter):
    """`[2024-05-01 10:00:00] DEBUG message, tracing_id=..., caller_name=...`."""

    def __init__(self) -> None:
        super().__init__("[%(asctime)s] %(message)s", "%Y-%m-%d %H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        label = _LABELS.get(record.levelname, record.levelname)
        line = f"[{self.formatTime(record, self.datefmt)}] {label} {record.getMessage()}"
        extras = [(key, getattr(record, key, None)) for key in _EXTRA_KEYS]
        shown = [f'{key}="{value}"' if " " in str(value) else f"{key}={value}" for key, value in extras if value]
        if shown:
            line += ", " + ", ".join(shown)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        if record.stack_info:
            line += "\n" + self.formatStack(record.stack_info)
        return line


class StructuredFormatter(logging.Formatter):
    """One JSON object per record: `{"time", "lvl", "msg", ...}` (`LOG_STRUCTURED=true`)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {"time": iso_time(record.created), "lvl": record.levelname, "msg": record.getMessage()}
        extra = getattr(record, "extra", None)
        if isinstance(extra, dict):
            entry.update(extra)
        for key in _EXTRA_KEYS:
            value = getattr(record, key, None)
            if value:
                entry[key] = value
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str)


def configure_logging(level: str, structured: bool, caller_name: bool, stream: TextIO | None = None) -> None:
    """Root handler on stdout at INFO; the `racetrack` logger at `level` (a LOG_LEVEL name)."""
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(StructuredFormatter() if structured else PlainFormatter())
    handler.addFilter(RequestInfo(caller_name))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    logger.setLevel(LEVELS[level])


def log_info(message: str, structured: bool) -> None:
    """A message of the runtime's own: a JSON record under LOG_STRUCTURED, else a plain stdout line."""
    if structured:
        logger.info(message)
    else:
        print(message, flush=True)


def log_exception(message: str, exc: BaseException, structured: bool) -> None:
    """An error from job code: a JSON record under LOG_STRUCTURED, else the traceback on stderr."""
    if structured:
        logger.error(message, exc_info=(type(exc), exc, exc.__traceback__))
        return
    print(message, file=sys.stderr)
    traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
