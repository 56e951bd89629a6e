"""The words that work at every step, and the ways a choice can be made, at both offices (signed webhooks).

予約 (resume), 予約確認 (none yet), ヘルプ (explain the step, ask again), 戻る, 最初から, 中止; a choice by tap,
label or number, full-width and common variants; misses, stickers, stale and foreign buttons; 24 h idle.
"""
from __future__ import annotations

import re

import pytest

from bot.render import load_labels
from tests.intake_walk import CONSENT_HEAD, LABEL_AS_TYPED, NO, YES, Chat, joined, postback_fields

OFFICES = ["sakata", "otaru"]
# Words are words on any database: all of them on SQLite, a sample on PostgreSQL (all with `-m heavy`).
pytestmark = pytest.mark.pg_sample(every=4)
# (step, index): where a test stands before it speaks.
STEPS = [("consent", None), ("eligibility", 0), ("eligibility", 2), ("checklist", 0), ("checklist", 3),
         ("slot", None)]
STATE = {"consent": "awaiting_consent", "eligibility": "awaiting_eligibility", "checklist": "awaiting_checklist",
         "slot": "awaiting_slot"}
HELP_SAYS = {"consent": "利用規約への同意をお願いしています", "eligibility": "ご利用いただけるかを確認しています",
             "checklist": "端末と環境を1項目ずつ確認しています", "slot": "相談の日時を選んでいただいています"}


@pytest.fixture(params=OFFICES)
def chat(request, user_factory, fake_line, rt) -> Chat:
    return Chat(user_factory(request.param), fake_line, rt)


def stand_at(chat: Chat, step: str, index: int | None) -> None:
    if step == "consent":
        chat.say("予約")
    else:
        chat.walk_to(step, index or 0)
    assert chat.position()[0] == STATE[step]


def asking(chat: Chat, step: str, index: int | None) -> str:
    """The words that show the step is being asked (in the last message sent)."""
    office = chat.office
    if step == "consent":
        return "「同意する」と送って"
    if step == "eligibility":
        return f"【確認 {index + 1}/{len(office.eligibility)}】"
    if step == "checklist":
        return f"【端末・環境の確認 {index + 1}/{len(office.checklist)}】"
    return "空いている枠です"


def assert_asked_again(chat: Chat, out: list[str], step: str, index: int | None) -> None:
    assert asking(chat, step, index) in out[-1]
    assert chat.buttons(), "the step is asked again with its buttons"
    expected_index = index if step in ("eligibility", "checklist") else None
    state, at = chat.position()
    assert state == STATE[step]
    if expected_index is not None:
        assert at == expected_index


# -- the words at every step ---------------------------------------------------------------------

def every_step(chat: Chat):
    """Walk the whole dialog, yielding at each step (consent, every question, every item, the slots)."""
    chat.say("予約")
    yield "consent", None
    chat.tap("同意する")
    for index, question in enumerate(chat.office.eligibility):
        yield "eligibility", index
        chat.tap(chat.passing_label(question))
    for index in range(len(chat.office.checklist)):
        yield "checklist", index
        chat.tap(YES)
    yield "slot", None


def test_booking_word_resumes_the_step_in_progress_at_every_step(chat):
    for step, index in every_step(chat):
        out = chat.say("予約")
        assert_asked_again(chat, out, step, index)


def test_booking_status_says_none_yet_and_keeps_the_step_at_every_step(chat):
    for step, _index in every_step(chat):
        [text] = chat.say("予約確認")
        assert "お申込み中の予約はありません" in text, step
        assert "手続きの途中です" in text and "「予約」" in text
        assert "予約を始めるには" not in text
        assert chat.position()[0] == STATE[step]
        chat.say("予約")                        # the buttons of the step again, to walk on


def test_booking_status_when_idle(chat):
    [text] = chat.say("予約確認")
    assert "お申込み中の予約はありません" in text and "予約を始めるには「予約」" in text


def test_help_explains_the_step_and_asks_again_at_every_step(chat):
    for step, index in every_step(chat):
        out = chat.say("ヘルプ")
        assert HELP_SAYS[step] in out[0], step
        assert "戻る" in out[0] and "中止" in out[0]
        assert_asked_again(chat, out, step, index)


