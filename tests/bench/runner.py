"""The benchmark run: every section in order, each against fresh processes and a scratch database."""
from __future__ import annotations

import contextlib
import logging
import os
import platform
import shutil
import subprocess
import tempfile
import time
import warnings
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from tests.bench import bench_availability, bench_broadcast, bench_scale, bench_webhook, bench_worker
from tests.bench.fake_server import FakeProcess
from tests.bench.servers import (
    OFFICES,
    PROJECT_ROOT,
    WEB_WORKERS,
    Gunicorn,
    app_env,
    channel_env,
    flask,
    postgres_available,
    postgres_database,
    rss_mb,
    start_flask,
    stop,
)

SECTIONS = ("webhook", "worker", "broadcast", "scale", "availability")


@dataclass(frozen=True)
class Sizes:
    """How much each section does, per kind of run."""

    webhook: bench_webhook.Plan
    pushes: int
    followers: int
    offices: int
    user_events: int
    availability_repeat: int
    start_ups: int = 2   # fresh processes per start-up measurement (the quickest counts)

    @classmethod
    def named(cls, name: str) -> "Sizes":
        if name == "full":
            return cls(bench_webhook.Plan.full(), pushes=5000, followers=100_000, offices=200, user_events=600,
                       availability_repeat=2000)
        if name == "quick":
            return cls(bench_webhook.Plan.quick(), pushes=1500, followers=100_000, offices=200, user_events=200,
                       availability_repeat=300, start_ups=1)
        if name == "smoke":
            return cls(bench_webhook.Plan.smoke(), pushes=30, followers=1200, offices=3, user_events=20,
                       availability_repeat=5, start_ups=1)
        raise ValueError(f"unknown run {name!r}")


