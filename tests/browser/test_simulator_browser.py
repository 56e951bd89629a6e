"""The simulator in Debian's Chromium: a Sakata user reaches slot selection by tapping and by typing."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from bot import richmenu
from bot.simulator import store
from bot.simulator.models import SimUser

pytestmark = pytest.mark.browser

SLOT_LABEL = re.compile(r"^\d{1,2}/\d{1,2}\(.\) \d{2}:\d{2}$")
FIRST_DAY = "12/7(月)"   # the clock is frozen on Tuesday 2026-12-01 10:00: Sakata's next Monday
MAX_STEPS = 30
BOT_ROWS = "#user-chat .row.bot"


def open_simulator(page: Page, base: str, office: str = "sakata") -> None:
    page.goto(f"{base}/simulator?office={office}")
    expect(page.get_by_role("heading", name=re.compile("LINE シミュレーター"))).to_be_visible()
    page.wait_for_selector("body[data-ready]", state="attached")  # users loaded (or the first one added)


def new_user(page: Page) -> None:
    """A fresh test user (adds the account as a friend): wait for the bot's greeting."""
    before = page.locator("#user option").count()
    page.get_by_role("button", name="利用者を追加").click()
    expect(page.locator("#user option")).to_have_count(before + 1)
    expect(page.locator(BOT_ROWS)).to_have_count(1)


def after_reply(page: Page, act) -> None:
    """Do something in the chat and wait until the bot has answered it."""
    before = page.locator(BOT_ROWS).count()
    act()
    page.wait_for_function("([sel, n]) => document.querySelectorAll(sel).length > n", arg=[BOT_ROWS, before])


def quick_labels(page: Page) -> list[str]:
    return [label.strip() for label in page.locator("#user-quick button").all_inner_texts()]


def slot_labels(page: Page) -> list[str]:
    return [label for label in quick_labels(page) if SLOT_LABEL.match(label)]


def tap(page: Page, label: str) -> None:
    after_reply(page, lambda: page.locator("#user-quick").get_by_role("button", name=label, exact=True).click())


def answer_until_slots(page: Page, answer) -> list[str]:
    """Answer はい (by `tap` or `type_text`) to every question and checklist item: the slots offered."""
    for _ in range(MAX_STEPS):
        if slot_labels(page):
            break
        answer(page, "はい")
    return slot_labels(page)


def type_text(page: Page, words: str) -> None:
    def send() -> None:
        page.get_by_role("textbox", name="メッセージを入力", exact=True).fill(words)
        page.locator("#user-composer").get_by_role("button", name="送信", exact=True).click()
    after_reply(page, send)


def test_page_loads_with_a_user_the_rich_menu_and_the_staff_pane(page, live_server, screenshot):
    open_simulator(page, live_server.url)
    expect(page.locator("#user option")).not_to_have_count(0)
    expect(page.locator(BOT_ROWS).first).to_be_visible()  # the greeting after the follow event
    expect(page.locator("#richmenu .area")).to_have_count(6)
    expect(page.locator("#richmenu").get_by_role("button", name="予約", exact=True)).to_be_visible()
    expect(page.get_by_role("heading", name="職員グループ")).to_be_visible()
    expect(page.locator(".group-note:not([hidden])")).to_contain_text("LINE_STAFF_GROUP_ID_SAKATA")
    expect(page.locator("#now")).to_contain_text("2026/12/1(火) 10:00")
    screenshot("loaded")


def test_sakata_user_reaches_slot_selection_by_taps(page, live_server, screenshot):
    open_simulator(page, live_server.url)
    new_user(page)
    after_reply(page, lambda: page.locator("#richmenu").get_by_role("button", name="予約", exact=True).click())
    expect(page.locator("#user-chat .row.user").last).to_have_text(re.compile("予約"))
    tap(page, "同意する")
    expect(page.locator("#user-chat .row.user").last).to_contain_text("同意する")  # displayText as my bubble
    slots = answer_until_slots(page, tap)
    assert slots and slots[0].startswith(FIRST_DAY)
    expect(page.locator(BOT_ROWS).last).to_contain_text(slots[0])
    screenshot("slots")

    tap(page, slots[0])  # the held slot comes as a Flex bubble with a URI button to the form
    page.locator(BOT_ROWS).last.get_by_role("button", name="入力ページを開く").click()
    browser = page.locator("#browser")
    expect(browser).to_be_visible()
    assert "/form/" in page.locator("#browser-frame").get_attribute("src")
    screenshot("form-overlay")
    browser.get_by_role("button", name="閉じる").click()
    expect(browser).to_be_hidden()


