"""The staff group on LINE: cards without personal data, decisions from the configured group only (承認 in one
tap, お断り after a question), and the user told each outcome by push."""
from __future__ import annotations

import json
import re
import threading
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from bot import outbox
from bot.clock import TOKYO
from bot.notify import staff_postback_data
from bot.render import text_of
from bot.staff import decisions
from bot.staff.audit import Actor
from bot.staff.models import AuditEntry
from tests.lineuser import LineUser, StaffGroup, as_redelivery, new_group_id
from tests.staffkit import fast_password_hashing  # noqa: F401 - autouse fixture
from tests.staffkit import (
    DETAILS, OTARU_WEDNESDAY, SAKATA_MONDAY, booking, create_staff, login, make_request, outbox_rows, postback_value,
    run_worker,
)

PERSONAL_VALUES = [v for d in DETAILS.values() for k, v in d.items() if isinstance(v, str) and k != "companion"]


@pytest.fixture
def group_id():
    return new_group_id()


@pytest.fixture
def app(make_app, group_id):
    return make_app(env={"LINE_STAFF_GROUP_ID_SAKATA": group_id, "LINE_STAFF_GROUP_ID_OTARU": group_id + "o"})


@pytest.fixture
def group(client, rt, fake_line, group_id):
    return StaffGroup(client, "sakata", channel_secret=rt.config.channel_secret("sakata"), group_id=group_id,
                      fake=fake_line, clock=rt.clock)


@pytest.fixture
def user(user_factory):
    return user_factory("sakata")


def _card(fake_line, group_id):
    cards = [m for m in fake_line.messages_to(group_id) if m["type"] == "flex"]
    assert cards, "no card reached the staff group"
    return cards[-1]


def test_a_new_request_cards_the_group_without_personal_data(rt, fake_line, group_id, user):
    reference = make_request(rt, user_id=user.user_id)
    run_worker(rt)
    card = _card(fake_line, group_id)
    words = text_of([card])
    assert reference in words and "12/7(月) 14:00" in words and "ハローワーク酒田" in words
    assert f"/staff/bookings/{reference}" in json.dumps(card, ensure_ascii=False)
    serialised = json.dumps(fake_line.delivered(), ensure_ascii=False)
    for value in PERSONAL_VALUES:
        assert value not in serialised, f"personal value {value!r} went to LINE"
    assert "承認" in words and "お断り" in words
    # 承認 decides at once, お断り asks first: the card says so, and which reason お断り gives the user.
    assert "承認は、押すとすぐにご本人へLINEでお知らせします。お断りは、押すと確認のメッセージが出ます" in words
    assert "お断りの理由は「日程の都合がつかない」として伝わります" in words


def test_tapping_approve_confirms_tells_the_user_and_records_the_member(rt, fake_line, group, user):
    reference = make_request(rt, user_id=user.user_id)
    run_worker(rt)
    approve = postback_value([_card(fake_line, group.group_id)], "承認")
    assert group.taps(approve).status_code == 200
    assert booking(rt, reference).status == "confirmed"
    answer = fake_line.texts_to(group.group_id)[-1]
    assert "承認しました" in answer
    # Sakata's rules leave staff two tasks; a member deciding from LINE is told them there.
    assert "お電話でご本人にお知らせ" in answer and "会議招待メール" in answer and "記録してください" in answer
    run_worker(rt)
    told = fake_line.texts_to(user.user_id)[-1]
    assert "予約が確定しました" in told and "12/7(月) 14:00" in told and reference in told
    assert "会議招待メール" in told and "10分" in told and "キャンセル" in told
    with rt.db.reading() as s:
        entry = s.scalar(select(AuditEntry).where(AuditEntry.action == "confirm"))
        assert entry.actor == "line_group" and entry.line_member_id == group.member_id


def test_approving_on_the_session_day_says_the_deadline_passed_and_promises_only_what_can_happen(
        rt, fake_line, group, user):
    reference = make_request(rt, user_id=user.user_id)
    run_worker(rt)
    card = _card(fake_line, group.group_id)
    assert "予約の締切: 12/4(金) 17:00" in text_of([card]) and "過ぎています" not in text_of([card])
    rt.clock.freeze(datetime(2026, 12, 7, 9, 30, tzinfo=TOKYO))   # Monday 12/7, the session's day (14:00)
    assert group.taps(postback_value([card], "承認")).status_code == 200
    assert booking(rt, reference).status == "confirmed"             # still allowed: the rule says 原則
    reply = fake_line.texts_to(group.group_id)[-1]
    assert "承認しました" in reply and "予約の締切（12/4(金) 17:00）を過ぎてからの承認です" in reply
    # The member is not told to send the invitation 「開催日の前日までに」 on the session's own day.
    assert "前日までに" not in reply
    assert "・求職者マイページに登録されたメールアドレスあてに、開始時刻までに会議招待メールをお送りください。" in reply
    run_worker(rt)
    told = fake_line.texts_to(user.user_id)[-1]
    assert "予約が確定しました" in told and "会議招待メール" in told
    assert "開始時刻までに、求職者マイページ" in told and "前日までに" not in told
    with rt.db.reading() as s:
        assert s.scalar(select(AuditEntry.detail).where(AuditEntry.action == "confirm")) == {"after_deadline": True}


def test_approving_before_the_deadline_promises_the_day_before(rt, fake_line, group, user):
    reference = make_request(rt, user_id=user.user_id)
    run_worker(rt)
    group.taps(postback_value([_card(fake_line, group.group_id)], "承認"))
    assert "締切" not in fake_line.texts_to(group.group_id)[-1]
    assert "・求職者マイページに登録されたメールアドレスあてに、開催日の前日までに" in fake_line.texts_to(group.group_id)[-1]
    run_worker(rt)
    told = fake_line.texts_to(user.user_id)[-1]
    assert booking(rt, reference).status == "confirmed" and "開催日の前日までに" in told


def test_approving_in_the_group_points_to_the_companion_the_form_may_name(rt, fake_line, group, user):
    """Sakata 第12条(3): 「通訳、介助者等同行者の同席が必要な場合には、予め当ハローワークにお伝えください」. The user
    says so on the form; a member approving from the group, who sees no details there, is told where to look
    (the dashboard's details), never whether anyone joins."""
    make_request(rt, user_id=user.user_id)
    run_worker(rt)
    group.taps(postback_value([_card(fake_line, group.group_id)], "承認"))
    answer = fake_line.texts_to(group.group_id)[-1]
    assert "通訳・介助者など同席される方のご希望は、ダッシュボードの予約の画面の申込内容（同席者）でご確認ください。" in answer
    assert "通訳者1名" not in answer and "ベトナム" not in answer


