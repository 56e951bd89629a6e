"""Delete when no longer needed, end to end: job seekers book through the chat and the form, each booking ends one
way (attended, no-show, cancelled, declined, expired, withdrawn, `データ削除`, its user unfollowed, its office's
profile removed), staff write about it, and the clock runs past every retention period SECURITY.md states.
Then the WHOLE database is searched: every table the database has (not only the ones the models know), every
column, on SQLite and PostgreSQL, every encrypted value opened with the key, for the seeded values (name, kana,
birth date, job seeker number, phone, consultation, companion, what staff wrote) and the users' LINE ids.
Nothing is left but what SECURITY.md keeps on purpose: the LINE id of a user who still follows, in their
conversation.

The sensitive answer (which of the office's categories applies: a disability certificate, Nihonkai General
Hospital's programme, the Mothers' Corner) goes first: once the request closed or its session is over, it has
no use left, while the rest of the details stay for the office's 90 days.
"""
from __future__ import annotations

import json
import re
from datetime import datetime, timedelta

from sqlalchemy import select, text

from bot.crypto import InvalidToken, Vault
from bot.models import Booking, Conversation, OutboxMessage
from bot.services import bookings as bookingsvc
from bot.staff import decisions, jobs as staff_jobs, personal
from bot.staff.audit import Actor
from bot.worker import Worker
from tests.formflow import Page, form_link, walk_to_slots
from tests.reliability.kit import Person, leaks
from tests.staffkit import fast_password_hashing  # noqa: F401 - autouse fixture
from tests.staffkit import DETAILS, SAKATA_MONDAY, create_staff, login, make_request, post, postback_value, reveal

FERNET = re.compile(rb"gAAAAA[A-Za-z0-9_=-]+")
STAFF = Actor(label="tanaka")
ALLOWED_FOR_A_FOLLOWER = {("conversations", "line_user_id")}


# -- the whole database, as a copy of it would give it away -------------------------------------------------

def _tables(s) -> list[str]:
    if s.bind.dialect.name == "postgresql":
        return list(s.scalars(text("SELECT table_name FROM information_schema.tables "
                                   "WHERE table_schema = 'public' AND table_type = 'BASE TABLE'")))
    return list(s.scalars(text("SELECT name FROM sqlite_master WHERE type = 'table'")))


def _opened(vault: Vault, blob: bytes) -> list[bytes]:
    """Every Fernet token in a value, opened with the configured keys (a token may run on into the next text)."""
    found = []
    for run in FERNET.findall(blob):
        for end in range(len(run) - len(run) % 4, 0, -4):
            try:
                found.append(vault.decrypt_text(run[:end]).encode())
                break
            except (InvalidToken, UnicodeDecodeError):
                pass
    return found


def stored(rt) -> list[tuple[str, str, bytes]]:
    """(table, column, value) of every value in every table of the database, and of every encrypted value
    opened (its column marked `(opened)`)."""
    vault = Vault(rt.config.data_encryption_keys, rt.config.secret_key)
    values: list[tuple[str, str, bytes]] = []
    with rt.db.reading() as s:
        for table in _tables(s):
            result = s.execute(text(f'SELECT * FROM "{table}"'))
            columns = list(result.keys())
            for row in result:
                for column, value in zip(columns, row):
                    if value is None:
                        continue
                    if isinstance(value, (bytes, bytearray, memoryview)):
                        blob = bytes(value)
                    elif isinstance(value, (dict, list)):
                        blob = json.dumps(value, ensure_ascii=False).encode()
                    else:
                        blob = str(value).encode()
                    values.append((table, column, blob))
                    values += [(table, f"{column} (opened)", opened) for opened in _opened(vault, blob)]
    assert len(values) > 50, "the database looked empty: the search proves nothing"
    return values


def where(values: list[tuple[str, str, bytes]], secrets: list[str]) -> set[tuple[str, str]]:
    """The (table, column) that hold any of these values, in any shape."""
    return {(table, column) for table, column, blob in values if leaks(blob, secrets)}


# -- a full run --------------------------------------------------------------------------------------------

def _book(app, rt, fake, user, answers: dict[str, str]) -> str:
    walk_to_slots(user, rt)
    user.says("1")
    browser = app.test_client()
    confirmation = Page.get(browser, form_link(fake.messages_to(user.user_id))).submit(browser, answers)
    assert confirmation.status == 200, confirmation.html
    done = confirmation.submit(browser)
    assert done.status == 200
    return done.html.split("受付番号: ")[1][:9]


