"""The business calendar and slot availability (bot.services.calendar, bot.services.slots)."""
from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone

import jpholiday
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.clock import TOKYO
from bot.offices import Booking, Cancellation, Contact, NoticeRule, Office, Schedule, VideoApp
from bot.services.calendar import holiday_name, is_business_day, is_closed, last_business_day_on_or_before
from bot.services.slot_text import parse_slot_text
from bot.services.slots import (
    PAGE_SLOTS,
    WEEKDAY_KANJI,
    Slot,
    available_slots,
    booking_deadline,
    candidate_starts,
    is_bookable,
    slot_label,
    split_into_pages,
    week_view,
)

OTARU_STARTS = (
    time(10, 0), time(10, 30), time(11, 0), time(11, 30),
    time(13, 0), time(13, 30), time(14, 0), time(14, 30), time(15, 0), time(15, 30),
)


def make_office(
    office_id: str,
    weekdays: tuple[int, ...],
    starts: tuple[time, ...],
    calendar_days: int,
    *,
    window_weeks: int = 8,
    capacity: int = 1,
    closures: tuple[date, ...] = (),
) -> Office:
    """An office with the given schedule and notice rule; everything else is a dummy value."""
    return Office(
        id=office_id,
        enabled=True,
        name=office_id,
        formal_name=office_id,
        controller=office_id,
        phone=Contact(None),
        email=Contact(None),
        hours=Contact(None),
        other_routes=(),
        video_app=VideoApp(name="app"),
        eligibility=(),
        checklist=(),
        consent_summary=(),
        notices=(),
        after_request="",
        schedule=Schedule(weekdays=weekdays, starts=starts, capacity=capacity, closures=closures),
        booking=Booking(
            notice=NoticeRule(kind="business_day_before", calendar_days=calendar_days, deadline=time(17, 0)),
            window_weeks=window_weeks,
        ),
        cancellation=Cancellation(in_chat=False, in_chat_until_days_before=1, routes=(), same_day_routes=()),
        no_show_minutes=10,
        form_fields=(),
        terms=(),
        court="",
    )


SAKATA = make_office("sakata", (0,), (time(14), time(15), time(16)), 3)
OTARU = make_office("otaru", (0, 1, 2, 3, 4), OTARU_STARTS, 1)


def at(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=TOKYO)


# --- calendar -------------------------------------------------------------------------------------------

def all_days(first: date, last: date):
    d = first
    while d <= last:
        yield d
        d += timedelta(days=1)


def test_2026_and_2027_closures_agree_with_jpholiday():
    for d in all_days(date(2026, 1, 1), date(2027, 12, 31)):
        if (d.month, d.day) >= (12, 29) or (d.month, d.day) <= (1, 3):
            expected = "year_end"
        elif jpholiday.is_holiday(d):
            expected = "holiday"
        elif d.weekday() >= 5:
            expected = "weekend"
        else:
            expected = None
        assert is_closed(d) == expected, d
        assert is_business_day(d) == (expected is None)


@pytest.mark.parametrize(
    ("day", "name"),
    [
        (date(2026, 11, 23), "勤労感謝の日"),   # Labour Thanksgiving Day, a Monday
        (date(2027, 1, 11), "成人の日"),        # Coming of Age Day, a Monday
        (date(2026, 5, 6), "憲法記念日 振替休日"),  # substitute for Sunday 5/3
        (date(2027, 3, 22), "春分の日 振替休日"),   # substitute for Sunday 3/21
        (date(2026, 9, 22), "国民の休日"),      # citizens' holiday between two holidays
        (date(2026, 3, 20), "春分の日"),        # a Friday
    ],
)
def test_known_holidays(day, name):
    assert is_closed(day) == "holiday"
    assert holiday_name(day) == name


def test_year_end_closure_runs_from_12_29_to_1_3():
    assert is_business_day(date(2026, 12, 28))
    for d in all_days(date(2026, 12, 29), date(2027, 1, 3)):
        assert is_closed(d) == "year_end", d
    assert is_business_day(date(2027, 1, 4))


