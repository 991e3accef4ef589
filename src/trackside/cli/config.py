"""The CLI's own settings: the current remote, remote aliases and per-remote tokens.

Kept apart from the server's `trackside.config.Settings` because a client machine never runs the
platform. The file is `~/.trackside/client.yaml` (a directory or a `.yaml` path given by
`TRACKSIDE_CLIENT_CONFIG` replaces it), written with mode 0600 because it holds tokens, as
Racetrack's `~/.racetrack/config.yaml` does.

Remote resolution follows Racetrack's client (docs/architecture.md, "Compatibility contracts"): an alias is looked up
first, a missing scheme becomes `http://` for loopback hosts and `https://` otherwise, and a URL without a path gets
`/lifecycle` appended.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import yaml

from trackside.errors import InvalidInput
from trackside.safe_yaml import load_yaml

log = logging.getLogger(__name__)

CONFIG_ENV_VAR = "TRACKSIDE_CLIENT_CONFIG"
REMOTE_ENV_VAR = "TRACKSIDE_REMOTE"
CONFIG_FILENAME = "client.yaml"
DEFAULT_REMOTE = "http://127.0.0.1:7070"
LIFECYCLE_PATH = "/lifecycle"


def client_config_path() -> Path:
    """Where the client config lives: `$TRACKSIDE_CLIENT_CONFIG` (a dir, or a .yaml file) or ~/.trackside."""
    override = os.environ.get(CONFIG_ENV_VAR)
    if override:
        path = Path(override).expanduser()
        return path if path.suffix in (".yaml", ".yml") else path / CONFIG_FILENAME
    return Path.home() / ".trackside" / CONFIG_FILENAME


@dataclass
class ClientConfig:
    # The remote as the user set it (a URL, a host, or an alias); None means DEFAULT_REMOTE.
    remote: str | None = None
    remote_aliases: dict[str, str] = field(default_factory=dict)
    # Token per resolved lifecycle URL, sent as X-Racetrack-Auth.
    user_auths: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        if self.remote is not None:
            data["remote"] = self.remote
        if self.remote_aliases:
            data["remote_aliases"] = dict(self.remote_aliases)
        if self.user_auths:
            data["user_auths"] = dict(self.user_auths)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str) -> ClientConfig:
        unknown = sorted(set(data) - {"remote", "remote_aliases", "user_auths"})
        if unknown:
            raise InvalidInput(f"{source}: unknown field(s) {', '.join(repr(k) for k in unknown)}")
        remote = data.get("remote")
        if remote is not None and not isinstance(remote, str):
            raise InvalidInput(f"{source}: field 'remote': expected a URL string")
        return cls(
            remote=remote,
            remote_aliases=_str_mapping(data.get("remote_aliases"), source, "remote_aliases"),
            user_auths=_str_mapping(data.get("user_auths"), source, "user_auths"),
        )

    def resolve_remote(self, remote: str | None = None) -> str:
        """The lifecycle base URL (`.../lifecycle`) for `remote`, or for the current one when None."""
        chosen = remote or os.environ.get(REMOTE_ENV_VAR) or self.remote or DEFAULT_REMOTE
        return resolve_remote_url(self.remote_aliases.get(chosen, chosen))

    def token_for(self, lifecycle_url: str) -> str | None:
        return self.user_auths.get(lifecycle_url) or None


def _str_mapping(value: Any, source: str, name: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise InvalidInput(f"{source}: field '{name}': expected a mapping of strings")
    return dict(value)


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def resolve_remote_url(remote: str) -> str:
    """Normalise a remote to the lifecycle base URL, e.g. `example.com` -> `https://example.com/lifecycle`."""
    text = remote.strip()
    if not text:
        raise InvalidInput("remote URL is empty")
    if "://" not in text:
        host = urlsplit(f"//{text}").hostname or ""
        text = f"{'http' if _is_loopback(host) else 'https'}://{text}"
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https"):
        raise InvalidInput(f"remote '{remote}': scheme must be http or https, not '{parts.scheme}'")
    try:
        _ = parts.port
    except ValueError:
        raise InvalidInput(f"remote '{remote}': invalid port") from None
    if not parts.hostname:
        raise InvalidInput(f"remote '{remote}': no host in the URL")
    path = parts.path.rstrip("/") or LIFECYCLE_PATH
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def load_client_config(path: Path | None = None) -> ClientConfig:
    file = path or client_config_path()
    if not file.exists():
        return ClientConfig()
    try:
        mode = file.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            log.warning("%s is readable by others (mode %o); run: chmod 600 %s", file, mode & 0o777, file)
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"cannot read client config {file}: {exc}") from None
    data = load_yaml(text, f"client config {file}") or {}
    if not isinstance(data, dict):
        raise InvalidInput(f"client config {file}: expected a mapping of fields")
    return ClientConfig.from_dict(data, str(file))


def save_client_config(config: ClientConfig, path: Path | None = None) -> Path:
    """Write the config atomically, created with mode 0600 (it holds tokens)."""
    file = path or client_config_path()
    try:
        file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = file.with_name(f".{file.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            yaml.safe_dump(config.to_dict(), handle, sort_keys=False)
        os.chmod(tmp, 0o600)
        os.replace(tmp, file)
    except OSError as exc:
        raise InvalidInput(f"cannot write client config {file}: {exc.strerror or exc}") from None
    return file
