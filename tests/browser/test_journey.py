"""The whole journey in Debian's Chromium, as a newcomer tries it in the simulator that `flask --app app dev` serves.

Sakata: consent, eligibility (its five categories), checklist, a Monday slot, the details form in the in-app
overlay, 受付番号 in chat, the staff card in the staff pane, 承認, `予約が確定しました`, then the clock moved to
the day before and the reminder. Otaru: its combined topic question and Zoom, the same booking, 承認, and a
cancellation in chat (allowed until the previous day). Screenshots go to test-artifacts/journey/.

The server is the browser tests' one, set up as `dev` sets up development: each office's staff group and
basic ID are the simulator's (bot.cli.dev.simulator_office_settings), and the clock is the shared one that
the page's clock control moves (it runs from the tests' start time, not frozen).
"""
from __future__ import annotations

import os
import re
import struct
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.browser.conftest import ARTIFACTS, LiveServer
from tests.conftest import DEFAULT_NOW

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
JOURNEY = ARTIFACTS / "journey"
README_PICTURE = ROOT / "static" / "docs" / "simulator.png"
MAX_PICTURE_BYTES = 300_000
OFFICES = ("sakata", "otaru")
START = "2026-12-01T10:00:00"          # DEFAULT_NOW, as the clock control's datetime-local field takes it
SLOT_LABEL = re.compile(r"^\d{1,2}/\d{1,2}\(.\) \d{2}:\d{2}$")
REFERENCE = re.compile(r"受付番号: ([A-HJ-NP-Z2-9]{4}-[A-HJ-NP-Z2-9]{4})")
BOT_ROWS = "#user-chat .row.bot"
GROUP_ROWS = "#group-chat .row.bot"
MAX_STEPS = 30
SAKATA_CATEGORIES = ("大学等", "UIJターン", "障害者手帳", "日本海総合病院", "マザーズコーナー")
OTARU_TOPICS = ("新規学卒者の相談", "障がい者の相談", "職業訓練の相談")
PERSON = {"name": "山田 太郎", "kana": "やまだ たろう", "seeker": "01234-56789", "phone": "090-1234-5678"}


@pytest.fixture(scope="module")
def live_server(tmp_path_factory):
    """The app served for real with its worker, configured for the simulator as `dev` configures it."""
    from bot import settings_store
    from bot.cli.dev import simulator_office_settings

    with pytest.MonkeyPatch.context() as env:
        for name, value in simulator_office_settings(os.environ, OFFICES).items():
            env.setenv(name, value)
        server = LiveServer(tmp_path_factory.mktemp("journey"))
    server.rt.clock.freeze(None)                  # the shared clock the simulator's control moves
    settings_store.set_clock(server.rt.db, DEFAULT_NOW)
    server.rt.clock.forget()
    server.start()
    yield server
    server.stop()


def shot(target: Page | Locator, name: str) -> Path:
    JOURNEY.mkdir(parents=True, exist_ok=True)
    path = JOURNEY / f"{name}.png"
    if isinstance(target, Page):
        target.screenshot(path=str(path), full_page=True)
    else:
        target.screenshot(path=str(path))
    return path


class Simulator:
    """The simulator page, driven the way a newcomer uses it: rich menu, taps, typing, the staff pane."""

    def __init__(self, page: Page, base: str, office: str):
        self.page = page
        page.goto(f"{base}/simulator?office={office}")
        expect(page.get_by_role("heading", name=re.compile("LINE シミュレーター"))).to_be_visible()
        page.wait_for_selector("body[data-ready]", state="attached")
        self.bot = page.locator(BOT_ROWS)
        self.group = page.locator("#group-chat")

    # -- the page's controls --------------------------------------------------------------------------
    def set_clock(self, iso: str, label: str) -> None:
        """Move the shared clock with the page's own control (what web and worker both read)."""
        self.page.locator("#clock-input").fill(iso)
        self.page.locator("#clock-form").get_by_role("button", name="設定", exact=True).click()
        expect(self.page.locator("#now")).to_contain_text(label)

    def new_user(self) -> None:
        before = self.page.locator("#user option").count()
        self.page.get_by_role("button", name="利用者を追加").click()
        expect(self.page.locator("#user option")).to_have_count(before + 1)
        expect(self.bot).to_have_count(1)  # the greeting after the follow event

    # -- the chat -------------------------------------------------------------------------------------
    def answered(self, act) -> None:
        """Do something in the chat and wait until the bot has said something more."""
        before = self.bot.count()
        act()
        self.page.wait_for_function("([sel, n]) => document.querySelectorAll(sel).length > n",
                                    arg=[BOT_ROWS, before])

    def menu(self, label: str) -> None:
        self.answered(lambda: self.page.locator("#richmenu").get_by_role("button", name=label, exact=True).click())

    def tap(self, label: str) -> None:
        self.answered(lambda: self.page.locator("#user-quick").get_by_role("button", name=label,
                                                                             exact=True).click())

    def say(self, words: str) -> None:
        def send() -> None:
            self.page.get_by_role("textbox", name="メッセージを入力", exact=True).fill(words)
            self.send_typed()
        self.answered(send)

    def send_typed(self) -> None:
        self.page.locator("#user-composer").get_by_role("button", name="送信", exact=True).click()

    def quick(self) -> list[str]:
        return [label.strip() for label in self.page.locator("#user-quick button").all_inner_texts()]

    def last(self) -> Locator:
        return self.bot.last

    def answer_until_slots(self, answer_for) -> list[str]:
        """Answer each question with answer_for(question text) until slots are offered; the questions asked."""
        asked: list[str] = []
        for _ in range(MAX_STEPS):
            slots = [label for label in self.quick() if SLOT_LABEL.match(label)]
            if slots:
                return asked
            question = self.last().inner_text()
            asked.append(question)
            self.tap(answer_for(question))
        pytest.fail(f"no slots after {MAX_STEPS} answers; last question: {asked[-1]!r}")

    def slots(self) -> list[str]:
        return [label for label in self.quick() if SLOT_LABEL.match(label)]


