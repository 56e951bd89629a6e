"""Scheduled jobs of the staff handoff, run by the worker on every pass (and rehearsed with `--now`).

Each job is idempotent: a job done for a booking leaves a JobMark row (unique per job and key), so a rerun,
a second worker or a pass after a crash finds it and does nothing. A job whose transaction rolls back
leaves no mark and runs again on the next pass.
"""
from __future__ import annotations

import logging
from collections import Counter
from datetime import date, datetime, time, timedelta

from sqlalchemy import and_, delete, exists, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from bot import notify, outbox
from bot.clock import TOKYO
from bot.models import (
    Booking, Conversation, OutboxMessage, ProcessedEvent, SlotBlock, SlotClaim, SlotHold, StaffNotice,
)
from bot.offices import DEFAULT_RETENTION
from bot.services import broadcasts, lifecycle, push_hours
from bot.services.bookings import erase_staff_text
from bot.services.calendar import last_business_day_on_or_before
from bot.staff import audit, auth
from bot.staff.auth import MAX_SESSION
from bot.staff.models import AuditEntry, BookingHandoff, JobMark, StaffSession

log = logging.getLogger(__name__)

STAFF_REMINDER_AT = time(9, 0)      # undecided requests: on the business day before the session
USER_REMINDER_AT = time(12, 0)      # the user's reminder: the day before the session
INVITATION_CHECK_AT = time(15, 0)   # invitation not marked sent: on the business day before the session
STAFF_LOOKAHEAD_DAYS = 14           # the last business day before a session is never further back than this
ATTENDANCE_LOOKBACK = timedelta(days=1)
CLOSED_STATUSES = ("declined", "expired", "withdrawn")
JOB_MARK_KEEP = timedelta(days=180)
FORGOTTEN = "forgotten:"   # a forgotten user's pseudonym: this and the conversation's id (never a LINE user id)
PURGE_BATCH = 200          # closed requests deleted, and users forgotten, per office and pass


def run_due(rt) -> dict[str, int]:
    """Every staff-handoff job for every office; figures for the worker's summary line."""
    now = rt.clock.now()
    figures: Counter[str] = Counter()
    for office in rt.offices.values():
        for job in (remind_undecided, remind_user_day_before, check_invitations, prompt_attendance,
                    purge_expired_data):
            with rt.db.transaction() as s:
                figures.update(job(s, rt, office, now))
    with rt.db.transaction() as s:
        figures.update(purge_unknown_offices(s, rt, now))
    return dict(figures)


def _mark(session: Session, job: str, key: str, now: datetime) -> bool:
    """Claim (job, key) once across reruns and workers; False when it was already done."""
    insert = postgresql.insert if session.bind.dialect.name == "postgresql" else sqlite.insert
    # RETURNING, not rowcount: an ORM insert on PostgreSQL (psycopg) reports rowcount -1.
    marked = session.execute(insert(JobMark).values(job=job, key=key, created_at=now)
                             .on_conflict_do_nothing(index_elements=["job", "key"])
                             .returning(JobMark.id)).scalar_one_or_none()
    return marked is not None


def _at(day: date, moment: time) -> datetime:
    return datetime.combine(day, moment, tzinfo=TOKYO)


def _upcoming(session: Session, office, now: datetime, statuses: tuple[str, ...], days: int) -> list[Booking]:
    return list(session.scalars(select(Booking).where(
        Booking.office_id == office.id, Booking.status.in_(statuses), Booking.slot_start > now,
        Booking.slot_start < now + timedelta(days=days)).order_by(Booking.slot_start, Booking.id)))


def _business_day_before(office, booking: Booking) -> date:
    """The office's last business day before the session's date (weekends, holidays, 12/29-1/3 and the
    profile's closures skipped): when staff, who work on business days only, are reminded."""
    session_day = booking.slot_start.astimezone(TOKYO).date()
    return last_business_day_on_or_before(session_day - timedelta(days=1), office.schedule.closures)


