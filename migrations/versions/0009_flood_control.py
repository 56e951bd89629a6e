"""flood control: the per-chat rate limit's state on the conversation row (bot/ratelimit.py)

Revision ID: 0009_flood
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa
import bot.models

revision = "0009_flood"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("conversations") as batch:
        batch.add_column(sa.Column("flood_tat", bot.models.UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("flood_noticed_at", bot.models.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("conversations") as batch:
        batch.drop_column("flood_noticed_at")
        batch.drop_column("flood_tat")
