"""Benchmark: how long availability takes for one office over its booking window (8 weeks).

    python -m tests.bench.bench_availability [--repeat N] [--profiles DIR]

Prints mean / p50 / p99 / max in milliseconds per office. A measurement, not a test: nothing here asserts
a time. Without --profiles it uses the two shipped schedules' shapes (Sakata: Mondays 14/15/16; Otaru:
ten 30-minute slots each weekday), built like the tests build them; the cost depends only on that shape.
"""
from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

from bot.clock import TOKYO
from bot.offices import Office
from bot.services.slots import available_slots, candidate_starts, week_view

# A Tuesday morning: the whole window lies ahead, and it spans the year-end closure and two holidays.
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=TOKYO)


def shipped_shapes() -> list[Office]:
    from tests.test_slots import OTARU, SAKATA  # the tests' offices, same schedules as the seeds

    return [SAKATA, OTARU]


def profiles(directory: Path) -> list[Office]:
    from bot.offices import load_offices

    return list(load_offices(directory).values())


def time_ms(call: Callable[[], object], repeat: int) -> list[float]:
    call()  # warm the calendar caches once, as a running app has them
    samples = []
    for _ in range(repeat):
        started = time.perf_counter_ns()
        call()
        samples.append((time.perf_counter_ns() - started) / 1e6)
    return samples


def percentile(sorted_samples: Sequence[float], share: float) -> float:
    return sorted_samples[min(len(sorted_samples) - 1, int(share * len(sorted_samples)))]


def measure(office: Office, repeat: int) -> list[tuple[str, str, int, list[float]]]:
    """(office, what, slots returned, samples) for the calls the chat makes to show availability."""
    window = candidate_starts(office, NOW.date(), NOW.date().replace(year=NOW.year + 1))
    taken = {start: office.schedule.capacity for start in window[::3]}  # a third of all slots full
    slots = available_slots(office, NOW, taken)
    week = week_view(office, NOW, 0, taken)
    return [
        (office.id, "available_slots", len(slots), time_ms(lambda: available_slots(office, NOW, taken), repeat)),
        (office.id, "week_view", len(week.slots), time_ms(lambda: week_view(office, NOW, 0, taken), repeat)),
    ]


def report(rows: list[tuple[str, str, int, list[float]]]) -> str:
    lines = [f"{'office':<10} {'call':<16} {'slots':>5} {'mean ms':>8} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}"]
    for office_id, what, n_slots, samples in rows:
        ordered = sorted(samples)
        lines.append(
            f"{office_id:<10} {what:<16} {n_slots:>5} {statistics.fmean(ordered):>8.3f} "
            f"{percentile(ordered, 0.50):>8.3f} {percentile(ordered, 0.99):>8.3f} {ordered[-1]:>8.3f}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2000, help="timed calls per office and call (default 2000)")
    parser.add_argument("--profiles", type=Path, help="load these office profiles instead of the built-in shapes")
    args = parser.parse_args(argv)
    offices = profiles(args.profiles) if args.profiles else shipped_shapes()
    rows = [row for office in offices for row in measure(office, args.repeat)]
    print(f"now = {NOW.isoformat()}, {args.repeat} calls each")
    print(report(rows))


if __name__ == "__main__":
    main()
