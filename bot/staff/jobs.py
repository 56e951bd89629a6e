"""Scheduled jobs of the staff handoff, run by the worker on every pass (and rehearsed with `--now`).

Each job is idempotent: a job done for a booking leaves a JobMark row (unique per job and key), so a rerun,
a second worker or a pass after a crash finds it and does nothing. A job whose transaction rolls back
leaves no mark and runs again on the next pass.

A pass runs every few seconds, and one deployment may serve hundreds of offices: each job reads the rows of
every office at once (the office's own rules applied to its rows afterwards), and the retention purge runs once
for all the offices that keep data alike. What a pass sends to the database does not grow with the offices.
"""
from __future__ import annotations

import logging
from collections import Counter
from datetime import date, datetime, time, timedelta

from sqlalchemy import String, and_, cast, delete, exists, func, literal_column, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from bot import notify, outbox
from bot.clock import TOKYO
from bot.db import is_lock_timeout
from bot.models import (
    Booking, Conversation, OutboxMessage, ProcessedEvent, SlotBlock, SlotClaim, SlotHold, StaffNotice,
)
from bot.offices import DEFAULT_RETENTION
from bot.services import broadcasts, lifecycle, push_hours, staleness
from bot.services.bookings import erase_staff_text
from bot.services.calendar import last_business_day_on_or_before
from bot.staff import audit, auth, personal, reveals
from bot.staff.auth import MAX_SESSION
from bot.staff.models import AuditEntry, BookingHandoff, JobMark, StaffSession

log = logging.getLogger(__name__)

STAFF_REMINDER_AT = time(9, 0)      # undecided requests: on the business day before the session
USER_REMINDER_AT = time(12, 0)      # the user's reminder: the day before the session
INVITATION_CHECK_AT = time(15, 0)   # invitation not marked sent: on the business day before the session
STAFF_LOOKAHEAD_DAYS = 14           # the last business day before a session is never further back than this
ATTENDANCE_LOOKBACK = timedelta(days=1)
SAME_DAY_JOB = "user_same_day"     # the reminder made again on the session's day (one held past midnight)
CLOSED_STATUSES = ("declined", "expired", "withdrawn")
JOB_MARK_KEEP = timedelta(days=180)
FORGOTTEN = "forgotten:"   # a forgotten user's pseudonym: this and the conversation's id (never a LINE user id)
# Users still to forget, as the partial index ix_conversations_to_forget names them (migration 0020): written as
# literals, so that the plan of a prepared statement can use it (a forgotten user leaves the index).
TO_FORGET = (Conversation.followed.is_(False),
             Conversation.line_user_id.not_like(literal_column(f"'{FORGOTTEN}%'")))
PURGE_BATCH = 200          # closed requests deleted, and users forgotten, per pass of offices kept alike
# The sensitive answer (which of the office's categories applies: a disability certificate, a hospital's
# programme, the Mothers' Corner) decides only whether online counselling is open to the person: it goes from
# the details once the request closed or its session is over (attendance recorded, or this long after the start).
SENSITIVE_KEYS = ("category",)
SESSION_OVER = timedelta(days=1)
# Bookings are looked at until this long after their session's start (the rows of the partial index
# ix_bookings_details_kept, not the whole history): a worker stopped longer leaves an answer to the details' end.
SENSITIVE_LOOKBACK = timedelta(days=14)


def run_due(rt) -> dict[str, int]:
    """Every staff-handoff job for every office; figures for the worker's summary line."""
    now = rt.clock.now()
    offices = list(rt.offices.values())
    figures: Counter[str] = Counter()
    for job in (remind_undecided, remind_user_day_before, check_invitations, prompt_attendance):
        with rt.db.transaction() as s:
            figures.update(job(s, rt, offices, now))
    with rt.db.transaction() as s:
        figures.update(erase_sensitive_answers(s, rt, now))
    for keep, office_ids in _kept_alike(offices):
        with rt.db.transaction() as s:
            figures.update(_purge(s, office_ids, keep, now))
    with rt.db.transaction() as s:
        hourly = housekeeping(s, now)
        if hourly:
            figures.update(purge_unknown_offices(s, rt, now))
    if hourly:
        figures.update(truncate_sqlite_log(rt))
    return dict(figures)


