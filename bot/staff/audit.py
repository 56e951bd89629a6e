"""The audit log: one row per staff action or view of personal details (who, what, when; no personal data).

An entry of no office (`DEPLOYMENT`) records what an operator did for the whole deployment from the server's
shell (lifting a client address's login throttle, which holds whatever office a login is for); every office's
log shows it."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from bot.models import Booking
from bot.staff.models import AuditEntry

SYSTEM = "system"
LINE_GROUP = "line_group"
CLI = "cli"                 # an operator at the server's shell (`flask --app app …`)
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


def recent(session: Session, office_id: str, limit: int = 200) -> list[AuditEntry]:
    """The office's latest entries, with those of the whole deployment."""
    mine = or_(AuditEntry.office_id == office_id, AuditEntry.office_id.is_(None))
    return list(session.scalars(select(AuditEntry).where(mine)
                                .order_by(AuditEntry.at.desc(), AuditEntry.id.desc()).limit(limit)))


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
