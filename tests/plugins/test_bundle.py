"""`trackside plugin bundle`: what goes into the zip, and what is refused."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml
from tests.plugins.support import plugin_files, write_plugin

from trackside.errors import InvalidInput
from trackside.plugins.bundle import bundle_plugin
from trackside.plugins.store import unpack_bundle


def test_bundle_is_named_after_the_manifest_holds_its_files_and_adds_build_date(tmp_path: Path) -> None:
    plugin = write_plugin(tmp_path / "p", {**plugin_files("skynet", "1.2.3", priority=-1), "lib/util.py": "X = 1\n"})
    path = bundle_plugin(plugin)
    assert path == plugin / "skynet-1.2.3.zip"
    with zipfile.ZipFile(path) as archive:
        assert sorted(archive.namelist()) == ["lib/util.py", "plugin-manifest.yaml", "plugin.py"]
        assert all(info.compress_type == zipfile.ZIP_STORED for info in archive.infolist())
        manifest = yaml.safe_load(archive.read("plugin-manifest.yaml"))
    assert manifest["name"] == "skynet" and manifest["priority"] == -1
    assert manifest["build_date"].endswith("Z")


def test_ignore_files_caches_and_earlier_bundles_are_left_out(tmp_path: Path) -> None:
    files = {
        **plugin_files("demo", "1.0.0"),
        ".racetrackignore": "# comment\nsecrets.txt\nbuild/\ndocs/*.draft\n",
        ".trackside-ignore": "*.log\n",
        "secrets.txt": "x",
        "build/out.bin": "x",
        "docs/a.draft": "x",
        "docs/keep.md": "x",
        "debug.log": "x",
        "sub/debug.log": "x",
        "__pycache__/plugin.cpython-311.pyc": "x",
        "demo-0.9.0.zip": "old bundle",
    }
    plugin = write_plugin(tmp_path / "p", files)
    with zipfile.ZipFile(bundle_plugin(plugin)) as archive:
        names = sorted(archive.namelist())
    assert names == [".racetrackignore", ".trackside-ignore", "docs/keep.md", "plugin-manifest.yaml", "plugin.py"]


def test_out_dir_file_name_and_version_override(tmp_path: Path) -> None:
    plugin = write_plugin(tmp_path / "p", plugin_files("demo", "1.0.0"))
    path = bundle_plugin(plugin, out_dir=tmp_path / "dist", plugin_version="2.0.0")
    assert path == tmp_path / "dist" / "demo-2.0.0.zip"
    assert unpack_bundle(path.read_bytes(), tmp_path / "x").version == "2.0.0"
    named = bundle_plugin(plugin, out_dir=tmp_path / "dist", out_filename="custom.zip")
    assert named.name == "custom.zip"


@pytest.mark.parametrize("missing", ["plugin.py", "plugin-manifest.yaml"])
def test_a_directory_without_plugin_py_or_manifest_is_refused(tmp_path: Path, missing: str) -> None:
    files = plugin_files()
    del files[missing]
    plugin = write_plugin(tmp_path / "p", files)
    with pytest.raises(InvalidInput, match=missing):
        bundle_plugin(plugin)


def test_an_invalid_manifest_is_refused_naming_the_field(tmp_path: Path) -> None:
    plugin = write_plugin(tmp_path / "p", {**plugin_files(), "plugin-manifest.yaml": "name: demo\n"})
    with pytest.raises(InvalidInput, match="field 'version' is required"):
        bundle_plugin(plugin)


def test_a_symbolic_link_in_the_directory_is_refused(tmp_path: Path) -> None:
    plugin = write_plugin(tmp_path / "p", plugin_files())
    (plugin / "link.py").symlink_to("/etc/passwd")
    with pytest.raises(InvalidInput, match="link.py is a symbolic link"):
        bundle_plugin(plugin)


def test_cli_bundle_writes_the_zip_and_prints_its_path(tmp_path: Path) -> None:
    plugin = write_plugin(tmp_path / "p", plugin_files("demo", "3.1.4"))
    result = subprocess.run(
        [sys.executable, "-m", "trackside.cli.main", "plugin", "bundle", str(plugin), "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "o" / "demo-3.1.4.zip").is_file()
    assert str(tmp_path / "o" / "demo-3.1.4.zip") in result.stdout
    broken = write_plugin(tmp_path / "broken", {"plugin.py": "class Plugin: pass\n"})
    failed = subprocess.run(
        [sys.executable, "-m", "trackside.cli.main", "plugin", "bundle", str(broken)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert failed.returncode == 1
    assert "plugin-manifest.yaml is missing" in failed.stderr and "Traceback" not in failed.stderr
