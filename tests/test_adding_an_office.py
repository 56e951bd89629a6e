"""README's "Adding an office", followed as written: a profile and its terms text in a folder of one's own
(OFFICES_DIR), `offices check`, then a booking walked through the chat, the form, the dashboard and a
cancellation. The office (ハローワーク函館, imaginary) shares no rule with Sakata or Otaru: Monday and Wednesday
sessions of 45 minutes, booking closing two business days before (「2開庁日前」), cancelling in the chat until
the day before, no form categories, Webex."""
from __future__ import annotations

import re
import shutil
from datetime import datetime
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select

from bot.cli.offices import offices_group
from bot.clock import TOKYO
from bot.config import DEFAULT_OFFICES_DIR
from bot.models import Booking
from bot.services import bookings, slots
from tests.formflow import complete_form, form_link, hold_directly, quick_reply_data, valid_answers
from tests.lineuser import LineUser
from tests.staffkit import create_staff, csrf, login, run_worker, fast_password_hashing  # noqa: F401 (fixture)

PROFILE = """\
id: hakodate
enabled: true
name: ハローワーク函館
formal_name: 函館公共職業安定所
controller: 函館公共職業安定所長
contacts:
  phone: {value: "0138-00-0000", note: オンライン相談係におつなぎします。, confirmed: true}
  email: {value: online@hakodate.example.jp, confirmed: true}
  hours: {value: 平日 8:30～17:15, confirmed: true}
other_routes:
  - ハローワーク函館へお電話で予約をお申し込みいただく
video_app: {name: Webex, account_needed: false, confirmed: true}
eligibility:
  - id: registered
    text: ハローワークで求職の申込み（求職登録）はお済みですか。
    choices: ["yes", "no"]
    passing: ["yes"]
    on_fail: 先にハローワーク函館の窓口で求職の申込みをお済ませください。
checklist:
  - id: webex_ready
    text: 相談の前に、Webexを使える状態にしていただけますか。
    fix: 相談の日までに、Webexを使える状態にしてください。
consent_summary:
  - 相談は1回45分です。毎週月曜日と水曜日に行い、2開庁日前の15:00までに予約が完了した方が利用できます。
notices:
  - 録画・録音はご遠慮ください。
after_request: お申込みの後、ハローワーク函館で内容を確認し、このトークで予約の確定をお知らせします。
schedule:
  weekdays: [0, 2]
  starts: ["09:00", "10:00", "14:00"]
  duration_minutes: 45
  closures: [CLOSURES]
booking:
  notice: {kind: business_days_before, business_days: 2, deadline: "15:00", confirmed: true}
  window_weeks: 6
  hold_minutes: 10
cancellation:
  in_chat: true
  in_chat_until_days_before: 1
  routes: [phone, email]
  same_day_routes: [phone]
  note: キャンセルは前日まではこのトークで、当日はお電話でご連絡ください。
  confirmed: true
no_show_minutes: 15
form_fields: [name, name_kana, seeker_number, phone, consultation]
terms:
  - {version: "2026-04-01", file: hakodate/2026-04-01.md}
court: 函館地方裁判所
"""
TERMS = "# ハローワーク函館オンライン職業相談利用規約\n\n第1条 予約は、相談日の2開庁日前の15時までに完了してください。\n"
OTHER_OFFICES = ("酒田", "小樽", "Zoom", "ZOOM", "マイページ", "会議招待", "30分")


def hakodate(folder: Path, closures: str = "") -> Path:
    """README steps 1 and 2 in `folder`: every shipped profile, hakodate.yaml and its terms beside it."""
    shutil.copytree(DEFAULT_OFFICES_DIR, folder)
    (folder / "hakodate.yaml").write_text(PROFILE.replace("CLOSURES", closures), encoding="utf-8")
    (folder / "terms" / "hakodate").mkdir(parents=True)
    (folder / "terms" / "hakodate" / "2026-04-01.md").write_text(TERMS, encoding="utf-8")
    return folder


def _check(folder: Path):
    app = Flask(__name__)
    app.config["OFFICES_DIR"] = str(folder)
    return app.test_cli_runner().invoke(offices_group, ["check"])


