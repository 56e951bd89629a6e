"""A request's life as its own `transitions` state machine, with exactly the statuses of interface.md.

    requested -> confirmed | declined | expired | withdrawn | proposed
    proposed  -> confirmed | declined | expired
    confirmed -> attended | no_show | cancelled | cancelled_by_office
    attended <-> no_show  (a recorded attendance corrected on the dashboard, with a reason)
    no_show   -> cancelled  (corrected likewise: the person had called or written in time, or the office accepted
                             why they could not; the terms' no-show is an absence 「連絡がないまま」)

The machine is built once (model=None) and fired on a small wrapper around one Booking row, so the
row's `status` column is the state. Entering a terminal status gives the seat back (the SlotClaim row
goes) and stamps `closed_at`, once: the clock of the closed-request purge, which later touches of the row
(a staff note, an attendance corrected from one closed status to the other) do not move; confirming or
declining stamps `decided_at`; every change stamps `updated_at`.
Nothing here commits, notifies or talks to LINE: callers record the staff handoff and tell the user.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.orm import Session
from transitions import EventData, Machine

from bot.models import Booking, SlotClaim

REQUESTED, PROPOSED, CONFIRMED = "requested", "proposed", "confirmed"
DECLINED, EXPIRED, WITHDRAWN = "declined", "expired", "withdrawn"
ATTENDED, NO_SHOW, CANCELLED, CANCELLED_BY_OFFICE = "attended", "no_show", "cancelled", "cancelled_by_office"

STATUSES: tuple[str, ...] = (REQUESTED, PROPOSED, CONFIRMED, DECLINED, EXPIRED, WITHDRAWN,
                             ATTENDED, NO_SHOW, CANCELLED, CANCELLED_BY_OFFICE)
OPEN_STATUSES: tuple[str, ...] = (REQUESTED, PROPOSED, CONFIRMED)
UNDECIDED_STATUSES: tuple[str, ...] = (REQUESTED, PROPOSED)
TERMINAL_STATUSES: frozenset[str] = frozenset(STATUSES) - frozenset(OPEN_STATUSES)
ATTENDANCE_STATUSES: tuple[str, ...] = (ATTENDED, NO_SHOW)

TRANSITIONS: list[dict] = [
    dict(trigger="confirm", source=[REQUESTED, PROPOSED], dest=CONFIRMED),
    dict(trigger="decline", source=[REQUESTED, PROPOSED], dest=DECLINED),
    dict(trigger="expire", source=[REQUESTED, PROPOSED], dest=EXPIRED),
    dict(trigger="withdraw", source=REQUESTED, dest=WITHDRAWN),
    dict(trigger="propose", source=REQUESTED, dest=PROPOSED),
    dict(trigger="attend", source=CONFIRMED, dest=ATTENDED),
    dict(trigger="mark_no_show", source=CONFIRMED, dest=NO_SHOW),
    dict(trigger="cancel", source=CONFIRMED, dest=CANCELLED),
    dict(trigger="cancel_by_office", source=CONFIRMED, dest=CANCELLED_BY_OFFICE),
    # A wrong tap of 出席 / 欠席 put right (bot.staff.decisions.correct_attendance checks when and why).
    dict(trigger="correct_to_attended", source=NO_SHOW, dest=ATTENDED),
    dict(trigger="correct_to_no_show", source=ATTENDED, dest=NO_SHOW),
    # A 欠席（連絡なし） that was not one: the cancellation reached the office (a call taken by another member, an
    # e-mail read after the start) or the office accepts why the person could not tell it in time.
    dict(trigger="correct_to_cancelled", source=NO_SHOW, dest=CANCELLED),
]
# What a recorded attendance may be corrected to, by the record (bot.staff.decisions.correct_attendance).
CORRECTIONS: dict[str, tuple[str, ...]] = {ATTENDED: (NO_SHOW,), NO_SHOW: (ATTENDED, CANCELLED)}
CORRECTED_TO: frozenset[str] = frozenset(to for targets in CORRECTIONS.values() for to in targets)


class BookingFlow:
    """The machine's model: one Booking row during one change (its status is the state)."""

    __slots__ = ("booking", "session", "now")

    def __init__(self, session: Session, booking: Booking, now: datetime):
        self.session = session
        self.booking = booking
        self.now = now

    @property
    def state(self) -> str:
        return self.booking.status

    @state.setter
    def state(self, value: str) -> None:
        self.booking.status = value


def _stamp(e: EventData) -> None:
    """Every change: when it happened; a staff decision: when it was decided; closing: when it closed."""
    flow: BookingFlow = e.model
    flow.booking.updated_at = flow.now
    if e.event.name in ("confirm", "decline"):
        flow.booking.decided_at = flow.now
    if flow.booking.status in TERMINAL_STATUSES and flow.booking.closed_at is None:
        flow.booking.closed_at = flow.now


def _free_seat_when_closed(e: EventData) -> None:
    """A closed request or booking no longer takes a seat of its slot."""
    flow: BookingFlow = e.model
    if flow.booking.status in TERMINAL_STATUSES:
        free_seat(flow.session, flow.booking)


MACHINE = Machine(
    model=None,
    states=list(STATUSES),
    initial=REQUESTED,
    transitions=TRANSITIONS,
    auto_transitions=False,
    send_event=True,
    ignore_invalid_triggers=True,
    after_state_change=[_stamp, _free_seat_when_closed],
)
TRIGGERS = frozenset(MACHINE.events)


def free_seat(session: Session, booking: Booking) -> None:
    """Give back the seat a request or booking holds (no-op when it holds none)."""
    session.execute(delete(SlotClaim).where(SlotClaim.booking_id == booking.id))


def can(booking: Booking, trigger: str) -> bool:
    """May `trigger` fire from the booking's current status?"""
    event = MACHINE.events.get(trigger)
    return event is not None and booking.status in event.transitions


def fire(session: Session, booking: Booking, trigger: str, now: datetime) -> bool:
    """Apply one lifecycle step to the row; False (nothing changed) when it does not apply."""
    if trigger not in TRIGGERS:
        raise ValueError(f"unknown booking trigger {trigger!r}")
    if not can(booking, trigger):
        return False
    return bool(MACHINE.events[trigger].trigger(BookingFlow(session, booking, now)))
