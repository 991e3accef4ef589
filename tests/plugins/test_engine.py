"""The plugin engine with installed bundles: order, hooks, job types, targets, reload."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from tests.plugins.support import make_zip, plugin_files, tiny_wheel
from tests.support.polling import wait_until

from trackside.config import Settings
from trackside.errors import InvalidInput, NotFound, TracksideError
from trackside.plugins.engine import PluginEngine
from trackside.plugins.store import PluginStore

NAMED = """
class Plugin:
    def who(self):
        return self.plugin_manifest.name
"""


@pytest.fixture
def store(settings: Settings) -> PluginStore:
    return PluginStore(settings.resolved_plugins_dir)


@pytest.fixture
def engine_factory(settings: Settings) -> Iterator[Callable[..., PluginEngine]]:
    engines: list[PluginEngine] = []

    def make(**kwargs: object) -> PluginEngine:
        engine = PluginEngine(settings, **{"watch": False, **kwargs})  # type: ignore[arg-type]
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        engine.close()


def test_hooks_run_lowest_priority_first_and_ties_in_installation_order(store: PluginStore, engine_factory) -> None:
    for name, priority in (("a", 5), ("b", -1), ("c", 5), ("d", 0)):
        store.install(make_zip(plugin_files(name, "1.0.0", NAMED, priority=priority)))
    engine = engine_factory()
    assert [result for _, result in engine.hook_results("who")] == ["b", "d", "a", "c"]
    names = [p.manifest.name for p in engine.plugins]
    # Built-ins (priority 0) were installed first, so they run before d.
    assert names.index("b") < names.index("python3-job-type") < names.index("d")


def test_a_hook_taking_fewer_arguments_gets_only_those(store: PluginStore, engine_factory) -> None:
    source = """
    class Plugin:
        seen = None
        def post_job_deploy(self, job):
            self.seen = job
    """
    store.install(make_zip(plugin_files("few", "1.0.0", source)))
    engine = engine_factory()
    engine.post_job_deploy(manifest="m", job="the-job", image_name="img", deployer_username="bob")
    assert engine.find("few").instance.seen == "the-job"


def test_a_raising_hook_is_logged_with_the_plugins_name_and_the_others_still_run(
    store: PluginStore, engine_factory, caplog: pytest.LogCaptureFixture
) -> None:
    raising = "class Plugin:\n    def post_job_deploy(self, job):\n        raise RuntimeError('webhook down')\n"
    recording = "class Plugin:\n    calls = 0\n    def post_job_deploy(self, job):\n        self.calls += 1\n"
    store.install(make_zip(plugin_files("flaky", "1.0.0", raising, priority=-5)))
    store.install(make_zip(plugin_files("steady", "1.0.0", recording)))
    engine = engine_factory()
    with caplog.at_level(logging.ERROR):
        engine.post_job_deploy(job="j")
    assert engine.find("steady").instance.calls == 1
    assert "plugin flaky: hook post_job_deploy failed" in caplog.text
    assert "webhook down" in caplog.text


def test_validate_job_manifest_refusal_carries_the_plugins_message(store: PluginStore, engine_factory) -> None:
    source = """
    class Plugin:
        def validate_job_manifest(self, manifest, job_type):
            if manifest.owner_email.endswith('@example.com') and job_type.startswith('python3:'):
                raise ValueError('owner_email must be a real address')
    """
    store.install(make_zip(plugin_files("policy", "1.0.0", source)))
    engine = engine_factory()
    manifest = SimpleNamespace(owner_email="sample@example.com")
    with pytest.raises(InvalidInput, match="plugin policy: owner_email must be a real address"):
        engine.validate_job_manifest(manifest, "python3:1.0.0")
    engine.validate_job_manifest(manifest, "static:1.0.0")  # not refused


def test_plugins_load_only_in_the_components_their_manifest_names(store: PluginStore, engine_factory) -> None:
    store.install(make_zip(plugin_files("builder-only", "1.0.0", NAMED, components=["image-builder"])))
    store.install(make_zip(plugin_files("gateway-only", "1.0.0", NAMED, components=["gateway"])))
    lifecycle = [p.manifest.name for p in engine_factory().plugins]
    assert "builder-only" in lifecycle and "gateway-only" not in lifecycle
    gateway = [p.manifest.name for p in engine_factory(component="gateway").plugins]
    assert "gateway-only" in gateway and "builder-only" not in gateway


def test_job_types_in_racetracks_dict_form_and_ours(store: PluginStore, engine_factory) -> None:
    source = """
    from trackside.build.jobtype import JobType
    class Plugin:
        def job_types(self):
            return {
                "golang:1.2.0": {"images": [{"source": "jobtype", "dockerfile_path": "Dockerfile.jinja",
                                             "template": True}]},
                "native:0.1.0": JobType(name="native", version="0.1.0"),
            }
    """
    store.install(make_zip({**plugin_files("langs", "1.0.0", source), "Dockerfile.jinja": "FROM x\n"}))
    engine = engine_factory()
    versions = engine.job_type_versions()
    assert {"golang:1.2.0", "native:0.1.0", "python3:1.0.0"} <= set(versions)
    assert versions == sorted(versions)
    golang = engine.job_types()["golang:1.2.0"]
    assert golang.images[0].template == store.extracted_dir("langs-1.0.0") / "Dockerfile.jinja"
    assert golang.images[0].template.read_text() == "FROM x\n"


def test_plugins_with_the_same_local_module_name_each_see_their_own(store: PluginStore, engine_factory) -> None:
    source = "import helper\n\nclass Plugin:\n    def who(self):\n        return helper.NAME\n"
    store.install(make_zip({**plugin_files("one", "1.0.0", source), "helper.py": "NAME = 'one'\n"}))
    store.install(make_zip({**plugin_files("two", "1.0.0", source), "helper.py": "NAME = 'two'\n"}))
    assert [r for _, r in engine_factory().hook_results("who")] == ["one", "two"]


def test_plugin_requirements_are_importable(store: PluginStore, engine_factory) -> None:
    source = "import tinydep\n\nclass Plugin:\n    def run_action(self):\n        return tinydep.VALUE\n"
    store.install(
        make_zip(
            {
                **plugin_files("withdeps", "1.0.0", source),
                "tinydep-0.1-py3-none-any.whl": tiny_wheel(),
                "requirements.txt": "./tinydep-0.1-py3-none-any.whl\n",
            }
        )
    )
    assert engine_factory().run_action("withdeps", {}) == 42


def test_markdown_docs_and_run_action(store: PluginStore, engine_factory) -> None:
    source = """
    class Plugin:
        def markdown_docs(self):
            return '# Demo'
        def run_action(self, greeting='hello', who='world'):
            if who == 'nobody':
                raise ValueError('nobody to greet')
            return {'text': f'{greeting} {who}'}
    """
    store.install(make_zip(plugin_files("demo", "1.0.0", source)))
    engine = engine_factory()
    assert engine.markdown_docs("demo") == "# Demo"
    assert engine.run_action("demo", {"who": "Ada", "unused": 1}) == {"text": "hello Ada"}
    with pytest.raises(TracksideError, match="plugin demo: run_action failed: nobody to greet"):
        engine.run_action("demo", {"who": "nobody"})
    with pytest.raises(NotFound, match="plugin ghost is not installed"):
        engine.run_action("ghost", {})
    with pytest.raises(InvalidInput, match="no run_action hook"):
        engine.run_action("python3-job-type", {})


TARGET_PLUGIN = """
from pathlib import Path
from trackside.infra.base import InfrastructureTarget

