"""Personal data from entry to deletion, after a full run: several bookings through the chat and the form, staff
at work on the dashboard (views, decisions, notes, a search, an export, a slot blocked with a reason and booked by
phone with an override reason, then cancelled with a memo), the worker sending. Staff notes, memos, override and
block reasons carry what staff really write there (a phone number, an illness).

- Neither the database (the SQLite files byte for byte, and every text, JSON and binary column read back on
  either backend, as a dump would) nor anything logged holds a plaintext personal value; nor does the log name
  a user's LINE id, the reply token of their event or the token of their form link, even with SQLAlchemy's
  engine logger at DEBUG (which logs every row fetched).
- `flask --app app keys rotate` re-encrypts under the new key without losing a value; the old key can go.
- The retention purge removes what the office's schedule says, when it says.
- `データ削除` leaves none of the user's values behind, even encrypted (details, notes, memos, override reasons);
  other users' stay.
- Unfollowing only marks the user as not following: nothing is deleted or changed, nothing is pushed; once
  their details went, the user's LINE id goes too.
"""
from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import pyotp
import pytest
from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import select, text

from bot.clock import TOKYO
from bot.crypto import Vault
from bot.models import Booking, Consent, Conversation, SlotBlock
from bot.schema import Base
from bot.staff import auth, decisions, personal
from bot.staff.audit import Actor
from bot.staff.models import AuditEntry, BookingHandoff, StaffUser
from bot.worker import Worker
from tests.formflow import Page, form_link, walk_to_slots
from tests.reliability.kit import Person, leaks
from tests.staffkit import fast_password_hashing  # noqa: F401 - autouse fixture
from tests.staffkit import create_staff, login, post, postback_value, reveal


def staff_note(person: Person) -> str:
    """A 職員メモ as staff write them: who phoned, their number, their illness."""
    return f"本人より電話 {person.phone} 職員メモ{person.n:04d}番 うつ病で通院中"


def cancel_memo(person: Person) -> str:
    """The memo of a cancellation on the user's behalf, as staff write them."""
    return f"本人より取消の電話 {person.phone} 取消メモ{person.n:04d}番 入院のため"


def override_reason(person: Person) -> str:
    """Why staff booked a slot that could not be booked, as staff write it."""
    return f"本人より電話 {person.phone} 例外理由{person.n:04d}番 通院のため"


def block_reason(person: Person) -> str:
    """Why staff took a slot out of online booking, as staff write it."""
    return f"本人より電話 {person.phone} 停止理由{person.n:04d}番 通院の付き添い"


def note_secrets(text: str) -> list[str]:
    """A note or memo whole, and the part that names its person without the phone number."""
    return [text, text.split()[2]]


@dataclass
class FullRun:
    """What a full run left: the people (their values), their users, the requests' references, the notes."""

    people: dict[str, Person] = field(default_factory=dict)     # user id -> person
    users: dict[str, object] = field(default_factory=dict)      # user id -> LineUser
    references: dict[str, str] = field(default_factory=dict)    # user id -> reference
    phone_person: Person | None = None
    phone_reference: str | None = None
    details: dict[str, dict] = field(default_factory=dict)      # reference -> details as decrypted
    notes: dict[str, str] = field(default_factory=dict)         # reference -> its 職員メモ
    memos: dict[str, str] = field(default_factory=dict)         # reference -> the memo of its cancellation
    reasons: dict[str, str] = field(default_factory=dict)       # reference -> why it was booked by exception
    block_reasons: list[str] = field(default_factory=list)      # why slots were blocked

    def written(self) -> list[str]:
        """Everything staff wrote: notes, memos, override reasons, block reasons."""
        return [*self.notes.values(), *self.memos.values(), *self.reasons.values(), *self.block_reasons]

    def secrets(self) -> list[str]:
        found = [value for person in self.people.values() for value in person.secrets()]
        found += [value for text in self.written() for value in note_secrets(text)]
        return found + (self.phone_person.secrets() if self.phone_person else [])


def _book(app, rt, fake, user, person: Person) -> str:
    walk_to_slots(user, rt)
    user.says("1")
    browser = app.test_client()
    confirmation = Page.get(browser, form_link(fake.messages_to(user.user_id))).submit(
        browser, person.answers(rt.offices[user.office]))
    assert confirmation.status == 200, confirmation.html
    done = confirmation.submit(browser)
    assert done.status == 200
    return done.html.split("受付番号: ")[1][:9]


