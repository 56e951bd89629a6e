"""The details form's answers (bot.services.validation): normalised, checked, and explained by code."""
from __future__ import annotations

from datetime import date

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from bot.render import TEMPLATES_DIR
from bot.services import validation as v
from bot.services.validation import FieldError

TODAY = date(2026, 12, 1)
SAKATA_CATEGORIES = ("graduate", "uij", "disability", "hospital", "mothers")   # its profile's categories
SAKATA_FIELDS = ("name", "name_kana", "seeker_number", "phone", "category", "companion", "companion_detail",
                 "mypage_email_confirmed")
OTARU_FIELDS = ("name", "name_kana", "birth_date", "seeker_number", "phone", "consultation", "companion",
                "companion_detail")


def code(result) -> str | None:
    return result.code if isinstance(result, FieldError) else None


# -- job seeker number ---------------------------------------------------------------------------------

@pytest.mark.parametrize("typed, stored", [
    ("12345-678", "12345-678"),
    ("12345-1", "12345-1"),
    ("12345-12345678", "12345-12345678"),
    ("１２３４５－６７８９０", "12345-67890"),          # full-width digits and hyphen
    ("12345ー67890", "12345-67890"),                    # the long-vowel mark typed for a hyphen
    ("12345−67890", "12345-67890"),                     # minus sign
    ("123456789", "12345-6789"),                        # hyphen missing
    ("0123456789012", "01234-56789012"),                # 13 digits, leading zero kept
    (" 01234 - 00056 ", "01234-00056"),                 # spaces and leading zeros
    ("٠١٢٣٤-٥٦٧٨٩", "01234-56789"),                     # Arabic-Indic digits (NFKC keeps them)
    ("०१२३४५६७८९", "01234-56789"),                      # Devanagari digits
])
def test_seeker_number_is_normalised_keeping_leading_zeros(typed, stored):
    assert v.normalise_seeker_number(typed) == stored


@pytest.mark.parametrize("typed", ["1234a-5678", "ABCDE-123456", "12345678901234", "12345-123456789",
                                   "1234-5678", "12345", "12345-", "-12345"])
def test_seeker_number_with_letters_or_wrong_length_is_refused(typed):
    assert code(v.normalise_seeker_number(typed)) == "seeker_number_format"


def test_the_seeker_number_message_says_it_is_not_the_kyujin_bangou():
    errors = yaml.safe_load((TEMPLATES_DIR / "forms" / "errors.ja.yaml").read_text(encoding="utf-8"))
    wording = errors["codes"]["seeker_number_format"]
    assert "求職番号" in wording and "求人番号" in wording and "ではありません" in wording


def test_an_employment_insurance_number_is_recognised():
    assert code(v.normalise_seeker_number("1234-567890-1")) == "seeker_number_insurance"


def test_an_empty_seeker_number_is_required():
    assert code(v.normalise_seeker_number("  ")) == "required"


# -- birth date -------------------------------------------------------------------------------------

@pytest.mark.parametrize("typed, born", [
    ("1990-04-01", date(1990, 4, 1)),
    ("1990/4/1", date(1990, 4, 1)),
    ("1990年4月1日", date(1990, 4, 1)),
    ("１９９０－０４－０１", date(1990, 4, 1)),
    ("19900401", date(1990, 4, 1)),
    ("平成2年4月1日", date(1990, 4, 1)),
    ("平成 2年 4月 1日", date(1990, 4, 1)),
    ("H2.4.1", date(1990, 4, 1)),
    ("h02.04.01", date(1990, 4, 1)),
    ("㍻2年4月1日", date(1990, 4, 1)),                   # the one-character era sign
    ("平成元年1月8日", date(1989, 1, 8)),                 # 元年, the first day of Heisei
    ("昭和64年1月7日", date(1989, 1, 7)),                 # the last day of Showa
    ("S50.12.31", date(1975, 12, 31)),
    ("昭和45年6月15日", date(1970, 6, 15)),
    # Spaces for separators, the nearest key on a phone (full-width digits and spaces too).
    ("1990 4 1", date(1990, 4, 1)),
    ("１９９０　４　１", date(1990, 4, 1)),
    ("1990 04 01", date(1990, 4, 1)),
    ("H2 4 1", date(1990, 4, 1)),
    ("平成 2 4 1", date(1990, 4, 1)),
    ("S50 12 31", date(1975, 12, 31)),
])
def test_birth_dates_in_western_and_japanese_era_forms(typed, born):
    assert v.parse_birth_date(typed, TODAY) == born


