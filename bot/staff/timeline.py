"""The dashboard's view of days: each scheduled slot as free, held, requested, proposed, confirmed or blocked."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.clock import TOKYO
from bot.models import Booking, SlotBlock, SlotHold
from bot.services.calendar import holiday_name, is_closed, last_business_day_on_or_before
from bot.services.slots import slot_label
from bot.staff.models import BookingHandoff

SHOWN_STATUSES = ("requested", "proposed", "confirmed", "attended", "no_show")
PREPARATION_LOOKAHEAD_DAYS = 14      # the last business day before a session is never further back than this


@dataclass
class SlotView:
    start: datetime
    label: str
    capacity: int
    bookings: list[Booking] = field(default_factory=list)
    held: int = 0
    block_id: int | None = None

    @property
    def state(self) -> str:
        """confirmed | requested | proposed | finished | held | blocked | free (what staff most need to see first).

        A slot whose booking waits for the user's answer to the slot staff proposed is proposed, not requested:
        staff have nothing to do on it but wait, and 確認待ち beside it read as a request still to approve.
        A slot whose every session has its attendance recorded is finished, not confirmed: its bookings say
        出席 or 欠席, and the slot column saying 確定 beside them read as if something were still to do."""
        statuses = {b.status for b in self.bookings}
        if "confirmed" in statuses:
            return "confirmed"
        if "requested" in statuses:
            return "requested"
        if "proposed" in statuses:
            return "proposed"
        if statuses & {"attended", "no_show"}:
            return "finished"
        if self.held:
            return "held"
        if self.block_id is not None:
            return "blocked"
        return "free"

    @property
    def free(self) -> int:
        active = sum(1 for b in self.bookings if b.status in SHOWN_STATUSES)  # a session held still took its seat
        return max(0, self.capacity - active - self.held)


@dataclass
class DayView:
    day: date
    closed: str | None               # calendar reason (weekend, holiday, year_end, office_closure) or None
    holiday: str | None
    day_block_id: int | None
    slots: list[SlotView]
    block_reason: str | None = None


@dataclass
class Unprepared:
    """A confirmed session still to start whose preparation is due (from the office's last business day before
    it, when the staff group's follow-up card comes too) and not recorded: the invitation not marked sent, or the
    phone call telling the date (offices whose rules ask for one) not made."""

    booking: Booking
    invitation: bool                 # the invitation is not marked sent
    call: bool                       # the call telling the date is needed and not made


@dataclass
class Today:
    """What a counsellor between sessions looks for first: the session under way or next, and whose attendance
    is still to be recorded."""

    now: datetime
    current: Booking | None          # a confirmed session under way (started, its length not yet over)
    next: Booking | None             # the next confirmed session to start (any day)
    later_today: int                 # confirmed sessions still to start today, `next` included
    attendance_due: list[Booking]    # confirmed sessions that started today, attendance not recorded yet
    attendance_due_earlier: int = 0  # those of earlier days (the queue lists them, a page at a time)
    undecided_today: list[Booking] = field(default_factory=list)  # requests for today's slots still to decide
    unprepared: list[Unprepared] = field(default_factory=list)     # sessions whose preparation is due, not recorded

    @property
    def minutes_to_next(self) -> int | None:
        if self.next is None:
            return None
        return max(0, int((self.next.slot_start - self.now).total_seconds() // 60))


def today(session: Session, office, now: datetime) -> Today:
    """Today at a glance (see Today)."""
    confirmed = (Booking.office_id == office.id, Booking.status == "confirmed")
    end_of_day = datetime.combine(now.astimezone(TOKYO).date() + timedelta(days=1), time(), tzinfo=TOKYO)
    start_of_day = end_of_day - timedelta(days=1)
    # Today's only: the unrecorded sessions of earlier days add up over a year and are counted, not listed.
    started = session.scalars(select(Booking).where(*confirmed, Booking.slot_start <= now,
                                                    Booking.slot_start >= start_of_day)
                              .order_by(Booking.slot_start, Booking.id)).all()
    earlier = session.scalar(select(func.count()).select_from(Booking).where(
        *confirmed, Booking.slot_start < start_of_day)) or 0
    upcoming = session.scalars(select(Booking).where(*confirmed, Booking.slot_start > now)
                               .order_by(Booking.slot_start, Booking.id).limit(1)).first()
    later = session.scalar(select(func.count()).select_from(Booking).where(
        *confirmed, Booking.slot_start > now, Booking.slot_start < end_of_day)) or 0
    length = timedelta(minutes=office.schedule.duration_minutes)
    current = next((b for b in reversed(started) if b.slot_start + length > now), None)
    undecided = session.scalars(select(Booking).where(
        Booking.office_id == office.id, Booking.status.in_(("requested", "proposed")), Booking.slot_start > now,
        Booking.slot_start < end_of_day).order_by(Booking.slot_start, Booking.id)).all()
    return Today(now=now, current=current, next=upcoming, later_today=later, attendance_due=list(started),
                 attendance_due_earlier=earlier, undecided_today=list(undecided),
                 unprepared=unprepared(session, office, now))


def unprepared(session: Session, office, now: datetime) -> list[Unprepared]:
    """Confirmed sessions still to start whose invitation or call is due by today and not recorded."""
    today_ = now.astimezone(TOKYO).date()
    rows = session.execute(select(Booking, BookingHandoff).outerjoin(
        BookingHandoff, BookingHandoff.booking_id == Booking.id).where(
        Booking.office_id == office.id, Booking.status == "confirmed", Booking.slot_start > now,
        Booking.slot_start < now + timedelta(days=PREPARATION_LOOKAHEAD_DAYS))
        .order_by(Booking.slot_start, Booking.id)).all()
    out: list[Unprepared] = []
    for booking, handed in rows:
        session_day = booking.slot_start.astimezone(TOKYO).date()
        if last_business_day_on_or_before(session_day - timedelta(days=1), office.schedule.closures) > today_:
            continue
        invitation = booking.invitation_sent_at is None
        call = handed is not None and handed.call_needed and handed.called_at is None
        if invitation or call:
            out.append(Unprepared(booking=booking, invitation=invitation, call=bool(call)))
    return out


def days(session: Session, office, now: datetime, first: date, count: int,
         open_reason: Callable[[bytes | None], str | None]) -> list[DayView]:
    """`count` days from `first` that are on the office's schedule (closed ones say why)."""
    last = first + timedelta(days=count)
    lo, hi = datetime.combine(first, time(), tzinfo=TOKYO), datetime.combine(last, time(), tzinfo=TOKYO)
    bookings = session.scalars(select(Booking).where(
        Booking.office_id == office.id, Booking.slot_start >= lo, Booking.slot_start < hi,
        Booking.status.in_(SHOWN_STATUSES)).order_by(Booking.slot_start, Booking.id)).all()
    holds = session.scalars(select(SlotHold).where(
        SlotHold.office_id == office.id, SlotHold.slot_start >= lo, SlotHold.slot_start < hi,
        SlotHold.expires_at > now)).all()
    blocks = session.scalars(select(SlotBlock).where(
        SlotBlock.office_id == office.id, SlotBlock.day >= first.isoformat(),
        SlotBlock.day < last.isoformat())).all()
    schedule = office.schedule
    out: list[DayView] = []
    for offset in range(count):
        d = first + timedelta(days=offset)
        if d.weekday() not in schedule.weekdays:
            continue
        closed = is_closed(d, schedule.closures)
        day_row = next((b for b in blocks if b.day == d.isoformat() and b.slot_start is None), None)
        day_block = day_row.id if day_row is not None else None
        slots: list[SlotView] = []
        if closed is None:
            for t in sorted(schedule.starts):
                start = datetime.combine(d, t, tzinfo=TOKYO)
                slot_block = next((b.id for b in blocks if b.slot_start == start), None)
                slots.append(SlotView(
                    start=start, label=slot_label(start), capacity=schedule.capacity,
                    bookings=[b for b in bookings if b.slot_start == start],
                    held=sum(1 for h in holds if h.slot_start == start),
                    block_id=slot_block if slot_block is not None else day_block,
                ))
        out.append(DayView(day=d, closed=closed, holiday=holiday_name(d) if closed == "holiday" else None,
                           day_block_id=day_block, slots=slots,
                           block_reason=open_reason(day_row.reason) if day_row is not None else None))
    return out
