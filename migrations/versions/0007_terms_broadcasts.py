"""terms broadcasts

Revision ID: 0007_terms
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa
import bot.models

revision = "0007_terms"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "terms_broadcasts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("office_id", sa.String(length=32), nullable=False),
        sa.Column("version", sa.String(length=10), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("runner", sa.String(length=36), nullable=True),
        sa.Column("heartbeat_at", bot.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("recipients", sa.Integer(), nullable=False),
        sa.Column("note", sa.String(length=255), nullable=True),
        sa.Column("created_at", bot.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("completed_at", bot.models.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("office_id", "version", "mode"),
    )
    op.create_table(
        "broadcast_chunks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("broadcast_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("recipients", sa.JSON(), nullable=False),
        sa.Column("retry_key", sa.String(length=36), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("sent_at", bot.models.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["broadcast_id"], ["terms_broadcasts.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("broadcast_id", "seq"),
    )
    op.create_index(op.f("ix_broadcast_chunks_broadcast_id"), "broadcast_chunks", ["broadcast_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_broadcast_chunks_broadcast_id"), table_name="broadcast_chunks")
    op.drop_table("broadcast_chunks")
    op.drop_table("terms_broadcasts")
