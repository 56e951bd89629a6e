"""The worker: `flask --app app worker`, order per user, recovery after a kill, several workers at once."""
from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from bot import outbox
from bot.clock import TOKYO
from bot.models import OutboxMessage, ProcessedEvent
from bot.worker import Worker
from tests.lineuser import LineUser

ROOT = Path(__file__).resolve().parent.parent


def rows(rt) -> list[OutboxMessage]:
    with rt.db.reading() as s:
        return list(s.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


def row(rt, row_id: int) -> OutboxMessage:
    with rt.db.reading() as s:
        return s.get(OutboxMessage, row_id)


def push(rt, recipient: str, text: str, now: datetime | None = None, **kwargs) -> int:
    with rt.db.transaction() as s:
        r = outbox.add(s, office="sakata", kind="push", recipient=recipient,
                       messages=[{"type": "text", "text": text}], now=now or rt.clock.now(), **kwargs)
        s.flush()
        return r.id


def texts(fake, user_id: str) -> list[str]:
    return fake.texts_to(user_id)


# The LINE read timeout of tests that count every push's tries (a second try answers 409). The tests' usual 2 s is
# shorter than the loopback fake can take to answer on a loaded machine: a push answered after it was tried again
# (LINE took it: 409 for the second try, delivered once, as it should be), though no worker misbehaved. A
# slow-pass test counts LINE's time on the workers' clocks, not this.
PATIENT_TIMEOUT_SECONDS = 30.0


def refused_pushes(fake) -> list[str]:
    """The retry key of each push LINE did not answer 200, with all of that key's tries in the order they came: each
    answer's status and how long it took (a try answered past the client's read timeout was tried again for that
    reason, and one of the two answered 409)."""
    pushes = fake.calls_to("/push")

    def answered(call) -> str:
        return f"{call.status} in {call.answered_at - call.at:.2f} s" if call.answered_at else "no answer (yet)"

    return [f"key {key}: " + ", ".join(answered(c) for c in pushes if c.retry_key == key)
            for key in dict.fromkeys(c.retry_key for c in pushes if c.status != 200)]


USER_A = "U" + "a" * 32
USER_B = "U" + "b" * 32


# -- the command --------------------------------------------------------------------------------

def test_worker_once_delivers_what_is_due_and_reports_figures(app, rt, fake_line):
    push(rt, USER_A, "1")
    result = app.test_cli_runner().invoke(args=["worker", "--once"])
    assert result.exit_code == 0, result.output
    assert "sent=1" in result.output
    assert texts(fake_line, USER_A) == ["1"]


def test_worker_now_decides_what_is_due(app, rt, fake_line):
    later = rt.clock.now() + timedelta(hours=2)
    push(rt, USER_A, "later", due_at=later)
    runner = app.test_cli_runner()
    assert runner.invoke(args=["worker", "--once", "--now", "2026-12-01T11:00"]).exit_code == 0
    assert fake_line.calls == []
    result = runner.invoke(args=["worker", "--once", "--now", "2026-12-01T12:00:00+09:00"])
    assert result.exit_code == 0, result.output
    assert texts(fake_line, USER_A) == ["later"]


def test_worker_now_must_be_iso_8601(app, fake_line):
    result = app.test_cli_runner().invoke(args=["worker", "--once", "--now", "next tuesday"])
    assert result.exit_code == 2
    assert "ISO 8601" in result.output
    assert fake_line.calls == []


@pytest.mark.filterwarnings("ignore:.*production:UserWarning")
def test_worker_now_is_refused_in_production(production_app, rt, fake_line):
    """A pretended time on live data would purge details, expire requests and message users for real."""
    production = production_app
    later = rt.clock.now() + timedelta(hours=2)
    row_id = push(rt, USER_A, "later", due_at=later)
    result = production.test_cli_runner().invoke(
        args=["worker", "--once", "--now", (later + timedelta(hours=1)).isoformat()])
    assert result.exit_code == 2
    assert "development only" in result.output
    assert fake_line.calls == []
    assert row(rt, row_id).status == "pending"


# -- order --------------------------------------------------------------------------------------

def test_pushes_to_one_user_keep_their_order_when_one_must_be_retried(rt, fake_line):
    for text in ("A1", "A2", "A3"):
        push(rt, USER_A, text)
    push(rt, USER_B, "B1")
    fake_line.fail_next(status=500, path_contains="/push")  # A1's first try
    Worker(rt).run_once()
    assert texts(fake_line, USER_A) == []   # A2 and A3 wait for A1
    assert texts(fake_line, USER_B) == ["B1"]  # other users are not held up
    rt.clock.advance(seconds=1)
    Worker(rt).run_once()
    assert texts(fake_line, USER_A) == ["A1", "A2", "A3"]


def test_a_push_waits_for_an_earlier_reply_to_the_same_user(rt, sakata_user, fake_line):
    fake_line.fail_next(status=429, path_contains="/reply")
    sakata_user.says("予約")
    (reply,) = rows(rt)
    assert (reply.kind, reply.status) == ("reply", "pending")
    push(rt, sakata_user.user_id, "after the reply")
    Worker(rt).run_once()
    assert fake_line.deliveries() == []
    rt.clock.advance(seconds=2)
    Worker(rt).run_once()
    assert [d.kind for d in fake_line.deliveries()] == ["reply", "push"]
    assert sakata_user.texts()[-1] == "after the reply"


def test_a_later_scheduled_row_does_not_hold_up_one_due_now(rt, fake_line):
    push(rt, USER_A, "tomorrow", due_at=rt.clock.now() + timedelta(days=1))
    push(rt, USER_A, "now")
    Worker(rt).run_once()
    assert texts(fake_line, USER_A) == ["now"]


# -- a worker killed mid-send -------------------------------------------------------------------

def _claim_like_a_worker_that_dies(rt) -> list[OutboxMessage]:
    return rt.sender()._claim_due(200)


def test_a_push_left_sending_after_it_was_accepted_is_resent_with_its_key_and_arrives_once(rt, fake_line):
    row_id = push(rt, USER_A, "once")
    (claimed,) = _claim_like_a_worker_that_dies(rt)
    assert rt.line.push("sakata", USER_A, claimed.payload["messages"], claimed.retry_key).delivered
    # ... and the worker is killed before it records the outcome.
    assert row(rt, row_id).status == "sending"
    Worker(rt).run_once()
    assert row(rt, row_id).status == "sending"  # its lease has not run out: maybe still at work
    rt.clock.advance(seconds=outbox.SENDING_LEASE.total_seconds() + 1)
    Worker(rt).run_once()
    recovered = row(rt, row_id)
    assert recovered.status == "sent"
    assert [c.status for c in fake_line.calls_to("/push")] == [200, 409]
    assert {c.retry_key for c in fake_line.calls_to("/push")} == {claimed.retry_key}
    assert texts(fake_line, USER_A) == ["once"]


def test_a_push_left_sending_before_it_was_sent_is_sent_after_recovery(rt, fake_line):
    row_id = push(rt, USER_A, "late but once")
    _claim_like_a_worker_that_dies(rt)
    rt.clock.advance(seconds=outbox.SENDING_LEASE.total_seconds() + 1)
    Worker(rt).run_once()
    assert row(rt, row_id).status == "sent"
    assert texts(fake_line, USER_A) == ["late but once"]


def test_a_reply_left_sending_by_a_killed_process_is_marked_unknown_and_not_resent(rt, sakata_user, fake_line,
                                                                                  monkeypatch):
    # The web process claims the reply and dies before LINE answers.
    monkeypatch.setattr(rt.sender().__class__, "_deliver", lambda self, r, timeout: None)
    sakata_user.says("予約")
    monkeypatch.undo()
    (reply,) = rows(rt)
    assert (reply.kind, reply.status) == ("reply", "sending")
    rt.clock.advance(seconds=outbox.SENDING_LEASE.total_seconds() + 1)
    Worker(rt).run_once()
    recovered = row(rt, reply.id)
    assert (recovered.kind, recovered.status) == ("reply", "unknown")
    assert recovered.last_error
    assert fake_line.calls == []


# -- several workers ----------------------------------------------------------------------------

def test_several_workers_at_once_deliver_each_row_exactly_once(make_app, fake_line):
    apps = [make_app(line_timeout_seconds=PATIENT_TIMEOUT_SECONDS) for _ in range(3)]
    rts = [a.extensions["madoguchi"] for a in apps]
    users = [f"U{i:032x}" for i in range(10)]
    for n in range(3):
        for u in users:
            push(rts[0], u, f"{u[-2:]}-{n}")
    barrier = threading.Barrier(len(rts))
    errors = []

    def work(rt):
        try:
            barrier.wait(timeout=10)
            Worker(rt).run_once()
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(rt,)) for rt in rts]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    Worker(rts[0]).run_once()  # rows a busy peer left blocked behind a user's earlier row
    assert len(fake_line.deliveries("push")) == 30
    assert refused_pushes(fake_line) == []  # nothing sent twice (no 409)
    for u in users:
        assert texts(fake_line, u) == [f"{u[-2:]}-{n}" for n in range(3)]
    assert {r.status for r in rows(rts[0])} == {"sent"}


