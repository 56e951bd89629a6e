"""Languages: every message exists in standard Japanese, やさしい日本語 and English, and both offices' flows work
in each language through signed webhooks (switching at any time, the choice kept, the Japanese chat words
working in every mode); the form follows the conversation's language; phone routes come with the telephone
relay service; the やさしい日本語 texts are checked against the 2020 guideline as far as a machine can."""
from __future__ import annotations

import html
import re
import unicodedata
from datetime import date, datetime, timedelta
from typing import Any

import pytest
import yaml
from sqlalchemy import select, update

from bot.clock import TOKYO
from bot.config import DEFAULT_OFFICES_DIR
from bot.crypto import for_config
from bot.forms import form_texts
from bot.models import Booking, Conversation
from bot.notify import staff_statuses
from bot.offices import ProfileError, load_offices, read_office, untranslated
from bot.render import MAX_LABEL, TEMPLATES_DIR, Renderer, load_labels, load_vocabulary, local_date, text_of
from bot.services.calendar import holiday_name
from bot.services.slot_text import parse_slot_text
from bot.services.slots import slot_label
from bot.staff import decisions
from bot.staff.audit import Actor
from bot.worker import Worker
from dialogs.effects import Choice
from dialogs.router import normalise
from tests.formflow import Page, form_link, hold_directly, quick_reply_data, valid_answers, walk_to_slots
from tests.test_templates import AT, BASE_URL, booking, samples, week

LANGUAGES = ("ja", "easy", "en")
TRANSLATED = ("easy", "en")
OFFICES = load_offices(DEFAULT_OFFICES_DIR)
MESSAGES = TEMPLATES_DIR / "messages"
LABEL = "12/7(月) 14:00"                       # the fixed slot format, in every language
REFERENCE_LINE = "受付番号: ABCD-EFGH"
WRITTEN_OUT = {"ja": "2026年12月7日(月) 14:00", "easy": "2026年12月7日(月) 14:00", "en": "Mon 7 Dec 2026, 14:00"}
SWITCH = {"ja": "日本語", "easy": "やさしい日本語", "en": "English"}
# A phrase only the language's own language_switched / receipt templates say: tells which language answered.
SWITCHED = {"ja": "日本語に切り替えました", "easy": "やさしい 日本語で はなします", "en": "The bot now writes in English"}
RECEIVED = {"ja": "お申込みを受け付けました", "easy": "もうしこみを うけつけました", "en": "We have received your request"}
TYPED_YES = {"ja": "はい", "easy": "はい", "en": "yes"}
EMOJI = re.compile("[\U0001F000-\U0001FAFF\u2600-\u27BF\uFE0F]")


def files(language: str) -> set[str]:
    return {path.name for path in (MESSAGES / language).iterdir() if path.is_file()}


# -- every template in every language -----------------------------------------------------------------

@pytest.mark.parametrize("language", TRANSLATED)
def test_every_message_template_exists_in_every_language(language):
    missing = files("ja") - files(language)
    assert not missing, f"templates/messages/{language}/ lacks {sorted(missing)}"


def _keys(node: Any, prefix: str = "") -> set[str]:
    if not isinstance(node, dict):
        return {prefix}
    return {key for k, v in node.items() for key in _keys(v, f"{prefix}.{k}" if prefix else str(k))}


@pytest.mark.parametrize("language", TRANSLATED)
def test_labels_and_form_words_cover_the_japanese_ones(language):
    ja, other = load_labels("ja"), load_labels(language)
    assert set(ja["buttons"]) <= set(other["buttons"]) and set(ja["statuses"]) <= set(other["statuses"])
    assert all(len(label) <= MAX_LABEL for label in other["buttons"].values())
    assert len(other["weekdays"]) == 7 and other["date_format"] and other["time_format"]
    for name in ("fields", "errors", "page"):
        path = TEMPLATES_DIR / "forms" / f"{name}.{language}.yaml"
        assert path.is_file(), f"{path.name} is missing"
    missing = _keys(form_texts("ja")) - _keys(form_texts(language))
    assert not missing, f"the {language} form lacks {sorted(missing)}"
    reasons = lambda lang: yaml.safe_load((MESSAGES / lang / "decline_reasons.yaml").read_text("utf-8"))  # noqa: E731
    assert set(reasons(language)) == set(reasons("ja"))


def all_samples(office) -> dict[str, list[dict[str, Any]]]:
    """Every template's variable sets: the dialog's (tests/test_templates.py) and the pushes and staff cards."""
    out = samples(office)
    confirmed = booking("confirmed", "none")
    on_the_day = {**confirmed, "timing": {"session_day": True, "cancel_in_chat": False, "invitation_sent": False, "called": False}}   # confirmed late
    out.update({
        "outcome_confirmed": [dict(booking=confirmed), dict(booking=on_the_day)],
        "outcome_declined": [dict(booking=booking("declined", "none"), reason_text="ご希望の日時はお受けできません。")],
        "outcome_proposed": [dict(booking=booking("proposed", "proposal"), original=AT, accept_data="a=proposal&v=accept",
                                  decline_data="a=proposal&v=decline")],
        "outcome_cancelled_by_office": [dict(booking=booking("cancelled_by_office", "none"))],
        "outcome_cancelled_by_terms": [dict(booking=booking("cancelled_by_office", "none"))],
        "outcome_cancelled_for_user": [dict(booking=booking(s, "none")) for s in ("withdrawn", "cancelled")],
        "reminder_day_before": [dict(booking=confirmed)],
        "request_expired": [dict(booking=booking("expired", "none"))],
        "terms_updated": [dict(version="2027-04-01", summary=s, in_force=f) for s in ("", "第3条を改めました。")
                          for f in (False, True)],
        "flood": [{}],
        "trouble": [{}, {"what": "button"}, {"what": "follow"}],
        "slot_unavailable": out["slot_unavailable"] + [
            dict(reason=r, requested="2027-08-12T14:00:00+09:00", deadline=None, closure=None, holiday=None,
                 alternatives=[]) for r in ("past", "outside_window", "full")],
        "staff_card": [dict(kind=k, booking=booking(), dashboard_url=f"{BASE_URL}/staff/bookings/ABCD-EFGH",
                            buttons=[{"action": "confirm", "data": "x"}, {"action": "decline", "data": "y"}],
                            deadline=deadline, statuses=staff_statuses())
                       for k in ("new_request", "no_show_check", "unknown")
                       for deadline in (None, {"label": "12/4(金) 17:00", "passed": True})] + [
            dict(kind="new_request", booking=booking(), dashboard_url=f"{BASE_URL}/staff/bookings/ABCD-EFGH",
                 buttons=[{"action": "decline", "data": "y"}], deadline=None, statuses=staff_statuses(),
                 booked_elsewhere=True)],
        "staff_group_reply": [dict(outcome=o, action="confirm", reference="ABCD-EFGH", booking=booking(),
                                   dashboard_url=f"{BASE_URL}/staff", late=late, statuses=staff_statuses())
                              for o in ("done", "already", "not_found", "started", "too_early",
                                        "too_early_no_show", "failed", "same_number", "other")
                              for late in (None, {"label": "12/4(金) 17:00", "passed": True})] + [
            dict(outcome="kept", action="decline_no", reference="ABCD-EFGH", booking=booking(),
                 dashboard_url=f"{BASE_URL}/staff", statuses=staff_statuses())],
        "staff_rejoined": [dict(missed=m, waiting=w, since="12/4(金) 09:05", dashboard_url=f"{BASE_URL}/staff/queue")
                           for m, w in ((0, 0), (3, 2))],
        "staff_decline_confirm": [dict(booking=booking(), dashboard_url=f"{BASE_URL}/staff/bookings/ABCD-EFGH",
                                       reason_label="日程の都合がつかない", yes_data="x", no_data="y",
                                       statuses=staff_statuses())],
    })
    return out


def render(office, language: str, name: str, vars: dict[str, Any], choices=()) -> list[dict]:
    context = {"office": office, "public_base_url": BASE_URL, "terms_url": f"{BASE_URL}/terms/{office.id}", **vars}
    return Renderer({}).messages(language, name, context, choices)


def test_every_top_level_template_has_samples():
    tops = {name.split(".")[0] for name in files("ja") if not name.startswith("_") and name.endswith((".txt", ".json.j2"))}
    missing = tops - set(all_samples(OFFICES["sakata"]))
    assert not missing, f"add sample variables for {sorted(missing)}"


def _cases() -> list[tuple[str, str, str, int]]:
    return [(office_id, language, name, i) for office_id, office in OFFICES.items() for language in LANGUAGES
            for name, var_sets in all_samples(office).items() for i in range(len(var_sets))]


def flex_alt_texts(messages: list[dict]) -> list[str]:
    return [m.get("altText", "") for m in messages if m.get("type") in ("flex", "template")]


# A bullet that ends with a colon, followed by more bullets, reads as one flat list ("・how to cancel:" then
# "・call us"): what introduces a list is a heading of its own.
INTRODUCES_A_LIST_AS_AN_ITEM = re.compile(r"^(・|- ).*[:：]\n(・|- )", re.MULTILINE)


@pytest.mark.parametrize("office_id,language,name,i", _cases(), ids=lambda v: str(v))
def test_renders_in_every_language(office_id, language, name, i):
    office = OFFICES[office_id]
    choices = (Choice(label_key="yes", data="a=answer&at=x&o=sakata&v=yes"),)
    messages = render(office, language, name, all_samples(office)[name][i], choices)
    assert 1 <= len(messages) <= 5
    words = text_of(messages)
    assert words.strip() and "None" not in words and "{{" not in words and "{%" not in words
    assert not re.search(r"\n{3,}", words), "no runs of blank lines"
    assert not INTRODUCES_A_LIST_AS_AN_ITEM.search(words), "a list's lead-in is a heading, not one of its items"
    assert not EMOJI.search(words), "no meaning carried by emoji"
    for alt in flex_alt_texts(messages):
        assert 15 <= len(alt) <= 400 and not EMOJI.search(alt), f"altText {alt!r} must say what the message is"
    for message in messages:
        for item in message.get("quickReply", {}).get("items", []):
            assert len(item["action"]["label"]) <= MAX_LABEL


# -- fixed formats and what each language says --------------------------------------------------------------

@pytest.mark.parametrize("language,cancel", [("ja", "キャンセル"), ("en", "cancel"), ("easy", "キャンセル")])
def test_help_at_rest_gives_the_offices_phone_and_says_what_予約確認_can_cancel(language, cancel):
    """ヘルプ outside a booking: how to reach the office (Otaru's number and its department code 41#), and that
    予約確認 cancels a confirmed booking where the office lets the chat do it (Otaru), not where it does not
    (Sakata: by phone)."""
    vars = dict(state="idle", resuming=False, answers=("yes", "no"))
    otaru = text_of(render(OFFICES["otaru"], language, "help", vars))
    assert "0134-32-8689" in otaru and "41#" in otaru
    assert cancel in next(line for line in otaru.splitlines() if "予約確認" in line)
    sakata = text_of(render(OFFICES["sakata"], language, "help", vars))
    assert cancel not in next(line for line in sakata.splitlines() if "予約確認" in line)


