"""The details form over HTTP (`/form/<token>`): input -> confirmation -> completion, as a browser uses it."""
from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.clock import TOKYO
from bot.crypto import for_config
from bot.form_models import FormSubmission
from bot.forms import form_texts
from bot.models import Booking, Conversation, SlotHold
from bot.render import text_of
from bot.services.slots import slot_label
from tests.formflow import (Page, complete_form, form_link, hold_directly, hold_first_free, path_of, valid_answers,
                            walk_to_slots)

REFERENCE_LINE = re.compile(r"受付番号: [A-HJ-NP-Z2-9]{4}-[A-HJ-NP-Z2-9]{4}")


@pytest.fixture
def holding(rt):
    """A conversation holding a slot, set up through the services: (conversation id, form URL)."""
    def make(office: str = "sakata"):
        return hold_directly(rt, office)
    return make


@pytest.fixture
def chatting(user_factory, rt, fake_line):
    """A user who went through the chat and holds a slot: (user, form URL)."""
    def make(office: str = "sakata"):
        user = user_factory(office)
        walk_to_slots(user, rt)
        assert user.says("1").status_code == 200
        return user, form_link(fake_line.messages_to(user.user_id))
    return make


def bookings(rt) -> list[Booking]:
    with rt.db.reading() as s:
        rows = list(s.scalars(select(Booking).order_by(Booking.id)))
        for row in rows:
            s.expunge(row)
        return rows


def visible_text(html: str) -> str:
    return re.sub(r"<[^>]+>", "", html)


def complete(client, url: str, answers: dict[str, str]) -> Page:
    confirmation = Page.get(client, url).submit(client, answers)
    assert confirmation.status == 200 and "入力内容の確認" in confirmation.html
    return confirmation.submit(client)


def same_link(rt, path: str, url: str, suffix: str = "") -> bool:
    """`path` is the form link `url` names (and `suffix`): the same office, conversation and hold, whenever its
    token was signed (a token made again in another second differs in its timestamp)."""
    token = path_of(url).rsplit("/", 1)[-1]
    return (path.startswith("/form/") and path.endswith(suffix)
            and rt.read_form_token(path.removeprefix("/form/").removesuffix(suffix)) == rt.read_form_token(token))


def goes_on_to_the_newest(client, rt, late: Page, newest, second: str, name: str) -> Booking:
    """A page for a slot chosen before, sent: it names the slot held now and carries what was typed to that
    slot's form in one tap; confirmed there, the request is made for it. The request."""
    assert late.status == 410 and "前にお選びいただいた日時" in late.html
    assert slot_label(newest) in visible_text(late.html)
    assert same_link(rt, late.form.action, second) and late.form.fields["name"] == name
    confirmation = late.submit(client)                                     # one tap: the newest slot's check
    assert confirmation.status == 200 and "入力内容の確認" in confirmation.html
    assert name in confirmation.html and slot_label(newest) in confirmation.html
    done = confirmation.submit(client)
    assert done.status == 200 and "受付番号: " in done.html
    [booking] = bookings(rt)
    assert booking.slot_start == newest
    return booking


def resumes_on_the_newest(client, rt, onward: Page, newest, second: str, name: str) -> Booking:
    """A kept page's button (「日時を選び直したので、この内容で続ける」), tapped once another slot is chosen in the
    chat: straight to that slot's confirmation page with what was typed (no page between to tap again);
    confirmed there, the request is made for it. The request."""
    assert onward.status == 200 and "入力内容の確認" in onward.html
    assert name in onward.html and slot_label(newest) in onward.html
    assert same_link(rt, onward.form.action, second, "/confirm")            # the new slot's link
    done = onward.submit(client)
    assert done.status == 200 and "受付番号: " in done.html
    [booking] = bookings(rt)
    assert booking.slot_start == newest
    return booking


# -- what the pages show ----------------------------------------------------------------------------------

@pytest.mark.parametrize("office_id", ["sakata", "otaru"])
def test_the_privacy_notice_comes_before_any_field(holding, client, rt, office_id):
    _, url = holding(office_id)
    page = Page.get(client, url)
    assert page.status == 200
    office = rt.offices[office_id]
    html = page.html
    notice = html[:html.index("<form")]
    assert "利用目的" in notice
    assert office.controller in notice
    assert f"{office.retention['personal_details_days_after_session']}日" in notice
    assert "LINEには送られず" in notice and "システム" in notice
    assert "個人情報の保護に関する法律第62条" in notice
    assert "職業安定法第5条の5" in notice
    assert "開示" in notice


# What the notice says of deletion by `データ削除`: while a booking the chat cannot cancel is ahead (Sakata's
# confirmed session, Otaru's on its day), nothing is deleted until the office was told (delete_blocked).
DELETION_CONDITION = {"ja": "キャンセルのご連絡", "en": "cannot be cancelled in the chat", "easy": "とりけしの れんらく"}


@pytest.mark.parametrize("language", ["ja", "en", "easy"])
@pytest.mark.parametrize("office_id", ["sakata", "otaru"])
def test_the_privacy_notice_says_before_any_field_when_each_answer_goes(client, rt, office_id, language):
    """Purpose and retention come before the first field in every language, and say what the code does: the
    category answer (要配慮個人情報 for a disability certificate or the hospital's programme) goes sooner than the
    other details, said where the form asks it; `データ削除` deletes at once only where no booking ahead must be
    cancelled by the office's route first (never "at any time")."""
    words = form_texts(language)["page"]["privacy"]
    html = Page.get(client, hold_first_free(rt, office_id, language)).html
    notice = visible_text(html[:html.index("<form")])
    first_field = min(html.index(f'name="{name}"') for name in rt.offices[office_id].form_fields)
    assert html.index(words["purpose"]) < first_field and html.index(words["retention"]) < first_field
    asks_category = "category" in rt.offices[office_id].form_fields
    assert (visible_text(words["retention_category"]) in notice) == asks_category, notice
    assert DELETION_CONDITION[language] in notice, notice
    assert "いつでも" not in notice and "at any time" not in notice


@pytest.mark.parametrize("office_id", ["sakata", "otaru"])
def test_the_fields_are_the_profiles(holding, client, rt, office_id):
    _, url = holding(office_id)
    page = Page.get(client, url)
    form, parser = page.form, page.parsed
    names = form.names
    assert names == set(rt.offices[office_id].form_fields) | {"csrf_token"}
    assert form.method == "post" and "csrf_token" in form.fields
    for name in rt.offices[office_id].form_fields:
        if name not in ("category", "companion", "mypage_email_confirmed"):
            assert f"f-{name}" in parser.labels_for, f"{name} has no label"