def _row(rt, reference: str) -> Booking | None:
    with rt.db.reading() as s:
        return s.scalar(select(Booking).where(Booking.reference == reference))


def _act(rt, reference: str, step, *args, **kwargs):
    with rt.db.transaction() as s:
        row = s.scalar(select(Booking).where(Booking.reference == reference))
        return step(s, rt, rt.offices[row.office_id], row, STAFF, rt.clock.now(), *args, **kwargs)


def _note(rt, reference: str, person: Person) -> str:
    written = f"本人より電話 {person.phone} メモ{person.n:04d}番 うつ病で通院中"
    with rt.db.transaction() as s:
        row = s.scalar(select(Booking).where(Booking.reference == reference))
        decisions.set_note(s, rt, rt.offices[row.office_id], row, STAFF, rt.clock.now(), written)
    return written


class Run:
    """Who booked (user id -> person, reference, how it ends), and what staff wrote about them."""

    def __init__(self):
        self.people: dict[str, Person] = {}
        self.users: dict[str, object] = {}
        self.references: dict[str, str] = {}
        self.written: dict[str, list[str]] = {}

    def add(self, app, rt, fake, user_factory, office: str, ending: str, category: str | None = None) -> str:
        user = user_factory(office)
        person = Person(700 + len(self.people))
        answers = person.answers(rt.offices[office])
        if category is not None:
            answers["category"] = category
        user.says(f"{person.name}です。{person.phone}に電話ください")          # typed in the chat, as people do
        reference = _book(app, rt, fake, user, answers)
        user.says(f"相談したいのは{person.consultation}")
        self.people[ending], self.users[ending], self.references[ending] = person, user, reference
        self.written[ending] = [_note(rt, reference, person)]
        return reference

    def secrets(self, ending: str) -> list[str]:
        found = list(self.people[ending].secrets())
        for note in self.written[ending]:
            found += [note, note.split()[2]]
        return found


def _deep_run(app, rt, fake, user_factory) -> Run:
    run = Run()
    for ending, category in (("attended", "disability"), ("no_show", "hospital"), ("expired", "mothers")):
        run.add(app, rt, fake, user_factory, "sakata", ending, category)      # Sakata's three slots of a week
    for ending in ("deleted", "cancelled", "declined", "withdrawn", "unfollowed"):
        run.add(app, rt, fake, user_factory, "otaru", ending)
    for ending in ("attended", "no_show", "cancelled", "unfollowed"):
        assert _act(rt, run.references[ending], decisions.confirm).changed
    assert _act(rt, run.references["declined"], decisions.decline).changed
    with rt.db.transaction() as s:                                       # withdrawn in the chat
        row = s.scalar(select(Booking).where(Booking.reference == run.references["withdrawn"]))
        conv = s.get(Conversation, row.conversation_id)
        assert bookingsvc.withdraw_in_chat(s, rt, rt.offices["otaru"], conv, row.reference, rt.clock.now(),
                                           confirmed=True)["outcome"] == "withdrawn"
    run.written["cancelled"].append("本人より取消の電話 {} 取消メモ{:04d}番 入院のため".format(
        run.people["cancelled"].phone, run.people["cancelled"].n))
    assert _act(rt, run.references["cancelled"], decisions.cancel, by_office=False,
                note=run.written["cancelled"][-1]).changed
    deleting = run.users["deleted"]
    deleting.says("データ削除")
    deleting.taps(postback_value(deleting.messages(), "削除する"))
    assert _row(rt, run.references["deleted"]).details is None
    staff = app.test_client()                                             # a search and an export, audited
    create_staff(rt, "otaru", "otaru-admin", role="admin")
    login(staff, "otaru-admin")
    assert post(staff, "/staff/search", seeker_number=run.people["cancelled"].seeker_number).status_code == 200
    exported = post(staff, "/staff/export", **{"from": "2026-12-01", "to": "2027-01-31", "encoding": "utf8",
                                               "contents": "details"})
    assert run.people["cancelled"].name in exported.get_data().decode("utf-8-sig")
    Worker(rt).run_once()
    for ending in ("attended", "no_show", "unfollowed"):                 # after their sessions
        rt.clock.freeze(_row(rt, run.references[ending]).slot_start + timedelta(hours=1))
        Worker(rt).run_once()
        assert _act(rt, run.references[ending], decisions.mark_attendance, attended=ending != "no_show").changed
        if ending == "no_show":                                            # a wrong 欠席 put right, with a memo
            person = run.people[ending]
            run.written[ending].append(f"本人より電話 {person.phone} 訂正メモ{person.n:04d}番 通院で遅れた")
            assert _act(rt, run.references[ending], decisions.correct_attendance, "attended", "other",
                        run.written[ending][-1]).changed
    run.users["unfollowed"].unfollows()
    return run


