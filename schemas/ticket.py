"""The input ticket, as the ticketing system publishes it (README, "Topics and events")."""

from __future__ import annotations

import zoneinfo
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Annotated, Literal

from pydantic import (
    AwareDatetime,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetPydanticSchema,
    WithJsonSchema,
)
from pydantic.config import JsonDict
from pydantic_core import core_schema as cs

# ISO 3166-1 alpha-2, officially assigned codes.
ISO_COUNTRIES = frozenset(
    [
        "AD",
        "AE",
        "AF",
        "AG",
        "AI",
        "AL",
        "AM",
        "AO",
        "AQ",
        "AR",
        "AS",
        "AT",
        "AU",
        "AW",
        "AX",
        "AZ",
        "BA",
        "BB",
        "BD",
        "BE",
        "BF",
        "BG",
        "BH",
        "BI",
        "BJ",
        "BL",
        "BM",
        "BN",
        "BO",
        "BQ",
        "BR",
        "BS",
        "BT",
        "BV",
        "BW",
        "BY",
        "BZ",
        "CA",
        "CC",
        "CD",
        "CF",
        "CG",
        "CH",
        "CI",
        "CK",
        "CL",
        "CM",
        "CN",
        "CO",
        "CR",
        "CU",
        "CV",
        "CW",
        "CX",
        "CY",
        "CZ",
        "DE",
        "DJ",
        "DK",
        "DM",
        "DO",
        "DZ",
        "EC",
        "EE",
        "EG",
        "EH",
        "ER",
        "ES",
        "ET",
        "FI",
        "FJ",
        "FK",
        "FM",
        "FO",
        "FR",
        "GA",
        "GB",
        "GD",
        "GE",
        "GF",
        "GG",
        "GH",
        "GI",
        "GL",
        "GM",
        "GN",
        "GP",
        "GQ",
        "GR",
        "GS",
        "GT",
        "GU",
        "GW",
        "GY",
        "HK",
        "HM",
        "HN",
        "HR",
        "HT",
        "HU",
        "ID",
        "IE",
        "IL",
        "IM",
        "IN",
        "IO",
        "IQ",
        "IR",
        "IS",
        "IT",
        "JE",
        "JM",
        "JO",
        "JP",
        "KE",
        "KG",
        "KH",
        "KI",
        "KM",
        "KN",
        "KP",
        "KR",
        "KW",
        "KY",
        "KZ",
        "LA",
        "LB",
        "LC",
        "LI",
        "LK",
        "LR",
        "LS",
        "LT",
        "LU",
        "LV",
        "LY",
        "MA",
        "MC",
        "MD",
        "ME",
        "MF",
        "MG",
        "MH",
        "MK",
        "ML",
        "MM",
        "MN",
        "MO",
        "MP",
        "MQ",
        "MR",
        "MS",
        "MT",
        "MU",
        "MV",
        "MW",
        "MX",
        "MY",
        "MZ",
        "NA",
        "NC",
        "NE",
        "NF",
        "NG",
        "NI",
        "NL",
        "NO",
        "NP",
        "NR",
        "NU",
        "NZ",
        "OM",
        "PA",
        "PE",
        "PF",
        "PG",
        "PH",
        "PK",
        "PL",
        "PM",
        "PN",
        "PR",
        "PS",
        "PT",
        "PW",
        "PY",
        "QA",
        "RE",
        "RO",
        "RS",
        "RU",
        "RW",
        "SA",
        "SB",
        "SC",
        "SD",
        "SE",
        "SG",
        "SH",
        "SI",
        "SJ",
        "SK",
        "SL",
        "SM",
        "SN",
        "SO",
        "SR",
        "SS",
        "ST",
        "SV",
        "SX",
        "SY",
        "SZ",
        "TC",
        "TD",
        "TF",
        "TG",
        "TH",
        "TJ",
        "TK",
        "TL",
        "TM",
        "TN",
        "TO",
        "TR",
        "TT",
        "TV",
        "TW",
        "TZ",
        "UA",
        "UG",
        "UM",
        "US",
        "UY",
        "UZ",
        "VA",
        "VC",
        "VE",
        "VG",
        "VI",
        "VN",
        "VU",
        "WF",
        "WS",
        "YE",
        "YT",
        "ZA",
        "ZM",
        "ZW",
    ]
)

