"""A booking's row id is not forever: SQLite gives the id of a deleted row that had the largest id to the next row
(tables without AUTOINCREMENT), so once the newest request is purged (closed_requests_days), the next booking takes
its id. Nothing kept of the purged booking may then apply to the new one: its job marks (a reminder skipped as
made), its audit trail and memos, a reveal of its details. Likewise a terms notice's run and chunks, deleted when
their version is withdrawn: a command still holding their ids records nothing on the run that took them. PostgreSQL
never reuses an id: there these tests check the same outcomes without the reuse."""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select, update

from bot.clock import TOKYO
from bot.cli import terms as terms_cli
from bot.models import Booking, BroadcastChunk, Conversation, StaffNotice, TermsBroadcast
from bot.services import broadcasts, terms
from bot.staff import jobs as staff_jobs
from bot.staff.models import JobMark
from tests.staffkit import fast_password_hashing  # noqa: F401 - autouse fixture
from tests.staffkit import login, make_request, post, reveal, staff  # noqa: F401 - fixture

FRIDAY_MORNING = datetime(2026, 12, 4, 9, 5, tzinfo=TOKYO)        # the business day before SAKATA_MONDAY
LATER_MONDAY = datetime(2027, 1, 18, 14, 0, tzinfo=TOKYO)
LATER_FRIDAY_MORNING = datetime(2027, 1, 15, 9, 5, tzinfo=TOKYO)  # the business day before LATER_MONDAY


def _id(rt, reference: str) -> int:
    with rt.db.reading() as s:
        return s.scalar(select(Booking.id).where(Booking.reference == reference))


def _undecided_notices(rt, reference: str) -> int:
    with rt.db.reading() as s:
        return s.scalar(select(func.count()).select_from(StaffNotice).join(
            Booking, Booking.id == StaffNotice.booking_id).where(
            StaffNotice.kind == "undecided", Booking.reference == reference))


def _withdraw_and_purge(rt, reference: str) -> None:
    """The request closes, and goes with the purge of closed requests a month later (its job marks stay)."""
    with rt.db.transaction() as s:
        s.execute(update(Booking).where(Booking.reference == reference).values(
            status="withdrawn", closed_at=rt.clock.now(), updated_at=rt.clock.now()))
    rt.clock.freeze(rt.clock.now() + timedelta(days=31))
    assert staff_jobs.run_due(rt)["requests_purged"] == 1
    assert _id(rt, reference) is None


def _purged_then_new(rt) -> tuple[str, int, str, int]:
    """The newest request, reminded to staff as undecided, withdrawn and purged; then the next request."""
    first = make_request(rt, notify=False)
    first_id = _id(rt, first)
    rt.clock.freeze(FRIDAY_MORNING)
    staff_jobs.run_due(rt)
    assert _undecided_notices(rt, first) == 1
    _withdraw_and_purge(rt, first)
    second = make_request(rt, start=LATER_MONDAY, notify=False,
                          details={"name": "鳥海 次郎", "seeker_number": "99999-000001"})
    second_id = _id(rt, second)
    if rt.db.sqlite:
        assert second_id == first_id  # what these tests are about: the id came back
    return first, first_id, second, second_id


def test_the_next_request_on_the_id_of_a_purged_one_still_gets_its_undecided_reminder(rt):
    _, _, second, _ = _purged_then_new(rt)
    rt.clock.freeze(LATER_FRIDAY_MORNING)
    staff_jobs.run_due(rt)
    assert _undecided_notices(rt, second) == 1
    staff_jobs.run_due(rt)                         # and once only
    assert _undecided_notices(rt, second) == 1


def test_a_mark_written_by_the_id_before_the_upgrade_still_counts_for_its_own_booking(rt):
    """Marks made before marks were keyed by the reference: a booking already reminded is not reminded again."""
    reference = make_request(rt, notify=False)
    rt.clock.freeze(FRIDAY_MORNING)
    with rt.db.transaction() as s:
        s.add(JobMark(job="undecided", key=str(_id(rt, reference)), created_at=rt.clock.now()))
    staff_jobs.run_due(rt)
    assert _undecided_notices(rt, reference) == 0


def test_a_mark_written_by_the_id_of_a_purged_request_does_not_count_for_the_next(rt):
    """An old mark by the id, made for the purged request before the upgrade, is older than the new booking."""
    first = make_request(rt, notify=False)
    first_id = _id(rt, first)
    rt.clock.freeze(FRIDAY_MORNING)
    with rt.db.transaction() as s:
        s.add(JobMark(job="undecided", key=str(first_id), created_at=rt.clock.now()))
    _withdraw_and_purge(rt, first)
    second = make_request(rt, start=LATER_MONDAY, notify=False)
    rt.clock.freeze(LATER_FRIDAY_MORNING)
    staff_jobs.run_due(rt)
    assert _undecided_notices(rt, second) == 1


