"""Office profiles: the shipped ones load, broken ones are refused naming file and field, and the CLI."""
from __future__ import annotations

import ast
import io
import json
import re
import shutil
import tokenize
from collections.abc import Callable
from datetime import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from flask import Flask

from bot.cli.offices import offices_group
from bot.config import DEFAULT_OFFICES_DIR, PROJECT_ROOT
from bot.offices import (
    FORM_FIELDS,
    Contact,
    Office,
    ProfileError,
    PushHours,
    check_offices,
    load_offices,
)

OFFICES_PACKAGE = PROJECT_ROOT / "bot" / "offices"


@pytest.fixture(scope="module")
def offices() -> dict[str, Office]:
    return load_offices(DEFAULT_OFFICES_DIR)


def copy_profiles(tmp_path: Path) -> Path:
    directory = tmp_path / "offices"
    shutil.copytree(DEFAULT_OFFICES_DIR, directory)
    return directory


def edit_profile(tmp_path: Path, name: str, change: Callable[[dict[str, Any]], None]) -> Path:
    """A copy of the shipped profiles where `name`'s parsed YAML went through `change`."""
    directory = copy_profiles(tmp_path)
    path = directory / f"{name}.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return directory


def problems_of(directory: Path) -> str:
    with pytest.raises(ProfileError) as caught:
        load_offices(directory)
    return str(caught.value)


# --------------------------------------------------------------------------- the shipped profiles

def test_both_shipped_profiles_load(offices: dict[str, Office]) -> None:
    assert set(offices) == {"sakata", "otaru"}
    sakata, otaru = offices["sakata"], offices["otaru"]
    assert (sakata.name, sakata.formal_name, sakata.controller) == (
        "ハローワーク酒田", "酒田公共職業安定所", "酒田公共職業安定所長")
    assert (otaru.name, otaru.formal_name, otaru.controller) == (
        "ハローワーク小樽", "小樽公共職業安定所", "小樽公共職業安定所長")
    assert sakata.enabled and otaru.enabled
    assert sakata.court == "山形地方裁判所"
    assert otaru.court == "札幌地方・家庭裁判所小樽支部"


def test_check_gives_warnings_for_unconfirmed_values_but_no_errors() -> None:
    offices, warnings = check_offices(DEFAULT_OFFICES_DIR)
    assert set(offices) == {"sakata", "otaru"}
    text = "\n".join(warnings)
    for expected in (
        "sakata.yaml: contacts.phone: to be confirmed by the office",
        "sakata.yaml: contacts.email: to be confirmed by the office",
        "sakata.yaml: contacts.hours: to be confirmed by the office",
        "sakata.yaml: video_app.name: to be confirmed by the office",
        "sakata.yaml: booking.notice: to be confirmed by the office",
        "sakata.yaml: cancellation.routes: users cancel by phone",
        "otaru.yaml: contacts.hours: to be confirmed by the office",
        "otaru.yaml: video_app.terms_url: to be confirmed by the office",
        "otaru.yaml: booking.notice: to be confirmed by the office",
        "otaru.yaml: cancellation: to be confirmed by the office",
        "otaru.yaml: eligibility[1].redirects[0].phone: to be confirmed by the office",
    ):
        assert expected in text
    assert "otaru.yaml: contacts.phone" not in text
    assert "otaru.yaml: contacts.email" not in text
    assert "sakata.yaml: cancellation: " not in text  # the terms say: by phone


def test_contacts_are_never_invented(offices: dict[str, Office]) -> None:
    sakata, otaru = offices["sakata"], offices["otaru"]
    for contact in (sakata.phone, sakata.email, sakata.hours, otaru.hours):
        assert contact == Contact(None, None, False)
    assert otaru.phone.value == "0134-32-8689" and otaru.phone.confirmed
    assert "41#" in (otaru.phone.note or "")
    assert otaru.email.value == "s-otaru.sm@hkdrdk.go.jp" and otaru.email.confirmed
    assert otaru.documents_route and "s-otaru.sm@hkdrdk.go.jp" in otaru.documents_route
    assert sakata.documents_route is None
    assert sakata.other_routes and otaru.other_routes


def test_video_apps(offices: dict[str, Office]) -> None:
    sakata, otaru = offices["sakata"].video_app, offices["otaru"].video_app
    assert "ハローワークが指定する" in sakata.name and not sakata.confirmed
    assert otaru.name == "Zoom" and otaru.confirmed and otaru.account_needed is False
    assert otaru.terms_name == "ZOOM サービス規約"
    assert otaru.terms_url == "https://www.zoom.com/ja/trust/terms/" and not otaru.terms_url_confirmed