TICKET_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
# ASCII digits only: `\d` would also take Arabic-Indic digits, which no version compares to.
VERSION_PATTERN = r"^[0-9]+(\.[0-9]+)*$"
# For the published JSON Schema of a one-line field. In JSON Schema's regex dialect (ECMA-262)
# and in the services, `$` is the end of the text; in Python's `re`, which python-jsonschema
# uses, it also matches before a final newline, so "T-1\n" would pass there. Said again in a
# form every engine reads alike.
ONE_LINE: JsonDict = {"not": {"pattern": "\n"}}


# Names the zone database carries that are not places: their offsets depend on the host.
_NOT_PLACES = frozenset({"Factory", "localtime", "posixrules"})


@cache
def _known_timezones() -> frozenset[str]:
    # The `tzdata` package is a dependency, so this is the same set on every host.
    return frozenset(
        name
        for name in zoneinfo.available_timezones()
        if name not in _NOT_PLACES and not name.startswith(("posix/", "right/"))
    )


# Every check below runs inside pydantic-core (Rust): a Python validator per field would cost
# more than the rest of the ticket's validation (bench/README.md). `custom_error_schema`
# keeps the message one a support engineer understands instead of a regex.
def _native(schema: cs.CoreSchema, error_type: str, message: str) -> cs.CoreSchema:
    return cs.custom_error_schema(
        schema, custom_error_type=error_type, custom_error_message=message
    )


def _one_of(names: Iterable[str], error_type: str, message: str) -> GetPydanticSchema:
    """A string that must be one of `names`; a hash look-up, with `message` when it is not."""
    choices = sorted(names)
    return GetPydanticSchema(
        lambda _tp, _handler: _native(cs.literal_schema(choices), error_type, message)
    )


_CLEAN_PATTERN = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"


def _clean_text(tp: object, handler: GetCoreSchemaHandler) -> cs.CoreSchema:
    inner = handler(tp)  # the string with its length limits
    limits = {k: inner[k] for k in ("min_length", "max_length") if k in inner}
    check = _native(
        # The limits again (always met here) so that the output's JSON Schema shows them.
        cs.str_schema(pattern=_CLEAN_PATTERN, **limits),
        "control_characters",
        "control characters are not allowed",
    )
    return cs.chain_schema(
        [inner, check], metadata={"pydantic_js_updates": {"pattern": _CLEAN_PATTERN}}
    )


# The published schemas list the very names the services accept, so that a producer that
# validates against them meets no dead letter for a country or a zone.
Country = Annotated[
    str,
    _one_of(ISO_COUNTRIES, "country", "not an ISO 3166-1 alpha-2 country code"),
    WithJsonSchema(
        {
            "type": "string",
            "enum": sorted(ISO_COUNTRIES),
            "description": "ISO 3166-1 alpha-2 country code, officially assigned, upper case",
        }
    ),
]
TimeZoneName = Annotated[
    str,
    _one_of(_known_timezones(), "timezone", "not an IANA time zone name"),
    WithJsonSchema(
        {
            "type": "string",
            "enum": sorted(_known_timezones()),
            "description": "IANA time zone name, exactly as the tz database spells it (the "
            "zones of the `tzdata` release the services run with; a zone added by a newer "
            "release is refused until they are updated)",
        }
    ),
]
# Control characters other than tab and newlines have no business in a ticket's short fields;
# refusing them keeps them out of logs and partner payloads. Length limits go before it:
# Annotated[str, Field(max_length=...), CLEAN].
CLEAN = GetPydanticSchema(_clean_text)
# An RFC 3339 timestamp: an offset is required, and years outside 1970-2200 are absurd here.
# ASCII digits: \d in pydantic-core's regex is Unicode-aware.
_RFC3339_AFTER_YEAR = (
    r"-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}"  # date and time
    r"(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})$"  # fraction, offset
)
_RFC3339 = r"^[0-9]{4}" + _RFC3339_AFTER_YEAR
# The published schema bounds the year in the text (1970-2199): JSON Schema has no way to
# compare instants, so within a day of either bound the offset decides, which it cannot see.
_RFC3339_IN_RANGE = r"^(19[7-9][0-9]|2[01][0-9]{2})" + _RFC3339_AFTER_YEAR
EARLIEST = datetime.fromisoformat("1970-01-01T00:00:00+00:00")
LATEST = datetime.fromisoformat("2200-01-01T00:00:00+00:00")
# The shape is checked first: pydantic alone would also read "1795000000" or a number as a
# time. Then the checked text is parsed (lax: text into a datetime) and bounded.
_TIMESTAMP_TEXT = cs.chain_schema(
    [
        _native(
            cs.str_schema(pattern=_RFC3339),
            "rfc3339",
            "not an RFC 3339 timestamp with an offset, like 2026-11-16T09:30:00Z",
        ),
        cs.datetime_schema(tz_constraint="aware", ge=EARLIEST, lt=LATEST, strict=False),
    ]
)
# From JSON only that text; from Python a datetime too (models built in code).
_TIMESTAMP = cs.json_or_python_schema(
    json_schema=_TIMESTAMP_TEXT,
    python_schema=cs.union_schema(
        [
            cs.datetime_schema(tz_constraint="aware", ge=EARLIEST, lt=LATEST, strict=True),
            _TIMESTAMP_TEXT,
        ],
        mode="left_to_right",
    ),
)
Timestamp = Annotated[
    datetime,
    GetPydanticSchema(lambda _tp, _handler: _TIMESTAMP),
    WithJsonSchema(
        {
            "type": "string",
            "format": "date-time",
            "pattern": _RFC3339_IN_RANGE,
            **ONE_LINE,
            "description": "RFC 3339 with an offset, from 1970-01-01T00:00:00Z up to, not "
            "including, 2200-01-01T00:00:00Z. The pattern bounds the year as written; the "
            "services compare the instant, so within a day of either bound an offset that "
            "crosses it is refused by them although the pattern allows it.",
        }
    ),
]
SupportLevel = Literal["standard", "premium"]