def _kept_alike(offices) -> list[tuple[dict[str, int], list[str]]]:
    """The offices grouped by their retention rules: each group is purged by one set of statements."""
    groups: dict[tuple, tuple[dict[str, int], list[str]]] = {}
    for office in offices:
        keep = office.retention_rules()
        groups.setdefault(tuple(sorted(keep.items())), (keep, []))[1].append(office.id)
    return list(groups.values())


def _mark(session: Session, job: str, key: str, now: datetime) -> bool:
    """Claim (job, key) once across reruns and workers; False when it was already done, or when another worker's
    open transaction holds the same claim (it is doing the job; if it rolls back, a later pass claims it).

    On PostgreSQL the insert waits for that transaction to end, at most LOCK_TIMEOUT_MS: two workers at the top of
    the hour both claim the hourly mark, and a peer slower than that (a busy machine) made the other's whole pass
    fail with LockNotAvailable. The claim runs in a savepoint so that giving it up leaves the pass's transaction
    usable. (SQLite serialises writers from BEGIN IMMEDIATE: no such wait.)"""
    postgres = session.bind.dialect.name == "postgresql"
    insert = postgresql.insert if postgres else sqlite.insert
    # RETURNING, not rowcount: an ORM insert on PostgreSQL (psycopg) reports rowcount -1.
    statement = (insert(JobMark).values(job=job, key=key, created_at=now)
                 .on_conflict_do_nothing(index_elements=["job", "key"]).returning(JobMark.id))
    if not postgres:
        return session.execute(statement).scalar_one_or_none() is not None
    try:
        with session.begin_nested():
            return session.execute(statement).scalar_one_or_none() is not None
    except DBAPIError as error:
        if not is_lock_timeout(error):
            raise
        return False


def _at(day: date, moment: time) -> datetime:
    return datetime.combine(day, moment, tzinfo=TOKYO)


def _not_done(job: str):
    """No mark of `job` for the booking yet: a booking whose job is done is not read again on every pass (nor
    claimed again, one statement each).

    A booking's marks are keyed by its reference (`_key`), never by its row id: SQLite gives the id of a deleted
    row that had the largest id to the next row, so once the newest request was purged (closed_requests_days), the
    next booking took its id, and with it its marks: its reminder was never made. Marks written before keyed by the
    id still count, but only for a booking created before them (a mark of an earlier booking of that id is older
    than the booking); they are gone JOB_MARK_KEEP after, and so can this arm be."""
    return ~exists().where(JobMark.job == job, or_(
        JobMark.key == Booking.reference,
        and_(JobMark.key == cast(Booking.id, String), JobMark.created_at >= Booking.created_at)))


def _key(booking: Booking) -> str:
    """A booking's key in the job marks: its reference, which no later booking takes (its id may be reused)."""
    return booking.reference


def _upcoming(session: Session, offices, now: datetime, statuses: tuple[str, ...], days: int,
              job: str) -> list[tuple[object, Booking]]:
    """(office, booking) of these offices' bookings in these statuses whose session is within `days`, `job` not
    yet done for them."""
    by_id = {office.id: office for office in offices}
    if not by_id:
        return []
    found = session.scalars(select(Booking).where(
        Booking.office_id.in_(by_id), Booking.status.in_(statuses), Booking.slot_start > now,
        Booking.slot_start < now + timedelta(days=days), _not_done(job)).order_by(Booking.slot_start, Booking.id))
    return [(by_id[booking.office_id], booking) for booking in found]


def _business_day_before(office, booking: Booking) -> date:
    """The office's last business day before the session's date (weekends, holidays, 12/29-1/3 and the
    profile's closures skipped): when staff, who work on business days only, are reminded."""
    session_day = booking.slot_start.astimezone(TOKYO).date()
    return last_business_day_on_or_before(session_day - timedelta(days=1), office.schedule.closures)


# -- reminders -------------------------------------------------------------------------------------

def remind_undecided(session: Session, rt, offices, now: datetime) -> dict[str, int]:
    """On the business day before a session, remind staff of a request still undecided (once)."""
    sent = 0
    for office, booking in _upcoming(session, offices, now, ("requested", "proposed"), STAFF_LOOKAHEAD_DAYS,
                                     "undecided"):
        moment = _at(_business_day_before(office, booking), STAFF_REMINDER_AT)
        if now < moment or booking.created_at >= moment:
            continue  # not yet; or it arrived after the reminder time and its new-request card just went
        if _mark(session, "undecided", _key(booking), now):
            rt.notify_staff(session, office, "undecided", booking.id, now)
            sent += 1
    return {"staff_reminded_undecided": sent}


