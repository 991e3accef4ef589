"""Every operation of the lifecycle's OpenAPI document, fuzzed with schemathesis against a real platform
(issue 9, item 8): no request, well-formed or malformed, gets a 5xx, and every documented answer
matches its schema.

One platform serves the module, seeded with a job, an ESC, a user and a grant; path parameters are
sometimes those seeded ids, so the fuzzed requests reach the code behind the 404s. Examples are few
and derandomized: the run is the same every time and takes a minute or two on two cores.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance
from tests.conftest import EXAMPLES
from tests.support.platform import RunningPlatform, deploy_and_wait

# Its platform uses fresh_database(). About two minutes on two idle cores: some 2,500 requests, and
# a deploy to seed; the limit leaves room for a loaded machine.
pytestmark = [pytest.mark.slow, pytest.mark.store, pytest.mark.timeout(900)]

MAX_EXAMPLES = 3
PASSWORD = "Quartz-Lantern-41"

# Operations never fuzzed, each with why.
EXCLUDED = {
    # They revoke or re-sign the admin's own token, which every later request of the run carries;
    # tests/lifecycle/test_governance_e2e.py covers them.
    "POST /lifecycle/api/v1/auth/token/user/regenerate": "rotates the token this run authenticates with",
    "POST /lifecycle/api/v1/auth/token/user/all/regenerate": "re-signs the token this run authenticates with",
}
# Operations fuzzed with malformed requests only: a well-formed one would change what every later
# request sees (maintenance mode answers 503 to changes, by design).
NEGATIVE_ONLY = {"PUT /lifecycle/api/v1/settings/maintenance"}
# Operations that never get the seeded ids, each with why (they are still fuzzed with random ids).
UNSEEDED = {
    # A redeploy, reprovision or move of the seeded job starts a real build or provisioning per example.
    "POST /lifecycle/api/v1/job/{name}/{version}/redeploy": "starts a build",
    "POST /lifecycle/api/v1/job/{name}/{version}/reprovision": "starts provisioning",
    "POST /lifecycle/api/v1/job/{name}/{version}/move": "starts provisioning",
    # Deleting the seeded job, user or ESC would leave every later operation only 404s to reach.
    "DELETE /lifecycle/api/v1/job/{name}/{version}": "removes the seeded job",
    "DELETE /lifecycle/api/v1/users/{username}": "removes the seeded user",
    # Follows the job's log forever (server-sent events).
    "GET /lifecycle/api/v1/job/{name}/{version}/logs/stream": "never ends",
}


@dataclass
class Seeded:
    platform: RunningPlatform
    path_parameters: dict[str, str]


@pytest.fixture(scope="module")
def seeded(module_platform: RunningPlatform) -> Iterator[Seeded]:
    try:
        yield Seeded(module_platform, _seed(module_platform))
    finally:
        module_platform.secrets.add(PASSWORD)


def _seed(platform: RunningPlatform) -> dict[str, str]:
    http, api = platform.http, platform.api
    deployed = deploy_and_wait(platform, EXAMPLES / "adder")
    assert deployed["status"] == "done", deployed
    esc = http.post(f"{api}/escs", json={"name": "fuzz-esc"})
    assert esc.status_code == 201, esc.text
    platform.secrets.add(esc.json()["token"])
    username = "fuzz-user@example.com"
    user = http.post(f"{api}/users", json={"username": username, "password": PASSWORD})
    assert user.status_code == 201, user.text
    grant = http.post(
        f"{api}/permissions",
        json={"subject_type": "esc", "subject": esc.json()["id"], "scope": "call_job", "job_family": "adder"},
    )
    assert grant.status_code == 201, grant.text
    permissions = http.get(f"{api}/permissions").json()
    token_id = http.get(f"{api}/escs/{esc.json()['id']}/auth_data").json()["tokens"][0]["id"]
    platform.secrets.update(t["token"] for t in http.get(f"{api}/escs/{esc.json()['id']}/auth_data").json()["tokens"])
    return {
        "name": "adder",
        "version": "0.0.1",
        "job_name": "adder",
        "job_version": "0.0.1",
        "family_name": "adder",
        "source": "adder",
        "target": "adder",
        "scope": "call_job",
        "esc_id": esc.json()["id"],
        "token_id": token_id,
        "username": username,
        "deployment_id": deployed["id"],
        "permission_id": str(permissions[0]["id"]),
    }


def _label(operation: Any) -> str:
    return f"{operation.method.upper()} {operation.path}"


def _operations(schema: Any) -> list[Any]:
    """The operations to fuzz: each route once (those under `/api/v1` are the same handlers again)."""
    found = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path.startswith("/api/v1/") or _label(operation) in EXCLUDED:
            continue
        found.append(operation)
    return found


def _modes(operation: Any) -> list[GenerationMode]:
    if _label(operation) in NEGATIVE_ONLY:
        return [GenerationMode.NEGATIVE]
    return [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]


def _known(operation: Any, seeded: dict[str, str]) -> dict[str, str]:
    """The seeded ids this operation's path takes (none for those that must not get them)."""
    if _label(operation) in UNSEEDED:
        return {}
    names = {p.name for p in operation.path_parameters}
    return {k: v for k, v in seeded.items() if k in names}


