"""The staff dashboard (/staff/…): thin views over bot.staff.{auth,decisions,timeline,export}.

Every POST carries the CSRF token; every page but the login needs a live session of an account, whose
office is the only one it sees (another office's booking is a 404).
"""
from __future__ import annotations

import hmac
import logging
import re
import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import wraps
from urllib.parse import unquote, urlsplit

from flask import (
    Blueprint, Response, abort, current_app, flash, g, redirect, render_template, request, session, url_for,
)
from sqlalchemy.exc import DBAPIError

from bot import notify, outbox, security_headers
from bot.clock import TOKYO
from bot.models import Booking, Conversation
from bot.services import holds, requests, terms, validation
from bot.services import slots as slotsvc
from bot.staff import audit, auth, decisions, export, handoff, personal, reveals, timeline
from bot.staff import groups as staff_groups
from bot.staff import queue as queue_lists
from bot.staff import undelivered
from bot.staff.audit import Actor
from bot.staff.models import BookingHandoff, StaffUser

log = logging.getLogger(__name__)
bp = Blueprint("staff", __name__, url_prefix="/staff")

TOKEN_KEY = "staff_token"
CSRF_KEY = "staff_csrf"
TOTP_PENDING_KEY = "staff_totp_pending"  # the secret being set up, sealed (the cookie is signed, not secret)
PUBLIC_ENDPOINTS = frozenset({"staff.login"})
JSON_ENDPOINTS = frozenset({"staff.extend_session"})  # answer the page's script, not a person
# How long before the session ends the page's script warns (WCAG 2.2.1: at least 20 seconds to answer).
SESSION_WARNING = timedelta(minutes=5)
TIMELINE_DAYS = 14
BOOKING_ACTIONS = ("confirm", "decline", "propose", "invitation", "called", "invitation_undo", "called_undo",
                   "attended", "no_show",
                   "correct_attendance", "cancel_user", "cancel_office", "block_user", "unblock_user", "note")
DETAIL_FIELDS = ("name", "name_kana", "birth_date", "seeker_number", "phone", "category", "consultation",
                 "companion", "companion_detail", "mypage_email_confirmed")


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


# -- CSRF and sessions ----------------------------------------------------------------------------

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


@bp.context_processor
def _template_globals():
    office = _rt().offices.get(g.who.office_id) if g.get("who") else None
    return {"csrf_token": csrf_token, "who": g.get("who"), "labels": export.labels(), "office": office,
            "invitation": handoff.invitation_task(office) if g.get("who") else None,
            "relative_day": _relative_day, "session_limits": _SESSION_LIMITS, "session_timer": _session_timer}


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


# -- login ----------------------------------------------------------------------------------------

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


# -- the day --------------------------------------------------------------------------------------

# The years a date staff type or an address names may be in: one outside is a typing mistake, and a year 1 or
# 9999 would overflow at the time zone's edge or a day after it.
YEARS = (2000, 2999)


def _in_years(moment: date | datetime | None) -> bool:
    return moment is not None and YEARS[0] <= moment.year <= YEARS[1]


def _date_arg(name: str, default: date) -> date:
    try:
        day = date.fromisoformat(request.args.get(name) or request.form.get(name) or "")
    except ValueError:
        return default
    return day if _in_years(day) else default


@bp.get("/")
def home():
    rt = _rt()
    office = _office()
    now = rt.clock.now()
    first = _date_arg("from", now.date())
    with rt.db.reading() as s:
        day_views = timeline.days(s, office, now, first, TIMELINE_DAYS,
                                  open_reason=lambda token: personal.open_note(rt, token))
        today = timeline.today(s, office, now)
        pending = queue_lists.has_undecided(s, office.id)
        return render_template("staff/timeline.html", days=day_views, first=first, now=now, pending=pending,
                               today=today, next_id=today.next.id if today.next else None,
                               prev=first - timedelta(days=TIMELINE_DAYS),
                               next=first + timedelta(days=TIMELINE_DAYS))


