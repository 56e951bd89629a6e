"""The HTML pages' Jinja set-up: filters for dates in Japanese style (with the year where a page says which year is
the current one), the terms' light Markdown and the Japanese
words on a page in another language, and each page template compiled once per process."""
from __future__ import annotations

import re
from datetime import datetime

from jinja2 import BytecodeCache, pass_context
from jinja2.bccache import Bucket
from markupsafe import Markup, escape

from bot.clock import TOKYO
from bot.render import _md, _slot

_HEADING = re.compile(r"^(#{1,6})\s*(.*)$")
_ITEM = re.compile(r"^\s*[-*・]\s+(.*)$")
# Japanese script: Japanese punctuation, kana, kanji and full-width forms. A run of it may hold digits and spaces
# (平成2年4月1日, 山田 太郎): one phrase, read by one voice.
_JAPANESE = "\u3000-\u303f\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uff00-\uffef"
_JAPANESE_RUN = re.compile(f"[{_JAPANESE}](?:[{_JAPANESE}0-9 ]*[{_JAPANESE}])?")


def has_japanese(text: object) -> bool:
    return isinstance(text, str) and _JAPANESE_RUN.search(text) is not None


def mark_japanese(text: object, around: str) -> Markup:
    """`text` escaped, with each run of Japanese in it marked lang="ja" when the words around it are in another
    language (`around`: the lang of the page or section), so that a screen reader reads it with a Japanese voice
    (WCAG 3.1.2): an office's Japanese name in its English wording, what a person typed. Markup is ours and
    marked where it is written: kept as it is."""
    if isinstance(text, Markup) or around == "ja":
        return escape(text)
    return Markup(_JAPANESE_RUN.sub(lambda run: f'<span lang="ja">{run.group(0)}</span>', str(escape(text))))


@pass_context
def _mark_japanese(context, text: object, around: str | None = None) -> Markup:
    """The filter: around the text, the section's language if given, else the page's (`page_lang`)."""
    return mark_japanese(text, around or context.get("page_lang") or "ja")


def markdown_light(text: str | None, top: int = 2, after_title: str = "") -> Markup:
    """Headings, list items and paragraphs; everything escaped (office text is shown as written). `#` becomes
    `<h{top}>` (1 where the text's own title is the page's heading), `##` the level below, down to h4;
    `after_title` (the page's own markup, e.g. a contents list) comes right after the first heading."""
    if not text:
        return Markup("")
    out: list[str] = []
    in_list = False
    paragraph: list[str] = []

    def flush() -> None:
        nonlocal paragraph
        if paragraph:
            out.append("<p>" + "<br>".join(str(escape(p)) for p in paragraph) + "</p>")
            paragraph = []

    headings = 0
    for line in text.splitlines():
        stripped = line.strip()
        heading = _HEADING.match(stripped)
        item = _ITEM.match(line)
        if not stripped:
            flush()
            if in_list:
                out.append("</ul>")
                in_list = False
            continue
        if heading:
            flush()
            if in_list:
                out.append("</ul>")
                in_list = False
            level = min(len(heading.group(1)) + top - 1, 4)
            headings += 1
            out.append(f'<h{level} id="{_heading_id(headings)}">{escape(heading.group(2))}</h{level}>')
            if headings == 1 and after_title:
                out.append(str(after_title))
        elif item:
            flush()
            if not in_list:
                out.append("<ul>")
                in_list = True
            out.append(f"<li>{escape(item.group(1))}</li>")
        else:
            if in_list:
                out.append("</ul>")
                in_list = False
            paragraph.append(stripped)
    flush()
    if in_list:
        out.append("</ul>")
    return Markup("\n".join(out))


def _heading_id(n: int) -> str:
    return f"s{n}"


def markdown_sections(text: str | None) -> list[tuple[str, str]]:
    """(anchor, title) of each `##` heading, for a table of contents (the anchors markdown_light gives)."""
    out, headings = [], 0
    for line in (text or "").splitlines():
        heading = _HEADING.match(line.strip())
        if heading:
            headings += 1
            if len(heading.group(1)) == 2:
                out.append((_heading_id(headings), heading.group(2)))
    return out


def _year_before(value, this_year: int | None, year: bool | None) -> str:
    """`YYYY年` before a date where it is wanted: `year` True always, False never, None (the default) where the
    page gives `this_year` (the dashboard does) and the date, in Asia/Tokyo, falls in another one."""
    day_year = (value.astimezone(TOKYO) if getattr(value, "tzinfo", None) else value).year
    if year or (year is None and this_year is not None and day_year != this_year):
        return f"{day_year}年"
    return ""


@pass_context
def _page_md(context, value, year: bool | None = None) -> str:
    """`M/D(曜)`, as the messages write it, after its year where that is not the page's current year."""
    return _year_before(value, context.get("this_year"), year) + _md(value)


@pass_context
def _page_slot(context, value, year: bool | None = None) -> str:
    """`M/D(曜) HH:MM`, after its year where that is not the page's current year."""
    return _year_before(value, context.get("this_year"), year) + _slot(value)


def _from_iso(value: str) -> datetime | None:
    """A moment a flash message carries as text (`2026-12-07`, `2026-12-07T1400`), in Japan time; None if not one."""
    try:
        moment = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=TOKYO)


class _CompiledOnce(BytecodeCache):
    """Compiled page templates kept for every app this process builds (one in production; tests build
    thousands, and compiling the pages again for each was a fifth of their time). Keyed by template and
    checked against the source's checksum, so an edited template is compiled again."""

    def __init__(self) -> None:
        self._code: dict[str, tuple[str | None, object]] = {}

    def load_bytecode(self, bucket: Bucket) -> None:
        found = self._code.get(bucket.key)
        if found is not None and found[0] == bucket.checksum:
            bucket.code = found[1]

    def dump_bytecode(self, bucket: Bucket) -> None:
        self._code[bucket.key] = (bucket.checksum, bucket.code)


_COMPILED = _CompiledOnce()


def register(app) -> None:
    app.jinja_env.bytecode_cache = _COMPILED
    app.jinja_env.filters["markdown_sections"] = markdown_sections
    app.jinja_env.filters["markdown_light"] = markdown_light
    app.jinja_env.filters["md"] = _page_md
    app.jinja_env.filters["slot"] = _page_slot
    app.jinja_env.filters["from_iso"] = _from_iso
    app.jinja_env.filters["mark_japanese"] = _mark_japanese
    app.jinja_env.tests["japanese"] = has_japanese
