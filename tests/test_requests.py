"""Requests (bot.services.requests), the booking lifecycle (bot.services.lifecycle) and their worker jobs."""
from __future__ import annotations

import re
import uuid
from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from sqlalchemy import delete, func, select

from bot.clock import TOKYO
from bot.crypto import for_config
from bot.form_models import FormSubmission
from bot.models import Booking, Conversation, SlotClaim, SlotHold, StaffNotice
from bot.services import holds, lifecycle, requests
from bot.worker import Worker
from tests.formflow import hold_directly, valid_answers

REFERENCE = re.compile(r"^[A-HJ-NP-Z2-9]{4}-[A-HJ-NP-Z2-9]{4}$")
MONDAY = datetime(2026, 12, 7, 14, 0, tzinfo=TOKYO)   # Sakata's first open slot from the frozen clock


def new_conversation(rt, office_id: str = "sakata", **fields) -> int:
    with rt.db.transaction() as s:
        conv = Conversation(office_id=office_id, line_user_id="U" + uuid.uuid4().hex, state="idle", context={},
                            created_at=rt.clock.now(), **fields)
        s.add(conv)
        s.flush()
        return conv.id


def create(rt, conv_id: int, office=None, start: datetime = MONDAY, **changes) -> requests.Outcome:
    office = office or rt.offices["sakata"]
    values = {**valid_answers(office), **changes}
    with rt.db.transaction() as s:
        return requests.create_request(s, rt, office, s.get(Conversation, conv_id), start, values, rt.clock.now())


def count(rt, model, *where) -> int:
    with rt.db.reading() as s:
        return s.scalar(select(func.count()).select_from(model).where(*where)) or 0


def booking(rt, booking_id: int) -> Booking:
    with rt.db.reading() as s:
        row = s.get(Booking, booking_id)
        s.expunge(row)
        return row


def fire(rt, booking_id: int, trigger: str) -> bool:
    with rt.db.transaction() as s:
        return lifecycle.fire(s, s.get(Booking, booking_id), trigger, rt.clock.now())


# -- creating a request --------------------------------------------------------------------------------

def test_a_request_is_created_with_its_reference_seat_and_handoff(rt):
    outcome = create(rt, new_conversation(rt))
    assert outcome.status == "created" and REFERENCE.match(outcome.reference)
    row = booking(rt, outcome.booking_id)
    assert (row.status, row.source, row.receipt_pending, row.slot_start) == ("requested", "line", True, MONDAY)
    details = for_config(rt.config).decrypt(row.details)
    assert details["seeker_number"] == "01234-56789" and details["v"] == requests.DETAILS_VERSION
    assert row.seeker_hash == for_config(rt.config).seeker_hash("01234-56789")
    assert count(rt, SlotClaim, SlotClaim.booking_id == row.id) == 1
    assert count(rt, StaffNotice, StaffNotice.booking_id == row.id, StaffNotice.kind == "new_request") == 1


def test_references_use_the_fixed_alphabet_and_never_repeat(rt):
    with rt.db.reading() as s:
        seen = {requests.new_reference(s) for _ in range(2000)}
    assert len(seen) == 2000 and all(REFERENCE.match(r) for r in seen)
    assert not set("01IO") & set("".join(seen))


@pytest.mark.parametrize("capacity", [1, 2])
def test_capacity_is_the_number_of_seats(rt, capacity):
    office = replace(rt.offices["sakata"], schedule=replace(rt.offices["sakata"].schedule, capacity=capacity))
    outcomes = [create(rt, new_conversation(rt), office, seeker_number=f"1234{i}-1") for i in range(capacity + 2)]
    assert [o.status for o in outcomes] == ["created"] * capacity + ["full", "full"]
    assert count(rt, Booking) == capacity
    with rt.db.reading() as s:
        assert sorted(s.scalars(select(SlotClaim.seat))) == list(range(capacity))


