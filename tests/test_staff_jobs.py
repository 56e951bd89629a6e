"""Scheduled jobs of the handoff: reminders to staff and users, the no-show prompt and the retention purge;
each idempotent and rehearsable with `worker --once --now`."""
from __future__ import annotations

import dataclasses
import threading
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from bot.clock import TOKYO
from bot.models import Booking, Consent, Conversation, OutboxMessage, ProcessedEvent, StaffNotice
from bot.render import text_of
from bot.services import requests as requestsvc
from bot.staff import jobs as staff_jobs
from bot.staff.models import AuditEntry, BookingHandoff
from tests.lineuser import LineUser, StaffGroup, new_group_id
from tests.staffkit import fast_password_hashing  # noqa: F401 - autouse fixture
from tests.staffkit import (
    DETAILS, OTARU_WEDNESDAY, SAKATA_MONDAY, booking, conversation, make_request, outbox_rows, postback_value,
)

FRIDAY_MORNING = datetime(2026, 12, 4, 9, 5, tzinfo=TOKYO)
FRIDAY_AFTERNOON = datetime(2026, 12, 4, 15, 5, tzinfo=TOKYO)
SUNDAY_NOON = datetime(2026, 12, 6, 12, 5, tzinfo=TOKYO)
SUNDAY_AFTERNOON = datetime(2026, 12, 6, 15, 5, tzinfo=TOKYO)


@pytest.fixture
def group_id():
    return new_group_id()


@pytest.fixture
def app(make_app, group_id):
    return make_app(env={"LINE_STAFF_GROUP_ID_SAKATA": group_id})


@pytest.fixture
def cli(app):
    return app.test_cli_runner()


def _rehearse(cli, when: datetime):
    result = cli.invoke(args=["worker", "--once", "--now", when.isoformat()])
    assert result.exit_code == 0, result.output
    return result.output


def _notices(rt, kind: str) -> int:
    with rt.db.reading() as s:
        return s.scalar(select(func.count()).select_from(StaffNotice).where(StaffNotice.kind == kind))


def _cards(fake_line, group_id, heading: str) -> int:
    return sum(heading in t for t in fake_line.texts_to(group_id))


def _confirm(rt, reference, office_id: str = "sakata"):
    from bot.staff import decisions
    from bot.staff.audit import Actor

    with rt.db.transaction() as s:
        row = decisions.load(s, office_id, reference=reference)
        decisions.confirm(s, rt, rt.offices[office_id], row, Actor(label="tanaka"), rt.clock.now())


def test_end_to_end_request_card_approve_confirmation_reminder_attendance(rt, cli, client, fake_line, group_id):
    """A request made by the form's own service, the card, 承認 in the group, the user's confirmation, the
    day-before reminder and the attendance prompt, through signed webhooks and `worker --now`."""
    user = LineUser(client, "sakata", channel_secret=rt.config.channel_secret("sakata"), fake=fake_line,
                    clock=rt.clock)
    group = StaffGroup(client, "sakata", channel_secret=rt.config.channel_secret("sakata"), group_id=group_id,
                       fake=fake_line, clock=rt.clock)
    conv_id = conversation(rt, "sakata", user.user_id)
    with rt.db.transaction() as s:
        conv = s.get(Conversation, conv_id)
        outcome = requestsvc.create_request(s, rt, rt.offices["sakata"], conv, SAKATA_MONDAY,
                                            dict(DETAILS["sakata"]), rt.clock.now())
    assert outcome.status == "created"
    _rehearse(cli, datetime(2026, 12, 1, 10, 1, tzinfo=TOKYO))
    card = [m for m in fake_line.messages_to(group_id) if m["type"] == "flex"][-1]
    group.taps(postback_value([card], "承認"))
    _rehearse(cli, datetime(2026, 12, 1, 10, 2, tzinfo=TOKYO))
    assert "予約が確定しました" in fake_line.texts_to(user.user_id)[-1]
    _rehearse(cli, SUNDAY_NOON)
    assert "明日はオンライン職業相談の日です" in fake_line.texts_to(user.user_id)[-1]
    _rehearse(cli, SAKATA_MONDAY + timedelta(minutes=10))
    prompt = [m for m in fake_line.messages_to(group_id) if m["type"] == "flex"][-1]
    assert "出欠の記録" in prompt["altText"]
    assert "出欠は、押すとすぐに記録されます。押し間違えた場合は、ダッシュボードの予約の画面で、理由を添えて訂正できます。" \
        in text_of([prompt])
    group.taps(postback_value([prompt], "出席"))
    assert booking(rt, outcome.reference).status == "attended"


