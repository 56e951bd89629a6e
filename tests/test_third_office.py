"""A third office added as data alone (tests/third_office.py): it gets its own words and rules, never another
office's."""
from __future__ import annotations

import json
import re

import pytest

from bot.offices import ProfileError, load_offices
from tests import third_office
from tests.formflow import Page, complete_form, hold_directly, valid_answers
from tests.lineuser import LineUser
from tests.staffkit import create_staff, fast_password_hashing, login  # noqa: F401 (fixture)

SAKATA_WORDS = ("酒田", "庄内町", "日本海総合病院", "マザーズコーナー", "UIJターン")


@pytest.fixture
def third(make_app, tmp_path):
    """An app serving the shipped offices and the third one: its runtime."""
    app = make_app(offices_dir=third_office.write_offices(tmp_path / "offices"))
    return app.extensions["madoguchi"], app.test_client()


@pytest.fixture
def third_user(third, fake_line):
    """A LINE user of the third office."""
    rt, client = third
    return LineUser(client, third_office.OFFICE_ID, channel_secret=rt.config.channel_secret(third_office.OFFICE_ID),
                    fake=fake_line, clock=rt.clock)


@pytest.mark.parametrize("language,relay", [("日本語", "電話リレーサービス"), ("English", "Telephone Relay Service"),
                                            ("やさしい日本語", "電話リレーサービス")])
def test_a_redirect_desk_phone_comes_with_the_relay_service(third_user, fake_line, language, relay):
    """The office's windows for topics not handled online, with their phone numbers: deaf and hard-of-hearing
    users are told of the telephone relay service there too, as wherever the bot gives a phone route."""
    for text in (language, "予約", "同意する", "はい", "はい", "はい"):   # the third question: a topic not online
        assert third_user.says(text).status_code == 200
    answer = fake_line.texts_to(third_user.user_id)[-1]
    assert "0999-12-7777" in answer and relay in answer


def test_the_form_offers_the_third_offices_own_categories(third):
    rt, client = third
    _, url = hold_directly(rt, third_office.OFFICE_ID)
    html = Page.get(client, url).html
    for word in SAKATA_WORDS:
        assert word not in html, word
    assert 'value="parent"' in html and 'value="illness"' in html and 'value="uij"' not in html
    assert "このうち「難病の治療を続けている方」は" in html    # its own 要配慮個人情報, named
    confirmation = Page.get(client, url).submit(client, {**valid_answers(rt.offices["kakuu"]), "category": "uij"})
    assert "対象となる区分" in confirmation.html and "入力内容の確認" not in confirmation.html   # not its choice


def test_staff_read_the_third_offices_category_in_its_words(third, fast_password_hashing):  # noqa: F811
    rt, client = third
    _, url = hold_directly(rt, third_office.OFFICE_ID)
    done = complete_form(client, url, {**valid_answers(rt.offices["kakuu"]), "category": "illness"})
    reference = re.search(r"受付番号: ([A-Z0-9]{4}-[A-Z0-9]{4})", done.html).group(1)
    create_staff(rt, office="kakuu")
    assert login(client).status_code == 302
    assert "難病治療中" not in client.get(f"/staff/bookings/{reference}").get_data(as_text=True)   # 要配慮個人情報
    with client.session_transaction() as sess:
        csrf = sess["staff_csrf"]
    client.post(f"/staff/bookings/{reference}/reveal", data={"csrf_token": csrf})
    page = client.get(f"/staff/bookings/{reference}").get_data(as_text=True)
    assert "難病治療中" in page
    export = client.post("/staff/export", data={"from": "2026-12-01", "to": "2026-12-31", "encoding": "utf8",
                                                "contents": "details", "csrf_token": csrf})
    assert export.status_code == 200 and "難病治療中" in export.get_data().decode("utf-8-sig")


