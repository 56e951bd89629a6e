"""Hello Work Otaru's intake, walked through signed webhooks: consent (with Zoom's terms), 5 questions
(one combined question on the topics not handled online), 6 checklist items, slots.

Checked against the seed: the notice 「オンライン職業相談のお知らせ」 and 小樽公共職業安定所オンライン職業相談利用規約
(令和5年10月1日施行) 第2条-第4条, 第5条 (records), 第6条 (personal data), 第10条 (room, device, costs).
"""
from __future__ import annotations

import logging
import re
from datetime import date, datetime, time, timedelta

import pytest
from sqlalchemy import inspect, select

from bot.clock import TOKYO
from bot.models import Base, Conversation, OutboxMessage, SlotHold
from bot.services.slots import slot_label
from tests.intake_walk import (CONSENT_HEAD, HOW_TO_CONSENT, NO, UNSURE, YES, Chat, closing_clauses, joined,
                               postback_fields)

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
    "weekdays 10-12 and 13-16, booked by the day before (第4条(1))": [
        "平日", "10:00～12:00、13:00～16:00", "前日までに予約が完了"],
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
    **closing_clauses("札幌地方・家庭裁判所小樽支部"),
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
    assert f"{rt.config.public_base_url}/terms/otaru/2023-10-01\n" in consent
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
    assert conv_before.context.keys() <= {"i", "consented_in_flow", "terms"}  # "terms": the version consented to
    assert {k: v for k, v in after.items() if k != "conversations"} == \
        {k: v for k, v in before.items() if k != "conversations"}
    assert "topic" not in caplog.text and "v=yes" not in caplog.text and "新規学卒" not in caplog.text
    # The reply that named the windows went to LINE: the outbox keeps that a reply went, not what it said.
    with rt.db.reading() as s:
        sent = s.scalars(select(OutboxMessage).order_by(OutboxMessage.id.desc())).first()
    assert (sent.kind, sent.status, sent.payload) == ("reply", "sent", {"messages": []})


def test_no_at_the_topic_question_passes_and_is_not_stored(chat):
    chat.walk_to("eligibility", TOPIC)
    chat.tap(NO)
    conv = chat.conversation()
    assert conv.state == "awaiting_eligibility" and conv.context["i"] == TOPIC + 1
    assert set(conv.context) <= {"i", "consented_in_flow", "terms"}  # "terms": the version consented to


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


# -- the slot step, a week in pages: ten slots a weekday do not fit LINE's 13 buttons in one week ------------

SLOT_LABEL = re.compile(r"\d{1,2}/\d{1,2}\(.\) \d{2}:\d{2}")
FIRST_WEEK_DAYS = [date(2026, 12, d) for d in (2, 3, 4)]            # from Tuesday 12/1 10:00: Wednesday on
SECOND_WEEK_DAYS = [date(2026, 12, d) for d in (7, 8, 9, 10, 11)]


def md(day: date) -> str:
    return slot_label(datetime.combine(day, time(), tzinfo=TOKYO)).split()[0]     # 12/7(月)


def shown(chat) -> tuple[str, list[str], list[str]]:
    """The last message's first line, its slot buttons and its other buttons (checked against its list)."""
    text, buttons = chat.last_message()["text"], chat.buttons()
    slots = [label for label in buttons if SLOT_LABEL.fullmatch(label)]
    assert len(buttons) <= 13 and len(slots) <= 11
    assert [line for line in text.splitlines() if re.match(r"\d+\. ", line)] == \
        [f"{n}. {label}" for n, label in enumerate(slots, start=1)]
    return text.splitlines()[0], slots, buttons[len(slots):]


def heading(days: list[date], this_year: int = 2026) -> str:
    """A page's heading; a day in a year other than today's (the chat's clock: 2026) is written with its year."""
    first = f"{days[0].year}年{md(days[0])}" if days[0].year != this_year else md(days[0])
    last = f"{days[-1].year}年{md(days[-1])}" if days[-1].year != days[0].year else md(days[-1])
    named = first if len(days) == 1 else f"{first}〜{last}"
    return f"{named}の空いている枠です（1回30分）。"


def held_start(rt) -> datetime | None:
    with rt.db.reading() as s:
        return s.scalar(select(SlotHold.slot_start))


