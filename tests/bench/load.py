"""The load: LINE-shaped, signed webhooks from many users walking real dialogs, sent over HTTP.

Two ways to drive a server:

* `closed_loop`: a fixed number of clients send back to back (saturated throughput);
* `open_loop`: events leave at a fixed offered rate whatever the server does, and each acknowledgement's
  latency counts from the moment its event was due, so a server that falls behind is charged for the queue
  it builds (no coordinated omission).

Each user's events go one after another (the next only after the previous was acknowledged), as one person's
chat does; many users are in play at once.
"""
from __future__ import annotations

import http.client
import random
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from tests.lineuser import LineUser, sign

# What the users do: a booking walk with the words and slips people make on the way.
ELIGIBILITY_ANSWERS = 5
CHECKLIST_ANSWERS = 9
SIDE_STEPS = ("ヘルプ", "STICKER", "予約確認")


def booking_walk(rng: random.Random) -> list[str]:
    """One user's steps: follow, 予約, 同意する, はい…, a slot, then a look at 予約確認; slips in between."""
    steps = ["FOLLOW", "予約", "同意する", *["はい"] * (ELIGIBILITY_ANSWERS + CHECKLIST_ANSWERS), "1", "予約確認"]
    for _ in range(rng.randint(1, 3)):
        steps.insert(rng.randint(2, len(steps)), rng.choice(SIDE_STEPS))
    return steps


@dataclass
class Request:
    office: str
    body: bytes
    signature: str
    reply_token: str | None


class ScriptedUser:
    """One job seeker and the steps left in their walk."""

    def __init__(self, office: str, secret: str, steps: list[str]):
        self.line = LineUser(None, office, channel_secret=secret)
        self.steps = deque(steps)

    @property
    def done(self) -> bool:
        return not self.steps

    def next_request(self) -> Request:
        step = self.steps.popleft()
        if step == "FOLLOW":
            event = self.line.follow_event()
        elif step == "STICKER":
            event = self.line.event("message", message=self.line.sticker_message())
        else:
            event = self.line.text_event(step)
        body = self.line.body(event)
        return Request(self.line.office, body, sign(body, self.line.channel_secret), event.get("replyToken"))


class Population:
    """Users in play, handed out round-robin; a user is out while their event is in flight."""

    def __init__(self, offices: Sequence[str], secret_of, size: int, seed: int):
        self._rng = random.Random(seed)
        self._offices = list(offices)
        self._secret_of = secret_of
        self._ready: deque[ScriptedUser] = deque(self._new() for _ in range(size))
        self._lock = threading.Lock()
        self.started = size

    def _new(self) -> ScriptedUser:
        office = self._rng.choice(self._offices)
        return ScriptedUser(office, self._secret_of(office), booking_walk(self._rng))

    def take(self) -> ScriptedUser:
        with self._lock:
            if self._ready:
                return self._ready.popleft()
            self.started += 1
            return self._new()

    def give_back(self, user: ScriptedUser) -> None:
        with self._lock:
            if user.done:
                self.started += 1
                user = self._new()
            self._ready.append(user)


@dataclass
class Shot:
    """One webhook delivery: when it was due, sent (wall clock, for reply lag) and acknowledged."""

    due: float            # monotonic
    sent_wall: float      # time.time() when the request left
    acked: float          # monotonic
    status: int           # HTTP status, 0 for a transport error
    reply_token: str | None

    @property
    def latency(self) -> float:
        return self.acked - self.due


@dataclass
class Target:
    base_url: str
    timeout: float = 10.0
    _host: str = field(init=False)
    _port: int = field(init=False)

    def __post_init__(self) -> None:
        parts = urlsplit(self.base_url)
        self._host, self._port = parts.hostname, parts.port

    def post(self, request: Request, due: float) -> Shot:
        """One webhook over a new connection (gunicorn's sync workers close it after each answer)."""
        headers = {"Content-Type": "application/json; charset=utf-8", "User-Agent": "LineBotWebhook/2.0",
                   "X-Line-Signature": request.signature}
        sent_wall = time.time()
        connection = http.client.HTTPConnection(self._host, self._port, timeout=self.timeout)
        try:
            connection.request("POST", f"/callback/{request.office}", body=request.body, headers=headers)
            response = connection.getresponse()
            response.read()
            status = response.status
        except (OSError, http.client.HTTPException):
            status = 0
        finally:
            connection.close()
        return Shot(due, sent_wall, time.monotonic(), status, request.reply_token)


def _send_one(target: Target, population: Population, due: float) -> Shot:
    user = population.take()
    try:
        return target.post(user.next_request(), due)
    finally:
        population.give_back(user)


def closed_loop(target: Target, population: Population, clients: int, seconds: float) -> tuple[list[Shot], float]:
    """`clients` senders back to back for `seconds`: the shots acknowledged in time, and the time used."""
    shots: list[Shot] = []
    started = time.monotonic()
    deadline = started + seconds

    def client() -> None:
        while True:
            now = time.monotonic()
            if now >= deadline:
                return
            shot = _send_one(target, population, now)
            if shot.acked <= deadline:
                shots.append(shot)

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return shots, seconds


def open_loop(target: Target, population: Population, rate: float, seconds: float,
              senders: int = 64) -> list[Shot]:
    """`rate` events a second for `seconds`, each due at its slot; latency counts from the slot."""
    total = int(rate * seconds)
    started = time.monotonic() + 0.05
    slots = iter(range(total))
    slot_lock = threading.Lock()
    shots: list[Shot] = []

    def sender() -> None:
        while True:
            with slot_lock:
                index = next(slots, None)
            if index is None:
                return
            due = started + index / rate
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            shots.append(_send_one(target, population, due))

    threads = [threading.Thread(target=sender, daemon=True) for _ in range(senders)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return shots


def percentile(values: Sequence[float], share: float) -> float | None:
    """Nearest-rank percentile (None for no values)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, int(-(-share * len(ordered) // 1)))
    return ordered[min(rank, len(ordered)) - 1]
