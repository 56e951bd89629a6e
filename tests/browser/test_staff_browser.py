"""The staff dashboard in Debian's Chromium: log in, confirm a request, block a day, export CSV."""
from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from bot.clock import TOKYO
from bot.models import SlotBlock
from bot.services import holds
from bot.staff import personal
from tests.staffkit import PASSWORD, SAKATA_MONDAY, booking, create_staff, make_request

pytestmark = pytest.mark.browser

USERNAME = "browser-staff"


@pytest.fixture(scope="module")
def account(live_server):
    create_staff(live_server.rt, username=USERNAME)
    return USERNAME


def log_in(page: Page, base: str, username: str = USERNAME) -> None:
    page.goto(f"{base}/staff/")
    expect(page.get_by_role("heading", name="職員用ページ ログイン")).to_be_visible()
    page.get_by_label("ユーザー名", exact=True).fill(username)
    page.get_by_label("パスワード", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="ログイン", exact=True).click()
    expect(page.get_by_role("heading", name="予定表", exact=True)).to_be_visible()


@contextmanager
def phone_at(browser, width: int = 375, height: int = 812) -> Iterator[Page]:
    """A page of a phone's screen (touch, Japanese, Tokyo time), closed afterwards."""
    context = browser.new_context(viewport={"width": width, "height": height}, locale="ja-JP",
                                  timezone_id="Asia/Tokyo", is_mobile=True, has_touch=True)
    try:
        yield context.new_page()
    finally:
        context.close()


def test_log_in_and_confirm_a_request(page, live_server, account, screenshot):
    rt = live_server.rt
    reference = make_request(rt, user_id="U" + uuid.uuid4().hex)
    log_in(page, live_server.url)
    screenshot("timeline")
    page.get_by_role("link", name="対応待ち", exact=True).click()
    expect(page.get_by_role("heading", name="確認待ちの申込（1件）")).to_be_visible()
    page.get_by_role("link", name=reference).first.click()
    expect(page.get_by_role("heading", name=f"受付番号 {reference}")).to_be_visible()
    expect(page.get_by_text("酒田 花子")).to_have_count(0)         # shown on request only, and logged
    page.get_by_role("button", name="個人情報を表示", exact=True).click()
    expect(page.get_by_text("酒田 花子")).to_be_visible()
    screenshot("request")
    page.get_by_role("button", name="承認する（予約を確定）").click()
    expect(page.get_by_role("status").first).to_contain_text("承認しました")
    expect(page.locator("#status")).to_have_text("確定")
    screenshot("confirmed")
    assert booking(rt, reference).status == "confirmed"


def test_block_a_day(page, live_server, account, screenshot):
    rt = live_server.rt
    log_in(page, live_server.url)
    day = page.locator('section[data-day="2026-12-14"]')
    day.get_by_label("理由").fill("職員研修")
    day.get_by_role("button", name="この日をオンライン予約から停止").click()
    day = page.locator('section[data-day="2026-12-14"]')
    expect(day.get_by_role("button", name="この日の停止を解除")).to_be_visible()
    expect(day.locator(".state-blocked")).to_have_count(3)
    screenshot("blocked")
    with rt.db.reading() as s:
        reason = s.scalar(select(SlotBlock.reason).where(SlotBlock.day == "2026-12-14"))  # sealed like a note
        assert personal.open_note(rt, reason) == "職員研修"
        week = holds.week_page(s, rt.offices["sakata"], rt.clock.now(), 1)
    assert not any(slot["start"].startswith("2026-12-14") for slot in week["slots"])


def test_export_csv(page, live_server, account, screenshot):
    rt = live_server.rt
    reference = make_request(rt, start=SAKATA_MONDAY.replace(hour=16), notify=False)
    log_in(page, live_server.url)
    page.get_by_role("link", name="CSV出力", exact=True).click()
    page.get_by_label("開始日").fill("2026-12-01")
    page.get_by_label("終了日").fill("2026-12-31")
    screenshot("export")
    with page.expect_download() as download:
        page.get_by_role("button", name="CSVを出力する").click()
    data = open(download.value.path(), "rb").read()
    assert download.value.suggested_filename == "madoguchi-sakata-20261201-20261231.csv"
    assert data.startswith(b"\xef\xbb\xbf")
    text = data.decode("utf-8-sig")
    assert text.splitlines()[0].startswith("受付番号,事業所,相談日時,状況") and reference in text