# -- reminders -------------------------------------------------------------------------------------

def remind_undecided(session: Session, rt, office, now: datetime) -> dict[str, int]:
    """On the business day before a session, remind staff of a request still undecided (once)."""
    sent = 0
    for booking in _upcoming(session, office, now, ("requested", "proposed"), days=STAFF_LOOKAHEAD_DAYS):
        moment = _at(_business_day_before(office, booking), STAFF_REMINDER_AT)
        if now < moment or booking.created_at >= moment:
            continue  # not yet; or it arrived after the reminder time and its new-request card just went
        if _mark(session, "undecided", str(booking.id), now):
            rt.notify_staff(session, office, "undecided", booking.id, now)
            sent += 1
    return {"staff_reminded_undecided": sent}


def remind_user_day_before(session: Session, rt, office, now: datetime) -> dict[str, int]:
    """The day before a confirmed session, one push to the user (profile `reminders.user_day_before`), within
    the office's push hours. One not made by the end of the day before (the worker was stopped) is made when the
    hours open on the session's day, saying 本日 (`reminder_same_day`), while the session is still ahead."""
    if not (office.reminders or {}).get("user_day_before", True):
        return {}
    sent = 0
    for booking in _upcoming(session, office, now, ("confirmed",), days=2):
        if booking.source != "line":
            continue
        moment = _at(booking.slot_start.astimezone(TOKYO).date() - timedelta(days=1), USER_REMINDER_AT)
        if now < moment or (booking.decided_at is not None and booking.decided_at >= moment):
            continue  # confirmed after the reminder time: the confirmation itself said it all
        if push_hours.next_opening(office, now) is not None:
            continue  # night: made when the push hours open
        same_day = now.astimezone(TOKYO).date() >= booking.slot_start.astimezone(TOKYO).date()
        if _mark(session, "user_day_before", str(booking.id), now):
            if notify.tell_user(session, rt, office, booking, "reminder_day_before", now,
                                purpose="reminder_same_day" if same_day else None) is not None:
                sent += 1
    return {"users_reminded": sent}


def check_invitations(session: Session, rt, office, now: datetime) -> dict[str, int]:
    """On the office's last business day before a confirmed session, remind staff when the invitation is not
    marked sent (Sakata sends it 「開催日前日までに」: for a Monday, that is Friday, when the office is open)."""
    sent = 0
    for booking in _upcoming(session, office, now, ("confirmed",), days=STAFF_LOOKAHEAD_DAYS):
        if booking.invitation_sent_at is not None:
            continue
        moment = _at(_business_day_before(office, booking), INVITATION_CHECK_AT)
        if now >= moment and _mark(session, "invitation", str(booking.id), now):
            rt.notify_staff(session, office, "invitation", booking.id, now)
            sent += 1
    return {"staff_reminded_invitation": sent}


def prompt_attendance(session: Session, rt, office, now: datetime) -> dict[str, int]:
    """At start + the office's no-show minutes, ask staff to record attendance if nobody has."""
    limit = now - timedelta(minutes=office.no_show_minutes)
    found = session.scalars(select(Booking).where(
        Booking.office_id == office.id, Booking.status == "confirmed", Booking.slot_start <= limit,
        Booking.slot_start > now - ATTENDANCE_LOOKBACK)).all()
    sent = 0
    for booking in found:
        if _mark(session, "no_show_check", str(booking.id), now):
            rt.notify_staff(session, office, "no_show_check", booking.id, now)
            sent += 1
    return {"staff_prompted_attendance": sent}


# -- retention ------------------------------------------------------------------------------------

def purge_expired_data(session: Session, rt, office, now: datetime) -> dict[str, int]:
    """The office's retention rules (profile `retention`); the consent log is kept as the office's record.

    A booking's details go with what staff wrote about it: its 職員メモ, the memos in its audit entries
    (the entries themselves stay) and the reason it was booked by exception.
    """
    return _purge(session, office.id, office.retention_rules(), now)


