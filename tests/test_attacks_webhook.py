"""Attacks on POST /callback/<office>: forged, tampered and misdirected bodies, odd shapes, replays and floods.

interface.md fixes the order of the checks and that nothing is written on a refusal: unknown or disabled
office 404, body over 1 MiB 413, missing or invalid signature 400, not a webhook body 400 (a signed body
not sent as JSON included). Here every refusal is checked against the row count of every table and the
calls made to LINE, not only the status.

A flood from one user is rate-limited (bot/ratelimit.py): it is answered kindly once per window, the dialog
does not see the refused events, and other users are served as usual, whichever process takes the events.
"""
from __future__ import annotations

import json
import statistics
import time

import pytest
from sqlalchemy import func, select

from bot import ratelimit
from bot.models import Conversation, ProcessedEvent
from bot.schema import Base
from tests.lineuser import LineUser, sign
from tests.sqlwatch import watch

TRANSACTION_CONTROL = {"BEGIN", "COMMIT", "ROLLBACK"}

MIB = 1024 * 1024
FLOOD_WORDS = "しばらくお返事を控えています"


def footprint(rt) -> dict[str, int]:
    """Rows in every table (a refused request must not change one)."""
    with rt.db.reading() as s:
        return {name: s.scalar(select(func.count()).select_from(table)) for name, table in Base.metadata.tables.items()}


def post(client, office: str, raw: bytes, signature: str | None, content_type: str | None = "application/json"):
    headers = {}
    if signature is not None:
        headers["X-Line-Signature"] = signature
    if content_type is not None:
        headers["Content-Type"] = content_type
    return client.post(f"/callback/{office}", data=raw, headers=headers)


@pytest.fixture
def attacker(rt, client, sakata_user, fake_line):
    """What an attacker tries, with the footprint before and a check that nothing changed after."""
    before = footprint(rt)

    class Attack:
        user = sakata_user
        secret = rt.config.channel_secret("sakata")

        @staticmethod
        def body(text_value: str = "予約") -> bytes:
            return sakata_user.body(sakata_user.text_event(text_value))

        @staticmethod
        def left_no_trace() -> None:
            assert footprint(rt) == before
            assert fake_line.calls == []

    return Attack


# -- signatures ---------------------------------------------------------------------------------------

SIGNATURES = {
    "missing": lambda raw, a, rt: None,
    "empty": lambda raw, a, rt: "",
    "not base64": lambda raw, a, rt: "!!!not-base64!!!",
    "base64 of nothing": lambda raw, a, rt: "AAAA",
    "other office": lambda raw, a, rt: sign(raw, rt.config.channel_secret("otaru")),
    "other body": lambda raw, a, rt: sign(a.body("別の本文"), a.secret),
    "secret upper-cased": lambda raw, a, rt: sign(raw, a.secret.upper()),
    "truncated": lambda raw, a, rt: sign(raw, a.secret)[:-4],
    "with spaces": lambda raw, a, rt: " " + sign(raw, a.secret) + " ",
    "hex digest": lambda raw, a, rt: __import__("hmac").new(a.secret.encode(), raw, "sha256").hexdigest(),
}


def test_a_bad_signature_is_400_and_leaves_no_trace(rt, client, attacker):
    raw = attacker.body()
    answered = {kind: post(client, "sakata", raw, forge(raw, attacker, rt)).status_code
                for kind, forge in SIGNATURES.items()}
    assert answered == {kind: 400 for kind in SIGNATURES}
    attacker.left_no_trace()


def test_a_body_changed_after_signing_is_400(rt, client, attacker):
    raw = attacker.body("予約確認")
    signature = sign(raw, attacker.secret)
    tampered = raw.replace("予約確認".encode(), "データ削除".encode())
    assert post(client, "sakata", tampered, signature).status_code == 400
    attacker.left_no_trace()


NOT_OURS = ["nagoya", "SAKATA", "sakata ", "..%2Fsakata", "sakata%00", "otaru%2F..%2Fsakata", "0" * 300]


def test_an_office_that_is_not_ours_is_404(rt, client, attacker):
    raw = attacker.body()
    answered = {office: post(client, office, raw, sign(raw, attacker.secret)).status_code for office in NOT_OURS}
    assert answered == {office: 404 for office in NOT_OURS}
    attacker.left_no_trace()


