"""SLA due times: hand-worked examples, then properties that must hold for any start.

Every expected time below is worked out by hand in its comment from the calendar and the
public holidays; none is copied from the code's output.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.catalog import BusinessHours, Clock, SlaTarget
from services import businesstime as sla
from services.businesstime import (
    BusinessCalendar,
    business_time_between,
    calendar_for,
    due_at,
)


def target(within: str, clock: str = "business") -> SlaTarget:
    return SlaTarget.model_validate({"within": within, "clock": clock})


def hours(start: str, end: str) -> BusinessHours:
    return BusinessHours.model_validate({"start": start, "end": end})


US = calendar_for("US", "America/New_York", hours("09:00", "18:00"))
DE = calendar_for("DE", "Europe/Berlin", hours("09:00", "17:00"))
IN = calendar_for("IN", "Asia/Kolkata", hours("09:00", "17:00"))
NP = calendar_for("NP", "Asia/Kathmandu", hours("09:00", "17:00"))
AU = calendar_for("AU", "Australia/Adelaide", hours("09:00", "17:00"))
JP = calendar_for("JP", "Asia/Tokyo", hours("09:00", "17:00"))


def at(calendar: BusinessCalendar, y: int, mo: int, d: int, h: int, mi: int = 0) -> datetime:
    """A local wall-clock time of the calendar's customer."""
    return datetime(y, mo, d, h, mi, tzinfo=calendar.timezone)


def z(y: int, mo: int, d: int, h: int, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=UTC)


# --- business clock, worked by hand --------------------------------------------------------
# New York is on EST (UTC-5) from 2026-11-01 and on EDT (UTC-4) from 2026-03-08;
# Berlin is on CET (UTC+1) from 2026-10-25 and on CEST (UTC+2) before.