# The ticket is plain dataclasses that pydantic validates, like the enriched ticket and the
# decision (schemas/decision.py): both services write the ticket back out on every event, and
# orjson writes a dataclass natively at half of pydantic's cost, without a call back into
# Python per model. Validation is pydantic's, with this configuration. Strict: "1" is not a
# severity and "true" is not a boolean. Unknown fields are ignored, so the ticketing system may
# add fields without breaking us. Not frozen: built per ticket (see schemas/decision.py).
_STRICT = ConfigDict(strict=True, extra="ignore")


@dataclass(kw_only=True)
class Product:
    __pydantic_config__ = _STRICT

    name: Annotated[str, Field(min_length=1, max_length=200), CLEAN]
    version: Annotated[
        str, Field(pattern=VERSION_PATTERN, max_length=50, json_schema_extra=ONE_LINE)
    ]


@dataclass(kw_only=True)
class Customer:
    __pydantic_config__ = _STRICT

    account_id: Annotated[str, Field(min_length=1, max_length=100), CLEAN]
    name: Annotated[str, Field(min_length=1, max_length=200), CLEAN]
    support_level: SupportLevel
    country: Country
    timezone: TimeZoneName
    vendor_agreements: Annotated[list[Annotated[str, Field(max_length=100)]], Field(max_length=200)]


@dataclass(kw_only=True)
class Contact:
    __pydantic_config__ = _STRICT

    name: Annotated[str, Field(max_length=200), CLEAN]
    email: Annotated[str, Field(max_length=320), CLEAN]


@dataclass(kw_only=True)
class TicketComponent:
    __pydantic_config__ = _STRICT

    ref: Annotated[str, Field(min_length=1, max_length=200), CLEAN]
    suspected: bool = False
    removable: bool | None = None


@dataclass(kw_only=True)
class Ticket:
    __pydantic_config__ = _STRICT

    ticket_id: Annotated[str, Field(pattern=TICKET_ID_PATTERN, json_schema_extra=ONE_LINE)]
    revision: Annotated[int, Field(ge=1, le=2**63 - 1)]  # a Java long, as every consumer can read
    opened_at: Timestamp
    severity: Annotated[int, Field(ge=1, le=4)]
    summary: Annotated[str, Field(min_length=1, max_length=500), CLEAN]
    # Free text: pasted logs may carry escape codes; JSON encoding keeps them harmless.
    description: Annotated[str, Field(max_length=20_000)]
    product: Product
    customer: Customer
    components: Annotated[list[TicketComponent], Field(max_length=50)]
    needs_vendor_expertise: bool = False
    contact: Contact | None = None


# What the router publishes to a partner: built from a validated Ticket, only serialised
# (plain dataclasses, like the decision; see schemas/decision.py for why).


@dataclass(kw_only=True)
class PartnerCustomer:
    """The customer as a partner sees it: no other vendors, no Red Hat contract."""

    account_id: str
    name: str
    country: str
    timezone: str


@dataclass(kw_only=True)
class PartnerTicket:
    """The ticket as published on a partner's topic: without the customer's other vendors and
    Red Hat contract (README, "Topics and events")."""

    ticket_id: str
    revision: int
    opened_at: AwareDatetime
    severity: int
    summary: str
    description: str
    product: Product
    customer: PartnerCustomer
    components: list[TicketComponent]
    needs_vendor_expertise: bool
    contact: Contact | None = None
