"""When a queued message about a booking has gone stale: the worker drops it instead of sending it late.

Messages wait in the outbox while LINE cannot take them (the monthly quota, a refused access token, a long
run of 5xx). A message about a booking reports one state of it (`OutboxMessage.booking_status`, recorded
when it was queued); once the booking has moved on, the message would now mislead:

- **The booking moved on** (its status changed, or it is no longer kept). Whatever moved it told the user
  and staff already: a later message queued behind this one (per-chat order is kept, so it follows),
  or the chat's own answer to what the user did there. A 予約が確定しました after the user cancelled, a staff
  card asking to decide a request already decided, an offered slot staff took back: dropped.
- **Its moment passed.** A day-before reminder is stale once the session's day has begun (it says 明日; the
  reminder made on the session's day, `reminder_same_day`, says 本日 and is stale once the session begins: the
  reminder jobs make one when the day-before one was dropped, bot/staff/jobs.py);
  a confirmation, a proposed slot, and the staff cards that ask for something before the session (an
  undecided request, an invitation not recorded) are stale once the session has begun. The invitation
  card is also done with once staff record the invitation sent.

Nothing else is dropped: while its booking stays as it said, a decline, a cancellation, an expiry, a receipt
and the staff notices of withdrawals, cancellations and expiries go however late, as they still tell something
the user or staff did not know; a message about no booking (chat answers, notices) is never dropped. A dropped message is shown to staff (LINE送信状況)
with its reason, so they can phone the person when it mattered.

Apart from staleness, a push to a group the bot was removed from (LINE's leave event) and not invited back into is
dropped too (`GROUP_LEFT`): LINE would refuse it. The leave drops what was queued to the group then
(bot/dispatch.py); this catches a message queued by a transaction that read the group as joined.
"""
from __future__ import annotations

from datetime import datetime, time

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.clock import TOKYO
from bot.models import Booking, OutboxMessage
from bot.staff import groups as staff_groups

# Reasons, recorded in `last_error` after `outbox.STALE_PREFIX` (the dashboard names each:
# templates/staff/labels.yaml).
BOOKING_GONE = "booking_gone"
STATUS_CHANGED = "status_changed"
SESSION_STARTED = "session_started"
SESSION_DAY_BEGAN = "session_day_began"
INVITATION_SENT = "invitation_sent"
QUOTA_RESERVED = "quota_reserved"   # not staleness: a staff card dropped to keep the quota (bot/quota.py)
GROUP_LEFT = "group_left"           # not staleness: the bot is out of the group it was queued to
REASONS = (BOOKING_GONE, STATUS_CHANGED, SESSION_STARTED, SESSION_DAY_BEGAN, INVITATION_SENT, QUOTA_RESERVED,
           GROUP_LEFT)

# What a message is: the user's template (its purpose), or a staff card's notice kind.
USER_UNTIL_DAY_BEGINS = frozenset({"reminder_day_before"})
USER_UNTIL_SESSION_STARTS = frozenset({"outcome_confirmed", "outcome_proposed", "reminder_same_day"})
CARDS_UNTIL_SESSION_STARTS = frozenset({"undecided", "invitation"})


def why_stale(session: Session, row: OutboxMessage, now: datetime) -> str | None:
    """The reason `row` must not be sent any more (one of REASONS), or None when it may still go."""
    if row.recipient and row.recipient.startswith(GROUP_PREFIXES) and _left(session, row):
        return GROUP_LEFT
    if row.booking_reference is None:
        return None  # about no booking (or queued before bookings were recorded): never stale
    booking = session.scalar(select(Booking).where(Booking.reference == row.booking_reference,
                                                   Booking.office_id == row.office_id))
    if booking is None:
        return BOOKING_GONE
    if row.booking_status is not None and booking.status != row.booking_status:
        return STATUS_CHANGED
    card = row.notice_kind if row.purpose == "staff_card" else None
    if card is None and row.purpose in USER_UNTIL_DAY_BEGINS and now >= _day_of(booking.slot_start):
        return SESSION_DAY_BEGAN
    if (card in CARDS_UNTIL_SESSION_STARTS or (card is None and row.purpose in USER_UNTIL_SESSION_STARTS)) \
            and now >= booking.slot_start:
        return SESSION_STARTED
    if card == "invitation" and booking.invitation_sent_at is not None:
        return INVITATION_SENT
    return None


GROUP_PREFIXES = ("C", "R")   # LINE's group and room ids


def _left(session: Session, row: OutboxMessage) -> bool:
    """The bot was removed from the group or room `row` goes to and not invited back."""
    return staff_groups.out_of(session, row.office_id, row.recipient)


def _day_of(moment: datetime) -> datetime:
    """Midnight (Asia/Tokyo) of the day `moment` falls on."""
    return datetime.combine(moment.astimezone(TOKYO).date(), time(0), tzinfo=TOKYO)

