"""Session slots: which times an office offers, and which of them a job seeker may still request.

Pure rules over an office profile and the clock: no database, no LINE. The caller counts what is taken
(active requests, bookings and live holds per slot start) and what staff blocked, and passes them in.
All datetimes are timezone-aware; results are in Asia/Tokyo.

Rules:
- A slot is a schedule start on one of the schedule's weekdays, on a day the office is open.
- Booking closes at the notice deadline (`booking_deadline`).
- The booking window runs from today up to and including the day `window_weeks` weeks later
  (Monday 12/7 with 8 weeks: up to Monday 2/1, i.e. eight Mondays after today).
- A week's free slots are shown in pages of at most PAGE_SLOTS, each page whole days (a day with more
  slots than that alone, split evenly).
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from typing import Literal

from bot.clock import TOKYO
from bot.offices import Office
from bot.services.calendar import holiday_name, is_closed, last_business_day_on_or_before

# Slots on one page of a week: LINE shows at most 13 quick-reply buttons, and two are kept for the
# previous and next page.
PAGE_SLOTS = 11

# The weekday mark W inside the fixed slot format `M/D(W) HH:MM`; Monday first, as date.weekday().
WEEKDAY_KANJI: tuple[str, ...] = ("月", "火", "水", "木", "金", "土", "日")

UnavailableReason = Literal["past", "notice_passed", "outside_window", "closed", "not_a_slot", "full", "blocked"]
EmptyWeekReason = Literal["year_end", "holiday", "notice_passed", "full", "blocked", "outside_window"]

# A week without slots is explained by the reason behind most of its slot times that are still open for
# booking (so "Friday is full" beats "Monday has passed"); these break ties, most telling first.
_EMPTY_WEEK_ORDER: tuple[EmptyWeekReason, ...] = (
    "year_end", "holiday", "blocked", "full", "notice_passed", "outside_window",
)
# `_Walk.assess` reasons as the chat explains an empty week.
_AS_EMPTY_WEEK_REASON: dict[str, EmptyWeekReason] = {
    "past": "notice_passed",
    "notice_passed": "notice_passed",
    "outside_window": "outside_window",
    "year_end": "year_end",
    "holiday": "holiday",
    "weekend": "holiday",
    "office_closure": "blocked",
    "blocked": "blocked",
    "full": "full",
}
_LATE = frozenset({"past", "notice_passed", "outside_window"})


@dataclass(frozen=True, slots=True)
class Slot:
    start: datetime
    end: datetime
    capacity: int
    taken: int

    @property
    def free(self) -> int:
        return max(0, self.capacity - self.taken)

    @property
    def label(self) -> str:
        return slot_label(self.start)


@dataclass(frozen=True)
class SlotPage:
    """One page of a week's free slots: whole days, or one part of a day with more than a page holds.

    `part` and `parts` number the parts of a day split over several pages (1 and 1 otherwise).
    """
    slots: list[Slot]
    part: int = 1
    parts: int = 1

    @property
    def days(self) -> list[date]:
        return sorted({s.start.date() for s in self.slots})


def split_into_pages(slots: Sequence[Slot], per_page: int = PAGE_SLOTS) -> list[SlotPage]:
    """The slots (earliest first) in pages of at most `per_page`: as many whole days as fit on each page;
    a day with more slots than a page holds gets pages of its own, its slots shared out evenly. No slots:
    one empty page."""
    if per_page < 1:
        raise ValueError("per_page must be 1 or more")
    by_day: dict[date, list[Slot]] = {}
    for s in slots:
        by_day.setdefault(s.start.date(), []).append(s)
    pages: list[SlotPage] = []
    filling: list[Slot] = []
    for day_slots in by_day.values():
        if filling and len(filling) + len(day_slots) > per_page:
            pages.append(SlotPage(filling))
            filling = []
        if len(day_slots) <= per_page:
            filling = filling + day_slots
            continue
        parts = -(-len(day_slots) // per_page)
        size, larger = divmod(len(day_slots), parts)
        first = 0
        for part in range(parts):
            last = first + size + (1 if part < larger else 0)
            pages.append(SlotPage(day_slots[first:last], part=part + 1, parts=parts))
            first = last
    if filling or not pages:
        pages.append(SlotPage(filling))
    return pages


@dataclass(frozen=True)
class WeekView:
    """One calendar week (Monday to Sunday) of an office's bookable slots.

    `closed_days` lists the schedule's weekdays in this week on which there are no sessions:
    (date, reason, holiday name or None); reason is a calendar reason ("year_end", "holiday", "weekend",
    "office_closure") or "blocked" (a day staff blocked). `deadline_passed` lists the open days from tomorrow
    to the week's end (in week 0, before its start too) whose booking deadline has passed, each with that
    deadline: why they are missing. `closed_before`, in week 0 only, lists as `closed_days` does the closed
    schedule days from today to the day before the week's start: the weeks skipped to reach the first open
    day (Sakata from 12/29: 1/11 成人の日 between the passed 1/4 and the first week shown, 1/18's; today
    counted, so that Otaru on 12/30 says 12/30〜1/1, not a closure that seems to begin tomorrow).
    `reason_if_empty` is None when there are slots.
    """
    week_start: date
    slots: list[Slot]
    closed_days: list[tuple[date, str, str | None]] = field(default_factory=list)
    deadline_passed: list[tuple[date, datetime]] = field(default_factory=list)
    closed_before: list[tuple[date, str, str | None]] = field(default_factory=list)
    has_prev: bool = False
    has_next: bool = False
    reason_if_empty: EmptyWeekReason | None = None

    def pages(self, per_page: int = PAGE_SLOTS) -> list[SlotPage]:
        """The week's free slots as the chat shows them, page by page (see `split_into_pages`)."""
        return split_into_pages(self.slots, per_page)