def test_office_closures_and_weekends():
    assert is_closed(date(2026, 12, 5)) == "weekend"
    assert is_closed(date(2026, 12, 9), (date(2026, 12, 9),)) == "office_closure"
    assert is_closed(date(2026, 11, 23), (date(2026, 11, 23),)) == "holiday"  # the national calendar wins
    assert holiday_name(date(2026, 12, 9)) is None


def test_last_business_day_on_or_before():
    assert last_business_day_on_or_before(date(2026, 12, 4)) == date(2026, 12, 4)
    assert last_business_day_on_or_before(date(2026, 12, 6)) == date(2026, 12, 4)
    assert last_business_day_on_or_before(date(2027, 1, 3)) == date(2026, 12, 28)
    assert last_business_day_on_or_before(date(2026, 12, 4), (date(2026, 12, 4),)) == date(2026, 12, 3)


# --- the schedule ---------------------------------------------------------------------------------------

def test_sakata_offers_mondays_at_14_15_16_on_open_days():
    starts = candidate_starts(SAKATA, date(2026, 11, 16), date(2026, 12, 7))
    assert starts == [
        at(2026, 11, 16, h) for h in (14, 15, 16)
    ] + [
        at(2026, 11, 30, h) for h in (14, 15, 16)   # 11/23 is a holiday
    ] + [
        at(2026, 12, 7, h) for h in (14, 15, 16)
    ]


def test_otaru_offers_ten_slots_each_weekday():
    starts = candidate_starts(OTARU, date(2026, 12, 7), date(2026, 12, 13))
    assert len(starts) == 50
    assert [s.strftime("%H:%M") for s in starts[:10]] == [
        "10:00", "10:30", "11:00", "11:30", "13:00", "13:30", "14:00", "14:30", "15:00", "15:30",
    ]
    assert {s.date() for s in starts} == set(all_days(date(2026, 12, 7), date(2026, 12, 11)))


def test_slot_label_and_free():
    slot = Slot(start=at(2026, 12, 7, 14), end=at(2026, 12, 7, 14, 30), capacity=2, taken=1)
    assert slot.label == "12/7(月) 14:00"
    assert slot.free == 1
    assert Slot(slot.start, slot.end, capacity=1, taken=3).free == 0
    assert slot_label(datetime(2027, 1, 4, 1, 30, tzinfo=TOKYO)) == "1/4(月) 01:30"
    assert len(WEEKDAY_KANJI) == 7


# --- deadlines ------------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("office", "slot_start", "deadline"),
    [
        (SAKATA, at(2026, 12, 7, 14), at(2026, 12, 4, 17)),   # Monday -> Friday
        (SAKATA, at(2026, 3, 23, 14), at(2026, 3, 19, 17)),   # Friday 3/20 is a holiday -> Thursday
        (SAKATA, at(2027, 1, 4, 14), at(2026, 12, 28, 17)),   # across the year-end closure
        (OTARU, at(2026, 12, 7, 10), at(2026, 12, 4, 17)),    # Monday -> Friday
        (OTARU, at(2026, 12, 8, 15, 30), at(2026, 12, 7, 17)),  # Tuesday -> Monday
        (OTARU, at(2026, 11, 24, 10), at(2026, 11, 20, 17)),  # Monday 11/23 is a holiday -> Friday
    ],
)
def test_booking_deadline(office, slot_start, deadline):
    assert booking_deadline(office, slot_start) == deadline


def test_office_closure_moves_the_deadline():
    office = make_office("x", (0,), (time(14),), 3, closures=(date(2026, 12, 4),))
    assert booking_deadline(office, at(2026, 12, 7, 14)) == at(2026, 12, 3, 17)


def test_unknown_notice_rule_is_refused():
    office = make_office("x", (0,), (time(14),), 3)
    office = Office(**{**office.__dict__, "booking": Booking(notice=NoticeRule("hours_before", 24, time(17)))})
    with pytest.raises(ValueError, match="hours_before"):
        booking_deadline(office, at(2026, 12, 7, 14))


