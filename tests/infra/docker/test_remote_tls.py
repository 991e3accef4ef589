"""A Docker target on a remote daemon over TLS (`tcp://` + `tls_verify` + `cert_path`), for real.

The "remote host" is `TlsDockerProxy` (tests/infra/docker/tls_proxy.py): a TLS listener on loopback,
demanding client certificates from a CA generated here, in front of the local daemon's socket. It
stands in for `dockerd --tlsverify -H tcp://...` on another machine; the Docker client and Trackside
take their remote code path all the same (TCP, TLS, certificate checks both ways).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.infra.docker.support import ADDER, build, call, docker_settings, python_manifest, remove_images, unique
from tests.infra.docker.test_docker_target import deploy
from tests.infra.docker.tls_proxy import TlsDockerProxy, TlsMaterial, write_tls_material

from trackside.domain import JobStatus
from trackside.errors import Unavailable
from trackside.infra.docker import DockerTarget, Plugin
from trackside.infra.docker.engine import DockerEngine, EngineConfig

pytestmark = [pytest.mark.docker, pytest.mark.slow]


@pytest.fixture
def tls(tmp_path: Path, engine: DockerEngine) -> TlsMaterial:
    return write_tls_material(tmp_path / "tls")


@pytest.fixture
def remote(tls: TlsMaterial) -> Iterator[TlsDockerProxy]:
    with TlsDockerProxy(tls.server_dir) as proxy:
        yield proxy


def tls_target(tmp_path: Path, name: str, url: str, cert_path: Path) -> DockerTarget:
    settings = docker_settings(
        tmp_path, docker_targets={name: {"url": url, "tls_verify": True, "cert_path": str(cert_path)}}
    )
    plugin = Plugin()
    plugin.settings = settings
    target = plugin.infrastructure_targets()[name]
    assert isinstance(target, DockerTarget)
    return target


def test_a_job_is_built_deployed_listed_and_deleted_through_a_tls_remote_engine(
    engine: DockerEngine, remote: TlsDockerProxy, tls: TlsMaterial, target_name: str, tmp_path: Path
) -> None:
    target = tls_target(tmp_path, target_name, remote.url, tls.client_dir)
    settings = docker_settings(tmp_path)
    tls_engine = target.docker_engine
    assert tls_engine is not None and tls_engine.url == remote.url
    tls_engine.ping()
    name = unique("tlsjob")
    manifest = python_manifest(name)
    tag = unique("t")
    # The image is built on the remote engine too (BuildKit's session runs over the TLS connection).
    image = build(tls_engine, settings, tmp_path / "ws", manifest, {"job.py": ADDER}, tag=tag)
    try:
        assert target.job_deployer is not None and target.job_monitor is not None
        job, timestamp = deploy(target, settings, manifest, tag)
        target.job_monitor.check_job_condition(job, deployment_timestamp=timestamp)
        assert job.internal_name is not None and job.internal_name.startswith("127.0.0.1:")
        assert call(job.internal_name, {"a": 40, "b": 2}).json() == 42

        listed = [j for j in target.job_monitor.list_jobs(settings) if j.name == name]
        assert [(j.version, j.status, j.image_tag) for j in listed] == [("0.0.1", JobStatus.RUNNING.value, tag)]
        assert "trackside job runtime listening" in target.job_monitor.read_recent_logs(job, tail=50)

        target.job_deployer.delete_job(name, "0.0.1")
        assert not target.job_deployer.job_exists(name, "0.0.1")
        assert engine.run(["ps", "-aq", "--filter", f"label=trackside.job-name={name}"]).stdout.split() == []
        assert remote.connections > 0  # it all went through the TLS listener
    finally:
        remove_images(engine, image)


def test_a_server_certificate_from_another_ca_is_refused_naming_the_url_and_the_tls_failure(
    remote: TlsDockerProxy, tmp_path: Path
) -> None:
    other = write_tls_material(tmp_path / "other-ca")  # a CA and client certificate the server never trusted
    engine = DockerEngine(EngineConfig(url=remote.url, tls_verify=True, cert_path=str(other.client_dir)))
    with pytest.raises(Unavailable) as failure:
        engine.ping()
    message = failure.value.message
    assert remote.url in message
    assert "TLS connection" in message and "x509: certificate signed by unknown authority" in message
    assert str(other.client_dir) in message


def test_a_client_certificate_the_server_does_not_trust_is_refused_as_a_tls_failure(
    remote: TlsDockerProxy, tls: TlsMaterial, tmp_path: Path
) -> None:
    # Trusts the server (right ca.pem) but presents a client certificate from a foreign CA. The
    # listener drops the connection during the handshake (a Go dockerd would send an alert first; the
    # client then sees EOF, or `remote error: tls: bad certificate`): both must read as a TLS failure.
    other = write_tls_material(tmp_path / "other-ca")
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    (mixed / "ca.pem").write_bytes((tls.client_dir / "ca.pem").read_bytes())
    for name in ("cert.pem", "key.pem"):
        (mixed / name).write_bytes((other.client_dir / name).read_bytes())
    engine = DockerEngine(EngineConfig(url=remote.url, tls_verify=True, cert_path=str(mixed)))
    with pytest.raises(Unavailable) as failure:
        engine.ping()
    message = failure.value.message
    assert remote.url in message and "TLS connection" in message and "does it trust cert.pem" in message


def test_missing_certificate_files_are_an_error_naming_the_path(tls: TlsMaterial, tmp_path: Path) -> None:
    (tls.client_dir / "key.pem").unlink()
    engine = DockerEngine(EngineConfig(url="tcp://127.0.0.1:2376", tls_verify=True, cert_path=str(tls.client_dir)))
    with pytest.raises(Unavailable) as failure:
        engine.ping()
    message = failure.value.message
    assert str(tls.client_dir / "key.pem") in message and "tcp://127.0.0.1:2376" in message
    assert "ca.pem" not in message.partition("missing:")[2].partition("(")[0]  # only what is missing is named

    nowhere = tmp_path / "no-such-dir"
    target = tls_target(tmp_path, unique("t"), "tcp://127.0.0.1:2376", nowhere)
    assert target.job_monitor is not None
    with pytest.raises(Unavailable, match=str(nowhere / "ca.pem")):
        target.job_monitor.list_jobs(docker_settings(tmp_path))
