"""Webhook figures for one server (the floor or madoguchi): throughput, acknowledgement latency, reply lag, RSS."""
from __future__ import annotations

import time
from dataclasses import dataclass

from tests.bench.fake_server import FakeProcess
from tests.bench.load import Population, Shot, Target, closed_loop, open_loop, percentile
from tests.bench.servers import OFFICES, CpuMeter, Gunicorn, channel_secret, postgres_backends


@dataclass(frozen=True)
class Plan:
    """How long each phase runs; `quick` for the short run."""

    warmup_seconds: float
    saturation_seconds: float
    open_seconds: float
    rates: tuple[int, ...] = (50, 100, 200)
    saturation_clients: int = 8
    users: int = 400  # in play at once: each sends under one event a second even at 200/s (flood control)

    @classmethod
    def quick(cls) -> "Plan":
        return cls(warmup_seconds=1, saturation_seconds=3, open_seconds=3)

    @classmethod
    def full(cls) -> "Plan":
        return cls(warmup_seconds=3, saturation_seconds=20, open_seconds=20)

    @classmethod
    def smoke(cls) -> "Plan":
        return cls(warmup_seconds=0.2, saturation_seconds=0.5, open_seconds=0.5, rates=(10,),
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


def measure(name: str, server: Gunicorn, fake: FakeProcess, plan: Plan, database: str | None = None,
            seed: int = 10) -> dict:
    """All webhook phases against a running server; the fake must be the one the server replies through.

    `database`: a PostgreSQL database name, whose server processes' CPU is counted beside the web workers'.
    """
    target = Target(server.url)
    population = Population(OFFICES, channel_secret, plan.users, seed)
    closed_loop(target, population, plan.saturation_clients, plan.warmup_seconds)  # warm caches and pools

    since = fake.reply_count()
    web_cpu = CpuMeter(server.worker_pids)
    db_cpu = CpuMeter(lambda: postgres_backends(database)) if database else None
    for meter in filter(None, (web_cpu, db_cpu)):
        meter.start()
    shots, seconds = closed_loop(target, population, plan.saturation_clients, plan.saturation_seconds)
    ok = sum(1 for s in shots if s.status == 200)
    saturated = {"clients": plan.saturation_clients, "seconds": seconds, "events_per_s": round(ok / seconds, 1),
                 "errors": len(shots) - ok,
                 "cpu_ms_per_event": {"web": round(web_cpu.stop() * 1000 / max(ok, 1), 2),
                                      "database": round(db_cpu.stop() * 1000 / max(ok, 1), 2) if db_cpu else None}}
    _wait_for_replies(fake, since, ok)

    loads = {}
    for rate in plan.rates:
        since = fake.reply_count()
        shots = open_loop(target, population, rate, plan.open_seconds)
        expected = sum(1 for s in shots if s.status == 200 and s.reply_token)
        arrived = _wait_for_replies(fake, since, expected)
        offered_for = max(s.acked for s in shots) - min(s.due for s in shots) if shots else 0
        loads[str(rate)] = {**_summarise(shots, arrived),
                            "achieved_per_s": round(len(shots) / offered_for, 1) if offered_for else None}
    rss = server.worker_rss_mb()
    return {"name": name, "saturated": saturated, "loads": loads,
            "rss_mb_per_worker": [round(r, 1) for r in rss], "users_started": population.started}