def test_sakata_user_reaches_slot_selection_by_typing(page, live_server, screenshot):
    open_simulator(page, live_server.url)
    new_user(page)
    type_text(page, "予約")
    type_text(page, "同意する")
    slots = answer_until_slots(page, type_text)
    assert slots and slots[0].startswith(FIRST_DAY)
    expect(page.locator(BOT_ROWS).last).to_contain_text(slots[0])
    expect(page.locator("#user-chat .row.user .bubble").last).to_have_text("はい")
    screenshot("slots")


def lines_of(locator) -> int:
    """How many lines a node's text takes."""
    return locator.evaluate("""node => {
        const range = document.createRange(); range.selectNodeContents(node);
        return new Set([...range.getClientRects()].map(r => Math.round(r.top))).size; }""")


def on_a_phone(browser, live_server, width: int, height: int):
    """The simulator opened in a phone's screen (a fixture's body: yields the page, then closes it)."""
    context = browser.new_context(viewport={"width": width, "height": height}, locale="ja-JP",
                                  timezone_id="Asia/Tokyo")
    phone = context.new_page()
    open_simulator(phone, live_server.url)
    yield phone
    context.close()


@pytest.fixture
def phone_screen(browser, live_server):
    """The simulator on a 360 x 640 phone screen."""
    yield from on_a_phone(browser, live_server, 360, 640)


def test_on_a_phone_screen_the_composer_keeps_its_send_button_on_one_line(phone_screen):
    """At 360 px the text box takes the room left: 送信 must not break into two lines of one letter each."""
    send = phone_screen.locator("#user-composer").get_by_role("button", name="送信", exact=True)
    expect(send).to_be_visible()
    assert lines_of(send) == 1


def test_on_a_phone_screen_the_form_links_bubble_fits_the_chat(phone_screen):
    """A 300 px Flex bubble beside the avatar in a 360 px screen: it shrinks, as in LINE, and nothing scrolls sideways."""
    phone = phone_screen
    new_user(phone)
    type_text(phone, "予約")
    tap(phone, "同意する")
    tap(phone, answer_until_slots(phone, tap)[-1])
    bubble = phone.locator(BOT_ROWS).last.locator(".fx-bubble")
    expect(bubble.get_by_role("button", name="入力ページを開く")).to_be_visible()
    chat = phone.locator("#user-chat")
    assert chat.evaluate("chat => chat.scrollWidth - chat.clientWidth") <= 0
    chat_right = chat.evaluate("chat => chat.getBoundingClientRect().right")
    assert bubble.evaluate("bubble => bubble.getBoundingClientRect().right") <= chat_right


def test_the_dashboard_account_command_and_the_staff_cards_hours_follow_the_office_shown(page, live_server):
    """An account is one office's and a username is taken once: the page's command is the shown office's; the
    staff pane says when that office's cards arrive (they wait at night and over closed days)."""
    open_simulator(page, live_server.url)
    hint = page.locator("#staff-account-hint")
    command = {office: hint.locator(f"code[data-office={office}]") for office in ("sakata", "otaru")}
    expect(command["sakata"]).to_be_visible()
    expect(command["sakata"]).to_contain_text("--office sakata --username tanaka-sakata")
    expect(command["otaru"]).to_be_hidden()
    expect(page.locator(".group-note:not([hidden])")).to_contain_text("08:00〜21:00（開庁日のみ）に届きます")
    page.locator("#office").select_option("otaru")
    expect(command["otaru"]).to_be_visible()
    expect(command["otaru"]).to_contain_text("--office otaru --username tanaka-otaru")
    expect(command["sakata"]).to_be_hidden()
    expect(page.locator(".group-note:not([hidden])")).to_contain_text("LINE_STAFF_GROUP_ID_OTARU")


def test_setting_the_clock_with_no_time_chosen_sends_nothing(page, live_server):
    """設定 with the field empty, or with only the date typed (a datetime-local field then has no value), is refused
    by the field and sends nothing; it used to send an empty time, which put the clock back to real time (the
    other button's job, 実時間に戻す)."""
    open_simulator(page, live_server.url)
    form = page.locator("#clock-form")
    form.evaluate("f => { window.clockSubmits = 0; f.addEventListener('submit', () => window.clockSubmits++); }")
    form.get_by_role("button", name="設定", exact=True).click()
    page.locator("#clock-input").press_sequentially("12062026")        # the date only, no time yet
    form.get_by_role("button", name="設定", exact=True).click()
    assert page.evaluate("window.clockSubmits") == 0                    # a submit event fires during the click
    expect(page.locator("#clock-input")).to_have_js_property("validity.valueMissing", True)


