"""What a dialog step asks the outside world to do, as frozen data (no I/O here)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping


@dataclass(frozen=True)
class Choice:
    """One quick-reply button: a label (template key or literal) and the postback it sends."""

    label_key: str | None = None   # key in the language's labels file
    label: str | None = None       # literal label (e.g. a slot's `12/7(月) 14:00`)
    data: str = ""                 # postback data
    display: str | None = None     # text shown in the chat when tapped (defaults to the label)


@dataclass(frozen=True)
class Say:
    """A message to the user who wrote: a reply when there is a token, else a push."""

    template: str
    vars: Mapping[str, Any] = field(default_factory=dict)
    choices: tuple[Choice, ...] = ()


@dataclass(frozen=True)
class NotifyStaff:
    """A card for the office's staff (dashboard always; LINE group when configured)."""

    kind: str            # new_request | withdrawn | cancelled | expired
    booking_id: int


@dataclass(frozen=True)
class LeaveGroup:
    """Leave a group that is not the office's staff group."""

    group_id: str
