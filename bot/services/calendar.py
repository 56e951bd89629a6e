"""The offices' business calendar: which days a Hello Work office is closed, and why.

Offices are closed on Saturdays, Sundays, national holidays (substitute and citizens' holidays included,
as `jpholiday` computes them) and 12/29-1/3 (Act on Holidays of Administrative Organs, art. 1). An office's
own closure dates come from its profile and are passed in as `extra_closures`.
"""
from __future__ import annotations

from collections.abc import Collection
from datetime import date, timedelta
from functools import lru_cache
from typing import Literal

import jpholiday

ClosureReason = Literal["year_end", "holiday", "weekend", "office_closure"]

# A run of closed days never gets near this long (the longest is year-end plus a weekend and holidays);
# reaching it means the closure data is wrong, not that the office is shut for months.
_MAX_CLOSED_RUN = 60


@lru_cache(maxsize=8192)
def holiday_name(d: date) -> str | None:
    """The national holiday's name on `d` (jpholiday's wording), or None."""
    return jpholiday.is_holiday_name(d)


@lru_cache(maxsize=8192)
def _national_closure(d: date) -> ClosureReason | None:
    # Most specific first: 1/1 is both a holiday and year-end; a holiday may fall on a weekend.
    if (d.month == 12 and d.day >= 29) or (d.month == 1 and d.day <= 3):
        return "year_end"
    if holiday_name(d) is not None:
        return "holiday"
    if d.weekday() >= 5:
        return "weekend"
    return None


def is_closed(d: date, extra_closures: Collection[date] = ()) -> ClosureReason | None:
    """Why the office is closed on `d`, or None on a business day.

    The national calendar wins over an office closure on the same day. For "holiday", `holiday_name(d)`
    gives the holiday's name.
    """
    reason = _national_closure(d)
    if reason is None and d in extra_closures:
        return "office_closure"
    return reason


def is_business_day(d: date, extra_closures: Collection[date] = ()) -> bool:
    return is_closed(d, extra_closures) is None


def last_business_day_on_or_before(d: date, extra_closures: Collection[date] = ()) -> date:
    """`d` itself if it is a business day, else the nearest business day before it."""
    for back in range(_MAX_CLOSED_RUN):
        candidate = d - timedelta(days=back)
        if is_closed(candidate, extra_closures) is None:
            return candidate
    raise ValueError(f"no business day in the {_MAX_CLOSED_RUN} days up to {d.isoformat()}")


def first_business_day_on_or_after(d: date, extra_closures: Collection[date] = ()) -> date:
    """`d` itself if it is a business day, else the nearest business day after it."""
    for ahead in range(_MAX_CLOSED_RUN):
        candidate = d + timedelta(days=ahead)
        if is_closed(candidate, extra_closures) is None:
            return candidate
    raise ValueError(f"no business day in the {_MAX_CLOSED_RUN} days from {d.isoformat()}")