def slot_label(start: datetime) -> str:
    """The fixed format `M/D(W) HH:MM` in Asia/Tokyo, W from WEEKDAY_KANJI (Monday 12/7 14:00: W = Monday's)."""
    local = start.astimezone(TOKYO)
    return f"{local.month}/{local.day}({WEEKDAY_KANJI[local.weekday()]}) {local:%H:%M}"


# --- deadlines and the window --------------------------------------------------------------------------

@lru_cache(maxsize=4096)
def _deadline_day(session_day: date, calendar_days: int, closures: tuple[date, ...]) -> date:
    return last_business_day_on_or_before(session_day - timedelta(days=calendar_days), closures)


@lru_cache(maxsize=4096)
def _business_days_back(session_day: date, business_days: int, closures: tuple[date, ...]) -> date:
    """The business day `business_days` business days before `session_day` (the session day not counted)."""
    day = session_day
    for _ in range(business_days):
        day = last_business_day_on_or_before(day - timedelta(days=1), closures)
    return day


def booking_deadline(office: Office, slot_start: datetime) -> datetime:
    """The last moment a request for the slot starting at `slot_start` is accepted.

    "business_day_before": `notice.deadline` o'clock on the last business day on or before the session date
    minus `calendar_days` (Sakata, 3: Friday for a Monday, Thursday when Friday is a holiday; Otaru, 1: the
    previous business day).

    "business_days_before": `notice.deadline` o'clock `business_days` business days before the session date
    (two business days before, 2: Thursday for a Monday).
    """
    notice = office.booking.notice
    session_day, closures = _aware(slot_start).date(), tuple(office.schedule.closures)
    if notice.kind == "business_day_before":
        day = _deadline_day(session_day, notice.calendar_days, closures)
    elif notice.kind == "business_days_before":
        day = _business_days_back(session_day, notice.business_days, closures)
    else:
        raise ValueError(f"office {office.id}: unknown notice rule kind {notice.kind!r}")
    return datetime.combine(day, notice.deadline, tzinfo=TOKYO)


def deadline_passed(office: Office, slot_start: datetime, now: datetime) -> bool:
    """Has the slot's booking deadline passed (no request can be made for it; staff deciding now decide late)?"""
    return booking_deadline(office, slot_start) <= now


def _window_end(office: Office, today: date) -> date:
    """The last day of the booking window (inclusive)."""
    return today + timedelta(weeks=office.booking.window_weeks)


def _monday(d: date) -> date:
    return d - timedelta(days=d.weekday())


# --- walking the schedule ------------------------------------------------------------------------------

def _scheduled_days(office: Office, frm: date, to: date) -> Iterator[date]:
    """Dates in [frm, to] on the schedule's weekdays, open or not."""
    weekdays = frozenset(office.schedule.weekdays)
    d = frm
    while d <= to:
        if d.weekday() in weekdays:
            yield d
        d += timedelta(days=1)


def candidate_starts(office: Office, frm: date, to: date) -> list[datetime]:
    """Every session start in [frm, to] (both inclusive) on a day the office is open, earliest first."""
    closures, starts = office.schedule.closures, sorted(office.schedule.starts)
    return [
        datetime.combine(d, t, tzinfo=TOKYO)
        for d in _scheduled_days(office, frm, to)
        if is_closed(d, closures) is None
        for t in starts
    ]


