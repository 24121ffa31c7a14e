"""The rule table (README, "The routing rules in plain words") rule by rule, with its edges,
through the pure core."""

from __future__ import annotations

import json
from typing import Any, get_args

import pytest

from schemas.decision import RuleId
from schemas.events import TicketEvent
from services.enricher.catalog import parse_catalog
from services.enricher.enrich import CatalogIndex, enrich
from services.router.policy import RULES, Facts, component_in_question, decide, facts_of
from tests.support.tickets import Ref, component, sample_catalog, sample_index, ticket_event


def ticket_facts(event: dict[str, Any]) -> Facts:
    ticket = enrich(TicketEvent.model_validate_json(json.dumps(event)), sample_index())
    return facts_of(ticket, component_in_question(ticket.components))


def verdict(event: dict[str, Any], index: CatalogIndex | None = None):  # type: ignore[no-untyped-def]
    parsed = TicketEvent.model_validate_json(json.dumps(event))
    return decide(enrich(parsed, index or sample_index()))


@pytest.mark.parametrize(
    ("components", "extra", "rule", "actions"),
    [
        ([], {}, "no-component", ("triage",)),
        ([component(Ref.OVN), component(Ref.CEPH)], {}, "no-component", ("triage",)),
        ([component(Ref.UNKNOWN)], {}, "unknown-component", ("triage",)),
        ([component(Ref.OVN)], {}, "redhat-component", ()),
        ([component(Ref.VNX, True)], {}, "uncertified-replace", ("request_component_replacement",)),
        (
            [component(Ref.INFINIBOX, True, True)],
            {},
            "uncertified-replace",
            ("request_component_replacement",),
        ),
        ([component(Ref.INFINIBOX, True, False)], {}, "uncertified-collaborate", ()),
        (
            [component(Ref.OCEANSTOR, True, False)],
            {},
            "uncertified-no-collaboration",
            ("collaboration_unavailable",),
        ),
        ([component(Ref.PURE, True)], {}, "partner-shipped", ()),
        (
            [component(Ref.NETAPP, True)],
            {"needs_vendor_expertise": True},
            "redhat-shipped-collaborate",
            (),
        ),
        (
            [component(Ref.NVIDIA)],
            {"needs_vendor_expertise": True},
            "redhat-shipped-engineering",
            ("engage_partner_engineering",),
        ),
        ([component(Ref.NETAPP, True)], {}, "redhat-shipped", ()),
        ([component(Ref.NVIDIA)], {}, "redhat-shipped", ()),
    ],
)
def test_every_rule(
    components: list[Any], extra: dict[str, Any], rule: str, actions: tuple[str, ...]
) -> None:
    v = verdict(ticket_event(components=components, **extra))
    assert v.rule == rule
    assert v.actions == actions
    assert [s.rule for s in v.trace][-1] == rule
    assert [s.matched for s in v.trace] == [False] * (len(v.trace) - 1) + [True]


def test_routes_and_owners() -> None:
    v = verdict(ticket_event(components=[component(Ref.PURE, True)]))
    assert (v.route, v.owner, v.vendor_id) == ("partner", "vendor", "pure-storage")
    v = verdict(ticket_event(components=[component(Ref.INFINIBOX, True, False)]))
    assert (v.route, v.owner, v.vendor_id) == ("tsanet", "redhat", "infinidat")
    v = verdict(ticket_event(components=[component(Ref.OVN)]))
    assert (v.route, v.owner, v.vendor_id) == ("redhat", "redhat", None)


def test_uncertified_collaborate_needs_the_customers_agreement() -> None:
    event = ticket_event(
        customer={"vendor_agreements": ["netapp"]},
        components=[component(Ref.INFINIBOX, True, False)],
    )
    v = verdict(event)
    assert v.rule == "uncertified-no-collaboration"
    assert "no support agreement with infinidat" in v.trace[-2].reason


def test_the_table_lists_every_rule_once_in_the_readmes_order() -> None:
    assert [rule.id for rule in RULES] == list(get_args(RuleId))


def test_tickets_with_the_same_facts_get_the_same_outcome_and_a_changed_fact_is_seen() -> None:
    # decide() remembers outcomes by the facts the rules look at (policy.Facts): a remembered
    # outcome stands in only for a ticket with the very same facts.
    first = ticket_event(components=[component(Ref.INFINIBOX, True, False)])
    same_facts = ticket_event(
        components=[component(Ref.INFINIBOX, True, False)],
        severity=1,
        summary="Something else entirely",
        customer={**first["data"]["customer"], "account_id": "OTHER-9", "name": "Other"},
    )
    a, b = verdict(first), verdict(same_facts)
    assert ticket_facts(first) == ticket_facts(same_facts)
    assert (a.rule, a.route, a.actions, a.trace) == (b.rule, b.route, b.actions, b.trace)
    assert a.rule == "uncertified-collaborate"
    # The component in the verdict is the ticket's own, not the first ticket's.
    assert b.component is not None
    assert b.component.catalog is not None
    assert b.component.catalog.vendor is not None
    assert b.component.catalog.vendor.target != a.component.catalog.vendor.target
    # Each fact the rules read still changes the outcome once an outcome is remembered.
    no_agreement = ticket_event(
        components=[component(Ref.INFINIBOX, True, False)],
        customer={**first["data"]["customer"], "vendor_agreements": []},
    )
    removable = ticket_event(components=[component(Ref.INFINIBOX, True, True)])
    other_version = ticket_event(
        components=[component(Ref.INFINIBOX, True, False)],
        product={"name": "Red Hat OpenStack Platform", "version": "16.2"},
    )
    assert verdict(no_agreement).rule == "uncertified-no-collaboration"
    assert verdict(removable).rule == "uncertified-replace"
    reason = verdict(other_version).trace[-1].reason
    assert "not certified for 16.2" in reason
    assert "17.1" not in reason


