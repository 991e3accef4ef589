"""Which cluster a `kubernetes` target talks to: a kubeconfig found as kubectl finds it, or the pod's own.

Discovery order, as kubectl's: an explicit kubeconfig path (settings), `KUBECONFIG` (the first file of
the list that exists), `~/.kube/config`; then the in-cluster service account (the token, CA and
namespace mounted in every pod, with `KUBERNETES_SERVICE_HOST`/`_PORT`). A kubeconfig's context names
the cluster (server, CA or `insecure-skip-tls-verify`), the user (bearer token, token file, or client
certificate and key, as files or inline base64 data) and the namespace.

Inline certificates are written to private files (mode 0600) under the target's own directory, since
the TLS library loads client keys from files.
"""

from __future__ import annotations

import base64
import os
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from trackside.errors import InvalidInput
from trackside.files import write_atomic

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
DEFAULT_NAMESPACE = "default"


@dataclass
class ClusterConfig:
    """Everything needed to call one cluster's API server as one user, in one namespace."""

    server: str  # https://host:port
    namespace: str = DEFAULT_NAMESPACE
    token: str | None = None
    token_file: Path | None = None  # re-read on each client made (service account tokens rotate)
    ca_file: Path | None = None
    client_cert_file: Path | None = None
    client_key_file: Path | None = None
    insecure_skip_tls_verify: bool = False
    source: str = ""  # where it was found, for messages: a kubeconfig path and context, or "in-cluster"

    def bearer_token(self) -> str | None:
        if self.token_file is not None:
            try:
                return self.token_file.read_text().strip() or None
            except OSError:
                return self.token
        return self.token

    def ssl_context(self) -> ssl.SSLContext | bool:
        if not self.server.startswith("https://"):
            return False
        if self.insecure_skip_tls_verify:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        else:
            context = ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)
        if self.client_cert_file is not None:
            context.load_cert_chain(str(self.client_cert_file), str(self.client_key_file or self.client_cert_file))
        return context


def kubeconfig_path(explicit: str | Path | None = None) -> Path | None:
    """The kubeconfig kubectl would use: `explicit`, the first existing file of KUBECONFIG, ~/.kube/config."""
    if explicit:
        return Path(explicit).expanduser()
    env = os.environ.get("KUBECONFIG", "")
    for entry in env.split(os.pathsep):
        if entry and Path(entry).expanduser().is_file():
            return Path(entry).expanduser()
    home = Path.home() / ".kube" / "config"
    return home if home.is_file() else None


def in_cluster_available() -> bool:
    return bool(os.environ.get("KUBERNETES_SERVICE_HOST")) and (SERVICE_ACCOUNT_DIR / "token").is_file()


def discover(
    kubeconfig: str | Path | None = None,
    context: str | None = None,
    namespace: str | None = None,
    secrets_dir: Path | None = None,
) -> ClusterConfig | None:
    """The cluster a target should use, or None when there is none (no kubeconfig, not in a pod)."""
    path = kubeconfig_path(kubeconfig)
    if path is not None:
        if not path.is_file():
            raise InvalidInput(f"kubeconfig {path} does not exist")
        config = from_kubeconfig(path, context, secrets_dir)
    elif in_cluster_available():
        config = from_service_account()
    else:
        return None
    if namespace:
        config.namespace = namespace
    return config


def from_service_account(directory: Path = SERVICE_ACCOUNT_DIR) -> ClusterConfig:
    host = os.environ["KUBERNETES_SERVICE_HOST"]
    port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
    host = f"[{host}]" if ":" in host else host
    namespace_file = directory / "namespace"
    namespace = namespace_file.read_text().strip() if namespace_file.is_file() else DEFAULT_NAMESPACE
    ca = directory / "ca.crt"
    return ClusterConfig(
        server=f"https://{host}:{port}",
        namespace=namespace or DEFAULT_NAMESPACE,
        token_file=directory / "token",
        ca_file=ca if ca.is_file() else None,
        source="in-cluster service account",
    )


def from_kubeconfig(path: Path, context: str | None = None, secrets_dir: Path | None = None) -> ClusterConfig:
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise InvalidInput(f"kubeconfig {path} can't be read: {exc}") from None
    if not isinstance(raw, dict):
        raise InvalidInput(f"kubeconfig {path} is not a mapping")
    context_name = context or raw.get("current-context") or ""
    if not context_name:
        raise InvalidInput(f"kubeconfig {path} has no current-context; name one with the target's `context`")
    ctx = _named(raw, "contexts", "context", context_name, path)
    cluster = _named(raw, "clusters", "cluster", str(ctx.get("cluster", "")), path)
    user = _named(raw, "users", "user", str(ctx.get("user", "")), path) if ctx.get("user") else {}
    server = str(cluster.get("server") or "").rstrip("/")
    if not server:
        raise InvalidInput(f"kubeconfig {path}: cluster {ctx.get('cluster')!r} has no server")
    base = path.parent
    private = (secrets_dir or base) / _safe(context_name)

    def file_or_data(file_key: str, data_key: str, section: dict[str, Any], out_name: str) -> Path | None:
        if section.get(file_key):
            file = Path(str(section[file_key])).expanduser()
            return file if file.is_absolute() else base / file
        if section.get(data_key):
            data = base64.b64decode(str(section[data_key]))
            target = private / out_name
            target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            write_atomic(target, data.decode(), mode=0o600)
            return target
        return None

    token_file = user.get("tokenFile")
    return ClusterConfig(
        server=server,
        namespace=str(ctx.get("namespace") or DEFAULT_NAMESPACE),
        token=str(user["token"]) if user.get("token") else None,
        token_file=Path(str(token_file)).expanduser() if token_file else None,
        ca_file=file_or_data("certificate-authority", "certificate-authority-data", cluster, "ca.crt"),
        client_cert_file=file_or_data("client-certificate", "client-certificate-data", user, "client.crt"),
        client_key_file=file_or_data("client-key", "client-key-data", user, "client.key"),
        insecure_skip_tls_verify=bool(cluster.get("insecure-skip-tls-verify")),
        source=f"kubeconfig {path} context {context_name}",
    )


def _named(raw: dict[str, Any], section: str, key: str, name: str, path: Path) -> dict[str, Any]:
    for entry in raw.get(section) or []:
        if isinstance(entry, dict) and entry.get("name") == name:
            value = entry.get(key) or {}
            return value if isinstance(value, dict) else {}
    raise InvalidInput(f"kubeconfig {path} has no {key} named {name!r}")


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "context"
