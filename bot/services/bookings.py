"""Requests and bookings as the user sees them in chat: list, withdraw or cancel, receipt, delete data.

What a user may do about each (the `action` of a summary):
- `withdraw`: a request not yet decided (requested), before the session day (on the day itself only where
  the office takes same-day cancellations in chat: staff may be about to confirm it, and a same-day change
  goes by the office's same-day routes, as for a booking);
- `proposal`: staff proposed another slot: accept or decline it;
- `cancel`: a confirmed booking, in chat, where the office's rule allows it (`cancellation.in_chat`,
  until `in_chat_until_days_before` days before the session date);
- `call`: a confirmed booking the office's rule says to cancel another way: `routes` names them
  (`same_day_routes` on the session day), and the templates show each route's confirmed contact; also one
  whose session began less than `no_show_minutes` ago (a call now is not an unannounced absence).
Every withdrawal or cancellation is handed to staff (a StaffNotice). Summaries carry no personal values.

A confirmed booking stays confirmed until staff record 出席 or 欠席; once its session began, its `phase` says
so (`running` until the office's session length has passed, then `over`), and the list says that instead of
予約確定, so a session whose time came is never shown as one still ahead (None for anything else).
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, bindparam, delete, or_, select, update
from sqlalchemy.orm import Session

from bot.clock import TOKYO
from bot.models import Booking, Conversation, SlotHold
from bot.rawsql import Statement
from bot.services import calendar, lifecycle, push_hours
from bot.services import slots as slotsvc
from bot.staff.models import AuditEntry, BookingHandoff

OPEN_STATUSES = lifecycle.OPEN_STATUSES
LIST_LIMIT = 10


# -- what the user may do --------------------------------------------------------------------------

def cancellable_in_chat(office, booking: Booking, now: datetime) -> bool:
    """May this confirmed booking be cancelled in chat now, by the office's rule?"""
    return _in_chat_open(office, booking.slot_start, now)


def _in_chat_open(office, slot_start: datetime, now: datetime) -> bool:
    rule = office.cancellation
    if not rule.in_chat or slot_start <= now:
        return False
    last_day = slot_start.date() - timedelta(days=rule.in_chat_until_days_before)
    return now.date() <= last_day


def message_timing(office, slot_start: datetime, now: datetime, invitation_sent: bool = False,
                   called: bool = False) -> dict[str, bool]:
    """What a message about a confirmed booking, sent now, may still promise (`booking.timing` in
    the templates).

    `session_day`: it is the session's day already (staff may confirm that late), so nothing can come "by
    the day before" any more; `cancel_in_chat`: the office's in-chat cancellation is still open for it;
    `invitation_sent`: staff recorded the invitation (Sakata's e-mail, Otaru's meeting ID) as sent, so the
    day-before reminder says it went and whom to tell if it did not arrive, instead of promising it again;
    `called`: staff recorded the phone call with the date (Sakata 第6条(2)), which is then not promised again.
    """
    return {"session_day": now.astimezone(TOKYO).date() >= slot_start.astimezone(TOKYO).date(),
            "cancel_in_chat": _in_chat_open(office, slot_start, now), "invitation_sent": invitation_sent,
            "called": called}


def _same_day(booking: Booking, now: datetime) -> bool:
    """Is it the session's day (Asia/Tokyo: the database and the clock both give Tokyo times)?"""
    return booking.slot_start.date() == now.date()


def cancel_routes(office, booking: Booking, now: datetime) -> tuple[str, ...]:
    """How to cancel outside the chat: the office's routes, only the same-day ones on the session day."""
    rule = office.cancellation
    return tuple(rule.same_day_routes if _same_day(booking, now) else rule.routes)


def _in_grace(office, booking: Booking, now: datetime) -> bool:
    """A confirmed session that began less than the office's no-show minutes ago: a user who cannot join may
    still tell the office (「連絡がないまま…10分経過した場合は、キャンセルとみなします」), by its same-day routes."""
    return (booking.status == lifecycle.CONFIRMED
            and booking.slot_start <= now < booking.slot_start + timedelta(minutes=office.no_show_minutes))


def _action(office, booking: Booking, now: datetime) -> str | None:
    if booking.slot_start <= now:
        return "call" if _in_grace(office, booking, now) else None
    if booking.status == lifecycle.REQUESTED:
        return "withdraw" if not _same_day(booking, now) or cancellable_in_chat(office, booking, now) else "call"
    if booking.status == lifecycle.PROPOSED:
        return "proposal"
    if booking.status == lifecycle.CONFIRMED:
        return "cancel" if cancellable_in_chat(office, booking, now) else "call"
    return None


