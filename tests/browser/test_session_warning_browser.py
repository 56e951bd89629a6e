"""The warning before a dashboard session ends (WCAG 2.2.1 Timing Adjustable), in Debian's Chromium.

Both clocks are moved instead of waited for: the app's (frozen in tests) and the page's (Playwright's fake
timers). The page learns the deadlines from the server, so moving both by the same amount is what a member
would live through in minutes."""
from __future__ import annotations

from datetime import timedelta

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, expect
from sqlalchemy import select, update

from bot.staff import auth
from bot.staff.models import StaffSession, StaffUser
from tests.conftest import DEFAULT_NOW
from tests.staffkit import PASSWORD, SAKATA_MONDAY, create_staff, make_request

pytestmark = pytest.mark.browser

USERNAME = "timer-staff"
NOTE = "ご本人から電話。来週の火曜なら午後が都合がよいとのこと（長いメモの途中）"
TITLE = "まもなく自動的にログアウトします"


@pytest.fixture(scope="module")
def account(live_server):
    create_staff(live_server.rt, username=USERNAME)
    return USERNAME


@pytest.fixture
def clock(live_server, account):
    """The app's clock at the default moment for each test, and back there after it; the account's sessions of
    the tests before ended, so that the test's own is the one row."""
    live_server.rt.clock.freeze(DEFAULT_NOW)
    with live_server.rt.db.transaction() as s:
        auth.end_sessions(s, s.scalar(select(StaffUser.id).where(StaffUser.username == account)))
    yield live_server.rt.clock
    live_server.rt.clock.freeze(DEFAULT_NOW)


def booking_page_with_a_note(page: Page, live_server, hour: int) -> str:
    """Log in (with the page's timers faked), open a request (one per test: its own slot) and type a note
    without saving it."""
    reference = make_request(live_server.rt, start=SAKATA_MONDAY.replace(hour=hour), notify=False)
    page.clock.install()
    page.goto(f"{live_server.url}/staff/login")
    page.get_by_label("ユーザー名", exact=True).fill(USERNAME)
    page.get_by_label("パスワード", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="ログイン", exact=True).click()
    expect(page.get_by_role("heading", name="予定表", exact=True)).to_be_visible()
    page.goto(f"{live_server.url}/staff/bookings/{reference}")
    page.get_by_role("button", name="個人情報を表示", exact=True).click()
    # The page opens at its details heading and focuses it once loaded: typing before that (a loaded machine)
    # would have the focus taken away, and the warning would give it back to the heading, not the note.
    expect(page.get_by_role("heading", name="申込内容", exact=True)).to_be_focused()
    page.get_by_label("職員メモ").fill(NOTE)
    return reference


def session_row(live_server) -> StaffSession:
    with live_server.rt.db.reading() as s:
        return s.scalars(select(StaffSession).join(StaffUser, StaffUser.id == StaffSession.user_id)
                         .where(StaffUser.username == USERNAME)).one()


def pass_time(page: Page, clock, minutes: int) -> None:
    clock.advance(minutes=minutes)
    page.clock.fast_forward(minutes * 60_000)


def test_the_warning_takes_the_focus_and_continuing_extends_the_session(page, live_server, account, clock):
    booking_page_with_a_note(page, live_server, 14)
    opened = clock.now()
    dialog = page.get_by_role("alertdialog", name=TITLE)
    pass_time(page, clock, 20)
    expect(dialog).to_be_hidden()                      # not before the lead time
    pass_time(page, clock, 6)                          # 26 minutes idle: four to go
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text(f"{(opened + auth.IDLE_TIMEOUT):%H:%M}になると")
    expect(dialog).to_contain_text("あと約4分")
    expect(dialog.get_by_role("button", name="続ける")).to_be_focused()
    violations = [v["id"] for v in Axe().run(page).response["violations"] if v["impact"] in ("serious", "critical")]
    assert violations == []
    page.keyboard.press("Enter")                       # the keyboard alone does it
    expect(dialog).to_be_hidden()
    expect(page.get_by_label("職員メモ")).to_be_focused()   # back where the member was typing
    expect(page.get_by_label("職員メモ")).to_have_value(NOTE)
    row = session_row(live_server)
    assert row.last_seen_at == clock.now() and row.created_at == opened
    pass_time(page, clock, 20)                         # the new idle limit is 30 minutes after 続ける
    expect(dialog).to_be_hidden()
    pass_time(page, clock, 6)
    expect(dialog).to_be_visible()


