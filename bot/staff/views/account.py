"""My account: the member's own second factor and password."""
from __future__ import annotations

from flask import abort, flash, g, redirect, render_template, request, session, url_for

from bot.staff import audit, auth
from bot.staff.models import StaffUser
from bot.staff.views import bp
from bot.staff.views.context import _actor, _office, _rt
from bot.staff.views.sessions import TOKEN_KEY

TOTP_PENDING_KEY = "staff_totp_pending"  # the secret being set up, sealed (the cookie is signed, not secret)


@bp.get("/account")
def account():
    pending = auth.open_totp_secret(_rt().config, session.get(TOTP_PENDING_KEY))
    uri = auth.provisioning_uri(pending, g.who.username, _office().name) if pending else None
    return render_template("staff/account.html", pending=pending, uri=uri, error=request.args.get("error"))


@bp.post("/account/totp")
def account_totp():
    rt = _rt()
    if g.who.has_totp:
        # Set up already: only an admin removes it (the page says so). Replacing it here would let whoever holds
        # an open session move the second factor to their own phone.
        abort(403)
    step = request.form.get("step")
    if step == "start":
        # Kept in the session until a code proves the app has it, sealed: Flask's cookie is only signed, and
        # anyone who reads it (a shared PC's browser profile, a proxy's log) would have the second factor.
        session[TOTP_PENDING_KEY] = auth.seal_totp_secret(rt.config, auth.new_totp_secret())
        return redirect(url_for("staff.account"))
    pending = auth.open_totp_secret(rt.config, session.get(TOTP_PENDING_KEY))
    if step != "confirm" or not pending:
        abort(400)
    with rt.db.transaction() as s:
        user = s.get(StaffUser, g.who.id)
        now = rt.clock.now()
        ok = auth.enroll_totp(rt.config, user, pending, request.form.get("otp", ""), rt.clock.device_now())
        if ok:
            audit.record(s, user.office_id, _actor(), "enroll_totp", now)
    if not ok:
        return redirect(url_for("staff.account", error="otp"))
    session.pop(TOTP_PENDING_KEY, None)
    flash("enroll_totp:done:", "ok")
    return redirect(url_for("staff.account"))


@bp.post("/account/password")
def account_password():
    rt = _rt()
    with rt.db.transaction() as s:
        user = s.get(StaffUser, g.who.id)
        wrong = auth.check_current_password(s, rt.config, user, request.form.get("current", ""),
                                            request.remote_addr, rt.clock.now())
        if wrong is not None:
            return redirect(url_for("staff.account", error=wrong))
        try:
            auth.set_password(s, user, request.form.get("new", ""))
        except auth.AccountError as exc:
            return redirect(url_for("staff.account", error=exc.code))
        now = rt.clock.now()
        token = auth.start_session(s, user, now, request.remote_addr)
        audit.record(s, user.office_id, _actor(), "change_password", now)
    session[TOKEN_KEY] = token
    flash("change_password:done:", "ok")
    return redirect(url_for("staff.account"))
