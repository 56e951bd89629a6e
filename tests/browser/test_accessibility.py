"""Accessibility in Debian's Chromium (JIS X 8341-3 AA as far as automated checks go): axe-core finds no serious
or critical violation on the form (in each language), the dashboard, the terms and the simulator; the form is
used with the keyboard alone, with a visible focus; labels and errors are tied to their fields; and at 200% zoom
(a viewport half as wide) nothing is cut off or needs scrolling sideways.

axe-core comes bundled in the pinned `axe-playwright-python` package: nothing is fetched while testing."""
from __future__ import annotations

import itertools
import re
import uuid
from datetime import datetime, timedelta

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, expect

from bot.clock import TOKYO
from bot.forms import form_texts
from tests.formflow import another_chosen, hold_first_free, taken_by_another
from tests.staffkit import DETAILS, PASSWORD, create_staff, fast_password_hashing, make_request  # noqa: F401 (fixture)

pytestmark = pytest.mark.browser

BLOCKING = ("serious", "critical")
USERNAME = "a11y-staff"
MAX_TABS = 60
ZOOMED = {"width": 640, "height": 800}        # a 1280-px-wide window at 200%
NARROW = {"width": 320, "height": 640}        # WCAG 1.4.10 reflow: 320 CSS px


@pytest.fixture(scope="module")
def axe() -> Axe:
    return Axe()


@pytest.fixture(scope="module")
def account(live_server):
    """An admin: every dashboard page, account management included, is open to it."""
    create_staff(live_server.rt, username=USERNAME, role="admin")
    return USERNAME


def blocking_violations(axe: Axe, page: Page) -> list[str]:
    results = axe.run(page)
    return [f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
            for v in results.response["violations"] if v["impact"] in BLOCKING]


def form_url(live_server, office_id: str, language: str) -> str:
    """A conversation in `language` holding the first free slot (any week: the server lives for the module)."""
    return hold_first_free(live_server.rt, office_id, language)


_REQUESTS = itertools.count()


def a_request(live_server, details: dict | None = None) -> str:
    """A request on its own Sakata slot, weeks after the ones the form tests hold (a seat each)."""
    n = next(_REQUESTS)
    start = datetime(2027, 1, 18, 14, 0, tzinfo=TOKYO) + timedelta(weeks=n // 3, hours=n % 3)
    return make_request(live_server.rt, start=start, user_id="U" + uuid.uuid4().hex, details=details)


def seeker_number() -> str:
    """A job seeker number no other request of this server uses (one open request per seeker)."""
    return f"{uuid.uuid4().int % 100000:05d}-{uuid.uuid4().int % 1000000:06d}"


def overflows_sideways(page: Page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth > document.documentElement.clientWidth + 1")


def clipped_elements(page: Page) -> list[str]:
    """Elements whose own content is wider than their box and hidden (text cut off)."""
    return page.evaluate("""() => [...document.querySelectorAll('body *')].filter(e => {
        const s = getComputedStyle(e);
        return e.scrollWidth > e.clientWidth + 1 && (s.overflowX === 'hidden' || s.overflowX === 'clip')
               && e.clientWidth > 0;
    }).map(e => e.tagName + (e.id ? '#' + e.id : ''))""")


def focus_ring(page: Page) -> dict:
    """The focused element and how its focus shows (outline or box-shadow)."""
    return page.evaluate("""() => {
        const e = document.activeElement, s = getComputedStyle(e);
        return {tag: e.tagName, id: e.id, name: e.getAttribute('name'), type: e.getAttribute('type'),
                outline: s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2,
                shadow: s.boxShadow !== 'none'};
    }""")


def log_in_by_keyboard(page: Page, base: str) -> None:
    page.goto(f"{base}/staff/login")
    page.keyboard.press("Tab")                       # the skip link
    page.keyboard.press("Tab")
    assert focus_ring(page)["name"] == "username"
    page.keyboard.type(USERNAME)
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="予定表", exact=True)).to_be_visible()


