"""Reading a slot typed in the chat (bot.services.slot_text): a pure function of the text and the clock."""
from __future__ import annotations

import calendar
import re
from datetime import datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.clock import TOKYO
from bot.services.slot_text import declines_slot, parse_slot_text, read_slot_text


def at(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=TOKYO)


TUESDAY = at(2026, 12, 1, 10)      # Tuesday 1 December 2026, 10:00 in Tokyo


# --- the Japanese forms ---------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "text",
    [
        "12/7 14:00",
        "12/7 14時",
        "12月7日14時",
        "12月7日 14:00",
        "12/7(月) 14:00",
        "12/7(月)14:00",
        "１２／７　１４：００",
        "１２月７日（月）１４時",
        "12/7 14:00でお願いします",
        " 12 / 7  14 : 00 ",
    ],
)
def test_parse_slot_text_forms(text):
    assert parse_slot_text(text, at(2026, 11, 30, 10)) == at(2026, 12, 7, 14)


@pytest.mark.parametrize(("text", "expected"), [
    ("十二月七日十四時", at(2026, 12, 7, 14)), ("12月七日14時", at(2026, 12, 7, 14)),
    ("十二月七日 14:00", at(2026, 12, 7, 14)), ("12/7 二時", at(2026, 12, 7, 14)),
    ("十二月七日十四時三十分", at(2026, 12, 7, 14, 30)), ("十二月七日 午後二時半", at(2026, 12, 7, 14, 30)),
    ("12月の七日 十時", at(2026, 12, 7, 10)), ("十二月二十三日 十時", at(2026, 12, 23, 10)),
    ("12/7 14時で十分です", at(2026, 12, 7, 14)),          # <juu-bun>: enough, not ten minutes
])
def test_a_date_and_time_in_kanji_numerals(text, expected):
    """A phone converts 十二月七日 as readily as 12月7日: the month, the day after it, the hour and the minutes after
    it may be written in kanji numerals."""
    assert parse_slot_text(text, at(2026, 11, 30, 10)) == expected


@pytest.mark.parametrize("text", ["一日中大丈夫です 14時", "七日十四時以外", "十三月七日14時", "十二月三十二日 14時",
                                  "12/7 一時的に", "12/7 一時間", "十二月七日"])
def test_kanji_numerals_that_name_no_slot(text):
    """A day alone in kanji (<ichi-nichi> is also "one day"), a month or day that does not exist, <ichi-ji-teki>
    (for a while), a span of hours, or a date without its time: no slot."""
    assert parse_slot_text(text, at(2026, 11, 30, 10)) is None


@pytest.mark.parametrize(
    ("text", "now", "expected"),
    [
        ("12/7 14時半", at(2026, 11, 30), at(2026, 12, 7, 14, 30)),
        ("12月7日14時30分", at(2026, 11, 30), at(2026, 12, 7, 14, 30)),
        ("1/4 10:00", at(2026, 12, 20), at(2027, 1, 4, 10)),        # next year
        ("12/7 14:00", at(2026, 12, 10), at(2026, 12, 7, 14)),      # just passed: this year's, so "past"
        ("11/1 10:00", at(2026, 12, 10), at(2027, 11, 1, 10)),      # long passed: next year's
        ("2/29 10:00", at(2027, 12, 1), at(2028, 2, 29, 10)),       # a leap day exists in 2028
        ("12/7 14じはん", at(2026, 11, 30), at(2026, 12, 7, 14, 30)),   # the marks in kana, as typed on a phone
        ("12/7 午後２じ半", at(2026, 11, 30), at(2026, 12, 7, 14, 30)),
        ("12/7 ごご2じはん", at(2026, 11, 30), at(2026, 12, 7, 14, 30)),
        ("12/7 14じ30ぷん", at(2026, 11, 30), at(2026, 12, 7, 14, 30)),
        ("12/7 14時30ぷん", at(2026, 11, 30), at(2026, 12, 7, 14, 30)),
        ("12月7日14じ30ふん", at(2026, 11, 30), at(2026, 12, 7, 14, 30)),
        ("12/7 ゴゴ2ジハン", at(2026, 11, 30), at(2026, 12, 7, 14, 30)),
        ("12/7 ごぜん10じ", at(2026, 11, 30), at(2026, 12, 7, 10)),
        ("12/7 ２じ", at(2026, 11, 30), at(2026, 12, 7, 14)),           # as 12/7 2時 reads: the afternoon
    ],
)
def test_parse_slot_text_years_and_minutes(text, now, expected):
    assert parse_slot_text(text, now) == expected


@pytest.mark.parametrize(
    "text",
    ["2月30日 10時", "2/29 10:00", "13/1 10:00", "12/7 25:00", "12/7 14:60", "12/7", "14:00", "予約", "3",
     "12/7(火) 14:00"],  # a weekday that does not match the date
)
def test_parse_slot_text_refuses(text):
    assert parse_slot_text(text, at(2026, 11, 30, 10)) is None


@pytest.mark.parametrize(
    ("text", "now", "expected"),
    [
        ("12月7日 午後2時", at(2026, 11, 30, 10), at(2026, 12, 7, 14)),
        ("12/7 午後2:30", at(2026, 11, 30, 10), at(2026, 12, 7, 14, 30)),
        ("12/7 2pm", at(2026, 11, 30, 10), at(2026, 12, 7, 14)),
        ("12/7 2 PM", at(2026, 11, 30, 10), at(2026, 12, 7, 14)),
        ("12/7 10am", at(2026, 11, 30, 10), at(2026, 12, 7, 10)),
        ("12/7 午前10時", at(2026, 11, 30, 10), at(2026, 12, 7, 10)),
        ("12/7 午後14時", at(2026, 11, 30, 10), at(2026, 12, 7, 14)),      # 午後 with a 24-hour time
        ("7日14時", at(2026, 12, 1, 10), at(2026, 12, 7, 14)),            # a day of this month
        ("７日の１４時から", at(2026, 12, 1, 10), at(2026, 12, 7, 14)),
        ("4日10時", at(2026, 12, 20, 10), at(2027, 1, 4, 10)),            # passed this month: next month's
        ("31日10時", at(2027, 2, 10, 10), at(2027, 3, 31, 10)),           # no 31st in February
        ("明日の14:00", at(2026, 12, 6, 10), at(2026, 12, 7, 14)),
        ("あした 午後2時", at(2026, 12, 6, 10), at(2026, 12, 7, 14)),
        ("明後日10時半", at(2026, 12, 5, 10), at(2026, 12, 7, 10, 30)),
        ("あさって14時", at(2026, 12, 31, 10), at(2027, 1, 2, 14)),
        ("今日の15時", at(2026, 12, 7, 10), at(2026, 12, 7, 15)),
        ("きょう 15:00", at(2026, 12, 7, 10), at(2026, 12, 7, 15)),
        ("3日後の14時", at(2026, 12, 4, 10), at(2026, 12, 7, 14)),         # three days from today
        ("１０日後 10:00", at(2026, 12, 28, 10), at(2027, 1, 7, 10)),
    ],
)
def test_parse_slot_text_natural_forms(text, now, expected):
    """What people type besides the documented forms: 午前/午後, am/pm, a day of the month alone, 今日/明日/
    明後日 (the date then as the clock says)."""
    assert parse_slot_text(text, now) == expected