BUSINESS_CASES = [
    # Fri 2026-11-20 17:30 EST: 30 min left on Friday (closes 18:00), weekend skipped,
    # 30 min more from Mon 09:00 -> Mon 2026-11-23 09:30 EST = 14:30Z.
    pytest.param(US, at(US, 2026, 11, 20, 17, 30), "PT1H", z(2026, 11, 23, 14, 30), id="us-friday"),
    # Sat 2026-11-21 12:00: closed, counting starts Mon 09:00 -> 10:00 EST = 15:00Z.
    pytest.param(US, at(US, 2026, 11, 21, 12), "PT1H", z(2026, 11, 23, 15), id="us-saturday"),
    # Sun 2026-11-22 23:59 Berlin: counting starts Mon 09:00 CET -> 10:00 CET = 09:00Z.
    pytest.param(DE, at(DE, 2026, 11, 22, 23, 59), "PT1H", z(2026, 11, 23, 9), id="de-sunday"),
    # Mon 2026-11-23 06:00 EST, before opening: Mon 09:00 + 1h = 10:00 EST = 15:00Z.
    pytest.param(US, at(US, 2026, 11, 23, 6), "PT1H", z(2026, 11, 23, 15), id="us-early"),
    # Wed 2026-11-25 17:00 EST, PT4H: 1h Wed (17-18); Thu 26 is Thanksgiving; Fri 27 is an
    # ordinary business day (the day after is no federal holiday): 09:00 + 3h = 12:00 EST
    # = 17:00Z.
    pytest.param(US, at(US, 2026, 11, 25, 17), "PT4H", z(2026, 11, 27, 17), id="us-thanksgiving"),
    # Wed 2026-11-25 10:00 EST, P2D = 2 x 9h = 18h: Wed 10-18 gives 8h; Thanksgiving; Fri 27
    # 09-18 gives 9h (17h); weekend; Mon 30 09:00 + 1h = 10:00 EST = 15:00Z.
    pytest.param(US, at(US, 2026, 11, 25, 10), "P2D", z(2026, 11, 30, 15), id="us-p2d"),
    # Thu 2026-12-24 17:00 EST, PT4H: 1h Thu (Christmas Eve is no US public holiday in 2026);
    # Fri 25 Christmas; weekend; Mon 28 09:00 + 3h = 12:00 EST = 17:00Z.
    pytest.param(US, at(US, 2026, 12, 24, 17), "PT4H", z(2026, 12, 28, 17), id="us-christmas"),
    # Christmas 2027 is a Saturday, observed on Fri 2027-12-24. Thu 23 17:00 EST, PT4H:
    # 1h Thu; Fri 24 observed holiday; weekend; Mon 27 09:00 + 3h = 12:00 EST = 17:00Z.
    pytest.param(US, at(US, 2027, 12, 23, 17), "PT4H", z(2027, 12, 27, 17), id="us-observed"),
    # Mon 2026-11-16 10:00 EST, P1D = 9 business hours: 8h Mon (10-18), Tue 09:00 + 1h
    # = 10:00 EST = 15:00Z.
    pytest.param(US, at(US, 2026, 11, 16, 10), "P1D", z(2026, 11, 17, 15), id="us-p1d"),
    # Mon 2026-11-16 09:00 EST, P1D = 9h = exactly Monday's opening: due at closing,
    # Mon 18:00 EST = 23:00Z (not Tuesday 09:00).
    pytest.param(US, at(US, 2026, 11, 16, 9), "P1D", z(2026, 11, 16, 23), id="us-p1d-whole-day"),
    # Mon 2026-11-16 10:00 CET, P1D = 8 business hours: 7h Mon (10-17), Tue 09:00 + 1h
    # = 10:00 CET = 09:00Z.
    pytest.param(DE, at(DE, 2026, 11, 16, 10), "P1D", z(2026, 11, 17, 9), id="de-p1d"),
    # Mon 2026-11-16 10:00 CET, P2D = 16h: 7h Mon, 8h Tue (15h), Wed 09:00 + 1h = 10:00 CET
    # = 09:00Z.
    pytest.param(DE, at(DE, 2026, 11, 16, 10), "P2D", z(2026, 11, 18, 9), id="de-p2d"),
    # Wed 2026-05-13 16:00 CEST, PT4H: 1h Wed (16-17); Thu 14 is Ascension Day (Easter
    # 2026-04-05 + 39 days), a nationwide German holiday; Fri 15 09:00 + 3h = 12:00 CEST
    # = 10:00Z.
    pytest.param(DE, at(DE, 2026, 5, 13, 16), "PT4H", z(2026, 5, 15, 10), id="de-ascension"),
    # Thu 2026-12-24 16:00 CET, P1D = 8h: Christmas Eve is a working day in Germany: 1h Thu;
    # Fri 25 holiday; Sat 26 (also a holiday) and Sun; Mon 28 09:00 + 7h = 16:00 CET = 15:00Z.
    pytest.param(DE, at(DE, 2026, 12, 24, 16), "P1D", z(2026, 12, 28, 15), id="de-christmas"),
    # Tue 2026-11-17 09:00 CET, PT8H = the whole opening: due at closing, 17:00 CET = 16:00Z.
    pytest.param(DE, at(DE, 2026, 11, 17, 9), "PT8H", z(2026, 11, 17, 16), id="de-ends-at-close"),
    # Fri 2026-11-20 09:00 CET, PT8H: due Fri 17:00 CET = 16:00Z, not Monday 09:00.
    pytest.param(DE, at(DE, 2026, 11, 20, 9), "PT8H", z(2026, 11, 20, 16), id="de-friday-close"),
    # Fri 2026-11-20 17:00 EST, PT1H: runs out at Friday's closing, 18:00 EST = 23:00Z.
    pytest.param(US, at(US, 2026, 11, 20, 17), "PT1H", z(2026, 11, 20, 23), id="us-friday-close"),
    # Tue 2026-11-17 18:00 EST, exactly at closing: nothing left today; Wed 09:00 + 1h
    # = 10:00 EST = 15:00Z.
    pytest.param(US, at(US, 2026, 11, 17, 18), "PT1H", z(2026, 11, 18, 15), id="us-start-at-close"),
    # Tue 2026-11-17 09:00 EST, exactly at opening: 10:00 EST = 15:00Z.
    pytest.param(US, at(US, 2026, 11, 17, 9), "PT1H", z(2026, 11, 17, 15), id="us-start-at-open"),
    # US DST starts Sun 2026-03-08. Fri 2026-03-06 17:00 EST (22:00Z), PT2H: 1h Fri;
    # Mon 09:00 EDT = 13:00Z, + 1h = 10:00 EDT = 14:00Z (15:00Z if the offset were not moved).
    pytest.param(US, at(US, 2026, 3, 6, 17), "PT2H", z(2026, 3, 9, 14), id="us-dst-spring"),
    # EU DST ends Sun 2026-10-25. Fri 2026-10-23 16:00 CEST (14:00Z), PT2H: 1h Fri;
    # Mon 09:00 CET = 08:00Z, + 1h = 10:00 CET = 09:00Z.
    pytest.param(DE, at(DE, 2026, 10, 23, 16), "PT2H", z(2026, 10, 26, 9), id="de-dst-autumn"),
    # Kolkata is UTC+05:30. Tue 2026-11-17 15:00 IST, PT4H: 2h Tue (15-17); Wed 18 09:00
    # + 2h = 11:00 IST = 05:30Z.
    pytest.param(IN, at(IN, 2026, 11, 17, 15), "PT4H", z(2026, 11, 18, 5, 30), id="in-half-hour"),
    # Kathmandu is UTC+05:45. Tue 2026-11-17 16:00 NPT, PT2H: 1h Tue; Wed 09:00 + 1h
    # = 10:00 NPT = 04:15Z.
    pytest.param(NP, at(NP, 2026, 11, 17, 16), "PT2H", z(2026, 11, 18, 4, 15), id="np-45-minutes"),
    # Adelaide: ACDT (UTC+10:30) until Sun 2026-04-05, then ACST (UTC+09:30). Thu 2026-04-02
    # 16:00 ACDT, PT2H: 1h Thu; Fri 3 Good Friday; weekend (DST ends); Mon 6 Easter Monday;
    # Tue 7 09:00 ACST + 1h = 10:00 ACST = Tue 00:30Z.
    pytest.param(AU, at(AU, 2026, 4, 2, 16), "PT2H", z(2026, 4, 7, 0, 30), id="au-easter-dst"),
    # Tokyo UTC+9, Mon 2026-11-23 is Labor Thanksgiving Day. Fri 20 16:00 JST, PT2H: 1h Fri;
    # weekend; Mon holiday; Tue 24 09:00 + 1h = 10:00 JST = 01:00Z.
    pytest.param(JP, at(JP, 2026, 11, 20, 16), "PT2H", z(2026, 11, 24, 1), id="jp-holiday-monday"),
    # The same ticket seen from another zone: Fri 2026-11-20 22:30Z is 17:30 EST, the
    # us-friday case again -> Mon 14:30Z.
    pytest.param(US, z(2026, 11, 20, 22, 30), "PT1H", z(2026, 11, 23, 14, 30), id="us-utc-start"),
]


