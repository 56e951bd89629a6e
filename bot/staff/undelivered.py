"""What LINE has not taken: the outbox rows staff see on LINE送信状況 and on a booking's page, to phone instead."""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from bot.models import Booking, OutboxMessage

UNDELIVERED = ("failed", "held", "unknown", "stale")  # outbox states a message to the user may be stuck in
# A message not yet tried this long after it was due waits behind another (the chat's order is kept: one held
# for the quota or the token holds the messages queued after it): listed, so that staff see those too.
OUTBOX_OVERDUE = timedelta(minutes=5)
LISTED = 200  # the newest rows of the office's list
PUSH_HOURS = "push_hours"   # the state of a message waiting for the office's push hours (`state`)


def not_delivered(now: datetime):
    """Messages LINE has not taken (yet): given up, held, of unknown fate, dropped, waiting for a retry after a
    refused try (LINE down), waiting for the push hours (its due time moved to when they open:
    bot/outbox.py, `_wait_for`), or overdue behind another. LINE送信状況 lists them; a booking page, its user's."""
    return or_(OutboxMessage.status.in_(UNDELIVERED),
               and_(OutboxMessage.status == "pending",
                    or_(OutboxMessage.attempts > 0, OutboxMessage.due_at > now,
                        OutboxMessage.next_attempt_at < now - OUTBOX_OVERDUE)))


def state(row: OutboxMessage, now: datetime) -> str:
    """Where a listed message is, as staff read it (templates/staff/labels.yaml, `outbox.states`): held for the
    token, waiting for the push hours (until its due time), waiting behind an earlier message, or its status."""
    if row.status == "held" and row.last_error == "http 401":
        return "held_token"
    if row.status == "pending" and row.due_at > now:
        return PUSH_HOURS
    if row.status == "pending" and not row.attempts:
        return "waiting"
    return row.status


def of_booking(session: Session, recipient: str, reference: str, now: datetime) -> list[OutboxMessage]:
    """The booking's messages to its user that LINE has not taken, oldest first."""
    return list(session.scalars(select(OutboxMessage).where(
        OutboxMessage.recipient == recipient, OutboxMessage.booking_reference == reference,
        not_delivered(now)).order_by(OutboxMessage.id)))


def of_office(session: Session, office_id: str, now: datetime) -> tuple[list[OutboxMessage], dict[str, Booking]]:
    """The office's newest messages LINE has not taken, and the bookings they are about (by reference)."""
    rows = list(session.scalars(select(OutboxMessage).where(
        OutboxMessage.office_id == office_id, not_delivered(now),
    ).order_by(OutboxMessage.id.desc()).limit(LISTED)))
    references = {r.booking_reference for r in rows if r.booking_reference}
    bookings = {b.reference: b for b in session.scalars(select(Booking).where(
        Booking.office_id == office_id, Booking.reference.in_(references)))} if references else {}
    return rows, bookings