def test_cancelling_for_the_office_takes_a_second_deliberate_click(page, live_server, account, screenshot):
    """中止 cannot be undone and tells the user at once: a stray click on it only opens the explanation."""
    rt = live_server.rt
    reference = make_request(rt, start=SAKATA_MONDAY + timedelta(days=14, hours=1), user_id="U" + uuid.uuid4().hex,
                             status="confirmed")
    log_in(page, live_server.url)
    page.goto(f"{live_server.url}/staff/bookings/{reference}")
    do_it = page.get_by_role("button", name="中止を確定して、ご本人に知らせる")
    expect(do_it).to_be_hidden()
    page.get_by_text("ハローワークの都合で中止する", exact=True).click()
    expect(page.locator("#cancel-office")).to_contain_text("中止は取り消せません")
    assert booking(rt, reference).status == "confirmed"
    screenshot("cancel-office-asked")
    do_it.click()
    expect(page.locator("#status")).to_have_text("中止（ハローワーク）")
    assert booking(rt, reference).status == "cancelled_by_office"


def test_on_a_phone_no_page_is_wider_than_the_screen_and_attendance_is_one_tap_away(browser, live_server, account):
    """Between sessions, on a phone: every page fits the screen's width (nothing to scroll sideways, the
    accounts table included), and a booking page leads straight to its actions."""
    from playwright.sync_api import expect as expect_

    rt = live_server.rt
    reference = make_request(rt, start=SAKATA_MONDAY + timedelta(days=56), user_id="U" + uuid.uuid4().hex)
    create_staff(rt, username="phone-admin", role="admin")
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="ja-JP", timezone_id="Asia/Tokyo",
                                  is_mobile=True, has_touch=True)
    phone = context.new_page()
    try:
        phone.goto(f"{live_server.url}/staff/login")
        phone.get_by_label("ユーザー名", exact=True).fill("phone-admin")
        phone.get_by_label("パスワード", exact=True).fill(PASSWORD)
        phone.get_by_role("button", name="ログイン", exact=True).click()
        expect_(phone.get_by_role("heading", name="予定表", exact=True)).to_be_visible()
        for path in ("/staff/", "/staff/queue", f"/staff/bookings/{reference}", "/staff/users", "/staff/account",
                     "/staff/outbox", "/staff/audit"):
            phone.goto(f"{live_server.url}{path}")
            wide = phone.evaluate("document.documentElement.scrollWidth")   # a phone zooms out to fit wider pages
            assert wide <= 390, f"{path} is {wide}px wide on a 390px screen"
        # A 受付番号 is read out on the phone: it never breaks across two lines (LINE送信状況 had it split).
        from bot import outbox
        from tests.staffkit import booking as booking_row

        with rt.db.transaction() as s:
            row = outbox.add(s, office="sakata", kind="push", recipient="U" + "f" * 32,
                             messages=[{"type": "text", "text": "x"}], now=rt.clock.now(),
                             purpose="outcome_confirmed", about=booking_row(rt, reference))
            row.status, row.last_error = "failed", "http 400"
        phone.goto(f"{live_server.url}/staff/outbox")
        link = phone.get_by_role("link", name=f"受付番号 {reference}")
        assert link.evaluate("e => e.getClientRects().length") == 1
        assert phone.evaluate("document.documentElement.scrollWidth") <= 390
        phone.goto(f"{live_server.url}/staff/bookings/{reference}")
        phone.get_by_role("link", name="操作（承認・お断りなど）へ移動").click()
        expect_(phone.get_by_role("button", name="承認する（予約を確定）")).to_be_in_viewport()
    finally:
        context.close()


def test_on_a_phone_the_days_table_keeps_each_time_on_one_line(browser, live_server, account):
    """At 375 px, a day with requests left the 時刻 column so narrow that 14:00 broke into 「14:0」 and 「0」."""
    rt = live_server.rt
    day = SAKATA_MONDAY + timedelta(days=70)
    for hours in (0, 1):
        make_request(rt, start=day + timedelta(hours=hours), user_id="U" + uuid.uuid4().hex)
    with phone_at(browser) as phone:
        log_in(phone, live_server.url)
        phone.goto(f"{live_server.url}/staff/?from={day.date().isoformat()}")
        cell = phone.locator(f'tr[data-slot="{day.isoformat()}"] th')
        expect(cell).to_contain_text("14:00")
        lines = cell.evaluate("td => { const r = document.createRange(); r.selectNodeContents(td.firstChild);"
                              " return r.getClientRects().length; }")
        assert lines == 1, "14:00 is split across lines"
        assert phone.evaluate("document.documentElement.scrollWidth") <= 375


