"""The dashboard's to-do lists: what staff still have to decide, phone, send or record for an office, and its notices."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.models import Booking, StaffNotice
from bot.staff.decisions import UNDECIDED
from bot.staff.models import BookingHandoff

NOTICES_SHOWN = 50  # the newest notices of the office (migration 0022's index serves exactly this query)


@dataclass(frozen=True)
class Queue:
    undecided: list[Booking]
    calls: list[Booking]
    invitations: list[Booking]
    attendance: list[Booking]
    notices: list  # rows of (StaffNotice, booking reference, booking status), newest first


def has_undecided(session: Session, office_id: str) -> bool:
    """Is any request of the office waiting for a decision (the day view points to the queue then)?"""
    return session.scalar(select(Booking.id).where(
        Booking.office_id == office_id, Booking.status.in_(UNDECIDED)).limit(1)) is not None


def load(session: Session, office, now: datetime) -> Queue:
    """The office's queue at `now`, each list in slot order; no writes."""
    undecided = session.scalars(select(Booking).where(
        Booking.office_id == office.id, Booking.status.in_(UNDECIDED)
    ).order_by(Booking.slot_start)).all()
    # To phone the date is a task before the session only, as the invitation is: once it has begun, a call
    # "to tell the date" is moot and its attendance is what is left to do.
    calls = session.scalars(select(Booking).join(BookingHandoff, BookingHandoff.booking_id == Booking.id).where(
        Booking.office_id == office.id, Booking.status == "confirmed", BookingHandoff.call_needed.is_(True),
        BookingHandoff.called_at.is_(None), Booking.slot_start > now).order_by(Booking.slot_start)).all()
    invitations = session.scalars(select(Booking).where(
        Booking.office_id == office.id, Booking.status == "confirmed", Booking.invitation_sent_at.is_(None),
        Booking.slot_start > now).order_by(Booking.slot_start)).all()
    attendance = session.scalars(select(Booking).where(
        Booking.office_id == office.id, Booking.status == "confirmed",
        Booking.slot_start <= now - timedelta(minutes=office.no_show_minutes)).order_by(Booking.slot_start)).all()
    notices = session.execute(select(StaffNotice, Booking.reference, Booking.status).join(
        Booking, Booking.id == StaffNotice.booking_id).where(StaffNotice.office_id == office.id)
        .order_by(StaffNotice.created_at.desc(), StaffNotice.id.desc()).limit(NOTICES_SHOWN)).all()
    return Queue(undecided=list(undecided), calls=list(calls), invitations=list(invitations),
                 attendance=list(attendance), notices=list(notices))
