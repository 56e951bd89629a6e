"""The security officer's review of the dashboard's sessions, as real requests through the app: a cookie
replayed after logout, a password change or an account's disabling; the reveal of a booking's personal details
(要配慮個人情報 among them) held on the server, in the login's own session, which every way a session ends takes
with it; CSRF on every POST route under /staff (enumerated from the app's url_map, so a new route cannot slip
by); the reveal and the CSV export in the audit log (who, when, which booking, never the data); `no-store` on
every response that shows personal data."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import delete, func, select, update

from bot.models import Booking, SlotBlock, SlotClaim, StaffNotice
from bot.staff import auth, jobs, personal, reveals
from bot.staff.models import AuditEntry, RevealGrant, StaffSession, StaffUser
from tests.staffkit import fast_password_hashing, staff  # noqa: F401 - fixtures
from tests.staffkit import (DETAILS, PASSWORD, SAKATA_MONDAY, booking, create_staff, csrf, login, make_request,
                            post, reveal)

NAME = DETAILS["sakata"]["name"]
NEW_PASSWORD = "a different password 2026"


def _copy(client, app):
    """Another browser holding a copy of the client's cookie as it is now (a shared PC's profile, a proxy)."""
    thief = app.test_client()
    name = app.config["SESSION_COOKIE_NAME"]
    thief.set_cookie(name, client.get_cookie(name).value)
    return thief


def _shows_details(client, reference: str) -> bool:
    response = client.get(f"/staff/bookings/{reference}")
    return response.status_code == 200 and NAME in response.get_data(as_text=True)


def _grants(rt) -> int:
    with rt.db.reading() as s:
        return s.scalar(select(func.count()).select_from(RevealGrant))


def _user_id(rt, username: str) -> int:
    with rt.db.reading() as s:
        return s.scalar(select(StaffUser.id).where(StaffUser.username == username))


# -- a copied cookie ------------------------------------------------------------------------------

def _logout(rt, client, admin):
    assert post(client, "/staff/logout").status_code == 302


def _change_password(rt, client, admin):
    changed = post(client, "/staff/account/password", current=PASSWORD, new=NEW_PASSWORD)
    assert changed.status_code == 302 and "error" not in changed.headers["Location"]


def _disable(rt, client, admin):
    assert post(admin, f"/staff/users/{_user_id(rt, 'tanaka')}/deactivate").status_code == 302


def _reset_password(rt, client, admin):
    assert post(admin, f"/staff/users/{_user_id(rt, 'tanaka')}/reset_password",
                password=NEW_PASSWORD).status_code == 302


def _reset_second_factor(rt, client, admin):
    with rt.db.transaction() as s:   # set up earlier (the phone now lost)
        s.get(StaffUser, _user_id(rt, "tanaka")).totp_secret = auth.seal_totp_secret(rt.config,
                                                                                    auth.new_totp_secret())
    assert post(admin, f"/staff/users/{_user_id(rt, 'tanaka')}/reset_totp").status_code == 302


@pytest.mark.parametrize("end", [_logout, _change_password, _disable, _reset_password, _reset_second_factor])
def test_a_cookie_replayed_after_the_session_ended_opens_nothing(rt, app, end):
    """A copy of a signed-in cookie with the details on show: once the member logs out, changes the password,
    or an admin disables the account, resets its password or removes its second factor (a phone lost: a live
    session must not be the one to set up the next one), the copy opens no page, shows no details and does
    nothing."""
    create_staff(rt)
    create_staff(rt, username="kanri", role="admin")
    reference = make_request(rt)
    client, admin = app.test_client(), app.test_client()
    login(client)
    login(admin, "kanri")
    assert reveal(client, reference).status_code == 302 and _shows_details(client, reference)
    thief = _copy(client, app)
    assert _shows_details(thief, reference)          # a live session's copy is the session (as it should be)
    end(rt, client, admin)
    for path in ("/staff/", f"/staff/bookings/{reference}", "/staff/export"):
        assert thief.get(path).status_code == 302, path
    token = csrf(thief)
    assert thief.post(f"/staff/bookings/{reference}/confirm", data={"csrf_token": token}).status_code == 302
    assert thief.post(f"/staff/bookings/{reference}/reveal", data={"csrf_token": token}).status_code == 302
    assert booking(rt, reference).status == "requested"
    assert not _shows_details(thief, reference)
    with rt.db.reading() as s:
        assert s.scalar(select(func.count()).where(AuditEntry.action == "confirm")) == 0


@pytest.mark.parametrize("op", ["reset_password", "reset_totp"])
def test_an_admin_resetting_their_own_credentials_stays_signed_in_in_that_browser_only(rt, app, op):
    """As with a password changed on the account page: every other session of the account ends, the browser
    that did it gets a new one."""
    create_staff(rt, username="kanri", role="admin")
    admin, elsewhere = app.test_client(), app.test_client()
    login(admin, "kanri")
    login(elsewhere, "kanri")
    with rt.db.transaction() as s:
        s.get(StaffUser, _user_id(rt, "kanri")).totp_secret = auth.seal_totp_secret(rt.config,
                                                                                   auth.new_totp_secret())
    done = post(admin, f"/staff/users/{_user_id(rt, 'kanri')}/{op}", password=NEW_PASSWORD)
    assert done.status_code == 302 and "error" not in done.headers["Location"]
    assert admin.get("/staff/users").status_code == 200
    assert elsewhere.get("/staff/").status_code == 302
    with rt.db.reading() as s:
        assert s.scalar(select(func.count()).select_from(StaffSession)) == 1


@pytest.mark.parametrize("op,then", [
    ("deactivate", "「再開」するまでログインできません。"),
    ("reset_password", "新しいパスワードをご本人にお伝えください。"),
    ("reset_totp", "次からはパスワードだけでログインできます。アカウントの画面で二段階認証を設定し直すよう、ご本人にお伝えください。"),
])
def test_the_admin_is_told_the_member_was_signed_out_everywhere(rt, app, op, then):
    """停止, a password reset and 二段階認証を解除 end every session of the member's account (a copied cookie's
    too): the flash says so, so that the admin can tell the member why the dashboard asked them to log in."""
    create_staff(rt)
    create_staff(rt, username="kanri", role="admin")
    admin = app.test_client()
    login(admin, "kanri")
    with rt.db.transaction() as s:
        s.get(StaffUser, _user_id(rt, "tanaka")).totp_secret = auth.seal_totp_secret(rt.config,
                                                                                    auth.new_totp_secret())
    assert post(admin, f"/staff/users/{_user_id(rt, 'tanaka')}/{op}", password=NEW_PASSWORD).status_code == 302
    page = admin.get("/staff/users").get_data(as_text=True)
    assert "（アカウント: tanaka）tanaka は、ログインしていたすべての端末（ブラウザ）でログアウトしました。" + then in page


def test_what_removing_a_second_factor_does_says_the_member_is_signed_out(rt, app):
    """二段階認証を解除 opens what it does before it is done: that includes the logout, as 停止's does."""
    create_staff(rt)
    create_staff(rt, username="kanri", role="admin")
    with rt.db.transaction() as s:
        s.get(StaffUser, _user_id(rt, "tanaka")).totp_secret = auth.seal_totp_secret(rt.config,
                                                                                    auth.new_totp_secret())
    admin = app.test_client()
    login(admin, "kanri")
    told = admin.get("/staff/users").get_data(as_text=True).split(f'id="told-reset_totp-{_user_id(rt, "tanaka")}">')[1]
    assert told.split("</p>")[0].startswith("解除すると、tanaka はすぐにログアウトし、")