@pytest.mark.parametrize("typed, why", [
    ("令和99年1月1日", "birth_date_future"),
    ("2000年2月30日", "birth_date_no_such_day"),
    ("平成12年2月30日", "birth_date_no_such_day"),
    ("2001-02-29", "birth_date_no_such_day"),
    ("平成31年5月1日", "birth_date_era"),                 # Reiwa had begun
    ("昭和64年1月8日", "birth_date_era"),                 # Heisei had begun
    ("2030-01-01", "birth_date_future"),
    ("1890-01-01", "birth_date_range"),
    ("2020-01-01", "birth_date_range"),                  # five years old
    ("90/4/1", "birth_date_format"),                     # a two-digit year is ambiguous
    ("大正10年1月1日", "birth_date_format"),
    ("きのう", "birth_date_format"),
    ("", "required"),
])
def test_impossible_birth_dates_are_refused_with_a_reason(typed, why):
    assert code(v.parse_birth_date(typed, TODAY)) == why


@pytest.mark.parametrize("language", ["ja", "en", "easy"])
def test_a_birth_date_out_of_range_says_what_to_check(language):
    """R2.4.1 typed for H2.4.1 makes a six-year-old: the message names the ages and the year and era to check,
    not just "please check"."""
    from bot.forms import error_messages

    result = v.validate(OTARU_FIELDS, {"birth_date": "R2.4.1"}, TODAY)
    assert result.errors["birth_date"].code == "birth_date_range"
    wording = error_messages({"birth_date": result.errors["birth_date"]}, language)["birth_date"]
    assert f"{v.MIN_AGE}" in wording and f"{v.MAX_AGE}" in wording and "平成" in wording


@pytest.mark.parametrize("language", ["ja", "en", "easy"])
def test_the_birth_date_hint_offers_eight_digits_that_pass(language):
    """On a phone's keyboard digits alone are the quickest: the hint says so, and such a date passes."""
    from bot.forms import form_texts

    assert "19900401" in form_texts(language)["hints"]["birth_date"]
    assert v.parse_birth_date("19900401", TODAY) == date(1990, 4, 1)


@pytest.mark.parametrize("language", ["ja", "en", "easy"])
def test_too_long_says_how_long_it_is_now(language):
    """A pasted consultation over the limit: the message says how many characters there are, so the user
    knows how much to cut."""
    from bot.forms import error_messages

    result = v.validate(OTARU_FIELDS, {"consultation": "あ" * 1234}, TODAY)
    wording = error_messages({"consultation": result.errors["consultation"]}, language)["consultation"]
    assert "1000" in wording and "1234" in wording


def test_a_birth_date_reads_back_in_the_japanese_calendar():
    era, year = v.wareki(date(1990, 4, 1))
    assert (era.name, year) == ("平成", 2)
    era, year = v.wareki(date(2019, 5, 1))
    assert (era.name, year) == ("令和", 1)
    assert v.wareki(date(1926, 12, 24)) is None


# -- phone --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("typed, stored", [
    ("090-1234-5678", "090-1234-5678"),
    ("09012345678", "09012345678"),
    ("０１３４－３２－８６８９", "0134-32-8689"),
    ("(0134)32-8689", "0134-32-8689"),
    ("+81 90 1234 5678", "09012345678"),
    ("+81(0)90-1234-5678", "090-1234-5678"),
    ("0120-123-456", "0120-123-456"),
    ("050-1234-5678", "050-1234-5678"),
    ("٠٩٠-١٢٣٤-٥٦٧٨", "090-1234-5678"),                # Arabic-Indic digits
])
def test_japanese_phone_numbers(typed, stored):
    assert v.normalise_phone(typed) == stored


