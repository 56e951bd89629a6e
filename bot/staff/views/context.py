"""What every dashboard view asks of its request: the runtime, who is signed in, their office, the audit's actor,
and their office's booking a path names."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask import abort, current_app, g, request

from bot.models import Booking
from bot.staff import decisions
from bot.staff.audit import Actor


@dataclass(frozen=True)
class Who:
    """The signed-in account, detached from any database session."""

    id: int
    username: str
    role: str
    office_id: str
    has_totp: bool

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def _rt():
    return current_app.extensions["madoguchi"]


def _now() -> datetime:
    return _rt().clock.now()


def _office():
    return _rt().offices[g.who.office_id]


def _actor() -> Actor:
    return Actor(label=g.who.username, user_id=g.who.id, ip=request.remote_addr)


def _booking_or_404(s, reference: str, lock: bool = False) -> Booking:
    try:
        return decisions.load(s, g.who.office_id, reference=reference, lock=lock)
    except decisions.Refused:
        abort(404)
