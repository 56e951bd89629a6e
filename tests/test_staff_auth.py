"""Dashboard accounts: login, CSRF, lock-out, session fixation and timeout, TOTP, IP allow-list, admins,
one office per account, and the create-user command."""
from __future__ import annotations

import json
import re
import time
from datetime import datetime, timedelta

import pyotp
import pytest
from sqlalchemy import func, select
from werkzeug.security import check_password_hash

from bot.schema import Base
from bot.staff import auth
from bot.staff.models import AuditEntry, LoginFailure, StaffSession, StaffUser
from tests.staffkit import fast_password_hashing  # noqa: F401 - autouse fixture
from tests.staffkit import (OTARU_WEDNESDAY, PASSWORD, booking, create_staff, csrf, login, logins_at_once,
                            make_request, pending_totp_secret, post, reveal)


def test_pages_need_a_login(client):
    response = client.get("/staff/")
    assert response.status_code == 302 and "/staff/login" in response.headers["Location"]
    assert client.get("/staff/login").status_code == 200


def test_login_with_the_right_password_opens_the_dashboard(rt, client):
    create_staff(rt)
    response = login(client)
    assert response.status_code == 302
    page = client.get("/staff/")
    assert page.status_code == 200 and "予定表" in page.get_data(as_text=True)


def test_a_form_without_csrf_is_refused(rt, client):
    create_staff(rt)
    client.get("/staff/login")
    assert client.post("/staff/login", data={"username": "tanaka", "password": PASSWORD}).status_code == 400
    assert client.post("/staff/login", data={"username": "tanaka", "password": PASSWORD,
                                             "csrf_token": "forged"}).status_code == 400
    login(client)
    reference = make_request(rt)
    assert client.post(f"/staff/bookings/{reference}/confirm").status_code == 400
    assert client.post("/staff/blocks", data={"day": "2026-12-07"}).status_code == 400
    assert client.post("/staff/export", data={"from": "2026-12-01", "to": "2026-12-31"}).status_code == 400
    assert booking(rt, reference).status == "requested"