# What a phone's keyboard is told about each field: the right keys, what the browser may fill in, and no
# "correction" of a name (iOS autocorrect turns a romanised name into a dictionary word).
KEYBOARD = {
    "name": {"type": "text", "autocomplete": "name", "autocapitalize": "words", "autocorrect": "off",
             "spellcheck": "false", "inputmode": None},
    "name_kana": {"type": "text", "autocomplete": None, "autocapitalize": "words", "autocorrect": "off",
                  "spellcheck": "false", "inputmode": None},
    "seeker_number": {"type": "text", "inputmode": "numeric", "autocorrect": None},
    "birth_date": {"type": "text", "autocomplete": "bday", "inputmode": None},   # 和暦 needs letters
    "phone": {"type": "tel", "autocomplete": "tel", "inputmode": "tel"},
}


@pytest.mark.parametrize("office_id, language", [("sakata", "ja"), ("otaru", "easy"), ("otaru", "en")])
def test_each_field_asks_the_phone_for_the_keyboard_it_needs(client, rt, office_id, language):
    from tests.test_accessibility_html import dom

    page = dom(Page.get(client, hold_first_free(rt, office_id, language)).response)
    fields = [name for name in KEYBOARD if name in rt.offices[office_id].form_fields]
    assert "name" in fields and "phone" in fields
    for name in fields:
        attrs = page.by_id(f"f-{name}").attrs
        assert {key: attrs.get(key) for key in KEYBOARD[name]} == KEYBOARD[name], name


def test_sensitive_categories_are_marked_with_the_purpose_first(holding, client):
    _, url = holding("sakata")
    html = Page.get(client, url).html
    purpose = html.index("要配慮個人情報")
    assert purpose < html.index('name="category"')
    for value in ("disability", "hospital"):
        option = re.search(rf'value="{value}"[^<]*>\s*<span>[^<]*<strong>（要配慮個人情報）</strong>', html)
        assert option, value
    for value in ("graduate", "uij", "mothers"):
        assert re.search(rf'value="{value}"[^<]*>\s*<span>[^<]*</span>', html), value   # no mark before it ends


@pytest.mark.parametrize("language", ["ja", "easy", "en"])
def test_the_category_question_is_read_with_its_purpose(client, rt, language):
    """A screen reader user moves from field to field (Tab, or the list of form controls) and never reads the
    paragraph between them: the purpose of the category question, and that two of its answers are 要配慮個人情報,
    is the group's description, read on entering it before anything is chosen — with the error once there is
    one."""
    from tests.test_accessibility_html import dom

    words = form_texts(language)["page"]["input"]
    url = hold_first_free(rt, "sakata", language)
    page = Page.get(client, url)
    sent = page.submit(client, {})                                              # nothing chosen: the error too
    error = "".join(dom(sent.response).by_id("f-category-error").text).strip()
    assert error
    purpose = visible_text(words["sensitive_text"].split("{sensitive}")[0])
    for response, errors in ((page.response, ()), (sent.response, (error,))):
        described = dom(response).description("f-category")
        assert purpose in described and "要配慮個人情報" in described, described
        assert all(e in described for e in errors), described


@pytest.mark.parametrize("language, words", [("ja", ("病気や障害", "書かなくても")),
                                             ("easy", ("びょうきや しょうがい", "書かなくても")),
                                             ("en", ("illness, disability", "without them"))])
def test_the_free_text_asks_for_no_more_sensitive_detail_than_needed(client, rt, language, words):
    """Otaru's consultation is free text, where illness or disability (要配慮個人情報) is easily told in full:
    its hint, read with the field (aria-describedby), says to write only what the counselling needs."""
    from tests.formflow import hold_first_free

    html = Page.get(client, hold_first_free(rt, "otaru", language)).html
    hint = re.search(r'<p class="hint" id="f-consultation-hint">(.*?)</p>', html, re.S)
    assert hint and all(word in hint[1] for word in words), hint
    assert re.search(r'<textarea id="f-consultation"[^>]*aria-describedby="f-consultation-hint"', html)


def test_each_page_holds_one_post_form_and_the_completion_none(holding, client, rt):
    _, url = holding("otaru")
    page = Page.get(client, url)
    assert len(page.forms) == 1 and page.form.method == "post"
    confirmation = page.submit(client, valid_answers(rt.offices["otaru"]))
    assert len(confirmation.forms) == 1 and confirmation.form.method == "post"
    done = confirmation.submit(client)
    assert done.status == 200 and done.forms == []
    lines = [line.strip() for line in visible_text(done.html).splitlines()]
    assert any(REFERENCE_LINE.fullmatch(line) for line in lines)
    [booking] = bookings(rt)
    assert f"受付番号: {booking.reference}" in lines


def test_the_birth_date_is_read_back(holding, client, rt):
    _, url = holding("otaru")
    confirmation = Page.get(client, url).submit(client, {**valid_answers(rt.offices["otaru"]), "birth_date": "H2.4.1"})
    assert "1990年4月1日（平成2年4月1日）" in confirmation.html
    assert confirmation.form.fields["birth_date"] == "1990-04-01"


def test_edit_goes_back_to_the_input_with_the_values(holding, client, rt):
    _, url = holding("sakata")
    confirmation = Page.get(client, url).submit(client, valid_answers(rt.offices["sakata"]))
    form = confirmation.form
    assert form.buttons and all(name is None for name, _ in form.buttons)   # no button needs a name
    edit_target = re.search(r'formaction="([^"]+)"', confirmation.html).group(1)
    again = Page(client.post(edit_target, data=form.fields, follow_redirects=True))
    assert "ご本人情報の入力" in again.html
    assert again.form.fields["seeker_number"] == "01234-56789"
    assert again.form.fields["category"] == "uij"
    assert bookings(rt) == []


# -- bad input, explained on its field --------------------------------------------------------------------

@pytest.mark.parametrize("office_id, field, typed, words", [
    ("sakata", "seeker_number", "12345-6789a", "求人番号"),
    ("sakata", "seeker_number", "12345678901234", "求人番号"),
    ("sakata", "name", "😀😀", "絵文字"),
    ("otaru", "birth_date", "令和99年1月1日", "今日より後"),
    ("otaru", "birth_date", "2000年2月30日", "2月30日という日付はありません"),
    ("otaru", "phone", "12-34", "日本国内の番号"),
])
def test_bad_input_is_explained_on_its_field(holding, client, rt, office_id, field, typed, words):
    _, url = holding(office_id)
    answers = {**valid_answers(rt.offices[office_id]), field: typed}
    page = Page.get(client, url).submit(client, answers)
    assert page.status == 200 and "入力内容をご確認ください" in page.html
    error_id = f"f-{field}-error"
    match = re.search(rf'<p class="error" id="{error_id}">([^<]*)</p>', page.html)
    assert match and words in match.group(1)
    field_tag = re.search(rf'<input id="f-{field}"[^>]*>', page.html).group(0)
    assert error_id in re.search(r'aria-describedby="([^"]*)"', field_tag).group(1)
    assert 'aria-invalid="true"' in field_tag
    assert f'href="#f-{field}"' in page.html  # the summary links to the field
    assert page.form.fields[field] == typed   # what they typed, to correct it
    assert bookings(rt) == []


