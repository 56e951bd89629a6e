"""POST /callback/<office>: the checks in interface.md's order, dedupe, ordering, every event type.

Every test here runs on SQLite and, with TEST_DATABASE_URL, on PostgreSQL (through `app`).
"""
from __future__ import annotations

import json
import logging
import shutil
import threading
import time
from pathlib import Path

import pytest
from flask import request
from flask.sessions import SecureCookieSessionInterface
from sqlalchemy import func, select
from werkzeug.serving import make_server

from bot.config import DEFAULT_OFFICES_DIR
from bot.models import Conversation, OutboxMessage, ProcessedEvent, StaffGroupSighting
from bot.worker import Worker
from tests.lineuser import LineUser, StaffGroup, as_redelivery, sign
from tests.sqlwatch import watch
from tests.staffkit import make_request

MIB = 1024 * 1024


# -- helpers ------------------------------------------------------------------------------------

def counts(rt) -> dict[str, int]:
    """How many rows the webhook may write: dedupe marks, conversations, outbox rows."""
    with rt.db.reading() as s:
        return {
            "processed_events": s.scalar(select(func.count()).select_from(ProcessedEvent)),
            "conversations": s.scalar(select(func.count()).select_from(Conversation)),
            "outbox": s.scalar(select(func.count()).select_from(OutboxMessage)),
            "sightings": s.scalar(select(func.count()).select_from(StaffGroupSighting)),
        }


NOTHING = {"processed_events": 0, "conversations": 0, "outbox": 0, "sightings": 0}


def conversation(rt, user: LineUser) -> Conversation | None:
    with rt.db.reading() as s:
        return s.scalar(select(Conversation).where(Conversation.office_id == user.office,
                                                   Conversation.line_user_id == user.user_id))


