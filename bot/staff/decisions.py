"""What staff do to bookings, from the dashboard or the LINE group: one function per action.

Every action runs in the caller's transaction, loads the booking with a row lock (PostgreSQL; SQLite's
write transaction already serialises), checks the status it finds, records an audit entry and queues
what the user must be told. Two staff deciding at once: the first changes the booking, the second finds
it decided and gets `changed=False` (the same outcome) or `Refused` (another outcome) — never both.
"""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import Session

from bot.clock import TOKYO
from bot.models import Booking, Conversation, SlotBlock, SlotClaim
from bot.services import bookings as bookingsvc
from bot.services import holds, lifecycle, requests
from bot.services import slots as slotsvc
from bot.staff import audit, handoff, personal
from bot.staff.audit import Actor
from bot.staff.models import AuditEntry, BookingHandoff

OPEN_STATUSES = lifecycle.OPEN_STATUSES
UNDECIDED = lifecycle.UNDECIDED_STATUSES
# Why staff may still book a slot a user could not (with a reason); anything else cannot be overridden.
OVERRIDABLE = ("notice_passed", "outside_window", "blocked")
SOURCES = ("phone", "window", "online")  # online: asked for during an online session (第4条(1))
NOTE_LIMIT = 2000   # characters of the 職員メモ (the page's textarea says the same)
MEMO_LIMIT = 200    # characters of the memo of a cancellation on the user's behalf
OVERRIDE_LIMIT = 200  # characters of the reason for booking a slot that could not normally be booked
BLOCK_REASON_LIMIT = 200  # characters of the reason for blocking a slot or a day (the page's field says the same)
# Why a recorded attendance was corrected: a key of templates/staff/labels.yaml `attendance_corrections`, mapped to
# the one correction it fits (None: any). `other` needs the reason typed; what staff type may name the person
# or their circumstances (「本人より電話 090-…」), so it is sealed like a memo and erased with the details.
CORRECTION_REASONS: dict[str, str | None] = {
    "mistap": None, "mixed_up": None, "joined_late": lifecycle.ATTENDED, "contacted": lifecycle.CANCELLED,
    "other": None}
CORRECTION_LIMIT = 200  # characters of the typed reason (the page's field says the same)


class Refused(Exception):
    """The action does not apply: `code` says why (not_found, status, too_early, full, needs_override, …)."""

    def __init__(self, code: str, booking: Booking | None = None, **detail: Any):
        super().__init__(code)
        self.code = code
        self.booking = booking
        self.detail = detail


@dataclass(frozen=True)
class Result:
    booking: Booking
    action: str
    changed: bool  # False: it had already been done (a second tap, another member, the dashboard)
    after_deadline: bool = False  # confirmed after the slot's booking deadline (allowed: the rule says 原則)
    told: bool | None = None  # the user was sent a LINE message about it (False: no LINE to reach; None: n/a)
    blocked: bool = False  # the same tap also stopped the user's online booking (a stop under the terms)


# -- loading ----------------------------------------------------------------------------------------

def load(session: Session, office_id: str, *, reference: str | None = None,
         booking_id: int | None = None, lock: bool = True) -> Booking:
    """The office's booking by reference or id, locked for this transaction; Refused('not_found')."""
    query = select(Booking).where(Booking.office_id == office_id)
    if reference is not None:
        query = query.where(Booking.reference == reference.strip().upper())
    elif booking_id is not None:
        query = query.where(Booking.id == booking_id)
    else:
        raise Refused("not_found")
    if lock and session.bind.dialect.name == "postgresql":
        query = query.with_for_update(of=Booking)
    booking = session.scalar(query)
    if booking is None:
        raise Refused("not_found")
    return booking


REFERENCE_TYPED = re.compile(r"([A-Z0-9]{4})-?([A-Z0-9]{4})")


def typed_reference(text: str) -> str | None:
    """A 受付番号 as staff type it from a phone call: full-width, lower-case, spaces, with or without the
    hyphen or the words 受付番号 — as `XXXX-XXXX`, or None."""
    plain = unicodedata.normalize("NFKC", text or "").upper().replace("受付番号", "")
    plain = re.sub(r"[\s:：]+", "", plain).replace("ー", "-").replace("‐", "-").replace("−", "-")
    match = REFERENCE_TYPED.fullmatch(plain)
    return f"{match.group(1)}-{match.group(2)}" if match else None