def test_a_no_show_tapped_within_the_grace_period_is_refused(rt, fake_line, group, user):
    reference = make_request(rt, user_id=user.user_id)
    run_worker(rt)
    group.taps(postback_value([_card(fake_line, group.group_id)], "承認"))
    rt.clock.freeze(SAKATA_MONDAY + timedelta(minutes=5))
    group.taps(staff_postback_data("sakata", "no_show", reference))
    assert booking(rt, reference).status == "confirmed"
    assert "開始時刻から10分を過ぎるまで欠席（連絡なし）を記録できません" in fake_line.texts_to(group.group_id)[-1]
    rt.clock.freeze(SAKATA_MONDAY + timedelta(minutes=10))
    group.taps(staff_postback_data("sakata", "no_show", reference))
    assert booking(rt, reference).status == "no_show"
    assert f"受付番号: {reference}（12/7(月) 14:00）の欠席（連絡なし）を記録しました。" in fake_line.texts_to(group.group_id)[-1]


def test_attendance_tapped_in_the_group_is_answered_in_a_plain_sentence(rt, fake_line, group, user):
    reference = make_request(rt, user_id=user.user_id)
    run_worker(rt)
    group.taps(postback_value([_card(fake_line, group.group_id)], "承認"))
    rt.clock.freeze(SAKATA_MONDAY + timedelta(minutes=2))
    group.taps(staff_postback_data("sakata", "attended", reference))
    assert booking(rt, reference).status == "attended"
    reply = fake_line.texts_to(group.group_id)[-1]
    assert f"受付番号: {reference}（12/7(月) 14:00）の出席を記録しました。" in reply
    assert "記録しました" in reply and "の記録しました" not in reply
    # A second member taps 欠席 on the same card: refused (the group's buttons never overwrite a record), and
    # pointed to the dashboard, where a wrong record is corrected with a reason.
    rt.clock.freeze(SAKATA_MONDAY + timedelta(minutes=12))
    group.taps(staff_postback_data("sakata", "no_show", reference))
    assert booking(rt, reference).status == "attended"
    answer = fake_line.texts_to(group.group_id)[-1]
    assert "出欠の記録が誤っている場合は、ダッシュボードの予約の画面で、理由を添えて訂正してください" in answer
    assert "職員メモ" not in answer and f"/staff/bookings/{reference}" in answer


def test_approving_for_a_user_who_blocked_the_account_asks_staff_to_phone(rt, fake_line, group):
    from tests.staffkit import conversation

    conversation(rt, "sakata", "U" + "b" * 32, followed=False)
    reference = make_request(rt, user_id="U" + "b" * 32)
    run_worker(rt)
    group.taps(postback_value([_card(fake_line, group.group_id)], "承認"))
    answer = fake_line.texts_to(group.group_id)[-1]
    assert booking(rt, reference).status == "confirmed"
    assert "LINEではご本人にお知らせできません" in answer and "ご本人にLINEでお知らせします" not in answer


def test_a_second_tap_answers_with_the_current_status_and_tells_the_user_once(rt, fake_line, group, user):
    reference = make_request(rt, user_id=user.user_id)
    run_worker(rt)
    card = _card(fake_line, group.group_id)
    group.taps(postback_value([card], "承認"))
    group.taps(postback_value([card], "承認"), user_id=None)   # LINE for PC: no member id
    group.taps(postback_value([card], "お断り"))
    replies = fake_line.texts_to(group.group_id)
    assert "すでに「確定」です" in replies[-2]
    assert "「確定」" in replies[-1] and "できません" in replies[-1]
    assert booking(rt, reference).status == "confirmed"
    run_worker(rt)
    assert sum("予約が確定しました" in t for t in fake_line.texts_to(user.user_id)) == 1


def _question(fake_line, group_id):
    """The group's last message, checked to be the question a tap on お断り asks."""
    question = fake_line.messages_to(group_id)[-1]
    assert question["type"] == "flex" and question["altText"].startswith("【お断りの確認】"), question
    return question


def _declines(rt) -> int:
    with rt.db.reading() as s:
        return len(s.scalars(select(AuditEntry).where(AuditEntry.action == "decline")).all())


def _told_declined(fake_line, user) -> int:
    return sum("申し訳ありません" in t for t in fake_line.texts_to(user.user_id))


def test_one_tap_on_decline_declines_nothing_and_asks_first(rt, fake_line, group, user):
    """お断り tells the user at once and cannot be undone: a mis-tap next to 承認 must not do it."""
    reference = make_request(rt, user_id=user.user_id)
    run_worker(rt)
    group.taps(postback_value([_card(fake_line, group.group_id)], "お断り"))
    assert booking(rt, reference).status == "requested" and _declines(rt) == 0
    question = _question(fake_line, group.group_id)
    words = text_of([question])
    assert "この申込をお断りしますか？" in words and f"受付番号: {reference}" in words and "12/7(月) 14:00" in words
    assert "お断りの理由を「日程の都合がつかない」としてLINEでお知らせします" in words
    assert postback_value([question], "お断りする") and postback_value([question], "やめる")
    serialised = json.dumps(question, ensure_ascii=False)
    for value in PERSONAL_VALUES:
        assert value not in serialised, f"personal value {value!r} went to LINE"
    run_worker(rt)
    assert _told_declined(fake_line, user) == 0


def test_decline_confirmed_frees_the_slot_and_tells_the_user_kindly_once(rt, fake_line, group, user):
    reference = make_request(rt, user_id=user.user_id)
    run_worker(rt)
    group.taps(postback_value([_card(fake_line, group.group_id)], "お断り"))
    group.taps(postback_value([_question(fake_line, group.group_id)], "お断りする"))
    assert booking(rt, reference).status == "declined" and _declines(rt) == 1
    assert f"受付番号: {reference}（12/7(月) 14:00）をお断りしました。" in fake_line.texts_to(group.group_id)[-1]
    run_worker(rt)
    told = fake_line.texts_to(user.user_id)[-1]
    assert "申し訳ありません" in told and "予約" in told and "窓口" in told
    assert "担当職員の都合がつかず" in told   # the reason the question named
    assert _told_declined(fake_line, user) == 1
    make_request(rt, user_id=None)  # the slot is free again: another request takes it


def test_a_double_tap_on_the_confirm_declines_once(rt, fake_line, group, user):
    reference = make_request(rt, user_id=user.user_id)
    run_worker(rt)
    group.taps(postback_value([_card(fake_line, group.group_id)], "お断り"))
    sure = postback_value([_question(fake_line, group.group_id)], "お断りする")
    group.taps(sure)
    group.taps(sure, user_id=None)   # LINE for PC: no member id
    assert booking(rt, reference).status == "declined" and _declines(rt) == 1
    assert f"受付番号: {reference} は、すでに「お断り」です。" in fake_line.texts_to(group.group_id)[-1]
    run_worker(rt)
    assert _told_declined(fake_line, user) == 1