def remind_user_day_before(session: Session, rt, offices, now: datetime) -> dict[str, int]:
    """The day before a confirmed session, one push to the user (profile `reminders.user_day_before`), within
    the office's push hours. One not made by the end of the day before (the worker was stopped) is made when the
    hours open on the session's day, saying 本日 (`reminder_same_day`), while the session is still ahead."""
    reminding = [office for office in offices if (office.reminders or {}).get("user_day_before", True)
                 and push_hours.next_opening(office, now) is None]   # at night: made when the push hours open
    sent = 0
    for office, booking in _upcoming(session, reminding, now, ("confirmed",), 2, "user_day_before"):
        if booking.source != "line":
            continue
        moment = _at(booking.slot_start.astimezone(TOKYO).date() - timedelta(days=1), USER_REMINDER_AT)
        if now < moment or (booking.decided_at is not None and booking.decided_at >= moment):
            continue  # confirmed after the reminder time: the confirmation itself said it all
        same_day = now.astimezone(TOKYO).date() >= booking.slot_start.astimezone(TOKYO).date()
        if _mark(session, "user_day_before", _key(booking), now):
            if notify.tell_user(session, rt, office, booking, "reminder_day_before", now,
                                purpose="reminder_same_day" if same_day else None) is not None:
                sent += 1
    return {"users_reminded": sent + _remind_again_on_the_day(session, rt, reminding, now)}


def _remind_again_on_the_day(session: Session, rt, offices, now: datetime) -> int:
    """A day-before reminder held past midnight (the push hours ended while LINE refused it, or asked to wait) is
    dropped, as it says 明日 (bot/services/staleness.py): the person would get none. Once the push hours open on
    the session's day, it is made again saying 本日 (`reminder_same_day`), once, while the booking is still
    confirmed and its session ahead (dropped in turn once the session begins). One dropped after a try LINE left
    unanswered (it may have arrived the evening before) is made again too: a second reminder does less harm than
    none. The dropped rows are found by the outbox's index of status and due time (due by the session's day)."""
    by_id = {office.id: office for office in offices}
    if not by_id:
        return 0
    found = session.scalars(select(Booking).join(OutboxMessage, and_(
        OutboxMessage.booking_reference == Booking.reference, OutboxMessage.office_id == Booking.office_id)).where(
        OutboxMessage.status == "stale", OutboxMessage.due_at > now - timedelta(days=2),
        OutboxMessage.purpose == "reminder_day_before",
        OutboxMessage.last_error.startswith(outbox.STALE_PREFIX + staleness.SESSION_DAY_BEGAN, autoescape=True),
        Booking.office_id.in_(by_id), Booking.status == "confirmed", Booking.slot_start > now,
        Booking.slot_start < now + timedelta(days=1), _not_done(SAME_DAY_JOB))
        .order_by(Booking.slot_start, Booking.id)).unique().all()
    today = now.astimezone(TOKYO).date()
    sent = 0
    for booking in found:
        if booking.slot_start.astimezone(TOKYO).date() != today or not _mark(session, SAME_DAY_JOB,
                                                                              _key(booking), now):
            continue
        if notify.tell_user(session, rt, by_id[booking.office_id], booking, "reminder_day_before", now,
                            purpose="reminder_same_day") is not None:
            sent += 1
    return sent


def check_invitations(session: Session, rt, offices, now: datetime) -> dict[str, int]:
    """On the office's last business day before a confirmed session, remind staff when the invitation is not
    marked sent (Sakata sends it 「開催日前日までに」: for a Monday, that is Friday, when the office is open)."""
    sent = 0
    for office, booking in _upcoming(session, offices, now, ("confirmed",), STAFF_LOOKAHEAD_DAYS, "invitation"):
        if booking.invitation_sent_at is not None:
            continue
        moment = _at(_business_day_before(office, booking), INVITATION_CHECK_AT)
        if now >= moment and _mark(session, "invitation", _key(booking), now):
            rt.notify_staff(session, office, "invitation", booking.id, now)
            sent += 1
    return {"staff_reminded_invitation": sent}