def test_an_office_without_sensitive_categories_marks_none(make_app, tmp_path):
    data = third_office.profile()
    data["categories"][2]["sensitive"] = False
    app = make_app(offices_dir=third_office.write_offices(tmp_path / "offices", data))
    _, url = hold_directly(app.extensions["madoguchi"], third_office.OFFICE_ID)
    html = Page.get(app.test_client(), url).html
    assert 'value="illness"' in html and "要配慮個人情報" not in html
    assert "対象となる区分を確認し" in html    # the purpose is still said


@pytest.mark.parametrize("change,expected", [
    (lambda d: d.pop("categories"), "kakuu.yaml: categories: missing: form_fields has category"),
    (lambda d: d["form_fields"].remove("category"), "kakuu.yaml: categories: not used: form_fields has no category"),
    (lambda d: d["categories"].append({"id": "parent", "text": "重複"}),
     "kakuu.yaml: categories[3]: 'parent' is listed twice"),
    (lambda d: d["categories"][0].update(sensitive="yes"),
     "kakuu.yaml: categories[0].sensitive: must be true or false"),
])
def test_categories_mistakes_are_named(tmp_path, change, expected):
    data = third_office.profile()
    change(data)
    with pytest.raises(ProfileError) as caught:
        load_offices(third_office.write_offices(tmp_path, data))
    assert any(problem.startswith(expected) for problem in caught.value.problems), caught.value.problems


def _problems(tmp_path, change) -> tuple[str, ...]:
    data = third_office.profile()
    change(data)
    with pytest.raises(ProfileError) as caught:
        load_offices(third_office.write_offices(tmp_path, data))
    return caught.value.problems


def test_overlapping_sessions_are_refused(tmp_path):
    """40-minute sessions at 09:30 and 10:00: the counsellor would be in two at once (capacity says how many)."""
    problems = _problems(tmp_path, lambda d: d["schedule"].update(starts=["09:30", "10:00", "13:45"]))
    assert ("kakuu.yaml: schedule.starts[1]: 10:00 starts before the 40-minute session of 09:30 ends: sessions must "
            "not overlap (for several sessions at the same time, set schedule.capacity)") in problems
    back_to_back = third_office.profile()
    back_to_back["schedule"]["starts"] = ["09:30", "10:10"]
    assert "kakuu" in load_offices(third_office.write_offices(tmp_path / "fits", back_to_back))


def test_in_chat_cancelling_that_no_booking_could_use_is_refused(tmp_path):
    problems = _problems(tmp_path, lambda d: d["cancellation"].update(in_chat_until_days_before=28))
    assert ("kakuu.yaml: cancellation.in_chat_until_days_before: 28 days before a session is longer than the booking "
            "window (booking.window_weeks: 4 weeks, 28 days): no booking could ever be cancelled in the chat (or set "
            "in_chat: false)") in problems


@pytest.mark.parametrize("change,where", [
    (lambda d: d["checklist"][1].update(text="イヤホンをご用意いただけますか。" * 300), "checklist[1].text: "),
    (lambda d: d["eligibility"][1]["detail"].extend(["長い説明です。" * 300] * 2), "eligibility[1]: "),
    (lambda d: d.update(translations={"en": {"checklist": {"headset": {"text": "Do you have earphones? " * 200,
                                                                       "fix": "Please have earphones."}}}}),
     "translations.en.checklist.headset.text: "),
])
def test_words_too_long_for_one_line_message_are_refused(tmp_path, change, where):
    """LINE refuses a text over 5000 characters: the user would be stuck at that step, so the profile is refused."""
    problems = _problems(tmp_path, change)
    assert any(p.startswith(f"kakuu.yaml: {where}") and "LINE takes at most 5000" in p for p in problems), problems


def test_a_weekday_written_as_a_name_is_named_with_the_numbers(tmp_path):
    problems = _problems(tmp_path, lambda d: d["schedule"].update(weekdays=["tue", 3]))
    assert ("kakuu.yaml: schedule.weekdays[0]: 'tue' is not a weekday number: write Monday 0, Tuesday 1, "
            "Wednesday 2, Thursday 3, Friday 4") in problems


