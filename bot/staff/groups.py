"""The groups the bot has been in (LINE's join and leave events), and whether the staff group still has it."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.models import OutboxMessage, StaffGroupSighting


def _sighting(session: Session, office_id: str, group_id: str) -> StaffGroupSighting | None:
    return session.scalar(select(StaffGroupSighting).where(
        StaffGroupSighting.office_id == office_id, StaffGroupSighting.group_id == group_id))


def joined(session: Session, office_id: str, group_id: str, at: datetime) -> bool:
    """The bot was invited into the group (again) at `at` (the event's time): one row per group, its leaving
    forgotten. False, changing nothing, for a join older than what is recorded (LINE delivered it late, after the
    leave that followed it or a later join)."""
    sighting = _sighting(session, office_id, group_id)
    if sighting is None:
        session.add(StaffGroupSighting(office_id=office_id, group_id=group_id, joined_at=at))
        return True
    if at < (sighting.left_at or sighting.joined_at):
        return False
    sighting.joined_at, sighting.left_at = at, None
    return True


def left(session: Session, office_id: str, group_id: str, at: datetime) -> bool:
    """The bot was removed from the group at `at` (the event's time; a group never seen joining stays unrecorded).
    False, changing nothing, for a leave older than the latest join (delivered late: the bot is back)."""
    sighting = _sighting(session, office_id, group_id)
    if sighting is None:
        return True
    if at < sighting.joined_at:
        return False
    if sighting.left_at is None or sighting.left_at < at:
        sighting.left_at = at
    return True


def left_at(session: Session, office_id: str, group_id: str) -> datetime | None:
    """When the bot was removed from the group, if it has not been invited back since."""
    return session.scalar(select(StaffGroupSighting.left_at).where(
        StaffGroupSighting.office_id == office_id, StaffGroupSighting.group_id == group_id))


def out_of(session: Session, office_id: str, group_id: str) -> bool:
    """Has the bot been removed from the group and not invited back since (nothing can be pushed there)?"""
    return left_at(session, office_id, group_id) is not None


def refused_since(session: Session, office_id: str, group_id: str) -> datetime | None:
    """When LINE began refusing what is pushed to the group for good (a 4xx: the card is `failed`), if nothing reached
    the group since (a push or a reply) and the bot was not invited into it since: the bot was removed while its leave
    event was not handled (the webhook down), or the configured id names no group the bot is in. No leave event tells
    staff so; None while the group's messages go."""
    to_group = (OutboxMessage.office_id == office_id, OutboxMessage.recipient == group_id)
    last_sent = select(func.coalesce(func.max(OutboxMessage.id), 0)).where(
        *to_group, OutboxMessage.status == "sent").scalar_subquery()
    query = select(func.min(OutboxMessage.created_at)).where(
        *to_group, OutboxMessage.kind == "push", OutboxMessage.status == "failed",
        OutboxMessage.last_error.like("http 4%"), OutboxMessage.id > last_sent)
    sighting = _sighting(session, office_id, group_id)
    if sighting is not None:
        query = query.where(OutboxMessage.created_at >= sighting.joined_at)
    return session.scalar(query)


def sightings(session: Session, office_id: str) -> list[StaffGroupSighting]:
    """The office's groups, the latest joined first."""
    return list(session.scalars(select(StaffGroupSighting).where(StaffGroupSighting.office_id == office_id)
                                .order_by(StaffGroupSighting.joined_at.desc())))
