"""`ticketroute deadletter`: list the dead letters with their reasons, and replay chosen ones
(once fixed) to `tickets.incoming`.

    ticketroute deadletter list [--json]
    ticketroute deadletter replay --offset 3:17 [--offset 42 ...] [--fix-file FIXED.json]
    ticketroute deadletter replay --all [--to tickets.incoming]

A dead letter is named `PARTITION:OFFSET` in tickets.deadletter; a bare `OFFSET` is accepted
when only one partition holds that offset. `list` reads the topic from the beginning without a
consumer group (it commits nothing and moves nobody's position) and stops at the end of every
partition, or after ~2 s without a new message, whichever comes first.

`replay` republishes each chosen dead letter's original bytes and key, with its original
headers minus the dead-letter ones (every `error.*` and `source.*`), plus `replayed.from`
(`tickets.deadletter:PARTITION:OFFSET`) so a letter that fails again can be traced to its
replay. `--fix-file` replaces the bytes of the one chosen letter. Letters that came from
another topic than the target (e.g. a router dead letter, from tickets.enriched) are refused
unless `--to` names their topic.

Connection settings come from the same environment as the services (KAFKA_BOOTSTRAP_SERVERS,
KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_*, KAFKA_SSL_*; see docs/security.md).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from schemas.deadletter import (
    ERROR_MESSAGE,
    ERROR_TYPE,
    SOURCE_OFFSET,
    SOURCE_PARTITION,
    SOURCE_TOPIC,
    is_deadletter_header,
)
from ticketroute.command import add_bootstrap, connection, subcommand

REPLAYED_FROM = "replayed.from"
IDLE_SECONDS = 2.0
# A dead letter carries the original message, which may be large.
MAX_MESSAGE_BYTES = 16 * 1024 * 1024


class DeadLetterError(Exception):
    """A replay request that cannot be carried out as asked; the message says why."""


@dataclass(frozen=True, slots=True)
class DeadLetter:
    topic: str
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...]

    @property
    def ref(self) -> str:
        return f"{self.partition}:{self.offset}"

    def header(self, name: str) -> str | None:
        for key, raw in self.headers:
            if key == name and raw is not None:
                return raw.decode("utf-8", errors="replace")
        return None

    @property
    def error_type(self) -> str | None:
        return self.header(ERROR_TYPE)

    @property
    def error_message(self) -> str | None:
        return self.header(ERROR_MESSAGE)

    @property
    def source(self) -> str | None:
        """`topic/partition/offset` of the message that could not be used."""
        parts = [self.header(h) for h in (SOURCE_TOPIC, SOURCE_PARTITION, SOURCE_OFFSET)]
        return "/".join(p or "?" for p in parts) if any(parts) else None

    def as_json(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "partition": self.partition,
            "offset": self.offset,
            "timestamp_ms": self.timestamp,
            "key": _text(self.key),
            "error_type": self.error_type,
            "error_message": self.error_message,
            "source_topic": self.header(SOURCE_TOPIC),
            "source_partition": _int(self.header(SOURCE_PARTITION)),
            "source_offset": _int(self.header(SOURCE_OFFSET)),
            "size": len(self.value or b""),
        }


def _text(raw: bytes | None) -> str | None:
    return None if raw is None else raw.decode("utf-8", errors="replace")


def _int(text: str | None) -> int | None:
    return int(text) if text and text.isdigit() else None


# --- reading --------------------------------------------------------------------------------


async def list_dead_letters(
    bootstrap: str,
    topic: str = "tickets.deadletter",
    *,
    idle_seconds: float = IDLE_SECONDS,
    client: dict[str, Any] | None = None,
) -> list[DeadLetter]:
    """Every message of `topic`, oldest first per partition, without a consumer group."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=MAX_MESSAGE_BYTES,
        fetch_max_bytes=4 * MAX_MESSAGE_BYTES,
        **(client or {}),
    )
    await consumer.start()
    try:
        partitions = await _partitions(consumer, topic)
        if not partitions:
            return []
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        letters: list[DeadLetter] = []
        last_news = time.monotonic()
        while time.monotonic() - last_news < idle_seconds:
            if await _all_at_end(consumer, ends):
                break
            batches = await consumer.getmany(timeout_ms=200)
            for records in batches.values():
                for r in records:
                    letters.append(
                        DeadLetter(
                            r.topic,
                            r.partition,
                            r.offset,
                            r.timestamp,
                            r.key,
                            r.value,
                            tuple(r.headers),
                        )
                    )
                    last_news = time.monotonic()
        return sorted(letters, key=lambda d: (d.partition, d.offset))
    finally:
        await consumer.stop()


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    ids = consumer.partitions_for_topic(topic)
    if ids is None:
        # Metadata of a topic nobody subscribed to yet.
        await consumer._client.force_metadata_update()  # aiokafka has no public call for it
        ids = consumer.partitions_for_topic(topic)
    return [TopicPartition(topic, p) for p in sorted(ids or ())]


