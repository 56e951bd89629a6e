"""What every dashboard page is given and answers with: the templates' globals (the session's limits and the
warning's timer among them), the failure page, and the headers of a page that must not be kept or framed."""
from __future__ import annotations

from datetime import date, datetime, timedelta

from flask import Response, g, render_template, request, url_for
from sqlalchemy.exc import DBAPIError

from bot import security_headers
from bot.clock import TOKYO
from bot.staff import auth, export, handoff
from bot.staff.views import bp
from bot.staff.views.context import _now, _rt
from bot.staff.views.sessions import _page_of_post, csrf_token

# How long before the session ends the page's script warns (WCAG 2.2.1: at least 20 seconds to answer).
SESSION_WARNING = timedelta(minutes=5)


@bp.context_processor
def _template_globals():
    office = _rt().offices.get(g.who.office_id) if g.get("who") else None
    return {"csrf_token": csrf_token, "who": g.get("who"), "labels": export.labels(), "office": office,
            "invitation": handoff.invitation_task(office) if g.get("who") else None,
            "relative_day": _relative_day, "session_limits": _SESSION_LIMITS, "session_timer": _session_timer,
            "this_year": _now().year}   # a date in another year is written with it (bot/textfmt.py)


# The session's time limits as the pages state them in advance (WCAG 2.2.1: no limit comes unannounced).
_SESSION_LIMITS = {"idle_minutes": auth.IDLE_TIMEOUT // timedelta(minutes=1),
                   "max_hours": auth.MAX_SESSION // timedelta(hours=1),
                   "warning_minutes": SESSION_WARNING // timedelta(minutes=1)}


def _iso(moment: datetime) -> str:
    return moment.astimezone(TOKYO).isoformat(timespec="seconds")


def _session_timer(return_here: bool = True) -> dict | None:
    """What static/staff/session.js needs to warn before the session ends: the server's clock at this request
    and both deadlines (the app's clock, which development and tests move), the warning's lead, and the page to
    come back to after logging in again (`return_here` False, a refusal page: the day's page). None where no
    session is live (the login page)."""
    limits = g.get("deadlines")
    if limits is None:
        return None
    back = None
    if return_here:
        back = request.full_path.rstrip("?") if request.method == "GET" else _page_of_post()
    return {"now": _iso(g.seen_at), "idle": _iso(limits.idle), "absolute": _iso(limits.absolute),
            "warn_seconds": int(SESSION_WARNING.total_seconds()),
            "login": url_for("staff.login", next=back or url_for("staff.home"))}


def _relative_day(moment: datetime | date) -> str | None:
    """today | tomorrow | None: said beside a date, so that 12/8(火) is never misread on a busy day."""
    day = moment.astimezone(TOKYO).date() if isinstance(moment, datetime) else moment
    return {0: "today", 1: "tomorrow"}.get((day - _now().date()).days)


# What a dashboard page refuses (400, 403, 404, 405, 413) is bot/error_pages.py's: staff/refused.html, status kept.
@bp.errorhandler(500)
def _failed_page(error):
    """A page that failed, said in Japanese with what to check before doing it again: the database not
    answering (most often restarting) is 503, try later; anything else 500, which also says whom to tell if it
    goes on. Logged by the app without the error's message (`bot/errorlog.py`)."""
    code = 503 if isinstance(getattr(error, "original_exception", None), DBAPIError) else 500
    return render_template("staff/refused.html", code=code), code


@bp.after_request
def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    if g.get("who") is not None and response.mimetype == "text/html":
        # A signed-in page runs the session warning's script: its own file, and its calls to this site only.
        response.headers["Content-Security-Policy"] = security_headers.DASHBOARD_CSP
    return response
