"""One real platform per test module, on a database of its own (`fresh_database`): these modules
call many routes and leave data behind, and a platform start is the slow part of each."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.conftest import fresh_database
from tests.support.platform import RunningPlatform, start_platform


@pytest.fixture(scope="module")
def module_platform(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningPlatform]:
    root = tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1])
    with fresh_database(root) as database_url:
        running = start_platform(root / "data", database_url)
        try:
            yield running
        finally:
            running.stop()
