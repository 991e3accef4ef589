"""A stand-in for a remote Docker host's TLS listener, for tests only.

A real remote daemon listens with `dockerd --tlsverify -H tcp://0.0.0.0:2376`; one machine can't run a
second daemon here, so this proxy terminates TLS on a loopback port (requiring a client certificate
signed by its CA, as `--tlsverify` does) and forwards the plain bytes to the local daemon's unix
socket. Everything the Docker client does over it (hijacked `attach`/BuildKit sessions included) is
opaque bytes to the proxy, so the client's TCP+TLS code path is what gets exercised.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import ssl
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DOCKER_SOCKET = "/var/run/docker.sock"


@dataclass
class Pem:
    cert: bytes
    key: bytes


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def make_ca(common_name: str) -> tuple[Pem, x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = _key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return Pem(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)), cert, key


def make_leaf(ca_cert: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey, common_name: str, server: bool) -> Pem:
    """A server certificate for 127.0.0.1/localhost, or a client certificate (as Docker's TLS guide makes)."""
    key = _key()
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
        )
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
    cert = builder.sign(ca_key, hashes.SHA256())
    return Pem(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


@dataclass
class TlsMaterial:
    """Docker's convention: the client's `cert_path` holds ca.pem, cert.pem and key.pem."""

    client_dir: Path
    server_dir: Path


def write_tls_material(root: Path) -> TlsMaterial:
    ca, ca_cert, ca_key = make_ca(f"trackside test CA {uuid.uuid4().hex[:8]}")
    server = make_leaf(ca_cert, ca_key, "docker-host", server=True)
    client = make_leaf(ca_cert, ca_key, "trackside", server=False)
    client_dir, server_dir = root / "client", root / "server"
    for directory, leaf in ((client_dir, client), (server_dir, server)):
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "ca.pem").write_bytes(ca.cert)
        (directory / "cert.pem").write_bytes(leaf.cert)
        (directory / "key.pem").write_bytes(leaf.key)
        (directory / "key.pem").chmod(0o600)
    return TlsMaterial(client_dir, server_dir)


class TlsDockerProxy:
    """TLS on 127.0.0.1:<port> (client certificates required) in front of the local daemon's socket.

    asyncio on a thread of its own: its TLS runs on memory buffers in one thread, so reading and
    writing one connection at once is safe (an `ssl.SSLSocket` shared by two threads is not).
    """

    def __init__(self, server_dir: Path, upstream: str = DOCKER_SOCKET) -> None:
        self.upstream = upstream
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.minimum_version = ssl.TLSVersion.TLSv1_2
        self.context.verify_mode = ssl.CERT_REQUIRED
        self.context.load_cert_chain(server_dir / "cert.pem", server_dir / "key.pem")
        self.context.load_verify_locations(server_dir / "ca.pem")
        self.port = 0
        self.connections = 0
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, name="tls-docker-proxy", daemon=True)

    @property
    def url(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"

    def __enter__(self) -> TlsDockerProxy:
        self._thread.start()
        started = asyncio.run_coroutine_threadsafe(self._start(), self._loop)
        started.result(timeout=10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()

    async def _start(self) -> None:
        self._server = await asyncio.start_server(
            self._serve, "127.0.0.1", 0, ssl=self.context, ssl_handshake_timeout=10
        )
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def _stop(self) -> None:
        if self._server is not None:
            self._server.close()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            upstream_reader, upstream_writer = await asyncio.open_unix_connection(self.upstream)
        except OSError:
            client_writer.close()
            return
        try:
            await asyncio.gather(
                self._pump(client_reader, upstream_writer, half_close=True),
                self._pump(upstream_reader, client_writer, half_close=False),
            )
        finally:
            for writer in (client_writer, upstream_writer):
                writer.close()

    @staticmethod
    async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, half_close: bool) -> None:
        """Copy one direction. The client's end of input half-closes the daemon's socket (hijacked
        streams rely on it); the daemon's end of output ends the connection (TLS has no half-close)."""
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
            if half_close and writer.can_write_eof():
                writer.write_eof()
            else:
                writer.close()
        except (OSError, ssl.SSLError):
            writer.close()
