"""Booking through the chat and the form, end to end: signed webhooks in, the real form over HTTP, the fake
LINE API recording what the users saw. Also 予約確認 (withdraw, cancel, the offices' routes), データ削除,
and the bad inputs of the slot step."""
from __future__ import annotations

import json
import re
import threading
import time
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from bot import crypto
from bot.clock import TOKYO
from bot.models import Booking, Conversation, SlotClaim, SlotHold, StaffNotice
from bot.services import lifecycle
from bot.worker import Worker
from tests.formflow import (
    Page,
    complete_form,
    form_link,
    hold_directly,
    quick_reply_data,
    valid_answers,
    walk_to_slots,
)
from tests.sqlwatch import watch

PHONE_NUMBER = re.compile(r"\d{2,4}-\d{2,4}-\d{4}")


# -- helpers ---------------------------------------------------------------------------------------------

def rows(rt, model, *where) -> list:
    with rt.db.reading() as s:
        found = list(s.scalars(select(model).where(*where)))
        for row in found:
            s.expunge(row)
        return found


def the_booking(rt, user) -> Booking:
    [booking] = rows(rt, Booking, Booking.conversation_id == conversation(rt, user).id)
    return booking


def conversation(rt, user) -> Conversation:
    [conv] = rows(rt, Conversation, Conversation.line_user_id == user.user_id)
    return conv


def new_texts(fake_line, user, before: int) -> str:
    return "\n".join(fake_line.texts_to(user.user_id)[before:])


def says(fake_line, user, text: str) -> str:
    before = len(fake_line.texts_to(user.user_id))
    assert user.says(text).status_code == 200
    return new_texts(fake_line, user, before)


def taps(fake_line, user, data: str) -> str:
    before = len(fake_line.texts_to(user.user_id))
    assert user.taps(data).status_code == 200
    return new_texts(fake_line, user, before)


def last_buttons(fake_line, user) -> dict[str, str]:
    return quick_reply_data(fake_line.messages_to(user.user_id)[-1])


def confirmed(fake_line, user, asked: str) -> str:
    """Answer 「…キャンセルします。よろしいですか。」 (withdraw, decline alike) with its first button, as one
    cancels in two steps."""
    assert "受付番号: " in asked and not rows_changed_by(asked)
    yes = next(iter(last_buttons(fake_line, user).values()))
    return taps(fake_line, user, yes)


def rows_changed_by(asked: str) -> bool:
    """Does the answer to the first tap say something was done (it must only ask)?"""
    return any(done in asked for done in ("取り下げました", "キャンセルしました", "has been", "辞退されたこと"))


def request_for(rt, client, user) -> Booking:
    """A request of this LINE user, made on the form from a hold set up directly (no intake walk)."""
    _, url = hold_directly(rt, user.office, user_id=user.user_id)
    done = complete_form(client, url, valid_answers(rt.offices[user.office]))
    assert "受付番号: " in done.html
    return the_booking(rt, user)


def confirm(rt, booking: Booking) -> None:
    with rt.db.transaction() as s:
        assert lifecycle.fire(s, s.get(Booking, booking.id), "confirm", rt.clock.now())


def deliveries_to(fake_line, user) -> list[str]:
    return [d.kind for d in fake_line.deliveries() if user.user_id in d.recipients]


# -- end to end, around the year-end and holidays --------------------------------------------------------

def test_sakata_end_to_end_over_the_year_end(rt, clock, client, user_factory, fake_line):
    clock.freeze(datetime(2026, 12, 28, 10, 0, tzinfo=TOKYO))   # Monday; 12/29-1/3 closed
    user = user_factory("sakata")
    walk_to_slots(user, rt)
    slots = fake_line.texts_to(user.user_id)[-1]
    labels = list(last_buttons(fake_line, user))
    # 12/28's deadline (Friday 12/25 17:00) has passed; 1/4's is today 17:00 (12/29-1/3 are not business days).
    assert labels[:3] == ["1/4(月) 14:00", "1/4(月) 15:00", "1/4(月) 16:00"]
    assert "12/28" not in slots and not re.search(r"1/[123]\(", slots) and "12/29" not in slots
    reply = says(fake_line, user, "1/4 15:00")                  # a typed date and time selects it
    assert "1/4(月) 15:00" in reply and "仮押さえしました" in reply
    url = form_link(fake_line.messages_to(user.user_id))
    done = complete_form(client, url, valid_answers(rt.offices["sakata"]))
    booking = the_booking(rt, user)
    assert f"受付番号: {booking.reference}" in done.html
    assert booking.slot_start == datetime(2027, 1, 4, 15, 0, tzinfo=TOKYO)
    assert conversation(rt, user).state == "idle"
    # Back in LINE: the receipt comes as a free reply with the list.
    clock.advance(minutes=1)
    reply = says(fake_line, user, "予約確認")
    assert f"受付番号: {booking.reference}" in reply and "お申込みを受け付けました" in reply
    assert "1/4(月) 15:00" in reply and "受付済み" in reply
    assert "開始時刻を10分過ぎても" in reply                     # the no-show rule
    assert rt.offices["sakata"].after_request in reply           # what happens next, in the office's words
    clock.advance(minutes=10)
    Worker(rt).run_once()
    assert set(deliveries_to(fake_line, user)) == {"reply"}      # no push: the reply said it


def test_otaru_end_to_end_with_the_receipt_pushed(rt, clock, client, user_factory, fake_line):
    clock.freeze(datetime(2026, 12, 28, 10, 0, tzinfo=TOKYO))
    user = user_factory("otaru")
    walk_to_slots(user, rt)
    buttons = last_buttons(fake_line, user)
    assert list(buttons)[0] == "1/4(月) 10:00"
    assert not any(label.startswith(("12/28", "12/29", "12/30", "12/31", "1/1(", "1/2(", "1/3("))
                   for label in buttons)
    taps(fake_line, user, buttons["1/4(月) 13:00"])
    done = complete_form(client, form_link(fake_line.messages_to(user.user_id)), valid_answers(rt.offices["otaru"]))
    booking = the_booking(rt, user)
    assert booking.slot_start == datetime(2027, 1, 4, 13, 0, tzinfo=TOKYO)
    assert f"受付番号: {booking.reference}" in done.html
    # The user does not come back: one push after a few minutes.
    clock.advance(minutes=5)
    figures = Worker(rt).run_once()
    assert figures["receipts_pushed"] == 1
    pushed = fake_line.texts_to(user.user_id)[-1]
    assert f"受付番号: {booking.reference}" in pushed and "ミーティングID" in pushed
    assert deliveries_to(fake_line, user)[-1] == "push"
    # Nobody decided before the slot began: expired, the user told, the seat free again.
    clock.freeze(datetime(2027, 1, 4, 13, 0, tzinfo=TOKYO))
    Worker(rt).run_once()
    assert the_booking(rt, user).status == "expired"
    assert "期限切れ" in fake_line.texts_to(user.user_id)[-1]
    assert rows(rt, SlotClaim) == []
    assert [n.kind for n in rows(rt, StaffNotice)] == ["new_request", "expired"]


def test_a_typed_holiday_past_or_far_slot_is_explained(rt, clock, user_factory, fake_line):
    clock.freeze(datetime(2027, 1, 5, 10, 0, tzinfo=TOKYO))     # Tuesday; Monday 1/11 is 成人の日
    user = user_factory("sakata")
    walk_to_slots(user, rt)
    assert "その日は成人の日で閉庁日のため" in says(fake_line, user, "1/11 14:00")
    assert "すでに過ぎています" in says(fake_line, user, "1/4 14:00")
    assert "相談の枠ではありません" in says(fake_line, user, "1/8 14:00")       # a Friday
    far = says(fake_line, user, "3/8 14:00")                                     # the window ends 3/2
    assert "まだ予約を受け付けていません" in far and "8週間先まで" in far
    clock.freeze(datetime(2027, 1, 16, 10, 0, tzinfo=TOKYO))                    # after Friday 17:00
    assert "受付期限を過ぎています" in says(fake_line, user, "1/18 14:00")
    assert conversation(rt, user).state == "awaiting_slot" and rows(rt, SlotHold) == []


