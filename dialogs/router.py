"""Turn an incoming event into a trigger of the dialog machine (a whitelist; nothing else passes)."""
from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Iterable, Mapping
from urllib.parse import parse_qsl, urlencode

from dialogs.inputs import Incoming

# Chat words (ids) -> triggers. The words themselves are vocabulary data from templates/.
WORD_TRIGGERS = {
    "book": "start",
    "status": "show_bookings",
    "help": "help",
    "back": "back",
    "restart": "restart",
    "stop": "stop",
    "delete_data": "delete_data",
    "lang_en": "switch_language",
    "lang_easy": "switch_language",
    "lang_ja": "switch_language",
}
LANGUAGE_OF_WORD = {"lang_en": "en", "lang_easy": "easy", "lang_ja": "ja"}

# Postback actions a button may carry, and the trigger each one fires.
POSTBACK_ACTIONS = {
    "agree": "agree",
    "disagree": "disagree",
    "answer": "answer",
    "slot": "choose_slot",
    "week": "turn_week",
    "resume": "resume",
    "word": None,  # rich menu / help buttons carrying a chat word id
    "withdraw": "withdraw",
    "cancel_booking": "cancel_booking",
    "confirm_delete": "confirm_delete",
    "confirm_cancel": "confirm_cancel",  # the answer to 「キャンセルしますか」 (取り下げ, 辞退 alike)
    "proposal": "answer_proposal",  # the user answers another slot staff proposed
}
# Postback actions about a booking or the user's data, valid at any step (their own checks guard them).
BOOKING_ACTIONS = frozenset({"withdraw", "cancel_booking", "confirm_delete", "confirm_cancel", "proposal"})
MAX_POSTBACK = 300
_LONGEST_NUMBER = 4    # digits of a choice's number; a longer number chooses nothing
_NEAR_LONGEST = 20   # longer text is a sentence, not a chat word mistyped
_SPACES = re.compile(r"\s+")
_TRAILING = re.compile(r"[。．.!！?？、,]+$")
_CLAUSES = re.compile(r"[。．.!！?？、, ]+")
# Emoji presentation marks: a keycap digit (1️⃣) is the digit, VS16 and the enclosing keycap after it; a skin tone
# and the gender sign of a ZWJ sequence (🙆🏻‍♀️ is 🙆).
_EMOJI_MARKS = re.compile("[\ufe0e\ufe0f\u20e3\U0001f3fb-\U0001f3ff]|\u200d[\u2640\u2642]")
# A wave dash or tilde drawn out after a word (はい〜), as an emoji or a symbol is: decoration, not a word.
_DRAWN_OUT = "\u301c~"
# A button label with a booking reference, as typed (normalised: NFKC made full-width brackets ASCII and
# lower-cased the reference).
_LABEL_WITH_REFERENCE = re.compile(r"^(?P<label>.+?) ?\( ?(?P<reference>[0-9a-z]{4}-[0-9a-z]{4}) ?\)$")
# A number said as "the Nth" (N<ban>, N<ban><me>, N<tsu><me>; escaped: Python holds no Japanese text).
_NUMBERED = re.compile("^(\\d+) ?(?:\u756a(?:\u76ee)?|\u3064\u76ee)$")
# A number written in kanji, one to ninety-nine (<ichi>, <juu><ni>, <ni><juu><san>), as a whole text.
_KANJI_DIGITS = "\u4e00\u4e8c\u4e09\u56db\u4e94\u516d\u4e03\u516b\u4e5d"
_KANJI_TEN = "\u5341"
_KANJI_NUMBER = re.compile(f"^(?:(?P<tens>[{_KANJI_DIGITS}])?(?P<ten>{_KANJI_TEN}))?(?P<ones>[{_KANJI_DIGITS}])?")


def normalise(text: str) -> str:
    """NFKC, trimmed, lower-cased, inner spaces folded, trailing punctuation dropped; invisible characters
    (zero-width spaces, direction marks) dropped and emoji or symbols around a word too (はい👍 is はい; 👍 alone
    stays); a keycap digit, a number said as N番 or written in kanji (二, 二番) becomes the number."""
    cleaned = "".join(c for c in _EMOJI_MARKS.sub("", text or "") if unicodedata.category(c) != "Cf")
    value = unicodedata.normalize("NFKC", cleaned).strip().lower()
    value = _SPACES.sub(" ", value)
    stripped = _TRAILING.sub("", _undecorated(value)) or value
    numbered = _NUMBERED.match(_kanji_number(stripped))
    return numbered.group(1) if numbered else _kanji_number(stripped, whole=True)