def by_seeker(session: Session, office_id: str, seeker_hash: str) -> list[Booking]:
    """The office's bookings of one job seeker number (its keyed hash), latest slot first: the dashboard's search."""
    return list(session.scalars(select(Booking).where(
        Booking.office_id == office_id, Booking.seeker_hash == seeker_hash).order_by(Booking.slot_start.desc())))


def handoff_of(session: Session, booking: Booking, now: datetime) -> BookingHandoff:
    row = session.get(BookingHandoff, booking.id)
    if row is None:
        row = BookingHandoff(booking_id=booking.id, call_needed=False, updated_at=now)
        session.add(row)
    return row


def _move(session: Session, booking: Booking, trigger: str, target: str, now: datetime) -> bool:
    """Fire a lifecycle trigger; False when the booking is already at `target`, Refused from elsewhere.

    The lifecycle stamps the row and gives the seat back when the booking closes.
    """
    if booking.status == target:
        return False
    if not lifecycle.fire(session, booking, trigger, now):
        raise Refused("status", booking)
    return True


def confirmed_by_the_user(session: Session, booking: Booking) -> bool:
    """Is this a confirmed booking the user's yes to a proposed slot confirmed (staff never confirm a proposal)?"""
    if booking.status != lifecycle.CONFIRMED:
        return False
    row = session.get(BookingHandoff, booking.id)
    return row is not None and row.proposed_from is not None


# -- seats ------------------------------------------------------------------------------------------

def claim_seat(session: Session, office, booking: Booking) -> bool:
    """Take one of the slot's seats for the booking (capacity is enforced by a unique row per seat)."""
    holds.lock_slot(session, office.id, booking.slot_start)
    return requests.claim_seat(session, office.id, booking.slot_start, office.schedule.capacity,
                               booking.id) is not None


def _claims_on(session: Session, office_id: str, start: datetime) -> int:
    return session.scalar(select(func.count()).select_from(SlotClaim).where(
        SlotClaim.office_id == office_id, SlotClaim.slot_start == start)) or 0


# -- decisions --------------------------------------------------------------------------------------

def confirm(session: Session, rt, office, booking: Booking, actor: Actor, now: datetime,
            same_number_checked: bool = False) -> Result:
    """Approve: the request becomes a booking; the user is told; the office's phone task is opened.

    Allowed after the slot's booking deadline too (the offices' rules say 原則), up to its start: the
    result and the audit entry then say so, and the user's message promises only what can still happen.
    `same_number_checked`: the member said they checked the same job seeker number's booking on another LINE
    account (`_not_booked_twice`); the LINE group's 承認 never does.
    """
    if booking.status in UNDECIDED and booking.slot_start <= now:
        raise Refused("started", booking)
    if booking.status == lifecycle.PROPOSED:
        # Another slot was proposed: only the user's own answer confirms it (a stale 承認 on the request's
        # card would book them for a time they never agreed to).
        raise Refused("awaiting_user", booking)
    _not_refused_online(session, office, booking, now)
    _not_booked_twice(session, office, booking, now, same_number_checked)
    changed = _move(session, booking, "confirm", lifecycle.CONFIRMED, now)
    late = changed and slotsvc.deadline_passed(office, booking.slot_start, now)
    told = None
    if changed:
        if handoff.call_user_on_confirm(office):
            handoff_of(session, booking, now).call_needed = True
        detail = {"after_deadline": True} if late else {}
        audit.record(session, office.id, actor, "confirm", now, booking, **detail)
        told = _tell(session, rt, office, booking, "outcome_confirmed", now)
    return Result(booking, "confirm", changed, after_deadline=late, told=told)


def _not_refused_online(session: Session, office, booking: Booking, now: datetime) -> None:
    """第10条: the office refused this person online counselling: on the request's own LINE account after it asked
    (`user_blocked`), or on another one (`refused_online`, found by the job seeker number; the form does not refuse
    the request, which would tell anyone typing the number). Such a request is declined, or confirmed (or another
    slot proposed) once staff lift the stop."""
    if booking.status not in UNDECIDED:
        return
    if _account_stopped(session, booking):
        # Its own LINE account was stopped after it asked (a no-show, a stop under the terms): as for another
        # account's, staff decline it, or lift the stop first.
        raise Refused("user_blocked", booking)
    if requests.same_number(session, office.id, booking, now).refused_online:
        raise Refused("refused_online", booking)


