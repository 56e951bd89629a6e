"""The dashboard's pages and actions: the day, the queue, one booking's actions, phone/window bookings,
search, blocks, the outbox, the staff group ids, the CSV export and the audit log."""
from __future__ import annotations

import csv
import io
import re
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.clock import TOKYO
from bot.models import Booking, Conversation, SlotBlock, StaffGroupSighting
from bot.services import holds
from bot.staff import decisions, personal
from bot.staff.models import AuditEntry, BookingHandoff
from tests.staffkit import fast_password_hashing, staff, user  # noqa: F401 - fixtures
from tests.staffkit import (
    DETAILS, OTARU_WEDNESDAY, SAKATA_MONDAY, audit_rows, booking, conversation, create_staff, csrf, login, make_request,
    outbox_rows, post, postback_value, run_worker,
)
from tests.lineuser import StaffGroup


def _actions(rt, reference=None) -> list[str]:
    with rt.db.reading() as s:
        query = select(AuditEntry.action).order_by(AuditEntry.id)
        if reference:
            query = query.where(AuditEntry.reference == reference)
        return list(s.scalars(query))


def _page(client, path) -> str:
    response = client.get(path)
    assert response.status_code == 200, response.status_code
    return response.get_data(as_text=True)


def _revealed(client, path) -> str:
    """A booking's page after 「個人情報を表示」."""
    assert post(client, f"{path}/reveal").status_code == 302
    return _page(client, path)


# -- the day and the queue ------------------------------------------------------------------------

def test_timeline_shows_free_held_requested_confirmed_and_blocked(rt, staff, user):
    reference = make_request(rt, user_id=user.user_id)
    confirmed = make_request(rt, start=SAKATA_MONDAY + timedelta(hours=1))
    post(staff, f"/staff/bookings/{confirmed}/confirm")
    post(staff, "/staff/blocks", day="2026-12-07", slot=(SAKATA_MONDAY + timedelta(hours=2)).isoformat())
    post(staff, "/staff/blocks", day="2026-12-14")
    page = _page(staff, "/staff/")
    day = page.split('data-day="2026-12-07"')[1].split("</section>")[0]
    assert "確認待ち" in day and reference in day and confirmed in day and "停止中" in day
    second = page.split('data-day="2026-12-14"')[1].split("</section>")[0]
    assert second.count("停止中") == 3 and "この日の停止を解除" in second
    later = _page(staff, "/staff/?from=2026-12-15")
    assert "空き" in later.split('data-day="2026-12-21"')[1].split("</section>")[0]
    # A user holding a slot on the form shows as held.
    with rt.db.transaction() as s:
        conv_id = conversation(rt, "sakata", "U" + "h" * 32)
        s.add(holds.SlotHold(office_id="sakata", conversation_id=conv_id, slot_start=SAKATA_MONDAY + timedelta(days=14),
                             expires_at=rt.clock.now() + timedelta(minutes=15), token_nonce="n", created_at=rt.clock.now()))
    page = _page(staff, "/staff/?from=2026-12-15")
    assert "入力中（仮押さえ）" in page.split('data-day="2026-12-21"')[1].split("</section>")[0]
    # National holidays and weekends say why.
    assert "祝日" in _page(staff, "/staff/?from=2027-01-11")


def test_the_schedule_shows_todays_next_session_and_the_attendance_to_record_at_a_glance(rt, staff):
    done, under_way, coming, last = (
        make_request(rt, start=SAKATA_MONDAY + timedelta(hours=h), user_id=f"U{h}" + "t" * 31, status="confirmed")
        for h in (-7, 0, 1, 2))   # 7:00 is off the schedule, but a confirmed booking all the same
    rt.clock.freeze(SAKATA_MONDAY + timedelta(minutes=40))   # Monday 12/7 14:40, between two sessions
    login(staff)
    page = _page(staff, "/staff/")
    glance = page.split('id="today"')[1].split("</section>")[0]
    assert "今日 12/7(月) の相談" in glance
    assert f"次の相談: <strong>12/7(月) 15:00（今日）</strong> 受付番号" in glance and coming in glance
    assert "（あと20分）" in glance and "今日これから始まる相談: 2件" in glance
    attendance = glance.split('id="today-attendance"')[1]
    assert "始まった相談で出欠が未記録（2件）" in attendance and done in attendance and under_way in attendance
    assert coming not in attendance and last not in attendance
    assert 'id="today-undecided"' not in glance
    # In the day's table: the next session is marked, a started one says its attendance is not recorded.
    rows = page.split('data-day="2026-12-07"')[1].split("</section>")[0].split("<tr")
    row = {h: next(r for r in rows if f'data-slot="2026-12-07T{h}:00:00+09:00"' in r) for h in ("14", "15", "16")}
    assert "次の相談" in row["15"] and " next" in row["15"] and "次の相談" not in row["16"]
    assert "出欠未記録" in row["14"] and " past" in row["14"] and "出欠未記録" not in row["15"]
    # A request for a slot later today, still undecided, is named with what happens if nobody decides.
    with rt.db.transaction() as s:
        s.scalar(select(Booking).where(Booking.reference == last)).status = "requested"
    glance = _page(staff, "/staff/").split('id="today"')[1].split("</section>")[0]
    undecided = glance.split('id="today-undecided"')[1].split("</li>")[0]
    assert "今日の枠で、まだ決まっていない申込（1件）" in undecided and f"16:00 <span>{last}</span></a>（確認待ち）" in undecided
    assert "開始時刻までに決まらないと期限切れになり" in undecided and "今日これから始まる相談: 1件" in glance
    # Nothing left today: the next one is named with its day.
    rt.clock.freeze(SAKATA_MONDAY + timedelta(hours=2, minutes=40))
    login(staff)
    glance = _page(staff, "/staff/").split('id="today"')[1].split("</section>")[0]
    assert "この後に確定している相談はありません。" in glance and "今日これから始まる相談: 0件" in glance


def test_a_slot_whose_attendance_is_recorded_reads_as_finished_not_confirmed(rt, staff):
    """Once every session of a slot has 出席 or 欠席, the slot's 状態 says 実施済み: 確定 beside a booking that says
    出席 read as if something were still to be done."""
    attended, missed, open_ = (make_request(rt, start=SAKATA_MONDAY + timedelta(hours=h), user_id=f"U{h}" + "f" * 31,
                                            status="confirmed") for h in (0, 1, 2))
    rt.clock.freeze(SAKATA_MONDAY + timedelta(hours=2, minutes=20))
    login(staff)
    post(staff, f"/staff/bookings/{attended}/attended")
    post(staff, f"/staff/bookings/{missed}/no_show")
    rows = _page(staff, "/staff/").split('data-day="2026-12-07"')[1].split("</section>")[0].split("<tr")
    state = {h: re.search(r'<span class="state state-(\w+)">([^<]+)</span>',
                          next(r for r in rows if f'data-slot="2026-12-07T{h}:00:00+09:00"' in r)).groups()
             for h in ("14", "15", "16")}
    assert state == {"14": ("finished", "実施済み"), "15": ("finished", "実施済み"), "16": ("confirmed", "確定")}


def test_a_slot_whose_booking_waits_for_the_users_answer_to_a_proposal_reads_as_such_not_as_to_confirm(rt, staff,
                                                                                                      user):
    """A proposal waits for the user's answer, not for staff: its slot said 確認待ち beside a booking that said
    別日時を提案中, and a busy member took it for something to approve. It has its own state, legend entry and
    colour, and the schedule's pointer to 確認待ちの申込 no longer counts it."""
    reference = make_request(rt, user_id=user.user_id)
    post(staff, f"/staff/bookings/{reference}/propose", slot=(SAKATA_MONDAY + timedelta(hours=1)).isoformat())
    assert booking(rt, reference).status == "proposed"
    page = _page(staff, "/staff/")
    rows = page.split('data-day="2026-12-07"')[1].split("</section>")[0].split("<tr")
    row = next(r for r in rows if 'data-slot="2026-12-07T15:00:00+09:00"' in r)
    assert re.search(r'<span class="state state-(\w+)">([^<]+)</span>', row).groups() == ("proposed", "本人の回答待ち")
    assert "state-row-proposed" in row and reference in row and "確認待ち" not in row
    legend = page.split('<p class="legend">')[1].split("</p>")[0]
    assert '<span class="state state-proposed">本人の回答待ち</span>' in legend
    assert ".state-proposed" in Path("static/staff/staff.css").read_text(encoding="utf-8")
    assert 'id="pending"' not in page
    make_request(rt, start=SAKATA_MONDAY + timedelta(hours=2))
    assert "確認待ちの申込が1件あります" in _page(staff, "/staff/")


def test_the_schedules_pointer_to_the_queue_says_how_many_wait_and_the_nearest_deadline(rt, staff):
    """「確認待ちの申込があります」 said neither how many nor how soon: a member starting the day on the 予定表 could
    not tell a request due by 17:00 today from one due next week without opening 対応待ち. It counts them and gives
    the nearest deadline (with 今日 / 明日, and when it has passed)."""
    make_request(rt, start=SAKATA_MONDAY + timedelta(days=7))       # 12/14: due Friday 12/11
    make_request(rt)                                                # 12/7: due Friday 12/4 17:00
    pointer = _page(staff, "/staff/").split('id="pending"')[1].split("</p>")[0]
    assert "確認待ちの申込が2件あります" in pointer and "締切がいちばん近いもの: 12/4(金) 17:00" in pointer, pointer
    rt.clock.freeze(datetime(2026, 12, 4, 9, 0, tzinfo=TOKYO))
    login(staff)
    pointer = _page(staff, "/staff/").split('id="pending"')[1].split("</p>")[0]
    assert "12/4(金) 17:00（今日）" in pointer and "過ぎ" not in pointer, pointer
    rt.clock.freeze(datetime(2026, 12, 4, 18, 0, tzinfo=TOKYO))
    login(staff)
    pointer = _page(staff, "/staff/").split('id="pending"')[1].split("</p>")[0]
    assert "12/4(金) 17:00（今日）、締切を過ぎています" in pointer, pointer


def test_the_queue_lists_proposals_apart_from_the_requests_staff_still_have_to_decide(rt, staff, user):
    """対応待ち's 確認待ちの申込 counted the proposals too, though staff have nothing to do on them but wait: they are
    listed on their own, as waiting for the user's answer."""
    proposed = make_request(rt, user_id=user.user_id)
    post(staff, f"/staff/bookings/{proposed}/propose", slot=(SAKATA_MONDAY + timedelta(hours=1)).isoformat())
    requested = make_request(rt, start=SAKATA_MONDAY + timedelta(hours=2))
    page = _page(staff, "/staff/queue")
    undecided = page.split('id="undecided-h"')[1].split("</section>")[0]
    assert undecided.startswith(">確認待ちの申込（1件）") and requested in undecided and proposed not in undecided
    answers = page.split('id="proposals-h"')[1].split("</section>")[0]
    assert answers.startswith(">本人の回答待ち（別日時を提案中）（1件）") and proposed in answers
    assert requested not in answers and "締切" in answers
    with rt.db.reading() as s:
        from bot.staff import queue as queue_lists
        assert queue_lists.undecided_count(s, "sakata") == 1


def test_each_block_button_and_reason_field_of_the_schedule_names_its_day_or_slot(rt, staff):
    """A screen reader lists the page's buttons by name: ten 「この枠を停止」 a day told nobody which slot."""
    post(staff, "/staff/blocks", day="2026-12-07", slot=SAKATA_MONDAY.isoformat())
    post(staff, "/staff/blocks", day="2026-12-14")
    page = _page(staff, "/staff/")
    buttons = re.findall(r'<button type="submit" class="secondary small"[^>]*aria-label="([^"]+)">([^<]+)</button>',
                         page)
    names = [name for name, _ in buttons]
    assert len(names) == 5 and len(set(names)) == len(names), names
    assert all(name.startswith(visible) for name, visible in buttons)   # the visible words come first
    assert "停止を解除（12/7(月) 14:00）" in names and "この枠を停止（12/7(月) 15:00）" in names
    assert "この日の停止を解除（12/14(月)）" in names
    assert re.findall(r'name="reason"[^>]*aria-label="([^"]+)"', page) == ["理由（12/7(月)を停止する理由）"]


def test_closing_a_day_or_slot_says_which_and_that_its_bookings_still_stand(rt, staff):
    """「日を停止しました。」 named neither the day nor what became of the sessions booked on it: a member who closed
    a training day read it as done, while its confirmed sessions (and the requests) still stood, their users
    expecting them. The answer names the day or slot and counts what it kept, and how to call it off."""
    confirmed = make_request(rt)                                  # Monday 12/7 14:00
    post(staff, f"/staff/bookings/{confirmed}/confirm")
    make_request(rt, start=SAKATA_MONDAY + timedelta(hours=1))    # 15:00, still to decide
    page = staff.get(post(staff, "/staff/blocks", day="2026-12-07").headers["Location"]).get_data(as_text=True)
    flash = re.findall(r'<p class="flash[^>]*>(.*?)</p>', page, re.S)[-1]
    assert "12/7(月)" in flash and "停止しました" in flash, flash
    assert "2件" in flash and "そのまま" in flash and "ハローワークの都合で中止する" in flash, flash
    page = staff.get(post(staff, "/staff/blocks", day="2026-12-14",
                          slot=(SAKATA_MONDAY + timedelta(days=7)).isoformat()).headers["Location"]).get_data(as_text=True)
    flash = re.findall(r'<p class="flash[^>]*>(.*?)</p>', page, re.S)[-1]
    assert "12/14(月) 14:00" in flash and "停止しました" in flash, flash
    assert "件" not in flash, flash     # nothing booked there: nothing to say about it


def test_the_schedule_points_out_a_session_whose_invitation_or_call_is_due_and_not_recorded(rt, staff):
    """From the office's last business day before a session (Friday for Monday), the day's glance names it
    while its invitation is not marked sent or the date not phoned: the 予定表 is where staff start the day."""
    reference = make_request(rt)                 # Monday 12/7 14:00
    post(staff, f"/staff/bookings/{reference}/confirm")
    rt.clock.freeze(datetime(2026, 12, 3, 18, 0, tzinfo=TOKYO))    # Thursday: not due yet
    login(staff)
    assert 'id="today-unprepared"' not in _page(staff, "/staff/")
    rt.clock.freeze(datetime(2026, 12, 4, 9, 0, tzinfo=TOKYO))     # Friday, the last business day before
    login(staff)
    glance = _page(staff, "/staff/").split('id="today"')[1].split("</section>")[0]
    due = glance.split('id="today-unprepared"')[1].split("</li>")[0]
    assert "準備の記録がまだの相談（1件）" in due and reference in due and "12/7(月) 14:00" in due
    assert "会議招待メールの送付が未記録・電話でのお知らせが未了" in due
    post(staff, f"/staff/bookings/{reference}/invitation")
    due = _page(staff, "/staff/").split('id="today-unprepared"')[1].split("</li>")[0]
    assert "（電話でのお知らせが未了）" in due and "会議招待" not in due
    post(staff, f"/staff/bookings/{reference}/called")
    assert 'id="today-unprepared"' not in _page(staff, "/staff/")


