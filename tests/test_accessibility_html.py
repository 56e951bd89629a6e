"""Accessibility read from the rendered HTML (no browser): on every dashboard form an error message is tied to the
control it is about (aria-invalid, aria-describedby to the message), so a screen reader says what is wrong on
reaching the field (JIS X 8341-3 / WCAG 3.3.1, 1.3.1)."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from html.parser import HTMLParser

import pyotp
import pytest

from tests.staffkit import fast_password_hashing  # noqa: F401 - autouse fixture
from bot.staff import auth
from bot.clock import TOKYO
from bot.staff.views import SESSION_WARNING
from tests.formflow import Page, complete_form, hold_first_free, path_of, valid_answers
from tests.staffkit import PASSWORD, create_staff, login, pending_totp_secret, post

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    text: list[str] = field(default_factory=list)


class Dom(HTMLParser):
    """Every element with its attributes, and the text inside each (descendants included)."""

    def __init__(self, html: str):
        super().__init__()
        self.elements: list[Element] = []
        self._open: list[Element] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        element = Element(tag, {k: v or "" for k, v in attrs})
        self.elements.append(element)
        if tag not in VOID:
            self._open.append(element)

    def handle_endtag(self, tag):
        for i in range(len(self._open) - 1, -1, -1):
            if self._open[i].tag == tag:
                del self._open[i:]
                break

    def handle_data(self, data):
        for element in self._open:
            element.text.append(data)

    def by_id(self, id_: str) -> Element:
        found = [e for e in self.elements if e.attrs.get("id") == id_]
        assert len(found) == 1, f"{len(found)} elements with id {id_!r}"
        return found[0]

    def description(self, id_: str) -> str:
        """What a screen reader reads as the control's description: the texts its aria-describedby names."""
        ids = self.by_id(id_).attrs.get("aria-describedby", "").split()
        return " ".join("".join(self.by_id(i).text).strip() for i in ids)

    def invalid(self) -> set[str]:
        return {e.attrs.get("id", e.tag) for e in self.elements if e.attrs.get("aria-invalid") == "true"}


def dom(response) -> Dom:
    return Dom(response.get_data(as_text=True))


def test_a_refused_login_marks_the_fields_it_is_about(rt, client):
    create_staff(rt)
    page = dom(login(client, password="wrong password"))
    assert page.invalid() == {"username", "password"}
    assert "パスワードが正しくありません" in page.description("password")
    assert "パスワードが正しくありません" in page.description("username")


def test_a_wrong_second_factor_code_marks_the_code_field(rt, client):
    create_staff(rt)
    login(client)
    post(client, "/staff/account/totp", step="start")
    secret = pending_totp_secret(client)
    page = dom(client.get(post(client, "/staff/account/totp", step="confirm", otp="000000").headers["Location"]))
    assert page.invalid() == {"otp"} and "コードが正しくありません" in page.description("otp")
    post(client, "/staff/account/totp", step="confirm", otp=pyotp.TOTP(secret).at(rt.clock.now()))
    post(client, "/staff/logout")
    page = dom(login(client, otp="000000"))
    assert page.invalid() == {"otp"} and "二段階認証のコードが正しくありません" in page.description("otp")


def test_a_refused_password_change_marks_the_field_that_was_wrong(rt, client):
    create_staff(rt)
    login(client)
    wrong = post(client, "/staff/account/password", current="not my password", new=PASSWORD + "!")
    page = dom(client.get(wrong.headers["Location"]))
    assert page.invalid() == {"current"} and "今のパスワードが正しくありません" in page.description("current")
    short = post(client, "/staff/account/password", current=PASSWORD, new="short")
    page = dom(client.get(short.headers["Location"]))
    assert page.invalid() == {"new"} and "12文字以上" in page.description("new")


@pytest.mark.parametrize(("typed", "field_id", "words"), [
    ({"username": "tanaka", "password": PASSWORD, "role": "staff"}, "new-username", "すでに使われています"),
    ({"username": "suzuki", "password": "short", "role": "staff"}, "new-password", "12文字以上"),
    ({"username": "suzuki", "password": PASSWORD, "role": "owner"}, "new-role", "権限を選んでください"),
])
def test_an_account_that_cannot_be_made_marks_what_to_correct(rt, client, typed, field_id, words):
    create_staff(rt, role="admin")
    login(client)
    page = dom(post(client, "/staff/users", **typed))
    assert page.invalid() == {field_id} and words in page.description(field_id)