async def _all_at_end(consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> bool:
    for tp, end in ends.items():
        position: int = await consumer.position(tp)
        if position < end:
            return False
    return True


# --- replaying ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Replayed:
    letter: DeadLetter
    topic: str
    partition: int
    offset: int
    fixed: bool


def choose(
    letters: Sequence[DeadLetter], offsets: Sequence[str] | None, *, replay_all: bool = False
) -> list[DeadLetter]:
    """The dead letters named by `PARTITION:OFFSET` or unambiguous `OFFSET` references."""
    if replay_all:
        return list(letters)
    chosen: list[DeadLetter] = []
    for ref in offsets or ():
        matches = _resolve(letters, ref)
        if not matches:
            raise DeadLetterError(f"no dead letter at {ref}")
        if len(matches) > 1:
            candidates = ", ".join(m.ref for m in matches)
            raise DeadLetterError(
                f"offset {ref} is in several partitions ({candidates}): "
                "name one as PARTITION:OFFSET"
            )
        if matches[0] not in chosen:
            chosen.append(matches[0])
    return chosen


def _resolve(letters: Sequence[DeadLetter], ref: str) -> list[DeadLetter]:
    partition, _, offset = ref.strip().rpartition(":")
    if not offset.isdigit() or (partition and not partition.isdigit()):
        raise DeadLetterError(f"{ref!r} is not OFFSET or PARTITION:OFFSET")
    return [
        d
        for d in letters
        if d.offset == int(offset) and (not partition or d.partition == int(partition))
    ]


def replay_headers(letter: DeadLetter) -> list[tuple[str, bytes]]:
    """The letter's headers without the dead-letter ones and an earlier `replayed.from`, plus
    its own `replayed.from`: the replayed message looks like the original, not like a letter."""
    kept = [(k, v) for k, v in letter.headers if not is_deadletter_header(k) and k != REPLAYED_FROM]
    return [
        *[(k, v if v is not None else b"") for k, v in kept],
        (REPLAYED_FROM, f"{letter.topic}:{letter.ref}".encode()),
    ]


async def replay(
    bootstrap: str,
    offsets: Sequence[str] | None = None,
    *,
    replay_all: bool = False,
    fix: bytes | None = None,
    topic: str = "tickets.deadletter",
    to: str = "tickets.incoming",
    allow_other_source: bool = False,
    client: dict[str, Any] | None = None,
    idle_seconds: float = IDLE_SECONDS,
) -> list[Replayed]:
    """Republish the chosen dead letters' bytes (or `fix` for the one chosen) and key to `to`."""
    if not replay_all and not offsets:
        raise DeadLetterError("choose dead letters with --offset, or --all")
    letters = await list_dead_letters(bootstrap, topic, idle_seconds=idle_seconds, client=client)
    chosen = choose(letters, offsets, replay_all=replay_all)
    if fix is not None and len(chosen) != 1:
        raise DeadLetterError(f"--fix-file replaces one dead letter; {len(chosen)} are chosen")
    if not allow_other_source:
        foreign = [d for d in chosen if d.header(SOURCE_TOPIC) not in (None, to)]
        if foreign:
            names = ", ".join(f"{d.ref} (from {d.header(SOURCE_TOPIC)})" for d in foreign)
            raise DeadLetterError(
                f"{names} did not come from {to}; name their topic with --to to replay them"
            )
    if not chosen:
        return []
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        max_request_size=MAX_MESSAGE_BYTES,
        **(client or {}),
    )
    await producer.start()
    try:
        done: list[Replayed] = []
        for letter in chosen:
            value = fix if fix is not None else letter.value
            meta = await producer.send_and_wait(
                to, value, key=letter.key, headers=replay_headers(letter)
            )
            done.append(Replayed(letter, to, meta.partition, meta.offset, fix is not None))
        return done
    finally:
        await producer.stop()