def test_the_queue_lists_undecided_calls_invitations_and_attendance(rt, staff):
    reference = make_request(rt)
    page = _page(staff, "/staff/queue")
    assert reference in page.split("電話でのお知らせ")[0]
    post(staff, f"/staff/bookings/{reference}/confirm")
    page = _page(staff, "/staff/queue")
    calls, invitations = page.split("電話でのお知らせ")[1], page.split("会議招待メールの送付が未記録")[1]
    assert reference in calls.split("会議招待メールの送付")[0] and reference in invitations.split("出欠の記録待ち")[0]
    rt.clock.freeze(SAKATA_MONDAY + timedelta(minutes=15))
    login(staff)  # days later: the old session timed out
    assert reference in _page(staff, "/staff/queue").split("出欠の記録待ち")[1].split("お知らせ（")[0]


def test_the_queue_lists_a_session_whose_attendance_is_due_from_its_start_as_the_schedule_does(rt, staff):
    """At 14:05 the 予定表 said 出欠が未記録（1件） while 対応待ち said 出欠の記録待ち（0件）・ありません: 出席 is recorded
    from the start, so the queue lists the session from then too (欠席 still waits for the grace period)."""
    reference = make_request(rt)
    post(staff, f"/staff/bookings/{reference}/confirm")
    rt.clock.freeze(SAKATA_MONDAY + timedelta(minutes=5))
    login(staff)
    assert reference in _page(staff, "/staff/").split('id="today-attendance"')[1].split("</li>")[0]
    queue = _page(staff, "/staff/queue").split("出欠の記録待ち")[1].split("お知らせ（")[0]
    assert queue.startswith("（1件）") and reference in queue


def test_the_attendance_to_record_is_counted_and_listed_a_page_at_a_time_oldest_first(rt, staff, monkeypatch):
    """Unrecorded sessions add up over a year: the queue says how many and lists a page of them, oldest first,
    with a link to the next; the schedule lists today's and only counts those of earlier days."""
    from bot.staff import queue as queue_lists

    monkeypatch.setattr(queue_lists, "ATTENDANCE_SHOWN", 2, raising=False)
    older = [make_request(rt, start=SAKATA_MONDAY + timedelta(days=d), user_id=f"U{d}" + "a" * 31,
                          status="confirmed") for d in (-28, -21, -14)]
    today = make_request(rt, user_id="U" + "b" * 32, status="confirmed")
    rt.clock.freeze(SAKATA_MONDAY + timedelta(minutes=15))
    login(staff)
    due = _page(staff, "/staff/queue").split('id="attendance-h"')[1].split('id="notices-h"')[0]
    assert "出欠の記録待ち（4件）" in due and "古い順に1～2件目を表示しています" in due
    assert [r for r in (*older, today) if r in due] == older[:2]
    assert due.index(older[0]) < due.index(older[1])
    assert "次の2件（新しいもの）" in due and "前の2件" not in due
    following = _page(staff, "/staff/queue?attendance_from=2").split('id="attendance-h"')[1].split('id="notices-h"')[0]
    assert [r for r in (*older, today) if r in following] == [older[2], today]
    assert "前の2件（古いもの）" in following and "次の2件" not in following
    past_the_end = _page(staff, "/staff/queue?attendance_from=6").split('id="attendance-h"')[1].split('id="notices-h"')[0]
    assert "古い順に3～4件目を表示しています" in past_the_end
    glance = _page(staff, "/staff/").split('id="today-attendance"')[1].split("</li>")[0]
    assert "始まった相談で出欠が未記録（4件）" in glance and today in glance
    assert not any(r in glance for r in older) and "前日までの分3件" in glance


def test_the_schedule_counting_only_earlier_days_attendance_separates_the_count_from_the_words(rt, staff):
    """No session today left to record, some of earlier days: 「（1件）」 and 「前日までの分1件は…」 ran together."""
    make_request(rt, start=SAKATA_MONDAY - timedelta(days=7), user_id="U" + "c" * 32, status="confirmed")
    rt.clock.freeze(SAKATA_MONDAY + timedelta(minutes=15))
    login(staff)
    glance = _page(staff, "/staff/").split('id="today-attendance"')[1].split("</li>")[0]
    assert re.search(r"始まった相談で出欠が未記録（1件）: <a [^>]*>前日までの分1件は", glance), glance


def test_the_queues_notices_say_each_bookings_status_now(rt, staff):
    """「新しい申込」 stayed in お知らせ after the request was decided: beside each notice, where the booking is now,
    so that nobody opens a request another member already approved to see whether it is still to do."""
    decided, waiting = make_request(rt), make_request(rt, start=SAKATA_MONDAY + timedelta(hours=1))
    post(staff, f"/staff/bookings/{decided}/confirm")
    notices = _page(staff, "/staff/queue").split("お知らせ（新しい順）")[1]
    assert "<th scope=\"col\">現在の状況</th>" in notices
    rows = notices.split("<tr>")
    assert '<span class="status status-confirmed">確定</span>' in next(r for r in rows if decided in r)
    assert '<span class="status status-requested">確認待ち</span>' in next(r for r in rows if waiting in r)


def test_the_queue_shows_each_requests_booking_deadline_and_when_it_was_loaded(rt, staff):
    from bot.services import slots as slotsvc

    reference = make_request(rt)
    deadline = slotsvc.booking_deadline(rt.offices["sakata"], SAKATA_MONDAY)
    row = next(r for r in _page(staff, "/staff/queue").split("<tr>") if reference in r)
    assert f"締切 {slotsvc.slot_label(deadline)}" in row and "過ぎています" not in row
    rt.clock.freeze(deadline + timedelta(minutes=1))
    login(staff)
    page = _page(staff, "/staff/queue")
    row = next(r for r in page.split("<tr>") if reference in r)
    assert "（締切を過ぎています）" in row
    # Said as every other date of the dashboard is (12/4(金), not 12/04).
    assert f"{slotsvc.slot_label(deadline + timedelta(minutes=1))}時点の内容です" in page


def test_dates_of_today_and_tomorrow_say_so_on_the_queue_and_the_booking_page(rt, staff):
    tomorrow, later = make_request(rt), make_request(rt, start=SAKATA_MONDAY + timedelta(days=7))
    rt.clock.freeze(datetime(2026, 12, 6, 18, 0, tzinfo=TOKYO))   # Sunday evening
    login(staff)
    rows = _page(staff, "/staff/queue").split("<tr>")
    assert "12/7(月) 14:00（明日）" in next(r for r in rows if tomorrow in r)
    assert "12/14(月) 14:00<" in next(r for r in rows if later in r)
    assert '<dd id="slot-time">12/7(月) 14:00（明日）・30分</dd>' in _page(staff, f"/staff/bookings/{tomorrow}")
    assert '<h2 id="day-2026-12-07-h">2026年12/7(月)（明日）</h2>' in _page(staff, "/staff/")   # and the schedule's day
    rt.clock.freeze(datetime(2026, 12, 7, 9, 0, tzinfo=TOKYO))
    login(staff)
    assert '<dd id="slot-time">12/7(月) 14:00（今日）・30分</dd>' in _page(staff, f"/staff/bookings/{tomorrow}")
    assert "（今日）" not in _page(staff, f"/staff/bookings/{later}").split('id="slot-time">')[1].split("</dd>")[0]
    # The booking deadline too: on its day, staff see that it is today.
    rt.clock.freeze(datetime(2026, 12, 11, 9, 0, tzinfo=TOKYO))   # Friday: 12/14's deadline is 17:00 today
    login(staff)
    row = next(r for r in _page(staff, "/staff/queue").split("<tr>") if later in r)
    assert "締切 12/11(金) 17:00（今日）" in row
    assert '<dd id="deadline">12/11(金) 17:00（今日）</dd>' in _page(staff, f"/staff/bookings/{later}")


@pytest.mark.parametrize("office_id,start,task,how,other", [
    ("sakata", SAKATA_MONDAY, "会議招待メールの送付", "求職者マイページに登録されたメールアドレス", "ミーティングID"),
    ("otaru", OTARU_WEDNESDAY, "ミーティングID・パスワードのお知らせ", "求職者マイページまたはお電話", "会議招待メール"),
])
def test_the_invitation_task_is_named_as_the_offices_rules_name_it(rt, client, office_id, start, task, how, other):
    """Sakata e-mails a meeting invitation to the My Page address; Otaru gives the Zoom meeting ID and password
    through My Page or by phone: each office's staff see their own task and how it goes, never the other's."""
    create_staff(rt, office=office_id)
    login(client)
    reference = make_request(rt, office=office_id, start=start)
    post(client, f"/staff/bookings/{reference}/confirm")
    page = _page(client, f"/staff/bookings/{reference}")
    assert f"{task}を記録" in page and how in page and other not in page
    with rt.db.transaction() as s:   # the worker's reminder that it is not recorded yet
        rt.notify_staff(s, rt.offices[office_id], "invitation", booking(rt, reference).id, rt.clock.now())
    queue = _page(client, "/staff/queue")
    assert f"{task}が未記録" in queue and reference in queue.split(f"{task}が未記録")[1].split("出欠の記録待ち")[0]
    notices = queue.split("お知らせ（新しい順）")[1]
    assert f"<td>{task}が未記録</td>" in notices and "招待の送付" not in notices
    post(client, f"/staff/bookings/{reference}/invitation")
    page = _page(client, f"/staff/bookings/{reference}")
    assert f"{task}を記録しました" in page
    log = page.split('id="audit-h"')[1]                                        # the record names it too
    assert f"{task}を記録" in log and other not in log
    actions = [row[2] for row in audit_rows(_page(client, "/staff/audit"))]     # the entries, not the filter's
    assert f"{task}を記録" in actions and not any(other in action for action in actions), actions


@pytest.mark.parametrize("office_id,start", [("sakata", SAKATA_MONDAY), ("otaru", OTARU_WEDNESDAY)])
def test_the_booking_page_says_where_a_companion_is_named_before_approval_and_before_the_session(
        rt, client, office_id, start):
    """Sakata 第12条(3), Otaru 第10条(3): an interpreter or caregiver joining is told in advance (the form's 同席者).
    Before 承認 and before the session the page says where that is (the details, shown on 「個人情報を表示」) so
    that staff arrange an interpreter; it never says whether anyone joins until the details are revealed."""
    create_staff(rt, office=office_id)
    login(client)
    reference = make_request(rt, office=office_id, start=start)
    page = _page(client, f"/staff/bookings/{reference}")
    hint = page.split('id="companion-check">')[1].split("</p>")[0]
    assert "申込内容の「同席者」" in hint and "承認の前に" in hint
    post(client, f"/staff/bookings/{reference}/confirm")
    hint = _page(client, f"/staff/bookings/{reference}").split('id="companion-check">')[1].split("</p>")[0]
    assert "相談の前に" in hint
    rt.clock.freeze(start + timedelta(minutes=1))
    login(client)
    assert 'id="companion-check"' not in _page(client, f"/staff/bookings/{reference}")   # under way: attendance


# -- one booking ----------------------------------------------------------------------------------

PERSONAL_VALUES = ("酒田 花子", "さかた はなこ", "12345-678901", "090-1234-5678", "UIJターン")


def _shows_personal(page: str) -> list[str]:
    return [value for value in PERSONAL_VALUES + ("電話で伝えた件",) if value in page]


def test_opening_a_booking_page_shows_no_personal_value_and_logs_no_view(rt, staff):
    """Staff opening a booking to record attendance or confirm it (from a group card, the queue, after each
    action's redirect) saw every personal value and left a 個人情報の閲覧 each time: half the log was views, and
    it no longer told who really looked at whose data. The page shows what is needed to act, details on request."""
    reference = make_request(rt)
    post(staff, f"/staff/bookings/{reference}/note", note="電話で伝えた件", note_seen=personal.note_digest(""))
    for _ in range(2):
        page = _page(staff, f"/staff/bookings/{reference}")
        assert _shows_personal(page) == []
        assert reference in page and "確認待ち" in page and 'data-action="confirm"' in page
        assert re.search(r'<button type="submit" data-action="reveal" aria-describedby="reveal-hint-details-h">'
                         r"個人情報を表示</button>", page)
        assert 'id="note-hidden"' in page and 'id="note-form"' not in page   # the 職員メモ is personal too
    assert "view_details" not in _actions(rt)


def test_revealing_shows_the_details_and_logs_one_view_that_the_actions_redirects_do_not_repeat(rt, staff):
    reference = make_request(rt)
    post(staff, f"/staff/bookings/{reference}/note", note="電話で伝えた件", note_seen=personal.note_digest(""))
    response = post(staff, f"/staff/bookings/{reference}/reveal", then="details-h")
    assert response.status_code == 302 and response.location.endswith(f"/staff/bookings/{reference}#details-h")
    page = _page(staff, f"/staff/bookings/{reference}")
    assert _shows_personal(page) == list(PERSONAL_VALUES) + ["電話で伝えた件"]
    assert 'id="conceal"' in page and "個人情報の閲覧" in page.split('id="audit-h"')[1]
    assert _actions(rt, reference).count("view_details") == 1
    # An action's redirect, a reload, a second tap on the button: shown still, not logged again.
    post(staff, f"/staff/bookings/{reference}/confirm")
    post(staff, f"/staff/bookings/{reference}/reveal")
    page = _page(staff, f"/staff/bookings/{reference}")
    assert "承認しました" in page and "酒田 花子" in page
    assert _actions(rt, reference) == ["note", "view_details", "confirm"]
    # Five minutes later the page hides them again; another look is another entry.
    rt.clock.freeze(rt.clock.now() + timedelta(minutes=5, seconds=1))
    assert _shows_personal(_page(staff, f"/staff/bookings/{reference}")) == []
    post(staff, f"/staff/bookings/{reference}/reveal")
    assert "酒田 花子" in _page(staff, f"/staff/bookings/{reference}")
    assert _actions(rt, reference).count("view_details") == 2
    # 個人情報を隠す ends it at once.
    assert post(staff, f"/staff/bookings/{reference}/conceal").status_code == 302
    assert _shows_personal(_page(staff, f"/staff/bookings/{reference}")) == []


@pytest.mark.parametrize("reading", ["Nguyen Van An", ""])
def test_the_reading_is_shown_as_given_and_an_empty_one_says_so(rt, staff, reading):
    """The form in English takes the reading in the Latin alphabet, or none: staff see what was given, and an
    empty field is named as such, not a blank cell that looks like a fault."""
    reference = make_request(rt, details={**DETAILS["sakata"], "name_kana": reading})
    row = _revealed(staff, f"/staff/bookings/{reference}").split("<th scope=\"row\">ふりがな</th>")[1].split("</tr>")[0]
    assert re.sub(r"<[^>]+>", "", row).strip() == (reading or "（記入なし）")


