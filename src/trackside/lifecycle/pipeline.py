"""The deploy pipeline: every change of what serves a job version, as a plan over the same named steps.

Deploy, redeploy, reprovision and move are plans (`PLANS`) over seven steps:

    fetch -> build -> provision -> wait ready -> switch traffic -> retire previous      (roll back on failure)

- fetch: the job's source into the build's workspace (uploaded, cloned, or the source an earlier build
  of the version kept);
- build: a local artifact or a container image, whichever the target runs (`artifact_kind`);
- provision: the new replicas on the target, beside the serving ones when the target can run two
  deployments of a version side by side (`SideBySideDeployer`);
- wait ready: every new replica live (with this deployment's timestamp) and ready;
- switch traffic: one transaction points the job's row, which the gateways route by, at the new
  replicas, with the grants, public endpoint requests and audit event that go with it;
- retire previous: once no gateway routes to the earlier replicas (their cached routes expired), those
  are stopped, finishing the calls they have in flight;
- roll back: a deployment that fails before the switch removes what it made and leaves the serving
  replicas serving.

Each invariant lives here once:
- one deployment per job version at a time: a unique index on the deployments in progress, so a move
  and a forced deploy of the same version can't run at once, on any number of lifecycle processes;
- the version keeps serving: the row is written only at the switch (a first deploy's row says
  `starting` until then), so `latest` never resolves to nothing and the old replicas take the calls
  until the new ones are ready; the earlier replicas go only after the gateways' route cache has let
  go of them (the gateway bounds a route's age by `gateway_cache_ttl` from when it asked);
- audit: the switch records the deploy, redeploy or move; a roll back records the failure;
- recovery after a crash: a deployment is owned by the worker running it under a lease it renews
  (`trackside.lifecycle.leases`). A worker that finds a deployment whose lease expired (or whose owner
  it can see is gone) takes it over: if the row already points at its replicas it finishes it (retires
  the previous ones), otherwise it rolls it back as a failure.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Literal

import yaml
from sqlalchemy.exc import IntegrityError

from trackside.build.artifacts import ArtifactStore, build_tag, new_generation, new_tag
from trackside.build.builder import build_job, phase_logger, prepare_source
from trackside.build.jobtype import JobType
from trackside.build.spec import BuildSpec
from trackside.config import Settings
from trackside.domain import JobDto, JobFamilyDto, JobSecrets, JobStatus
from trackside.errors import AlreadyExists, InvalidInput, TracksideError
from trackside.identity import platform_id
from trackside.infra.base import ImageBuilder, InfrastructureTarget
from trackside.lifecycle import governance, job_versions, leases
from trackside.lifecycle.deployments import INTERRUPTED_ERROR, DeploymentProgress, in_progress
from trackside.manifest.load import parse_manifest
from trackside.manifest.model import Manifest
from trackside.plugins.engine import PluginEngine
from trackside.store.database import Database
from trackside.store.models import Deployment, Job

log = logging.getLogger(__name__)

TRACING_HEADER = "X-Request-Tracing-Id"


class Step(StrEnum):
    FETCH = "fetch"
    BUILD = "build"
    PROVISION = "provision"
    WAIT_READY = "wait ready"
    SWITCH = "switch traffic"
    RETIRE = "retire previous"
    ROLL_BACK = "roll back"


Kind = Literal["deploy", "redeploy", "reprovision", "move", "build"]

_FULL = (Step.FETCH, Step.BUILD, Step.PROVISION, Step.WAIT_READY, Step.SWITCH, Step.RETIRE)
PLANS: dict[Kind, tuple[Step, ...]] = {
    "deploy": _FULL,
    "redeploy": _FULL,
    "reprovision": (Step.PROVISION, Step.WAIT_READY, Step.SWITCH, Step.RETIRE),  # nothing is built
    "move": _FULL,
    # `racetrack run-local`: the job's image only, left in the registry; nothing runs or is recorded
    # as the job, and the build's workspace goes once the image is pushed.
    "build": (Step.FETCH, Step.BUILD),
}


class Mode(StrEnum):
    """How a deployment's replicas relate to what serves the version now."""

    FIRST = "first"  # nothing serves it yet: a new version
    BESIDE = "beside"  # the same target runs the new replicas beside the serving ones
    IN_PLACE = "in place"  # the same target replaces the serving replicas itself (Racetrack's deployers)
    ACROSS = "across"  # another target: the serving replicas are on the version's previous target


