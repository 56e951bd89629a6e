"""override reasons encrypted at rest

The reason staff give when they book a slot that could not normally be booked
(`booking_handoffs.override_reason`) is free text, and staff write personal things there like anywhere else
(「本人より電話 090-… 通院のため」). 0012 encrypted the 職員メモ and the cancellation memos; this does the same
for the override reason: the column turns from text into a binary column holding a Fernet token under
DATA_ENCRYPTION_KEY.

The plaintext already stored is encrypted here, under the newest key that `bot.db.upgrade_schema` hands over
(`flask --app app db upgrade` and development start-up do). Without keys the migration refuses when there is
something to encrypt, and runs when there is nothing (a new database). The downgrade decrypts them again.

The column is added, dropped and renamed in place, as in 0012 (no table copy).

Revision ID: 0013_sealed_override_reasons
Revises: 0012_sealed_notes
"""
from alembic import context, op
import sqlalchemy as sa
from cryptography.fernet import Fernet, MultiFernet

revision = "0013_sealed_override_reasons"
down_revision = "0012_sealed_notes"
branch_labels = None
depends_on = None

TABLE, COLUMN, WORK_COLUMN = "booking_handoffs", "override_reason", "override_reason_new"


def _vault(needed: bool) -> MultiFernet | None:
    keys = tuple(context.config.attributes.get("data_encryption_keys") or ())
    if not keys:
        if needed:
            raise RuntimeError("override reasons are stored in the database: this migration needs "
                               "DATA_ENCRYPTION_KEY to encrypt or decrypt them "
                               "(run it with `flask --app app db upgrade`)")
        return None
    return MultiFernet([Fernet(k.encode() if isinstance(k, str) else k) for k in keys])


def _convert(stored_type, new_type, change) -> None:
    """Move every stored reason through `change(vault, value)` into a new column of `new_type`."""
    conn = op.get_bind()
    handoffs = sa.table(TABLE, sa.column("booking_id", sa.Integer), sa.column(COLUMN, stored_type),
                        sa.column(WORK_COLUMN, new_type))
    found = conn.execute(sa.select(handoffs.c.booking_id, handoffs.c[COLUMN])
                         .where(handoffs.c[COLUMN].is_not(None))).all()
    vault = _vault(any(not isinstance(value, str) or value.strip() for _, value in found))  # refuses first
    op.add_column(TABLE, sa.Column(WORK_COLUMN, new_type, nullable=True))
    for booking_id, value in found:
        conn.execute(handoffs.update().where(handoffs.c.booking_id == booking_id)
                     .values({WORK_COLUMN: change(vault, value)}))
    op.drop_column(TABLE, COLUMN)
    op.alter_column(TABLE, WORK_COLUMN, new_column_name=COLUMN)


def _seal(vault: MultiFernet | None, text: str) -> bytes | None:
    """The reason as a token; a reason of spaces only holds nothing and is stored as none (needing no key)."""
    text = text.strip()
    return vault.encrypt(text.encode("utf-8")) if text else None


def _open(vault: MultiFernet, token) -> str:
    return vault.decrypt(bytes(token)).decode("utf-8")


def upgrade() -> None:
    _convert(sa.String(200), sa.LargeBinary(), _seal)


def downgrade() -> None:
    _convert(sa.LargeBinary(), sa.String(200), _open)
