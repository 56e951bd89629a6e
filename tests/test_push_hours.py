"""Quiet hours: a push that can wait is not sent at night; it goes when the office's push hours open.

The profile's `push_hours` (both offices: 08:00-21:00, Asia/Tokyo) hold the decisions, reminders, receipts and
staff-group cards; an urgent message (the office cancels, or confirms, a session early next morning) and the rest
of an answer to what someone just sent still go at once (bot/services/push_hours.py).
"""
from __future__ import annotations

from datetime import datetime, timedelta

from bot.clock import TOKYO
from tests.staffkit import fast_password_hashing, user  # noqa: F401 - fixtures
from tests.staffkit import (
    OTARU_WEDNESDAY, SAKATA_MONDAY, booking, create_staff, login, make_request, outbox_rows, post, run_worker,
)
from tests.test_stale_messages import group_id, grouped  # noqa: F401 - fixtures (Sakata's staff group)

CONFIRMED = "予約が確定しました"
CANCELLED = "都合により中止となりました"
REMINDER = "明日はオンライン職業相談の日です"


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 12, day, hour, minute, tzinfo=TOKYO)


def worker_at(rt, moment: datetime) -> dict:
    rt.clock.freeze(moment)
    return run_worker(rt)


def staff_at(rt, client, moment: datetime, office: str = "sakata"):
    """A staff member signed in at `moment` (a session does not last from the morning into the night)."""
    rt.clock.freeze(moment)
    create_staff(rt, office=office, username=f"late_{office}")
    assert login(client, username=f"late_{office}").status_code == 302
    return client


def test_a_decision_taken_late_in_the_evening_reaches_the_user_in_the_morning_once(rt, client, fake_line, user):
    reference = make_request(rt, user_id=user.user_id)
    staff_at(rt, client, at(1, 22, 30))
    post(client, f"/staff/bookings/{reference}/confirm")
    assert booking(rt, reference).status == "confirmed"
    figures = worker_at(rt, at(1, 22, 31))
    assert fake_line.texts_to(user.user_id) == []
    assert figures["quiet"] == 1
    [row] = outbox_rows(rt, purpose="outcome_confirmed")
    assert (row.status, row.attempts, row.due_at) == ("pending", 0, at(2, 8, 0))
    key = row.retry_key
    worker_at(rt, at(2, 7, 59))
    assert fake_line.texts_to(user.user_id) == []
    worker_at(rt, at(2, 8, 0))
    worker_at(rt, at(2, 8, 1))                        # a second pass (or a second worker) sends nothing more
    texts = fake_line.texts_to(user.user_id)
    assert len(texts) == 1 and CONFIRMED in texts[0]
    [row] = outbox_rows(rt, purpose="outcome_confirmed")
    assert (row.status, row.attempts, row.retry_key) == ("sent", 1, key)


def test_a_message_queued_by_day_but_delayed_into_the_night_waits_too(rt, client, fake_line, user):
    """The worker was stopped (or LINE was down) from the afternoon: its backlog does not go out at 23:00."""
    reference = make_request(rt, user_id=user.user_id)
    staff_at(rt, client, at(1, 16, 0))
    post(client, f"/staff/bookings/{reference}/decline", reason="schedule")
    worker_at(rt, at(1, 23, 0))
    assert fake_line.texts_to(user.user_id) == []
    worker_at(rt, at(2, 8, 0))
    assert "担当職員の都合がつかず" in fake_line.texts_to(user.user_id)[0]


def test_a_day_before_reminder_the_worker_missed_is_made_in_the_morning_saying_today(rt, client, fake_line, user):
    """The worker was stopped from before noon until 21:30 the day before: no reminder at night; when the push
    hours open on the session's day, one that says 本日 (never 明日), sent once."""
    reference = make_request(rt, user_id=user.user_id)
    staff_at(rt, client, at(1, 11, 0))
    post(client, f"/staff/bookings/{reference}/confirm")
    run_worker(rt)
    worker_at(rt, at(6, 21, 30))
    worker_at(rt, at(7, 7, 59))
    assert outbox_rows(rt, purpose="reminder_day_before") == []
    assert len(fake_line.texts_to(user.user_id)) == 1            # the confirmation
    worker_at(rt, at(7, 8, 0))
    worker_at(rt, at(7, 8, 5))
    texts = fake_line.texts_to(user.user_id)
    assert len(texts) == 2 and texts[1].startswith("本日はオンライン職業相談の日です。") and reference in texts[1]
    assert not any(REMINDER in t for t in texts)
    assert "開始時刻までに" in texts[1]                           # the invitation: before the start, not 前日までに
    [row] = outbox_rows(rt, purpose="reminder_same_day")
    assert row.status == "sent"


