"""The plugin engine: loads plugins and calls their hooks in priority order.

Built-in job types and infrastructure targets are plugins too: each is a `Plugin` class listed in `BUILTIN_PLUGINS`,
loaded the same way as an installed bundle's `plugin.py`, and called through the same hooks (docs/architecture.md, "The
plugin interface"). Installed bundles come from the `PluginStore` in `settings.resolved_plugins_dir`; a `PluginWatcher`
reloads them within about a second of any change made by any process. Hooks are found by duck typing; keyword arguments
a hook does not accept are dropped, so plugins written for fewer arguments keep working. A hook that raises is logged
with the plugin's name and skipped, except `validate_job_manifest`, whose error is the deploy's error.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trackside.build.jobtype import JobType, JobTypeImage
from trackside.errors import InvalidInput, NotFound, TracksideError
from trackside.infra.base import (
    ARTIFACT_KINDS,
    ImageBuilder,
    InfrastructureTarget,
    JobDeployer,
    JobMonitor,
    LogsStreamer,
)
from trackside.plugins.loader import load_plugin, remove_deps_path
from trackside.plugins.manifest import PluginManifest, manifest_from_class
from trackside.plugins.reload import DEFAULT_INTERVAL, PluginWatcher
from trackside.plugins.store import PluginStore

log = logging.getLogger(__name__)

__all__ = ["BUILTIN_PLUGINS", "LoadedPlugin", "PluginEngine", "PluginManifest", "safe_call"]

# "module:Class" of the built-in plugins, loaded like any installed plugin.
BUILTIN_PLUGINS = [
    "trackside.build.jobtypes.python3:Plugin",
    "trackside.infra.local:Plugin",
    "trackside.build.jobtypes.dockerfile:Plugin",
    "trackside.infra.docker:Plugin",
    "trackside.infra.kubernetes:Plugin",
]

# The lifecycle also does the image builder's work, so plugins meant for either run in it.
COMPONENT_ALIASES = {"lifecycle": {"lifecycle", "image-builder"}}


@dataclass
class LoadedPlugin:
    manifest: PluginManifest
    instance: Any
    order: int  # installation order, the tie-breaker for equal priorities
    key: str = ""  # identity across reloads: "builtin:..." or "{stem}:{install_id}"
    deps_dir: Path | None = None
    builtin: bool = False
    plugin_dir: Path | None = field(default=None, repr=False)


def safe_call(func: Callable[..., Any], **kwargs: Any) -> Any:
    """Call `func` with only the keyword arguments it accepts."""
    params = inspect.signature(func).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return func(**kwargs)
    return func(**{k: v for k, v in kwargs.items() if k in params})


def _error_text(exc: BaseException) -> str:
    return exc.message if isinstance(exc, TracksideError) else (str(exc) or type(exc).__name__)


class PluginEngine:
    def __init__(
        self,
        settings: Any,
        component: str = "lifecycle",
        watch: bool = True,
        watch_interval: float = DEFAULT_INTERVAL,
    ) -> None:
        self.settings = settings
        self.component = component
        self._components = COMPONENT_ALIASES.get(component, {component})
        self._lock = threading.RLock()
        self._reload_lock = threading.Lock()
        self._builtin: list[LoadedPlugin] = []
        self._installed: list[LoadedPlugin] = []
        self._added: list[LoadedPlugin] = []
        self._targets: dict[str, dict[str, InfrastructureTarget]] = {}  # plugin key -> its targets
        for spec in BUILTIN_PLUGINS:
            self._load_builtin(spec)
        plugins_dir = getattr(settings, "resolved_plugins_dir", None)
        self.store: PluginStore | None = PluginStore(Path(plugins_dir)) if plugins_dir else None
        self._watcher: PluginWatcher | None = None
        if self.store is not None:
            self._watcher = PluginWatcher(self.store.last_change_path, self.reload, watch_interval)
            self.reload()
            if watch:
                self._watcher.start()

    # -- loading -----------------------------------------------------------------------------------

    def _load_builtin(self, spec: str) -> None:
        module_name, _, class_name = spec.partition(":")
        cls = getattr(importlib.import_module(module_name), class_name)
        instance = cls()
        manifest = manifest_from_class(cls, module_name)
        instance.plugin_manifest = manifest
        instance.settings = self.settings
        self._builtin.append(LoadedPlugin(manifest, instance, len(self._builtin), key=f"builtin:{spec}", builtin=True))

    def add(self, manifest: PluginManifest, instance: Any) -> None:
        """Register a plugin instance directly (embedding, tests); it lasts until the engine closes."""
        with self._lock:
            order = 1_000_000 + len(self._added)
            self._added.append(LoadedPlugin(manifest, instance, order, key=f"added:{order}"))

    def _wanted_here(self, manifest: PluginManifest) -> bool:
        return not manifest.components or bool(self._components & set(manifest.components))

    def reload(self) -> None:
        """Bring the installed plugins in line with the store; unchanged ones keep their instance."""
        if self.store is None:
            return
        with self._reload_lock:
            if self._watcher is not None:
                self._watcher.mark_seen()
            current = {p.key: p for p in self._installed}
            offset = len(self._builtin)
            fresh: list[LoadedPlugin] = []
            for item in self.store.list():
                key = f"{item.manifest.stem}:{item.install_id}"
                order = offset + item.order
                if key in current:
                    current[key].order = order
                    fresh.append(current[key])
                    continue
                if not self._wanted_here(item.manifest):
                    continue
                try:
                    instance = load_plugin(
                        item.extracted_dir, item.manifest, item.deps_dir, item.config_path, self.settings
                    )
                except Exception as exc:
                    log.error("plugin %s could not be loaded: %s", item.manifest.stem, _error_text(exc))
                    continue
                log.info("plugin %s loaded", item.manifest.stem)
                fresh.append(
                    LoadedPlugin(
                        item.manifest, instance, order, key=key, deps_dir=item.deps_dir, plugin_dir=item.extracted_dir
                    )
                )
            kept = {p.key for p in fresh}
            removed = [p for key, p in current.items() if key not in kept]
            with self._lock:
                self._installed = fresh
                closing = [self._targets.pop(p.key) for p in removed if p.key in self._targets]
            for plugin in removed:
                log.info("plugin %s unloaded", plugin.manifest.stem)
                if plugin.deps_dir is not None and not any(p.deps_dir == plugin.deps_dir for p in fresh):
                    remove_deps_path(plugin.deps_dir)
            for targets in closing:
                self._close_targets(targets)

    # -- calling hooks -----------------------------------------------------------------------------

    @property
    def plugins(self) -> list[LoadedPlugin]:
        """Plugins active in this component, lowest priority first, ties in installation order."""
        with self._lock:
            every = [*self._builtin, *self._installed, *self._added]
        active = [p for p in every if self._wanted_here(p.manifest)]
        return sorted(active, key=lambda p: (p.manifest.priority, p.order))

    def find(self, name: str) -> LoadedPlugin:
        """The active plugin called `name` (the latest installed, when several versions are)."""
        matching = [p for p in self.plugins if p.manifest.name == name]
        if not matching:
            raise NotFound(f"plugin {name} is not installed")
        return max(matching, key=lambda p: p.order)

    def _call(self, plugin: LoadedPlugin, hook: str, **kwargs: Any) -> tuple[bool, Any]:
        func = getattr(plugin.instance, hook, None)
        if func is None or not callable(func):
            return False, None
        try:
            return True, safe_call(func, **kwargs)
        except Exception:
            log.exception("plugin %s: hook %s failed", plugin.manifest.name, hook)
            return False, None

    def hook_results(self, hook: str, **kwargs: Any) -> list[tuple[LoadedPlugin, Any]]:
        """Call `hook` on every plugin that has it; a plugin that raises is logged and skipped."""
        results = []
        for plugin in self.plugins:
            called, result = self._call(plugin, hook, **kwargs)
            if called:
                results.append((plugin, result))
        return results

    def job_types(self) -> dict[str, JobType]:
        """Every job type by `name:version`."""
        found: dict[str, JobType] = {}
        for plugin, result in self.hook_results("job_types"):
            if not isinstance(result, dict):
                continue
            for full_name, definition in result.items():
                try:
                    found[full_name] = _as_job_type(full_name, definition, plugin)
                except Exception as exc:
                    log.error("plugin %s: job type %s is malformed: %s", plugin.manifest.name, full_name, exc)
        return found

    def job_types_by_plugin(self) -> list[tuple[LoadedPlugin, list[str]]]:
        return [
            (plugin, sorted(result)) for plugin, result in self.hook_results("job_types") if isinstance(result, dict)
        ]

    def job_type_versions(self) -> list[str]:
        return sorted(self.job_types())

    def _plugin_targets(self, plugin: LoadedPlugin) -> dict[str, InfrastructureTarget]:
        """A plugin's targets, asked for once per loaded instance (targets own processes and threads)."""
        with self._lock:
            if plugin.key not in self._targets:
                targets: dict[str, InfrastructureTarget] = {}
                _, result = self._call(plugin, "infrastructure_targets")
                for name, value in (result or {}).items():
                    try:
                        target = _as_target(name, value)
                    except InvalidInput as exc:
                        log.error("plugin %s: %s", plugin.manifest.name, exc.message)
                        continue
                    target.name = target.name or name
                    targets[name] = target
                self._targets[plugin.key] = targets
            return self._targets[plugin.key]

    def infrastructure_targets(self) -> dict[str, InfrastructureTarget]:
        found: dict[str, InfrastructureTarget] = {}
        for plugin in self.plugins:
            found.update(self._plugin_targets(plugin))
        return found

    def infrastructure_target_plugins(self) -> dict[str, PluginManifest]:
        """Target name -> the manifest of the plugin providing it (`GET /plugin/infrastructure_targets`)."""
        found: dict[str, PluginManifest] = {}
        for plugin in self.plugins:
            for name in self._plugin_targets(plugin):
                found[name] = plugin.manifest
        return found

    def targets_by_plugin(self) -> list[tuple[LoadedPlugin, list[str]]]:
        return [(plugin, sorted(self._plugin_targets(plugin))) for plugin in self.plugins]

    def runtime_env_vars(self) -> dict[str, str]:
        env: dict[str, str] = {}
        for _, result in self.hook_results("job_runtime_env_vars"):
            env.update(result or {})
        return env

    def pipeline_notifiers(self) -> dict[str, Any]:
        """Notifiers for pipeline events, by name: `notifier(event, config)` callables or objects with `notify`."""
        found: dict[str, Any] = {}
        for plugin, result in self.hook_results("pipeline_notifiers"):
            if not isinstance(result, dict):
                log.error("plugin %s: pipeline_notifiers must return a dict of name -> notifier", plugin.manifest.name)
                continue
            found.update(result)
        return found

    def post_job_deploy(self, **kwargs: Any) -> None:
        self.hook_results("post_job_deploy", **kwargs)

    def post_job_delete(self, **kwargs: Any) -> None:
        self.hook_results("post_job_delete", **kwargs)

    def validate_job_manifest(self, manifest: Any, job_type: str) -> None:
        """Every plugin may refuse a manifest; the first refusal is raised with the plugin's message."""
        for plugin in self.plugins:
            func = getattr(plugin.instance, "validate_job_manifest", None)
            if func is None:
                continue
            try:
                safe_call(func, manifest=manifest, job_type=job_type)
            except Exception as exc:
                raise InvalidInput(f"plugin {plugin.manifest.name}: {_error_text(exc)}") from None

    def markdown_docs(self, name: str) -> str | None:
        plugin = self.find(name)
        func = getattr(plugin.instance, "markdown_docs", None)
        if func is None:
            return None
        try:
            docs = safe_call(func)
        except Exception as exc:
            log.exception("plugin %s: hook markdown_docs failed", name)
            raise TracksideError(f"plugin {name}: markdown_docs failed: {_error_text(exc)}") from None
        return None if docs is None else str(docs)

    def run_action(self, name: str, params: dict[str, Any]) -> Any:
        """`POST /plugin/{name}/run`: the plugin's `run_action(**params)`; its error is the answer."""
        plugin = self.find(name)
        func = getattr(plugin.instance, "run_action", None)
        if func is None:
            raise InvalidInput(f"plugin {name} has no run_action hook")
        try:
            return safe_call(func, **params)
        except TracksideError:
            raise
        except Exception as exc:
            log.exception("plugin %s: hook run_action failed", name)
            raise TracksideError(f"plugin {name}: run_action failed: {_error_text(exc)}") from None

    # -- shutdown ----------------------------------------------------------------------------------

    @staticmethod
    def _close_targets(targets: dict[str, InfrastructureTarget]) -> None:
        for target in targets.values():
            if target.close is not None:
                try:
                    target.close()
                except Exception:
                    log.exception("closing infrastructure target %s failed", target.name)

    def close(self) -> None:
        if self._watcher is not None:
            self._watcher.stop()
        with self._lock:
            closing = list(self._targets.values())
            self._targets = {}
        for targets in closing:
            self._close_targets(targets)


