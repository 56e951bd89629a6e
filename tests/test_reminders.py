"""The reminder as a job seeker expects it: once, the day before (or on the day, saying 本日, when the day-before one
could not arrive in time), never about a booking they cancelled or that moved on, never once the session began.

Sakata's session on Monday 12/7 14:00 (confirmed days ahead); push hours 08:00-21:00. LINE refuses pushes for
a while (the monthly quota, or a 429 with a long Retry-After) so that the day-before reminder, made at 12:00 on
Sunday, is held past midnight: it says 明日, so it is dropped (bot/services/staleness.py), and the morning brings
one saying 本日 instead (bot/staff/jobs.py). Staff see a message waiting for the push hours as such, and until when.
"""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from bot.models import Conversation
from tests.staffkit import fast_password_hashing, staff, user  # noqa: F401 - fixtures
from tests.staffkit import (
    DETAILS, SAKATA_MONDAY, booking, create_staff, login, make_request, outbox_rows, post, run_worker,
)
from tests.test_stale_messages import at, worker_at

TOMORROW = "明日はオンライン職業相談の日です"
TODAY = "本日はオンライン職業相談の日です"


def staff_at(rt, client, moment: datetime):
    """A staff member signed in at `moment` (a dashboard session does not last from one day into the next)."""
    rt.clock.freeze(moment)
    name = f"staff_{moment:%d%H%M}"
    create_staff(rt, username=name)
    assert login(client, username=name).status_code == 302
    return client


def reminders_to(fake_line, user_id: str) -> list[str]:
    return [t for t in fake_line.texts_to(user_id) if "オンライン職業相談の日です" in t]


@pytest.fixture
def confirmed(rt, staff, fake_line, user):
    """The user's booking of Monday 14:00, confirmed on Tuesday 12/1; the confirmation delivered."""
    reference = make_request(rt, user_id=user.user_id)
    post(staff, f"/staff/bookings/{reference}/confirm")
    run_worker(rt)
    assert len(fake_line.texts_to(user.user_id)) == 1
    return reference


def refuse(fake_line, cause: str) -> None:
    """LINE stops taking the office's pushes: the month's quota used up, or a 429 asking to wait ten hours."""
    if cause == "quota":
        fake_line.quota_limit = 0
    else:
        fake_line.fail_next(status=429, path_contains="push", headers={"Retry-After": str(10 * 3600)})


def hold_the_reminder_past_midnight(rt, fake_line, cause: str) -> None:
    refuse(fake_line, cause)
    worker_at(rt, at(6, 12, 0))                      # the reminder is made, and refused
    worker_at(rt, at(6, 22, 30))                     # LINE would take it now, but it is night
    fake_line.quota_limit = None
    fake_line.clear_faults()
    [row] = outbox_rows(rt, purpose="reminder_day_before")
    assert row.status in ("pending", "held") and row.sent_at is None


@pytest.mark.parametrize("cause", ["quota", "retry_after"])
def test_a_reminder_held_past_midnight_arrives_in_the_morning_saying_today(rt, fake_line, user, confirmed,
                                                                          cause):
    hold_the_reminder_past_midnight(rt, fake_line, cause)
    worker_at(rt, at(7, 7, 59))
    assert reminders_to(fake_line, user.user_id) == []
    worker_at(rt, at(7, 8, 0))                       # the 明日 one is dropped...
    worker_at(rt, at(7, 8, 1))                       # ...and the next pass makes the 本日 one
    worker_at(rt, at(7, 9, 0))                       # once
    [text] = reminders_to(fake_line, user.user_id)
    assert text.startswith(TODAY) and confirmed in text and TOMORROW not in text
    assert "開始時刻までに" in text                   # the invitation: before the start, not 前日までに
    [dropped] = outbox_rows(rt, purpose="reminder_day_before")
    assert (dropped.status, dropped.last_error) == ("stale", "stale: session_day_began")
    [row] = outbox_rows(rt, purpose="reminder_same_day")
    assert (row.status, row.booking_reference) == ("sent", confirmed)


def test_a_held_reminder_of_a_booking_cancelled_meanwhile_is_never_sent(rt, client, fake_line, user, confirmed):
    hold_the_reminder_past_midnight(rt, fake_line, "quota")
    staff = staff_at(rt, client, at(7, 7, 30))
    post(staff, f"/staff/bookings/{confirmed}/cancel_user", note="電話で取り消し")
    assert booking(rt, confirmed).status == "cancelled"
    for moment in (at(7, 8, 0), at(7, 8, 1), at(7, 9, 0)):
        worker_at(rt, moment)
    assert reminders_to(fake_line, user.user_id) == []
    assert outbox_rows(rt, purpose="reminder_same_day") == []
    [dropped] = outbox_rows(rt, purpose="reminder_day_before")
    assert (dropped.status, dropped.last_error) == ("stale", "stale: status_changed")


