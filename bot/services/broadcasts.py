"""Telling followers about a terms version: plan the calls, claim the run, record each chunk."""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from bot.models import BroadcastChunk, Conversation, TermsBroadcast, TermsVersion

MULTICAST_MAX = 500
PENDING_MAX = 64   # the width of conversations.pending_notice: versions (YYYY-MM-DD) waiting, space-separated
MODES = ("multicast", "broadcast", "next-message")
LEASE = timedelta(seconds=60)


@dataclass(frozen=True)
class Estimate:
    recipients: int       # users who will get the notice (known followers; broadcast: all friends)
    calls: int            # Messaging API calls
    messages: int         # messages counted against the monthly quota (known followers for broadcast)


def pending_versions(value: str | None) -> list[str]:
    """The versions whose notice waits for a conversation's next reply (`pending_notice`), oldest first."""
    return sorted(set((value or "").split()))


def mark_pending(session: Session, office_id: str, version: str, *where) -> None:
    """Queue `version`'s notice for the next reply of the office's conversations matching `where`, beside the
    notices of other versions still waiting there (each told once; `bot.dispatch` drops what is superseded or
    consented to). Lists that fit take it in one statement; a longer one (six versions waiting, in practice
    never) keeps its newest that fit."""
    column = Conversation.pending_notice
    scope = (Conversation.office_id == office_id, *where)
    unsynced = {"synchronize_session": False}
    session.execute(update(Conversation).where(*scope, column.is_(None)).values(pending_notice=version)
                    .execution_options(**unsynced))
    waiting = (*scope, column.is_not(None), ~column.contains(version, autoescape=True))
    session.execute(update(Conversation).where(*waiting, func.length(column) <= PENDING_MAX - len(version) - 1)
                    .values(pending_notice=column + " " + version).execution_options(**unsynced))
    for conversation_id, value in session.execute(select(Conversation.id, column).where(*waiting)).all():
        kept = pending_versions(f"{value} {version}")
        while len(" ".join(kept)) > PENDING_MAX:
            kept.pop(0)
        session.execute(update(Conversation).where(Conversation.id == conversation_id)
                        .values(pending_notice=" ".join(kept)).execution_options(**unsynced))


def mark_skipped(session: Session, office_id: str, version: str) -> None:
    """The office's users who do not follow it now (blocked; LINE delivers nothing to them) hear of `version`
    in their first reply once they follow again or write: the greeting of an unblock, say. Their bookings stay
    and the terms count using the service after a change as agreeing to it, so nobody is left untold."""
    mark_pending(session, office_id, version, Conversation.followed.is_(False),
                 Conversation.line_user_id.not_like("forgotten:%"))


def not_following(session: Session, office_id: str) -> int:
    """How many of the office's users known to the bot block it now (`mark_skipped` tells them later)."""
    return session.scalar(select(func.count()).select_from(Conversation).where(
        Conversation.office_id == office_id, Conversation.followed.is_(False),
        Conversation.line_user_id.not_like("forgotten:%"))) or 0


def follower_count(session: Session, office_id: str) -> int:
    """Users of this office known to the bot who still follow it (blocked users are skipped), counted by the
    database: a broadcast or next-message run needs their number, not their ids (an office's may be 100,000)."""
    return session.scalar(select(func.count()).select_from(Conversation).where(
        Conversation.office_id == office_id, Conversation.followed.is_(True))) or 0


def multicast_chunks(session: Session, office_id: str) -> list[tuple[str, list[str]]]:
    """Followers in calls of at most MULTICAST_MAX, one language per call (each in the user's chat
    language: a multicast carries one text for all its recipients). Japanese first."""
    groups: dict[str, list[str]] = {}
    for language, user_id in session.execute(select(Conversation.language, Conversation.line_user_id).where(
            Conversation.office_id == office_id, Conversation.followed.is_(True)).order_by(Conversation.id)):
        groups.setdefault(language or "ja", []).append(user_id)
    return [(language, users[start:start + MULTICAST_MAX])
            for language, users in sorted(groups.items(), key=lambda item: (item[0] != "ja", item[0]))
            for start in range(0, len(users), MULTICAST_MAX)]