def test_twenty_wrong_passwords_lock_the_account_for_a_while(rt, client):
    create_staff(rt)
    codes = [login(client, password=f"wrong password {i}").status_code for i in range(20)]
    assert codes[0] == 401 and codes[-1] == 429 and 429 in codes[:auth.LOCK_AFTER]
    locked = login(client)  # the right password does not help while locked
    assert locked.status_code == 429 and "ロック" in locked.get_data(as_text=True)
    # How long is said, on the page and to a script (as for a throttled address): counted from the lock.
    minutes = int(auth.LOCK_FOR.total_seconds() // 60)
    assert locked.headers["Retry-After"] == str(minutes * 60)
    assert f"{minutes}分ほど待ってから" in locked.get_data(as_text=True)
    rt.clock.advance(minutes=5)
    assert f"{minutes - 5}分ほど待ってから" in login(client).get_data(as_text=True)
    rt.clock.advance(minutes=auth.LOCK_FOR.total_seconds() / 60 - 5 + 1)
    assert login(client).status_code == 302


def test_logins_are_in_the_log_with_why_and_from_where_never_what_was_typed(rt, client, caplog):
    """The security officer reads refused logins and lock-outs in the app's log, not only in the database."""
    import logging

    caplog.set_level(logging.INFO, logger="bot")
    create_staff(rt)
    login(client, username="S3cret-typed-as-name", password="wrong password 1")
    for i in range(auth.LOCK_AFTER):
        login(client, password=f"wrong password {i}")
    refused = [r.getMessage() for r in caplog.records if "staff login refused" in r.getMessage()]
    assert refused[0].startswith("staff login refused reason=invalid ip=") and refused[-1].startswith(
        "staff login refused reason=locked ip=")
    assert all(r.levelno == logging.WARNING for r in caplog.records if "login refused" in r.getMessage())
    rt.clock.advance(minutes=auth.LOCK_FOR.total_seconds() / 60 + 1)
    login(client)
    assert any(r.getMessage().startswith("staff login account=") for r in caplog.records)
    assert "S3cret-typed-as-name" not in caplog.text and "wrong password" not in caplog.text
    assert "tanaka" not in caplog.text and PASSWORD not in caplog.text


def test_what_was_typed_as_a_user_name_is_forgotten_once_it_locks_nothing(rt, client):
    """Wrong passwords are counted under the name as typed, which is sometimes a password typed in the wrong
    box: the count goes once its window and any lock are over, and a lock still running stays."""
    from bot.staff import jobs

    create_staff(rt)
    login(client, username="S3cret-typed-as-name", password="wrong password")
    login(client, password="wrong password 0")
    rt.clock.advance(minutes=10)                              # the rest within the window: locked until +25
    for i in range(1, auth.LOCK_AFTER):
        login(client, password=f"wrong password {i}")

    def counted() -> set[str]:
        with rt.db.reading() as s:
            return set(s.scalars(select(LoginFailure.username)))

    assert counted() == {auth.failure_key(rt.config, "S3cret-typed-as-name"), auth.failure_key(rt.config, "tanaka")}
    rt.clock.advance(minutes=6)                               # both windows over, the lock not
    jobs.run_due(rt)
    assert counted() == {auth.failure_key(rt.config, "tanaka")} and login(client).status_code == 429
    rt.clock.advance(minutes=10)
    jobs.run_due(rt)
    assert counted() == set()
    assert login(client).status_code == 302


def test_what_was_typed_as_a_user_name_is_not_kept_in_the_database(rt, client):
    """A password typed into the user name box is not written down (the lock-out counts a keyed hash of the
    name), and a counter whose window has passed is purged by the worker."""
    from bot.staff.models import LoginFailure
    from bot.worker import Worker

    create_staff(rt)
    typed = "MyS3cretPassw0rd-typed-as-name"
    assert login(client, username=typed, password="wrong password").status_code == 401
    assert login(client, password="wrong password").status_code == 401
    with rt.db.reading() as s:
        stored = [value for table in Base.metadata.sorted_tables for row in s.execute(table.select())
                  for value in row if isinstance(value, str)]
        assert s.scalar(select(func.count()).select_from(LoginFailure)) == 2
    assert not [value for value in stored if typed.lower() in value.lower()]
    assert "tanaka" not in [value for value in stored if len(value) == 64]
    rt.clock.advance(minutes=auth.FAILURE_WINDOW.total_seconds() / 60 + 1)
    Worker(rt).run_once()
    with rt.db.reading() as s:
        assert s.scalar(select(func.count()).select_from(LoginFailure)) == 0


def test_unknown_usernames_lock_too_and_say_the_same(rt, client):
    first = login(client, username="nobody", password="whatever password")
    assert first.status_code == 401
    assert "ユーザー名またはパスワードが正しくありません" in first.get_data(as_text=True)


def test_an_admin_unlocks_an_account(rt, client, app):
    create_staff(rt)
    create_staff(rt, username="boss", role="admin")
    for i in range(auth.LOCK_AFTER):
        login(client, password=f"bad {i} password")
    admin = app.test_client()
    assert login(admin, "boss").status_code == 302
    user_id = next(u.id for u in _users(rt) if u.username == "tanaka")
    assert post(admin, f"/staff/users/{user_id}/unlock").status_code == 302
    assert login(client).status_code == 302


def _users(rt):
    with rt.db.reading() as s:
        return s.scalars(select(StaffUser)).all()


def test_login_starts_a_new_session_and_logout_ends_it(rt, client, app):
    create_staff(rt)
    client.get("/staff/login")
    with client.session_transaction() as sess:
        sess["staff_token"] = "planted-by-an-attacker"
        before_csrf = sess["staff_csrf"]
    login(client)
    with client.session_transaction() as sess:
        token = sess["staff_token"]
        assert token != "planted-by-an-attacker" and sess["staff_csrf"] != before_csrf
    # The token works from another browser only as long as the session lives on the server.
    thief = app.test_client()
    with thief.session_transaction() as sess:
        sess["staff_token"] = token
    assert thief.get("/staff/").status_code == 200
    assert post(client, "/staff/logout").status_code == 302
    assert thief.get("/staff/").status_code == 302
    assert client.get("/staff/").status_code == 302


def test_logging_out_says_so_even_after_the_session_had_ended(rt, client):
    create_staff(rt)
    login(client)
    out = post(client, "/staff/logout")
    assert out.status_code == 302 and out.headers["Location"].endswith("/staff/login?logged_out=1")
    page = client.get(out.headers["Location"]).get_data(as_text=True)
    assert "ログアウトしました。" in page and "押した操作は行われていません" not in page
    login(client)
    rt.clock.advance(seconds=31 * 60)   # left idle: the session ended before the button was pressed
    late = post(client, "/staff/logout")
    assert late.headers["Location"].endswith("/staff/login?logged_out=1")
    assert client.get("/staff/").status_code == 302


@pytest.mark.parametrize("sent_from", [{"Sec-Fetch-Site": "same-origin"}, {"Origin": "http://localhost"}])
def test_logout_from_an_older_tab_still_ends_the_session(rt, app, sent_from):
    """ログアウト in a tab opened before another tab logged in again (its page carries the old session's token):
    the session ends all the same, rather than a page saying nothing was done while they stay signed in."""
    create_staff(rt)
    client = app.test_client()
    login(client)
    old_token = csrf(client)
    login(client)                       # the other tab: logged in again, a new token
    assert client.get("/staff/").status_code == 200
    out = client.post("/staff/logout", data={"csrf_token": old_token}, headers=sent_from)
    assert out.status_code == 302 and out.headers["Location"].endswith("/staff/login?logged_out=1")
    assert client.get("/staff/").status_code == 302
    with rt.db.reading() as s:
        assert s.scalar(select(func.count()).select_from(StaffSession)) == 0
        assert s.scalar(select(func.count()).where(AuditEntry.action == "logout")) == 1
    # The other tab had logged out already: the older one's ログアウト says so too.
    again = client.post("/staff/logout", data={"csrf_token": old_token}, headers=sent_from)
    assert again.status_code == 302 and again.headers["Location"].endswith("/staff/login?logged_out=1")


@pytest.mark.parametrize("sent_from", [{"Sec-Fetch-Site": "cross-site"}, {"Sec-Fetch-Site": "same-site"},
                                       {"Origin": "https://evil.example"}, {"Origin": "null"}, {}])
def test_a_logout_another_site_forges_ends_nothing(rt, app, sent_from):
    create_staff(rt)
    client = app.test_client()
    login(client)
    for token in ("", "forged"):
        assert client.post("/staff/logout", data={"csrf_token": token}, headers=sent_from).status_code == 400
    assert client.get("/staff/").status_code == 200


def test_an_idle_session_times_out(rt, client):
    create_staff(rt)
    login(client)
    rt.clock.advance(minutes=20)
    assert client.get("/staff/").status_code == 200
    rt.clock.advance(minutes=auth.IDLE_TIMEOUT.total_seconds() / 60 + 1)
    assert client.get("/staff/").status_code == 302


def test_a_page_opened_after_the_session_ended_says_why_the_login_is_asked_again(rt, client):
    """A tab left open over lunch, then a link (or the group card's dashboard link): the login page came up
    without a word, as if something had gone wrong. It says the session ended and leads back to the page."""
    create_staff(rt)
    assert "ended=1" not in client.get("/staff/queue").headers["Location"]   # never logged in: just the login
    login(client)
    rt.clock.advance(minutes=auth.IDLE_TIMEOUT.total_seconds() / 60 + 1)
    response = client.get("/staff/queue")
    assert response.status_code == 302 and "ended=1" in response.headers["Location"]
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "ログインの有効期限が切れたため、自動的にログアウトしました。" in page and 'id="login-error"' not in page
    back = client.post(response.headers["Location"],
                       data={"username": "tanaka", "password": PASSWORD, "csrf_token": csrf(client)})
    assert back.status_code == 302 and back.headers["Location"] == "/staff/queue"
    client.post("/staff/logout", data={"csrf_token": csrf(client)})
    assert "ended=1" not in client.get("/staff/queue").headers["Location"]   # logged out on purpose


def test_a_button_pressed_after_the_session_ended_says_nothing_was_done_and_leads_back(rt, client):
    create_staff(rt)
    login(client)
    reference = make_request(rt)
    page = f"/staff/bookings/{reference}"
    assert client.get(page).status_code == 200
    rt.clock.advance(minutes=auth.IDLE_TIMEOUT.total_seconds() / 60 + 1)   # a phone call, then 承認
    response = post(client, f"{page}/confirm")
    assert response.status_code == 302
    target = response.headers["Location"]
    assert target.startswith("/staff/login?") and "not_done=1" in target
    login_page = client.get(target).get_data(as_text=True)
    assert "押した操作は行われていません" in login_page
    assert booking(rt, reference).status == "requested"
    back = client.post(target, data={"username": "tanaka", "password": PASSWORD, "csrf_token": csrf(client)})
    assert back.status_code == 302 and back.headers["Location"] == page


def test_a_form_sent_after_the_session_ended_returns_to_the_page_it_came_from(rt, client):
    create_staff(rt)
    login(client)
    rt.clock.advance(minutes=auth.IDLE_TIMEOUT.total_seconds() / 60 + 1)
    response = client.post("/staff/blocks", data={"day": "2026-12-14", "csrf_token": csrf(client)},
                           headers={"Referer": "http://localhost/staff/?from=2026-12-14"})
    assert response.status_code == 302 and "not_done=1" in response.headers["Location"]
    back = client.post(response.headers["Location"],
                       data={"username": "tanaka", "password": PASSWORD, "csrf_token": csrf(client)})
    assert back.headers["Location"] == "/staff/?from=2026-12-14"
    later = client.get("/staff/?from=2026-12-14")
    assert later.status_code == 200
    client.post("/staff/logout", data={"csrf_token": csrf(client)})
    assert "from%3D2026-12-14" in client.get("/staff/?from=2026-12-14").headers["Location"]


def test_a_page_older_than_the_session_says_nothing_was_done_and_links_back(rt, app):
    create_staff(rt)
    reference = make_request(rt)
    page = f"/staff/bookings/{reference}"
    client = app.test_client()
    login(client)
    old_token = csrf(client)
    assert client.get(page).status_code == 200
    login(client)   # logged in again in another tab: the new session has a new token
    response = client.post(f"{page}/confirm", data={"csrf_token": old_token},
                           headers={"Referer": f"http://localhost{page}"})
    text = response.get_data(as_text=True)
    assert response.status_code == 400 and "操作は行われていません" in text and f'href="{page}"' in text
    assert booking(rt, reference).status == "requested"
    stale_login = client.post("/staff/login?next=/staff/queue",
                              data={"username": "tanaka", "password": PASSWORD, "csrf_token": old_token})
    assert stale_login.status_code == 400 and 'href="/staff/login?next=/staff/queue"' in \
        stale_login.get_data(as_text=True)


def test_totp_second_factor(rt, client):
    create_staff(rt)
    login(client)
    post(client, "/staff/account/totp", step="start")
    totp = pyotp.TOTP(pending_totp_secret(client))
    now = rt.clock.now()
    valid = {totp.at(now + timedelta(seconds=d)) for d in (-30, 0, 30)}
    wrong = next(c for c in ("000000", "111111", "222222", "333333") if c not in valid)
    assert post(client, "/staff/account/totp", step="confirm", otp=wrong).headers["Location"].endswith("error=otp")
    post(client, "/staff/account/totp", step="confirm", otp=totp.at(rt.clock.now()))
    post(client, "/staff/logout")
    assert login(client).status_code == 401                                   # the password alone
    rt.clock.advance(seconds=31)
    code = totp.at(rt.clock.now())
    assert login(client, otp=code).status_code == 302
    post(client, "/staff/logout")
    assert login(client, otp=code).status_code == 401                         # a code works once
    rt.clock.advance(seconds=31)
    assert login(client, otp=totp.at(rt.clock.now())).status_code == 302


def test_a_moved_development_clock_does_not_move_the_one_time_codes(rt, client):
    """An authenticator app shows the codes of real time: the simulator's clock (APP_FAKE_NOW, 日時を設定), an
    offset over real time, must not decide which code is right, at enrolment or at login."""
    from bot import settings_store
    from bot.clock import TOKYO

    create_staff(rt)
    rt.clock.freeze(None)
    settings_store.set_clock(rt.db, datetime.now(TOKYO) - timedelta(days=5))
    rt.clock.forget()
    try:
        assert abs((datetime.now(TOKYO) - rt.clock.now()) - timedelta(days=5)) < timedelta(minutes=1)
        login(client)
        post(client, "/staff/account/totp", step="start")
        totp = pyotp.TOTP(pending_totp_secret(client))
        moved = post(client, "/staff/account/totp", step="confirm", otp=totp.at(rt.clock.now()))
        assert moved.headers["Location"].endswith("error=otp")          # the moved clock's code
        assert not post(client, "/staff/account/totp", step="confirm",
                        otp=totp.now()).headers["Location"].endswith("error=otp")
        post(client, "/staff/logout")
        assert login(client, otp=totp.at(rt.clock.now())).status_code == 401
        assert login(client, otp=totp.at(datetime.now(TOKYO) + timedelta(seconds=30))).status_code == 302
    finally:
        settings_store.set_clock(rt.db, None)


def test_a_totp_code_typed_in_full_width_digits_works_and_never_errs(rt, client):
    """A Japanese keyboard gives １２３ ４５６: it is the same code, at enrolment and at login."""
    def wide(code: str) -> str:
        return "".join(chr(ord(c) + 0xFEE0) for c in code)

    create_staff(rt)
    login(client)
    post(client, "/staff/account/totp", step="start")
    totp = pyotp.TOTP(pending_totp_secret(client))
    page = client.get("/staff/account").get_data(as_text=True)   # the key in groups of four, and a link for a phone
    grouped = " ".join(totp.secret[i:i + 4] for i in range(0, len(totp.secret), 4))
    assert f'<code id="totp-secret">{grouped}</code>' in page
    assert re.search(r'<a href="otpauth://totp/[^"]+secret=' + totp.secret + '[^"]*" id="totp-link">', page)
    code = totp.at(rt.clock.now())
    enrolled = post(client, "/staff/account/totp", step="confirm", otp=f"{wide(code[:3])}　{wide(code[3:])}")
    assert enrolled.status_code == 302 and not enrolled.headers["Location"].endswith("error=otp")
    post(client, "/staff/logout")
    rt.clock.advance(seconds=31)
    assert login(client, otp=wide("12345６")[:5] + "Ｘ").status_code == 401      # not digits: refused, no error
    assert login(client, otp=wide(totp.at(rt.clock.now()))).status_code == 302
    assert 'pattern="' not in client.get("/staff/login").get_data(as_text=True)


def test_the_secret_being_set_up_never_travels_in_the_cookie(rt, app, client):
    """Until a code confirms it, the new second factor's secret waits in the session: sealed under the data key,
    for Flask's cookie is signed but readable by whoever holds it (a shared PC's browser, a proxy's log)."""
    create_staff(rt)
    login(client)
    started = post(client, "/staff/account/totp", step="start")
    secret = pending_totp_secret(client)
    name = app.config["SESSION_COOKIE_NAME"]
    cookie = client.get_cookie(name).value
    assert any(header.startswith(f"{name}=") for header in started.headers.getlist("Set-Cookie"))
    opened = app.session_interface.get_signing_serializer(app).loads(cookie)
    assert "staff_totp_pending" in opened                       # the enrolment is under way ...
    assert secret not in json.dumps(opened) and secret not in cookie   # ... and its secret is not readable
    assert auth.open_totp_secret(rt.config, opened["staff_totp_pending"]) == secret
    done = post(client, "/staff/account/totp", step="confirm", otp=pyotp.TOTP(secret).at(rt.clock.now()))
    assert done.status_code == 302 and not done.headers["Location"].endswith("error=otp")
    with client.session_transaction() as sess:
        assert "staff_totp_pending" not in sess
    with rt.db.reading() as s:
        assert s.scalar(select(StaffUser.totp_secret).where(StaffUser.username == "tanaka")) is not None


def staff_with_a_second_factor(rt) -> str:
    """The account `tanaka` with TOTP set up half a minute ago: its secret (the next code is a fresh one)."""
    create_staff(rt)
    with rt.db.transaction() as s:
        user = s.scalar(select(StaffUser).where(StaffUser.username == "tanaka"))
        secret = auth.new_totp_secret()
        assert auth.enroll_totp(rt.config, user, secret, pyotp.TOTP(secret).at(rt.clock.now()), rt.clock.now())
    rt.clock.advance(seconds=31)
    return secret


def test_a_second_factor_once_set_is_not_replaced_from_the_session(rt, client):
    """Only an admin removes a second factor: an open session (left on a shared PC, or stolen) cannot move it to
    another phone by setting it up again."""
    secret = staff_with_a_second_factor(rt)
    assert login(client, otp=pyotp.TOTP(secret).at(rt.clock.now())).status_code == 302
    assert post(client, "/staff/account/totp", step="start").status_code == 403
    theirs = auth.new_totp_secret()
    with client.session_transaction() as sess:
        sess["staff_totp_pending"] = auth.seal_totp_secret(rt.config, theirs)
    rt.clock.advance(seconds=31)
    assert post(client, "/staff/account/totp", step="confirm", otp=pyotp.TOTP(theirs).at(rt.clock.now())
                ).status_code == 403
    post(client, "/staff/logout")
    assert login(client, otp=pyotp.TOTP(theirs).at(rt.clock.now())).status_code == 401
    assert login(client, otp=pyotp.TOTP(secret).at(rt.clock.now())).status_code == 302


def test_the_ip_allow_list(rt, app):
    create_staff(rt)
    with rt.db.transaction() as s:
        auth.set_allowlist(s, "sakata", auth.parse_allowlist("192.0.2.0/24"))
    outside = app.test_client()
    assert login(outside).status_code == 403          # the test client comes from 127.0.0.1
    inside = app.test_client()
    inside.environ_base["REMOTE_ADDR"] = "192.0.2.15"
    assert login(inside).status_code == 302
    assert inside.get("/staff/").status_code == 200
    with rt.db.transaction() as s:
        auth.set_allowlist(s, "sakata", [])
    assert login(outside).status_code == 302


def test_from_outside_the_allow_list_no_answer_tells_whether_the_password_was_right(rt, app):
    """Refused outside the office's network whatever was typed, and every try counts towards the lock-out:
    an attacker outside cannot confirm a stolen or guessed password by the answer or by when the lock comes."""
    create_staff(rt)
    with rt.db.transaction() as s:
        auth.set_allowlist(s, "sakata", auth.parse_allowlist("192.0.2.0/24"))
    outside = app.test_client()
    answers = [login(outside, password=p) for p in ["wrong password 1", PASSWORD, "wrong password 2", PASSWORD]]
    assert {a.status_code for a in answers} == {403}
    assert len({a.get_data(as_text=True).replace(csrf(outside), "") for a in answers[-2:]}) == 1
    for _ in range(auth.LOCK_AFTER - len(answers) - 1):
        assert login(outside).status_code == 403
    assert login(outside).status_code == 429
    inside = app.test_client()
    inside.environ_base["REMOTE_ADDR"] = "192.0.2.15"
    assert login(inside).status_code == 429        # the lock-out holds everywhere, as for wrong passwords


def test_from_outside_every_office_network_no_answer_tells_whether_a_name_exists(rt, app):
    """From an address no office's network admits, a name that exists and one that does not (or no longer
    works) get the same answer; inside a network, an unknown name is told so as before."""
    create_staff(rt)
    create_staff(rt, username="otaru1", office="otaru")
    create_staff(rt, username="retired")
    with rt.db.transaction() as s:
        s.scalar(select(StaffUser).where(StaffUser.username == "retired")).active = False
        auth.set_allowlist(s, "sakata", auth.parse_allowlist("192.0.2.0/24"))
        auth.set_allowlist(s, "otaru", auth.parse_allowlist("198.51.100.0/24"))
    outside = app.test_client()
    answers = [login(outside, username=name) for name in ("tanaka", "nobody", "retired")]
    assert {a.status_code for a in answers} == {403}
    assert len({a.get_data(as_text=True).replace(csrf(outside), "").replace(name, "")
                for a, name in zip(answers, ("tanaka", "nobody", "retired"))}) == 1
    inside = app.test_client()
    inside.environ_base["REMOTE_ADDR"] = "192.0.2.15"
    assert login(inside, username="nobody").status_code == 401
    with rt.db.transaction() as s:
        auth.set_allowlist(s, "otaru", [])                # an office open to every address: as before
    assert login(app.test_client(), username="nobody").status_code == 401


@pytest.mark.parametrize("hops, forwarded, allowed", [
    (0, "192.0.2.15", False),                 # no proxy trusted: a forged header changes nothing
    (1, "192.0.2.15", True),                  # behind the router: the client's address it adds counts
    (1, "192.0.2.15, 198.51.100.7", False),   # only the hop the router added, not what the client wrote
])
def test_the_ip_allow_list_behind_a_router(make_app, hops, forwarded, allowed):
    app = make_app(trusted_proxy_hops=hops)
    rt = app.extensions["madoguchi"]
    create_staff(rt)
    with rt.db.transaction() as s:
        auth.set_allowlist(s, "sakata", auth.parse_allowlist("192.0.2.0/24"))
    client = app.test_client()
    client.environ_base["HTTP_X_FORWARDED_FOR"] = forwarded
    assert login(client).status_code == (302 if allowed else 403)
    if allowed:
        with rt.db.reading() as s:
            entry = s.scalars(select(AuditEntry).where(AuditEntry.action == "login")).one()
        assert entry.ip == "192.0.2.15"


def test_an_otaru_account_never_sees_sakata_data(rt, client):
    create_staff(rt, office="otaru", username="otaru-staff")
    sakata_ref = make_request(rt)
    otaru_ref = make_request(rt, "otaru", OTARU_WEDNESDAY)
    login(client, "otaru-staff")
    missing = client.get(f"/staff/bookings/{sakata_ref}")
    assert missing.status_code == 404 and sakata_ref not in missing.get_data(as_text=True)
    assert "見つかりませんでした" in missing.get_data(as_text=True)   # in words, with the way on
    assert 'href="/staff/search"' in missing.get_data(as_text=True)
    assert post(client, f"/staff/bookings/{sakata_ref}/confirm").status_code == 404
    assert reveal(client, sakata_ref).status_code == 404
    assert reveal(client, otaru_ref).status_code == 302
    page = client.get(f"/staff/bookings/{otaru_ref}")
    assert page.status_code == 200 and "小樽 太郎" in page.get_data(as_text=True)
    queue = client.get("/staff/queue").get_data(as_text=True)
    assert otaru_ref in queue and sakata_ref not in queue
    with rt.db.reading() as s:
        views = s.scalars(select(AuditEntry).where(AuditEntry.action == "view_details")).all()
        assert [(v.office_id, v.reference) for v in views] == [("otaru", otaru_ref)]


def test_only_admins_manage_accounts_of_their_own_office(rt, app):
    create_staff(rt)
    create_staff(rt, username="boss", role="admin")
    other_id = create_staff(rt, office="otaru", username="otaru-staff")
    staff = app.test_client()
    login(staff)
    assert staff.get("/staff/users").status_code == 403
    assert "管理者のアカウントだけ" in staff.get("/staff/users").get_data(as_text=True)
    assert post(staff, "/staff/users", username="newbie", password=PASSWORD).status_code == 403
    admin = app.test_client()
    login(admin, "boss")
    assert admin.get("/staff/users").status_code == 200
    assert post(admin, "/staff/users", username="newbie", password=PASSWORD, role="staff").status_code == 302
    assert post(admin, f"/staff/users/{other_id}/deactivate").status_code == 404
    newbie = next(u for u in _users(rt) if u.username == "newbie")
    assert newbie.office_id == "sakata" and newbie.password_hash != PASSWORD
    assert post(admin, f"/staff/users/{newbie.id}/deactivate").status_code == 302
    assert login(app.test_client(), "newbie").status_code == 401


def test_an_account_that_cannot_be_made_keeps_what_the_admin_typed(rt, client):
    create_staff(rt, username="boss", role="admin")
    create_staff(rt, username="sato")
    login(client, "boss")
    page = client.get("/staff/users").get_data(as_text=True)
    assert 'aria-label="停止（sato）"' in page and 'aria-label="停止（boss）"' not in page   # not one's own
    assert 'aria-label="パスワードを再設定（sato）"' in page
    taken = post(client, "/staff/users", username="sato", password=PASSWORD, role="admin")
    assert taken.status_code == 400
    page = taken.get_data(as_text=True)
    assert "アカウントは作成していません。そのユーザー名はすでに使われています。" in page
    assert 'name="username" required autocomplete="off" value="sato"' in page and 'value="admin" selected' in page
    assert PASSWORD not in page
    short = post(client, "/staff/users", username="suzuki", password="short", role="staff")
    assert short.status_code == 400 and 'value="suzuki"' in short.get_data(as_text=True)
    assert "パスワードは12文字以上にしてください。" in short.get_data(as_text=True)
    assert sorted(u.username for u in _users(rt)) == ["boss", "sato"]
    # Done: the answer names the account, since every row has the same buttons.
    sato = next(u for u in _users(rt) if u.username == "sato")
    post(client, f"/staff/users/{sato.id}/deactivate")
    assert "アカウントを停止しました。（アカウント: sato）" in client.get("/staff/users").get_data(as_text=True)
    post(client, "/staff/users", username="suzuki", password=PASSWORD, role="staff")
    assert "アカウントを作成しました。（アカウント: suzuki）" in client.get("/staff/users").get_data(as_text=True)


# -- the command ----------------------------------------------------------------------------------

@pytest.fixture
def cli(app):
    return app.test_cli_runner()


def test_create_user_command(cli, rt):
    result = cli.invoke(args=["staff", "create-user", "--office", "sakata", "--username", "suzuki",
                              "--role", "admin", "--password-stdin"], input=PASSWORD + "\n")
    assert result.exit_code == 0, result.output
    user = next(u for u in _users(rt) if u.username == "suzuki")
    assert user.role == "admin" and user.office_id == "sakata"
    assert check_password_hash(user.password_hash, PASSWORD)
    again = cli.invoke(args=["staff", "create-user", "--office", "sakata", "--username", "suzuki",
                             "--password-stdin"], input=PASSWORD + "\n")
    assert again.exit_code == 1
    plain = cli.invoke(args=["staff", "create-user", "--office", "otaru", "--username", "sato", "--password-stdin"],
                       input=PASSWORD + "\n")
    assert plain.exit_code == 0, plain.output                    # --role is optional: staff
    assert next(u for u in _users(rt) if u.username == "sato").role == "staff"


@pytest.mark.parametrize("args,stdin", [
    (["--office", "nowhere", "--username", "x-user", "--password-stdin"], PASSWORD),
    (["--office", "sakata", "--username", "x-user", "--role", "boss", "--password-stdin"], PASSWORD),
    (["--office", "sakata", "--username", "x-user"], PASSWORD),                     # no --password-stdin
    (["--office", "sakata", "--username", "x-user", "--password-stdin"], ""),       # nothing on stdin
    (["--office", "sakata", "--username", "x-user", "--password-stdin"], "short"),
    (["--office", "sakata", "--username", "no spaces", "--password-stdin"], PASSWORD),
    (["--username", "x-user", "--password-stdin"], PASSWORD),                        # no --office
])
def test_create_user_misuse_exits_2_without_waiting(cli, rt, args, stdin):
    result = cli.invoke(args=["staff", "create-user", *args], input=stdin)
    assert result.exit_code == 2, result.output
    assert not [u for u in _users(rt) if u.username == "x-user"]


def test_passwords_are_stored_hashed(rt):
    create_staff(rt)
    user = _users(rt)[0]
    assert PASSWORD not in user.password_hash and user.password_hash.startswith(("scrypt:", "pbkdf2:"))


def test_locked_window_resets(rt, client):
    create_staff(rt)
    for i in range(auth.LOCK_AFTER - 1):
        login(client, password=f"bad {i} password")
    rt.clock.advance(minutes=auth.FAILURE_WINDOW.total_seconds() / 60 + 1)
    assert login(client, password="bad again password").status_code == 401
    assert login(client).status_code == 302
    assert timedelta(minutes=1) < auth.LOCK_FOR


def test_readme_gives_the_passwords_least_length():
    """The operator creating the first account reads the rule before the command refuses a short password."""
    from pathlib import Path

    from bot.staff import auth

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    assert f"A password has at least {auth.MIN_PASSWORD} characters" in readme


def test_one_code_sent_twice_at_once_logs_in_once(rt, app, monkeypatch):
    """A code seen over someone's shoulder, or relayed by a phishing page, and sent at the same moment as the
    owner's own login: only one of the two gets in (the account's row is locked while a login is checked)."""
    secret = staff_with_a_second_factor(rt)
    code = pyotp.TOTP(secret).at(rt.clock.now())
    real_check = auth.check_password_hash

    def slow_check(*args):       # both logins are inside their check at the same time
        time.sleep(0.5)
        return real_check(*args)

    monkeypatch.setattr(auth, "check_password_hash", slow_check)
    app.config["PROPAGATE_EXCEPTIONS"] = False  # as in production: a failed page is answered, not raised
    clients = [app.test_client() for _ in range(2)]
    forms = [{"username": "tanaka", "password": PASSWORD, "otp": code, "csrf_token": csrf(c)} for c in clients]
    statuses = logins_at_once(clients, forms, barrier_first=True)
    # The other is refused: its code was used (401), or, where the first holds the row past the web's lock
    # timeout (PostgreSQL), it is asked to try again (503). Never two logins.
    assert sorted(statuses)[0] == 302 and sorted(statuses)[1] in (401, 503), statuses
