"""A recorded attendance (出席 / 欠席) corrected on the dashboard's booking page: both ways, with a reason, in the
audit log with both values, under the rules of recording it, while the details are kept, once when two members
correct at the same moment, and without a word to the user (they were not told of the record either)."""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import yaml
from sqlalchemy import select

from bot.staff import decisions, personal
from bot.staff.audit import Actor
from bot.staff import jobs as staff_jobs
from bot.staff.handoff import TEMPLATES_DIR
from bot.staff.models import AuditEntry
from tests.staffkit import fast_password_hashing, staff, user  # noqa: F401 - fixtures
from tests.staffkit import SAKATA_MONDAY, booking, create_staff, login, make_request, outbox_rows, post, reveal

REASON = "本人より電話 090-9999-8888 接続できず窓口で相談済み"


def _page(client, reference: str) -> str:
    response = client.get(f"/staff/bookings/{reference}")
    assert response.status_code == 200, response.status_code
    return response.get_data(as_text=True)


def _correct(client, reference: str, **form):
    return post(client, f"/staff/bookings/{reference}/correct_attendance", **form)


def _corrections(rt, reference: str) -> list[AuditEntry]:
    with rt.db.reading() as s:
        return list(s.scalars(select(AuditEntry).where(AuditEntry.reference == reference,
                                                       AuditEntry.action == "correct_attendance")
                              .order_by(AuditEntry.id)))


def _recorded(rt, staff, action: str, minutes: int = 11, **request) -> str:
    """A confirmed Sakata session whose attendance staff recorded `minutes` after its start."""
    reference = make_request(rt, **request)
    post(staff, f"/staff/bookings/{reference}/confirm")
    rt.clock.freeze(SAKATA_MONDAY + timedelta(minutes=minutes))
    login(staff)
    post(staff, f"/staff/bookings/{reference}/{action}")
    assert booking(rt, reference).status == action
    return reference


def test_a_wrong_attendance_is_corrected_both_ways_with_a_reason_in_the_audit_log(rt, staff, user):
    reference = _recorded(rt, staff, "attended", user_id=user.user_id)
    closed_on = booking(rt, reference).closed_at
    told = len(outbox_rows(rt, recipient=user.user_id))
    page = _page(staff, reference)
    assert "出欠の訂正（「出席」から「欠席（連絡なし）」へ）" in page and "職員メモに正しい出欠" not in page
    assert "ご本人へのお知らせはありません" in page and 'value="joined_late"' not in page   # fits 出席 only

    rt.clock.advance(minutes=5)
    answer = _correct(staff, reference, to="no_show", reason="mistap")
    assert answer.status_code == 302 and booking(rt, reference).status == "no_show"
    page = _page(staff, reference)
    assert "出欠を「欠席（連絡なし）」に訂正しました。" in page
    assert "出欠の訂正（出席 → 欠席（連絡なし）、理由: 押し間違い）" in page
    assert "出欠の訂正（「欠席（連絡なし）」から「出席」へ）" in page and 'value="joined_late"' in page
    post(staff, f"/staff/bookings/{reference}/block_user")          # stopped for the 欠席 that was not one

    rt.clock.advance(minutes=5)
    _correct(staff, reference, to="attended", reason="other", note=f"  {REASON} ")
    row = booking(rt, reference)
    assert row.status == "attended"
    assert row.closed_at == closed_on and row.updated_at == rt.clock.now()   # the retention clock is not restarted
    first, second = _corrections(rt, reference)
    assert first.detail == {"before": "attended", "after": "no_show", "reason": "mistap"} and first.note is None
    assert second.detail == {"before": "no_show", "after": "attended", "reason": "other"}
    assert b"090-9999-8888" not in second.note and personal.open_note(rt, second.note) == REASON
    assert (first.actor, second.actor, second.at) == ("tanaka", "tanaka", rt.clock.now())
    page = _page(staff, reference)
    assert "（欠席（連絡なし） → 出席、理由: その他）（メモあり: 「個人情報を表示」で読めます）" in page   # a memo is personal
    reveal(staff, reference)
    page = _page(staff, reference)
    assert f"（欠席（連絡なし） → 出席、理由: その他）（メモ: {REASON}）" in page
    assert "この方のオンライン予約は停止したままです" in page and 'data-action="unblock_user"' in page
    log = staff.get("/staff/audit").get_data(as_text=True)
    assert "出欠の訂正（欠席（連絡なし） → 出席、理由: その他）" in log and "090-9999-8888" not in log
    # The user was never told of the record, nor of its corrections: 予約確認 shows the status when they ask.
    assert len(outbox_rows(rt, recipient=user.user_id)) == told