@pytest.mark.parametrize(("calendar", "start", "within", "expected"), BUSINESS_CASES)
def test_business_due_worked_by_hand(
    calendar: BusinessCalendar, start: datetime, within: str, expected: datetime
) -> None:
    due = due_at(start, target(within), calendar)
    assert due == expected
    assert due.tzinfo is UTC


# --- 24x7 clock: elapsed time --------------------------------------------------------------

ELAPSED_CASES = [
    # Tue 2026-11-17 23:30 CET (22:30Z) + 1h -> Wed 00:30 CET = 23:30Z Tuesday.
    pytest.param(at(DE, 2026, 11, 17, 23, 30), "PT1H", z(2026, 11, 17, 23, 30), id="midnight"),
    # Sat 2026-11-21 12:00 EST (17:00Z): weekends count on 24x7 -> 18:00Z.
    pytest.param(at(US, 2026, 11, 21, 12), "PT1H", z(2026, 11, 21, 18), id="weekend"),
    # Thanksgiving counts too: Thu 2026-11-26 10:00 EST (15:00Z) + 2h = 17:00Z.
    pytest.param(at(US, 2026, 11, 26, 10), "PT2H", z(2026, 11, 26, 17), id="holiday"),
    # Berlin falls back 03:00 CEST -> 02:00 CET on 2026-10-25. 01:30 CEST = 23:30Z on the
    # 24th; + 2h elapsed = 01:30Z = 02:30 CET (wall-clock arithmetic would say 03:30 CET).
    pytest.param(at(DE, 2026, 10, 25, 1, 30), "PT2H", z(2026, 10, 25, 1, 30), id="de-fall-back"),
    # New York falls back 02:00 EDT -> 01:00 EST on 2026-11-01. 00:30 EDT = 04:30Z; + 2h =
    # 06:30Z = 01:30 EST (not 02:30 EST = 07:30Z).
    pytest.param(at(US, 2026, 11, 1, 0, 30), "PT2H", z(2026, 11, 1, 6, 30), id="us-fall-back"),
    # New York springs forward 02:00 EST -> 03:00 EDT on 2026-03-08. 01:30 EST = 06:30Z;
    # + 1h = 07:30Z = 03:30 EDT.
    pytest.param(at(US, 2026, 3, 8, 1, 30), "PT1H", z(2026, 3, 8, 7, 30), id="us-spring"),
    # P1D on 24x7 is 24 hours: Sat 2026-10-24 12:00 CEST = 10:00Z -> Sun 10:00Z, which is
    # 11:00 CET, not the same wall-clock time.
    pytest.param(at(DE, 2026, 10, 24, 12), "P1D", z(2026, 10, 25, 10), id="p1d-is-24h"),
]