def _strategy(operation: Any, seeded: dict[str, str]) -> st.SearchStrategy[Any]:
    known = _known(operation, seeded)
    strategies = []
    for mode in _modes(operation):
        strategies.append(operation.as_strategy(generation_mode=mode))
        if known:
            strategies.append(operation.as_strategy(generation_mode=mode, path_parameters=known))
    return st.one_of(strategies)


def _fuzz(schema: Any, operation: Any, seeded: Seeded) -> list[str]:
    """One operation: schemathesis' coverage cases (boundaries, missing and wrong-typed values), also
    on the seeded ids, then generated examples; the problems found (at most one per kind)."""
    problems: dict[str, str] = {}
    headers = seeded.platform.auth

    def check(case: Any) -> None:
        try:
            response = case.call(base_url=seeded.platform.url, headers=headers, timeout=30)
        except Exception as exc:  # the platform dropped the connection: as bad as a 500
            problems.setdefault(type(exc).__name__, f"{case.as_curl_command()}: {exc}")
            return
        try:
            case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])
        except (AssertionError, BaseExceptionGroup) as exc:  # schemathesis' FailureGroup is a BaseExceptionGroup
            key = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            problems.setdefault(key[:200], f"{case.as_curl_command()}\n    -> {response.status_code} {exc}")

    known = _known(operation, seeded.path_parameters)
    config = schema.config.generation_for(operation=operation)
    for case in schema.iter_coverage_cases(operation, generation_modes=_modes(operation), generation_config=config):
        if case.method.upper() != operation.method.upper():
            continue  # a method the route lacks: the router's 405, the same for every route
        check(case)
        if known and case.meta is not None and case.meta.generation.mode == GenerationMode.POSITIVE:
            case.path_parameters = {**(case.path_parameters or {}), **known}
            check(case)

    @settings(
        max_examples=MAX_EXAMPLES,
        derandomize=True,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=_strategy(operation, seeded.path_parameters))
    def generated(case: Any) -> None:
        check(case)

    generated()
    return [f"{_label(operation)}: {problem}" for problem in problems.values()]


def test_no_lifecycle_operation_answers_5xx_or_off_its_schema(seeded: Seeded) -> None:
    schema = schemathesis.openapi.from_url(f"{seeded.platform.url}/lifecycle/openapi.json")
    operations = _operations(schema)
    assert len(operations) > 60, [_label(o) for o in operations]

    problems = [problem for operation in operations for problem in _fuzz(schema, operation, seeded)]

    assert problems == [], "\n".join(problems)
    health = httpx.get(f"{seeded.platform.url}/lifecycle/health", timeout=30)
    assert health.status_code == 200, health.text
