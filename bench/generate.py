"""Realistic ticket events for the bench, drawn from the sample catalog and sample tickets.

Every event is a CloudEvent (`support.ticket.created` or `.updated`) whose data is a ticket as
the README's "Topics and events" describes it. The sample events in
services/samples/tickets.json are the templates (their summaries, descriptions, contacts and
customers); the generator varies ticket ids, revisions, customers, severities, product versions
and components. Components are picked from the catalog so that each event lands on a routing
rule chosen up front (all ten rule ids of the README's rule table appear), and `verify()`
checks those expectations against the services' own pure policy code.

Size: about 850 bytes on average (`target_bytes`; the description is cut to fit). The contract's
mandatory fields alone (envelope, customer, product, a component, timestamps) take about 700
bytes, so a realistic ticket with a line or two of description cannot be much smaller.

Reproducible (seeded), unique event ids, key = ticket_id. Updates (about 15%) raise the
revision of an earlier ticket and come after it, on the same key, so no event is stale or a
duplicate: every event is routed.
"""

from __future__ import annotations

import random
import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, get_args
from zoneinfo import ZoneInfo

import orjson
import yaml

from schemas.decision import RuleId
from schemas.events import TicketEvent
from services.enricher.catalog import load_catalog
from services.enricher.enrich import CatalogIndex, enrich
from services.router.policy import decide

ROOT = Path(__file__).resolve().parent.parent
CATALOG_PATH = ROOT / "services" / "samples" / "catalog.yaml"
SAMPLES_PATH = ROOT / "services" / "samples" / "tickets.json"
HEADERS = [("content-type", b"application/cloudevents+json")]

RULES: tuple[str, ...] = get_args(RuleId)
# A plausible mix: most tickets are about Red Hat's own components or certified drivers; the
# rarer paths (uncertified, TSANet) are still a few percent each.
RULE_WEIGHTS = {
    "no-component": 14,
    "unknown-component": 6,
    "redhat-component": 20,
    "uncertified-replace": 5,
    "uncertified-collaborate": 4,
    "uncertified-no-collaboration": 4,
    "partner-shipped": 18,
    "redhat-shipped-collaborate": 7,
    "redhat-shipped-engineering": 4,
    "redhat-shipped": 18,
}
# The rule of each sample event (services/samples/EXPECTED.md): its text is the template.
SAMPLE_RULES = {
    "523b2b80-9b37-515c-b24e-ce24c73259e0": "no-component",
    "4180fa1e-aad1-524d-9d63-f489c876aaf1": "redhat-shipped-collaborate",
    "b7cfec4e-2b4d-587f-9be5-dfe4adfc4ccd": "no-component",
    "62f9c740-7dd8-58d8-b9fb-4b24706f3551": "unknown-component",
    "5c1bfd24-b713-5a3b-94ad-a1202d984601": "redhat-component",
    "4f772275-e2c5-526e-993a-cc1ab1e7fd7f": "uncertified-replace",
    "b601b256-caf8-580c-a33a-dacc74645e50": "uncertified-replace",
    "18bc992e-3277-514f-aa1f-1c67180e2522": "uncertified-collaborate",
    "bbf92343-9a15-541a-9e70-ed99545fd858": "uncertified-no-collaboration",
    "fd966b95-d105-57e8-89b2-6588b19987a8": "uncertified-no-collaboration",
    "61e6e60c-ac14-5759-8f3f-cc8d1214b187": "partner-shipped",
    "b20c0753-56bd-5a96-a5ba-18c8d194d4e1": "partner-shipped",
    "49a89b70-c14b-507a-a317-436594233cdb": "redhat-shipped-engineering",
    "1dea098c-9912-54f3-a6fe-862b4b5ce9e2": "redhat-shipped",
    "95efd82f-6328-5dab-b469-aa963ee29cef": "partner-shipped",
}
# Real upstream drivers that the sample catalog does not list.
UNKNOWN_REFS = (
    "cinder.volume.drivers.synology.synology_iscsi.SynoISCSIDriver",
    "cinder.volume.drivers.qnap.QnapISCSIDriver",
    "cinder.volume.drivers.storpool.StorPoolDriver",
    "cinder.volume.drivers.datera.datera_iscsi.DateraDriver",
    "manila.share.drivers.zfsonlinux.driver.ZFSonLinuxShareDriver",
    "networking_bgpvpn.neutron.services.service_drivers.bagpipe.bagpipe.BaGPipeBGPVPNDriver",
)
VERSIONS = ("16.2", "16.2.6", "17.1", "17.1.4", "17.1.3", "18.0", "18.0.2")
PLACES = (
    ("US", "America/Chicago"),
    ("US", "America/New_York"),
    ("US", "America/Los_Angeles"),
    ("CA", "America/Toronto"),
    ("DE", "Europe/Berlin"),
    ("FR", "Europe/Paris"),
    ("GB", "Europe/London"),
    ("JP", "Asia/Tokyo"),
    ("IN", "Asia/Kolkata"),
    ("BR", "America/Sao_Paulo"),
    ("AU", "Australia/Sydney"),
    ("SG", "Asia/Singapore"),
    ("KR", "Asia/Seoul"),
)
COMPANY_WORDS = (
    "Prairie",
    "Northwind",
    "Harbor",
    "Summit",
    "Blue Fjord",
    "Keystone",
    "Meridian",
    "Copperline",
    "Aurora",
    "Tidewater",
    "Granite",
    "Lakeshore",
)
COMPANY_KINDS = ("Freight", "Telecom", "Bank", "Cloud", "Health", "Energy", "Labs", "Retail")
FIRST = ("Dana", "Kenji", "Priya", "Lukas", "Ana", "Omar", "Chloe", "Mateus", "Mei", "Sam")
LAST = ("Whitfield", "Sato", "Iyer", "Becker", "Silva", "Haddad", "Martin", "Costa", "Lin")
MIN_DESCRIPTION = 40  # a line or two, even when the rest of the ticket is long
START = datetime(2026, 11, 16, tzinfo=ZoneInfo("UTC"))


