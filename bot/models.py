"""The database schema, as SQLAlchemy 2 typed models."""
from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from bot.clock import TOKYO


class UTCDateTime(TypeDecorator):
    """Timezone-aware datetimes on every backend (SQLite keeps no offset: store UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database")
        value = value.astimezone(timezone.utc)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value.astimezone(TOKYO)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime(), dict: JSON}


class AppSetting(Base):
    """Small key/value settings shared by every process (e.g. the development clock offset)."""

    __tablename__ = "app_settings"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class ProcessedEvent(Base):
    """One row per webhook event handled: a redelivered event finds its row and does nothing."""

    __tablename__ = "processed_events"
    webhook_event_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    office_id: Mapped[str] = mapped_column(String(32))
    received_at: Mapped[datetime] = mapped_column(index=True)


def _where(condition: str) -> dict:
    """A partial index's condition, on both backends (the worker's jobs read only the rows it names)."""
    return {"postgresql_where": text(condition), "sqlite_where": text(condition)}


class Conversation(Base):
    """A LINE user at one office: where they are in the dialog, and what they answered."""

    __tablename__ = "conversations"
    __table_args__ = (UniqueConstraint("office_id", "line_user_id"),
                      Index("ix_conversations_to_forget", "id",
                            **_where("followed IS false AND line_user_id NOT LIKE 'forgotten:%'")))
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    office_id: Mapped[str] = mapped_column(String(32))
    line_user_id: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(40), default="idle")
    context: Mapped[dict] = mapped_column(JSON, default=dict)
    step: Mapped[int] = mapped_column(Integer, default=0)  # bumps on every state change (stale buttons)
    misses: Mapped[int] = mapped_column(Integer, default=0)
    language: Mapped[str] = mapped_column(String(8), default="ja")
    followed: Mapped[bool] = mapped_column(Boolean, default=True)  # False after unfollow: never pushed to
    booking_blocked: Mapped[bool] = mapped_column(Boolean, default=False)  # staff blocked online booking
    last_event_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    last_active_at: Mapped[datetime | None] = mapped_column(default=None)
    pending_notice: Mapped[str | None] = mapped_column(String(64), default=None)  # versions told in the next reply
    flood_tat: Mapped[datetime | None] = mapped_column(default=None)          # flood control (bot/ratelimit.py)
    flood_noticed_at: Mapped[datetime | None] = mapped_column(default=None)   # last flood notice sent
    # A request's receipt may be waiting to be shown in chat (set with the request; cleared once none is).
    receipt_due: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime]


class OutboxMessage(Base):
    """A message on its way to LINE, written in the same transaction as what caused it."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "status", "due_at"), Index("ix_outbox_created_at", "created_at"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    office_id: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(16))  # reply | push | multicast | broadcast | leave_group
    recipient: Mapped[str | None] = mapped_column(String(64), index=True, default=None)
    reply_token: Mapped[str | None] = mapped_column(String(255), default=None)
    reply_deadline: Mapped[datetime | None] = mapped_column(default=None)
    payload: Mapped[dict] = mapped_column(JSON)  # {"messages": [...], "to": [...]}
    retry_key: Mapped[str] = mapped_column(String(36))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    # pending | sending | sent | failed | held | unknown | skipped | stale
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    due_at: Mapped[datetime]
    next_attempt_at: Mapped[datetime]
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None] = mapped_column(default=None)
    last_error: Mapped[str | None] = mapped_column(String(255), default=None)
    purpose: Mapped[str] = mapped_column(String(40), default="chat")
    source_event_id: Mapped[str | None] = mapped_column(String(64), default=None)
    # The booking a message is about (none for chat answers and notices): its reference (which, unlike the
    # row's id, is never reused) and its status when the message was queued. The worker drops a message the
    # booking has since left behind (status "stale", the reason in last_error; bot/services/staleness.py).
    booking_reference: Mapped[str | None] = mapped_column(String(9), default=None)
    booking_status: Mapped[str | None] = mapped_column(String(20), default=None)
    notice_kind: Mapped[str | None] = mapped_column(String(20), default=None)  # a staff card's notice kind