def _undecorated(value: str) -> str:
    """The text without the emoji, symbols and drawn-out marks at its ends (and the punctuation between them:
    はい！👍); the text itself if nothing else is left."""
    start, end = 0, len(value)
    while start < end and _decoration(value[start]):
        start += 1
    while end > start and (_decoration(value[end - 1]) or _TRAILING.match(value[end - 1]) and
                           end - 1 > start and _decoration(value[end - 2])):
        end -= 1
    return value[start:end].strip() or value


def _decoration(char: str) -> bool:
    return char in _DRAWN_OUT or char.isspace() or unicodedata.category(char) in ("So", "Sk")


def _kanji_number(text: str, whole: bool = False) -> str:
    """A leading number in kanji as digits (二番 -> 2番); `whole`: only if the number is the whole text."""
    found = _KANJI_NUMBER.match(text)
    if not found or not (found["ten"] or found["ones"]) or whole and found.end() != len(text):
        return text
    tens = _KANJI_DIGITS.index(found["tens"]) + 1 if found["tens"] else 1 if found["ten"] else 0
    ones = _KANJI_DIGITS.index(found["ones"]) + 1 if found["ones"] else 0
    return f"{tens * 10 + ones}{text[found.end():]}"


def key(text: str) -> str:
    """What a normalised phrase is matched by: without its spaces (この ままに する is このままにする; they separate
    nothing in Japanese) and with katakana read as hiragana (ヤメル is やめる). No two words, labels or answers of
    a step share a key unless they are the same text (tests/test_chat_words.py checks every step)."""
    return "".join(chr(ord(c) - 0x60) if "\u30a1" <= c <= "\u30f6" else c for c in _compact(text))


@dataclass(frozen=True)
class Vocabulary:
    """What typed text means: chat words and answer synonyms (normalised)."""

    words: Mapping[str, str] = field(default_factory=dict)     # phrase -> word id
    answers: Mapping[str, str] = field(default_factory=dict)   # phrase -> answer value
    consent_phrase: str = ""                                   # the exact words that consent
    endings: tuple[str, ...] = ()                              # polite endings that add nothing, longest first

    @classmethod
    def build(cls, words: Mapping[str, Iterable[str]], answers: Mapping[str, Iterable[str]],
              consent_phrase: str, endings: Iterable[str] = ()) -> "Vocabulary":
        w = {form: wid for wid, phrases in words.items() for p in phrases
             for form in (normalise(p), _compact(normalise(p)), key(normalise(p)))}
        a = {form: val for val, phrases in answers.items() for p in phrases
             for form in (normalise(p), key(normalise(p)))}
        return cls(words=w, answers=a, consent_phrase=normalise(consent_phrase), endings=_longest_first(endings))

    def merged(self, other: "Vocabulary") -> "Vocabulary":
        return Vocabulary({**other.words, **self.words}, {**other.answers, **self.answers},
                          self.consent_phrase or other.consent_phrase, _longest_first((*self.endings, *other.endings)))

    def word(self, text: str) -> str | None:
        """The chat word a normalised text names, if any: spaces inside (予約 確認 is 予約確認), katakana for
        hiragana (ヤメル) and a polite ending (予約をお願いします, 予約 を お願いします) do not count."""
        compact = key(text)
        return (self.words.get(compact) or self.words.get(key(self.without_ending(text)))
                or self.words.get(self.without_ending(compact)))

    def answer(self, text: str) -> str | None:
        """The answer a normalised text is a common synonym of (ハイ, ok), if any."""
        return self.answers.get(text) or self.answers.get(key(text))

    def near(self, text: str) -> str | None:
        """The chat word a normalised text misspells by a letter or two (へるぶ, 予約確任, englsh; `_near_enough`),
        if only one word is that near. Only suggested, never acted on."""
        typed = key(self.without_ending(text))
        if not 3 <= len(typed) <= _NEAR_LONGEST:
            return None
        found: dict[int, set[str]] = {}
        for phrase, wid in self.words.items():
            if abs(len(phrase) - len(typed)) <= 2:
                distance = _distance(typed, phrase)
                if 0 < distance <= _near_enough(phrase):
                    found.setdefault(distance, set()).add(wid)
        nearest = found[min(found)] if found else set()
        return nearest.pop() if len(nearest) == 1 else None

    def without_ending(self, text: str) -> str:
        """The normalised text without one polite ending (予約をお願いします -> 予約); never down to nothing."""
        for ending in self.endings:
            if text.endswith(ending) and len(text) > len(ending):
                return normalise(text[: -len(ending)]) or text
        return text