def test_every_free_slot_of_a_week_is_on_a_button_page_by_page(chat, rt):
    chat.walk_to("slots")
    starts = sorted(rt.offices[OFFICE].schedule.starts)
    expected = [slot_label(datetime.combine(d, t, tzinfo=TOKYO))
                for d in FIRST_WEEK_DAYS + SECOND_WEEK_DAYS for t in starts]
    seen, turns = [], []
    for day in FIRST_WEEK_DAYS + SECOND_WEEK_DAYS:           # one page a day: 10 slots each
        first_line, slots, others = shown(chat)
        assert first_line == heading([day]) and all(label.startswith(md(day)) for label in slots)
        seen += slots
        turns.append(others)
        chat.tap(others[-1])                                  # 次へ, or 次の週 on a week's last page
    assert seen == expected                                   # all 80, each once, in order
    assert turns == [["次へ"], ["前へ", "次へ"], ["前へ", "次の週"],
                     ["前の週", "次へ"], ["前へ", "次へ"], ["前へ", "次へ"], ["前へ", "次へ"], ["前へ", "次の週"]]
    assert shown(chat)[0] == heading([date(2026, 12, 14)])    # the third week's first page
    # Back page by page: across a week's start to the previous week's last page.
    for day in reversed(FIRST_WEEK_DAYS + SECOND_WEEK_DAYS):
        chat.tap(shown(chat)[2][0])                           # 前の週 on a week's first page, else 前へ
        assert shown(chat)[0] == heading([day])
    assert shown(chat)[2] == ["次へ"]                         # the first page of all: nothing before it


CLOSED_THIS_WEEK = "※この週のお休み: "


def test_a_week_with_a_closed_day_ahead_names_it_beside_its_slots(chat):
    """Otaru's weekday pages skip a holiday: each page of that week says which day is closed and why."""
    out = chat.walk_to("slots")
    assert CLOSED_THIS_WEEK not in out[-1]                     # 11/30-12/6: nothing closed
    for _ in range(4):
        chat.say("次の週")
    assert shown(chat)[0] == "12/28(月)〜2027年1/3(日)の空いている枠です（1回30分）。"   # Monday, then the year end
    assert f"{CLOSED_THIS_WEEK}12/29(火)〜1/1(金) 年末年始\n" in \
        chat.last_message()["text"]
    chat.say("次の週")
    chat.say("次の週")
    assert shown(chat)[0] == heading([date(2027, 1, 12)])     # 1/11 is 成人の日
    assert f"{CLOSED_THIS_WEEK}1/11(月) 成人の日\n" in chat.last_message()["text"]
    chat.tap("次へ")
    assert f"{CLOSED_THIS_WEEK}1/11(月) 成人の日\n" in chat.last_message()["text"]


def test_a_closed_day_already_past_is_not_named(chat, clock):
    clock.freeze(datetime(2027, 1, 12, 9, 0, tzinfo=TOKYO))   # the day after 成人の日
    out = chat.walk_to("slots")
    assert shown(chat)[0] == heading([date(2027, 1, 13)], this_year=2027)
    assert CLOSED_THIS_WEEK not in out[-1]


DEADLINE_PASSED = "※予約の受付期限を過ぎた日: "


@pytest.mark.parametrize("now, first_day, line", [
    (datetime(2026, 12, 2, 17, 30, tzinfo=TOKYO), date(2026, 12, 4), "12/3(木)（受付は12/2(水) 17:00まで）"),
    (datetime(2026, 12, 3, 17, 30, tzinfo=TOKYO), date(2026, 12, 7), "12/4(金)（受付は12/3(木) 17:00まで）"),
    (datetime(2026, 12, 2, 16, 30, tzinfo=TOKYO), date(2026, 12, 3), None),
])
def test_a_day_whose_booking_deadline_has_passed_is_named_beside_the_slots(chat, clock, now, first_day, line):
    """Otaru takes requests until 17:00 the business day before: after it, tomorrow is missing from the list,
    and the list says why (on Thursday evening, from next week's first page); before it, nothing is said."""
    clock.freeze(now)
    out = chat.walk_to("slots")
    assert shown(chat)[1][0].startswith(md(first_day))
    if line is None:
        assert DEADLINE_PASSED not in out[-1]
    else:
        assert f"{DEADLINE_PASSED}{line}\n" in out[-1]
        chat.tap(shown(chat)[2][-1])                               # 次へ, or 次の週
        assert DEADLINE_PASSED not in chat.last_message()["text"]   # the first page says it, once


