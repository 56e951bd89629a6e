"""Hello Work Sakata's intake, walked through signed webhooks: consent, 5 questions, 9 checklist items, slots.

Checked against the seed (ハローワーク酒田オンライン職業相談利用規約, 令和5年11月1日改訂): 第2条 (who may use
it), 第3条 (cost), 第5条 and 第12条 (device and room), 第6条 (30 minutes, cancellation, 10 minutes), 第7条
(records), 第8条 (personal data), 第12条(1) (refusal).
"""
from __future__ import annotations

import shutil
from datetime import datetime

import pytest

from bot.clock import TOKYO
from bot.config import DEFAULT_OFFICES_DIR
from tests.conftest import DEFAULT_NOW
from tests.intake_walk import (CONSENT_HEAD, HOW_TO_CONSENT, NO, UNSURE, YES, Chat, closing_clauses, joined,
                               postback_fields)
from tests.lineuser import LineUser

OFFICE = "sakata"
QUESTIONS = ["registered", "category", "mypage", "device_app", "continuing"]
CHECKLIST = ["secure_device", "safe_connection", "os_supported", "firewall", "no_file_sharing", "antivirus",
             "app_ready", "software_updated", "private_room"]

# 第2条(1) ①-⑤, in the chat's words.
CATEGORIES = ["大学等", "UIJターン", "障害者手帳", "日本海総合病院", "マザーズコーナー"]

# What the 要約 must tell (issue 3), each as words that must appear in it.
SUMMARY_MUST_SAY = {
    "free of charge": ["無料"],
    "communication costs are the user's": ["通信料", "負担"],
    "mind metered plans": ["従量制"],
    "about 30 minutes": ["30分程度"],
    "Mondays at 14:00, 15:00, 16:00, booked 3 days before (第6条(1))": [
        "毎週月曜日", "14:00、15:00、16:00", "3日前までに予約が完了"],
    "no recording": ["録画・録音", "禁止"],
    "a private room": ["個室"],
    "interpreter or caregiver told in advance": ["通訳", "介助者", "予め"],
    "device: safe, antivirus, OS, firewall, file sharing, no free connection": [
        "ウイルス感染", "ウイルス対策ソフト", "OS", "ファイアウォール", "ファイル共有ソフト",
        "無料のインターネット接続サービス"],
    "cancellation by phone": ["キャンセルは電話"],
    "10-minute no-show rule": ["10分", "キャンセルとみなし", "お断りする場合"],
    "usage records kept": ["記録"],
    "refused for abuse or non-job purposes": ["脅迫や暴言", "就職目的以外", "中止またはお断り"],
    "the app ready, the connection checked, software up to date, nothing unneeded running (第12条(4), 第5条(5))": [
        "アプリの準備と通信の確認", "ブラウザやソフトウェアの更新", "不要なソフトを起動しない"],
    "personal data: law and who keeps it": ["個人情報", "職業安定法", "ハローワーク酒田が管理"],
    **closing_clauses("山形地方裁判所"),
}


@pytest.fixture
def chat(sakata_user, fake_line, rt) -> Chat:
    return Chat(sakata_user, fake_line, rt)


def test_the_office_profile_has_the_steps_this_file_walks(rt):
    office = rt.offices[OFFICE]
    assert [q.id for q in office.eligibility] == QUESTIONS
    assert [c.id for c in office.checklist] == CHECKLIST


# -- consent ------------------------------------------------------------------------------------

def test_booking_starts_with_the_consent_summary_link_and_two_buttons(chat, rt):
    out = chat.say("予約")
    assert len(out) == 1
    consent = out[0]
    assert CONSENT_HEAD in consent and "要約です" in consent
    for clause, words in SUMMARY_MUST_SAY.items():
        for word in words:
            assert word in consent, f"the summary does not tell: {clause} ({word})"
    assert f"{rt.config.public_base_url}/terms/sakata/2023-11-01\n" in consent   # the version asked for
    assert HOW_TO_CONSENT in consent
    assert chat.buttons() == ["同意する", "同意しない"]
    assert chat.conversation().state == "awaiting_consent"


def test_consent_by_button_is_recorded_with_office_version_time_event_and_method(chat):
    chat.say("予約")
    out = chat.tap("同意する")
    event_id = chat.user.last_event["webhookEventId"]
    assert "同意いただきありがとうございます" in out[0]
    [consent] = chat.consents()
    assert (consent.office_id, consent.version, consent.method) == ("sakata", "2023-11-01", "button")
    assert consent.webhook_event_id == event_id
    assert consent.consented_at == DEFAULT_NOW.astimezone(TOKYO)
    assert chat.position() == ("awaiting_eligibility", 0)


