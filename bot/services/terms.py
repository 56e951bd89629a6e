"""Terms versions and consent: which version is in force, who consented to what."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import bindparam, delete, func, insert, select, update
from sqlalchemy.orm import Session

from bot.models import BroadcastChunk, Consent, Conversation, TermsBroadcast, TermsVersion
from bot.offices import TERMS_SUMMARY_MAX
from bot.rawsql import Statement, bound
from bot.services.broadcasts import LEASE, pending_versions


def _in_force(what, office_id, today):
    """The newest version whose effective date (`today`, ISO) has come: `what` of it (the row, or one
    column); the values may be bind parameters."""
    return (select(what)
            .where(TermsVersion.office_id == office_id, TermsVersion.version <= today)
            .order_by(TermsVersion.version.desc())
            .limit(1))


def current(session: Session, office_id: str, today: date) -> TermsVersion | None:
    """The newest version whose effective date has come."""
    return session.scalar(_in_force(TermsVersion, office_id, today.isoformat()))


# What the dialog asks and records on a consent step (予約, 同意する), as compiled statements (`bot.rawsql`):
# through the ORM each cost several times the query itself.
_consents = Consent.__table__
_CURRENT_VERSION = Statement(_in_force(TermsVersion.version, bindparam("office_id"), bindparam("today")))
# A consent to the version, or (a correction published with --no-reconsent) to any since the one whose consent
# stands for it: one statement still, the version's own `consent_from` read in it.
_CONSENT_BASE = (select(func.coalesce(TermsVersion.consent_from, TermsVersion.version))
                 .where(TermsVersion.office_id == Consent.office_id, TermsVersion.version == bindparam("version"))
                 .scalar_subquery())
_CONSENTED = Statement(
    select(Consent.id)
    .where(Consent.conversation_id == bindparam("conversation_id"), Consent.version <= bindparam("version"),
           Consent.version >= func.coalesce(_CONSENT_BASE, bindparam("version")))
    .limit(1))
_LATEST_CONSENTED_VERSION = Statement(
    select(Consent.version).where(Consent.conversation_id == bindparam("conversation_id"))
    .order_by(Consent.version.desc(), Consent.id.desc()).limit(1))
_RECORD_CONSENT = Statement(insert(_consents).inline().values(bound(
    _consents, ("office_id", "conversation_id", "version", "consented_at", "webhook_event_id", "method"))))


def current_version(session: Session, office_id: str, today: date) -> str | None:
    """`current`'s version string alone (the dialog asks on each consent step; the body is not needed)."""
    return _CURRENT_VERSION.scalar(session, {"office_id": office_id, "today": today.isoformat()})


def consent_base(session: Session, office_id: str, version: str) -> str:
    """The version whose consent stands for `version`: itself, or for a correction (`--no-reconsent`) the
    version it corrects. A notice of a version older than the base of the one in force is superseded."""
    return session.scalar(select(TermsVersion.consent_from).where(
        TermsVersion.office_id == office_id, TermsVersion.version == version)) or version


def summary(session: Session, office_id: str, version: str) -> str | None:
    """A version's summary alone (None for an unknown version or one without a summary); of a correction
    (`--no-reconsent`), the summary of the version it corrects: what a user consenting to it agrees to anew."""
    found = session.execute(select(TermsVersion.summary, TermsVersion.consent_from).where(
        TermsVersion.office_id == office_id, TermsVersion.version == version)).first()
    if found is None or found.consent_from is None:
        return found.summary if found else None
    return summary(session, office_id, found.consent_from)


def upcoming(session: Session, office_id: str, today: date) -> tuple[str, str | None] | None:
    """The next published version not in force yet that will ask consent (a correction, `--no-reconsent`, asks
    none): its (version, summary); None without one. Said to a user consenting now, who may book a session that
    falls after it (the terms count using the service after a change as agreeing to it)."""
    found = session.execute(select(TermsVersion.version, TermsVersion.summary).where(
        TermsVersion.office_id == office_id, TermsVersion.version > today.isoformat(),
        TermsVersion.consent_from.is_(None)).order_by(TermsVersion.version).limit(1)).first()
    return (found.version, found.summary) if found else None


CHANGES_SHOWN = 3   # at most this many versions' summaries in one consent prompt (one LINE message)