# --- available slots ------------------------------------------------------------------------------------

def test_sakata_deadline_opens_and_closes_the_next_monday():
    before = available_slots(SAKATA, at(2026, 12, 4, 16, 59), {})
    assert before[0].start == at(2026, 12, 7, 14)
    after = available_slots(SAKATA, at(2026, 12, 4, 17, 0), {})
    assert after[0].start == at(2026, 12, 14, 14)


def test_window_is_eight_weeks_and_skips_holidays():
    slots = available_slots(SAKATA, at(2026, 12, 7, 9), {})
    mondays = sorted({s.start.date() for s in slots})
    # 12/14 .. 2/1 (eight weeks after today, inclusive), without 1/11 (Coming of Age Day)
    assert mondays == [
        date(2026, 12, 14), date(2026, 12, 21), date(2026, 12, 28), date(2027, 1, 4),
        date(2027, 1, 18), date(2027, 1, 25), date(2027, 2, 1),
    ]
    assert len(slots) == 21
    assert [s.label for s in slots[:3]] == ["12/14(月) 14:00", "12/14(月) 15:00", "12/14(月) 16:00"]
    assert all(s.end - s.start == timedelta(minutes=30) for s in slots)


def test_otaru_eight_weeks():
    slots = available_slots(OTARU, at(2026, 12, 1, 9), {})
    assert slots[0].start == at(2026, 12, 2, 10)      # Tuesday's deadline (Monday 17:00) has passed
    assert slots[-1].start == at(2027, 1, 26, 15, 30)  # Tuesday, eight weeks after today
    assert at(2026, 12, 29, 10) not in {s.start for s in slots}
    assert all(a.start < b.start for a, b in zip(slots, slots[1:]))


def test_full_slots_are_left_out_and_free_counts_the_rest():
    now = at(2026, 12, 1, 9)
    taken = {at(2026, 12, 7, 14): 1}
    starts = {s.start for s in available_slots(SAKATA, now, taken)}
    assert at(2026, 12, 7, 14) not in starts and at(2026, 12, 7, 15) in starts

    roomy = make_office("roomy", (0,), (time(14),), 3, capacity=2)
    [first, *_] = available_slots(roomy, now, {at(2026, 12, 7, 14): 1})
    assert (first.start, first.free, first.capacity) == (at(2026, 12, 7, 14), 1, 2)


def test_taken_keys_in_another_timezone_still_count():
    utc_key = at(2026, 12, 7, 14).astimezone(timezone.utc)
    starts = {s.start for s in available_slots(SAKATA, at(2026, 12, 1, 9), {utc_key: 1})}
    assert at(2026, 12, 7, 14) not in starts


def test_blocked_slots_and_days_are_left_out():
    now = at(2026, 12, 1, 9)
    starts = {
        s.start
        for s in available_slots(SAKATA, now, {}, blocked={at(2026, 12, 7, 15)}, blocked_days={date(2026, 12, 14)})
    }
    assert at(2026, 12, 7, 14) in starts and at(2026, 12, 7, 15) not in starts
    assert not any(s.date() == date(2026, 12, 14) for s in starts)


def test_limit_and_week_offset():
    now = at(2026, 12, 1, 9)
    assert [s.start for s in available_slots(OTARU, now, {}, limit=2)] == [at(2026, 12, 2, 10), at(2026, 12, 2, 10, 30)]
    assert available_slots(SAKATA, now, {}, start_week_offset=1)[0].start == at(2026, 12, 14, 14)


def test_naive_now_is_refused():
    with pytest.raises(ValueError):
        available_slots(SAKATA, datetime(2026, 12, 1, 9), {})


# --- weeks ----------------------------------------------------------------------------------------------