def full_run(app, rt, fake, user_factory) -> FullRun:
    run = FullRun()
    for n, office in enumerate(("sakata", "otaru", "otaru")):
        user = user_factory(office)
        person = Person(900 + n)
        run.people[user.user_id], run.users[user.user_id] = person, user
        run.references[user.user_id] = _book(app, rt, fake, user, person)
    sakata, otaru = app.test_client(), app.test_client()
    create_staff(rt, "sakata", "sakata-admin", role="admin")
    create_staff(rt, "otaru", "otaru-admin", role="admin")
    login(sakata, "sakata-admin")
    login(otaru, "otaru-admin")
    (a, b, c) = run.references.values()
    for client, reference in ((sakata, a), (otaru, b), (otaru, c)):
        assert reveal(client, reference).status_code == 302                         # details viewed (audited)
        assert client.get(f"/staff/bookings/{reference}").status_code == 200
    assert post(sakata, f"/staff/bookings/{a}/confirm").status_code == 302
    assert post(otaru, f"/staff/bookings/{b}/confirm").status_code == 302
    assert post(otaru, f"/staff/bookings/{c}/decline", reason="schedule").status_code == 302
    (person_a, person_b, _) = run.people.values()
    for client, reference, person in ((sakata, a, person_a), (otaru, b, person_b)):
        run.notes[reference] = staff_note(person)
        assert post(client, f"/staff/bookings/{reference}/note", note=staff_note(person)).status_code == 302
        assert staff_note(person) in client.get(f"/staff/bookings/{reference}").get_data(as_text=True)
    first = next(iter(run.people.values()))
    assert post(sakata, "/staff/search", seeker_number=first.seeker_number).status_code == 200
    exported = post(otaru, "/staff/export", **{"from": "2026-12-01", "to": "2027-01-31", "encoding": "utf8",
                                               "contents": "details"})
    assert exported.status_code == 200 and staff_note(person_b) in exported.get_data().decode("utf-8-sig")
    run.phone_person = phone = Person(999)
    slot = "2026-12-03T11:00:00+09:00"                                 # blocked: staff book it by exception
    run.block_reasons.append(block_reason(phone))
    assert post(otaru, "/staff/blocks", day="2026-12-03", slot=slot, reason=block_reason(phone)).status_code == 302
    by_phone = {"source": "phone", "slot": slot, "name": phone.name, "seeker_number": phone.seeker_number,
                "phone": phone.phone, "consultation": phone.consultation}
    assert post(otaru, "/staff/bookings/new", **by_phone).status_code == 400      # not without a reason
    made = post(otaru, "/staff/bookings/new", **by_phone, override_reason=override_reason(phone))
    assert made.status_code == 302, made.get_data(as_text=True)
    run.phone_reference = made.headers["Location"].rstrip("/").rsplit("/", 1)[1]
    run.reasons[run.phone_reference] = override_reason(phone)
    assert reveal(otaru, run.phone_reference).status_code == 302
    assert override_reason(phone) in otaru.get(made.headers["Location"]).get_data(as_text=True)
    run.memos[run.phone_reference] = cancel_memo(phone)                # the caller phoned again: cancelled
    assert post(otaru, f"/staff/bookings/{run.phone_reference}/cancel_user",
                note=cancel_memo(phone)).status_code == 302
    assert cancel_memo(phone) in otaru.get(f"/staff/bookings/{run.phone_reference}").get_data(as_text=True)
    with rt.db.transaction() as s:
        admin = s.scalar(select(StaffUser).where(StaffUser.username == "sakata-admin"))
        secret = auth.new_totp_secret()
        assert auth.enroll_totp(rt.config, admin, secret, pyotp.TOTP(secret).at(rt.clock.now()), rt.clock.now())
    Worker(rt).run_once()
    for user in run.users.values():
        user.says("予約確認")
    rt.clock.freeze(datetime(2026, 12, 1, 12, 30, tzinfo=TOKYO))   # the day before Otaru's session: a reminder
    Worker(rt).run_once()
    with rt.db.reading() as s:
        run.details = {b.reference: personal.decrypt(rt, b.details) for b in s.scalars(select(Booking))}
    assert all(run.details.values()) and len(run.details) == 4
    return run


