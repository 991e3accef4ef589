"""Log in, register, log out, profile (token, login commands, regenerate), change password."""

from __future__ import annotations

from urllib.parse import quote

from starlette.responses import Response

from trackside.dashboard.views import get, post
from trackside.dashboard.web import AUTH_COOKIE, BASE, COOKIE_MAX_AGE, FormState, Page


def _next(page: Page, value: str | None) -> str:
    """Where to go after logging in: only a path inside the dashboard (no open redirect)."""
    if value and value.startswith(BASE + "/") and not value.startswith("//"):
        return value
    return f"{BASE}/jobs"


@get("/login", login=False)
async def login_page(page: Page) -> Response:
    if page.user is not None:
        return page.redirect(_next(page, page.request.query_params.get("next")))
    return page.render("login.html", state=FormState(), next=page.request.query_params.get("next", ""))


@post("/login", login=False)
async def login(page: Page) -> Response:
    form = await page.form()
    state = FormState({"username": str(form.get("username", ""))})
    body = {"username": state.value("username").strip(), "password": str(form.get("password", ""))}
    answer = await page.attempt(page.api.post("/users/login", json=body), state, ["username", "password"])
    if answer is None:
        return page.render("login.html", status_code=400, state=state, next=str(form.get("next", "")))
    page.set_cookie(AUTH_COOKIE, quote(str(answer["token"]), safe=""), COOKIE_MAX_AGE)
    return page.redirect(_next(page, str(form.get("next", ""))), flash=f"Logged in as {answer['username']}.")


@get("/register", login=False)
async def register_page(page: Page) -> Response:
    return page.render("register.html", state=FormState(), registered=None)


@post("/register", login=False)
async def register(page: Page) -> Response:
    form = await page.form()
    state = FormState({"username": str(form.get("username", ""))})
    password, again = str(form.get("password", "")), str(form.get("password_again", ""))
    if password != again:
        state.errors["password_again"] = "password_again: the two passwords differ"
        return page.render("register.html", status_code=400, state=state, registered=None)
    body = {"username": state.value("username").strip(), "password": password}
    answer = await page.attempt(page.api.post("/users/register", json=body), state, ["username", "password"])
    if answer is None:
        return page.render("register.html", status_code=400, state=state, registered=None)
    return page.render("register.html", state=FormState(), registered=answer)


@post("/logout", login=False)
async def logout(page: Page) -> Response:
    await page.form()
    page.set_cookie(AUTH_COOKIE, "", 0)
    return page.redirect(f"{BASE}/login", flash="Logged out.")


async def _profile(page: Page, state: FormState, status_code: int = 200) -> Response:
    # Beside the gateway (`trackside up`) the platform's address is this page's; alone, the lifecycle's.
    if page.dashboard.pub_url == "/pub":
        remote = str(page.request.base_url).rstrip("/")
    else:
        remote = page.dashboard.lifecycle_url.rstrip("/").removesuffix("/lifecycle")
    return page.render("profile.html", status_code=status_code, state=state, remote=remote)


@get("/profile")
async def profile(page: Page) -> Response:
    return await _profile(page, FormState())


@post("/profile/password")
async def change_password(page: Page) -> Response:
    form = await page.form()
    state = FormState()
    new, again = str(form.get("new_password", "")), str(form.get("new_password_again", ""))
    if new != again:
        state.errors["new_password_again"] = "new_password_again: the two passwords differ"
        return await _profile(page, state, 400)
    body = {"old_password": str(form.get("old_password", "")), "new_password": new}
    done = await page.attempt(
        page.api.put("/users/change_password", json=body), state, ["old_password", "new_password"]
    )
    if done is None:
        return await _profile(page, state, 400)
    return page.redirect(f"{BASE}/profile", flash="Password changed.")


@post("/profile/token")
async def regenerate_token(page: Page) -> Response:
    await page.form()
    answer = await page.api.post("/auth/token/user/regenerate")
    page.set_cookie(AUTH_COOKIE, quote(str(answer["new_token"]), safe=""), COOKIE_MAX_AGE)
    return page.redirect(f"{BASE}/profile", flash="A new token replaces the old one; log in again where you used it.")
