"""Render dialog effects into LINE message objects from templates/messages/<language>/."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml
from jinja2 import BaseLoader, ChoiceLoader, Environment, FileSystemLoader, StrictUndefined, TemplateNotFound

from bot.clock import TOKYO
from bot.linetext import MAX_TEXT, line_length
from bot.offices import ChecklistItem, Office, Question
from dialogs.effects import Choice, Say
from dialogs.router import Vocabulary

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
LANGUAGES = ("ja", "easy", "en")
MAX_QUICK_REPLY = 13
MAX_LABEL = 20


def split_text(text: str, limit: int = MAX_TEXT) -> list[str]:
    """`text` in parts of at most `limit` UTF-16 units, each cut at the last paragraph break (else line break) in
    its second half, else where the limit falls."""
    parts: list[str] = []
    while line_length(text) > limit:
        units, end = 0, len(text)
        for i, char in enumerate(text):
            units += 2 if ord(char) > 0xFFFF else 1
            if units > limit:
                end = i
                break
        window = text[:end]
        cut = next((at for at in (window.rfind("\n\n"), window.rfind("\n")) if at > end // 2), end)
        parts.append(text[:cut].rstrip("\n"))
        text = text[cut:].lstrip("\n")
    return [*parts, text]


class RenderError(RuntimeError):
    """A template is missing or does not produce valid LINE messages."""


def _weekday(value) -> str:
    return load_labels("ja")["weekdays"][value.weekday()]


def _md(value) -> str:
    """`M/D(曜)` in Asia/Tokyo."""
    value = value.astimezone(TOKYO) if getattr(value, "tzinfo", None) else value
    return f"{value.month}/{value.day}({_weekday(value)})"


def _slot(value) -> str:
    """`M/D(曜) HH:MM`: the fixed slot format in every language."""
    value = value.astimezone(TOKYO)
    return f"{_md(value)} {value:%H:%M}"


def _typed_slot(value) -> str:
    """`M/D HH:MM`, as a slot is typed in the chat (the messages' example of one); a datetime or ISO 8601."""
    value = datetime.fromisoformat(value) if isinstance(value, str) else value
    value = value.astimezone(TOKYO)
    return f"{value.month}/{value.day} {value:%H:%M}"


def first_offered_slot(effects: Iterable[Any]) -> datetime | None:
    """The start of the first slot a reply's list of slots offers (None where it lists none): the example of a
    typed slot in that reply's messages (ヘルプ, "could not read", a slot turned down), so that the example is
    a slot the user can choose, not a fixed date that may have passed."""
    for effect in effects:
        if isinstance(effect, Say) and effect.template == "slots":
            slots = effect.vars.get("page", {}).get("slots") or []
            if slots:
                return datetime.fromisoformat(slots[0]["start"]).astimezone(TOKYO)
    return None


def local_date(value, language: str = "ja") -> str:
    """A date (or date and time, in Asia/Tokyo) written out the language's way (easy Japanese: year, month and
    day with their marks, the weekday and HH:MM); the formats are `date_format`, `time_format` and
    `datetime_format` in the language's labels.yaml. Accepts a datetime, a date or an ISO 8601 string."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value) if "T" in value else date.fromisoformat(value)
    labels = load_labels(language)
    if isinstance(value, datetime):
        value = value.astimezone(TOKYO) if value.tzinfo else value
    fields = {"year": value.year, "month": value.month, "day": value.day,
              "weekday": labels["weekdays"][value.weekday()],
              "month_name": labels.get("months", [""] * 12)[value.month - 1]}
    written = labels["date_format"].format(**fields)
    if isinstance(value, datetime):
        time = labels["time_format"].format(hour=value.hour, minute=value.minute)
        written = labels.get("datetime_format", "{date} {time}").format(date=written, time=time)
    return written


def session_length(schedule, language: str = "ja") -> str:
    """A session's length as the office words it: "about" where its terms say so (Sakata's 「30分程度」), the
    language's `session_length` / `session_length_about` in labels.yaml."""
    key = "session_length_about" if schedule.duration_approximate else "session_length"
    return load_labels(language)[key].format(minutes=schedule.duration_minutes)


# An office's own wording of how to join, kept beside its profile (README "Adding an office", step 4), is named
# `office:<profiles folder>/messages/<language>/invitation_<id>.j2` in the templates' include lists.
_BESIDE_PROFILES = re.compile(r"^office:(?P<path>.+/messages/(ja|easy|en)/invitation_[a-z][a-z0-9_]*\.j2)$")