def test_a_bare_question_mark_asks_for_help_and_never_answers_a_question(chat):
    """A ？ typed at an eligibility question meant "what?" and was read as わからない, which ends the booking
    with the office's other routes. It is help now, at every step, in full width and half width."""
    for n, (step, index) in enumerate(every_step(chat)):
        out = chat.say("？" if n % 2 else "?")
        assert HELP_SAYS[step] in out[0], step
        assert_asked_again(chat, out, step, index)


def test_help_at_consent_repeats_the_link_not_the_whole_summary(chat, rt):
    chat.say("予約")
    out = chat.say("ヘルプ")
    assert CONSENT_HEAD not in joined(out)
    assert f"/terms/{chat.office.id}" in out[-1]
    assert chat.buttons() == ["同意する", "同意しない"]


@pytest.mark.parametrize("step,index,back_to,back_index", [
    ("eligibility", 0, "consent", None),      # consented a moment ago: back to the consent step
    ("eligibility", 2, "eligibility", 1),
    ("checklist", 0, "eligibility", -1),      # the last question
    ("checklist", 3, "checklist", 2),
    ("slot", None, "checklist", -1),          # the last item
])
def test_back_goes_one_step_back(chat, step, index, back_to, back_index):
    stand_at(chat, step, index)
    out = chat.say("戻る")
    if back_index == -1:
        back_index = len(chat.office.eligibility if back_to == "eligibility" else chat.office.checklist) - 1
    assert_asked_again(chat, out, back_to, back_index)


def test_back_at_consent_says_there_is_no_earlier_step(chat):
    chat.say("予約")
    out = chat.say("戻る")
    assert "これより前の手順はありません" in out[0]
    assert_asked_again(chat, out, "consent", None)


def test_back_at_the_first_question_of_a_later_booking_says_there_is_no_earlier_step(chat):
    chat.start_and_consent()
    chat.say("中止")
    chat.say("予約")                                   # consented before: starts at the first question
    out = chat.say("戻る")
    assert "これより前の手順はありません" in out[0]
    assert_asked_again(chat, out, "eligibility", 0)


def test_back_when_nothing_is_in_progress(chat):
    [text] = chat.say("戻る")
    assert "いま進めている予約はありません" in text


@pytest.mark.parametrize("step,index", STEPS)
def test_restart_begins_again_at_the_first_question(chat, step, index):
    stand_at(chat, step, index)
    out = chat.say("最初から")
    if step == "consent":
        assert CONSENT_HEAD in joined(out)
        assert chat.position()[0] == "awaiting_consent"
    else:
        assert_asked_again(chat, out, "eligibility", 0)


@pytest.mark.parametrize("step,index", STEPS)
def test_stop_then_book_starts_a_new_booking(chat, step, index):
    stand_at(chat, step, index)
    [text] = chat.say("中止")
    assert "中止しました" in text
    conv = chat.conversation()
    assert (conv.state, conv.context) == ("idle", {})
    out = chat.say("予約")
    if step == "consent":
        assert CONSENT_HEAD in joined(out)
    else:
        assert_asked_again(chat, out, "eligibility", 0)


def test_stop_when_nothing_is_in_progress(chat):
    [text] = chat.say("中止")
    assert "いま進めている予約はありません" in text


# -- making a choice ------------------------------------------------------------------------------

# Every variant is covered in test_router; here each kind once, through real webhooks.
@pytest.mark.parametrize("typed", ["はい", "1", "１", "ハイ", "yes", "ok", "はい。", "1\ufe0f\u20e3", "１番", "一",
                                   "一番", "はい👍", "👍", "はい〜"])
def test_yes_by_label_number_width_and_variant(chat, typed):
    chat.walk_to("eligibility", 0)
    chat.say(typed)
    assert chat.position() == ("awaiting_eligibility", 1)


def test_an_older_user_writing_sentences_is_understood(chat):
    """予約をお願いします starts, はい、お願いします answers, 同意します still does not consent."""
    out = chat.say("予約をお願いします")
    assert chat.position()[0] == "awaiting_consent" and "「同意する」と送って" in out[-1]
    chat.say("同意します")
    assert chat.position()[0] == "awaiting_consent" and chat.consents() == []
    chat.say("同意する")
    chat.say("はい、お願いします")
    assert chat.position() == ("awaiting_eligibility", 1)
    chat.say("はい、でもまだです")                                      # parts that disagree: asked again
    assert chat.position() == ("awaiting_eligibility", 1)
    chat.say({"yes": "はい、大丈夫です", "no": "いいえ、ありません"}[chat.office.eligibility[1].passing[0]])
    assert chat.position() == ("awaiting_eligibility", 2)
    chat.say("中止します")
    assert chat.position()[0] == "idle"
    assert "お申込み中の予約はありません" in joined(chat.say("予約\u3000確認"))   # a space inside a word