def _phase(office, booking: Booking, now: datetime) -> str | None:
    if booking.status != lifecycle.CONFIRMED or now < booking.slot_start:
        return None
    return "running" if now < booking.slot_start + timedelta(minutes=office.schedule.duration_minutes) else "over"


def summary(office, booking: Booking, now: datetime) -> dict[str, Any]:
    """What the chat may say about a booking: reference, slot, status, and what the user may do."""
    action = _action(office, booking, now)
    routes = cancel_routes(office, booking, now) if action == "call" else ()
    return {
        "reference": booking.reference,
        "status": booking.status,
        "phase": _phase(office, booking, now),
        "at": booking.slot_start,
        "label": slotsvc.slot_label(booking.slot_start),
        "action": action,
        "routes": routes,
        "same_day": _same_day(booking, now),
        "phone_opens": _closed_today(office, booking, now) if "phone" in routes else None,
    }


def phone_opens(office, booking: Booking, now: datetime) -> dict[str, Any] | None:
    """`_closed_today` where the booking is now cancelled by phone (for a message read at `now`), else None."""
    if _action(office, booking, now) != "call" or "phone" not in cancel_routes(office, booking, now):
        return None
    return _closed_today(office, booking, now)


def _closed_today(office, booking: Booking, now: datetime) -> dict[str, Any] | None:
    """When the user is to call and the office is closed today (the year end, a holiday, a weekend, its own
    closure): why, the first business day it answers again, and whether that is the session's own day (the
    call must then come before the start). None on a business day. (The offices' profiles give no reception
    hours to tell a closed hour by; where one does, `office.hours` is said beside the number.)"""
    today = now.astimezone(TOKYO).date()
    closure = calendar.is_closed(today, office.schedule.closures)
    if closure is None:
        return None
    opens = calendar.first_business_day_on_or_after(today, office.schedule.closures)
    return {"closure": closure, "holiday": calendar.holiday_name(today) if closure == "holiday" else None,
            "on": opens, "on_the_day": opens == booking.slot_start.astimezone(TOKYO).date(),
            "start_time": f"{booking.slot_start.astimezone(TOKYO):%H:%M}"}


# -- listing ---------------------------------------------------------------------------------------

# Most users asking have no booking yet (予約 asks for an open one, 予約確認 lists them): a compiled
# statement (`bot.rawsql`) answers that before the ORM loads anything.
_ANY = Statement(select(Booking.id).where(
    Booking.office_id == bindparam("office_id"), Booking.conversation_id == bindparam("conversation_id")).limit(1))
_ANY_OPEN = Statement(select(Booking.id).where(
    Booking.office_id == bindparam("office_id"), Booking.conversation_id == bindparam("conversation_id"),
    or_(*(Booking.status == status for status in OPEN_STATUSES)), Booking.slot_start > bindparam("now")).limit(1))


def _open_ahead(booking: Booking, now: datetime) -> bool:
    """Open (requested, proposed, confirmed) and its slot still ahead: what `_ANY_OPEN` asks in SQL."""
    return booking.status in OPEN_STATUSES and booking.slot_start > now


def _user_bookings(session: Session, office, conv: Conversation, lock: bool = False) -> list[Booking]:
    query = select(Booking).where(
        Booking.office_id == office.id, Booking.conversation_id == conv.id,
    ).order_by(Booking.slot_start.desc(), Booking.id.desc())
    if lock and session.bind.dialect.name == "postgresql":
        query = query.with_for_update()
    return list(session.scalars(query))


def summaries(session: Session, office, conv: Conversation, now: datetime) -> list[dict[str, Any]]:
    """The user's requests and bookings at this office, open ones first, then the latest closed ones."""
    if _ANY.scalar(session, {"office_id": office.id, "conversation_id": conv.id}) is None:
        return []
    rows = _user_bookings(session, office, conv)
    open_rows = [b for b in rows if _open_ahead(b, now)]
    open_rows.sort(key=lambda b: b.slot_start)
    rest = [b for b in rows if b not in open_rows]
    return [summary(office, b, now) for b in (open_rows + rest)[:LIST_LIMIT]]


