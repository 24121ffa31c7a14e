"""The certification catalog (README, "The catalog"): vendors, components, SLA tables,
calendars."""

from __future__ import annotations

import re
from collections import Counter
from datetime import time, timedelta
from functools import cached_property, lru_cache
from typing import Annotated, Literal, Self, cast

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    field_validator,
    model_serializer,
    model_validator,
)

from schemas.ticket import VERSION_PATTERN, Country, SupportLevel

REDHAT = "redhat"
VENDOR_ID_PATTERN = r"^[a-z0-9][a-z0-9-]{0,39}$"
Clock = Literal["24x7", "business"]
ShippedBy = Literal["redhat", "vendor"]
SEVERITIES = (1, 2, 3, 4)

_DURATION = re.compile(r"^P(?:(?P<d>\d+)D)?(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+)S)?)?$")


class CatalogModel(BaseModel):
    """A value of the catalog: frozen, and shared by every ticket that uses it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @cached_property
    def cached_json(self) -> bytes:
        """Its JSON, written on first use and kept with the value, which is frozen (pydantic
        supports cached properties on models): the enricher writes the same few targets and
        calendars of its catalog into every enriched ticket."""
        return self.__pydantic_serializer__.to_json(self)


def _parse_duration(value: str) -> tuple[int, timedelta]:
    match = _DURATION.match(value)
    if not match or value in {"P", "PT"} or value.endswith("T"):
        raise ValueError(f"{value!r} is not an ISO 8601 duration such as PT4H or P1D")
    parts = {k: int(v) if v else 0 for k, v in match.groupdict().items()}
    return parts["d"], timedelta(hours=parts["h"], minutes=parts["m"], seconds=parts["s"])


class Duration(CatalogModel):
    """An ISO 8601 duration that keeps whole days apart from hours.

    Under a business clock a day is one business day, not 24 hours, so `P1D` and `PT24H`
    must stay different.
    """

    days: int = 0
    time: timedelta = timedelta(0)

    @model_validator(mode="wrap")
    @classmethod
    def _parse(cls, value: object, handler: ModelWrapValidatorHandler[Self]) -> Self:
        # The same few targets arrive on every enriched ticket: parsed once, shared.
        parsed = _duration_from_iso(value) if isinstance(value, str) else _positive(handler(value))
        return cast("Self", parsed)

    @model_serializer
    def _iso(self) -> str:
        return self.iso()

    def iso(self) -> str:
        return _iso(self.days, self.time)

    def words(self) -> str:
        """`1 hour`, `2 business days`, `1 day 4 hours`: for human-readable SLA bases."""
        return _words(self.days, self.time)


def _positive(duration: Duration) -> Duration:
    if duration.days < 0 or duration.time < timedelta(0) or not (duration.days or duration.time):
        raise ValueError("a response target must be longer than zero")
    return duration


@lru_cache(maxsize=256)
def _duration_from_iso(value: str) -> Duration:
    days, clock_time = _parse_duration(value)
    return _positive(Duration.model_construct(days=days, time=clock_time))


@lru_cache(maxsize=256)
def _iso(days: int, clock_time: timedelta) -> str:
    seconds = int(clock_time.total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    clock = "".join(f"{n}{u}" for n, u in ((hours, "H"), (minutes, "M"), (secs, "S")) if n)
    return "P" + (f"{days}D" if days else "") + (f"T{clock}" if clock else "")


@lru_cache(maxsize=256)
def _words(days: int, clock_time: timedelta) -> str:
    hours, rest = divmod(int(clock_time.total_seconds()), 3600)
    minutes = rest // 60
    parts = [
        f"{n} {unit}{'' if n == 1 else 's'}"
        for n, unit in ((days, "day"), (hours, "hour"), (minutes, "minute"))
        if n
    ]
    return " ".join(parts)


class SlaTarget(CatalogModel):
    """A response target: how long, and on which clock."""

    within: Duration
    clock: Clock

    def describe(self) -> str:
        """`1 hour, 24x7` or `1 day, business hours`: for the human-readable SLA basis."""
        return f"{self.within.words()}, {'24x7' if self.clock == '24x7' else 'business hours'}"


def _complete_table(table: dict[int, SlaTarget]) -> dict[int, SlaTarget]:
    missing = [s for s in SEVERITIES if s not in table]
    extra = sorted(set(table) - set(SEVERITIES))
    if missing:
        raise ValueError(f"severity {', '.join(map(str, missing))} missing: cover 1 to 4")
    if extra:
        raise ValueError(f"severity {', '.join(map(str, extra))} is not a severity (1 to 4)")
    return table


class BusinessHours(CatalogModel):
    """Opening hours in the customer's own time zone, Monday to Friday."""

    start: time
    end: time

    @field_validator("start", "end", mode="before")
    @classmethod
    def _quoted(cls, value: object) -> object:
        # YAML 1.1 reads an unquoted 17:00 as the number 1020; refuse it rather than guess.
        if not isinstance(value, str | time):
            raise ValueError(  # noqa: TRY004 - pydantic reports ValueError as a validation error
                f'write times as quoted strings such as "17:00", not {value!r}'
            )
        return value

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.end <= self.start:
            raise ValueError(f"end {self.end} must be after start {self.start}")
        return self

    @cached_property
    def length(self) -> timedelta:
        """One business day. Kept once worked out: each of the router's calendars holds one
        BusinessHours, read for every due time on a business clock."""
        return timedelta(
            hours=self.end.hour - self.start.hour,
            minutes=self.end.minute - self.start.minute,
            seconds=self.end.second - self.start.second,
        )


