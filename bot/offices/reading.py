"""Office profiles: one YAML file per office, loaded and validated at start-up.

The dataclasses below are the contract the rest of the app reads; `load_offices()` builds them.
Every user-facing string in a profile is Japanese office wording (the office's own data).

A profile's keys are the dataclass field names, with two groupings: `contacts` holds `phone`, `email` and
`hours`, and `booking.notice` holds the NoticeRule. Validation is strict: an unknown key, a missing required
key or a value of the wrong shape is a ProfileError naming the file and the dotted field path, e.g.
``otaru.yaml: schedule.starts[2]: not a HH:MM time``. Values an office still has to confirm
(``confirmed: false``) load fine and come back as warnings from `check_offices()`.

An optional `translations` section gives the office's wording in the other chat languages (`en`, `easy`),
keyed like the profile (questions and checklist items by id); `Office.localized(language)` returns the office
with those texts in place. Untranslated texts stay in Japanese and `check_offices()` warns about them.

Only the standard library and PyYAML: this module must not import flask, linebot or dialogs.
"""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time
from pathlib import Path
from typing import Any, TypeVar

import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[2]
TERMS_DIR = PROJECT_ROOT / "templates" / "terms"

OFFICE_ID = re.compile(r"^[a-z][a-z0-9_]*$")
OFFICE_ID_MAX = 32   # every table keeps the office id in a String(32) column
# A terms version's summary of what changed rides in the consent prompt and the notice, each one LINE message:
# at most this many characters, whether published with `terms publish` or shipped in a profile.
TERMS_SUMMARY_MAX = 500
ITEM_ID = re.compile(r"^[a-z][a-z0-9_]*$")
ANSWERS = ("yes", "no", "unsure")
NOTICE_KINDS = ("business_day_before", "business_days_before")
NOTICE_DAYS = {"business_day_before": "calendar_days", "business_days_before": "business_days"}   # kind -> its key
CANCEL_ROUTES = ("phone", "email")
FORM_FIELDS = (
    "name", "name_kana", "seeker_number", "birth_date", "phone", "category", "consultation",
    "companion", "companion_detail", "mypage_email_confirmed",
)
DEFAULT_RETENTION = {
    "personal_details_days_after_session": 90,
    "closed_requests_days": 30,
    "drafts_days": 1,
    "dedupe_days": 7,
    "outbox_days": 30,   # messages LINE has taken or refused for good (the problems page shows 30 days)
    # The LINE user id of a user who unfollowed (blocked) the account, counted from their last event, once none
    # of their bookings is open with its session ahead or holds details: then replaced by a pseudonym
    # (bot/staff/jobs.py).
    "unfollowed_days": 30,
}
DEFAULT_STAFF_CARDS = {"new_request": True, "withdrawn": True, "cancelled": True, "expired": True}
DEFAULT_REMINDERS = {"user_day_before": True}
DEFAULT_QUOTA_RESERVE = 20
UNCONFIRMED = "to be confirmed by the office"
TRANSLATED_LANGUAGES = ("en", "easy")   # chat languages besides the office's Japanese


class ProfileError(ValueError):
    """A profile that cannot be used: names the file and the field.

    `problems` holds one line per problem ("<file>: <field path>: <what is wrong>"); str() joins them.
    """

    def __init__(self, *problems: str) -> None:
        super().__init__("\n".join(problems))
        self.problems: tuple[str, ...] = problems


END_OF_DAY = "24:00"   # push_hours.end may say "until midnight"


@dataclass(frozen=True)
class PushHours:
    """When LINE pushes may reach people (Asia/Tokyo): a push that is not urgent waits for `start` outside
    [start, end) (bot/services/push_hours.py). A message a session depends on (the office cancels it, or confirms
    it) is urgent when waiting for `start` would leave less than `urgent_notice_hours` before the session.
    The staff group's cards go on the office's business days only (staff are off on closed days, and nothing can
    be decided or prepared there until the office opens), unless `staff_cards_on_closed_days`."""
    start: time = time(8, 0)
    end: time = time(21, 0)
    urgent_notice_hours: int = 4
    staff_cards_on_closed_days: bool = False


@dataclass(frozen=True)
class Contact:
    value: str | None          # e.g. "0134-32-8689"; None when unknown
    note: str | None = None    # how to use it, e.g. "音声ガイダンスの後に部門コード41#を押してください"
    confirmed: bool = False    # False: to be confirmed by the office; never shown to users


@dataclass(frozen=True)
class Redirect:
    """A specialised window for a topic not handled online."""
    topic: str                 # e.g. 新規学卒者の相談
    window: str                # e.g. ハローワーク小樽 学卒担当窓口
    phone: Contact = field(default_factory=lambda: Contact(None))


@dataclass(frozen=True)
class Question:
    id: str
    text: str                  # the question, polite Japanese
    choices: tuple[str, ...]   # subset of ("yes", "no", "unsure")
    passing: tuple[str, ...]   # answers that pass
    detail: tuple[str, ...] = ()   # bullet lines listed under the question (e.g. the five categories)
    on_fail: str = ""          # kind explanation when the answer does not pass
    on_unsure: str = ""        # explanation for わからない
    redirects: tuple[Redirect, ...] = ()  # shown on fail (Otaru's not-handled topics)
    record: bool = True        # False: the answer is never stored (Otaru's combined topic question)


@dataclass(frozen=True)
class ChecklistItem:
    id: str
    text: str                  # what must be true, as a yes/no question
    fix: str                   # what to do when the answer is いいえ