@pytest.mark.parametrize("office_id", sorted(OFFICES))
@pytest.mark.parametrize("language", LANGUAGES)
def test_the_fixed_formats_stand_in_every_language(office_id, language):
    office = OFFICES[office_id]
    receipt = text_of(render(office, language, "receipt", dict(receipt=booking())))
    confirmed = text_of(render(office, language, "outcome_confirmed", dict(booking=booking("confirmed"))))
    for words in (receipt, confirmed):
        assert REFERENCE_LINE in words and LABEL in words
        if language != "ja":
            assert WRITTEN_OUT[language] in words
    assert "予約が確定しました" in confirmed
    slot = Choice(label=LABEL, data="a=slot&at=awaiting_slot:0&o=x&v=1")
    slots = render(office, language, "slots", samples(office)["slots"][0], (slot,))
    assert quick_reply_data(slots[-1]) == {LABEL: slot.data}
    if language != "ja":
        assert WRITTEN_OUT[language] in slots[0]["text"]


@pytest.mark.parametrize("office_id", sorted(OFFICES))
@pytest.mark.parametrize("language", LANGUAGES)
def test_every_listed_slot_shows_the_fixed_label_it_can_be_typed_as(office_id, language):
    """The slot list and the nearby free slots say "send e.g. 12/7 14:00": each line shows its slot in that form
    (the written-out date may stand beside it), or a reader of the list cannot tell what to type."""
    office = OFFICES[office_id]
    for vars in samples(office)["slots"]:
        listed = [line for line in text_of(render(office, language, "slots", vars)).splitlines()
                  if re.match(r"\d+\. ", line)]
        assert len(listed) == len(vars["page"]["slots"])
        for line, slot in zip(listed, vars["page"]["slots"]):
            assert slot["label"] in line, line
    for vars in samples(office)["slot_unavailable"]:
        said = text_of(render(office, language, "slot_unavailable", vars))
        for alternative in vars["alternatives"]:
            assert alternative["label"] in said, said


TYPED_EXAMPLE = re.compile(r'[「"](\d{1,2}/\d{1,2} \d{2}:\d{2})[」"]')


@pytest.mark.parametrize("office_id", sorted(OFFICES))
@pytest.mark.parametrize("language", LANGUAGES)
def test_the_slot_lists_example_of_a_typed_slot_is_its_own_first_slot(office_id, language):
    """"Send e.g. 12/7 14:00": the example is the list's first slot, typed as it reads back to that very slot,
    not a fixed 12/7 14:00 that has passed or is no slot of the office."""
    office = OFFICES[office_id]
    starts = [datetime(2026, 12, 9, 15, 30, tzinfo=TOKYO), datetime(2026, 12, 10, 10, 0, tzinfo=TOKYO)]
    page = {**week(days=2), "slots": [{"start": at.isoformat(), "label": slot_label(at), "at": at} for at in starts]}
    said = text_of(render(office, language, "slots", dict(page=page)))
    [example] = TYPED_EXAMPLE.findall(said)
    assert parse_slot_text(example, datetime(2026, 12, 1, 10, 0, tzinfo=TOKYO)) == starts[0], said


@pytest.mark.parametrize("office_id", sorted(OFFICES))
@pytest.mark.parametrize("language", TRANSLATED)
def test_the_offices_wording_is_translated(office_id, language):
    office = OFFICES[office_id]
    local = office.localized(language)
    for i, question in enumerate(office.eligibility):
        [message] = render(office, language, "eligibility_question", dict(question=question, number=i + 1, total=5))
        assert local.eligibility[i].text in message["text"] and question.text not in message["text"]
        for line in local.eligibility[i].detail:
            assert line in message["text"]
    for item, translated in zip(office.checklist, local.checklist):
        [message] = render(office, language, "checklist_item", dict(item=item, number=1, total=1))
        assert translated.text in message["text"] and item.text not in message["text"]
        [fix] = render(office, language, "checklist_fix", dict(item=item))
        assert translated.fix in fix["text"]
    [consent] = render(office, language, "consent", samples(office)["consent"][0])
    assert len(local.consent_summary) == len(office.consent_summary) > 0
    assert all(line in consent["text"] for line in local.consent_summary)
    assert not any(line in consent["text"] for line in office.consent_summary)
    label = {"en": "Summary (translation)", "easy": "やさしい 日本語に したもの"}[language]
    assert label in consent["text"] and f"{BASE_URL}/terms/{office.id}?lang={language}" in consent["text"]
    assert "同意する" in consent["text"]            # the exact words that consent, in every language


# The session times and the notice rule each office's terms set, as every language's 要約 gives them.
SUMMARY_TIMES = {"sakata": ("14:00", "15:00", "16:00"), "otaru": ("10:00", "12:00", "13:00", "16:00")}
SUMMARY_NOTICE = {
    "sakata": {"ja": "3日前までに", "easy": "3日 まえまでに", "en": "3 days before"},
    "otaru": {"ja": "前日までに", "easy": "まえの 日までに", "en": "by the day before"},
}


@pytest.mark.parametrize("office_id", sorted(OFFICES))
@pytest.mark.parametrize("language", LANGUAGES)
def test_the_summary_gives_the_session_times_and_the_booking_notice(office_id, language):
    """Sakata 第6条(1) and Otaru 第4条(1): when sessions are held and how early a booking must be complete."""
    summary = "\n".join(OFFICES[office_id].localized(language).consent_summary)
    for time in SUMMARY_TIMES[office_id]:
        assert time in summary, time
    assert SUMMARY_NOTICE[office_id][language] in summary


# Sakata 第5条(2) forbids 「秘匿性や安全性が不明なものや接続経路の管理状況が不明な無料のインターネット接続サービス等」, not
# every free connection: the fix after いいえ says which ones, in every language.
SAFE_CONNECTION_FIX = {"ja": "管理状況が分からない無料のインターネット接続サービスは使えません",
                       "easy": "わからない むりょうの インターネットは つかえません",
                       "en": "You cannot use a free internet connection service whose confidentiality, safety or management you do not know"}


@pytest.mark.parametrize("language", LANGUAGES)
def test_sakatas_connection_fix_forbids_the_free_services_the_terms_forbid(language):
    office = OFFICES["sakata"]
    [item] = [item for item in office.checklist if item.id == "safe_connection"]
    [fix] = render(office, language, "checklist_fix", dict(item=item))
    assert SAFE_CONNECTION_FIX[language] in fix["text"], fix["text"]


# The services it forbids are those whose confidentiality (秘匿性) or safety is unknown, or whose connection route is
# not known to be managed: the question, the fix and the 要約 name confidentiality, as the terms do first.
CONFIDENTIALITY = {"ja": "秘匿性", "easy": "ひみつが まもられるか", "en": "confidentiality"}


@pytest.mark.parametrize("language", LANGUAGES)
def test_sakatas_connection_rule_names_confidentiality_as_the_terms_do(language):
    office = OFFICES["sakata"].localized(language)
    [item] = [item for item in office.checklist if item.id == "safe_connection"]
    word = CONFIDENTIALITY[language]
    assert word in item.text, item.text
    assert word in item.fix, item.fix
    assert word in "\n".join(office.consent_summary)


# Otaru's notice prints its one e-mail address for 「応募書類等のデータ送信」; its terms (第4条(3)) say to cancel 「電話又は
# メール」 without naming an address. Where a cancellation's routes list that address (an office cancelling only
# outside the chat, or a stale キャンセル button), the purpose the notice prints stays beside it, as in the contacts.
@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("name", ["withdraw_result", "delete_blocked"])
def test_an_email_route_to_cancel_keeps_the_purpose_the_office_printed_for_that_address(language, name):
    office = OFFICES["otaru"]
    email = office.localized(language).email
    kept = booking("confirmed", "call", ("phone", "email"))
    vars = dict(result={"outcome": "call", **kept}) if name == "withdraw_result" else dict(kept=[kept])
    words = text_of(render(office, language, name, vars))
    [line] = [line for line in words.split("\n") if email.value in line]
    assert email.note and line.endswith(email.note + ("）" if language != "en" else ")")), line


# Both terms make the booking notice (and Sakata's Monday times) the rule 「原則として」, not without exception:
# Sakata 第6条(1) 「原則として開催日の3日前までに」「原則毎週月曜日」, Otaru 第4条(1) 「原則として、前日までに」.
IN_PRINCIPLE = {"ja": "原則として", "easy": "きほんは", "en": "In principle"}


@pytest.mark.parametrize("office_id", sorted(OFFICES))
@pytest.mark.parametrize("language", LANGUAGES)
def test_the_summary_gives_the_booking_notice_as_the_rule_in_principle(office_id, language):
    [line] = [line for line in OFFICES[office_id].localized(language).consent_summary
              if SUMMARY_NOTICE[office_id][language] in line]
    assert IN_PRINCIPLE[language] in line, line


# Sakata 第11条 and Otaru 第9条 (法令等の遵守) bind the user to the law as well as the terms; Sakata 第7条(2) and
# Otaru 第5条(2) promise that what is recorded of their use is not made public in a form that identifies a device
# (except when an authority requires it under the law). Both are in every language's 要約, the duty with its article.
KEEPS_THE_LAW = {"ja": ("関係する法令を守って", "第{}条"), "easy": ("法律（ほうりつ）などの きまりも まもって", "第{}条"),
                 "en": ("keep to the laws and regulations", "article {}")}
LAW_ARTICLE = {"sakata": 11, "otaru": 9}
NOT_PUBLISHED = {"ja": ("特定できる形では公開されません", "法令に基づき"),
                 "easy": ("みんなに 見せる ことは しません", "法律（ほうりつ）で"),
                 "en": ("not made public in a form that identifies", "under the law")}


@pytest.mark.parametrize("office_id", sorted(OFFICES))
@pytest.mark.parametrize("language", LANGUAGES)
def test_the_summary_binds_the_user_to_the_law_and_says_records_are_not_published(office_id, language):
    summary = OFFICES[office_id].localized(language).consent_summary
    duty, article = KEEPS_THE_LAW[language]
    [line] = [line for line in summary if duty in line]
    assert article.format(LAW_ARTICLE[office_id]) in line, line
    promise, exception = NOT_PUBLISHED[language]
    [line] = [line for line in summary if promise in line]
    assert exception in line, line


# Otaru's notice does not handle 「新規学卒者の相談」 online. In やさしい日本語 the word is put as both halves of it, a
# student about to graduate and someone who has just graduated, alike in the topic question, the window it names
# and the confirmation's notice: read as only one half, someone of the other would pass the question or misread
# the notice.
NEW_GRADUATE_HALVES = ("もうすぐ そつぎょうする", "そつぎょうした ばかり")


def test_otarus_new_graduate_topic_reads_the_same_everywhere_in_easy_japanese():
    easy = OFFICES["otaru"].localized("easy")
    [topic] = [question for question in easy.eligibility if question.id == "topic"]
    [notice] = [notice for notice in easy.notices if "オンラインでは できません" in notice]
    for text in (topic.detail[0], topic.redirects[0].topic, notice):
        for half in NEW_GRADUATE_HALVES:
            assert half in text, text


