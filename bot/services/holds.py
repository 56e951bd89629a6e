"""Slot holds while a user fills in the form, and what is free to show them."""
from __future__ import annotations

import secrets
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete, func, or_, select, text
from sqlalchemy.orm import Session

from bot.clock import TOKYO
from bot.models import Booking, Conversation, SlotBlock, SlotHold
from bot.rawsql import Statement, flushed
from bot.services import calendar, lifecycle
from bot.services import slots as slotsvc

ACTIVE_STATUSES = lifecycle.OPEN_STATUSES  # what takes a seat: requests and bookings still open
MAX_HOLD_PERIODS = 4  # a hold kept alive by a user on the form lasts at most this many hold periods


def lock_slot(session: Session, office_id: str, start: datetime) -> None:
    """Serialise work on one slot (PostgreSQL; SQLite's write lock already does)."""
    if session.bind.dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"),
                        {"k": f"{office_id}|{start.isoformat()}"})


# What is free to show, as compiled statements (`bot.rawsql`): a slot list is shown on every step of picking
# one, and through the ORM these three cost more than the rest of such a step.
_slot_start_type = Booking.__table__.c.slot_start.type
_BOOKED = Statement(
    select(Booking.slot_start, func.count())
    .where(Booking.office_id == bindparam("office_id"), or_(*(Booking.status == s for s in ACTIVE_STATUSES)),
           Booking.slot_start >= bindparam("now", type_=_slot_start_type))
    .group_by(Booking.slot_start))


def _held(excluding: bool) -> Statement:
    query = select(SlotHold.slot_start, func.count()).where(
        SlotHold.office_id == bindparam("office_id"),
        SlotHold.expires_at > bindparam("now", type_=SlotHold.__table__.c.expires_at.type))
    if excluding:
        query = query.where(SlotHold.conversation_id != bindparam("conversation_id"))
    return Statement(query.group_by(SlotHold.slot_start))


_HELD = {False: _held(False), True: _held(True)}
_BLOCKS = Statement(select(SlotBlock.slot_start, SlotBlock.day).where(SlotBlock.office_id == bindparam("office_id"),
                                                                       SlotBlock.day >= bindparam("day")))


def seats(session: Session, office_id: str, now: datetime, exclude_conversation: int | None = None
          ) -> tuple[dict[datetime, int], set[datetime], set[date]]:
    """`taken_counts` and `blocks` at once."""
    return (taken_counts(session, office_id, now, exclude_conversation), *blocks(session, office_id, now))


def taken_counts(session: Session, office_id: str, now: datetime,
                 exclude_conversation: int | None = None) -> dict[datetime, int]:
    """Active requests/bookings and live holds per slot start, from now on."""
    conn = flushed(session)
    params = {"office_id": office_id, "now": now}
    held_params = params if exclude_conversation is None else {**params, "conversation_id": exclude_conversation}
    counts: dict[datetime, int] = {}
    for start, n in (*_BOOKED.rows(conn, params), *_HELD[exclude_conversation is not None].rows(conn, held_params)):
        counts[start] = counts.get(start, 0) + n
    return counts


def blocks(session: Session, office_id: str, now: datetime) -> tuple[set[datetime], set[date]]:
    """The slots and whole days staff took out of online booking, from today on."""
    rows = _BLOCKS.rows(flushed(session), {"office_id": office_id, "day": now.date().isoformat()})
    return ({start for start, _ in rows if start is not None},
            {date.fromisoformat(day) for start, day in rows if start is None})


def blocked(session: Session, office_id: str, slot_start: datetime, now: datetime) -> bool:
    """Has staff taken this slot, or its whole day, out of online booking (since it was held, say)?"""
    starts, days = blocks(session, office_id, now)
    return slot_start in starts or slot_start.astimezone(TOKYO).date() in days


