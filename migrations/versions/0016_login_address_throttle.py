"""login address throttle: failed staff logins counted per client address

The lock-out counts wrong passwords per user name; one address trying a few passwords on each of many names
stayed under it. This table counts failed logins per client address (bot/staff/throttle.py), under a keyed
hash of the address (never the address itself), purged with the per-name counters.

Revision ID: 0016_login_address_throttle
Revises: 0015_sealed_block_reasons
"""
from alembic import op
import sqlalchemy as sa
import bot.models

revision = "0016_login_address_throttle"
down_revision = "0015_sealed_block_reasons"
branch_labels = None
depends_on = None

UTC = bot.models.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "staff_login_address_failures",
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("first_at", UTC, nullable=False),
        sa.Column("throttled_until", UTC, nullable=True),
        sa.PrimaryKeyConstraint("address"),
    )


def downgrade() -> None:
    op.drop_table("staff_login_address_failures")
