"""Terms updates: publishing versions, consenting again, and telling followers at a known cost."""
from __future__ import annotations

import csv
import io
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select, update

from bot.clock import TOKYO
from bot.models import Booking, BroadcastChunk, Consent, Conversation, SlotHold, TermsBroadcast
from bot.services import broadcasts
from tests.formflow import Page, complete_form, form_link, valid_answers, walk_to_slots
from tests.staffkit import create_staff, login, make_request, post

NEW_VERSION = "2026-12-10"


def _cli(app, *args, input=None):
    return app.test_cli_runner().invoke(args=list(args), input=input)


def _publish(app, tmp_path, version=NEW_VERSION, text="第1条 改定後の本文です。", summary="第6条の予約方法を変更しました。"):
    path = tmp_path / f"terms-{version}.md"
    path.write_text(text, encoding="utf-8")
    return _cli(app, "terms", "publish", "--office", "sakata", "--version", version, "--file", str(path),
                "--summary", summary)


def _followers(rt, n, office="sakata", followed=True):
    now = rt.clock.now()
    with rt.db.transaction() as s:
        for i in range(n):
            s.add(Conversation(office_id=office, line_user_id=f"U{i:032x}", state="idle", context={}, step=0,
                               misses=0, language="ja", followed=followed, booking_blocked=False,
                               last_event_ms=0, created_at=now))


def _consent_via_chat(user, fake_line):
    user.says("予約")
    user.says("同意する")
    return fake_line.texts_to(user.user_id)


# -- publishing ------------------------------------------------------------------------------------

def test_publish_accepts_today_or_later_and_keeps_old_versions_readable(app, client, tmp_path):
    assert _publish(app, tmp_path).exit_code == 0
    assert _publish(app, tmp_path, version="2026-12-01").exit_code == 0  # today
    page = client.get("/terms/sakata/2023-11-01")
    assert page.status_code == 200 and "山形地方裁判所" in page.get_data(as_text=True)
    assert "改定後の本文" in client.get(f"/terms/sakata/{NEW_VERSION}").get_data(as_text=True)


def test_publish_reminds_that_the_offices_summary_is_not_part_of_the_version(app, tmp_path):
    # The 要約 shown with 同意する comes from the office profile; a new text that changes a rule it states
    # (cancellation, say) would be summarised wrongly unless the operator revises it.
    result = _publish(app, tmp_path)
    assert result.exit_code == 0
    assert "consent_summary in dialogs/offices/sakata.yaml" in result.output
    assert NEW_VERSION in result.output.splitlines()[-1]


@pytest.mark.parametrize("version,text,summary,why", [
    ("2026-11-30", "本文", "要約", "past"),
    ("2023-11-01", "本文", "要約", "past"),
    ("2026-12-1", "本文", "要約", "YYYY-MM-DD"),
    ("next-week", "本文", "要約", "date"),
    (NEW_VERSION, "   \n", "要約", "empty"),
])
def test_publish_refuses_bad_versions(app, tmp_path, version, text, summary, why):
    result = _publish(app, tmp_path, version=version, text=text, summary=summary)
    assert result.exit_code == 1
    assert why in result.output


def test_a_past_version_is_refused_naming_today_in_japan(app, rt, tmp_path):
    """A server on UTC is a day behind Japan each morning: the refusal says which day "today" is."""
    rt.clock.freeze(datetime(2026, 12, 1, 5, 0, tzinfo=TOKYO))     # 2026-11-30 20:00 UTC
    result = _publish(app, tmp_path, version="2026-11-30")
    assert result.exit_code == 1
    assert "version 2026-11-30 is in the past; a new version takes effect today (2026-12-01 in Japan, where the " \
           "bot's dates are) or later" in result.output


def test_a_summary_too_long_for_the_chat_is_refused_and_the_longest_accepted_fits(app, rt, sakata_user, fake_line,
                                                                                   tmp_path):
    from bot.offices import TERMS_SUMMARY_MAX as SUMMARY_MAX

    too_long = _publish(app, tmp_path, summary="変" * (SUMMARY_MAX + 1))
    assert too_long.exit_code == 1 and f"at most {SUMMARY_MAX} characters" in too_long.output
    _consent_via_chat(sakata_user, fake_line)
    sakata_user.says("中止")
    assert _publish(app, tmp_path, summary="変" * SUMMARY_MAX).exit_code == 0
    rt.clock.freeze(datetime(2026, 12, 10, 9, 0, tzinfo=TOKYO))
    for language in ("English", "やさしい日本語", "日本語"):
        sakata_user.says(language)
        sakata_user.says("予約")                               # the consent prompt with the summary fits
        assert "変" * SUMMARY_MAX in fake_line.texts_to(sakata_user.user_id)[-1]
        sakata_user.says("中止")


def test_publish_refuses_a_version_already_used(app, tmp_path):
    assert _publish(app, tmp_path).exit_code == 0
    again = _publish(app, tmp_path)
    assert again.exit_code == 1 and "already exists" in again.output


def test_publish_unknown_office_is_misuse(app, tmp_path):
    path = tmp_path / "t.md"
    path.write_text("本文", encoding="utf-8")
    result = _cli(app, "terms", "publish", "--office", "nowhere", "--version", NEW_VERSION, "--file", str(path),
                  "--summary", "s")
    assert result.exit_code == 2


# -- a version published by mistake ------------------------------------------------------------------

def _withdraw(app, version=NEW_VERSION):
    return _cli(app, "terms", "withdraw", "--office", "sakata", "--version", version)


def test_a_version_published_by_mistake_is_withdrawn_before_it_takes_effect_and_published_again(
        app, rt, client, sakata_user, fake_line, tmp_path):
    """A typo in a version not yet in effect: withdrawn (its notice not yet told goes too), then the corrected text
    published for the same date; nobody is asked to consent twice, and the mistaken text is nowhere."""
    _consent_via_chat(sakata_user, fake_line)
    sakata_user.says("中止")
    assert _publish(app, tmp_path, text="第1条 誤記のある本文です。").exit_code == 0
    assert _cli(app, "terms", "broadcast", "--office", "sakata", "--mode", "next-message", "--yes").exit_code == 0
    withdrawn = _withdraw(app)
    assert withdrawn.exit_code == 0 and "withdrew sakata terms 2026-12-10" in withdrawn.output
    assert client.get(f"/terms/sakata/{NEW_VERSION}").status_code == 404
    sakata_user.says("ヘルプ")                                  # the notice of the withdrawn version is not told
    assert not any("改定" in text for text in fake_line.texts_to(sakata_user.user_id))
    rt.clock.freeze(datetime(2026, 12, 10, 9, 0, tzinfo=TOKYO))
    sakata_user.says("予約")                                    # it never took effect: no consent asked
    assert "【確認 1/" in fake_line.texts_to(sakata_user.user_id)[-1]
    sakata_user.says("中止")

    rt.clock.freeze(datetime(2026, 12, 2, 9, 0, tzinfo=TOKYO))
    assert _publish(app, tmp_path, text="第1条 訂正した本文です。").exit_code == 0   # the same date again
    assert _cli(app, "terms", "broadcast", "--office", "sakata", "--mode", "next-message", "--yes").exit_code == 0
    page = client.get(f"/terms/sakata/{NEW_VERSION}").get_data(as_text=True)
    assert "訂正した本文" in page and "誤記" not in page
    sakata_user.says("ヘルプ")
    assert "利用規約が改定されます" in fake_line.texts_to(sakata_user.user_id)[-1]


def test_a_withdrawn_version_told_by_multicast_says_so_and_its_correction_may_be_told_again(app, rt, fake_line,
                                                                                            tmp_path):
    _followers(rt, 3)
    _publish(app, tmp_path)
    assert _cli(app, "terms", "broadcast", "--office", "sakata", "--mode", "multicast", "--yes").exit_code == 0
    withdrawn = _withdraw(app)
    assert withdrawn.exit_code == 0 and "its notice had gone by multicast to 3 followers" in withdrawn.output
    _publish(app, tmp_path, text="第1条 訂正した本文です。")
    assert _cli(app, "terms", "broadcast", "--office", "sakata", "--mode", "multicast", "--yes").exit_code == 0
    assert len(fake_line.deliveries("multicast")) == 2


def test_a_notice_started_as_its_version_is_withdrawn_sends_nothing(app, rt, fake_line, tmp_path, monkeypatch):
    """The operator's second terminal withdraws the version between the estimate and the first call."""
    from bot.cli import terms as terms_cli

    _followers(rt, 3)
    _publish(app, tmp_path)
    checked = terms_cli._stop_outside_push_hours

    def withdrawn_meanwhile(*args):
        checked(*args)
        assert _withdraw(app).exit_code == 0

    monkeypatch.setattr(terms_cli, "_stop_outside_push_hours", withdrawn_meanwhile)
    result = _cli(app, "terms", "broadcast", "--office", "sakata", "--mode", "multicast", "--yes")
    assert result.exit_code == 1 and "version 2026-12-10 was withdrawn meanwhile" in result.output
    assert fake_line.deliveries("multicast") == []
    with rt.db.reading() as s:
        assert s.scalar(select(func.count()).select_from(TermsBroadcast)) == 0