def _account_stopped(session: Session, booking: Booking) -> bool:
    """Is the online booking of the LINE account behind this booking stopped by staff?"""
    conv = session.get(Conversation, booking.conversation_id) if booking.conversation_id else None
    return conv is not None and bool(conv.booking_blocked)


def _not_booked_twice(session: Session, office, booking: Booking, now: datetime, checked: bool) -> None:
    """One open booking per person: a request whose job seeker number another LINE account already has confirmed
    (or offered another slot, which the user's yes confirms) is approved, or offered a slot, only once the member
    says they checked by phone that it is not the same person twice (a mistyped or someone else's number);
    Refused('same_number') otherwise, naming those bookings."""
    if checked or booking.status not in UNDECIDED:
        return
    booked = requests.same_number(session, office.id, booking, now).booked
    if booked:
        raise Refused("same_number", booking, references=booked)


def decline(session: Session, rt, office, booking: Booking, actor: Actor, now: datetime,
            reason: str | None = None) -> Result:
    """Decline with one of the office's reason templates; the seat is freed and the user told kindly."""
    # The status first: a stale お断り on a booking decided meanwhile is told what happened, not asked for a
    # reason (one its old page offered may no longer be).
    if booking.status == lifecycle.DECLINED:
        return Result(booking, "decline", False)
    if not lifecycle.can(booking, "decline"):
        raise Refused("status", booking)
    reason = reason or handoff.default_reason()
    if reason not in handoff.office_decline_reasons(office):
        raise Refused("reason", booking)
    _move(session, booking, "decline", lifecycle.DECLINED, now)
    row = handoff_of(session, booking, now)
    row.decline_reason, row.updated_at = reason, now
    audit.record(session, office.id, actor, "decline", now, booking, reason=reason)
    told = _tell(session, rt, office, booking, "outcome_declined", now, reason=reason)
    return Result(booking, "decline", True, told=told)


def propose(session: Session, rt, office, booking: Booking, actor: Actor, now: datetime,
            start: datetime, same_number_checked: bool = False) -> Result:
    """Offer the user another slot instead: it is taken for them until they answer (and their yes confirms it,
    so the same job seeker number booked on another LINE account is checked first, as for `confirm`)."""
    if booking.status == "proposed" and booking.slot_start == start:
        return Result(booking, "propose", False)
    if booking.status != "requested":
        raise Refused("status", booking)
    _not_refused_online(session, office, booking, now)   # the user's yes to a proposal confirms it
    _not_booked_twice(session, office, booking, now, same_number_checked)
    conv = session.get(Conversation, booking.conversation_id) if booking.conversation_id else None
    if conv is None or not conv.followed:
        # Only the user's answer in LINE decides a proposal: one they cannot receive would hold the slot unanswered.
        raise Refused("unreachable", booking)
    if (requests.open_ahead(session, office.id, booking.conversation_id, now, other_than=booking.id)
            >= office.booking.max_open_per_user):
        # Its slot began undecided, so it stopped counting against the office's limit and the user requested
        # again: moving it ahead would give them more open bookings than the office allows.
        raise Refused("user_has_open", booking)
    problem = _staff_slot_problem(session, office, now, start)
    if problem is not None and problem not in ("notice_passed", "outside_window"):
        raise Refused(problem, booking)
    original = booking.slot_start
    with session.begin_nested():  # a seat taken meanwhile: the request keeps its slot and its seat
        lifecycle.free_seat(session, booking)
        booking.slot_start = start
        session.flush()
        if not claim_seat(session, office, booking):
            raise Refused("full", booking)
    _move(session, booking, "propose", lifecycle.PROPOSED, now)
    row = handoff_of(session, booking, now)
    row.proposed_from, row.updated_at = original, now
    audit.record(session, office.id, actor, "propose", now, booking, original=original, proposed=start)
    told = _tell(session, rt, office, booking, "outcome_proposed", now, original=original)
    return Result(booking, "propose", True, told=told)


