"""The topic names of one phase, each with the phase's prefix, and the labels of rounds and
baseline variants."""

from __future__ import annotations

from dataclasses import dataclass

from bench.results import RECORD_BATCHES, VALIDATED


@dataclass(frozen=True)
class Topics:
    """The topic names of one phase: every name carries the phase's prefix."""

    prefix: str
    vendors: tuple[str, ...]

    def name(self, base: str) -> str:
        return f"{self.prefix}.{base}"

    @property
    def incoming(self) -> str:
        return self.name("tickets.incoming")

    @property
    def enriched(self) -> str:
        return self.name("tickets.enriched")

    @property
    def deadletter(self) -> str:
        return self.name("tickets.deadletter")

    @property
    def sla(self) -> str:
        return self.name("sla.ownership")

    @property
    def routes(self) -> list[str]:
        partner = [self.name("queue.partner." + v) for v in self.vendors]
        return [self.name("queue.redhat"), self.name("collab.tsanet"), *partner]

    def all(self) -> list[str]:
        return [self.incoming, self.enriched, self.deadletter, self.sla, *self.routes]

    def env(self) -> dict[str, str]:
        return {
            "TOPIC_INCOMING": self.incoming,
            "TOPIC_ENRICHED": self.enriched,
            "TOPIC_REDHAT": self.name("queue.redhat"),
            "TOPIC_PARTNER_PREFIX": self.name("queue.partner."),
            "TOPIC_TSANET": self.name("collab.tsanet"),
            "TOPIC_SLA": self.sla,
            "TOPIC_DEADLETTER": self.deadletter,
        }


def round_suffix(rnd: int) -> str:
    return "" if rnd == 1 else f"-r{rnd}"


def variant(record_batches: bool, validate: bool) -> str:
    if validate:
        assert record_batches, "the validating baseline is the record-batch one plus validation"
        return VALIDATED
    return RECORD_BATCHES if record_batches else ""
