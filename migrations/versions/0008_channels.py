"""channels store: encrypted LINE channel credentials per office

Revision ID: 0008_channels
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa
import bot.models

revision = "0008_channels"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "channel_credentials",
        sa.Column("office_id", sa.String(length=32), nullable=False),
        sa.Column("credentials", sa.LargeBinary(), nullable=False),
        sa.Column("updated_at", bot.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("office_id"),
    )


def downgrade() -> None:
    op.drop_table("channel_credentials")
