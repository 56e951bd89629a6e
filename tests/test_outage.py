"""The day LINE misbehaves and the database restarts: what the bot promises still holds.

Each test plays one outage the others do not (tests/test_outbox.py, tests/test_faults.py and
tests/test_crash_recovery.py play the rest) through the loopback fake Messaging API's fault injection.
"""
from __future__ import annotations

import logging
import time
from datetime import timedelta
from email.utils import formatdate

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from bot import outbox
from bot.worker import Worker
from bot.models import Booking
from tests.staffkit import fast_password_hashing, staff, user  # noqa: F401 - fixtures
from tests.lineuser import StaffGroup, new_group_id
from tests.staffkit import booking, make_request, post, postback_value
from tests.formflow import Page, hold_directly, valid_answers
from tests.lineuser import LineUser
from tests.test_outbox import ACK_DEADLINE, private_fake, push, row, rows, run_worker, timed, user_on  # noqa: F401
from tests.test_terms_updates import _cli, _followers, _publish

pytestmark = [pytest.mark.usefixtures("fake_line"), pytest.mark.reply_budget]


def _database_down(monkeypatch, db, message: str = "connection refused") -> None:
    """Every new transaction fails as when PostgreSQL refuses connections (restarting)."""
    def down(*args, **kwargs):
        raise OperationalError("SELECT 1", {}, Exception(message))

    for name in ("transaction", "connected", "reading"):
        monkeypatch.setattr(db, name, down)


def test_database_down_and_line_slow_a_batch_is_still_acknowledged_in_time(make_app, private_fake, monkeypatch):
    """Direct apologies (nothing can be queued) share the request's reply budget: one slow call, not one per
    event, so a body of several events is acknowledged within LINE's deadline."""
    app = make_app(line_api_base_url=private_fake.url)
    user = user_on(app, private_fake)
    _database_down(monkeypatch, app.extensions["madoguchi"].db)
    private_fake.set_delay(3)  # slower than the whole reply budget
    events = [user.text_event(word, timestamp=1_000 + n) for n, word in enumerate(["予約", "はい", "はい", "はい"])]
    response, elapsed = timed(lambda: user.send(*events))
    assert response.status_code == 200
    assert len(private_fake.calls_to("/reply")) == 1, "one apology tried within the budget, the others not"
    assert elapsed < ACK_DEADLINE


# -- LINE says when to come back (Retry-After) ------------------------------------------------------------

@pytest.mark.parametrize("status,retry_after", [
    (429, lambda: "120"),                                 # rate limited, in seconds
    (503, lambda: formatdate(time.time() + 120, usegmt=True)),   # down for maintenance, as an HTTP date
], ids=["429-seconds", "503-http-date"])
def test_a_push_waits_as_long_as_line_asked_and_then_arrives_once(rt, fake_line, status, retry_after):
    fake_line.fail_next(status=status, path_contains="/push", headers={"Retry-After": retry_after()})
    row_id = push(rt, "U" + "a" * 32)
    run_worker(rt)
    waiting = row(rt, row_id)
    assert waiting.status == "pending"
    assert waiting.next_attempt_at - rt.clock.now() > timedelta(seconds=100)
    run_worker(rt, 5)   # the usual backoff has passed, LINE's wait has not: LINE is not asked again
    assert len(fake_line.calls_to("/push")) == 1
    run_worker(rt, 120)
    assert row(rt, row_id).status == "sent"
    assert len(fake_line.deliveries("push")) == 1


def test_a_push_refused_429_without_retry_after_is_retried_on_the_usual_schedule(rt, fake_line):
    fake_line.fail_next(status=429, path_contains="/push")
    row_id = push(rt, "U" + "b" * 32)
    run_worker(rt)
    assert row(rt, row_id).next_attempt_at - rt.clock.now() <= timedelta(seconds=2)
    run_worker(rt, 2)
    assert row(rt, row_id).status == "sent" and len(fake_line.deliveries("push")) == 1


