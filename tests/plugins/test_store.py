"""Installing bundles: every unsafe or broken bundle is refused with a clear error, leaving nothing behind."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.plugins.support import make_zip, plugin_files, tiny_wheel
from tests.support.archives import Entry, overflow_escape, zip_bytes
from tests.support.archives import file as archive_file
from tests.support.archives import symlink as archive_symlink

from trackside.errors import AlreadyExists, InvalidInput, NotFound
from trackside.plugins.store import PluginStore


def leftovers(root: Path) -> list[str]:
    """Everything in the plugins dir that would make a plugin appear installed or take space."""
    if not root.exists():
        return []
    ignored = {"last-change.txt", ".lock", "installed.json", ".staging", "extracted", "deps", "config"}
    found = [p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() and p.name not in ignored]
    return sorted(found)


UNSAFE_BUNDLES: dict[str, tuple[Callable[[], bytes], str]] = {
    "path escaping with ..": (lambda: make_zip({**plugin_files(), "../evil.py": "x"}), "escapes the plugin directory"),
    "nested escaping path": (lambda: make_zip({**plugin_files(), "a/../../evil.py": "x"}), "escapes"),
    "absolute path": (lambda: make_zip({**plugin_files(), "/etc/evil": "x"}), "absolute path"),
    "symbolic link": (lambda: make_zip(plugin_files(), links={"link": "/etc/passwd"}), "symbolic link"),
    "not a zip": (lambda: b"this is not a zip", "not a valid zip archive"),
    "missing manifest": (lambda: make_zip({"plugin.py": "class Plugin: pass\n"}), "plugin-manifest.yaml is missing"),
    "missing plugin.py": (
        lambda: make_zip({"plugin-manifest.yaml": "name: demo\nversion: 1.0.0\n"}),
        "plugin.py is missing",
    ),
    "files in a subdirectory": (
        lambda: make_zip({f"demo/{k}": v for k, v in plugin_files().items()}),
        "put the plugin's files at the root",
    ),
    "manifest without version": (
        lambda: make_zip({**plugin_files(), "plugin-manifest.yaml": "name: demo\n"}),
        "field 'version' is required",
    ),
    "manifest that is not YAML": (
        lambda: make_zip({**plugin_files(), "plugin-manifest.yaml": "name: [unclosed\n"}),
        "not valid YAML",
    ),
    "manifest with a bad priority": (
        lambda: make_zip(plugin_files(priority="high")),
        "field 'priority' must be an integer",
    ),
    "manifest name with a slash": (lambda: make_zip(plugin_files(name="../x")), "field 'name'"),
    "plugin.py that fails to import": (
        lambda: make_zip(plugin_files(source="import no_such_module_xyz\nclass Plugin: pass\n")),
        "plugin.py failed to import: ModuleNotFoundError: No module named 'no_such_module_xyz'",
    ),
    "plugin.py with a syntax error": (
        lambda: make_zip(plugin_files(source="class Plugin(:\n")),
        "plugin.py failed to import: SyntaxError",
    ),
    "plugin.py that exits": (lambda: make_zip(plugin_files(source="raise SystemExit(3)\n")), "SystemExit"),
    "plugin.py without a Plugin class": (
        lambda: make_zip(plugin_files(source="class NotAPlugin: pass\n")),
        "does not define a class named Plugin",
    ),
    "Plugin() that raises": (
        lambda: make_zip(
            plugin_files(source="class Plugin:\n    def __init__(self):\n        raise ValueError('boom')\n")
        ),
        "Plugin() failed: ValueError: boom",
    ),
    "requirements that fail to install": (
        lambda: make_zip(
            {**plugin_files(), "requirements.txt": "ghost-package @ file:///nonexistent/ghost-1.0-py3-none-any.whl\n"}
        ),
        "installing requirements.txt failed",
    ),
}


@pytest.mark.parametrize("case", list(UNSAFE_BUNDLES))
def test_unsafe_or_broken_bundles_are_refused_with_a_clear_error_and_nothing_installed(
    tmp_path: Path, case: str
) -> None:
    make, message = UNSAFE_BUNDLES[case]
    store = PluginStore(tmp_path / "plugins")
    with pytest.raises(InvalidInput) as raised:
        store.install(make(), filename="bad.zip")
    assert message in raised.value.message
    assert store.list() == []
    assert leftovers(store.root) == []
    assert not (tmp_path / "evil.py").exists() and not (tmp_path / "plugins" / "evil.py").exists()


def test_a_failed_install_leaves_the_installed_version_untouched(tmp_path: Path) -> None:
    store = PluginStore(tmp_path / "plugins")
    store.install(make_zip(plugin_files(source="class Plugin:\n    GOOD = True\n")))
    with pytest.raises(InvalidInput):
        store.install(make_zip(plugin_files(source="raise RuntimeError('broken release')\n")))
    (installed,) = store.list()
    assert "GOOD = True" in (installed.extracted_dir / "plugin.py").read_text()


def test_install_lays_out_zip_extracted_files_and_config_and_touches_last_change(tmp_path: Path) -> None:
    store = PluginStore(tmp_path / "plugins")
    data = make_zip({**plugin_files("demo", "1.0.0"), "config.yaml": "greeting: hi\n"})
    manifest = store.install(data)
    assert manifest.stem == "demo-1.0.0"
    (plugin,) = store.list()
    assert plugin.zip_path.read_bytes() == data
    assert (plugin.extracted_dir / "plugin.py").is_file()
    assert plugin.config_path == tmp_path / "plugins" / "config" / "demo-1.0.0" / "config.yaml"
    assert store.read_config("demo", "1.0.0") == "greeting: hi\n"
    assert store.last_change_path.is_file()
    assert store.read_bundle("demo", "1.0.0") == plugin.zip_path


def test_requirements_are_installed_into_the_plugins_own_directory(tmp_path: Path) -> None:
    store = PluginStore(tmp_path / "plugins")
    data = make_zip(
        {
            **plugin_files(
                source="import tinydep\n\nclass Plugin:\n    def run_action(self):\n        return tinydep.VALUE\n"
            ),
            "wheels/tinydep-0.1-py3-none-any.whl": tiny_wheel(),
            "requirements.txt": "./wheels/tinydep-0.1-py3-none-any.whl\n",
        }
    )
    store.install(data)
    (plugin,) = store.list()
    assert plugin.deps_dir == tmp_path / "plugins" / "deps" / "demo-1.0.0"
    assert (plugin.deps_dir / "tinydep" / "__init__.py").is_file()


def test_same_version_replaces_and_replace_flag_removes_other_versions(tmp_path: Path) -> None:
    store = PluginStore(tmp_path / "plugins")
    store.install(make_zip(plugin_files("demo", "1.0.0")))
    first_id = store.list()[0].install_id
    store.install(make_zip(plugin_files("demo", "1.0.0")))
    assert [p.manifest.stem for p in store.list()] == ["demo-1.0.0"]
    assert store.list()[0].install_id != first_id
    store.install(make_zip(plugin_files("demo", "1.1.0")))
    assert [p.manifest.stem for p in store.list()] == ["demo-1.0.0", "demo-1.1.0"]
    store.install(make_zip(plugin_files("demo", "2.0.0")), replace=True)
    assert [p.manifest.stem for p in store.list()] == ["demo-2.0.0"]
    assert not (tmp_path / "plugins" / "demo-1.0.0.zip").exists()
    assert not (tmp_path / "plugins" / "extracted" / "demo-1.1.0").exists()


def test_a_second_infrastructure_plugin_of_the_same_name_needs_replace(tmp_path: Path) -> None:
    store = PluginStore(tmp_path / "plugins")
    store.install(make_zip(plugin_files("cloud", "1.0.0", category="infrastructure")))
    with pytest.raises(AlreadyExists, match="infrastructure plugin cloud is already installed"):
        store.install(make_zip(plugin_files("cloud", "2.0.0", category="infrastructure")))
    store.install(make_zip(plugin_files("cloud", "2.0.0", category="infrastructure")), replace=True)
    assert [p.manifest.stem for p in store.list()] == ["cloud-2.0.0"]


def test_uninstall_removes_files_and_unknown_versions_are_not_found(tmp_path: Path) -> None:
    store = PluginStore(tmp_path / "plugins")
    store.install(make_zip(plugin_files("demo", "1.0.0")))
    store.install(make_zip(plugin_files("other", "1.0.0")))
    store.uninstall("demo", "1.0.0")
    assert [p.manifest.name for p in store.list()] == ["other"]
    assert not (tmp_path / "plugins" / "demo-1.0.0.zip").exists()
    assert not (tmp_path / "plugins" / "extracted" / "demo-1.0.0").exists()
    with pytest.raises(NotFound, match="plugin demo version 1.0.0 is not installed"):
        store.uninstall("demo", "1.0.0")
    store.uninstall_all()
    assert store.list() == []


def test_config_round_trip_rejects_invalid_yaml_and_changes_last_change(tmp_path: Path) -> None:
    store = PluginStore(tmp_path / "plugins")
    store.install(make_zip(plugin_files("demo", "1.0.0")))
    assert store.read_config("demo", "1.0.0") == ""
    before = store.last_change_path.read_text()
    store.write_config("demo", "1.0.0", "url: http://example\n")
    assert store.read_config("demo", "1.0.0") == "url: http://example\n"
    assert store.last_change_path.read_text() != before
    with pytest.raises(InvalidInput, match="not valid YAML"):
        store.write_config("demo", "1.0.0", "a: [\n")
    with pytest.raises(NotFound):
        store.read_config("ghost", "1.0.0")


# -- hostile zips: the attacks that work on tar.gz build contexts, as bundles ----------------------


def plugin_entries() -> list[Entry]:
    return [archive_file(name, content) for name, content in plugin_files().items()]


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    path = tmp_path / "outside"
    path.mkdir()
    (path / "secret.txt").write_text("PLATFORM-SECRET\n")
    return path


def assert_nothing_outside_or_installed(store: PluginStore, outside: Path) -> None:
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]
    assert (outside / "secret.txt").stat().st_nlink == 1
    assert store.list() == []
    assert leftovers(store.root) == []
    assert not [p for p in (store.root / ".staging").iterdir()], "no half-extracted bundle left in staging"


def test_a_bundle_with_the_path_max_symlink_overflow_is_refused(tmp_path: Path, outside: Path) -> None:
    store = PluginStore(tmp_path / "plugins")
    staging = store.root / ".staging" / ("0" * 32) / "extracted"  # the length of the real staging path
    attack = [*plugin_entries(), *overflow_escape(staging, outside), archive_file("escape/pwned", "planted")]
    with pytest.raises(InvalidInput, match=r"is a symbolic link; bundles can't hold links"):
        store.install(zip_bytes(attack), filename="overflow.zip")
    assert_nothing_outside_or_installed(store, outside)


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ([archive_symlink("link", "../../../outside"), archive_file("link/pwned", "x")], "symbolic link"),
        ([archive_file("../../outside/pwned", "x")], "escapes the plugin directory"),
        ([archive_file("/tmp/trackside-plugin-pwned", "x")], "absolute path"),
        ([archive_file("plugin.py", "class Plugin:\n    EVIL = 1\n")], "'plugin.py' appears twice in the bundle"),
    ],
    ids=["symlink then write through it", "parent directory", "absolute name", "the same name twice"],
)
def test_classic_zip_attacks_are_refused_and_leave_nothing(
    tmp_path: Path, outside: Path, entries: list[Entry], message: str
) -> None:
    store = PluginStore(tmp_path / "plugins")
    with pytest.raises(InvalidInput, match=re.escape(message)):
        store.install(zip_bytes([*plugin_entries(), *entries]), filename="bad.zip")
    assert_nothing_outside_or_installed(store, outside)
    assert not Path("/tmp/trackside-plugin-pwned").exists()