def test_nothing_of_a_purged_booking_shows_on_the_page_of_the_next_one_on_its_id(rt, staff):
    """The purged request's audit trail (with its memo) and the reveal of its details, live when it was purged,
    do not carry to the booking that took its id."""
    first = make_request(rt, notify=False)
    assert post(staff, f"/staff/bookings/{first}/note", note="本人より電話あり").status_code == 302
    with rt.db.transaction() as s:
        s.execute(update(Booking).where(Booking.reference == first).values(
            status="withdrawn", closed_at=rt.clock.now(), updated_at=rt.clock.now()))
    rt.clock.freeze(rt.clock.now() + timedelta(days=31))
    assert login(staff).status_code == 302               # signed in again a month on
    assert reveal(staff, first).status_code == 302      # revealed: the grant lives a few minutes
    assert staff_jobs.run_due(rt)["requests_purged"] == 1
    second = make_request(rt, start=LATER_MONDAY, notify=False,
                          details={"name": "鳥海 次郎", "seeker_number": "99999-000001"})
    page = staff.get(f"/staff/bookings/{second}").get_data(as_text=True)
    assert first not in page
    assert "鳥海 次郎" not in page and "本人より電話あり" not in page


# -- terms notices: a command held up past its lease -------------------------------------------------

NEW_VERSION = "2026-12-10"


def _publish(rt) -> None:
    with rt.db.transaction() as s:
        terms.publish(s, "sakata", NEW_VERSION, "第1条 改定後の本文です。", "第6条の予約方法を変更しました。",
                      today=rt.clock.now().date(), now=rt.clock.now())


def _followers(rt, n: int) -> None:
    with rt.db.transaction() as s:
        for i in range(n):
            s.add(Conversation(office_id="sakata", line_user_id=f"U{i:032x}", state="idle", context={}, step=0,
                               misses=0, language="ja", followed=True, booking_blocked=False, last_event_ms=0,
                               created_at=rt.clock.now()))


def _withdrawn_and_planned_again(rt, runner: str) -> int:
    """Past the lease of a run nobody heard from, its version is withdrawn and published again, and a new run of
    it is planned and claimed (the run and its chunks the newest rows: SQLite gives their ids to the new ones)."""
    rt.clock.advance(seconds=broadcasts.LEASE.total_seconds() + 1)
    with rt.db.transaction() as s:
        terms.withdraw(s, "sakata", NEW_VERSION, now=rt.clock.now())
    _publish(rt)
    with rt.db.transaction() as s:
        run = broadcasts.plan(s, "sakata", NEW_VERSION, "multicast", rt.clock.now())
        assert broadcasts.claim(s, run.id, runner, rt.clock.now())
        return run.id


def _run_state(rt, run_id: int) -> tuple[str, str | None, list[tuple[str, int]]]:
    with rt.db.reading() as s:
        run = s.get(TermsBroadcast, run_id)
        chunks = s.scalars(select(BroadcastChunk).where(BroadcastChunk.broadcast_id == run_id)
                           .order_by(BroadcastChunk.seq)).all()
        return run.status, run.runner, [(c.status, len(c.recipients.get("to") or [])) for c in chunks]


def test_a_notice_command_whose_run_was_withdrawn_records_nothing_on_the_run_that_took_its_ids(rt):
    _publish(rt)
    _followers(rt, 600)
    with rt.db.transaction() as s:
        old = broadcasts.plan(s, "sakata", NEW_VERSION, "multicast", rt.clock.now())
        assert broadcasts.claim(s, old.id, "runner-1", rt.clock.now())
        old_id, old_chunks = old.id, [c.id for c in broadcasts.pending_chunks(s, old.id)]
    new_id = _withdrawn_and_planned_again(rt, "runner-2")
    if rt.db.sqlite:
        assert new_id == old_id  # the ids came back
    # The first command comes back (a suspended terminal) and records its call, then ends its run.
    with rt.db.transaction() as s:
        held = broadcasts.mark_sent(s, old_chunks[0], "runner-1", old_id, rt.clock.now())
    assert _run_state(rt, new_id) == ("running", "runner-2", [("pending", 500), ("pending", 100)])
    assert held is False   # the command stops
    with rt.db.transaction() as s:
        broadcasts.finish(s, old_id, rt.clock.now(), "complete", runner="runner-1")
    assert _run_state(rt, new_id) == ("running", "runner-2", [("pending", 500), ("pending", 100)])


def test_a_notice_command_held_up_while_its_run_was_taken_over_stops(app, rt, fake_line, monkeypatch):
    _publish(rt)
    _followers(rt, 600)
    monkeypatch.setattr(terms_cli, "SECONDS_BETWEEN_MULTICASTS", 0)
    send, taken = rt.line.multicast, []

    def multicast(*args, **kwargs):
        if not taken:   # the command is suspended just before its first call
            taken.append(_withdrawn_and_planned_again(rt, "runner-2"))
        return send(*args, **kwargs)

    monkeypatch.setattr(rt.line, "multicast", multicast)
    result = app.test_cli_runner().invoke(args=["terms", "broadcast", "--office", "sakata", "--mode", "multicast",
                                                "--yes"])
    assert _run_state(rt, taken[0]) == ("running", "runner-2", [("pending", 500), ("pending", 100)])
    assert result.exit_code == 1 and "stopped: this command was held up" in result.output
    assert len(fake_line.deliveries("multicast")) == 1
