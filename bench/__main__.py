"""`python -m bench [--quick] [--only NAME ...]`: run the benchmarks, write docs/benchmarks.{json,md} and charts.

Exits non-zero when any benchmark could not take its measurements; the results of the others are
still written, and the failed one is reported as failed, never with a number.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import shlex
import sys
import time
import traceback
from typing import Any

from bench.common import BenchError, Profile, load_average, log

BENCHMARKS = (
    "runtime",
    "gateway",
    "deploy",
    "control_plane",
    "dashboard",
    "memory",
    "docker_deploy",
    "kubernetes_deploy",
    "pipelines",
    "instructions",
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="short runs, one round: everything in under a minute; prints its results, writes nothing into docs/",
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=BENCHMARKS,
        metavar="NAME",
        help=f"run only this benchmark (repeatable): {', '.join(BENCHMARKS)}",
    )
    parser.add_argument("--no-report", action="store_true", help="print results, write nothing into docs/")
    args = parser.parse_args(argv)
    profile = Profile.make(args.quick)
    chosen = args.only or list(BENCHMARKS)
    command = " ".join(["python -m bench", shlex.join(argv if argv is not None else sys.argv[1:])]).strip()

    from bench.setup import ensure_all

    writes_report = not args.no_report and not profile.quick
    if writes_report and importlib.util.find_spec("matplotlib") is None:
        # Checked before measuring: finding out after the runs would throw their figures away.
        print(
            "bench: the report's charts need matplotlib: pip install -e '.[bench]' (or pass --no-report)",
            file=sys.stderr,
        )
        return 2

    try:
        ensure_all(
            need_runner=bool({"runtime", "memory"} & set(chosen)),
            need_tools=bool({"runtime", "gateway"} & set(chosen)),
            need_valgrind="instructions" in chosen,
        )
    except BenchError as exc:
        print(f"bench setup failed: {exc}", file=sys.stderr)
        return 2

    started = time.monotonic()
    load_before = load_average()
    results: dict[str, Any] = {}
    failed: dict[str, str] = {}
    for name in chosen:
        log(f"--- {name} ---")
        t0 = time.monotonic()
        try:
            module = importlib.import_module(f"bench.{name}")
            results[name] = module.run(profile)
            results[name]["elapsed_s"] = round(time.monotonic() - t0, 1)
        except BenchError as exc:
            failed[name] = str(exc)
            log(f"{name} FAILED: {exc}")
        except Exception as exc:  # a bug in the bench is a failed measurement too
            failed[name] = f"{type(exc).__name__}: {exc}"
            log(f"{name} FAILED:\n{traceback.format_exc()}")
    meta = {
        "command": command,
        "quick": profile.quick,
        "rounds": profile.rounds,
        "duration_s": profile.duration_s,
        "elapsed_s": round(time.monotonic() - started, 1),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in load_average()],
        "failed": failed,
    }
    from bench import report

    report.print_summary(results, meta)
    # One short round is a smoke test, not a figure to publish: it must not replace a full run's.
    if writes_report:
        report.write(results, meta, partial=bool(args.only))
    if failed:
        print(f"bench: {len(failed)} benchmark(s) failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