@pytest.mark.parametrize("status", ["attended", "no_show"])
def test_a_session_whose_attendance_is_recorded_still_takes_its_seat_on_the_schedule(status):
    """Two sessions at once (capacity 2): once one is recorded 出席 or 欠席, the 予定表 still says one of two
    seats was taken, not 空き 2/2."""
    from datetime import datetime

    from bot.clock import TOKYO
    from bot.models import Booking
    from bot.staff.timeline import SlotView

    start = datetime(2026, 12, 3, 9, 30, tzinfo=TOKYO)
    view = SlotView(start=start, label="12/3(木) 09:30", capacity=2, bookings=[Booking(status=status)])
    assert view.free == 1


@pytest.mark.parametrize("needed,language,expected", [
    (True, "ja", "使用するソフト: Microsoft Teams（アカウントが必要です。相談の日までにご用意ください）"),
    (True, "en", "Software: Microsoft Teams (you need an account: please have one ready before the day)"),
    (True, "easy", "つかう ソフト: Microsoft Teams（アカウントが ひつようです。そうだんの 日までに つくって ください）"),
    (False, "ja", "使用するソフト: Microsoft Teams（アカウント登録は不要です）"),
    (None, "ja", "使用するソフト: Microsoft Teams\n"),
])
def test_the_confirmation_says_whether_the_video_app_needs_an_account(tmp_path, needed, language, expected):
    """`video_app.account_needed` is the office's rule: the user learns it with the confirmation."""
    from bot.render import text_of
    from tests.test_languages import booking, render

    data = third_office.profile()
    data["video_app"]["account_needed"] = needed
    office = load_offices(third_office.write_offices(tmp_path, data))["kakuu"].localized(language)
    assert expected in text_of(render(office, language, "outcome_confirmed", dict(booking=booking("confirmed"))))


@pytest.mark.parametrize("language,heading", [("ja", "【参加のご案内】"), ("en", "[How to join]"),
                                              ("easy", "【そうだんに 出る 方法】")])
@pytest.mark.parametrize("needed", [True, False, None])
def test_the_video_app_line_is_set_apart_from_how_to_join(tmp_path, language, heading, needed):
    """Otaru's confirmation (Zoom, no account needed) read 「…（アカウント登録は不要です）」 glued to
    「【参加のご案内】」: the blank line before each heading is kept whatever the app line says."""
    from bot.render import text_of
    from tests.test_languages import booking, render

    data = third_office.profile()
    data["video_app"]["account_needed"] = needed
    office = load_offices(third_office.write_offices(tmp_path, data))["kakuu"].localized(language)
    text = text_of(render(office, language, "outcome_confirmed", dict(booking=booking("confirmed"))))
    assert f"\n\n{heading}\n" in text


@pytest.mark.parametrize("language,offered,not_offered", [
    ("日本語", "「はい」「いいえ」のいずれか", "わからない"),
    ("English", 'send "Yes" or "No", or the number', "Not sure"),
    ("やさしい日本語", "「はい」「いいえ」か、その ばんごう", "わからない"),
])
def test_help_at_a_yes_no_question_offers_only_its_answers(third_user, fake_line, language, offered, not_offered):
    """The third office's first question has no わからない: ヘルプ names the answers that question offers."""
    for text in (language, "予約", "同意する", "ヘルプ"):
        assert third_user.says(text).status_code == 200
    help_text = next(t for t in reversed(fake_line.texts_to(third_user.user_id)) if "1." not in t)
    assert offered in help_text and not_offered not in help_text


