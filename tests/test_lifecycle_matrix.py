"""Every booking status against every action that may reach it: the user's chat (fresh and stale buttons, 予約 again,
the details form sent again from an old page, データ削除), the staff dashboard's buttons, the staff group's card buttons (tapped
whenever), the expiry job.

For each cell of the table: an allowed transition happens exactly once (the status, one audit entry or staff notice,
the user told once by the outbox where they are told at all); a refused one changes nothing (status, seat, audit,
notices, outbox) and says so kindly (chat: the templates' words; dashboard: the flash). The table is checked against
`bot.services.lifecycle.STATUSES`, so a status added there without a row here fails.
"""
from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from bot import booking_jobs
from bot.models import Booking, OutboxMessage, SlotClaim, StaffNotice
from bot.notify import staff_postback_data
from bot.services import holds, lifecycle
from bot.staff import decisions, handoff
from bot.staff.audit import Actor
from bot.staff.models import AuditEntry
from dialogs.router import postback
from tests.formflow import Page, hold_directly, quick_reply_data, valid_answers
from tests.lineuser import StaffGroup, new_group_id
from tests.staffkit import create_staff, fast_password_hashing, login, post  # noqa: F401 - fixture

OFFICE = "otaru"   # cancels in chat until the day before, so a chat cancellation is allowed somewhere
STAFF = Actor(label="setup")
GROUP = new_group_id()


@pytest.fixture
def app(make_app):
    """The app with Otaru's staff group configured: its cards' buttons are one more way staff act."""
    return make_app(env={"LINE_STAFF_GROUP_ID_OTARU": GROUP})


# How each status is reached from a request (lifecycle triggers; `proposed` through the staff service).
PATHS = {
    "requested": (), "proposed": ("propose",), "confirmed": ("confirm",), "declined": ("decline",),
    "expired": ("expire",), "withdrawn": ("withdraw",), "attended": ("confirm", "attend"),
    "no_show": ("confirm", "mark_no_show"), "cancelled": ("confirm", "cancel"),
    "cancelled_by_office": ("confirm", "cancel_by_office"),
}


# -- the world of one cell --------------------------------------------------------------------------

