"""Failed dashboard logins per client address: a spray over many user names from one address is throttled,
other addresses are not, the count ends with its window, lives in the database and is purged."""
from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest
from sqlalchemy import func, select
from werkzeug.security import generate_password_hash

from bot.schema import Base
from bot.staff import auth, jobs, throttle
from bot.staff.models import AuditEntry, LoginAddressFailure, LoginFailure
from tests.staffkit import fast_password_hashing  # noqa: F401 - autouse fixture
from tests.staffkit import PASSWORD, create_staff, csrf, login, logins_at_once, post

ROOT = Path(__file__).resolve().parent.parent
OFFICE = "192.0.2.15"          # an office's router: every member's login comes from it
ELSEWHERE = "198.51.100.7"


@pytest.fixture(autouse=True)
def _cheap_unknown_names(monkeypatch):
    """Unknown names are checked against a dummy hash of the shipped cost (0.2 s): cheap here, as accounts are."""
    monkeypatch.setattr(auth, "_DUMMY_HASH", generate_password_hash("dummy", method="scrypt:1024:8:1"))


def _from(app, address: str):
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def _spray(client, tries: int, first: int = 0) -> list[int]:
    """One wrong password on each of `tries` user names (none near its own lock-out)."""
    return [login(client, username=f"name{n:03d}", password="Spring2026!").status_code
            for n in range(first, first + tries)]


def _minutes(delta) -> float:
    return delta.total_seconds() / 60


def test_one_address_trying_many_names_is_throttled(rt, app):
    create_staff(rt)
    sprayer = _from(app, ELSEWHERE)
    codes = _spray(sprayer, throttle.ADDRESS_LIMIT)
    assert codes[:-1] == [401] * (throttle.ADDRESS_LIMIT - 1) and codes[-1] == 429
    refused = login(sprayer)                               # the right password does not help meanwhile
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == str(int(throttle.ADDRESS_THROTTLE.total_seconds()))
    text = refused.get_data(as_text=True)
    assert f"{int(_minutes(throttle.ADDRESS_THROTTLE))}分ほど待ってから" in text and "管理者にご連絡ください" in text
    with rt.db.reading() as s:                             # each name stayed far under its own lock-out
        assert s.scalar(select(func.max(LoginFailure.count))) == 1
    rt.clock.advance(minutes=5)
    assert "10分ほど待ってから" in login(sprayer).get_data(as_text=True)


def test_the_throttled_answer_does_not_tell_whether_a_name_exists(rt, app):
    create_staff(rt)
    sprayer = _from(app, ELSEWHERE)
    _spray(sprayer, throttle.ADDRESS_LIMIT)
    answers = [login(sprayer, username=name, password=password)
               for name, password in [("tanaka", PASSWORD), ("nobody", PASSWORD), ("tanaka", "wrong password")]]
    assert {a.status_code for a in answers} == {429}
    bodies = {re.sub(r'value="[^"]*"', "", a.get_data(as_text=True).replace(csrf(sprayer), "")) for a in answers}
    assert len(bodies) == 1
    assert "ユーザー名" in bodies.pop()                   # the form itself, without what was typed


def test_another_address_is_not_throttled(rt, app):
    create_staff(rt)
    _spray(_from(app, ELSEWHERE), throttle.ADDRESS_LIMIT)
    assert login(_from(app, OFFICE)).status_code == 302
    assert login(_from(app, OFFICE), username="nobody", password="wrong password").status_code == 401


def test_one_person_mistyping_their_password_never_throttles_the_office(rt, app):
    """Behind one router, one person's typos lock their own name; everyone else still logs in."""
    assert throttle.ADDRESS_LIMIT >= 2 * auth.LOCK_AFTER   # one name fails under 2 × LOCK_AFTER in a window
    create_staff(rt)
    create_staff(rt, username="sato")
    typist = _from(app, OFFICE)
    codes = [login(typist, password=f"wrong password {i}").status_code for i in range(3 * throttle.ADDRESS_LIMIT)]
    assert set(codes[auth.LOCK_AFTER:]) == {429}
    assert "ロック" in login(typist).get_data(as_text=True)
    assert login(_from(app, OFFICE), username="sato").status_code == 302


