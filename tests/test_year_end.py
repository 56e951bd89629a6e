"""The year-end and New Year period, 2026-12-21 to 2027-01-15, as job seekers and both offices' staff live it.

Both offices are closed on 12/29-1/3 (Act on Holidays of Administrative Organs), on weekends and on Monday
2027-01-11 (成人の日). Sakata offers Mondays 14:00, 15:00 and 16:00, booked by 17:00 of the last business day on
or before three days earlier; Otaru every weekday, booked by 17:00 of the previous business day. The clock is the
app's frozen clock (conftest `clock`), moved to the day each rule is walked on.
"""
from __future__ import annotations

import csv
import io
import re
from dataclasses import replace
from datetime import date, datetime, timedelta

import pytest

from bot.clock import TOKYO
from bot.config import DEFAULT_OFFICES_DIR
from bot.models import Booking, SlotHold
from bot.offices import load_offices
from bot.render import environment, load_labels, localize, text_of
from bot.services import bookings, push_hours
from bot.services import slots as slotsvc
from bot.services.slot_text import parse_slot_text
from bot.staff import export
from tests.formflow import walk_to_slots
from tests.staffkit import fast_password_hashing, staff, user  # noqa: F401 - fixtures
from tests.staffkit import create_staff, login, make_request, post, postback_value, run_worker
from tests.test_bookings_chat import last_buttons, rows, says, taps
from tests.test_languages import render
from tests.test_stale_messages import group_id, grouped  # noqa: F401 - fixtures (Sakata's staff group)
from tests.test_templates import week

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


def typed_on_12_21(rt, clock, user_factory, fake_line, office_id: str, language: str, typed: str) -> str:
    """What the bot answers a user of `office_id` (chatting in `language`) who types `typed` at the slots on
    Monday 12/21."""
    clock.freeze(at(2026, 12, 21, 10))
    user = user_factory(office_id)
    walk_to_slots(user, rt)
    if language != "ja":
        says(fake_line, user, SWITCH[language])
    return says(fake_line, user, typed)


@pytest.mark.parametrize(("office_id", "typed", "language"), [
    ("sakata", "12/30 14:00", "ja"), ("sakata", "12/30 14:00", "en"), ("sakata", "12/30 14:00", "easy"),
    ("otaru", "12/30 9:00", "ja"), ("sakata", "1月1日 14時", "ja"),
])
def test_a_closed_day_typed_in_the_chat_is_named(rt, clock, user_factory, fake_line, office_id, typed, language):
    reply = typed_on_12_21(rt, clock, user_factory, fake_line, office_id, language, typed)
    assert CLOSED_WORDS[language] in reply, reply
    assert rows(rt, SlotHold) == []


# A month/day in a message that is not a date shown with its weekday or a time: `（1/4）` for "page 1 of 4".
BARE_MONTH_DAY = re.compile(r"(?<![\d/])\d{1,2}/\d{1,2}(?![\d/(]| \d{2}:\d{2})")


def otaru_slots_at(rt, clock, user_factory, fake_line, now: datetime, language: str, office_id: str = "otaru") -> str:
    """The first page of slots an Otaru user (or one of `office_id`) chatting in `language` is shown at `now`."""
    clock.freeze(now)
    user = user_factory(office_id)
    walk_to_slots(user, rt)
    if language != "ja":
        says(fake_line, user, SWITCH[language])
        says(fake_line, user, "予約")
    return fake_line.texts_to(user.user_id)[-1]


@pytest.mark.parametrize("language", ["ja", "easy"])
def test_a_page_number_does_not_read_as_a_january_date(rt, clock, user_factory, fake_line, language):
    """Otaru on 12/28 after 17:00: the week of 1/4 is shown in four pages. 「1/4(月)〜1/10(日)の週は…（1/4）」
    read as the 4th of January; the page is said in words, and every M/D left is a date with its weekday."""
    shown = otaru_slots_at(rt, clock, user_factory, fake_line, at(2026, 12, 28, 18), language)
    assert "1/5(火) 10:00" in shown and "4" in shown
    assert BARE_MONTH_DAY.findall(shown) == [], shown


