"""Run one incoming event through the dialog: route it, fire the machine, leave effects."""
from __future__ import annotations

from dialogs.effects import Choice, Say
from dialogs.inputs import Incoming
from dialogs.machine import (CANCEL_ASKED, CONFIRM_LABELS, DELETE_ASKED, MACHINE, MAX_MISSES, State, Talk, ask,
                             choices_for_routing, fire, offers_slots, shown_slot_at, typed_aliases,
                             typed_booking_actions, typed_proposal_answers)
from dialogs.router import Routed, Vocabulary, postback, route


def handle(talk: Talk, inp: Incoming, vocab: Vocabulary) -> Routed:
    """Apply one event to the talk; effects accumulate on `talk.effects`."""
    if inp.kind == "unfollow":
        talk.ports.set_followed(False)
        return Routed("unfollow")
    receipt = talk.ports.receipt()
    if receipt:
        talk.say("receipt", receipt=receipt)

    routed = route(inp, office=talk.office.id, position=talk.position(),
                   choices=choices_for_routing(talk), vocab=vocab, aliases=typed_aliases(talk),
                   booking_actions=typed_booking_actions(talk), proposal_answers=typed_proposal_answers(talk))
    if routed.trigger != "confirm_delete":
        talk.context.pop(DELETE_ASKED, None)      # typed 削除する answers only the message right before it
    if routed.trigger != "confirm_cancel":
        talk.context.pop(CANCEL_ASKED, None)      # typed キャンセルする / はい likewise
    if inp.stale and routed.trigger not in ("follow", "unfollow"):
        routed = Routed("stale", value="button" if inp.kind == "postback" else "message")
    apply(talk, routed)
    return routed


#: the steps before the slots are shown: a date and time typed there is understood, but its step is still ahead
_BEFORE_SLOTS = (State.AWAITING_CONSENT, State.AWAITING_ELIGIBILITY, State.AWAITING_CHECKLIST)


def apply(talk: Talk, routed: Routed) -> None:
    """Fire the routed trigger: a machine step, or one of the words that work at every step."""
    trigger = routed.trigger
    if trigger == "typed" and talk.state in (State.AWAITING_SLOT, State.AWAITING_FORM):  # choose_slot's sources
        typed = talk.ports.read_slot(routed.value or "")
        if typed.declined:
            trigger = "declined_slot"                 # 12/7以外, 12/7 14時は無理: never a choice of it
        elif typed.start:
            trigger, routed = "choose_slot", Routed("choose_slot", value=typed.start)
        elif typed.time and offers_slots(talk) and (start := shown_slot_at(talk, typed.time)):
            trigger, routed = "choose_slot", Routed("choose_slot", value=start)   # 14時: the list's one 14:00
        elif typed.closed_day:                        # 12/30 alone: said why there is no slot that day
            routed = Routed(trigger, routed.value, routed.method, {**routed.extra, "closed_day": typed.closed_day})
    elif trigger == "typed" and talk.state in _BEFORE_SLOTS and talk.ports.read_slot(routed.value or "").start:
        trigger, routed = "stale", Routed("stale", value="early_slot")    # a date and time ahead of its step
    if trigger in MACHINE.events:
        kwargs = {"value": routed.value, "method": routed.method, **routed.extra}
        if fire(talk, trigger, **kwargs):
            talk.misses = 0
            return
        # A valid word with nothing to do here (e.g. an answer at the wrong step): re-ask. A button that does
        # nothing here (tapped twice, or forged) is an old button, not an answer the bot could not read; nor is
        # 同意する typed again past consent (said what it is for, and not counted as a miss).
        if routed.method == "button":
            trigger = "stale"
        elif trigger == "agree" and talk.state != State.IDLE:
            trigger, routed = "stale", Routed("stale", value="consent_word")
        else:
            trigger = "miss"
    handler = GLOBAL.get(trigger, _miss)
    handler(talk, routed)


def _follow(talk: Talk, routed: Routed) -> None:
    """Added or unblocked: the greeting, which says when a booking is part way through (予約 goes on). Nothing
    reached a user who had blocked the account (a decision, another slot proposed, a reminder): one who unblocks
    with a booking whose slot is still ahead is told so, and shown their bookings as 予約確認 shows them."""
    talk.ports.set_followed(True)
    in_progress = talk.state != State.IDLE
    bookings = talk.ports.bookings() if routed.value == "unblocked" else []
    missed = any(b["at"] > talk.now for b in bookings)
    talk.say("greeting", in_progress=in_progress, unblocked=routed.value == "unblocked", missed=missed)
    if missed:
        talk.say("bookings", bookings=bookings, in_progress=False)   # the greeting says what is in progress


