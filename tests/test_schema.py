"""The migrations build exactly the schema the models describe, on every backend, idempotently."""
import json
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from cryptography.fernet import Fernet

from bot.crypto import Vault
from bot.db import Database, upgrade_schema
from bot.models import UTCDateTime
from bot.schema import Base

AT = datetime(2026, 12, 1, 1, 0, tzinfo=timezone.utc)


def test_migrations_match_models(empty_database_url):
    db = Database(empty_database_url)
    try:
        upgrade_schema(db)
        upgrade_schema(db)  # a second run (another process starting) finds nothing to do
        with db.engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(ctx, Base.metadata)
        assert diff == [], f"models and migrations differ: {diff}"
    finally:
        db.dispose()


def test_migrations_have_one_head():
    """The next migration has one obvious parent (feature branches are merged)."""
    from alembic.config import Config as AlembicConfig
    from alembic.script import ScriptDirectory

    from bot.db import MIGRATIONS_DIR

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    assert len(ScriptDirectory.from_config(cfg).get_heads()) == 1


def _migrate_to(db, revision: str, keys=(), down: bool = False) -> None:
    from alembic import command

    from bot.db import alembic_config

    cfg = alembic_config(db.url, keys)
    with db.engine.connect() as conn:
        cfg.attributes["connection"] = conn
        (command.downgrade if down else command.upgrade)(cfg, revision)
        conn.commit()


def _two_keys() -> tuple[tuple[str, str], Vault]:
    keys = (Fernet.generate_key().decode(), Fernet.generate_key().decode())
    return keys, Vault(keys, "secret")


def _old_booking(n: int, **values) -> dict:
    """Booking n as a row of an older schema (ids from 1, references from AAAA-AAA2)."""
    return {"id": n + 1, "reference": f"AAAA-AAA{n + 2}", "office_id": "sakata", "slot_start": AT,
            "receipt_pending": False, "created_at": AT, "updated_at": AT, **values}


def test_the_notes_migration_encrypts_what_staff_wrote_in_the_clear(empty_database_url):
    """0012: the 職員メモ and the cancellation memos written before it are encrypted (and back on downgrade)."""
    note, memo = "本人より電話 090-9999-8888 うつ病で通院中", "本人より取消の電話 090-9999-8888"
    keys, vault = _two_keys()
    db = Database(empty_database_url)
    try:
        _migrate_to(db, "0011_receipt_due")
        with db.engine.connect() as conn:
            meta = sa.MetaData()
            bookings = sa.Table("bookings", meta, autoload_with=conn)
            audit = sa.Table("staff_audit", meta, autoload_with=conn)
            for n, text in enumerate((note, None, "  ")):
                conn.execute(bookings.insert().values(_old_booking(n, status="cancelled", source="line",
                                                                   staff_note=text)))
            for n, (action, detail) in enumerate((("cancel_for_user", {"note": memo}),
                                                  ("withdraw_for_user", {"note": None}),
                                                  ("decline", {"reason": "full"}))):
                conn.execute(audit.insert().values(id=n + 1, office_id="sakata", at=AT, actor="tanaka",
                                                   action=action, booking_id=n + 1, reference=f"AAAA-AAA{n + 2}",
                                                   detail=detail))
            conn.commit()

        with pytest.raises(RuntimeError, match="DATA_ENCRYPTION_KEY"):
            upgrade_schema(db)                           # plaintext to encrypt and no key: refused, unchanged
        with db.engine.connect() as conn:
            assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar() == "0011_receipt_due"
            assert conn.execute(sa.text("SELECT staff_note FROM bookings WHERE id = 1")).scalar() == note

        upgrade_schema(db, keys)
        with db.engine.connect() as conn:
            notes = dict(conn.execute(sa.text("SELECT id, staff_note FROM bookings")).all())
            entries = {row.id: row for row in conn.execute(sa.text("SELECT id, detail, note FROM staff_audit"))}
        assert vault.decrypt_text(notes[1]) == note and b"090-9999-8888" not in bytes(notes[1])
        assert notes[2] is None and notes[3] is None
        details = {i: r.detail if isinstance(r.detail, dict) else json.loads(r.detail) for i, r in entries.items()}
        assert details == {1: {}, 2: {}, 3: {"reason": "full"}}
        assert vault.decrypt_text(entries[1].note) == memo and entries[2].note is None and entries[3].note is None
        with db.engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(ctx, Base.metadata) == []

        _migrate_to(db, "0011_receipt_due", keys, down=True)
        with db.engine.connect() as conn:
            assert conn.execute(sa.text("SELECT staff_note FROM bookings WHERE id = 1")).scalar() == note
            back = conn.execute(sa.text("SELECT detail FROM staff_audit WHERE id = 1")).scalar()
        assert (back if isinstance(back, dict) else json.loads(back)) == {"note": memo}
    finally:
        db.dispose()


