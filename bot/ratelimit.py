"""Flood control per chat: one user sending a flood of events is answered kindly once and otherwise ignored.

The limit is a GCRA (generic cell rate algorithm), a token bucket kept as one moment per conversation:
`flood_tat`, the "theoretical arrival time" at which the bucket would be full again. Each admitted event
moves it one `interval` further; an event arriving while it lies more than `burst - 1` intervals ahead
is refused. The state lives on the conversation row, which dispatch has already locked and updates at the
end of every event, so the check costs no statement of its own and is exact across processes.

A refused event is acknowledged and deduplicated like any other, but the dialog never sees it: the
conversation keeps its step. The first refused event of a window gets the `flood` template as its (free)
reply; the rest of the window gets nothing, so a flood can never make the bot flood back.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from dialogs.effects import Say

FLOOD_TEMPLATE = "flood"
EXEMPT_KINDS = frozenset({"follow", "unfollow"})  # they change no step and carry no text


@dataclass(frozen=True)
class Policy:
    """How many events a chat may send at once (`burst`), how fast it earns them back, how often it is told."""

    burst: int = 60                                      # a booking walk is about 20 events: room for slips
    interval: timedelta = timedelta(seconds=1)           # one event a second, sustained
    notice_every: timedelta = timedelta(minutes=1)       # the kind answer, at most once per window

    @property
    def tolerance(self) -> timedelta:
        return self.interval * (self.burst - 1)


POLICY = Policy()


@dataclass(frozen=True)
class Verdict:
    admitted: bool
    notify: bool = False   # refused, and the first refusal of its window: answer once
    changes: dict = field(default_factory=dict)  # the flood columns' new values, for the caller to set

    def apply(self, conv) -> None:
        for column, value in self.changes.items():
            setattr(conv, column, value)


def admit(conv, now: datetime, *, can_answer: bool, policy: Policy | None = None) -> Verdict:
    """Take one event from the chat's bucket. The row is not touched: the caller sets `changes` with the rest
    of the row at the end of the event, so a read during the dialog does not flush the row a second time."""
    policy = policy or POLICY
    tat = conv.flood_tat if conv.flood_tat is not None and conv.flood_tat > now else now
    if tat - now <= policy.tolerance:
        return Verdict(admitted=True, changes={"flood_tat": tat + policy.interval})
    noticed = conv.flood_noticed_at
    if not can_answer or (noticed is not None and now - noticed < policy.notice_every):
        return Verdict(admitted=False)
    return Verdict(admitted=False, notify=True, changes={"flood_noticed_at": now})


def effects(verdict: Verdict) -> list[Say]:
    """What a refused event says: the flood notice once per window, otherwise nothing."""
    return [Say(FLOOD_TEMPLATE)] if verdict.notify else []