@pytest.fixture
def own_templates(tmp_path, monkeypatch):
    """A copy of templates/ the app renders from, for an office's own wording written by a test."""
    import shutil

    from bot import render

    folder = tmp_path / "templates"
    shutil.copytree(render.TEMPLATES_DIR, folder)
    for cached in (render.environment, render.template_file):
        cached.cache_clear()
    monkeypatch.setattr(render, "TEMPLATES_DIR", folder)
    yield folder
    for cached in (render.environment, render.template_file):
        cached.cache_clear()


@pytest.mark.parametrize("wording,expected", [
    ("・参加用のURLは{{ office.teams_url }}でご確認ください。\n",
     "templates/messages/en/invitation_kakuu.j2: line 1: UndefinedError: 'bot.offices.model.Office object' has no "
     "attribute 'teams_url'"),
    ("・参加のご案内です。\n{% if booking.timing.session_day %}\n・当日お送りします。\n",
     "templates/messages/en/invitation_kakuu.j2: line 3: TemplateSyntaxError: Unexpected end of template."),
])
def test_a_mistake_in_an_offices_own_join_wording_stops_the_start(make_app, tmp_path, own_templates, wording, expected):
    """Written as README says (invitation_<id>.j2), a typo would have made every confirmation of the office fail
    when staff tap 承認; the app refuses to start instead, naming the file, the line and the mistake."""
    from bot.config import ConfigError

    for language in ("ja", "easy"):
        (own_templates / "messages" / language / "invitation_kakuu.j2").write_text("・参加のご案内です。\n", "utf-8")
    (own_templates / "messages" / "en" / "invitation_kakuu.j2").write_text(wording, encoding="utf-8")
    with pytest.raises(ConfigError) as refused:
        make_app(offices_dir=third_office.write_offices(tmp_path / "offices"))
    assert "invalid office wording" in str(refused.value)
    assert expected in str(refused.value)
    assert "invitation_kakuu.j2" not in str(refused.value).replace(expected, "")   # the other languages are fine


def test_a_wording_broken_after_a_start_stops_the_next_start(make_app, tmp_path, own_templates):
    """The same offices started twice in one process (as tests do), their wording file broken in between: the
    second start checks it again (conftest's cache of the check must not answer from the first)."""
    from bot.config import ConfigError

    for language in ("ja", "en", "easy"):
        (own_templates / "messages" / language / "invitation_kakuu.j2").write_text("・参加のご案内です。\n", "utf-8")
    offices_dir = third_office.write_offices(tmp_path / "offices")
    make_app(offices_dir=offices_dir)
    (own_templates / "messages" / "en" / "invitation_kakuu.j2").write_text("{{ office.teams_url }}\n", "utf-8")
    with pytest.raises(ConfigError) as refused:
        make_app(offices_dir=offices_dir)
    assert "templates/messages/en/invitation_kakuu.j2: line 1: UndefinedError" in str(refused.value)


def test_offices_show_lists_the_forms_categories(tmp_path):
    """`offices show` prints the dialog as the user meets it: the form's category choices are the office's."""
    from flask import Flask

    from bot.cli.offices import offices_group

    app = Flask(__name__)
    app.config["OFFICES_DIR"] = str(third_office.write_offices(tmp_path))
    result = app.test_cli_runner().invoke(offices_group, ["show", "kakuu", "--json"])
    assert result.exit_code == 0, result.output
    form = json.loads(result.stdout)["steps"][-1]
    assert form["categories"] == [{"id": "parent", "text": "子育て中の方", "sensitive": False},
                                  {"id": "senior", "text": "55歳以上の方", "sensitive": False},
                                  {"id": "illness", "text": "難病の治療を続けている方", "sensitive": True}]
    outline = app.test_cli_runner().invoke(offices_group, ["show", "kakuu"]).output
    assert "   - category illness: 難病の治療を続けている方 (sensitive)" in outline


