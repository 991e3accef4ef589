"""Notification secrets at rest: a webhook's `secret` (its HMAC key) is stored encrypted with the
platform's secrets key (`trackside.auth.crypto`, as job secrets are), in runs, named pipelines and
delivery rows, and decrypted only to sign a delivery. Values stored before this (no `fernet:`
prefix) still read as they are.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any

from trackside.auth.crypto import SecretBox, is_encrypted
from trackside.pipelines.spec import Subscription


def seal(value: str, box: SecretBox) -> str:
    return value if not value or is_encrypted(value) else box.encrypt(value)


def seal_pipeline(body: dict[str, Any], box: SecretBox) -> dict[str, Any]:
    """A copy of a (validated) pipeline whose notification secrets are encrypted."""
    notifications = body.get("notifications")
    if not isinstance(notifications, list) or not any(
        isinstance(item, dict) and item.get("secret") for item in notifications
    ):
        return body
    sealed = copy.deepcopy(body)
    for item in sealed["notifications"]:
        if isinstance(item, dict) and isinstance(item.get("secret"), str):
            item["secret"] = seal(item["secret"], box)
    return sealed


def seal_subscription(subscription: Subscription, box: SecretBox) -> Subscription:
    return replace(subscription, secret=seal(subscription.secret, box)) if subscription.secret else subscription