def test_staff_are_reminded_of_undecided_requests_on_the_business_day_before(rt, cli, fake_line, group_id):
    reference = make_request(rt)
    _rehearse(cli, datetime(2026, 12, 3, 17, 0, tzinfo=TOKYO))   # Thursday: not yet
    assert _notices(rt, "undecided") == 0
    _rehearse(cli, FRIDAY_MORNING)                                # Friday, the business day before Monday
    _rehearse(cli, FRIDAY_MORNING + timedelta(hours=1))           # a rerun does nothing more
    assert _notices(rt, "undecided") == 1
    assert _cards(fake_line, group_id, "未決定の申込") == 1
    assert booking(rt, reference).status == "requested"


def test_a_holiday_before_the_session_moves_the_staff_reminder_earlier(rt, cli):
    # Otaru, Wednesday 2027-11-24: the day before is Labour Thanksgiving Day (Tuesday 11/23), so staff are
    # reminded on Monday 11/22, the last business day before the session.
    start = datetime(2027, 11, 24, 10, 0, tzinfo=TOKYO)
    rt.clock.freeze(datetime(2027, 11, 18, 10, 0, tzinfo=TOKYO))
    make_request(rt, "otaru", start)
    _rehearse(cli, datetime(2027, 11, 19, 9, 5, tzinfo=TOKYO))
    assert _notices(rt, "undecided") == 0
    _rehearse(cli, datetime(2027, 11, 22, 9, 5, tzinfo=TOKYO))
    assert _notices(rt, "undecided") == 1


def test_the_user_gets_one_reminder_the_day_before(rt, cli, fake_line, user_factory):
    user = user_factory("sakata")
    reference = make_request(rt, user_id=user.user_id)
    _confirm(rt, reference)
    _rehearse(cli, SUNDAY_NOON - timedelta(hours=1))
    assert not any("明日は" in t for t in fake_line.texts_to(user.user_id))
    _rehearse(cli, SUNDAY_NOON)
    _rehearse(cli, SUNDAY_NOON + timedelta(hours=2))
    reminders = [t for t in fake_line.texts_to(user.user_id) if "明日はオンライン職業相談の日です" in t]
    assert len(reminders) == 1 and "12/7(月) 14:00" in reminders[0] and reference in reminders[0]
    assert "会議招待メール" in reminders[0]


@pytest.mark.parametrize("recorded", [False, True])
def test_the_reminder_says_an_invitation_and_a_call_recorded_as_done_went_rather_than_promising_them(
        rt, cli, fake_line, user_factory, recorded):
    """Sakata 第6条(2): the 会議招待メール goes 「開催日前日までに」. Staff send it on Friday, the office's last business
    day before a Monday; the reminder, on Sunday, then says it was sent and to tell the office before the start if
    it did not arrive, not that it will come 「本日までに」 (a Sunday, when the office is closed)."""
    from bot.staff import decisions
    from bot.staff.audit import Actor

    user = user_factory("sakata")
    reference = make_request(rt, user_id=user.user_id)
    _confirm(rt, reference)
    if recorded:
        with rt.db.transaction() as s:
            row = decisions.load(s, "sakata", reference=reference)
            decisions.mark_invitation_sent(s, rt.offices["sakata"], row, Actor(label="tanaka"), FRIDAY_AFTERNOON)
            decisions.mark_called(s, rt.offices["sakata"], row, Actor(label="tanaka"), FRIDAY_AFTERNOON)
    _rehearse(cli, SUNDAY_NOON)
    reminder = next(t for t in fake_line.texts_to(user.user_id) if "明日はオンライン職業相談の日です" in t)
    assert ("会議招待メールは、求職者マイページに登録されたメールアドレスあてに、ハローワーク酒田からお送りしています。"
            in reminder) == recorded
    assert ("届いていない場合は、開始時刻までにハローワーク酒田へご連絡ください" in reminder) == recorded
    assert ("前日（本日）までに" in reminder) != recorded
    assert ("日時は、ハローワーク酒田からお電話でもお知らせします。" in reminder) != recorded   # the call was made


def test_the_user_reminder_follows_the_profile(rt, cli, fake_line, user_factory):
    office = rt.offices["sakata"]
    rt.offices["sakata"] = dataclasses.replace(office, reminders={"user_day_before": False})
    try:
        user = user_factory("sakata")
        _confirm(rt, make_request(rt, user_id=user.user_id))
        _rehearse(cli, SUNDAY_NOON)
        assert not any("明日は" in t for t in fake_line.texts_to(user.user_id))
    finally:
        rt.offices["sakata"] = office