# -- axe-core ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("language", ["ja", "easy", "en"])
def test_the_form_pages_pass_axe_in_every_language(page, live_server, axe, language, screenshot):
    page.goto(form_url(live_server, "sakata", language))
    words = form_texts(language)["page"]
    expect(page.get_by_role("heading", name=words["input"]["heading"], exact=True)).to_be_visible()
    assert blocking_violations(axe, page) == []
    page.get_by_role("button", name=words["input"]["submit"]).click()           # nothing filled in: errors
    expect(page.locator(".error-summary")).to_be_visible()
    assert blocking_violations(axe, page) == []
    screenshot(f"errors-{language}")
    page.goto(form_url(live_server, "otaru", language))
    page.get_by_label(re.compile(form_texts(language)["labels"]["name"])).first.fill("Yamada Taro")
    for name, value in (("name_kana", "やまだ たろう"), ("birth_date", "1990-04-01"), ("seeker_number", seeker_number()),
                        ("phone", "090-1234-5678"), ("consultation", "Application documents")):
        page.locator(f"#f-{name}").fill(value)
    page.get_by_role("button", name=words["input"]["submit"]).click()
    expect(page.get_by_role("heading", name=words["confirm"]["heading"], exact=True)).to_be_visible()
    assert blocking_violations(axe, page) == []
    page.get_by_role("button", name=words["confirm"]["submit"]).click()
    expect(page.get_by_text(re.compile(r"受付番号: [A-Z0-9]{4}-[A-Z0-9]{4}"))).to_be_visible()
    assert blocking_violations(axe, page) == []
    page.goto(f"{live_server.url}/form/not-a-token")
    assert blocking_violations(axe, page) == []


@pytest.mark.parametrize("language", ["ja", "en"])
def test_the_pages_keeping_what_was_typed_pass_axe(page, live_server, axe, language, screenshot):
    """A form sent after its slot was taken: the page keeping what was typed for another slot, the one its
    button brings while no other slot has been chosen in the chat ('waiting'), and once one has, that slot's
    confirmation page, straight away."""
    words = form_texts(language)["page"]
    url = form_url(live_server, "otaru", language)
    page.goto(url)
    for name, value in (("name", "Yamada Taro"), ("name_kana", "やまだ たろう"), ("birth_date", "1990-04-01"),
                        ("seeker_number", seeker_number()), ("phone", "090-1234-5678"),
                        ("consultation", "Application documents")):
        page.locator(f"#f-{name}").fill(value)
    taken_by_another(live_server.rt, url)
    page.get_by_role("button", name=words["input"]["submit"]).click()
    expect(page.get_by_role("heading", name=words["problem"]["full"], exact=True)).to_be_visible()
    assert blocking_violations(axe, page) == []
    screenshot(f"kept-{language}")
    page.get_by_role("button", name=words["problem"]["resume"]).click()
    expect(page.get_by_role("heading", name=words["problem"]["waiting"], exact=True)).to_be_visible()
    assert blocking_violations(axe, page) == []
    screenshot(f"waiting-{language}")
    another_chosen(live_server.rt, url)
    page.get_by_role("button", name=words["problem"]["resume"]).click()
    expect(page.get_by_role("heading", name=words["confirm"]["heading"], exact=True)).to_be_visible()
    assert blocking_violations(axe, page) == []


def test_the_dashboard_passes_axe(page, live_server, axe, account):
    reference = a_request(live_server)
    page.goto(f"{live_server.url}/staff/login")
    assert blocking_violations(axe, page) == []
    log_in_by_keyboard(page, live_server.url)
    assert blocking_violations(axe, page) == []
    for path in ("/staff/queue", f"/staff/bookings/{reference}", "/staff/bookings/new", "/staff/search",
                 "/staff/outbox", "/staff/groups", "/staff/export", "/staff/audit", "/staff/account", "/staff/users"):
        page.goto(f"{live_server.url}{path}")
        assert blocking_violations(axe, page) == [], path
    page.goto(f"{live_server.url}/staff/bookings/{reference}")
    page.get_by_role("button", name="個人情報を表示", exact=True).click()
    expect(page.locator("table.details")).to_be_visible()
    assert blocking_violations(axe, page) == [], "the details shown"


@pytest.mark.parametrize("path", ["/terms/sakata", "/terms/otaru?lang=en", "/terms/sakata?lang=easy",
                                  "/terms/sakata/2022-07-01"])
def test_the_terms_pages_pass_axe(page, live_server, axe, path):
    page.goto(f"{live_server.url}{path}")
    assert blocking_violations(axe, page) == []


def test_the_simulator_passes_axe(page, live_server, axe):
    page.goto(f"{live_server.url}/simulator?office=sakata")
    page.wait_for_selector("body[data-ready]", state="attached")
    assert blocking_violations(axe, page) == []


