"""The local LINE simulator: its page, its fake Messaging API, its signed events and its clock."""
from __future__ import annotations

import dataclasses
import re
import threading
import uuid
from datetime import datetime, time, timedelta

import pytest
from cryptography.fernet import Fernet
from linebot.v3 import WebhookParser
from linebot.v3.exceptions import InvalidSignatureError
from linebot.v3.webhooks import (
    FollowEvent,
    ImageMessageContent,
    JoinEvent,
    MessageEvent,
    PostbackEvent,
    StickerMessageContent,
    TextMessageContent,
    UnfollowEvent,
)
from sqlalchemy import select
from werkzeug.serving import make_server

from bot import line_client as lc
from bot import outbox, richmenu
from bot.clock import TOKYO
from bot.models import StaffGroupSighting
from bot.simulator import events, store

JSON = {"Accept": "application/json"}


def bearer(rt, office="sakata") -> dict:
    return {"Authorization": f"Bearer {rt.config.channel_token(office)}"}


def text(body: str) -> dict:
    return {"type": "text", "text": body}


# -- a real server, so that the bot's SDK calls reach the simulator's fake API ----------------------------

@pytest.fixture
def live(make_app):
    """The app served on 127.0.0.1 with LINE_API_BASE_URL pointing at its own /simulator/api."""
    holder = {}
    server = make_server("127.0.0.1", 0, lambda environ, start: holder["app"](environ, start), threaded=True)
    base = f"http://127.0.0.1:{server.server_port}"
    app = make_app(public_base_url=base, line_api_base_url=f"{base}/simulator/api",
                   line_api_data_base_url=f"{base}/simulator/api")
    holder["app"] = app
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield app
    server.shutdown()
    thread.join(timeout=5)


def add_user(client, office="sakata") -> str:
    answer = client.post("/simulator/users", json={"office": office, "name_prefix": "user"})
    assert answer.status_code == 201
    return answer.get_json()["user_id"]


def chat(client, user_id, office="sakata") -> list[dict]:
    return client.get(f"/simulator/poll?office={office}&user={user_id}").get_json()["user"]


def bot_texts(rows) -> list[str]:
    return [r["message"].get("text", r["message"].get("altText", "")) for r in rows if r["sender"] == "bot"]


# -- the page ----------------------------------------------------------------------------------------------

def test_page_is_served_in_development_with_nothing_from_outside(client):
    page = client.get("/simulator")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "LINE シミュレーター" in html
    assert 'src="http' not in html and 'href="http' not in html  # no CDN: every asset is the app's own
    assert client.get("/static/simulator/simulator.js").status_code == 200
    assert client.get("/static/simulator/simulator.css").status_code == 200
    assert client.get("/static/richmenu/menu.png").status_code == 200


def test_page_tells_a_newcomer_how_to_log_in_to_the_dashboard_and_what_the_staff_pane_shows(client):
    """The dashboard link leads to a login no account exists for yet: the page gives the command that makes one
    (README's), for the office shown: an account is one office's, and a username is taken once for all offices;
    the staff pane, empty until a request arrives, says what will appear in it."""
    html = client.get("/simulator").get_data(as_text=True)
    for office in ("sakata", "otaru"):
        assert (f'<code class="account-note" data-office="{office}" hidden>printf \'%s\\n\' "$PASSWORD" | '
                f".venv/bin/flask --app app staff create-user --office {office} --username tanaka-{office} "
                "--role admin --password-stdin</code>") in html
    assert "ここに職員向けのカード" in html


