"""The transactional outbox: messages are rows written with the state change, sent after commit.

Replies go out from the web process right after the commit (the fast path); everything else,
and every reply that did not fit the budget, is sent by the worker. Pushes carry a retry key
kept across attempts, so LINE delivers each exactly once.
"""
from __future__ import annotations

import logging
import time
import uuid
from datetime import datetime, timedelta
from typing import Callable, Iterable

from sqlalchemy import and_, bindparam, exists, or_, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, aliased

from bot import line_client as lc
from bot.db import Database, describe_error, is_disconnect
from bot.models import Booking, OutboxMessage
from bot.rawsql import Statement

log = logging.getLogger(__name__)

MAX_REPLY_MESSAGES = 5
REPLY_TOKEN_LIFETIME = timedelta(seconds=55)   # LINE: about one minute; keep a margin
SENDING_LEASE = timedelta(seconds=60)
# A worker's pass tries no row after this long (LINE slow): what it has not tried goes back, and its last call
# (a connect and a read timeout at most) ends well within the lease, so that another worker's recovery never
# takes rows this one still holds.
PASS_TRIES_FOR = SENDING_LEASE / 2
MAX_ATTEMPTS = 25         # tries (about 80 minutes) before a row that fails alone is given up
OUTAGE_WINDOW = timedelta(hours=1)   # nothing of the office delivered for this long: LINE is down for all
QUOTA_PROBE = timedelta(seconds=60)
# Said with each refusal that holds an office's messages (README: Reliability; dashboard: LINE送信状況).
HELD_HINTS = {
    lc.AUTH: ("; LINE refused office={office}'s channel access token: its messages are held until "
              "LINE_CHANNEL_ACCESS_TOKEN_{OFFICE} (or the channels store) holds the token issued in the LINE "
              "Developers console and the processes are restarted"),
    lc.QUOTA: ("; office={office}'s monthly message quota is used up: pushes are held until LINE accepts them "
               "again (a larger plan in LINE Official Account Manager, or the next month)"),
}
BACKOFF = (1, 2, 4, 8, 8, 15, 30, 60, 120, 300)
RECORD_BATCH = 50   # the worker records this many outcomes per commit
FINISHED = ("sent", "skipped", "failed", "unknown", "stale")  # nothing more will happen to these rows
STALE_PREFIX = "stale: "   # a dropped row's last_error: this, then the reason (bot/services/staleness.py)
MAYBE_SENT = "; an earlier try may have arrived"   # ...and this when an earlier try went unanswered (or a
# reply's last_error, once one of its tries went unanswered: it is never pushed then)
NOT_SENT = ("429", "http 401")   # the last_error of a try LINE refused before taking it (quota, rate, token)
_UNFOLLOWED = "unfollowed"
# Replies that answer one message and are not worth a push when their token is refused or gone: the hint in a
# group that is not the staff group (a push there counts once per member against the month's quota).
REPLY_ONLY = frozenset({"group_hint"})
VERDICT_KINDS = ("push", "multicast", "broadcast")   # rows asked whether they may go now (not replies, not leaves)
_ASK = object()            # a push whose verdict was not asked with its batch


# What a finished row keeps of its payload: nothing. Its text is needed only to send it; what stays (kind,
# purpose, recipient, booking reference and status, retry key, times, outcome) is what the dashboard's lists of
# undelivered messages, the per-chat order and LINE's de-duplication of a retried push use. A reply can say
# more than the chat's opaque reference (Otaru's "this topic is not handled online" names the topic that
# applied to this user), so it is not kept once it has gone, or will never go.
def spent_payload() -> dict:
    return {"messages": []}


_MARK_REPLY_SENT = Statement(
    update(OutboxMessage.__table__)
    .where(OutboxMessage.__table__.c.id == bindparam("row_id"), OutboxMessage.__table__.c.status == "sending")
    .values(status="sent", sent_at=bindparam("now", type_=OutboxMessage.__table__.c.sent_at.type), last_error=None,
            payload=spent_payload()))


