"""One webhook event, one transaction: dedupe, lock the conversation, run the dialog, queue replies."""
from __future__ import annotations

import functools
import logging
import time
from datetime import datetime, timedelta

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
from sqlalchemy import bindparam, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from bot import event_rows, outbox, ratelimit
from bot.clock import TOKYO
from bot.db import describe_error, is_disconnect, is_lock_timeout
from bot.models import Conversation, OutboxMessage
from bot.ports import SessionPorts
from bot.render import LANGUAGES, first_offered_slot
from bot.services import staleness
from bot.staff import groups as staff_groups
from dialogs import engine
from dialogs.effects import LeaveGroup, NotifyStaff, Say
from dialogs.inputs import Incoming
from dialogs.machine import Talk, fire
from dialogs.router import normalise

log = logging.getLogger(__name__)

MEDIA = {
    ImageMessageContent: "image",
    VideoMessageContent: "video",
    AudioMessageContent: "audio",
    FileMessageContent: "file",
}


def event_time(event) -> datetime:
    return datetime.fromtimestamp(event.timestamp / 1000, tz=TOKYO)


def older_than_its_marks(office, event, now: datetime) -> bool:
    """An event from before the oldest dedupe mark kept (`retention.dedupe_days`): whether it was handled
    cannot be known any more, so a signed body captured once and sent again later must not count."""
    return event_time(event) < now - timedelta(days=office.retention_rules()["dedupe_days"])


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
        return Incoming(kind="follow", unblocked=bool(getattr(event.follow, "is_unblocked", False)), **base)
    if isinstance(event, UnfollowEvent):
        return Incoming(kind="unfollow", **base)
    return Incoming(kind="other", **base)


@functools.cache
def _conversation_query(dialect: str):
    """The user's conversation as an ORM object (for an apology), locked where the database has row locks."""
    query = select(Conversation).where(Conversation.office_id == bindparam("office_id"),
                                       Conversation.line_user_id == bindparam("user_id"))
    return query.with_for_update() if dialect == "postgresql" else query


def talk_of(rt, office, conv, ports: SessionPorts, now: datetime) -> Talk:
    """The dialog machine's model for one step of the conversation row `conv` (a record or an ORM object)."""
    return Talk(state=conv.state, context=dict(conv.context or {}), office=office, ports=ports, now=now,
                labels=rt.button_labels(conv.language), misses=conv.misses, last_active=conv.last_active_at,
                language=conv.language,
                other_labels=tuple(rt.button_labels(lang) for lang in LANGUAGES if lang != conv.language))


def complete_form(session: Session, rt, office, conversation_id: int, now: datetime) -> None:
    """The details form was sent: the conversation moves on through the dialog machine (nothing more to ask),
    in the caller's transaction."""
    conv = session.get(Conversation, conversation_id)
    talk = talk_of(rt, office, conv, SessionPorts(session, rt, office, conv, now), now)
    if fire(talk, "complete_form"):
        conv.state, conv.context = talk.state, talk.context


