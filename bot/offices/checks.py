"""Checks across a profile's fields: the problems that make it unusable, and the warnings `offices check` shows.

Only the standard library: this module must not import flask, linebot or dialogs.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from bot.offices.fields import _Invalid
from bot.offices.model import (
    NOTICE_DAYS,
    UNCONFIRMED,
    Booking,
    Cancellation,
    ChecklistItem,
    Contact,
    Office,
    Question,
    Schedule,
)
from bot.offices.translations import untranslated


def office_warnings(office: Office) -> list[str]:
    """Values the office still has to confirm (the bot leaves unconfirmed contacts out)."""
    file = Path(office.source_file).name or f"{office.id}.yaml"
    found: list[tuple[str, str]] = []
    for key, contact in (("phone", office.phone), ("email", office.email), ("hours", office.hours)):
        if not contact.confirmed:
            found.append((f"contacts.{key}", _contact_hint(contact)))
    if not office.video_app.confirmed:
        found.append(("video_app.name", "the app is not named in the office's documents"))
    if office.video_app.terms_url and not office.video_app.terms_url_confirmed:
        found.append(("video_app.terms_url", "the URL is not printed in the office's documents"))
    for i, question in enumerate(office.eligibility):
        for j, redirect in enumerate(question.redirects):
            if not redirect.phone.confirmed:
                found.append((f"eligibility[{i}].redirects[{j}].phone", _contact_hint(redirect.phone)))
    if not office.booking.notice.confirmed:
        found.append(("booking.notice", "how the booking deadline is read (kind, "
                      f"{NOTICE_DAYS[office.booking.notice.kind]}, deadline)"))
    if not office.cancellation.confirmed:
        found.append(("cancellation", "how and until when users may cancel"))
    lines = [f"{file}: {where}: {UNCONFIRMED}: {hint}" for where, hint in found]
    lines += [f"{file}: {where}: not translated: the Japanese text is shown" for where in untranslated(office)]
    used_routes = set(office.cancellation.routes) | set(office.cancellation.same_day_routes)
    for route, contact in (("phone", office.phone), ("email", office.email)):
        if route in used_routes and (contact.value is None or not contact.confirmed):
            lines.append(
                f"{file}: cancellation.routes: users cancel by {route}, but contacts.{route} "
                "has no confirmed value to show them"
            )
    return lines


def _contact_hint(contact: Contact) -> str:
    if contact.value is None:
        return "not given in the office's documents; the bot leaves it out"
    return "the bot leaves it out until it is confirmed"


def _category_problems(raw: dict[str, Any], values: dict[str, Any]) -> list[_Invalid]:
    """The form's `category` field offers the office's own `categories`: one without the other is a mistake."""
    fields = values.get("form_fields")
    if fields is None:  # missing or wrong: named already
        return []
    if "category" in fields and "categories" not in raw:
        return [_Invalid("categories", "missing: form_fields has category, so list the choices the form offers "
                         "(each id, text and optional staff_label, sensitive)")]
    if "categories" in raw and "category" not in fields:
        return [_Invalid("categories", "not used: form_fields has no category (add it, or remove categories)")]
    return []


LINE_TEXT_MAX = 5000      # characters in one LINE text message (bot/linetext.py MAX_TEXT)
OFFICE_TEXT_BUDGET = 4000  # the office's words in one message: the rest is for the bot's own (headings, links, steps)
NAME_MAX = 60              # a name the chat repeats in many messages (the office's, its video app's and its terms')
# How the invitation goes (handoff.invitation.how): said in the staff cards and the group's answer to 承認, and on
# the dashboard. A few sentences; about 10,000 characters would make a card bigger than LINE's 30 KB Flex bubble.
HANDOFF_HOW_MAX = 500


def line_length(text: str) -> int:
    """As LINE counts a message's text (bot/linetext.py; the loader imports nothing outside bot.offices): UTF-16
    code units, so an emoji or a rare kanji is two."""
    return len(text.encode("utf-16-le")) // 2


def _name_problems(office: Office) -> list[_Invalid]:
    """The names the chat's messages repeat (the consent step names the video app's terms three times, most
    messages name the office), in each language, and the staff cards' name of the invitation task: unbounded,
    one long name would make those messages too long for LINE (a card's alternative text takes 400)."""
    problems: list[_Invalid] = []
    for language in ("ja", *office.translations):
        o = office.localized(language)
        where = "" if language == "ja" else f"translations.{language}."
        names = [("name", o.name), ("video_app.name", o.video_app.name),
                 ("video_app.terms_name", o.video_app.terms_name)]
        if language == "ja":   # the staff cards' heading (and the card's alternative text): Japanese only
            names.append(("handoff.invitation.label", (office.handoff.get("invitation") or {}).get("label")))
        for path, name in names:
            if name and line_length(name) > NAME_MAX:
                problems.append(_Invalid(where + path, f"{line_length(name)} characters; keep it to at most "
                                         f"{NAME_MAX} (the chat repeats it in many messages)"))
    return problems


def _length_problems(office: Office) -> list[_Invalid]:
    """The office's words that one chat message carries, in each language, must leave room for the bot's own
    within LINE's 5000 characters (counted as LINE counts them), and the names it repeats must be short: a longer
    message would otherwise be cut into several."""
    problems: list[_Invalid] = []
    for language in ("ja", *office.translations):
        o = office.localized(language)
        def at(ja: str, translated: str, language: str = language) -> str:
            """Where the words are written: in the Japanese profile, or in its translation."""
            return ja if language == "ja" else f"translations.{language}.{translated}"

        contacts = [c.note or "" for c in (o.phone, o.email)] + [o.hours.value or ""]
        groups: list[tuple[str, str, list[str]]] = [
            (at("consent_summary", "consent_summary"), "the consent step",
             [*o.consent_summary, o.video_app.terms_name or "", o.summary_notice or ""]),
            (at("notices", "notices"), "the confirmation", [*o.notices, o.after_request, o.cancellation.note,
                                                             o.booking.usage_limit_note, o.documents_route or "",
                                                             *contacts]),
            (at("day_before_notices", "day_before_notices"), "the day-before reminder",
             [*o.day_before_notices, o.cancellation.note, *contacts]),
        ]
        for i, q in enumerate(o.eligibility):
            groups.append((at(f"eligibility[{i}]", f"eligibility.{q.id}"), "the question", [q.text, *q.detail]))
            groups.append((at(f"eligibility[{i}]", f"eligibility.{q.id}"), "the answer when it does not pass",
                           [q.on_fail, q.on_unsure, *(f"{r.topic}{r.window}" for r in q.redirects),
                            *o.other_routes, *contacts]))
        for i, item in enumerate(o.checklist):
            groups.append((at(f"checklist[{i}].text", f"checklist.{item.id}.text"), "the checklist item",
                           [item.text]))
            groups.append((at(f"checklist[{i}].fix", f"checklist.{item.id}.fix"), "the answer to no", [item.fix]))
        for path, message, texts in groups:
            size = sum(line_length(text) + 1 for text in texts if text)
            if size > OFFICE_TEXT_BUDGET:
                problems.append(_Invalid(path, f"{size} characters of the office's words in one chat message "
                                         f"({message}): LINE takes at most {LINE_TEXT_MAX} with the bot's own, so keep "
                                         f"them under {OFFICE_TEXT_BUDGET} (shorten the text, or say the rest on the "
                                         "terms page)"))
    return problems + _name_problems(office) + _handoff_problems(office)


def _handoff_problems(office: Office) -> list[_Invalid]:
    """The staff's words of how the invitation goes: one paragraph of a staff card, kept well inside LINE's
    limits."""
    invitation = office.handoff.get("invitation") or {}
    return [_Invalid(f"handoff.invitation.{key}", f"{line_length(invitation[key])} characters; keep it to at most "
                     f"{HANDOFF_HOW_MAX} (the staff cards and the group's answers carry it)")
            for key in ("how", "how_on_the_day") if line_length(invitation.get(key) or "") > HANDOFF_HOW_MAX]


def _same_day_deadline_problems(booking: Booking | None, schedule: Schedule | None) -> list[_Invalid]:
    """Booking until `deadline` on the session's own day (calendar_days: 0): a session starting before that time
    would have its booking deadline after its start, and the chat and staff would be told a deadline that means
    nothing."""
    if not booking or not schedule or booking.notice.days != 0:
        return []
    early = [start for start in schedule.starts if start < booking.notice.deadline]
    if not early:
        return []
    return [_Invalid("booking.notice.deadline", f"{booking.notice.deadline:%H:%M} on the session's own day "
                     f"(calendar_days: 0) is after the {early[0]:%H:%M} session starts: set calendar_days to 1 or "
                     "more, or a deadline no later than the first start")]


def _cancellation_window_problems(cancellation: Cancellation | None, booking: Booking | None) -> list[_Invalid]:
    """Cancelling in the chat until N days before a session that can be booked at most the window ahead: an N
    as long as the window would offer cancelling on no booking at all, while the chat says it can be done."""
    if not cancellation or not booking or not cancellation.in_chat:
        return []
    days = cancellation.in_chat_until_days_before
    if days >= 7 * booking.window_weeks:
        return [_Invalid("cancellation.in_chat_until_days_before",
                         f"{days} days before a session is longer than the booking window (booking.window_weeks: "
                         f"{booking.window_weeks} weeks, {7 * booking.window_weeks} days): no booking could ever be "
                         "cancelled in the chat (or set in_chat: false)")]
    return []


def _step_id_clashes(eligibility: tuple[Question, ...] | None,
                     checklist: tuple[ChecklistItem, ...] | None) -> list[_Invalid]:
    """Question and checklist ids name the dialog's steps: each must be used once."""
    seen: dict[str, str] = {}
    problems = []
    for section, items in (("eligibility", eligibility or ()), ("checklist", checklist or ())):
        for i, item in enumerate(items):
            where = f"{section}[{i}]"
            if item.id in seen:
                problems.append(_Invalid(f"{where}.id", f"{item.id!r} is already used by {seen[item.id]}"))
            seen.setdefault(item.id, where)
    return problems
