"""A slot typed in the chat: one date and one time read from free text, in Japanese or English.

Pure: the text and the clock in, a timezone-aware Asia/Tokyo datetime (or None) out. Whether that moment is a
slot, and whether it can still be booked, is for `bot.services.slots` to say.

Read after NFKC (so full-width forms too), lower-casing and writing a month, a day after its month, an hour and
minutes after their hour in digits where they are in kanji numerals (`_KANJI_DATE`), anywhere in the text:
- a date: `12/7` (always month/day, as every slot label is written), `12<month>7<day>`, a day of the month
  alone (`7<day>`: its next occurrence from today), `Dec 7`, `December 7th`, `7 Dec`, `the 7th of December`
  (a year may follow, `Dec 7, 2026`, or lead, `2026/12/7`, also in the Reiwa era: `<Reiwa>8<year>12<month>7<day>`,
  `R8/12/7`, see `_REIWA`; a date after a year read no other way is none); today / tomorrow / the day after tomorrow in
  Japanese or English, `3<day><later>` (three days from today; `3<day>` before a word of a span — before, for,
  within — is no date); or a weekday (`Mon`, `Monday`, `<W><youbi>`), see below;
- a time: `14:00`, `14.00`, `14<hour>`, `14<hour>30<minute>`, `14<hour><half>`, `2pm`, `2 p.m.`, `2:30pm`,
  `10 am`, `noon`, the Japanese morning or afternoon word before the hour (without it, or am/pm, an hour of 1 to 7
  is the afternoon's, as people say it in office hours: `3<hour>` is 15:00; `03:00` is not), four digits as a
  phone's keypad types them (`1400`, `0930`; not `20xx`, which beside a date reads as a year as much as a time)
  (the marks are `_*_MARK` below; the tests spell every form out). The marks may be typed in kana, as on a
  phone, the hour's number not (`_KANA_TIME`); `2<hour><interval>` (two hours) is a span, no time; four digits
  with the hour mark (`1234<hour>`) are no time either, nor is a number right after a word that says it is one
  (`<number>14<hour>`, `No. 0123`, `#14<hour>`).
The date and the time stand side by side, in either order, with only spaces, commas, `at`, `on`, `around`,
`from`, `@` or `<no>` between them. The first such pair decides. A date without a time, or a time without a
date, is no slot (None), as the bot then asks for both (a time alone is kept in `SlotReading.time`: the
dialog matches it with the list it showed).

A weekday beside a date (`Mon Dec 7`, `12/7(<W>)`, `Dec 7 Monday`) must be that date's weekday. A weekday alone
means the first such day whose time has not passed yet: today, if it is that weekday and the time is still
ahead (the slot check then says whether its booking is still open), else a day of the coming week.
`next week Friday` / `<next-week> Friday` is the Friday of the next Monday-to-Sunday week, `this week Friday` /
`<this-week> Friday` that of this week; both are read only where a Sunday-to-Saturday week names the same day
(on a Sunday only Sunday itself, on another day any day but Sunday). `next Friday` is read only where its two
common meanings agree (the first Friday after today is also next week's); otherwise it is ambiguous and not read.
A weekday alone is not read either when the text also names a date.

A text with a word that turns a date or time down (`12/7 <other than>`, `12/7 14<hour> <is impossible>`, `not Dec 7`;
`_DECLINING`) names no slot, whichever part the word denies (see `declines_slot`), unless the word cannot deny the
slot chosen: it is part of a phrase that asks for it (`14<hour> <could you not?>`, `<no mistake>`); it says the slot
is the only one that suits (`12/7 14<hour> <only> <can-not>`); or it is about another date in an earlier clause, or
corrects a mistake (`12/7<topic> <impossible> <so> 12/8 10<hour>`, `<made a mistake>, 12/8 10<hour>`), and the slot
then is the one after it. Which part a word denies is otherwise not guessed.

A weekday, a day of the month alone or a day counted from today right after a word that moves it (the week
after next, next month, the second ..., 2 weeks later, from tomorrow, next next, last) is not read at all
(`_SHIFTED`): read as it stands it would be another day than the one meant. `1<month><no>7<day>` is January 7th.
"""
from __future__ import annotations

import bisect
import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from bot.clock import TOKYO
from bot.services.slots import WEEKDAY_KANJI

# Japanese marks and words, escaped: Python holds no Japanese text besides WEEKDAY_KANJI.
_YEAR_MARK = "\u5e74"
_MONTH_MARK = "\u6708"
_DAY_MARK = "\u65e5"
_HOUR_MARK = "\u6642"
_MINUTE_MARK = "\u5206"
_HALF_MARK = "\u534a"
_WEEKDAY_MARK = "\u66dc"                    # <W><youbi>(<day>): Monday is WEEKDAY_KANJI[0] + this
_NO = "\u306e"
_COMMA = "\u3001"
_MORNING = "\u5348\u524d"
_AFTERNOON = "\u5348\u5f8c"
_THIS_WEEK = "\u4eca\u9031"
_NEXT_WEEK = "\u6765\u9031"
_INTERVAL = "\u9593"                        # N<hour><interval>: N hours, a span, no time of day
_LATER = "\u5f8c"                           # N<day><later>: N days from today
_NOT_A_DAY = "\u524d\u9593\u4ee5"               # N<day> before, for, within...: a span, no day of the month
# Right before a weekday, a day of the month alone or a day counted from today, a word that moves it: the week
# after next (<again>-<next-week>), last or next month, 2 weeks later, the 2nd (Monday), every, first, the one
# before, from/since (tomorrow), ... The parser does not count these, so such a day is not read at all.
_SHIFTING_JA = ("\u518d", _MONTH_MARK, "\u9031", _LATER,   # again, month, week, later
                "\u524d", "\u521d", "\u6bce",                 # before, first, every
                "\u304b\u3089", "\u3088\u308a")                # from, since