# -- looking for plaintext ----------------------------------------------------------------------------------

def database_blobs(rt, database_url: str) -> list[bytes]:
    """What a copy of the database would give away: the files (SQLite), and every stored value read back."""
    blobs: list[bytes] = []
    if database_url.startswith("sqlite"):
        path = Path(database_url.split("///", 1)[1])
        for suffix in ("", "-wal", "-shm", "-journal"):
            candidate = Path(str(path) + suffix)
            if candidate.exists():
                blobs.append(candidate.read_bytes())
    with rt.db.reading() as s:
        for table in Base.metadata.sorted_tables:
            for row in s.execute(table.select()):
                for value in row:
                    if isinstance(value, (bytes, bytearray, memoryview)):
                        blobs.append(bytes(value))
                    elif isinstance(value, (dict, list)):
                        blobs.append(json.dumps(value, ensure_ascii=False).encode())
                    elif value is not None:
                        blobs.append(str(value).encode())
        if s.bind.dialect.name == "postgresql":
            columns = s.execute(text(
                "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public' "
                "AND data_type IN ('text', 'character varying', 'character', 'json', 'jsonb', 'bytea')")).all()
            for table_name, column in columns:
                for (value,) in s.execute(text(f'SELECT "{column}"::text FROM "{table_name}"')):
                    if value is not None:
                        blobs.append(value.encode())
    return blobs


def test_no_plaintext_is_stored_or_logged_and_keys_rotate_without_loss(make_app, app, rt, fake_line, user_factory,
                                                                       database_url, caplog, capfd):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="sqlalchemy.engine")   # as an operator chasing a query would
    run = full_run(app, rt, fake_line, user_factory)
    secrets = run.secrets()
    logged = caplog.text + "".join(capfd.readouterr())
    no_plaintext_anywhere(rt, database_url, secrets, logged, fake_line)
    assert len(caplog.records) > 20, "nothing was logged: the check proves nothing"
    assert any(r.name.startswith("sqlalchemy.engine") and r.getMessage().startswith("Row ") for r in caplog.records), \
        "no row was logged: the check of the engine's log proves nothing"
    assert leaks(logged.encode(), identifiers(run, fake_line)) == []
    keys_rotate_without_loss(make_app, rt, run)
    no_plaintext_anywhere(rt, database_url, secrets, caplog.text + "".join(capfd.readouterr()), fake_line)


def test_deletion_unfollow_and_retention_after_a_full_run(app, rt, fake_line, user_factory, database_url):
    run = full_run(app, rt, fake_line, user_factory)
    sakata_user, otaru_user, declined_user = run.users
    data_deletion_leaves_nothing(rt, database_url, run, sakata_user)
    unfollow_only_marks_the_user(app, rt, fake_line, run, otaru_user)
    retention_follows_the_schedule(rt, run, confirmed=run.references[otaru_user],
                                   closed=run.references[declined_user])


def test_what_data_deletion_erased_leaves_the_sqlite_files_within_the_hour(app, rt, fake_line, user_factory,
                                                                          database_url):
    """SQLite's write-ahead log keeps earlier page images, so the erased details and note, encrypted, still
    opened from the `-wal` file with the key after `データ削除`: the worker's hourly pass truncates it."""
    run = full_run(app, rt, fake_line, user_factory)
    sakata_user = next(iter(run.users))
    data_deletion_leaves_nothing(rt, database_url, run, sakata_user)
    rt.clock.freeze(rt.clock.now() + timedelta(hours=1))
    figures = Worker(rt).run_once()
    if not database_url.startswith("sqlite"):
        assert "sqlite_log_truncated" not in figures     # PostgreSQL vacuums its old rows itself
        return
    assert figures["sqlite_log_truncated"] == 1
    opened = _tokens_in_files(Vault(rt.config.data_encryption_keys, rt.config.secret_key), database_url)
    mine = run.people[sakata_user].secrets() + note_secrets(staff_note(run.people[sakata_user]))
    assert [text for text in opened if leaks(text.encode(), mine)] == []
    others = [person.name for uid, person in run.people.items() if uid != sakata_user]
    assert all(any(name in text for text in opened) for name in others), "the scan found nothing: it proves nothing"


