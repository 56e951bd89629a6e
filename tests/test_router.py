"""The router: typed text and postbacks become whitelisted triggers (no Flask, database or network)."""
from __future__ import annotations

import itertools
from datetime import datetime

import pytest
import yaml

from bot.clock import TOKYO
from bot.render import TEMPLATES_DIR, load_labels, load_vocabulary
from dialogs.inputs import Incoming
from dialogs.router import MAX_POSTBACK, Routed, key, normalise, parse_postback, postback, route

AT = datetime(2026, 12, 1, 10, 0, tzinfo=TOKYO)
VOCAB = load_vocabulary("ja")
YES_NO_UNSURE = [("answer:yes", ["はい"]), ("answer:no", ["いいえ"]), ("answer:unsure", ["わからない"])]
CONSENT = [("agree", ["同意する"]), ("disagree", ["同意しない"])]
Q1 = "awaiting_eligibility:0"


def text(value: str) -> Incoming:
    return Incoming(kind="text", event_id="e", at=AT, text=value)


def tap(data: str, **params: str) -> Incoming:
    return Incoming(kind="postback", event_id="e", at=AT, data=data, params=params)


def routed(inp: Incoming, choices=YES_NO_UNSURE, position: str = Q1, office: str = "sakata") -> Routed:
    return route(inp, office=office, position=position, choices=choices, vocab=VOCAB)


# -- normalising --------------------------------------------------------------------------------

@pytest.mark.parametrize("raw,expected", [
    ("１", "1"), ("ＹＥＳ", "yes"), ("ﾊｲ", "ハイ"), ("  はい  ", "はい"), ("はい。", "はい"), ("はい！！", "はい"),
    ("予約\u3000確認", "予約 確認"), ("。", "。"), ("", ""),
    ("1\ufe0f\u20e3", "1"), ("2\u20e3", "2"), ("①", "1"), ("1番", "1"), ("１番目。", "1"), ("2 番", "2"),
    ("番", "番"), ("👍", "👍"),
    ("はい👍", "はい"), ("はい！👍", "はい"), ("はい👍！", "はい"), ("👍🏻", "👍"), ("🙆\u200d♀️", "🙆"), ("はい〜", "はい"),
    ("はい\u200b", "はい"), ("\u200b", ""), ("\u202eはい", "はい"), ("🙇\u200d♀️お願いします", "お願いします"),
    ("一", "1"), ("二番", "2"), ("十二", "12"), ("二十三番目", "23"), ("三つ目", "3"), ("一日", "一日"), ("十分", "十分"),
])
def test_normalise(raw, expected):
    assert normalise(raw) == expected


@pytest.mark.parametrize("language", ["ja", "en", "easy"])
def test_no_two_phrases_of_a_language_share_a_key_unless_written_alike(language):
    """Spaces and katakana do not count when a phrase is matched (`key`): that may merge no two chat words,
    answers or button labels that mean different things, in any language mode (both offices share the labels
    and ask yes / no / unsure). Phrases written alike (the label やめる and the word やめる) were told apart by
    where they are offered before, and still are."""
    phrases = [(normalise(label), f"label:{name}") for name, label in load_labels(language)["buttons"].items()]
    for source in {"ja", language}:
        data = yaml.safe_load((TEMPLATES_DIR / "messages" / source / "vocabulary.yaml").read_text("utf-8"))
        phrases += [(normalise(p), f"{kind}:{meaning}") for kind in ("words", "answers")
                    for meaning, written in data[kind].items() for p in written]
    meanings: dict[str, dict[str, set[str]]] = {}
    for phrase, meaning in phrases:
        meanings.setdefault(key(phrase), {}).setdefault(meaning, set()).add(phrase)
    merged = {k: m for k, m in meanings.items()
              if any(not a & b for a, b in itertools.combinations(m.values(), 2))}
    assert not merged, merged