def answer_proposal(session: Session, rt, office, conv: Conversation, reference: str, accept: bool,
                    now: datetime) -> dict[str, Any]:
    """The user accepts or declines the slot staff proposed (from their own chat)."""
    try:
        booking = load(session, office.id, reference=reference)
    except Refused:
        return {"outcome": "not_found", "reference": reference}
    summary = {"reference": booking.reference, "at": booking.slot_start,
               "label": slotsvc.slot_label(booking.slot_start),
               "timing": bookingsvc.message_timing(office, booking.slot_start, now,
                                                   invitation_sent=booking.invitation_sent_at is not None)}
    if booking.conversation_id != conv.id:
        return {"outcome": "not_found", "reference": reference}
    if booking.status != "proposed":
        return {"outcome": "already", "status": booking.status, **summary}
    if booking.slot_start <= now:
        return {"outcome": "already", "status": "expired", **summary}
    actor = Actor(label=audit.USER)
    if accept and conv.booking_blocked:
        # Offered before staff stopped this account's online booking: its yes books nothing (staff must not confirm
        # it either, `_not_refused_online`); declining stays possible.
        return {"outcome": "blocked", "status": booking.status, **summary}
    if accept:
        _move(session, booking, "confirm", lifecycle.CONFIRMED, now)
        if handoff.call_user_on_confirm(office):
            handoff_of(session, booking, now).call_needed = True
        audit.record(session, office.id, actor, "accept_proposal", now, booking)
        rt.notify_staff(session, office, "proposal_accepted", booking.id, now)
        # The confirmation is the reply (read now): on a closed day, when the office takes the cancelling call.
        return {"outcome": "confirmed", "status": booking.status, **summary,
                "phone_opens": bookingsvc.phone_opens(office, booking, now)}
    _move(session, booking, "decline", lifecycle.DECLINED, now)
    audit.record(session, office.id, actor, "reject_proposal", now, booking)
    rt.notify_staff(session, office, "proposal_declined", booking.id, now)
    return {"outcome": "declined", "status": booking.status, **summary}


def mark_attendance(session: Session, rt, office, booking: Booking, actor: Actor, now: datetime,
                    attended: bool) -> Result:
    """Attended once the session has started; a no-show only once the office's grace period after the start
    has passed (「連絡がないまま…実施日時を10分経過した場合は、キャンセルとみなします」: `no_show_minutes`)."""
    action = "attended" if attended else "no_show"
    if booking.status == "confirmed" and booking.slot_start > now:
        raise Refused("too_early", booking)
    if not attended and booking.status == "confirmed" and now < no_show_from(office, booking):
        raise Refused("too_early_no_show", booking)
    if attended:
        changed = _move(session, booking, "attend", lifecycle.ATTENDED, now)
    else:
        changed = _move(session, booking, "mark_no_show", lifecycle.NO_SHOW, now)
    if changed:
        audit.record(session, office.id, actor, action, now, booking)
    return Result(booking, action, changed)


def correct_attendance(session: Session, rt, office, booking: Booking, actor: Actor, now: datetime, to: str,
                       reason: str | None, note: str | None = None) -> Result:
    """Put a wrong 出席 / 欠席 right, with a reason, on the dashboard only: attended <-> no_show, and no_show ->
    cancelled (the terms' no-show is an absence 「連絡がないまま」: when the person's cancellation had reached the
    office — a call another member took, an e-mail read after the start — or the office accepts why they could not
    tell it in time, it was a cancellation; the audit entry keeps what was recorded first).

    A wrong 欠席 can cost the person future bookings (「今後のご利用をお断りする場合があります」), so a record is
    not final: it may be corrected under the rules of recording it (never before the start; to a no-show only
    after the grace period), while the office still keeps the booking's details. The audit entry holds both
    values and the reason's key; a typed reason is sealed in the entry's memo. The user is told nothing: they
    were not told of the record either (予約確認 shows the current status when they ask). Two members
    correcting at once: the first changes it, the second finds it done (`changed=False`).
    """
    if to not in lifecycle.CORRECTED_TO:
        raise Refused("status", booking)
    if booking.status == to:
        return Result(booking, "correct_attendance", False)
    problem = correction_problem(office, booking, now, to)
    if problem is not None:
        raise Refused(problem, booking)
    note = (note or "").strip()
    if reason not in correction_reasons(to) or (reason == "other" and not note):
        raise Refused("correction_reason", booking)
    before = booking.status
    if not lifecycle.fire(session, booking, f"correct_to_{to}", now):
        raise Refused("status", booking)
    audit.record(session, office.id, actor, "correct_attendance", now, booking, before=before, after=to,
                 reason=reason, sealed_note=personal.seal_note(rt, note, CORRECTION_LIMIT))
    return Result(booking, "correct_attendance", True)