@dataclass(frozen=True)
class Category:
    """One answer to the details form's `category` field: which of the office's target groups applies."""
    id: str                    # the form value, e.g. graduate
    text: str                  # as the form shows it, the office's wording
    staff_label: str = ""      # shorter, for the dashboard and the CSV export (else `text`)
    sensitive: bool = False    # 要配慮個人情報 (disability, illness): marked on the form


@dataclass(frozen=True)
class NoticeRule:
    """When booking closes for a slot.

    kind "business_day_before": deadline at `deadline` on the last business day on or before
    (session date - calendar_days). Sakata: calendar_days=3 → Friday 17:00 for a Monday.
    Otaru: calendar_days=1 → previous business day 17:00.
    kind "business_days_before": deadline at `deadline` on the business day `business_days` business days
    before the session date ("two business days before": business_days=2 → Thursday for a Monday, Wednesday
    when Thursday or Friday is a holiday).
    """
    kind: str
    calendar_days: int
    deadline: time
    confirmed: bool = False
    business_days: int = 0

    @property
    def days(self) -> int:
        """The kind's count of days (calendar or business): 0 is the session's own day."""
        return self.business_days if self.kind == "business_days_before" else self.calendar_days


@dataclass(frozen=True)
class Schedule:
    weekdays: tuple[int, ...]        # Monday=0
    starts: tuple[time, ...]
    duration_minutes: int = 30
    duration_approximate: bool = False  # the documents say 「30分程度」 (about), not 「30分」 (no extension)
    capacity: int = 1
    closures: tuple[date, ...] = ()  # office closure dates beyond the national calendar


@dataclass(frozen=True)
class Booking:
    notice: NoticeRule
    window_weeks: int = 8
    hold_minutes: int = 15
    usage_limit_note: str = ""       # e.g. 利用回数に制限を設ける場合があります
    max_open_per_user: int = 1


@dataclass(frozen=True)
class Cancellation:
    in_chat: bool                    # may a confirmed booking be cancelled in chat?
    in_chat_until_days_before: int   # 1 = until the previous day
    routes: tuple[str, ...]          # "phone", "email"
    same_day_routes: tuple[str, ...]
    note: str = ""                   # the office's own rule in words
    confirmed: bool = False


@dataclass(frozen=True)
class VideoApp:
    name: str                        # Zoom, or the office's wording
    account_needed: bool | None = None
    terms_name: str | None = None    # e.g. ZOOM サービス規約
    terms_url: str | None = None
    confirmed: bool = True           # the name (False: the office has not named its app yet)
    terms_url_confirmed: bool = False  # False: a URL the office's documents do not print


@dataclass(frozen=True)
class TermsSpec:
    version: str                     # YYYY-MM-DD
    file: str | None                 # <office>/<YYYY-MM-DD>.md, None when known by date only
    summary: str | None = None
    path: Path | None = None         # where `file` was found: the profiles' own terms/ folder, else templates/terms/


@dataclass(frozen=True)
class Office:
    id: str
    enabled: bool
    name: str                        # ハローワーク酒田
    formal_name: str                 # 酒田公共職業安定所
    controller: str                  # 酒田公共職業安定所長 (data controller on the privacy notice)
    phone: Contact
    email: Contact
    hours: Contact
    other_routes: tuple[str, ...]    # e.g. ("ハローワークの窓口へお越しいただく",)
    video_app: VideoApp
    eligibility: tuple[Question, ...]
    checklist: tuple[ChecklistItem, ...]
    consent_summary: tuple[str, ...]  # 要約 bullet lines shown with 同意する / 同意しない
    notices: tuple[str, ...]          # what the user must know (no recording, no extension, ...)
    after_request: str                # what happens after a request, in the office's terms
    schedule: Schedule
    booking: Booking
    cancellation: Cancellation
    no_show_minutes: int
    form_fields: tuple[str, ...]
    terms: tuple[TermsSpec, ...]
    court: str
    documents_route: str | None = None   # how to send documents (Otaru: e-mail), None if none
    # The title of the office's own notice whose rules the 要約 gives beside the terms' (Otaru: 「オンライン職業
    # 相談のお知らせ」), so that the chat does not present them as the terms'; None: the 要約 is of the terms alone.
    summary_notice: str | None = None
    # The terms' own rule on changes to them (both offices: using the service after a change is agreeing to it),
    # said where a new version is announced or declined while a booking stays; None: nothing said.
    terms_changes: str | None = None
    categories: tuple[Category, ...] = ()   # the form's `category` choices (form_fields has `category`)
    # What the user must remember on the session itself (no recording, a private room...): said again in the
    # day-before reminder, which does not repeat the confirmation's `notices`.
    day_before_notices: tuple[str, ...] = ()
    retention: dict = field(default_factory=dict)
    staff_cards: dict = field(default_factory=dict)
    reminders: dict = field(default_factory=dict)
    push_hours: PushHours = field(default_factory=PushHours)
    # Messages of the month's quota kept for the job seekers: with fewer left, staff-group cards (each counts once
    # per member; the dashboard shows the same) are not pushed (bot/quota.py). 0: no reserve.
    quota_reserve: int = DEFAULT_QUOTA_RESERVE
    handoff: dict = field(default_factory=dict)   # staff wording after a decision (bot/staff/handoff.py)
    source_file: str = ""
    translations: dict = field(default_factory=dict, repr=False)  # language -> validated overlay

    def retention_rules(self) -> dict[str, int]:
        """The retention rules in force: the profile's `retention`, the defaults for what it leaves out."""
        return {**DEFAULT_RETENTION, **(self.retention or {})}

    @property
    def current_terms(self) -> TermsSpec:
        return max(self.terms, key=lambda t: t.version)

    def localized(self, language: str) -> "Office":
        """This office with its wording in `language` where the profile translates it (else Japanese)."""
        overlay = self.translations.get(language)
        return _apply_translation(self, overlay) if overlay else self

    def category_labels(self) -> dict[str, str]:
        """Each category's id -> how staff read it (the dashboard, the export)."""
        return {c.id: c.staff_label or c.text for c in self.categories}

    def step(self, step_id: str) -> "Question | ChecklistItem | None":
        """The eligibility question or checklist item with this id."""
        return next((s for s in (*self.eligibility, *self.checklist) if s.id == step_id), None)


