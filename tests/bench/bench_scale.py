"""How cost grows: offices (start-up time and memory of create_app), users (per-event cost), channels store.

    python -m tests.bench.bench_scale --child     # used by the benchmark: builds the app, prints JSON figures
"""
from __future__ import annotations

import json
import logging
import os
import re
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

from bot.config import DEFAULT_OFFICES_DIR
from tests.bench.load import Population, percentile
from tests.bench.servers import OFFICES, PROJECT_ROOT, channel_env, channel_secret, rss_mb


def make_profiles(directory: Path, count: int, template_office: str = "sakata") -> list[str]:
    """`count` copies of a shipped profile under new ids (office_001, …); returns the ids."""
    directory.mkdir(parents=True, exist_ok=True)
    template = (DEFAULT_OFFICES_DIR / f"{template_office}.yaml").read_text(encoding="utf-8")
    ids = [f"office_{n:03d}" for n in range(1, count + 1)]
    for office_id in ids:
        text = re.sub(rf"^id: {template_office}$", f"id: {office_id}", template, count=1, flags=re.M)
        (directory / f"{office_id}.yaml").write_text(text, encoding="utf-8")
    return ids


def _child() -> None:
    """In a fresh interpreter: import and build the app, report seconds and resident memory."""
    warnings.simplefilter("ignore")
    before = rss_mb(os.getpid())
    started = time.perf_counter()
    import app as app_module  # noqa: PLC0415 - the import is what is measured

    imported = time.perf_counter()
    app = app_module.create_app()
    built = time.perf_counter()
    rt = app.extensions["madoguchi"]
    print(json.dumps({
        "offices": len(rt.offices),
        "stored_channels": len(rt.config.stored_channels),
        "import_s": round(imported - started, 3),
        "create_app_s": round(built - imported, 3),
        "rss_before_mb": round(before, 1),
        "rss_after_mb": round(rss_mb(os.getpid()), 1),
    }))


def create_app_cost(env: dict[str, str], repeat: int = 2) -> dict:
    """Build the app in a fresh process with this environment; the quickest of `repeat` children's figures."""
    runs = []
    for _ in range(repeat):
        result = subprocess.run([sys.executable, "-m", "tests.bench.bench_scale", "--child"], cwd=PROJECT_ROOT,
                                env=env, capture_output=True, text=True, check=True)
        runs.append(json.loads(result.stdout.strip().splitlines()[-1]))
    return min(runs, key=lambda r: r["create_app_s"])


def offices_env(base: dict[str, str], offices_dir: Path, ids: list[str], in_environment: bool) -> dict[str, str]:
    env = {k: v for k, v in base.items() if not k.startswith("LINE_CHANNEL_")}
    env["OFFICES_DIR"] = str(offices_dir)
    if in_environment:
        env.update(channel_env(tuple(ids)))
    return env


def store_channels(database_url: str, keys: tuple[str, ...], ids: list[str]) -> None:
    """Put every office's credentials in the channels store (as `flask channels set` would)."""
    from datetime import datetime

    from bot import channels
    from bot.clock import TOKYO
    from bot.db import Database
    from tests.bench.bench_worker import driver_url

    db = Database(driver_url(database_url))
    try:
        with db.transaction() as s:
            for office_id in ids:
                channels.put(s, keys, office_id, {"secret": channel_secret(office_id),
                                                  "token": f"bench-token-{office_id}"}, datetime.now(TOKYO))
    finally:
        db.dispose()


class _Failures(logging.Handler):
    """Counts events the webhook rolled back (it still answers 200 for them)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


def event_cost(app_config: dict, events: int, seed: int = 6) -> dict:
    """Per-event time in one process (Flask test client, no HTTP), for comparing database sizes."""
    from app import create_app

    app = create_app(app_config)
    client = app.test_client()
    population = Population(OFFICES, channel_secret, 50, seed)
    samples = []
    failures = _Failures()
    logging.getLogger("bot.webhook").addHandler(failures)
    try:
        for _ in range(events):
            user = population.take()
            request = user.next_request()
            started = time.perf_counter()
            response = client.post(f"/callback/{request.office}", data=request.body,
                                   headers={"X-Line-Signature": request.signature,
                                            "Content-Type": "application/json"})
            samples.append(time.perf_counter() - started)
            population.give_back(user)
            if response.status_code != 200:
                raise RuntimeError(f"webhook answered {response.status_code}")
    finally:
        logging.getLogger("bot.webhook").removeHandler(failures)
        app.extensions["madoguchi"].db.dispose()
    if failures.count:
        raise RuntimeError(f"{failures.count} of {events} events failed in the app (see its log)")
    samples = samples[len(samples) // 10:]  # the first events warm caches
    return {"events": len(samples), "mean_ms": round(statistics.fmean(samples) * 1000, 2),
            "p50_ms": round(percentile(samples, 0.5) * 1000, 2), "p95_ms": round(percentile(samples, 0.95) * 1000, 2)}


if __name__ == "__main__":
    if sys.argv[1:] == ["--child"]:
        _child()
    else:
        sys.exit("usage: python -m tests.bench.bench_scale --child (the benchmark runs it: python -m tests.bench)")
