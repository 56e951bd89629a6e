"""The staff dashboard on the smallest phone (320 CSS px) with its text at 200%: 予定表 stacks each session as a
block that needs no sideways scrolling, a 受付番号 never breaks inside itself, and the PC's table stays a table."""
from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import update

from bot.models import Booking
from tests.browser.test_staff_browser import log_in, phone_at
from tests.conftest import DEFAULT_NOW
from tests.staffkit import SAKATA_MONDAY, create_staff, make_request

pytestmark = pytest.mark.browser

NARROW = 320
DAY = SAKATA_MONDAY + timedelta(days=7)           # Monday 12/14 14:00, bookable at the frozen clock
WIDEST = "WMWM-WMWM"
TODAY = DEFAULT_NOW.replace(hour=14)              # a request for this afternoon, listed in 予定表's 今日

# Where every part of a session's block sits, relative to the screen and to the box that would scroll it.
SESSION_PARTS = """rows => rows.map(row => {
    const box = row.closest('.scroll-x').getBoundingClientRect();
    const parts = [row.querySelector('.time'), ...row.querySelectorAll('a[href^="/staff/bookings/"]')];
    return parts.map(e => { const r = e.getBoundingClientRect();
        return {text: e.textContent.trim().slice(0, 12), left: r.left, right: r.right, boxRight: box.right,
                lines: e.getClientRects().length}; });
}).flat()"""

# The lines a text takes: the distinct tops of the boxes of a range over it.
LINES_OF = """([element, text]) => {
    const walker = document.createTreeWalker(element, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
        const at = node.data.indexOf(text);
        if (at < 0) continue;
        const range = document.createRange();
        range.setStart(node, at); range.setEnd(node, at + text.length);
        return new Set([...range.getClientRects()].map(r => Math.round(r.top))).size;
    }
    return -1;
}"""


@pytest.fixture(scope="module")
def account(live_server):
    create_staff(live_server.rt, username="narrow-staff")
    return "narrow-staff"


@pytest.fixture(scope="module")
def references(live_server):
    """A request, a confirmed booking and a request with the widest reference the alphabet allows (W and M)."""
    rt = live_server.rt
    made = [make_request(rt, start=DAY + timedelta(hours=n), user_id="U" + uuid.uuid4().hex, status=status)
            for n, status in enumerate(("requested", "confirmed", "requested"))]
    today = make_request(rt, start=TODAY, user_id="U" + uuid.uuid4().hex)
    with rt.db.transaction() as s:
        s.execute(update(Booking).where(Booking.reference == made[2]).values(reference=WIDEST))
        s.execute(update(Booking).where(Booking.reference == today).values(reference=WIDEST[::-1]))
    return [*made[:2], WIDEST]


@contextmanager
def large_text_phone(browser, width: int = NARROW, height: int = 640) -> Iterator[Page]:
    """A phone's screen with the browser's text size at 200% (32 px instead of 16), as in test_staff_browser."""
    with phone_at(browser, width, height) as page:
        page.context.new_cdp_session(page).send("Page.setFontSizes", {"fontSizes": {"standard": 32, "fixed": 26}})
        yield page


def page_width(page: Page) -> int:
    return page.evaluate("document.documentElement.scrollWidth")


def chromium_roles(page: Page, role: str) -> list[str]:
    """The names of the nodes of `role` in Chromium's own accessibility tree (what a screen reader is given)."""
    cdp = page.context.new_cdp_session(page)
    root = cdp.send("DOM.getDocument", {"depth": 0})["root"]["nodeId"]
    nodes = cdp.send("Accessibility.queryAXTree", {"nodeId": root, "role": role})["nodes"]
    return [n.get("name", {}).get("value", "") for n in nodes if not n.get("ignored")]