def _line_in_trouble(result: lc.SendResult) -> bool:
    """LINE gave no answer (slow past the timeout, refused or reset the connection) or rate-limits the channel:
    the office's other rows wait for the next pass. A 5xx answer comes fast and may be one row's: others go on."""
    return result.outcome == lc.RATE or (result.outcome in (lc.RETRY, lc.UNKNOWN) and result.status is None)


def backoff(attempts: int, retry_after: float | None = None) -> timedelta:
    """How long a row waits before its next try: the schedule, or longer when LINE said so (Retry-After)."""
    wait = timedelta(seconds=BACKOFF[min(max(attempts, 1), len(BACKOFF)) - 1])
    return max(wait, timedelta(seconds=retry_after)) if retry_after else wait


# -- writing ------------------------------------------------------------------------------------

def new_row(*, office: str, kind: str, messages: list[dict] | None = None, now: datetime,
            recipient: str | None = None, reply_token: str | None = None, to: list[str] | None = None,
            due_at: datetime | None = None, purpose: str = "chat", event_id: str | None = None,
            retry_key: str | None = None, about: Booking | None = None,
            notice_kind: str | None = None) -> OutboxMessage:
    """One LINE call as a row, not yet in any session (the caller writes it in its transaction).

    `about`: the booking the message is about, recorded as it is now (reference and status), so that
    staff can tell whom it concerns and the worker can drop it once the booking has moved on."""
    payload: dict = {"messages": messages or []}
    if to is not None:
        payload["to"] = to
    return OutboxMessage(
        office_id=office, kind=kind, recipient=recipient, reply_token=reply_token,
        reply_deadline=now + REPLY_TOKEN_LIFETIME if reply_token else None,
        payload=payload, retry_key=retry_key or str(uuid.uuid4()), status="pending",
        due_at=due_at or now, next_attempt_at=due_at or now, created_at=now, purpose=purpose,
        source_event_id=event_id, notice_kind=notice_kind,
        booking_reference=about.reference if about is not None else None,
        booking_status=about.status if about is not None else None,
    )


def add(session: Session, **fields) -> OutboxMessage:
    """Queue one LINE call in the caller's transaction (the fields of `new_row`)."""
    row = new_row(**fields)
    session.add(row)
    return row


def to_user(*, office: str, user_id: str, messages: list[dict], now: datetime, reply_token: str | None,
            event_id: str | None = None, purpose: str = "chat", may_push: bool = True) -> list[OutboxMessage]:
    """A reply when there is a token (the first five messages), pushes for the rest; rows not yet written."""
    rows: list[OutboxMessage] = []
    if not messages:
        return rows
    if reply_token:
        rows.append(new_row(office=office, kind="reply", recipient=user_id, reply_token=reply_token,
                            messages=messages[:MAX_REPLY_MESSAGES], now=now, event_id=event_id, purpose=purpose))
        messages = messages[MAX_REPLY_MESSAGES:]
    if messages and may_push:
        for i in range(0, len(messages), MAX_REPLY_MESSAGES):
            rows.append(new_row(office=office, kind="push", recipient=user_id,
                                messages=messages[i:i + MAX_REPLY_MESSAGES], now=now, event_id=event_id,
                                purpose=purpose))
    return rows


def queue_to_user(session: Session, **fields) -> list[OutboxMessage]:
    """`to_user`'s rows, queued in the caller's transaction."""
    rows = to_user(**fields)
    session.add_all(rows)
    return rows


def reserve_replies(rows: Iterable[OutboxMessage], now: datetime) -> list[OutboxMessage]:
    """This event's replies, claimed for the web process inside the event's own transaction.

    The web process sends them right after the commit without a claim of its own: one durable commit and two
    statements less per event, and no moment in which the worker could take them. As with a claimed reply, a
    process that dies before recording the outcome leaves the row to become `unknown` after the lease; what
    the reply budget leaves unsent goes back to the worker (`Sender.send_replies`).
    """
    replies = [row for row in rows if row.kind == "reply"]
    for row in replies:
        row.status, row.attempts, row.next_attempt_at = "sending", 1, now + SENDING_LEASE
    return replies


