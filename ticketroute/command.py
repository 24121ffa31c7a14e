"""What the `ticketroute` subcommands that read or write Kafka share: their parser, which shows
the module's docstring as written, and their connection, taken from the same environment as
the services (KAFKA_BOOTSTRAP_SERVERS, KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_*, KAFKA_SSL_*; see
docs/security.md) unless `--bootstrap` names the servers."""

from __future__ import annotations

import argparse
from typing import Any


def subcommand(
    subparsers: argparse._SubParsersAction,  # type: ignore[type-arg]
    name: str,
    summary: str,
    doc: str | None,
) -> argparse.ArgumentParser:
    """Add the subcommand `name`: `summary` in `ticketroute --help`, `doc` (the module's
    docstring, its usage lines kept as written) in its own `--help`."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        name, help=summary, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    return parser


def add_bootstrap(parser: argparse.ArgumentParser) -> None:
    """`--bootstrap`, which `connection` prefers to the environment's servers."""
    parser.add_argument(
        "--bootstrap",
        help="Kafka bootstrap servers (default: KAFKA_BOOTSTRAP_SERVERS or localhost:9092)",
    )


def connection(args: argparse.Namespace) -> tuple[str, dict[str, Any], Any]:
    """Bootstrap servers, the aiokafka security kwargs, and the settings (for topic names)."""
    from faststream.kafka.security import parse_security  # noqa: PLC0415 - keeps --help light

    from services.runtime.kafka import kafka_security  # noqa: PLC0415
    from services.runtime.settings import ServiceSettings, load_settings  # noqa: PLC0415

    settings = load_settings(ServiceSettings)
    bootstrap = args.bootstrap or settings.kafka_bootstrap_servers
    return bootstrap, parse_security(kafka_security(settings)), settings
