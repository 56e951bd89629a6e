"""POST /callback/<office>: verify, parse, hand each event to dispatch, answer LINE fast."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging

from flask import Blueprint, abort, current_app, request
from flask.sessions import SecureCookieSessionInterface
from linebot.v3 import WebhookParser
from linebot.v3.models.events import UnknownEvent
from linebot.v3.webhooks import Event
from werkzeug.exceptions import RequestEntityTooLarge

from bot.db import describe_error
from bot.dispatch import Dispatcher

log = logging.getLogger(__name__)
bp = Blueprint("webhook", __name__)
PATH_PREFIX = "/callback/"
MAX_BODY = 1024 * 1024


class SessionInterface(SecureCookieSessionInterface):
    """Flask's cookie session, except for the webhook: LINE sends no cookie and the webhook reads no session, so
    opening one (a signing serializer built, the cookies read) was work done for nothing on every event. The
    webhook gets Flask's null session, which refuses to be written."""

    def open_session(self, app, request):  # type: ignore[override]
        if request.path.startswith(PATH_PREFIX):
            return None
        return super().open_session(app, request)


def _read_body() -> bytes:
    """The raw body, refused (413) past MAX_BODY even without Content-Length (chunked).

    Werkzeug stops reading a stream at the limit without saying so; reading one byte past
    the limit tells a body of exactly MAX_BODY from a longer one.
    """
    request.max_content_length = MAX_BODY + 1
    try:
        raw = request.get_data(cache=False)
    except RequestEntityTooLarge:
        abort(413)
    if len(raw) > MAX_BODY:
        abort(413)
    return raw


def _signed(raw: bytes, signature: str, secret: str | None) -> bool:
    """LINE's X-Line-Signature over the body's bytes as they came (base64 of HMAC-SHA256 under the channel secret).

    Checked on the bytes before anything reads them: the SDK checks the body as text, so a body that is not
    UTF-8 would be refused as "not a webhook body" before its signature was ever looked at."""
    if not secret:  # no secret configured (production refuses to start so): nothing can be signed with it
        return False
    expected = base64.b64encode(hmac.new(secret.encode("utf-8"), raw, hashlib.sha256).digest())
    return hmac.compare_digest(signature.encode("utf-8", errors="replace"), expected)


def _standby_events(events: list, text: str) -> list:
    """The events, with those LINE sent in standby (another channel, a module, answers the chat) read as their
    own type: LINE leaves out their reply token, which the SDK's models of follow, join and memberJoined
    require, so the SDK reads a standby follow as an unknown event without its user. Read again with an empty
    token (nothing can be replied to it), a block and an unblock in standby both tell whether the user follows."""
    if not any(isinstance(e, UnknownEvent) and e.mode == "standby" for e in events):
        return events
    bodies = json.loads(text).get("events") or []
    read = list(events)
    for i, (event, body) in enumerate(zip(events, bodies)):
        if isinstance(event, UnknownEvent) and event.mode == "standby" and isinstance(body, dict) \
                and body.get("replyToken") is None:
            try:
                read[i] = Event.from_dict({**body, "replyToken": ""})
            except ValueError:  # a type this SDK does not know: unknown, as before
                pass
    return read


def _refuse(status: int, office_id: str, reason: str):
    """Answer a refused delivery, saying why in the log (never anything from the body): LINE's Verify button
    shows only the status, so the log is where the operator finds a wrong channel secret or a disabled office."""
    log.warning("webhook office=%s refused %d: %s", office_id, status, reason)
    abort(status)


@bp.post("/callback/<office_id>")
def callback(office_id: str):
    rt = current_app.extensions["madoguchi"]
    office = rt.enabled_office(office_id)
    if office is None:
        if office_id in rt.offices:
            _refuse(404, office_id, "the office is disabled (`enabled: false` in its profile)")
        # The id itself is not logged (any client's text): the offices served are, so that a Verify answered 404
        # for a mistyped webhook URL says what the URL should name.
        served = ", ".join(f"/callback/{known}" for known in sorted(rt.offices) if rt.offices[known].enabled)
        log.warning("webhook refused 404: the address names no office; the webhook URLs are %s", served)
        abort(404)
    if (request.content_length or 0) > MAX_BODY:
        _refuse(413, office.id, f"body over {MAX_BODY} bytes")
    raw = _read_body()
    signature = request.headers.get("X-Line-Signature")
    if not signature:
        _refuse(400, office.id, "no X-Line-Signature header: not sent by LINE")
    secret = rt.config.channel_secret(office.id)
    if not _signed(raw, signature, secret):
        _refuse(400, office.id, f"X-Line-Signature does not match the channel secret in use "
                                f"(LINE_CHANNEL_SECRET_{office.id.upper()} or the channels store): either it "
                                "is not this channel's secret (LINE Developers console, Basic settings) or "
                                "the request is not from LINE")
    try:
        # Verified above, on the bytes: the SDK only parses.
        text = raw.decode("utf-8")
        payload = WebhookParser(secret, skip_signature_verification=lambda: True).parse(
            text, signature, as_payload=True)
        events = _standby_events(list(payload.events or []), text)
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError, UnicodeDecodeError):
        _refuse(400, office.id, "signed, but not a webhook body")
    if request.mimetype != "application/json":
        _refuse(400, office.id, "signed, but not sent as JSON")  # not sent as LINE sends a webhook
    dispatcher = Dispatcher(rt)
    replies: list = []  # reply rows reserved by dispatch, or ids to claim
    for event in sorted(events, key=lambda e: getattr(e, "timestamp", 0) or 0):
        try:
            replies.extend(dispatcher.handle(office, event))
        except Exception as exc:  # noqa: BLE001 - one bad event must not lose the others
            log.error("event=%s failed; rolled back: %s", getattr(event, "webhook_event_id", "?"),
                      describe_error(exc))
            replies.extend(dispatcher.apologise(office, event))
    if replies:
        try:
            # What direct apologies (the database down) used of the request's reply budget is gone.
            rt.sender().send_replies(replies, max(0.0, rt.config.reply_budget_seconds - dispatcher.direct_seconds))
        except Exception as exc:  # noqa: BLE001 - committed rows stay for the worker; LINE gets its 200
            log.error("sending replies failed: %s", describe_error(exc))
    return "OK", 200
