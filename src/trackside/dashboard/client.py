"""The dashboard's asynchronous client of the lifecycle REST API, acting as the logged-in user.

Errors come back as the CLI's `ApiError` (the API's `error` message and status) or `ApiUnreachable`,
so pages show the API's own words.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import quote

import httpx

from trackside.cli.client import AUTH_HEADER, ApiUnreachable, error_from_response
from trackside.gateway.forwarding import GATEWAY_SECRET_HEADER

API_PREFIX = "/api/v1"
PIPELINES_PREFIX = "/api"


def job_path(name: str, version: str) -> str:
    return f"/job/{quote(name, safe='')}/{quote(version, safe='')}"


class Api:
    """One request's view of the API: the shared connection pool plus this user's token."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        lifecycle_url: str,
        token: str | None,
        client_ip: str | None,
        gateway_secret: str | None = None,
    ) -> None:
        self.http = http
        self.base = lifecycle_url.rstrip("/") + API_PREFIX
        # The pipelines API (chainr's) lives at the platform's root, `/api/runs...`, beside `/lifecycle`.
        self.root = lifecycle_url.rstrip("/").removesuffix("/lifecycle")
        self.headers: dict[str, str] = {}
        if token:
            self.headers[AUTH_HEADER] = token
        if client_ip:
            # The lifecycle throttles failed logins per client address: pass the browser's along. It
            # believes it only from the platform's own components (the secret `trackside up` shares) or
            # from an operator-trusted proxy (`serve dashboard` on a host in trusted_proxies).
            self.headers["X-Forwarded-For"] = client_ip
            if gateway_secret:
                self.headers[GATEWAY_SECRET_HEADER] = gateway_secret

    async def request(self, method: str, path: str, *, root: bool = False, **kwargs: Any) -> httpx.Response:
        """`path` under the lifecycle API (`/api/v1`), or with `root` under the platform's root."""
        url = (self.root if root else self.base) + path
        # A GET is tried twice: a pooled keep-alive connection the server closed just as it was
        # reused fails without an answer, and asking again is safe.
        attempts = 2 if method == "GET" else 1
        for attempt in range(attempts):
            try:
                response = await self.http.request(method, url, headers=self.headers, **kwargs)
                break
            except (httpx.RemoteProtocolError, httpx.ReadError, httpx.ConnectError) as exc:
                if attempt + 1 < attempts:
                    continue
                raise ApiUnreachable(f"cannot reach the lifecycle API at {self.base}: {exc!r}") from exc
            except httpx.HTTPError as exc:
                raise ApiUnreachable(f"cannot reach the lifecycle API at {self.base}: {exc!r}") from exc
        if response.status_code >= 400:
            raise error_from_response(response)
        return response

    async def get(self, path: str, **params: Any) -> Any:
        clean = {k: v for k, v in params.items() if v is not None and v != ""}
        return (await self.request("GET", path, params=clean)).json()

    async def text(self, path: str, **params: Any) -> str:
        return (await self.request("GET", path, params=params)).text

    async def post(self, path: str, json: Any = None, **kwargs: Any) -> Any:
        response = await self.request("POST", path, json=json, **kwargs)
        return response.json() if response.content else None

    # The pipelines API: `path` under `/api` at the platform's root.

    async def pipelines_get(self, path: str, **params: Any) -> Any:
        clean = {k: v for k, v in params.items() if v is not None and v != ""}
        return (await self.request("GET", PIPELINES_PREFIX + path, root=True, params=clean)).json()

    async def pipelines_text(self, path: str, **params: Any) -> str:
        clean = {k: v for k, v in params.items() if v is not None and v != ""}
        return (await self.request("GET", PIPELINES_PREFIX + path, root=True, params=clean)).text

    async def pipelines_post(self, path: str, json: Any = None, **kwargs: Any) -> Any:
        response = await self.request("POST", PIPELINES_PREFIX + path, root=True, json=json, **kwargs)
        return response.json() if response.content else None

    async def put(self, path: str, json: Any = None) -> Any:
        return (await self.request("PUT", path, json=json)).json()

    async def patch(self, path: str, json: Any = None) -> Any:
        return (await self.request("PATCH", path, json=json)).json()

    async def delete(self, path: str) -> Any:
        return (await self.request("DELETE", path)).json()

    @asynccontextmanager
    async def stream_lines(self, path: str, root: bool = False, **params: Any) -> AsyncIterator[AsyncIterator[str]]:
        """An API server-sent event stream, line by line."""
        url = (self.root if root else self.base) + path
        try:
            async with self.http.stream(
                "GET", url, headers=self.headers, params=params, timeout=httpx.Timeout(10, read=None)
            ) as response:
                if response.status_code >= 400:
                    await response.aread()
                    raise error_from_response(response)
                yield response.aiter_lines()
        except httpx.HTTPError as exc:
            raise ApiUnreachable(f"cannot reach the lifecycle API at {self.base}: {exc}") from exc
