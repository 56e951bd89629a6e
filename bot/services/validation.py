"""The details form's answers: normalise and check them (pure; no database, no web).

Each check returns either a normalised value or a `FieldError` whose `code` names a message in
templates/forms/errors.<language>.yaml (the words live there, not here). Rules:

- Digits, phone numbers, dates and kana are NFKC-normalised (full-width digits, half-width kana); numbers and
  dates drop invisible format characters (a number copied on iOS comes wrapped in direction marks).
- Names are stored as typed (only surrounding spaces dropped); an emoji-only name is refused.
- Job seeker number (kyushoku bangou): 5 digits, hyphen, 1 to 8 digits; a missing hyphen is inserted,
  leading zeros are kept. It has the same shape as a job offer number (kyujin bangou), which the
  message warns about.
- Name reading (furigana): hiragana or katakana. Where the form is in English, a reading is optional and may be
  in the Latin alphabet too: a foreign job seeker may have no katakana reading, and staff find the person by
  the job seeker number (what was given is shown to them as typed).
- Birth date: western `YYYY-MM-DD` (also `/`, `.`, spaces and the year/month/day marks, or 8 digits) or a Japanese
  era date (Reiwa, Heisei, Showa: written out, as a letter R/H/S, or as the one-character era sign),
  with the first-year mark (gannen) for year 1. The date must exist, lie inside its era, and give a plausible age.
- Phone: a Japanese number (10 digits from a landline prefix, 11 from 020/050/060/070/080/090/0800),
  `+81` accepted; separators kept as hyphens.
"""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

COMPANIONS = ("none", "interpreter", "caregiver")

NAME_MAX = 50
KANA_MAX = 60
CONSULTATION_MAX = 1000
COMPANION_DETAIL_MAX = 200
MIN_AGE = 15
MAX_AGE = 110


@dataclass(frozen=True)
class FieldError:
    code: str                                  # message key in templates/forms/errors.*.yaml
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Era:
    key: str          # reiwa | heisei | showa
    name: str         # the era's name as written in Japanese
    letter: str       # R | H | S
    start: date       # first day of the era


# Japanese era names as code points, kept out of the source text as literals. The one-character era
# signs need nothing here: NFKC turns them into these names.
ERAS: tuple[Era, ...] = (
    Era("reiwa", "\u4ee4\u548c", "R", date(2019, 5, 1)),
    Era("heisei", "\u5e73\u6210", "H", date(1989, 1, 8)),
    Era("showa", "\u662d\u548c", "S", date(1926, 12, 25)),
)
_FIRST_YEAR = "\u5143"                                   # gannen: the era's first year
_YEAR, _MONTH, _DAY = "\u5e74", "\u6708", "\u65e5"       # the year / month / day marks

# Dash-like characters people type for a hyphen (after NFKC): hyphens, dashes, minus, the long-vowel mark.
_DASHES = re.compile("[\u2010-\u2015\u2212\u2043\u30fc\ufe58\ufe63\uff0d]")
_SPACES = re.compile(r"\s+")
# Spaces between two numbers: on a phone's keyboard the nearest separator (a date typed `1990 4 1`).
_DIGIT_GAP = re.compile(r"(?<=\d)\s+(?=\d)")


@dataclass(frozen=True)
class Validated:
    values: dict[str, Any]                     # normalised values of the fields that passed
    errors: dict[str, FieldError]              # field name -> what is wrong

    @property
    def ok(self) -> bool:
        return not self.errors


# --------------------------------------------------------------------------- helpers

def nfkc(text: str | None) -> str:
    return unicodedata.normalize("NFKC", text or "")


def _ascii_digits(text: str) -> str:
    """Every script's decimal digits as 0-9: NFKC turns full-width digits into them but leaves Arabic-Indic,
    Devanagari and the like as they are, and a number must be one number however it was typed (its keyed hash
    finds it, and the one-open-request rule holds)."""
    return "".join(str(unicodedata.decimal(ch)) if not ch.isascii() and unicodedata.category(ch) == "Nd" else ch
                   for ch in text)


