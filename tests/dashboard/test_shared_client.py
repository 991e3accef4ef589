"""The dashboard's one HTTP pool serves every user, so it must never carry a cookie between them."""

from __future__ import annotations

import asyncio

import httpx

from trackside.dashboard.app import Dashboard


def test_a_cookie_the_api_sets_is_never_sent_with_a_later_request() -> None:
    seen: list[str | None] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("cookie"))
        return httpx.Response(200, headers={"set-cookie": "X-Racetrack-Auth=someone-elses-token; Path=/"}, json={})

    async def scenario() -> None:
        dashboard = Dashboard("http://127.0.0.1:9/lifecycle")
        client = dashboard.http()
        client._transport = httpx.MockTransport(answer)  # the wire, not our component
        try:
            await client.post("http://127.0.0.1:9/lifecycle/api/v1/users/login")
            await client.get("http://127.0.0.1:9/lifecycle/api/v1/info")
        finally:
            await dashboard.close()

    asyncio.run(scenario())
    assert seen == [None, None]