def test_a_refused_allow_list_marks_the_list(rt, client):
    create_staff(rt, role="admin")
    login(client)
    refused = post(client, "/staff/users/allowlist", allowlist="not an address")
    page = dom(client.get(refused.headers["Location"]))
    assert page.invalid() == {"allowlist"} and "IPアドレスの書き方" in page.description("allowlist")


def test_an_export_period_that_cannot_be_used_marks_both_dates(rt, client):
    create_staff(rt)
    login(client)
    page = dom(post(client, "/staff/export", **{"from": "2026-12-31", "to": "2026-12-01"}))
    assert page.invalid() == {"from", "to"}
    assert "期間を正しく指定してください" in page.description("from") == page.description("to")


def test_the_audit_logs_filters_are_labelled_and_a_wrong_one_is_marked(rt, client):
    create_staff(rt)
    login(client)
    page = dom(client.get("/staff/audit"))
    labelled = {e.attrs["for"] for e in page.elements if e.tag == "label"}
    controls = {e.attrs["id"] for e in page.elements if e.tag in ("input", "select") and e.attrs.get("type") != "hidden"}
    assert controls == {"f-reference", "f-actor", "f-action", "f-from", "f-to"} and controls <= labelled
    headings = ["".join(e.text).strip() for e in page.elements if e.tag in ("h1", "h2")]
    assert headings[headings.index("操作記録"):] == ["操作記録", "絞り込み", "記録（1件）"]   # the login
    page = dom(client.get("/staff/audit?from=2026-12-31&to=2026-12-01&reference=zz"))
    assert page.invalid() == {"f-from", "f-to", "f-reference"}
    assert "開始日は終了日より前" in page.description("f-from") == page.description("f-to")
    assert "英数字8文字" in page.description("f-reference")


def test_a_search_that_finds_nothing_marks_what_was_typed(rt, client):
    create_staff(rt)
    login(client)
    page = dom(post(client, "/staff/search", seeker_number="12-34"))
    assert page.invalid() == {"seeker_number"} and "5桁-最大8桁" in page.description("seeker_number")
    page = dom(client.get("/staff/search?reference=ZZZZ-ZZZZ"))
    assert page.invalid() == {"reference"} and "見つかりませんでした" in page.description("reference")


def test_a_booking_by_phone_that_cannot_be_registered_marks_each_field_at_fault(rt, client):
    create_staff(rt)
    login(client)
    page = dom(post(client, "/staff/bookings/new", source="phone", slot="2026-12-07T14:00:00+09:00", name="",
                    seeker_number="12-34"))
    assert page.invalid() == {"name", "seeker_number"}
    assert "氏名を正しく入力してください" in page.description("name")
    assert "5桁-最大8桁" in page.description("seeker_number")
    page = dom(post(client, "/staff/bookings/new", source="fax", slot="", name="酒田 花子"))
    assert page.invalid() == {"source", "slot"}
    assert "受付経路を選んでください" in page.description("source")
    assert "日時を選んでください" in page.description("slot")


def test_a_refused_form_puts_the_focus_on_what_was_wrong(rt, client):
    """Sent back with an error, a dashboard page opens with the focus on its message (as the form's error summary
    does): one element takes it, the message a screen reader then reads first."""
    create_staff(rt, role="admin")
    sent = {"login": login(client, password="wrong password")}
    login(client)
    sent.update({
        "export": post(client, "/staff/export", **{"from": "2026-12-31", "to": "2026-12-01"}),
        "search": post(client, "/staff/search", seeker_number="12-34"),
        "new booking": post(client, "/staff/bookings/new", source="phone", slot="", name=""),
        "audit": client.get("/staff/audit?from=2026-12-31&to=2026-12-01&reference=zz"),
        "password": client.get(post(client, "/staff/account/password", current=PASSWORD, new="short").headers["Location"]),
        "account made": post(client, "/staff/users", username="a", password="short", role="staff"),
    })
    for name, response in sent.items():
        page = dom(response)
        focused = [e for e in page.elements if "autofocus" in e.attrs]
        assert len(focused) == 1, (name, response.status_code)
        assert focused[0].attrs.get("role") == "alert" and focused[0].attrs.get("tabindex") == "-1", name


