"""Office data for the staff handoff: per-office settings and the reasons staff may give when declining."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from bot.linetext import line_length
from bot.offices.checks import HANDOFF_HOW_MAX, NAME_MAX

TEMPLATES_DIR = Path(__file__).resolve().parent.parent.parent / "templates"


@lru_cache(maxsize=1)
def _settings() -> dict[str, Any]:
    path = TEMPLATES_DIR / "staff" / "handoff.yaml"
    return yaml.safe_load(path.read_text(encoding="utf-8")) or {}


_FIELDS = ("call_user_on_confirm", "invitation")
_INVITATION_FIELDS = ("label", "how", "how_on_the_day")
_INVITATION_MAX = {"label": NAME_MAX, "how": HANDOFF_HOW_MAX, "how_on_the_day": HANDOFF_HOW_MAX}


def problems() -> list[str]:
    """What is wrong in handoff.yaml, one line per problem naming the field ("<file>: <office>.<field>: ...").

    A misspelt setting would otherwise be ignored: staff would lose the phone task or the invitation's name
    without a word. An entry for an office this deployment does not serve is fine (OFFICES_DIR may hold a subset).
    """
    file = "templates/staff/handoff.yaml"
    found: list[str] = []
    for office_id, entry in _settings().items():
        if not isinstance(entry, dict):
            found.append(f"{file}: {office_id}: must be a mapping of {', '.join(_FIELDS)}")
            continue
        found += [f"{file}: {office_id}.{key}: unknown field (allowed: {', '.join(_FIELDS)})"
                  for key in entry if key not in _FIELDS]
        if "call_user_on_confirm" in entry and not isinstance(entry["call_user_on_confirm"], bool):
            found.append(f"{file}: {office_id}.call_user_on_confirm: must be true or false")
        invitation = entry.get("invitation", {})
        if not isinstance(invitation, dict):
            found.append(f"{file}: {office_id}.invitation: must be a mapping of {', '.join(_INVITATION_FIELDS)}")
            continue
        for key, value in invitation.items():
            if key not in _INVITATION_FIELDS:
                found.append(f"{file}: {office_id}.invitation.{key}: unknown field "
                             f"(allowed: {', '.join(_INVITATION_FIELDS)})")
            elif not isinstance(value, str):
                found.append(f"{file}: {office_id}.invitation.{key}: must be a text")
            elif line_length(value) > _INVITATION_MAX[key]:   # as a profile's own handoff is held (checks.py)
                found.append(f"{file}: {office_id}.invitation.{key}: {line_length(value)} characters; keep it to "
                             f"at most {_INVITATION_MAX[key]} (the staff cards and the group's answers carry it)")
    return found


def office_ids() -> list[str]:
    """The offices handoff.yaml gives settings to (not `_default`)."""
    return [key for key in _settings() if key != "_default"]


def call_user_on_confirm(office) -> bool:
    """Does this office phone the user with the date once a request is confirmed? (The profile's `handoff`,
    else handoff.yaml's entry.)"""
    if "call_user_on_confirm" in office.handoff:
        return office.handoff["call_user_on_confirm"]
    return bool((_settings().get(office.id) or {}).get("call_user_on_confirm", False))


def invitation_task(office, on_the_day: bool = False) -> dict[str, str]:
    """What the office sends outside LINE before a session, as staff name it: {label, how}: the profile's
    `handoff.invitation`, else handoff.yaml's entry, else the file's `_default` (also for no office: one this
    deployment no longer serves). `on_the_day` (said on the session's own day): `how` is `how_on_the_day` where
    the office has one, since its usual timing (Sakata: 「開催日の前日までに」) can no longer be kept."""
    default = (_settings().get("_default") or {}).get("invitation") or {}
    found = dict(default) if office is None else {
        **default, **((_settings().get(office.id) or {}).get("invitation") or {}), **office.handoff.get("invitation", {})}
    if on_the_day and found.get("how_on_the_day"):
        found["how"] = found["how_on_the_day"]
    return found


@lru_cache(maxsize=None)
def decline_reasons(language: str = "ja") -> dict[str, dict[str, str]]:
    """Reason key -> {label (for staff), text (for the user)}, in the order staff see them."""
    path = TEMPLATES_DIR / "messages" / language / "decline_reasons.yaml"
    if not path.exists():
        path = TEMPLATES_DIR / "messages" / "ja" / "decline_reasons.yaml"
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def office_decline_reasons(office, language: str = "ja") -> dict[str, dict[str, str]]:
    """The reasons `office` may give: one that cites an office rule (`needs`, a `booking` setting of the
    profile, e.g. Otaru's usage_limit_note) only where the office's profile states that rule."""
    needs = {key: reason.get("needs") for key, reason in decline_reasons("ja").items()}
    return {key: reason for key, reason in decline_reasons(language).items()
            if not needs.get(key) or getattr(office.booking, needs[key], None)}


def default_reason() -> str:
    """The reason used when staff decline from the LINE group (the question お断り asks names it)."""
    return next(iter(decline_reasons("ja")))