# Invisible characters a phone puts around or inside a number: iOS wraps a number copied from Contacts or the
# Phone app in LEFT-TO-RIGHT OVERRIDE ... POP DIRECTIONAL FORMATTING; pasted text brings zero-width spaces and a
# byte-order mark. The person sees `090-1234-5678` in the field and the message asks for exactly that.
INVISIBLE = [("\u202d", "\u202c"), ("\u2066", "\u2069"), ("\ufeff", ""), ("\u200e", "\u200b")]


@pytest.mark.parametrize("before, after", INVISIBLE)
def test_a_number_pasted_with_invisible_marks_is_the_number_seen(before, after):
    assert v.normalise_phone(f"{before}090-1234-5678{after}") == "090-1234-5678"
    assert v.normalise_phone(f"090{after or before}1234{before}5678") == "09012345678"
    assert v.normalise_seeker_number(f"{before}12345-678901{after}") == "12345-678901"
    assert v.parse_birth_date(f"{before}1990-04-01{after}", date(2026, 12, 1)) == date(1990, 4, 1)
    assert v.parse_birth_date(f"{before}H2.4.1{after}", date(2026, 12, 1)) == date(1990, 4, 1)


@pytest.mark.parametrize("typed", ["1234", "080-1234-567", "0001234567", "03-1234-56789", "+1 212 555 0100",
                                   "090-1234-5678 内線", "ab-cdef-ghij", "0901234567"])
def test_not_a_japanese_phone_number(typed):
    assert code(v.normalise_phone(typed)) == "phone_format"


# -- names ------------------------------------------------------------------------------------------

def test_a_name_is_stored_as_typed():
    assert v.check_name("  髙橋　ｱｷﾗ ") == "髙橋　ｱｷﾗ"     # not NFKC'd: the person's own writing
    assert v.check_name("John Smith") == "John Smith"


@pytest.mark.parametrize("typed", ["😀", "😀😀😀", "👨‍👩‍👧", "🙂 🙂", "★☆", "123"])
def test_an_emoji_or_symbol_only_name_is_refused(typed):
    assert code(v.check_name(typed)) == "name_letters"


def test_name_length_limits():
    assert v.check_name("あ" * v.NAME_MAX) == "あ" * v.NAME_MAX
    result = v.check_name("あ" * (v.NAME_MAX + 1))
    assert code(result) == "too_long" and result.params == {"max": v.NAME_MAX, "length": v.NAME_MAX + 1}
    assert code(v.check_name("")) == "required"
    assert code(v.check_name("山田\x00")) == "text_characters"


@pytest.mark.parametrize("control", ["\u202e", "\u202d", "\u2066", "\u2067", "\u2068", "\u202a"])
def test_text_that_would_show_in_another_order_than_typed_is_refused(control):
    """A right-to-left override makes `山田{RLO}郎太` show as 山田太郎 on the dashboard and in the export."""
    assert code(v.check_name(f"山田{control}郎太")) == "text_characters"
    assert code(v.check_text(f"相談{control}です", v.CONSULTATION_MAX, required=True)) == "text_characters"
    assert v.check_name("Nguyễn Văn An") == "Nguyễn Văn An" and v.check_name("علي") == "علي"


def test_kana_width_is_normalised():
    assert v.normalise_kana("ﾔﾏﾀﾞ ﾀﾛｳ") == "ヤマダ タロウ"
    assert v.normalise_kana("やまだ　たろう") == "やまだ たろう"
    assert code(v.normalise_kana("Yamada")) == "kana_only"
    assert code(v.normalise_kana("山田")) == "kana_only"
    assert code(v.normalise_kana("ア" * (v.KANA_MAX + 1))) == "too_long"


@pytest.mark.parametrize("language", ["ja", "easy", "en"])
def test_a_name_in_the_latin_alphabet_is_told_how_to_write_its_reading(language):
    """`John Smith` typed as the reading is refused (kana only): the hint before and the message after say
    how such a name is written — its sound in katakana, with an example — not just "in kana"."""
    from bot.forms import error_messages, form_texts

    result = v.validate(SAKATA_FIELDS, {"name_kana": "John Smith"}, TODAY)
    assert result.errors["name_kana"].code == "kana_only"
    message = error_messages(result.errors, language)["name_kana"]
    hint = form_texts(language)["hints"]["name_kana"]
    for words in (message, hint):
        assert "ジョン スミス" in words, (language, words)
    assert "in kana in" not in message


