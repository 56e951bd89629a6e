"""one head after the feature branches

Revision ID: 0010_merge
Revises: 0004_simulator, 0005_requests, 0006_staff, 0007_terms, 0008_channels, 0009_flood
Create Date: 2026-11-22 02:35:44.045730
"""
from alembic import op
import sqlalchemy as sa
import bot.models


revision = '0010_merge'
down_revision = ('0004_simulator', '0005_requests', '0006_staff', '0007_terms', '0008_channels', '0009_flood')
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