class Plugin:
    def infrastructure_targets(self):
        marker = Path(self.plugin_dir).parent.parent / 'closed.txt'
        return {'cloud': InfrastructureTarget(close=lambda: marker.write_text('closed'))}
"""


def test_a_running_engine_picks_up_install_and_uninstall_without_a_restart(
    settings: Settings, store: PluginStore, engine_factory
) -> None:
    engine = engine_factory(watch=True, watch_interval=0.2)
    assert "cloud" not in engine.infrastructure_targets()
    store.install(make_zip(plugin_files("cloudy", "1.0.0", TARGET_PLUGIN, category="infrastructure")))
    wait_until(lambda: "cloud" in engine.infrastructure_targets())
    assert engine.infrastructure_target_plugins()["cloud"].name == "cloudy"
    assert engine.infrastructure_targets()["cloud"].name == "cloud"
    store.uninstall("cloudy", "1.0.0")
    wait_until(lambda: "cloud" not in engine.infrastructure_targets())
    # The removed plugin's target was closed.
    assert (store.root / "closed.txt").read_text() == "closed"
    assert "local" in engine.infrastructure_targets()


def test_a_config_change_keeps_the_loaded_instance(store: PluginStore, engine_factory) -> None:
    store.install(make_zip(plugin_files("demo", "1.0.0", "class Plugin:\n    pass\n")))
    engine = engine_factory()
    before = engine.find("demo").instance
    store.write_config("demo", "1.0.0", "a: 1\n")
    engine.reload()
    assert engine.find("demo").instance is before
    assert Path(before.config_path).read_text() == "a: 1\n"


RACETRACK_STYLE_TARGETS = """
# Racetrack's own classes, as its plugins define them: no Trackside base class anywhere.
class InfrastructureTarget:
    def __init__(self, name=None, job_deployer=None, job_monitor=None, logs_streamer=None):
        self.name, self.job_deployer = name, job_deployer
        self.job_monitor, self.logs_streamer = job_monitor, logs_streamer
        self.remote_gateway_url = self.remote_gateway_token = None

class Deployer:
    def deploy_job(self, manifest, config, plugin_engine, tag, runtime_env_vars, family, containers_num=1,
                   runtime_secret_vars=None):
        raise NotImplementedError
    def delete_job(self, job_name, job_version): pass
    def job_exists(self, job_name, job_version): return False
    def save_job_secrets(self, job_name, job_version, job_secrets): pass
    def get_job_secrets(self, job_name, job_version): raise NotImplementedError

class HalfDeployer:
    def deploy_job(self, *args, **kwargs): raise NotImplementedError

class Plugin:
    def infrastructure_targets(self):
        return {
            'k8s-like': InfrastructureTarget(name='k8s-like', job_deployer=Deployer()),
            'half': InfrastructureTarget(job_deployer=HalfDeployer()),
        }
"""


def test_racetrack_style_targets_are_typed_on_load_and_a_part_missing_methods_is_refused(
    store: PluginStore, engine_factory, caplog: pytest.LogCaptureFixture
) -> None:
    store.install(make_zip(plugin_files("rt", "1.0.0", RACETRACK_STYLE_TARGETS, category="infrastructure")))
    with caplog.at_level(logging.ERROR, logger="trackside.plugins.engine"):
        targets = engine_factory().infrastructure_targets()
    target = targets["k8s-like"]
    # Racetrack's kind and abilities, declared by default: images built on this host, replaced in place.
    assert target.artifact_kind == "image" and target.image_builder is None and target.side_by_side is None
    assert target.job_deployer is not None and not target.job_deployer.job_exists("job", "1")
    assert "half" not in targets
    assert "infrastructure target half: its job_deployer lacks delete_job, job_exists, save_job_secrets" in caplog.text
    assert targets["local"].side_by_side is not None and targets["local"].artifact_kind == "local"
