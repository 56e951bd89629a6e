"""Capacity is the database's: people racing for the last seats of a slot, each in its own session.

Holds are bypassed on purpose (they would serialise the race in the dialog); every racer goes straight to
`requests.create_request` in its own thread, transaction and connection, released at the same moment.
Runs on SQLite and, with TEST_DATABASE_URL, on PostgreSQL.
"""
from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime

import pytest
from sqlalchemy import func, select

from bot.clock import TOKYO
from bot.models import Booking, Conversation, SlotClaim, StaffNotice
from bot.services import requests
from tests.formflow import valid_answers

SLOT = datetime(2026, 12, 7, 14, 0, tzinfo=TOKYO)


def _conversations(rt, office_id: str, n: int) -> list[int]:
    with rt.db.transaction() as s:
        rows = [Conversation(office_id=office_id, line_user_id="U" + uuid.uuid4().hex, state="awaiting_form",
                             context={}, created_at=rt.clock.now()) for _ in range(n)]
        s.add_all(rows)
        s.flush()
        return [row.id for row in rows]


def race(rt, office, racers: int) -> tuple[list[str], float]:
    """`racers` threads each try to request SLOT at the same moment; their outcomes and the wall time."""
    ids = _conversations(rt, office.id, racers)
    start_line = threading.Barrier(racers)
    now = rt.clock.now()

    def one(index_and_id: tuple[int, int]) -> str:
        index, conv_id = index_and_id
        values = {**valid_answers(office), "seeker_number": f"{10000 + index}-{index}"}
        start_line.wait()
        with rt.db.transaction() as s:
            conv = s.get(Conversation, conv_id)
            return requests.create_request(s, rt, office, conv, SLOT, values, now).status

    began = time.perf_counter()
    with ThreadPoolExecutor(max_workers=racers) as pool:
        outcomes = list(pool.map(one, enumerate(ids)))
    return outcomes, time.perf_counter() - began


def _counts(rt) -> tuple[int, int, int]:
    with rt.db.reading() as s:
        return (s.scalar(select(func.count()).select_from(Booking)),
                s.scalar(select(func.count()).select_from(SlotClaim)),
                s.scalar(select(func.count()).select_from(StaffNotice).where(StaffNotice.kind == "new_request")))


@pytest.mark.parametrize("capacity", [1, 3])
def test_racers_for_one_slot_get_exactly_its_seats(rt, capacity):
    office = replace(rt.offices["sakata"], schedule=replace(rt.offices["sakata"].schedule, capacity=capacity))
    outcomes, seconds = race(rt, office, racers=24)
    print(f"\n{rt.db.engine.dialect.name}: 24 racers, capacity {capacity}: {seconds * 1000:.0f} ms")
    assert outcomes.count("created") == capacity
    assert outcomes.count("full") == 24 - capacity  # the others get an answer, never an error
    assert _counts(rt) == (capacity, capacity, capacity)
    with rt.db.reading() as s:
        seats = sorted(s.scalars(select(SlotClaim.seat)))
        statuses = set(s.scalars(select(Booking.status)))
    assert seats == list(range(capacity)) and statuses == {"requested"}


@pytest.mark.heavy
def test_a_hundred_racers_for_one_slot(rt):
    outcomes, seconds = race(rt, rt.offices["otaru"], racers=100)
    print(f"\n{rt.db.engine.dialect.name}: 100 racers, capacity 1: {seconds * 1000:.0f} ms")
    assert outcomes.count("created") == 1 and outcomes.count("full") == 99
    assert _counts(rt) == (1, 1, 1)