@bp.get("/queue")
def queue():
    rt = _rt()
    office = _office()
    now = rt.clock.now()
    start = request.args.get("attendance_from", "")
    start_at = int(start) if start.isdigit() and len(start) < 7 else 0
    with rt.db.reading() as s:
        todo = queue_lists.load(s, office, now, attendance_from=start_at)
        return render_template("staff/queue.html", undecided=todo.undecided, calls=todo.calls,
                               attendance_total=todo.attendance_total, attendance_from=todo.attendance_from,
                               attendance_shown=queue_lists.ATTENDANCE_SHOWN,
                               invitations=todo.invitations, call_task=handoff.call_user_on_confirm(office),
                               attendance=todo.attendance, notices=todo.notices, now=now,
                               group_left=_staff_group_left(s, rt, office),
                               deadlines={b.id: notify.deadline_view(office, b, now) for b in todo.undecided})


# -- one booking ----------------------------------------------------------------------------------

def _booking_or_404(s, reference: str, lock: bool = False) -> Booking:
    try:
        return decisions.load(s, g.who.office_id, reference=reference, lock=lock)
    except decisions.Refused:
        abort(404)


def _proposable(s, office, now: datetime, exclude: datetime) -> list:
    taken, blocked, blocked_days = holds.seats(s, office.id, now)
    found = slotsvc.available_slots(office, now, taken, blocked, blocked_days, limit=40)
    return [slot for slot in found if slot.start != exclude]


@bp.get("/bookings/<reference>")
def booking(reference: str):
    return _booking_page(reference)


# -- revealing a booking's personal details -------------------------------------------------------
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
    return redirect(url_for("staff.booking", reference=reference))


def _booking_page(reference: str, note_draft: str | None = None, correction_draft: dict | None = None) -> str:
    """The booking's page; `note_draft`: a note that could not be saved, kept in the box beside the current one
    (which the member must read to merge: shown, as a reveal); `correction_draft`: an attendance correction sent
    without a usable reason, kept as chosen and typed. Personal details only while revealed in this session."""
    rt = _rt()
    office = _office()
    with rt.db.transaction() as s:
        now = rt.clock.now()
        row = _booking_or_404(s, reference)
        if note_draft is not None and row.staff_note is not None:
            _reveal(s, office, row, now)
        until = _revealed_until(s, row, now)
        details = personal.decrypt(rt, row.details) if until else None
        details_unreadable = until is not None and row.details is not None and details is None
        if details_unreadable:  # kept, but under a key no longer configured: not the same as erased
            log.error("booking=%s details open under no key in DATA_ENCRYPTION_KEY: add the key they were "
                      "written with after the newest (`flask --app app keys rotate` lists every such row)", row.id)
        conv = s.get(Conversation, row.conversation_id) if row.conversation_id else None
        entries = audit.for_booking(s, row.id)
        handed = s.get(BookingHandoff, row.id)
        note = personal.open_note(rt, row.staff_note) if until else None
        # What LINE has not delivered to the user about this booking: staff may need to phone instead.
        stuck = undelivered.of_booking(s, conv.line_user_id, row.reference, now) if conv else []
        no_shows, sessions = decisions.earlier_no_shows(s, office, row), decisions.earlier_sessions(s, office, row)
        other_open = decisions.other_open_bookings(s, office, row, now) \
            if row.status in ("requested", "proposed", "no_show") else []
        page = render_template(
            "staff/booking.html", booking=row, details=details, details_unreadable=details_unreadable,
            fields=DETAIL_FIELDS, revealed_until=until.astimezone(TOKYO) if until else None,
            reveal_minutes=REVEAL_FOR // timedelta(minutes=1),
            personal_held=_holds_personal(s, row), has_note=row.staff_note is not None,
            staff_note=note, note_draft=note_draft, note_seen=personal.note_digest(note),
            note_unreadable=until is not None and row.staff_note is not None and note is None,
            memos={e.id: personal.open_note(rt, e.note) if until else None for e in entries if e.note is not None},
            handoff=handed,
            override_reason=personal.open_note(rt, handed.override_reason) if until and handed else None,
            conv=conv, consent=terms.consent_behind(s, conv.id, row.created_at) if conv else None,
            terms_in_force=terms.current_version(s, office.id, now.date()),
            entries=entries, reachable=conv is not None and bool(conv.followed), undelivered=stuck,
            undelivered_states={m.id: undelivered.state(m, now) for m in stuck},
            reasons=handoff.decline_reasons("ja"), offered_reasons=handoff.office_decline_reasons(office), now=now,
            deadline=slotsvc.booking_deadline(office, row.slot_start),
            deadline_passed=slotsvc.deadline_passed(office, row.slot_start, now),
            proposable=_proposable(s, office, now, row.slot_start) if row.status == "requested" else [],
            attendance_open=row.status == "confirmed" and row.slot_start <= now,
            no_show_from=decisions.no_show_from(office, row),
            earlier_no_shows=no_shows, same_number=requests.same_number(s, office.id, row, now),
            earlier_sessions=sessions, other_open=other_open,
            typed_elsewhere=decisions.typed_elsewhere(row, [*no_shows, *sessions, *other_open]),
            correction=_correction_view(office, row, now, decisions.correction_target(row)),
            cancel_correction=_correction_view(office, row, now, "cancelled"), correction_draft=correction_draft,
        )
    return page


