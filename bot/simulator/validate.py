"""What LINE refuses in a `messages` array, in LINE's error shape (pure; the limits LINE documents)."""
from __future__ import annotations

import json
from typing import Any, Iterator

MESSAGE_TYPES = frozenset({"text", "textV2", "sticker", "image", "video", "audio", "location", "imagemap",
                           "template", "flex"})
ACTION_TYPES = frozenset({"postback", "message", "uri", "datetimepicker", "camera", "cameraRoll", "location",
                          "richmenuswitch", "clipboard"})
MAX_MESSAGES = 5
MAX_TEXT = 5000
MAX_ALT_TEXT = 400
MAX_QUICK_REPLY = 13
MAX_LABEL = 20
MAX_POSTBACK_DATA = 300
MAX_BUTTONS_ACTIONS = 4
MAX_CAROUSEL_COLUMNS = 10
MAX_FLEX_BUBBLES = 12
MAX_BUBBLE_BYTES = 30 * 1024

Detail = dict[str, str]


def _detail(message: str, prop: str) -> Detail:
    return {"message": message, "property": prop}


def _json_size(obj: Any) -> int:
    return len(json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


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
    label = action.get("label")
    if isinstance(label, str) and len(label) > MAX_LABEL:
        details.append(_detail(f"Length must be between 0 and {MAX_LABEL}", f"{prop}.label"))
    if kind in ("postback", "datetimepicker"):
        data = action.get("data")
        if not isinstance(data, str) or not 1 <= len(data) <= MAX_POSTBACK_DATA:
            details.append(_detail(f"Length must be between 1 and {MAX_POSTBACK_DATA}", f"{prop}.data"))
    if kind == "datetimepicker" and action.get("mode") not in ("date", "time", "datetime"):
        details.append(_detail("Must be one of date, time, datetime", f"{prop}.mode"))
    if kind == "message" and not (isinstance(action.get("text"), str) and action["text"]):
        details.append(_detail("Must not be empty", f"{prop}.text"))
    if kind == "uri" and not (isinstance(action.get("uri"), str) and action["uri"]):
        details.append(_detail("Must not be empty", f"{prop}.uri"))
    return details


def _check_template(tpl: dict, prop: str) -> list[Detail]:
    kind = tpl.get("type")
    actions = tpl.get("actions") or []
    if kind == "buttons" and not 1 <= len(actions) <= MAX_BUTTONS_ACTIONS:
        return [_detail(f"Size must be between 1 and {MAX_BUTTONS_ACTIONS}", f"{prop}.actions")]
    if kind == "confirm" and len(actions) != 2:
        return [_detail("Size must be 2", f"{prop}.actions")]
    if kind in ("carousel", "image_carousel"):
        columns = tpl.get("columns") or []
        if not 1 <= len(columns) <= MAX_CAROUSEL_COLUMNS:
            return [_detail(f"Size must be between 1 and {MAX_CAROUSEL_COLUMNS}", f"{prop}.columns")]
        if kind == "carousel" and len({len(c.get("actions") or []) for c in columns}) > 1:
            return [_detail("All columns must have the same number of actions", f"{prop}.columns")]
        return []
    if kind not in ("buttons", "confirm"):
        return [_detail("Invalid template type", f"{prop}.type")]
    return []


def _check_flex(contents: Any, prop: str) -> list[Detail]:
    if not isinstance(contents, dict) or contents.get("type") not in ("bubble", "carousel"):
        return [_detail("Must be a bubble or a carousel", f"{prop}.type")]
    bubbles = contents.get("contents") if contents["type"] == "carousel" else [contents]
    if not isinstance(bubbles, list) or not 1 <= len(bubbles) <= MAX_FLEX_BUBBLES:
        return [_detail(f"Size must be between 1 and {MAX_FLEX_BUBBLES}", f"{prop}.contents")]
    return [_detail("Bubble size must be at most 30KB", f"{prop}.contents[{i}]")
            for i, bubble in enumerate(bubbles) if _json_size(bubble) > MAX_BUBBLE_BYTES]


def _check_quick_reply(quick: Any, prop: str) -> list[Detail]:
    items = quick.get("items") if isinstance(quick, dict) else None
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_QUICK_REPLY:
        return [_detail(f"Size must be between 1 and {MAX_QUICK_REPLY}", f"{prop}.items")]
    return [_detail("Must have an action", f"{prop}.items[{i}].action")
            for i, item in enumerate(items) if not isinstance((item or {}).get("action"), dict)]


def _check_message(msg: Any, prop: str) -> list[Detail]:
    if not isinstance(msg, dict) or msg.get("type") not in MESSAGE_TYPES:
        return [_detail("Invalid message type", f"{prop}.type")]
    details: list[Detail] = []
    kind = msg["type"]
    if kind in ("text", "textV2"):
        text = msg.get("text")
        if not isinstance(text, str) or not 1 <= len(text) <= MAX_TEXT:
            details.append(_detail(f"Length must be between 1 and {MAX_TEXT}", f"{prop}.text"))
    if kind in ("template", "flex", "imagemap"):
        alt = msg.get("altText")
        if not isinstance(alt, str) or not 1 <= len(alt) <= MAX_ALT_TEXT:
            details.append(_detail(f"Length must be between 1 and {MAX_ALT_TEXT}", f"{prop}.altText"))
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