def test_a_reply_refused_429_for_longer_than_its_token_lives_goes_once_as_a_push_when_line_allows(
        rt, sakata_user, fake_line):
    fake_line.fail_next(status=429, path_contains="/reply", headers={"Retry-After": "120"})
    response, elapsed = timed(lambda: sakata_user.says("予約"))
    assert response.status_code == 200 and elapsed < ACK_DEADLINE
    (fallback,) = rows(rt)
    assert (fallback.kind, fallback.status) == ("push", "pending")   # the token will be gone by then
    assert fallback.next_attempt_at - rt.clock.now() >= timedelta(seconds=120)
    run_worker(rt, 5)
    assert fake_line.deliveries() == []
    run_worker(rt, 120)
    assert [d.kind for d in fake_line.deliveries()] == ["push"] and len(sakata_user.texts()) == 1


def test_a_terms_multicast_asked_to_wait_long_stops_at_once_and_resumes(app, rt, fake_line, tmp_path):
    _publish(app, tmp_path)
    _followers(rt, 600)
    fake_line.fail_next(1, status=429, path_contains="multicast", headers={"Retry-After": "300"})
    first = _cli(app, "terms", "broadcast", "--office", "sakata", "--mode", "multicast", "--yes")
    assert first.exit_code == 1 and "wait 300 s" in first.output
    assert len(fake_line.calls_to("multicast")) == 1, "LINE asked to wait: not asked again at once"
    assert _cli(app, "terms", "broadcast", "--office", "sakata", "--mode", "multicast", "--yes").exit_code == 0
    recipients = [u for d in fake_line.deliveries("multicast") for u in d.to]
    assert len(recipients) == len(set(recipients)) == 600


# -- the details form while the database restarts ---------------------------------------------------------

def test_a_form_sent_while_the_database_restarts_says_so_kindly_and_sends_again_once(app, rt, monkeypatch, caplog):
    app.config["PROPAGATE_EXCEPTIONS"] = False   # as in production: a failing page is answered, not raised
    browser = app.test_client()
    _, url = hold_directly(rt, "sakata")
    confirmation = Page.get(browser, url).submit(browser, valid_answers(rt.offices["sakata"]))
    with monkeypatch.context() as m:
        _database_down(m, rt.db, message="DETAIL: Key (name)=(山田 太郎) already exists")
        caplog.set_level(logging.INFO)
        failed = confirmation.submit(browser)
    assert failed.status == 503
    assert "もう一度送信する" in failed.html and "Internal Server Error" not in failed.html
    assert "ページを閉じて" not in failed.html
    assert "山田" not in caplog.text and url.rsplit("/", 1)[-1] not in caplog.text, "no value, no link token logged"
    assert "POST /form/<token>/confirm failed: OperationalError" in caplog.text
    done = failed.submit(browser)   # the one button, once the database is back
    assert done.status == 200 and "受付番号: " in done.html
    assert failed.submit(browser).status == 200   # sent once more, still one request
    with rt.db.reading() as s:
        assert len(s.scalars(select(Booking.id)).all()) == 1


def test_a_form_page_opened_while_the_database_restarts_offers_to_open_it_again(app, rt, monkeypatch):
    app.config["PROPAGATE_EXCEPTIONS"] = False
    browser = app.test_client()
    _, url = hold_directly(rt, "sakata")
    with monkeypatch.context() as m:
        _database_down(m, rt.db)
        failed = Page.get(browser, url)
    assert failed.status == 503 and "もう一度開く" in failed.html and failed.forms == []
    assert Page.get(browser, url).status == 200


@pytest.mark.parametrize("fault,times,said", [(400, 1, "LINE refused the call for good (http 400)"),
                                              (503, 4, "LINE did not take the call (http 503)")])