@bp.post("/bookings/<reference>/<action>")
def booking_action(reference: str, action: str):
    if action not in BOOKING_ACTIONS:
        abort(404)
    rt = _rt()
    office = _office()
    form = request.form
    with rt.db.transaction() as s:
        now = rt.clock.now()
        row = _booking_or_404(s, reference, lock=True)
        try:
            result = _apply(s, rt, office, row, action, form, now)
            message, category = ("done" if result.changed else "already"), "ok"
            if result.after_deadline:
                message = "done_after_deadline"
            told = {True: "line", False: "none"}.get(result.told, "")
        except decisions.Refused as refused:
            message, category, told = refused.code, "error", ""
        status = row.status
    if message == "note_changed":
        # The page shows the note as it is now and keeps what this member typed, to merge and save again.
        return _booking_page(reference, note_draft=form.get("note", "")), 409
    if message == "correction_reason":
        # Said beside the reason's fields, which keep what was chosen and typed.
        draft = {"to": form.get("to", ""), "reason": form.get("reason", ""),
                 "note": form.get("note", "")[:decisions.CORRECTION_LIMIT]}
        return _booking_page(reference, correction_draft=draft), 400
    flash(f"{action}:{message}:{status}:{told}", category)
    return redirect(url_for("staff.booking", reference=reference))


def _apply(s, rt, office, row: Booking, action: str, form, now: datetime) -> decisions.Result:
    actor = _actor()
    if action == "confirm":
        return decisions.confirm(s, rt, office, row, actor, now, same_number_checked=_same_number_checked(form))
    if action == "decline":
        return decisions.decline(s, rt, office, row, actor, now, reason=form.get("reason") or None)
    if action == "propose":
        start = _slot_arg(form.get("slot"))
        if start is None:
            raise decisions.Refused("not_a_slot", row)
        return decisions.propose(s, rt, office, row, actor, now, start,
                                 same_number_checked=_same_number_checked(form))
    if action == "invitation":
        return decisions.mark_invitation_sent(s, office, row, actor, now)
    if action == "called":
        return decisions.mark_called(s, office, row, actor, now)
    if action in ("invitation_undo", "called_undo"):
        return decisions.undo_preparation(s, office, row, actor, now, task=action.removesuffix("_undo"))
    if action in ("attended", "no_show"):
        return decisions.mark_attendance(s, rt, office, row, actor, now, attended=action == "attended")
    if action == "correct_attendance":
        return decisions.correct_attendance(s, rt, office, row, actor, now, to=form.get("to", ""),
                                            reason=form.get("reason") or None, note=form.get("note"))
    if action in ("cancel_user", "cancel_office"):
        return decisions.cancel(s, rt, office, row, actor, now, by_office=action == "cancel_office",
                                note=form.get("note"))
    if action in ("block_user", "unblock_user"):
        return decisions.set_user_blocked(s, office, row, actor, now, blocked=action == "block_user")
    return decisions.set_note(s, rt, office, row, actor, now, form.get("note", ""), seen=form.get("note_seen"))


