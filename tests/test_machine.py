"""The dialog engine on its own: a fake Ports, the shipped office profiles, no Flask, database or network."""
from __future__ import annotations

from dataclasses import FrozenInstanceError, dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest

from bot.clock import TOKYO
from bot.config import DEFAULT_OFFICES_DIR
from bot.offices import load_offices
from bot.render import load_labels, load_vocabulary
from dialogs import engine
from dialogs.effects import Choice, Say
from dialogs.inputs import Incoming
from dialogs.machine import (
    MACHINE,
    MACHINE_TRANSITIONS,
    RESUME_AFTER,
    STEP_TRIGGERS,
    State,
    Talk,
    choices_for_routing,
    typed_aliases,
)
from dialogs.ports import TypedSlot
from dialogs.router import Routed, postback, route

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=TOKYO)
OFFICES = load_offices(DEFAULT_OFFICES_DIR)
VOCAB = load_vocabulary("ja")
LABELS = load_labels("ja")["buttons"]


@dataclass
class FakePorts:
    """Records what the dialog asked of the outside world."""

    version: str = "2023-11-01"
    consented: set = field(default_factory=set)
    recorded: list = field(default_factory=list)
    blocked: bool = False
    open: dict | None = None
    released: int = 0
    typed: dict = field(default_factory=dict)         # what read_slot says of a text (else: nothing)
    read: list = field(default_factory=list)
    held: list = field(default_factory=list)
    holding: dict | None = None                         # the live hold held_slot reports

    def terms_version(self) -> str:
        return self.version

    def terms_url(self, version: str) -> str:
        return f"https://bot.example/terms/x/{version}"

    def has_consented(self, version: str) -> bool:
        return version in self.consented

    def consented_version(self) -> str | None:
        return max(self.consented) if self.consented else None

    def upcoming_terms(self) -> dict | None:
        return None

    def terms_changes(self, since: str | None, version: str) -> tuple[list[dict], bool]:
        return [], False

    def record_consent(self, version: str, method: str) -> None:
        self.recorded.append((version, method))
        self.consented.add(version)

    def set_followed(self, followed: bool) -> None:
        pass

    def set_language(self, language: str) -> None:
        pass

    def bookings(self) -> list[dict[str, Any]]:
        return []

    def open_booking(self) -> dict[str, Any] | None:
        return self.open

    def booking_blocked(self) -> bool:
        return self.blocked

    def week(self, index: int, page: int = 0) -> dict[str, Any]:
        return {"slots": [{"start": "2026-12-07T14:00:00+09:00", "label": "12/7(月) 14:00"}],
                "has_prev": False, "has_next": True}

    def hold(self, start_iso: str) -> dict[str, Any]:
        self.held.append(start_iso)
        return {"ok": False, "reason": "full", "alternatives": []}

    def release_hold(self) -> None:
        self.released += 1
        self.holding = None

    def held_slot(self) -> dict[str, Any] | None:
        return self.holding

    def hold_ran_out(self) -> bool:
        return True

    def read_slot(self, text: str) -> TypedSlot:
        self.read.append(text)
        return self.typed.get(text, TypedSlot())

    def withdraw(self, reference: str, offered: str | None = None, *, confirmed: bool,
                 asked_status: str | None = None) -> dict[str, Any]:
        return {"outcome": "not_found"}

    def delete_personal_data(self) -> dict[str, Any]:
        return {"outcome": "deleted", "closed": []}

    def receipt(self) -> dict[str, Any] | None:
        return None

    def answer_proposal(self, reference: str, accept: bool) -> dict[str, Any]:
        return {"outcome": "not_found"}