def test_a_reminder_made_on_the_day_is_dropped_once_the_session_has_begun(rt, client, fake_line, user):
    reference = make_request(rt, user_id=user.user_id)
    staff_at(rt, client, at(1, 11, 0))
    post(client, f"/staff/bookings/{reference}/confirm")
    run_worker(rt)
    fake_line.quota_limit = 0                                    # LINE refuses from the morning on
    worker_at(rt, at(7, 8, 0))
    fake_line.quota_limit = None
    worker_at(rt, SAKATA_MONDAY)
    [row] = outbox_rows(rt, purpose="reminder_same_day")
    assert (row.status, row.last_error) == ("stale", "stale: session_started")
    assert len(fake_line.texts_to(user.user_id)) == 1


def test_the_office_cancelling_a_session_early_next_morning_goes_at_once_and_a_later_one_waits(
        rt, client, fake_line, user_factory):
    """Otaru's sessions of 10:00 and 16:00 tomorrow, both cancelled by the office at 22:00: waiting until 08:00
    would leave 2 hours before the first (less than `urgent_notice_hours`), so it goes now, even though a message
    about the second, to the same chat, waits (a held message does not hold the urgent one behind it)."""
    otaru = user_factory("otaru")
    late = make_request(rt, office="otaru", start=OTARU_WEDNESDAY + timedelta(hours=6), user_id=otaru.user_id,
                        status="confirmed")
    early = make_request(rt, office="otaru", start=OTARU_WEDNESDAY, user_id=otaru.user_id, status="confirmed")
    staff_at(rt, client, at(1, 22, 0), office="otaru")
    post(client, f"/staff/bookings/{late}/cancel_office", note="システム障害")
    post(client, f"/staff/bookings/{early}/cancel_office", note="システム障害")
    assert (booking(rt, late).status, booking(rt, early).status) == ("cancelled_by_office", "cancelled_by_office")
    worker_at(rt, at(1, 22, 1))
    texts = fake_line.texts_to(otaru.user_id)
    assert len(texts) == 1 and CANCELLED in texts[0] and early in texts[0]
    worker_at(rt, at(2, 8, 0))
    texts = fake_line.texts_to(otaru.user_id)
    assert len(texts) == 2 and late in texts[1]


def test_a_stop_under_the_terms_of_a_session_early_next_morning_goes_at_once(rt, client, fake_line, user_factory):
    """利用規約に基づき中止する is as urgent as the 都合's: the person must not prepare for a session that is off."""
    otaru = user_factory("otaru")
    reference = make_request(rt, office="otaru", start=OTARU_WEDNESDAY, user_id=otaru.user_id, status="confirmed")
    staff_at(rt, client, at(1, 22, 0), office="otaru")
    post(client, f"/staff/bookings/{reference}/cancel_terms")
    assert booking(rt, reference).status == "cancelled_by_office"
    worker_at(rt, at(1, 22, 1))
    texts = fake_line.texts_to(otaru.user_id)
    assert len(texts) == 1 and "利用規約第10条(1)に基づき" in texts[0] and reference in texts[0]


def test_a_late_confirmation_of_a_session_early_next_morning_goes_at_once(rt, client, fake_line, user_factory):
    otaru = user_factory("otaru")
    reference = make_request(rt, office="otaru", start=OTARU_WEDNESDAY, user_id=otaru.user_id)
    staff_at(rt, client, at(1, 21, 45), office="otaru")
    post(client, f"/staff/bookings/{reference}/confirm")
    worker_at(rt, at(1, 21, 46))
    assert any(CONFIRMED in t for t in fake_line.texts_to(otaru.user_id))


