"""staff notes and cancellation memos encrypted at rest

Staff write personal things in the free text they keep about a booking (「本人より電話 090-… 通院中」): the
職員メモ (`bookings.staff_note`) and the memo of a cancellation on the user's behalf (kept until now in
`staff_audit.detail`). Both become Fernet tokens under DATA_ENCRYPTION_KEY, like the details:
`bookings.staff_note` turns from text into a binary column, and the memo moves out of the audit entry's
`detail` into its own binary column `staff_audit.note`.

The plaintext already stored is encrypted here, under the newest key that `bot.db.upgrade_schema` hands over
(`flask --app app db upgrade` and development start-up do). Without keys the migration refuses when there is
something to encrypt, and runs when there is nothing (a new database). The downgrade decrypts them again.

Columns are added, dropped and renamed in place (no table copy: SQLite 3.35 or later drops a plain column).

Revision ID: 0012_sealed_notes
Revises: 0011_receipt_due
"""
from alembic import context, op
import sqlalchemy as sa
from cryptography.fernet import Fernet, MultiFernet

revision = "0012_sealed_notes"
down_revision = "0011_receipt_due"
branch_labels = None
depends_on = None

# The audit actions that carried a memo (bot/staff/decisions.py `cancel`).
MEMO_ACTIONS = ("cancel_by_office", "withdraw_for_user", "cancel_for_user")
WORK_COLUMN = "staff_note_new"


def _vault(needed: bool) -> MultiFernet | None:
    keys = tuple(context.config.attributes.get("data_encryption_keys") or ())
    if not keys:
        if needed:
            raise RuntimeError("staff notes are stored in the database: this migration needs DATA_ENCRYPTION_KEY "
                               "to encrypt or decrypt them (run it with `flask --app app db upgrade`)")
        return None
    return MultiFernet([Fernet(k.encode() if isinstance(k, str) else k) for k in keys])


def _audit(note_type) -> sa.TableClause:
    return sa.table("staff_audit", sa.column("id", sa.Integer), sa.column("action", sa.String),
                    sa.column("detail", sa.JSON), sa.column("note", note_type))


def _memo_rows(conn) -> list:
    """Audit entries of cancellations whose detail still holds the memo (a text, or null when none was given)."""
    audit = _audit(sa.LargeBinary)
    rows = conn.execute(sa.select(audit.c.id, audit.c.detail).where(audit.c.action.in_(MEMO_ACTIONS))).all()
    return [(row_id, detail) for row_id, detail in rows if isinstance(detail, dict) and "note" in detail]


def upgrade() -> None:
    conn = op.get_bind()
    op.add_column("bookings", sa.Column(WORK_COLUMN, sa.LargeBinary(), nullable=True))
    op.add_column("staff_audit", sa.Column("note", sa.LargeBinary(), nullable=True))
    bookings = sa.table("bookings", sa.column("id", sa.Integer), sa.column("staff_note", sa.Text),
                        sa.column(WORK_COLUMN, sa.LargeBinary))
    notes = [(row_id, text) for row_id, text in conn.execute(
        sa.select(bookings.c.id, bookings.c.staff_note).where(bookings.c.staff_note.is_not(None))) if text.strip()]
    memos = _memo_rows(conn)
    vault = _vault(bool(notes) or any(detail["note"] for _, detail in memos))
    for row_id, text in notes:
        conn.execute(bookings.update().where(bookings.c.id == row_id)
                     .values({WORK_COLUMN: vault.encrypt(text.strip().encode("utf-8"))}))
    audit = _audit(sa.LargeBinary)
    for row_id, detail in memos:
        text = (detail.get("note") or "").strip()
        rest = {k: v for k, v in detail.items() if k != "note"}
        conn.execute(audit.update().where(audit.c.id == row_id).values(
            detail=rest, note=vault.encrypt(text.encode("utf-8")) if text else None))
    op.drop_column("bookings", "staff_note")
    op.alter_column("bookings", WORK_COLUMN, new_column_name="staff_note")


def downgrade() -> None:
    conn = op.get_bind()
    op.add_column("bookings", sa.Column(WORK_COLUMN, sa.Text(), nullable=True))
    bookings = sa.table("bookings", sa.column("id", sa.Integer), sa.column("staff_note", sa.LargeBinary),
                        sa.column(WORK_COLUMN, sa.Text))
    audit = _audit(sa.LargeBinary)
    notes = conn.execute(sa.select(bookings.c.id, bookings.c.staff_note)
                         .where(bookings.c.staff_note.is_not(None))).all()
    memos = conn.execute(sa.select(audit.c.id, audit.c.detail, audit.c.note)
                         .where(audit.c.note.is_not(None))).all()
    vault = _vault(bool(notes or memos))
    for row_id, token in notes:
        conn.execute(bookings.update().where(bookings.c.id == row_id)
                     .values({WORK_COLUMN: vault.decrypt(bytes(token)).decode("utf-8")}))
    for row_id, detail, token in memos:
        conn.execute(audit.update().where(audit.c.id == row_id).values(
            detail={**(detail or {}), "note": vault.decrypt(bytes(token)).decode("utf-8")}, note=None))
    op.drop_column("staff_audit", "note")
    op.drop_column("bookings", "staff_note")
    op.alter_column("bookings", WORK_COLUMN, new_column_name="staff_note")