# Sakata 第12条(3) and Otaru 第10条(3) ask for a private room 「秘密保持のため」: every language's 要約 gives the
# reason with the rule, as the day-before reminder does.
PRIVATE_ROOM = {"ja": ("個室", "秘密保持のため"), "easy": ("ひとりの へや", "ひみつを まもるため"),
                "en": ("private room", "confidential")}


@pytest.mark.parametrize("office_id", sorted(OFFICES))
@pytest.mark.parametrize("language", LANGUAGES)
def test_the_summary_asks_for_a_private_room_to_keep_the_talk_confidential(office_id, language):
    room, reason = PRIVATE_ROOM[language]
    [line] = [line for line in OFFICES[office_id].localized(language).consent_summary if room in line]
    assert reason in line, line


# Sakata 第5条(6) 「ウイルス対策ソフト(有償版相当に限ります。)」: a free one does not do, in every language's 要約.
PAID_GRADE = {"ja": "有償版相当", "easy": "おかねを はらう ものと おなじ くらい いい もの", "en": "paid-version quality"}


@pytest.mark.parametrize("language", LANGUAGES)
def test_sakatas_summary_asks_for_antivirus_of_paid_grade(language):
    summary = "\n".join(OFFICES["sakata"].localized(language).consent_summary)
    assert PAID_GRADE[language] in summary, summary


# Sakata 第5条(4), 第12条(4) and Otaru 第10条(4): 「パーソナルファイアウォールの機能を有効にし、必要なサービスの許可だけを
# 最小限に設定」. Someone who answers いいえ is told both halves, not only to turn the firewall on.
FIREWALL_MINIMUM = {"ja": "必要なサービスの許可だけを最小限に", "easy": "ひつような ものだけ",
                    "en": "only the services that are needed"}


@pytest.mark.parametrize("office_id", sorted(OFFICES))
@pytest.mark.parametrize("language", LANGUAGES)
def test_the_firewall_fix_says_to_allow_only_the_services_needed(office_id, language):
    office = OFFICES[office_id]
    [item] = [item for item in office.checklist if item.id == "firewall"]
    [fix] = render(office, language, "checklist_fix", dict(item=item))
    assert FIREWALL_MINIMUM[language] in fix["text"], fix["text"]


@pytest.mark.parametrize("office_id", sorted(OFFICES))
@pytest.mark.parametrize("language", LANGUAGES)
def test_the_receipt_says_the_offices_limit_on_how_often_the_service_is_used(office_id, language):
    """Otaru's notice: 「利用回数に制限を設ける場合があります」 is told with every request, before staff decide."""
    office = OFFICES[office_id]
    note = office.localized(language).booking.usage_limit_note
    receipt = text_of(render(office, language, "receipt", dict(receipt=booking())))
    if office.booking.usage_limit_note:
        assert note and note in receipt
    else:
        assert not re.search(r"^[※*] *$", receipt, re.M), receipt     # no empty line where an office has none


# The day-before reminder and the confirmation: trouble connecting or running late on the day is told to the office, the way the
# office takes same-day contact (Otaru 第4条(3): 当日は電話のみ; Sakata 第6条(3): 電話), before the no-show rule
# (「連絡がないまま…10分経過した場合は、キャンセルとみなします」) applies.
ON_THE_DAY = {"ja": "当日、つながらない・開始に遅れる", "easy": "そうだんの 日に つながらない ときや おくれる ときは",
              "en": "On the day, if you cannot connect or will be late"}
SAME_DAY_ROUTE = {"ja": {"phone": "お電話", "email": "メール"}, "easy": {"phone": "でんわ", "email": "メール"},
                  "en": {"phone": "by phone", "email": "e-mail"}}


@pytest.mark.parametrize("office_id", sorted(OFFICES))
@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("name", ["reminder_day_before", "outcome_confirmed"])   # (a late one gets no reminder)
def test_the_reminder_and_the_confirmation_say_how_to_reach_the_office_on_the_day(office_id, language, name):
    office = OFFICES[office_id]
    words = text_of(render(office, language, name, dict(booking=booking("confirmed"))))
    start = words.index(ON_THE_DAY[language])
    line = words[start:].split("\n")[0]
    for route, word in SAME_DAY_ROUTE[language].items():
        assert (word in line) == (route in office.cancellation.same_day_routes), (route, line)


@pytest.mark.parametrize("office_id", sorted(OFFICES))
@pytest.mark.parametrize("language", LANGUAGES)
def test_a_time_that_is_not_a_slot_is_answered_with_the_offices_session_times(office_id, language):
    """Sakata 第6条(1) 「原則毎週月曜日 14:00、15:00、16:00」, Otaru 第4条(1) 「平日10:00～12:00、13:00～16:00の間の
    30分間」: a typed time outside them is refused, and the user is told when sessions are."""
    office = OFFICES[office_id]
    words = text_of(render(office, language, "slot_unavailable", dict(
        reason="not_a_slot", deadline=None, closure=None, holiday=None, alternatives=[])))
    weekdays = load_labels(language)["weekdays"]
    for start in office.schedule.starts:
        assert start.strftime("%H:%M") in words, (start, words)
    assert weekdays[office.schedule.weekdays[0]] in words and weekdays[office.schedule.weekdays[-1]] in words


def test_the_shipped_profiles_translate_all_their_wording():
    for office in OFFICES.values():
        assert untranslated(office) == [], office.id
        assert office.localized("ja") is office