def _purge(session: Session, office_id: str, keep: dict[str, int], now: datetime) -> dict[str, int]:
    past = (Booking.office_id == office_id,
            Booking.slot_start < now - timedelta(days=keep["personal_details_days_after_session"]))
    details = session.execute(update(Booking).where(*past, Booking.details.is_not(None)).values(
        details=None, seeker_hash=None, details_purged_at=now)).rowcount or 0
    # The notes go whether or not the details were still there (a purge before notes were erased kept them).
    session.execute(update(Booking).where(*past, Booking.staff_note.is_not(None)).values(staff_note=None))
    erase_staff_text(session, select(Booking.id).where(*past))
    # Why staff blocked a slot or day is free text like the note (「本人より電話 090-… 通院の付き添い」): it goes
    # as long after the day as the details after a session; the block itself stays (the day view's history).
    last_day = (now - timedelta(days=keep["personal_details_days_after_session"])).astimezone(TOKYO).date()
    session.execute(update(SlotBlock).where(SlotBlock.office_id == office_id, SlotBlock.reason.is_not(None),
                                            SlotBlock.day < last_day.isoformat()).values(reason=None))
    closed = _delete_closed_requests(session, office_id, now - timedelta(days=keep["closed_requests_days"]))
    drafts = session.execute(delete(SlotHold).where(
        SlotHold.office_id == office_id,
        SlotHold.expires_at < now - timedelta(days=keep["drafts_days"]))).rowcount or 0
    dedupe = session.execute(delete(ProcessedEvent).where(
        ProcessedEvent.office_id == office_id,
        ProcessedEvent.received_at < now - timedelta(days=keep["dedupe_days"]))).rowcount or 0
    sent = session.execute(delete(OutboxMessage).where(
        OutboxMessage.office_id == office_id, OutboxMessage.status.in_(outbox.FINISHED),
        OutboxMessage.created_at < now - timedelta(days=keep["outbox_days"]))).rowcount or 0
    forgotten = forget_unfollowed(session, office_id, now - timedelta(days=keep["unfollowed_days"]), now)
    if details or closed:
        audit.record(session, office_id, audit.Actor.system(), "retention_purge", now, details=details,
                     requests=closed)
        log.info("retention office=%s details=%d requests=%d", office_id, details, closed)
    if forgotten:
        log.info("retention office=%s users_forgotten=%d", office_id, forgotten)
    return {"details_purged": details, "requests_purged": closed, "drafts_purged": drafts,
            "dedupe_purged": dedupe, "outbox_purged": sent, "users_forgotten": forgotten}