def test_a_freed_seat_can_be_taken_again(rt):
    first = create(rt, new_conversation(rt))
    assert create(rt, new_conversation(rt), seeker_number="55555-1").status == "full"
    assert fire(rt, first.booking_id, "withdraw")
    assert create(rt, new_conversation(rt), seeker_number="55555-1").status == "created"


def test_one_open_request_per_user_per_office(rt):
    conv = new_conversation(rt)
    first = create(rt, conv)
    later = MONDAY + timedelta(weeks=1)
    assert create(rt, conv, start=later).status == "limit"
    assert fire(rt, first.booking_id, "withdraw")
    assert create(rt, conv, start=later).status == "created"


def same_number(rt, outcome: requests.Outcome) -> requests.SameNumber:
    with rt.db.reading() as s:
        return requests.same_number(s, "sakata", s.get(Booking, outcome.booking_id), rt.clock.now())


def test_the_same_job_seeker_from_another_line_account_is_made_and_shown_to_staff(rt):
    """Refusing it would tell whoever types other people's numbers that they have a booking: the request is made,
    and staff deciding it see the other account's open request (one open booking per person)."""
    first = create(rt, new_conversation(rt), seeker_number="01234-56789")
    other = create(rt, new_conversation(rt), start=MONDAY + timedelta(weeks=1), seeker_number="0123456789")
    assert other.status == "created"
    assert same_number(rt, other) == requests.SameNumber((first.reference,), False)
    assert same_number(rt, first).open_references == (other.reference,)
    assert fire(rt, first.booking_id, "withdraw")
    assert same_number(rt, other) == requests.SameNumber((), False)


@pytest.mark.parametrize("typed", ["٠١٢٣٤-٥٦٧٨٩", "०१२३४५६७८९"])
def test_the_same_number_in_another_scripts_digits_is_the_same_job_seeker(rt, typed):
    first = create(rt, new_conversation(rt), seeker_number="01234-56789")
    other = create(rt, new_conversation(rt), start=MONDAY + timedelta(weeks=1), seeker_number=typed)
    assert same_number(rt, other).open_references == (first.reference,)


def test_a_user_blocked_by_staff_cannot_request(rt):
    assert create(rt, new_conversation(rt, booking_blocked=True)).status == "blocked"
    assert count(rt, Booking) == 0


def test_a_job_seeker_blocked_on_one_line_account_cannot_be_confirmed_from_another(rt):
    """第10条: staff may refuse a person further online counselling after a no-show; a second LINE account
    with the same job seeker number does not get round it. The form takes the request (its answer must not
    tell a stranger the person was refused); staff see the stop and cannot confirm it until it is lifted."""
    from bot.staff import decisions
    from bot.staff.audit import Actor

    blocked = new_conversation(rt)
    first = create(rt, blocked, seeker_number="01234-56789")
    assert fire(rt, first.booking_id, "withdraw")
    with rt.db.transaction() as s:
        s.get(Conversation, blocked).booking_blocked = True
    later = MONDAY + timedelta(weeks=1)
    again = create(rt, new_conversation(rt), start=later, seeker_number="0123456789")
    assert again.status == "created" and same_number(rt, again) == requests.SameNumber((), True)
    stranger = create(rt, new_conversation(rt), start=later + timedelta(weeks=1), seeker_number="98765-43210")
    assert same_number(rt, stranger) == requests.SameNumber((), False)
    actor = Actor(label="tanaka", user_id=None, ip=None)

    def confirm(booking_id: int):
        with rt.db.transaction() as s:
            return decisions.confirm(s, rt, rt.offices["sakata"], s.get(Booking, booking_id), actor, rt.clock.now())

    with pytest.raises(decisions.Refused) as refused:
        confirm(again.booking_id)
    assert refused.value.code == "refused_online" and booking(rt, again.booking_id).status == "requested"
    with pytest.raises(decisions.Refused) as refused, rt.db.transaction() as s:      # a yes to a proposal confirms
        decisions.propose(s, rt, rt.offices["sakata"], s.get(Booking, again.booking_id), actor, rt.clock.now(),
                          later + timedelta(hours=1))
    assert refused.value.code == "refused_online" and booking(rt, again.booking_id).status == "requested"
    with rt.db.transaction() as s:
        s.get(Conversation, blocked).booking_blocked = False                      # unblocked by staff
    assert confirm(again.booking_id).changed and booking(rt, again.booking_id).status == "confirmed"