_TARGET_PARTS: tuple[tuple[str, type], ...] = (
    ("job_deployer", JobDeployer),
    ("job_monitor", JobMonitor),
    ("logs_streamer", LogsStreamer),
)


def _missing_methods(part: object, protocol: type) -> list[str]:
    wanted = [name for name in vars(protocol) if not name.startswith("_") and callable(getattr(protocol, name))]
    return [name for name in wanted if not callable(getattr(part, name, None))]


def _as_target(name: str, value: Any) -> InfrastructureTarget:
    """A plugin's target as an `InfrastructureTarget`, its parts checked against their protocols.

    Accepts Racetrack's own InfrastructureTarget class (the same attributes, read here since a plugin's
    object is untyped); a part that lacks a method its protocol declares is refused, naming it."""
    for attribute, protocol in _TARGET_PARTS:
        part = getattr(value, attribute, None)
        missing = _missing_methods(part, protocol) if part is not None else []
        if missing:
            raise InvalidInput(f"infrastructure target {name}: its {attribute} lacks {', '.join(missing)}")
    if isinstance(value, InfrastructureTarget):
        return value
    kind = getattr(value, "artifact_kind", "image")
    if kind not in ARTIFACT_KINDS:
        raise InvalidInput(f"infrastructure target {name}: artifact_kind must be one of {ARTIFACT_KINDS}, got {kind!r}")
    builder = getattr(value, "image_builder", None)
    if builder is not None and _missing_methods(builder, ImageBuilder):
        raise InvalidInput(f"infrastructure target {name}: its image_builder lacks build_image")
    return InfrastructureTarget(
        name=getattr(value, "name", None) or name,
        job_deployer=getattr(value, "job_deployer", None),
        job_monitor=getattr(value, "job_monitor", None),
        logs_streamer=getattr(value, "logs_streamer", None),
        remote_gateway_url=getattr(value, "remote_gateway_url", None),
        remote_gateway_token=getattr(value, "remote_gateway_token", None),
        artifact_kind=kind,
        image_builder=builder,
        close=getattr(value, "close", None),
    )


