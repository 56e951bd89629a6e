"""bookings remember when they closed

A closed request (declined, expired, withdrawn) is deleted `retention.closed_requests_days` after it closed.
That was counted from `bookings.updated_at`, which a later touch of the row moves (a staff note saved on the
closed request): each touch kept the personal details another full period. `closed_at` is stamped once by the
lifecycle when a booking enters a closed status, and the purge counts from it.

Rows closed before this revision get the earliest stamp that tells when they closed: the decision of a
declined request (`decided_at`), the staff notice of its closing (withdrawn, expired, cancelled, a proposal
declined), the audit entry of staff closing it; and never later than `updated_at`, the clock used so far, so
no row is kept longer than it would have been. Open bookings stay without one.

The column is added and dropped in place (no table copy), as in 0011 and 0014.

Revision ID: 0017_booking_closed_at
Revises: 0016_login_address_throttle
"""
from alembic import op
import sqlalchemy as sa

import bot.models

revision = "0017_booking_closed_at"
down_revision = "0016_login_address_throttle"
branch_labels = None
depends_on = None

UTC = bot.models.UTCDateTime(timezone=True)
CLOSED = ("declined", "expired", "withdrawn", "attended", "no_show", "cancelled", "cancelled_by_office")
CLOSING_NOTICES = ("withdrawn", "expired", "cancelled", "proposal_declined")
CLOSING_ACTIONS = ("decline", "reject_proposal", "withdraw_for_user", "cancel_for_user", "cancel_by_office",
                   "attended", "no_show")
BATCH = 500


def _earliest(conn, table, stamp: str, kind: str, kinds) -> dict[int, object]:
    """booking id -> the earliest `stamp` of its rows in `table` whose `kind` is one of `kinds`."""
    rows = sa.table(table, sa.column("booking_id", sa.Integer), sa.column(kind, sa.String), sa.column(stamp, UTC))
    query = sa.select(rows.c.booking_id, sa.func.min(rows.c[stamp])).where(
        rows.c[kind].in_(kinds), rows.c.booking_id.is_not(None)).group_by(rows.c.booking_id)
    return dict(conn.execute(query).all())


def upgrade() -> None:
    op.add_column("bookings", sa.Column("closed_at", UTC, nullable=True))
    conn = op.get_bind()
    bookings = sa.table("bookings", sa.column("id", sa.Integer), sa.column("status", sa.String),
                        sa.column("decided_at", UTC), sa.column("updated_at", UTC), sa.column("closed_at", UTC))
    notices = _earliest(conn, "staff_notices", "created_at", "kind", CLOSING_NOTICES)
    audited = _earliest(conn, "staff_audit", "at", "action", CLOSING_ACTIONS)
    found = conn.execute(sa.select(bookings.c.id, bookings.c.status, bookings.c.decided_at, bookings.c.updated_at)
                         .where(bookings.c.status.in_(CLOSED))).all()
    stamps = []
    for booking_id, status, decided_at, updated_at in found:
        candidates = [notices.get(booking_id), audited.get(booking_id), updated_at,
                      decided_at if status == "declined" else None]
        stamps.append({"b_id": booking_id, "b_closed": min(c for c in candidates if c is not None)})
    update = bookings.update().where(bookings.c.id == sa.bindparam("b_id")) \
        .values(closed_at=sa.bindparam("b_closed", type_=UTC))
    for start in range(0, len(stamps), BATCH):
        conn.execute(update, stamps[start:start + BATCH])


def downgrade() -> None:
    op.drop_column("bookings", "closed_at")
