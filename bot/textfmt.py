"""Jinja filters for the HTML pages: dates in Japanese style and the terms' light Markdown."""
from __future__ import annotations

import re

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


def register(app) -> None:
    app.jinja_env.filters["markdown_sections"] = markdown_sections
    app.jinja_env.filters["markdown_light"] = markdown_light
    app.jinja_env.filters["md"] = _md
    app.jinja_env.filters["slot"] = _slot
