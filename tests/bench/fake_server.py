"""The loopback fake Messaging API in its own process, for load: tests.fakeline.FakeLineApi plus a read-out.

    python -m tests.bench.fake_server          # prints "port <n>" once it listens, serves until stdin closes

The benchmark runs the fake outside its own process so that the load generator and the fake do not share one
interpreter lock (that would slow both and blur the figures). The fake is the tests' own FakeLineApi (about
4,000 calls a second on one core: fast enough, and it validates what it is sent as LINE does); this module adds
`GET /__bench/...` read-outs, which the benchmark calls with `FakeProcess`.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.fakeline import FakeLineApi, _Answer, _Request

PROJECT_ROOT = Path(__file__).resolve().parents[2]
BEARER = {"Authorization": "Bearer bench-control"}


class BenchFakeLineApi(FakeLineApi):
    """FakeLineApi with read-outs of what it received, summarised inside the fake (no big transfers)."""

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self._routes.extend([
            ("GET", re.compile(r"^/__bench/replies$"), self._bench_replies),
            ("GET", re.compile(r"^/__bench/summary$"), self._bench_summary),
            ("GET", re.compile(r"^/__bench/calls$"), self._bench_calls),
            ("POST", re.compile(r"^/__bench/reset$"), self._bench_reset),
        ])

    def _bench_replies(self, req: _Request) -> _Answer:
        """{reply token: epoch seconds the reply was accepted} for replies after index `since`."""
        since = int((req.call.query.get("since") or ["0"])[0])
        with self._lock:
            replies = [d for d in self._deliveries if d.kind == "reply"]
        return _Answer(200, {"count": len(replies), "at": {d.reply_token: d.at for d in replies[since:]}})

    def _bench_calls(self, req: _Request) -> _Answer:
        """How many Messaging API calls came in (any kind): the benchmark waits for it to stop moving."""
        with self._lock:
            return _Answer(200, {"calls": sum(1 for c in self._calls if not c.path.startswith("/__bench/"))})

    def _bench_summary(self, req: _Request) -> _Answer:
        with self._lock:
            deliveries = list(self._deliveries)
            calls = [c for c in self._calls if not c.path.startswith("/__bench/")]
        by_kind = Counter(d.kind for d in deliveries)
        push_to = Counter(d.to for d in deliveries if d.kind == "push")
        multicast = [d for d in deliveries if d.kind == "multicast"]
        multicast_calls = [c for c in calls if c.path.endswith("/multicast")]
        return _Answer(200, {
            "calls": len(calls),
            "statuses": dict(Counter(str(c.status) for c in calls)),
            "deliveries": dict(by_kind),
            "push_recipients": len(push_to),
            "multicast_calls": len(multicast),
            "multicast_recipients": sum(len(d.to) for d in multicast),
            "multicast_distinct_recipients": len({u for d in multicast for u in d.to}),
            "multicast_max_per_call": max((len(d.to) for d in multicast), default=0),
            "multicast_first_at": min((c.at for c in multicast_calls), default=None),
            "multicast_last_at": max((c.at for c in multicast_calls), default=None),
            "first_push_at": min((d.at for d in deliveries if d.kind == "push"), default=None),
            "last_push_at": max((d.at for d in deliveries if d.kind == "push"), default=None),
            "errors": len(self.errors),
        })

    def _bench_reset(self, req: _Request) -> _Answer:
        self.reset()
        return _Answer(200, {})


def serve() -> None:
    """Serve until standard input closes (the benchmark holds the pipe; a crash of the parent ends us)."""
    fake = BenchFakeLineApi().start()
    print(f"port {fake.port}", flush=True)
    try:
        sys.stdin.read()
    finally:
        fake.stop()


@dataclass
class FakeProcess:
    """Runs `serve()` in a subprocess and reads it out."""

    process: subprocess.Popen
    port: int

    @classmethod
    def start(cls) -> "FakeProcess":
        process = subprocess.Popen([sys.executable, "-m", "tests.bench.fake_server"], cwd=PROJECT_ROOT,
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = process.stdout.readline()
        if not line.startswith("port "):
            process.kill()
            raise RuntimeError("the fake Messaging API did not start")
        return cls(process, int(line.split()[1]))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _get(self, path: str, method: str = "GET") -> dict:
        request = urllib.request.Request(self.url + path, method=method, headers=BEARER,
                                         data=b"{}" if method == "POST" else None)
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def reset(self) -> None:
        self._get("/__bench/reset", "POST")

    def summary(self) -> dict:
        return self._get("/__bench/summary")

    def calls(self) -> int:
        return self._get("/__bench/calls")["calls"]

    def wait_until_quiet(self, quiet_for: float = 0.7, patience: float = 10.0) -> None:
        """Until no call has come in for `quiet_for` seconds (longer than the worker's poll), so what a server
        sends after its turn (its worker's pushes) is not paid for by the next server's."""
        deadline = time.monotonic() + patience
        last, since = -1, time.monotonic()
        while time.monotonic() < deadline:
            count = self.calls()
            if count != last:
                last, since = count, time.monotonic()
            elif time.monotonic() - since >= quiet_for:
                return
            time.sleep(0.1)

    def reply_count(self) -> int:
        return self.replies(since=1 << 62)[0]

    def replies(self, since: int = 0) -> tuple[int, dict[str, float]]:
        data = self._get(f"/__bench/replies?since={since}")
        return data["count"], data["at"]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.close()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


if __name__ == "__main__":
    serve()