def correction_targets(status: str) -> tuple[str, ...]:
    """What a booking recorded as `status` may be corrected to (none: nothing recorded)."""
    return lifecycle.CORRECTIONS.get(status, ())


def correction_target(booking: Booking) -> str | None:
    """The other attendance a recorded one may be corrected to (the first of `correction_targets`); None when none
    is recorded."""
    return next(iter(correction_targets(booking.status)), None)


def correction_reasons(to: str) -> list[str]:
    """The reasons that fit a correction to `to`, in the order staff see them."""
    return [key for key, fits in CORRECTION_REASONS.items() if fits in (None, to)]


def correction_problem(office, booking: Booking, now: datetime, to: str) -> str | None:
    """Why the booking's attendance cannot be corrected to `to` now; None when it can."""
    if booking.status == lifecycle.CONFIRMED:
        return "not_recorded"
    if to not in correction_targets(booking.status):
        return "status"
    if booking.slot_start > now:
        return "too_early"
    if to == lifecycle.NO_SHOW and now < no_show_from(office, booking):
        return "too_early_no_show"
    if not details_kept(office, booking, now):
        return "retention"
    return None


def details_kept(office, booking: Booking, now: datetime) -> bool:
    """Does the office still keep the booking's details (not erased, nor due for the retention purge)?"""
    keep = timedelta(days=office.retention_rules()["personal_details_days_after_session"])
    return booking.details_purged_at is None and booking.slot_start >= now - keep


def no_show_from(office, booking: Booking) -> datetime:
    """When a booking nobody joined or called about may be recorded as a no-show: start + no_show_minutes."""
    return booking.slot_start + timedelta(minutes=office.no_show_minutes)


def earlier_no_shows(session: Session, office, booking: Booking) -> list[Booking]:
    """The person's other bookings at this office recorded as a no-show, latest first: from the same LINE account
    or the same job seeker number (a phone booking, another account). After one, the office 「今後のオンライン職業
    相談の利用をお断りする場合があります」 (Sakata 第6条(3), Otaru 第4条(3)): staff deciding the next request see them."""
    return _same_persons(session, office, booking, lifecycle.NO_SHOW)


def earlier_sessions(session: Session, office, booking: Booking) -> list[Booking]:
    """The person's sessions at this office recorded as attended, latest first, where the office may limit how
    often one uses the service (profile `booking.usage_limit_note`; Otaru's notice: 「対応スタッフや機材に限られる
    ことから、利用回数に制限を設ける場合があります」): staff deciding a request see how often it was used."""
    if not office.booking.usage_limit_note:
        return []
    return _same_persons(session, office, booking, lifecycle.ATTENDED)


def other_open_bookings(session: Session, office, booking: Booking, now: datetime) -> list[Booking]:
    """The person's other requests and bookings still ahead, from any route, soonest first. Sakata 第6条(1):
    「2回目以降の予約申込みは、オンライン職業相談の際にも行うことができます」: a next session staff registered during
    one has no LINE account, so the chat does not count it; staff deciding a LINE request see it here, and so do
    staff who recorded a no-show (「今後のオンライン職業相談の利用をお断りする場合があります」)."""
    return [b for b in _same_persons(session, office, booking, *OPEN_STATUSES) if b.slot_start > now][::-1]


def typed_elsewhere(booking: Booking, found: Iterable[Booking]) -> set[int]:
    """Of the person's bookings `_same_persons` found, the ids of those found only because the same job seeker
    number was typed on another LINE account. Anyone may type anyone's number on the form, which must not tell
    whose it is: such a booking (a no-show, sessions used, a request ahead) is the person's only once they say so
    on the phone, and staff see it marked before holding it against them, or acting on it because of them."""
    return {b.id for b in found if b.conversation_id is not None and b.conversation_id != booking.conversation_id}


def _same_persons(session: Session, office, booking: Booking, *statuses: str) -> list[Booking]:
    """The other bookings in `statuses` of the person behind `booking` (same LINE account or job seeker number),
    latest first."""
    same = []
    if booking.conversation_id is not None:
        same.append(Booking.conversation_id == booking.conversation_id)
    if booking.seeker_hash:
        same.append(Booking.seeker_hash == booking.seeker_hash)
    if not same:
        return []
    return list(session.scalars(select(Booking).where(
        Booking.office_id == office.id, Booking.id != booking.id, Booking.status.in_(statuses), or_(*same),
    ).order_by(Booking.slot_start.desc())))