def _near_enough(phrase: str) -> int:
    """How many letters a phrase may be mistyped by and still be suggested: a kana or kanji says more than a
    Latin letter (へるぶ is ヘルプ, but step is not stop)."""
    latin = phrase.isascii()
    if len(phrase) < (5 if latin else 3):
        return 0
    return 1 if len(phrase) < (8 if latin else 6) else 2


def _distance(a: str, b: str) -> int:
    """The edit distance between two short phrases: insertions, deletions, substitutions and two letters swapped
    (hlep), one edit each."""
    rows = [list(range(len(b) + 1))]
    for i, char in enumerate(a, 1):
        row = [i]
        for j, other in enumerate(b, 1):
            cost = min(rows[-1][j] + 1, row[j - 1] + 1, rows[-1][j - 1] + (char != other))
            if i > 1 and j > 1 and char == b[j - 2] and a[i - 2] == other:
                cost = min(cost, rows[-2][j - 2] + 1)
            row.append(cost)
        rows.append(row)
    return rows[-1][-1]


def _compact(phrase: str) -> str:
    """A chat word without its spaces: they separate nothing in Japanese, and no two words differ by one."""
    return phrase.replace(" ", "")


def _longest_first(endings: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted({normalise(e) for e in endings if normalise(e)}, key=len, reverse=True))


@dataclass(frozen=True)
class Routed:
    trigger: str
    value: str | None = None
    method: str = "text"       # text | button
    extra: Mapping[str, str] = field(default_factory=dict)


@functools.lru_cache(maxsize=4096)  # the same few buttons are built on every event (20 µs each to encode)
def postback(action: str, at: str, office: str, value: str | None = None, **extra: str) -> str:
    """Build postback data for a button offered at position `at` (e.g. 'awaiting_eligibility:2')."""
    fields = {"a": action, "at": at, "o": office}
    if value is not None:
        fields["v"] = value
    fields.update(extra)
    data = urlencode(fields)
    if len(data) > MAX_POSTBACK:
        raise ValueError("postback data over LINE's 300 characters")
    return data


def parse_postback(data: str) -> dict[str, str] | None:
    if not data or len(data) > MAX_POSTBACK:
        return None
    try:
        fields = dict(parse_qsl(data, strict_parsing=True))
    except ValueError:
        return None
    if fields.get("a") not in POSTBACK_ACTIONS:
        return None
    return fields