@pytest.mark.parametrize("op", ["reset_password", "reset_totp"])
def test_an_admin_resetting_their_own_credentials_is_told_this_browser_stays_signed_in(rt, app, op):
    create_staff(rt, username="kanri", role="admin")
    admin = app.test_client()
    login(admin, "kanri")
    assert post(admin, f"/staff/users/{_user_id(rt, 'kanri')}/{op}", password=NEW_PASSWORD).status_code == 302
    page = admin.get("/staff/users").get_data(as_text=True)
    assert "（アカウント: kanri）ほかの端末（ブラウザ）でのログインは、すべて終了しました。この画面はログインしたままです。" in page
    assert "kanri は、ログインしていたすべての端末" not in page


def test_a_member_changing_their_password_is_told_their_other_logins_ended(rt, app, staff):
    _change_password(rt, staff, None)
    page = staff.get("/staff/account").get_data(as_text=True)
    assert "パスワードを変更しました。ほかの端末（ブラウザ）でのログインは、すべて終了しました。この画面はログインしたままです。" in page


def test_the_reveal_is_held_on_the_server_so_hiding_it_hides_it_from_every_copy(rt, app, staff):
    """個人情報を隠す ends the reveal for the session, not only in the browser that pressed it: a copy of the
    cookie taken while the details showed (the signed cookie used to carry the grant) shows them no more."""
    reference = make_request(rt)
    reveal(staff, reference)
    thief = _copy(staff, app)
    hidden = post(staff, f"/staff/bookings/{reference}/conceal")
    # Back where the keyboard was, as after 個人情報を表示 (not the top of the page).
    assert hidden.status_code == 302 and hidden.headers["Location"].endswith("#details-h")
    assert not _shows_details(staff, reference)
    assert not _shows_details(thief, reference)
    assert _grants(rt) == 0


