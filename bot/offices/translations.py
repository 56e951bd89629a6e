"""The profile's `translations` section: reading its overlays, and naming the wording they leave in Japanese.

Only the standard library: this module must not import flask, linebot or dialogs.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bot.offices.fields import _at, _each, _fields, _Invalid, _text, _texts
from bot.offices.model import TRANSLATED_LANGUAGES, Office, Question

# `translations.<language>` mirrors the translatable wording of the profile. Lists must have as many lines as the
# Japanese (a translation never drops a line of the office's wording); questions and items are keyed by id.


def _same_length(texts: tuple[str, ...], japanese: tuple[Any, ...], path: str) -> tuple[str, ...]:
    if len(texts) != len(japanese):
        raise _Invalid(path, f"has {len(texts)} lines; the Japanese has {len(japanese)}")
    return texts


def _translated_question(value: Any, path: str, question: Question) -> dict[str, Any]:
    raw = _fields(value, path, ("text",), ("detail", "on_fail", "on_unsure", "redirects"))
    out: dict[str, Any] = {"text": _text(raw["text"], _at(path, "text"))}
    if "detail" in raw:
        out["detail"] = _same_length(_texts(raw["detail"], _at(path, "detail")), question.detail, _at(path, "detail"))
    for key in ("on_fail", "on_unsure"):
        if key in raw:
            out[key] = _text(raw[key], _at(path, key))
    if "redirects" in raw:
        def redirect(item: Any, item_path: str) -> dict[str, str]:
            fields = _fields(item, item_path, ("topic", "window"))
            return {"topic": _text(fields["topic"], _at(item_path, "topic")),
                    "window": _text(fields["window"], _at(item_path, "window"))}

        items = _each(raw["redirects"], _at(path, "redirects"), redirect)
        out["redirects"] = _same_length(items, question.redirects, _at(path, "redirects"))
    return out


def _translated_item(value: Any, path: str) -> dict[str, str]:
    raw = _fields(value, path, ("text", "fix"))
    return {"text": _text(raw["text"], _at(path, "text")), "fix": _text(raw["fix"], _at(path, "fix"))}


def _by_id(value: Any, path: str, steps: tuple[Any, ...], read: Callable[[Any, str, Any], dict]) -> dict[str, dict]:
    known = {step.id: step for step in steps}
    raw = _fields(value, path, (), tuple(known))
    return {step_id: read(item, _at(path, step_id), known[step_id]) for step_id, item in raw.items()}


def _translation(value: Any, path: str, values: dict[str, Any]) -> dict[str, Any]:
    raw = _fields(value, path, (), (
        "name", "formal_name", "controller", "contacts", "other_routes", "video_app", "eligibility", "checklist",
        "consent_summary", "notices", "day_before_notices", "after_request", "booking", "cancellation",
        "documents_route", "terms_changes", "summary_notice", "categories"))
    out: dict[str, Any] = {}
    for key in ("name", "formal_name", "controller", "after_request", "documents_route", "terms_changes",
                "summary_notice"):
        if key in raw:
            out[key] = _text(raw[key], _at(path, key))
    for key in ("other_routes", "consent_summary", "notices", "day_before_notices"):
        if key in raw:
            out[key] = _same_length(_texts(raw[key], _at(path, key)), values[key], _at(path, key))
    if "contacts" in raw:
        contacts = _fields(raw["contacts"], _at(path, "contacts"), (), ("phone", "email", "hours"))
        out["contacts"] = {}
        for name, contact in contacts.items():
            where = _at(_at(path, "contacts"), name)
            fields = _fields(contact, where, (), ("note", "value") if name == "hours" else ("note",))
            out["contacts"][name] = {k: _text(v, _at(where, k)) for k, v in fields.items()}
    for key, allowed in (("video_app", ("name",)), ("booking", ("usage_limit_note",)), ("cancellation", ("note",))):
        if key in raw:
            fields = _fields(raw[key], _at(path, key), (), allowed)
            out[key] = {k: _text(v, _at(_at(path, key), k)) for k, v in fields.items()}
    if "eligibility" in raw:
        out["eligibility"] = _by_id(raw["eligibility"], _at(path, "eligibility"), values["eligibility"],
                                    _translated_question)
    if "categories" in raw:
        out["categories"] = _by_id(raw["categories"], _at(path, "categories"), values["categories"],
                                   lambda v, p, _category: {"text": _text(v, p)})
    if "checklist" in raw:
        out["checklist"] = _by_id(raw["checklist"], _at(path, "checklist"), values["checklist"],
                                  lambda v, p, _item: _translated_item(v, p))
    return out


def _translations(value: Any, path: str, values: dict[str, Any]) -> dict[str, dict[str, Any]]:
    raw = _fields(value, path, (), TRANSLATED_LANGUAGES)
    return {language: _translation(overlay, _at(path, language), values) for language, overlay in raw.items()}


def untranslated(office: Office) -> list[str]:
    """Field paths of user-facing wording that a chat language shows in Japanese (no translation given)."""
    missing: list[str] = []
    for language in TRANSLATED_LANGUAGES:
        overlay = office.translations.get(language, {})
        base = f"translations.{language}"
        for key in ("name", "formal_name", "controller", "other_routes", "consent_summary", "after_request"):
            if key not in overlay:
                missing.append(f"{base}.{key}")
        for key in ("notices", "day_before_notices"):
            if getattr(office, key) and key not in overlay:
                missing.append(f"{base}.{key}")
        for key, items in (("eligibility", office.eligibility), ("checklist", office.checklist),
                           ("categories", office.categories)):
            given = overlay.get(key, {})
            missing += [f"{base}.{key}.{item.id}" for item in items if item.id not in given]
        optional = (("documents_route", office.documents_route), ("terms_changes", office.terms_changes),
                    ("summary_notice", office.summary_notice),
                    ("booking.usage_limit_note",
                    office.booking.usage_limit_note), ("cancellation.note", office.cancellation.note),
                    ("contacts.phone.note", office.phone.confirmed and office.phone.note),
                    ("contacts.email.note", office.email.confirmed and office.email.note),
                    ("contacts.hours.value", office.hours.confirmed and office.hours.value))
        for path, japanese in optional:
            *sections, key = path.split(".")
            holder = overlay
            for section in sections:
                holder = holder.get(section, {})
            if japanese and key not in holder:
                missing.append(f"{base}.{path}")
    return missing