def fill_form(sim: Simulator, office: str) -> str:
    """Open the form from the held slot's bubble, fill it in the in-app overlay, send it; the 受付番号."""
    page = sim.page
    sim.last().get_by_role("button", name="入力ページを開く").click()
    expect(page.locator("#browser")).to_be_visible()
    assert "/form/" in (page.locator("#browser-frame").get_attribute("src") or "")
    form = page.frame_locator("#browser-frame")
    expect(form.get_by_role("heading", name="ご本人情報の入力")).to_be_visible()
    form.get_by_label("お名前（必須）").fill(PERSON["name"])
    form.get_by_label("ふりがな（必須）").fill(PERSON["kana"])
    form.get_by_label("求職番号（必須）").fill(PERSON["seeker"])
    form.get_by_label("電話番号（必須）").fill(PERSON["phone"])
    categories = form.locator("input[name=category]")
    if office == "sakata":
        expect(categories).to_have_count(len(SAKATA_CATEGORIES))   # the five categories, asked only here
        expect(form.locator("input[name=birth_date]")).to_have_count(0)
        form.get_by_label(re.compile("UIJターン")).check()
        form.get_by_label(re.compile("メールを受け取れることを確認しました")).check()
    else:
        expect(categories).to_have_count(0)
        form.get_by_label("生年月日（必須）").fill("1990-04-01")
        form.get_by_label("ご相談になりたい内容（必須）").fill("応募書類の書き方を相談したいです。")
    shot(page.locator(".phone"), f"{office}-04-form")
    form.get_by_role("button", name="入力内容を確認する").click()
    expect(form.get_by_role("heading", name="入力内容の確認")).to_be_visible()
    form.get_by_role("button", name="この内容で申し込む").click()
    expect(form.get_by_role("heading", name="お申込みを受け付けました")).to_be_visible()
    done = form.get_by_text(REFERENCE)
    expect(done).to_be_visible()
    reference = REFERENCE.search(done.inner_text()).group(1)
    shot(page.locator(".phone"), f"{office}-05-form-done")
    # LINEに戻る: the overlay closes and 予約確認 waits in the input, as the real link does in LINE.
    form.get_by_role("link", name="LINEに戻る").click()
    expect(page.locator("#browser")).to_be_hidden()
    expect(page.get_by_role("textbox", name="メッセージを入力", exact=True)).to_have_value("予約確認")
    sim.answered(sim.send_typed)
    expect(page.locator(BOT_ROWS, has_text="お申込みを受け付けました")).to_contain_text(f"受付番号: {reference}")
    return reference


def approve_in_staff_pane(sim: Simulator, reference: str) -> Locator:
    """The staff card for the request (no personal data on it), then 承認 on it; the user's confirmation."""
    card = sim.page.locator(GROUP_ROWS, has_text=f"受付番号: {reference}").filter(has_text="新しい予約申込")
    expect(card).to_have_count(1)
    for value in PERSON.values():
        expect(sim.group).not_to_contain_text(value)
    expect(card.get_by_role("button", name="お断り")).to_be_visible()
    card.get_by_role("button", name="承認").click()
    expect(sim.page.locator(GROUP_ROWS, has_text="を承認しました")).to_contain_text(reference)
    confirmation = sim.page.locator(BOT_ROWS, has_text="予約が確定しました")
    expect(confirmation).to_contain_text(f"受付番号: {reference}")
    return confirmation


