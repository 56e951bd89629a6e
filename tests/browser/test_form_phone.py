"""The details form and the terms on the smallest phone screen (320 x 568 CSS px, JavaScript off as in LINE's
in-app browser): what a person sees without scrolling, what a thumb can hit, and where focus lands."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import expect
from sqlalchemy import select

from bot.models import Booking, Conversation
from bot.services.slots import slot_label
from tests.formflow import held_slot, hold_first_free, link_key, taken_by_another, walk_to_slots

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
    small_phone.wait_for_load_state("load")  # its stylesheet applied: a busy machine measured the page unstyled
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
    small_phone.wait_for_load_state("load")  # its stylesheet applied before anything is measured
    sizes = small_phone.evaluate("""() => [getComputedStyle(document.querySelector('.reference strong')).fontSize,
                                            getComputedStyle(document.querySelector('main p:not(.reference)')).fontSize]""")
    assert float(sizes[0].rstrip("px")) >= 1.25 * float(sizes[1].rstrip("px")), sizes
    box = reference.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= SMALL_PHONE["width"] and box["height"] < 40   # one line


# -- the phone's text size at 200% --------------------------------------------------------------------------

# A phone's larger-text setting, as Chromium on Android applies it to a page sized in rem: every size doubled.
# (Injected, so the context allows a style of the test's own; the pages themselves have no script.)
LARGER_TEXT = "html { font-size: 200% !important; }"
SIDEWAYS = """() => { const page = document.documentElement, width = page.clientWidth;
    const wide = [...document.querySelectorAll('body *:not(.skip)')].filter(e => {   // the skip link waits off screen
        const r = e.getBoundingClientRect(), s = getComputedStyle(e);
        return r.width > 0 && (r.right > width + 1 || r.left < -1 || e.scrollWidth > e.clientWidth + 1
                               && ['hidden', 'clip'].includes(s.overflowX));
    }).map(e => e.tagName + (e.id ? '#' + e.id : '') + ' ' + (e.textContent || '').trim().slice(0, 20));
    return page.scrollWidth > width + 1 ? ['the page scrolls sideways', ...wide] : wide; }"""


@pytest.mark.parametrize("width", [320, 375])
@pytest.mark.parametrize("office_id, language", [("sakata", "ja"), ("otaru", "en")])
def test_with_the_phones_text_at_200_percent_no_form_page_is_cut_off_or_scrolls_sideways(
        browser, live_server, office_id, language, width):
    """WCAG 1.4.4 on the phone itself: the larger-text setting at 200% on a 320 or 375 px screen. The input page
    with its errors, the confirmation, the completion and the page keeping what was typed: every word wraps
    inside the screen, nothing is cut off, and every control can still be reached."""
    from bot.forms import form_texts

    words = form_texts(language)["page"]
    context = browser.new_context(viewport={"width": width, "height": 640}, locale="ja-JP", timezone_id="Asia/Tokyo",
                                  has_touch=True, is_mobile=True, bypass_csp=True)
    tab = context.new_page()
    tab.set_default_timeout(10_000)

    def measured(heading: str) -> list[str]:
        expect(tab.get_by_role("heading", name=heading, exact=True)).to_be_visible()
        tab.wait_for_load_state("load")
        tab.add_style_tag(content=LARGER_TEXT)
        return tab.evaluate(SIDEWAYS)

    try:
        url = hold_first_free(live_server.rt, office_id, language)
        tab.goto(url)
        tab.get_by_role("button", name=words["input"]["submit"]).click()                  # nothing filled in
        assert measured(words["input"]["heading"]) == [], "errors"
        typed = {"#f-name": "Wolfeschlegelsteinhausenbergerdorff", "#f-name_kana": "ばーそろみゅー",
                 "#f-seeker_number": f"{width}{len(office_id):02d}-{len(language)}1", "#f-phone": "090-1234-5678",
                 "#f-birth_date": "平成2年4月1日", "#f-consultation": "応募書類の添削をお願いしたいです。"}
        for field, value in typed.items():
            if tab.locator(field).count():
                tab.locator(field).fill(value)
        if office_id == "sakata":
            tab.locator("#f-category-uij").check()
            tab.locator("#f-mypage_email_confirmed-yes").check()
        tab.get_by_role("button", name=words["input"]["submit"]).click()
        assert measured(words["confirm"]["heading"]) == [], "confirmation"
        taken_by_another(live_server.rt, url)
        tab.get_by_role("button", name=words["confirm"]["submit"]).click()
        assert measured(words["problem"]["full"]) == [], "kept"
        expect(tab.get_by_role("button", name=words["problem"]["resume"])).to_be_visible()
        tab.goto(hold_first_free(live_server.rt, office_id, language))
        for field, value in typed.items():
            if tab.locator(field).count():
                tab.locator(field).fill(value[:-1] + "2" if field == "#f-seeker_number" else value)   # another request
        if office_id == "sakata":
            tab.locator("#f-category-uij").check()
            tab.locator("#f-mypage_email_confirmed-yes").check()
        tab.get_by_role("button", name=words["input"]["submit"]).click()
        tab.get_by_role("button", name=words["confirm"]["submit"]).click()
        assert measured(words["done"]["heading"]) == [], "completion"
    finally:
        context.close()


# -- a form sent after its slot was gone: what was typed waits on the page --------------------------------

CARRIED = {"#f-name": "携帯 花子", "#f-name_kana": "けいたい はなこ", "#f-seeker_number": "13579-246801",
           "#f-phone": "080-1357-2468", "#f-birth_date": "19851122", "#f-consultation": "応募書類の添削キボウ"}
RESUME = "日時を選び直したので、この内容で続ける"


def sent_after_the_slot_was_taken(tab, rt, line_user, button: str):
    """An Otaru form filled in on the phone from the chat's link; the hold runs out, someone else takes the
    slot, then `button` is tapped. (user, the first form link, the slot taken). Otaru: its many slots, which
    the other tests of the module's server do not use up (Sakata's few are)."""
    user = line_user("otaru")
    walk_to_slots(user, rt)
    user.says("1")
    first = user.fake.new_form_link(user.user_id)
    tab.goto(first)
    for field, value in CARRIED.items():
        tab.locator(field).fill(value)
    if button == "この内容で申し込む":
        tab.get_by_role("button", name="入力内容を確認する").click()
        expect(tab.get_by_role("heading", name="入力内容の確認")).to_be_visible()
    taken = held_slot(rt, first)
    taken_by_another(rt, first)
    tab.get_by_role("button", name=button).click()
    expect(tab.get_by_role("heading", name="その枠は埋まりました")).to_be_visible()
    return user, first, taken


def test_a_form_sent_after_its_slot_was_taken_goes_on_from_the_phone_once_another_slot_is_chosen(
        small_phone, live_server, line_user):
    """The page that says the slot is gone fits the small screen, keeps what was typed out of sight and its
    button within a thumb's reach; once another slot is chosen in the chat, that button carries it to the new
    slot's confirmation and the request is made for it."""
    rt = live_server.rt
    user, first, taken = sent_after_the_slot_was_taken(small_phone, rt, line_user, "この内容で申し込む")
    assert small_phone.evaluate("document.documentElement.scrollWidth") <= SMALL_PHONE["width"]
    resume = small_phone.get_by_role("button", name=RESUME)
    expect(resume).to_be_visible()
    assert small_targets(small_phone) == []
    box = resume.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= SMALL_PHONE["width"]
    shown = small_phone.locator("body").inner_text()
    assert [value for value in CARRIED.values() if value in shown] == []
    for _ in range(30):                                                         # reached by the keyboard too
        small_phone.keyboard.press("Tab")
        if small_phone.evaluate("document.activeElement.textContent.trim()") == RESUME:
            break
    expect(resume).to_be_focused()

    user.says("予約")                                                            # another slot in the chat
    user.says("1")
    second = user.fake.new_form_link(user.user_id, before=first)
    newest = held_slot(rt, second)
    assert newest != taken
    resume.click()                                    # straight to the new slot's check: no page between
    expect(small_phone.get_by_role("heading", name="入力内容の確認")).to_be_visible()
    confirming = small_phone.locator("form[action$='/confirm']")
    assert link_key(confirming.get_attribute("action")) == link_key(second) + "/confirm"   # the new slot's link
    expect(small_phone.get_by_text(slot_label(newest))).to_be_visible()
    for value in ("携帯 花子", "13579-246801", "080-1357-2468"):
        expect(small_phone.get_by_text(value, exact=True)).to_be_visible()
    small_phone.get_by_role("button", name="この内容で申し込む").click()
    expect(small_phone.get_by_role("heading", name="お申込みを受け付けました")).to_be_visible()
    expect(small_phone.get_by_text(re.compile(r"^受付番号: "))).to_be_visible()
    assert requested_slot(rt, user) == newest


