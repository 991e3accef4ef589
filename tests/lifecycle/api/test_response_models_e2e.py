"""The lifecycle's response models describe what Racetrack's client (`racetrack-client` from PyPI)
parses: every field its code reads of an answer is in that route's response schema (issue 14, section 3).

`CLIENT_READS` lists, per route, the fields the client reads, and where: each is checked against the
client's installed source (the module calls that route and names that field), so the list cannot
drift from the client; and every lifecycle route the client calls is in the list.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
import racetrack_client
from tests.support.platform import RunningPlatform

pytestmark = [pytest.mark.slow, pytest.mark.store]  # its platform uses fresh_database()

CLIENT = Path(racetrack_client.__file__).parent
API = "/lifecycle/api/v1"

# (client module, method, route, fields read of the answer). `[]` is each item of a list answer;
# `a.b` is field b of the object in field a.
CLIENT_READS: list[tuple[str, str, str, list[str]]] = [
    ("client/deploy.py", "post", "/deploy", ["id"]),
    ("client/run.py", "post", "/build", ["id"]),
    ("client/run.py", "get", "/deploy/{deployment_id}", ["status", "error", "image_name", "phase"]),
    ("client/deploy.py", "get", "/deploy/{deployment_id}", ["status", "error", "warnings", "phase", "job.pub_url"]),
    ("client/run.py", "get", "/deploy/{deployment_id}", ["status", "error", "image_name", "phase"]),
    (
        "client/manage.py",
        "get",
        "/job",
        [
            "[].name",
            "[].version",
            "[].status",
            "[].job_type_version",
            "[].infrastructure_target",
            "[].deployed_by",
            "[].update_time",
            "[].last_call_time",
            "[].pub_url",
        ],
    ),
    ("client/manage.py", "post", "/job/{name}/{version}/move", []),
    ("client/move.py", "post", "/job/{name}/{version}/move", []),
    ("client/manage.py", "delete", "/job/{name}/{version}", []),
    ("client/logs.py", "get", "/job/{name}/{version}", ["version"]),
    ("client/call.py", "get", "/job/{name}/{version}", ["pub_url"]),
    ("client/logs.py", "get", "/job/{name}/{version}/logs", ["logs"]),
    ("client/logs.py", "get", "/job/{name}/{version}/build-logs", ["logs"]),
    ("utils/auth.py", "get", "/info", ["auth_required"]),
    ("client_config/remote.py", "get", "/info", ["external_pub_url"]),
    ("utils/auth.py", "get", "/users/validate_user_auth", ["username"]),
    ("client_config/auth.py", "post", "/users/login", ["token"]),
    ("plugin/install.py", "post", "/plugin/upload/{filename}", ["name", "version"]),
    ("plugin/install.py", "delete", "/plugin/{name}/{version}", []),
    ("plugin/install.py", "get", "/plugin/{name}/{version}/download", []),
    ("plugin/install.py", "get", "/plugin", ["[].name", "[].version"]),
    ("plugin/install.py", "get", "/plugin/job_type/versions", ["[]"]),
]
# Routes the client calls that Trackside does not serve, each with why.
NOT_SERVED: dict[str, str] = {}
# Answers whose body is not JSON (the client saves or ignores them).
NOT_JSON = {("get", "/plugin/{name}/{version}/download")}


@pytest.fixture(scope="module")
def openapi(module_platform: RunningPlatform) -> dict[str, Any]:
    """The document a running platform serves."""
    response = httpx.get(f"{module_platform.url}/lifecycle/openapi.json", timeout=30)
    assert response.status_code == 200, response.text
    return dict(response.json())


def _placeholders(route: str) -> str:
    return re.sub(r"\{[^}]+\}", "{}", route)


def _client_routes() -> dict[str, set[str]]:
    """Every lifecycle route the client's code calls, by module (placeholders as `{}`, no query)."""
    found: dict[str, set[str]] = {}
    for module in CLIENT.rglob("*.py"):
        for match in re.finditer(r"\{lifecycle_url\}/api/v1(/[^'\"?]*)", module.read_text()):
            found.setdefault(module.relative_to(CLIENT).as_posix(), set()).add(_placeholders(match.group(1)))
    return found