# -- sizes and shapes ----------------------------------------------------------------------------------

@pytest.mark.parametrize("signed", [True, False])
def test_a_body_over_one_mib_is_413_whatever_its_signature(rt, client, attacker, signed):
    event = attacker.user.text_event("予約")
    event["padding"] = "x" * MIB
    raw = attacker.user.body(event)
    assert post(client, "sakata", raw, sign(raw, attacker.secret) if signed else "forged").status_code == 413
    attacker.left_no_trace()


def _nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


@pytest.mark.parametrize("depth", [5_000, 300_000])
def test_deep_nesting_inside_a_signed_event_is_400(rt, client, attacker, depth):
    """A signed body nesting deeper than any parser should go where LINE puts a string: 400, never a 500."""
    raw = attacker.body("予約").replace('"text":"予約"'.encode(), b'"text":' + _nested(depth))
    assert len(raw) < MIB
    assert post(client, "sakata", raw, sign(raw, attacker.secret)).status_code == 400
    attacker.left_no_trace()


def test_a_malformed_event_in_a_webhook_is_acknowledged_as_unknown_and_does_nothing(rt, client, attacker, fake_line):
    """The SDK reads an event it cannot validate as an unknown event (as it does a type LINE adds later):
    200, only its dedupe mark is kept, and nobody is talked to."""
    raw = attacker.body("予約").replace('"text":"予約"'.encode(), b'"text":' + _nested(200))
    before = footprint(rt)
    assert post(client, "sakata", raw, sign(raw, attacker.secret)).status_code == 200
    after = footprint(rt)
    assert {k: after[k] - before[k] for k in after if after[k] != before[k]} == {"processed_events": 1}
    assert fake_line.calls == []

def test_deep_nesting_in_an_unknown_field_is_ignored_or_refused_never_a_500(rt, client, attacker):
    event = attacker.user.text_event("予約")
    raw = json.dumps({"destination": attacker.user.destination, "events": [event]}).encode()
    raw = raw[:-2] + b',"extra":' + _nested(100_000) + b"]}"
    assert post(client, "sakata", raw, sign(raw, attacker.secret)).status_code == 400
    attacker.left_no_trace()


NOT_JSON = [None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
            "application/xml", "application/jsonp"]


def test_a_signed_body_not_sent_as_json_is_400(rt, client, attacker):
    raw = attacker.body()
    answered = {kind: post(client, "sakata", raw, sign(raw, attacker.secret), content_type=kind).status_code
                for kind in NOT_JSON}
    assert answered == {kind: 400 for kind in NOT_JSON}
    attacker.left_no_trace()


def test_json_with_a_charset_is_lines_own_shape_and_accepted(rt, client, attacker, fake_line):
    raw = attacker.body()
    response = post(client, "sakata", raw, sign(raw, attacker.secret), content_type="application/json; charset=utf-8")
    assert response.status_code == 200 and len(fake_line.deliveries("reply")) == 1


def test_other_methods_are_refused(client, attacker):
    assert {m: getattr(client, m)("/callback/sakata").status_code for m in ("get", "put", "delete", "patch")} \
        == {m: 405 for m in ("get", "put", "delete", "patch")}
    attacker.left_no_trace()


# -- replays -------------------------------------------------------------------------------------------

def test_an_identical_body_again_is_200_with_no_effect(rt, client, sakata_user, fake_line):
    raw = sakata_user.body([sakata_user.text_event("予約"), sakata_user.text_event("同意する")])
    signature = sign(raw, sakata_user.channel_secret)
    assert post(client, "sakata", raw, signature).status_code == 200
    after_first, deliveries = footprint(rt), fake_line.deliveries()
    with rt.db.reading() as s:
        state = s.scalar(select(Conversation.state))
    for _ in range(3):
        rt.clock.advance(seconds=30)
        assert post(client, "sakata", raw, signature).status_code == 200
    assert footprint(rt) == after_first
    assert fake_line.deliveries() == deliveries
    with rt.db.reading() as s:
        assert s.scalar(select(Conversation.state)) == state


