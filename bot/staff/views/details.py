"""Revealing a booking's personal details, and hiding them again."""
from __future__ import annotations

from datetime import datetime, timedelta

from flask import g, redirect, request, url_for

from bot.models import Booking
from bot.staff import audit, reveals
from bot.staff.models import BookingHandoff
from bot.staff.views import bp
from bot.staff.views.context import _actor, _booking_or_404, _office, _rt

# The booking page shows what is needed to act; the details (and what staff wrote about the person) only once
# a member asks for them with a POST (CSRF; never a prefetch or a mere opening of the page), which records one
# 個人情報の閲覧. The reveal then holds for that booking in that member's login session for REVEAL_FOR, so that
# the page an action redirects to (or reloads) shows them again without a second entry: one entry for one
# look at one person's data, as long as a phone call's work takes, not every time the page is opened. The
# grant is kept on the server with the session (bot/staff/reveals.py), never in the cookie: 個人情報を隠す
# and whatever ends the session end it for every copy of the cookie.

REVEAL_FOR = timedelta(minutes=5)


def _revealed_until(s, row: Booking, now: datetime) -> datetime | None:
    """Until when this session shows the booking's details (None: hidden)."""
    return reveals.until(s, g.token, row.id, now)


def _holds_personal(s, row: Booking) -> bool:
    """Is there anything personal to show: the details, the 職員メモ, a memo or an override's reason?"""
    if row.details is not None or row.staff_note is not None:
        return True
    handed = s.get(BookingHandoff, row.id)
    return (handed is not None and handed.override_reason is not None) \
        or any(e.note is not None for e in audit.for_booking(s, row.id))


def _reveal(s, office, row: Booking, now: datetime) -> None:
    """Show the booking's details in this session from now on, for REVEAL_FOR: one audit entry."""
    if _holds_personal(s, row) and reveals.grant(s, g.token, row.id, now, now + REVEAL_FOR):
        audit.record(s, office.id, _actor(), "view_details", now, row)


REVEAL_TARGETS = frozenset({"details-h", "note"})  # where the page opens after a reveal


@bp.post("/bookings/<reference>/reveal")
def reveal(reference: str):
    rt = _rt()
    office = _office()
    with rt.db.transaction() as s:
        row = _booking_or_404(s, reference)
        _reveal(s, office, row, rt.clock.now())
    then = request.form.get("then")
    return redirect(url_for("staff.booking", reference=reference,
                            _anchor=then if then in REVEAL_TARGETS else "details-h"))


@bp.post("/bookings/<reference>/conceal")
def conceal(reference: str):
    with _rt().db.transaction() as s:
        reveals.revoke(s, g.token, _booking_or_404(s, reference).id)
    return redirect(url_for("staff.booking", reference=reference, _anchor="details-h"))