def test_the_staff_pane_says_when_its_cards_arrive_and_how_to_see_one_sent_at_night(client, rt, monkeypatch):
    """Staff cards wait outside the office's push hours and over its closed days: a newcomer trying the simulator
    at night or on a weekend would otherwise wait for a card the pane promises. Each office's own hours."""
    otaru = rt.offices["otaru"]
    hours = dataclasses.replace(otaru.push_hours, start=time(7, 30), end=time.max, staff_cards_on_closed_days=True)
    monkeypatch.setitem(rt.offices, "otaru", dataclasses.replace(otaru, push_hours=hours))
    html = client.get("/simulator").get_data(as_text=True)
    notes = dict(re.findall(r'<div class="group-note" data-office="(\w+)"(.*?)</div>', html, re.S))
    sakata_note, otaru_note = notes["sakata"], notes["otaru"]
    assert "職員向けのカードは 08:00〜21:00（開庁日のみ）に届きます" in sakata_note
    assert "次の開庁日の 08:00 まで待ちます" in sakata_note and "アプリの時刻" in sakata_note
    assert "職員向けのカードは 07:30〜24:00に届きます" in otaru_note
    assert "次の 07:30 まで待ちます" in otaru_note


def test_development_note_names_the_staff_group_setting(client):
    html = client.get("/simulator").get_data(as_text=True)
    assert f"LINE_STAFF_GROUP_ID_SAKATA={events.default_group_id('sakata')}" in html


@pytest.mark.filterwarnings("ignore:.*production:UserWarning")
def test_production_has_neither_page_nor_fake_api(make_app, rt):
    env = {}
    for office in rt.offices:
        env[f"LINE_CHANNEL_SECRET_{office.upper()}"] = f"secret-{office}"
        env[f"LINE_CHANNEL_ACCESS_TOKEN_{office.upper()}"] = f"token-{office}"
    prod = make_app(app_env="production", secret_key="k" * 64, env=env,
                    data_encryption_keys=(Fernet.generate_key().decode(),))
    client = prod.test_client()
    assert client.get("/simulator").status_code == 404
    assert client.post("/simulator/clock", data={"now": "2027-01-04T09:00"}).status_code == 404
    assert client.post("/simulator/send", json={}).status_code == 404
    push = client.post("/simulator/api/v2/bot/message/push", json={"to": "U" + "0" * 32, "messages": [text("x")]},
                       headers={"Authorization": "Bearer token-sakata"})
    assert push.status_code == 404


def test_cross_site_posts_are_refused(client):
    answer = client.post("/simulator/users", json={"office": "sakata"}, headers={"Origin": "http://evil.example"})
    assert answer.status_code == 403


def test_an_unknown_office_is_named_with_the_offices_there_are_not_replaced_by_another(client, rt):
    """`?office=sakta` used to show Sakata's chat as if asked for; it is a 404 page naming the office asked for
    and linking the ones there are."""
    answer = client.get("/simulator?office=sakta")
    assert answer.status_code == 404
    html = answer.get_data(as_text=True)
    assert "事業所「sakta」は見つかりません" in html
    for office in rt.offices.values():
        if office.enabled:
            assert f'?office={office.id}">{office.name}</a>' in html
    assert 'id="sim-texts"' not in html  # not the chat page
    assert client.get("/simulator?office=sakata").status_code == 200


def test_the_pages_script_gets_its_errors_as_json_and_a_browser_the_sites_page(client):
    """The page's script asks for JSON: an error answers it in JSON with the status (it used to get the HTML
    page meant for people, which the script could not read); a browser opening the same address gets the page."""
    for answer, status in ((client.get("/simulator/users?office=nowhere", headers=JSON), 404),
                           (client.post("/simulator/users", json={"office": "nowhere"}), 404),
                           (client.post("/simulator/users", json={"office": "sakata"},
                                        headers={"Origin": "http://evil.example"}), 403),
                           (client.get("/simulator/send", headers=JSON), 405),
                           (client.post("/simulator/send", json={"office": "sakata", "chat": "U" + "9" * 32,
                                                                 "action": text("x")}), 404)):
        assert answer.status_code == status
        assert answer.is_json and answer.get_json()["message"], answer.get_data(as_text=True)[:80]
    page = client.get("/simulator/users?office=nowhere", headers={"Accept": "text/html,*/*;q=0.8"})
    assert page.status_code == 404 and page.mimetype == "text/html" and "<h1>" in page.get_data(as_text=True)