def changes_since(session: Session, office_id: str, since: str | None, version: str) -> tuple[list[dict], bool]:
    """What changed from the version a user last consented to (`since`, excluded) up to `version`: the summary of
    each version asking consent between them, oldest first (a correction, `--no-reconsent`, adds none: its
    summary is its base's). Two versions published one after the other and a user who booked under neither
    consents to both changes at once, so both are said. The newest always; older ones while they fit in
    TERMS_SUMMARY_MAX characters together (at most CHANGES_SHOWN): the second value tells that older changes were
    left to the full text."""
    rows = session.execute(select(TermsVersion.version, TermsVersion.summary).where(
        TermsVersion.office_id == office_id, TermsVersion.version <= version,
        TermsVersion.version > (since or ""), TermsVersion.consent_from.is_(None),
        TermsVersion.summary.is_not(None)).order_by(TermsVersion.version.desc())).all()
    shown: list[dict] = []
    size = 0
    for row in rows:
        text = row.summary.strip()
        if not text:
            continue
        if shown and (len(shown) >= CHANGES_SHOWN or size + len(text) > TERMS_SUMMARY_MAX):
            return shown[::-1], True
        shown.append({"version": row.version, "summary": text})
        size += len(text)
    return shown[::-1], False


def get(session: Session, office_id: str, version: str) -> TermsVersion | None:
    return session.scalar(select(TermsVersion).where(
        TermsVersion.office_id == office_id, TermsVersion.version == version))


def versions(session: Session, office_id: str) -> list[TermsVersion]:
    return list(session.scalars(select(TermsVersion).where(TermsVersion.office_id == office_id)
                                .order_by(TermsVersion.version.desc())))


def has_consented(session: Session, conversation_id: int, version: str) -> bool:
    return _CONSENTED.scalar(session, {"conversation_id": conversation_id, "version": version}) is not None


def awaiting_consent(session: Session, office_id: str, conversation_id: int, today: date) -> str | None:
    """The version in force that this conversation has not consented to (it took effect mid-booking), or None."""
    version = current_version(session, office_id, today)
    if version is None or has_consented(session, conversation_id, version):
        return None
    return version


def latest_consented_version(session: Session, conversation_id: int) -> str | None:
    """The newest version the user consented to (None before any consent)."""
    return _LATEST_CONSENTED_VERSION.scalar(session, {"conversation_id": conversation_id})


def record_consent(session: Session, conv: Conversation, version: str, *, now: datetime, event_id: str,
                   method: str) -> None:
    """The user's consent to `version`, in the session's transaction (a compiled statement, as the reads)."""
    _RECORD_CONSENT.execute(session, {"office_id": conv.office_id, "conversation_id": conv.id, "version": version,
                                      "consented_at": now, "webhook_event_id": event_id, "method": method})


def seed(session: Session, offices, now: datetime) -> int:
    """Insert the shipped versions that the database does not hold yet (idempotent)."""
    added = 0
    for office in offices.values():
        for spec in office.terms:
            if get(session, office.id, spec.version) is not None:
                continue
            body = spec.path.read_text(encoding="utf-8") if spec.path else None
            session.add(TermsVersion(office_id=office.id, version=spec.version, body=body,
                                     summary=spec.summary, published_at=now))
            added += 1
    return added


class PublishError(ValueError):
    """A terms version that cannot be published (the message says why, for the operator)."""


def publish(session: Session, office_id: str, version: str, body: str, summary: str, *,
            today: date, now: datetime, reconsent: bool = True) -> TermsVersion:
    """Add a new version, effective on its date (today or later); older versions stay readable. `reconsent`
    False: a correction of wording (a typo) that changes nothing a user agreed to; whoever consented to the
    version before it (or to the one that version corrects, or any since) is not asked again."""
    try:
        effective = date.fromisoformat(version)
    except ValueError as exc:
        raise PublishError(f"version must be a date YYYY-MM-DD, not {version!r}") from exc
    if effective.isoformat() != version:
        raise PublishError(f"version must be written YYYY-MM-DD, not {version!r}")
    if effective < today:
        raise PublishError(f"version {version} is in the past; a new version takes effect today ({today.isoformat()} "
                           "in Japan, where the bot's dates are) or later")
    if not body or not body.strip():
        raise PublishError("the terms text is empty")
    if not summary or not summary.strip():
        raise PublishError("a summary of what changed is required")
    if len(summary.strip()) > TERMS_SUMMARY_MAX:
        raise PublishError(f"the summary is {len(summary.strip())} characters; keep it to at most {TERMS_SUMMARY_MAX} "
                           "characters (what changed, in a few lines: the full text is on the terms page)")
    if get(session, office_id, version) is not None:
        raise PublishError(f"version {version} already exists for {office_id}")
    later = session.scalar(select(TermsVersion).where(
        TermsVersion.office_id == office_id, TermsVersion.version > version,
        TermsVersion.consent_from < version).order_by(TermsVersion.version).limit(1))
    if later is not None:   # its consents would stand for this one's changes, which it would not show
        raise PublishError(f"version {later.version} corrects {later.consent_from} without new consent; a version "
                           f"between them would be skipped: withdraw {later.version} first (terms withdraw)")
    consent_from = None
    if not reconsent:
        before = session.scalar(select(TermsVersion).where(
            TermsVersion.office_id == office_id, TermsVersion.version < version)
            .order_by(TermsVersion.version.desc()).limit(1))
        if before is None:
            raise PublishError("--no-reconsent corrects the version before; there is none")
        consent_from = before.consent_from or before.version
    row = TermsVersion(office_id=office_id, version=version, body=body.strip() + "\n", summary=summary.strip(),
                       published_at=now, consent_from=consent_from)
    session.add(row)
    return row