def _help(talk: Talk, routed: Routed) -> None:
    question = talk.office.eligibility[talk.index] if talk.state == State.AWAITING_ELIGIBILITY else None
    talk.say("help", state=_step_shown(talk), resuming=bool(talk.context.get("resume_offered")),
             answers=question.choices if question else ("yes", "no"))
    if talk.state != State.IDLE:
        ask(talk, again=True)


def _show_bookings(talk: Talk, routed: Routed) -> None:
    talk.say("bookings", bookings=talk.ports.bookings(), in_progress=talk.state != State.IDLE)


def _step_shown(talk: Talk) -> str:
    """The step as the user sees it: waiting for the form, but its hold ran out, the slots are shown again."""
    return State.AWAITING_SLOT.value if talk.state == State.AWAITING_FORM and offers_slots(talk) else talk.state


def _stale(talk: Talk, routed: Routed) -> None:
    """An out-of-date button, a message that arrived after a newer one (`late`), 同意する typed where consent is
    not asked (`consent_word`), or a date and time typed before the slots are shown (`early_slot`): nothing is
    applied, and none of them is a miss."""
    late = {"message": {"late": True}, "consent_word": {"consent_word": True},
            "early_slot": {"early_slot": True}}.get(routed.value or "", {})
    if talk.state == State.IDLE:
        talk.say("stale_idle", **late)
    else:
        talk.say("stale_button", state=_step_shown(talk), **late)
        ask(talk, again=True)


def _unsupported(talk: Talk, routed: Routed) -> None:
    talk.say("unsupported", kind=routed.value, in_progress=talk.state != State.IDLE, state=_step_shown(talk))
    if talk.state != State.IDLE:
        ask(talk, again=True)


def _miss(talk: Talk, routed: Routed) -> None:
    """Text that answers nothing: said so, with the chat word it misspells if any (`near`), and the step again."""
    near = {"near": routed.extra["near"]} if routed.extra.get("near") else {}
    if routed.extra.get("closed_day"):
        # A closed day typed alone was read: no miss, its closure named, and the slots again.
        talk.say("not_understood", state=_step_shown(talk), closed_day=routed.extra["closed_day"], **near)
        ask(talk, again=True)
        return
    talk.misses += 1
    if talk.state == State.IDLE:
        talk.say("idle_hint", misses=talk.misses, **near)
        return
    if talk.misses >= MAX_MISSES:
        talk.say("miss_contact", state=talk.state, **near)
    else:
        talk.say("not_understood", state=_step_shown(talk), **near)
    ask(talk, again=True)


def _declined_slot(talk: Talk, routed: Routed) -> None:
    """A date or time typed with words that turn it down: understood, so no miss, and nothing is chosen or
    released; the step is asked again (the slots, or the held slot's form link)."""
    talk.say("slot_declined", state=_step_shown(talk))
    ask(talk, again=True)


def _switch_language(talk: Talk, routed: Routed) -> None:
    talk.language = routed.value or "ja"
    talk.ports.set_language(talk.language)
    talk.say("language_switched", language=talk.language)
    if talk.state != State.IDLE:
        ask(talk, again=True)


def _deletion_mark(talk: Talk, booking: dict | None) -> str:
    """What the deletion question said: the open booking (its reference and status) and whether a booking was
    in progress in the chat ('' for neither)."""
    said = f"{booking['reference']}.{booking['status']}" if booking else ""
    return f"{said}+" if talk.state != State.IDLE else said


def _delete_data(talk: Talk, routed: Routed, changed: bool = False) -> None:
    booking = talk.ports.open_booking()
    if booking is not None and booking["action"] == "call":
        _deletion_blocked(talk, [booking])
        return
    # 削除する carries what the question said about the open booking and the booking in progress: tapped after
    # that changed (an old question's button, a booking made or confirmed since), it asks again instead of
    # acting on the new facts.
    said = _deletion_mark(talk, booking)
    talk.context[DELETE_ASKED] = said
    mark = {"b": said} if said else {}
    yes = postback("confirm_delete", talk.position(), talk.office.id, "yes", **mark)
    no = postback("confirm_delete", talk.position(), talk.office.id, "no")
    talk.say("delete_confirm", (Choice(label_key="delete_yes", data=yes), Choice(label_key="delete_no", data=no)),
             open_booking=booking, changed=changed, in_progress=talk.state != State.IDLE)