def test_an_office_with_no_other_route_is_refused(tmp_path):
    """A decline, a cancellation by the office and a blocked account say 「次の方法で…」 and list other_routes:
    an empty list would leave the user with a sentence pointing at nothing."""
    problems = _problems(tmp_path, lambda d: d.update(other_routes=[]))
    assert "kakuu.yaml: other_routes: must not be empty" in problems


def _request_first_slot(office, client, user, fake_line) -> None:
    """From the first question (consented): answer to pass, take the first slot, send the form."""
    from tests.formflow import form_link

    for question in office.eligibility:
        user.says({"yes": "はい", "no": "いいえ"}[question.passing[0]])
    for _ in office.checklist:
        user.says("はい")
    user.says("1")
    url = form_link(fake_line.messages_to(user.user_id))
    answers = {**valid_answers(office), "category": "parent", "seeker_number": "01234-56789"}
    assert "受付番号" in complete_form(client, url, answers).html


def test_a_user_may_have_as_many_open_requests_as_the_office_allows(third, third_user, fake_line):
    """The third office allows two open requests at once (booking.max_open_per_user: 2): 予約 goes on after the
    first, and the third is refused in the office's words, not as 「1件です」."""
    rt, client = third
    office = rt.offices["kakuu"]
    third_user.says("予約")
    third_user.says("同意する")
    for n in range(2):
        if n:
            third_user.says("予約")
        _request_first_slot(office, client, third_user, fake_line)
    third_user.says("予約")
    refusal = fake_line.texts_to(third_user.user_id)[-1]
    assert "一度にお申し込みいただける予約は2件までです。" in refusal


def test_a_same_day_deadline_after_a_start_is_refused(tmp_path):
    """Booking until noon on the day itself, with a 09:30 session: its deadline would come after it began."""
    def change(data):
        data["booking"]["notice"].update(calendar_days=0, deadline="12:00")

    assert ("kakuu.yaml: booking.notice.deadline: 12:00 on the session's own day (calendar_days: 0) is after the "
            "09:30 session starts: set calendar_days to 1 or more, or a deadline no later than the first start"
            ) in _problems(tmp_path, change)
    afternoon = third_office.profile()
    afternoon["booking"]["notice"].update(calendar_days=0, deadline="09:30")
    assert "kakuu" in load_offices(third_office.write_offices(tmp_path / "fits", afternoon))


def test_readme_says_to_enable_a_new_office_to_try_it_in_the_simulator(make_app, tmp_path):
    """README ships a new office `enabled: false` and then tries it in the simulator: the simulator serves enabled
    offices only, so README says to enable it on the development machine."""
    from bot.config import PROJECT_ROOT

    data = third_office.profile()
    data["enabled"] = False
    app = make_app(offices_dir=third_office.write_offices(tmp_path / "offices", data))
    page = app.test_client().get("/simulator").get_data(as_text=True)
    assert "ハローワーク架空" not in page and "ハローワーク酒田" in page
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Adding an office\n", 1)[1].split("\n## ", 1)[0]
    step = section.split("5. **Check**", 1)[1].split("\n6. ", 1)[0]
    assert "enabled: true" in step and "simulator" in step


DEEMED = "規約の定め（第9条）により、変更後にご利用になると、変更後の規約に同意したものとみなされます。"


