"""`ticketroute`: the command line. `explain` shows, without any broker, what the services
would do with one ticket: the enrichment, the decision with its trace, and the SLA."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from schemas.decision import EnrichedTicket
from schemas.events import TicketEvent
from services.enricher.catalog import CatalogError, load_catalog
from services.enricher.enrich import CatalogIndex, certification, enrich
from services.router.outputs import Routing, route
from services.runtime.events import to_json
from services.runtime.pipeline import Rejected
from services.runtime.settings import SAMPLE_CATALOG, RouterSettings
from ticketroute import deadletter, whatif
from ticketroute.whatif import router_terms


def _events(raw: Any) -> list[dict[str, Any]]:
    """A CloudEvent, a bare ticket (taken as just created), or a list of either."""
    items = raw if isinstance(raw, list) else [raw]
    events = []
    for item in items:
        if isinstance(item, dict) and "specversion" not in item and "ticket_id" in item:
            events.append(
                {
                    "specversion": "1.0",
                    "id": f"explain-{item['ticket_id']}",
                    "source": "/ticketroute/explain",
                    "type": "support.ticket.created",
                    "time": item.get("opened_at"),
                    "subject": item["ticket_id"],
                    "data": item,
                }
            )
        else:
            events.append(item)
    return events


def _as_json(value: object) -> Any:
    """What the services would publish of `value`, as plain JSON values."""
    return json.loads(to_json(value))


def _parse(event: dict[str, Any]) -> TicketEvent:
    from services.runtime.events import parse  # noqa: PLC0415 - keeps `--help` light

    return parse(TicketEvent, json.dumps(event).encode())


def _text(enriched: EnrichedTicket, index: CatalogIndex, routing: Routing) -> str:
    event, t = enriched.event, enriched.ticket
    d = routing.decision
    local = ZoneInfo(t.customer.timezone)
    lines = [
        f"Ticket {t.ticket_id} revision {t.revision} ({event.type}): severity {t.severity}, "
        f"{t.product.name} {t.product.version}",
        f"  {t.summary}",
        f"Customer {t.customer.name} ({t.customer.account_id}), {t.customer.support_level}, "
        f"{t.customer.country}, {t.customer.timezone}",
        "",
        f"Components, catalog {index.catalog.version}:",
    ]
    if not enriched.components:
        lines.append("  (none listed)")
    for c in enriched.components:
        flags = ", ".join(
            f for f in ("suspected" if c.suspected else "", f"removable={c.removable}") if f
        )
        lines.append(f"  - {c.ref} [{flags}]")
        if c.catalog is None:
            lines.append("      not in the catalog")
        else:
            m = c.catalog
            lines.append(
                f"      {m.id} ({m.name}) by {m.vendor_id}, shipped by {m.shipped_by}, "
                f"{certification(c)} for {t.product.version}"
            )
    lines += [
        "",
        f"Decision {d.decision_id}",
        f"  rule      {d.rule}",
        f"  route     {d.route} -> {d.topic}",
        f"  owner     {d.owner.vendor_id or d.owner.party}",
        f"  actions   {', '.join(d.actions) or 'none'}",
        "  trace:",
    ]
    lines += [f"    {'MATCH' if s.matched else 'no   '} {s.rule:<29} {s.reason}" for s in d.trace]
    due_local = d.response_due_at.astimezone(local)
    lines += [
        "",
        f"SLA: {routing.sla.basis}",
        f"  clock ({d.clock}) starts {d.clock_start:%Y-%m-%d %H:%M}Z",
        f"  first response due {d.response_due_at:%Y-%m-%d %H:%M}Z "
        f"({due_local:%a %Y-%m-%d %H:%M} customer time)",
    ]
    lines += [
        f"  collaborator {c.vendor_id} responds by {c.respond_by:%Y-%m-%d %H:%M}Z ({c.clock})"
        for c in d.collaborators
    ]
    return "\n".join(lines)


def explain(args: argparse.Namespace) -> int:
    try:
        index = CatalogIndex.build(load_catalog(args.catalog))
        raw = json.loads(Path(args.ticket).read_text(encoding="utf-8"))
    except CatalogError as error:
        print(f"ticketroute: {error}", file=sys.stderr)
        return 2
    except (OSError, json.JSONDecodeError) as error:
        print(f"ticketroute: cannot read {args.ticket}: {error}", file=sys.stderr)
        return 2
    topics, submitter = router_terms(RouterSettings())
    results: list[dict[str, Any]] = []
    status = 0
    for n, item in enumerate(_events(raw)):
        try:
            event = _parse(item)
        except Rejected as rejected:
            print(
                f"ticketroute: event {n} is invalid ({rejected.error_type}): {rejected.message}",
                file=sys.stderr,
            )
            status = 2
            continue
        enriched = enrich(event, index)
        routing = route(enriched, topics, submitter)
        if args.json:
            results.append(
                {
                    "enriched": _as_json(enriched),
                    "decision": _as_json(routing.decision),
                    "sla": _as_json(routing.sla),
                    "message": {
                        "topic": routing.topic,
                        "type": routing.event_type,
                        "data": _as_json(routing.payload),
                    },
                }
            )
        else:
            print(("\n" + "=" * 78 + "\n") if n else "", end="")
            print(_text(enriched, index, routing))
    if args.json:
        print(json.dumps(results[0] if len(results) == 1 else results, indent=2))
    return status


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ticketroute", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("explain", help="enrichment, decision, trace and SLA of a ticket")
    p.add_argument("ticket", help="JSON file: a ticket event, a bare ticket, or a list")
    p.add_argument("--catalog", type=Path, default=SAMPLE_CATALOG, help="catalog YAML/JSON")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(run=explain)
    deadletter.register(commands)
    whatif.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    status: int = args.run(args)
    return status


if __name__ == "__main__":
    sys.exit(main())
