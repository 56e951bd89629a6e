"""Reliability at the edges the random runs reach only by luck: the same thing done twice at one moment, by
two processes on one database (SQLite and PostgreSQL), and clock edges to the second."""
from __future__ import annotations

import threading

import pytest
from sqlalchemy import select, text

from bot.models import Booking
from tests.formflow import Page, hold_directly, path_of, valid_answers
from tests.staffkit import fast_password_hashing  # noqa: F401 - autouse fixture


def _at_once(*calls):
    """Run each call in its own thread, released together; their results in order."""
    barrier, results = threading.Barrier(len(calls)), [None] * len(calls)

    def run(i, call):
        barrier.wait()
        results[i] = call()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def _same_browser(client, app):
    """Another tab of the same browser, served by another process: a client with the same cookies."""
    tab = app.test_client()
    for cookie in client._cookies.values():
        tab.set_cookie(cookie.key, cookie.value, domain=cookie.domain, path=cookie.path)
    return tab


def test_the_confirmation_sent_from_two_tabs_at_once_makes_one_request(make_app):
    """確定する tapped in two tabs at one moment, each post served by another process: one request, and both
    tabs show its 受付番号 (or, on PostgreSQL when the first held the conversation past the second's lock wait,
    the kind page that sends the same again, which then shows it)."""
    apps = [make_app() for _ in range(2)]
    rt = apps[0].extensions["madoguchi"]
    _, url = hold_directly(rt, "sakata")
    first = apps[0].test_client()
    confirmation = Page.get(first, url).submit(first, valid_answers(rt.offices["sakata"]))
    assert confirmation.status == 200 and "入力内容の確認" in confirmation.html
    second = _same_browser(first, apps[1])
    pages = _at_once(lambda: confirmation.submit(first), lambda: confirmation.submit(second))
    with rt.db.reading() as s:
        [booking] = s.scalars(select(Booking)).all()
        reference = booking.reference
    for page, tab in zip(pages, (first, second)):
        if page.status == 503:          # the lock wait ran out: the page's one button sends it again
            page = page.submit(tab)
        assert page.status == 200 and f"受付番号: {reference}" in page.html, page.html
    assert Page(first.get(path_of(url) + "/done")).status == 200


def test_approved_in_the_group_and_on_the_dashboard_at_once_decides_once(make_app, fake_line):
    """承認 tapped on the group's card and on the dashboard at one moment, each served by another process: one
    decision, one audit entry, the user told once; the group's tap is answered, the dashboard shows the
    booking confirmed (never an error page)."""
    from bot.staff.models import AuditEntry
    from tests.lineuser import StaffGroup, new_group_id
    from tests.staffkit import booking, create_staff, login, make_request, outbox_rows, post

    group_id = new_group_id()
    apps = [make_app(env={"LINE_STAFF_GROUP_ID_SAKATA": group_id}) for _ in range(2)]
    rt = apps[0].extensions["madoguchi"]
    reference = make_request(rt, user_id="U" + "c" * 32)
    group = StaffGroup(apps[0].test_client(), "sakata", channel_secret=rt.config.channel_secret("sakata"),
                       group_id=group_id, fake=fake_line, clock=rt.clock)
    create_staff(rt)
    dashboard = apps[1].test_client()
    assert login(dashboard).status_code == 302
    tap, press = _at_once(lambda: group.taps(f"a=staff&d=confirm&r={reference}&o=sakata"),
                          lambda: post(dashboard, f"/staff/bookings/{reference}/confirm"))
    assert tap.status_code == 200 and press.status_code in (302, 503), press.get_data(as_text=True)
    # On a machine so loaded that one side held the booking's row past the other's lock wait (250 ms), that
    # side changed nothing and said so (the group: tap again; the dashboard: its own 503 page); done again,
    # it is told the request was decided already. Never a second decision.
    if press.status_code == 503:
        press = post(dashboard, f"/staff/bookings/{reference}/confirm")
        assert press.status_code == 302
    assert booking(rt, reference).status == "confirmed"
    with rt.db.reading() as s:
        assert len(s.scalars(select(AuditEntry).where(AuditEntry.action == "confirm")).all()) == 1
    assert len(outbox_rows(rt, purpose="outcome_confirmed")) == 1
    assert len(fake_line.texts_to(group_id)) == 1
    page = dashboard.get(press.headers["Location"], follow_redirects=True)
    assert page.status_code == 200


