"""The transactional outbox: replies right after the commit, everything else by the worker, each once.

LINE's API misbehaves here the ways it does in life (down, slow, 500, 429, resets, expired reply
tokens) and the bot must still acknowledge the webhook in time, never send a message twice, and
record each row's outcome.  The 2 s bound asserted below is LINE's acknowledgement deadline (a
correctness bound, not a benchmark).
"""
from __future__ import annotations

import socket
import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot import line_client as lc
from bot import outbox
from bot.models import Conversation, OutboxMessage, ProcessedEvent
from bot.worker import Worker
from tests.fakeline import FakeLineApi
from tests.lineuser import LineUser

pytestmark = pytest.mark.reply_budget  # these tests time the acknowledgement: production's reply budget

ACK_DEADLINE = 2.0   # LINE's: the webhook must answer within 2 s
TEXT = [{"type": "text", "text": "お知らせです。"}]


# -- helpers ------------------------------------------------------------------------------------

def rows(rt) -> list[OutboxMessage]:
    with rt.db.reading() as s:
        return list(s.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


def row(rt, row_id: int) -> OutboxMessage:
    with rt.db.reading() as s:
        return s.get(OutboxMessage, row_id)


def push(rt, recipient: str, text: str = "お知らせです。", office: str = "sakata", **kwargs) -> int:
    with rt.db.transaction() as s:
        r = outbox.add(s, office=office, kind="push", recipient=recipient,
                       messages=[{"type": "text", "text": text}], now=rt.clock.now(), **kwargs)
        s.flush()
        return r.id


def timed(call):
    start = time.monotonic()
    response = call()
    return response, time.monotonic() - start


_HELD_PORTS: list[socket.socket] = []


def closed_port_url() -> str:
    """A loopback URL whose port is bound but never listened on: connections are refused (LINE down).

    The socket stays bound for the session, so no other process can take the port meanwhile.
    """
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    _HELD_PORTS.append(sock)
    return f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.fixture
def private_fake():
    """A fake LINE of the test's own, for faults that outlive the test (a slow answer)."""
    fake = FakeLineApi().start()
    yield fake
    fake.stop()


def user_on(app, fake, office: str = "sakata") -> LineUser:
    rt = app.extensions["madoguchi"]
    return LineUser(app.test_client(), office, channel_secret=rt.config.channel_secret(office), fake=fake,
                    clock=rt.clock)


def run_worker(rt, seconds: float = 0) -> dict:
    if seconds:
        rt.clock.advance(seconds=seconds)
    return Worker(rt).run_once()


# -- writing ------------------------------------------------------------------------------------

def test_queue_to_user_replies_five_and_pushes_the_rest(rt):
    messages = [{"type": "text", "text": str(i)} for i in range(12)]
    with rt.db.transaction() as s:
        queued = outbox.queue_to_user(s, office="sakata", user_id="U" + "1" * 32, messages=messages,
                                      now=rt.clock.now(), reply_token="t" * 32, event_id="E1")
    assert [(r.kind, len(r.payload["messages"])) for r in queued] == [("reply", 5), ("push", 5), ("push", 2)]
    assert queued[0].reply_deadline == rt.clock.now() + outbox.REPLY_TOKEN_LIFETIME
    assert len({r.retry_key for r in queued}) == 3


def test_queue_to_user_pushes_nothing_to_an_unfollowed_user(rt):
    messages = [{"type": "text", "text": str(i)} for i in range(7)]
    with rt.db.transaction() as s:
        queued = outbox.queue_to_user(s, office="sakata", user_id="U" + "1" * 32, messages=messages,
                                      now=rt.clock.now(), reply_token=None, may_push=False)
    assert queued == []


def test_rows_are_written_in_the_events_transaction_and_sent_after_its_commit(rt, sakata_user, fake_line,
                                                                            monkeypatch):
    """At the moment LINE is called, the state change and its outbox row are already committed."""
    seen = {}
    real_reply = rt.line.reply

    def reply(office, token, messages, timeout=None):
        with rt.db.reading() as s:  # a new connection: sees committed data only
            seen["processed"] = s.scalar(select(ProcessedEvent.webhook_event_id))
            seen["state"] = s.scalar(select(Conversation.state))
            seen["row"] = s.scalar(select(OutboxMessage.status))
        return real_reply(office, token, messages, timeout=timeout)

    monkeypatch.setattr(rt.line, "reply", reply)
    assert sakata_user.says("予約").status_code == 200
    assert seen == {"processed": sakata_user.last_event["webhookEventId"], "state": "awaiting_consent",
                    "row": "sending"}
    assert [(r.kind, r.status, r.attempts) for r in rows(rt)] == [("reply", "sent", 1)]
    assert rows(rt)[0].sent_at == rt.clock.now()


def test_replies_of_one_request_are_sent_by_the_web_process(rt, sakata_user, otaru_user, fake_line):
    now_ms = int(rt.clock.now().timestamp() * 1000)
    events = [sakata_user.text_event(w, timestamp=now_ms + i) for i, w in enumerate(["予約", "ヘルプ", "予約確認"])]
    assert sakata_user.post(sakata_user.body(events)).status_code == 200
    assert [r.status for r in rows(rt)] == ["sent"] * 3
    assert len(fake_line.deliveries("reply")) == 3


# -- LINE misbehaving during a reply (the web process) ------------------------------------------

def test_reply_reset_before_an_answer_goes_again_on_its_token_once(rt, sakata_user, fake_line):
    fake_line.fail_next(status="reset", path_contains="/reply")
    response, elapsed = timed(lambda: sakata_user.says("予約"))
    assert response.status_code == 200 and elapsed < ACK_DEADLINE
    (reply,) = rows(rt)
    assert (reply.kind, reply.status) == ("reply", "pending")   # it may have arrived: the same token again
    assert outbox.error_detail(reply)[1]
    run_worker(rt, 2)
    assert [(r.kind, r.status) for r in rows(rt)] == [("reply", "sent")]
    run_worker(rt, 120)
    assert [c.path for c in fake_line.calls] == ["/v2/bot/message/reply"] * 2   # never as a push
    assert len(sakata_user.texts()) == 1


@pytest.mark.parametrize("after_accept", [False, True])
def test_reply_answered_500_goes_again_on_its_token_and_arrives_once(rt, sakata_user, fake_line, after_accept):
    """LINE takes a reply token once: sending a reply again on its own token cannot make it arrive twice."""
    fake_line.fail_next(status=500, path_contains="/reply", fail_after_accept=after_accept)
    response, elapsed = timed(lambda: sakata_user.says("予約"))
    assert response.status_code == 200 and elapsed < ACK_DEADLINE
    assert [(r.kind, r.status) for r in rows(rt)] == [("reply", "pending")]
    run_worker(rt, 2)
    # Delivered by the second try; or refused by LINE (the token was used by the first): of unknown fate.
    assert [(r.kind, r.status) for r in rows(rt)] == [("reply", "unknown" if after_accept else "sent")]
    run_worker(rt, 120)
    assert [c.path for c in fake_line.calls] == ["/v2/bot/message/reply"] * 2   # never as a push
    assert len(sakata_user.texts()) == 1
    assert all(r.payload == outbox.spent_payload() for r in rows(rt))


def test_reply_that_may_have_arrived_is_never_pushed_when_its_token_ends(rt, sakata_user, fake_line):
    fake_line.fail_next(n=2, status=500, path_contains="/reply", fail_after_accept=True)
    assert sakata_user.says("予約").status_code == 200
    run_worker(rt, 2)        # LINE answers 400: the token was used (by the first try)
    run_worker(rt, 120)
    (reply,) = rows(rt)
    assert (reply.kind, reply.status) == ("reply", "unknown")
    assert fake_line.calls_to("/push") == [] and len(sakata_user.texts()) == 1


def test_reply_that_may_have_arrived_is_of_unknown_fate_once_its_token_is_gone(rt, sakata_user, fake_line):
    fake_line.fail_next(status="reset", path_contains="/reply")
    assert sakata_user.says("予約").status_code == 200
    run_worker(rt, 90)       # the worker comes back after the token's minute
    (reply,) = rows(rt)
    assert (reply.kind, reply.status) == ("reply", "unknown")
    assert len(fake_line.calls) == 1 and fake_line.calls_to("/push") == []


def test_reply_answered_429_is_retried_while_the_token_lives(rt, sakata_user, fake_line):
    fake_line.fail_next(status=429, path_contains="/reply")
    response, elapsed = timed(lambda: sakata_user.says("予約"))
    assert response.status_code == 200 and elapsed < ACK_DEADLINE
    (reply,) = rows(rt)
    assert (reply.kind, reply.status) == ("reply", "pending")
    assert reply.next_attempt_at - rt.clock.now() <= timedelta(seconds=2)
    run_worker(rt, 2)
    assert [(r.kind, r.status) for r in rows(rt)] == [("reply", "sent")]
    assert len(fake_line.deliveries("reply")) == 1 and len(sakata_user.texts()) == 1


def test_reply_refused_for_its_token_falls_back_to_one_push(rt, sakata_user, fake_line):
    event = sakata_user.text_event("予約")
    fake_line.expire_reply_token(event["replyToken"])
    response, elapsed = timed(lambda: sakata_user.send(event))
    assert response.status_code == 200 and elapsed < ACK_DEADLINE
    (fallback,) = rows(rt)
    assert (fallback.kind, fallback.status, fallback.reply_token) == ("push", "pending", None)
    run_worker(rt)
    assert [(r.kind, r.status) for r in rows(rt)] == [("push", "sent")]
    assert [d.kind for d in fake_line.deliveries()] == ["push"]
    assert len(sakata_user.texts()) == 1
    run_worker(rt, 300)
    assert len(fake_line.deliveries()) == 1


def test_reply_with_line_down_is_retried_then_pushed_once_the_token_is_gone(make_app, fake_line):
    down = make_app(line_api_base_url=closed_port_url())
    rt_down = down.extensions["madoguchi"]
    user = user_on(down, fake_line)
    response, elapsed = timed(lambda: user.says("予約"))
    assert response.status_code == 200 and elapsed < ACK_DEADLINE
    (reply,) = rows(rt_down)
    assert (reply.kind, reply.status) == ("reply", "pending")  # certainly not sent: may be retried
    run_worker(rt_down, 1)
    assert row(rt_down, reply.id).status == "pending"
    assert row(rt_down, reply.id).attempts == 2
    # LINE is back, but a minute has passed: the token is dead, so it becomes one push.
    back = make_app()
    rt_back = back.extensions["madoguchi"]
    rt_back.clock.advance(seconds=90)
    run_worker(rt_back)
    assert [(r.kind, r.status) for r in rows(rt_back)] == [("push", "sent")]
    assert [d.kind for d in fake_line.deliveries()] == ["push"]
    assert len(user.texts()) == 1


def test_reply_with_line_down_goes_as_a_reply_when_line_returns_in_time(make_app, fake_line):
    down = make_app(line_api_base_url=closed_port_url())
    user = user_on(down, fake_line)
    assert user.says("予約").status_code == 200
    back = make_app()
    run_worker(back.extensions["madoguchi"], 2)
    assert [d.kind for d in fake_line.deliveries()] == ["reply"]
    assert len(user.texts()) == 1


def test_reply_with_line_slow_5s_acknowledges_in_time_and_is_not_pushed(make_app, private_fake):
    app = make_app(line_api_base_url=private_fake.url)
    rt = app.extensions["madoguchi"]
    user = user_on(app, private_fake)
    private_fake.set_delay(5)
    response, elapsed = timed(lambda: user.says("予約"))
    assert response.status_code == 200
    assert elapsed < ACK_DEADLINE
    assert [(r.kind, r.status) for r in rows(rt)] == [("reply", "pending")]
    private_fake.set_delay(0)
    run_worker(rt, 120)   # its token is gone: the try may have arrived (it did), so never a push
    assert [(r.kind, r.status) for r in rows(rt)] == [("reply", "unknown")]
    assert len(private_fake.calls_to("/reply")) == 1
    assert private_fake.calls_to("/push") == []


def test_reply_with_line_timing_out_acknowledges_in_time(rt, sakata_user, fake_line):
    fake_line.timeout_seconds = 3
    try:
        fake_line.fail_next(status="timeout", path_contains="/reply")
        response, elapsed = timed(lambda: sakata_user.says("予約"))
    finally:
        fake_line.timeout_seconds = 6.0
    assert response.status_code == 200 and elapsed < ACK_DEADLINE
    assert [r.status for r in rows(rt)] == ["pending"]   # tried again on its token (at most once delivered)


def test_reply_budget_leaves_what_does_not_fit_to_the_worker(make_app, private_fake):
    app = make_app(line_api_base_url=private_fake.url)
    rt = app.extensions["madoguchi"]
    user = user_on(app, private_fake)
    now_ms = int(rt.clock.now().timestamp() * 1000)
    events = [user.text_event(w, timestamp=now_ms + i) for i, w in enumerate(["予約", "ヘルプ", "予約確認"])]
    private_fake.set_delay(5)
    response, elapsed = timed(lambda: user.post(user.body(events)))
    assert response.status_code == 200 and elapsed < ACK_DEADLINE
    assert [r.status for r in rows(rt)] == ["pending", "pending", "pending"]
    assert [outbox.error_detail(r)[1] for r in rows(rt)] == [True, False, False]   # only the first was tried
    private_fake.set_delay(0)
    run_worker(rt)
    assert [r.status for r in rows(rt)] == ["pending", "sent", "sent"]
    assert len(private_fake.calls_to("/reply")) == 3  # each tried once


def test_line_slow_for_every_event_of_a_big_batch_still_acknowledges_in_time(make_app, private_fake):
    app = make_app(line_api_base_url=private_fake.url)
    rt = app.extensions["madoguchi"]
    users = [user_on(app, private_fake) for _ in range(5)]
    private_fake.set_delay(0.7)
    events = [u.text_event("予約") for u in users]
    response, elapsed = timed(lambda: users[0].post(users[0].body(events)))
    assert response.status_code == 200 and elapsed < ACK_DEADLINE
    assert len(private_fake.calls_to("/reply")) <= 2  # the budget is spent: the rest wait for the worker
    assert [r.status for r in rows(rt)].count("pending") >= 3


# -- LINE misbehaving during a push (the worker) ------------------------------------------------

@pytest.mark.parametrize("fault", [500, 502, 503, "reset", "timeout"])
@pytest.mark.parametrize("after_accept", [False, True])
def test_push_is_retried_with_the_same_key_and_delivered_once(rt, fake_line, fault, after_accept):
    fake_line.timeout_seconds = 2.5  # past the client's 2 s read timeout in tests
    try:
        fake_line.fail_next(status=fault, path_contains="/push", fail_after_accept=after_accept)
        row_id = push(rt, "U" + "a" * 32)
        run_worker(rt)
    finally:
        fake_line.timeout_seconds = 6.0
    first = row(rt, row_id)
    assert (first.status, first.attempts) == ("pending", 1)
    assert first.last_error
    assert first.next_attempt_at - rt.clock.now() == timedelta(seconds=1)
    if fault == "timeout" and after_accept:
        _wait_for(lambda: len(fake_line.deliveries("push")) == 1)
    run_worker(rt, 1)
    done = row(rt, row_id)
    assert (done.status, done.attempts, done.sent_at) == ("sent", 2, rt.clock.now())
    calls = fake_line.calls_to("/push")
    assert len(calls) == 2
    assert {c.retry_key for c in calls} == {first.retry_key}
    assert len(fake_line.deliveries("push")) == 1
    assert fake_line.calls_to("/push")[-1].status == (409 if after_accept else 200)


def _wait_for(condition, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


def test_push_with_line_slow_past_the_client_timeout_is_delivered_once(make_app, private_fake):
    """The first try times out but LINE accepts it later; the retry (same key) gets 409: one delivery."""
    app = make_app(line_api_base_url=private_fake.url, line_timeout_seconds=1.0)
    rt = app.extensions["madoguchi"]
    row_id = push(rt, "U" + "b" * 32)
    private_fake.set_delay(1.5)
    run_worker(rt)
    assert row(rt, row_id).status == "pending"
    _wait_for(lambda: len(private_fake.deliveries("push")) == 1)
    private_fake.set_delay(0)
    run_worker(rt, 1)
    assert row(rt, row_id).status == "sent"
    assert len(private_fake.deliveries("push")) == 1
    assert [c.status for c in private_fake.calls_to("/push")] == [200, 409]


def test_push_with_line_slow_5s_holds_no_lock_the_webhook_needs(make_app, private_fake, fake_line):
    """While the worker waits on a slow push, the webhook (same database) answers in time."""
    slow = make_app(line_api_base_url=private_fake.url)
    rt_slow = slow.extensions["madoguchi"]
    web = make_app()
    push(rt_slow, "U" + "c" * 32)
    private_fake.set_delay(5)
    worker = threading.Thread(target=lambda: Worker(rt_slow).run_once())
    worker.start()
    try:
        _wait_for(lambda: len(private_fake.calls_to("/push")) == 1)
        user = user_on(web, fake_line)
        response, elapsed = timed(lambda: user.says("予約"))
        assert response.status_code == 200 and elapsed < ACK_DEADLINE
        assert len(user.texts()) == 1
    finally:
        worker.join(timeout=30)
    assert [r.status for r in rows(rt_slow)] == ["pending", "sent"]


def test_push_with_line_down_is_retried_and_delivered_once_when_it_returns(make_app, fake_line):
    down = make_app(line_api_base_url=closed_port_url())
    rt_down = down.extensions["madoguchi"]
    row_id = push(rt_down, "U" + "d" * 32)
    run_worker(rt_down)
    run_worker(rt_down, 1)
    waiting = row(rt_down, row_id)
    assert (waiting.status, waiting.attempts) == ("pending", 2)
    back = make_app()
    rt_back = back.extensions["madoguchi"]
    rt_back.clock.advance(seconds=5)
    run_worker(rt_back)
    assert row(rt_back, row_id).status == "sent"
    (delivery,) = fake_line.deliveries("push")
    assert delivery.retry_key == waiting.retry_key


def test_push_answered_429_rate_limit_is_retried(rt, fake_line):
    fake_line.fail_next(status=429, path_contains="/push")
    row_id = push(rt, "U" + "e" * 32)
    run_worker(rt)
    assert row(rt, row_id).status == "pending"
    run_worker(rt, 1)
    assert row(rt, row_id).status == "sent"
    assert len(fake_line.deliveries("push")) == 1


def test_monthly_quota_holds_pushes_then_releases_them_when_sending_works_again(rt, fake_line):
    fake_line.quota_limit = 0
    try:
        first = push(rt, "U" + "1" * 32)
        second = push(rt, "U" + "2" * 32)
        run_worker(rt)
        assert [r.status for r in rows(rt)] == ["held", "held"]
        run_worker(rt, 61)  # a probe: still over the quota
        assert [r.status for r in rows(rt)] == ["held", "held"]
        assert fake_line.deliveries() == []
        fake_line.quota_limit = None  # next month, or a bigger plan
        run_worker(rt, 61)
    finally:
        fake_line.quota_limit = None
    assert [r.status for r in rows(rt)] == ["sent", "sent"]
    assert sorted(d.to for d in fake_line.deliveries("push")) == ["U" + "1" * 32, "U" + "2" * 32]
    assert first != second


def test_a_successful_push_releases_held_rows_at_once(rt, fake_line):
    fake_line.fail_next(status=429, path_contains="/push",
                        body={"message": "You have reached your monthly limit."})
    held = push(rt, "U" + "1" * 32)
    run_worker(rt)
    assert row(rt, held).status == "held"
    push(rt, "U" + "2" * 32)
    run_worker(rt)
    assert [r.status for r in rows(rt)] == ["sent", "sent"]


@pytest.mark.parametrize("status", [400, 403, 404])
def test_push_refused_for_good_is_failed_and_recorded(rt, fake_line, status):
    fake_line.fail_next(status=status, path_contains="/push")
    row_id = push(rt, "U" + "f" * 32)
    run_worker(rt)
    failed = row(rt, row_id)
    assert (failed.status, failed.last_error) == ("failed", f"http {status}")
    run_worker(rt, 600)
    assert len(fake_line.calls_to("/push")) == 1


def test_a_push_refused_for_the_channel_token_is_held_and_goes_once_the_token_works(rt, fake_line):
    """401: the channel access token is wrong (reissued, revoked): no message of the channel can go, so none is
    given up; each is held, tried again every minute, and sent once the operator sets a valid token."""
    fake_line.fail_next(n=4, status=401, path_contains="/push")
    first, second = push(rt, "U" + "e" * 32), push(rt, "U" + "d" * 32, "二通目です。")
    run_worker(rt)
    assert [(row(rt, r).status, row(rt, r).last_error) for r in (first, second)] == [("held", "http 401")] * 2
    run_worker(rt, 60)                        # still refused: held again
    assert [row(rt, r).status for r in (first, second)] == ["held", "held"]
    assert fake_line.deliveries("push") == []
    run_worker(rt, 60)                        # the token works again
    assert [row(rt, r).status for r in (first, second)] == ["sent", "sent"]
    assert len(fake_line.deliveries("push")) == 2
    run_worker(rt, 600)
    assert len(fake_line.deliveries("push")) == 2


def test_a_reply_refused_for_the_channel_token_is_held_as_a_push(rt, sakata_user, fake_line):
    fake_line.fail_next(n=2, status=401)
    sakata_user.says("ヘルプ")
    run_worker(rt)
    [held] = rows(rt)
    assert (held.kind, held.status, held.last_error) == ("push", "held", "http 401")
    run_worker(rt, 60)
    assert row(rt, held.id).status == "sent"
    assert [d.kind for d in fake_line.deliveries()] == ["push"]


def test_a_message_keeps_its_text_only_until_it_has_gone_or_never_will(rt, sakata_user, fake_line):
    """Text is needed to send a row, nothing after: a finished row (sent, failed, unknown, skipped) keeps its
    kind, purpose, recipient, retry key and outcome, for the dashboard and LINE's de-duplication."""
    sakata_user.says("予約")                                  # a reply, sent by the web process
    fake_line.fail_next(status="reset", path_contains="/reply")
    sakata_user.says("ヘルプ")                                # a reply of unknown fate
    fake_line.fail_next(status=400, path_contains="/push")
    failed = push(rt, "U" + "f" * 32, "失敗するお知らせ")
    run_worker(rt)
    fake_line.fail_next(status=500, path_contains="/push")
    retried = push(rt, "U" + "2" * 32, "再送するお知らせ")
    fake_line.quota_limit = 0
    try:
        held = push(rt, "U" + "1" * 32, "保留するお知らせ")
        run_worker(rt)
        assert [row(rt, i).status for i in (failed, retried, held)] == ["failed", "pending", "held"]
        assert row(rt, retried).payload["messages"][0]["text"] == "再送するお知らせ"   # still to be sent
        assert row(rt, held).payload["messages"][0]["text"] == "保留するお知らせ"
    finally:
        fake_line.quota_limit = None
    run_worker(rt, 61)
    assert [d.messages[0]["text"] for d in fake_line.deliveries("push")] == ["再送するお知らせ", "保留するお知らせ"]
    with rt.db.transaction() as s:
        conv = s.scalar(select(Conversation).where(Conversation.line_user_id == sakata_user.user_id))
        conv.followed = False
        skipped = outbox.add(s, office="sakata", kind="push", recipient=sakata_user.user_id,
                             messages=TEXT, now=rt.clock.now())
        s.flush()
        skipped = skipped.id
    run_worker(rt)
    finished = rows(rt)
    assert sorted(r.status for r in finished) == ["failed", "sent", "sent", "sent", "skipped", "unknown"]
    assert row(rt, skipped).status == "skipped"
    assert [r.payload for r in finished] == [{"messages": []}] * len(finished)
    assert all(r.retry_key and r.purpose for r in finished)


def test_push_answered_409_counts_as_delivered(rt, fake_line):
    fake_line.fail_next(status=409, path_contains="/push")
    row_id = push(rt, "U" + "0" * 32)
    run_worker(rt)
    assert row(rt, row_id).status == "sent"
    run_worker(rt, 600)
    assert len(fake_line.calls_to("/push")) == 1


def test_backoff_starts_near_a_second_and_stays_under_ten_for_the_first_retries(rt, fake_line):
    fake_line.fail_next(n=12, status=503, path_contains="/push")
    row_id = push(rt, "U" + "9" * 32)
    waits = []
    for _ in range(12):
        run_worker(rt)
        r = row(rt, row_id)
        wait = (r.next_attempt_at - rt.clock.now()).total_seconds()
        waits.append(wait)
        rt.clock.advance(seconds=wait)
    assert 0.5 <= waits[0] <= 2
    assert all(w < 10 for w in waits[:5])
    assert waits == sorted(waits)
    assert waits[-1] >= 60
    run_worker(rt)
    assert row(rt, row_id).status == "sent"
    calls = fake_line.calls_to("/push")
    assert len(calls) == 13 and len({c.retry_key for c in calls}) == 1
    assert len(fake_line.deliveries("push")) == 1


def test_a_push_that_keeps_failing_is_given_up_and_recorded(rt, fake_line):
    """It fails alone: LINE takes the office's other pushes meanwhile (tests/test_outage.py: LINE down)."""
    row_id = push(rt, "U" + "8" * 32)
    for n in range(outbox.MAX_ATTEMPTS + 2):
        rt.clock.advance(seconds=600)     # within the push hours (bot/services/push_hours.py)
        fake_line.fail_next(n=1, status=500, path_contains="/push")   # the first push tried: the failing one
        push(rt, "U" + "7" * 32, f"お知らせです。{n}")                  # then another, which LINE takes
        run_worker(rt)
    gone = row(rt, row_id)
    assert (gone.status, gone.attempts) == ("failed", outbox.MAX_ATTEMPTS)
    assert sum(c.retry_key == gone.retry_key for c in fake_line.calls_to("/push")) == outbox.MAX_ATTEMPTS


# -- the client (no database needed) ------------------------------------------------------------

def client_for(url: str, data_url: str | None = None, timeout: float = 2.0) -> lc.LineClient:
    return lc.LineClient(url, data_url or url, lambda office: f"token-{office}", timeout=timeout)


def test_the_sdk_client_always_has_a_timeout_and_no_hidden_retries(fake_line, monkeypatch):
    from linebot.v3.messaging import rest

    seen = []
    real = rest.RESTClientObject.request

    def spy(self, method, url, *args, _request_timeout=None, **kwargs):
        seen.append(_request_timeout)
        return real(self, method, url, *args, _request_timeout=_request_timeout, **kwargs)

    monkeypatch.setattr(rest.RESTClientObject, "request", spy)
    line = client_for(fake_line.url)
    line.push("sakata", "U" + "1" * 32, TEXT, "5f0c8f1e-3b7c-4a55-9a56-2f4e1b2a9c01")
    line.reply("sakata", "t" * 32, TEXT, timeout=0.8)
    line.leave_group("sakata", "C" + "1" * 32)
    line.remaining_quota("sakata")
    assert len(seen) == 5 and all(t for t in seen)
    assert seen[0] == (2.0, 2.0)
    assert seen[1] == 0.8  # a budgeted call: one total bound for connect and read
    assert line._api_client("sakata", fake_line.url).configuration.retries is False


def test_line_api_base_urls_point_the_client_elsewhere(make_app, private_fake, fake_line):
    app = make_app(line_api_base_url=private_fake.url, line_api_data_base_url=private_fake.url + "/data")
    rt = app.extensions["madoguchi"]
    assert rt.line.push("otaru", "U" + "1" * 32, TEXT, "5f0c8f1e-3b7c-4a55-9a56-2f4e1b2a9c02").delivered
    assert rt.line.blob("otaru").api_client.configuration.host == private_fake.url + "/data"
    assert rt.line.api("otaru").api_client.configuration.host == private_fake.url
    assert fake_line.calls == [] and len(private_fake.deliveries()) == 1


@pytest.mark.parametrize("fault,reply_outcome,push_outcome", [
    ("reset", lc.UNKNOWN, lc.RETRY),
    (500, lc.UNKNOWN, lc.RETRY),
    (503, lc.UNKNOWN, lc.RETRY),
    (400, lc.FAILED, lc.FAILED),
    (401, lc.AUTH, lc.AUTH),
    (409, lc.DUPLICATE, lc.DUPLICATE),
    (429, lc.RATE, lc.RATE),
])
def test_outcomes_are_classified_for_replies_and_pushes(fake_line, fault, reply_outcome, push_outcome):
    line = client_for(fake_line.url)
    fake_line.fail_next(status=fault)
    assert line.reply("sakata", "t" * 32, TEXT).outcome == reply_outcome
    fake_line.fail_next(status=fault)
    assert line.push("sakata", "U" + "1" * 32, TEXT, "5f0c8f1e-3b7c-4a55-9a56-2f4e1b2a9c03").outcome \
        == push_outcome


def test_monthly_limit_is_told_from_the_rate_limit(fake_line):
    line = client_for(fake_line.url)
    fake_line.quota_limit = 0
    try:
        assert line.push("sakata", "U" + "1" * 32, TEXT, "5f0c8f1e-3b7c-4a55-9a56-2f4e1b2a9c05").outcome == lc.QUOTA
    finally:
        fake_line.quota_limit = None
    assert line.reply("sakata", "t" * 32, TEXT).outcome == lc.SENT  # replies are free


def test_a_read_timeout_is_unknown_for_a_reply(fake_line):
    line = client_for(fake_line.url, timeout=0.3)
    fake_line.timeout_seconds = 1.0
    try:
        fake_line.fail_next(status="timeout")
        assert line.reply("sakata", "t" * 32, TEXT).outcome == lc.UNKNOWN
        fake_line.fail_next(status="timeout")
        assert line.push("sakata", "U" + "1" * 32, TEXT, "5f0c8f1e-3b7c-4a55-9a56-2f4e1b2a9c06").outcome \
            == lc.RETRY
    finally:
        fake_line.timeout_seconds = 6.0


def test_connection_refused_is_certainly_not_sent():
    line = client_for(closed_port_url())
    assert line.reply("sakata", "t" * 32, TEXT).outcome == lc.RETRY
    assert line.push("sakata", "U" + "1" * 32, TEXT, "5f0c8f1e-3b7c-4a55-9a56-2f4e1b2a9c04").outcome == lc.RETRY


def test_a_budgeted_call_never_outlasts_its_budget(private_fake):
    line = client_for(private_fake.url, timeout=5.0)
    private_fake.set_delay(3)
    start = time.monotonic()
    assert line.reply("sakata", "t" * 32, TEXT, timeout=0.5).outcome == lc.UNKNOWN
    assert time.monotonic() - start < 1.5