@pytest.mark.parametrize("level", ["premium", "standard"])
@pytest.mark.parametrize("agreements", ["every vendor", "every other vendor", "none"])
def test_a_partner_routed_trace_never_mentions_the_customers_agreements_or_contract(
    level: str, agreements: str
) -> None:
    # Every component its vendor ships, on every version it is certified for, for a customer
    # asking for the vendor's expertise: the rules before partner-shipped fail on conditions
    # checked before any about agreements (the table's order).
    catalog = sample_catalog()
    vendors = [vendor.id for vendor in catalog.vendors]
    routed = 0
    for shipped in (c for c in catalog.components if c.shipped_by == "vendor"):
        agreed = {
            "every vendor": vendors,
            "every other vendor": [v for v in vendors if v != shipped.vendor],
            "none": [],
        }[agreements]
        for version in shipped.certified_for:
            event = ticket_event(
                product={"name": "Red Hat OpenStack Platform", "version": version},
                customer={"vendor_agreements": agreed, "support_level": level},
                needs_vendor_expertise=True,
                components=[component(shipped.id, True, False)],
            )
            v = verdict(event)
            assert v.rule == "partner-shipped"
            text = " ".join(step.reason for step in v.trace).lower()
            assert "agreement" not in text
            assert level not in text
            assert [vendor for vendor in vendors if vendor in text] == [shipped.vendor]
            routed += 1
    assert routed >= 10


@pytest.mark.parametrize(
    ("version", "certified"),
    [("16.2", True), ("16.2.4", True), ("16.20", False), ("16", False), ("17.1", False)],
)
def test_version_prefix_by_dotted_parts(version: str, certified: bool) -> None:
    # Ref.VNX is certified for "16.2" only.
    v = verdict(
        ticket_event(
            product={"name": "RHOSP", "version": version}, components=[component(Ref.VNX, True)]
        )
    )
    assert v.rule == ("partner-shipped" if certified else "uncertified-replace")


def test_major_version_entry_covers_every_minor() -> None:
    catalog = sample_index().catalog
    vnx = next(c for c in catalog.components if c.id == "dell-vnx-cinder")
    major = vnx.model_copy(update={"certified_for": ["17"]})
    assert [major.certified(v) for v in ("17", "17.1", "17.10.3", "16.2", "170")] == [
        True,
        True,
        True,
        False,
        False,
    ]


def test_first_suspected_wins_over_order_and_single() -> None:
    event = ticket_event(
        components=[component(Ref.OVN), component(Ref.PURE, True), component(Ref.NETAPP, True)]
    )
    v = verdict(event)
    assert v.component is not None
    assert v.component.ref == Ref.PURE
    assert "marked suspected" in v.trace[0].reason


def test_single_component_is_in_question_even_unsuspected() -> None:
    v = verdict(ticket_event(components=[component(Ref.PURE)]))
    assert v.rule == "partner-shipped"
    assert "the only component listed" in v.trace[0].reason


def test_refs_match_after_trimming_and_by_catalog_id() -> None:
    assert verdict(ticket_event(components=[component(f"  {Ref.PURE}\t", True)])).rule == (
        "partner-shipped"
    )
    assert verdict(ticket_event(components=[component("pure-flasharray-cinder")])).rule == (
        "partner-shipped"
    )
    # Matching is exact: a different case is another ref.
    assert verdict(ticket_event(components=[component(Ref.PURE.upper())])).rule == (
        "unknown-component"
    )


def test_component_in_question_helper() -> None:
    assert component_in_question([]) is None


CATALOG_WITHOUT_COLLABORATION = """
version: "test-1"
calendars: {default: {start: "09:00", end: "17:00"}}
redhat:
  sla:
    premium: &t {1: {within: PT1H, clock: 24x7}, 2: {within: PT2H, clock: 24x7},
                 3: {within: PT4H, clock: business}, 4: {within: PT8H, clock: business}}
    standard: *t
vendors:
  - {id: lonely, name: Lonely Inc, tsanet_member: false, engineering_relationship: false, sla: *t}
components:
  - {id: lonely-driver, name: Lonely driver, vendor: lonely, kind: cinder-volume-driver,
     shipped_by: redhat, certified_for: ["17.1"]}
"""


def test_redhat_shipped_with_expertise_but_no_way_to_collaborate() -> None:
    index = CatalogIndex.build(parse_catalog(CATALOG_WITHOUT_COLLABORATION))
    event = ticket_event(needs_vendor_expertise=True, components=[component("lonely-driver")])
    v = verdict(event, index)
    assert v.rule == "redhat-shipped"
    assert v.actions == ("collaboration_unavailable",)
    assert "neither a TSANet member nor an engineering partner" in v.trace[-1].reason
    rules = [s.rule for s in v.trace]
    assert rules[-3:] == [
        "redhat-shipped-collaborate",
        "redhat-shipped-engineering",
        "redhat-shipped",
    ]
    assert "lonely is not a TSANet member" in v.trace[-3].reason
    assert "no engineering relationship with lonely" in v.trace[-2].reason
