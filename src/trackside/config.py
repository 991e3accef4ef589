"""Settings: defaults < config file < TRACKSIDE_* environment variables < CLI flags.

The config file is YAML, found at `--config`, `TRACKSIDE_CONFIG`, or `{data_dir}/config.yaml`.
Every component reads the same `Settings`, so split components are pointed at each other by the
same file or variables (`lifecycle_url` for the gateway and the supervisor).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from trackside.errors import InvalidInput


def default_data_dir() -> Path:
    return Path(os.environ.get("TRACKSIDE_DATA_DIR") or Path.home() / ".trackside")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TRACKSIDE_", extra="forbid")

    data_dir: Path = Field(default_factory=default_data_dir)
    host: str = "127.0.0.1"
    port: int = 7070
    # Empty means SQLite in the data dir.
    database_url: str = ""
    # Where the gateway and the supervisor find the lifecycle API when run as separate processes.
    lifecycle_url: str = "http://127.0.0.1:7070/lifecycle"
    # The gateway's base URL given to jobs as PUB_URL and shown as each job's pub_url.
    external_pub_url: str = ""
    internal_pub_url: str = ""
    infrastructure_target: str = "local"
    # Directory of installed plugin bundles (defaults to {data_dir}/plugins).
    plugins_dir: Path | None = None
    # How long the gateway trusts a routing/auth decision before asking the lifecycle again.
    gateway_cache_ttl: float = 2.0
    # JWT signing key (TRACKSIDE_AUTH_KEY); empty: generated once and kept in {data_dir}/auth.key.
    auth_key: str = ""
    # Fernet key for secrets at rest (TRACKSIDE_SECRETS_KEY); empty: kept in {data_dir}/secrets.key.
    secrets_key: str = ""
    supervisor_interval: float = 2.0
    # A deployment or the supervisor's turn is held under a lease in the store, renewed while its worker
    # lives; another lifecycle (or supervisor) takes over once it has not been renewed for this long.
    lease_duration: float = 15.0
    # This platform's identity, from the store (see trackside.identity); set by the lifecycle at start.
    platform_id: str = ""
    # Deadlines for a job to answer /live and then /ready after its replicas are started.
    job_live_timeout: float = 120.0
    job_ready_timeout: float = 600.0
    log_level: str = "info"
    # Docker targets. Images are named {docker_registry}/{docker_registry_namespace}/job-entrypoint/{job}:{tag}
    # and pushed when docker_registry is set (e.g. 127.0.0.1:5000).
    docker_registry: str = ""
    docker_registry_namespace: str = "trackside"
    # "host", or the name of a bridge network (created when missing; ports published on loopback).
    docker_network: str = "host"
    # Engine of the `docker` target: "" = DOCKER_HOST or the local socket (target present when the
    # socket exists); "off" = no `docker` target.
    docker_url: str = ""
    # Base image per job type name (or name:version); defaults are the job type's own.
    docker_base_images: dict[str, str] = Field(default_factory=dict)
    # More Docker targets by name: {url: tcp://...|unix://..., tls_verify: bool, cert_path: dir}.
    docker_targets: dict[str, dict[str, Any]] = Field(default_factory=dict)

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'trackside.db'}"

    @property
    def resolved_plugins_dir(self) -> Path:
        return self.plugins_dir or self.data_dir / "plugins"

    @property
    def pub_url(self) -> str:
        return self.external_pub_url or f"http://{self.host}:{self.port}/pub"

    @property
    def job_pub_url(self) -> str:
        """The gateway address jobs use for job-to-job calls."""
        return self.internal_pub_url or self.pub_url


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Build settings from the file, the environment, then explicit overrides (CLI flags)."""
    overrides = {k: v for k, v in overrides.items() if v is not None}
    file_values: dict[str, Any] = {}
    path = config_file or (Path(os.environ["TRACKSIDE_CONFIG"]) if os.environ.get("TRACKSIDE_CONFIG") else None)
    if path is None:
        data_dir = Path(overrides.get("data_dir") or default_data_dir())
        candidate = data_dir / "config.yaml"
        path = candidate if candidate.is_file() else None
    if path is not None:
        try:
            loaded = yaml.safe_load(Path(path).read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise InvalidInput(f"config file {path}: {exc}") from exc
        if not isinstance(loaded, dict):
            raise InvalidInput(f"config file {path}: expected a mapping of settings")
        file_values = loaded
    # Environment beats the file: drop file keys that an env var sets.
    env_keys = {k[len("TRACKSIDE_") :].lower() for k in os.environ if k.startswith("TRACKSIDE_")}
    merged = {k: v for k, v in file_values.items() if k not in env_keys}
    merged.update(overrides)
    try:
        return Settings(**merged)
    except Exception as exc:  # pydantic.ValidationError: say which setting and where
        raise InvalidInput(f"invalid settings{f' in {path}' if path else ''}: {exc}") from exc
