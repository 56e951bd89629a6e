"""People talking to the bot, as LINE delivers them: real-shaped, correctly signed webhooks.

``LineUser`` is one job seeker in a 1:1 chat; ``StaffGroup`` is the office's staff group chat.
Both post to ``/callback/<office>`` through a Flask test client or, given a base URL string,
over HTTP with ``requests``.  Each high-level call returns the HTTP response (a Flask
``TestResponse`` or a ``requests.Response``)::

    user = LineUser(client, "sakata", channel_secret=SECRET, fake=fake_line)
    assert user.says("予約").status_code == 200
    user.taps("action=agree")
    assert "同意" in fake_line.texts_to(user.user_id)[-1]    # or: user.texts()

The bodies match what the LINE Platform sends (checked against ``linebot.v3.WebhookParser``):
compact UTF-8 JSON ``{"destination": ..., "events": [...]}``; each event has ``type``,
``mode`` ("active"; "standby" events carry no reply token), ``timestamp`` (ms),
``source``, ``webhookEventId`` (a ULID), ``deliveryContext.isRedelivery`` and, where LINE gives
one, a 32-hex ``replyToken`` (registered with the fake, when given, so replies are attributed).
Message contents carry ``id``, ``quoteToken`` and ``markAsReadToken`` as LINE's do.

Lower level, for unusual deliveries (same body twice, out-of-order timestamps, redeliveries,
forged signatures, standby, batches)::

    ev1 = user.text_event("はい", timestamp=2000)
    ev0 = user.text_event("予約", timestamp=1000)
    body = user.body([ev1, ev0])               # bytes, exactly what gets signed
    user.post(body); user.post(body)           # the same delivery twice
    user.post(user.body(as_redelivery(ev0)))   # LINE's redelivery of ev0
    user.post(body, signature="forged")        # or signature=False: no header at all

Timestamps come from ``clock``: a callable returning epoch milliseconds or a ``datetime``, or
an object with ``now()`` (the app's ``bot.clock.Clock``).  Default: ``time.time() * 1000``.
"""
from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import secrets
import time
import uuid
from datetime import datetime
from typing import Any

__all__ = ["LineUser", "StaffGroup", "sign", "ulid", "as_redelivery", "DEFAULT"]

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


class _Default:
    def __repr__(self) -> str:
        return "DEFAULT"


#: Sentinel: "use the helper's own value" (so that None can mean "leave it out").
DEFAULT: Any = _Default()


def ulid(ms: int | None = None) -> str:
    """A ULID (26 Crockford base32 chars: 48-bit ms time + 80 random bits), like webhookEventId."""
    ms = int(time.time() * 1000) if ms is None else int(ms)
    value = ((ms & ((1 << 48) - 1)) << 80) | secrets.randbits(80)
    return "".join(_CROCKFORD[(value >> shift) & 31] for shift in range(125, -1, -5))


