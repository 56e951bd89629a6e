"""Dates and slot times as staff send them in a query or a form, read without trusting them."""
from __future__ import annotations

from datetime import date, datetime

from flask import request

from bot.clock import TOKYO

# The years a date staff type or an address names may be in: one outside is a typing mistake, and a year 1 or
# 9999 would overflow at the time zone's edge or a day after it.
YEARS = (2000, 2999)


def _in_years(moment: date | datetime | None) -> bool:
    return moment is not None and YEARS[0] <= moment.year <= YEARS[1]


def _date_arg(name: str, default: date) -> date:
    try:
        day = date.fromisoformat(request.args.get(name) or request.form.get(name) or "")
    except ValueError:
        return default
    return day if _in_years(day) else default



def _slot_arg(value: str | None) -> datetime | None:
    try:
        moment = datetime.fromisoformat(value or "")
    except ValueError:
        return None
    if not _in_years(moment):
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=TOKYO)).astimezone(TOKYO)