def test_a_reveal_is_a_post_with_the_csrf_token_of_this_offices_account(rt, staff, app):
    reference = make_request(rt)
    assert staff.get(f"/staff/bookings/{reference}/reveal").status_code == 405   # no prefetch reveals
    refused = staff.post(f"/staff/bookings/{reference}/reveal", data={"csrf_token": "forged"})
    assert refused.status_code == 400
    assert _shows_personal(_page(staff, f"/staff/bookings/{reference}")) == []
    create_staff(rt, office="otaru", username="otaru-staff")
    other = app.test_client()
    login(other, "otaru-staff")
    assert post(other, f"/staff/bookings/{reference}/reveal").status_code == 404
    assert post(other, f"/staff/bookings/{reference}/conceal").status_code == 404
    assert "view_details" not in _actions(rt)


def test_a_reveal_holds_for_the_account_that_made_it_only(rt, staff):
    reference = make_request(rt)
    post(staff, f"/staff/bookings/{reference}/reveal")
    create_staff(rt, username="suzuki")
    login(staff, "suzuki")   # the same browser, another member: a new session, nothing revealed
    assert _shows_personal(_page(staff, f"/staff/bookings/{reference}")) == []


def test_confirm_from_the_dashboard_tells_the_user_and_opens_the_call_task(rt, staff, fake_line, user):
    reference = make_request(rt, user_id=user.user_id)
    assert post(staff, f"/staff/bookings/{reference}/confirm").status_code == 302
    assert booking(rt, reference).status == "confirmed"
    assert "承認しました" in _page(staff, f"/staff/bookings/{reference}")
    run_worker(rt)
    assert "予約が確定しました" in fake_line.texts_to(user.user_id)[-1]
    with rt.db.reading() as s:
        assert s.get(BookingHandoff, booking(rt, reference).id).call_needed   # Sakata phones the date
    post(staff, f"/staff/bookings/{reference}/called")
    post(staff, f"/staff/bookings/{reference}/invitation")
    assert booking(rt, reference).invitation_sent_at is not None
    queue = _page(staff, "/staff/queue")
    assert reference not in queue.split("電話でのお知らせ")[1].split("出欠の記録待ち")[0]
    assert ["confirm", "called", "invitation_sent"] == [a for a in _actions(rt, reference) if a != "view_details"]


def test_an_invitation_or_call_recorded_by_mistake_is_taken_back_before_the_session(rt, staff):
    """「会議招待メールの送付を記録」 tapped on the wrong booking silenced the queue, the schedule and the group's
    follow-up card for an invitation never sent, with no way back: until the start the record can be taken back."""
    reference = make_request(rt)
    post(staff, f"/staff/bookings/{reference}/confirm")
    post(staff, f"/staff/bookings/{reference}/invitation")
    post(staff, f"/staff/bookings/{reference}/called")
    page = _page(staff, f"/staff/bookings/{reference}")
    assert 'data-action="invitation_undo">会議招待メールの送付の記録を取り消す<' in page
    assert 'data-action="called_undo">電話連絡の記録を取り消す<' in page
    assert post(staff, f"/staff/bookings/{reference}/invitation_undo").status_code == 302
    assert "会議招待メールの送付の記録を取り消しました" in _page(staff, f"/staff/bookings/{reference}")
    assert post(staff, f"/staff/bookings/{reference}/called_undo").status_code == 302
    assert booking(rt, reference).invitation_sent_at is None
    with rt.db.reading() as s:
        assert s.get(BookingHandoff, booking(rt, reference).id).called_at is None
    queue = _page(staff, "/staff/queue")
    assert reference in queue.split("電話でのお知らせ")[1].split("会議招待メールの送付が未記録")[0]
    assert reference in queue.split("会議招待メールの送付が未記録")[1].split("出欠の記録待ち")[0]
    assert [a for a in _actions(rt, reference) if a != "view_details"] == [
        "confirm", "invitation_sent", "called", "invitation_undone", "called_undone"]
    actions = [row[2] for row in audit_rows(_page(staff, "/staff/audit"))]      # the entries, not the filter's
    assert "会議招待メールの送付の記録を取り消し" in actions and "電話連絡の記録を取り消し" in actions, actions
    # Once the session has begun, the record stays as it is (its attendance is what is left to do).
    post(staff, f"/staff/bookings/{reference}/invitation")
    rt.clock.freeze(SAKATA_MONDAY + timedelta(minutes=1))
    login(staff)
    assert 'data-action="invitation_undo"' not in _page(staff, f"/staff/bookings/{reference}")
    post(staff, f"/staff/bookings/{reference}/invitation_undo")
    assert booking(rt, reference).invitation_sent_at is not None


def test_cancelling_on_the_users_behalf_first_opens_what_it_does(rt, staff, user):
    """「ご本人に代わってキャンセル」 sat among the buttons of every day, one click from cancelling a confirmed session
    and telling the user, with no way back: as 中止, one click opens what it does and a second one does it."""
    reference = make_request(rt, user_id=user.user_id)
    post(staff, f"/staff/bookings/{reference}/confirm")
    page = _page(staff, f"/staff/bookings/{reference}")
    opened = page.split('<details class="block" id="cancel-user">')[1].split("</details>")[0]
    assert "<summary>ご本人に代わってキャンセル（電話などで連絡があったとき）</summary>" in opened
    assert "ご本人にLINEでキャンセルのお知らせが届きます。元には戻せません。" in opened
    assert 'data-action="cancel_user">キャンセルを確定する</button>' in opened and 'id="cancel-note"' in opened
    assert page.count('data-action="cancel_user"') == 1
    phoned = make_request(rt, start=SAKATA_MONDAY + timedelta(hours=1))   # no LINE to tell them on
    opened = _page(staff, f"/staff/bookings/{phoned}").split('id="cancel-user">')[1].split("</details>")[0]
    assert "<summary>ご本人に代わって取り下げ（" in opened and "LINEではご本人にお知らせできません" in opened


def test_stopping_a_phone_booking_for_the_office_does_not_promise_a_line_message(rt, staff, user):
    """ハローワークの都合で中止する said the user would get a LINE message even on a phone booking, which has no
    LINE to tell them on: the member learned it only after it was done. It says before to phone them."""
    on_line = make_request(rt, user_id=user.user_id, status="confirmed")
    phoned = make_request(rt, start=SAKATA_MONDAY + timedelta(hours=1), status="confirmed")
    told = _page(staff, f"/staff/bookings/{on_line}").split('id="told-cancel-office">')[1].split("</p>")[0]
    assert "ご本人にLINEで中止のお知らせが届きます。" in told
    told = _page(staff, f"/staff/bookings/{phoned}").split('id="told-cancel-office">')[1].split("</p>")[0]
    assert "LINE" in told and "届きます" not in told and "中止したら、必ずお電話でお伝えください。" in told


def test_the_call_task_leaves_the_queue_once_the_session_has_begun(rt, staff):
    """対応待ち's phone list asks to tell the user the confirmed date: a task before the session, as the invitation
    is. During and after it, the list named a session under way (出欠 is what is left to do)."""
    reference = make_request(rt)
    post(staff, f"/staff/bookings/{reference}/confirm")
    calls = _page(staff, "/staff/queue").split("電話でのお知らせ")[1].split("会議招待メールの送付")[0]
    assert reference in calls
    rt.clock.freeze(SAKATA_MONDAY + timedelta(minutes=15))
    login(staff)
    queue = _page(staff, "/staff/queue")
    assert reference not in queue.split("電話でのお知らせ")[1].split("会議招待メールの送付")[0]
    assert "電話でのお知らせ（0件）" in queue
    assert reference in queue.split("出欠の記録待ち")[1].split("お知らせ（")[0]


def test_the_booking_page_asks_to_phone_the_date_only_while_the_call_can_still_come_before_the_session(rt, staff):
    """The booking's facts said 未了（日時をお電話でお知らせしてください） during the session, after 出席 was recorded
    and on a booking cancelled since: a busy member read a task that no longer is one (対応待ち drops it then)."""
    ahead, cancelled = make_request(rt), make_request(rt, start=SAKATA_MONDAY + timedelta(hours=1))
    for reference in (ahead, cancelled):
        post(staff, f"/staff/bookings/{reference}/confirm")
    post(staff, f"/staff/bookings/{cancelled}/cancel_user")
    ask = "未了（日時をお電話でお知らせしてください）"

    def call_fact(reference):
        return _page(staff, f"/staff/bookings/{reference}").split("<dt>電話でのお知らせ</dt><dd>")[1].split("</dd>")[0]

    assert call_fact(ahead) == ask
    assert call_fact(cancelled) == "未記録"
    rt.clock.freeze(SAKATA_MONDAY + timedelta(minutes=15))
    login(staff)
    assert call_fact(ahead) == "未記録"
    post(staff, f"/staff/bookings/{ahead}/attended")
    assert call_fact(ahead) == "未記録"


def test_confirming_after_the_deadline_is_allowed_and_the_dashboard_says_it_is_late(rt, staff, fake_line, user):
    reference = make_request(rt, user_id=user.user_id)
    page = _page(staff, f"/staff/bookings/{reference}")
    assert "12/4(金) 17:00</dd>" in page and 'id="late-confirm"' not in page
    rt.clock.freeze(datetime(2026, 12, 7, 10, 0, tzinfo=TOKYO))   # the session's day, before its start
    login(staff)
    page = _page(staff, f"/staff/bookings/{reference}")
    assert "12/4(金) 17:00（過ぎています）" in page and 'id="late-confirm"' in page
    post(staff, f"/staff/bookings/{reference}/confirm")
    assert booking(rt, reference).status == "confirmed"
    page = _page(staff, f"/staff/bookings/{reference}")
    assert "承認しました。ご本人にLINEでお知らせします。予約の締切を過ぎてからの承認です" in page
    assert "承認（予約の締切後）" in page and "（過ぎています）" not in page
    # On the session's day the invitation can no longer go 「開催日の前日までに」: the task says by the start.
    how = page.split('id="invitation-how">')[1].split("</p>")[0]
    assert how == "求職者マイページに登録されたメールアドレスあてに、開始時刻までに会議招待メールをお送りください。"
    run_worker(rt)
    told = fake_line.texts_to(user.user_id)[-1]
    assert "予約が確定しました" in told and "開始時刻までに" in told and "前日までに" not in told


def test_a_proposal_accepted_on_the_session_day_promises_only_what_can_happen(rt, staff, fake_line, user):
    reference = make_request(rt, user_id=user.user_id, start=SAKATA_MONDAY + timedelta(days=7))
    rt.clock.freeze(datetime(2026, 12, 7, 9, 0, tzinfo=TOKYO))
    login(staff)
    post(staff, f"/staff/bookings/{reference}/propose", slot=SAKATA_MONDAY.isoformat())   # today, 14:00
    assert booking(rt, reference).status == "proposed"
    run_worker(rt)
    user.taps(postback_value(fake_line.messages_to(user.user_id), "この日時で予約する"))
    told = fake_line.texts_to(user.user_id)[-1]
    assert "予約が確定しました" in told and "12/7(月) 14:00" in told
    assert "開始時刻までに" in told and "前日までに" not in told


def test_a_request_whose_slot_has_begun_offers_no_approval_button(rt, staff):
    """承認 is refused once the slot has begun (the request expires): the page must not offer a button that fails."""
    reference = make_request(rt)
    assert 'data-action="confirm"' in _page(staff, f"/staff/bookings/{reference}")
    rt.clock.freeze(SAKATA_MONDAY + timedelta(minutes=1))   # before the worker expired it
    login(staff)
    page = _page(staff, f"/staff/bookings/{reference}")
    assert booking(rt, reference).status == "requested"
    assert 'data-action="confirm"' not in page and "開始時刻を過ぎたため、この申込はもう承認できません" in page


def test_before_deciding_the_page_says_what_the_user_will_be_told(rt, staff, user):
    from tests.staffkit import conversation

    page = _page(staff, f"/staff/bookings/{make_request(rt, user_id=user.user_id)}")
    assert "承認すると、ご本人にLINEで「予約が確定しました」と日時・参加のご案内が届きます。" in page
    told = page.split('id="told-decline"')[1].split("</details>")[0]
    assert "日程の都合がつかない" in told and "担当職員の都合がつかず、お受けすることができませんでした" in told
    assert "提案した日時と「この日時で予約する」「辞退する」のボタンが届きます" in page
    conversation(rt, "sakata", "U" + "b" * 32, followed=False)   # a user who blocked the account
    page = _page(staff, f"/staff/bookings/{make_request(rt, start=SAKATA_MONDAY + timedelta(hours=1), user_id='U' + 'b' * 32)}")
    assert "LINEでお知らせできません（ブロックされています）。承認したら、お電話で日時をお知らせください。" in page
    assert re.search(r'data-action="propose" disabled', page) and "別の日時は提案できません" in page


def test_a_proposal_not_yet_answered_says_too_what_the_user_will_be_told_on_decline(rt, staff, user):
    """Withdrawing an offer is an お断り the user reads like any other: the page of a proposed booking lists each
    reason's wording before its お断りする, as a request's page does."""
    reference = make_request(rt, user_id=user.user_id)
    post(staff, f"/staff/bookings/{reference}/propose", slot=(SAKATA_MONDAY + timedelta(days=7)).isoformat())
    assert booking(rt, reference).status == "proposed"
    page = _page(staff, f"/staff/bookings/{reference}")
    told = page.split('id="told-decline"')[1].split("</details>")[0]
    assert "日程の都合がつかない" in told and "担当職員の都合がつかず、お受けすることができませんでした" in told


def test_decline_is_a_second_button_inside_what_it_does(rt, staff, user):
    """お断り cannot be undone and tells the user at once: like 中止, the page offers it closed (a summary that
    opens it), and the button that declines is inside, named for what it does."""
    for status in ("requested", "proposed"):
        reference = make_request(rt, start=SAKATA_MONDAY + timedelta(hours=1 if status == "proposed" else 0),
                                 user_id="U" + status[0] * 32, status=status)
        page = _page(staff, f"/staff/bookings/{reference}")
        assert '<details class="block" id="decline">' in page, status
        before = page.split('<details class="block" id="decline">')[1].split('data-action="decline"')[0]
        assert before.count("</details>") == before.count("<details"), "the button is inside the closed block"
        assert "<summary>お断りする</summary>" in before
        assert "お断りは取り消せません" in before
        assert re.search(r'data-action="decline">お断りを確定して、ご本人に知らせる</button>', page)


def test_decline_and_propose_choose_nothing_for_the_member(rt, staff, fake_line, user):
    """Both tell the user at once and cannot be undone, yet the page chose for the member: 「日程の都合がつかない」 as
    the reason (a person refused as 対象外 was told to pick another date) and the first slot of the list as the
    date to propose. Each list now starts with 選んでください and must be chosen; a decline sent without a reason
    from the dashboard changes nothing and says so."""
    reference = make_request(rt, user_id=user.user_id)
    page = _page(staff, f"/staff/bookings/{reference}")
    for name in ("reason", "slot"):
        select = re.search(rf'<select id="{name}" name="{name}"[^>]*>(.*?)</select>', page, re.S)
        assert select and "required" in select.group(0).split(">")[0], name
        first = re.search(r"<option[^>]*>[^<]*</option>", select.group(1)).group(0)
        assert 'value=""' in first and "selected" in first and "選んでください" in first, first
    flashed = staff.get(post(staff, f"/staff/bookings/{reference}/decline").headers["Location"]).get_data(as_text=True)
    assert booking(rt, reference).status == "requested"
    assert "お断りの理由を選んでください。" in flashed and "何も変更していません" in flashed
    run_worker(rt)
    assert fake_line.texts_to(user.user_id) == []


