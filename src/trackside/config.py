"""Settings: defaults < config file < TRACKSIDE_* environment variables < CLI flags.

The config file is YAML, found at `--config`, `TRACKSIDE_CONFIG`, or `{data_dir}/config.yaml`.
Every component reads the same `Settings`, so split components are pointed at each other by the
same file or variables (`lifecycle_url` for the gateway and the supervisor).
"""

from __future__ import annotations

import os
from contextvars import ContextVar
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, YamlConfigSettingsSource

from trackside.errors import InvalidInput
from trackside.safe_yaml import load_yaml


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
    # Limits on a request's head in the gateway (docs/security.md, "Request limits"): the URL
    # (longer: 414), the whole head and the number of header lines (more: 431).
    gateway_max_url_bytes: int = Field(default=16 * 1024, ge=256)
    gateway_max_head_bytes: int = Field(default=64 * 1024, ge=1024)
    gateway_max_headers: int = Field(default=100, ge=8)
    # Racetrack's remote gateway mode (docs/kubernetes.md): non-empty makes this gateway the remote one,
    # beside the jobs of a target whose `remote_gateway_url` names it. It serves only calls the main
    # gateway forwards, which carry this token as X-Racetrack-Gateway-Token (401 otherwise), and sends
    # them to the jobs' replicas itself. Empty: a main gateway.
    gateway_remote_token: str = ""
    # Proxies in front of the platform (IP addresses or networks) whose X-Forwarded-For,
    # X-Forwarded-Proto/Host, X-Real-IP and Forwarded are believed; everyone else's are replaced
    # by what the gateway saw. Empty: nobody's (docs/security.md, "Client addresses and trusted proxies").
    trusted_proxies: list[str] = Field(default_factory=list)
    # JWT signing key (TRACKSIDE_AUTH_KEY); empty: generated once and kept in {data_dir}/auth.key.
    auth_key: str = ""
    # Fernet key for secrets at rest (TRACKSIDE_SECRETS_KEY); empty: kept in {data_dir}/secrets.key.
    secrets_key: str = ""
    supervisor_interval: float = 2.0
    # How often each gateway sends its per-minute call counts to the lifecycle (the dashboard's charts).
    call_report_interval: float = 10.0
    # A deployment or the supervisor's turn is held under a lease in the store, renewed while its worker
    # lives; another lifecycle (or supervisor) takes over once it has not been renewed for this long.
    lease_duration: float = 15.0
    # This platform's identity, from the store (see trackside.identity); set by the lifecycle at start.
    platform_id: str = ""
    # Deadlines for a job to answer /live and then /ready after its replicas are started.
    job_live_timeout: float = 120.0
    job_ready_timeout: float = 600.0
    log_level: str = "info"
    # The local target keeps jobs from the platform's files (docs/security.md, "Local target isolation"):
    # "users" (root: a uid and a private mount view per replica), "landlock" (unprivileged), "none",
    # or "auto" (the first of users, landlock that works here; "none" is said loudly at start).
    local_confinement: Literal["auto", "users", "landlock", "none"] = "auto"
    # Where replicas get their working dir, HOME and TMPDIR; empty: `{data_dir}-jobs` beside the data dir.
    local_jobs_dir: Path | None = None
    # Uids (and gids) for replicas when the platform runs as root: a range no account uses.
    local_job_first_uid: int = Field(default=3_000_000, ge=1000)
    local_job_uid_count: int = Field(default=100_000, ge=1)
    # Machine-wide claims on those uids, shared by every platform on the host (root's alone).
    local_uid_claims_dir: Path = Path("/run/trackside/job-uids")
    # More paths jobs may read under Landlock (besides the system's directories and their own files).
    local_job_read_paths: list[Path] = Field(default_factory=list)
    # Docker targets. Images are named {docker_registry}/{docker_registry_namespace}/job-entrypoint/{job}:{tag}
    # and pushed when docker_registry is set (e.g. 127.0.0.1:5000).
    docker_registry: str = ""
    docker_registry_namespace: str = "trackside"
    # "host", or the name of a bridge network (created when missing; ports published on loopback).
    docker_network: str = "host"
    # The bridge network (created when missing) of jobs whose images listen on a fixed port (Racetrack's
    # job types: 7000) when docker_network is "host": each replica then has a network of its own.
    docker_fixed_port_network: str = "trackside-jobs"
    # Engine of the `docker` target: "" = DOCKER_HOST or the local socket (target present when the
    # socket exists); "off" = no `docker` target.
    docker_url: str = ""
    # Base image per job type name (or name:version); defaults are the job type's own.
    docker_base_images: dict[str, str] = Field(default_factory=dict)
    # Images named in the Dockerfiles of builds (FROM, COPY --from) -> images the engine has, for an
    # engine that cannot pull them: {"python:3.9-slim-bullseye": "my/python:3.9", "golang:1.*": ...}.
    docker_image_map: dict[str, str] = Field(default_factory=dict)
    # The network of image builds' RUN steps (docs/security.md, "The network of builds"): "auto" = the
    # engine's own (its default bridge, or "host" where the engine has none), "default", "host", "none".
    docker_build_network: Literal["auto", "default", "host", "none"] = "auto"
    # More Docker targets by name: {url: tcp://...|unix://..., tls_verify: bool, cert_path: dir}.
    docker_targets: dict[str, dict[str, Any]] = Field(default_factory=dict)
    # The `kubernetes` target (docs/kubernetes.md): the cluster a kubeconfig names, found as kubectl finds
    # it ("" = KUBECONFIG, ~/.kube/config, else the in-cluster service account; a path = that file;
    # "off" = no `kubernetes` target). Context "" = the kubeconfig's current one; namespace "" = the
    # context's (else "default").
    kubernetes_config: str = ""
    kubernetes_context: str = ""
    kubernetes_namespace: str = ""
    # What the gateway calls: "pod" (each pod's IP, reachable from where the platform runs), "service"
    # (the Service's ClusterIP) or "nodeport" (the Service's NodePort on 127.0.0.1).
    kubernetes_job_address: Literal["pod", "service", "nodeport"] = "pod"
    # PUB_URL given to jobs on the cluster (the gateway as pods reach it); "" = the one other targets get.
    kubernetes_pub_url: str = ""
    kubernetes_image_pull_policy: Literal["IfNotPresent", "Always", "Never"] = "IfNotPresent"
    # More Kubernetes targets by name: {kubeconfig, context, namespace, job_address, pub_url,
    # image_pull_policy, remote_gateway_url, remote_gateway_token}.
    kubernetes_targets: dict[str, dict[str, Any]] = Field(default_factory=dict)
    # Pipelines (docs/pipelines.md). The executor of container steps that name none: docker | kubernetes | local.
    pipeline_executor: str = "docker"
    # The `local` executor runs steps as processes of this host: off unless the operator trusts its users.
    pipeline_local_executor: bool = False
    # Engine of the docker executor: "" = the `docker` target's engine (docker_url); "off" = none.
    pipeline_docker_url: str = ""
    # Image names used in pipelines -> images the engine has (an air-gapped engine has no busybox).
    pipeline_images: dict[str, str] = Field(default_factory=dict)
    # Let the docker executor pull an image the engine lacks (off: a missing image fails the step).
    pipeline_docker_pull: bool = False
    pipeline_docker_network: str = "host"
    # Cluster of the kubernetes executor: "" = the `kubernetes` target's (kubernetes_config, found as
    # kubectl finds it); a kubeconfig path; "off" = no kubernetes executor.
    pipeline_kubernetes_config: str = ""
    # Namespace of the step Jobs: "" = the kubernetes target's (kubernetes_namespace, else the context's).
    pipeline_kubernetes_namespace: str = ""
    # imagePullPolicy of step containers: Never (air-gapped: images must be on the nodes) unless allowed.
    pipeline_kubernetes_image_pull_policy: Literal["Never", "IfNotPresent", "Always"] = "Never"
    # Keep finished step Jobs (and their pods) for the operator instead of deleting them once recorded.
    pipeline_kubernetes_keep_jobs: bool = False
    # Run the pipeline scheduler in this lifecycle process (every lifecycle replica may run one).
    pipeline_scheduler: bool = True
    # How long a scheduler's claim on a running step lasts without renewal (then another takes it over).
    pipeline_lease_seconds: float = 15.0
    # Steps running at once under one scheduler, all runs together (0: no limit).
    pipeline_max_running_steps: int = 64
    # chainr's log notifier: every run and step event on the platform's stdout.
    pipeline_log_notifier: bool = True
    # Global subscriptions to run and step events, in a pipeline's `notifications` format.
    pipeline_notifications: list[dict[str, Any]] = Field(default_factory=list)
    # Tries of a webhook or plugin notification before it is given up (backoff 1 s, 2 s, 4 s...).
    pipeline_notification_attempts: int = 6
    # Delete finished pipeline runs (steps, events, logs) this many days after they ended; 0: keep them.
    pipeline_run_retention_days: float = Field(default=0.0, ge=0)
    # Where job builds get Python packages: the operator's choice, never a job's (docs/security.md).
    # Passed to the installer (uv, pip) by the platform; options naming indexes in a job's requirements
    # file are refused. Empty index URL: the installer's default (PyPI, or the platform's own uv/pip
    # environment variables).
    package_index_url: str = ""
    package_extra_index_urls: list[str] = Field(default_factory=list)
    package_find_links: list[str] = Field(default_factory=list)
    # Direct URL and VCS requirements in a job's requirements (`pkg @ https://...`, `git+https://...`).
    allow_direct_requirements: bool = True

    @field_validator("trusted_proxies")
    @classmethod
    def _check_trusted_proxies(cls, value: list[str]) -> list[str]:
        from trackside.gateway.forwarding import parse_network

        for entry in value:
            parse_network(entry)
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Flags (init arguments), then TRACKSIDE_* variables, then the config file `load_settings` found."""
        path = _config_file.get()
        if path is None:
            return (init_settings, env_settings)
        return (init_settings, env_settings, ConfigFileSource(settings_cls, path))

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


class ConfigFileSource(YamlConfigSettingsSource):
    """The YAML config file as a settings source, parsed by `safe_yaml` (bounded, no duplicate keys).

    It ranks below the environment, and a setting the environment or a flag gives is taken from
    there whole: a dict setting is replaced, not merged key by key with the file's.
    """

    def __init__(self, settings_cls: type[BaseSettings], path: Path) -> None:
        if not path.is_file():
            raise InvalidInput(f"config file {path}: not found")
        super().__init__(settings_cls, yaml_file=path)

    def _read_file(self, file_path: Path | Traversable) -> dict[str, Any]:
        try:
            text = file_path.read_text()
        except OSError as exc:
            raise InvalidInput(f"config file {file_path}: {exc}") from exc
        loaded = load_yaml(text, f"config file {file_path}") or {}
        if not isinstance(loaded, dict):
            raise InvalidInput(f"config file {file_path}: expected a mapping of settings")
        return loaded

    def __call__(self) -> dict[str, Any]:
        return {key: value for key, value in super().__call__().items() if key not in self.current_state}


# The file `load_settings` reads while it builds a Settings; settings made in code read none.
_config_file: ContextVar[Path | None] = ContextVar("trackside_config_file", default=None)


def config_file_path(config_file: Path | None, data_dir: Path | None) -> Path | None:
    """`--config`, else `TRACKSIDE_CONFIG`, else `{data_dir}/config.yaml` when it exists."""
    if config_file is not None:
        return Path(config_file)
    if os.environ.get("TRACKSIDE_CONFIG"):
        return Path(os.environ["TRACKSIDE_CONFIG"])
    candidate = Path(data_dir or default_data_dir()) / "config.yaml"
    return candidate if candidate.is_file() else None


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Build settings from the file, the environment, then explicit overrides (CLI flags)."""
    overrides = {k: v for k, v in overrides.items() if v is not None}
    path = config_file_path(config_file, overrides.get("data_dir"))
    token = _config_file.set(path)
    try:
        return Settings(**overrides)
    except InvalidInput:
        raise
    except Exception as exc:  # pydantic.ValidationError: say which setting and where
        raise InvalidInput(f"invalid settings{f' in {path}' if path else ''}: {exc}") from exc
    finally:
        _config_file.reset(token)