def test_a_notice_being_sent_holds_its_withdrawal_until_stopped_or_its_command_is_gone(app, rt, tmp_path):
    _publish(app, tmp_path)
    with rt.db.transaction() as s:
        run = broadcasts.plan(s, "sakata", NEW_VERSION, "multicast", rt.clock.now())
        assert broadcasts.claim(s, run.id, "runner-1", rt.clock.now())
    going = _withdraw(app)
    assert going.exit_code == 1 and "is being sent: stop it (Ctrl+C) first" in going.output
    rt.clock.advance(seconds=broadcasts.LEASE.total_seconds() + 1)   # its command was killed: nothing is sending
    assert _withdraw(app).exit_code == 0


@pytest.mark.parametrize("version,why", [
    ("2026-12-01", "has taken effect (2026-12-01 in Japan)"),      # published for today: in force already
    ("2023-11-01", "has taken effect"),
    ("2026-12-24", "no version 2026-12-24"),
])
def test_a_version_in_effect_or_unknown_is_not_withdrawn(app, rt, client, tmp_path, version, why):
    _publish(app, tmp_path, version="2026-12-01")
    result = _withdraw(app, version)
    assert result.exit_code == 1 and why in result.output
    assert client.get(f"/terms/sakata/{version}").status_code == (404 if version == "2026-12-24" else 200)


# -- a correction of wording: no new consent ---------------------------------------------------------------

def _correct(app, tmp_path, version=NEW_VERSION, text="第1条 誤字を訂正した本文です。"):
    path = tmp_path / f"correction-{version}.md"
    path.write_text(text, encoding="utf-8")
    return _cli(app, "terms", "publish", "--office", "sakata", "--version", version, "--file", str(path),
                "--summary", "誤字を訂正しました。", "--no-reconsent")


def test_a_typo_fixed_without_new_consent_asks_no_one_who_consented_and_asks_a_new_user(
        app, rt, client, sakata_user, user_factory, fake_line, tmp_path):
    _consent_via_chat(sakata_user, fake_line)                   # 2023-11-01, on 12/1
    sakata_user.says("中止")
    published = _correct(app, tmp_path)
    assert published.exit_code == 0 and "users who consented to 2023-11-01 or later are not asked" in published.output
    rt.clock.freeze(datetime(2026, 12, 10, 9, 0, tzinfo=TOKYO))
    sakata_user.says("予約")
    assert "【確認 1/" in fake_line.texts_to(sakata_user.user_id)[-1]   # straight to the questions
    newcomer = user_factory("sakata")
    newcomer.says("予約")
    assert NEW_VERSION in fake_line.texts_to(newcomer.user_id)[-1]       # consents to the corrected text
    newcomer.says("同意する")
    assert _consents(rt) == 1
    page = client.get("/terms/sakata").get_data(as_text=True)
    assert "誤字を訂正した本文" in page and "この版は字句の訂正です。2023-11-01版以降" in page
    notice = _cli(app, "terms", "broadcast", "--office", "sakata", "--mode", "next-message", "--yes")
    assert notice.exit_code == 1 and "nothing to ask of users" in notice.output
    # A second correction: a consent to the first correction, or to what it corrected, still stands.
    assert _correct(app, tmp_path, version="2026-12-20").exit_code == 0
    rt.clock.freeze(datetime(2026, 12, 20, 9, 0, tzinfo=TOKYO))
    for user in (sakata_user, newcomer):
        user.says("中止")
        user.says("予約")
        assert "【確認 1/" in fake_line.texts_to(user.user_id)[-1]


def test_a_form_open_when_a_typo_fix_takes_effect_is_sent_as_it_is(app, rt, client, sakata_user, fake_line,
                                                                   tmp_path):
    _effective_tomorrow(app, rt, tmp_path)                       # NEW_VERSION asks for consent: withdrawn
    assert _withdraw(app).exit_code == 0
    assert _correct(app, tmp_path).exit_code == 0
    rt.clock.freeze(datetime(2026, 12, 9, 23, 55, tzinfo=TOKYO))
    walk_to_slots(sakata_user, rt)
    sakata_user.says("1")
    confirmation = Page.get(client, form_link(fake_line.messages_to(sakata_user.user_id))).submit(
        client, valid_answers(rt.offices["sakata"]))
    rt.clock.freeze(datetime(2026, 12, 10, 0, 2, tzinfo=TOKYO))  # the correction is in force
    assert "受付番号" in confirmation.submit(client).html


def test_consenting_again_under_a_correction_shows_what_changed_not_the_typo_fixed(app, rt, sakata_user, fake_line,
                                                                                   tmp_path):
    _consent_via_chat(sakata_user, fake_line)                   # 2023-11-01
    sakata_user.says("中止")
    assert _publish(app, tmp_path, version="2026-12-05").exit_code == 0      # asks consent: 第6条の予約方法を変更
    assert _correct(app, tmp_path).exit_code == 0                            # 12/10: its typo fixed
    rt.clock.freeze(datetime(2026, 12, 10, 9, 0, tzinfo=TOKYO))
    sakata_user.says("予約")
    asked = fake_line.texts_to(sakata_user.user_id)[-1]
    assert NEW_VERSION in asked and "第6条の予約方法を変更しました。" in asked and "誤字を訂正しました。" not in asked


CHANGES = {"ja": ("（2026-12-05版）", "※これより前の改定もあります"),
           "en": ("(version 2026-12-05) ", "There were earlier changes too"),
           "easy": ("（2026-12-05）", "※この まえにも かわった ところが あります")}


@pytest.mark.parametrize("language", ["ja", "en", "easy"])
def test_consenting_again_after_two_versions_says_what_each_changed(app, rt, sakata_user, fake_line, tmp_path,
                                                                   language):
    """Two versions published one after the other (the second while the first is still being consented to): a
    user who consented to neither agrees to both changes at once, so both are said, not only the newest's."""
    _consent_via_chat(sakata_user, fake_line)                   # 2023-11-01
    sakata_user.says("中止")
    if language != "ja":
        sakata_user.says({"easy": "やさしい日本語", "en": "English"}[language])
    assert _publish(app, tmp_path, version="2026-12-05", summary="第6条の予約方法を変更しました。").exit_code == 0
    assert _publish(app, tmp_path, summary="第8条の個人情報の扱いを変更しました。").exit_code == 0
    rt.clock.freeze(datetime(2026, 12, 10, 9, 0, tzinfo=TOKYO))
    sakata_user.says("予約")
    asked = fake_line.texts_to(sakata_user.user_id)[-1]
    label, earlier = CHANGES[language]
    assert f"{label}第6条の予約方法を変更しました。" in asked and "第8条の個人情報の扱いを変更しました。" in asked
    assert asked.index("第6条") < asked.index("第8条") and earlier not in asked
    sakata_user.says("同意する")
    sakata_user.says("中止")

    # Consented to the newer: the next version says its own change alone, unlabelled.
    assert _publish(app, tmp_path, version="2026-12-20", summary="第12条を変更しました。").exit_code == 0
    rt.clock.freeze(datetime(2026, 12, 20, 9, 0, tzinfo=TOKYO))
    sakata_user.says("予約")
    asked = fake_line.texts_to(sakata_user.user_id)[-1]
    assert "第12条を変更しました。" in asked and "第8条" not in asked and "2026-12-20版）第12条" not in asked


def test_consenting_again_after_many_versions_says_the_newest_changes_that_fit_and_that_there_were_more(
        app, rt, sakata_user, fake_line, tmp_path):
    from bot.offices import TERMS_SUMMARY_MAX

    _consent_via_chat(sakata_user, fake_line)                   # 2023-11-01
    sakata_user.says("中止")
    for day in (3, 4, 5, 6):
        assert _publish(app, tmp_path, version=f"2026-12-0{day}", summary=f"{day}日の変更です。").exit_code == 0
    assert _publish(app, tmp_path, summary="改" * (TERMS_SUMMARY_MAX - 10)).exit_code == 0
    rt.clock.freeze(datetime(2026, 12, 10, 9, 0, tzinfo=TOKYO))
    sakata_user.says("予約")
    asked = fake_line.texts_to(sakata_user.user_id)[-1]
    assert "改" * (TERMS_SUMMARY_MAX - 10) in asked and "（2026-12-06版）6日の変更です。" in asked
    assert "5日の変更" not in asked and "※これより前の改定もあります" in asked


def test_a_version_between_a_correction_and_what_it_corrects_is_refused(app, rt, tmp_path):
    assert _correct(app, tmp_path, version="2026-12-20").exit_code == 0     # corrects 2023-11-01
    between = _publish(app, tmp_path)                                        # 2026-12-10
    assert between.exit_code == 1 and "2026-12-20 corrects 2023-11-01" in between.output
    assert _withdraw(app, "2026-12-20").exit_code == 0
    assert _publish(app, tmp_path).exit_code == 0
    assert _correct(app, tmp_path, version="2026-12-20").exit_code == 0     # now corrects 2026-12-10
    refused = _withdraw(app, NEW_VERSION)
    assert refused.exit_code == 1 and "2026-12-20 corrects 2026-12-10: withdraw 2026-12-20 first" in refused.output


# -- consenting again -------------------------------------------------------------------------------