class Session:
    """One user's talk, kept between events the way dispatch keeps it in the database."""

    def __init__(self, office_id: str = "sakata", ports: FakePorts | None = None):
        self.office = OFFICES[office_id]
        self.ports = ports or FakePorts(version=self.office.current_terms.version)
        self.state, self.context, self.misses = State.IDLE.value, {}, 0
        self.last_active: datetime | None = None
        self.now = NOW
        self.effects: list = []

    def _event(self, inp: Incoming) -> list:
        talk = Talk(state=self.state, context=dict(self.context), office=self.office, ports=self.ports,
                    now=self.now, labels=LABELS, misses=self.misses, last_active=self.last_active)
        engine.handle(talk, inp, VOCAB)
        self.state, self.context, self.misses = talk.state, talk.context, talk.misses
        self.last_active = self.now
        self.effects = talk.effects
        return talk.effects

    def says(self, text: str) -> list:
        return self._event(Incoming(kind="text", event_id="e", at=self.now, text=text))

    def taps(self, data: str) -> list:
        return self._event(Incoming(kind="postback", event_id="e", at=self.now, data=data))

    def taps_label(self, label: str) -> list:
        choices = [c for e in self.effects if isinstance(e, Say) for c in e.choices]
        for choice in choices:
            if (choice.label or LABELS.get(choice.label_key or "")) == label:
                return self.taps(choice.data)
        raise AssertionError(f"no {label!r} among {choices}")

    def templates(self) -> list[str]:
        return [e.template for e in self.effects if isinstance(e, Say)]


# -- the machine ----------------------------------------------------------------------------------

def test_one_machine_with_no_models_and_no_auto_transitions():
    assert MACHINE.models == []
    assert not [name for name in MACHINE.events if name.startswith("to_")]
    session = Session()
    session.says("予約")
    session.says("同意する")
    assert MACHINE.models == [], "a Talk must not be added to the shared machine"


def test_every_state_is_reachable_in_the_table_and_every_trigger_is_a_user_verb():
    dests = {t["dest"] for t in MACHINE_TRANSITIONS if t.get("dest")}
    assert {s.value for s in State} - {State.IDLE.value} <= dests
    assert STEP_TRIGGERS == {t["trigger"] for t in MACHINE_TRANSITIONS}


def test_effects_are_frozen():
    with pytest.raises(FrozenInstanceError):
        Say("x").template = "y"  # type: ignore[misc]
    with pytest.raises(FrozenInstanceError):
        Choice(label="x").label = "y"  # type: ignore[misc]


# -- consent --------------------------------------------------------------------------------------

def test_booking_asks_for_consent_with_two_buttons():
    session = Session()
    session.says("予約")
    assert session.state == "awaiting_consent" and session.templates() == ["consent"]
    [say] = session.effects
    assert [LABELS[c.label_key] for c in say.choices] == ["同意する", "同意しない"]
    assert say.vars["brief"] is False and say.vars["version"] == "2023-11-01"


@pytest.mark.parametrize("typed", ["1", "ok", "はい", "2"])
def test_typed_words_other_than_the_consent_words_neither_consent_nor_decline(typed):
    session = Session()
    session.says("予約")
    session.says(typed)
    assert session.ports.recorded == [] and session.state == "awaiting_consent"
    assert session.templates() == ["not_understood", "consent"]
    assert session.effects[-1].vars["brief"] is True


def test_consent_by_words_and_by_button_record_the_method():
    by_words, by_button = Session(), Session()
    by_words.says("予約")
    by_words.says("同意する")
    by_button.says("予約")
    by_button.taps_label("同意する")
    assert by_words.ports.recorded == [("2023-11-01", "text")]
    assert by_button.ports.recorded == [("2023-11-01", "button")]
    assert by_button.state == "awaiting_eligibility" and by_button.context["i"] == 0


def test_a_consent_button_for_an_older_version_does_not_consent_to_the_new_one():
    session = Session()
    session.says("予約")
    old = postback("agree", "awaiting_consent", "sakata", "2022-09-15")
    session.taps(old)
    assert session.ports.recorded == [] and session.state == "awaiting_consent"


def test_a_user_who_consented_is_not_asked_again():
    ports = FakePorts(consented={"2023-11-01"})
    session = Session(ports=ports)
    session.says("予約")
    assert session.state == "awaiting_eligibility" and "consent" not in session.templates()


