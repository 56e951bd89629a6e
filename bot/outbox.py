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
from typing import Iterable

from sqlalchemy import and_, exists, or_, select, update
from sqlalchemy.orm import Session, aliased

from bot import line_client as lc
from bot.db import Database
from bot.models import OutboxMessage

log = logging.getLogger(__name__)

MAX_REPLY_MESSAGES = 5
REPLY_TOKEN_LIFETIME = timedelta(seconds=55)   # LINE: about one minute; keep a margin
SENDING_LEASE = timedelta(seconds=60)
MAX_ATTEMPTS = 25
QUOTA_PROBE = timedelta(seconds=60)
BACKOFF = (1, 2, 4, 8, 8, 15, 30, 60, 120, 300)


def backoff(attempts: int) -> timedelta:
    return timedelta(seconds=BACKOFF[min(max(attempts, 1), len(BACKOFF)) - 1])


# -- writing ------------------------------------------------------------------------------------

def add(session: Session, *, office: str, kind: str, messages: list[dict] | None = None, now: datetime,
        recipient: str | None = None, reply_token: str | None = None, to: list[str] | None = None,
        due_at: datetime | None = None, purpose: str = "chat", event_id: str | None = None,
        retry_key: str | None = None) -> OutboxMessage:
    """Queue one LINE call in the caller's transaction."""
    payload: dict = {"messages": messages or []}
    if to is not None:
        payload["to"] = to
    row = OutboxMessage(
        office_id=office, kind=kind, recipient=recipient, reply_token=reply_token,
        reply_deadline=now + REPLY_TOKEN_LIFETIME if reply_token else None,
        payload=payload, retry_key=retry_key or str(uuid.uuid4()), status="pending",
        due_at=due_at or now, next_attempt_at=due_at or now, created_at=now, purpose=purpose,
        source_event_id=event_id,
    )
    session.add(row)
    return row


def queue_to_user(session: Session, *, office: str, user_id: str, messages: list[dict], now: datetime,
                  reply_token: str | None, event_id: str | None = None, purpose: str = "chat",
                  may_push: bool = True) -> list[OutboxMessage]:
    """A reply when there is a token (the first five messages), pushes for the rest."""
    rows: list[OutboxMessage] = []
    if not messages:
        return rows
    if reply_token:
        rows.append(add(session, office=office, kind="reply", recipient=user_id, reply_token=reply_token,
                        messages=messages[:MAX_REPLY_MESSAGES], now=now, event_id=event_id, purpose=purpose))
        messages = messages[MAX_REPLY_MESSAGES:]
    if messages and may_push:
        for i in range(0, len(messages), MAX_REPLY_MESSAGES):
            rows.append(add(session, office=office, kind="push", recipient=user_id,
                            messages=messages[i:i + MAX_REPLY_MESSAGES], now=now, event_id=event_id,
                            purpose=purpose))
    return rows


# -- sending ------------------------------------------------------------------------------------