def test_no_reminder_once_the_session_has_begun(rt, fake_line, user, confirmed):
    """LINE refuses all morning: the 本日 reminder made at 08:00 is dropped once the session begins, and no
    other is made."""
    hold_the_reminder_past_midnight(rt, fake_line, "quota")
    fake_line.quota_limit = 0
    for moment in (at(7, 8, 0), at(7, 8, 1), at(7, 13, 0)):
        worker_at(rt, moment)
    fake_line.quota_limit = None
    for moment in (SAKATA_MONDAY, SAKATA_MONDAY + timedelta(minutes=1)):
        worker_at(rt, moment)
    assert reminders_to(fake_line, user.user_id) == []
    [row] = outbox_rows(rt, purpose="reminder_same_day")
    assert (row.status, row.last_error) == ("stale", "stale: session_started")


def test_a_user_who_blocked_the_bot_gets_no_reminder_and_none_is_made_again(rt, client, fake_line, user,
                                                                           confirmed):
    hold_the_reminder_past_midnight(rt, fake_line, "quota")
    user.unfollows()
    for moment in (at(7, 8, 0), at(7, 8, 1), at(7, 9, 0)):
        worker_at(rt, moment)
    assert fake_line.texts_to(user.user_id)[1:] == []
    assert outbox_rows(rt, purpose="reminder_same_day") == []
    [row] = outbox_rows(rt, purpose="reminder_day_before")
    assert row.status in ("skipped", "stale")


@pytest.mark.parametrize("language, today, tomorrow", [("en", "Your online job counselling is today.", "tomorrow"),
                                                       ("easy", "きょうは", "あしたは")])
def test_the_morning_reminder_says_today_in_every_language_and_nothing_personal(rt, fake_line, user, confirmed,
                                                                              language, today, tomorrow):
    with rt.db.transaction() as s:
        conv = s.scalar(select(Conversation).where(Conversation.line_user_id == user.user_id))
        conv.language = language
    hold_the_reminder_past_midnight(rt, fake_line, "quota")
    for moment in (at(7, 8, 0), at(7, 8, 1)):
        worker_at(rt, moment)
    text = fake_line.texts_to(user.user_id)[-1]
    assert text.startswith(today) and confirmed in text and tomorrow not in text.split("\n")[0]
    for value in DETAILS["sakata"].values():
        if isinstance(value, str) and len(value) > 4:
            assert value not in text


def test_staff_see_a_message_held_for_the_push_hours_as_waiting_for_them_not_as_failing(rt, client, fake_line,
                                                                                       user, confirmed):
    """The reminder LINE refused in the afternoon waits, at 22:30, for the push hours of the morning: LINE送信状況
    and the booking's page say so, and until when; not 再送を待っています (as if LINE kept refusing it)."""
    hold_the_reminder_past_midnight(rt, fake_line, "quota")
    staff = staff_at(rt, client, at(6, 22, 35))
    page = staff.get("/staff/outbox").get_data(as_text=True)
    assert "前日のお知らせ（利用者へ）" in page
    assert "送信時間帯を待っています" in page and "12/7(月) 08:00" in page
    assert "再送を待っています" not in page
    page = staff.get(f"/staff/bookings/{confirmed}").get_data(as_text=True)
    assert "送信時間帯を待っています" in page and "12/7(月) 08:00" in page


def test_staff_see_a_decision_that_waits_for_the_morning_and_are_not_told_to_phone(rt, client, fake_line, user):
    """Confirmed at 21:30 for the day after next: the confirmation (never tried) waits for 08:00; the booking's
    page shows it waiting, without asking staff to phone as for a message LINE did not take."""
    reference = make_request(rt, user_id=user.user_id, start=SAKATA_MONDAY + timedelta(days=1))
    staff = staff_at(rt, client, at(6, 21, 30))
    post(staff, f"/staff/bookings/{reference}/confirm")
    worker_at(rt, at(6, 21, 31))
    page = staff.get(f"/staff/bookings/{reference}").get_data(as_text=True)
    notice = page.split('id="undelivered"')[1].split("</div>")[0]
    assert "予約確定のお知らせ（利用者へ）" in notice and "送信時間帯を待っています（12/7(月) 08:00に送ります）" in notice
    assert "お電話でお伝えください" not in notice
    worker_at(rt, at(7, 8, 0))
    page = staff.get(f"/staff/bookings/{reference}").get_data(as_text=True)
    assert 'id="undelivered"' not in page


def test_a_booking_confirmed_late_in_the_evening_for_the_next_day_is_told_once_in_the_morning_as_today(
        rt, client, fake_line, user):
    """Confirmed at 21:30 on Sunday for Monday 14:00: the confirmation waits for 08:00 (the session is not
    near enough to wake anyone), and then it is read on the session's day: it promises nothing "by the day
    before", and no separate reminder follows it."""
    reference = make_request(rt, user_id=user.user_id)
    staff = staff_at(rt, client, at(6, 21, 30))
    post(staff, f"/staff/bookings/{reference}/confirm")
    for moment in (at(6, 21, 31), at(7, 8, 0), at(7, 8, 1), at(7, 12, 0)):
        worker_at(rt, moment)
    [text] = fake_line.texts_to(user.user_id)
    assert "予約が確定しました" in text and reference in text
    assert "開催日の前日までに" not in text and "開始時刻までに" in text
    assert outbox_rows(rt, purpose="reminder_day_before") == outbox_rows(rt, purpose="reminder_same_day") == []