def test_old_consenter_consents_again_from_the_effective_date(app, rt, sakata_user, fake_line, tmp_path):
    _consent_via_chat(sakata_user, fake_line)
    sakata_user.says("中止")
    assert _publish(app, tmp_path).exit_code == 0

    # Before the effective date the old consent still holds: straight to the questions.
    sakata_user.says("予約")
    assert "【確認 1/" in fake_line.texts_to(sakata_user.user_id)[-1]
    sakata_user.says("中止")

    rt.clock.freeze(datetime(2026, 12, 10, 9, 0, tzinfo=TOKYO))
    sakata_user.says("予約")
    text = fake_line.texts_to(sakata_user.user_id)[-1]
    assert "改定" in text and "第6条の予約方法を変更しました。" in text and NEW_VERSION in text

    # A stale consent button from the old version is not applied.
    sakata_user.taps(f"a=agree&at=awaiting_consent&o=sakata&v=2023-11-01")
    with rt.db.reading() as s:
        assert s.scalar(select(func.count()).select_from(Consent).where(Consent.version == NEW_VERSION)) == 0
    assert "その後改定されました" in fake_line.texts_to(sakata_user.user_id)[-2]

    sakata_user.taps(f"a=agree&at=awaiting_consent&o=sakata&v={NEW_VERSION}")
    with rt.db.reading() as s:
        consent = s.scalar(select(Consent).where(Consent.version == NEW_VERSION))
        assert consent is not None and consent.method == "button" and consent.office_id == "sakata"
    assert "【確認 1/" in fake_line.texts_to(sakata_user.user_id)[-1]


# -- telling followers ------------------------------------------------------------------------------

def test_multicast_shows_the_cost_first_and_sends_nothing_without_yes(app, rt, fake_line, tmp_path):
    _publish(app, tmp_path)
    _followers(rt, 1200)
    _followers_blocked = 7
    with rt.db.transaction() as s:
        for i in range(_followers_blocked):
            s.add(Conversation(office_id="sakata", line_user_id=f"Ublocked{i:025x}", state="idle", context={},
                               step=0, misses=0, language="ja", followed=False, booking_blocked=False,
                               last_event_ms=0, created_at=rt.clock.now()))
    for extra in ([], ["--dry-run"], ["--dry-run", "--yes"]):
        result = _cli(app, "terms", "broadcast", "--office", "sakata", "--mode", "multicast", *extra)
        assert result.exit_code == 0, result.output
        assert "recipients: 1200" in result.output and "API calls: 3" in result.output
        assert "remaining monthly quota" in result.output
    assert fake_line.deliveries("multicast") == []


def test_exceeding_the_remaining_quota_warns_and_yes_sends_anyway(app, rt, fake_line, tmp_path, monkeypatch):
    """interface.md: an estimate over the remaining monthly quota warns; with --yes the notice is sent anyway, as
    far as LINE takes it (here two of three calls), and the rest waits for a rerun."""
    _publish(app, tmp_path)
    _followers(rt, 1200)
    monkeypatch.setattr(fake_line, "quota_limit", 1000)     # a fixture knob reset() keeps: restored after the test
    estimate = _cli(app, "terms", "broadcast", "--office", "sakata", "--mode", "multicast")
    assert estimate.exit_code == 0, estimate.output
    assert "remaining monthly quota: 1000" in estimate.output
    assert "warning: this exceeds the remaining quota" in estimate.output
    assert fake_line.deliveries("multicast") == []
    sent = _cli(app, "terms", "broadcast", "--office", "sakata", "--mode", "multicast", "--yes")
    assert "warning: this exceeds the remaining quota" in sent.output
    assert [len(d.to) for d in fake_line.deliveries("multicast")] == [500, 500]
    assert sent.exit_code == 1 and "monthly quota" in sent.output


@pytest.mark.parametrize("mode,rest", [
    ("multicast", ", or tell the rest for free in their next reply: the same command with --mode next-message."),
    ("broadcast", "."),
])
def test_a_quota_stop_says_when_a_rerun_helps_and_what_else_tells_the_rest(app, rt, fake_line, tmp_path, mode,
                                                                            rest):
    """Rerun at once after a quota stop and it stops again: the operator reads when to rerun, and (multicast)
    that next-message tells the others for free."""
    _publish(app, tmp_path)
    _followers(rt, 3)
    fake_line.fail_next(1, status=429, path_contains=mode, body={"message": "You have reached your monthly limit."})
    stopped = _cli(app, "terms", "broadcast", "--office", "sakata", "--mode", mode, "--yes")
    assert stopped.exit_code == 1
    assert ("stopped: monthly quota reached; 0 of 1 calls sent. Run the same command again to resume once the quota "
            "allows (next month, or after choosing a larger plan in LINE Official Account Manager)" + rest) \
        in stopped.output


def _notice_in_development_at(make_app, tmp_path, base: str) -> str:
    """`terms broadcast --yes` run in development with PUBLIC_BASE_URL (and so the simulator) at `base`: what it
    said, once it stopped (exit 1)."""
    app = make_app(public_base_url=base, line_api_base_url=f"{base}/simulator/api",
                   line_api_data_base_url=f"{base}/simulator/api")
    _publish(app, tmp_path)
    _followers(app.extensions["madoguchi"], 2)
    result = _cli(app, "terms", "broadcast", "--office", "sakata", "--mode", "multicast", "--yes")
    assert result.exit_code == 1
    return " ".join(result.output.split())


def test_a_notice_in_development_without_the_simulator_says_how_to_reach_it(make_app, tmp_path):
    said = _notice_in_development_at(make_app, tmp_path, "http://127.0.0.1:1")  # nothing listens here
    hint = "in development this is the simulator: start `flask --app app dev`, and when it serves another --port"
    assert f"remaining quota unknown (NewConnectionError; {hint}" in said
    assert f"tried again as long as it allowed; {hint}" in said


def test_a_notice_run_without_app_env_beside_production_says_to_set_it(make_app, fake_line, tmp_path):
    """A one-off command without the Procfile's APP_ENV=production runs in development: its LINE is a simulator
    that the address (the production web process) does not serve (404); it says so and what to set."""
    said = _notice_in_development_at(make_app, tmp_path, fake_line.url)   # answers 404 to /simulator/api/…
    hint = "this command ran in development (APP_ENV is not `production`)"
    assert f"remaining quota unknown (NotFoundException; {hint}" in said
    assert f"see its log line; {hint}" in said


def test_multicast_chunks_within_limits_and_resumes_after_a_quota_stop(app, rt, fake_line, tmp_path):
    _publish(app, tmp_path)
    _followers(rt, 1200)
    fake_line.fail_next(1, status=429, path_contains="multicast",
                        body={"message": "You have reached your monthly limit."})
    first = _cli(app, "terms", "broadcast", "--office", "sakata", "--mode", "multicast", "--yes")
    assert first.exit_code == 1 and "monthly quota" in first.output
    assert fake_line.deliveries("multicast") == []

    # Sent but not recorded (a crash after LINE accepted): the rerun's same retry key gets a 409.
    fake_line.fail_next(1, status=500, path_contains="multicast", fail_after_accept=True)
    second = _cli(app, "terms", "broadcast", "--office", "sakata", "--mode", "multicast", "--yes")
    assert second.exit_code == 0, second.output

    sent = fake_line.deliveries("multicast")
    recipients = [u for d in sent for u in d.to]
    assert len(sent) == 3 and all(len(d.to) <= 500 for d in sent)
    assert sorted(recipients) == sorted(set(recipients)) and len(recipients) == 1200
    keys = [c.retry_key for c in fake_line.calls_to("multicast")]
    assert all(keys) and len(set(keys)) == 3  # one key per chunk, kept across attempts
    assert "改定" in fake_line.texts_to(recipients[0])[-1]

    again = _cli(app, "terms", "broadcast", "--office", "sakata", "--mode", "multicast", "--yes")
    assert again.exit_code == 0 and "already complete" in again.output
    assert len(fake_line.deliveries("multicast")) == 3
    with rt.db.reading() as s:                      # the lists of user ids went once LINE took each call
        chunks = s.scalars(select(BroadcastChunk).order_by(BroadcastChunk.seq)).all()
    assert [(c.status, c.recipients["to"], c.recipients["count"]) for c in chunks] == \
        [("sent", [], 500), ("sent", [], 500), ("sent", [], 200)]


def test_multicast_speaks_each_followers_language(app, rt, fake_line, tmp_path):
    _publish(app, tmp_path)
    now = rt.clock.now()
    languages = ["ja"] * 501 + ["en"] * 3 + ["easy"] * 2
    with rt.db.transaction() as s:
        for i, language in enumerate(languages):
            s.add(Conversation(office_id="sakata", line_user_id=f"U{i:032x}", state="idle", context={}, step=0,
                               misses=0, language=language, followed=True, booking_blocked=False,
                               last_event_ms=0, created_at=now))
    estimate = _cli(app, "terms", "broadcast", "--office", "sakata", "--mode", "multicast")
    assert "recipients: 506" in estimate.output and "API calls: 4" in estimate.output  # 500 + 1 ja, en, easy
    assert _cli(app, "terms", "broadcast", "--office", "sakata", "--mode", "multicast", "--yes").exit_code == 0
    sent = fake_line.deliveries("multicast")
    assert sorted(len(d.to) for d in sent) == [1, 2, 3, 500]
    assert "[Notice]" in fake_line.texts_to(f"U{501:032x}")[-1]            # English
    assert "お知らせ" in fake_line.texts_to(f"U{0:032x}")[-1]               # Japanese
    easy = fake_line.texts_to(f"U{504:032x}")[-1]
    assert easy != fake_line.texts_to(f"U{0:032x}")[-1] and "[Notice]" not in easy