@dataclass(frozen=True)
class Previous:
    """What served the version when the deployment started."""

    tag: str
    target_name: str


@dataclass(frozen=True)
class Order:
    """A deployment to run, everything resolved and checked (bad input is refused before it starts)."""

    kind: Kind
    manifest: Manifest
    manifest_yaml: str
    target: InfrastructureTarget
    username: str | None
    previous: Previous | None = None  # None: a first deploy
    job_type: JobType | None = None  # None for a reprovision: nothing is built
    secrets: JobSecrets = field(default_factory=JobSecrets)
    build_context: str | None = None  # an uploaded source
    no_cache: bool = False
    reuse_source_of: str | None = None  # the tag of an earlier build whose source this build reuses
    reuse_build: str | None = None  # a reprovision: the tag of the build to run again
    source_version: str | None = None  # a rebuild: what the serving build was built from, built again
    notices: tuple[str, ...] = ()  # choices made for the user (the target), told as warnings and logged

    def secret_values(self) -> list[str]:
        password = (self.secrets.git_credentials or {}).get("password") or ""
        values = [*self.secrets.secret_build_env.values(), *self.secrets.secret_runtime_env.values(), password]
        return [value for value in values if value]


@dataclass
class Run:
    """One deployment as it runs: what every step, roll back and recovery need to know."""

    id: str
    kind: Kind
    name: str
    version: str
    tag: str
    target_name: str
    target: InfrastructureTarget | None  # None when a taken-over deployment's target is gone
    previous: Previous | None
    username: str | None
    progress: DeploymentProgress
    order: Order | None = None  # None for a deployment taken over from a stopped worker
    started: float = field(default_factory=time.monotonic)
    git_version: str | None = None
    source_version: str | None = None  # what this deployment's build was built from
    provisioned: bool = False
    job: JobDto | None = None
    timestamp: int = 0
    switched: bool = False  # the row points at this deployment's replicas: no roll back any more
    lost: bool = False  # another worker took the lease over: stop without touching anything
    error: TracksideError | None = None

    @property
    def mode(self) -> Mode:
        if self.previous is None:
            return Mode.FIRST
        if self.previous.target_name != self.target_name:
            return Mode.ACROSS
        if self.target is not None and self.target.side_by_side is not None:
            return Mode.BESIDE
        return Mode.IN_PLACE


class LeaseLost(Exception):
    """Another worker took this deployment over (its lease expired): it is theirs to finish now."""