def test_no_request_once_the_slots_booking_deadline_has_passed(rt, clock):
    # Sakata: 「開催日の3日前までに利用予約が完了」, read as Friday 17:00 for a Monday.
    clock.freeze(datetime(2026, 12, 4, 17, 0, tzinfo=TOKYO))
    outcome = create(rt, new_conversation(rt))
    assert (outcome.status, outcome.slot_start) == ("notice_passed", MONDAY)
    assert count(rt, Booking) == count(rt, SlotClaim) == count(rt, StaffNotice) == 0
    clock.freeze(datetime(2026, 12, 4, 16, 59, tzinfo=TOKYO))
    assert create(rt, new_conversation(rt)).status == "created"


# -- through the form link ------------------------------------------------------------------------------

def submit(rt, conv_id: int, nonce: str, office_id: str = "sakata") -> requests.Outcome:
    office = rt.offices[office_id]
    with rt.db.transaction() as s:
        return requests.submit(s, rt, office, conv_id, nonce, valid_answers(office), rt.clock.now())


def nonce_of(rt, conv_id: int) -> str:
    with rt.db.reading() as s:
        return s.scalar(select(SlotHold.token_nonce).where(SlotHold.conversation_id == conv_id))


def test_submitting_uses_the_hold_once(rt):
    conv, _ = hold_directly(rt, "sakata")
    nonce = nonce_of(rt, conv)
    first = submit(rt, conv, nonce)
    assert first.status == "created"
    assert count(rt, SlotHold) == 0 and count(rt, FormSubmission) == 1
    again = submit(rt, conv, nonce)
    assert (again.status, again.reference) == ("duplicate", first.reference)
    assert count(rt, Booking) == 1


def test_a_link_after_its_hold_expired_or_was_replaced(rt, clock):
    conv, _ = hold_directly(rt, "otaru")
    old = nonce_of(rt, conv)
    with rt.db.transaction() as s:
        c = s.get(Conversation, conv)
        later = holds.week_page(s, rt.offices["otaru"], clock.now(), 0)["slots"][3]["start"]
        assert holds.hold(s, rt, rt.offices["otaru"], c, later, clock.now())["ok"]
    assert submit(rt, conv, old, "otaru").status == "superseded"
    clock.advance(minutes=16)
    current = nonce_of(rt, conv)
    with rt.db.transaction() as s:                         # the slot is taken by someone else meanwhile
        other = Conversation(office_id="otaru", line_user_id="U" + uuid.uuid4().hex, state="awaiting_form",
                             context={}, created_at=clock.now())
        s.add(other)
        s.flush()
        assert holds.hold(s, rt, rt.offices["otaru"], other, later, clock.now())["ok"]
    assert submit(rt, conv, current, "otaru").status == "full"
    with rt.db.transaction() as s:                         # no hold left at all (purged)
        s.execute(delete(SlotHold).where(SlotHold.conversation_id == conv))
    assert submit(rt, conv, current, "otaru").status == "expired"
    assert count(rt, Booking) == 0


def test_a_link_whose_hold_ran_out_takes_its_slot_again_if_free(rt, clock):
    conv, _ = hold_directly(rt, "otaru")
    clock.advance(minutes=16)
    assert submit(rt, conv, nonce_of(rt, conv), "otaru").status == "created"
    assert count(rt, Booking) == 1


