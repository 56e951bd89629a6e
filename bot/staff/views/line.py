"""What LINE did: the messages it did not take, and the groups the bot was seen in (the staff group's among them)."""
from __future__ import annotations

from datetime import datetime

from flask import render_template

from bot import outbox
from bot.staff import groups as staff_groups
from bot.staff import undelivered
from bot.staff.views import bp
from bot.staff.views.context import _office, _rt

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


def _staff_group_refused(s, rt, office) -> datetime | None:
    """Since when LINE refuses the cards pushed to the configured staff group, though no leave event came (see
    `staff_groups.refused_since`): staff are told so where they look for handoffs."""
    configured = rt.config.staff_group_id(office.id)
    if not configured:
        return None
    return staff_groups.refused_since(s, office.id, configured)


@bp.get("/groups")
def groups():
    rt = _rt()
    office = _office()
    with rt.db.reading() as s:
        sightings = staff_groups.sightings(s, office.id)
        return render_template("staff/groups.html", sightings=sightings, group_left=_staff_group_left(s, rt, office),
                               group_refused=_staff_group_refused(s, rt, office),
                               configured=rt.config.staff_group_id(office.id),
                               setting=f"LINE_STAFF_GROUP_ID_{office.id.upper()}")
