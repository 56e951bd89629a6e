"""Requests from the details form: who may open a form link, and turning a completed form into a request.

One call, one transaction (the caller's): the conversation row is locked, the link checked against the
conversation's hold, the request created with its reference, a seat of the slot claimed, the details
encrypted, staff told (a StaffNotice), the hold given back and the link recorded as used. Capacity is
the database's: one SlotClaim row per (office, slot start, seat), so of two people racing for the last
seat exactly one gets it, whatever the processes; the other gets `full`, never an error.

The office's booking deadline (`slots.booking_deadline`) is checked again when the form is sent: a slot
held just before it, with the form kept open past it, is refused (`notice_passed`), nothing is stored and
the hold is given back.

A terms version that took effect while the form was open is consented to first, in the chat: the form is
refused (`terms_changed`) and the hold kept, so the same page can be sent again afterwards.

The same form sent twice finds its FormSubmission row and answers `duplicate` with the same reference.
Nothing here logs personal values: ids and outcomes only.
"""
from __future__ import annotations

import json
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from bot import crypto
from bot.form_models import FormSubmission
from bot.models import Booking, Conversation, SlotClaim, SlotHold
from bot.services import holds, lifecycle, terms, validation
from bot.services import slots as slotsvc

log = logging.getLogger(__name__)

REFERENCE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # upper-case letters and digits without 0, O, 1, I
DETAILS_VERSION = 1
SUBMISSION_KEEP = timedelta(days=1)  # how long a used link still shows its completion page

AccessKind = Literal["open", "done", "expired", "superseded", "refused", "notice_passed", "closed",
                     "applied"]
OutcomeStatus = Literal["created", "duplicate", "expired", "superseded", "refused", "full", "blocked",
                        "limit", "notice_passed", "closed", "terms_changed"]


@dataclass(frozen=True)
class FormAccess:
    """What a signed form link may do now.

    open: the hold is live and this link is its latest; done: this link already made a request;
    expired: the conversation holds no live slot; superseded: it holds another one (a newer link);
    refused: the link names a conversation it does not belong to; notice_passed: the hold is live and
    this link is its latest, but the slot's booking deadline has passed since it was held; closed: the same,
    but staff took the slot (or its day) out of online booking since it was held; applied: it holds no slot, and
    the user has as many open requests as the office allows (one made from a later link).
    """
    kind: AccessKind
    conversation: Conversation | None = None
    hold: SlotHold | None = None
    reference: str | None = None
    slot_start: datetime | None = None
    status: str | None = None  # done: the request's status now (staff may have decided it since)


@dataclass(frozen=True)
class Outcome:
    status: OutcomeStatus
    reference: str | None = None
    booking_id: int | None = None
    slot_start: datetime | None = None
    differs: bool = False   # duplicate: what was sent this time is not what the request holds


# -- the link ---------------------------------------------------------------------------------------

def _conversation(session: Session, conversation_id: int, lock: bool) -> Conversation | None:
    query = select(Conversation).where(Conversation.id == conversation_id)
    if lock and session.bind.dialect.name == "postgresql":
        query = query.with_for_update()
    return session.scalar(query)


def chat_language(session: Session, conversation_id: int) -> str | None:
    """The chat language of a form link's conversation (its pages speak it too); None when the row is gone."""
    return session.scalar(select(Conversation.language).where(Conversation.id == conversation_id))