def test_the_simulators_unknown_office_page_passes_axe(page, live_server, axe):
    page.goto(f"{live_server.url}/simulator?office=sakta")
    assert blocking_violations(axe, page) == []


# -- the keyboard alone ------------------------------------------------------------------------------------

def test_the_form_is_filled_in_and_sent_with_the_keyboard_alone(page, live_server, screenshot):
    page.goto(form_url(live_server, "sakata", "en"))
    typed = {"name": "Nguyen Van An", "name_kana": "ぐえん ばん あん", "seeker_number": seeker_number(),
             "phone": "090-1234-5678"}
    seen: list[str] = []
    for _ in range(MAX_TABS):
        page.keyboard.press("Tab")
        ring = focus_ring(page)
        assert ring["outline"] or ring["shadow"], f"no visible focus on {ring}"
        name = ring["name"] or ring["id"] or ring["tag"]
        seen.append(name)
        if ring["name"] in typed:
            page.keyboard.type(typed.pop(ring["name"]))
        elif ring["name"] == "category" and "category" not in seen[:-1]:
            page.keyboard.press("ArrowDown")                        # the second category (UIJ turn)
        elif ring["name"] == "mypage_email_confirmed":
            page.keyboard.press("Space")
        elif ring["tag"] == "BUTTON":
            break
    assert seen[0] == "A" and not typed, seen                      # the skip link first; every field reached
    screenshot("keyboard-filled")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Check your entries", exact=True)).to_be_visible()
    for _ in range(MAX_TABS):
        page.keyboard.press("Tab")
        if focus_ring(page)["tag"] == "BUTTON":
            break
    page.keyboard.press("Enter")                                  # "Send this request": the first button
    expect(page.get_by_text(re.compile(r"受付番号: [A-Z0-9]{4}-[A-Z0-9]{4}"))).to_be_visible()
    screenshot("keyboard-done")


def test_the_skip_link_shows_when_focused_and_moves_to_the_content(page, live_server):
    page.goto(form_url(live_server, "otaru", "easy"))
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name=form_texts("easy")["page"]["skip"])
    expect(skip).to_be_focused()
    box = skip.bounding_box()
    assert box and box["x"] >= 0 and box["y"] >= 0                # on screen, not parked off it
    page.keyboard.press("Enter")
    assert page.evaluate("location.hash") == "#main"


def test_errors_are_tied_to_their_fields_and_reachable_from_the_summary(page, live_server):
    page.goto(form_url(live_server, "otaru", "ja"))
    page.locator("#f-phone").fill("12-34")
    page.get_by_role("radio", name="通訳者").check()
    page.get_by_role("button", name="入力内容を確認する").click()
    summary = page.locator(".error-summary")
    expect(summary).to_be_visible()
    for field in ("name", "phone", "companion_detail"):
        control = page.locator(f"#f-{field}")
        expect(control).to_have_attribute("aria-invalid", "true")
        error = page.locator(f"#f-{field}-error")
        expect(control).to_have_accessible_description(re.compile(re.escape(error.inner_text())))
    expect(page.get_by_label(re.compile("^電話番号"))).to_have_value("12-34")   # the label names the field
    summary.get_by_role("link", name=re.compile("^通訳の言語")).click()
    expect(page.locator("#f-companion_detail")).to_be_focused()


def test_on_the_dashboard_what_a_button_did_takes_the_focus(page, live_server, account):
    """With the keyboard alone (and a screen reader): a refused login, and what 承認 did, are where the focus is
    once the page comes back, with a visible ring; the next Tab goes on from there, not from the top of the page."""
    reference = a_request(live_server)
    page.goto(f"{live_server.url}/staff/login")
    page.locator("#username").focus()
    page.keyboard.type(USERNAME)
    page.keyboard.press("Tab")
    page.keyboard.type("not the password")
    page.keyboard.press("Enter")
    expect(page.locator("#login-error")).to_be_focused()
    ring = focus_ring(page)
    assert ring["outline"] or ring["shadow"], ring
    page.keyboard.press("Tab")
    expect(page.locator("#username")).to_be_focused()
    page.locator("#password").focus()
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="予定表", exact=True)).to_be_visible()
    page.goto(f"{live_server.url}/staff/bookings/{reference}")
    page.get_by_role("button", name="承認する（予約を確定）").focus()
    page.keyboard.press("Enter")
    done = page.get_by_role("status").filter(has_text="承認しました")
    expect(done).to_be_focused()
    page.keyboard.press("Tab")
    assert page.evaluate("document.querySelector('main').contains(document.activeElement)")


