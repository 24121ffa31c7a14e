"""Settings of both services, read once from the environment at start.

Every field is one environment variable: the field name in upper case (`kafka_bootstrap_servers`
is `KAFKA_BOOTSTRAP_SERVERS`). A value that does not validate stops the service at start with a
message naming the variable.
"""

from __future__ import annotations

import ssl
import sys
from pathlib import Path
from typing import Annotated, Literal, TypeVar

from pydantic import Field, FilePath, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SAMPLE_CATALOG = Path(__file__).resolve().parent.parent / "samples" / "catalog.yaml"

Port = Annotated[int, Field(ge=1, le=65535)]


class ServiceSettings(BaseSettings):
    """What both services read: Kafka connection, topic names, batching, metrics, logging."""

    model_config = SettingsConfigDict(
        extra="ignore",
        use_attribute_docstrings=True,
        frozen=True,
        case_sensitive=False,
        # KAFKA_SSL_CAFILE="" means unset (as a chart renders an empty value), not the cwd.
        env_ignore_empty=True,
    )

    # --- Kafka connection ---------------------------------------------------------------------
    kafka_bootstrap_servers: Annotated[str, Field(min_length=1)] = "localhost:9092"
    """Comma-separated host:port list of the Kafka cluster."""
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    """How to talk to the brokers; SASL_SSL for a production cluster."""
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    """SASL mechanism, required with SASL_PLAINTEXT and SASL_SSL."""
    kafka_sasl_username: str | None = None
    """SASL user name (the service's principal)."""
    kafka_sasl_password: SecretStr | None = None
    """SASL password; never logged nor exported."""
    kafka_ssl_cafile: FilePath | None = None
    """PEM file of the CA that signed the brokers' certificates (default: the system CAs)."""
    kafka_ssl_certfile: FilePath | None = None
    """PEM client certificate, for mutual TLS."""
    kafka_ssl_keyfile: FilePath | None = None
    """PEM private key of the client certificate."""
    kafka_max_request_size: Annotated[int, Field(ge=65_536, le=100 * 1024 * 1024)] = 1_048_576
    """Largest message the services publish, in bytes; match the cluster's message.max.bytes.
    A dead letter that would not fit is truncated (and says so in its headers)."""
    kafka_client_id: str = "ticketroute"
    """Client id the brokers see in their logs and quotas."""

    # --- topics --------------------------------------------------------------------------------
    topic_incoming: str = "tickets.incoming"
    """Input: ticket events from the ticketing system."""
    topic_enriched: str = "tickets.enriched"
    """Between the services: tickets with their catalog facts."""
    topic_redhat: str = "queue.redhat"
    """Red Hat's own support queue."""
    topic_partner_prefix: str = "queue.partner."
    """Partner topics are this prefix plus the vendor id."""
    topic_responses_partner_prefix: str = "responses.partner."
    """Partners' response topics are this prefix plus the vendor id."""
    topic_tsanet: str = "collab.tsanet"
    """TSANet collaboration requests."""
    topic_sla: str = "sla.ownership"
    """Who owns each ticket's first response, and by when."""
    topic_deadletter: str = "tickets.deadletter"
    """Messages that could not be parsed or validated, with the reason in headers."""
    topic_partitions: Annotated[int, Field(ge=1, le=10_000)] = 6
    """Partitions of topics the services create; the ceiling of consumer parallelism."""
    topic_replication_factor: Annotated[int, Field(ge=1, le=10)] = 1
    """Replication factor of topics the services create (3 on a production cluster)."""
    topic_create: bool = True
    """Create missing topics at start; off where an operator manages topics."""

    # --- consuming -----------------------------------------------------------------------------
    batch_max_records: Annotated[int, Field(ge=1, le=100_000)] = 1000
    """Most records handled, published and committed as one batch."""
    batch_timeout_ms: Annotated[int, Field(ge=1, le=60_000)] = 10
    """Longest wait for a batch when no records are buffered; FastStream also pauses this long
    after an empty poll, so it adds to the latency of every hop."""
    fetch_max_wait_ms: Annotated[int, Field(ge=1, le=60_000)] = 50
    """Longest the broker holds a fetch open waiting for data: bounds the idle latency."""
    fetch_max_bytes: Annotated[int, Field(ge=65_536, le=100 * 1024 * 1024)] = 1_572_864
    """Most bytes one fetch asks the brokers for, all partitions together (a record batch
    larger than this still comes, alone). Fetched records wait in memory until handled, so
    this bounds the consumer's buffers: at 50 MiB (the client's default) a broker may answer
    with megabytes per partition."""
    session_timeout_ms: Annotated[int, Field(ge=1000, le=300_000)] = 10_000
    """Consumer group session timeout: how soon a dead instance's partitions move."""
    heartbeat_interval_ms: Annotated[int, Field(ge=100, le=100_000)] = 3_000
    """Consumer heartbeat interval, at most a third of the session timeout."""
    retry_backoff_max_seconds: Annotated[float, Field(gt=0, le=300)] = 30.0
    """Longest wait between retries while the brokers cannot be reached."""
    shutdown_grace_seconds: Annotated[float, Field(gt=0, le=600)] = 20.0
    """On SIGTERM, how long the batch in hand may take to finish and commit."""
    stall_timeout_seconds: Annotated[float, Field(ge=1, le=3600)] = 10.0
    """How long an input partition may have records to read without its position moving
    before the service logs it as stalled, counts it and reports not ready on /readyz."""

    # --- operations ----------------------------------------------------------------------------
    metrics_host: str = "0.0.0.0"  # noqa: S104 - a pod serves probes on all interfaces
    """Address of the /metrics, /healthz and /readyz server."""
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    """Level of the logs on standard output, in any case (`info` is `INFO`)."""
    log_format: Literal["json", "console"] = "json"
    """json for log collectors, console for people."""

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _security_complete(self) -> ServiceSettings:
        sasl = self.kafka_security_protocol.startswith("SASL")
        if sasl and not (
            self.kafka_sasl_mechanism and self.kafka_sasl_username and self.kafka_sasl_password
        ):
            raise ValueError(
                "KAFKA_SECURITY_PROTOCOL=SASL_* needs KAFKA_SASL_MECHANISM, "
                "KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD"
            )
        if not sasl and (self.kafka_sasl_mechanism or self.kafka_sasl_username):
            raise ValueError(
                "KAFKA_SASL_* is set but KAFKA_SECURITY_PROTOCOL is "
                f"{self.kafka_security_protocol}: use SASL_SSL (or unset KAFKA_SASL_*)"
            )
        if bool(self.kafka_ssl_certfile) != bool(self.kafka_ssl_keyfile):
            raise ValueError("set KAFKA_SSL_CERTFILE and KAFKA_SSL_KEYFILE together")
        _check_tls_files(self)
        if self.heartbeat_interval_ms * 3 > self.session_timeout_ms:
            raise ValueError("HEARTBEAT_INTERVAL_MS must be at most SESSION_TIMEOUT_MS / 3")
        return self