def test_sakata_asks_one_category_question_with_five_detail_lines(offices: dict[str, Office]) -> None:
    questions = offices["sakata"].eligibility
    assert [q.id for q in questions] == ["registered", "category", "mypage", "device_app", "continuing"]
    with_detail = [q for q in questions if q.detail]
    assert [q.id for q in with_detail] == ["category"]
    category = with_detail[0]
    assert len(category.detail) == 5
    for word in ("3年以内", "UIJターン", "障害者手帳", "長期療養者就職支援事業", "マザーズコーナー"):
        assert sum(word in line for line in category.detail) == 1
    assert category.passing == ("yes",)
    assert "どれに当てはまるか" in category.text  # asks whether one applies, never which


def test_otaru_topic_question_is_combined_unrecorded_and_names_windows_without_phones(
        offices: dict[str, Office]) -> None:
    otaru = offices["otaru"]
    assert [q.id for q in otaru.eligibility] == ["registered", "topic", "device_zoom", "continuing", "need"]
    topic = next(q for q in otaru.eligibility if q.redirects)
    assert topic.id == "topic"
    assert topic.record is False
    assert topic.passing == ("no",)
    assert len(topic.detail) == 3
    assert [r.topic for r in topic.redirects] == ["新規学卒者の相談", "障がい者の相談", "職業訓練の相談"]
    for redirect in topic.redirects:
        assert redirect.window.startswith("ハローワーク小樽")
        assert redirect.phone == Contact(None, None, False)
        assert "41#" not in redirect.window
    assert all(q.record for q in otaru.eligibility if q is not topic)


def test_every_question_says_what_to_do_instead(offices: dict[str, Office]) -> None:
    for office in offices.values():
        for question in office.eligibility:
            assert set(question.choices) == {"yes", "no", "unsure"}
            assert question.on_fail and question.on_unsure


def test_checklists_follow_each_office_documents(offices: dict[str, Office]) -> None:
    sakata = [item.id for item in offices["sakata"].checklist]
    otaru = [item.id for item in offices["otaru"].checklist]
    assert sakata == ["secure_device", "safe_connection", "os_supported", "firewall", "no_file_sharing",
                      "antivirus", "app_ready", "software_updated", "private_room"]
    assert otaru == ["zoom_ready", "os_supported", "firewall", "software_updated", "no_free_wifi", "private_room"]
    antivirus = next(item for item in offices["sakata"].checklist if item.id == "antivirus")
    assert "有償版相当" in antivirus.text
    assert all(item.fix for office in offices.values() for item in office.checklist)


def test_schedules_booking_and_cancellation(offices: dict[str, Office]) -> None:
    sakata, otaru = offices["sakata"], offices["otaru"]
    assert sakata.schedule.weekdays == (0,)
    assert sakata.schedule.starts == (time(14), time(15), time(16))
    assert otaru.schedule.weekdays == (0, 1, 2, 3, 4)
    assert [t.strftime("%H:%M") for t in otaru.schedule.starts] == [
        "10:00", "10:30", "11:00", "11:30", "13:00", "13:30", "14:00", "14:30", "15:00", "15:30"]
    for office, days in ((sakata, 3), (otaru, 1)):
        assert office.schedule.duration_minutes == 30 and office.schedule.capacity == 1
        assert office.schedule.closures == ()
        notice = office.booking.notice
        assert (notice.kind, notice.calendar_days, notice.deadline, notice.confirmed) == (
            "business_day_before", days, time(17), False)
        assert (office.booking.window_weeks, office.booking.hold_minutes) == (8, 15)
        assert office.no_show_minutes == 10
    assert "利用回数に制限" in otaru.booking.usage_limit_note
    assert (sakata.cancellation.in_chat, sakata.cancellation.routes, sakata.cancellation.same_day_routes,
            sakata.cancellation.confirmed) == (False, ("phone",), ("phone",), True)
    assert (otaru.cancellation.in_chat, otaru.cancellation.in_chat_until_days_before, otaru.cancellation.routes,
            otaru.cancellation.same_day_routes, otaru.cancellation.confirmed) == (
        True, 1, ("phone", "email"), ("phone",), False)


def test_form_fields_terms_and_settings(offices: dict[str, Office]) -> None:
    sakata, otaru = offices["sakata"], offices["otaru"]
    assert sakata.form_fields == ("name", "name_kana", "seeker_number", "phone", "category", "companion",
                                  "companion_detail", "mypage_email_confirmed")
    assert otaru.form_fields == ("name", "name_kana", "birth_date", "seeker_number", "phone", "consultation",
                                 "companion", "companion_detail")
    assert [(t.version, t.file) for t in sakata.terms] == [
        ("2022-07-01", None), ("2022-09-15", None), ("2023-11-01", "sakata/2023-11-01.md")]
    assert [(t.version, t.file) for t in otaru.terms] == [("2023-10-01", "otaru/2023-10-01.md")]
    assert sakata.current_terms.version == "2023-11-01"
    for office in (sakata, otaru):
        assert office.retention == {"personal_details_days_after_session": 90, "closed_requests_days": 30,
                                    "drafts_days": 1, "dedupe_days": 7, "outbox_days": 30,
                                    "unfollowed_days": 30}
        assert office.staff_cards == {"new_request": True, "withdrawn": True, "cancelled": True, "expired": True}
        assert office.reminders == {"user_day_before": True}


