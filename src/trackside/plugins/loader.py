"""Importing an installed plugin's `plugin.py` and instantiating its `Plugin` class.

Each bundle is imported under a unique module name, so two versions (or two plugins with the same
file names) never share module state. The plugin's directory is on `sys.path` only while
`plugin.py` runs, and the local modules it imported are then dropped from `sys.modules` (as Racetrack
does), so two plugins may both ship a `utils.py`; import local modules at the top of `plugin.py`. The
plugin's own requirements live in a directory of their own, appended to `sys.path` (Trackside's
packages win over a plugin's copy of the same one).

`python -m trackside.plugins.loader PLUGIN_DIR [DEPS_DIR]` performs the same import in a fresh
process: the store uses it to refuse a bundle whose `plugin.py` fails before anything is installed,
without running untrusted import-time code inside the server.
"""

from __future__ import annotations

import importlib.util
import re
import sys
import threading
import traceback
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

from trackside.errors import InvalidInput

PLUGIN_FILE = "plugin.py"
_import_lock = threading.Lock()


class PluginLoadError(InvalidInput):
    """`plugin.py` could not be imported, or has no usable `Plugin` class."""


def add_deps_path(deps_dir: Path | None) -> None:
    if deps_dir is not None and deps_dir.is_dir() and str(deps_dir) not in sys.path:
        sys.path.append(str(deps_dir))


def remove_deps_path(deps_dir: Path | None) -> None:
    if deps_dir is not None and str(deps_dir) in sys.path:
        sys.path.remove(str(deps_dir))


def _inside(path: str | None, root: Path) -> bool:
    if not path:
        return False
    try:
        Path(path).resolve().relative_to(root)
        return True
    except ValueError:
        return False


def import_plugin_module(plugin_dir: Path, deps_dir: Path | None = None, label: str = "") -> ModuleType:
    """Import `plugin_dir/plugin.py` under a fresh module name; PluginLoadError says why it failed."""
    root = plugin_dir.resolve()
    source = root / PLUGIN_FILE
    label = label or root.name
    if not source.is_file():
        raise PluginLoadError(f"plugin {label}: {PLUGIN_FILE} is missing")
    module_name = f"trackside_plugin_{re.sub(r'[^A-Za-z0-9_]', '_', label)}_{uuid.uuid4().hex[:8]}"
    add_deps_path(deps_dir)
    with _import_lock:  # sys.path and sys.modules are process-wide
        before = set(sys.modules)
        sys.path.insert(0, str(root))
        try:
            spec = importlib.util.spec_from_file_location(module_name, source)
            if spec is None or spec.loader is None:
                raise PluginLoadError(f"plugin {label}: {PLUGIN_FILE} cannot be loaded as a module")
            module = importlib.util.module_from_spec(spec)
            sys.modules[module_name] = module
            try:
                spec.loader.exec_module(module)
            except BaseException as exc:  # noqa: BLE001 - SystemExit in plugin code must not stop us
                sys.modules.pop(module_name, None)
                raise PluginLoadError(f"plugin {label}: {PLUGIN_FILE} failed to import: {_describe(exc)}") from None
        finally:
            if str(root) in sys.path:
                sys.path.remove(str(root))
            for name in set(sys.modules) - before:
                if name != module_name and _inside(getattr(sys.modules[name], "__file__", None), root):
                    del sys.modules[name]
    return module


def instantiate_plugin(module: ModuleType, label: str) -> Any:
    cls = getattr(module, "Plugin", None)
    if not isinstance(cls, type):
        raise PluginLoadError(f"plugin {label}: {PLUGIN_FILE} does not define a class named Plugin")
    try:
        return cls()
    except BaseException as exc:  # noqa: BLE001
        raise PluginLoadError(f"plugin {label}: Plugin() failed: {_describe(exc)}") from None


def load_plugin(
    plugin_dir: Path,
    manifest: Any,
    deps_dir: Path | None = None,
    config_path: Path | None = None,
    settings: Any = None,
) -> Any:
    """The plugin instance, with `plugin_manifest`, `plugin_dir`, `config_path` and `settings` set."""
    label = getattr(manifest, "stem", None) or plugin_dir.name
    instance = instantiate_plugin(import_plugin_module(plugin_dir, deps_dir, label), label)
    instance.plugin_manifest = manifest
    instance.plugin_dir = plugin_dir
    instance.config_path = config_path
    instance.settings = settings
    return instance


def _describe(exc: BaseException) -> str:
    """The exception and the innermost line of plugin code that raised it."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = ""
    for frame in reversed(frames):
        if "importlib" not in frame.filename:
            where = f" (at {Path(frame.filename).name}:{frame.lineno})"
            break
    text = str(exc)
    return f"{type(exc).__name__}{': ' + text if text else ''}{where}"


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: python -m trackside.plugins.loader PLUGIN_DIR [DEPS_DIR]", file=sys.stderr)
        return 2
    plugin_dir = Path(argv[0])
    deps_dir = Path(argv[1]) if len(argv) > 1 else None
    try:
        instantiate_plugin(import_plugin_module(plugin_dir, deps_dir, "check"), "check")
    except PluginLoadError as exc:
        print(exc.message.removeprefix("plugin check: "), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
