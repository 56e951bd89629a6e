"""The audit log's page: the office's entries, narrowed by what staff ask, a page at a time."""
from __future__ import annotations

import re
from datetime import date

from flask import g, render_template, request

from bot.staff import audit, auth, decisions, export
from bot.staff.views import bp
from bot.staff.views.args import _in_years
from bot.staff.views.context import _rt

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
