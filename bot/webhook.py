"""POST /callback/<office>: verify, parse, hand each event to dispatch, answer LINE fast."""
from __future__ import annotations

import logging

from flask import Blueprint, abort, current_app, request
from linebot.v3 import WebhookParser
from linebot.v3.exceptions import InvalidSignatureError
from werkzeug.exceptions import RequestEntityTooLarge

from bot.dispatch import Dispatcher

log = logging.getLogger(__name__)
bp = Blueprint("webhook", __name__)
MAX_BODY = 1024 * 1024


@bp.post("/callback/<office_id>")
def callback(office_id: str):
    rt = current_app.extensions["madoguchi"]
    office = rt.enabled_office(office_id)
    if office is None:
        abort(404)
    if (request.content_length or 0) > MAX_BODY:
        abort(413)
    try:
        raw = request.get_data(cache=False)
    except RequestEntityTooLarge:
        abort(413)
    signature = request.headers.get("X-Line-Signature")
    if not signature:
        abort(400)
    try:
        body = raw.decode("utf-8")
        payload = WebhookParser(rt.config.channel_secret(office.id)).parse(body, signature, as_payload=True)
    except InvalidSignatureError:
        abort(400)
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError, UnicodeDecodeError):
        abort(400)
    dispatcher = Dispatcher(rt)
    reply_ids: list[int] = []
    for event in sorted(payload.events or [], key=lambda e: getattr(e, "timestamp", 0) or 0):
        try:
            reply_ids.extend(dispatcher.handle(office, event))
        except Exception:  # noqa: BLE001 - one bad event must not lose the others
            log.exception("event=%s failed; rolled back", getattr(event, "webhook_event_id", "?"))
    if reply_ids:
        rt.sender().send_replies(reply_ids, rt.config.reply_budget_seconds)
    return "OK", 200
