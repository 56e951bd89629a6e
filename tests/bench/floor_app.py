"""The floor: the least a LINE bot on line-bot-sdk v3 and Flask can do per webhook.

It verifies the signature, parses the events and replies one fixed text to each event that carries a reply
token, through the same fake Messaging API as madoguchi. No database, no templates, no dialog: whatever
madoguchi costs beyond this is the price of its features. Served like madoguchi:

    gunicorn --workers 2 'tests.bench.floor_app:create_app()'

Settings (environment): LINE_API_BASE_URL, and FLOOR_OFFICES (comma-separated ids), each with
LINE_CHANNEL_SECRET_<OFFICE> and LINE_CHANNEL_ACCESS_TOKEN_<OFFICE>, as madoguchi reads them.
"""
from __future__ import annotations

import os

from flask import Flask, abort, request
from linebot.v3 import WebhookParser
from linebot.v3.exceptions import InvalidSignatureError
from linebot.v3.messaging import ApiClient, Configuration, MessagingApi, ReplyMessageRequest, TextMessage

REPLY_TEXT = "Thank you for your message. (floor)"
REPLY_TIMEOUT = 5.0


def create_app() -> Flask:
    """Parsers and API clients are built once per office, as the SDK's samples do at import."""
    base_url = os.environ["LINE_API_BASE_URL"].rstrip("/")
    offices = [o for o in os.environ.get("FLOOR_OFFICES", "sakata,otaru").split(",") if o]
    parsers = {o: WebhookParser(os.environ[f"LINE_CHANNEL_SECRET_{o.upper()}"]) for o in offices}
    apis = {o: MessagingApi(ApiClient(Configuration(
        host=base_url, access_token=os.environ[f"LINE_CHANNEL_ACCESS_TOKEN_{o.upper()}"]))) for o in offices}

    app = Flask(__name__)

    @app.get("/healthz")
    def healthz():
        return "OK"

    @app.post("/callback/<office>")
    def callback(office: str):
        parser = parsers.get(office)
        if parser is None:
            abort(404)
        signature = request.headers.get("X-Line-Signature")
        if not signature:
            abort(400)
        try:
            events = parser.parse(request.get_data(as_text=True), signature)
        except InvalidSignatureError:
            abort(400)
        for event in events:
            token = getattr(event, "reply_token", None)
            if token:
                apis[office].reply_message(
                    ReplyMessageRequest(reply_token=token, messages=[TextMessage(text=REPLY_TEXT)]),
                    _request_timeout=REPLY_TIMEOUT)
        return "OK"

    return app
