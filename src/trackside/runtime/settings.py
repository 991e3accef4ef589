"""The runtime's settings, read once from the environment the platform gives the job."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass


class SettingsError(ValueError):
    """An env var has a value the runtime can't use; the message names the variable."""


def _int(env: Mapping[str, str], name: str, default: int | None) -> int | None:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise SettingsError(f"env var {name} must be an integer, got {raw!r}") from None


def _at_least(env: Mapping[str, str], name: str, default: int, minimum: int) -> int:
    value = _int(env, name, default)
    assert value is not None
    if value < minimum:
        raise SettingsError(f"env var {name} must be at least {minimum}, got {value}")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "t", "yes", "y", "on"):
        return True
    if raw in ("0", "false", "f", "no", "n", "off"):
        return False
    raise SettingsError(f"env var {name} must be true or false, got {raw!r}")


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str:
    raw = env.get(name, "").strip().lower() or choices[0]
    if raw not in choices:
        raise SettingsError(f"env var {name} must be one of {', '.join(choices)}, got {raw!r}")
    return raw


# LOG_LEVEL names Racetrack's runner accepts (`off` silences the `racetrack` logger).
LOG_LEVELS = ("debug", "info", "warn", "warning", "error", "crit", "critical", "off")


@dataclass(frozen=True)
class RuntimeSettings:
    port: int = 7000
    host: str = "0.0.0.0"
    job_name: str = ""
    job_version: str = ""
    deployment_timestamp: int = 0
    max_concurrency: int | None = None
    max_concurrency_queue: int | None = None
    home_page: str = ""
    git_version: str = ""
    job_type_version: str = ""
    deployed_by_racetrack_version: str = ""
    log_requests: bool = True
    log_caller_name: bool = False
    log_level: str = "debug"
    log_structured: bool = False
    webview_wsgi_paths: str = "auto"
    thread_pool_size: int = 40
    inline_sync: bool = False
    shutdown_grace_s: float = 5.0
    event_loop: str = "auto"
    # Limits on a request head (docs/security.md, "Request limits"): longer URL 414, more 431.
    max_url_bytes: int = 16 * 1024
    max_head_bytes: int = 64 * 1024
    max_headers: int = 100

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> RuntimeSettings:
        env = os.environ if env is None else env
        port = _int(env, "PORT", 7000)
        assert port is not None
        if not 0 <= port <= 65535:
            raise SettingsError(f"env var PORT must be a TCP port (0-65535), got {port}")
        max_conc = _int(env, "JOB_MAX_CONCURRENCY", None)
        if max_conc is not None and max_conc < 1:
            raise SettingsError(f"env var JOB_MAX_CONCURRENCY must be at least 1, got {max_conc}")
        queue = _int(env, "JOB_MAX_CONCURRENCY_QUEUE", None)
        if queue is not None and queue < 0:
            raise SettingsError(f"env var JOB_MAX_CONCURRENCY_QUEUE must be 0 or more, got {queue}")
        pool = _int(env, "JOB_THREAD_POOL_SIZE", 40) or 40
        grace = _int(env, "JOB_SHUTDOWN_GRACE_SECONDS", 5)
        log_level = env.get("LOG_LEVEL", "").strip().lower() or "debug"
        if log_level not in LOG_LEVELS:
            raise SettingsError(f"env var LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, got {log_level!r}")
        return cls(
            port=port,
            host=env.get("JOB_HOST", "").strip() or "0.0.0.0",
            job_name=env.get("JOB_NAME", ""),
            job_version=env.get("JOB_VERSION", ""),
            deployment_timestamp=_int(env, "JOB_DEPLOYMENT_TIMESTAMP", 0) or 0,
            max_concurrency=max_conc,
            max_concurrency_queue=queue,
            home_page=env.get("JOB_HOME_PAGE", ""),
            git_version=env.get("GIT_VERSION", ""),
            job_type_version=env.get("JOB_TYPE_VERSION", ""),
            deployed_by_racetrack_version=env.get("DEPLOYED_BY_RACETRACK_VERSION", ""),
            log_requests=_bool(env, "LOG_REQUESTS", True),
            log_caller_name=_bool(env, "LOG_CALLER_NAME", False),
            log_level=log_level,
            log_structured=_bool(env, "LOG_STRUCTURED", False),
            webview_wsgi_paths=_choice(env, "JOB_WEBVIEW_WSGI_PATHS", ("auto", "mount", "full")),
            thread_pool_size=pool,
            inline_sync=_bool(env, "JOB_INLINE_SYNC", False),
            shutdown_grace_s=float(grace if grace is not None else 5),
            event_loop=_choice(env, "JOB_EVENT_LOOP", ("auto", "uvloop", "asyncio")),
            max_url_bytes=_at_least(env, "JOB_MAX_URL_BYTES", 16 * 1024, 256),
            max_head_bytes=_at_least(env, "JOB_MAX_HEAD_BYTES", 64 * 1024, 1024),
            max_headers=_at_least(env, "JOB_MAX_HEADERS", 100, 8),
        )
