"""Generate the published contracts: one JSON Schema per event and an AsyncAPI 3 document of
every channel. `make schemas` writes them; a test fails when the committed copies drift."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaMode, JsonSchemaValue
from pydantic_core import CoreSchema, core_schema

from schemas.decision import (
    CollaborationRequestedEvent,
    EnrichedTicketEvent,
    PartnerRoutedTicketEvent,
    RoutedTicketEvent,
    SlaAssignedEvent,
)
from schemas.events import TicketEvent
from schemas.tracker import (
    PartnerResponseEvent,
    RedHatResponseEvent,
    SlaAtRiskEvent,
    SlaBreachedEvent,
    SlaCancelledEvent,
    SlaCompletedEvent,
    TsanetResponseEvent,
)

HERE = Path(__file__).resolve().parent

# name, model, channel address, event type(s), who publishes, what it is
CHANNELS: list[tuple[str, type[BaseModel], str, str, str, str]] = [
    (
        "ticket-event",
        TicketEvent,
        "tickets.incoming",
        "support.ticket.created | support.ticket.updated",
        "the ticketing system",
        "Support tickets, created or updated.",
    ),
    (
        "enriched-ticket-event",
        EnrichedTicketEvent,
        "tickets.enriched",
        "support.ticket.enriched",
        "the enricher",
        "Tickets with their catalog facts; internal between the services.",
    ),
    (
        "routed-ticket-event",
        RoutedTicketEvent,
        "queue.redhat",
        "support.ticket.routed",
        "the router",
        "Tickets Red Hat answers, with the decision.",
    ),
    (
        "partner-routed-ticket-event",
        PartnerRoutedTicketEvent,
        "queue.partner.{vendor_id}",
        "support.ticket.routed",
        "the router",
        "Tickets a partner answers: without the customer's other vendors or Red Hat contract.",
    ),
    (
        "collaboration-requested-event",
        CollaborationRequestedEvent,
        "collab.tsanet",
        "support.collaboration.requested",
        "the router",
        "TSANet collaboration requests, with the decision.",
    ),
    (
        "sla-assigned-event",
        SlaAssignedEvent,
        "sla.ownership",
        "support.sla.assigned",
        "the router",
        "Who owns each ticket's first response, and by when.",
    ),
    (
        "redhat-response-event",
        RedHatResponseEvent,
        "responses.redhat",
        "support.response.recorded",
        "the ticketing system",
        "Red Hat engineers' first responses: they stop the clocks Red Hat owns.",
    ),
    (
        "partner-response-event",
        PartnerResponseEvent,
        "responses.partner.{vendor_id}",
        "support.response.recorded",
        "that partner only",
        "A partner's first responses: they stop the owner clocks of that vendor.",
    ),
    (
        "tsanet-response-event",
        TsanetResponseEvent,
        "responses.tsanet",
        "support.response.recorded",
        "the TSANet connector",
        "Receiving vendors' first answers to collaboration requests: they stop the "
        "collaborator clocks.",
    ),
    *(
        (
            f"sla-{kind.replace('_', '-')}-event",
            model,
            "sla.events",
            f"support.sla.{kind}",
            "the tracker",
            "The lifecycle of every SLA clock: at risk, breached, completed or cancelled.",
        )
        for kind, model in (
            ("at_risk", SlaAtRiskEvent),
            ("breached", SlaBreachedEvent),
            ("completed", SlaCompletedEvent),
            ("cancelled", SlaCancelledEvent),
        )
    ),
]
# Channels the services publish; the others are their inputs, whose schemas show what may be
# left out (validation mode) rather than what is always written.
_SERVICES = frozenset({"the enricher", "the router", "the tracker"})


class PublishedJsonSchema(GenerateJsonSchema):
    """Pydantic's JSON Schema, said so that any validator reads it as the services mean it."""

    def generate(self, schema: CoreSchema, mode: JsonSchemaMode = "validation") -> JsonSchemaValue:
        return {"$schema": self.schema_dialect, **super().generate(schema, mode)}

    def time_schema(self, schema: core_schema.TimeSchema) -> JsonSchemaValue:
        # A time of day without an offset (business hours, in the customer's zone): the
        # "time" format would ask validators for an offset.
        return {
            "type": "string",
            "pattern": r"^([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]+)?$",
            "description": "a local time of day, HH:MM:SS (RFC 3339 partial-time, no offset)",
        }


def json_schemas() -> dict[str, dict[str, Any]]:
    return {
        name: model.model_json_schema(
            mode="serialization" if publisher in _SERVICES else "validation",
            schema_generator=PublishedJsonSchema,
        )
        for name, model, _address, _types, publisher, _description in CHANNELS
    }


def _camel(name: str) -> str:
    head, *rest = name.split("-")
    return head + "".join(p.capitalize() for p in rest)


def asyncapi() -> dict[str, Any]:
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    addresses = [address for _name, _model, address, *_ in CHANNELS]
    for name, _model, address, types, publisher, description in CHANNELS:
        key = _camel(name)
        messages[key] = {
            "name": key,
            "title": types,
            "contentType": "application/cloudevents+json",
            "payload": {"$ref": f"./jsonschema/{name}.json"},
            "bindings": {"kafka": {"key": {"type": "string", "description": "the ticket_id"}}},
        }
        # A topic with several event types is one channel, named after the topic.
        channel_key = _camel(address.replace(".", "-")) if addresses.count(address) > 1 else key
        if channel_key in channels:
            channels[channel_key]["messages"][key] = {"$ref": f"#/components/messages/{key}"}
            continue
        channel: dict[str, Any] = {
            "address": address,
            "description": f"{description} Published by {publisher}.",
            "messages": {key: {"$ref": f"#/components/messages/{key}"}},
        }
        if "{vendor_id}" in address:
            channel["parameters"] = {
                "vendor_id": {"description": "a catalog vendor id, ^[a-z0-9][a-z0-9-]{0,39}$"}
            }
        channels[channel_key] = channel
        action = "send" if publisher in _SERVICES else "receive"
        operations[f"{action}{channel_key[0].upper()}{channel_key[1:]}"] = {
            "action": action,
            "channel": {"$ref": f"#/channels/{channel_key}"},
        }
    channels["deadletter"] = {
        "address": "tickets.deadletter",
        "description": (
            "Input that could not be parsed or validated: the original bytes and key, with "
            "headers error.type, error.message, source.topic, source.partition, source.offset."
        ),
    }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "ticketroute",
            "version": "1.0.0",
            "description": "Routes Red Hat OpenStack Platform support tickets. Every message "
            "is a CloudEvents 1.0 event in structured JSON mode, keyed by ticket_id.",
        },
        "defaultContentType": "application/cloudevents+json",
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages},
    }


def rendered() -> dict[Path, str]:
    files = {
        HERE / "jsonschema" / f"{name}.json": json.dumps(schema, indent=2) + "\n"
        for name, schema in json_schemas().items()
    }
    files[HERE / "asyncapi.yaml"] = yaml.safe_dump(asyncapi(), sort_keys=False, width=100)
    return files


def main() -> None:
    for path, text in rendered().items():
        path.parent.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path.relative_to(HERE.parent)}")  # noqa: T201


if __name__ == "__main__":
    main()