def test_pushes_wait_for_the_morning_by_default_and_in_both_profiles(offices: dict[str, Office]) -> None:
    """Nothing that can wait is pushed at night (public-sector practice): 08:00-21:00, Asia/Tokyo."""
    assert Office.__dataclass_fields__["push_hours"].default_factory() == PushHours(time(8), time(21), 4)
    for office in offices.values():
        assert office.push_hours == PushHours(start=time(8), end=time(21), urgent_notice_hours=4)
        assert office.quota_reserve == 20   # messages of the month kept for the job seekers


def test_consent_summaries_cover_the_terms(offices: dict[str, Office]) -> None:
    for office_id, words in {
        "sakata": ("無料", "従量制", "30分", "録画・録音", "個室", "通訳", "有償版相当", "電話", "10分",
                   "記録", "脅迫", "職業安定法"),
        "otaru": ("無料", "従量制", "30分", "延長", "録画・録音", "個室", "通訳", "フリーWi-Fi", "指名",
                  "利用回数", "メール", "当日", "10分", "記録", "脅迫", "職業安定法", "ZOOM サービス規約"),
    }.items():
        summary = "\n".join(offices[office_id].consent_summary)
        for word in words:
            assert word in summary, (office_id, word)
        # The 要約 says only what the terms say: how this bot takes details (the form, not LINE) is its own note.
        assert "LINE" not in summary and "フォーム" not in summary, office_id


def test_otaru_words_follow_the_notice_in_every_language(offices: dict[str, Office]) -> None:
    """The notice asks 「飲食店等のフリーWi-Fiの使用はご遠慮ください」 (a request, not "cannot be used") and prints
    「0134-32-8689 部門コード41#」 only: the bot claims no recorded guidance the notice does not mention."""
    for language, wifi, guidance in (("ja", "フリーWi-Fiの使用はご遠慮ください", "音声ガイダンス"),
                                     ("en", "Please do not use free Wi-Fi", "guidance"),
                                     ("easy", "むりょうの Wi-Fiは つかわないで ください", "音声")):
        otaru = offices["otaru"].localized(language)
        summary = "\n".join(otaru.consent_summary)
        assert wifi in summary, language
        assert not re.search(r"Wi-Fi[^。.]*(使えません|cannot be used|つかえません)", summary), language
        assert "41#" in otaru.phone.note and guidance not in otaru.phone.note, language


def test_after_request_follows_the_terms(offices: dict[str, Office]) -> None:
    assert "電話" in offices["sakata"].after_request and "会議招待メール" in offices["sakata"].after_request
    assert "ミーティングID" in offices["otaru"].after_request and "パスワード" in offices["otaru"].after_request


def test_terms_files_keep_the_text_with_listed_corrections() -> None:
    terms = PROJECT_ROOT / "templates" / "terms"
    sakata = (terms / "sakata" / "2023-11-01.md").read_text(encoding="utf-8")
    otaru = (terms / "otaru" / "2023-10-01.md").read_text(encoding="utf-8")
    assert "ハローワークプラザさかた マザーズコーナー" in sakata and "まザース" not in sakata
    assert "最新のバージョンに更新" in sakata and "バージョンン" not in sakata
    assert "職業安定法第5条の4" in sakata and "職業安定法第5条の4" in otaru  # the old number, as printed
    assert "山形地方裁判所" in sakata and "札幌地方・家庭裁判所小樽支部" in otaru
    assert "ソフト等の一切" in otaru and "等的一切" not in otaru
    assert "オンライン職業相談のお知らせ" not in otaru  # the notice is not part of the terms
    corrections = (terms / "CORRECTIONS.md").read_text(encoding="utf-8")
    for listed in ("まザース", "バージョン", "第 1 2 条", "等的一切"):
        assert listed in corrections
    # The form's privacy notice (the bot's wording) cites the current number: the offices are told they differ.
    form = (PROJECT_ROOT / "templates" / "forms" / "page.ja.yaml").read_text(encoding="utf-8")
    assert "職業安定法第5条の5に基づき" in form and "「職業安定法第5条の5に基づき」" in corrections


