"""The details form in Debian's Chromium as LINE's in-app browser shows it: a phone screen, JavaScript off.

Filled in by the labels a screen reader announces, sent, confirmed, completed: nothing on these pages needs
JavaScript, and the browser reports no content-security-policy violation.
"""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import ARTIFACTS
from tests.formflow import hold_directly

pytestmark = pytest.mark.browser

LINE_IN_APP = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
               "Mobile/15E148 Safari Line/14.9.0")


def _artifact(name: str):
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS / name


@pytest.fixture
def phone(browser):
    context = browser.new_context(viewport={"width": 375, "height": 740}, user_agent=LINE_IN_APP,
                                  java_script_enabled=False, locale="ja-JP", timezone_id="Asia/Tokyo")
    tab = context.new_page()
    tab.set_default_timeout(10_000)
    console: list[str] = []
    tab.on("console", lambda message: console.append(message.text))
    yield tab
    context.close()
    # Chromium reports a blocked style, frame or form target as "Refused to ... Content Security Policy".
    assert not [line for line in console if "Content Security Policy" in line or "Refused to" in line], console


@pytest.mark.parametrize("office_id", ["sakata", "otaru"])
def test_the_form_works_without_javascript_on_a_phone(phone, live_server, office_id):
    rt = live_server.rt
    _, url = hold_directly(rt, office_id)
    phone.goto(url)
    expect(phone.get_by_role("heading", name="ご本人情報の入力")).to_be_visible()
    expect(phone.get_by_role("heading", name=re.compile("個人情報の取扱いについて"))).to_be_visible()
    phone.get_by_label("お名前（必須）").fill("山田 太郎")
    phone.get_by_label("ふりがな（必須）").fill("ﾔﾏﾀﾞ ﾀﾛｳ")
    phone.get_by_label("求職番号（必須）").fill("０１２３４５６７８９")
    phone.get_by_label("電話番号（必須）").fill("090-1234-5678")
    if office_id == "otaru":
        phone.get_by_label("生年月日（必須）").fill("H2.4.1")
        phone.get_by_label("ご相談になりたい内容（必須）").fill("応募書類の添削をお願いしたいです。")
    else:
        phone.get_by_label(re.compile("UIJターン")).check()
        phone.get_by_label(re.compile("メールを受け取れることを確認しました")).check()
    phone.get_by_label("通訳者").check()
    phone.get_by_label("通訳の言語・同席される方について（通訳を頼む場合は必須）").fill("英語の通訳者1名")
    phone.get_by_role("button", name="入力内容を確認する").click()
    expect(phone.get_by_role("heading", name="入力内容の確認")).to_be_visible()
    expect(phone.get_by_text("01234-56789")).to_be_visible()
    expect(phone.get_by_text("ヤマダ タロウ")).to_be_visible()
    if office_id == "otaru":
        expect(phone.get_by_text("1990年4月1日（平成2年4月1日）")).to_be_visible()
    phone.screenshot(path=str(_artifact(f"form-{office_id}-confirm.png")), full_page=True)
    phone.get_by_role("button", name="修正する").click()           # back to correct, values kept
    expect(phone.get_by_label("求職番号（必須）")).to_have_value("01234-56789")
    phone.get_by_label("電話番号（必須）").fill("0134-32-8689")
    phone.get_by_role("button", name="入力内容を確認する").click()
    expect(phone.get_by_text("0134-32-8689")).to_be_visible()
    phone.get_by_role("button", name="この内容で申し込む").click()
    expect(phone.get_by_role("heading", name="お申込みを受け付けました")).to_be_visible()
    expect(phone.get_by_text(re.compile(r"^受付番号: [A-HJ-NP-Z2-9]{4}-[A-HJ-NP-Z2-9]{4}$"))).to_be_visible()
    assert phone.locator("form").count() == 0
    phone.screenshot(path=str(_artifact(f"form-{office_id}-done.png")), full_page=True)


def test_an_error_is_announced_and_tied_to_its_field(phone, live_server):
    _, url = hold_directly(live_server.rt, "otaru")
    phone.goto(url)
    phone.get_by_label("生年月日（必須）").fill("令和99年1月1日")
    phone.get_by_role("button", name="入力内容を確認する").click()
    expect(phone.get_by_role("alert")).to_contain_text("入力内容をご確認ください")
    field = phone.get_by_label("生年月日（必須）")
    expect(field).to_have_attribute("aria-invalid", "true")
    described = field.get_attribute("aria-describedby").split()
    assert "f-birth_date-error" in described
    expect(phone.locator("#f-birth_date-error")).to_contain_text("今日より後")


@pytest.mark.parametrize("office_id", ["sakata", "otaru"])
def test_the_browsers_back_button_on_the_confirmation_keeps_what_was_typed(phone, live_server, office_id):
    """Many go back with the phone's back gesture rather than 修正する: no field may come back empty."""
    _, url = hold_directly(live_server.rt, office_id)
    phone.goto(url)
    typed = {"お名前（必須）": "山田 太郎", "ふりがな（必須）": "やまだ たろう", "求職番号（必須）": "01234-56789",
             "電話番号（必須）": "090-1234-5678"}
    if office_id == "otaru":
        typed |= {"生年月日（必須）": "1990-04-01", "ご相談になりたい内容（必須）": "応募書類の添削をお願いしたいです。"}
    for label, value in typed.items():
        phone.get_by_label(label).fill(value)
    if office_id == "sakata":
        phone.get_by_label(re.compile("UIJターン")).check()
        phone.get_by_label(re.compile("メールを受け取れることを確認しました")).check()
    phone.get_by_role("button", name="入力内容を確認する").click()
    expect(phone.get_by_role("heading", name="入力内容の確認")).to_be_visible()
    phone.go_back()
    expect(phone.get_by_role("heading", name="ご本人情報の入力")).to_be_visible()
    for label, value in typed.items():
        expect(phone.get_by_label(label)).to_have_value(value)
