"""The warning before a dashboard session ends (WCAG 2.2.1): the deadlines a page carries for its script, and
the keep-alive that 続ける sends (POST /staff/session/extend), which moves the idle limit and never the absolute
one. The script itself runs in tests/browser/test_session_warning_browser.py."""
from __future__ import annotations

import re
from datetime import datetime, timedelta

from sqlalchemy import select

from bot.clock import TOKYO
from bot.staff import auth
from bot.staff.models import AuditEntry, StaffSession
from tests.staffkit import fast_password_hashing  # noqa: F401 - autouse fixture
from tests.staffkit import create_staff, csrf, login, post

EXTEND = "/staff/session/extend"


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(TOKYO)


def _session_row(rt) -> StaffSession:
    with rt.db.reading() as s:
        return s.scalars(select(StaffSession)).one()


def _extensions(rt) -> int:
    with rt.db.reading() as s:
        return len(s.scalars(select(AuditEntry).where(AuditEntry.action == "extend_session")).all())


def test_a_dashboard_page_carries_the_deadlines_of_its_session(rt, client):
    create_staff(rt)
    logged_in = rt.clock.now()
    login(client)
    rt.clock.advance(minutes=10)
    page = client.get("/staff/queue").get_data(as_text=True)
    timer = re.search(r'<div id="session-timer" hidden ([^>]*)>', page).group(1)
    values = dict(re.findall(r'data-([a-z-]+)="([^"]*)"', timer))
    assert _at(values["now"]) == rt.clock.now()
    assert _at(values["idle"]) == rt.clock.now() + auth.IDLE_TIMEOUT
    assert _at(values["absolute"]) == logged_in + auth.MAX_SESSION
    assert 20 <= int(values["warn-seconds"]) < auth.IDLE_TIMEOUT.total_seconds()
    assert 'role="alertdialog"' in page and ">続ける</button>" in page and "延長できません" in page
    assert 'href="/staff/login?next=/staff/queue"' in page            # after the end: back to this page
    assert 'src="/static/staff/session.js"' in page
    login_page = client.get("/staff/login").get_data(as_text=True)
    assert "session-timer" not in login_page and "<script" not in login_page


def test_continuing_moves_the_idle_limit_and_not_the_absolute_one(rt, client):
    create_staff(rt)
    logged_in = rt.clock.now()
    login(client)
    rt.clock.advance(minutes=27)        # the warning is up: 続ける
    answer = post(client, EXTEND)
    assert answer.status_code == 200 and answer.mimetype == "application/json"
    data = answer.get_json()
    assert _at(data["now"]) == rt.clock.now()
    assert _at(data["idle"]) == rt.clock.now() + auth.IDLE_TIMEOUT
    assert _at(data["absolute"]) == logged_in + auth.MAX_SESSION
    row = _session_row(rt)
    assert row.last_seen_at == rt.clock.now() and row.created_at == logged_in
    assert _extensions(rt) == 1
    rt.clock.advance(minutes=29)        # 56 minutes after the last page: alive thanks to 続ける
    assert client.get("/staff/").status_code == 200


def test_continuing_never_passes_the_absolute_limit(rt, client):
    create_staff(rt)
    logged_in = rt.clock.now()
    login(client)
    while rt.clock.now() + timedelta(minutes=25) <= logged_in + auth.MAX_SESSION:
        rt.clock.advance(minutes=25)
        answer = post(client, EXTEND)
        assert answer.status_code == 200
        assert _at(answer.get_json()["absolute"]) == logged_in + auth.MAX_SESSION
    rt.clock.advance(minutes=25)        # past the twelve hours: 続ける cannot help
    refused = post(client, EXTEND)
    assert refused.status_code == 401 and refused.get_json() == {"error": "ended"}
    assert client.get("/staff/").status_code == 302


def test_continuing_after_the_session_ended_is_refused(rt, client):
    create_staff(rt)
    login(client)
    rt.clock.advance(minutes=auth.IDLE_TIMEOUT.total_seconds() / 60 + 1)
    refused = post(client, EXTEND)
    assert refused.status_code == 401 and refused.get_json() == {"error": "ended"}
    assert _extensions(rt) == 0
    assert client.get("/staff/").status_code == 302       # not brought back to life


def test_continuing_needs_the_csrf_token(rt, client):
    create_staff(rt)
    login(client)
    rt.clock.advance(minutes=27)
    for data in ({}, {"csrf_token": "forged"}):
        refused = client.post(EXTEND, data=data)
        assert refused.status_code == 400 and refused.get_json() == {"error": "csrf"}
    assert _session_row(rt).last_seen_at == rt.clock.now() - timedelta(minutes=27)   # the idle clock not moved
    assert _extensions(rt) == 0
    assert client.get(EXTEND).status_code == 405
    assert client.post(EXTEND, data={"csrf_token": csrf(client)}).status_code == 200


def test_continuing_after_logging_out_in_another_tab_says_the_session_ended(rt, client):
    """ログアウト in one tab takes the session's CSRF token with it: 続ける in another tab answered "csrf", and
    the page said it was opened before logging in again elsewhere. It is answered as an ended session."""
    create_staff(rt)
    login(client)
    token = csrf(client)
    client.post("/staff/logout", data={"csrf_token": token})
    refused = client.post(EXTEND, data={"csrf_token": token})
    assert refused.status_code == 401 and refused.get_json() == {"error": "ended"}
    assert _extensions(rt) == 0


def test_continuing_is_in_the_audit_log_in_words(rt, client):
    create_staff(rt)
    login(client)
    post(client, EXTEND)
    assert "ログインの延長" in client.get("/staff/audit").get_data(as_text=True)