_ORDINAL_MARK = "\u7b2c"                        # <ordinal>2<Monday>: the second Monday of a month

_DAYS_FROM_TODAY = {
    "\u4eca\u65e5": 0, "\u304d\u3087\u3046": 0, "today": 0,                                 # today
    "\u660e\u65e5": 1, "\u3042\u3057\u305f": 1, "\u3042\u3059": 1,                            # tomorrow
    "tomorrow": 1, "tomorow": 1, "tommorow": 1, "tommorrow": 1, "tmrw": 1, "tmr": 1,
    "\u660e\u5f8c\u65e5": 2, "\u3042\u3055\u3063\u3066": 2,                                  # the day after
    "day after tomorrow": 2, "the day after tomorrow": 2,
}
_MONTHS = {
    "jan": 1, "january": 1, "feb": 2, "february": 2, "mar": 3, "march": 3, "apr": 4, "april": 4, "may": 5,
    "jun": 6, "june": 6, "jul": 7, "july": 7, "aug": 8, "august": 8, "sep": 9, "sept": 9, "september": 9,
    "oct": 10, "october": 10, "nov": 11, "november": 11, "dec": 12, "december": 12,
}
_WEEKDAYS = {
    "mon": 0, "monday": 0, "tue": 1, "tues": 1, "tuesday": 1, "wed": 2, "weds": 2, "wednesday": 2,
    "thu": 3, "thur": 3, "thurs": 3, "thursday": 3, "fri": 4, "friday": 4, "sat": 5, "saturday": 5,
    "sun": 6, "sunday": 6,
}


def _words(words) -> str:
    """An alternation of whole English words (or Japanese words), longest first; spaces match any spacing."""
    ordered = sorted(words, key=len, reverse=True)
    return "(?<![a-z])(?:" + "|".join(re.escape(w).replace(r"\ ", r"\s+") for w in ordered) + ")(?![a-z])"


_ORDINAL = r"(?:st|nd|rd|th)?"
_YEAR = r"20\d\d"
_WEEKDAY = rf"(?:{_words(_WEEKDAYS)}\.?|[{''.join(WEEKDAY_KANJI)}]{_WEEKDAY_MARK}{_DAY_MARK}?)"
_MONTH = rf"{_words(_MONTHS)}\.?"
# A day number that is not the hour of a time (`Dec 10am` names no day).
_NOT_AN_HOUR = r"(?!\d|\s*:|\.\d|\s*[ap]\.?m(?![a-z]))"

_EXPLICIT_DATE = (
    # 12/7, 12<month>7<day>, 2026/12/7, 2026<year>12<month>7<day> (a 7<day> followed by <youbi> is Sunday's mark);
    # after a year that is none of these (<Heisei>30<year>, 2118<year>), no date: read without it, it is another
    rf"(?:(?P<num_year>{_YEAR})\s*(?:/|{_YEAR_MARK})\s*|(?<![\d/])(?<!\d{_YEAR_MARK})(?<!\d\s{_YEAR_MARK})"
    rf"(?<!\d{_YEAR_MARK}\s)(?<!\d\s{_YEAR_MARK}\s))"
    rf"(?P<num_month>\d{{1,2}})\s*(?:/|{_MONTH_MARK}(?:\s*{_NO})?)\s*(?P<num_day>\d{{1,2}})(?!\d)"
    rf"(?:\s*{_DAY_MARK}(?!{_WEEKDAY_MARK}))?"
    # Dec 7, December the 7th, Dec. 7, 2026
    rf"|(?P<md_month>{_MONTH})\s*(?:the\s+)?(?P<md_day>\d{{1,2}}){_ORDINAL}{_NOT_AN_HOUR}"
    rf"(?:\s*,?\s*(?P<md_year>{_YEAR})(?![\d:.]))?"
    # 7 Dec, 7th of December, the 7th December 2026
    rf"|(?:the\s+)?(?<![\d/:.])(?P<dm_day>\d{{1,2}}){_ORDINAL}\s*(?:of\s+)?(?P<dm_month>{_MONTH})"
    rf"(?:\s*,?\s*(?P<dm_year>{_YEAR})(?![\d:.]))?"
    # 3<day><later>: three days from today
    rf"|(?<![\d/{_MONTH_MARK}])(?P<days_later>\d{{1,2}})\s*{_DAY_MARK}\s*{_LATER}"
    # 7<day>: a day of the month alone (not `3<day>` of a span: before, for, within)
    rf"|(?<![\d/{_MONTH_MARK}])(?P<day_alone>\d{{1,2}})\s*{_DAY_MARK}(?![{_WEEKDAY_MARK}{_NOT_A_DAY}])"
    rf"|(?P<relative>{_words(_DAYS_FROM_TODAY)})"
)
_WEEK_WORDS = {"next week": "next_week", "next week's": "next_week", "next weeks": "next_week",
               "this week": "this_week", "this week's": "this_week", "this weeks": "this_week",
               "next": "next", "this": "bare"}
