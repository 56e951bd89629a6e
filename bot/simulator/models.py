"""Tables of the local LINE simulator: what the bot sent, reply tokens, retry keys, rich menus.

Everything lives in the database so that every web process and the worker see the same
simulated LINE platform (development only; production never registers the simulator).
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, Boolean, Index, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from bot.models import Base


class SimUser(Base):
    """A test user who added an office's account as a friend in the simulator."""

    __tablename__ = "sim_users"
    __table_args__ = (UniqueConstraint("office_id", "user_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    office_id: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[str] = mapped_column(String(64))
    display_name: Mapped[str] = mapped_column(String(100))
    followed: Mapped[bool] = mapped_column(Boolean, default=True)
    # The last webhook timestamp sent for this chat: events stay in order even when the clock moves back.
    last_event_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime]


class SimMessage(Base):
    """One bubble in a simulated chat (a user's 1:1 chat or a group), in arrival order."""

    __tablename__ = "sim_messages"
    __table_args__ = (Index("ix_sim_messages_chat", "office_id", "chat_id", "id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    office_id: Mapped[str] = mapped_column(String(32))
    chat_id: Mapped[str] = mapped_column(String(64))
    sender: Mapped[str] = mapped_column(String(8))   # bot | user | system
    kind: Mapped[str] = mapped_column(String(16))    # reply | push | multicast | broadcast | narrowcast | user | event
    message: Mapped[dict] = mapped_column(JSON)      # a LINE message object (or an event note)
    line_message_id: Mapped[str | None] = mapped_column(String(32), default=None)
    delivered: Mapped[bool] = mapped_column(Boolean, default=True)  # False: sent to a user who blocked
    created_at: Mapped[datetime]


class SimReplyToken(Base):
    """A reply token the simulator put in an event, and the chat it came from."""

    __tablename__ = "sim_reply_tokens"
    token: Mapped[str] = mapped_column(String(64), primary_key=True)
    office_id: Mapped[str] = mapped_column(String(32))
    chat_id: Mapped[str] = mapped_column(String(64))
    issued_at: Mapped[datetime] = mapped_column(index=True)  # real time: LINE's one-minute rule
    used_at: Mapped[datetime | None] = mapped_column(default=None)


class SimRequest(Base):
    """One accepted send call: its retry key (unique per channel), cost against the quota, sent ids."""

    __tablename__ = "sim_requests"
    __table_args__ = (
        UniqueConstraint("office_id", "retry_key"),
        Index("ix_sim_requests_month", "office_id", "created_at"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    office_id: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(16))
    request_id: Mapped[str] = mapped_column(String(36))
    retry_key: Mapped[str | None] = mapped_column(String(36), default=None)
    cost: Mapped[int] = mapped_column(Integer, default=0)
    sent: Mapped[dict] = mapped_column(JSON)  # {"sentMessages": [...]}
    created_at: Mapped[datetime]


class SimRichMenu(Base):
    """A rich menu created through the fake API, with its picture once uploaded (data host)."""

    __tablename__ = "sim_rich_menus"
    rich_menu_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    office_id: Mapped[str] = mapped_column(String(32), index=True)
    menu: Mapped[dict] = mapped_column(JSON)
    image: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    content_type: Mapped[str | None] = mapped_column(String(32), default=None)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime]


class SimRichMenuLink(Base):
    """A rich menu linked to one user (it wins over the default)."""

    __tablename__ = "sim_rich_menu_links"
    office_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    rich_menu_id: Mapped[str] = mapped_column(String(64))
