"""Starting a replica's process: its environment, its port, and telling a port clash from a crash.

Secret values (the job's secret runtime env and the credentials the platform hands it) are given to
the process but kept out of its state file; they are read back from the secrets store on a restart.
The command that starts it, through its sandbox, comes from `confinement.py`.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import time

from trackside.build.artifacts import LocalArtifact
from trackside.infra.local.processes import base_env, spawn
from trackside.infra.local.replica import Replica
from trackside.infra.local.state import ReplicaState

# Runtime env vars whose values are credentials: kept with the secrets, never in state files.
SECRET_RUNTIME_VARS = ("AUTH_TOKEN",)
# A replica that failed to bind its port is started again at once on another one, this many times.
MAX_BIND_RETRIES = 5
_BIND_FAILURE = re.compile(r"address already in use|errno 98\b|eaddrinuse", re.IGNORECASE)


def split_env(
    artifact: LocalArtifact, runtime_env: dict[str, str], secret_env: dict[str, str]
) -> tuple[dict[str, str], dict[str, str]]:
    """(public, secret) environment of a job's replicas, PORT aside: public goes into state files."""
    secrets = {k: runtime_env[k] for k in SECRET_RUNTIME_VARS if k in runtime_env}
    secrets.update(secret_env)
    public = {**base_env(), **artifact.env, **runtime_env}
    for secret_key in secrets:
        public.pop(secret_key, None)
    return public, secrets


def replica_env(public: dict[str, str], port: int) -> dict[str, str]:
    return {**public, "PORT": str(port), "JOB_HOST": "127.0.0.1"}


def new_state(
    name: str,
    version: str,
    index: int,
    tag: str,
    artifact: LocalArtifact,
    env: dict[str, str],
    secret_keys: list[str],
    port: int,
    deployment_timestamp: int,
    home: str,
    uid: int | None,
) -> ReplicaState:
    return ReplicaState(
        name=name,
        version=version,
        index=index,
        pid=0,
        port=port,
        tag=tag,
        command=list(artifact.command),
        cwd=artifact.cwd,
        env=env,
        secret_env_keys=sorted(secret_keys),
        deployment_timestamp=deployment_timestamp,
        start_time=time.time(),
        job_type_version=artifact.job_type_version,
        home=home,
        uid=uid,
    )


def start(rep: Replica, command: list[str], cwd: str, env: dict[str, str], secrets: dict[str, str]) -> None:
    """Start the replica's process with `command` (its own or through its sandbox) in `cwd`.

    Sets its process, pid and log offset. Raises OSError when the job's program can't be found, before
    anything starts: a sandbox would only find out once it is running.
    """
    program = rep.state.command[0] if rep.state.command else ""
    if "/" in program and not os.path.isabs(program):
        program = os.path.join(cwd, program)
    if shutil.which(program, path=env.get("PATH", os.defpath)) is None:
        raise FileNotFoundError(errno.ENOENT, "No such file or directory (or not executable)", program)
    rep.process, rep.log_offset = spawn(command, cwd, {**env, **secrets}, rep.log_path)
    rep.state.pid = rep.process.pid


def failed_to_bind(rep: Replica, output: str) -> bool:
    """True when the exited replica's `output` says its port was taken (and it may try another)."""
    return bool(_BIND_FAILURE.search(output)) and rep.bind_retries < MAX_BIND_RETRIES