def test_keeping_the_request_changes_nothing_and_says_so(rt, fake_line, group, user):
    reference = make_request(rt, user_id=user.user_id)
    run_worker(rt)
    card = _card(fake_line, group.group_id)
    group.taps(postback_value([card], "お断り"))
    keep = postback_value([_question(fake_line, group.group_id)], "やめる")
    group.taps(keep)
    assert booking(rt, reference).status == "requested" and _declines(rt) == 0
    answer = fake_line.texts_to(group.group_id)[-1]
    assert f"受付番号: {reference}（12/7(月) 14:00）は、お断りせずにそのままにしました（何も変更していません）。" in answer
    assert "現在の状況は「確認待ち」です。" in answer
    # An old やめる tapped after the request was approved: nothing changes, and the answer says where it stands.
    group.taps(postback_value([card], "承認"))
    group.taps(keep)
    assert booking(rt, reference).status == "confirmed"
    assert "何も変更していません" in fake_line.texts_to(group.group_id)[-1]
    assert "現在の状況は「確定」です。" in fake_line.texts_to(group.group_id)[-1]
    run_worker(rt)
    assert _told_declined(fake_line, user) == 0


def test_a_confirm_pressed_after_the_request_was_decided_declines_nothing(rt, fake_line, group, user, user_factory):
    """The question stays in the group: 「お断りする」 pressed after another member approved, or after the user
    withdrew, answers with what happened meanwhile, as any stale tap does."""
    reference = make_request(rt, user_id=user.user_id)
    run_worker(rt)
    card = _card(fake_line, group.group_id)
    group.taps(postback_value([card], "お断り"))
    sure = postback_value([_question(fake_line, group.group_id)], "お断りする")
    StaffGroup(group.target, "sakata", channel_secret=rt.config.channel_secret("sakata"), group_id=group.group_id,
               fake=fake_line, clock=rt.clock).taps(postback_value([card], "承認"))   # another member
    group.taps(sure)
    assert booking(rt, reference).status == "confirmed" and _declines(rt) == 0
    assert "すでに承認されています" in fake_line.texts_to(group.group_id)[-1]
    run_worker(rt)
    assert _told_declined(fake_line, user) == 0
    assert sum("予約が確定しました" in t for t in fake_line.texts_to(user.user_id)) == 1
    # The user withdrew while the question was open.
    other = user_factory("sakata")
    withdrawn = make_request(rt, start=SAKATA_MONDAY + timedelta(days=7), user_id=other.user_id)
    run_worker(rt)
    group.taps(postback_value([_card(fake_line, group.group_id)], "お断り"))
    sure = postback_value([_question(fake_line, group.group_id)], "お断りする")
    other.says("予約確認")
    other.taps(postback_value(other.messages(), "取り下げる"))
    other.taps(postback_value(other.messages()[-1:], "取り下げる"))   # the chat asks first
    group.taps(sure)
    assert booking(rt, withdrawn).status == "withdrawn" and _declines(rt) == 0
    assert "ご本人が申込を取り下げました" in fake_line.texts_to(group.group_id)[-1]


def test_an_old_cards_one_tap_decline_asks_first(rt, fake_line, group, user):
    """Cards sent before お断り asked first carry the one-tap form: it asks too, and declines nothing."""
    reference = make_request(rt, user_id=user.user_id)
    group.taps(f"a=staff&d=decline&r={reference}&o=sakata")
    assert booking(rt, reference).status == "requested" and _declines(rt) == 0
    assert reference in text_of([_question(fake_line, group.group_id)])


def test_the_question_for_a_user_who_blocked_the_account_promises_no_line_message(rt, fake_line, group):
    from tests.staffkit import conversation

    conversation(rt, "sakata", "U" + "b" * 32, followed=False)
    reference = make_request(rt, user_id="U" + "b" * 32)
    group.taps(f"a=staff&d=decline&r={reference}&o=sakata")
    words = text_of([_question(fake_line, group.group_id)])
    assert "ご本人にはLINEでお知らせできません" in words and "お電話などで" in words
    assert "LINEでお知らせします" not in words and booking(rt, reference).status == "requested"


def test_a_confirm_naming_a_reason_no_longer_offered_asks_again(rt, fake_line, group, user):
    reference = make_request(rt, user_id=user.user_id)
    group.taps(staff_postback_data("sakata", "decline_yes", reference, y="retired_reason"))
    assert booking(rt, reference).status == "requested" and _declines(rt) == 0
    assert "「日程の都合がつかない」" in text_of([_question(fake_line, group.group_id)])


def test_a_staff_postback_forged_in_a_user_chat_is_refused(rt, fake_line, user):
    reference = make_request(rt, user_id=user.user_id)
    data = f"a=staff&d=confirm&r={reference}&o=sakata"
    assert user.taps(data).status_code == 200
    assert booking(rt, reference).status == "requested"


def test_a_staff_postback_from_another_group_is_refused(rt, client, fake_line, group, user):
    reference = make_request(rt, user_id=user.user_id)
    run_worker(rt)
    approve = postback_value([_card(fake_line, group.group_id)], "承認")
    other = StaffGroup(client, "sakata", channel_secret=rt.config.channel_secret("sakata"), fake=fake_line,
                       clock=rt.clock)
    assert other.taps(approve).status_code == 200
    assert booking(rt, reference).status == "requested"
    assert fake_line.texts_to(other.group_id) == []


def test_a_postback_naming_another_offices_booking_is_refused(rt, fake_line, group, otaru_user):
    reference = make_request(rt, "otaru", OTARU_WEDNESDAY, user_id=otaru_user.user_id)
    group.taps(f"a=staff&d=confirm&r={reference}&o=sakata")
    assert booking(rt, reference).status == "requested"
    assert "見つかりませんでした" in fake_line.texts_to(group.group_id)[-1]


def test_confirming_a_request_the_user_just_withdrew(rt, fake_line, group, user):
    reference = make_request(rt, user_id=user.user_id)
    run_worker(rt)
    approve = postback_value([_card(fake_line, group.group_id)], "承認")
    user.says("予約確認")
    user.taps(postback_value(user.messages(), "取り下げる"))
    user.taps(postback_value(user.messages()[-1:], "取り下げる"))   # the chat asks first
    assert booking(rt, reference).status == "withdrawn"
    group.taps(approve)
    assert booking(rt, reference).status == "withdrawn"
    assert "取り下げ" in fake_line.texts_to(group.group_id)[-1]
    assert "ご本人が申込を取り下げました。ご本人への連絡は要りません。" in fake_line.texts_to(group.group_id)[-1]
    run_worker(rt)
    assert not any("予約が確定しました" in t for t in fake_line.texts_to(user.user_id))


