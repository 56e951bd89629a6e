"""Office data for the staff handoff: per-office settings and the reasons staff may give when declining."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

TEMPLATES_DIR = Path(__file__).resolve().parent.parent.parent / "templates"


@lru_cache(maxsize=1)
def _settings() -> dict[str, Any]:
    path = TEMPLATES_DIR / "staff" / "handoff.yaml"
    return yaml.safe_load(path.read_text(encoding="utf-8")) or {}


def call_user_on_confirm(office_id: str) -> bool:
    """Does this office phone the user with the date once a request is confirmed?"""
    return bool((_settings().get(office_id) or {}).get("call_user_on_confirm", False))


def invitation_task(office_id: str) -> dict[str, str]:
    """What the office sends outside LINE before a session, as staff name it: {label, how} (the file's
    `_default` for an office it does not list)."""
    default = (_settings().get("_default") or {}).get("invitation") or {}
    return {**default, **((_settings().get(office_id) or {}).get("invitation") or {})}


@lru_cache(maxsize=None)
def decline_reasons(language: str = "ja") -> dict[str, dict[str, str]]:
    """Reason key -> {label (for staff), text (for the user)}, in the order staff see them."""
    path = TEMPLATES_DIR / "messages" / language / "decline_reasons.yaml"
    if not path.exists():
        path = TEMPLATES_DIR / "messages" / "ja" / "decline_reasons.yaml"
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def default_reason() -> str:
    """The reason used when staff decline with one tap in the LINE group."""
    return next(iter(decline_reasons("ja")))
