"""Hello Work Otaru's intake, walked through signed webhooks: consent (with Zoom's terms), 5 questions
(one combined question on the topics not handled online), 6 checklist items, slots.

Checked against the seed: the notice 「オンライン職業相談のお知らせ」 and 小樽公共職業安定所オンライン職業相談利用規約
(令和5年10月1日施行) 第2条-第4条, 第5条 (records), 第6条 (personal data), 第10条 (room, device, costs).
"""
from __future__ import annotations

import logging

import pytest
from sqlalchemy import inspect, select

from bot.models import Base
from tests.intake_walk import CONSENT_HEAD, HOW_TO_CONSENT, NO, UNSURE, YES, Chat, joined

OFFICE = "otaru"
QUESTIONS = ["registered", "topic", "device_zoom", "continuing", "need"]
CHECKLIST = ["zoom_ready", "os_supported", "firewall", "software_updated", "no_free_wifi", "private_room"]
TOPIC = QUESTIONS.index("topic")
NOT_HANDLED = ["新規学卒者の相談", "障がい者の相談", "職業訓練の相談"]
ONLINE_COUNSELLING_LINE = ["41#", "0134-32-8689"]
ZOOM_TERMS_URL = "https://www.zoom.com/ja/trust/terms/"

SUMMARY_MUST_SAY = {
    "free of charge, costs are the user's": ["無料", "通信料", "負担"],
    "mind metered plans": ["従量制"],
    "30 minutes, no extension": ["30分", "延長はできません"],
    "no recording": ["録画・録音"],
    "a private room": ["個室"],
    "interpreter or caregiver told in advance": ["通訳", "介助者", "予め"],
    "device rules": ["OS", "パッチ", "ファイアウォール", "ブラウザ"],
    "no free Wi-Fi": ["フリーWi-Fi"],
    "Zoom, no account, its terms": ["Zoom", "アカウント登録は不要", "ZOOM サービス規約"],
    "no staff nomination, possible count limit": ["指名はできません", "利用回数に制限"],
    "documents by e-mail": ["応募書類", "s-otaru.sm@hkdrdk.go.jp"],
    "cancellation by phone or e-mail, same day by phone": ["電話またはメール", "当日のキャンセルは電話のみ"],
    "10-minute no-show rule": ["10分", "キャンセルとみなし"],
    "usage records kept": ["記録"],
    "refused for abuse or non-job purposes": ["脅迫や暴言", "就職目的以外"],
    "personal data: law and who keeps it": ["個人情報", "職業安定法", "ハローワーク小樽が管理"],
}


@pytest.fixture
def chat(otaru_user, fake_line, rt) -> Chat:
    return Chat(otaru_user, fake_line, rt)


def test_the_office_profile_has_the_steps_this_file_walks(rt):
    office = rt.offices[OFFICE]
    assert [q.id for q in office.eligibility] == QUESTIONS
    assert [c.id for c in office.checklist] == CHECKLIST


def test_consent_summary_names_otaru_specifics_and_zoom_terms(chat, rt):
    [consent] = chat.say("予約")
    for clause, words in SUMMARY_MUST_SAY.items():
        for word in words:
            assert word in consent, f"the summary does not tell: {clause} ({word})"
    assert f"{rt.config.public_base_url}/terms/otaru" in consent and "2023-10-01" in consent
    assert "「ZOOM サービス規約」" in consent
    assert ZOOM_TERMS_URL not in consent          # Otaru prints no address: shown once the office confirms one
    assert HOW_TO_CONSENT in consent
    assert chat.buttons() == ["同意する", "同意しない"]


def test_consent_by_button_and_by_words(chat, otaru_user, user_factory, fake_line, rt):
    chat.say("予約")
    chat.tap("同意する")
    other = Chat(user_factory(OFFICE), fake_line, rt)
    other.say("予約")
    other.say("同意する")
    assert [(c.office_id, c.version, c.method) for c in chat.consents() + other.consents()] == [
        ("otaru", "2023-10-01", "button"), ("otaru", "2023-10-01", "text")]


@pytest.mark.parametrize("typed", ["1", "ok", "はい"])
def test_typed_1_ok_or_hai_do_not_consent(chat, typed):
    chat.say("予約")
    out = chat.say(typed)
    assert chat.consents() == [] and chat.conversation().state == "awaiting_consent"
    assert HOW_TO_CONSENT in joined(out)


def test_consent_at_sakata_does_not_count_at_otaru(sakata_user, chat, fake_line, rt):
    sakata = Chat(sakata_user, fake_line, rt)
    sakata.start_and_consent()
    chat.user.user_id = sakata_user.user_id          # the same LINE user (ids differ per channel in reality)
    assert CONSENT_HEAD in joined(chat.say("予約"))


def test_declining_shows_only_confirmed_contacts(chat, rt):
    chat.say("予約")
    text = joined(chat.tap("同意しない"))
    office = rt.offices[OFFICE]
    assert "オンライン職業相談はご利用いただけません" in text
    assert office.phone.value in text and "41#" in text                 # confirmed, with how to dial
    assert office.email.value in text and "応募書類" in text            # confirmed, with what it is for
    assert "受付時間" not in text                                        # hours: not given, not shown
    assert chat.conversation().state == "idle"


