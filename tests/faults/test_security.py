"""Secure connections. The embedded broker (Tansu) supports neither SASL nor TLS, so what is
tested is what the services would hand a real cluster: the FastStream security object and the
aiokafka connection arguments the settings produce, a real TLS handshake (CA, client
certificate) against a local TLS server with throwaway certificates, settings that stop the
service at start, and that the SASL password never reaches logs, /metrics or repr()."""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from faststream.kafka.security import parse_security
from faststream.security import SASLPlaintext, SASLScram256, SASLScram512

from services.runtime.embedded import EmbeddedBroker, free_port
from services.runtime.kafka import build_broker, kafka_security
from services.runtime.settings import RouterSettings, ServiceSettings, load_settings
from tests.support.processes import ServiceProcess, http_get, service_env

PASSWORD = f"pw-{uuid.uuid4().hex}-Sécret!"
MECHANISMS = {"PLAIN": SASLPlaintext, "SCRAM-SHA-256": SASLScram256, "SCRAM-SHA-512": SASLScram512}


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings read the environment: none of the caller's Kafka settings leak in."""
    for name in list(ServiceSettings.model_fields):
        monkeypatch.delenv(name.upper(), raising=False)


# --- throwaway PKI ---------------------------------------------------------------------------


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _issue(d: Path, name: str, cn: str, usage: str, ca: str = "ca") -> None:
    ext = d / f"{name}.ext"
    ext.write_text(
        f"subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage={usage}\n"
        "basicConstraints=CA:FALSE\n"
    )
    _openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", f"{name}.key", cwd=d)
    _openssl(
        "req", "-new", "-key", f"{name}.key", "-subj", f"/CN={cn}", "-out", f"{name}.csr", cwd=d
    )
    _openssl(
        "x509",
        "-req",
        "-in",
        f"{name}.csr",
        "-CA",
        f"{ca}.pem",
        "-CAkey",
        f"{ca}.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        ext.name,
        "-out",
        f"{name}.pem",
        cwd=d,
    )


def _ca(d: Path, name: str, cn: str) -> None:
    _openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", f"{name}.key", cwd=d)
    _openssl(
        "req",
        "-x509",
        "-new",
        "-key",
        f"{name}.key",
        "-subj",
        f"/CN={cn}",
        "-days",
        "2",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
        "-out",
        f"{name}.pem",
        cwd=d,
    )


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make throwaway certificates")
    d = tmp_path_factory.mktemp("pki")
    _ca(d, "ca", "ticketroute test CA")
    _ca(d, "other-ca", "somebody else's CA")
    _issue(d, "server", "localhost", "serverAuth")
    _issue(d, "client", "ticketroute-router", "clientAuth")
    _issue(d, "stranger", "ticketroute-router", "clientAuth", ca="other-ca")
    (d / "garbage.pem").write_text("-----BEGIN CERTIFICATE-----\nnot a certificate\n")
    return d