class DeployPipeline:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        plugins: PluginEngine,
        artifacts: ArtifactStore,
        workers: int = 8,
        worker: leases.Worker | None = None,
    ) -> None:
        self.settings = settings
        self.db = db
        self.plugins = plugins
        self.artifacts = artifacts
        self.cache_dir = settings.data_dir / "cache"
        self.worker = worker or leases.current_worker()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="deploy")
        self._runs: dict[str, Run] = {}
        self._runs_lock = threading.Lock()
        self._stop = threading.Event()
        self._lease_thread: threading.Thread | None = None
        self._default_image_builder: ImageBuilder | None = None

    # -- starting -------------------------------------------------------------------------------

    def start(self, order: Order) -> str:
        """Record the deployment and run it on a worker thread; its id."""
        run = self._record(order)
        self._pool.submit(self.run, run)
        return run.id

    def run_now(self, order: Order) -> Run:
        """Record the deployment and run it in this thread (a synchronous API such as move)."""
        run = self._record(order)
        self.run(run)
        return run

    def _record(self, order: Order) -> Run:
        manifest = order.manifest
        if order.kind == "reprovision":
            assert order.reuse_build is not None
            # Beside the serving replicas the new ones need a deployment tag of their own.
            side_by_side = order.target.side_by_side is not None and order.previous is not None
            tag = new_generation(order.reuse_build) if side_by_side else order.reuse_build
        else:
            tag = new_tag()
        for attempt in (1, 2):
            try:
                with self.db.session() as session:
                    deployment = Deployment(
                        manifest=order.manifest_yaml,
                        job_name=manifest.name,
                        job_version=manifest.version,
                        deployed_by=order.username,
                        infrastructure_target=order.target.name,
                        phase="queued",
                        kind=order.kind,
                        tag=tag,
                        previous_tag=order.previous.tag if order.previous else None,
                        previous_target=order.previous.target_name if order.previous else None,
                        owner=self.worker.id,
                        lease_expires_at=leases.expiry(self.settings.lease_duration),
                    )
                    session.add(deployment)
                    session.flush()
                    deployment_id = deployment.id
                break
            except IntegrityError:
                # One in progress per version. One left behind by a stopped worker is settled first.
                if attempt == 1 and self.settle_abandoned(manifest.name, manifest.version):
                    continue
                raise AlreadyExists(
                    f"a deployment of job {manifest.name} version {manifest.version} is already in progress"
                ) from None
        assert order.target.name is not None
        run = Run(
            id=deployment_id,
            kind=order.kind,
            name=manifest.name,
            version=manifest.version,
            tag=tag,
            target_name=order.target.name,
            target=order.target,
            previous=order.previous,
            username=order.username,
            progress=DeploymentProgress(self.db, deployment_id, secrets=order.secret_values()),
            order=order,
        )
        with self._runs_lock:
            self._runs[run.id] = run
        return run

    # -- running ----------------------------------------------------------------------------------

    def run(self, run: Run) -> None:
        """Run the plan of `run.kind`; on failure roll back and record why."""
        order = run.order
        assert order is not None
        steps: dict[Step, Callable[[Run, Order], None]] = {
            Step.FETCH: self._fetch,
            Step.BUILD: self._build,
            Step.PROVISION: self._provision,
            Step.WAIT_READY: self._wait_ready,
            Step.SWITCH: self._switch,
            Step.RETIRE: self._retire,
        }
        try:
            for warning in order.manifest.warnings:
                run.progress.warn(warning)
            for notice in order.notices:
                run.progress.warn(notice)
                run.progress.log(notice)
            for step in PLANS[run.kind]:
                self._enter(run, step)
                steps[step](run, order)
            self._done(run)
        except LeaseLost:
            log.warning("deployment %s was taken over by another worker; leaving it to them", run.id)
        except Exception as exc:
            self._fail(run, exc)
        finally:
            with self._runs_lock:
                self._runs.pop(run.id, None)

    def _enter(self, run: Run, step: Step) -> None:
        if run.lost:
            raise LeaseLost(run.id)
        run.progress.step(step.value)

    def _fetch(self, run: Run, order: Order) -> None:
        if run.kind == "move":
            run.progress.log(
                f"moving job {run.name} {run.version} from {order.previous.target_name if order.previous else '-'} "
                f"to {run.target_name}"
            )
        # A rebuild builds what the serving build was built from: that build's source when it was
        # kept, else (git) a fresh checkout of the same commit.
        spec = replace(self._build_spec(run, order), source_version=order.source_version)
        if order.reuse_source_of is not None:
            earlier = self.artifacts.build_dir(run.name, run.version, order.reuse_source_of) / "src"
            if earlier.is_dir():
                shutil.copytree(earlier, spec.source_dir, symlinks=True)
                spec = replace(spec, source_ready=True)
            elif order.manifest.git is None:
                raise InvalidInput(f"job {run.name} {run.version} has no git remote and its uploaded source is gone")
        _, run.git_version, source_version = prepare_source(spec, phase_logger(spec))
        run.source_version = source_version or None
        if run.source_version:
            run.progress.update(source_version=run.source_version)

    def _build(self, run: Run, order: Order) -> None:
        spec = replace(
            self._build_spec(run, order),
            source_ready=True,
            fetched=True,
            git_version=run.git_version,
            source_version=run.source_version,
        )
        run.progress.phase("building")
        target = order.target
        if target.artifact_kind == "local" and run.kind != "build":
            self.artifacts.save(run.name, run.version, run.tag, build_job(spec))
        else:
            builder = target.image_builder or self.default_image_builder()
            run.progress.update(image_name=builder.build_image(spec, self.settings))

    def _build_spec(self, run: Run, order: Order) -> BuildSpec:
        if order.job_type is None:
            raise TracksideError(f"deployment {run.id}: a {run.kind} builds nothing")
        return BuildSpec(
            manifest=order.manifest,
            job_type=order.job_type,
            workspace=self.artifacts.build_dir(run.name, run.version, run.tag),
            cache_dir=self.cache_dir,
            log=run.progress.log,
            tag=run.tag,
            build_context=order.build_context,
            git_credentials=order.secrets.git_credentials,
            secret_build_env=dict(order.secrets.secret_build_env),
            no_cache=order.no_cache,
            on_phase=run.progress.phase,
        )

    def default_image_builder(self) -> ImageBuilder:
        """Images for a target that builds none itself: built on this host's Docker engine."""
        if self._default_image_builder is None:
            from trackside.infra.docker.engine import DockerEngine
            from trackside.infra.docker.images import DockerImageBuilder

            self._default_image_builder = DockerImageBuilder(DockerEngine(), platform_id(self.settings))
        return self._default_image_builder

    def _provision(self, run: Run, order: Order) -> None:
        target = order.target
        deployer = target.job_deployer
        if deployer is None or target.job_monitor is None:
            raise TracksideError(f"infrastructure target {target.name} cannot deploy jobs")
        run.progress.phase("creating cluster resources")
        deployer.save_job_secrets(run.name, run.version, order.secrets)
        run.timestamp = int(time.time())
        beside = target.side_by_side if run.mode is Mode.BESIDE else None
        deploy = beside.deploy_beside if beside is not None else deployer.deploy_job
        run.provisioned = True  # from here on a roll back removes what the target may have started
        run.job = deploy(
            order.manifest,
            self.settings,
            self.plugins,
            run.tag,
            self.runtime_env(order.manifest, order.manifest_yaml, run.timestamp),
            self._family(run.name),
            1,
            {
                **order.secrets.secret_runtime_env,
                # The family's token, for job-to-job calls: a secret, so it travels with the secrets.
                "AUTH_TOKEN": governance.family_token(self.settings, self.db, run.name),
            },
        )
        if run.mode is Mode.FIRST:
            # A new version is listed while it starts; nothing routes to it before the switch.
            self._write_job(run, order, run.job, JobStatus.STARTING.value)

    def _wait_ready(self, run: Run, order: Order) -> None:
        monitor = order.target.job_monitor
        assert monitor is not None and run.job is not None
        run.progress.phase("starting Job server")
        monitor.check_job_condition(
            run.job,
            deployment_timestamp=run.timestamp,
            on_job_alive=lambda: run.progress.phase("initializing Job entrypoint"),
        )

    def _switch(self, run: Run, order: Order) -> None:
        assert run.job is not None
        if run.kind != "move":
            run.progress.phase("post-deploy hooks")
            self.plugins.post_job_deploy(
                manifest=order.manifest, job=run.job, image_name=run.tag, deployer_username=run.username
            )
        if run.lost:
            raise LeaseLost(run.id)
        run.progress.phase("switching traffic")
        self._write_job(run, order, run.job, JobStatus.RUNNING.value, serving=True)
        run.switched = True

    def _retire(self, run: Run, order: Order | None) -> None:
        """After the switch: the previous replicas go once no gateway routes to them; old builds go."""
        mode, previous = run.mode, run.previous
        if previous is not None and mode in (Mode.BESIDE, Mode.ACROSS):
            run.progress.phase("removing the previous replicas")
            run.progress.log("the new replicas serve; removing the previous replicas")
            self.drain_routes()
            try:
                if mode is Mode.BESIDE:
                    beside = run.target.side_by_side if run.target is not None else None
                    assert beside is not None
                    beside.retire_previous(run.name, run.version, keep_tag=run.tag)
                else:
                    old = self.plugins.infrastructure_targets().get(previous.target_name)
                    if old is not None and old.job_deployer is not None:
                        old.job_deployer.delete_job(run.name, run.version)
            except Exception as exc:  # the new replicas serve; say what was left behind
                run.progress.log(f"warning: removing the previous replicas failed: {exc}")
        self.artifacts.remove_others(run.name, run.version, keep=run.tag)

    def drain_routes(self) -> None:
        """Wait until no gateway routes by a decision taken before the switch.

        A gateway keeps a route for at most `gateway_cache_ttl` seconds from the moment it asked the
        lifecycle (trackside.gateway.resolver), and a call decides its route and writes its request in
        one step; so once this has passed, calls reach only the new replicas, and those still in flight
        at the old ones finish there (the old replicas are stopped with SIGTERM, which lets them)."""
        time.sleep(self.settings.gateway_cache_ttl)

    def _done(self, run: Run) -> None:
        if run.kind == "build":
            self.artifacts.remove(run.name, run.version, run.tag)  # the image is what it made
            run.progress.log(f"built in {time.monotonic() - run.started:.2f}s")
        else:
            run.progress.log(f"deployed in {time.monotonic() - run.started:.2f}s")
        run.progress.done()

    # -- the job's row: the one write that decides what the gateways route to ---------------------

    def _write_job(self, run: Run, order: Order, dto: JobDto, status: str, serving: bool = False) -> None:
        manifest = order.manifest
        with self.db.session() as session:
            job = job_versions.find_job(session, run.name, run.version)
            if job is None:
                family = job_versions.get_or_create_family(session, run.name)
                job = Job(family_id=family.id, name=run.name, version=run.version, manifest=order.manifest_yaml)
                session.add(job)
            fields: dict[str, object] = {
                "status": status,
                "manifest": order.manifest_yaml,
                "internal_name": dto.internal_name,
                "replica_internal_names": list(dto.replica_internal_names),
                "image_tag": run.tag,
                "infrastructure_target": run.target_name,
                "error": None,
                "infrastructure_stats": dict(dto.infrastructure_stats),
            }
            if run.kind != "move":  # a move keeps who deployed it
                fields["deployed_by"] = run.username
            if run.source_version:  # a reprovision runs the same build: its source stays what it was
                fields["source_version"] = run.source_version
            job_type_version = dto.job_type_version or (order.job_type.version if order.job_type else None)
            if job_type_version:
                fields["job_type_version"] = job_type_version
            job_versions.update_job(job, **fields)
            if serving:
                governance.record_serving(
                    session, job, run.id, run.kind, manifest, run.username, first_deploy=run.mode is Mode.FIRST
                )

    # -- failing ----------------------------------------------------------------------------------

    def _fail(self, run: Run, exc: Exception) -> None:
        message = exc.message if isinstance(exc, TracksideError) else f"{type(exc).__name__}: {exc}"
        if not isinstance(exc, TracksideError):
            log.error("deployment %s failed unexpectedly:\n%s", run.id, traceback.format_exc())
        if run.kind == "move":
            message = f"move to {run.target_name} failed: {message}"
        run.error = type(exc)(message) if isinstance(exc, TracksideError) else TracksideError(message)
        if run.switched:  # it serves; what failed after that is in the log
            log.error("deployment %s failed after its switch: %s", run.id, message)
            run.progress.failed(message)
            return
        try:
            run.progress.step(Step.ROLL_BACK.value)
        except Exception:
            log.exception("recording the roll back of deployment %s", run.id)
        self.roll_back(run, message)
        run.progress.failed(message)
        if run.kind != "build":
            governance.after_failed_deploy(self.db, run.id, run.name, run.version, run.username)

    def roll_back(self, run: Run, error: str) -> None:
        """Undo a deployment that did not reach the switch: what serves the version keeps serving."""
        name, version, mode = run.name, run.version, run.mode
        target = run.target
        deployer = target.job_deployer if target is not None else None
        if run.kind == "build":  # it started nothing and wrote no job: only its workspace is left
            self.artifacts.remove(name, version, run.tag)
            return
        try:
            if run.provisioned and deployer is not None:
                if mode is Mode.BESIDE:
                    beside = target.side_by_side if target is not None else None
                    assert beside is not None
                    beside.discard_deployment(name, version, run.tag)
                elif mode in (Mode.FIRST, Mode.ACROSS):
                    deployer.delete_job(name, version)
            with self.db.session() as session:
                job = job_versions.find_job(session, name, version)
                if job is not None and mode is Mode.FIRST and job.image_tag == run.tag:
                    session.delete(job)  # the row this deployment created
                elif job is not None and mode is Mode.IN_PLACE and run.provisioned:
                    # The target replaced the replicas in place: the version is not what the user had,
                    # nor what they deployed. Say why (Racetrack issue #491).
                    job_versions.update_job(job, status=JobStatus.ERROR.value, error=error)
            if not (mode is Mode.IN_PLACE and run.provisioned) and build_tag(run.tag) != build_tag(
                run.previous.tag if run.previous else ""
            ):
                self.artifacts.remove(name, version, run.tag)
        except Exception:
            log.exception("rolling back deployment %s of %s %s", run.id, name, version)

    # -- recovery: deployments whose worker stopped -----------------------------------------------

    def settle_abandoned(self, name: str | None = None, version: str | None = None) -> int:
        """Take over and settle the deployments in progress that no live worker holds; how many."""
        settled = 0
        for deployment in leases.abandoned_deployments(self.db, self.worker, name):
            if version is not None and deployment.job_version != version:
                continue
            if not leases.take_over_deployment(self.db, deployment, self.worker, self.settings.lease_duration):
                continue  # another worker was first, or it ended meanwhile
            try:
                self._settle(deployment)
            except Exception:  # one job's leftovers must not keep the others from being settled
                log.exception("settling the abandoned deployment %s", deployment.id)
            settled += 1
        return settled

    def _settle(self, deployment: Deployment) -> None:
        name, version = deployment.job_name, deployment.job_version
        if deployment.tag is None:
            # Recorded by an earlier Trackside, which kept no deployment tag: what it made can't be told
            # from what served before, so nothing is touched; a version it left starting is marked so.
            DeploymentProgress(self.db, deployment.id).failed(INTERRUPTED_ERROR)
            governance.after_failed_deploy(self.db, deployment.id, name, version, deployment.deployed_by)
            return
        targets = self.plugins.infrastructure_targets()
        target_name = deployment.infrastructure_target or ""
        previous = (
            Previous(deployment.previous_tag or "", deployment.previous_target)
            if deployment.previous_target is not None
            else None
        )
        progress = DeploymentProgress(self.db, deployment.id)
        run = Run(
            id=deployment.id,
            kind=_kind(deployment.kind),
            name=name,
            version=version,
            tag=deployment.tag or "",
            target_name=target_name,
            target=targets.get(target_name),
            previous=previous,
            username=deployment.deployed_by,
            progress=progress,
            provisioned=True,  # it may have been: removing what is not there is harmless
        )
        with self.db.session() as session:
            job = job_versions.find_job(session, name, version)
            switched = (
                job is not None
                and bool(run.tag)
                and job.image_tag == run.tag
                and job.infrastructure_target == target_name
                and job.status != JobStatus.STARTING.value
            )
        progress.log(f"its lifecycle worker stopped; {self.worker.host} takes it over")
        with self._runs_lock:
            self._runs[run.id] = run  # its lease is renewed while it is settled
        try:
            self._finish_or_roll_back(run, switched)
        finally:
            with self._runs_lock:
                self._runs.pop(run.id, None)

    def _finish_or_roll_back(self, run: Run, switched: bool) -> None:
        name, version, progress = run.name, run.version, run.progress
        if switched:
            log.warning("finishing the deployment %s of %s %s its worker left after the switch", run.id, name, version)
            self._enter(run, Step.RETIRE)
            self._retire(run, None)
            progress.log("finished by another lifecycle worker")
            progress.done()
            return
        log.warning("rolling back the deployment %s of %s %s its worker left unfinished", run.id, name, version)
        progress.step(Step.ROLL_BACK.value)
        self.roll_back(run, INTERRUPTED_ERROR)
        progress.failed(INTERRUPTED_ERROR)
        governance.after_failed_deploy(self.db, run.id, name, version, run.username)

    def settle_at_start(self) -> None:
        """At a lifecycle's start: settle what stopped workers left, and explain versions left starting."""
        settled = self.settle_abandoned()
        if settled:
            log.warning("settled %d deployment(s) left in progress by stopped workers", settled)
        with self.db.session() as session:
            for job in job_versions.list_jobs(session):
                if job.status == JobStatus.STARTING.value and in_progress(session, job.name, job.version) is None:
                    job_versions.update_job(job, status=JobStatus.ERROR.value, error=INTERRUPTED_ERROR)

    # -- leases -----------------------------------------------------------------------------------

    def start_lease_loop(self) -> None:
        """Renew this worker's deployment leases, and settle deployments other workers left, in the background."""
        if self._lease_thread is None:
            self._lease_thread = threading.Thread(target=self._lease_loop, name="deploy-leases", daemon=True)
            self._lease_thread.start()

    def _lease_loop(self) -> None:
        interval = max(0.1, self.settings.lease_duration / 3)
        while not self._stop.wait(interval):
            try:
                self.renew_leases()
                for deployment in leases.abandoned_deployments(self.db, self.worker):
                    self._pool.submit(self.settle_abandoned, deployment.job_name, deployment.job_version)
            except Exception:
                log.exception("renewing deployment leases failed")

    def renew_leases(self) -> None:
        with self._runs_lock:
            runs = dict(self._runs)
        lost = leases.renew_deployments(self.db, list(runs), self.worker, self.settings.lease_duration)
        for deployment_id in lost:
            runs[deployment_id].lost = True

    def close(self) -> None:
        self._stop.set()
        if self._lease_thread is not None:
            self._lease_thread.join(timeout=5)
        self._pool.shutdown(wait=False, cancel_futures=True)

    # -- what every job gets ----------------------------------------------------------------------

    def _family(self, name: str) -> JobFamilyDto:
        with self.db.session() as session:
            return job_versions.family_dto(job_versions.get_or_create_family(session, name))

    def runtime_env(self, manifest: Manifest, manifest_yaml: str, deployment_timestamp: int) -> dict[str, str]:
        """What every job process gets (the job contract)."""
        env = {key: "" for key in manifest.build_env or {}}  # build-only values are blanked at runtime
        env.update(manifest.runtime_env or {})
        env.update(self.plugins.runtime_env_vars())
        env.update(
            JOB_NAME=manifest.name,
            JOB_VERSION=manifest.version,
            PUB_URL=self.settings.job_pub_url,
            JOB_DEPLOYMENT_TIMESTAMP=str(deployment_timestamp),
            REQUEST_TRACING_HEADER=TRACING_HEADER,
            JOB_MANIFEST_YAML=manifest_yaml.replace("\n", "\\n"),
        )
        return env


def _kind(value: str) -> Kind:
    for kind in PLANS:
        if kind == value:
            return kind
    return "deploy"


def stored_manifest(manifest_yaml: str) -> Manifest:
    return parse_manifest(yaml.safe_load(manifest_yaml), source="stored manifest")