def test_a_terms_multicast_stopped_halfway_says_why_and_resumes_without_sending_twice(app, rt, fake_line, tmp_path,
                                                                                      monkeypatch, fault, times, said):
    from bot.cli import terms as terms_cli

    monkeypatch.setattr(terms_cli.time, "sleep", lambda seconds: None)
    _publish(app, tmp_path)
    _followers(rt, 1200)
    fake_line.fail_next(1, status=500, path_contains="multicast", fail_after_accept=True)  # taken, answered 500
    fake_line.fail_next(times, status=fault, path_contains="multicast")                    # then LINE fails
    first = _cli(app, "terms", "broadcast", "--office", "sakata", "--mode", "multicast", "--yes")
    assert first.exit_code == 1 and said in first.output and "0 of 3 calls sent" in first.output
    again = _cli(app, "terms", "broadcast", "--office", "sakata", "--mode", "multicast", "--yes")
    assert again.exit_code == 0, again.output
    recipients = [u for d in fake_line.deliveries("multicast") for u in d.to]
    assert len(recipients) == len(set(recipients)) == 1200


# -- LINE down for longer than a row's tries --------------------------------------------------------------

def test_a_push_queued_as_line_goes_down_for_hours_is_not_given_up_and_arrives_once_it_is_back(rt, fake_line):
    fake_line.fail_next(n=outbox.MAX_ATTEMPTS + 10, status=503, path_contains="/push")
    row_id = push(rt, "U" + "c" * 32)
    for _ in range(outbox.MAX_ATTEMPTS + 5):    # about two and a half hours of LINE answering 503 to everything
        run_worker(rt, 300)
    waiting = row(rt, row_id)
    assert waiting.status == "pending" and waiting.attempts > outbox.MAX_ATTEMPTS
    fake_line.clear_faults()                    # LINE is back
    run_worker(rt, 300)
    assert row(rt, row_id).status == "sent" and len(fake_line.deliveries("push")) == 1


def test_the_booking_page_says_the_confirmation_has_not_arrived_while_line_is_down(rt, staff, fake_line, user):
    """Staff who open the booking while LINE refuses pushes learn that the user has not been told yet."""
    reference = make_request(rt, user_id=user.user_id)
    run_worker(rt)
    post(staff, f"/staff/bookings/{reference}/confirm")
    fake_line.fail_next(n=3, status=503, path_contains="/push")
    run_worker(rt)
    page = staff.get(f"/staff/bookings/{reference}").get_data(as_text=True)
    assert 'id="undelivered"' in page
    notice = page.split('id="undelivered"')[1].split("</div>")[0]
    assert "予約確定のお知らせ（利用者へ）" in notice and "再送を待っています" in notice
    fake_line.clear_faults()
    run_worker(rt, 300)
    assert 'id="undelivered"' not in staff.get(f"/staff/bookings/{reference}").get_data(as_text=True)


# -- the database gone between an event's commit and its reply ---------------------------------------------

def test_replies_of_a_batch_still_go_when_the_database_goes_away_after_the_commit(rt, user_factory, fake_line,
                                                                                 monkeypatch):
    """LINE batches events of several chats in one body. The database restarting after their commits must not
    keep the second chat's reply from going: each reply is sent; what cannot be recorded reads `unknown`."""
    from bot.outbox import Sender

    first, second = user_factory("sakata"), user_factory("sakata")
    def database_gone(self, row_id):
        raise OperationalError("UPDATE outbox", {}, Exception("terminating connection"))

    monkeypatch.setattr(Sender, "_mark_reply_sent", database_gone)
    body = first.body([first.text_event("予約"), second.text_event("予約")])
    assert first.post(body).status_code == 200
    assert len(fake_line.texts_to(first.user_id)) == 1 and len(fake_line.texts_to(second.user_id)) == 1
    monkeypatch.undo()
    run_worker(rt, 120)   # after the lease: recorded as of unknown fate, never sent again
    assert [r.status for r in rows(rt)] == ["unknown", "unknown"]
    assert len(fake_line.deliveries("reply")) == 2


