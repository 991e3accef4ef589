"""A build's log: lines collected from several threads, mirrored to a file, secrets redacted.

Redaction happens before a line is stored anywhere, so a secret build variable or a git password
echoed by an installer never reaches the file, the deployment record or the user's terminal.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from pathlib import Path

REDACTED = "***"


class BuildLog:
    """Callable as `log(line)`, the shape `BuildRequest.log` and the builder expect."""

    def __init__(self, path: Path | None = None, secrets: Iterable[str] = (), max_lines: int = 20_000) -> None:
        self.path = path
        self.max_lines = max_lines
        self._lines: list[str] = []
        self._dropped = 0
        self._secrets: list[str] = []
        self._lock = threading.Lock()
        self.add_secrets(secrets)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)

    def add_secrets(self, secrets: Iterable[str]) -> None:
        with self._lock:
            known = set(self._secrets)
            known.update(str(s) for s in secrets if s)
            # Longest first, so a secret containing another is hidden whole.
            self._secrets = sorted(known, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return text

    def __call__(self, line: str) -> None:
        self.write(line)

    def write(self, text: str) -> None:
        """Store `text`, one entry per line (a multi-line message becomes several lines)."""
        with self._lock:
            lines = self.redact(text.rstrip("\n")).split("\n")
            if self.path is not None:
                with self.path.open("a", encoding="utf-8") as f:
                    f.write("".join(f"{line}\n" for line in lines))
            self._lines.extend(lines)
            overflow = len(self._lines) - self.max_lines
            if overflow > 0:  # keep the end: that is where a failure is explained
                del self._lines[:overflow]
                self._dropped += overflow

    @property
    def lines(self) -> list[str]:
        with self._lock:
            head = [f"... {self._dropped} earlier lines dropped"] if self._dropped else []
            return head + list(self._lines)

    def text(self) -> str:
        lines = self.lines
        return "\n".join(lines) + ("\n" if lines else "")