@pytest.mark.parametrize("text", ["12月7日(火) 14時", "12/7 13pm", "7日", "明日", "午後2時", "12月7日(火)14時",
                                  "3日前の14時", "3日間 14時", "3日以内 14時", "3日後",
                                  "ごご2じ", "14じ", "12/7 No.14じ", "12/7 #14じ",
                                  "12/7 2時間", "12/7 2時間後", "12/7 1時間で", "12/7 2じかん", "12/7 2じかんご",
                                  "12/7 1ジカン", "12/7 2じつは", "12/7 2じぶんで", "12/7 3じげん", "12/7 1じめんせつ",
                                  "12/7 2ジャ", "12/7 じかん 2", "12/7 30ぷん", "12/7 2じかんはんくらい",
                                  "求職番号14時 12/7", "求職番号14じ 12/7", "求職番号は 14時 12/7",
                                  "#14時 12/7", "No. 14時 12/7",
                                  "12/7 にじ", "12/7 じゅうよじ", "12/7 ごごにじ", "12/7 じゅうよじはん", "12/7 ニジ",
                                  "12/7 にじがきれいでした", "12/7 くじびきで", "12/7 いちじてきに", "12/7 ごじがあります"])
def test_parse_slot_text_refuses_natural_forms_that_are_not_a_slot(text):
    """A weekday that does not match, a 13 pm, a date without a time, a time without a date, a span of days
    (`3日前`: read as the 3rd before) or hours (`2時間`, `2じかん`), kana after a digit that begins another word
    (`じつは`, `じぶん`, `1じめんせつ`: no `じ` of an hour), a number after a word that says it is one (`求職番号`,
    `No.`, `#`: the time beside a date is that number, not an hour), an hour in kana numerals (`にじ`: phones
    convert it, and most such hours are words too: 虹, くじ, 誤字, 一時)."""
    assert parse_slot_text(text, at(2026, 11, 30, 10)) is None


@pytest.mark.parametrize(
    "text",
    [
        "再来週の月曜 10時", "再来週月曜 10時",           # the week after next: not next week's Monday 12/7
        "2週間後の月曜 10時", "第2月曜 10時", "第二月曜 10時", "先週の月曜 10時", "最初の月曜 10時",
        "来月の10日 10時", "来月 10日 10時", "今月の10日 10時", "1月、7日 10時",   # not this month's 10th
        "明日から3日後 10時",                                # counted from tomorrow, not from today
        "next next Monday 10am", "a week from Monday 10am", "last Monday 10am", "the second Monday 10am",
        "2nd Monday 10am",
    ],
)
def test_a_day_moved_by_the_word_before_it_is_not_read_as_another_day(text):
    """Said on Tuesday 12/1. A weekday or a day of the month after a word that moves it (the week after next,
    next month, the second ..., from tomorrow) is not read as the plain one, which would hold a slot of another
    day than the one meant: none is read, and the bot asks again."""
    assert parse_slot_text(text, TUESDAY) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1月の7日 10時", at(2027, 1, 7, 10)),            # January the 7th, not this month's 7th
        ("12月 の 7日 14時", at(2026, 12, 7, 14)),
        ("来週の月曜 10時", at(2026, 12, 7, 10)),          # next week's: read as before
        ("3日前に連絡した件で、7日 14時", at(2026, 12, 7, 14)),
        ("明日の14時", at(2026, 12, 2, 14)),
        ("from tomorrow 10am", at(2026, 12, 2, 10)),
    ],
)
def test_a_day_after_other_words_is_read_as_before(text, expected):
    assert parse_slot_text(text, TUESDAY) == expected


# --- an hour of 1 to 7 without 午前/午後 or am/pm: the afternoon's -------------------------------------------

@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("12月7日 3時", at(2026, 12, 7, 15)),
        ("12/14 2じ", at(2026, 12, 14, 14)),                      # as the easy Japanese example is typed
        ("12/7 1時", at(2026, 12, 7, 13)),
        ("12/7 7時", at(2026, 12, 7, 19)),
        ("12/7 2時半", at(2026, 12, 7, 14, 30)),
        ("12/7 3じはん", at(2026, 12, 7, 15, 30)),
        ("12/7 2時30分", at(2026, 12, 7, 14, 30)),
        ("12/7 3:30", at(2026, 12, 7, 15, 30)),
        ("１２／７　２：００", at(2026, 12, 7, 14)),
        ("１２月７日　３じ", at(2026, 12, 7, 15)),
        ("12/7 3時でお願いします", at(2026, 12, 7, 15)),
        ("7日の3時", at(2026, 12, 7, 15)),
        ("明日 3時", at(2026, 12, 2, 15)),
        ("月曜 2時", at(2026, 12, 7, 14)),
        ("Dec 7 3:00", at(2026, 12, 7, 15)),
        ("Dec 7 2.30", at(2026, 12, 7, 14, 30)),
    ],
)
def test_an_hour_of_one_to_seven_said_without_morning_or_afternoon_is_the_afternoons(text, expected):
    """Hello Work counsels in office hours (about 8:30 to 17:15): 「12月7日 3時」 means 15:00, as people say it,
    not 3 at night."""
    assert parse_slot_text(text, TUESDAY) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("12/7 午前3時", at(2026, 12, 7, 3)),                      # the morning said: 03:00, no slot
        ("12/7 ごぜん3じ", at(2026, 12, 7, 3)),
        ("12/7 3am", at(2026, 12, 7, 3)),
        ("12/7 3 a.m.", at(2026, 12, 7, 3)),
        ("12/7 午後3時", at(2026, 12, 7, 15)),                     # the afternoon said: as before
        ("12/7 3pm", at(2026, 12, 7, 15)),
        ("12/7 03:00", at(2026, 12, 7, 3)),                        # a 24-hour time with its leading zero
        ("12/7 0300", at(2026, 12, 7, 3)),
        ("12/7 0時", at(2026, 12, 7, 0)),
        ("12/7 8時", at(2026, 12, 7, 8)),
        ("12/7 8:30", at(2026, 12, 7, 8, 30)),
        ("12/7 9時半", at(2026, 12, 7, 9, 30)),
        ("12/7 12時", at(2026, 12, 7, 12)),
        ("12/7 15時", at(2026, 12, 7, 15)),
        ("１２月３日　１０じ", at(2026, 12, 3, 10)),                # full width, 月日, an ideographic space, kana じ
    ],
)
def test_an_hour_said_with_morning_or_afternoon_or_outside_one_to_seven_stays(text, expected):
    assert parse_slot_text(text, TUESDAY) == expected


