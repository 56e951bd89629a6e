"""Every message a dialog names exists, and renders with StrictUndefined for both offices.

The intake's templates are rendered in every branch (each question, answer and item of both profiles);
the others with values shaped like their services' results. No Flask, database or network.
"""
from __future__ import annotations


import ast
import re
from dataclasses import replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from linebot.v3.messaging import ReplyMessageRequest

from bot.clock import TOKYO
from bot.config import DEFAULT_OFFICES_DIR
from bot.offices import Contact, load_offices
from bot.render import (
    MAX_LABEL,
    MAX_QUICK_REPLY,
    TEMPLATES_DIR,
    Renderer,
    RenderError,
    load_labels,
    template_file,
    text_of,
)
from bot.services.slots import slot_label
from dialogs.effects import Choice
from dialogs.machine import State

ROOT = Path(__file__).resolve().parent.parent
OFFICES = load_offices(DEFAULT_OFFICES_DIR)
MESSAGES = TEMPLATES_DIR / "messages" / "ja"
BASE_URL = "https://madoguchi.example"
STATES = [s.value for s in State]
AT = datetime(2026, 12, 7, 14, 0, tzinfo=TOKYO)


def named_templates() -> dict[str, list[str]]:
    """Template names passed to `say(...)` / `Say(...)` in dialogs/, with where each is used."""
    names: dict[str, list[str]] = {}
    for path in sorted((ROOT / "dialogs").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            first = node.args[0]
            if called in ("say", "Say") and isinstance(first, ast.Constant) and isinstance(first.value, str):
                names.setdefault(first.value, []).append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return names


NAMED = named_templates()


def template_exists(name: str) -> bool:
    return any((MESSAGES / f"{name}{suffix}").is_file() for suffix in (".txt", ".json.j2"))


def test_the_scan_finds_the_intake_templates():
    assert {"consent", "eligibility_question", "checklist_item", "checklist_fix", "ineligible",
            "consent_declined", "help", "not_understood", "miss_contact"} <= set(NAMED)


@pytest.mark.parametrize("name", sorted(NAMED))
def test_every_template_a_dialog_names_exists(name):
    assert template_exists(name), f"{name} (used at {', '.join(NAMED[name])}) has no template"


# -- rendering ------------------------------------------------------------------------------------

def booking(status: str = "requested", action: str = "withdraw", routes: tuple = (),
            phone_opens: dict[str, Any] | None = None, phase: str | None = None) -> dict[str, Any]:
    return {"reference": "ABCD-EFGH", "status": status, "phase": phase, "at": AT, "label": "12/7(月) 14:00", "action": action,
            "routes": routes, "same_day": False, "phone_opens": phone_opens, "timing": {"session_day": False, "cancel_in_chat": True,
                                                           "invitation_sent": False, "called": False}}


def week(slots: bool = True, reason: str | None = None, page: int = 0, pages: int = 1, days: int = 1,
         parts: int = 1) -> dict[str, Any]:
    """A page of week 1 (12/7-12/13): one slot a day from 12/7 on, `days` of them on the page."""
    start = date(2026, 12, 7)
    shown = [AT + timedelta(days=n) for n in range(days)] if slots else []
    return {"week_start": start, "week_end": start + timedelta(days=6), "year": start.year,
            "slots": [{"start": at.isoformat(), "label": slot_label(at), "at": at} for at in shown],
            "closed_days": [{"day": date(2026, 12, 7), "reason": "holiday", "holiday": "祝日"}],
            "closed_ahead": [{"day": date(2026, 12, 9), "reason": "holiday", "holiday": "祝日"},
                             {"day": date(2026, 12, 10), "reason": "year_end", "holiday": None,
                              "until": date(2026, 12, 11)},                      # a run of closed days as one
                             {"day": date(2026, 12, 12), "reason": "blocked", "holiday": None}] if slots else [],
            # week 0's first page: the closed days of the weeks skipped to reach it, named beside the slots
            "closed_before": [{"day": date(2026, 12, 1), "reason": "holiday", "holiday": "祝日", "until": None}]
            if slots else [],
            # days whose booking deadline has passed (the day before's 17:00, as Otaru's), named beside the slots
            "deadline_passed": [{"day": date(2026, 12, 3 + n), "deadline": datetime(2026, 12, 2 + n, 17, tzinfo=TOKYO)}
                                for n in range(2)] if slots else [],
            "reason": reason, "index": 1, "page": page, "pages": pages,
            "first_day": shown[0].date() if shown else start, "last_day": shown[-1].date() if shown else start,
            "part": min(page + 1, parts), "parts": parts,
            "has_prev": True, "has_next": True, "prev_is_week": page == 0,
            "next_is_week": page + 1 == pages, "has_prev_week": True, "has_next_week": True}


HELD = {"ok": True, "start": AT.isoformat(), "at": AT, "label": "12/7(月) 14:00", "expires_at": AT,
        "deadline": None, "form_url": f"{BASE_URL}/form/token"}
# Held minutes before the slot's booking deadline (Friday 17:00 for a Monday slot): the chat names it.
HELD_NEAR_DEADLINE = {**HELD, "deadline": datetime(2026, 12, 4, 17, 0, tzinfo=TOKYO)}


# A date typed alone on a closed day (`TypedSlot.closed_day`): the year end, a holiday, the office's own closure.
CLOSED_DAYS = ({"day": "2026-12-30", "closure": "year_end", "holiday": None},
               {"day": "2027-01-11", "closure": "holiday", "holiday": "成人の日"},
               {"day": "2026-12-10", "closure": "office_closure", "holiday": None})


# The chat words a typed message may be one letter away from (`near` in the miss messages).
NEAR = ("book", "status", "help", "back", "restart", "stop", "delete_data", "lang_en", "lang_easy", "lang_ja")


def samples(office) -> dict[str, list[dict[str, Any]]]:
    """Each template's variable sets, one per branch worth rendering."""
    failing = [(q, answer == "unsure") for q in office.eligibility for answer in q.choices if answer not in q.passing]
    consent = [dict(version=office.current_terms.version, terms_url=f"{BASE_URL}/terms/{office.id}",
                    reconsent=reconsent, brief=brief,
                    changes=[{"version": "2027-04-01", "summary": "第3条を改めました。"}] if reconsent else [],
                    earlier_changes=False, open_booking=booking() if reconsent else None, resuming=False,
                    upcoming=None)
               for reconsent in (False, True) for brief in (False, True)]
    # A version that took effect mid-booking: consent again, then go on where the booking was.
    consent.append({**consent[2], "resuming": True})
    # Versions published one after the other: each one's change, older ones left to the full text.
    consent.append({**consent[2], "earlier_changes": True,
                    "changes": [{"version": "2027-04-01", "summary": "第3条を改めました。"},
                                {"version": "2027-05-01", "summary": "第6条を改めました。"}]})
    # A version published, not in force yet: said to who consents now (they may book a session after it).
    upcoming = {"version": "2027-06-01", "summary": "第8条を改めました。",
                "url": f"{BASE_URL}/terms/{office.id}/2027-06-01"}
    consent += [{**consent[0], "upcoming": upcoming}, {**consent[2], "upcoming": {**upcoming, "summary": None}}]
    return {
        "consent": consent,
        "consent_thanks": [{"resuming": False}, {"resuming": True}],
        "consent_declined": [dict(released=held, booking=open_) for held in (None, HELD)
                             for open_ in (None, booking(), booking("confirmed", "call"))],
        "eligibility_question": [dict(question=q, number=i + 1, total=len(office.eligibility))
                                 for i, q in enumerate(office.eligibility)],
        "checklist_intro": [dict(count=len(office.checklist))],
        "checklist_item": [dict(item=item, number=i + 1, total=len(office.checklist))
                           for i, item in enumerate(office.checklist)],
        "checklist_fix": [dict(item=item) for item in office.checklist],
        "checklist_done": [{}],
        "ineligible": [dict(question=q, unsure=unsure) for q, unsure in failing],
        "help": [dict(state=s, resuming=r, answers=c) for s in STATES for r in (False, True)
                 for c in (("yes", "no", "unsure"), ("yes", "no"))],
        "not_understood": [dict(state=s) for s in STATES] + [dict(state=s, near=w) for s in STATES for w in NEAR]
        + [dict(state=s, closed_day=day) for s in ("awaiting_slot", "awaiting_form") for day in CLOSED_DAYS],
        "miss_contact": [dict(state=s) for s in STATES] + [dict(state="awaiting_slot", near=w) for w in NEAR],
        "idle_hint": [dict(misses=n) for n in (1, 3)] + [dict(misses=1, near=w) for w in NEAR],
        "no_earlier_step": [{}, {"resuming": True}],
        "nothing_in_progress": [{}],
        "stale_button": [dict(state=s, late=late) for s in STATES if s != "idle" for late in (False, True)]
                        + [dict(state="awaiting_consent", terms_changed=True)]
                        + [dict(state=s, consent_word=True) for s in STATES if s not in ("idle", "awaiting_consent")]
                        + [dict(state=s, early_slot=True) for s in STATES if s not in ("idle", "awaiting_slot",
                                                                                       "awaiting_form")],
        "stale_idle": [{}, dict(late=True)],
        "group_hint": [{}],
        "stopped": [{}],
        "resume_offer": [{}],
        "greeting": [{}, dict(in_progress=True)],
        "booking_blocked": [{}],
        "unsupported": [dict(kind=k, in_progress=p, state=s) for k in ("sticker", "location", "image")
                        for p, s in ((False, "idle"), (True, "awaiting_checklist"), (True, "awaiting_form"))],
        "language_switched": [dict(language=lang) for lang in ("ja", "easy", "en")],
        "bookings": [dict(bookings=[], in_progress=p) for p in (False, True)]
                    + [dict(bookings=[booking(), booking("confirmed", "cancel"),
                                      booking("confirmed", "call", ("phone",)), booking("proposed", "proposal"),
                                      booking("confirmed", "call", ("phone",), phase="running"),
                                      booking("confirmed", None, phase="over")],
                            in_progress=False)],
        "already_booked": [dict(booking=booking()), dict(booking=booking("confirmed", "cancel")),
                           dict(booking=booking("confirmed", "call", ("phone",)))],
        "receipt": [dict(receipt=booking())],
        "slots": [dict(page=week()), dict(page=week(days=2, pages=3)), dict(page=week(page=1, pages=3)),
                  dict(page=week(page=2, pages=3, parts=2))]
                 + [dict(page=week(False, r)) for r in
                                        (None, "year_end", "holiday", "notice_passed", "full", "blocked",
                                         "outside_window")],
        "slot_unavailable": [dict(reason=r, deadline=None, closure=None, holiday=None,
                                  alternatives=[{"start": AT.isoformat(), "label": "12/7(月) 14:00"}])
                             for r in ("full", "notice_passed", "past", "outside_window", "closed", "blocked",
                                       "not_a_slot")]
                            + [dict(reason="notice_passed", deadline="2026-12-04T17:00:00+09:00", closure=None,
                                    holiday=None, alternatives=[])]
                            + [dict(reason="closed", deadline=None, closure=c, holiday=h, alternatives=[])
                               for c, h in (("holiday", "成人の日"), ("year_end", None), ("office_closure", None))],
        "slot_declined": [dict(state=s) for s in ("awaiting_slot", "awaiting_form")],
        "form_link": [dict(held=HELD), dict(held=HELD_NEAR_DEADLINE)],
        "hold_expired": [dict(ran_out=r) for r in (True, False)],
        "delete_confirm": [dict(open_booking=b, changed=c, in_progress=p) for b in (None, booking())
                           for c in (False, True) for p in (False, True)],
        "delete_kept": [{}],
        "deleted": [dict(result={"outcome": "deleted", "closed": c})
                    for c in ([], [{**booking(), "closed_as": how}
                                   for how in ("withdrawn", "cancelled", "proposal_declined")])],
        "delete_blocked": [dict(kept=[booking(status, "call", routes)]) for status, routes in
                           (("confirmed", ("phone",)), ("requested", ("phone", "email")))],
        "withdraw_result": [dict(result={"outcome": o, **booking("confirmed", "call", ("phone", "email"))})
                            for o in ("withdrawn", "cancelled", "call", "already", "changed", "declined", "started",
                                      "not_found")],
        "withdraw_confirm": [dict(booking=booking(status, action)) for status, action in
                             (("requested", "withdraw"), ("confirmed", "cancel"), ("proposed", "proposal"))],
        "withdraw_kept": [dict(reference=r, action=a) for r in ("ABCD-EFGH", "")
                          for a in ("withdraw", "cancel", "proposal")],
        "restarted": [dict(in_progress=p, going_on=g, released=h) for p, g, h in
                      ((False, True, None), (True, True, None), (True, True, HELD), (True, False, None),
                       (True, False, HELD))],
        "proposal_result": [dict(result={"outcome": o, **booking("confirmed", "none")})
                            for o in ("confirmed", "declined", "already", "blocked", "not_found")],
    }


def render(office, name: str, vars: dict[str, Any], choices=()) -> list[dict]:
    globals_ = {"office": office, "public_base_url": BASE_URL, "terms_url": f"{BASE_URL}/terms/{office.id}"}
    return Renderer({}).messages("ja", name, {**globals_, **vars}, choices)


def unconfirmed_values(office) -> list[str]:
    contacts: list[Contact] = [office.phone, office.email, office.hours]
    contacts += [r.phone for q in office.eligibility for r in q.redirects]
    return [c.value for c in contacts if c.value and not c.confirmed]


def _cases() -> list[tuple[str, str, int]]:
    return [(office_id, name, i) for office_id, office in OFFICES.items()
            for name, var_sets in samples(office).items() for i in range(len(var_sets))]


def test_every_named_template_has_samples():
    missing = set(NAMED) - set(samples(OFFICES["sakata"]))
    assert not missing, f"add sample variables for {sorted(missing)}"


@pytest.mark.parametrize("office_id,name,i", _cases(), ids=lambda v: str(v))
def test_renders_with_strict_undefined(office_id, name, i):
    office = OFFICES[office_id]
    choices = (Choice(label_key="yes", data="a=answer&at=x&o=sakata&v=yes"),)
    messages = render(office, name, samples(office)[name][i], choices)
    assert 1 <= len(messages) <= 5
    words = text_of(messages)
    assert words.strip()
    assert "None" not in words and "{{" not in words and "{%" not in words
    assert not re.search(r"\n{3,}", words), "no runs of blank lines"
    for value in unconfirmed_values(office):
        assert value not in words
    for message in messages:
        items = message.get("quickReply", {}).get("items", [])
        assert len(items) <= MAX_QUICK_REPLY
        assert all(len(item["action"]["label"]) <= MAX_LABEL for item in items)
    # The client posts these dicts as they are (bot/line_client.py): the SDK's models must accept them.
    request = ReplyMessageRequest.from_dict({"replyToken": "t", "messages": messages})
    assert len(request.messages) == len(messages)



def test_a_message_is_read_from_the_languages_own_file_else_the_japanese_one():
    assert template_file("en", "help") == ("messages/en/help.txt", "text")
    assert template_file("ja", "bookings") == ("messages/ja/bookings.json.j2", "json")
    assert template_file("xx", "help") == ("messages/ja/help.txt", "text")  # no such language: Japanese
    with pytest.raises(RenderError, match="no_such_message"):
        template_file("ja", "no_such_message")
    with pytest.raises(RenderError):
        Renderer(globals={}).messages("ja", "no_such_message", {})

# -- what the intake templates say ----------------------------------------------------------------

@pytest.mark.parametrize("office_id", sorted(OFFICES))
def test_yes_no_steps_number_their_answers_like_the_buttons(office_id):
    office = OFFICES[office_id]
    labels = load_labels("ja")["buttons"]
    for i, question in enumerate(office.eligibility):
        [message] = render(office, "eligibility_question", dict(question=question, number=i + 1, total=5))
        options = "　".join(f"{n}. {labels[c]}" for n, c in enumerate(question.choices, start=1))
        assert message["text"].endswith(options)
        for line in question.detail:
            assert f"・{line}" in message["text"]
    [item] = render(office, "checklist_item", dict(item=office.checklist[0], number=1, total=9))
    assert item["text"].endswith("1. はい　2. いいえ")


@pytest.mark.parametrize("office_id", sorted(OFFICES))
def test_the_brief_consent_repeats_link_and_how_to_but_not_the_summary(office_id):
    office = OFFICES[office_id]
    [full] = render(office, "consent", samples(office)["consent"][0])
    [brief] = render(office, "consent", samples(office)["consent"][1])
    assert office.consent_summary[0] in full["text"] and office.consent_summary[0] not in brief["text"]
    for message in (full["text"], brief["text"]):
        assert f"{BASE_URL}/terms/{office.id}" in message and "「同意する」と送って" in message


def test_the_video_apps_terms_are_named_and_linked_once_the_office_confirms_the_address():
    office = OFFICES["otaru"]
    assert office.video_app.terms_url and not office.video_app.terms_url_confirmed   # not printed by Otaru
    [otaru] = render(office, "consent", samples(office)["consent"][0])
    assert "「ZOOM サービス規約」" in otaru["text"] and "zoom.com" not in otaru["text"]
    confirmed = replace(office, video_app=replace(office.video_app, terms_url_confirmed=True))
    [otaru] = render(confirmed, "consent", samples(confirmed)["consent"][0])
    assert "\nhttps://www.zoom.com/ja/trust/terms/\n" in otaru["text"]
    [sakata] = render(OFFICES["sakata"], "consent", samples(OFFICES["sakata"])["consent"][0])
    assert "サービス規約" not in sakata["text"]


def test_an_unconfirmed_contact_never_shows_even_when_it_has_a_value():
    office = OFFICES["sakata"]
    sneaky = replace(office, phone=Contact("0234-00-0000", "内線", confirmed=False),
                     email=Contact("someone@example.jp", confirmed=False),
                     hours=Contact("平日8:30〜17:15", confirmed=False))
    for name in ("consent_declined", "miss_contact", "booking_blocked", "ineligible"):
        var_sets = samples(sneaky)[name]
        for vars in var_sets:
            words = text_of(render(sneaky, name, vars))
            for value in ("0234-00-0000", "someone@example.jp", "平日8:30〜17:15"):
                assert value not in words
    confirmed = replace(office, phone=Contact("0234-00-0000", confirmed=True))
    assert "0234-00-0000" in text_of(render(confirmed, "consent_declined", dict(released=None, booking=None)))


def test_the_topic_answer_never_shows_the_online_counselling_line():
    office = OFFICES["otaru"]
    topic = next(q for q in office.eligibility if q.redirects)
    for unsure in (False, True):
        words = text_of(render(office, "ineligible", dict(question=topic, unsure=unsure)))
        assert "41#" not in words and office.phone.value not in words
        for redirect in topic.redirects:
            assert redirect.window in words


@pytest.mark.parametrize("office_id", sorted(OFFICES))
def test_the_confirmation_tells_every_notice_of_the_office(office_id):
    office = OFFICES[office_id]
    [message] = render(office, "outcome_confirmed", dict(booking=booking("confirmed", "cancel")))
    assert office.notices and all(f"・{notice}" in message["text"] for notice in office.notices)


# What each office's terms ask of the user before the session, said again when the booking is confirmed:
# Sakata 第12条(2)-(4), Otaru 第10条(2)-(4) and its notice.
BEFORE_THE_SESSION = {
    "no recording": ("録画・録音",),
    "an interpreter or caregiver told in advance": ("通訳", "介助者", "予め"),
    "the app ready and the connection checked": ("相談の前に", "通信環境"),
}


@pytest.mark.parametrize("office_id", sorted(OFFICES))
def test_the_confirmation_tells_what_the_terms_ask_before_the_session(office_id):
    office = OFFICES[office_id]
    caution = text_of(render(office, "outcome_confirmed", dict(booking=booking("confirmed", "cancel"))))
    caution = caution.split("【ご注意】")[1].split("【")[0]
    for rule, words in BEFORE_THE_SESSION.items():
        assert any(all(word in line for word in words) for line in caution.splitlines()), (office_id, rule)


def test_the_greeting_gives_the_sessions_length_as_each_office_does():
    [sakata] = render(OFFICES["sakata"], "greeting", {})
    [otaru] = render(OFFICES["otaru"], "greeting", {})
    assert "1回30分程度" in sakata["text"]                      # 「30分程度」
    assert "1回30分・" in otaru["text"] and "程度" not in otaru["text"]   # 「1回30分」, no extension


def test_the_forms_examples_are_no_offices_real_numbers():
    real = {c.value for office in OFFICES.values() for c in (office.phone, *[r.phone for q in office.eligibility
                                                                              for r in q.redirects]) if c.value}
    paths = sorted((ROOT / "templates" / "forms").glob("errors.*.yaml"))
    assert real and len(paths) >= 3, paths
    for path in paths:
        text = path.read_text(encoding="utf-8")
        assert not [number for number in real if number in text], path.name


def test_page_templates_are_compiled_once_per_process_and_again_when_edited(make_app, tmp_path, monkeypatch):
    """Each app has its own Jinja environment; the pages' compiled code is shared, keyed by the source."""
    from jinja2 import Environment, FileSystemLoader

    compiled: list[str] = []
    real = Environment.compile

    def counting(self, source, name=None, filename=None, raw=False, defer_init=False):
        compiled.append(name)
        return real(self, source, name, filename, raw, defer_init)

    monkeypatch.setattr(Environment, "compile", counting)
    first, second = make_app(), make_app()
    page = "terms/page.html"
    with first.app_context():
        first.jinja_env.get_template(page)
    with second.app_context():
        second.jinja_env.get_template(page)
    assert compiled.count(page) <= 1  # the first app may find it compiled by an earlier test already

    folder = tmp_path / "pages"
    folder.mkdir()
    (folder / "probe.html").write_text("one", encoding="utf-8")
    for app in (first, second):
        app.jinja_env.loader = FileSystemLoader(str(folder))
    with first.app_context():
        assert first.jinja_env.get_template("probe.html").render() == "one"
    (folder / "probe.html").write_text("two", encoding="utf-8")
    with second.app_context():
        assert second.jinja_env.get_template("probe.html").render() == "two"
    assert compiled.count("probe.html") == 2


# -- house wording of the Japanese messages -------------------------------------------------------

# Wording the job seeker must not read in the Japanese and easy-Japanese messages and the form's Japanese
# pages, with the reason: each entry came with a fix, and the rest already say it the kept way.
UNWANTED_JA = {
    "ご都合がつかなかった": "the office's own 都合 takes no honorific ご (the user's ご都合 does)",
    "相談していただく": "honorific ご相談いただく, as elsewhere",
    "すみません": "a public office apologises with 申し訳ありません",
    "チャット": "the messages call the conversation このトーク",
    "予約手続き": "the messages say 予約の手続き",
    "途中のまま": "the messages say 途中になっています",
    "キャンセルとみなされ、": "one subject: the office みなし and お断りする, as the receipt says it",
    "止まったところから、": "each of the two answers gets its verb (続けられ / やり直せます)",
    "」で止まったところ": "say the resume buttons are pressed (を押すと), by their labels",
    "では予約を": "two では in one clause (このアカウントでは、グループ…では)",
    "あらためて": "the adverb is written 改めて (公用文作成の考え方), as the other messages do",
    "今は": "the messages and pages write いま in kana, as in いまは・いまの質問",
    "今の": "the messages and pages write いま in kana, as in いまは・いまの質問",
    "でほかの枠をご覧": "say which button to press (を押すと), as the easy text does",
    "「次の週」で次の週": "say the button's label from labels.yaml and that it is pressed, not 次の週 twice",
    "ご連絡いただいた受付番号": "the user called about the booking, not about its number (ご連絡をいただき、受付番号…)",
    "誠に申し訳ありませんが、": "one apology per message, after the news (outcome_cancelled_by_office said it twice)",
    "希望日時:": "the receipt says ご希望の日時, as the form's done page beside it and every message do",
    "）は、とりけしました": "easy: a released hold is とって おくのを やめる (as 仮押さえ is とって おく), not a cancelled booking",
}


@pytest.mark.parametrize("unwanted", sorted(UNWANTED_JA))
def test_the_japanese_messages_keep_the_house_wording(unwanted):
    files = [path for folder in (MESSAGES, MESSAGES.parent / "easy") for path in sorted(folder.iterdir())]
    files += sorted((TEMPLATES_DIR / "forms").glob("*.ja.yaml"))
    found = [f"{path.parent.name}/{path.name}" for path in files
             if path.is_file() and unwanted in path.read_text(encoding="utf-8")]
    assert not found, f"「{unwanted}」 in {found}: {UNWANTED_JA[unwanted]}"


def test_what_the_job_seeker_reads_calls_the_service_by_its_one_name():
    """オンライン職業相談 (the name of the terms, the greeting and the form's heading), never a shorter オンライン相談.
    Staff's words (staff cards and replies, the decline reasons' labels) are not the job seeker's."""
    pages = sorted((TEMPLATES_DIR / "forms").glob("*.ja.yaml"))
    messages = [path for path in sorted(MESSAGES.glob("*.txt")) if not path.name.startswith("staff_")]
    found = [path.name for path in pages + messages if "オンライン相談" in path.read_text(encoding="utf-8")]
    assert not found


@pytest.mark.parametrize("office_id", sorted(OFFICES))
def test_the_relay_service_is_said_in_two_sentences_with_its_address_on_a_line_of_its_own(office_id):
    """Read on a phone: what the user may do first, then what the service is, and a link LINE can open."""
    office = OFFICES[office_id]
    words = text_of(render(office, "miss_contact", samples(office)["miss_contact"][0]))
    assert "「電話リレーサービス」を使ってお電話いただけます。通訳オペレーター" in words
    assert "\nhttps://nftrs.or.jp/\n" in words + "\n"


def test_the_japanese_messages_name_the_buttons_they_carry_by_the_labels_they_carry(monkeypatch):
    """A button renamed in labels.yaml is renamed in the text that tells the user to press it."""
    import bot.render
    renamed = {**load_labels("ja")}
    renamed["buttons"] = {**renamed["buttons"], "accept_proposal": "この日時にする", "decline_proposal": "見送る",
                          "cancel": "取り消す"}
    monkeypatch.setattr(bot.render, "load_labels", lambda language: renamed)
    office = OFFICES["otaru"]   # cancels in the chat
    text, template = render(office, "outcome_proposed", dict(
        booking=booking("proposed", "proposal"), original=AT, accept_data="a=accept", decline_data="a=decline"))
    assert "「この日時にする」を" in text["text"] and "「見送る」を押して" in text["text"]
    assert [a["label"] for a in template["template"]["actions"]] == ["この日時にする", "見送る"]
    assert [a["displayText"] for a in template["template"]["actions"]] == ["この日時にする", "見送る"]
    confirmed = text_of(render(office, "outcome_confirmed", dict(booking=booking("confirmed", "cancel"))))
    assert "「取り消す」ボタンから" in confirmed


def test_help_names_the_resume_buttons_by_their_labels(monkeypatch):
    import bot.render
    renamed = {**load_labels("ja")}
    renamed["buttons"] = {**renamed["buttons"], "continue": "再開する", "fresh": "やり直す"}
    monkeypatch.setattr(bot.render, "load_labels", lambda language: renamed)
    [help_] = render(OFFICES["sakata"], "help", dict(state="idle", resuming=True, answers=("yes", "no")))
    assert "「再開する」を押すと止まったところから続けられ、「やり直す」を押すと始めから" in help_["text"]