@dataclass(frozen=True, slots=True)
class Event:
    """One generated event: what goes on the wire and what we know it should become."""

    key: bytes
    value: bytes
    ticket_id: str
    revision: int
    rule: str


@dataclass(frozen=True, slots=True)
class _Component:
    id: str
    refs: tuple[str, ...]
    vendor: str
    shipped_by: str
    certified_for: tuple[str, ...]
    tsanet: bool
    engineering: bool

    def certified(self, version: str) -> bool:
        parts = version.split(".")
        return any(parts[: len(c.split("."))] == c.split(".") for c in self.certified_for)


def _covers(component: _Component, version: str, rule: str) -> bool:
    """Whether this component, as the one in question on this version, can give `rule`
    (given the right `removable`, `needs_vendor_expertise` and agreements, set later)."""
    if component.vendor == "redhat":
        return rule == "redhat-component"
    if not component.certified(version):
        if rule == "uncertified-collaborate":
            return component.tsanet
        return rule in ("uncertified-replace", "uncertified-no-collaboration")
    if component.shipped_by == "vendor":
        return rule == "partner-shipped"
    if rule == "redhat-shipped-collaborate":
        return component.tsanet
    if rule == "redhat-shipped-engineering":
        return not component.tsanet and component.engineering
    return rule == "redhat-shipped"


def load_components(path: Path = CATALOG_PATH) -> list[_Component]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    vendors = {v["id"]: v for v in data["vendors"]}
    out = []
    for c in data["components"]:
        v = vendors.get(c["vendor"], {})
        out.append(
            _Component(
                id=c["id"],
                refs=tuple(c.get("refs") or ()),
                vendor=c["vendor"],
                shipped_by=c["shipped_by"],
                certified_for=tuple(str(x) for x in c.get("certified_for") or ()),
                tsanet=bool(v.get("tsanet_member")),
                engineering=bool(v.get("engineering_relationship")),
            )
        )
    return out


def partner_vendors(path: Path = CATALOG_PATH) -> list[str]:
    """Vendors with a topic of their own (at least one component they ship)."""
    return sorted({c.vendor for c in load_components(path) if c.shipped_by == "vendor"})


