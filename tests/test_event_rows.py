"""Statements on the driver's cursor (bot.rawsql): the event's own rows (bot.event_rows) and the services' compiled
reads and writes, stored and read as the ORM does."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from bot import event_rows, outbox, rawsql
from bot.clock import TOKYO
from bot.db import describe_error
from bot.models import Conversation, OutboxMessage
from tests.sqlwatch import watch

USER = "U" + "1" * 32


def _orm_conversation(rt) -> Conversation:
    with rt.db.reading() as s:
        conv = s.scalar(select(Conversation).where(Conversation.line_user_id == USER))
        s.expunge(conv)
        return conv


def test_a_new_users_row_is_created_once_and_read_as_the_orm_reads_it(rt):
    now = rt.clock.now()
    with event_rows.transaction(rt.db) as tx:
        first = event_rows.conversation(tx.conn, "sakata", USER, now)
    with event_rows.transaction(rt.db) as tx:
        again = event_rows.conversation(tx.conn, "sakata", USER, now + timedelta(seconds=1))
    assert first.id == again.id
    orm = _orm_conversation(rt)
    for name in event_rows.CONVERSATION_COLUMNS:
        assert getattr(again, name) == getattr(orm, name), name
        assert type(getattr(again, name)) is type(getattr(orm, name)), name
    assert again.created_at.tzinfo is not None and again.created_at.utcoffset() == timedelta(hours=9)
    assert (again.state, again.context, again.followed, again.receipt_due) == ("idle", {}, True, False)


def test_save_writes_the_changed_columns_in_one_update_and_nothing_when_none_changed(rt):
    now = rt.clock.now()
    with event_rows.transaction(rt.db) as tx:
        event_rows.conversation(tx.conn, "sakata", USER, now)
    with watch(rt.db.engine) as seen:
        with event_rows.transaction(rt.db) as tx:
            conv = event_rows.conversation(tx.conn, "sakata", USER, now)
            conv.state, conv.context, conv.followed = "awaiting_consent", {"i": 2, "answers": {"a": "はい"}}, False
            conv.flood_tat = now + timedelta(seconds=3)
            event_rows.save(tx.conn, conv)
            event_rows.save(tx.conn, conv)  # nothing changed since: no statement
    updates = [s for s in seen if s.startswith("UPDATE conversations")]
    assert len(updates) == 1
    assert "context" in updates[0] and "line_user_id" not in updates[0] and "misses" not in updates[0]
    orm = _orm_conversation(rt)
    assert (orm.state, orm.context, orm.followed) == ("awaiting_consent", {"i": 2, "answers": {"a": "はい"}}, False)
    assert orm.flood_tat == (now + timedelta(seconds=3)).astimezone(TOKYO)


def test_outbox_rows_get_their_ids_and_the_columns_defaults(rt):
    now = rt.clock.now()
    messages = [{"type": "text", "text": f"お知らせ {i}"} for i in range(7)]
    rows = outbox.to_user(office="sakata", user_id=USER, messages=messages, now=now, reply_token="tok",
                          event_id="ev1")
    replies = outbox.reserve_replies(rows, now)
    with event_rows.transaction(rt.db) as tx:
        event_rows.insert_outbox(tx.conn, rows)
    assert [r.kind for r in rows] == ["reply", "push"] and all(r.id for r in rows)
    assert replies == rows[:1]
    with rt.db.reading() as s:
        stored = s.scalars(select(OutboxMessage).order_by(OutboxMessage.id)).all()
    assert [r.id for r in stored] == [r.id for r in rows]
    reply, push = stored
    assert (reply.status, reply.attempts, reply.source_event_id) == ("sending", 1, "ev1")
    assert reply.payload == {"messages": messages[:5]} and reply.reply_deadline == rows[0].reply_deadline
    assert (push.status, push.attempts, push.purpose, push.last_error) == ("pending", 0, "chat", None)
    assert rows[1].attempts == 0  # the row as written


def test_a_failing_statement_raises_sqlalchemys_error_and_logs_no_values(rt):
    """As for SQLAlchemy's own statements: the bound values are not attached, and what is logged
    (`describe_error`) names the error without its message (PostgreSQL's DETAIL quotes the row)."""
    statement = rawsql.Statement(text("INSERT INTO app_settings (key, value) VALUES (:k, :v)"))
    with pytest.raises(IntegrityError) as raised:
        with rt.db.connected() as conn:
            statement.rowcount(conn, {"k": None, "v": "ヤマダハナコ"})
    assert raised.value.params is None and not raised.value.connection_invalidated
    assert "ヤマダハナコ" not in describe_error(raised.value) and "IntegrityError" in describe_error(raised.value)


def test_a_dropped_connection_is_reported_as_such_and_the_pool_starts_afresh(rt, database_url):
    if rt.db.sqlite:
        pytest.skip("PostgreSQL only (a server process to end)")
    from tests.test_db import _drop_app_connections

    with rt.db.connected() as conn:
        conn.execute(text("SELECT 1"))
    with pytest.raises(DBAPIError) as raised:
        with rt.db.connected() as conn:
            assert _drop_app_connections(database_url) >= 1
            event_rows.claim(conn, "sakata", "ev-dropped", rt.clock.now())
    assert raised.value.connection_invalidated
    with rt.db.connected() as conn:  # a new connection: the event's second run works
        assert event_rows.claim(conn, "sakata", "ev-dropped", rt.clock.now())


def test_a_services_compiled_read_sees_what_the_session_has_not_written_yet(rt):
    """`Statement.scalar` runs in the session's transaction after writing what the session holds, as the
    ORM's autoflush would: a consent added a moment ago counts, and the newest one is the one read."""
    from bot.models import Consent
    from bot.services import terms

    now = rt.clock.now()
    with event_rows.transaction(rt.db) as tx:
        conv = event_rows.conversation(tx.conn, "sakata", USER, now)
    with rt.db.transaction() as s:
        assert terms.latest_consented_version(s, conv.id) is None
        assert not terms.has_consented(s, conv.id, "2026-04-01")
        for version in ("2025-04-01", "2026-04-01"):
            s.add(Consent(office_id="sakata", conversation_id=conv.id, version=version, consented_at=now,
                          webhook_event_id=f"e-{version}", method="button"))
        assert s.new  # not written yet
        assert terms.has_consented(s, conv.id, "2026-04-01")
        assert not terms.has_consented(s, conv.id, "2024-04-01")
        assert terms.latest_consented_version(s, conv.id) == "2026-04-01"
        assert not s.new
    with rt.db.reading() as s:
        assert terms.latest_consented_version(s, conv.id) == "2026-04-01"


def test_a_consent_is_recorded_as_the_orm_would_store_it(rt):
    from bot.models import Consent
    from bot.services import terms

    now = rt.clock.now()
    with event_rows.transaction(rt.db) as tx:
        conv = event_rows.conversation(tx.conn, "sakata", USER, now)
        terms.record_consent(tx.session, conv, "2026-04-01", now=now, event_id="e-1", method="text")
        assert terms.has_consented(tx.session, conv.id, "2026-04-01")  # seen in the same transaction
    with rt.db.reading() as s:
        consent = s.scalar(select(Consent).where(Consent.conversation_id == conv.id))
    assert (consent.office_id, consent.version, consent.webhook_event_id, consent.method) == (
        "sakata", "2026-04-01", "e-1", "text")
    assert consent.consented_at == now and consent.consented_at.utcoffset() == timedelta(hours=9)


def test_the_terms_in_force_are_the_newest_whose_date_has_come(rt):
    from datetime import date

    from bot.services import terms

    with rt.db.reading() as s:
        shipped = terms.versions(s, "sakata")
        assert shipped, "the shipped versions are seeded"
        newest = shipped[0].version
        assert terms.current_version(s, "sakata", date.fromisoformat(newest)) == newest
        assert terms.current_version(s, "sakata", date.fromisoformat(newest) - timedelta(days=1)) == (
            shipped[1].version if len(shipped) > 1 else None)
        assert terms.current_version(s, "sakata", date(2000, 1, 1)) is None
        assert terms.current_version(s, "no-such-office", date(2100, 1, 1)) is None


@pytest.mark.parametrize("status", ["requested", "proposed", "confirmed"])
def test_an_open_booking_is_found_only_while_open_and_ahead_and_the_list_only_when_there_is_one(rt, status):
    """The compiled existence checks in front of the ORM loads (`bookings._ANY_OPEN`, `_ANY`) answer as the
    loads would: open statuses only, the slot still ahead, other users' and offices' bookings not counted."""
    from bot.services import bookings
    from tests.staffkit import SAKATA_MONDAY, conversation, make_request

    office = rt.offices["sakata"]
    conv_id = conversation(rt, "sakata", USER)
    make_request(rt, start=SAKATA_MONDAY + timedelta(days=7), user_id="U" + "2" * 32, notify=False)  # another's
    now = rt.clock.now()

    def seen(at):
        with rt.db.reading() as s:
            conv = s.get(Conversation, conv_id)
            found = bookings.open_summary(s, office, conv, at)
            return (found or {}).get("reference"), [b["reference"] for b in bookings.summaries(s, office, conv, at)]

    assert seen(now) == (None, [])
    reference = make_request(rt, user_id=USER, status=status, notify=False)
    assert seen(now) == (reference, [reference])
    assert seen(SAKATA_MONDAY) == (None, [reference])  # its slot has begun
    with rt.db.transaction() as s:
        s.execute(text("UPDATE bookings SET status = 'withdrawn' WHERE reference = :r"), {"r": reference})
    assert seen(now) == (None, [reference])


def test_steps_that_only_read_compiled_statements_make_no_orm_session(sakata_user, fake_line, rt, monkeypatch):
    """A checklist answer reads the terms in force (a version may take effect mid-booking) through a compiled
    statement on the event's connection: no ORM session is made for it (most events are such steps)."""
    from tests.intake_walk import Chat

    chat = Chat(sakata_user, fake_line, rt)
    chat.walk_to("checklist", 1)
    made = []
    real = event_rows.EventTransaction.real_session
    monkeypatch.setattr(event_rows.EventTransaction, "real_session", lambda tx: made.append(1) or real(tx))
    out = chat.say("はい")
    assert "3/" in out[-1] and made == []