def test_the_saved_monthly_limit_is_read_back_for_the_settings_field(client):
    """The 詳細設定 field shows the office's limit: GET /simulator/quota answers what was saved (0 is a limit;
    null is none). A limit sent as a JSON number 0 is kept as 0, not taken for "no limit"."""
    assert client.get("/simulator/quota?office=sakata", headers=JSON).get_json() == {"limit": None}
    client.post("/simulator/quota", json={"office": "sakata", "limit": "0"})
    assert client.get("/simulator/quota?office=sakata", headers=JSON).get_json() == {"limit": 0}
    assert client.get("/simulator/quota?office=otaru", headers=JSON).get_json() == {"limit": None}
    client.post("/simulator/quota", json={"office": "sakata", "limit": ""})
    assert client.get("/simulator/quota?office=sakata", headers=JSON).get_json() == {"limit": None}
    assert client.post("/simulator/quota", json={"office": "sakata", "limit": 0}).get_json() == {"limit": 0}
    assert client.get("/simulator/quota?office=sakata", headers=JSON).get_json() == {"limit": 0}


# -- the fake Messaging API ---------------------------------------------------------------------------------

def test_fake_api_stores_a_reply_once_per_token(client, rt):
    user_id = events.new_user_id()
    with rt.db.transaction() as s:
        store.add_user(s, "sakata", user_id, "user", rt.clock.now())
        store.issue_reply_token(s, "sakata", user_id, "tok-1", datetime.now(TOKYO))
    body = {"replyToken": "tok-1", "messages": [text("こんにちは\n二行目")]}
    first = client.post("/simulator/api/v2/bot/message/reply", json=body, headers=bearer(rt))
    assert first.status_code == 200
    assert len(first.get_json()["sentMessages"]) == 1
    assert first.headers["x-line-request-id"]
    again = client.post("/simulator/api/v2/bot/message/reply", json=body, headers=bearer(rt))
    assert (again.status_code, again.get_json()["message"]) == (400, "Invalid reply token")
    assert bot_texts(chat(client, user_id)) == ["こんにちは\n二行目"]


def test_fake_api_refuses_an_old_reply_token(client, rt):
    with rt.db.transaction() as s:
        store.issue_reply_token(s, "sakata", "U" + "1" * 32, "tok-old", datetime.now(TOKYO) - timedelta(minutes=2))
    answer = client.post("/simulator/api/v2/bot/message/reply", json={"replyToken": "tok-old", "messages": [text("x")]},
                         headers=bearer(rt))
    assert answer.status_code == 400


def test_fake_api_push_with_retry_key_is_accepted_once(client, rt):
    user_id = events.new_user_id()
    key = str(uuid.uuid4())
    headers = {**bearer(rt), "X-Line-Retry-Key": key}
    body = {"to": user_id, "messages": [text("お知らせ")]}
    first = client.post("/simulator/api/v2/bot/message/push", json=body, headers=headers)
    assert first.status_code == 200
    repeat = client.post("/simulator/api/v2/bot/message/push", json=body, headers=headers)
    assert repeat.status_code == 409
    assert repeat.headers["x-line-accepted-request-id"] == first.headers["x-line-request-id"]
    assert repeat.get_json()["sentMessages"] == first.get_json()["sentMessages"]
    assert bot_texts(chat(client, user_id)) == ["お知らせ"]