def test_each_card_says_what_is_left_for_staff_to_do(rt, fake_line, group, user, user_factory):
    withdrawn = make_request(rt, user_id=user.user_id)
    run_worker(rt)
    user.says("予約確認")
    user.taps(postback_value(user.messages(), "取り下げる"))
    user.taps(postback_value(user.messages()[-1:], "取り下げる"))   # the chat asks first
    run_worker(rt)
    assert "枠は空きに戻りました。対応は要りません。" in text_of([_card(fake_line, group.group_id)])
    # Another slot proposed and accepted: the booking is confirmed, and Sakata's two tasks are named.
    other = user_factory("sakata")
    reference = make_request(rt, start=SAKATA_MONDAY + timedelta(days=7), user_id=other.user_id)
    with rt.db.transaction() as s:
        row = decisions.load(s, "sakata", reference=reference)
        decisions.propose(s, rt, rt.offices["sakata"], row, Actor(label="tanaka"), rt.clock.now(),
                          SAKATA_MONDAY + timedelta(days=7, hours=1))
    run_worker(rt)
    other.taps(postback_value(fake_line.messages_to(other.user_id), "この日時で予約する"))
    run_worker(rt)
    card = text_of([_card(fake_line, group.group_id)])
    assert "提案した日時の承諾" in card and reference in card and withdrawn not in card
    assert "予約が確定しました。確定した日時を、お電話でご本人にお知らせしてください。" in card
    assert "会議招待メールをお送りください。済んだら、ダッシュボードの予約の画面で記録してください。" in card


def test_approving_a_request_after_another_slot_was_proposed_is_refused(rt, fake_line, group, user):
    """Staff proposed another slot on the dashboard; a colleague then taps 承認 on the request's card: the
    user must not be booked for a time they never agreed to. Their own answer decides."""
    reference = make_request(rt, user_id=user.user_id)
    run_worker(rt)
    card = _card(fake_line, group.group_id)
    approve = postback_value([card], "承認")
    group.taps(postback_value([card], "お断り"))
    sure = postback_value([_question(fake_line, group.group_id)], "お断りする")
    with rt.db.transaction() as s:
        row = decisions.load(s, "sakata", reference=reference)
        decisions.propose(s, rt, rt.offices["sakata"], row, Actor(label="sakata-staff"), rt.clock.now(),
                          SAKATA_MONDAY + timedelta(days=7))
    # 「お断りする」 asked for before the offer: it would take back the offer the user is answering.
    group.taps(sure)
    assert booking(rt, reference).status == "proposed"
    assert "ご提案中のため、お断りできません" in fake_line.texts_to(group.group_id)[-1]
    group.taps(approve)
    assert booking(rt, reference).status == "proposed"
    assert "ご提案中のため、承認できません" in fake_line.texts_to(group.group_id)[-1]
    # お断り on the same old card would take back the offer the user is answering: refused the same way.
    group.taps(postback_value([_card(fake_line, group.group_id)], "お断り"))
    assert booking(rt, reference).status == "proposed"
    assert "ご提案中のため、お断りできません" in fake_line.texts_to(group.group_id)[-1]
    run_worker(rt)
    assert not any("予約が確定しました" in t for t in fake_line.texts_to(user.user_id))
    user.taps(postback_value(fake_line.messages_to(user.user_id), "この日時で予約する"))
    assert booking(rt, reference).status == "confirmed"


def test_two_staff_confirming_at_once_decide_once(make_app, group_id, fake_line, user_factory):
    """Two staff members tap 承認 on the same card at once, each tap served by another app process: one decision,
    one push (the group against the dashboard: tests/test_races.py)."""
    apps = [make_app(env={"LINE_STAFF_GROUP_ID_SAKATA": group_id}) for _ in range(2)]
    rt = apps[0].extensions["madoguchi"]
    user = LineUser(apps[0].test_client(), "sakata", channel_secret=rt.config.channel_secret("sakata"),
                    fake=fake_line, clock=rt.clock)
    reference = make_request(rt, user_id=user.user_id)
    groups = [StaffGroup(a.test_client(), "sakata", channel_secret=rt.config.channel_secret("sakata"),
                         group_id=group_id, fake=fake_line, clock=a.extensions["madoguchi"].clock) for a in apps]
    data = f"a=staff&d=confirm&r={reference}&o=sakata"
    barrier = threading.Barrier(2)

    def tap(g):
        barrier.wait()
        assert g.taps(data).status_code == 200

    threads = [threading.Thread(target=tap, args=(g,)) for g in groups]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert booking(rt, reference).status == "confirmed"
    with rt.db.reading() as s:
        assert len(s.scalars(select(AuditEntry).where(AuditEntry.action == "confirm")).all()) == 1
    assert len(outbox_rows(rt, purpose="outcome_confirmed")) == 1
    replies = fake_line.texts_to(group_id)
    # The other tap is told it was done already; on a machine so loaded that the first decision held the
    # booking's row lock past both of the second's lock waits (250 ms each), it is told nothing changed and to
    # tap again, which then says "already" (checked below). Never a second decision.
    assert sum("承認しました" in r for r in replies) == 1 and len(replies) == 2
    [other] = [r for r in replies if "承認しました" not in r]
    assert "すでに" in other or "何も変更していません" in other, other
    if "すでに" not in other:
        groups[1].taps(data)
        assert "すでに" in fake_line.texts_to(group_id)[-1]


def test_each_card_kind_can_be_turned_off_in_the_profile(rt, fake_line, group_id, user):
    import dataclasses

    office = rt.offices["sakata"]
    rt.offices["sakata"] = dataclasses.replace(office, staff_cards={**office.staff_cards, "new_request": False})
    try:
        make_request(rt, user_id=user.user_id)
        run_worker(rt)
        assert fake_line.messages_to(group_id) == []
    finally:
        rt.offices["sakata"] = office


def test_no_group_configured_means_dashboard_only(make_app, fake_line, user_factory):
    app = make_app(env={})
    rt = app.extensions["madoguchi"]
    make_request(rt)
    run_worker(rt)
    assert fake_line.deliveries("push") == []
    with rt.db.reading() as s:
        from bot.models import StaffNotice

        assert s.scalar(select(StaffNotice.kind)) == "new_request"