def test_profile_texts_have_no_folded_line_spaces(offices: dict[str, Office]) -> None:
    """A folded YAML block (>-) would put a space between Japanese sentences."""
    between_japanese = re.compile(r"[\u3000-\u9fff\uff00-\uffef] [\u3000-\u9fff\uff00-\uffef]")
    names_with_a_space = ("ハローワークプラザさかた マザーズコーナー", "ハローワーク小樽 ")

    def texts(value: Any) -> list[str]:
        if isinstance(value, str):
            return [value]
        if isinstance(value, dict):
            return [t for item in value.values() for t in texts(item)]
        if isinstance(value, list):
            return [t for item in value for t in texts(item)]
        return []

    for path in DEFAULT_OFFICES_DIR.glob("*.yaml"):
        profile = yaml.safe_load(path.read_text(encoding="utf-8"))
        profile.get("translations", {}).pop("easy", None)  # やさしい日本語 separates its phrases by design
        for text in texts(profile):
            for name in names_with_a_space:
                text = text.replace(name, "")
            assert not between_japanese.search(text), (path.name, text)


# --------------------------------------------------------------------------- refused profiles

def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """Set a value at a dotted path with [i] indexes, e.g. "schedule.starts[2]"."""

    def change(data: dict[str, Any]) -> None:
        *parents, last = re.findall(r"[^.\[\]]+", path)
        target: Any = data
        for key in parents:
            target = target[int(key)] if key.isdigit() else target[key]
        target[int(last) if last.isdigit() else last] = value

    return change


def _delete(path: str) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target: Any = data
        for key in parents:
            target = target[key]
        del target[last]

    return change


@pytest.mark.parametrize(("change", "expected"), [
    (_set("id", "Otaru"), "otaru.yaml: id: 'Otaru' must match ^[a-z][a-z0-9_]*$"),
    (_set("id", "sakata"), "otaru.yaml: id: 'sakata' does not match the file name otaru.yaml"),
    (_delete("court"), "otaru.yaml: court: missing required field"),
    (_delete("schedule.starts"), "otaru.yaml: schedule.starts: missing required field"),
    (_set("colour", "blue"), "otaru.yaml: colour: unknown field"),
    (_set("eligibility[1].recorded", False), "otaru.yaml: eligibility[1].recorded: unknown field"),
    (_set("terms[0].version", "v2"), "otaru.yaml: terms[0].version: not a YYYY-MM-DD date"),
    (_set("terms[0].version", "2023-02-30"), "otaru.yaml: terms[0].version: not a YYYY-MM-DD date"),
    (_set("eligibility[0].passing", ["maybe"]), "otaru.yaml: eligibility[0].passing[0]: 'maybe' is not one of"),
    (_set("eligibility[0].choices", ["yes", "no"]) , None),  # passing still within choices: fine
    (_set("form_fields", ["name", "address"]), "otaru.yaml: form_fields[1]: 'address' is not one of"),
    (_set("schedule.starts[2]", "25:00"), "otaru.yaml: schedule.starts[2]: not a HH:MM time"),
    (_set("schedule.weekdays", [0, 7]), "otaru.yaml: schedule.weekdays[1]: must be between 0 and 6"),
    (_set("booking.notice.kind", "calendar_days_before"), "otaru.yaml: booking.notice.kind: unknown kind"),
    (_set("terms[0].file", "otaru/2099-01-01.md"), "otaru.yaml: terms[0].file: no such file"),
    (_set("terms[0].file", None), "otaru.yaml: terms[0].file: the current version 2023-10-01 needs its text"),
    (_set("cancellation.same_day_routes", ["email"]) , None),  # email is among routes: fine
    (_set("cancellation.routes", ["phone"]),
     None),  # same-day phone is still among routes: fine
    (_set("cancellation.routes", ["fax"]), "otaru.yaml: cancellation.routes[0]: 'fax' is not one of"),
    (_set("contacts.email.value", "not-an-address"), "otaru.yaml: contacts.email.value"),
    (_set("checklist[1].id", "topic"), "otaru.yaml: checklist[1].id: 'topic' is already used by eligibility[1]"),
    (_set("retention.drafts_days", "one"), "otaru.yaml: retention.drafts_days: must be a whole number"),
    (_set("push_hours.start", "8:00"), "otaru.yaml: push_hours.start: not a HH:MM time"),
    (_set("push_hours.end", "07:00"), "otaru.yaml: push_hours.end: 07:00 is not after start 08:00"),
    (_set("push_hours.end", "10:00"), "otaru.yaml: push_hours.end: pushes need at least 4 hours a day"),
    (_set("push_hours.urgent_notice_hours", 30), "otaru.yaml: push_hours.urgent_notice_hours: must be between 0"),
    (_set("push_hours.quiet", True), "otaru.yaml: push_hours.quiet: unknown field"),
    (_set("push_hours.staff_cards_on_closed_days", "yes"),
     "otaru.yaml: push_hours.staff_cards_on_closed_days: must be true or false"),
    (_delete("push_hours"), None),  # the default hours
    (_set("push_hours", {"start": "00:00", "end": "24:00"}), None),  # any hour (the benchmark's profiles)
    (_set("push_hours.end", "24:30"), "otaru.yaml: push_hours.end: not a HH:MM time"),
    (_set("quota_reserve", -1), "otaru.yaml: quota_reserve: must be between 0 and 100000"),
    (_delete("quota_reserve"), None),  # the default reserve
    # LINE counts UTF-16 units: 2,100 emoji are 4,200 of them, over the office's 4,000 in one message.
    (_set("checklist[0].fix", "🍎" * 2100), "otaru.yaml: checklist[0].fix: 4201 characters"),
    (_set("checklist[0].fix", "あ" * 2100), None),
    # Names the chat repeats in many messages: one long name would make them too long for LINE.
    (_set("name", "ハローワーク" * 11), "otaru.yaml: name: 66 characters; keep it to at most 60"),
    (_set("video_app.name", "Z" * 61), "otaru.yaml: video_app.name: 61 characters"),
    (_set("translations.en.name", "H" * 66), "otaru.yaml: translations.en.name: 66 characters"),
    (_set("name", "ハローワーク" * 10), None),
    (_set("handoff", {"invitation": {"label": "招待" * 200, "how": "送ります。"}}),
     "otaru.yaml: handoff.invitation.label: 400 characters"),
    # How the invitation goes is said in every staff card of a confirmed booking and the group's answer: about
    # 10,000 characters would make a card bigger than LINE's 30 KB.
    (_set("handoff", {"invitation": {"label": "招待", "how": "送ります。" * 2000}}),
     "otaru.yaml: handoff.invitation.how: 10000 characters; keep it to at most 500"),
    (_set("handoff", {"invitation": {"label": "招待", "how": "🍎" * 251}}),
     "otaru.yaml: handoff.invitation.how: 502 characters"),
    (_set("handoff", {"invitation": {"label": "招待", "how": "送" * 500}}), None),
    # Said instead of `how` on the session's own day: held as `how` is.
    (_set("handoff", {"invitation": {"label": "招待", "how": "送ります。", "how_on_the_day": "送ります。" * 101}}),
     "otaru.yaml: handoff.invitation.how_on_the_day: 505 characters; keep it to at most 500"),
])
def test_a_broken_profile_is_refused_naming_file_and_field(
        tmp_path: Path, change: Callable[[dict[str, Any]], None], expected: str | None) -> None:
    directory = edit_profile(tmp_path, "otaru", change)
    if expected is None:
        assert "otaru" in load_offices(directory)
        return
    assert expected in problems_of(directory)