@pytest.mark.parametrize(("start", "within", "expected"), ELAPSED_CASES)
def test_24x7_is_elapsed_time(start: datetime, within: str, expected: datetime) -> None:
    due = due_at(start, target(within, "24x7"), US)
    assert due == expected
    assert due.tzinfo is UTC


# --- calendars ------------------------------------------------------------------------------


def test_business_days() -> None:
    assert US.is_business_day(date(2026, 11, 20))  # Friday
    assert not US.is_business_day(date(2026, 11, 21))  # Saturday
    assert not US.is_business_day(date(2026, 11, 26))  # Thanksgiving
    assert not US.is_business_day(date(2026, 7, 3))  # Independence Day (Sat) observed Fri
    assert not US.is_business_day(date(2027, 12, 31))  # New Year's Day 2028 (Sat) observed
    assert US.is_business_day(date(2026, 12, 24))
    assert not DE.is_business_day(date(2026, 5, 14))  # Ascension Day
    assert DE.is_business_day(date(2026, 10, 2))
    assert not DE.is_business_day(date(2025, 10, 3))  # German Unity Day, a Friday in 2025


def test_holidays_follow_the_customers_local_date() -> None:
    # Thu 2026-11-26 02:00Z is still Wed 21:00 EST: Wednesday's business time is over, the
    # local Thursday is Thanksgiving, so counting starts Fri 27 09:00 EST -> 10:00 = 15:00Z.
    assert due_at(z(2026, 11, 26, 2), target("PT1H"), US) == z(2026, 11, 27, 15)


def test_country_without_holidays_counts_every_weekday() -> None:
    # "ZZ" is no country the holidays package knows: Fri 2026-12-25 is an ordinary
    # weekday, 10:00Z + 1h = 11:00Z.
    nowhere = calendar_for("ZZ", "UTC", hours("09:00", "17:00"))
    assert nowhere.is_business_day(date(2026, 12, 25))
    assert not nowhere.is_business_day(date(2026, 12, 26))  # still a Saturday
    assert due_at(z(2026, 12, 25, 10), target("PT1H"), nowhere) == z(2026, 12, 25, 11)


