"""The test kit tests itself: FakeLineApi driven by the real v3 SDK, LineUser checked by its parser."""
from __future__ import annotations

import json
import os
import re
import struct
import threading
import time
import zlib
from pathlib import Path

import pytest
import requests
import urllib3
from flask import Flask, request
from linebot.v3 import WebhookParser
from linebot.v3.exceptions import InvalidSignatureError
from linebot.v3.messaging import (
    ApiClient,
    ApiException,
    BroadcastRequest,
    Configuration,
    FlexBubble,
    FlexBox,
    FlexMessage,
    FlexText,
    MessagingApi,
    MessagingApiBlob,
    MulticastRequest,
    PushMessageRequest,
    ReplyMessageRequest,
    RichMenuArea,
    RichMenuBounds,
    RichMenuRequest,
    RichMenuSize,
    PostbackAction,
    ShowLoadingAnimationRequest,
    TextMessage,
)
from linebot.v3.webhooks import (
    FollowEvent,
    ImageMessageContent,
    JoinEvent,
    LeaveEvent,
    LocationMessageContent,
    MemberJoinedEvent,
    MemberLeftEvent,
    MessageEvent,
    PostbackEvent,
    StickerMessageContent,
    TextMessageContent,
    UnfollowEvent,
)
from linebot.v3.models.events import UnknownEvent  # what WebhookParser yields for shapes it cannot read

from tests.fakeline import MSG_MONTHLY_LIMIT, MSG_RATE_LIMIT, FakeLineApi
from tests.lineuser import LineUser, StaffGroup, as_redelivery, sign, ulid

pytest_plugins = ["pytester"]   # the fixture's isolation, checked on a run of two tests of its own

ROOT = Path(__file__).resolve().parent.parent
SECRET = "0123456789abcdef0123456789abcdef"
KEY = "123e4567-e89b-12d3-a456-426614174000"
USER = "U" + "a" * 32
GROUP = "C" + "b" * 32
T = 2  # seconds: every SDK call passes _request_timeout


@pytest.fixture
def fake():
    with FakeLineApi() as server:
        yield server
    assert server.errors == []


@pytest.fixture
def api(fake):
    with ApiClient(Configuration(host=fake.url, access_token="t")) as client:
        yield MessagingApi(client)


def text(*texts):
    return [TextMessage(text=t) for t in texts]


def text_json(*texts):
    return [{"type": "text", "text": t} for t in texts]


def push(api, to=USER, msg="hi", key=None, timeout=T):
    return api.push_message(PushMessageRequest(to=to, messages=text(msg)), x_line_retry_key=key,
                            _request_timeout=timeout)


def raw_post(fake, path, body, headers=None):
    hdrs = {"Authorization": "Bearer t", "Content-Type": "application/json"}
    hdrs.update(headers or {})
    return requests.post(fake.url + path, data=json.dumps(body), headers=hdrs, timeout=T)