@pytest.mark.parametrize("language", ["ja", "easy"])
def test_a_day_split_over_pages_says_its_part_in_words(language):
    """A day with more slots than a page holds says which part it is in words, not `1/2` (January 2nd)."""
    page = week(page=0, pages=2, parts=2)
    said = text_of(render(OTARU, language, "slots", dict(page=page)))
    assert BARE_MONTH_DAY.findall(said) == [], said


# -- staff: cards and pushes over the closed days --------------------------------------------------------

@pytest.mark.parametrize(("now", "staff_card", "user_push"), [
    (at(2026, 12, 28, 21, 30), at(2027, 1, 4, 8), at(2026, 12, 29, 8)),   # after the last evening of the year
    (at(2026, 12, 30, 12), at(2027, 1, 4, 8), None),                     # a request during the closure
    (at(2027, 1, 2, 7), at(2027, 1, 4, 8), at(2027, 1, 2, 8)),
    (at(2027, 1, 8, 22), at(2027, 1, 12, 8), at(2027, 1, 9, 8)),          # over the weekend and 成人の日
    (at(2027, 1, 4, 8), None, None),
])
def test_staff_cards_wait_for_the_first_business_morning_and_user_pushes_for_the_morning(now, staff_card,
                                                                                          user_push):
    for office in (SAKATA, OTARU):
        assert push_hours.next_staff_opening(office, now) == staff_card
        assert push_hours.next_opening(office, now) == user_push


def test_an_office_that_takes_cards_on_closed_days_gets_them_on_new_years_day():
    office = replace(OTARU, push_hours=replace(OTARU.push_hours, staff_cards_on_closed_days=True))
    assert push_hours.next_staff_opening(office, at(2027, 1, 1, 10)) is None
    assert push_hours.next_staff_opening(office, at(2026, 12, 31, 22)) == at(2027, 1, 1, 8)


def test_a_request_sent_on_new_years_eve_reaches_the_staff_group_on_1_4(grouped, fake_line, user, group_id):
    rt = grouped.extensions["madoguchi"]
    clock = rt.clock
    clock.freeze(at(2026, 12, 31, 15))
    make_request(rt, start=at(2027, 1, 4, 14), user_id=user.user_id)
    for moment in (at(2026, 12, 31, 15, 1), at(2027, 1, 1, 9), at(2027, 1, 3, 20), at(2027, 1, 4, 7, 59)):
        clock.freeze(moment)
        run_worker(rt)
        assert fake_line.texts_to(group_id) == [], moment
    clock.freeze(at(2027, 1, 4, 8))
    run_worker(rt)
    [card] = fake_line.texts_to(group_id)
    assert "1/4(月) 14:00" in card


# -- staff: the schedule, attendance and the export across the year boundary ------------------------------

def test_the_schedule_across_the_new_year(rt, client):
    create_staff(rt, office="otaru", username="otaru_staff")
    rt.clock.freeze(at(2026, 12, 28, 9))
    assert login(client, username="otaru_staff").status_code == 302
    page = client.get("/staff/?from=2026-12-28").get_data(as_text=True)
    heading = re.compile(r'<h2 id="day-(\d{4}-\d\d-\d\d)-h">([^<]*)</h2>\s*(?:<p class="closed">([^<]*)</p>)?')
    shown = {day: (title, closed) for day, title, closed in heading.findall(page)}
    assert shown["2026-12-28"] == ("2026年12/28(月)（今日）", "")
    for day in ("2026-12-29", "2026-12-30", "2026-12-31", "2027-01-01"):
        assert shown[day][1] == "休み: 年末年始", day
    assert shown["2027-01-04"] == ("2027年1/4(月)", "")
    later = client.get("/staff/?from=2027-01-11").get_data(as_text=True)
    assert "2027年1/11(月)" in later and "休み: 祝日（成人の日）" in later


def test_attendance_left_over_the_closure_is_still_asked_for_on_1_4(rt, client, user):
    create_staff(rt)
    rt.clock.freeze(at(2026, 12, 21, 10))
    reference = make_request(rt, start=at(2026, 12, 28, 14), user_id=user.user_id, status="confirmed")
    rt.clock.freeze(at(2027, 1, 4, 9))
    assert login(client).status_code == 302
    glance = client.get("/staff/").get_data(as_text=True).split('id="today"')[1].split("</section>")[0]
    assert "前日までの分1件" in glance
    assert reference in client.get("/staff/queue").get_data(as_text=True)