def test_the_rest_of_an_answer_to_what_the_user_just_sent_is_not_held(rt, fake_line, user):
    """A push that carries an event's answer (a reply that did not fit, or whose token ran out): they are awake."""
    from tests.test_outbox import push

    rt.clock.freeze(at(1, 23, 30))
    push(rt, user.user_id, "ご質問への回答です。", event_id="01ABCDEFGHJKMNPQRSTVWXYZ0")
    push(rt, user.user_id, "お知らせです。")
    run_worker(rt)
    assert fake_line.texts_to(user.user_id) == ["ご質問への回答です。"]
    worker_at(rt, at(2, 8, 0))
    assert fake_line.texts_to(user.user_id) == ["ご質問への回答です。", "お知らせです。"]


def test_the_staff_group_is_not_woken_at_night_by_a_new_request(grouped, fake_line, group_id):
    rt = grouped.extensions["madoguchi"]
    rt.clock.freeze(at(1, 23, 10))
    reference = make_request(rt)
    run_worker(rt)
    assert fake_line.deliveries("push") == []
    rt.clock.freeze(at(2, 8, 0))
    run_worker(rt)
    [card] = fake_line.deliveries("push")
    assert card.to == group_id and reference in fake_line.texts_to(group_id)[0]


def test_the_staff_group_is_not_pushed_on_the_office_s_closed_days(grouped, fake_line, group_id, user_factory):
    """A request made on a Saturday morning: the user's own messages go (they are awake and asked), but the staff
    group's card waits for Monday's push hours, when the office opens (staff are off, nothing can be decided
    before); an office whose profile says `staff_cards_on_closed_days: true` gets it at once."""
    from dataclasses import replace

    from tests.test_outbox import push

    rt = grouped.extensions["madoguchi"]
    user = user_factory("sakata")
    rt.clock.freeze(at(5, 10, 0))   # Saturday 12/5
    reference = make_request(rt, start=at(7, 14), user_id=user.user_id)
    push(rt, user.user_id, "お知らせです。")
    run_worker(rt)
    assert fake_line.texts_to(user.user_id) == ["お知らせです。"] and fake_line.texts_to(group_id) == []
    worker_at(rt, at(6, 12, 0))     # Sunday
    worker_at(rt, at(7, 7, 59))     # Monday, before the push hours
    assert fake_line.texts_to(group_id) == []
    worker_at(rt, at(7, 8, 0))
    assert [reference in text for text in fake_line.texts_to(group_id)] == [True]
    office = rt.offices["sakata"]
    rt.offices["sakata"] = replace(office, push_hours=replace(office.push_hours, staff_cards_on_closed_days=True))
    rt.clock.freeze(at(12, 10, 0))  # the next Saturday
    other = make_request(rt, start=at(14, 15), user_id=user_factory("sakata").user_id)
    run_worker(rt)
    assert any(other in text for text in fake_line.texts_to(group_id))


def test_an_office_s_own_push_hours_are_followed(rt, fake_line, user):
    """An office whose profile allows pushes from 07:00 to 20:00."""
    from dataclasses import replace
    from datetime import time

    from bot.offices import PushHours
    from tests.test_outbox import push

    rt.offices["sakata"] = replace(rt.offices["sakata"], push_hours=PushHours(start=time(7), end=time(20)))
    rt.clock.freeze(at(2, 7, 30))
    push(rt, user.user_id, "朝のお知らせです。")
    run_worker(rt)
    rt.clock.freeze(at(2, 20, 30))
    push(rt, user.user_id, "夜のお知らせです。")
    run_worker(rt)
    assert fake_line.texts_to(user.user_id) == ["朝のお知らせです。"]
    worker_at(rt, at(3, 7, 0))
    assert fake_line.texts_to(user.user_id) == ["朝のお知らせです。", "夜のお知らせです。"]