def _resolve(schema: dict[str, Any], document: dict[str, Any]) -> dict[str, Any]:
    """The schema behind `$ref`s, and the non-null member of a nullable `anyOf`."""
    while True:
        if "$ref" in schema:
            schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
        elif "anyOf" in schema:
            members = [s for s in schema["anyOf"] if s.get("type") != "null"]
            assert len(members) == 1, schema
            schema = members[0]
        else:
            return schema


def _field_schema(schema: dict[str, Any], path: str, document: dict[str, Any]) -> dict[str, Any]:
    for part in re.findall(r"\[\]|[^.\[\]]+", path):
        schema = _resolve(schema, document)
        if part == "[]":
            assert schema.get("type") == "array", f"{path}: not a list: {schema}"
            schema = schema["items"]
        else:
            properties = schema.get("properties", {})
            assert part in properties, f"{path}: {part!r} is not among {sorted(properties)}"
            schema = properties[part]
    return _resolve(schema, document)


def _answer_schema(document: dict[str, Any], method: str, route: str) -> dict[str, Any]:
    operation = document["paths"][f"{API}{route}"][method]
    success = [code for code in operation["responses"] if code.startswith("2")]
    assert len(success) == 1, operation["responses"]
    content = operation["responses"][success[0]].get("content", {})
    return dict(content["application/json"]["schema"])


def test_every_route_the_racetrack_client_calls_is_listed_and_served(openapi: dict[str, Any]) -> None:
    listed = {(module, _placeholders(route)) for module, _method, route, _fields in CLIENT_READS}
    called = {(module, route) for module, routes in _client_routes().items() for route in routes}

    assert called - listed == {(module, route) for module, route in called if route in NOT_SERVED}
    served = {_placeholders(path[len(API) :]) for path in openapi["paths"] if path.startswith(API)}
    for module, method, route, _fields in CLIENT_READS:
        assert _placeholders(route) in served, f"{module} calls {method.upper()} {route}, which is not served"
        assert method in openapi["paths"][f"{API}{route}"], f"{module}: {route} has no {method.upper()}"


@pytest.mark.parametrize(
    ("module", "method", "route", "fields"),
    [pytest.param(*read, id=f"{read[1]} {read[2]} in {read[0]}") for read in CLIENT_READS],
)
def test_each_field_the_racetrack_client_reads_is_in_the_routes_response_model(
    openapi: dict[str, Any], module: str, method: str, route: str, fields: list[str]
) -> None:
    source = (CLIENT / module).read_text()
    assert re.search(re.escape(_placeholders(route)).replace(r"\{\}", r"\{[^}]+\}"), source), f"{module}: {route}"
    if (method, route) in NOT_JSON:
        return
    schema = _answer_schema(openapi, method, route)
    answer = _resolve(schema, openapi)
    if answer.get("type") == "array":
        answer = _resolve(answer["items"], openapi)
    assert answer.get("properties") or answer.get("type") == "string", f"{route}: a free-form answer: {schema}"

    for field in fields:
        for name in re.findall(r"[^.\[\]]+", field):
            assert re.search(rf"""\[?['"]{name}['"]""", source), f"{module} does not read {name!r}"
        _field_schema(schema, field, openapi)


def test_every_error_answer_carries_the_error_field_the_client_prints(openapi: dict[str, Any]) -> None:
    assert "'error'" in (CLIENT / "utils/request.py").read_text()
    for method, route in [("post", "/deploy"), ("get", "/job/{name}/{version}"), ("post", "/users/login")]:
        responses = openapi["paths"][f"{API}{route}"][method]["responses"]
        for code in ("400", "401", "404"):
            error = responses[code]["content"]["application/json"]["schema"]
            assert _field_schema(error, "error", openapi)["type"] == "string"
