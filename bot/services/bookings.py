"""Requests and bookings as the user sees them: list, withdraw or cancel, delete personal data."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from bot.models import Booking, Conversation, SlotClaim, SlotHold
from bot.services import slots as slotsvc

OPEN_STATUSES = ("requested", "proposed", "confirmed")


def _summary(office, booking: Booking, now: datetime) -> dict[str, Any]:
    action = None
    if booking.status in ("requested", "proposed"):
        action = "withdraw"
    elif booking.status == "confirmed" and booking.slot_start > now:
        action = "cancel" if cancellable_in_chat(office, booking, now) else "call"
    return {"reference": booking.reference, "status": booking.status, "at": booking.slot_start,
            "label": slotsvc.slot_label(booking.slot_start), "action": action}


def cancellable_in_chat(office, booking: Booking, now: datetime) -> bool:
    rule = office.cancellation
    if not rule.in_chat:
        return False
    last_day = booking.slot_start.date() - timedelta(days=rule.in_chat_until_days_before)
    return now.date() <= last_day


def _user_bookings(session: Session, office, conv: Conversation):
    return session.scalars(select(Booking).where(Booking.office_id == office.id,
                                                 Booking.conversation_id == conv.id)
                           .order_by(Booking.slot_start.desc())).all()


def summaries(session: Session, office, conv: Conversation, now: datetime) -> list[dict[str, Any]]:
    return [_summary(office, b, now) for b in _user_bookings(session, office, conv)][:10]


def open_summary(session: Session, office, conv: Conversation, now: datetime) -> dict[str, Any] | None:
    for booking in _user_bookings(session, office, conv):
        if booking.status in OPEN_STATUSES and booking.slot_start > now:
            return _summary(office, booking, now)
    return None


def free_seat(session: Session, booking: Booking) -> None:
    session.execute(delete(SlotClaim).where(SlotClaim.booking_id == booking.id))


def withdraw_in_chat(session: Session, rt, office, conv: Conversation, reference: str,
                     now: datetime) -> dict[str, Any]:
    """Withdraw an undecided request, or cancel a confirmed booking where the office allows it in chat."""
    booking = session.scalar(select(Booking).where(Booking.reference == reference,
                                                   Booking.office_id == office.id,
                                                   Booking.conversation_id == conv.id))
    if booking is None:
        return {"outcome": "not_found", "reference": reference}
    summary = _summary(office, booking, now)
    if booking.status in ("requested", "proposed"):
        booking.status, booking.updated_at = "withdrawn", now
        kind = "withdrawn"
    elif summary["action"] == "cancel":
        booking.status, booking.updated_at = "cancelled", now
        kind = "cancelled"
    elif booking.status == "confirmed" and booking.slot_start > now:
        return {"outcome": "call", **summary}
    else:
        return {"outcome": "already", **summary}
    free_seat(session, booking)
    rt.notify_staff(session, office, kind, booking.id, now)
    return {"outcome": kind, **_summary(office, booking, now)}


def delete_personal_data(session: Session, rt, office, conv: Conversation, now: datetime) -> dict[str, Any]:
    """Withdraw/cancel what is open (staff told), then erase the personal details we hold."""
    closed = []
    for booking in _user_bookings(session, office, conv):
        if booking.status in OPEN_STATUSES and booking.slot_start > now:
            booking.status = "withdrawn" if booking.status != "confirmed" else "cancelled"
            booking.updated_at = now
            free_seat(session, booking)
            rt.notify_staff(session, office, booking.status, booking.id, now)
            closed.append(booking.reference)
        if booking.details is not None:
            booking.details, booking.seeker_hash, booking.details_purged_at = None, None, now
    session.execute(delete(SlotHold).where(SlotHold.conversation_id == conv.id))
    return {"closed": closed}


def take_receipt(session: Session, office, conv: Conversation, now: datetime) -> dict[str, Any] | None:
    """A request completed on the form and not yet shown in chat (shown once)."""
    booking = session.scalar(select(Booking).where(Booking.conversation_id == conv.id,
                                                   Booking.receipt_pending.is_(True)).limit(1))
    if booking is None:
        return None
    booking.receipt_pending = False
    return _summary(office, booking, now)
