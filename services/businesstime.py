"""Business time: response due times and elapsed time under a 24x7 or a business clock, shared
by the router (due times) and the tracker (at-risk moments, elapsed time).

Pure: no I/O and no clock reading, so the router, the CLI and the tests all get the same answer
for the same ticket, and a replayed event gets the same due time as the first delivery.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache, lru_cache
from zoneinfo import ZoneInfo

import holidays

from schemas.catalog import BusinessHours, Clock, SlaTarget

# A real calendar has a business day within a week or two; this only keeps a broken calendar
# (every day a holiday) from looping forever. About ten years of consecutive closed days.
MAX_CLOSED_DAYS = 3700
_ONE_DAY = timedelta(days=1)


@cache
def _public_holidays(country: str) -> holidays.HolidayBase | None:
    """Built once per country: constructing the tables is far dearer than looking a date up."""
    try:
        return holidays.country_holidays(country)
    except NotImplementedError:
        # The contract's holidays are the ones the package lists; it lists none for this country.
        return None


@dataclass(frozen=True, slots=True)
class BusinessCalendar:
    """Business time of one customer: opening hours in their time zone, Mon-Fri, minus their
    country's public holidays."""

    timezone: ZoneInfo
    hours: BusinessHours
    country: str

    def is_business_day(self, day: date) -> bool:
        """`day` is the customer's local date: holidays are local, not UTC, dates."""
        return _is_business_day(self.country, day)

    def opening(self, day: date) -> tuple[datetime, datetime]:
        """Open and close of local `day`, in UTC, so elapsed-time arithmetic is right on DST days
        and in half-hour offset zones."""
        return _opening(self.timezone, self.hours.start, self.hours.end, day)


# Memoised: tickets of one period ask about the same few days of the same few calendars, and
# a holiday look-up or a zone conversion costs more than a look-up in the cache.
@lru_cache(maxsize=16_384)
def _is_business_day(country: str, day: date) -> bool:
    if day.weekday() >= 5:  # Saturday, Sunday
        return False
    table = _public_holidays(country)
    return table is None or day not in table


@lru_cache(maxsize=16_384)
def _opening(zone: ZoneInfo, start: time, end: time, day: date) -> tuple[datetime, datetime]:
    open_ = datetime.combine(day, start, tzinfo=zone)
    close = datetime.combine(day, end, tzinfo=zone)
    return open_.astimezone(UTC), close.astimezone(UTC)


def calendar_for(country: str, timezone: str, hours: BusinessHours) -> BusinessCalendar:
    """Cached: ZoneInfo keeps only a few zones strongly, and reloading one from disk per ticket
    was the router's largest cost. Keyed on the hours' values: each enriched ticket brings its
    own BusinessHours object, and hashing a model costs more than the rest of the look-up;
    the calendar keeps one, whose length is then worked out once."""
    return _calendar(country, timezone, hours.start, hours.end)


@lru_cache(maxsize=4096)
def _calendar(country: str, timezone: str, start: time, end: time) -> BusinessCalendar:
    _public_holidays(country)
    hours = BusinessHours(start=start, end=end)
    return BusinessCalendar(ZoneInfo(timezone), hours, country)


def _aware_utc(moment: datetime, name: str) -> datetime:
    if moment.tzinfo is UTC:  # the router's clock starts are already in UTC
        return moment
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} {moment.isoformat()} has no UTC offset; SLA times must be aware")
    return moment.astimezone(UTC)


def business_length(target: SlaTarget, calendar: BusinessCalendar) -> timedelta:
    """A business day is one whole opening (9 hours in the US, 8 elsewhere), not 24 hours."""
    return target.within.days * calendar.hours.length + target.within.time


def due_at(start: datetime, target: SlaTarget, calendar: BusinessCalendar) -> datetime:
    """When the response is due, in UTC, for a clock started at `start`."""
    if target.clock == "24x7":
        length = timedelta(days=target.within.days) + target.within.time
    else:
        length = business_length(target, calendar)
    return moment_after(start, length, target.clock, calendar)


def _business_due(begin: datetime, remaining: timedelta, calendar: BusinessCalendar) -> datetime:
    # Day by day rather than minute by minute: a P2D target is a handful of iterations.
    day = begin.astimezone(calendar.timezone).date()
    closed_days = 0
    while closed_days <= MAX_CLOSED_DAYS:
        if calendar.is_business_day(day):
            open_, close = calendar.opening(day)
            counting_from = max(begin, open_)
            if counting_from < close:
                closed_days = 0
                available = close - counting_from
                # `<=`: a target that runs out exactly at closing is due at closing.
                if remaining <= available:
                    return counting_from + remaining
                remaining -= available
            else:
                closed_days += 1
        else:
            closed_days += 1
        day += _ONE_DAY
    raise ValueError(
        f"no business day in {MAX_CLOSED_DAYS} days after {begin.isoformat()} "
        f"for country {calendar.country!r}"
    )


def business_time_between(start: datetime, end: datetime, calendar: BusinessCalendar) -> timedelta:
    """Business time inside [start, end): checks due times and explains them to people."""
    first = _aware_utc(start, "start")
    last = _aware_utc(end, "end")
    if last <= first:
        return timedelta(0)
    total = timedelta(0)
    day = first.astimezone(calendar.timezone).date()
    final_day = last.astimezone(calendar.timezone).date()
    while day <= final_day:
        if calendar.is_business_day(day):
            open_, close = calendar.opening(day)
            overlap = min(close, last) - max(open_, first)
            if overlap > timedelta(0):
                total += overlap
        day += _ONE_DAY
    return total


def clock_time_between(
    start: datetime, end: datetime, clock: Clock, calendar: BusinessCalendar
) -> timedelta:
    """The clock's time inside [start, end): elapsed time under 24x7, business time under a
    business clock; nothing when `end` is not after `start`."""
    if clock == "business":
        return business_time_between(start, end, calendar)
    return max(_aware_utc(end, "end") - _aware_utc(start, "start"), timedelta(0))


def moment_after(
    start: datetime, length: timedelta, clock: Clock, calendar: BusinessCalendar
) -> datetime:
    """The first moment, in UTC, at which `length` of the clock's time has passed since `start`
    (under a business clock, counting starts at the next opening when `start` is closed)."""
    begin = _aware_utc(start, "start")
    if clock == "24x7":
        # In UTC: adding to a zoned datetime would add wall-clock time and be off by the DST jump.
        return begin + length
    try:
        return _business_due(begin, length, calendar)
    except OverflowError as exc:
        raise ValueError(f"a moment after {start.isoformat()} is beyond the calendar") from exc


def fraction_elapsed_at(
    start: datetime, due: datetime, fraction: float, clock: Clock, calendar: BusinessCalendar
) -> datetime:
    """When `fraction` of the target from `start` to `due` has elapsed, counted in the target's
    clock: a P1D business target with 8-hour days is three quarters gone after 6 business
    hours, not after 18 hours. Never after `due` (a target of no time is due at its start)."""
    if not 0 <= fraction <= 1:
        raise ValueError(f"a fraction of a target is between 0 and 1, not {fraction}")
    target = clock_time_between(start, due, clock, calendar)
    return min(moment_after(start, target * fraction, clock, calendar), _aware_utc(due, "due"))