_DATE = re.compile(
    rf"(?:(?P<lead_wd>{_WEEKDAY})\s*,?\s*)?(?:{_EXPLICIT_DATE})"
    rf"(?:\s*\(\s*(?P<bracket>[^)]*)\)|\s*,?\s*(?P<trail_wd>{_WEEKDAY}))?"
    rf"|(?:(?P<week>{_words(_WEEK_WORDS)}|{_NEXT_WEEK}|{_THIS_WEEK})\s*(?:on\s+|{_NO}\s*)?)?(?P<weekday>{_WEEKDAY})"
)
# Before four digits, a mark of some other number (a dash of a phone number or postcode, money), and after them
# a unit (<yen>, <people>, <year>, <hour>, <minutes>, ..., yen, people, th) or a dash with more digits that are no
# time (1234-5678; 1400-1500 is a span of time): no time. (1234<hour> is no hour either: 12:34 is not written so.)
_DASHES = "\u2010-\u2015\u2212\u30fc\u301c~"
_NOT_A_NUMBERS_PIECE = rf"(?<![-{_DASHES}\u00a5$\u3012])"
# Right before any time (`0123`, `14<hour>`, `2pm`), a word that says a number follows (<number>, <number><topic>,
# <number>:, `No.`, `#`): that number is no time (`<job seeker number>14<hour> 12/7`, `No. 0123 12/7`).
_NUMBER_WORD = "\u756a\u53f7"                                                                  # number
_NUMBER_LEAD = re.compile(rf"(?:(?:{_NUMBER_WORD}|#|(?<![a-z])no\.)\s?(?:[:\u306f]\s?)?|(?<![a-z])no)$")
_UNIT_WORDS = ("yen", "jpy", "dollar", "dollars", "usd", "people", "persons", "th", "st", "nd", "rd", "km", "kg", "cm",
               "mm", "m", "g")
_UNIT = (r"(?:[\u5186\u4eba\u540d\u4ef6\u756a\u53f7\u500b\u56de\u6b73\u624d\u5e74\u5206\u79d2\u70b9\u679a\u672c\u53f0"
         r"\u968e\u5ba4\u4e07\u5343\u767e\u500d\u4f4d%]|" + _HOUR_MARK +    # ..., <hour>, <hour><interval>
         rf"|{_words(_UNIT_WORDS)})")
_TIME = re.compile(
    r"(?<![\d:.])(?:"
    rf"(?P<half_day>{_MORNING}|{_AFTERNOON})?\s*(?P<hour>\d{{1,2}})"
    rf"(?:(?:\s*:\s*|\.)(?P<minute>\d{{2}})(?!\d)"
    rf"|\s*{_HOUR_MARK}(?!{_INTERVAL})(?:\s*(?P<minute_mark>\d{{1,2}})\s*{_MINUTE_MARK}|\s*(?P<half>{_HALF_MARK}))?"
    r"|(?=\s*[ap]\.?m(?![a-z])))"
    r"(?:\s*(?P<meridiem>[ap])\.?m(?![a-z])\.?)?"
    # 1400, 0930 as typed on a phone (not 20xx: beside a date, that reads as a year as much as a time; not a
    # piece of a longer number, an amount or a count: 090-1234-5678, 1234-5678, 1200<yen>, 1234<hour>)
    rf"|{_NOT_A_NUMBERS_PIECE}(?!20\d\d)(?P<hhmm_hour>\d{{2}})(?P<hhmm_minute>\d{{2}})"
    rf"(?![\d/]|\s*(?:[:.,]\d|[ap]\.?m(?![a-z])|{_UNIT}|[-{_DASHES}]\s*(?!(?:[01]\d|2[0-3])[0-5]\d(?!\d))\d))"
    r"|(?:12\s*)?(?P<noon>noon|midday)(?![a-z])"
    r")(?!\d)"
)
# The end of the text before a date that moves the day it names (see _SHIFTING_JA), spaces, <no> and a comma
# aside.
_SHIFTED = re.compile(
    rf"(?:[{''.join(_SHIFTING_JA[:7])}]|{'|'.join(_SHIFTING_JA[7:])}|{_ORDINAL_MARK}\s*\S{{1,2}}"
    r"|(?<![a-z])(?:next|last|after|before|(?:weeks?|days?)\s+from|first|second|third|fourth|fifth)"
    r"|\d(?:st|nd|rd|th))"
    rf"\s*(?:[{_NO}{_COMMA}]\s*)?$")
# Words that turn a date or time down (12/7 <other than>, 12/7 <is no good>, not 12/7 but ...): anywhere in the
# text, they make it no choice. Reading which part they deny is guesswork (`12/7 14<hour> and 12/8 <other than>`,
# `only 12/7 14<hour> <cannot otherwise>`), and holding a slot the user said they do not want is worse than
# asking again.
# Some words in kanji or kana, as typed on a phone: other than (in kana not <igai>-<to>, which is <surprisingly>),
# convenience, plan, mistake.
_OTHER_THAN = "(?:\u4ee5\u5916|\u3044\u304c\u3044(?!\u3068))"
_CONVENIENCE = "(?:\u90fd\u5408|\u3064\u3054\u3046)"
_PLAN = "(?:\u4e88\u5b9a|\u3088\u3066\u3044)"
_MISTAKE = "(?:\u9593\u9055|\u307e\u3061\u304c)"
_DECLINING_JA = (
    _OTHER_THAN,
    "\u9664(?:\u3044|\u304f|\u304d)|\u306e\u305e(?:\u3044|\u304f)",                             # excluding
    "\u3060\u3081|\u30c0\u30e1|\u99c4\u76ee",                                                   # no good
    "\u7121\u7406|\u3080\u308a|\u30e0\u30ea",                                                   # impossible
    "(?:\u3058\u3083|\u3067\u306f|\u3067)"                                                      # not (it)
    "(?:\u306a[\u3044\u304f\u3051\u304d]|\u3042\u308a\u307e\u305b)",
    f"\u4e0d\u53ef|[\u4e0d\u3075]{_CONVENIENCE}|{_CONVENIENCE}\u304c?"                          # inconvenient
    "(?:\u60aa|\u308f\u308b|\u3064\u304b\u306a|\u3064\u304d\u307e\u305b|\u5408\u308f|\u3042\u308f)",
    "(?:\u884c|\u3044)\u3051(?:\u306a|\u307e\u305b|\u305a)"                                     # cannot go, cannot do
    "|(?:\u3067\u304d|\u51fa\u6765)(?:\u306a|\u307e\u305b|\u304b\u306d|\u305a)",
    "\u96e3\u3057|\u3080\u305a\u304b\u3057|\u53b3\u3057|\u304d\u3073\u3057",                    # difficult
    "\u907f\u3051|\u3055\u3051\u3066|\u3055\u3051\u305f\u3044"                                  # avoid, dislike, pass
    "|\u5acc|\u9060\u616e|\u3048\u3093\u308a\u3087|\u3084\u3081",
    f"{_PLAN}\u304c?(?:\u3042(?!\u3044\u3066)|\u5165|\u306f\u3044)"   # busy then (<plan> <is free> is not), not free
    "|(?:\u7a7a|\u3042)\u3044\u3066(?:\u306a|\u307e\u305b|\u3044\u306a|\u3044\u307e\u305b)",
    "\u9055|\u3061\u304c[\u3046\u3044]",                                                        # wrong
    "\u30ad\u30e3\u30f3\u30bb\u30eb|\u53d6\u308a?\u6d88|\u3068\u308a\u3051|\u4e2d\u6b62",        # cancel, stop
    "[\u00d7\u2715\u2716\u274c]",                                                               # crosses
)
_DECLINING_EN = ("not", "cannot", "cant", "dont", "wont", "isnt", "doesnt", "except", "excluding", "other than",
                 "instead of", "no good", "unavailable", "impossible", "busy", "avoid", "cancel", "cancelled",
                 "canceled", "ng")