def test_declining_goes_back_to_idle_and_forgets_the_booking():
    session = Session()
    session.says("予約")
    session.says("同意しない")
    assert (session.state, session.context) == ("idle", {}) and session.templates() == ["consent_declined"]


# -- eligibility and checklist --------------------------------------------------------------------

def _through_questions(session: Session) -> None:
    session.says("予約")
    session.says("同意する")
    for question in session.office.eligibility:
        session.says({"yes": "はい", "no": "いいえ"}[question.passing[0]])


@pytest.mark.parametrize("office_id", ["sakata", "otaru"])
def test_all_passing_answers_lead_to_the_checklist_and_then_the_slots(office_id):
    session = Session(office_id)
    _through_questions(session)
    assert session.state == "awaiting_checklist" and session.templates() == ["checklist_intro", "checklist_item"]
    for _ in session.office.checklist:
        session.says("はい")
    assert session.state == "awaiting_slot" and session.templates() == ["checklist_done", "slots"]


def test_a_slot_typed_at_the_slot_step_is_read_once_and_chosen_or_declined():
    """The step reads a typed text once (`read_slot`): a start is chosen (the hold is asked for), a text that
    turns a date or time down is answered as such and holds nothing, any other text is a miss."""
    session = Session()
    session.ports.typed = {"12/7 14時で": TypedSlot(start="2026-12-07T14:00:00+09:00"),
                           "12/7 14時以外": TypedSlot(declined=True)}
    _through_questions(session)
    for _ in session.office.checklist:
        session.says("はい")
    assert session.state == "awaiting_slot"
    session.says("12/7 14時以外")
    assert "slot_declined" in session.templates() and session.ports.held == [] and session.misses == 0
    session.says("12/7 14時で")
    assert session.ports.held == ["2026-12-07T14:00:00+09:00"]
    session.says("こんにちは")
    assert session.misses == 1
    assert session.ports.read == ["12/7 14時以外", "12/7 14時で", "こんにちは"]


@pytest.mark.parametrize("office_id", ["sakata", "otaru"])
def test_answers_are_never_kept(office_id):
    session = Session(office_id)
    session.says("予約")
    session.says("同意する")
    for question in session.office.eligibility:
        session.says({"yes": "はい", "no": "いいえ"}[question.passing[0]])
        assert set(session.context) <= {"i", "consented_in_flow", "terms"}  # "terms": the version consented to


def test_an_unsure_answer_ends_with_the_unsure_explanation():
    session = Session()
    session.says("予約")
    session.says("同意する")
    session.says("わからない")
    [say] = session.effects
    assert say.template == "ineligible" and say.vars["unsure"] is True
    assert say.vars["question"].id == "registered"
    assert (session.state, session.context) == ("idle", {})


def test_a_checklist_no_stays_on_the_item_and_booking_asks_it_again():
    session = Session()
    _through_questions(session)
    session.says("はい")
    session.says("いいえ")
    assert session.templates() == ["checklist_fix"]
    assert session.effects[0].vars["item"].id == session.office.checklist[1].id
    assert (session.state, session.context["i"]) == ("awaiting_checklist", 1)
    session.says("予約")
    assert session.templates() == ["checklist_item"] and session.effects[0].vars["number"] == 2


# -- the words ------------------------------------------------------------------------------------

def test_back_at_consent_and_when_idle():
    session = Session()
    session.says("戻る")
    assert session.templates() == ["nothing_in_progress"]
    session.says("予約")
    session.says("戻る")
    assert session.templates() == ["no_earlier_step", "consent"] and session.effects[-1].vars["brief"] is True


def test_three_misses_offer_the_contact():
    session = Session()
    _through_questions(session)
    assert [session.says("？？")[0].template for _ in range(3)] == ["not_understood", "not_understood",
                                                                   "miss_contact"]


def test_help_says_where_the_user_is_and_asks_again():
    session = Session()
    _through_questions(session)
    session.says("ヘルプ")
    assert session.templates() == ["help", "checklist_item"]
    assert session.effects[0].vars == {"state": "awaiting_checklist", "resuming": False, "answers": ("yes", "no")}


