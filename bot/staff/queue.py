"""The dashboard's to-do lists: what staff still have to decide, phone, send or record for an office, and its notices."""
from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.models import Booking, StaffNotice
from bot.services import lifecycle
from bot.staff.models import BookingHandoff

NOTICES_SHOWN = 50  # the newest notices of the office (migration 0022's index serves exactly this query)
# Sessions whose attendance is still to record, a page at a time, oldest first: unrecorded ones add up over a
# year, and a list of hundreds is not one anybody works through (the total is said above it).
ATTENDANCE_SHOWN = 30


@dataclass(frozen=True)
class Queue:
    undecided: list[Booking]    # requests staff still have to decide (確認待ち)
    proposals: list[Booking]    # another slot proposed: the user's answer is awaited, not staff's
    calls: list[Booking]
    invitations: list[Booking]
    attendance: list[Booking]   # one page of `attendance_total`, oldest first
    notices: list  # rows of (StaffNotice, booking reference, booking status), newest first
    attendance_total: int = 0
    attendance_from: int = 0    # where the page of `attendance` starts in the whole list


def undecided_soonest(session: Session, office_id: str) -> tuple[int, datetime | None]:
    """How many requests of the office wait for staff's decision, and the earliest slot among them (whose
    deadline comes first): the day view points to the queue with both. A proposal waits for the user, not staff."""
    count, soonest = session.execute(select(func.count(), func.min(Booking.slot_start)).where(
        Booking.office_id == office_id, Booking.status == lifecycle.REQUESTED)).one()
    return count or 0, soonest


def undecided_count(session: Session, office_id: str) -> int:
    """How many of the office's requests wait for staff's decision (対応待ち's 確認待ちの申込, proposals not)."""
    return session.scalar(select(func.count()).select_from(Booking).where(
        Booking.office_id == office_id, Booking.status == lifecycle.REQUESTED)) or 0


def notices_since(session: Session, office_id: str, since: datetime, leaving_out: Collection[str] = ()) -> int:
    """How many notices the office's staff were given from `since` on, not counting the kinds `leaving_out`."""
    query = select(func.count()).select_from(StaffNotice).where(
        StaffNotice.office_id == office_id, StaffNotice.created_at >= since)
    if leaving_out:
        query = query.where(StaffNotice.kind.not_in(sorted(leaving_out)))
    return session.scalar(query) or 0


def load(session: Session, office, now: datetime, attendance_from: int = 0) -> Queue:
    """The office's queue at `now`, each list in slot order (of the attendance to record, one page from
    `attendance_from`); no writes."""
    undecided = session.scalars(select(Booking).where(
        Booking.office_id == office.id, Booking.status.in_(lifecycle.UNDECIDED_STATUSES)
    ).order_by(Booking.slot_start)).all()
    # To phone the date is a task before the session only, as the invitation is: once it has begun, a call
    # "to tell the date" is moot and its attendance is what is left to do.
    calls = session.scalars(select(Booking).join(BookingHandoff, BookingHandoff.booking_id == Booking.id).where(
        Booking.office_id == office.id, Booking.status == "confirmed", BookingHandoff.call_needed.is_(True),
        BookingHandoff.called_at.is_(None), Booking.slot_start > now).order_by(Booking.slot_start)).all()
    invitations = session.scalars(select(Booking).where(
        Booking.office_id == office.id, Booking.status == "confirmed", Booking.invitation_sent_at.is_(None),
        Booking.slot_start > now).order_by(Booking.slot_start)).all()
    # From the start, as the 予定表 counts them: 出席 is recorded from then (欠席 after the grace period).
    due = (Booking.office_id == office.id, Booking.status == "confirmed", Booking.slot_start <= now)
    total = session.scalar(select(func.count()).select_from(Booking).where(*due)) or 0
    # A page past the end (its sessions were recorded meanwhile): the last page.
    attendance_from = max(0, min(attendance_from, (total - 1) // ATTENDANCE_SHOWN * ATTENDANCE_SHOWN))
    attendance = session.scalars(select(Booking).where(*due).order_by(Booking.slot_start, Booking.id)
                                 .offset(attendance_from).limit(ATTENDANCE_SHOWN)).all()
    notices = session.execute(select(StaffNotice, Booking.reference, Booking.status).join(
        Booking, Booking.id == StaffNotice.booking_id).where(StaffNotice.office_id == office.id)
        .order_by(StaffNotice.created_at.desc(), StaffNotice.id.desc()).limit(NOTICES_SHOWN)).all()
    return Queue(undecided=[b for b in undecided if b.status == lifecycle.REQUESTED],
                 proposals=[b for b in undecided if b.status == lifecycle.PROPOSED], calls=list(calls), invitations=list(invitations),
                 attendance=list(attendance), notices=list(notices), attendance_total=total,
                 attendance_from=attendance_from)
