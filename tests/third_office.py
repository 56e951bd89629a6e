"""A third office, generated: every rule different from Sakata's and Otaru's, for tests that an office is data.

`write_offices(folder)` puts the shipped profiles and `kakuu.yaml` (ハローワーク架空, a fictional office) in a
folder to use as OFFICES_DIR; `profile()` is its data, to change before writing for a mistake of one's own.
"""
from __future__ import annotations

import copy
import shutil
from pathlib import Path
from typing import Any

import yaml

from bot.config import DEFAULT_OFFICES_DIR

OFFICE_ID = "kakuu"

_PROFILE: dict[str, Any] = {
    "id": OFFICE_ID,
    "name": "ハローワーク架空",
    "formal_name": "架空公共職業安定所",
    "controller": "架空公共職業安定所長",
    "contacts": {
        "phone": {"value": "0999-12-3456", "note": "オンライン相談の係におつなぎします。", "confirmed": True},
        "email": {"value": "online@kakuu.example.jp", "confirmed": True},
        "hours": {"value": "火曜日・木曜日 9:00～15:00", "confirmed": True},
    },
    "other_routes": ["ハローワーク架空の窓口へお越しいただく"],
    "video_app": {"name": "Microsoft Teams", "account_needed": True, "confirmed": True},
    "eligibility": [
        {"id": "resident", "text": "架空市にお住まいですか。", "choices": ["yes", "no"], "passing": ["yes"],
         "on_fail": "ハローワーク架空のオンライン相談は、架空市にお住まいの方が対象です。"},
        {"id": "group", "text": "次のいずれかに当てはまりますか。",
         "detail": ["子育て中の方", "55歳以上の方", "難病の治療を続けている方"],
         "choices": ["yes", "no", "unsure"], "passing": ["yes"],
         "on_fail": "上のいずれかに当てはまる方が対象です。", "on_unsure": "窓口でご確認ください。"},
        {"id": "not_online", "text": "今回のご相談は、雇用保険の手続きですか。", "choices": ["yes", "no"],
         "passing": ["no"], "record": False, "on_fail": "雇用保険の手続きは、次の窓口へお問い合わせください。",
         "redirects": [{"topic": "雇用保険の手続き", "window": "ハローワーク架空 雇用保険窓口",
                        "phone": {"value": "0999-12-7777", "confirmed": True}}]},
    ],
    "checklist": [
        {"id": "teams_ready", "text": "Microsoft Teamsにサインインできますか。",
         "fix": "相談の日までに、Microsoft Teamsにサインインできることを確かめてください。"},
        {"id": "headset", "text": "イヤホンをご用意いただけますか。", "fix": "イヤホンをご用意ください。"},
    ],
    "consent_summary": ["相談は1回40分です。毎週火曜日・木曜日に行います。"],
    "notices": ["相談中の録画・録音はご遠慮ください。"],
    "after_request": "お申込みの後、ハローワーク架空で内容を確認し、このトークで予約の確定をお知らせします。",
    "schedule": {"weekdays": [1, 3], "starts": ["09:30", "10:15", "13:45"], "duration_minutes": 40,
                 "capacity": 2},
    "booking": {"notice": {"kind": "business_day_before", "calendar_days": 2, "deadline": "12:00",
                           "confirmed": True},
                "window_weeks": 4, "hold_minutes": 20, "max_open_per_user": 2},
    "cancellation": {"in_chat": True, "in_chat_until_days_before": 3, "routes": ["email"], "same_day_routes": [],
                     "note": "開催日の3日前まではこのトークで、それ以降はメールでご連絡ください。", "confirmed": True},
    "no_show_minutes": 15,
    "form_fields": ["name", "name_kana", "seeker_number", "phone", "category", "companion"],
    "categories": [
        {"id": "parent", "text": "子育て中の方"},
        {"id": "senior", "text": "55歳以上の方", "staff_label": "55歳以上"},
        {"id": "illness", "text": "難病の治療を続けている方", "staff_label": "難病治療中", "sensitive": True},
    ],
    "terms": [{"version": "2026-04-01", "file": "otaru/2023-10-01.md"}],
    "court": "架空地方裁判所",
}


def profile() -> dict[str, Any]:
    """The third office's profile as data (a fresh copy)."""
    return copy.deepcopy(_PROFILE)


def write_offices(folder: Path, data: dict[str, Any] | None = None) -> Path:
    """The shipped profiles and the third office's in `folder` (created); returns the folder."""
    shutil.copytree(DEFAULT_OFFICES_DIR, folder, dirs_exist_ok=True)
    text = yaml.safe_dump(profile() if data is None else data, allow_unicode=True, sort_keys=False)
    (folder / f"{OFFICE_ID}.yaml").write_text(text, encoding="utf-8")
    return folder