def test_showing_and_hiding_the_details_by_keyboard_keeps_the_focus_at_the_details(page, live_server, account):
    """個人情報を表示 brought the focus to 申込内容, but 個人情報を隠す left it at the top of the page (the next Tab
    went to the skip link): a keyboard or screen reader member had to find their way back down. Both now leave it
    on the 申込内容 heading, and the next Tab reaches the button beside it."""
    reference = a_request(live_server)
    log_in_by_keyboard(page, live_server.url)
    page.goto(f"{live_server.url}/staff/bookings/{reference}")
    page.get_by_role("button", name="個人情報を表示", exact=True).focus()
    page.keyboard.press("Enter")
    heading = page.get_by_role("heading", name="申込内容", exact=True)
    expect(page.locator("table.details")).to_be_visible()
    expect(heading).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="個人情報を隠す", exact=True)).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("table.details")).to_have_count(0)
    expect(heading).to_be_focused()
    ring = focus_ring(page)
    assert ring["outline"] or ring["shadow"], ring
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="個人情報を表示", exact=True)).to_be_focused()


def test_a_date_field_keeps_its_focus_ring_on_its_calendar_button(page, live_server, account):
    """Tab walks through a date field's parts, its calendar button last: the ring stays on the field."""
    log_in_by_keyboard(page, live_server.url)
    page.goto(f"{live_server.url}/staff/export")
    page.locator("#from").focus()
    steps = 0
    while focus_ring(page)["id"] == "from" and steps < 8:
        ring = page.evaluate("""() => { const s = getComputedStyle(document.getElementById('from'));
            return s.outlineStyle !== 'none' || s.boxShadow !== 'none'; }""")
        assert ring, f"no visible focus after {steps} Tab presses in the date field"
        page.keyboard.press("Tab")
        steps += 1
    assert steps >= 2 and focus_ring(page)["id"] == "to"


# -- 200% zoom -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("viewport", [ZOOMED, NARROW], ids=["200%", "320px"])
def test_nothing_is_lost_at_200_percent(browser, live_server, account, viewport):
    context = browser.new_context(viewport=viewport, locale="ja-JP", timezone_id="Asia/Tokyo")
    page = context.new_page()
    try:
        # Words a phone cannot fit on one line: a long romanised name, a pasted URL, a long user name.
        reference = a_request(live_server, {**DETAILS["sakata"], "name": "Bartholomew-Nguyen-Van-An-Longname",
                                            "companion_detail": "https://example.org/" + "a" * 60})
        create_staff(live_server.rt, username=f"temporary.staff-account_{uuid.uuid4().hex}")
        pages = [form_url(live_server, "sakata", "ja"), form_url(live_server, "otaru", "en"),
                 f"{live_server.url}/terms/sakata?lang=easy", f"{live_server.url}/staff/login"]
        for url in pages:
            page.goto(url)
            assert not overflows_sideways(page), url
            assert clipped_elements(page) == [], url
        log_in_by_keyboard(page, live_server.url)
        for path in ("/staff/", "/staff/queue", f"/staff/bookings/{reference}", "/staff/users"):
            page.goto(f"{live_server.url}{path}")
            assert not overflows_sideways(page), path
            assert clipped_elements(page) == [], path
        page.goto(f"{live_server.url}/staff/bookings/{reference}")
        page.get_by_role("button", name="個人情報を表示", exact=True).click()   # the long name and address shown
        # Measured once the page opened at the details has loaded: the text is visible as soon as it is parsed, when
        # the stylesheet may still be on its way (unstyled, the details table was 729 px wide at 320 px).
        page.wait_for_url(f"**/staff/bookings/{reference}#details-h")
        expect(page.get_by_role("heading", name="申込内容", exact=True)).to_be_focused()
        expect(page.get_by_text("Bartholomew-Nguyen-Van-An-Longname")).to_be_visible()
        page.evaluate("document.fonts.ready")
        assert not overflows_sideways(page) and clipped_elements(page) == [], "the details shown"
    finally:
        context.close()