@pytest.mark.parametrize("typed", ["いいえ", "２", "no"])
def test_no_by_label_number_and_variant_at_a_checklist_item(chat, typed):
    chat.walk_to("checklist", 1)
    out = chat.say(typed)
    assert chat.office.checklist[1].fix in out[0]


@pytest.mark.parametrize("typed", ["わからない", "3", "分かりません"])
def test_unsure_by_label_number_and_variant(chat, typed):
    chat.walk_to("eligibility", 0)
    chat.say(typed)
    assert chat.conversation().state == "idle"


def test_three_at_a_checklist_item_chooses_nothing(chat):
    chat.walk_to("checklist", 0)
    out = chat.say("3")
    assert "読み取れませんでした" in out[0]
    assert chat.position() == ("awaiting_checklist", 0)


def test_text_that_matches_nothing_asks_again_and_offers_the_contact_after_three_misses(chat):
    chat.walk_to("eligibility", 1)
    for _ in range(2):
        out = chat.say("えーと、たぶん")
        assert "読み取れませんでした" in out[0] and "番号" in out[0]
        assert_asked_again(chat, out, "eligibility", 1)
    out = chat.say("えーと、たぶん")
    assert "このトーク以外の方法" in out[0]
    for route in chat.office.other_routes:
        assert route in out[0]
    if chat.office.phone.confirmed:
        assert chat.office.phone.value in out[0]
    else:
        assert "電話:" not in out[0]
    assert_asked_again(chat, out, "eligibility", 1)
    chat.tap(chat.passing_label(chat.office.eligibility[1]))   # a good answer resets the count
    out = chat.say("えーと")
    assert "読み取れませんでした" in out[0]


def test_a_mistyped_chat_word_is_suggested_at_every_step_and_nothing_is_done(chat):
    """ヘルブ for ヘルプ, 予約確任 for 予約確認: the answer names the word meant and how to send it, asks the step again
    and changes nothing (a guess is never acted on)."""
    for n, (step, index) in enumerate(every_step(chat)):
        typed, word = (("ヘルブ", "ヘルプ"), ("予約確任", "予約確認"), ("さいしよから", "最初から"))[n % 3]
        out = chat.say(typed)
        assert f"もしかして「{word}」でしょうか。その場合は、「{word}」と送ってください。" in out[0], step
        assert HELP_SAYS[step] not in joined(out) and "お申込み中の予約はありません" not in joined(out)
        assert_asked_again(chat, out, step, index)
    chat.say("中止")
    [idle] = chat.say("でーたさくじよ")
    assert "「予約確認」" in idle and "もしかして「データ削除」でしょうか" in idle
    assert chat.conversation().state == "idle"


def test_a_sticker_at_a_yes_no_step_gets_a_kind_answer_and_the_question_again(chat):
    chat.walk_to("checklist", 2)
    out = chat.sticker()
    assert "スタンプありがとうございます" in out[0]
    assert_asked_again(chat, out, "checklist", 2)


# A time alone that starts one slot of the list shown chooses it (test_intake_sakata.py); 20時 starts none.
@pytest.mark.parametrize("typed", ["12/7", "20時", "来週の月曜"])
def test_at_the_slot_step_a_date_or_time_alone_is_told_to_send_both(chat, typed):
    chat.walk_to("slot")
    out = chat.say(typed)
    assert "日付と時刻" in out[0]
    assert re.search(r"「\d{1,2}/\d{1,2} \d{2}:\d{2}」", out[0])   # the example: a slot on offer (bot/render.py)
    assert chat.conversation().state == "awaiting_slot"


