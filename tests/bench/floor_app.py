"""The floor: the least a LINE bot on line-bot-sdk v3 and Flask can do per webhook.

It verifies the signature, parses the events and replies one fixed text to each event that carries a reply
token, through the same fake Messaging API as madoguchi. No database, no templates, no dialog: whatever
madoguchi costs beyond this is the price of its features. Served like madoguchi:

    gunicorn --workers 2 'tests.bench.floor_app:create_app()'

Settings (environment): LINE_API_BASE_URL, and FLOOR_OFFICES (comma-separated ids), each with
LINE_CHANNEL_SECRET_<OFFICE> and LINE_CHANNEL_ACCESS_TOKEN_<OFFICE>, as madoguchi reads them.

With FLOOR_DATABASE_URL (a PostgreSQL URL) it is the *durable floor*: before replying it also does what
madoguchi's design asks of every event and nothing more, with psycopg and no ORM, on three small tables of its
own: in one transaction, the event's deduplication row, the user's conversation row read locked (created for a
new user) and updated, the reply's outbox row; after the reply, that row marked sent (its own transaction). It
shows what one durable transaction per event costs before any dialog, template or feature.
"""
from __future__ import annotations

import json
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

    durable = DurableRows(os.environ["FLOOR_DATABASE_URL"]) if os.environ.get("FLOOR_DATABASE_URL") else None
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
            row_id = None
            if durable:
                row_id = durable.record(office, event, token)
                if row_id is None:
                    continue  # a redelivery, or nothing to reply to
            if token:
                apis[office].reply_message(
                    ReplyMessageRequest(reply_token=token, messages=[TextMessage(text=REPLY_TEXT)]),
                    _request_timeout=REPLY_TIMEOUT)
                if durable:
                    durable.mark_sent(row_id)
        return "OK"

    return app


SCHEMA = """
CREATE TABLE IF NOT EXISTS floor_events (
    webhook_event_id text PRIMARY KEY, office_id text NOT NULL, received_at timestamptz NOT NULL);
CREATE TABLE IF NOT EXISTS floor_conversations (
    id bigserial PRIMARY KEY, office_id text NOT NULL, line_user_id text NOT NULL,
    state text NOT NULL DEFAULT 'idle', last_event_ms bigint NOT NULL DEFAULT 0, last_active_at timestamptz,
    UNIQUE (office_id, line_user_id));
CREATE TABLE IF NOT EXISTS floor_outbox (
    id bigserial PRIMARY KEY, office_id text NOT NULL, recipient text NOT NULL, reply_token text,
    payload jsonb NOT NULL, status text NOT NULL, created_at timestamptz NOT NULL, sent_at timestamptz);
"""


class DurableRows:
    """The durable floor's rows, on one connection per worker process (opened after gunicorn forks)."""

    def __init__(self, url: str):
        import psycopg  # only here: the plain floor's workers do not carry it

        self._psycopg = psycopg
        self.url = url
        self._conn = None
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("SELECT pg_advisory_lock(42)")  # two workers start at once
            conn.execute(SCHEMA)

    def _connection(self):
        if self._conn is None or self._conn.closed:
            # Autocommit: the event's transaction is the `transaction()` block, the mark its own statement.
            self._conn = self._psycopg.connect(self.url, autocommit=True)
        return self._conn

    def record(self, office: str, event, token: str | None) -> int | None:
        """Claim, lock and update the conversation, queue the reply: one transaction. None for a redelivery."""
        conn = self._connection()
        user_id = getattr(event.source, "user_id", None) or "-"
        with conn.transaction():
            if not conn.execute("INSERT INTO floor_events VALUES (%s, %s, now()) ON CONFLICT DO NOTHING "
                                "RETURNING 1", (event.webhook_event_id, office)).fetchone():
                return None
            row = conn.execute("SELECT id FROM floor_conversations WHERE office_id = %s AND line_user_id = %s "
                               "FOR UPDATE", (office, user_id)).fetchone()
            if row is None:
                row = conn.execute("INSERT INTO floor_conversations (office_id, line_user_id) VALUES (%s, %s) "
                                   "ON CONFLICT (office_id, line_user_id) "
                                   "DO UPDATE SET line_user_id = EXCLUDED.line_user_id RETURNING id",
                                   (office, user_id)).fetchone()
            conn.execute("UPDATE floor_conversations SET last_event_ms = %s, last_active_at = now() WHERE id = %s",
                         (int(event.timestamp), row[0]))
            if not token:
                return None
            payload = json.dumps({"messages": [{"type": "text", "text": REPLY_TEXT}]})
            return conn.execute("INSERT INTO floor_outbox (office_id, recipient, reply_token, payload, status, "
                                "created_at) VALUES (%s, %s, %s, %s, 'sending', now()) RETURNING id",
                                (office, user_id, token, payload)).fetchone()[0]

    def mark_sent(self, row_id: int) -> None:
        """The reply's outcome: one statement, its own transaction (as madoguchi records it)."""
        self._connection().execute("UPDATE floor_outbox SET status = 'sent', sent_at = now() "
                                   "WHERE id = %s AND status = 'sending'", (row_id,))