def _run_until(rt, moment: datetime) -> None:
    """The worker on schedule up to `moment`: a pass a day, then passes at `moment` until nothing is left to do
    (closed requests and forgotten users go 200 a pass)."""
    now = rt.clock.now()
    while now < moment:
        now = min(now + timedelta(days=1), moment)
        rt.clock.freeze(now)
        Worker(rt).run_once()
    for _ in range(3):
        Worker(rt).run_once()


def _deadlines(rt, run: Run) -> list[tuple[datetime, str]]:
    """When SECURITY.md says each booking's values are gone, in order: a closed request whole
    `closed_requests_days` after it closed; a booking's details `personal_details_days_after_session` after its
    session (a booking cancelled before its session too); what `データ削除` erased, at once."""
    keep = rt.offices["sakata"].retention_rules()
    assert keep == rt.offices["otaru"].retention_rules()
    found = []
    for ending, reference in run.references.items():
        row = _row(rt, reference)
        if ending == "deleted":
            found.append((rt.clock.now(), ending))
        elif row.status in staff_jobs.CLOSED_STATUSES:
            found.append((row.closed_at + timedelta(days=keep["closed_requests_days"]), ending))
        else:
            found.append((row.slot_start + timedelta(days=keep["personal_details_days_after_session"]), ending))
    return sorted(found)


def test_nothing_of_a_job_seeker_outlives_the_retention_stated_in_security_md(app, rt, fake_line, user_factory):
    run = _deep_run(app, rt, fake_line, user_factory)
    before = stored(rt)
    for ending in run.people:                                          # the search finds what is there
        if ending != "deleted":
            assert where(before, run.secrets(ending)), f"{ending}: its values were never found: proves nothing"
    expired = _row(rt, run.references["expired"])
    assert expired.status == "expired", expired.status
    Worker(rt).run_once()                                              # the category answers went first
    for ending, reference in run.references.items():
        row = _row(rt, reference)
        details = personal.decrypt(rt, row.details) or {}
        assert row.status not in ("requested", "proposed", "confirmed") and "category" not in details, ending
    assert personal.decrypt(rt, _row(rt, run.references["expired"]).details)["name"] == run.people["expired"].name
    unfollowed_at = rt.clock.now()
    for deadline, ending in _deadlines(rt, run):
        if deadline > rt.clock.now():
            _run_until(rt, deadline - timedelta(minutes=5))
            assert where(stored(rt), run.secrets(ending)), f"{ending}: went before its time"
            if ending == "unfollowed":
                assert where(stored(rt), [run.users[ending].user_id]) == {("conversations", "line_user_id")}
            _run_until(rt, deadline + timedelta(minutes=5))
        assert where(stored(rt), run.secrets(ending)) == set(), f"{ending}: a value outlived its retention"
        if ending == "unfollowed":         # its 30 days long past: the id goes with the details, in the same pass
            assert where(stored(rt), [run.users[ending].user_id]) == set(), "the unfollowed user's id outlived them"
    keep = rt.offices["otaru"].retention_rules()
    _run_until(rt, max(rt.clock.now(), unfollowed_at + timedelta(days=keep["unfollowed_days"], minutes=5)))
    after = stored(rt)
    for ending, user in run.users.items():
        allowed = ALLOWED_FOR_A_FOLLOWER if ending != "unfollowed" else set()
        assert where(after, [user.user_id]) <= allowed, f"{ending}: the LINE id outlived its retention"
    assert where(after, [run.users["attended"].user_id]) == ALLOWED_FOR_A_FOLLOWER   # the search finds ids


