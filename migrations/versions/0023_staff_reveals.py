"""staff reveals: which bookings' personal details a signed-in session shows, until when, kept on the server

The reveal of a booking's details (要配慮個人情報 among them) was held in Flask's signed session cookie: the
server could not take it back, so a copy of the cookie taken while the details showed still showed them after
個人情報を隠す, and a password change kept them on show in the new session. Each grant is now a row of the
session it was made in: ending the session (logout, password change, account disabled, time limits,
housekeeping) deletes its grants, as does purging the booking (both keys cascade). Nothing to carry over: a
grant lasts five minutes, and a browser that had one is asked to reveal again.

Revision ID: 0023_staff_reveals
Revises: 0022_queue_notices_index
"""
from alembic import op
import sqlalchemy as sa
import bot.models

revision = "0023_staff_reveals"
down_revision = "0022_queue_notices_index"
branch_labels = None
depends_on = None

UTC = bot.models.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "staff_reveals",
        sa.Column("session_id", sa.String(length=64), nullable=False),
        sa.Column("booking_id", sa.Integer(), nullable=False),
        sa.Column("until", UTC, nullable=False),
        sa.ForeignKeyConstraint(["session_id"], ["staff_sessions.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["booking_id"], ["bookings.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("session_id", "booking_id"),
    )
    op.create_index(op.f("ix_staff_reveals_booking_id"), "staff_reveals", ["booking_id"], unique=False)
    op.create_index(op.f("ix_staff_reveals_until"), "staff_reveals", ["until"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_staff_reveals_until"), table_name="staff_reveals")
    op.drop_index(op.f("ix_staff_reveals_booking_id"), table_name="staff_reveals")
    op.drop_table("staff_reveals")