def test_decline_with_a_reason_template(rt, staff, fake_line, user):
    reference = make_request(rt, user_id=user.user_id)
    post(staff, f"/staff/bookings/{reference}/decline", reason="details_unconfirmed")
    assert booking(rt, reference).status == "declined"
    run_worker(rt)
    told = fake_line.texts_to(user.user_id)[-1]
    assert "お申込みの内容を確認することができなかった" in told and "予約" in told
    assert post(staff, f"/staff/bookings/{reference}/decline", reason="nonsense").status_code == 302
    assert "申込内容を確認できない" in _page(staff, f"/staff/bookings/{reference}")


@pytest.mark.parametrize("office_id,start,offered",
                         [("otaru", OTARU_WEDNESDAY, True), ("sakata", SAKATA_MONDAY, False)])
def test_a_limit_on_how_often_one_may_use_the_service_is_a_reason_only_where_the_office_has_that_rule(
        rt, client, user_factory, fake_line, office_id, start, offered):
    """Otaru's notice: 「利用回数に制限を設ける場合があります」 (profile `booking.usage_limit_note`). Sakata's terms
    say nothing of the kind: its staff are not offered that reason and cannot give it."""
    user = user_factory(office_id)
    create_staff(rt, office=office_id)
    login(client)
    reference = make_request(rt, office=office_id, start=start, user_id=user.user_id)
    page = _page(client, f"/staff/bookings/{reference}")
    assert ('<option value="usage_limit">' in page) == offered
    assert ("対応できる職員や機材に限りがある" in page) == offered
    post(client, f"/staff/bookings/{reference}/decline", reason="usage_limit")
    assert booking(rt, reference).status == ("declined" if offered else "requested")
    run_worker(rt)
    assert any("対応できる職員や機材に限りがある" in t for t in fake_line.texts_to(user.user_id)) == offered


def test_every_rule_a_decline_reason_needs_is_a_booking_setting_of_the_profile():
    """A misspelt `needs` would silently hide its reason from every office."""
    import dataclasses

    from bot.offices import Booking as BookingRules
    from bot.staff.handoff import decline_reasons

    settings = {f.name for f in dataclasses.fields(BookingRules)}
    needs = [r["needs"] for r in decline_reasons("ja").values() if "needs" in r]
    assert needs and set(needs) <= settings


def test_propose_another_slot_and_the_user_accepts_in_chat(rt, staff, fake_line, user):
    reference = make_request(rt, user_id=user.user_id)
    other = SAKATA_MONDAY + timedelta(days=7, hours=1)
    answered = post(staff, f"/staff/bookings/{reference}/propose", slot=other.isoformat())
    row = booking(rt, reference)
    assert row.status == "proposed" and row.slot_start == other
    # What was done, then what the member does next, in that order (it said 「ご本人の返事を待っています。」 before
    # 「ご本人にLINEでお知らせします。」, waiting for an answer to a message not yet sent).
    flash = re.findall(r'<p class="flash[^>]*>(.*?)</p>', staff.get(answered.headers["Location"]).get_data(as_text=True),
                       re.S)[-1].strip()
    assert flash == ("別の日時を提案しました。ご本人にLINEでお知らせします。"
                     "ご本人のお返事（承諾または辞退）をお待ちください。承諾されると予約が確定します。"), flash
    run_worker(rt)
    offer = fake_line.messages_to(user.user_id)
    assert "12/14(月) 15:00" in fake_line.texts_to(user.user_id)[-2]
    user.taps(postback_value(offer, "この日時で予約する"))
    assert booking(rt, reference).status == "confirmed"
    assert "予約が確定しました" in fake_line.texts_to(user.user_id)[-1]
    assert "12/14(月) 15:00" in fake_line.texts_to(user.user_id)[-1]
    user.taps(postback_value(offer, "辞退する"))   # a late second tap changes nothing
    assert booking(rt, reference).status == "confirmed"
    assert "現在の状況は「予約確定」です" in fake_line.texts_to(user.user_id)[-1]
    # The original slot is free again; the proposed one is taken.
    with rt.db.reading() as s:
        taken = holds.taken_counts(s, "sakata", rt.clock.now())
    assert taken.get(SAKATA_MONDAY, 0) == 0 and taken[other] == 1


def test_a_started_request_is_not_proposed_another_slot_when_the_user_has_booked_again(rt, staff, fake_line, user):
    """A request whose slot began undecided no longer counts against the office's one open booking, so the user may
    request again; another slot proposed for the old one then would give them two open (found by
    tests/test_model_actors.py). Refused, and nothing changes; without a newer request it is proposed as before."""
    reference = make_request(rt, user_id=user.user_id)
    rt.clock.freeze(SAKATA_MONDAY + timedelta(minutes=5))   # started, undecided; the worker has not expired it yet
    assert login(staff).status_code == 302                  # days later: a new session
    other = SAKATA_MONDAY + timedelta(days=7, hours=1)
    again = make_request(rt, start=SAKATA_MONDAY + timedelta(days=7), user_id=user.user_id)   # the form allows it
    post(staff, f"/staff/bookings/{reference}/propose", slot=other.isoformat())
    row = booking(rt, reference)
    assert (row.status, row.slot_start) == ("requested", SAKATA_MONDAY)
    assert "ご本人はその後、別の申込をされています" in _page(staff, f"/staff/bookings/{reference}")
    post(staff, f"/staff/bookings/{again}/decline", reason="schedule")
    post(staff, f"/staff/bookings/{reference}/propose", slot=other.isoformat())
    assert booking(rt, reference).status == "proposed"


def test_proposing_a_slot_taken_while_the_page_was_open_changes_nothing_and_says_so(rt, staff, fake_line, user):
    reference = make_request(rt, user_id=user.user_id)
    other = SAKATA_MONDAY + timedelta(days=7, hours=1)
    assert other.isoformat() in _page(staff, f"/staff/bookings/{reference}")   # offered when the page opened
    make_request(rt, start=other, user_id="U" + "o" * 32)                    # meanwhile someone took it
    post(staff, f"/staff/bookings/{reference}/propose", slot=other.isoformat())
    row = booking(rt, reference)
    assert row.status == "requested" and row.slot_start == SAKATA_MONDAY
    page = _page(staff, f"/staff/bookings/{reference}")
    assert "選んだ日時は、開いている間にほかの申込で埋まったため、何も変更していません（ご本人へのお知らせもありません）。" in page
    assert f'value="{other.isoformat()}"' not in page.split('id="slot"')[1].split("</select>")[0]


def test_a_proposed_slot_is_never_confirmed_by_staff(rt, staff, fake_line, user):
    reference = make_request(rt, user_id=user.user_id)
    post(staff, f"/staff/bookings/{reference}/propose", slot=(SAKATA_MONDAY + timedelta(days=7)).isoformat())
    page = post(staff, f"/staff/bookings/{reference}/confirm")
    assert page.status_code == 302
    assert "ご本人のお返事" in staff.get(page.headers["Location"]).get_data(as_text=True)
    assert booking(rt, reference).status == "proposed"


def test_the_user_declines_a_proposal(rt, staff, fake_line, user, client):
    reference = make_request(rt, user_id=user.user_id)
    post(staff, f"/staff/bookings/{reference}/propose", slot=(SAKATA_MONDAY + timedelta(days=7)).isoformat())
    run_worker(rt)
    user.taps(postback_value(fake_line.messages_to(user.user_id), "辞退する"))
    assert booking(rt, reference).status == "declined"
    assert "辞退" in fake_line.texts_to(user.user_id)[-1]
    assert _actions(rt, reference)[-1] == "reject_proposal"


def test_a_proposal_postback_from_someone_else_changes_nothing(rt, staff, fake_line, user, user_factory):
    reference = make_request(rt, user_id=user.user_id)
    post(staff, f"/staff/bookings/{reference}/propose", slot=(SAKATA_MONDAY + timedelta(days=7)).isoformat())
    run_worker(rt)
    stranger = user_factory("sakata")
    stranger.taps(postback_value(fake_line.messages_to(user.user_id), "この日時で予約する"))
    assert booking(rt, reference).status == "proposed"


def test_attendance_only_after_the_start(rt, staff):
    reference = make_request(rt)
    post(staff, f"/staff/bookings/{reference}/confirm")
    post(staff, f"/staff/bookings/{reference}/no_show")
    assert booking(rt, reference).status == "confirmed"
    rt.clock.freeze(SAKATA_MONDAY + timedelta(minutes=11))
    login(staff)
    post(staff, f"/staff/bookings/{reference}/no_show")
    assert booking(rt, reference).status == "no_show"
    post(staff, f"/staff/bookings/{reference}/attended")
    assert booking(rt, reference).status == "no_show"


def test_a_no_show_only_after_the_offices_grace_period_attended_from_the_start(rt, staff):
    # Both offices: 「連絡がないまま…実施日時を10分経過した場合は、キャンセルとみなします」 (no_show_minutes: 10).
    late, present = make_request(rt), make_request(rt, start=SAKATA_MONDAY + timedelta(hours=1))
    for reference in (late, present):
        post(staff, f"/staff/bookings/{reference}/confirm")
    rt.clock.freeze(SAKATA_MONDAY + timedelta(minutes=1))
    login(staff)
    page = _page(staff, f"/staff/bookings/{late}")
    assert 'data-action="attended"' in page and 'data-action="no_show"' not in page
    assert "14:10 から記録できます" in page
    post(staff, f"/staff/bookings/{late}/no_show")
    assert booking(rt, late).status == "confirmed"
    assert "欠席（連絡なし）は、開始時刻から10分を過ぎるまで記録できません" in _page(staff, f"/staff/bookings/{late}")
    rt.clock.freeze(SAKATA_MONDAY + timedelta(minutes=9, seconds=59))
    login(staff)
    post(staff, f"/staff/bookings/{late}/no_show")
    assert booking(rt, late).status == "confirmed"
    rt.clock.freeze(SAKATA_MONDAY + timedelta(minutes=10))
    login(staff)
    assert 'data-action="no_show"' in _page(staff, f"/staff/bookings/{late}")
    post(staff, f"/staff/bookings/{late}/no_show")
    assert booking(rt, late).status == "no_show"
    # Said in the button's and the status's words (a bare 欠席 could be read as one the person told of).
    assert "欠席（連絡なし）を記録しました。" in _page(staff, f"/staff/bookings/{late}")
    rt.clock.freeze(SAKATA_MONDAY + timedelta(hours=1))   # attended: from the start itself
    login(staff)
    post(staff, f"/staff/bookings/{present}/attended")
    assert booking(rt, present).status == "attended"


def test_once_the_session_has_begun_its_attendance_comes_first_and_says_how_a_wrong_tap_is_corrected(rt, staff):
    reference = make_request(rt)
    post(staff, f"/staff/bookings/{reference}/confirm")

    def actions(page):
        return re.findall(r'<button type="submit" class="([a-z]*)"[^>]*? data-action="([a-z_]+)"', page)

    before = _page(staff, f"/staff/bookings/{reference}")
    assert actions(before)[:2] == [("", "invitation"), ("", "called")] and 'id="invitation-how"' in before
    assert "訂正" not in before
    rt.clock.freeze(SAKATA_MONDAY + timedelta(minutes=11))   # the session began 11 minutes ago
    login(staff)
    during = _page(staff, f"/staff/bookings/{reference}")
    assert actions(during)[:4] == [("", "attended"), ("secondary", "no_show"), ("secondary", "invitation"),
                                   ("secondary", "called")]
    assert "出欠は、押すとすぐに記録されます。押し間違えた場合は、記録した後にこの画面で、理由を添えて訂正できます。" in during
    assert 'id="invitation-how"' not in during
    post(staff, f"/staff/bookings/{reference}/attended")
    after = _page(staff, f"/staff/bookings/{reference}")
    assert "出欠は「出席」と記録済みです。" in after and "職員メモに正しい出欠" not in after
    assert 'data-action="no_show"' not in after and 'data-action="correct_attendance"' in after


def test_cancel_by_the_office_and_on_the_users_behalf(rt, staff, fake_line, user, user_factory):
    reference = make_request(rt, user_id=user.user_id)
    post(staff, f"/staff/bookings/{reference}/confirm")
    post(staff, f"/staff/bookings/{reference}/cancel_office")
    assert booking(rt, reference).status == "cancelled_by_office"
    run_worker(rt)
    assert "都合により中止" in fake_line.texts_to(user.user_id)[-1]
    other_user = user_factory("sakata")
    second = make_request(rt, start=SAKATA_MONDAY + timedelta(hours=1), user_id=other_user.user_id)
    post(staff, f"/staff/bookings/{second}/cancel_user", note="電話で取り消し")
    assert booking(rt, second).status == "withdrawn"
    run_worker(rt)
    assert "取り下げました" in fake_line.texts_to(other_user.user_id)[-1]


def test_a_cancellation_phoned_in_once_the_session_began_is_recorded_in_its_own_words(rt, staff, fake_line, user):
    """キャンセルの場合は、電話にてご連絡を (Otaru: on the day, by phone only): a call at 14:05, within the 10
    minutes before a no-show, is recorded as a cancellation (said so, not 「取り下げ」; and no slot is 「空き」 any
    more for a session that began)."""
    reference = make_request(rt, user_id=user.user_id, status="confirmed")
    rt.clock.freeze(SAKATA_MONDAY + timedelta(minutes=5))
    login(staff)
    told = _page(staff, f"/staff/bookings/{reference}").split('id="told-cancel-user">')[1].split("</p>")[0]
    assert "キャンセルすると、ご本人にLINEで" in told and "枠が空き" not in told
    post(staff, f"/staff/bookings/{reference}/cancel_user", note="本人より電話")
    flash = _page(staff, f"/staff/bookings/{reference}").split('class="flash')[1].split("</p>")[0]
    assert "ご本人の申し出による予約のキャンセルを記録しました。" in flash and "取り下げ" not in flash
    assert booking(rt, reference).status == "cancelled"
    requested = make_request(rt, start=SAKATA_MONDAY + timedelta(days=7), user_id=user.user_id)
    told = _page(staff, f"/staff/bookings/{requested}").split('id="told-cancel-user">')[1].split("</p>")[0]
    assert "取り下げすると、枠が空き、" in told
    post(staff, f"/staff/bookings/{requested}/cancel_user")
    assert "ご本人の申し出による申込の取り下げを記録しました。" in _page(staff, f"/staff/bookings/{requested}")