def test_on_a_phone_the_audit_logs_filters_fit_and_narrow_the_list(browser, live_server, account):
    """At 375 px the 操作記録's filters stand one under another, nothing wider than the screen, and 絞り込む keeps
    them in the address."""
    with phone_at(browser) as phone:
        log_in(phone, live_server.url)
        phone.goto(f"{live_server.url}/staff/audit")
        phone.get_by_label("操作の種類").select_option(label="ログイン")
        phone.get_by_label("期間（開始日）").fill("2026-11-01")
        phone.get_by_role("button", name="絞り込む").click()
        expect(phone.get_by_role("heading", name=re.compile("条件に合う記録"))).to_be_visible()
        assert "action=login" in phone.url and "from=2026-11-01" in phone.url
        for label in ("受付番号（例: AB2C-D3EF）", "操作した人", "操作の種類", "期間（開始日）", "期間（終了日）"):
            box = phone.get_by_label(label).bounding_box()
            assert box["x"] >= 0 and box["x"] + box["width"] <= 375, label
        assert phone.evaluate("document.documentElement.scrollWidth") <= 375


@pytest.mark.parametrize("status", ["requested", "proposed"])
def test_declining_takes_a_second_deliberate_tap(browser, live_server, account, status):
    """お断り tells the user at once and cannot be undone: on a phone, a double tap on it (or a stray tap while
    scrolling) only opens and closes what it does; the reason is chosen and a second, named button declines."""
    rt = live_server.rt
    reference = make_request(rt, start=SAKATA_MONDAY + timedelta(days=84, hours=1 if status == "proposed" else 0),
                             user_id="U" + uuid.uuid4().hex, status=status)
    with phone_at(browser) as phone:
        log_in(phone, live_server.url)
        phone.goto(f"{live_server.url}/staff/bookings/{reference}")
        decline = phone.get_by_text("お断りする", exact=True)
        decline.tap()
        decline.tap()
        assert booking(rt, reference).status == status
        expect(phone.get_by_role("heading", name=f"受付番号 {reference}")).to_be_visible()
        decline.tap()
        phone.get_by_label(re.compile("^お断りの理由")).select_option(label="申込内容を確認できない")
        expect(phone.locator("#told-decline-final")).to_contain_text("お断りは取り消せません")
        phone.get_by_role("button", name="お断りを確定して、ご本人に知らせる").tap()
        expect(phone.locator("#status")).to_have_text("お断り")
    assert booking(rt, reference).status == "declined"


# What a thumb taps on the dashboard: the menu, every control (a choice is its whole line), a summary that opens an
# action, and the links that stand alone; a link inside a sentence is left as it is (WCAG 2.5.5's inline case).
STAFF_TARGETS = ("header nav a, header nav button, main button, main select, main textarea, main label.choice, "
                 "main input:not([type=hidden]):not([type=radio]):not([type=checkbox]), main summary, "
                 ".jump a, td a, .paging a, nav.pager a, ul.next-steps a")
THUMB = 44


def small_targets(tab) -> list[str]:
    return tab.evaluate("""([selector, least]) => [...document.querySelectorAll(selector)].filter(e => {
        const r = e.getBoundingClientRect();
        return r.width > 0 && (r.height < least - 0.5 || r.width < least - 0.5);
    }).map(e => `${e.tagName} ${(e.name || e.textContent).trim().slice(0, 20)} ${Math.round(e.getBoundingClientRect().width)}x${Math.round(e.getBoundingClientRect().height)}`)""",
                        [STAFF_TARGETS, THUMB])


@pytest.mark.parametrize("width", [375, 320])
def test_on_a_phone_every_control_is_big_enough_for_a_thumb(browser, live_server, width):
    """Between sessions, on a phone: the menu, 予定表's buttons, a booking's actions, the accounts table's buttons
    and the forms' fields and choices are all 44 px and more (they were 20 to 40 px: a menu link, 停止, a radio)."""
    rt = live_server.rt
    day = SAKATA_MONDAY + timedelta(days=98 + (7 if width == 320 else 0))
    requested = make_request(rt, start=day, user_id="U" + uuid.uuid4().hex)
    confirmed = make_request(rt, start=day + timedelta(hours=1), user_id="U" + uuid.uuid4().hex, status="confirmed")
    started = make_request(rt, start=datetime(2026, 11, 30 - (7 if width == 320 else 0), 14, 0, tzinfo=TOKYO),
                           user_id="U" + uuid.uuid4().hex, status="confirmed")
    attended = make_request(rt, start=datetime(2026, 11, 30 - (7 if width == 320 else 0), 15, 0, tzinfo=TOKYO),
                            user_id="U" + uuid.uuid4().hex, status="attended")
    admin = f"thumb-admin-{width}"
    create_staff(rt, username=admin, role="admin")
    with phone_at(browser, width=width) as phone:
        phone.goto(f"{live_server.url}/staff/login")
        assert small_targets(phone) == [], "login"
        log_in(phone, live_server.url, admin)
        for path in (f"/staff/?from={day.date().isoformat()}", "/staff/queue", f"/staff/bookings/{requested}",
                     f"/staff/bookings/{confirmed}", f"/staff/bookings/{started}", f"/staff/bookings/{attended}",
                     "/staff/bookings/new", "/staff/search", "/staff/export", "/staff/audit", "/staff/account",
                     "/staff/users", "/staff/bookings/ZZZZ-ZZZZ"):
            phone.goto(f"{live_server.url}{path}")
            phone.wait_for_load_state("load")
            assert small_targets(phone) == [], path
            assert phone.evaluate("document.documentElement.scrollWidth") <= width, path
        phone.goto(f"{live_server.url}/staff/bookings/{requested}")
        phone.get_by_text("お断りする", exact=True).tap()                   # what opens is thumb-sized too
        assert small_targets(phone) == [], "お断り opened"