def test_staff_are_reminded_when_the_invitation_is_not_marked_sent(rt, cli, fake_line, group_id):
    # Monday 12/7's session: the office's last business day before it is Friday 12/4, not Sunday 12/6
    # (Sakata sends the invitation 「開催日前日までに」; the office is closed at the weekend).
    unsent = make_request(rt)
    sent = make_request(rt, start=SAKATA_MONDAY + timedelta(hours=1))
    for reference in (unsent, sent):
        _confirm(rt, reference)
    with rt.db.transaction() as s:
        s.scalar(select(Booking).where(Booking.reference == sent)).invitation_sent_at = rt.clock.now()
    _rehearse(cli, datetime(2026, 12, 4, 14, 59, tzinfo=TOKYO))
    assert _notices(rt, "invitation") == 0
    _rehearse(cli, FRIDAY_AFTERNOON)
    _rehearse(cli, FRIDAY_AFTERNOON + timedelta(minutes=30))
    with rt.db.reading() as s:
        rows = s.execute(select(Booking.reference).join(StaffNotice, StaffNotice.booking_id == Booking.id)
                         .where(StaffNotice.kind == "invitation")).scalars().all()
    assert rows == [unsent]
    assert _cards(fake_line, group_id, "会議招待メールの送付が未記録") == 1   # Sakata's task, by its name
    _rehearse(cli, SUNDAY_AFTERNOON)   # once only
    assert _notices(rt, "invitation") == 1


@pytest.mark.parametrize("office_id,start,reminded_on", [
    # Otaru, Wednesday 2027-11-24: Tuesday 11/23 is Labour Thanksgiving Day, so Monday 11/22.
    ("otaru", datetime(2027, 11, 24, 10, 0, tzinfo=TOKYO), datetime(2027, 11, 22, 15, 0, tzinfo=TOKYO)),
    # Sakata, Monday 2027-01-04: 12/29-1/3 are the year-end closure, so Monday 2026-12-28.
    ("sakata", datetime(2027, 1, 4, 14, 0, tzinfo=TOKYO), datetime(2026, 12, 28, 15, 0, tzinfo=TOKYO)),
])
def test_the_invitation_reminder_skips_holidays_and_the_year_end(rt, cli, office_id, start, reminded_on):
    rt.clock.freeze(reminded_on - timedelta(days=4))
    _confirm(rt, make_request(rt, office_id, start), office_id)
    _rehearse(cli, reminded_on - timedelta(minutes=1))
    assert _notices(rt, "invitation") == 0
    _rehearse(cli, reminded_on)
    assert _notices(rt, "invitation") == 1


def test_the_no_show_prompt_at_start_plus_ten_minutes(rt, cli, fake_line, group_id):
    reference = make_request(rt)
    _confirm(rt, reference)
    _rehearse(cli, SAKATA_MONDAY + timedelta(minutes=9))
    assert _notices(rt, "no_show_check") == 0
    _rehearse(cli, SAKATA_MONDAY + timedelta(minutes=10))
    _rehearse(cli, SAKATA_MONDAY + timedelta(minutes=40))
    assert _notices(rt, "no_show_check") == 1
    marked = make_request(rt, start=SAKATA_MONDAY + timedelta(hours=1))
    _confirm(rt, marked)
    with rt.db.transaction() as s:
        s.scalar(select(Booking).where(Booking.reference == marked)).status = "attended"
    _rehearse(cli, SAKATA_MONDAY + timedelta(hours=1, minutes=15))
    assert _notices(rt, "no_show_check") == 1


def test_retention_purge(rt, cli, user_factory):
    user = user_factory("sakata")
    user.says("予約")
    user.taps(postback_value(user.messages(), "同意する"))
    done = make_request(rt, user_id=user.user_id)
    _confirm(rt, done)
    withdrawn = make_request(rt, start=SAKATA_MONDAY + timedelta(hours=1))
    with rt.db.transaction() as s:
        row = s.scalar(select(Booking).where(Booking.reference == withdrawn))
        row.status, row.updated_at = "withdrawn", rt.clock.now()
    # 31 days later the withdrawn request is gone, the session's details are kept.
    _rehearse(cli, rt.clock.now() + timedelta(days=31))
    assert booking(rt, withdrawn) is None
    kept = booking(rt, done)
    assert kept.details is not None and kept.seeker_hash is not None
    # 90 days after the session the details go, the booking row and the consent stay.
    _rehearse(cli, SAKATA_MONDAY + timedelta(days=90, hours=1))
    kept = booking(rt, done)
    assert kept.details is None and kept.seeker_hash is None and kept.details_purged_at is not None
    with rt.db.reading() as s:
        assert s.scalar(select(func.count()).select_from(Consent)) == 1
        assert s.scalar(select(func.count()).select_from(ProcessedEvent)) == 0  # dedupe rows: 7 days
        assert s.scalar(select(func.count()).select_from(OutboxMessage)) == 0  # sent messages: 30 days
        purge = s.scalars(select(AuditEntry).where(AuditEntry.action == "retention_purge")).all()
        assert [e.detail for e in purge] == [{"details": 0, "requests": 1}, {"details": 1, "requests": 0}]