_DECLINING = re.compile("|".join(_DECLINING_JA) + rf"|{_words(_DECLINING_EN)}|n't(?![a-z])")
# Phrases that hold a declining word yet ask for the slot: no mistake (<mistake> <none>), to put an appointment in
# (<plan> <put in>), a waiting list (<cancel> <wait>), feel free to (<reserve> <without>), could you / could I book
# (<please> <cannot> <?>), is it not free (<free> <not> <?>; not after <only>): a declining word inside one of
# them declines nothing.
_NOT_DECLINING = re.compile(
    f"{_MISTAKE}\u3044(?:\u306a|\u3042\u308a|\u3054\u3056\u3044)"
    f"|{_PLAN}(?:\u3092|\u304c)?(?:\u5165|\u306f\u3044)\u308c"
    "|\u30ad\u30e3\u30f3\u30bb\u30eb(?:\u5f85|\u307e)\u3061"
    "|(?:\u9060\u616e|\u3048\u3093\u308a\u3087)(?:\u306a|\u7121)\u304f"
    "|(?:(?:\u9858\u3044|\u4e88\u7d04|\u7533\u3057?\u8fbc\u307f?)(?:\u3067\u304d|\u51fa\u6765)"
    "|(?<!\u3057\u304b)(?:\u7a7a|\u3042)\u3044\u3066\u3044?)"
    "(?:\u307e\u305b\u3093|\u306a\u3044(?:\u3093\u3067\u3059|\u3067\u3057\u3087\u3046|\u3067\u3059)?)\u304b")
