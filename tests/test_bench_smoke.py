"""The benchmark's machinery, run for a few seconds with tiny loads: it must produce well-formed JSON.

Nothing here looks at a time: the figures are the benchmark's to print (`python -m tests.bench`), not a test's
to judge. This checks that the floor and madoguchi (SQLite) come up under gunicorn, that every signed webhook
is acknowledged, that replies are matched to their events, and that the report renders.
"""
from __future__ import annotations

import json
import numbers

from tests.bench.__main__ import main
from tests.bench.report import render


def _is_figure(value) -> bool:
    return isinstance(value, numbers.Real) and value >= 0


def test_a_tiny_benchmark_run_writes_well_formed_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["--smoke", "--no-postgres", "--only", "webhook,availability", "--out", str(out)]) == 0
    results = json.loads(out.read_text(encoding="utf-8"))

    assert results["meta"]["run"] == "smoke" and results["meta"]["web_workers"] == 2
    webhook = results["webhook"]
    assert webhook["madoguchi_postgresql"] == {"skipped": "no PostgreSQL"}
    for name in ("floor", "madoguchi_sqlite"):
        server = webhook[name]
        assert _is_figure(server["saturated"]["events_per_s"]) and server["saturated"]["errors"] == 0
        assert _is_figure(server["saturated"]["cpu_ms_per_event"]["web"])
        assert len(server["rss_mb_per_worker"]) == 2 and all(_is_figure(r) for r in server["rss_mb_per_worker"])
        load = server["loads"]["10"]
        assert load["events"] > 0 and load["errors"] == 0
        assert all(_is_figure(load["ack_ms"][p]) for p in ("p50", "p95", "p99", "max"))
        assert all(_is_figure(load["reply_lag_ms"][p]) for p in ("p50", "p99", "max"))

    offices = results["availability"]["offices"]
    assert set(offices) == {"sakata", "otaru"}
    assert all(_is_figure(call["p99_ms"]) and call["slots"] > 0 for calls in offices.values()
               for call in calls.values())

    table = render(results)
    assert "saturated throughput" in table and "availability 8 weeks: sakata" in table
    assert str(out) in capsys.readouterr().out
