"""Every error leaves the API as `{"error": message, "type": name}` with the matching status."""

from __future__ import annotations

import logging
import uuid

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from trackside.errors import TracksideError

log = logging.getLogger(__name__)


def error_response(status_code: int, message: str, type_name: str) -> JSONResponse:
    return JSONResponse({"error": message, "type": type_name}, status_code=status_code)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(TracksideError)
    async def _trackside_error(_request: Request, exc: TracksideError) -> JSONResponse:
        return error_response(exc.status_code, exc.message, exc.type_name)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for error in exc.errors():
            location = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
            problems.append(f"{location or 'body'}: {error.get('msg')}")
        return error_response(400, "invalid request: " + "; ".join(problems), "InvalidInput")

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error_response(exc.status_code, str(exc.detail), "HTTPException")

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        # The details (which may hold SQL, paths or values) go to the operator's log, never to the caller.
        reference = uuid.uuid4().hex[:12]
        log.exception("unexpected error in the lifecycle API (reference %s)", reference)
        return error_response(500, f"internal error (reference {reference} in the lifecycle's log)", "InternalError")