def test_a_correction_needs_a_reason(rt, staff):
    reference = _recorded(rt, staff, "no_show")
    for form in ({}, {"reason": ""}, {"reason": "because"}, {"reason": "other"}, {"reason": "other", "note": "  "}):
        answer = _correct(staff, reference, to="attended", **form)
        assert answer.status_code == 400, form
        assert "訂正していません。" in answer.get_data(as_text=True)
    assert booking(rt, reference).status == "no_show" and not _corrections(rt, reference)
    _correct(staff, reference, to="attended", reason="other", note="x" * 300)   # typed: enough, cut to the limit
    assert booking(rt, reference).status == "attended"
    assert personal.open_note(rt, _corrections(rt, reference)[0].note) == "x" * decisions.CORRECTION_LIMIT
    # A reason that fits only the other way: 遅れて参加 never makes a 欠席.
    assert _correct(staff, reference, to="no_show", reason="joined_late").status_code == 400
    assert booking(rt, reference).status == "attended" and len(_corrections(rt, reference)) == 1


def test_a_correction_keeps_the_rules_of_recording(rt, staff):
    """Never before the start; to 欠席 only once the grace period after the start has passed."""
    reference = _recorded(rt, staff, "attended", minutes=2)
    page = _page(staff, reference)
    assert 'data-action="correct_attendance"' not in page
    assert "「欠席（連絡なし）」への訂正は、開始時刻から10分を過ぎた 14:10 からできます" in page
    _correct(staff, reference, to="no_show", reason="mistap")
    assert booking(rt, reference).status == "attended" and not _corrections(rt, reference)
    assert "「欠席（連絡なし）」への訂正は、開始時刻から10分を過ぎるまでできません。何も変更していません。" in _page(
        staff, reference)
    rt.clock.freeze(SAKATA_MONDAY + timedelta(minutes=10))
    login(staff)
    assert 'data-action="correct_attendance"' in _page(staff, reference)
    _correct(staff, reference, to="no_show", reason="mistap")
    assert booking(rt, reference).status == "no_show"
    # A record dated before its start (written outside the dashboard, or a clock set back): not corrected.
    rt.clock.freeze(SAKATA_MONDAY - timedelta(minutes=1))
    login(staff)
    assert "出欠は、相談の開始時刻を過ぎてから訂正できます。" in _page(staff, reference)
    _correct(staff, reference, to="attended", reason="mistap")
    assert booking(rt, reference).status == "no_show" and len(_corrections(rt, reference)) == 1
    assert "相談の開始前のため、出欠は訂正できません。" in _page(staff, reference)


def test_no_correction_once_the_details_are_no_longer_kept(rt, staff, user):
    keep = rt.offices["sakata"].retention_rules()["personal_details_days_after_session"]
    due, purged = (_recorded(rt, staff, "no_show", minutes=11 + 60 * h, start=SAKATA_MONDAY + timedelta(hours=h))
                   for h in (0, 1))
    # The last day the details are kept: still corrected.
    rt.clock.freeze(SAKATA_MONDAY + timedelta(days=keep))
    login(staff)
    assert 'data-action="correct_attendance"' in _page(staff, due)
    # Past it, even before the worker's purge has run: refused, and the page says why.
    rt.clock.freeze(SAKATA_MONDAY + timedelta(days=keep, minutes=1))
    login(staff)
    assert booking(rt, due).details is not None
    _correct(staff, due, to="attended", reason="mistap")
    assert booking(rt, due).status == "no_show" and not _corrections(rt, due)
    page = _page(staff, due)
    assert "保存期間を過ぎたか、ご本人の求めにより削除されているため、出欠は訂正できません。" in page
    assert 'data-action="correct_attendance"' not in page and 'id="correction-closed"' in page
    # Once purged, whatever the clock.
    rt.clock.freeze(SAKATA_MONDAY + timedelta(days=keep, hours=1, minutes=1))
    assert staff_jobs.run_due(rt)["details_purged"] == 2
    rt.clock.freeze(SAKATA_MONDAY + timedelta(hours=2))
    login(staff)
    _correct(staff, purged, to="attended", reason="mistap")
    assert booking(rt, purged).status == "no_show" and not _corrections(rt, purged)


