"""The simulator's records: chats, users, reply tokens, retry keys, quota and rich menus.

Functions take a SQLAlchemy session and never commit: the views own the transaction.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Iterable

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from bot.models import AppSetting
from bot.simulator.models import SimMessage, SimReplyToken, SimRequest, SimRichMenu, SimRichMenuLink, SimUser

REPLY_TOKEN_LIFETIME = timedelta(minutes=1)
MAX_POLL = 200
QUOTA_KEY = "sim_quota_limit_{office}"
DEFAULT_GROUP_SIZE = 3


# -- users ------------------------------------------------------------------------------------------

def add_user(session: Session, office_id: str, user_id: str, display_name: str, now: datetime) -> SimUser:
    user = SimUser(office_id=office_id, user_id=user_id, display_name=display_name, followed=True,
                   last_event_ms=0, created_at=now)
    session.add(user)
    session.flush()
    return user


def users(session: Session, office_id: str) -> list[SimUser]:
    return list(session.scalars(select(SimUser).where(SimUser.office_id == office_id).order_by(SimUser.id)))


def user(session: Session, office_id: str, user_id: str) -> SimUser | None:
    return session.scalar(select(SimUser).where(SimUser.office_id == office_id, SimUser.user_id == user_id))


def count_users(session: Session, office_id: str) -> int:
    return session.scalar(select(func.count()).select_from(SimUser).where(SimUser.office_id == office_id)) or 0


def followers(session: Session, office_id: str) -> list[str]:
    return list(session.scalars(select(SimUser.user_id).where(
        SimUser.office_id == office_id, SimUser.followed.is_(True)).order_by(SimUser.id)))


def next_timestamp(session: Session, office_id: str, chat_id: str, now_ms: int) -> int:
    """The event time for a chat: the app clock, but never before the chat's previous event."""
    row = user(session, office_id, chat_id)
    if row is None:
        return now_ms
    stamp = max(now_ms, row.last_event_ms + 1)
    row.last_event_ms = stamp
    return stamp


def set_followed(session: Session, office_id: str, user_id: str, followed: bool) -> None:
    session.execute(update(SimUser).where(SimUser.office_id == office_id, SimUser.user_id == user_id)
                    .values(followed=followed))


# -- chats ------------------------------------------------------------------------------------------

def add_message(session: Session, office_id: str, chat_id: str, sender: str, kind: str, message: dict,
                now: datetime, line_message_id: str | None = None, delivered: bool = True) -> SimMessage:
    row = SimMessage(office_id=office_id, chat_id=chat_id, sender=sender, kind=kind, message=message,
                     line_message_id=line_message_id, delivered=delivered, created_at=now)
    session.add(row)
    return row


def messages_after(session: Session, office_id: str, chat_id: str, after_id: int) -> list[SimMessage]:
    return list(session.scalars(select(SimMessage).where(
        SimMessage.office_id == office_id, SimMessage.chat_id == chat_id, SimMessage.id > after_id,
    ).order_by(SimMessage.id).limit(MAX_POLL)))


def is_delivered_to(session: Session, office_id: str, chat_id: str) -> bool:
    """A message reaches a user unless they blocked the account (groups always receive)."""
    row = user(session, office_id, chat_id)
    return row is None or row.followed


# -- reply tokens -----------------------------------------------------------------------------------

def issue_reply_token(session: Session, office_id: str, chat_id: str, token: str, real_now: datetime) -> None:
    session.add(SimReplyToken(token=token, office_id=office_id, chat_id=chat_id, issued_at=real_now))


def use_reply_token(session: Session, office_id: str, token: str, real_now: datetime) -> str | None:
    """The chat a valid token belongs to, marking it used (single use, one minute); None if invalid."""
    result = session.execute(update(SimReplyToken).where(
        SimReplyToken.token == token, SimReplyToken.office_id == office_id, SimReplyToken.used_at.is_(None),
        SimReplyToken.issued_at > real_now - REPLY_TOKEN_LIFETIME,
    ).values(used_at=real_now))
    if result.rowcount != 1:
        return None
    return session.scalar(select(SimReplyToken.chat_id).where(SimReplyToken.token == token))


# -- accepted requests, retry keys and quota --------------------------------------------------------

def accepted_request(session: Session, office_id: str, retry_key: str) -> SimRequest | None:
    return session.scalar(select(SimRequest).where(SimRequest.office_id == office_id,
                                                   SimRequest.retry_key == retry_key))


def request_by_id(session: Session, office_id: str, request_id: str) -> SimRequest | None:
    return session.scalar(select(SimRequest).where(SimRequest.office_id == office_id,
                                                   SimRequest.request_id == request_id))