def estimate(session: Session, office_id: str, mode: str) -> Estimate:
    if mode == "multicast":
        chunks = multicast_chunks(session, office_id)
        known = sum(len(to) for _, to in chunks)
        return Estimate(known, len(chunks), known)
    known = follower_count(session, office_id)
    if mode == "broadcast":
        return Estimate(known, 1, known)
    return Estimate(known, 0, 0)


def lock_version(session: Session, office_id: str, version: str) -> bool:
    """Hold the version's terms_versions row until the caller's transaction ends, so that the runs of one
    office and version (every mode) are planned and claimed one after the other: a start that waited here
    reads the runs the other committed. PostgreSQL takes the row lock; SQLite's write transaction (BEGIN
    IMMEDIATE) already keeps every other writer out. False: the version is gone (`terms withdraw`)."""
    return session.scalar(select(TermsVersion.id).where(
        TermsVersion.office_id == office_id, TermsVersion.version == version).with_for_update()) is not None


def find(session: Session, office_id: str, version: str, mode: str) -> TermsBroadcast | None:
    return session.scalar(select(TermsBroadcast).where(
        TermsBroadcast.office_id == office_id, TermsBroadcast.version == version, TermsBroadcast.mode == mode))


def other_run(session: Session, office_id: str, version: str, mode: str) -> TermsBroadcast | None:
    """A run of this version in another mode: its followers were (or are being) told already, and a second
    notice by another mode would reach them again (and count twice against the quota)."""
    return session.scalar(select(TermsBroadcast).where(
        TermsBroadcast.office_id == office_id, TermsBroadcast.version == version, TermsBroadcast.mode != mode
    ).order_by(TermsBroadcast.id).limit(1))


def handing_over(other: TermsBroadcast | None, mode: str) -> bool:
    """A multicast stopped part-way (the monthly quota, say) whose untold followers `next-message` can tell
    for free: the rest of that run, not everyone again."""
    return other is not None and other.mode == "multicast" and other.status == "paused" and mode == "next-message"


def untold(session: Session, run_id: int) -> list[str]:
    """The users of a run's chunks not sent yet."""
    return [user for chunk in pending_chunks(session, run_id) for user in chunk.recipients.get("to") or []]


def _hand_over(session: Session, paused: TermsBroadcast, version: str, now: datetime) -> int:
    """Tell the paused multicast's untold followers by next-message; the multicast is then complete."""
    users = untold(session, paused.id)
    for chunk in pending_chunks(session, paused.id):
        chunk.status, chunk.recipients = "next-message", _spent(chunk.recipients)
    for start in range(0, len(users), MULTICAST_MAX):   # blocked since the plan or not: told in a next reply
        mark_pending(session, paused.office_id, version,
                     Conversation.line_user_id.in_(users[start:start + MULTICAST_MAX]))
    finish(session, paused.id, now, "complete", "the rest told by next-message")
    return len(users)


def plan(session: Session, office_id: str, version: str, mode: str, now: datetime) -> TermsBroadcast:
    """The run for (office, version, mode), planned once: its chunks are fixed at planning time."""
    existing = find(session, office_id, version, mode)
    if existing is not None:
        return existing
    run = TermsBroadcast(office_id=office_id, version=version, mode=mode, status="planned", created_at=now)
    session.add(run)
    session.flush()
    if mode == "multicast":
        chunks = multicast_chunks(session, office_id)
        run.recipients = sum(len(to) for _, to in chunks)
        for seq, (language, to) in enumerate(chunks):
            session.add(BroadcastChunk(broadcast_id=run.id, seq=seq, recipients={"to": to, "language": language},
                                       retry_key=str(uuid.uuid4()), status="pending"))
        mark_skipped(session, office_id, version)
        return run
    other = other_run(session, office_id, version, mode)
    if handing_over(other, mode):
        run.recipients = _hand_over(session, other, version, now)
        run.status, run.completed_at = "complete", now
        return run
    run.recipients = follower_count(session, office_id)
    mark_skipped(session, office_id, version)
    if mode == "broadcast":
        session.add(BroadcastChunk(broadcast_id=run.id, seq=0, recipients={"to": []},
                                   retry_key=str(uuid.uuid4()), status="pending"))
    else:
        mark_pending(session, office_id, version, Conversation.followed.is_(True))
        run.status, run.completed_at = "complete", now
    return run