@pytest.mark.parametrize("text", ["12/7 2時間", "12/7 3じかん", "Dec 7 at 3", "12/7 3", "3時"])
def test_an_afternoon_hour_is_still_no_time_where_no_hour_is_said(text):
    """A span of hours, a bare number, a time without a date: still no slot."""
    assert parse_slot_text(text, TUESDAY) is None


# --- four digits, as a phone's keypad types a time ----------------------------------------------------------

@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("12/7 1400", at(2026, 12, 7, 14)),
        ("１２／７　１４００", at(2026, 12, 7, 14)),                # full-width, an ideographic space
        ("12月7日 1400", at(2026, 12, 7, 14)),
        ("12/7 0930", at(2026, 12, 7, 9, 30)),
        ("1400 12/7", at(2026, 12, 7, 14)),                       # the time first
        ("12/7 1400でお願いします", at(2026, 12, 7, 14)),
        ("Dec 7 1530", at(2026, 12, 7, 15, 30)),
        ("2026/12/7 1400", at(2026, 12, 7, 14)),                  # a year before the date is the date's
    ],
)
def test_four_digits_beside_a_date_are_its_time(text, expected):
    assert parse_slot_text(text, TUESDAY) == expected


@pytest.mark.parametrize("text", ["12/7 2500", "12/7 1460", "12/7 2400", "1400", "１４００", "12/7 14005",
                                  "12/7 2026", "12/7 2030",       # 20xx: a year as much as a time
                                  "12/7 1400pm", "12/7 14"])
def test_four_digits_that_are_no_time_or_stand_alone_are_no_slot(text):
    """No 25:00 or 14:60; a time without a date (14:00 is on many days); a year's four digits; 1400pm."""
    assert parse_slot_text(text, TUESDAY) is None


@pytest.mark.parametrize("text", [
    "12/7 1200円", "12/7 1200 円", "12/7 ¥1200", "12/7 1000yen", "12/7 $1400", "12/7 1400 yen",   # a price
    "12/7 090-1234-5678", "090-1234-5678 12/7", "12/7 1234-5678", "12/7 0120-123-456",       # a phone number
    "〒123-4567 12/7", "12/7 〒1234567", "12/7 1234567",                                       # a postcode
    "求職番号 0123 12/7", "求職番号は0123 12/7", "12/7 求職番号1234", "12/7 No.1234", "12/7 #1234",  # a number
    "求職番号: 0123 12/7", "求職番号は 0123 12/7", "No. 0123 12/7", "# 0930 12/7",
    "2026/12/7", "2026年12月7日", "12/7 2026", "12/7 1400年",                                 # a year
    "12/7 1400人", "12/7 1400件", "12/7 1400番", "12/7 1400号室", "12/7 1400回", "12/7 1400分",  # a count
    "12/7 1400時間", "12/7 1400個", "12/7 1400 people", "12/7 1400th", "12/7 1400%", "12/7 1400.5",
    "12/7 1234時", "12/7 1234じ", "12/7 1400 時", "12/7 1234時30分",                          # no 1234th hour
    "12/7 1,200円", "1. 12/7", "12/7 1. 2. 3.",                                               # a list's numbers
    "12/7 1200えん", "12/7 1200 エン", "12/7 1400ぷん", "12/7 1400じかん",                        # ... in kana
])
def test_four_digits_of_another_number_are_no_time(text):
    """A price, a phone number, a postcode, a job seeker number, a year, a count beside a date: no slot. Four digits
    with 時 are no hour (there is no 1234th hour, and 12:34 is not written 1234時): the bot asks again."""
    assert parse_slot_text(text, TUESDAY) is None


@pytest.mark.parametrize(("text", "expected"), [
    ("12/7 1400-1500", at(2026, 12, 7, 14)), ("12/7 1400〜1500", at(2026, 12, 7, 14)),  # a span: its start
    ("12/7 1400~", at(2026, 12, 7, 14)), ("12/7 1400から", at(2026, 12, 7, 14)),
    ("1. 12/7 1400", at(2026, 12, 7, 14)),                                              # a list number before it
    ("求職番号 12345-12345678 12/7 1400", at(2026, 12, 7, 14)),
    ("求職番号は1234です 12/7 14時", at(2026, 12, 7, 14)), ("番号: 0123 12/7 14じ", at(2026, 12, 7, 14)),
    ("12/7 1400希望", at(2026, 12, 7, 14)), ("12/7 1400で", at(2026, 12, 7, 14)),
    ("12/7 1400です", at(2026, 12, 7, 14)), ("12/7 1400 please", at(2026, 12, 7, 14)),
])
def test_four_digits_beside_other_words_are_still_the_time(text, expected):
    assert parse_slot_text(text, TUESDAY) == expected


# --- a date or time turned down is never the slot ---------------------------------------------------------

