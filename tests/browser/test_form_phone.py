"""The details form and the terms on the smallest phone screen (320 x 568 CSS px, JavaScript off as in LINE's
in-app browser): what a person sees without scrolling, what a thumb can hit, and where focus lands."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.formflow import hold_first_free

pytestmark = pytest.mark.browser

SMALL_PHONE = {"width": 320, "height": 568}


@pytest.fixture
def small_phone(browser):
    context = browser.new_context(viewport=SMALL_PHONE, java_script_enabled=False, locale="ja-JP",
                                  timezone_id="Asia/Tokyo", has_touch=True, is_mobile=True)
    tab = context.new_page()
    tab.set_default_timeout(10_000)
    yield tab
    context.close()


@pytest.mark.parametrize("office_id", ["sakata", "otaru"])
def test_errors_are_seen_and_focused_without_scrolling(small_phone, live_server, office_id):
    """Sent with a mistake: the summary is on the first screen and has the focus (a screen reader reads it),
    not below the long privacy notice where the page would look unchanged."""
    url = hold_first_free(live_server.rt, office_id)
    small_phone.goto(url)
    small_phone.get_by_role("button", name="入力内容を確認する").click()
    summary = small_phone.locator(".error-summary")
    expect(summary).to_be_focused()
    expect(summary).to_be_in_viewport()
    assert summary.bounding_box()["y"] < SMALL_PHONE["height"] / 2


# What a thumb taps: a choice is its whole line (the label holds the radio or checkbox), not the small box.
TARGETS = ("main button, main a.button, main input:not([type=hidden]):not([type=radio]):not([type=checkbox]), "
           "main textarea, main label.choice, .error-summary a, .versions a, .contents summary")
THUMB = 44


def small_targets(tab) -> list[str]:
    return tab.evaluate("""([selector, least]) => [...document.querySelectorAll(selector)].filter(e => {
        const r = e.getBoundingClientRect();
        return r.width > 0 && (r.height < least || r.width < least);
    }).map(e => `${e.tagName} ${(e.name || e.textContent).trim().slice(0, 20)} ${Math.round(e.getBoundingClientRect().height)}px`)""",
                        [TARGETS, THUMB])


@pytest.mark.parametrize("office_id", ["sakata", "otaru"])
def test_every_control_is_big_enough_for_a_thumb(small_phone, live_server, office_id):
    url = hold_first_free(live_server.rt, office_id)
    small_phone.goto(url)
    assert small_phone.locator("main label.choice").count() >= 3
    assert small_targets(small_phone) == []
    small_phone.get_by_role("button", name="入力内容を確認する").click()        # with the error summary's links
    expect(small_phone.locator(".error-summary a").first).to_be_visible()
    small_phone.wait_for_load_state("load")  # its stylesheet applied (a busy machine measured unstyled links)
    assert small_targets(small_phone) == []
    small_phone.goto(f"{live_server.url}/terms/{office_id}")
    assert small_phone.locator(".versions a").count() >= 1
    assert small_targets(small_phone) == []


def test_long_unbroken_answers_wrap_on_the_confirmation_page(small_phone, live_server):
    """A romanised name or a pasted address has no place to break: it wraps, the page never scrolls sideways,
    and each answer stands under its label in bold, using the screen's whole width."""
    url = hold_first_free(live_server.rt, "otaru")
    small_phone.goto(url)
    typed = {"#f-name": "Wolfeschlegelsteinhausenbergerdorffvoralternwa", "#f-name_kana": "うるふ",
             "#f-seeker_number": "01234-567890", "#f-phone": "090-1234-5678", "#f-birth_date": "1990-04-01",
             "#f-consultation": "https://example.com/" + "a" * 60}
    for field, value in typed.items():
        small_phone.locator(field).fill(value)
    small_phone.get_by_role("button", name="入力内容を確認する").click()
    expect(small_phone.get_by_role("heading", name="入力内容の確認")).to_be_visible()
    assert small_phone.evaluate("document.documentElement.scrollWidth") <= SMALL_PHONE["width"]
    review = small_phone.evaluate("""() => {
        const dt = document.querySelector('.review dt'), dd = document.querySelector('.review dd');
        return {weight: parseInt(getComputedStyle(dt).fontWeight),
                indent: dd.getBoundingClientRect().left - dt.getBoundingClientRect().left};
    }""")
    assert review["weight"] >= 600 and review["indent"] == 0, review


@pytest.mark.parametrize("group, label", [("category", "対象となる区分"), ("mypage_email_confirmed", "求職者マイページ")])
def test_an_error_link_to_a_group_puts_the_focus_on_its_first_choice(small_phone, live_server, group, label):
    """From the error summary, a choice left unanswered is one tap away and ready for Space or a tap."""
    url = hold_first_free(live_server.rt, "sakata")
    small_phone.goto(url)
    small_phone.get_by_role("button", name="入力内容を確認する").click()
    small_phone.locator(".error-summary").get_by_role("link", name=re.compile(f"^{label}")).click()
    expect(small_phone.locator(f"input[name={group}]").first).to_be_focused()


def test_the_reference_stands_out_on_the_completion_page(small_phone, live_server):
    """The one thing to keep from the last page, read out on the phone to staff or copied down: larger than
    the text around it, whole on the small screen."""
    url = hold_first_free(live_server.rt, "otaru")
    small_phone.goto(url)
    for field, value in {"#f-name": "山田 太郎", "#f-name_kana": "やまだ たろう", "#f-seeker_number": "01234-567891",
                         "#f-phone": "090-1234-5678", "#f-birth_date": "19900401", "#f-consultation": "相談"}.items():
        small_phone.locator(field).fill(value)
    small_phone.get_by_role("button", name="入力内容を確認する").click()
    small_phone.get_by_role("button", name="この内容で申し込む").click()
    reference = small_phone.get_by_text(re.compile(r"^受付番号: "))
    expect(reference).to_be_visible()
    sizes = small_phone.evaluate("""() => [getComputedStyle(document.querySelector('.reference strong')).fontSize,
                                            getComputedStyle(document.querySelector('main p:not(.reference)')).fontSize]""")
    assert float(sizes[0].rstrip("px")) >= 1.25 * float(sizes[1].rstrip("px")), sizes
    box = reference.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= SMALL_PHONE["width"] and box["height"] < 40   # one line
