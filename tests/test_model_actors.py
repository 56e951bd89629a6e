"""Model-based test across actors: LINE users of both offices, their browsers on the details form, staff on the
dashboard and in the staff group, the clock, terms updates and the worker, interleaved against one app and one
database.

Where tests/test_fuzz_conversation.py throws junk at the chat, this machine keeps a model of what each actor
did and checks what the others must see of it. After every step:

- every webhook event LINE delivers once (not a duplicate, not flood-limited) gets exactly one reply, of at
  most five messages; no reply is the internal-error apology, and no error is logged;
- every call to LINE obeys LINE's limits (the fake answers 400 otherwise);
- no slot is over capacity; at most `max_open_per_user` open bookings per LINE account among bookings made
  online; a job seeker number open on two accounts is shown to staff on both requests (the form takes it
  whatever the number, so as not to tell a stranger who booked: staff keep the one-per-person rule);
- every booking status change is one of interface.md's (bot/services/lifecycle.py TRANSITIONS);
- no value typed on the form, nor what staff type (notes, memos, reasons), reaches LINE;
- no page answers 5xx (the form, the dashboard, a dashboard button's address opened again);
- an open booking ahead or under way keeps its details (staff run the session with them);
- every push row is delivered at most once (its retry key) and every reply token used once;
- every reference the user saw (the form's completion page, a LINE message) is a booking of theirs staff can
  open on the dashboard;
- a booking stopped under the terms (利用規約に基づき中止する) stays cancelled by the office, seatless and recorded
  once as such, whatever the user or staff do after; its user is told once, naming their office's article,
  never with the office's 都合 apology (each stop is checked as it is made: see `_expect_stop`);
- while a LINE account's online booking is stopped (on a booking's page, or with a stop under the terms), it
  makes no request.

The default run is bounded and derandomised (CI sees the same examples every time); `-m heavy` runs far more.
"""
from __future__ import annotations

import json
import os
import re
from collections import Counter
from datetime import timedelta

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from sqlalchemy import func, select

from bot.models import Booking, Conversation, OutboxMessage, SlotBlock, SlotClaim, TermsVersion
from bot.services import holds, lifecycle, requests
from bot.services import slots as slotsvc
from bot.staff import handoff, personal
from bot.staff.models import AuditEntry
from bot.worker import Worker
from tests.formflow import Page, form_link, path_of, uris
from tests.lineuser import StaffGroup, as_redelivery, new_group_id
from tests.reliability.kit import (Person, capacity_problems, forward_word, last_message, leaks, line_users,
                                   postbacks, quick_labels, recent_postbacks, run_machine, skip_unless_heavy,
                                   states_valid)
from tests.staffkit import fast_password_hashing  # noqa: F401 - autouse fixture
from tests.staffkit import create_staff, csrf, login

OFFICES = ("sakata", "sakata", "otaru", "otaru")
USERS = range(len(OFFICES))
WORDS = ["予約", "よやく", "ﾖﾔｸ", "予約確認", "予約の確認", "ヘルプ", "戻る", "最初から", "中止", "同意する",
         "同意しない", "どういする", "同意しまs", "はい", "ﾊｲ", "いいえ", "わからない", "続きから", "はじめから",
         "予役", "よやくしたい", "ＹＥＳ", "予　約", " 同意する ", "次の週", "前の週", "１", "２", "１０", "3",
         "12/7 14:00", "１２／１４　１５：００", "12月14日15時", "キャンセル", "取り消し", "データ削除", "English",
         "やさしい日本語", "日本語", "😀", "ありがとう"]
STAFF_ACTIONS = ("confirm", "decline", "propose", "attended", "no_show", "cancel_user", "cancel_office",
                 "block_user", "unblock_user", "correct_attendance", "invitation", "called", "note", "cancel_terms",
                 "invitation_undo", "called_undo")
FITS = {"confirm": ("requested",), "decline": ("requested", "proposed"), "propose": ("requested",),
        "attended": ("confirmed",), "no_show": ("confirmed",), "cancel_user": ("requested", "proposed", "confirmed"),
        "cancel_office": ("confirmed",), "block_user": ("no_show", "confirmed"), "unblock_user": ("no_show",),
        "correct_attendance": ("attended", "no_show"), "invitation": ("confirmed",), "called": ("confirmed",),
        "note": ("requested", "confirmed"), "cancel_terms": ("confirmed",), "invitation_undo": ("confirmed",),
        "called_undo": ("confirmed",)}
# 利用規約に基づき中止する: the article each office's message names (ja and easy write it one way, en another).
ARTICLES = {"sakata": ("第12条(1)", "Article 12(1)"), "otaru": ("第10条(1)", "Article 10(1)")}
NO_APOLOGY = ("申し訳", "おわび", "ごめんなさい", "sorry", "apologi", "都合", "つごう")
# What the user, or staff with a page left open, try after a stop under the terms.
LATER = ("キャンセル", "予約", "予約確認", "attended", "cancel_user", "cancel_office", "cancel_terms", "confirm")
APOLOGY = "システムの不具合"
REFERENCE = re.compile(r"\b[A-HJ-NP-Z2-9]{4}-[A-HJ-NP-Z2-9]{4}\b")
# Every change a step may make to one booking: one lifecycle transition.
ALLOWED = {(source, t["dest"]) for t in lifecycle.TRANSITIONS
           for source in ([t["source"]] if isinstance(t["source"], str) else t["source"])}
