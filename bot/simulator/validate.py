"""What LINE refuses in a `messages` array, in LINE's error shape (pure; the limits LINE documents).

One checker for every fake of the Messaging API: the dev simulator (bot/simulator/api.py) and the tests'
loopback fake (tests/fakeline.py) both answer 400 with these details, so a message LINE would refuse fails the
test or the simulator run that sends it.

Lengths: text and altText count UTF-16 code units as LINE does (an emoji such as 🍎 is two); labels, template
texts and the other action fields are counted in characters (LINE counts grapheme clusters there, never more).
Action labels are held to 20 everywhere (templates and quick replies; a Flex button allows more, but the bot
keeps its buttons as short as LINE's strictest place).
"""
from __future__ import annotations

import json
from typing import Any, Iterator

from bot.linetext import MAX_TEXT, line_length

MESSAGE_TYPES = frozenset({"text", "textV2", "sticker", "image", "video", "audio", "location", "imagemap",
                           "template", "flex"})
ACTION_TYPES = frozenset({"postback", "message", "uri", "datetimepicker", "camera", "cameraRoll", "location",
                          "richmenuswitch", "clipboard"})
URI_SCHEMES = ("http://", "https://", "line://", "tel:")
MAX_MESSAGES = 5
MAX_ALT_TEXT = 400
MAX_QUICK_REPLY = 13
MAX_LABEL = 20
MAX_POSTBACK_DATA = 300
MAX_DISPLAY_TEXT = 300
MAX_MESSAGE_ACTION_TEXT = 300
MAX_URI = 1000
MAX_BUTTONS_ACTIONS = 4
MAX_TEMPLATE_TITLE = 40
MAX_BUTTONS_TEXT = 160            # a buttons template's text; 60 with a title or an image
MAX_CONFIRM_TEXT = 240
MAX_COLUMN_TEXT = 120             # a carousel column's text; 60 with a title or an image
MAX_TEXT_WITH_TITLE = 60
MAX_CAROUSEL_COLUMNS = 10
MAX_FLEX_BUBBLES = 12
MAX_BUBBLE_BYTES = 30 * 1024
MAX_CAROUSEL_BYTES = 50 * 1024

Detail = dict[str, str]


def _detail(message: str, prop: str) -> Detail:
    return {"message": message, "property": prop}