def test_the_free_slots_offered_near_a_closed_day_are_near_it_though_weeks_ahead(rt, clock, user_factory,
                                                                                  fake_line):
    """Otaru has ten slots a weekday: the slots named 近い日時 beside 12/29 (the year end, weeks ahead) are the
    ones around it (12/28, 1/4), not the first free ones of next week."""
    clock.freeze(datetime(2026, 12, 3, 10, 0, tzinfo=TOKYO))
    user = user_factory("otaru")
    walk_to_slots(user, rt)
    reply = says(fake_line, user, "12/29 10:00")
    near = reply.split("近い日時の空き枠:")[1].split("\n\n")[0]
    assert "年末年始" in reply
    days = re.findall(r"・(\d+/\d+)\(", near)
    assert len(days) == 3 and set(days) <= {"12/28", "1/4"}, near


@pytest.mark.parametrize("office_id,label", [("sakata", "12/7(月) 14:00"), ("otaru", "12/7(月) 10:00")])
def test_a_slot_whose_deadline_passed_while_shown_names_the_deadline(rt, clock, user_factory, fake_line,
                                                                      office_id, label):
    """Sakata 「開催日の3日前までに」 and Otaru 「前日までに」 both close Monday's slots at Friday 17:00: a button
    tapped just after says when that slot's booking closed, not only that it did."""
    clock.freeze(datetime(2026, 12, 4, 16, 58, tzinfo=TOKYO))                  # Friday
    user = user_factory(office_id)
    walk_to_slots(user, rt)                                                    # the first page: Monday 12/7
    button = last_buttons(fake_line, user)[label]
    clock.freeze(datetime(2026, 12, 4, 17, 1, tzinfo=TOKYO))
    reply = taps(fake_line, user, button)
    assert "受付期限" in reply and "2026年12月4日(金) 17:00" in reply
    assert rows(rt, SlotHold) == []


@pytest.mark.parametrize("switch,words", [(None, "お申込みの締切は 2026年12月3日(木) 17:00"),
                                           ("English", "close at Thu 3 Dec 2026, 17:00"),
                                           ("やさしい日本語", "しめきりは 2026年12月3日(木) 17:00")])
def test_a_slot_held_minutes_before_its_deadline_names_the_deadline_in_the_chat(rt, clock, user_factory,
                                                                               fake_line, switch, words):
    """Otaru 「前日までに」: Friday's slots close Thursday 17:00. Held at 16:50, the chat says it is held until
    17:05 (the hold's own time) and must also say the request is to be sent by 17:00, as the form does."""
    clock.freeze(datetime(2026, 12, 3, 16, 50, tzinfo=TOKYO))                 # Thursday
    user = user_factory("otaru")
    if switch:
        says(fake_line, user, switch)
    walk_to_slots(user, rt)
    says(fake_line, user, "12/4 10:00")
    [bubble] = [m for m in fake_line.messages_to(user.user_id) if m["type"] == "flex"]
    assert words in json.dumps(bubble, ensure_ascii=False)
    clock.freeze(datetime(2026, 12, 3, 10, 0, tzinfo=TOKYO))                  # far from it: not said
    other = user_factory("otaru")
    walk_to_slots(other, rt)
    says(fake_line, other, "12/4 10:30")
    [bubble] = [m for m in fake_line.messages_to(other.user_id) if m["type"] == "flex"]
    assert "17:00" not in json.dumps(bubble, ensure_ascii=False)


def with_a_lapsed_hold(rt, clock, user):
    """The user held the first slot and let its hold run out (the form step, its slots shown again)."""
    walk_to_slots(user, rt)
    user.says("1")
    clock.advance(minutes=rt.offices[user.office].booking.hold_minutes + 1)
    return user


def test_a_typed_slot_is_read_while_the_form_waits_too(rt, clock, user_factory, fake_line):
    """The bot offers slots again once a hold lapsed and asks for 「12/7 14:00」 or a number: typing one
    holds it, as tapping does; while a hold is live, a typed slot moves the hold there."""
    user = with_a_lapsed_hold(rt, clock, user_factory("sakata"))
    assert "仮押さえの時間が過ぎました" in says(fake_line, user, "予約")
    reply = says(fake_line, user, "12/7 15:00")
    assert "読み取れませんでした" not in reply and "12/7(月) 15:00" in reply
    assert [h.slot_start.hour for h in rows(rt, SlotHold)] == [15]
    reply = says(fake_line, user, "１２月７日１６時")                             # full-width, 日/時
    assert "読み取れませんでした" not in reply
    assert [h.slot_start.hour for h in rows(rt, SlotHold)] == [16]
    assert conversation(rt, user).state == "awaiting_form" and conversation(rt, user).misses == 0


def test_help_after_the_hold_ran_out_explains_choosing_a_slot_not_the_form(rt, clock, user_factory, fake_line):
    """Once the hold lapsed the bot shows the slots again: ヘルプ explains that step, not "open the form"."""
    user = with_a_lapsed_hold(rt, clock, user_factory("sakata"))
    reply = says(fake_line, user, "ヘルプ")
    assert "仮押さえの時間が過ぎました" in reply
    assert "相談の日時を選んでいただいています" in reply and "ご希望の日時をお選びください" in reply
    assert "ご入力をお待ちしています" not in reply and "入力ページを開いて" not in reply


def test_back_from_the_slots_shown_again_after_the_hold_ran_out_goes_to_the_checklist(rt, clock, user_factory,
                                                                                      fake_line):
    """The lapsed hold's reply shows the slots again; 戻る then goes back one step from them, not to the same list."""
    user = with_a_lapsed_hold(rt, clock, user_factory("sakata"))
    assert "仮押さえの時間が過ぎました" in says(fake_line, user, "予約")
    reply = says(fake_line, user, "戻る")
    assert "【端末・環境の確認 9/9】" in reply and "空いている枠" not in reply
    assert (conversation(rt, user).state, rows(rt, SlotHold)) == ("awaiting_checklist", [])


@pytest.mark.parametrize("typed", ["12月7日 午後2時", "12/7 2pm", "7日の14時", "７日 午後２時から", "１２月７日　２じ"])
def test_a_slot_typed_as_people_say_it_is_held(rt, user_factory, fake_line, typed):
    """午後2時, 2pm, a day of this month alone, 2じ without 午後 (full width, an ideographic space, the hour's mark in
    kana, as a phone types it): read as the slot, not answered 読み取れませんでした."""
    user = user_factory("sakata")
    walk_to_slots(user, rt)
    reply = says(fake_line, user, typed)
    assert "読み取れませんでした" not in reply and "12/7(月) 14:00" in reply
    assert [h.slot_start.hour for h in rows(rt, SlotHold)] == [14]
    assert conversation(rt, user).state == "awaiting_form"


def test_an_hour_said_without_the_afternoon_word_holds_the_afternoons_slot(rt, user_factory, fake_line):
    """「12月7日 3時」 is 15:00, as people say it in office hours; 午前3時 written out is no slot, and holds none."""
    user = user_factory("sakata")
    walk_to_slots(user, rt)
    reply = says(fake_line, user, "12月7日 午前3時")
    assert "相談の枠ではありません" in reply and rows(rt, SlotHold) == []
    reply = says(fake_line, user, "12月7日 3時")
    assert "読み取れませんでした" not in reply and "12/7(月) 15:00" in reply
    assert [h.slot_start.hour for h in rows(rt, SlotHold)] == [15]


EXAMPLE = re.compile(r'[「"](\d{1,2}/\d{1,2} \d{2}:\d{2})[」"]')


