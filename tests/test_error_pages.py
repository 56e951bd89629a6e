"""What a person sees when a request fails: the site's own page in Japanese (or the form link's language), with
what happened and what to do next, the site's headers, no Werkzeug default page, no address or token in it.
The webhook and the health check answer programs: their status stays, with a short JSON body."""
from __future__ import annotations

import pytest
from sqlalchemy.exc import OperationalError
from sqlalchemy import update

from bot.models import Conversation
from tests.formflow import Page, hold_directly, path_of, valid_answers
from tests.staffkit import fast_password_hashing, staff  # noqa: F401 - fixtures
from tests.staffkit import make_request, post

WERKZEUG = ("The requested URL", "Method Not Allowed", "Not Found", "Internal Server Error", "Request Entity")


def text_of(response) -> str:
    return response.get_data(as_text=True)


def assert_own_page(response, status: int, *words: str) -> str:
    html = text_of(response)
    assert response.status_code == status
    assert response.mimetype == "text/html" and '<link rel="stylesheet"' in html
    assert not any(w in html for w in WERKZEUG), html
    assert "Traceback" not in html
    assert response.headers["Content-Security-Policy"] and response.headers["Cache-Control"] == "no-store"
    for w in words:
        assert w in html, (w, html)
    return html


@pytest.mark.parametrize("path", ["/terms/nowhere", "/nothing", "/static/css/nothing.css", "/form"])
def test_an_unknown_address_is_a_japanese_page_saying_to_open_the_link_in_line_again(client, path):
    html = assert_own_page(client.get(path), 404, '<html lang="ja">', "ページが見つかりません",
                           "LINEのトークに届いたご案内のリンク", "「予約」と送る")
    assert path not in html


@pytest.mark.parametrize("path", ["/terms/sakata/2021-01-01", "/terms/sakata/latest"])
def test_an_unknown_terms_version_links_the_offices_current_terms(client, path):
    assert_own_page(client.get(path), 404, "この版の利用規約は見つかりません", 'href="/terms/sakata"',
                    "ハローワーク酒田")


def test_an_unknown_terms_version_opened_from_the_english_chat_is_in_english(client):
    assert_own_page(client.get("/terms/sakata/2021-01-01?lang=en"), 404, '<html lang="en">',
                    "This version of the terms was not found", 'href="/terms/sakata"')


