"""Notifications in process: global subscriptions from settings, plugin notifiers through the
`pipeline_notifiers` hook (retried when they raise), the log notifier, and webhook signatures."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from tests.pipelines.conftest import local_settings
from tests.pipelines.support import OWNER, README_PIPELINE, Receiver, wait_for_run_in_store
from tests.support.polling import wait_until

from trackside.pipelines.definitions import get_definition
from trackside.pipelines.models import PipelineDelivery, PipelineRun
from trackside.pipelines.notifiers import sign, verify
from trackside.pipelines.service import PipelineService
from trackside.plugins.engine import PluginEngine
from trackside.plugins.manifest import PluginManifest
from trackside.store.database import Database


class FlakyNotifier:
    """A plugin's notifier that fails its first call, then records what it is given."""

    def __init__(self) -> None:
        self.calls = 0
        self.received: list[tuple[dict[str, Any], dict[str, Any]]] = []

    def notify(self, event: dict[str, Any], config: dict[str, Any]) -> None:
        self.calls += 1
        if self.calls == 1:
            raise RuntimeError("chat service unavailable")
        self.received.append((event, config))


class ChatPlugin:
    def __init__(self) -> None:
        self.notifier = FlakyNotifier()

    def pipeline_notifiers(self) -> dict[str, Any]:
        return {"chat": self.notifier}


@pytest.fixture
def plugin() -> ChatPlugin:
    return ChatPlugin()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    yield running
    running.close()


@pytest.fixture
def notifying_service(
    tmp_path: Path, db: Database, plugin: ChatPlugin, receiver: Receiver
) -> Iterator[PipelineService]:
    settings = local_settings(
        tmp_path / "data",
        pipeline_log_notifier=True,
        pipeline_notifications=[
            {"on": ["FAILURE"], "scope": ["run"], "webhook": receiver.url, "secret": "global-secret"},
            {"on": ["SUCCESS"], "scope": ["run"], "notifier": "chat", "config": {"channel": "#builds"}},
        ],
    )
    engine = PluginEngine(settings, watch=False)
    engine.add(PluginManifest(name="chat", version="1.0.0"), plugin)
    service = PipelineService(settings, db, engine, run_scheduler=True)
    service.start()
    try:
        yield service
    finally:
        service.stop()
        engine.close()


def test_global_subscriptions_reach_plugin_notifiers_and_webhooks(
    notifying_service: PipelineService, plugin: ChatPlugin, receiver: Receiver, capfd: pytest.CaptureFixture[str]
) -> None:
    ok = notifying_service.submit(README_PIPELINE, OWNER)
    assert wait_for_run_in_store(notifying_service.db, ok)["status"] == "SUCCESSFUL"
    wait_until(lambda: plugin.notifier.received, what="the plugin notifier's second try")
    event, config = plugin.notifier.received[0]
    assert config == {"channel": "#builds"}
    assert (event["type"], event["scope"], event["runUid"]) == ("SUCCESS", "run", ok)
    assert plugin.notifier.calls == 2  # the first call raised: delivered again after a backoff

    failing = {"kind": "Pipeline", "jobs": {"x": {"image": "b", "run": "exit 1"}}}
    bad = notifying_service.submit(failing, OWNER)
    assert wait_for_run_in_store(notifying_service.db, bad)["status"] == "FAILED"
    wait_until(lambda: receiver.received, what="the global webhook")
    headers, body = receiver.received[0]
    assert verify("global-secret", body, headers["x-trackside-signature-256"])
    assert receiver.events()[0]["runUid"] == bad and receiver.events()[0]["type"] == "FAILURE"

    out = capfd.readouterr().out
    assert f"Run {ok} succeeded." in out and "Job error of run" in out and "was skipped" in out
    assert f"Run {bad} failed: job(s) failed: x" in out


def test_a_signature_is_hmac_sha256_of_the_body() -> None:
    assert sign("key", b"{}") == "sha256=" + hmac.new(b"key", b"{}", hashlib.sha256).hexdigest()
    assert not verify("other", b"{}", sign("key", b"{}"))


def test_webhook_secrets_are_stored_encrypted_and_still_sign(
    notifying_service: PipelineService, receiver: Receiver
) -> None:
    body = {
        "kind": "Pipeline",
        "notifications": [{"on": ["SUCCESS"], "scope": ["run"], "webhook": receiver.url, "secret": "per-run-secret"}],
        "jobs": {"x": {"image": "b", "run": "true"}},
    }
    uid = notifying_service.submit(body, OWNER)
    name, version = notifying_service.save_definition("signed", body, "tests")
    assert wait_for_run_in_store(notifying_service.db, uid)["status"] == "SUCCESSFUL"
    wait_until(lambda: receiver.received, what="the run's webhook")
    headers, sent = receiver.received[0]
    assert verify("per-run-secret", sent, headers["x-trackside-signature-256"])

    with notifying_service.db.session() as session:
        stored = [
            session.get(PipelineRun, uid).spec,  # type: ignore[union-attr]
            get_definition(session, name, version).spec,
            *(d.subscription for d in session.scalars(select(PipelineDelivery))),
        ]
    text = json.dumps(stored)
    assert "per-run-secret" not in text
    assert stored[0]["notifications"][0]["secret"].startswith("fernet:")
    assert stored[1]["notifications"][0]["secret"].startswith("fernet:")
    webhooks = [d for d in stored[2:] if d["kind"] == "webhook"]
    assert webhooks and all(d["secret"].startswith("fernet:") for d in webhooks)
