"""A Docker target's containers: find them by label, start, remove, read their output.

The one module that turns job replicas into `docker` commands, shared by the deployer, the monitor
and the logs streamer of a target.
"""

from __future__ import annotations

import json
import random
import socket
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, field

from trackside.errors import DeployFailed, InvalidInput
from trackside.infra.docker.engine import DockerEngine, DockerError
from trackside.infra.docker.naming import (
    LABEL_NAME,
    LABEL_PLATFORM,
    LABEL_SIDECAR_OF,
    LABEL_TAG,
    LABEL_TARGET,
    LABEL_VERSION,
    Replica,
)

CONTAINER_PORT = 7000  # the job contract's port inside a bridge network
REMOTE_PORT_RANGE = (20000, 29999)


@dataclass
class RunSpec:
    """What one replica's `docker run` needs."""

    container: str
    image: str
    labels: dict[str, str]
    env: dict[str, str]
    network: str  # "host", the name of a bridge network, or "container:NAME" (a replica's sidecar)
    port: int  # the port the job listens on (host network) or CONTAINER_PORT (bridge)
    publish_host: str = "127.0.0.1"
    memory: int | None = None  # bytes
    memory_reservation: int | None = None
    cpus: float | None = None
    cpu_shares: int | None = None
    restart: str = "unless-stopped"
    extra_args: list[str] = field(default_factory=list)