def test_an_office_network_in_the_allow_list_is_never_throttled(rt, app):
    """An office's allow-listed network is where all its members log in, often through one router or one gateway
    several offices share: the typos of several people at opening time, or anyone sharing it, never refuse them
    all. Each name's own lock-out still holds there, and a client outside it is throttled as before."""
    create_staff(rt)
    with rt.db.transaction() as s:
        auth.set_allowlist(s, "sakata", auth.parse_allowlist("192.0.2.0/24"))
    assert _spray(_from(app, OFFICE), 3 * throttle.ADDRESS_LIMIT) == [401] * (3 * throttle.ADDRESS_LIMIT)
    assert login(_from(app, OFFICE)).status_code == 302
    codes = [login(_from(app, OFFICE), username="name000", password=f"wrong {i}").status_code
             for i in range(auth.LOCK_AFTER)]
    assert codes[-1] == 429 and "ロック" in login(_from(app, OFFICE), username="name000").get_data(as_text=True)
    assert _spray(_from(app, ELSEWHERE), throttle.ADDRESS_LIMIT, first=100)[-1] == 429
    assert "この接続元" in login(_from(app, ELSEWHERE)).get_data(as_text=True)


@pytest.mark.parametrize("everyone", ["0.0.0.0/0", "0.0.0.0/1\n128.0.0.0/1", "::/0\n0.0.0.0/0", "2000::/3"])
def test_an_allow_list_admitting_the_internet_does_not_turn_the_throttle_off(rt, app, everyone):
    """The throttle holds for every office, and one office's allow-list exempts its own network only because all
    its members log in from there: a list that admits the internet (or most of it: no office's network is wider
    than a /8, or a /32 in IPv6), which an administrator may type meaning 'no restriction', exempts nobody, or one
    office's list would end the spray throttle of the whole deployment."""
    create_staff(rt)
    create_staff(rt, office="otaru", username="suzuki", role="admin")
    with rt.db.transaction() as s:
        auth.set_allowlist(s, "otaru", auth.parse_allowlist(everyone))
    sprayer = _from(app, "2001:db8::7" if everyone == "2000::/3" else ELSEWHERE)
    assert _spray(sprayer, throttle.ADDRESS_LIMIT)[-1] == 429
    assert login(sprayer).status_code == 429


def test_a_successful_login_does_not_reset_the_address_count(rt, app):
    """A colleague's success behind the same router (or an account the sprayer holds) does not wipe a spray's
    count: it ends with its window."""
    create_staff(rt)
    client = _from(app, OFFICE)
    _spray(client, throttle.ADDRESS_LIMIT - 1)
    assert login(_from(app, OFFICE)).status_code == 302
    assert login(client, username="name999", password="wrong password").status_code == 429


def test_the_count_ends_with_its_window_and_the_throttle_with_its_time(rt, app):
    create_staff(rt)
    client = _from(app, ELSEWHERE)
    _spray(client, throttle.ADDRESS_LIMIT - 1)
    rt.clock.advance(minutes=_minutes(throttle.ADDRESS_WINDOW) + 1)
    assert _spray(client, throttle.ADDRESS_LIMIT - 1, first=100) == [401] * (throttle.ADDRESS_LIMIT - 1)
    assert _spray(client, 1, first=200) == [429]
    rt.clock.advance(minutes=_minutes(throttle.ADDRESS_THROTTLE) - 1)
    assert login(client).status_code == 429
    rt.clock.advance(minutes=2)
    assert _spray(client, 1, first=300) == [401]             # a new window: counted from one again
    assert login(client).status_code == 302