class TermsVersion(Base):
    """One version of an office's terms; id = effective date (YYYY-MM-DD)."""

    __tablename__ = "terms_versions"
    __table_args__ = (UniqueConstraint("office_id", "version"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    office_id: Mapped[str] = mapped_column(String(32))
    version: Mapped[str] = mapped_column(String(10))
    body: Mapped[str | None] = mapped_column(Text, default=None)  # None: known by date only
    summary: Mapped[str | None] = mapped_column(Text, default=None)
    published_at: Mapped[datetime]
    # A correction needing no new consent (`terms publish --no-reconsent`): the version whose consent, or any
    # since, stands for this one. None: this version asks for consent.
    consent_from: Mapped[str | None] = mapped_column(String(10), default=None)


class Consent(Base):
    """The office's record of who consented to which terms version, when and how."""

    __tablename__ = "consents"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    office_id: Mapped[str] = mapped_column(String(32), index=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id"), index=True)
    version: Mapped[str] = mapped_column(String(10))
    consented_at: Mapped[datetime]
    webhook_event_id: Mapped[str] = mapped_column(String(64))
    method: Mapped[str] = mapped_column(String(16))  # button | text

    conversation: Mapped[Conversation] = relationship()


class StaffGroupSighting(Base):
    """A group the bot was invited to (join event), for setting up the staff group."""

    __tablename__ = "staff_group_sightings"
    __table_args__ = (UniqueConstraint("office_id", "group_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    office_id: Mapped[str] = mapped_column(String(32))
    group_id: Mapped[str] = mapped_column(String(64))
    joined_at: Mapped[datetime]
    left_at: Mapped[datetime | None] = mapped_column(default=None)


class SlotHold(Base):
    """A slot held for one conversation while its user fills in the form."""

    __tablename__ = "slot_holds"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    office_id: Mapped[str] = mapped_column(String(32))
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id"), unique=True)
    slot_start: Mapped[datetime] = mapped_column(index=True)
    expires_at: Mapped[datetime] = mapped_column(index=True)
    token_nonce: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime]


class Booking(Base):
    """A request and, once staff decide, the booking it became."""

    __tablename__ = "bookings"
    # The worker's jobs, across every office on every pass (migration 0020).
    __table_args__ = (Index("ix_bookings_status_slot", "status", "slot_start"),
                      Index("ix_bookings_details_kept", "slot_start", **_where("details IS NOT NULL")),
                      Index("ix_bookings_noted", "slot_start", **_where("staff_note IS NOT NULL")),
                      Index("ix_bookings_receipt_pending", "id", **_where("receipt_pending IS true")))
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reference: Mapped[str] = mapped_column(String(9), unique=True)
    office_id: Mapped[str] = mapped_column(String(32), index=True)
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversations.id"), index=True)
    slot_start: Mapped[datetime] = mapped_column(index=True)
    status: Mapped[str] = mapped_column(String(20), default="requested")
    source: Mapped[str] = mapped_column(String(16), default="line")  # line | phone | window | online
    seeker_hash: Mapped[str | None] = mapped_column(String(64), index=True, default=None)
    details: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)  # Fernet-encrypted JSON
    details_purged_at: Mapped[datetime | None] = mapped_column(default=None)
    invitation_sent_at: Mapped[datetime | None] = mapped_column(default=None)
    decided_at: Mapped[datetime | None] = mapped_column(default=None)
    # When it entered a closed status, stamped once by the lifecycle: the clock of the closed-request purge
    # (`updated_at` moves whenever staff touch the row, a note say, which must not keep it longer).
    closed_at: Mapped[datetime | None] = mapped_column(default=None)
    receipt_pending: Mapped[bool] = mapped_column(Boolean, default=False)  # not yet shown in chat
    # What staff wrote about the booking (職員メモ): free text, so personal; Fernet-encrypted text (bot.crypto).
    staff_note: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    conversation: Mapped[Conversation | None] = relationship()


class SlotClaim(Base):
    """Capacity enforced by the database: one row per (office, slot, seat) taken."""

    __tablename__ = "slot_claims"
    __table_args__ = (UniqueConstraint("office_id", "slot_start", "seat"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    office_id: Mapped[str] = mapped_column(String(32))
    slot_start: Mapped[datetime]
    seat: Mapped[int] = mapped_column(Integer)
    booking_id: Mapped[int] = mapped_column(ForeignKey("bookings.id"), unique=True)


class SlotBlock(Base):
    """A slot (slot_start set) or a whole day (slot_start empty) staff took out of online booking."""

    __tablename__ = "slot_blocks"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    office_id: Mapped[str] = mapped_column(String(32), index=True)
    day: Mapped[str] = mapped_column(String(10), index=True)  # YYYY-MM-DD (Asia/Tokyo)
    slot_start: Mapped[datetime | None] = mapped_column(default=None)
    # Why staff blocked it: free text, so personal; Fernet-encrypted text (bot.crypto), as the 職員メモ.
    reason: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    created_at: Mapped[datetime]


class StaffNotice(Base):
    """A handoff for the office's staff: shown on the dashboard, carded to the LINE group if set."""

    __tablename__ = "staff_notices"
    # The queue page: an office's newest notices first (migration 0021).
    __table_args__ = (Index("ix_staff_notices_office_created", "office_id", "created_at", "id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    office_id: Mapped[str] = mapped_column(String(32), index=True)
    kind: Mapped[str] = mapped_column(String(20))  # new_request | withdrawn | cancelled | expired
    booking_id: Mapped[int] = mapped_column(ForeignKey("bookings.id"), index=True)
    created_at: Mapped[datetime]
    seen_at: Mapped[datetime | None] = mapped_column(default=None)


class TermsBroadcast(Base):
    """Telling followers about a terms version: one per office, version and mode; resumable."""

    __tablename__ = "terms_broadcasts"
    __table_args__ = (UniqueConstraint("office_id", "version", "mode"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    office_id: Mapped[str] = mapped_column(String(32))
    version: Mapped[str] = mapped_column(String(10))
    mode: Mapped[str] = mapped_column(String(16))  # multicast | broadcast | next-message
    status: Mapped[str] = mapped_column(String(16), default="planned")  # planned | running | paused | complete
    runner: Mapped[str | None] = mapped_column(String(36), default=None)
    heartbeat_at: Mapped[datetime | None] = mapped_column(default=None)
    recipients: Mapped[int] = mapped_column(Integer, default=0)
    note: Mapped[str | None] = mapped_column(String(255), default=None)
    created_at: Mapped[datetime]
    completed_at: Mapped[datetime | None] = mapped_column(default=None)


class BroadcastChunk(Base):
    """One Messaging API call of a terms broadcast, with its own retry key."""

    __tablename__ = "broadcast_chunks"
    __table_args__ = (UniqueConstraint("broadcast_id", "seq"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    broadcast_id: Mapped[int] = mapped_column(ForeignKey("terms_broadcasts.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    recipients: Mapped[dict] = mapped_column(JSON)  # {"to": [...]} (empty for broadcast)
    retry_key: Mapped[str] = mapped_column(String(36))
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | sent | next-message
    sent_at: Mapped[datetime | None] = mapped_column(default=None)