def test_holiday_tables_are_built_once_per_country() -> None:
    calendar_for("US", "America/Chicago", hours("08:00", "17:00"))
    assert sla._public_holidays("US") is sla._public_holidays("US")
    assert sla._public_holidays("ZZ") is None


def test_a_calendar_without_business_days_fails_instead_of_looping(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class EveryDay:
        def __contains__(self, day: object) -> bool:
            return True

    monkeypatch.setattr(sla, "_public_holidays", lambda country: EveryDay())
    sla._is_business_day.cache_clear()  # days memoised with the real table
    try:
        with pytest.raises(ValueError, match="no business day"):
            due_at(z(2026, 11, 20, 10), target("PT1H"), US)
    finally:
        sla._is_business_day.cache_clear()  # and none with this one


def test_naive_start_is_refused() -> None:
    with pytest.raises(ValueError, match="offset"):
        due_at(datetime(2026, 11, 20, 10), target("PT1H"), US)
    with pytest.raises(ValueError, match="offset"):
        due_at(datetime(2026, 11, 20, 10), target("PT1H", "24x7"), US)
    with pytest.raises(ValueError, match="offset"):
        business_time_between(datetime(2026, 11, 20, 10), z(2026, 11, 21, 10), US)


def test_business_time_between_worked_by_hand() -> None:
    # Fri 17:30 EST to Mon 09:30 EST: 30 min Friday + 30 min Monday.
    friday, monday = at(US, 2026, 11, 20, 17, 30), at(US, 2026, 11, 23, 9, 30)
    assert business_time_between(friday, monday, US) == timedelta(hours=1)
    assert business_time_between(monday, friday, US) == timedelta(0)
    assert business_time_between(friday, friday, US) == timedelta(0)
    # Mon 2026-11-23 00:00 to Mon 2026-11-30 00:00 EST: Mon, Tue, Wed, Fri at 9h each
    # (Thursday is Thanksgiving) = 36h.
    week = business_time_between(at(US, 2026, 11, 23, 0), at(US, 2026, 11, 30, 0), US)
    assert week == timedelta(hours=36)


@pytest.mark.parametrize(
    ("within", "clock", "words"),
    [
        ("PT1H", "24x7", "1 hour, 24x7"),
        ("PT4H", "business", "4 hours, business hours"),
        ("P1D", "business", "1 day, business hours"),
        ("P2D", "business", "2 days, business hours"),
    ],
)
def test_target_description(within: str, clock: str, words: str) -> None:
    assert target(within, clock).describe() == words


# --- properties -----------------------------------------------------------------------------

CALENDARS = [US, DE, IN, AU, NP, JP]
ZONES = [UTC, *(c.timezone for c in CALENDARS)]

calendars = st.sampled_from(CALENDARS)
starts = st.datetimes(
    min_value=datetime(2024, 1, 1),
    max_value=datetime(2030, 12, 31),
    timezones=st.sampled_from(ZONES),
    allow_imaginary=False,
)
business_targets = st.tuples(st.integers(0, 3), st.integers(0, 23), st.integers(0, 59)).filter(
    lambda t: t != (0, 0, 0) and (t[0] < 3 or t[1:] == (0, 0))
)
later = st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=10))


def make_target(parts: tuple[int, int, int], clock: str) -> SlaTarget:
    days, h, m = parts
    return target(f"P{days}DT{h}H{m}M", clock)


targets_24x7 = (
    st.tuples(st.integers(0, 3), st.integers(0, 23), st.integers(0, 59))
    .filter(lambda t: t != (0, 0, 0))
    .map(lambda parts: make_target(parts, "24x7"))
)