def cancel(session: Session, rt, office, booking: Booking, actor: Actor, now: datetime,
           by_office: bool, note: str | None = None) -> Result:
    """Cancel on the user's behalf (they phoned) or by the office; the seat is freed and the user told."""
    if by_office:
        action, trigger, target = "cancel_by_office", "cancel_by_office", lifecycle.CANCELLED_BY_OFFICE
    elif booking.status == lifecycle.REQUESTED:
        action, trigger, target = "withdraw_for_user", "withdraw", lifecycle.WITHDRAWN
    elif booking.status == lifecycle.PROPOSED:
        # The user turned the proposed slot down by phone: a proposal ends declined (interface.md).
        action, trigger, target = "withdraw_for_user", "decline", lifecycle.DECLINED
    else:
        action, trigger, target = "cancel_for_user", "cancel", lifecycle.CANCELLED
    _nothing_written_after_erasure(booking, note)
    if by_office and _stopped_under_terms(session, booking):
        raise Refused("status", booking)   # stopped the other way: this 都合 was not done
    changed = _move(session, booking, trigger, target, now)
    told = None
    if changed:
        audit.record(session, office.id, actor, action, now, booking,
                     sealed_note=personal.seal_note(rt, note, MEMO_LIMIT))
        template = "outcome_cancelled_by_office" if by_office else "outcome_cancelled_for_user"
        told = _tell(session, rt, office, booking, template, now)
    return Result(booking, action, changed, told=told)


def cancel_under_terms(session: Session, rt, office, booking: Booking, actor: Actor, now: datetime,
                       block: bool = False) -> Result:
    """Stop a confirmed booking under the office's terms (Sakata 第12条(1), Otaru 第10条(1): threats, abusive
    language, use other than finding work): cancelled by the office like 都合 but recorded as its own action, and
    the user told neutrally, naming the article, without the 都合's apology. `block`: the same tap also stops the
    user's future online booking (`set_user_blocked`), only when this tap stopped the booking."""
    if booking.status == lifecycle.CANCELLED_BY_OFFICE and not _stopped_under_terms(session, booking):
        raise Refused("status", booking)   # stopped for the office's 都合: this was not done
    changed = _move(session, booking, "cancel_by_office", lifecycle.CANCELLED_BY_OFFICE, now)
    told, blocked = None, False
    if changed:
        audit.record(session, office.id, actor, "cancel_by_terms", now, booking)
        told = _tell(session, rt, office, booking, "outcome_cancelled_by_terms", now)
        conv = session.get(Conversation, booking.conversation_id) if booking.conversation_id else None
        if block and conv is not None and conv.office_id == office.id:
            blocked = set_user_blocked(session, office, booking, actor, now, blocked=True).changed
    return Result(booking, "cancel_by_terms", changed, told=told, blocked=blocked)


def _stopped_under_terms(session: Session, booking: Booking) -> bool:
    """Was this booking, cancelled by the office, stopped under the terms (not for the office's 都合)?"""
    return booking.status == lifecycle.CANCELLED_BY_OFFICE and session.scalar(
        select(func.count()).select_from(AuditEntry).where(
            AuditEntry.booking_id == booking.id, AuditEntry.action == "cancel_by_terms")) > 0


def mark_invitation_sent(session: Session, office, booking: Booking, actor: Actor, now: datetime) -> Result:
    """The invitation (Sakata: e-mail; Otaru: meeting ID and password) went out, outside LINE."""
    if booking.status != "confirmed":
        raise Refused("status", booking)
    if booking.invitation_sent_at is not None:
        return Result(booking, "invitation_sent", False)
    booking.invitation_sent_at, booking.updated_at = now, now
    audit.record(session, office.id, actor, "invitation_sent", now, booking)
    return Result(booking, "invitation_sent", True)


def mark_called(session: Session, office, booking: Booking, actor: Actor, now: datetime) -> Result:
    """The office phoned the user with the date and time (the call task is done)."""
    if booking.status != "confirmed":  # a page left open while the booking was cancelled or ended
        raise Refused("status", booking)
    row = handoff_of(session, booking, now)
    if row.called_at is not None:
        return Result(booking, "called", False)
    row.called_at, row.updated_at = now, now
    audit.record(session, office.id, actor, "called", now, booking)
    return Result(booking, "called", True)