# --------------------------------------------------------------------------- loading

def load_offices(directory: Path, terms_dir: Path = TERMS_DIR) -> dict[str, Office]:
    """Every office profile in `directory`, by id; ProfileError if any profile is unusable."""
    offices, _warnings = check_offices(directory, terms_dir)
    return offices


def check_offices(directory: Path, terms_dir: Path = TERMS_DIR) -> tuple[dict[str, Office], list[str]]:
    """Load and validate every `*.yaml` in `directory`: the offices by id, and the to-be-confirmed warnings.

    Raises ProfileError listing the problems of every unusable file (not only the first one).
    """
    directory = Path(directory)
    if not directory.is_dir():  # a mistyped OFFICES_DIR: say so, not "no profiles" as if the folder were empty
        what = "is not a folder" if directory.exists() else "does not exist"
        raise ProfileError(f"{directory}: {what}: OFFICES_DIR names the folder that holds the office profiles "
                           "(<id>.yaml); unset it to serve the shipped ones")
    paths = sorted(directory.glob("*.yaml"))
    offices: dict[str, Office] = {}
    warnings: list[str] = []
    problems: list[str] = [  # a profile saved as .yml would otherwise be an office that silently does not exist
        f"{path.name}: not read: an office profile's file name ends in .yaml (rename it {path.stem}.yaml)"
        for path in sorted(directory.iterdir())
        if path.suffix.lower() in (".yaml", ".yml") and path.suffix != ".yaml" and not path.name.startswith(".")
    ]
    if not paths:
        raise ProfileError(*problems, f"{directory}: no office profiles (<id>.yaml) in this folder")
    for path in paths:
        try:
            office = read_office(path, terms_dir)
        except ProfileError as exc:
            problems.extend(exc.problems)
            continue
        if office.id in offices:
            other = Path(offices[office.id].source_file).name
            problems.append(f"{path.name}: id: duplicate office id {office.id!r} (also in {other})")
            continue
        offices[office.id] = office
        warnings.extend(office_warnings(office))
    if problems:
        raise ProfileError(*problems)
    return offices, warnings


