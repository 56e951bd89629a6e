"""The dialog's view of one incoming LINE event, free of the SDK's types."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Mapping


@dataclass(frozen=True)
class Incoming:
    kind: str                 # text | postback | sticker | media | location | follow | unfollow | other
    event_id: str
    at: datetime              # the event's own timestamp
    text: str = ""
    data: str = ""            # postback data
    params: Mapping[str, str] = field(default_factory=dict)   # datetime-picker params
    media_type: str = ""      # image | video | audio | file
    unblocked: bool = False   # a follow that unblocks the account (LINE's follow.isUnblocked)
    stale: bool = False       # older than what the conversation already reflects