@pytest.mark.parametrize("language", ["ja", "en", "easy"])
def test_every_button_label_is_read_without_its_spaces_in_katakana_or_decorated(language):
    """やさしい日本語 labels have spaces between words (この ままに する): typed without them, with full-width ones,
    with 。 or an emoji after them, the label still chooses its button."""
    vocab = load_vocabulary(language)
    for name, label in load_labels(language)["buttons"].items():
        choices = [("week:x", [label])]
        for typed in {label.replace(" ", ""), label.replace(" ", "\u3000"), f"{label}。", f"{label}🙏",
                      f" {label.replace(' ', '')}！"}:
            got = route(text(typed), office="sakata", position="p", choices=[], vocab=vocab, aliases=choices)
            assert got == Routed("turn_week", value="x", method="text"), (name, typed, got)


@pytest.mark.parametrize("typed,trigger", [("ヨヤク", "start"), ("ヨヤクカクニン", "show_bookings"), ("モドル", "back"),
                                           ("サイショカラ", "restart"), ("ヤメル", "stop"), ("きゃんせる", "show_bookings"),
                                           ("ヘルプ😢", "help"), ("予約確認\u200b", "show_bookings")])
def test_a_chat_word_in_the_other_kana_or_with_an_emoji_is_that_word(typed, trigger):
    assert routed(text(typed), [], "idle").trigger == trigger


@pytest.mark.parametrize("typed,near", [("へるぶ", "help"), ("ヘルブ", "help"), ("予約確任", "status"), ("englsh", "lang_en"),
                                        ("Engilsh", "lang_en"), ("でーたさくじよ", "delete_data"),
                                        ("さいしよから", "restart"), ("予約確認を", "status"), ("日本後", "lang_ja")])
def test_a_chat_word_mistyped_is_suggested_and_not_acted_on(typed, near):
    for choices, position in ((YES_NO_UNSURE, Q1), ([], "idle"), (CONSENT, "awaiting_consent")):
        assert routed(text(typed), choices, position) == Routed("typed", value=typed, extra={"near": near})


@pytest.mark.parametrize("typed", ["明日の午後がいいです", "ありがとう", "よろしくお願いします", "hello", "step", "look",
                                   "hepl", "予約かな", "中正", "やめます", "a" * 300, "よやくかくにんかくにん"])
def test_text_near_no_chat_word_or_near_two_suggests_nothing(typed):
    """Short words differ by one letter from many others (step / stop), and a sentence is not a word."""
    for language in ("ja", "en", "easy"):
        got = route(text(typed), office="sakata", position=Q1, choices=YES_NO_UNSURE, vocab=load_vocabulary(language))
        assert got.trigger in ("typed", "miss") and "near" not in got.extra, (language, got)


# -- chat words -----------------------------------------------------------------------------------

@pytest.mark.parametrize("word,trigger", [
    ("予約", "start"), ("よやく", "start"), ("予約確認", "show_bookings"), ("ヘルプ", "help"), ("戻る", "back"),
    ("最初から", "restart"), ("中止", "stop"), ("データ削除", "delete_data"), ("English", "switch_language"),
    ("キャンセル", "show_bookings"), ("キャンセルしたい", "show_bookings"),   # what may be cancelled, and how
    ("予約かくにん", "show_bookings"), ("よやく確認", "show_bookings"),   # half converted, as a phone's IME leaves it
])
def test_chat_words_work_at_any_position(word, trigger):
    for position, choices in ((Q1, YES_NO_UNSURE), ("awaiting_consent", CONSENT), ("idle", [])):
        assert routed(text(word), choices, position).trigger == trigger


@pytest.mark.parametrize("typed,trigger", [
    ("予約をお願いします", "start"), ("予約お願いします。", "start"), ("予約したいです", "start"),
    ("予約します", "start"), ("予約確認をお願いします", "show_bookings"), ("中止します", "stop"),
    ("ヘルプをお願いします", "help"), ("最初からお願いします", "restart"),
])
def test_a_chat_word_said_politely_is_that_word(typed, trigger):
    """An older user writes a sentence, not a command: a polite ending (です, します, をお願いします)
    around a chat word changes nothing."""
    assert routed(text(typed), YES_NO_UNSURE).trigger == trigger
    assert routed(text(typed), [], "idle").trigger == trigger


