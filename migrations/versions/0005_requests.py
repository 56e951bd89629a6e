"""details form: which form link became which request

Revision ID: 0005_requests
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa
import bot.models

revision = "0005_requests"
down_revision = "0001"
branch_labels = None
depends_on = None

UTC = bot.models.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "form_submissions",
        sa.Column("nonce", sa.String(length=32), nullable=False),
        sa.Column("office_id", sa.String(length=32), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("booking_id", sa.Integer(), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(["booking_id"], ["bookings.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["conversation_id"], ["conversations.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("nonce"),
        sa.UniqueConstraint("booking_id"),
    )
    op.create_index(op.f("ix_form_submissions_conversation_id"), "form_submissions", ["conversation_id"],
                    unique=False)
    op.create_index(op.f("ix_form_submissions_created_at"), "form_submissions", ["created_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_form_submissions_created_at"), table_name="form_submissions")
    op.drop_index(op.f("ix_form_submissions_conversation_id"), table_name="form_submissions")
    op.drop_table("form_submissions")