@pytest.mark.parametrize("words", ["同意する", "同意する。", "　同意する "])
def test_consent_by_the_exact_words_is_recorded_as_text(chat, words):
    chat.say("予約")
    chat.say(words)
    [consent] = chat.consents()
    assert consent.method == "text"
    assert consent.webhook_event_id == chat.user.last_event["webhookEventId"]


@pytest.mark.parametrize("typed", ["1", "１", "ok", "はい", "yes", "同意します"])
def test_anything_else_typed_at_consent_does_not_consent_and_says_how_to(chat, typed):
    chat.say("予約")
    out = chat.say(typed)
    assert chat.consents() == []
    assert chat.conversation().state == "awaiting_consent"
    text = joined(out)
    assert "番号や「はい」" in text and HOW_TO_CONSENT in text
    # The re-ask is short (link and buttons), not the whole summary again.
    assert CONSENT_HEAD not in text and "/terms/sakata" in text
    assert chat.buttons() == ["同意する", "同意しない"]


def test_two_at_consent_does_not_decline_either(chat):
    chat.say("予約")
    chat.say("2")
    assert chat.conversation().state == "awaiting_consent"


def test_a_user_who_consented_to_the_current_version_is_not_asked_again(chat):
    chat.start_and_consent()
    chat.say("中止")
    out = chat.say("予約")
    assert CONSENT_HEAD not in joined(out)
    assert "【確認 1/5】" in out[-1]
    assert len(chat.consents()) == 1


def test_agreeing_again_after_going_back_keeps_one_consent_record(chat):
    chat.start_and_consent()
    out = chat.say("戻る")
    assert CONSENT_HEAD in joined(out)
    chat.tap("同意する")
    assert len(chat.consents()) == 1
    assert chat.position() == ("awaiting_eligibility", 0)


def test_declining_ends_kindly_and_shows_no_contact_sakata_has_not_confirmed(chat):
    chat.say("予約")
    out = chat.tap("同意しない")
    text = joined(out)
    assert "オンライン職業相談はご利用いただけません" in text
    assert "窓口" in text and "「予約」" in text
    # Sakata's documents give no phone, e-mail or hours: no contact block at all.
    assert "連絡先" not in text and "電話:" not in text and "メール:" not in text
    assert chat.consents() == []
    conv = chat.conversation()
    assert (conv.state, conv.context) == ("idle", {})


def test_after_declining_booking_asks_for_consent_again(chat):
    chat.say("予約")
    chat.tap("同意しない")
    assert CONSENT_HEAD in joined(chat.say("予約"))


# -- eligibility ----------------------------------------------------------------------------------

def test_happy_path_reaches_the_slot_list(chat, rt):
    office = rt.offices[OFFICE]
    chat.start_and_consent()
    for number, question in enumerate(office.eligibility, start=1):
        asked = chat.last_message()["text"]
        assert f"【確認 {number}/5】" in asked and question.text in asked
        assert chat.buttons() == [YES, NO, UNSURE]
        out = chat.tap(YES)
    assert "条件を満たしています" in out[0] and "全9項目" in out[0]
    for number, item in enumerate(office.checklist, start=1):
        asked = chat.last_message()["text"]
        assert f"【端末・環境の確認 {number}/9】" in asked and item.text in asked
        assert chat.buttons() == [YES, NO]
        out = chat.tap(YES)
    assert "確認は以上です" in out[0]
    assert "12/7(月) 14:00" in out[-1] and "12/7(月) 16:00" in out[-1]
    assert chat.buttons()[:3] == ["12/7(月) 14:00", "12/7(月) 15:00", "12/7(月) 16:00"]
    assert chat.conversation().state == "awaiting_slot"


def test_the_category_question_lists_all_five_and_never_asks_which(chat):
    out = chat.walk_to("eligibility", 1)
    question = out[-1]
    for category in CATEGORIES:
        assert category in question
    assert "お答えいただく必要はありません" in question
    # The five are bullets, not numbers: a typed number answers はい/いいえ/わからない only.
    assert "1. 大学" not in question and "・大学等" in question
    assert "1. はい　2. いいえ　3. わからない" in question
    assert chat.buttons() == [YES, NO, UNSURE]
    assert all(postback_fields(chat.button_data(b))["v"] in ("yes", "no", "unsure") for b in chat.buttons())


def test_a_number_beyond_the_answers_at_the_category_question_chooses_nothing(chat):
    chat.walk_to("eligibility", 1)
    out = chat.say("4")
    assert "読み取れませんでした" in out[0]
    assert chat.position() == ("awaiting_eligibility", 1)