def test_a_dashboard_page_that_fails_while_the_database_restarts_says_so_in_japanese(app, rt, staff, user,
                                                                                    monkeypatch):
    app.config["PROPAGATE_EXCEPTIONS"] = False
    reference = make_request(rt, user_id=user.user_id)
    with monkeypatch.context() as m:
        _database_down(m, rt.db)
        page = staff.get(f"/staff/bookings/{reference}")
    assert page.status_code == 503
    html = page.get_data(as_text=True)
    assert "一時的に応答できませんでした" in html and "Internal Server Error" not in html
    assert staff.get(f"/staff/bookings/{reference}").status_code == 200   # and once it is back, as before


def test_a_push_is_not_given_up_while_line_refuses_pushes_but_takes_replies(rt, sakata_user, fake_line):
    """A partial outage: the push endpoint fails for hours while replies go through."""
    fake_line.fail_next(n=outbox.MAX_ATTEMPTS + 10, status=500, path_contains="/push")
    row_id = push(rt, "U" + "d" * 32)
    for _ in range(outbox.MAX_ATTEMPTS + 5):
        rt.clock.advance(seconds=300)
        sakata_user.says("ヘルプ")    # answered by a reply, which LINE takes
        run_worker(rt)
    assert row(rt, row_id).status == "pending"
    fake_line.clear_faults()
    run_worker(rt, 300)
    assert row(rt, row_id).status == "sent" and len(fake_line.deliveries("push")) == 1


# -- LINE slow or failing for a whole batch ----------------------------------------------------------------

@pytest.mark.parametrize("fault", ["timeout", "reset", 429])
def test_once_line_fails_a_call_the_worker_does_not_try_the_rest_of_the_office_in_that_pass(make_app, fake_line,
                                                                                           monkeypatch, fault):
    """Slow past the client's timeout, gone, or rate-limiting: one call tells, and the pass does not wait out a
    timeout per row (the jobs wait behind it). The rows not tried keep their place and count no try. (A 5xx
    answer comes at once and may concern one row: tests/test_worker.py, other users are not held up.)"""
    rt = make_app(line_timeout_seconds=0.2).extensions["madoguchi"]
    monkeypatch.setattr(fake_line, "timeout_seconds", 0.5)
    ids = [push(rt, "U" + f"{n:032x}") for n in range(1, 6)]
    fake_line.fail_next(n=1, status=fault, path_contains="/push")
    run_worker(rt)
    assert len(fake_line.calls_to("/push")) == 1
    assert [(row(rt, i).status, row(rt, i).attempts) for i in ids[1:]] == [("pending", 0)] * 4
    run_worker(rt, 5)
    assert [row(rt, i).status for i in ids] == ["sent"] * 5
    assert len(fake_line.deliveries("push")) == 5 and len(fake_line.calls_to("/push")) == 6


def test_a_channel_rate_limited_with_retry_after_is_not_called_again_before_then(rt, fake_line):
    """LINE rate-limits the channel and says when to come back (Retry-After: 60). Not only the row tried waits:
    the office's other rows do too, rather than one of them being tried (and refused) each second in turn."""
    ids = [push(rt, "U" + f"{n:032x}") for n in range(1, 21)]
    fake_line.fail_next(n=10_000, status=429, path_contains="/push", headers={"Retry-After": "60"})
    for _ in range(59):
        run_worker(rt, 1)
    assert len(fake_line.calls_to("/push")) == 1
    fake_line.clear_faults()
    run_worker(rt, 2)
    while any(row(rt, i).status != "sent" for i in ids) and len(fake_line.calls_to("/push")) < 40:
        run_worker(rt, 1)
    assert [row(rt, i).status for i in ids] == ["sent"] * 20
    assert len(fake_line.deliveries("push")) == 20 and len(fake_line.calls_to("/push")) == 21


# -- a process started while the database restarts ---------------------------------------------------------

class _PausedClock:
    """`time` for bot.channels: sleeping moves the clock, nothing waits."""

    def __init__(self):
        self.now, self.slept = 0.0, []

    def monotonic(self):
        return self.now

    def sleep(self, seconds):
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def stored_channels_production(make_app, rt):
    """A production app whose offices' channels are only in the channels store."""
    from bot import channels

    with rt.db.transaction() as s:
        for office in rt.offices:
            channels.put(s, rt.config.data_encryption_keys, office, {"secret": f"stored-secret-{office}",
                                                                     "token": f"stored-token-{office}"},
                         rt.clock.now())
    return lambda: make_app(app_env="production", secret_key="s" * 32,
                            data_encryption_keys=rt.config.data_encryption_keys, env={})