@pytest.mark.parametrize(("language", "switch"), [("ja", None), ("easy", "やさしい日本語"), ("en", "English")])
def test_help_and_could_not_read_at_the_slot_step_give_an_offered_slot_as_the_example(rt, user_factory, fake_line,
                                                                                       language, switch):
    """Otaru on Tuesday 12/1: the list starts at 12/2(水) 10:00. ヘルプ, an unread answer and a slot turned down
    say "send e.g. 12/2 10:00", a slot the user can choose, not a fixed 12/7 14:00; the form's step, which lists
    no slot, gives the form in words."""
    user = user_factory("otaru")
    if switch:
        says(fake_line, user, switch)
    walk_to_slots(user, rt)
    first = list(last_buttons(fake_line, user))[0]
    assert first == "12/2(水) 10:00"
    for typed in ("ヘルプ" if language != "en" else "help", "Dec 8", "12/2 10:00以外"):
        reply = says(fake_line, user, typed)
        assert set(EXAMPLE.findall(reply)) == {"12/2 10:00"}, reply
        assert "12/7 14:00" not in reply
    says(fake_line, user, "1")
    reply = says(fake_line, user, "12/2 10:00以外")                 # a live hold: no list of slots in the reply
    assert EXAMPLE.findall(reply) == [] and "12/7 14:00" not in reply
    assert {"ja": "「月/日 時:分」", "easy": "「月/日 時:分」", "en": '"month/day hh:mm"'}[language] in reply


@pytest.mark.parametrize("office_id", ["sakata", "otaru"])
@pytest.mark.parametrize("typed", ["12/7 1400", "１２／７　１４００"])
def test_a_slot_typed_as_a_phone_keypad_types_it_is_held(rt, user_factory, fake_line, office_id, typed):
    """Four digits for the time (half or full width) hold the slot; 25:00, or a time without its date (14:00
    is on several days), is asked again with the slots and holds nothing."""
    user = user_factory(office_id)
    walk_to_slots(user, rt)
    for unreadable in ("12/7 2500", "1400"):
        reply = says(fake_line, user, unreadable)
        assert "読み取れませんでした" in reply and "日付と時刻を続けて" in reply and "空いている枠です" in reply
        assert rows(rt, SlotHold) == [] and conversation(rt, user).state == "awaiting_slot"
    reply = says(fake_line, user, typed)
    assert "読み取れませんでした" not in reply and "12/7(月) 14:00" in reply
    assert [h.slot_start.hour for h in rows(rt, SlotHold)] == [14]
    assert conversation(rt, user).state == "awaiting_form"


@pytest.mark.pg_sample(every=4)   # words on any database: sampled on PostgreSQL
@pytest.mark.parametrize("office_id", ["sakata", "otaru"])
@pytest.mark.parametrize("typed", ["12/7以外", "12/7はだめ", "12/7は無理です", "12/7じゃなくて", "12/7 14:00以外",
                                   "12/7 14時はだめです", "12/7 14:00は無理です", "12/7 1400じゃなくて",
                                   "12/7 14時以外でお願いします", "12/7 14時しかできませんか", "2番はだめ"])
def test_a_date_the_user_turns_down_is_never_held(rt, user_factory, fake_line, office_id, typed):
    """12/7以外, 12/7 14時は無理: nothing is held (the date turned down least of all); the bot says, in words that
    also fit a choice it could not tell for sure, that nothing was chosen, shows the slots again and asks which one
    is wanted. It understood: no miss is counted."""
    user = user_factory(office_id)
    walk_to_slots(user, rt)
    reply = says(fake_line, user, typed)
    assert "まだ枠はお選びしていません" in reply and "読み取れませんでした" not in reply
    assert "ご都合の合わない" not in reply                      # no telling someone who may have chosen it
    assert "空いている枠です" in reply and "\n1. " in reply                   # the slots again, numbered
    assert rows(rt, SlotHold) == []
    assert conversation(rt, user).state == "awaiting_slot" and conversation(rt, user).misses == 0


@pytest.mark.pg_sample(every=4)   # words on any database: sampled on PostgreSQL
@pytest.mark.parametrize("office_id", ["sakata", "otaru"])
@pytest.mark.parametrize(("typed", "hour"), [
    ("12/7 14時しかできません", 14), ("12/7 14時以外は無理です", 14), ("12/7 14時でお願いできませんか", 14),
    ("12/7 14時で予定入れてください", 14), ("12/8は予定が入っているので、12/7 14時で", 14),
    ("12/7 15時じゃなくて12/7 14時", 14), ("間違えました、12/7 14時です", 14),
    ("12/7 14時でお願いします。難しければ別の日でも大丈夫です", 14),
])
def test_a_slot_chosen_with_a_word_that_denies_another_or_nothing_is_held(rt, user_factory, fake_line, office_id,
                                                                          typed, hour):
    """<only> 12/7 14時, a polite request, another slot turned down before it, a mistake corrected, what to do
    should it not be free: the slot chosen is held, as if typed alone."""
    user = user_factory(office_id)
    walk_to_slots(user, rt)
    reply = says(fake_line, user, typed)
    assert "お選びしていません" not in reply and "読み取れませんでした" not in reply
    assert f"12/7(月) {hour}:00" in reply
    assert [h.slot_start.hour for h in rows(rt, SlotHold)] == [hour]
    assert conversation(rt, user).state == "awaiting_form"


@pytest.mark.parametrize("office_id", ["sakata", "otaru"])
def test_a_date_turned_down_while_a_slot_is_held_leaves_the_hold_where_it_is(rt, user_factory, fake_line,
                                                                            office_id):
    """Waiting for the form: 12/7 14:00は無理です does not move the hold to 12/7 14:00; the held slot's link
    comes again with how to choose another."""
    user = user_factory(office_id)
    walk_to_slots(user, rt)
    says(fake_line, user, "12/7 15:00")
    reply = says(fake_line, user, "12/7 14:00は無理です")
    assert "仮押さえの枠はそのままにしています" in reply and "「戻る」" in reply
    assert [h.slot_start.hour for h in rows(rt, SlotHold)] == [15]
    assert conversation(rt, user).state == "awaiting_form"


@pytest.mark.pg_sample(every=4)   # words on any database: sampled on PostgreSQL
@pytest.mark.parametrize("office_id", ["sakata", "otaru"])
@pytest.mark.parametrize(("language", "typed", "answer"), [
    ("English", "Dec 7 2pm is not ok", "To be safe, we have not chosen a slot yet"),
    ("English", "12/7 14:00以外", "To be safe, we have not chosen a slot yet"),
    ("やさしい日本語", "12/7 14時は むりです", "ねんのため、まだ 時間は えらんで いません"),
])
def test_a_date_turned_down_is_answered_in_the_users_language(rt, user_factory, fake_line, office_id, language,
                                                              typed, answer):
    user = user_factory(office_id)
    walk_to_slots(user, rt)
    says(fake_line, user, language)
    reply = says(fake_line, user, typed)
    assert answer in reply and "\n1. " in reply               # the slots again, numbered
    assert rows(rt, SlotHold) == [] and conversation(rt, user).state == "awaiting_slot"


# -- choosing a slot: races and repeats -------------------------------------------------------------------

def test_a_slot_taken_a_minute_ago(rt, user_factory, fake_line):
    first, second = user_factory("sakata"), user_factory("sakata")
    walk_to_slots(first, rt)
    walk_to_slots(second, rt)
    seen_by_second = last_buttons(fake_line, second)
    taps(fake_line, first, last_buttons(fake_line, first)["12/7(月) 14:00"])
    reply = taps(fake_line, second, seen_by_second["12/7(月) 14:00"])
    assert "ちょうど他の方の予約で埋まりました" in reply
    assert "12/7(月) 15:00" in reply                            # the nearest alternatives
    assert conversation(rt, second).state == "awaiting_slot"
    assert [h.conversation_id for h in rows(rt, SlotHold)] == [conversation(rt, first).id]