def test_an_office_whose_push_hours_end_at_24_00_is_pushed_at_any_hour(rt, fake_line, user, tmp_path):
    """`end: "24:00"` with `start: "00:00"`: the benchmark's profiles, so that its figures do not depend on the hour."""
    from bot.offices import read_office
    from tests.test_outbox import push

    shipped = open(rt.offices["sakata"].source_file, encoding="utf-8").read()
    profile = shipped.replace('start: "08:00"\n  end: "21:00"', 'start: "00:00"\n  end: "24:00"')
    assert profile != shipped
    path = tmp_path / "sakata.yaml"
    path.write_text(profile, encoding="utf-8")
    rt.offices["sakata"] = read_office(path)
    for hour, minute in ((0, 0), (3, 30), (23, 59)):
        rt.clock.freeze(at(2, hour, minute))
        push(rt, user.user_id, f"{hour}時{minute}分のお知らせです。")
        run_worker(rt)
    assert fake_line.texts_to(user.user_id) == ["0時0分のお知らせです。", "3時30分のお知らせです。", "23時59分のお知らせです。"]


def test_a_receipt_is_not_pushed_at_night_and_the_user_who_writes_first_in_the_morning_gets_it_free(
        rt, fake_line, user_factory):
    from tests.formflow import hold_directly
    from tests.test_requests import nonce_of, submit

    otaru = user_factory("otaru")
    rt.clock.freeze(at(1, 23, 0))
    conv, _ = hold_directly(rt, "otaru", user_id=otaru.user_id)
    outcome = submit(rt, conv, nonce_of(rt, conv), "otaru")
    assert worker_at(rt, at(1, 23, 10))["receipts_pushed"] == 0
    assert fake_line.deliveries("push") == []
    rt.clock.freeze(at(2, 7, 30))
    otaru.says("予約確認")
    assert worker_at(rt, at(2, 8, 5))["receipts_pushed"] == 0
    assert [d.kind for d in fake_line.deliveries() if otaru.user_id in d.recipients] == ["reply"]
    assert f"受付番号: {outcome.reference}" in "\n".join(fake_line.texts_to(otaru.user_id))


def test_a_receipt_still_due_goes_when_the_push_hours_open(rt, fake_line, user_factory):
    from tests.formflow import hold_directly
    from tests.test_requests import nonce_of, submit

    otaru = user_factory("otaru")
    rt.clock.freeze(at(1, 20, 58))
    conv, _ = hold_directly(rt, "otaru", user_id=otaru.user_id)
    outcome = submit(rt, conv, nonce_of(rt, conv), "otaru")
    assert worker_at(rt, at(1, 21, 5))["receipts_pushed"] == 0
    assert worker_at(rt, at(2, 8, 0))["receipts_pushed"] == 1
    [text] = fake_line.texts_to(otaru.user_id)
    assert "お申込みを受け付けました" in text and outcome.reference in text


def test_a_terms_notice_to_every_follower_is_refused_at_night_and_sent_in_the_morning(app, rt, fake_line,
                                                                                      tmp_path):
    from tests.test_terms_updates import _cli, _followers, _publish

    _publish(app, tmp_path)
    _followers(rt, 3)
    rt.clock.freeze(at(1, 22, 0))
    refused = _cli(app, "terms", "broadcast", "--office", "sakata", "--mode", "multicast", "--yes")
    assert refused.exit_code == 1
    assert ("outside sakata's push hours (08:00-21:00, Japan time): nothing sent; run the same command again from "
            "2026-12-02 08:00, or use --mode next-message") in " ".join(refused.output.split())
    assert fake_line.deliveries("multicast") == []
    assert _cli(app, "terms", "broadcast", "--office", "sakata", "--mode", "multicast").exit_code == 0  # estimate
    rt.clock.freeze(at(2, 8, 0))
    sent = _cli(app, "terms", "broadcast", "--office", "sakata", "--mode", "multicast", "--yes")
    assert sent.exit_code == 0, sent.output
    assert len(fake_line.deliveries("multicast")) == 1