def form_access(session: Session, office, conversation_id: int, nonce: str, now: datetime, *,
                lock: bool = False, revive: bool = False) -> FormAccess:
    """Check a link's (office, conversation, nonce) against the database; `lock` the conversation row.

    `revive` (a form being sent): the link's hold ran out while the user was typing, but nobody took the
    slot meanwhile: it is held again (`holds.revive`) rather than losing what they typed; taken since:
    `full`."""
    conv = _conversation(session, conversation_id, lock)
    if conv is None or conv.office_id != office.id:
        return FormAccess("refused")
    used = session.get(FormSubmission, nonce)
    if used is not None:
        if used.conversation_id != conv.id:
            return FormAccess("refused")
        booking = session.get(Booking, used.booking_id)
        return FormAccess("done", conv, reference=booking.reference if booking else None,
                          slot_start=booking.slot_start if booking else None,
                          status=booking.status if booking else None)
    owner = session.scalar(select(SlotHold.conversation_id).where(SlotHold.token_nonce == nonce))
    if owner is not None and owner != conv.id:
        return FormAccess("refused")
    hold = session.scalar(select(SlotHold).where(SlotHold.conversation_id == conv.id))
    if revive and hold is not None and hold.token_nonce == nonce and hold.expires_at <= now:
        reason = holds.revive(session, office, hold, now)
        if reason in ("full", "notice_passed", "blocked"):
            return FormAccess("closed" if reason == "blocked" else reason, conv, hold=hold,
                              slot_start=hold.slot_start)
    if hold is None and _refusal(session, office, conv, now) == "limit":
        # An earlier link tapped in the chat's history after a request made from a later one: choosing a slot
        # again (what an expired link says) would only meet that request; it is what to look at (予約確認).
        return FormAccess("applied", conv)
    if hold is None or hold.expires_at <= now:
        return FormAccess("expired", conv)
    if hold.token_nonce != nonce:
        return FormAccess("superseded", conv, hold=hold, slot_start=hold.slot_start)
    if slotsvc.deadline_passed(office, hold.slot_start, now):
        return FormAccess("notice_passed", conv, hold=hold, slot_start=hold.slot_start)
    if holds.blocked(session, office.id, hold.slot_start, now):
        return FormAccess("closed", conv, hold=hold, slot_start=hold.slot_start)
    return FormAccess("open", conv, hold=hold, slot_start=hold.slot_start)


def submitted_since(session: Session, office_id: str, conversation_id: int, since: datetime,
                    other_than: str) -> str | None:
    """The nonce of the newest form link of the conversation, other than `other_than`, whose request was made at
    or after `since` (a page that kept what was typed on `other_than` sent again after the request was made)."""
    return session.scalar(select(FormSubmission.nonce).where(
        FormSubmission.office_id == office_id, FormSubmission.conversation_id == conversation_id,
        FormSubmission.created_at >= since, FormSubmission.nonce != other_than)
        .order_by(FormSubmission.created_at.desc()).limit(1))


# -- completing the form ------------------------------------------------------------------------------

def submit(session: Session, rt, office, conversation_id: int, nonce: str, values: dict[str, Any],
           now: datetime, revive: bool = True) -> Outcome:
    """A confirmed form: create the request for the held slot (or say why not). `revive`: a hold that ran out
    may be taken again (`form_access`); not for a link older than a link lives."""
    access = form_access(session, office, conversation_id, nonce, now, lock=True, revive=revive)
    if access.kind == "done":
        return Outcome("duplicate", reference=access.reference, slot_start=access.slot_start,
                       differs=_differs(session, rt, nonce, values))
    if access.kind == "applied":  # a page of an earlier link sent after a request was made from a later one
        return Outcome("limit")
    if access.kind == "closed":
        session.delete(access.hold)  # staff blocked the slot: given back for good, the chat offers the others
        return Outcome("closed", slot_start=access.slot_start)
    if access.kind not in ("open", "notice_passed"):  # notice_passed: create_request refuses it below
        return Outcome(access.kind)
    conv, hold = access.conversation, access.hold
    if access.kind == "open" and terms.awaiting_consent(session, office.id, conv.id, now.date()):
        # A terms version took effect while the form was open: consent comes first (in the chat); the hold
        # stays, so the same form can be sent once the user has agreed.
        log.info("request refused office=%s conversation=%s outcome=terms_changed", office.id, conv.id)
        return Outcome("terms_changed", slot_start=hold.slot_start)
    outcome = create_request(session, rt, office, conv, hold.slot_start, values, now)
    session.delete(hold)  # created or refused for good: either way the slot is not held any more
    if outcome.status == "created":
        session.add(FormSubmission(nonce=nonce, office_id=office.id, conversation_id=conv.id,
                                   booking_id=outcome.booking_id, created_at=now))
    session.flush()
    return outcome


