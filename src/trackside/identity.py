"""The platform's identity: one id per install, so what it starts can be told from another platform's.

A platform is one store: every lifecycle, supervisor and gateway process on that store is the same
platform, and the store keeps the id (generated once, see `trackside.lifecycle.platform_identity`),
which the lifecycle puts in `Settings.platform_id` before any target is made. Containers carry it as a
label, and every query a Docker target makes of its engine is filtered on it, so two platforms sharing
one engine never list, retire or clean each other's containers. A target made without a store (tests,
tools) uses an id kept in its data dir instead.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from trackside.files import read_or_create_private

if TYPE_CHECKING:
    from trackside.config import Settings

PLATFORM_ID_FILE = "platform-id"


def new_platform_id() -> str:
    return uuid.uuid4().hex


def data_dir_platform_id(data_dir: Path) -> str:
    """The id kept in `{data_dir}/platform-id`, created on first use."""
    return read_or_create_private(Path(data_dir) / PLATFORM_ID_FILE, new_platform_id)


def platform_id(settings: Settings) -> str:
    """This platform's id: the store's (set by the lifecycle at start), else the data dir's."""
    return settings.platform_id or data_dir_platform_id(settings.data_dir)