HUNT_ENV = "MODEL_HUNT"   # 1: examples drawn at random on each run (hunting), not the same ones as CI's
STAFF_USER = {"sakata": "model_sakata", "otaru": "model_otaru"}


class Env:
    """The app, the fake LINE API and what the run has seen so far (shared by every example)."""

    app = None
    rt = None
    fake = None
    groups: dict[str, str] = {}
    people = 0
    secrets: list[str] = []
    seekers: dict[str, list[str]] = {}   # per office: job seeker numbers several users type
    statuses: list[tuple[str, int]] = []
    errors: list[str] = []
    calls_seen = 0
    status_of: dict[str, str] = {}       # booking reference -> status at the last check
    acknowledged: dict[str, tuple[str, str]] = {}   # reference -> (office, user id) the user was shown it for
    tokens: dict[str, str] = {}          # reply token -> what it was for (fresh events only)
    terms_published = 0
    push_keys: set[str] = set()          # retry keys of every push row seen (the purge deletes old rows)
    outcomes: Counter = Counter()        # staff action: status before -> after (the run's coverage)
    purged: set[str] = set()             # references of closed requests the retention purge deleted
    typed: dict[str, list[str]] = {}     # per office: job seeker numbers typed on the form
    stopped: dict[str, str] = {}         # reference -> office: bookings staff stopped under the terms
    deliveries_checked = 0               # LINE deliveries the stop's invariant has seen
    stopped_after: dict[str, tuple[str, int]] = {}   # reference -> (its user, the LINE deliveries before the stop)
    stop_keys: dict[str, str] = {}       # retry key of the user's message of such a stop -> its reference
    blocked_since: dict[int, object] = {}   # conversation id -> when its online booking was seen stopped
    tmp = None


def _person() -> Person:
    person = Person(Env.people + 5000)
    Env.people += 1
    Env.secrets.extend(person.secrets())
    return person


def _canary(what: str) -> str:
    """Free text staff type, naming someone (a value no message can contain by chance)."""
    value = f"{what}{Env.people:04d} 本人より電話 080-7{Env.people % 1000:03d}-{Env.people % 10000:04d}"
    Env.people += 1
    Env.secrets.append(value)
    return value


