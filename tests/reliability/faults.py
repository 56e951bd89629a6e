"""The fault run: bookings made end to end while the fake Messaging API fails at random.

Users chat through signed webhooks (replies sent by the web path), fill in the details form over HTTP, staff
confirm, and numbered pushes are queued for every user, while the fake LINE API answers a share `rate` of
the message calls with a fault picked by `seed`: 500, 429 (rate limit), a connection reset, a read timeout
before acceptance, or — the outcome-unknown cases — 500, timeout or 409 after it accepted the message. For a
while in the middle the monthly quota is used up (429 "monthly limit"), then it comes back. The worker
drains everything on a clock moved forward pass after pass.

`FaultRun.check()` lists what broke the promises (empty: all held):
- every push row was delivered exactly once (its retry key accepted once, nothing delivered without a row);
- the pushes to each user arrived in the order they were queued;
- each reply token was used at most once (a reply that may have arrived goes again only on its own token,
  which LINE takes once); a reply that may have arrived was never pushed to its chat;
- the rows held for the quota were delivered after it came back;
- every confirmed request's confirmation arrived exactly once, every receipt at most once.
"""
from __future__ import annotations

import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from sqlalchemy import select

from bot import outbox
from bot.models import Booking, Conversation, OutboxMessage
from bot.staff import decisions
from bot.staff.audit import Actor
from bot.worker import Worker
from tests.formflow import Page, form_link, walk_to_slots
from tests.lineuser import LineUser
from tests.reliability.kit import Person, push_outcome_problem

KINDS = (500, 429, "accepted-409", "timeout", "reset", "accepted-500", "accepted-timeout")
CLIENT_TIMEOUT = 0.25       # the app's LINE timeout in fault runs (seconds)
FAKE_STALL = 0.5            # how long the fake stalls on a "timeout" (longer than the client waits)
NUMBERED = 4                # numbered pushes queued for every user
CONFIRMED_WORDS = "予約が確定しました"
RECEIPT_WORDS = "お申し込みを受け付けました"
MAX_PASSES = 400


@dataclass
class FaultFigures:
    seed: int
    rate: float
    users: int
    requests: int = 0
    push_rows: int = 0
    sent: int = 0
    retried: int = 0          # message calls made again for a row already tried
    held: int = 0             # answers "monthly limit" (rows held until the quota came back)
    failed: int = 0           # rows given up
    unknown_replies: int = 0  # replies whose outcome LINE never told (never pushed)
    faults: Counter = field(default_factory=Counter)
    passes: int = 0

    def row(self) -> dict[str, object]:
        return {"seed": self.seed, "rate": self.rate, "users": self.users, "requests": self.requests,
                "pushes": self.push_rows, "sent": self.sent, "retried": self.retried, "held": self.held,
                "failed": self.failed, "unknown replies": self.unknown_replies,
                "faults": sum(self.faults.values()), "worker passes": self.passes}