def test_the_export_across_the_year_boundary_has_full_dates_in_order(rt, client, user):
    create_staff(rt, office="otaru", username="otaru_staff")
    rt.clock.freeze(at(2026, 12, 21, 10))
    later = make_request(rt, "otaru", start=at(2027, 1, 4, 10), user_id=user.user_id, notify=False)
    earlier = make_request(rt, "otaru", start=at(2026, 12, 28, 10), notify=False)
    make_request(rt, "otaru", start=at(2027, 1, 18, 10), notify=False)                  # after the range
    assert login(client, username="otaru_staff").status_code == 302
    sent = post(client, "/staff/export", **{"from": "2026-12-21", "to": "2027-01-15", "encoding": "utf8"})
    assert sent.status_code == 200
    assert "madoguchi-otaru-20261221-20270115.csv" in sent.headers["Content-Disposition"]
    table = list(csv.reader(io.StringIO(sent.get_data().decode("utf-8-sig"))))
    slot = table[0].index(export.labels()["columns"]["slot"])
    assert [(row[0], row[slot]) for row in table[1:]] == [(earlier, "2026-12-28 10:00"), (later, "2027-01-04 10:00")]


def test_a_staff_card_waiting_over_the_new_year_says_the_year_it_goes(grouped, group_id):
    """LINE送信状況 on 12/31: the card waits for the first business morning, 2027-01-04, and says which year."""
    rt = grouped.extensions["madoguchi"]
    client = grouped.test_client()
    create_staff(rt)
    rt.clock.freeze(at(2026, 12, 31, 15))
    make_request(rt, start=at(2027, 1, 4, 14))
    run_worker(rt)
    login(client)
    page = client.get("/staff/outbox").get_data(as_text=True)
    assert "送信時間帯を待っています（2027年1/4(月) 08:00に送ります）" in page, page


def test_a_waiting_confirmation_on_the_booking_page_names_the_year_across_the_boundary(rt, staff, user):
    """Confirmed at 22:00 on 12/31: the push waits for 08:00 on 1/1. The booking's page writes a time of the other
    year with its year: the due time on 12/31, the time it was made on 1/1."""
    rt.clock.freeze(at(2026, 12, 21, 10))
    reference = make_request(rt, start=at(2027, 1, 4, 14), user_id=user.user_id)
    rt.clock.freeze(at(2026, 12, 31, 22))
    login(staff)
    post(staff, f"/staff/bookings/{reference}/confirm")
    run_worker(rt)

    def notice() -> str:
        return staff.get(f"/staff/bookings/{reference}").get_data(as_text=True).split(
            'id="undelivered"')[1].split("</div>")[0]

    assert "（12/31(木) 22:00）: 送信時間帯を待っています（2027年1/1(金) 08:00に送ります）" in notice()
    rt.clock.freeze(at(2027, 1, 1, 7, 30))
    login(staff)
    assert "（2026年12/31(木) 22:00）: 送信時間帯を待っています（1/1(金) 08:00に送ります）" in notice()


# -- the year, where the list reaches into the next one ----------------------------------------------------

def test_the_japanese_slot_pages_name_the_next_year(rt, clock, user_factory, fake_line):
    """English and やさしい日本語 write every date out with its year; standard Japanese keeps the short `M/D(曜)`
    and writes the year where a page's days reach into a year other than today's."""
    clock.freeze(at(2026, 12, 21, 10))
    user = user_factory("sakata")
    walk_to_slots(user, rt)
    assert fake_line.texts_to(user.user_id)[-1].startswith("12/28(月)〜2027年1/3(日)の空いている枠です")
    moved = taps(fake_line, user, last_buttons(fake_line, user)["次の週"])
    assert moved.startswith("2027年1/4(月)〜1/10(日)の空いている枠です"), moved
    moved = taps(fake_line, user, last_buttons(fake_line, user)["次の週"])
    assert moved.startswith("2027年1/11(月)〜1/17(日)は、祝日のため相談をお休みしています"), moved
    clock.freeze(at(2027, 1, 5, 10))                       # in the new year, its own dates need no year
    other = user_factory("sakata")
    walk_to_slots(other, rt)
    assert fake_line.texts_to(other.user_id)[-1].startswith("1/18(月)〜1/24(日)の空いている枠です")