@pytest.mark.parametrize("office_id,held_at", [
    ("sakata", datetime(2026, 12, 4, 16, 58, tzinfo=TOKYO)),   # Monday 12/7's deadline: Friday 17:00
    ("otaru", datetime(2026, 12, 1, 16, 58, tzinfo=TOKYO)),    # Wednesday 12/2's: Tuesday 17:00
])
def test_a_hold_kept_open_past_the_booking_deadline_makes_no_request(rt, clock, office_id, held_at):
    """Held two minutes before the deadline, the form kept open (each page view extends the hold), sent at
    17:30: refused, nothing stored, the slot no longer held."""
    office = rt.offices[office_id]
    clock.freeze(held_at)
    conv, _ = hold_directly(rt, office_id)
    nonce = nonce_of(rt, conv)
    for minutes in (12, 24):
        with rt.db.transaction() as s:
            holds.extend(s, office, s.scalar(select(SlotHold)), held_at + timedelta(minutes=minutes))
    clock.freeze(held_at + timedelta(minutes=32))
    with rt.db.reading() as s:
        assert s.scalar(select(SlotHold.expires_at)) > clock.now()   # the hold itself is still live
    outcome = submit(rt, conv, nonce, office_id)
    assert outcome.status == "notice_passed"
    assert count(rt, Booking) == count(rt, SlotHold) == count(rt, FormSubmission) == count(rt, StaffNotice) == 0
    assert submit(rt, conv, nonce, office_id).status == "expired"


def test_a_nonce_of_another_conversation_is_refused(rt):
    alice, _ = hold_directly(rt, "sakata")
    bob, _ = hold_directly(rt, "sakata", slot_index=1)
    assert submit(rt, bob, nonce_of(rt, alice)).status == "refused"
    assert submit(rt, alice, nonce_of(rt, alice), "otaru").status == "refused"


def test_old_submissions_are_forgotten_after_a_day(rt, clock):
    conv, _ = hold_directly(rt, "sakata")
    submit(rt, conv, nonce_of(rt, conv))
    with rt.db.transaction() as s:
        assert requests.purge_submissions(s, clock.now()) == 0
    clock.advance(days=1, minutes=1)
    with rt.db.transaction() as s:
        assert requests.purge_submissions(s, clock.now()) == 1
    assert count(rt, Booking) == 1


# -- the lifecycle ------------------------------------------------------------------------------------------

def test_the_statuses_are_exactly_the_interfaces():
    assert set(lifecycle.STATUSES) == {"requested", "confirmed", "declined", "expired", "withdrawn", "proposed",
                                       "attended", "no_show", "cancelled", "cancelled_by_office"}
    moves = {(source, t["dest"]) for t in lifecycle.TRANSITIONS
             for source in ([t["source"]] if isinstance(t["source"], str) else t["source"])}
    assert moves == {
        ("requested", "confirmed"), ("requested", "declined"), ("requested", "expired"),
        ("requested", "withdrawn"), ("requested", "proposed"),
        ("proposed", "confirmed"), ("proposed", "declined"), ("proposed", "expired"),
        ("confirmed", "attended"), ("confirmed", "no_show"), ("confirmed", "cancelled"),
        ("confirmed", "cancelled_by_office"),
        ("attended", "no_show"), ("no_show", "attended"),    # a wrong record corrected on the dashboard
        ("no_show", "cancelled"),     # a 欠席 the person had called about (or the office excused), corrected likewise
    }


@pytest.mark.parametrize("path, keeps_seat", [
    (["confirm"], True),
    (["propose"], True),
    (["propose", "confirm"], True),
    (["decline"], False),
    (["expire"], False),
    (["withdraw"], False),
    (["propose", "decline"], False),
    (["propose", "expire"], False),
    (["confirm", "attend"], False),
    (["confirm", "mark_no_show"], False),
    (["confirm", "cancel"], False),
    (["confirm", "cancel_by_office"], False),
])
def test_closing_a_request_frees_its_seat(rt, path, keeps_seat):
    outcome = create(rt, new_conversation(rt))
    for trigger in path:
        assert fire(rt, outcome.booking_id, trigger), trigger
    assert count(rt, SlotClaim) == (1 if keeps_seat else 0)


