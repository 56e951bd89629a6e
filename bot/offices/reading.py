"""Reading one profile file into an Office: strict YAML, then every section validated, each problem named.

Only the standard library and PyYAML: this module must not import flask, linebot or dialogs.
"""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from datetime import date, time
from pathlib import Path
from typing import Any

import yaml

from bot.offices.checks import (
    _cancellation_window_problems,
    _category_problems,
    _length_problems,
    _same_day_deadline_problems,
    _step_id_clashes,
)
from bot.offices.fields import (
    _EMAIL,
    _PHONE,
    _at,
    _bool,
    _date,
    _each,
    _fields,
    _half_width,
    _identifier,
    _int,
    _Invalid,
    _key_problems,
    _kind,
    _optional_bool,
    _optional_text,
    _subset,
    _text,
    _text_or_empty,
    _texts,
    _time,
    _unique,
)
from bot.offices.model import (
    ANSWERS,
    CANCEL_ROUTES,
    DEFAULT_QUOTA_RESERVE,
    DEFAULT_REMINDERS,
    DEFAULT_RETENTION,
    DEFAULT_STAFF_CARDS,
    END_OF_DAY,
    FORM_FIELDS,
    NOTICE_DAYS,
    NOTICE_KINDS,
    OFFICE_ID,
    OFFICE_ID_MAX,
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
    TermsArticle,
    TermsSpec,
    VideoApp,
)
from bot.offices.translations import _translations

PROJECT_ROOT = Path(__file__).resolve().parents[2]
TERMS_DIR = PROJECT_ROOT / "templates" / "terms"


def read_office(path: Path, terms_dir: Path = TERMS_DIR) -> Office:
    """One profile file, validated; ProfileError names the file and every field that is wrong."""
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_StrictLoader)  # noqa: S506 (safe loader)
    except yaml.YAMLError as exc:
        raise ProfileError(f"{path.name}: not valid YAML: {_yaml_problem(exc)}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ProfileError(f"{path.name}: cannot read: {exc}") from exc
    return _office(raw, path, terms_dir)


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
    once a request is confirmed) and `invitation` (`label`, `how`: what staff send outside LINE before a session; `how_on_the_day`: how,
    said on the session's own day when `how`'s timing can no longer be kept).
    """
    raw = _fields(value, path, (), ("call_user_on_confirm", "invitation"))
    found: dict[str, Any] = {}
    if "call_user_on_confirm" in raw:
        found["call_user_on_confirm"] = _bool(raw["call_user_on_confirm"], _at(path, "call_user_on_confirm"))
    if "invitation" in raw:
        where = _at(path, "invitation")
        invitation = _fields(raw["invitation"], where, (), ("label", "how", "how_on_the_day"))
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


def _terms_article(value: Any, path: str) -> TermsArticle | None:
    """`{number: 12, paragraph: 1}` (paragraph optional), or absent."""
    if value is None:
        return None
    raw = _fields(value, path, ("number",), ("paragraph",))
    paragraph = raw.get("paragraph")
    return TermsArticle(number=_int(raw["number"], _at(path, "number"), 1, 99),
                        paragraph=None if paragraph is None else _int(paragraph, _at(path, "paragraph"), 1, 99))


def _cancellation(value: Any, path: str) -> Cancellation:
    raw = _fields(value, path, ("in_chat", "in_chat_until_days_before", "routes", "same_day_routes"),
                  ("note", "confirmed", "conduct_article"))
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
        conduct_article=_terms_article(raw.get("conduct_article"), _at(path, "conduct_article")),
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
