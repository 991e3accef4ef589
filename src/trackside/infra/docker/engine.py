"""One Docker engine, local or remote, driven through the `docker` command-line client.

The CLI rather than the Engine API because image builds need BuildKit (build secrets, secret and
bind mounts), which the API exposes only through BuildKit's gRPC session protocol; using the CLI for
everything keeps one code path, one way to reach a remote daemon (`-H URL` plus TLS flags, as
`DOCKER_HOST` would) and one kind of error. Debian's client (`/usr/bin/docker`) is preferred because it
uses the daemon's built-in BuildKit without the buildx plugin. Environment values are handed to the
client through its own environment (`-e NAME` without a value), never on its command line, so secrets
do not show up in the host's process list.

An unreachable daemon is an `Unavailable` error that names the engine's URL; so is a failed TLS
handshake (saying which certificates were used) and a `cert_path` lacking ca.pem, cert.pem or key.pem
(naming the missing files: the client would otherwise fall back to ~/.docker without saying so).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from trackside.errors import InvalidInput, TracksideError, Unavailable

DEFAULT_URL = "unix:///var/run/docker.sock"
PREFERRED_CLIENTS = ("/usr/bin/docker",)
COMMAND_TIMEOUT = 120.0
TLS_FILES = (("--tlscacert", "ca.pem"), ("--tlscert", "cert.pem"), ("--tlskey", "key.pem"))
_UNREACHABLE_MARKERS = (
    "Cannot connect to the Docker daemon",
    "error during connect",
    "connection refused",
    "no such host",
    "i/o timeout",
    "dial unix",
    "dial tcp",
    "certificate",
    "tls:",
)
# What the Go client says when the TLS handshake fails either way (server or client certificate).
_TLS_MARKERS = ("x509:", "tls:", "remote error", "certificate", "first record does not look like a tls handshake")


class DockerError(TracksideError):
    """A docker command failed; `stderr` is the client's explanation."""

    def __init__(self, message: str, stderr: str = "") -> None:
        super().__init__(message)
        self.stderr = stderr


def docker_client_path() -> str:
    for path in PREFERRED_CLIENTS:
        if os.access(path, os.X_OK):
            return path
    found = shutil.which("docker")
    if found is None:
        raise Unavailable("no docker client installed on this host (apt-get install docker.io)")
    return found


@dataclass(frozen=True)
class EngineConfig:
    """Where a Docker daemon is: a `DOCKER_HOST`-style URL and its TLS options."""

    url: str = ""
    tls_verify: bool = False
    cert_path: str = ""  # directory with ca.pem, cert.pem, key.pem (as DOCKER_CERT_PATH)

    @property
    def display_url(self) -> str:
        return self.url or os.environ.get("DOCKER_HOST") or DEFAULT_URL

    def host_args(self) -> list[str]:
        args: list[str] = []
        if self.url:
            args += ["-H", self.url]
        if self.tls_verify or self.cert_path:
            if self.tls_verify:
                args.append("--tlsverify")
            else:
                args.append("--tls")
            if self.cert_path:
                base = Path(self.cert_path)
                files = [(flag, base / name) for flag, name in TLS_FILES]
                missing = [str(path) for _, path in files if not path.is_file()]
                if missing:
                    # Without this the client quietly falls back to ~/.docker/*.pem and fails obscurely.
                    raise Unavailable(
                        f"Docker engine {self.display_url}: TLS file(s) missing: {', '.join(missing)} "
                        f"(cert_path {base} must hold ca.pem, cert.pem and key.pem)"
                    )
                for flag, path in files:
                    args += [flag, str(path)]
        return args

    @property
    def job_host(self) -> str:
        """The address at which this engine's host-network containers are reached."""
        url = self.display_url
        if url.startswith(("tcp://", "http://", "https://", "ssh://")):
            host = urlsplit(url).hostname or ""
            return "127.0.0.1" if host in ("", "localhost", "0.0.0.0") else host
        return "127.0.0.1"

    @classmethod
    def from_dict(cls, name: str, raw: Any) -> EngineConfig:
        if isinstance(raw, str):
            raw = {"url": raw}
        if not isinstance(raw, dict):
            raise InvalidInput(f"settings docker_targets.{name}: expected a mapping with 'url', got {raw!r}")
        unknown = set(raw) - {"url", "tls_verify", "cert_path"}
        if unknown:
            raise InvalidInput(f"settings docker_targets.{name}: unknown field(s) {', '.join(sorted(unknown))}")
        url = str(raw.get("url") or "")
        if url and not url.startswith(("unix://", "tcp://", "ssh://", "npipe://")):
            raise InvalidInput(
                f"settings docker_targets.{name}.url: {url!r} is not a Docker host URL (unix://, tcp:// or ssh://)"
            )
        return cls(url=url, tls_verify=bool(raw.get("tls_verify", False)), cert_path=str(raw.get("cert_path") or ""))