@pytest.mark.parametrize("path, refused", [
    (["withdraw"], "withdraw"),
    (["confirm"], "withdraw"),
    (["propose"], "withdraw"),
    (["confirm"], "expire"),
    (["decline"], "confirm"),
    (["confirm", "cancel"], "cancel"),
    (["requested_only"], "attend"),
])
def test_a_move_that_does_not_apply_changes_nothing(rt, path, refused):
    outcome = create(rt, new_conversation(rt))
    for trigger in path:
        if trigger != "requested_only":
            assert fire(rt, outcome.booking_id, trigger)
    before = booking(rt, outcome.booking_id)
    assert not fire(rt, outcome.booking_id, refused)
    after = booking(rt, outcome.booking_id)
    assert (after.status, after.updated_at) == (before.status, before.updated_at)


def test_a_decision_is_stamped(rt, clock):
    outcome = create(rt, new_conversation(rt))
    clock.advance(hours=2)
    fire(rt, outcome.booking_id, "confirm")
    row = booking(rt, outcome.booking_id)
    assert row.decided_at == clock.now() and row.updated_at == clock.now()
    assert row.closed_at is None                     # still open


@pytest.mark.parametrize("path", [["withdraw"], ["decline"], ["propose", "expire"], ["confirm", "cancel"],
                                  ["confirm", "attend"], ["confirm", "cancel_by_office"]])
def test_closing_is_stamped_once(rt, clock, path):
    """The moment a request or booking closes: the clock of its retention, never moved afterwards."""
    outcome = create(rt, new_conversation(rt))
    for trigger in path:
        clock.advance(hours=1)
        assert fire(rt, outcome.booking_id, trigger)
    closed_on = clock.now()
    clock.advance(hours=1)
    for trigger in ("withdraw", "cancel", "expire", "decline"):   # none applies any more: nothing moves
        fire(rt, outcome.booking_id, trigger)
    assert booking(rt, outcome.booking_id).closed_at == closed_on


def test_correcting_an_attendance_keeps_the_clock_of_its_first_closing(rt, clock):
    """attended <-> no_show moves between two closed statuses: the retention clock started when the booking
    first closed and is not restarted by a correction (nor is the decision's stamp moved); the last change is."""
    outcome = create(rt, new_conversation(rt))
    assert fire(rt, outcome.booking_id, "confirm")
    decided_on = clock.now()
    clock.advance(hours=1)
    assert not fire(rt, outcome.booking_id, "correct_to_attended")   # nothing recorded: nothing to correct
    assert fire(rt, outcome.booking_id, "attend")
    closed_on = clock.now()
    for trigger, status in (("correct_to_no_show", "no_show"), ("correct_to_attended", "attended")):
        clock.advance(hours=1)
        assert not fire(rt, outcome.booking_id, "correct_to_attended" if status == "no_show" else "correct_to_no_show")
        assert fire(rt, outcome.booking_id, trigger)
        row = booking(rt, outcome.booking_id)
        assert (row.status, row.closed_at, row.decided_at, row.updated_at) == (status, closed_on, decided_on,
                                                                              clock.now())


def test_an_unknown_trigger_is_an_error(rt):
    outcome = create(rt, new_conversation(rt))
    with pytest.raises(ValueError):
        fire(rt, outcome.booking_id, "teleport")


# -- worker jobs --------------------------------------------------------------------------------------------