def record_request(session: Session, office_id: str, kind: str, request_id: str, retry_key: str | None,
                   cost: int, sent: list[dict], now: datetime) -> None:
    """Accept a send; a repeated retry key violates the unique constraint at flush (another process won)."""
    session.add(SimRequest(office_id=office_id, kind=kind, request_id=request_id, retry_key=retry_key,
                           cost=cost, sent={"sentMessages": sent}, created_at=now))
    session.flush()


def month_start(now: datetime) -> datetime:
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def consumption(session: Session, office_id: str, now: datetime) -> int:
    """Messages counted against this month's quota (app clock, Asia/Tokyo)."""
    return session.scalar(select(func.coalesce(func.sum(SimRequest.cost), 0)).where(
        SimRequest.office_id == office_id, SimRequest.created_at >= month_start(now))) or 0


def quota_limit(session: Session, office_id: str) -> int | None:
    value = session.scalar(select(AppSetting.value).where(AppSetting.key == QUOTA_KEY.format(office=office_id)))
    return int(value) if value else None


def set_quota_limit(session: Session, office_id: str, limit: int | None) -> None:
    key = QUOTA_KEY.format(office=office_id)
    row = session.get(AppSetting, key)
    if limit is None:
        if row is not None:
            session.delete(row)
    elif row is None:
        session.add(AppSetting(key=key, value=str(limit)))
    else:
        row.value = str(limit)


def cost_of(chat_id: str) -> int:
    """A push counts once per recipient: a group counts its members."""
    return DEFAULT_GROUP_SIZE if chat_id[:1] in ("C", "R") else 1


# -- rich menus -------------------------------------------------------------------------------------

def create_rich_menu(session: Session, office_id: str, menu_id: str, menu: dict, now: datetime) -> None:
    session.add(SimRichMenu(rich_menu_id=menu_id, office_id=office_id, menu=menu, created_at=now))


def rich_menu(session: Session, office_id: str, menu_id: str) -> SimRichMenu | None:
    row = session.get(SimRichMenu, menu_id)
    return row if row is not None and row.office_id == office_id else None


def rich_menus(session: Session, office_id: str) -> list[SimRichMenu]:
    return list(session.scalars(select(SimRichMenu).where(SimRichMenu.office_id == office_id)
                                .order_by(SimRichMenu.created_at)))


def delete_rich_menu(session: Session, office_id: str, menu_id: str) -> None:
    session.execute(delete(SimRichMenuLink).where(SimRichMenuLink.office_id == office_id,
                                                  SimRichMenuLink.rich_menu_id == menu_id))
    session.execute(delete(SimRichMenu).where(SimRichMenu.office_id == office_id,
                                              SimRichMenu.rich_menu_id == menu_id))


def set_default_rich_menu(session: Session, office_id: str, menu_id: str | None) -> None:
    session.execute(update(SimRichMenu).where(SimRichMenu.office_id == office_id).values(
        is_default=SimRichMenu.rich_menu_id == menu_id if menu_id else False))


def default_rich_menu_id(session: Session, office_id: str) -> str | None:
    return session.scalar(select(SimRichMenu.rich_menu_id).where(
        SimRichMenu.office_id == office_id, SimRichMenu.is_default.is_(True)))


def link_rich_menu(session: Session, office_id: str, user_id: str, menu_id: str | None) -> None:
    session.execute(delete(SimRichMenuLink).where(SimRichMenuLink.office_id == office_id,
                                                  SimRichMenuLink.user_id == user_id))
    if menu_id:
        session.add(SimRichMenuLink(office_id=office_id, user_id=user_id, rich_menu_id=menu_id))


def linked_rich_menu_id(session: Session, office_id: str, user_id: str) -> str | None:
    return session.scalar(select(SimRichMenuLink.rich_menu_id).where(
        SimRichMenuLink.office_id == office_id, SimRichMenuLink.user_id == user_id))


def rich_menu_for(session: Session, office_id: str, user_id: str | None) -> SimRichMenu | None:
    """What the user sees: their linked menu, else the default (only menus with a picture show)."""
    menu_id = (linked_rich_menu_id(session, office_id, user_id) if user_id else None) \
        or default_rich_menu_id(session, office_id)
    row = rich_menu(session, office_id, menu_id) if menu_id else None
    return row if row is not None and row.image is not None else None


def store_messages(session: Session, office_id: str, chat_ids: Iterable[str], kind: str, messages: list[dict],
                   sent: list[dict], now: datetime) -> None:
    """Put messages into each chat (sent ids only for single-chat sends)."""
    for chat_id in chat_ids:
        delivered = is_delivered_to(session, office_id, chat_id)
        for i, message in enumerate(messages):
            line_id = sent[i]["id"] if i < len(sent) else None
            add_message(session, office_id, chat_id, "bot", kind, message, now, line_id, delivered)