def test_a_booking_button_that_tells_the_user_or_cannot_be_undone_says_so_when_reached(rt, client):
    """Tabbing to 承認, お断り, 中止, a cancel for the user, 出席 or 欠席, a screen reader reads what the button does
    (the words beside it on the page), not only its name."""
    from tests.staffkit import SAKATA_MONDAY, make_request

    create_staff(rt)
    login(client)
    requested = make_request(rt, user_id="U" + "r" * 32)
    confirmed = make_request(rt, start=SAKATA_MONDAY + timedelta(hours=1), user_id="U" + "s" * 32, status="confirmed")
    started = make_request(rt, start=datetime(2026, 11, 30, 14, 0, tzinfo=TOKYO), user_id="U" + "t" * 32,
                           status="confirmed")
    expected = {requested: {"confirm": "「予約が確定しました」", "decline": "お断りは取り消せません",
                            "propose": "提案した日時", "cancel_user": "元には戻せません"},
                confirmed: {"cancel_office": "中止は取り消せません", "cancel_user": "元には戻せません"},
                started: {"attended": "押すとすぐに記録されます", "no_show": "押すとすぐに記録されます"}}
    for reference, buttons in expected.items():
        page = dom(client.get(f"/staff/bookings/{reference}"))
        for action, words in buttons.items():
            [button] = [e for e in page.elements if e.tag == "button" and e.attrs.get("data-action") == action]
            ids = button.attrs.get("aria-describedby", "").split()
            said = " ".join("".join(page.by_id(i).text) for i in ids)
            assert words in said, (action, ids)


def test_an_attendance_correction_without_its_reason_marks_the_field_to_fill(rt, client):
    from tests.staffkit import SAKATA_MONDAY, make_request

    create_staff(rt)
    login(client)
    reference = make_request(rt)
    post(client, f"/staff/bookings/{reference}/confirm")
    rt.clock.freeze(SAKATA_MONDAY + timedelta(minutes=11))
    login(client)
    post(client, f"/staff/bookings/{reference}/no_show")
    action = f"/staff/bookings/{reference}/correct_attendance"
    page = dom(post(client, action, to="attended", note="遅れて入室"))
    assert page.invalid() == {"correction-reason"}
    assert "訂正の理由を選んでください" in page.description("correction-reason")
    assert page.by_id("correction-note").attrs["value"] == "遅れて入室"          # what was typed is kept
    page = dom(post(client, action, to="attended", reason="other"))
    assert page.invalid() == {"correction-note"}
    assert "「その他」を選んだ場合は、理由を入力してください" in page.description("correction-note")
    chosen = [e.attrs["value"] for e in page.elements if e.tag == "option" and "selected" in e.attrs]
    assert chosen == ["other"]
    # Each control has its own label, inside a group that names the correction.
    labelled = {e.attrs["for"] for e in page.elements if e.tag == "label"}
    assert {"correction-reason", "correction-note", "correction-reason-cancel", "correction-note-cancel"} <= labelled
    legend = [e for e in page.elements if e.tag == "legend"]
    assert ["".join(e.text) for e in legend] == ["出欠の訂正（「欠席（連絡なし）」から「出席」へ）",
                                                 "欠席の訂正（「欠席（連絡なし）」から「キャンセル（本人）」へ）"]


# -- where one is, and for how long -----------------------------------------------------------------------

@pytest.mark.parametrize(("path", "words"), [("/staff/", "予定表"), ("/staff/queue", "対応待ち"),
                                             ("/staff/export", "CSV出力"), ("/staff/users", "アカウント管理"),
                                             ("/staff/account", "tanaka")])
def test_the_menu_marks_the_page_one_is_on(rt, client, path, words):
    create_staff(rt, role="admin")
    login(client)
    page = dom(client.get(path))
    menu = [e for e in page.elements if e.tag == "a" and e.attrs.get("href", "").startswith("/staff/")
            and e.attrs.get("href") != "#main"]
    current = ["".join(e.text).strip() for e in menu if e.attrs.get("aria-current") == "page"]
    assert current == [words]


