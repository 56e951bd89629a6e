"""The audit log: one row per staff action or view of personal details (who, what, when; no personal data).

An entry of no office (`DEPLOYMENT`) records what an operator did for the whole deployment from the server's
shell (lifting a client address's login throttle, which holds whatever office a login is for); every office's
log shows it."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from bot.clock import TOKYO
from bot.models import Booking
from bot.staff.models import AuditEntry

SYSTEM = "system"
LINE_GROUP = "line_group"
CLI = "cli"                 # an operator at the server's shell (`flask --app app …`)
USER = "user"               # the job seeker, answering a proposal in the chat
# The actors that are no account: no account may bear one of these names (`auth.create_user`), or the log would
# read its entries as the system's, the staff group's, the user's or the server's.
NOT_ACCOUNTS = (LINE_GROUP, USER, SYSTEM, CLI)
DEPLOYMENT = None           # the office of an entry that concerns every office


@dataclass(frozen=True)
class Actor:
    """Who acts: a dashboard account, the office's LINE staff group (with the member when given), or a job."""

    label: str
    user_id: int | None = None
    line_member_id: str | None = None
    ip: str | None = None

    @classmethod
    def staff(cls, user, ip: str | None = None) -> "Actor":
        return cls(label=user.username, user_id=user.id, ip=ip)

    @classmethod
    def group(cls, member_id: str | None) -> "Actor":
        return cls(label=LINE_GROUP, line_member_id=member_id)

    @classmethod
    def system(cls) -> "Actor":
        return cls(label=SYSTEM)

    @classmethod
    def cli(cls) -> "Actor":
        return cls(label=CLI)


def record(session: Session, office_id: str | None, actor: Actor, action: str, now: datetime,
           booking: Booking | None = None, *, sealed_note: bytes | None = None, **detail: Any) -> AuditEntry:
    """Add one audit row in the caller's transaction. `detail` holds ids, keys and slots only; a memo staff
    wrote is personal and comes already encrypted (`personal.seal_note`). `office_id` DEPLOYMENT: every office's
    log shows the entry."""
    if sealed_note is not None and not isinstance(sealed_note, bytes):
        raise TypeError("an audit memo is stored encrypted: pass personal.seal_note(...)")
    if "note" in detail:
        raise TypeError("free text is personal: pass it as sealed_note, never in the detail")
    entry = AuditEntry(office_id=office_id, at=now, actor=actor.label, user_id=actor.user_id,
                       line_member_id=actor.line_member_id, action=action,
                       booking_id=booking.id if booking is not None else None,
                       reference=booking.reference if booking is not None else None,
                       detail={k: _plain(v) for k, v in detail.items()}, ip=actor.ip, note=sealed_note)
    session.add(entry)
    return entry


def for_booking(session: Session, booking_id: int) -> list[AuditEntry]:
    return list(session.scalars(select(AuditEntry).where(AuditEntry.booking_id == booking_id)
                                .order_by(AuditEntry.at, AuditEntry.id)))


PAGE_SIZE = 100   # the audit page's entries per page, newest first


@dataclass(frozen=True)
class Filters:
    """What the audit page narrows its entries to; None: any. `first`/`last`: days of Asia/Tokyo, both kept.
    `action` a key of labels.yaml `actions`, where `export_details` is an export that held the details."""

    reference: str | None = None
    actor: str | None = None
    action: str | None = None
    first: date | None = None
    last: date | None = None


# The page says how many entries match, counting no further than this: a count of every entry of a busy office's
# years would read the whole table on each page load, for a figure nobody needs exactly beyond it.
COUNT_LIMIT = 1000


@dataclass(frozen=True)
class Page:
    entries: list[AuditEntry]
    total: int            # entries matching the filters, on every page (at most COUNT_LIMIT: see `more_than`)
    older: int | None     # the id to page on from (`before`), None: no older entry
    newer: int | None     # the id to page back from (`after`), None: no newer entry
    more_than: bool = False   # more than `total` (COUNT_LIMIT) entries match


def _mine(office_id: str):
    """The office's entries and the whole deployment's, never another office's."""
    return or_(AuditEntry.office_id == office_id, AuditEntry.office_id.is_(None))