def test_the_settings_field_shows_the_saved_monthly_limit(page, live_server):
    """詳細設定's field says a blank means no limit: after saving 0 and reloading it shows 0 (it used to be blank,
    as if there were no limit), and another office's field shows that office's limit."""
    try:
        open_simulator(page, live_server.url, "otaru")
        page.get_by_text("詳細設定").click()
        field = page.get_by_label(re.compile("今月のメッセージ上限"))
        expect(field).to_have_value("")
        field.fill("0")
        page.locator("#quota-form").get_by_role("button", name="保存").click()
        expect(page.locator("#toast")).to_have_text("上限を保存しました")
        page.reload()
        page.wait_for_selector("body[data-ready]", state="attached")
        page.get_by_text("詳細設定").click()
        expect(field).to_have_value("0")
        page.locator("#office").select_option("sakata")
        expect(field).to_have_value("")
    finally:
        with live_server.rt.db.transaction() as s:
            store.set_quota_limit(s, "otaru", None)


def test_the_rich_menu_install_says_the_earlier_menus_were_deleted(page, live_server):
    """An earlier install's menu (same name, no longer the default) is deleted by the button, as by
    `richmenu deploy`: the message after the install says so."""
    rt = live_server.rt
    with rt.db.transaction() as s:
        store.create_rich_menu(s, "otaru", "richmenu-earlier", richmenu.default_menu().request(), rt.clock.now())
    try:
        open_simulator(page, live_server.url, "otaru")
        page.get_by_role("button", name=re.compile("登録する")).click()
        expect(page.locator("#toast")).to_contain_text("リッチメニューを登録しました（")
        expect(page.locator("#toast")).to_contain_text("以前に登録したメニュー 1 件は削除しました。")
        expect(page.locator("#richmenu-note")).to_be_hidden()
    finally:
        with rt.db.transaction() as s:
            store.set_default_rich_menu(s, "otaru", None)
            for menu in store.rich_menus(s, "otaru"):
                store.delete_rich_menu(s, "otaru", menu.rich_menu_id)


def test_a_failed_call_is_told_kindly(page, live_server):
    """The user the page shows is gone (the database was made again): sending says the user is not found and
    what to do, where it used to say only 送信できませんでした（404）."""
    open_simulator(page, live_server.url)
    new_user(page)
    user_id = page.locator("#user").input_value()
    with live_server.rt.db.transaction() as s:
        s.delete(s.query(SimUser).filter_by(office_id="sakata", user_id=user_id).one())
    page.get_by_role("textbox", name="メッセージを入力", exact=True).fill("予約")
    page.locator("#user-composer").get_by_role("button", name="送信", exact=True).click()
    expect(page.locator("#toast")).to_have_text(
        "事業所か利用者が見つかりません。データベースを作り直したときは、ページを再読み込みしてください。")


def test_an_unknown_office_offers_the_offices_there_are(page, live_server):
    answer = page.goto(f"{live_server.url}/simulator?office=sakta")
    assert answer.status == 404
    expect(page.get_by_role("heading", name=re.compile("事業所「sakta」は見つかりません"))).to_be_visible()
    page.get_by_role("link", name="ハローワーク酒田").click()
    page.wait_for_selector("body[data-ready]", state="attached")
    expect(page.locator("#office")).to_have_value("sakata")


def test_a_server_out_of_reach_is_said_not_kept_silent(page, live_server):
    """The page polls every second: while the server cannot be reached it says so (it used to say nothing), and
    the message goes once the server answers again."""
    open_simulator(page, live_server.url)
    page.route("**/simulator/poll*", lambda route: route.abort())
    expect(page.locator("#toast")).to_have_text("サーバーに接続できません。サーバーが動いているか確認してください。")
    page.unroute("**/simulator/poll*")


@pytest.fixture
def phone_375(browser, live_server):
    """The simulator on a 375 x 740 phone screen."""
    yield from on_a_phone(browser, live_server, 375, 740)


def test_on_a_phone_the_development_badge_stays_whole(phone_375):
    """開発用 used to break into 開 / 発用 at the end of the title's line."""
    assert lines_of(phone_375.locator("h1 .badge")) == 1


def test_on_a_phone_the_simulated_phone_fills_the_screen(phone_375):
    """Scrolled to, the simulated phone takes the screen's height (not 80% of it, which left the chat two bubbles
    high under the rich menu), and no more: the chat, its buttons and the menu are seen together."""
    phone = phone_375.locator("section.phone")
    phone.scroll_into_view_if_needed()
    height = phone.evaluate("node => node.getBoundingClientRect().height")
    assert 740 - 32 <= height <= 740


def test_on_a_phone_what_a_setting_did_is_said_on_screen(phone_375):
    """The settings are at the top of the page and the chat's message bar far below: saving the limit is said
    where it can be seen (it used to be said inside the chat, off the screen)."""
    page = phone_375
    page.get_by_text("詳細設定").click()
    page.locator("#quota-form").get_by_role("button", name="保存").click()  # blank: no limit, as it was
    expect(page.locator("#toast")).to_have_text("上限を保存しました")
    expect(page.locator("#toast")).to_be_in_viewport(ratio=1)