DECLINED = [
    "12/7以外", "12/7はだめ", "12/7は無理です", "12/7じゃなくて", "12/7ではなく",
    "12/7 14:00以外", "12/7 14時はだめです", "12/7 14:00は無理です", "12/7 14時じゃなくて",
    "１２／７　１４００はダメ", "12/7 14時はﾀﾞﾒ", "12/7 14時 NG", "12/7 14時×", "12/7 14時は都合が悪いです",
    "12/7 14時は都合がつきません", "12/7 14時は行けません", "12/7 14時は参加できません", "12/7 14時は難しいです",
    "12/7 14時は予定があります", "12/7 14時は空いていません", "12/7 14時は避けたいです", "12/7 14時は遠慮します",
    "12/7 14時はキャンセルで", "12/7 14時を除いて", "12/7 14時と12/8 10時以外",
    "12/7 14時、12/8 10時以外",                  # which part the word denies is not guessed: asked again
    "not 12/7 2pm", "Dec 7 2pm is not ok", "I can't do Dec 7 at 2pm", "Dec 7 2pm doesn’t work",
    "any day except Dec 7 2pm", "Dec 7 2pm is no good", "Dec 7 2pm NG",
    "2番はだめ", "1以外",                        # a number of the list turned down
    "12/7 14じはむり", "12/7 14じ以外", "12/7 14じはだめです", "12/7 ごご2じは無理です", "12/7 14じゃなくて",
    "12/7 14じ30ぷんはむりです", "12/7 14じはんは都合が悪いです", "12/7いがい",
    "12/7 14じはつごうがわるいです", "12/7 14じはつごうがつきません", "12/7 14じはふつごうです",     # in kana too
    "12/7 14じはえんりょします", "12/7 14じ えんりょします", "12/7 14じはよていがあります",
    "12/7 14じはよていがはいっています",
    "12/7 14じはよていがあいてないです", "12/7 14じはよていがあいにくはいっています", "12/7 14じいがいにしてください",
]


@pytest.mark.parametrize("text", DECLINED)
def test_a_date_or_time_turned_down_is_no_slot(text):
    assert declines_slot(text)
    assert parse_slot_text(text, TUESDAY) is None


@pytest.mark.parametrize(
    "text",
    ["12/7 14:00でお願いします", "12/7 14時希望です", "12/7 14時で大丈夫です", "12/7 14時がいいです",
     "12/7 14時なら行けます", "12/7 14時ならできます", "12/7 14時で問題ありません", "12/7 14時の都合がいいです",
     "12/7 14時は空いていますか", "12/7 14時でお願いできますか", "12/7 14時で都合つきます", "12/7 14時からでお願いします",
     "12/7 1400 でおねがいします", "Dec 7 2pm please", "12/7 2pm works for me", "I'd like Dec 7 at 2pm",
     "Can I book Dec 7 at 2pm?", "12/7 14時でいいです"],
)
def test_a_slot_asked_for_in_other_words_is_not_turned_down(text):
    assert not declines_slot(text)
    assert parse_slot_text(text, TUESDAY) == at(2026, 12, 7, 14)


