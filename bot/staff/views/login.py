"""Logging in and out, and keeping the session when its warning asks."""
from __future__ import annotations

import logging
import re
import secrets
from datetime import timedelta
from urllib.parse import unquote

from flask import g, redirect, render_template, request, session, url_for

from bot.staff import audit, auth
from bot.staff.audit import Actor
from bot.staff.views import bp
from bot.staff.views.context import _actor, _rt
from bot.staff.views.pages import _iso
from bot.staff.views.sessions import CSRF_KEY, TOKEN_KEY

log = logging.getLogger(__name__)

LOGIN_STATUS = {"invalid": 401, "otp": 401, "locked": 429, "ip": 403, "throttled": 429}


@bp.route("/login", methods=["GET", "POST"])
def login():
    if request.method == "GET":
        return render_template("staff/login.html", error=None, username="")
    rt = _rt()
    username = request.form.get("username", "")
    with rt.db.transaction() as s:
        now = rt.clock.now()
        result = auth.authenticate(s, rt.config, username=username, password=request.form.get("password", ""),
                                   otp=request.form.get("otp"), ip=request.remote_addr, now=now,
                                   device_now=rt.clock.device_now())
        token = None
        if result.user is not None:
            auth.end_session(s, session.get(TOKEN_KEY))
            token = auth.start_session(s, result.user, now, request.remote_addr)
            audit.record(s, result.user.office_id, Actor.staff(result.user, request.remote_addr), "login", now)
    if token is None:
        # For the security officer's log: why and from where, never what was typed (a password typed into the
        # user name box would otherwise be written down).
        log.warning("staff login refused reason=%s ip=%s", result.error or "invalid", request.remote_addr)
        # Throttled: the page says how many minutes to wait, and so does Retry-After (whole seconds).
        wait = -(-result.wait // timedelta(minutes=1)) if result.wait else None
        headers = {"Retry-After": str(wait * 60)} if wait else {}
        return render_template("staff/login.html", error=result.error, username=username[:64], wait_minutes=wait), \
            LOGIN_STATUS.get(result.error or "invalid", 401), headers
    log.info("staff login account=%s office=%s ip=%s", result.user.id, result.user.office_id, request.remote_addr)
    # A new session on login: nothing the browser carried before survives (fixation).
    for key in [k for k in session if k.startswith("staff_")]:
        session.pop(key)
    session[TOKEN_KEY] = token
    session[CSRF_KEY] = secrets.token_urlsafe(32)
    return redirect(_local_target(request.args.get("next") or ""))


_LOCAL_TARGET = re.compile(r"/staff/[A-Za-z0-9/_.~%?=&+-]*")


def _local_target(target: str) -> str:
    """Where to go after login: a dashboard path of this site, nothing else (no other host, no header tricks, no
    dot segment, which a browser resolves even percent-encoded: `/staff/.%2e/form/…` is `/form/…`)."""
    path = unquote(target.partition("?")[0])
    if _LOCAL_TARGET.fullmatch(target) and "//" not in path and not {".", ".."} & set(path.split("/")):
        return target
    return url_for("staff.home")


@bp.post("/logout")
def logout():
    rt = _rt()
    with rt.db.transaction() as s:
        auth.end_session(s, session.get(TOKEN_KEY))
        audit.record(s, g.who.office_id, _actor(), "logout", rt.clock.now())
    for key in [k for k in session if k.startswith("staff_")]:
        session.pop(key)
    return redirect(url_for("staff.login", logged_out=1))


@bp.post("/session/extend")
def extend_session():
    """続ける on the warning before the idle limit. The guard's resume already moved the idle clock (and only that:
    the absolute limit stays where the login put it); this records that the member asked and answers the page's
    script with the deadlines as they now are."""
    rt = _rt()
    with rt.db.transaction() as s:
        audit.record(s, g.who.office_id, _actor(), "extend_session", g.seen_at)
    return {"now": _iso(g.seen_at), "idle": _iso(g.deadlines.idle), "absolute": _iso(g.deadlines.absolute)}