def test_an_open_session_is_no_unlimited_oracle_for_its_password(rt, app):
    """Whoever holds a signed-in dashboard (a terminal left open, a stolen cookie) and guesses the current
    password on the account page is counted as a login would be: the name locks, and the right password is
    then refused too, so guesses cannot go on until one works and the account is taken over."""
    create_staff(rt)
    holder = _from(app, ELSEWHERE)
    assert login(holder).status_code == 302
    for i in range(auth.LOCK_AFTER):
        answer = post(holder, "/staff/account/password", current=f"guess {i}", new="a new password 2026")
        assert answer.status_code == 302
    assert "error=locked" in answer.headers["Location"]
    right = post(holder, "/staff/account/password", current=PASSWORD, new="a new password 2026")
    assert "error=locked" in right.headers["Location"]
    assert "ロック" in holder.get(right.headers["Location"]).get_data(as_text=True)
    assert login(_from(app, OFFICE)).status_code == 429       # the name is locked for logins too
    rt.clock.advance(minutes=_minutes(auth.LOCK_FOR) + 1)
    assert login(_from(app, OFFICE)).status_code == 302       # and the right password still works afterwards


def test_the_count_is_kept_in_the_database_for_every_process(rt, app, make_app):
    """Two app instances (two gunicorn workers, or two hosts) count one address together."""
    other = make_app()
    other.extensions["madoguchi"].clock.freeze(rt.clock.now())
    create_staff(rt)
    half = throttle.ADDRESS_LIMIT // 2
    _spray(_from(app, ELSEWHERE), half)
    _spray(_from(other, ELSEWHERE), throttle.ADDRESS_LIMIT - half - 1, first=100)
    assert login(_from(app, ELSEWHERE), username="name999", password="wrong password").status_code == 429
    assert login(_from(other, ELSEWHERE)).status_code == 429


def test_the_address_is_counted_under_a_keyed_hash_never_as_itself(rt, app):
    create_staff(rt)
    _spray(_from(app, ELSEWHERE), 2)
    with rt.db.reading() as s:
        keys = list(s.scalars(select(LoginAddressFailure.address)))
        stored = [value for row in s.execute(LoginAddressFailure.__table__.select()) for value in row]
    assert keys == [throttle.address_key(rt.config, ELSEWHERE)] and re.fullmatch(r"[0-9a-f]{64}", keys[0])
    assert not [value for value in stored if isinstance(value, str) and ELSEWHERE in value]
    assert "staff_login_address_failures" in Base.metadata.tables


def test_an_ipv6_client_counts_by_its_range(rt):
    key = throttle.address_key
    assert key(rt.config, "2001:db8:1:2::1") == key(rt.config, "2001:db8:1:2:ffff::9")
    assert key(rt.config, "2001:db8:1:2::1") != key(rt.config, "2001:db8:1:3::1")
    assert key(rt.config, "::ffff:192.0.2.15") == key(rt.config, OFFICE) != key(rt.config, ELSEWHERE)
    assert key(rt.config, None) == key(rt.config, "") == key(rt.config, "unix-socket") == ""


def test_behind_a_router_the_client_address_it_reports_is_counted(make_app):
    """With TRUSTED_PROXY_HOPS the address is the one the router adds, as for the allow-list: two clients behind
    one proxy are counted apart, and a header the client wrote itself changes nothing."""
    app = make_app(trusted_proxy_hops=1)
    rt = app.extensions["madoguchi"]
    create_staff(rt)
    sprayer = app.test_client()
    sprayer.environ_base["HTTP_X_FORWARDED_FOR"] = ELSEWHERE
    assert _spray(sprayer, throttle.ADDRESS_LIMIT)[-1] == 429
    forged = app.test_client()
    forged.environ_base["HTTP_X_FORWARDED_FOR"] = f"203.0.113.9, {ELSEWHERE}"   # the router appended the real one
    assert login(forged).status_code == 429
    colleague = app.test_client()
    colleague.environ_base["HTTP_X_FORWARDED_FOR"] = OFFICE
    assert login(colleague).status_code == 302


