"""`ticketroute whatif`: what a new catalog would change in routing, before it lands.

    ticketroute whatif NEW_CATALOG [TICKETS.json ...] [--catalog PATH] [--json]
    ticketroute whatif NEW_CATALOG --from-topic tickets.incoming --since 2026-11-24T00:00:00Z

Ticket events (from files, in the formats `ticketroute explain` reads, or from a topic) go
through the services' own enrichment, rules and SLA twice: under the current catalog
(`--catalog`, else CATALOG_PATH, else the bundled sample) and under the new one. It prints the
catalog's changes, how many tickets go from each rule to each rule, and every ticket whose
route, owner or due time would change, with both decisions' reasons. Nothing is published.

From a topic, records are read without a consumer group and without committing anything, from
the first record whose Kafka timestamp is at or after `--since` to the end of every partition.
Connection settings come from the services' environment (KAFKA_BOOTSTRAP_SERVERS, KAFKA_SSL_*,
KAFKA_SASL_*; see docs/security.md).

Exit status 0 whether or not anything changes; 2 for an invalid catalog, an unreadable file or
an unreachable topic. Events that are not valid ticket events (they would be dead letters) are
skipped and counted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from schemas.decision import Decision, SubmitterContact
from schemas.events import TicketEvent
from services.enricher.catalog import CatalogError, load_catalog
from services.enricher.catalogdiff import CatalogDiff, diff_catalogs
from services.enricher.enrich import CatalogIndex, enrich
from services.router.outputs import Topics, route
from services.runtime.events import parse, parse_record, to_json
from services.runtime.pipeline import Record, Rejected
from services.runtime.settings import SAMPLE_CATALOG, RouterSettings
from ticketroute.command import add_bootstrap, connection, subcommand

if TYPE_CHECKING:
    from aiokafka import ConsumerRecord

# After the last known end of every partition, how long a poll may bring nothing before the
# topic counts as read: Tansu's end_offsets() can report less than the partition holds.
IDLE_SECONDS = 1.0
# With records still expected (below the known end), how long without any before giving up.
STALLED_SECONDS = 10.0


class WhatIfError(Exception):
    """The comparison cannot run: the message says what to fix."""


# --- the comparison (pure) ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Change:
    """One ticket event whose route, owner or due time differs under the new catalog."""

    ticket_id: str
    revision: int
    before: Decision
    after: Decision


@dataclass(slots=True)
class WhatIf:
    """The outcome of replaying ticket events under two catalogs."""

    diff: CatalogDiff
    tickets: int = 0
    skipped: int = 0
    counts: Counter[tuple[str, str]] = field(default_factory=Counter)
    changed: list[Change] = field(default_factory=list)

    def sorted_counts(self) -> list[tuple[str, str, int]]:
        """Most tickets first; the rules' pairs alphabetically among equals."""
        return sorted(
            ((a, b, n) for (a, b), n in self.counts.items()), key=lambda c: (-c[2], c[0], c[1])
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "current_version": self.diff.old_version,
            "new_version": self.diff.new_version,
            "tickets": self.tickets,
            "counts": [{"from": a, "to": b, "tickets": n} for a, b, n in self.sorted_counts()],
            "changed": [
                {
                    "ticket_id": c.ticket_id,
                    "revision": c.revision,
                    "before": decision_json(c.before),
                    "after": decision_json(c.after),
                }
                for c in self.changed
            ],
            "skipped_invalid": self.skipped,
            "catalog_diff": self.diff.as_json(),
        }


def reason(decision: Decision) -> str:
    """Why the deciding rule matched, from the decision's own trace."""
    return next((s.reason for s in decision.trace if s.matched), "")


def decision_json(decision: Decision) -> dict[str, Any]:
    owner = decision.owner
    return {
        "rule": decision.rule,
        "route": decision.route,
        "topic": decision.topic,
        "owner": {"party": owner.party, "vendor_id": owner.vendor_id},
        "response_due_at": json.loads(to_json(decision.response_due_at)),
        "reason": reason(decision),
        "actions": list(decision.actions),
        "catalog_version": decision.catalog_version,
        "decision_id": decision.decision_id,
    }


def _differs(before: Decision, after: Decision) -> bool:
    return (
        before.route != after.route
        or before.topic != after.topic
        or before.owner != after.owner
        or before.response_due_at != after.response_due_at
    )