@pytest.mark.parametrize("typed,trigger", [("予約\u3000確認", "show_bookings"), ("予 約", "start"), ("ヘ ル プ", "help"),
                                           ("データ 削除", "delete_data"), ("予約 を お願いします", "start")])
def test_a_chat_word_typed_with_spaces_inside_is_that_word(typed, trigger):
    assert routed(text(typed), [], "idle").trigger == trigger


@pytest.mark.parametrize("typed,value", [("はいです", "yes"), ("いいえです。", "no"), ("1です", "yes"),
                                         ("２番でお願いします", "no"), ("わからないです", "unsure")])
def test_a_choice_said_politely_is_that_choice(typed, value):
    assert routed(text(typed)) == Routed("answer", value=value, method="text")


@pytest.mark.parametrize("typed,value", [("はい、済んでいます", "yes"), ("はい、大丈夫です。", "yes"), ("いいえ まだです", "no"),
                                         ("いいえ、していません", "no"), ("はい,できます", "yes"),
                                         # Otaru asks 「次のいずれかにあたりますか」: answered in its own verb
                                         ("あたりません", "no"), ("いいえ、当たりません", "no"), ("いいえ、違います", "no"),
                                         ("あたります", "yes"), ("はい、当たります", "yes")])
def test_an_answer_said_twice_in_one_sentence_is_that_answer(typed, value):
    assert routed(text(typed)) == Routed("answer", value=value, method="text")


@pytest.mark.parametrize("typed", ["はい、でもまだです", "はい、いいえ", "はい、わかりません", "同意する、はい"])
def test_a_sentence_whose_parts_disagree_or_mean_nothing_chooses_nothing(typed):
    assert routed(text(typed)).trigger in ("miss", "typed")
    assert routed(text(typed), CONSENT, "awaiting_consent").trigger in ("miss", "typed")


@pytest.mark.parametrize("typed", ["です", "お願いします", "します"])
def test_a_polite_ending_alone_is_not_a_word(typed):
    assert routed(text(typed)).trigger in ("miss", "typed")


def test_chat_words_win_over_choices_with_the_same_label():
    choices = [("resume:continue", ["続きから"]), ("resume:fresh", ["最初から"])]
    assert routed(text("最初から"), choices).trigger == "restart"
    assert routed(text("続きから"), choices) == Routed("resume", value="continue", method="text")


# -- choices --------------------------------------------------------------------------------------

@pytest.mark.parametrize("typed,value", [
    ("1", "yes"), ("１", "yes"), ("2", "no"), ("3", "unsure"), ("はい", "yes"), ("ハイ", "yes"), ("yes", "yes"),
    ("ok", "yes"), ("OK", "yes"), ("はい。", "yes"), ("いいえ", "no"), ("No", "no"), ("わからない", "unsure"),
    ("分かりません", "unsure"), ("1\ufe0f\u20e3", "yes"), ("2番", "no"),
    ("一", "yes"), ("二番", "no"), ("三つ目", "unsure"), ("はい👍", "yes"), ("👍", "yes"), ("👍🏽", "yes"),
    ("🙆\u200d♂️", "yes"), ("いいえ🙅", "no"), ("🙅", "no"), ("はい〜", "yes"), ("ワカラナイ", "unsure"),
    ("イイエ。", "no"), ("はい\u200b", "yes"),
])
def test_a_choice_by_number_label_or_variant(typed, value):
    assert routed(text(typed)) == Routed("answer", value=value, method="text")


@pytest.mark.parametrize("typed", ["0", "4", "10", "-1", "1.5", "1" * 5000, "０" * 4400 + "1", "1" * 4400 + "番",
                                   "\U00010a40", "\U00010a40" * 3])
def test_a_number_outside_the_choices_is_a_miss(typed):
    assert routed(text(typed)).trigger in ("miss", "typed")
    assert routed(text(typed)).trigger != "answer"


def test_a_synonym_only_chooses_what_is_offered():
    yes_no = YES_NO_UNSURE[:2]
    assert routed(text("わからない"), yes_no).trigger == "typed"