# Ways a job seeker picks a slot on a phone, with the slot they pick (Tuesday 1 December 2026 being today). Some
# hold a declining word that does not turn the chosen slot down: a phrase that asks for it (<no mistake>, <could
# you not>, <is it not free?>, <waiting list>, <put an appointment in>), <only> (<only> ... <cannot>, <other than>
# ... <impossible>), or a word about another date in an earlier clause, or a mistake corrected.
D7, D8 = at(2026, 12, 7, 14), at(2026, 12, 8, 10)
PICKS = [
    ("12/7 14時で", D7), ("12/7 14時でお願いします", D7), ("12/7 14時がいいです", D7), ("12/7 14時にします", D7),
    ("12/7 14時希望です", D7), ("12/7 14時で大丈夫です", D7), ("12/7 14時空いてますか？", D7),
    ("12/7 14時予約したいです", D7), ("12/7 14時に入れたいです", D7), ("12/7 14時なら行けます", D7),
    ("12/7 14時で問題ないです", D7), ("12/7 14時で構いません", D7), ("12/7 14時で差し支えありません", D7),
    ("12/7 14時で結構です", D7), ("12/7 14時でも大丈夫ですか", D7), ("12/7 14時で！", D7), ("12/7 14時で👍", D7),
    ("12/7 14時でお願いしますm(_ _)m", D7), ("１２／７ １４時でおねがいします", D7), ("12/7 14時でおねがいしまーす", D7),
    ("12月7日の14時で", D7), ("12月7日14時～でお願いします", D7), ("12/7 14時から", D7), ("7日14時で", D7),
    ("月曜14時で", D7), ("来週月曜の14時でお願いします", D7), ("12/7(月)14:00 で予約お願いします", D7),
    ("12/7 14:00〜希望", D7), ("12/7 14時で。仕事が休みなので", D7), ("12/7 14時なら仕事を休めます", D7),
    ("12/7 14時で、遅れないようにします", D7), ("12/7 14時 大丈夫です 🙆", D7), ("12/7 14時 OKです", D7),
    ("12/7 14時⭕", D7), ("12/7 14時で良いです", D7), ("12/7 14時でいいですか？", D7), ("12/7 14時 行けます", D7),
    ("１２／７　１４００でお願いします🙇", D7), ("12/7 1400にします", D7), ("明日14時でお願いします", at(2026, 12, 2, 14)),
    # the marks in kana, as typed on a phone
    ("12/7 14じ", D7), ("12/7 14じでおねがいします", D7), ("１２／７ １４じで", D7), ("12/7 ごご2じ", D7),
    ("12/7 午後２じで", D7), ("12月7日 ごご２じでお願いします", D7), ("12/7 14ジ", D7), ("12/7 14じごろ", D7),
    ("12/7の14じから", D7), ("12/7 14じまで大丈夫です", D7), ("あした14じ", at(2026, 12, 2, 14)),
    ("12/7 14じなら行けます", D7), ("12/7 14じしかむりです", D7), ("12/7 14じいがいはむりです", D7), ("ごぜんはむりなので12/7 14じで", D7),
    ("12/7 14じでお願いします、2じかんくらいかかりますか", D7), ("12/7 14じでお願いします。じつは初めてです", D7),
    ("12/7 14じはん", at(2026, 12, 7, 14, 30)), ("12/7 14時30ぷんで", at(2026, 12, 7, 14, 30)),
    ("12/7はむりなので12/8 10じで", D8), ("12/7 14じじゃなくて12/8 10じ", D8),
    ("12/7 14じでまちがいないです", D7), ("12/7 14じによていをいれたいです", D7), ("12/7 14じのつごうがいいです", D7),
    ("12/7はよていがあるので12/8 10じで", D8), ("12/7はつごうがわるいので12/8 10じにします", D8),
    # kana declining words in another meaning: feel free to (えんりょなく), my schedule is free (よていがあいて),
    # surprisingly (いがいと)
    ("12/7 14じ えんりょなくおねがいします", D7), ("では遠慮なく、12/7 14時でお願いします", D7),
    ("12/7 14時 よていがあいてるのでおねがいします", D7), ("12/7 14時は予定があいているので大丈夫です", D7),
    ("いがいとあいてますね、12/7 14じでおねがいします", D7), ("12/7 14じでおねがいします。いがいとちかくてたすかります", D7),
    # <only> ... <cannot>: the slot is the one that suits
    ("12/7 14時しかできません", D7), ("12/7 14時しか空いてません", D7), ("12/7 14時しか行けません", D7),
    ("12/7 14時しか無理です", D7), ("12/7 14時以外は無理です", D7), ("12/7 14時以外は都合が悪いです", D7),
    ("12/7 14時しか空いていないので、お願いします", D7), ("12/7 14時以外はちょっと難しいです", D7),
    ("12/7 14時しかどうしても行けません", D7),
    # what to do should the slot not be free, in a later clause
    ("12/7 14時でお願いします、無理でしたら別の日でも", D7), ("12/7 14時でお願いします。難しければ別の日でも大丈夫です", D7),
    ("12/7 14時希望です。都合が悪ければ12/8でも", D7), ("12/7 14時で、ダメなら連絡ください", D7),
    ("12/7 14時、予定が入ったら連絡します", D7),
    # a phrase that asks for the slot
    ("12/7 14時でお願いできませんか", D7), ("12/7 14時でお願いできないでしょうか", D7),
    ("12/7 14時は空いてないですか？", D7), ("12/7 14時って空いてませんか", D7), ("12/7 14時で予約できませんか", D7),
    ("12/7 14時で間違いないです", D7), ("12/7 14時で間違いありません", D7),
    ("12/7 14時に予定を入れたいです", D7), ("12/7 14時で予定入れてください", D7), ("12/7 14時で予定が入れられますか", D7),
    ("12/7 14時でキャンセル待ちでも大丈夫です", D7),
    # another date turned down in an earlier clause, or a mistake corrected: the slot after it
    ("12/7は無理なので12/8 10時で", D8), ("12/7は無理なので12/8 10時でお願いします", D8),
    ("12/7はだめなので、12/8の10時でお願いします", D8), ("12/7は予定が入っているので12/8 10時希望です", D8),
    ("12/7は都合が悪いので12/8 10時にします", D8), ("12/7 14時じゃなくて12/8 10時", D8),
    ("12/7 14時ではなく、12/8 10時でお願いします", D8), ("12/7 14時キャンセルして12/8 10時に変えたいです", D8),
    ("12/7 14時は間違いです。12/8 10時で", D8), ("午前は無理なので12/7 14時で", D7),
    ("間違えました、12/8 10時です", D8), ("すみません間違えました。12/8 10時でお願いします", D8),
    ("まちがえました！12/8 10時で", D8), ("12/7以外なら大丈夫なので12/8 10時で", D8),
    # English
    ("Dec 7 2pm please", D7), ("Dec 7 at 2pm is fine", D7), ("I'd like 12/7 at 2pm", D7),
    ("Can I book Dec 7 2pm?", D7), ("I'll take Dec 7 at 2pm", D7), ("Only Dec 7 2pm works for me", D7),
    ("I can only do Dec 7 at 2pm", D7), ("Sorry, wrong one. Dec 7 2pm", D7), ("Is Dec 7 2pm available?", D7),
    ("I can't make Dec 8, so Dec 7 2pm please", D7), ("Not Dec 7. But Dec 8 10am works", D8),
]
# Texts that name a slot and choose none: the word may deny the slot itself, or which slot is meant is guessed.
NO_PICKS = [
    "12/7 14時以外", "12/7 14時以外で", "12/7 14時以外でお願いします", "12/7 14時以外は大丈夫です",
    "12/7 14時以外はだめですか", "12/7 14時しかできませんか", "12/7 14時しか空いてないんですか？",
    "12/7 14時しかできませんか🙏", "12/7 14時しか無理ですかね",
    "12/8 10時じゃなくて12/7", "12/7は無理、12/8 10時もだめ", "12/7は無理なので12/8か12/9 10時で",
    "12/7 14時がいいです、12/8は無理なので、12/9 10時でも", "無理です、12/8 10時は", "無理 12/8 10時",
    "違います、12/8 10時です", "先ほどのは違います、12/8 10時でお願いします",
    "12/7 14時以外は無理なので12/8 10時で", "12/7しか無理なので12/8 10時で",
    "12/7 14時は予約できません", "12/7 14時は空いてません", "12/7 14時じゃなきゃだめ", "12/7 14時が無理なら12/8 10時で",
    "12/7 14時、もし空いてなければ12/8 10時で", "12/7 14時は都合が悪いので12/8 10時以外で",
    "12/7 14時でお願いします、午前は無理なので", "12/7 14時でお願いします。仕事で行けない日が多いので",
    "not Dec 7, Dec 8 10am", "Dec 7 2pm, not Dec 8", "Dec 7 2pm if not taken", "Is Dec 7 2pm not available?",
    "I can't do Dec 8 Dec 7 2pm", "12/7 14時は無理なら大丈夫です", "12/7 14時、仕事が入ったら無理です",
    "無理なら12/8 10時で", "12/7 14時でお願いします（もし無理なら12/8 10時）",
    "12/7 14じ以外", "12/7 14じいがいでおねがいします", "12/7 14じしかむりですか", "12/8 10じじゃなくて12/7",
    # <other than> with another word first: the slot is the one not wanted
    "12/7 14時以外は大丈夫です、12/8は無理", "12/7 14時以外は大丈夫ですが朝は無理です", "12/7 14時以外はOK、朝は無理",
    "12/7 14時以外と12/8以外なら大丈夫です", "12/7 14時以外、12/8も無理です", "12/7 14時以外は無理、12/8も無理",
]