def test_otaru_confirmation_never_carries_a_meeting_id_or_password(make_app, fake_line, user_factory):
    group_id = new_group_id()
    app = make_app(env={"LINE_STAFF_GROUP_ID_OTARU": group_id})
    rt = app.extensions["madoguchi"]
    user = LineUser(app.test_client(), "otaru", channel_secret=rt.config.channel_secret("otaru"), fake=fake_line,
                    clock=rt.clock)
    group = StaffGroup(app.test_client(), "otaru", channel_secret=rt.config.channel_secret("otaru"),
                       group_id=group_id, fake=fake_line, clock=rt.clock)
    reference = make_request(rt, "otaru", OTARU_WEDNESDAY, user_id=user.user_id)
    run_worker(rt)
    group.taps(postback_value([_card(fake_line, group_id)], "承認"))
    answer = fake_line.texts_to(group_id)[-1]   # Otaru's task: the meeting ID and password, not a phone call
    assert "ミーティングIDとパスワード" in answer and "お電話でご本人にお知らせしてください" not in answer
    run_worker(rt)
    told = fake_line.texts_to(user.user_id)[-1]
    assert "予約が確定しました" in told and "12/2(水) 10:00" in told and reference in told
    assert "求職者マイページまたはお電話" in told and "LINEではお知らせしません" in told
    assert "前日" in told  # Otaru: cancel in chat until the previous day


def test_otaru_confirmed_on_the_day_offers_only_the_same_day_routes(rt, client, fake_line, group_id, user_factory):
    otaru_group = StaffGroup(client, "otaru", channel_secret=rt.config.channel_secret("otaru"),
                             group_id=group_id + "o", fake=fake_line, clock=rt.clock)
    user = user_factory("otaru")
    make_request(rt, "otaru", OTARU_WEDNESDAY, user_id=user.user_id)
    run_worker(rt)
    rt.clock.freeze(datetime(2026, 12, 2, 9, 0, tzinfo=TOKYO))   # Wednesday 12/2, an hour before the session
    otaru_group.taps(postback_value([_card(fake_line, otaru_group.group_id)], "承認"))
    assert "予約の締切（12/1(火) 17:00）を過ぎてからの承認です" in fake_line.texts_to(otaru_group.group_id)[-1]
    run_worker(rt)
    told = fake_line.texts_to(user.user_id)[-1]
    assert "予約が確定しました" in told and "開始時刻までに求職者マイページまたはお電話" in told
    assert "このトークで" not in told and "前日" not in told    # in-chat cancelling closed the day before
    assert "当日キャンセルの場合は電話のみ" in told


@pytest.mark.parametrize("fault", [500, 429, "quota", 409, "timeout"])
def test_cards_survive_line_faults_and_arrive_once(make_app, fake_line, group_id, fault, clock_step=70):
    # A short client timeout only where the fault is one: on a busy machine an answer may take over 0.3 s.
    app = make_app(env={"LINE_STAFF_GROUP_ID_SAKATA": group_id},
                   line_timeout_seconds=0.3 if fault == "timeout" else 5.0)
    rt = app.extensions["madoguchi"]
    make_request(rt)
    saved_timeout = fake_line.timeout_seconds
    fake_line.timeout_seconds = 0.6
    try:
        if fault == "quota":
            fake_line.fail_next(1, 429, path_contains="push", body={"message": "You have reached your monthly limit."})
        elif fault == "timeout":
            fake_line.fail_next(1, "timeout", path_contains="push", fail_after_accept=True)
        elif fault == 409:
            fake_line.fail_next(1, 500, path_contains="push", fail_after_accept=True)
        else:
            fake_line.fail_next(1, fault, path_contains="push")
        run_worker(rt)
        row = outbox_rows(rt, purpose="staff_card")[0]
        assert row.status == ("held" if fault == "quota" else "pending")
        if fault == "quota":
            assert row.last_error == "429"
        for _ in range(5):
            rt.clock.advance(seconds=clock_step)
            run_worker(rt)
        assert outbox_rows(rt, purpose="staff_card")[0].status == "sent"
        assert len([m for m in fake_line.messages_to(group_id) if m["type"] == "flex"]) == 1
    finally:
        fake_line.timeout_seconds = saved_timeout


def test_a_worker_killed_between_send_and_commit_does_not_card_twice(rt, fake_line, group_id):
    """The row was claimed and sent, then the process died: after the lease it is sent again with the same
    retry key, LINE answers 409, and the group has one card."""
    from bot.outbox import SENDING_LEASE

    make_request(rt)
    sender = rt.sender()
    rows = sender._claim_due(10)                      # claimed ("sending") ...
    row = next(r for r in rows if r.purpose == "staff_card")
    result = rt.line.push("sakata", row.recipient, row.payload["messages"], row.retry_key)
    assert result.delivered                          # ... delivered, and never recorded: the crash
    rt.clock.advance(seconds=SENDING_LEASE.total_seconds() + 1)
    run_worker(rt)
    assert outbox_rows(rt, purpose="staff_card")[0].status == "sent"
    assert len([m for m in fake_line.messages_to(group_id) if m["type"] == "flex"]) == 1
    assert fake_line.calls_to("push")[-1].status == 409


def test_follow_up_cards_follow_the_new_request_switch(rt, fake_line, group_id):
    import dataclasses
    from datetime import datetime, timedelta

    from bot.clock import TOKYO
    from bot.staff import jobs as staff_jobs

    office = rt.offices["sakata"]
    rt.offices["sakata"] = dataclasses.replace(office, staff_cards={**office.staff_cards, "new_request": False})
    try:
        make_request(rt)
        rt.clock.freeze(datetime(2026, 12, 4, 9, 5, tzinfo=TOKYO))   # Friday: the undecided reminder is due
        assert staff_jobs.run_due(rt)["staff_reminded_undecided"] == 1
        run_worker(rt)
        assert fake_line.messages_to(group_id) == []                  # on the dashboard only
    finally:
        rt.offices["sakata"] = office


def test_the_group_names_a_status_as_the_dashboard_does(rt, fake_line, group, user, client):
    """Staff read one word for a status in the group and on the dashboard (確認待ち, お断り), not the user's words
    from 予約確認 (受付済み（職員の確認待ち）, お受けできませんでした): 「現在「お受けできませんでした」のため、承認は
    できません」 read as the user's answer, not as what a colleague did."""
    reference = make_request(rt, user_id=user.user_id)
    run_worker(rt)
    card = _card(fake_line, group.group_id)
    assert "状況: 確認待ち" in text_of([card]) and "受付済み" not in text_of([card])
    group.taps(postback_value([card], "お断り"))
    group.taps(postback_value([_question(fake_line, group.group_id)], "お断りする"))
    group.taps(postback_value([card], "承認"))
    answer = fake_line.texts_to(group.group_id)[-1]
    assert "現在「お断り」のため、承認はできません。すでにお断りしています。" in answer
    assert "お受けできませんでした" not in answer
    create_staff(rt)
    login(client)
    page = client.get(f"/staff/bookings/{reference}").get_data(as_text=True)
    assert '<span class="status status-declined" id="status">お断り</span>' in page


