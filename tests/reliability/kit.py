"""What the reliability tests share: distinctive personal values, the privacy scan, the database invariants,
postbacks in LINE messages, and the switch for heavy runs.

Personal values are made distinctive on purpose (`Person(n)`), so that finding one of them in a payload sent
to LINE, a database file or a log line is a leak and never a coincidence.
"""
from __future__ import annotations

import json
import logging
import os
from collections import Counter
from dataclasses import dataclass
from typing import Any, Iterable

import pytest
from sqlalchemy import func, select

from bot import outbox
from bot.models import Booking, Conversation, OutboxMessage, SlotClaim
from bot.services import lifecycle
from dialogs.machine import State

HIRAGANA = "あいうえおかきくけこさしすせそたちつてとなにぬねの"
HEAVY_ENV = "RELIABILITY_HEAVY"


# -- heavy runs ---------------------------------------------------------------------------------------

def heavy_selected(config) -> bool:
    """Heavy runs go only when asked for: `pytest -m heavy` or RELIABILITY_HEAVY=1."""
    return "heavy" in (config.option.markexpr or "").replace("not heavy", "") or os.environ.get(HEAVY_ENV) == "1"


def skip_unless_heavy(request) -> None:
    if not heavy_selected(request.config):
        pytest.skip("heavy run: select it with `-m heavy` (or RELIABILITY_HEAVY=1)")


# -- people -------------------------------------------------------------------------------------------

def _kana(n: int) -> str:
    digits = str(n)
    return "".join(HIRAGANA[(int(d) * 2 + i) % len(HIRAGANA)] for i, d in enumerate(digits))


@dataclass(frozen=True)
class Person:
    """The n-th job seeker of a run: form answers no bot text can contain by chance."""

    n: int

    @property
    def name(self) -> str:
        return f"検証{self.n:04d}号 花子"

    @property
    def name_kana(self) -> str:
        return f"けんしょう {_kana(self.n)}はなこ"

    @property
    def seeker_number(self) -> str:
        return f"{57000 + self.n % 1000:05d}-{7300000 + self.n:07d}"

    @property
    def phone(self) -> str:
        return f"080-{4100 + self.n % 5000:04d}-{6200 + self.n % 3000:04d}"

    @property
    def birth_date(self) -> str:
        return f"{1961 + self.n % 40}-{1 + self.n % 12:02d}-{1 + self.n % 28:02d}"

    @property
    def consultation(self) -> str:
        return f"検証用の相談{self.n:04d}番：応募書類の書き方について"

    @property
    def companion_detail(self) -> str:
        return f"通訳{self.n:04d}番の方が同席します"

    def answers(self, office) -> dict[str, str]:
        """Every field the office's form asks, filled in as a person would type them."""
        every = {
            "name": self.name, "name_kana": self.name_kana, "seeker_number": self.seeker_number,
            "birth_date": self.birth_date, "phone": self.phone, "category": "uij",
            "consultation": self.consultation, "companion": "interpreter",
            "companion_detail": self.companion_detail, "mypage_email_confirmed": "yes",
        }
        return {name: value for name, value in every.items() if name in office.form_fields}

    def secrets(self) -> list[str]:
        """The values that must never leave our database in the clear, in every shape they may take."""
        values = [self.name, self.name_kana, self.seeker_number, self.phone, self.birth_date, self.consultation,
                  self.companion_detail, self.seeker_number.replace("-", ""), self.phone.replace("-", ""),
                  self.name.split()[0], self.consultation[:12], self.companion_detail[:10]]
        return values


def shapes(value: str) -> set[bytes]:
    """The byte strings a value takes in UTF-8 text, in JSON with or without ASCII escapes."""
    return {value.encode("utf-8"), json.dumps(value)[1:-1].encode("ascii"),
            json.dumps(value, ensure_ascii=False)[1:-1].encode("utf-8")}


def leaks(blob: bytes, values: Iterable[str]) -> list[str]:
    """The values found in a blob (a payload, a database file, a log)."""
    return [value for value in values if any(shape in blob for shape in shapes(value))]


# -- database invariants --------------------------------------------------------------------------------

def push_outcome_problem(row: OutboxMessage, delivered: int) -> str | None:
    """What is wrong with how a push row ended, given how many times LINE took it (None: nothing).

    Sent: taken exactly once. Dropped as out of date (`stale`, bot/services/staleness.py): only a message
    about a booking, taken at most once (an earlier try LINE did not answer may have arrived), and said so."""
    if row.status == "sent":
        return None if delivered == 1 else f"push row {row.id} ({row.purpose}) sent, delivered {delivered} times"
    if row.status == "stale" and row.booking_reference is not None:
        reason = outbox.stale_reason(row)
        if reason is not None and delivered <= (1 if reason[1] else 0):
            return None
    return f"push row {row.id} ({row.purpose}) is {row.status} ({row.last_error}), delivered {delivered} times"


def states_valid(rt) -> list[str]:
    """Conversations whose state is not one of the dialog's states."""
    valid = {s.value for s in State}
    with rt.db.reading() as s:
        rows = s.execute(select(Conversation.id, Conversation.state))
        return [f"conversation {cid}: {state!r}" for cid, state in rows if state not in valid]