@pytest.mark.filterwarnings("ignore:PUBLIC_BASE_URL is plain http", "ignore:SQLite in production")
def test_a_process_started_while_the_database_restarts_waits_for_it_and_reads_the_stored_channels(
        stored_channels_production, monkeypatch):
    from bot import channels

    clock, read, answers = _PausedClock(), channels.read, iter([False, False, True])
    def stored(*args, **kwargs):
        if not next(answers):
            raise OperationalError("SELECT", {}, Exception("the database system is starting up"))
        return read(*args, **kwargs)

    monkeypatch.setattr(channels, "time", clock, raising=False)
    monkeypatch.setattr(channels, "read", stored)
    config = stored_channels_production().extensions["madoguchi"].config
    assert config.channel_secret("sakata") == "stored-secret-sakata" and len(clock.slept) == 2


@pytest.mark.filterwarnings("ignore:PUBLIC_BASE_URL is plain http", "ignore:SQLite in production")
def test_a_process_refused_for_a_database_that_stays_down_says_so(stored_channels_production, monkeypatch):
    from bot import channels
    from bot.config import ConfigError

    def down(*args, **kwargs):
        raise OperationalError("SELECT", {}, Exception("connection refused"))

    monkeypatch.setattr(channels, "time", _PausedClock(), raising=False)
    monkeypatch.setattr(channels, "read", down)
    with pytest.raises(ConfigError) as refused:
        stored_channels_production()
    assert "the database does not answer" in str(refused.value) and "otaru" in str(refused.value)


@pytest.mark.filterwarnings("ignore:PUBLIC_BASE_URL is plain http", "ignore:SQLite in production")
def test_a_process_refused_for_a_database_it_cannot_connect_to_names_the_setting_and_the_reason(
        make_app, rt, database_url, monkeypatch):
    """A DATABASE_URL naming a database that is not there (a typo, a restore into another name): the refusal gives
    the driver's reason and names DATABASE_URL, as it does without a channels store, not only "does not answer"."""
    from sqlalchemy.engine import make_url

    from bot import channels
    from bot.config import ConfigError

    if database_url.startswith("sqlite"):
        pytest.skip("a SQLite URL names a file the app creates: there is no database it cannot connect to")
    wrong = make_url(database_url).set(database="no_such_database_madoguchi").render_as_string(hide_password=False)
    monkeypatch.setattr(channels, "time", _PausedClock(), raising=False)
    with pytest.raises(ConfigError) as refused:
        make_app(app_env="production", secret_key="s" * 32, data_encryption_keys=rt.config.data_encryption_keys,
                 env={}, database_url=wrong)
    message = str(refused.value)
    assert "cannot connect to the database at" in message and "check DATABASE_URL" in message, message
    assert "otaru, sakata's LINE channel settings" in message


# -- a staff member's tap while the database restarts ------------------------------------------------------

