"""How LINE counts a message's text: UTF-16 code units (an emoji such as 🍎, or a rare kanji such as 𠮷, is two).

Stdlib only: the office profile checks, the renderer and the fakes of the Messaging API all count with it."""
from __future__ import annotations

MAX_TEXT = 5000   # a text message's text, and LINE's limit the other counts leave room within


def line_length(text: str) -> int:
    """`text`'s length as LINE counts it."""
    return len(text.encode("utf-16-le")) // 2
