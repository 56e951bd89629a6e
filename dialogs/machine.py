"""The booking conversation as one office-agnostic `transitions` Machine, built once at import.

States name what the bot waits for; triggers are what the user does. The office decides the
content of each step (its questions, its checklist), never the machine's shape. Callbacks only
read the Talk, call its ports and append effects.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum
from typing import Any, Mapping

from transitions import EventData, Machine

from dialogs.effects import Choice, Say
from dialogs.ports import Ports
from dialogs.router import key, normalise, postback


class State(str, Enum):
    IDLE = "idle"
    AWAITING_CONSENT = "awaiting_consent"
    AWAITING_ELIGIBILITY = "awaiting_eligibility"
    AWAITING_CHECKLIST = "awaiting_checklist"
    AWAITING_SLOT = "awaiting_slot"
    AWAITING_FORM = "awaiting_form"


IN_PROGRESS = [s.value for s in State if s is not State.IDLE]
RESUME_AFTER = timedelta(hours=24)
MAX_MISSES = 3


@dataclass
class Talk:
    """One user's conversation during one event: the machine's model."""

    state: str
    context: dict
    office: Any                      # bot.offices.Office (duck-typed: dialogs import no bot code)
    ports: Ports
    now: datetime
    labels: Mapping[str, str]        # label key -> label text in the user's language
    misses: int = 0
    last_active: datetime | None = None
    language: str = "ja"
    other_labels: tuple[Mapping[str, str], ...] = ()   # the labels in the other languages (page moves typed)
    effects: list = field(default_factory=list)
    scratch: dict = field(default_factory=dict)  # per-event values shared by prepare/conditions

    # -- helpers used by callbacks ------------------------------------------------------------
    @property
    def index(self) -> int:
        return int(self.context.get("i", 0))

    def say(self, template: str, choices: tuple[Choice, ...] = (), **vars: Any) -> None:
        self.effects.append(Say(template, vars, choices))

    def position(self) -> str:
        """What the bot waits for, as its buttons carry it (a button from another position is stale).

        At the slot step: the week and, past a week's first page, the page (`awaiting_slot:1` is week 1's
        first page, `awaiting_slot:1:2` its third).
        """
        if self.state in (State.AWAITING_ELIGIBILITY, State.AWAITING_CHECKLIST):
            return f"{self.state}:{self.index}"
        if self.state == State.AWAITING_SLOT:
            page = int(self.context.get("page", 0))
            week = f"{self.state}:{self.context.get('week', 0)}"
            return f"{week}:{page}" if page else week
        return self.state

    def button(self, action: str, value: str | None = None, label_key: str | None = None,
               label: str | None = None) -> Choice:
        data = postback(action, self.position(), self.office.id, value)
        return Choice(label_key=label_key, label=label, data=data)


# -- what each waiting state offers ------------------------------------------------------------

def offered(talk: Talk) -> list[tuple[Choice, str]]:
    """The buttons of the current step, each with its choice value (`action:value`)."""
    if talk.context.get("resume_offered"):
        return [(talk.button("resume", "continue", "continue"), "resume:continue"),
                (talk.button("resume", "fresh", "fresh"), "resume:fresh")]
    state = talk.state
    if state == State.AWAITING_CONSENT:
        return [(talk.button("agree", talk.ports.terms_version(), "agree"), "agree"),
                (talk.button("disagree", None, "disagree"), "disagree")]
    if state == State.AWAITING_ELIGIBILITY:
        question = talk.office.eligibility[talk.index]
        return [(talk.button("answer", c, c), f"answer:{c}") for c in question.choices]
    if state == State.AWAITING_CHECKLIST:
        return [(talk.button("answer", c, c), f"answer:{c}") for c in ("yes", "no")]
    if offers_slots(talk):
        page = shown_page(talk)
        buttons = [(talk.button("slot", s["start"], label=s["label"]), f"slot:{s['start']}")
                   for s in page["slots"]]
        buttons += [(talk.button("week", value, label_key), f"week:{value}") for value, label_key in _turns(page)]
        return buttons
    return []


def offers_slots(talk: Talk) -> bool:
    """Does the current step show a page of slots? (Choosing one; or the form's hold ran out.)"""
    state = talk.state
    return not talk.context.get("resume_offered") and (
        state == State.AWAITING_SLOT or (state == State.AWAITING_FORM and hold_lapsed_now(talk)))


def shown_slot_at(talk: Talk, hhmm: str) -> str | None:
    """The start of the one slot of the list last shown that begins at `hhmm` (a time typed alone, 14時: Sakata's
    week and Otaru's page are one day each), or None where the list has none or several."""
    shown = talk.context.get("shown_slots") or []   # ISO starts in the office's time, as the service wrote them
    starts = [start for start, _label in shown if datetime.fromisoformat(start).strftime("%H:%M") == hhmm]
    return starts[0] if len(starts) == 1 else None


def _turns(page: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(value, label key) of the buttons that turn the page: 前の週 / 次の週 where they cross a week's end."""
    turns = []
    if page.get("has_prev"):
        turns.append(("prev", "prev_week" if page.get("prev_is_week", True) else "prev_page"))
    if page.get("has_next"):
        turns.append(("next", "next_week" if page.get("next_is_week", True) else "next_page"))
    return turns


def shown_page(talk: Talk) -> dict[str, Any]:
    """The page of slots the step shows (asked once per event); the context keeps its page number."""
    page = talk.scratch.get("week")
    if page is None:
        page = talk.ports.week(int(talk.context.get("week", 0)), int(talk.context.get("page", 0)))
        talk.scratch["week"] = page
        if page.get("page"):
            talk.context["page"] = page["page"]   # -1 or past the end, as the service read it: the week's last
        else:
            talk.context.pop("page", None)
    return page


#: context key: データ削除 was just asked, with what it said about the bookings (`b` of its 削除する button).
DELETE_ASKED = "delete_asked"
#: context key: a withdrawal or cancellation was just asked: the booking's reference `r`, the button that asked
#: `k` (withdraw | cancel), its status `s` and what confirming does `d` (withdraw | cancel | proposal).
CANCEL_ASKED = "cancel_asked"
#: the label of the button that confirms each in-chat action (`d` of CANCEL_ASKED).
CONFIRM_LABELS = {"withdraw": "confirm_withdraw", "cancel": "confirm_cancel", "proposal": "decline_proposal"}


def typed_aliases(talk: Talk) -> list[tuple[str, list[str]]]:
    """(value, labels) chosen by typing a label that is not on this page's buttons (never by number):
    次の週 / 前の週 go to that week's first page, 次へ / 前へ turn the page, where these moves exist (a week's
    move also where its button shows, for the words vocabulary.yaml gives it: 来週, 先週; and every move in the
    other languages' labels, `_moves_elsewhere`); 削除する /
    削除しない right after データ削除 asked; キャンセルする (取り下げる) / やめる, or はい / いいえ, right after a
    cancellation was asked."""
    asked = [(f"confirm_delete:{value}", [talk.labels[key]])
             for key, value in (("delete_yes", "yes"), ("delete_no", "no"))
             if DELETE_ASKED in talk.context and key in talk.labels]
    cancel = talk.context.get(CANCEL_ASKED)
    if cancel:
        keys = ((CONFIRM_LABELS.get(cancel.get("d"), ""), "yes"), ("yes", "yes"), ("keep", "no"), ("no", "no"))
        asked += [(f"confirm_cancel:{value}", [talk.labels[key]]) for key, value in keys if key in talk.labels]
    if not offers_slots(talk):
        return asked
    page = shown_page(talk)
    shown = {label_key for _, label_key in _turns(page)}
    moves = [("next_week", "week:1", page.get("has_next_week")),
             ("prev_week", "week:-1", page.get("has_prev_week")),
             ("next_page", "week:next", page.get("has_next")),
             ("prev_page", "week:prev", page.get("has_prev"))]
    weeks = {"week:1", "week:-1"}   # also typed in other words (来週, 先週: vocabulary.yaml), button or not
    own = [(value, [] if name in shown else [talk.labels[name]]) for name, value, possible in moves
           if possible and name in talk.labels and (name not in shown or value in weeks)]
    return asked + own + _moves_elsewhere(talk, moves, page, own)


def _moves_elsewhere(talk: Talk, moves: list[tuple[str, str, Any]], page: Mapping[str, Any],
                     own: list[tuple[str, list[str]]]) -> list[tuple[str, list[str]]]:
    """The page moves in the other languages' labels (次へ typed in English mode): each does what its own label
    does here (the button that reads so, or its move), unless it reads as another choice or move on this page."""
    buttons = {name: f"week:{value}" for value, name in _turns(page)}
    moves_here = [(name, buttons.get(name, value)) for name, value, possible in moves if possible or name in buttons]
    found: dict[str, tuple[str, set[str]]] = {}   # as typed -> (a label, the values it names)
    for labels in talk.other_labels:
        for name, value in moves_here:
            if labels.get(name):
                found.setdefault(key(normalise(labels[name])), (labels[name], set()))[1].add(value)
    taken = {key(normalise(label)): value for value, labels in (*choices_for_routing(talk), *own) for label in labels}
    result = []
    for typed, (label, values) in found.items():
        value = values.pop() if len(values) == 1 else None
        if value and taken.get(typed, value) == value:
            result.append((value, [label]))
    return result


def typed_booking_actions(talk: Talk) -> dict[str, str]:
    """The 予約確認 buttons' labels (trigger -> label), which also work typed with their reference."""
    return {"withdraw": talk.labels.get("withdraw", ""), "cancel_booking": talk.labels.get("cancel", "")}


def typed_proposal_answers(talk: Talk) -> dict[str, str]:
    """The labels of the buttons that answer a proposed slot (answer -> label), which also work typed."""
    return {"accept": talk.labels.get("accept_proposal", ""), "decline": talk.labels.get("decline_proposal", "")}


def choices_for_routing(talk: Talk) -> list[tuple[str, list[str]]]:
    """(value, labels) in display order, for typed numbers and labels.

    Slots: those last shown, in their numbers (a slot taken since is then explained, not swapped for
    another); the page's turns after them, as displayed."""
    shown = talk.context.get("shown_slots") if offers_slots(talk) else None
    result = [(f"slot:{start}", [label]) for start, label in shown] if shown is not None else []
    for choice, value in offered(talk):
        if shown is not None and value.startswith("slot:"):
            continue
        label = choice.label or talk.labels.get(choice.label_key or "", "")
        result.append((value, [label] if label else []))
    return result


def ask(talk: Talk, again: bool = False) -> None:
    """Say what the current step asks, with its buttons.

    `again`: the step was already shown and is asked once more (after a miss, ヘルプ, a sticker...):
    consent then repeats only its link and buttons, not the whole summary.
    """
    buttons = tuple(c for c, _ in offered(talk))
    if talk.context.get("resume_offered"):
        talk.say("resume_offer", buttons)
        return
    state = talk.state
    office = talk.office
    if state == State.AWAITING_CONSENT:
        version = talk.ports.terms_version()
        previous = talk.ports.consented_version()
        reconsent = previous is not None and previous < version
        talk.context["terms_shown"] = version   # typed 同意する agrees to this version, not to one that follows
        changes, earlier = talk.ports.terms_changes(previous, version) if reconsent and not again else ([], False)
        talk.say("consent", buttons, version=version, terms_url=talk.ports.terms_url(version), reconsent=reconsent,
                 brief=again, resuming=bool(talk.context.get("return_to")), changes=changes, earlier_changes=earlier,
                 upcoming=None if again else talk.ports.upcoming_terms(),
                 open_booking=talk.ports.open_booking() if reconsent else None)
    elif state == State.AWAITING_ELIGIBILITY:
        talk.say("eligibility_question", buttons, question=office.eligibility[talk.index],
                 number=talk.index + 1, total=len(office.eligibility))
    elif state == State.AWAITING_CHECKLIST:
        talk.say("checklist_item", buttons, item=office.checklist[talk.index],
                 number=talk.index + 1, total=len(office.checklist))
    elif state == State.AWAITING_SLOT:
        _say_slots(talk, buttons)
    elif state == State.AWAITING_FORM:
        held = None if hold_lapsed_now(talk) else talk.ports.held_slot()
        if held:
            talk.say("form_link", (), held=held)
        else:
            talk.say("hold_expired", ran_out=talk.ports.hold_ran_out())
            _say_slots(talk, buttons)


def _say_slots(talk: Talk, buttons: tuple[Choice, ...]) -> None:
    """The page of slots, numbered; the context keeps what was shown, so that a number typed later means
    the slot the user saw as that number, even if others booked meanwhile and the page moved."""
    page = shown_page(talk)
    talk.context["shown_slots"] = [[s["start"], s["label"]] for s in page["slots"]]
    talk.say("slots", buttons, page=page)


def hold_lapsed_now(talk: Talk) -> bool:
    """Waiting for the form, but the slot's hold has run out (asked once per event)."""
    if "hold_lapsed" not in talk.scratch:
        talk.scratch["hold_lapsed"] = talk.ports.held_slot() is None
    return talk.scratch["hold_lapsed"]


# -- conditions (predicates on the event) ------------------------------------------------------

def _value(e: EventData) -> str | None:
    return e.kwargs.get("value")


def is_blocked(e: EventData) -> bool:
    return e.model.ports.booking_blocked()


def at_booking_limit(e: EventData) -> bool:
    """The user has as many open requests and bookings as the office allows at once (`max_open_per_user`)."""
    booking = e.model.ports.open_booking()
    return booking is not None and booking.get("open_count", 1) >= e.model.office.booking.max_open_per_user


def consented_current(e: EventData) -> bool:
    ports = e.model.ports
    return ports.has_consented(ports.terms_version())


def agrees_to_current(e: EventData) -> bool:
    """A button, or typed 同意する, for the version in force now: not for an older one shown before a new
    version took effect (typed words agree to the version last shown)."""
    value = _value(e) or e.model.context.get("terms_shown")
    return value is None or value == e.model.ports.terms_version()


def idle_over_a_day(e: EventData) -> bool:
    last = e.model.last_active
    return last is not None and e.model.now - last > RESUME_AFTER


def answer_valid(e: EventData) -> bool:
    talk: Talk = e.model
    value = _value(e)
    if talk.state == State.AWAITING_ELIGIBILITY:
        return value in talk.office.eligibility[talk.index].choices
    return value in ("yes", "no")


def answer_passes(e: EventData) -> bool:
    talk: Talk = e.model
    return _value(e) in talk.office.eligibility[talk.index].passing


def answer_is_no(e: EventData) -> bool:
    return _value(e) == "no"


def more_questions(e: EventData) -> bool:
    return e.model.index + 1 < len(e.model.office.eligibility)


def more_items(e: EventData) -> bool:
    return e.model.index + 1 < len(e.model.office.checklist)


def not_first(e: EventData) -> bool:
    return e.model.index > 0


def consented_in_flow(e: EventData) -> bool:
    return bool(e.model.context.get("consented_in_flow"))


def terms_changed(e: EventData) -> bool:
    """Past the consent step, but a newer terms version has taken effect since the user consented.

    The context keeps the version the booking went on under (one read of the version in force a step);
    a booking begun before it kept one asks the consent record."""
    talk: Talk = e.model
    current = talk.ports.terms_version()
    return talk.context.get("terms") != current and not talk.ports.has_consented(current)


def _returns_to(state: "State"):
    """A predicate: the consent step was interposed mid-booking, and the booking goes on at `state`."""
    def returns(e: EventData) -> bool:
        return e.model.context.get("return_to") == state.value
    returns.__name__ = f"returns_to_{state.value}"
    return returns


def hold_lapsed(e: EventData) -> bool:
    return hold_lapsed_now(e.model)


def shows_slots(e: EventData) -> bool:
    return offers_slots(e.model)


def hold_ok(e: EventData) -> bool:
    return bool(e.model.scratch.get("hold", {}).get("ok"))


def resume_fresh(e: EventData) -> bool:
    return _value(e) == "fresh"


def resume_pending(e: EventData) -> bool:
    return bool(e.model.context.get("resume_offered"))


# -- callbacks (one per step) ------------------------------------------------------------------

def ask_step(e: EventData) -> None:
    """Ask what the new state waits for."""
    e.model.context.pop("resume_offered", None)
    ask(e.model)


def clear_context(e: EventData) -> None:
    """Forget the booking in progress (and give back a held slot)."""
    e.model.ports.release_hold()
    e.model.context.clear()


def record_consent(e: EventData) -> None:
    """Record consent to the current terms version."""
    talk: Talk = e.model
    version = talk.ports.terms_version()
    if not talk.ports.has_consented(version):  # back at consent (戻る) and agreeing again: one record
        talk.ports.record_consent(version, e.kwargs.get("method", "button"))
    talk.context["consented_in_flow"] = True
    talk.context["terms"] = version
    talk.context.pop("reconsent", None)
    talk.context.pop("terms_shown", None)


def consent_again(e: EventData) -> None:
    """A new terms version took effect mid-booking: ask consent to it first, keeping the step reached."""
    talk: Talk = e.model
    talk.context.pop("resume_offered", None)
    talk.context["return_to"] = talk.state
    if e.event.name == "choose_slot" and talk.state == State.AWAITING_SLOT.value:
        talk.context["chosen_slot"] = str(_value(e))   # taken once they agree: the tap is not lost
    else:
        talk.context.pop("chosen_slot", None)


def continue_after_consent(e: EventData) -> None:
    """Consented to the new version: go on where the booking was (answers, page and held slot kept; a slot
    chosen just before that could not be held after all is explained)."""
    talk: Talk = e.model
    talk.context.pop("return_to", None)
    talk.context.pop("chosen_slot", None)
    talk.say("consent_thanks", resuming=True)
    if talk.scratch.get("hold"):
        say_slot_unavailable(e)
    else:
        ask(talk)


def hold_chosen_slot(e: EventData) -> None:
    """Agreeing to the version that took effect as a slot was chosen: hold that slot now (prepare)."""
    talk: Talk = e.model
    chosen = talk.context.get("chosen_slot")
    if (chosen and "hold" not in talk.scratch and talk.context.get("return_to") == State.AWAITING_SLOT.value
            and agrees_to_current(e)):
        talk.scratch["hold"] = talk.ports.hold(chosen)


def form_after_consent(e: EventData) -> None:
    """Consented, and the slot chosen just before is held: the details form's link."""
    talk: Talk = e.model
    talk.context.pop("return_to", None)
    talk.context.pop("chosen_slot", None)
    talk.say("consent_thanks", resuming=True)
    send_form_link(e)


def begin_eligibility(e: EventData) -> None:
    """Start the office's eligibility questions."""
    talk: Talk = e.model
    talk.context["i"] = 0
    talk.context["terms"] = talk.ports.terms_version()
    if e.event.name == "agree":
        talk.say("consent_thanks", resuming=False)
    ask(talk)


def next_question(e: EventData) -> None:
    """Move to the next eligibility question (answers are not stored: only passing matters)."""
    e.model.context["i"] = e.model.index + 1
    ask(e.model)


def begin_checklist(e: EventData) -> None:
    """All questions passed: start the device checklist."""
    talk: Talk = e.model
    talk.context["i"] = 0
    talk.say("checklist_intro", count=len(talk.office.checklist))
    ask(talk)


def say_ineligible(e: EventData) -> None:
    """Explain kindly why online counselling does not fit, and the other routes."""
    talk: Talk = e.model
    question = talk.office.eligibility[talk.context.get("last_i", 0)]
    talk.say("ineligible", question=question, unsure=_value(e) == "unsure")
    talk.context.clear()


def remember_question(e: EventData) -> None:
    """Keep the index of the question answered, for the explanation after leaving the state."""
    e.model.context["last_i"] = e.model.index


def say_fix(e: EventData) -> None:
    """A checklist item is not ready: what to fix, and that 予約 resumes here."""
    talk: Talk = e.model
    talk.say("checklist_fix", item=talk.office.checklist[talk.index])


def next_item(e: EventData) -> None:
    """Move to the next checklist item."""
    e.model.context["i"] = e.model.index + 1
    ask(e.model)


def show_first_week(e: EventData) -> None:
    """Checklist done: show the first week with free slots."""
    talk: Talk = e.model
    talk.context.pop("i", None)
    talk.context.pop("page", None)
    talk.context["week"] = 0
    talk.say("checklist_done")
    ask(talk)


def turn_week(e: EventData) -> None:
    """次へ / 前へ: the next or previous page, into the next or previous week at a week's ends (its first
    page forward, its last page back); 次の週 / 前の週 typed: that week's first page."""
    talk: Talk = e.model
    value = str(_value(e))
    week, page = int(talk.context.get("week", 0)), int(talk.context.get("page", 0))
    if value == "next":
        shown = shown_page(talk)
        if shown.get("has_next"):
            week, page = (week + 1, 0) if shown.get("next_is_week", True) else (week, page + 1)
    elif value == "prev":
        if page > 0:
            page -= 1
        elif week > 0:
            week, page = week - 1, -1       # -1: the week's last page
    elif value in ("1", "-1"):
        week, page = max(0, week + int(value)), 0
    talk.context["week"], talk.context["page"] = week, page
    talk.scratch.pop("week", None)
    ask(talk)


def try_hold(e: EventData) -> None:
    """Hold the chosen slot (prepare: its outcome decides the transition)."""
    talk: Talk = e.model
    talk.scratch["hold"] = talk.ports.hold(str(_value(e)))


def send_form_link(e: EventData) -> None:
    """The slot is held: link the details form (never ask personal data in chat)."""
    talk: Talk = e.model
    talk.context["slot"] = talk.scratch["hold"]["start"]
    talk.say("form_link", (), held=talk.scratch["hold"])


def say_slot_unavailable(e: EventData) -> None:
    """The slot cannot be held: why, and the nearest alternatives."""
    talk: Talk = e.model
    talk.scratch.pop("week", None)
    result = talk.scratch.get("hold", {})
    alternatives = result.get("alternatives", [])
    if offers_slots(talk):   # the list asked next: a slot it shows is not named twice (on a phone, six lines for three)
        listed = {slot["start"] for slot in shown_page(talk)["slots"]}
        alternatives = [a for a in alternatives if a["start"] not in listed]
    talk.say("slot_unavailable", reason=result.get("reason"), requested=result.get("start"),
             deadline=result.get("deadline"), closure=result.get("closure"), holiday=result.get("holiday"),
             alternatives=alternatives)
    ask(talk)


def back_one(e: EventData) -> None:
    """Go back one question or item."""
    e.model.context["i"] = e.model.index - 1
    ask(e.model)


def to_last_question(e: EventData) -> None:
    """Back from the checklist's first item to the last eligibility question."""
    e.model.context["i"] = len(e.model.office.eligibility) - 1
    ask(e.model)


def to_last_item(e: EventData) -> None:
    """Back from the slots to the last checklist item."""
    e.model.context["i"] = len(e.model.office.checklist) - 1
    e.model.context.pop("week", None)
    e.model.context.pop("page", None)
    ask(e.model)


def finish_form(e: EventData) -> None:
    """The details form is complete: the request exists (its receipt comes separately); start afresh next time."""
    e.model.context.clear()
    e.model.scratch.clear()


def release_hold(e: EventData) -> None:
    """Give back the held slot."""
    e.model.ports.release_hold()
    e.model.context.pop("slot", None)


def say_no_earlier_step(e: EventData) -> None:
    """戻る where there is nothing before."""
    talk: Talk = e.model
    if talk.state == State.IDLE:
        talk.say("nothing_in_progress")
    else:
        # New terms asked in the middle of a booking: there were steps before, but consent comes first.
        resuming = talk.state == State.AWAITING_CONSENT and bool(talk.context.get("return_to"))
        talk.say("no_earlier_step", resuming=resuming)
        ask(talk, again=True)


def say_terms_changed(e: EventData) -> None:
    """A consent button from an older version: show the version in force."""
    e.model.say("stale_button", state=e.model.state, terms_changed=True)
    ask(e.model)


def say_declined_terms(e: EventData) -> None:
    """同意しない: end kindly with the office's other ways (a slot held before the new terms is given back,
    and said so; a request or booking made under the older terms stays, and the user is told what to do)."""
    talk: Talk = e.model
    released = talk.ports.held_slot()
    talk.ports.release_hold()
    talk.context.clear()
    talk.say("consent_declined", released=released, booking=talk.ports.open_booking())


def say_stopped(e: EventData) -> None:
    """中止: nothing is kept as a request."""
    e.model.say("stopped")


def say_nothing_to_stop(e: EventData) -> None:
    """中止 when nothing is in progress."""
    e.model.say("nothing_in_progress")


def say_blocked(e: EventData) -> None:
    """Staff blocked online booking for this user: contact the office."""
    e.model.say("booking_blocked")


def say_at_booking_limit(e: EventData) -> None:
    """As many open requests or bookings as the office allows at once (one, unless its profile says more)."""
    e.model.say("already_booked", booking=e.model.ports.open_booking())


def offer_resume(e: EventData) -> None:
    """After 24 h idle: 続きから / 最初から."""
    e.model.context["resume_offered"] = True
    ask(e.model)


def resume_here(e: EventData) -> None:
    """続きから: ask the step we stopped at."""
    e.model.context.pop("resume_offered", None)
    ask(e.model)


def start_over(e: EventData) -> None:
    """Start the booking from the beginning (before choosing where it begins)."""
    talk: Talk = e.model
    talk.ports.release_hold()
    talk.context.clear()
    talk.scratch.clear()


def say_restarted(e: EventData) -> None:
    """最初から: say in one line that the booking starts over, and what is dropped (a held slot is given back;
    the answers so far); said before start_over gives the hold back. Nothing to say where nothing was in
    progress and nothing starts (blocked, or at the booking limit: that answer follows)."""
    talk: Talk = e.model
    going_on = e.transition.dest in (State.AWAITING_CONSENT.value, State.AWAITING_ELIGIBILITY.value)
    in_progress = talk.state != State.IDLE
    if going_on or in_progress:
        held = talk.ports.held_slot() if talk.state == State.AWAITING_FORM else None
        talk.say("restarted", in_progress=in_progress, going_on=going_on, released=held)


_S = State
# Steps past consent: a terms version taking effect while the user is at one of them is consented to first.
_PAST_CONSENT = [_S.AWAITING_ELIGIBILITY, _S.AWAITING_CHECKLIST, _S.AWAITING_SLOT, _S.AWAITING_FORM]
_RECONSENT = dict(dest=_S.AWAITING_CONSENT, conditions=[terms_changed], before=consent_again, after=ask_step)
MACHINE_TRANSITIONS: list[dict] = [
    # a new terms version took effect mid-booking: consent to it before going on (and back after)
    dict(trigger="answer", source=[_S.AWAITING_ELIGIBILITY, _S.AWAITING_CHECKLIST], **_RECONSENT),
    *[dict(trigger=trigger, source=[_S.AWAITING_SLOT, _S.AWAITING_FORM], **_RECONSENT)
      for trigger in ("turn_week", "choose_slot")],
    dict(trigger="back", source=_PAST_CONSENT, **_RECONSENT),
    # 予約
    dict(trigger="start", source=_S.IDLE, dest=None, conditions=[is_blocked], after=say_blocked),
    dict(trigger="start", source=_S.IDLE, dest=None, conditions=[at_booking_limit], after=say_at_booking_limit),
    dict(trigger="start", source=_S.IDLE, dest=_S.AWAITING_CONSENT, unless=[consented_current],
         before=start_over, after=ask_step),
    dict(trigger="start", source=_S.IDLE, dest=_S.AWAITING_ELIGIBILITY, before=start_over,
         after=begin_eligibility),
    dict(trigger="start", source=IN_PROGRESS, dest=None, conditions=[idle_over_a_day], after=offer_resume),
    dict(trigger="start", source=_PAST_CONSENT, **_RECONSENT),
    dict(trigger="start", source=IN_PROGRESS, dest=None, after=resume_here),
    # 続きから / 最初から after a long pause
    dict(trigger="resume", source=IN_PROGRESS, dest=_S.AWAITING_CONSENT, conditions=[resume_pending, resume_fresh],
         unless=[consented_current], before=[say_restarted, start_over], after=ask_step),
    dict(trigger="resume", source=IN_PROGRESS, dest=_S.AWAITING_ELIGIBILITY,
         conditions=[resume_pending, resume_fresh], before=[say_restarted, start_over], after=begin_eligibility),
    dict(trigger="resume", source=_PAST_CONSENT, dest=_S.AWAITING_CONSENT,
         conditions=[resume_pending, terms_changed], before=consent_again, after=ask_step),
    dict(trigger="resume", source=IN_PROGRESS, dest=None, conditions=[resume_pending], after=resume_here),
    # consent
    dict(trigger="agree", source=_S.AWAITING_CONSENT, dest=_S.AWAITING_FORM, prepare=hold_chosen_slot,
         conditions=[agrees_to_current, hold_ok], before=record_consent, after=form_after_consent),
    *[dict(trigger="agree", source=_S.AWAITING_CONSENT, dest=state, conditions=[agrees_to_current, _returns_to(state)],
           before=record_consent, after=continue_after_consent) for state in _PAST_CONSENT],
    dict(trigger="agree", source=_S.AWAITING_CONSENT, dest=_S.AWAITING_ELIGIBILITY, conditions=[agrees_to_current],
         before=record_consent, after=begin_eligibility),
    dict(trigger="agree", source=_S.AWAITING_CONSENT, dest=None, after=say_terms_changed),
    dict(trigger="disagree", source=_S.AWAITING_CONSENT, dest=_S.IDLE, after=say_declined_terms),
    # eligibility
    dict(trigger="answer", source=_S.AWAITING_ELIGIBILITY, dest=None,
         conditions=[answer_valid, answer_passes, more_questions], after=next_question),
    dict(trigger="answer", source=_S.AWAITING_ELIGIBILITY, dest=_S.AWAITING_CHECKLIST,
         conditions=[answer_valid, answer_passes], after=begin_checklist),
    dict(trigger="answer", source=_S.AWAITING_ELIGIBILITY, dest=_S.IDLE, conditions=[answer_valid],
         before=remember_question, after=say_ineligible),
    # checklist
    dict(trigger="answer", source=_S.AWAITING_CHECKLIST, dest=None, conditions=[answer_valid, answer_is_no],
         after=say_fix),
    dict(trigger="answer", source=_S.AWAITING_CHECKLIST, dest=None, conditions=[answer_valid, more_items],
         after=next_item),
    dict(trigger="answer", source=_S.AWAITING_CHECKLIST, dest=_S.AWAITING_SLOT, conditions=[answer_valid],
         after=show_first_week),
    # slots and the form
    dict(trigger="turn_week", source=_S.AWAITING_SLOT, dest=None, after=turn_week),
    dict(trigger="turn_week", source=_S.AWAITING_FORM, dest=_S.AWAITING_SLOT, conditions=[hold_lapsed],
         before=release_hold, after=turn_week),
    dict(trigger="choose_slot", source=[_S.AWAITING_SLOT, _S.AWAITING_FORM], dest=_S.AWAITING_FORM,
         prepare=try_hold, conditions=[hold_ok], after=send_form_link),
    dict(trigger="choose_slot", source=[_S.AWAITING_SLOT, _S.AWAITING_FORM], dest=_S.AWAITING_SLOT,
         after=say_slot_unavailable),
    # the details form was completed (fired by the form's page, not by chat input)
    dict(trigger="complete_form", source=[_S.AWAITING_SLOT, _S.AWAITING_FORM], dest=_S.IDLE, after=finish_form),
    # 戻る
    dict(trigger="back", source=[_S.AWAITING_ELIGIBILITY, _S.AWAITING_CHECKLIST], dest=None,
         conditions=[not_first], after=back_one),
    dict(trigger="back", source=_S.AWAITING_ELIGIBILITY, dest=_S.AWAITING_CONSENT,
         conditions=[consented_in_flow], after=ask_step),
    dict(trigger="back", source=_S.AWAITING_CHECKLIST, dest=_S.AWAITING_ELIGIBILITY, after=to_last_question),
    dict(trigger="back", source=_S.AWAITING_SLOT, dest=_S.AWAITING_CHECKLIST, after=to_last_item),
    # the hold ran out and the slots are shown again: back from them, as from the slot step
    dict(trigger="back", source=_S.AWAITING_FORM, dest=_S.AWAITING_CHECKLIST, conditions=[shows_slots],
         before=release_hold, after=to_last_item),
    dict(trigger="back", source=_S.AWAITING_FORM, dest=_S.AWAITING_SLOT, before=release_hold, after=ask_step),
    dict(trigger="back", source="*", dest=None, after=say_no_earlier_step),
    # 最初から (from anywhere, idle included)
    dict(trigger="restart", source="*", dest=_S.AWAITING_CONSENT, conditions=[lambda e: not is_blocked(e)],
         unless=[consented_current, at_booking_limit], before=[say_restarted, start_over], after=ask_step),
    dict(trigger="restart", source="*", dest=_S.AWAITING_ELIGIBILITY,
         unless=[is_blocked, at_booking_limit], before=[say_restarted, start_over], after=begin_eligibility),
    dict(trigger="restart", source="*", dest=_S.IDLE, conditions=[is_blocked], before=[say_restarted, start_over],
         after=say_blocked),
    dict(trigger="restart", source="*", dest=_S.IDLE, before=[say_restarted, start_over], after=say_at_booking_limit),
    # 中止
    dict(trigger="stop", source=IN_PROGRESS, dest=_S.IDLE, before=clear_context, after=say_stopped),
    dict(trigger="stop", source=_S.IDLE, dest=None, after=say_nothing_to_stop),
]

def _plain(value):
    """State names as plain strings (the database stores them; transitions would use Enum names)."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value.value if isinstance(value, State) else value


for _t in MACHINE_TRANSITIONS:
    _t["source"] = _plain(_t["source"])
    if _t.get("dest") is not None:
        _t["dest"] = _plain(_t["dest"])

MACHINE = Machine(
    model=None,
    states=[s.value for s in State],
    initial=State.IDLE.value,
    transitions=MACHINE_TRANSITIONS,
    auto_transitions=False,
    send_event=True,
    ignore_invalid_triggers=True,
)

STEP_TRIGGERS = frozenset(MACHINE.events)


def fire(talk: Talk, trigger: str, **kwargs: Any) -> bool:
    """Fire a machine trigger on a talk; False when nothing applied from the current state."""
    event = MACHINE.events.get(trigger)
    if event is None:
        return False
    return bool(event.trigger(talk, **kwargs))