@pytest.mark.parametrize("database", ["down", "failing"])
def test_a_staff_tap_that_fails_is_answered_in_the_group_and_works_when_tapped_again(
        make_app, fake_line, user_factory, monkeypatch, database):
    """A member who taps 承認 while the database restarts learns that nothing happened and to tap again (the
    group's chatter still gets no answer: tests/test_webhook.py)."""
    group_id = new_group_id()
    app = make_app(env={"LINE_STAFF_GROUP_ID_SAKATA": group_id})
    rt = app.extensions["madoguchi"]
    group = StaffGroup(app.test_client(), "sakata", channel_secret=rt.config.channel_secret("sakata"),
                       group_id=group_id, fake=fake_line, clock=rt.clock)
    user = LineUser(app.test_client(), "sakata", channel_secret=rt.config.channel_secret("sakata"), fake=fake_line,
                    clock=rt.clock)
    reference = make_request(rt, user_id=user.user_id)
    run_worker(rt)
    approve = postback_value([m for m in fake_line.messages_to(group_id) if m["type"] == "flex"], "承認")
    with monkeypatch.context() as m:
        if database == "down":      # nothing can be queued: the answer goes straight to LINE
            _database_down(m, rt.db)
        else:                       # the tap's transaction fails, the apology is queued like any reply
            from bot import dispatch

            def broken(self, *args, **kwargs):
                raise OperationalError("SELECT", {}, Exception("terminating connection"))

            m.setattr(dispatch.Dispatcher, "_group_event", broken)
        assert group.taps(approve).status_code == 200
    assert "もう一度押してください" in fake_line.texts_to(group_id)[-1]
    assert booking(rt, reference).status == "requested"
    group.taps(approve)
    assert booking(rt, reference).status == "confirmed" and "承認しました" in fake_line.texts_to(group_id)[-1]


# -- the database gone while the worker records what LINE answered ---------------------------------------------

def _database_goes_away_after_line_answers(monkeypatch, rt) -> None:
    """The next call to LINE is answered; the database is gone from then on (until `monkeypatch.undo()`)."""
    real = rt.line._send

    def send(call, reply=False):
        result = real(call, reply)
        _database_down(monkeypatch, rt.db, "terminating connection due to administrator command")
        return result

    monkeypatch.setattr(rt.line, "_send", send)


def test_a_reply_line_refused_while_the_database_restarts_still_goes_once_as_a_push(rt, sakata_user, fake_line,
                                                                                   monkeypatch):
    """The worker's try of a reply is refused (LINE asks to wait past the token's life: certainly not delivered,
    so it is owed as a push) and the database restarts before the outcome is recorded. The worker keeps what LINE
    answered and records it once the database is back: the message goes once as a push, not left of unknown fate
    (never sent) after the lease."""
    fake_line.fail_next(status=429, path_contains="/reply")
    sakata_user.says("予約")
    (reply,) = rows(rt)
    assert (reply.kind, reply.status) == ("reply", "pending")
    rt.clock.advance(seconds=2)
    fake_line.fail_next(status=429, path_contains="/reply", headers={"Retry-After": "120"})
    worker = Worker(rt)
    _database_goes_away_after_line_answers(monkeypatch, rt)
    with pytest.raises(OperationalError):
        worker.run_once()
    monkeypatch.undo()   # the database is back
    rt.clock.advance(seconds=outbox.SENDING_LEASE.total_seconds() + 1)
    worker.run_once()
    rt.clock.advance(seconds=121)   # LINE's Retry-After
    worker.run_once()
    assert [(r.kind, r.status) for r in rows(rt)] == [("push", "sent")]
    assert len(sakata_user.texts()) == 1
    assert [d.kind for d in fake_line.deliveries()] == ["push"]


def test_a_reply_delivered_while_the_database_restarts_is_recorded_sent_not_of_unknown_fate(rt, sakata_user,
                                                                                          fake_line, monkeypatch):
    """LINE took the worker's reply and the database restarted before the outcome was recorded: recorded `sent`
    once the database is back, not `unknown` (which would have staff phone the user about a message that
    arrived), and never sent again."""
    fake_line.fail_next(status=429, path_contains="/reply")
    sakata_user.says("予約")
    rt.clock.advance(seconds=2)
    worker = Worker(rt)
    _database_goes_away_after_line_answers(monkeypatch, rt)
    with pytest.raises(OperationalError):
        worker.run_once()
    monkeypatch.undo()
    rt.clock.advance(seconds=outbox.SENDING_LEASE.total_seconds() + 1)
    worker.run_once()
    assert [(r.kind, r.status) for r in rows(rt)] == [("reply", "sent")]
    assert len(sakata_user.texts()) == 1 and len(fake_line.deliveries()) == 1