# Right after the slot, <only> or <other than> (<topic>): with a declining word a few characters after it in the
# same clause (`12/7 14<hour> <only> <can-not>`, `12/7 14<hour> <other than> <is impossible>`) the slot is the only
# one that suits, so it is chosen; asked as a question (`... <can-not> <?>`), or with another word first (`<other
# than> <is fine>, 12/8 <impossible>`), it is not.
_ONLY = re.compile(f"\\s*(?:[\u306f\u304c]\\s*)?(?:\u3057\u304b|{_OTHER_THAN}\\s*[\u306f\u3067]*)")
_ONLY_GAP = 6                                   # <only> ... <can-not>: characters at most between them
_ONLY_WORDS = re.compile(f"\u3057\u304b|{_OTHER_THAN}")
_SENTENCE_END = re.compile("[\u3002!?\n]")
_QUESTION = re.compile("\u304b[\u306d\u306a]?[^\\w]*$")        # <?>, <?-ne>, <?-na>, then emoji or marks
# Right after a declining word, <if> (<if>, <-tara>, <-reba>, <in case>): `12/7 14<hour> <please>, <if impossible>
# <another day is fine>` asks for the slot and says what to do should it not be free.
_IF = re.compile("[^\u3001,\u3002!?\\s]{0,6}?(?:\u306a\u3089|\u305f\u3089|\u308c\u3070|\u5834\u5408)")
# Between a declining word and a slot named after it, the end of a clause (`12/7<topic> <impossible> <so> 12/8
# 10<hour>`, `12/7 14<hour> <not-and> 12/8 10<hour>`); in English a word or mark, not a comma (`not Dec 7, Dec 8
# 10am` may be a list).
_CLAUSE_END_JA = re.compile("[\u3001,\u3002!?;]|\u306e\u3067|\u304b\u3089|\u3051\u308c?\u3069|\u3066")
_CLAUSE_END_EN = re.compile(r"[!?;]|(?<![a-z])(?:so|but|instead|then)(?![a-z])")
# The first character of a word of mistake (<mistake>, <mis>-<take>): `<made a mistake>, 12/8 10<hour>` corrects.
_MISTAKE_LEAD = "\u9593\u307e"
# A time's marks as typed in kana on a phone (14<ji>, 14<ji><han>, 14<ji>30<pun>, <gogo>2<ji>, hiragana or
# katakana), and the yen of a price (1200<en>): written in kanji before reading, so they read exactly as the kanji
# marks do. <ji> only right after a digit and not where it begins another word: <ji-ya> (of <not>), <ji-tsu> (<in
# fact>), <ji-bun> (<oneself>), <ji-gen> (<dimension>), <ji-men(setsu)> (<first-round interview>); <ji-kan> after a
# digit is <hours>, a span that is no time of day, as 2<hour><interval> is. An hour in kana numerals (<ni-ji>,
# <juu-yo-ji>, <gogo-ni-ji>) is not read: a phone's input converts it as it converts the digits, and most hours of
# the day are words as well (<ni-ji> rainbow, <ku-ji> lottery, <go-ji> typo, <ichi-ji> for a while, <juu-ji> cross,
# <san-ji> disaster); the bot asks again rather than hold a slot for a rainbow.
_KANA_TIME = (
    (re.compile("(?<=\\d)(?:\u3058\u304b\u3093|\u30b8\u30ab\u30f3)"), _HOUR_MARK + _INTERVAL),     # hours
    (re.compile("(?<=\\d)[\u3058\u30b8](?![\u3083\u3085\u3087\u3047\u30e3\u30e5\u30e7\u30a7]"
                "|[\u3064\u30c4]|\u3076\u3093|\u30d6\u30f3|\u3052\u3093|\u30b2\u30f3|\u3081\u3093|\u30e1\u30f3)"),
     _HOUR_MARK),
    (re.compile(f"(?<={_HOUR_MARK})(\\s?)(?:\u306f\u3093|\u30cf\u30f3)"), f"\\1{_HALF_MARK}"),      # half
    (re.compile("(?<=\\d)(\\s?)(?:[\u3075\u3077]\u3093|[\u30d5\u30d7]\u30f3)"), f"\\1{_MINUTE_MARK}"),  # minutes
    (re.compile("(?<=\\d)(\\s?)(?:\u3048\u3093|\u30a8\u30f3)"), "\\1\u5186"),                       # yen
    (re.compile("\u3054\u3054|\u30b4\u30b4"), _AFTERNOON),
    (re.compile("\u3054\u305c\u3093|\u30b4\u30bc\u30f3"), _MORNING),
)
# A month, a day after its month, an hour, or minutes after their hour written in kanji numerals (<juu-ni><month>
# <nana><day> <juu-yon><hour> <san-juu><minute>) are the same in digits; a day alone is not (<ichi-nichi> is
# also "one day", <ichi-nichi-juu> "all day"), nor minutes without their hour (<juu-bun> is "enough").
_KANJI_DIGITS = "\u4e00\u4e8c\u4e09\u56db\u4e94\u516d\u4e03\u516b\u4e5d"
_KANJI_TEN = "\u5341"
_KANJI_NUMERAL = f"[{_KANJI_DIGITS}{_KANJI_TEN}]{{1,3}}"
_NOT_AN_HOUR_JA = "[\u7684\u671f\u505c\u4fdd]"     # <ichi-ji>-teki, -ki, -teishi, -horyuu: for a while, no hour
_KANJI_DATE = (
    (re.compile(f"(?<![{_KANJI_DIGITS}{_KANJI_TEN}])({_KANJI_NUMERAL})(?={_MONTH_MARK})"), 12),
    (re.compile(f"(?<=\\d{_MONTH_MARK})(\\s?{_NO}?\\s?)({_KANJI_NUMERAL})(?={_DAY_MARK})"), 31),
    (re.compile(f"(?<![{_KANJI_DIGITS}{_KANJI_TEN}])({_KANJI_NUMERAL})(?={_HOUR_MARK}(?!{_NOT_AN_HOUR_JA}))"), 24),
    (re.compile(f"(?<={_HOUR_MARK})(\\s?)({_KANJI_NUMERAL})(?={_MINUTE_MARK})"), 59),
)
# A year of the Reiwa era (<Reiwa>8<year>, R8/..., <Reiwa><first><year>, the era's one character after NFKC) is
# the year 2018 + N, written so before reading; its number may be in kanji numerals (<Reiwa><eight><year>). Other
# eras are not read (`_EXPLICIT_DATE` then reads no date after their year).
_REIWA = re.compile(f"(?:\u4ee4\u548c|(?<![a-z])r)\\s?(\\d{{1,2}}|\u5143|{_KANJI_NUMERAL})\\s?({_YEAR_MARK}|/)")
_REIWA_FIRST = "\u5143"
_REIWA_BEFORE_FIRST = 2018
_REIWA_LAST = 81                                # 2099: a year `_YEAR` reads
_HALF_DAY = re.compile(rf"{_MORNING}|{_AFTERNOON}|(?<![a-z])(?:mornings?|afternoons?|evenings?)(?![a-z])")
# What may stand between a date and its time (at most _MAX_BETWEEN characters, after spaces are folded).
_BETWEEN = re.compile(rf"(?:\s|,|@|{_NO}|{_COMMA}|{_words(('at', 'on', 'around', 'about', 'from'))})*")
_MAX_BETWEEN = 24
# An hour up to this one, said without the morning or afternoon word (`3<hour>`, `2:30`), is the afternoon's.
_LAST_AFTERNOON_HOUR = 7
# A typed month/day means its next occurrence, counting dates up to this far back as this one (so a date
# that just passed is answered "past", not silently moved to next year).
_RECENT_PAST = timedelta(days=31)


@dataclass(frozen=True)
class SlotReading:
    """What a typed text says of a slot: the start it chooses, or that it turns a date, a time or a number down
    (`declined`: it then chooses nothing, and the bot asks again which slot is wanted), or neither; `day` is the
    one date it names with its month but without a time (no slot: the bot asks for both, naming a closed day)."""
    start: datetime | None = None
    declined: bool = False
    day: date | None = None   # a month and day named alone (`12/30`, `12<month>30<day>`): no slot, but a day
    # A time named alone (`14<hour>`, `14:00`, `2pm`): no slot on its own, but the bot may match it with the one
    # slot of the list it showed that starts then (Sakata's week has one day). None where the text names a date,
    # a second time or any other number (a phone number's `1400` is no time), or turns something down.
    time: time | None = None


