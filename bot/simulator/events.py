"""LINE-shaped webhook events and their signature, exactly as the platform sends them (pure)."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from typing import Any

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def ulid(ms: int) -> str:
    """A ULID like LINE's webhookEventId: 48-bit milliseconds then 80 random bits, Crockford base32."""
    value = ((ms & ((1 << 48) - 1)) << 80) | secrets.randbits(80)
    return "".join(_CROCKFORD[(value >> shift) & 31] for shift in range(125, -1, -5))


def reply_token() -> str:
    return secrets.token_hex(16)


def message_id() -> str:
    """LINE message ids are 18-digit decimal strings."""
    return str(10**17 + secrets.randbelow(9 * 10**17))


def quote_token() -> str:
    return secrets.token_urlsafe(96)


def bot_user_id(office_id: str) -> str:
    """The `destination` of an office's webhooks: the bot's own user id, stable per office."""
    return "U" + hashlib.sha256(f"madoguchi-simulator-bot-{office_id}".encode()).hexdigest()[:32]


def default_group_id(office_id: str) -> str:
    """The simulated staff group of an office when LINE_STAFF_GROUP_ID_<OFFICE> is not set."""
    return "C" + hashlib.sha256(f"madoguchi-simulator-group-{office_id}".encode()).hexdigest()[:32]


def staff_member_id(office_id: str) -> str:
    """The staff member who acts in the simulated group."""
    return "U" + hashlib.sha256(f"madoguchi-simulator-staff-{office_id}".encode()).hexdigest()[:32]


def new_user_id() -> str:
    """A simulated user's id: 33 characters like LINE's, recognisable by its `Usim` prefix."""
    return "Usim" + secrets.token_hex(15)[:29]


def source(chat_id: str, member_id: str | None = None) -> dict:
    """`source` of an event in a 1:1 chat (U…) or a group (C…), with the acting member if any."""
    if chat_id.startswith("C"):
        src: dict[str, Any] = {"type": "group", "groupId": chat_id}
        if member_id:
            src["userId"] = member_id
        return src
    return {"type": "user", "userId": chat_id}


def event(kind: str, src: dict, timestamp_ms: int, token: str | None = None, **fields: Any) -> dict:
    """One event object with the fields every LINE event carries."""
    ev: dict[str, Any] = {
        "type": kind,
        "mode": "active",
        "timestamp": timestamp_ms,
        "source": src,
        "webhookEventId": ulid(timestamp_ms),
        "deliveryContext": {"isRedelivery": False},
    }
    if token:
        ev["replyToken"] = token
    ev.update(fields)
    return ev


def text_message(text: str) -> dict:
    return {"id": message_id(), "type": "text", "quoteToken": quote_token(),
            "markAsReadToken": quote_token(), "text": text}


def sticker_message(package_id: str, sticker_id: str) -> dict:
    return {"id": message_id(), "type": "sticker", "quoteToken": quote_token(),
            "markAsReadToken": quote_token(), "packageId": package_id, "stickerId": sticker_id,
            "stickerResourceType": "STATIC"}


def image_message() -> dict:
    return {"id": message_id(), "type": "image", "quoteToken": quote_token(),
            "markAsReadToken": quote_token(), "contentProvider": {"type": "line"}}


def postback_content(data: str, params: dict[str, str] | None) -> dict:
    content: dict[str, Any] = {"data": data}
    if params:
        content["params"] = dict(params)
    return content


def body(destination: str, events: list[dict]) -> bytes:
    """The raw webhook body: compact UTF-8 JSON, exactly the bytes that get signed."""
    payload = {"destination": destination, "events": events}
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def sign(raw: bytes, channel_secret: str) -> str:
    """X-Line-Signature: Base64 of HMAC-SHA256 over the raw body, keyed by the channel secret."""
    digest = hmac.new(channel_secret.encode("utf-8"), raw, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")