def test_a_missing_choice_is_tied_to_its_group(holding, client, rt):
    _, url = holding("sakata")
    page = Page.get(client, url).submit(client, valid_answers(rt.offices["sakata"]), drop=("category",
                                                                                        "mypage_email_confirmed"))
    fieldset = re.search(r'<fieldset class="field" id="f-category"[^>]*>', page.html).group(0)
    assert "f-category-error" in fieldset and 'aria-invalid="true"' in fieldset
    # The My Page group's one control, the box, carries its error itself (test_accessibility_html).
    box = re.search(r'<input type="checkbox" id="f-mypage_email_confirmed-yes"[^>]*>', page.html).group(0)
    assert "f-mypage_email_confirmed-error" in box and 'aria-invalid="true"' in box
    parser = page.parsed
    assert set(parser.described) <= parser.ids  # every description points at something on the page


# -- the link ------------------------------------------------------------------------------------------

def test_without_csrf_the_form_is_refused(holding, client, app, rt):
    _, url = holding("sakata")
    page = Page.get(client, url)
    answers = valid_answers(rt.offices["sakata"])
    missing = page.submit(client, answers, drop=("csrf_token",))
    assert missing.status == 400 and "もう一度お試しください" in missing.html
    wrong = page.submit(client, answers, extra={"csrf_token": "0" * 64})
    assert wrong.status == 400
    other_browser = app.test_client()
    stolen = Page(other_browser.post(page.form.action, data={**page.form.fields, **answers}))
    assert stolen.status == 400
    confirmation = page.submit(client, answers)
    direct = Page(client.post(confirmation.form.action, data={k: v for k, v in confirmation.form.fields.items()
                                                             if k != "csrf_token"}))
    assert direct.status == 400
    assert bookings(rt) == []


def test_a_refused_post_offers_the_input_page_one_tap_away(holding, client, rt):
    """The session cookie was lost (LINE's browser closed in the background): the kind page links the same
    input page, which sets a fresh token, and sending from it works."""
    _, url = holding("otaru")
    answers = valid_answers(rt.offices["otaru"])
    client.delete_cookie(client.application.config["SESSION_COOKIE_NAME"])
    refused = Page.get(client, url).submit(client, answers, drop=("csrf_token",))
    assert refused.status == 400
    reopen = re.search(r'<a class="button" href="([^"]+)">入力ページを開き直す</a>', refused.html).group(1)
    assert reopen == path_of(url)
    confirmation = Page.get(client, reopen).submit(client, answers)
    assert confirmation.status == 200 and "入力内容の確認" in confirmation.html


def test_a_forged_or_tampered_token_is_refused(holding, client, rt):
    _, url = holding("sakata")
    path = path_of(url)
    token = path.rsplit("/", 1)[1]
    for bad in ("nonsense", token[:-2] + ("AA" if not token.endswith("AA") else "BB"), token + "x"):
        page = Page(client.get(f"/form/{bad}"))
        assert page.status == 404 and "このページは表示できません" in page.html
        assert Page(client.post(f"/form/{bad}/confirm", data={})).status == 404
    assert bookings(rt) == []


def test_another_users_token_is_refused(holding, client, rt):
    alice, alice_url = holding("sakata")
    bob, _ = holding("sakata")
    with rt.db.reading() as s:
        alice_hold = s.scalar(select(SlotHold).where(SlotHold.conversation_id == alice))
    # A genuinely signed link that names Bob's conversation with Alice's hold.
    crossed = rt.form_url("sakata", bob, alice_hold.token_nonce)
    page = Page.get(client, crossed)
    assert page.status == 403 and "このページは表示できません" in page.html
    # And another office's conversation.
    assert Page.get(client, rt.form_url("otaru", alice, alice_hold.token_nonce)).status == 403
    assert Page.get(client, alice_url).status == 200
    assert bookings(rt) == []


def test_a_hold_that_ran_out_while_typing_is_taken_again_when_the_slot_is_free(holding, client, rt, clock):
    """16 minutes typing: the hold ran out, nobody took the slot: what was typed is sent, not lost."""
    _, url = holding("sakata")
    page = Page.get(client, url)
    clock.advance(minutes=rt.offices["sakata"].booking.hold_minutes + 1)
    confirmation = page.submit(client, valid_answers(rt.offices["sakata"]))
    assert confirmation.status == 200 and "入力内容の確認" in confirmation.html
    with rt.db.reading() as s:
        assert s.scalar(select(SlotHold)).expires_at > clock.now()                # held again
    clock.advance(minutes=rt.offices["sakata"].booking.hold_minutes + 1)        # and ran out once more
    done = confirmation.submit(client)
    assert done.status == 200 and "受付番号: " in done.html
    assert len(bookings(rt)) == 1


def _held_slot(rt, user):
    """The slot the user's conversation holds (another conversation may hold one too)."""
    with rt.db.reading() as s:
        return s.scalar(select(SlotHold.slot_start).join(Conversation, Conversation.id == SlotHold.conversation_id)
                        .where(Conversation.line_user_id == user.user_id))


@pytest.mark.parametrize("sent_from", ["input", "confirmation"])
def test_a_form_sent_after_its_slot_was_taken_keeps_what_was_typed_until_another_slot_is_chosen(
        chatting, client, rt, fake_line, clock, caplog, sent_from):
    """The hold ran out while the user typed and someone else took the slot: the page sent says so and keeps
    what was typed (on the page only); once another slot is chosen in the chat, one tap carries it on to that
    slot's request — nothing typed twice, nothing stored before the request, nothing in LINE or the logs."""
    caplog.set_level(logging.DEBUG)
    user, first = chatting("sakata")
    taken = _held_slot(rt, user)
    answers = {**valid_answers(rt.offices["sakata"]), "name": "遅延 太郎", "seeker_number": "24680-13579",
               "phone": "080-2468-1357", "category": "disability"}
    page = Page.get(client, first)
    if sent_from == "confirmation":
        page = page.submit(client, answers)
        assert "入力内容の確認" in page.html
    clock.advance(minutes=rt.offices["sakata"].booking.hold_minutes + 1)
    hold_directly(rt, "sakata")                                                 # someone else holds the slot
    late = page.submit(client, answers if sent_from == "input" else None)
    assert late.status == 409 and "埋まりました" in late.html
    words = visible_text(late.html)
    assert "このページは閉じずに" in words and "日時を選び直したので、この内容で続ける" in words
    assert late.form.action == path_of(first) + "/resume" and late.form.action not in late.parsed.links
    assert late.form.fields["name"] == "遅延 太郎" and late.form.fields["category"] == "disability"
    assert "遅延 太郎" not in words                                              # carried, not shown
    assert bookings(rt) == []

    early = late.submit(client)                     # tapped before choosing another slot: the page again
    assert early.status == 409 and "新しい日時がまだ選ばれていません" in early.html
    assert "「予約」と送り" in visible_text(early.html)
    assert early.form.action == late.form.action and early.form.fields == late.form.fields

    user.says("予約")                                                            # the slots again
    user.says("1")                                                              # the first one free: another
    second = form_link(fake_line.messages_to(user.user_id))
    newest = _held_slot(rt, user)
    assert second != first and newest != taken
    booking = resumes_on_the_newest(client, rt, early.submit(client), newest, second, "遅延 太郎")
    stored = for_config(rt.config).decrypt(booking.details)
    assert {name: stored[name] for name in ("name", "seeker_number", "phone", "category")} == {
        "name": "遅延 太郎", "seeker_number": "24680-13579", "phone": "080-2468-1357", "category": "disability"}
    chat = text_of(fake_line.messages_to(user.user_id))
    for value in ("遅延", "24680", "13579", "080-2468", "disability"):
        assert value not in chat and value not in caplog.text, value