def test_the_purge_takes_counts_that_throttle_nothing_any_more(rt, app):
    create_staff(rt)
    _spray(_from(app, OFFICE), 1)                               # OFFICE counts from 0:00
    rt.clock.advance(minutes=2)
    _spray(_from(app, ELSEWHERE), 1)                            # ELSEWHERE from 0:02, throttled 0:10 to 0:25
    rt.clock.advance(minutes=8)
    _spray(_from(app, ELSEWHERE), throttle.ADDRESS_LIMIT - 1, first=1)

    def counted() -> set[str]:
        with rt.db.reading() as s:
            return set(s.scalars(select(LoginAddressFailure.address)))

    office, elsewhere = (throttle.address_key(rt.config, a) for a in (OFFICE, ELSEWHERE))
    assert counted() == {office, elsewhere}
    rt.clock.advance(minutes=8)                                 # 0:18: both windows over, the throttle not
    jobs.run_due(rt)
    assert counted() == {elsewhere} and login(_from(app, ELSEWHERE)).status_code == 429
    rt.clock.advance(minutes=8)                                 # 0:26
    jobs.run_due(rt)
    assert counted() == set()
    assert login(_from(app, ELSEWHERE)).status_code == 302


def test_the_refusal_is_logged_with_its_reason_never_what_was_typed(rt, app, caplog):
    caplog.set_level(logging.INFO, logger="bot")
    create_staff(rt)
    sprayer = _from(app, ELSEWHERE)
    _spray(sprayer, throttle.ADDRESS_LIMIT)
    login(sprayer)
    refused = [r for r in caplog.records if "staff login refused" in r.getMessage()]
    assert refused[-1].getMessage() == f"staff login refused reason=throttled ip={ELSEWHERE}"
    assert refused[-1].levelno == logging.WARNING
    assert "name000" not in caplog.text and "Spring2026!" not in caplog.text and PASSWORD not in caplog.text


def test_the_refusal_words_come_from_the_template(rt, app):
    sprayer = _from(app, ELSEWHERE)
    _spray(sprayer, throttle.ADDRESS_LIMIT)
    page = login(sprayer).get_data(as_text=True)
    source = (ROOT / "templates/staff/login.html").read_text(encoding="utf-8")
    said = re.search(r'error == "throttled" %}(.+)', source).group(1)
    sentence = said.split("{{")[0]
    assert sentence and sentence in page
    python = "".join(p.read_text(encoding="utf-8") for p in (ROOT / "bot").rglob("*.py"))
    assert sentence not in python and "待ってから" not in python


def test_readme_and_security_give_the_throttles_figures():
    """The operator and the security officer read the limits the code applies."""
    figures = f"after {throttle.ADDRESS_LIMIT} failed logins within {int(_minutes(throttle.ADDRESS_WINDOW))} minutes"
    for name in ("README.md", "SECURITY.md"):
        assert figures in " ".join((ROOT / name).read_text(encoding="utf-8").split()), name


@pytest.mark.parametrize("known", [False, True], ids=["unknown_name", "known_name"])
def test_two_wrong_passwords_for_one_name_at_once_are_both_counted(rt, app, monkeypatch, known):
    """The name's counter was read before its check and written after: two failures at once (a double tap, a
    script) both found no counter, both inserted one, and the second login failed with an error page instead of
    its answer (and its failure was not counted). Counted in one statement now, as the address's count is."""
    if rt.db.sqlite:
        pytest.skip("PostgreSQL only (SQLite serialises writers with BEGIN IMMEDIATE)")
    import threading
    import time

    if known:
        create_staff(rt)
    barrier = threading.Barrier(2)
    real_check = auth.check_password_hash

    def check_together(*args):   # both logins have read the (missing) counter before either writes it
        if known:                # a known account's row is locked for its check: the other waits for it
            time.sleep(0.1)      # (within the web's lock timeout)
        else:
            barrier.wait(timeout=10)
        return real_check(*args)

    monkeypatch.setattr(auth, "check_password_hash", check_together)
    app.config["PROPAGATE_EXCEPTIONS"] = False  # as in production: a failed page is answered, not raised
    clients = [_from(app, ELSEWHERE) for _ in range(2)]
    forms = [{"username": "tanaka", "password": "wrong-" + str(n), "csrf_token": csrf(c)} for n, c in
             enumerate(clients)]
    assert logins_at_once(clients, forms) == [401, 401]
    with rt.db.reading() as s:
        assert s.scalar(select(LoginFailure.count)) == 2