def read_office(path: Path, terms_dir: Path = TERMS_DIR) -> Office:
    """One profile file, validated; ProfileError names the file and every field that is wrong."""
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_StrictLoader)  # noqa: S506 (safe loader)
    except yaml.YAMLError as exc:
        raise ProfileError(f"{path.name}: not valid YAML: {_yaml_problem(exc)}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ProfileError(f"{path.name}: cannot read: {exc}") from exc
    return _office(raw, path, terms_dir)


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


def _contact_hint(contact: Contact) -> str:
    if contact.value is None:
        return "not given in the office's documents; the bot leaves it out"
    return "the bot leaves it out until it is confirmed"


# --------------------------------------------------------------------------- YAML

class _StrictLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """A safe loader that refuses a key given twice in one mapping (PyYAML keeps the last silently).

    libyaml's parser when PyYAML has it (ten times faster: start-up with hundreds of offices), else PyYAML's.
    """


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _value_node in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue  # "<<: *anchor" may legitimately repeat keys
        key = loader.construct_object(key_node, deep=deep)
        if not isinstance(key, (str, int, float, bool, date)):
            continue  # unhashable or odd keys: construct_mapping reports them
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    return f"line {mark.line + 1}: {problem}" if mark is not None else problem


# --------------------------------------------------------------------------- field readers
# Each reader takes the raw YAML value and its dotted path, and returns a typed value or raises _Invalid.

T = TypeVar("T")

_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$", re.ASCII)
_YMD = re.compile(r"^\d{4}-\d{2}-\d{2}$", re.ASCII)
_PHONE = re.compile(r"^0\d{1,4}-\d{1,4}-\d{3,4}$", re.ASCII)
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")


class _Invalid(Exception):
    """One problem at one field path; becomes a ProfileError line prefixed with the file name."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}" if path else message)


def _at(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false (quote yes, no, on and off in YAML)"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, date):
        return "a date"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _key_problems(value: dict[Any, Any], path: str, required: Sequence[str],
                  optional: Sequence[str]) -> list[_Invalid]:
    allowed = (*required, *optional)
    problems = [
        _Invalid(_at(path, str(key)), f"unknown field (allowed: {', '.join(allowed)})")
        for key in value if key not in allowed
    ]
    problems += [_Invalid(_at(path, key), "missing required field") for key in required if key not in value]
    return problems


def _fields(value: Any, path: str, required: Sequence[str], optional: Sequence[str] = ()) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _Invalid(path, f"must be a mapping, not {_kind(value)}")
    problems = _key_problems(value, path, required, optional)
    if problems:
        raise problems[0]
    return value


def _list(value: Any, path: str, *, non_empty: bool = False) -> list[Any]:
    if not isinstance(value, list):
        raise _Invalid(path, f"must be a list, not {_kind(value)}")
    if non_empty and not value:
        raise _Invalid(path, "must not be empty")
    return value


def _each(value: Any, path: str, read: Callable[[Any, str], T], *, non_empty: bool = False) -> tuple[T, ...]:
    return tuple(read(item, f"{path}[{i}]") for i, item in enumerate(_list(value, path, non_empty=non_empty)))


def _text(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise _Invalid(path, f"must be a string, not {_kind(value)}")
    if not value.strip():
        raise _Invalid(path, "must not be empty")
    return value.strip()


def _optional_text(value: Any, path: str) -> str | None:
    return None if value is None else _text(value, path)


def _text_or_empty(value: Any, path: str) -> str:
    if value == "":
        return ""
    return _text(value, path)


def _texts(value: Any, path: str, *, non_empty: bool = False) -> tuple[str, ...]:
    return _each(value, path, _text, non_empty=non_empty)


def _bool(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise _Invalid(path, f"must be true or false, not {_kind(value)}")
    return value


def _optional_bool(value: Any, path: str) -> bool | None:
    return None if value is None else _bool(value, path)


def _half_width(value: Any, path: str, *, quote: bool = True) -> None:
    """Refuse a value typed with full-width digits or signs (an IME's ２ or ：), naming its half-width spelling."""
    if isinstance(value, str):
        half = unicodedata.normalize("NFKC", value)
        if half != value and half.isascii():
            raise _Invalid(path, f'"{value}" has full-width characters: write ' + (f'"{half}"' if quote else half))


def _int(value: Any, path: str, low: int, high: int) -> int:
    _half_width(value, path, quote=False)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Invalid(path, f"must be a whole number, not {_kind(value)}")
    if not low <= value <= high:
        raise _Invalid(path, f"must be between {low} and {high}")
    return value


def _time(value: Any, path: str) -> time:
    if isinstance(value, int) and not isinstance(value, bool):
        raise _Invalid(path, 'not a HH:MM time (quote it, e.g. "14:00": YAML reads 14:00 unquoted as a number)')
    _half_width(value, path)
    if not isinstance(value, str) or not _HHMM.match(value):
        raise _Invalid(path, "not a HH:MM time")
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def _date(value: Any, path: str) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    _half_width(value, path)
    if isinstance(value, str) and _YMD.match(value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise _Invalid(path, "not a YYYY-MM-DD date")


def _unique(items: tuple[T, ...], path: str, show: Callable[[T], str] = repr) -> tuple[T, ...]:
    seen: set[T] = set()
    for i, item in enumerate(items):
        if item in seen:
            raise _Invalid(f"{path}[{i}]", f"{show(item)} is listed twice")
        seen.add(item)
    return items


def _subset(value: Any, path: str, allowed: Iterable[str], *, non_empty: bool = True) -> tuple[str, ...]:
    allowed = tuple(allowed)

    def one(item: Any, item_path: str) -> str:
        word = _text(item, item_path)
        if word not in allowed:
            raise _Invalid(item_path, f"{word!r} is not one of: {', '.join(allowed)}")
        return word

    return _unique(_each(value, path, one, non_empty=non_empty), path)


def _identifier(value: Any, path: str) -> str:
    ident = _text(value, path)
    if not ITEM_ID.match(ident):
        raise _Invalid(path, f"{ident!r} must match ^[a-z][a-z0-9_]*$")
    return ident


# --------------------------------------------------------------------------- sections

def _contact(value: Any, path: str, pattern: re.Pattern[str] | None = None, example: str = "") -> Contact:
    raw = _fields(value, path, ("value",), ("note", "confirmed"))
    contact_value = _optional_text(raw["value"], _at(path, "value"))
    if pattern is not None:
        _half_width(contact_value, _at(path, "value"))
    if contact_value is not None and pattern is not None and not pattern.match(contact_value):
        raise _Invalid(_at(path, "value"), f"{contact_value!r} does not look like {example}")
    return Contact(
        value=contact_value,
        note=_optional_text(raw.get("note"), _at(path, "note")),
        confirmed=_bool(raw.get("confirmed", False), _at(path, "confirmed")),
    )


def _phone(value: Any, path: str) -> Contact:
    return _contact(value, path, _PHONE, "a phone number such as 0134-32-8689")


def _contacts(value: Any, path: str) -> tuple[Contact, Contact, Contact]:
    raw = _fields(value, path, ("phone", "email", "hours"))
    return (
        _phone(raw["phone"], _at(path, "phone")),
        _contact(raw["email"], _at(path, "email"), _EMAIL, "an e-mail address"),
        _contact(raw["hours"], _at(path, "hours")),
    )


def _video_app(value: Any, path: str) -> VideoApp:
    raw = _fields(value, path, ("name",),
                  ("account_needed", "terms_name", "terms_url", "confirmed", "terms_url_confirmed"))
    url = _optional_text(raw.get("terms_url"), _at(path, "terms_url"))
    if url is not None and not url.startswith("https://"):
        raise _Invalid(_at(path, "terms_url"), "must be an https:// URL")
    return VideoApp(
        name=_text(raw["name"], _at(path, "name")),
        account_needed=_optional_bool(raw.get("account_needed"), _at(path, "account_needed")),
        terms_name=_optional_text(raw.get("terms_name"), _at(path, "terms_name")),
        terms_url=url,
        confirmed=_bool(raw.get("confirmed", True), _at(path, "confirmed")),
        terms_url_confirmed=_bool(raw.get("terms_url_confirmed", False), _at(path, "terms_url_confirmed")),
    )


def _redirect(value: Any, path: str) -> Redirect:
    raw = _fields(value, path, ("topic", "window"), ("phone",))
    phone = _phone(raw["phone"], _at(path, "phone")) if "phone" in raw else Contact(None)
    return Redirect(topic=_text(raw["topic"], _at(path, "topic")),
                    window=_text(raw["window"], _at(path, "window")), phone=phone)


def _question(value: Any, path: str) -> Question:
    raw = _fields(value, path, ("id", "text", "choices", "passing"),
                  ("detail", "on_fail", "on_unsure", "redirects", "record"))
    choices = _subset(raw["choices"], _at(path, "choices"), ANSWERS)
    passing = _subset(raw["passing"], _at(path, "passing"), ANSWERS)
    for i, answer in enumerate(passing):
        if answer not in choices:
            raise _Invalid(f"{_at(path, 'passing')}[{i}]", f"{answer!r} is not among the choices")
    on_fail = _text_or_empty(raw.get("on_fail", ""), _at(path, "on_fail"))
    on_unsure = _text_or_empty(raw.get("on_unsure", ""), _at(path, "on_unsure"))
    failing = set(choices) - set(passing)
    if failing - {"unsure"} and not on_fail:
        raise _Invalid(_at(path, "on_fail"), "required: say what to do instead when the answer does not pass")
    if "unsure" in failing and not on_unsure:
        raise _Invalid(_at(path, "on_unsure"), "required: say what to do when the user is unsure")
    return Question(
        id=_identifier(raw["id"], _at(path, "id")),
        text=_text(raw["text"], _at(path, "text")),
        choices=choices,
        passing=passing,
        detail=_texts(raw.get("detail", []), _at(path, "detail")),
        on_fail=on_fail,
        on_unsure=on_unsure,
        redirects=_each(raw.get("redirects", []), _at(path, "redirects"), _redirect),
        record=_bool(raw.get("record", True), _at(path, "record")),
    )


def _checklist_item(value: Any, path: str) -> ChecklistItem:
    raw = _fields(value, path, ("id", "text", "fix"))
    return ChecklistItem(id=_identifier(raw["id"], _at(path, "id")), text=_text(raw["text"], _at(path, "text")),
                         fix=_text(raw["fix"], _at(path, "fix")))


def _category(value: Any, path: str) -> Category:
    raw = _fields(value, path, ("id", "text"), ("staff_label", "sensitive"))
    return Category(id=_identifier(raw["id"], _at(path, "id")), text=_text(raw["text"], _at(path, "text")),
                    staff_label=_text_or_empty(raw.get("staff_label", ""), _at(path, "staff_label")),
                    sensitive=_bool(raw.get("sensitive", False), _at(path, "sensitive")))


def _categories(value: Any, path: str) -> tuple[Category, ...]:
    categories = _each(value, path, _category, non_empty=True)
    _unique(tuple(c.id for c in categories), path, repr)
    return categories


def _handoff(value: Any, path: str) -> dict[str, Any]:
    """What staff do after a decision, in the office's words: `call_user_on_confirm` (the office phones the user
    once a request is confirmed) and `invitation` (`label`, `how`: what staff send outside LINE before a session).
    """
    raw = _fields(value, path, (), ("call_user_on_confirm", "invitation"))
    found: dict[str, Any] = {}
    if "call_user_on_confirm" in raw:
        found["call_user_on_confirm"] = _bool(raw["call_user_on_confirm"], _at(path, "call_user_on_confirm"))
    if "invitation" in raw:
        where = _at(path, "invitation")
        invitation = _fields(raw["invitation"], where, (), ("label", "how"))
        found["invitation"] = {key: _text(text, _at(where, key)) for key, text in invitation.items()}
    return found


def _notice(value: Any, path: str) -> NoticeRule:
    kind = value.get("kind") if isinstance(value, dict) else None
    if isinstance(kind, str) and kind not in NOTICE_KINDS:
        raise _Invalid(_at(path, "kind"), f"unknown kind {kind!r} (known: {', '.join(NOTICE_KINDS)})")
    days = NOTICE_DAYS.get(kind, "calendar_days")   # each kind counts its days under its own key
    raw = _fields(value, path, ("kind", days, "deadline"), ("confirmed",))
    kind = _text(raw["kind"], _at(path, "kind"))
    count = _int(raw[days], _at(path, days), 0 if days == "calendar_days" else 1, 60)
    return NoticeRule(
        kind=kind,
        calendar_days=count if days == "calendar_days" else 0,
        business_days=count if days == "business_days" else 0,
        deadline=_time(raw["deadline"], _at(path, "deadline")),
        confirmed=_bool(raw.get("confirmed", False), _at(path, "confirmed")),
    )


def _weekday(value: Any, path: str) -> int:
    if isinstance(value, str) and not unicodedata.normalize("NFKC", value).isdigit():  # tue, 火, Tuesday
        raise _Invalid(path, f"{value!r} is not a weekday number: write Monday 0, Tuesday 1, Wednesday 2, "
                       "Thursday 3, Friday 4")
    return _int(value, path, 0, 6)


def _schedule(value: Any, path: str) -> Schedule:
    raw = _fields(value, path, ("weekdays", "starts"), ("duration_minutes", "duration_approximate", "capacity", "closures"))
    weekdays = _unique(_each(raw["weekdays"], _at(path, "weekdays"), _weekday,
                             non_empty=True), _at(path, "weekdays"))
    for i, weekday in enumerate(weekdays):
        if weekday >= 5:  # bot/services/calendar.py closes every Saturday and Sunday
            day = ("Saturday", "Sunday")[weekday - 5]
            raise _Invalid(f"{_at(path, 'weekdays')}[{i}]", f"{weekday} is a {day}: offices are closed on Saturdays "
                           "and Sundays, so no slot would be offered")
    starts = _unique(_each(raw["starts"], _at(path, "starts"), _time, non_empty=True), _at(path, "starts"),
                     lambda t: t.strftime("%H:%M"))
    duration = _int(raw.get("duration_minutes", 30), _at(path, "duration_minutes"), 5, 240)
    for i, start in enumerate(starts):
        if start.hour * 60 + start.minute + duration > 24 * 60:
            raise _Invalid(f"{_at(path, 'starts')}[{i}]", "the session would end after midnight")
    minutes = sorted((start.hour * 60 + start.minute, i) for i, start in enumerate(starts))
    for (before, _), (after, i) in zip(minutes, minutes[1:]):
        if after < before + duration:  # one session still running when the next starts (capacity: sessions at once)
            raise _Invalid(f"{_at(path, 'starts')}[{i}]", f"{starts[i]:%H:%M} starts before the {duration}-minute "
                           f"session of {before // 60:02d}:{before % 60:02d} ends: sessions must not overlap "
                           "(for several sessions at the same time, set schedule.capacity)")
    closures = _unique(_each(raw.get("closures", []), _at(path, "closures"), _date), _at(path, "closures"),
                       date.isoformat)
    return Schedule(
        weekdays=tuple(sorted(weekdays)),
        starts=tuple(sorted(starts)),
        duration_minutes=duration,
        duration_approximate=_bool(raw.get("duration_approximate", False), _at(path, "duration_approximate")),
        capacity=_int(raw.get("capacity", 1), _at(path, "capacity"), 1, 50),
        closures=tuple(sorted(closures)),
    )


def _booking(value: Any, path: str) -> Booking:
    raw = _fields(value, path, ("notice",), ("window_weeks", "hold_minutes", "usage_limit_note", "max_open_per_user"))
    notice = _notice(raw["notice"], _at(path, "notice"))
    window_weeks = _int(raw.get("window_weeks", 8), _at(path, "window_weeks"), 1, 52)
    # Even the window's last day would be past its deadline today (a week has at most 5 business days).
    key = NOTICE_DAYS[notice.kind]
    if notice.days > (5 if key == "business_days" else 7) * window_weeks:
        window = f"{_at(path, 'window_weeks')}: {window_weeks} weeks, {7 * window_weeks} days"
        unit = "business days'" if key == "business_days" else "days'"
        raise _Invalid(_at(_at(path, "notice"), key), f"{notice.days} {unit} notice is longer "
                       f"than the booking window ({window}): no slot could ever be booked")
    return Booking(
        notice=notice,
        window_weeks=window_weeks,
        hold_minutes=_int(raw.get("hold_minutes", 15), _at(path, "hold_minutes"), 1, 24 * 60),
        usage_limit_note=_text_or_empty(raw.get("usage_limit_note", ""), _at(path, "usage_limit_note")),
        max_open_per_user=_int(raw.get("max_open_per_user", 1), _at(path, "max_open_per_user"), 1, 10),
    )


def _cancellation(value: Any, path: str) -> Cancellation:
    raw = _fields(value, path, ("in_chat", "in_chat_until_days_before", "routes", "same_day_routes"),
                  ("note", "confirmed"))
    routes = _subset(raw["routes"], _at(path, "routes"), CANCEL_ROUTES)
    same_day = _subset(raw["same_day_routes"], _at(path, "same_day_routes"), CANCEL_ROUTES, non_empty=False)
    for i, route in enumerate(same_day):
        if route not in routes:
            raise _Invalid(f"{_at(path, 'same_day_routes')}[{i}]", f"{route!r} is not among routes")
    return Cancellation(
        in_chat=_bool(raw["in_chat"], _at(path, "in_chat")),
        in_chat_until_days_before=_int(raw["in_chat_until_days_before"], _at(path, "in_chat_until_days_before"),
                                       0, 30),
        routes=routes,
        same_day_routes=same_day,
        note=_text_or_empty(raw.get("note", ""), _at(path, "note")),
        confirmed=_bool(raw.get("confirmed", False), _at(path, "confirmed")),
    )


def _form_fields(value: Any, path: str) -> tuple[str, ...]:
    names = _subset(value, path, FORM_FIELDS)
    if "companion_detail" in names and "companion" not in names:
        raise _Invalid(path, "companion_detail needs companion")
    return names


def _terms_file(value: Any, path: str, roots: tuple[Path, ...]) -> tuple[str | None, Path | None]:
    """The file's name as written and where it is: the first of `roots` (the profiles' terms/ folder, then
    templates/terms/) that holds it."""
    if value is None:
        return None, None
    relative = _text(value, path)
    parts = Path(relative)
    if parts.is_absolute() or ".." in parts.parts or parts.suffix != ".md":
        raise _Invalid(path, f"{relative!r} must be a relative .md path under the profiles' terms/ folder "
                             "or templates/terms/")
    full = next((root / parts for root in roots if (root / parts).is_file()), None)
    if full is None:
        raise _Invalid(path, f"no such file: {relative} in {' or '.join(f'{root}/' for root in roots)}")
    if not full.read_text(encoding="utf-8").strip():
        raise _Invalid(path, f"empty file: {full}")
    return relative, full


def _summary(value: Any, path: str) -> str | None:
    summary = _optional_text(value, path)
    if summary is not None and len(summary.strip()) > TERMS_SUMMARY_MAX:
        raise _Invalid(path, f"{len(summary.strip())} characters; keep it to at most {TERMS_SUMMARY_MAX} (what "
                             "changed, in a few lines: the full text is on the terms page)")
    return summary


def _terms(value: Any, path: str, roots: tuple[Path, ...]) -> tuple[TermsSpec, ...]:
    def one(item: Any, item_path: str) -> TermsSpec:
        raw = _fields(item, item_path, ("version", "file"), ("summary",))
        version = _date(raw["version"], _at(item_path, "version")).isoformat()
        file, full = _terms_file(raw["file"], _at(item_path, "file"), roots)
        return TermsSpec(version=version, file=file, summary=_summary(raw.get("summary"), _at(item_path, "summary")),
                         path=full)

    specs = _each(value, path, one, non_empty=True)
    _unique(tuple(spec.version for spec in specs), path, str)
    current = max(specs, key=lambda spec: spec.version)
    if current.file is None:
        where = f"{path}[{specs.index(current)}].file"
        raise _Invalid(where, f"the current version {current.version} needs its text (a file)")
    return tuple(sorted(specs, key=lambda spec: spec.version))


def _push_hours(value: Any, path: str) -> PushHours:
    raw = _fields(value, path, (), ("start", "end", "urgent_notice_hours", "staff_cards_on_closed_days"))
    default = PushHours()
    start = _time(raw["start"], _at(path, "start")) if "start" in raw else default.start
    if raw.get("end") == END_OF_DAY:
        end = time.max          # until midnight: with start "00:00", pushes go at any hour
    else:
        end = _time(raw["end"], _at(path, "end")) if "end" in raw else default.end
    if end <= start:
        raise _Invalid(_at(path, "end"), f"{end:%H:%M} is not after start {start:%H:%M}: pushes would never go "
                       "(the hours are one span within a day, Asia/Tokyo)")
    if (end.hour - start.hour) * 60 + end.minute - start.minute < 4 * 60:
        raise _Invalid(_at(path, "end"), "pushes need at least 4 hours a day: a reminder or a decision would "
                       "wait too long")
    urgent = _int(raw.get("urgent_notice_hours", default.urgent_notice_hours), _at(path, "urgent_notice_hours"), 0, 24)
    closed_days = _bool(raw.get("staff_cards_on_closed_days", False), _at(path, "staff_cards_on_closed_days"))
    return PushHours(start=start, end=end, urgent_notice_hours=urgent, staff_cards_on_closed_days=closed_days)


def _settings(defaults: dict[str, Any]) -> Callable[[Any, str], dict[str, Any]]:
    """A reader for a small mapping of settings, each of the type of its default (whole days or flags)."""

    def read(value: Any, path: str) -> dict[str, Any]:
        raw = _fields(value, path, (), tuple(defaults))
        merged = dict(defaults)
        for key, item in raw.items():
            if isinstance(defaults[key], bool):
                merged[key] = _bool(item, _at(path, key))
            else:
                merged[key] = _int(item, _at(path, key), 0, 3650)
        return merged

    return read


def _office_id(value: Any, path: str) -> str:
    office_id = _text(value, path)
    if not OFFICE_ID.match(office_id):
        raise _Invalid(path, f"{office_id!r} must match ^[a-z][a-z0-9_]*$")
    if len(office_id) > OFFICE_ID_MAX:
        raise _Invalid(path, f"{office_id!r} is longer than {OFFICE_ID_MAX} characters")
    return office_id


# --------------------------------------------------------------------------- the profile

_TOP_REQUIRED = (
    "id", "name", "formal_name", "controller", "contacts", "other_routes", "video_app", "eligibility",
    "checklist", "consent_summary", "notices", "after_request", "schedule", "booking", "cancellation",
    "no_show_minutes", "form_fields", "terms", "court",
)
_TOP_OPTIONAL = ("enabled", "categories", "documents_route", "terms_changes", "summary_notice", "day_before_notices",
                 "retention", "staff_cards", "reminders", "push_hours", "quota_reserve", "handoff", "translations")


def _office(raw: Any, path: Path, terms_dir: Path) -> Office:
    """Build the Office, collecting one problem per broken section so a check shows them all."""
    file = path.name
    if not isinstance(raw, dict):
        raise ProfileError(f"{file}: the profile must be a YAML mapping, not {_kind(raw)}")
    problems: list[_Invalid] = _key_problems(raw, "", _TOP_REQUIRED, _TOP_OPTIONAL)
    values: dict[str, Any] = {}

    def read(key: str, reader: Callable[[Any, str], Any], default: Any = None) -> None:
        if key not in raw:
            values[key] = default
            return
        try:
            values[key] = reader(raw[key], key)
        except _Invalid as exc:
            problems.append(exc)

    read("id", _office_id)
    read("enabled", _bool, True)
    for key in ("name", "formal_name", "controller", "after_request", "court"):
        read(key, _text)
    read("contacts", _contacts)
    read("other_routes", lambda v, p: _texts(v, p, non_empty=True))  # declines say "in these other ways"
    read("video_app", _video_app)
    read("eligibility", lambda v, p: _each(v, p, _question, non_empty=True))
    read("checklist", lambda v, p: _each(v, p, _checklist_item, non_empty=True))
    read("consent_summary", lambda v, p: _texts(v, p, non_empty=True))
    read("notices", _texts)
    read("day_before_notices", _texts, ())
    read("schedule", _schedule)
    read("booking", _booking)
    read("cancellation", _cancellation)
    read("no_show_minutes", lambda v, p: _int(v, p, 0, 120))
    read("form_fields", _form_fields)
    read("categories", _categories, ())
    read("terms", lambda v, p: _terms(v, p, (path.parent.absolute() / "terms", terms_dir)))
    read("documents_route", _optional_text)
    read("terms_changes", _optional_text)
    read("summary_notice", _optional_text)
    read("retention", _settings(DEFAULT_RETENTION), dict(DEFAULT_RETENTION))
    read("staff_cards", _settings(DEFAULT_STAFF_CARDS), dict(DEFAULT_STAFF_CARDS))
    read("reminders", _settings(DEFAULT_REMINDERS), dict(DEFAULT_REMINDERS))
    read("push_hours", _push_hours, PushHours())
    read("quota_reserve", lambda v, p: _int(v, p, 0, 100000), DEFAULT_QUOTA_RESERVE)
    read("handoff", _handoff, {})

    office_id = values.get("id")
    if office_id and office_id != path.stem:
        problems.append(_Invalid("id", f"{office_id!r} does not match the file name {file}"))
    problems.extend(_step_id_clashes(values.get("eligibility"), values.get("checklist")))
    problems.extend(_category_problems(raw, values))
    problems.extend(_cancellation_window_problems(values.get("cancellation"), values.get("booking")))
    problems.extend(_same_day_deadline_problems(values.get("booking"), values.get("schedule")))
    if "translations" in raw and not problems:
        read("translations", lambda v, p: _translations(v, p, values))
    if problems:
        raise ProfileError(*(f"{file}: {problem}" for problem in problems))

    phone, email, hours = values["contacts"]
    office = Office(
        id=values["id"], enabled=values["enabled"], name=values["name"], formal_name=values["formal_name"],
        controller=values["controller"], phone=phone, email=email, hours=hours,
        other_routes=values["other_routes"], video_app=values["video_app"], eligibility=values["eligibility"],
        checklist=values["checklist"], consent_summary=values["consent_summary"], notices=values["notices"],
        after_request=values["after_request"], schedule=values["schedule"], booking=values["booking"],
        cancellation=values["cancellation"], no_show_minutes=values["no_show_minutes"],
        form_fields=values["form_fields"], terms=values["terms"], court=values["court"],
        documents_route=values["documents_route"], terms_changes=values["terms_changes"],
        summary_notice=values["summary_notice"],
        categories=values["categories"],
        day_before_notices=values["day_before_notices"], retention=values["retention"],
        staff_cards=values["staff_cards"], reminders=values["reminders"], push_hours=values["push_hours"],
        quota_reserve=values["quota_reserve"], handoff=values["handoff"],
        source_file=str(path),
        translations=values.get("translations") or {},
    )
    if too_long := _length_problems(office):
        raise ProfileError(*(f"{file}: {problem}" for problem in too_long))
    return office


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


LINE_TEXT_MAX = 5000      # characters in one LINE text message
OFFICE_TEXT_BUDGET = 4000  # the office's words in one message: the rest is for the bot's own (headings, links, steps)


def _length_problems(office: Office) -> list[_Invalid]:
    """The office's words that one chat message carries, in each language, must leave room for the bot's own
    within LINE's 5000 characters: a longer message is refused by LINE and the user would be stuck at that step."""
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
            size = sum(len(text) + 1 for text in texts if text)
            if size > OFFICE_TEXT_BUDGET:
                problems.append(_Invalid(path, f"{size} characters of the office's words in one chat message "
                                         f"({message}): LINE takes at most {LINE_TEXT_MAX} with the bot's own, so keep "
                                         f"them under {OFFICE_TEXT_BUDGET} (shorten the text, or say the rest on the "
                                         "terms page)"))
    return problems


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


# --------------------------------------------------------------------------- translations
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


def _apply_translation(office: Office, overlay: dict[str, Any]) -> Office:
    """The office with the overlay's texts in place of the Japanese ones (everything else unchanged)."""
    def question(q: Question) -> Question:
        t = overlay.get("eligibility", {}).get(q.id)
        if not t:
            return q
        redirects = tuple(replace(r, **tr) for r, tr in zip(q.redirects, t.get("redirects", ()))) or q.redirects
        return replace(q, text=t["text"], detail=t.get("detail", q.detail), on_fail=t.get("on_fail", q.on_fail),
                       on_unsure=t.get("on_unsure", q.on_unsure), redirects=redirects)

    def item(i: ChecklistItem) -> ChecklistItem:
        t = overlay.get("checklist", {}).get(i.id)
        return replace(i, **t) if t else i

    def category(c: Category) -> Category:
        t = overlay.get("categories", {}).get(c.id)
        return replace(c, **t) if t else c

    contacts = overlay.get("contacts", {})
    changes: dict[str, Any] = {key: overlay[key] for key in ("name", "formal_name", "controller", "after_request",
                                                              "other_routes", "consent_summary", "notices",
                                                              "day_before_notices", "documents_route",
                                                              "terms_changes", "summary_notice")
                               if key in overlay}
    changes.update({key: replace(getattr(office, key), **contacts[key]) for key in contacts})
    for key in ("video_app", "booking", "cancellation"):
        if key in overlay:
            changes[key] = replace(getattr(office, key), **overlay[key])
    return replace(office, eligibility=tuple(question(q) for q in office.eligibility),
                   checklist=tuple(item(i) for i in office.checklist),
                   categories=tuple(category(c) for c in office.categories), translations={}, **changes)