class Dispatcher:
    """Handles webhook events; each in its own transaction, replies queued in the outbox."""

    def __init__(self, runtime):
        self.rt = runtime
        self.direct_seconds = 0.0   # spent on apologies sent straight to LINE: part of the request's reply budget
        self.reserved: list[int] = []   # the ids of the replies the last event's transaction reserved

    def handle(self, office, event) -> list:
        """Handle one event; returns the reply rows (or ids) to send right after the commit.

        A connection lost under the event (the database restarted) rolls it back whole, so it is run
        once more on a new connection.
        """
        event_id = getattr(event, "webhook_event_id", None)
        if not event_id:
            return []
        try:
            try:
                return self._handle(office, event, event_id)
            except DBAPIError as error:
                if is_lock_timeout(error):
                    # A row it needs was held past the lock timeout (two staff deciding one request at once, a
                    # busy moment): rolled back whole, run once more; the holder has usually finished by now.
                    log.warning("event=%s waited too long for a row lock; running it again", event_id)
                    return self._handle(office, event, event_id)
                if not is_disconnect(error):
                    raise
                reserved = self.reserved
                log.warning("event=%s database connection lost; running it again", event_id)
                # Lost while committing, the first run may have committed: the second then finds the event
                # handled, and the replies the first reserved are still to send.
                try:
                    return self._handle(office, event, event_id) or self._unsent_replies(event_id, reserved)
                except BaseException:
                    self.reserved = reserved   # the apology sends them if the first run's commit landed
                    raise
        except event_rows.ClaimedElsewhere:
            log.info("event=%s being handled by another delivery, skipped", event_id)
            return []

    def _unsent_replies(self, event_id: str, reserved: list[int]) -> list:
        if not reserved:
            return []
        with self.rt.db.transaction() as session:
            return self._release_reserved(session, event_id, reserved, self.rt.clock.now())

    @staticmethod
    def _release_reserved(session: Session, event_id: str, reserved: list[int], now: datetime) -> list:
        """The replies a run of the event reserved, if its commit landed (`outbox.release_unsent_replies`)."""
        ids = outbox.release_unsent_replies(session, event_id, reserved, now)
        if ids:
            log.warning("event=%s was committed before the connection was lost; its replies go now", event_id)
        return ids

    def _handle(self, office, event, event_id: str) -> list:
        self.reserved = []
        with event_rows.transaction(self.rt.db) as tx:
            replies = self._claimed(tx, office, event, event_id)
            # Known before the commit: a commit whose answer the lost connection took leaves them to send.
            self.reserved = [row.id for row in replies if getattr(row, "id", None) is not None]
        return replies

    def _claimed(self, tx: event_rows.EventTransaction, office, event, event_id: str) -> list:
        now = self.rt.clock.now()
        if older_than_its_marks(office, event, now):
            log.warning("event=%s older than its dedupe mark would be kept: ignored as a replay", event_id)
            return []
        if not event_rows.claim(tx.conn, office.id, event_id, now, happened_at=event_time(event)):
            log.info("event=%s duplicate, skipped", event_id)
            return []
        if getattr(event, "mode", "active") == "standby":
            self._standby(tx, office, event, event_id)
            return []
        source = getattr(event, "source", None)
        source_type = getattr(source, "type", None)
        if source_type in ("group", "room"):
            return self._group_event(tx.session, office, event, now)
        user_id = getattr(source, "user_id", None)
        if source_type != "user" or not user_id:
            return []
        return self._user_event(tx, office, event, user_id, now)

    @staticmethod
    def _standby(tx: event_rows.EventTransaction, office, event, event_id: str) -> None:
        """Another channel (a module) answers this chat: nothing is sent. A block or an unblock is still the
        user's own fact about the account: `followed` follows it, so that a confirmation is not pushed to a user
        who blocked meanwhile (staff are asked to phone instead), nor withheld from one who unblocked. Only a
        conversation there is already: a follow in standby starts none."""
        source = getattr(event, "source", None)
        user_id = getattr(source, "user_id", None)
        if not isinstance(event, (FollowEvent, UnfollowEvent)) or getattr(source, "type", None) != "user" \
                or not user_id:
            log.info("event=%s standby, nothing sent", event_id)
            return
        conv = event_rows.existing_conversation(tx.conn, office.id, user_id)
        timestamp = int(event.timestamp)
        if conv is None or timestamp < conv.last_event_ms:
            log.info("event=%s standby, nothing sent or changed", event_id)
            return
        conv.followed, conv.last_event_ms = isinstance(event, FollowEvent), timestamp
        event_rows.save(tx.conn, conv)
        log.info("event=%s standby kind=%s recorded, nothing sent", event_id, event.type)

    def apologise(self, office, event) -> list:
        """An event failed and was rolled back: tell the user, or the staff member who tapped a card's button in
        the staff group (not a group's chatter), so nobody waits for an answer that will not come. Queued like
        any reply; if the database is what failed, sent straight away (nothing can be recorded then) within
        what is left of the request's reply budget: a body of several events must still be acknowledged in time
        when LINE is slow too. Never raises."""
        source = getattr(event, "source", None)
        source_type = getattr(source, "type", None)
        staff_tap = (source_type == "group" and isinstance(event, PostbackEvent)
                     and getattr(source, "group_id", None) == self.rt.config.staff_group_id(office.id))
        chat_id = getattr(source, "group_id", None) if staff_tap else (
            getattr(source, "user_id", None) if source_type == "user" else None)
        reply_token = getattr(event, "reply_token", None)
        if not chat_id or not reply_token:
            return []
        # The staff group's answer is in Japanese, like its cards; a user's in their language, saying what was not
        # taken (a message, a tap, or a friend added: then no greeting went, so it names the word that books).
        what = "button" if isinstance(event, PostbackEvent) else "follow" if isinstance(event, FollowEvent) \
            else "message"
        template, variables = ("trouble", {"what": what})
        if staff_tap:
            template, variables = "staff_group_reply", {"office": office, "outcome": "failed", "dashboard_url": None}
        try:
            with self.rt.db.transaction() as session:
                now = self.rt.clock.now()
                if self._answered_elsewhere(session, office, event, now):
                    log.info("event=%s answered by another delivery: no apology",
                             getattr(event, "webhook_event_id", "?"))
                    return self._unsent_of_a_landed_commit(session, event, now)
                conv = None if staff_tap else session.scalars(
                    _conversation_query(session.bind.dialect.name),
                    {"office_id": office.id, "user_id": chat_id}).one_or_none()
                language = conv.language if conv is not None else "ja"
                messages = self.rt.renderer.messages(language, template,
                                                     {**self.rt.template_globals(office, conv), **variables})
                rows = outbox.queue_to_user(session, office=office.id, user_id=chat_id, messages=messages, now=now,
                                            reply_token=reply_token, purpose="trouble", may_push=False)
                replies = outbox.reserve_replies(rows, now)
                session.flush()
                return replies
        except Exception as error:  # noqa: BLE001 - the database may be down: answer without it
            log.error("event=%s apology not queued (%s); replying directly",
                      getattr(event, "webhook_event_id", "?"), describe_error(error))
        remaining = self.rt.config.reply_budget_seconds - self.direct_seconds
        if remaining <= 0.05:
            log.error("event=%s apology not sent: the reply budget is spent", getattr(event, "webhook_event_id", "?"))
            return []
        started = time.monotonic()
        try:
            messages = self.rt.renderer.messages("ja", template,
                                                 {**self.rt.template_globals(office, None), **variables})
            result = self.rt.line.reply(office.id, reply_token, messages, timeout=remaining)
            log.info("event=%s apology sent directly outcome=%s", getattr(event, "webhook_event_id", "?"),
                     result.outcome)
        except Exception as error:  # noqa: BLE001 - nothing more can be done for this event
            log.error("event=%s apology failed: %s", getattr(event, "webhook_event_id", "?"), describe_error(error))
        finally:
            self.direct_seconds += time.monotonic() - started
        return []

    def _unsent_of_a_landed_commit(self, session: Session, event, now: datetime) -> list:
        """The event is handled: if by this delivery's first run, whose commit landed as the connection was lost
        (the run again failed too), the replies it reserved go now; none when another delivery handled it."""
        reserved, self.reserved = self.reserved, []
        event_id = getattr(event, "webhook_event_id", None)
        return self._release_reserved(session, event_id, reserved, now) if reserved and event_id else []

    @staticmethod
    def _answered_elsewhere(session: Session, office, event, now: datetime) -> bool:
        """Another delivery of the same event (LINE sent it again meanwhile) has claimed it, committed or still
        running: that one answers the user, and an apology on the same reply token would race its answer.
        Probed by claiming the event in a savepoint rolled back at once: a failed event stays unclaimed, so
        LINE's redelivery of it is handled like any event."""
        event_id = getattr(event, "webhook_event_id", None)
        if not event_id:
            return False
        savepoint = session.begin_nested()
        try:
            return not event_rows.claim(session.connection(), office.id, event_id, now)
        except event_rows.ClaimedElsewhere:
            return True
        finally:
            savepoint.rollback()

    # -- users --------------------------------------------------------------------------------
    def _user_event(self, tx: event_rows.EventTransaction, office, event, user_id: str, now: datetime) -> list:
        """The dialog's step for one user event; returns its replies, reserved for the web process."""
        inp = to_incoming(event)
        if inp.kind == "other":
            # A type this version does not know (LINE adds some): acknowledged, nothing else.
            log.info("event=%s type=%s ignored", inp.event_id, getattr(event, "type", "?"))
            return []
        conv = event_rows.conversation(tx.conn, office.id, user_id, now)
        reply_token = getattr(event, "reply_token", None)
        timestamp = int(event.timestamp)
        stale = timestamp < conv.last_event_ms
        if stale and inp.kind in ("follow", "unfollow"):
            # A newer event already tells whether the user follows: an older one changes nothing.
            log.info("event=%s kind=%s stale, ignored", inp.event_id, inp.kind)
            return []
        if not stale and not conv.followed and inp.kind != "unfollow":
            # LINE takes a message or a tap only from a user who follows the account: an unblock whose follow
            # event was lost (the database down as it came: acknowledged, never redelivered) is read from it, so
            # that what is pushed to them later is not skipped as to a user who blocked.
            log.info("event=%s kind=%s from a user marked unfollowed: following again", inp.event_id, inp.kind)
            conv.followed = True
        verdict = None
        effects = None
        if inp.kind not in ratelimit.EXEMPT_KINDS:
            verdict = ratelimit.admit(conv, now, can_answer=bool(reply_token))
            if not verdict.admitted:  # a flood: acknowledged, answered once per window, the dialog untouched
                verdict.apply(conv)
                log.info("event=%s kind=%s rate limited", inp.event_id, inp.kind)
                effects = ratelimit.effects(verdict)
        if effects is None:
            effects = self._dialog(tx, office, conv, inp, now, stale)
            if verdict is not None:
                verdict.apply(conv)
            if not stale:
                conv.last_event_ms = timestamp  # set with the rest: one UPDATE of the row per event, at the end
            if inp.kind not in ("unfollow",):
                conv.last_active_at = now
        rows = self.queue_effects(tx.session, office, conv, effects, now, reply_token, inp.event_id)
        replies = outbox.reserve_replies(rows, now)  # claimed in this commit: no claim of their own
        tx.flush()  # what the services queued is written first, as before
        event_rows.save(tx.conn, conv)
        event_rows.insert_outbox(tx.conn, rows)
        return replies

    def _dialog(self, tx: event_rows.EventTransaction, office, conv, inp: Incoming, now: datetime,
                stale: bool) -> list:
        """Run the dialog for an admitted event; the conversation takes its new state, the effects are returned."""
        if stale:
            inp = Incoming(**{**inp.__dict__, "stale": True})
        talk = talk_of(self.rt, office, conv, SessionPorts(tx.session, self.rt, office, conv, now,
                                                           event_id=inp.event_id), now)
        before = conv.state
        routed = engine.handle(talk, inp, self.rt.vocabulary(conv.language))
        conv.state, conv.context, conv.misses = talk.state, talk.context, talk.misses
        conv.language = talk.language
        log.info("event=%s kind=%s trigger=%s state=%s->%s", inp.event_id, inp.kind, routed.trigger,
                 before, conv.state)
        return talk.effects

    def queue_effects(self, session: Session, office, conv, effects, now: datetime,
                      reply_token: str | None, event_id: str | None) -> list[OutboxMessage]:
        """Render the effects of one event; staff notices and group calls are queued in the session, the rows
        to the user are returned for the caller to write (same transaction)."""
        messages: list[dict] = []
        example = {"example_slot": first_offered_slot(effects)}   # "send e.g. 12/7 14:00": a slot on offer
        for effect in effects:
            if isinstance(effect, Say):
                vars = {**self.rt.template_globals(office, conv), **example, **effect.vars}
                messages.extend(self.rt.renderer.messages(conv.language, effect.template, vars, effect.choices))
            elif isinstance(effect, NotifyStaff):
                self.rt.notify_staff(session, office, effect.kind, effect.booking_id, now)
            elif isinstance(effect, LeaveGroup):
                outbox.add(session, office=office.id, kind="leave_group", recipient=effect.group_id, now=now)
        if conv.pending_notice:
            left = " ".join(self._notices_left(session, conv, effects, now)) or None
            if left != conv.pending_notice:
                conv.pending_notice = left
        if conv.pending_notice and reply_token and messages and len(messages) < outbox.MAX_REPLY_MESSAGES:
            messages.extend(self._terms_notices(session, office, conv, now, outbox.MAX_REPLY_MESSAGES - len(messages)))
        return outbox.to_user(office=office.id, user_id=conv.line_user_id, messages=messages, now=now,
                              reply_token=reply_token, event_id=event_id, may_push=conv.followed)

    @staticmethod
    def _notices_left(session: Session, conv, effects, now: datetime) -> list[str]:
        """The pending terms notices (`pending_notice`: a next-message notice, or a notice the user missed while
        blocking the account) that still have something to tell, oldest first. Dropped: a version this reply asks
        consent to or says is coming (a consent step before its date), one the user consented to already (the
        notice would ask them to do what they did), and one a newer version in force has superseded (it would
        announce a superseded version, as `terms broadcast` refuses to, beside a consent step that asks the
        newer one)."""
        from bot.services import broadcasts, terms

        shown = {version for e in effects if isinstance(e, Say) and e.template == "consent"
                 for version in (e.vars.get("version"), (e.vars.get("upcoming") or {}).get("version"))}
        in_force = terms.current_version(session, conv.office_id, now.date())
        base = terms.consent_base(session, conv.office_id, in_force) if in_force is not None else ""
        return [version for version in broadcasts.pending_versions(conv.pending_notice)
                if version not in shown and version >= base and not terms.has_consented(session, conv.id, version)]

    def _terms_notices(self, session: Session, office, conv, now: datetime, room: int) -> list[dict]:
        """The pending terms notices, sent `next-message` style: inside this (free) reply, each once, oldest first;
        what does not fit in the reply waits for the next one."""
        from bot.services import broadcasts, terms

        versions = broadcasts.pending_versions(conv.pending_notice)
        told, conv.pending_notice = versions[:room], " ".join(versions[room:]) or None
        messages: list[dict] = []
        for version in told:
            vars = {**self.rt.template_globals(office, conv), "version": version,
                    "summary": terms.summary(session, office.id, version) or "",
                    "in_force": version <= now.date().isoformat()}   # told later than planned: it has taken effect
            messages.extend(self.rt.renderer.messages(conv.language, "terms_updated", vars))
        return messages

    # -- groups -------------------------------------------------------------------------------
    def _group_event(self, session: Session, office, event, now: datetime):
        source = event.source
        room = getattr(source, "type", None) == "room"
        group_id = getattr(source, "room_id", None) if room else getattr(source, "group_id", None)
        if not group_id:
            return []
        staff_group = self.rt.config.staff_group_id(office.id)
        other_group = bool(staff_group) and group_id != staff_group
        the_staff_group = bool(staff_group) and group_id == staff_group
        if isinstance(event, JoinEvent):
            # Invited back into the staff group after a leave: staff are told there what they missed meanwhile.
            # A join or leave is ordered by its own time: LINE may deliver one late (after a failed delivery).
            left_at = staff_groups.left_at(session, office.id, group_id) if the_staff_group else None
            if not staff_groups.joined(session, office.id, group_id, event_time(event)):
                log.info("event=%s join older than the group's last join or leave: ignored", event.webhook_event_id)
                return []
            log.info("event=%s join recorded", event.webhook_event_id)
            if other_group:
                self._leave(session, office.id, group_id, room, now)
            if left_at is not None:
                return outbox.reserve_replies(self.rt.staff_rejoined(session, office, event, group_id, left_at, now),
                                              now)
            return []
        if isinstance(event, LeaveEvent):
            if not staff_groups.left(session, office.id, group_id, event_time(event)):
                log.info("event=%s leave older than the group's last join: ignored", event.webhook_event_id)
                return []
            log.info("event=%s leave recorded", event.webhook_event_id)
            if the_staff_group:
                # What waits for the group will not reach it (LINE refuses): dropped, shown on LINE送信状況; the
                # dashboard has each notice, and the group is told what it missed once the bot is back.
                dropped = outbox.drop_queued_to(session, office.id, group_id, staleness.GROUP_LEFT)
                log.info("event=%s staff group left: %s queued messages dropped", event.webhook_event_id, dropped)
            return []
        if other_group:
            # A group the bot was in before the staff group was configured: leave it (once).
            self._leave(session, office.id, group_id, room, now)
            return []
        if staff_group and isinstance(event, PostbackEvent):
            return self.rt.staff_postback(session, office, event, now)
        if not staff_group and self._chat_word(event):
            return self._book_one_to_one(session, office, group_id, event, now)
        return []

    def _chat_word(self, event) -> bool:
        """A chat word (予約, 予約確認…) typed in a group or room."""
        message = getattr(event, "message", None)
        if not isinstance(event, MessageEvent) or not isinstance(message, TextMessageContent):
            return False
        return self.rt.vocabulary("ja").word(normalise(message.text or "")) is not None

    def _book_one_to_one(self, session: Session, office, group_id: str, event, now: datetime) -> list:
        """Someone asked to book in a group the bot stays in: booking works in a one-to-one chat only (the
        group holds no conversation); answered with the event's reply token, never pushed."""
        messages = self.rt.renderer.messages("ja", "group_hint", self.rt.template_globals(office, None))
        rows = outbox.queue_to_user(session, office=office.id, user_id=group_id, messages=messages, now=now,
                                    reply_token=getattr(event, "reply_token", None), event_id=event.webhook_event_id,
                                    purpose="group_hint", may_push=False)
        return outbox.reserve_replies(rows, now)

    @staticmethod
    def _leave(session: Session, office_id: str, group_id: str, room: bool, now: datetime) -> None:
        """Queue leaving a group or room that is not the staff group, unless already queued."""
        kind = "leave_room" if room else "leave_group"
        queued = session.scalar(select(OutboxMessage.id).where(
            OutboxMessage.office_id == office_id, OutboxMessage.kind == kind,
            OutboxMessage.recipient == group_id,
            OutboxMessage.status.in_(("pending", "sending", "held"))).limit(1))
        if queued is None:
            outbox.add(session, office=office_id, kind=kind, recipient=group_id, now=now, purpose="leave")