def undo_preparation(session: Session, office, booking: Booking, actor: Actor, now: datetime, task: str) -> Result:
    """Take back the record of the invitation sent (`task` "invitation") or of the call made ("called"), tapped
    by mistake: until the session starts the task is open again, where the queue and the schedule show it."""
    action = f"{task}_undone"
    if booking.status != "confirmed" or booking.slot_start <= now:
        raise Refused("status", booking)
    if task == "invitation":
        if booking.invitation_sent_at is None:
            return Result(booking, action, False)
        booking.invitation_sent_at = None
    else:
        row = handoff_of(session, booking, now)
        if row.called_at is None:
            return Result(booking, action, False)
        row.called_at, row.updated_at = None, now
    booking.updated_at = now
    audit.record(session, office.id, actor, action, now, booking)
    return Result(booking, action, True)


def _nothing_written_after_erasure(booking: Booking, text: str | None) -> None:
    """Free text staff write about a booking (a note, a memo) is personal: once its details were erased (the
    retention purge, or the user's データ削除) none is written back, not even encrypted; Refused('erased')."""
    if booking.details_purged_at is not None and (text or "").strip():
        raise Refused("erased", booking)


def set_note(session: Session, rt, office, booking: Booking, actor: Actor, now: datetime, note: str,
             seen: str | None = None) -> Result:
    """The 職員メモ: replaced as a whole, stored encrypted (staff write personal things there).

    `seen` is the fingerprint of the note the page showed: when another member saved a different note since,
    Refused('note_changed'), so nobody's note is overwritten unseen; a note no configured key opens is not
    overwritten either (Refused('note_unreadable')).
    """
    current = personal.open_note(rt, booking.staff_note)
    if booking.staff_note is not None and current is None:
        # Kept under a key no longer configured: saving would replace a note nobody can read now.
        raise Refused("note_unreadable", booking)
    if seen is not None and seen != personal.note_digest(current):
        raise Refused("note_changed", booking)
    _nothing_written_after_erasure(booking, note)
    booking.staff_note, booking.updated_at = personal.seal_note(rt, note, NOTE_LIMIT), now
    audit.record(session, office.id, actor, "note", now, booking)
    return Result(booking, "note", True)


# -- the user's online booking --------------------------------------------------------------------

def set_user_blocked(session: Session, office, booking: Booking, actor: Actor, now: datetime,
                     blocked: bool) -> Result:
    """Block (after no-shows) or unblock the online booking of the user behind this booking."""
    if booking.conversation_id is None:
        raise Refused("no_user", booking)
    conv = session.get(Conversation, booking.conversation_id)
    if conv is None or conv.office_id != office.id:
        raise Refused("no_user", booking)
    if bool(conv.booking_blocked) == blocked:
        return Result(booking, "block_user" if blocked else "unblock_user", False)
    conv.booking_blocked = blocked
    action = "block_user" if blocked else "unblock_user"
    audit.record(session, office.id, actor, action, now, booking)
    return Result(booking, action, True)


# -- slots and days -------------------------------------------------------------------------------

def block(session: Session, office, actor: Actor, now: datetime, day: date,
          start: datetime | None = None, sealed_reason: bytes | None = None) -> SlotBlock:
    """Take a slot (start given) or a whole day out of online booking; existing bookings are kept. The reason
    staff give is free text, so personal: it comes already encrypted (`personal.seal_note`)."""
    if sealed_reason is not None and not isinstance(sealed_reason, bytes):
        raise TypeError("a block reason is stored encrypted: pass personal.seal_note(...)")
    query = select(SlotBlock).where(SlotBlock.office_id == office.id, SlotBlock.day == day.isoformat())
    query = query.where(SlotBlock.slot_start.is_(None) if start is None else SlotBlock.slot_start == start)
    existing = session.scalar(query)
    if existing is not None:
        return existing
    row = SlotBlock(office_id=office.id, day=day.isoformat(), slot_start=start, reason=sealed_reason,
                    created_at=now)
    session.add(row)
    audit.record(session, office.id, actor, "block_slot" if start else "block_day", now,
                 day=day.isoformat(), slot=start)
    return row


def open_bookings_within(session: Session, office_id: str, day: date, start: datetime | None = None) -> int:
    """How many requests and bookings still open a block of `day` (or of its slot `start`) leaves standing:
    a block only stops new online requests, so staff are told what it kept and call those off one by one."""
    if start is not None:
        within = Booking.slot_start == start
    else:
        first = datetime.combine(day, datetime.min.time(), tzinfo=TOKYO)
        within = (Booking.slot_start >= first) & (Booking.slot_start < first + timedelta(days=1))
    return session.scalar(select(func.count(Booking.id)).where(
        Booking.office_id == office_id, Booking.status.in_(OPEN_STATUSES), within)) or 0