def _differs(session: Session, rt, nonce: str, values: dict[str, Any]) -> bool:
    """A link's form sent again after its request was made carries other values than the request holds (another
    tab, corrected after the first was sent): the request keeps what was sent first, so the page must not say
    the change was received. Details erased since (データ削除), or under a key no longer configured: nothing to
    compare, nothing said."""
    booking = session.get(Booking, session.get(FormSubmission, nonce).booking_id)
    if booking is None or booking.details is None:
        return False
    try:
        kept = crypto.for_config(rt.config).decrypt(booking.details)
    except crypto.InvalidToken:
        return False
    sent = json.loads(json.dumps(values, ensure_ascii=False))   # as stored: JSON's own types
    return any(kept.get(name) != value for name, value in sent.items())


def create_request(session: Session, rt, office, conv: Conversation, slot_start: datetime,
                   values: dict[str, Any], now: datetime) -> Outcome:
    """Create a `requested` booking for the slot if a seat is free (no hold needed: the seat decides) and
    its booking deadline has not passed."""
    refusal = _refusal(session, office, conv, now)
    if refusal is None and slotsvc.deadline_passed(office, slot_start, now):
        refusal = "notice_passed"
    if refusal is not None:
        log.info("request refused office=%s conversation=%s outcome=%s", office.id, conv.id, refusal)
        return Outcome(refusal, slot_start=slot_start)
    try:
        booking, seat = _insert_with_seat(session, rt, office, conv, slot_start, values, now)
    except _SlotFull:
        log.info("request refused office=%s conversation=%s outcome=full", office.id, conv.id)
        return Outcome("full", slot_start=slot_start)
    rt.notify_staff(session, office, "new_request", booking.id, now)
    log.info("request created office=%s booking=%s conversation=%s seat=%s", office.id, booking.id, conv.id, seat)
    return Outcome("created", reference=booking.reference, booking_id=booking.id, slot_start=slot_start)


class _SlotFull(Exception):
    """Every seat of the slot is taken: the savepoint holding the new booking is rolled back."""


def _insert_with_seat(session: Session, rt, office, conv: Conversation, slot_start: datetime,
                      values: dict[str, Any], now: datetime) -> tuple[Booking, int]:
    """Insert the booking and claim its seat inside a savepoint; _SlotFull undoes both."""
    vault = crypto.for_config(rt.config)
    booking = Booking(
        reference=new_reference(session), office_id=office.id, conversation_id=conv.id,
        slot_start=slot_start, status=lifecycle.REQUESTED, source="line", seeker_hash=seeker_hash(rt, values),
        details=vault.encrypt({"v": DETAILS_VERSION, **values}),
        receipt_pending=True, created_at=now, updated_at=now,
    )
    conv.receipt_due = True
    with session.begin_nested():
        session.add(booking)
        session.flush()
        seat = claim_seat(session, office.id, slot_start, office.schedule.capacity, booking.id)
        if seat is None:
            raise _SlotFull
    return booking, seat


def open_ahead(session: Session, office_id: str, conversation_id: int, now: datetime,
               other_than: int | None = None) -> int:
    """The LINE account's open requests and bookings at the office whose slot is still ahead (what the office's
    `max_open_per_user` counts), the booking `other_than` left out."""
    query = select(func.count()).select_from(Booking).where(
        Booking.office_id == office_id, Booking.conversation_id == conversation_id,
        Booking.status.in_(lifecycle.OPEN_STATUSES), Booking.slot_start > now)
    if other_than is not None:
        query = query.where(Booking.id != other_than)
    return session.scalar(query) or 0


def _refusal(session: Session, office, conv: Conversation, now: datetime) -> OutcomeStatus | None:
    """Why this user may not request now: this LINE account blocked by staff, or at the office's limit."""
    if conv.booking_blocked:
        return "blocked"
    if open_ahead(session, office.id, conv.id, now) >= office.booking.max_open_per_user:
        return "limit"
    # The job seeker number typed is not checked here against other LINE accounts' requests or stops: an answer
    # that differed for a number in use would tell whoever types other people's numbers that they have a
    # booking, or were refused online counselling (第10条). The request is made as any other; staff deciding it
    # see the same number elsewhere (`same_number`), and cannot confirm one the office refused online.
    return None


