"""The kubernetes target finds its cluster as kubectl does, and is present exactly when it finds one."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

from trackside.config import Settings
from trackside.errors import InvalidInput
from trackside.infra.kubernetes import Plugin, configured_targets
from trackside.infra.kubernetes.cluster import discover, from_service_account

KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters:
- name: one
  cluster: {server: "https://10.0.0.1:6443", insecure-skip-tls-verify: true}
- name: two
  cluster: {server: "https://10.0.0.2:6443", certificate-authority-data: "%s"}
users:
- name: token-user
  user: {token: "t0ken"}
- name: cert-user
  user: {client-certificate-data: "%s", client-key-data: "%s"}
contexts:
- name: first
  context: {cluster: one, user: token-user}
- name: second
  context: {cluster: two, user: cert-user, namespace: jobs}
current-context: first
"""


def write_kubeconfig(path: Path) -> Path:
    data = [base64.b64encode(text.encode()).decode() for text in ("CA PEM", "CERT PEM", "KEY PEM")]
    path.write_text(KUBECONFIG % tuple(data))
    return path


@pytest.fixture
def no_ambient_cluster(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


def test_kubeconfig_env_names_the_current_context(
    no_ambient_cluster: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_kubeconfig(tmp_path / "kc")
    monkeypatch.setenv("KUBECONFIG", os.pathsep.join([str(tmp_path / "missing"), str(path)]))
    config = discover()
    assert config is not None
    assert config.server == "https://10.0.0.1:6443"
    assert config.bearer_token() == "t0ken" and config.insecure_skip_tls_verify
    assert config.namespace == "default"


def test_home_kube_config_is_used_and_a_context_picks_namespace_and_client_certificate(
    no_ambient_cluster: None, tmp_path: Path
) -> None:
    home = tmp_path / "home" / ".kube"
    home.mkdir(parents=True)
    write_kubeconfig(home / "config")
    config = discover(context="second", secrets_dir=tmp_path / "secrets")
    assert config is not None
    assert config.server == "https://10.0.0.2:6443" and config.namespace == "jobs"
    assert config.client_cert_file is not None and config.client_cert_file.read_text() == "CERT PEM"
    assert config.client_key_file is not None and config.client_key_file.stat().st_mode & 0o777 == 0o600
    assert config.ca_file is not None and config.ca_file.read_text() == "CA PEM"
    assert discover(context="second", namespace="other", secrets_dir=tmp_path / "s").namespace == "other"  # type: ignore[union-attr]


def test_unknown_context_is_refused_naming_it(no_ambient_cluster: None, tmp_path: Path) -> None:
    path = write_kubeconfig(tmp_path / "kc")
    with pytest.raises(InvalidInput, match="no context named 'third'"):
        discover(path, context="third")


def test_in_cluster_service_account(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "token").write_text("sa-token\n")
    (tmp_path / "namespace").write_text("trackside")
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    config = from_service_account(tmp_path)
    assert config.server == "https://10.96.0.1:443"
    assert config.namespace == "trackside" and config.bearer_token() == "sa-token"


def test_target_present_only_when_a_cluster_is_found(no_ambient_cluster: None, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    assert configured_targets(settings) == {}
    path = write_kubeconfig(tmp_path / "kc")
    plugin = Plugin()
    plugin.settings = Settings(
        data_dir=tmp_path / "data",
        kubernetes_config=str(path),
        kubernetes_targets={"east": {"kubeconfig": str(path), "context": "second", "namespace": "east-jobs"}},
    )
    targets = plugin.infrastructure_targets()
    assert set(targets) == {"kubernetes", "east"}
    assert targets["east"].cluster.namespace == "east-jobs"  # type: ignore[attr-defined]
    off = Settings(data_dir=tmp_path / "data", kubernetes_config="off")
    assert configured_targets(off) == {}


def test_unknown_target_setting_is_refused(no_ambient_cluster: None, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, kubernetes_config="off", kubernetes_targets={"x": {"kubconfig": "typo"}})
    with pytest.raises(InvalidInput, match="unknown keys kubconfig"):
        configured_targets(settings)
