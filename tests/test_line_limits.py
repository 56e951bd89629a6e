"""Every message the bot sends is one the real LINE Messaging API accepts, for every office, every language and
the longest words an office profile may carry.

The checker is LINE's documented limits (bot/simulator/validate.py, which the tests' fake and the dev simulator
answer 400 with). Each message is rendered with every sample of tests/test_languages.py (each branch of each
template: the dialog's, the pushes and the staff cards), in Japanese, English and easy Japanese:

* for the shipped profiles as they are;
* for the "longest" profiles: one part of a profile at a time (its notices, its eligibility questions, its
  contacts, ... and each translation's) has every one of its words lengthened by as much as the profile checks
  (bot/offices/checks.py) still accept, the office's limit found from what the checks say when it is exceeded;
* with the longest lists a message carries: a page of the most slots shown (PAGE_SLOTS) with both page turns,
  and 予約確認 with its ten bookings (LIST_LIMIT), each one that must be cancelled by phone; and a new terms
  version's longest summary (TERMS_SUMMARY_MAX) in the terms notice, and in the consent step the most it says of
  what changed (CHANGES_SHOWN versions' summaries, TERMS_SUMMARY_MAX characters together, older ones left out).

The staff group's cards, decline questions and answers are rendered for every kind, button and outcome, with
the longest office name and id, handoff wording and dashboard URL.
"""
from __future__ import annotations

import re
from dataclasses import replace
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.config import DEFAULT_OFFICES_DIR
from bot.linetext import line_length
from bot.offices import TERMS_SUMMARY_MAX, Office, ProfileError
from bot.offices.checks import HANDOFF_HOW_MAX, NAME_MAX
from bot.offices.reading import read_office
from bot.render import LANGUAGES, MAX_QUICK_REPLY, Renderer, RenderError
from bot.services.bookings import LIST_LIMIT
from bot.services.slots import PAGE_SLOTS, slot_label
from bot.services.terms import CHANGES_SHOWN
from bot.simulator.validate import MAX_LABEL, validate_messages
from dialogs.effects import Choice
from dialogs.router import postback
from tests.test_languages import all_samples
from tests.test_templates import AT, BASE_URL, booking, week

PROFILES = sorted(DEFAULT_OFFICES_DIR.glob("*.yaml"))
FILL = "字"
UNBOUNDED = 3000                                       # how much longer words no check bounds are made
LONGEST_ID = "o" * 32                                  # OFFICE_ID_MAX: the longest office id postback data carries
_WORDS = re.compile(r"[^\x00-\x7f]| ")                 # a profile's words: Japanese, or English with spaces
_NOT_WORDS = re.compile(r"^(https?://|[\w.+-]+@)")     # URLs and addresses are not lengthened
_SIZE = re.compile(r"^.*?(?P<size>\d+) characters")


def lengthen(node: Any, k: int) -> Any:
    """`node` (a part of a profile) with each of its words `k` characters longer."""
    if isinstance(node, dict):
        return {key: lengthen(value, k) for key, value in node.items()}
    if isinstance(node, list):
        return [lengthen(value, k) for value in node]
    if isinstance(node, str) and _WORDS.search(node) and not _NOT_WORDS.match(node):
        return node + FILL * k
    return node


def _load(raw: dict, part: tuple[str, ...], k: int, folder: Path) -> Office | ProfileError:
    data = dict(raw)
    if part[0] == "translations":
        translation = dict(data["translations"][part[1]])
        translation[part[2]] = lengthen(translation[part[2]], k)
        data["translations"] = {**data["translations"], part[1]: translation}
    else:
        data[part[0]] = lengthen(data[part[0]], k)
    path = folder / f"{raw['id']}.yaml"
    path.write_text(yaml.dump(data, Dumper=yaml.CSafeDumper, allow_unicode=True), encoding="utf-8")
    try:
        return read_office(path)
    except ProfileError as exc:
        return exc


def _sizes(refused: ProfileError) -> dict[str, int]:
    """What the checks counted, by the problem they name (`<file>: notices: N characters ...`: 4321)."""
    sizes = {}
    for problem in refused.problems:
        match = _SIZE.match(problem)
        assert match, f"a profile check that gives no size: {problem}"
        sizes[re.sub(r"\d+ characters", "N characters", problem)] = int(match["size"])
    return sizes