class FaultRun:
    def __init__(self, app, fake, *, seed: int, rate: float = 0.3, users: int = 4):
        self.app, self.fake, self.seed, self.rate = app, fake, seed, rate
        self.rt = app.extensions["madoguchi"]
        self.rng = random.Random(seed)
        self.figures = FaultFigures(seed=seed, rate=rate, users=users)
        offices = ["sakata" if n % 2 == 0 else "otaru" for n in range(users)]
        client = app.test_client()
        self.users = [LineUser(client, office, channel_secret=self.rt.config.channel_secret(office), fake=fake,
                               clock=self.rt.clock) for office in offices]
        self.numbered: dict[str, list[int]] = defaultdict(list)   # user id -> ids of numbered push rows
        self.quota_held: set[int] = set()

    # -- the run ------------------------------------------------------------------------------------------
    def run(self) -> FaultFigures:
        self.fake.timeout_seconds = FAKE_STALL
        self.fake.random_faults(self.seed, self.rate, KINDS, path_contains="/v2/bot/message/")
        for n, user in enumerate(self.users):
            self._book(n, user)
            self._queue_numbered(user, first=True)
        self._confirm_every_request()
        self._quota_runs_out_and_comes_back()
        for user in self.users:
            self._queue_numbered(user, first=False)
            user.says("予約確認")          # the receipt, if not pushed yet, comes as a free reply
        self._drain()
        self.fake.random_faults(None, 0)
        self._tally()
        return self.figures

    def _book(self, n: int, user: LineUser) -> None:
        """Chat to a held slot, then the form; the link may have to be asked for again (a reply lost)."""
        walk_to_slots(user, self.rt)
        for _ in range(8):
            user.says("1")                # the first slot shown (or 次の週 when the week is full)
            url = self._form_link(user)
            if url is None:
                user.says("予約")         # the reply may be lost: the step asks again, with the link
                url = self._form_link(user)
            if url:
                break
        else:
            return
        browser = self.app.test_client()
        page = Page.get(browser, url)
        if page.status == 200 and len(page.forms) == 1:
            confirmation = page.submit(browser, Person(1000 * self.seed + n).answers(self.rt.offices[user.office]))
            if confirmation.status == 200 and len(confirmation.forms) == 1:
                confirmation.submit(browser)

    def _form_link(self, user: LineUser) -> str | None:
        try:
            return form_link(self.fake.messages_to(user.user_id))
        except AssertionError:
            return None

    def _queue_numbered(self, user: LineUser, first: bool) -> None:
        for k in range(NUMBERED):
            with self.rt.db.transaction() as s:
                rows = outbox.queue_to_user(s, office=user.office, user_id=user.user_id, now=self.rt.clock.now(),
                                            messages=[{"type": "text", "text": f"通知{'AB'[not first]}{k}"}],
                                            reply_token=None, purpose="fault_run")
                s.flush()
                self.numbered[user.user_id].extend(row.id for row in rows)

    def _confirm_every_request(self) -> None:
        with self.rt.db.transaction() as s:
            for booking in s.scalars(select(Booking).where(Booking.status == "requested")).all():
                decisions.confirm(s, self.rt, self.rt.offices[booking.office_id], booking, Actor.system(),
                                  self.rt.clock.now(), same_number_checked=True)

    def _quota_runs_out_and_comes_back(self) -> None:
        self.fake.quota_limit = self.fake.consumption
        for _ in range(3):
            self._pass(seconds=self.rng.randint(1, 20))
        with self.rt.db.reading() as s:
            self.quota_held = set(s.scalars(select(OutboxMessage.id).where(OutboxMessage.status == "held")))
        self.fake.quota_limit = None

    def _pass(self, seconds: int) -> None:
        self.rt.clock.advance(seconds=seconds)
        Worker(self.rt).run_once()
        self.figures.passes += 1

    def _drain(self) -> None:
        for _ in range(MAX_PASSES):
            with self.rt.db.reading() as s:
                waiting = s.scalar(select(OutboxMessage.id).where(
                    OutboxMessage.status.in_(("pending", "sending", "held"))).limit(1))
            if waiting is None:
                return
            self._pass(seconds=self.rng.randint(5, 90))

    # -- what happened ------------------------------------------------------------------------------------
    def _rows(self) -> list[OutboxMessage]:
        with self.rt.db.reading() as s:
            return list(s.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))

    def _tally(self) -> None:
        f, rows = self.figures, self._rows()
        pushes = [r for r in rows if r.kind == "push"]
        f.push_rows, f.sent = len(pushes), sum(r.status == "sent" for r in rows)
        f.failed = sum(r.status == "failed" for r in rows)
        f.unknown_replies = sum(r.status == "unknown" for r in rows)
        calls = [c for c in self.fake.calls if "/v2/bot/message/" in c.path]
        f.faults = Counter(c.fault for c in calls if c.fault)
        f.held = sum(1 for c in calls if c.status == 429 and "monthly" in str(c.response).lower())
        keys = Counter(c.retry_key for c in calls if c.retry_key)
        f.retried = sum(n - 1 for n in keys.values())
        with self.rt.db.reading() as s:
            f.requests = len(s.scalars(select(Booking.id)).all())

    def check(self) -> list[str]:
        problems: list[str] = []
        rows = self._rows()
        pushes = {r.retry_key: r for r in rows if r.kind == "push"}
        delivered = Counter(d.retry_key for d in self.fake.deliveries("push"))
        problems += [p for p in (push_outcome_problem(row, delivered[key]) for key, row in pushes.items()) if p]
        strays = [key for key in delivered if key not in pushes]
        if strays:
            problems.append(f"{len(strays)} pushes delivered that no row asked for")
        problems += self._order_problems(pushes)
        tokens = Counter(d.reply_token for d in self.fake.deliveries("reply"))
        problems += [f"reply token {t[:8]}… used {n} times" for t, n in tokens.items() if n > 1]
        problems += self._replies_pushed_again()
        by_id = {r.id: r for r in rows}
        for row_id in self.quota_held:
            if push_outcome_problem(by_id[row_id], delivered[by_id[row_id].retry_key]):
                problems.append(f"quota-held row {row_id} neither delivered once after the quota came back "
                                "nor dropped as out of date")
        problems += self._user_problems()
        return problems

    def _replies_pushed_again(self) -> list[str]:
        """A push to a reply's chat carrying that reply's messages after a try of it that may have delivered (no
        answer, a 5xx or 2xx, a fault after accepting): the reply could then have arrived twice."""
        maybe_delivered: list[tuple[str, list]] = []
        for call in self.fake.calls_to("/reply"):
            token = call.body.get("replyToken") if isinstance(call.body, dict) else None
            certainly_not = call.status is not None and 400 <= call.status < 500 and "after accept" not in (call.fault or "")
            chat = self.fake.reply_token_chat(token) if token else None
            if not certainly_not and chat:
                maybe_delivered.append((chat, call.body.get("messages")))
        pushed = {(d.to, repr(d.messages)) for d in self.fake.deliveries("push")}
        return [f"a reply to {chat[:9]}… that may have arrived was pushed too"
                for chat, messages in maybe_delivered if (chat, repr(messages)) in pushed]

    def _order_problems(self, pushes: dict[str, OutboxMessage]) -> list[str]:
        problems = []
        arrived: dict[str, list[int]] = defaultdict(list)
        for d in self.fake.deliveries("push"):
            row = pushes.get(d.retry_key)
            if row is not None:
                arrived[row.recipient].append(row.id)
        for recipient, ids in arrived.items():
            if ids != sorted(ids):
                problems.append(f"pushes to {recipient[:9]}… arrived out of order: {ids}")
        for user_id, ids in self.numbered.items():
            got = [i for i in arrived.get(user_id, []) if i in set(ids)]
            if got != sorted(ids):
                problems.append(f"numbered pushes to {user_id[:9]}… arrived as {got}, queued as {sorted(ids)}")
        return problems

    def _user_problems(self) -> list[str]:
        problems = []
        with self.rt.db.reading() as s:
            confirmed = {conv_id for conv_id, in s.execute(select(Booking.conversation_id).where(
                Booking.status == "confirmed"))}
            users = dict(s.execute(select(Conversation.line_user_id, Conversation.id)).all())
        for user in self.users:
            texts = self.fake.texts_to(user.user_id)
            if users.get(user.user_id) in confirmed and sum(CONFIRMED_WORDS in t for t in texts) != 1:
                problems.append(f"{user.user_id[:9]}… got the confirmation "
                                f"{sum(CONFIRMED_WORDS in t for t in texts)} times")
            if sum(RECEIPT_WORDS in t for t in texts) > 1:
                problems.append(f"{user.user_id[:9]}… got the receipt more than once")
        return problems


def run_faults(app, fake, *, seed: int, rate: float = 0.3, users: int = 4) -> tuple[FaultFigures, list[str]]:
    """One fault run: its figures and what broke (empty when every promise held)."""
    run = FaultRun(app, fake, seed=seed, rate=rate, users=users)
    figures = run.run()
    return figures, run.check()


FAULT_APP_SETTINGS = {"line_timeout_seconds": CLIENT_TIMEOUT, "reply_budget_seconds": 0.3}