def test_offices_check_takes_the_new_office(tmp_path):
    result = _check(hakodate(tmp_path / "offices"))
    assert result.exit_code == 0, result.output
    assert "3 office profile(s) OK (hakodate, otaru, sakata)" in result.output
    assert not [line for line in result.output.splitlines() if line.startswith("error")]


def test_two_business_days_notice_counts_business_days_only(tmp_path):
    """「2開庁日前」: for a Monday the deadline is Thursday, not Friday (Saturday, two calendar days back, moved to
    the business day before it); an office closure in between is skipped too."""
    from bot.offices import load_offices

    office = load_offices(hakodate(tmp_path / "plain"))["hakodate"]
    monday = datetime(2026, 12, 7, 9, 0, tzinfo=TOKYO)
    assert slots.booking_deadline(office, monday) == datetime(2026, 12, 3, 15, 0, tzinfo=TOKYO)
    wednesday = datetime(2026, 12, 9, 9, 0, tzinfo=TOKYO)
    assert slots.booking_deadline(office, wednesday) == datetime(2026, 12, 7, 15, 0, tzinfo=TOKYO)
    closed = load_offices(hakodate(tmp_path / "closed", closures='"2026-12-03"'))["hakodate"]
    assert slots.booking_deadline(closed, monday) == datetime(2026, 12, 2, 15, 0, tzinfo=TOKYO)


def test_business_days_notice_mistakes_are_named(tmp_path):
    folder = hakodate(tmp_path / "offices")
    profile = folder / "hakodate.yaml"
    text = profile.read_text(encoding="utf-8")
    profile.write_text(text.replace("business_days: 2", "calendar_days: 2"), encoding="utf-8")
    assert ("hakodate.yaml: booking.notice.calendar_days: unknown field (allowed: kind, business_days, deadline, "
            "confirmed)") in _check(folder).output
    profile.write_text(text.replace("business_days: 2", "business_days: 31"), encoding="utf-8")
    assert ("hakodate.yaml: booking.notice.business_days: 31 business days' notice is longer than the booking "
            "window (booking.window_weeks: 6 weeks, 42 days)") in _check(folder).output


def _texts(fake_line, user, before: int = 0) -> str:
    return "\n".join(fake_line.texts_to(user.user_id)[before:])