def test_a_reveal_ends_with_the_login_it_was_made_in(rt, app, staff):
    """The reveal is the session's: a password change (which ends every session and opens a new one in the
    browser that changed it) or a new login hides the details again, and the next look is a new audit entry."""
    reference = make_request(rt)
    reveal(staff, reference)
    _change_password(rt, staff, None)
    assert staff.get("/staff/").status_code == 200
    assert not _shows_details(staff, reference)
    reveal(staff, reference)
    assert _shows_details(staff, reference)
    login(staff, password=NEW_PASSWORD)
    assert not _shows_details(staff, reference)
    with rt.db.reading() as s:
        assert s.scalar(select(func.count()).where(AuditEntry.action == "view_details")) == 2


@pytest.mark.parametrize("idle", [True, False])
def test_a_session_that_timed_out_takes_its_reveals_with_it(rt, staff, idle):
    reference = make_request(rt)
    reveal(staff, reference)
    assert _grants(rt) == 1
    if idle:
        rt.clock.advance(minutes=auth.IDLE_TIMEOUT.total_seconds() / 60 + 1)
    else:   # busy all day: the absolute limit still ends it
        with rt.db.transaction() as s:
            row = s.scalars(select(StaffSession)).one()
            row.created_at -= auth.MAX_SESSION + timedelta(minutes=1)
    assert staff.get(f"/staff/bookings/{reference}").status_code == 302
    assert _grants(rt) == 0
    login(staff)
    assert not _shows_details(staff, reference)


def test_a_reveal_in_one_session_shows_nothing_in_another_of_the_same_account(rt, app, staff):
    """The same member signed in on two PCs: what one revealed is not on show on the other."""
    reference = make_request(rt)
    other = app.test_client()
    login(other)
    reveal(staff, reference)
    assert _shows_details(staff, reference) and not _shows_details(other, reference)


def test_a_session_ended_before_its_reveal_was_written_gets_none_and_no_error(rt, staff):
    """Logged out in another tab at the moment 「個人情報を表示」 was pressed: no grant to a session that is
    gone (the grant's key names a live session), and no failing page."""
    reference = make_request(rt)
    with rt.db.transaction() as s:
        assert not reveals.grant(s, "a token of no session", booking(rt, reference).id, rt.clock.now(),
                                 rt.clock.now() + timedelta(minutes=5))
    assert _grants(rt) == 0


def test_ended_reveals_are_purged_with_the_housekeeping(rt, staff):
    reference = make_request(rt)
    reveal(staff, reference)
    rt.clock.advance(minutes=6)
    with rt.db.transaction() as s:
        jobs.housekeeping(s, rt.clock.now())
    assert _grants(rt) == 0


def test_a_booking_purged_while_revealed_takes_its_reveal_with_it(rt, staff):
    reference = make_request(rt)
    reveal(staff, reference)
    row = booking(rt, reference)
    with rt.db.transaction() as s:   # as the retention purge deletes a closed request
        s.execute(update(AuditEntry).where(AuditEntry.booking_id == row.id).values(booking_id=None))
        for table in (StaffNotice, SlotClaim):
            s.execute(delete(table).where(table.booking_id == row.id))
        s.execute(delete(Booking).where(Booking.id == row.id))
    assert _grants(rt) == 0


# -- the audit log ----------------------------------------------------------------------------------

def test_a_reveal_is_logged_with_who_when_from_where_and_which_booking_never_the_data(rt, staff):
    reference = make_request(rt)
    post(staff, f"/staff/bookings/{reference}/note", note="電話 090-9999-0000", note_seen=personal.note_digest(""))
    reveal(staff, reference)
    with rt.db.reading() as s:
        [entry] = s.scalars(select(AuditEntry).where(AuditEntry.action == "view_details")).all()
        assert (entry.actor, entry.user_id, entry.office_id) == ("tanaka", _user_id(rt, "tanaka"), "sakata")
        assert entry.at == rt.clock.now() and entry.ip == "127.0.0.1"
        assert (entry.reference, entry.booking_id) == (reference, booking(rt, reference).id)
        assert entry.detail == {} and entry.note is None
        written = repr([(e.detail, e.note) for e in s.scalars(select(AuditEntry))])
    for value in [*DETAILS["sakata"].values(), "090-9999-0000"]:
        assert str(value) not in written