@pytest.mark.parametrize(("text", "expected"), PICKS)
def test_a_slot_picked_as_job_seekers_type_it_is_read(text, expected):
    assert not declines_slot(text)
    assert parse_slot_text(text, TUESDAY) == expected


@pytest.mark.parametrize("text", NO_PICKS)
def test_a_slot_turned_down_or_a_guess_which_is_meant_picks_none(text):
    assert declines_slot(text)
    assert parse_slot_text(text, TUESDAY) is None


def in_kana(text: str) -> str:
    """The text with its time marks typed in kana, as on a phone: 14時 as 14じ, 30分 as 30ふん, 半 as はん, 午後 as
    ごご, 午前 as ごぜん, 2時間 as 2じかん."""
    text = re.sub(r"(?<=\d)時間", "じかん", text)
    text = re.sub(r"(?<=\d)時(半?)", lambda m: "じ" + ("はん" if m[1] else ""), text)
    text = re.sub(r"(?<=\d)分", "ふん", text)
    return text.replace("午後", "ごご").replace("午前", "ごぜん")


KANJI_ROWS = sorted(text for text in {text for text, _ in PICKS} | set(NO_PICKS) | set(DECLINED)
                    if re.search(r"\d\s*[時分]|午", text))


@pytest.mark.parametrize("text", KANJI_ROWS)
def test_the_time_marks_typed_in_kana_read_as_the_kanji_ones(text):
    """Every row of the tables above with a time in kanji (14時, 14時半, 30分, 午後, 2時間) reads the same with the
    marks in kana: the same slot, or none, turned down or not."""
    kana = in_kana(text)
    assert kana != text
    assert parse_slot_text(kana, TUESDAY) == parse_slot_text(text, TUESDAY)
    assert declines_slot(kana) == declines_slot(text)


@pytest.mark.parametrize("text", ["どれも無理です", "だめ", "not sure", "無理", ""])
def test_a_refusal_naming_no_date_time_or_number_declines_no_slot(text):
    """What the bot answers there is the step's ordinary "could not read" (no date was turned down)."""
    assert not declines_slot(text)


@settings(max_examples=40, deadline=None)
@given(
    day=st.integers(min_value=0, max_value=60),
    hour=st.integers(min_value=9, max_value=17),
    minute=st.sampled_from([0, 30]),
    form=st.sampled_from(["{m}/{d} {h}:{mm}", "{m}月{d}日{h}時{mm}分", "{m}/{d} {h:02d}{mm}", "{m}/{d} {h}時{mm}分",
                          "{m}/{d} {h}じ{mm}ぷん", "{m}月{d}日{h}じ{mm}ふん"]),
    refusal=st.sampled_from(["以外", "はだめです", "は無理です", "じゃなくて", "は都合が悪いです", "はNG", " is not ok",
                             "は行けません", "は難しいです", "はむり"]),
)
def test_every_form_that_reads_a_slot_turned_down_reads_none(day, hour, minute, form, refusal):
    """Each way of typing a slot (four digits too) reads it; with a word turning it down after it, none."""
    on = TUESDAY.date() + timedelta(days=day)
    typed = form.format(m=on.month, d=on.day, h=hour, mm=f"{minute:02d}")
    assert parse_slot_text(typed, TUESDAY) == at(on.year, on.month, on.day, hour, minute)
    assert declines_slot(typed + refusal) and parse_slot_text(typed + refusal, TUESDAY) is None


# --- English forms, read in every language mode -----------------------------------------------------------