def business_length(t: SlaTarget, calendar: BusinessCalendar) -> timedelta:
    return t.within.days * calendar.hours.length + t.within.time


PROPERTY = settings(max_examples=200, deadline=None)


@PROPERTY
@given(calendars, starts, business_targets)
def test_business_due_is_inside_business_time(
    calendar: BusinessCalendar, start: datetime, parts: tuple[int, int, int]
) -> None:
    due = due_at(start, make_target(parts, "business"), calendar)
    assert due.tzinfo is UTC
    assert due > start
    day = due.astimezone(calendar.timezone).date()
    assert calendar.is_business_day(day)
    open_ = datetime.combine(day, calendar.hours.start, tzinfo=calendar.timezone)
    close = datetime.combine(day, calendar.hours.end, tzinfo=calendar.timezone)
    assert open_ < due <= close  # closing time itself is allowed


@PROPERTY
@given(calendars, starts, business_targets)
def test_business_due_uses_exactly_the_target(
    calendar: BusinessCalendar, start: datetime, parts: tuple[int, int, int]
) -> None:
    t = make_target(parts, "business")
    due = due_at(start, t, calendar)
    length = business_length(t, calendar)
    assert business_time_between(start, due, calendar) == length
    # and it is the first such moment: a microsecond earlier the target is not used up
    tick = timedelta(microseconds=1)
    assert business_time_between(start, due - tick, calendar) == length - tick


@PROPERTY
@given(calendars, starts, later, business_targets, st.booleans())
def test_a_later_start_is_never_due_earlier(
    calendar: BusinessCalendar,
    start: datetime,
    delay: timedelta,
    parts: tuple[int, int, int],
    business: bool,
) -> None:
    t = make_target(parts, "business" if business else "24x7")
    # in UTC: adding to a zoned datetime would add wall-clock time, not elapsed time
    later_start = start.astimezone(UTC) + delay
    assert due_at(later_start, t, calendar) >= due_at(start, t, calendar)


@PROPERTY
@given(calendars, starts, targets_24x7)
def test_24x7_due_is_start_plus_elapsed_time(
    calendar: BusinessCalendar, start: datetime, t: SlaTarget
) -> None:
    due = due_at(start, t, calendar)
    assert due.tzinfo is UTC
    assert due - start == timedelta(days=t.within.days) + t.within.time


# --- moments within a target (the tracker's at-risk moment and elapsed time) ---------------

FRACTION_CASES = [
    # Berlin, P1D = one 8-hour day. Mon 2026-11-23 09:00 CET: due at closing, 17:00 CET;
    # three quarters = 6 business hours -> Mon 15:00 CET = 14:00Z.
    pytest.param(
        DE, at(DE, 2026, 11, 23, 9), "P1D", "business", 0.75, z(2026, 11, 23, 14), id="de-p1d"
    ),
    # New York over a weekend, P1D = 9 hours. Fri 2026-11-20 15:00 EST: 3h Friday, then Mon
    # 09:00 + 6h -> due Mon 15:00 EST. Three quarters = 6h45: 3h Friday, Mon 09:00 + 3h45
    # = 12:45 EST = 17:45Z.
    pytest.param(
        US, at(US, 2026, 11, 20, 15), "P1D", "business", 0.75, z(2026, 11, 23, 17, 45), id="us-wkd"
    ),
    # Over Thanksgiving (Thu 2026-11-26). Wed 15:00 EST, P1D: 3h Wed, holiday, Fri 09:00 + 6h
    # -> due Fri 15:00 EST. 6h45: 3h Wed, Fri 09:00 + 3h45 = 12:45 EST = 17:45Z.
    pytest.param(
        US, at(US, 2026, 11, 25, 15), "P1D", "business", 0.75, z(2026, 11, 27, 17, 45), id="us-hol"
    ),
    # Over Berlin's switch to winter time (Sun 2026-10-25). Fri 2026-10-23 13:00 CEST
    # (11:00Z), P1D = 8h: 4h Friday, Mon 09:00 CET + 4h -> due 13:00 CET. 6h: 4h Friday,
    # Mon 09:00 CET + 2h = 11:00 CET = 10:00Z (an hour after 11:00 CEST would have been).
    pytest.param(
        DE, at(DE, 2026, 10, 23, 13), "P1D", "business", 0.75, z(2026, 10, 26, 10), id="de-dst"
    ),
    # Half of a PT4H target from Saturday: counting starts Mon 09:00 EST, due 13:00 EST;
    # half = 2h -> 11:00 EST = 16:00Z.
    pytest.param(
        US, at(US, 2026, 11, 21, 12), "PT4H", "business", 0.5, z(2026, 11, 23, 16), id="us-sat"
    ),
    # 24x7, PT1H from 13:00Z: three quarters = 45 minutes of elapsed time -> 13:45Z.
    pytest.param(US, z(2026, 11, 24, 13), "PT1H", "24x7", 0.75, z(2026, 11, 24, 13, 45), id="24x7"),
]