class Comparison:
    """Both catalogs' indexes and the router's terms: decide each event twice."""

    def __init__(
        self,
        current: CatalogIndex,
        new: CatalogIndex,
        topics: Topics,
        submitter: SubmitterContact,
    ) -> None:
        self._current, self._new = current, new
        self._topics, self._submitter = topics, submitter
        self.result = WhatIf(diff_catalogs(current.catalog, new.catalog))
        self._seen: set[tuple[str, str, int]] = set()

    def add(self, event: TicketEvent) -> None:
        """One event; a redelivered one (same id, ticket and revision) counts once."""
        ticket = event.data
        key = (event.id, ticket.ticket_id, ticket.revision)
        if key in self._seen:
            return
        self._seen.add(key)
        before = route(enrich(event, self._current), self._topics, self._submitter).decision
        after = route(enrich(event, self._new), self._topics, self._submitter).decision
        result = self.result
        result.tickets += 1
        result.counts[before.rule, after.rule] += 1
        if _differs(before, after):
            result.changed.append(Change(ticket.ticket_id, ticket.revision, before, after))

    def add_raw(self, raw: bytes | Record) -> None:
        """An event's JSON, or a Kafka record read as the enricher reads it (in either
        CloudEvents mode); one that is not a valid ticket event (a dead letter for the
        enricher) is skipped and counted."""
        try:
            if isinstance(raw, bytes):
                event = parse(TicketEvent, raw)
            else:
                event = parse_record(TicketEvent, raw)
        except Rejected:
            self.result.skipped += 1
            return
        self.add(event)


def router_terms(settings: RouterSettings) -> tuple[Topics, SubmitterContact]:
    """The topic names and TSANet submitter the router would use, from its settings."""
    topics = Topics(
        settings.topic_redhat,
        settings.topic_partner_prefix,
        settings.topic_tsanet,
        settings.topic_sla,
    )
    submitter = SubmitterContact(
        name=settings.tsanet_submitter_name,
        email=settings.tsanet_submitter_email,
        phone=settings.tsanet_submitter_phone,
    )
    return topics, submitter


# --- reading events -------------------------------------------------------------------------


def file_events(paths: Sequence[Path]) -> Iterator[bytes]:
    """Each event of each file, as JSON bytes: a CloudEvent, a bare ticket or a list of either,
    as `ticketroute explain` reads them."""
    from ticketroute.cli import _events  # noqa: PLC0415 - cli imports this module

    for path in paths:
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise WhatIfError(f"cannot read {path}: {error}") from None
        for item in _events(raw):
            yield json.dumps(item).encode()


async def topic_events(
    bootstrap: str,
    topic: str,
    since: datetime,
    *,
    client: dict[str, Any] | None = None,
    idle_seconds: float = IDLE_SECONDS,
    stalled_seconds: float = STALLED_SECONDS,
) -> list[ConsumerRecord[bytes, bytes]]:
    """The records of `topic` from `since` (their Kafka timestamps) to the end of each
    partition, read without a consumer group: nothing is committed, nobody's position moves.

    Each partition starts at Kafka's offset for that time, and records with an earlier
    timestamp are left out. The end is each partition's end offset when reading starts;
    because Tansu's end_offsets() can under-report, reading goes on past it until a poll
    brings nothing for `idle_seconds`."""
    from aiokafka import AIOKafkaConsumer  # noqa: PLC0415 - keeps `--help` light

    from ticketroute.deadletter import _all_at_end, _partitions  # noqa: PLC0415

    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="latest",
        **(client or {}),
    )
    try:
        await consumer.start()
    except Exception as error:
        raise WhatIfError(f"cannot reach Kafka at {bootstrap}: {error}") from None
    try:
        partitions = await _partitions(consumer, topic)
        if not partitions:
            raise WhatIfError(f"topic {topic!r} does not exist (or has no partitions)")
        consumer.assign(partitions)
        since_ms = int(since.timestamp() * 1000)
        starts = await consumer.offsets_for_times(dict.fromkeys(partitions, since_ms))
        ends = await consumer.end_offsets(partitions)
        for tp in partitions:
            first = starts.get(tp)
            # No record at or after `since` on this partition: start at its end.
            consumer.seek(tp, first.offset if first is not None else ends[tp])
        found: list[ConsumerRecord[bytes, bytes]] = []
        last_news = time.monotonic()
        while True:
            batches = await consumer.getmany(timeout_ms=200)
            got = [r for records in batches.values() for r in records]
            # Timestamps are compared here as well: a producer may set them out of order, and
            # Tansu answers the time look-up with a partition's first offset.
            found += [r for r in got if r.timestamp >= since_ms]
            if got:
                last_news = time.monotonic()
                continue
            quiet = time.monotonic() - last_news
            if quiet >= stalled_seconds or (
                quiet >= idle_seconds and await _all_at_end(consumer, ends)
            ):
                return found
    finally:
        await consumer.stop()