def test_week_zero_is_the_first_week_still_open_for_booking():
    friday_evening = at(2026, 12, 4, 18)
    week = week_view(SAKATA, friday_evening, 0, {})
    assert week.week_start == date(2026, 12, 14)
    assert [s.label for s in week.slots] == ["12/14(月) 14:00", "12/14(月) 15:00", "12/14(月) 16:00"]
    assert (week.has_prev, week.has_next, week.reason_if_empty) == (False, True, None)
    # taken slots do not move the numbering
    full_week = week_view(SAKATA, friday_evening, 0, {at(2026, 12, 14, h): 1 for h in (14, 15, 16)})
    assert (full_week.week_start, full_week.slots, full_week.reason_if_empty) == (date(2026, 12, 14), [], "full")


def test_a_week_names_the_days_ahead_whose_booking_deadline_has_passed():
    """Tomorrow on, the open days no longer bookable for the notice rule, with their deadline: Sakata's Monday
    after Friday 17:00 (week 0 is then the week after); Otaru's Tuesday after a holiday Monday (the holiday is a
    closed day, not a passed one). Later weeks have none."""
    friday_evening = at(2026, 12, 4, 18)
    assert week_view(SAKATA, friday_evening, 0, {}).deadline_passed == [(date(2026, 12, 7), at(2026, 12, 4, 17))]
    assert week_view(SAKATA, friday_evening, 1, {}).deadline_passed == []
    wednesday_evening = week_view(OTARU, at(2026, 12, 2, 17, 30), 0, {})
    assert wednesday_evening.deadline_passed == [(date(2026, 12, 3), at(2026, 12, 2, 17))]
    assert week_view(OTARU, at(2026, 12, 2, 16, 59), 0, {}).deadline_passed == []
    before_holiday = week_view(OTARU, at(2026, 11, 20, 17, 30), 0, {})   # Monday 11/23 is 勤労感謝の日
    assert before_holiday.deadline_passed == [(date(2026, 11, 24), at(2026, 11, 20, 17))]


def test_holiday_week_says_holiday():
    week = week_view(SAKATA, at(2026, 11, 2, 9), 2, {})  # week 0 = 11/9: Monday 11/2 has passed
    assert week.week_start == date(2026, 11, 23)
    assert week.slots == []
    assert week.closed_days == [(date(2026, 11, 23), "holiday", "勤労感謝の日")]
    assert week.reason_if_empty == "holiday"


def test_year_end_week_says_year_end():
    week = week_view(SAKATA, at(2027, 11, 15, 10), 6, {})
    assert week.week_start == date(2028, 1, 3)
    assert (week.slots, week.reason_if_empty) == ([], "year_end")
    assert week.closed_days == [(date(2028, 1, 3), "year_end", None)]

    # Otaru's 2026 year-end week still has Monday 12/28; once that is full, the week is "year-end"
    monday_full = {at(2026, 12, 28, t.hour, t.minute): 1 for t in OTARU_STARTS}
    week = week_view(OTARU, at(2026, 12, 20, 12), 1, monday_full)
    assert week.week_start == date(2026, 12, 28)
    assert (week.slots, week.reason_if_empty) == ([], "year_end")
    assert [d for d, _, _ in week.closed_days] == list(all_days(date(2026, 12, 29), date(2027, 1, 1)))


def test_a_full_week_with_a_holiday_says_full():
    now = at(2026, 11, 2, 9)
    taken = {s: 1 for s in candidate_starts(OTARU, date(2026, 11, 23), date(2026, 11, 29))}
    week = week_view(OTARU, now, 3, taken)
    assert week.week_start == date(2026, 11, 23)
    assert (week.slots, week.reason_if_empty) == ([], "full")
    assert week.closed_days == [(date(2026, 11, 23), "holiday", "勤労感謝の日")]


def test_this_week_after_thursdays_deadline_with_friday_full_says_full():
    now = at(2026, 12, 3, 12)  # Thursday; Friday's deadline is 17:00 today
    friday = {s: 1 for s in candidate_starts(OTARU, date(2026, 12, 4), date(2026, 12, 4))}
    week = week_view(OTARU, now, 0, friday)
    assert week.week_start == date(2026, 11, 30)
    assert (week.slots, week.reason_if_empty) == ([], "full")


