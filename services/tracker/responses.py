"""Responses as they arrive: which topic family a topic is, and the checks that depend on the
topic a response came on (README, "The SLA lifecycle: the tracker"). Pure: the verdict is a
function of the topic and the event; a response that fails a check is refused with the
dead-letter reason."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from schemas.catalog import VENDOR_ID_PATTERN
from schemas.tracker import (
    KINDS_BY_FAMILY,
    RESPONSE_EVENTS,
    ResponseFamily,
    ResponseRecorded,
)
from services.runtime.events import parse_record
from services.runtime.pipeline import Record, Rejected

_VENDOR_ID = re.compile(VENDOR_ID_PATTERN)


@dataclass(frozen=True, slots=True)
class ResponseTopics:
    """The names of the three response topic families."""

    redhat: str
    partner_prefix: str
    tsanet: str

    def family(self, topic: str) -> tuple[ResponseFamily, str | None] | None:
        """The family of `topic` and, for a partner topic, its vendor; None for any other
        topic (a partner prefix followed by something that is no vendor id included)."""
        if topic == self.redhat:
            return "redhat", None
        if topic == self.tsanet:
            return "tsanet", None
        if topic.startswith(self.partner_prefix):
            vendor_id = topic[len(self.partner_prefix) :]
            if _VENDOR_ID.fullmatch(vendor_id):
                return "partner", vendor_id
        return None


def check_response(
    family: ResponseFamily, topic_vendor: str | None, response: ResponseRecorded
) -> ResponseRecorded:
    """The response as it counts, or Rejected: a kind that does not belong on its topic and a
    TSANet answer that names no vendor are invalid; a partner naming another vendor than its
    topic's is forbidden (a partner may answer only for itself). On a partner topic the
    vendor is the topic's; on Red Hat's, none."""
    if response.kind not in KINDS_BY_FAMILY[family]:
        allowed = ", ".join(sorted(KINDS_BY_FAMILY[family]))
        raise Rejected(
            "invalid_event",
            f"data.kind: {response.kind!r} does not belong on the {family} response topic "
            f"(expected {allowed})",
        )
    if family == "redhat":
        return response if response.vendor_id is None else replace(response, vendor_id=None)
    if family == "tsanet":
        if response.vendor_id is None:
            raise Rejected("invalid_event", "data.vendor_id: required on the TSANet topic")
        return response
    if topic_vendor is None:
        raise ValueError("a partner topic's vendor is needed to check its responses")
    if response.vendor_id is None:
        return replace(response, vendor_id=topic_vendor)
    if response.vendor_id != topic_vendor:
        raise Rejected(
            "forbidden",
            f"data.vendor_id {response.vendor_id!r} is not the vendor of this partner topic "
            f"({topic_vendor!r}): a partner answers only for itself",
        )
    return response


def read_response(
    family: ResponseFamily, topic_vendor: str | None, record: Record
) -> ResponseRecorded:
    """A consumed response record, parsed with its family's schema (either CloudEvents mode)
    and checked against its topic; Rejected with the dead-letter reason otherwise."""
    event = parse_record(RESPONSE_EVENTS[family], record)
    return check_response(family, topic_vendor, event.data)