def test_the_override_reasons_migration_encrypts_what_staff_wrote_in_the_clear(empty_database_url):
    """0013: the reasons staff gave for booking a slot that could not be booked are encrypted (and back)."""
    reason = "本人より電話 090-9999-8888 通院のため"
    keys, vault = _two_keys()
    db = Database(empty_database_url)
    try:
        _old_handoffs(db, (reason, None, "  "))

        def reasons() -> dict:
            with db.engine.connect() as conn:
                return dict(conn.execute(sa.text("SELECT booking_id, override_reason FROM booking_handoffs")).all())

        with pytest.raises(RuntimeError, match="DATA_ENCRYPTION_KEY"):
            upgrade_schema(db)                           # plaintext to encrypt and no key: refused, unchanged
        with db.engine.connect() as conn:
            assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar() == "0012_sealed_notes"
        assert reasons() == {1: reason, 2: None, 3: "  "}

        upgrade_schema(db, keys)
        sealed = reasons()
        assert vault.decrypt_text(sealed[1]) == reason and b"090-9999-8888" not in bytes(sealed[1])
        assert sealed[2] is None and sealed[3] is None
        with db.engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(ctx, Base.metadata) == []

        with pytest.raises(RuntimeError, match="DATA_ENCRYPTION_KEY"):
            _migrate_to(db, "0012_sealed_notes", down=True)   # tokens to decrypt and no key: refused
        _migrate_to(db, "0012_sealed_notes", keys, down=True)
        assert reasons() == {1: reason, 2: None, 3: None}
    finally:
        db.dispose()


def test_the_override_reasons_migration_needs_no_key_when_there_is_no_text(empty_database_url):
    """A database with no override reason (or only blank ones) upgrades without keys."""
    db = Database(empty_database_url)
    try:
        _old_handoffs(db, (" ",))
        upgrade_schema(db)
        with db.engine.connect() as conn:
            assert conn.execute(sa.text("SELECT override_reason FROM booking_handoffs")).scalar() is None
    finally:
        db.dispose()


def _old_handoffs(db: Database, reasons) -> None:
    """At 0012, phone bookings whose handoff rows hold these override reasons in the clear."""
    _migrate_to(db, "0012_sealed_notes")
    with db.engine.connect() as conn:
        meta = sa.MetaData()
        bookings = sa.Table("bookings", meta, autoload_with=conn)
        handoffs = sa.Table("booking_handoffs", meta, autoload_with=conn)
        for n, text in enumerate(reasons):
            conn.execute(bookings.insert().values(_old_booking(n, status="confirmed", source="phone")))
            conn.execute(handoffs.insert().values(booking_id=n + 1, call_needed=False, override_reason=text,
                                                  updated_at=AT))
        conn.commit()


def test_the_outbox_booking_migration_keeps_queued_rows_and_goes_back(empty_database_url):
    """0014: rows queued before it stay queued, about no booking; the downgrade drops the new columns."""
    db = Database(empty_database_url)
    try:
        _migrate_to(db, "0013_sealed_override_reasons")
        with db.engine.connect() as conn:
            outbox = sa.Table("outbox", sa.MetaData(), autoload_with=conn)
            conn.execute(outbox.insert().values(
                id=1, office_id="sakata", kind="push", recipient="U" + "0" * 32, payload={"messages": []},
                retry_key="k", status="held", attempts=3, due_at=AT, next_attempt_at=AT, created_at=AT,
                purpose="reminder_day_before"))
            conn.commit()
        upgrade_schema(db)
        with db.engine.connect() as conn:
            row = conn.execute(sa.text("SELECT status, purpose, booking_reference, booking_status, "
                                       "notice_kind FROM outbox WHERE id = 1")).one()
        assert tuple(row) == ("held", "reminder_day_before", None, None, None)

        _migrate_to(db, "0013_sealed_override_reasons", down=True)
        with db.engine.connect() as conn:
            columns = {c["name"] for c in sa.inspect(conn).get_columns("outbox")}
            assert "booking_reference" not in columns and "notice_kind" not in columns
            assert conn.execute(sa.text("SELECT status FROM outbox WHERE id = 1")).scalar() == "held"
    finally:
        db.dispose()