def test_an_ordinary_week_shows_no_year(rt, clock, user_factory, fake_line):
    clock.freeze(at(2026, 12, 1, 10))
    user = user_factory("otaru")
    walk_to_slots(user, rt)
    shown = fake_line.texts_to(user.user_id)[-1]
    assert "年" not in shown.split("\n")[0] and "11/30(月)〜12/6(日)の週は" in shown


# -- cancelling over the closure -------------------------------------------------------------------------

@pytest.mark.parametrize(("now", "action", "routes"), [
    (at(2026, 12, 28, 18), "cancel", ()),
    (at(2027, 1, 3, 23, 59), "cancel", ()),           # 「前日まで」 is the calendar's day before, closed or not
    (at(2027, 1, 4, 0, 0), "call", ("phone",)),       # the session's day: by phone only (Otaru 第4条(3))
])
def test_otaru_cancels_in_chat_until_the_day_before_even_when_it_is_closed(now, action, routes):
    booking = Booking(reference="ABCD-EFGH", slot_start=at(2027, 1, 4, 10), status="confirmed")
    said = bookings.summary(OTARU, booking, now)
    assert (said["action"], tuple(said["routes"])) == (action, routes)


def test_sakata_bookings_are_cancelled_by_phone_over_the_closure_too():
    booking = Booking(reference="ABCD-EFGH", slot_start=at(2027, 1, 4, 14), status="confirmed")
    said = bookings.summary(SAKATA, booking, at(2026, 12, 30, 10))
    assert (said["action"], tuple(said["routes"])) == ("call", ("phone",))


# -- a closed day typed alone ------------------------------------------------------------------------------

@pytest.mark.parametrize(("office_id", "typed", "language", "said"), [
    ("sakata", "12/30", "ja", "2026年12月30日(水)は年末年始（12/29〜1/3）で閉庁日のため、相談をお休みしています。"),
    ("otaru", "1月1日は？", "ja", "2027年1月1日(金)は年末年始（12/29〜1/3）で閉庁日のため"),
    ("otaru", "1/11", "ja", "2027年1月11日(月)は成人の日で閉庁日のため"),
    ("sakata", "12/30", "en", "The office is closed on Wed 30 Dec 2026 (the New Year holidays, 12/29 to 1/3)"),
    ("sakata", "12/30", "easy", "2026年12月30日(水)は 休みの 日です（年末年始（ねんまつ ねんし））。"),
])
def test_a_closed_day_typed_without_a_time_is_named(rt, clock, user_factory, fake_line, office_id, typed, language,
                                                     said):
    """「12/30」 alone in December: the bot says that the office is closed that day and why, with the slots
    again; it is no text it could not read (no miss), and nothing is held."""
    reply = typed_on_12_21(rt, clock, user_factory, fake_line, office_id, language, typed)
    assert said in reply, reply
    assert "読み取れませんでした" not in reply and "could not read" not in reply and "わかりませんでした" not in reply
    assert "12/28(月) 14:00" in reply or "12/22(火) 10:00" in reply                       # the slots again
    assert rows(rt, SlotHold) == []


def test_an_open_day_typed_without_a_time_is_still_asked_for_a_time(rt, clock, user_factory, fake_line):
    clock.freeze(at(2026, 12, 21, 10))
    user = user_factory("otaru")
    walk_to_slots(user, rt)
    assert "読み取れませんでした" in says(fake_line, user, "1/5")
    assert "読み取れませんでした" in says(fake_line, user, "12/26")                          # a Saturday: the schedule