def test_postgresql_the_form_sent_as_the_database_ends_its_connection_keeps_what_was_typed(app, rt, database_url,
                                                                                           monkeypatch):
    """確定する sent and, in the middle of its transaction, the server process of its connection ends (a
    database restart, pg_terminate_backend): the kind page (503) with the one button that sends what was typed
    again; sent, one request. The dead connection is not handed to the next page."""
    if rt.db.sqlite:
        pytest.skip("PostgreSQL only")
    from bot.services import requests as requestsvc
    from tests.test_db import _drop_app_connections

    app.config["PROPAGATE_EXCEPTIONS"] = False   # as in production: a failing page is answered, not raised
    browser = app.test_client()
    _, url = hold_directly(rt, "sakata")
    confirmation = Page.get(browser, url).submit(browser, valid_answers(rt.offices["sakata"]))
    real_submit = requestsvc.submit

    def submit_as_the_server_goes(session, *args, **kwargs):
        session.execute(text("SELECT 1"))            # the transaction has begun on its connection
        assert _drop_app_connections(database_url) >= 1
        return real_submit(session, *args, **kwargs)

    with monkeypatch.context() as m:
        m.setattr(requestsvc, "submit", submit_as_the_server_goes)
        failed = confirmation.submit(browser)
    assert failed.status == 503 and "もう一度送信する" in failed.html, failed.html
    assert failed.form.fields["name"] == valid_answers(rt.offices["sakata"])["name"]
    with rt.db.reading() as s:
        assert s.scalars(select(Booking)).all() == []
    done = failed.submit(browser)
    assert done.status == 200 and "受付番号: " in done.html, done.html
    with rt.db.reading() as s:
        assert len(s.scalars(select(Booking)).all()) == 1


def test_postgresql_a_dashboard_approval_behind_a_held_booking_row_says_so_and_works_when_pressed_again(
        app, rt, fake_line):
    """承認 pressed on the dashboard while another transaction holds the booking's row (the group's tap of the
    same moment, slowed down) past the 250 ms lock wait: the dashboard's own page says it could not answer (503,
    never a traceback), nothing is decided; pressed again once the row is free, decided once."""
    if rt.db.sqlite:
        pytest.skip("PostgreSQL only")
    from bot.staff.models import AuditEntry
    from tests.staffkit import booking, create_staff, login, make_request, outbox_rows, post

    app.config["PROPAGATE_EXCEPTIONS"] = False
    reference = make_request(rt, user_id="U" + "d" * 32)
    create_staff(rt)
    dashboard = app.test_client()
    assert login(dashboard).status_code == 302
    with rt.db.engine.connect() as other:
        other.execute(text("SELECT id FROM bookings WHERE reference = :r FOR UPDATE"), {"r": reference})
        press = post(dashboard, f"/staff/bookings/{reference}/confirm")
        other.rollback()
    html = press.get_data(as_text=True)
    assert press.status_code == 503 and "一時的に応答できませんでした" in html, (press.status_code, html)
    assert booking(rt, reference).status == "requested"
    assert post(dashboard, f"/staff/bookings/{reference}/confirm").status_code == 302
    assert booking(rt, reference).status == "confirmed"
    with rt.db.reading() as s:
        assert len(s.scalars(select(AuditEntry).where(AuditEntry.action == "confirm")).all()) == 1
    assert len(outbox_rows(rt, purpose="outcome_confirmed")) == 1


