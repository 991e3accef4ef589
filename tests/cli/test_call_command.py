"""`trackside call`: payload parsing, the job URL lookup, `--curl`, and error bodies."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
from tests.cli.support import Cli, ScriptedApi

from trackside.cli.config import ClientConfig, resolve_remote_url, save_client_config
from trackside.cli.jobs import curl_command, parse_payload
from trackside.errors import InvalidInput

JOB_PATH = "/lifecycle/api/v1/job/adder/latest"


def job_dto(api: ScriptedApi) -> dict[str, object]:
    return {"name": "adder", "version": "0.0.1", "status": "running", "pub_url": f"{api.url}/pub/job/adder/0.0.1"}


def test_payload_is_read_as_json() -> None:
    assert parse_payload('{"a": 40, "b": 2}') == {"a": 40, "b": 2}


def test_payload_is_read_as_yaml() -> None:
    assert parse_payload("a: 40\nb: 2") == {"a": 40, "b": 2}
    assert parse_payload("{a: 40, b: 2}") == {"a": 40, "b": 2}


def test_payload_is_read_from_a_file(tmp_path: Path) -> None:
    (tmp_path / "p.json").write_text('{"numbers": [1, 2]}')

    assert parse_payload(f"@{tmp_path / 'p.json'}") == {"numbers": [1, 2]}


def test_unparseable_payload_says_where_the_problem_is() -> None:
    with pytest.raises(InvalidInput, match="PAYLOAD.*line 1"):
        parse_payload("{a: 1")


def test_curl_command_is_shell_safe_and_round_trips() -> None:
    payload = {"text": 'it\'s a "quote" $HOME'}

    command = curl_command("http://h/pub/job/adder/0.0.1/api/v1/perform", payload, "tok")

    argv = shlex.split(command)
    assert argv[:4] == ["curl", "-X", "POST", "http://h/pub/job/adder/0.0.1/api/v1/perform"]
    assert argv[argv.index("-H", 5) : argv.index("-H", 5) + 2] == ["-H", "X-Racetrack-Auth: tok"]
    assert json.loads(argv[argv.index("-d") + 1]) == payload


def test_curl_command_has_no_auth_header_without_a_token() -> None:
    assert "X-Racetrack-Auth" not in curl_command("http://h/x", {}, None)


def test_call_curl_prints_the_command_for_the_jobs_url(cli: Cli, scripted_api: ScriptedApi) -> None:
    scripted_api.answer("GET", JOB_PATH, job_dto(scripted_api))
    save_client_config(ClientConfig(user_auths={resolve_remote_url(scripted_api.url): "tok"}))

    result = cli("call", "adder", '{"a": 40, "b": 2}', "--curl", "--remote", scripted_api.url)

    assert result.exit_code == 0, result.output
    argv = shlex.split(result.stdout)
    assert argv[3] == f"{scripted_api.url}/pub/job/adder/0.0.1/api/v1/perform"
    assert "X-Racetrack-Auth: tok" in argv
    assert json.loads(argv[argv.index("-d") + 1]) == {"a": 40, "b": 2}
    assert scripted_api.received("POST", "/pub/job/adder/0.0.1/api/v1/perform") == []


def test_call_posts_the_payload_and_prints_the_json_answer(cli: Cli, scripted_api: ScriptedApi) -> None:
    scripted_api.answer("GET", JOB_PATH, job_dto(scripted_api))
    scripted_api.answer("POST", "/pub/job/adder/0.0.1/api/v1/perform", 42)

    result = cli("call", "adder", "a: 40\nb: 2", "--remote", scripted_api.url)

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == 42
    (request,) = scripted_api.received("POST", "/pub/job/adder/0.0.1/api/v1/perform")
    assert request.json() == {"a": 40, "b": 2}


def test_call_accepts_an_explicit_endpoint_and_version(cli: Cli, scripted_api: ScriptedApi) -> None:
    scripted_api.answer("GET", "/lifecycle/api/v1/job/adder/0.0.1", job_dto(scripted_api))
    scripted_api.answer("POST", "/pub/job/adder/0.0.1/api/v1/other", {"ok": True})

    result = cli("call", "adder", "api/v1/other", "{}", "--version", "0.0.1", "--remote", scripted_api.url)

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"ok": True}


def test_call_error_answer_prints_its_error_field_and_exits_1(cli: Cli, scripted_api: ScriptedApi) -> None:
    scripted_api.answer("GET", JOB_PATH, job_dto(scripted_api))
    scripted_api.answer(
        "POST", "/pub/job/adder/0.0.1/api/v1/perform", {"error": "perform() missing argument 'b'"}, status=400
    )

    result = cli("call", "adder", '{"a": 1}', "--remote", scripted_api.url)

    assert result.exit_code == 1
    assert result.stderr == "error: perform() missing argument 'b'\n"


def test_call_of_an_unknown_job_shows_the_apis_error(cli: Cli, scripted_api: ScriptedApi) -> None:
    scripted_api.answer("GET", JOB_PATH, {"error": "job 'adder' not found", "type": "NotFound"}, status=404)

    result = cli("call", "adder", "{}", "--remote", scripted_api.url)

    assert result.exit_code == 1
    assert result.stderr == "error: job 'adder' not found\n"


def test_call_with_too_many_arguments_is_a_usage_error(cli: Cli) -> None:
    result = cli("call", "adder", "/a", "{}", "extra")

    assert result.exit_code == 2
