"""Docs: the user guide (the repository's `docs/guide/*.md`, shipped in the package) and every
installed plugin's `markdown_docs`, rendered with raw HTML disabled."""

from __future__ import annotations

import functools
import re
from pathlib import Path
from urllib.parse import quote

from markdown_it import MarkdownIt
from starlette.responses import Response

from trackside.cli.client import ApiError
from trackside.dashboard.views import get
from trackside.dashboard.web import Page, PageError

PACKAGED = Path(__file__).resolve().parents[1] / "guide"
REPOSITORY = Path(__file__).resolve().parents[4] / "docs" / "guide"
_NAME = re.compile(r"^[a-z0-9-]+$")


def guide_dir() -> Path:
    """The guide shipped in the wheel, or the repository's own in a source checkout."""
    return PACKAGED if PACKAGED.is_dir() else REPOSITORY


@functools.cache
def _markdown() -> MarkdownIt:
    return MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")


def render_markdown(text: str) -> str:
    return str(_markdown().render(text))


def _title(path: Path) -> str:
    for line in path.read_text().splitlines():
        if line.startswith("# "):
            return line[2:].strip()
    return path.stem.replace("-", " ")


def guide_pages() -> list[tuple[str, str]]:
    directory = guide_dir()
    if not directory.is_dir():
        return []
    return [(p.stem, _title(p)) for p in sorted(directory.glob("*.md"))]


async def _plugins(page: Page) -> list[dict[str, str]]:
    try:
        return [p for p in await page.api.get("/plugin") if isinstance(p, dict)]
    except ApiError:
        return []


@get("/docs")
async def docs_index(page: Page) -> Response:
    pages = guide_pages()
    if pages:
        return page.redirect(page.url(f"/docs/{pages[0][0]}"))
    return page.render(
        "docs.html", pages=pages, plugins=await _plugins(page), html="<p>No user guide here.</p>", title="Docs"
    )


@get("/docs/plugins/{name}")
async def plugin_docs(page: Page) -> Response:
    name = str(page.request.path_params["name"])
    text = await page.api.get(f"/plugin/{quote(name, safe='')}/docs")
    html = render_markdown(text) if isinstance(text, str) and text else "<p>This plugin has no docs.</p>"
    return page.render(
        "docs.html", pages=guide_pages(), plugins=await _plugins(page), html=html, title=f"Plugin {name}"
    )


@get("/docs/{name}")
async def guide_page(page: Page) -> Response:
    name = str(page.request.path_params["name"])
    path = guide_dir() / f"{name}.md"
    if not _NAME.match(name) or not path.is_file():
        raise PageError(404, f"no guide page {name!r}")
    html = render_markdown(path.read_text())
    return page.render("docs.html", pages=guide_pages(), plugins=await _plugins(page), html=html, title=_title(path))