@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tomorrow 10am", at(2026, 12, 2, 10)),
        ("Tomorrow at 2pm", at(2026, 12, 2, 14)),
        ("tomorrow 10 am", at(2026, 12, 2, 10)),                # a space before am
        ("tomorow 2pm", at(2026, 12, 2, 14)),                   # common misspellings
        ("tommorow 2pm", at(2026, 12, 2, 14)),
        ("tmrw 2 p.m.", at(2026, 12, 2, 14)),
        ("2pm tomorrow", at(2026, 12, 2, 14)),                  # the time first
        ("14:00 tomorrow please", at(2026, 12, 2, 14)),
        ("today 3pm", at(2026, 12, 1, 15)),
        ("the day after tomorrow at 14:00", at(2026, 12, 3, 14)),
        ("day after tomorrow 10:30", at(2026, 12, 3, 10, 30)),
        ("Dec 8 2pm", at(2026, 12, 8, 14)),
        ("December 8 at 14:00", at(2026, 12, 8, 14)),
        ("Dec. 8, 2:30 p.m.", at(2026, 12, 8, 14, 30)),
        ("DEC 8 2PM", at(2026, 12, 8, 14)),
        ("dec8 2pm", at(2026, 12, 8, 14)),
        ("December the 8th at 2pm", at(2026, 12, 8, 14)),
        ("Dec 8th 14:00", at(2026, 12, 8, 14)),
        ("8 Dec 2:30 pm", at(2026, 12, 8, 14, 30)),
        ("8th December 14:00", at(2026, 12, 8, 14)),
        ("the 8th of December at 2pm", at(2026, 12, 8, 14)),
        ("2pm on Dec 8", at(2026, 12, 8, 14)),
        ("14:00, 8 December", at(2026, 12, 8, 14)),
        ("Dec 8, 2026 at 2pm", at(2026, 12, 8, 14)),            # a year
        ("8 Dec 2026 14:00", at(2026, 12, 8, 14)),
        ("2026/12/8 14:00", at(2026, 12, 8, 14)),
        ("Jan 4 10am", at(2027, 1, 4, 10)),                     # next year's, as 1/4 is
        ("12/8 2pm", at(2026, 12, 8, 14)),
        ("12/8 at 2pm", at(2026, 12, 8, 14)),
        ("12/8 @ 14:00", at(2026, 12, 8, 14)),
        ("12/8 around 2pm", at(2026, 12, 8, 14)),
        ("Dec 8 10.30", at(2026, 12, 8, 10, 30)),               # a dot for the colon
        ("Dec 8 10.30am", at(2026, 12, 8, 10, 30)),
        ("Dec 8 10 a.m.", at(2026, 12, 8, 10)),
        ("Dec 8 noon", at(2026, 12, 8, 12)),
        ("Dec 8 12 noon", at(2026, 12, 8, 12)),
        ("tomorrow at midday", at(2026, 12, 2, 12)),
        ("Dec 8 12pm", at(2026, 12, 8, 12)),
        ("Dec 8 12:30pm", at(2026, 12, 8, 12, 30)),
        ("Tue Dec 8 2pm", at(2026, 12, 8, 14)),                 # a weekday that matches the date
        ("Tuesday, December 8, 2pm", at(2026, 12, 8, 14)),
        ("Dec 8 (Tue) 2pm", at(2026, 12, 8, 14)),
        ("Dec 8 Tuesday 2pm", at(2026, 12, 8, 14)),
        ("12/8(Tue) 14:00", at(2026, 12, 8, 14)),
        ("Ｄｅｃ ８ ２ｐｍ", at(2026, 12, 8, 14)),                  # full-width
        ("ｔｏｍｏｒｒｏｗ　１０ａｍ", at(2026, 12, 2, 10)),
        ("Ｄｅｃ　８　１４：００", at(2026, 12, 8, 14)),
        ("Can I book Dec 8 at 2pm?", at(2026, 12, 8, 14)),
        ("明日 2pm", at(2026, 12, 2, 14)),                       # the two languages mixed
        ("tomorrow 14時", at(2026, 12, 2, 14)),
        ("12月8日 2:30pm", at(2026, 12, 8, 14, 30)),
    ],
)
def test_english_dates_and_times(text, expected):
    assert parse_slot_text(text, TUESDAY) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Mon 2pm", at(2026, 12, 7, 14)),
        ("monday 14:00", at(2026, 12, 7, 14)),
        ("Thu 10:30", at(2026, 12, 3, 10, 30)),
        ("thurs. at 10am", at(2026, 12, 3, 10)),
        ("2pm on Friday", at(2026, 12, 4, 14)),
        ("Tue 2pm", at(2026, 12, 1, 14)),                       # today's weekday, the time still ahead: today
        ("Tue 9am", at(2026, 12, 8, 9)),                        # today's 9:00 has passed: next week's
        ("Tue 10:00", at(2026, 12, 8, 10)),                     # now exactly: passed
        ("next Monday 14:00", at(2026, 12, 7, 14)),             # the next Monday is next week's
        ("next Tuesday 2pm", at(2026, 12, 8, 14)),
        ("next Sunday 2pm", at(2026, 12, 13, 14)),              # said on Sunday: next week's
        ("next week Friday 2pm", at(2026, 12, 11, 14)),
        ("next week's Fri 2pm", at(2026, 12, 11, 14)),
        ("next week on Friday at 2pm", at(2026, 12, 11, 14)),
        ("this week Friday 2pm", at(2026, 12, 4, 14)),
        ("this Friday 2pm", at(2026, 12, 4, 14)),
        ("月曜14時", at(2026, 12, 7, 14)),                       # the Japanese weekday words too
        ("月曜日の午後2時", at(2026, 12, 7, 14)),
        ("来週の金曜 14:00", at(2026, 12, 11, 14)),
        ("来週金曜日14時", at(2026, 12, 11, 14)),
        ("今週の金曜14時", at(2026, 12, 4, 14)),
        ("１２月７日月曜日 １４時", at(2026, 12, 7, 14)),
    ],
)
def test_weekdays(text, expected):
    """Said on Tuesday 12/1 at 10:00 (Sunday 12/6 for `next Sunday`). A weekday alone is the first such day whose time is still ahead (today included); `next` only where
    both of its meanings agree; `next week` / `this week` the Monday-to-Sunday weeks, as the slot pages show
    (where a Sunday-to-Saturday week names the same day)."""
    now = at(2026, 12, 6, 10) if text == "next Sunday 2pm" else TUESDAY
    assert parse_slot_text(text, now) == expected


@pytest.mark.parametrize(
    ("text", "now"),
    [
        ("next Friday 2pm", TUESDAY),                           # this Friday 12/4, or next week's 12/11?
        ("next Sunday 2pm", at(2026, 12, 5, 10)),               # said on a Saturday: tomorrow, or 12/13?
        ("next Sunday 2pm", TUESDAY),                           # Sunday 12/6 ends this week: or 12/13?
        ("next Wednesday 2pm", at(2026, 12, 7, 10)),            # said on a Monday
    ],
)
def test_next_weekday_is_not_read_where_it_is_ambiguous(text, now):
    assert parse_slot_text(text, now) is None


@pytest.mark.parametrize(
    ("text", "now"),
    [
        ("来週の月曜 10時", at(2026, 12, 6, 10)),      # said on Sunday 12/6: tomorrow, or Monday 12/14?
        ("来週火曜日10時", at(2026, 12, 6, 10)),
        ("next week Monday 10am", at(2026, 12, 6, 10)),
        ("今週金曜 10時", at(2026, 12, 6, 10)),         # Friday 12/4 just past, or 12/11?
        ("来週の日曜 10時", TUESDAY),                   # Sunday 12/6, or 12/13?
        ("this week Sunday 10am", TUESDAY),             # Sunday 11/29 past, or 12/6?
    ],
)
def test_next_week_is_not_read_where_sunday_first_weeks_name_another_day(text, now):
    """The slot pages run weeks Monday to Sunday, many Japanese calendars Sunday to Saturday: 来週の月曜 said on a
    Sunday is tomorrow in one and 8 days ahead in the other. Where they differ, no day is read (the bot asks)."""
    assert parse_slot_text(text, now) is None


@pytest.mark.parametrize(
    ("text", "now", "expected"),
    [
        ("来週の日曜 10時", at(2026, 12, 6, 9), at(2026, 12, 13, 10)),   # Sunday of Sunday: both weeks agree
        ("今週の土曜 10時", TUESDAY, at(2026, 12, 5, 10)),
        ("来週の月曜 10時", at(2026, 12, 5, 10), at(2026, 12, 7, 10)),   # said on Saturday: both say 12/7
    ],
)
def test_next_week_is_read_where_both_weeks_agree(text, now, expected):
    assert parse_slot_text(text, now) == expected