def test_at_the_form_step_a_miss_or_a_photo_points_to_the_form_not_to_buttons_there_are_not(chat):
    """Waiting for the form there are no buttons and no numbered choices: the answer says where the details
    go, and how to choose another slot."""
    chat.walk_to("slot")
    chat.say("1")
    assert chat.conversation().state == "awaiting_form"
    out = chat.say("2")
    assert "ボタンを押すか" not in out[0] and "番号" not in out[0]
    assert "入力ページ" in out[0] and "「戻る」" in out[0]
    before = len(chat.all_texts())
    assert chat.user.sends_image().status_code == 200
    out = chat.all_texts()[before:]
    assert "文字またはボタンでお答えください" not in out[0] and "入力ページ" in out[0]
    assert chat.conversation().state == "awaiting_form"


def test_following_again_mid_booking_says_the_booking_waits_and_how_to_go_on(chat):
    """Blocked and unblocked in the middle: the greeting says a booking is part way through, and 予約 goes on
    where it stopped (nothing lost)."""
    chat.walk_to("checklist", 2)
    assert chat.user.unfollows().status_code == 200
    before = len(chat.all_texts())
    assert chat.user.follows(unblocked=True).status_code == 200
    greeting = joined(chat.all_texts()[before:])
    assert "予約の手続きが途中になっています" in greeting and "「最初から」" in greeting
    assert "予約を始めるには" not in greeting
    assert chat.position() == ("awaiting_checklist", 2)
    assert_asked_again(chat, chat.say("予約"), "checklist", 2)


def test_a_new_friend_is_not_told_of_a_booking_in_progress(chat):
    before = len(chat.all_texts())
    assert chat.user.follows().status_code == 200
    greeting = joined(chat.all_texts()[before:])
    assert "予約を始めるには「予約」と送ってください" in greeting and "手続きが途中" not in greeting


def test_delete_data_mid_booking_says_the_booking_in_progress_stops(chat):
    """データ削除 while a slot is held: the question says the booking in progress stops too; an older 削除する
    (asked when nothing was in progress) asks again instead of ending the booking unannounced."""
    chat.say("データ削除")
    old_yes = chat.button_data("削除する")
    chat.tap("削除しない")
    chat.walk_to("slot")
    chat.say("1")
    out = chat.tap_data(old_yes)
    assert "個人情報を削除しました" not in joined(out) and "予約の手続きも中止" in joined(out)
    assert chat.conversation().state == "awaiting_form"
    out = chat.tap("削除する")
    assert "個人情報を削除しました" in joined(out) and chat.conversation().state == "idle"


def test_a_button_from_an_earlier_step_is_answered_with_the_current_step_and_not_applied(chat):
    chat.walk_to("eligibility", 0)
    old_yes = chat.button_data(YES)
    chat.tap(YES)
    old_no = chat.button_data(NO)                    # question 2's いいえ
    chat.tap(chat.passing_label(chat.office.eligibility[1]))
    for data in (old_yes, old_no):
        out = chat.tap_data(data)
        assert "いまは使えないボタン" in out[0]
        assert_asked_again(chat, out, "eligibility", 2)


def test_a_consent_button_tapped_after_consenting_is_not_applied_again(chat):
    chat.say("予約")
    agree = chat.button_data("同意する")
    chat.tap_data(agree)
    out = chat.tap_data(agree)
    assert "いまは使えないボタン" in out[0]
    assert len(chat.consents()) == 1
    assert_asked_again(chat, out, "eligibility", 0)


def test_a_button_of_another_office_is_answered_with_the_current_step_and_not_applied(chat):
    chat.walk_to("eligibility", 0)
    here = postback_fields(chat.button_data(NO))
    other = "otaru" if chat.office.id == "sakata" else "sakata"
    forged = f"a=answer&at={here['at']}&o={other}&v=no"
    out = chat.tap_data(forged)
    assert "いまは使えないボタン" in out[0]
    assert_asked_again(chat, out, "eligibility", 0)


@pytest.mark.parametrize("data", ["a=hack&at=idle&o=sakata", "x" * 400])
def test_malformed_postbacks_are_treated_as_stale(chat, data):
    chat.walk_to("eligibility", 0)
    out = chat.tap_data(data)
    assert "いまは使えないボタン" in out[0]
    assert chat.position() == ("awaiting_eligibility", 0)


# -- a long pause ---------------------------------------------------------------------------------