@pytest.mark.parametrize(("language", "said"), [
    ("ja", "※この週のお休み: 12/29(火)〜1/1(金) 年末年始\n"),
    ("en", "Closed this week: 12/29(火) to 1/1(金) (Tue 29 Dec 2026 to Fri 1 Jan 2027, New Year holidays)\n"),
    ("easy", "※この 週の 休みの 日: 2026年12月29日(火)から 2027年1月1日(金)まで（年末年始（ねんまつ ねんし））\n"),
])
def test_the_new_year_closure_is_named_once_beside_the_slots(rt, clock, user_factory, fake_line, language, said):
    """Otaru's week of 12/28: one span for the four closed weekdays, not 年末年始 four times over."""
    shown = otaru_slots_at(rt, clock, user_factory, fake_line, at(2026, 12, 25, 10), language)
    assert said in shown, shown


@pytest.mark.parametrize(("now", "language", "said"), [
    (at(2026, 12, 30, 12), "ja", "※この週より前のお休み: 1/11(月) 成人の日\n"
                                 "※予約の受付期限を過ぎた日: 1/4(月)（受付は12/28(月) 17:00まで）\n"),
    (at(2027, 1, 4, 8, 1), "ja", "※この週より前のお休み: 1/11(月) 成人の日\n"),
    (at(2027, 1, 8, 18), "en", "Closed before this week: 1/11(月) (Mon 11 Jan 2027, Coming of Age Day)\n"),
    (at(2027, 1, 8, 18), "easy", "※この 週より 前の 休みの 日: 2027年1月11日(月)（成人の日（せいじんの ひ））\n"),
])
def test_a_closed_monday_skipped_before_the_first_week_shown_is_named(rt, clock, user_factory, fake_line, now,
                                                                      language, said):
    """Sakata from 12/29 to 1/11: the first bookable Monday is 1/18, and its page opens on that week. The Monday
    in between, 1/11 成人の日, is named as the passed 1/4 is: a user looking for the next Monday sees why it is
    not there, not only that 1/18 is the first."""
    shown = otaru_slots_at(rt, clock, user_factory, fake_line, now, language, office_id="sakata")
    assert shown.startswith(("1/18(月)〜1/24(日)の空いている枠です", "2027年1/18(月)〜1/24(日)の空いている枠です",
                             "Free slots", "あいて いる")), shown
    assert said in shown, shown


def test_a_closure_already_begun_is_named_from_today(rt, clock, user_factory, fake_line):
    """Otaru on 12/30: the first week shown is 1/4's; the closure it skipped is named from today, not tomorrow."""
    shown = otaru_slots_at(rt, clock, user_factory, fake_line, at(2026, 12, 30, 12), "ja")
    assert "※この週より前のお休み: 12/30(水)〜1/1(金) 年末年始\n" in shown, shown


def test_a_closed_day_before_the_first_week_is_named_on_its_first_page_only(rt, clock, user_factory, fake_line):
    """Moving on to the next week and back: the skipped 1/11 is said on week 0's page, never on a later week's."""
    clock.freeze(at(2027, 1, 5, 10))
    user = user_factory("sakata")
    walk_to_slots(user, rt)
    assert "この週より前のお休み: 1/11(月) 成人の日" in fake_line.texts_to(user.user_id)[-1]
    later = taps(fake_line, user, last_buttons(fake_line, user)["次の週"])
    assert later.startswith("1/25(月)〜1/31(日)の空いている枠です") and "お休み" not in later, later
    back = taps(fake_line, user, last_buttons(fake_line, user)["前の週"])
    assert "この週より前のお休み: 1/11(月) 成人の日" in back, back


# -- a request made while the office is closed: when it is looked at ------------------------------------------

def receipt_text(office, now: datetime, language: str = "ja") -> str:
    booking = Booking(reference="ABCD-EFGH", slot_start=at(2027, 1, 5, 10), status="requested", receipt_pending=True)
    receipt = bookings.take_receipt_of(office, booking, now)
    return flat(text_of(render(office, language, "receipt", {"receipt": receipt})), language)