def _same_number_checked(form) -> bool:
    """The member ticked that they checked the same job seeker number's booking on another LINE account."""
    return form.get("same_number_checked") == "1"


def _correction_view(office, row: Booking, now: datetime, to: str | None) -> dict | None:
    """A recorded attendance's correction to `to` as the page offers it: why it cannot be made now (None: it can)
    and the reasons that fit it. None: nothing recorded, or no such correction of this record."""
    if to is None or to not in decisions.correction_targets(row.status):
        return None
    return {"to": to, "problem": decisions.correction_problem(office, row, now, to),
            "reasons": decisions.correction_reasons(to), "limit": decisions.CORRECTION_LIMIT}


def _slot_arg(value: str | None) -> datetime | None:
    try:
        moment = datetime.fromisoformat(value or "")
    except ValueError:
        return None
    if not _in_years(moment):
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=TOKYO)).astimezone(TOKYO)


# -- phone and window bookings --------------------------------------------------------------------

def _staff_slot_choices(s, office, now: datetime) -> list[tuple[datetime, str | None]]:
    """Every scheduled start from now to the window's end, with why a user could not book it."""
    taken, blocked, blocked_days = holds.seats(s, office.id, now)
    end = now.date() + timedelta(weeks=office.booking.window_weeks + 4)
    starts = [t for t in slotsvc.candidate_starts(office, now.date(), end) if t > now]
    return [(t, slotsvc.is_bookable(office, now, t, taken, blocked, blocked_days)) for t in starts]


@bp.route("/bookings/new", methods=["GET", "POST"])
def new_booking():
    rt = _rt()
    office = _office()
    errors: list[str] = []
    form = request.form
    if request.method == "POST":
        start = _slot_arg(form.get("slot"))
        # What staff learnt on the phone: the name at least; every value given is checked as the form does.
        given = [f for f in office.form_fields if f == "name" or (form.get(f) or "").strip()]
        checked = validation.validate(given, form, rt.clock.now().date(), [c.id for c in office.categories])
        details = {k: v for k, v in checked.values.items() if v not in ("", None)}
        errors.extend(sorted(checked.errors))
        if start is None:
            errors.append("slot")
        if form.get("source") not in decisions.SOURCES:
            errors.append("source")
        if not errors:
            try:
                with rt.db.transaction() as s:
                    created = decisions.create_booking(
                        s, rt, office, _actor(), rt.clock.now(), start=start, source=form["source"],
                        details=details, override_reason=form.get("override_reason"))
                    reference = created.reference
                flash(f"create_booking:done:{created.status}", "ok")
                return redirect(url_for("staff.booking", reference=reference))
            except decisions.Refused as refused:
                errors.append(refused.code)
                if refused.code == "needs_override":
                    errors.extend(f"override_{o}" for o in refused.detail.get("overrides", []))
    with rt.db.reading() as s:
        now = rt.clock.now()
        choices = _staff_slot_choices(s, office, now)
    status = 400 if errors else 200
    return render_template("staff/new_booking.html", choices=choices, errors=errors, form=form,
                           fields=office.form_fields), status


# -- search ---------------------------------------------------------------------------------------

@bp.route("/search", methods=["GET", "POST"])
def search():
    rt = _rt()
    office = _office()
    found = None
    invalid = False
    if request.method == "GET" and "reference" in request.args:
        # A caller quotes the only number the chat gave them: open that booking of this office.
        reference = decisions.typed_reference(request.args["reference"])
        if reference is not None:
            with rt.db.reading() as s:
                try:
                    known = decisions.load(s, office.id, reference=reference, lock=False).reference
                except decisions.Refused:
                    known = None
            if known is not None:
                return redirect(url_for("staff.booking", reference=known))
        return render_template("staff/search.html", found=None, invalid=False,
                               reference_missing=request.args["reference"][:20]), 404
    if request.method == "POST":
        seeker_hash = personal.seeker_hash(rt, request.form.get("seeker_number", ""))
        invalid = seeker_hash is None
        with rt.db.transaction() as s:
            found = [] if invalid else decisions.by_seeker(s, office.id, seeker_hash)
            audit.record(s, office.id, _actor(), "search", rt.clock.now(), results=len(found))
    return render_template("staff/search.html", found=found, invalid=invalid, reference_missing=None), \
        400 if invalid else 200