def route(inp: Incoming, *, office: str, position: str, choices: list[tuple[str, Iterable[str]]],
          vocab: Vocabulary, aliases: Iterable[tuple[str, Iterable[str]]] = (),
          booking_actions: Mapping[str, str] | None = None,
          proposal_answers: Mapping[str, str] | None = None) -> Routed:
    """Map one event to a trigger.

    `position` names what the bot waits for now (state plus index); `choices` are the values
    offered at that position with the labels the user sees, in display order (numbers are
    1-based positions in this list). `aliases` are more values chosen only by typing their labels
    (after the choices' own labels; never by number). `booking_actions` (trigger -> label) are the
    予約確認 buttons, typed as their label with the reference: 取り下げる（ABCD-EFGH）; `proposal_answers`
    (accept | decline -> label) answer a slot staff proposed, typed as their label where nothing on offer reads so.
    """
    if inp.kind in ("follow", "unfollow"):
        return Routed(inp.kind, value="unblocked" if inp.unblocked else None)
    if inp.kind in ("sticker", "media", "location"):
        return Routed("unsupported", value=inp.kind if inp.kind != "media" else inp.media_type or "media")
    if inp.kind == "postback":
        return _route_postback(inp, office=office, position=position)
    if inp.kind != "text":
        return Routed("ignore")

    text = normalise(inp.text)
    if not text:
        return Routed("miss")
    # An alias on offer wins over a chat word of the same text (English 削除する reads "Delete my data", as the
    # word データ削除 does); the page's own buttons still come first.
    offered = None if _matching(text, choices, (), Vocabulary()) else _matching(text, [], aliases, vocab)
    if offered:
        return _choice(offered)
    word = vocab.word(text)
    if word:
        return Routed(WORD_TRIGGERS[word], value=LANGUAGE_OF_WORD.get(word, word))
    if vocab.consent_phrase and text == vocab.consent_phrase:   # consent: the exact words, no ending
        return Routed("agree", method="text")
    acted = _booking_action(text, booking_actions or {})
    if acted:
        return acted
    text = vocab.without_ending(text)   # はいです: the choice itself
    # A choice by number, by its label, or by a common synonym of an answer. Consent is never
    # given or refused by a number: where 同意する is offered, numbers choose nothing.
    if text.isdecimal():   # not isdigit: ² and other digits int() does not read are text
        index = int(text) - 1 if len(text) <= _LONGEST_NUMBER else -1   # int() refuses over 4300 digits
        if 0 <= index < len(choices) and not _offers_consent(choices):
            return _choice(choices[index][0])
        return Routed("miss")
    value = _matching(text, choices, aliases, vocab)
    if value is None:
        # はい、済んでいます / いいえ まだです: every part of the sentence names the same choice.
        parts = {_matching(vocab.without_ending(part), choices, aliases, vocab)
                 for part in _CLAUSES.split(text) if part}
        value = parts.pop() if len(parts) == 1 and len(_CLAUSES.split(text)) > 1 else None
    if value is not None:
        return _choice(value)
    for answer, label in (proposal_answers or {}).items():
        if label and key(text) == key(normalise(label)):
            return Routed("answer_proposal", value=answer, method="text")
    near = vocab.near(text)
    return Routed("typed", value=inp.text, extra={"near": near} if near else {})


def _matching(text: str, choices: list[tuple[str, Iterable[str]]], aliases: Iterable[tuple[str, Iterable[str]]],
              vocab: Vocabulary) -> str | None:
    """The choice value a phrase names by its label or by a common synonym of an answer, if any."""
    typed = key(text)
    for value, labels in (*choices, *aliases):
        if typed in {key(normalise(label)) for label in labels}:
            return value
    synonym = vocab.answer(text)
    if synonym:
        for value, _ in choices:
            if synonym in (value, value.partition(":")[2]):
                return value
        for value, _ in aliases:   # by its own value only (来週 is week:1), never by an answer's (はい is no 削除する)
            if synonym == value:
                return value
    return None


def _booking_action(text: str, actions: Mapping[str, str]) -> Routed | None:
    """A 予約確認 button typed as its label with the reference, as it reads on the button."""
    typed = _LABEL_WITH_REFERENCE.match(text)
    if typed is None:
        return None
    for trigger, label in actions.items():
        if label and key(normalise(label)) == key(typed["label"]):
            return Routed(trigger, value=typed["reference"].upper(), method="text")
    return None


def _offers_consent(choices: list[tuple[str, Iterable[str]]]) -> bool:
    return any(value == "agree" for value, _ in choices)


def _choice(value: str) -> Routed:
    """A typed choice. Values are `action:value` as on the buttons; consent is never typed by number."""
    action, _, rest = value.partition(":")
    if action == "agree":
        return Routed("miss")
    trigger = POSTBACK_ACTIONS.get(action)
    if not trigger:
        return Routed("miss")
    return Routed(trigger, value=rest or None, method="text")


def _route_postback(inp: Incoming, *, office: str, position: str) -> Routed:
    fields = parse_postback(inp.data)
    if fields is None:
        return Routed("stale")
    if fields.get("o") != office:
        return Routed("stale")
    action = fields["a"]
    if action == "word":
        word = fields.get("v", "")
        if word in WORD_TRIGGERS:
            return Routed(WORD_TRIGGERS[word], value=LANGUAGE_OF_WORD.get(word, word), method="button")
        return Routed("stale")
    # Buttons that act on a booking are valid at any position; step buttons only where offered.
    if action not in BOOKING_ACTIONS and fields.get("at") != position:
        return Routed("stale")
    extra = {k: v for k, v in fields.items() if k not in ("a", "at", "o", "v")}
    extra.update(inp.params)
    return Routed(POSTBACK_ACTIONS[action], value=fields.get("v"), method="button", extra=extra)