def _deletion_blocked(talk: Talk, kept: list) -> None:
    """A booking ahead may not be closed in chat: its details are what staff run the session with, so it is
    cancelled by the office's route first; nothing is deleted."""
    talk.say("delete_blocked", kept=kept)
    if talk.state != State.IDLE:
        ask(talk, again=True)


def _confirm_delete(talk: Talk, routed: Routed) -> None:
    asked = talk.context.pop(DELETE_ASKED, "")
    if routed.value != "yes":
        talk.say("delete_kept")
        if talk.state != State.IDLE:
            ask(talk, again=True)
        return
    said = routed.extra.get("b", "") if routed.method == "button" else asked
    if said != _deletion_mark(talk, talk.ports.open_booking()):
        _delete_data(talk, routed, changed=True)
        return
    result = talk.ports.delete_personal_data()
    if result["outcome"] == "call":
        _deletion_blocked(talk, result["kept"])
        return
    talk.context.clear()
    talk.state = State.IDLE.value
    talk.say("deleted", result=result)


def _withdraw(talk: Talk, routed: Routed) -> None:
    """取り下げる / キャンセルする on a booking: first ask, saying what would be done and that it cannot be undone
    (only the confirmation acts); what may not be done in chat, or not any more, is answered at once."""
    offered = "cancel" if routed.trigger == "cancel_booking" else "withdraw"
    result = talk.ports.withdraw(routed.value or "", offered, confirmed=False)
    if result["outcome"] != "ask":
        _say_withdrawn(talk, routed, result)
        return
    asked = {"r": result["reference"], "k": offered, "s": result["status"], "d": result["action"]}
    talk.context[CANCEL_ASKED] = asked
    yes = postback("confirm_cancel", talk.position(), talk.office.id, "yes", **asked)
    no = postback("confirm_cancel", talk.position(), talk.office.id, "no", r=asked["r"], d=asked["d"])
    talk.say("withdraw_confirm", (Choice(label_key=CONFIRM_LABELS[asked["d"]], data=yes),
                                  Choice(label_key="keep", data=no)), booking=result)


def _confirm_withdraw(talk: Talk, routed: Routed) -> None:
    """The answer to the question `_withdraw` asked: the button carries what it asked about; typed, the
    question right before it."""
    asked = talk.context.pop(CANCEL_ASKED, None) or {}
    fields = routed.extra if routed.method == "button" else asked
    if routed.value != "yes":
        talk.say("withdraw_kept", reference=fields.get("r", ""), action=fields.get("d", "withdraw"))
        if talk.state != State.IDLE:
            ask(talk, again=True)
        return
    result = talk.ports.withdraw(fields.get("r", ""), fields.get("k", "withdraw"), confirmed=True,
                                 asked_status=fields.get("s", ""))
    _say_withdrawn(talk, routed, result)


def _say_withdrawn(talk: Talk, routed: Routed, result: dict) -> None:
    """What was done, or why not; a request confirmed since its button was offered is shown as it is now."""
    talk.say("withdraw_result", result=result)
    if result["outcome"] == "changed":
        _show_bookings(talk, routed)


def _answer_proposal(talk: Talk, routed: Routed) -> None:
    """The button names its booking; typed, the answer is for the one proposal open (several: the list)."""
    reference = routed.extra.get("r", "")
    if not reference and routed.method == "text":
        proposals = [b for b in talk.ports.bookings() if b["action"] == "proposal"]
        if len(proposals) > 1:
            _show_bookings(talk, routed)
            return
        reference = proposals[0]["reference"] if proposals else ""
    result = talk.ports.answer_proposal(reference, routed.value == "accept")
    talk.say("proposal_result", result=result)


def _ignore(talk: Talk, routed: Routed) -> None:
    return None


GLOBAL = {
    "follow": _follow,
    "help": _help,
    "show_bookings": _show_bookings,
    "stale": _stale,
    "unsupported": _unsupported,
    "miss": _miss,
    "typed": _miss,
    "declined_slot": _declined_slot,
    "switch_language": _switch_language,
    "delete_data": _delete_data,
    "confirm_delete": _confirm_delete,
    "withdraw": _withdraw,
    "cancel_booking": _withdraw,
    "confirm_cancel": _confirm_withdraw,
    "answer_proposal": _answer_proposal,
    "ignore": _ignore,
}

__all__ = ["handle", "apply", "Talk", "Say"]
