"""The day's pages: the timeline of the coming days and the queue of what is left to do."""
from __future__ import annotations

from datetime import timedelta

from flask import render_template, request

from bot import notify
from bot.services import slots as slotsvc
from bot.staff import handoff, personal, timeline
from bot.staff import queue as queue_lists
from bot.staff.views import bp
from bot.staff.views.args import _date_arg
from bot.staff.views.context import _office, _rt
from bot.staff.views.line import _staff_group_left, _staff_group_refused

TIMELINE_DAYS = 14


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
        count, soonest = queue_lists.undecided_soonest(s, office.id)
        deadline = slotsvc.booking_deadline(office, soonest) if soonest is not None else None
        pending = {"count": count, "deadline": deadline, "passed": deadline is not None and deadline <= now}
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
        return render_template("staff/queue.html", undecided=todo.undecided, proposals=todo.proposals,
                               calls=todo.calls,
                               attendance_total=todo.attendance_total, attendance_from=todo.attendance_from,
                               attendance_shown=queue_lists.ATTENDANCE_SHOWN,
                               invitations=todo.invitations, call_task=handoff.call_user_on_confirm(office),
                               attendance=todo.attendance, notices=todo.notices, now=now,
                               group_left=_staff_group_left(s, rt, office),
                               group_refused=_staff_group_refused(s, rt, office),
                               deadlines={b.id: notify.deadline_view(office, b, now) for b in (*todo.undecided, *todo.proposals)})