def test_a_second_stop_of_a_users_online_booking_says_it_is_already_stopped(rt, staff, user):
    """Two members (or a double tap) stopping the same person's online booking: the second was told
    「すでに済んでいます（現在: 確認待ち）」, the booking's status, which says nothing of the stop."""
    reference = make_request(rt, user_id=user.user_id)
    post(staff, f"/staff/bookings/{reference}/block_user")
    _page(staff, f"/staff/bookings/{reference}")
    post(staff, f"/staff/bookings/{reference}/block_user")
    flash = _page(staff, f"/staff/bookings/{reference}").split('class="flash')[1].split("</p>")[0]
    assert "この方のオンライン予約は、すでに停止しています" in flash and "現在: 確認待ち" not in flash
    post(staff, f"/staff/bookings/{reference}/unblock_user")
    _page(staff, f"/staff/bookings/{reference}")
    post(staff, f"/staff/bookings/{reference}/unblock_user")
    flash = _page(staff, f"/staff/bookings/{reference}").split('class="flash')[1].split("</p>")[0]
    assert "この方のオンライン予約は、すでに再開しています" in flash and "現在: 確認待ち" not in flash


def test_block_a_users_online_booking_after_no_shows(rt, staff, fake_line, user):
    reference = make_request(rt, user_id=user.user_id)
    post(staff, f"/staff/bookings/{reference}/block_user")
    with rt.db.reading() as s:
        assert s.scalar(select(Conversation.booking_blocked).where(Conversation.line_user_id == user.user_id))
    post(staff, f"/staff/bookings/{reference}/cancel_user")
    user.says("予約")
    assert "予約をお受けできません" in fake_line.texts_to(user.user_id)[-1]
    post(staff, f"/staff/bookings/{reference}/unblock_user")
    with rt.db.reading() as s:
        assert not s.scalar(select(Conversation.booking_blocked).where(Conversation.line_user_id == user.user_id))
    assert "block_user" in _actions(rt, reference) and "unblock_user" in _actions(rt, reference)


def test_a_request_shows_the_same_job_seeker_number_on_other_line_accounts(rt, staff, user, user_factory):
    """The form takes a request whatever its number (its answer must not tell a stranger typing someone's number
    that they booked, or were refused): staff see the same number's open request and stop on another account,
    and cannot confirm while that account is stopped."""
    first = make_request(rt, user_id=user.user_id)
    again = make_request(rt, start=SAKATA_MONDAY + timedelta(days=7), user_id=user_factory("sakata").user_id)
    same = _page(staff, f"/staff/bookings/{again}").split('id="same-number"')[1].split("</dd>")[0]
    assert first in same and "停止中" not in same
    # The caller may be the stranger who typed the number: the call must not tell them what the form kept back.
    assert "お電話では、同じ番号の別の申込・予約があることやその日時を伝えずに" in same
    post(staff, f"/staff/bookings/{first}/block_user")
    post(staff, f"/staff/bookings/{first}/cancel_user")
    same = _page(staff, f"/staff/bookings/{again}").split('id="same-number"')[1].split("</dd>")[0]
    assert first not in same and "停止中" in same
    post(staff, f"/staff/bookings/{again}/confirm")
    assert "停止中です" in _page(staff, f"/staff/bookings/{again}") and booking(rt, again).status == "requested"
    alone = make_request(rt, start=SAKATA_MONDAY + timedelta(days=14), user_id=user_factory("sakata").user_id,
                         details={**DETAILS["sakata"], "seeker_number": "77777-123456"})
    assert 'id="same-number"' not in _page(staff, f"/staff/bookings/{alone}")


def test_approving_a_job_seeker_number_another_line_account_has_booked_asks_for_the_check_first(
        rt, staff, user, user_factory):
    """The same number confirmed on another LINE account: the page says approving makes two bookings of one
    number, and approving (or proposing, which the user's yes confirms) needs the member's tick that they checked
    by phone; without it nothing changes."""
    first = make_request(rt, user_id=user.user_id)
    post(staff, f"/staff/bookings/{first}/confirm")
    assert booking(rt, first).status == "confirmed"
    again = make_request(rt, start=SAKATA_MONDAY + timedelta(days=7), user_id=user_factory("sakata").user_id)
    page = _page(staff, f"/staff/bookings/{again}")
    same = page.split('id="same-number"')[1].split("</dd>")[0]
    assert "同じ求職番号の予約が2件になります" in same and first in same
    assert f"上の受付番号のうち {first} は、すでに確定" in same     # not a bare 「うち」 two sentences after the list
    assert 'name="same_number_checked"' in page.split('data-action="confirm"')[0].rsplit("<form", 1)[1]
    post(staff, f"/staff/bookings/{again}/confirm")
    assert booking(rt, again).status == "requested"
    assert "何も変更していません" in _page(staff, f"/staff/bookings/{again}")
    post(staff, f"/staff/bookings/{again}/propose", slot=(SAKATA_MONDAY + timedelta(days=8)).isoformat())
    assert booking(rt, again).status == "requested"
    post(staff, f"/staff/bookings/{again}/confirm", same_number_checked="1")
    assert booking(rt, again).status == "confirmed"


def test_a_request_shows_the_persons_earlier_no_shows(rt, staff, user, user_factory):
    """第6条(3) / 第4条(3): after a no-show 「今後のオンライン職業相談の利用をお断りする場合があります」. Staff
    deciding the person's next request (or taking one by phone) see the earlier no-shows, from the same LINE
    account or the same job seeker number; nobody else's."""
    missed = make_request(rt, user_id=user.user_id)
    post(staff, f"/staff/bookings/{missed}/confirm")
    rt.clock.freeze(SAKATA_MONDAY + timedelta(minutes=11))
    login(staff)
    post(staff, f"/staff/bookings/{missed}/no_show")
    assert booking(rt, missed).status == "no_show"
    again = make_request(rt, start=SAKATA_MONDAY + timedelta(days=7), user_id=user.user_id,
                         details={**DETAILS["sakata"], "seeker_number": "55555-123456"})
    page = _page(staff, f"/staff/bookings/{again}")
    assert "これまでの欠席（連絡なし）" in page and missed in page.split('id="earlier-no-shows"')[1].split("</dd>")[0]
    phoned = _new(staff, slot=(SAKATA_MONDAY + timedelta(days=7, hours=1)).isoformat(),
                  seeker_number=DETAILS["sakata"]["seeker_number"]).headers["Location"]
    assert missed in _page(staff, phoned).split('id="earlier-no-shows"')[1].split("</dd>")[0]
    other = make_request(rt, start=SAKATA_MONDAY + timedelta(days=7, hours=2), user_id=user_factory("sakata").user_id,
                         details={**DETAILS["sakata"], "seeker_number": "77777-123456"})
    assert "これまでの欠席" not in _page(staff, f"/staff/bookings/{other}")
    assert "これまでの欠席" not in _page(staff, f"/staff/bookings/{missed}")   # not the booking itself


def test_bookings_matched_only_by_a_number_typed_on_another_line_account_are_marked_as_such(
        rt, staff, user, user_factory):
    """Anyone may type someone else's job seeker number on the form (its answer must not tell them whose it is).
    A stranger who books with the victim's number and stays away must not pass for the victim: the no-show listed
    on the victim's next request, and the victim's bookings listed on the stranger's no-show (which a refusal of
    further use would concern), say they came from another LINE account with the same number, for staff to check
    by phone; the person's own account's bookings are not marked."""
    stranger = user_factory("sakata")
    mine = make_request(rt, start=SAKATA_MONDAY + timedelta(days=14), user_id=user.user_id)
    missed = make_request(rt, user_id=stranger.user_id)   # the victim's number (DETAILS) typed by a stranger
    post(staff, f"/staff/bookings/{missed}/confirm")
    rt.clock.freeze(SAKATA_MONDAY + timedelta(minutes=11))
    login(staff)
    post(staff, f"/staff/bookings/{missed}/no_show")
    ahead = _page(staff, f"/staff/bookings/{missed}").split('id="other-open">')[1].split("</dd>")[0]
    assert mine in ahead and "別のLINEアカウント" in ahead
    again = make_request(rt, start=SAKATA_MONDAY + timedelta(days=7), user_id=user.user_id)
    page = _page(staff, f"/staff/bookings/{again}")
    missed_line = page.split('id="earlier-no-shows"')[1].split("</dd>")[0]
    assert missed in missed_line and "別のLINEアカウント" in missed_line and "お電話で確かめて" in missed_line
    own = page.split('id="other-open">')[1].split("</dd>")[0]
    assert mine in own and "別のLINEアカウント" not in own   # the same account's: the person's own


@pytest.mark.parametrize("office_id,start,shown", [("otaru", OTARU_WEDNESDAY, True), ("sakata", SAKATA_MONDAY, False)])
def test_a_request_shows_how_often_the_person_used_the_service_where_the_office_may_limit_it(
        rt, client, user_factory, office_id, start, shown):
    """Otaru's notice: 「対応スタッフや機材に限られることから、利用回数に制限を設ける場合があります」. Staff deciding a
    request (and who may decline it for that reason) see how many sessions the person attended, from the same LINE
    account; Sakata's terms set no such limit, and its pages say nothing of it."""
    user = user_factory(office_id)
    create_staff(rt, office=office_id)
    login(client)
    used = make_request(rt, office=office_id, start=start, user_id=user.user_id)
    post(client, f"/staff/bookings/{used}/confirm")
    rt.clock.freeze(start + timedelta(minutes=1))
    login(client)
    post(client, f"/staff/bookings/{used}/attended")
    assert booking(rt, used).status == "attended"
    again = make_request(rt, office=office_id, start=start + timedelta(days=7), user_id=user.user_id)
    page = _page(client, f"/staff/bookings/{again}")
    assert ('id="earlier-sessions"' in page) == shown
    if shown:
        line = page.split('id="earlier-sessions"')[1].split("</dd>")[0]
        assert "1回" in line and used in line and "利用回数に制限を設ける場合があります" in line
        first = make_request(rt, office=office_id, start=start + timedelta(days=7, hours=1),
                             user_id=user_factory(office_id).user_id,
                             details={**DETAILS[office_id], "seeker_number": "77777-123456"})   # someone else
        assert "なし" in _page(client, f"/staff/bookings/{first}").split('id="earlier-sessions"')[1].split("</dd>")[0]


@pytest.mark.parametrize("year", ["0001", "9999"])
def test_a_date_far_out_is_a_typing_mistake_on_every_page_never_an_error(rt, staff, year):
    """A date of year 1 or 9999 (typed, or an edited address) overflowed at the time zone's edge or a day after
    it: the day's page, the export, a block and a phone booking failed with 500. Taken as a mistake, as the audit
    log's period is: the day's page opens at today, the others refuse it kindly and change nothing."""
    staff.application.config["PROPAGATE_EXCEPTIONS"] = False
    assert staff.get(f"/staff/?from={year}-12-31").status_code == 200
    assert post(staff, "/staff/export", **{"from": f"{year}-01-01", "to": f"{year}-01-02"}).status_code == 400
    assert post(staff, "/staff/blocks", day=f"{year}-01-01").status_code == 400
    assert post(staff, "/staff/bookings/new", slot=f"{year}-01-01T10:00:00", source="phone",
                name="窓口 一郎").status_code == 400
    with rt.db.reading() as s:
        assert s.scalar(select(SlotBlock.id)) is None and s.scalar(select(Booking.id)) is None


# -- phone and window bookings --------------------------------------------------------------------

def _new(staff, **data):
    form = {"source": "phone", "slot": SAKATA_MONDAY.isoformat(), "name": "窓口 一郎",
            "seeker_number": "１２３４５６７８９", **data}
    return post(staff, "/staff/bookings/new", **form)


def test_a_request_shows_the_persons_next_session_booked_during_a_session(rt, staff, user, user_factory):
    """Sakata 第6条(1): 「2回目以降の予約申込みは、オンライン職業相談の際にも行うことができます」. Staff register it
    (オンライン相談中（次回の予約）); it has no LINE account, so the chat lets the person request another slot too:
    the request's page lists the booking already ahead under the same job seeker number, before 承認."""
    nxt = _new(staff, source="online", slot=(SAKATA_MONDAY + timedelta(days=7)).isoformat(),
               seeker_number=DETAILS["sakata"]["seeker_number"]).headers["Location"].rsplit("/", 1)[1]
    again = make_request(rt, user_id=user.user_id)
    line = _page(staff, f"/staff/bookings/{again}").split('id="other-open">')[1].split("</dd>")[0]
    assert nxt in line and "確定" in line and "オンライン相談中" in line
    other = make_request(rt, start=SAKATA_MONDAY + timedelta(hours=1), user_id=user_factory("sakata").user_id,
                         details={**DETAILS["sakata"], "seeker_number": "77777-123456"})
    assert 'id="other-open"' not in _page(staff, f"/staff/bookings/{other}")
    post(staff, f"/staff/bookings/{again}/confirm")
    assert 'id="other-open"' not in _page(staff, f"/staff/bookings/{again}")   # decided: nothing left to weigh


def test_a_no_show_lists_the_persons_bookings_still_ahead(rt, staff, user):
    """Sakata 第6条(3): after an unannounced absence 「今後のオンライン職業相談の利用をお断りする場合があります」:
    the absence's page lists the bookings the person still has ahead (one registered during an earlier session),
    the ones such a refusal would concern."""
    missed = make_request(rt, user_id=user.user_id)
    post(staff, f"/staff/bookings/{missed}/confirm")
    nxt = _new(staff, source="online", slot=(SAKATA_MONDAY + timedelta(days=7)).isoformat(),
               seeker_number=DETAILS["sakata"]["seeker_number"],
               override_reason="相談中に次回を受付").headers["Location"].rsplit("/", 1)[1]
    assert 'id="other-open"' not in _page(staff, f"/staff/bookings/{missed}")   # confirmed: not asked
    rt.clock.freeze(SAKATA_MONDAY + timedelta(minutes=11))
    login(staff)
    post(staff, f"/staff/bookings/{missed}/no_show")
    line = _page(staff, f"/staff/bookings/{missed}").split('id="other-open">')[1].split("</dd>")[0]
    assert nxt in line and "今後のご利用をお断りする場合は" in line


def test_a_phone_booking_takes_the_slot_from_the_bot(rt, staff, user):
    assert _page(staff, "/staff/bookings/new")
    response = _new(staff)
    assert response.status_code == 302
    with rt.db.reading() as s:
        row = s.scalar(select(Booking).where(Booking.source == "phone"))
        assert row.status == "confirmed" and row.conversation_id is None
        page = holds.week_page(s, rt.offices["sakata"], rt.clock.now(), 0)
    assert SAKATA_MONDAY.isoformat() not in [slot["start"] for slot in page["slots"]]
    detail = _revealed(staff, response.headers["Location"])
    assert "窓口 一郎" in detail and "12345-6789" in detail and "電話" in detail
    assert _new(staff).status_code == 400      # the slot is taken now


