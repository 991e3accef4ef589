"""`python -m trackside_runtime --entrypoint-path job.py [--entrypoint-class Name]`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .logs import configure_logging
from .server import run
from .settings import RuntimeSettings, SettingsError


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="trackside_runtime",
        description="Serve a Racetrack-style job class (with a perform method) over HTTP. "
        "Configured by env vars: PORT, JOB_HOST, JOB_NAME, JOB_VERSION, JOB_MAX_CONCURRENCY, LOG_LEVEL, "
        "LOG_STRUCTURED, ...",
    )
    parser.add_argument("--entrypoint-path", required=True, help="the job's Python file, relative to the cwd")
    parser.add_argument(
        "--entrypoint-class",
        default=None,
        help="the job class; default: the single class defined in the file",
    )
    args = parser.parse_args(argv)
    try:
        settings = RuntimeSettings.from_env()
    except SettingsError as exc:
        print(f"trackside job runtime: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_structured, settings.log_caller_name)
    return run(args.entrypoint_path, args.entrypoint_class, settings)


if __name__ == "__main__":
    sys.exit(main())
