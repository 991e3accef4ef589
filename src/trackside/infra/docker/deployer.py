"""JobDeployer of a Docker target: a job version is a set of labelled containers (replicas).

With the host network (the default) each replica listens on a free port of the engine's host, so the
gateway and the job's own calls to the gateway (`PUB_URL`) both work over loopback; with a named
bridge network each replica listens on 7000 inside and the engine publishes it on a host port.
A job of several images (Racetrack's docker-proxy job type: a proxy and the job's own image) runs
each replica's further images as sidecar containers in the first one's network namespace
(`--network container:FIRST`). Images of Racetrack's job types listen on port 7000 whatever `PORT` says
(label `trackside.fixed-port`): on the host network they would collide, so their replicas go on the
bridge network `docker_fixed_port_network` instead.

`resources` become `--memory`, `--memory-reservation`, `--cpus` and `--cpu-shares`; a request the
engine can't meet is refused before anything starts, naming the field.

A redeploy has no gap (`SideBySideDeployer`): `deploy_beside` starts the new deployment's containers
(labelled with its deployment tag) beside the serving ones; the lifecycle switches traffic once they are
ready and then calls `retire_previous`, or `discard_deployment` when they never get ready (the old ones
keep serving). Racetrack's `deploy_job` replaces the earlier containers at once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from trackside.build.images import LABEL_FIXED_PORT, LABEL_JOB_IMAGES, image_reference
from trackside.domain import JobDto, JobFamilyDto, JobSecrets, JobStatus
from trackside.errors import DeployFailed
from trackside.infra.base import PluginHooks, SideBySideDeployer
from trackside.infra.docker.containers import CONTAINER_PORT, JobContainers, RunSpec
from trackside.infra.docker.engine import DockerEngine, DockerError
from trackside.infra.docker.naming import container_name, job_labels, sidecar_labels
from trackside.infra.secrets import SecretFileStore

if TYPE_CHECKING:
    from trackside.config import Settings
    from trackside.manifest.model import Manifest


STOP_GRACE_S = 5  # a retired replica's time to finish in-flight calls after SIGTERM


class DockerJobDeployer(SideBySideDeployer):
    def __init__(self, target: str, containers: JobContainers, secrets: SecretFileStore, network: str) -> None:
        self.target = target
        self.containers = containers
        self.secrets = secrets
        self.network = network or "host"

    @property
    def engine(self) -> DockerEngine:
        return self.containers.engine

    def deploy_job(
        self,
        manifest: Manifest,
        config: Settings,
        plugin_engine: PluginHooks,
        tag: str,
        runtime_env_vars: dict[str, str],
        family: JobFamilyDto,
        containers_num: int = 1,
        runtime_secret_vars: dict[str, str] | None = None,
    ) -> JobDto:
        """Racetrack's deploy: the new containers, then the version's earlier ones removed at once."""
        job = self.deploy_beside(
            manifest, config, plugin_engine, tag, runtime_env_vars, family, containers_num, runtime_secret_vars
        )
        self.containers.remove_other_deployments(manifest.name, manifest.version, keep_tag=tag)
        return job

    def deploy_beside(
        self,
        manifest: Manifest,
        config: Settings,
        plugin_engine: PluginHooks,
        tag: str,
        runtime_env_vars: dict[str, str],
        family: JobFamilyDto,
        containers_num: int = 1,
        runtime_secret_vars: dict[str, str] | None = None,
    ) -> JobDto:
        name, version = manifest.name, manifest.version
        replicas = manifest.replicas or containers_num  # the manifest validates it (1 to 50)
        image = image_reference(config, name, tag)
        self._ensure_image(image, config)
        sidecar_images = [
            image_reference(config, name, tag, i) for i in range(1, _int(self._image_label(image, LABEL_JOB_IMAGES)))
        ]
        for sidecar_image in sidecar_images:
            self._ensure_image(sidecar_image, config)
        limits = self._limits(manifest)
        timestamp = int(runtime_env_vars.get("JOB_DEPLOYMENT_TIMESTAMP") or 0)
        job_type = self._image_label(image, "trackside.job-type") or (manifest.jobtype or "")
        fixed_port = _int(self._image_label(image, LABEL_FIXED_PORT))
        network = self.network
        if fixed_port and network == "host":
            # Racetrack's job types listen on a port of their own choosing: each replica needs a network
            # namespace of its own, so they go on a bridge network, their port published on the host.
            network = config.docker_fixed_port_network
        self.containers.ensure_network(network)
        # The version's earlier deployments keep serving: they go in `retire_previous`, once the
        # deploy service has moved traffic to this one. Only a retry of this very build is replaced.
        self.containers.remove_deployment(name, version, tag)
        started: list[str] = []
        addresses: list[str] = []
        taken: set[int] = set()
        host_network = network == "host"
        local_engine = self.containers.host in ("127.0.0.1", "localhost")
        try:
            for index in range(replicas):
                port = self.containers.free_port(taken) if host_network else (fixed_port or CONTAINER_PORT)
                taken.add(port)
                env = {
                    **runtime_env_vars,
                    **(runtime_secret_vars or {}),
                    "PORT": str(port),
                    "JOB_HOST": "127.0.0.1" if host_network and local_engine else "0.0.0.0",
                    "JOB_USER_MODULE_HOSTNAME": "localhost",
                }
                container = container_name(self.target, name, version, index, tag)
                spec = RunSpec(
                    container=container,
                    image=image,
                    labels=job_labels(
                        self.containers.platform, self.target, name, version, index, tag, port, timestamp, job_type
                    ),
                    env=env,
                    network=network,
                    port=port,
                    publish_host="127.0.0.1" if local_engine else "",
                    **limits,
                )
                self.containers.start(spec)
                started.append(container)
                for number, sidecar_image in enumerate(sidecar_images, start=1):
                    sidecar = RunSpec(
                        container=f"{container}-c{number}",
                        image=sidecar_image,
                        labels=sidecar_labels(self.containers.platform, self.target, container),
                        env=env,
                        network=f"container:{container}",
                        port=0,
                        **limits,
                    )
                    self.containers.start(sidecar)
                    started.append(sidecar.container)
            for replica in self.containers.find(name, version, tag):
                addresses.append(replica.address)
        except Exception:
            self.containers.remove_deployment(name, version, tag)
            raise
        if len(addresses) != replicas:
            raise DeployFailed(f"job {name} {version}: started {replicas} containers but {len(addresses)} are there")
        return JobDto(
            name=name,
            version=version,
            status=JobStatus.STARTING.value,
            internal_name=addresses[0],
            replica_internal_names=addresses,
            image_tag=tag,
            infrastructure_target=self.target,
            job_type_version=job_type.partition(":")[2] or None,
            infrastructure_stats={"image": image, "containers": started},
        )

    def _image_label(self, image: str, label: str) -> str:
        result = self.engine.run(
            ["image", "inspect", "--format", f'{{{{index .Config.Labels "{label}"}}}}', image], check=False
        )
        value = result.stdout.strip() if result.returncode == 0 else ""
        return "" if value == "<no value>" else value

    def _ensure_image(self, image: str, config: Settings) -> None:
        if self.engine.image_exists(image):
            return
        registry = config.docker_registry
        if not registry:
            raise DeployFailed(f"image {image} is not on Docker engine {self.engine.url} and no registry is configured")
        try:
            self.engine.run(["pull", image], timeout=600, what=f"pulling {image}")
        except DockerError as exc:
            raise DeployFailed(f"image {image} could not be pulled from registry {registry}: {exc.stderr}") from None

    def _limits(self, manifest: Manifest) -> dict[str, Any]:
        resources = manifest.resources
        if resources is None:
            return {}
        info = self.engine.info()
        cpus = int(info.get("NCPU") or 0)
        memory_total = int(info.get("MemTotal") or 0)
        limits: dict[str, Any] = {}
        memory_max, memory_min = resources.memory_max_bytes, resources.memory_min_bytes
        cpu_max, cpu_min = resources.cpu_max_cores, resources.cpu_min_cores
        if memory_max is not None:
            limits["memory"] = memory_max
            if memory_total and memory_max > memory_total:
                raise DeployFailed(
                    f"resources.memory_max {resources.memory_max} is more than the {memory_total // 2**20} MiB "
                    f"of memory of Docker engine {self.engine.url}"
                )
        if memory_min is not None:
            limits["memory_reservation"] = memory_min
            if memory_total and memory_min > memory_total:
                raise DeployFailed(
                    f"resources.memory_min {resources.memory_min} is more than the {memory_total // 2**20} MiB "
                    f"of memory of Docker engine {self.engine.url}"
                )
        if cpu_max is not None:
            limits["cpus"] = cpu_max
            if cpus and cpu_max > cpus:
                raise DeployFailed(
                    f"resources.cpu_max {resources.cpu_max} asks for more than the {cpus} CPUs of Docker engine "
                    f"{self.engine.url}"
                )
        if cpu_min is not None:
            limits["cpu_shares"] = max(2, int(cpu_min * 1024))
        return limits

    def retire_previous(self, job_name: str, job_version: str, keep_tag: str) -> None:
        """Stop (letting in-flight calls finish) and remove the version's deployments other than `keep_tag`."""
        old = [r for r in self.containers.find(job_name, job_version) if r.tag != keep_tag]
        if not old:
            return
        ids = [r.id for r in old]
        self.engine.run(["stop", "--time", str(STOP_GRACE_S), *ids], check=False, timeout=STOP_GRACE_S + 60)
        self.containers.remove(old)

    def discard_deployment(self, job_name: str, job_version: str, tag: str) -> None:
        self.containers.remove_deployment(job_name, job_version, tag)

    def delete_job(self, job_name: str, job_version: str) -> None:
        self.containers.remove_job(job_name, job_version)
        self.secrets.remove(job_name, job_version)

    def job_exists(self, job_name: str, job_version: str) -> bool:
        return bool(self.containers.find(job_name, job_version))

    def save_job_secrets(self, job_name: str, job_version: str, job_secrets: JobSecrets) -> None:
        self.secrets.save(job_name, job_version, job_secrets)

    def get_job_secrets(self, job_name: str, job_version: str) -> JobSecrets:
        return self.secrets.get(job_name, job_version)


def _int(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        return 0