@dataclass(frozen=True)
class SameNumber:
    """What staff deciding a request see of its job seeker number on other LINE accounts at the office."""
    open_references: tuple[str, ...]   # their open requests and bookings (one open booking per person)
    refused_online: bool               # an account of theirs was refused online counselling (第10条)
    # Of those, the ones already confirmed or offered another slot (the user's yes confirms it without staff):
    # approving this one too would give the number two bookings, so staff say they checked first.
    booked: tuple[str, ...] = ()


def same_number(session: Session, office_id: str, booking: Booking, now: datetime) -> SameNumber:
    """The request's job seeker number (its keyed hash) on other LINE accounts: their open requests and bookings,
    and whether one was refused online counselling. A booking staff made by phone belongs to no account."""
    if not booking.seeker_hash or booking.conversation_id is None:
        return SameNumber((), False)
    rows = session.execute(select(Booking.reference, Booking.status).where(
        Booking.office_id == office_id, Booking.seeker_hash == booking.seeker_hash, Booking.id != booking.id,
        Booking.conversation_id.is_not(None), Booking.conversation_id != booking.conversation_id,
        Booking.status.in_(lifecycle.OPEN_STATUSES), Booking.slot_start > now).order_by(Booking.slot_start)).all()
    booked = tuple(ref for ref, status in rows if status in (lifecycle.CONFIRMED, lifecycle.PROPOSED))
    return SameNumber(tuple(ref for ref, _ in rows), refused_online(session, office_id, booking.seeker_hash,
                                                                    other_than=booking.conversation_id), booked)


def refused_online(session: Session, office_id: str, digest: str, other_than: int | None = None) -> bool:
    """Did staff stop the online booking of a LINE account (other than `other_than`) that booked with this job
    seeker number (its keyed hash) at this office?"""
    query = select(Booking.id).join(Conversation, Conversation.id == Booking.conversation_id).where(
        Booking.office_id == office_id, Booking.seeker_hash == digest, Conversation.booking_blocked.is_(True))
    if other_than is not None:
        query = query.where(Booking.conversation_id != other_than)
    return session.scalar(query.limit(1)) is not None


def seeker_hash(rt, values: dict[str, Any]) -> str | None:
    """The keyed hash of the job seeker number in `values` (normalised first), if there is one."""
    number = validation.normalise_seeker_number(values.get("seeker_number") or "")
    if isinstance(number, validation.FieldError):
        return None
    return crypto.for_config(rt.config).seeker_hash(number)


# -- seats and references -------------------------------------------------------------------------

def _insert(session: Session):
    return postgresql.insert if session.bind.dialect.name == "postgresql" else sqlite.insert


def claim_seat(session: Session, office_id: str, slot_start: datetime, capacity: int, booking_id: int) -> int | None:
    """Take the first free seat 0..capacity-1 of the slot; None when all are taken.

    A seat is a unique (office, slot start, seat) row: a concurrent insert of the same seat waits for the
    other transaction and then does nothing, so no two requests ever hold one seat.
    """
    claims = SlotClaim.__table__
    for seat in range(capacity):
        # RETURNING, not rowcount: an ORM insert on PostgreSQL reports rowcount -1 whatever happened.
        claimed = session.execute(_insert(session)(claims).values(
            office_id=office_id, slot_start=slot_start, seat=seat, booking_id=booking_id,
        ).on_conflict_do_nothing().returning(claims.c.id)).scalar()
        if claimed is not None:
            return seat
    return None


def new_reference(session: Session) -> str:
    """A fresh `XXXX-XXXX` reference not used by any request yet."""
    for _ in range(20):
        code = "".join(secrets.choice(REFERENCE_ALPHABET) for _ in range(8))
        reference = f"{code[:4]}-{code[4:]}"
        if session.scalar(select(Booking.id).where(Booking.reference == reference)) is None:
            return reference
    raise RuntimeError("could not find an unused reference")  # 32**8 codes: practically unreachable


def purge_submissions(session: Session, now: datetime) -> int:
    """Forget used links after a day (their completion page then says the link has expired)."""
    return session.execute(delete(FormSubmission).where(
        FormSubmission.created_at < now - SUBMISSION_KEEP)).rowcount or 0