NOT_SENT = {"ja": "お申込みに反映されていません", "en": "have not been sent", "easy": "もうしこみに 入って いません"}


@pytest.mark.parametrize("language", ["ja", "en", "easy"])
def test_details_changed_in_another_tab_after_the_request_was_made_are_said_not_to_be_sent(app, rt, language):
    """Two tabs of the form: one sends the request; the other, its phone number corrected, is sent after it.
    One request, with what the first sent; the second tab shows that request and says its change was not
    sent (and how to correct it), rather than 「受付けました」 over a change that went nowhere. The same page
    sent twice says nothing of the kind."""
    from bot.crypto import for_config

    from tests.formflow import hold_first_free

    browser = app.test_client()
    url = hold_first_free(rt, "sakata", language)
    answers = valid_answers(rt.offices["sakata"])
    page = Page.get(browser, url)
    first = page.submit(browser, answers)
    corrected = page.submit(browser, {**answers, "phone": "080-9999-0000"})
    done = first.submit(browser)
    assert done.status == 200 and "受付番号: " in done.html
    assert NOT_SENT[language] not in done.html
    again = first.submit(browser)                  # the same page sent twice: nothing to say
    assert again.status == 200 and NOT_SENT[language] not in again.html
    late = corrected.submit(browser)
    with rt.db.reading() as s:
        [booking] = s.scalars(select(Booking)).all()
        details = for_config(rt.config).decrypt(booking.details)
    assert "9999" not in details["phone"]
    assert late.status == 200 and f"受付番号: {booking.reference}" in late.html
    office_name = rt.offices["sakata"].localized(language).name
    assert NOT_SENT[language] in late.html and office_name in late.html, late.html
    assert "080-9999-0000" not in late.html


def test_withdrawn_in_the_chat_as_staff_approve_on_the_dashboard_ends_one_way_and_says_it(make_app, fake_line):
    """The user confirms 取り下げる while staff press 承認 on the dashboard, each in another process at one moment:
    one of the two happens. Withdrawn: no confirmation is ever pushed, the dashboard says it was not approved.
    Approved: the chat does not say 取り下げました, and the user is told once that the booking is confirmed."""
    from bot.models import OutboxMessage
    from tests.lineuser import LineUser
    from tests.staffkit import booking, create_staff, login, make_request, post, postback_value, run_worker

    apps = [make_app() for _ in range(2)]
    rt = apps[0].extensions["madoguchi"]
    user = LineUser(apps[0].test_client(), "sakata", channel_secret=rt.config.channel_secret("sakata"),
                    fake=fake_line, clock=rt.clock)
    reference = make_request(rt, user_id=user.user_id)
    create_staff(rt)
    dashboard = apps[1].test_client()
    assert login(dashboard).status_code == 302
    user.says("予約確認")
    user.taps(postback_value(user.messages(), "取り下げる"))
    withdraw = postback_value(user.messages()[-1:], "取り下げる")      # the chat asks first: this is the yes
    before = len(fake_line.texts_to(user.user_id))
    tap, press = _at_once(lambda: user.taps(withdraw),
                          lambda: post(dashboard, f"/staff/bookings/{reference}/confirm"))
    assert tap.status_code == 200 and press.status_code in (302, 503)
    status = booking(rt, reference).status
    assert status in ("withdrawn", "confirmed")
    answer = "\n".join(fake_line.texts_to(user.user_id)[before:])
    run_worker(rt)
    after = "\n".join(fake_line.texts_to(user.user_id)[before:])
    with rt.db.reading() as s:
        queued = [r.purpose for r in s.scalars(select(OutboxMessage))]
    if status == "withdrawn":
        assert "取り下げました" in answer
        assert "予約が確定しました" not in after and "outcome_confirmed" not in queued
    else:
        assert "取り下げました" not in answer, answer
        assert after.count("予約が確定しました") == 1, after


