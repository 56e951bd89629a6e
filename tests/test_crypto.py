"""Personal details at rest (bot.crypto) and `flask --app app keys rotate`."""
from __future__ import annotations

import threading
from datetime import datetime

import pytest
from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import delete, select, update

from bot.clock import TOKYO
from bot.crypto import Vault, for_config
from bot.models import Booking

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=TOKYO)
DETAILS = {"name": "山田 太郎", "seeker_number": "01234-56789", "phone": "090-1234-5678"}


def key() -> str:
    return Fernet.generate_key().decode()


def test_details_round_trip_and_leave_no_plaintext():
    vault = Vault([key()], "secret")
    token = vault.encrypt(DETAILS)
    assert vault.decrypt(token) == DETAILS
    for value in DETAILS.values():
        assert value.encode("utf-8") not in token
    assert vault.encrypt(DETAILS) != token  # a fresh IV every time


def test_the_newest_key_encrypts_and_every_key_decrypts():
    old, new = key(), key()
    under_old = Vault([old], "secret").encrypt(DETAILS)
    both = Vault([new, old], "secret")
    assert both.decrypt(under_old) == DETAILS
    assert not both.is_current(under_old)
    fresh = both.encrypt(DETAILS)
    assert both.is_current(fresh)
    assert Vault([new], "secret").decrypt(fresh) == DETAILS
    with pytest.raises(InvalidToken):
        Vault([old], "secret").decrypt(fresh)


def test_rotate_moves_a_token_to_the_newest_key():
    old, new = key(), key()
    token = Vault([old], "secret").encrypt(DETAILS)
    rotated = Vault([new, old], "secret").rotate(token)
    assert Vault([new], "secret").decrypt(rotated) == DETAILS
    with pytest.raises(InvalidToken):
        Vault([key()], "secret").rotate(token)


def test_free_text_round_trips_under_the_same_keys_and_rotates():
    note = "本人より電話 090-9999-8888 うつ病で通院中"
    old, new = key(), key()
    token = Vault([old], "secret").encrypt_text(note)
    assert note.encode("utf-8") not in token and b"090-9999-8888" not in token
    both = Vault([new, old], "secret")
    assert both.decrypt_text(token) == note and not both.is_current(token)
    rotated = both.rotate(token)
    assert Vault([new], "secret").decrypt_text(rotated) == note
    with pytest.raises(InvalidToken):
        Vault([key()], "secret").decrypt_text(token)


def test_the_seeker_hash_is_keyed_by_the_secret():
    a = Vault([key()], "secret-a")
    assert a.seeker_hash("01234-56789") == Vault([key()], "secret-a").seeker_hash("01234-56789")
    assert a.seeker_hash("01234-56789") != Vault([key()], "secret-b").seeker_hash("01234-56789")
    assert a.seeker_hash("01234-56789") != a.seeker_hash("01234-56788")
    assert len(a.seeker_hash("01234-56789")) == 64
    assert "01234" not in a.seeker_hash("01234-56789")


def test_a_vault_needs_keys_and_a_secret():
    with pytest.raises(ValueError):
        Vault([], "secret")
    with pytest.raises(ValueError):
        Vault([key()], "")


# -- keys rotate ----------------------------------------------------------------------------------------

def _add_booking(rt, reference: str, details: bytes) -> int:
    with rt.db.transaction() as s:
        row = Booking(reference=reference, office_id="sakata", slot_start=datetime(2026, 12, 7, 14, tzinfo=TOKYO),
                      status="requested", details=details, created_at=NOW, updated_at=NOW)
        s.add(row)
        s.flush()
        return row.id


def _details(rt) -> dict[str, bytes]:
    with rt.db.reading() as s:
        return {b.reference: bytes(b.details) for b in s.scalars(select(Booking)) if b.details is not None}


def test_keys_rotate_reencrypts_every_detail_under_the_newest_key(make_app):
    old, new = key(), key()
    before = make_app(data_encryption_keys=(old,))
    rt = before.extensions["madoguchi"]
    for i in range(5):
        _add_booking(rt, f"AAAA-AAA{'23456'[i]}", for_config(rt.config).encrypt({**DETAILS, "i": i}))

    after = make_app(data_encryption_keys=(new, old))
    result = after.test_cli_runner().invoke(args=["keys", "rotate", "--batch", "2"])
    assert result.exit_code == 0, result.output
    assert "request details: rotated=5 already_current=0 unreadable=0" in result.output
    only_new = Vault([new], rt.config.secret_key)
    assert sorted(only_new.decrypt(t)["i"] for t in _details(rt).values()) == [0, 1, 2, 3, 4]

    again = after.test_cli_runner().invoke(args=["keys", "rotate"])
    assert again.exit_code == 0 and "rotated=0 already_current=5" in again.output
    for value in DETAILS.values():
        assert value not in result.output + again.output


def test_keys_rotate_fails_when_a_key_is_missing(make_app):
    lost, current = key(), key()
    app = make_app(data_encryption_keys=(current,))
    rt = app.extensions["madoguchi"]
    bad = _add_booking(rt, "BBBB-BBBB", Vault([lost], rt.config.secret_key).encrypt(DETAILS))
    _add_booking(rt, "CCCC-CCCC", Vault([current], rt.config.secret_key).encrypt(DETAILS))
    result = app.test_cli_runner().invoke(args=["keys", "rotate"])
    assert result.exit_code == 1
    assert f"no configured key opens rows {bad}" in result.output
    assert "unreadable=1" in result.output