def unblock(session: Session, office, actor: Actor, now: datetime, block_id: int, day: str,
            slot_start: datetime | None) -> None:
    """Open the day or slot of block `block_id` again, as the page that offered it showed it (`day`, `slot_start`).

    The page's day and slot are checked as well as the id: once the block was lifted, SQLite gives its id to the
    next block made, so a 停止を解除 pressed on an old page would otherwise open another day (`block_gone`)."""
    row = session.get(SlotBlock, block_id)
    if row is None or row.office_id != office.id or row.day != day or row.slot_start != slot_start:
        raise Refused("block_gone")
    audit.record(session, office.id, actor, "unblock_slot" if row.slot_start else "unblock_day", now,
                 day=row.day, slot=row.slot_start)
    # Every block of that slot or day goes: two members blocking it at the same moment may both have added one.
    same = SlotBlock.slot_start.is_(None) if row.slot_start is None else SlotBlock.slot_start == row.slot_start
    session.execute(delete(SlotBlock).where(SlotBlock.office_id == office.id, SlotBlock.day == row.day, same))


# -- bookings staff take by phone or at the window ------------------------------------------------

def _staff_slot_problem(session: Session, office, now: datetime, start: datetime) -> str | None:
    """Why staff could not book `start` now (holds of users on the form do not count: staff take it)."""
    blocked, blocked_days = holds.blocks(session, office.id, now)
    taken = {start: _claims_on(session, office.id, start)}
    return slotsvc.is_bookable(office, now, start, taken, blocked, blocked_days)


new_reference = requests.new_reference


def create_booking(session: Session, rt, office, actor: Actor, now: datetime, *, start: datetime,
                   source: str, details: dict[str, Any], override_reason: str | None = None) -> Booking:
    """A confirmed booking for a phone or window request: takes the slot, so the bot never offers it.

    The notice rule, the booking window, a staff block, the one-open rule and a stop of the person's online
    booking (on their LINE account, found by the job seeker number) may be overridden with a reason (free text
    staff write, so stored encrypted); a past, closed, non-schedule or full slot may not.
    """
    if source not in SOURCES:
        raise Refused("source")
    override_reason = (override_reason or "").strip()[:OVERRIDE_LIMIT].strip() or None
    problem = _staff_slot_problem(session, office, now, start)
    overrides: list[str] = []
    if problem is not None:
        if problem not in OVERRIDABLE:
            raise Refused(problem)
        overrides.append(problem)
    seeker_hash = personal.seeker_hash(rt, details.get("seeker_number") or "")
    if seeker_hash and session.scalar(select(Booking.id).where(
            Booking.office_id == office.id, Booking.seeker_hash == seeker_hash,
            Booking.status.in_(OPEN_STATUSES), Booking.slot_start > now).limit(1)) is not None:
        overrides.append("one_open")
    if seeker_hash and requests.refused_online(session, office.id, seeker_hash):
        overrides.append("refused_online")   # staff stopped this person's online booking (a no-show, misuse)
    if overrides and not override_reason:
        raise Refused("needs_override", overrides=overrides)
    booking = Booking(reference=new_reference(session), office_id=office.id, conversation_id=None,
                      slot_start=start, status="confirmed", source=source, seeker_hash=seeker_hash,
                      details=personal.encrypt(rt, details), decided_at=now, created_at=now, updated_at=now)
    session.add(booking)
    session.flush()
    if not claim_seat(session, office, booking):
        raise Refused("full")
    row = handoff_of(session, booking, now)
    row.override_reason = personal.seal_note(rt, override_reason, OVERRIDE_LIMIT) if overrides else None
    audit.record(session, office.id, actor, "create_booking", now, booking, source=source, slot=start,
                 overrides=overrides)
    return booking


# -- telling the user -----------------------------------------------------------------------------

def _tell(session: Session, rt, office, booking: Booking, template: str, now: datetime, **vars: Any) -> bool:
    """Queue the user's message; False when there is no LINE chat to send it to (a phone or window booking,
    or a user who blocked the account): staff must tell them another way."""
    from bot import notify

    return notify.tell_user(session, rt, office, booking, template, now, **vars) is not None