@pytest.mark.parametrize("how", ["tap", "type"])
def test_after_a_day_booking_offers_to_continue_and_continuing_works(chat, rt, how):
    chat.walk_to("checklist", 2)
    rt.clock.advance(hours=24, minutes=1)
    out = chat.say("予約")
    assert "続きから" in out[-1] and chat.buttons() == ["続きから", "最初から"]
    out = chat.tap("続きから") if how == "tap" else chat.say("続きから")
    assert_asked_again(chat, out, "checklist", 2)


def test_a_double_tap_on_continue_is_an_old_button_not_a_misread_answer(chat, rt):
    """続きから tapped twice: the second tap is answered as a button already used, asks the step again, and
    is not counted as a miss (three would offer the phone)."""
    chat.walk_to("checklist", 2)
    rt.clock.advance(hours=25)
    chat.say("予約")
    data = chat.button_data("続きから")
    chat.tap_data(data)
    out = chat.tap_data(data)
    assert "読み取れませんでした" not in out[0] and "いまは使えないボタン" in out[0]
    assert_asked_again(chat, out, "checklist", 2)
    assert chat.conversation().misses == 0


@pytest.mark.parametrize("how", ["tap", "type"])
def test_after_a_day_starting_over_begins_at_the_first_question(chat, rt, how):
    chat.walk_to("checklist", 2)
    rt.clock.advance(hours=25)
    chat.say("予約")
    out = chat.tap("最初から") if how == "tap" else chat.say("最初から")
    assert_asked_again(chat, out, "eligibility", 0)


def test_within_a_day_booking_simply_resumes(chat, rt):
    chat.walk_to("checklist", 2)
    rt.clock.advance(hours=23, minutes=59)
    out = chat.say("予約")
    assert_asked_again(chat, out, "checklist", 2)


# -- a label typed as people type it, at every step, in every language -------------------------------------

def _typed_label(chat: Chat, action: str, value: str | None, n: int) -> str:
    """The label of the button in the last message that carries `action` (and `value`), typed the n-th way."""
    items = chat.last_message().get("quickReply", {}).get("items", [])
    for item in items:
        fields = postback_fields(item["action"]["data"])
        if fields["a"] == action and (value is None or fields.get("v") == value):
            return LABEL_AS_TYPED[n % len(LABEL_AS_TYPED)](item["action"]["label"])
    raise AssertionError(f"no {action} {value} button in {chat.buttons()}")


@pytest.mark.parametrize("language", ["ja", "en", "easy"])
def test_every_step_is_answered_by_its_label_typed_without_spaces_in_katakana_or_decorated(chat, language):
    """Each button of the walk (answers, the next week, a slot) typed without its spaces (この ままに する), with
    full-width ones, with 。 / ！ / an emoji after it, in katakana, or with an invisible space: each step goes on as a
    tap would. Consent is the exception: only the button or the exact words."""
    chat.say({"ja": "日本語", "en": "English", "easy": "やさしい日本語"}[language])
    chat.say("予約")
    chat.tap_data(chat.button_data(chat.buttons()[0]))            # 同意する: by its button
    n = 0
    for index, question in enumerate(chat.office.eligibility):
        chat.say(_typed_label(chat, "answer", question.passing[0], n := n + 1))
        assert chat.position()[0] != "awaiting_eligibility" or chat.position()[1] == index + 1, (language, index)
    for index in range(len(chat.office.checklist)):
        chat.say(_typed_label(chat, "answer", "yes", n := n + 1))
    assert chat.position()[0] == "awaiting_slot"
    week = chat.conversation().context.get("week", 0)
    chat.say(_typed_label(chat, "week", "next", n := n + 1))
    assert chat.conversation().context.get("week", 0) != week or chat.conversation().context.get("page")
    chat.say(_typed_label(chat, "slot", None, n := n + 1))
    assert chat.position()[0] == "awaiting_form", language


def _in_kanji(number: int) -> str:
    digits = "〇一二三四五六七八九"
    tens, ones = divmod(number, 10)
    return (f"{digits[tens] if tens > 1 else ''}十" if tens else "") + (digits[ones] if ones else "")