def test_fake_api_checks_like_line(client, rt):
    user = "U" + "2" * 32
    no_auth = client.post("/simulator/api/v2/bot/message/push", json={"to": user, "messages": [text("x")]},
                          headers={"Authorization": "Bearer wrong"})
    assert no_auth.status_code == 401
    too_many = client.post("/simulator/api/v2/bot/message/push", json={"to": user, "messages": [text("x")] * 6},
                           headers=bearer(rt))
    assert too_many.status_code == 400 and too_many.get_json()["details"][0]["property"] == "messages"
    long_label = {"type": "text", "text": "x", "quickReply": {"items": [
        {"type": "action", "action": {"type": "postback", "label": "あ" * 21, "data": "d"}}]}}
    refused = client.post("/simulator/api/v2/bot/message/push", json={"to": user, "messages": [long_label]},
                          headers=bearer(rt))
    assert refused.status_code == 400
    reply_with_key = client.post("/simulator/api/v2/bot/message/reply",
                                 json={"replyToken": "t", "messages": [text("x")]},
                                 headers={**bearer(rt), "X-Line-Retry-Key": str(uuid.uuid4())})
    assert reply_with_key.status_code == 400
    bad_key = client.post("/simulator/api/v2/bot/message/push", json={"to": user, "messages": [text("x")]},
                          headers={**bearer(rt), "X-Line-Retry-Key": "not-a-uuid"})
    assert bad_key.status_code == 400
    assert chat(client, user) == []


def test_the_office_is_the_one_whose_token_is_used(client, rt):
    user, other = "U" + "3" * 32, "U" + "4" * 32
    client.post("/simulator/api/v2/bot/message/push", json={"to": user, "messages": [text("otaru")]},
                headers=bearer(rt, "otaru"))
    assert chat(client, user, "sakata") == []
    assert bot_texts(chat(client, user, "otaru")) == ["otaru"]
    # Either office's token, not only the first office's (an office picked by position would pass above).
    client.post("/simulator/api/v2/bot/message/push", json={"to": other, "messages": [text("sakata")]},
                headers=bearer(rt, "sakata"))
    assert chat(client, other, "otaru") == []
    assert bot_texts(chat(client, other, "sakata")) == ["sakata"]


def test_monthly_quota_answers_429(client, rt):
    assert client.post("/simulator/quota", json={"office": "sakata", "limit": "1"}).status_code == 200
    quota = client.get("/simulator/api/v2/bot/message/quota", headers=bearer(rt)).get_json()
    assert quota == {"type": "limited", "value": 1}
    user = "U" + "4" * 32
    first = client.post("/simulator/api/v2/bot/message/push", json={"to": user, "messages": [text("1")]},
                        headers=bearer(rt))
    second = client.post("/simulator/api/v2/bot/message/push", json={"to": user, "messages": [text("2")]},
                         headers=bearer(rt))
    assert (first.status_code, second.status_code) == (200, 429)
    assert second.get_json()["message"] == "You have reached your monthly limit."
    used = client.get("/simulator/api/v2/bot/message/quota/consumption", headers=bearer(rt)).get_json()
    assert used == {"totalUsage": 1}


def test_broadcast_reaches_following_users_only(client, rt):
    with rt.db.transaction() as s:
        store.add_user(s, "sakata", "Usim-following-0000000000001", "a", rt.clock.now())
        store.add_user(s, "sakata", "Usim-blocked-00000000000002", "b", rt.clock.now())
        store.set_followed(s, "sakata", "Usim-blocked-00000000000002", False)
    answer = client.post("/simulator/api/v2/bot/message/broadcast", json={"messages": [text("全員へ")]},
                         headers={**bearer(rt), "X-Line-Retry-Key": str(uuid.uuid4())})
    assert answer.status_code == 200
    assert bot_texts(chat(client, "Usim-following-0000000000001")) == ["全員へ"]
    assert chat(client, "Usim-blocked-00000000000002") == []


# -- through line-bot-sdk, over HTTP --------------------------------------------------------------------------