def open_summary(session: Session, office, conv: Conversation, now: datetime) -> dict[str, Any] | None:
    """The user's nearest open request or booking at this office (its slot still ahead), if any, with how many
    they have open (`open_count`: the office's `max_open_per_user` may allow more than one)."""
    if _ANY_OPEN.scalar(session, {"office_id": office.id, "conversation_id": conv.id, "now": now}) is None:
        return None
    rows = [b for b in _user_bookings(session, office, conv) if _open_ahead(b, now)]
    if not rows:
        return None
    return {**summary(office, min(rows, key=lambda b: b.slot_start), now), "open_count": len(rows)}


def free_seat(session: Session, booking: Booking) -> None:
    """Give back the seat a request or booking holds."""
    lifecycle.free_seat(session, booking)


# -- withdrawing and cancelling ---------------------------------------------------------------------

def _find(session: Session, office, conv: Conversation, reference: str) -> Booking | None:
    query = select(Booking).where(Booking.reference == (reference or "").strip().upper(),
                                  Booking.office_id == office.id, Booking.conversation_id == conv.id)
    if session.bind.dialect.name == "postgresql":
        query = query.with_for_update()
    return session.scalar(query)


def withdraw_in_chat(session: Session, rt, office, conv: Conversation, reference: str,
                     now: datetime, offered: str | None = None, *, confirmed: bool,
                     asked_status: str | None = None) -> dict[str, Any]:
    """Withdraw an undecided request, or cancel a confirmed booking where the office allows it in chat.

    Two steps, as neither can be undone: the 予約確認 button asks (`confirmed` false: nothing is done; outcome
    `ask`, with what would be done as the summary's `action`), its confirmation acts (`confirmed`, with the
    status the question showed as `asked_status`). A confirmation for a booking still open whose status
    changed since its question does nothing (outcome `changed`: it is shown as it is now), as does a withdraw
    button for a request that staff have confirmed since: a confirmed booking is cancelled only by a button
    that says so. (One for a request answered with another slot declines it: that ends the request too.)
    outcome: ask | withdrawn | cancelled | declined (a proposal turned down) | call (use another route) |
    started (its slot has begun) | already (closed before) | changed | not_found.
    """
    booking = _find(session, office, conv, reference)
    if booking is None:
        return {"outcome": "not_found", "reference": reference}
    action = _action(office, booking, now)
    in_chat = action in ("withdraw", "proposal", "cancel")
    if (offered == "withdraw" and action == "cancel") or (
            action is not None and asked_status is not None and booking.status != asked_status):
        return {"outcome": "changed", **summary(office, booking, now)}
    if in_chat and not confirmed:
        return {"outcome": "ask", **summary(office, booking, now)}
    if action == "withdraw" and lifecycle.fire(session, booking, "withdraw", now):
        rt.notify_staff(session, office, "withdrawn", booking.id, now)
        return {"outcome": "withdrawn", **summary(office, booking, now)}
    if action == "proposal" and lifecycle.fire(session, booking, "decline", now):
        rt.notify_staff(session, office, "proposal_declined", booking.id, now)
        return {"outcome": "declined", **summary(office, booking, now)}
    if action == "cancel" and lifecycle.fire(session, booking, "cancel", now):
        rt.notify_staff(session, office, "cancelled", booking.id, now)
        return {"outcome": "cancelled", **summary(office, booking, now)}
    if action == "call":
        return {"outcome": "call", **summary(office, booking, now)}
    if booking.status in OPEN_STATUSES and booking.slot_start <= now:
        return {"outcome": "started", **summary(office, booking, now)}
    return {"outcome": "already", **summary(office, booking, now)}


# -- personal data ----------------------------------------------------------------------------------

_CLOSE_FOR_DELETION = {
    lifecycle.REQUESTED: ("withdraw", "withdrawn"),
    lifecycle.PROPOSED: ("decline", "proposal_declined"),
    lifecycle.CONFIRMED: ("cancel", "cancelled"),
}