def _invisible_dropped(text: str) -> str:
    """Without the invisible format characters (Unicode Cf) a phone puts in a number: iOS wraps one copied from
    Contacts in LEFT-TO-RIGHT OVERRIDE ... POP DIRECTIONAL FORMATTING, pasted text brings zero-width spaces and a
    byte-order mark. Only for numbers and dates: what is kept is digits and hyphens, read back on the
    confirmation page as stored (a name keeps refusing them: `_has_control`)."""
    return "".join(ch for ch in text if unicodedata.category(ch) != "Cf")


def _compact(text: str) -> str:
    """NFKC, digits of any script as 0-9, dashes unified to '-', all spaces and invisible marks removed."""
    return _DASHES.sub("-", _SPACES.sub("", _ascii_digits(_invisible_dropped(nfkc(text)))))


# Bidirectional embeddings, overrides and isolates: text after one is shown in another order than it is stored
# (a name that reads differently on the dashboard and in the export than what was typed).
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _has_control(text: str, allow_newlines: bool = False) -> bool:
    for ch in text:
        if allow_newlines and ch in "\n\t":
            continue
        if unicodedata.category(ch) in ("Cc", "Cs", "Co") or ch in _BIDI_CONTROLS:
            return True
    return False


# --------------------------------------------------------------------------- job seeker number

_SEEKER = re.compile(r"^(\d{5})-(\d{1,8})$")
_SEEKER_DIGITS = re.compile(r"^\d{6,13}$")
_INSURANCE = re.compile(r"^\d{4}-\d{6}-\d$")  # employment insurance number (4-6-1)


def normalise_seeker_number(raw: str | None) -> str | FieldError:
    """`12345-678` form of a job seeker number, or why it is not one."""
    text = _compact(raw or "")
    if not text:
        return FieldError("required")
    match = _SEEKER.match(text)
    if match:
        return f"{match[1]}-{match[2]}"
    if _SEEKER_DIGITS.match(text):
        return f"{text[:5]}-{text[5:]}"
    if _INSURANCE.match(text):
        return FieldError("seeker_number_insurance")
    return FieldError("seeker_number_format")


# --------------------------------------------------------------------------- birth date

_WESTERN = re.compile(rf"^(\d{{4}})[-/.{_YEAR}](\d{{1,2}})[-/.{_MONTH}](\d{{1,2}}){_DAY}?$")
_WESTERN_DIGITS = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
_JAPANESE = re.compile(
    rf"^({'|'.join(re.escape(e.name) for e in ERAS)}|[{''.join(e.letter for e in ERAS)}])"
    rf"(\d{{1,2}}|{_FIRST_YEAR})[-/.{_YEAR}](\d{{1,2}})[-/.{_MONTH}](\d{{1,2}}){_DAY}?$",
    re.IGNORECASE,
)


def _era_of(word: str) -> Era:
    upper = word.upper()
    return next(e for e in ERAS if word == e.name or upper == e.letter)


def era_of_date(d: date) -> Era | None:
    """The era a date falls in (None before Showa)."""
    return next((e for e in ERAS if d >= e.start), None)


def wareki(d: date) -> tuple[Era, int] | None:
    """(era, year of the era) for reading a date back in the Japanese calendar."""
    era = era_of_date(d)
    return (era, d.year - era.start.year + 1) if era else None


