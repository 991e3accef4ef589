"""One access-log line per request on stdout, buffered and flushed a few times a second.

A write per line would cost a syscall per request on the hot path (stdout is often unbuffered:
PYTHONUNBUFFERED, `python -u`); instead lines are collected and written together by one call
scheduled on the loop. With `LOG_STRUCTURED=true` each line is a JSON object shaped like the job's
other structured log records (logs.py): `{"time", "lvl", "msg", "duration_ms", "tracing_id", ...}`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from typing import TextIO

FLUSH_DELAY_S = 0.1


class RequestLog:
    def __init__(self, caller_name: bool, out: TextIO | None = None, structured: bool = False) -> None:
        self.caller_name = caller_name
        self.structured = structured
        self.out = out or sys.stdout
        self.loop: asyncio.AbstractEventLoop | None = None
        self._scheduled = False
        self._lines: list[str] = []
        self._second = 0
        self._stamp = ""

    def _now(self) -> str:
        now = int(time.time())
        if now != self._second:
            self._second = now
            self._stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
        return self._stamp

    def request(self, method: str, target: str, status: int, seconds: float, headers: dict[str, str]) -> None:
        tracing = headers.get("x-request-tracing-id")
        caller = headers.get("x-caller-name") if self.caller_name else None
        if self.structured:
            entry = {
                "time": self._now(),
                "lvl": "INFO",
                "msg": f"{method} {target} {status}",
                "duration_ms": round(seconds * 1000, 2),
            }
            if tracing:
                entry["tracing_id"] = tracing
            if caller:
                entry["caller_name"] = caller
            line = json.dumps(entry)
        else:
            line = f"{self._now()} {method} {target} {status} {seconds * 1000:.2f}ms"
            if tracing:
                line += f" tracing_id={tracing}"
            if caller:
                line += f" caller_name={caller}"
        self._lines.append(line)
        if not self._scheduled and self.loop is not None:
            self._scheduled = True
            self.loop.call_later(FLUSH_DELAY_S, self.flush)

    def flush(self) -> None:
        self._scheduled = False
        if not self._lines:
            return
        text = "\n".join(self._lines) + "\n"
        self._lines.clear()
        with contextlib.suppress(OSError, ValueError):
            self.out.write(text)
            self.out.flush()