def _write(rt, reference, note=None, memo=None):
    """Staff write about a booking: a 職員メモ, or a memo as they cancel on the user's behalf."""
    from bot.staff import decisions
    from bot.staff.audit import Actor

    with rt.db.transaction() as s:
        row = decisions.load(s, "sakata", reference=reference)
        if note is not None:
            decisions.set_note(s, rt, rt.offices["sakata"], row, Actor(label="tanaka"), rt.clock.now(), note)
        if memo is not None:
            decisions.cancel(s, rt, rt.offices["sakata"], row, Actor(label="tanaka"), rt.clock.now(),
                             by_office=False, note=memo)


def _memos(rt) -> dict[str, tuple[str, str, bool]]:
    with rt.db.reading() as s:
        return {e.reference: (e.action, e.actor, e.note is not None) for e in s.scalars(
            select(AuditEntry).where(AuditEntry.action.in_(("withdraw_for_user", "cancel_for_user"))))}


def _pass_statements(make_app, folder, copies: int, weeks_ahead: int) -> list[str]:
    """The statements of a pass of the jobs (after a first one) on a deployment of the shipped offices and
    `copies` more like Sakata, each with a request `weeks_ahead` (nothing due)."""
    import shutil

    from bot.config import DEFAULT_OFFICES_DIR
    from tests.bench.bench_scale import make_profiles
    from tests.sqlwatch import watch

    shutil.copytree(DEFAULT_OFFICES_DIR, folder)
    make_profiles(folder, copies)
    rt = make_app(offices_dir=str(folder)).extensions["madoguchi"]
    for office in rt.offices:
        start = OTARU_WEDNESDAY if office == "otaru" else SAKATA_MONDAY
        make_request(rt, office, start=start + timedelta(weeks=weeks_ahead), details={}, notify=False)
    staff_jobs.run_due(rt)
    with watch(rt.db.engine) as seen:
        staff_jobs.run_due(rt)
    return [s for s in seen if s.split()[0].upper() not in ("BEGIN", "COMMIT", "ROLLBACK")]


def test_a_pass_sends_as_many_statements_for_hundreds_of_offices_as_for_two(make_app, tmp_path):
    """A pass runs every few seconds: each job reads every office's rows at once and the retention purge runs
    once for the offices that keep data alike, so a national deployment's pass costs what two offices' does
    (it was 14 statements and 5 transactions more for each office)."""
    two = _pass_statements(make_app, tmp_path / "two", 0, weeks_ahead=3)
    many = _pass_statements(make_app, tmp_path / "many", 12, weeks_ahead=4)   # the same database
    assert len(many) == len(two), (len(two), len(many))
    assert len(two) <= 30


def test_a_pass_after_the_reminders_were_made_does_not_grow_with_the_bookings(rt):
    """Once a booking's reminder or prompt is made, later passes (every few seconds) neither read it again nor
    claim its mark again: a pass costs the same for 3 such bookings as for 30."""
    from tests.sqlwatch import watch

    def add(count: int, first: int) -> None:
        now = FRIDAY_MORNING - timedelta(days=3)   # requested and decided before the reminders' times
        with rt.db.transaction() as s:
            for i in range(first, first + count):
                conv = Conversation(office_id="sakata", line_user_id=f"U{i:032d}", state="idle", context={},
                                    step=0, misses=0, language="ja", followed=True, booking_blocked=False,
                                    last_event_ms=0, created_at=now)
                s.add(conv)
                s.flush()
                for status, start in (("requested", SAKATA_MONDAY), ("confirmed", SAKATA_MONDAY),
                                      ("confirmed", SUNDAY_AFTERNOON - timedelta(hours=2))):
                    s.add(Booking(reference=f"T{status[0]}{i:03d}{start.day:02d}", office_id="sakata",
                                  conversation_id=conv.id, slot_start=start + timedelta(minutes=i), status=status,
                                  source="line", created_at=now, updated_at=now,
                                  decided_at=None if status == "requested" else now))

    def pass_cost() -> int:
        staff_jobs.run_due(rt)   # makes what is due
        with watch(rt.db.engine) as seen:
            staff_jobs.run_due(rt)
        return len([s for s in seen if s.split()[0].upper() not in ("BEGIN", "COMMIT", "ROLLBACK")])

    rt.clock.freeze(SUNDAY_AFTERNOON)
    add(3, 0)
    few = pass_cost()
    assert {k: _notices(rt, k) for k in ("undecided", "invitation", "no_show_check")} == \
        {"undecided": 3, "invitation": 3, "no_show_check": 3}
    add(27, 3)
    assert pass_cost() == few
    assert _notices(rt, "undecided") == 30 and _notices(rt, "no_show_check") == 30