# --- the command line -----------------------------------------------------------------------


def _load(path: Path, which: str) -> CatalogIndex:
    try:
        return CatalogIndex.build(load_catalog(path))
    except CatalogError as error:
        raise WhatIfError(f"{which} catalog: {error}") from None


def _since(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an RFC 3339 time such as 2026-11-24T09:00:00Z"
        ) from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} needs an offset, e.g. Z or +01:00")
    return moment


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%MZ")


def _owner(decision: Decision) -> str:
    return decision.owner.vendor_id or decision.owner.party


def text_report(result: WhatIf, catalog_lines: bool = True) -> str:
    """The comparison for people: the catalog's changes, rule to rule, then each change."""
    lines = [*result.diff.lines(), ""] if catalog_lines else []
    summary = f"{result.tickets} ticket event(s) replayed"
    if result.skipped:
        summary += f" ({result.skipped} invalid, skipped)"
    lines.append(f"{summary}; {len(result.changed)} would change route, owner or due time.")
    lines += ["", f"  {'current rule':<30} {'new rule (* changed)':<30} {'tickets':>7}"]
    for before, after, n in result.sorted_counts():
        mark = "" if before == after else "  *"
        lines.append(f"  {before:<30} {after:<30} {n:>7}{mark}")
    for c in result.changed:
        lines += ["", f"{c.ticket_id} revision {c.revision}"]
        for label, d in (("now", c.before), ("new", c.after)):
            lines.append(
                f"  {label}  {d.rule}: {d.route} -> {d.topic}, owner {_owner(d)}, "
                f"due {_when(d.response_due_at)}"
            )
            lines.append(f"       {reason(d)}")
    return "\n".join(lines)


def compare(
    current: CatalogIndex,
    new: CatalogIndex,
    events: Iterable[bytes | Record],
    terms: tuple[Topics, SubmitterContact],
) -> WhatIf:
    """Replay every event (its JSON, or a Kafka record) through both catalogs."""
    comparison = Comparison(current, new, *terms)
    for event in events:
        comparison.add_raw(event)
    return comparison.result


def run(args: argparse.Namespace) -> int:
    parser: argparse.ArgumentParser = args.parser
    if args.from_topic and args.tickets:
        parser.error("give ticket files or --from-topic, not both")
    if bool(args.from_topic) != bool(args.since):
        parser.error("--from-topic and --since go together")
    if not (args.from_topic or args.tickets):
        parser.error("give ticket event files, or --from-topic TOPIC --since TIME")
    current_path = args.catalog or Path(os.environ.get("CATALOG_PATH") or SAMPLE_CATALOG)
    try:
        current = _load(current_path, "current")
        new = _load(args.new_catalog, "new")
        if args.from_topic:
            events: Iterable[bytes | Record] = _read_topic(args)
        else:
            events = list(file_events(args.tickets))
        result = compare(current, new, events, router_terms(RouterSettings()))
    except WhatIfError as error:
        sys.stderr.write(f"ticketroute whatif: {error}\n")
        return 2
    if args.json:
        sys.stdout.write(json.dumps(result.as_json(), indent=2) + "\n")
    else:
        sys.stdout.write(text_report(result) + "\n")
    return 0


def _read_topic(args: argparse.Namespace) -> list[ConsumerRecord[bytes, bytes]]:
    bootstrap, client, _settings = connection(args)
    return asyncio.run(topic_events(bootstrap, args.from_topic, args.since, client=client))


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add `whatif` to the `ticketroute` command."""
    p = subcommand(
        subparsers, "whatif", "what a new catalog would change in routing, before it lands", __doc__
    )
    p.add_argument("new_catalog", type=Path, metavar="NEW_CATALOG", help="catalog YAML/JSON")
    p.add_argument(
        "tickets", type=Path, nargs="*", metavar="TICKETS.json", help="ticket event files"
    )
    p.add_argument(
        "--catalog",
        type=Path,
        help="current catalog (default: CATALOG_PATH, else the bundled sample)",
    )
    p.add_argument("--from-topic", metavar="TOPIC", help="read ticket events from this topic")
    p.add_argument("--since", type=_since, metavar="TIME", help="RFC 3339; with --from-topic")
    add_bootstrap(p)
    p.add_argument("--json", action="store_true", help="one JSON object, for tools")
    p.set_defaults(run=run, parser=p)