def test_a_body_replayed_after_its_dedupe_mark_is_gone_changes_nothing(rt, client, sakata_user, fake_line):
    """A signed body captured once and sent again after the marks are purged (`dedupe_days`) is still not
    handled twice: an event older than the marks are kept cannot be told from a replay, so it is ignored."""
    from bot.staff import jobs

    raw = sakata_user.body(sakata_user.text_event("予約"))
    signature = sign(raw, sakata_user.channel_secret)
    assert post(client, "sakata", raw, signature).status_code == 200
    rt.clock.advance(days=8)
    with rt.db.transaction() as s:
        assert jobs.purge_expired_data(s, rt, rt.offices["sakata"], rt.clock.now())["dedupe_purged"] == 1
    with rt.db.reading() as s:
        conversation = s.scalar(select(Conversation.context))
    after_first, deliveries = footprint(rt), fake_line.deliveries()
    assert post(client, "sakata", raw, signature).status_code == 200
    assert footprint(rt) == after_first, "the old event was handled again"
    assert fake_line.deliveries() == deliveries
    with rt.db.reading() as s:
        assert s.scalar(select(Conversation.context)) == conversation



def test_an_event_stamped_ahead_of_our_clock_keeps_its_mark_until_it_counts_as_too_old(rt, client, sakata_user,
                                                                                       fake_line):
    """LINE's clock a few minutes ahead of ours: the event's mark must not be purged (7 days after it came) before
    the event itself counts as too old to handle (7 days after it happened), or a replay in between is handled
    again."""
    from datetime import timedelta

    from bot.staff import jobs

    raw = sakata_user.body(sakata_user.text_event("予約", timestamp=rt.clock.now() + timedelta(minutes=3)))
    signature = sign(raw, sakata_user.channel_secret)
    assert post(client, "sakata", raw, signature).status_code == 200
    after_first = footprint(rt)
    for later, marks in (({"days": 7, "minutes": 1}, 1), ({"minutes": 5}, 0)):   # between the two, past both
        rt.clock.advance(**later)
        with rt.db.transaction() as s:
            jobs.purge_expired_data(s, rt, rt.offices["sakata"], rt.clock.now())
        assert post(client, "sakata", raw, signature).status_code == 200
        assert footprint(rt) == {**after_first, "processed_events": marks}, later

# -- floods --------------------------------------------------------------------------------------------

def _replies_to(fake, user) -> list[str]:
    return fake.texts_to(user.user_id)


def test_a_flooding_user_is_told_once_and_the_others_are_served(rt, user_factory, fake_line):
    flooder, neighbour = user_factory("sakata"), user_factory("sakata")
    flooder.says("予約")
    burst = ratelimit.POLICY.burst
    statuses, neighbour_answers = [], 0
    for n in range(burst + 60):
        statuses.append(flooder.says(f"連投{n}").status_code)
        if n % 10 == 0:
            before = len(_replies_to(fake_line, neighbour))
            statuses.append(neighbour.says("予約確認").status_code)
            neighbour_answers += len(_replies_to(fake_line, neighbour)) > before
    assert set(statuses) == {200}
    texts = _replies_to(fake_line, flooder)
    assert sum(FLOOD_WORDS in t for t in texts) == 1, "the flood notice goes once per window"
    assert all(FLOOD_WORDS not in t for t in _replies_to(fake_line, neighbour))
    assert neighbour_answers == len(range(0, burst + 60, 10)), "a neighbour missed an answer during the flood"
    with rt.db.reading() as s:
        handled = s.scalar(select(func.count()).select_from(ProcessedEvent))
    assert handled == 1 + burst + 60 + len(range(0, burst + 60, 10)), "every event is acknowledged and deduplicated"


def test_refused_events_leave_the_conversation_where_it_was(rt, user_factory, fake_line):
    user = user_factory("sakata")
    for _ in range(ratelimit.POLICY.burst):
        user.says("ヘルプ")
    with rt.db.reading() as s:
        before = s.execute(select(Conversation.state, Conversation.context, Conversation.misses)).one()
    user.says("予約")            # refused: this would start a booking
    user.says("同意する")
    with rt.db.reading() as s:
        assert s.execute(select(Conversation.state, Conversation.context, Conversation.misses)).one() == before
    rt.clock.advance(minutes=2)  # the bucket refills: served again, with no second notice needed
    user.says("予約")
    with rt.db.reading() as s:
        assert s.scalar(select(Conversation.state)) == "awaiting_consent"