def test_closed_requests_go_a_batch_per_pass(rt, monkeypatch):
    """A backlog of closed requests (a worker that did not run for a while) goes a batch per pass, never in one
    statement too big for the database, and the next passes take the rest."""
    monkeypatch.setattr(staff_jobs, "PURGE_BATCH", 2)
    for hour in range(5):
        make_request(rt, start=SAKATA_MONDAY + timedelta(hours=hour), status="withdrawn", notify=False)
    rt.clock.freeze(rt.clock.now() + timedelta(days=31))
    assert [staff_jobs.run_due(rt)["requests_purged"] for _ in range(4)] == [2, 2, 1, 0]
    with rt.db.reading() as s:
        assert s.scalar(select(func.count()).select_from(Booking)) == 0


def test_a_closed_request_goes_on_the_clock_of_its_closing_whatever_staff_touch_after(rt):
    """closed_requests_days is counted from the moment the request closed: a 職員メモ saved on it later (a
    staff member keeping it alive, on purpose or not, every few weeks) does not keep its details longer."""
    from bot.staff import decisions
    from bot.staff.audit import Actor

    keep = rt.offices["sakata"].retention_rules()["closed_requests_days"]
    declined = make_request(rt, start=SAKATA_MONDAY + timedelta(days=40))
    closed_on = rt.clock.now()
    with rt.db.transaction() as s:
        decisions.decline(s, rt, rt.offices["sakata"], decisions.load(s, "sakata", reference=declined),
                          Actor(label="tanaka"), closed_on)
    for days in (10, 20, keep - 1):
        rt.clock.freeze(closed_on + timedelta(days=days))
        _write(rt, declined, note=f"本人より電話 090-9999-8888 ({days})")
        assert staff_jobs.run_due(rt)["requests_purged"] == 0
    closed = booking(rt, declined)
    assert closed.status == "declined" and closed.updated_at > closed_on     # the note moved the last change
    rt.clock.freeze(closed_on + timedelta(days=keep, minutes=5))
    assert staff_jobs.run_due(rt)["requests_purged"] == 1
    with rt.db.reading() as s:
        assert s.scalar(select(Booking).where(Booking.reference == declined)) is None


def test_retention_purge_takes_the_staff_notes_and_memos_with_the_details(rt, cli):
    kept = make_request(rt)
    _confirm(rt, kept)
    _write(rt, kept, note="本人より電話 090-9999-8888 うつ病で通院中")
    cancelled = make_request(rt, start=SAKATA_MONDAY + timedelta(hours=1))
    _confirm(rt, cancelled)
    _write(rt, cancelled, note="職員メモ", memo="本人より取消の電話 090-9999-8888")
    withdrawn = make_request(rt, start=SAKATA_MONDAY + timedelta(hours=2))
    _write(rt, withdrawn, memo="本人より取下げの電話 090-9999-8888")
    assert _memos(rt) == {cancelled: ("cancel_for_user", "tanaka", True),
                          withdrawn: ("withdraw_for_user", "tanaka", True)}
    # 31 days later the withdrawn request is gone; its audit entry stays, without the memo.
    _rehearse(cli, rt.clock.now() + timedelta(days=31))
    assert booking(rt, withdrawn) is None
    assert _memos(rt)[withdrawn] == ("withdraw_for_user", "tanaka", False)
    assert _memos(rt)[cancelled] == ("cancel_for_user", "tanaka", True)
    assert booking(rt, kept).staff_note is not None and booking(rt, cancelled).staff_note is not None
    # 90 days after the sessions the notes and the memo go with the details; the entries stay.
    _rehearse(cli, SAKATA_MONDAY + timedelta(days=90, hours=2))
    for reference in (kept, cancelled):
        row = booking(rt, reference)
        assert row.details is None and row.staff_note is None and row.details_purged_at is not None
    assert _memos(rt) == {cancelled: ("cancel_for_user", "tanaka", False),
                          withdrawn: ("withdraw_for_user", "tanaka", False)}


def test_retention_purge_takes_a_note_left_behind_without_details(rt, cli):
    """A note kept after the details went (written before notes were erased with them) goes at the same time."""
    reference = make_request(rt)
    _write(rt, reference, note="本人より電話 090-9999-8888")
    with rt.db.transaction() as s:
        s.scalar(select(Booking).where(Booking.reference == reference)).details = None
    _rehearse(cli, SAKATA_MONDAY + timedelta(days=90) - timedelta(minutes=5))
    assert booking(rt, reference).staff_note is not None
    _rehearse(cli, SAKATA_MONDAY + timedelta(days=90, minutes=5))
    assert booking(rt, reference).staff_note is None


