"""The local target as a plugin: manifest, one cached target per plugin instance, and port retries."""

from __future__ import annotations

from tests.infra.local.localjob import LocalHarness, fake_job_command, monitor

from trackside.config import Settings
from trackside.infra.local import Plugin

# Fails like a server whose port was taken on its first start, then serves on the next one.
TAKEN_PORT_ONCE = """
import os, pathlib, sys
marker = pathlib.Path("taken-once")
if not marker.exists():
    marker.write_text("1")
    print("OSError: [Errno 98] Address already in use", flush=True)
    sys.exit(1)
"""


def test_plugin_provides_one_cached_local_target(settings: Settings) -> None:
    plugin = Plugin()
    plugin.settings = settings

    targets = plugin.infrastructure_targets()
    again = plugin.infrastructure_targets()

    try:
        assert Plugin.plugin_manifest == {
            "name": "local-infrastructure",
            "version": "1.0.0",
            "category": "infrastructure",
        }
        assert list(targets) == ["local"]
        target = targets["local"]
        assert target is again["local"]
        assert target.name == "local" and target.artifact_kind == "local"
        assert target.job_deployer and target.job_monitor and target.logs_streamer and target.close
    finally:
        if targets["local"].close is not None:
            targets["local"].close()


def test_replica_that_could_not_bind_its_port_is_retried_on_another_port(local: LocalHarness) -> None:
    target = local.target()
    script = TAKEN_PORT_ONCE + fake_job_command()[2]
    local.artifact(command=fake_job_command(script))
    job = local.deploy(target)

    monitor(target).check_job_condition(job, 1_700_000_001)  # does not fail on the bind error

    local.remember_pids()
    (state,) = local.states()
    assert f"127.0.0.1:{state.port}" != job.internal_name
    assert state.restart_count == 0  # a port clash is not a crash
    (listed,) = monitor(target).list_jobs(local.settings)
    assert listed.status == "running" and listed.internal_name == f"127.0.0.1:{state.port}"


def test_plugin_engine_loads_the_local_target_as_a_builtin_plugin(settings: Settings) -> None:
    from trackside.plugins.engine import PluginEngine

    engine = PluginEngine(settings)
    try:
        target = engine.infrastructure_targets()["local"]
        assert target.artifact_kind == "local"
        assert "local-infrastructure" in [p.manifest.name for p in engine.plugins]
    finally:
        engine.close()
