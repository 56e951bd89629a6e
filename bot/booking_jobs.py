"""Worker jobs of requests: the receipt of a user who did not come back, requests whose slot began, used links.

- A request completed on the form is confirmed in chat by a free reply when the user next writes. If they
  have not written within RECEIPT_PUSH_AFTER, one push carries the receipt (and `receipt_pending` goes
  False, so it is never shown twice). The conversation row is locked first, as an incoming event does,
  so the push and a reply cannot both show it. Outside the office's push hours the receipt is not pushed:
  it waits for the morning, when the user who writes first still gets it free as a reply.
- A request still undecided (requested or proposed) when its slot begins expires: the lifecycle frees
  its seat, staff are told, and the user gets one push.
- Used form links are forgotten after a day.

Each job is idempotent (it acts on rows still in the state it looks for) and takes its own transaction.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot import notify
from bot.models import Booking, Conversation
from bot.services import bookings, lifecycle, push_hours, requests

log = logging.getLogger(__name__)

RECEIPT_PUSH_AFTER = timedelta(minutes=3)
BATCH = 200


def run_due(rt) -> dict[str, int]:
    now = rt.clock.now()
    figures: dict[str, int] = {}
    with rt.db.transaction() as s:
        figures["requests_expired"] = expire_undecided(s, rt, now)
    with rt.db.transaction() as s:
        figures["receipts_pushed"] = push_receipts(s, rt, now)
    with rt.db.transaction() as s:
        figures["form_links_purged"] = requests.purge_submissions(s, now)
    return figures


def _postgres(session: Session) -> bool:
    return session.bind.dialect.name == "postgresql"


def expire_undecided(session: Session, rt, now: datetime) -> int:
    """Requests nobody decided before their slot began: expired, seat freed, staff and user told."""
    query = select(Booking).where(Booking.status.in_(lifecycle.UNDECIDED_STATUSES), Booking.slot_start <= now) \
        .order_by(Booking.slot_start, Booking.id).limit(BATCH)
    if _postgres(session):
        query = query.with_for_update(skip_locked=True)
    expired = 0
    for booking in session.scalars(query).all():
        office = rt.offices.get(booking.office_id)
        if office is None or not lifecycle.fire(session, booking, "expire", now):
            continue
        booking.receipt_pending = False
        rt.notify_staff(session, office, "expired", booking.id, now)
        notify.tell_user(session, rt, office, booking, "request_expired", now)
        log.info("request expired office=%s booking=%s", office.id, booking.id)
        expired += 1
    return expired


def push_receipts(session: Session, rt, now: datetime) -> int:
    """One push with the receipt for each request whose user has not come back to the chat."""
    due = session.execute(select(Booking.id, Booking.office_id, Booking.conversation_id).where(
        Booking.receipt_pending.is_(True), Booking.created_at <= now - RECEIPT_PUSH_AFTER,
    ).order_by(Booking.id).limit(BATCH)).all()
    pushed = 0
    for booking_id, office_id, conversation_id in due:
        office = rt.offices.get(office_id)
        if office is not None and push_hours.next_opening(office, now) is not None:
            continue  # night: the receipt can wait for the push hours, or the user's next message
        conv = _locked_conversation(session, conversation_id) if conversation_id is not None else None
        if office is None or conv is None:
            continue  # the user is mid-event (their reply will show it), or there is nobody to tell
        booking = session.scalar(select(Booking).where(Booking.id == booking_id)
                                 .execution_options(populate_existing=True))
        if booking is None or not booking.receipt_pending:
            continue  # shown as a reply meanwhile
        receipt = bookings.take_receipt_of(office, booking, now)
        if receipt is not None and notify.tell_user(session, rt, office, booking, "receipt", now,
                                                    receipt=receipt) is not None:
            log.info("receipt pushed office=%s booking=%s", office.id, booking.id)
            pushed += 1
    return pushed


def _locked_conversation(session: Session, conversation_id: int) -> Conversation | None:
    query = select(Conversation).where(Conversation.id == conversation_id)
    if _postgres(session):
        query = query.with_for_update(skip_locked=True).execution_options(populate_existing=True)
    return session.scalar(query)
