"""The lifecycle API's Swagger page works offline: every asset it loads is served by the platform itself."""

from __future__ import annotations

import re

import httpx
import pytest
from tests.support.platform import RunningPlatform

pytestmark = pytest.mark.slow


def test_swagger_page_loads_only_assets_the_platform_serves(platform: RunningPlatform) -> None:
    page = httpx.get(f"{platform.url}/lifecycle/docs", timeout=30)

    assert page.status_code == 200, page.text
    assert page.headers["content-type"].startswith("text/html")
    assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", page.text)
    assert any(asset.endswith("swagger-ui-bundle.js") for asset in assets), page.text
    external = [asset for asset in assets if asset.startswith(("http:", "https:", "//"))]
    assert external == [], f"the docs page loads assets from the network: {external}"
    for asset in assets:
        served = httpx.get(f"{platform.url}{asset}", timeout=30)
        assert served.status_code == 200, f"{asset}: {served.status_code}"
        assert served.content, f"{asset} is empty"


def test_swagger_page_points_at_an_openapi_31_document_of_the_api(platform: RunningPlatform) -> None:
    page = httpx.get(f"{platform.url}/lifecycle/docs", timeout=30).text
    spec_url = re.search(r"""url: ['"]([^'"]+)['"]""", page)
    assert spec_url is not None, page

    spec = httpx.get(f"{platform.url}{spec_url.group(1)}", timeout=30).json()

    # Swagger UI 5 is what renders OpenAPI 3.1 (FastAPI's version); 4.x shows an error instead.
    assert spec["openapi"].startswith("3.1")
    assert "/lifecycle/api/v1/deploy" in spec["paths"]