@dataclass(frozen=True, slots=True)
class _Walk:
    """One availability question: an office at a moment, with what is taken and blocked."""
    office: Office
    now: datetime
    taken: Mapping[datetime, int]
    blocked: Collection[datetime]
    blocked_days: Collection[date]

    @property
    def window_end(self) -> date:
        return _window_end(self.office, self.now.date())

    def assess(self, frm: date, to: date) -> Iterator[tuple[datetime, str | None, int]]:
        """(start, reason, taken) for every scheduled start in [frm, to], earliest first.

        reason is None for a bookable slot, else the first that applies of: the time reasons "past",
        "notice_passed", "outside_window"; a calendar reason (`calendar.ClosureReason`); "blocked"; "full".
        """
        schedule = self.office.schedule
        starts = sorted(schedule.starts)
        window_end = self.window_end
        now = self.now
        for d in _scheduled_days(self.office, frm, to):
            closure = is_closed(d, schedule.closures)
            day_reason: str | None
            if d > window_end:
                day_reason = "outside_window"
            elif booking_deadline(self.office, datetime.combine(d, time(), tzinfo=TOKYO)) <= now:
                day_reason = "notice_passed"
            else:
                day_reason = None
            day_blocked = d in self.blocked_days
            for t in starts:
                start = datetime.combine(d, t, tzinfo=TOKYO)
                n_taken = self.taken.get(start, 0)
                if start <= now:
                    yield start, "past", n_taken
                elif day_reason is not None or closure is not None:
                    yield start, day_reason or closure, n_taken
                elif day_blocked or start in self.blocked:
                    yield start, "blocked", n_taken
                elif n_taken >= schedule.capacity:
                    yield start, "full", n_taken
                else:
                    yield start, None, n_taken

    def slot(self, start: datetime, n_taken: int) -> Slot:
        schedule = self.office.schedule
        end = start + timedelta(minutes=schedule.duration_minutes)
        return Slot(start=start, end=end, capacity=schedule.capacity, taken=n_taken)

    def first_open_day(self) -> date | None:
        """The first day in the window with a slot still open for booking, whatever is taken or blocked."""
        today, window_end = self.now.date(), self.window_end
        last_start = max(self.office.schedule.starts, default=None)
        if last_start is None:
            return None
        for d in _scheduled_days(self.office, today, window_end):
            if is_closed(d, self.office.schedule.closures) is not None:
                continue
            start = datetime.combine(d, last_start, tzinfo=TOKYO)
            if start > self.now and booking_deadline(self.office, start) > self.now:
                return d
        return None

    def deadline_passed(self, frm: date, to: date) -> list[tuple[date, datetime]]:
        """The open days in [frm, to] within the window whose booking deadline has passed, with that deadline."""
        passed = []
        for d in _scheduled_days(self.office, frm, min(to, self.window_end)):
            if is_closed(d, self.office.schedule.closures) is None and d not in self.blocked_days:
                deadline = booking_deadline(self.office, datetime.combine(d, time(), tzinfo=TOKYO))
                if deadline <= self.now:
                    passed.append((d, deadline))
        return passed

    def week_start(self, week_index: int) -> date:
        """Week 0 is the week of the first day still open for booking (see `week_view`)."""
        if week_index < 0:
            raise ValueError("week_index must be 0 or more")
        anchor = self.first_open_day() or self.now.date()
        return _monday(anchor) + timedelta(weeks=week_index)


def _walk(
    office: Office,
    now: datetime,
    taken: Mapping[datetime, int],
    blocked: Collection[datetime] | None,
    blocked_days: Collection[date] | None,
) -> _Walk:
    return _Walk(office, _aware(now), taken, blocked or frozenset(), blocked_days or frozenset())


# --- the public questions ------------------------------------------------------------------------------

def available_slots(
    office: Office,
    now: datetime,
    taken: Mapping[datetime, int],
    blocked: Collection[datetime] | None = None,
    blocked_days: Collection[date] | None = None,
    *,
    start_week_offset: int = 0,
    limit: int | None = None,
) -> list[Slot]:
    """Slots a user may request now, earliest first.

    Free, before their booking deadline, within the booking window, not blocked. `taken` maps a slot start
    to the requests, bookings and live holds on it. `start_week_offset` skips whole weeks, numbered as in
    `week_view`; `limit` stops after that many slots.
    """
    walk = _walk(office, now, taken, blocked, blocked_days)
    frm = max(walk.now.date(), walk.week_start(start_week_offset))
    found: list[Slot] = []
    for start, reason, n_taken in walk.assess(frm, walk.window_end):
        if reason is None:
            found.append(walk.slot(start, n_taken))
            if limit is not None and len(found) >= limit:
                break
    return found