@pytest.mark.parametrize(
    ("calendar", "start", "within", "clock", "fraction", "expected"), FRACTION_CASES
)
def test_fraction_elapsed_worked_by_hand(
    calendar: BusinessCalendar,
    start: datetime,
    within: str,
    clock: Clock,
    fraction: float,
    expected: datetime,
) -> None:
    due = due_at(start, target(within, clock), calendar)
    moment = sla.fraction_elapsed_at(start, due, fraction, clock, calendar)
    assert moment == expected
    assert moment.tzinfo is UTC


def test_fraction_of_no_time_is_the_due_time() -> None:
    # A target of no time is due when it starts, even when that is a closed Saturday: the
    # at-risk moment is never after the due time.
    saturday = z(2026, 11, 21, 17)
    assert sla.fraction_elapsed_at(saturday, saturday, 0.75, "business", US) == saturday
    assert sla.fraction_elapsed_at(saturday, saturday, 0.75, "24x7", US) == saturday
    # A due time before the start (a broken assignment) counts as no time too.
    assert sla.fraction_elapsed_at(saturday, z(2026, 11, 20, 9), 0.5, "24x7", US) == z(
        2026, 11, 20, 9
    )


@pytest.mark.parametrize("fraction", [-0.1, 1.5])
def test_fraction_outside_the_target_is_refused(fraction: float) -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        sla.fraction_elapsed_at(z(2026, 11, 24, 9), z(2026, 11, 24, 10), fraction, "24x7", US)


def test_clock_time_between_worked_by_hand() -> None:
    # Fri 17:30 EST to Mon 09:30 EST: 1 business hour (as above), 64 hours of elapsed time.
    friday, monday = at(US, 2026, 11, 20, 17, 30), at(US, 2026, 11, 23, 9, 30)
    assert sla.clock_time_between(friday, monday, "business", US) == timedelta(hours=1)
    assert sla.clock_time_between(friday, monday, "24x7", US) == timedelta(hours=64)
    # The other way round is no time on either clock.
    assert sla.clock_time_between(monday, friday, "24x7", US) == timedelta(0)
    assert sla.clock_time_between(monday, friday, "business", US) == timedelta(0)


@PROPERTY
@given(calendars, starts, business_targets, st.booleans(), st.floats(0, 1))
def test_fraction_elapsed_is_that_fraction_of_the_target(
    calendar: BusinessCalendar,
    start: datetime,
    parts: tuple[int, int, int],
    business: bool,
    fraction: float,
) -> None:
    clock = "business" if business else "24x7"
    due = due_at(start, make_target(parts, clock), calendar)
    moment = sla.fraction_elapsed_at(start, due, fraction, clock, calendar)
    assert moment <= due
    length = sla.clock_time_between(start, due, clock, calendar)
    assert sla.clock_time_between(start, moment, clock, calendar) == length * fraction
    assert sla.moment_after(start, length, clock, calendar) == due