@pytest.mark.parametrize("change,where", [
    (lambda t: t["en"]["consent_summary"].pop(), "translations.en.consent_summary"),
    (lambda t: t["en"]["eligibility"].update(nosuch={"text": "x"}), "translations.en.eligibility.nosuch"),
    (lambda t: t["easy"]["checklist"]["secure_device"].pop("fix"), "translations.easy.checklist.secure_device.fix"),
    (lambda t: t.update(fr={}), "translations.fr"),
])
def test_a_broken_translation_is_refused_with_its_path(tmp_path, change, where):
    source = DEFAULT_OFFICES_DIR / "sakata.yaml"
    profile = yaml.safe_load(source.read_text(encoding="utf-8"))
    change(profile["translations"])
    path = tmp_path / "sakata.yaml"
    path.write_text(yaml.safe_dump(profile, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ProfileError) as refused:
        read_office(path)
    assert where in str(refused.value)


def test_an_untranslated_text_is_a_warning_and_shows_in_japanese(tmp_path):
    profile = yaml.safe_load((DEFAULT_OFFICES_DIR / "sakata.yaml").read_text(encoding="utf-8"))
    del profile["translations"]["en"]["checklist"]["firewall"]
    path = tmp_path / "sakata.yaml"
    path.write_text(yaml.safe_dump(profile, allow_unicode=True), encoding="utf-8")
    office = read_office(path)
    assert untranslated(office) == ["translations.en.checklist.firewall"]
    firewall = next(item for item in office.localized("en").checklist if item.id == "firewall")
    assert firewall.text == next(item for item in office.checklist if item.id == "firewall").text


NOTE_HEADING = {"ja": "【ご注意】", "easy": "【ちゅうい】", "en": "[Please note]"}


@pytest.mark.parametrize("office_id", sorted(OFFICES))
@pytest.mark.parametrize("language", LANGUAGES)
def test_the_office_s_invitation_is_followed_by_a_blank_line(office_id, language):
    """The invitation part is an included file: the blank line after it must survive the include."""
    office = OFFICES[office_id]
    confirmed = text_of(render(office, language, "outcome_confirmed", dict(booking=booking("confirmed"))))
    assert f"\n\n{NOTE_HEADING[language]}\n" in confirmed
    reminder = text_of(render(office, language, "reminder_day_before", dict(booking=booking("confirmed"))))
    invitation = text_of(render(office, language, "outcome_confirmed", dict(booking=booking("confirmed")))
                         ).split(NOTE_HEADING[language])[0].rstrip().splitlines()[-1]
    assert f"{invitation}\n\n" in reminder


TODAY = {"ja": "前日（本日）までに", "easy": "きょう（そうだんの 日の まえの 日）までに", "en": "By today (the day before the session)"}


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_day_before_reminder_says_sakatas_invitation_is_due_today(language):
    """Sakata sends its invitation e-mail 「開催日の前日までに」 (利用規約 第6条(2)). Said on the day before, in the
    reminder, that is today: it says so, while the confirmation, days ahead, keeps the terms' words."""
    office = OFFICES["sakata"]
    reminder = text_of(render(office, language, "reminder_day_before", dict(booking=booking("confirmed"))))
    confirmed = text_of(render(office, language, "outcome_confirmed", dict(booking=booking("confirmed"))))
    assert TODAY[language] in reminder
    assert TODAY[language] not in confirmed


# The session is online: the heading of what to do when the day no longer suits says so, as the Japanese
# 「ご都合が悪くなったとき」 does, not "if you cannot come" (nobody comes anywhere).
CANCEL_HEADING = {"ja": "【ご都合が悪くなったとき】", "easy": "【つごうが わるく なった とき】",
                  "en": "[If the date no longer suits you]"}


@pytest.mark.parametrize("office_id", sorted(OFFICES))
@pytest.mark.parametrize("language", LANGUAGES)
def test_the_reminder_s_cancel_heading_fits_an_online_session(office_id, language):
    reminder = text_of(render(OFFICES[office_id], language, "reminder_day_before", dict(booking=booking("confirmed"))))
    assert f"\n{CANCEL_HEADING[language]}\n" in reminder
    assert "cannot come" not in reminder and "行けなく" not in reminder


SENT = {
    "sakata": {"ja": "お送りしています", "easy": "もう おくりました", "en": "has sent the meeting invitation"},
    "otaru": {"ja": "お知らせしています", "easy": "もう 知らせました", "en": "has given you the Zoom meeting ID"},
}
NOT_ARRIVED = {"ja": "開始時刻までに", "easy": "はじまる まえに", "en": "before the session starts"}


@pytest.mark.parametrize("office_id", sorted(OFFICES))
@pytest.mark.parametrize("language", LANGUAGES)
def test_the_reminder_says_an_invitation_staff_recorded_as_sent_went(office_id, language):
    """Sakata 第6条(2) (会議招待メール 「開催日前日までに」), Otaru 第4条(2) and its notice ③ (meeting ID and password
    「事前に」): once staff recorded it as sent, the day-before reminder says it went and to contact the office
    before the start if it is missing, instead of promising it again."""
    office = OFFICES[office_id]
    sent = booking("confirmed")
    sent["timing"] = {**sent["timing"], "invitation_sent": True}
    told = text_of(render(office, language, "reminder_day_before", dict(booking=sent)))
    not_told = text_of(render(office, language, "reminder_day_before", dict(booking=booking("confirmed"))))
    assert SENT[office_id][language] in told and SENT[office_id][language] not in not_told
    line = next(line for line in told.splitlines() if SENT[office_id][language] in line)
    assert NOT_ARRIVED[language] in line
    assert TODAY[language] not in told


CALL = {"ja": "お電話でもお知らせします", "easy": "でんわでも 知らせます", "en": "tell you the date and time by phone"}


@pytest.mark.parametrize("language", LANGUAGES)
def test_sakatas_call_with_the_date_is_not_promised_again_once_staff_recorded_it(language):
    """Sakata 第6条(2): 「日時を電話連絡します」. The confirmation says the call will come; the day-before reminder
    says so only while staff have not recorded it (電話連絡を記録)."""
    office = OFFICES["sakata"]
    called = booking("confirmed")
    called["timing"] = {**called["timing"], "called": True}
    for name in ("outcome_confirmed", "reminder_day_before"):
        assert CALL[language] in text_of(render(office, language, name, dict(booking=booking("confirmed"))))
        assert CALL[language] not in text_of(render(office, language, name, dict(booking=called)))


@pytest.mark.parametrize("office_id", sorted(OFFICES))
@pytest.mark.parametrize("language", LANGUAGES)
def test_the_day_before_reminder_repeats_the_rules_of_the_session_itself(office_id, language):
    """Sakata 第12条(2)(3) and 第5条(5), Otaru 第10条(2)(3) and its notice: no recording, a private room (and at
    Otaru no extension, no free Wi-Fi) hold on the day itself. Said at consent and in the confirmation days before,
    they are said again in the reminder read the day before (profile `day_before_notices`)."""
    office = OFFICES[office_id]
    notices = office.localized(language).day_before_notices
    assert notices and len(notices) == len(office.day_before_notices)
    reminder = text_of(render(office, language, "reminder_day_before", dict(booking=booking("confirmed"))))
    for notice in notices:
        assert notice in reminder, notice
    if language == "ja":
        assert any("録画・録音" in n for n in notices) and any("個室" in n for n in notices)


def test_day_before_notices_are_optional_and_translated_line_for_line(tmp_path):
    profile = yaml.safe_load((DEFAULT_OFFICES_DIR / "otaru.yaml").read_text(encoding="utf-8"))
    del profile["translations"]["en"]["day_before_notices"]
    path = tmp_path / "otaru.yaml"
    path.write_text(yaml.safe_dump(profile, allow_unicode=True), encoding="utf-8")
    assert untranslated(read_office(path)) == ["translations.en.day_before_notices"]
    profile["translations"]["easy"]["day_before_notices"].pop()
    path.write_text(yaml.safe_dump(profile, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ProfileError) as refused:
        read_office(path)
    assert "translations.easy.day_before_notices" in str(refused.value)
    del profile["day_before_notices"], profile["translations"]["easy"]["day_before_notices"]
    path.write_text(yaml.safe_dump(profile, allow_unicode=True), encoding="utf-8")
    office = read_office(path)
    assert office.day_before_notices == () and "day_before_notices" not in " ".join(untranslated(office))


WITHDRAW_WORDS = {"ja": "取り下げ", "easy": "とりけす", "en": "withdraw"}
CANCEL_WORDS = {"ja": "キャンセル", "easy": "とりけす", "en": "cancel"}


@pytest.mark.parametrize("language", LANGUAGES)
def test_already_booked_offers_only_what_my_bookings_can_do(language):
    """A confirmed Sakata booking is cancelled by phone: 予約確認 offers no withdrawal, so neither may this."""
    office = OFFICES["sakata"]
    def said(status: str, action: str | None) -> str:
        return text_of(render(office, language, "already_booked", dict(booking=booking(status, action))))
    assert WITHDRAW_WORDS[language] in said("requested", "withdraw")
    assert CANCEL_WORDS[language] in said("confirmed", "cancel")
    for status, action in (("confirmed", "call"), ("requested", "call"), ("proposed", "proposal")):
        words = said(status, action)
        assert "予約確認" in words
        if language != "easy":                                 # やさしい日本語 says とりけす for both
            assert WITHDRAW_WORDS[language] not in words
        if action == "proposal":
            assert CANCEL_WORDS[language] not in words.lower() and WITHDRAW_WORDS[language] not in words


OUTSIDE_THE_CHAT = {"ja": "・このトーク以外でのご連絡: ", "easy": "・この トーク いがいの ほうほう: ",
                    "en": "- Outside this chat: "}


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("name", ["outcome_confirmed", "reminder_day_before"])
def test_where_the_chat_cancels_the_offices_note_reads_as_the_other_way(language, name):
    """Otaru: 'cancel here until the day before' must not be followed by a bare 'to cancel, call or e-mail'."""
    office = OFFICES["otaru"]
    note = office.localized(language).cancellation.note
    in_chat = text_of(render(office, language, name, dict(booking=booking("confirmed", "cancel"))))
    assert f"{OUTSIDE_THE_CHAT[language]}{note}" in in_chat
    on_the_day = {**booking("confirmed", "call"), "timing": {"session_day": True, "cancel_in_chat": False, "invitation_sent": False, "called": False}}
    by_phone = text_of(render(office, language, name, dict(booking=on_the_day)))
    assert note in by_phone and OUTSIDE_THE_CHAT[language] not in by_phone


# Sakata's terms (第6条(1)): 「1回当たり30分程度」; Otaru's: 「1回当たり30分」 and 「予約時間の延長はできません」.
ABOUT_30 = {"ja": "30分程度", "easy": "30分ぐらい", "en": "about 30 minutes"}
JUST_30 = {"ja": "30分", "easy": "30分", "en": "30 minutes"}


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("office_id,about", [("sakata", True), ("otaru", False)])
def test_the_session_length_is_said_as_the_office_words_it(office_id, about, language):
    """Every message that gives a session's length says "about" where the office's terms do, and only there."""
    office = OFFICES[office_id]
    for name, vars in (("greeting", {}), ("slots", dict(page=week())), ("slots", dict(page=week(days=2, pages=3))),
                       ("outcome_confirmed", dict(booking=booking("confirmed"))),
                       ("reminder_day_before", dict(booking=booking("confirmed")))):
        text = text_of(render(office, language, name, vars))
        assert JUST_30[language] in text, (name, text)
        assert (ABOUT_30[language] in text) == about, (name, text)


UNFIXED_REFERENCE = re.compile(r"受付番号(?!: )[\s　]*[A-HJ-NP-Z2-9]{4}-[A-HJ-NP-Z2-9]{4}")


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_message_writes_a_reference_in_the_fixed_format(language):
    """A reference is always `受付番号: XXXX-XXXX`, inside a sentence as on its own line, for users and staff."""
    for office in OFFICES.values():
        for name, var_sets in all_samples(office).items():
            for vars in var_sets:
                messages = render(office, language, name, vars)
                for words in (text_of(messages), *flex_alt_texts(messages)):
                    assert not UNFIXED_REFERENCE.search(words), (office.id, name, UNFIXED_REFERENCE.search(words))


QUOTED_STATUS = {"ja": "「{}」", "easy": "「{}」", "en": '"{}"'}


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("name", ["withdraw_result", "proposal_result"])
def test_a_request_already_decided_names_its_status_as_a_status(name, language):
    """'Already' answers quote the status label, which reads right for every status ("すでにお受けできませんでした
    です" and "is already could not be accepted" did not), and point to 予約確認."""
    office = OFFICES["otaru"]
    for status, label in load_labels(language)["statuses"].items():
        result = {"outcome": "already", **booking(status, "none")}
        words = text_of(render(office, language, name, dict(result=result)))
        assert QUOTED_STATUS[language].format(label) in words and "予約確認" in words, (status, words)


# The offices' documents write the noun 申込み (予約申込み, 利用申込み) and the verb 申し込む: so does every Japanese
# text a user reads (お申込みを受け付けました; お申し込みいただけます).
NOUN_WRITTEN_OTHERWISE = re.compile(r"申し込み(?!いただ|ください|・お問い合わせください)|申込(?!み)")


def test_standard_japanese_writes_moushikomi_as_the_offices_do():
    texts = [(f"{office.id} {name}", text_of(render(office, "ja", name, vars)))
             for office in OFFICES.values() for name, var_sets in all_samples(office).items()
             if not name.startswith("staff_") for vars in var_sets]
    texts.append(("forms", yaml.safe_dump(form_texts("ja"), allow_unicode=True)))
    for name, words in texts:
        assert not NOUN_WRITTEN_OTHERWISE.search(words), (name, NOUN_WRITTEN_OTHERWISE.search(words))


# English calls one thing by one name: the form's companion choice is a "caregiver", so no message says "carer".
ENGLISH_ONE_NAME = {"caregiver": re.compile(r"\bcarers?\b", re.I)}


def test_english_calls_a_thing_by_one_name():
    texts = [(f"{office.id} {name}", text_of(render(office, "en", name, vars)))
             for office in OFFICES.values() for name, var_sets in all_samples(office).items() for vars in var_sets]
    texts.append(("forms", yaml.safe_dump(form_texts("en"), allow_unicode=True)))
    for name, words in texts:
        for word, other in ENGLISH_ONE_NAME.items():
            assert not other.search(words), (name, f"say {word!r}", other.search(words))


# What was typed into a form sent after its slot was gone is kept on the page (bot/forms.py CARRIED), saved
# nowhere: the words each language would use to say it is not kept at all.
NOT_KEPT = {"ja": re.compile("(残して|残って)いません"), "easy": re.compile("書いた ことも のこして いません"),
            "en": re.compile(r"not (been )?kept", re.I)}


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_page_keeping_what_was_typed_never_says_it_was_not_kept(language):
    """The page says why the slot is gone and then that what was typed waits on it for another slot
    (text_carry): the why must not say the opposite (it is not saved, which is true either way)."""
    from bot.forms import CARRIED

    problem = form_texts(language)["page"]["problem"]
    said = {key: words for key, words in problem.items()
            if key.startswith(tuple(f"text_{kind}" for kind in CARRIED | {"waiting"}))}
    assert "text_notice_passed" in said and "text_full" in said
    assert {key for key, words in said.items() if NOT_KEPT[language].search(words)} == set()


QUESTION = {"ja": "質問", "easy": "しつもん", "en": "question"}
NEXT_STEP = {"awaiting_slot": {"ja": "日時をお選びください", "easy": "日と 時間を えらんで", "en": "choose a date and time"},
             "awaiting_form": {"ja": "入力ページを開いて", "easy": "ページを ひらいて", "en": "fill in the form"}}


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("state", sorted(NEXT_STEP))
def test_help_ends_with_the_step_in_hand_not_a_question_there_is_not(state, language):
    """After ヘルプ the step is shown again; at the slot and form steps there is no question to answer."""
    office = OFFICES["otaru"]
    last = text_of(render(office, language, "help", dict(state=state, resuming=False))).strip().split("\n\n")[-1]
    assert NEXT_STEP[state][language] in last and QUESTION[language] not in last


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("state", sorted(NEXT_STEP))
def test_a_stale_button_points_to_the_step_in_hand_not_a_question_there_is_not(state, language):
    said = text_of(render(OFFICES["sakata"], language, "stale_button", dict(state=state)))
    assert NEXT_STEP[state][language] in said and QUESTION[language] not in said


# 同意する typed past consent, and a date typed before the slots: said plainly in each language (English was
# "is taken only while", "we have not taken it now"; easy Japanese nested a sentence in brackets and ran
# あいている together where its neighbours write あいて いる).
STALE_WORDS = {
    "consent_word": {"ja": "利用規約への同意をお願いしているときにだけ受け付けています（同意はすでにいただいています）。",
                     "easy": "ルールに 同意するか きく ときだけ つかいます。あなたは もう 同意して います。",
                     "en": "is only used when we ask you to agree to the terms, and you have already agreed."},
    "early_slot": {"ja": "この後の手順で空いている枠の一覧からお選びいただけます",
                   "easy": "あいて いる 時間の リストから えらびます",
                   "en": "You will choose the date and time at a later step, from the list of free slots (we cannot "
                         "take a date and time at this step)."},
}


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("why", sorted(STALE_WORDS))
def test_the_consent_words_or_a_date_at_the_wrong_step_are_said_plainly(why, language):
    said = text_of(render(OFFICES["sakata"], language, "stale_button", {"state": "awaiting_checklist", why: True}))
    assert STALE_WORDS[why][language] in said, said


def visible(markup: str) -> str:
    """Words as read: without the tags (an English page marks its Japanese words <span lang="ja">)."""
    return html.unescape(re.sub(r"<[^>]*>", "", markup))


def test_english_glosses_a_chat_word_the_same_way_everywhere():
    """help.txt names each Japanese chat word with its English gloss; every other message uses that one."""
    help_text = (TEMPLATES_DIR / "messages" / "en" / "help.txt").read_text(encoding="utf-8")
    glosses = dict(re.findall(r"^- (\S+) \(([^)]+)\):", help_text, re.M))
    assert glosses["データ削除"] == "delete my data" and glosses["予約確認"] == "my bookings"
    files = [*(TEMPLATES_DIR / "messages" / "en").glob("*"), TEMPLATES_DIR / "forms" / "page.en.yaml"]
    compared = 0
    for path in files:
        for word, gloss in re.findall(r'\\?"(\S+?)\\?" \(([^)]+)\)', visible(path.read_text(encoding="utf-8"))):
            if word in glosses and not gloss.startswith("or "):         # 'send "予約" (or "book")' offers the word
                assert gloss == glosses[word], (path.name, word, gloss)
                compared += 1
    assert compared >= 10, compared



CHAT_WORD = re.compile("予約確認|データ削除|最初から|予約|ヘルプ|戻る|中止|同意する")
LISTS_THE_CHAT_WORDS = ("help", "language_switched")          # they name the words in lists of their own


def test_english_quotes_and_glosses_every_chat_word_it_asks_for():
    """A Japanese chat word in an English text is the thing to send: always `"予約" (book)`, never a bare 予約 the
    reader cannot tell from the sentence around it."""
    texts = [(f"{office.id} {name}", text_of(render(office, "en", name, vars)))
             for office in OFFICES.values() for name, var_sets in all_samples(office).items()
             if not name.startswith("staff_") and name not in LISTS_THE_CHAT_WORDS for vars in var_sets]
    texts.append(("forms", visible(yaml.safe_dump(form_texts("en"), allow_unicode=True, width=10_000))))
    found = 0
    for name, words in texts:
        words = words.replace("予約が確定しました", "")                # the fixed confirmation phrase
        for match in CHAT_WORD.finditer(words):
            quoted = words[match.start() - 1:match.start()] == '"' and words[match.end():].startswith('" (')
            assert quoted, (name, words[max(0, match.start() - 30):match.end() + 20])
            found += 1
    assert found >= 10, found

@pytest.mark.parametrize("office_id", sorted(OFFICES))
@pytest.mark.parametrize("language", LANGUAGES)
def test_what_my_bookings_says_about_an_entry_stays_inside_that_entry(office_id, language):
    """予約確認's numbered list: how to cancel one booking by phone is indented under it, not a loose line that
    reads as if it were about the whole list or the next entry."""
    office = OFFICES[office_id]
    listed = 0
    for vars in all_samples(office)["bookings"]:
        lines = text_of(render(office, language, "bookings", vars)).splitlines()
        items = [i for i, line in enumerate(lines) if re.match(r"\d+\. ", line)]
        if not items:
            continue
        listed += 1
        tail = next((i for i in range(items[-1] + 1, len(lines)) if not lines[i].startswith("   ")), len(lines))
        for line in lines[items[0]:tail]:
            assert re.match(r"\d+\. ", line) or line.startswith("   "), (language, line)
        assert all(not re.match(r"\d+\. ", line) for line in lines[tail:])
    assert listed, "no sample listed a booking"


# -- phone routes: e-mail where accepted, and the telephone relay service -------------------------------------

# Told to call while the office is closed (the year end) until the session's own day.
CLOSED_TODAY = {"closure": "year_end", "holiday": None, "on": date(2027, 1, 4), "on_the_day": True, "start_time": "14:00"}
PHONE_ROUTES = {
    "booking_blocked": {}, "miss_contact": dict(state="awaiting_slot"), "consent_declined": dict(released=None, booking=None),
    "outcome_confirmed": dict(booking=booking("confirmed")), "reminder_day_before": dict(booking=booking("confirmed")),
    "withdraw_result": dict(result={"outcome": "call", **booking("confirmed", "call", ("phone",), CLOSED_TODAY)}),
    "bookings": dict(bookings=[booking("confirmed", "call", ("phone", "email"))], in_progress=False),
}


@pytest.mark.parametrize("office_id", sorted(OFFICES))
@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("name", sorted(PHONE_ROUTES))
def test_every_phone_route_mentions_the_relay_service(office_id, language, name):
    office = OFFICES[office_id]
    words = text_of(render(office, language, name, PHONE_ROUTES[name]))
    assert "電話リレーサービス" in words and "https://nftrs.or.jp/" in words
    assert words.count("https://nftrs.or.jp/") == 1
    if office.email.confirmed and name in ("bookings", "booking_blocked", "outcome_confirmed"):
        assert office.email.value in words                     # Otaru takes e-mail too (not on the day)


FIND_THE_NUMBER = {"ja": "電話番号は、ハローワークからの書類やホームページでご確認ください",
                   "easy": "でんわばんごうは、ハローワークから もらった かみか、ホームページで 見て ください",
                   "en": "phone number on the papers you received from Hello Work or on its website"}


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_relay_service_never_stands_without_a_number_or_where_to_find_it(language):
    """"You can call through the relay service" is no help without the number: an office that has not confirmed
    its phone number (Sakata) says where to find it, wherever the relay note is shown."""
    for office in OFFICES.values():
        number = office.phone.value if office.phone.confirmed and office.phone.value else FIND_THE_NUMBER[language]
        for name, var_sets in all_samples(office).items():
            for vars in var_sets:
                words = text_of(render(office, language, name, vars))
                if "https://nftrs.or.jp/" in words:
                    assert number in words, (office.id, name, words)


# -- やさしい日本語 against the guideline ---------------------------------------------------------------------
# 在留支援のためのやさしい日本語ガイドライン (2020): short sentences with one idea each, plain words instead of
# honorific and humble forms, few kanji (readings given in brackets), numbered steps, dates written out.

READING = re.compile(r"（[\u3040-\u309f\u30fc ・]+）")
JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")
KANJI = re.compile(r"[\u4e00-\u9fff]")
HONORIFIC = ("いただ", "いたし", "おります", "恐れ入", "申し訳", "ご確認", "ご利用", "お待ち", "承知", "存じ", "ご連絡",
             "お越し", "差し上げ", "くださいませ")
MAX_SENTENCE = 45        # Japanese characters in one sentence (readings in brackets not counted)


def easy_texts() -> list[tuple[str, str]]:
    out = []
    for office in OFFICES.values():
        for name, var_sets in all_samples(office).items():
            if name.startswith("staff_"):
                continue  # staff read standard Japanese
            out += [(name, text_of(render(office, "easy", name, vars))) for vars in var_sets]
    return out


def test_easy_japanese_sentences_are_short_plain_and_low_in_kanji():
    kanji = japanese = 0
    for name, words in easy_texts():
        plain = READING.sub("", re.sub(r"https?://\S+", "", words))
        for sentence in re.split(r"[。\n]", plain):
            assert len(JAPANESE.findall(sentence)) <= MAX_SENTENCE, (name, sentence)
        for form in HONORIFIC:
            assert form not in plain, (name, form)
        kanji += len(KANJI.findall(plain))
        japanese += len(JAPANESE.findall(plain))
    assert kanji / japanese < 0.2            # standard Japanese here runs at about a third



# Words of two or more kanji that a reader of やさしい日本語 is expected to know (or that stand in a fixed format,
# explained right after it): every other one carries its reading in brackets where a message first uses it.
EVERYDAY_KANJI_WORDS = {"予約", "予約確認", "受付番号", "時間", "電話", "一度", "方法", "日本", "日本語", "学校", "日時",
                        "確定", "月曜日", "火曜日", "水曜日", "木曜日", "金曜日"}
KANJI_WORD = re.compile(r"[\u4e00-\u9fff々]{2,}")
GIVEN_READING = re.compile(r"（[\u3040-\u30ff]+[ ・）]")    # データ削除（データ さくじょ）, 祝日（しゅくじつ・…）
PROPER_NAMES = re.compile(r"「ZOOM サービス規約」")        # a document's name, explained beside it
STAFF_WORDS = "ご希望の日時はお受けできません。"            # the sample's decline reason, written by staff


# The form's hints, errors and notices each stand alone; its eras and example name are written as the user writes them.
FORM_EVERYDAY = {"文字", "数字", "昭和", "平成", "令和", "山田"}


def form_notices(node: Any, path: str = "") -> list[tuple[str, str]]:
    if isinstance(node, dict):
        return [leaf for key, value in node.items() for leaf in form_notices(value, f"{path}.{key}")]
    return [(path, node)] if isinstance(node, str) else []


def test_easy_japanese_gives_a_hard_word_its_reading_where_a_message_first_uses_it():
    easy_form = form_texts("easy")
    notices = [leaf for part in ("hints", "errors") for leaf in form_notices(easy_form[part], part)]
    notices += [("page.skip", easy_form["page"]["skip"]), *form_notices(easy_form["page"]["problem"], "page.problem")]
    checked = 0
    for name, words in [*easy_texts(), *notices]:
        words = PROPER_NAMES.sub("", words.replace(STAFF_WORDS, ""))
        seen: set[str] = set()
        for match in KANJI_WORD.finditer(words):
            word = match.group()
            if word in seen or word in EVERYDAY_KANJI_WORDS or (name in dict(notices) and word in FORM_EVERYDAY):
                continue
            seen.add(word)
            rest = words[match.end():]
            before_the_bracket = re.match(r"[^\s（]*", rest).end()    # okurigana, a closing quote, more kanji
            assert GIVEN_READING.match(rest, before_the_bracket), (name, word, words[match.start():match.end() + 20])
            checked += 1
    assert checked >= 10, checked

# One word, one written form: the chat word 予約 is what the user types and taps, so the texts write it so too
# (with its reading where it is quoted as a word to send), never as よやく in one message and 予約 in the next.
EASY_FORMS = {"予約": re.compile(r"よやく"), "もう一度": re.compile(r"もう いちど|もういちど")}


def test_easy_japanese_writes_a_word_one_way():
    form = yaml.safe_dump(form_texts("easy"), allow_unicode=True)
    for name, words in [*easy_texts(), ("forms", form)]:
        plain = re.sub(r"（[^（）]*）", "", words)
        for written, other in EASY_FORMS.items():
            assert not other.search(plain), (name, written, other.search(plain))


# A yes/no question asked in the negative (入って いませんか, "Is there no ...?") has no safe はい or Yes: a learner
# answers it the other way round from a native speaker (the guideline asks for plain positive questions).
NEGATIVE_QUESTION = {"ja": re.compile(r"ませんか|ないですか"), "easy": re.compile(r"ませんか|ないですか"),
                     "en": re.compile(r"\b(?:Is|Are|Do|Does|Have|Has) (?:there|you|it)? ?(?:no|not)\b|n't (?:it|there|you)\b")}


@pytest.mark.parametrize("office_id", sorted(OFFICES))
@pytest.mark.parametrize("language", LANGUAGES)
def test_the_offices_yes_no_questions_are_asked_in_the_positive(office_id, language):
    office = OFFICES[office_id]
    own = office.translations.get(language, {}) if language != "ja" else {}
    asked = [(item.id, own.get(part, {}).get(item.id, {}).get("text", item.text))
             for part, items in (("eligibility", office.eligibility), ("checklist", office.checklist)) for item in items]
    for item_id, text in asked:
        assert not NEGATIVE_QUESTION[language].search(text), (item_id, text)


def test_easy_japanese_names_sakatas_video_software_one_way():
    """Sakata's terms say 「ハローワークが指定するソフト」: the やさしい日本語 profile says ハローワークが きめた ソフト
    (its video_app name, the questions, the checklist); a notice that said アプリ read as another thing to get."""
    easy = OFFICES["sakata"].translations["easy"]
    said = yaml.safe_dump(easy, allow_unicode=True)
    assert easy["video_app"]["name"] == "ハローワークが きめた ソフト"
    assert "きめた アプリ" not in said and "きめた ソフト" in " ".join(easy["notices"])


def test_easy_japanese_gives_steps_as_numbered_lists():
    office = OFFICES["sakata"]
    for name, vars in (("form_link", samples(office)["form_link"][0]), ("consent", samples(office)["consent"][0]),
                       ("help", dict(state="awaiting_consent", resuming=False)), ("greeting", {})):
        words = text_of(render(office, "easy", name, vars))
        assert "1. " in words and "2. " in words, name


# -- through signed webhooks ---------------------------------------------------------------------------------

def texts(fake_line, user, before: int) -> str:
    return "\n".join(fake_line.texts_to(user.user_id)[before:])


def says(fake_line, user, text: str) -> str:
    before = len(fake_line.texts_to(user.user_id))
    assert user.says(text).status_code == 200
    return texts(fake_line, user, before)


def taps_label(fake_line, user, label: str) -> str:
    buttons = quick_reply_data(fake_line.messages_to(user.user_id)[-1])
    assert label in buttons, f"no button {label!r} (buttons: {list(buttons)})"
    before = len(fake_line.texts_to(user.user_id))
    assert user.taps(buttons[label]).status_code == 200
    return texts(fake_line, user, before)


def conversation(rt, user) -> Conversation:
    with rt.db.reading() as s:
        conv = s.scalar(select(Conversation).where(Conversation.line_user_id == user.user_id))
        s.expunge(conv)
        return conv


def confirm_by_staff(rt, user) -> None:
    with rt.db.transaction() as s:
        conv = s.scalar(select(Conversation).where(Conversation.line_user_id == user.user_id))
        booking = s.scalar(select(Booking).where(Booking.conversation_id == conv.id))
        decisions.confirm(s, rt, rt.offices[user.office], booking, Actor.system(), rt.clock.now())
    Worker(rt).run_once()


@pytest.mark.pg_sample(every=3)   # a language is text: two of the six on PostgreSQL
@pytest.mark.parametrize("office_id", sorted(OFFICES))
@pytest.mark.parametrize("language", LANGUAGES)
def test_a_whole_booking_in_each_language(rt, client, user_factory, fake_line, office_id, language):
    user = user_factory(office_id)
    office, local = rt.offices[office_id], rt.offices[office_id].localized(language)
    buttons = load_labels(language)["buttons"]
    assert user.follows().status_code == 200
    if language != "ja":
        assert SWITCHED[language] in says(fake_line, user, SWITCH[language])
    consent = says(fake_line, user, "予約")                       # the Japanese chat word, in every mode
    assert local.consent_summary[0] in consent
    out = taps_label(fake_line, user, buttons["agree"])
    for question in office.eligibility:
        assert local.step(question.id).text in out
        out = taps_label(fake_line, user, buttons[question.passing[0]])
    for item in office.checklist:
        assert local.step(item.id).text in out
        out = says(fake_line, user, TYPED_YES[language])            # typed, in the language's own word
    slots = quick_reply_data(fake_line.messages_to(user.user_id)[-1])
    first = next(label for label in slots if re.fullmatch(r"\d{1,2}/\d{1,2}\(.\) \d{2}:\d{2}", label))
    held = taps_label(fake_line, user, first)
    assert first in held or language == "easy"                     # the flex's altText, in the language
    page = Page.get(client, form_link(fake_line.messages_to(user.user_id)))
    words = form_texts(language)["page"]
    assert page.status == 200 and f'<html lang="{words["lang"]}">' in page.html
    assert words["input"]["heading"] in page.html and local.controller in visible(page.html)
    confirmation = page.submit(client, valid_answers(office))
    assert words["confirm"]["heading"] in confirmation.html
    if language == "en":                     # Japanese full-width brackets never wrap English words
        for html in (page.html, confirmation.html):
            assert not re.findall(r".{0,30}[（）].{0,30}", re.sub(r"<[^>]*>", "", html))
    done = confirmation.submit(client)
    reference = re.search(r"受付番号: ([A-HJ-NP-Z2-9]{4}-[A-HJ-NP-Z2-9]{4})", done.html).group(1)
    assert words["done"]["heading"] in done.html and local.after_request in visible(done.html)
    assert words["done"]["reference_gloss"] in visible(done.html)   # 受付番号 said in the language, as in the chat
    assert bool(words["done"]["reference_gloss"]) == (language != "ja")
    rt.clock.advance(minutes=1)
    receipt = says(fake_line, user, "予約確認")
    assert RECEIVED[language] in receipt and f"受付番号: {reference}" in receipt and first in receipt
    confirm_by_staff(rt, user)
    pushed = fake_line.texts_to(user.user_id)[-1]
    assert "予約が確定しました" in pushed and f"受付番号: {reference}" in pushed and first in pushed
    assert local.name in pushed
    assert conversation(rt, user).language == language


def test_switching_mid_dialog_keeps_the_step_and_the_choice_persists(rt, user_factory, fake_line):
    user = user_factory("otaru")
    office = rt.offices["otaru"]
    says(fake_line, user, "予約")
    taps_label(fake_line, user, "同意する")
    says(fake_line, user, "はい")                                           # question 1 answered
    reply = says(fake_line, user, "English")                               # at question 2
    assert SWITCHED["en"] in reply and office.localized("en").eligibility[1].text in reply
    assert (conversation(rt, user).state, conversation(rt, user).context["i"]) == ("awaiting_eligibility", 1)
    back = says(fake_line, user, "戻る")                                   # a Japanese chat word in English mode
    assert office.localized("en").eligibility[0].text in back
    easy = says(fake_line, user, "やさしい日本語")
    assert SWITCHED["easy"] in easy and office.localized("easy").eligibility[0].text in easy
    english = says(fake_line, user, "English")                             # typed in easy mode
    assert SWITCHED["en"] in english
    assert office.localized("en").eligibility[1].text in says(fake_line, user, "yes")
    assert "Not sure" in quick_reply_data(fake_line.messages_to(user.user_id)[-1])
    assert "The booking has been stopped" in says(fake_line, user, "中止")
    again = says(fake_line, user, "予約")                                 # consent kept; the language too
    assert office.localized("en").eligibility[0].text in again
    assert conversation(rt, user).language == "en"
    assert "日本語に切り替えました" in says(fake_line, user, "日本語")
    assert office.eligibility[0].text in says(fake_line, user, "ヘルプ")


@pytest.mark.parametrize("language", TRANSLATED)
def test_the_japanese_words_and_the_languages_own_work_in_each_mode(rt, user_factory, fake_line, language):
    user = user_factory("sakata")
    says(fake_line, user, SWITCH[language])
    help_text = says(fake_line, user, "ヘルプ")
    assert "English" in help_text and "やさしい日本語" in help_text and "データ削除" in help_text
    assert says(fake_line, user, "help" if language == "en" else "つかいかた") == help_text
    says(fake_line, user, "予約")
    says(fake_line, user, "同意する")                                       # the exact words, in every mode
    out = says(fake_line, user, "1")                                        # a number chooses
    assert OFFICES["sakata"].localized(language).eligibility[1].text in out
    out = says(fake_line, user, "はい")                                     # Japanese answers keep working
    assert OFFICES["sakata"].localized(language).eligibility[2].text in out
    status = says(fake_line, user, "予約確認")
    assert {"en": "You are in the middle of a booking", "easy": "予約の とちゅうです"}[language] in status
    assert conversation(rt, user).state == "awaiting_eligibility"


def test_the_rich_menu_and_the_chat_words_switch_language():
    menu = yaml.safe_load((TEMPLATES_DIR / "richmenu" / "menu.yaml").read_text(encoding="utf-8"))
    sent = {button["text"] for button in menu["buttons"]}
    assert {"English", "やさしい日本語"} <= sent
    for language in LANGUAGES:
        vocab = load_vocabulary(language)
        for word, wid in (("English", "lang_en"), ("やさしい日本語", "lang_easy"), ("日本語", "lang_ja")):
            assert vocab.words[normalise(word)] == wid, (language, word)
        for word in ("予約", "予約確認", "ヘルプ", "戻る", "最初から", "中止", "データ削除"):
            assert normalise(word) in vocab.words, (language, word)
        assert vocab.consent_phrase == normalise("同意する")


# -- the form follows the language ---------------------------------------------------------------------------

def form_in(rt, office_id: str, language: str) -> str:
    conv_id, url = hold_directly(rt, office_id)
    with rt.db.transaction() as s:
        s.execute(update(Conversation).where(Conversation.id == conv_id).values(language=language))
    return url


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_forms_errors_follow_the_language_and_an_interpreter_needs_a_language(rt, client, language):
    url = form_in(rt, "otaru", language)
    errors = form_texts(language)["errors"]
    answers = {**valid_answers(rt.offices["otaru"]), "phone": "12-34", "companion": "interpreter",
               "companion_detail": ""}
    page = Page.get(client, url).submit(client, answers)
    assert page.status == 200
    for field, code in (("phone", "phone_format"), ("companion_detail", "interpreter_language")):
        message = re.search(rf'<p class="error" id="f-{field}-error">([^<]*)</p>', page.html).group(1)
        assert html.unescape(message) == errors["codes"][code]
        assert re.search(rf'id="f-{field}"[^>]*aria-describedby="[^"]*f-{field}-error', page.html)
    fixed = page.submit(client, {**answers, "phone": "090-1234-5678", "companion_detail": "ベトナム語 / Vietnamese"})
    assert html.escape(form_texts(language)["page"]["confirm"]["heading"]) in fixed.html
    assert "ベトナム語 / Vietnamese" in fixed.html
    assert "国籍" not in page.html and "nationality" not in page.html.lower()


@pytest.mark.parametrize("reading", ["Nguyen Van An", "Nguyễn Văn An", "", "グエン ヴァン アン"])
def test_in_english_the_names_reading_may_be_in_latin_letters_or_left_out(rt, client, reading):
    """A foreign job seeker may have no katakana reading: in English the field is optional, says so, and takes the
    name as it sounds in the Latin alphabet; the request keeps what was given for staff (their job seeker number
    finds the person). Letters that are no reading are still refused, and every other language keeps kana."""
    page = Page.get(client, form_in(rt, "sakata", "en"))
    field = re.search(r'<label for="f-name_kana">(.*?)</label>\s*(.*?)<input id="f-name_kana"([^>]*)>', page.html, re.S)
    assert form_texts("en")["page"]["optional"] in field.group(1) and "aria-required" not in field.group(3)
    answers = {**valid_answers(rt.offices["sakata"]), "name_kana": reading, "name": "Nguyen Van An"}
    refused = page.submit(client, {**answers, "name_kana": "阮 文安"})
    assert 'id="f-name_kana-error"' in refused.html and 'aria-invalid="true"' in refused.html
    confirmation = refused.submit(client, answers)
    assert html.escape(form_texts("en")["page"]["confirm"]["heading"]) in confirmation.html, confirmation.html
    assert confirmation.submit(client).status == 200
    with rt.db.reading() as s:
        [details] = s.scalars(select(Booking.details).where(Booking.status == "requested")).all()
    assert for_config(rt.config).decrypt(details)["name_kana"] == reading
    japanese = Page.get(client, form_in(rt, "otaru", "ja"))
    assert re.search(r'<input id="f-name_kana"[^>]*aria-required="true"', japanese.html)
    kept = japanese.submit(client, {**valid_answers(rt.offices["otaru"]), "name_kana": "Nguyen Van An"})
    assert 'id="f-name_kana-error"' in kept.html


def test_in_easy_japanese_a_choice_or_checkbox_is_not_marked_as_something_to_write(rt, client):
    """かならず 書く on 'E-mail address on My Page' sends the user looking for a box to type the address in."""
    words = form_texts("easy")["page"]
    page = Page.get(client, form_in(rt, "sakata", "easy")).html
    legends = re.findall(r"<legend>(.*?)</legend>", page, re.S)
    assert len(legends) == 3                                    # category, companion, mypage_email_confirmed
    for legend in legends:
        assert words["required_choice"] in legend and words["required"] not in legend
    labels = re.findall(r'<label for="f-(?:name|phone)">(.*?)</label>', page, re.S)
    assert len(labels) == 2 and all(words["required"] in label for label in labels)


def test_the_form_shows_the_slot_written_out_beside_the_fixed_label(rt, client):
    url = form_in(rt, "sakata", "easy")
    html = Page.get(client, url).html
    assert "2026年12月7日(月) 14:00（12/7(月) 14:00）" in html and '<html lang="ja">' in html
    english = Page.get(client, form_in(rt, "otaru", "en")).html
    assert re.search(r"\d{1,2}/\d{1,2}\(.\) \d{2}:\d{2} \(\w{3} \d{1,2} \w{3} 2026, \d{2}:\d{2}\)", visible(english))
    assert re.search(r'<span lang="ja">\d{1,2}/\d{1,2}\(.\) \d{2}:\d{2}</span>', english)   # read as Japanese


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_booking_deadline_is_told_in_the_forms_language(rt, client, language):
    rt.clock.freeze(datetime(2026, 12, 4, 16, 58, tzinfo=TOKYO))   # Sakata's Monday 12/7 closes at 17:00
    url = form_in(rt, "sakata", language)
    words = form_texts(language)["page"]
    page = Page.get(client, url)
    assert html.escape(words["deadline"].split("<strong>")[0].strip()) in page.html and "12/4(金) 17:00" in page.html
    confirmation = page.submit(client, valid_answers(rt.offices["sakata"]))
    rt.clock.advance(minutes=5)
    late = confirmation.submit(client)
    assert late.status == 410 and late.form.action.endswith("/resume")   # what was typed kept, for another slot
    problem = words["problem"]
    for text in (problem["notice_passed"], problem["text_notice_passed_how"], problem["text_carry"], problem["resume"]):
        assert visible(text) in visible(late.html), text
    assert "12/7(月) 14:00" in late.html and "12/4(金) 17:00" in late.html


# -- the terms stay in the office's Japanese ------------------------------------------------------------------

@pytest.mark.parametrize("language", TRANSLATED)
def test_the_terms_page_keeps_the_japanese_text_and_labels_the_translated_summary(client, language):
    office = OFFICES["otaru"]
    page = client.get(f"/terms/otaru?lang={language}").get_data(as_text=True)
    heading = {"en": "Summary (translation)", "easy": "やさしい 日本語に したもの"}[language]
    assert heading in page and office.localized(language).consent_summary[0] in page
    assert "第1条" in unicodedata.normalize("NFKC", page)               # the office's own Japanese text
    plain = client.get("/terms/otaru").get_data(as_text=True)
    odd = client.get("/terms/otaru?lang=fr").get_data(as_text=True)
    assert heading not in plain and "Summary (translation)" not in odd


# Otaru's 要約 gives rules of its notice 「オンライン職業相談のお知らせ」 (no extension, Zoom without an account, free
# Wi-Fi, no staff nomination, the usage limit, documents by e-mail) beside its terms': the consent step and the
# translated terms page say so, so that a user does not look for them in the terms. Sakata's 要約 is of its terms.
SUMMARY_ALSO_FROM = {"ja": "※これは利用規約と「オンライン職業相談のお知らせ」の要約です。",
                     "en": "This summary also gives the rules of Hello Work Otaru's notice of online job counselling",
                     "easy": "ルール いがいの ことも あります。「オンライン職業相談（しょくぎょう そうだん）の お知らせ」に"}
ALSO_FROM_WORDS = {"ja": "利用規約と「", "en": "This summary also gives", "easy": "ルール いがいの ことも"}


def _page_words(client, path: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", client.get(path).get_data(as_text=True)))


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_summary_that_gives_the_offices_notice_too_says_so(language):
    otaru, sakata = (render(OFFICES[o], language, "consent", samples(OFFICES[o])["consent"][0])[0]["text"]
                     for o in ("otaru", "sakata"))
    assert SUMMARY_ALSO_FROM[language] in otaru, otaru
    assert ALSO_FROM_WORDS[language] not in sakata, sakata


@pytest.mark.parametrize("language", TRANSLATED)
def test_the_translated_terms_page_says_when_the_summary_gives_the_offices_notice_too(client, language):
    assert SUMMARY_ALSO_FROM[language] in _page_words(client, f"/terms/otaru?lang={language}")
    assert ALSO_FROM_WORDS[language] not in _page_words(client, f"/terms/sakata?lang={language}")


@pytest.mark.parametrize("language", TRANSLATED)
def test_an_office_without_a_translation_never_calls_its_japanese_summary_a_translation(tmp_path, language):
    """An office may write no English (or no やさしい日本語): the chat's consent then shows its Japanese summary
    as Japanese, not under 'Summary (translation)' nor with a link to a translated summary that is not there."""
    profile = DEFAULT_OFFICES_DIR / "otaru.yaml"
    data = yaml.safe_load(profile.read_text(encoding="utf-8"))
    del data["translations"][language]
    path = tmp_path / "otaru.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    office = read_office(path)
    assert office.consent_summary and any(not sample["brief"] for sample in samples(office)["consent"])
    for sample in samples(office)["consent"]:
        [consent] = render(office, language, "consent", sample)
        text = consent["text"]
        assert "Summary (translation)" not in text and "やさしい 日本語に したもの" not in text
        assert "translated summary" not in text and f"?lang={language}" not in text
        if not sample["brief"]:
            assert all(line in text for line in office.consent_summary)
            assert {"en": "in Japanese", "easy": "ふつうの 日本語"}[language] in text


NUMBER_DOES_NOT_CONSENT = {"ja": "番号や「はい」では同意になりません", "easy": "ばんごうや「はい」では 同意に なりません",
                           "en": "a number"}


@pytest.mark.parametrize("office_id", sorted(OFFICES))
@pytest.mark.parametrize("language", LANGUAGES)
def test_a_consent_that_numbers_its_answers_says_a_number_does_not_consent(office_id, language):
    """Only the button or the exact words 同意する consent; a typed number is refused. The yes/no questions number
    their answers and take a typed number, so a consent message that numbers its answers too (やさしい日本語
    gives steps as numbered lists) must say that a number does not consent, or it invites a 「1」 it refuses."""
    office = OFFICES[office_id]
    for sample in samples(office)["consent"]:
        [consent] = render(office, language, "consent", sample)
        if re.search(r"(?m)^\s*[0-9０-９]+[.．]", consent["text"]):
            assert NUMBER_DOES_NOT_CONSENT[language] in consent["text"], consent["text"]


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("name,vars", [("unsupported", dict(kind="sticker", in_progress=False, state="idle")),
                                       ("unsupported", dict(kind="image", in_progress=False, state="idle")),
                                       ("stale_idle", {}), ("stale_idle", dict(late=True))])
def test_a_stray_message_outside_a_booking_names_my_bookings_too(language, name, vars):
    """A sticker, an image or an old button sent with no booking in progress comes most often from someone who
    has already booked (a thank-you sticker, a tap on an old question): the answer names 予約確認 beside 予約,
    rather than only 予約, which then tells them they already have a request."""
    text = text_of(render(OFFICES["otaru"], language, name, vars))
    assert "「予約」" in text or '"予約"' in text
    assert "「予約確認」" in text or '"予約確認"' in text, text


@pytest.mark.parametrize("language", LANGUAGES)
def test_an_old_slot_button_while_the_form_waits_says_how_to_choose_again(language):
    """A tap on another slot's old button while the form waits is refused (its step is over): the answer says
    how to choose again (戻る), as the answer to a word the bot cannot read there does."""
    text = text_of(render(OFFICES["sakata"], language, "stale_button", dict(state="awaiting_form")))
    assert "「戻る」" in text or '"戻る"' in text, text


IN_THIS_CHAT = {"ja": "このトークでは", "easy": "この トークでは", "en": "in this chat"}


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("name", ["bookings", "withdraw_result"])
def test_on_the_day_not_in_this_chat_is_said_once(language, name):
    """Otaru cancels in chat until the day before; on the day, 予約確認 and an old cancel button say that the chat
    cannot cancel, and why (the day itself), once, before the office's way: not twice in two wordings."""
    same_day = {**booking("confirmed", "call", ("phone",)), "same_day": True}
    vars = dict(bookings=[same_day], in_progress=False) if name == "bookings" else dict(
        result={"outcome": "call", **same_day})
    text = text_of(render(OFFICES["otaru"], language, name, vars))
    assert text.count(IN_THIS_CHAT[language]) == 1, text


# -- national holidays are named in the user's language ----------------------------------------------------

@pytest.mark.parametrize("language", TRANSLATED)
def test_every_national_holiday_has_a_name_in_the_language(language):
    """jpholiday names the holidays in Japanese (and "<name> 振替休日" for a substitute day); English must not show
    成人の日, and やさしい日本語 gives the kanji's reading."""
    holidays = load_labels(language)["holidays"]
    day = date(2026, 1, 1)
    while day < date(2031, 1, 1):
        for part in (holiday_name(day) or "").split():
            assert part in holidays, (language, day, part)
        day += timedelta(days=1)


@pytest.mark.parametrize("office_id", sorted(OFFICES))
def test_a_holiday_is_named_in_english_not_in_japanese(office_id):
    office = OFFICES[office_id]
    refused = text_of(render(office, "en", "slot_unavailable", dict(
        reason="closed", deadline=None, closure="holiday", holiday="成人の日", alternatives=[])))
    assert "Coming of Age Day" in refused and "成人の日" not in refused
    page = {**week(), "closed_ahead": [{"day": date(2026, 5, 6), "reason": "holiday",
                                        "holiday": "憲法記念日 振替休日"}]}
    slots = text_of(render(office, "en", "slots", dict(page=page)))
    assert "Constitution Memorial Day, a substitute holiday" in slots and "振替" not in slots
    easy = text_of(render(office, "easy", "slot_unavailable", dict(
        reason="closed", deadline=None, closure="holiday", holiday="成人の日", alternatives=[])))
    assert "成人の日（せいじんの ひ）" in easy



# -- a typed date and time, read the Japanese way (month/day) -------------------------------------------------

@pytest.mark.parametrize("language", ("ja", *TRANSLATED))
def test_a_typed_date_that_cannot_be_booked_is_said_back_written_out(rt, user_factory, fake_line, language):
    """"8/12 14:00" is 12 August (month/day, as every slot label is written): a user who meant 8 December must see
    which date the bot read, not only that bookings are not open yet. In Japanese too: a typed weekday (月曜14時)
    or an English date is read in every language mode."""
    user = user_factory("otaru")
    says(fake_line, user, SWITCH[language])
    walk_to_slots(user, rt)
    reply = says(fake_line, user, "8/12 14:00")
    written = {"en": "12 Aug", "easy": "8月12日", "ja": "ご指定の日時: 2027年8月12日"}[language]
    assert written in reply, reply
    if language != "easy":
        assert {"en": "month/day", "ja": "「月/日」の順"}[language] in reply


@pytest.mark.parametrize("language", TRANSLATED)
def test_an_unread_date_is_answered_with_how_to_write_one(rt, user_factory, fake_line, language):
    """A date without a time ("Dec 8"), or a time without am/pm or minutes ("tomorrow at 2"), is not read: the
    answer says a date is month/day, with an example: the first slot the list offers (12/7 14:00)."""
    user = user_factory("sakata")
    says(fake_line, user, SWITCH[language])
    walk_to_slots(user, rt)
    for typed in ("Dec 8", "tomorrow at 2"):
        reply = says(fake_line, user, typed)
        assert {"en": "month/day", "easy": "月/日"}[language] in reply, reply
        assert {"en": '"12/7 14:00" is Mon 7 Dec 2026, 14:00', "easy": "「12/7 14:00」は 12月7日の 14時"}[language] in reply


UNREAD = {"ja": "読み取れませんでした", "easy": "わかりませんでした", "en": "could not read"}


@pytest.mark.parametrize(("office_id", "language", "typed", "start"), [
    ("otaru", "en", "tomorrow 2pm", datetime(2026, 12, 2, 14, 0, tzinfo=TOKYO)),
    ("otaru", "en", "Dec 3 at 10.30am", datetime(2026, 12, 3, 10, 30, tzinfo=TOKYO)),
    ("sakata", "en", "next Monday 3pm", datetime(2026, 12, 7, 15, 0, tzinfo=TOKYO)),
    ("otaru", "easy", "8 Dec 2:30 pm", datetime(2026, 12, 8, 14, 30, tzinfo=TOKYO)),
    ("sakata", "ja", "Mon 2pm", datetime(2026, 12, 7, 14, 0, tzinfo=TOKYO)),
])
def test_a_slot_typed_in_english_words_is_booked_in_any_mode(rt, client, user_factory, fake_line, office_id,
                                                              language, typed, start):
    """Said on Tuesday 12/1 at 10:00 (the bot's clock): the typed words hold that slot, and the form books it."""
    assert rt.clock.now() == datetime(2026, 12, 1, 10, 0, tzinfo=TOKYO)
    user = user_factory(office_id)
    if language != "ja":
        says(fake_line, user, SWITCH[language])
    walk_to_slots(user, rt)
    assert UNREAD[language] not in says(fake_line, user, typed)
    assert conversation(rt, user).state == "awaiting_form"
    page = Page.get(client, form_link(fake_line.messages_to(user.user_id)))
    assert "受付番号: " in page.submit(client, valid_answers(rt.offices[office_id])).submit(client).html
    with rt.db.reading() as s:
        conv = s.scalar(select(Conversation).where(Conversation.line_user_id == user.user_id))
        booking = s.scalar(select(Booking).where(Booking.conversation_id == conv.id))
        assert (booking.status, booking.slot_start.astimezone(TOKYO)) == ("requested", start)


@pytest.mark.parametrize("office_id", sorted(OFFICES))
def test_english_refuses_kindly_and_reminds_in_plain_word_order(office_id):
    """Every English refusal opens with an apology, as its Japanese counterpart is said politely (「位置情報は
    お受けしていません」); the reminder says what is tomorrow, not "Tomorrow is your counselling"."""
    office = OFFICES[office_id]
    for kind in ("location", "image"):
        refusal = text_of(render(office, "en", "unsupported", dict(kind=kind, in_progress=False, state="idle")))
        assert refusal.startswith("Sorry"), refusal
    reminder = text_of(render(office, "en", "reminder_day_before", dict(booking=booking("confirmed"))))
    assert reminder.startswith("Your online job counselling is tomorrow.")


@pytest.mark.parametrize("language", TRANSLATED)
def test_a_booking_or_held_slot_named_in_a_message_is_written_out_too(language):
    """The fixed label 12/7(月) 14:00 names a slot in every language, but a reader of English or やさしい日本語
    gets the date written out in their language beside it wherever a message names one (above all where they
    are asked to confirm a cancellation that cannot be undone)."""
    office = OFFICES["otaru"]
    bare = []
    for name, var_sets in all_samples(office).items():
        if name.startswith("staff_"):                                  # staff read Japanese in their group
            continue
        for i, vars in enumerate(var_sets):
            for message in render(office, language, name, vars):
                words = text_of([message])
                if LABEL in words and WRITTEN_OUT[language] not in words:
                    bare.append(f"{name} #{i}")
                alt = message.get("altText", "")                     # the notification and the chat list
                if LABEL in alt and WRITTEN_OUT[language] not in alt:
                    bare.append(f"{name} #{i} (altText)")
    assert not bare, f"the slot is named only as {LABEL!r} in {sorted(set(bare))}"


def test_easy_japanese_keeps_a_booking_with_a_button_that_does_not_read_as_stopping_it():
    """At 「キャンセルしますか」 the other button keeps the booking. In やさしい日本語 the help and 予約確認 teach
    やめる as what 中止 does (予約を やめる: stop the booking), so a keep button reading やめる would say the
    opposite of what it does to the readers who rely most on one word meaning one thing."""
    keep = load_labels("easy")["buttons"]["keep"]
    assert load_vocabulary("easy").words.get(normalise(keep)) is None, f"{keep!r} is a chat word of its own"
    taught = (MESSAGES / "easy" / "help.txt").read_text("utf-8")
    assert keep not in taught and normalise(keep) not in {"やめる", "やめます"}


@pytest.mark.parametrize("typed", [None, "このままにする", "この\u3000ままに\u3000する", "このままにする。", "このままにする🙏"])
def test_an_easy_japanese_cancel_question_is_answered_by_its_keep_button(rt, client, user_factory, fake_line, typed):
    """Tapped, or typed as it reads (この ままに する) with or without its spaces, with 。 or an emoji after it."""
    user = user_factory("otaru")
    _, url = hold_directly(rt, "otaru", user_id=user.user_id)
    Page.get(client, url).submit(client, valid_answers(OFFICES["otaru"])).submit(client)
    confirm_by_staff(rt, user)
    says(fake_line, user, "やさしい日本語")
    says(fake_line, user, "予約確認")
    [cancel] = [label for label in quick_reply_data(fake_line.messages_to(user.user_id)[-1])]
    asked = taps_label(fake_line, user, cancel)
    keep = load_labels("easy")["buttons"]["keep"]
    assert f"「{keep}」" in asked
    kept = taps_label(fake_line, user, keep) if typed is None else says(fake_line, user, typed)
    assert "キャンセルは して いません" in kept
    with rt.db.reading() as s:
        assert s.scalar(select(Booking.status)) == "confirmed"


@pytest.mark.parametrize("language", TRANSLATED)
def test_a_terms_notice_writes_the_date_the_terms_apply_from_in_the_language(language):
    """The version's id (YYYY-MM-DD) stays in the link; the date the terms apply from is written as every other
    date in the chat is (Thu 1 Apr 2027 / 2027年4月1日(木)), not as 2027-04-01."""
    for vars in all_samples(OFFICES["sakata"])["terms_updated"]:
        words = text_of(render(OFFICES["sakata"], language, "terms_updated", vars))
        assert local_date(date(2027, 4, 1), language) in words
        assert re.sub(r"https?://\S+", "", words).count("2027-04-01") == 0, words


@pytest.mark.parametrize("office_id", sorted(OFFICES))
@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("name", ["reminder_day_before", "outcome_confirmed"])
def test_every_list_in_the_confirmation_and_the_reminder_comes_under_a_heading(office_id, language, name):
    """A list after a blank line with no heading reads as part of the one above it (the rules of the session
    under 'How to join'): each section of these two messages starts with its heading."""
    for vars in all_samples(OFFICES[office_id])[name]:
        words = text_of(render(OFFICES[office_id], language, name, vars))
        for block in words.split("\n\n")[1:]:
            assert not block.startswith(("・", "- ", "1.")), f"no heading above:\n{block}"


def test_easy_japanese_reads_a_chat_word_out_where_a_message_first_asks_for_it():
    """「予約確認」（よやく かくにん）: a reader who cannot read the kanji still has to send the word, so the first time
    a message quotes a chat word written in kanji, its reading follows."""
    unread = set()
    for name, words in easy_texts():
        for word in ("予約確認", "予約", "データ削除", "最初から", "中止", "戻る"):
            at = words.find(f"「{word}」")
            if at >= 0 and not words.startswith("（", at + len(word) + 2):
                unread.add((name, word, words[at:at + 20]))
    assert not unread, sorted(unread)