class Sender:
    """Claims outbox rows, calls LINE, and records each row's outcome."""

    def __init__(self, db: Database, client: lc.LineClient, clock, can_push=None):
        self.db = db
        self.client = client
        self.clock = clock
        self.can_push = can_push or (lambda session, row: True)
        self.stats = {"sent": 0, "retried": 0, "held": 0, "failed": 0, "unknown": 0, "skipped": 0}

    # The web process: this request's replies, within a time budget.
    def send_replies(self, ids: Iterable[int], budget_seconds: float) -> None:
        deadline = time.monotonic() + budget_seconds
        for row_id in ids:
            remaining = deadline - time.monotonic()
            if remaining <= 0.05:
                break  # the worker takes the rest
            row = self._claim_one(row_id)
            if row is not None:
                self._deliver(row, timeout=max(0.1, remaining))

    # The worker: everything due.
    def send_due(self, limit: int = 200) -> int:
        rows = self._claim_due(limit)
        for row in rows:
            self._deliver(row, timeout=None)
        return len(rows)

    def recover_stale(self) -> int:
        """Rows left 'sending' by a killed process: replies become unknown, pushes retry."""
        now = self.clock.now()
        with self.db.transaction() as s:
            stale = s.scalars(select(OutboxMessage).where(
                OutboxMessage.status == "sending", OutboxMessage.next_attempt_at < now)).all()
            for row in stale:
                if row.kind == "reply":
                    row.status, row.last_error = "unknown", "interrupted while sending"
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
        blocking = exists().where(
            earlier.recipient == OutboxMessage.recipient,
            earlier.office_id == OutboxMessage.office_id,
            earlier.id < OutboxMessage.id,
            earlier.kind != "reply",
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
        return lc.SendResult(lc.FAILED, None, f"unknown kind {row.kind}")

    def _deliver(self, row: OutboxMessage, timeout: float | None) -> None:
        if row.kind == "push":
            with self.db.reading() as s:
                allowed = self.can_push(s, row)
            if not allowed:
                self._record(row.id, lambda r, now, s: self._skip(r))
                return
        result = self._call(row, timeout)
        log.info("outbox row=%s kind=%s purpose=%s outcome=%s status=%s",
                 row.id, row.kind, row.purpose, result.outcome, result.status)
        self._record(row.id, lambda r, now, s: self._apply(r, result, now, s))

    def _record(self, row_id: int, change) -> None:
        with self.db.transaction() as s:
            row = s.get(OutboxMessage, row_id)
            if row is not None and row.status == "sending":
                change(row, self.clock.now(), s)

    def _skip(self, row: OutboxMessage) -> None:
        row.status, row.last_error = "skipped", "recipient unfollowed"
        self.stats["skipped"] += 1

    def _apply(self, row: OutboxMessage, result: lc.SendResult, now: datetime, session: Session) -> None:
        outcome = result.outcome
        row.last_error = None if result.delivered else (result.detail or outcome)[:255]
        if result.delivered:
            row.status, row.sent_at = "sent", now
            self.stats["sent"] += 1
            if row.kind != "reply":
                release_held(session, row.office_id, now)
            return
        if row.kind == "reply":
            self._apply_reply_failure(row, outcome, now)
            return
        if outcome == lc.QUOTA:
            row.status, row.next_attempt_at = "held", now + QUOTA_PROBE
            self.stats["held"] += 1
        elif outcome in (lc.RETRY, lc.RATE, lc.UNKNOWN) and row.attempts < MAX_ATTEMPTS:
            row.status, row.next_attempt_at = "pending", now + backoff(row.attempts)
            self.stats["retried"] += 1
        else:
            row.status = "failed"
            self.stats["failed"] += 1

    def _apply_reply_failure(self, row: OutboxMessage, outcome: str, now: datetime) -> None:
        if outcome == lc.UNKNOWN:
            # It may have arrived: sending it again (as a push) could duplicate it.
            row.status = "unknown"
            self.stats["unknown"] += 1
            return
        token_alive = row.reply_deadline is not None and now + backoff(row.attempts) < row.reply_deadline
        if outcome in (lc.RETRY, lc.RATE) and token_alive:
            row.status, row.next_attempt_at = "pending", now + backoff(row.attempts)
            self.stats["retried"] += 1
            return
        # Certainly not delivered and the token is gone or refused: fall back to one push.
        row.kind, row.reply_token, row.status = "push", None, "pending"
        row.attempts, row.next_attempt_at = 0, now
        row.retry_key = str(uuid.uuid4())
        self.stats["retried"] += 1


def release_held(session: Session, office: str, now: datetime) -> int:
    """Sending works again for this office: rows held for the quota may go now."""
    result = session.execute(update(OutboxMessage).where(
        and_(OutboxMessage.office_id == office, OutboxMessage.status == "held")
    ).values(status="pending", next_attempt_at=now))
    return result.rowcount or 0
