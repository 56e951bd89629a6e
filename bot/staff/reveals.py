"""Which bookings' personal details a signed-in session shows, until when: grants kept on the server, as rows of
the session (`RevealGrant`), never in the browser's cookie, so that the server can end them. Whatever ends the
session ends its grants (the foreign key cascades): logout, a password change, the account disabled, the idle
and absolute limits, the housekeeping. Pure functions over a session (no Flask here)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from bot.staff.auth import session_key
from bot.staff.models import RevealGrant, StaffSession


def until(session: Session, token: str | None, booking_id: int, now: datetime) -> datetime | None:
    """Until when the session behind the cookie's token shows the booking's details (None: hidden)."""
    if not token:
        return None
    moment = session.scalar(select(RevealGrant.until).where(RevealGrant.session_id == session_key(token),
                                                            RevealGrant.booking_id == booking_id))
    return moment if moment is not None and moment > now else None


def grant(session: Session, token: str, booking_id: int, now: datetime, until: datetime) -> bool:
    """Show the booking's details in the session until `until`, unless a grant of it is still live: True when
    this one is new (the caller logs the view), False when one was there. In one statement (an upsert), so a
    reveal sent twice at once (a double click, two tabs) writes one grant, finds the other's once it committed,
    and is logged once; neither fails on the grant's key. A session that ended since the request's guard let it
    in (logged out in another tab at that moment) gets none: False; its row is held (FOR SHARE) until the
    transaction ends, so it cannot end in between either."""
    key = session_key(token)
    if session.scalar(select(StaffSession.id).where(StaffSession.id == key).with_for_update(read=True)) is None:
        return False
    insert = postgresql.insert if session.bind.dialect.name == "postgresql" else sqlite.insert
    stmt = insert(RevealGrant).values(session_id=key, booking_id=booking_id, until=until)
    stmt = stmt.on_conflict_do_update(index_elements=["session_id", "booking_id"],
                                      set_={"until": stmt.excluded.until}, where=RevealGrant.until <= now)
    return session.execute(stmt.returning(RevealGrant.booking_id)).first() is not None


def revoke(session: Session, token: str | None, booking_id: int) -> None:
    """個人情報を隠す: the session shows the booking's details no more, in every copy of its cookie."""
    if token:
        session.execute(delete(RevealGrant).where(RevealGrant.session_id == session_key(token),
                                                  RevealGrant.booking_id == booking_id))


def purge(session: Session, now: datetime) -> None:
    """Grants that ended: they show nothing any more."""
    session.execute(delete(RevealGrant).where(RevealGrant.until <= now))
