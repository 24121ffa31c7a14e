"""Pure: the routing rules of the README ("The routing rules in plain words") as a table. An
enriched ticket in, the decision's rule, route, owner and actions out, with a trace of every
rule evaluated and why it did or did not match. No I/O, no clock.

Each rule is one row of `RULES`: its conditions, each with the reason given when it fails,
the reason given when it matches, and its actions. The first rule whose conditions all hold
decides. A rule that does not match names its first condition that fails, and rules and their
conditions are checked in the table's order, so a ticket on a partner's topic never has its
customer's agreements or Red Hat contract in its trace: every rule before `partner-shipped`
that looks at them first asks that the component be uncertified, and a partner-shipped one is
certified. Reasons are written for the support engineer reading the trace: templates filled
in from the ticket's `Facts`, as `_words` says them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

from schemas.catalog import REDHAT
from schemas.decision import (
    Action,
    EnrichedComponent,
    EnrichedTicket,
    Party,
    Route,
    RuleId,
    TraceStep,
)


class Facts(NamedTuple):
    """Everything the rules look at, and nothing else: the outcome is a function of these
    values alone."""

    catalog_version: str
    listed: int
    """Components listed; only when none is in question (it is then in the trace)."""
    ref: str | None
    """The component in question as the ticket names it; None when there is none."""
    suspected: bool
    removable: bool | None
    id: str | None
    """The catalog component; None when the catalog does not know the ref."""
    vendor: str
    shipped_by: str
    certified: bool
    tsanet: bool
    engineering: bool
    version: str
    expertise: bool
    agreement: bool


@dataclass(frozen=True)
class Condition:
    holds: Callable[[Facts], bool]
    otherwise: str
    """The reason a rule does not match when this condition fails."""


@dataclass(frozen=True)
class Flag:
    """A note a matching rule adds to its reason, with actions of its own, when `applies`."""

    applies: Callable[[Facts], bool]
    reason: str
    actions: tuple[Action, ...]


@dataclass(frozen=True)
class Rule:
    id: RuleId
    route: Route
    owner: Party
    when: tuple[Condition, ...]
    because: str
    """The reason given when every condition holds."""
    actions: tuple[Action, ...] = ()
    flag: Flag | None = None


UNCERTIFIED = Condition(lambda f: not f.certified, "{id} is certified for {version}")
NOT_REMOVABLE = Condition(lambda f: f.removable is False, "removable is {removable}")
TSANET_MEMBER = Condition(lambda f: f.tsanet, "{vendor} is not a TSANet member")
SHIPPED_BY_REDHAT = Condition(lambda f: f.shipped_by == "redhat", "{id} is shipped by {vendor}")
EXPERTISE_REQUESTED = Condition(lambda f: f.expertise, "the vendor's expertise is not requested")

RULES: tuple[Rule, ...] = (
    Rule(
        "no-component",
        route="redhat",
        owner="redhat",
        when=(Condition(lambda f: f.ref is None, "the component in question is {ref!r} ({how})"),),
        because="no component is marked suspected and {listed} are listed",
        actions=("triage",),
    ),
    Rule(
        "unknown-component",
        route="redhat",
        owner="redhat",
        when=(
            Condition(
                lambda f: f.id is None, "{named!r} is catalog component {id} of vendor {vendor}"
            ),
        ),
        because="{named!r} is not in catalog {catalog_version}",
        actions=("triage",),
    ),
    Rule(
        "redhat-component",
        route="redhat",
        owner="redhat",
        when=(Condition(lambda f: f.vendor == REDHAT, "the vendor is {vendor}, not Red Hat"),),
        because="{id} is Red Hat's own component",
    ),
    Rule(
        "uncertified-replace",
        route="redhat",
        owner="redhat",
        when=(
            UNCERTIFIED,
            Condition(lambda f: f.removable is not False, "the component cannot be removed"),
        ),
        because="{id} is not certified for {version} and removable is {removable}: "
        "Red Hat may ask to replace it as a diagnostic step",
        actions=("request_component_replacement",),
    ),
    Rule(
        "uncertified-collaborate",
        route="tsanet",
        owner="redhat",
        when=(
            UNCERTIFIED,
            NOT_REMOVABLE,
            TSANET_MEMBER,
            Condition(lambda f: f.agreement, "the customer has no support agreement with {vendor}"),
        ),
        because="{id} is not certified for {version} and cannot be removed; {vendor} is a "
        "TSANet member and the customer has an agreement with it: Red Hat collaborates via TSANet",
    ),
    Rule(
        "uncertified-no-collaboration",
        route="redhat",
        owner="redhat",
        when=(UNCERTIFIED, NOT_REMOVABLE),
        because="{id} is not certified for {version} and cannot be removed, and no TSANet "
        "collaboration with {vendor} is possible",
        actions=("collaboration_unavailable",),
    ),
    Rule(
        "partner-shipped",
        route="partner",
        owner="vendor",
        when=(Condition(lambda f: f.shipped_by == "vendor", "{id} is shipped by Red Hat"),),
        because="{id} is certified for {version} and shipped by {vendor}: "
        "{vendor} is the primary contact",
    ),
    Rule(
        "redhat-shipped-collaborate",
        route="tsanet",
        owner="redhat",
        when=(SHIPPED_BY_REDHAT, EXPERTISE_REQUESTED, TSANET_MEMBER),
        because="{id} is certified and shipped by Red Hat; the vendor's expertise is requested "
        "and {vendor} is a TSANet member: Red Hat collaborates via TSANet",
    ),
    Rule(
        "redhat-shipped-engineering",
        route="redhat",
        owner="redhat",
        when=(
            SHIPPED_BY_REDHAT,
            EXPERTISE_REQUESTED,
            Condition(lambda f: not f.tsanet, "{vendor} is a TSANet member"),
            Condition(
                lambda f: f.engineering, "Red Hat has no engineering relationship with {vendor}"
            ),
        ),
        because="{id} is certified and shipped by Red Hat; the vendor's expertise is requested "
        "and Red Hat has an engineering relationship with {vendor}",
        actions=("engage_partner_engineering",),
    ),
    Rule(
        "redhat-shipped",
        route="redhat",
        owner="redhat",
        when=(SHIPPED_BY_REDHAT,),
        because="{id} is certified for {version} and shipped by Red Hat: "
        "Red Hat is the primary contact",
        flag=Flag(
            lambda f: f.expertise,
            "; the vendor's expertise is requested but {vendor} is neither a TSANet member "
            "nor an engineering partner",
            actions=("collaboration_unavailable",),
        ),
    ),
)


class Outcome(NamedTuple):
    rule: RuleId
    route: Route
    owner: Party
    actions: tuple[Action, ...]
    trace: tuple[TraceStep, ...]


def _words(f: Facts) -> dict[str, object]:
    """The facts as the reasons say them."""
    words: dict[str, object] = f._asdict()
    words["how"] = "marked suspected" if f.suspected else "the only component listed"
    words["named"] = f.ref.strip() if f.ref is not None else None
    words["removable"] = "unknown" if f.removable is None else str(f.removable).lower()
    return words


# Shared between remembered outcomes: many steps read the same for different facts (the same
# component, version and vendor), and the memo below holds thousands of traces.
@lru_cache(maxsize=16_384)
def _step(rule: RuleId, *, matched: bool, reason: str) -> TraceStep:
    return TraceStep(rule=rule, matched=matched, reason=reason)


def _first_failed(conditions: tuple[Condition, ...], facts: Facts) -> Condition | None:
    for condition in conditions:
        if not condition.holds(facts):
            return condition
    return None


def evaluate(facts: Facts) -> Outcome:
    """Apply the rule table: the first rule whose conditions all hold decides."""
    words = _words(facts)
    trace: list[TraceStep] = []
    for rule in RULES:
        failed = _first_failed(rule.when, facts)
        if failed is not None:
            trace.append(_step(rule.id, matched=False, reason=failed.otherwise.format_map(words)))
            continue
        reason, actions = rule.because, rule.actions
        if rule.flag is not None and rule.flag.applies(facts):
            reason, actions = reason + rule.flag.reason, actions + rule.flag.actions
        trace.append(_step(rule.id, matched=True, reason=reason.format_map(words)))
        return Outcome(rule.id, rule.route, rule.owner, actions, tuple(trace))
    raise AssertionError("redhat-shipped matches every certified component")  # pragma: no cover


# Tickets repeat the same few combinations of facts (a support queue sees the same components,
# versions and customers over and over), so outcomes are remembered. Bounded: refs are free
# text.
_remembered_evaluate = lru_cache(maxsize=4096)(evaluate)


@dataclass(slots=True)
class Verdict:
    """The outcome of the rule table for one ticket."""

    rule: RuleId
    route: Route
    owner: Party
    actions: tuple[Action, ...]
    component: EnrichedComponent | None
    trace: tuple[TraceStep, ...]

    @property
    def vendor_id(self) -> str | None:
        match = self.component.catalog if self.component else None
        return match.vendor_id if match and match.vendor_id != REDHAT else None


def component_in_question(components: Sequence[EnrichedComponent]) -> EnrichedComponent | None:
    """The first component marked suspected; else the only one listed; else none."""
    for component in components:
        if component.suspected:
            return component
    return components[0] if len(components) == 1 else None


def facts_of(ticket: EnrichedTicket, component: EnrichedComponent | None) -> Facts:
    """What the rules look at, of `ticket` and its component in question."""
    inner = ticket.ticket
    match = component.catalog if component else None
    vendor = match.vendor if match else None
    vendor_id = match.vendor_id if match else ""
    return Facts(
        catalog_version=ticket.catalog_version,
        listed=len(ticket.components) if component is None else 0,
        ref=component.ref if component else None,
        suspected=component.suspected if component else False,
        removable=component.removable if component else None,
        id=match.id if match else None,
        vendor=vendor_id,
        shipped_by=match.shipped_by if match else "",
        certified=match.certified if match else False,
        tsanet=bool(vendor and vendor.tsanet_member),
        engineering=bool(vendor and vendor.engineering_relationship),
        version=inner.product.version,
        expertise=inner.needs_vendor_expertise,
        agreement=bool(vendor_id) and vendor_id in inner.customer.vendor_agreements,
    )


def decide(ticket: EnrichedTicket) -> Verdict:
    """Apply the rule table to the ticket's component in question."""
    component = component_in_question(ticket.components)
    outcome = _remembered_evaluate(facts_of(ticket, component))
    return Verdict(
        outcome.rule, outcome.route, outcome.owner, outcome.actions, component, outcome.trace
    )
