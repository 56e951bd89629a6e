"""The dashboard's 操作記録: every entry of the office (and of the whole deployment) reachable a page at a time,
narrowed by 受付番号, account, kind of action and period in GET parameters; never another office's entries."""
from __future__ import annotations

import html
import re
from datetime import datetime, timedelta

from sqlalchemy import select, update

from bot.clock import TOKYO
from bot.models import Booking
from bot.staff import audit, auth
from bot.staff.models import StaffUser
from bot.staff.audit import Actor
from tests.staffkit import fast_password_hashing, staff  # noqa: F401 - fixtures
from tests.staffkit import OTARU_WEDNESDAY, create_staff, login, make_request, post
from tests.staffkit import audit_rows as _rows

def _get(client, query: str = "", status: int = 200) -> str:
    response = client.get(f"/staff/audit{query}")
    assert response.status_code == status, response.status_code
    return response.get_data(as_text=True)


def _link(page: str, rel: str) -> str | None:
    found = re.search(rf'href="/staff/audit(\?[^"]*)" rel="{rel}"', page)
    return html.unescape(found.group(1)) if found else None


def _add(rt, office: str | None, action: str, at: datetime, actor: Actor | None = None, count: int = 1, **detail):
    with rt.db.transaction() as s:
        for i in range(count):
            audit.record(s, office, actor or Actor.system(), action, at - timedelta(minutes=i), **detail)