def test_a_user_who_unblocks_is_shown_what_happened_to_their_booking_meanwhile(rt, fake_line, group, user):
    """Approved while the user had blocked the account: LINE could not tell them. When they unblock, the greeting
    says so and lists their bookings, so they learn that the session is confirmed without having to ask."""
    reference = make_request(rt, user_id=user.user_id)
    run_worker(rt)
    user.unfollows()
    group.taps(postback_value([_card(fake_line, group.group_id)], "承認"))
    run_worker(rt)
    assert booking(rt, reference).status == "confirmed"
    assert not any("予約が確定しました" in t for t in user.texts())
    before = len(user.texts())
    user.follows(unblocked=True)
    back = "\n".join(user.texts()[before:])
    assert "ブロックされていた間" in back
    assert reference in back and "予約確定" in back
    assert "友だち追加ありがとうございます" not in back


def test_a_user_who_unblocks_with_no_booking_ahead_is_greeted_as_before(rt, fake_line, user):
    user.follows()
    first = user.texts()
    user.unfollows()
    user.follows(unblocked=True)
    again = user.texts()[len(first):]
    assert len(again) == 1 and "ブロックされていた間" not in again[0] and "「予約」と送ってください" in again[0]


def test_staff_are_told_when_the_bot_was_removed_from_the_staff_group(rt, client, fake_line, group):
    """A leave event from the staff group: no card can reach it any more, and the pages where staff look for
    handoffs say so until the bot is invited back."""
    create_staff(rt)
    login(client)
    group.joins()
    assert "退出しました" not in client.get("/staff/queue").get_data(as_text=True)
    group.leaves()
    for path in ("/staff/queue", "/staff/groups"):
        page = client.get(path).get_data(as_text=True)
        assert "公式アカウントが職員グループから退出しました" in page and "招待し直してください" in page
    group.joins()
    assert "退出しました" not in client.get("/staff/queue").get_data(as_text=True)


def _a_card_refused(rt, client, fake_line, group, user) -> None:
    """Staff logged in, the bot in the group as far as anyone knows, and LINE refusing the first card (400)."""
    create_staff(rt)
    login(client)
    group.joins()
    make_request(rt, user_id=user.user_id)
    fake_line.fail_next(status=400, path_contains="/push", body={"message": "Failed to send messages"})
    run_worker(rt)


def test_staff_are_told_when_line_refuses_the_cards_to_the_staff_group(rt, client, fake_line, group, user):
    """The bot removed from the staff group while the webhook was down (its leave event never handled), or the
    group's id mistyped: LINE refuses every card (400), and no leave event says so. The request waits in 対応待ち all
    the same, and the pages where staff look for handoffs say that the group's cards are refused, until one goes
    through again."""
    _a_card_refused(rt, client, fake_line, group, user)
    assert [r.status for r in outbox_rows(rt, purpose="staff_card")] == ["failed"]
    for path in ("/staff/queue", "/staff/groups"):
        page = client.get(path).get_data(as_text=True)
        assert "職員グループへのお知らせをLINEが受け付けていません" in page, path
        assert "退出しました" not in page
    queue = client.get("/staff/queue").get_data(as_text=True)
    assert "対応待ち" in queue
    make_request(rt, user_id=user.user_id, start=SAKATA_MONDAY + timedelta(hours=1))   # a card that arrives
    run_worker(rt)
    assert "LINEが受け付けていません" not in client.get("/staff/queue").get_data(as_text=True)


def test_invited_back_after_refused_cards_the_group_is_no_longer_said_to_refuse_them(rt, client, fake_line, group,
                                                                                      user):
    """The bot was removed without a leave event, and staff invite it back: its join says it is in the group."""
    _a_card_refused(rt, client, fake_line, group, user)
    assert "LINEが受け付けていません" in client.get("/staff/queue").get_data(as_text=True)
    rt.clock.advance(seconds=60)
    group.joins()
    assert "LINEが受け付けていません" not in client.get("/staff/queue").get_data(as_text=True)


def test_no_alarm_about_the_staff_group_for_a_users_refusal_or_a_card_given_up_after_outages(rt, client, fake_line,
                                                                                               group, user):
    """A push refused to a user says nothing of the group; nor does a card given up after its tries through LINE's
    5xx (LINE was in trouble, it did not refuse the group)."""
    create_staff(rt)
    login(client)
    fake_line.fail_next(status=400, path_contains="/push", body={"message": "Failed to send messages"})
    with rt.db.transaction() as s:
        outbox.add(s, office="sakata", kind="push", recipient=user.user_id,
                   messages=[{"type": "text", "text": "x"}], now=rt.clock.now())
        card = outbox.add(s, office="sakata", kind="push", recipient=group.group_id,
                          messages=[{"type": "text", "text": "x"}], now=rt.clock.now(), purpose="staff_card")
        card.status, card.last_error, card.attempts = "failed", "http 500", outbox.MAX_ATTEMPTS
    run_worker(rt)
    assert "LINEが受け付けていません" not in client.get("/staff/queue").get_data(as_text=True)


def test_approving_a_job_seeker_number_another_line_account_has_booked_is_left_to_the_dashboard(
        rt, fake_line, group, user, user_factory):
    """One open booking per person: a member approving from LINE never sees the booking page's 同じ求職番号. When
    another LINE account's booking with the same number is already confirmed, 承認 in the group changes nothing
    and sends them to the dashboard (naming no one: the reply carries only the 受付番号)."""
    first = make_request(rt, user_id=user.user_id)
    run_worker(rt)
    first_card = _card(fake_line, group.group_id)
    second = make_request(rt, start=SAKATA_MONDAY + timedelta(days=7), user_id=user_factory("sakata").user_id)
    run_worker(rt)
    second_card = _card(fake_line, group.group_id)   # carded while the first was still undecided
    group.taps(postback_value([first_card], "承認"))
    assert booking(rt, first).status == "confirmed"
    group.taps(postback_value([second_card], "承認"))
    assert booking(rt, second).status == "requested"
    answer = fake_line.texts_to(group.group_id)[-1]
    assert second in answer and "同じ求職番号" in answer and "ダッシュボード" in answer and first not in answer
    for value in PERSONAL_VALUES:
        assert value not in answer
    # A request of that number made after the first was confirmed: its card offers no 承認, and says why.
    third = make_request(rt, start=SAKATA_MONDAY + timedelta(days=14), user_id=user_factory("sakata").user_id)
    run_worker(rt)
    card = _card(fake_line, group.group_id)
    words = text_of([card])
    assert third in words and "同じ求職番号の別のLINEアカウントの予約が、すでに確定しています" in words
    labels = [b["action"]["label"] for b in card["contents"]["footer"]["contents"]]
    assert "承認" not in labels and "お断り" in labels and "承認は、押すとすぐに" not in words