def test_on_a_phone_a_table_of_many_columns_scrolls_in_its_own_box_and_keeps_its_words_readable(browser,
                                                                                               live_server):
    """At 320 px the LINE送信状況 and the accounts' tables split every word a letter a line (a date took eleven
    lines): they keep room for their words and scroll sideways in a box the keyboard can scroll too, named by the
    page's heading, while the page itself stays as wide as the screen."""
    from bot import outbox

    rt = live_server.rt
    reference = make_request(rt, start=SAKATA_MONDAY + timedelta(days=126), user_id="U" + uuid.uuid4().hex)
    with rt.db.transaction() as s:
        outbox.add(s, office="sakata", kind="push", recipient="U" + "e" * 32, messages=[{"type": "text", "text": "x"}],
                   now=rt.clock.now(), purpose="outcome_confirmed", about=booking(rt, reference)).status = "failed"
    create_staff(rt, username="narrow-admin", role="admin")
    with phone_at(browser, width=320) as phone:
        log_in(phone, live_server.url, "narrow-admin")
        for path, name in (("/staff/outbox", "LINE送信状況"), ("/staff/users", re.compile("^アカウント管理"))):
            phone.goto(f"{live_server.url}{path}")
            assert phone.evaluate("document.documentElement.scrollWidth") <= 320, path
            box = phone.get_by_role("region", name=name)
            expect(box).to_have_attribute("tabindex", "0")
            first = box.locator("tbody td").first                      # a date, or a user name
            lines = first.evaluate("td => { const r = document.createRange(); r.selectNodeContents(td);"
                                   " return new Set([...r.getClientRects()].map(x => Math.round(x.top))).size; }")
            assert lines <= 2, f"{path}: the first cell takes {lines} lines"
            box.focus()
            phone.keyboard.press("ArrowRight")                         # scrolls (smoothly: waited for)
            phone.wait_for_function("e => e.scrollLeft > 0", arg=box.element_handle())


def test_approving_a_second_booking_of_one_job_seeker_number_needs_the_tick(page, live_server, account):
    """Another LINE account's booking with the same job seeker number is confirmed: the browser does not send
    承認 until the member ticks that they checked by phone, and then it goes."""
    from tests.staffkit import DETAILS

    rt = live_server.rt
    details = {**DETAILS["sakata"], "seeker_number": "24680-135791"}   # no other test's number
    make_request(rt, start=SAKATA_MONDAY + timedelta(days=63, hours=2), user_id="U" + uuid.uuid4().hex,
                 status="confirmed", details=details)
    reference = make_request(rt, start=SAKATA_MONDAY + timedelta(days=70, hours=2), user_id="U" + uuid.uuid4().hex,
                             details=details)
    log_in(page, live_server.url)
    page.goto(f"{live_server.url}/staff/bookings/{reference}")
    expect(page.locator("#same-number")).to_contain_text("同じ求職番号の予約が2件になります")
    tick = page.locator('form:has(button[data-action="confirm"]) input[name="same_number_checked"]')
    page.get_by_role("button", name="承認する（予約を確定）").click()
    assert tick.evaluate("box => box.validity.valueMissing")   # the required tick stopped the form
    assert booking(rt, reference).status == "requested"
    tick.check()
    page.get_by_role("button", name="承認する（予約を確定）").click()
    expect(page.get_by_role("status").first).to_contain_text("承認しました")
    assert booking(rt, reference).status == "confirmed"