@pytest.mark.parametrize("how", ["number", "date"])
def test_a_slot_is_chosen_by_its_number_or_its_date_in_kanji_numerals(chat, how):
    """一番 (the first), or 十二月七日十四時 for 12/7 14:00: the slot shown is held and the form link sent."""
    chat.walk_to("slot")
    first = chat.buttons()[0]
    month, day, hour, minute = map(int, re.search(r"(\d+)/(\d+)\(.\) (\d+):(\d+)", first).groups())
    minutes = f"{_in_kanji(minute)}分" if minute else ""
    chat.say("一番" if how == "number" else f"{_in_kanji(month)}月{_in_kanji(day)}日{_in_kanji(hour)}時{minutes}")
    assert chat.position()[0] == "awaiting_form"
    assert first.split(" ")[0] in joined(chat.all_texts()[-2:])


@pytest.mark.parametrize("typed", ["1" * 5000, "\U00010a40"])
def test_a_number_too_long_to_read_or_a_digit_of_another_script_is_not_understood_and_loses_nothing(chat, typed):
    """LINE lets 5000 digits through (int() reads 4300 at most) and 𐩀 is a digit int() does not read: either
    broke the event. Now: not understood, the question again, the answers so far kept."""
    chat.walk_to("eligibility", 1)
    out = chat.say(typed)
    assert "読み取れませんでした" in out[0]
    assert_asked_again(chat, out, "eligibility", 1)


def test_agreeing_again_past_consent_says_what_the_words_are_for_and_is_no_miss(chat):
    """同意する typed again (at a question, an item, the slots) was "not understood", and the third time brought the
    other routes as for someone the chat fails. It is understood: said what it is for, the step asked again."""
    for n, (step, index) in enumerate(every_step(chat)):
        if step == "consent":
            continue
        for _ in range(3 if n == 1 else 1):
            out = chat.say("同意する")
            assert "「同意する」は、利用規約への同意をお願いしているときにだけ受け付けています" in out[0], step
            assert "読み取れませんでした" not in joined(out) and "このトーク以外の方法" not in joined(out)
            assert_asked_again(chat, out, step, index)
    assert chat.conversation().misses == 0


@pytest.mark.parametrize("step,index", [("consent", None), ("eligibility", 1), ("checklist", 0)])
def test_a_date_and_time_typed_before_the_slots_says_when_to_choose_and_is_no_miss(chat, step, index):
    """12/7 14:00 typed at a question was "not understood", and the third time brought the other routes. It is
    understood: the date and time are chosen at a later step; the step is asked again."""
    stand_at(chat, step, index)
    for typed in ("12/7 14:00", "明日の10時", "十二月七日十四時"):
        out = chat.say(typed)
        assert "ご希望の日時は、この後の手順で空いている枠の一覧からお選びいただけます" in out[0], typed
        assert "読み取れませんでした" not in joined(out) and "このトーク以外の方法" not in joined(out)
        assert_asked_again(chat, out, step, index)
    assert chat.conversation().misses == 0


LANGUAGE_WORD = {"ja": "日本語", "en": "English", "easy": "やさしい日本語"}


@pytest.mark.parametrize("shown_in, typed_in", [("en", "ja"), ("easy", "ja"), ("ja", "en"), ("ja", "easy")])
def test_the_page_moves_are_understood_in_the_words_of_another_language(chat, shown_in, typed_in):
    """A Japanese keyboard in English mode, or the words of the language used before: 次へ / 前へ (次の週 / 前の週)
    turn the page as its button does, and a week's move not on the buttons goes to that week as in its language."""
    shown_labels, typed_labels = load_labels(shown_in)["buttons"], load_labels(typed_in)["buttons"]
    chat.walk_to("slot")
    chat.say(LANGUAGE_WORD[shown_in])
    first = chat.buttons()[0]
    turn = next(k for k in ("next_page", "next_week") if shown_labels[k] in chat.buttons())
    chat.say(typed_labels[turn])
    assert chat.position()[0] == "awaiting_slot" and chat.buttons()[0] != first, (turn, chat.buttons())
    back = next(k for k in ("prev_page", "prev_week") if shown_labels[k] in chat.buttons())
    chat.say(typed_labels[back])
    assert chat.buttons()[0] == first and chat.conversation().misses == 0
    if shown_labels["next_week"] not in chat.buttons():   # Otaru's first page: 次の週 is not on a button
        chat.say(typed_labels["next_week"])
        assert chat.conversation().context.get("week") == 1 and chat.conversation().misses == 0