def _json_size(obj: Any) -> int:
    return len(json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


def _length(value: Any, prop: str, low: int, high: int, utf16: bool = False) -> list[Detail]:
    """The detail for a string outside low..high (or not a string at all)."""
    size = (line_length(value) if utf16 else len(value)) if isinstance(value, str) else None
    if size is None or not low <= size <= high:
        return [_detail(f"Length must be between {low} and {high}", prop)]
    return []


def _actions(node: Any, prop: str) -> Iterator[tuple[str, dict]]:
    """Every action object under a message (property path, action)."""
    if isinstance(node, dict):
        action = node.get("action")
        if isinstance(action, dict):
            yield f"{prop}.action", action
        actions = node.get("actions")
        if isinstance(actions, list):
            for i, act in enumerate(actions):
                if isinstance(act, dict):
                    yield f"{prop}.actions[{i}]", act
        for key, value in node.items():
            if key not in ("action", "actions"):
                yield from _actions(value, f"{prop}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _actions(value, f"{prop}[{i}]")


def _check_action(action: dict, prop: str) -> list[Detail]:
    details: list[Detail] = []
    kind = action.get("type")
    if kind not in ACTION_TYPES:
        return [_detail("Invalid action type", f"{prop}.type")]
    if "label" in action:
        details += _length(action["label"], f"{prop}.label", 0, MAX_LABEL)
    if kind in ("postback", "datetimepicker"):
        details += _length(action.get("data"), f"{prop}.data", 1, MAX_POSTBACK_DATA)
    if kind == "postback" and "displayText" in action:
        details += _length(action["displayText"], f"{prop}.displayText", 1, MAX_DISPLAY_TEXT)
    if kind == "datetimepicker" and action.get("mode") not in ("date", "time", "datetime"):
        details.append(_detail("Must be one of date, time, datetime", f"{prop}.mode"))
    if kind == "message":
        details += _length(action.get("text"), f"{prop}.text", 1, MAX_MESSAGE_ACTION_TEXT)
    if kind == "uri":
        uri = action.get("uri")
        details += _length(uri, f"{prop}.uri", 1, MAX_URI)
        if isinstance(uri, str) and uri and not uri.startswith(URI_SCHEMES):
            details.append(_detail("Must be an http, https, line or tel URI", f"{prop}.uri"))
    return details


def _check_template_text(tpl: dict, prop: str, limit: int, with_title: bool) -> list[Detail]:
    """A template's (or carousel column's) title and text: the text's limit drops to 60 with a title or image."""
    details: list[Detail] = []
    if "title" in tpl:
        details += _length(tpl["title"], f"{prop}.title", 0, MAX_TEMPLATE_TITLE)
    if with_title and (tpl.get("title") or tpl.get("thumbnailImageUrl")):
        limit = MAX_TEXT_WITH_TITLE
    return details + _length(tpl.get("text"), f"{prop}.text", 1, limit)


def _check_template(tpl: dict, prop: str) -> list[Detail]:
    kind = tpl.get("type")
    actions = tpl.get("actions") or []
    if kind == "buttons":
        if not 1 <= len(actions) <= MAX_BUTTONS_ACTIONS:
            return [_detail(f"Size must be between 1 and {MAX_BUTTONS_ACTIONS}", f"{prop}.actions")]
        return _check_template_text(tpl, prop, MAX_BUTTONS_TEXT, with_title=True)
    if kind == "confirm":
        if len(actions) != 2:
            return [_detail("Size must be 2", f"{prop}.actions")]
        return _check_template_text(tpl, prop, MAX_CONFIRM_TEXT, with_title=False)
    if kind in ("carousel", "image_carousel"):
        columns = tpl.get("columns") or []
        if not 1 <= len(columns) <= MAX_CAROUSEL_COLUMNS:
            return [_detail(f"Size must be between 1 and {MAX_CAROUSEL_COLUMNS}", f"{prop}.columns")]
        if kind == "carousel" and len({len(c.get("actions") or []) for c in columns}) > 1:
            return [_detail("All columns must have the same number of actions", f"{prop}.columns")]
        if kind == "image_carousel":
            return []
        details: list[Detail] = []
        for i, column in enumerate(columns):
            details += _check_template_text(column, f"{prop}.columns[{i}]", MAX_COLUMN_TEXT, with_title=True)
        return details
    return [_detail("Invalid template type", f"{prop}.type")]


def _check_flex(contents: Any, prop: str) -> list[Detail]:
    if not isinstance(contents, dict) or contents.get("type") not in ("bubble", "carousel"):
        return [_detail("Must be a bubble or a carousel", f"{prop}.type")]
    bubbles = contents.get("contents") if contents["type"] == "carousel" else [contents]
    if not isinstance(bubbles, list) or not 1 <= len(bubbles) <= MAX_FLEX_BUBBLES:
        return [_detail(f"Size must be between 1 and {MAX_FLEX_BUBBLES}", f"{prop}.contents")]
    details = [_detail("Bubble size must be at most 30KB", f"{prop}.contents[{i}]")
               for i, bubble in enumerate(bubbles) if _json_size(bubble) > MAX_BUBBLE_BYTES]
    if contents["type"] == "carousel" and _json_size(contents) > MAX_CAROUSEL_BYTES:
        details.append(_detail("Carousel size must be at most 50KB", prop))
    return details


def _check_quick_reply(quick: Any, prop: str) -> list[Detail]:
    items = quick.get("items") if isinstance(quick, dict) else None
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_QUICK_REPLY:
        return [_detail(f"Size must be between 1 and {MAX_QUICK_REPLY}", f"{prop}.items")]
    details: list[Detail] = []
    for i, item in enumerate(items):
        action = (item or {}).get("action") if isinstance(item, dict) else None
        if not isinstance(action, dict):
            details.append(_detail("Must have an action", f"{prop}.items[{i}].action"))
            continue
        # A quick reply button shows its label, and a postback one says what was tapped in the chat.
        if action.get("type") not in ("camera", "cameraRoll", "location") and not action.get("label"):
            details.append(_detail("Must be specified", f"{prop}.items[{i}].action.label"))
        if action.get("type") == "postback" and "displayText" not in action and "text" not in action:
            details.append(_detail("Must be specified", f"{prop}.items[{i}].action.displayText"))
    return details


def _check_message(msg: Any, prop: str) -> list[Detail]:
    if not isinstance(msg, dict) or msg.get("type") not in MESSAGE_TYPES:
        return [_detail("Invalid message type", f"{prop}.type")]
    details: list[Detail] = []
    kind = msg["type"]
    if kind in ("text", "textV2"):
        details += _length(msg.get("text"), f"{prop}.text", 1, MAX_TEXT, utf16=True)
    if kind in ("template", "flex", "imagemap"):
        details += _length(msg.get("altText"), f"{prop}.altText", 1, MAX_ALT_TEXT, utf16=True)
    if kind == "template":
        details += _check_template(msg.get("template") or {}, f"{prop}.template")
    if kind == "flex":
        details += _check_flex(msg.get("contents"), f"{prop}.contents")
    if "quickReply" in msg:
        details += _check_quick_reply(msg["quickReply"], f"{prop}.quickReply")
    for action_prop, action in _actions(msg, prop):
        details += _check_action(action, action_prop)
    return details


def validate_messages(messages: Any) -> list[Detail]:
    """LINE-style `details` for what is wrong with a `messages` array ([] when LINE would accept it)."""
    if not isinstance(messages, list) or not 1 <= len(messages) <= MAX_MESSAGES:
        return [_detail(f"Size must be between 1 and {MAX_MESSAGES}", "messages")]
    details: list[Detail] = []
    for i, msg in enumerate(messages):
        details += _check_message(msg, f"messages[{i}]")
    return details