def forget_unfollowed(session: Session, office_id: str, before: datetime, now: datetime) -> int:
    """Users who unfollowed (blocked) the account before `before` and none of whose bookings is open with its
    session ahead or holds details: their LINE user id is replaced by a pseudonym (FORGOTTEN + the
    conversation's id). A booking left `confirmed` after its session (attendance never recorded) holds
    nothing once its details went: it must not keep the id for as long as nobody closes it.

    The conversation row stays, emptied, so that what points to it still holds: its bookings (reference, slot,
    status), the consent log (who consented to which version, when: now a pseudonym), the outbox rows of the
    last 30 days (their recipient becomes the pseudonym: the booking page's list of undelivered messages still
    finds them). Terms broadcasts' chunk lists lose the id. A user who follows again later is a new user (a new
    conversation: asked to consent again; the old bookings are not shown). A user whose online booking staff
    blocked is kept until they unblock it: a new conversation would not be blocked. A batch per pass; a rerun
    finds nothing more to do (a pseudonym is never forgotten again)."""
    holding = exists().where(Booking.conversation_id == Conversation.id,
                             or_(Booking.details.is_not(None),
                                 and_(Booking.status.in_(lifecycle.OPEN_STATUSES), Booking.slot_start > now)))
    found = session.execute(select(Conversation.id, Conversation.line_user_id).where(
        Conversation.office_id == office_id, Conversation.followed.is_(False),
        Conversation.booking_blocked.is_(False),   # staff refused them online booking: kept while that holds
        Conversation.last_event_ms < int(before.timestamp() * 1000),
        ~Conversation.line_user_id.startswith(FORGOTTEN), ~holding,
    ).order_by(Conversation.id).limit(PURGE_BATCH)).all()
    forgotten: set[str] = set()
    for conv_id, user_id in found:
        pseudonym = f"{FORGOTTEN}{conv_id}"
        # Followed again meanwhile (an event committed first): left alone.
        done = session.execute(update(Conversation).where(
            Conversation.id == conv_id, Conversation.line_user_id == user_id, Conversation.followed.is_(False),
        ).values(line_user_id=pseudonym, state="idle", context={}, step=0, misses=0, pending_notice=None,
                 receipt_due=False, flood_tat=None, flood_noticed_at=None)).rowcount or 0
        if done:
            session.execute(update(OutboxMessage).where(OutboxMessage.office_id == office_id,
                                                        OutboxMessage.recipient == user_id)
                            .values(recipient=pseudonym))
            forgotten.add(user_id)
    if forgotten:
        broadcasts.forget_recipients(session, office_id, forgotten)
    return len(forgotten)


def _delete_closed_requests(session: Session, office_id: str, before: datetime) -> int:
    # Counted from when the request closed, stamped once by the lifecycle: a later touch of the row (a staff
    # note moves `updated_at`) must not keep it longer. A closed status written without the stamp (outside the
    # lifecycle) falls back to the last change, so nothing is kept for ever.
    closed = func.coalesce(Booking.closed_at, Booking.updated_at)
    # A batch per pass (the next pass takes the rest): a backlog never makes one statement too big to run.
    ids = list(session.scalars(select(Booking.id).where(
        Booking.office_id == office_id, Booking.status.in_(CLOSED_STATUSES), closed < before)
        .order_by(Booking.id).limit(PURGE_BATCH)))
    if not ids:
        return 0
    # The audit log outlives the rows it names: it keeps the reference, not the link, and not the memo.
    # The handoff row, with its override reason, goes with the booking.
    session.execute(update(AuditEntry).where(AuditEntry.booking_id.in_(ids)).values(booking_id=None, note=None))
    for table in (StaffNotice, BookingHandoff, SlotClaim):
        session.execute(delete(table).where(table.booking_id.in_(ids)))
    return session.execute(delete(Booking).where(Booking.id.in_(ids))).rowcount or 0


def purge_unknown_offices(session: Session, rt, now: datetime) -> dict[str, int]:
    """Housekeeping that is not per office: old job marks, ended staff sessions, counts of wrong passwords
    that no longer lock anything (each keyed by the name as typed: sometimes a password typed in the wrong
    box), and the data of offices no longer configured (a profile removed; a disabled one is still configured), purged by the default
    retention rules so that no personal details outlive them. Such offices are looked for once an hour."""
    session.execute(delete(JobMark).where(JobMark.created_at < now - JOB_MARK_KEEP))
    session.execute(delete(StaffSession).where(StaffSession.created_at < now - MAX_SESSION))
    auth.purge_login_failures(session, now)
    if not _mark(session, "unknown_offices", now.astimezone(TOKYO).strftime("%Y-%m-%dT%H"), now):
        return {}
    known = list(rt.offices)
    gone: set[str] = set()
    for table in (Booking, Conversation, SlotBlock, SlotHold, ProcessedEvent, OutboxMessage):
        gone.update(session.scalars(select(table.office_id).distinct().where(table.office_id.not_in(known))))
    figures: Counter[str] = Counter()
    for office_id in sorted(gone):
        figures.update(_purge(session, office_id, DEFAULT_RETENTION, now))
    return dict(figures)
