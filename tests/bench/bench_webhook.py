"""Webhook figures for the servers side by side (the floors and madoguchi): throughput, acknowledgement latency,
reply lag, RSS.

Saturation runs in rounds, the servers taking turns (`compare`): a machine whose speed drifts during the run
(other work on a shared box) then slows every server's round alike, and each round gives a ratio of two servers
measured a few seconds apart. The table shows the median of those ratios and their range.
"""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

from tests.bench.fake_server import FakeProcess
from tests.bench.load import Population, Shot, Target, closed_loop, open_loop, percentile
from tests.bench.servers import OFFICES, CpuMeter, Gunicorn, channel_secret, postgres_backends


@dataclass(frozen=True)
class Plan:
    """How long each phase runs; `quick` for the short run."""

    warmup_seconds: float
    round_seconds: float   # one server's turn at saturation
    rounds: int            # turns per server
    open_seconds: float
    rates: tuple[int, ...] = (50, 100, 200)
    saturation_clients: int = 8
    users: int = 400  # in play at once: each sends under one event a second even at 200/s (flood control)

    @classmethod
    def quick(cls) -> "Plan":
        return cls(warmup_seconds=1, round_seconds=1, rounds=3, open_seconds=3)

    @classmethod
    def full(cls) -> "Plan":
        return cls(warmup_seconds=3, round_seconds=4, rounds=5, open_seconds=20)

    @classmethod
    def smoke(cls) -> "Plan":
        return cls(warmup_seconds=0.2, round_seconds=0.25, rounds=2, open_seconds=0.5, rates=(10,),
                   saturation_clients=2, users=10)


def ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


def _wait_for_replies(fake: FakeProcess, since: int, expected: int, patience: float = 10.0) -> dict[str, float]:
    """Replies accepted by the fake after index `since`, once they stop coming (or all expected arrived)."""
    deadline = time.monotonic() + patience
    last_count, stable_since = -1, time.monotonic()
    while True:
        count, arrived = fake.replies(since)
        if len(arrived) >= expected:
            return arrived
        if count != last_count:
            last_count, stable_since = count, time.monotonic()
        elif time.monotonic() - stable_since > 1.5 or time.monotonic() > deadline:
            return arrived
        time.sleep(0.2)


def _summarise(shots: list[Shot], arrived: dict[str, float]) -> dict:
    ok = [s for s in shots if s.status == 200]
    latencies = [s.latency for s in ok]
    lags = [arrived[s.reply_token] - s.sent_wall for s in ok if s.reply_token and s.reply_token in arrived]
    wanted = sum(1 for s in ok if s.reply_token)
    return {
        "events": len(shots),
        "errors": len(shots) - len(ok),
        "ack_ms": {"p50": ms(percentile(latencies, 0.50)), "p95": ms(percentile(latencies, 0.95)),
                   "p99": ms(percentile(latencies, 0.99)), "max": ms(max(latencies, default=None))},
        "reply_lag_ms": {"p50": ms(percentile(lags, 0.50)), "p99": ms(percentile(lags, 0.99)),
                         "max": ms(max(lags, default=None))},
        "replies_missing": wanted - len(lags),
    }