def test_the_page_tells_which_part_of_the_week_it_is(chat):
    out = chat.walk_to("slots")
    assert "11/30(月)〜12/6(日)の週は、空いている枠を3回に分けてお見せしています。これは1回目です。" in out[-1]
    assert "「次へ」を押すと、ほかの枠をご覧いただけます。" in out[-1]
    out = chat.tap("次へ")
    assert "これは2回目です。" in out[-1] and "「前へ」「次へ」を押すと、ほかの枠" in out[-1]


@pytest.mark.parametrize("typed", ["3", "３"])
def test_a_typed_number_picks_from_the_page_shown(chat, rt, typed):
    chat.walk_to("slots")
    chat.tap("次へ")
    chat.tap("次へ")
    chat.tap("次の週")
    chat.tap("次へ")
    chat.tap("次へ")
    assert shown(chat)[0] == heading([date(2026, 12, 9)])
    out = chat.say(typed)
    assert "12/9(水) 11:00" in joined(out) and "仮押さえしました" in joined(out)
    assert held_start(rt) == datetime(2026, 12, 9, 11, 0, tzinfo=TOKYO)


def test_a_typed_date_and_time_on_another_page_is_chosen(chat, rt):
    chat.walk_to("slots")
    chat.tap("次へ")
    assert shown(chat)[0] == heading([date(2026, 12, 3)])
    out = chat.say("12/10 15:30")
    assert "12/10(木) 15:30" in joined(out) and "仮押さえしました" in joined(out)
    assert held_start(rt) == datetime(2026, 12, 10, 15, 30, tzinfo=TOKYO)


def test_typed_week_and_page_words_move_as_their_names_say(chat):
    chat.walk_to("slots")
    chat.say("次へ")
    assert shown(chat)[0] == heading([date(2026, 12, 3)])
    chat.say("次の週")                                         # not on this page's buttons: next week's start
    assert shown(chat)[0] == heading([date(2026, 12, 7)])
    chat.say("次へ")
    chat.say("次へ")
    assert shown(chat)[0] == heading([date(2026, 12, 9)])
    chat.say("前の週")                                         # the previous week from its first page
    assert shown(chat)[0] == heading([date(2026, 12, 2)])
    chat.say("前の週")                                         # nothing before the first week: not understood
    assert shown(chat)[0] == heading([date(2026, 12, 2)]) and chat.conversation().misses == 1


def test_a_button_from_another_page_is_stale(chat, rt):
    chat.walk_to("slots")
    old_slot, old_next = chat.button_data("12/2(水) 10:00"), chat.button_data("次へ")
    assert postback_fields(old_slot)["at"] == "awaiting_slot:0"
    chat.tap("次へ")
    assert postback_fields(chat.button_data("12/3(木) 10:00"))["at"] == "awaiting_slot:0:1"
    out = chat.tap_data(old_slot)
    assert "前の手順のもの" in out[0] and held_start(rt) is None
    assert shown(chat)[0] == heading([date(2026, 12, 3)])      # the page in force, asked again
    out = chat.tap_data(old_next)                               # not a second turn of the page
    assert "前の手順のもの" in out[0] and shown(chat)[0] == heading([date(2026, 12, 3)])
    chat.tap("12/3(木) 10:00")
    assert held_start(rt) == datetime(2026, 12, 3, 10, 0, tzinfo=TOKYO)


def test_a_day_partly_taken_shares_a_page_with_the_next(chat, rt, client):
    """Whole days per page, as many as fit: Wednesday with two free slots and Thursday's ten do not fit
    eleven buttons, Thursday and Friday neither; Wednesday with one free slot and Thursday do."""
    office = rt.offices[OFFICE]
    now = rt.clock.now()
    wednesday = [datetime.combine(date(2026, 12, 2), t, tzinfo=TOKYO) for t in sorted(office.schedule.starts)]
    with rt.db.transaction() as s:
        for n, start in enumerate(wednesday[:9]):
            conv = Conversation(office_id=OFFICE, line_user_id=f"U{n:032x}", state="awaiting_form",
                                context={}, created_at=now)
            s.add(conv)
            s.flush()
            s.add(SlotHold(office_id=OFFICE, conversation_id=conv.id, slot_start=start,
                           expires_at=now + timedelta(hours=1), token_nonce=f"n{n}", created_at=now))
    chat.walk_to("slots")
    first_line, slots, _ = shown(chat)
    assert first_line == heading([date(2026, 12, 2), date(2026, 12, 3)])
    assert slots[0] == "12/2(水) 15:30" and len(slots) == 11