def test_the_bots_sdk_calls_land_in_the_simulator(live):
    rt = live.extensions["madoguchi"]
    client = live.test_client()
    user_id = add_user(client)
    key = str(uuid.uuid4())
    first = rt.line.push("sakata", user_id, [text("プッシュ")], key)
    again = rt.line.push("sakata", user_id, [text("プッシュ")], key)
    assert (first.outcome, again.outcome) == (lc.SENT, lc.DUPLICATE)
    assert rt.line.show_loading("sakata", user_id).outcome == lc.SENT
    assert rt.line.remaining_quota("sakata") == (None, 1)
    rows = chat(client, user_id)
    assert bot_texts(rows)[-1] == "プッシュ" and bot_texts(rows).count("プッシュ") == 1
    assert any(r["kind"] == "loading" for r in rows)


def test_worker_pushes_appear_in_the_chat(live):
    rt = live.extensions["madoguchi"]
    client = live.test_client()
    user_id = add_user(client)
    with rt.db.transaction() as s:
        outbox.add(s, office="sakata", kind="push", recipient=user_id, messages=[text("ワーカーから")],
                   now=rt.clock.now())
    figures = client.post("/simulator/worker", json={}).get_json()["figures"]
    assert figures["sent"] >= 1
    assert "ワーカーから" in bot_texts(chat(client, user_id))


def test_rich_menu_deployed_through_both_hosts_shows_in_the_simulator(live):
    client = live.test_client()
    assert client.get("/simulator/richmenu?office=sakata").get_json()["source"] == "definition"
    menu_id = client.post("/simulator/richmenu/deploy", json={"office": "sakata"}).get_json()["rich_menu_id"]
    shown = client.get("/simulator/richmenu?office=sakata").get_json()
    assert shown["source"] == "deployed" and shown["rich_menu_id"] == menu_id
    assert [a["action"]["text"] for a in shown["menu"]["areas"]] == [
        "予約", "予約確認", "ヘルプ", "データ削除", "English", "やさしい日本語"]
    image = client.get(shown["image_url"])
    assert image.status_code == 200 and image.data.startswith(b"\x89PNG")
    assert client.get("/simulator/richmenu?office=otaru").get_json()["source"] == "definition"


def test_the_simulators_rich_menu_button_deletes_the_menus_earlier_installs_made(live):
    """The button does what `richmenu deploy` does: a second install leaves one menu of the app, the new default;
    a menu of another name (a campaign's) is not the app's to delete."""
    rt = live.extensions["madoguchi"]
    client = live.test_client()
    campaign = richmenu.default_menu()
    with rt.db.transaction() as s:
        store.create_rich_menu(s, "sakata", "richmenu-campaign", dict(campaign.request(), name="campaign"),
                               rt.clock.now())
    first = client.post("/simulator/richmenu/deploy", json={"office": "sakata"}).get_json()["rich_menu_id"]
    second = client.post("/simulator/richmenu/deploy", json={"office": "sakata"}).get_json()
    with rt.db.reading() as s:
        assert sorted(m.rich_menu_id for m in store.rich_menus(s, "sakata")) == sorted(
            [second["rich_menu_id"], "richmenu-campaign"])
    assert second["rich_menu_id"] != first and second["deleted"] == [first] and second["left"] == []
    assert client.get("/simulator/richmenu?office=sakata").get_json()["rich_menu_id"] == second["rich_menu_id"]
    assert second["unlisted"] is False


def test_the_rich_menu_button_says_when_the_earlier_menus_could_not_be_listed(live, monkeypatch):
    """The new menu is the default; the earlier ones, not listed, are not deleted: the answer says so (the page
    tells the person to run the deploy again)."""
    rt = live.extensions["madoguchi"]

    def unlistable(office_id, name):
        raise ConnectionError("listing failed")

    monkeypatch.setattr(rt.line, "rich_menu_ids", unlistable)
    answer = live.test_client().post("/simulator/richmenu/deploy", json={"office": "sakata"})
    assert answer.status_code == 200
    assert answer.get_json()["unlisted"] is True and answer.get_json()["deleted"] == []


# -- the simulator's events: signed, LINE-shaped, through the real callback -----------------------------------