def test_stop_gives_back_a_held_slot_and_forgets_everything():
    session = Session()
    _through_questions(session)
    released = session.ports.released
    session.says("中止")
    assert (session.state, session.context) == ("idle", {}) and session.ports.released == released + 1


def test_restart_says_it_starts_over_then_asks_the_first_step():
    session = Session()
    _through_questions(session)
    session.says("最初から")
    assert session.templates() == ["restarted", "eligibility_question"]
    assert session.effects[0].vars == {"in_progress": True, "going_on": True, "released": None}
    assert session.context["i"] == 0


def test_restart_while_a_slot_is_held_says_the_slot_was_given_back():
    session = Session()
    _through_questions(session)
    session.state, session.ports.holding = "awaiting_form", {"label": "12/7(月) 14:00"}
    released = session.ports.released
    session.says("最初から")
    assert session.templates()[0] == "restarted" and session.effects[0].vars["released"] == {"label": "12/7(月) 14:00"}
    assert session.ports.released == released + 1 and session.state == "awaiting_eligibility"


def test_restart_that_cannot_start_says_only_what_was_dropped():
    idle = Session(ports=FakePorts(blocked=True))
    idle.says("最初から")
    assert idle.templates() == ["booking_blocked"]               # nothing was in progress: nothing to drop
    busy = Session()
    _through_questions(busy)
    busy.ports.blocked = True
    busy.says("最初から")
    assert busy.templates() == ["restarted", "booking_blocked"] and busy.state == "idle"
    assert busy.effects[0].vars["going_on"] is False


def test_after_a_day_booking_offers_to_continue_or_start_over():
    session = Session()
    _through_questions(session)
    session.now = NOW + RESUME_AFTER + timedelta(seconds=1)
    session.says("予約")
    assert session.templates() == ["resume_offer"] and session.context["resume_offered"]
    session.taps_label("続きから")
    assert session.templates() == ["checklist_item"] and "resume_offered" not in session.context


def test_blocked_users_and_users_with_an_open_booking_do_not_start():
    blocked = Session(ports=FakePorts(blocked=True))
    blocked.says("予約")
    assert (blocked.state, blocked.templates()) == ("idle", ["booking_blocked"])
    busy = Session(ports=FakePorts(open={"reference": "ABCD-EFGH", "label": "12/7(月) 14:00", "status": "requested"}))
    busy.says("予約")
    assert (busy.state, busy.templates()) == ("idle", ["already_booked"])


def test_a_button_for_another_position_is_stale():
    session = Session()
    session.says("予約")
    session.says("同意する")
    stale = postback("answer", "awaiting_eligibility:3", "sakata", "yes")
    session.taps(stale)
    assert session.templates() == ["stale_button", "eligibility_question"] and session.context["i"] == 0
    assert session.effects[0].vars == {"state": "awaiting_eligibility"}   # the step the answer names


def test_a_page_move_in_another_language_does_what_its_own_label_does_and_never_reads_as_another_choice():
    """Other languages' labels of the page moves, typed: one that reads as the page's next-week button is that
    button; one that reads as a slot, or as a move not possible here, chooses nothing."""
    office = OFFICES["sakata"]
    elsewhere = {"next_week": "Next week", "next_page": "12/7(月) 14:00", "prev_page": "Previous"}
    talk = Talk(state=State.AWAITING_SLOT.value, context={}, office=office,
                ports=FakePorts(version=office.current_terms.version), now=NOW, labels=LABELS,
                other_labels=(elsewhere,))
    aliases = typed_aliases(talk)
    assert ("week:next", ["Next week"]) in aliases                     # the 次の週 button: has_next, a week's end
    assert not [value for value, labels in aliases if "12/7(月) 14:00" in labels or "Previous" in labels]
    assert route(Incoming(kind="text", event_id="e", at=NOW, text="next week"), office="sakata",
                 position=talk.position(), choices=choices_for_routing(talk), vocab=VOCAB,
                 aliases=aliases) == Routed("turn_week", value="next", method="text")
