"""CSV export of an office's bookings over a date range: fixed columns, UTF-8 with BOM or CP932.

Two contents, chosen on the export page: `schedule` (the default), the bookings without any personal value
(reference, slot, status, source, dates), enough for planning and statistics; and `details`, with the
decrypted details and the 職員メモ, for when staff need them. Personal data leaves the database only when asked
for (要配慮個人情報 among it: the category, the consultation).
"""
from __future__ import annotations

import csv
import io
import re
import unicodedata
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from typing import Any

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.clock import TOKYO
from bot.models import Booking
from bot.services import terms
from bot.staff import personal
from bot.render import TEMPLATES_DIR

# Fixed columns, in order; their headers are in templates/staff/labels.yaml (columns).
COLUMNS = (
    "reference", "office", "slot", "status", "source", "requested_at", "decided_at", "invitation_sent_at",
    "terms_version",
    "name", "name_kana", "seeker_number", "birth_date", "phone", "category", "consultation", "companion",
    "companion_detail", "mypage_email_confirmed", "staff_note",
)
DETAIL_COLUMNS = frozenset(COLUMNS[COLUMNS.index("name"):COLUMNS.index("staff_note")])
PERSONAL_COLUMNS = DETAIL_COLUMNS | {"staff_note"}
CONTENTS = ("schedule", "details")  # the first is the default
ENCODINGS = {"utf8": "utf-8-sig", "cp932": "cp932"}
MAX_DAYS = 366


@lru_cache(maxsize=1)
def labels() -> dict[str, Any]:
    return yaml.safe_load((TEMPLATES_DIR / "staff" / "labels.yaml").read_text(encoding="utf-8"))


def _when(value: datetime | None) -> str:
    return value.astimezone(TOKYO).strftime("%Y-%m-%d %H:%M") if value else ""


def _cell(key: str, value: Any, office) -> str:
    names = labels()
    if value is None:
        return ""
    if isinstance(value, bool):
        return names["yes_no"]["yes" if value else "no"]
    if key == "category":
        return office.category_labels().get(value, value)
    if key == "companion":
        return names["companions"].get(value, value)
    return str(value)


def columns(contents: str) -> tuple[str, ...]:
    """The columns of an export: all of them with `details`, none holding a personal value otherwise."""
    return COLUMNS if contents == "details" else tuple(c for c in COLUMNS if c not in PERSONAL_COLUMNS)


def rows(session: Session, rt, office, first: date, last: date, contents: str = CONTENTS[0]) -> list[list[str]]:
    lo = datetime.combine(first, time(), tzinfo=TOKYO)
    hi = datetime.combine(last + timedelta(days=1), time(), tzinfo=TOKYO)
    names = labels()
    found = session.scalars(select(Booking).where(
        Booking.office_id == office.id, Booking.slot_start >= lo, Booking.slot_start < hi,
    ).order_by(Booking.slot_start, Booking.id)).all()
    wanted, with_details = columns(contents), contents == "details"
    versions = terms.versions_consented_behind(session, [(b.conversation_id, b.created_at) for b in found])
    out = []
    for booking in found:
        details = (personal.decrypt(rt, booking.details) or {}) if with_details else {}
        base = {
            "reference": booking.reference, "office": office.name, "slot": _when(booking.slot_start),
            "status": names["statuses"].get(booking.status, booking.status),
            "source": names["sources"].get(booking.source, booking.source),
            "requested_at": _when(booking.created_at), "decided_at": _when(booking.decided_at),
            "invitation_sent_at": _when(booking.invitation_sent_at),
            "terms_version": versions.get((booking.conversation_id, booking.created_at), ""),
        }
        if with_details:
            base["staff_note"] = personal.open_note(rt, booking.staff_note) or ""
        out.append([base[c] if c in base else _cell(c, details.get(c), office) for c in wanted])
    return out


FORMULA_STARTS = frozenset("=+-@\t\r")   # what a spreadsheet may take for the start of a formula
FORMULA_SIGNS = frozenset("=+-@\u2212")     # the same signs behind spaces (and the minus sign U+2212)


def _inert(cell: str) -> str:
    """A cell a spreadsheet will not run: text a person typed that starts like a formula gets a leading `'`.

    Full-width signs (＝＋－＠, as a Japanese input method types them) count as their half-width forms: a
    Japanese spreadsheet reads ＝SUM(…) as a formula too. So do the signs behind leading spaces (half- or
    full-width) or line breaks, which some spreadsheets skip."""
    if cell[:1] in FORMULA_STARTS:
        return "'" + cell
    first = unicodedata.normalize("NFKC", cell.lstrip()[:1])
    return "'" + cell if first[:1] in FORMULA_SIGNS else cell


_LEADING_ZERO = re.compile(r"0[0-9]+")


def _kept_as_text(cell: str) -> str:
    """Digits with a leading zero (a phone number typed without hyphens, 09012345678) as Excel keeps them: it
    reads a bare one as a number and shows 9012345678. `="…"` is the one form Excel shows as the text itself;
    only digits are ever put in it."""
    return f'="{cell}"' if _LEADING_ZERO.fullmatch(cell) else cell


def render(table: list[list[str]], encoding: str, contents: str = CONTENTS[0]) -> bytes:
    """The CSV bytes; characters CP932 cannot hold become '?' (UTF-8 keeps everything)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    headers = labels()["columns"]
    writer.writerow([headers[c] for c in columns(contents)])
    writer.writerows([[_kept_as_text(_inert(cell)) for cell in row] for row in table])
    return buffer.getvalue().encode(ENCODINGS[encoding], errors="replace")