# -- blocks ---------------------------------------------------------------------------------------

@bp.post("/blocks")
def add_block():
    rt = _rt()
    office = _office()
    day = _date_arg("day", None)
    start = _slot_arg(request.form.get("slot")) if request.form.get("slot") else None
    if day is None or (start is not None and start.date() != day):
        abort(400)
    with rt.db.transaction() as s:
        decisions.block(s, office, _actor(), rt.clock.now(), day, start,
                        personal.seal_note(rt, request.form.get("reason"), decisions.BLOCK_REASON_LIMIT))
    flash(f"{'block_slot' if start else 'block_day'}:done:", "ok")
    return redirect(url_for("staff.home", **({"from": request.form["back"]} if request.form.get("back") else {})))


@bp.post("/blocks/<int:block_id>/delete")
def delete_block(block_id: int):
    rt = _rt()
    office = _office()
    with rt.db.transaction() as s:
        try:
            decisions.unblock(s, office, _actor(), rt.clock.now(), block_id)
        except decisions.Refused:
            abort(404)
    flash("unblock:done:", "ok")
    return redirect(url_for("staff.home", **({"from": request.form["back"]} if request.form.get("back") else {})))


# -- what LINE did not take ----------------------------------------------------------------------

@bp.get("/outbox")
def outbox_rows():
    rt = _rt()
    office = _office()
    with rt.db.reading() as s:
        now = rt.clock.now()
        rows, bookings = undelivered.of_office(s, office.id, now)
        dropped = {r.id: outbox.stale_reason(r) for r in rows if r.status == "stale"}
        errors = {r.id: outbox.error_detail(r) for r in rows}
        return render_template("staff/outbox.html", rows=rows, bookings=bookings, dropped=dropped, errors=errors,
                               states={r.id: undelivered.state(r, now) for r in rows},
                               token_setting=f"LINE_CHANNEL_ACCESS_TOKEN_{office.id.upper()}")


def _staff_group_left(s, rt, office) -> datetime | None:
    """When the bot was removed from the configured staff group (LINE's leave event), if it has not been invited
    back since: no card reaches the group then, and staff are told so where they look for handoffs."""
    configured = rt.config.staff_group_id(office.id)
    if not configured:
        return None
    return staff_groups.left_at(s, office.id, configured)


@bp.get("/groups")
def groups():
    rt = _rt()
    office = _office()
    with rt.db.reading() as s:
        sightings = staff_groups.sightings(s, office.id)
        return render_template("staff/groups.html", sightings=sightings, group_left=_staff_group_left(s, rt, office),
                               configured=rt.config.staff_group_id(office.id),
                               setting=f"LINE_STAFF_GROUP_ID_{office.id.upper()}")


# -- export ---------------------------------------------------------------------------------------