def test_a_multicast_stopped_by_a_refused_token_names_the_setting_and_resumes(app, rt, fake_line, tmp_path):
    _publish(app, tmp_path)
    _followers(rt, 600)
    fake_line.fail_next(1, status=401, path_contains="multicast")
    first = _cli(app, "terms", "broadcast", "--office", "sakata", "--mode", "multicast", "--yes")
    assert first.exit_code == 1 and "LINE_CHANNEL_ACCESS_TOKEN_SAKATA" in first.output
    assert fake_line.deliveries("multicast") == []
    assert _cli(app, "terms", "broadcast", "--office", "sakata", "--mode", "multicast", "--yes").exit_code == 0
    assert sorted(len(d.to) for d in fake_line.deliveries("multicast")) == [100, 500]


def test_a_second_run_while_one_is_going_is_refused(app, rt, fake_line, tmp_path):
    _publish(app, tmp_path)
    _followers(rt, 10)
    with rt.db.transaction() as s:
        run = broadcasts.plan(s, "sakata", NEW_VERSION, "multicast", rt.clock.now())
        assert broadcasts.claim(s, run.id, "another-process", rt.clock.now())
    result = _cli(app, "terms", "broadcast", "--office", "sakata", "--mode", "multicast", "--yes")
    assert result.exit_code == 1 and "in progress" in result.output
    assert ("try again once it has ended (a run whose command was killed, not stopped with Ctrl+C, is taken over "
            "60 s after its last call)") in " ".join(result.output.split())   # when "later" is
    assert fake_line.deliveries("multicast") == []
    # A runner that died (no heartbeat for a while) no longer blocks.
    rt.clock.advance(minutes=5)
    assert _cli(app, "terms", "broadcast", "--office", "sakata", "--mode", "multicast", "--yes").exit_code == 0
    assert len(fake_line.deliveries("multicast")) == 1


def _start_together(app, monkeypatch, modes) -> list[int]:
    """Operators running `terms broadcast --yes` at the same moment, one thread (own connection and
    transactions) each: all of them have read the runs of the version (the estimate) before any plans one.
    Returns their exit codes."""
    from flask.cli import ScriptInfo

    read_all = threading.Barrier(len(modes))
    real = broadcasts.estimate

    def estimate(*args, **kwargs):
        found = real(*args, **kwargs)
        read_all.wait(timeout=30)
        return found

    monkeypatch.setattr(broadcasts, "estimate", estimate)

    def start(mode: str) -> int:
        try:
            app.cli.main(args=["terms", "broadcast", "--office", "sakata", "--mode", mode, "--yes"],
                         prog_name="flask", obj=ScriptInfo(create_app=lambda: app), standalone_mode=False)
        except SystemExit as stop:
            return int(stop.code or 0)
        return 0

    with ThreadPoolExecutor(max_workers=len(modes)) as pool:
        return list(pool.map(start, modes))


@pytest.mark.parametrize("modes", [("multicast", "broadcast"), ("multicast", "next-message"),
                                   ("broadcast", "next-message"), ("multicast", "multicast")])
def test_two_operators_starting_at_once_only_one_sends(app, rt, fake_line, tmp_path, monkeypatch, capsys, modes):
    """A version is told once: two starts racing (two modes, or the same one twice) are decided one after the
    other by the database, whatever each read before. The second finds the first's run: refused while it goes
    (exit 1), or told it is complete (a next-message run completes at once: exit 0); nothing is sent twice."""
    _publish(app, tmp_path)
    _followers(rt, 3)
    capsys.readouterr()
    codes = _start_together(app, monkeypatch, modes)
    said = capsys.readouterr()
    with rt.db.reading() as s:
        waiting = s.scalar(select(func.count()).select_from(Conversation).where(
            Conversation.pending_notice == NEW_VERSION))
        runs = s.scalars(select(TermsBroadcast.mode)).all()
    told = {"multicast": sum(len(d.to) for d in fake_line.deliveries("multicast")),
            "broadcast": len(fake_line.deliveries("broadcast")), "next-message": waiting}
    assert len(runs) == 1 and [mode for mode, n in told.items() if n] == runs, (told, runs)
    assert told[runs[0]] == (1 if runs == ["broadcast"] else 3), told    # one call, or each follower once
    assert 0 in codes and set(codes) <= {0, 1}, said
    if 1 in codes:
        assert "is running" in said.err or "in progress" in said.err, said
    else:
        assert "already complete" in said.out, said


