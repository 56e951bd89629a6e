"""Conversation fuzzing: several users talk to the bot at random, through signed webhooks, and sometimes
complete the details form over HTTP, while staff decide and time passes.

A hypothesis `RuleBasedStateMachine` drives three users (two at Sakata, one at Otaru) with chat words,
choices by label (as shown, and typed as people do: without spaces, in katakana, with an emoji), by number
(half- and full-width, kanji, in range or not), mistyped chat words, and junk, emoji and full-width text,
stickers, images, audio, video, files and locations, the buttons on screen, stale buttons from earlier,
forged postbacks, follow and unfollow, bodies delivered again, redelivered, and held back to arrive out of
order. After every step:

- no answer of ours was a 5xx (webhook, form pages);
- each reply token was queued by one outbox row at most and LINE got at most one reply for it, of at most
  five messages;
- every conversation is in one of the dialog's states;
- no slot is over capacity, and the seats (SlotClaim rows) match the open requests and bookings exactly;
- nothing was pushed to a user who had unfollowed;
- no value typed on the form appears in any request made to LINE.

The default run is bounded and derandomised (the same examples on every CI run); `-m heavy` runs far more.
"""
from __future__ import annotations

import json
from datetime import timedelta

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from sqlalchemy import select

from bot.models import Booking, Conversation
from bot.services import holds, lifecycle
from bot.staff import decisions
from bot.staff.audit import Actor
from bot.worker import Worker
from tests.formflow import Page, form_link, path_of
from tests.intake_walk import LABEL_AS_TYPED
from tests.lineuser import as_redelivery
from tests.reliability.kit import (Person, capacity_problems, forward_word, last_message, leaks, line_users, postbacks, quick_labels,
                                   recent_postbacks, reply_rows_per_token, run_machine, skip_unless_heavy,
                                   states_valid)

OFFICES = ("sakata", "sakata", "otaru")
WORDS = ["予約", "予約確認", "ヘルプ", "戻る", "最初から", "中止", "データ削除", "English", "やさしい日本語",
         "日本語", "同意する", "同意しない", "はい", "いいえ", "わからない", "続きから", "はじめから", "よやく",
         "ＹＥＳ", "ｈｅｌｐ", "予　約", "予約。", " 同意する ", "次の週", "前の週", "12/7 14:00", "12月14日15時",
         "12/2 10:00", "1/11 14:00",
         # as people type them: in the other kana, mistyped, decorated, in kanji numbers, invisible characters
         "ヨヤク", "ヨヤクカクニン", "ヤメル", "モドル", "ヘルブ", "予約確任", "でーたさくじよ", "englsh", "はい👍", "👍", "👍🏽",
         "🙆\u200d♀️", "いいえ🙅", "はい〜", "一", "二番", "三つ目", "十二", "予約確認\u200b", "同意する👍", "同意スル",
         "このままにする", "つぎのしゅう", "Nextweek", "十二月七日十四時"]
JUNK = ["😀", "🙇\u200d♀️お願いします", "ｱｲｳｴｵ", "\u3000", "<script>alert(1)</script>", "{{7*7}}",
        "' OR 1=1 --", "a" * 300, "﷽" * 20, "\u202eevil", "0", "-1", "99999999999999999999", "1.5", "１ ２",
        "\u200b", "\u200b\u200d\ufe0f", "👍" * 500, "一" * 200, "予約" * 1000, "\u3000\t\n", "1" * 5000, "\U00010a40",
        "２" * 4400 + "番"]
FORGED = [
    "", "a=slot", "a=nope&at=idle&o=sakata", "a=agree&at=awaiting_consent&o=otaru&v=2023-10-01",
    "a=slot&at=awaiting_slot:0&o=sakata&v=2026-12-07T14:00:00+09:00",
    "a=slot&at=awaiting_slot:0&o=sakata&v=not-a-date", "a=slot&at=awaiting_slot:0&o=otaru&v=2026-12-02T10:00:00+09:00",
    "a=week&at=awaiting_slot:0&o=sakata&v=99", "a=answer&at=awaiting_eligibility:0&o=sakata&v=yes",
    "a=answer&at=awaiting_eligibility:99&o=sakata&v=yes", "a=withdraw&at=idle&o=sakata&v=AAAA-BBBB",
    "a=cancel_booking&at=any&o=sakata&v=ZZZZ-2222", "a=confirm_delete&at=idle&o=sakata&v=maybe",
    "a=proposal&at=any&o=sakata&v=accept&r=XXXX-YYYY", "a=word&at=idle&o=sakata&v=delete_data",
    "a=word&at=idle&o=sakata&v=__class__", "a=staff&d=confirm&r=AAAA-BBBB&o=sakata", "%%%", "a=slot&" * 60,
]
STAFF_ACTIONS = ("confirm", "decline", "propose", "cancel_office")


