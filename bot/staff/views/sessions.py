"""The guard of every dashboard request: the CSRF token, the login session (the office's address allowlist
included), where a refused POST leads back to, and the admins-only mark."""
from __future__ import annotations

import hmac
import re
import secrets
from functools import wraps
from urllib.parse import urlsplit

from flask import abort, g, redirect, render_template, request, session, url_for

from bot.staff import auth
from bot.staff.views import bp
from bot.staff.views.context import Who, _rt

TOKEN_KEY = "staff_token"
CSRF_KEY = "staff_csrf"
PUBLIC_ENDPOINTS = frozenset({"staff.login"})
JSON_ENDPOINTS = frozenset({"staff.extend_session"})  # answer the page's script, not a person


def csrf_token() -> str:
    token = session.get(CSRF_KEY)
    if not token:
        token = secrets.token_urlsafe(32)
        session[CSRF_KEY] = token
    return token


def _csrf_ok() -> bool:
    sent = request.form.get("csrf_token", "")
    expected = session.get(CSRF_KEY, "")
    # As bytes: compare_digest refuses a str that is not ASCII (a TypeError, a 500) instead of saying no.
    return bool(sent) and bool(expected) and hmac.compare_digest(sent.encode(), expected.encode())


def _sent_from_this_site() -> bool:
    """Did a page of this site send the request? Browsers say so in Sec-Fetch-Site, or else in Origin; a request
    that says neither is not taken as this site's."""
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None:
        return site == "same-origin"
    origin = request.headers.get("Origin")
    return bool(origin) and origin != "null" and urlsplit(origin).netloc == request.host


def _logout_from_an_older_tab() -> bool:
    """ログアウト pressed in a tab older than the session's token (another tab logged out, or out and in again):
    it still ends the session, for refusing it would leave staff signed in who believe they are out. The token
    is not needed for that: a logout cannot do harm beyond ending a session, and one another site forges is still
    refused, as its request says it comes from elsewhere (nor does SameSite=Lax send it the session cookie)."""
    return request.endpoint == "staff.logout" and _sent_from_this_site()


@bp.before_request
def _guard():
    if request.method == "POST" and not _csrf_ok() and not _logout_from_an_older_tab():
        if request.endpoint in JSON_ENDPOINTS:
            # Logged out in another tab (the token went with the session): the page's script says the session
            # ended, not that the page is older than a new login.
            return ({"error": "ended"}, 401) if not session.get(TOKEN_KEY) else ({"error": "csrf"}, 400)
        # A page older than the session's token (logged in again in another tab, or a forged form): nothing
        # is done, and staff are told so in words, with the way back to the page to do it again.
        back = request.full_path.rstrip("?") if request.endpoint in PUBLIC_ENDPOINTS else _page_of_post()
        return render_template("staff/stale_form.html", back=back or url_for("staff.home")), 400
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    rt = _rt()
    token = session.get(TOKEN_KEY)
    with rt.db.transaction() as s:
        now = rt.clock.now()
        user = auth.resume_session(s, token, now)
        if user is not None and not auth.ip_allowed(s, user.office_id, request.remote_addr):
            auth.end_session(s, token)
            user = None
        who = Who(user.id, user.username, user.role, user.office_id, bool(user.totp_secret)) if user else None
        limits = auth.deadlines(s, token) if user else None
    if who is None or who.office_id not in rt.offices:
        had_session = session.pop(TOKEN_KEY, None) is not None
        if request.endpoint in JSON_ENDPOINTS:
            return {"error": "ended"}, 401
        if request.method == "GET":
            # A page opened after the session ended (a link in a tab left open, the group card's link): the
            # login page says why it asks again; a first visit is simply asked to log in.
            return redirect(url_for("staff.login", next=request.full_path.rstrip("?"), ended=1 if had_session
                                    else None))
        if request.endpoint == "staff.logout":  # what the button asked for is already so
            return redirect(url_for("staff.login", logged_out=1))
        # A button pressed after the session ended did nothing: the login page says so, and leads back to
        # the page the button was on (a booking's action: its booking page) to press it again.
        return redirect(url_for("staff.login", next=_page_of_post(), not_done=1))
    g.who, g.deadlines, g.seen_at, g.token = who, limits, now, token
    return None


_BOOKING_ACTION_PATH = re.compile(r"(/staff/bookings/[^/]+)/[a-z_]+")


def _page_of_post() -> str | None:
    """The dashboard page a POST was sent from: the Referer's path on this site, else the booking's page."""
    referrer = urlsplit(request.referrer or "")
    if referrer.netloc == request.host and referrer.path.startswith("/staff/") \
            and referrer.path != url_for("staff.login"):
        return referrer.path + (f"?{referrer.query}" if referrer.query else "")
    action = _BOOKING_ACTION_PATH.fullmatch(request.path)
    return action.group(1) if action else None


def admin_only(view):
    @wraps(view)
    def wrapped(*args, **kwargs):
        if not g.who.is_admin:
            abort(403)
        return view(*args, **kwargs)
    return wrapped