class EnricherSettings(ServiceSettings):
    """The enricher: consumes tickets.incoming, publishes tickets.enriched."""

    catalog_path: Path = SAMPLE_CATALOG
    """Certification catalog (YAML or JSON); the bundled sample by default."""
    catalog_poll_seconds: Annotated[float, Field(ge=0.1, le=300)] = 2.0
    """How often the enricher looks whether the catalog file was replaced (a mounted ConfigMap
    is swapped through symlinks, which file watches miss); a valid new one is used from the
    next batch."""
    enricher_group_id: str = "ticketroute-enricher"
    """Consumer group of the enricher instances."""
    metrics_port: Port = 9101
    """Port of the enricher's /metrics, /healthz and /readyz."""
    event_source: str = "/ticketroute/enricher"
    """CloudEvents `source` of the events it publishes."""


class RouterSettings(ServiceSettings):
    """The router: consumes tickets.enriched, publishes to the route topics and sla.ownership."""

    router_group_id: str = "ticketroute-router"
    """Consumer group of the router instances."""
    metrics_port: Port = 9102
    """Port of the router's /metrics, /healthz and /readyz."""
    event_source: str = "/ticketroute/router"
    """CloudEvents `source` of the events it publishes."""
    duplicate_window: Annotated[int, Field(ge=100_000, le=10_000_000)] = 100_000
    """How many recent event ids each router instance remembers to drop duplicates."""
    revision_memory: Annotated[int, Field(ge=10_000, le=10_000_000)] = 100_000
    """How many tickets' latest routed revision each instance remembers to drop stale ones."""
    topic_router_memory: str = "ticketroute.router.memory"
    """The router's changelog of what it routed (event id and revision per ticket), read back
    when partitions are assigned; compacted, with as many partitions as tickets.enriched."""
    tsanet_submitter_name: str = "Red Hat Global Support"
    """Contact named on TSANet collaboration requests."""
    tsanet_submitter_email: str = "tsanet@redhat.example"
    """E-mail of that contact."""
    tsanet_submitter_phone: str | None = None
    """Phone of that contact, if any."""


