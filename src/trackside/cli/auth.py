"""`trackside login` / `logout` / `get auth-token`: the token the CLI sends to a remote.

As `racetrack login`: with a TOKEN it is checked against the remote first; with `--username` the
password is read without echo (or from stdin with `--password-stdin`, for scripts) and exchanged
for the user's token. Tokens are kept per remote in the client config (mode 0600).
"""

from __future__ import annotations

import getpass
import sys
from typing import Annotated

import typer

from trackside.cli.client import ApiError, LifecycleClient
from trackside.cli.common import RemoteOption
from trackside.cli.config import load_client_config, save_client_config
from trackside.errors import InvalidInput, TracksideError


def read_password(password_stdin: bool, prompt: str = "Password: ") -> str:
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif sys.stdin.isatty():
        password = getpass.getpass(prompt)
    else:
        raise InvalidInput("no terminal to ask the password on: pass it on stdin with --password-stdin")
    if not password:
        raise InvalidInput("the password is empty")
    return password


def login(
    token: Annotated[str | None, typer.Argument(help="An auth token (omit it to log in with --username).")] = None,
    username: Annotated[
        str | None, typer.Option("--username", "-u", help="Log in with a username and password.")
    ] = None,
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin.")] = False,
    remote: RemoteOption = None,
) -> None:
    """Save a token for the remote: a given TOKEN (checked first), or one got with --username."""
    config = load_client_config()
    url = config.resolve_remote(remote)
    if token and username:
        raise InvalidInput("give either a TOKEN or --username, not both")
    if username:
        password = read_password(password_stdin)
        with LifecycleClient(url) as client:
            answer = client.request("POST", "/users/login", json={"username": username, "password": password})
        token = str(answer["token"])
        who = f"user {answer.get('username', username)}"
    elif token:
        token = token.strip()
        with LifecycleClient(url, token=token) as client:
            try:
                answer = client.request("GET", "/users/validate_user_auth")
                who = f"user {answer.get('username')}"
            except ApiError as exc:
                if exc.status_code != 403:  # 403: a valid token that is not a user's (ESC, internal)
                    raise TracksideError(f"the token was refused by {url}: {exc.message}") from None
                client.list_jobs()  # still must work for something
                who = "a non-user token"
    else:
        raise InvalidInput("give a TOKEN, or --username to log in with a password")
    config.user_auths[url] = token
    path = save_client_config(config)
    typer.echo(f"logged in to {url} as {who} (token saved in {path})", err=True)


def logout(remote: RemoteOption = None) -> None:
    """Forget the token saved for the remote."""
    config = load_client_config()
    url = config.resolve_remote(remote)
    if config.user_auths.pop(url, None) is None:
        typer.echo(f"no token was saved for {url}", err=True)
        return
    save_client_config(config)
    typer.echo(f"logged out of {url}", err=True)


def get_auth_token(remote: RemoteOption = None) -> None:
    """Print the token saved for the remote (e.g. for curl -H "X-Racetrack-Auth: $(trackside get auth-token)")."""
    config = load_client_config()
    url = config.resolve_remote(remote)
    token = config.token_for(url)
    if token is None:
        raise InvalidInput(f"no token saved for {url}: run `trackside login --remote {url}` first")
    typer.echo(token)