# -- the whole form ------------------------------------------------------------------------------------

def sakata_answers(**changes) -> dict[str, str]:
    answers = {"name": "山田 太郎", "name_kana": "やまだ たろう", "seeker_number": "0123456789",
               "phone": "090-1234-5678", "category": "disability", "companion": "interpreter",
               "companion_detail": "手話通訳者1名", "mypage_email_confirmed": "yes"}
    answers.update(changes)
    return answers


def test_a_valid_sakata_form():
    result = v.validate(SAKATA_FIELDS, sakata_answers(), TODAY, SAKATA_CATEGORIES)
    assert result.ok
    assert result.values["seeker_number"] == "01234-56789"
    assert result.values["mypage_email_confirmed"] is True
    assert set(result.values) == set(SAKATA_FIELDS)


def test_only_the_profile_fields_are_taken():
    result = v.validate(SAKATA_FIELDS, {**sakata_answers(), "birth_date": "1990-01-01", "religion": "x"}, TODAY,
                        SAKATA_CATEGORIES)
    assert "birth_date" not in result.values and "religion" not in result.values


def test_each_problem_is_named_by_field():
    result = v.validate(SAKATA_FIELDS, sakata_answers(name="😀", seeker_number="ABC", category="other",
                                                     mypage_email_confirmed=""), TODAY, SAKATA_CATEGORIES)
    assert {k: e.code for k, e in result.errors.items()} == {
        "name": "name_letters", "seeker_number": "seeker_number_format", "category": "choose_one",
        "mypage_email_confirmed": "mypage_email_required"}


def test_otaru_needs_birth_date_and_consultation():
    answers = {"name": "小樽 花子", "name_kana": "おたる はなこ", "birth_date": "H2.4.1", "seeker_number": "01234-5678",
               "phone": "0134-32-8689", "consultation": "応募書類の添削", "companion": "none"}
    result = v.validate(OTARU_FIELDS, answers, TODAY)
    assert result.ok and result.values["birth_date"] == "1990-04-01"
    missing = v.validate(OTARU_FIELDS, {**answers, "consultation": " ", "birth_date": ""}, TODAY)
    assert {k: e.code for k, e in missing.errors.items()} == {"consultation": "required", "birth_date": "required"}


def test_no_companion_means_no_companion_detail_is_kept():
    result = v.validate(SAKATA_FIELDS, sakata_answers(companion="none", companion_detail="母"), TODAY,
                        SAKATA_CATEGORIES)
    assert result.values["companion_detail"] == ""


def test_every_error_code_has_words():
    errors = yaml.safe_load((TEMPLATES_DIR / "forms" / "errors.ja.yaml").read_text(encoding="utf-8"))
    codes = {"required", "too_long", "text_characters", "choose_one", "name_letters", "kana_only",
             "seeker_number_format", "seeker_number_insurance", "birth_date_format", "birth_date_no_such_day",
             "birth_date_era", "birth_date_future", "birth_date_range", "phone_format", "mypage_email_required"}
    assert codes <= set(errors["codes"])
    params = {"max": 1, "length": 2, "month": 2, "day": 30, "era": "平成", "min_age": 15, "max_age": 110}
    for wording in errors["codes"].values():
        assert wording.format(**params)


# -- properties ----------------------------------------------------------------------------------------

@given(st.text(alphabet="0123456789", min_size=5, max_size=5), st.text(alphabet="0123456789", min_size=1, max_size=8))
def test_normalising_a_seeker_number_is_idempotent(head, tail):
    once = v.normalise_seeker_number(head + tail)
    assert once == f"{head}-{tail}" and v.normalise_seeker_number(once) == once


@given(st.dates(min_value=date(1927, 1, 1), max_value=date(2011, 11, 30)))
def test_every_era_readback_parses_to_the_same_day(born):
    era, year = v.wareki(born)
    assert v.parse_birth_date(f"{era.name}{year}年{born.month}月{born.day}日", TODAY) == born
    assert v.parse_birth_date(f"{era.letter}{year}.{born.month}.{born.day}", TODAY) == born
    assert v.parse_birth_date(born.isoformat(), TODAY) == born