@pytest.mark.parametrize("width", [768, 390], ids=["tablet", "phone"])
def test_a_larger_text_size_set_in_the_browser_enlarges_the_dashboard(browser, live_server, account, width):
    """A member who set the tablet's or phone's browser to large text (200%: 32 px instead of 16) read the
    dashboard at 15 px all the same (its size was in px); now the text doubles, and no page grows wider than the
    screen: a booking's facts stand label over value, 予定表's reason field and 操作記録's filters fit, 予定表
    stacks its sessions as blocks and 対応待ち's tables scroll in their own boxes."""
    rt = live_server.rt
    day = SAKATA_MONDAY + timedelta(days=133 + (7 if width == 390 else 0))
    reference = make_request(rt, start=day, user_id="U" + uuid.uuid4().hex)
    context = browser.new_context(viewport={"width": width, "height": 1024}, locale="ja-JP", timezone_id="Asia/Tokyo",
                                  is_mobile=True, has_touch=True)
    tablet = context.new_page()
    try:
        context.new_cdp_session(tablet).send("Page.setFontSizes", {"fontSizes": {"standard": 32, "fixed": 26}})
        log_in(tablet, live_server.url)
        for path in ("/staff/login", f"/staff/?from={day.date().isoformat()}", "/staff/queue",
                     f"/staff/bookings/{reference}", "/staff/audit", "/staff/export", "/staff/outbox", "/staff/account"):
            tablet.goto(f"{live_server.url}{path}")
            size = tablet.evaluate("parseFloat(getComputedStyle(document.body).fontSize)")
            assert size >= 28, f"{path}: the text is {size}px with the browser's text at 200%"
            wide = tablet.evaluate("document.documentElement.scrollWidth")
            assert wide <= width, f"{path} is {wide}px wide on a {width}px screen"
    finally:
        context.close()


def test_on_a_phone_a_short_word_in_a_table_stays_whole(browser, live_server, account):
    """At 320 px 対応待ち's 経路 column read 「LIN」 over 「E」: a table cell broke any word to make its column a
    letter wide. A word now breaks only when it cannot fit its column alone; the page stays as wide as the screen."""
    rt = live_server.rt
    reference = make_request(rt, start=SAKATA_MONDAY + timedelta(days=147), user_id="U" + uuid.uuid4().hex)
    with phone_at(browser, width=320) as phone:
        log_in(phone, live_server.url)
        phone.goto(f"{live_server.url}/staff/queue")
        row = phone.locator("tr").filter(has=phone.get_by_role("link", name=reference, exact=True)).first
        cell = row.locator("td").last
        expect(cell).to_have_text("LINE")
        lines = cell.evaluate("td => { const r = document.createRange(); r.selectNodeContents(td);"
                              " return new Set([...r.getClientRects()].map(x => Math.round(x.top))).size; }")
        assert lines == 1, f"「LINE」 takes {lines} lines"
        assert phone.evaluate("document.documentElement.scrollWidth") <= 320


def test_stopping_an_account_or_its_two_step_login_takes_a_second_deliberate_tap(browser, live_server):
    """停止 logs the member out at once (what they were typing is lost) and 二段階認証を解除 lets the password alone
    in: both were one tap in a dense row on a phone. A tap now opens what it does; a second button does it."""
    from bot.staff.models import StaffUser

    rt = live_server.rt
    create_staff(rt, username="confirm-admin", role="admin")
    create_staff(rt, username="colleague-x")
    with rt.db.transaction() as s:
        s.scalar(select(StaffUser).where(StaffUser.username == "colleague-x")).totp_secret = "JBSWY3DPEHPK3PXP"

    def colleague() -> StaffUser:
        with rt.db.reading() as s:
            return s.scalar(select(StaffUser).where(StaffUser.username == "colleague-x"))

    with phone_at(browser, width=390) as phone:
        log_in(phone, live_server.url, "confirm-admin")
        phone.goto(f"{live_server.url}/staff/users")
        for opener, told, done in (("二段階認証を解除する（colleague-x）", "パスワードだけでログイン", "二段階認証を解除（colleague-x）"),
                                   ("停止する（colleague-x）", "すぐにログアウト", "停止（colleague-x）")):
            summary = phone.locator(f"details.confirm > summary[aria-label=\"{opener}\"]")
            before = (colleague().active, colleague().totp_secret)
            summary.tap()
            summary.tap()                                             # a double tap only opens and closes it
            assert (colleague().active, colleague().totp_secret) == before, opener
            summary.tap()
            button = phone.get_by_role("button", name=done, exact=True)
            expect(button).to_have_accessible_description(re.compile(told))
            button.tap()
            expect(phone.get_by_role("status").first).to_contain_text("（アカウント: colleague-x）")
    assert colleague().totp_secret is None and not colleague().active
