"""Claims of SECURITY.md that no other test held to: each test names the sentence it checks.

- "Personal values are encrypted with keys that are not stored in the database ... Rotate keys by putting the new
  key first in DATA_ENCRYPTION_KEY and running `flask --app app keys rotate`; once it reports nothing unreadable,
  remove the old key": every encrypted column of the schema is one `keys rotate` re-encrypts, the stored channel
  credentials included (a column it missed would be unreadable, or the service down, once the old key went).
- What staff write about a booking goes with its details (`データ削除`, the retention purge): the memo of an
  attendance correction too, which is free text like the cancellation memo.
"""
from __future__ import annotations

from datetime import timedelta

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import LargeBinary, select

from bot import channels
from bot.cli import keys
from bot.schema import Base
from bot.staff import jobs as staff_jobs
from bot.staff import personal
from bot.staff.models import AuditEntry
from tests.staffkit import fast_password_hashing, staff, user  # noqa: F401 - fixtures
from tests.staffkit import SAKATA_MONDAY, booking, login, make_request, post, postback_value

# Binary columns that hold no personal value and are not encrypted: the simulator's rich menu image (development
# only). Any other binary column is a Fernet token under DATA_ENCRYPTION_KEY.
NOT_ENCRYPTED = {("sim_rich_menus", "image")}
# Encrypted columns stored as text (a Fernet token is ASCII).
ENCRYPTED_TEXT = {("staff_users", "totp_secret")}

MEMO = "本人より電話 090-7777-6666 通院のため遅れて参加"


def test_keys_rotate_covers_every_encrypted_column_of_the_schema():
    binary = {(table.name, column.name) for table in Base.metadata.sorted_tables for column in table.columns
              if isinstance(column.type, LargeBinary)}
    rotated = {(target.model.__table__.name, target.column) for target in keys.targets()}
    assert binary - NOT_ENCRYPTED <= rotated, "an encrypted column `keys rotate` does not re-encrypt"
    assert ENCRYPTED_TEXT <= rotated
    assert binary & NOT_ENCRYPTED and not (rotated & NOT_ENCRYPTED)


def test_keys_rotate_moves_the_stored_channel_credentials_to_the_new_key(make_app, rt):
    """The channels store is read at start-up: a credential left under the old key would stop the office (or, in
    production, the app) once the old key is removed as SECURITY.md says."""
    old = list(rt.config.data_encryption_keys)
    with rt.db.transaction() as s:
        channels.put(s, old, "sakata", {"secret": "stored-secret-0123456789", "token": "stored-token-abcdef"},
                     rt.clock.now())
    new = Fernet.generate_key().decode()
    both = make_app(data_encryption_keys=(new, *old))
    result = both.test_cli_runner().invoke(args=["keys", "rotate"])
    assert result.exit_code == 0, result.output
    assert "channel credentials: rotated=1 already_current=0 unreadable=0" in result.output
    assert "stored-secret" not in result.output and "stored-token" not in result.output
    with rt.db.reading() as s:
        assert channels.stored(s, [new])["sakata"] == {"secret": "stored-secret-0123456789",
                                                        "token": "stored-token-abcdef"}
        assert channels.stored(s, old) == {}


def _corrected(rt, staff, user_id: str | None, start) -> str:
    """A confirmed Sakata session recorded 出席, then corrected to 欠席 with a typed memo."""
    reference = make_request(rt, start=start, user_id=user_id)
    assert post(staff, f"/staff/bookings/{reference}/confirm").status_code == 302
    rt.clock.freeze(start + timedelta(minutes=11))
    login(staff)
    post(staff, f"/staff/bookings/{reference}/attended")
    rt.clock.advance(minutes=5)
    post(staff, f"/staff/bookings/{reference}/correct_attendance", to="no_show", reason="other", note=MEMO)
    assert booking(rt, reference).status == "no_show"
    assert personal.open_note(rt, _correction(rt, reference).note) == MEMO
    return reference


def _correction(rt, reference: str) -> AuditEntry:
    with rt.db.reading() as s:
        return s.scalars(select(AuditEntry).where(AuditEntry.reference == reference,
                                                  AuditEntry.action == "correct_attendance")).one()


@pytest.mark.parametrize("how", ["data deletion", "retention purge"])
def test_an_attendance_correction_memo_goes_with_the_details(rt, staff, user, how):
    reference = _corrected(rt, staff, user.user_id if how == "data deletion" else None, SAKATA_MONDAY)
    if how == "data deletion":
        user.says("データ削除")
        user.taps(postback_value(user.messages(), "削除する"))
    else:
        keep = rt.offices["sakata"].retention_rules()["personal_details_days_after_session"]
        rt.clock.freeze(SAKATA_MONDAY + timedelta(days=keep, minutes=5))
        assert staff_jobs.run_due(rt)["details_purged"] == 1
    assert booking(rt, reference).details is None
    entry = _correction(rt, reference)                      # the entry stays, without its memo
    assert entry.note is None and entry.detail == {"before": "attended", "after": "no_show", "reason": "other"}