def prompt_attendance(session: Session, rt, offices, now: datetime) -> dict[str, int]:
    """At start + the office's no-show minutes, ask staff to record attendance if nobody has."""
    by_id = {office.id: office for office in offices}
    if not by_id:
        return {}
    soonest = now - timedelta(minutes=min(office.no_show_minutes for office in offices))
    found = session.scalars(select(Booking).where(
        Booking.office_id.in_(by_id), Booking.status == "confirmed", Booking.slot_start <= soonest,
        Booking.slot_start > now - ATTENDANCE_LOOKBACK, _not_done("no_show_check"))
        .order_by(Booking.slot_start, Booking.id)).all()
    sent = 0
    for booking in found:
        office = by_id[booking.office_id]
        if booking.slot_start > now - timedelta(minutes=office.no_show_minutes):
            continue  # this office waits longer before asking
        if _mark(session, "no_show_check", _key(booking), now):
            rt.notify_staff(session, office, "no_show_check", booking.id, now)
            sent += 1
    return {"staff_prompted_attendance": sent}


# -- retention ------------------------------------------------------------------------------------

def purge_expired_data(session: Session, rt, office, now: datetime) -> dict[str, int]:
    """The office's retention rules (profile `retention`); the consent log is kept as the office's record.

    A booking's details go with what staff wrote about it: its 職員メモ, the memos in its audit entries
    (the entries themselves stay) and the reason it was booked by exception.
    """
    return _purge(session, [office.id], office.retention_rules(), now)


def erase_sensitive_answers(session: Session, rt, now: datetime) -> dict[str, int]:
    """The sensitive answer taken out of the details of every booking (of any office, a removed one's too) that
    closed or whose session is over: it has no use left, while the rest of the details stay the office's time.

    A booking done once leaves a JobMark (it is not read again on every pass); a batch per pass. Each details
    blob is replaced only if it is still the one read: details erased meanwhile (`データ削除`, the purge) never
    come back, and details rewritten meanwhile (`keys rotate`) are read again on the next pass. Details no
    configured key opens are left as they are, marked for this set of keys only: a worker started without the
    key they were written with (the old key dropped before `keys rotate` ran) leaves them, and the first pass
    once the key is back in DATA_ENCRYPTION_KEY takes the answer out (not the details' 90 days later)."""
    unreadable = "sensitive?" + personal.key_set_id(rt)
    found = session.execute(select(Booking.id, Booking.reference, Booking.details).where(
        Booking.details.is_not(None), Booking.slot_start > now - SENSITIVE_LOOKBACK,
        or_(Booking.status.not_in(lifecycle.OPEN_STATUSES), Booking.slot_start < now - SESSION_OVER),
        _not_done("sensitive"), _not_done(unreadable)).order_by(Booking.slot_start, Booking.id)
        .limit(PURGE_BATCH)).all()
    erased = 0
    for booking_id, reference, token in found:
        details = personal.decrypt(rt, token)
        if details is None:
            _mark(session, unreadable, reference, now)   # not read again until the keys change
            continue
        if any(key in details for key in SENSITIVE_KEYS):
            kept = {key: value for key, value in details.items() if key not in SENSITIVE_KEYS}
            if not session.execute(update(Booking).where(Booking.id == booking_id, Booking.details == token)
                                   .values(details=personal.encrypt(rt, kept))).rowcount:
                continue   # changed meanwhile: gone, or read again on the next pass
            erased += 1
        _mark(session, "sensitive", reference, now)   # by reference, as every booking's mark (`_not_done`)
    return {"sensitive_answers_erased": erased} if erased else {}


