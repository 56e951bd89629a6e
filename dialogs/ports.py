"""What a dialog may ask of the outside world (implemented by bot.ports over one DB session)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class TypedSlot:
    """What a text typed at the slot step says of a slot: the start it chooses (ISO), or that it turns a date or
    time down (12/7以外, 12/7 14時は無理: it then chooses nothing), or neither."""
    start: str | None = None
    declined: bool = False
    # A date typed without a time on a day the office is closed: {"day": ISO date, "closure": calendar reason,
    # "holiday": its name or None}; the answer names why (12/30: the New Year closure).
    closed_day: dict[str, str | None] | None = None
    # A time typed alone ("HH:MM", 14時): it chooses the one slot of the list shown that starts then, if there is one.
    time: str | None = None


class Ports(Protocol):
    def terms_version(self) -> str:
        """The office's current terms version id."""

    def terms_url(self, version: str) -> str:
        """Where that version's full text can be read (the page of that version, so that what the user reads is
        what they agree to, even if a newer version comes into force before they tap)."""

    def has_consented(self, version: str) -> bool:
        """Did this user consent to that version?"""

    def consented_version(self) -> str | None:
        """The newest terms version this user consented to, if any."""

    def upcoming_terms(self) -> dict[str, Any] | None:
        """The next terms version published but not in force yet that asks consent: version, summary, url."""

    def terms_changes(self, since: str | None, version: str) -> tuple[list[dict], bool]:
        """What changed since the version `since` up to `version` (shown before consenting again): each
        version's {version, summary}, oldest first, and whether older changes were left out."""

    def record_consent(self, version: str, method: str) -> None:
        """Record consent to `version` (method: button | text)."""

    def set_followed(self, followed: bool) -> None:
        """Follow/unfollow: nothing is pushed to an unfollowed user."""

    def set_language(self, language: str) -> None:
        """Remember the user's language (ja | easy | en)."""

    def bookings(self) -> list[dict[str, Any]]:
        """The user's requests and bookings, newest first, with what they may do about each."""

    def open_booking(self) -> dict[str, Any] | None:
        """The user's open request or booking at this office, if any."""

    def booking_blocked(self) -> bool:
        """Has staff blocked this user's online booking?"""

    def week(self, index: int, page: int = 0) -> dict[str, Any]:
        """One page of the index-th bookable week (page -1: its last): the page's slots (whole days, at most
        11), the days shown, why the week is empty, and where the previous and next pages lie."""

    def hold(self, start_iso: str) -> dict[str, Any]:
        """Hold a slot for the form: ok, form_url, expires; or reason + nearest alternatives."""

    def release_hold(self) -> None:
        """Give back the slot this user holds, if any."""

    def held_slot(self) -> dict[str, Any] | None:
        """The live hold of this user (label, form_url), or None when it expired."""

    def hold_ran_out(self) -> bool:
        """Did this user's hold simply run out (rather than the form giving the slot back: its deadline
        passed, someone took it)?"""

    def read_slot(self, text: str) -> TypedSlot:
        """A typed text read once: the slot start it chooses, or whether it turns a date or time down."""

    def withdraw(self, reference: str, offered: str | None = None, *, confirmed: bool,
                 asked_status: str | None = None) -> dict[str, Any]:
        """Withdraw a request / cancel a booking in chat where the office allows it; `offered` is what the
        user's button named (withdraw | cancel): a withdraw button does nothing (outcome `changed`) for a
        request confirmed since. Not `confirmed`: nothing is done, outcome `ask` where it would be (the
        user confirms first); `asked_status`: the status the question showed (changed since: nothing done)."""

    def delete_personal_data(self) -> dict[str, Any]:
        """Delete the user's personal data; open requests/bookings are withdrawn first (outcome `deleted`,
        `closed`), unless one may not be closed in chat by the office's rule (outcome `call`, `kept`:
        nothing is done)."""

    def receipt(self) -> dict[str, Any] | None:
        """A receipt for a request completed on the form and not yet shown in chat."""

    def answer_proposal(self, reference: str, accept: bool) -> dict[str, Any]:
        """Accept or decline the other slot staff proposed for a request (outcome, reference, label)."""