def test_events_are_line_shaped_and_correctly_signed(rt):
    secret = rt.config.channel_secret("sakata")
    user_src = events.source("U" + "5" * 32)
    group_src = events.source(events.default_group_id("sakata"), events.staff_member_id("sakata"))
    built = [
        events.event("message", user_src, 1000, events.reply_token(), message=events.text_message("予約")),
        events.event("message", user_src, 1001, events.reply_token(), message=events.sticker_message("446", "1988")),
        events.event("message", user_src, 1002, events.reply_token(), message=events.image_message()),
        events.event("postback", user_src, 1003, events.reply_token(),
                     postback=events.postback_content("a=slot", {"datetime": "2026-12-07T14:00"})),
        events.event("follow", user_src, 1004, events.reply_token(), follow={"isUnblocked": False}),
        events.event("unfollow", user_src, 1005),
        events.event("join", {"type": "group", "groupId": group_src["groupId"]}, 1006, events.reply_token()),
    ]
    raw = events.body(events.bot_user_id("sakata"), built)
    parsed = WebhookParser(secret).parse(raw.decode(), events.sign(raw, secret), as_payload=True).events
    kinds = [type(e) for e in parsed]
    assert kinds == [MessageEvent, MessageEvent, MessageEvent, PostbackEvent, FollowEvent, UnfollowEvent, JoinEvent]
    assert isinstance(parsed[0].message, TextMessageContent) and parsed[0].message.quote_token
    assert isinstance(parsed[1].message, StickerMessageContent)
    assert isinstance(parsed[2].message, ImageMessageContent)
    assert parsed[3].postback.params == {"datetime": "2026-12-07T14:00"}
    assert all(e.mode == "active" and e.delivery_context.is_redelivery is False for e in parsed)
    assert len({e.webhook_event_id for e in parsed}) == 7 and all(len(e.webhook_event_id) == 26 for e in parsed)
    with pytest.raises(InvalidSignatureError):
        WebhookParser(secret).parse(raw.decode(), events.sign(raw, "another secret"))


def test_simulated_user_books_through_the_real_dialog(live):
    client = live.test_client()
    user_id = add_user(client)
    assert user_id.startswith("Usim") and len(user_id) == 33
    greeting = chat(client, user_id)
    assert greeting[0]["message"] == {"type": "event", "event": "follow"}
    assert bot_texts(greeting), "the follow event gets the bot's greeting"

    sent = client.post("/simulator/send", json={"office": "sakata", "chat": user_id, "action": text("予約")})
    assert sent.get_json() == {"webhook_status": 200}
    rows = chat(client, user_id)
    assert rows[-2]["sender"] == "user" and rows[-2]["message"] == text("予約")
    consent = rows[-1]["message"]
    labels = [i["action"]["label"] for i in consent["quickReply"]["items"]]
    assert "同意する" in labels and "利用規約" in consent["text"]

    agree = next(i["action"] for i in consent["quickReply"]["items"] if i["action"]["label"] == "同意する")
    tap = {"type": "postback", "data": agree["data"], "displayText": agree["displayText"]}
    assert client.post("/simulator/send", json={"office": "sakata", "chat": user_id, "action": tap}).get_json() \
        == {"webhook_status": 200}
    after = chat(client, user_id)
    shown_by_user = [r["message"]["text"] for r in after if r["sender"] == "user"]
    assert shown_by_user == ["予約", "同意する"]  # displayText appears as the user's own bubble
    assert "quickReply" in after[-1]["message"]  # the first eligibility question, with its buttons


def test_blocking_and_unblocking(live):
    client = live.test_client()
    rt = live.extensions["madoguchi"]
    user_id = add_user(client)
    client.post("/simulator/send", json={"office": "sakata", "chat": user_id, "action": {"type": "unfollow"}})
    assert client.get("/simulator/users?office=sakata").get_json()["users"][0]["followed"] is False
    with rt.db.reading() as s:
        assert store.followers(s, "sakata") == []
    client.post("/simulator/send", json={"office": "sakata", "chat": user_id,
                                         "action": {"type": "follow", "unblocked": True}})
    events_shown = [r["message"]["event"] for r in chat(client, user_id) if r["sender"] == "system"]
    assert events_shown == ["follow", "unfollow", "unblock"]