def delete_personal_data(session: Session, rt, office, conv: Conversation, now: datetime) -> dict[str, Any]:
    """Close what is still ahead (withdrawn/cancelled, staff told), then erase every detail we hold.

    outcome `deleted`, with `closed`: the summaries of what was closed, each with how (`closed_as`).
    outcome `call`, with `kept`: nothing done, because a booking ahead (or whose session is under way) may not be
    closed in chat by the office's rule (a confirmed session the office cancels only by phone, or anything on the
    session day where same-day cancellations go by phone): its details are what staff run the session with, so the
    user is told to cancel it by the office's route first (or to ask again after the session).

    What staff wrote about the user's bookings (the 職員メモ, the memos of cancellations, the reasons for
    booking a slot by exception) goes with the details; the audit entries stay, without their memo. The
    consent records stay (the office's record of who agreed to which terms); the conversation keeps only its
    LINE user id, state and language.
    """
    # Locked (PostgreSQL; SQLite's write lock already serialises): a staff note or a decision committed while
    # this runs is read as it ended, so what staff just wrote is erased too and no decision is overwritten.
    bookings = _user_bookings(session, office, conv, lock=True)
    # A session under way (its start passed, the no-show minutes not yet) is run with its details too, and the
    # user may still call about it: kept like one just before its start.
    kept = [summary(office, b, now) for b in bookings
            if (_open_ahead(b, now) or _in_grace(office, b, now)) and _action(office, b, now) == "call"]
    if kept:
        return {"outcome": "call", "kept": sorted(kept, key=lambda k: k["at"])}
    closed: list[dict[str, Any]] = []
    for booking in bookings:
        step = _CLOSE_FOR_DELETION.get(booking.status)
        if step is not None and booking.slot_start > now and lifecycle.fire(session, booking, step[0], now):
            rt.notify_staff(session, office, step[1], booking.id, now)
            closed.append({**summary(office, booking, now), "closed_as": step[1]})
        if booking.details is not None or booking.seeker_hash is not None or booking.staff_note is not None:
            booking.details, booking.seeker_hash, booking.details_purged_at = None, None, now
            booking.staff_note = None
        booking.receipt_pending = False
    erase_staff_text(session, [booking.id for booking in bookings])
    session.execute(delete(SlotHold).where(SlotHold.conversation_id == conv.id))
    return {"outcome": "deleted", "closed": sorted(closed, key=lambda c: c["at"])}


# What staff wrote about a booking outside its own row: the memos in the audit log, the override reasons.
_STAFF_TEXT = ((AuditEntry, "note"), (BookingHandoff, "override_reason"))


def erase_staff_text(session: Session, booking_ids: list[int] | Select) -> None:
    """Erase what staff wrote about these bookings (ids, or a select of ids) outside the booking row: the
    memos in their audit entries and the reasons for booking them by exception. They go when the bookings'
    details go; the audit entries (action, time, actor) and the handoff rows stay."""
    if isinstance(booking_ids, list) and not booking_ids:
        return
    for model, column in _STAFF_TEXT:
        session.execute(update(model).where(
            model.booking_id.in_(booking_ids), getattr(model, column).is_not(None),
        ).values({column: None}).execution_options(synchronize_session=False))


# -- the receipt --------------------------------------------------------------------------------------

def take_receipt(session: Session, office, conv: Conversation, now: datetime) -> dict[str, Any] | None:
    """A request completed on the form and not yet shown in chat (shown once, while still undecided).

    Looked for only while the conversation says one may be due: most events cost no query.
    """
    if not conv.receipt_due:
        return None
    with session.no_autoflush:
        booking = session.scalar(select(Booking).where(
            Booking.office_id == office.id, Booking.conversation_id == conv.id, Booking.receipt_pending.is_(True),
        ).order_by(Booking.id).limit(1))
    if booking is None:
        conv.receipt_due = False
        return None
    return take_receipt_of(office, booking, now)


def take_receipt_of(office, booking: Booking, now: datetime) -> dict[str, Any] | None:
    """This request's receipt, once: None when already shown or when it was decided meanwhile. With
    `office_opens` (`_looked_at_from`) where closed days keep the request from staff past tomorrow."""
    if not booking.receipt_pending:
        return None
    booking.receipt_pending = False
    if booking.status != lifecycle.REQUESTED:
        return None  # decided meanwhile: the decision itself was told
    return {**summary(office, booking, now), "office_opens": _looked_at_from(office, now)}


def _looked_at_from(office, now: datetime) -> dict[str, Any] | None:
    """When the request made now reaches staff, where closed days hold its card past tomorrow (the cards wait for
    a business morning, bot/services/push_hours.py): made on 12/30, or on 12/28 after the push hours, it is looked
    at from 1/4, and the receipt says so rather than leave the person days without a word. With the first closed
    day's reason (today's or tomorrow's). None when the card goes today or tomorrow morning, or on closed days too
    (`staff_cards_on_closed_days`)."""
    card_at = push_hours.next_staff_opening(office, now)
    today = now.astimezone(TOKYO).date()
    if office.push_hours.staff_cards_on_closed_days or card_at is None or card_at.date() <= today + timedelta(days=1):
        return None
    closures = office.schedule.closures
    return {"closure": calendar.is_closed(today, closures) or calendar.is_closed(today + timedelta(days=1), closures),
            "on": card_at.date()}