def _block(rt, start, whole_day: bool) -> None:
    """Staff take the slot (or its whole day) out of online booking, as the 予定表's buttons do."""
    from bot.models import SlotBlock
    with rt.db.transaction() as s:
        s.add(SlotBlock(office_id="sakata", day=start.astimezone(TOKYO).date().isoformat(),
                        slot_start=None if whole_day else start, created_at=rt.clock.now()))


@pytest.mark.parametrize("whole_day", [False, True], ids=["slot", "day"])
@pytest.mark.parametrize("sent_from", ["input", "confirmation"])
def test_a_form_sent_after_staff_blocked_its_slot_is_refused_and_keeps_what_was_typed(
        chatting, client, rt, fake_line, sent_from, whole_day):
    """Staff blocked the held slot (a counsellor fell ill) while the user typed: no request is made for it
    (it would only be declined later), the page says the office stopped taking it, keeps what was typed, and
    the chat offers the other slots; one tap then carries it on to the slot chosen instead."""
    user, first = chatting("sakata")
    blocked = _held_slot(rt, user)
    answers = {**valid_answers(rt.offices["sakata"]), "name": "停止 花子"}
    page = Page.get(client, first)
    if sent_from == "confirmation":
        page = page.submit(client, answers)
        assert "入力内容の確認" in page.html
    _block(rt, blocked, whole_day)
    late = page.submit(client, answers if sent_from == "input" else None)
    assert late.status == 409 and "受付を終了しました" in late.html and "お申込みは送信されていません" in late.html
    assert "このページは閉じずに" in visible_text(late.html)
    assert late.form.fields["name"] == "停止 花子" and bookings(rt) == []
    assert _held_slot(rt, user) is None                        # given back: the chat offers the slots again

    user.says("予約")
    if whole_day:
        user.says("次の週")                      # the only day of this week is blocked: the week says so
    user.says("1")
    second = form_link(fake_line.messages_to(user.user_id))
    newest = _held_slot(rt, user)
    assert newest is not None and newest != blocked
    booking = resumes_on_the_newest(client, rt, late.submit(client), newest, second, "停止 花子")
    assert booking.slot_start == newest


def test_a_form_opened_after_staff_blocked_its_slot_says_so_at_once(chatting, client, rt):
    """Opened after the block: told before typing anything, not after."""
    user, first = chatting("sakata")
    _block(rt, _held_slot(rt, user), whole_day=False)
    page = Page.get(client, first)
    assert page.status == 409 and "受付を終了しました" in page.html and "「予約」と送り" in visible_text(page.html)
    assert _held_slot(rt, user) is None and bookings(rt) == []


def test_a_form_sent_after_the_chat_gave_the_slot_back_keeps_what_was_typed(chatting, client, rt, fake_line):
    """戻る in the chat gave the slot back while the form was open: sent, the page keeps what was typed for the
    slot chosen next."""
    user, first = chatting("otaru")
    page = Page.get(client, first)
    user.says("戻る")                                                            # the slot list: no hold left
    late = page.submit(client, {**valid_answers(rt.offices["otaru"]), "name": "戻り 花子"})
    assert late.status == 410 and "もう一度日時をお選びください" in late.html
    words = visible_text(late.html)                  # the page is the way on: not "no longer usable"
    assert "お申込みは送信されていません" in words and "このページは使えなくなりました" not in words
    assert late.form.action == path_of(first) + "/resume" and late.form.fields["name"] == "戻り 花子"
    assert late.form.action not in late.parsed.links                         # one way on: the button
    user.says("2")
    second = form_link(fake_line.messages_to(user.user_id))
    resumes_on_the_newest(client, rt, late.submit(client), _held_slot(rt, user), second, "戻り 花子")


def kept_then_another_chosen(chatting, client, rt, fake_line, clock, name: str) -> tuple[Any, Page, str]:
    """A form sent after its hold ran out and someone else took the slot (the page keeps what was typed), then
    another slot chosen in the chat: (the user, the kept page, the new slot's form link)."""
    user, first = chatting("sakata")
    page = Page.get(client, first)
    clock.advance(minutes=rt.offices["sakata"].booking.hold_minutes + 1)
    hold_directly(rt, "sakata")                                                 # someone else holds the slot
    late = page.submit(client, {**valid_answers(rt.offices["sakata"]), "name": name})
    assert late.status == 409
    user.says("予約")
    user.says("1")
    return user, late, form_link(fake_line.messages_to(user.user_id))


def test_the_kept_page_sent_again_after_the_request_was_made_shows_that_request(chatting, client, rt, fake_line,
                                                                                  clock):
    """The user went on from the kept page (or from the chat's new link) and made the request, then came back to
    the kept page (the browser's history) and tapped its button again: the completion page of the request made,
    not "no new slot chosen yet" (which would send them to book again), and no second request."""
    _, late, second = kept_then_another_chosen(chatting, client, rt, fake_line, clock, "再送 次郎")
    done = late.submit(client).submit(client)                                  # on to its check, made
    [booking] = bookings(rt)
    assert done.status == 200 and f"受付番号: {booking.reference}" in done.html
    for _ in range(2):                                                          # a double tap, too
        response = client.post(late.form.action, data=late.form.fields)
        assert response.status_code == 303 and same_link(rt, response.headers["Location"], second, "/done")
    again = late.submit(client)
    assert again.status == 200 and f"受付番号: {booking.reference}" in again.html
    assert "新しい日時がまだ選ばれていません" not in again.html
    assert [b.id for b in bookings(rt)] == [booking.id]


def test_the_kept_page_holds_any_text_as_a_value_only_and_is_never_cached_or_logged(holding, client, rt, clock,
                                                                                   caplog):
    """Quotes, markup, line breaks, full-width and bidi characters, a long text: each stays inside its hidden
    field's value, on the kept page and on the page again; neither page is cached or sends a referrer."""
    caplog.set_level(logging.DEBUG)
    typed = '"><script>alert(1)</script>\' onfocus=\'x\n二行目\r\n＜全角＞\u202eevil\u202c' + "長" * 2000
    _, url = holding("sakata")
    page = Page.get(client, url)
    clock.advance(minutes=rt.offices["sakata"].booking.hold_minutes + 1)
    hold_directly(rt, "sakata")
    late = page.submit(client, {**valid_answers(rt.offices["sakata"]), "name": typed})
    early = late.submit(client)
    for kept in (late, early):
        assert kept.status == 409 and kept.form.fields["name"] == typed
        assert "<script>" not in kept.html and "onfocus='" not in kept.html and "\u202e" not in visible_text(kept.html)
        assert kept.response.headers["Cache-Control"] == "no-store"
        assert kept.response.headers["Referrer-Policy"] == "no-referrer"
    for value in ("script", "全角", "二行目", "長長"):
        assert value not in caplog.text


