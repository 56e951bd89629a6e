"""Office profiles: one YAML file per office, loaded and validated at start-up.

The dataclasses of `model` are the contract the rest of the app reads; `load_offices()` builds them.
Every user-facing string in a profile is Japanese office wording (the office's own data).

A profile's keys are the dataclass field names, with two groupings: `contacts` holds `phone`, `email` and
`hours`, and `booking.notice` holds the NoticeRule. Validation is strict: an unknown key, a missing required
key or a value of the wrong shape is a ProfileError naming the file and the dotted field path, e.g.
``otaru.yaml: schedule.starts[2]: not a HH:MM time``. Values an office still has to confirm
(``confirmed: false``) load fine and come back as warnings from `check_offices()`.

An optional `translations` section gives the office's wording in the other chat languages (`en`, `easy`),
keyed like the profile (questions and checklist items by id); `Office.localized(language)` returns the office
with those texts in place. Untranslated texts stay in Japanese and `check_offices()` warns about them.

The package, one job a module: `model` (the contract: dataclasses and allowed values), `fields` (typed readers of
one YAML value), `reading` (one profile file into an Office), `translations` (the `translations` overlays),
`checks` (problems across fields, and the warnings), `loading` (a folder of profiles). The rest of the app imports
from here.

Only the standard library and PyYAML: this package must not import flask, linebot or dialogs.
"""
from __future__ import annotations

from bot.offices.loading import check_offices, load_offices
from bot.offices.model import (
    DEFAULT_RETENTION,
    FORM_FIELDS,
    NOTICE_DAYS,
    TERMS_SUMMARY_MAX,
    Booking,
    Cancellation,
    Category,
    ChecklistItem,
    Contact,
    NoticeRule,
    Office,
    ProfileError,
    PushHours,
    Question,
    Redirect,
    Schedule,
    TermsSpec,
    VideoApp,
)
from bot.offices.reading import TERMS_DIR, read_office
from bot.offices.translations import untranslated

__all__ = [
    "DEFAULT_RETENTION", "FORM_FIELDS", "NOTICE_DAYS", "TERMS_DIR", "TERMS_SUMMARY_MAX",
    "Booking", "Cancellation", "Category", "ChecklistItem", "Contact", "NoticeRule", "Office", "ProfileError",
    "PushHours", "Question", "Redirect", "Schedule", "TermsSpec", "VideoApp",
    "check_offices", "load_offices", "read_office", "untranslated",
]