def read_slot_text(text: str, now: datetime) -> SlotReading:
    """Read the text once for both: the slot start a user typed (see the module's docstring), None when there is
    none or it is no real, unambiguous date and time; and whether the text declines (see `declines_slot`).
    `now` is the bot's clock (timezone-aware); the start is in Asia/Tokyo.

    A month/day without a year is that of the first occurrence on or after about a month ago, so the start
    lies within roughly [today - 1 month, today + 11 months].
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("a timezone-aware datetime is required")
    value, dates, choice, declined = _read(text)
    if choice is None:
        if declined:
            return SlotReading(declined=True)
        return SlotReading(day=_day_alone(dates, now.astimezone(TOKYO)), time=_time_alone(value, dates))
    return SlotReading(start=_start(value, dates, choice, now.astimezone(TOKYO)))


def _day_alone(dates: list[re.Match], now: datetime) -> date | None:
    """The day of the text's one date, when it names its month (`12/30`, `Dec 30`) and no time stands beside it:
    the bot can then say what it knows of that day (closed for the New Year) as it asks for a date and time."""
    if len(dates) != 1 or not any(dates[0][f"{kind}_day"] for kind in ("num", "md", "dm")):
        return None
    return _date(dates[0], time(), now)


def _time_alone(value: str, dates: list[re.Match]) -> time | None:
    """The one time the normalised text names, where it names no date and no other number (see SlotReading)."""
    if dates:
        return None
    times = [t for t in _TIME.finditer(value) if not _NUMBER_LEAD.search(value, 0, t.start())]
    if len(times) != 1 or re.search(r"\d", value[:times[0].start()] + value[times[0].end():]):
        return None
    return _time(times[0])


def parse_slot_text(text: str, now: datetime) -> datetime | None:
    """The slot start a user typed, or None (see `read_slot_text`)."""
    return read_slot_text(text, now).start


def declines_slot(text: str) -> bool:
    """Does the text name a date, a time or a number with a word that turns it down (`12/7 <other than>`,
    `12/7 14<hour> <is impossible>`, `not Dec 7`, `2<ban> <no good>`), and not only another date than the one it
    chooses (see `_choice`)? Such a text chooses nothing (`read_slot_text` reads no slot in it); the bot asks
    again which slot is wanted."""
    return _read(text)[3]


Pair = tuple[re.Match, re.Match]


def _read(text: str) -> tuple[str, list[re.Match], Pair | None, bool]:
    """The normalised text, its dates, the date and time it chooses (see `_choice`), and whether it declines: a
    declining word with a date, a time or a number named (`<impossible>` alone turns nothing down)."""
    value = _normalised(text)
    dates = list(_DATE.finditer(value))
    times = [t for t in _TIME.finditer(value) if not _NUMBER_LEAD.search(value, 0, t.start())]
    choice, declined = _choice(value, _pairs(value, dates, times))
    named = bool(dates or times or re.search(r"\d", value))
    return value, dates, choice, declined and named


def _start(value: str, dates: list[re.Match], choice: Pair, now: datetime) -> datetime | None:
    """The moment the chosen date and time name (None when it is no real, unambiguous one)."""
    found, said = choice
    at = _time(said)
    if at is None:
        return None
    if found["weekday"] and any(not other["weekday"] for other in dates):
        return None                                   # `Friday` beside `12/7` elsewhere: which one?
    if _moved(found, value):
        return None                                   # `<the week after next> Monday`, `<next month> 10<day>`
    on = _date(found, at, now)
    return None if on is None else datetime.combine(on, at, tzinfo=TOKYO)


def _pairs(value: str, dates: list[re.Match], times: list[re.Match]) -> list[Pair]:
    """Each date with the time beside it (see `_beside`), in the text's order."""
    starts = [t.start() for t in times]
    found = ((date_, _beside(date_, times, starts, value)) for date_ in dates)
    return [(date_, said) for date_, said in found if said is not None]


def _span(pair: Pair) -> tuple[int, int]:
    return min(pair[0].start(), pair[1].start()), max(pair[0].end(), pair[1].end())


def _choice(value: str, pairs: list[Pair]) -> tuple[Pair | None, bool]:
    """The date and time the text chooses (the first pair, or the one after the words that turn another down),
    and whether a declining word makes it choose nothing.

    A declining word is let pass only where it cannot deny the slot chosen: it is part of a phrase that asks for
    it (`_NOT_DECLINING`); it says the slot is the only one that suits (`_ONLY`); it says what to do should the
    slot not be free (`_IF`, in a later clause than the text's only slot); or every declining word stands
    before the slot, in an earlier clause, about another date or time named there (or corrects a mistake), and
    no other date or time stands between that clause and the slot. Anything else is not guessed."""
    excused = [m.span() for m in _NOT_DECLINING.finditer(value)]
    declining = [d for d in _DECLINING.finditer(value)
                 if not any(start < d.end() and d.start() < end for start, end in excused)]
    if not declining:
        return (pairs[0] if pairs else None), False
    if len(pairs) == 1 and (_only(value, _span(pairs[0])[1], declining)
                            or _if_not_free(value, _span(pairs[0])[1], declining)):
        return pairs[0], False
    after = _after_turned_down(value, pairs, declining)
    return (after, False) if after is not None else (None, True)


def _only(value: str, end: int, declining: list[re.Match]) -> bool:
    """`12/7 14<hour> <only> <can-not>`: the slot (ending at `end`, the text's only one) goes on with <only> or
    <other than> and, a few characters on in the same clause, a declining word (`<other than> <topic> <somewhat>
    <difficult>`); every declining word is in that sentence, with no other date, time or number named among them,
    and the sentence asks no question. Where the clause says something else first (`12/7 14<hour> <other than>
    <is fine>, 12/8 <impossible>`), the slot is the one the user does not want."""
    only = _ONLY.match(value, end)
    if only is None:
        return False
    stop = _SENTENCE_END.search(value, only.end())
    sentence_end = stop.start() if stop else len(value)
    if (stop is not None and stop.group() == "?") or _QUESTION.search(value, 0, sentence_end):
        return False
    first = next((d for d in declining if d.start() >= only.end()), None)
    if (first is None or first.start() - only.end() > _ONLY_GAP
            or any(m.group() != "\u3066" for m in _CLAUSE_END_JA.finditer(value, only.end(), first.start()))):
        return False                                  # `<other than> <is fine>, <morning> <impossible>`
    return (all(end <= d.start() and d.end() <= sentence_end for d in declining)
            and not _named(value, only.end(), declining[-1].start()))