def test_blocked_day_week():
    week = week_view(SAKATA, at(2026, 12, 1, 9), 1, {}, blocked_days={date(2026, 12, 14)})
    assert (week.slots, week.reason_if_empty) == ([], "blocked")
    assert week.closed_days == [(date(2026, 12, 14), "blocked", None)]


def test_weeks_beyond_the_window():
    now = at(2026, 12, 1, 9)  # week 0 = 12/7 .. 12/13; the window ends Tuesday 1/26
    last = week_view(SAKATA, now, 7, {})
    assert last.week_start == date(2027, 1, 25)
    assert [s.start for s in last.slots][-1] == at(2027, 1, 25, 16)
    assert (last.has_prev, last.has_next) == (True, False)
    beyond = week_view(SAKATA, now, 8, {})
    assert (beyond.slots, beyond.reason_if_empty, beyond.has_next) == ([], "outside_window", False)
    with pytest.raises(ValueError):
        week_view(SAKATA, now, -1, {})


def test_nothing_open_in_the_window_shows_this_week_as_passed():
    office = make_office("tiny", (0,), (time(14),), 3, window_weeks=0)
    week = week_view(office, at(2026, 12, 5, 9), 0, {})
    assert week.week_start == date(2026, 11, 30)
    assert (week.slots, week.reason_if_empty, week.has_next) == ([], "notice_passed", False)


# --- a week in pages ------------------------------------------------------------------------------------

def day_slots(day: date, count: int) -> list[Slot]:
    """`count` free slots on `day`, every 30 minutes from 9:00."""
    first = datetime.combine(day, time(9), tzinfo=TOKYO)
    return [Slot(first + timedelta(minutes=30 * n), first + timedelta(minutes=30 * n + 30), 1, 0)
            for n in range(count)]


def test_otarus_full_week_is_five_pages_of_one_day_each():
    week = week_view(OTARU, at(2026, 12, 1, 10), 1, {})
    assert len(week.slots) == 50                        # 10 a day, Monday 12/7 to Friday 12/11
    pages = week.pages()
    assert [page.days for page in pages] == [[date(2026, 12, d)] for d in range(7, 12)]
    assert [len(page.slots) for page in pages] == [10] * 5
    assert [s for page in pages for s in page.slots] == week.slots
    assert all((page.part, page.parts) == (1, 1) for page in pages)


def test_sakatas_week_and_an_empty_week_are_one_page():
    week = week_view(SAKATA, at(2026, 12, 1, 9), 0, {})
    [page] = week.pages()
    assert page.slots == week.slots and len(page.slots) == 3 and page.days == [date(2026, 12, 7)]
    full = week_view(SAKATA, at(2026, 12, 1, 9), 0, {at(2026, 12, 7, h): 1 for h in (14, 15, 16)})
    [empty] = full.pages()
    assert (empty.slots, empty.days, empty.parts) == ([], [], 1)


def test_pages_take_as_many_whole_days_as_fit():
    monday = date(2026, 12, 7)
    sizes = [3, 4, 4, 10, 1]                            # Monday to Friday's free slots
    slots = [s for n, size in enumerate(sizes) for s in day_slots(monday + timedelta(days=n), size)]
    pages = split_into_pages(slots)
    assert [[d.day for d in page.days] for page in pages] == [[7, 8, 9], [10, 11]]
    assert [len(page.slots) for page in pages] == [11, 11]


def test_a_day_with_more_slots_than_a_page_gets_pages_of_its_own():
    monday = date(2026, 12, 7)
    slots = day_slots(monday, 2) + day_slots(monday + timedelta(days=1), 23) + day_slots(monday + timedelta(days=2), 2)
    pages = split_into_pages(slots)
    assert [len(page.slots) for page in pages] == [2, 8, 8, 7, 2]
    assert [(page.part, page.parts) for page in pages] == [(1, 1), (1, 3), (2, 3), (3, 3), (1, 1)]
    assert [page.days for page in pages][1:4] == [[date(2026, 12, 8)]] * 3
    assert [s for page in pages for s in page.slots] == slots
    assert [len(page.slots) for page in split_into_pages(day_slots(monday, 12))] == [6, 6]