def own_invitation_file(office: Office, language: str) -> Path | None:
    """Where `office`'s own join wording in `language` sits beside its profile (the file may not exist)."""
    if not office.source_file:
        return None
    return Path(office.source_file).parent / "messages" / language / f"invitation_{office.id}.j2"


def _own_invitation(office: Office, language: str) -> str:
    """The template name of `office`'s join wording beside its profile (looked for before templates/messages/)."""
    path = own_invitation_file(office, language)
    return f"office:{path}" if path else "office:"


class _BesideProfiles(BaseLoader):
    """Serves only an office's join wording beside its profile; any other name is not found here."""

    def get_source(self, environment: Environment, template: str):  # type: ignore[override]
        match = _BESIDE_PROFILES.match(template)
        path = Path(match["path"]) if match else None
        if path is None or not path.is_file():
            raise TemplateNotFound(template)
        mtime = path.stat().st_mtime
        return path.read_text(encoding="utf-8"), str(path), lambda: path.is_file() and path.stat().st_mtime == mtime


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(
        loader=ChoiceLoader([_BesideProfiles(), FileSystemLoader(str(TEMPLATES_DIR))]),
        undefined=StrictUndefined,
        autoescape=False,
        keep_trailing_newline=False,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["md"] = _md
    env.filters["slot"] = _slot
    env.filters["typed_slot"] = _typed_slot
    env.filters["local_date"] = local_date
    env.filters["session_length"] = session_length
    env.filters["own_invitation"] = _own_invitation
    env.filters["tojson"] = lambda v: json.dumps(v, ensure_ascii=False)
    return env


@lru_cache(maxsize=None)
def template_file(language: str, template: str) -> tuple[str, str]:
    """The file a message is rendered from, and its kind ("json" or "text"): the language's own, else the
    Japanese one. Looked up once per message and language (every event renders one or more)."""
    for lang in (language, "ja"):
        for suffix, kind in ((".json.j2", "json"), (".txt", "text")):
            name = f"messages/{lang}/{template}{suffix}"
            if (TEMPLATES_DIR / name).is_file():
                return name, kind
    raise RenderError(f"no template for message {template!r}")


@lru_cache(maxsize=None)
def load_labels(language: str) -> dict[str, Any]:
    path = TEMPLATES_DIR / "messages" / language / "labels.yaml"
    if not path.exists():
        path = TEMPLATES_DIR / "messages" / "ja" / "labels.yaml"
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@lru_cache(maxsize=None)
def load_vocabulary(language: str = "ja") -> Vocabulary:
    """Words understood in every mode: the Japanese chat words plus the language's own."""
    def read(lang: str) -> Vocabulary:
        path = TEMPLATES_DIR / "messages" / lang / "vocabulary.yaml"
        if not path.exists():
            return Vocabulary()
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        return Vocabulary.build(data.get("words", {}), data.get("answers", {}), data.get("consent", ""),
                                data.get("endings", ()))

    base = read("ja")
    return base if language == "ja" else read(language).merged(base)


@dataclass(frozen=True)
class Renderer:
    """Turns (template, vars, choices) into at most five LINE message dicts."""

    globals: Mapping[str, Any]

    def messages(self, language: str, template: str, vars: Mapping[str, Any],
                 choices: Iterable[Choice] = ()) -> list[dict]:
        context = localize({**self.globals, **vars}, language)
        context.update(labels=load_labels(language), language=language)
        messages = self.split_long_texts(self._render(language, template, context))
        choices = list(choices)
        if choices and messages:
            messages[-1]["quickReply"] = {"items": [self._item(language, c) for c in choices[:MAX_QUICK_REPLY]]}
        return messages

    @staticmethod
    def split_long_texts(messages: list[dict]) -> list[dict]:
        """Each text over LINE's MAX_TEXT as several texts, cut between paragraphs (else lines) so that no word is
        lost; its quick reply goes with the last part. (More than five messages are sent as the outbox sends any
        long list: the first five as the reply, the rest pushed.)"""
        out: list[dict] = []
        for message in messages:
            if message.get("type") != "text" or line_length(message["text"]) <= MAX_TEXT:
                out.append(message)
                continue
            parts = split_text(message["text"])
            rest = {key: value for key, value in message.items() if key not in ("text", "quickReply")}
            out += [{**rest, "text": part} for part in parts]
            if "quickReply" in message:
                out[-1]["quickReply"] = message["quickReply"]
        return out

    def _render(self, language: str, template: str, context: Mapping[str, Any]) -> list[dict]:
        name, kind = template_file(language, template)
        out = environment().get_template(name).render(**context)
        if kind == "text":
            return [{"type": "text", "text": out.strip()}]
        try:
            data = json.loads(out)
        except json.JSONDecodeError as exc:
            raise RenderError(f"{name}: not JSON ({exc})") from exc
        return data if isinstance(data, list) else [data]

    def label(self, language: str, choice: Choice) -> str:
        label = choice.label if choice.label is not None else load_labels(language)["buttons"][choice.label_key]
        return label

    def _item(self, language: str, choice: Choice) -> dict:
        label = self.label(language, choice)
        return {
            "type": "action",
            "action": {
                "type": "postback",
                "label": label[:MAX_LABEL],
                "data": choice.data,
                "displayText": choice.display or label,
            },
        }


def localize(context: Mapping[str, Any], language: str) -> dict[str, Any]:
    """The office's wording in the message's language: `office` and any question or checklist item of it."""
    office = context.get("office")
    if language == "ja" or not isinstance(office, Office):
        return dict(context)
    local = office.localized(language)
    # An office may leave a language out: its Japanese summary must then not be called a translation.
    translated = "consent_summary" in office.translations.get(language, {})
    out = {**context, "office": local, "summary_translated": translated}
    for key, value in context.items():
        if isinstance(value, (Question, ChecklistItem)):
            out[key] = local.step(value.id) or value
    return out


def text_of(messages: list[dict]) -> str:
    """All the words in some messages (text, altText, Flex texts): for tests and privacy scans."""
    out: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("text", "altText", "label", "displayText", "uri", "title") and isinstance(value, str):
                    out.append(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(messages)
    return "\n".join(out)


# -- an office's own message wording, checked at start ------------------------------------------------

OFFICE_WORDING_MESSAGES = ("outcome_confirmed", "reminder_day_before")   # the messages that include it


def office_wording_problems(offices: Mapping[str, Office]) -> list[str]:
    """What is wrong in an office's own wording of how to join (`messages/<language>/invitation_<id>.j2`), one
    line per file naming it, the line and the mistake.

    The file is rendered as the confirmation and the day-before reminder include it, with a sample booking (before
    and on the session day): a variable that does not exist or a broken tag would otherwise be found only when
    staff confirm a request, and every confirmation of that office would fail.
    """
    at = datetime(2026, 12, 7, 14, 0, tzinfo=TOKYO)
    problems: list[str] = []
    for office in offices.values():
        for language in LANGUAGES:
            own = own_invitation_file(office, language)
            name = f"messages/{language}/invitation_{office.id}.j2"
            if own is not None and own.is_file():   # beside the profile: the one used
                name, shown = _own_invitation(office, language), str(own)
            elif (TEMPLATES_DIR / name).is_file():
                shown = f"templates/{name}"
            else:
                continue
            try:
                for template in OFFICE_WORDING_MESSAGES:
                    for session_day, sent in ((False, False), (True, False), (False, True)):
                        booking = {"reference": "ABCD-EFGH", "at": at, "label": _slot(at), "status": "confirmed",
                                   "timing": {"session_day": session_day, "cancel_in_chat": not session_day,
                                              "invitation_sent": sent, "called": sent}, "phone_opens": None}
                        Renderer({}).messages(language, template, {
                            "office": office, "booking": booking, "public_base_url": "https://madoguchi.invalid",
                            "terms_url": f"https://madoguchi.invalid/terms/{office.id}"})
            except Exception as exc:  # noqa: BLE001 (any mistake in the office's file is named, not raised)
                problems.append(f"{shown}: {_where(exc, name)}{type(exc).__name__}: {exc}")
    return problems


def _where(exc: BaseException, name: str) -> str:
    """`line N: ` of the template `name` where the error arose (Jinja keeps template lines in the traceback)."""
    line = getattr(exc, "lineno", None) if getattr(exc, "name", None) == name else None
    if line is None:
        import traceback

        file = name.removeprefix("office:")   # beside the profile: the frames name the file itself
        lines = [frame.lineno for frame in traceback.extract_tb(exc.__traceback__) if frame.filename.endswith(file)]
        line = lines[-1] if lines else None
    return f"line {line}: " if line else ""