class Cell:
    """One booking of one Otaru LINE user in the status under test, a dashboard signed in, and what to observe."""

    def __init__(self, rt, app, client, user, fake_line, status: str):
        self.rt, self.client, self.user, self.fake_line = rt, client, user, fake_line
        self.office = rt.offices[OFFICE]
        _, url = hold_directly(rt, OFFICE, user_id=user.user_id)
        self.confirmation = Page.get(client, url).submit(client, valid_answers(self.office))
        assert self.confirmation.status == 200
        done = self.confirmation.submit(client)
        assert "受付番号: " in done.html
        with rt.db.reading() as s:
            row = s.scalar(select(Booking).where(Booking.office_id == OFFICE))
            self.id, self.reference, self.start = row.id, row.reference, row.slot_start
        self.other_slot = self._another_slot()
        self._reach(status)
        assert self.booking().status == status
        self.staff = app.test_client()
        create_staff(rt, office=OFFICE, username="sato")
        assert login(self.staff, username="sato").status_code == 302
        self.before = self.observed()

    def _another_slot(self) -> datetime:
        """A bookable slot other than the request's (for 別日時の提案)."""
        with self.rt.db.reading() as s:
            slots = holds.week_page(s, self.office, self.rt.clock.now(), 0)["slots"]
        starts = [datetime.fromisoformat(slot["start"]) if isinstance(slot["start"], str) else slot["start"]
                  for slot in slots]
        return next(start for start in starts if start != self.start)

    def _reach(self, status: str) -> None:
        now = self.rt.clock.now()
        with self.rt.db.transaction() as s:
            row = s.get(Booking, self.id)
            for trigger in PATHS[status]:
                if trigger == "propose":
                    decisions.propose(s, self.rt, self.office, row, STAFF, now, self.other_slot)
                else:
                    assert lifecycle.fire(s, row, trigger, now), trigger

    def booking(self) -> Booking:
        with self.rt.db.reading() as s:
            return s.get(Booking, self.id)

    def observed(self) -> dict:
        with self.rt.db.reading() as s:
            row = s.get(Booking, self.id)
            return {
                "status": row.status,
                "bookings": s.scalar(select(func.count()).select_from(Booking)),
                "seats": s.scalar(select(func.count()).select_from(SlotClaim).where(SlotClaim.booking_id == self.id)),
                "audit": [e.action for e in s.scalars(select(AuditEntry).where(AuditEntry.booking_id == self.id)
                                                     .order_by(AuditEntry.id))],
                "notices": [n.kind for n in s.scalars(select(StaffNotice).where(StaffNotice.booking_id == self.id)
                                                     .order_by(StaffNotice.id))],
                "told": [m.purpose for m in s.scalars(select(OutboxMessage).where(
                    OutboxMessage.recipient == self.user.user_id, OutboxMessage.kind != "reply")
                    .order_by(OutboxMessage.id))],
            }

    def change(self) -> dict:
        """What the action added: the new status (None: unchanged) and the new rows of each kind."""
        after = self.observed()
        changed = {key: after[key] if after[key] != self.before[key] else None
                   for key in ("status", "bookings", "seats")}
        added = {key: after[key][len(self.before[key]):] for key in ("audit", "notices", "told")}
        return {**changed, **added}

    # -- the user ------------------------------------------------------------------------------------

    def _tap(self, data: str) -> str:
        before = len(self.fake_line.texts_to(self.user.user_id))
        assert self.user.taps(data).status_code == 200
        return "\n".join(self.fake_line.texts_to(self.user.user_id)[before:])

    def _say(self, text: str) -> str:
        before = len(self.fake_line.texts_to(self.user.user_id))
        assert self.user.says(text).status_code == 200
        return "\n".join(self.fake_line.texts_to(self.user.user_id)[before:])

    def _and_yes(self, asked: str) -> str:
        """A question 「…よろしいですか」 answered with its first button, as the user would."""
        if "よろしいですか" not in asked:
            return asked
        yes = next(iter(quick_reply_data(self.fake_line.messages_to(self.user.user_id)[-1]).values()))
        return asked + "\n" + self._tap(yes)

    def chat_withdraw(self) -> str:
        return self._and_yes(self._tap(postback("withdraw", "idle:0", OFFICE, self.reference)))

    def chat_cancel(self) -> str:
        return self._and_yes(self._tap(postback("cancel_booking", "idle:0", OFFICE, self.reference)))

    def stale_withdraw_yes(self) -> str:
        return self._tap(postback("confirm_cancel", "idle:0", OFFICE, "yes", r=self.reference, k="withdraw",
                                  s="requested", d="withdraw"))

    def stale_cancel_yes(self) -> str:
        return self._tap(postback("confirm_cancel", "idle:0", OFFICE, "yes", r=self.reference, k="cancel",
                                  s="confirmed", d="cancel"))

    def proposal_accept(self) -> str:
        return self._tap(postback("proposal", "any", OFFICE, "accept", r=self.reference))

    def proposal_decline(self) -> str:
        return self._tap(postback("proposal", "any", OFFICE, "decline", r=self.reference))

    def delete_data(self) -> str:
        """データ削除, then 削除する: what is still ahead is closed (staff told), every detail erased."""
        asked = self._say("データ削除")
        yes = quick_reply_data(self.fake_line.messages_to(self.user.user_id)[-1])["削除する"]
        return asked + "\n" + self._tap(yes)

    def book_again(self) -> str:
        return self._say("予約")

    def form_again(self) -> str:
        return self.confirmation.submit(self.client).html

    # -- staff ---------------------------------------------------------------------------------------

    def _staff(self, action: str, **form) -> str:
        answer = post(self.staff, f"/staff/bookings/{self.reference}/{action}", **form)
        page = answer.get_data(as_text=True) if answer.status_code != 302 else \
            self.staff.get(f"/staff/bookings/{self.reference}").get_data(as_text=True)
        flashes = re.findall(r'<p class="(?:flash|error)[^"]*"[^>]*>(.*?)</p>', page, re.S)
        return " / ".join(re.sub(r"<[^>]+>|\s+", " ", f).strip() for f in flashes)

    def staff_confirm(self) -> str:
        return self._staff("confirm")

    def staff_decline(self) -> str:
        return self._staff("decline", reason=next(iter(handoff.office_decline_reasons(self.office))))

    def staff_propose(self) -> str:
        return self._staff("propose", slot=self.other_slot.isoformat())

    def staff_attended(self) -> str:
        return self._staff("attended")

    def staff_no_show(self) -> str:
        return self._staff("no_show")

    def staff_correct_to_attended(self) -> str:
        return self._staff("correct_attendance", to="attended", reason="mistap")

    def staff_correct_to_no_show(self) -> str:
        return self._staff("correct_attendance", to="no_show", reason="mistap")

    def staff_correct_to_cancelled(self) -> str:
        return self._staff("correct_attendance", to="cancelled", reason="contacted")

    def staff_cancel_user(self) -> str:
        return self._staff("cancel_user")

    def staff_cancel_office(self) -> str:
        return self._staff("cancel_office")

    def staff_cancel_terms(self) -> str:
        """利用規約に基づき中止する (Sakata 第12条(1), Otaru 第10条(1)): dashboard only, the group has no button."""
        return self._staff("cancel_terms")

    # -- staff in the LINE group (a card's button, tapped whenever) ---------------------------------------

    def _group(self, action: str, **extra) -> str:
        group = StaffGroup(self.client, OFFICE, channel_secret=self.rt.config.channel_secret(OFFICE),
                           group_id=GROUP, fake=self.fake_line, clock=self.rt.clock)
        before = len(self.fake_line.texts_to(GROUP))
        assert group.taps(staff_postback_data(OFFICE, action, self.reference, **extra)).status_code == 200
        return "\n".join(self.fake_line.texts_to(GROUP)[before:])

    def group_confirm(self) -> str:
        return self._group("confirm")

    def group_decline(self) -> str:
        return self._group("decline_yes", y=handoff.default_reason())

    def group_attended(self) -> str:
        return self._group("attended")

    def group_no_show(self) -> str:
        return self._group("no_show")

    # -- jobs ----------------------------------------------------------------------------------------

    def expiry_job(self) -> str:
        booking_jobs.run_due(self.rt)
        return ""