@bp.route("/export", methods=["GET", "POST"])
def export_csv():
    rt = _rt()
    office = _office()
    now = rt.clock.now()
    if request.method == "GET":
        return render_template("staff/export.html", first=now.date(), last=now.date() + timedelta(days=30),
                               error=None)
    first, last = _date_arg("from", None), _date_arg("to", None)
    encoding = request.form.get("encoding", "utf8")
    contents = request.form.get("contents", export.CONTENTS[0])
    if first is None or last is None or last < first or (last - first).days > export.MAX_DAYS \
            or encoding not in export.ENCODINGS or contents not in export.CONTENTS:
        return render_template("staff/export.html", first=first or now.date(), last=last or now.date(),
                               error="range"), 400
    with rt.db.transaction() as s:
        table = export.rows(s, rt, office, first, last, contents)
        audit.record(s, office.id, _actor(), "export", now, first=first.isoformat(), last=last.isoformat(),
                     encoding=encoding, rows=len(table), contents=contents)
    body = export.render(table, encoding, contents)
    kind = "-details" if contents == "details" else ""  # a file with personal data says so in its name
    filename = f"madoguchi-{office.id}-{first:%Y%m%d}-{last:%Y%m%d}{kind}.csv"
    charset = "shift_jis" if encoding == "cp932" else "utf-8"
    return Response(body, headers={"Content-Type": f"text/csv; charset={charset}",
                                   "Content-Disposition": f'attachment; filename="{filename}"'})


# -- the audit log --------------------------------------------------------------------------------

# Actors that are no account: their labels are the page's (templates/staff/audit.html).
AUDIT_OTHER_ACTORS = audit.NOT_ACCOUNTS
AUDIT_FILTERS = ("reference", "actor", "action", "from", "to")   # kept in the links to other pages
AUDIT_MAX_ID = 2**31 - 1        # the id column's range (an integer) on PostgreSQL


def _audit_filters(accounts: list[str]) -> tuple[audit.Filters, dict[str, int | None], list[str]]:
    """The audit page's GET parameters as filters and the page's position, with what is wrong with them (the
    names of the page's messages): a 受付番号 as staff type it, an account or action of the lists, dates."""
    args = request.args
    errors: list[str] = []
    typed = (args.get("reference") or "").strip()
    reference = decisions.typed_reference(typed) if typed else None
    if typed and reference is None:
        errors.append("reference")
    actor = args.get("actor") or None
    if actor is not None and actor not in accounts and actor not in AUDIT_OTHER_ACTORS:
        errors.append("actor")
    action = args.get("action") or None
    if action is not None and action not in export.labels()["actions"]:
        errors.append("action")
    days: dict[str, date | None] = {}
    for name in ("from", "to"):
        try:
            days[name] = date.fromisoformat(args[name]) if args.get(name) else None
        except ValueError:
            days[name] = None
        if args.get(name) and not _in_years(days[name]):
            days[name] = None   # a year 1 or 9999 would overflow at the time zone's edge
            errors.append(name)
    if days["from"] and days["to"] and days["from"] > days["to"]:
        errors.append("period")
    position: dict[str, int | None] = {}
    for name in ("before", "after"):
        value = args.get(name) or None
        fits = value is not None and re.fullmatch(r"[0-9]{1,10}", value) and int(value) <= AUDIT_MAX_ID
        position[name] = int(value) if fits else None
        if value is not None and position[name] is None:
            errors.append("position")
    if position["before"] is not None and position["after"] is not None:
        errors.append("position")
    return audit.Filters(reference, actor, action, days["from"], days["to"]), position, sorted(set(errors))


@bp.get("/audit")
def audit_log():
    """The office's audit log (with the whole deployment's entries), newest first, a page at a time, narrowed
    by GET parameters (a link to a search can be kept): nothing is recorded or changed here."""
    rt = _rt()
    with rt.db.reading() as s:
        accounts = sorted(u.username for u in auth.accounts(s, g.who.office_id))
        filters, position, errors = _audit_filters(accounts)
        found = None
        if not errors:
            try:
                found = audit.page(s, g.who.office_id, filters, **position)
            except audit.UnknownPosition:
                errors = ["position"]
        entries = found.entries if found else []
        return render_template("staff/audit.html", found=found, errors=errors, accounts=accounts,
                               other_actors=AUDIT_OTHER_ACTORS, args=request.args,
                               kept={k: request.args[k] for k in AUDIT_FILTERS if request.args.get(k)},
                               page_size=audit.PAGE_SIZE,
                               subjects={e.id: audit.subject(e) for e in entries}), 400 if errors else 200


# -- my account -----------------------------------------------------------------------------------

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


# -- accounts (admins) ----------------------------------------------------------------------------

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