def release_unsent_replies(session: Session, event_id: str, ids: list[int], now: datetime) -> list[int]:
    """Replies an event reserved for this web process (`reserve_replies`, their ids known before its commit)
    and never tried: the commit reached the database, but the connection was lost before its answer came, so
    the event's second run found it handled already. Those that exist (the commit landed) go back to `pending`
    as never tried; their ids, for the web process to claim and send (`Sender.send_replies`), or the worker. Only
    rows of that event: an id of a commit that did not land may be another's since (SQLite reuses ids)."""
    rows = session.scalars(select(OutboxMessage).where(
        OutboxMessage.id.in_(ids), OutboxMessage.status == "sending", OutboxMessage.kind == "reply",
        OutboxMessage.source_event_id == event_id,
    ).order_by(OutboxMessage.id)).all()
    for row in rows:
        row.status, row.attempts, row.next_attempt_at = "pending", max(0, row.attempts - 1), now
    return [row.id for row in rows]


# -- sending ------------------------------------------------------------------------------------

class Sender:
    """Claims outbox rows, calls LINE, and records each row's outcome."""

    def __init__(self, db: Database, client: lc.LineClient, clock, can_push=None, why_stale=None, hold_until=None):
        self.db = db
        self.client = client
        self.clock = clock
        self.can_push = can_push or (lambda session, row: True)
        # The reason a push may no longer go (its booking moved on), or None; see bot/services/staleness.py.
        self.why_stale = why_stale or (lambda session, row, now: None)
        # When a message that is not urgent must wait for (the office's push hours), or None; see
        # bot/services/push_hours.py.
        self.hold_until = hold_until or (lambda session, row, now: None)
        self.stats = {"sent": 0, "retried": 0, "held": 0, "failed": 0, "unknown": 0, "skipped": 0, "stale": 0,
                      "quiet": 0}
        self._batch: list | None = None  # outcomes waiting for one commit (the worker's passes)
        # Outcomes of a pass whose commit the database refused (it went away): recorded first at the next pass.
        self._kept: list = []

    # The web process: this request's replies, within a time budget.
    def send_replies(self, items: Iterable[int | OutboxMessage], budget_seconds: float) -> None:
        """Rows reserved in their event's transaction (`reserve_replies`) are sent as they are; ids are
        claimed first. What does not fit the budget is left to the worker."""
        deadline = time.monotonic() + budget_seconds
        unsent: list[int] = []
        for item in items:
            reserved = isinstance(item, OutboxMessage)
            remaining = deadline - time.monotonic()
            if remaining <= 0.05:
                if reserved:
                    unsent.append(item.id)
                continue  # the worker takes the rest
            try:
                row = item if reserved else self._claim_one(item)
                if row is not None:
                    self._deliver(row, timeout=max(0.1, remaining))
            except DBAPIError as error:
                # The database went away after the events' commits (a restart): the other replies still go.
                # A row whose outcome could not be recorded stays `sending`: after the lease it reads `unknown`.
                log.error("outbox row=%s outcome not recorded: %s", getattr(item, "id", item), describe_error(error))
        if unsent:
            self._release(unsent)

    def _release(self, ids: list[int]) -> None:
        """Reserved replies never tried go back to the worker."""
        with self.db.transaction() as s:
            s.execute(update(OutboxMessage).where(
                OutboxMessage.id.in_(ids), OutboxMessage.status == "sending"
            ).values(status="pending", attempts=OutboxMessage.attempts - 1, next_attempt_at=self.clock.now())
                .execution_options(synchronize_session=False))

    # The worker: everything due.
    def send_due(self, limit: int = 200, stopping: Callable[[], bool] = lambda: False) -> int:
        """Send the due rows, recording outcomes RECORD_BATCH at a time (one commit each, not one per row).

        A row stays `sending` until its batch is committed, so a later row to the same chat still waits; a
        worker that dies in between leaves rows that the lease hands back: pushes go again under their retry
        key (LINE answers 409: delivered once), replies become `unknown`, as for a single row. Once `stopping()`
        says so (the worker got SIGTERM), the row on its way is finished and the rows not yet tried go back to
        the queue as they were, so that a stop does not wait for the whole pass (nor a kill strand it). A pass
        that has tried rows for PASS_TRIES_FOR (LINE answers slowly) hands the rest back the same way, within the
        lease.
        """
        rows = self._claim_due(limit)
        self._batch = []
        # Offices whose call LINE failed in this pass (down, slow, rate-limited), and how long their other rows
        # wait: the next pass, or as long as LINE asked (Retry-After: the channel is rate-limited, not the row).
        failing: dict[str, timedelta] = {}
        at = 0   # the row being handled: those before it have their outcome in a batch
        until = self.clock.now() + PASS_TRIES_FOR
        try:
            verdicts = self._verdicts(rows)
            for at, row in enumerate(rows):
                if self.clock.now() >= until:
                    self._record(row.id, self._put_back)   # the pass has run long enough: the next one goes on
                elif row.office_id in failing or stopping():
                    # Not tried: a slow or down LINE would hold the pass (and the jobs after it) for a timeout
                    # per row, and a stopping worker would hold its stop. Back in the queue as it was, without a
                    # try counted, for the next pass.
                    wait = failing.get(row.office_id, backoff(1))
                    self._record(row.id, lambda r, now, s, wait=wait: self._defer(r, now, s, wait))
                else:
                    result = self._deliver(row, timeout=None, verdict=verdicts.get(row.id, _ASK))
                    if result is not None and _line_in_trouble(result):
                        failing[row.office_id] = backoff(1, result.retry_after)
                if len(self._batch) >= RECORD_BATCH:
                    self._commit_changes(self._batch)
                    self._batch = []
        except DBAPIError:
            # The database went away mid-pass (reading the verdicts, or recording a batch): the rows not tried go
            # back as they were, rather than read `unknown` after the lease (a reply never sent, never pushed).
            # Only the database raises here, never a call to LINE cut short (that row's fate would be unknown).
            recorded = {row_id for row_id, _ in self._batch}
            self._batch.extend((row.id, self._put_back) for row in rows[at:] if row.id not in recorded)
            raise
        finally:
            batch, self._batch = self._batch, None
            self._commit_or_keep(batch)
        return len(rows)

    def _verdicts(self, rows: list[OutboxMessage]) -> dict[int, str | datetime | None]:
        """Why each push must not go (the recipient unfollowed, or it went stale), until when it must wait (the
        office's push hours), None when it may go. Asked for the whole batch in one read."""
        pushes = [row for row in rows if row.kind in VERDICT_KINDS]
        if not pushes:
            return {}
        with self.db.reading() as s:
            return {row.id: self._verdict(s, row) for row in pushes}

    def _verdict(self, session: Session, row: OutboxMessage) -> str | datetime | None:
        if not self.can_push(session, row):
            return _UNFOLLOWED
        now = self.clock.now()
        reason = self.why_stale(session, row, now)
        if reason:
            return STALE_PREFIX + reason
        return self.hold_until(session, row, now)

    def _commit_or_keep(self, changes: list) -> None:
        """Record a pass's outcomes; when the database refuses (it went away), they are kept for the next pass,
        which records them before anything else (`recover_stale`): what LINE answered is not lost with the
        connection. A reply LINE took would otherwise read `unknown` after the lease (staff would phone about a
        message that arrived), and one it certainly refused would never be pushed."""
        try:
            self._commit_changes(changes)
        except DBAPIError:
            self._kept.extend(changes)
            log.warning("outcomes of %d outbox rows kept until the database is back", len(self._kept))
            raise

    def record_kept(self) -> None:
        """The outcomes an earlier pass could not record (`_commit_or_keep`), recorded now; raises (and keeps
        them) while the database is still away."""
        kept, self._kept = self._kept, []
        try:
            self._commit_changes(kept)
        except BaseException:
            self._kept = kept + self._kept
            raise
        if kept:
            log.info("outcomes of %d outbox rows recorded now that the database is back", len(kept))

    def recover_stale(self) -> int:
        """Rows left 'sending' by a killed process: replies become unknown, pushes retry. This process's own
        outcomes not yet recorded (the database went away) are recorded first: those rows are not stale."""
        self.record_kept()
        now = self.clock.now()
        with self.db.transaction() as s:
            stale = s.scalars(select(OutboxMessage).where(
                OutboxMessage.status == "sending", OutboxMessage.next_attempt_at < now)).all()
            for row in stale:
                if row.kind == "reply":
                    row.status, row.last_error = "unknown", "interrupted while sending"
                    row.payload = spent_payload()
                else:
                    row.status = "pending"
            return len(stale)

    def _claim_one(self, row_id: int) -> OutboxMessage | None:
        now = self.clock.now()
        with self.db.transaction() as s:
            result = s.execute(update(OutboxMessage).where(
                OutboxMessage.id == row_id, OutboxMessage.status == "pending"
            ).values(status="sending", next_attempt_at=now + SENDING_LEASE, attempts=OutboxMessage.attempts + 1))
            if result.rowcount != 1:
                return None
            return s.get(OutboxMessage, row_id)

    def _claim_due(self, limit: int) -> list[OutboxMessage]:
        now = self.clock.now()
        earlier = aliased(OutboxMessage)
        # Per-recipient order: a row waits while an earlier due row to the same chat (a reply
        # included: its push fallback must not be overtaken) is still on its way.
        blocking = exists().where(
            earlier.recipient == OutboxMessage.recipient,
            earlier.office_id == OutboxMessage.office_id,
            earlier.id < OutboxMessage.id,
            earlier.status.in_(("pending", "sending", "held")),
            earlier.due_at <= now,
        )
        query = (
            select(OutboxMessage)
            .where(
                OutboxMessage.status.in_(("pending", "held")),
                OutboxMessage.due_at <= now,
                OutboxMessage.next_attempt_at <= now,
                or_(OutboxMessage.kind == "reply", OutboxMessage.recipient.is_(None), ~blocking),
            )
            .order_by(OutboxMessage.id)
            .limit(limit)
        )
        with self.db.transaction() as s:
            if not self.db.sqlite:
                query = query.with_for_update(skip_locked=True, of=OutboxMessage)
            rows = s.scalars(query).all()
            for row in rows:
                row.status = "sending"
                row.attempts += 1
                row.next_attempt_at = now + SENDING_LEASE
            s.flush()
            return list(rows)

    def _call(self, row: OutboxMessage, timeout: float | None) -> lc.SendResult:
        messages = row.payload.get("messages", [])
        if row.kind == "reply":
            return self.client.reply(row.office_id, row.reply_token, messages, timeout=timeout)
        if row.kind == "push":
            return self.client.push(row.office_id, row.recipient, messages, row.retry_key, timeout=timeout)
        if row.kind == "multicast":
            return self.client.multicast(row.office_id, row.payload["to"], messages, row.retry_key, timeout=timeout)
        if row.kind == "broadcast":
            return self.client.broadcast(row.office_id, messages, row.retry_key, timeout=timeout)
        if row.kind == "leave_group":
            return self.client.leave_group(row.office_id, row.recipient, timeout=timeout)
        if row.kind == "leave_room":
            return self.client.leave_room(row.office_id, row.recipient, timeout=timeout)
        return lc.SendResult(lc.FAILED, None, f"unknown kind {row.kind}")

    def _deliver(self, row: OutboxMessage, timeout: float | None, verdict=_ASK) -> lc.SendResult | None:
        """Send one row (or settle it without a call) and record the outcome; LINE's answer, None without a call."""
        if row.kind == "reply" and self._token_expired(row):
            # Not sent in time: pushed instead when no try may have arrived, else of unknown fate.
            self._record(row.id, lambda r, now, s: self._reply_expired(r, now))
            return None
        if row.kind in VERDICT_KINDS:
            if verdict is _ASK:
                with self.db.reading() as s:
                    verdict = self._verdict(s, row)
            if verdict == _UNFOLLOWED:
                self._record(row.id, lambda r, now, s: self._skip(r))
                return None
            if isinstance(verdict, datetime):
                self._record(row.id, lambda r, now, s: self._wait_for(r, verdict))
                return None
            if verdict:
                self._record(row.id, lambda r, now, s: self._drop_stale(r, verdict))
                return None
        result = self._call(row, timeout)
        hint = HELD_HINTS.get(result.outcome)  # the office cannot send at all: a warning that names the fix
        log.log(logging.WARNING if hint else logging.INFO, "outbox row=%s kind=%s purpose=%s outcome=%s status=%s%s",
                row.id, row.kind, row.purpose, result.outcome, result.status,
                hint.format(office=row.office_id, OFFICE=row.office_id.upper()) if hint else "")
        if row.kind == "reply" and result.delivered and self._batch is None:
            _once_more_if_cut(lambda: self._mark_reply_sent(row.id))
            return result
        self._record(row.id, lambda r, now, s: self._apply(r, result, now, s))
        return result

    @staticmethod
    def _defer(row: OutboxMessage, now: datetime, session: Session, wait: timedelta) -> None:
        row.status, row.attempts, row.next_attempt_at = "pending", row.attempts - 1, now + wait

    @staticmethod
    def _put_back(row: OutboxMessage, now: datetime, session: Session) -> None:
        """Claimed but not tried (the database went away first): due again at once, as it was."""
        row.status, row.attempts, row.next_attempt_at = "pending", row.attempts - 1, now

    def _mark_reply_sent(self, row_id: int) -> None:
        """The common case in one statement (what `_apply` does for a delivered reply, without loading it),
        run on the driver's cursor (`bot.rawsql`), as it runs once per event. The statement is its own
        transaction (autocommit): one round trip instead of BEGIN, UPDATE, COMMIT, and as durable (the commit
        still waits for the WAL)."""
        # SQLite's connections run a statement outside BEGIN as its own transaction already (bot/db.py).
        options = {} if self.db.sqlite else {"isolation_level": "AUTOCOMMIT"}
        with self.db.engine.connect().execution_options(**options) as conn:
            done = _MARK_REPLY_SENT.rowcount(conn, {"row_id": row_id, "now": self.clock.now()})
        if done:
            self.stats["sent"] += 1

    def _record(self, row_id: int, change) -> None:
        if self._batch is not None:
            self._batch.append((row_id, change))
            return
        _once_more_if_cut(lambda: self._commit_changes([(row_id, change)]))

    def _commit_changes(self, changes: list) -> None:
        """Apply outcomes to rows still `sending`, in one transaction; a row finished by its outcome keeps no
        text (`spent_payload`)."""
        if not changes:
            return
        counted = dict(self.stats)   # a commit refused counts nothing: the changes are made again later
        try:
            with self.db.transaction() as s:
                rows = {row.id: row for row in s.scalars(select(OutboxMessage).where(
                    OutboxMessage.id.in_([row_id for row_id, _ in changes])))}
                now = self.clock.now()
                for row_id, change in changes:
                    row = rows.get(row_id)
                    if row is not None and row.status == "sending":
                        change(row, now, s)
                        if row.status in FINISHED:
                            row.payload = spent_payload()
        except BaseException:
            self.stats.update(counted)
            raise

    def _skip(self, row: OutboxMessage) -> None:
        row.status, row.last_error = "skipped", "recipient unfollowed"
        self.stats["skipped"] += 1

    def _wait_for(self, row: OutboxMessage, until: datetime) -> None:
        """Outside the office's push hours: back in the queue, not tried, due when they open. Its due time moves,
        so a later urgent message to the same chat does not wait behind it; the morning's pass checks it for
        staleness again."""
        row.status, row.attempts = "pending", row.attempts - 1
        row.due_at = row.next_attempt_at = until
        self.stats["quiet"] += 1
        log.info("outbox row=%s kind=%s purpose=%s waits for the push hours until %s", row.id, row.kind,
                 row.purpose, until.isoformat())

    def _drop_stale(self, row: OutboxMessage, reason: str) -> None:
        """Out of date: not sent, kept with its reason for the dashboard (LINE送信状況). An earlier try that LINE
        did not answer (a 5xx, a timeout) may have been delivered: the reason says so, for staff to know."""
        _mark_stale(row, reason, tried=row.attempts - 1)   # this pass claimed it: one attempt counted, not tried
        self.stats["stale"] += 1

    def _apply(self, row: OutboxMessage, result: lc.SendResult, now: datetime, session: Session) -> None:
        outcome = result.outcome
        maybe_sent = row.kind == "reply" and (outcome == lc.UNKNOWN or _maybe_sent(row))
        row.last_error = None if result.delivered else _error_text(result.detail or outcome, maybe_sent)
        if result.delivered:
            row.status, row.sent_at = "sent", now
            self.stats["sent"] += 1
            released = session.info.setdefault("held_released", set())
            if row.kind != "reply" and row.office_id not in released:
                released.add(row.office_id)  # once per office and commit
                release_held(session, row.office_id, now)
            return
        if row.kind == "reply":
            self._apply_reply_failure(row, result, now)
            return
        if outcome in (lc.QUOTA, lc.AUTH):
            # The channel cannot send now (monthly quota, or its access token refused): tried again every
            # minute, and all at once when another row of the office goes through.
            row.status, row.next_attempt_at = "held", now + QUOTA_PROBE
            self.stats["held"] += 1
        elif outcome in (lc.RETRY, lc.RATE, lc.UNKNOWN) and (
                row.attempts < MAX_ATTEMPTS or not self._line_takes(session, row, now)):
            row.status, row.next_attempt_at = "pending", now + backoff(row.attempts, result.retry_after)
            self.stats["retried"] += 1
        else:
            row.status = "failed"
            self.stats["failed"] += 1

    @staticmethod
    def _line_takes(session: Session, row: OutboxMessage, now: datetime) -> bool:
        """Whether LINE took a message of this office and kind (a push: LINE may refuse pushes while it takes
        replies) within OUTAGE_WINDOW. When it took none, LINE (or the way to it) is down for everyone: a row
        that ran out of tries keeps waiting for it, as a held row does, rather than being given up by an outage
        longer than its tries (it is still dropped once out of date). Asked once per office, kind and commit, and
        only for such rows; due_at bounds the read to recent rows."""
        known = session.info.setdefault("line_takes", {})
        key = (row.office_id, row.kind)
        if key not in known:
            since = now - OUTAGE_WINDOW
            known[key] = session.scalar(select(OutboxMessage.id).where(
                OutboxMessage.status == "sent", OutboxMessage.due_at >= since, OutboxMessage.sent_at >= since,
                OutboxMessage.office_id == row.office_id, OutboxMessage.kind == row.kind).limit(1)) is not None
        return known[key]

    def _apply_reply_failure(self, row: OutboxMessage, result: lc.SendResult, now: datetime) -> None:
        """A reply LINE did not take. LINE takes a reply token once, so the same reply on the same token cannot
        arrive twice: a try that went unanswered (a 5xx, a timeout, a reset; it may have arrived) is made again
        while the token lives, like one LINE refused. Once a try may have arrived, a refusal (LINE answers 400
        for a token used already) or the token's end leaves it of unknown fate: never a push, which could say
        it twice. A reply that certainly did not arrive and can no longer go as one becomes a push."""
        outcome = result.outcome
        wait = backoff(row.attempts, result.retry_after)
        token_alive = row.reply_deadline is not None and now + wait < row.reply_deadline
        if outcome in (lc.RETRY, lc.RATE, lc.UNKNOWN) and token_alive:
            row.status, row.next_attempt_at = "pending", now + wait
            self.stats["retried"] += 1
            return
        # Certainly not delivered and the token is gone or refused: fall back to one push (not before LINE's
        # Retry-After, when it gave one).
        self._reply_gone(row, now, row.last_error)
        if row.kind == "push" and result.retry_after:
            row.next_attempt_at = now + timedelta(seconds=result.retry_after)

    def _reply_expired(self, row: OutboxMessage, now: datetime) -> None:
        self._reply_gone(row, now, "reply token expired")

    def _reply_gone(self, row: OutboxMessage, now: datetime, reason: str | None) -> None:
        """A reply that can no longer go as one: of unknown fate when a try may have arrived, not sent at all when
        it answers on its token only (REPLY_ONLY), else one push."""
        if _maybe_sent(row):
            self._unknown(row)
        elif row.purpose in REPLY_ONLY:
            row.status, row.last_error = "skipped", f"{reason or 'reply not delivered'}; not pushed"[:255]
            self.stats["skipped"] += 1
        else:
            self._reply_to_push(row, now, reason)

    def _unknown(self, row: OutboxMessage) -> None:
        row.status = "unknown"
        self.stats["unknown"] += 1

    def _token_expired(self, row: OutboxMessage) -> bool:
        return row.reply_deadline is None or self.clock.now() >= row.reply_deadline

    def _reply_to_push(self, row: OutboxMessage, now: datetime, reason: str | None) -> None:
        """A reply that certainly did not arrive becomes one push (with a fresh retry key)."""
        row.kind, row.reply_token, row.status = "push", None, "pending"
        row.attempts, row.next_attempt_at = 0, now
        row.retry_key = str(uuid.uuid4())
        row.last_error = (reason or "reply not delivered")[:255]
        self.stats["retried"] += 1


