"""Notifiers of run and step events: `log` (chainr's), `webhook`, and those plugins add.

- `log`: the event's title and message on the platform's stdout, coloured by type as chainr's
  LogNotifier did; on for every event unless `pipeline_log_notifier: false`.
- `webhook`: `POST` of the event as JSON. With a `secret`, the body is signed with HMAC-SHA256 and the
  hex digest sent as `X-Trackside-Signature-256: sha256=<hex>` (check it over the raw body, with a
  constant-time comparison); `X-Trackside-Event` is the type and `X-Trackside-Delivery` the delivery's
  id (the same on every try, so a receiver can drop duplicates). A non-2xx answer or no answer is
  tried again after 1 s, 2 s, 4 s... up to `pipeline_notification_attempts` tries.
- plugin notifiers: a plugin's `pipeline_notifiers()` hook returns `{name: notifier}`, each a callable
  `notifier(event: dict, config: dict)` or an object with such a `notify` method; a subscription
  `{"notifier": name, "config": {...}}` uses it. Raising means "try again later", as a failed webhook.

Webhook and plugin deliveries are rows written with their event (see `events.py`): a delivery worker
claims due ones under a lease, so every event is delivered at least once, across restarts.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import sys
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import or_, select

from trackside.auth.crypto import SecretBox
from trackside.errors import InvalidInput
from trackside.pipelines.events import EventView
from trackside.pipelines.models import PipelineDelivery, PipelineEvent
from trackside.pipelines.store import set_where
from trackside.store.base import utcnow
from trackside.store.database import Database

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Trackside-Signature-256"
_COLOURS = {"START": "\033[34m", "SUCCESS": "\033[32m", "FAILURE": "\033[31m", "SKIPPED": "\033[90m"}
_RESET = "\033[0m"
DELIVERY_LEASE = 60.0


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, signature: str) -> bool:
    return hmac.compare_digest(sign(secret, body), signature)


def log_event(event: EventView) -> None:
    """chainr's LogNotifier: a coloured title, then the message."""
    colour = _COLOURS.get(event.type, "\033[33m")
    sys.stdout.write(f"{colour}{event.title}{_RESET}\n{event.message}\n")
    sys.stdout.flush()


def plugin_notifier_call(notifier: Any) -> Callable[[dict[str, Any], dict[str, Any]], Any]:
    func = getattr(notifier, "notify", notifier)
    if not callable(func):
        raise TypeError(f"plugin notifier {notifier!r} is neither callable nor has a notify method")
    return func  # type: ignore[no-any-return]


class DeliveryWorker:
    """Sends due deliveries; runs as a task of the scheduler's event loop."""

    def __init__(
        self,
        db: Database,
        box: SecretBox,
        owner: str,
        plugin_notifiers: Callable[[], dict[str, Any]],
        attempts: int = 6,
        timeout: float = 10.0,
    ) -> None:
        self.db = db
        self.box = box
        self.owner = owner
        self.plugin_notifiers = plugin_notifiers
        self.max_attempts = max(1, attempts)
        self._client = httpx.AsyncClient(timeout=timeout)
        self.wake = asyncio.Event()

    async def close(self) -> None:
        await self._client.aclose()

    def _claim(self, limit: int = 50) -> list[tuple[int, dict[str, Any], int, EventView]]:
        now = utcnow()
        with self.db.session() as session:
            rows = session.execute(
                select(PipelineDelivery, PipelineEvent)
                .join(PipelineEvent, PipelineEvent.id == PipelineDelivery.event_id)
                .where(
                    PipelineDelivery.status == "pending",
                    PipelineDelivery.next_attempt_at <= now,
                    or_(PipelineDelivery.lease_expires.is_(None), PipelineDelivery.lease_expires < now),
                )
                .order_by(PipelineDelivery.id)
                .limit(limit)
            ).all()
            claimed = []
            for delivery, event in rows:
                result = session.execute(
                    set_where(PipelineDelivery)
                    .where(PipelineDelivery.id == delivery.id, PipelineDelivery.attempts == delivery.attempts)
                    .values(lease_owner=self.owner, lease_expires=now + timedelta(seconds=DELIVERY_LEASE))
                )
                if result.rowcount == 1:  # type: ignore[attr-defined]
                    claimed.append((delivery.id, dict(delivery.subscription), delivery.attempts, EventView.of(event)))
            return claimed

    def _record(self, delivery_id: int, attempts: int, error: str | None) -> None:
        with self.db.session() as session:
            values: dict[str, Any] = {"attempts": attempts + 1, "lease_owner": None, "lease_expires": None}
            if error is None:
                values["status"] = "done"
                values["last_error"] = None
            else:
                values["last_error"] = error[:2000]
                if attempts + 1 >= self.max_attempts:
                    values["status"] = "failed"
                    log.warning("notification %s given up after %d tries: %s", delivery_id, attempts + 1, error)
                else:
                    values["next_attempt_at"] = utcnow() + timedelta(seconds=min(300.0, 2.0**attempts))
            session.execute(set_where(PipelineDelivery).where(PipelineDelivery.id == delivery_id).values(**values))

    async def _send(self, delivery_id: int, subscription: dict[str, Any], event: EventView) -> str | None:
        """None when delivered, else why not."""
        if subscription.get("kind") == "webhook":
            body = json.dumps(event.to_json(), separators=(",", ":")).encode()
            headers = {
                "Content-Type": "application/json",
                "X-Trackside-Event": event.type,
                "X-Trackside-Delivery": str(delivery_id),
                "User-Agent": "trackside-pipelines",
            }
            if subscription.get("secret"):
                # Stored encrypted (pipelines.secrets): decrypted only here, to sign.
                try:
                    secret = self.box.decrypt(str(subscription["secret"]))
                except InvalidInput as exc:
                    return exc.message
                headers[SIGNATURE_HEADER] = sign(secret, body)
            try:
                response = await self._client.post(str(subscription["url"]), content=body, headers=headers)
            except httpx.HTTPError as exc:
                return f"{type(exc).__name__}: {exc}"
            return None if response.is_success else f"HTTP {response.status_code}: {response.text[:200]}"
        name = str(subscription.get("notifier") or "")
        notifier = self.plugin_notifiers().get(name)
        if notifier is None:
            return f"no plugin provides the notifier {name!r}"
        try:
            await asyncio.to_thread(
                plugin_notifier_call(notifier), event.to_json(), dict(subscription.get("config") or {})
            )
        except Exception as exc:
            return f"plugin notifier {name} failed: {exc or type(exc).__name__}"
        return None

    async def run_once(self) -> int:
        claimed = await asyncio.to_thread(self._claim)
        if not claimed:
            return 0
        results = await asyncio.gather(*(self._send(d, s, e) for d, s, _, e in claimed))
        for (delivery_id, _, attempts, _), error in zip(claimed, results, strict=True):
            await asyncio.to_thread(self._record, delivery_id, attempts, error)
        return len(claimed)

    async def loop(self, stopping: asyncio.Event, interval: float = 1.0) -> None:
        while not stopping.is_set():
            try:
                sent = await self.run_once()
            except Exception:
                log.exception("pipeline notifications: delivery round failed")
                sent = 0
            if sent:
                continue
            self.wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), interval)