def week_page(session: Session, office, now: datetime, index: int, page: int = 0) -> dict[str, Any]:
    """One page of the index-th bookable week (see `slots.week_view`): its slots, why the week is empty if it
    is, the days shown, and where the previous and next page lie.

    `page` counts from 0; one past the last (or -1) is the week's last page. Moving on from the last page
    goes to the next week's first, back from the first to the previous week's last.
    """
    taken, blocked, blocked_days = seats(session, office.id, now)
    view = slotsvc.week_view(office, now, index, taken, blocked, blocked_days)
    pages = view.pages()
    page = page if 0 <= page < len(pages) else len(pages) - 1
    shown = pages[page]
    days = shown.days
    return {
        "week_start": view.week_start,
        # Today's year: a date in another is written with its year where the short M/D(曜) stands alone (ja).
        "year": now.astimezone(TOKYO).year,
        "week_end": view.week_start + timedelta(days=6),
        "slots": [{"start": s.start.isoformat(), "label": s.label, "at": s.start} for s in shown.slots],
        "closed_days": [{"day": d, "reason": r, "holiday": h} for d, r, h in view.closed_days],
        # The week's closed days still to come, named beside its slots so that a missing day is explained.
        "closed_ahead": _year_end_as_one(
            [{"day": d, "reason": r, "holiday": h} for d, r, h in view.closed_days if d > now.date()]),
        # Week 0's first page: the closed days (today on) of the weeks skipped to reach it (1/11 成人の日 before 1/18's).
        "closed_before": _year_end_as_one(
            [{"day": d, "reason": r, "holiday": h} for d, r, h in (view.closed_before if page == 0 else [])]),
        # Tomorrow on, the days whose booking deadline has passed: said on the week's first page.
        "deadline_passed": [{"day": d, "deadline": deadline}
                            for d, deadline in (view.deadline_passed if page == 0 else [])],
        "reason": view.reason_if_empty,
        "index": index,
        "page": page,
        "pages": len(pages),
        "first_day": days[0] if days else view.week_start,
        "last_day": days[-1] if days else view.week_start + timedelta(days=6),
        "part": shown.part,
        "parts": shown.parts,
        "has_prev": page > 0 or view.has_prev,
        "has_next": page + 1 < len(pages) or view.has_next,
        "prev_is_week": page == 0,             # the previous page is the previous week's last
        "next_is_week": page + 1 == len(pages),  # the next page is the next week's first
        "has_prev_week": view.has_prev,
        "has_next_week": view.has_next,
    }