def test_the_category_answer_is_never_stored(chat):
    chat.walk_to("eligibility", 1)
    chat.tap(YES)
    context = chat.conversation().context
    assert set(context) <= {"i", "consented_in_flow", "terms"}  # "terms": the version consented to
    assert not {"yes", "no", "unsure"} & {str(v) for v in context.values()}


@pytest.mark.parametrize("answer", [NO, UNSURE])
def test_every_ineligible_and_unsure_answer_explains_kindly_and_ends(chat, rt, answer):
    for index, question in enumerate(rt.offices[OFFICE].eligibility):
        chat.walk_to("eligibility", index)
        text = joined(chat.tap(answer))
        expected = question.on_unsure if answer == UNSURE else question.on_fail
        assert expected and expected in text, question.id
        assert "ハローワーク酒田の窓口" in text                    # the other route
        assert "もう一度「予約」と送ってください" in text
        assert "連絡先" not in text                                # nothing confirmed to show
        conv = chat.conversation()
        assert (conv.state, conv.context) == ("idle", {}), question.id


def test_after_an_ineligible_answer_booking_starts_at_the_first_question(chat):
    chat.walk_to("eligibility", 2)
    chat.tap(NO)
    out = chat.say("予約")
    assert CONSENT_HEAD not in joined(out) and "【確認 1/5】" in out[-1]


# -- checklist ------------------------------------------------------------------------------------

def test_each_checklist_no_says_what_to_fix_and_booking_resumes_right_there(chat, rt):
    chat.walk_to("checklist", 0)
    for index, item in enumerate(rt.offices[OFFICE].checklist):
        out = chat.tap(NO)
        assert item.fix in out[0], item.id
        assert "「予約」と送ってください" in out[0] and "この項目から続けられます" in out[0]
        assert chat.position() == ("awaiting_checklist", index)
        out = chat.say("予約")
        assert f"【端末・環境の確認 {index + 1}/9】" in out[-1] and item.text in out[-1]
        chat.tap(YES)
    assert chat.conversation().state == "awaiting_slot"


def test_the_checklist_asks_each_rule_of_articles_5_and_12(rt):
    texts = "\n".join(item.text for item in rt.offices[OFFICE].checklist)
    for words in ["ウイルス感染", "無料のインターネット接続サービス", "OS", "セキュリティ対策パッチ",
                  "パーソナルファイアウォール", "ファイル共有ソフト", "不要なソフト", "ウイルス対策ソフト（有償版相当",
                  "パターンファイル", "アプリケーションソフトを使える状態", "通信環境", "ブラウザやソフトウェア",
                  "個室"]:
        assert words in texts


def test_a_contact_to_be_confirmed_never_reaches_the_chat(tmp_path, make_app, fake_line):
    """Give Sakata's profile values marked unconfirmed: no path of the dialog may show them."""
    offices = tmp_path / "offices"
    shutil.copytree(DEFAULT_OFFICES_DIR, offices)
    path = offices / "sakata.yaml"
    text = path.read_text(encoding="utf-8")
    text = text.replace("""  phone:
    value: null""", """  phone:
    value: "0234-00-0000\"""").replace("""  email:
    value: null""", """  email:
    value: someone@example.jp""").replace("""  hours:
    value: null""", """  hours:
    value: 平日8時30分から""")
    path.write_text(text, encoding="utf-8")
    app = make_app(offices_dir=str(offices))
    rt = app.extensions["madoguchi"]
    assert rt.offices[OFFICE].phone.value == "0234-00-0000" and not rt.offices[OFFICE].phone.confirmed
    user = LineUser(app.test_client(), OFFICE, channel_secret=rt.config.channel_secret(OFFICE), fake=fake_line,
                    clock=rt.clock)
    chat = Chat(user, fake_line, rt)
    chat.say("予約")
    chat.say("ok")
    chat.tap("同意しない")                                 # declined
    chat.start_and_consent()
    chat.tap(NO)                                         # ineligible
    chat.walk_to("checklist", 0)
    for _ in range(4):
        chat.say("えっと")                                # misses: the office's contact is offered
    chat.say("ヘルプ")
    chat.sticker()
    everything = joined(chat.all_texts())
    assert "このトーク以外の方法" in everything and "利用規約に同意いただけない" in everything
    for value in ("0234-00-0000", "someone@example.jp", "平日8時30分から"):
        assert value not in everything


