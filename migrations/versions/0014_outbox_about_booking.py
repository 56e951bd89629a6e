"""outbox rows say which booking they are about

A message about a booking (a confirmation, a reminder, a staff card…) records the booking's reference and
the status it reported: the staff page LINE送信状況 names and links the booking of each message that
did not go, and the worker drops one the booking has since left behind (a reminder after the session began,
a confirmation of a booking since cancelled) instead of sending it late. A staff card also records which
notice it carries. Rows queued before this revision stay as they are: about no booking, never dropped.

Columns are added and dropped in place (no table copy), as in 0011.

Revision ID: 0014_outbox_about_booking
Revises: 0013_sealed_override_reasons
"""
from alembic import op
import sqlalchemy as sa

revision = "0014_outbox_about_booking"
down_revision = "0013_sealed_override_reasons"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("outbox", sa.Column("booking_reference", sa.String(9), nullable=True))
    op.add_column("outbox", sa.Column("booking_status", sa.String(20), nullable=True))
    op.add_column("outbox", sa.Column("notice_kind", sa.String(20), nullable=True))


def downgrade() -> None:
    for name in ("notice_kind", "booking_status", "booking_reference"):
        op.drop_column("outbox", name)