class Subject:
    """One running server under measurement, with its own users walking their dialogs across every phase.

    `database`: a PostgreSQL database name, whose server processes' CPU is counted beside the web workers'.
    """

    def __init__(self, key: str, server: Gunicorn, fake: FakeProcess, plan: Plan, database: str | None = None,
                 seed: int = 10):
        self.key, self.server, self.fake, self.plan = key, server, fake, plan
        self.target = Target(server.url)
        self.population = Population(OFFICES, channel_secret, plan.users, seed)
        self.web_cpu = CpuMeter(server.worker_pids)
        self.db_cpu = CpuMeter(lambda: postgres_backends(database)) if database else None
        self.rounds: list[float] = []  # events/s, one per turn
        self.ok = self.errors = 0
        self.seconds = self.web_cpu_s = self.db_cpu_s = 0.0

    def warm(self) -> None:
        """Caches and pools warm, before anything counts."""
        closed_loop(self.target, self.population, self.plan.saturation_clients, self.plan.warmup_seconds)

    def saturate(self) -> None:
        """One turn: `saturation_clients` back to back; its replies and its worker's pushes are all in before
        the next server's turn."""
        self.fake.reset()
        for meter in filter(None, (self.web_cpu, self.db_cpu)):
            meter.start()
        shots, seconds = closed_loop(self.target, self.population, self.plan.saturation_clients,
                                     self.plan.round_seconds)
        self.web_cpu_s += self.web_cpu.stop()
        if self.db_cpu:
            self.db_cpu_s += self.db_cpu.stop()
        ok = sum(1 for s in shots if s.status == 200)
        self.rounds.append(round(ok / seconds, 1))
        self.ok, self.errors, self.seconds = self.ok + ok, self.errors + len(shots) - ok, self.seconds + seconds
        _wait_for_replies(self.fake, 0, ok)
        self.fake.wait_until_quiet()

    def loads(self) -> dict:
        """Open loop at each fixed rate: acknowledgement latency and reply lag."""
        loads = {}
        for rate in self.plan.rates:
            since = self.fake.reply_count()
            shots = open_loop(self.target, self.population, rate, self.plan.open_seconds)
            expected = sum(1 for s in shots if s.status == 200 and s.reply_token)
            arrived = _wait_for_replies(self.fake, since, expected)
            offered_for = max(s.acked for s in shots) - min(s.due for s in shots) if shots else 0
            loads[str(rate)] = {**_summarise(shots, arrived),
                                "achieved_per_s": round(len(shots) / offered_for, 1) if offered_for else None}
        return loads

    def saturated(self) -> dict:
        ok = max(self.ok, 1)
        return {"clients": self.plan.saturation_clients, "seconds": round(self.seconds, 1),
                "events_per_s": round(self.ok / self.seconds, 1) if self.seconds else None,
                "rounds": self.rounds, "errors": self.errors,
                "cpu_ms_per_event": {"web": round(self.web_cpu_s * 1000 / ok, 2),
                                     "database": round(self.db_cpu_s * 1000 / ok, 2) if self.db_cpu else None}}


def ratios(subject: Subject, reference: Subject) -> dict:
    """`subject`'s throughput over `reference`'s, round by round (each pair measured seconds apart)."""
    each = [round(a / b, 3) for a, b in zip(subject.rounds, reference.rounds) if b]
    if not each:
        return {"median": None, "rounds": []}
    return {"median": round(statistics.median(each), 3), "lowest": min(each), "highest": max(each), "rounds": each}


def compare(subjects: list[Subject], references: tuple[str, ...], log=lambda text: None) -> dict:
    """Every phase for running servers: all warm, saturation in turns (the order rotating each round), then
    each server's fixed loads. `references`: the keys each server's throughput is compared with (the floor
    first). Returns each server's figures by key, with `ratios` to its references."""
    for subject in subjects:
        subject.warm()
    plan = subjects[0].plan
    log(f"  saturation: {plan.rounds} rounds of {plan.round_seconds:g} s, the servers taking turns")
    for turn in range(plan.rounds):
        shift = turn % len(subjects)
        for subject in subjects[shift:] + subjects[:shift]:
            subject.saturate()
    out: dict = {}
    by_key = {subject.key: subject for subject in subjects}
    for subject in subjects:
        log(f"  fixed loads: {subject.key}")
        subject.fake.reset()
        result = {"saturated": subject.saturated(), "loads": subject.loads(),
                  "rss_mb_per_worker": [round(r, 1) for r in subject.server.worker_rss_mb()],
                  "users_started": subject.population.started}
        result["ratios"] = {key: ratios(subject, by_key[key]) for key in references
                            if key in by_key and key != subject.key}
        out[subject.key] = result
    return out