def _if_not_free(value: str, end: int, declining: list[re.Match]) -> bool:
    """`12/7 14<hour> <please>. <if it is difficult>, <another day is fine>`: every declining word comes after the
    slot (ending at `end`, the text's only one), in a later clause, and is followed by <if>."""
    return all(end <= d.start() and _CLAUSE_END_JA.search(value, end, d.start()) and _IF.match(value, d.end())
               for d in declining)


def _named(value: str, start: int, end: int) -> bool:
    """Is a date, a time, a number or a half of the day named in value[start:end]?"""
    part = value[start:end]
    return bool(re.search(r"\d", part) or _DATE.search(part) or _TIME.search(part) or _HALF_DAY.search(part))


def _after_turned_down(value: str, pairs: list[Pair], declining: list[re.Match]) -> Pair | None:
    """`12/7<topic> <impossible> <so> 12/8 10<hour>`, `12/7 14<hour> <not-and> 12/8 10<hour>`, `<made a mistake>,
    12/8 10<hour>`, `I can't make Dec 8, so Dec 7 2pm`: the last pair, when every declining word comes before it
    and belongs to another date or time (see `_choice`); else None."""
    last = declining[-1]
    chosen = pairs[-1] if pairs else None
    if chosen is None or _span(chosen)[0] < last.end():
        return None
    english = last.group()[:1].isascii()
    ends = list((_CLAUSE_END_EN if english else _CLAUSE_END_JA).finditer(value, last.end(), _span(chosen)[0]))
    if not ends or _named(value, ends[-1].end(), _span(chosen)[0]):
        return None                                   # `12/7 <impossible> 12/8 10<hour>`, `<so> 12/8 <or> 12/9 ...`
    for d in declining:
        clause = value[:d.start()]
        clause = clause[max((m.end() for m in _CLAUSE_END_JA.finditer(clause)), default=0):]
        if _ONLY_WORDS.search(clause):
            return None                               # `12/7<only> <impossible> <so> 12/8 10<hour>`: which one?
        mistake = value[d.start() - 1:d.start()] in _MISTAKE_LEAD if d.start() else False
        about = _named(value, d.end(), ends[-1].start()) if d.group()[:1].isascii() else _named(value, 0, d.start())
        if not (mistake or about):
            return None                               # `<wrong>, 12/8 10<hour>`: what is wrong is not said
    for pair in pairs[:-1]:
        start, end = _span(pair)
        following = next((d for d in declining if d.start() >= end), None)
        if following is None or _CLAUSE_END_JA.search(value, end, following.start()):
            return None                               # `12/7 14<hour> <please>, 12/8 <impossible> <so> ...`
    return chosen


def _normalised(text: str) -> str:
    """NFKC (full-width forms too), lower-cased, spaces folded, a typographic apostrophe made plain, a time's kana
    marks written in kanji (`_KANA_TIME`)."""
    value = " ".join(unicodedata.normalize("NFKC", text or "").lower().replace("\u2019", "'").split())
    for kana, kanji in _KANA_TIME:
        value = kana.sub(kanji, value)
    for numeral, largest in _KANJI_DATE:
        value = numeral.sub(lambda found: _in_digits(found, largest), value)
    return _REIWA.sub(_western_year, value)


def _western_year(found: re.Match) -> str:
    """<Reiwa>N<year> (or R N/) as the year it is (2018 + N), with its mark; a number that is no year of the era
    as it stands (then no date is read after it)."""
    number, mark = found.groups()
    if number == _REIWA_FIRST:
        number = "1"
    elif not number.isdigit():
        number = _in_digits(re.match("()(.*)", number), _REIWA_LAST)
    if not number.isdigit() or not 1 <= int(number) <= _REIWA_LAST:
        return found.group(0)
    return f"{_REIWA_BEFORE_FIRST + int(number)}{mark}"


def _in_digits(found: re.Match, largest: int) -> str:
    """A date's or time's number in kanji numerals (`_KANJI_DATE`) written in digits, if it is one up to `largest`
    (<juu-ni> 12, <ni-juu-san> 23); else as it stands."""
    *before, numeral = found.groups()
    tens, ten, ones = numeral.rpartition(_KANJI_TEN)
    if not ten:
        number = _KANJI_DIGITS.index(ones) + 1 if len(ones) == 1 else 0
    elif len(tens) <= 1 and len(ones) <= 1:
        number = 10 * (_KANJI_DIGITS.index(tens) + 1 if tens else 1) + (_KANJI_DIGITS.index(ones) + 1 if ones else 0)
    else:
        number = 0
    return "".join(before) + str(number) if 0 < number <= largest else found.group(0)


def _moved(found: re.Match, value: str) -> bool:
    """A date without its month (a weekday, a day of the month, a day counted from today) after a word that
    moves it: read as it stands it would be another day than the one meant."""
    if not (found["weekday"] or found["day_alone"] or found["days_later"] or found["relative"]):
        return False
    return _SHIFTED.search(value, 0, found.start()) is not None


def _beside(found: re.Match, times: list[re.Match], starts: list[int], value: str) -> re.Match | None:
    """The time right after the date, else the one right before it, with only a few filler words between
    (`starts`: where each of the text's times starts, in order)."""
    following = bisect.bisect_left(starts, found.end())
    nearest = times[following:following + 1] + [t for t in times[following - 1:following] if t.end() <= found.start()]
    for said in nearest:
        gap = value[found.end():said.start()] if said.start() >= found.end() else value[said.end():found.start()]
        if len(gap) <= _MAX_BETWEEN and _BETWEEN.fullmatch(gap):
            return said
    return None


