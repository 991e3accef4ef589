"""Client-side secret env files (`secret_build_env_file`, `secret_runtime_env_file`).

As in Racetrack, secrets never live in the manifest: they are `.env` files next to it on the
client, read on every deploy and sent with the deploy request, where they override plain env vars
of the same name. They never travel in the build context (`secret_env_files` names them for the
packer, and the server leaves them out of an uploaded context too).
"""

from __future__ import annotations

import re
from pathlib import Path

from trackside.errors import InvalidInput
from trackside.manifest.model import Manifest, check_env_name

_LINE_RE = re.compile(r"^(?:export\s+)?([^=\s]+)\s*=\s*(.*)$")
_DOUBLE_QUOTE_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "$": "$"}


def _unquote(raw: str, where: str) -> str:
    raw = raw.strip()
    if raw[:1] in ("'", '"'):
        quote = raw[0]
        end = _closing_quote(raw, quote)
        if end < 0:
            raise InvalidInput(f"{where}: unterminated {quote} quote")
        rest = raw[end + 1 :].strip()
        if rest and not rest.startswith("#"):
            raise InvalidInput(f"{where}: unexpected text after the closing quote: {rest}")
        body = raw[1:end]
        if quote == "'":
            return body
        return re.sub(r"\\(.)", lambda m: _DOUBLE_QUOTE_ESCAPES.get(m.group(1), m.group(0)), body)
    # Unquoted: a '#' preceded by whitespace starts a comment.
    comment = re.search(r"\s#", raw)
    return (raw[: comment.start()] if comment else raw).strip()


def _closing_quote(raw: str, quote: str) -> int:
    index = 1
    while index < len(raw):
        char = raw[index]
        if char == "\\" and quote == '"':
            index += 2
            continue
        if char == quote:
            return index
        index += 1
    return -1


def parse_env_text(text: str, source: str) -> dict[str, str]:
    """Parse `.env` text: KEY=VALUE lines, `#` comments, optional quotes and `export ` prefix."""
    env: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        where = f"{source}:{number}"
        match = _LINE_RE.match(stripped)
        if match is None:
            raise InvalidInput(f"{where}: expected KEY=VALUE, got '{stripped}'")
        key, raw_value = match.groups()
        try:
            check_env_name(key)
        except ValueError as exc:
            raise InvalidInput(f"{where}: {exc}") from None
        env[key] = _unquote(raw_value, where)
    return env


def parse_env_file(path: Path) -> dict[str, str]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InvalidInput(f"secret env file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{path}: cannot read secret env file: {exc}") from None
    return parse_env_text(text, str(path))


def secret_env_files(manifest: Manifest, workdir: Path) -> list[Path]:
    """The manifest's secret env files (build and runtime), as paths on the client."""
    paths = []
    for filename in (manifest.secret_build_env_file, manifest.secret_runtime_env_file):
        if filename:
            path = Path(filename).expanduser()
            paths.append(path if path.is_absolute() else Path(workdir) / path)
    return paths


def load_secret_vars(manifest: Manifest, workdir: Path) -> dict[str, dict[str, str]]:
    """`{"build_env": {...}, "runtime_env": {...}}` read from the manifest's secret env files."""
    result: dict[str, dict[str, str]] = {"build_env": {}, "runtime_env": {}}
    for key, filename in (
        ("build_env", manifest.secret_build_env_file),
        ("runtime_env", manifest.secret_runtime_env_file),
    ):
        if filename:
            path = Path(filename).expanduser()
            if not path.is_absolute():
                path = Path(workdir) / path
            if not path.is_file() and not path.exists():
                field = f"secret_{key}_file"
                raise InvalidInput(f"field '{field}': secret env file '{filename}' not found ({path})")
            result[key] = parse_env_file(path)
    return result