def test_the_kept_page_goes_on_to_the_slot_chosen_since_even_if_its_hold_ran_out_too(chatting, client, rt,
                                                                                     fake_line, clock):
    """The user chose another slot in the chat but came back to the kept page only after that hold ran out too:
    not "no new slot chosen yet" (they did choose one), but that slot named, and held again when sent if it is
    still free, as a form sent late; the request made with what was typed."""
    user, late, second = kept_then_another_chosen(chatting, client, rt, fake_line, clock, "遅刻 四郎")
    newest = _held_slot(rt, user)
    clock.advance(minutes=rt.offices["sakata"].booking.hold_minutes + 1)       # that hold ran out as well
    onward = late.submit(client)
    assert "新しい日時がまだ選ばれていません" not in onward.html
    resumes_on_the_newest(client, rt, onward, newest, second, "遅刻 四郎")


def test_the_kept_input_goes_on_only_from_the_browser_it_was_typed_in(holding, client, app, rt, clock):
    """The page keeps this link's CSRF token for this browser: another browser sending its fields is refused."""
    _, url = holding("sakata")
    page = Page.get(client, url)
    clock.advance(minutes=rt.offices["sakata"].booking.hold_minutes + 1)
    hold_directly(rt, "sakata")
    late = page.submit(client, valid_answers(rt.offices["sakata"]))
    assert late.status == 409
    elsewhere = app.test_client()
    assert elsewhere.post(late.form.action, data=late.form.fields).status_code == 400
    assert late.submit(client).status == 409                                   # this browser: still kept
    assert client.get(late.form.action).status_code == 303                     # opened directly: the input page


def test_the_kept_input_takes_the_slot_again_if_it_came_free_meanwhile(holding, client, rt, clock):
    """The one who took the slot let it go (their hold ran out) before the user tapped to go on: the slot is
    held again and the confirmation page comes, as for a form sent late."""
    _, url = holding("sakata")
    page = Page.get(client, url)
    minutes = rt.offices["sakata"].booking.hold_minutes
    clock.advance(minutes=minutes + 1)
    hold_directly(rt, "sakata")
    late = page.submit(client, {**valid_answers(rt.offices["sakata"]), "name": "再開 一郎"})
    assert late.status == 409
    clock.advance(minutes=minutes + 1)                                          # the other hold ran out
    confirmation = late.submit(client)
    assert confirmation.status == 200 and "入力内容の確認" in confirmation.html and "再開 一郎" in confirmation.html
    assert "受付番号: " in confirmation.submit(client).html


@pytest.mark.parametrize("language", ["en", "easy"])
def test_the_kept_input_is_explained_in_the_chat_language(client, rt, clock, language):
    from tests.test_accessibility_html import unmarked_japanese

    url = hold_first_free(rt, "sakata", language)
    page = Page.get(client, url)
    clock.advance(minutes=rt.offices["sakata"].booking.hold_minutes + 1)
    hold_first_free(rt, "sakata")                                               # the same slot, for another
    words = form_texts(language)["page"]["problem"]
    late = page.submit(client, valid_answers(rt.offices["sakata"]))
    early = late.submit(client)
    assert (late.status, early.status) == (409, 409)
    assert visible_text(words["resume"]) in visible_text(late.html)
    assert visible_text(words["text_carry"]) in visible_text(late.html)
    assert visible_text(words["waiting"]) in visible_text(early.html)
    if language == "en":
        assert unmarked_japanese(late.html) == [] and unmarked_japanese(early.html) == []


def test_an_expired_hold_gets_a_kind_page(holding, client, rt, clock):
    """Only a sent form takes a slot again: opening the page after the hold ran out does not."""
    _, url = holding("sakata")
    clock.advance(minutes=rt.offices["sakata"].booking.hold_minutes + 1)
    late = Page.get(client, url)
    assert late.status == 410
    assert "もう一度日時をお選びください" in late.html
    assert len(late.forms) == 0
    assert bookings(rt) == []


def signed_long_ago(rt, url: str, monkeypatch) -> str:
    """The same form link as the chat sent it two days ago: its token's signature older than the link's lifetime
    (a link tapped again in the chat's history the next day or later)."""
    from itsdangerous import TimestampSigner

    data = rt.read_form_token(path_of(url).rsplit("/", 1)[-1])
    signed_now = TimestampSigner.get_timestamp
    with monkeypatch.context() as m:
        m.setattr(TimestampSigner, "get_timestamp", lambda self: signed_now(self) - 2 * 24 * 3600)
        old = rt.form_url(data["o"], data["c"], data["n"])
    assert rt.read_form_token(path_of(old).rsplit("/", 1)[-1]) is None     # too old to be used
    return old


def link_outlived(monkeypatch) -> None:
    """From now on every form token reads as signed two days earlier than it was: older than a link lives (a
    page left open in the in-app browser overnight and more)."""
    from itsdangerous import TimestampSigner

    read_now = TimestampSigner.get_timestamp
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: read_now(self) + 2 * 24 * 3600)


@pytest.mark.parametrize("taken", [False, True], ids=["free", "taken"])
@pytest.mark.parametrize("sent_from", ["input", "confirmation"])
def test_a_form_left_open_longer_than_its_link_lives_and_then_sent_keeps_what_was_typed(
        chatting, client, rt, fake_line, clock, monkeypatch, sent_from, taken):
    """The page opened from the chat, left open in LINE's browser into the next day, then sent: its slot is not
    taken again after a day (SECURITY.md), but what was typed is not lost either. The page keeps it, says to
    choose a slot again in the chat, and its button then carries it on to that slot's confirmation."""
    user, first = chatting("sakata")
    answers = {**valid_answers(rt.offices["sakata"]), "name": "夜更 花子"}
    page = Page.get(client, first)
    if sent_from == "confirmation":
        page = page.submit(client, answers)
        assert "入力内容の確認" in page.html
    link_outlived(monkeypatch)
    clock.advance(minutes=rt.offices["sakata"].booking.hold_minutes + 1)
    if taken:
        hold_directly(rt, "sakata")                                             # someone else holds the slot
    late = page.submit(client, answers if sent_from == "input" else None)
    assert late.status == 410, visible_text(late.html)
    words = visible_text(late.html)
    assert "もう一度日時をお選びください" in words and "日時を選び直したので、この内容で続ける" in words
    assert late.form.action == path_of(first) + "/resume"
    assert late.form.fields["name"] == "夜更 花子" and late.form.fields["seeker_number"] == answers["seeker_number"]
    assert bookings(rt) == []

    user.says("予約")                                                            # the chat offers the slots
    user.says("1")
    second = form_link(fake_line.messages_to(user.user_id))
    onward = late.submit(client)
    assert onward.status == 200 and "入力内容の確認" in onward.html and "夜更 花子" in onward.html
    newer = onward.form.action.removeprefix("/form/").removesuffix("/confirm")
    assert rt.read_form_token(newer, max_age=None) == rt.read_form_token(path_of(second).rsplit("/", 1)[-1],
                                                                         max_age=None)
    assert onward.submit(client).status == 200
    [booking] = bookings(rt)
    assert for_config(rt.config).decrypt(booking.details)["name"] == "夜更 花子"