def test_a_typed_number_means_the_slot_shown_under_it(rt, clock, user_factory, fake_line):
    """The list moved after it was shown (a hold ran out, a slot was taken): 「2」 is still the second slot
    the user saw, and one taken since is explained rather than swapped for its neighbour."""
    first, second = user_factory("sakata"), user_factory("sakata")
    walk_to_slots(first, rt)
    taps(fake_line, first, last_buttons(fake_line, first)["12/7(月) 14:00"])
    walk_to_slots(second, rt)
    shown = fake_line.texts_to(second.user_id)[-1]
    assert "1. 12/7(月) 15:00" in shown and "2. 12/7(月) 16:00" in shown
    clock.advance(minutes=rt.offices["sakata"].booking.hold_minutes + 1)       # 14:00 is free again
    reply = says(fake_line, second, "2")
    assert "12/7(月) 16:00" in reply and "12/7(月) 15:00の枠" not in reply
    assert [h.slot_start.hour for h in rows(rt, SlotHold) if h.conversation_id == conversation(rt, second).id] == [16]

    third = user_factory("sakata")
    walk_to_slots(third, rt)
    seen = fake_line.texts_to(third.user_id)[-1]
    assert "1. 12/7(月) 14:00" in seen and "2. 12/7(月) 15:00" in seen
    says(fake_line, first, "12/7 14:00")                                          # first holds 14:00 again
    reply = says(fake_line, third, "1")
    assert "ちょうど他の方の予約で埋まりました" in reply                             # not 15:00 instead
    assert conversation(rt, third).state == "awaiting_slot"


def test_a_double_tap_holds_once(rt, user_factory, fake_line):
    user = user_factory("otaru")
    walk_to_slots(user, rt)
    button = list(last_buttons(fake_line, user).values())[0]
    taps(fake_line, user, button)
    link = form_link(fake_line.messages_to(user.user_id))
    again = taps(fake_line, user, button)
    assert "前の手順" in again
    repeated = form_link(fake_line.messages_to(user.user_id))
    token = lambda url: rt.read_form_token(url.rsplit("/", 1)[1])  # noqa: E731
    assert token(repeated) == token(link)                         # the same hold, the same nonce
    assert len(rows(rt, SlotHold)) == 1


def test_restart_while_a_slot_is_held_says_so_and_gives_the_slot_back(rt, user_factory, fake_line):
    user = user_factory("otaru")
    walk_to_slots(user, rt)
    taps(fake_line, user, list(last_buttons(fake_line, user).values())[0])
    assert len(rows(rt, SlotHold)) == 1
    reply = says(fake_line, user, "最初から")
    first = reply.splitlines()[0]
    assert first.startswith("最初からやり直します。") and "枠もお返ししました" in first
    assert rows(rt, SlotHold) == [] and conversation(rt, user).state == "awaiting_eligibility"


def test_an_expired_hold_offers_the_slots_again(rt, clock, user_factory, fake_line):
    user = user_factory("sakata")
    walk_to_slots(user, rt)
    user.says("1")
    old = form_link(fake_line.messages_to(user.user_id))
    clock.advance(minutes=rt.offices["sakata"].booking.hold_minutes + 1)
    reply = says(fake_line, user, "予約")
    assert "仮押さえの時間が過ぎました" in reply and "12/7(月) 14:00" in reply
    Worker(rt).run_once()                                   # the worker's pass leaves the lapsed hold
    assert "仮押さえの時間が過ぎました" in says(fake_line, user, "予約")
    taps(fake_line, user, last_buttons(fake_line, user)["12/7(月) 15:00"])
    assert form_link(fake_line.messages_to(user.user_id)) != old
    assert [h.slot_start.hour for h in rows(rt, SlotHold)] == [15]


# -- 予約確認: withdraw and cancel --------------------------------------------------------------------------

def test_withdraw_a_request_then_again(rt, client, user_factory, fake_line):
    user = user_factory("sakata")
    booking = request_for(rt, client, user)
    listing = says(fake_line, user, "予約確認")
    buttons = last_buttons(fake_line, user)
    label = f"取り下げる（{booking.reference}）"
    assert label in listing and list(buttons) == [label]
    reply = confirmed(fake_line, user, taps(fake_line, user, buttons[label]))
    assert f"受付番号: {booking.reference}" in reply and "取り下げました" in reply
    assert the_booking(rt, user).status == "withdrawn"
    assert rows(rt, SlotClaim) == []
    assert [n.kind for n in rows(rt, StaffNotice)] == ["new_request", "withdrawn"]
    twice = taps(fake_line, user, buttons[label])
    assert "現在の状況は「取り下げ済み」です" in twice
    assert [n.kind for n in rows(rt, StaffNotice)] == ["new_request", "withdrawn"]
    # And they may book again.
    assert "すでにお申込み中" not in says(fake_line, user, "予約")
    assert conversation(rt, user).state == "awaiting_eligibility"  # consented to these terms when booking


@pytest.mark.parametrize(("language", "switch", "how_to_book"), [
    ("ja", None, "「予約」と送ってください"),
    ("en", "English", '"予約" (book)'),
    ("easy", "やさしい日本語", "「予約」（よやく）と おくって ください"),
])
def test_the_list_of_only_closed_requests_says_how_to_book_again(rt, client, user_factory, fake_line, language,
                                                                 switch, how_to_book):
    """After withdrawing (or cancelling) the only request, 予約確認 lists it as closed: with nothing to tap, it
    says what to send to book again, as the empty list does, rather than leave the user at a dead end."""
    user = user_factory("otaru")
    booking = request_for(rt, client, user)
    if switch:
        says(fake_line, user, switch)
    says(fake_line, user, "予約確認")
    [data] = last_buttons(fake_line, user).values()
    confirmed(fake_line, user, taps(fake_line, user, data))
    assert the_booking(rt, user).status == "withdrawn"
    listing = says(fake_line, user, "予約確認")
    assert booking.reference in listing and how_to_book in listing
    assert not last_buttons(fake_line, user)


@pytest.mark.parametrize("typed", ["取り下げる（{ref}）", "取り下げる ({ref})", "取り下げる（{lower}）。"])
def test_a_withdraw_button_typed_as_it_reads_withdraws(rt, client, user_factory, fake_line, typed):
    """LINE for PC shows no quick replies: 「取り下げる（ABCD-EFGH）」 typed as the list says it does what the
    button does, as every choice can be typed."""
    user = user_factory("otaru")
    booking = request_for(rt, client, user)
    says(fake_line, user, "予約確認")
    asked = says(fake_line, user, typed.format(ref=booking.reference, lower=booking.reference.lower()))
    assert "よろしいですか" in asked and the_booking(rt, user).status == "requested"
    reply = says(fake_line, user, "取り下げる")                     # the confirming button's words, typed
    assert f"受付番号: {booking.reference}" in reply and "取り下げました" in reply
    assert the_booking(rt, user).status == "withdrawn"


@pytest.mark.parametrize("switch, listed, typed, asked_says, yes, done", [
    (None, "キャンセル", "キャンセルする（{ref}）", "よろしいですか", "はい", "キャンセルしました"),
    ("English", "予約確認", "cancel ({ref})", "cannot be undone", "yes", "has been cancelled"),
])
def test_a_cancel_button_typed_then_yes_typed_cancels(rt, client, user_factory, fake_line, switch, listed, typed,
                                                      asked_says, yes, done):
    """「キャンセル」 (予約確認), the button's words typed (LINE for PC shows no quick replies), then はい: the
    question is answered by typing as the chat words work, in English too."""
    user = user_factory("otaru")
    booking = request_for(rt, client, user)
    confirm(rt, booking)
    if switch:
        says(fake_line, user, switch)
    says(fake_line, user, listed)
    asked = says(fake_line, user, typed.format(ref=booking.reference))
    assert asked_says in asked and the_booking(rt, user).status == "confirmed"
    assert done in says(fake_line, user, yes)
    assert the_booking(rt, user).status == "cancelled" and notices(rt) == ["new_request", "cancelled"]


