"""Messages held while LINE could not take them are dropped once out of date, never sent late; staff see why.

LINE stops taking pushes for a while (the monthly quota here, `fake_line.quota_limit = 0`; a refused token
or a run of 5xx hold them alike). When it takes them again, each queued message about a booking is checked
against the booking as it is now (bot/services/staleness.py).
"""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from bot.clock import TOKYO
from tests.lineuser import new_group_id
from tests.staffkit import fast_password_hashing, staff, user  # noqa: F401 - fixtures
from tests.staffkit import SAKATA_MONDAY, booking, create_staff, login, make_request, outbox_rows, post, run_worker

CONFIRMED = "予約が確定しました"
REMINDER = "明日はオンライン職業相談の日です"


@pytest.fixture
def line_down(fake_line):
    """LINE refuses every push for the monthly quota until `line_down.end()`."""
    class Outage:
        def end(self):
            fake_line.quota_limit = None

    fake_line.quota_limit = 0
    try:
        yield Outage()
    finally:
        fake_line.quota_limit = None


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 12, day, hour, minute, tzinfo=TOKYO)


def worker_at(rt, moment: datetime) -> dict:
    rt.clock.freeze(moment)
    return run_worker(rt)


def row_of(rt, purpose: str):
    [row] = outbox_rows(rt, purpose=purpose)
    return row


def outbox_page(staff) -> str:
    response = staff.get("/staff/outbox")
    assert response.status_code == 200
    return response.get_data(as_text=True)


# -- the user's messages ------------------------------------------------------------------------------

@pytest.mark.parametrize("back_at, sent", [(at(6, 20, 59), True), (at(7, 8, 0), False)])
def test_a_day_before_reminder_is_dropped_once_the_session_day_has_begun(rt, staff, fake_line, user, line_down,
                                                                       back_at, sent):
    reference = make_request(rt, user_id=user.user_id)
    post(staff, f"/staff/bookings/{reference}/confirm")
    worker_at(rt, at(6, 12, 0))                      # the confirmation and the reminder wait
    assert [r.purpose for r in outbox_rows(rt, kind="push")] == ["outcome_confirmed", "reminder_day_before"]
    assert fake_line.deliveries("push") == []
    line_down.end()
    worker_at(rt, back_at)
    texts = fake_line.texts_to(user.user_id)
    assert any(CONFIRMED in t for t in texts)       # the session has not begun: still worth telling
    assert any(REMINDER in t for t in texts) is sent
    reminder = row_of(rt, "reminder_day_before")
    assert (reminder.status, reminder.last_error) == (("sent", None) if sent else
                                                      ("stale", "stale: session_day_began"))


def test_a_confirmation_after_the_user_cancelled_is_dropped_and_the_cancellation_still_arrives(
        rt, staff, fake_line, user, line_down):
    reference = make_request(rt, user_id=user.user_id)
    post(staff, f"/staff/bookings/{reference}/confirm")
    run_worker(rt)
    post(staff, f"/staff/bookings/{reference}/cancel_user", note="電話で取り消し")   # the user phoned
    assert booking(rt, reference).status == "cancelled"
    line_down.end()
    worker_at(rt, rt.clock.now() + timedelta(minutes=2))
    texts = fake_line.texts_to(user.user_id)
    assert not any(CONFIRMED in t for t in texts)
    assert len(texts) == 1 and "予約をキャンセルしました" in texts[0]
    confirmed = row_of(rt, "outcome_confirmed")
    assert (confirmed.status, confirmed.last_error) == ("stale", "stale: status_changed")
    assert (confirmed.booking_reference, confirmed.booking_status) == (reference, "confirmed")


def test_a_dropped_message_whose_earlier_try_went_unanswered_may_have_arrived_and_staff_are_told(
        rt, staff, fake_line, user):
    """A 5xx after LINE took the push: the message may be in the chat already. Dropping it sends nothing twice,
    and the dashboard does not claim it never went."""
    reference = make_request(rt, user_id=user.user_id)
    post(staff, f"/staff/bookings/{reference}/confirm")
    fake_line.fail_next(status=500, path_contains="/push", fail_after_accept=True)
    run_worker(rt)
    assert row_of(rt, "outcome_confirmed").status == "pending"
    post(staff, f"/staff/bookings/{reference}/cancel_user", note="電話で取り消し")
    worker_at(rt, rt.clock.now() + timedelta(minutes=2))
    confirmed = row_of(rt, "outcome_confirmed")
    assert confirmed.status == "stale"
    assert confirmed.last_error == "stale: status_changed; an earlier try may have arrived"
    assert sum(CONFIRMED in t for t in fake_line.texts_to(user.user_id)) == 1    # the try LINE took, once
    assert "すでに届いている場合があります" in outbox_page(staff)


def test_a_confirmation_is_dropped_once_the_session_has_begun(rt, staff, fake_line, user, line_down):
    reference = make_request(rt, user_id=user.user_id)
    post(staff, f"/staff/bookings/{reference}/confirm")
    run_worker(rt)
    line_down.end()
    worker_at(rt, SAKATA_MONDAY)
    assert not any(CONFIRMED in t for t in fake_line.texts_to(user.user_id))
    assert row_of(rt, "outcome_confirmed").last_error == "stale: session_started"
    login(staff)                                    # the morning after: a new day's sign-in
    page = outbox_page(staff)
    assert "予約確定のお知らせ（利用者へ）" in page and "相談の開始時刻を過ぎました" in page
    assert f'href="/staff/bookings/{reference}"' in page