def test_a_page_sent_after_its_link_outlived_a_day_without_this_browsers_token_keeps_nothing(
        holding, client, app, rt, monkeypatch):
    """Only the browser that opened the page in time gets it kept: another (no CSRF token of its own) gets the
    page that the link can no longer be used, with nothing in it."""
    _, url = holding("sakata")
    page = Page.get(client, url)
    link_outlived(monkeypatch)
    other = Page(app.test_client().post(page.form.action, data={**page.form.fields,
                                                                **valid_answers(rt.offices["sakata"])}))
    assert other.status == 410 and len(other.forms) == 0
    assert "山田" not in other.html


@pytest.mark.parametrize("language", ["ja", "easy", "en"])
def test_a_used_link_tapped_again_days_later_shows_its_request_not_to_book_again(client, rt, language, monkeypatch):
    """The chat keeps the form's link; tapped days later to find the 受付番号, it must show the request that was
    made (in the chat's language), not "the page expired: choose a date again" — which would send the user to
    book a second time."""
    office = rt.offices["sakata"]
    url = hold_first_free(rt, "sakata", language)
    assert Page.get(client, url).submit(client, valid_answers(office)).submit(client).status == 200
    [booking] = bookings(rt)
    old = signed_long_ago(rt, url, monkeypatch)
    words = form_texts(language)["page"]
    for path in (path_of(old), path_of(old) + "/done"):
        again = Page(client.get(path, follow_redirects=True))
        assert again.status == 200 and f"受付番号: {booking.reference}" in again.html, path
        assert f'<html lang="{words["lang"]}">' in again.html
        assert visible_text(words["done"]["heading"]) in visible_text(again.html)
        assert visible_text(words["problem"]["text_expired"]) not in visible_text(again.html)
    assert [b.id for b in bookings(rt)] == [booking.id]


@pytest.mark.parametrize("language", ["ja", "easy", "en"])
def test_an_unused_link_from_days_ago_says_so_in_the_chat_language_with_the_way_back(make_app, language, monkeypatch):
    """A link never sent, tapped a day or more later: the page that it can no longer be used speaks the chat's
    language and has the button back to the office's LINE chat, like every other page that says so."""
    app = make_app(env={"LINE_BASIC_ID_SAKATA": "@madoguchi"})
    rt, client = app.extensions["madoguchi"], app.test_client()
    old = signed_long_ago(rt, hold_first_free(rt, "sakata", language), monkeypatch)
    words = form_texts(language)["page"]
    for page in (Page.get(client, old), Page(client.post(path_of(old) + "/confirm", data={"name": "x"}))):
        assert page.status == 410
        assert f'<html lang="{words["lang"]}">' in page.html
        assert visible_text(words["problem"]["text_expired"]) in visible_text(page.html)
        assert "https://line.me/R/oaMessage/%40madoguchi/" in page.html
        assert len(page.forms) == 0
    assert bookings(rt) == []


@pytest.mark.parametrize("language", ["ja", "en", "easy"])
def test_a_page_that_asks_to_choose_again_says_what_to_send(language):
    """Back in the chat nothing new has arrived: the page names the word that brings the slots (予約)."""
    problem = form_texts(language)["page"]["problem"]
    word = '"<span lang="ja">予約</span>"' if language == "en" else "「予約」"   # the word to send, quoted
    for kind in ("text_expired", "text_expired_kept", "text_full"):
        assert word in problem[kind], (language, kind)


# Two minutes before the booking deadline of the first slot offered: Sakata's Monday 12/7 closes on
# Friday 12/4 at 17:00, Otaru's Wednesday 12/2 on Tuesday 12/1 at 17:00.
JUST_BEFORE = {"sakata": datetime(2026, 12, 4, 16, 58, tzinfo=TOKYO),
               "otaru": datetime(2026, 12, 1, 16, 58, tzinfo=TOKYO)}
LATE_SLOT = {"sakata": ("12/7(月) 14:00", "12/4(金) 17:00"), "otaru": ("12/2(水) 10:00", "12/1(火) 17:00")}


def _count(rt, model) -> int:
    with rt.db.reading() as s:
        return s.scalar(select(func.count()).select_from(model))


@pytest.mark.parametrize("office_id", ["sakata", "otaru"])
def test_a_form_sent_after_the_booking_deadline_is_refused_kindly_and_keeps_nothing(make_app, office_id):
    app = make_app(env={f"LINE_BASIC_ID_{office_id.upper()}": "@madoguchi"})
    rt, client = app.extensions["madoguchi"], app.test_client()
    rt.clock.freeze(JUST_BEFORE[office_id])
    _, url = hold_directly(rt, office_id)
    slot, deadline = LATE_SLOT[office_id]
    page = Page.get(client, url)
    assert f"締切は {deadline} です" in visible_text(page.html)   # said up front: it comes while the form is open
    answers = {**valid_answers(rt.offices[office_id]), "name": "締切 過子"}
    confirmation = page.submit(client, answers)
    assert confirmation.status == 200 and "入力内容の確認" in confirmation.html
    rt.clock.advance(minutes=12)   # 17:10: the hold (extended by the confirmation page) still lives
    late = confirmation.submit(client)
    assert late.status == 410
    words = visible_text(late.html)
    assert "お申込みの締切を過ぎました" in words and slot in words and deadline in words
    assert "お申込みは送信されていません" in words and "「予約」と送り" in words
    # What was typed is kept on the page only, for a slot chosen next in the chat (stored nowhere).
    assert late.form.action == path_of(url) + "/resume"
    assert late.form.fields["name"] == "締切 過子" and "締切 過子" not in words
    assert "https://line.me/R/oaMessage/%40madoguchi/?%E4%BA%88%E7%B4%84\"" in late.html   # 予約, typed
    assert bookings(rt) == [] and _count(rt, SlotHold) == 0 and _count(rt, FormSubmission) == 0
    assert Page.get(client, url).status == 410