def wait_for(predicate, seconds=3.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def png(width=2500, height=843) -> bytes:
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0")) + chunk(b"IEND", b"")


# ------------------------------------------------------------------ server basics


def test_url_is_loopback_with_ephemeral_port(fake):
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", fake.url)
    assert fake.port > 0


def test_a_call_from_a_test_that_has_ended_is_kept_apart_from_the_running_test(fake):
    """One server for a test process: a test's turn tags its url, and a call with an earlier turn's tag (a thread
    the first test left running) is refused and kept apart, naming that test; the second test records nothing."""
    fake.begin("test_first")
    first_url = fake.url
    assert first_url.startswith(fake.server_url + "/_test/")
    assert requests.post(first_url + "/v2/bot/message/push", json={"to": USER, "messages": text_json("1")},
                         headers={"Authorization": "Bearer t"}, timeout=T).status_code == 200
    fake.begin("test_second")
    late = requests.post(first_url + "/v2/bot/message/push", json={"to": USER, "messages": text_json("2")},
                         headers={"Authorization": "Bearer t", "X-Line-Retry-Key": KEY}, timeout=T)
    assert late.status_code == 410 and "test_first" in late.json()["message"]
    assert fake.calls == [] and fake.deliveries() == [] and fake.accepted_retry_keys() == set()
    (stray,) = fake.strays()
    assert (stray.path, stray.origin, stray.during, stray.late) == ("/v2/bot/message/push", "test_first",
                                                                     "test_second", False)
    assert "test_first" in stray.describe()
    assert requests.post(fake.url + "/v2/bot/message/push", json={"to": USER, "messages": text_json("3")},
                         headers={"Authorization": "Bearer t", "X-Line-Retry-Key": KEY}, timeout=T).status_code == 200
    assert [c.path for c in fake.calls] == ["/v2/bot/message/push"] and fake.texts_to(USER) == ["3"]
    fake.end()
    assert fake.calls == [] and fake.take_strays() == [stray] and fake.strays() == []


def test_a_call_held_past_its_test_s_end_changes_nothing_of_the_next_test(fake):
    """A call that came in its test's turn but would be taken after it ended (LINE slow) is refused then, not
    delivered into the next test's record, nor given its faults."""
    fake.begin("test_slow")
    fake.set_delay(0.5)
    answers = []
    url = fake.url
    thread = threading.Thread(target=lambda: answers.append(requests.post(
        url + "/v2/bot/message/push", json={"to": USER, "messages": text_json("slow")},
        headers={"Authorization": "Bearer t"}, timeout=5).status_code))
    thread.start()
    assert wait_for(lambda: len(fake.calls) == 1)
    fake.begin("test_next")
    fake.fail_next(status=500, path_contains="/push")
    thread.join(5)
    assert answers == [410]
    assert fake.deliveries() == [] and fake.calls == [] and fake.pending_faults() == 1
    assert [(s.origin, s.during, s.late) for s in fake.strays()] == [("test_slow", "test_next", True)]


LEAKING_THEN_VICTIM = """
import threading
import time

import requests

CALLED = threading.Event()


def push_later(url):
    time.sleep(1.0)   # the test has ended by then
    requests.post(url + "/v2/bot/message/push", headers={"Authorization": "Bearer t"}, timeout=5,
                  json={"to": "U" + "a" * 32, "messages": [{"type": "text", "text": "x"}]})
    CALLED.set()


def test_a_leaks_a_thread(fake_line):
    threading.Thread(target=push_later, args=(fake_line.url,), daemon=True).start()


def test_b_records_only_its_own_calls(fake_line):
    assert CALLED.wait(10)
    assert fake_line.calls == [] and fake_line.deliveries() == []
"""


def test_the_fake_line_fixture_keeps_a_leaked_thread_s_call_from_the_next_test_and_names_the_leaking_test(
        pytester, monkeypatch):
    """The fixture's promise, on a run of its own: a thread a test left running does not reach the next test's
    record (the next test passes), and the test that left it fails at its teardown, named."""
    pytester.makeconftest('import tests.conftest\ntests.conftest.LEFT_RUNNING_GRACE_SECONDS = 0.1\n'
                          'pytest_plugins = ["tests.conftest"]\n')
    pytester.makepyfile(test_two=LEAKING_THEN_VICTIM)
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    monkeypatch.delenv("TEST_DATABASE_URL", raising=False)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:xdist", "-rA")
    outcomes = result.parseoutcomes()
    assert (outcomes.get("passed"), outcomes.get("errors"), outcomes.get("failed")) == (2, 1, None), result.stdout.str()
    result.stdout.fnmatch_lines(["*ERROR at teardown of test_a_leaks_a_thread*",
                                 "*test_two.py::test_a_leaks_a_thread left running after its end*thread*"])
    assert "ERROR at teardown of test_b" not in result.stdout.str()


def test_start_stop_without_context_manager():
    server = FakeLineApi().start()
    try:
        r = requests.get(server.url + "/v2/bot/message/quota", headers={"Authorization": "Bearer t"}, timeout=T)
        assert r.json() == {"type": "none"}
    finally:
        server.stop()


def test_missing_bearer_token_is_401(fake):
    r = requests.post(fake.url + "/v2/bot/message/push", json={"to": USER, "messages": [{"type": "text", "text": "x"}]},
                      timeout=T)
    assert r.status_code == 401
    assert fake.delivered() == []
    assert fake.calls[0].status == 401


def test_wrong_token_is_401_when_a_token_is_configured():
    with FakeLineApi(access_token="right") as server, \
            ApiClient(Configuration(host=server.url, access_token="wrong")) as client:
        with pytest.raises(ApiException) as err:
            push(MessagingApi(client))
        assert err.value.status == 401


def test_unknown_path_is_404_json(fake):
    r = requests.get(fake.url + "/v2/bot/nothing/here", headers={"Authorization": "Bearer t"}, timeout=T)
    assert r.status_code == 404
    assert r.json() == {"message": "Not found"}


# ------------------------------------------------------------------ reply


def test_reply_returns_sent_messages_and_is_recorded(fake, api):
    fake.register_reply_token("tok1", USER)
    resp = api.reply_message_with_http_info(
        ReplyMessageRequest(reply_token="tok1", messages=text("こんにちは", "二通目")), _request_timeout=T)
    assert resp.status_code == 200
    assert resp.headers["x-line-request-id"]
    assert len(resp.data.sent_messages) == 2
    assert all(m.id and m.quote_token for m in resp.data.sent_messages)
    kind, to, messages = fake.delivered()[0]
    assert (kind, to) == ("reply", "tok1")
    assert [m["text"] for m in messages] == ["こんにちは", "二通目"]
    assert fake.texts_to(USER) == ["こんにちは", "二通目"]
    call = fake.calls[0]
    assert call.method == "POST" and call.path == "/v2/bot/message/reply"
    assert call.headers["authorization"] == "Bearer t"
    assert call.body["replyToken"] == "tok1"


def test_reply_token_is_single_use(fake, api):
    api.reply_message(ReplyMessageRequest(reply_token="tok", messages=text("1")), _request_timeout=T)
    with pytest.raises(ApiException) as err:
        api.reply_message(ReplyMessageRequest(reply_token="tok", messages=text("2")), _request_timeout=T)
    assert err.value.status == 400
    assert json.loads(err.value.body) == {"message": "Invalid reply token"}
    assert len(fake.delivered()) == 1


def test_expired_and_unregistered_reply_tokens(fake, api):
    fake.expire_reply_token("old")
    with pytest.raises(ApiException) as err:
        api.reply_message(ReplyMessageRequest(reply_token="old", messages=text("x")), _request_timeout=T)
    assert err.value.status == 400
    fake.strict_reply_tokens = True
    with pytest.raises(ApiException):
        api.reply_message(ReplyMessageRequest(reply_token="never-issued", messages=text("x")), _request_timeout=T)
    fake.register_reply_token("issued", USER)
    api.reply_message(ReplyMessageRequest(reply_token="issued", messages=text("x")), _request_timeout=T)
    assert fake.texts_to(USER) == ["x"]


def test_message_limits(fake, api):
    six = [{"type": "text", "text": str(i)} for i in range(6)]
    r = raw_post(fake, "/v2/bot/message/push", {"to": USER, "messages": six})
    assert r.status_code == 400
    assert r.json()["details"][0]["property"] == "messages"
    with pytest.raises(ApiException) as err:
        push(api, msg="あ" * 5001)
    assert err.value.status == 400
    push(api, msg="あ" * 5000)
    long_data = {"type": "action", "action": {"type": "postback", "label": "l", "data": "d" * 301, "displayText": "l"}}
    r = raw_post(fake, "/v2/bot/message/push",
                 {"to": USER, "messages": [{"type": "text", "text": "x", "quickReply": {"items": [long_data]}}]})
    assert r.status_code == 400 and r.json()["details"][0]["property"].endswith(".data")
    assert [d.kind for d in fake.deliveries()] == ["push"]


def refused(fake, message: dict) -> list[str]:
    """The properties LINE's 400 names for a push of `message` (asserting it is refused)."""
    r = raw_post(fake, "/v2/bot/message/push", {"to": USER, "messages": [message]})
    assert r.status_code == 400, message
    assert r.json()["message"].startswith("The request body has")
    return [d["property"] for d in r.json()["details"]]


def postback_item(**action) -> dict:
    return {"type": "action", "action": {"type": "postback", "label": "はい", "data": "a=1", "displayText": "はい",
                                         **action}}


def confirm(text: str) -> dict:
    yes = {"type": "postback", "label": "はい", "data": "y"}
    return {"type": "template", "altText": "x", "template": {"type": "confirm", "text": text, "actions": [yes, yes]}}


def buttons(text: str, **more) -> dict:
    act = {"type": "postback", "label": "はい", "data": "y"}
    return {"type": "template", "altText": "x", "template": {"type": "buttons", "text": text, "actions": [act],
                                                            **more}}


def test_text_is_counted_in_utf16_units_as_line_does(fake, api):
    """🍎 is two units to LINE: 2,501 of them are 5,002, refused; 2,500 are accepted."""
    assert refused(fake, {"type": "text", "text": "🍎" * 2501}) == ["messages[0].text"]
    assert refused(fake, {"type": "flex", "altText": "🍎" * 201, "contents": {"type": "bubble"}}) == [
        "messages[0].altText"]
    push(api, msg="🍎" * 2500)


def test_quick_reply_buttons_need_a_label_and_a_display_text(fake):
    item = postback_item()
    del item["action"]["displayText"]
    assert refused(fake, {"type": "text", "text": "x", "quickReply": {"items": [item]}}) == [
        "messages[0].quickReply.items[0].action.displayText"]
    assert refused(fake, {"type": "text", "text": "x", "quickReply": {"items": [postback_item(label="")]}}) == [
        "messages[0].quickReply.items[0].action.label"]
    assert refused(fake, {"type": "text", "text": "x", "quickReply": {"items": [postback_item(label="あ" * 21)]}}) == [
        "messages[0].quickReply.items[0].action.label"]


def test_action_fields_have_lines_limits(fake):
    assert refused(fake, {"type": "text", "text": "x", "quickReply": {"items": [postback_item(displayText="あ" * 301)]}}
                   ) == ["messages[0].quickReply.items[0].action.displayText"]
    uri = {"type": "uri", "label": "開く", "uri": "https://example.com/" + "a" * 981}
    button = {"type": "button", "action": uri}
    bubble = {"type": "bubble", "body": {"type": "box", "layout": "vertical", "contents": [button]}}
    assert refused(fake, {"type": "flex", "altText": "x", "contents": bubble}) == [
        "messages[0].contents.body.contents[0].action.uri"]
    uri["uri"] = "javascript:alert(1)"
    assert refused(fake, {"type": "flex", "altText": "x", "contents": bubble}) == [
        "messages[0].contents.body.contents[0].action.uri"]
    uri["uri"], uri["label"] = "https://example.com/", "あ" * 21
    assert refused(fake, {"type": "flex", "altText": "x", "contents": bubble}) == [
        "messages[0].contents.body.contents[0].action.label"]


def test_template_texts_have_lines_limits(fake):
    assert refused(fake, confirm("あ" * 241)) == ["messages[0].template.text"]
    assert refused(fake, confirm("")) == ["messages[0].template.text"]
    assert refused(fake, buttons("あ" * 161)) == ["messages[0].template.text"]
    assert refused(fake, buttons("あ" * 61, title="題")) == ["messages[0].template.text"]
    assert refused(fake, buttons("あ", title="題" * 41)) == ["messages[0].template.title"]
    for ok in (confirm("あ" * 240), buttons("あ" * 160), buttons("あ" * 60, title="題" * 40)):
        r = raw_post(fake, "/v2/bot/message/push", {"to": USER, "messages": [ok]})
        assert r.status_code == 200, r.json()


def test_a_flex_carousel_is_at_most_50_kb(fake):
    bubble = {"type": "bubble", "body": {"type": "box", "layout": "vertical",
                                         "contents": [{"type": "text", "text": "あ" * 6000}]}}   # about 18 KB each
    carousel = {"type": "carousel", "contents": [bubble] * 3}
    assert refused(fake, {"type": "flex", "altText": "x", "contents": carousel}) == ["messages[0].contents"]
    carousel["contents"] = [bubble] * 2
    assert raw_post(fake, "/v2/bot/message/push", {"to": USER, "messages": [
        {"type": "flex", "altText": "x", "contents": carousel}]}).status_code == 200


def test_retry_key_is_refused_on_reply_and_must_be_a_uuid(fake):
    fake.register_reply_token("tok", USER)
    r = raw_post(fake, "/v2/bot/message/reply", {"replyToken": "tok", "messages": [{"type": "text", "text": "x"}]},
                 {"X-Line-Retry-Key": KEY})
    assert r.status_code == 400
    r = raw_post(fake, "/v2/bot/message/push", {"to": USER, "messages": [{"type": "text", "text": "x"}]},
                 {"X-Line-Retry-Key": "not-a-uuid"})
    assert r.status_code == 400
    assert fake.delivered() == []


# ------------------------------------------------------------------ push, retry key, quota


def test_push_with_the_same_retry_key_twice_delivers_once(fake, api):
    first = api.push_message_with_http_info(PushMessageRequest(to=USER, messages=text("hi")),
                                            x_line_retry_key=KEY, _request_timeout=T)
    with pytest.raises(ApiException) as err:
        push(api, key=KEY)
    assert err.value.status == 409
    assert err.value.headers["x-line-accepted-request-id"] == first.headers["x-line-request-id"]
    assert json.loads(err.value.body)["sentMessages"][0]["id"] == first.data.sent_messages[0].id
    assert fake.delivered() == [("push", USER, [{"type": "text", "text": "hi"}])]
    assert [c.retry_key for c in fake.calls] == [KEY, KEY]
    assert fake.consumption == 1


def test_concurrent_retries_with_one_key_deliver_once(fake):
    results = []

    def go():
        with ApiClient(Configuration(host=fake.url, access_token="t")) as client:
            try:
                push(MessagingApi(client), key=KEY)
                results.append(200)
            except ApiException as exc:
                results.append(exc.status)

    threads = [threading.Thread(target=go) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [200] + [409] * 7
    assert len(fake.delivered()) == 1


def test_quota_counts_push_per_member_multicast_and_broadcast():
    with FakeLineApi(quota_limit=10, followers=4, group_sizes={GROUP: 2}) as fake, \
            ApiClient(Configuration(host=fake.url, access_token="t")) as client:
        api = MessagingApi(client)
        push(api, to=GROUP)                       # 2 members
        push(api, to="C" + "c" * 32)               # unknown group: 3
        push(api)                                  # 1
        assert fake.consumption == 6
        api.multicast(MulticastRequest(to=[USER, "U" + "d" * 32], messages=text("m")), _request_timeout=T)
        assert fake.consumption == 8
        with pytest.raises(ApiException) as err:
            api.broadcast(BroadcastRequest(messages=text("b")), _request_timeout=T)   # would be 12
        assert err.value.status == 429
        assert json.loads(err.value.body) == {"message": MSG_MONTHLY_LIMIT}
        quota = api.get_message_quota(_request_timeout=T)
        assert (quota.type, quota.value) == ("limited", 10)
        assert api.get_message_quota_consumption(_request_timeout=T).total_usage == 8
        assert [d.kind for d in fake.deliveries()] == ["push", "push", "push", "multicast"]
        assert fake.texts_to("U" + "d" * 32) == ["m"]


def test_replies_are_free_and_unlimited_by_default(fake, api):
    fake.quota_limit = 0
    api.reply_message(ReplyMessageRequest(reply_token="t1", messages=text("x")), _request_timeout=T)
    with pytest.raises(ApiException) as err:
        push(api)
    assert err.value.status == 429
    assert api.get_message_quota_consumption(_request_timeout=T).total_usage == 0


# ------------------------------------------------------------------ faults


def test_scripted_500_before_accept_delivers_nothing_and_the_retry_succeeds(fake, api):
    fake.fail_next(1, 500)
    with pytest.raises(ApiException) as err:
        push(api, key=KEY)
    assert err.value.status == 500
    assert fake.delivered() == []
    push(api, key=KEY)
    assert len(fake.delivered()) == 1
    assert [c.fault for c in fake.calls] == ["500", None]


def test_500_after_accept_is_outcome_unknown_and_the_retry_gets_409(fake, api):
    fake.fail_next(1, 500, fail_after_accept=True)
    with pytest.raises(ApiException) as err:
        push(api, key=KEY)
    assert err.value.status == 500
    assert len(fake.delivered()) == 1
    with pytest.raises(ApiException) as err:
        push(api, key=KEY)
    assert err.value.status == 409
    assert len(fake.delivered()) == 1


def test_scripted_429_is_the_rate_limit(fake, api):
    fake.fail_next(1, 429)
    with pytest.raises(ApiException) as err:
        push(api)
    assert err.value.status == 429
    assert json.loads(err.value.body) == {"message": MSG_RATE_LIMIT}
    assert fake.delivered() == []


def test_injected_409_carries_the_accepted_request_id(fake, api):
    fake.fail_next(1, 409)
    with pytest.raises(ApiException) as err:
        push(api, key=KEY)
    assert err.value.status == 409 and err.value.headers["x-line-accepted-request-id"]


def test_faults_match_by_path_and_are_consumed_in_order(fake, api):
    fake.fail_next(1, 503, path_contains="/push")
    fake.fail_next(2, 502, path_contains="/push")
    api.reply_message(ReplyMessageRequest(reply_token="t", messages=text("x")), _request_timeout=T)
    statuses = []
    for _ in range(4):
        try:
            push(api)
            statuses.append(200)
        except ApiException as exc:
            statuses.append(exc.status)
    assert statuses == [503, 502, 502, 200]
    assert fake.pending_faults() == 0


def test_reset_drops_the_connection_without_delivering(fake, api):
    fake.fail_next(1, "reset")
    with pytest.raises(urllib3.exceptions.HTTPError):
        push(api)
    assert fake.delivered() == []
    assert fake.calls[0].fault == "reset" and fake.calls[0].status is None
    push(api)   # the client recovers
    assert len(fake.delivered()) == 1


def test_timeout_before_accept_delivers_nothing(fake, api):
    fake.timeout_seconds = 0.5
    fake.fail_next(1, "timeout")
    started = time.monotonic()
    with pytest.raises(urllib3.exceptions.HTTPError):
        push(api, timeout=0.2)
    assert time.monotonic() - started < 0.5
    time.sleep(0.6)                             # past the stall: still nothing delivered
    assert fake.delivered() == []
    assert fake.calls[0].fault == "timeout" and fake.calls[0].status is None


def test_timeout_after_accept_delivers_anyway(fake, api):
    fake.timeout_seconds = 1.0
    fake.fail_next(1, "timeout", fail_after_accept=True)
    with pytest.raises(urllib3.exceptions.HTTPError):
        push(api, key=KEY, timeout=0.3)
    assert len(fake.delivered()) == 1          # accepted before the stall: outcome unknown to the client
    with pytest.raises(ApiException) as err:
        push(api, key=KEY)
    assert err.value.status == 409


def test_delay_makes_a_slow_but_successful_line(fake, api):
    fake.set_delay(0.6)
    with pytest.raises(urllib3.exceptions.HTTPError):
        push(api, timeout=0.2)
    assert wait_for(lambda: len(fake.delivered()) == 1)
    fake.set_delay(0)
    push(api)


def test_random_faults_are_reproducible_per_seed():
    def run(seed):
        with FakeLineApi() as server, ApiClient(Configuration(host=server.url, access_token="t")) as client:
            server.random_faults(seed, 0.5, kinds=[500, 429])
            out = []
            for _ in range(20):
                try:
                    push(MessagingApi(client))
                    out.append(200)
                except ApiException as exc:
                    out.append(exc.status)
            return out, len(server.delivered())

    first, delivered = run(7)
    assert run(7) == (first, delivered)
    assert set(first) == {200, 500, 429}
    assert delivered == first.count(200)


def test_reset_forgets_everything(fake, api):
    fake.fail_next(3, 500)
    fake.register_reply_token("t", USER)
    fake.set_delay(1)
    fake.reset()
    push(api)
    api.reply_message(ReplyMessageRequest(reply_token="t", messages=text("x")), _request_timeout=T)
    assert len(fake.calls) == 2 and fake.pending_faults() == 0
    assert fake.texts_to(USER) == ["hi"]       # the reply token mapping was forgotten too


# ------------------------------------------------------------------ other endpoints


def test_profile_loading_and_group_endpoints(fake, api):
    fake.profiles[USER] = {"displayName": "山田"}
    profile = api.get_profile(USER, _request_timeout=T)
    assert (profile.display_name, profile.user_id) == ("山田", USER)
    fake.blocked.add(USER)
    with pytest.raises(ApiException) as err:
        api.get_profile(USER, _request_timeout=T)
    assert err.value.status == 404
    api.show_loading_animation(ShowLoadingAnimationRequest(chat_id=USER, loading_seconds=10), _request_timeout=T)
    assert fake.loading[0]["chatId"] == USER
    fake.group_sizes[GROUP] = 7
    assert api.get_group_member_count(GROUP, _request_timeout=T).count == 7
    api.leave_group(GROUP, _request_timeout=T)
    assert fake.left_groups == [GROUP]
    assert api.get_bot_info(_request_timeout=T).user_id == fake.bot_user_id


def test_texts_to_uses_alt_text_for_flex(fake, api):
    bubble = FlexBubble(body=FlexBox(layout="vertical", contents=[FlexText(text="本文")]))
    push(api)
    api.push_message(PushMessageRequest(to=USER, messages=[FlexMessage(alt_text="予約の確認", contents=bubble)]),
                     _request_timeout=T)
    assert fake.texts_to(USER) == ["hi", "予約の確認"]
    assert fake.messages_to(USER)[1]["contents"]["type"] == "bubble"


def test_rich_menu_with_blob_upload_to_the_same_fake(fake, api):
    menu = RichMenuRequest(
        size=RichMenuSize(width=2500, height=843), selected=True, name="main", chat_bar_text="メニュー",
        areas=[RichMenuArea(bounds=RichMenuBounds(x=0, y=0, width=2500, height=843),
                            action=PostbackAction(label="予約", data="action=book"))])
    menu_id = api.create_rich_menu(menu, _request_timeout=T).rich_menu_id
    with pytest.raises(ApiException) as err:      # no image yet
        api.set_default_rich_menu(menu_id, _request_timeout=T)
    assert err.value.status == 400
    with ApiClient(Configuration(host=fake.url, access_token="t")) as data_client:
        blob = MessagingApiBlob(data_client)
        blob.set_rich_menu_image(menu_id, body=png(), _headers={"Content-Type": "image/png"}, _request_timeout=T)
        with pytest.raises(ApiException) as err:  # LINE refuses a second upload
            blob.set_rich_menu_image(menu_id, body=png(), _headers={"Content-Type": "image/png"},
                                     _request_timeout=T)
        assert err.value.status == 400
    api.set_default_rich_menu(menu_id, _request_timeout=T)
    assert fake.default_rich_menu == menu_id
    assert fake.rich_menus[menu_id]["content_type"] == "image/png"
    listed = api.get_rich_menu_list(_request_timeout=T).richmenus
    assert [(m.rich_menu_id, m.chat_bar_text) for m in listed] == [(menu_id, "メニュー")]
    upload = [c for c in fake.calls if c.path.endswith("/content")][0]
    assert upload.raw.startswith(b"\x89PNG") and upload.body is None


# ------------------------------------------------------------------ LineUser / StaffGroup


@pytest.fixture
def webhook_app():
    """A minimal app that parses what it receives with the SDK, like bot/webhook.py will."""
    app = Flask(__name__)
    app.received = []

    @app.post("/callback/<office>")
    def callback(office):
        body = request.get_data(as_text=True)
        try:
            payload = WebhookParser(SECRET).parse(body, request.headers.get("X-Line-Signature", ""),
                                                  as_payload=True)
        except InvalidSignatureError:
            return "bad signature", 400
        app.received.append((office, payload, json.loads(body)))
        return "OK"

    return app


@pytest.mark.parametrize("verb, event_cls, content_cls", [
    (lambda u: u.says("予約したい"), MessageEvent, TextMessageContent),
    (lambda u: u.taps("action=agree"), PostbackEvent, None),
    (lambda u: u.taps("action=date", {"date": "2026-05-11"}), PostbackEvent, None),
    (lambda u: u.sends_sticker(), MessageEvent, StickerMessageContent),
    (lambda u: u.sends_image(), MessageEvent, ImageMessageContent),
    (lambda u: u.sends_location(), MessageEvent, LocationMessageContent),
    (lambda u: u.follows(), FollowEvent, None),
    (lambda u: u.unfollows(), UnfollowEvent, None),
])
def test_line_user_bodies_parse_into_typed_events(webhook_app, fake, verb, event_cls, content_cls):
    user = LineUser(webhook_app.test_client(), "otaru", channel_secret=SECRET, fake=fake)
    assert verb(user).status_code == 200
    office, payload, raw = webhook_app.received[-1]
    assert office == "otaru"
    assert re.fullmatch(r"U[0-9a-f]{32}", payload.destination)
    (event,) = payload.events
    assert type(event) is event_cls and not isinstance(event, UnknownEvent)
    assert event.source.user_id == user.user_id
    assert event.mode.value == "active"
    assert re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{26}", event.webhook_event_id)
    assert event.delivery_context.is_redelivery is False
    if content_cls:
        assert type(event.message) is content_cls
    if event_cls is UnfollowEvent:
        assert "replyToken" not in raw["events"][0]
    else:
        assert re.fullmatch(r"[0-9a-f]{32}", event.reply_token)


def test_line_user_details(webhook_app, fake, api):
    clock = iter([3000, 1000]).__next__
    user = LineUser(webhook_app.test_client(), channel_secret=SECRET, fake=fake, clock=clock)
    user.says("予約")
    user.taps("action=date", {"datetime": "2026-05-11T14:00"})
    first, second = (p.events[0] for _, p, _ in webhook_app.received)
    assert (first.timestamp, second.timestamp) == (3000, 1000)
    assert first.message.text == "予約" and first.message.quote_token
    assert second.postback.params == {"datetime": "2026-05-11T14:00"}
    # the reply token was registered: a reply to it is attributed to the user
    api.reply_message(ReplyMessageRequest(reply_token=second.reply_token, messages=text("承知しました")),
                      _request_timeout=T)
    assert user.texts() == ["承知しました"]
    assert user.last_reply_token == second.reply_token


def test_line_user_low_level_helpers(webhook_app):
    user = LineUser(webhook_app.test_client(), channel_secret=SECRET)
    event = user.text_event("はい", timestamp=5)
    body = user.body(event)
    assert json.loads(body)["events"] == [event]
    assert "はい".encode() in body                  # UTF-8, not \\u escapes, as LINE sends it
    assert user.post(body).status_code == 200
    assert user.post(body).status_code == 200       # the same delivery twice
    again = as_redelivery(event)
    user.post(user.body(again))
    parsed = [p.events[0] for _, p, _ in webhook_app.received]
    assert parsed[0].webhook_event_id == parsed[1].webhook_event_id == parsed[2].webhook_event_id
    assert parsed[2].delivery_context.is_redelivery is True
    assert user.post(body, signature="forged").status_code == 400
    assert user.post(body, signature=False).status_code == 400
    assert user.says("x", signature=sign(b"other", SECRET)).status_code == 400
    standby = user.text_event("x", mode="standby")
    assert "replyToken" not in standby
    user.post(user.body(standby))
    assert webhook_app.received[-1][1].events[0].mode.value == "standby"
    assert len(webhook_app.received) == 4


def test_a_text_message_without_quote_token_would_be_an_unknown_event():
    """Why LineUser adds quoteToken: without it the SDK gives up on the whole event."""
    user = LineUser("http://unused", channel_secret=SECRET)
    event = user.text_event("x")
    del event["message"]["quoteToken"]
    body = user.body(event).decode()
    (parsed,) = WebhookParser(SECRET).parse(body, sign(body.encode(), SECRET))
    assert isinstance(parsed, UnknownEvent)


def test_ulid_encodes_the_timestamp():
    a, b = ulid(1_000), ulid(2_000)
    assert len(a) == 26 and a[:10] < b[:10]


def test_staff_group_events(webhook_app, fake, api):
    group = StaffGroup(webhook_app.test_client(), channel_secret=SECRET, fake=fake)
    group.joins()
    group.member_joins("U" + "e" * 32)
    group.says("確認しました")
    group.taps("action=confirm&id=1")
    group.taps("action=confirm&id=1", user_id=None)
    group.member_leaves()
    group.leaves()
    events = [p.events[0] for _, p, _ in webhook_app.received]
    assert [type(e) for e in events] == [JoinEvent, MemberJoinedEvent, MessageEvent, PostbackEvent, PostbackEvent,
                                         MemberLeftEvent, LeaveEvent]
    assert all(e.source.type == "group" and e.source.group_id == group.group_id for e in events)
    assert events[1].joined.members[0].user_id == "U" + "e" * 32
    assert events[3].source.user_id == group.member_id
    assert events[4].source.user_id is None
    raw_events = [raw["events"][0] for _, _, raw in webhook_app.received]
    assert ["replyToken" in e for e in raw_events] == [True, True, True, True, True, False, False]
    api.reply_message(ReplyMessageRequest(reply_token=events[3].reply_token, messages=text("ok")),
                      _request_timeout=T)
    assert group.texts() == ["ok"]


def test_line_user_posts_to_a_base_url(webhook_app):
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, webhook_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        user = LineUser(f"http://127.0.0.1:{server.server_port}/", channel_secret=SECRET)
        response = user.says("こんにちは")
        assert response.status_code == 200 and response.text == "OK"
        assert webhook_app.received[-1][1].events[0].message.text == "こんにちは"
    finally:
        server.shutdown()
        thread.join()
