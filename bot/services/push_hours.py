"""Quiet hours: a push that is not urgent waits for the office's `push_hours` (a LINE push at 02:00 wakes people).

Japanese public-sector practice sends nothing that can wait at night. The office's profile says when pushes may
go (`push_hours`, default 08:00-21:00 Asia/Tokyo). The worker asks as it is about to send each message, so a
message that was queued by day but delayed into the night (the worker was stopped, LINE was down or refused the
quota) waits for the morning too, and is then checked again for staleness (bot/services/staleness.py): a
day-before reminder that would arrive on the session's day is dropped, never sent saying 明日 (the reminder job
makes one saying 本日 instead, while the session is ahead).

What waits: every push to a job seeker (a decision, a reminder, a receipt, an expiry) and every staff-group card,
and the terms notices (`terms broadcast`, refused outside the hours by the command itself). A staff-group card
also waits over the office's closed days (weekends, holidays, its own closures) for the push hours of its next
business day, unless the profile says `staff_cards_on_closed_days: true`: a card pushed on a Saturday reaches
staff on their day off, about a request nobody can decide before the office opens.

What never waits:
- a reply, and a push that carries the rest of an answer to what the person just sent (the row of an event,
  `source_event_id`) while it is still the moment of that exchange (`ANSWER_MOMENT`): they are awake and waiting
  for it. One that LINE held up past that (down, or refusing) is a message delayed into the night like any other;
- an urgent message: one a session depends on (the office cancelled it, or confirmed it) when waiting until the
  hours open would leave less than `push_hours.urgent_notice_hours` before the session starts (the office
  cancels at 22:00 a session of 09:00 the next morning: the person should not set out for it);
- leaving a group (not a message).
"""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.clock import TOKYO
from bot.models import Booking, OutboxMessage
from bot.services.calendar import is_business_day

# The user's templates (a row's purpose) that a session depends on: urgent when the session is near.
URGENT_PURPOSES = frozenset({"outcome_cancelled_by_office", "outcome_cancelled_by_terms", "outcome_confirmed"})
# Outbox kinds that deliver a message to people (a leave_group call is not one).
MESSAGE_KINDS = frozenset({"push", "multicast", "broadcast"})
# How long after what the person sent its answer still goes at any hour: the reply token's life, then a few
# retries of the push it falls back to.
ANSWER_MOMENT = timedelta(minutes=10)


def next_opening(office, now: datetime) -> datetime | None:
    """When pushes may go again: None while `now` is inside the office's push hours, else the next start."""
    hours = office.push_hours
    local = now.astimezone(TOKYO)
    if hours.start <= local.time() < hours.end:
        return None
    day = local.date() if local.time() < hours.start else local.date() + timedelta(days=1)
    return datetime.combine(day, hours.start, tzinfo=TOKYO)


MAX_CLOSED_RUN = 31   # days: the calendar has no longer run of closed days (年末年始 is the longest)


def next_staff_opening(office, now: datetime) -> datetime | None:
    """When the staff group's cards may go again: None inside the push hours of one of the office's business
    days, else the start of the push hours of the next business day (any day with `staff_cards_on_closed_days`)."""
    opening = next_opening(office, now)
    if office.push_hours.staff_cards_on_closed_days:
        return opening
    closures = office.schedule.closures
    day = now.astimezone(TOKYO).date()
    if opening is None and is_business_day(day, closures):
        return None
    day = opening.date() if opening is not None else day + timedelta(days=1)
    for _ in range(MAX_CLOSED_RUN):
        if is_business_day(day, closures):
            break
        day += timedelta(days=1)
    return datetime.combine(day, office.push_hours.start, tzinfo=TOKYO)


def hold_until(session: Session, row: OutboxMessage, now: datetime, offices) -> datetime | None:
    """The time `row` must wait for (the next opening of its office's push hours), or None when it may go now."""
    if row.kind not in MESSAGE_KINDS or (row.source_event_id is not None and now - row.created_at < ANSWER_MOMENT):
        return None
    office = offices.get(row.office_id)
    if office is None:
        return None
    if row.purpose == "staff_card":
        return next_staff_opening(office, now)
    opening = next_opening(office, now)
    if opening is None:
        return None
    if row.purpose in URGENT_PURPOSES and row.booking_reference is not None and row.notice_kind is None:
        start = session.scalar(select(Booking.slot_start).where(Booking.office_id == row.office_id,
                                                                Booking.reference == row.booking_reference))
        return user_opening(office, row.purpose, start, now)
    return opening


def user_opening(office, purpose: str, slot_start: datetime | None, now: datetime) -> datetime | None:
    """When a push to a user about the session at `slot_start`, queued now, will go: None when at once (inside the
    push hours, or urgent), else the next opening. A message is worded for then (bot/notify.py): one confirmed at
    21:30 is read at 08:00, on the session's day perhaps, when nothing can come "by the day before" any more."""
    opening = next_opening(office, now)
    if opening is None or (purpose in URGENT_PURPOSES and slot_start is not None and slot_start - opening
                           < timedelta(hours=office.push_hours.urgent_notice_hours)):
        return None
    return opening