def test_the_form_opened_after_the_deadline_gives_the_slot_back_and_the_chat_offers_others(
        chatting, client, rt, fake_line, clock):
    clock.freeze(JUST_BEFORE["sakata"])
    user, url = chatting("sakata")
    page = Page.get(client, url)
    clock.advance(minutes=5)       # 17:03: the hold lives, the deadline has passed
    typed = page.submit(client, {**valid_answers(rt.offices["sakata"]), "name": "締切 過子"})
    assert typed.status == 410 and "お申込みの締切を過ぎました" in typed.html
    assert typed.form.action == path_of(url) + "/resume" and typed.form.fields["name"] == "締切 過子"
    assert _count(rt, SlotHold) == 0 and bookings(rt) == []
    before = len(fake_line.texts_to(user.user_id))
    user.says("予約")
    offered = "\n".join(fake_line.texts_to(user.user_id)[before:])
    assert "12/7(月) 14:00" not in offered and "12/14(月) 14:00" in offered
    assert "お取りできなくなりました" in offered and "時間が過ぎました" not in offered   # it did not run out
    user.says("12/14 14:00")                    # a later slot: what was typed goes on to it from the page kept
    resumes_on_the_newest(client, rt, typed.submit(client), datetime(2026, 12, 14, 14, 0, tzinfo=TOKYO),
                          form_link(fake_line.messages_to(user.user_id)), "締切 過子")


def test_no_deadline_line_while_the_deadline_is_far(holding, client):
    _, url = holding("sakata")
    page = Page.get(client, url)
    assert page.status == 200 and "締切" not in visible_text(page.html)


def test_a_superseded_link_points_to_the_newest(chatting, client, rt, fake_line):
    user, first = chatting("otaru")
    user.says("戻る")   # back to the slot list: the hold is given back
    user.says("2")      # another slot: a new hold, a new link
    second = form_link(fake_line.messages_to(user.user_id))
    assert second != first
    old = Page.get(client, first)
    assert old.status == 410 and "前にお選びいただいた日時" in old.html
    assert any(same_link(rt, link, second) for link in old.parsed.links)  # the newest input page, one tap away
    assert Page.get(client, second).status == 200


def test_an_earlier_link_opened_after_a_request_made_from_a_later_one_points_to_the_request(chatting, client, rt,
                                                                                           fake_line):
    """Scrolling up the chat after applying, the user taps the first 入力ページを開く: not "the hold ran out,
    send 予約 and choose again" (予約 would only say a request is open), but that one is, and 予約確認."""
    user, first = chatting("sakata")
    user.says("戻る")
    user.says("2")
    second = form_link(fake_line.messages_to(user.user_id))
    complete_form(client, second, valid_answers(rt.offices["sakata"]))
    old = Page.get(client, first)
    text = visible_text(old.html)
    assert old.status == 409 and "お申込みは受付済みです" in text and "「予約確認」" in text
    assert "もう一度日時をお選びください" not in text and "お受けできません" not in text   # not read as refused


def test_a_form_sent_from_a_superseded_page_goes_on_to_the_newest_with_what_was_typed(chatting, client, rt,
                                                                                       fake_line):
    """A form left open in a browser while the chat moved on to another slot: sent, it is not simply refused
    with everything typed lost — the page names the slot held now and carries what was typed to its form."""
    user, first = chatting("otaru")
    page = Page.get(client, first)
    user.says("戻る")
    user.says("2")
    second = form_link(fake_line.messages_to(user.user_id))
    with rt.db.reading() as s:
        newest = s.scalar(select(SlotHold)).slot_start
    answers = {**valid_answers(rt.offices["otaru"]), "name": "遅延 花子"}
    goes_on_to_the_newest(client, rt, page.submit(client, answers), newest, second, "遅延 花子")


def test_the_same_slot_chosen_again_after_the_hold_ran_out_keeps_the_open_page_usable(chatting, client, rt,
                                                                                      fake_line, clock):
    """Typing took longer than the hold; the user went back to the chat, was told the hold ran out and chose
    the same slot again. The form page still open with what they typed must still be sendable — not refused
    as "for a time chosen before" with everything typed lost."""
    user, first = chatting("otaru")
    page = Page.get(client, first)
    clock.advance(minutes=rt.offices["otaru"].booking.hold_minutes + 1)
    user.says("予約")                   # the hold ran out: the slots are offered again
    user.says("1")                      # the same slot, held again
    second = form_link(fake_line.messages_to(user.user_id))
    with rt.db.reading() as s:
        assert s.scalar(select(func.count()).select_from(SlotHold).where(SlotHold.expires_at > clock.now())) == 1
    confirmation = page.submit(client, valid_answers(rt.offices["otaru"]))
    assert confirmation.status == 200 and "入力内容の確認" in confirmation.html
    done = confirmation.submit(client)
    assert done.status == 200 and "受付番号: " in done.html
    assert len(bookings(rt)) == 1
    assert f"受付番号: {bookings(rt)[0].reference}" in Page.get(client, second).html   # the newer link: the same


def test_the_hold_lives_while_the_user_is_on_the_form(holding, client, rt, clock):
    _, url = holding("sakata")
    minutes = rt.offices["sakata"].booking.hold_minutes
    with rt.db.reading() as s:
        created = s.scalar(select(SlotHold)).created_at
    for _ in range(4):  # each view keeps the slot one more period, up to four periods in all
        clock.advance(minutes=minutes - 1)
        assert Page.get(client, url).status == 200
    with rt.db.reading() as s:
        assert s.scalar(select(SlotHold)).expires_at == created + timedelta(minutes=minutes * 4)
    clock.advance(minutes=minutes - 1)
    assert Page.get(client, url).status == 410


def test_the_form_sent_twice_makes_one_request(holding, client, rt):
    _, url = holding("sakata")
    confirmation = Page.get(client, url).submit(client, valid_answers(rt.offices["sakata"]))
    first = confirmation.submit(client)
    second = confirmation.submit(client)
    assert first.status == second.status == 200
    [booking] = bookings(rt)
    for page in (first, second):
        assert f"受付番号: {booking.reference}" in page.html
    reloaded = Page(client.get(path_of(url) + "/done"))
    assert f"受付番号: {booking.reference}" in reloaded.html
    assert Page.get(client, url).status == 200 and f"受付番号: {booking.reference}" in Page.get(client, url).html


@pytest.mark.parametrize("language", ["ja", "easy", "en"])
def test_the_completion_page_says_where_application_documents_go(client, rt, language):
    """Otaru's notice: application documents for the counselling are sent by e-mail. A request about them is
    what the form's own example asks for, so the completion page says where, in the page's language."""
    from tests.formflow import hold_first_free

    office = rt.offices["otaru"]
    url = hold_first_free(rt, "otaru", language)
    done = Page.get(client, url).submit(client, valid_answers(office)).submit(client)
    assert done.status == 200
    route = office.localized(language).documents_route
    assert route and "s-otaru.sm@hkdrdk.go.jp" in route
    assert route in visible_text(done.html)
    assert rt.offices["sakata"].documents_route is None  # an office without a route says nothing of it