def sign(body: bytes, channel_secret: str) -> str:
    """``X-Line-Signature``: Base64 of HMAC-SHA256 over the raw body, keyed by the channel secret."""
    digest = hmac.new(channel_secret.encode("utf-8"), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def as_redelivery(event: dict) -> dict:
    """A copy of ``event`` as LINE redelivers it: same webhookEventId, ``isRedelivery: true``."""
    again = copy.deepcopy(event)
    again["deliveryContext"] = {"isRedelivery": True}
    return again


def new_user_id() -> str:
    return "U" + uuid.uuid4().hex


def new_group_id() -> str:
    return "C" + uuid.uuid4().hex


def _message_id() -> str:
    return str(secrets.randbelow(9 * 10**17) + 10**17)


def _quote_token() -> str:
    return secrets.token_urlsafe(96)


def _to_ms(value: Any) -> int:
    if isinstance(value, datetime):
        return int(value.timestamp() * 1000)
    return int(value)


class _Chat:
    """What LineUser and StaffGroup share: event building, signing and posting."""

    #: event types whose real webhooks carry a reply token (in mode "active")
    REPLYABLE = frozenset({"message", "follow", "join", "memberJoined", "postback", "beacon", "membership",
                           "accountLink", "things", "videoPlayComplete"})

    def __init__(
        self,
        target: Any,
        office: str = "sakata",
        channel_secret: str | None = None,
        *,
        fake: Any = None,
        clock: Any = None,
        destination: str | None = None,
        path: str | None = None,
        timeout: float = 10.0,
    ):
        if not channel_secret:
            raise ValueError("channel_secret is required (the app verifies X-Line-Signature with it)")
        self.target = target
        self.office = office
        self.channel_secret = channel_secret
        self.fake = fake
        self.clock = clock
        self.destination = destination or (
            getattr(fake, "bot_user_id", None) or "U" + hashlib.sha256(office.encode()).hexdigest()[:32])
        self.path = path or f"/callback/{office}"
        self.timeout = timeout
        self.last_event: dict | None = None
        self.last_body: bytes | None = None
        self.last_reply_token: str | None = None
        self.history: list[dict] = []   # every event built by the high-level methods, in order

    # ---------------------------------------------------------------- building

    def now_ms(self) -> int:
        """The next event's timestamp (epoch ms) from ``clock``."""
        clock = self.clock
        if clock is None:
            return int(time.time() * 1000)
        return _to_ms(clock() if callable(clock) else clock.now())

    def _chat_id(self) -> str:
        raise NotImplementedError

    def _source(self, user_id: Any = DEFAULT) -> dict:
        raise NotImplementedError

    def event(
        self,
        type: str,  # noqa: A002 - LINE's field name
        *,
        reply: bool | None = None,
        reply_token: str | None = None,
        source: dict | None = None,
        mode: str = "active",
        redelivery: bool = False,
        timestamp: int | datetime | None = None,
        webhook_event_id: str | None = None,
        **fields: Any,
    ) -> dict:
        """One webhook event object of ``type`` from this chat, with ``fields`` added verbatim.

        ``reply``: include a replyToken (default: as LINE does, i.e. for replyable types in
        "active" mode).  A new token is registered with the fake for this chat.
        """
        ts = self.now_ms() if timestamp is None else _to_ms(timestamp)
        ev: dict[str, Any] = {
            "type": type,
            "mode": mode,
            "timestamp": ts,
            "source": source if source is not None else self._source(),
            "webhookEventId": webhook_event_id or ulid(ts),
            "deliveryContext": {"isRedelivery": bool(redelivery)},
        }
        if reply is None:
            reply = type in self.REPLYABLE and mode == "active"
        if reply or reply_token:
            token = reply_token or secrets.token_hex(16)
            ev["replyToken"] = token
            if self.fake is not None:
                self.fake.register_reply_token(token, self._chat_id())
        ev.update(fields)
        return ev

    def body(self, events: dict | list[dict], *, destination: str | None = None) -> bytes:
        """The raw webhook body (bytes) for one event or a list of events."""
        if isinstance(events, dict):
            events = [events]
        payload = {"destination": destination or self.destination, "events": list(events)}
        return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

    # -------------------------------------------------------------- posting

    def post(self, body: bytes | str | dict | list, signature: str | bool | None = None,
             headers: dict | None = None):
        """POST a webhook body as LINE would.  Returns the HTTP response.

        ``body``: bytes (sent as is), str, a full payload dict, or event(s) (wrapped by ``body()``).
        ``signature``: None signs correctly; a string is sent instead; False sends no header.
        ``headers``: extra/overriding headers.
        """
        if isinstance(body, list) or (isinstance(body, dict) and "events" not in body):
            raw = self.body(body)
        elif isinstance(body, dict):
            raw = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        elif isinstance(body, str):
            raw = body.encode("utf-8")
        else:
            raw = bytes(body)
        hdrs = {"Content-Type": "application/json; charset=utf-8", "User-Agent": "LineBotWebhook/2.0"}
        if signature is None:
            hdrs["X-Line-Signature"] = sign(raw, self.channel_secret)
        elif signature is not False:
            hdrs["X-Line-Signature"] = str(signature)
        hdrs.update(headers or {})
        self.last_body = raw
        if isinstance(self.target, str):
            import requests  # only when posting over real HTTP

            return requests.post(self.target.rstrip("/") + self.path, data=raw, headers=hdrs,
                                 timeout=self.timeout)
        return self.target.post(self.path, data=raw, headers=hdrs)

    def send(self, *events: dict, signature: str | bool | None = None, headers: dict | None = None):
        """Post these events in one webhook body (remembering the last one)."""
        for ev in events:
            self.history.append(ev)
            self.last_event = ev
            if "replyToken" in ev:
                self.last_reply_token = ev["replyToken"]
        return self.post(self.body(list(events)), signature=signature, headers=headers)

    # ------------------------------------------------------- what came back

    def messages(self) -> list[dict]:
        """Messages the fake delivered to this chat (needs ``fake=``)."""
        return self._need_fake().messages_to(self._chat_id())

    def texts(self) -> list[str]:
        """Texts (altText for flex/template) the fake delivered to this chat (needs ``fake=``)."""
        return self._need_fake().texts_to(self._chat_id())

    def _need_fake(self):
        if self.fake is None:
            raise RuntimeError(f"{type(self).__name__} was created without fake=")
        return self.fake

    # ----------------------------------------------------- message contents

    @staticmethod
    def text_message(text: str, **extra: Any) -> dict:
        return {"id": _message_id(), "type": "text", "quoteToken": _quote_token(),
                "markAsReadToken": _quote_token(), "text": text, **extra}

    @staticmethod
    def sticker_message(package_id: str = "446", sticker_id: str = "1988",
                        resource_type: str = "STATIC", keywords: list[str] | None = None) -> dict:
        msg = {"id": _message_id(), "type": "sticker", "quoteToken": _quote_token(),
               "markAsReadToken": _quote_token(), "packageId": str(package_id),
               "stickerId": str(sticker_id), "stickerResourceType": resource_type}
        if keywords:
            msg["keywords"] = keywords[:15]
        return msg

    @staticmethod
    def image_message() -> dict:
        return {"id": _message_id(), "type": "image", "quoteToken": _quote_token(),
                "markAsReadToken": _quote_token(), "contentProvider": {"type": "line"}}

    @staticmethod
    def location_message(title: str | None = "酒田市役所", address: str | None = "山形県酒田市本町二丁目2-45",
                         latitude: float = 38.914556, longitude: float = 139.836477) -> dict:
        msg: dict[str, Any] = {"id": _message_id(), "type": "location", "markAsReadToken": _quote_token(),
                               "latitude": latitude, "longitude": longitude}
        if title is not None:
            msg["title"] = title
        if address is not None:
            msg["address"] = address
        return msg

    @staticmethod
    def postback(data: str, params: dict | None = None) -> dict:
        content: dict[str, Any] = {"data": data}
        if params is not None:
            content["params"] = params
        return content


class LineUser(_Chat):
    """One LINE user in a 1:1 chat with the office's bot.

    ``LineUser(client_or_base_url, office="sakata", channel_secret, user_id=None, fake=None, *,
    clock=None, destination=None, path=None, timeout=10.0)``.  ``user_id`` defaults to a fresh ``U`` + 32 hex.

    Every high-level method accepts the event options of ``event()``: ``mode="standby"``,
    ``redelivery=True``, ``timestamp=...``, ``webhook_event_id=...``, ``reply=False``,
    ``signature=...`` / ``headers=...`` (passed to ``post``).
    """

    def __init__(self, target: Any, office: str = "sakata", channel_secret: str | None = None,
                 user_id: str | None = None, fake: Any = None, **kwargs: Any):
        super().__init__(target, office, channel_secret=channel_secret, fake=fake, **kwargs)
        self.user_id = user_id or new_user_id()

    def __repr__(self) -> str:
        return f"LineUser({self.user_id!r}, office={self.office!r})"

    def _chat_id(self) -> str:
        return self.user_id

    def _source(self, user_id: Any = DEFAULT) -> dict:
        return {"type": "user", "userId": self.user_id}

    # event builders (no posting) ---------------------------------------------------------
    def text_event(self, text: str, **opts: Any) -> dict:
        return self.event("message", message=self.text_message(text), **opts)

    def postback_event(self, data: str, params: dict | None = None, **opts: Any) -> dict:
        return self.event("postback", postback=self.postback(data, params), **opts)

    def follow_event(self, unblocked: bool = False, **opts: Any) -> dict:
        return self.event("follow", follow={"isUnblocked": unblocked}, **opts)

    def unfollow_event(self, **opts: Any) -> dict:
        return self.event("unfollow", **opts)

    # conversation verbs (post and return the response) -----------------------------------
    def says(self, text: str, **opts: Any):
        """The user sends a text message."""
        post_opts = _pop_post_opts(opts)
        return self.send(self.text_event(text, **opts), **post_opts)

    def taps(self, data: str, params: dict | None = None, **opts: Any):
        """A postback (button, quick reply, rich menu).  ``params`` for a datetime picker, e.g.
        ``{"date": "2026-05-11"}``, ``{"time": "14:00"}`` or ``{"datetime": "2026-05-11T14:00"}``."""
        post_opts = _pop_post_opts(opts)
        return self.send(self.postback_event(data, params, **opts), **post_opts)

    def sends_sticker(self, package_id: str = "446", sticker_id: str = "1988", **opts: Any):
        post_opts = _pop_post_opts(opts)
        return self.send(self.event("message", message=self.sticker_message(package_id, sticker_id), **opts),
                         **post_opts)

    def sends_image(self, **opts: Any):
        post_opts = _pop_post_opts(opts)
        return self.send(self.event("message", message=self.image_message(), **opts), **post_opts)

    def sends_location(self, title: str | None = "酒田市役所", address: str | None = "山形県酒田市本町二丁目2-45",
                       latitude: float = 38.914556, longitude: float = 139.836477, **opts: Any):
        post_opts = _pop_post_opts(opts)
        msg = self.location_message(title, address, latitude, longitude)
        return self.send(self.event("message", message=msg, **opts), **post_opts)

    def follows(self, unblocked: bool = False, **opts: Any):
        """Adds the account as a friend (``unblocked=True``: unblocks it)."""
        post_opts = _pop_post_opts(opts)
        return self.send(self.follow_event(unblocked, **opts), **post_opts)

    def unfollows(self, **opts: Any):
        """Blocks the account (no reply token, as on LINE)."""
        post_opts = _pop_post_opts(opts)
        return self.send(self.unfollow_event(**opts), **post_opts)


class StaffGroup(_Chat):
    """The office's staff group chat.

    ``StaffGroup(client_or_base_url, office="sakata", channel_secret, group_id=None, fake=None, *,
    member_id=None, clock=None, ...)``.  ``member_id`` is the staff member who acts
    by default; pass ``user_id=None`` to a verb to leave ``source.userId`` out (postbacks from
    LINE for PC, users who have not agreed to the privacy policy).
    """

    def __init__(self, target: Any, office: str = "sakata", channel_secret: str | None = None,
                 group_id: str | None = None, fake: Any = None, *, member_id: str | None = None,
                 **kwargs: Any):
        super().__init__(target, office, channel_secret=channel_secret, fake=fake, **kwargs)
        self.group_id = group_id or new_group_id()
        self.member_id = member_id or new_user_id()

    def __repr__(self) -> str:
        return f"StaffGroup({self.group_id!r}, office={self.office!r})"

    def _chat_id(self) -> str:
        return self.group_id

    def _source(self, user_id: Any = DEFAULT) -> dict:
        src = {"type": "group", "groupId": self.group_id}
        uid = self.member_id if user_id is DEFAULT else user_id
        if uid is not None:
            src["userId"] = uid
        return src

    def text_event(self, text: str, user_id: Any = DEFAULT, **opts: Any) -> dict:
        return self.event("message", source=self._source(user_id), message=self.text_message(text), **opts)

    def postback_event(self, data: str, params: dict | None = None, user_id: Any = DEFAULT, **opts: Any) -> dict:
        return self.event("postback", source=self._source(user_id), postback=self.postback(data, params), **opts)

    def joins(self, **opts: Any):
        """The bot is added to the group (``join``; source has no userId)."""
        post_opts = _pop_post_opts(opts)
        return self.send(self.event("join", source=self._source(None), **opts), **post_opts)

    def leaves(self, **opts: Any):
        """The bot is removed from the group (``leave``; no reply token)."""
        post_opts = _pop_post_opts(opts)
        return self.send(self.event("leave", source=self._source(None), **opts), **post_opts)

    def member_joins(self, *user_ids: str, **opts: Any):
        """Users join the group (``memberJoined``); default: a fresh user id."""
        post_opts = _pop_post_opts(opts)
        members = [{"type": "user", "userId": u} for u in (user_ids or (new_user_id(),))]
        return self.send(self.event("memberJoined", source=self._source(None), joined={"members": members},
                                    **opts), **post_opts)

    def member_leaves(self, *user_ids: str, **opts: Any):
        """Users leave the group (``memberLeft``; no reply token)."""
        post_opts = _pop_post_opts(opts)
        members = [{"type": "user", "userId": u} for u in (user_ids or (self.member_id,))]
        return self.send(self.event("memberLeft", source=self._source(None), left={"members": members},
                                    **opts), **post_opts)

    def says(self, text: str, user_id: Any = DEFAULT, **opts: Any):
        """A member writes in the group (``user_id=None``: userId absent)."""
        post_opts = _pop_post_opts(opts)
        return self.send(self.text_event(text, user_id, **opts), **post_opts)

    def taps(self, data: str, params: dict | None = None, user_id: Any = DEFAULT, **opts: Any):
        """A member taps a postback button in the group (``user_id=None``: userId absent)."""
        post_opts = _pop_post_opts(opts)
        return self.send(self.postback_event(data, params, user_id, **opts), **post_opts)


def _pop_post_opts(opts: dict) -> dict:
    return {k: opts.pop(k) for k in ("signature", "headers") if k in opts}
