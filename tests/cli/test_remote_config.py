"""Client config: remote resolution rules, `set/get remote`, aliases, file mode, tokens."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
import yaml
from tests.cli.support import Cli, ScriptedApi

from trackside.cli.config import ClientConfig, load_client_config, resolve_remote_url, save_client_config
from trackside.errors import InvalidInput


@pytest.mark.parametrize(
    ("given", "resolved"),
    [
        ("127.0.0.1:7070", "http://127.0.0.1:7070/lifecycle"),
        ("localhost:7070", "http://localhost:7070/lifecycle"),
        ("127.1.2.3", "http://127.1.2.3/lifecycle"),
        ("[::1]:7070", "http://[::1]:7070/lifecycle"),
        ("racetrack.example.com", "https://racetrack.example.com/lifecycle"),
        ("10.0.0.5:7070", "https://10.0.0.5:7070/lifecycle"),
        ("http://example.com", "http://example.com/lifecycle"),
        ("http://example.com/", "http://example.com/lifecycle"),
        ("https://example.com/custom/lifecycle/", "https://example.com/custom/lifecycle"),
        ("http://127.0.0.1:7070/lifecycle", "http://127.0.0.1:7070/lifecycle"),
    ],
)
def test_remote_resolution_follows_racetrack_rules(given: str, resolved: str) -> None:
    assert resolve_remote_url(given) == resolved


@pytest.mark.parametrize("bad", ["", "ftp://example.com", "http://", "http://host:notaport"])
def test_invalid_remote_is_rejected_with_its_value(bad: str) -> None:
    with pytest.raises(InvalidInput):
        resolve_remote_url(bad)


def test_default_remote_is_local_port_7070(cli: Cli) -> None:
    result = cli("get", "remote")

    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "http://127.0.0.1:7070/lifecycle"


def test_set_remote_is_stored_and_read_back_resolved(cli: Cli, client_config_dir: Path) -> None:
    assert cli("set", "remote", "trackside.example.com").exit_code == 0

    result = cli("get", "remote")

    assert result.stdout.strip() == "https://trackside.example.com/lifecycle"
    stored = yaml.safe_load((client_config_dir / "client.yaml").read_text())
    assert stored["remote"] == "https://trackside.example.com/lifecycle"


def test_config_file_is_created_with_mode_0600(cli: Cli, client_config_dir: Path) -> None:
    cli("set", "remote", "localhost:9000")

    mode = stat.S_IMODE((client_config_dir / "client.yaml").stat().st_mode)
    assert mode == 0o600


def test_config_file_keeps_mode_0600_when_rewritten(tmp_path: Path) -> None:
    path = tmp_path / "client.yaml"
    save_client_config(ClientConfig(remote="a.example.com"), path)
    path.chmod(0o644)

    save_client_config(ClientConfig(remote="b.example.com"), path)

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_client_config(path).remote == "b.example.com"


def test_env_var_naming_a_yaml_file_is_used_as_the_config_file(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config_file = tmp_path / "elsewhere" / "my-client.yaml"
    monkeypatch.setenv("TRACKSIDE_CLIENT_CONFIG", str(config_file))

    cli("set", "remote", "127.0.0.1:7171")

    assert yaml.safe_load(config_file.read_text())["remote"] == "http://127.0.0.1:7171/lifecycle"


def test_trackside_remote_env_var_beats_the_stored_remote(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    cli("set", "remote", "stored.example.com")
    monkeypatch.setenv("TRACKSIDE_REMOTE", "env.example.com")

    assert cli("get", "remote").stdout.strip() == "https://env.example.com/lifecycle"


def test_remote_flag_beats_env_var(cli: Cli, scripted_api: ScriptedApi, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACKSIDE_REMOTE", "127.0.0.1:1")
    scripted_api.answer("GET", "/lifecycle/api/v1/job", [])

    result = cli("list", "--remote", scripted_api.url)

    assert result.exit_code == 0, result.output
    assert len(scripted_api.received("GET", "/lifecycle/api/v1/job")) == 1


def test_alias_resolves_to_its_remote(cli: Cli) -> None:
    assert cli("set", "alias", "prod", "prod.example.com:8443").exit_code == 0
    assert cli("set", "remote", "prod").exit_code == 0

    assert cli("get", "remote").stdout.strip() == "https://prod.example.com:8443/lifecycle"


def test_stored_token_is_sent_as_racetrack_auth_header(cli: Cli, scripted_api: ScriptedApi) -> None:
    lifecycle = resolve_remote_url(scripted_api.url)
    save_client_config(ClientConfig(user_auths={lifecycle: "secret-token"}))
    scripted_api.answer("GET", "/lifecycle/api/v1/job", [])

    cli("list", "--remote", scripted_api.url)

    (request,) = scripted_api.received("GET", "/lifecycle/api/v1/job")
    assert request.headers.get("x-racetrack-auth") == "secret-token"


def test_no_auth_header_without_a_stored_token(cli: Cli, scripted_api: ScriptedApi) -> None:
    scripted_api.answer("GET", "/lifecycle/api/v1/job", [])

    cli("list", "--remote", scripted_api.url)

    (request,) = scripted_api.received("GET", "/lifecycle/api/v1/job")
    assert "x-racetrack-auth" not in request.headers


def test_broken_config_file_is_one_error_line(cli: Cli, client_config_dir: Path) -> None:
    client_config_dir.mkdir()
    (client_config_dir / "client.yaml").write_text("remote: [unclosed\n")
    (client_config_dir / "client.yaml").chmod(0o600)

    result = cli("get", "remote")

    assert result.exit_code == 1
    assert str(client_config_dir / "client.yaml") in result.stderr
    assert len(result.stderr.splitlines()) == 1


def test_config_readable_by_others_gets_a_warning(cli: Cli, client_config_dir: Path) -> None:
    client_config_dir.mkdir()
    (client_config_dir / "client.yaml").write_text("remote: 127.0.0.1:7070\n")
    (client_config_dir / "client.yaml").chmod(0o644)

    result = cli("get", "remote")

    assert result.exit_code == 0
    assert "readable by others" in result.stderr