def test_a_long_multicast_stops_when_the_push_hours_end_and_the_rerun_resumes(app, rt, fake_line, tmp_path,
                                                                             monkeypatch):
    from tests.test_terms_updates import _cli, _followers, _publish

    _publish(app, tmp_path)
    _followers(rt, 1200)                                 # three calls of 500 at most
    sent = rt.line.multicast

    def slow(*args, **kwargs):                          # each call takes an hour of the app's clock
        result = sent(*args, **kwargs)
        rt.clock.advance(hours=1)
        return result

    monkeypatch.setattr(rt.line, "multicast", slow)
    rt.clock.freeze(at(1, 20, 30))
    stopped = _cli(app, "terms", "broadcast", "--office", "sakata", "--mode", "multicast", "--yes")
    assert stopped.exit_code == 1
    assert "stopped; 1 of 3 calls sent; run the same command again from 2026-12-02 08:00" in \
        " ".join(stopped.output.split())
    assert len(fake_line.deliveries("multicast")) == 1
    rt.clock.freeze(at(2, 8, 0))
    monkeypatch.setattr(rt.line, "multicast", sent)
    resumed = _cli(app, "terms", "broadcast", "--office", "sakata", "--mode", "multicast", "--yes")
    assert resumed.exit_code == 0, resumed.output
    assert len(fake_line.deliveries("multicast")) == 3


# -- the monthly quota nearly used up ---------------------------------------------------------------

def test_with_the_quota_down_to_its_reserve_staff_cards_give_way_to_the_users_messages(grouped, fake_line,
                                                                                       group_id, user_factory):
    """Sakata keeps 20 messages of the month for job seekers: with 15 left, the new request's card (5 members: 5
    messages) is not pushed (the dashboard shows it; LINE送信状況 says why), and the user's confirmation goes."""
    rt = grouped.extensions["madoguchi"]
    sakata = user_factory("sakata")
    fake_line.quota_limit, fake_line.consumption = 200, 185
    reference = make_request(rt, user_id=sakata.user_id)
    run_worker(rt)
    assert fake_line.deliveries("push") == []
    [card] = outbox_rows(rt, purpose="staff_card")
    assert (card.status, card.last_error) == ("stale", "stale: quota_reserved")
    client = staff_at(rt, grouped.test_client(), rt.clock.now())
    post(client, f"/staff/bookings/{reference}/confirm")
    run_worker(rt)
    assert any(CONFIRMED in t for t in fake_line.texts_to(sakata.user_id))
    page = client.get("/staff/outbox").get_data(as_text=True)
    assert "利用者へのお知らせを優先し、職員グループには送りませんでした" in page


def test_with_quota_to_spare_the_staff_cards_go(grouped, fake_line, group_id):
    rt = grouped.extensions["madoguchi"]
    fake_line.quota_limit, fake_line.consumption = 200, 170
    make_request(rt)
    run_worker(rt)
    [card] = fake_line.deliveries("push")
    assert card.to == group_id


def test_with_the_quota_used_up_a_card_is_held_with_the_rest_and_goes_once_the_plan_allows(grouped, fake_line,
                                                                                           group_id):
    rt = grouped.extensions["madoguchi"]
    fake_line.quota_limit, fake_line.consumption = 200, 200
    make_request(rt)
    run_worker(rt)
    [card] = outbox_rows(rt, purpose="staff_card")
    assert card.status == "held"
    fake_line.quota_limit = 5000                        # a larger plan
    rt.clock.advance(minutes=2)
    run_worker(rt)
    assert [d.to for d in fake_line.deliveries("push")] == [group_id]


def test_an_answer_line_delayed_into_the_night_waits_for_the_morning_and_goes_once(rt, fake_line, user):
    """The rest of an answer goes at once while the person is in the chat; one that LINE held up (it refused every
    call from 20:55) until after 21:00 is a message delayed into the night like any other: it goes, once, when the
    push hours open, not at 23:00 when LINE takes messages again."""
    rt.clock.freeze(at(1, 20, 55))
    fake_line.fail_next(status=429, n=10_000)
    user.says("予約")
    [answer] = outbox_rows(rt)
    assert (answer.kind, answer.status) == ("reply", "pending")   # refused: owed, on its token while it lives
    worker_at(rt, at(1, 20, 57))                                # the token ran out: owed as one push
    [answer] = outbox_rows(rt)
    assert (answer.kind, answer.status) == ("push", "pending")
    worker_at(rt, at(1, 21, 30))
    fake_line.clear_faults()
    worker_at(rt, at(1, 23, 0))
    assert fake_line.texts_to(user.user_id) == []
    worker_at(rt, at(2, 8, 0))
    worker_at(rt, at(2, 8, 5))
    assert len(fake_line.texts_to(user.user_id)) == 1
    assert [d.kind for d in fake_line.deliveries()] == ["push"]