class ActorsModel(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.rt, self.fake = Env.rt, Env.fake
        self.client, self.users = line_users(Env.app, self.fake, OFFICES)
        self.browsers = [Env.app.test_client() for _ in OFFICES]
        self.kept_pages: list[tuple[int, Page]] = []   # pages a browser still has (for resume, double submit)
        self.seen_postbacks: list[tuple[int, str]] = []
        self.staff = {office: Env.app.test_client() for office in ("sakata", "otaru")}
        self.group = {office: StaffGroup(self.client, office, channel_secret=self.rt.config.channel_secret(office),
                                         group_id=Env.groups[office], fake=self.fake, clock=self.rt.clock)
                      for office in ("sakata", "otaru")}

    # -- sending --------------------------------------------------------------------------------------------
    def _expect_reply(self, event: dict, why: str) -> None:
        token = event.get("replyToken")
        if token:
            Env.tokens[token] = why

    def _post(self, i: int, *events: dict, fresh: bool = True) -> None:
        user = self.users[i]
        self.rt.clock.advance(seconds=2)
        if fresh:
            for event in events:
                self._expect_reply(event, f"user {i} {event['type']} {_content(event)!r}")
        response = user.send(*events)
        Env.statuses.append(("webhook", response.status_code))
        self.seen_postbacks.extend((i, data) for data in recent_postbacks(self.fake, user.user_id))

    def _text(self, i: int, text: str) -> None:
        self._post(i, self.users[i].text_event(text))

    def _last_message(self, i: int) -> dict | None:
        return last_message(self.fake, self.users[i].user_id)

    # -- LINE users ------------------------------------------------------------------------------------------
    @rule(i=st.sampled_from(USERS), word=st.sampled_from(WORDS))
    def says(self, i, word):
        self._text(i, word)

    @rule(i=st.sampled_from(USERS))
    def sends_a_sticker(self, i):
        user = self.users[i]
        self._post(i, user.event("message", message=user.sticker_message()))

    @rule(i=st.sampled_from(USERS), pick=st.integers(0, 12), typed=st.booleans())
    def answers_the_last_message(self, i, pick, typed):
        """Taps a quick-reply button or types its label."""
        message = self._last_message(i)
        if message is None:
            return self._text(i, "予約")
        if typed:
            labels = quick_labels(message)
            return self._text(i, labels[pick % len(labels)] if labels else "予約")
        found = postbacks(message)
        if found:
            self._post(i, self.users[i].postback_event(found[pick % len(found)]))

    @rule(pick=st.integers(0, 10_000))
    def taps_an_old_button(self, pick):
        if not self.seen_postbacks:
            return
        i, data = self.seen_postbacks[pick % len(self.seen_postbacks)]
        self._post(i, self.users[i].postback_event(data))

    @rule(i=st.sampled_from(USERS), redelivery=st.booleans())
    def the_same_webhook_arrives_twice(self, i, redelivery):
        """A double tap as LINE shows it: the last body again (or LINE's redelivery of its events)."""
        user = self.users[i]
        if user.last_body is None:
            return
        raw = user.last_body
        if redelivery:
            raw = user.body([as_redelivery(e) for e in json.loads(raw)["events"]])
        before = len(self.fake.deliveries())
        response = user.post(raw)
        Env.statuses.append(("webhook again", response.status_code))
        assert len(self.fake.deliveries()) == before, "a webhook delivered again had an effect"

    @rule(i=st.sampled_from(USERS), first=st.sampled_from(WORDS), second=st.sampled_from(WORDS),
          together=st.booleans())
    def two_events_quickly(self, i, first, second, together):
        """Two different events within a few milliseconds: in one body, or in two posts."""
        user = self.users[i]
        start = self.rt.clock.now()
        one = user.text_event(first, timestamp=start)
        two = user.text_event(second, timestamp=start + timedelta(milliseconds=3))
        if together:
            self._post(i, one, two)
        else:
            self._post(i, one)
            self._expect_reply(two, f"user {i} quick {second!r}")
            Env.statuses.append(("webhook", user.send(two).status_code))

    @rule(i=st.sampled_from(USERS), steps=st.integers(5, 25), wide=st.booleans())
    def walks_ahead(self, i, steps, wide):
        """Does what the step asks for a while (random input rarely gets past consent)."""
        for _ in range(steps):
            word = forward_word(self.rt, self.users[i], wide)
            if word is None:
                return self.fills_in_the_form(i, "valid")
            self._text(i, word)

    @rule(i=st.sampled_from(USERS))
    def unfollows_and_follows_again(self, i):
        user = self.users[i]
        self._post(i, user.unfollow_event())
        self._post(i, user.follow_event(unblocked=True))

    # -- the details form --------------------------------------------------------------------------------------
    @rule(i=st.sampled_from(USERS), how=st.sampled_from(["valid", "valid", "shared_seeker", "invalid", "double",
                                                          "edit", "stale_link"]))
    def fills_in_the_form(self, i, how):
        user = self.users[i]
        try:
            url = form_link(self.fake.messages_to(user.user_id))
        except AssertionError:
            return
        if how == "stale_link":
            links = [u for m in self.fake.messages_to(user.user_id) for u in uris(m) if "/form/" in u]
            url = links[0]
        browser = self.browsers[i]
        page = Page.get(browser, url)
        self._status("form get", page.status)
        if page.status != 200 or len(page.forms) != 1:
            return
        office = self.rt.offices[user.office]
        person = _person()
        answers = person.answers(office)
        if how == "shared_seeker":
            pool = Env.seekers.setdefault(user.office, [])
            if not pool:
                pool.append(person.seeker_number)
            answers["seeker_number"] = pool[0]
        if answers.get("seeker_number"):   # a number staff may later hear on the phone
            Env.typed.setdefault(user.office, []).append(answers["seeker_number"])
        if how == "invalid":
            answers = {**answers, "phone": "０９０-ｘｘｘ", "birth_date": "2999-01-01"}
            answers.pop("name", None)
        confirmation = page.submit(browser, answers)
        self._status("form check", confirmation.status)
        if confirmation.status != 200 or len(confirmation.forms) != 1:
            return
        self.kept_pages.append((i, confirmation))
        if how == "edit":
            again = Page(browser.post(path_of(url) + "/edit", data=confirmation.form.fields, follow_redirects=True))
            self._status("form edit", again.status)
            return
        done = confirmation.submit(browser)
        self._status("form submit", done.status)
        self._acknowledged(i, done)
        if how == "double":
            again = confirmation.submit(browser)
            self._status("form submit again", again.status)
            self._acknowledged(i, again)

    @rule(pick=st.integers(0, 1000))
    def submits_a_kept_page_again(self, pick):
        """A confirmation (or a page that kept what was typed) sent again later: the back button, a second tab."""
        if not self.kept_pages:
            return
        i, page = self.kept_pages[pick % len(self.kept_pages)]
        forms = page.forms
        if not forms:
            return
        form = forms[-1] if any(f.action.endswith("/resume") for f in forms) else forms[0]
        if form.method != "post":
            return
        answer = Page(self.browsers[i].post(form.action, data=form.fields, follow_redirects=True))
        self._status("form kept page", answer.status)
        self._acknowledged(i, answer)
        if answer.status == 200 and answer.forms:
            self.kept_pages.append((i, answer))

    def _acknowledged(self, i: int, page: Page) -> None:
        """A completion page: its reference is the user's request, and staff find it in their queue."""
        if page.status == 200 and "受付番号:" in page.html:
            reference = re.search(r"受付番号: ([A-Z0-9-]+)", page.html).group(1)
            office = self.users[i].office
            Env.acknowledged[reference] = (office, self.users[i].user_id)
            queue = self._staff(office, "/staff/queue")
            booking = self._staff(office, f"/staff/bookings/{reference}")
            assert booking.status_code == 200 and reference in booking.get_data(as_text=True)
            with self.rt.db.reading() as s:
                status = s.scalar(select(Booking.status).where(Booking.reference == reference))
            if status == lifecycle.REQUESTED:
                assert reference in queue.get_data(as_text=True), f"request {reference} not in the staff queue"

    def _status(self, what: str, status: int) -> None:
        Env.statuses.append((what, status))

    # -- staff ----------------------------------------------------------------------------------------------
    def _staff(self, office: str, path: str, data: dict | None = None):
        """A dashboard request of the office's staff member (a POST of `data` when given; its redirect is not
        followed, so its message waits for the next page), logged in again when the session ran out (the clock
        moves days)."""
        client = self.staff[office]
        for _ in range(2):
            if data is not None:
                response = client.post(path, data={"csrf_token": csrf(client), **data},
                                       headers={"Sec-Fetch-Site": "same-origin"})
            else:
                response = client.get(path)
            if response.status_code != 302 or "/staff/login" not in response.headers.get("Location", ""):
                break
            assert login(client, STAFF_USER[office]).status_code == 302
        self._status(f"staff {path}", response.status_code)
        return response

    @rule(pick=st.integers(0, 10_000), action=st.sampled_from(STAFF_ACTIONS), slot_pick=st.integers(0, 50),
          aimed=st.integers(0, 4), tick=st.booleans())
    def staff_act_on_the_dashboard(self, pick, action, slot_pick, aimed, tick=False):
        """A staff member presses a booking page's button: mostly on a booking it fits, sometimes on any (a page
        left open while the booking moved on)."""
        with self.rt.db.reading() as s:
            rows = s.execute(select(Booking.reference, Booking.office_id, Booking.status, Booking.slot_start)
                             .order_by(Booking.id)).all()
        fitting = [row for row in rows if row.status in FITS[action]]
        rows = fitting if aimed and fitting else rows
        if not rows:
            return
        reference, office, status, start = rows[pick % len(rows)]
        data = {}
        if action == "propose":
            with self.rt.db.reading() as s:
                free = [slot["at"] for week in range(2)
                        for slot in holds.week_page(s, self.rt.offices[office], self.rt.clock.now(), week)["slots"]
                        if slot["at"] != start]
            if not free:
                return
            data["slot"] = free[slot_pick % len(free)].isoformat()
        if action == "decline":
            data["reason"] = handoff.default_reason()   # the dashboard's reason is chosen, never defaulted
        if action == "correct_attendance":
            # A 欠席 becomes 出席, or a cancellation the person had called about in time.
            to = ("attended" if pick % 3 else "cancelled") if status == "no_show" else "no_show"
            data.update(to=to, reason="other", note=_canary("訂正理由"))
        if action in ("cancel_user", "note"):   # what staff write may name the person: never sent to LINE
            data["note"] = _canary("職員メモ")
        if action == "cancel_terms" and tick:   # 「今後のオンライン予約も停止する」 ticked
            data["block_user"] = "1"
        before = self._stop_view(reference) if action == "cancel_terms" else None
        self._staff(office, f"/staff/bookings/{reference}/{action}", data)
        if before is not None:
            self._expect_stop(reference, office, before, self._stop_view(reference), block=tick)
        if pick % 7 == 0:   # the button's address opened again from the history: a page, never a 500
            self._staff(office, f"/staff/bookings/{reference}/{action}")
        with self.rt.db.reading() as s:
            after = s.scalar(select(Booking.status).where(Booking.reference == reference))
        Env.outcomes[f"{action}:{status}->{after}"] += 1

    def _stop_view(self, reference: str) -> dict:
        """What a stop under the terms may change of a booking: its status and seat, its audit trail, the
        messages queued to its user, whether their online booking is stopped, their open bookings ahead."""
        now = self.rt.clock.now()
        with self.rt.db.reading() as s:
            booking = s.scalar(select(Booking).where(Booking.reference == reference))
            conv = s.get(Conversation, booking.conversation_id) if booking.conversation_id else None
            return {
                "status": booking.status, "booking_id": booking.id, "ahead": booking.slot_start > now,
                "seats": s.scalar(select(func.count()).select_from(SlotClaim).where(
                    SlotClaim.booking_id == booking.id)),
                "audit": list(s.scalars(select(AuditEntry.action).where(AuditEntry.booking_id == booking.id)
                                        .order_by(AuditEntry.id))),
                "pushes": list(s.execute(select(OutboxMessage.purpose, OutboxMessage.retry_key).where(
                    OutboxMessage.booking_reference == reference, OutboxMessage.kind == "push")
                    .order_by(OutboxMessage.id)).all()),
                "conv": None if conv is None else conv.id, "conv_office": None if conv is None else conv.office_id,
                "user": None if conv is None else conv.line_user_id,
                "followed": conv is not None and conv.followed,
                "blocked": conv is not None and bool(conv.booking_blocked),
                "open_ahead": None if conv is None else requests.open_ahead(s, conv.office_id, conv.id, now),
            }

    def _expect_stop(self, reference: str, office: str, before: dict, after: dict, block: bool) -> None:
        """利用規約に基づき中止する (decisions.cancel_under_terms), as the model expects it: a confirmed booking is
        cancelled by the office, recorded as a stop under the terms, its seat given back, its user (when LINE
        reaches them) sent one message naming the article, and their online booking stopped too when the box was
        ticked; on any other booking (a stale page) nothing at all changes."""
        if before["status"] != lifecycle.CONFIRMED:
            assert after == before, f"{reference}: a stop under the terms on a {before['status']} booking acted"
            return
        assert after["status"] == lifecycle.CANCELLED_BY_OFFICE and after["seats"] == 0, after
        blocks = block and before["conv"] is not None and before["conv_office"] == office
        added = ["cancel_by_terms"] + (["block_user"] if blocks and not before["blocked"] else [])
        assert after["audit"] == before["audit"] + added, (reference, before["audit"], after["audit"])
        told = after["pushes"][len(before["pushes"]):]
        assert [purpose for purpose, _ in told] == (["outcome_cancelled_by_terms"] if before["followed"] else []), told
        assert after["blocked"] == (before["blocked"] or blocks), f"{reference}: the tick box ({block}) not obeyed"
        if before["conv"] is not None:
            # Its seat is free and it counts no more against the user's limit: they may book again (unless stopped).
            assert after["open_ahead"] == before["open_ahead"] - before["ahead"], (before, after)
        if blocks:
            Env.blocked_since.setdefault(before["conv"], self.rt.clock.now())
        Env.stopped[reference] = office
        if before["user"] is not None:
            Env.stopped_after[reference] = (before["user"], len(self.fake.deliveries()))
        Env.stop_keys.update({key: reference for _, key in told})

    @rule(i=st.sampled_from(USERS), stop=st.sampled_from([None, None, "plain", "ticked"]),
          later=st.sampled_from(LATER))
    def staff_confirm_a_users_request(self, i, stop, later, walk=False):
        """Staff confirm the user's request (confirmed bookings are rare otherwise; `walk`: the user walks to one
        first); or then stop it under the terms at once (the box ticked or not), after which the user, or staff
        with a page left open, try what they may: a cancel, a new booking, a record of attendance, the other stop."""
        if walk:
            self.walks_ahead(i, 25, False)
            self.status_changes_follow_the_lifecycle()   # each change of this step, seen as it happens
        user = self.users[i]
        with self.rt.db.reading() as s:
            rows = s.execute(select(Booking.reference, Booking.status).join(
                Conversation, Conversation.id == Booking.conversation_id).where(
                Conversation.line_user_id == user.user_id, Conversation.office_id == user.office,
                Booking.status.in_((lifecycle.REQUESTED, lifecycle.CONFIRMED)),
                Booking.slot_start > self.rt.clock.now()).order_by(Booking.id.desc())).all()
        if not rows:
            return
        reference, status = rows[0]
        if status == lifecycle.REQUESTED:
            self._staff(user.office, f"/staff/bookings/{reference}/confirm", {"same_number_checked": "1"})
        if stop is None:
            return
        self.status_changes_follow_the_lifecycle()
        before = self._stop_view(reference)
        self._staff(user.office, f"/staff/bookings/{reference}/cancel_terms",
                    {"block_user": "1"} if stop == "ticked" else {})
        settled = self._stop_view(reference)
        self._expect_stop(reference, user.office, before, settled, block=stop == "ticked")
        Env.outcomes[f"cancel_terms({stop}):{before['status']}->{settled['status']}"] += 1
        if later in STAFF_ACTIONS:
            self._staff(user.office, f"/staff/bookings/{reference}/{later}")
            assert self._stop_view(reference) == settled, f"{later} changed {reference} stopped under the terms"
        else:
            self._text(i, later)

    @initialize(i=st.sampled_from(USERS), stop=st.sampled_from(["plain", "ticked", None]),
                later=st.sampled_from(LATER))
    def an_example_opens_with_a_confirmed_booking(self, i, stop, later):
        """Every example starts with a user's booking confirmed, mostly stopped under the terms at once: whatever
        the examples drawn (they change with this file), the run sees a stop and what comes after it."""
        self.staff_confirm_a_users_request(i, stop, later, walk=True)

    @rule(pick=st.integers(0, 10_000), action=st.sampled_from(STAFF_ACTIONS[:5]), slot_pick=st.integers(0, 50))
    def staff_decide(self, pick, action, slot_pick):
        """The decisions again (a busy office): rules are drawn evenly, and a request waits for these."""
        self.staff_act_on_the_dashboard(pick, action, slot_pick, aimed=1)

    @rule(office=st.sampled_from(["sakata", "otaru"]), pick=st.integers(0, 1000))
    def staff_tap_a_card_in_the_group(self, office, pick):
        group = self.group[office]
        found = [d for m in self.fake.messages_to(group.group_id) for d in postbacks(m)]
        if not found:
            return
        event = group.postback_event(found[pick % len(found)])
        self._expect_reply(event, f"staff group {office} tap")
        self.rt.clock.advance(seconds=2)
        Env.statuses.append(("group", group.send(event).status_code))

    @rule(office=st.sampled_from(["sakata", "otaru"]), day=st.integers(0, 20), whole=st.booleans())
    def staff_block_a_slot_or_day(self, office, day, whole):
        now = self.rt.clock.now()
        when = now.date() + timedelta(days=day)
        data = {"day": when.isoformat(), "reason": _canary("停止理由")}
        if not whole:
            starts = slotsvc.candidate_starts(self.rt.offices[office], when, when + timedelta(days=1))
            starts = [t for t in starts if t.date() == when]
            if not starts:
                return
            data["slot"] = starts[0].isoformat()
        self._staff(office, "/staff/blocks", data)

    @rule(office=st.sampled_from(["sakata", "otaru"]), pick=st.integers(0, 1000))
    def staff_lift_a_block(self, office, pick):
        """停止を解除: a slot or day staff closed opens again (as the page offered it)."""
        with self.rt.db.reading() as s:
            rows = s.execute(select(SlotBlock.id, SlotBlock.day, SlotBlock.slot_start).where(
                SlotBlock.office_id == office).order_by(SlotBlock.id)).all()
        if not rows:
            return
        block_id, day, start = rows[pick % len(rows)]
        data = {"day": day, **({"slot": start.isoformat()} if start else {})}
        self._staff(office, f"/staff/blocks/{block_id}/delete", data)
        with self.rt.db.reading() as s:
            left = s.scalar(select(func.count()).select_from(SlotBlock).where(
                SlotBlock.office_id == office, SlotBlock.day == day,
                SlotBlock.slot_start.is_(None) if start is None else SlotBlock.slot_start == start))
        assert left == 0, f"{office} {day} {start}: still closed after 停止を解除"

    @rule(office=st.sampled_from(["sakata", "otaru"]), slot_pick=st.integers(0, 200),
          source=st.sampled_from(["phone", "window", "online"]), known=st.integers(0, 3), reason=st.booleans())
    def staff_take_a_phone_booking(self, office, slot_pick, source, known, reason):
        """A booking staff make for a caller or a visitor (no LINE account): sometimes of a job seeker number a
        LINE user typed, whose online booking may be stopped (then only with a reason staff give)."""
        now = self.rt.clock.now()
        starts = [t for t in slotsvc.candidate_starts(self.rt.offices[office], now.date(),
                                                      now.date() + timedelta(days=28)) if t > now]
        if not starts:
            return
        answers = _person().answers(self.rt.offices[office])
        typed = Env.typed.get(office, [])
        if known and typed and "seeker_number" in answers:
            answers["seeker_number"] = typed[(slot_pick + known) % len(typed)]
        data = {**answers, "slot": starts[slot_pick % len(starts)].isoformat(), "source": source}
        if reason:
            data["override_reason"] = _canary("理由")
        with self.rt.db.reading() as s:
            digest = personal.seeker_hash(self.rt, answers.get("seeker_number") or "")
            refused = bool(digest) and requests.refused_online(s, office, digest)
            last = s.scalar(select(func.max(Booking.id))) or 0
        response = self._staff(office, "/staff/bookings/new", data)
        with self.rt.db.reading() as s:
            new = s.scalars(select(Booking).where(Booking.id > last)).all()
        assert len(new) == (response.status_code == 302), (response.status_code, new)
        for booking in new:
            assert (booking.status, booking.source, booking.conversation_id) == ("confirmed", source, None), booking
            Env.outcomes[f"create_booking:{source}{'+refused_online' if refused else ''}"] += 1
        if refused and not reason:
            assert not new, "a booking made by phone for a person whose online booking is stopped, without a reason"

    # -- time, terms and the worker -----------------------------------------------------------------------------
    @rule(minutes=st.sampled_from([0, 1, 5, 16, 61, 3 * 60, 13 * 60, 24 * 60, 49 * 60, 7 * 24 * 60]),
          worker=st.booleans())
    def time_passes(self, minutes, worker):
        """The clock moves (across holds' expiry, the notice deadlines, reminders, sessions' starts); the worker
        may run its due jobs and send what is queued."""
        self.rt.clock.advance(minutes=minutes)
        if worker:
            Worker(self.rt).run_once()

    @rule(office=st.sampled_from(["sakata", "otaru"]), days=st.integers(0, 2))
    def new_terms_are_published(self, office, days):
        """A new terms version, in force today or in a day or two: users mid-booking consent again."""
        if Env.terms_published >= 4:
            return

        today = self.rt.clock.now().date()
        version = (today + timedelta(days=days)).isoformat()
        with self.rt.db.reading() as s:
            if s.scalar(select(TermsVersion.id).where(TermsVersion.office_id == office,
                                                      TermsVersion.version >= version)) is not None:
                return
        path = Env.tmp / f"terms-{office}-{version}.md"
        path.write_text("第1条 改定後の本文です。", encoding="utf-8")
        result = Env.app.test_cli_runner().invoke(args=["terms", "publish", "--office", office, "--version",
                                                        version, "--file", str(path), "--summary", "予約方法を変更しました。"])
        assert result.exit_code == 0, result.output
        Env.terms_published += 1

    # -- what must hold after every step --------------------------------------------------------------------
    @invariant()
    def nothing_failed(self):
        bad = [(what, status) for what, status in Env.statuses if status >= 500]
        Env.statuses.clear()
        assert bad == []
        assert Env.errors == []

    @invariant()
    def every_fresh_event_got_exactly_one_reply(self):
        replies = Counter(d.reply_token for d in self.fake.deliveries("reply"))
        for token, why in list(Env.tokens.items()):
            if replies[token] > 1:
                raise AssertionError(f"{replies[token]} replies to one event ({why})")
            if replies[token] == 0:   # events come seconds apart: the flood limit never silences one here
                raise AssertionError(f"no reply to {why}")
        for delivery in self.fake.deliveries():
            assert APOLOGY not in _flat(delivery.messages), f"the internal-error apology was sent ({delivery.to})"
        Env.tokens.clear()

    @invariant()
    def every_call_to_line_obeyed_its_limits(self):
        calls = self.fake.calls
        for call in calls[Env.calls_seen:]:
            assert call.status is None or call.status != 400, f"LINE refused {call.path}: {call.response}"
            if isinstance(call.body, dict) and isinstance(call.body.get("messages"), list):
                assert len(call.body["messages"]) <= 5
            assert leaks(call.raw, Env.secrets) == [], f"personal data sent to LINE ({call.path})"
        Env.calls_seen = len(calls)

    @invariant()
    def seats_and_states(self):
        assert capacity_problems(self.rt) == []
        assert states_valid(self.rt) == []

    @invariant()
    def one_open_booking_per_person(self):
        now = self.rt.clock.now()
        with self.rt.db.reading() as s:
            bookings = s.scalars(select(Booking).where(
                Booking.status.in_(lifecycle.OPEN_STATUSES), Booking.slot_start > now,
                Booking.source == "line")).all()
            per_user = Counter((b.office_id, b.conversation_id) for b in bookings)
            for (office, conv), n in per_user.items():
                assert n <= self.rt.offices[office].booking.max_open_per_user, f"conversation {conv}: {n} open"
            seekers = {}
            for b in bookings:
                if b.seeker_hash:
                    seekers.setdefault((b.office_id, b.seeker_hash), []).append(b)
            for shared in (group for group in seekers.values() if len({b.conversation_id for b in group}) > 1):
                for b in shared:
                    others = {o.reference for o in shared if o.conversation_id != b.conversation_id}
                    shown = set(requests.same_number(s, b.office_id, b, now).open_references)
                    assert others <= shown, f"{b.reference}: the same number's {others - shown} not shown to staff"

    @invariant()
    def open_bookings_keep_their_details(self):
        """Staff run a session with its details: データ削除 closes a booking ahead first or refuses, and the
        retention purge waits long after the session. An open booking ahead or under way keeps them."""
        now = self.rt.clock.now()
        with self.rt.db.reading() as s:
            rows = s.execute(select(Booking.reference, Booking.office_id, Booking.slot_start).where(
                Booking.status.in_(lifecycle.OPEN_STATUSES), Booking.details.is_(None))).all()
        for reference, office, start in rows:
            under_way = start + timedelta(minutes=self.rt.offices[office].no_show_minutes)
            assert under_way <= now, f"open booking {reference} lost its details before its session ended"

    @invariant()
    def status_changes_follow_the_lifecycle(self):
        with self.rt.db.reading() as s:
            rows = s.execute(select(Booking.reference, Booking.status)).all()
        for reference, status in rows:
            before = Env.status_of.get(reference)
            if before is None:
                assert status in (lifecycle.REQUESTED, lifecycle.CONFIRMED), f"booking {reference} born {status}"
            elif before != status:
                assert (before, status) in ALLOWED, f"booking {reference}: {before} -> {status}"
            Env.status_of[reference] = status
        gone = set(Env.status_of) - {reference for reference, _ in rows}
        for reference in gone:   # the retention purge deletes closed requests only
            assert Env.status_of.pop(reference) in lifecycle.TERMINAL_STATUSES, f"open booking {reference} deleted"
            Env.purged.add(reference)

    @invariant()
    def a_stop_under_the_terms_stays_one(self):
        """A booking stopped under the terms stays cancelled by the office, without a seat and recorded once as
        such (a later cancel by the user, a record of attendance, the office's 都合 change nothing); its user is
        never sent the 都合's apology for it, and what they are sent names their office's article."""
        with self.rt.db.reading() as s:
            rows = {r.reference: r for r in s.execute(select(Booking.reference, Booking.id, Booking.status).where(
                Booking.reference.in_(list(Env.stopped)))).all()}
            seated = set(s.scalars(select(SlotClaim.booking_id)))
            stops = Counter(s.scalars(select(AuditEntry.booking_id).where(AuditEntry.action == "cancel_by_terms")))
            apologies = set(s.scalars(select(OutboxMessage.booking_reference).where(
                OutboxMessage.purpose == "outcome_cancelled_by_office")))
        for reference, office in Env.stopped.items():
            row = rows.get(reference)
            if row is None:
                assert reference in Env.purged, f"{reference} stopped under the terms vanished"
                continue
            assert row.status == lifecycle.CANCELLED_BY_OFFICE, f"{reference} stopped under the terms is {row.status}"
            assert row.id not in seated and stops[row.id] == 1, f"{reference}: a seat, or not one stop recorded"
            assert reference not in apologies, f"{reference} stopped under the terms, told of the office's 都合"
        everything = self.fake.deliveries()
        for n in range(Env.deliveries_checked, len(everything)):   # each delivery once, when it is new
            delivery = everything[n]
            if delivery.kind != "push":
                continue
            reference = Env.stop_keys.get(delivery.retry_key)
            if reference is not None:
                text = _flat(delivery.messages)
                assert reference in text and any(a in text for a in ARTICLES[Env.stopped[reference]]), text
                assert not any(word in text.lower() for word in NO_APOLOGY), text
                continue
            # Nothing queued before the stop (a confirmation, a reminder) reaches them after it: it went stale.
            for stopped, (user_id, seen) in Env.stopped_after.items():
                if delivery.to == user_id and stopped in _flat(delivery.messages):
                    assert n < seen, f"{stopped}: told more after its stop"
        Env.deliveries_checked = len(everything)

    @invariant()
    def a_stopped_account_makes_no_request(self):
        """While a LINE account's online booking is stopped (on the booking page, or with a stop under the terms),
        neither the chat nor the form makes it a request."""
        now = self.rt.clock.now()
        with self.rt.db.reading() as s:
            blocked = set(s.scalars(select(Conversation.id).where(Conversation.booking_blocked.is_(True))))
            for conv in set(Env.blocked_since) - blocked:   # lifted (unblock_user): it may book again
                del Env.blocked_since[conv]
            for conv in blocked:
                Env.blocked_since.setdefault(conv, now)
            made = s.execute(select(Booking.reference, Booking.conversation_id, Booking.created_at,
                                    Booking.decided_at, Booking.status).where(
                Booking.conversation_id.in_(list(blocked)))).all()
        late = [ref for ref, conv, created, _, _ in made if created > Env.blocked_since[conv]]
        assert late == [], f"requests made while the account's online booking was stopped: {late}"
        # Nor is a request it made before confirmed meanwhile (by staff, or by its yes to a slot staff offered),
        # as a request of the same job seeker number on another LINE account is not (requests.same_number).
        booked = [ref for ref, conv, _, decided, status in made
                  if decided is not None and decided > Env.blocked_since[conv] and status != lifecycle.DECLINED]
        assert booked == [], f"requests confirmed while the account's online booking was stopped: {booked}"

    @invariant()
    def outbox_rows_delivered_at_most_once(self):
        with self.rt.db.reading() as s:   # rows the purge deletes later are remembered
            Env.push_keys.update(s.scalars(select(OutboxMessage.retry_key).where(OutboxMessage.kind == "push")))
        pushes = Counter(d.retry_key for d in self.fake.deliveries("push"))
        twice = {key: n for key, n in pushes.items() if n > 1}
        assert twice == {}, "a push row delivered twice"
        assert all(key in Env.push_keys for key in pushes), "a push no row asked for"

    @invariant()
    def acknowledged_requests_reach_staff(self):
        with self.rt.db.reading() as s:
            known = dict(s.execute(select(Booking.reference, Booking.conversation_id)).all())
            users = dict(s.execute(select(Conversation.id, Conversation.line_user_id)).all())
        closed = lifecycle.TERMINAL_STATUSES
        for reference, (office, user_id) in Env.acknowledged.items():
            if reference in Env.purged or (reference not in known and Env.status_of.get(reference) in closed):
                continue   # closed, then deleted by the retention purge (checked by the lifecycle's invariant)
            assert reference in known, f"request {reference} acknowledged on the form but not in the database"
            assert users.get(known[reference]) in (user_id, None) or users[known[reference]].startswith("forgotten")
        for i, user in enumerate(self.users):
            for text in self.fake.texts_to(user.user_id):
                for reference in REFERENCE.findall(text):
                    if reference in known and known[reference] is not None:
                        assert users.get(known[reference]) == user.user_id, f"{reference} told to user {i}"


def _content(event: dict):
    message = event.get("message") or {}
    return message.get("text") or (event.get("postback") or {}).get("data") or message.get("type")


def _flat(messages) -> str:
    return json.dumps(messages, ensure_ascii=False)


@pytest.fixture
def model_app(make_app, tmp_path):
    groups = {"sakata": new_group_id(), "otaru": new_group_id()}
    app = make_app(env={"LINE_STAFF_GROUP_ID_SAKATA": groups["sakata"], "LINE_STAFF_GROUP_ID_OTARU": groups["otaru"]})
    rt = app.extensions["madoguchi"]
    for office, username in STAFF_USER.items():
        create_staff(rt, office=office, username=username)
    Env.groups, Env.tmp = groups, tmp_path
    return app


def _run(app, fake, *, examples: int, steps: int) -> None:
    Env.app, Env.rt, Env.fake = app, app.extensions["madoguchi"], fake
    Env.people, Env.secrets, Env.seekers, Env.statuses, Env.errors = 0, [], {}, [], []
    Env.calls_seen, Env.status_of, Env.acknowledged, Env.tokens = 0, {}, {}, {}
    Env.terms_published, Env.push_keys, Env.purged, Env.outcomes = 0, set(), set(), Counter()
    Env.stopped, Env.stop_keys, Env.blocked_since, Env.typed, Env.stopped_after = {}, {}, {}, {}, {}
    Env.deliveries_checked = 0
    # The database outlives an example, so a failure shrunk is not the same run: the first one reported is it.
    run_machine(ActorsModel, examples=examples, steps=steps, errors=Env.errors,
                derandomize=os.environ.get(HUNT_ENV) != "1")
    with Env.rt.db.reading() as s:
        statuses = Counter(s.scalars(select(Booking.status)))
        made = s.scalar(select(func.count()).select_from(Booking))
    print(f"\nmodel: {examples} examples x {steps} steps, {len(fake.calls)} LINE calls, {made} requests "
          f"{dict(statuses)}, {len(Env.acknowledged)} acknowledged, {Env.terms_published} terms versions\n"
          f"staff actions (before->after): {dict(Env.outcomes)}")
    assert made > 0, "the model never got as far as a request: it tests too little"
    stops = sum(n for outcome, n in Env.outcomes.items() if outcome.startswith("cancel_terms")
                and outcome.endswith("confirmed->cancelled_by_office"))
    assert stops > 0, "the model never stopped a booking under the terms: it tests too little"


DEFAULT_RUN = (8, 40)   # examples x steps: bounded for CI


@pytest.mark.parametrize("examples, steps", [DEFAULT_RUN, pytest.param(150, 60, marks=pytest.mark.heavy, id="heavy")])
def test_actors_interleaved_keep_every_invariant(request, model_app, fake_line, examples, steps):
    if (examples, steps) != DEFAULT_RUN:
        skip_unless_heavy(request)
    _run(model_app, fake_line, examples=examples, steps=steps)