def test_one_open_request_per_user(rt, client, user_factory, fake_line):
    user = user_factory("otaru")
    booking = request_for(rt, client, user)
    reply = says(fake_line, user, "予約")
    assert "すでにお申込み中の予約があります" in reply and booking.reference in reply
    assert conversation(rt, user).state == "idle"


@pytest.mark.parametrize("switch,words", [(None, "日時を変更される場合は、取り下げてから"),
                                           ("English", "To change the date or time, withdraw it first"),
                                           ("やさしい日本語", "日と 時間を かえる ときは、さきに とりけして")])
def test_booking_again_while_a_request_is_open_says_how_to_change_its_date(rt, client, user_factory, fake_line,
                                                                          switch, words):
    """One open request at a time: a person who sends 予約 to move theirs to another day is told how (withdraw
    or cancel it in 予約確認, then book again), not only that they have one."""
    user = user_factory("otaru")
    request_for(rt, client, user)
    if switch:
        says(fake_line, user, switch)
    reply = says(fake_line, user, "予約")
    assert words in reply


def test_otaru_cancels_in_chat_until_the_previous_day(rt, clock, client, user_factory, fake_line):
    user = user_factory("otaru")
    booking = request_for(rt, client, user)   # 12/2(水) 10:00
    confirm(rt, booking)
    clock.freeze(booking.slot_start.replace(hour=12) - timedelta(days=1))   # the day before
    says(fake_line, user, "予約確認")
    label = f"キャンセルする（{booking.reference}）"
    buttons = last_buttons(fake_line, user)
    assert list(buttons) == [label]
    reply = confirmed(fake_line, user, taps(fake_line, user, buttons[label]))
    assert "キャンセルしました" in reply
    assert the_booking(rt, user).status == "cancelled" and rows(rt, SlotClaim) == []
    assert rows(rt, StaffNotice)[-1].kind == "cancelled"


def test_a_withdraw_button_from_before_staff_confirmed_does_not_cancel_the_booking(rt, client, user_factory,
                                                                                  fake_line):
    """取り下げる was offered for an undecided request; staff confirmed it since. The old button must not cancel
    the confirmed booking unseen: the user is shown it as it is now, with the button that cancels it."""
    user = user_factory("otaru")
    booking = request_for(rt, client, user)
    says(fake_line, user, "予約確認")
    old_withdraw = last_buttons(fake_line, user)[f"取り下げる（{booking.reference}）"]
    confirm(rt, booking)
    reply = taps(fake_line, user, old_withdraw)
    assert the_booking(rt, user).status == "confirmed" and rows(rt, SlotClaim) != []
    assert "取り下げ・キャンセルはしていません" in reply and "予約確定" in reply
    assert [n.kind for n in rows(rt, StaffNotice)] == ["new_request"]
    cancel = f"キャンセルする（{booking.reference}）"
    assert list(last_buttons(fake_line, user)) == [cancel]
    assert "キャンセルしました" in confirmed(fake_line, user, taps(fake_line, user, last_buttons(fake_line, user)[cancel]))
    assert the_booking(rt, user).status == "cancelled"


def test_otaru_on_the_day_shows_the_phone_and_how_to_dial(rt, clock, client, user_factory, fake_line):
    user = user_factory("otaru")
    booking = request_for(rt, client, user)
    confirm(rt, booking)
    says(fake_line, user, "予約確認")
    old_cancel = last_buttons(fake_line, user)[f"キャンセルする（{booking.reference}）"]
    clock.freeze(booking.slot_start.replace(hour=8))              # the session day
    listing = says(fake_line, user, "予約確認")
    assert "0134-32-8689" in listing and "41#" in listing
    assert "当日のため、このトークではキャンセルできません" in listing                 # said once, with its reason
    assert last_buttons(fake_line, user) == {}
    reply = taps(fake_line, user, old_cancel)                     # an old button from the day before
    assert "このトークではキャンセルできません" in reply and "0134-32-8689" in reply
    assert "s-otaru.sm@" not in reply                             # e-mail is not a same-day route
    assert the_booking(rt, user).status == "confirmed"


def test_sakata_cancels_by_phone_only(rt, client, user_factory, fake_line):
    user = user_factory("sakata")
    booking = request_for(rt, client, user)
    confirm(rt, booking)
    listing = says(fake_line, user, "予約確認")
    assert "予約確定" in listing and "電話にてご連絡" in listing
    assert last_buttons(fake_line, user) == {}
    assert not PHONE_NUMBER.search(listing)                       # no number is confirmed: none is invented
    forced = taps(fake_line, user, f"a=cancel_booking&at=any&o=sakata&v={booking.reference}")
    assert "このトークではキャンセルできません" in forced
    assert the_booking(rt, user).status == "confirmed"


def test_another_users_reference_is_not_found(rt, client, user_factory, fake_line):
    owner, other = user_factory("sakata"), user_factory("sakata")
    booking = request_for(rt, client, owner)
    reply = taps(fake_line, other, f"a=withdraw&at=any&o=sakata&v={booking.reference}")
    assert "見つかりませんでした" in reply
    assert the_booking(rt, owner).status == "requested"


# -- cancelling takes two steps: the first tap only asks ------------------------------------------------

def confirmed_booking_asked(rt, client, user_factory, fake_line):
    """An Otaru booking confirmed, 予約確認 listed and its キャンセルする tapped once: (user, booking, answer)."""
    user = user_factory("otaru")
    booking = request_for(rt, client, user)
    confirm(rt, booking)
    says(fake_line, user, "予約確認")
    asked = taps(fake_line, user, last_buttons(fake_line, user)[f"キャンセルする（{booking.reference}）"])
    return user, booking, asked


def notices(rt) -> list[str]:
    return [n.kind for n in rows(rt, StaffNotice)]


def test_one_tap_on_cancel_cancels_nothing_and_asks(rt, client, user_factory, fake_line):
    """A mis-tap on a phone must not cancel a counselling session: the first tap says what would be cancelled
    (reference, date and time; no personal detail), that it cannot be undone, and asks."""
    user, booking, asked = confirmed_booking_asked(rt, client, user_factory, fake_line)
    assert the_booking(rt, user).status == "confirmed" and rows(rt, SlotClaim) != []
    assert notices(rt) == ["new_request"]
    assert f"受付番号: {booking.reference}" in asked and "12/2(水) 10:00" in asked
    assert "キャンセルします。よろしいですか" in asked and "元に戻せません" in asked
    assert list(last_buttons(fake_line, user)) == ["キャンセルする", "やめる"]
    answers = valid_answers(rt.offices["otaru"])
    assert not any(value in asked for key, value in answers.items() if key in ("name", "phone", "seeker_number"))


def test_the_confirmation_cancels_once_and_tells_staff_once(rt, client, user_factory, fake_line):
    user, booking, asked = confirmed_booking_asked(rt, client, user_factory, fake_line)
    yes = last_buttons(fake_line, user)["キャンセルする"]
    reply = taps(fake_line, user, yes)
    assert f"受付番号: {booking.reference}" in reply and "予約をキャンセルしました" in reply
    assert the_booking(rt, user).status == "cancelled" and rows(rt, SlotClaim) == []
    assert notices(rt) == ["new_request", "cancelled"]
    again = taps(fake_line, user, yes)                            # tapped twice
    assert "現在の状況は「キャンセル済み」です" in again and "何も変更していません" in again
    assert "キャンセルしました" not in again
    assert notices(rt) == ["new_request", "cancelled"]


@pytest.mark.parametrize("how", ["tap", "typed"])
def test_yameru_keeps_the_booking_and_says_so(rt, client, user_factory, fake_line, how):
    """やめる (tapped, or typed: then it answers the question rather than being the chat word 中止)."""
    user, booking, _ = confirmed_booking_asked(rt, client, user_factory, fake_line)
    keep = last_buttons(fake_line, user)["やめる"]
    reply = taps(fake_line, user, keep) if how == "tap" else says(fake_line, user, "やめる")
    assert "キャンセルはしていません" in reply and f"受付番号: {booking.reference} の予約はそのままです" in reply
    assert the_booking(rt, user).status == "confirmed" and notices(rt) == ["new_request"]
    # Typed キャンセルする now is the chat word again (予約確認): only the message right after the question counts.
    says(fake_line, user, "キャンセルする")
    assert the_booking(rt, user).status == "confirmed"