def test_a_full_slot_past_its_deadline_reads_as_full_on_the_phone_booking_page(rt, staff, user):
    """A session booked for today is past its deadline and full: the list called it 「予約の締切を過ぎた枠です」, and
    offered it, first of all (so chosen already), as a slot to book with an exception's reason, which then failed
    as full after the member had typed the caller's details. Full is what cannot be overridden: it says so, and it
    cannot be chosen; and the list chooses no slot for the member."""
    taken = make_request(rt, user_id=user.user_id)          # Monday 12/7 14:00
    post(staff, f"/staff/bookings/{taken}/confirm")
    rt.clock.freeze(SAKATA_MONDAY - timedelta(hours=5))     # the session's morning: past its deadline
    login(staff)
    page = _page(staff, "/staff/bookings/new")
    select = re.search(r'<select id="slot"[^>]*>(.*?)</select>', page, re.S).group(1)
    options = [re.sub(r"\s+", " ", o) for o in re.findall(r"<option[^>]*>[^<]*</option>", select)]
    assert 'value=""' in options[0] and "selected" in options[0], options[0]
    today = next(o for o in options if SAKATA_MONDAY.isoformat() in o)
    assert "埋まっています" in today and "disabled" in today, today
    later = next(o for o in options if (SAKATA_MONDAY + timedelta(hours=1)).isoformat() in o)
    assert "予約の締切を過ぎた枠です" in later and "disabled" not in later, later


def test_staff_are_told_when_the_user_cannot_be_told_on_line(rt, staff, fake_line):
    """A phone booking has no LINE chat and a user who blocked the account gets no push: the dashboard must not
    say 「ご本人にLINEでお知らせします」 then, but ask staff to phone them; nor offer them a slot to answer in LINE."""
    phoned = _new(staff).headers["Location"].rsplit("/", 1)[1]
    post(staff, f"/staff/bookings/{phoned}/cancel_office")
    page = _page(staff, f"/staff/bookings/{phoned}")
    assert "中止を記録しました" in page and "LINEではご本人にお知らせできません" in page
    assert "ご本人にLINEでお知らせします" not in page
    conversation(rt, "sakata", "U" + "b" * 32, followed=False)   # blocked the account after asking
    blocked = make_request(rt, start=SAKATA_MONDAY + timedelta(hours=1), user_id="U" + "b" * 32)
    post(staff, f"/staff/bookings/{blocked}/propose", slot=(SAKATA_MONDAY + timedelta(days=7)).isoformat())
    page = _page(staff, f"/staff/bookings/{blocked}")
    assert booking(rt, blocked).status == "requested" and "別の日時は提案できません" in page
    post(staff, f"/staff/bookings/{blocked}/confirm")
    page = _page(staff, f"/staff/bookings/{blocked}")
    assert "承認しました" in page and "LINEではご本人にお知らせできません" in page
    reachable = make_request(rt, start=SAKATA_MONDAY + timedelta(hours=2), user_id="U" + "r" * 32,
                             details={**DETAILS["sakata"], "seeker_number": "77777-123456"})   # another person
    post(staff, f"/staff/bookings/{reachable}/confirm")
    page = _page(staff, f"/staff/bookings/{reachable}")
    assert "承認しました。ご本人にLINEでお知らせします。" in page and "お知らせできません" not in page


def test_a_next_booking_asked_for_during_an_online_session(rt, staff):
    """Both offices: the next booking can be made during an online session (第4条(1), notices)."""
    response = _new(staff, source="online")
    assert response.status_code == 302
    with rt.db.reading() as s:
        assert s.scalar(select(Booking.source)) == "online"
    assert "オンライン相談中" in _page(staff, response.headers["Location"])
    assert _new(staff, source="email", slot=(SAKATA_MONDAY + timedelta(days=7)).isoformat()).status_code == 400


def test_overrides_need_a_reason(rt, staff):
    late = datetime(2026, 11, 30, 14, 0, tzinfo=TOKYO) + timedelta(days=7)  # Monday 12/7 ... use Otaru? no: notice
    rt.clock.freeze(datetime(2026, 12, 5, 10, 0, tzinfo=TOKYO))          # Saturday: Monday's deadline passed
    login(staff)
    refused = _new(staff, slot=late.isoformat())
    assert refused.status_code == 400 and "締切を過ぎた" in refused.get_data(as_text=True)
    assert _new(staff, slot=late.isoformat(), override_reason="所長の判断で受付").status_code == 302
    # One open booking per person: the same number again needs a reason too.
    again = _new(staff, slot=(late + timedelta(days=7)).isoformat())
    assert again.status_code == 400 and "すでに" in again.get_data(as_text=True)
    assert _new(staff, slot=(late + timedelta(days=7)).isoformat(), override_reason="本人の希望").status_code == 302
    with rt.db.reading() as s:
        reasons = s.scalars(select(BookingHandoff.override_reason)).all()
    assert sorted(personal.open_note(rt, reason) for reason in reasons) == ["所長の判断で受付", "本人の希望"]


def test_a_phone_booking_for_a_person_refused_online_booking_needs_a_reason(rt, staff, user):
    """Staff stopped this person's online booking (a no-show: 「今後のオンライン職業相談の利用をお断りする場合が
    あります」). Another member taking their call books them again only on purpose, with a reason."""
    missed = make_request(rt, user_id=user.user_id)
    post(staff, f"/staff/bookings/{missed}/block_user")
    post(staff, f"/staff/bookings/{missed}/cancel_user")
    later = (SAKATA_MONDAY + timedelta(days=7)).isoformat()
    refused = _new(staff, slot=later, seeker_number=DETAILS["sakata"]["seeker_number"])
    assert refused.status_code == 400 and "オンライン予約を停止中" in refused.get_data(as_text=True)
    assert _new(staff, slot=later, seeker_number=DETAILS["sakata"]["seeker_number"],
                override_reason="所長の判断で受付").status_code == 302
    post(staff, f"/staff/bookings/{missed}/unblock_user")
    again = _new(staff, slot=(SAKATA_MONDAY + timedelta(days=14)).isoformat(),
                 seeker_number=DETAILS["sakata"]["seeker_number"])
    assert again.status_code == 400 and "オンライン予約を停止中" not in again.get_data(as_text=True)  # one open


def test_the_override_reason_is_stored_encrypted_and_shown_decrypted(rt, staff):
    """Staff write personal things into the reason too (who phoned, their number, their illness)."""
    rt.clock.freeze(datetime(2026, 12, 5, 10, 0, tzinfo=TOKYO))          # Saturday: Monday's deadline passed
    login(staff)
    response = _new(staff, override_reason=f"  {OVERRIDE}\n")
    assert response.status_code == 302
    with rt.db.reading() as s:
        stored = s.scalar(select(BookingHandoff.override_reason))
    assert isinstance(stored, bytes) and b"090-9999-8888" not in stored and OVERRIDE.encode() not in stored
    assert personal.open_note(rt, stored) == OVERRIDE
    assert OVERRIDE not in _page(staff, response.headers["Location"])
    assert f"<dd>{OVERRIDE}</dd>" in _revealed(staff, response.headers["Location"])
    assert "090-9999-8888" not in _page(staff, "/staff/audit")
    # No override needed: whatever was typed as a reason is not kept.
    assert _new(staff, slot=(SAKATA_MONDAY + timedelta(days=7)).isoformat(), seeker_number="98765-432109",
                override_reason=OVERRIDE).status_code == 302
    with rt.db.reading() as s:
        assert sorted(r is None for r in s.scalars(select(BookingHandoff.override_reason))) == [False, True]


def test_a_phone_booking_checks_the_number_like_the_form(rt, staff):
    response = _new(staff, seeker_number="ABC-123")
    assert response.status_code == 400 and "求職番号" in response.get_data(as_text=True)
    assert _new(staff, name="").status_code == 400


# -- search, blocks, outbox, groups ---------------------------------------------------------------

def test_search_by_job_seeker_number_through_the_keyed_hash(rt, staff):
    reference = make_request(rt)
    found = post(staff, "/staff/search", seeker_number="１２３４５６７８９０１")
    assert found.status_code == 200 and reference in found.get_data(as_text=True)
    none = post(staff, "/staff/search", seeker_number="99999-1")
    assert reference not in none.get_data(as_text=True)
    assert post(staff, "/staff/search", seeker_number="求人12").status_code == 400
    with rt.db.reading() as s:
        entries = s.scalars(select(AuditEntry).where(AuditEntry.action == "search")).all()
    assert len(entries) == 3 and all("12345" not in str(e.detail) for e in entries)


def test_open_a_booking_by_the_reference_a_caller_reads_out(rt, staff):
    reference = make_request(rt)
    assert "受付番号で開く" in _page(staff, "/staff/search")
    typed = "受付番号: " + reference.lower().replace("-", " ")
    wide = reference.translate(str.maketrans("ABCDEFGHJKLMNPQRSTUVWXYZ23456789-",
                                             "ＡＢＣＤＥＦＧＨＪＫＬＭＮＰＱＲＳＴＵＶＷＸＹＺ２３４５６７８９－"))
    for text in (reference, typed, wide):
        response = staff.get("/staff/search", query_string={"reference": text})
        assert response.status_code == 302 and response.headers["Location"] == f"/staff/bookings/{reference}"
    missing = staff.get("/staff/search", query_string={"reference": "ZZZZ-ZZZZ"})
    assert missing.status_code == 404 and "見つかりませんでした" in missing.get_data(as_text=True)
    other = make_request(rt, office="otaru", start=OTARU_WEDNESDAY)
    assert staff.get("/staff/search", query_string={"reference": other}).status_code == 404   # another office


def test_block_and_unblock_a_day(rt, staff, user):
    post(staff, "/staff/blocks", day="2026-12-07", reason="研修")
    with rt.db.reading() as s:
        page = holds.week_page(s, rt.offices["sakata"], rt.clock.now(), 0)
        block_id = s.scalar(select(SlotBlock.id))
    assert page["slots"] == [] or all(not slot["start"].startswith("2026-12-07") for slot in page["slots"])
    post(staff, f"/staff/blocks/{block_id}/delete", day="2026-12-07")
    with rt.db.reading() as s:
        page = holds.week_page(s, rt.offices["sakata"], rt.clock.now(), 0)
    assert any(slot["start"].startswith("2026-12-07") for slot in page["slots"])
    assert _actions(rt)[-2:] == ["block_day", "unblock_day"]


def test_unblock_pressed_on_an_old_page_never_opens_another_day(rt, staff):
    """停止を解除 names its block by id; once the block was lifted, SQLite gives that id to the next block made.
    The button pressed again on the old page must not open that other day: it says the block is gone."""
    post(staff, "/staff/blocks", day="2026-12-07")
    page = _page(staff, "/staff/?from=2026-12-07")
    action = re.search(r'action="(/staff/blocks/\d+/delete)"', page).group(1)
    form = {"day": "2026-12-07"}
    assert 'name="day" value="2026-12-07"' in page.split(action, 1)[1].split("</form>", 1)[0]
    post(staff, action, **form)                          # a colleague lifts it
    post(staff, "/staff/blocks", day="2026-12-14")       # and someone blocks another day (the same id on SQLite)
    response = staff.post(action, data={**form, "csrf_token": csrf(staff)}, follow_redirects=True)
    assert "この停止は、すでに解除されています" in response.get_data(as_text=True)
    with rt.db.reading() as s:
        assert s.scalars(select(SlotBlock.day)).all() == ["2026-12-14"]
    assert _actions(rt)[-3:] == ["block_day", "unblock_day", "block_day"]


def test_unblock_without_the_pages_day_is_refused(rt, staff):
    post(staff, "/staff/blocks", day="2026-12-07")
    with rt.db.reading() as s:
        block_id = s.scalar(select(SlotBlock.id))
    response = staff.post(f"/staff/blocks/{block_id}/delete", data={"csrf_token": csrf(staff)})
    assert response.status_code == 400
    with rt.db.reading() as s:
        assert s.scalars(select(SlotBlock.day)).all() == ["2026-12-07"]


def test_a_block_reason_is_stored_encrypted_and_shown_decrypted(rt, staff):
    """Why staff blocked a day is free text, so it may name someone: sealed like the 職員メモ."""
    reason = "本人より電話 090-9999-8888 通院の付き添い"
    post(staff, "/staff/blocks", day="2026-12-07", reason=f"  {reason} ")
    post(staff, "/staff/blocks", day="2026-12-14", reason="   ")          # blank: nothing is kept
    with rt.db.reading() as s:
        stored = dict(s.execute(select(SlotBlock.day, SlotBlock.reason)).all())
    assert isinstance(stored["2026-12-07"], bytes) and b"090-9999-8888" not in stored["2026-12-07"]
    assert personal.open_note(rt, stored["2026-12-07"]) == reason and stored["2026-12-14"] is None
    assert f"（理由: {reason}）" in _page(staff, "/staff/?from=2026-12-07")


def test_unblocking_opens_a_slot_two_members_blocked_at_the_same_moment(rt, staff):
    """Two blocks of one slot (both members saw none, both added one): 停止を解除 on either opens the slot."""
    start = SAKATA_MONDAY
    with rt.db.transaction() as s:
        for _ in range(2):
            s.add(SlotBlock(office_id="sakata", day="2026-12-07", slot_start=start, created_at=rt.clock.now()))
        s.add(SlotBlock(office_id="sakata", day="2026-12-07", slot_start=start + timedelta(hours=1),
                        created_at=rt.clock.now()))
    with rt.db.reading() as s:
        first = s.scalar(select(SlotBlock.id).where(SlotBlock.slot_start == start).order_by(SlotBlock.id))
    post(staff, f"/staff/blocks/{first}/delete", day="2026-12-07", slot=start.isoformat())
    with rt.db.reading() as s:
        assert s.scalars(select(SlotBlock.slot_start)).all() == [start + timedelta(hours=1)]


def test_the_outbox_page_shows_held_and_failed_rows_with_the_reason(rt, staff, fake_line, user):
    reference = make_request(rt, user_id=user.user_id)
    post(staff, f"/staff/bookings/{reference}/confirm")
    fake_line.fail_next(1, 429, path_contains="push", body={"message": "You have reached your monthly limit."})
    run_worker(rt)
    page = _page(staff, "/staff/outbox")
    assert "保留（月間の送信上限）" in page and "送信数の上限" in page
    assert outbox_rows(rt, status="held")


def test_the_outbox_page_says_in_words_what_each_message_is_and_links_its_booking(rt, staff, fake_line, user):
    """A busy member of staff can tell whom to phone: the message's kind in plain words and its 受付番号."""
    from tests.test_outbox import push

    reference = make_request(rt, user_id=user.user_id)
    post(staff, f"/staff/bookings/{reference}/confirm")
    push(rt, "U" + "9" * 32, "お知らせです。")       # a message about no booking
    fake_line.quota_limit = 0
    try:
        run_worker(rt)
    finally:
        fake_line.quota_limit = None
    assert [r.booking_reference for r in outbox_rows(rt, kind="push")] == [reference, None]
    page = _page(staff, "/staff/outbox")
    [confirmed, chat] = re.findall(r'<tr class="outbox-[a-z]+">(.*?)</tr>', page, re.S)[::-1]
    assert "予約確定のお知らせ（利用者へ）" in confirmed and "outcome_confirmed" not in page
    assert f'<a href="/staff/bookings/{reference}">受付番号 {reference}</a>' in confirmed
    assert "12/7(月) 14:00" in confirmed and "確定" in confirmed
    assert "トークでの返信（利用者へ）" in chat and "申込に関係しないメッセージ" in chat and "受付番号" not in chat