@pytest.mark.parametrize(("now", "language", "said"), [
    (at(2026, 12, 30, 12), "ja", "※年末年始（12/29〜1/3）の閉庁日のため、お申込みの確認とご連絡は、2027年1月4日(月)以降になります。"),
    (at(2026, 12, 28, 21, 30), "ja", "※年末年始（12/29〜1/3）の閉庁日のため、"
                                     "お申込みの確認とご連絡は、2027年1月4日(月)以降になります。"),   # after the push hours
    (at(2027, 1, 2, 8), "en", "* The office is closed until then (the New Year holidays, 12/29 to 1/3): it will "
                              "look at your request and contact you from Mon 4 Jan 2027."),
    (at(2026, 12, 30, 12), "easy", "※ハローワークが 休みの 日（年末年始（ねんまつ ねんし））が あるので、もうしこみを 見て、"
                                   "れんらくするのは 2027年1月4日(月)からです。"),
    (at(2027, 1, 8, 22), "ja", "※閉庁日のため、お申込みの確認とご連絡は、2027年1月12日(火)以降になります。"),  # 成人の日
])
def test_a_request_made_before_closed_days_is_told_when_the_office_looks_at_it(now, language, said):
    """Otaru, a request on 12/30 (or on 12/28 after the push hours) for 1/5: its card reaches staff on 1/4 at 08:00,
    so the receipt says that nothing comes before 1/4, rather than leave the person days without a word."""
    assert said in receipt_text(OTARU, now, language)


@pytest.mark.parametrize("now", [at(2026, 12, 28, 16, 59), at(2026, 12, 22, 22), at(2027, 1, 3, 10)])
def test_a_request_looked_at_today_or_tomorrow_says_no_closure(now):
    assert "閉庁日" not in receipt_text(OTARU, now)


def test_an_office_that_takes_cards_on_closed_days_says_no_closure():
    office = replace(OTARU, push_hours=replace(OTARU.push_hours, staff_cards_on_closed_days=True))
    assert "閉庁日" not in receipt_text(office, at(2026, 12, 30, 12))


# -- a phone call over the closure: when the office answers again --------------------------------------------

@pytest.mark.parametrize(("now", "opens", "on_the_day"), [
    (at(2026, 12, 30, 10), date(2027, 1, 4), True),     # closed until the session's own day
    (at(2026, 12, 26, 10), date(2026, 12, 28), False),  # a Saturday: Monday, before the closure
    (at(2026, 12, 28, 10), None, False),                # a business day: no word of it
])
def test_a_phone_cancellation_says_when_the_closed_office_answers_again(now, opens, on_the_day):
    booking = Booking(reference="ABCD-EFGH", slot_start=at(2027, 1, 4, 14), status="confirmed")
    said = bookings.summary(SAKATA, booking, now)
    if opens is None:
        assert said["phone_opens"] is None
    else:
        assert (said["phone_opens"]["on"], said["phone_opens"]["on_the_day"]) == (opens, on_the_day)


@pytest.mark.parametrize(("language", "said"), [
    ("ja", "本日は年末年始（12/29〜1/3）のため閉庁しています。お電話は2027年1月4日(月)から受け付けます。"),
    ("ja", "ご予約の当日になりますので、開始時刻（14:00）より前にお電話ください。"),
    ("en", "The office is closed today (the New Year holidays, 12/29 to 1/3). It takes calls again from Mon 4 Jan 2027."),
    ("easy", "きょうは 休みの 日です（年末年始（ねんまつ ねんし））。でんわは 2027年1月4日(月)から できます。"),
])
def test_the_cancel_contact_names_the_day_the_closed_office_answers(language, said):
    booking = Booking(reference="ABCD-EFGH", slot_start=at(2027, 1, 4, 14), status="confirmed")
    b = bookings.summary(SAKATA, booking, at(2026, 12, 30, 10))
    context = localize({"office": SAKATA, "b": b}, language)
    text = environment().get_template(f"messages/{language}/_cancel_contact.j2").render(
        **context, labels=load_labels(language), language=language)
    assert said in " ".join(text.split()) if language == "en" else said in text.replace("\n", "")