@pytest.mark.parametrize("terms_changes", [None, DEEMED])
def test_declining_new_terms_with_a_request_open_says_it_stays_and_how_to_withdraw_it(make_app, tmp_path, fake_line,
                                                                                      terms_changes):
    """An office allowing two open requests: a user with one asked to consent to a new version declines; they are
    told that their request stays valid and how to see or withdraw it, and it stays. Not "under the earlier
    terms": an office's terms may say that using the service after a change is agreeing to it (both shipped
    offices' do, `terms_changes`), and the message then says that."""
    from datetime import datetime

    from sqlalchemy import select

    from bot.clock import TOKYO
    from bot.models import Booking
    from bot.services import terms

    data = third_office.profile()
    if terms_changes:
        data["terms_changes"] = terms_changes
    app = make_app(offices_dir=third_office.write_offices(tmp_path / "offices", data))
    rt, client = app.extensions["madoguchi"], app.test_client()
    third_user = LineUser(client, third_office.OFFICE_ID, channel_secret=rt.config.channel_secret(
        third_office.OFFICE_ID), fake=fake_line, clock=rt.clock)
    office = rt.offices["kakuu"]
    third_user.says("予約")
    third_user.says("同意する")
    _request_first_slot(office, client, third_user, fake_line)
    with rt.db.transaction() as s:
        reference = s.scalar(select(Booking.reference))
        terms.publish(s, "kakuu", "2026-12-02", "第1条 改定後の本文です。", "第2条を変更しました。",
                      today=rt.clock.now().date(), now=rt.clock.now())
    rt.clock.freeze(datetime(2026, 12, 2, 9, 0, tzinfo=TOKYO))

    third_user.says("予約")
    asked = fake_line.texts_to(third_user.user_id)[-1]
    assert "改定されました" in asked and reference in asked
    third_user.says("同意しない")
    declined = fake_line.texts_to(third_user.user_id)[-1]
    assert reference in declined and "そのまま有効です" in declined and "「予約確認」" in declined
    assert "オンライン職業相談はご利用いただけません" not in declined and "これまでの規約のもとで" not in declined
    assert (DEEMED in declined) == bool(terms_changes)
    with rt.db.reading() as s:
        assert s.scalar(select(Booking.status)) == "requested"


def test_a_new_offices_terms_text_may_live_beside_its_profile(make_app, tmp_path):
    """A deployment keeps its profiles outside the project (OFFICES_DIR): the new office's terms text sits beside
    them, in `terms/<office>/<version>.md`, is checked, seeded and shown on the terms page, with no file committed
    into the project's templates/terms/."""
    from flask import Flask

    from bot.cli.offices import offices_group

    data = third_office.profile()
    data["terms"] = [{"version": "2026-04-01", "file": "kakuu/2026-04-01.md"}]
    folder = third_office.write_offices(tmp_path / "offices", data)
    (folder / "terms" / "kakuu").mkdir(parents=True)
    (folder / "terms" / "kakuu" / "2026-04-01.md").write_text("# 架空の利用規約\n\n第1条 架空だけの条文です。\n",
                                                             encoding="utf-8")
    cli = Flask(__name__)
    cli.config["OFFICES_DIR"] = str(folder)
    result = cli.test_cli_runner().invoke(offices_group, ["check"])
    assert result.exit_code == 0, result.output
    assert "3 office profile(s) OK (kakuu, otaru, sakata)" in result.output
    html = make_app(offices_dir=folder).test_client().get("/terms/kakuu").get_data(as_text=True)
    assert "第1条 架空だけの条文です。" in html
    assert "小樽" not in html


def test_a_missing_terms_file_names_both_places_it_was_looked_for(tmp_path):
    """Neither beside the profiles nor in templates/terms/: the error says where it looked."""
    problems = _problems(tmp_path, lambda d: d["terms"][0].update(file="kakuu/2026-04-01.md"))
    [problem] = [p for p in problems if p.startswith("kakuu.yaml: terms[0].file: no such file")]
    assert str(tmp_path / "terms") in problem and "templates/terms" in problem


@pytest.mark.parametrize("file", ["../kakuu.md", "kakuu/../../2026-04-01.md", "/etc/kakuu.md"])
def test_a_terms_file_outside_the_terms_folders_stays_refused(tmp_path, file):
    (tmp_path / "terms").mkdir()
    (tmp_path / "kakuu.md").write_text("本文", encoding="utf-8")
    problems = _problems(tmp_path, lambda d: d["terms"][0].update(file=file))
    assert any(p.startswith("kakuu.yaml: terms[0].file: ") and "must be a relative .md path" in p for p in problems)