def test_happy_path_reaches_the_slot_list(chat, rt):
    office = rt.offices[OFFICE]
    chat.start_and_consent()
    for number, question in enumerate(office.eligibility, start=1):
        assert f"【確認 {number}/5】" in chat.last_message()["text"]
        chat.tap(chat.passing_label(question))
    for number, _item in enumerate(office.checklist, start=1):
        assert f"【端末・環境の確認 {number}/6】" in chat.last_message()["text"]
        out = chat.tap(YES)
    assert "12/2(水) 10:00" in out[-1]       # Tuesday 10:00 now: booking closes the previous business day
    assert "12/1(火)" not in out[-1]
    assert chat.conversation().state == "awaiting_slot"


def test_the_topic_question_is_one_combined_question(chat):
    out = chat.walk_to("eligibility", TOPIC)
    for topic in NOT_HANDLED:
        assert topic in out[-1]
    assert "お答えいただく必要はありません" in out[-1]
    assert chat.buttons() == [YES, NO, UNSURE]


def _rows(rt) -> dict[str, list[tuple]]:
    """Every table's rows, except the outbox (the reply itself) and the dedupe table."""
    skipped = {"outbox", "processed_events"}
    present = set(inspect(rt.db.engine).get_table_names())
    with rt.db.reading() as s:
        return {table.name: [tuple(row) for row in s.execute(select(table)).all()]
                for table in Base.metadata.sorted_tables if table.name in present - skipped}


@pytest.mark.parametrize("answer", [YES, UNSURE])
def test_a_not_handled_topic_names_the_windows_and_records_nothing(chat, rt, answer, caplog):
    chat.walk_to("eligibility", TOPIC)
    before = _rows(rt)
    conv_before = chat.conversation()
    with caplog.at_level(logging.DEBUG):
        out = chat.tap(answer)
    text = joined(out)
    for topic in NOT_HANDLED:
        assert f"{topic}: ハローワーク小樽" in text
    for number in ONLINE_COUNSELLING_LINE:                 # 41# is online counselling's: never for these
        assert number not in text
    assert "もう一度「予約」と送ってください" in text
    # Nothing about the answer is kept: the conversation is back at idle with an empty context and
    # no other table changed.
    after = _rows(rt)
    conv = chat.conversation()
    assert (conv.state, conv.context) == ("idle", {})
    assert conv_before.context.keys() <= {"i", "consented_in_flow"}
    assert {k: v for k, v in after.items() if k != "conversations"} == \
        {k: v for k, v in before.items() if k != "conversations"}
    assert "topic" not in caplog.text and "v=yes" not in caplog.text and "新規学卒" not in caplog.text


def test_no_at_the_topic_question_passes_and_is_not_stored(chat):
    chat.walk_to("eligibility", TOPIC)
    chat.tap(NO)
    conv = chat.conversation()
    assert conv.state == "awaiting_eligibility" and conv.context["i"] == TOPIC + 1
    assert set(conv.context) <= {"i", "consented_in_flow"}


@pytest.mark.parametrize("answer", [NO, UNSURE])
def test_every_ineligible_and_unsure_answer_explains_kindly_and_ends(chat, rt, answer):
    for index, question in enumerate(rt.offices[OFFICE].eligibility):
        if index == TOPIC:
            continue
        chat.walk_to("eligibility", index)
        text = joined(chat.tap(answer))
        expected = question.on_unsure if answer == UNSURE else question.on_fail
        assert expected in text, question.id
        assert "ハローワーク小樽の窓口" in text and "0134-32-8689" in text   # other routes and the contact
        assert "もう一度「予約」と送ってください" in text
        conv = chat.conversation()
        assert (conv.state, conv.context) == ("idle", {}), question.id


def test_each_checklist_no_says_what_to_fix_and_booking_resumes_right_there(chat, rt):
    chat.walk_to("checklist", 0)
    for index, item in enumerate(rt.offices[OFFICE].checklist):
        out = chat.tap(NO)
        assert item.fix in out[0] and "この項目から続けられます" in out[0], item.id
        assert chat.position() == ("awaiting_checklist", index)
        out = chat.say("予約")
        assert f"【端末・環境の確認 {index + 1}/6】" in out[-1] and item.text in out[-1]
        chat.tap(YES)
    assert chat.conversation().state == "awaiting_slot"


def test_the_checklist_asks_what_otaru_documents_say_and_nothing_of_sakatas(rt):
    texts = "\n".join(item.text for item in rt.offices[OFFICE].checklist)
    for words in ["Zoom", "アカウント登録は不要", "通信環境", "OS", "パッチ", "パーソナルファイアウォール",
                  "ブラウザやソフトウェア", "フリーWi-Fi", "個室"]:
        assert words in texts
    for sakata_only in ["ファイル共有ソフト", "ウイルス対策ソフト", "パターンファイル"]:
        assert sakata_only not in texts