def withdraw(session: Session, office_id: str, version: str, *, now: datetime) -> list[TermsBroadcast]:
    """Take back a version published by mistake before it takes effect (nobody consented to it, no request was
    made under it): its row, its notices' runs (so that the version published again in its place may be told)
    and the next-message notices not yet told. Returns the runs that had told followers, for the operator."""
    today = now.date()
    row = get(session, office_id, version)
    if row is None:
        raise PublishError(f"no version {version} for {office_id}")
    if version <= today.isoformat():
        raise PublishError(f"version {version} has taken effect ({today.isoformat()} in Japan): users may have "
                           "consented to it and made requests under it, so it stays on record; publish a corrected "
                           "version with a later date instead")
    correction = session.scalar(select(TermsVersion.version).where(
        TermsVersion.office_id == office_id, TermsVersion.consent_from == version).limit(1))
    if correction is not None:
        raise PublishError(f"version {correction} corrects {version}: withdraw {correction} first")
    # Under the version row's lock, as every notice's start: a run starting now waits, then finds no version.
    session.execute(select(TermsVersion.id).where(TermsVersion.id == row.id).with_for_update())
    runs = list(session.scalars(select(TermsBroadcast).where(
        TermsBroadcast.office_id == office_id, TermsBroadcast.version == version).order_by(TermsBroadcast.id)))
    if any(run.status == "running" and run.heartbeat_at is not None and run.heartbeat_at >= now - LEASE
           for run in runs):   # a run whose command was killed is taken over after LEASE: it is not going
        raise PublishError(f"a notice of {version} is being sent: stop it (Ctrl+C) first, then withdraw")
    told = [run for run in runs if run.mode != "next-message" and session.scalar(
        select(BroadcastChunk.id).where(BroadcastChunk.broadcast_id == run.id, BroadcastChunk.status == "sent")
        .limit(1)) is not None]
    session.execute(delete(BroadcastChunk).where(BroadcastChunk.broadcast_id.in_([run.id for run in runs])))
    session.execute(delete(TermsBroadcast).where(TermsBroadcast.id.in_([run.id for run in runs])))
    forget_notice(session, office_id, version)
    session.delete(row)
    return told


def forget_notice(session: Session, office_id: str, version: str) -> None:
    """Take `version` out of the notices waiting for next replies (`pending_notice`, a list of versions)."""
    column = Conversation.pending_notice
    session.execute(update(Conversation).where(Conversation.office_id == office_id, column == version)
                    .values(pending_notice=None).execution_options(synchronize_session=False))
    for conversation_id, value in session.execute(select(Conversation.id, column).where(
            Conversation.office_id == office_id, column.contains(version, autoescape=True))).all():
        kept = [waiting for waiting in pending_versions(value) if waiting != version]
        session.execute(update(Conversation).where(Conversation.id == conversation_id)
                        .values(pending_notice=" ".join(kept) or None).execution_options(synchronize_session=False))


def consent_behind(session: Session, conversation_id: int, made_at: datetime) -> Consent | None:
    """The consent a request made at `made_at` went in under: the user's newest one by then (the form takes a
    request only once the version in force is consented to, so it is that version's)."""
    return session.scalar(select(Consent).where(Consent.conversation_id == conversation_id,
                                                Consent.consented_at <= made_at)
                          .order_by(Consent.consented_at.desc(), Consent.id.desc()).limit(1))


def versions_consented_behind(session: Session, made: list[tuple[int | None, datetime]]
                              ) -> dict[tuple[int, datetime], str]:
    """`consent_behind` for many requests at once (conversation id, made at) -> the version, in one query: the
    CSV export's column. Requests without a conversation (phone, window) or without a consent are left out."""
    ids = {conv for conv, _ in made if conv is not None}
    if not ids:
        return {}
    by_conversation: dict[int, list[Consent]] = {}
    for consent in session.scalars(select(Consent).where(Consent.conversation_id.in_(ids))
                                   .order_by(Consent.consented_at, Consent.id)):
        by_conversation.setdefault(consent.conversation_id, []).append(consent)
    found = {}
    for conv, at in made:
        behind = [c for c in by_conversation.get(conv, ()) if c.consented_at <= at]
        if behind:
            found[(conv, at)] = behind[-1].version
    return found


def consent_log(session: Session, office_id: str) -> list[Consent]:
    """The office's consent record, oldest first."""
    return list(session.scalars(select(Consent).where(Consent.office_id == office_id)
                                .order_by(Consent.consented_at, Consent.id)))