def test_next_weekday_agrees_with_next_week_wherever_they_coincide():
    for offset in range(7):                                     # said on each day of a week
        now = at(2026, 11, 30, 10) + timedelta(days=offset)
        for weekday, name in enumerate(calendar.day_name):
            read = parse_slot_text(f"next {name} 2pm", now)
            coming = now.date() + timedelta(days=(weekday - now.weekday() - 1) % 7 + 1)
            next_weeks = now.date() + timedelta(days=7 - now.weekday() + weekday)
            assert read == (at(coming.year, coming.month, coming.day, 14) if coming == next_weeks else None)


@pytest.mark.parametrize(
    "text",
    [
        "Dec 8", "tomorrow", "Monday", "next Monday", "8 December",      # a date without a time
        "2pm", "at 14:00", "noon", "10.30",                               # a time without a date
        "Dec 8 at 2", "tomorrow at 2",                                    # no am/pm, no minutes: not a time
        "Dec 10am",                                                       # the 10 is the hour, not the day
        "Dec 32 2pm", "Feb 30 10am", "Feb 29, 2027 10am",                 # no such day
        "Dec 8 13pm", "Dec 8 0am", "Dec 8 14:00 pm", "Dec 8 25:00", "Dec 8 10:60",
        "Mon Dec 8 2pm", "Dec 8 (Mon) 2pm", "12/8(Mon) 14:00", "Dec 8 Monday 2pm",  # the weekday disagrees
        "I can do Dec 15 or Tuesday 2pm",                                 # a weekday beside another date
        "12.8 14:00",                                                     # a date is month/day with a slash
        "may I book?", "next", "sunday", "book", "3", "",                 # no date and time at all
        "wednesday", "sat",
    ],
)
def test_english_texts_that_are_not_a_slot(text):
    assert parse_slot_text(text, TUESDAY) is None


@pytest.mark.parametrize(("japanese", "english"), [("12月8日", "Dec 8"), ("明日", "tomorrow"),
                                                    ("午後2時", "2pm"), ("12/8 14", "Dec 8 14")])
def test_a_date_or_a_time_alone_is_refused_in_both_languages(japanese, english):
    assert parse_slot_text(japanese, TUESDAY) is None and parse_slot_text(english, TUESDAY) is None


@given(
    now=st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2028, 12, 31), timezones=st.just(TOKYO)),
    ahead=st.integers(min_value=0, max_value=300),
    hour=st.integers(min_value=1, max_value=23),
    minute=st.sampled_from([0, 15, 30, 45]),
    style=st.sampled_from(["{mon} {d} {t}", "{month} {d} at {t}", "{d} {mon} {t}", "{t} on {month} {d}",
                           "{d}th of {month}, {t}", "{wd} {mon} {d} {t}"]),
)
def test_english_dates_name_the_same_moment_as_month_day(now, ahead, hour, minute, style):
    """Every English way of writing a date reads as the month/day form does, in 24-hour or am/pm time."""
    day = now.date() + timedelta(days=ahead)
    twelve = f"{hour % 12 or 12}:{minute:02d}{'pm' if hour >= 12 else 'am'}"
    # a 24-hour time with its leading zero: `3:15` alone is the afternoon's, as people say it
    clock = f"{hour:02d}:{minute:02d}" if hour > 12 or minute % 30 else twelve
    text = style.format(mon=calendar.month_abbr[day.month], month=calendar.month_name[day.month], d=day.day,
                        t=clock, wd=calendar.day_abbr[day.weekday()])
    assert parse_slot_text(text, now) == parse_slot_text(f"{day.month}/{day.day} {hour:02d}:{minute:02d}", now)
    assert parse_slot_text(text, now) is not None


# --- a year in the Japanese era ---------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("令和8年12月7日 14時", at(2026, 12, 7, 14)),
        ("令和9年1月4日 14時", at(2027, 1, 4, 14)),
        ("令和８年１２月７日　１４時", at(2026, 12, 7, 14)),           # full-width digits and space
        ("令和 8 年 12 月 7 日 14:00", at(2026, 12, 7, 14)),
        ("令和八年十二月七日 十四時", at(2026, 12, 7, 14)),            # kanji numerals
        ("㋿8年12月7日 14時", at(2026, 12, 7, 14)),                    # the era in one character
        ("R8/12/7 14:00", at(2026, 12, 7, 14)),
        ("r9年1月4日 10時", at(2027, 1, 4, 10)),
        ("Ｒ９／１／４　１０：００", at(2027, 1, 4, 10)),
        ("令和8年1月4日 14時", at(2026, 1, 4, 14)),                    # the era's year, not next January's: past
        ("令和元年5月7日 10時", at(2019, 5, 7, 10)),                   # the first year of the era
    ],
)
def test_parse_slot_text_japanese_era(text, expected):
    """令和N年 is the year 2018 + N (元年 its first), so `令和8年1月4日` typed in December 2026 is 4 January 2026,
    a day past (the slot check then says so), never next year's 1/4."""
    assert parse_slot_text(text, at(2026, 12, 7, 10)) == expected


@pytest.mark.parametrize("text", ["令和8年2月30日 10時", "平成30年12月7日 14時", "100年1月4日 10時", "令和100年1月4日 10時", "CR8/12/7 14:00"])
def test_parse_slot_text_japanese_era_refuses(text):
    """A day that does not exist, another era (read as no year would misplace it), or no era at all."""
    assert parse_slot_text(text, at(2026, 12, 7, 10)) is None


@pytest.mark.parametrize("typed,hour", [("14時", 14), ("１５時でお願いします", 15), ("15:00", 15), ("午後3時", 15), ("3時", 15),
                                        ("2pm", 14), ("14時は無理です", None), ("14時か15時", None), ("12/7", None),
                                        ("090-1234-1500", None), ("14時から2時間", None), ("予約", None)])
def test_a_time_alone_is_kept_for_the_dialog_to_match_with_the_list_shown(typed, hour):
    """No slot on its own (14:00 is on many days), but the one time of a text naming no date and no other number."""
    reading = read_slot_text(typed, at(2026, 12, 1, 10))
    assert reading.start is None
    assert reading.time == (None if hour is None else datetime(2026, 1, 1, hour).time())