def test_staff_pane_posts_group_events(live):
    rt = live.extensions["madoguchi"]
    client = live.test_client()
    answer = client.post("/simulator/send", json={"office": "sakata", "chat": "staff", "action": {"type": "join"}})
    assert answer.get_json() == {"webhook_status": 200}
    with rt.db.reading() as s:
        groups = s.scalars(select(StaffGroupSighting.group_id)).all()
    assert groups == [events.default_group_id("sakata")]
    group_rows = client.get("/simulator/poll?office=sakata").get_json()["group"]
    assert group_rows[0]["message"] == {"type": "event", "event": "join"}


def test_actions_are_checked(client):
    user_id = add_user(client)
    for action in ({"type": "nonsense"}, {"type": "text", "text": ""}, {"type": "postback", "data": "x" * 301},
                   {"type": "postback", "data": "a", "params": {"when": "now"}}, {"type": "join"}):
        answer = client.post("/simulator/send", json={"office": "sakata", "chat": user_id, "action": action})
        assert answer.status_code == 400, action
    assert client.post("/simulator/send", json={"office": "sakata", "chat": "U" + "9" * 32,
                                                "action": text("x")}).status_code == 404
    assert client.post("/simulator/send", json={"office": "nowhere", "chat": user_id,
                                                "action": text("x")}).status_code == 404


def test_a_typed_text_is_held_to_5000_as_line_counts_it():
    """LINE counts a text in UTF-16 units (bot/linetext.py): 2,501 emoji are 5,002, more than a user can send,
    though only 2,501 characters; 2,500 are exactly 5,000."""
    from bot.simulator.chat import Action, ActionError

    assert Action.from_json(text("🍎" * 2500)).text == "🍎" * 2500
    with pytest.raises(ActionError):
        Action.from_json(text("🍎" * 2501))
    assert Action.from_json(text("字" * 5000)).kind == "text"
    with pytest.raises(ActionError):
        Action.from_json(text("字" * 5001))


def test_event_times_never_go_back_for_a_chat(client, rt):
    user_id = add_user(client)
    with rt.db.transaction() as s:
        later = store.next_timestamp(s, "sakata", user_id, 2_000_000)
        earlier_clock = store.next_timestamp(s, "sakata", user_id, 1_000_000)
    assert earlier_clock == later + 1


# -- the shared clock ------------------------------------------------------------------------------------------

def test_clock_post_moves_the_clock_of_every_process(client, make_app):
    answer = client.post("/simulator/clock", data={"now": "2027-01-04T09:00"})
    assert answer.status_code == 303
    other = make_app().extensions["madoguchi"]  # another process on the same database
    other.clock.freeze(None)
    target = datetime(2027, 1, 4, 9, 0, tzinfo=TOKYO)
    assert abs((other.clock.now() - target).total_seconds()) < 60

    back = client.post("/simulator/clock", data={"now": ""}, headers=JSON)
    assert back.status_code == 200
    other.clock.forget()
    assert abs((other.clock.now() - datetime.now(TOKYO)).total_seconds()) < 60

    by_script = client.post("/simulator/clock", json={"now": "2027-01-05T09:00"})  # the page's script sends JSON
    assert by_script.status_code == 200
    other.clock.forget()
    assert abs((other.clock.now() - target - timedelta(days=1)).total_seconds()) < 60


def test_clock_refuses_what_is_not_a_time(client):
    assert client.post("/simulator/clock", data={"now": "next tuesday"}).status_code == 400
    assert client.post("/simulator/clock", data={"now": "next tuesday"}, headers=JSON).get_json()["error"]
