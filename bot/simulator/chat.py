"""What a simulated user or staff member does, turned into a signed webhook event for the real callback."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Mapping

from flask import Flask

from bot.linetext import MAX_TEXT, line_length
from bot.simulator import events, store, webhook_post

KINDS = frozenset({"text", "postback", "sticker", "image", "follow", "unfollow", "join", "leave"})
USER_KINDS = KINDS - {"join", "leave"}
GROUP_KINDS = KINDS - {"follow", "unfollow"}
NO_REPLY_TOKEN = frozenset({"unfollow", "leave"})
PICKER_PARAMS = frozenset({"date", "time", "datetime"})
MAX_POSTBACK_DATA = 300


class ActionError(ValueError):
    """The page asked for something LINE would not send."""


@dataclass(frozen=True)
class Action:
    """One thing done in a chat: typing, tapping, a sticker, an image, (un)following."""

    kind: str
    text: str = ""
    data: str = ""
    display_text: str | None = None
    params: Mapping[str, str] = field(default_factory=dict)
    package_id: str = "446"
    sticker_id: str = "1988"
    unblocked: bool = False

    @classmethod
    def from_json(cls, raw: Any) -> "Action":
        if not isinstance(raw, dict) or raw.get("type") not in KINDS:
            raise ActionError("unknown action")
        kind = raw["type"]
        text = str(raw.get("text") or "")
        data = str(raw.get("data") or "")
        if kind == "text" and not 1 <= line_length(text) <= MAX_TEXT:   # as LINE counts: an emoji is two
            raise ActionError(f"text must be 1 to {MAX_TEXT} characters")
        if kind == "postback" and not 1 <= len(data) <= MAX_POSTBACK_DATA:
            raise ActionError("postback data must be 1 to 300 characters")
        params = raw.get("params") or {}
        if not isinstance(params, dict) or not set(params) <= PICKER_PARAMS:
            raise ActionError("params may hold date, time or datetime")
        display = raw.get("displayText")
        return cls(kind=kind, text=text, data=data, display_text=str(display) if display else None,
                   params={k: str(v) for k, v in params.items()},
                   package_id=str(raw.get("packageId") or "446"), sticker_id=str(raw.get("stickerId") or "1988"),
                   unblocked=bool(raw.get("unblocked")))


def staff_group(config, office_id: str) -> tuple[str, bool]:
    """The office's staff group id, and whether it is configured (LINE_STAFF_GROUP_ID_<OFFICE>)."""
    configured = config.staff_group_id(office_id)
    return (configured or events.default_group_id(office_id)), bool(configured)


def _event_and_bubble(action: Action, src: dict, stamp: int, token: str | None) -> tuple[dict, dict | None, str]:
    """The webhook event, the bubble the chat shows for it (None: nothing shown), and who shows it."""
    if action.kind == "text":
        return (events.event("message", src, stamp, token, message=events.text_message(action.text)),
                {"type": "text", "text": action.text}, "user")
    if action.kind == "sticker":
        message = events.sticker_message(action.package_id, action.sticker_id)
        return (events.event("message", src, stamp, token, message=message),
                {"type": "sticker", "packageId": action.package_id, "stickerId": action.sticker_id}, "user")
    if action.kind == "image":
        return (events.event("message", src, stamp, token, message=events.image_message()),
                {"type": "image"}, "user")
    if action.kind == "postback":
        ev = events.event("postback", src, stamp, token, postback=events.postback_content(action.data, action.params))
        bubble = {"type": "text", "text": action.display_text} if action.display_text else None
        return ev, bubble, "user"
    if action.kind == "follow":
        return (events.event("follow", src, stamp, token, follow={"isUnblocked": action.unblocked}),
                {"type": "event", "event": "unblock" if action.unblocked else "follow"}, "system")
    if action.kind == "join" and src["type"] == "group":
        join_src = {k: v for k, v in src.items() if k != "userId"}
        return events.event("join", join_src, stamp, token), {"type": "event", "event": "join"}, "system"
    if action.kind == "leave" and src["type"] == "group":
        leave_src = {k: v for k, v in src.items() if k != "userId"}
        return events.event("leave", leave_src, stamp), {"type": "event", "event": "removed"}, "system"
    if action.kind == "unfollow" and src["type"] == "user":
        return events.event("unfollow", src, stamp), {"type": "event", "event": "unfollow"}, "system"
    raise ActionError("this action does not exist in this kind of chat")


def act(app: Flask, office_id: str, chat_id: str, action: Action) -> int:
    """Record what the chat shows, issue the reply token, then post the signed event to the callback.

    The records commit before the callback runs: the bot's reply comes back through the fake API
    (another request) and must find the token.
    """
    rt = app.extensions["madoguchi"]
    is_group = chat_id.startswith("C")
    if action.kind not in (GROUP_KINDS if is_group else USER_KINDS):
        raise ActionError("this action does not exist in this kind of chat")
    with rt.db.transaction() as s:
        now = rt.clock.now()
        stamp = store.next_timestamp(s, office_id, chat_id, int(now.timestamp() * 1000))
        token = None if action.kind in NO_REPLY_TOKEN else events.reply_token()
        if token:
            store.issue_reply_token(s, office_id, chat_id, token, datetime.now(timezone.utc))
        src = events.source(chat_id, events.staff_member_id(office_id) if is_group else None)
        event, bubble, sender = _event_and_bubble(action, src, stamp, token)
        if bubble is not None:
            store.add_message(s, office_id, chat_id, sender, "user" if sender == "user" else "event", bubble, now)
        if action.kind in ("follow", "unfollow"):
            store.set_followed(s, office_id, chat_id, action.kind == "follow")
    raw = events.body(events.bot_user_id(office_id), [event])
    return webhook_post.post(app, office_id, raw, events.sign(raw, rt.config.channel_secret(office_id)))


def add_user(app: Flask, office_id: str, display_name: str) -> str:
    """A new test user who adds the account as a friend (a follow event, as on LINE)."""
    rt = app.extensions["madoguchi"]
    user_id = events.new_user_id()
    with rt.db.transaction() as s:
        store.add_user(s, office_id, user_id, display_name, rt.clock.now())
    act(app, office_id, user_id, Action(kind="follow"))
    return user_id