def test_every_dashboard_table_is_named_by_its_heading_and_each_booking_row_by_its_first_cell(rt, client):
    """A screen reader lists a page's tables by name and reads a cell with its row's header: each table is named
    by the heading it stands under (the day, the queue's section, 申込内容…), and a row of a list of bookings or
    of the day's slots is headed by its 受付番号 or time, so that moving across a row says which one it is."""
    from bot import outbox
    from tests.staffkit import DETAILS, SAKATA_MONDAY, booking, make_request

    create_staff(rt, role="admin")
    login(client)
    requested = make_request(rt, user_id="U" + "a" * 32)
    confirmed = make_request(rt, start=SAKATA_MONDAY + timedelta(hours=1), user_id="U" + "c" * 32,
                             status="confirmed")
    with rt.db.transaction() as s:
        outbox.add(s, office="sakata", kind="push", recipient="U" + "c" * 32, messages=[{"type": "text", "text": "x"}],
                   now=rt.clock.now(), purpose="outcome_confirmed", about=booking(rt, confirmed)).status = "failed"
    post(client, f"/staff/bookings/{requested}/reveal", then="details-h")
    pages = {path: client.get(path) for path in ("/staff/", "/staff/queue", f"/staff/bookings/{requested}",
                                                  "/staff/outbox", "/staff/groups", "/staff/users", "/staff/audit")}
    pages["search"] = post(client, "/staff/search", seeker_number=DETAILS["sakata"]["seeker_number"])
    listed = 0
    for name, response in pages.items():
        assert response.status_code == 200, name
        page = dom(response)
        tables = [e for e in page.elements if e.tag == "table"]
        assert tables, name
        for table in tables:
            heading = page.by_id(table.attrs.get("aria-labelledby", "(none)"))
            assert heading.tag in ("h1", "h2") and "".join(heading.text).strip(), (name, table.attrs)
        html = response.get_data(as_text=True)
        for head, body in re.findall(r"<thead[^>]*>(.*?)</thead>\s*<tbody[^>]*>(.*?)</tbody>", html, re.S):
            first = re.search(r"<th[^>]*>([^<]*)</th>", head).group(1)
            rows = re.findall(r"<tr[ >](.*?)</tr>", body, re.S)
            if first in ("受付番号", "時刻") and rows:
                listed += 1
                assert all(re.match(r'(?:[^>]*>)?\s*<th scope="row"', row) for row in rows), (name, rows[0][:200])
    assert listed >= 5, listed       # the queue's lists, the day's slots, the search's result
    # (the session warning's dialog, closed, is no heading of the page)
    levels = [level for level, text in headings(dom(pages["/staff/queue"])) if "自動的にログアウト" not in text]
    assert levels[0] == 1 and levels.count(1) == 1 and all(b <= a + 1 for a, b in zip(levels, levels[1:]))


def test_the_login_page_states_the_session_limits_before_they_apply(client):
    words = "".join(dom(client.get("/staff/login")).by_id("session-limits").text)
    idle, longest = auth.IDLE_TIMEOUT.total_seconds() // 60, auth.MAX_SESSION.total_seconds() // 3600
    assert f"{idle:.0f}分間操作がないとき" in words and f"ログインから{longest:.0f}時間" in words
    # ... and that a dashboard page warns before either, with 続ける for the idle one (WCAG 2.2.1)
    warning = SESSION_WARNING.total_seconds() // 60
    assert f"{warning:.0f}分前に画面でお知らせします" in words and "「続ける」" in words and "延長できません" in words


# -- the terms ------------------------------------------------------------------------------------------

def headings(page: Dom) -> list[tuple[int, str]]:
    return [(int(e.tag[1]), "".join(e.text).strip()) for e in page.elements if e.tag in ("h1", "h2", "h3", "h4")]


@pytest.mark.parametrize("url", ["/terms/sakata?lang=en", "/terms/otaru?lang=easy", "/terms/sakata",
                                 "/terms/sakata/2022-07-01"])
def test_the_terms_headings_start_with_the_one_h1_and_go_down_one_level_at_a_time(client, url):
    """The translated summary (a translation of the consent points) comes under the title, not above it."""
    levels = [level for level, _ in headings(dom(client.get(url)))]
    assert levels[0] == 1 and levels.count(1) == 1, levels
    assert all(b <= a + 1 for a, b in zip(levels, levels[1:])), levels


def test_the_translated_summary_is_in_its_own_language_right_under_the_title(client):
    page = dom(client.get("/terms/sakata?lang=en"))
    (first, title), (second, summary) = headings(page)[:2]
    assert first == 1 and "利用規約" in title
    assert second == 2 and page.by_id("translated-summary-title").text
    section = next(e for e in page.elements if e.attrs.get("aria-labelledby") == "translated-summary-title")
    assert section.attrs["lang"] == "en" and "".join(page.by_id("translated-summary-title").text) == summary