def test_at_320_px_and_200_percent_each_session_of_the_schedule_is_a_block_read_without_scrolling_sideways(
        browser, live_server, account, references):
    """予定表's table needed sideways scrolling to read a session at 320 px with large text: below the breakpoint
    each session stands as a block (time, state, 受付番号 and status, actions) as wide as the screen, and a screen
    reader still hears the columns' headings and the rows' times."""
    with large_text_phone(browser) as phone:
        log_in(phone, live_server.url, account)
        phone.goto(f"{live_server.url}/staff/?from={DAY.date().isoformat()}")
        assert page_width(phone) <= NARROW
        rows = phone.locator(f'section[data-day="{DAY.date().isoformat()}"] tr.slot')
        expect(rows.first).to_be_visible()
        parts = rows.evaluate_all(SESSION_PARTS)
        assert {p["text"] for p in parts} >= set(references)
        for part in parts:
            assert part["left"] >= 0 and part["right"] <= min(NARROW, part["boxRight"]) + 0.5, part
            assert part["lines"] == 1, part
        # Each block still says what its parts are, in words (a state is never told by its colour alone) ...
        row = rows.filter(has=phone.get_by_role("link", name=references[1], exact=True))
        expect(row).to_contain_text("確定")
        # ... and the table's semantics survive the stacking (some browsers drop them with display: block).
        assert {"時刻", "状態", "申込・予約", "枠の操作"} <= set(chromium_roles(phone, "columnheader"))
        assert "14:00" in chromium_roles(phone, "rowheader")


def test_at_320_px_and_200_percent_a_reference_never_breaks_inside_itself(browser, live_server, account, references):
    """On a 320 px phone with the text at 200% the booking page's heading 「受付番号 AB2C-D3EF」 broke at the
    hyphen: the reference stays on one line (the words around it wrap), and the page is no wider than the screen."""
    reference = references[2]
    with large_text_phone(browser) as phone:
        log_in(phone, live_server.url, account)
        for path in (f"/staff/bookings/{reference}", "/staff/queue", f"/staff/?from={DAY.date().isoformat()}"):
            phone.goto(f"{live_server.url}{path}")
            assert page_width(phone) <= NARROW, path
        phone.goto(f"{live_server.url}/staff/bookings/{reference}")
        heading = phone.get_by_role("heading", name=f"受付番号 {reference}", level=1)
        expect(heading).to_be_visible()
        assert phone.evaluate(LINES_OF, [heading.element_handle(), reference]) == 1
        box = heading.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= NARROW
        phone.goto(f"{live_server.url}/staff/queue")
        link = phone.get_by_role("link", name=reference, exact=True).first
        assert link.evaluate("e => e.getClientRects().length") == 1
        # 予定表's 今日 names a session by its time and reference in one link: it may break between the two only.
        phone.goto(f"{live_server.url}/staff/")
        link = phone.locator("#today-undecided a").filter(has_text=WIDEST[::-1])
        expect(link).to_have_text(f"14:00 {WIDEST[::-1]}")
        assert phone.evaluate(LINES_OF, [link.element_handle(), WIDEST[::-1]]) == 1
        assert page_width(phone) <= NARROW


def test_at_1280_px_the_schedule_is_still_a_table(page, live_server, account, references):
    """The PC keeps the wide table: the headings' row shown, each session a row of four cells side by side."""
    log_in(page, live_server.url, account)
    page.goto(f"{live_server.url}/staff/?from={DAY.date().isoformat()}")
    table = page.locator(f'section[data-day="{DAY.date().isoformat()}"] table.slots')
    expect(table.locator("thead")).to_be_visible()
    display = table.evaluate("""t => [t, t.tHead, t.tHead.rows[0], t.tBodies[0].rows[0],
        ...t.tBodies[0].rows[0].cells].map(e => getComputedStyle(e).display)""")
    assert display == ["table", "table-header-group", "table-row", "table-row"] + ["table-cell"] * 4
    tops = table.evaluate("t => [...t.tBodies[0].rows[0].cells].map(c => Math.round(c.getBoundingClientRect().top))")
    assert len(set(tops)) == 1
    heading = page.get_by_role("heading", name="予定表", exact=True)
    assert heading.evaluate("h => getComputedStyle(h).fontSize") == "22.4px"