class TrackerSettings(ServiceSettings):
    """The tracker: consumes sla.ownership and the response topics, publishes sla.events."""

    tracker_group_id: str = "ticketroute-tracker"
    """Consumer group of the tracker instances."""
    metrics_port: Port = 9103
    """Port of the tracker's /metrics, /healthz and /readyz."""
    event_source: str = "/ticketroute/tracker"
    """CloudEvents `source` of the events it publishes."""
    topic_sla_events: str = "sla.events"
    """The lifecycle of every SLA clock: at risk, breached, completed or cancelled."""
    topic_responses_redhat: str = "responses.redhat"
    """Red Hat engineers' first responses, written by the ticketing system."""
    topic_responses_tsanet: str = "responses.tsanet"
    """Receiving vendors' first answers to collaboration requests, from the TSANet connector."""
    topic_tracker_state: str = "ticketroute.tracker.state"
    """The tracker's state store, keyed by ticket id: open clocks, held responses and what was
    published (compacted in production)."""
    at_risk_fraction: Annotated[float, Field(gt=0, lt=1)] = 0.75
    """Share of a target, counted in the target's own clock, after which a clock with no
    response is at risk (0.75: a one-business-day target is at risk after 6 of 8 hours)."""
    held_response_seconds: Annotated[int, Field(ge=3600, le=7 * 24 * 3600)] = 3600
    """How long a response waits for the assignment it answers, which may come later: the
    topics are not ordered with each other. At least an hour."""


SERVICES: dict[str, type[ServiceSettings]] = {
    "enricher": EnricherSettings,
    "router": RouterSettings,
    "tracker": TrackerSettings,
}
"""Each service's settings, by service name; the README's settings tables and the chart's
values of each service (its section of values.yaml) follow this list."""


def _check_tls_files(settings: ServiceSettings) -> None:
    """Load the TLS files now, so a bad one stops the start with its variable's name."""
    try:
        context = ssl.create_default_context()
        if settings.kafka_ssl_cafile:
            context.load_verify_locations(cafile=str(settings.kafka_ssl_cafile))
    except (ssl.SSLError, OSError) as error:
        raise ValueError(f"KAFKA_SSL_CAFILE is not a PEM CA certificate: {error}") from None
    if settings.kafka_ssl_certfile and settings.kafka_ssl_keyfile:
        try:
            context.load_cert_chain(
                str(settings.kafka_ssl_certfile), str(settings.kafka_ssl_keyfile)
            )
        except (ssl.SSLError, OSError) as error:
            raise ValueError(
                f"KAFKA_SSL_CERTFILE / KAFKA_SSL_KEYFILE are not a matching PEM pair: {error}"
            ) from None


SettingsT = TypeVar("SettingsT", bound=ServiceSettings)


def load_settings(cls: type[SettingsT]) -> SettingsT:
    """Read settings once; on a bad value, say which variable and exit instead of a traceback."""
    try:
        return cls()
    except ValidationError as error:
        lines = [f"ticketroute: invalid settings for {cls.__name__}:"]
        for e in error.errors():
            name = "_".join(str(p) for p in e["loc"]).upper() or "settings"
            lines.append(f"  {name}: {e['msg']}")
        print("\n".join(lines), file=sys.stderr)  # noqa: T201 - logging is not set up yet
        raise SystemExit(2) from None