def test_only_a_recorded_attendance_is_corrected(rt, staff):
    confirmed = make_request(rt)
    post(staff, f"/staff/bookings/{confirmed}/confirm")
    cancelled = make_request(rt, start=SAKATA_MONDAY + timedelta(hours=1))
    post(staff, f"/staff/bookings/{cancelled}/confirm")
    post(staff, f"/staff/bookings/{cancelled}/cancel_user")
    requested = make_request(rt, start=SAKATA_MONDAY + timedelta(hours=2))
    recorded = make_request(rt, start=SAKATA_MONDAY + timedelta(hours=3))
    post(staff, f"/staff/bookings/{recorded}/confirm")
    rt.clock.freeze(SAKATA_MONDAY + timedelta(hours=3, minutes=11))
    login(staff)
    said = {}
    for reference in (confirmed, cancelled, requested):
        for to in ("attended", "no_show"):
            assert _correct(staff, reference, to=to, reason="mistap").status_code == 302
        said[reference] = _page(staff, reference)
    assert [booking(rt, r).status for r in (confirmed, cancelled, requested)] == ["confirmed", "cancelled",
                                                                                  "requested"]
    assert not any(_corrections(rt, r) for r in (confirmed, cancelled, requested))
    assert said[confirmed].count("出欠はまだ記録されていないため、訂正はできません。") == 2
    assert said[cancelled].count("この予約は、ご本人がキャンセルしました。何も変更していません。") == 2
    assert said[requested].count(
        "現在の状況では、この操作はできません。この申込は、まだ承認していません（確認待ち）。何も変更していません。") == 2
    post(staff, f"/staff/bookings/{recorded}/attended")
    _correct(staff, recorded, to="cancelled", reason="mistap")          # only 出席 <-> 欠席
    assert booking(rt, recorded).status == "attended" and not _corrections(rt, recorded)


def test_two_members_correcting_at_once_correct_it_once(rt, staff, app):
    reference = _recorded(rt, staff, "attended")
    create_staff(rt, username="suzuki")
    other = app.test_client()
    login(other, username="suzuki")
    assert 'name="to" value="no_show"' in _page(staff, reference) and 'name="to" value="no_show"' in _page(other, reference)
    _correct(other, reference, to="no_show", reason="mixed_up")
    _correct(staff, reference, to="no_show", reason="mistap")          # the page was opened before: finds it done
    assert booking(rt, reference).status == "no_show"
    assert [(e.actor, e.detail["reason"]) for e in _corrections(rt, reference)] == [("suzuki", "mixed_up")]
    page = _page(staff, reference)
    assert "この操作はすでに済んでいます（現在: 欠席（連絡なし））。" in page
    assert 'name="to" value="attended"' in page                        # the page now offers what is left to do


def test_members_correcting_in_the_same_instant_change_it_once(rt, staff):
    """The same race without pages, each member in its own transaction and connection, released together: the
    booking's row lock (PostgreSQL; SQLite's write transaction) lets one correct it, the others find it done."""
    reference = _recorded(rt, staff, "attended")
    racers = 4
    start_line = threading.Barrier(racers)
    now = rt.clock.now()

    def one(index: int) -> bool:
        start_line.wait()
        with rt.db.transaction() as s:
            row = decisions.load(s, "sakata", reference=reference)
            return decisions.correct_attendance(s, rt, rt.offices["sakata"], row, Actor(label=f"member{index}"),
                                                now, to="no_show", reason="mistap").changed

    with ThreadPoolExecutor(max_workers=racers) as pool:
        changed = list(pool.map(one, range(racers)))
    assert sorted(changed) == [False] * (racers - 1) + [True]
    assert booking(rt, reference).status == "no_show" and len(_corrections(rt, reference)) == 1


def test_every_correction_reason_has_a_label_for_staff():
    labels = yaml.safe_load((TEMPLATES_DIR / "staff" / "labels.yaml").read_text(encoding="utf-8"))
    assert set(labels["attendance_corrections"]) == set(decisions.CORRECTION_REASONS)
    assert labels["actions"]["correct_attendance"] == "出欠の訂正"