def _age_on(born: date, today: date) -> int:
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def parse_birth_date(raw: str | None, today: date) -> date | FieldError:
    """A birth date in western or Japanese-era form, or why it cannot be one."""
    text = _compact(raw or "")
    if not text:
        return FieldError("required")
    spaced = _compact(_DIGIT_GAP.sub("-", nfkc(raw)))  # `1990 4 1`, `H2 4 1`: the spaces part the numbers
    if _JAPANESE.match(spaced) or _WESTERN.match(spaced):
        text = spaced
    era: Era | None = None
    if match := _JAPANESE.match(text):
        era = _era_of(match[1])
        era_year = 1 if match[2] == _FIRST_YEAR else int(match[2])
        if era_year < 1:
            return FieldError("birth_date_format")
        year, month, day = era.start.year + era_year - 1, int(match[3]), int(match[4])
    elif match := (_WESTERN.match(text) or _WESTERN_DIGITS.match(text)):
        year, month, day = int(match[1]), int(match[2]), int(match[3])
    else:
        return FieldError("birth_date_format")
    try:
        born = date(year, month, day)
    except ValueError:
        return FieldError("birth_date_no_such_day", {"month": month, "day": day})
    if era is not None:
        later = [e for e in ERAS if e.start > era.start]
        next_start = min((e.start for e in later), default=None)
        if born < era.start or (next_start is not None and born >= next_start):
            return FieldError("birth_date_era", {"era": era.name})
    if born > today:
        return FieldError("birth_date_future")
    age = _age_on(born, today)
    if age < MIN_AGE or age > MAX_AGE:
        return FieldError("birth_date_range", {"min_age": MIN_AGE, "max_age": MAX_AGE})
    return born


# --------------------------------------------------------------------------- phone

_PHONE_SHAPE = re.compile(r"^\+?[\d\-()]+$")
_COUNTRY_TRUNK = re.compile(r"^[-(]*0?\)?-?")
_MOBILE_PREFIXES = ("020", "050", "060", "070", "080", "090", "0800")


def normalise_phone(raw: str | None) -> str | FieldError:
    """A Japanese phone number, as typed but NFKC'd, with hyphens as separators."""
    text = _compact(raw or "")
    if not text:
        return FieldError("required")
    if not _PHONE_SHAPE.match(text):
        return FieldError("phone_format")
    if text.startswith("+81"):
        text = "0" + _COUNTRY_TRUNK.sub("", text[3:])  # +81 (0)90... or +81-90... -> 090...
    elif text.startswith("+"):
        return FieldError("phone_format")
    shown = re.sub(r"-{2,}", "-", re.sub(r"[()]", "-", text)).strip("-")
    digits = shown.replace("-", "")
    if not digits.startswith("0") or digits.startswith("00"):
        return FieldError("phone_format")
    if len(digits) == 11 and digits.startswith(_MOBILE_PREFIXES):
        return shown
    if len(digits) == 10 and not digits.startswith(_MOBILE_PREFIXES[:-1]):
        return shown
    return FieldError("phone_format")


# --------------------------------------------------------------------------- names

def check_name(raw: str | None) -> str | FieldError:
    """The name as typed (surrounding spaces dropped): 1..NAME_MAX characters with a letter in it."""
    name = (raw or "").strip()
    if not name:
        return FieldError("required")
    if len(name) > NAME_MAX:
        return FieldError("too_long", {"max": NAME_MAX, "length": len(name)})
    if _has_control(name):
        return FieldError("text_characters")
    if not any(unicodedata.category(ch).startswith("L") for ch in name):
        return FieldError("name_letters")
    return name


_KANA = re.compile("^[\u3041-\u3096\u309d\u309e\u30a1-\u30fa\u30fb-\u30fe ]+$")


def normalise_kana(raw: str | None) -> str | FieldError:
    """The name in kana, NFKC-normalised (half-width kana become full-width), spaces folded."""
    kana = _SPACES.sub(" ", nfkc(raw)).strip()
    if not kana:
        return FieldError("required")
    if len(kana) > KANA_MAX:
        return FieldError("too_long", {"max": KANA_MAX, "length": len(kana)})
    if not _KANA.match(kana):
        return FieldError("kana_only")
    return kana