# -- jobs ---------------------------------------------------------------------------------------

def test_dedupe_marks_are_purged_after_a_week(rt, sakata_user):
    sakata_user.says("予約")
    assert Worker(rt).run_once()["dedupe_purged"] == 0
    rt.clock.advance(days=8)
    assert Worker(rt).run_once()["dedupe_purged"] == 1
    with rt.db.reading() as s:
        assert s.scalar(select(ProcessedEvent)) is None


# -- the long-running worker --------------------------------------------------------------------

def test_a_due_row_leaves_on_the_workers_next_pass_after_its_commit(rt, fake_line):
    """A pass every POLL_SECONDS while idle, and a due row goes on the first pass that starts after its commit
    (counted in passes, not seconds: a busy test machine stretches seconds, not passes)."""
    from bot import worker as worker_module

    worker = Worker(rt)
    passes: list[float] = []
    real_send_due = worker.sender.send_due

    def counted_send_due(*args, **kwargs):
        passes.append(time.monotonic())
        return real_send_due(*args, **kwargs)

    worker.sender.send_due = counted_send_due
    thread = threading.Thread(target=worker.run_forever, daemon=True)
    thread.start()
    try:
        while len(passes) < 2:   # settled into its polling
            time.sleep(0.01)
        push(rt, USER_A, "prompt")
        committed, before = time.monotonic(), len(passes)
        deadline = committed + 30
        while not texts(fake_line, USER_A) and time.monotonic() < deadline:
            time.sleep(0.01)
        took = time.monotonic() - committed
        after = len(passes) - before
    finally:
        worker.stop()
        thread.join(timeout=10)
    assert not thread.is_alive()
    assert texts(fake_line, USER_A) == ["prompt"]
    print(f"push left {took:.3f} s after its commit, on pass {after} after it")
    # The pass running at the commit may have read before it; the next one sends it.
    assert after <= 2
    assert worker_module.POLL_SECONDS <= 1.0   # so that an idle worker sends a due row within about a second