def week_view(
    office: Office,
    now: datetime,
    week_index: int,
    taken: Mapping[datetime, int],
    blocked: Collection[datetime] | None = None,
    blocked_days: Collection[date] | None = None,
) -> WeekView:
    """The bookable slots of one week, with the closed days and why the week is empty if it is.

    Week 0 is the week of the first slot still open for booking (its deadline ahead, on an open day in
    the window) regardless of what is taken or blocked: what a user expects to see first (after Friday's
    deadline, Sakata opens on next week, not on a week of passed slots), and the numbering stays put while
    other users book, so "next" and "back" keep their meaning. Weeks run Monday to Sunday; with no open
    slot in the window at all, week 0 is the current week.
    """
    walk = _walk(office, now, taken, blocked, blocked_days)
    week_start = walk.week_start(week_index)
    week_end = week_start + timedelta(days=6)
    tomorrow = walk.now.date() + timedelta(days=1)
    slots: list[Slot] = []
    open_reasons: Counter[EmptyWeekReason] = Counter()  # why slot times still open for booking are unavailable
    late_reasons: Counter[EmptyWeekReason] = Counter()  # passed or beyond the window
    for start, reason, n_taken in walk.assess(week_start, week_end):
        if reason is None:
            slots.append(walk.slot(start, n_taken))
        else:
            tally = late_reasons if reason in _LATE else open_reasons
            tally[_AS_EMPTY_WEEK_REASON[reason]] += 1
    return WeekView(
        week_start=week_start,
        slots=slots,
        closed_days=_closed_days(walk, week_start, week_end),
        deadline_passed=walk.deadline_passed(tomorrow if week_index == 0 else week_start, week_end),
        closed_before=_closed_days(walk, walk.now.date(), week_start - timedelta(days=1)) if week_index == 0 else [],
        has_prev=week_index > 0,
        has_next=any(_scheduled_days(office, week_end + timedelta(days=1), walk.window_end)),
        reason_if_empty=None if slots else _empty_week_reason(open_reasons or late_reasons),
    )


def _closed_days(walk: _Walk, frm: date, to: date) -> list[tuple[date, str, str | None]]:
    closed: list[tuple[date, str, str | None]] = []
    for d in _scheduled_days(walk.office, frm, to):
        closure = is_closed(d, walk.office.schedule.closures)
        if closure is not None:
            closed.append((d, closure, holiday_name(d) if closure == "holiday" else None))
        elif d in walk.blocked_days:
            closed.append((d, "blocked", None))
    return closed


def _empty_week_reason(tally: Counter[EmptyWeekReason]) -> EmptyWeekReason:
    if not tally:
        return "outside_window"  # a schedule with no start: nothing will ever be offered
    return max(_EMPTY_WEEK_ORDER, key=lambda reason: (tally[reason], -_EMPTY_WEEK_ORDER.index(reason)))


def is_bookable(
    office: Office,
    now: datetime,
    start: datetime,
    taken: Mapping[datetime, int],
    blocked: Collection[datetime] | None = None,
    blocked_days: Collection[date] | None = None,
) -> UnavailableReason | None:
    """None if a user may request the slot starting at `start` now, else why not.

    Checked in this order: "past", "not_a_slot" (not a schedule weekday and start), "closed" (calendar or
    office closure), "notice_passed", "outside_window", "blocked" (the slot or its day), "full". A day closed
    for a reason the chat names (the year end, a holiday, the office's own closure) is "closed" even at a time
    or on a weekday the schedule has no slot: 12/30 14:00 typed to Sakata (a Wednesday) is answered with the
    New Year closure, not only with "Mondays". A weekend stays "not_a_slot": the schedule says which days there are.
    """
    walk = _walk(office, now, taken, blocked, blocked_days)
    start = _aware(start)
    schedule = office.schedule
    if start <= walk.now:
        return "past"
    closure = is_closed(start.date(), schedule.closures)
    if closure not in (None, "weekend"):
        return "closed"
    if start.weekday() not in schedule.weekdays or start.time() not in schedule.starts:
        return "not_a_slot"
    if closure is not None:
        return "closed"
    if booking_deadline(office, start) <= walk.now:
        return "notice_passed"
    if start.date() > walk.window_end:
        return "outside_window"
    if start.date() in walk.blocked_days or start in walk.blocked:
        return "blocked"
    if taken.get(start, 0) >= schedule.capacity:
        return "full"
    return None


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("a timezone-aware datetime is required")
    return moment.astimezone(TOKYO)