# -- CSRF on every POST route -----------------------------------------------------------------------

def _staff_post_routes(app) -> list:
    return sorted((r for r in app.url_map.iter_rules() if r.rule.startswith("/staff") and "POST" in r.methods),
                  key=lambda r: r.rule)


def test_every_post_route_under_staff_refuses_a_missing_or_forged_csrf_token(rt, app):
    """Each POST route the app has under /staff, taken from its url_map (a route added later is in the list
    without anyone remembering to add it), sent by a signed-in admin without the session's token or with
    another's: 400, and nothing is done or recorded. A route whose arguments this test has no value for fails
    the test, to be given one."""
    create_staff(rt, role="admin", username="kanri")
    victim_id = create_staff(rt)
    reference = make_request(rt)
    admin, other = app.test_client(), app.test_client()
    login(admin, "kanri")
    post(admin, "/staff/blocks", day="2026-12-14")
    with rt.db.reading() as s:
        block_id = s.scalar(select(SlotBlock.id))
        entries = s.scalar(select(func.count()).select_from(AuditEntry))
    samples = {"reference": reference, "action": "confirm", "user_id": victim_id, "op": "deactivate",
               "block_id": block_id}
    forms = {"username": "tanaka", "password": PASSWORD, "new": NEW_PASSWORD, "current": PASSWORD, "step": "start",
             "day": "2026-12-21", "from": "2026-12-01", "to": "2026-12-31", "contents": "details",
             "allowlist": "10.0.0.0/8", "seeker_number": DETAILS["sakata"]["seeker_number"], "source": "phone",
             "slot": SAKATA_MONDAY.isoformat(), "name": NAME, "role": "admin"}
    rules = _staff_post_routes(app)
    assert len(rules) >= 15, [r.rule for r in rules]
    for rule in rules:
        missing = set(rule.arguments) - set(samples)
        assert not missing, f"{rule.rule}: give this test a value for {missing}"
        path = rule.build({k: samples[k] for k in rule.arguments}, append_unknown=False)[1]
        for token in (None, "", "forged", csrf(other)):
            data = dict(forms) if token is None else {**forms, "csrf_token": token}
            answer = admin.post(path, data=data)
            assert answer.status_code == 400, (path, token, answer.status_code)
            assert "Set-Cookie" not in answer.headers or "staff_token" not in answer.headers["Set-Cookie"]
    assert admin.get("/staff/").status_code == 200            # still signed in: logout refused too
    with rt.db.reading() as s:
        assert s.scalar(select(func.count()).select_from(AuditEntry)) == entries
        assert s.get(StaffUser, victim_id).active and s.scalar(select(func.count()).select_from(SlotBlock)) == 1
    assert booking(rt, reference).status == "requested" and _grants(rt) == 0


def test_no_get_route_under_staff_changes_anything_or_reveals(rt, app):
    """Every GET route under /staff (from the url_map), opened by a signed-in admin with the parameters a forged
    link could carry: nothing is recorded, revealed, exported or changed (a prefetch, a link in a mail)."""
    create_staff(rt, role="admin", username="kanri")
    reference = make_request(rt)
    admin = app.test_client()
    login(admin, "kanri")
    with rt.db.reading() as s:
        entries = s.scalar(select(func.count()).select_from(AuditEntry))
    query = {"from": "2026-12-01", "to": "2026-12-31", "contents": "details", "then": "details-h",
             "csrf_token": csrf(admin), "step": "start"}
    rules = sorted((r for r in app.url_map.iter_rules() if r.rule.startswith("/staff") and "GET" in r.methods),
                   key=lambda r: r.rule)
    for rule in rules:
        missing = set(rule.arguments) - {"reference"}
        assert not missing, f"{rule.rule}: give this test a value for {missing}"
        path = rule.build({"reference": reference} if rule.arguments else {}, append_unknown=False)[1]
        answer = admin.get(path, query_string=query)
        assert answer.status_code in (200, 302, 404, 405), (path, answer.status_code)
        assert NAME not in answer.get_data(as_text=True), path
        assert answer.mimetype != "text/csv", path
    with rt.db.reading() as s:
        assert s.scalar(select(func.count()).select_from(AuditEntry)) == entries
    assert booking(rt, reference).status == "requested" and _grants(rt) == 0


