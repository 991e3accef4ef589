"""Racetrack's permission scopes; `full_access` covers every other one."""

from __future__ import annotations

from enum import StrEnum

from trackside.errors import InvalidInput


class Scope(StrEnum):
    READ_JOB = "read_job"
    DEPLOY_JOB = "deploy_job"
    DEPLOY_NEW_FAMILY = "deploy_new_family"
    DELETE_JOB = "delete_job"
    CALL_JOB = "call_job"
    CALL_ADMIN_API = "call_admin_api"
    # Start, cancel and retry pipeline runs, and read them (`/api/runs`, chainr's API).
    RUN_PIPELINE = "run_pipeline"
    FULL_ACCESS = "full_access"


# What a newly registered user may do on every job (Racetrack's defaults), and run pipelines.
NEW_USER_SCOPES = (Scope.READ_JOB, Scope.CALL_JOB, Scope.DEPLOY_NEW_FAMILY, Scope.DEPLOY_JOB, Scope.RUN_PIPELINE)
# What the first deploy of a job grants its deployer on that job.
DEPLOYER_SCOPES = (Scope.READ_JOB, Scope.CALL_JOB, Scope.DEPLOY_JOB, Scope.DELETE_JOB)


def parse_scope(value: str) -> Scope:
    try:
        return Scope(value)
    except ValueError:
        known = ", ".join(s.value for s in Scope)
        raise InvalidInput(f"unknown scope {value!r}; choose one of {known}") from None