def test_the_outbox_page_names_the_invitation_card_as_the_office_does(make_app, fake_line):
    app = make_app(env={"LINE_STAFF_GROUP_ID_OTARU": "C" + "7" * 32})
    rt, client = app.extensions["madoguchi"], app.test_client()
    create_staff(rt, office="otaru")
    login(client)
    reference = make_request(rt, office="otaru", start=OTARU_WEDNESDAY, notify=False, status="confirmed")
    with rt.db.transaction() as s:   # the worker's reminder, carded to the group while the quota is spent
        rt.notify_staff(s, rt.offices["otaru"], "invitation", booking(rt, reference).id, rt.clock.now())
    fake_line.quota_limit = 0
    try:
        run_worker(rt)
    finally:
        fake_line.quota_limit = None
    post(client, f"/staff/bookings/{reference}/invitation")
    rt.clock.freeze(rt.clock.now() + timedelta(minutes=30))
    run_worker(rt)   # recorded meanwhile: the card is not sent after all
    login(client)
    [card] = re.findall(r'<tr class="outbox-stale">(.*?)</tr>', _page(client, "/staff/outbox"), re.S)
    assert "職員グループへの通知（ミーティングID・パスワードのお知らせが未記録）" in card
    assert "ミーティングID・パスワードのお知らせが記録されました。" in card and "招待" not in card


def test_every_kind_of_queued_message_has_a_name_for_staff():
    """LINE送信状況 names each message in words: every purpose the code queues, every template pushed to a user
    about a booking, every staff card's notice and every reason a message was dropped."""
    from pathlib import Path

    from bot import notify
    from bot.services import staleness
    from bot.staff import export

    root = Path(__file__).resolve().parent.parent
    names = export.labels()
    templates = {p.name.split(".")[0] for p in (root / "templates" / "messages" / "ja").iterdir()}
    purposes = {"chat"}   # the default purpose (bot/outbox.py)
    for path in (root / "bot").rglob("*.py"):
        purposes |= set(re.findall(r'purpose="([a-z_]+)"', path.read_text(encoding="utf-8")))
    for name in ("staff/decisions.py", "booking_jobs.py", "staff/jobs.py"):
        purposes |= set(re.findall(r'"([a-z_]+)"', (root / "bot" / name).read_text(encoding="utf-8"))) & templates
    assert {"chat", "staff_card", "outcome_confirmed", "reminder_day_before", "receipt"} <= purposes
    assert purposes <= set(names["outbox"]["messages"])
    assert set(notify.CARD_SWITCH) | set(notify.CARD_BUTTONS) | {"withdrawn", "cancelled", "expired"} \
        <= set(names["notices"])
    assert set(staleness.REASONS) == set(names["outbox"]["stale"])


def test_the_booking_page_says_when_the_user_has_not_been_told_on_line(rt, staff, fake_line, user):
    reference = make_request(rt, user_id=user.user_id)
    run_worker(rt)
    assert 'id="undelivered"' not in _page(staff, f"/staff/bookings/{reference}")
    post(staff, f"/staff/bookings/{reference}/confirm")
    fake_line.quota_limit = 0        # the month's quota is spent: the confirmation is held
    try:
        run_worker(rt)
    finally:
        fake_line.quota_limit = None
    notice = _page(staff, f"/staff/bookings/{reference}").split('id="undelivered"')[1].split("</div>")[0]
    assert "届いていない（届いたか分からない）ものがあります。必要なら、お電話でお伝えください。" in notice
    assert "予約確定のお知らせ（利用者へ）" in notice and "保留（月間の送信上限）" in notice


def test_the_outbox_page_says_which_setting_to_fix_when_line_refuses_the_token(rt, staff, fake_line, user):
    reference = make_request(rt, user_id=user.user_id)
    post(staff, f"/staff/bookings/{reference}/confirm")
    fake_line.fail_next(1, 401, path_contains="push")
    run_worker(rt)
    page = _page(staff, "/staff/outbox")
    assert "保留（チャネルアクセストークン）" in page and "LINE_CHANNEL_ACCESS_TOKEN_SAKATA" in page
    assert outbox_rows(rt, status="held") and not outbox_rows(rt, status="failed")


def test_the_outbox_page_lists_messages_waiting_behind_a_held_one(rt, staff, fake_line, user):
    """The chat's order is kept: a message queued after a held one is not tried. Once it is overdue, staff see
    it too (whom it concerns, that it waits), not only the held one in front of it."""
    from tests.test_outbox import push

    reference = make_request(rt, user_id=user.user_id)
    post(staff, f"/staff/bookings/{reference}/confirm")
    fake_line.fail_next(1, 401, path_contains="push")
    run_worker(rt)
    behind = push(rt, user.user_id, "お知らせです。")
    run_worker(rt)
    assert [r.status for r in outbox_rows(rt, kind="push")] == ["held", "pending"]
    assert "送信待ち" not in _page(staff, "/staff/outbox")            # just queued: not yet worth a look
    rt.clock.advance(minutes=6)
    page = _page(staff, "/staff/outbox")
    rows = re.findall(r'<tr class="outbox-([a-z]+)">(.*?)</tr>', page, re.S)
    assert [status for status, _ in rows] == ["pending", "held"]
    assert "送信待ち（同じ宛先への先のメッセージが送られるのを待っています）" in rows[0][1]
    assert outbox_rows(rt, status="pending")[0].id == behind


def test_the_groups_page_shows_join_event_group_ids(rt, client, staff, fake_line):
    group = StaffGroup(client, "sakata", channel_secret=rt.config.channel_secret("sakata"), fake=fake_line,
                       clock=rt.clock)
    group.joins()
    with rt.db.reading() as s:
        assert s.scalar(select(StaffGroupSighting.group_id)) == group.group_id
    page = _page(staff, "/staff/groups")
    assert group.group_id in page and "LINE_STAFF_GROUP_ID_SAKATA" in page


# -- export ---------------------------------------------------------------------------------------

def test_csv_export_utf8_with_bom_and_cp932(rt, staff):
    reference = make_request(rt)
    make_request(rt, start=SAKATA_MONDAY + timedelta(days=60))   # outside the range
    response = post(staff, "/staff/export", **{"from": "2026-12-01", "to": "2026-12-31", "encoding": "utf8",
                                               "contents": "details"})
    assert response.status_code == 200 and "attachment" in response.headers["Content-Disposition"]
    body = response.get_data()
    assert body.startswith(b"\xef\xbb\xbf")
    table = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert table[0][:4] == ["受付番号", "事業所", "相談日時", "状況"] and len(table[0]) == 20
    assert len(table) == 2 and table[1][0] == reference and "酒田 花子" in table[1]
    sjis = post(staff, "/staff/export", **{"from": "2026-12-01", "to": "2026-12-31", "encoding": "cp932",
                                           "contents": "details"})
    assert not sjis.get_data().startswith(b"\xef\xbb\xbf")
    assert list(csv.reader(io.StringIO(sjis.get_data().decode("cp932"))))[1][0] == reference
    assert _actions(rt).count("export") == 2
    assert post(staff, "/staff/export", **{"from": "2026-12-31", "to": "2026-12-01"}).status_code == 400


@pytest.mark.parametrize("encoding,codec", [("utf8", "utf-8-sig"), ("cp932", "cp932")])
def test_a_phone_number_typed_without_hyphens_keeps_its_leading_zero_in_excel(rt, staff, encoding, codec):
    """Excel reads a bare 09012345678 in a CSV as the number 9012345678: a phone typed without hyphens (the form
    keeps it as typed) is written as ="09012345678", which Excel shows as the text itself. Numbers with hyphens
    are left as they are (Excel keeps them as text)."""
    plain = make_request(rt, details={**DETAILS["sakata"], "phone": "09012345678"})
    hyphens = make_request(rt, start=SAKATA_MONDAY + timedelta(hours=1))
    body = post(staff, "/staff/export", **{"from": "2026-12-01", "to": "2026-12-31", "encoding": encoding,
                                           "contents": "details"}).get_data().decode(codec)
    table = list(csv.reader(io.StringIO(body)))
    phone = table[0].index("電話番号")
    rows = {row[0]: row for row in table[1:]}
    assert rows[plain][phone] == '="09012345678"'
    assert rows[hyphens][phone] == "090-1234-5678"


def test_the_csv_export_holds_no_personal_data_unless_staff_ask_for_it(rt, staff):
    """The page's default is the list of bookings without names, numbers, categories or notes; the details
    come only when chosen, and the audit log says which of the two each export was."""
    reference = make_request(rt, details={**DETAILS["sakata"], "category": "disability"})
    post(staff, f"/staff/bookings/{reference}/note", note="本人より電話 090-9999-8888 うつ病で通院中")
    page = _page(staff, "/staff/export")
    assert re.search(r'<input type="radio" name="contents" value="schedule" checked>', page)
    period = {"from": "2026-12-01", "to": "2026-12-31", "encoding": "utf8"}
    listed = post(staff, "/staff/export", **period)                  # what the page sends by default
    body = listed.get_data().decode("utf-8-sig")
    table = list(csv.reader(io.StringIO(body)))
    assert listed.status_code == 200 and table[1][0] == reference
    assert table[0] == ["受付番号", "事業所", "相談日時", "状況", "受付経路", "申込日時", "決定日時", "招待送付日時",
                        "同意した利用規約の版"]
    for personal_value in ("酒田 花子", "12345-678901", "090-1234-5678", "障害", "090-9999-8888", "うつ病"):
        assert personal_value not in body
    assert "-details" not in listed.headers["Content-Disposition"]
    full = post(staff, "/staff/export", **period, contents="details")
    body = full.get_data().decode("utf-8-sig")
    assert "酒田 花子" in body and "うつ病" in body and "-details.csv" in full.headers["Content-Disposition"]
    assert post(staff, "/staff/export", **period, contents="everything").status_code == 400
    with rt.db.reading() as s:
        exports = s.scalars(select(AuditEntry).where(AuditEntry.action == "export").order_by(AuditEntry.id)).all()
    assert [e.detail["contents"] for e in exports] == ["schedule", "details"]
    actions = [row[2] for row in audit_rows(_page(staff, "/staff/audit"))]      # the entries, not the filter's
    assert actions[:2] == ["CSVの出力（個人情報を含む）（2026-12-01〜2026-12-31）",
                           "CSVの出力（予約の一覧のみ）（2026-12-01〜2026-12-31）"], actions


def test_every_action_is_in_the_audit_log_with_who_and_when(rt, staff):
    reference = make_request(rt)
    post(staff, f"/staff/bookings/{reference}/note", note="本人から電話あり")
    post(staff, f"/staff/bookings/{reference}/confirm")
    with rt.db.reading() as s:
        entries = s.scalars(select(AuditEntry).where(AuditEntry.reference == reference)).all()
    assert {e.actor for e in entries} == {"tanaka"} and all(e.at == rt.clock.now() for e in entries)
    shown = [row[1:] for row in audit_rows(_page(staff, "/staff/audit"))]   # the filters name every action too
    assert ("tanaka", "承認", reference) in shown and ("tanaka", "メモの更新", reference) in shown, shown


# -- what staff write about a booking -----------------------------------------------------------------

NOTE = "本人より電話 090-9999-8888 うつ病で通院中"
OVERRIDE = "本人より電話 090-9999-8888 通院のため締切後に受付"
MEMO = "本人より取消の電話 090-9999-8888 入院のため"


def test_the_staff_note_is_stored_encrypted_and_shown_and_exported_decrypted(rt, staff):
    reference = make_request(rt)
    assert post(staff, f"/staff/bookings/{reference}/note", note=f"  {NOTE}\n").status_code == 302
    stored = booking(rt, reference).staff_note
    assert isinstance(stored, bytes) and b"090-9999-8888" not in stored and NOTE.encode() not in stored
    assert personal.open_note(rt, stored) == NOTE
    assert NOTE not in _page(staff, f"/staff/bookings/{reference}")
    assert f">{NOTE}</textarea>" in _revealed(staff, f"/staff/bookings/{reference}")
    export = post(staff, "/staff/export", **{"from": "2026-12-01", "to": "2026-12-31", "encoding": "utf8",
                                             "contents": "details"})
    table = list(csv.reader(io.StringIO(export.get_data().decode("utf-8-sig"))))
    assert table[1][0] == reference and table[1][-1] == NOTE
    post(staff, f"/staff/bookings/{reference}/note", note="   ")    # emptied: nothing is kept
    assert booking(rt, reference).staff_note is None
    with rt.db.reading() as s:
        entries = s.scalars(select(AuditEntry).where(AuditEntry.reference == reference,
                                                     AuditEntry.action == "note")).all()
    assert [(e.detail, e.note) for e in entries] == [({}, None)] * 2   # written, then emptied


def test_two_staff_saving_the_note_at_once_never_overwrite_each_other_unseen(rt, staff, app):
    reference = make_request(rt)
    page = f"/staff/bookings/{reference}"
    create_staff(rt, username="suzuki")
    other = app.test_client()
    login(other, username="suzuki")
    seen = re.search(r'name="note_seen" value="([0-9a-f]+)"', _page(staff, page)).group(1)
    seen_by_other = re.search(r'name="note_seen" value="([0-9a-f]+)"', _page(other, page)).group(1)
    assert post(other, f"{page}/note", note="本人より電話あり", note_seen=seen_by_other).status_code == 302
    clash = post(staff, f"{page}/note", note="招待メール送付済み", note_seen=seen)
    text = clash.get_data(as_text=True)
    assert clash.status_code == 409 and "ほかの職員がメモを保存していた" in text
    assert "本人より電話あり" in text and ">招待メール送付済み</textarea>" in text   # theirs shown, mine kept
    assert _actions(rt, reference).count("view_details") == 1   # reading theirs to merge is a look, logged once
    with rt.db.reading() as s:
        stored = s.scalar(select(Booking).where(Booking.reference == reference)).staff_note
    assert personal.open_note(rt, stored) == "本人より電話あり"
    merged = re.search(r'name="note_seen" value="([0-9a-f]+)"', text).group(1)
    assert post(staff, f"{page}/note", note="本人より電話あり／招待メール送付済み", note_seen=merged).status_code == 302
    assert "本人より電話あり／招待メール送付済み" in _page(staff, page)
    assert _actions(rt, reference).count("note") == 2