def test_a_decline_still_arrives_however_late(rt, staff, fake_line, user, line_down):
    """The user still does not know their request was turned down: that is never out of date."""
    reference = make_request(rt, user_id=user.user_id)
    post(staff, f"/staff/bookings/{reference}/decline", reason="schedule")
    run_worker(rt)
    line_down.end()
    worker_at(rt, SAKATA_MONDAY + timedelta(days=3))
    assert row_of(rt, "outcome_declined").status == "sent"
    assert "担当職員の都合がつかず" in fake_line.texts_to(user.user_id)[-1]


def test_an_offer_withdrawn_before_it_could_be_sent_is_dropped(rt, staff, fake_line, user, line_down):
    reference = make_request(rt, user_id=user.user_id)
    post(staff, f"/staff/bookings/{reference}/propose", slot=(SAKATA_MONDAY + timedelta(days=7)).isoformat())
    run_worker(rt)
    post(staff, f"/staff/bookings/{reference}/decline", reason="schedule")   # the offer is taken back
    line_down.end()
    worker_at(rt, rt.clock.now() + timedelta(minutes=2))
    assert row_of(rt, "outcome_proposed").last_error == "stale: status_changed"
    [text] = fake_line.texts_to(user.user_id)
    assert "担当職員の都合がつかず" in text


def test_a_message_about_no_booking_is_never_dropped(rt, fake_line, user, line_down):
    from tests.test_outbox import push

    push(rt, user.user_id, "お知らせです。")
    run_worker(rt)
    line_down.end()
    worker_at(rt, rt.clock.now() + timedelta(days=20))
    assert fake_line.texts_to(user.user_id) == ["お知らせです。"]


def test_a_message_about_a_booking_no_longer_kept_is_dropped(rt, staff, fake_line, user, line_down):
    from bot.staff import jobs

    reference = make_request(rt, user_id=user.user_id)
    post(staff, f"/staff/bookings/{reference}/decline", reason="schedule")
    run_worker(rt)
    with rt.db.transaction() as s:   # the retention purge took the closed request meanwhile
        assert jobs._delete_closed_requests(s, ["sakata"], rt.clock.now() + timedelta(seconds=1)) == {"sakata": 1}
    line_down.end()
    worker_at(rt, rt.clock.now() + timedelta(minutes=2))
    assert row_of(rt, "outcome_declined").last_error == "stale: booking_gone"
    assert fake_line.texts_to(user.user_id) == []
    assert "（申込の記録は削除済み）" in outbox_page(staff)


# -- the staff group's cards --------------------------------------------------------------------------

@pytest.fixture
def group_id():
    return new_group_id()


@pytest.fixture
def grouped(make_app, group_id):
    """The app with Sakata's staff group set."""
    return make_app(env={"LINE_STAFF_GROUP_ID_SAKATA": group_id})


def test_a_card_asking_staff_to_decide_is_dropped_once_decided_and_the_expiry_card_still_goes(
        grouped, fake_line, group_id):
    rt = grouped.extensions["madoguchi"]
    client = grouped.test_client()
    create_staff(rt)
    login(client)
    fake_line.quota_limit = 0
    try:
        expiring = make_request(rt)
        decided = make_request(rt, start=SAKATA_MONDAY + timedelta(hours=1))
        run_worker(rt)
        post(client, f"/staff/bookings/{decided}/confirm")
        fake_line.quota_limit = None
        worker_at(rt, SAKATA_MONDAY)                 # the first request expires as its slot begins
    finally:
        fake_line.quota_limit = None
    cards = {(r.booking_reference, r.notice_kind): (r.status, r.last_error)
             for r in outbox_rows(rt, purpose="staff_card") if r.notice_kind in ("new_request", "expired")}
    assert cards == {(expiring, "new_request"): ("stale", "stale: status_changed"),
                     (decided, "new_request"): ("stale", "stale: status_changed"),
                     (expiring, "expired"): ("sent", None)}
    assert not any(decided in str(m) and "承認" in str(m) for m in fake_line.messages_to(group_id))
    login(client)
    page = client.get("/staff/outbox").get_data(as_text=True)
    assert "職員グループへの通知（新しい申込）" in page and "送信を取りやめました" in page


@pytest.mark.parametrize("then", ["invitation recorded", "session begun"])
def test_the_invitation_check_is_dropped_once_done_or_too_late(grouped, fake_line, then):
    rt = grouped.extensions["madoguchi"]
    client = grouped.test_client()
    create_staff(rt)
    login(client)
    reference = make_request(rt)
    post(client, f"/staff/bookings/{reference}/confirm")
    run_worker(rt)
    fake_line.quota_limit = 0
    try:
        worker_at(rt, at(4, 15, 0))                  # Friday 15:00: the invitation is not recorded yet
        assert outbox_rows(rt, notice_kind="invitation")[0].status == "held"
        if then == "invitation recorded":
            login(client)
            post(client, f"/staff/bookings/{reference}/invitation")
            back = at(4, 15, 30)
        else:
            back = SAKATA_MONDAY
        fake_line.quota_limit = None
        worker_at(rt, back)
    finally:
        fake_line.quota_limit = None
    [card] = outbox_rows(rt, notice_kind="invitation")
    assert card.last_error == ("stale: invitation_sent" if then == "invitation recorded" else "stale: session_started")