# --- the command line -----------------------------------------------------------------------


def _out(line: str = "") -> None:
    sys.stdout.write(line + "\n")


def _err(line: str) -> None:
    sys.stderr.write(f"ticketroute deadletter: {line}\n")


def _one_line(text: str | None, limit: int = 160) -> str:
    """Hostile text made safe for a terminal: one line, control and format characters (escape
    sequences, right-to-left overrides, line separators) shown as \\uXXXX."""
    flat = " ".join((text or "").split())
    safe = "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in flat)
    return safe if len(safe) <= limit else safe[: limit - 1] + "…"


def run_list(args: argparse.Namespace) -> int:
    bootstrap, client, settings = connection(args)
    topic = args.topic or settings.topic_deadletter
    letters = asyncio.run(list_dead_letters(bootstrap, topic, client=client))
    if args.json:
        _out(json.dumps([d.as_json() for d in letters], indent=2, ensure_ascii=False))
        return 0
    if not letters:
        _out(f"no dead letters in {topic}")
        return 0
    _out(f"{len(letters)} dead letter(s) in {topic}:")
    for d in letters:
        # Keys and reasons come from hostile input: shown escaped, one line each.
        _out(
            f"{d.ref:>10}  key={json.dumps(_text(d.key))}  {_one_line(d.error_type) or '?'}"
            f"  from {_one_line(d.source) or '?'}\n{'':>12}{_one_line(d.error_message)}"
        )
    return 0


def run_replay(args: argparse.Namespace) -> int:
    bootstrap, client, settings = connection(args)
    fix: bytes | None = None
    if args.fix_file is not None:
        try:
            fix = Path(args.fix_file).read_bytes()
        except OSError as error:
            _err(f"cannot read {args.fix_file}: {error.strerror}")
            return 2
    try:
        done = asyncio.run(
            replay(
                bootstrap,
                args.offset,
                replay_all=args.all,
                fix=fix,
                topic=args.topic or settings.topic_deadletter,
                to=args.to or settings.topic_incoming,
                allow_other_source=args.to is not None,
                client=client,
            )
        )
    except DeadLetterError as error:
        _err(str(error))
        return 2
    if not done:
        _out("nothing to replay")
    for r in done:
        _out(
            f"replayed {r.letter.ref} key={json.dumps(_text(r.letter.key))} "
            f"({r.letter.error_type or '?'}{', fixed' if r.fixed else ''}) "
            f"-> {r.topic} {r.partition}:{r.offset}"
        )
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add `deadletter list` and `deadletter replay` to the `ticketroute` command."""
    parser = subcommand(
        subparsers,
        "deadletter",
        "list dead letters with their reasons; replay chosen ones once fixed",
        __doc__,
    )
    commands = parser.add_subparsers(dest="deadletter_command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        add_bootstrap(p)
        p.add_argument("--topic", help="dead-letter topic (default: TOPIC_DEADLETTER)")

    listing = commands.add_parser("list", help="dead letters with their reasons and sources")
    common(listing)
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.set_defaults(run=run_list)

    replaying = commands.add_parser("replay", help="republish chosen dead letters")
    common(replaying)
    chosen = replaying.add_mutually_exclusive_group(required=True)
    chosen.add_argument(
        "--offset",
        action="append",
        metavar="[PARTITION:]OFFSET",
        help="a dead letter to replay (repeatable)",
    )
    chosen.add_argument("--all", action="store_true", help="replay every dead letter")
    replaying.add_argument(
        "--fix-file", metavar="FILE", help="replacement bytes for the one chosen dead letter"
    )
    replaying.add_argument(
        "--to", metavar="TOPIC", help="target topic (default: TOPIC_INCOMING, tickets.incoming)"
    )
    replaying.set_defaults(run=run_replay)