@dataclass
class DockerEngine:
    config: EngineConfig = field(default_factory=EngineConfig)
    timeout: float = COMMAND_TIMEOUT

    def __post_init__(self) -> None:
        self._info: dict[str, Any] | None = None
        self._buildkit: bool | None = None
        self._build_network: str | None = None
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return self.config.display_url

    def command(self, args: Sequence[str]) -> list[str]:
        return [docker_client_path(), *self.config.host_args(), *args]

    def _environment(self, env: dict[str, str] | None, buildkit: bool) -> dict[str, str]:
        base = dict(os.environ)
        if self.config.url:  # this engine's own URL and TLS flags, not the caller's DOCKER_* variables
            for key in ("DOCKER_HOST", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "DOCKER_CONTEXT"):
                base.pop(key, None)
        if buildkit:
            base["DOCKER_BUILDKIT"] = "1"
        base.update(env or {})
        return base

    def run(
        self,
        args: Sequence[str],
        env: dict[str, str] | None = None,
        timeout: float | None = None,
        check: bool = True,
        what: str = "",
    ) -> subprocess.CompletedProcess[str]:
        """Run one docker command; an unreachable daemon is `Unavailable`, another failure `DockerError`."""
        try:
            result = subprocess.run(
                self.command(args),
                env=self._environment(env, buildkit=False),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout or self.timeout,
            )
        except subprocess.TimeoutExpired:
            raise Unavailable(
                f"Docker engine {self.url} did not answer `docker {args[0]}` within {timeout or self.timeout:g}s"
            ) from None
        if result.returncode != 0 and check:
            self.raise_for(result.stderr, what or f"docker {args[0]}")
        return result

    def raise_for(self, stderr: str, what: str) -> None:
        text = stderr.strip()
        uses_tls = self.config.tls_verify or bool(self.config.cert_path)
        if _tls_failure(text) or (uses_tls and _closed_at_connect(text)):
            certificates = (
                f"certificates from {self.config.cert_path}" if self.config.cert_path else "default certificates"
            )
            reason = _tls_reason(text)
            if not _tls_failure(text):
                reason += " (the engine closed the connection during the TLS handshake: does it trust cert.pem?)"
            raise Unavailable(f"TLS connection to Docker engine {self.url} failed ({certificates}): {reason}")
        if _unreachable(text):
            raise Unavailable(f"Docker engine {self.url} is not reachable: {_last_line(text)}")
        raise DockerError(f"{what} failed on Docker engine {self.url}: {text or 'no error output'}", text)

    def json(self, args: Sequence[str], what: str = "") -> Any:
        out = self.run(args, what=what).stdout
        return json.loads(out) if out.strip() else None

    def stream(
        self,
        args: Sequence[str],
        on_line: Callable[[str], None],
        env: dict[str, str] | None = None,
        timeout: float = 3600.0,
        buildkit: bool = False,
    ) -> tuple[int, list[str]]:
        """Run a long command, passing each output line (stdout and stderr merged) as it comes.

        Returns the exit code and the last lines, for the error message of a failure.
        """
        process = subprocess.Popen(
            self.command(args),
            env=self._environment(env, buildkit=buildkit),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            bufsize=1,
        )
        timer = threading.Timer(timeout, process.kill)
        timer.start()
        last: list[str] = []
        try:
            assert process.stdout is not None
            for raw in process.stdout:
                line = raw.rstrip("\n")
                last.append(line)
                if len(last) > 40:
                    del last[0]
                on_line(line)
            return process.wait(), last
        finally:
            timer.cancel()
            if process.poll() is None:
                process.kill()
                process.wait()
            if process.stdout is not None:
                process.stdout.close()

    # -- questions asked often -------------------------------------------------------------------

    def info(self, refresh: bool = False) -> dict[str, Any]:
        with self._lock:
            if self._info is None or refresh:
                self._info = self.json(["info", "--format", "{{json .}}"], what="docker info") or {}
            return self._info

    def ping(self) -> None:
        """Raise `Unavailable` naming the engine when its daemon can't be reached."""
        self.run(["version", "--format", "{{.Server.Version}}"], timeout=15, what="docker version")

    def image_exists(self, image: str) -> bool:
        return self.run(["image", "inspect", "--format", "{{.Id}}", image], check=False).returncode == 0

    def buildkit_available(self) -> bool:
        """Does this client build with BuildKit without the buildx plugin (Debian's docker.io does)?"""
        if self._buildkit is None:
            result = self.run(["build", "--help"], env={"DOCKER_BUILDKIT": "1"}, check=False)
            self._buildkit = "--secret" in result.stdout
        return self._buildkit

    def default_build_network(self) -> str:
        """The network a build's `RUN` steps get from this engine when the operator chose none.

        `default` (the engine's bridge) where the engine has its default `bridge` network; `host` where
        it has none (a daemon started with `--bridge=none`, whose `default` would leave builds with
        no way out)."""
        if self._build_network is None:
            result = self.run(["network", "ls", "--format", "{{.Name}}"], what="docker network ls")
            self._build_network = "default" if "bridge" in result.stdout.split() else "host"
        return self._build_network


def _tls_failure(text: str) -> bool:
    lowered = text.lower()
    return any(marker in lowered for marker in _TLS_MARKERS)


def _closed_at_connect(text: str) -> bool:
    """`error during connect: ...: EOF`: a TLS listener that dropped us (how a refused client cert can look)."""
    line = _last_line(text)
    return "error during connect" in line and line.rstrip().endswith(("EOF", "connection reset by peer"))


def _tls_reason(text: str) -> str:
    """The client's explanation without the request it was making (`error during connect: Get "...": `)."""
    line = _last_line(text)
    for marker in ("x509:", "tls:", "remote error:"):
        at = line.find(marker)
        if at >= 0:
            return line[at:]
    return line


def _unreachable(text: str) -> bool:
    lowered = text.lower()
    return any(marker.lower() in lowered for marker in _UNREACHABLE_MARKERS)


def _last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no answer"
