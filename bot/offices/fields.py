"""Reading one YAML value at its dotted field path: the typed readers every profile section is built from.

Only the standard library: this module must not import flask, linebot or dialogs.
"""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime, time
from typing import Any, TypeVar

from bot.offices.model import ITEM_ID

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