def _year_end_as_one(closed: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The closed days with the year end's run of them as one (`until` its last day): 12/29(火)〜1/1(金) 年末年始,
    not the same reason four times over."""
    out: list[dict[str, Any]] = []
    for day in closed:
        last = out[-1] if out else None
        if day["reason"] == "year_end" and last is not None and last["reason"] == "year_end":
            last["until"] = day["day"]
        else:
            out.append({**day, "until": None})
    return out


def closed_day(office, day: date) -> dict[str, str | None] | None:
    """Why the office is closed on `day` where the chat names it (the year end, a holiday, its own closure), as
    `hold` says it for a closed slot; None on an open day or a weekend (the schedule says which days there are)."""
    closure = calendar.is_closed(day, office.schedule.closures)
    if closure in (None, "weekend"):
        return None
    return {"day": day.isoformat(), "closure": closure,
            "holiday": calendar.holiday_name(day) if closure == "holiday" else None}


def _parse_iso(value: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=TOKYO)
    return moment.astimezone(TOKYO)


def hold(session: Session, rt, office, conv: Conversation, start_iso: str, now: datetime) -> dict[str, Any]:
    """Hold a slot for this conversation (replacing any hold it had)."""
    start = _parse_iso(start_iso)
    if start is None:
        return {"ok": False, "reason": "not_a_slot", "alternatives": []}
    lock_slot(session, office.id, start)
    existing = session.scalar(select(SlotHold).where(SlotHold.conversation_id == conv.id))
    if existing is not None and existing.slot_start == start and existing.expires_at > now:
        return _held_dict(rt, office, conv, existing)
    taken, blocked, blocked_days = seats(session, office.id, now, exclude_conversation=conv.id)
    reason = slotsvc.is_bookable(office, now, start, taken, blocked, blocked_days)
    if reason is not None:
        # The whole booking window (a few hundred starts at most): a cap would keep only the first days'
        # slots, far from a start weeks ahead where an office has many slots a day.
        nearest = slotsvc.available_slots(office, now, taken, blocked, blocked_days)
        nearest.sort(key=lambda s: abs((s.start - start).total_seconds()))
        alternatives = sorted(nearest[:3], key=lambda s: s.start)
        # A slot whose booking closed says when (the office's notice rule, as this bot reads it).
        deadline = slotsvc.booking_deadline(office, start).isoformat() if reason == "notice_passed" else None
        # A closed day says why: the holiday by name, the year end, or the office's own closure.
        day = start.astimezone(TOKYO).date()
        closure = calendar.is_closed(day, office.schedule.closures) if reason == "closed" else None
        return {"ok": False, "reason": reason, "start": start.isoformat(), "label": slotsvc.slot_label(start),
                "deadline": deadline, "closure": closure,
                "holiday": calendar.holiday_name(day) if closure == "holiday" else None,
                "alternatives": [{"start": s.start.isoformat(), "label": s.label} for s in alternatives]}
    if existing is not None and existing.slot_start == start:
        # The same slot chosen again after its hold ran out: held again under the same link, so that a form
        # page still open with what was typed can be sent (as `revive` does for a page sent late). A link
        # whose form was sent has no hold left to find here (`requests.submit` deletes it).
        existing.created_at, existing.expires_at = now, now + timedelta(minutes=office.booking.hold_minutes)
        session.flush()
        return _held_dict(rt, office, conv, existing)
    if existing is not None:
        session.delete(existing)
        session.flush()
    row = SlotHold(office_id=office.id, conversation_id=conv.id, slot_start=start,
                   expires_at=now + timedelta(minutes=office.booking.hold_minutes),
                   token_nonce=secrets.token_urlsafe(12), created_at=now)
    session.add(row)
    session.flush()
    return _held_dict(rt, office, conv, row)


def _held_dict(rt, office, conv: Conversation, row: SlotHold) -> dict[str, Any]:
    # The slot's booking deadline where an open form could outlast it (as the form says it): held until 17:05
    # is no use to a request that must be sent by 17:00.
    deadline = slotsvc.booking_deadline(office, row.slot_start)
    return {"ok": True, "start": row.slot_start.isoformat(), "at": row.slot_start,
            "label": slotsvc.slot_label(row.slot_start), "expires_at": row.expires_at,
            "deadline": deadline if deadline <= latest_expiry(office, row) else None,
            "form_url": rt.form_url(office.id, conv.id, row.token_nonce)}


def latest_expiry(office, row: SlotHold) -> datetime:
    """The furthest an open form can keep this hold alive (MAX_HOLD_PERIODS hold periods from its start)."""
    return row.created_at + timedelta(minutes=office.booking.hold_minutes) * MAX_HOLD_PERIODS


def extend(session: Session, office, row: SlotHold, now: datetime) -> None:
    """The user is on the form: keep the slot one more hold period from now (at most MAX_HOLD_PERIODS in all)."""
    target = min(now + timedelta(minutes=office.booking.hold_minutes), latest_expiry(office, row))
    if target > row.expires_at:
        row.expires_at = target


def revive(session: Session, office, row: SlotHold, now: datetime) -> str | None:
    """A hold that ran out while its user was still filling in the form, which they now send: held again
    for one period from now if the slot is still free for them (nobody else took it meanwhile); else the
    reason it cannot be (`slots.is_bookable`: full, notice_passed, ...). Only a sent form revives a hold,
    never a page view, so an open page alone cannot keep a slot from others."""
    lock_slot(session, office.id, row.slot_start)
    taken, blocked, blocked_days = seats(session, office.id, now, exclude_conversation=row.conversation_id)
    reason = slotsvc.is_bookable(office, now, row.slot_start, taken, blocked, blocked_days)
    if reason is None:
        row.created_at, row.expires_at = now, now + timedelta(minutes=office.booking.hold_minutes)
    return reason


def release(session: Session, conv: Conversation) -> None:
    session.execute(delete(SlotHold).where(SlotHold.conversation_id == conv.id))


def ran_out(session: Session, conv: Conversation, now: datetime) -> bool:
    """Is the conversation's hold still there, expired? (Expired holds stay until the retention purge; the
    form deletes the hold when it gives the slot back for good: deadline passed, slot taken.)"""
    return session.scalar(select(SlotHold.id).where(SlotHold.conversation_id == conv.id,
                                                    SlotHold.expires_at <= now)) is not None


def live(session: Session, conversation_id: int, now: datetime) -> SlotHold | None:
    """The conversation's hold while it lives (its newest form link's)."""
    return session.scalar(select(SlotHold).where(SlotHold.conversation_id == conversation_id,
                                                 SlotHold.expires_at > now))


def chosen_since(session: Session, conversation_id: int, nonce: str) -> SlotHold | None:
    """The conversation's hold of a slot chosen after the link `nonce` was, living or run out (an expired hold
    stays until the purge: its own link's form, sent, may revive it)."""
    return session.scalar(select(SlotHold).where(SlotHold.conversation_id == conversation_id,
                                                 SlotHold.token_nonce != nonce))


def held(session: Session, rt, office, conv: Conversation, now: datetime) -> dict[str, Any] | None:
    row = live(session, conv.id, now)
    return _held_dict(rt, office, conv, row) if row else None
