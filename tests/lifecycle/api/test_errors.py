"""How the lifecycle API's error handlers answer: every error as `{"error", "type"}`, and an
unexpected one without its details (they can hold SQL, paths or secrets) but with a reference the
operator finds in the log."""

from __future__ import annotations

import asyncio
import logging
import re

import httpx
import pytest
from fastapi import FastAPI

from trackside.errors import NotFound
from trackside.lifecycle.api.errors import install_error_handlers


def get(app: FastAPI, path: str) -> httpx.Response:
    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://lifecycle") as client:
            return await client.get(path)

    return asyncio.run(call())


@pytest.fixture
def app() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("SELECT secret FROM keys WHERE password='hunter2'")

    @app.get("/missing")
    def missing() -> None:
        raise NotFound("job adder 1.0.0 not found")

    return app


def test_an_unexpected_error_answers_500_without_its_details_and_logs_them_under_a_reference(
    app: FastAPI, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="trackside.lifecycle.api.errors"):
        answer = get(app, "/boom")
    assert answer.status_code == 500
    body = answer.json()
    assert body["type"] == "InternalError"
    assert "hunter2" not in answer.text and "SELECT" not in answer.text and "RuntimeError" not in answer.text
    reference = re.fullmatch(r"internal error \(reference ([0-9a-f]{12}) in the lifecycle's log\)", body["error"])
    assert reference is not None, body
    logged = [r for r in caplog.records if reference.group(1) in r.getMessage()]
    assert logged and logged[0].exc_info is not None and "hunter2" in str(logged[0].exc_info[1])


def test_a_platform_error_keeps_its_status_message_and_type(app: FastAPI) -> None:
    answer = get(app, "/missing")
    assert answer.status_code == 404
    assert answer.json() == {"error": "job adder 1.0.0 not found", "type": "NotFound"}