def test_free_text_is_typed_and_empty_text_is_a_miss():
    assert routed(text("明日の午後がいいです")) == Routed("typed", value="明日の午後がいいです")
    assert routed(text("   ")).trigger == "miss"


PAGE = [("slot:2026-12-09T10:00:00+09:00", ["12/9(水) 10:00"]), ("week:prev", ["前へ"]), ("week:next", ["次へ"])]
WEEK_WORDS = [("week:1", ["次の週"]), ("week:-1", ["前の週"]), ("week:1", ["次へ"])]


@pytest.mark.parametrize("typed,expected", [
    ("次の週", Routed("turn_week", value="1", method="text")),
    ("前の週", Routed("turn_week", value="-1", method="text")),
    ("次へ", Routed("turn_week", value="next", method="text")),      # the page's own button comes first
    ("3", Routed("turn_week", value="next", method="text")),
    ("4", Routed("miss")),                                          # aliases have no number
])
def test_aliases_are_chosen_by_their_labels_never_by_number(typed, expected):
    assert route(text(typed), office="sakata", position="awaiting_slot:1:2", choices=PAGE, vocab=VOCAB,
                 aliases=WEEK_WORDS) == expected


# -- consent --------------------------------------------------------------------------------------

@pytest.mark.parametrize("typed", ["同意する", "同意する。", " 同意する "])
def test_consent_by_the_exact_words(typed):
    assert routed(text(typed), CONSENT, "awaiting_consent") == Routed("agree", method="text")


@pytest.mark.parametrize("typed", ["1", "１", "2", "ok", "はい", "yes", "同意", "同意します", "どういする", "ドウイスル",
                                   "同意スル", "同意 する", "一", "👍", "はい👍",
                                   "同意するです", "1です", "同意をお願いします"])
def test_nothing_else_typed_consents_or_declines(typed):
    assert routed(text(typed), CONSENT, "awaiting_consent").trigger in ("miss", "typed")


def test_declining_by_its_label():
    assert routed(text("同意しない"), CONSENT, "awaiting_consent").trigger == "disagree"


# -- postbacks ------------------------------------------------------------------------------------

def test_a_button_offered_here_fires_its_trigger():
    data = postback("answer", Q1, "sakata", "yes")
    assert routed(tap(data)) == Routed("answer", value="yes", method="button")


def test_a_button_from_another_step_or_office_is_stale():
    assert routed(tap(postback("answer", "awaiting_eligibility:1", "sakata", "yes"))).trigger == "stale"
    assert routed(tap(postback("answer", Q1, "otaru", "yes"))).trigger == "stale"


@pytest.mark.parametrize("data", ["", "garbage", "a=answer", "a=unknown&at=x&o=sakata", "a=answer&a=agree",
                                  "x" * (MAX_POSTBACK + 1), "a=%ZZ"])
def test_malformed_postbacks_are_stale(data):
    assert routed(tap(data)).trigger == "stale"


def test_parse_postback_accepts_only_known_actions():
    assert parse_postback(postback("agree", "awaiting_consent", "sakata", "2023-11-01"))["v"] == "2023-11-01"
    assert parse_postback("a=drop_table&at=idle&o=sakata") is None


def test_rich_menu_word_buttons_carry_chat_words():
    assert routed(tap(postback("word", "any", "sakata", "book"))).trigger == "start"
    assert routed(tap(postback("word", "any", "sakata", "rm -rf"))).trigger == "stale"


def test_postback_data_longer_than_line_allows_is_refused():
    with pytest.raises(ValueError):
        postback("answer", Q1, "sakata", "x" * MAX_POSTBACK)


@pytest.mark.parametrize("kind", ["sticker", "location"])
def test_stickers_and_locations_are_unsupported(kind):
    assert routed(Incoming(kind=kind, event_id="e", at=AT)) == Routed("unsupported", value=kind)


def test_media_names_its_type():
    inp = Incoming(kind="media", event_id="e", at=AT, media_type="image")
    assert routed(inp) == Routed("unsupported", value="image")