def test_the_block_reasons_migration_encrypts_what_staff_wrote_in_the_clear(empty_database_url):
    """0015: the reasons staff gave for blocking a slot or a day are encrypted (and back)."""
    reason = "本人より電話 090-9999-8888 通院の付き添い"
    keys, vault = _two_keys()
    db = Database(empty_database_url)
    try:
        _migrate_to(db, "0014_outbox_about_booking")
        with db.engine.connect() as conn:
            blocks = sa.Table("slot_blocks", sa.MetaData(), autoload_with=conn)
            for n, text in enumerate((reason, None, "  ")):
                conn.execute(blocks.insert().values(id=n + 1, office_id="sakata", day=f"2026-12-0{n + 1}",
                                                    reason=text, created_at=AT))
            conn.commit()

        def reasons() -> dict:
            with db.engine.connect() as conn:
                return dict(conn.execute(sa.text("SELECT id, reason FROM slot_blocks")).all())

        with pytest.raises(RuntimeError, match="DATA_ENCRYPTION_KEY"):
            upgrade_schema(db)                           # plaintext to encrypt and no key: refused, unchanged
        assert reasons() == {1: reason, 2: None, 3: "  "}
        upgrade_schema(db, keys)
        sealed = reasons()
        assert vault.decrypt_text(sealed[1]) == reason and b"090-9999-8888" not in bytes(sealed[1])
        assert sealed[2] is None and sealed[3] is None
        with db.engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(ctx, Base.metadata) == []
        _migrate_to(db, "0014_outbox_about_booking", keys, down=True)
        assert reasons() == {1: reason, 2: None, 3: None}
    finally:
        db.dispose()


def test_the_login_address_migration_adds_its_table_and_goes_back(empty_database_url):
    """0016: failed logins per client address get their own table; the downgrade drops it, nothing else."""
    db = Database(empty_database_url)
    try:
        upgrade_schema(db)
        with db.engine.connect() as conn:
            assert "staff_login_address_failures" in sa.inspect(conn).get_table_names()
        _migrate_to(db, "0015_sealed_block_reasons", down=True)
        with db.engine.connect() as conn:
            tables = sa.inspect(conn).get_table_names()
        assert "staff_login_address_failures" not in tables and "staff_login_failures" in tables
        upgrade_schema(db)
    finally:
        db.dispose()


def test_the_closed_at_migration_stamps_closed_bookings_with_when_they_closed(empty_database_url):
    """0017: each booking already closed gets the earliest stamp of its closing (a decline's decision, the
    staff notice or audit entry of its closing), never later than its last change; open ones get none."""
    day = timedelta(days=1)
    db = Database(empty_database_url)
    try:
        _migrate_to(db, "0016_login_address_throttle")
        with db.engine.connect() as conn:
            meta = sa.MetaData()
            bookings, notices, audit = (sa.Table(name, meta, autoload_with=conn)
                                        for name in ("bookings", "staff_notices", "staff_audit"))
            later = AT + 20 * day                       # a 職員メモ saved long after it closed moved updated_at
            for n, (status, decided_at) in enumerate((("declined", AT + day), ("withdrawn", None),
                                                      ("expired", None), ("cancelled", AT), ("confirmed", AT),
                                                      ("withdrawn", None))):
                conn.execute(bookings.insert().values(_old_booking(n, status=status, source="line",
                                                                   decided_at=decided_at, updated_at=later)))
            for booking_id, kind, at in ((1, "new_request", AT), (2, "new_request", AT),
                                         (2, "withdrawn", AT + 2 * day), (3, "expired", AT + 3 * day),
                                         (5, "new_request", AT)):
                conn.execute(notices.insert().values(office_id="sakata", kind=kind, booking_id=booking_id,
                                                     created_at=at))
            for booking_id, action, at in ((4, "note", AT + 5 * day), (4, "cancel_for_user", AT + 4 * day),
                                           (1, "decline", AT + day)):
                conn.execute(audit.insert().values(office_id="sakata", at=at, actor="tanaka", action=action,
                                                   booking_id=booking_id, detail={}))
            conn.commit()
        upgrade_schema(db)
        stored = sa.table("bookings", sa.column("id", sa.Integer), sa.column("closed_at", UTCDateTime(timezone=True)))
        with db.engine.connect() as conn:
            stamps = dict(conn.execute(sa.select(stored.c.id, stored.c.closed_at)).all())
        assert stamps == {1: AT + day, 2: AT + 2 * day, 3: AT + 3 * day, 4: AT + 4 * day, 5: None,
                          6: AT + 20 * day}             # nothing better known: its last change, as before
        _migrate_to(db, "0016_login_address_throttle", down=True)
        with db.engine.connect() as conn:
            assert "closed_at" not in {c["name"] for c in sa.inspect(conn).get_columns("bookings")}
    finally:
        db.dispose()