@pytest.mark.parametrize("trigger", ["confirm", "withdraw"])
def test_the_link_opened_again_after_a_decision_does_not_say_it_is_undecided(holding, client, rt, trigger):
    """The chat keeps the form's link: tapped again once staff confirmed the request (or it was withdrawn), the
    completion page must not still say "not confirmed yet" — it sends the user to 予約確認 for where it stands."""
    from bot.services import lifecycle

    _, url = holding("sakata")
    done = complete(client, url, valid_answers(rt.offices["sakata"]))
    assert "予約はまだ確定していません" in done.html
    with rt.db.transaction() as s:
        [booking] = s.scalars(select(Booking)).all()
        assert lifecycle.fire(s, booking, trigger, rt.clock.now())
    again = Page.get(client, url)
    assert again.status == 200 and f"受付番号: {booking.reference}" in again.html
    text = visible_text(again.html)
    assert "まだ確定していません" not in text and rt.offices["sakata"].after_request not in text
    assert "状況が変わっています" in text and "「予約確認」と送る" in text


# -- headers, links, privacy ----------------------------------------------------------------------------

def _assert_secure(response):
    csp = response.headers["Content-Security-Policy"]
    assert "script-src" not in csp or "'unsafe-inline'" not in csp
    assert "default-src 'none'" in csp and "frame-ancestors 'self'" in csp
    assert response.headers["X-Frame-Options"] == "SAMEORIGIN"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["Cache-Control"] == "no-store"


def test_every_form_page_is_sent_with_security_headers(holding, client, rt):
    _, url = holding("sakata")
    page = Page.get(client, url)
    confirmation = page.submit(client, valid_answers(rt.offices["sakata"]))
    done = confirmation.submit(client)
    for response in (page.response, confirmation.response, done.response, client.get("/form/forged")):
        _assert_secure(response)
        assert "<script" not in response.get_data(as_text=True)
        assert " style=" not in response.get_data(as_text=True)


def test_back_to_line_when_the_basic_id_is_set(make_app):
    app = make_app(env={"LINE_BASIC_ID_SAKATA": "@madoguchi"})
    rt, client = app.extensions["madoguchi"], app.test_client()
    _, url = hold_directly(rt, "sakata")
    done = complete(client, url, valid_answers(rt.offices["sakata"]))
    link = re.search(r'<a class="button" href="([^"]+)">LINEに戻る</a>', done.html).group(1)
    assert link == "https://line.me/R/oaMessage/%40madoguchi/?%E4%BA%88%E7%B4%84%E7%A2%BA%E8%AA%8D"


def test_without_a_basic_id_the_page_says_to_go_back(holding, client, rt):
    _, url = holding("sakata")
    done = complete(client, url, valid_answers(rt.offices["sakata"]))
    assert "LINEに戻る" not in done.html and "LINEのトーク画面にお戻りください" in done.html


def test_details_are_encrypted_and_never_reach_line_or_the_logs(chatting, client, rt, fake_line, caplog):
    caplog.set_level(logging.DEBUG)
    user, url = chatting("otaru")
    answers = {**valid_answers(rt.offices["otaru"]), "name": "鵺野 鳴介", "seeker_number": "98765-4321",
               "phone": "080-9999-0000", "consultation": "鵺についての相談"}
    complete(client, url, answers)
    user.says("予約確認")
    [booking] = bookings(rt)
    assert booking.status == "requested" and booking.receipt_pending is False
    stored = for_config(rt.config).decrypt(booking.details)
    assert stored["name"] == "鵺野 鳴介" and stored["seeker_number"] == "98765-4321"
    assert stored["birth_date"] == "1990-04-01"
    assert booking.seeker_hash == for_config(rt.config).seeker_hash("98765-4321")
    secrets_typed = ("鵺野", "鵺", "98765", "4321", "080-9999", "1990-04-01", "平成2年", "やまだ")
    chat = text_of(fake_line.messages_to(user.user_id))
    for value in secrets_typed:
        assert value.encode() not in bytes(booking.details)
        assert value not in chat, value
        assert value not in caplog.text, value
    assert booking.reference in chat


def test_the_conversation_is_idle_after_completion(chatting, client, rt):
    user, url = chatting("sakata")
    complete(client, url, valid_answers(rt.offices["sakata"]))
    with rt.db.reading() as s:
        conv = s.scalar(select(Conversation).where(Conversation.line_user_id == user.user_id))
        assert conv.state == "idle" and conv.context == {}
        assert s.scalar(select(func.count()).select_from(SlotHold)) == 0


@pytest.mark.parametrize("language", ["ja", "en"])
def test_a_job_seeker_number_in_use_on_another_account_gets_the_answer_any_number_gets(make_app, language):
    """Someone typing other people's job seeker numbers learns nothing from the answer: a number with an open
    request from another LINE account, or of a person the office refused online counselling on another account
    (第10条), gets the completion page any number gets; staff see the conflict when deciding (test_requests)."""
    app = make_app(env={"LINE_BASIC_ID_OTARU": "@madoguchi"})
    rt, client = app.extensions["madoguchi"], app.test_client()
    answers = valid_answers(rt.offices["otaru"])
    owner, first = hold_directly(rt, "otaru", slot_index=0)
    assert REFERENCE_LINE.search(complete(client, first, answers).html)

    def sent(number: str, slot_index: int) -> str:
        conversation_id, url = hold_directly(rt, "otaru", slot_index=slot_index)
        with rt.db.transaction() as s:
            s.get(Conversation, conversation_id).language = language
        done = Page.get(client, url).submit(client, {**answers, "seeker_number": number}).submit(client)
        assert done.status == 200 and REFERENCE_LINE.search(done.html), done.html
        return re.sub(r"[A-HJ-NP-Z2-9]{4}-[A-HJ-NP-Z2-9]{4}|\d", "", visible_text(done.html))

    fresh = sent("97531-86420", 1)
    assert sent(answers["seeker_number"], 2) == fresh                          # open on another account
    with rt.db.transaction() as s:
        s.get(Conversation, owner).booking_blocked = True                      # that account refused online
    assert sent(answers["seeker_number"], 3) == fresh
    assert len(bookings(rt)) == 4


def test_a_page_that_asks_to_choose_again_goes_back_to_line_with_予約_typed(make_app):
    """Expired or taken: choosing a slot is next, and 予約 offers the slots (予約確認 would list nothing)."""
    app = make_app(env={"LINE_BASIC_ID_SAKATA": "@madoguchi"})
    rt, client = app.extensions["madoguchi"], app.test_client()
    book_again = "https://line.me/R/oaMessage/%40madoguchi/?%E4%BA%88%E7%B4%84"
    _, url = hold_directly(rt, "sakata")
    page = Page.get(client, url)
    rt.clock.advance(minutes=rt.offices["sakata"].booking.hold_minutes + 1)
    hold_directly(rt, "sakata")                                                  # someone else takes the slot
    taken = page.submit(client, valid_answers(rt.offices["sakata"]))
    _, url = hold_directly(rt, "sakata", slot_index=1)
    rt.clock.advance(minutes=rt.offices["sakata"].booking.hold_minutes + 1)
    expired = Page.get(client, url)
    assert (taken.status, expired.status) == (409, 410)
    for late in (taken, expired):
        link = re.search(r'<a class="button" href="([^"]+)">LINEに戻る</a>', late.html).group(1)
        assert link == book_again