def test_a_booking_of_the_new_office_end_to_end(make_app, tmp_path, fake_line):
    """Chat → form → staff confirm on the dashboard → 予約確認 offers キャンセル the day before and not on the day →
    cancelled in the chat the day before → the dashboard shows it. Nothing names another office or its rules."""
    app = make_app(offices_dir=str(hakodate(tmp_path / "offices")))
    rt, client = app.extensions["madoguchi"], app.test_client()
    rt.clock.freeze(datetime(2026, 12, 3, 16, 0, tzinfo=TOKYO))   # Thursday, past Monday 12/7's deadline
    user = LineUser(client, "hakodate", channel_secret=rt.config.channel_secret("hakodate"), fake=fake_line,
                    clock=rt.clock)
    for text in ("予約", "同意する", "はい", "はい"):
        assert user.says(text).status_code == 200
    offered = _texts(fake_line, user)
    assert "ハローワーク函館の利用規約" in offered and "/terms/hakodate" in offered
    listed = offered.split("空いている枠")[-1]
    assert not re.search(r"^\d+\. 12/7\(月\)", listed, re.M)                  # its deadline, Thu 15:00, passed,
    assert "受付期限を過ぎた日: 12/7(月)（受付は12/3(木) 15:00まで）" in listed   # and the list says so
    assert "1. 12/9(水) 09:00" in offered and "（1回45分）" in offered
    user.says("1")
    done = complete_form(client, form_link(fake_line.messages_to(user.user_id)),
                         valid_answers(rt.offices["hakodate"]))
    reference = re.search(r"受付番号: ([A-Z0-9]{4}-[A-Z0-9]{4})", done.html).group(1)
    assert "函館" in done.html

    create_staff(rt, office="hakodate")
    assert login(client).status_code == 302
    queue = client.get("/staff/queue").get_data(as_text=True)
    assert reference in queue and "締切 12/7(月) 15:00" in queue
    assert "電話でのお知らせ" not in queue   # Sakata's rule (the office phones the date), not this office's
    client.post(f"/staff/bookings/{reference}/confirm", data={"csrf_token": csrf(client)})
    before = len(fake_line.texts_to(user.user_id))
    run_worker(rt)
    confirmed = _texts(fake_line, user, before)
    assert "予約が確定しました" in confirmed and "12/9(水) 09:00（45分）" in confirmed and "Webex" in confirmed
    assert "開始時刻を15分過ぎても" in confirmed

    with rt.db.reading() as s:
        booking = s.scalar(select(Booking).where(Booking.reference == reference))
        office = rt.offices["hakodate"]   # in the chat until the day before, not on the session's day
        assert bookings.cancellable_in_chat(office, booking, datetime(2026, 12, 8, 23, 59, tzinfo=TOKYO))
        assert not bookings.cancellable_in_chat(office, booking, datetime(2026, 12, 9, 0, 0, tzinfo=TOKYO))
    rt.clock.freeze(datetime(2026, 12, 8, 20, 0, tzinfo=TOKYO))   # the day before
    user.says("予約確認")
    assert "（前日まで）" in fake_line.texts_to(user.user_id)[-1]
    user.says(f"キャンセルする（{reference}）")
    assert "よろしいですか" in fake_line.texts_to(user.user_id)[-1]      # asked first: one tap cancels nothing
    user.says("キャンセルする")
    assert "キャンセルしました" in fake_line.texts_to(user.user_id)[-1]
    with rt.db.reading() as s:
        assert s.scalar(select(Booking.status).where(Booking.reference == reference)) == "cancelled"
    assert login(client).status_code == 302   # a new day's login
    page = client.get(f"/staff/bookings/{reference}").get_data(as_text=True)
    assert "キャンセル（本人）" in page and "・45分" in page

    said = _texts(fake_line, user) + done.html
    for word in OTHER_OFFICES:
        assert word not in said, word


def test_a_late_confirmation_is_not_said_to_be_allowed_by_terms_the_office_does_not_have(make_app, tmp_path):
    """Past the deadline the booking page says confirming is still possible, without claiming the office's terms
    say 「原則として」 (Sakata's and Otaru's do; this office's do not)."""
    app = make_app(offices_dir=str(hakodate(tmp_path / "offices")))
    rt, client = app.extensions["madoguchi"], app.test_client()
    _, url = hold_directly(rt, "hakodate")
    done = complete_form(client, url, valid_answers(rt.offices["hakodate"]))
    reference = re.search(r"受付番号: ([A-Z0-9]{4}-[A-Z0-9]{4})", done.html).group(1)
    rt.clock.freeze(datetime(2026, 12, 4, 10, 0, tzinfo=TOKYO))   # past Thursday 15:00, before Monday's session
    create_staff(rt, office="hakodate")
    assert login(client).status_code == 302
    page = client.get(f"/staff/bookings/{reference}").get_data(as_text=True)
    notice = page.split('id="late-confirm">', 1)[1].split("</p>", 1)[0]
    assert "12/3(木) 15:00" in notice and "承認はできます" in notice
    assert "規約" not in notice and "原則" not in notice


HANDOFF = """\
handoff:
  call_user_on_confirm: true
  invitation:
    label: Webex招待URLの送付
    how: 確定した日時のWebexの招待URLを、ご本人のメールアドレスあてにお送りください。
"""


def test_staff_wording_lives_in_the_profile_too(make_app, tmp_path):
    """README step 3 for an office kept outside the project (OFFICES_DIR): the profile's `handoff` names what
    staff send before the session and says the office phones the user, with nothing added to templates/."""
    folder = hakodate(tmp_path / "offices")
    with (folder / "hakodate.yaml").open("a", encoding="utf-8") as profile:
        profile.write(HANDOFF)
    app = make_app(offices_dir=str(folder))
    rt, client = app.extensions["madoguchi"], app.test_client()
    _, url = hold_directly(rt, "hakodate")
    done = complete_form(client, url, valid_answers(rt.offices["hakodate"]))
    reference = re.search(r"受付番号: ([A-Z0-9]{4}-[A-Z0-9]{4})", done.html).group(1)
    create_staff(rt, office="hakodate")
    assert login(client).status_code == 302
    client.post(f"/staff/bookings/{reference}/confirm", data={"csrf_token": csrf(client)})
    page = client.get(f"/staff/bookings/{reference}").get_data(as_text=True)
    assert "Webex招待URLの送付" in page and "招待の送付" not in page.replace("Webex招待URLの送付", "")
    queue = client.get("/staff/queue").get_data(as_text=True)
    assert reference in queue.split("電話でのお知らせ（1件）")[1].split("Webex招待URLの送付")[0]