def test_rows_claimed_just_before_the_database_restarts_go_when_it_is_back_not_left_of_unknown_fate(
        rt, sakata_user, fake_line, monkeypatch):
    """The worker claimed a reply and a push, then the database went away before it could read whether the push
    may go: neither was tried, so both go back as they were and leave once it is back: the reply on its token,
    not recorded `unknown` after the lease (a message never sent, never pushed)."""
    fake_line.fail_next(status=429, path_contains="/reply")
    sakata_user.says("予約")
    push(rt, "U" + "1" * 32, "お知らせです。")
    rt.clock.advance(seconds=2)
    worker = Worker(rt)
    claim = worker.sender._claim_due

    def claim_then_database_gone(limit):
        claimed = claim(limit)
        _database_down(monkeypatch, rt.db, "terminating connection due to administrator command")
        return claimed

    monkeypatch.setattr(worker.sender, "_claim_due", claim_then_database_gone)
    calls = len(fake_line.calls)
    with pytest.raises(OperationalError):
        worker.sender.send_due()
    assert len(fake_line.calls) == calls, "nothing was tried"
    monkeypatch.undo()
    rt.clock.advance(seconds=2)
    worker.run_once()
    assert [(r.kind, r.status) for r in rows(rt)] == [("reply", "sent"), ("push", "sent")]
    assert len(sakata_user.texts()) == 1 and len(fake_line.deliveries()) == 2


def test_outcomes_recorded_after_a_refused_commit_are_counted_once_in_the_worker_figures(rt, sakata_user, fake_line,
                                                                                         monkeypatch):
    """The commit of a pass's outcomes fails as the database goes away (the changes were made, then rolled back);
    recorded at the next pass, each counts once in the figures `worker --once` prints."""
    import contextlib

    fake_line.fail_next(status=429, path_contains="/reply")
    sakata_user.says("予約")
    rt.clock.advance(seconds=2)
    worker = Worker(rt)
    real, failed = rt.db.transaction, []

    @contextlib.contextmanager
    def commit_refused():
        with real() as session:
            yield session
            if fake_line.deliveries() and not failed:   # the outcomes' commit, after LINE took the reply
                failed.append(True)
                session.flush()
                raise OperationalError("COMMIT", {}, Exception("terminating connection"))

    monkeypatch.setattr(rt.db, "transaction", commit_refused)
    with pytest.raises(OperationalError):
        worker.run_once()
    monkeypatch.undo()
    figures = worker.run_once()
    assert [r.status for r in rows(rt)] == ["sent"]
    assert figures["sent"] == 1


@pytest.mark.parametrize("refused", [False, True], ids=["taken", "refused"])
def test_a_reply_outcome_whose_connection_was_lost_is_recorded_on_a_new_one(rt, sakata_user, fake_line, monkeypatch,
                                                                           refused):
    """The web process's pooled connection was cut (a proxy, a database failover) just as it recorded what LINE
    answered to a reply: recorded once more on a new connection, as an event is run again, not left `sending` to
    read `unknown` after the lease (a reply LINE took, or one it refused and that is owed as a push)."""
    lost = []

    def cut_once(real):
        def record(self, *args):
            if not lost:
                lost.append(True)
                raise OperationalError("UPDATE outbox", {}, Exception("server closed the connection unexpectedly"),
                                       connection_invalidated=True)
            return real(self, *args)
        return record

    for name in ("_commit_changes", "_mark_reply_sent"):
        monkeypatch.setattr(outbox.Sender, name, cut_once(getattr(outbox.Sender, name)))
    event = sakata_user.text_event("予約")
    if refused:
        fake_line.expire_reply_token(event["replyToken"])
    assert sakata_user.send(event).status_code == 200
    monkeypatch.undo()
    assert lost
    [answer] = rows(rt)
    assert (answer.kind, answer.status) == (("push", "pending") if refused else ("reply", "sent"))
    run_worker(rt, outbox.SENDING_LEASE.total_seconds() + 1)
    assert len(sakata_user.texts()) == 1 and len(fake_line.deliveries()) == 1