def test_an_erasure_during_keys_rotate_is_not_undone(make_app, monkeypatch):
    """`keys rotate` runs on a live system: details erased (データ削除, the retention purge) while a batch is being
    re-encrypted stay erased; the batch never writes back the token it read before the erasure."""
    old, new = key(), key()
    before = make_app(data_encryption_keys=(old,))
    rt = before.extensions["madoguchi"]
    booking_id = _add_booking(rt, "DDDD-DDDD", for_config(rt.config).encrypt(DETAILS))
    after = make_app(data_encryption_keys=(new, old))
    live = after.extensions["madoguchi"]

    def erase() -> None:
        with live.db.transaction() as s:
            s.execute(update(Booking).where(Booking.id == booking_id).values(
                details=None, seeker_hash=None, details_purged_at=NOW))

    eraser = threading.Thread(target=erase)
    original = Vault.rotate

    def rotate_while_erasing(self, token):
        if not eraser.is_alive() and eraser.ident is None:
            eraser.start()
            eraser.join(timeout=1)  # done at once unless the batch's rows are locked against it
        return original(self, token)

    monkeypatch.setattr(Vault, "rotate", rotate_while_erasing)
    result = after.test_cli_runner().invoke(args=["keys", "rotate"])
    eraser.join(timeout=30)
    assert result.exit_code == 0, result.output
    assert not eraser.is_alive()
    with rt.db.reading() as s:
        assert s.get(Booking, booking_id).details is None


def test_keys_rotate_computes_the_search_hashes_again_after_secret_key_changed(make_app):
    """The job seeker number is searched by a hash keyed with SECRET_KEY: after SECRET_KEY changed, a search
    (and the check that one job seeker holds one open booking) finds the booking again once `keys rotate` ran."""
    from bot.staff import personal

    keys = (key(),)
    before = make_app(data_encryption_keys=keys, secret_key="s" * 64)
    rt = before.extensions["madoguchi"]
    booking_id = _add_booking(rt, "EEEE-EEEE", for_config(rt.config).encrypt(DETAILS))
    _add_booking(rt, "FFFF-FFFF", for_config(rt.config).encrypt({"name": "電話の方"}))   # no number: no hash
    with rt.db.transaction() as s:
        s.get(Booking, booking_id).seeker_hash = personal.seeker_hash(rt, DETAILS["seeker_number"])
    after = make_app(data_encryption_keys=keys, secret_key="t" * 64)
    live = after.extensions["madoguchi"]

    def found() -> list[int]:
        digest = personal.seeker_hash(live, "０１２３４ー５６７８９")      # as staff type it
        with live.db.reading() as s:
            return list(s.scalars(select(Booking.id).where(Booking.seeker_hash == digest)))

    assert found() == []
    result = after.test_cli_runner().invoke(args=["keys", "rotate", "--batch", "1"])
    assert result.exit_code == 0, result.output
    assert "search hashes: rehashed=1 already_current=1 unreadable=0" in result.output
    assert found() == [booking_id]
    again = after.test_cli_runner().invoke(args=["keys", "rotate"])
    assert "search hashes: rehashed=0 already_current=2" in again.output
    assert DETAILS["seeker_number"] not in result.output + again.output


def test_keys_rotate_names_each_kind_of_audit_memo(make_app):
    """The audit log's memo column holds the memos of cancellations and of attendance corrections: each kind is
    counted under its own name (a correction's reason was counted as a cancellation memo), and every memo is
    re-encrypted whatever its kind."""
    from bot.staff import audit
    from bot.staff.audit import Actor
    from bot.staff.models import AuditEntry

    old, new = key(), key()
    before = make_app(data_encryption_keys=(old,))
    rt = before.extensions["madoguchi"]
    booking_id = _add_booking(rt, "GGGG-GGGG", for_config(rt.config).encrypt(DETAILS))
    sealed = Vault([old], rt.config.secret_key).encrypt_text
    with rt.db.transaction() as s:
        booking = s.get(Booking, booking_id)
        for action, memo in (("cancel_for_user", "本人より電話"), ("cancel_by_office", "担当者の都合"),
                             ("correct_attendance", "通院のため遅れて参加"), ("some_later_action", "別の記録")):
            audit.record(s, "sakata", Actor.system(), action, NOW, booking, sealed_note=sealed(memo))
    after = make_app(data_encryption_keys=(new, old))
    result = after.test_cli_runner().invoke(args=["keys", "rotate", "--batch", "1"])
    assert result.exit_code == 0, result.output
    assert "cancellation memos: rotated=2 already_current=0 unreadable=0" in result.output
    assert "attendance correction memos: rotated=1 already_current=0 unreadable=0" in result.output
    assert "other audit memos: rotated=1 already_current=0 unreadable=0" in result.output
    only_new = Vault([new], rt.config.secret_key)
    with rt.db.reading() as s:
        memos = sorted(only_new.decrypt_text(e.note) for e in s.scalars(select(AuditEntry)))
    assert memos == sorted(["本人より電話", "担当者の都合", "通院のため遅れて参加", "別の記録"])
    again = after.test_cli_runner().invoke(args=["keys", "rotate"])
    assert "attendance correction memos: rotated=0 already_current=1" in again.output
    assert "other audit memos: rotated=0 already_current=1" in again.output
    with rt.db.transaction() as s:
        s.execute(delete(AuditEntry).where(AuditEntry.action == "some_later_action"))
    quiet = after.test_cli_runner().invoke(args=["keys", "rotate"])
    assert quiet.exit_code == 0 and "other audit memos" not in quiet.output   # no such memo: no line
