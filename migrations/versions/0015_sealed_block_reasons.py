"""slot block reasons encrypted at rest

The reason staff give when they take a slot or a day out of online booking (`slot_blocks.reason`) is free
text, and staff write personal things there like anywhere else (「山田様 090-… 通院の付き添いで電話予約」). 0012
and 0013 encrypted the 職員メモ, the cancellation memos and the override reasons; this does the same for the
block reason: the column turns from text into a binary column holding a Fernet token under DATA_ENCRYPTION_KEY.

The plaintext already stored is encrypted here, under the newest key that `bot.db.upgrade_schema` hands over
(`flask --app app db upgrade` and development start-up do). Without keys the migration refuses when there is
something to encrypt, and runs when there is nothing (a new database). The downgrade decrypts them again.

The column is added, dropped and renamed in place, as in 0012 and 0013 (no table copy).

Revision ID: 0015_sealed_block_reasons
Revises: 0014_outbox_about_booking
"""
from alembic import context, op
import sqlalchemy as sa
from cryptography.fernet import Fernet, MultiFernet

revision = "0015_sealed_block_reasons"
down_revision = "0014_outbox_about_booking"
branch_labels = None
depends_on = None

TABLE, COLUMN, WORK_COLUMN = "slot_blocks", "reason", "reason_new"


def _vault(needed: bool) -> MultiFernet | None:
    keys = tuple(context.config.attributes.get("data_encryption_keys") or ())
    if not keys:
        if needed:
            raise RuntimeError("slot block reasons are stored in the database: this migration needs "
                               "DATA_ENCRYPTION_KEY to encrypt or decrypt them "
                               "(run it with `flask --app app db upgrade`)")
        return None
    return MultiFernet([Fernet(k.encode() if isinstance(k, str) else k) for k in keys])


def _convert(stored_type, new_type, change) -> None:
    """Move every stored reason through `change(vault, value)` into a new column of `new_type`."""
    conn = op.get_bind()
    blocks = sa.table(TABLE, sa.column("id", sa.Integer), sa.column(COLUMN, stored_type),
                      sa.column(WORK_COLUMN, new_type))
    found = conn.execute(sa.select(blocks.c.id, blocks.c[COLUMN]).where(blocks.c[COLUMN].is_not(None))).all()
    vault = _vault(any(not isinstance(value, str) or value.strip() for _, value in found))  # refuses first
    op.add_column(TABLE, sa.Column(WORK_COLUMN, new_type, nullable=True))
    for block_id, value in found:
        conn.execute(blocks.update().where(blocks.c.id == block_id).values({WORK_COLUMN: change(vault, value)}))
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
