"""One office's staff reach nothing of another's, on every dashboard route (SECURITY.md, "The dashboard":
"office-scoped queries (an account of one office gets 404 for another office's booking, action or account)").

`tests/test_attacks_web.py` tries a few routes by hand; here the routes are taken from the app's url_map, so a
route added later is tried too: an Otaru admin, signed in, sends every POST route under `/staff` (every booking
action, the reveal, each account operation, lifting a block) naming Sakata's booking, block or account, and opens
every GET route with them. Each answer is a 404 (or the answer to an id that exists nowhere), no page shows Sakata's
reference, account or personal values, and no Sakata row changed (every table the tests compare, read whole).
"""
from __future__ import annotations

import pytest
from sqlalchemy import select, text

from bot.staff import decisions, personal
from bot.models import SlotBlock
from bot.staff.models import StaffUser
from bot.staff.views.actions import BOOKING_ACTIONS
from bot.staff.views.users import USER_OPS
from tests.staffkit import fast_password_hashing  # noqa: F401 - autouse fixture
from tests.staffkit import DETAILS, OTARU_WEDNESDAY, SAKATA_MONDAY, create_staff, login, make_request, post

# Sakata's rows that an Otaru account must not change (the attacker's own session, login and audit entries
# are Otaru's and may change).
WATCHED = ("bookings", "conversations", "slot_blocks", "slot_claims", "staff_users", "staff_reveals", "outbox",
           "booking_handoffs", "staff_notices", "staff_login_failures")
# Values of Sakata that no page an Otaru account opens may show.
SECRET_WORDS = ("sakata-admin", DETAILS["sakata"]["name"], DETAILS["sakata"]["phone"])


# Ids and a reference that exist in no office: another office's must be answered the same.
NOWHERE = {"reference": "ZZZZ-ZZZZ", "block_id": 999999, "user_id": 999999}


def _snapshot(rt) -> dict[str, list]:
    with rt.db.reading() as s:
        rows = {table: sorted(map(tuple, s.execute(text(f"SELECT * FROM {table}"))), key=repr)
                for table in WATCHED}
        rows["staff_audit"] = sorted(map(tuple, s.execute(text(
            "SELECT * FROM staff_audit WHERE office_id IS NULL OR office_id <> 'otaru'"))), key=repr)
    return rows


@pytest.fixture
def sakata(rt):
    """Sakata's booking (with a note), a block and an account; their reference and ids."""
    reference = make_request(rt, "sakata", SAKATA_MONDAY, user_id="U" + "a" * 32)
    make_request(rt, "otaru", OTARU_WEDNESDAY, user_id="U" + "b" * 32)
    admin_id = create_staff(rt, office="sakata", username="sakata-admin", role="admin")
    with rt.db.transaction() as s:
        row = decisions.load(s, "sakata", reference=reference)
        row.staff_note = personal.seal_note(rt, "電話 090-1111-2222", decisions.NOTE_LIMIT)
        s.add(SlotBlock(office_id="sakata", day=SAKATA_MONDAY.date().isoformat(), slot_start=None,
                        reason=None, created_at=rt.clock.now()))
        s.flush()
        block_id = s.scalar(select(SlotBlock.id).where(SlotBlock.office_id == "sakata"))
    return {"reference": reference, "block_id": block_id, "user_id": admin_id}


def _staff_rules(app, method: str):
    return sorted((r for r in app.url_map.iter_rules() if r.rule.startswith("/staff") and method in r.methods),
                  key=lambda r: r.rule)


def _paths(rule, sakata: dict) -> list[str]:
    """The rule's path for each way of naming Sakata's things."""
    values = {"reference": [sakata["reference"]], "block_id": [sakata["block_id"]],
              "user_id": [sakata["user_id"]], "action": list(BOOKING_ACTIONS) + ["reveal", "conceal"],
              "op": list(USER_OPS)}
    paths = [""]
    for part in rule.rule.split("/")[1:]:
        name = part.strip("<>").split(":")[-1] if part.startswith("<") else None
        options = [str(v) for v in values[name]] if name else [part]
        paths = [f"{p}/{o}" for p in paths for o in options]
    return paths


def test_an_otaru_admin_reaches_nothing_of_sakata_on_any_staff_route(rt, app, sakata):
    create_staff(rt, office="otaru", username="otaru-admin", role="admin")
    client = app.test_client()
    assert login(client, username="otaru-admin").status_code == 302
    before = _snapshot(rt)
    day = SAKATA_MONDAY.date().isoformat()
    form = {"note": "x", "note_seen": "", "reason": "other", "to": "no_show", "slot": SAKATA_MONDAY.isoformat(),
            "day": day, "password": "another horse battery", "block_user": "1", "same_number_checked": "1"}
    tried = 0
    for rule in _staff_rules(app, "POST"):
        if not rule.arguments:
            continue   # acts on the signed-in office's own things only (their forms name none of another's)
        for path, nowhere in zip(_paths(rule, sakata), _paths(rule, NOWHERE)):
            answer, unknown = post(client, path, **form), post(client, nowhere, **form)
            tried += 1
            # A 404, or (lifting a block: a flash on the day's page) the answer to an id that exists nowhere.
            assert answer.status_code == 404 or (answer.status_code, answer.location) == (
                unknown.status_code, unknown.location), (path, answer.status_code)
    for rule in _staff_rules(app, "GET"):
        for path in _paths(rule, sakata):
            for query in ("", f"?reference={sakata['reference']}", f"?day={day}&from={day}"):
                answer = client.get(path + query)
                page = answer.get_data(as_text=True)
                if rule.arguments:
                    assert answer.status_code == 404, (path, answer.status_code)
                shown = page.replace(query[len("?reference="):], "") if "reference" in query else page  # as typed
                assert sakata["reference"] not in shown and not any(w in page for w in SECRET_WORDS), path + query
    assert tried > len(BOOKING_ACTIONS) + len(USER_OPS), "the url_map offered fewer routes than there are"
    assert _snapshot(rt) == before
    with rt.db.reading() as s:
        assert s.scalar(select(StaffUser.active).where(StaffUser.username == "sakata-admin"))