def test_an_office_removed_leaves_nothing_of_its_users_past_the_default_retention(app, rt, fake_line, user_factory,
                                                                                 monkeypatch):
    """A profile taken out of the deployment: its webhook answers 404, so its users can neither unfollow nor ask
    for deletion. Its bookings' values and its users' LINE ids (those who still follow too) go by the default
    rules, and nothing of theirs is left anywhere."""
    run = Run()
    for ending in ("confirmed", "withdrawn"):
        run.add(app, rt, fake_line, user_factory, "otaru", ending)
    assert _act(rt, run.references["confirmed"], decisions.confirm).changed
    with rt.db.transaction() as s:
        row = s.scalar(select(Booking).where(Booking.reference == run.references["withdrawn"]))
        assert bookingsvc.withdraw_in_chat(s, rt, rt.offices["otaru"], s.get(Conversation, row.conversation_id),
                                           row.reference, rt.clock.now(), confirmed=True)["outcome"] == "withdrawn"
    chatted = user_factory("otaru")
    chatted.says("予約")                                                   # only asked, never booked
    session = _row(rt, run.references["confirmed"]).slot_start
    before = stored(rt)
    assert where(before, [chatted.user_id]) and all(where(before, run.secrets(e)) for e in run.people)
    assert _act(rt, run.references["confirmed"], decisions.cancel, by_office=True).changed   # told: not yet sent
    monkeypatch.setattr(rt, "offices", {k: v for k, v in rt.offices.items() if k != "otaru"})
    _run_until(rt, session + timedelta(days=staff_jobs.DEFAULT_RETENTION["personal_details_days_after_session"],
                                       hours=2))
    after = stored(rt)
    with rt.db.reading() as s:                                             # no message to them is left to go
        assert [r.payload for r in s.scalars(select(OutboxMessage).where(OutboxMessage.office_id == "otaru"))
                if r.payload.get("messages")] == []
    for ending in run.people:
        assert where(after, run.secrets(ending)) == set(), f"{ending}: a value outlived its office"
    for user in (*run.users.values(), chatted):
        assert where(after, [user.user_id]) == set(), "a LINE id outlived its office"


def _category(rt, reference: str) -> tuple[str | None, str | None]:
    """(the category answered, the name) as the booking's details hold them now."""
    details = personal.decrypt(rt, _row(rt, reference).details) or {}
    return details.get("category"), details.get("name")


def test_the_sensitive_answer_goes_first_once_the_request_closed_or_its_session_is_over(app, rt):
    """Which category applies (a disability certificate, Nihonkai General Hospital's programme, the Mothers'
    Corner) is asked only to decide whether online counselling is open to the person. Once the request closed
    (declined, withdrawn, expired, cancelled) or its session is over (attendance recorded, or a day after its
    start), it has no use left: the next pass of the worker erases it from the details, which stay for the
    office's 90 days (name, number, phone: the record of the session)."""
    def request(start: datetime, category: str) -> str:
        return make_request(rt, "sakata", start, user_id=f"U{category:0>32}"[:33],
                            details={**DETAILS["sakata"], "category": category})

    attended = request(SAKATA_MONDAY, "disability")
    declined = request(SAKATA_MONDAY + timedelta(hours=1), "hospital")
    withdrawn = request(SAKATA_MONDAY + timedelta(hours=2), "mothers")
    unrecorded = request(SAKATA_MONDAY + timedelta(days=7), "disability")
    name = DETAILS["sakata"]["name"]
    for reference in (attended, unrecorded):
        assert _act(rt, reference, decisions.confirm).changed
    assert _act(rt, declined, decisions.decline).changed
    with rt.db.transaction() as s:
        row = s.scalar(select(Booking).where(Booking.reference == withdrawn))
        assert bookingsvc.withdraw_in_chat(s, rt, rt.offices["sakata"], s.get(Conversation, row.conversation_id),
                                           withdrawn, rt.clock.now(), confirmed=True)["outcome"] == "withdrawn"
    Worker(rt).run_once()
    assert _category(rt, declined) == (None, name) and _category(rt, withdrawn) == (None, name)
    assert _category(rt, attended) == ("disability", name)             # still needed: its session is ahead
    rt.clock.freeze(SAKATA_MONDAY + timedelta(minutes=20))
    Worker(rt).run_once()
    assert _category(rt, attended) == ("disability", name)             # under way, attendance not recorded
    assert _act(rt, attended, decisions.mark_attendance, attended=True).changed
    Worker(rt).run_once()
    assert _category(rt, attended) == (None, name)
    rt.clock.freeze(SAKATA_MONDAY + timedelta(days=8) - timedelta(minutes=5))
    Worker(rt).run_once()
    assert _category(rt, unrecorded) == ("disability", name)           # nobody recorded attendance: a day
    rt.clock.freeze(SAKATA_MONDAY + timedelta(days=8, minutes=5))
    Worker(rt).run_once()
    assert _category(rt, unrecorded) == (None, name)
    for reference in (attended, declined, withdrawn, unrecorded):      # the rest of the details stay their time
        assert personal.decrypt(rt, _row(rt, reference).details) == {
            k: v for k, v in DETAILS["sakata"].items() if k != "category"}
    staff = app.test_client()                                          # the dashboard shows the rest
    create_staff(rt, "sakata", "sakata-admin", role="admin")
    login(staff, "sakata-admin")
    exported = post(staff, "/staff/export", **{"from": "2026-12-01", "to": "2026-12-31", "encoding": "utf8",
                                               "contents": "details"}).get_data().decode("utf-8-sig")
    assert exported.count(name) == 4 and "障害者手帳" not in exported and "病院" not in exported
    assert reveal(staff, attended).status_code == 302
    page = staff.get(f"/staff/bookings/{attended}").get_data(as_text=True)
    assert name in page and "障害者手帳" not in page


