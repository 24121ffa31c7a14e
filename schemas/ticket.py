"""The input ticket, as the ticketing system publishes it (contract section 2)."""

from __future__ import annotations

import re
import zoneinfo
from datetime import datetime
from functools import cache
from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field

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
# Control characters other than tab/newline have no business in a ticket; refusing them keeps
# them out of logs and partner payloads.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


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


def _check_country(code: str) -> str:
    if code not in ISO_COUNTRIES:
        raise ValueError(f"{code!r} is not an ISO 3166-1 alpha-2 country code")
    return code


def _check_timezone(name: str) -> str:
    if name not in _known_timezones():
        raise ValueError(f"{name!r} is not an IANA time zone name")
    return name


def _no_control_characters(text: str) -> str:
    if _CONTROL.search(text):
        raise ValueError("control characters are not allowed")
    return text


Country = Annotated[str, AfterValidator(_check_country)]
TimeZoneName = Annotated[str, AfterValidator(_check_timezone)]
Text = Annotated[str, AfterValidator(_no_control_characters)]
# An RFC 3339 timestamp: an offset is required, and years outside 1970-9999 are absurd here.
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
EARLIEST = datetime.fromisoformat("1970-01-01T00:00:00+00:00")
LATEST = datetime.fromisoformat("2200-01-01T00:00:00+00:00")


def _rfc3339(value: object) -> object:
    # pydantic would also read "1795000000" or a number as a time; the contract says RFC 3339.
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _RFC3339.match(value):
        raise ValueError(f"{str(value)[:40]!r} is not an RFC 3339 timestamp with an offset")
    return value


# An RFC 3339 timestamp with its offset, between 1970 and 2200: anything else is a mistake.
# Lax after the shape check: the checked string is parsed like JSON input would be.
Timestamp = Annotated[
    AwareDatetime, BeforeValidator(_rfc3339), Field(ge=EARLIEST, lt=LATEST, strict=False)
]
SupportLevel = Literal["standard", "premium"]


class _Model(BaseModel):
    # Strict: "1" is not a severity and "true" is not a boolean. Unknown fields are ignored,
    # so the ticketing system may add fields without breaking us.
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)


class Product(_Model):
    name: Annotated[Text, Field(min_length=1, max_length=200)]
    version: Annotated[str, Field(pattern=VERSION_PATTERN, max_length=50)]


class Customer(_Model):
    account_id: Annotated[Text, Field(min_length=1, max_length=100)]
    name: Annotated[Text, Field(min_length=1, max_length=200)]
    support_level: SupportLevel
    country: Country
    timezone: TimeZoneName
    vendor_agreements: Annotated[list[Annotated[str, Field(max_length=100)]], Field(max_length=200)]


class Contact(_Model):
    name: Annotated[Text, Field(max_length=200)]
    email: Annotated[Text, Field(max_length=320)]


class TicketComponent(_Model):
    ref: Annotated[Text, Field(min_length=1, max_length=200)]
    suspected: bool = False
    removable: bool | None = None


class Ticket(_Model):
    ticket_id: Annotated[str, Field(pattern=TICKET_ID_PATTERN)]
    revision: Annotated[int, Field(ge=1, le=2**63 - 1)]  # a Java long, as every consumer can read
    opened_at: Timestamp
    severity: Annotated[int, Field(ge=1, le=4)]
    summary: Annotated[Text, Field(min_length=1, max_length=500)]
    # Free text: pasted logs may carry escape codes; JSON encoding keeps them harmless.
    description: Annotated[str, Field(max_length=20_000)]
    product: Product
    customer: Customer
    components: Annotated[list[TicketComponent], Field(max_length=50)]
    needs_vendor_expertise: bool = False
    contact: Contact | None = None


class PartnerCustomer(_Model):
    """The customer as a partner sees it: no other vendors, no Red Hat contract."""

    account_id: str
    name: str
    country: str
    timezone: str


class PartnerTicket(_Model):
    """The ticket as published on a partner's topic (contract section 6)."""

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
