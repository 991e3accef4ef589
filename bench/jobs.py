"""The job classes every benchmark serves: the same source for Trackside and for Racetrack's runner."""

from __future__ import annotations

import time
from pathlib import Path

ADDER = """
class Adder:
    def perform(self, a: float, b: float) -> float:
        return a + b
"""

# ~1 ms of pure-Python CPU work per call: a loop whose count the bench calibrates once, so both
# servers run exactly the same work.
CPU_1MS = """
LOOPS = {loops}


class Burner:
    def perform(self, a: float, b: float) -> float:
        total = 0
        for i in range(LOOPS):
            total += i * i
        return a + b + (total & 0)
"""

SLEEP_10MS = """
import time


class Sleeper:
    def perform(self, a: float, b: float) -> float:
        time.sleep(0.01)
        return a + b
"""

JOBS = {"adder": ADDER, "cpu-1ms": CPU_1MS, "sleep-10ms": SLEEP_10MS}
BODY = '{"a": 40, "b": 2}'


_loops: int | None = None


def cpu_loops() -> int:
    """Iterations of the CPU job's loop that take ~1 ms of CPU time in this interpreter."""
    global _loops
    if _loops is None:
        n = 20_000
        while True:
            start = time.process_time()
            total = 0
            for i in range(n):
                total += i * i
            spent = time.process_time() - start
            if spent > 0.05:
                _loops = max(1, int(n * 0.001 / spent))
                break
            n *= 2
    return _loops


def write_job_file(directory: Path, kind: str) -> Path:
    """`{directory}/{kind}.py` with the job class of that kind; returns its path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{kind.replace('-', '_')}.py"
    source = JOBS[kind].replace("{loops}", str(cpu_loops())) if kind == "cpu-1ms" else JOBS[kind]
    path.write_text(source.lstrip())
    return path