# Actions tried once the session has begun and its no-show minutes passed (the others: well before it).
AFTER_START = {"staff_attended", "staff_no_show", "group_attended", "group_no_show", "staff_correct_to_attended", "staff_correct_to_no_show",
               "staff_correct_to_cancelled", "expiry_job"}
ACTIONS = [name for name in vars(Cell) if name.startswith(("chat_", "stale_", "proposal_", "book_", "form_",
                                                           "staff_", "group_", "expiry", "delete_"))]



# (status, action) -> (new status, audit entries, staff notices, messages queued to the user) of each allowed
# transition; every other cell of the matrix changes nothing.
ALLOWED: dict[tuple[str, str], tuple[str, tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    ("requested", "chat_withdraw"): ("withdrawn", (), ("withdrawn",), ()),
    ("requested", "chat_cancel"): ("withdrawn", (), ("withdrawn",), ()),          # an old 予約確認's button
    ("requested", "stale_withdraw_yes"): ("withdrawn", (), ("withdrawn",), ()),
    ("requested", "staff_confirm"): ("confirmed", ("confirm",), (), ("outcome_confirmed",)),
    ("requested", "staff_decline"): ("declined", ("decline",), (), ("outcome_declined",)),
    ("requested", "staff_propose"): ("proposed", ("propose",), (), ("outcome_proposed",)),
    ("requested", "staff_cancel_user"): ("withdrawn", ("withdraw_for_user",), (), ("outcome_cancelled_for_user",)),
    ("requested", "expiry_job"): ("expired", (), ("expired",), ("request_expired",)),
    ("requested", "group_confirm"): ("confirmed", ("confirm",), (), ("outcome_confirmed",)),
    ("requested", "group_decline"): ("declined", ("decline",), (), ("outcome_declined",)),
    ("requested", "delete_data"): ("withdrawn", (), ("withdrawn",), ()),
    ("proposed", "delete_data"): ("declined", (), ("proposal_declined",), ()),
    ("confirmed", "delete_data"): ("cancelled", (), ("cancelled",), ()),
    ("proposed", "chat_withdraw"): ("declined", (), ("proposal_declined",), ()),
    ("proposed", "chat_cancel"): ("declined", (), ("proposal_declined",), ()),
    ("proposed", "proposal_accept"): ("confirmed", ("accept_proposal",), ("proposal_accepted",), ()),
    ("proposed", "proposal_decline"): ("declined", ("reject_proposal",), ("proposal_declined",), ()),
    ("proposed", "staff_decline"): ("declined", ("decline",), (), ("outcome_declined",)),
    ("proposed", "staff_cancel_user"): ("declined", ("withdraw_for_user",), (), ("outcome_cancelled_for_user",)),
    ("proposed", "expiry_job"): ("expired", (), ("expired",), ("request_expired",)),
    ("confirmed", "chat_cancel"): ("cancelled", (), ("cancelled",), ()),
    ("confirmed", "stale_cancel_yes"): ("cancelled", (), ("cancelled",), ()),
    ("confirmed", "staff_attended"): ("attended", ("attended",), (), ()),
    ("confirmed", "staff_no_show"): ("no_show", ("no_show",), (), ()),
    ("confirmed", "group_attended"): ("attended", ("attended",), (), ()),
    ("confirmed", "group_no_show"): ("no_show", ("no_show",), (), ()),
    ("confirmed", "staff_cancel_user"): ("cancelled", ("cancel_for_user",), (), ("outcome_cancelled_for_user",)),
    ("confirmed", "staff_cancel_office"): ("cancelled_by_office", ("cancel_by_office",), (),
                                           ("outcome_cancelled_by_office",)),
    ("confirmed", "staff_cancel_terms"): ("cancelled_by_office", ("cancel_by_terms",), (),
                                          ("outcome_cancelled_by_terms",)),
    # A recorded attendance corrected (never told: the record was not either).
    ("attended", "staff_correct_to_no_show"): ("no_show", ("correct_attendance",), (), ()),
    ("no_show", "staff_correct_to_attended"): ("attended", ("correct_attendance",), (), ()),
    ("no_show", "staff_correct_to_cancelled"): ("cancelled", ("correct_attendance",), (), ()),
}
# What the user is told in chat when it was done (once), and the words of a refusal.
CHAT_DONE = {"withdrawn": "取り下げました", "declined": "辞退", "cancelled": "キャンセルしました",
             "confirmed": "予約が確定しました"}
CHAT_REFUSED = ("何も変更していません", "していません", "現在の状況は")
STAFF_REFUSED = ("何も変更していません", "すでに済んでいます", "できません", "お待ちください")
GROUP_REFUSED = ("できません", "すでに「")
GROUP_DONE = ("を承認しました", "をお断りしました", "を記録しました")


def test_the_table_names_every_status_and_only_real_cells():
    assert set(PATHS) == set(lifecycle.STATUSES)
    assert {status for status, _ in ALLOWED} <= set(lifecycle.STATUSES)
    assert {action for _, action in ALLOWED} <= set(ACTIONS)


# On PostgreSQL by default: every cell that changes something, and every sixth of the rest (all with `-m heavy`).
@pytest.mark.pg_sample(every=6, keep=lambda params: (params["status"], params["action"]) in ALLOWED)
@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("status", lifecycle.STATUSES)
def test_every_status_against_every_action(rt, app, client, user_factory, fake_line, status, action):
    cell = Cell(rt, app, client, user_factory(OFFICE), fake_line, status)
    if action in AFTER_START:
        rt.clock.freeze(cell.booking().slot_start + timedelta(minutes=11))
        assert login(cell.staff, username="sato").status_code == 302
    said = getattr(cell, action)()
    change = cell.change()
    assert change["bookings"] is None                                    # nothing booked twice, from any route
    if (status, action) in ALLOWED:
        to, audited, noticed, told = ALLOWED[status, action]
        assert (change["status"], tuple(change["audit"]), tuple(change["notices"]), tuple(change["told"])) == (
            to, audited, noticed, told)
        if to in lifecycle.TERMINAL_STATUSES and status in lifecycle.OPEN_STATUSES:
            assert cell.booking().closed_at == rt.clock.now() and cell.observed()["seats"] == 0
        if action == "delete_data":
            assert "個人情報を削除しました" in said and cell.booking().details is None, said
        elif action.startswith(("chat_", "stale_", "proposal_")):
            assert said.count(CHAT_DONE[to]) >= 1
        elif action.startswith("staff_"):
            assert said and "何も変更していません" not in said and "できません" not in said, said
        elif action.startswith("group_"):
            assert f"{cell.reference}" in said and any(done in said for done in GROUP_DONE), said
        return
    assert change == {"status": None, "bookings": None, "seats": None, "audit": [], "notices": [], "told": []}
    if action == "book_again":
        # Open: it names the booking it has; closed: a new request begins (this one stays as it is).
        assert (f"受付番号: {cell.reference}" in said) if status in lifecycle.OPEN_STATUSES else "【確認 1/5】" in said
    elif action == "form_again":
        assert f"受付番号: {cell.reference}" in said and (
            status == "requested" or "その後、状況が変わっています" in said)
    elif action == "delete_data":                      # closed already: only the details go
        assert "個人情報を削除しました" in said and cell.booking().details is None, said
    elif action == "expiry_job":
        assert said == ""
    elif action.startswith("group_"):
        assert f"{cell.reference}" in said and any(words in said for words in GROUP_REFUSED), said
        assert not any(done in said for done in GROUP_DONE), said
    elif action.startswith("staff_"):
        assert any(words in said for words in STAFF_REFUSED), said
        if status == "no_show" and action == "staff_cancel_user":
            # The person phoned after the 欠席 was recorded: the refusal points to the correction that fits.
            assert "「欠席の訂正」から「キャンセル（本人）」に訂正できます" in said, said
        assert "この操作はできませんでした" not in said, said           # the unexplained fallback
    else:
        assert any(words in said for words in CHAT_REFUSED), said
        assert f"{cell.reference}" in said
        assert not any(done in said for done in ("取り下げました", "キャンセルしました", "予約が確定しました")), said
