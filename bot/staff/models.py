"""Tables of the staff handoff: accounts, their sessions, the audit log, and staff-side booking state."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, LargeBinary, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from bot.models import Base


class StaffUser(Base):
    """A dashboard account: belongs to one office; role staff or admin (admins manage accounts)."""

    __tablename__ = "staff_users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    office_id: Mapped[str] = mapped_column(String(32), index=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), default="staff")  # staff | admin
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    totp_secret: Mapped[str | None] = mapped_column(String(255), default=None)  # Fernet-encrypted
    totp_last_step: Mapped[int] = mapped_column(Integer, default=0)  # a code is accepted once
    created_at: Mapped[datetime]
    last_login_at: Mapped[datetime | None] = mapped_column(default=None)


class StaffSession(Base):
    """A signed-in browser: the cookie holds only this row's random id (new on every login)."""

    __tablename__ = "staff_sessions"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id"), index=True)
    created_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    ip: Mapped[str | None] = mapped_column(String(45), default=None)


class RevealGrant(Base):
    """A booking whose personal details a signed-in session shows, until when (bot/staff/reveals.py).

    Kept here, not in the browser's cookie (signed, not revocable: a copy kept the grant after 個人情報を隠す),
    and the session's: whatever ends the session (logout, a password change, the account disabled, a time limit,
    the housekeeping) ends its grants with it, and so does the booking's purge (both foreign keys cascade)."""

    __tablename__ = "staff_reveals"
    session_id: Mapped[str] = mapped_column(ForeignKey("staff_sessions.id", ondelete="CASCADE"), primary_key=True)
    booking_id: Mapped[int] = mapped_column(ForeignKey("bookings.id", ondelete="CASCADE"), primary_key=True,
                                            index=True)
    until: Mapped[datetime] = mapped_column(index=True)


class LoginFailure(Base):
    """Wrong passwords per username (known or not), for the temporary lock-out."""

    __tablename__ = "staff_login_failures"
    username: Mapped[str] = mapped_column(String(64), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)
    first_at: Mapped[datetime]
    locked_until: Mapped[datetime | None] = mapped_column(default=None)


class LoginAddressFailure(Base):
    """Failed logins per client address (bot/staff/throttle.py), whatever the user names: one address spraying
    passwords over many names is throttled. Keyed by a keyed hash of the address, never the address itself."""

    __tablename__ = "staff_login_address_failures"
    address: Mapped[str] = mapped_column(String(64), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)
    first_at: Mapped[datetime]
    throttled_until: Mapped[datetime | None] = mapped_column(default=None)


class AuditEntry(Base):
    """Who did what, when: every staff action and every view of personal details.

    `detail` holds ids, keys and slots only. The one free text, the memo staff give when they cancel on the
    user's behalf or the reason they type when they correct an attendance, is personal: it is kept in `note`,
    Fernet-encrypted (bot.crypto), and erased with the booking's details; the entry itself (action, time,
    actor) stays.

    An entry of no office (`office_id` NULL) concerns the whole deployment, e.g. an operator lifting a client
    address's login throttle (`staff unthrottle`), which holds for every office: every office's log shows it.
    """

    __tablename__ = "staff_audit"
    # The audit page: an office's entries newest first, paged on (at, id); narrowed to one booking's reference.
    # The retention purge erases the memos kept (migration 0020).
    __table_args__ = (Index("ix_staff_audit_office_at", "office_id", "at", "id"),
                      Index("ix_staff_audit_office_reference", "office_id", "reference"),
                      Index("ix_staff_audit_noted", "booking_id", postgresql_where=text("note IS NOT NULL"),
                            sqlite_where=text("note IS NOT NULL")))
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    office_id: Mapped[str | None] = mapped_column(String(32), index=True)  # None: the whole deployment
    at: Mapped[datetime] = mapped_column(index=True)
    actor: Mapped[str] = mapped_column(String(80))  # a username, "line_group" or "system"
    user_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"), default=None)
    line_member_id: Mapped[str | None] = mapped_column(String(64), default=None)  # group member who tapped
    action: Mapped[str] = mapped_column(String(40))
    booking_id: Mapped[int | None] = mapped_column(ForeignKey("bookings.id"), index=True, default=None)
    reference: Mapped[str | None] = mapped_column(String(9), default=None)
    detail: Mapped[dict] = mapped_column(JSON, default=dict)
    ip: Mapped[str | None] = mapped_column(String(45), default=None)
    note: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)  # the memo, encrypted


class BookingHandoff(Base):
    """Staff-side state of one booking: the decline reason, a proposal's original slot, the phone task, and
    why staff booked a slot that could not normally be booked.

    The override reason is free text staff write (「本人より電話 090-… 通院のため」), so personal: it is kept
    Fernet-encrypted (bot.crypto) and erased with the booking's details.
    """

    __tablename__ = "booking_handoffs"
    booking_id: Mapped[int] = mapped_column(ForeignKey("bookings.id"), primary_key=True)
    decline_reason: Mapped[str | None] = mapped_column(String(40), default=None)
    proposed_from: Mapped[datetime | None] = mapped_column(default=None)
    call_needed: Mapped[bool] = mapped_column(Boolean, default=False)
    called_at: Mapped[datetime | None] = mapped_column(default=None)
    override_reason: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)  # encrypted
    updated_at: Mapped[datetime]


class JobMark(Base):
    """A scheduled job done once for one key (a booking's reference, never its id, which SQLite may give to a later
    booking once the row is purged: bot/staff/jobs.py `_not_done`): reruns and other workers find it and skip."""

    __tablename__ = "staff_job_marks"
    __table_args__ = (UniqueConstraint("job", "key"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job: Mapped[str] = mapped_column(String(40))
    key: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(index=True)