def _tokens_in_files(vault: Vault, database_url: str) -> list[str]:
    """Every Fernet token in the SQLite files (the database, its log) that the vault's keys open, opened."""
    path = database_url.split("///", 1)[1]
    opened = []
    for file in (Path(path), Path(path + "-wal")):
        for run in re.findall(rb"gAAAAA[A-Za-z0-9_=-]+", file.read_bytes() if file.exists() else b""):
            # The next column may go on in the same letters (a time: 2026-12-01): the token is a prefix.
            for end in range(len(run) - len(run) % 4, 0, -4):
                try:
                    opened.append(vault.decrypt_text(run[:end]))
                    break
                except InvalidToken:
                    pass
    return opened


# -- the checks -----------------------------------------------------------------------------------------------

def no_plaintext_anywhere(rt, database_url: str, secrets: list[str], logged: str, fake) -> None:
    for blob in database_blobs(rt, database_url):
        assert leaks(blob, secrets) == []
    assert leaks(logged.encode(), secrets) == []
    for call in fake.calls:
        assert leaks(call.raw, secrets) == []


def identifiers(run: FullRun, fake) -> list[str]:
    """What names a user or opens their booking without being a form value, and so has no place in a log either:
    their LINE user ids, the reply tokens of their events and the tokens of their form links."""
    found = list(run.users)
    found += [call.body["replyToken"] for call in fake.calls
              if isinstance(call.body, dict) and call.body.get("replyToken")]
    found += [form_link(fake.messages_to(user_id)).rsplit("/form/", 1)[1].split("/")[0] for user_id in run.users]
    assert len(found) > 2 * len(run.users), "no reply token was seen: the check proves nothing"
    return found


def keys_rotate_without_loss(make_app, rt, run: FullRun) -> None:
    old, new = rt.config.data_encryption_keys[0], Fernet.generate_key().decode()
    both = make_app(data_encryption_keys=(new, old))
    result = both.test_cli_runner().invoke(args=["keys", "rotate"])
    assert result.exit_code == 0, result.output
    assert "request details: rotated=4 already_current=0 unreadable=0" in result.output
    assert "staff notes: rotated=2 already_current=0 unreadable=0" in result.output
    assert "cancellation memos: rotated=1 already_current=0 unreadable=0" in result.output
    assert "override reasons: rotated=1 already_current=0 unreadable=0" in result.output
    assert "slot block reasons: rotated=1 already_current=0 unreadable=0" in result.output
    assert "staff second factors: rotated=1" in result.output
    assert leaks(result.output.encode(), run.secrets()) == []
    if rt.config.database_url.startswith("sqlite"):              # no copy the old key alone opens is left,
        assert _tokens_in_files(Vault([old], rt.config.secret_key), rt.config.database_url) == []  # in the log either
    only_new = make_app(data_encryption_keys=(new,))             # the old key removed
    new_rt = only_new.extensions["madoguchi"]
    with new_rt.db.reading() as s:
        rows = list(s.scalars(select(Booking)))
        admin = s.scalar(select(StaffUser).where(StaffUser.totp_secret.is_not(None)))
        memos = {e.reference: e.note for e in s.scalars(select(AuditEntry).where(AuditEntry.note.is_not(None)))}
        reasons = _override_reasons(s)
        blocks = [token for token in s.scalars(select(SlotBlock.reason)) if token is not None]
    assert {b.reference: personal.decrypt(new_rt, b.details) for b in rows} == run.details
    assert [personal.open_note(new_rt, token) for token in blocks] == run.block_reasons
    assert {b.reference: personal.open_note(new_rt, b.staff_note) for b in rows if b.staff_note} == run.notes
    assert {ref: personal.open_note(new_rt, token) for ref, token in memos.items()} == run.memos
    assert {ref: personal.open_note(new_rt, token) for ref, token in reasons.items()} == run.reasons
    old_vault = Vault([old], rt.config.secret_key)
    for token in ([b.details for b in rows] + [b.staff_note for b in rows if b.staff_note] + list(memos.values())
                  + list(reasons.values()) + blocks):
        with pytest.raises(InvalidToken):
            old_vault.decrypt_text(token)
    assert auth._fernet(new_rt.config).decrypt(admin.totp_secret.encode())   # the second factor still opens
    again = only_new.test_cli_runner().invoke(args=["keys", "rotate"])
    assert again.exit_code == 0 and "rotated=0 already_current=4" in again.output