def test_no_note_is_written_about_a_booking_whose_details_were_erased(rt, staff):
    """After the user's データ削除 or the retention purge, a page left open cannot write personal text back."""
    reference = make_request(rt)
    page = f"/staff/bookings/{reference}"
    seen = re.search(r'name="note_seen" value="([0-9a-f]+)"', _page(staff, page)).group(1)
    with rt.db.transaction() as s:
        row = s.scalar(select(Booking).where(Booking.reference == reference))
        row.status, row.details, row.seeker_hash, row.details_purged_at = "withdrawn", None, None, rt.clock.now()
    assert post(staff, f"{page}/note", note=NOTE, note_seen=seen).status_code == 302
    assert booking(rt, reference).staff_note is None and "note" not in _actions(rt, reference)
    shown = _page(staff, page)
    assert "削除されているため、メモは保存できません" in shown
    assert 'name="note_seen"' not in shown and "職員メモは書けません" in shown


def test_no_cancellation_memo_is_written_about_a_booking_whose_details_were_erased(rt, staff):
    """A session nobody closed, whose user asked for データ削除 afterwards: a cancellation recorded for them later
    carries no memo (a phone number, an illness) back into the database; without one it is recorded."""
    reference = make_request(rt, status="confirmed", start=rt.clock.now() - timedelta(days=3))
    page = f"/staff/bookings/{reference}"
    with rt.db.transaction() as s:
        row = s.scalar(select(Booking).where(Booking.reference == reference))
        row.details, row.seeker_hash, row.details_purged_at = None, None, rt.clock.now()
    assert 'id="cancel-note"' not in _page(staff, page)
    assert post(staff, f"{page}/cancel_user", note=MEMO).status_code == 302      # a page opened before
    assert "削除されているため、メモは保存できません" in _page(staff, page)
    assert booking(rt, reference).status == "confirmed" and "cancel_for_user" not in _actions(rt, reference)
    with rt.db.reading() as s:
        assert s.scalars(select(AuditEntry.note).where(AuditEntry.note.is_not(None))).all() == []
    assert post(staff, f"{page}/cancel_user").status_code == 302
    assert booking(rt, reference).status == "cancelled" and "cancel_for_user" in _actions(rt, reference)


def test_a_button_on_a_page_older_than_the_booking_says_what_happened_meanwhile(rt, staff, app, user):
    from bot.services import lifecycle

    second = app.test_client()
    create_staff(rt, username="sato")
    login(second, username="sato")
    first_ref, withdrawn, expired = (make_request(rt, start=SAKATA_MONDAY + timedelta(hours=h), user_id=f"U{h}" + "w" * 31)
                                     for h in (0, 1, 2))
    # Two members on the same request: the second one's お断り finds it approved.
    post(staff, f"/staff/bookings/{first_ref}/confirm")
    post(second, f"/staff/bookings/{first_ref}/decline", reason="schedule")
    shown = _page(second, f"/staff/bookings/{first_ref}")
    assert "この申込は、すでに承認されています（ほかの職員が先に承認しました）。何も変更していません。" in shown
    assert booking(rt, first_ref).status == "confirmed"
    post(second, f"/staff/bookings/{first_ref}/confirm")   # the same outcome: nothing to do, and why
    assert "この操作はすでに済んでいます（現在: 確定）。ほかの職員が先に行ったか、二度押されたためです。" in _page(
        second, f"/staff/bookings/{first_ref}")
    # The user withdrew while the page was open; another request expired at its start.
    with rt.db.transaction() as s:
        lifecycle.fire(s, s.scalar(select(Booking).where(Booking.reference == withdrawn)), "withdraw", rt.clock.now())
    post(staff, f"/staff/bookings/{withdrawn}/confirm")
    assert "この申込は、ご本人が取り下げました。ご本人への連絡は要りません。" in _page(staff, f"/staff/bookings/{withdrawn}")
    with rt.db.transaction() as s:
        lifecycle.fire(s, s.scalar(select(Booking).where(Booking.reference == expired)), "expire", rt.clock.now())
    post(staff, f"/staff/bookings/{expired}/decline", reason="schedule")
    assert "開始時刻までに決まらなかったため期限切れになりました。ご本人にはLINEでお知らせしています。" in _page(
        staff, f"/staff/bookings/{expired}")
    assert [booking(rt, r).status for r in (withdrawn, expired)] == ["withdrawn", "expired"]


def test_a_stale_decline_of_a_proposal_the_user_accepted_says_the_user_accepted_it(rt, staff, fake_line, user):
    """お断り on a page opened while another slot was proposed, pressed after the user accepted it: the page said
    「ほかの職員が先に承認しました」, sending the member to ask colleagues who approved it (nobody did)."""
    reference = make_request(rt, user_id=user.user_id, start=SAKATA_MONDAY + timedelta(days=7))
    post(staff, f"/staff/bookings/{reference}/propose", slot=SAKATA_MONDAY.isoformat())
    run_worker(rt)
    user.taps(postback_value(fake_line.messages_to(user.user_id), "この日時で予約する"))
    assert booking(rt, reference).status == "confirmed"
    post(staff, f"/staff/bookings/{reference}/decline", reason="schedule")
    shown = _page(staff, f"/staff/bookings/{reference}")
    assert "ほかの職員が先に承認しました" not in shown
    assert "この申込は、こちらからご提案した日時をご本人が承諾され、確定しています。何も変更していません。" in shown
    assert booking(rt, reference).status == "confirmed"


def test_the_jump_to_a_proposals_actions_names_what_is_there(rt, staff, user):
    """A proposal's page offers お断り and 取り下げ: its jump link said 「職員メモなど」 only."""
    reference = make_request(rt, user_id=user.user_id, start=SAKATA_MONDAY + timedelta(days=7))
    post(staff, f"/staff/bookings/{reference}/propose", slot=SAKATA_MONDAY.isoformat())
    page = _page(staff, f"/staff/bookings/{reference}")
    assert booking(rt, reference).status == "proposed"
    assert ">操作（お断り・取り下げ・職員メモなど）へ移動</a>" in page


def test_a_stale_decline_with_a_reason_no_longer_offered_says_what_happened_meanwhile(rt, staff, app):
    """お断り from a page opened before the booking was decided (and before the office stopped offering the reason it
    chose, here Otaru's usage_limit at Sakata): the member is told the booking was approved, not asked for a
    reason that no longer matters. A request still undecided is asked for one."""
    approved, undecided, declined = (make_request(rt, start=SAKATA_MONDAY + timedelta(hours=h),
                                                  user_id=f"U{h}" + "s" * 31) for h in (0, 1, 2))
    post(staff, f"/staff/bookings/{approved}/confirm")
    post(staff, f"/staff/bookings/{approved}/decline", reason="usage_limit")
    assert "この申込は、すでに承認されています（ほかの職員が先に承認しました）。何も変更していません。" in _page(
        staff, f"/staff/bookings/{approved}")
    post(staff, f"/staff/bookings/{undecided}/decline", reason="usage_limit")
    assert "お断りの理由を選んでください。" in _page(staff, f"/staff/bookings/{undecided}")
    post(staff, f"/staff/bookings/{declined}/decline", reason="schedule")
    post(staff, f"/staff/bookings/{declined}/decline", reason="usage_limit")
    assert "この操作はすでに済んでいます（現在: お断り）。" in _page(staff, f"/staff/bookings/{declined}")
    assert [booking(rt, r).status for r in (approved, undecided, declined)] == ["confirmed", "requested", "declined"]


def test_every_refusal_says_once_that_nothing_was_changed(rt, staff, user):
    """A button refused on a request not yet approved, or on one whose other slot awaits the user's answer, says
    what the booking is and that nothing changed, as a refusal on a booking decided meanwhile does; so does every
    other refusal, once."""
    requested = make_request(rt)
    proposed = make_request(rt, start=SAKATA_MONDAY + timedelta(hours=1), user_id=user.user_id)
    post(staff, f"/staff/bookings/{proposed}/propose", slot=(SAKATA_MONDAY + timedelta(days=7)).isoformat())
    assert booking(rt, proposed).status == "proposed"
    post(staff, f"/staff/bookings/{requested}/called")
    assert ("現在の状況では、この操作はできません。この申込は、まだ承認していません（確認待ち）。何も変更していません。"
            "下に現在の状況を表示しています。") in _page(staff, f"/staff/bookings/{requested}")
    post(staff, f"/staff/bookings/{proposed}/called")
    assert ("現在の状況では、この操作はできません。この申込は、別の日時をご提案中です（ご本人のお返事を待っています）。"
            "何も変更していません。") in _page(staff, f"/staff/bookings/{proposed}")
    for reference, action, refused in ((proposed, "confirm", "ご本人のお返事（承諾または辞退）をお待ちください。"),
                                       (requested, "propose", "相談枠を選んでください。")):
        post(staff, f"/staff/bookings/{reference}/{action}", slot="")
        flash = _page(staff, f"/staff/bookings/{reference}").split('class="flash')[1].split("</p>")[0]
        assert refused in flash and flash.count("何も変更していません") == 1, flash
    # Every code decisions may refuse with, from any button (an attendance correction has words of its own).
    codes = set(re.findall(r'Refused\("(\w+)"', Path(decisions.__file__).read_text())) - {"note_changed",
                                                                                          "correction_reason"}
    for code in sorted(codes):
        for action in ("confirm", "correct_attendance"):
            with staff.session_transaction() as sess:
                sess["_flashes"] = [("error", f"{action}:{code}:requested:")]
            flash = _page(staff, f"/staff/bookings/{requested}").split('class="flash')[1].split("</p>")[0]
            assert flash.count("何も変更していません") == 1, (code, action, flash)


def test_a_phone_call_is_not_recorded_on_a_booking_no_longer_confirmed(rt, staff):
    reference = make_request(rt)
    post(staff, f"/staff/bookings/{reference}/confirm")
    post(staff, f"/staff/bookings/{reference}/cancel_user")
    assert post(staff, f"/staff/bookings/{reference}/called").status_code == 302
    assert "現在の状況では、この操作はできません" in _page(staff, f"/staff/bookings/{reference}")
    with rt.db.reading() as s:
        assert s.scalar(select(BookingHandoff.called_at).join(
            Booking, Booking.id == BookingHandoff.booking_id).where(Booking.reference == reference)) is None
    assert "called" not in _actions(rt, reference)


def test_the_audit_log_says_which_slot_day_account_and_period_an_entry_is_about(rt, staff):
    """An entry without a booking named only the action (日の停止, アカウントの停止): which day, slot, account or
    period is in its detail, and the log now says it."""
    create_staff(rt, username="boss", role="admin")
    login(staff, "boss")
    post(staff, "/staff/blocks", day="2026-12-14")
    post(staff, "/staff/blocks", day="2026-12-07", slot=SAKATA_MONDAY.isoformat())
    post(staff, "/staff/users", username="suzuki", password="a long password here", role="staff")
    post(staff, "/staff/export", **{"from": "2026-12-01", "to": "2026-12-31", "encoding": "utf8"})
    with rt.db.reading() as s:
        slot_block = s.scalar(select(SlotBlock.id).where(SlotBlock.slot_start.is_not(None)))
    post(staff, f"/staff/blocks/{slot_block}/delete", day="2026-12-07", slot=SAKATA_MONDAY.isoformat())
    log = re.sub(r"\s+", "", _page(staff, "/staff/audit"))
    assert "日の停止（12/14(月)）" in log and "枠の停止（12/7(月)14:00）" in log
    assert "アカウントの作成（アカウント:suzuki）" in log and "枠の再開（12/7(月)14:00）" in log
    assert "CSVの出力（予約の一覧のみ）（2026-12-01〜2026-12-31）" in log


def test_the_memo_of_a_cancellation_is_encrypted_apart_from_the_audit_detail(rt, staff):
    reference = make_request(rt)
    assert post(staff, f"/staff/bookings/{reference}/cancel_user", note=MEMO).status_code == 302
    with rt.db.reading() as s:
        entry = s.scalars(select(AuditEntry).where(AuditEntry.reference == reference,
                                                   AuditEntry.action == "withdraw_for_user")).one()
    assert entry.detail == {} and b"090-9999-8888" not in entry.note
    assert personal.open_note(rt, entry.note) == MEMO
    assert MEMO not in _page(staff, f"/staff/bookings/{reference}")
    assert f"（メモ: {MEMO}）" in _revealed(staff, f"/staff/bookings/{reference}")
    assert "090-9999-8888" not in _page(staff, "/staff/audit")
    other = make_request(rt, start=SAKATA_MONDAY + timedelta(hours=1))
    post(staff, f"/staff/bookings/{other}/cancel_user")                 # no memo: none stored
    with rt.db.reading() as s:
        assert s.scalars(select(AuditEntry.note).where(AuditEntry.reference == other,
                                                        AuditEntry.action == "withdraw_for_user")).one() is None


def test_the_audit_log_takes_free_text_only_encrypted(rt):
    from bot.staff import audit

    with rt.db.transaction() as s:
        with pytest.raises(TypeError):
            audit.record(s, "sakata", audit.Actor.system(), "cancel_for_user", rt.clock.now(), note=MEMO)
        with pytest.raises(TypeError):
            audit.record(s, "sakata", audit.Actor.system(), "cancel_for_user", rt.clock.now(), sealed_note=MEMO)


def test_the_outbox_page_says_in_japanese_that_a_reply_of_unknown_fate_may_have_arrived(rt, staff, fake_line, user):
    fake_line.fail_next(2, 500, path_contains="/reply", fail_after_accept=True)
    assert user.says("ヘルプ").status_code == 200
    rt.clock.advance(seconds=2)
    run_worker(rt)            # tried again on its token: LINE answers 400, the token was used by the first try
    assert [r.status for r in outbox_rows(rt, kind="reply")] == ["unknown"]
    page = _page(staff, "/staff/outbox")
    assert "届いたか不明" in page and "すでに届いている場合があります" in page
    assert "may have arrived" not in page


def test_a_date_in_another_year_says_its_year_on_the_staff_pages(rt, staff, user):
    """`12/7(月)` alone is ambiguous across the New Year (last December's session, next January's request): a
    date outside the current year (the app's clock, Asia/Tokyo) is written with its year; this year's stay short.
    The day's heading writes its year always, once."""
    january = datetime(2027, 1, 4, 14, 0, tzinfo=TOKYO)
    december = make_request(rt, user_id=user.user_id)
    ahead = make_request(rt, start=january, user_id=user.user_id)
    line = _page(staff, f"/staff/bookings/{december}").split('id="other-open">')[1].split("</dd>")[0]
    assert "2027年1/4(月) 14:00" in line
    own = _page(staff, f"/staff/bookings/{december}").split('id="slot-time">')[1].split("</dd>")[0]
    assert own.startswith("12/7(月) 14:00") and "年" not in own
    day = _page(staff, "/staff/?from=2027-01-04")
    assert "2027年1/4(月)</h2>" in day and "2027年2027年" not in day
    rt.clock.freeze(datetime(2027, 1, 2, 10, 0, tzinfo=TOKYO))   # the New Year: now December is last year's
    login(staff)
    own = _page(staff, f"/staff/bookings/{december}").split('id="slot-time">')[1].split("</dd>")[0]
    assert own.startswith("2026年12/7(月) 14:00")
    assert _page(staff, f"/staff/bookings/{ahead}").split('id="slot-time">')[1].startswith("1/4(月) 14:00")
