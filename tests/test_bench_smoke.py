"""The benchmark's machinery, run for a few seconds with tiny loads: it must produce well-formed JSON.

Nothing here looks at a time: the figures are the benchmark's to print (`python -m tests.bench`), not a test's
to judge. This checks that the floor and madoguchi (SQLite) come up under gunicorn, that every signed webhook
is acknowledged, that replies are matched to their events, and that the report renders.
"""
from __future__ import annotations

import json
import numbers

import pytest

from tests.bench.__main__ import main
from tests.bench.report import markdown, render


def _is_figure(value) -> bool:
    return isinstance(value, numbers.Real) and value >= 0


def test_a_tiny_benchmark_run_writes_well_formed_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["--smoke", "--no-postgres", "--only", "webhook,availability", "--out", str(out)]) == 0
    results = json.loads(out.read_text(encoding="utf-8"))

    assert results["meta"]["run"] == "smoke" and results["meta"]["web_workers"] == 2
    webhook = results["webhook"]
    assert webhook["madoguchi_postgresql"] == webhook["floor_durable"] == {"skipped": "no PostgreSQL"}
    for name in ("floor", "madoguchi_sqlite"):
        server = webhook[name]
        assert _is_figure(server["saturated"]["events_per_s"]) and server["saturated"]["errors"] == 0
        assert _is_figure(server["saturated"]["cpu_ms_per_event"]["web"])
        assert len(server["saturated"]["rounds"]) == 2 and all(_is_figure(r) for r in server["saturated"]["rounds"])
        assert len(server["rss_mb_per_worker"]) == 2 and all(_is_figure(r) for r in server["rss_mb_per_worker"])
        load = server["loads"]["10"]
        assert load["events"] > 0 and load["errors"] == 0
        assert all(_is_figure(load["ack_ms"][p]) for p in ("p50", "p95", "p99", "max"))
        assert all(_is_figure(load["reply_lag_ms"][p]) for p in ("p50", "p99", "max"))

    # The servers took turns at saturation: madoguchi's throughput over the floor's, round by round.
    against_floor = webhook["madoguchi_sqlite"]["ratios"]["floor"]
    assert len(against_floor["rounds"]) == 2 and all(_is_figure(r) for r in against_floor["rounds"])
    assert against_floor["lowest"] <= against_floor["median"] <= against_floor["highest"]
    assert "floor" not in webhook["floor"]["ratios"]

    offices = results["availability"]["offices"]
    assert set(offices) == {"sakata", "otaru"}
    assert all(_is_figure(call["p99_ms"]) and call["slots"] > 0 for calls in offices.values()
               for call in calls.values())

    table = render(results)
    assert "saturated throughput" in table and "lowest-highest round" in table
    assert "availability 8 weeks: sakata" in table
    assert str(out) in capsys.readouterr().out


def test_the_durable_floor_writes_its_rows_once_per_event_and_replies(pg_databases, fake_line, monkeypatch):
    """The benchmark's second reference: the floor plus the one durable transaction per event madoguchi makes."""
    if pg_databases is None:
        pytest.skip("the durable floor runs on PostgreSQL (TEST_DATABASE_URL)")
    import psycopg

    from tests.bench.floor_app import REPLY_TEXT, create_app
    from tests.lineuser import LineUser, as_redelivery

    url = pg_databases.create().replace("postgresql+psycopg://", "postgresql://", 1)
    try:
        monkeypatch.setenv("LINE_API_BASE_URL", fake_line.url)
        monkeypatch.setenv("FLOOR_OFFICES", "sakata")
        monkeypatch.setenv("LINE_CHANNEL_SECRET_SAKATA", "durable-floor-secret")
        monkeypatch.setenv("LINE_CHANNEL_ACCESS_TOKEN_SAKATA", "durable-floor-token")
        monkeypatch.setenv("FLOOR_DATABASE_URL", url)
        client = create_app().test_client()
        user = LineUser(client, "sakata", channel_secret="durable-floor-secret", fake=fake_line)

        assert user.follows().status_code == 200
        first = user.text_event("予約")
        assert user.send(first).status_code == 200
        assert user.send(as_redelivery(first)).status_code == 200  # the same event again: nothing more
        assert user.post(user.body(user.text_event("はい")), signature="forged").status_code == 400

        assert user.texts() == [REPLY_TEXT, REPLY_TEXT]
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT count(*) FROM floor_events").fetchone() == (2,)
            assert conn.execute("SELECT last_event_ms FROM floor_conversations").fetchall() == [
                (first["timestamp"],)]
            assert conn.execute("SELECT status, count(*) FROM floor_outbox GROUP BY status").fetchall() == [
                ("sent", 2)]
    finally:
        pg_databases.drop(url)


def test_the_table_shows_the_median_of_the_per_round_ratios_and_their_range():
    from types import SimpleNamespace

    from tests.bench.bench_webhook import ratios

    floor, durable = SimpleNamespace(rounds=[100.0, 200.0, 150.0]), SimpleNamespace(rounds=[50.0, 80.0, 75.0])
    madoguchi = SimpleNamespace(rounds=[40.0, 100.0, 60.0])
    assert ratios(madoguchi, floor) == {"median": 0.4, "lowest": 0.4, "highest": 0.5, "rounds": [0.4, 0.5, 0.4]}

    def server(me, events_per_s):
        return {"saturated": {"events_per_s": events_per_s, "rounds": me.rounds},
                "ratios": {"floor": ratios(me, floor), "floor_durable": ratios(me, durable)}}

    webhook = {"floor": {"saturated": {"events_per_s": 150.0, "rounds": floor.rounds}, "ratios": {}},
               "floor_durable": server(durable, 68.3), "madoguchi_postgresql": server(madoguchi, 66.7),
               "madoguchi_sqlite": {"skipped": "no SQLite today"}}
    table = render({"webhook": webhook})
    assert "67 (0.40x)" in table and "0.40-0.50x" in table          # median of 0.4, 0.5, 0.4; its range
    assert "0.80x (0.80-1.25x)" in table                            # against the durable floor: 0.8, 1.25, 0.8
    assert "no SQLite today" in table
    assert "| 67 (0.40×) |" in markdown({"webhook": webhook})


def test_the_benchmark_s_profiles_allow_pushes_at_any_hour(tmp_path):
    """The worker and broadcast figures must not depend on the hour the benchmark runs at: at night the shipped
    `push_hours` would hold every push (the worker would deliver nothing) and refuse the broadcast."""
    from datetime import datetime

    from bot.clock import TOKYO
    from bot.config import DEFAULT_OFFICES_DIR
    from bot.offices import load_offices
    from bot.services.push_hours import next_opening
    from tests.bench.servers import all_day_profiles

    offices = load_offices(all_day_profiles(tmp_path / "offices"))
    assert sorted(offices) == sorted(p.stem for p in DEFAULT_OFFICES_DIR.glob("*.yaml"))
    for office in offices.values():
        for hour in (0, 3, 8, 21, 23):
            assert next_opening(office, datetime(2026, 12, 8, hour, 59, tzinfo=TOKYO)) is None, (office.id, hour)
