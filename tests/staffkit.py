"""Helpers for the staff-handoff tests: bookings inserted as the details form leaves them, staff accounts,
a logged-in dashboard client, the CSRF token, and the worker."""
from __future__ import annotations

import re
from datetime import datetime

import pytest
from sqlalchemy import select

from bot.clock import TOKYO
from bot.models import Booking, Conversation, OutboxMessage
from bot.staff import auth, decisions, personal
from bot.worker import Worker

SAKATA_MONDAY = datetime(2026, 12, 7, 14, 0, tzinfo=TOKYO)   # bookable at the default clock (Tue 12/1 10:00)
OTARU_WEDNESDAY = datetime(2026, 12, 2, 10, 0, tzinfo=TOKYO)
PASSWORD = "correct horse battery"
DETAILS = {
    "sakata": {"name": "酒田 花子", "name_kana": "さかた はなこ", "seeker_number": "12345-678901",
               "phone": "090-1234-5678", "category": "uij", "companion": "none", "mypage_email_confirmed": True},
    "otaru": {"name": "小樽 太郎", "name_kana": "おたる たろう", "birth_date": "1990-04-01",
              "seeker_number": "01234-5678", "phone": "0134-00-0000", "consultation": "応募書類の書き方",
              "companion": "none"},
}


@pytest.fixture(autouse=True)
def fast_password_hashing(monkeypatch):
    """Accounts made by these tests hash with a cheap scrypt cost (the shipped cost takes 0.2 s a check)."""
    monkeypatch.setattr(auth, "PASSWORD_METHOD", "scrypt:1024:8:1")


@pytest.fixture
def staff(rt, client):
    """A dashboard client signed in as a Sakata staff member."""
    create_staff(rt)
    assert login(client).status_code == 302
    return client


@pytest.fixture
def user(user_factory):
    """A Sakata LINE user."""
    return user_factory("sakata")


def conversation(rt, office: str, user_id: str, followed: bool = True) -> int:
    """The user's conversation row (as the dialog leaves it), created if missing."""
    now = rt.clock.now()
    with rt.db.transaction() as s:
        conv = s.scalar(select(Conversation).where(Conversation.office_id == office,
                                                   Conversation.line_user_id == user_id))
        if conv is None:
            conv = Conversation(office_id=office, line_user_id=user_id, state="idle", context={}, step=0,
                                misses=0, language="ja", followed=followed, booking_blocked=False,
                                last_event_ms=0, created_at=now)
            s.add(conv)
            s.flush()
        return conv.id


def make_request(rt, office: str = "sakata", start: datetime = SAKATA_MONDAY, user_id: str | None = None,
                 status: str = "requested", notify: bool = True, details: dict | None = None,
                 created_at: datetime | None = None) -> str:
    """A request as the details form creates it (seat claimed, staff notified); returns its reference."""
    conv_id = conversation(rt, office, user_id) if user_id else None
    now = rt.clock.now()
    details = dict(DETAILS[office] if details is None else details)
    with rt.db.transaction() as s:
        booking = Booking(reference=decisions.new_reference(s), office_id=office, conversation_id=conv_id,
                          slot_start=start, status=status, source="line",
                          seeker_hash=personal.seeker_hash(rt, details.get("seeker_number", "")),
                          details=personal.encrypt(rt, details), created_at=created_at or now,
                          updated_at=created_at or now)
        s.add(booking)
        s.flush()
        assert decisions.claim_seat(s, rt.offices[office], booking)
        if notify:
            rt.notify_staff(s, rt.offices[office], "new_request", booking.id, now)
        return booking.reference


def booking(rt, reference: str) -> Booking:
    with rt.db.reading() as s:
        return s.scalar(select(Booking).where(Booking.reference == reference))


def create_staff(rt, office: str = "sakata", username: str = "tanaka", role: str = "staff",
                 password: str = PASSWORD) -> int:
    with rt.db.transaction() as s:
        return auth.create_user(s, office_id=office, username=username, password=password, role=role,
                                now=rt.clock.now()).id


def csrf(client) -> str:
    """The CSRF token of the client's session (a page visit creates it)."""
    with client.session_transaction() as sess:
        token = sess.get("staff_csrf")
    if token is None:
        client.get("/staff/login")
        with client.session_transaction() as sess:
            token = sess["staff_csrf"]
    return token


def pending_totp_secret(client) -> str:
    """The second factor's secret being set up, as the account page shows it (to be typed into an app)."""
    page = client.get("/staff/account").get_data(as_text=True)
    return re.search(r'<code id="totp-secret">([^<]+)</code>', page).group(1).replace(" ", "")


def login(client, username: str = "tanaka", password: str = PASSWORD, otp: str | None = None):
    client.get("/staff/login")
    data = {"username": username, "password": password, "csrf_token": csrf(client)}
    if otp is not None:
        data["otp"] = otp
    return client.post("/staff/login", data=data)


def logins_at_once(clients, forms, barrier_first: bool = False) -> list[int]:
    """Each client posts its login form in its own thread at the same moment; their statuses, in finishing
    order. `barrier_first`: the threads wait for each other just before posting."""
    import threading

    barrier, statuses = threading.Barrier(len(clients)), []

    def one(client, form):
        if barrier_first:
            barrier.wait(timeout=10)
        statuses.append(client.post("/staff/login", data=form).status_code)

    threads = [threading.Thread(target=one, args=pair) for pair in zip(clients, forms)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return statuses


def post(client, path: str, **data):
    """A dashboard form POST with the session's CSRF token."""
    return client.post(path, data={"csrf_token": csrf(client), **data})


def reveal(client, reference: str):
    """「個人情報を表示」 on a booking's page: its details show (and one view is logged) for a few minutes."""
    return post(client, f"/staff/bookings/{reference}/reveal")


def run_worker(rt) -> dict:
    return Worker(rt).run_once()


def outbox_rows(rt, **filters) -> list[OutboxMessage]:
    with rt.db.reading() as s:
        query = select(OutboxMessage).order_by(OutboxMessage.id)
        for key, value in filters.items():
            query = query.where(getattr(OutboxMessage, key) == value)
        return list(s.scalars(query))


def postback_value(messages: list[dict], label: str) -> str:
    """The postback data of the (last) button whose label starts with `label`, anywhere in some messages."""
    found: list[str] = []

    def walk(node):
        if isinstance(node, dict):
            action = node.get("action") if isinstance(node.get("action"), dict) else None
            if node.get("type") == "postback" and str(node.get("label", "")).startswith(label):
                found.append(node["data"])
            if action and action.get("type") == "postback" and str(action.get("label", "")).startswith(label):
                found.append(action["data"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(messages)
    assert found, f"no button {label!r}"
    return found[-1]


def all_text(messages: list[dict]) -> str:
    from bot.render import text_of

    return text_of(messages)


REFERENCE = re.compile(r"[A-HJ-NP-Z2-9]{4}-[A-HJ-NP-Z2-9]{4}")


AUDIT_ROW = re.compile(r"<tr><td>(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)</td>\s*<td>(.*?)</td>\s*<td>(.*?)</td>\s*<td>(.*?)</td></tr>",
                       re.S)


def audit_rows(page: str) -> list[tuple[str, str, str, str]]:
    """The audit page's entries as (time, actor, action, reference), tags stripped (its filters name every actor
    and action, so words found anywhere on the page prove nothing)."""
    return [tuple(re.sub(r"<[^>]+>|\s+", "", cell) if i else cell for i, cell in enumerate(row))
            for row in AUDIT_ROW.findall(page)]
