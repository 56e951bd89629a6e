"""One webhook event, one transaction: dedupe, lock the conversation, run the dialog, queue replies."""
from __future__ import annotations

import logging
from datetime import datetime

from linebot.v3.webhooks import (
    AudioMessageContent,
    FileMessageContent,
    FollowEvent,
    ImageMessageContent,
    JoinEvent,
    LeaveEvent,
    LocationMessageContent,
    MessageEvent,
    PostbackEvent,
    StickerMessageContent,
    TextMessageContent,
    UnfollowEvent,
    VideoMessageContent,
)
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from bot import outbox
from bot.clock import TOKYO
from bot.models import Conversation, ProcessedEvent, StaffGroupSighting
from bot.ports import SessionPorts
from dialogs import engine
from dialogs.effects import LeaveGroup, NotifyStaff, Say
from dialogs.inputs import Incoming
from dialogs.machine import Talk

log = logging.getLogger(__name__)

MEDIA = {
    ImageMessageContent: "image",
    VideoMessageContent: "video",
    AudioMessageContent: "audio",
    FileMessageContent: "file",
}


def event_time(event) -> datetime:
    return datetime.fromtimestamp(event.timestamp / 1000, tz=TOKYO)


def to_incoming(event) -> Incoming:
    """The dialog's view of an SDK event."""
    base = dict(event_id=event.webhook_event_id, at=event_time(event))
    if isinstance(event, MessageEvent):
        message = event.message
        if isinstance(message, TextMessageContent):
            return Incoming(kind="text", text=message.text or "", **base)
        if isinstance(message, StickerMessageContent):
            return Incoming(kind="sticker", **base)
        if isinstance(message, LocationMessageContent):
            return Incoming(kind="location", **base)
        media = next((name for cls, name in MEDIA.items() if isinstance(message, cls)), "")
        return Incoming(kind="media", media_type=media or "other", **base)
    if isinstance(event, PostbackEvent):
        params = {k: str(v) for k, v in (event.postback.params or {}).items() if v is not None}
        return Incoming(kind="postback", data=event.postback.data or "", params=params, **base)
    if isinstance(event, FollowEvent):
        return Incoming(kind="follow", **base)
    if isinstance(event, UnfollowEvent):
        return Incoming(kind="unfollow", **base)
    return Incoming(kind="other", **base)


def _insert(session: Session):
    return postgresql.insert if session.bind.dialect.name == "postgresql" else sqlite.insert