def test_an_office_whose_profile_was_removed_keeps_no_details_past_the_default_retention(rt, monkeypatch):
    """A profile taken out of OFFICES_DIR: its bookings' details and notes still go by the default rules."""
    reference = make_request(rt)
    _confirm(rt, reference)
    _write(rt, reference, note="本人より電話 090-9999-8888")
    monkeypatch.setattr(rt, "offices", {k: v for k, v in rt.offices.items() if k != "sakata"})
    rt.clock.freeze(SAKATA_MONDAY + timedelta(days=89))
    staff_jobs.run_due(rt)
    row = booking(rt, reference)
    assert row.details is not None and row.staff_note is not None
    rt.clock.freeze(SAKATA_MONDAY + timedelta(days=90, hours=1))
    figures = staff_jobs.run_due(rt)
    row = booking(rt, reference)
    assert row.details is None and row.seeker_hash is None and row.staff_note is None
    assert figures["details_purged"] == 1
    with rt.db.reading() as s:
        assert s.scalar(select(func.count()).select_from(ProcessedEvent)) == 0
        purge = s.scalars(select(AuditEntry).where(AuditEntry.action == "retention_purge")).all()
        assert [(e.office_id, e.detail) for e in purge] == [("sakata", {"details": 1, "requests": 0})]


def test_an_office_whose_profile_was_removed_keeps_no_line_id_of_users_who_still_follow(rt, monkeypatch):
    """Nothing reaches the users of a removed office any more (its webhook answers 404, so they never unfollow
    either): their LINE ids go by the default rules as an unfollowed user's, once their details went."""
    following = conversation(rt, "sakata", "U" + "f" * 32)
    reference = make_request(rt, user_id="U" + "f" * 32)
    idle = conversation(rt, "sakata", "U" + "e" * 32)
    monkeypatch.setattr(rt, "offices", {k: v for k, v in rt.offices.items() if k != "sakata"})

    def ids() -> list[str]:
        with rt.db.reading() as s:
            return [s.get(Conversation, conv).line_user_id for conv in (following, idle)]

    rt.clock.freeze(SAKATA_MONDAY + timedelta(days=89))
    staff_jobs.run_due(rt)
    assert ids() == ["U" + "f" * 32, f"{staff_jobs.FORGOTTEN}{idle}"]       # its booking still holds details
    rt.clock.freeze(SAKATA_MONDAY + timedelta(days=90, hours=1))
    assert staff_jobs.run_due(rt)["users_forgotten"] == 1
    assert ids() == [f"{staff_jobs.FORGOTTEN}{following}", f"{staff_jobs.FORGOTTEN}{idle}"]
    assert booking(rt, reference).conversation_id == following
    with rt.db.reading() as s:
        assert not s.get(Conversation, following).followed                # nothing is ever pushed to it


def test_retention_purge_takes_the_override_reason_with_the_details(rt, cli):
    """A phone booking of a blocked slot, taken with a reason: the reason goes with the details, the row stays."""
    from bot.staff import decisions, personal
    from bot.staff.audit import Actor

    office, tanaka, now = rt.offices["sakata"], Actor(label="tanaka"), rt.clock.now()
    with rt.db.transaction() as s:
        decisions.block(s, office, tanaka, now, SAKATA_MONDAY.date(), SAKATA_MONDAY)
        made = decisions.create_booking(s, rt, office, tanaka, now, start=SAKATA_MONDAY, source="phone",
                                        details=DETAILS["sakata"], override_reason="本人より電話 090-9999-8888 通院のため")
        booking_id, reference = made.id, made.reference

    def reason() -> bytes | None:
        with rt.db.reading() as s:
            return s.get(BookingHandoff, booking_id).override_reason

    assert personal.open_note(rt, reason()) == "本人より電話 090-9999-8888 通院のため"
    _rehearse(cli, SAKATA_MONDAY + timedelta(days=90) - timedelta(minutes=5))
    assert reason() is not None
    _rehearse(cli, SAKATA_MONDAY + timedelta(days=90, minutes=5))
    assert reason() is None and booking(rt, reference).details is None


def test_retention_purge_takes_the_reason_for_blocking_a_slot_90_days_after_its_day(rt, cli):
    """Staff write why they blocked a slot as they write a note (a phone number, an illness): it is kept as long
    after the day as the details after a session; the block stays."""
    from bot.models import SlotBlock
    from bot.staff import decisions, personal
    from bot.staff.audit import Actor

    written = "本人より電話 090-9999-8888 通院の付き添い"
    with rt.db.transaction() as s:
        decisions.block(s, rt.offices["sakata"], Actor(label="tanaka"), rt.clock.now(), SAKATA_MONDAY.date(),
                        SAKATA_MONDAY, personal.seal_note(rt, written, decisions.BLOCK_REASON_LIMIT))

    def reason() -> str | None:
        with rt.db.reading() as s:
            return personal.open_note(rt, s.scalars(select(SlotBlock)).one().reason)

    end_of_day = datetime.combine(SAKATA_MONDAY.date() + timedelta(days=1), datetime.min.time(), tzinfo=TOKYO)
    _rehearse(cli, end_of_day + timedelta(days=90) - timedelta(minutes=5))
    assert reason() == written
    _rehearse(cli, end_of_day + timedelta(days=90, minutes=5))
    assert reason() is None