def test_passing_must_be_among_the_choices(tmp_path: Path) -> None:
    def change(data: dict[str, Any]) -> None:
        data["eligibility"][0]["choices"] = ["no", "unsure"]

    message = problems_of(edit_profile(tmp_path, "sakata", change))
    assert "sakata.yaml: eligibility[0].passing[0]: 'yes' is not among the choices" in message


def test_an_office_id_must_equal_the_file_stem(tmp_path: Path) -> None:
    directory = copy_profiles(tmp_path)
    (directory / "otaru.yaml").rename(directory / "otaru_2.yaml")
    assert "otaru_2.yaml: id: 'otaru' does not match the file name otaru_2.yaml" in problems_of(directory)


def test_a_bad_file_stem_is_a_bad_id(tmp_path: Path) -> None:
    directory = edit_profile(tmp_path, "otaru", _set("id", "2otaru"))
    (directory / "otaru.yaml").rename(directory / "2otaru.yaml")
    assert "2otaru.yaml: id: '2otaru' must match" in problems_of(directory)


def test_yaml_pitfalls_are_explained(tmp_path: Path) -> None:
    directory = copy_profiles(tmp_path)
    path = directory / "otaru.yaml"
    text = path.read_text(encoding="utf-8")
    text = text.replace('starts: ["10:00", "10:30", "11:00"', 'starts: ["10:00", "10:30", 11:00', 1)
    text = text.replace('passing: ["yes"]', "passing: [yes]", 1)
    path.write_text(text, encoding="utf-8")
    message = problems_of(directory)
    assert "otaru.yaml: schedule.starts[2]: not a HH:MM time (quote it" in message
    assert "otaru.yaml: eligibility[0].passing[0]: must be a string, not true/false (quote yes" in message


def test_a_key_given_twice_is_refused(tmp_path: Path) -> None:
    directory = copy_profiles(tmp_path)
    path = directory / "sakata.yaml"
    path.write_text(path.read_text(encoding="utf-8") + "\ncourt: 東京地方裁判所\n", encoding="utf-8")
    message = problems_of(directory)
    assert "sakata.yaml: not valid YAML:" in message and "duplicate key 'court'" in message