class Dispatcher:
    """Handles webhook events; each in its own transaction, replies queued in the outbox."""

    def __init__(self, runtime):
        self.rt = runtime

    def handle(self, office, event) -> list[int]:
        """Handle one event; returns the ids of reply rows to send right after the commit."""
        event_id = getattr(event, "webhook_event_id", None)
        if not event_id:
            return []
        with self.rt.db.transaction() as session:
            now = self.rt.clock.now()
            if not self._claim(session, office.id, event_id, now):
                log.info("event=%s duplicate, skipped", event_id)
                return []
            if getattr(event, "mode", "active") == "standby":
                log.info("event=%s standby, nothing sent", event_id)
                return []
            source = getattr(event, "source", None)
            source_type = getattr(source, "type", None)
            if source_type in ("group", "room"):
                return self._group_event(session, office, event, now)
            user_id = getattr(source, "user_id", None)
            if source_type != "user" or not user_id:
                return []
            rows = self._user_event(session, office, event, user_id, now)
            session.flush()
            return [r.id for r in rows if r.kind == "reply"]

    # -- users --------------------------------------------------------------------------------
    def _user_event(self, session: Session, office, event, user_id: str, now: datetime):
        conv = self._conversation(session, office.id, user_id, now)
        inp = to_incoming(event)
        timestamp = int(event.timestamp)
        stale = timestamp < conv.last_event_ms
        if stale:
            inp = Incoming(**{**inp.__dict__, "stale": True})
        else:
            conv.last_event_ms = timestamp
        if inp.kind == "other":
            log.info("event=%s type=%s ignored", inp.event_id, getattr(event, "type", "?"))
            return []
        ports = SessionPorts(session, self.rt, office, conv, now, event_id=inp.event_id)
        talk = Talk(state=conv.state, context=dict(conv.context or {}), office=office, ports=ports, now=now,
                    labels=self.rt.button_labels(conv.language), misses=conv.misses,
                    last_active=conv.last_active_at, language=conv.language)
        before = conv.state
        routed = engine.handle(talk, inp, self.rt.vocabulary(conv.language))
        conv.state, conv.context, conv.misses = talk.state, talk.context, talk.misses
        conv.language = talk.language
        if inp.kind not in ("unfollow",):
            conv.last_active_at = now
        log.info("event=%s kind=%s trigger=%s state=%s->%s", inp.event_id, inp.kind, routed.trigger,
                 before, conv.state)
        reply_token = getattr(event, "reply_token", None)
        return self.queue_effects(session, office, conv, talk.effects, now, reply_token, inp.event_id)

    def queue_effects(self, session: Session, office, conv: Conversation, effects, now: datetime,
                      reply_token: str | None, event_id: str | None):
        """Render the effects of one event into outbox rows (same transaction)."""
        messages: list[dict] = []
        for effect in effects:
            if isinstance(effect, Say):
                vars = {**self.rt.template_globals(office, conv), **effect.vars}
                messages.extend(self.rt.renderer.messages(conv.language, effect.template, vars, effect.choices))
            elif isinstance(effect, NotifyStaff):
                self.rt.notify_staff(session, office, effect.kind, effect.booking_id, now)
            elif isinstance(effect, LeaveGroup):
                outbox.add(session, office=office.id, kind="leave_group", recipient=effect.group_id, now=now)
        if conv.pending_notice and reply_token and messages and len(messages) < outbox.MAX_REPLY_MESSAGES:
            messages.extend(self._terms_notice(session, office, conv))
        return outbox.queue_to_user(session, office=office.id, user_id=conv.line_user_id, messages=messages,
                                    now=now, reply_token=reply_token, event_id=event_id,
                                    may_push=conv.followed)

    def _terms_notice(self, session: Session, office, conv: Conversation) -> list[dict]:
        """A terms notice sent `next-message` style: inside this (free) reply, once."""
        from bot.services import terms

        version, conv.pending_notice = conv.pending_notice, None
        row = terms.get(session, office.id, version)
        vars = {**self.rt.template_globals(office, conv), "version": version, "summary": row.summary if row else ""}
        return self.rt.renderer.messages(conv.language, "terms_updated", vars)

    # -- groups -------------------------------------------------------------------------------
    def _group_event(self, session: Session, office, event, now: datetime):
        group_id = getattr(event.source, "group_id", None) or getattr(event.source, "room_id", None)
        staff_group = self.rt.config.staff_group_id(office.id)
        if isinstance(event, JoinEvent):
            sighting = session.scalar(select(StaffGroupSighting).where(
                StaffGroupSighting.office_id == office.id, StaffGroupSighting.group_id == group_id))
            if sighting is None:
                session.add(StaffGroupSighting(office_id=office.id, group_id=group_id, joined_at=now))
            else:
                sighting.joined_at, sighting.left_at = now, None
            log.info("event=%s join recorded", event.webhook_event_id)
            if staff_group and group_id != staff_group:
                outbox.add(session, office=office.id, kind="leave_group", recipient=group_id, now=now)
            return []
        if isinstance(event, LeaveEvent):
            sighting = session.scalar(select(StaffGroupSighting).where(
                StaffGroupSighting.office_id == office.id, StaffGroupSighting.group_id == group_id))
            if sighting is not None:
                sighting.left_at = now
            return []
        if staff_group and group_id == staff_group and isinstance(event, PostbackEvent):
            return self.rt.staff_postback(session, office, event, now)
        return []

    # -- rows ---------------------------------------------------------------------------------
    @staticmethod
    def _claim(session: Session, office_id: str, event_id: str, now: datetime) -> bool:
        stmt = _insert(session)(ProcessedEvent).values(
            webhook_event_id=event_id, office_id=office_id, received_at=now
        ).on_conflict_do_nothing(index_elements=["webhook_event_id"]).returning(ProcessedEvent.webhook_event_id)
        return session.execute(stmt).scalar() is not None

    @staticmethod
    def _conversation(session: Session, office_id: str, user_id: str, now: datetime) -> Conversation:
        stmt = _insert(session)(Conversation).values(
            office_id=office_id, line_user_id=user_id, state="idle", context={}, step=0, misses=0,
            language="ja", followed=True, booking_blocked=False, last_event_ms=0, created_at=now,
        ).on_conflict_do_nothing(index_elements=["office_id", "line_user_id"])
        session.execute(stmt)
        query = select(Conversation).where(Conversation.office_id == office_id,
                                           Conversation.line_user_id == user_id)
        if session.bind.dialect.name == "postgresql":
            query = query.with_for_update()
        return session.scalars(query).one()