def test_two_workers_running_the_jobs_at_once_remind_once(make_app, fake_line, group_id):
    apps = [make_app(env={"LINE_STAFF_GROUP_ID_SAKATA": group_id}) for _ in range(3)]
    rt = apps[0].extensions["madoguchi"]
    for i in range(3):
        make_request(rt, start=SAKATA_MONDAY + timedelta(hours=i))
    barrier = threading.Barrier(len(apps))
    errors = []

    def run(app):
        other = app.extensions["madoguchi"]
        other.clock.freeze(FRIDAY_MORNING)
        barrier.wait()
        try:
            staff_jobs.run_due(other)
        except Exception as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(a,)) for a in apps]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert _notices(rt, "undecided") == 3
    assert len(outbox_rows(rt, purpose="staff_card")) == 3 + 3   # three new requests, three reminders


def test_a_claim_another_worker_holds_open_is_left_to_it_and_the_pass_goes_on(rt):
    # Two workers at the top of the hour both claim the hourly mark; the first holds it in an open transaction
    # longer than the lock timeout (a busy machine). The second leaves the claim to it instead of failing its pass
    # with LockNotAvailable (seen in CI), and its transaction stays usable; once the first rolls back, it is free.
    if rt.db.sqlite:
        pytest.skip("PostgreSQL only (SQLite serialises writers with BEGIN IMMEDIATE)")

    class RolledBack(Exception):
        pass

    now = rt.clock.now()
    with pytest.raises(RolledBack):
        with rt.db.transaction() as first:
            assert staff_jobs._mark(first, "unknown_offices", "2026-12-01T10", now)
            with pytest.raises(RolledBack):
                with rt.db.transaction() as second:
                    assert not staff_jobs._mark(second, "unknown_offices", "2026-12-01T10", now)
                    assert staff_jobs._mark(second, "unknown_offices", "2026-12-01T11", now)  # the pass goes on
                    raise RolledBack
            raise RolledBack
    with rt.db.transaction() as again:
        assert staff_jobs._mark(again, "unknown_offices", "2026-12-01T10", now)


def test_finished_outbox_rows_go_after_30_days_and_waiting_ones_stay(rt, cli, user_factory):
    from bot import outbox

    user = user_factory("sakata")
    user.says("ヘルプ")
    start = rt.clock.now()
    with rt.db.transaction() as s:
        outbox.add(s, office="sakata", kind="push", recipient=user.user_id, now=start,  # not due yet
                   messages=[{"type": "text", "text": "x"}], due_at=start + timedelta(days=60))
        for status in ("failed", "unknown", "skipped"):
            outbox.add(s, office="sakata", kind="push", recipient=user.user_id, now=start,
                       messages=[{"type": "text", "text": "x"}]).status = status

    def statuses() -> list[str]:
        with rt.db.reading() as s:
            return sorted(s.scalars(select(OutboxMessage.status)))

    _rehearse(cli, start + timedelta(days=29))
    assert statuses() == ["failed", "pending", "sent", "skipped", "unknown"]
    _rehearse(cli, start + timedelta(days=31))
    assert statuses() == ["pending"]


def _stored(rt, value: str) -> list[str]:
    """The tables holding `value` in a row (any column, JSON included), as a dump would show them. (Not the
    database files: old versions of a row stay in free pages until the database reuses or vacuums them.)"""
    from bot.models import Base

    with rt.db.reading() as s:
        return [table.name for table in Base.metadata.sorted_tables
                if any(value in repr(tuple(row)) for row in s.execute(table.select()))]


def _conv_of(rt, user_id: str) -> Conversation | None:
    with rt.db.reading() as s:
        return s.scalar(select(Conversation).where(Conversation.line_user_id == user_id))