@pytest.mark.parametrize(("url", "skip", "language"), [("/terms/sakata?lang=en", "Skip to the main content", "en"),
                                                     ("/terms/otaru?lang=easy", "ページの 中身（なかみ）へ すすむ", "ja"),
                                                     ("/terms/sakata", "本文へ移動", None)])
def test_the_terms_skip_link_speaks_the_language_the_chat_linked(client, url, skip, language):
    """The skip link is the first thing a screen reader says: in the reader's language, marked as such."""
    page = dom(client.get(url))
    link = next(e for e in page.elements if e.tag == "a" and e.attrs.get("class") == "skip")
    assert "".join(link.text).strip() == skip
    assert [e.attrs.get("lang") for e in page.elements if e.tag == "span" and "".join(e.text) == skip][:1] == \
        ([language] if language else [])


@pytest.mark.parametrize(("url", "version"), [("/terms/sakata/2022-07-01", "2022-07-01"),
                                              ("/terms/sakata/2023-11-01", "2023-11-01"),
                                              ("/terms/otaru/2023-10-01", "2023-10-01")])
def test_a_version_page_says_which_version_in_its_title(client, url, version):
    titles = {"".join(e.text).strip() for e in dom(client.get(url)).elements if e.tag == "title"}
    current = {"".join(e.text).strip() for e in dom(client.get(url.rsplit("/", 1)[0])).elements if e.tag == "title"}
    assert len(titles) == 1 and f"{version}版" in titles.pop()
    assert len(current) == 1 and "版" not in current.pop()        # the current page: no version to name


# -- the form in English: the fixed Japanese line marked as Japanese -----------------------------------

@pytest.mark.parametrize("language", ["en", "ja"])
def test_the_reference_line_is_marked_as_japanese_on_the_english_completion_page(rt, client, language):
    """`受付番号: XXXX-XXXX` stays Japanese on every page (a fixed format): a screen reader on the English page
    reads it with a Japanese voice (WCAG 3.1.2)."""
    office = rt.offices["sakata"]
    done = complete_form(client, hold_first_free(rt, "sakata", language), valid_answers(office))
    page = dom(done.response)
    assert next(e for e in page.elements if e.tag == "html").attrs["lang"] == language
    line = next(e for e in page.elements if e.tag == "p" and "受付番号: " in "".join(e.text))
    assert line.attrs.get("lang") == "ja"
    assert re.search(r"<strong>受付番号: [A-Z0-9]{4}-[A-Z0-9]{4}</strong>", done.html)   # one line of text


# -- the public pages in English: every Japanese word that stays Japanese is marked lang="ja" ----------

JAPANESE = re.compile(r"[\u3000-\u303f\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uff00-\uffef]")


class _LanguageWalk(HTMLParser):
    """Each text node with the language it is in: the lang of the nearest element that sets one."""

    def __init__(self, html: str):
        super().__init__()
        self.texts: list[tuple[str, str]] = []
        self._open: list[tuple[str, str | None]] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag, attrs):
        if tag not in VOID:
            self._open.append((tag, dict(attrs).get("lang")))

    def handle_endtag(self, tag):
        for i in range(len(self._open) - 1, -1, -1):
            if self._open[i][0] == tag:
                del self._open[i:]
                break

    def handle_data(self, data):
        language = next((lang for _, lang in reversed(self._open) if lang is not None), "")
        self.texts.append((language, data))


def unmarked_japanese(html: str) -> list[str]:
    """The text nodes holding Japanese that a screen reader would read in another language's voice."""
    return [text.strip() for language, text in _LanguageWalk(html).texts
            if JAPANESE.search(text) and language.split("-")[0] != "ja"]


# Two minutes before the booking deadline of the first slot (tests/test_form.py): the input page says when
# requests close, and twelve minutes later the confirmation is refused with the slot and the deadline named.
JUST_BEFORE = {"sakata": datetime(2026, 12, 4, 16, 58, tzinfo=TOKYO),
               "otaru": datetime(2026, 12, 1, 16, 58, tzinfo=TOKYO)}


# Answers each error message of the form is about (the rest of the answers valid, and kept on the page).
TYPED_WRONG = [{"seeker_number": "12-34", "birth_date": "平成40年1月1日", "phone": "電話"},
               {"seeker_number": "1234-567890-1", "birth_date": "someday"},
               {"birth_date": "1900-01-01", "name_kana": "山田"}]