def test_an_administrator_lifts_the_throttle_of_an_address(rt, app):
    """A throttled address (an office without an allow-list, several people mistyping at opening time) need not
    wait out its 15 minutes: `staff unthrottle` lets it log in again, with a fresh count; other addresses keep
    theirs."""
    create_staff(rt)
    office, sprayer = _from(app, OFFICE), _from(app, ELSEWHERE)
    assert _spray(office, throttle.ADDRESS_LIMIT)[-1] == 429
    assert _spray(sprayer, throttle.ADDRESS_LIMIT, first=100)[-1] == 429
    cli = app.test_cli_runner()
    lifted = cli.invoke(args=["staff", "unthrottle", "--address", OFFICE])
    assert lifted.exit_code == 0, lifted.output
    assert f"the login throttle of {OFFICE} is lifted" in lifted.output
    assert login(office).status_code == 302
    assert _spray(office, 1, first=200) == [401]              # counted from one again, not throttled at once
    assert login(sprayer).status_code == 429
    again = cli.invoke(args=["staff", "unthrottle", "--address", OFFICE])
    assert again.exit_code == 0 and f"{OFFICE} was not throttled" in again.output
    misuse = cli.invoke(args=["staff", "unthrottle", "--address", "not-an-address"])
    assert misuse.exit_code == 2 and "not an IPv4 or IPv6 address" in misuse.output


def test_lifting_a_throttle_is_in_every_offices_audit_log(rt, app):
    """A throttle holds for every office, so lifting it belongs to none: the audit keeps one entry of the whole
    deployment, which each office's log shows (what was lifted, when, by which command, whether it was on), and
    which holds the address only as the throttle does, a keyed hash."""
    create_staff(rt, office="sakata", username="tanaka")
    create_staff(rt, office="otaru", username="sato")
    assert _spray(_from(app, ELSEWHERE), throttle.ADDRESS_LIMIT)[-1] == 429
    cli = app.test_cli_runner()
    assert cli.invoke(args=["staff", "unthrottle", "--address", ELSEWHERE]).exit_code == 0
    rt.clock.advance(minutes=1)
    assert cli.invoke(args=["staff", "unthrottle", "--address", ELSEWHERE]).exit_code == 0
    with rt.db.reading() as s:
        lifts = list(s.scalars(select(AuditEntry).where(AuditEntry.action == "unthrottle_address")
                               .order_by(AuditEntry.id)))
    assert [(e.office_id, e.actor, e.detail["command"], e.detail["throttled"]) for e in lifts] == [
        (None, "cli", "staff unthrottle", True), (None, "cli", "staff unthrottle", False)]
    assert lifts[0].detail["address_key"] == throttle.address_key(rt.config, ELSEWHERE)
    assert all(ELSEWHERE not in str((e.detail, e.ip)) for e in lifts)
    for username in ("tanaka", "sato"):
        staff = app.test_client()
        assert login(staff, username=username).status_code == 302
        page = staff.get("/staff/audit").get_data(as_text=True)
        assert page.count("接続元アドレスのログイン制限の解除（") == 2, username   # the two entries (not the filter's option)
        assert "（全事業所共通）（コマンド: staff unthrottle）" in page
        assert "（制限中ではありませんでした）（全事業所共通）" in page
        assert "サーバー上のコマンド" in page and ELSEWHERE not in page