class Calendars(CatalogModel):
    default: BusinessHours
    by_country: dict[Country, BusinessHours] = Field(default_factory=dict)

    def for_country(self, country: str) -> BusinessHours:
        return self.by_country.get(country, self.default)


class RedHatSla(CatalogModel):
    premium: dict[int, SlaTarget]
    standard: dict[int, SlaTarget]

    _check = field_validator("premium", "standard")(_complete_table)

    def target(self, level: SupportLevel, severity: int) -> SlaTarget:
        return (self.premium if level == "premium" else self.standard)[severity]


class RedHat(CatalogModel):
    sla: RedHatSla


class Vendor(CatalogModel):
    id: Annotated[str, Field(pattern=VENDOR_ID_PATTERN)]
    name: Annotated[str, Field(min_length=1)]
    tsanet_member: bool
    tsanet_company_id: str | None = None
    engineering_relationship: bool = False
    sla: dict[int, SlaTarget]

    _check = field_validator("sla")(_complete_table)

    @field_validator("id")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        if value == REDHAT:
            raise ValueError("'redhat' is reserved for Red Hat itself; do not list it as a vendor")
        return value


class CatalogComponent(CatalogModel):
    id: Annotated[str, Field(min_length=1, max_length=200)]
    name: Annotated[str, Field(min_length=1)]
    vendor: Annotated[str, Field(pattern=VENDOR_ID_PATTERN)]
    kind: str
    refs: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(default_factory=list)
    shipped_by: ShippedBy
    certified_for: list[Annotated[str, Field(pattern=VERSION_PATTERN)]] = Field(
        default_factory=list
    )

    def certified(self, product_version: str) -> bool:
        """`17.1` covers 17.1 and 17.1.4, not 17.10: a prefix by dotted parts."""
        parts = product_version.split(".")
        return any(parts[: len(c.split("."))] == c.split(".") for c in self.certified_for)


class Catalog(CatalogModel):
    version: Annotated[str, Field(min_length=1)]
    calendars: Calendars
    redhat: RedHat
    vendors: list[Vendor]
    components: list[CatalogComponent]

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        problems: list[str] = []
        vendor_ids = [v.id for v in self.vendors]
        problems += [f"vendor {v!r} is listed twice" for v in _repeated(vendor_ids)]
        known = set(vendor_ids)
        for c in self.components:
            if c.vendor != REDHAT and c.vendor not in known:
                problems.append(f"component {c.id!r} names unknown vendor {c.vendor!r}")
            if c.vendor == REDHAT and c.shipped_by != REDHAT:
                problems.append(f"component {c.id!r} is Red Hat's own but not shipped_by redhat")
        problems += [
            f"component id {i!r} is listed twice"
            for i in _repeated([c.id for c in self.components])
        ]
        keys = [k.strip() for c in self.components for k in {c.id, *c.refs}]
        problems += [f"ref {r!r} names two components" for r in _repeated(keys)]
        if problems:
            raise ValueError("; ".join(problems))
        return self


def _repeated(items: list[str]) -> list[str]:
    return sorted(item for item, count in Counter(items).items() if count > 1)