class Run:
    """Holds the fake, the scratch folder and the results while the sections run."""

    def __init__(self, kind: str, sections: tuple[str, ...], postgres: bool | None = None):
        self.kind = kind
        self.sizes = Sizes.named(kind)
        self.sections = sections
        self.postgres = postgres_available() if postgres is None else postgres
        self.results: dict = {"meta": self._meta()}
        self.workdir = Path(tempfile.mkdtemp(prefix="madoguchi-bench-"))
        self.fake: FakeProcess | None = None

    def _meta(self) -> dict:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=PROJECT_ROOT, capture_output=True,
                                text=True).stdout.strip()
        return {"run": self.kind, "at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "cpus": os.cpu_count(), "python": platform.python_version(), "commit": commit or None,
                "web_workers": WEB_WORKERS, "load_average_before": [round(x, 2) for x in os.getloadavg()]}

    def cleanup(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)

    def log(self, text: str) -> None:
        print(f"[bench {time.strftime('%H:%M:%S')}] {text}", flush=True)

    def execute(self) -> dict:
        logging.basicConfig(level=logging.WARNING)  # a no-op where logging is set up already (pytest)
        started = time.monotonic()
        self.fake = FakeProcess.start()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # production's start-up warnings (plain http, SQLite) are expected
                self._run_sections()
        finally:
            self.fake.stop()
        self.results["meta"]["seconds"] = round(time.monotonic() - started, 1)
        self.results["meta"]["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
        return self.results

    def _run_sections(self) -> None:
        for section in self.sections:
            if section in ("worker", "broadcast") and not self.postgres:
                self.results[section] = {"skipped": "no PostgreSQL"}
                continue
            started = time.monotonic()
            self.log(f"{section} …")
            getattr(self, f"run_{section}")()
            self.results.setdefault("seconds", {})[section] = round(time.monotonic() - started, 1)

    # -- 1-3: the webhook, floor and madoguchi ------------------------------------------------------
    def run_webhook(self) -> None:
        """All servers up at once; `bench_webhook.compare` measures them side by side."""
        plan = self.sizes.webhook
        env = {**os.environ, "LINE_API_BASE_URL": self.fake.url, "FLOOR_OFFICES": ",".join(OFFICES),
               **channel_env()}
        floor = "tests.bench.floor_app:create_app()"
        self.fake.reset()
        with contextlib.ExitStack() as stack:
            subjects = [self._subject(stack, "floor", floor, env, plan)]
            workers = {}
            if self.postgres:
                url = stack.enter_context(postgres_database())
                subjects.append(self._subject(stack, "floor_durable", floor, {**env, "FLOOR_DATABASE_URL": url},
                                              plan, database=url.rsplit("/", 1)[1]))
                url = stack.enter_context(postgres_database())
                subjects.append(self._madoguchi(stack, "postgresql", url, plan, workers))
            subjects.append(self._madoguchi(stack, "sqlite", f"sqlite:///{self.workdir / 'bench.sqlite3'}", plan,
                                            workers))
            out = bench_webhook.compare(subjects, ("floor", "floor_durable"), self.log)
            for key, worker in workers.items():
                out[key]["worker_rss_mb"] = round(rss_mb(worker.pid), 1)
        if not self.postgres:
            out["floor_durable"] = out["madoguchi_postgresql"] = {"skipped": "no PostgreSQL"}
        self.results["webhook"] = out

    def _madoguchi(self, stack: contextlib.ExitStack, backend: str, url: str, plan, workers: dict):
        """madoguchi in production mode on `url`, its worker beside it, as deployed."""
        env = app_env(url, self.fake.url, self.workdir / f"instance-{backend}")
        flask(["db", "upgrade"], env, log=self.workdir / f"release-{backend}.log")
        key = f"madoguchi_{backend}"
        workers[key] = start_flask(["worker"], env, self.workdir / f"worker-{backend}.log")
        stack.callback(stop, workers[key])
        database = url.rsplit("/", 1)[1] if backend == "postgresql" else None
        return self._subject(stack, key, "app:create_app()", env, plan, database)

    def _subject(self, stack: contextlib.ExitStack, key: str, target: str, env: dict, plan,
                 database: str | None = None) -> bench_webhook.Subject:
        server = Gunicorn(target, env, self.workdir / f"gunicorn-{key}.log").start()
        stack.callback(server.stop)
        self.log(f"  {key} on {server.url}")
        return bench_webhook.Subject(key, server, self.fake, plan, database)

    # -- 4: the worker's pushes ---------------------------------------------------------------------
    def run_worker(self) -> None:
        with postgres_database() as url:
            env = app_env(url, self.fake.url, self.workdir / "instance-worker")
            flask(["db", "upgrade"], env, log=self.workdir / "release-worker.log")
            runs = [bench_worker.measure(url, env, self.fake, self.sizes.pushes, n, self.workdir) for n in (1, 2)]
        self.results["worker"] = {"postgresql": runs}

    # -- 6 and users: terms broadcast to many followers, per-event cost with many users -------------
    def run_broadcast(self) -> None:
        followers = self.sizes.followers
        with postgres_database() as url:
            env = app_env(url, self.fake.url, self.workdir / "instance-broadcast")
            flask(["db", "upgrade"], env, log=self.workdir / "release-broadcast.log")
            config = self._inprocess_config(url, env)
            empty = bench_scale.event_cost(config, self.sizes.user_events)
            inserted = bench_broadcast.add_followers(url, "sakata", followers)
            crowded = bench_scale.event_cost(config, self.sizes.user_events)
            result = bench_broadcast.measure(env, self.fake, "sakata", self.workdir)
        result["followers_insert_s"] = round(inserted, 2)
        self.results["broadcast"] = result
        self.results.setdefault("scale", {})["users"] = {
            "postgresql": {"empty": empty, f"with_{followers}_users": crowded}}

    def _inprocess_config(self, url: str, env: dict) -> dict:
        return {"app_env": "production", "database_url": url, "line_api_base_url": self.fake.url,
                "line_api_data_base_url": self.fake.url, "secret_key": env["SECRET_KEY"],
                "data_encryption_keys": (env["DATA_ENCRYPTION_KEY"],), "env": channel_env(),
                "instance_path": env["INSTANCE_PATH"], "public_base_url": env["PUBLIC_BASE_URL"]}

    # -- 7: offices -----------------------------------------------------------------------------------
    def run_scale(self) -> None:
        count = self.sizes.offices
        base = app_env(f"sqlite:///{self.workdir / 'scale.sqlite3'}", self.fake.url, self.workdir / "instance-scale")
        many = self.workdir / "offices"
        ids = bench_scale.make_profiles(many, count)
        repeat = self.sizes.start_ups
        shipped = bench_scale.create_app_cost(base, repeat)
        from_env = bench_scale.create_app_cost(bench_scale.offices_env(base, many, ids, in_environment=True), repeat)
        store_env = bench_scale.offices_env(base, many, ids, in_environment=False)
        # The store's table, then every office's credentials in it: the app finds them at start-up.
        flask(["db", "upgrade"], {**store_env, **channel_env(tuple(ids))}, log=self.workdir / "release-scale.log")
        bench_scale.store_channels(base["DATABASE_URL"], (base["DATA_ENCRYPTION_KEY"],), ids)
        from_store = bench_scale.create_app_cost(store_env, repeat)
        per_office_kb = (from_env["rss_after_mb"] - shipped["rss_after_mb"]) * 1024 / max(1, count - len(OFFICES))
        per_office_ms = (from_env["create_app_s"] - shipped["create_app_s"]) * 1000 / max(1, count - len(OFFICES))
        self.results.setdefault("scale", {})["offices"] = {
            "shipped": shipped, f"{count}_channels_in_env": from_env, f"{count}_channels_in_store": from_store,
            "per_office_ms": round(per_office_ms, 2), "per_office_kb": round(per_office_kb, 1)}

    # -- 5: availability ------------------------------------------------------------------------------
    def run_availability(self) -> None:
        from bot.config import DEFAULT_OFFICES_DIR

        rows = [row for office in bench_availability.profiles(DEFAULT_OFFICES_DIR)
                for row in bench_availability.measure(office, self.sizes.availability_repeat)]
        out: dict = {}
        for office_id, what, slots, samples in rows:
            ordered = sorted(samples)
            out.setdefault(office_id, {})[what] = {
                "slots": slots, "calls": len(ordered),
                "mean_ms": round(sum(ordered) / len(ordered), 3),
                "p50_ms": round(bench_availability.percentile(ordered, 0.5), 3),
                "p99_ms": round(bench_availability.percentile(ordered, 0.99), 3),
                "max_ms": round(ordered[-1], 3)}
        self.results["availability"] = {"weeks": 8, "offices": out}