def _mark_stale(row: OutboxMessage, reason: str, tried: int) -> None:
    """`row` will not be sent: `stale` with its reason (the dashboard names it), saying so when one of the `tried`
    earlier tries may have arrived (LINE did not answer it)."""
    if tried > 0 and row.last_error not in NOT_SENT:   # None: a try cut short by a killed worker
        reason += MAYBE_SENT
    row.status, row.last_error = "stale", reason[:255]
    log.info("outbox row=%s kind=%s purpose=%s dropped: %s", row.id, row.kind, row.purpose, reason)


def drop_queued_to(session: Session, office: str, recipient: str, reason: str) -> int:
    """Pushes queued to `recipient` and not yet on their way (waiting, retrying or held) will not go: `stale` with
    `reason` (one of bot/services/staleness.py's), their text gone. A row being sent is left to its outcome: on
    PostgreSQL the rows are locked as read (a worker claiming one meanwhile passes over it; one it claimed first is
    read as `sending`, once its claim commits)."""
    query = select(OutboxMessage).where(
        OutboxMessage.office_id == office, OutboxMessage.recipient == recipient,
        OutboxMessage.kind.in_(VERDICT_KINDS), OutboxMessage.status.in_(("pending", "held")))
    if session.bind.dialect.name == "postgresql":
        query = query.with_for_update()
    rows = session.scalars(query).all()
    for row in rows:
        _mark_stale(row, STALE_PREFIX + reason, tried=row.attempts)
        row.payload = spent_payload()
    return len(rows)