def test_the_notice_comes_again_only_after_its_window(rt, user_factory, fake_line):
    user = user_factory("otaru")
    for _ in range(ratelimit.POLICY.burst + 5):
        user.says("あ")
    rt.clock.advance(seconds=30)      # 30 tokens back, spent at once; still inside the notice window
    for _ in range(40):
        user.says("あ")
    assert sum(FLOOD_WORDS in t for t in fake_line.texts_to(user.user_id)) == 1
    rt.clock.advance(seconds=31)      # the window is over: the next refusal is told once more
    for _ in range(40):
        user.says("あ")
    assert sum(FLOOD_WORDS in t for t in fake_line.texts_to(user.user_id)) == 2


def test_a_flood_in_one_body_gets_one_notice(rt, sakata_user, fake_line):
    events = [sakata_user.text_event(f"連投{n}") for n in range(ratelimit.POLICY.burst + 40)]
    assert sakata_user.send(*events).status_code == 200
    texts = fake_line.texts_to(sakata_user.user_id)
    assert sum(FLOOD_WORDS in t for t in texts) == 1
    assert len(fake_line.deliveries("reply")) == ratelimit.POLICY.burst + 1


def test_the_limit_holds_across_processes(make_app, fake_line):
    """Two apps on one database (two gunicorn workers): the bucket is the conversation row's, not a process's."""
    first, second = make_app(), make_app()
    rt = first.extensions["madoguchi"]
    second.extensions["madoguchi"].clock.freeze(rt.clock.now())
    users = [LineUser(app.test_client(), "sakata", channel_secret=rt.config.channel_secret("sakata"),
                      user_id="U" + "f" * 32, fake=fake_line, clock=rt.clock) for app in (first, second)]
    for n in range(ratelimit.POLICY.burst + 20):
        users[n % 2].says(f"連投{n}")
    assert sum(FLOOD_WORDS in t for t in fake_line.texts_to(users[0].user_id)) == 1
    assert len(fake_line.deliveries("reply")) == ratelimit.POLICY.burst + 1


def test_a_refused_event_costs_a_few_statements_and_no_dialog(rt, user_factory, fake_line):
    """Why a flood does not slow the others: a refused event is one short transaction (figures printed)."""
    flooder, neighbour = user_factory("sakata"), user_factory("sakata")
    for _ in range(ratelimit.POLICY.burst + 1):      # the bucket is empty and the notice sent
        flooder.says("連投")
    with watch(rt.db.engine) as seen:
        started = time.perf_counter()
        flooder.says("連投")
        refused_ms = (time.perf_counter() - started) * 1000
        refused = [s.split()[0].upper() for s in seen if s.split()[0].upper() not in TRANSACTION_CONTROL]
        seen.clear()
        timings = []
        for _ in range(5):
            started = time.perf_counter()
            neighbour.says("ヘルプ")
            timings.append((time.perf_counter() - started) * 1000)
        statements = [s for s in seen if s.split()[0].upper() not in TRANSACTION_CONTROL]
    refused_statements = len(refused)
    print(f"\nrefused event: {refused_statements} statements, {refused_ms:.1f} ms; "
          f"a neighbour's event: {len(statements) / 5:.0f} statements, {statistics.median(timings):.1f} ms median")
    assert refused_statements <= 3  # dedupe claim, the conversation row, its update; nothing of the dialog's
    assert not any(FLOOD_WORDS in t for t in fake_line.texts_to(neighbour.user_id))


def test_follow_and_unfollow_are_never_limited(rt, sakata_user, fake_line):
    for _ in range(ratelimit.POLICY.burst + 1):
        sakata_user.says("あ")
    sakata_user.unfollows()
    with rt.db.reading() as s:
        assert s.scalar(select(Conversation.followed)) is False
    greeted = len(fake_line.texts_to(sakata_user.user_id))
    sakata_user.follows(unblocked=True)
    with rt.db.reading() as s:
        assert s.scalar(select(Conversation.followed)) is True
    assert len(fake_line.texts_to(sakata_user.user_id)) > greeted, "the greeting of a follow is never limited"