class Env:
    """The app and the fake LINE API, handed to the state machine by the test."""

    app = None
    rt = None
    fake = None
    people = 0              # persons created so far (their values stay distinctive across examples)
    secrets: list[str] = []  # every value typed on the form so far
    calls_seen = 0          # fake LINE calls already scanned
    deliveries_seen = 0
    reply_tokens: set[str] = set()
    statuses: list[int] = []
    errors: list[str] = []   # error records logged by the app (an event rolled back, a send that blew up)


class ConversationFuzz(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.rt, self.fake = Env.rt, Env.fake
        self.client, self.users = line_users(Env.app, self.fake, OFFICES)
        self.browsers = [Env.app.test_client() for _ in OFFICES]
        self.bodies: list[tuple[int, bytes]] = []        # (user index, raw body) already delivered
        self.held_back: list[tuple[int, dict]] = []      # events built earlier, delivered later
        self.seen_postbacks: list[tuple[int, str]] = []  # every button ever shown, for stale taps

    # -- sending --------------------------------------------------------------------------------------
    def _post(self, i: int, *events: dict) -> None:
        user = self.users[i]
        self.rt.clock.advance(seconds=1)  # people take a moment between messages
        response = user.send(*events)
        Env.statuses.append(response.status_code)
        self.bodies.append((i, user.last_body))
        self.seen_postbacks.extend((i, data) for data in recent_postbacks(self.fake, user.user_id))

    def _text(self, i: int, text: str) -> None:
        self._post(i, self.users[i].text_event(text))

    def _last_message(self, i: int) -> dict | None:
        return last_message(self.fake, self.users[i].user_id)

    # -- what users do ------------------------------------------------------------------------------------
    @rule(i=st.integers(0, len(OFFICES) - 1), word=st.sampled_from(WORDS))
    def says_a_word(self, i, word):
        self._text(i, word)

    @rule(i=st.integers(0, len(OFFICES) - 1), n=st.integers(-1, 15), wide=st.booleans())
    def types_a_number(self, i, n, wide):
        text = str(n)
        self._text(i, text.translate(str.maketrans("-0123456789", "－０１２３４５６７８９")) if wide else text)

    @rule(i=st.integers(0, len(OFFICES) - 1), pick=st.integers(0, 12))
    def types_a_label(self, i, pick):
        message = self._last_message(i)
        labels = quick_labels(message) if message else []
        self._text(i, labels[pick % len(labels)] if labels else "予約")

    @rule(i=st.integers(0, len(OFFICES) - 1), pick=st.integers(0, 12), how=st.integers(0, len(LABEL_AS_TYPED) - 1))
    def types_a_label_as_people_do(self, i, pick, how):
        """A label on screen without its spaces, in katakana, with 。 or an emoji (LABEL_AS_TYPED)."""
        message = self._last_message(i)
        labels = quick_labels(message) if message else []
        self._text(i, LABEL_AS_TYPED[how](labels[pick % len(labels)]) if labels else "ヨヤク")

    @rule(i=st.integers(0, len(OFFICES) - 1), pick=st.integers(0, 12))
    def taps_a_button(self, i, pick):
        message = self._last_message(i)
        found = postbacks(message) if message else []
        if found:
            self._post(i, self.users[i].postback_event(found[pick % len(found)]))
        else:
            self._text(i, "予約")

    @rule(i=st.integers(0, len(OFFICES) - 1), pick=st.integers(0, 1000))
    def taps_an_old_button(self, i, pick):
        mine = [data for who, data in self.seen_postbacks if who == i] or ["a=agree&at=awaiting_consent&o=sakata"]
        self._post(i, self.users[i].postback_event(mine[pick % len(mine)]))

    @rule(i=st.integers(0, len(OFFICES) - 1), pick=st.integers(0, 1000))
    def taps_someone_elses_button(self, i, pick):
        others = [data for who, data in self.seen_postbacks if who != i]
        if others:
            self._post(i, self.users[i].postback_event(others[pick % len(others)]))

    @rule(i=st.integers(0, len(OFFICES) - 1), data=st.sampled_from(FORGED) | st.text(max_size=40))
    def taps_a_forged_button(self, i, data):
        self._post(i, self.users[i].postback_event(data))

    @rule(i=st.integers(0, len(OFFICES) - 1), text=st.sampled_from(JUNK) | st.text(min_size=1, max_size=30))
    def types_junk(self, i, text):
        self._text(i, text)

    @rule(i=st.integers(0, len(OFFICES) - 1),
          kind=st.sampled_from(["sticker", "image", "location", "audio", "video", "file"]))
    def sends_something_else(self, i, kind):
        user = self.users[i]
        media = {"audio": {"duration": 4000}, "video": {"duration": 4000},
                 "file": {"fileName": "rirekisho.pdf", "fileSize": 2048}}
        message = ({**user.image_message(), "type": kind, **media[kind]} if kind in media else
                   {"sticker": user.sticker_message, "image": user.image_message,
                    "location": user.location_message}[kind]())
        self._post(i, user.event("message", message=message))

    @rule(i=st.integers(0, len(OFFICES) - 1))
    def follows(self, i):
        self._post(i, self.users[i].follow_event(unblocked=True))

    @rule(i=st.integers(0, len(OFFICES) - 1))
    def unfollows(self, i):
        self._post(i, self.users[i].unfollow_event())

    # -- how LINE delivers ---------------------------------------------------------------------------------
    @precondition(lambda self: self.bodies)
    @rule(pick=st.integers(0, 1000), redelivery=st.booleans())
    def a_body_arrives_again(self, pick, redelivery):
        i, raw = self.bodies[pick % len(self.bodies)]
        user = self.users[i]
        if redelivery:
            payload = json.loads(raw)
            raw = user.body([as_redelivery(e) for e in payload["events"]])
        before = self.fake.deliveries()
        response = user.post(raw)
        Env.statuses.append(response.status_code)
        assert response.status_code == 200
        assert self.fake.deliveries() == before, "a body delivered again had an effect"

    @rule(i=st.integers(0, len(OFFICES) - 1), text=st.sampled_from(WORDS[:12]))
    def a_message_is_held_back(self, i, text):
        """LINE delivers this event later than the next ones (its timestamp is older)."""
        event = self.users[i].text_event(text, timestamp=self.rt.clock.now() - timedelta(milliseconds=500))
        self.held_back.append((i, event))

    @precondition(lambda self: self.held_back)
    @rule(pick=st.integers(0, 1000))
    def a_held_back_message_arrives(self, pick):
        i, event = self.held_back.pop(pick % len(self.held_back))
        self._post(i, event)

    @rule(i=st.integers(0, len(OFFICES) - 1), texts=st.lists(st.sampled_from(WORDS), min_size=2, max_size=4))
    def one_body_carries_several_events_in_reverse(self, i, texts):
        user = self.users[i]
        start = self.rt.clock.now()
        events = [user.text_event(t, timestamp=start + timedelta(milliseconds=10 * k)) for k, t in enumerate(texts)]
        self._post(i, *reversed(events))

    @rule(i=st.integers(0, len(OFFICES) - 1), steps=st.integers(1, 20))
    def walks_ahead(self, i, steps):
        """The user does what the step asks, for a while: without this, random input rarely gets past consent."""
        for _ in range(steps):
            word = forward_word(self.rt, self.users[i])
            if word is None:
                self.completes_the_form(i, edit=False)
                return
            self._text(i, word)

    # -- the form and staff ---------------------------------------------------------------------------------
    @rule(i=st.integers(0, len(OFFICES) - 1), edit=st.booleans())
    def completes_the_form(self, i, edit):
        user = self.users[i]
        try:
            url = form_link(self.fake.messages_to(user.user_id))
        except AssertionError:
            return  # never shown a form link
        browser = self.browsers[i]
        person = Person(Env.people)
        Env.people += 1
        Env.secrets.extend(person.secrets())
        page = Page.get(browser, url)
        Env.statuses.append(page.status)
        if page.status != 200 or len(page.forms) != 1:
            return
        answers = person.answers(self.rt.offices[user.office])
        confirmation = page.submit(browser, answers)
        Env.statuses.append(confirmation.status)
        if confirmation.status != 200 or len(confirmation.forms) != 1:
            return
        if edit:
            again = Page(browser.post(path_of(url) + "/edit", data=confirmation.form.fields, follow_redirects=True))
            Env.statuses.append(again.status)
            return
        done = confirmation.submit(browser)
        Env.statuses.append(done.status)

    @rule(pick=st.integers(0, 1000), action=st.sampled_from(STAFF_ACTIONS))
    def staff_decide(self, pick, action):
        rt = self.rt
        with rt.db.transaction() as s:
            now = rt.clock.now()
            ids = list(s.scalars(select(Booking.id).where(Booking.status.in_(lifecycle.OPEN_STATUSES))
                                 .order_by(Booking.id)))
            if not ids:
                return
            booking = s.get(Booking, ids[pick % len(ids)])
            office = rt.offices[booking.office_id]
            actor = Actor.system()
            try:
                if action == "confirm":
                    decisions.confirm(s, rt, office, booking, actor, now)
                elif action == "decline":
                    decisions.decline(s, rt, office, booking, actor, now)
                elif action == "cancel_office":
                    decisions.cancel(s, rt, office, booking, actor, now, by_office=True, note=None)
                else:
                    free = [slot for slot in holds.week_page(s, office, now, 0)["slots"]
                            if slot["at"] != booking.slot_start]
                    if free:
                        decisions.propose(s, rt, office, booking, actor, now, free[pick % len(free)]["at"])
            except decisions.Refused:
                pass

    @rule(minutes=st.sampled_from([1, 5, 16, 60, 24 * 60 + 1]))
    def time_passes_and_the_worker_runs(self, minutes):
        self.rt.clock.advance(minutes=minutes)
        Worker(self.rt).run_once()

    # -- what must hold after every step ------------------------------------------------------------------
    @invariant()
    def nothing_answered_5xx(self):
        assert all(status < 500 for status in Env.statuses), Env.statuses
        Env.statuses.clear()

    @invariant()
    def no_event_failed_and_was_rolled_back(self):
        assert Env.errors == []

    @invariant()
    def every_conversation_is_in_a_valid_state(self):
        assert states_valid(self.rt) == []

    @invariant()
    def no_slot_is_over_capacity(self):
        assert capacity_problems(self.rt) == []

    @invariant()
    def replies_at_most_once_per_token_with_five_messages(self):
        assert reply_rows_per_token(self.rt) == []
        deliveries = self.fake.deliveries()
        for delivery in deliveries[Env.deliveries_seen:]:
            assert len(delivery.messages) <= 5
            if delivery.kind == "reply":
                assert delivery.reply_token not in Env.reply_tokens, "two replies with one token"
                Env.reply_tokens.add(delivery.reply_token)
            if delivery.kind == "push" and str(delivery.to).startswith("U"):
                with self.rt.db.reading() as s:
                    followed = s.scalar(select(Conversation.followed).where(Conversation.line_user_id == delivery.to))
                assert followed is not False, "a push reached a user who unfollowed"
        Env.deliveries_seen = len(deliveries)

    @invariant()
    def no_personal_value_went_to_line(self):
        calls = self.fake.calls
        for call in calls[Env.calls_seen:]:
            assert leaks(call.raw, Env.secrets) == [], f"personal data sent to LINE ({call.path})"
        Env.calls_seen = len(calls)


def _run(app, fake, *, examples: int, steps: int) -> None:
    Env.app, Env.rt, Env.fake = app, app.extensions["madoguchi"], fake
    Env.people, Env.secrets, Env.calls_seen, Env.deliveries_seen = 0, [], 0, 0
    Env.reply_tokens, Env.statuses, Env.errors = set(), [], []
    run_machine(ConversationFuzz, examples=examples, steps=steps, errors=Env.errors)
    with Env.rt.db.reading() as s:
        made = s.scalar(select(Booking.id).order_by(Booking.id.desc()).limit(1)) or 0
    print(f"\nfuzz: {examples} examples x {steps} steps, {len(fake.calls)} LINE calls, {Env.people} forms "
          f"filled, {made} requests made")
    assert made > 0, "the fuzzer never got as far as a request: it tests too little"


def test_random_conversations_keep_every_invariant(app, fake_line):
    _run(app, fake_line, examples=22, steps=30)


@pytest.mark.heavy
def test_random_conversations_keep_every_invariant_heavy(request, app, fake_line):
    skip_unless_heavy(request)
    _run(app, fake_line, examples=400, steps=60)