def _once_more_if_cut(record: Callable[[], None]) -> None:
    """Record an outcome (the web process: one row, right after LINE answered), once more on a new connection when
    the one used was cut (the pool drops it), as an event is run again: else the row would stay `sending` and read
    `unknown` after the lease, though LINE took it, or refused it and it is owed as a push."""
    try:
        record()
    except DBAPIError as error:
        if not is_disconnect(error):
            raise
        log.warning("outbox outcome not recorded, connection lost; recording it again")
        record()


def _maybe_sent(row: OutboxMessage) -> bool:
    """An earlier try of this reply went unanswered (see `_apply_reply_failure`)."""
    return error_detail(row)[1]


def _error_text(detail: str, maybe_sent: bool) -> str:
    detail = detail.removesuffix(MAYBE_SENT)
    return detail[:255 - len(MAYBE_SENT)] + MAYBE_SENT if maybe_sent else detail[:255]


def error_detail(row: OutboxMessage) -> tuple[str, bool]:
    """A row's last error without the "may have arrived" mark, and whether it had it (the dashboard says so)."""
    text = row.last_error or ""
    return text.removesuffix(MAYBE_SENT), text.endswith(MAYBE_SENT)


def stale_reason(row: OutboxMessage) -> tuple[str, bool] | None:
    """Why a dropped row was not sent, and whether an earlier try may have arrived (None for other rows)."""
    if row.status != "stale" or not (row.last_error or "").startswith(STALE_PREFIX):
        return None
    reason, maybe_sent = error_detail(row)
    return reason[len(STALE_PREFIX):], maybe_sent


def release_held(session: Session, office: str, now: datetime) -> int:
    """Sending works again for this office: rows held for the quota may go now."""
    result = session.execute(update(OutboxMessage).where(
        and_(OutboxMessage.office_id == office, OutboxMessage.status == "held")
    ).values(status="pending", next_attempt_at=now))
    return result.rowcount or 0