def test_a_no_show_the_person_had_called_about_is_corrected_to_a_cancellation(rt, staff, user):
    """The terms' no-show is an absence 「連絡がないまま」 (Sakata 第6条(3), Otaru 第4条(3)). When the person's
    cancellation had reached the office (a call another member took, an e-mail read after the start), or the office
    accepts why they could not tell it in time, the 欠席 becomes a cancellation: with a reason, audited with both
    values, never told to the user, no longer counted as a no-show; 出席 is never made a cancellation."""
    reference = _recorded(rt, staff, "no_show", user_id=user.user_id)
    later = make_request(rt, user_id=user.user_id, start=SAKATA_MONDAY + timedelta(days=7))
    with rt.db.reading() as s:
        assert [b.reference for b in decisions.earlier_no_shows(s, rt.offices["sakata"], booking(rt, later))] == [
            reference]
    closed_on, told = booking(rt, reference).closed_at, len(outbox_rows(rt, recipient=user.user_id))
    post(staff, f"/staff/bookings/{reference}/block_user")          # stopped for the 欠席
    page = _page(staff, reference)
    assert "欠席の訂正（「欠席（連絡なし）」から「キャンセル（本人）」へ）" in page
    assert 'name="to" value="cancelled"' in page and 'value="contacted"' in page
    assert "出欠の訂正（「欠席（連絡なし）」から「出席」へ）" in page              # the other correction stays

    rt.clock.advance(minutes=30)
    answer = _correct(staff, reference, to="cancelled", reason="mistap", note="")
    assert answer.status_code == 302 and booking(rt, reference).status == "cancelled"   # a reason from the list
    page = _page(staff, reference)
    assert "出欠を「キャンセル（本人）」に訂正しました。" in page
    assert "出欠の訂正（欠席（連絡なし） → キャンセル（本人）、理由: 押し間違い）" in page
    assert "「欠席（連絡なし）」の記録を「キャンセル（本人）」に訂正済みです" in page
    assert "欠席の記録を「キャンセル（本人）」に訂正しましたが、この方のオンライン予約は停止したままです" in page
    assert 'data-action="unblock_user"' in page and 'name="to"' not in page    # nothing further to correct
    row = booking(rt, reference)
    assert row.closed_at == closed_on and row.updated_at == rt.clock.now()
    [entry] = _corrections(rt, reference)
    assert entry.detail == {"before": "no_show", "after": "cancelled", "reason": "mistap"}
    with rt.db.reading() as s:
        assert decisions.earlier_no_shows(s, rt.offices["sakata"], booking(rt, later)) == []
    assert len(outbox_rows(rt, recipient=user.user_id)) == told
    # Done already: a second tap (another member's page) finds it done and changes nothing.
    _correct(staff, reference, to="cancelled", reason="contacted")
    assert "この操作はすでに済んでいます（現在: キャンセル（本人））。" in _page(staff, reference)
    assert len(_corrections(rt, reference)) == 1


def test_a_cancellation_correction_needs_a_reason_that_fits_and_a_recorded_no_show(rt, staff):
    reference = _recorded(rt, staff, "no_show")
    for form in ({}, {"reason": "joined_late"}, {"reason": "other", "note": " "}):
        answer = _correct(staff, reference, to="cancelled", **form)
        assert answer.status_code == 400, form
        page = answer.get_data(as_text=True)
        assert 'id="correction-error-' in page and ('id="correction-error-reason-cancel"' in page
                                                   or 'id="correction-error-note-cancel"' in page), form
    assert booking(rt, reference).status == "no_show" and not _corrections(rt, reference)
    # 遅れて参加 is no reason for a cancellation, nor 連絡があった for 出席.
    assert _correct(staff, reference, to="attended", reason="contacted").status_code == 400
    attended = _recorded(rt, staff, "attended", start=SAKATA_MONDAY + timedelta(hours=1), minutes=71)
    assert 'name="to" value="cancelled"' not in _page(staff, attended)
    _correct(staff, attended, to="cancelled", reason="contacted")
    assert booking(rt, attended).status == "attended" and not _corrections(rt, attended)
    assert "現在の状況では、この操作はできません。出欠はすでに「出席」と記録されています。" in _page(staff, attended)
    _correct(staff, reference, to="cancelled", reason="other", note="本人より電話、通院のため。所長了承")
    assert booking(rt, reference).status == "cancelled"
    assert personal.open_note(rt, _corrections(rt, reference)[0].note) == "本人より電話、通院のため。所長了承"