@pytest.mark.parametrize(("office", "start", "opens"), [
    (SAKATA, at(2027, 1, 4, 14), {"on": date(2027, 1, 4), "on_the_day": True, "start_time": "14:00"}),
    (OTARU, at(2027, 1, 4, 10), None),                  # cancelled in the chat until the day before, closed or not
])
def test_the_reminder_on_a_closed_day_says_when_the_office_takes_calls(office, start, opens):
    """Sakata's reminder for Monday 1/4 goes on Sunday 1/3, when only a call cancels and the office is closed."""
    booking = Booking(reference="ABCD-EFGH", slot_start=start, status="confirmed")
    said = bookings.phone_opens(office, booking, at(2027, 1, 3, 10))
    assert (said if said is None else {key: said[key] for key in ("on", "on_the_day", "start_time")}) == opens


def test_the_reminder_text_names_the_day_the_office_answers():
    booking = Booking(reference="ABCD-EFGH", slot_start=at(2027, 1, 4, 14), status="confirmed")
    now = at(2027, 1, 3, 10)
    view = {"reference": "ABCD-EFGH", "at": booking.slot_start, "label": "1/4(月) 14:00", "status": "confirmed",
            "timing": bookings.message_timing(SAKATA, booking.slot_start, now, invitation_sent=False, called=False),
            "phone_opens": bookings.phone_opens(SAKATA, booking, now)}
    text = text_of(render(SAKATA, "ja", "reminder_day_before", {"booking": view}))
    assert "お電話は2027年1月4日(月)から受け付けます。" in text
    assert "ご予約の当日になりますので、開始時刻（14:00）より前にお電話ください。" in text


# The confirmation (staff's 承認, or the user's yes to a proposal) says it too where a call is the way to cancel:
# worded for when it is read (a 承認 given after the push hours is read the next morning).
CLOSED = {"ja": "のため閉庁しています。", "en": "The office is closed today", "easy": "きょうは 休みの 日です"}
CLOSED_SAID = {
    ("ja", "year_end"): ["本日は年末年始（12/29〜1/3）のため閉庁しています。お電話は2027年1月4日(月)から受け付けます。",
                         "ご予約の当日になりますので、開始時刻（14:00）より前にお電話ください。"],
    ("ja", "weekend"): ["本日は土曜・日曜のため閉庁しています。お電話は2026年12月28日(月)から受け付けます。"],
    ("en", "year_end"): ["The office is closed today (the New Year holidays, 12/29 to 1/3). It takes calls again from "
                         "Mon 4 Jan 2027.", "That is the day of your session: please call before it starts (14:00)."],
    ("en", "weekend"): ["The office is closed today (the weekend). It takes calls again from Mon 28 Dec 2026."],
    ("easy", "year_end"): ["きょうは 休みの 日です（年末年始（ねんまつ ねんし））。でんわは 2027年1月4日(月)から できます。",
                           "その 日は そうだんの 日です。そうだんが はじまる 時間（14:00）より 前に でんわして ください。"],
    ("easy", "weekend"): ["きょうは 休みの 日です（土よう日・日よう日）。でんわは 2026年12月28日(月)から できます。"],
}
READ_ON = {"year_end": at(2026, 12, 30, 10), "weekend": at(2026, 12, 26, 10)}   # a Wednesday; a Saturday


def flat(text: str, language: str) -> str:
    return " ".join(text.split()) if language == "en" else text.replace("\n", "")


@pytest.mark.parametrize("language", ["ja", "en", "easy"])
@pytest.mark.parametrize("closure", ["year_end", "weekend"])
@pytest.mark.parametrize("office", [SAKATA, OTARU], ids=["sakata", "otaru"])
def test_the_confirmation_read_on_a_closed_day_says_when_the_office_takes_calls(office, closure, language):
    """Sakata cancels by phone only: its confirmation, read while the office is closed, says from when it answers.
    Otaru cancels in the chat until the day before (by phone only on the session's day, a business day): nothing."""
    start = at(2027, 1, 4, 14 if office is SAKATA else 10)
    booking = Booking(reference="ABCD-EFGH", slot_start=start, status="confirmed")
    now = READ_ON[closure]
    view = {"reference": "ABCD-EFGH", "at": start, "label": slotsvc.slot_label(start), "status": "confirmed",
            "timing": bookings.message_timing(office, start, now, invitation_sent=False, called=False),
            "phone_opens": bookings.phone_opens(office, booking, now)}
    text = flat(text_of(render(office, language, "outcome_confirmed", {"booking": view})), language)
    if office is SAKATA:
        for said in CLOSED_SAID[(language, closure)]:
            assert said in text, text
    else:
        assert CLOSED[language] not in text, text


