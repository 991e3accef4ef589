"""Slowing down password guessing: failed logins per account and per client address.

After `free_failures` failures within `window` seconds (`free_address_failures` for an
address), each further attempt for that account (or from that address) must wait a delay that
doubles per failure, up to `max_delay`: with the defaults, the 6th attempt after 5 failures waits
`base_delay` (docs/auth.md); an attempt made too early is refused with 429 and a
message that says how long to wait, without checking the password. A successful login clears
the account's count. Kept in memory: one lifecycle process holds the counts, which is what a
guessing attack against it meets.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

from trackside.errors import TracksideError


class TooManyAttempts(TracksideError):
    status_code = 429


@dataclass
class _Failures:
    count: int
    last: float


class LoginThrottle:
    def __init__(
        self,
        free_failures: int = 5,
        base_delay: float = 5.0,
        max_delay: float = 300.0,
        window: float = 900.0,
        free_address_failures: int = 20,
    ) -> None:
        self.free_failures = free_failures
        # An address may be many people (a NAT, an office): it gets more failures before slowing down.
        self.free_address_failures = free_address_failures
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.window = window
        self._failures: dict[str, _Failures] = {}
        self._lock = threading.Lock()

    def _wait_left(self, key: str, now: float) -> float:
        entry = self._failures.get(key)
        if entry is None:
            return 0.0
        if now - entry.last > self.window:
            del self._failures[key]
            return 0.0
        # Failures beyond the free ones: 0 means the free ones are used up, so this attempt waits.
        excess = entry.count - (self.free_address_failures if key.startswith("addr:") else self.free_failures)
        if excess < 0:
            return 0.0
        delay = min(self.max_delay, self.base_delay * (2 ** min(excess, 32)))
        return max(0.0, float(entry.last + delay - now))

    def check(self, username: str, address: str) -> None:
        """Raise TooManyAttempts if this account or address must wait before trying again."""
        now = time.monotonic()
        with self._lock:
            for key, what in (
                (f"user:{username.lower()}", f"account {username!r}"),
                (f"addr:{address}", f"address {address}"),
            ):
                wait = self._wait_left(key, now)
                if wait > 0:
                    raise TooManyAttempts(
                        f"too many failed logins for {what}: logins are slowed down; try again in {math.ceil(wait)} s"
                    )

    def failed(self, username: str, address: str) -> None:
        now = time.monotonic()
        with self._lock:
            if len(self._failures) > 100_000:
                self._failures.clear()
            for key in (f"user:{username.lower()}", f"addr:{address}"):
                entry = self._failures.get(key)
                if entry is None or now - entry.last > self.window:
                    self._failures[key] = _Failures(1, now)
                else:
                    entry.count += 1
                    entry.last = now

    def succeeded(self, username: str) -> None:
        with self._lock:
            self._failures.pop(f"user:{username.lower()}", None)