class TicketGenerator:
    """Seeded stream of unique, valid ticket events; see the module docstring."""

    def __init__(
        self,
        seed: int = 1,
        target_bytes: int = 850,
        update_share: float = 0.15,
        catalog_path: Path = CATALOG_PATH,
        samples_path: Path = SAMPLES_PATH,
    ) -> None:
        self._rng = random.Random(seed)
        self._target = target_bytes
        self._update_share = update_share
        self._components = load_components(catalog_path)
        self._vendor_ids = sorted({c.vendor for c in self._components} - {"redhat"})
        samples = orjson.loads(samples_path.read_bytes())
        self._templates: dict[str, list[dict[str, Any]]] = {r: [] for r in RULES}
        for sample in samples:
            self._templates[SAMPLE_RULES.get(sample["id"], "no-component")].append(sample["data"])
        every = [s["data"] for s in samples]
        for rule, found in self._templates.items():
            if not found:  # a rule without its own sample borrows any sample's text
                self._templates[rule] = every
        self._candidates = {
            rule: [(c, v) for c in self._components for v in VERSIONS if _covers(c, v, rule)]
            for rule in RULES
        }
        missing = [r for r in RULES if r not in ("no-component", "unknown-component")]
        missing = [r for r in missing if not self._candidates[r]]
        if missing:
            raise ValueError(f"the catalog cannot produce rules {missing}")
        self._rules = list(RULE_WEIGHTS)
        self._weights = [RULE_WEIGHTS[r] for r in self._rules]
        self._next_ticket = 5_000_000 + self._rng.randrange(1_000_000) * 10
        self._tickets: list[dict[str, Any]] = []  # created tickets, to update later
        self._count = 0

    # --- pieces ------------------------------------------------------------------------------

    def _uuid(self) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def _customer(self) -> dict[str, Any]:
        rng = self._rng
        country, tz = rng.choice(PLACES)
        name = f"{rng.choice(COMPANY_WORDS)} {rng.choice(COMPANY_KINDS)}"
        agreements = rng.sample(self._vendor_ids, k=rng.choice((0, 0, 1, 1, 2)))
        return {
            "account_id": f"ACC-{rng.randrange(10**7):07d}",
            "name": name,
            "support_level": rng.choice(("premium", "standard", "standard")),
            "country": country,
            "timezone": tz,
            "vendor_agreements": agreements,
        }

    def _ref(self, component: _Component) -> str:
        # Deployments name drivers by class path; engineers often use the catalog id.
        if component.refs and self._rng.random() < 0.3:
            return self._rng.choice(component.refs)
        return component.id

    def _components_for(
        self, rule: str, ticket: dict[str, Any]
    ) -> tuple[list[dict[str, Any]], str, bool]:
        """The components list, the product version and needs_vendor_expertise for `rule`."""
        rng = self._rng
        version = rng.choice(VERSIONS)
        expertise = rng.random() < 0.2
        if rule == "no-component":
            if rng.random() < 0.5:
                return [], version, expertise
            picks = rng.sample(self._components, k=2)
            comps = [{"ref": self._ref(c), "suspected": False, "removable": None} for c in picks]
            return comps, version, expertise
        if rule == "unknown-component":
            chosen = {"ref": rng.choice(UNKNOWN_REFS), "removable": rng.choice((None, True))}
        else:
            component, version = rng.choice(self._candidates[rule])
            removable: bool | None
            if rule == "uncertified-replace":
                removable = rng.choice((None, True))
            elif rule.startswith("uncertified"):
                removable = False
            else:
                removable = rng.choice((None, False, False, True))
            chosen = {"ref": self._ref(component), "removable": removable}
            agreements: list[str] = ticket["customer"]["vendor_agreements"]
            if rule == "uncertified-collaborate" and component.vendor not in agreements:
                agreements.append(component.vendor)
            if rule == "uncertified-no-collaboration" and component.tsanet:
                while component.vendor in agreements:
                    agreements.remove(component.vendor)
            if rule in ("redhat-shipped-collaborate", "redhat-shipped-engineering"):
                expertise = True
            elif rule == "redhat-shipped":
                expertise = False
        if rng.random() < 0.75:
            return [{**chosen, "suspected": rng.random() < 0.5}], version, expertise
        # Suspected, next to a component that is not.
        other = rng.choice(self._components)
        bystander: dict[str, bool | str | None] = {
            "ref": self._ref(other),
            "suspected": False,
            "removable": None,
        }
        comps = [bystander, {**chosen, "suspected": True}]
        if rng.random() < 0.5:
            comps.reverse()
        return comps, version, expertise

    def _text(self, template: str, budget: int) -> str:
        if budget >= len(template):
            return template
        cut = template[: max(0, budget)]
        return cut.rsplit(" ", 1)[0] if " " in cut else cut

    # --- events -------------------------------------------------------------------------------

    def event(self) -> Event:
        rng = self._rng
        rule = rng.choices(self._rules, self._weights)[0]
        template = rng.choice(self._templates[rule])
        update = bool(self._tickets) and rng.random() < self._update_share
        if update:
            previous = self._tickets[rng.randrange(len(self._tickets))]
            ticket = {
                "ticket_id": previous["ticket_id"],
                "revision": previous["revision"] + 1,
                "opened_at": previous["opened_at"],
                "customer": {
                    **previous["customer"],
                    "vendor_agreements": list(previous["customer"]["vendor_agreements"]),
                },
            }
            previous["revision"] += 1
            opened = datetime.fromisoformat(previous["opened_at"])
            time = opened + timedelta(minutes=rng.randrange(5, 3 * 24 * 60))
        else:
            self._next_ticket += rng.randrange(1, 7)
            customer = self._customer()
            opened = (START + timedelta(seconds=rng.randrange(14 * 24 * 3600))).astimezone(
                ZoneInfo(customer["timezone"])
            )
            ticket = {
                "ticket_id": f"{self._next_ticket:08d}",
                "revision": 1,
                "opened_at": opened.isoformat(),
                "customer": customer,
            }
            self._tickets.append(
                {k: ticket[k] for k in ("ticket_id", "revision", "opened_at", "customer")}
            )
            time = opened + timedelta(seconds=rng.randrange(2, 90))
        components, version, expertise = self._components_for(rule, ticket)
        data: dict[str, Any] = {
            "ticket_id": ticket["ticket_id"],
            "revision": ticket["revision"],
            "opened_at": ticket["opened_at"],
            "severity": rng.choice((1, 2, 2, 3, 3, 3, 4, 4)),
            "summary": self._text(template["summary"], rng.randrange(40, 90)),
            "description": "",
            "product": {"name": "Red Hat OpenStack Platform", "version": version},
            "customer": ticket["customer"],
            "components": components,
            "needs_vendor_expertise": expertise,
        }
        if rng.random() < 0.25:
            data["contact"] = {
                "name": f"{rng.choice(FIRST)} {rng.choice(LAST)}",
                "email": f"ops{rng.randrange(100)}@customer.example",
            }
        envelope = {
            "specversion": "1.0",
            "id": self._uuid(),
            "source": "/ticketing/bench",
            "type": "support.ticket.updated" if update else "support.ticket.created",
            "time": time.isoformat(),
            "subject": data["ticket_id"],
            "datacontenttype": "application/json",
            "data": data,
        }
        bare = len(orjson.dumps(envelope))
        budget = max(MIN_DESCRIPTION, self._target - bare + rng.randrange(-60, 61))
        data["description"] = self._text(template["description"], budget)
        self._count += 1
        return Event(
            key=data["ticket_id"].encode(),
            value=orjson.dumps(envelope),
            ticket_id=data["ticket_id"],
            revision=data["revision"],
            rule=rule,
        )

    def events(self, n: int) -> list[Event]:
        return [self.event() for _ in range(n)]