def test_the_line_id_of_a_user_who_unfollowed_is_forgotten_once_nothing_needs_it(rt, user_factory, fake_line):
    """30 days after unfollowing (`retention.unfollowed_days`), and only once their bookings are closed and
    without details, a user's LINE id is replaced by a pseudonym everywhere: the booking, the consent and the
    outbox rows still point to the same (emptied) conversation. A user who still follows is kept."""
    from bot.services import broadcasts
    from bot.staff import decisions
    from bot.staff.audit import Actor

    booked, passing, following, blocked = (user_factory("sakata") for _ in range(4))
    for user in (booked, passing, following, blocked):
        user.says("予約")
        user.taps(postback_value(user.messages(), "同意する"))
    reference = make_request(rt, user_id=booked.user_id)
    _confirm(rt, reference)
    no_show = make_request(rt, user_id=blocked.user_id, start=SAKATA_MONDAY + timedelta(hours=1), status="no_show")
    with rt.db.transaction() as s:                     # staff refuse this user further online booking
        row = decisions.load(s, "sakata", reference=no_show)
        assert decisions.set_user_blocked(s, rt.offices["sakata"], row, Actor(label="tanaka"), rt.clock.now(),
                                          blocked=True).changed
    with rt.db.transaction() as s:                     # a terms notice planned to every follower, not yet sent
        broadcasts.plan(s, "sakata", "2099-01-01", "multicast", rt.clock.now())
    with rt.db.transaction() as s:                     # the staff cancel it: a push the user never saw
        row = decisions.load(s, "sakata", reference=reference)
        decisions.cancel(s, rt, rt.offices["sakata"], row, Actor(label="tanaka"), rt.clock.now(), by_office=True)
    for user in (booked, passing, blocked):
        user.unfollows()
    ids = {user.user_id: _conv_of(rt, user.user_id).id for user in (booked, passing, following, blocked)}
    unfollowed_at = rt.clock.now()

    rt.clock.freeze(unfollowed_at + timedelta(days=30) - timedelta(minutes=5))
    assert staff_jobs.run_due(rt)["users_forgotten"] == 0
    rt.clock.freeze(unfollowed_at + timedelta(days=30, minutes=5))
    assert staff_jobs.run_due(rt)["users_forgotten"] == 1           # the booking still holds its details: kept
    assert _stored(rt, passing.user_id) == []
    with rt.db.reading() as s:
        gone = s.get(Conversation, ids[passing.user_id])
        assert (gone.line_user_id, gone.followed, gone.context) == (f"forgotten:{gone.id}", False, {})
    assert _conv_of(rt, booked.user_id) is not None and _conv_of(rt, following.user_id) is not None

    rt.clock.freeze(SAKATA_MONDAY + timedelta(days=90, hours=2))     # the details went: now it goes too
    figures = staff_jobs.run_due(rt)
    assert figures["details_purged"] == 2 and figures["users_forgotten"] == 1
    assert _stored(rt, booked.user_id) == []
    assert staff_jobs.run_due(rt)["users_forgotten"] == 0                    # nothing more to do
    with rt.db.reading() as s:
        row = s.scalar(select(Booking).where(Booking.reference == reference))
        assert row.conversation_id == ids[booked.user_id]         # the booking still points to its conversation
        consents = s.scalars(select(Consent.conversation_id)).all()
        assert sorted(consents) == sorted(ids.values())             # the consent log keeps every record
        recipients = set(s.scalars(select(OutboxMessage.recipient)))
        assert f"forgotten:{ids[booked.user_id]}" in recipients       # the undelivered push is still listed
    assert _conv_of(rt, following.user_id).id == ids[following.user_id]
    assert _conv_of(rt, blocked.user_id).id == ids[blocked.user_id]    # blocked: kept, or they would come back new
    with rt.db.transaction() as s:                                   # until staff lift the block
        row = decisions.load(s, "sakata", reference=no_show)
        decisions.set_user_blocked(s, rt.offices["sakata"], row, Actor(label="tanaka"), rt.clock.now(), blocked=False)
    assert staff_jobs.run_due(rt)["users_forgotten"] == 1 and _conv_of(rt, blocked.user_id) is None

    booked.follows()                                                 # back later: a new user
    again = _conv_of(rt, booked.user_id)
    assert again.id not in ids.values() and again.followed
    booked.says("予約")
    assert postback_value(booked.messages(), "同意する")               # asked to consent again


def test_a_booking_left_confirmed_after_its_session_does_not_keep_the_line_id_for_ever(rt, user_factory):
    """Staff never recorded attendance: the booking stays `confirmed` after its session. Once its details went
    (90 days after the session) it no longer needs its user: one who unfollowed is forgotten like any other,
    not kept for as long as the booking stays open on paper."""
    user = user_factory("sakata")
    user.says("予約")
    user.taps(postback_value(user.messages(), "同意する"))
    reference = make_request(rt, user_id=user.user_id)
    _confirm(rt, reference)
    user.unfollows()
    rt.clock.freeze(SAKATA_MONDAY + timedelta(days=90, hours=2))
    figures = staff_jobs.run_due(rt)
    assert booking(rt, reference).status == "confirmed" and booking(rt, reference).details is None
    assert figures["users_forgotten"] == 1 and _conv_of(rt, user.user_id) is None