def test_an_undecided_request_expires_when_its_slot_begins(rt, clock, user_factory, fake_line):
    user = user_factory("sakata")
    conv, _ = hold_directly(rt, "sakata", user_id=user.user_id)
    outcome = submit(rt, conv, nonce_of(rt, conv))
    other = create(rt, new_conversation(rt), start=MONDAY + timedelta(hours=1), seeker_number="22222-2")
    fire(rt, other.booking_id, "confirm")
    clock.freeze(MONDAY - timedelta(minutes=1))
    Worker(rt).run_once()
    assert booking(rt, outcome.booking_id).status == "requested"
    clock.freeze(MONDAY)
    figures = Worker(rt).run_once()
    assert figures["requests_expired"] == 1
    row = booking(rt, outcome.booking_id)
    assert row.status == "expired" and row.receipt_pending is False
    assert count(rt, SlotClaim, SlotClaim.booking_id == row.id) == 0
    assert count(rt, StaffNotice, StaffNotice.kind == "expired") == 1
    assert booking(rt, other.booking_id).status == "confirmed"  # a decided one is left alone
    texts = fake_line.texts_to(user.user_id)
    assert any(f"受付番号: {row.reference}" in t and "期限切れ" in t for t in texts)
    assert Worker(rt).run_once()["requests_expired"] == 0
    assert len(fake_line.texts_to(user.user_id)) == len(texts)


def test_a_proposed_request_also_expires(rt, clock):
    outcome = create(rt, new_conversation(rt))
    fire(rt, outcome.booking_id, "propose")
    clock.freeze(MONDAY + timedelta(minutes=5))
    Worker(rt).run_once()
    assert booking(rt, outcome.booking_id).status == "expired"


def test_the_receipt_is_pushed_once_if_the_user_does_not_come_back(rt, clock, user_factory, fake_line):
    user = user_factory("otaru")
    conv, _ = hold_directly(rt, "otaru", user_id=user.user_id)
    outcome = submit(rt, conv, nonce_of(rt, conv), "otaru")
    clock.advance(minutes=2)
    assert Worker(rt).run_once()["receipts_pushed"] == 0
    clock.advance(minutes=2)
    assert Worker(rt).run_once()["receipts_pushed"] == 1
    receipts = [t for t in fake_line.texts_to(user.user_id) if f"受付番号: {outcome.reference}" in t]
    assert len(receipts) == 1 and "お申込みを受け付けました" in receipts[0]
    assert [d.kind for d in fake_line.deliveries() if user.user_id in d.recipients] == ["push"]
    assert booking(rt, outcome.booking_id).receipt_pending is False
    clock.advance(minutes=10)
    assert Worker(rt).run_once()["receipts_pushed"] == 0
    user.says("ヘルプ")
    assert sum(f"受付番号: {outcome.reference}" in t and "お申込みを受け付けました" in t
               for t in fake_line.texts_to(user.user_id)) == 1


def test_a_user_who_comes_back_gets_the_receipt_as_a_reply_and_no_push(rt, clock, user_factory, fake_line):
    user = user_factory("sakata")
    conv, _ = hold_directly(rt, "sakata", user_id=user.user_id)
    outcome = submit(rt, conv, nonce_of(rt, conv))
    clock.advance(minutes=1)
    user.says("予約確認")
    clock.advance(minutes=10)
    assert Worker(rt).run_once()["receipts_pushed"] == 0
    deliveries = [d for d in fake_line.deliveries() if user.user_id in d.recipients]
    assert [d.kind for d in deliveries] == ["reply"]
    assert f"受付番号: {outcome.reference}" in "\n".join(fake_line.texts_to(user.user_id))


def test_no_receipt_push_to_a_user_who_unfollowed(rt, clock, user_factory, fake_line):
    user = user_factory("sakata")
    conv, _ = hold_directly(rt, "sakata", user_id=user.user_id)
    submit(rt, conv, nonce_of(rt, conv))
    user.unfollows()
    clock.advance(minutes=5)
    assert Worker(rt).run_once()["receipts_pushed"] == 0
    assert fake_line.texts_to(user.user_id) == []
    assert count(rt, Booking, Booking.receipt_pending.is_(True)) == 0