def _purge(session: Session, office_ids: list[str], keep: dict[str, int], now: datetime,
           removed: bool = False) -> dict[str, int]:
    """The retention rules `keep` applied to these offices' data at once (the offices that keep data alike);
    `removed`: offices no longer configured, whose users are forgotten whether they still follow or not."""
    past = (Booking.office_id.in_(office_ids), Booking.slot_start < now - timedelta(days=keep["personal_details_days_after_session"]))
    details = Counter(session.scalars(update(Booking).where(*past, Booking.details.is_not(None)).values(
        details=None, seeker_hash=None, details_purged_at=now).returning(Booking.office_id)))
    # The notes go whether or not the details were still there (a purge before notes were erased kept them).
    session.execute(update(Booking).where(*past, Booking.staff_note.is_not(None)).values(staff_note=None))
    erase_staff_text(session, select(Booking.id).where(*past))
    # Why staff blocked a slot or day is free text like the note (「本人より電話 090-… 通院の付き添い」): it goes
    # as long after the day as the details after a session; the block itself stays (the day view's history).
    last_day = (now - timedelta(days=keep["personal_details_days_after_session"])).astimezone(TOKYO).date()
    session.execute(update(SlotBlock).where(SlotBlock.office_id.in_(office_ids), SlotBlock.reason.is_not(None),
                                            SlotBlock.day < last_day.isoformat()).values(reason=None))
    closed = _delete_closed_requests(session, office_ids, now - timedelta(days=keep["closed_requests_days"]))
    drafts = session.execute(delete(SlotHold).where(
        SlotHold.office_id.in_(office_ids),
        SlotHold.expires_at < now - timedelta(days=keep["drafts_days"]))).rowcount or 0
    dedupe = session.execute(delete(ProcessedEvent).where(
        ProcessedEvent.office_id.in_(office_ids),
        ProcessedEvent.received_at < now - timedelta(days=keep["dedupe_days"]))).rowcount or 0
    sent = session.execute(delete(OutboxMessage).where(
        OutboxMessage.office_id.in_(office_ids), OutboxMessage.status.in_(outbox.FINISHED),
        OutboxMessage.created_at < now - timedelta(days=keep["outbox_days"]))).rowcount or 0
    forgotten = forget_unfollowed(session, office_ids, now - timedelta(days=keep["unfollowed_days"]), now,
                                  following_too=removed)
    for office_id in sorted(details.keys() | closed.keys()):
        audit.record(session, office_id, audit.Actor.system(), "retention_purge", now, details=details[office_id],
                     requests=closed[office_id])
        log.info("retention office=%s details=%d requests=%d", office_id, details[office_id], closed[office_id])
    for office_id, count in sorted(forgotten.items()):
        log.info("retention office=%s users_forgotten=%d", office_id, count)
    return {"details_purged": details.total(), "requests_purged": closed.total(), "drafts_purged": drafts,
            "dedupe_purged": dedupe, "outbox_purged": sent, "users_forgotten": forgotten.total()}


def forget_unfollowed(session: Session, office_ids: list[str], before: datetime, now: datetime,
                      following_too: bool = False) -> Counter[str]:
    """Users who unfollowed (blocked) the account before `before` and none of whose bookings is open with its
    session ahead or holds details: their LINE user id is replaced by a pseudonym (FORGOTTEN + the
    conversation's id). A booking left `confirmed` after its session (attendance never recorded) holds
    nothing once its details went: it must not keep the id for as long as nobody closes it.

    The conversation row stays, emptied, so that what points to it still holds: its bookings (reference, slot,
    status), the consent log (who consented to which version, when: now a pseudonym), the outbox rows of the
    last 30 days (their recipient becomes the pseudonym: the booking page's list of undelivered messages still
    finds them). Terms broadcasts' chunk lists lose the id. A user who follows again later is a new user (a new
    conversation: asked to consent again; the old bookings are not shown). A user whose online booking staff
    blocked is kept until they unblock it: a new conversation would not be blocked (unless `following_too`: a removed
    office blocks nothing any more). A batch per pass; a rerun
    finds nothing more to do (a pseudonym is never forgotten again). One batch for all these offices; returns
    the users forgotten per office. `following_too`: the offices were removed from the deployment, so nothing
    reaches their users any more (and no event of theirs arrives): those who still follow are forgotten alike."""
    holding = exists().where(Booking.conversation_id == Conversation.id,
                             or_(Booking.details.is_not(None),
                                 and_(Booking.status.in_(lifecycle.OPEN_STATUSES), Booking.slot_start > now)))
    to_forget = TO_FORGET[1:] if following_too else TO_FORGET
    found = session.execute(select(Conversation.id, Conversation.office_id, Conversation.line_user_id).where(
        Conversation.office_id.in_(office_ids), *to_forget,
        # Staff refused them online booking: kept while that holds, unless the office is gone (the block with it).
        *(() if following_too else (Conversation.booking_blocked.is_(False),)),
        Conversation.last_event_ms < int(before.timestamp() * 1000), ~holding,
    ).order_by(Conversation.id).limit(PURGE_BATCH)).all()
    forgotten: dict[str, set[str]] = {}
    for conv_id, office_id, user_id in found:
        pseudonym = f"{FORGOTTEN}{conv_id}"
        # Followed again meanwhile (an event committed first): left alone.
        done = session.execute(update(Conversation).where(
            Conversation.id == conv_id, Conversation.line_user_id == user_id,
            *(() if following_too else (Conversation.followed.is_(False),)),
        ).values(line_user_id=pseudonym, followed=False, state="idle", context={}, step=0, misses=0,
                 pending_notice=None, receipt_due=False, flood_tat=None, flood_noticed_at=None)).rowcount or 0
        if done:
            session.execute(update(OutboxMessage).where(OutboxMessage.office_id == office_id,
                                                        OutboxMessage.recipient == user_id)
                            .values(recipient=pseudonym))
            forgotten.setdefault(office_id, set()).add(user_id)
    for office_id, user_ids in forgotten.items():
        broadcasts.forget_recipients(session, office_id, user_ids)
    return Counter({office_id: len(user_ids) for office_id, user_ids in forgotten.items()})