def data_deletion_leaves_nothing(rt, database_url: str, run: FullRun, user_id: str) -> None:
    user, person, reference = run.users[user_id], run.people[user_id], run.references[user_id]
    user.says("データ削除")                                             # Sakata: a confirmed session is
    assert "いまは個人情報を削除できません" in user.messages()[-1]["text"]    # cancelled by phone, not here
    assert _booking(rt, reference).details is not None
    with rt.db.transaction() as s:                                     # the user phoned; staff cancel it
        booking = s.scalar(select(Booking).where(Booking.reference == reference))
        assert decisions.cancel(s, rt, rt.offices[booking.office_id], booking, Actor(label="sakata-admin"),
                                rt.clock.now(), by_office=False, note=cancel_memo(person)).changed
    with rt.db.transaction() as s:       # no dashboard path gives a request from the chat an override reason,
        booking = s.scalar(select(Booking).where(Booking.reference == reference))   # but one there goes too
        decisions.handoff_of(s, booking, rt.clock.now()).override_reason = personal.seal_note(
            rt, override_reason(person), decisions.OVERRIDE_LIMIT)
    assert personal.open_note(rt, _memo_entry(rt, reference, "cancel_for_user").note) == cancel_memo(person)
    assert personal.open_note(rt, _booking(rt, reference).staff_note) == staff_note(person)
    user.says("データ削除")
    user.taps(postback_value(user.messages(), "削除する"))
    gone = _booking(rt, reference)
    assert gone.details is None and gone.seeker_hash is None and gone.status == "cancelled"
    assert gone.staff_note is None
    with rt.db.reading() as s:                                        # the handoff row stays, without it
        assert s.get(BookingHandoff, gone.id) is not None and reference not in _override_reasons(s)
    entry = _memo_entry(rt, reference, "cancel_for_user")             # the entry stays, without its memo
    assert entry.note is None and entry.actor == "sakata-admin" and entry.at is not None
    vault = Vault(rt.config.data_encryption_keys, rt.config.secret_key)
    with rt.db.reading() as s:
        bookings = list(s.scalars(select(Booking)))
        opened = [json.dumps(vault.decrypt(b.details), ensure_ascii=False).encode()
                  for b in bookings if b.details is not None]
        notes = [vault.decrypt_text(b.staff_note).encode() for b in bookings if b.staff_note is not None]
        notes += [vault.decrypt_text(e.note).encode()
                  for e in s.scalars(select(AuditEntry).where(AuditEntry.note.is_not(None)))]
        notes += [vault.decrypt_text(token).encode() for token in _override_reasons(s).values()]
        conv = s.scalar(select(Conversation).where(Conversation.line_user_id == user_id))
    assert len(opened) == 3
    written = [*run.notes.items(), *run.memos.items(), *run.reasons.items()]
    assert sorted(notes) == sorted(text.encode() for ref, text in written if ref != reference), \
        "the other users' notes, memos and override reasons must stay"
    mine = person.secrets() + [value for text in (staff_note(person), cancel_memo(person), override_reason(person))
                               for value in note_secrets(text)]
    for blob in opened + notes + database_blobs(rt, database_url):
        assert leaks(blob, mine) == []                                # not even encrypted
    others = [v for uid, p in run.people.items() if uid != user_id for v in p.secrets()[:3]]
    assert any(leaks(blob, others) for blob in opened), "the other users' details must stay"
    assert conv.state == "idle" and conv.context == {}
    assert user.says("予約確認").status_code == 200                   # the chat still works


def unfollow_only_marks_the_user(app, rt, fake, run: FullRun, user_id: str) -> None:
    user, reference = run.users[user_id], run.references[user_id]
    kept = [t for t in Base.metadata.sorted_tables if t.name not in ("conversations", "processed_events", "outbox")]
    with rt.db.reading() as s:
        before = {t.name: [tuple(r) for r in s.execute(t.select())] for t in kept}
        conv_before = s.scalar(select(Conversation).where(Conversation.line_user_id == user_id))
    user.unfollows()
    with rt.db.reading() as s:
        after = {t.name: [tuple(r) for r in s.execute(t.select())] for t in kept}
        conv = s.scalar(select(Conversation).where(Conversation.line_user_id == user_id))
    assert after == before
    assert conv.followed is False and conv_before.followed is True
    assert (conv.state, conv.context, conv.language) == (conv_before.state, conv_before.context, conv_before.language)
    assert personal.decrypt(rt, _booking(rt, reference).details) == run.details[reference]
    pushed = len(fake.deliveries("push"))
    staff = app.test_client()
    login(staff, "otaru-admin")
    assert post(staff, f"/staff/bookings/{reference}/cancel_office").status_code == 302
    Worker(rt).run_once()
    assert [d for d in fake.deliveries("push")[pushed:] if user_id in d.recipients] == [], "pushed after unfollow"