@pytest.mark.parametrize("staff_did, status, said", [
    ("decline", "declined", "現在の状況は「お受けできませんでした」です"),
    ("confirm", "confirmed", "取り下げ・キャンセルはしていません"),
])
def test_a_withdraw_confirmed_after_staff_decided_changes_nothing(rt, client, user_factory, fake_line, staff_did,
                                                                 status, said):
    """Asked to withdraw a request; staff declined (or confirmed) it before the confirmation was tapped."""
    user = user_factory("sakata")
    booking = request_for(rt, client, user)
    says(fake_line, user, "予約確認")
    asked = taps(fake_line, user, last_buttons(fake_line, user)[f"取り下げる（{booking.reference}）"])
    assert "取り下げます。よろしいですか" in asked
    yes = last_buttons(fake_line, user)["取り下げる"]
    with rt.db.transaction() as s:
        assert lifecycle.fire(s, s.get(Booking, booking.id), staff_did, rt.clock.now())
    reply = taps(fake_line, user, yes)
    assert said in reply and "取り下げました" not in reply
    assert the_booking(rt, user).status == status
    assert "withdrawn" not in notices(rt)


def test_a_cancel_confirmed_after_the_office_cancelled_changes_nothing(rt, client, user_factory, fake_line):
    user, booking, _ = confirmed_booking_asked(rt, client, user_factory, fake_line)
    yes = last_buttons(fake_line, user)["キャンセルする"]
    with rt.db.transaction() as s:
        assert lifecycle.fire(s, s.get(Booking, booking.id), "cancel_by_office", rt.clock.now())
    reply = taps(fake_line, user, yes)
    assert "「ハローワークにより中止」です" in reply and "キャンセルしました" not in reply
    assert the_booking(rt, user).status == "cancelled_by_office" and "cancelled" not in notices(rt)


def test_a_cancel_confirmed_on_the_session_day_says_to_phone(rt, clock, client, user_factory, fake_line):
    """Asked the day before, confirmed on the session day: Otaru takes same-day cancellations by phone only."""
    user = user_factory("otaru")
    booking = request_for(rt, client, user)
    confirm(rt, booking)
    clock.freeze(booking.slot_start.replace(hour=23, minute=50) - timedelta(days=1))
    says(fake_line, user, "予約確認")
    taps(fake_line, user, last_buttons(fake_line, user)[f"キャンセルする（{booking.reference}）"])
    yes = last_buttons(fake_line, user)["キャンセルする"]
    clock.freeze(booking.slot_start.replace(hour=8))
    reply = taps(fake_line, user, yes)
    assert "当日のため、このトークではキャンセルできません" in reply and "0134-32-8689" in reply
    assert the_booking(rt, user).status == "confirmed" and notices(rt) == ["new_request"]


# -- データ削除 and unfollow ------------------------------------------------------------------------------

@pytest.mark.parametrize("decided, closed_as, words, done", [(False, "withdrawn", "取り下げ", "お申込みを取り下げました"),
                                                             (True, "cancelled", "キャンセル", "予約をキャンセルしました")])
def test_delete_data_closes_what_is_open_then_erases(rt, client, user_factory, fake_line, decided, closed_as, words,
                                                     done):
    user = user_factory("otaru")
    booking = request_for(rt, client, user)
    if decided:
        confirm(rt, booking)
    question = says(fake_line, user, "データ削除")
    assert booking.reference in question and f"{words}となり" in question
    assert the_booking(rt, user).details is not None              # nothing happens before the answer
    reply = taps(fake_line, user, last_buttons(fake_line, user)["削除する"])
    assert "個人情報を削除しました" in reply and f"{booking.reference}（" in reply and done in reply
    after = the_booking(rt, user)
    assert after.status == closed_as
    assert (after.details, after.seeker_hash) == (None, None) and after.details_purged_at is not None
    assert rows(rt, SlotClaim) == []
    assert rows(rt, StaffNotice)[-1].kind == closed_as


def test_delete_data_says_truthfully_what_it_erases_and_what_stays(rt, client, user_factory, fake_line):
    """What stays after データ削除 is said before and after: the request's reference, date and status (予約確認
    still lists them, without a name), and the consent record; the staff's notes go with the details."""
    user = user_factory("otaru")
    booking = request_for(rt, client, user)
    question = says(fake_line, user, "データ削除")
    assert "職員がご予約について記録したメモ" in question
    assert "受付番号・日時・状況（お名前などは含みません）と、規約への同意の記録は" in question
    reply = taps(fake_line, user, last_buttons(fake_line, user)["削除する"])
    assert "受付番号・日時・状況は、お名前などを含まない記録として残り、「予約確認」で表示されます" in reply
    listing = says(fake_line, user, "予約確認")
    assert booking.reference in listing and "取り下げ済み" in listing     # what the answer said stays, stays
    assert the_booking(rt, user).details is None


def test_delete_data_erases_a_staff_note_written_meanwhile(rt, client, user_factory, fake_line):
    """A staff note (free text: a phone number, an illness) committed while データ削除 runs is erased with the
    rest; the deletion does not work from what it read before the note."""
    rt.db.allow_long_statements()  # the deletion waits out the note's lock here (a web process gives up at 250 ms)
    user = user_factory("otaru")
    booking = request_for(rt, client, user)
    says(fake_line, user, "データ削除")
    delete = last_buttons(fake_line, user)["削除する"]
    answered = []
    tap = threading.Thread(target=lambda: answered.append(user.taps(delete).status_code))
    with rt.db.transaction() as s:  # staff saving a note, their row locked until they commit
        query = select(Booking).where(Booking.id == booking.id)
        row = s.scalar(query.with_for_update() if s.bind.dialect.name == "postgresql" else query)
        row.staff_note = crypto.for_config(rt.config).encrypt_text("090-1111-2222 通院中")
        s.flush()
        tap.start()
        time.sleep(1)  # the deletion reads the user's bookings meanwhile
    tap.join(timeout=60)
    assert answered == [200]
    after = the_booking(rt, user)
    assert (after.details, after.staff_note, after.status) == (None, None, "withdrawn")


def assert_kept(rt, user, booking, status: str) -> None:
    after = the_booking(rt, user)
    assert (after.status, after.details is not None, after.seeker_hash) == (status, True, booking.seeker_hash)
    assert not [n for n in rows(rt, StaffNotice) if n.kind in ("cancelled", "withdrawn")]


def test_delete_data_keeps_a_booking_the_office_cancels_only_by_phone(rt, client, user_factory, fake_line):
    """Sakata cancels confirmed sessions by phone only: データ削除 must not cancel one in chat."""
    user = user_factory("sakata")
    booking = request_for(rt, client, user)
    confirm(rt, booking)
    reply = says(fake_line, user, "データ削除")
    assert "いまは個人情報を削除できません" in reply and booking.reference in reply
    assert "電話にてご連絡" in reply and "改めて「データ削除」と送ってください" in reply
    assert last_buttons(fake_line, user) == {}                   # nothing to confirm
    assert_kept(rt, user, booking, "confirmed")


def test_delete_data_keeps_a_booking_whose_session_has_just_begun(rt, client, user_factory, fake_line):
    """データ削除 during the session (its start passed, the office's no-show minutes not yet): the office runs it
    with the details, and the user may still call to say they cannot join, as 予約確認 tells them. Refused as
    just before the start, never erased under the session (found by tests/test_model_actors.py)."""
    user = user_factory("sakata")
    booking = request_for(rt, client, user)
    confirm(rt, booking)
    rt.clock.freeze(booking.slot_start + timedelta(minutes=5))
    reply = says(fake_line, user, "データ削除")
    yes = last_buttons(fake_line, user).get("削除する")
    if yes is not None:   # asked: the answer must still keep the booking
        reply = taps(fake_line, user, yes)
    assert "いまは個人情報を削除できません" in reply and booking.reference in reply
    assert_kept(rt, user, booking, "confirmed")