@pytest.mark.parametrize("office_id", ["sakata", "otaru"])
def test_the_english_public_pages_mark_every_japanese_word_as_japanese(make_app, office_id):
    """On a page in English, the words that stay Japanese (the chat words to send, 受付番号, the slot label, the
    office's Japanese names, 和暦, what the person typed) are marked lang="ja", so that a screen reader reads
    them with a Japanese voice (WCAG 3.1.2, JIS X 8341-3): every page the form, the terms and a refusal show."""
    app = make_app(env={f"LINE_BASIC_ID_{office_id.upper()}": "@madoguchi"})
    rt, client = app.extensions["madoguchi"], app.test_client()
    office = rt.offices[office_id]
    rt.clock.freeze(JUST_BEFORE[office_id])
    url = hold_first_free(rt, office_id, "en")
    pages: dict[str, str] = {}
    page = Page.get(client, url)
    pages["input"] = page.html
    pages["input, nothing typed"] = page.submit(client, {name: "" for name in page.form.names - {"csrf_token"}}).html
    for number, wrong in enumerate(TYPED_WRONG):
        pages[f"input, typed wrong {number}"] = page.submit(client, {**valid_answers(office), **wrong}).html
    confirmation = page.submit(client, valid_answers(office))
    pages["confirm"] = confirmation.html
    pages["done"] = confirmation.submit(client).html
    late = Page.get(client, hold_first_free(rt, office_id, "en")).submit(client, valid_answers(office))
    rt.clock.advance(minutes=12)
    pages["notice passed"] = late.submit(client).html
    pages["too large"] = client.post(path_of(url), data={"name": "x" * (1024 * 1024 + 10)}).get_data(as_text=True)
    pages["terms"] = client.get(f"/terms/{office_id}?lang=en").get_data(as_text=True)
    pages["unknown terms version"] = client.get(f"/terms/{office_id}/2021-01-01?lang=en").get_data(as_text=True)
    with app.test_request_context():
        pages.update(every_refusal(rt, office_id))
    assert "受付番号" in pages["done"] and "予約" in pages["notice passed"]      # Japanese there to be marked
    found = {name: unmarked for name, html in pages.items() if (unmarked := unmarked_japanese(html))}
    assert not found, found
    whole = {name: html for name, html in pages.items() if "<html" in html}
    assert {name for name, html in whole.items() if '<html lang="en">' not in html} == {"terms"}  # Japanese text


def every_refusal(rt, office_id: str) -> dict[str, str]:
    """Each problem page of the form and each error page, in English, rendered the way bot/forms.py and
    bot/error_pages.py render them (with and without the office, the chat's basic ID, the form)."""
    from flask import render_template

    from bot.forms import PROBLEM_STATUS, form_texts, slot_text

    text = form_texts("en")
    office = rt.offices[office_id].localized("en")
    late = {"slot": slot_text(JUST_BEFORE[office_id] + timedelta(days=3), "en"),
            "deadline": slot_text(JUST_BEFORE[office_id] + timedelta(minutes=2), "en")}
    pages = {}
    for kind in PROBLEM_STATUS:
        for shown_office, basic_id in ((office, "@madoguchi"), (office, None), (None, None)):
            pages[f"problem {kind} {bool(shown_office)} {basic_id}"] = render_template(
                "forms/problem.html", kind=kind, office=shown_office, basic_id=basic_id, late=late,
                reopen="/form/t", resend=[("name", "山田 太郎")], text=text)
    pages.update(kept_pages(rt, office_id, "en"))
    for kind in [kind for kind, words in text["page"]["error"].items() if isinstance(words, dict)]:
        for on_form in (True, False):
            pages[f"error {kind} {on_form}"] = render_template(
                "error.html", kind=kind, on_form=on_form, terms_url="/terms/x", office=office,
                basic_id="@madoguchi" if on_form else None, text=text)
    pages["terms changed"] = render_template("forms/_terms_changed.html", terms_version="2027-01-01", text=text)
    return pages