def _at_the_second_multicast(rt, monkeypatch, happen):
    """`happen()` just before the second multicast call goes out; returns the real call."""
    send, calls = rt.line.multicast, []

    def multicast(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            happen()
        return send(*args, **kwargs)

    monkeypatch.setattr(rt.line, "multicast", multicast)
    return send


def _interrupt():
    raise KeyboardInterrupt


def test_a_multicast_stopped_by_the_quota_can_tell_the_rest_by_next_message_only(app, rt, fake_line, tmp_path,
                                                                                monkeypatch):
    _publish(app, tmp_path)
    _followers(rt, 1200)
    _at_the_second_multicast(rt, monkeypatch, lambda: fake_line.fail_next(
        1, status=429, path_contains="multicast", body={"message": "You have reached your monthly limit."}))
    assert _cli(app, "terms", "broadcast", "--office", "sakata", "--mode", "multicast", "--yes").exit_code == 1
    told = {u for d in fake_line.deliveries("multicast") for u in d.to}
    assert len(told) == 500

    estimate = _cli(app, "terms", "broadcast", "--office", "sakata", "--mode", "next-message")
    assert "recipients: 700" in estimate.output and "stopped part-way (monthly quota reached)" in estimate.output
    rest = _cli(app, "terms", "broadcast", "--office", "sakata", "--mode", "next-message", "--yes")
    assert rest.exit_code == 0, rest.output
    with rt.db.reading() as s:
        waiting = set(s.scalars(select(Conversation.line_user_id).where(Conversation.pending_notice == NEW_VERSION)))
    assert len(waiting) == 700 and not waiting & told
    again = _cli(app, "terms", "broadcast", "--office", "sakata", "--mode", "multicast", "--yes")
    assert again.exit_code == 0 and "already complete" in again.output
    assert len(fake_line.deliveries("multicast")) == 1


def test_a_broadcast_stopped_with_ctrl_c_resumes_at_once_without_sending_twice(app, rt, fake_line, tmp_path,
                                                                              monkeypatch):
    _publish(app, tmp_path)
    _followers(rt, 1200)
    send = _at_the_second_multicast(rt, monkeypatch, _interrupt)
    first = _cli(app, "terms", "broadcast", "--office", "sakata", "--mode", "multicast", "--yes")
    assert first.exit_code == 1 and "interrupted" in first.output and "1 of 3 calls sent" in first.output
    monkeypatch.setattr(rt.line, "multicast", send)
    again = _cli(app, "terms", "broadcast", "--office", "sakata", "--mode", "multicast", "--yes")
    assert again.exit_code == 0, again.output
    recipients = [u for d in fake_line.deliveries("multicast") for u in d.to]
    assert len(recipients) == 1200 and len(set(recipients)) == 1200


def test_a_superseded_version_is_not_announced(app, rt, fake_line, tmp_path):
    _followers(rt, 3)
    _publish(app, tmp_path, version="2026-12-01")                     # in force today
    _publish(app, tmp_path)
    old = _cli(app, "terms", "broadcast", "--office", "sakata", "--mode", "multicast", "--version", "2023-11-01",
               "--yes")
    assert old.exit_code == 1 and "2023-11-01 is no longer in force (2026-12-01 is)" in old.output
    assert fake_line.deliveries("multicast") == []
    assert _cli(app, "terms", "broadcast", "--office", "sakata", "--mode", "multicast", "--version", "2026-12-01",
                "--yes").exit_code == 0


def test_broadcast_mode_is_one_call(app, rt, fake_line, tmp_path):
    _publish(app, tmp_path)
    _followers(rt, 3)
    assert _cli(app, "terms", "broadcast", "--office", "sakata", "--mode", "broadcast", "--yes").exit_code == 0
    assert len(fake_line.deliveries("broadcast")) == 1
    with rt.db.reading() as s:
        assert s.scalar(select(TermsBroadcast.status)) == "complete"
        assert s.scalar(select(func.count()).select_from(BroadcastChunk)) == 1


def test_preparing_a_broadcast_counts_the_followers_without_reading_their_ids(app, rt, fake_line, tmp_path):
    """A broadcast or next-message run needs how many follow, not who: the estimate and the plan count them in
    the database instead of loading every follower's id (100,000 of them for a big office)."""
    from tests.sqlwatch import watch

    _publish(app, tmp_path)
    _followers(rt, 3)
    with watch(rt.db.engine) as seen:
        out = _cli(app, "terms", "broadcast", "--office", "sakata", "--mode", "broadcast", "--yes")
    assert out.exit_code == 0 and "recipients: 3" in out.output
    assert not [s for s in seen if s.startswith("SELECT conversations.line_user_id")]
    counts = [s for s in seen if s.startswith("SELECT count(*)") and "FROM conversations" in s]
    assert len([s for s in counts if "NOT LIKE" not in s]) == 2      # the followers; and those blocking it, once
    assert len(counts) == 3


def test_a_version_told_in_one_mode_is_not_told_again_in_another(app, rt, fake_line, tmp_path):
    _publish(app, tmp_path)
    _followers(rt, 3)
    assert _cli(app, "terms", "broadcast", "--office", "sakata", "--mode", "multicast", "--yes").exit_code == 0
    for mode in ("broadcast", "next-message"):
        again = _cli(app, "terms", "broadcast", "--office", "sakata", "--mode", mode, "--yes")
        assert again.exit_code == 0 and "already complete: sakata 2026-12-10 multicast" in again.output
    assert len(fake_line.deliveries("multicast")) == 1 and fake_line.deliveries("broadcast") == []
    with rt.db.reading() as s:
        assert s.scalar(select(func.count()).select_from(TermsBroadcast)) == 1
        assert s.scalar(select(func.count()).select_from(Conversation).where(
            Conversation.pending_notice.is_not(None))) == 0


def test_a_paused_run_is_resumed_in_its_own_mode_not_sent_again_in_another(app, rt, fake_line, tmp_path):
    _publish(app, tmp_path)
    _followers(rt, 3)
    fake_line.fail_next(1, status=429, path_contains="multicast",
                        body={"message": "You have reached your monthly limit."})
    assert _cli(app, "terms", "broadcast", "--office", "sakata", "--mode", "multicast", "--yes").exit_code == 1
    other = _cli(app, "terms", "broadcast", "--office", "sakata", "--mode", "broadcast", "--yes")
    assert other.exit_code == 1
    assert "multicast run of sakata 2026-12-10 is paused (monthly quota reached)" in other.output
    assert "--mode multicast" in other.output and fake_line.deliveries("broadcast") == []
    assert _cli(app, "terms", "broadcast", "--office", "sakata", "--mode", "multicast", "--yes").exit_code == 0
    assert len(fake_line.deliveries("multicast")) == 1


def test_next_message_mode_rides_on_the_next_free_reply_once(app, rt, sakata_user, fake_line, tmp_path):
    sakata_user.follows()
    _publish(app, tmp_path)
    result = _cli(app, "terms", "broadcast", "--office", "sakata", "--mode", "next-message", "--yes")
    assert result.exit_code == 0 and "API calls: 0" in result.output
    assert fake_line.deliveries("push") == [] and fake_line.deliveries("multicast") == []
    sakata_user.says("ヘルプ")
    texts = fake_line.texts_to(sakata_user.user_id)
    assert "利用規約が改定されます" in texts[-1]
    sakata_user.says("ヘルプ")
    assert "利用規約が改定されます" not in fake_line.texts_to(sakata_user.user_id)[-1]


def test_a_notice_told_after_the_effective_date_says_the_terms_have_changed(app, rt, sakata_user, fake_line,
                                                                             tmp_path):
    sakata_user.follows()
    _publish(app, tmp_path)
    assert _cli(app, "terms", "broadcast", "--office", "sakata", "--mode", "next-message", "--yes").exit_code == 0
    rt.clock.freeze(datetime(2026, 12, 20, 9, 0, tzinfo=TOKYO))     # the user next writes after 12/10
    sakata_user.says("ヘルプ")
    notice = fake_line.texts_to(sakata_user.user_id)[-1]
    assert "利用規約が改定されました（2026-12-10から適用）" in notice and "次に予約するときに" in notice
    assert "改定されます" not in notice and "2026-12-10以降に" not in notice


UPCOMING = {"ja": ("※この規約は2026-12-10から改定されます。主な変更点: 第6条の予約方法を変更しました。",
                   "改定後の全文（2026-12-10版）: http://localhost:5000/terms/sakata/2026-12-10\n",
                   "2026-12-10以降に新しく予約するときは、改定後の規約への同意を改めてお願いします。"),
            "en": ("Note: these terms will change from Thu 10 Dec 2026. Main changes",
                   "(version 2026-12-10, in Japanese): http://localhost:5000/terms/sakata/2026-12-10\n",
                   "When you make a new booking on or after Thu 10 Dec 2026, you will be asked to agree"),
            "easy": ("※この ルールは 2026年12月10日(木)から かわります。",
                     "ぜんぶ（ふつうの 日本語）: http://localhost:5000/terms/sakata/2026-12-10\n",
                     "2026年12月10日(木)から あとに あたらしく 予約する ときに、もう一度 同意")}


@pytest.mark.parametrize("language", ["ja", "en", "easy"])
def test_a_new_follower_consenting_before_a_published_version_takes_effect_is_told_it_is_coming(
        app, rt, user_factory, fake_line, tmp_path, language):
    """Followers were told of the new version when it was published; someone who follows later, before its
    date, consents to the terms in force and may book a session that falls after it (which the terms count as
    agreeing to the change): the consent step says the terms change, from when, what, and where to read it."""
    _publish(app, tmp_path)
    assert _cli(app, "terms", "broadcast", "--office", "sakata", "--mode", "next-message", "--yes").exit_code == 0
    user = user_factory("sakata")
    user.follows()
    if language != "ja":
        user.says({"easy": "やさしい日本語", "en": "English"}[language])
    user.says("予約")
    asked = fake_line.texts_to(user.user_id)[-1]
    assert "2023-11-01" in asked and all(part in asked for part in UPCOMING[language])
    assert DEEMED[language] in asked
    user.says("同意する")
    assert _consents(rt, "2023-11-01") == 1 and _consents(rt) == 0

    # A follower told by next-message is not told twice in one reply: the consent step says it already.
    told = user_factory("sakata")
    told.follows()
    assert _cli(app, "terms", "withdraw", "--office", "sakata", "--version", NEW_VERSION).exit_code == 0
    assert _publish(app, tmp_path).exit_code == 0
    assert _cli(app, "terms", "broadcast", "--office", "sakata", "--mode", "next-message", "--yes").exit_code == 0
    told.says("予約")
    reply = fake_line.messages_to(told.user_id)[-1:]
    assert len([m for m in fake_line.texts_to(told.user_id) if "2026-12-10" in m]) == 1, reply


def test_a_correction_to_come_is_not_announced_at_the_consent_step(app, rt, sakata_user, fake_line, tmp_path):
    assert _correct(app, tmp_path).exit_code == 0
    sakata_user.says("予約")
    assert NEW_VERSION not in fake_line.texts_to(sakata_user.user_id)[-1]


def test_a_next_message_notice_is_not_added_to_the_consent_it_announces(app, rt, sakata_user, fake_line, tmp_path):
    _consent_via_chat(sakata_user, fake_line)
    sakata_user.says("中止")
    _publish(app, tmp_path)
    assert _cli(app, "terms", "broadcast", "--office", "sakata", "--mode", "next-message", "--yes").exit_code == 0
    rt.clock.freeze(datetime(2026, 12, 10, 9, 0, tzinfo=TOKYO))

    sakata_user.says("予約")                                   # the reply asks consent to that very version
    reply = fake_line.texts_to(sakata_user.user_id)
    assert "改定されました" in reply[-1] and "第6条の予約方法を変更しました。" in reply[-1]
    assert not any("利用規約が改定されます" in text for text in reply)
    sakata_user.says("同意する")
    sakata_user.says("ヘルプ")                                 # consented already: nothing more to announce
    assert not any("利用規約が改定されます" in text for text in fake_line.texts_to(sakata_user.user_id))


def test_a_next_message_notice_is_not_sent_to_who_consented_to_that_version(app, rt, sakata_user, fake_line,
                                                                            tmp_path):
    sakata_user.follows()
    _publish(app, tmp_path, version="2026-12-01")              # in force today
    assert _cli(app, "terms", "broadcast", "--office", "sakata", "--mode", "next-message", "--yes").exit_code == 0
    with rt.db.transaction() as s:                              # consented on the same day through another way
        conv = s.scalar(select(Conversation))
        s.add(Consent(office_id="sakata", conversation_id=conv.id, version="2026-12-01",
                      consented_at=rt.clock.now(), webhook_event_id="e1", method="text"))
    sakata_user.says("ヘルプ")
    assert not any("利用規約が改定" in text for text in fake_line.texts_to(sakata_user.user_id))


def test_a_next_message_notice_of_a_version_superseded_before_the_user_wrote_is_not_told(app, rt, sakata_user,
                                                                                         fake_line, tmp_path):
    """Told by next-message, then a newer version took effect (told by multicast) before the user wrote: the
    chat announces no superseded version beside a consent that asks the newer one (they would disagree)."""
    sakata_user.follows()
    _publish(app, tmp_path)                                          # 2026-12-10
    assert _cli(app, "terms", "broadcast", "--office", "sakata", "--mode", "next-message", "--yes").exit_code == 0
    _publish(app, tmp_path, version="2026-12-20", summary="第8条を変更しました。")
    rt.clock.freeze(datetime(2026, 12, 20, 9, 0, tzinfo=TOKYO))     # the newer one applies
    assert _cli(app, "terms", "broadcast", "--office", "sakata", "--mode", "multicast", "--yes").exit_code == 0
    sakata_user.says("ヘルプ")
    sakata_user.says("予約")
    texts = fake_line.texts_to(sakata_user.user_id)
    assert not any("2026-12-10" in text for text in texts)
    assert "2026-12-20" in texts[-1]                                 # the consent asks the version in force
    with rt.db.reading() as s:
        assert s.scalar(select(Conversation.pending_notice)) is None


# -- users who block the account while a notice goes ---------------------------------------------------------

def _notices_to(fake_line, user, version=NEW_VERSION):
    return [text for text in fake_line.texts_to(user.user_id) if text.startswith("【お知らせ】")
            and f"（{version}から適用）" in text]


@pytest.mark.parametrize("mode", ["multicast", "broadcast", "next-message"])
def test_a_user_blocking_during_a_notice_is_told_once_on_unblocking(app, rt, sakata_user, fake_line, tmp_path, mode):
    """LINE delivers nothing to a user who blocks the account, and they are asked no consent while their booking
    is open; the terms count using it after the change as agreeing to it: once they unblock, the notice they
    missed comes with the greeting (free, once, after the bookings the greeting says they missed)."""
    sakata_user.follows()
    make_request(rt, user_id=sakata_user.user_id, status="confirmed", notify=False)
    sakata_user.unfollows()
    _publish(app, tmp_path)
    run = _cli(app, "terms", "broadcast", "--office", "sakata", "--mode", mode, "--yes")
    assert run.exit_code == 0, run.output
    assert _notices_to(fake_line, sakata_user) == []

    before = len(fake_line.messages_to(sakata_user.user_id))
    sakata_user.follows(unblocked=True)
    reply = fake_line.texts_to(sakata_user.user_id)[before:]
    assert reply[0].startswith("ブロックを解除していただき") and "お送りできませんでした" in reply[0]
    assert "受付番号" in reply[1]                                  # the bookings, as the greeting says
    assert "利用規約が改定されます（2026-12-10から適用）" in reply[-1] and "第6条の予約方法を変更しました。" in reply[-1]
    sakata_user.says("ヘルプ")
    assert len(_notices_to(fake_line, sakata_user)) == 1

    # The greeting itself is the one of any unblock: only the notice was added after it.
    sakata_user.unfollows()
    again = len(fake_line.messages_to(sakata_user.user_id))
    sakata_user.follows(unblocked=True)
    assert fake_line.texts_to(sakata_user.user_id)[again:] == reply[:-1]
    assert len(_notices_to(fake_line, sakata_user)) == 1
    assert "blocking the account now: 1 users, told in their first reply once they follow again" in run.output


def test_a_follower_blocking_before_their_multicast_call_goes_is_told_later(app, rt, fake_line, tmp_path,
                                                                           monkeypatch):
    """A multicast's recipients are fixed when it is planned; one who blocks before their call goes (a run
    resumed after the quota stopped it) is skipped by LINE, and told in a next reply like any user blocking."""
    _publish(app, tmp_path)
    _followers(rt, 1200)
    blocking = f"U{700:032x}"                                          # in the second call

    def block():
        with rt.db.transaction() as s:
            s.execute(update(Conversation).where(Conversation.line_user_id == blocking).values(followed=False))

    _at_the_second_multicast(rt, monkeypatch, block)
    assert _cli(app, "terms", "broadcast", "--office", "sakata", "--mode", "multicast", "--yes").exit_code == 0
    with rt.db.reading() as s:
        waiting = s.execute(select(Conversation.line_user_id, Conversation.pending_notice)
                            .where(Conversation.pending_notice.is_not(None))).all()
    assert waiting == [(blocking, NEW_VERSION)]


def test_a_user_blocking_during_a_notice_is_told_when_they_write_again(app, rt, sakata_user, fake_line, tmp_path):
    """The unblock's follow event was lost (or answered by another channel): their first message tells it."""
    sakata_user.follows()
    sakata_user.unfollows()
    _publish(app, tmp_path)
    assert _cli(app, "terms", "broadcast", "--office", "sakata", "--mode", "multicast", "--yes").exit_code == 0
    sakata_user.says("予約確認")
    assert "利用規約が改定されます" in fake_line.texts_to(sakata_user.user_id)[-1]
    sakata_user.says("ヘルプ")
    assert len(_notices_to(fake_line, sakata_user)) == 1


def test_a_user_who_consented_to_the_version_is_not_told_of_it_on_unblocking(app, rt, sakata_user, fake_line,
                                                                             tmp_path):
    """Consented to the version in force, then blocked; the operator tells followers of it late: nothing to
    tell them when they come back. Nor is one told who, back by a message (the follow event lost), is asked
    that very version's consent."""
    _publish(app, tmp_path, version="2026-12-01")                     # in force today
    _consent_via_chat(sakata_user, fake_line)
    sakata_user.says("中止")
    sakata_user.unfollows()
    assert _cli(app, "terms", "broadcast", "--office", "sakata", "--mode", "multicast", "--yes").exit_code == 0
    sakata_user.follows(unblocked=True)
    sakata_user.says("ヘルプ")
    assert _notices_to(fake_line, sakata_user, "2026-12-01") == []
    with rt.db.reading() as s:
        assert s.scalar(select(Conversation.pending_notice)) is None


def test_a_user_back_by_a_message_and_asked_that_versions_consent_is_not_told_it(app, rt, sakata_user, fake_line,
                                                                                 tmp_path):
    sakata_user.follows()
    sakata_user.unfollows()
    _publish(app, tmp_path, version="2026-12-01")                     # in force today
    assert _cli(app, "terms", "broadcast", "--office", "sakata", "--mode", "multicast", "--yes").exit_code == 0
    sakata_user.says("予約")                                         # the consent step asks 2026-12-01
    sakata_user.says("同意する")
    sakata_user.says("ヘルプ")
    assert _notices_to(fake_line, sakata_user, "2026-12-01") == []
    assert _consents(rt, "2026-12-01") == 1


def test_a_user_blocking_through_two_notices_is_told_both_unless_one_is_superseded(app, rt, user_factory,
                                                                                   fake_line, tmp_path):
    early, late = user_factory("sakata"), user_factory("sakata")
    for user in (early, late):
        user.follows()
        user.unfollows()
    _publish(app, tmp_path)                                              # 2026-12-10
    assert _cli(app, "terms", "broadcast", "--office", "sakata", "--mode", "multicast", "--yes").exit_code == 0
    _publish(app, tmp_path, version="2026-12-20", summary="第8条を変更しました。")
    assert _cli(app, "terms", "broadcast", "--office", "sakata", "--mode", "next-message", "--yes").exit_code == 0

    early.follows(unblocked=True)                                        # before either applies: both, in order
    reply = fake_line.texts_to(early.user_id)
    assert "（2026-12-10から適用）" in reply[-2] and "（2026-12-20から適用）" in reply[-1]
    assert "第8条を変更しました。" in reply[-1]
    early.says("ヘルプ")
    assert len(_notices_to(fake_line, early)) == 1 and len(_notices_to(fake_line, early, "2026-12-20")) == 1

    rt.clock.freeze(datetime(2026, 12, 21, 9, 0, tzinfo=TOKYO))          # the newer applies: the older is superseded
    late.follows(unblocked=True)
    assert _notices_to(fake_line, late) == []
    told = _notices_to(fake_line, late, "2026-12-20")
    assert len(told) == 1 and "利用規約が改定されました" in told[0]


def test_two_next_message_notices_to_a_follower_who_did_not_write_between_are_both_told(app, rt, sakata_user,
                                                                                         fake_line, tmp_path):
    sakata_user.follows()
    _publish(app, tmp_path)
    assert _cli(app, "terms", "broadcast", "--office", "sakata", "--mode", "next-message", "--yes").exit_code == 0
    _publish(app, tmp_path, version="2026-12-20", summary="第8条を変更しました。")
    assert _cli(app, "terms", "broadcast", "--office", "sakata", "--mode", "next-message", "--yes").exit_code == 0
    sakata_user.says("ヘルプ")
    sakata_user.says("ヘルプ")
    assert len(_notices_to(fake_line, sakata_user)) == 1 and len(_notices_to(fake_line, sakata_user, "2026-12-20")) == 1


def test_withdrawing_a_version_keeps_the_other_notice_a_blocking_user_missed(app, rt, sakata_user, fake_line,
                                                                              tmp_path):
    sakata_user.follows()
    sakata_user.unfollows()
    _publish(app, tmp_path)
    assert _cli(app, "terms", "broadcast", "--office", "sakata", "--mode", "multicast", "--yes").exit_code == 0
    _publish(app, tmp_path, version="2026-12-20", summary="第8条を変更しました。")
    assert _cli(app, "terms", "broadcast", "--office", "sakata", "--mode", "multicast", "--yes").exit_code == 0
    assert _cli(app, "terms", "withdraw", "--office", "sakata", "--version", "2026-12-20").exit_code == 0
    with rt.db.reading() as s:
        assert s.scalar(select(Conversation.pending_notice)) == NEW_VERSION
    sakata_user.follows(unblocked=True)
    assert len(_notices_to(fake_line, sakata_user)) == 1
    assert _notices_to(fake_line, sakata_user, "2026-12-20") == []


def test_a_long_list_of_waiting_notices_keeps_the_newest_that_fit(app, rt, tmp_path):
    _followers(rt, 1, followed=False)
    waiting = [f"2027-0{month}-01" for month in range(1, 6)]
    with rt.db.transaction() as s:
        s.execute(update(Conversation).values(pending_notice=" ".join(waiting)))
        broadcasts.mark_skipped(s, "sakata", "2027-06-01")
        broadcasts.mark_skipped(s, "sakata", "2027-06-01")            # once
    with rt.db.reading() as s:
        assert s.scalar(select(Conversation.pending_notice)) == " ".join(waiting[1:] + ["2027-06-01"])


def test_consent_log_exports_per_office(app, rt, sakata_user, otaru_user, fake_line):
    _consent_via_chat(sakata_user, fake_line)
    _consent_via_chat(otaru_user, fake_line)
    result = _cli(app, "terms", "consents", "--office", "sakata")
    assert result.exit_code == 0
    lines = result.output.strip().splitlines()
    assert lines[0].startswith("office,line_user_id,version,consented_at,method")
    assert len(lines) == 2 and sakata_user.user_id in lines[1] and ",text," in lines[1]
    assert otaru_user.user_id not in result.output


# -- a new version taking effect mid-booking -----------------------------------------------------------

def _effective_tomorrow(app, rt, tmp_path):
    """Publish NEW_VERSION, then move to its effective date."""
    rt.clock.freeze(datetime(2026, 12, 9, 16, 0, tzinfo=TOKYO))
    assert _publish(app, tmp_path).exit_code == 0


def _hold_of(rt, url):
    """The (conversation, hold nonce) a form link is for (a link signed again later reads differently)."""
    data = rt.read_form_token(url.rstrip("/").rsplit("/form/", 1)[1])
    return data["c"], data["n"]


def _consents(rt, version=NEW_VERSION):
    with rt.db.reading() as s:
        return s.scalar(select(func.count()).select_from(Consent).where(Consent.version == version))


NEXT_BOOKING = {"ja": "次のご予約の前に", "easy": "つぎの 予約の まえに", "en": "Before your next booking"}


@pytest.mark.parametrize("language,asked,thanks", [
    ("ja", "予約のお手続きの途中で改定後の規約が適用になりました", "途中から続けます"),
    ("easy", "予約の とちゅうで、あたらしい ルールに なりました", "とちゅうから つづけます"),
    ("en", "The new terms took effect while you were booking", "carry on where you were"),
])
def test_a_version_taking_effect_at_the_questions_is_consented_to_before_the_next_one(
        app, rt, sakata_user, fake_line, tmp_path, language, asked, thanks):
    _effective_tomorrow(app, rt, tmp_path)
    sakata_user.says("予約")
    sakata_user.says("同意する")
    if language != "ja":
        sakata_user.says({"easy": "やさしい日本語", "en": "English"}[language])
    sakata_user.says("はい")                                   # question 1 of 5 answered under the old terms
    rt.clock.freeze(datetime(2026, 12, 10, 9, 0, tzinfo=TOKYO))

    sakata_user.says("はい")                                   # question 2: the new terms come first
    text = fake_line.texts_to(sakata_user.user_id)[-1]
    assert asked in text and NEW_VERSION in text and "第6条の予約方法を変更しました。" in text
    assert NEXT_BOOKING[language] not in text                 # this booking goes on: not "before your next"
    assert _consents(rt) == 0
    with rt.db.reading() as s:
        assert s.scalar(select(Conversation.state)) == "awaiting_consent"

    sakata_user.says("同意する")
    texts = fake_line.texts_to(sakata_user.user_id)
    assert thanks in texts[-2] and "2/5" in texts[-1]          # the question reached, not the first one again
    assert _consents(rt) == 1


BACK = {"ja": "改定後の利用規約に同意いただくまでは、前の手順には戻れません",
        "en": "You cannot go back to an earlier step until you agree to the new terms",
        "easy": "あたらしい ルールに 同意（どうい）する まえは、まえの しつもんに もどれません"}


@pytest.mark.parametrize("language", ["ja", "en", "easy"])
def test_back_at_a_consent_asked_mid_booking_says_why_not_that_there_is_no_earlier_step(
        app, rt, sakata_user, fake_line, tmp_path, language):
    """戻る at the new terms' consent, asked in the middle of a booking: there were earlier steps (the slot
    chosen), so 「これより前の手順はありません」 is wrong; the user is told that consent comes first, and that
    戻る works again once they agree."""
    _effective_tomorrow(app, rt, tmp_path)
    rt.clock.freeze(datetime(2026, 12, 9, 23, 55, tzinfo=TOKYO))
    walk_to_slots(sakata_user, rt)
    sakata_user.says("1")
    if language != "ja":
        sakata_user.says({"easy": "やさしい日本語", "en": "English"}[language])
    rt.clock.freeze(datetime(2026, 12, 10, 0, 2, tzinfo=TOKYO))
    sakata_user.says("予約")
    sakata_user.says("戻る")
    said = fake_line.texts_to(sakata_user.user_id)[-2]
    assert BACK[language] in said and "戻る" in said
    assert "これより前の手順はありません" not in said and "no earlier step" not in said
    sakata_user.says("同意する")
    assert form_link(fake_line.messages_to(sakata_user.user_id))           # the held slot, as before
    sakata_user.says("戻る")                                               # and now back to the slots
    with rt.db.reading() as s:
        assert s.scalar(select(Conversation.state)) == "awaiting_slot"


def test_back_at_the_first_consent_still_says_there_is_no_earlier_step(app, rt, sakata_user, fake_line, tmp_path):
    _effective_tomorrow(app, rt, tmp_path)
    rt.clock.freeze(datetime(2026, 12, 10, 9, 0, tzinfo=TOKYO))
    sakata_user.says("予約")
    sakata_user.says("戻る")
    assert "これより前の手順はありません" in fake_line.texts_to(sakata_user.user_id)[-2]


def test_typed_consent_to_the_terms_shown_before_a_new_version_took_effect_is_not_taken_for_it(
        app, rt, sakata_user, fake_line, tmp_path):
    _effective_tomorrow(app, rt, tmp_path)
    rt.clock.freeze(datetime(2026, 12, 9, 23, 59, tzinfo=TOKYO))
    sakata_user.says("予約")                                   # shown the version in force until midnight
    assert "2023-11-01" in fake_line.texts_to(sakata_user.user_id)[-1]
    rt.clock.freeze(datetime(2026, 12, 10, 0, 1, tzinfo=TOKYO))

    sakata_user.says("同意する")                               # typed after the new version took effect
    texts = fake_line.texts_to(sakata_user.user_id)
    assert _consents(rt) == 0 and "その後改定されました" in texts[-2] and NEW_VERSION in texts[-1]
    sakata_user.says("同意する")                               # now about the version just shown
    assert _consents(rt) == 1 and "【確認 1/" in fake_line.texts_to(sakata_user.user_id)[-1]


def test_the_consent_links_the_text_of_the_version_it_asks_for(app, rt, sakata_user, fake_line, tmp_path):
    # Read at 23:59, tapped after midnight: the link still shows what was asked, not the version in force by then.
    _effective_tomorrow(app, rt, tmp_path)
    rt.clock.freeze(datetime(2026, 12, 9, 23, 59, tzinfo=TOKYO))
    sakata_user.says("予約")
    asked = fake_line.texts_to(sakata_user.user_id)[-1]
    assert f"{rt.config.public_base_url}/terms/sakata/2023-11-01\n" in asked
    rt.clock.freeze(datetime(2026, 12, 10, 0, 1, tzinfo=TOKYO))
    page = app.test_client().get("/terms/sakata/2023-11-01").get_data(as_text=True)
    assert "山形地方裁判所" in page and "改定後の本文" not in page

    sakata_user.says("同意する")
    assert f"{rt.config.public_base_url}/terms/sakata/{NEW_VERSION}\n" in fake_line.texts_to(sakata_user.user_id)[-1]


def test_a_version_taking_effect_while_a_slot_is_held_keeps_the_slot(app, rt, sakata_user, fake_line, tmp_path):
    _effective_tomorrow(app, rt, tmp_path)
    walk_to_slots(sakata_user, rt)
    sakata_user.says("1")
    held = form_link(fake_line.messages_to(sakata_user.user_id))
    rt.clock.freeze(datetime(2026, 12, 10, 0, 5, tzinfo=TOKYO))

    sakata_user.says("予約")                                   # back to the chat after midnight
    assert "改定後の規約が適用になりました" in fake_line.texts_to(sakata_user.user_id)[-1]
    sakata_user.says("同意する")
    assert _hold_of(rt, form_link(fake_line.messages_to(sakata_user.user_id))) == _hold_of(rt, held)  # same hold
    with rt.db.reading() as s:
        assert s.scalar(select(Conversation.state)) == "awaiting_form"
        assert s.scalar(select(func.count()).select_from(SlotHold)) == 1


def _slot_tapped_at_midnight(app, rt, user, tmp_path):
    """The slots shown at 23:55, the first tapped at 00:02, when NEW_VERSION has just taken effect."""
    _effective_tomorrow(app, rt, tmp_path)
    rt.clock.freeze(datetime(2026, 12, 9, 23, 55, tzinfo=TOKYO))
    walk_to_slots(user, rt)
    rt.clock.freeze(datetime(2026, 12, 10, 0, 2, tzinfo=TOKYO))
    user.says("1")


def test_a_slot_chosen_as_a_version_takes_effect_is_held_once_the_user_agrees(app, rt, sakata_user, fake_line,
                                                                               tmp_path):
    _slot_tapped_at_midnight(app, rt, sakata_user, tmp_path)   # the new terms come first
    assert "改定後の規約が適用になりました" in fake_line.texts_to(sakata_user.user_id)[-1]
    with rt.db.reading() as s:
        assert s.scalar(select(func.count()).select_from(SlotHold)) == 0
    sakata_user.says("同意する")
    assert form_link(fake_line.messages_to(sakata_user.user_id))            # that slot, not the list again
    with rt.db.reading() as s:
        assert s.scalar(select(Conversation.state)) == "awaiting_form"
        assert s.scalar(select(func.count()).select_from(SlotHold)) == 1
    assert _consents(rt) == 1


def test_a_slot_chosen_as_a_version_takes_effect_and_taken_meanwhile_is_explained(app, rt, sakata_user, fake_line,
                                                                                    tmp_path):
    from tests.formflow import hold_directly

    _slot_tapped_at_midnight(app, rt, sakata_user, tmp_path)
    hold_directly(rt, "sakata", slot_index=0)                  # someone else takes it while the user reads
    sakata_user.says("同意する")
    texts = fake_line.texts_to(sakata_user.user_id)
    assert "途中から続けます" in texts[-3] and "ちょうど他の方の予約で埋まりました" in texts[-2]
    with rt.db.reading() as s:
        conv = s.scalar(select(Conversation).where(Conversation.line_user_id == sakata_user.user_id))
        assert conv.state == "awaiting_slot"
        assert s.scalar(select(func.count()).select_from(Consent).where(Consent.conversation_id == conv.id)) == 2


def test_declining_a_version_that_took_effect_mid_booking_gives_the_held_slot_back(
        app, rt, sakata_user, fake_line, tmp_path):
    _effective_tomorrow(app, rt, tmp_path)
    walk_to_slots(sakata_user, rt)
    sakata_user.says("1")
    rt.clock.freeze(datetime(2026, 12, 10, 0, 5, tzinfo=TOKYO))
    sakata_user.says("予約")
    sakata_user.says("同意しない")
    with rt.db.reading() as s:
        assert s.scalar(select(Conversation.state)) == "idle"
        assert s.scalar(select(func.count()).select_from(SlotHold)) == 0


def test_declining_while_a_slot_is_held_says_the_slot_is_let_go(app, rt, sakata_user, fake_line, tmp_path):
    _effective_tomorrow(app, rt, tmp_path)
    rt.clock.freeze(datetime(2026, 12, 9, 23, 55, tzinfo=TOKYO))
    walk_to_slots(sakata_user, rt)
    sakata_user.says("1")
    rt.clock.freeze(datetime(2026, 12, 10, 0, 2, tzinfo=TOKYO))   # the hold is still live
    sakata_user.says("予約")
    sakata_user.says("同意しない")
    declined = fake_line.texts_to(sakata_user.user_id)[-1]
    assert "仮押さえは取り消しました" in declined and "お申込み中の予約" not in declined
    with rt.db.reading() as s:
        assert s.scalar(select(func.count()).select_from(SlotHold)) == 0


def test_a_form_open_when_a_version_takes_effect_waits_for_consent_and_keeps_what_was_typed(
        app, rt, client, sakata_user, fake_line, tmp_path):
    _effective_tomorrow(app, rt, tmp_path)
    rt.clock.freeze(datetime(2026, 12, 9, 23, 55, tzinfo=TOKYO))
    walk_to_slots(sakata_user, rt)
    sakata_user.says("1")
    url = form_link(fake_line.messages_to(sakata_user.user_id))
    office = rt.offices["sakata"]
    page = Page.get(client, url)
    assert "改定" not in page.html
    confirmation = page.submit(client, valid_answers(office))
    rt.clock.freeze(datetime(2026, 12, 10, 0, 2, tzinfo=TOKYO))  # the new terms are in force

    sent = confirmation.submit(client)
    assert sent.status == 200 and "受付番号" not in sent.html
    assert f"{NEW_VERSION}から利用規約が改定されました" in sent.html
    assert sent.form.fields["name"] == valid_answers(office)["name"]      # what was typed is still there
    with rt.db.reading() as s:
        assert s.scalar(select(func.count()).select_from(Booking)) == 0
        assert s.scalar(select(func.count()).select_from(SlotHold)) == 1   # the slot stays held

    sakata_user.says("予約")
    sakata_user.says("同意する")
    assert _hold_of(rt, form_link(fake_line.messages_to(sakata_user.user_id))) == _hold_of(rt, url)
    done = sent.submit(client).submit(client)
    assert "受付番号" in done.html and "改定" not in done.html
    with rt.db.reading() as s:
        assert s.scalar(select(Booking.status)) == "requested"
        assert s.scalar(select(Conversation.state)) == "idle"
    assert _consents(rt) == 1


# -- what the terms say of using the service after a change ------------------------------------------------

DEEMED = {"ja": "規約の定め（第13条）により、規約の変更後にオンライン職業相談をご利用になると、変更後の規約に同意したものと"
                "みなされます。",
          "en": "Under the terms (article 13), using online job counselling after a change counts as agreeing to the "
                "changed terms.",
          "easy": "ルールが かわった あとで そうだんを つかうと、あたらしい ルールに 同意（どうい）した ことに "
                  "なります。"}


@pytest.mark.parametrize("language", ["ja", "en", "easy"])
def test_the_notice_of_a_new_version_says_what_the_terms_say_of_using_a_booking_after_it(app, rt, fake_line,
                                                                                        tmp_path, language):
    """Both offices' terms (Sakata 第13条, Otaru 第11条): using the service after a change is agreeing to it. The
    notice says a booking made stays valid, and so what attending it after the change means (a user with one
    ahead is not asked to consent again while it is open: the office takes one open booking per user)."""
    now = rt.clock.now()
    with rt.db.transaction() as s:
        s.add(Conversation(office_id="sakata", line_user_id="U" + "1" * 32, state="idle", context={}, step=0,
                           misses=0, language=language, followed=True, booking_blocked=False, last_event_ms=0,
                           created_at=now))
    _publish(app, tmp_path)
    assert _cli(app, "terms", "broadcast", "--office", "sakata", "--mode", "multicast", "--yes").exit_code == 0
    notice = fake_line.deliveries("multicast")[-1].messages[0]["text"]
    assert DEEMED[language] in notice


# -- the security officer: under which terms each request was made -------------------------------------------

def test_the_booking_page_names_the_terms_version_the_request_was_made_under(app, rt, client, sakata_user,
                                                                           fake_line, tmp_path):
    walk_to_slots(sakata_user, rt)                                   # consents to 2023-11-01 on 12/1
    sakata_user.says("1")
    done = complete_form(client, form_link(fake_line.messages_to(sakata_user.user_id)),
                         valid_answers(rt.offices["sakata"]))
    reference = done.html.split("受付番号: ")[1][:9]
    assert _publish(app, tmp_path, version="2026-12-05").exit_code == 0
    rt.clock.freeze(datetime(2026, 12, 5, 0, 0, tzinfo=TOKYO))      # JST midnight: the new version applies
    create_staff(rt)
    assert login(client).status_code == 302
    page = client.get(f"/staff/bookings/{reference}").get_data(as_text=True)
    consent = page.split('id="terms-consent">')[1].split("</dd>")[0]
    assert "2023-11-01版" in consent and 'href="/terms/sakata/2023-11-01"' in consent
    assert "2026-12-01 10:00にLINEで同意" in consent
    assert "現在の版は" in consent and 'href="/terms/sakata/2026-12-05"' in consent
    assert "山形地方裁判所" in client.get("/terms/sakata/2023-11-01").get_data(as_text=True)   # its text stays


def test_the_csv_export_names_the_terms_version_each_request_was_made_under(app, rt, client, sakata_user,
                                                                           fake_line, tmp_path):
    walk_to_slots(sakata_user, rt)                                   # consents to 2023-11-01 on 12/1
    sakata_user.says("1")
    first = complete_form(client, form_link(fake_line.messages_to(sakata_user.user_id)),
                          valid_answers(rt.offices["sakata"])).html.split("受付番号: ")[1][:9]
    sakata_user.says("中止")
    assert _publish(app, tmp_path, version="2026-12-05").exit_code == 0
    rt.clock.freeze(datetime(2026, 12, 5, 9, 0, tzinfo=TOKYO))
    with rt.db.transaction() as s:                                   # a later consent, after the request
        conv = s.scalar(select(Conversation).where(Conversation.line_user_id == sakata_user.user_id))
        s.add(Consent(office_id="sakata", conversation_id=conv.id, version="2026-12-05", consented_at=rt.clock.now(),
                      webhook_event_id="e" * 26, method="button"))
    phone = make_request(rt, start=datetime(2026, 12, 14, 14, 0, tzinfo=TOKYO))   # no conversation, no consent
    create_staff(rt)
    assert login(client).status_code == 302
    body = post(client, "/staff/export", **{"from": "2026-12-01", "to": "2026-12-31", "encoding": "utf8"}
                ).get_data().decode("utf-8-sig")
    table = list(csv.reader(io.StringIO(body)))
    column = table[0].index("同意した利用規約の版")
    versions = {row[0]: row[column] for row in table[1:]}
    assert versions == {first: "2023-11-01", phone: ""}


@pytest.mark.parametrize("language, switch, said", [("en", "English", "The terms of use changed on Thu 10 Dec 2026."),
                                                    ("easy", "やさしい日本語", "2026年12月10日(木)から ルール")])
def test_the_forms_terms_notice_writes_the_date_in_the_forms_language(app, rt, client, sakata_user, fake_line,
                                                                      tmp_path, language, switch, said):
    _effective_tomorrow(app, rt, tmp_path)
    rt.clock.freeze(datetime(2026, 12, 9, 23, 55, tzinfo=TOKYO))
    sakata_user.says(switch)
    walk_to_slots(sakata_user, rt)
    sakata_user.says("1")
    confirmation = Page.get(client, form_link(fake_line.messages_to(sakata_user.user_id))).submit(
        client, valid_answers(rt.offices["sakata"]))
    rt.clock.freeze(datetime(2026, 12, 10, 0, 2, tzinfo=TOKYO))  # the new terms are in force
    sent = confirmation.submit(client)
    assert said in sent.html and f"{NEW_VERSION}から" not in sent.html and f"on {NEW_VERSION}" not in sent.html