def claim(session: Session, run_id: int, runner: str, now: datetime) -> bool:
    """Take the run for this process; refused while another live runner holds it."""
    result = session.execute(update(TermsBroadcast).where(
        TermsBroadcast.id == run_id,
        TermsBroadcast.status != "complete",
        (TermsBroadcast.runner.is_(None)) | (TermsBroadcast.heartbeat_at < now - LEASE) |
        (TermsBroadcast.runner == runner),
    ).values(runner=runner, heartbeat_at=now, status="running"))
    return (result.rowcount or 0) == 1


def pending_chunks(session: Session, run_id: int) -> list[BroadcastChunk]:
    return list(session.scalars(select(BroadcastChunk).where(
        BroadcastChunk.broadcast_id == run_id, BroadcastChunk.status == "pending").order_by(BroadcastChunk.seq)))


def progress(session: Session, run_id: int) -> tuple[int, int]:
    chunks = session.scalars(select(BroadcastChunk.status).where(BroadcastChunk.broadcast_id == run_id)).all()
    return sum(1 for s in chunks if s == "sent"), len(chunks)


def mark_sent(session: Session, chunk_id: int, runner: str, run_id: int, now: datetime) -> bool:
    """A chunk LINE took: its list of user ids has done its work and goes (the count and language stay). False,
    and nothing recorded, when this runner holds the run no more: a command held up past LEASE (suspended, say)
    whose run was taken over, or withdrawn with its version (`terms withdraw`), when a later run and its chunks
    may have taken the same row ids (SQLite reuses the ids of the newest rows deleted): the caller stops."""
    held = session.execute(update(TermsBroadcast).where(TermsBroadcast.id == run_id, TermsBroadcast.runner == runner)
                           .values(heartbeat_at=now)).rowcount
    if held != 1:
        return False
    chunk = session.get(BroadcastChunk, chunk_id)
    if chunk is not None and chunk.broadcast_id == run_id:
        run = session.get(TermsBroadcast, run_id)
        # Planned while they followed, blocked since (a run resumed after the quota, next month): LINE skipped them.
        mark_pending(session, run.office_id, run.version, Conversation.followed.is_(False),
                     Conversation.line_user_id.in_(chunk.recipients.get("to") or []))
        chunk.status, chunk.sent_at, chunk.recipients = "sent", now, _spent(chunk.recipients)
    return True


def finish(session: Session, run_id: int, now: datetime, status: str, note: str | None = None,
           runner: str | None = None) -> None:
    """The run ends (complete) or pauses; `runner`: only while that runner holds it (a command's own run)."""
    values = {"status": status, "runner": None, "note": note}
    if status == "complete":
        values["completed_at"] = now
    held = (TermsBroadcast.runner == runner,) if runner is not None else ()
    session.execute(update(TermsBroadcast).where(TermsBroadcast.id == run_id, *held).values(**values))


def _spent(recipients: dict) -> dict:
    to = recipients.get("to") or []
    return {**recipients, "to": [], "count": recipients.get("count", len(to))}


def forget_recipients(session: Session, office_id: str, user_ids: set[str]) -> int:
    """Take these (forgotten) users out of the office's chunk lists: a paused run resumes without them, and a
    list kept from before lists were emptied once sent names them no more. Returns the chunks changed."""
    changed = 0
    # Locked (PostgreSQL): two workers taking out different users must not write back each other's list.
    for chunk in session.scalars(select(BroadcastChunk).join(TermsBroadcast).where(
            TermsBroadcast.office_id == office_id).order_by(BroadcastChunk.id).with_for_update(of=BroadcastChunk)):
        to = chunk.recipients.get("to") or []
        kept = [user_id for user_id in to if user_id not in user_ids]
        if len(kept) != len(to):
            chunk.recipients = {**chunk.recipients, "to": kept}
            changed += 1
    return changed