def test_the_queue_notices_migration_adds_its_index_and_goes_back(empty_database_url):
    """0022: the queue page's newest notices of an office come from an index; the downgrade drops it."""
    def names(db) -> set[str]:
        with db.engine.connect() as conn:
            return {i["name"] for i in sa.inspect(conn).get_indexes("staff_notices")}

    db = Database(empty_database_url)
    try:
        upgrade_schema(db)
        assert "ix_staff_notices_office_created" in names(db)
        _migrate_to(db, "0021_worker_job_indexes", down=True)
        assert names(db) == {"ix_staff_notices_office_id", "ix_staff_notices_booking_id"}
        upgrade_schema(db)
    finally:
        db.dispose()


WORKER_JOB_INDEXES = {"bookings": {"ix_bookings_status_slot", "ix_bookings_details_kept", "ix_bookings_noted",
                                   "ix_bookings_receipt_pending"},
                      "staff_audit": {"ix_staff_audit_noted"}, "outbox": {"ix_outbox_created_at"},
                      "conversations": {"ix_conversations_to_forget"}}


def test_the_worker_job_indexes_migration_adds_them_and_goes_back(empty_database_url):
    """0021: the indexes a pass of the worker's jobs reads by, the partial ones keeping only the rows their
    condition names (the purge's rows still holding details); the downgrade drops them, nothing else."""
    def indexes(db) -> dict[str, set[str]]:
        with db.engine.connect() as conn:
            found = sa.inspect(conn)
            return {table: {i["name"] for i in found.get_indexes(table)} for table in WORKER_JOB_INDEXES}

    db = Database(empty_database_url)
    try:
        upgrade_schema(db)
        assert all(names <= indexes(db)[table] for table, names in WORKER_JOB_INDEXES.items())
        with db.engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO bookings (id, reference, office_id, slot_start, status, source, "
                                 "receipt_pending, created_at, updated_at) VALUES (1, 'AAAA-AAA2', 'sakata', "
                                 ":at, 'attended', 'line', false, :at, :at)"), {"at": AT})
            conn.execute(sa.text("UPDATE bookings SET details = :d"), {"d": b"sealed"})
        _migrate_to(db, "0020_terms_corrections", down=True)
        assert all(not (names & indexes(db)[table]) for table, names in WORKER_JOB_INDEXES.items())
        assert "ix_staff_audit_office_at" in indexes(db)["staff_audit"]
        upgrade_schema(db)
        assert all(names <= indexes(db)[table] for table, names in WORKER_JOB_INDEXES.items())
    finally:
        db.dispose()


def test_the_staff_reveals_migration_adds_its_table_with_cascading_keys_and_goes_back(empty_database_url):
    """0023: the reveals of personal details get their own table, whose rows go with their session or booking;
    the downgrade drops it, nothing else."""
    db = Database(empty_database_url)
    try:
        upgrade_schema(db)
        with db.engine.connect() as conn:
            keys = sa.inspect(conn).get_foreign_keys("staff_reveals")
        assert {(k["referred_table"], (k.get("options") or {}).get("ondelete", "").upper()) for k in keys} == \
            {("staff_sessions", "CASCADE"), ("bookings", "CASCADE")}
        _migrate_to(db, "0022_queue_notices_index", down=True)
        with db.engine.connect() as conn:
            tables = sa.inspect(conn).get_table_names()
        assert "staff_reveals" not in tables and "staff_sessions" in tables
        upgrade_schema(db)
    finally:
        db.dispose()