@pytest.mark.parametrize("button", ["入力内容を確認する", "この内容で申し込む"])
def test_the_back_button_on_the_kept_input_page_sends_nothing_again_and_loses_nothing(
        small_phone, live_server, line_user, button):
    """The phone's back gesture on the page keeping what was typed: nothing is sent again without the person
    asking (the pages are not stored, so Chromium refetches by GET or asks before posting again); forward
    and the resubmission the browser asks to confirm bring the page back with everything it kept."""
    rt = live_server.rt
    sent_after_the_slot_was_taken(small_phone, rt, line_user, button)
    answered: list[str] = []
    small_phone.on("response", lambda response: answered.append(f"{response.request.method} {response.status}"))
    through_history(small_phone, small_phone.go_back)
    through_history(small_phone, small_phone.go_forward)
    assert not [answer for answer in answered if answer.startswith("POST")], answered
    expect(small_phone.get_by_role("button", name=RESUME)).to_have_count(0)
    small_phone.reload()                                      # the resubmission, confirmed
    expect(small_phone.get_by_role("heading", name="その枠は埋まりました")).to_be_visible()
    expect(small_phone.get_by_role("button", name=RESUME)).to_be_visible()
    kept = {name: small_phone.locator(f"input[type=hidden][name={name}]").get_attribute("value")
            for name in ("name", "seeker_number", "phone")}
    assert kept == {"name": "携帯 花子", "seeker_number": "13579-246801", "phone": "080-1357-2468"}


def through_history(tab, move) -> None:
    """Back or forward; to a page that was posted, Chromium shows its "Confirm Form Resubmission" page
    (ERR_CACHE_MISS) and sends nothing. Right after that page the tab may be between renderers for a moment."""
    for _ in range(50):
        try:
            move()
            return
        except PlaywrightError as error:
            if "ERR_CACHE_MISS" in str(error):
                return
            if "Not attached to an active page" not in str(error):
                raise
        tab.wait_for_timeout(100)
    raise AssertionError("the tab never came back to a page")


def requested_slot(rt, user):
    with rt.db.reading() as s:
        return s.scalar(select(Booking.slot_start).join(Conversation, Conversation.id == Booking.conversation_id)
                        .where(Conversation.line_user_id == user.user_id))


def test_the_purpose_before_the_sensitive_question_stands_apart_from_the_field_above(small_phone, live_server):
    """Sakata's purpose of the category question is a box of its own: not glued to the phone field above it,
    where it read as that field's note."""
    url = hold_first_free(live_server.rt, "sakata")
    small_phone.goto(url)
    above = small_phone.locator("#f-phone").bounding_box()
    box = small_phone.locator("section.sensitive").bounding_box()
    assert box["y"] - (above["y"] + above["height"]) >= 12