def test_delete_data_checks_again_when_confirmed(rt, client, user_factory, fake_line):
    """Staff confirmed the request between the question and the answer: nothing is deleted."""
    user = user_factory("sakata")
    booking = request_for(rt, client, user)
    assert "取り下げとなり" in says(fake_line, user, "データ削除")
    yes = last_buttons(fake_line, user)["削除する"]
    confirm(rt, booking)
    reply = taps(fake_line, user, yes)
    assert "いまは個人情報を削除できません" in reply and "個人情報を削除しました" not in reply
    assert_kept(rt, user, booking, "confirmed")


def test_an_old_delete_button_does_not_close_a_request_its_question_did_not_name(rt, client, user_factory,
                                                                                 fake_line):
    """削除する from a question asked before the request existed: the question is asked again, naming the
    request, and nothing is withdrawn or erased until its own button is tapped."""
    user = user_factory("otaru")
    says(fake_line, user, "データ削除")                      # nothing open yet: the question names no request
    old_yes = last_buttons(fake_line, user)["削除する"]
    walk_to_slots(user, rt)                                   # then a request, made through the chat
    user.says("1")
    complete_form(client, form_link(fake_line.messages_to(user.user_id)), valid_answers(rt.offices["otaru"]))
    booking = the_booking(rt, user)
    reply = taps(fake_line, user, old_yes)
    assert "個人情報を削除しました" not in reply
    assert "削除のご確認をお送りした後に、予約の状況が変わりました" in reply
    assert booking.reference in reply and "取り下げとなり" in reply
    assert_kept(rt, user, booking, "requested")
    reply = taps(fake_line, user, last_buttons(fake_line, user)["削除する"])
    assert "個人情報を削除しました" in reply and the_booking(rt, user).status == "withdrawn"


@pytest.mark.parametrize("decided", [False, True])
def test_on_the_session_day_otaru_takes_changes_by_phone_only(rt, clock, client, user_factory, fake_line, decided):
    """Otaru: 「当日キャンセルの場合は電話のみにて」 — a request not yet decided included (staff may be confirming
    it), through 予約確認, its button and データ削除 alike."""
    user = user_factory("otaru")
    booking = request_for(rt, client, user)
    if decided:
        confirm(rt, booking)
    status = "confirmed" if decided else "requested"
    clock.freeze(booking.slot_start - timedelta(minutes=30))
    listing = says(fake_line, user, "予約確認")
    assert "当日のため、このトークではキャンセルできません" in listing and listing.count("このトークでは") == 1
    assert "取り下げる場合は" not in listing
    reply = taps(fake_line, user, f"a=withdraw&at=any&o=otaru&v={booking.reference}")
    assert "このトークではキャンセルできません" in reply and "電話:" in reply and "メール:" not in reply
    reply = says(fake_line, user, "データ削除")
    assert "いまは個人情報を削除できません" in reply and "電話:" in reply
    assert_kept(rt, user, booking, status)


def test_the_day_before_a_request_is_still_withdrawn_in_chat(rt, clock, client, user_factory, fake_line):
    user = user_factory("otaru")
    booking = request_for(rt, client, user)
    clock.freeze(booking.slot_start - timedelta(days=1))
    reply = confirmed(fake_line, user, taps(fake_line, user, f"a=withdraw&at=any&o=otaru&v={booking.reference}"))
    assert "お申込みを取り下げました" in reply
    assert the_booking(rt, user).status == "withdrawn"


def test_typing_cancel_shows_how_each_booking_is_cancelled(rt, client, user_factory, fake_line):
    user = user_factory("sakata")
    booking = request_for(rt, client, user)
    confirm(rt, booking)
    reply = says(fake_line, user, "キャンセルしたい")
    assert booking.reference in reply and "このトークではキャンセルできません" in reply and "電話" in reply
    assert the_booking(rt, user).status == "confirmed"                  # shown, nothing done


def test_delete_data_can_be_declined(rt, client, user_factory, fake_line):
    user = user_factory("sakata")
    request_for(rt, client, user)
    says(fake_line, user, "データ削除")
    assert "取りやめました" in taps(fake_line, user, last_buttons(fake_line, user)["削除しない"])
    assert the_booking(rt, user).details is not None and the_booking(rt, user).status == "requested"


def test_delete_data_is_confirmed_by_typing_the_buttons_words(rt, client, user_factory, fake_line):
    """LINE for PC shows no quick replies: 削除する / 削除しない typed right after the question answer it, with
    the same check as the button (staff confirming in between stops it); typed later they mean nothing."""
    user = user_factory("otaru")
    booking = request_for(rt, client, user)
    says(fake_line, user, "データ削除")
    assert "取りやめました" in says(fake_line, user, "削除しない")
    says(fake_line, user, "データ削除")
    says(fake_line, user, "ヘルプ")
    assert "個人情報を削除しました" not in says(fake_line, user, "削除する")    # not right after the question
    assert_kept(rt, user, booking, "requested")
    says(fake_line, user, "データ削除")
    confirm(rt, booking)
    assert "予約の状況が変わりました" in says(fake_line, user, "削除する")    # asked again, naming the booking
    assert_kept(rt, user, booking, "confirmed")
    assert "個人情報を削除しました" in says(fake_line, user, "削除する")
    assert the_booking(rt, user).status == "cancelled" and the_booking(rt, user).details is None


def test_english_delete_my_data_typed_after_the_question_confirms_it(rt, client, user_factory, fake_line):
    """In English 削除する reads "Delete my data", which is also the chat word that asks the question."""
    user = user_factory("otaru")
    request_for(rt, client, user)
    says(fake_line, user, "English")
    assert "Do you want to delete your data?" in says(fake_line, user, "delete my data")
    assert "have been deleted" in says(fake_line, user, "Delete my data")
    assert the_booking(rt, user).details is None


def test_unfollow_only_marks_the_user(rt, client, user_factory, fake_line):
    user = user_factory("sakata")
    booking = request_for(rt, client, user)
    user.unfollows()
    assert conversation(rt, user).followed is False
    after = the_booking(rt, user)
    assert (after.status, after.details) == (booking.status, booking.details)


def test_a_blocked_user_is_told_to_contact_the_office(rt, client, user_factory, fake_line):
    user = user_factory("otaru")
    walk_to_slots(user, rt)
    user.says("1")
    url = form_link(fake_line.messages_to(user.user_id))
    with rt.db.transaction() as s:
        s.get(Conversation, conversation(rt, user).id).booking_blocked = True
    confirmation = Page.get(client, url).submit(client, valid_answers(rt.offices["otaru"]))
    refused = confirmation.submit(client)
    assert refused.status == 403 and "お受けできません" in refused.html and "0134-32-8689" in refused.html
    assert rows(rt, Booking) == [] and rows(rt, SlotHold) == []
    says(fake_line, user, "中止")
    reply = says(fake_line, user, "予約")
    assert "お受けできません" in reply and "0134-32-8689" in reply


def test_nothing_to_withdraw_once_the_slot_has_begun(rt, clock, client, user_factory, fake_line):
    user = user_factory("sakata")
    booking = request_for(rt, client, user)
    says(fake_line, user, "予約確認")
    withdraw = last_buttons(fake_line, user)[f"取り下げる（{booking.reference}）"]
    clock.freeze(booking.slot_start + timedelta(minutes=1))       # before the worker expired it
    assert "開始時刻を過ぎている" in taps(fake_line, user, withdraw)
    assert the_booking(rt, user).status == "requested"
    assert last_buttons(fake_line, user) == {}