def test_every_problem_of_every_file_is_reported(tmp_path: Path) -> None:
    def break_otaru(data: dict[str, Any]) -> None:
        del data["court"]
        data["schedule"]["capacity"] = 0
        data["form_fields"].append("address")

    directory = edit_profile(tmp_path, "otaru", break_otaru)
    sakata = directory / "sakata.yaml"
    sakata.write_text(sakata.read_text(encoding="utf-8").replace("no_show_minutes: 10", "no_show_minutes: ten"),
                      encoding="utf-8")
    with pytest.raises(ProfileError) as caught:
        check_offices(directory)
    problems = caught.value.problems
    assert any(p.startswith("otaru.yaml: court: missing required field") for p in problems)
    assert any(p.startswith("otaru.yaml: schedule.capacity: must be between") for p in problems)
    assert any(p.startswith("otaru.yaml: form_fields[8]: 'address'") for p in problems)
    assert any(p.startswith("sakata.yaml: no_show_minutes: must be a whole number") for p in problems)


def test_an_empty_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="no office profiles"):
        load_offices(tmp_path)


def test_a_mistyped_offices_dir_is_named_as_such_not_as_an_empty_folder(tmp_path: Path) -> None:
    """OFFICES_DIR pointing nowhere (or at a file) says what is wrong with the setting and how to fix it."""
    with pytest.raises(ProfileError) as missing:
        load_offices(tmp_path / "offces")
    assert str(missing.value) == (f"{tmp_path / 'offces'}: does not exist: OFFICES_DIR names the folder that holds "
                                  "the office profiles (<id>.yaml); unset it to serve the shipped ones")
    (tmp_path / "sakata.yaml").write_text("id: sakata\n", encoding="utf-8")
    with pytest.raises(ProfileError, match="sakata.yaml: is not a folder: OFFICES_DIR names the folder"):
        load_offices(tmp_path / "sakata.yaml")


def test_a_folder_holding_only_yml_profiles_says_to_rename_them(tmp_path: Path) -> None:
    (tmp_path / "nayoro.yml").write_text("id: nayoro\n", encoding="utf-8")
    with pytest.raises(ProfileError) as caught:
        load_offices(tmp_path)
    assert caught.value.problems[0] == ("nayoro.yml: not read: an office profile's file name ends in .yaml "
                                        "(rename it nayoro.yaml)")


def test_known_form_fields_match_the_interface() -> None:
    assert set(FORM_FIELDS) == {"name", "name_kana", "seeker_number", "birth_date", "phone", "category",
                                "consultation", "companion", "companion_detail", "mypage_email_confirmed"}


@pytest.mark.parametrize("module", sorted(OFFICES_PACKAGE.glob("*.py")), ids=lambda path: path.name)
def test_the_loader_stays_plain_python(module: Path) -> None:
    source = module.read_text(encoding="utf-8")
    imported = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.module.startswith("bot.offices."):
            imported.add(node.module.split(".")[0])
    assert not imported & {"flask", "linebot", "dialogs", "sqlalchemy"}
    assert imported <= {"__future__", "re", "collections", "dataclasses", "datetime", "pathlib", "typing",
                        "unicodedata", "yaml"}
    strings = [tok.string for tok in tokenize.generate_tokens(io.StringIO(source).readline)
               if tok.type == tokenize.STRING]
    assert not [s for s in strings if re.search(r"[\u3040-\u30ff\u4e00-\u9fff]", s)]


# --------------------------------------------------------------------------- the CLI

def cli(offices_dir: Path | None = None):  # type: ignore[no-untyped-def]
    app = Flask(__name__)
    if offices_dir is not None:
        app.config["OFFICES_DIR"] = str(offices_dir)
    return app.test_cli_runner()


def test_cli_check_passes_with_warnings() -> None:
    result = cli().invoke(offices_group, ["check"])
    assert result.exit_code == 0, result.output
    assert "warning: sakata.yaml: contacts.phone: to be confirmed by the office" in result.output
    assert "2 office profile(s) OK (otaru, sakata)" in result.output


def test_cli_check_fails_on_errors_naming_file_and_field(tmp_path: Path) -> None:
    directory = edit_profile(tmp_path, "otaru", _set("schedule.starts[2]", "11:0"))
    result = cli(directory).invoke(offices_group, ["check"])
    assert result.exit_code == 1
    assert "error: otaru.yaml: schedule.starts[2]: not a HH:MM time" in result.output


def test_cli_show_unknown_office_is_misuse() -> None:
    result = cli().invoke(offices_group, ["show", "kyoto", "--json"])
    assert result.exit_code == 2
    assert "unknown office 'kyoto'" in result.output