def test_a_sakata_session_booked_approved_and_reminded(page, live_server):
    sim = Simulator(page, live_server.url, "sakata")
    sim.set_clock(START, "2026/12/1(火) 10:00")
    sim.new_user()
    expect(page.locator(".group-note:not([hidden])")).to_contain_text("設定済み")  # as `dev` sets it up

    sim.menu("予約")
    expect(sim.last()).to_contain_text("利用規約")
    assert sim.quick() == ["同意する", "同意しない"]
    shot(page, "sakata-01-consent")
    sim.last().locator("a[href*='/terms/sakata']").first.click()   # the full terms, in the in-app browser
    terms = page.frame_locator("#browser-frame")
    expect(terms.get_by_role("heading", name=re.compile("オンライン職業相談利用規約"))).to_be_visible()
    shot(page.locator(".phone"), "sakata-01-terms")
    page.locator("#browser").get_by_role("button", name="閉じる").click()
    expect(page.locator("#browser")).to_be_hidden()
    sim.tap("同意する")
    asked = sim.answer_until_slots(lambda question: "はい")
    eligibility = [q for q in asked if "【確認" in q]
    checklist = [q for q in asked if "【端末・環境の確認" in q]
    assert len(eligibility) == 5 and len(checklist) == 9
    category = next(q for q in eligibility if "次のいずれかに当てはまりますか" in q)
    assert all(word in category for word in SAKATA_CATEGORIES)   # the five categories, never which one
    shot(page, "sakata-02-checklist-done")

    slots = sim.slots()
    assert slots[0] == "12/7(月) 14:00" and all("(月)" in s for s in slots)  # Mondays 14:00, 15:00, 16:00
    sim.tap(slots[0])
    expect(sim.last()).to_contain_text("仮押さえ")
    shot(page, "sakata-03-slot-held")

    reference = fill_form(sim, "sakata")
    shot(page, "sakata-06-receipt")
    confirmation = approve_in_staff_pane(sim, reference)
    expect(confirmation).to_contain_text("12/7(月) 14:00")
    shot(page, "sakata-07-confirmed")
    page.locator("#menu-toggle").click()   # fold the rich menu and read the confirmation from its top
    expect(page.locator("#richmenu")).to_be_hidden()
    confirmation.evaluate("row => row.scrollIntoView({block: 'start'})")
    expect(page.locator("#toast")).to_be_empty()
    shot(page.locator(".phone"), "sakata-07-confirmed-phone")   # README's picture (static/docs/simulator.png)

    sim.say("予約確認")   # Sakata: cancelling is by phone, so no button offers it
    expect(sim.last()).to_contain_text(reference)
    expect(sim.last()).to_contain_text("予約確定")
    assert not [label for label in sim.quick() if "キャンセル" in label]

    sim.set_clock("2026-12-06T12:00:00", "2026/12/6(日) 12:00")   # noon the day before the session
    page.get_by_role("button", name="ワーカーを今すぐ実行").click()
    reminder = page.locator(BOT_ROWS, has_text="明日はオンライン職業相談の日です")
    expect(reminder).to_contain_text(f"受付番号: {reference}")
    expect(reminder).to_contain_text("12/7(月) 14:00")
    shot(page, "sakata-08-reminder")


def test_an_otaru_session_booked_approved_and_cancelled_in_chat(page, live_server):
    sim = Simulator(page, live_server.url, "otaru")
    sim.set_clock(START, "2026/12/1(火) 10:00")
    sim.new_user()
    sim.menu("予約")
    shot(page, "otaru-01-consent")
    sim.tap("同意する")
    asked = sim.answer_until_slots(lambda question: "いいえ" if "次のいずれかにあたりますか" in question else "はい")
    topic = next(q for q in asked if "次のいずれかにあたりますか" in q)
    assert all(word in topic for word in OTARU_TOPICS)   # one combined question; which one is never asked
    assert any("Zoom" in q and "アカウント登録は不要" in q for q in asked)
    assert len([q for q in asked if "【端末・環境の確認" in q]) == 6
    shot(page, "otaru-02-checklist-done")

    slots = sim.slots()
    assert slots[0] == "12/2(水) 10:00" and "12/2(水) 10:30" in slots   # weekdays, every 30 minutes
    sim.tap(slots[0])
    shot(page, "otaru-03-slot-held")
    reference = fill_form(sim, "otaru")
    confirmation = approve_in_staff_pane(sim, reference)
    expect(confirmation).to_contain_text("使用するソフト: Zoom")
    shot(page, "otaru-07-confirmed")

    sim.say("予約確認")   # Otaru: cancelling in chat until the previous day
    expect(sim.last()).to_contain_text("予約確定")
    cancel = f"キャンセルする（{reference}）"
    assert cancel in sim.quick()
    sim.tap(cancel)
    expect(sim.last()).to_contain_text("元に戻せません")          # the first tap only asks
    sim.tap("キャンセルする")
    expect(sim.last()).to_contain_text(f"受付番号: {reference}")
    expect(sim.last()).to_contain_text("キャンセルしました")
    card = page.locator(GROUP_ROWS, has_text="予約のキャンセル")
    expect(card).to_contain_text(reference)
    expect(card).to_contain_text("キャンセル（本人）")   # the dashboard's word for it
    shot(page, "otaru-08-cancelled")


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", data[16:24])


def test_readme_shows_a_phone_sized_picture_of_the_simulator():
    """static/docs/simulator.png is a journey screenshot (sakata-07-confirmed-phone), small enough to commit."""
    data = README_PICTURE.read_bytes()
    width, height = _png_size(data)
    assert len(data) < MAX_PICTURE_BYTES and width <= 480 and height > width
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "(static/docs/simulator.png)" in readme