def retention_follows_the_schedule(rt, run: FullRun, confirmed: str, closed: str) -> None:
    keep = rt.offices["otaru"].retention
    closed_at, session = _booking(rt, closed).closed_at, _booking(rt, confirmed).slot_start

    def at(moment: datetime) -> None:
        rt.clock.freeze(moment)
        Worker(rt).run_once()

    at(closed_at + timedelta(days=keep["closed_requests_days"]) - timedelta(minutes=5))
    assert _booking(rt, closed) is not None, "a closed request went before its time"
    at(closed_at + timedelta(days=keep["closed_requests_days"], minutes=5))
    assert _booking(rt, closed) is None, "a closed request outlived its time"
    with rt.db.reading() as s:
        assert s.scalar(select(text("count(*)")).select_from(text("processed_events"))) == 0   # dedupe: 7 days
        assert s.scalar(select(text("count(*)")).select_from(text("slot_holds"))) == 0       # drafts: 1 day
    at(session + timedelta(days=keep["personal_details_days_after_session"]) - timedelta(minutes=5))
    assert _booking(rt, confirmed).details is not None, "details went before their time"
    assert personal.open_note(rt, _booking(rt, confirmed).staff_note) == run.notes[confirmed]
    at(session + timedelta(days=keep["personal_details_days_after_session"], minutes=5))
    purged = _booking(rt, confirmed)
    assert purged.details is None and purged.seeker_hash is None and purged.details_purged_at is not None
    assert purged.staff_note is None                               # the 職員メモ goes with the details
    assert purged.reference == confirmed                           # the booking itself stays, without details
    unfollowed = next(uid for uid, ref in run.references.items() if ref == confirmed)
    with rt.db.reading() as s:                                     # its user unfollowed: forgotten with them
        assert s.scalar(select(Conversation).where(Conversation.line_user_id == unfollowed)) is None
        assert s.get(Conversation, purged.conversation_id).line_user_id == f"forgotten:{purged.conversation_id}"
    phoned = run.phone_reference                                   # cancelled by phone, with a memo
    at(_booking(rt, phoned).slot_start + timedelta(days=keep["personal_details_days_after_session"])
       - timedelta(minutes=5))
    assert personal.open_note(rt, _memo_entry(rt, phoned, "cancel_for_user").note) == run.memos[phoned]
    with rt.db.reading() as s:
        assert personal.open_note(rt, _override_reasons(s)[phoned]) == run.reasons[phoned]
    at(_booking(rt, phoned).slot_start + timedelta(days=keep["personal_details_days_after_session"], minutes=5))
    assert _booking(rt, phoned).details is None
    entry = _memo_entry(rt, phoned, "cancel_for_user")             # the entry stays, without its memo
    assert entry.note is None and entry.actor == "otaru-admin"
    with rt.db.reading() as s:                                     # the override reason goes too
        assert s.get(BookingHandoff, _booking(rt, phoned).id) is not None and _override_reasons(s) == {}
    with rt.db.reading() as s:
        assert s.scalar(select(text("count(*)")).select_from(Consent)) >= 3          # the office's record stays
        assert s.scalars(select(AuditEntry.action).where(AuditEntry.action == "retention_purge")).all()


def _booking(rt, reference: str) -> Booking | None:
    with rt.db.reading() as s:
        return s.scalar(select(Booking).where(Booking.reference == reference))


def _override_reasons(s) -> dict[str, bytes]:
    """reference -> its override reason as stored."""
    return dict(s.execute(select(Booking.reference, BookingHandoff.override_reason)
                          .join(BookingHandoff, BookingHandoff.booking_id == Booking.id)
                          .where(BookingHandoff.override_reason.is_not(None))).all())


def _memo_entry(rt, reference: str, action: str) -> AuditEntry:
    with rt.db.reading() as s:
        return s.scalars(select(AuditEntry).where(AuditEntry.reference == reference,
                                                  AuditEntry.action == action)).one()