def _full_width(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


def test_every_entry_is_reachable_a_hundred_at_a_time_past_the_old_200_cap(rt, staff):
    oldest = datetime(2026, 10, 1, 9, 0, tzinfo=TOKYO)
    _add(rt, "sakata", "block_day", oldest, day="2026-10-05")
    _add(rt, "sakata", "search", datetime(2026, 11, 30, 18, 0, tzinfo=TOKYO), actor=Actor(label="tanaka"),
         count=250, results=0)
    seen: list[tuple] = []
    page = _get(staff)
    assert "記録（252件）" in page   # the 250, the oldest and the login
    pages = 0
    while True:
        rows = _rows(page)
        assert len(rows) <= 100
        seen += rows
        pages += 1
        older = _link(page, "next")
        if older is None:
            break
        page = _get(staff, older)
        assert _link(page, "prev") is not None   # and back again
    assert pages == 3 and len(seen) == 252 and len(set(seen)) == 252
    assert seen[-1][0] == "2026-10-01 09:00:00" and seen[-1][2] == "日の停止（10/5(月)）"
    assert [r[0] for r in seen] == sorted((r[0] for r in seen), reverse=True)
    # Back from the last page: the page before it, as it was.
    back = _get(staff, _link(page, "prev"))
    assert _rows(back) == seen[100:200]


def test_filtering_by_reference_finds_who_looked_at_that_booking_only(rt, staff):
    mine, other = make_request(rt), make_request(rt, start=datetime(2026, 12, 7, 15, 0, tzinfo=TOKYO))
    for reference in (mine, other):
        assert post(staff, f"/staff/bookings/{reference}/reveal").status_code == 302
    with rt.db.transaction() as s:   # a colleague looked at it last week
        audit.record(s, "sakata", Actor(label="sato"), "view_details", datetime(2026, 11, 24, 9, 0, tzinfo=TOKYO),
                     s.scalar(select(Booking).where(Booking.reference == mine)))
    typed = _full_width(mine.replace("-", "").lower())   # as staff type it from a phone call
    page = _get(staff, f"?reference={typed}&action=view_details")
    rows = _rows(page)
    assert [r[1:] for r in rows] == [("tanaka", "個人情報の閲覧", mine), ("sato", "個人情報の閲覧", mine)]
    assert other not in page and "条件に合う記録（2件）" in page
    assert f'value="{typed}"' in page   # the form keeps what was typed
    assert {r[3] for r in _rows(_get(staff, f"?reference={other}"))} == {other}


def test_filtering_by_account(rt, staff):
    sato = create_staff(rt, username="sato")
    _add(rt, "sakata", "search", datetime(2026, 11, 20, 10, 0, tzinfo=TOKYO), actor=Actor(label="sato", user_id=sato),
         count=3, results=0)
    _add(rt, "sakata", "search", datetime(2026, 11, 21, 10, 0, tzinfo=TOKYO), actor=Actor(label="tanaka"), results=0)
    rows = _rows(_get(staff, "?actor=sato"))
    assert len(rows) == 3 and {r[1] for r in rows} == {"sato"}
    assert {r[1] for r in _rows(_get(staff, "?actor=tanaka"))} == {"tanaka"}
    assert {r[1] for r in _rows(_get(staff, "?actor=system"))} == set()
    _add(rt, "sakata", "retention_purge", datetime(2026, 11, 22, 3, 0, tzinfo=TOKYO))
    assert {r[1] for r in _rows(_get(staff, "?actor=system"))} == {"自動処理"}


def test_filtering_by_kind_of_action(rt, staff):
    _add(rt, "sakata", "block_day", datetime(2026, 11, 20, 10, 0, tzinfo=TOKYO), day="2026-12-14")
    _add(rt, "sakata", "export", datetime(2026, 11, 20, 11, 0, tzinfo=TOKYO), first="2026-12-01",
         last="2026-12-31", contents="schedule")
    _add(rt, "sakata", "export", datetime(2026, 11, 20, 12, 0, tzinfo=TOKYO), first="2026-12-01",
         last="2026-12-31", contents="details")
    _add(rt, "sakata", "export", datetime(2026, 11, 19, 12, 0, tzinfo=TOKYO), first="2026-11-01",
         last="2026-11-30")   # before the choice: it held the details
    assert [r[2] for r in _rows(_get(staff, "?action=block_day"))] == ["日の停止（12/14(月)）"]
    assert [r[0] for r in _rows(_get(staff, "?action=export"))] == ["2026-11-20 11:00:00"]
    assert [r[0] for r in _rows(_get(staff, "?action=export_details"))] == ["2026-11-20 12:00:00",
                                                                           "2026-11-19 12:00:00"]
    assert [r[2] for r in _rows(_get(staff, "?action=login"))] == ["ログイン"]


def test_filtering_by_period_takes_whole_days_of_japan(rt, staff):
    for at in (datetime(2026, 10, 31, 23, 59, tzinfo=TOKYO), datetime(2026, 11, 1, 0, 0, tzinfo=TOKYO),
               datetime(2026, 11, 30, 23, 30, tzinfo=TOKYO), datetime(2026, 12, 1, 0, 10, tzinfo=TOKYO)):
        _add(rt, "sakata", "search", at, actor=Actor(label="tanaka"), results=0)
    rows = _rows(_get(staff, "?from=2026-11-01&to=2026-11-30"))
    assert [r[0] for r in rows] == ["2026-11-30 23:30:00", "2026-11-01 00:00:00"]
    assert [r[0] for r in _rows(_get(staff, "?to=2026-10-31"))] == ["2026-10-31 23:59:00"]
    assert "条件に合う記録はありません。" in _get(staff, "?from=2025-01-01&to=2025-01-31")


def test_another_offices_entries_never_appear_whatever_the_filters(rt, staff):
    theirs = make_request(rt, office="otaru", start=OTARU_WEDNESDAY)
    suzuki = create_staff(rt, office="otaru", username="suzuki")
    with rt.db.reading() as s:
        booking = s.scalar(select(Booking).where(Booking.reference == theirs))
        s.expunge(booking)
    when = datetime(2026, 11, 20, 10, 0, tzinfo=TOKYO)
    with rt.db.transaction() as s:
        for i in range(3):
            foreign = audit.record(s, "otaru", Actor(label="suzuki", user_id=suzuki), "view_details",
                                   when - timedelta(minutes=i), booking)
        s.flush()
        foreign_id = foreign.id
    _add(rt, audit.DEPLOYMENT, "unthrottle_address", when, actor=Actor.cli(), command="staff unthrottle")
    queries = ["", f"?reference={theirs}", "?action=view_details", "?from=2026-11-20&to=2026-11-20",
               "?actor=cli", f"?reference={theirs}&action=view_details&from=2026-11-01&to=2026-11-30"]
    for query in queries:
        page = _get(staff, query)   # the reference typed is said again in the form, never as an entry's
        assert f">{theirs}</a>" not in page and "suzuki" not in page, query
        assert all(r[1] != "suzuki" and r[3] != theirs for r in _rows(page)), query
    # The whole deployment's entry is every office's.
    assert [r[1:3] for r in _rows(_get(staff, "?from=2026-11-20&to=2026-11-20"))] == [
        ("サーバー上のコマンド", "接続元アドレスのログイン制限の解除（全事業所共通）（コマンド:staffunthrottle）")]
    assert "条件に合う記録はありません。" in _get(staff, f"?reference={theirs}")
    # Their account is none of this office's; a page cannot start from one of their entries.
    assert "操作した人は一覧から選んでください。" in _get(staff, "?actor=suzuki", status=400)
    for position in (f"?before={foreign_id}", f"?after={foreign_id}"):
        page = _get(staff, position, status=400)
        assert "ページの位置がわかりませんでした。" in page and not _rows(page) and "suzuki" not in page


def test_invalid_filters_get_a_kind_message_not_an_error_page(rt, staff):
    cases = {
        "?reference=ABC": "受付番号は「AB2C-D3EF」のように英数字8文字で入力してください",
        "?actor=nobody": "操作した人は一覧から選んでください。",
        "?action=drop_table": "操作の種類は一覧から選んでください。",
        "?from=2026-13-40": "期間の開始日は「2026-12-07」のような日付で入力してください。",
        "?to=yesterday": "期間の終了日は「2026-12-07」のような日付で入力してください。",
        "?to=9999-12-31": "期間の終了日は「2026-12-07」のような日付で入力してください。",   # no day after it
        "?from=0001-01-01": "期間の開始日は「2026-12-07」のような日付で入力してください。",
        "?after=2147483648": "ページの位置がわかりませんでした。",   # beyond PostgreSQL's integer
        "?from=2026-12-01&to=2026-11-01": "期間の開始日は終了日より前の日付にしてください。",
        "?before=x": "ページの位置がわかりませんでした。",
        "?before=99999999999999999999999": "ページの位置がわかりませんでした。",
        "?before=²": "ページの位置がわかりませんでした。",   # a digit to str.isdigit, none to int()
        "?before=1&after=1": "ページの位置がわかりませんでした。",
        "?after=999999": "ページの位置がわかりませんでした。",
    }
    for query, message in cases.items():
        page = _get(staff, query, status=400)
        assert message in page and 'role="alert"' in page, query
        if "before" not in query and "after" not in query:   # the field it is about says so
            assert 'aria-invalid="true"' in page, query
        assert "<h1>操作記録</h1>" in page and 'id="f-reference"' in page, query


def test_an_account_cannot_pass_for_the_system_the_staff_group_the_user_or_the_server(rt, staff):
    """The log names who acted: an account named like one of the actors that are no account (system, cli, user,
    line_group) would have every entry of its own read as 自動処理, サーバー上のコマンド… So such a name is refused
    when an account is made, and an entry made by an account shows as the account's whatever its name."""
    create_staff(rt, username="sato", role="admin")
    for name in ("system", "SYSTEM", "cli", "user", "line_group"):
        with rt.db.transaction() as s:
            try:
                auth.create_user(s, office_id="sakata", username=name, password="x" * 12, role="staff",
                                 now=rt.clock.now())
            except auth.AccountError as refused:
                assert refused.code == "username_reserved", name
            else:
                raise AssertionError(f"an account named {name} was made")
    # One made before the rule (straight into the table): its entries still name the account.
    with rt.db.transaction() as s:
        s.execute(update(StaffUser).where(StaffUser.username == "sato").values(username="system"))
    login(staff, username="system")
    page = _get(staff, "?action=login")
    assert [r[1] for r in _rows(page)][0] == "system"


def test_the_count_of_entries_reads_no_further_than_its_limit(rt, staff, monkeypatch):
    """A busy office's years of entries: the page's count stops at audit.COUNT_LIMIT (「…件を超えます」), so that a
    page load never counts the whole table; below the limit the count is exact. Seen at the driver: the count
    the page sends is bounded (LIMIT), on SQLite and PostgreSQL alike."""
    from tests.sqlwatch import watch

    monkeypatch.setattr(audit, "COUNT_LIMIT", 5, raising=False)
    _add(rt, "sakata", "search", datetime(2026, 11, 30, 18, 0, tzinfo=TOKYO), actor=Actor(label="tanaka"),
         count=3, results=0)
    assert "記録（4件）" in _get(staff)   # the 3 and the login: exact
    _add(rt, "sakata", "search", datetime(2026, 11, 29, 18, 0, tzinfo=TOKYO), actor=Actor(label="tanaka"),
         count=5, results=0)
    with watch(rt.db.engine) as seen:
        page = _get(staff)
    assert "記録（5件を超えます）" in page and len(_rows(page)) == 9
    counts = [s for s in seen if "staff_audit" in s and "count(" in s.lower()]
    assert counts and all(" LIMIT " in s.upper() for s in counts), counts