def test_erasing_the_sensitive_answer_never_brings_back_details_erased_meanwhile(rt, monkeypatch):
    """The answer is taken out by decrypting the details and writing them back: details erased between the read
    and the write (`データ削除`, the purge) stay erased; details rewritten meanwhile (`keys rotate`, with the answer
    still in them) are read again on the next pass, and lose it then."""
    erased, rotated = (make_request(rt, "sakata", SAKATA_MONDAY + timedelta(hours=n), user_id=f"U{n:032d}",
                                    details={**DETAILS["sakata"], "category": "disability"}) for n in (1, 2))
    for reference in (erased, rotated):
        assert _act(rt, reference, decisions.decline).changed
    opened = personal.decrypt

    def changed_meanwhile(rt_, token):
        with_it = opened(rt_, token)
        session.execute(text("UPDATE bookings SET details = NULL WHERE reference = :r"), {"r": erased})
        session.execute(text("UPDATE bookings SET details = :d WHERE reference = :r"),
                        {"r": rotated, "d": personal.encrypt(rt_, with_it)})
        return with_it

    monkeypatch.setattr(staff_jobs.personal, "decrypt", changed_meanwhile)
    with rt.db.transaction() as session:
        assert staff_jobs.erase_sensitive_answers(session, rt, rt.clock.now()) == {}
    monkeypatch.setattr(staff_jobs.personal, "decrypt", opened)
    assert _row(rt, erased).details is None
    assert _category(rt, rotated) == ("disability", DETAILS["sakata"]["name"])
    with rt.db.transaction() as session:
        assert staff_jobs.erase_sensitive_answers(session, rt, rt.clock.now()) == {"sensitive_answers_erased": 1}
    assert _row(rt, erased).details is None
    assert _category(rt, rotated) == (None, DETAILS["sakata"]["name"])
    with rt.db.transaction() as session:                               # done: not read again
        assert staff_jobs.erase_sensitive_answers(session, rt, rt.clock.now()) == {}


def test_an_answer_a_pass_could_not_open_goes_once_its_key_is_back(make_app, rt):
    """A worker started without the key the details were written with (DATA_ENCRYPTION_KEY set to the new key
    alone before `keys rotate` ran, the old one forgotten) cannot take the answer out. Once the key is back, the
    next pass must: marked as done, the answer of a disability certificate stayed the details' 90 days."""
    from cryptography.fernet import Fernet

    reference = make_request(rt, "sakata", SAKATA_MONDAY, user_id="U" + "d" * 32,
                             details={**DETAILS["sakata"], "category": "disability"})
    assert _act(rt, reference, decisions.decline).changed
    wrong = make_app(data_encryption_keys=(Fernet.generate_key().decode(),)).extensions["madoguchi"]
    for _ in range(2):
        with wrong.db.transaction() as session:
            assert staff_jobs.erase_sensitive_answers(session, wrong, rt.clock.now()) == {}
    assert _category(rt, reference) == ("disability", DETAILS["sakata"]["name"])   # untouched, still readable
    Worker(rt).run_once()                                              # the key is back
    assert _category(rt, reference) == (None, DETAILS["sakata"]["name"])