# The letters of a reading written in the Latin alphabet (after NFKC: accented letters of any language written in
# it, Vietnamese included), with the marks names are spelled with.
_READING_MARKS = frozenset(" -'.\u2019")


def _latin_or_kana(ch: str) -> bool:
    return ch in _READING_MARKS or bool(_KANA.match(ch)) or (
        ch.isalpha() and unicodedata.name(ch, "").startswith("LATIN"))


def normalise_reading(raw: str | None) -> str | FieldError:
    """A name's reading where the Latin alphabet is accepted beside kana (the English form): optional; kana
    normalised as `normalise_kana` does, letters kept as typed (spaces folded)."""
    reading = _SPACES.sub(" ", nfkc(raw)).strip()
    if not reading:
        return ""
    if len(reading) > KANA_MAX:
        return FieldError("too_long", {"max": KANA_MAX, "length": len(reading)})
    if not all(_latin_or_kana(ch) for ch in reading) or not any(ch.isalpha() for ch in reading):
        return FieldError("reading_letters")
    return reading


# --------------------------------------------------------------------------- free text and choices

def check_text(raw: str | None, limit: int, required: bool) -> str | FieldError:
    text = (raw or "").replace("\r\n", "\n").replace("\r", "\n").strip()
    if not text:
        return FieldError("required") if required else ""
    if len(text) > limit:
        return FieldError("too_long", {"max": limit, "length": len(text)})
    if _has_control(text, allow_newlines=True):
        return FieldError("text_characters")
    return text


def check_choice(raw: str | None, allowed: Iterable[str]) -> str | FieldError:
    value = (raw or "").strip()
    if not value:
        return FieldError("choose_one")
    return value if value in tuple(allowed) else FieldError("choose_one")


def check_confirmed(raw: str | None) -> bool | FieldError:
    return True if (raw or "").strip().lower() in ("yes", "on", "true", "1") else FieldError("mypage_email_required")


# --------------------------------------------------------------------------- the form

def validate(fields: Iterable[str], form: Mapping[str, str], today: date,
             categories: Iterable[str] = (), reading_in_latin: bool = False) -> Validated:
    """Check the office's fields in `form` (raw strings); unknown keys are ignored. `categories`: the ids the
    office's `category` field offers (its profile's `categories`). `reading_in_latin`: the name's reading is
    optional and may be in the Latin alphabet (`normalise_reading`: the form in English)."""
    fields = tuple(fields)
    values: dict[str, Any] = {}
    errors: dict[str, FieldError] = {}

    def take(name: str, result: Any) -> None:
        if isinstance(result, FieldError):
            errors[name] = result
        else:
            values[name] = result

    get = form.get
    for name in fields:
        if name == "name":
            take(name, check_name(get(name)))
        elif name == "name_kana":
            take(name, normalise_reading(get(name)) if reading_in_latin else normalise_kana(get(name)))
        elif name == "seeker_number":
            take(name, normalise_seeker_number(get(name)))
        elif name == "birth_date":
            result = parse_birth_date(get(name), today)
            take(name, result if isinstance(result, FieldError) else result.isoformat())
        elif name == "phone":
            take(name, normalise_phone(get(name)))
        elif name == "category":
            take(name, check_choice(get(name), categories))
        elif name == "consultation":
            take(name, check_text(get(name), CONSULTATION_MAX, required=True))
        elif name == "companion":
            take(name, check_choice(get(name) or "none", COMPANIONS))
        elif name == "companion_detail":
            take(name, check_text(get(name), COMPANION_DETAIL_MAX, required=False))
        elif name == "mypage_email_confirmed":
            take(name, check_confirmed(get(name)))
    if values.get("companion") == "none" and "companion_detail" in values:
        values["companion_detail"] = ""  # collect only what is needed: no detail without a companion
    if values.get("companion") == "interpreter" and values.get("companion_detail") == "":
        errors["companion_detail"] = FieldError("interpreter_language")  # staff need the language to arrange one
    return Validated(values=values, errors=errors)