class JobContainers:
    """The containers of one target of one platform: every query is filtered on both labels."""

    def __init__(self, engine: DockerEngine, target: str, platform: str) -> None:
        self.engine = engine
        self.target = target
        self.platform = platform

    @property
    def host(self) -> str:
        return self.engine.config.job_host

    def find(self, name: str | None = None, version: str | None = None, tag: str | None = None) -> list[Replica]:
        """Every container of this target (of one job version, and one deployment of it, when given)."""
        args = ["ps", "-a", "-q", "--no-trunc"]
        args += [
            "--filter",
            f"label={LABEL_PLATFORM}={self.platform}",
            "--filter",
            f"label={LABEL_TARGET}={self.target}",
        ]
        if name is not None:
            args += ["--filter", f"label={LABEL_NAME}={name}"]
        if version is not None:
            args += ["--filter", f"label={LABEL_VERSION}={version}"]
        if tag is not None:
            args += ["--filter", f"label={LABEL_TAG}={tag}"]
        ids = self.engine.run(args, what="listing containers").stdout.split()
        if not ids:
            return []
        result = self.engine.run(["inspect", *ids], check=False)
        if result.returncode != 0 and not result.stdout.strip():
            # A container removed between ps and inspect: not an error, ask again once.
            ids = self.engine.run(args, what="listing containers").stdout.split()
            result = self.engine.run(["inspect", *ids], what="inspecting containers") if ids else result
        try:
            data = json.loads(result.stdout or "[]")
        except ValueError:
            data = []
        replicas = [Replica.from_inspect(item, self.host) for item in data]
        found = [r for r in replicas if r is not None]
        return sorted(found, key=lambda r: (r.name, r.version, r.index))

    def used_ports(self) -> set[int]:
        return {r.port for r in self.find()}

    def free_port(self, taken: Iterable[int]) -> int:
        """A port for a host-network replica: free on this machine for a local engine, else unused by us."""
        taken = set(taken) | self.used_ports()
        local = self.host in ("127.0.0.1", "localhost")
        for _ in range(200):
            if local:
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", 0))
                    port = int(sock.getsockname()[1])
            else:
                port = random.randint(*REMOTE_PORT_RANGE)
            if port not in taken:
                return port
        raise DeployFailed(f"no free port found for a job on Docker engine {self.engine.url}")

    def ensure_network(self, network: str) -> None:
        if network in ("host", "bridge", "none"):
            return
        if self.engine.run(["network", "inspect", network], check=False).returncode != 0:
            created = self.engine.run(["network", "create", "--driver", "bridge", network], check=False)
            # Another deploy (or platform) may have created it meanwhile: that is as good.
            if created.returncode != 0 and self.engine.run(["network", "inspect", network], check=False).returncode:
                self.engine.raise_for(created.stderr, f"creating network {network}")

    def start(self, spec: RunSpec) -> str:
        """Create and start one replica; its environment travels through the client's own env."""
        args = ["run", "-d", "--name", spec.container, "--restart", spec.restart, "--network", spec.network]
        for key, value in spec.labels.items():
            args += ["--label", f"{key}={value}"]
        for key in spec.env:
            args += ["-e", key]
        if spec.network != "host" and not spec.network.startswith("container:"):
            args += ["-p", f"{spec.publish_host}::{spec.port}" if spec.publish_host else str(spec.port)]
        if spec.memory is not None:
            args += ["--memory", str(spec.memory)]
        if spec.memory_reservation is not None:
            args += ["--memory-reservation", str(spec.memory_reservation)]
        if spec.cpus is not None:
            args += ["--cpus", f"{spec.cpus:g}"]
        if spec.cpu_shares is not None:
            args += ["--cpu-shares", str(spec.cpu_shares)]
        args += [*spec.extra_args, spec.image]
        for key in spec.env:
            if not key or "=" in key:
                raise InvalidInput(f"environment variable name {key!r} is not valid")
        result = self.engine.run(args, env=spec.env, check=False)
        if result.returncode != 0:
            # `docker run` may leave a created container behind when starting it failed.
            self.engine.run(["rm", "-f", spec.container], check=False)
            try:
                self.engine.raise_for(result.stderr, f"starting container {spec.container}")
            except DockerError as exc:
                raise DeployFailed(_run_error(exc.stderr, spec, self.engine.url)) from None
        return result.stdout.strip()

    def sidecars(self, replica_container: str) -> list[str]:
        """Ids of the containers running beside a replica (a job's further images)."""
        args = ["ps", "-a", "-q", "--no-trunc", "--filter", f"label={LABEL_PLATFORM}={self.platform}"]
        args += ["--filter", f"label={LABEL_TARGET}={self.target}"]
        args += ["--filter", f"label={LABEL_SIDECAR_OF}={replica_container}"]
        return self.engine.run(args, what="listing containers").stdout.split()

    def remove(self, replicas: Iterable[Replica]) -> None:
        replicas = list(replicas)
        ids = [sidecar for r in replicas for sidecar in self.sidecars(r.container)] + [r.id for r in replicas]
        if ids:
            self.engine.run(["rm", "-f", *ids], what="removing containers")

    def remove_job(self, name: str, version: str) -> int:
        replicas = self.find(name, version)
        self.remove(replicas)
        return len(replicas)

    def remove_deployment(self, name: str, version: str, tag: str) -> int:
        """Remove one deployment (generation) of a version: the replicas built from `tag`."""
        replicas = self.find(name, version, tag)
        self.remove(replicas)
        return len(replicas)

    def remove_other_deployments(self, name: str, version: str, keep_tag: str) -> int:
        """Remove every generation of a version but `keep_tag`'s (the one now serving)."""
        replicas = [r for r in self.find(name, version) if r.tag != keep_tag]
        self.remove(replicas)
        return len(replicas)

    def logs(self, container: str, tail: int) -> list[str]:
        """The container's output, stdout and stderr interleaved as docker keeps them."""
        args = ["logs", container] if tail <= 0 else ["logs", "--tail", str(tail), container]
        process = subprocess.run(
            self.engine.command(args),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            timeout=self.engine.timeout,
        )
        return process.stdout.splitlines()


def _run_error(stderr: str, spec: RunSpec, url: str) -> str:
    message = stderr.strip().splitlines()
    text = next((line for line in message if "Error response from daemon" in line), message[-1] if message else "")
    text = text.replace("docker: ", "").strip()
    hint = ""
    lowered = text.lower()
    if "cpu" in lowered:
        hint = f" (resources.cpu_max asks for {spec.cpus:g} CPUs)" if spec.cpus is not None else ""
    elif "memory" in lowered:
        hint = f" (resources.memory_max asks for {spec.memory} bytes)" if spec.memory is not None else ""
    return f"Docker engine {url} refused to start container {spec.container}: {text}{hint}"
