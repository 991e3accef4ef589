"""Settings precedence: defaults < config file < TRACKSIDE_* environment variables < CLI flags."""

from __future__ import annotations

from pathlib import Path

import pytest

from trackside.config import Settings, load_settings
from trackside.errors import InvalidInput


@pytest.fixture(autouse=True)
def _no_ambient_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TRACKSIDE_CONFIG", "TRACKSIDE_DATA_DIR", "TRACKSIDE_PORT", "TRACKSIDE_HOST"):
        monkeypatch.delenv(name, raising=False)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_the_file_overrides_defaults_the_environment_overrides_the_file_and_flags_override_both(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write(tmp_path / "c.yaml", "port: 8001\nhost: 10.0.0.1\nlog_level: debug\n")
    monkeypatch.setenv("TRACKSIDE_PORT", "8002")
    monkeypatch.setenv("TRACKSIDE_HOST", "10.0.0.2")

    settings = load_settings(config, data_dir=tmp_path / "data", host="10.0.0.3", database_url=None)

    assert settings.log_level == "debug"  # file over default
    assert settings.port == 8002  # environment over file
    assert settings.host == "10.0.0.3"  # flag over environment
    assert settings.database_url == ""  # a flag left out (None) changes nothing
    assert settings.supervisor_interval == 2.0  # default


def test_an_environment_variable_replaces_the_whole_setting_the_file_gives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write(tmp_path / "c.yaml", "pipeline_images:\n  busybox: mirror/busybox\n  alpine: mirror/alpine\n")
    monkeypatch.setenv("TRACKSIDE_PIPELINE_IMAGES", '{"python": "mirror/python"}')

    assert load_settings(config, data_dir=tmp_path).pipeline_images == {"python": "mirror/python"}


def test_the_file_is_found_through_trackside_config_then_in_the_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = tmp_path / "data"
    write(data_dir / "config.yaml", "port: 8100\n")
    assert load_settings(data_dir=data_dir).port == 8100

    monkeypatch.setenv("TRACKSIDE_DATA_DIR", str(data_dir))
    assert load_settings().port == 8100

    monkeypatch.setenv("TRACKSIDE_CONFIG", str(write(tmp_path / "elsewhere.yaml", "port: 8200\n")))
    assert load_settings(data_dir=data_dir).port == 8200
    assert load_settings(write(tmp_path / "flag.yaml", "port: 8300\n"), data_dir=data_dir).port == 8300


def test_without_a_file_settings_are_defaults_and_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACKSIDE_PORT", "8400")

    settings = load_settings(data_dir=tmp_path / "empty")

    assert (settings.port, settings.host) == (8400, "127.0.0.1")


def test_settings_made_in_code_read_no_file(tmp_path: Path) -> None:
    write(tmp_path / "config.yaml", "port: 8500\n")

    assert Settings(data_dir=tmp_path).port == 7070


def test_a_missing_file_named_explicitly_is_an_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=r"config file .*missing\.yaml"):
        load_settings(tmp_path / "missing.yaml", data_dir=tmp_path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- port\n", r"config file .*c\.yaml: expected a mapping of settings"),
        ("port: [1\n", r"config file .*c\.yaml: invalid YAML"),
        ("port: 80\nport: 81\n", r"found duplicate key 'port'"),
        ("port: eighty\n", r"(?s)invalid settings in .*c\.yaml: .*port"),
        ("no_such_setting: 1\n", r"(?s)invalid settings in .*c\.yaml: .*no_such_setting"),
    ],
)
def test_a_bad_file_is_an_error_naming_the_file(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        load_settings(write(tmp_path / "c.yaml", text), data_dir=tmp_path)


def test_an_empty_file_leaves_the_defaults(tmp_path: Path) -> None:
    assert load_settings(write(tmp_path / "c.yaml", ""), data_dir=tmp_path).port == 7070
