"""The office's accounts, for admins: making, stopping and resetting them, and the address allowlist."""
from __future__ import annotations

from flask import abort, flash, g, redirect, render_template, request, session, url_for

from bot.staff import audit, auth
from bot.staff.models import StaffUser
from bot.staff.views import bp
from bot.staff.views.context import _actor, _rt
from bot.staff.views.sessions import TOKEN_KEY, admin_only

@bp.get("/users")
@admin_only
def users():
    return _users_page(request.args.get("error"))


def _users_page(error: str | None, typed: dict | None = None) -> str:
    """The accounts page; `typed`: the new account's name and role as sent, kept when it could not be made."""
    rt = _rt()
    with rt.db.reading() as s:
        now = rt.clock.now()
        rows = auth.accounts(s, g.who.office_id)
        locked = {u.id for u in rows if auth.is_locked(s, rt.config, u.username, now)}
        return render_template("staff/users.html", users=rows, locked=locked,
                               allowlist="\n".join(auth.allowlist(s, g.who.office_id)),
                               error=error, remote=request.remote_addr, typed=typed or {})


@bp.post("/users")
@admin_only
def create_user():
    rt = _rt()
    try:
        with rt.db.transaction() as s:
            now = rt.clock.now()
            user = auth.create_user(s, office_id=g.who.office_id, username=request.form.get("username", ""),
                                    password=request.form.get("password", ""),
                                    role=request.form.get("role", "staff"), now=now)
            audit.record(s, g.who.office_id, _actor(), "create_user", now, account=user.username, role=user.role)
            account_name = user.username
    except auth.AccountError as exc:
        # Said beside the form, with the name and role as typed: only what was wrong is typed again.
        typed = {"username": request.form.get("username", "")[:64], "role": request.form.get("role", "staff")}
        return _users_page(exc.code, typed), 400
    flash(f"create_user:done:::{account_name}", "ok")
    return redirect(url_for("staff.users"))


USER_OPS = ("deactivate", "activate", "reset_password", "unlock", "reset_totp")


@bp.post("/users/<int:user_id>/<op>")
@admin_only
def user_op(user_id: int, op: str):
    if op not in USER_OPS:
        abort(404)
    rt = _rt()
    try:
        with rt.db.transaction() as s:
            now = rt.clock.now()
            user = s.get(StaffUser, user_id)
            if user is None or user.office_id != g.who.office_id:
                abort(404)
            if op in ("deactivate",) and user.id == g.who.id:
                raise auth.AccountError("self")
            if op == "deactivate":
                user.active = False
                auth.end_sessions(s, user.id)
            elif op == "activate":
                user.active = True
            elif op == "reset_password":
                auth.set_password(s, user, request.form.get("password", ""))
            elif op == "unlock":
                auth.unlock(s, rt.config, user.username)
            else:
                # A second factor removed (a phone lost) ends the account's sessions too: none of them, a copied
                # cookie's included, may be the one to set up the next factor without the password.
                user.totp_secret, user.totp_last_step = None, 0
                auth.end_sessions(s, user.id)
            action = {"deactivate": "deactivate_user", "activate": "activate_user", "unlock": "unlock_user"}.get(op, op)
            audit.record(s, g.who.office_id, _actor(), action, now, account=user.username)
            account_name = user.username
            # An admin resetting their own credentials stays signed in here, as after a password change on the
            # account page: every other session ended, this browser gets a new one.
            token = auth.start_session(s, user, now, request.remote_addr) \
                if op in ("reset_password", "reset_totp") and user.id == g.who.id else None
    except auth.AccountError as exc:
        return redirect(url_for("staff.users", error=exc.code))
    if token is not None:
        session[TOKEN_KEY] = token
    flash(f"{op}:done:::{account_name}", "ok")   # which account: the rows look alike
    return redirect(url_for("staff.users"))


@bp.post("/users/allowlist")
@admin_only
def set_allowlist():
    rt = _rt()
    try:
        networks = auth.parse_allowlist(request.form.get("allowlist", ""))
        if not auth.address_in(networks, request.remote_addr):
            raise auth.AccountError("allowlist_self")
    except auth.AccountError as exc:
        return redirect(url_for("staff.users", error=exc.code))
    with rt.db.transaction() as s:
        auth.set_allowlist(s, g.who.office_id, networks)
        audit.record(s, g.who.office_id, _actor(), "set_allowlist", rt.clock.now(), networks=networks)
    flash("set_allowlist:done:", "ok")
    return redirect(url_for("staff.users"))