@pytest.mark.parametrize("office_id", ["sakata", "otaru"])
@pytest.mark.parametrize(("before_deadline", "made"), [(1, True), (0, False)])
def test_the_form_sent_at_the_deadlines_minute_is_taken_up_to_it_and_not_at_it(make_app, office_id,
                                                                                 before_deadline, made):
    """The page says 「締切は 12/4(金) 17:00 です」: sent at 16:59:59 the request is made; at 17:00:00 it is not,
    and the page says the deadline passed (what was typed kept on it), never a request staff must refuse."""
    from datetime import timedelta

    from bot.services import slots as slotsvc
    from tests.formflow import held_slot
    from tests.test_form import JUST_BEFORE

    app = make_app()
    rt, browser = app.extensions["madoguchi"], app.test_client()
    office = rt.offices[office_id]
    rt.clock.freeze(JUST_BEFORE[office_id])                      # two minutes before the first slot's deadline
    _, url = hold_directly(rt, office_id)
    deadline = slotsvc.booking_deadline(office, held_slot(rt, url))
    assert deadline - rt.clock.now() == timedelta(minutes=2)
    confirmation = Page.get(browser, url).submit(browser, valid_answers(office))
    assert confirmation.status == 200 and "入力内容の確認" in confirmation.html
    rt.clock.freeze(deadline - timedelta(seconds=before_deadline))
    sent = confirmation.submit(browser)
    with rt.db.reading() as s:
        requests_made = s.scalars(select(Booking)).all()
    if made:
        assert sent.status == 200 and "受付番号: " in sent.html and len(requests_made) == 1
    else:
        assert sent.status == 410 and "お申込みの締切を過ぎました" in sent.html and requests_made == []
        assert sent.form.fields["name"] == valid_answers(office)["name"]


@pytest.mark.parametrize("order", ["at_once", "form_first", "chat_first"])
def test_the_form_confirmed_as_the_chat_picks_another_slot_ends_one_way(make_app, fake_line, order):
    """確定する in the browser while the chat is sent another slot (typed, as the form step reads it), each in another process at one
    moment: either the request is made (for the first slot; the chat holds nothing) or the chat holds the new
    slot (the form page says so and keeps what was typed for it) — never a request and a hold, never two."""
    from bot.models import SlotHold
    from tests.formflow import form_link, walk_to_slots
    from tests.lineuser import LineUser

    apps = [make_app() for _ in range(2)]
    rt = apps[0].extensions["madoguchi"]
    user = LineUser(apps[0].test_client(), "sakata", channel_secret=rt.config.channel_secret("sakata"),
                    fake=fake_line, clock=rt.clock)
    walk_to_slots(user, rt)
    user.says("1")
    url = form_link(fake_line.messages_to(user.user_id))
    browser = apps[1].test_client()
    answers = {**valid_answers(rt.offices["sakata"]), "name": "同時 花子"}
    confirmation = Page.get(browser, url).submit(browser, answers)
    assert confirmation.status == 200
    send, say = (lambda: confirmation.submit(browser)), (lambda: user.says("12/14 14:00"))
    if order == "at_once":
        sent, said = _at_once(send, say)
    elif order == "form_first":
        sent, said = send(), say()
    else:
        said, sent = say(), send()
    assert said.status_code == 200
    with rt.db.reading() as s:
        made = s.scalars(select(Booking)).all()
        held = s.scalars(select(SlotHold)).all()
    assert bool(made) == (order != "chat_first") or order == "at_once", fake_line.texts_to(user.user_id)[-1]
    if made:
        assert len(made) == 1 and held == [], (made, held)
        assert sent.status == 200 and f"受付番号: {made[0].reference}" in sent.html
    else:
        assert len(held) == 1 and sent.status == 410, sent.html
        assert sent.form.fields["name"] == "同時 花子"