def _time(said: re.Match) -> time | None:
    if said["noon"]:
        return time(12, 0)
    if said["hhmm_hour"]:
        hour, minute = int(said["hhmm_hour"]), int(said["hhmm_minute"])
        return time(hour, minute) if hour <= 23 and minute <= 59 else None
    hour = _hour(said["hour"], said["half_day"], said["meridiem"] or "")
    minute_text = said["minute"] or said["minute_mark"]
    minute = int(minute_text) if minute_text else (30 if said["half"] else 0)
    if hour is None or not (0 <= hour <= 23 and 0 <= minute <= 59):
        return None
    return time(hour, minute)


def _hour(typed: str, half_day: str | None, meridiem: str) -> int | None:
    """The 24-hour hour of `2` in the afternoon, `2pm`, `10am`; a 24-hour time after the afternoon word stays.
    An hour of 1 to 7 with neither the morning nor the afternoon said (`3<hour>`, `2:30`, `3<hour><half>`) is
    the afternoon's, as people say it: the offices counsel in office hours (about 8:30 to 17:15), and nobody
    means 3 at night. Written with a leading zero (`03:00`, `0300`) it is a 24-hour time, and stays."""
    hour = int(typed)
    afternoon = half_day == _AFTERNOON or meridiem == "p"
    morning = half_day == _MORNING or meridiem == "a"
    if meridiem and not 1 <= hour <= 12:
        return None                                   # 13pm, 0am
    if afternoon and hour < 12:
        return hour + 12
    if morning and hour == 12:
        return 0
    if not (morning or afternoon) and 1 <= hour <= _LAST_AFTERNOON_HOUR and not typed.startswith("0"):
        return hour + 12                              # 12/7 3<hour>: 15:00
    return hour


def _date(found: re.Match, at: time, now: datetime) -> date | None:
    """The day a date match names (None when there is no such day, or a weekday beside it disagrees)."""
    today, on = now.date(), None
    if found["weekday"]:
        return _weekday_date(_weekday_index(found["weekday"]), found["week"], at, now)
    if found["relative"]:
        on = today + timedelta(days=_DAYS_FROM_TODAY[_phrase(found["relative"])])
    elif found["days_later"]:
        on = today + timedelta(days=int(found["days_later"]))
    elif found["day_alone"]:
        on = _next_day_of_month(int(found["day_alone"]), today)
    else:
        for kind in ("num", "md", "dm"):
            if found[f"{kind}_day"]:
                month = found[f"{kind}_month"]
                month = int(month) if month.isdigit() else _MONTHS[month.rstrip(".")]
                on = _on(found[f"{kind}_year"], month, int(found[f"{kind}_day"]), today)
                break
    if on is None:
        return None
    said = [_weekday_index(found[name]) for name in ("lead_wd", "trail_wd", "bracket") if found[name]]
    if any(weekday is not None and weekday != on.weekday() for weekday in said):
        return None
    return on


def _phrase(words: str) -> str:
    return " ".join(words.split())


def _weekday_index(word: str) -> int | None:
    """Monday 0 ... Sunday 6, from an English weekday or a Japanese one (its first character); else None."""
    word = word.strip().rstrip(".")
    if word in _WEEKDAYS:
        return _WEEKDAYS[word]
    return WEEKDAY_KANJI.index(word[0]) if word[:1] in WEEKDAY_KANJI else None


def _weekday_date(weekday: int, week: str | None, at: time, now: datetime) -> date | None:
    today = now.date()
    next_monday = today + timedelta(days=7 - today.weekday())
    kind = {_NEXT_WEEK: "next_week", _THIS_WEEK: "this_week"}.get(week or "") or _WEEK_WORDS.get(
        _phrase(week or ""), "bare")
    if kind in ("next_week", "this_week"):
        # Weeks run Monday to Sunday on the slot pages, Sunday to Saturday on many Japanese calendars: read only
        # where both agree (on a Sunday only Sunday itself, on another day any day but Sunday), as `next` below.
        ahead = 7 if kind == "next_week" else 0
        monday_first = next_monday - timedelta(days=7 - weekday - ahead)
        sunday_first = today - timedelta(days=(today.weekday() + 1) % 7) + timedelta(days=(weekday + 1) % 7 + ahead)
        return monday_first if monday_first == sunday_first else None
    if kind == "next":
        coming = today + timedelta(days=(weekday - today.weekday() - 1) % 7 + 1)   # after today
        return coming if coming == next_monday + timedelta(days=weekday) else None
    on = today + timedelta(days=(weekday - today.weekday()) % 7)
    if datetime.combine(on, at, tzinfo=TOKYO) <= now:
        on += timedelta(days=7)
    return on


def _on(year: str | None, month: int, day: int, today: date) -> date | None:
    if year is None:
        return _next_occurrence(month, day, today)
    try:
        return date(int(year), month, day)
    except ValueError:
        return None


def _next_day_of_month(day: int, today: date) -> date | None:
    """The next date (today included) that falls on this day of a month."""
    year, month = today.year, today.month
    for _ in range(3):                                 # the 31st may skip a month or two
        try:
            candidate = date(year, month, day)
        except ValueError:
            candidate = None
        if candidate is not None and candidate >= today:
            return candidate
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return None


def _next_occurrence(month: int, day: int, today: date) -> date | None:
    earliest = today - _RECENT_PAST
    for year in (earliest.year, earliest.year + 1):
        try:
            candidate = date(year, month, day)
        except ValueError:
            continue  # 2/30, or 2/29 outside a leap year
        if candidate >= earliest:
            return candidate
    return None
