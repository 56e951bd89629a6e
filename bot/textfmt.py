"""The HTML pages' Jinja set-up: filters for dates in Japanese style and the terms' light Markdown, and each
page template compiled once per process."""
from __future__ import annotations

import re

from jinja2 import BytecodeCache
from jinja2.bccache import Bucket
from markupsafe import Markup, escape

from bot.render import _md, _slot

_HEADING = re.compile(r"^(#{1,6})\s*(.*)$")
_ITEM = re.compile(r"^\s*[-*・]\s+(.*)$")


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
    app.jinja_env.filters["md"] = _md
    app.jinja_env.filters["slot"] = _slot