def longest(raw: dict, part: tuple[str, ...], folder: Path) -> tuple[Office, int]:
    """The office with `part`'s words lengthened as far as the profile checks accept, and by how much.

    Every word grows by k, so what a check counts grows by (words it counts) * k: two refused lengths give each
    check's line, and the least k any check still accepts is the longest. Words no check bounds grow by UNBOUNDED
    (a message carrying them then shows it)."""
    low, high = 20_000, 40_000
    at_low, at_high = _load(raw, part, low, folder), _load(raw, part, high, folder)
    if isinstance(at_high, Office):   # no check bounds these words (none a message carries, or a mistake)
        return _load(raw, part, UNBOUNDED, folder), UNBOUNDED
    assert isinstance(at_low, ProfileError)
    one, two = _sizes(at_low), _sizes(at_high)
    fits = []
    for where, size in two.items():
        per_k = (size - one[where]) / (high - low)
        limit = int((re.search(r"under (\d+)", where) or re.search(r"at most (\d+)", where)).group(1))
        fits.append(int((limit - (one[where] - per_k * low)) // per_k))
    k = max(0, min(fits))
    office = _load(raw, part, k, folder)
    assert isinstance(office, Office), f"{raw['id']}: {'.'.join(part)} lengthened by {k}: {office}"
    return office, k


def parts(raw: dict) -> list[tuple[str, ...]]:
    """The parts of a profile with words of their own: top-level keys, and each translation's."""
    def has_words(node: Any) -> bool:
        return lengthen(node, 1) != node

    out = [(key,) for key, value in raw.items() if key not in ("translations", "id") and has_words(value)]
    for language, translation in (raw.get("translations") or {}).items():
        out += [("translations", language, key) for key, value in translation.items() if has_words(value)]
    return out


def _raw(path: Path) -> dict:
    return yaml.load(path.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)


CASES = [(path.stem, part) for path in PROFILES for part in parts(_raw(path))]


# -- rendering and checking ---------------------------------------------------------------------------

def problems(office: Office, languages=LANGUAGES) -> list[str]:
    """What LINE would refuse among every sample message of `office` in `languages` (one line each)."""
    found = []
    globals_ = {"office": office, "public_base_url": BASE_URL, "terms_url": f"{BASE_URL}/terms/{office.id}"}
    for name, var_sets in {**all_samples(office), **worst_samples(office)}.items():
        for i, vars in enumerate(var_sets):
            for language in languages:
                choices = worst_choices(office, language, name, vars)
                if len(choices) > MAX_QUICK_REPLY:   # the renderer would drop the last (a page turn)
                    found.append(f"{name}[{i}] {language}: {len(choices)} buttons, LINE shows {MAX_QUICK_REPLY}")
                try:
                    messages = Renderer({}).messages(language, name, {**globals_, **vars}, choices)
                except RenderError as exc:   # the bot would send nothing: the user is stuck at that step
                    found.append(f"{name}[{i}] {language}: {exc}")
                    continue
                # A reply's messages past the fifth are pushed, five a call (bot/outbox.py `to_user`).
                found += [f"{name}[{i}] {language}: {d['property']}: {d['message']}"
                          for at in range(0, len(messages), 5) for d in validate_messages(messages[at:at + 5])]
    return found


def worst_samples(office: Office) -> dict[str, list[dict[str, Any]]]:
    """The longest lists a message carries."""
    full = week(days=7)
    starts = [AT + timedelta(days=d, minutes=30 * n) for d in range(3) for n in range(4)][:PAGE_SLOTS]
    full["slots"] = [{"start": at.isoformat(), "label": slot_label(at), "at": at} for at in starts]
    full.update(page=1, pages=3, parts=2, part=2, prev_is_week=False, next_is_week=False)
    calls = [{**booking("confirmed", "call", ("phone", "email")), "same_day": n % 2 == 0} for n in range(LIST_LIMIT)]
    proposals = [booking("proposed", "proposal") for _ in range(LIST_LIMIT)]
    summary = "改" * TERMS_SUMMARY_MAX   # the longest summary of a new terms version (bot/services/terms.py)
    # The most a consent prompt says of what changed (bot/services/terms.py `changes_since`): summaries of at
    # most TERMS_SUMMARY_MAX characters together, of CHANGES_SHOWN versions each labelled, and older ones left out.
    sizes = [1] * (CHANGES_SHOWN - 1) + [TERMS_SUMMARY_MAX - (CHANGES_SHOWN - 1)]   # oldest first, the newest last
    changes = [{"version": f"2027-{n + 1:02d}-01", "summary": "改" * size} for n, size in enumerate(sizes)]
    consent = dict(version="2027-04-01", terms_url=f"{BASE_URL}/terms/{office.id}", reconsent=True, brief=False,
                   changes=changes, earlier_changes=True, open_booking=booking(), resuming=True,
                   upcoming={"version": "2027-06-01", "summary": summary,
                             "url": f"{BASE_URL}/terms/{office.id}/2027-06-01"})
    return {"slots": [dict(page=full)], "bookings": [dict(bookings=calls, in_progress=True),
                                                       dict(bookings=proposals, in_progress=False)],
            "consent": [consent], "terms_updated": [dict(version="2027-04-01", summary=summary, in_force=f)
                                                    for f in (False, True)]}


def worst_choices(office: Office, language: str, name: str, vars: dict[str, Any]) -> tuple[Choice, ...]:
    """The quick-reply buttons the dialog gives the message at its longest (a slot page's: every slot and both
    turns, as dialogs/machine.py `offered` builds them, with the longest office id)."""
    if name != "slots" or not vars["page"]["slots"]:
        return (Choice(label_key="yes", data=postback("answer", "awaiting_checklist:9", LONGEST_ID, "yes")),)
    at = "awaiting_slot:8:2"
    return tuple([Choice(label=s["label"], data=postback("slot", at, LONGEST_ID, s["start"]))
                  for s in vars["page"]["slots"]]
                 + [Choice(label_key=key, data=postback("week", at, LONGEST_ID, value))
                    for value, key in (("prev", "prev_page"), ("next", "next_page"))])


@lru_cache(maxsize=None)
def shipped(stem: str) -> Office:
    return read_office(DEFAULT_OFFICES_DIR / f"{stem}.yaml")


@pytest.mark.parametrize("stem", [p.stem for p in PROFILES])
def test_every_message_of_the_shipped_profiles_is_one_line_accepts(stem):
    assert problems(shipped(stem)) == []


@pytest.mark.parametrize("stem,part", CASES, ids=lambda v: v if isinstance(v, str) else ".".join(v))
def test_every_message_is_accepted_with_the_longest_words_a_profile_may_have(stem, part, tmp_path):
    office, k = longest(_raw(DEFAULT_OFFICES_DIR / f"{stem}.yaml"), part, tmp_path)
    languages = (part[1],) if part[0] == "translations" else LANGUAGES
    assert problems(office, languages) == [], f"{'.'.join(part)}: each word {k} characters longer"


# -- a text over LINE's 5,000 is sent as several ---------------------------------------------------

def _bookings_of(n: int, note: str) -> list[dict]:
    office = shipped("otaru")
    office = replace(office, cancellation=replace(office.cancellation, note=note))
    calls = [booking()] + [booking("confirmed", "call", ("phone",)) for _ in range(n - 1)]   # one to withdraw
    globals_ = {"office": office, "public_base_url": BASE_URL, "terms_url": f"{BASE_URL}/terms/{office.id}"}
    return Renderer({}).messages("ja", "bookings", {**globals_, "bookings": calls, "in_progress": False})


def test_a_text_over_5000_is_split_at_its_paragraphs_keeping_every_word_and_the_buttons_on_the_last():
    """予約確認 of ten bookings to cancel by phone, each with the office's 1,000-character cancellation note (the
    profile checks allow it): one text would be over 5,000 and LINE would refuse it (the user would see nothing)."""
    one = _bookings_of(1, "連絡" * 500)
    assert len(one) == 1
    messages = _bookings_of(10, "連絡" * 500)
    assert all(validate_messages(messages[i:i + 5]) == [] for i in range(0, len(messages), 5))   # as the outbox sends
    assert len(messages) > 1 and all(m["type"] == "text" for m in messages)
    assert ["quickReply" in m for m in messages] == [False] * (len(messages) - 1) + [True]
    assert all(not m["text"].startswith("\n") and not m["text"].endswith("\n") and m["text"].strip()
               for m in messages)
    # Split between lines only: every line of the whole is a line of one part.
    whole = "\n".join(m["text"] for m in messages)
    assert whole.count("連絡" * 500) == 9 and whole.count("受付番号") == 10
    for m in messages[:-1]:
        assert line_length(m["text"]) <= 5000


def test_a_text_of_emoji_is_split_by_lines_count_of_utf16_units():
    """🍎 counts two to LINE: 3,000 of them on 30 lines are 6,000 units, two messages."""
    lines = "\n".join("🍎" * 100 for _ in range(30))
    messages = Renderer({}).split_long_texts([{"type": "text", "text": lines}])
    assert [line_length(m["text"]) for m in messages] == [200 * 24 + 23, 200 * 6 + 5]


# -- the staff group's cards and answers ------------------------------------------------------------------

STAFF_KINDS = ("new_request", "withdrawn", "cancelled", "expired", "proposal_accepted", "proposal_declined",
               "undecided", "invitation", "no_show_check", "something_new")
OUTCOMES = ("done", "already", "kept", "failed", "not_found", "started", "refused_online", "user_blocked", "same_number",
            "awaiting_user", "too_early", "too_early_no_show", "changed")
LONG_BASE_URL = "https://" + "madoguchi-" * 20 + ".example.jp"   # a long PUBLIC_BASE_URL (about 200 characters)


def staff_office(stem: str) -> Office:
    """The office with a name as long as the checks allow and the longest handoff wording staff are shown."""
    office = shipped(stem)
    how = ("招待メールを送ってください。" * HANDOFF_HOW_MAX)[:HANDOFF_HOW_MAX]   # as long as the checks allow
    return replace(office, id=LONGEST_ID, name="窓" * NAME_MAX,
                   handoff={**office.handoff, "invitation": {"label": "招" * NAME_MAX, "how": how}})


def staff_samples(office: Office) -> list[tuple[str, dict[str, Any]]]:
    from bot.notify import CARD_BUTTONS, staff_postback_data, staff_statuses
    from bot.staff import handoff

    view = {"reference": "ABCD-EFGH", "at": AT, "label": slot_label(AT), "status": "requested"}
    url = f"{LONG_BASE_URL}/staff/bookings/ABCD-EFGH"
    reasons = handoff.decline_reasons("ja")
    common = {"office": office, "statuses": staff_statuses(), "dashboard_url": url,
              "invitation": handoff.invitation_task(office), "call_task": True}
    out = []
    for kind in STAFF_KINDS:
        for elsewhere in (False, True):
            buttons = [{"action": a, "data": staff_postback_data(office.id, a, "ABCD-EFGH")}
                       for a in CARD_BUTTONS.get(kind, ("confirm", "decline")) if not (elsewhere and a == "confirm")]
            out.append(("staff_card", {**common, "kind": kind, "booking": view, "buttons": buttons,
                                       "deadline": {"label": slot_label(AT), "at": AT, "passed": True},
                                       "decline_label": max((r["label"] for r in reasons.values()), key=len),
                                       "booked_elsewhere": elsewhere}))
    for key, reason in reasons.items():
        for reachable in (True, False):
            out.append(("staff_decline_confirm", {**common, "booking": view, "reason_label": reason["label"],
                                                  "reachable": reachable,
                                                  "yes_data": staff_postback_data(office.id, "decline_yes",
                                                                                  "ABCD-EFGH", y=key),
                                                  "no_data": staff_postback_data(office.id, "decline_no",
                                                                                 "ABCD-EFGH")}))
    for outcome in OUTCOMES:
        for action in ("confirm", "decline", "attended", "no_show"):
            for status in ("requested", "confirmed", "attended", "withdrawn"):
                out.append(("staff_group_reply", {**common, "outcome": outcome, "action": action,
                                                  "reference": "ABCD-EFGH", "booking": {**view, "status": status},
                                                  "late": {"label": slot_label(AT), "passed": True},
                                                  "told": False}))
    return out


@pytest.mark.parametrize("stem", [p.stem for p in PROFILES])
def test_every_staff_card_and_answer_is_one_line_accepts(stem):
    office = staff_office(stem)
    found = []
    for i, (template, vars) in enumerate(staff_samples(office)):
        messages = Renderer({}).messages("ja", template, vars)
        found += [f"{template}[{i}]: {d['property']}: {d['message']}" for d in validate_messages(messages)]
    assert found == []


def test_every_label_of_the_shipped_handoff_settings_fits_a_line_button():
    """The staff's names of the invitation task in templates/staff/handoff.yaml (each office's and the default)
    are kept within LINE's 20 characters for an action label, so that one may name a button as it is."""
    from bot.staff import handoff

    settings = yaml.safe_load((handoff.TEMPLATES_DIR / "staff" / "handoff.yaml").read_text(encoding="utf-8"))
    labels = {office: entry["invitation"]["label"] for office, entry in settings.items()
              if "label" in (entry.get("invitation") or {})}
    assert {"_default", "sakata", "otaru"} <= set(labels)
    assert {office: label for office, label in labels.items() if line_length(label) > MAX_LABEL} == {}