@settings(max_examples=200, deadline=None)
@given(sizes=st.lists(st.integers(min_value=0, max_value=30), min_size=0, max_size=7),
       per_page=st.integers(min_value=1, max_value=PAGE_SLOTS))
def test_pages_hold_every_slot_once_in_order_and_whole_days(sizes, per_page):
    monday = date(2026, 12, 7)
    slots = [s for n, size in enumerate(sizes) for s in day_slots(monday + timedelta(days=n), size)]
    pages = split_into_pages(slots, per_page)
    assert [s for page in pages for s in page.slots] == slots
    assert pages and all(1 <= len(page.slots) <= per_page for page in pages if slots)
    for index, page in enumerate(pages):
        if page.parts > 1:                              # part of a day too long for one page
            assert len(page.days) == 1 and sizes[(page.days[0] - monday).days] > per_page
        else:                                           # whole days, as many as fit
            for day in page.days:
                assert [s for s in slots if s.start.date() == day] == [s for s in page.slots if s.start.date() == day]
            following = pages[index + 1] if index + 1 < len(pages) else None
            if following is not None and following.parts == 1:
                first_day = following.days[0]
                assert len(page.slots) + sizes[(first_day - monday).days] > per_page


# --- one slot -------------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("start", "kwargs", "reason"),
    [
        (at(2026, 12, 14, 14), {}, None),
        (at(2026, 11, 30, 14), {}, "past"),
        (at(2026, 12, 8, 14), {}, "not_a_slot"),          # a Tuesday
        (at(2026, 12, 14, 14, 30), {}, "not_a_slot"),     # not a start time
        (at(2027, 1, 11, 14), {}, "closed"),              # Coming of Age Day
        (at(2026, 12, 7, 14), {}, "notice_passed"),       # Friday 12/4 17:00 has passed
        (at(2027, 2, 8, 14), {}, "outside_window"),
        (at(2026, 12, 14, 14), {"blocked": {at(2026, 12, 14, 14)}}, "blocked"),
        (at(2026, 12, 14, 15), {"blocked_days": {date(2026, 12, 14)}}, "blocked"),
        (at(2026, 12, 14, 16), {"taken": {at(2026, 12, 14, 16): 1}}, "full"),
    ],
)
def test_is_bookable(start, kwargs, reason):
    now = at(2026, 12, 5, 9)  # Saturday; the window ends 1/30
    taken = kwargs.pop("taken", {})
    assert is_bookable(SAKATA, now, start, taken, **kwargs) == reason


@settings(max_examples=60, deadline=None)
@given(
    now=st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(TOKYO)),
    office=st.sampled_from([SAKATA, OTARU]),
    taken_every=st.integers(min_value=2, max_value=7),
)
def test_weeks_and_slot_checks_agree_with_available_slots(now, office, taken_every):
    horizon = candidate_starts(office, now.date(), now.date() + timedelta(weeks=9))
    taken = {s: 1 for s in horizon[::taken_every]}
    slots = available_slots(office, now, taken)
    assert all(is_bookable(office, now, s.start, taken) is None for s in slots)
    by_week = []
    for index in range(10):
        week = week_view(office, now, index, taken)
        by_week.extend(week.slots)
        assert [s for page in week.pages() for s in page.slots] == week.slots
        assert bool(week.slots) != bool(week.reason_if_empty)
    assert by_week == slots
    bookable = [s for s in horizon if is_bookable(office, now, s, taken) is None]
    assert [s.start for s in slots] == bookable


def test_a_typed_past_date_is_not_bookable():
    now = at(2026, 12, 10, 10)
    start = parse_slot_text("12/7 14:00", now)
    assert is_bookable(SAKATA, now, start, {}) == "past"