def outbox_rows(rt) -> list[OutboxMessage]:
    with rt.db.reading() as s:
        return list(s.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


def signed_post(client, office: str, raw: bytes, secret: str):
    return client.post(f"/callback/{office}", data=raw, headers={
        "Content-Type": "application/json; charset=utf-8", "X-Line-Signature": sign(raw, secret)})


class LiveServer:
    """The app on a real loopback HTTP server with a thread per request (like several workers)."""

    def __init__(self, app):
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "LiveServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def post_concurrently(url: str, path: str, raw: bytes, signature: str, n: int) -> list[int]:
    """POST the same body from n threads released together; the status codes."""
    import requests

    barrier = threading.Barrier(n)
    statuses: list[int] = []
    lock = threading.Lock()

    def one():
        barrier.wait(timeout=10)
        response = requests.post(url + path, data=raw, timeout=20, headers={
            "Content-Type": "application/json; charset=utf-8", "X-Line-Signature": signature})
        with lock:
            statuses.append(response.status_code)

    threads = [threading.Thread(target=one) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return statuses


# -- the checks, in order -----------------------------------------------------------------------

def test_valid_body_is_answered_200_and_replied_to(rt, sakata_user, fake_line):
    response = sakata_user.says("予約")
    assert response.status_code == 200
    assert len(fake_line.deliveries("reply")) == 1
    assert sakata_user.texts()
    assert counts(rt)["processed_events"] == 1


def test_unknown_office_is_404_and_writes_nothing(rt, client, sakata_user):
    raw = sakata_user.body(sakata_user.text_event("予約"))
    response = client.post("/callback/nagoya", data=raw, headers={
        "X-Line-Signature": sign(raw, rt.config.channel_secret("sakata"))})
    assert response.status_code == 404
    assert counts(rt) == NOTHING


@pytest.fixture
def otaru_disabled_dir(tmp_path) -> Path:
    folder = tmp_path / "offices"
    shutil.copytree(DEFAULT_OFFICES_DIR, folder)
    profile = folder / "otaru.yaml"
    text = profile.read_text(encoding="utf-8")
    assert "\nenabled: true\n" in text
    profile.write_text(text.replace("\nenabled: true\n", "\nenabled: false\n"), encoding="utf-8")
    return folder


def test_disabled_office_is_404_and_writes_nothing(make_app, otaru_disabled_dir, fake_line):
    app = make_app(offices_dir=str(otaru_disabled_dir))
    rt = app.extensions["madoguchi"]
    client = app.test_client()
    otaru = LineUser(client, "otaru", channel_secret=rt.config.channel_secret("otaru"), fake=fake_line,
                     clock=rt.clock)
    assert otaru.says("予約").status_code == 404
    assert otaru.follows().status_code == 404
    assert counts(rt) == NOTHING
    assert fake_line.calls == []
    # The other office still works.
    sakata = LineUser(client, "sakata", channel_secret=rt.config.channel_secret("sakata"), fake=fake_line,
                      clock=rt.clock)
    assert sakata.says("予約").status_code == 200


def test_refused_deliveries_say_why_in_the_log_and_nothing_of_the_body(make_app, otaru_disabled_dir, fake_line,
                                                                       caplog):
    """LINE's Verify button shows only the status: the log names the setting to check."""
    app = make_app(offices_dir=str(otaru_disabled_dir))
    rt = app.extensions["madoguchi"]
    client = app.test_client()
    caplog.set_level(logging.WARNING, logger="bot.webhook")
    pasted_token = LineUser(client, "sakata", channel_secret="the access token, pasted as the secret")
    assert pasted_token.says("山田太郎 090-1234-5678").status_code == 400
    assert "office=sakata refused 400" in caplog.text and "LINE_CHANNEL_SECRET_SAKATA" in caplog.text
    unsigned = LineUser(client, "sakata", channel_secret=rt.config.channel_secret("sakata"))
    assert unsigned.post(unsigned.body(unsigned.text_event("x")), signature=False).status_code == 400
    assert "no X-Line-Signature" in caplog.text
    otaru = LineUser(client, "otaru", channel_secret=rt.config.channel_secret("otaru"))
    assert otaru.says("予約").status_code == 404
    assert "office=otaru refused 404: the office is disabled" in caplog.text
    assert LineUser(client, "osaka", channel_secret="x").says("予約").status_code == 404
    assert "osaka" not in caplog.text  # an unknown id is the client's text, not logged
    assert "refused 404: the address names no office; the webhook URLs are /callback/sakata" in caplog.text
    assert "/callback/otaru" not in caplog.text  # disabled: not a webhook URL to give LINE
    assert "山田" not in caplog.text and "090" not in caplog.text


def test_body_over_one_mib_is_413_and_writes_nothing(rt, client, sakata_user):
    event = sakata_user.text_event("予約")
    event["padding"] = "x" * (2 * MIB)
    raw = sakata_user.body(event)
    assert len(raw) > 2 * MIB
    assert signed_post(client, "sakata", raw, rt.config.channel_secret("sakata")).status_code == 413
    # Size is checked before the signature: a forged oversized body is 413 too.
    forged = client.post("/callback/sakata", data=raw, headers={"X-Line-Signature": "forged"})
    assert forged.status_code == 413
    assert counts(rt) == NOTHING


def test_unknown_office_is_checked_before_size(client):
    raw = b"{" + b" " * (2 * MIB) + b"}"
    assert client.post("/callback/nagoya", data=raw, headers={"X-Line-Signature": "x"}).status_code == 404


def test_a_disabled_office_is_checked_before_size(make_app, otaru_disabled_dir):
    """interface.md's order: an unknown or disabled office is 404 before a body over 1 MiB is 413."""
    client = make_app(offices_dir=str(otaru_disabled_dir)).test_client()
    raw = b"{" + b" " * (2 * MIB) + b"}"
    assert client.post("/callback/otaru", data=raw, headers={"X-Line-Signature": "x"}).status_code == 404
    assert client.post("/callback/sakata", data=raw, headers={"X-Line-Signature": "x"}).status_code == 413


def test_chunked_body_over_one_mib_is_413(app, rt, sakata_user):
    """A body without Content-Length (chunked) is limited while it is read."""
    import requests

    event = sakata_user.text_event("予約")
    event["padding"] = "x" * (2 * MIB)
    raw = sakata_user.body(event)

    def chunks():
        for i in range(0, len(raw), 65536):
            yield raw[i:i + 65536]

    with LiveServer(app) as server:
        try:
            response = requests.post(server.url + "/callback/sakata", data=chunks(), timeout=20, headers={
                "X-Line-Signature": sign(raw, rt.config.channel_secret("sakata"))})
            status = response.status_code
        except requests.ConnectionError:
            status = 413  # the server may answer and close before the client finished sending
    assert status == 413
    assert counts(rt) == NOTHING


def test_body_of_exactly_one_mib_is_read(rt, client, sakata_user):
    event = sakata_user.text_event("予約")
    raw = sakata_user.body(event)
    event["padding"] = "x" * (MIB - len(raw) - len(',"padding":""'))
    raw = sakata_user.body(event)
    assert len(raw) == MIB
    assert signed_post(client, "sakata", raw, rt.config.channel_secret("sakata")).status_code == 200


@pytest.mark.parametrize("signature", [False, "", "forged", "AAAA", "bm90IGEgc2lnbmF0dXJl"])
def test_missing_or_forged_signature_is_400_and_writes_nothing(rt, sakata_user, fake_line, signature):
    response = sakata_user.says("予約", signature=signature)
    assert response.status_code == 400
    assert counts(rt) == NOTHING
    assert fake_line.calls == []


def test_signature_of_another_office_is_400(rt, client, sakata_user):
    raw = sakata_user.body(sakata_user.text_event("予約"))
    otaru_signature = sign(raw, rt.config.channel_secret("otaru"))
    response = client.post("/callback/sakata", data=raw, headers={"X-Line-Signature": otaru_signature})
    assert response.status_code == 400
    assert counts(rt) == NOTHING


def test_signature_is_checked_before_the_body(rt, client):
    """A forged signature on a body that is not JSON is refused for the signature (400 either way)."""
    response = client.post("/callback/sakata", data=b"not json", headers={"X-Line-Signature": "forged"})
    assert response.status_code == 400
    assert counts(rt) == NOTHING


def test_a_forged_body_that_is_not_text_is_refused_for_its_signature(rt, client, caplog):
    """The signature is checked on the bytes as they came, before they are read as text: a forged body that is
    not UTF-8 is logged as what it is (not this channel's signature), never as a signed body LINE got wrong."""
    caplog.set_level(logging.WARNING, logger="bot.webhook")
    raw = b'{"events": [], "x": "\xff\xfe"}'
    forged = client.post("/callback/sakata", data=raw, content_type="application/json",
                         headers={"X-Line-Signature": sign(raw, "not the channel secret")})
    assert forged.status_code == 400
    assert "does not match the channel secret" in caplog.text and "signed, but" not in caplog.text
    caplog.clear()
    assert signed_post(client, "sakata", raw, rt.config.channel_secret("sakata")).status_code == 400
    assert "signed, but not a webhook body" in caplog.text
    assert counts(rt) == NOTHING


NOT_WEBHOOKS = {
    "invalid_json": b'{"events": [',
    "not_utf8": b'{"events": [], "x": "\xff\xfe"}',
    "empty": b"",
    "foo": b'{"foo": 1}',
    "events_is_a_number": b'{"events": 5}',
    "events_is_a_string": b'{"events": "abc"}',
    "events_is_an_object": b'{"events": {"a": 1}}',
    "top_level_list": b"[]",
    "top_level_string": b'"events"',
    "null": b"null",
    "event_is_a_number": b'{"events": [5]}',
    "event_is_null": b'{"events": [null]}',
    "event_without_type": b'{"events": [{}]}',
    "event_type_not_a_string": b'{"events": [{"type": 5}]}',
    "event_without_required_fields": b'{"events": [{"type": "message"}]}',
    "message_not_an_object": b'{"events": [{"type": "message", "message": 5}]}',
    "deeply_nested": b'{"events": [' + b"[" * 200_000 + b"]" * 200_000 + b"]}",
    "huge_number": b'{"events": [], "n": ' + b"9" * 100_000 + b"}",
}


@pytest.mark.pg_sample(every=4)
@pytest.mark.parametrize("name", sorted(NOT_WEBHOOKS))
def test_body_that_is_not_a_webhook_is_400_and_writes_nothing(rt, client, fake_line, name):
    raw = NOT_WEBHOOKS[name]
    assert len(raw) <= MIB
    response = signed_post(client, "sakata", raw, rt.config.channel_secret("sakata"))
    assert response.status_code == 400
    assert counts(rt) == NOTHING
    assert fake_line.calls == []


def test_empty_events_is_lines_verify_and_200(rt, client, fake_line):
    raw = json.dumps({"destination": fake_line.bot_user_id, "events": []}).encode()
    for office in ("sakata", "otaru"):
        assert signed_post(client, office, raw, rt.config.channel_secret(office)).status_code == 200
    assert counts(rt) == NOTHING
    assert fake_line.calls == []


def test_get_is_not_allowed(client):
    assert client.get("/callback/sakata").status_code == 405


def test_the_statements_of_an_event_are_compiled_once(rt, sakata_user, fake_line, monkeypatch):
    """Compiling a statement cost more than running it. The event's own statements (`bot.rawsql`) are
    compiled once per dialect, and what runs through SQLAlchemy comes from its cache (the dialects' own
    `insert()` would not). After a first pass, a known user's events compile nothing."""
    from sqlalchemy import event
    from sqlalchemy.sql.elements import CompilerElement

    seen: list[tuple[str, object]] = []
    compiled: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        if context.compiled is not None:  # a construct, not SQL text we issue ourselves (BEGIN)
            seen.append((" ".join(statement.split())[:60], context.cache_hit))

    original = CompilerElement.compile

    def counting(self, *args, **kwargs):
        compiled.append(str(self)[:60])
        return original(self, *args, **kwargs)

    sakata_user.says("ヘルプ")
    make_request(rt, user_id=sakata_user.user_id, notify=False)  # 予約確認 then loads it through the ORM
    for word in ("ヘルプ", "予約確認"):
        sakata_user.says(word)  # the first pass compiles and caches
    monkeypatch.setattr(CompilerElement, "compile", counting)
    event.listen(rt.db.engine, "before_cursor_execute", record)
    try:
        with watch(rt.db.engine) as driver:
            for word in ("ヘルプ", "予約確認"):
                sakata_user.says(word)
    finally:
        event.remove(rt.db.engine, "before_cursor_execute", record)
    dialect = rt.db.engine.dialect
    assert any(statement.startswith("INSERT INTO processed_events") for statement in driver)
    assert any(statement.startswith("SELECT bookings") for statement, _ in seen)  # 予約確認, through the ORM
    assert compiled == []
    assert [statement for statement, hit in seen if hit != dialect.CACHE_HIT] == []


def test_a_webhook_opens_no_cookie_session(app, sakata_user, monkeypatch):
    """LINE sends no cookie and the webhook reads no session: Flask's cookie session is not opened for it (a
    signing serializer built and the cookies read on every event, 14 µs, measured alone). Counted, not timed; the
    pages still open theirs."""
    built: list[str] = []
    original = SecureCookieSessionInterface.get_signing_serializer

    def counting(self, application):
        built.append(request.path)
        return original(self, application)

    monkeypatch.setattr(SecureCookieSessionInterface, "get_signing_serializer", counting)
    sakata_user.says("ヘルプ")
    assert built == []
    assert app.test_client().get("/terms/sakata").status_code == 200
    assert built and set(built) == {"/terms/sakata"}


# -- the same body again ------------------------------------------------------------------------

def test_same_body_twice_has_one_effect(rt, sakata_user, fake_line):
    event = sakata_user.text_event("予約")
    body = sakata_user.body(event)
    assert sakata_user.post(body).status_code == 200
    state = conversation(rt, sakata_user).state
    assert sakata_user.post(body).status_code == 200
    assert len(fake_line.deliveries()) == 1
    assert len(outbox_rows(rt)) == 1
    assert conversation(rt, sakata_user).state == state
    assert counts(rt)["processed_events"] == 1


def test_redelivery_has_no_second_effect(rt, sakata_user, fake_line):
    event = sakata_user.text_event("予約")
    assert sakata_user.post(sakata_user.body(event)).status_code == 200
    before = conversation(rt, sakata_user)
    again = as_redelivery(event)
    assert again["deliveryContext"]["isRedelivery"] is True
    assert sakata_user.post(sakata_user.body(again)).status_code == 200
    after = conversation(rt, sakata_user)
    assert (after.state, after.context, after.last_event_ms) == (before.state, before.context, before.last_event_ms)
    assert len(fake_line.deliveries()) == 1
    assert len(outbox_rows(rt)) == 1


def test_redelivery_inside_a_batch_is_skipped_while_new_events_are_handled(rt, sakata_user, fake_line):
    first = sakata_user.text_event("予約", timestamp=rt.clock.now())
    sakata_user.post(sakata_user.body(first))
    rt.clock.advance(seconds=5)
    second = sakata_user.text_event("ヘルプ")
    assert sakata_user.post(sakata_user.body([as_redelivery(first), second])).status_code == 200
    assert [r.source_event_id for r in outbox_rows(rt)] == [first["webhookEventId"], second["webhookEventId"]]
    assert len(fake_line.deliveries("reply")) == 2


def test_same_body_concurrently_has_one_effect(app, rt, user_factory, fake_line):
    """Eight deliveries of one body at the same moment, on a real threaded server: one reply."""
    with LiveServer(app) as server:
        user = LineUser(server.url, "sakata", channel_secret=rt.config.channel_secret("sakata"), fake=fake_line,
                        clock=rt.clock)
        event = user.text_event("予約")
        raw = user.body(event)
        statuses = post_concurrently(server.url, "/callback/sakata", raw, sign(raw, user.channel_secret), 8)
    assert statuses == [200] * 8
    assert len(fake_line.deliveries("reply")) == 1
    assert len(outbox_rows(rt)) == 1
    assert counts(rt)["processed_events"] == 1
    assert counts(rt)["conversations"] == 1


def test_same_body_concurrently_through_separate_clients(app, rt, fake_line):
    """As two gunicorn workers would: separate test clients in threads, one effect."""
    user = LineUser(app.test_client(), "otaru", channel_secret=rt.config.channel_secret("otaru"), fake=fake_line,
                    clock=rt.clock)
    raw = user.body(user.follow_event())
    headers = {"X-Line-Signature": sign(raw, user.channel_secret), "Content-Type": "application/json"}
    barrier = threading.Barrier(4)
    statuses: list[int] = []

    def one():
        client = app.test_client()
        barrier.wait(timeout=10)
        statuses.append(client.post("/callback/otaru", data=raw, headers=headers).status_code)

    threads = [threading.Thread(target=one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert statuses == [200] * 4
    assert len(fake_line.texts_to(user.user_id)) == 1


# -- standby, order, one at a time --------------------------------------------------------------

def test_standby_sends_nothing_and_changes_nothing(rt, sakata_user, fake_line):
    assert sakata_user.says("予約", mode="standby").status_code == 200
    assert sakata_user.follows(mode="standby").status_code == 200
    assert fake_line.calls == []
    assert outbox_rows(rt) == []
    assert conversation(rt, sakata_user) is None


def test_a_block_or_unblock_in_standby_still_says_whether_the_user_can_be_pushed_to(rt, sakata_user, fake_line):
    """Another channel (a module) answers the chat, so nothing is sent; but a block is a block: a confirmation
    must not be pushed to a user who blocked meanwhile, nor withheld from one who unblocked (LINE leaves the
    reply token out of a standby follow, which the SDK's model requires)."""
    now_ms = int(rt.clock.now().timestamp() * 1000)
    sakata_user.says("予約", timestamp=now_ms)
    calls = len(fake_line.calls)
    assert sakata_user.unfollows(mode="standby", timestamp=now_ms + 1000).status_code == 200
    assert conversation(rt, sakata_user).followed is False
    # An older unblock arriving late changes nothing.
    assert sakata_user.follows(unblocked=True, mode="standby", timestamp=now_ms + 500).status_code == 200
    assert conversation(rt, sakata_user).followed is False
    assert sakata_user.follows(unblocked=True, mode="standby", timestamp=now_ms + 2000).status_code == 200
    conv = conversation(rt, sakata_user)
    assert conv.followed is True and conv.state == "awaiting_consent"
    assert len(fake_line.calls) == calls   # nothing sent in standby
    assert [r.kind for r in outbox_rows(rt)] == ["reply"]


def test_events_in_one_body_are_handled_by_timestamp(rt, sakata_user, fake_line):
    """予約 (older) then 中止 (newer), delivered newest first: handled oldest first, so the booking stops."""
    now_ms = int(rt.clock.now().timestamp() * 1000)
    start = sakata_user.text_event("予約", timestamp=now_ms)
    stop = sakata_user.text_event("中止", timestamp=now_ms + 1000)
    assert sakata_user.post(sakata_user.body([stop, start])).status_code == 200
    rows = outbox_rows(rt)
    assert [r.source_event_id for r in rows] == [start["webhookEventId"], stop["webhookEventId"]]
    conv = conversation(rt, sakata_user)
    assert conv.state == "idle"
    assert conv.last_event_ms == now_ms + 1000
    # The replies went out in the same order.
    assert [d.reply_token for d in fake_line.deliveries("reply")] == [start["replyToken"], stop["replyToken"]]


def test_an_older_event_arriving_later_is_stale_and_changes_nothing(rt, sakata_user, fake_line):
    now_ms = int(rt.clock.now().timestamp() * 1000)
    assert sakata_user.says("予約", timestamp=now_ms + 1000).status_code == 200
    before = conversation(rt, sakata_user)
    assert before.state != "idle"
    # 中止 was sent earlier, but arrives after: it must not stop the booking.
    assert sakata_user.says("中止", timestamp=now_ms).status_code == 200
    after = conversation(rt, sakata_user)
    assert after.state == before.state
    assert after.context == before.context
    assert after.last_event_ms == now_ms + 1000
    # It is still answered (with the current step), never silently dropped.
    assert len(fake_line.deliveries("reply")) == 2


@pytest.mark.parametrize("late", ["text", "sticker", "button"])
def test_a_late_message_is_not_called_a_button(rt, sakata_user, fake_line, late):
    """A typed text or a sticker that arrives after a newer event is answered as a message that came late,
    with the step in hand; only a late postback is 'that button'."""
    now_ms = int(rt.clock.now().timestamp() * 1000)

    def first_line(send) -> str:
        before = len(sakata_user.texts())
        send()
        return sakata_user.texts()[before].split("\n")[0]

    sakata_user.says("予約", timestamp=now_ms + 1000)
    send = {"text": lambda: sakata_user.says("はい", timestamp=now_ms),
            "sticker": lambda: sakata_user.sends_sticker(timestamp=now_ms),
            "button": lambda: sakata_user.taps("a=disagree&at=awaiting_consent&o=sakata", timestamp=now_ms)}[late]
    answer = first_line(send)
    assert conversation(rt, sakata_user).state == "awaiting_consent"
    if late == "button":
        assert "そのボタンは" in answer
        return
    assert "ボタン" not in answer and "前後して届いた" in answer
    sakata_user.says("中止", timestamp=now_ms + 4000)          # and once nothing is in progress
    answer = first_line(lambda: sakata_user.says("はい", timestamp=now_ms + 3500))
    assert conversation(rt, sakata_user).state == "idle"
    assert "ボタン" not in answer and "前後して届いた" in answer


def test_an_older_follow_after_unfollow_does_not_mark_the_user_following(rt, sakata_user, fake_line):
    now_ms = int(rt.clock.now().timestamp() * 1000)
    sakata_user.unfollows(timestamp=now_ms + 1000)
    assert sakata_user.follows(timestamp=now_ms).status_code == 200
    assert conversation(rt, sakata_user).followed is False
    assert fake_line.calls == []


def test_events_of_one_user_are_handled_one_at_a_time(app, rt, fake_line, monkeypatch):
    """Different events of one user posted at once never run the dialog side by side."""
    from dialogs import engine

    real = engine.handle
    active: dict[str, int] = {}
    most = {"seen": 0}
    lock = threading.Lock()

    def watched(talk, inp, vocab):
        key = talk.ports.conv.line_user_id
        with lock:
            active[key] = active.get(key, 0) + 1
            most["seen"] = max(most["seen"], active[key])
        try:
            time.sleep(0.05)  # widen the window a race would need
            return real(talk, inp, vocab)
        finally:
            with lock:
                active[key] -= 1

    monkeypatch.setattr(engine, "handle", watched)
    with LiveServer(app) as server:
        user = LineUser(server.url, "sakata", channel_secret=rt.config.channel_secret("sakata"), fake=fake_line,
                        clock=rt.clock)
        now_ms = int(rt.clock.now().timestamp() * 1000)
        events = [user.text_event(word, timestamp=now_ms + i) for i, word in
                  enumerate(["予約", "ヘルプ", "予約確認", "ヘルプ"])]
        barrier = threading.Barrier(len(events))
        statuses: list[int] = []

        def post(ev):
            barrier.wait(timeout=10)
            statuses.append(user.post(user.body(ev)).status_code)

        threads = [threading.Thread(target=post, args=(ev,)) for ev in events]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
    assert statuses == [200] * 4
    assert most["seen"] == 1
    assert counts(rt)["processed_events"] == 4
    assert counts(rt)["conversations"] == 1


# -- every event type ---------------------------------------------------------------------------

def test_follow_is_greeted_with_what_the_account_does(rt, sakata_user, otaru_user, fake_line):
    assert sakata_user.follows().status_code == 200
    greeting = sakata_user.texts()
    assert len(greeting) == 1 and "予約" in greeting[0] and "ハローワーク酒田" in greeting[0]
    assert otaru_user.follows(unblocked=True).status_code == 200
    assert "予約" in otaru_user.texts()[0] and "ハローワーク小樽" in otaru_user.texts()[0]
    assert conversation(rt, sakata_user).followed is True


def test_unfollow_marks_the_user_and_nothing_is_pushed_afterwards(app, rt, sakata_user, fake_line):
    from bot import outbox

    sakata_user.says("予約")
    assert sakata_user.unfollows().status_code == 200
    conv = conversation(rt, sakata_user)
    assert conv.followed is False
    calls = len(fake_line.calls)
    assert calls == 1  # the reply to 予約; unfollow has no reply token and sends nothing
    # Something later wants to push to them (e.g. a staff decision): it is skipped, not sent.
    with rt.db.transaction() as s:
        outbox.add(s, office="sakata", kind="push", recipient=sakata_user.user_id,
                   messages=[{"type": "text", "text": "x"}], now=rt.clock.now())
    Worker(rt).run_once()
    assert len(fake_line.calls) == calls
    assert [r.status for r in outbox_rows(rt) if r.kind == "push"] == ["skipped"]
    # Their data stays (the conversation is kept until retention ends).
    assert conversation(rt, sakata_user) is not None
    # Following again makes them reachable again.
    sakata_user.follows(unblocked=True)
    assert conversation(rt, sakata_user).followed is True

def test_a_user_who_writes_follows_though_their_unblock_was_lost(rt, sakata_user, monkeypatch, fake_line):
    """LINE takes a message only from a user who follows the account: when the unblock's follow event was lost
    (the database down as it came: apologised, acknowledged, never redelivered), the user's next message says
    they follow again, so that what is pushed to them later (a decision) reaches them instead of being skipped."""
    from sqlalchemy.exc import OperationalError

    from bot import dispatch, outbox

    sakata_user.says("予約")
    sakata_user.unfollows()
    assert conversation(rt, sakata_user).followed is False

    def cannot_connect(self, *args):
        raise OperationalError("connect", {}, Exception("connection refused"))

    with monkeypatch.context() as m:
        m.setattr(dispatch.Dispatcher, "_handle", cannot_connect)
        assert sakata_user.follows(unblocked=True).status_code == 200   # lost: rolled back, 200, no redelivery
    assert conversation(rt, sakata_user).followed is False
    assert sakata_user.says("予約確認").status_code == 200
    assert conversation(rt, sakata_user).followed is True
    with rt.db.transaction() as s:
        outbox.add(s, office="sakata", kind="push", recipient=sakata_user.user_id,
                   messages=[{"type": "text", "text": "x"}], now=rt.clock.now())
    Worker(rt).run_once()
    assert [r.status for r in outbox_rows(rt) if r.kind == "push"] == ["sent"]


def test_a_late_message_from_before_a_block_does_not_say_the_user_follows(rt, sakata_user, fake_line):
    """A message sent before the block and delivered after it (LINE's redelivery) is no sign of following."""
    early = sakata_user.text_event("予約確認")
    rt.clock.advance(seconds=5)
    sakata_user.unfollows()
    sakata_user.send(early)
    assert conversation(rt, sakata_user).followed is False


def test_text_is_answered(sakata_user, fake_line):
    assert sakata_user.says("こんにちは").status_code == 200
    assert len(sakata_user.texts()) >= 1


def test_text_with_awkward_characters_is_answered(rt, sakata_user, fake_line):
    texts = ("\u0000", "'; DROP TABLE outbox; --", "🙂" * 100, "ｙｏｙａｋｕ", "a" * 5000, " ", "\ud7ff\ufeff")
    for text in texts:
        assert sakata_user.says(text).status_code == 200
    assert len(fake_line.deliveries("reply")) == len(texts)


def test_sticker_is_answered_kindly(sakata_user):
    assert sakata_user.sends_sticker().status_code == 200
    assert "スタンプ" in sakata_user.texts()[-1]


def _media(user: LineUser, kind: str) -> dict:
    base = {"id": "5" * 18, "type": kind}
    if kind in ("image", "video", "audio"):
        base.update(quoteToken="q" * 40, contentProvider={"type": "line"})
    if kind in ("video", "audio"):
        base["duration"] = 1234
    if kind == "file":
        base.update(fileName="履歴書.pdf", fileSize=2048)
    if kind == "location":
        base.update(title="酒田市役所", address="山形県酒田市本町二丁目2-45", latitude=38.9, longitude=139.8)
    return user.event("message", message=base)


@pytest.mark.parametrize("kind", ["image", "video", "audio", "file", "location"])
def test_media_is_answered_kindly_and_never_downloaded(rt, sakata_user, fake_line, kind):
    assert sakata_user.send(_media(sakata_user, kind)).status_code == 200
    texts = sakata_user.texts()
    assert len(texts) == 1 and "予約" in texts[0]
    assert [c.path for c in fake_line.calls] == ["/v2/bot/message/reply"]
    assert not any("/content" in c.path for c in fake_line.calls)


def test_files_at_otaru_are_told_the_documents_route(otaru_user, fake_line):
    otaru_user.send(_media(otaru_user, "file"))
    text = otaru_user.texts()[-1]
    assert "s-otaru.sm@hkdrdk.go.jp" in text
    assert text.count("応募書類") == 1  # the office's own sentence, not prefixed twice
    assert not any("/content" in c.path for c in fake_line.calls)


@pytest.mark.parametrize("data", [
    "", "garbage", "a=agree", "a=agree&at=awaiting_consent&o=otaru", "a=nuke&at=idle&o=sakata",
    "a=slot&v=2026-12-07T14:00:00+09:00&at=awaiting_slot:0&o=sakata", "a=" + "x" * 400, "%%%%",
])
def test_unknown_or_forged_postback_is_answered_with_the_current_step(rt, sakata_user, data):
    sakata_user.says("予約")
    before = conversation(rt, sakata_user)
    assert before.state == "awaiting_consent"
    told = len(sakata_user.texts())
    assert sakata_user.taps(data).status_code == 200
    after = conversation(rt, sakata_user)
    assert (after.state, after.context) == (before.state, before.context)
    answer = sakata_user.texts()[told:]     # the tap's own answer: the consent prompt before it says 同意 too
    assert len(answer) == 2 and "「同意する」ボタンを押す" in answer[-1]  # the consent step is asked again


def test_forged_postback_at_idle_changes_nothing(rt, sakata_user):
    assert sakata_user.taps("a=agree&at=awaiting_consent&o=sakata").status_code == 200
    conv = conversation(rt, sakata_user)
    assert conv.state == "idle"
    [answer] = sakata_user.texts()
    assert "現在お使いいただけません" in answer and "「予約」" in answer   # the stale button, and the way to start


def test_join_records_the_group_for_setting_up_the_staff_group(rt, staff_group_factory, fake_line):
    group = staff_group_factory("sakata")
    assert group.joins().status_code == 200
    with rt.db.reading() as s:
        sighting = s.scalar(select(StaffGroupSighting))
        assert (sighting.office_id, sighting.group_id, sighting.left_at) == ("sakata", group.group_id, None)
    assert fake_line.calls == []  # no staff group configured: the bot stays, says nothing
    assert group.leaves().status_code == 200
    with rt.db.reading() as s:
        assert s.scalar(select(StaffGroupSighting)).left_at is not None


def test_a_chat_word_in_a_group_is_told_to_book_in_a_one_to_one_chat(rt, staff_group_factory, fake_line):
    """A job seeker added the bot to a group (no staff group configured, so it stays): 予約 there is answered in
    the group, once per message, with where booking works; other talk there is not answered."""
    group = staff_group_factory("sakata")
    assert group.joins().status_code == 200
    assert group.says("よろしくお願いします").status_code == 200
    assert fake_line.texts_to(group.group_id) == []
    assert group.says("予約").status_code == 200
    [hint] = fake_line.texts_to(group.group_id)
    assert "1対1のトーク" in hint and "「予約」" in hint and "友だち追加" in hint
    assert [d.kind for d in fake_line.deliveries()] == ["reply"]
    with rt.db.reading() as s:
        assert s.scalar(select(func.count()).select_from(Conversation)) == 0   # no conversation for a group


def test_the_hint_in_a_group_is_never_pushed_when_its_reply_cannot_go(rt, staff_group_factory, fake_line):
    """A push to a group counts once per member against the month's quota, and the hint answers one message:
    when its reply token is refused or gone, it is not sent at all."""
    group = staff_group_factory("sakata")
    event = group.text_event("予約")
    fake_line.expire_reply_token(event["replyToken"])
    assert group.send(event).status_code == 200
    Worker(rt).run_once()
    rt.clock.advance(minutes=5)
    Worker(rt).run_once()
    assert [d.kind for d in fake_line.deliveries()] == []
    assert [(r.kind, r.status) for r in outbox_rows(rt)] == [("reply", "skipped")]


@pytest.fixture
def staffed(make_app, fake_line):
    """An app whose Sakata office has a configured staff group."""
    staff_id = "C" + "5" * 32
    app = make_app(env={"LINE_STAFF_GROUP_ID_SAKATA": staff_id})
    rt = app.extensions["madoguchi"]
    client = app.test_client()

    def group(group_id=None):
        return StaffGroup(client, "sakata", channel_secret=rt.config.channel_secret("sakata"), fake=fake_line,
                          clock=rt.clock, group_id=group_id)

    return rt, staff_id, group


def test_once_a_staff_group_is_configured_the_bot_leaves_other_groups(staffed, fake_line):
    rt, staff_id, group = staffed
    other = group()
    assert other.joins().status_code == 200
    rows = outbox_rows(rt)
    assert [(r.kind, r.recipient) for r in rows] == [("leave_group", other.group_id)]
    Worker(rt).run_once()
    assert fake_line.left_groups == [other.group_id]
    assert outbox_rows(rt)[0].status == "sent"
    # The staff group itself is recorded and kept.
    assert group(staff_id).joins().status_code == 200
    Worker(rt).run_once()
    assert fake_line.left_groups == [other.group_id]
    with rt.db.reading() as s:
        assert {g.group_id for g in s.scalars(select(StaffGroupSighting))} == {other.group_id, staff_id}


def test_a_message_in_another_group_makes_the_bot_leave_once(staffed, fake_line):
    rt, _staff_id, group = staffed
    other = group()
    assert other.says("こんにちは").status_code == 200
    assert other.says("まだいる？").status_code == 200
    assert [(r.kind, r.recipient) for r in outbox_rows(rt)] == [("leave_group", other.group_id)]
    Worker(rt).run_once()
    assert fake_line.left_groups == [other.group_id]
    assert fake_line.texts_to(other.group_id) == []


def test_a_room_is_left_through_the_room_endpoint(staffed, fake_line):
    rt, _staff_id, group = staffed
    chat = group()
    room_id = "R" + "7" * 32
    event = chat.event("join", source={"type": "room", "roomId": room_id})
    assert chat.send(event).status_code == 200
    assert [(r.kind, r.recipient) for r in outbox_rows(rt)] == [("leave_room", room_id)]
    Worker(rt).run_once()
    assert [c.path for c in fake_line.calls] == [f"/v2/bot/room/{room_id}/leave"]


def test_member_events_are_acknowledged_and_ignored(rt, staff_group_factory, fake_line):
    group = staff_group_factory("otaru")
    assert group.member_joins().status_code == 200
    assert group.member_leaves().status_code == 200
    assert group.says("よろしくお願いします").status_code == 200
    assert fake_line.calls == []
    assert counts(rt)["outbox"] == 0


FUTURE_EVENTS = ["brandNewThing", "membership", "module", "activated", "botSuspended", "unsend",
                 "videoPlayComplete", "beacon", "accountLink", "things"]


@pytest.mark.parametrize("kind", FUTURE_EVENTS)
def test_other_and_unknown_event_types_are_200_and_ignored(rt, sakata_user, fake_line, kind):
    event = sakata_user.event(kind)   # with a reply token where LINE gives one
    event["somethingNew"] = {"x": [1, 2, 3]}
    assert sakata_user.send(event).status_code == 200
    assert fake_line.calls == []
    assert counts(rt)["outbox"] == 0
    assert conversation(rt, sakata_user) is None


def test_an_unknown_event_does_not_make_a_later_real_event_stale(rt, sakata_user):
    now_ms = int(rt.clock.now().timestamp() * 1000)
    sakata_user.send(sakata_user.event("brandNewThing", reply=False, timestamp=now_ms + 5000))
    sakata_user.says("予約", timestamp=now_ms)
    assert conversation(rt, sakata_user).state == "awaiting_consent"


def test_every_event_type_in_one_body_is_200(rt, sakata_user, staff_group_factory, fake_line):
    group = staff_group_factory("sakata")
    user = sakata_user
    events = [
        user.follow_event(), user.text_event("予約"), user.postback_event("garbage"),
        user.event("message", message=user.sticker_message()), _media(user, "image"), _media(user, "video"),
        _media(user, "audio"), _media(user, "file"), _media(user, "location"),
        group.event("join", source={"type": "group", "groupId": group.group_id}),
        group.event("memberJoined", source={"type": "group", "groupId": group.group_id},
                    joined={"members": [{"type": "user", "userId": user.user_id}]}),
        group.event("memberLeft", source={"type": "group", "groupId": group.group_id},
                    left={"members": [{"type": "user", "userId": user.user_id}]}),
        group.event("leave", source={"type": "group", "groupId": group.group_id}),
        user.event("brandNewThing", reply=False), user.unfollow_event(),
    ]
    now_ms = int(rt.clock.now().timestamp() * 1000)
    for i, event in enumerate(events):
        event["timestamp"] = now_ms + i
    assert user.post(user.body(events)).status_code == 200
    assert counts(rt)["processed_events"] == len(events)
    assert conversation(rt, user).followed is False


def test_one_failing_event_is_rolled_back_alone_and_the_answer_is_still_200(rt, sakata_user, otaru_user,
                                                                          monkeypatch, fake_line):
    """Everything an event writes (dedupe mark, state, outbox) commits together or not at all."""
    from bot import dispatch

    real_insert, real_queue = dispatch.event_rows.insert_outbox, dispatch.outbox.queue_to_user

    def insert_then_fail(conn, rows):  # the event's reply
        real_insert(conn, rows)
        if any(row.recipient == sakata_user.user_id for row in rows):
            raise RuntimeError("boom after queueing")

    def queue_then_fail(session, **kwargs):  # the apology
        rows = real_queue(session, **kwargs)
        session.flush()
        if kwargs["user_id"] == sakata_user.user_id:
            raise RuntimeError("boom after queueing")
        return rows

    monkeypatch.setattr(dispatch.event_rows, "insert_outbox", insert_then_fail)
    monkeypatch.setattr(dispatch.outbox, "queue_to_user", queue_then_fail)
    failing = sakata_user.text_event("予約")
    assert sakata_user.post(sakata_user.body(failing)).status_code == 200
    assert counts(rt) == NOTHING
    assert otaru_user.says("予約").status_code == 200
    assert counts(rt)["outbox"] == 1 and counts(rt)["processed_events"] == 1
    [apology] = fake_line.texts_to(sakata_user.user_id)  # queueing fails for this user: sent without the outbox
    assert apology.startswith(TROUBLE_JA)


TROUBLE_JA = "申し訳ありません。システムの不具合"


def _break_the_dialog(monkeypatch):
    from dialogs import engine

    def broken(*args, **kwargs):
        raise RuntimeError("a bug in a dialog step")

    monkeypatch.setattr(engine, "handle", broken)


def test_a_failing_event_is_answered_with_an_apology_in_the_users_language(rt, user_factory, monkeypatch,
                                                                           fake_line):
    """A bug rolls the event back; the user is told, through the outbox, and may simply send it again."""
    japanese, english = user_factory("sakata"), user_factory("sakata")
    english.says("English")
    before = counts(rt)
    _break_the_dialog(monkeypatch)
    assert japanese.says("予約").status_code == 200
    assert english.says("予約").status_code == 200
    assert fake_line.texts_to(japanese.user_id)[-1].startswith(TROUBLE_JA)
    assert fake_line.texts_to(english.user_id)[-1].startswith("We are sorry")
    after = counts(rt)
    assert after["processed_events"] == before["processed_events"], "the failed events stay unclaimed"
    with rt.db.reading() as s:
        rows = s.scalars(select(OutboxMessage).where(OutboxMessage.purpose == "trouble")).all()
        assert [r.status for r in rows] == ["sent", "sent"]
    monkeypatch.undo()
    assert english.says("予約").status_code == 200  # sent again, it works
    assert "We are sorry" not in fake_line.texts_to(english.user_id)[-1]


def test_with_the_database_down_the_apology_goes_straight_to_line(rt, sakata_user, monkeypatch, fake_line):
    from sqlalchemy.exc import OperationalError

    def down(*args, **kwargs):
        raise OperationalError("SELECT 1", {}, Exception("connection refused"))

    monkeypatch.setattr(rt.db, "transaction", down)
    monkeypatch.setattr(rt.db, "connected", down)
    assert sakata_user.says("予約").status_code == 200
    [apology] = fake_line.texts_to(sakata_user.user_id)
    assert apology.startswith(TROUBLE_JA)


@pytest.mark.parametrize("what", ["follow", "unblock", "button"])
def test_with_the_database_down_the_apology_says_what_was_not_taken_and_what_to_do(rt, sakata_user, monkeypatch,
                                                                                     fake_line, what):
    """Not every event is a message: a friend added (or an unblock) while the database is down gets no greeting, so
    the apology says the guidance could not be sent and names the word that starts (or resumes) a booking; a tap
    is asked to be tapped again, nothing changed."""
    from sqlalchemy.exc import OperationalError

    def down(*args, **kwargs):
        raise OperationalError("SELECT 1", {}, Exception("connection refused"))

    monkeypatch.setattr(rt.db, "transaction", down)
    monkeypatch.setattr(rt.db, "connected", down)
    send = {"follow": sakata_user.follows, "unblock": lambda: sakata_user.follows(unblocked=True),
            "button": lambda: sakata_user.taps("a=agree&at=awaiting_consent&o=sakata")}[what]
    assert send().status_code == 200
    [apology] = fake_line.texts_to(sakata_user.user_id)
    assert apology.startswith("申し訳ありません。") and "メッセージ" not in apology.split("\n")[0]
    if what == "button":
        assert "もう一度押してください" in apology and "何も変更していません" in apology
    else:
        assert "「予約」と送ってください" in apology and "お送りください" not in apology


def test_a_delivery_that_fails_after_another_delivery_answered_does_not_apologise(rt, sakata_user, monkeypatch,
                                                                                   fake_line):
    """LINE sent the event twice; one delivery answered it, the other then failed (it could not connect in
    time, say): an apology on the same reply token would race the answer, so there is none."""
    from sqlalchemy.exc import OperationalError

    from bot import dispatch

    event = sakata_user.text_event("予約")
    raw = sakata_user.body(event)
    assert sakata_user.post(raw).status_code == 200
    answered = fake_line.texts_to(sakata_user.user_id)

    def cannot_connect(self, *args):
        raise OperationalError("connect", {}, Exception("connection timeout expired"))

    monkeypatch.setattr(dispatch.Dispatcher, "_handle", cannot_connect)
    assert sakata_user.post(raw).status_code == 200
    assert fake_line.texts_to(sakata_user.user_id) == answered
    assert [r.purpose for r in outbox_rows(rt)] == ["chat"], "the answer only, no apology queued"


def test_a_failing_group_event_gets_no_apology(rt, staff_group_factory, monkeypatch, fake_line):
    from bot import dispatch

    def broken(self, *args, **kwargs):
        raise RuntimeError("a bug in a group step")

    monkeypatch.setattr(dispatch.Dispatcher, "_group_event", broken)
    group = staff_group_factory("sakata")
    assert group.says("こんにちは").status_code == 200
    assert fake_line.deliveries() == []


# -- logs ---------------------------------------------------------------------------------------

def test_logs_hold_no_message_text(rt, sakata_user, staff_group_factory, caplog, fake_line):
    secret_words = "ヤマダタロウ12345-678901"
    caplog.set_level(logging.DEBUG)
    sakata_user.says(secret_words)
    sakata_user.says("予約")
    sakata_user.says(secret_words)
    sakata_user.taps(secret_words)
    sakata_user.send(sakata_user.event("brandNewThing", reply=False, note=secret_words))
    sakata_user.sends_location(title=secret_words, address=secret_words)
    staff_group_factory("sakata").says(secret_words)
    fake_line.fail_next(status=500, path_contains="reply")
    sakata_user.says(secret_words)
    Worker(rt).run_once()
    assert caplog.records, "the bot logs what it does (ids and states)"
    for record in caplog.records:
        assert secret_words not in record.getMessage()
        assert "12345" not in record.getMessage()
    assert secret_words not in caplog.text
    assert any("event=" in r.getMessage() for r in caplog.records)


def test_a_database_error_logs_no_values(rt, sakata_user, monkeypatch, caplog):
    """SQL errors are logged without their bound parameters (they may hold what a user wrote)."""
    from sqlalchemy import text

    from bot import dispatch

    secret_words = "ヤマダハナコ98765-432109"

    def failing_insert(session, **kwargs):
        session.execute(text("INSERT INTO app_settings (key, value) VALUES (:k, :v)"), {"k": None, "v": secret_words})
        return []

    monkeypatch.setattr(dispatch.outbox, "queue_to_user", failing_insert)  # the apology fails the same way
    monkeypatch.setattr(dispatch.event_rows, "insert_outbox", lambda conn, rows: failing_insert(conn))
    caplog.set_level(logging.DEBUG)
    assert sakata_user.says("予約").status_code == 200
    assert "IntegrityError" in caplog.text
    assert secret_words not in caplog.text
    assert counts(rt) == NOTHING


def test_a_database_error_on_the_events_own_rows_logs_no_values(rt, sakata_user, monkeypatch, caplog):
    """The same for the statements run on the driver's cursor (`bot.rawsql`): SQLAlchemy's error, no values."""
    from sqlalchemy import text
    from sqlalchemy.exc import IntegrityError

    from bot import dispatch, rawsql

    secret_words = "ヤマダハナコ98765-432109"
    failing = rawsql.Statement(text("INSERT INTO app_settings (key, value) VALUES (:k, :v)"))
    raised: list[BaseException] = []

    def failing_insert(conn, rows):
        try:
            failing.rowcount(conn, {"k": None, "v": secret_words})
        except Exception as error:
            raised.append(error)
            raise

    monkeypatch.setattr(dispatch.event_rows, "insert_outbox", failing_insert)
    caplog.set_level(logging.DEBUG)
    assert sakata_user.says("予約").status_code == 200
    [error] = raised
    assert isinstance(error, IntegrityError) and not error.connection_invalidated
    assert error.params is None and secret_words not in caplog.text
    assert "IntegrityError" in caplog.text
    assert counts(rt)["processed_events"] == 0 and counts(rt)["conversations"] == 0
    [apology] = [r for r in outbox_rows(rt) if r.purpose == "trouble"]  # queued and sent as any reply
    assert apology.status == "sent"


def test_nothing_counts_as_signed_under_a_missing_channel_secret():
    """An empty key is one anybody can sign with: without the channel's secret no body is taken as LINE's."""
    from bot.webhook import _signed

    raw = b'{"events": []}'
    assert not _signed(raw, sign(raw, ""), "") and not _signed(raw, sign(raw, ""), None)
    assert _signed(raw, sign(raw, "secret"), "secret")