def rule_mix(events: Iterable[Event]) -> Counter[str]:
    return Counter(e.rule for e in events)


def verify(events: Sequence[Event], limit: int = 2000) -> tuple[int, int, list[str]]:
    """Run up to `limit` events through the services' own validation, enrichment and policy
    (pure code, no broker): (checked, agreeing, a few disagreements)."""
    index = CatalogIndex.build(load_catalog(CATALOG_PATH))
    checked = agree = 0
    problems: list[str] = []
    step = max(1, len(events) // limit)
    for e in events[::step][:limit]:
        checked += 1
        try:
            rule = decide(enrich(TicketEvent.model_validate_json(e.value), index)).rule
        except Exception as error:
            problems.append(f"{e.ticket_id}: {type(error).__name__}: {str(error)[:200]}")
            continue
        if rule == e.rule:
            agree += 1
        else:
            problems.append(f"{e.ticket_id} r{e.revision}: expected {e.rule}, policy says {rule}")
    return checked, agree, problems[:5]


if __name__ == "__main__":
    gen = TicketGenerator()
    sample = gen.events(5000)
    sizes = sorted(len(e.value) for e in sample)
    print(f"5000 events: mean {sum(sizes) / len(sizes):.0f} B, min {sizes[0]}, max {sizes[-1]}")
    print(dict(rule_mix(sample)))
    print(verify(sample))
    print(sample[0].value.decode())
