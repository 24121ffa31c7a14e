"""Pure: the rule table of contract section 4. An enriched ticket in, the decision's rule,
route, owner and actions out, with a trace of every rule evaluated and why it did or did not
match. No I/O, no clock.

Reasons are written for the support engineer reading the trace. A rule that fails names the
first condition that failed, and conditions are checked in the table's order, so a ticket on
a partner's topic never has its customer's agreements or Red Hat contract in its trace (the
certified check fails first for every rule that looks at them).
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


@dataclass(slots=True)  # not frozen: built per ticket, and frozen init costs (schemas/decision.py)
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


class _Facts(NamedTuple):
    """Everything the rule table looks at, and nothing else: the outcome is a function of
    these values alone, which is what lets `decide` memoise it (tickets repeat them). A named
    tuple: built and hashed per ticket, it must be cheap."""

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


# A rule's test returns None when it matches, else the reason it does not.
Test = Callable[[_Facts], "str | None"]


def _first_failure(*checks: tuple[bool, str]) -> str | None:
    for holds, reason_if_not in checks:
        if not holds:
            return reason_if_not
    return None


def _uncertified(f: _Facts) -> tuple[bool, str]:
    return not f.certified, f"{f.id} is certified for {f.version}"


def _removable_unknown_or_true(f: _Facts) -> tuple[bool, str]:
    return f.removable is not False, "the component cannot be removed"


def _not_removable(f: _Facts) -> tuple[bool, str]:
    removable = "unknown" if f.removable is None else "true"
    return f.removable is False, f"removable is {removable}"


def _uncertified_collaborate(f: _Facts) -> str | None:
    return _first_failure(
        _uncertified(f),
        _not_removable(f),
        (f.tsanet, f"{f.vendor} is not a TSANet member"),
        (f.agreement, f"the customer has no support agreement with {f.vendor}"),
    )


def _shipped_by_redhat(f: _Facts) -> tuple[bool, str]:
    return f.shipped_by == "redhat", f"{f.id} is shipped by {f.vendor}"


def _expertise(f: _Facts) -> tuple[bool, str]:
    return f.expertise, "the vendor's expertise is not requested"


_RULES: tuple[tuple[RuleId, Route, Party, Test, str], ...] = (
    (
        "redhat-component",
        "redhat",
        "redhat",
        lambda f: _first_failure((f.vendor == REDHAT, f"the vendor is {f.vendor}, not Red Hat")),
        "{id} is Red Hat's own component",
    ),
    (
        "uncertified-replace",
        "redhat",
        "redhat",
        lambda f: _first_failure(_uncertified(f), _removable_unknown_or_true(f)),
        "{id} is not certified for {version} and removable is {removable}: "
        "Red Hat may ask to replace it as a diagnostic step",
    ),
    (
        "uncertified-collaborate",
        "tsanet",
        "redhat",
        _uncertified_collaborate,
        "{id} is not certified for {version} and cannot be removed; {vendor} is a TSANet "
        "member and the customer has an agreement with it: Red Hat collaborates via TSANet",
    ),
    (
        "uncertified-no-collaboration",
        "redhat",
        "redhat",
        lambda f: _first_failure(_uncertified(f), _not_removable(f)),
        "{id} is not certified for {version} and cannot be removed, and no TSANet "
        "collaboration with {vendor} is possible",
    ),
    (
        "partner-shipped",
        "partner",
        "vendor",
        lambda f: _first_failure((f.shipped_by == "vendor", f"{f.id} is shipped by Red Hat")),
        "{id} is certified for {version} and shipped by {vendor}: {vendor} is the primary contact",
    ),
    (
        "redhat-shipped-collaborate",
        "tsanet",
        "redhat",
        lambda f: _first_failure(
            _shipped_by_redhat(f), _expertise(f), (f.tsanet, f"{f.vendor} is not a TSANet member")
        ),
        "{id} is certified and shipped by Red Hat; the vendor's expertise is requested and "
        "{vendor} is a TSANet member: Red Hat collaborates via TSANet",
    ),
    (
        "redhat-shipped-engineering",
        "redhat",
        "redhat",
        lambda f: _first_failure(
            _shipped_by_redhat(f),
            _expertise(f),
            (not f.tsanet, f"{f.vendor} is a TSANet member"),
            (f.engineering, f"Red Hat has no engineering relationship with {f.vendor}"),
        ),
        "{id} is certified and shipped by Red Hat; the vendor's expertise is requested and "
        "Red Hat has an engineering relationship with {vendor}",
    ),
    (
        "redhat-shipped",
        "redhat",
        "redhat",
        lambda f: _first_failure(_shipped_by_redhat(f)),
        "{id} is certified for {version} and shipped by Red Hat: Red Hat is the primary contact",
    ),
)


def _actions(rule: RuleId, facts: _Facts) -> tuple[Action, ...]:
    if rule in {"no-component", "unknown-component"}:
        return ("triage",)
    if rule == "uncertified-replace":
        return ("request_component_replacement",)
    if rule == "uncertified-no-collaboration":
        return ("collaboration_unavailable",)
    if rule == "redhat-shipped-engineering":
        return ("engage_partner_engineering",)
    if rule == "redhat-shipped" and facts.expertise:
        return ("collaboration_unavailable",)
    return ()


def _facts(ticket: EnrichedTicket, component: EnrichedComponent | None) -> _Facts:
    inner = ticket.ticket
    match = component.catalog if component else None
    vendor = match.vendor if match else None
    vendor_id = match.vendor_id if match else ""
    return _Facts(
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
    """Apply the rule table: the first rule that matches decides."""
    component = component_in_question(ticket.components)
    rule, route, owner, actions, trace = _evaluate(_facts(ticket, component))
    return Verdict(rule, route, owner, actions, component, trace)


_Outcome = tuple[RuleId, Route, Party, tuple[Action, ...], tuple[TraceStep, ...]]


# Shared between remembered outcomes: many steps read the same for different facts, and a
# step is a model of a few hundred bytes (the memo below holds thousands of traces).
@lru_cache(maxsize=16_384)
def _step(rule: RuleId, *, matched: bool, reason: str) -> TraceStep:
    return TraceStep(rule=rule, matched=matched, reason=reason)


# Bounded: refs are free text, but tickets mostly name catalog components, and a support
# queue sees the same few combinations of facts over and over.
@lru_cache(maxsize=4096)
def _evaluate(f: _Facts) -> _Outcome:
    trace: list[TraceStep] = []

    def outcome(rule: RuleId, route: Route, owner: Party) -> _Outcome:
        return rule, route, owner, _actions(rule, f), tuple(trace)

    if f.ref is None:
        trace.append(
            _step(
                "no-component",
                matched=True,
                reason=f"no component is marked suspected and {f.listed} are listed",
            )
        )
        return outcome("no-component", "redhat", "redhat")
    how = "marked suspected" if f.suspected else "the only component listed"
    trace.append(
        _step(
            "no-component",
            matched=False,
            reason=f"the component in question is {f.ref!r} ({how})",
        )
    )
    if f.id is None:
        trace.append(
            _step(
                "unknown-component",
                matched=True,
                reason=f"{f.ref.strip()!r} is not in catalog {f.catalog_version}",
            )
        )
        return outcome("unknown-component", "redhat", "redhat")
    trace.append(
        _step(
            "unknown-component",
            matched=False,
            reason=f"{f.ref.strip()!r} is catalog component {f.id} of vendor {f.vendor}",
        )
    )
    for rule, route, owner, test, matched_reason in _RULES:
        failure = test(f)
        if failure is None:
            removable = "unknown" if f.removable is None else str(f.removable)
            reason = matched_reason.format(
                id=f.id, version=f.version, vendor=f.vendor, removable=removable.lower()
            )
            if rule == "redhat-shipped" and f.expertise:
                reason += (
                    f"; the vendor's expertise is requested but {f.vendor} is neither "
                    "a TSANet member nor an engineering partner"
                )
            trace.append(_step(rule, matched=True, reason=reason))
            return outcome(rule, route, owner)
        trace.append(_step(rule, matched=False, reason=failure))
    raise AssertionError("redhat-shipped matches every certified component")  # pragma: no cover