def capacity_problems(rt) -> list[str]:
    """No slot over capacity; every open request/booking holds exactly one seat; no seat without one."""
    problems: list[str] = []
    with rt.db.reading() as s:
        open_rows = s.execute(select(Booking.id, Booking.office_id, Booking.slot_start).where(
            Booking.status.in_(lifecycle.OPEN_STATUSES))).all()
        claims = s.execute(select(SlotClaim.booking_id, SlotClaim.office_id, SlotClaim.slot_start,
                                  SlotClaim.seat)).all()
    per_slot = Counter((office, start) for _, office, start in open_rows)
    for (office, start), n in per_slot.items():
        capacity = rt.offices[office].schedule.capacity
        if n > capacity:
            problems.append(f"{office} {start:%m-%d %H:%M}: {n} open bookings for {capacity} seat(s)")
    claimed = Counter(booking_id for booking_id, *_ in claims)
    open_ids = {row.id for row in open_rows}
    for booking_id in open_ids:
        if claimed[booking_id] != 1:
            problems.append(f"open booking {booking_id} holds {claimed[booking_id]} seats")
    for booking_id, office, start, seat in claims:
        if booking_id not in open_ids:
            problems.append(f"seat {seat} of {office} {start:%m-%d %H:%M} held by closed booking {booking_id}")
        if seat >= rt.offices[office].schedule.capacity:
            problems.append(f"seat {seat} beyond the capacity of {office}")
        if (office, start) not in per_slot:
            problems.append(f"a seat of {office} {start:%m-%d %H:%M} without an open booking")
    return problems


def reply_rows_per_token(rt) -> list[str]:
    """Reply tokens the bot queued more than once (each token is used by one outbox row at most)."""
    with rt.db.reading() as s:
        twice = s.execute(select(OutboxMessage.reply_token, func.count()).where(
            OutboxMessage.reply_token.is_not(None)).group_by(OutboxMessage.reply_token)
            .having(func.count() > 1)).all()
    return [f"reply token {token[:8]}… queued {n} times" for token, n in twice]


# -- LINE messages ------------------------------------------------------------------------------------

def postbacks(node: Any) -> list[str]:
    """Every postback action's data under a message or list of messages (quick replies, Flex, templates)."""
    found: list[str] = []
    if isinstance(node, dict):
        if node.get("type") in ("postback", "datetimepicker") and isinstance(node.get("data"), str):
            found.append(node["data"])
        for value in node.values():
            found.extend(postbacks(value))
    elif isinstance(node, list):
        for item in node:
            found.extend(postbacks(item))
    return found


def line_users(app, fake, offices: Iterable[str]) -> tuple[Any, list]:
    """A test client posting webhooks, and one new LINE user per office named (the app's clock stamps events)."""
    from tests.lineuser import LineUser

    rt = app.extensions["madoguchi"]
    client = app.test_client()
    return client, [LineUser(client, office, channel_secret=rt.config.channel_secret(office), fake=fake,
                             clock=rt.clock) for office in offices]


# What moves a user on from each step of the intake (typed as a person would; `wide`: full-width or half-width
# kana, as phones' keyboards give them).
_FORWARD = {"awaiting_consent": ("同意する", "同意する"), "awaiting_checklist": ("はい", "ﾊｲ"),
            "awaiting_slot": ("1", "１")}


def forward_word(rt, user, wide: bool = False) -> str | None:
    """What moves this LINE user on from where their conversation is (None: fill in the form)."""
    from tests.formflow import ANSWER_WORD

    with rt.db.reading() as s:
        conv = s.scalar(select(Conversation).where(Conversation.office_id == user.office,
                                                   Conversation.line_user_id == user.user_id))
    if conv is None:
        return "よやく" if wide else "予約"
    if (conv.context or {}).get("resume_offered"):
        return "続きから"
    if conv.state == "awaiting_eligibility":
        question = rt.offices[user.office].eligibility[int((conv.context or {}).get("i", 0))]
        return ANSWER_WORD[question.passing[0]]
    if conv.state == "awaiting_form":
        return None
    return _FORWARD.get(conv.state, ("予約", "予約"))[wide]


def last_message(fake, chat_id: str) -> dict | None:
    """The last message the fake LINE API delivered to a chat, if any."""
    messages = fake.messages_to(chat_id)
    return messages[-1] if messages else None


def recent_postbacks(fake, chat_id: str, last: int = 5) -> list[str]:
    """The postback data of the buttons in a chat's last few messages (to tap later, when they are old)."""
    return [data for message in fake.messages_to(chat_id)[-last:] for data in postbacks(message)]


def quick_labels(message: dict) -> list[str]:
    """The labels of a message's quick-reply buttons, in order."""
    items = (message.get("quickReply") or {}).get("items", [])
    return [item["action"].get("label", "") for item in items if isinstance(item.get("action"), dict)]


# -- state machines -------------------------------------------------------------------------------------

class _ErrorsInto(logging.Handler):
    def __init__(self, into: list[str]):
        super().__init__(level=logging.ERROR)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        self.into.append(f"{record.name}: {record.getMessage()}")


def run_machine(machine, *, examples: int, steps: int, errors: list[str], **options) -> None:
    """Run a hypothesis state machine against the app, each error the app logs appended to `errors` (an
    invariant of the machine checks it is empty). Derandomised (CI sees the same examples), no database of
    examples; `options` are more hypothesis settings."""
    from hypothesis import HealthCheck, settings
    from hypothesis.stateful import run_state_machine_as_test

    handler = _ErrorsInto(errors)
    logging.getLogger("bot").addHandler(handler)
    try:
        run_state_machine_as_test(machine, settings=settings(**{
            "max_examples": examples, "stateful_step_count": steps, "deadline": None, "derandomize": True,
            "database": None, "print_blob": True,
            "suppress_health_check": [HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
            **options}))
    finally:
        logging.getLogger("bot").removeHandler(handler)
