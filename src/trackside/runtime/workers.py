"""A lean thread pool for sync job code: results come back to the loop in batches.

`loop.run_in_executor` costs a concurrent Future, a wrapping asyncio Future and one
`call_soon_threadsafe` (a self-pipe write) per call. Here a worker puts its result on a deque and
wakes the loop only when no wake-up is pending, so under load many results share one wake-up.
Threads are started on demand, up to `size` (Racetrack's runner uses 40).
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

_STOP = object()


class Workers:
    def __init__(self, size: int, name: str = "job") -> None:
        self.size = size
        self.name = name
        self.loop: asyncio.AbstractEventLoop | None = None
        self._tasks: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._results: deque[tuple[asyncio.Future[Any], Any, BaseException | None]] = deque()
        self._wakeup_pending = False
        self._threads: list[threading.Thread] = []
        self._idle = 0
        self._lock = threading.Lock()

    def submit(self, fn: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:
        """Run `fn(*args)` in a worker; the returned future resolves on the loop thread."""
        loop = self.loop
        assert loop is not None, "Workers.loop must be set before submit()"
        fut: asyncio.Future[Any] = loop.create_future()
        self._tasks.put((fut, fn, args))
        if self._idle <= 0 and len(self._threads) < self.size:
            self._spawn()
        return fut

    def _spawn(self) -> None:
        with self._lock:
            if len(self._threads) >= self.size:
                return
            thread = threading.Thread(target=self._work, name=f"{self.name}-{len(self._threads)}", daemon=True)
            self._threads.append(thread)
        thread.start()

    def _work(self) -> None:
        tasks = self._tasks
        results = self._results
        while True:
            self._idle += 1  # approximate (no lock): only decides whether to start another thread
            item = tasks.get()
            self._idle -= 1
            if item is _STOP:
                return
            fut, fn, args = item
            try:
                results.append((fut, fn(*args), None))
            except BaseException as exc:
                results.append((fut, None, exc))
            del item, fut, fn, args
            if not self._wakeup_pending:
                self._wakeup_pending = True
                loop = self.loop
                if loop is not None and not loop.is_closed():
                    try:
                        loop.call_soon_threadsafe(self._drain)
                    except RuntimeError:  # loop closed meanwhile: nobody is waiting any more
                        return

    def _drain(self) -> None:
        # Clear the flag before draining: a result appended after this point either gets drained
        # below or schedules a new drain, so none is left behind.
        self._wakeup_pending = False
        results = self._results
        while results:
            fut, value, exc = results.popleft()
            if fut.cancelled():
                continue
            if exc is not None:
                fut.set_exception(exc)
            else:
                fut.set_result(value)

    def shutdown(self) -> None:
        for _ in self._threads:
            self._tasks.put(_STOP)