def _delete_closed_requests(session: Session, office_ids: list[str], before: datetime) -> Counter[str]:
    """Closed requests of these offices that closed before `before`, deleted (a batch); how many per office."""
    # Counted from when the request closed, stamped once by the lifecycle: a later touch of the row (a staff
    # note moves `updated_at`) must not keep it longer. A closed status written without the stamp (outside the
    # lifecycle) falls back to the last change, so nothing is kept for ever.
    closed = func.coalesce(Booking.closed_at, Booking.updated_at)
    # A batch per pass (the next pass takes the rest): a backlog never makes one statement too big to run.
    ids = list(session.scalars(select(Booking.id).where(
        Booking.office_id.in_(office_ids), Booking.status.in_(CLOSED_STATUSES), closed < before)
        .order_by(Booking.id).limit(PURGE_BATCH)))
    if not ids:
        return Counter()
    # The audit log outlives the rows it names: it keeps the reference, not the link, and not the memo.
    # The handoff row, with its override reason, goes with the booking.
    session.execute(update(AuditEntry).where(AuditEntry.booking_id.in_(ids)).values(booking_id=None, note=None))
    for table in (StaffNotice, BookingHandoff, SlotClaim):
        session.execute(delete(table).where(table.booking_id.in_(ids)))
    return Counter(session.scalars(delete(Booking).where(Booking.id.in_(ids)).returning(Booking.office_id)))


def housekeeping(session: Session, now: datetime) -> bool:
    """Housekeeping that is not per office: old job marks, ended staff sessions and reveals, counts of wrong
    passwords that no longer lock anything (each keyed by the name as typed: sometimes a password typed in the wrong
    box). True once an hour (for one worker): the pass that does the hourly work as well."""
    session.execute(delete(JobMark).where(JobMark.created_at < now - JOB_MARK_KEEP))
    session.execute(delete(StaffSession).where(StaffSession.created_at < now - MAX_SESSION))
    reveals.purge(session, now)
    auth.purge_login_failures(session, now)
    return _mark(session, "unknown_offices", now.astimezone(TOKYO).strftime("%Y-%m-%dT%H"), now)


def purge_unknown_offices(session: Session, rt, now: datetime) -> dict[str, int]:
    """The data of offices no longer configured (a profile removed; a disabled one is still configured), purged by
    the default retention rules so that no personal details outlive them (looked for once an hour)."""
    known = list(rt.offices)
    gone: set[str] = set()
    for table in (Booking, Conversation, SlotBlock, SlotHold, ProcessedEvent, OutboxMessage):
        gone.update(session.scalars(select(table.office_id).distinct().where(table.office_id.not_in(known))))
    return _purge(session, sorted(gone), DEFAULT_RETENTION, now, removed=True) if gone else {}


def truncate_sqlite_log(rt) -> dict[str, int]:
    """SQLite's write-ahead log (the `-wal` file beside the database) keeps earlier images of the pages it wrote
    until later writes overwrite them: what `データ削除` or the purge erased from the rows would stay readable
    there, with the key, for as long as the office writes little. Once an hour it is copied into the database
    (whose freed space SQLite overwrites: `secure_delete`) and cut to nothing. A reader holding it makes the
    checkpoint wait (the busy timeout) or give up until the next hour; PostgreSQL vacuums its own old rows."""
    if not rt.db.sqlite:
        return {}
    done = rt.db.truncate_log()
    if not done:
        log.warning("sqlite write-ahead log not truncated (in use): tried again next hour")
    return {"sqlite_log_truncated": int(done)}