def test_a_wrong_method_on_a_public_page_is_a_japanese_page(client):
    response = client.post("/terms/sakata")
    assert_own_page(response, 405, "このページは開けません")
    assert set(response.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS"}
    assert_own_page(client.put("/form/abc"), 405, "このページは開けません")
    assert_own_page(client.delete("/healthz"), 405, "このページは開けません")


@pytest.mark.parametrize("method,path,status,words", [
    ("get", "/staff/nothing", 404, "見つかりませんでした"),
    ("get", "/staff/logout", 405, "この画面は直接開けません"),
])
def test_the_dashboards_errors_are_its_own_pages(client, method, path, status, words):
    html = assert_own_page(getattr(client, method)(path), status, words, "職員用ページ", 'href="/staff/search"')
    assert "staff.css" in html


def test_a_dashboard_message_left_unshown_is_shown_on_an_error_page(rt, staff):
    """A button's message waits in the session for the next page (the redirect after it was not followed: the tab
    closed, the connection dropped). That next page may be an address of no page or a button's address opened
    directly (405): the page says its error and the message, never fails with a 500 (found by
    tests/test_model_actors.py)."""
    reference = make_request(rt)
    for _ in range(2):   # the second: 「この操作はすでに済んでいます（現在: 予約確定）」, which names the status
        assert post(staff, f"/staff/bookings/{reference}/confirm").status_code == 302
    html = assert_own_page(staff.get(f"/staff/bookings/{reference}/confirm"), 405, "この画面は直接開けません")
    assert "この操作はすでに済んでいます" in html
    post(staff, f"/staff/bookings/{reference}/confirm")
    assert_own_page(staff.get("/staff/nothing"), 404, "見つかりませんでした", "この操作はすでに済んでいます")


def test_a_body_too_large_on_the_dashboard_changes_nothing_and_says_so(client):
    response = client.post("/staff/login", data={"username": "x" * (1024 * 1024 + 10), "password": "y"})
    html = assert_own_page(response, 413, "送られた内容が大きすぎるため", "何も変更していません", "職員用ページ")
    assert "xxxx" not in html


@pytest.mark.parametrize("path,status", [("/callback/nowhere", 404), ("/callback/sakata", 400)])
def test_the_webhooks_refusals_stay_short_json_for_line(client, path, status):
    response = client.post(path, data="{}", content_type="application/json")
    assert response.status_code == status and response.is_json
    assert "<html" not in text_of(response)


def test_a_person_opening_the_webhooks_address_gets_a_page(client):
    assert_own_page(client.get("/callback/sakata"), 405, "このページは開けません")


def english_form(make_app):
    """An app with a basic ID for Sakata, and a held slot's form link in an English-speaking chat."""
    app = make_app(env={"LINE_BASIC_ID_SAKATA": "@sakata"})
    rt = app.extensions["madoguchi"]
    conversation_id, url = hold_directly(rt, "sakata")
    with rt.db.transaction() as s:
        s.execute(update(Conversation).where(Conversation.id == conversation_id).values(language="en"))
    return app, rt, url


def test_a_body_too_large_on_the_form_is_a_page_in_the_links_language(make_app):
    app, rt, url = english_form(make_app)
    client = app.test_client()
    token = url.rsplit("/", 1)[1]
    response = client.post(path_of(url), data={"name": "x" * (1024 * 1024 + 10)})
    html = assert_own_page(response, 413, '<html lang="en">', "Your entry could not be sent",
                           "Your request has not been sent", "Hello Work Sakata",
                           "https://line.me/R/oaMessage/%40sakata/?%E4%BA%88%E7%B4%84\"")
    assert token not in html and "xxxx" not in html


def test_a_failure_on_the_form_offers_to_send_again_in_the_users_language_and_shows_no_token(make_app, monkeypatch):
    from bot.services import requests as requestsvc

    app, rt, url = english_form(make_app)
    app.config["PROPAGATE_EXCEPTIONS"] = False  # as in production: logged, answered with the form's own page
    client = app.test_client()
    confirmation = Page.get(client, url).submit(client, valid_answers(rt.offices["sakata"]))

    def failing(*args, **kwargs):
        raise RuntimeError("酒田 花子")

    monkeypatch.setattr(requestsvc, "submit", failing)
    response = confirmation.submit(client).response
    html = assert_own_page(response, 503, '<html lang="en">', "We could not take this just now", "Send again",
                           "Your request will not be made twice")
    assert "酒田 花子" not in html and "RuntimeError" not in html


def test_a_failure_on_a_public_page_gives_the_offices_confirmed_phone(app, monkeypatch):
    from bot.services import terms

    app.config["PROPAGATE_EXCEPTIONS"] = False
    monkeypatch.setattr(terms, "current", lambda *a, **k: 1 / 0)
    assert_own_page(app.test_client().get("/terms/otaru"), 500, "ただいま処理できません",
                    "ハローワーク小樽へお電話でお問い合わせください。", "0134-32-8689")
    html = assert_own_page(app.test_client().get("/terms/sakata"), 500, "ただいま処理できません")
    assert "お電話" not in html  # Sakata's number is not confirmed: none is shown


@pytest.mark.parametrize("failure, code, words", [
    (RuntimeError("a bug"), 500, ["操作を完了できませんでした", "システムの管理者に連絡"]),
    (OperationalError("SELECT 1", None, Exception("restarting")), 503, ["一時的に応答できませんでした"]),
])
def test_a_failure_on_the_dashboard_is_its_own_page(app, monkeypatch, failure, code, words):
    from bot.staff.views import login

    real = login.render_template

    def failing(name, **context):
        if name == "staff/login.html":
            raise failure
        return real(name, **context)

    app.config["PROPAGATE_EXCEPTIONS"] = False
    monkeypatch.setattr(login, "render_template", failing)
    html = assert_own_page(app.test_client().get("/staff/login"), code, "職員用ページ", *words)
    assert "RuntimeError" not in html and "restarting" not in html


def test_the_correction_address_opened_again_goes_back_to_the_input_page(app, rt):
    """修正する posts to /form/<token>/edit and the input page shows at that address: LINE's "open in browser"
    (or a reload from the history) opens it with GET, which was a 405."""
    client = app.test_client()
    _, url = hold_directly(rt, "sakata")
    confirmation = Page.get(client, url).submit(client, valid_answers(rt.offices["sakata"]))
    assert confirmation.status == 200
    opened = client.get(path_of(url) + "/edit")
    assert opened.status_code == 303 and opened.headers["Location"].endswith(path_of(url))
    assert Page.get(client, path_of(url) + "/edit").status == 200