def test_staff_wording_mistakes_in_the_profile_are_named(tmp_path):
    for n, (mistake, named) in enumerate((
            (("call_user_on_confirm: true", "call_user_on_confirm: 'yes'"),
             "hakodate.yaml: handoff.call_user_on_confirm: must be true or false"),
            (("    how:", "    howto:"),
             "hakodate.yaml: handoff.invitation.howto: unknown field (allowed: label, how, how_on_the_day)"))):
        folder = hakodate(tmp_path / f"offices{n}")
        with (folder / "hakodate.yaml").open("a", encoding="utf-8") as profile:
            profile.write(HANDOFF.replace(*mistake))
        assert named in _check(folder).output


JOIN = {"ja": "・WebexのURLは、{% if booking.timing.session_day %}開始時刻までに{% else %}前日までに{% endif %}メールでお送りします。\n",
        "easy": "・Webexの URLは、メールで おくります。\n",
        "en": "・We send the Webex link by e-mail.\n"}


def _join_wording(folder: Path, languages=("ja", "easy", "en"), wording=JOIN) -> None:
    """README step 4 beside the profiles: `<OFFICES_DIR>/messages/<language>/invitation_<id>.j2`."""
    for language in languages:
        (folder / "messages" / language).mkdir(parents=True, exist_ok=True)
        (folder / "messages" / language / "invitation_hakodate.j2").write_text(wording[language], encoding="utf-8")


def test_join_wording_lives_beside_the_profile_too(make_app, tmp_path, fake_line):
    """How the user joins, kept beside the profile: the confirmation says it, with nothing added to templates/."""
    folder = hakodate(tmp_path / "offices")
    _join_wording(folder)
    assert "invitation_hakodate" not in _check(folder).output   # found in every language
    app = make_app(offices_dir=str(folder))
    rt, client = app.extensions["madoguchi"], app.test_client()
    user = LineUser(client, "hakodate", channel_secret=rt.config.channel_secret("hakodate"), fake=fake_line,
                    clock=rt.clock)
    _, url = hold_directly(rt, "hakodate", user_id=user.user_id)
    done = complete_form(client, url, valid_answers(rt.offices["hakodate"]))
    reference = re.search(r"受付番号: ([A-Z0-9]{4}-[A-Z0-9]{4})", done.html).group(1)
    create_staff(rt, office="hakodate")
    assert login(client).status_code == 302
    client.post(f"/staff/bookings/{reference}/confirm", data={"csrf_token": csrf(client)})
    run_worker(rt)
    confirmed = _texts(fake_line, user)
    assert "・WebexのURLは、前日までにメールでお送りします。" in confirmed
    assert "別途お知らせします" not in confirmed   # not the generic invitation_default.j2


def test_join_wording_beside_the_profile_is_checked(make_app, tmp_path):
    """A language left out is named by `offices check`; a mistake stops the start, naming the file and line."""
    from bot.config import ConfigError

    folder = hakodate(tmp_path / "offices")
    _join_wording(folder, languages=("ja", "easy"))
    assert (f"{folder}/messages/en/invitation_hakodate.j2: missing: ja has invitation_hakodate.j2"
            in _check(folder).output)
    _join_wording(folder, languages=("en",), wording={"en": "・The link: {{ office.webex_url }}\n"})
    with pytest.raises(ConfigError) as refused:
        make_app(offices_dir=str(folder))
    assert (f"{folder}/messages/en/invitation_hakodate.j2: line 1: UndefinedError: 'bot.offices.model.Office object' "
            "has no attribute 'webex_url'") in str(refused.value)