# -- the CSV export ---------------------------------------------------------------------------------

def test_the_export_needs_a_session_of_the_office_and_is_logged_without_its_data(rt, app):
    reference = make_request(rt)
    form = {"from": "2026-12-01", "to": "2026-12-31", "contents": "details", "encoding": "utf8"}
    stranger = app.test_client()
    answer = stranger.post("/staff/export", data={**form, "csrf_token": csrf(stranger)})
    assert answer.status_code == 302 and "/staff/login" in answer.headers["Location"]
    assert stranger.get("/staff/export?from=2026-12-01&to=2026-12-31&contents=details").status_code == 302
    create_staff(rt, office="otaru", username="otaru-staff")
    otaru = app.test_client()
    login(otaru, "otaru-staff")
    body = post(otaru, "/staff/export", **form).get_data(as_text=True)
    assert reference not in body and NAME not in body
    create_staff(rt)
    sakata = app.test_client()
    login(sakata)
    exported = post(sakata, "/staff/export", **form)
    assert exported.status_code == 200 and NAME in exported.get_data(as_text=True)
    assert "no-store" in exported.headers["Cache-Control"]
    with rt.db.reading() as s:
        entries = s.scalars(select(AuditEntry).where(AuditEntry.action == "export").order_by(AuditEntry.id)).all()
    assert [(e.actor, e.office_id, e.detail["rows"], e.detail["contents"]) for e in entries] == \
        [("otaru-staff", "otaru", 0, "details"), ("tanaka", "sakata", 1, "details")]
    assert all(NAME not in repr(e.detail) and e.note is None for e in entries)


# -- caching ----------------------------------------------------------------------------------------

def test_every_response_showing_personal_data_is_not_stored(rt, app, staff):
    """The booking page revealed, a note saved over another's (409, shown), the search's results, a phone
    booking refused with what was typed (400), the CSV file: `Cache-Control: no-store`, so no cache and no
    browser's back-button copy keeps them once the session ends."""
    reference = make_request(rt)
    post(staff, f"/staff/bookings/{reference}/note", note="最初のメモ", note_seen=personal.note_digest(""))
    reveal(staff, reference)
    answers = {
        "booking": staff.get(f"/staff/bookings/{reference}"),
        "note conflict": post(staff, f"/staff/bookings/{reference}/note", note="別のメモ", note_seen="stale"),
        "search": post(staff, "/staff/search", seeker_number=DETAILS["sakata"]["seeker_number"]),
        "new booking refused": post(staff, "/staff/bookings/new", name=NAME, phone="090-1111-2222", source="phone"),
        "export": post(staff, "/staff/export", **{"from": "2026-12-01", "to": "2026-12-31", "contents": "details"}),
    }
    for name, answer in answers.items():
        assert answer.status_code in (200, 400, 409), (name, answer.status_code)
        assert NAME in answer.get_data(as_text=True) or reference in answer.get_data(as_text=True), name
        assert "no-store" in answer.headers.get("Cache-Control", ""), name


def test_a_reveal_pressed_twice_at_once_shows_the_details_and_is_logged_once(rt, app, staff, monkeypatch):
    """「個人情報を表示」 double-clicked, or pressed in two tabs of one browser at the same moment: both pages show
    the details, one 個人情報の閲覧 is recorded, and neither answer is an error (the session's grant is written
    once: the second waits for the first and finds it)."""
    import threading
    import time

    from bot.staff.views import details

    reference = make_request(rt)
    real_holds = details._holds_personal

    def slow_holds(*args):       # both reveals are past their check for a grant at the same time
        time.sleep(0.5)
        return real_holds(*args)

    monkeypatch.setattr(details, "_holds_personal", slow_holds)
    app.config["PROPAGATE_EXCEPTIONS"] = False   # as in production: a failed page is answered, not raised
    tabs, barrier, statuses = [staff, _copy(staff, app)], threading.Barrier(2), []
    token = csrf(staff)

    def press(tab):
        barrier.wait(timeout=10)
        statuses.append(tab.post(f"/staff/bookings/{reference}/reveal", data={"csrf_token": token}).status_code)

    threads = [threading.Thread(target=press, args=(tab,)) for tab in tabs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert statuses == [302, 302]
    assert all(_shows_details(tab, reference) for tab in tabs)
    with rt.db.reading() as s:
        assert s.scalar(select(func.count()).where(AuditEntry.action == "view_details")) == 1
