"""The year-end and New Year period, 2026-12-21 to 2027-01-15, as job seekers and both offices' staff live it.

Both offices are closed on 12/29-1/3 (Act on Holidays of Administrative Organs), on weekends and on Monday
2027-01-11 (成人の日). Sakata offers Mondays 14:00, 15:00 and 16:00, booked by 17:00 of the last business day on
or before three days earlier; Otaru every weekday, booked by 17:00 of the previous business day. The clock is the
app's frozen clock (conftest `clock`), moved to the day each rule is walked on.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from bot.clock import TOKYO
from bot.config import DEFAULT_OFFICES_DIR
from bot.offices import load_offices
from bot.services import slots as slotsvc
from bot.models import SlotHold
from bot.services.slot_text import parse_slot_text
from tests.formflow import walk_to_slots
from tests.test_bookings_chat import rows, says

OFFICES = load_offices(DEFAULT_OFFICES_DIR)
SAKATA, OTARU = OFFICES["sakata"], OFFICES["otaru"]
FIRST, LAST = date(2026, 12, 21), date(2027, 1, 15)


def at(y: int, m: int, d: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(y, m, d, hour, minute, tzinfo=TOKYO)


def days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


# -- which slots are offered ------------------------------------------------------------------------------

def test_the_days_each_office_offers_over_the_period():
    sakata = {s.date() for s in slotsvc.candidate_starts(SAKATA, FIRST, LAST)}
    otaru = {s.date() for s in slotsvc.candidate_starts(OTARU, FIRST, LAST)}
    assert sorted(sakata) == [date(2026, 12, 21), date(2026, 12, 28), date(2027, 1, 4)]   # 1/11: 成人の日
    closed = set(days(date(2026, 12, 29), date(2027, 1, 3))) | {date(2027, 1, 11)}
    assert sorted(otaru) == [d for d in days(FIRST, LAST) if d.weekday() < 5 and d not in closed]
    assert len(slotsvc.candidate_starts(OTARU, date(2027, 1, 4), date(2027, 1, 4))) == 10


# -- notice: counted in business days across the closure ---------------------------------------------------

@pytest.mark.parametrize(("office", "session", "deadline"), [
    (SAKATA, at(2026, 12, 28, 14), at(2026, 12, 25, 17)),
    (SAKATA, at(2027, 1, 4, 14), at(2026, 12, 28, 17)),     # 1/1 is closed: the last business day before it
    (SAKATA, at(2027, 1, 18, 14), at(2027, 1, 15, 17)),
    (OTARU, at(2026, 12, 28, 10), at(2026, 12, 25, 17)),
    (OTARU, at(2027, 1, 4, 10), at(2026, 12, 28, 17)),      # the day before is 1/3: back to 12/28
    (OTARU, at(2027, 1, 5, 10), at(2027, 1, 4, 17)),
    (OTARU, at(2027, 1, 12, 10), at(2027, 1, 8, 17)),       # over the weekend and 成人の日
])
def test_booking_deadlines_skip_the_closed_days(office, session, deadline):
    assert slotsvc.booking_deadline(office, session) == deadline


@pytest.mark.parametrize(("office", "now", "start", "reason"), [
    (OTARU, at(2026, 12, 28, 16, 59), at(2027, 1, 4, 10), None),
    (OTARU, at(2026, 12, 28, 17), at(2027, 1, 4, 10), "notice_passed"),
    (OTARU, at(2026, 12, 28, 17), at(2027, 1, 5, 10), None),           # a request on 12/28 for 1/5
    (OTARU, at(2026, 12, 30, 12), at(2027, 1, 5, 10), None),           # or made during the closure
    (OTARU, at(2027, 1, 4, 17), at(2027, 1, 5, 10), "notice_passed"),
    (SAKATA, at(2026, 12, 28, 16, 59), at(2027, 1, 4, 14), None),
    (SAKATA, at(2026, 12, 28, 17), at(2027, 1, 4, 14), "notice_passed"),
])
def test_requests_made_around_the_closure(office, now, start, reason):
    assert slotsvc.is_bookable(office, now, start, {}) == reason


# -- typed dates ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("typed", ["1/5 10:00", "1月5日 10時", "1月5日10:00", "Jan 5 10am", "5日 10時"])
def test_a_january_date_typed_in_december_is_next_year(typed):
    assert parse_slot_text(typed, at(2026, 12, 7, 10)) == at(2027, 1, 5, 10)


@pytest.mark.parametrize(("office", "start", "closure"), [
    (SAKATA, at(2026, 12, 30, 14), "year_end"),   # a Wednesday: no Sakata slot, and the office is closed
    (SAKATA, at(2027, 1, 1, 14), "year_end"),
    (OTARU, at(2026, 12, 30, 9), "year_end"),     # not a start time, on a closed day
    (OTARU, at(2026, 12, 30, 10), "year_end"),
    (OTARU, at(2027, 1, 11, 10), "holiday"),
])
def test_a_typed_time_on_a_closed_day_is_answered_closed(office, start, closure):
    """A day the office is closed by the calendar is answered as closed (why is named), not as "no slot": a
    Sakata user typing 12/30 14:00 learns that the office is closed for the New Year, not only that Wednesday
    is no slot day."""
    assert slotsvc.is_bookable(office, at(2026, 12, 21, 10), start, {}) == "closed"


def test_a_weekend_time_stays_no_slot():
    """A weekend is no closure to name: the schedule says which days there are."""
    assert slotsvc.is_bookable(SAKATA, at(2026, 12, 21, 10), at(2026, 12, 26, 14), {}) == "not_a_slot"
    assert slotsvc.is_bookable(SAKATA, at(2026, 12, 21, 10), at(2027, 1, 2, 14), {}) == "closed"   # Saturday, 年末年始


# -- in the chat ----------------------------------------------------------------------------------------

CLOSED_WORDS = {"ja": "年末年始で閉庁日のため", "en": "(the New Year holidays)", "easy": "休みの 日です（年末年始（ねんまつ ねんし））"}
SWITCH = {"en": "English", "easy": "やさしい日本語"}


@pytest.mark.parametrize(("office_id", "typed", "language"), [
    ("sakata", "12/30 14:00", "ja"), ("sakata", "12/30 14:00", "en"), ("sakata", "12/30 14:00", "easy"),
    ("otaru", "12/30 9:00", "ja"), ("sakata", "1月1日 14時", "ja"),
])
def test_a_closed_day_typed_in_the_chat_is_named(rt, clock, user_factory, fake_line, office_id, typed, language):
    clock.freeze(at(2026, 12, 21, 10))
    user = user_factory(office_id)
    walk_to_slots(user, rt)
    if language != "ja":
        says(fake_line, user, SWITCH[language])
    reply = says(fake_line, user, typed)
    assert CLOSED_WORDS[language] in reply, reply
    assert rows(rt, SlotHold) == []