@pytest.mark.parametrize("office", ["sakata", "otaru"])
def test_just_after_the_start_cancelling_says_to_phone_before_the_no_show_rule(rt, clock, client, user_factory,
                                                                             fake_line, office):
    """「連絡がないまま…実施日時を10分経過した場合は、キャンセルとみなします」 and, after that, 「今後の…利用をお断り
    する場合があります」: a user who cannot join and taps キャンセル (or asks 予約確認) in those 10 minutes is told to
    phone the office now, not only that the chat is too late."""
    user = user_factory(office)
    booking = request_for(rt, client, user)
    confirm(rt, booking)
    cancel = f"a=cancel_booking&at=any&o={office}&v={booking.reference}"
    clock.freeze(booking.slot_start + timedelta(minutes=3))
    reply = taps(fake_line, user, cancel)
    assert "このトークではキャンセルできません" in reply and "開始時刻を過ぎている" not in reply
    assert ("0134-32-8689" in reply and "s-otaru.sm@" not in reply) if office == "otaru" else "電話番号は" in reply
    listing = says(fake_line, user, "予約確認")
    assert "このトークではキャンセルできません" in listing and last_buttons(fake_line, user) == {}
    assert the_booking(rt, user).status == "confirmed"
    clock.freeze(booking.slot_start + timedelta(minutes=rt.offices[office].no_show_minutes))
    assert "開始時刻を過ぎている" in taps(fake_line, user, cancel)      # the no-show rule applies now
    assert the_booking(rt, user).status == "confirmed"


def test_a_proposal_is_answered_from_the_list(rt, client, user_factory, fake_line):
    from dialogs.router import parse_postback

    user = user_factory("otaru")
    booking = request_for(rt, client, user)
    with rt.db.transaction() as s:
        assert lifecycle.fire(s, s.get(Booking, booking.id), "propose", rt.clock.now())
    listing = says(fake_line, user, "予約確認")
    assert "別の日時のご提案あり" in listing
    buttons = last_buttons(fake_line, user)
    assert set(buttons) == {"この日時で予約する", "辞退する"}
    fields = parse_postback(buttons["辞退する"])
    assert (fields["a"], fields["v"], fields["r"], fields["o"]) == ("proposal", "decline", booking.reference, "otaru")
    # An old 取り下げる button turns the proposal down (a proposal cannot be withdrawn: it is declined).
    reply = confirmed(fake_line, user, taps(fake_line, user, f"a=withdraw&at=any&o=otaru&v={booking.reference}"))
    assert "辞退されたこと" in reply
    assert the_booking(rt, user).status == "declined" and rows(rt, SlotClaim) == []


@pytest.mark.parametrize("typed,status", [("この日時で予約する", "confirmed"), ("辞退する", "declined")])
def test_a_proposal_is_answered_by_typing_its_buttons_words(rt, client, user_factory, fake_line, typed, status):
    """LINE for PC shows no quick replies: the answers to a proposed slot work typed as the buttons read."""
    user = user_factory("otaru")
    booking = request_for(rt, client, user)
    with rt.db.transaction() as s:
        assert lifecycle.fire(s, s.get(Booking, booking.id), "propose", rt.clock.now())
    says(fake_line, user, "予約確認")
    reply = says(fake_line, user, typed)
    assert booking.reference in reply and the_booking(rt, user).status == status


def test_a_typed_proposal_answer_without_a_proposal_says_so(rt, client, user_factory, fake_line):
    user = user_factory("otaru")
    request_for(rt, client, user)
    assert "該当するご提案が見つかりませんでした" in says(fake_line, user, "辞退する")
    assert the_booking(rt, user).status == "requested"


# -- the receipt: looked for only while one may be due ----------------------------------------------------

def test_the_receipt_is_looked_for_only_while_one_may_be_due(rt, client, user_factory, fake_line):
    with watch(rt.db.engine) as seen:
        def booking_reads() -> int:
            return sum(1 for s in seen if s.startswith("SELECT") and "FROM bookings" in s)

        other = user_factory("sakata")
        says(fake_line, other, "ヘルプ")
        assert booking_reads() == 0 and not conversation(rt, other).receipt_due
        user = user_factory("sakata")
        request_for(rt, client, user)
        assert conversation(rt, user).receipt_due
        seen.clear()
        assert "受付番号" in says(fake_line, user, "ヘルプ")   # the receipt, shown once
        says(fake_line, user, "ヘルプ")                         # looks once more, finds none, stops looking
        assert not conversation(rt, user).receipt_due
        reads = booking_reads()
        says(fake_line, user, "ヘルプ")
        assert booking_reads() == reads


def test_a_step_that_reads_writes_the_conversation_row_once(rt, user_factory, fake_line):
    """The flood bucket is set with the rest of the row at the end of the event: the dialog's own reads
    (予約確認 reads the bookings) do not flush the row early, so it is updated once per event."""

    user = user_factory("sakata")
    says(fake_line, user, "ヘルプ")  # the row exists: what follows is a known user's event
    rt.clock.advance(minutes=1)     # a minute later: the row's moments change too
    with watch(rt.db.engine) as seen:
        says(fake_line, user, "予約確認")
    assert any(s.startswith("SELECT") and "FROM bookings" in s for s in seen)
    assert sum(1 for s in seen if s.startswith("UPDATE conversations")) == 1
    assert conversation(rt, user).flood_tat is not None


def test_the_migration_marks_receipts_already_waiting(rt, client, user_factory, fake_line):
    from alembic import command
    from alembic.config import Config as AlembicConfig

    from bot.db import MIGRATIONS_DIR, upgrade_schema

    waiting, shown = user_factory("sakata"), user_factory("sakata")
    request_for(rt, client, waiting)
    _, url = hold_directly(rt, "sakata", user_id=shown.user_id, slot_index=1)
    other_person = {**valid_answers(rt.offices["sakata"]), "seeker_number": "98765-43210"}
    assert "受付番号: " in complete_form(client, url, other_person).html
    says(fake_line, shown, "ヘルプ")
    says(fake_line, shown, "ヘルプ")
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    with rt.db.engine.connect() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0010_merge")
        conn.commit()
    rt.db.dispose()
    upgrade_schema(rt.db)
    assert conversation(rt, waiting).receipt_due
    assert not conversation(rt, shown).receipt_due
    assert "受付番号" in says(fake_line, waiting, "ヘルプ")


@pytest.mark.parametrize(("language", "switch", "booked", "running", "over"), [
    ("ja", None, "予約確定", "相談の時間中です", "相談の予定時間を過ぎました"),
    ("en", "English", ": confirmed", "the session time has begun", "the session time has passed"),
    ("easy", "やさしい日本語", "予約が きまりました", "いま そうだんの 時間です", "そうだんの 時間は おわりました"),
])
def test_a_confirmed_session_whose_time_came_is_not_listed_as_still_ahead(rt, clock, client, user_factory,
                                                                         fake_line, language, switch, booked,
                                                                         running, over):
    """Until staff record 出席 or 欠席, a booking stays confirmed; 予約確認 must not list it as a booking still
    to come once its time came: while the session runs it says so, after its end that the time has passed,
    with nothing to tap for it and how to book again."""
    user = user_factory("otaru")
    booking = request_for(rt, client, user)
    confirm(rt, booking)
    if switch:
        says(fake_line, user, switch)
    assert booked in says(fake_line, user, "予約確認")
    duration = rt.offices["otaru"].schedule.duration_minutes
    clock.freeze(booking.slot_start + timedelta(minutes=rt.offices["otaru"].no_show_minutes + 1))
    listing = says(fake_line, user, "予約確認")
    assert running in listing and booked not in listing and over not in listing
    assert last_buttons(fake_line, user) == {}
    clock.freeze(booking.slot_start + timedelta(minutes=duration))
    listing = says(fake_line, user, "予約確認")
    assert over in listing and booked not in listing and running not in listing
    assert booking.reference in listing and "予約" in listing.split(over)[1]   # how to book again follows
    assert last_buttons(fake_line, user) == {}
    assert the_booking(rt, user).status == "confirmed"
