"""local LINE simulator: chats, users, reply tokens, accepted requests, rich menus

Revision ID: 0004_simulator
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa
import bot.models

revision = "0004_simulator"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sim_users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("office_id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("display_name", sa.String(length=100), nullable=False),
        sa.Column("followed", sa.Boolean(), nullable=False),
        sa.Column("last_event_ms", sa.BigInteger(), nullable=False),
        sa.Column("created_at", bot.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("office_id", "user_id"),
    )
    op.create_table(
        "sim_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("office_id", sa.String(length=32), nullable=False),
        sa.Column("chat_id", sa.String(length=64), nullable=False),
        sa.Column("sender", sa.String(length=8), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("message", sa.JSON(), nullable=False),
        sa.Column("line_message_id", sa.String(length=32), nullable=True),
        sa.Column("delivered", sa.Boolean(), nullable=False),
        sa.Column("created_at", bot.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_sim_messages_chat", "sim_messages", ["office_id", "chat_id", "id"], unique=False)
    op.create_table(
        "sim_reply_tokens",
        sa.Column("token", sa.String(length=64), nullable=False),
        sa.Column("office_id", sa.String(length=32), nullable=False),
        sa.Column("chat_id", sa.String(length=64), nullable=False),
        sa.Column("issued_at", bot.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("used_at", bot.models.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("token"),
    )
    op.create_index("ix_sim_reply_tokens_issued_at", "sim_reply_tokens", ["issued_at"], unique=False)
    op.create_table(
        "sim_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("office_id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("request_id", sa.String(length=36), nullable=False),
        sa.Column("retry_key", sa.String(length=36), nullable=True),
        sa.Column("cost", sa.Integer(), nullable=False),
        sa.Column("sent", sa.JSON(), nullable=False),
        sa.Column("created_at", bot.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("office_id", "retry_key"),
    )
    op.create_index("ix_sim_requests_month", "sim_requests", ["office_id", "created_at"], unique=False)
    op.create_table(
        "sim_rich_menus",
        sa.Column("rich_menu_id", sa.String(length=64), nullable=False),
        sa.Column("office_id", sa.String(length=32), nullable=False),
        sa.Column("menu", sa.JSON(), nullable=False),
        sa.Column("image", sa.LargeBinary(), nullable=True),
        sa.Column("content_type", sa.String(length=32), nullable=True),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        sa.Column("created_at", bot.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("rich_menu_id"),
    )
    op.create_index("ix_sim_rich_menus_office_id", "sim_rich_menus", ["office_id"], unique=False)
    op.create_table(
        "sim_rich_menu_links",
        sa.Column("office_id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("rich_menu_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("office_id", "user_id"),
    )


def downgrade() -> None:
    op.drop_table("sim_rich_menu_links")
    op.drop_index("ix_sim_rich_menus_office_id", table_name="sim_rich_menus")
    op.drop_table("sim_rich_menus")
    op.drop_index("ix_sim_requests_month", table_name="sim_requests")
    op.drop_table("sim_requests")
    op.drop_index("ix_sim_reply_tokens_issued_at", table_name="sim_reply_tokens")
    op.drop_table("sim_reply_tokens")
    op.drop_index("ix_sim_messages_chat", table_name="sim_messages")
    op.drop_table("sim_messages")
    op.drop_table("sim_users")