def _matching(office_id: str, filters: Filters) -> list:
    conditions = [_mine(office_id)]
    if filters.reference is not None:
        conditions.append(AuditEntry.reference == filters.reference)
    if filters.actor is not None:
        conditions.append(AuditEntry.actor == filters.actor)
    if filters.action is not None:
        contents = AuditEntry.detail["contents"].as_string()
        held_details = or_(contents.is_(None), contents == "details")   # before the choice, every export did
        if filters.action == "export_details":
            conditions += [AuditEntry.action == "export", held_details]
        elif filters.action == "export":
            conditions += [AuditEntry.action == "export", contents.is_not(None), contents != "details"]
        else:
            conditions.append(AuditEntry.action == filters.action)
    if filters.first is not None:
        conditions.append(AuditEntry.at >= datetime.combine(filters.first, time(), TOKYO))
    if filters.last is not None:
        conditions.append(AuditEntry.at < datetime.combine(filters.last + timedelta(days=1), time(), TOKYO))
    return conditions


def _beyond(entry: AuditEntry, older: bool):
    """Entries after `entry` in the page's order (newest first) when `older`, before it otherwise: keyset on
    (at, id), so that a page stays where it was while new entries come in."""
    if older:
        return or_(AuditEntry.at < entry.at, and_(AuditEntry.at == entry.at, AuditEntry.id < entry.id))
    return or_(AuditEntry.at > entry.at, and_(AuditEntry.at == entry.at, AuditEntry.id > entry.id))


class UnknownPosition(LookupError):
    """The entry a page was to start from is none of the office's (a mistyped or stale link)."""


def page(session: Session, office_id: str, filters: Filters = Filters(), *, before: int | None = None,
         after: int | None = None, size: int = PAGE_SIZE) -> Page:
    """One page of the office's entries (with the whole deployment's) matching `filters`, newest first: the
    newest, or those just older than entry `before`, or just newer than entry `after`."""
    conditions = _matching(office_id, filters)
    query = select(AuditEntry).where(*conditions)
    anchor_id = before if before is not None else after
    if anchor_id is None:
        rows = list(session.scalars(query.order_by(AuditEntry.at.desc(), AuditEntry.id.desc()).limit(size)))
    else:
        anchor = session.scalar(select(AuditEntry).where(AuditEntry.id == anchor_id, _mine(office_id)))
        if anchor is None:
            raise UnknownPosition(anchor_id)
        if before is not None:
            rows = list(session.scalars(query.where(_beyond(anchor, older=True))
                                        .order_by(AuditEntry.at.desc(), AuditEntry.id.desc()).limit(size)))
        else:
            rows = list(session.scalars(query.where(_beyond(anchor, older=False))
                                        .order_by(AuditEntry.at, AuditEntry.id).limit(size)))[::-1]

    def more(edge: AuditEntry | None, older: bool) -> int | None:
        if edge is None:
            return None
        found = session.scalar(select(AuditEntry.id).where(*conditions, _beyond(edge, older)).limit(1))
        return edge.id if found is not None else None

    if rows:
        older, newer = more(rows[-1], True), more(rows[0], False)
    else:   # paged past the end: the way back is from where the page started
        older = newer = None
        if anchor_id is not None:
            older, newer = (None, anchor_id) if before is not None else (anchor_id, None)
    counted = session.scalar(select(func.count()).select_from(
        select(AuditEntry.id).where(*conditions).limit(COUNT_LIMIT + 1).subquery())) or 0
    return Page(rows, min(counted, COUNT_LIMIT), older, newer, more_than=counted > COUNT_LIMIT)


def subject(entry: AuditEntry) -> dict[str, Any]:
    """What an entry without a booking acted on, from its detail, for the log to say: the slot or day blocked or
    opened again, the account, the period exported (the log said 日の停止 but not which day)."""
    detail = entry.detail or {}
    found: dict[str, Any] = {}
    if detail.get("slot"):
        found["slot"] = datetime.fromisoformat(detail["slot"])
    elif detail.get("day"):
        found["day"] = date.fromisoformat(detail["day"])
    if detail.get("account"):
        found["account"] = detail["account"]
    if detail.get("first") and detail.get("last"):
        found["period"] = (detail["first"], detail["last"])
    if entry.office_id is DEPLOYMENT:
        found["deployment"] = True
    if detail.get("command"):
        found["command"] = detail["command"]
    if detail.get("throttled") is False:
        found["not_throttled"] = True
    return found


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return value