def test_a_disabled_office_keeps_its_users_details_no_longer_than_its_schedule(rt, monkeypatch):
    """`enabled: false` closes an office's webhook and form (404), not its retention: the worker still erases the
    answer once the session is over, the details 90 days after it, and a closed request 30 days after it closed."""
    from dataclasses import replace

    held = make_request(rt, "sakata", SAKATA_MONDAY, user_id="U" + "e" * 32,
                        details={**DETAILS["sakata"], "category": "hospital"})
    closed = make_request(rt, "sakata", SAKATA_MONDAY + timedelta(hours=1), user_id="U" + "f" * 32,
                          details={**DETAILS["sakata"], "category": "disability"})
    assert _act(rt, held, decisions.confirm).changed and _act(rt, closed, decisions.decline).changed
    monkeypatch.setitem(rt.offices, "sakata", replace(rt.offices["sakata"], enabled=False))
    assert rt.enabled_office("sakata") is None
    _run_until(rt, SAKATA_MONDAY + staff_jobs.SESSION_OVER + timedelta(minutes=5))
    assert _category(rt, held) == (None, DETAILS["sakata"]["name"])
    assert _category(rt, closed) == (None, DETAILS["sakata"]["name"])
    keep = rt.offices["sakata"].retention
    _run_until(rt, SAKATA_MONDAY + timedelta(days=keep["personal_details_days_after_session"], minutes=5))
    assert _row(rt, held).details is None and _row(rt, closed) is None


def test_staff_side_rows_go_when_the_retention_table_says(rt):
    """The table's last rows: a staff session 12 hours after login, a count of wrong passwords (keyed by the
    name typed, sometimes a password typed in the wrong box) once it locks nothing, a job mark after 180 days."""
    from bot.staff.models import JobMark, LoginFailure, StaffSession

    now = rt.clock.now()
    user_id = create_staff(rt)
    with rt.db.transaction() as s:
        s.add(StaffSession(id="s" * 64, user_id=user_id, created_at=now, last_seen_at=now, ip="192.0.2.7"))
        s.add(LoginFailure(username="correct horse battery", count=3, first_at=now))
        s.add(JobMark(job="sensitive", key="1", created_at=now))

    def left_at(moment: datetime) -> tuple[int, int, int]:
        rt.clock.freeze(moment)
        with rt.db.transaction() as s:
            staff_jobs.housekeeping(s, moment)
        with rt.db.reading() as s:
            return (len(s.scalars(select(StaffSession)).all()), len(s.scalars(select(LoginFailure)).all()),
                    len(s.scalars(select(JobMark).where(JobMark.job == "sensitive")).all()))

    assert left_at(now + timedelta(minutes=14)) == (1, 1, 1)
    assert left_at(now + timedelta(minutes=16)) == (1, 0, 1)
    assert left_at(now + timedelta(hours=12, minutes=1)) == (0, 0, 1)
    assert left_at(now + timedelta(days=180) - timedelta(minutes=1)) == (0, 0, 1)
    assert left_at(now + timedelta(days=180, minutes=1)) == (0, 0, 0)


def test_a_removed_office_keeps_no_line_id_of_a_user_whose_online_booking_it_blocked(rt, monkeypatch):
    """A blocked user is kept while the block holds, because as a new user they would not be blocked. An office
    whose profile was removed takes no booking any more and nothing reaches its users: the block ends with it,
    and the user's id goes by the default rules like every other user's of that office."""
    user_id = "U" + "b" * 32
    reference = make_request(rt, "sakata", SAKATA_MONDAY, user_id=user_id)
    assert _act(rt, reference, decisions.confirm).changed
    with rt.db.transaction() as s:                                        # after no-shows, say (第10条)
        row = s.scalar(select(Booking).where(Booking.reference == reference))
        assert decisions.set_user_blocked(s, rt.offices["sakata"], row, STAFF, rt.clock.now(), True).changed
    monkeypatch.setattr(rt, "offices", {k: v for k, v in rt.offices.items() if k != "sakata"})
    _run_until(rt, SAKATA_MONDAY + timedelta(
        days=staff_jobs.DEFAULT_RETENTION["personal_details_days_after_session"], hours=2))
    assert where(stored(rt), [user_id]) == set()