# -- the bot removed from the staff group (LINE's leave event) and invited back (join) ------------------------------
# Nothing is queued to a group that cannot take it, the dashboard keeps every request, and the group is told once,
# when the bot is back, what waits.

FRIDAY_MORNING = datetime(2026, 12, 4, 9, 5, tzinfo=TOKYO)   # the business day before SAKATA_MONDAY


def _to_group(fake_line, group_id) -> list:
    return [c for c in fake_line.calls if group_id in json.dumps(c.body or {}, ensure_ascii=False)]


def test_no_card_is_queued_to_a_group_the_bot_was_removed_from(rt, client, fake_line, group, user):
    from tests.formflow import complete_form, form_link, valid_answers, walk_to_slots

    group.joins()
    group.leaves()
    rt.clock.advance(minutes=5)
    walk_to_slots(user, rt)       # a request as a job seeker makes it: the chat, then the details form
    user.says("1")
    done = complete_form(client, form_link(fake_line.messages_to(user.user_id)), valid_answers(rt.offices["sakata"]))
    [reference] = re.findall(r"受付番号: ([A-Z0-9]{4}-[A-Z0-9]{4})", done.html)
    run_worker(rt)
    assert booking(rt, reference).status == "requested"
    assert outbox_rows(rt, recipient=group.group_id) == []
    assert _to_group(fake_line, group.group_id) == [] and fake_line.messages_to(group.group_id) == []
    # The dashboard holds the request as ever: 対応待ち lists it, with the banner, and its page opens.
    create_staff(rt)
    login(client)
    page = client.get("/staff/queue").get_data(as_text=True)
    assert reference in page and "確認待ちの申込（1件）" in page and "職員グループから退出しました" in page
    assert client.get(f"/staff/bookings/{reference}").status_code == 200
    # Nothing about it on LINE送信状況: no failure, no retry.
    assert "問題のあるメッセージはありません" in client.get("/staff/outbox").get_data(as_text=True)


def test_a_card_queued_before_the_leave_is_dropped_with_its_reason(rt, client, fake_line, group, user):
    group.joins()
    make_request(rt, user_id=user.user_id)     # its card waits for the worker
    group.leaves()
    [card] = outbox_rows(rt, recipient=group.group_id)
    assert (card.status, outbox.stale_reason(card)) == ("stale", ("group_left", False))
    run_worker(rt)
    assert _to_group(fake_line, group.group_id) == []
    create_staff(rt)
    login(client)
    page = client.get("/staff/outbox").get_data(as_text=True)
    assert "公式アカウントが職員グループから退出したため、送りませんでした" in page


def test_a_push_queued_to_the_group_as_the_bot_left_is_not_sent(rt, fake_line, group):
    """A card queued by a transaction that read the group as joined and committed after the leave: the worker
    drops it rather than call LINE."""
    group.joins()
    group.leaves()
    with rt.db.transaction() as s:
        outbox.add(s, office="sakata", kind="push", recipient=group.group_id, now=rt.clock.now(),
                   messages=[{"type": "text", "text": "x"}], purpose="staff_card", notice_kind="new_request")
    run_worker(rt)
    assert _to_group(fake_line, group.group_id) == []
    [row] = outbox_rows(rt, recipient=group.group_id)
    assert (row.status, outbox.stale_reason(row)) == ("stale", ("group_left", False))


def test_invited_back_the_group_is_told_once_what_waits(rt, fake_line, group, user_factory):
    group.joins()
    before = make_request(rt, user_id=user_factory("sakata").user_id)
    run_worker(rt)
    rt.clock.advance(minutes=1)
    group.leaves()
    rt.clock.advance(minutes=5)
    make_request(rt, start=SAKATA_MONDAY + timedelta(hours=1), user_id=user_factory("sakata").user_id)
    make_request(rt, start=SAKATA_MONDAY + timedelta(days=7), user_id=user_factory("sakata").user_id,
                 status="confirmed")   # decided: not waiting
    cards = len(fake_line.messages_to(group.group_id))
    event = group.event("join", source=group._source(None))
    assert group.send(event).status_code == 200
    run_worker(rt)
    [summary] = fake_line.texts_to(group.group_id)[cards:]
    assert "確認待ちの申込が2件あります" in summary and "退出していた間（12/1(火) 10:01から）のお知らせ2件は" in summary
    assert f"{rt.config.public_base_url}/staff/queue" in summary
    assert before not in summary
    serialised = json.dumps(fake_line.delivered(), ensure_ascii=False)
    for value in PERSONAL_VALUES:
        assert value not in serialised, f"personal value {value!r} went to LINE"
    # Redelivered, or joined again without a leave in between: nothing more.
    assert group.send(as_redelivery(event)).status_code == 200
    group.joins()
    run_worker(rt)
    assert len(fake_line.texts_to(group.group_id)) == cards + 1
    [row] = [r for r in outbox_rows(rt, recipient=group.group_id) if r.purpose == "staff_summary"]
    assert row.status == "sent"


def test_invited_back_with_nothing_waiting_says_so(rt, fake_line, group):
    group.joins()
    group.leaves()
    group.joins()
    run_worker(rt)
    [summary] = fake_line.texts_to(group.group_id)
    assert "確認待ちの申込はありません" in summary


def test_cards_go_again_once_the_bot_is_back_and_the_undecided_reminder_reaches_the_group(
        rt, fake_line, group, user_factory):
    group.joins()
    group.leaves()
    make_request(rt, user_id=user_factory("sakata").user_id)
    group.joins()
    make_request(rt, start=SAKATA_MONDAY + timedelta(hours=1), user_id=user_factory("sakata").user_id)
    run_worker(rt)
    assert len([m for m in fake_line.messages_to(group.group_id) if m["type"] == "flex"]) == 1   # the second's
    rt.clock.freeze(FRIDAY_MORNING)
    run_worker(rt)
    reminders = [m for m in fake_line.messages_to(group.group_id) if m["type"] == "flex"
                 and "未決定の申込" in m["altText"]]
    assert len(reminders) == 2   # both requests still undecided on the business day before