def kept_pages(rt, office_id: str, language: str) -> dict[str, str]:
    """The problem pages that keep what was typed (bot/forms.py `_cannot`: a form sent after its slot was
    gone, and 'waiting', its button tapped before another slot was chosen), with and without the chat's basic
    ID, rendered the way bot/forms.py renders them."""
    from flask import render_template

    from bot.forms import CARRIED, form_texts, slot_text

    late = {"slot": slot_text(JUST_BEFORE[office_id] + timedelta(days=3), language),
            "deadline": slot_text(JUST_BEFORE[office_id] + timedelta(minutes=2), language)}
    return {f"kept {kind} {basic_id}": render_template(
                "forms/problem.html", kind=kind, office=rt.offices[office_id].localized(language), basic_id=basic_id,
                late=late, reopen="/form/t/resume", resend=[("name", "山田 太郎"), ("csrf_token", "c")], carry=True,
                text=form_texts(language))
            for kind in sorted(CARRIED | {"waiting"}) for basic_id in ("@madoguchi", None)}


@pytest.mark.parametrize("language", ["ja", "en", "easy"])
def test_the_pages_keeping_what_was_typed_have_one_heading_and_the_button_their_text_names(app, rt, language):
    """Each page keeping what was typed: one h1, which the title starts with (WCAG 2.4.2, 1.3.1); one button,
    named in the very words the page tells to tap (a screen reader user looks for them); what was typed only
    in hidden fields of its form, never read out."""
    from bot.forms import form_texts

    words = form_texts(language)["page"]["problem"]
    with app.test_request_context():
        pages = kept_pages(rt, "sakata", language)
    for name, html in pages.items():
        page = Dom(html)
        [(level, heading)] = headings(page)
        title = "".join(next(e for e in page.elements if e.tag == "title").text).strip()
        assert level == 1 and title.startswith(heading), name
        buttons = ["".join(e.text).strip() for e in page.elements if e.tag == "button"]
        assert buttons == [words["resume"]], name
        said = [e for e in page.elements if e.tag == "p" and words["resume"] in "".join(e.text)]
        assert len(said) == 1, name
        [form] = [e for e in page.elements if e.tag == "form"]
        assert form.attrs["method"] == "post" and form.attrs["action"] == "/form/t/resume", name
        hidden = {e.attrs["name"]: e.attrs["value"] for e in page.elements
                  if e.tag == "input" and e.attrs.get("type") == "hidden"}
        assert hidden["name"] == "山田 太郎", name
        assert not any("山田" in text for _, text in _LanguageWalk(html).texts), name


def test_marking_japanese_escapes_first_and_keeps_a_phrase_whole():
    from markupsafe import Markup

    from bot.textfmt import mark_japanese

    typed = '<b onclick="x">山田 太郎</b> & 平成2年4月1日 or H2.4.1'
    assert mark_japanese(typed, "en") == ('&lt;b onclick=&#34;x&#34;&gt;<span lang="ja">山田 太郎</span>&lt;/b&gt; &amp; '
                                          '<span lang="ja">平成2年4月1日</span> or H2.4.1')
    assert mark_japanese(typed, "ja") == Markup.escape(typed)                  # a Japanese page: nothing to mark
    assert mark_japanese(Markup("<em>予約</em>"), "en") == "<em>予約</em>"     # ours: marked where written


# -- the form: the box and the time the slot is held ---------------------------------------------------------

def test_the_my_page_boxs_error_is_tied_to_the_box_itself(rt, client):
    """The summary's link puts the focus on the box: VoiceOver and TalkBack read the box's own description there,
    not its group's, so the hint and the error are tied to the box (WCAG 3.3.1, 1.3.1)."""
    refused = Page.get(client, hold_first_free(rt, "sakata", "en")).submit(
        client, {**valid_answers(rt.offices["sakata"]), "mypage_email_confirmed": ""})
    page = dom(refused.response)
    box = page.by_id("f-mypage_email_confirmed-yes")
    assert box.attrs.get("aria-invalid") == "true"
    assert "".join(page.by_id("f-mypage_email_confirmed-error").text).strip() in page.description(box.attrs["id"])
    assert "tick the box" in page.description(box.attrs["id"])


@pytest.mark.parametrize(("language", "after"), [("ja", "時間を過ぎても"), ("easy", "その あとでも"),
                                                 ("en", "If that time passes")])
def test_the_confirmation_page_says_a_late_send_still_counts(rt, client, language, after):
    """WCAG 2.2.1: the slot is held for a time; the confirmation page names it and, like the input page, says that
    what was typed is not lost when it passes (sent late, the request is made while the slot is still free)."""
    confirmation = Page.get(client, hold_first_free(rt, "otaru", language)).submit(
        client, valid_answers(rt.offices["otaru"]))
    notice = next(e for e in dom(confirmation.response).elements if e.attrs.get("class") == "notice")
    assert after in "".join(notice.text)