@pytest.mark.parametrize(("decided", "closure"), [(at(2026, 12, 25, 22), "weekend"),     # a Friday night
                                                  (at(2026, 12, 28, 22), "year_end")])   # the last evening open
def test_a_confirmation_given_after_hours_is_worded_for_the_closed_morning_it_is_read(rt, staff, fake_line, user,
                                                                                       decided, closure):
    """承認 at 22:00 on a business day: the push waits for 08:00, on a closed day, and says so (not 'call us')."""
    rt.clock.freeze(at(2026, 12, 21, 10))
    reference = make_request(rt, start=at(2027, 1, 4, 14), user_id=user.user_id)
    rt.clock.freeze(decided)
    login(staff)
    post(staff, f"/staff/bookings/{reference}/confirm")
    run_worker(rt)
    assert fake_line.texts_to(user.user_id) == []                      # after the push hours: held
    rt.clock.freeze(datetime.combine(decided.date() + timedelta(days=1), datetime.min.time(), TOKYO)
                    + timedelta(hours=8))
    run_worker(rt)
    [told] = fake_line.texts_to(user.user_id)
    assert "予約が確定しました" in told
    for said in CLOSED_SAID[("ja", closure)]:
        assert said in told.replace("\n", ""), told


def test_a_proposal_accepted_on_a_saturday_says_when_the_office_takes_calls(rt, staff, fake_line, user):
    """The user's yes is answered at once (a reply, read now): on a Saturday the office answers on Monday."""
    rt.clock.freeze(at(2026, 12, 21, 10))
    reference = make_request(rt, start=at(2026, 12, 28, 14), user_id=user.user_id)
    login(staff)
    post(staff, f"/staff/bookings/{reference}/propose", slot=at(2027, 1, 4, 14).isoformat())
    run_worker(rt)
    rt.clock.freeze(at(2026, 12, 26, 10))
    user.taps(postback_value(fake_line.messages_to(user.user_id), "この日時で予約する"))
    told = fake_line.texts_to(user.user_id)[-1]
    assert "予約が確定しました" in told
    assert CLOSED_SAID[("ja", "weekend")][0] in told.replace("\n", ""), told


def test_a_proposal_answer_pushed_after_its_reply_failed_is_not_held_into_a_business_morning(rt, staff, fake_line,
                                                                                               user):
    """The answer to the user's own tap is worded for now (bot/staff/decisions.py `answer_proposal`): its reply's
    fallback push carries the tap's event, and the push hours let it through in that moment, so a yes tapped at
    20:59 on a Sunday whose reply LINE refused is read that Sunday night (closed, calls from Monday), never held
    until Monday 08:00, when 本日は…閉庁 would be untrue."""
    rt.clock.freeze(at(2026, 12, 21, 10))
    reference = make_request(rt, start=at(2026, 12, 28, 14), user_id=user.user_id)
    login(staff)
    post(staff, f"/staff/bookings/{reference}/propose", slot=at(2027, 1, 4, 14).isoformat())
    run_worker(rt)
    before = len(fake_line.texts_to(user.user_id))
    rt.clock.freeze(at(2026, 12, 27, 20, 59))                          # a Sunday, a minute before the push hours end
    fake_line.fail_next(n=10_000, status=429, path_contains="/reply")
    user.taps(postback_value(fake_line.messages_to(user.user_id), "この日時で予約する"))
    assert fake_line.texts_to(user.user_id)[before:] == []
    rt.clock.freeze(at(2026, 12, 27, 21, 1))                           # the token ran out: owed as a push
    run_worker(rt)
    run_worker(rt)
    [told] = fake_line.texts_to(user.user_id)[before:]
    assert [d.kind for d in fake_line.deliveries()][-1] == "push"
    assert "予約が確定しました" in told
    assert CLOSED_SAID[("ja", "weekend")][0] in told.replace("\n", ""), told