def _as_job_type(full_name: str, definition: Any, plugin: LoadedPlugin) -> JobType:
    """Accept our `JobType` or Racetrack's `{"images": [{source, dockerfile_path, template}]}`.

    In Racetrack's form `dockerfile_path` is relative to the plugin directory when `source` is
    `jobtype` (and `template: true` marks it Jinja2), or to the job's source when `source` is `job`;
    its templates are rendered and built as Racetrack does (`JobTypeImage.racetrack_style`).
    The legacy form is a list of `(base image path, dockerfile template path)` tuples.
    """
    if isinstance(definition, JobType):
        return definition
    name, _, version = full_name.partition(":")
    if not name or not version:
        raise InvalidInput(f"job type {full_name!r} must be named NAME:VERSION")
    plugin_dir = plugin.plugin_dir or Path(getattr(plugin.instance, "plugin_dir", None) or ".")
    images_def = definition.get("images", []) if isinstance(definition, dict) else definition
    images = []
    for image in images_def or []:
        if isinstance(image, dict):
            source = image.get("source", "jobtype")
            path = image.get("dockerfile_path")
            template = image.get("template")
            if source == "jobtype":
                if isinstance(template, str | Path):
                    template_path = plugin_dir / template
                elif path:
                    template_path = plugin_dir / path
                else:
                    template_path = None
                images.append(
                    JobTypeImage(
                        source="jobtype",
                        dockerfile_path=path,
                        template=template_path,
                        racetrack_style=True,
                        render=template is not False,
                        jobtype_dir=plugin_dir,
                    )
                )
            else:
                images.append(JobTypeImage(source="job", dockerfile_path=path))
        else:  # legacy (base image path, dockerfile template path) tuples
            images.append(JobTypeImage(source="jobtype", template=plugin_dir / Path(image[1])))
    local_builder = definition.get("local_builder") if isinstance(definition, dict) else None
    return JobType(name=name, version=version, images=images, local_builder=local_builder)
