"""The staff dashboard (/staff/…): thin views over bot.staff.{auth,decisions,timeline,export}, one Blueprint.

Every POST carries the CSRF token; every page but the login needs a live session of an account, whose
office is the only one it sees (another office's booking is a 404). Each module below adds one part's routes
(or hooks) to `bp`; importing them here is what registers them.
"""
from __future__ import annotations

from flask import Blueprint

bp = Blueprint("staff", __name__, url_prefix="/staff")

# The modules register on `bp`, so they are imported once it exists.
from bot.staff.views import (  # noqa: E402
    account, actions, audit_log, blocks, booking, day, details, exports, line, login, new_booking, pages, search,
    sessions, users,
)
from bot.staff.views.pages import SESSION_WARNING  # noqa: E402

__all__ = ["SESSION_WARNING", "bp", "account", "actions", "audit_log", "blocks", "booking", "day", "details",
           "exports", "line", "login", "new_booking", "pages", "search", "sessions", "users"]