async def _tls_server(pki: Path) -> tuple[asyncio.Server, int, list[Any]]:
    """A TLS server that requires a client certificate signed by the test CA."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(pki / "ca.pem"))
    context.load_cert_chain(str(pki / "server.pem"), str(pki / "server.key"))
    context.verify_mode = ssl.CERT_REQUIRED
    peers: list[Any] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peers.append(writer.get_extra_info("peercert"))
        writer.write(b"hello\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context)
    return server, server.sockets[0].getsockname()[1], peers


async def _handshake(context: ssl.SSLContext | None, port: int) -> bytes:
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=context, server_hostname="localhost"
    )
    try:
        return await asyncio.wait_for(reader.readline(), 5)
    finally:
        writer.close()


async def _refused(context: ssl.SSLContext, port: int) -> None:
    """Under TLS 1.3 a refused client certificate shows after the handshake: as an alert on
    the first read, or as the server closing without a word."""
    if not await _handshake(context, port):
        raise ConnectionError("closed by the server")


# --- what the settings produce ---------------------------------------------------------------


def test_plaintext_is_the_default_and_has_no_security() -> None:
    settings = RouterSettings()
    assert settings.kafka_security_protocol == "PLAINTEXT"
    assert kafka_security(settings) is None
    assert parse_security(kafka_security(settings)) == {}


@pytest.mark.parametrize("mechanism", list(MECHANISMS))
@pytest.mark.parametrize("protocol", ["SASL_PLAINTEXT", "SASL_SSL"])
async def test_sasl_settings_give_the_client_arguments(
    protocol: str, mechanism: str, pki: Path
) -> None:
    settings = RouterSettings(
        kafka_bootstrap_servers="kafka-0.example:9093,kafka-1.example:9093",
        kafka_security_protocol=protocol,
        kafka_sasl_mechanism=mechanism,
        kafka_sasl_username="ticketroute-router",
        kafka_sasl_password=PASSWORD,
        kafka_ssl_cafile=pki / "ca.pem" if protocol == "SASL_SSL" else None,
    )
    security = kafka_security(settings)
    assert type(security) is MECHANISMS[mechanism]
    kwargs = parse_security(security)
    assert kwargs["security_protocol"] == protocol
    assert kwargs["sasl_mechanism"] == mechanism
    assert kwargs["sasl_plain_username"] == "ticketroute-router"
    assert kwargs["sasl_plain_password"] == PASSWORD
    context = kwargs["ssl_context"]
    if protocol == "SASL_SSL":
        assert isinstance(context, ssl.SSLContext)
        assert context.verify_mode == ssl.CERT_REQUIRED
        assert context.check_hostname
        assert any(
            ("commonName", "ticketroute test CA") in rdn
            for cert in context.get_ca_certs()
            for rdn in cert["subject"]
        )
    else:
        assert context is None
    # The broker the services build carries exactly these, and aiokafka accepts them.
    broker = build_broker(settings)
    connection = broker._connection_kwargs
    for key in ("security_protocol", "sasl_mechanism", "sasl_plain_username"):
        assert connection[key] == kwargs[key]
    assert connection["bootstrap_servers"] == [settings.kafka_bootstrap_servers]
    AIOKafkaProducer(**connection)
    AIOKafkaConsumer(**kwargs, bootstrap_servers="x:1")


async def test_tls_with_ca_and_client_certificate_handshakes(pki: Path) -> None:
    settings = RouterSettings(
        kafka_security_protocol="SSL",
        kafka_ssl_cafile=pki / "ca.pem",
        kafka_ssl_certfile=pki / "client.pem",
        kafka_ssl_keyfile=pki / "client.key",
    )
    kwargs = parse_security(kafka_security(settings))
    assert kwargs["security_protocol"] == "SSL"
    context: ssl.SSLContext = kwargs["ssl_context"]
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2
    server, port, peers = await _tls_server(pki)
    try:
        # Mutual TLS: the client trusts the server through the CA, the server sees the
        # client's certificate.
        assert await _handshake(context, port) == b"hello\n"
        subject = dict(rdn[0] for rdn in peers[-1]["subject"])
        assert subject["commonName"] == "ticketroute-router"

        # Without the CA setting (system CAs only) the broker's certificate is not trusted.
        system_only = RouterSettings(kafka_security_protocol="SSL")
        with pytest.raises(ssl.SSLCertVerificationError):
            await _handshake(parse_security(kafka_security(system_only))["ssl_context"], port)

        # CA only, no client certificate: the server refuses the connection.
        no_cert = RouterSettings(kafka_security_protocol="SSL", kafka_ssl_cafile=pki / "ca.pem")
        with pytest.raises((ssl.SSLError, ConnectionError, asyncio.IncompleteReadError)):
            await _refused(parse_security(kafka_security(no_cert))["ssl_context"], port)

        # A client certificate from another CA: refused too.
        stranger = RouterSettings(
            kafka_security_protocol="SASL_SSL",
            kafka_sasl_mechanism="SCRAM-SHA-512",
            kafka_sasl_username="u",
            kafka_sasl_password=PASSWORD,
            kafka_ssl_cafile=pki / "ca.pem",
            kafka_ssl_certfile=pki / "stranger.pem",
            kafka_ssl_keyfile=pki / "stranger.key",
        )
        with pytest.raises((ssl.SSLError, ConnectionError, asyncio.IncompleteReadError)):
            await _refused(parse_security(kafka_security(stranger))["ssl_context"], port)
    finally:
        server.close()
        await server.wait_closed()


# --- settings that must stop the service at start ---------------------------------------------


def _load_fails(monkeypatch: pytest.MonkeyPatch, capsys: Any, env: dict[str, str]) -> str:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(SystemExit) as stopped:
        load_settings(RouterSettings)
    assert stopped.value.code == 2
    return str(capsys.readouterr().err)


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"KAFKA_SECURITY_PROTOCOL": "SASL_SSL"}, "KAFKA_SASL_MECHANISM"),
        (
            {
                "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
                "KAFKA_SASL_MECHANISM": "PLAIN",
                "KAFKA_SASL_USERNAME": "u",
            },
            "KAFKA_SASL_PASSWORD",
        ),
        ({"KAFKA_SASL_MECHANISM": "GSSAPI"}, "KAFKA_SASL_MECHANISM"),
        ({"KAFKA_SECURITY_PROTOCOL": "TLS"}, "KAFKA_SECURITY_PROTOCOL"),
        ({"KAFKA_SECURITY_PROTOCOL": "sasl_ssl"}, "KAFKA_SECURITY_PROTOCOL"),
        # An existing file, so the missing key is what is wrong.
        ({"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CERTFILE": __file__}, "KAFKA_SSL_KEYFILE"),
        ({"SESSION_TIMEOUT_MS": "6000", "HEARTBEAT_INTERVAL_MS": "3000"}, "HEARTBEAT_INTERVAL_MS"),
    ],
    ids=[
        "sasl-no-mechanism",
        "sasl-no-password",
        "gssapi",
        "tls",
        "lower-case",
        "cert-no-key",
        "heartbeat",
    ],
)
def test_invalid_security_settings_stop_at_start(
    env: dict[str, str], named: str, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    message = _load_fails(monkeypatch, capsys, env)
    assert named in message, message
    assert "Traceback" not in message


@pytest.mark.parametrize("file", ["missing.pem", "garbage.pem"])
def test_unusable_tls_files_stop_at_start_naming_the_variable(
    file: str, pki: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    """A TLS file that is missing or not PEM stops the service at start, like any invalid
    setting: exit code 2 and a message naming the variable, not a traceback later at the
    first connection (README "Settings")."""
    message = _load_fails(
        monkeypatch,
        capsys,
        {"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CAFILE": str(pki / file)},
    )
    assert "KAFKA_SSL_CAFILE" in message, message


def test_password_is_secret_in_settings() -> None:
    settings = RouterSettings(
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="ticketroute-router",
        kafka_sasl_password=PASSWORD,
    )
    for text in (
        repr(settings),
        str(settings),
        settings.model_dump_json(),
        str(settings.model_dump()),
    ):
        assert PASSWORD not in text
    assert repr(kafka_security(settings)).count(PASSWORD) == 0


# --- the password never reaches the logs or /metrics ---------------------------------------


async def _retrying(service: ServiceProcess, times: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while len(service.events("kafka_unreachable_retrying")) < times:
        assert service.alive, service.logs()
        assert time.monotonic() < deadline, service.logs()
        await asyncio.sleep(0.2)


@pytest.mark.parametrize(
    "target", ["dead-port", pytest.param("tansu-without-sasl", marks=pytest.mark.integration)]
)
async def test_password_never_logged_nor_on_metrics(target: str, tmp_path: Path) -> None:
    broker = EmbeddedBroker(log_path=tmp_path / "tansu.log") if target != "dead-port" else None
    bootstrap = broker.start().bootstrap_servers if broker else f"127.0.0.1:{free_port()}"
    env = service_env(bootstrap, uuid.uuid4().hex[:8])
    env.update(
        {
            "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
            "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
            "KAFKA_SASL_USERNAME": "ticketroute-router",
            "KAFKA_SASL_PASSWORD": PASSWORD,
            "LOG_LEVEL": "DEBUG",
        }
    )
    service = ServiceProcess("services.router", env, tmp_path / "router.log").start()
    try:
        await _retrying(service, 2)
        bodies = [http_get(service.port, path)[1] for path in ("/metrics", "/readyz", "/healthz")]
        assert http_get(service.port, "/readyz")[0] == 503
    finally:
        service.stop()
        if broker:
            broker.stop()
    out, err = service.log.read_text(errors="replace"), service.err.read_text(errors="replace")
    assert "kafka_unreachable_retrying" in out
    for text in (out, err, *bodies):
        assert PASSWORD not in text
        assert PASSWORD.encode().hex() not in text
    assert "ticketroute_ready 0.0" in bodies[0]