def test_a_leave_of_another_group_changes_nothing_for_the_staff_groups_cards(rt, client, fake_line, group, user):
    group.joins()
    other = StaffGroup(client, "sakata", channel_secret=rt.config.channel_secret("sakata"), fake=fake_line,
                       clock=rt.clock)
    other.joins()
    other.leaves()
    make_request(rt, user_id=user.user_id)
    run_worker(rt)
    assert [m["type"] for m in fake_line.messages_to(group.group_id)] == ["flex"]
    assert [r.status for r in outbox_rows(rt, recipient=group.group_id)] == ["sent"]
    assert not [r for r in outbox_rows(rt) if r.purpose == "staff_summary"]
    assert outbox_rows(rt, status="stale") == []


def test_no_summary_when_the_office_turned_request_cards_off(rt, fake_line, group):
    import dataclasses

    office = rt.offices["sakata"]
    rt.offices["sakata"] = dataclasses.replace(office, staff_cards={**office.staff_cards, "new_request": False})
    try:
        group.joins()
        group.leaves()
        group.joins()
        run_worker(rt)
        assert fake_line.messages_to(group.group_id) == []
    finally:
        rt.offices["sakata"] = office


def test_the_summary_counts_only_the_notices_whose_cards_the_office_sends(rt, fake_line, group, user_factory):
    """Withdrawal cards turned off: a withdrawal would never have gone to the group, so it is not counted missed."""
    import dataclasses

    office = rt.offices["sakata"]
    rt.offices["sakata"] = dataclasses.replace(office, staff_cards={**office.staff_cards, "withdrawn": False})
    try:
        group.joins()
        group.leaves()
        rt.clock.advance(minutes=1)
        withdrawing = user_factory("sakata")
        reference = make_request(rt, user_id=withdrawing.user_id)            # a new_request notice: counted
        withdrawing.says("予約確認")
        withdrawing.taps(postback_value(withdrawing.messages(), "取り下げる"))
        withdrawing.taps(postback_value(withdrawing.messages()[-1:], "取り下げる"))
        assert booking(rt, reference).status == "withdrawn"                  # a withdrawn notice: not counted
        group.joins()
        run_worker(rt)
        [summary] = fake_line.texts_to(group.group_id)
        assert "のお知らせ1件は" in summary, summary
    finally:
        rt.offices["sakata"] = office


def test_a_leave_delivered_after_the_join_that_followed_it_changes_nothing(rt, client, fake_line, group, user):
    """LINE delivers the leave late (redelivered after a failure, or handled by another worker): the bot was invited
    back after it, so it is in the group. Cards still go there, nothing queued is dropped, no banner."""
    group.joins()
    rt.clock.advance(minutes=1)
    leave = group.event("leave", source=group._source(None))
    rt.clock.advance(minutes=1)
    group.joins()                                           # invited back (its summary: nothing missed)
    make_request(rt, user_id=user.user_id)                  # its card waits for the worker
    rt.clock.advance(minutes=1)
    assert group.send(as_redelivery(leave)).status_code == 200
    run_worker(rt)
    assert [r.status for r in outbox_rows(rt, recipient=group.group_id) if r.purpose == "staff_card"] == ["sent"]
    make_request(rt, start=SAKATA_MONDAY + timedelta(hours=1), user_id=user.user_id)
    run_worker(rt)
    assert len([m for m in fake_line.messages_to(group.group_id) if m["type"] == "flex"]) == 2
    create_staff(rt)
    login(client)
    assert "職員グループから退出しました" not in client.get("/staff/queue").get_data(as_text=True)


def test_a_join_delivered_after_a_later_leave_changes_nothing(rt, fake_line, group, user):
    """The other order: a join older than the leave recorded (the bot was removed after it) neither brings the cards
    back nor answers with a summary."""
    group.joins()
    rt.clock.advance(minutes=1)
    group.leaves()
    rt.clock.advance(minutes=1)
    join = group.event("join", source=group._source(None))
    rt.clock.advance(minutes=1)
    group.leaves()                                          # removed again, delivered before the join
    rt.clock.advance(minutes=1)
    assert group.send(as_redelivery(join)).status_code == 200
    make_request(rt, user_id=user.user_id)
    run_worker(rt)
    assert outbox_rows(rt, recipient=group.group_id) == [] and fake_line.messages_to(group.group_id) == []


def test_a_card_a_worker_claims_while_the_leave_is_handled_is_left_to_its_outcome(rt, fake_line, group, user,
                                                                                   monkeypatch):
    """Two processes: the worker claims the queued card (committed) between the leave's reading of what waits and
    its writing. The leave must not then mark `stale` a row on its way (its outcome would be thrown away); on
    PostgreSQL the leave locks what it drops, and the worker passes over a locked row."""
    if rt.db.sqlite:
        pytest.skip("SQLite runs one writer at a time: the leave holds the database from its first write")
    from sqlalchemy import text

    group.joins()
    make_request(rt, user_id=user.user_id)
    [card] = outbox_rows(rt, recipient=group.group_id)
    claimed = []
    real = outbox._mark_stale

    def worker_claims_first(row, reason, tried):
        if not claimed:
            with rt.db.engine.connect() as conn:   # another process's transaction, as `_claim_due` runs it
                conn.execute(text("SET lock_timeout = '300ms'"))
                try:
                    done = conn.execute(text(
                        "SELECT id FROM outbox WHERE id = :id AND status = 'pending' FOR UPDATE SKIP LOCKED"),
                        {"id": card.id}).first()
                    if done:
                        conn.execute(text("UPDATE outbox SET status = 'sending' WHERE id = :id"), {"id": card.id})
                    conn.commit()
                    claimed.append(bool(done))
                except Exception:   # noqa: BLE001 - the leave holds the row: not claimed
                    conn.rollback()
                    claimed.append(False)
        real(row, reason, tried)

    monkeypatch.setattr(outbox, "_mark_stale", worker_claims_first)
    group.leaves()
    [row] = outbox_rows(rt, recipient=group.group_id)
    assert claimed
    assert row.status == ("sending" if claimed[0] else "stale"), (claimed, row.status)


def test_a_leave_of_the_staff_group_never_seen_joining_drops_what_waits_for_it(rt, group, user):
    """The bot was in the configured group before joins were recorded: its leave still drops the queued card."""
    make_request(rt, user_id=user.user_id)
    group.leaves()
    [card] = outbox_rows(rt, recipient=group.group_id)
    assert (card.status, outbox.stale_reason(card)) == ("stale", ("group_left", False))
