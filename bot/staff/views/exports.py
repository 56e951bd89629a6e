"""The CSV export of a period's bookings, recorded in the audit log."""
from __future__ import annotations

from datetime import timedelta

from flask import Response, render_template, request

from bot.staff import audit, export
from bot.staff.views import bp
from bot.staff.views.args import _date_arg
from bot.staff.views.context import _actor, _office, _rt

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
