"""receipt due: the conversation says whether a request's receipt may be waiting for the chat

Without it every chat event looked for a pending receipt among the user's bookings.

Revision ID: 0011_receipt_due
Revises: 0010_merge
"""
from alembic import op
import sqlalchemy as sa

revision = "0011_receipt_due"
down_revision = "0010_merge"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Not in batch mode: SQLite adds the column in place; copying the table would trip its foreign keys.
    op.add_column("conversations", sa.Column("receipt_due", sa.Boolean(), nullable=False,
                                             server_default=sa.false()))
    op.execute("UPDATE conversations SET receipt_due = true WHERE id IN "
               "(SELECT conversation_id FROM bookings WHERE receipt_pending = true)")


def downgrade() -> None:
    # In place as well (SQLite 3.35+ drops a plain column).
    op.drop_column("conversations", "receipt_due")