def test_the_worker_process_delivers_and_stops_on_sigterm(tmp_path, database_url, fake_line):
    """`flask --app app worker` as its own process, as the Procfile runs it."""
    from app import create_app

    env = {**os.environ, "APP_ENV": "development", "DATABASE_URL": database_url,
           "INSTANCE_PATH": str(tmp_path / "instance"), "LINE_API_BASE_URL": fake_line.url,
           "LINE_API_DATA_BASE_URL": fake_line.url, "PYTHONPATH": str(ROOT)}
    env.pop("APP_FAKE_NOW", None)
    app = create_app({"database_url": database_url, "instance_path": str(tmp_path / "instance")})
    rt = app.extensions["madoguchi"]
    proc = subprocess.Popen([sys.executable, "-m", "flask", "--app", "app", "worker"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        # The real clock: an answer's push (its event named), never held for the push hours at night.
        push(rt, USER_B, "from the worker process", now=datetime.now(TOKYO), event_id="worker-process-test")
        deadline = time.monotonic() + 20
        while not texts(fake_line, USER_B) and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert texts(fake_line, USER_B) == ["from the worker process"]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        rt.db.dispose()
    output = proc.stdout.read().decode(errors="replace")
    assert "worker stopped" in output
    assert "from the worker process" not in output  # message text never logged


def test_a_failing_pass_keeps_the_worker_alive_and_logs_no_values(rt, fake_line, monkeypatch, caplog):
    from sqlalchemy import text

    from bot import jobs

    secret_words = "サトウイチロウ55555-123456"
    failures = {"left": 1}
    real_run_due = jobs.run_due

    def failing_run_due(runtime):
        if failures["left"]:
            failures["left"] -= 1
            with runtime.db.transaction() as s:
                s.execute(text("INSERT INTO app_settings (key, value) VALUES (:k, :v)"),
                          {"k": None, "v": secret_words})
        return real_run_due(runtime)

    monkeypatch.setattr(jobs, "run_due", failing_run_due)
    monkeypatch.setattr("bot.worker.JOBS_EVERY_SECONDS", 0.0)
    caplog.set_level(logging.INFO)
    push(rt, USER_A, "still delivered")
    worker = Worker(rt)
    thread = threading.Thread(target=worker.run_forever, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not texts(fake_line, USER_A) and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        worker.stop()
        thread.join(timeout=10)
    assert texts(fake_line, USER_A) == ["still delivered"]
    assert "worker pass failed: IntegrityError" in caplog.text
    assert secret_words not in caplog.text


def test_sigterm_mid_pass_ends_the_pass_after_the_row_being_sent_and_hands_the_rest_back(rt, fake_line):
    """A platform stops the worker with SIGTERM and kills it a grace period later (Heroku: 30 s). A pass holds up
    to 200 claimed rows, `sending`: one that went on through all of them after SIGTERM could be killed midway,
    and every claimed row it had not tried yet would wait out the lease (a reply becomes `unknown`, never sent).
    The row being sent when the signal comes is finished and recorded; the others go back to the queue as they
    were, for the next worker."""
    users = [f"U{i:032x}" for i in range(1, 9)]
    ids = [push(rt, user, f"row {i}") for i, user in enumerate(users)]
    fake_line.set_delay(0.3)
    worker = Worker(rt)
    sending = worker.sender._deliver

    def deliver_then_signal(row, *args, **kwargs):
        result = sending(row, *args, **kwargs)
        worker.stop()   # what the SIGTERM handler does, while the first row is on its way
        return result

    worker.sender._deliver = deliver_then_signal
    thread = threading.Thread(target=worker.run_forever, daemon=True)
    thread.start()
    thread.join(timeout=30)
    assert not thread.is_alive()
    statuses = [row(rt, i).status for i in ids]
    assert statuses[0] == "sent"
    assert statuses[1:] == ["pending"] * (len(ids) - 1), statuses
    assert [row(rt, i).attempts for i in ids[1:]] == [0] * (len(ids) - 1)   # not counted as tries
    assert [user for user in users if texts(fake_line, user)] == users[:1]


def test_a_pass_that_cannot_connect_says_why_and_names_the_setting(rt, fake_line, monkeypatch, caplog):
    """The database gone (dropped, renamed, its password changed): the on-call engineer reads the driver's reason
    and DATABASE_URL in the worker's log, not only the exception's type and where it was raised."""
    from sqlalchemy.exc import OperationalError

    from bot import jobs

    def unreachable(runtime):
        raise OperationalError(None, None, Exception('connection failed: FATAL:  database "ops" does not exist'))

    monkeypatch.setattr(jobs, "run_due", unreachable)
    caplog.set_level(logging.INFO)
    worker = Worker(rt)
    thread = threading.Thread(target=worker.run_forever, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while "worker pass failed" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        worker.stop()
        thread.join(timeout=10)
    assert 'worker pass failed: cannot connect to the database at' in caplog.text
    assert 'database "ops" does not exist' in caplog.text and "check DATABASE_URL" in caplog.text


def test_a_slow_pass_ends_within_its_lease_so_a_second_worker_takes_nothing_from_it(make_app, fake_line):
    """LINE answers, slowly (a second a call), and a backlog of 70 pushes is due, a reply owed after them. One
    worker's pass claims them all; it must not keep trying past half the lease, or a second worker's recovery
    would take rows it still holds: the reply, its token run out by the time the first worker reaches it, would
    be recorded `unknown` by the second (never sent, never pushed) and the first worker's push fallback ignored.
    The first hands back what it has not tried, in time; every message arrives once."""
    apps = tuple(make_app(line_timeout_seconds=PATIENT_TIMEOUT_SECONDS) for _ in range(2))
    first, second = (a.extensions["madoguchi"] for a in apps)
    for n in range(70):
        push(first, f"U{n:032x}", f"backlog {n}")
    fake_line.fail_next(status=429, path_contains="/reply")
    user = LineUser(apps[0].test_client(), "sakata", channel_secret=first.config.channel_secret("sakata"),
                    fake=fake_line, clock=first.clock)
    user.says("予約")                       # refused: owed, behind the backlog
    for rt in (first, second):
        rt.clock.advance(seconds=2)         # the reply is due again
    real_push = first.line.push
    recovered = []

    def slow_push(*args, **kwargs):
        for rt in (first, second):
            rt.clock.advance(seconds=1)     # LINE takes a second per call
        result = real_push(*args, **kwargs)
        if first.clock.now() - started > outbox.SENDING_LEASE and not recovered:
            recovered.append(Worker(second).sender.recover_stale())   # the second worker's pass begins
        return result

    started = first.clock.now()
    slow = Worker(first)
    slow.sender.client = type("Slow", (), {"push": staticmethod(slow_push), "reply": first.line.reply})()
    slow.sender.send_due()
    handed_back_at = first.clock.now()
    for _ in range(5):
        second.clock.advance(seconds=2)
        Worker(second).run_once()
    assert [(r.kind, r.status) for r in rows(first) if r.status != "sent"] == []
    assert len(fake_line.deliveries()) == 71 and len(user.texts()) == 1
    assert refused_pushes(fake_line) == [], "a push tried by both workers (or twice)"
    assert handed_back_at - started < outbox.SENDING_LEASE and recovered == []