def test_after_the_end_the_page_says_so_and_keeps_what_was_typed(page, live_server, account, clock):
    reference = booking_page_with_a_note(page, live_server, 15)
    address = page.url
    details = page.locator("table.details")
    expect(details).to_be_visible()
    pass_time(page, clock, 26)
    expect(page.get_by_role("alertdialog", name=TITLE)).to_be_visible()
    pass_time(page, clock, 5)                          # nobody answered
    ended = page.get_by_role("alert").filter(has_text="自動的にログアウトしました")
    expect(ended).to_be_visible()
    expect(ended).to_be_focused()
    expect(page.get_by_role("alertdialog", name=TITLE)).to_be_hidden()
    link = ended.get_by_role("link", name="ログインし直してください")
    expect(link).to_have_attribute("href", f"/staff/login?next=/staff/bookings/{reference}")
    assert page.url == address
    expect(page.get_by_label("職員メモ")).to_have_value(NOTE)
    # The request's details leave the screen with the session (an unattended desk); what was typed stays.
    expect(details).to_be_hidden()
    expect(ended).to_contain_text("表示していた申込内容（個人情報）は隠しました")


def test_near_the_absolute_limit_the_warning_says_it_cannot_be_extended(page, live_server, account, clock):
    booking_page_with_a_note(page, live_server, 16)
    with live_server.rt.db.transaction() as s:          # logged in 11 h 52 min ago: 8 minutes left, whatever
        s.execute(update(StaffSession).where(StaffSession.id == session_row(live_server).id)
                  .values(created_at=clock.now() - auth.MAX_SESSION + timedelta(minutes=8)))
    page.reload()
    page.get_by_label("職員メモ").fill(NOTE)
    dialog = page.get_by_role("alertdialog", name=TITLE)
    pass_time(page, clock, 4)
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("この時間は延長できません")
    expect(dialog.get_by_role("button", name="続ける")).to_have_count(0)
    expect(dialog.get_by_role("button", name="閉じる")).to_be_focused()
    page.keyboard.press("Enter")
    expect(dialog).to_be_hidden()
    expect(page.get_by_label("職員メモ")).to_be_focused()
    pass_time(page, clock, 1)
    expect(dialog).to_be_hidden()                      # closed for good: the member is saving their work


def test_without_script_the_pages_work_as_before(browser, live_server, account, clock):
    """Progressive enhancement: with script off nothing of the warning shows, and a note is saved as ever."""
    context = browser.new_context(java_script_enabled=False, locale="ja-JP", timezone_id="Asia/Tokyo")
    try:
        page = context.new_page()
        reference = make_request(live_server.rt, start=SAKATA_MONDAY.replace(hour=14, day=8), notify=False)
        page.goto(f"{live_server.url}/staff/login")
        page.get_by_label("ユーザー名", exact=True).fill(USERNAME)
        page.get_by_label("パスワード", exact=True).fill(PASSWORD)
        page.get_by_role("button", name="ログイン", exact=True).click()
        page.goto(f"{live_server.url}/staff/bookings/{reference}")
        expect(page.get_by_role("alertdialog")).to_have_count(0)
        expect(page.get_by_text("自動的にログアウトしました")).to_be_hidden()
        page.get_by_label("職員メモ").fill(NOTE)
        page.get_by_role("button", name="メモを保存").click()
        expect(page.get_by_role("status").first).to_contain_text("メモを保存しました")
        page.get_by_role("button", name="個人情報を表示して職員メモを読む").click()   # a note is personal too
        expect(page.get_by_label("職員メモ")).to_have_value(NOTE)
    finally:
        context.close()
