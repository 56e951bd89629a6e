"""terms versions that correct a wording without asking consent again

A version published with `terms publish --no-reconsent` (a typo, an extraction error put right) names the
version whose consent stands for it (`consent_from`: the newest version before it that asked for consent): a
user who consented to that version or to any since is not asked again. Versions published before this
revision asked for consent each, as they did.

The column is added and dropped in place (no table copy), as in 0014.

Revision ID: 0020_terms_corrections
Revises: 0019_audit_page_indexes
"""
from alembic import op
import sqlalchemy as sa

revision = "0020_terms_corrections"
down_revision = "0019_audit_page_indexes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("terms_versions", sa.Column("consent_from", sa.String(10), nullable=True))


def downgrade() -> None:
    op.drop_column("terms_versions", "consent_from")