def test_a_week_of_three_slots_is_one_page_as_before(chat):
    """Three slots a week fit one page: the week's heading (Sakata's 「30分程度」), its list, 次の週 / 前の週 and no
    page count."""
    out = chat.walk_to("slots")
    assert out[-1] == ("12/7(月)〜12/13(日)の空いている枠です（1回30分程度）。\n"
                       "1. 12/7(月) 14:00\n2. 12/7(月) 15:00\n3. 12/7(月) 16:00\n\n"
                       "ボタンを押すか、番号または「12/7 14:00」のように日時を送ってください。")
    assert chat.buttons() == ["12/7(月) 14:00", "12/7(月) 15:00", "12/7(月) 16:00", "次の週"]
    assert {postback_fields(chat.button_data(label))["at"] for label in chat.buttons()} == {"awaiting_slot:0"}
    out = chat.tap("次の週")
    assert out[-1].startswith("12/14(月)〜12/20(日)の空いている枠です（1回30分程度）。")
    assert chat.buttons() == ["12/14(月) 14:00", "12/14(月) 15:00", "12/14(月) 16:00", "前の週", "次の週"]
    assert {postback_fields(chat.button_data(label))["at"] for label in chat.buttons()} == {"awaiting_slot:1"}
    out = chat.say("2")
    assert "12/14(月) 15:00" in out[-1] and chat.conversation().state == "awaiting_form"


@pytest.mark.parametrize("typed", ["15時", "１５時でお願いします", "15:00", "午後3時", "3時"])
def test_a_time_typed_alone_chooses_the_one_slot_of_the_week_shown_at_that_time(chat, typed):
    """Sakata's week is one Monday: a person who reads 「2. 12/7(月) 15:00」 and types 15時 means that slot."""
    chat.walk_to("slots")
    out = chat.say(typed)
    assert "12/7(月) 15:00" in out[-1] and "仮押さえ" in out[-1]
    assert chat.conversation().state == "awaiting_form"


@pytest.mark.parametrize("typed", ["14:30", "15時か16時", "15時は無理です", "090-1234-1500"])
def test_a_time_alone_that_names_no_single_slot_shown_chooses_nothing(chat, typed):
    chat.walk_to("slots")
    out = chat.say(typed)
    assert "仮押さえ" not in joined(out)
    assert chat.conversation().state == "awaiting_slot"


def test_a_time_alone_chooses_in_the_week_shown_after_turning_it(chat):
    chat.walk_to("slots")
    chat.tap("次の週")
    out = chat.say("14時")
    assert "12/14(月) 14:00" in out[-1] and chat.conversation().state == "awaiting_form"


def test_a_slot_past_its_deadline_is_answered_without_listing_the_same_slots_twice(chat, rt):
    """Friday 17:05: Monday's booking closed. The week shown next is the following Monday's three slots; the
    answer does not list them first as 近い日時の空き枠 as well (six lines where three say it, on a phone)."""
    rt.clock.freeze(datetime(2026, 12, 4, 16, 50, tzinfo=TOKYO))
    chat.walk_to("slots")
    monday = chat.button_data("12/7(月) 14:00")
    rt.clock.freeze(datetime(2026, 12, 4, 17, 5, tzinfo=TOKYO))
    out = chat.tap_data(monday)
    assert "受付期限を過ぎています" in out[0] and "近い日時の空き枠" not in joined(out)
    assert joined(out).count("12/14(月) 14:00") == 1 and "1. 12/14(月) 14:00" in out[-1]


def test_a_slot_just_taken_still_names_the_near_ones_the_list_below_does_not_show(chat, rt, user_factory,
                                                                                  fake_line):
    chat.walk_to("slots")
    seen = chat.button_data("12/7(月) 14:00")
    other = Chat(user_factory(OFFICE), fake_line, rt)
    other.walk_to("slots")
    other.tap("12/7(月) 14:00")
    out = chat.tap_data(seen)
    assert "埋まりました" in out[0]
    assert "近い日時の空き枠" in out[0] and "12/14(月) 14:00" in out[0]   # the next week's: not on this page
    assert "12/7(月) 15:00" not in out[0] and "1. 12/7(月) 15:00" in out[-1]


@pytest.mark.parametrize("typed", ["来週", "らいしゅう", "次週", "来週でお願いします"])
def test_next_week_typed_in_other_words_turns_to_it_as_the_button_does(chat, typed):
    chat.walk_to("slots")
    out = chat.say(typed)
    assert out[-1].startswith("12/14(月)〜12/20(日)の空いている枠です") and "読み取れません" not in joined(out)
    out = chat.say("先週")
    assert out[-1].startswith("12/7(月)〜12/13(日)の空いている枠です")
    out = chat.say("先週")                              # there is no week before the first: not understood
    assert "読み取れませんでした" in out[0] and chat.conversation().state == "awaiting_slot"