def test_cli_show_json_lists_the_steps_in_order() -> None:
    result = cli().invoke(offices_group, ["show", "sakata", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["office"] == "sakata" and data["terms_version"] == "2023-11-01"
    steps = data["steps"]
    assert [s["step"] for s in steps] == ["consent"] + ["eligibility"] * 5 + ["checklist"] * 9 + ["slot", "form"]
    consent = steps[0]
    assert consent["version"] == "2023-11-01"
    assert consent["choices"] == ["同意する", "同意しない"] and consent["passing"] == ["同意する"]
    assert consent["summary"] and all(isinstance(line, str) for line in consent["summary"])
    category = steps[2]
    assert category["id"] == "category" and len(category["detail"]) == 5
    assert category["choices"] == ["yes", "no", "unsure"] and category["passing"] == ["yes"]
    assert category["labels"] == {"yes": "はい", "no": "いいえ", "unsure": "わからない"}
    for step in steps[6:15]:
        assert set(step) >= {"id", "text", "choices", "passing", "fix"}
        assert step["choices"] == ["yes", "no"] and step["passing"] == ["yes"]
    slot = steps[15]
    assert slot["schedule"]["weekdays"] == [0]
    assert slot["schedule"]["starts"] == ["14:00", "15:00", "16:00"]
    assert slot["notice"] == {"kind": "business_day_before", "calendar_days": 3, "deadline": "17:00",
                              "confirmed": False}


def test_cli_show_json_for_otaru_hides_unconfirmed_phones() -> None:
    result = cli().invoke(offices_group, ["show", "otaru", "--json"])
    assert result.exit_code == 0, result.output
    topic = next(s for s in json.loads(result.stdout)["steps"] if s["id"] == "topic")
    assert topic["passing"] == ["no"] and topic["record"] is False
    assert [r["phone"] for r in topic["redirects"]] == [None, None, None]


def test_cli_show_without_json_prints_an_outline() -> None:
    result = cli().invoke(offices_group, ["show", "otaru"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("ハローワーク小樽 (otaru), terms 2023-10-01")


# --------------------------------------------------------------------------- an operator's mistakes (a third office)

def test_an_office_id_longer_than_the_database_keeps_is_refused(tmp_path: Path) -> None:
    long_id = "otaru_" + "x" * 27   # 33 characters: every table keeps office ids in 32
    directory = edit_profile(tmp_path, "otaru", _set("id", long_id))
    (directory / "otaru.yaml").rename(directory / f"{long_id}.yaml")
    assert f"{long_id}.yaml: id: '{long_id}' is longer than 32 characters" in problems_of(directory)


@pytest.mark.parametrize("weekdays,where,day", [([5], "[0]", "Saturday"), ([1, 6], "[1]", "Sunday")])
def test_a_weekend_session_day_is_refused(tmp_path: Path, weekdays: list[int], where: str, day: str) -> None:
    directory = edit_profile(tmp_path, "otaru", _set("schedule.weekdays", weekdays))
    assert (f"otaru.yaml: schedule.weekdays{where}: {weekdays[int(where[1])]} is a {day}: offices are closed "
            "on Saturdays and Sundays, so no slot would be offered") in problems_of(directory)


def test_notice_longer_than_the_booking_window_is_refused(tmp_path: Path) -> None:
    def change(data: dict[str, Any]) -> None:
        data["booking"]["notice"]["calendar_days"] = 15
        data["booking"]["window_weeks"] = 2

    assert ("otaru.yaml: booking.notice.calendar_days: 15 days' notice is longer than the booking window "
            "(booking.window_weeks: 2 weeks, 14 days): no slot could ever be booked") in problems_of(
        edit_profile(tmp_path, "otaru", change))
    fits = edit_profile(tmp_path / "fits", "otaru", _set("booking.notice.calendar_days", 14))
    assert "otaru" in load_offices(fits)


@pytest.mark.parametrize("pattern,replacement,expected", [
    ('"10:30"', '"１０:３０"', 'schedule.starts[1]: "１０:３０" has full-width characters: write "10:30"'),
    ('"10:30"', '"1０:30"', 'schedule.starts[1]: "1０:30" has full-width characters: write "10:30"'),
    ('"10:30"', '"10：30"', 'schedule.starts[1]: "10：30" has full-width characters: write "10:30"'),
    ("weekdays: [0, 1, 2, 3, 4]", "weekdays: [０, 1, 2, 3, 4]",
     'schedule.weekdays[0]: "０" has full-width characters: write 0'),
    ("capacity: 1", "capacity: ２", 'schedule.capacity: "２" has full-width characters: write 2'),
    ('"0134-32-8689"', '"0134-３２-8689"',
     'contacts.phone.value: "0134-３２-8689" has full-width characters: write "0134-32-8689"'),
    ('version: "2023-10-01"', 'version: "２０２３-10-01"',
     'terms[0].version: "２０２３-10-01" has full-width characters: write "2023-10-01"'),
])
def test_full_width_digits_are_named_with_the_half_width_value(
        tmp_path: Path, pattern: str, replacement: str, expected: str) -> None:
    directory = copy_profiles(tmp_path)
    path = directory / "otaru.yaml"
    text = path.read_text(encoding="utf-8")
    assert pattern in text
    path.write_text(text.replace(pattern, replacement, 1), encoding="utf-8")
    assert f"otaru.yaml: {expected}" in problems_of(directory)


@pytest.mark.parametrize("name", ["nayoro.yml", "nayoro.YAML"])
def test_a_profile_under_another_file_name_is_not_silently_skipped(tmp_path: Path, name: str) -> None:
    directory = copy_profiles(tmp_path)
    (directory / name).write_text((directory / "otaru.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    assert f"{name}: not read: an office profile's file name ends in .yaml (rename it nayoro.yaml)" in problems_of(
        directory)


def test_readme_says_how_to_add_an_office_and_what_every_profile_key_does() -> None:
    """An operator adds an office from README alone: its section names every key a profile may hold."""
    from bot.offices.reading import _TOP_OPTIONAL, _TOP_REQUIRED

    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    assert "\n## Adding an office\n" in readme
    section = readme.split("\n## Adding an office\n", 1)[1].split("\n## ", 1)[0]
    missing = [key for key in (*_TOP_REQUIRED, *_TOP_OPTIONAL) if f"`{key}`" not in section]
    assert not missing, f"README's 'Adding an office' does not explain: {missing}"
    for step in ("templates/terms/<id>/", "templates/staff/handoff.yaml", "invitation_<id>.j2",
                 "flask --app app offices check", "richmenu deploy <id>", "staff create-user"):
        assert step in section, step


def test_cli_check_warns_about_office_wording_that_no_office_or_language_uses(tmp_path: Path) -> None:
    """Office wording outside the profile is found by office id: a typo in the id, or a language left out,
    silently falls back to the generic wording. `offices check` says so."""
    directory = copy_profiles(tmp_path)
    (directory / "sakata.yaml").unlink()   # a deployment serving Otaru alone: Sakata's wording is unused
    result = cli(directory).invoke(offices_group, ["check"])
    assert result.exit_code == 0, result.output
    assert ("warning: templates/staff/handoff.yaml: sakata: no office profile has this id; its settings are not used"
            in result.output)
    for language in ("ja", "easy", "en"):
        assert (f"warning: templates/messages/{language}/invitation_sakata.j2: no office profile has the id sakata; "
                "it is not used") in result.output
    assert "otaru" not in "".join(line for line in result.output.splitlines() if "invitation_" in line)


def test_cli_check_warns_about_an_office_whose_join_wording_misses_a_language(tmp_path: Path, monkeypatch) -> None:
    from bot import render

    templates = tmp_path / "templates"
    shutil.copytree(render.TEMPLATES_DIR / "messages", templates / "messages")
    (templates / "messages" / "en" / "invitation_otaru.j2").unlink()
    monkeypatch.setattr(render, "TEMPLATES_DIR", templates)
    result = cli().invoke(offices_group, ["check"])
    assert result.exit_code == 0, result.output
    assert ("warning: templates/messages/en/invitation_otaru.j2: missing: ja has invitation_otaru.j2; this "
            "language shows the generic invitation_default.j2") in result.output


def test_check_warns_when_confirmed_opening_hours_are_not_translated(tmp_path: Path) -> None:
    """Hours are the office's own words (平日8:30～17:15): the English and やさしい日本語 chats show them as written
    unless the profile translates them, so `offices check` lists them with the other untranslated texts."""
    directory = edit_profile(tmp_path, "otaru", _set("contacts.hours", {"value": "平日8:30～17:15", "confirmed": True}))
    _offices, warnings = check_offices(directory)
    for language in ("en", "easy"):
        assert (f"otaru.yaml: translations.{language}.contacts.hours.value: not translated: the Japanese text is "
                "shown") in warnings


def test_a_shipped_terms_summary_longer_than_a_publish_may_be_is_refused(tmp_path: Path) -> None:
    """The summary rides in the consent prompt (one LINE message): a profile may not ship one `terms publish`
    would refuse."""
    from bot.offices import TERMS_SUMMARY_MAX

    def long_summary(data: dict[str, Any]) -> None:
        data["terms"][0]["summary"] = "変" * (TERMS_SUMMARY_MAX + 1)

    problems = problems_of(edit_profile(tmp_path, "otaru", long_summary))
    assert f"otaru.yaml: terms[0].summary: {TERMS_SUMMARY_MAX + 1} characters; keep it to at most" in problems

    def longest(data: dict[str, Any]) -> None:
        data["terms"][0]["summary"] = "変" * TERMS_SUMMARY_MAX

    assert load_offices(edit_profile(tmp_path / "ok", "otaru", longest))["otaru"].terms[0].summary
