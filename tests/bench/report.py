"""The printed table: the figures beside the floor's and beside the targets (figures only, nothing asserted)."""
from __future__ import annotations

from collections.abc import Iterable

TARGETS = {
    "throughput": "PG >= 0.5x floor",
    "ack50": "PG p99 < 100 ms",
    "lag50": "PG p99 < 1000 ms",
    "rss": "< 150 MB",
    "worker": ">= 200/s",
    "availability": "< 5 ms",
    "broadcast": "<= 500/call, <= 200 calls/s",
}


def _num(value, digits: int = 0) -> str:
    if value is None:
        return "-"
    if abs(value) >= 1000:
        digits = 0  # an overloaded run's seconds: decimals say nothing
    return f"{value:.{digits}f}" if digits else f"{round(value):d}"


def _triple(figures: dict | None, keys: Iterable[str]) -> str:
    if not figures:
        return "-"
    return " / ".join(_num(figures.get(k), 1) for k in keys)


def _row(label: str, cells: list[str], target: str = "") -> str:
    return f"{label:<34}" + "".join(f"{c:>26}" for c in cells) + (f"   {target}" if target else "")


def _servers(webhook: dict) -> list[tuple[str, dict]]:
    names = (("floor", "floor"), ("floor_durable", "durable floor PG"), ("madoguchi_postgresql", "madoguchi PG"),
             ("madoguchi_sqlite", "madoguchi SQLite"))
    return [(label, webhook.get(key) or {}) for key, label in names]


def _ratios(result: dict, reference: str) -> dict:
    """Throughput over a reference server's, by round (`bench_webhook.ratios`): median, lowest, highest."""
    return (result.get("ratios") or {}).get(reference) or {}


def _span(ratio: dict, times: str) -> str:
    dash = "-" if times == "x" else "–"
    return f"{ratio['lowest']:.2f}{dash}{ratio['highest']:.2f}{times}" if ratio.get("rounds") else ""


def _throughput(servers: list[tuple[str, dict]], times: str) -> list[str]:
    """Events/s, and for all but the floor the median of the per-round ratios to the floor."""
    cells = []
    for index, (_, result) in enumerate(servers):
        value = (result.get("saturated") or {}).get("events_per_s")
        if value is None:
            cells.append(result.get("skipped", "-"))
            continue
        median = _ratios(result, "floor").get("median") if index else None
        cells.append(_num(value) + (f" ({median:.2f}{times})" if median is not None else ""))
    return cells


def _floor_spans(servers: list[tuple[str, dict]], times: str) -> list[str]:
    return [_span(_ratios(result, "floor"), times) if index else "" for index, (_, result) in enumerate(servers)]


def _against_durable(servers: list[tuple[str, dict]], times: str) -> list[str]:
    """madoguchi PG's throughput as a share of the durable floor's (the design's per-event transaction alone)."""
    ratio = _ratios(servers[2][1], "floor_durable")
    if ratio.get("median") is None:
        return ["", "", "-", ""]
    return ["", "", f"{ratio['median']:.2f}{times} ({_span(ratio, times)})", ""]


def webhook_table(webhook: dict) -> list[str]:
    servers = _servers(webhook)
    lines = [_row("webhook (2 sync workers)", [label for label, _ in servers], "target"),
             _row("", ["-" * 22] * len(servers))]
    lines.append(_row("saturated throughput (events/s)", _throughput(servers, "x"), TARGETS["throughput"]))
    lines.append(_row("  lowest-highest round", _floor_spans(servers, "x")))
    lines.append(_row("  against the durable floor", _against_durable(servers, "x")))
    cells = []
    for _, r in servers:
        cpu = (r.get("saturated") or {}).get("cpu_ms_per_event") or {}
        cells.append("-" if not cpu else f"{_num(cpu.get('web'), 2)}" + (
            f" + db {_num(cpu['database'], 2)}" if cpu.get("database") is not None else ""))
    lines.append(_row("CPU ms per event (web + db)", cells))
    rates = sorted({int(rate) for _, r in servers for rate in (r.get("loads") or {})})
    for rate in rates:
        cells = [_triple(((r.get("loads") or {}).get(str(rate)) or {}).get("ack_ms"), ("p50", "p95", "p99"))
                 for _, r in servers]
        lines.append(_row(f"ack p50/p95/p99 ms @{rate}/s", cells, TARGETS["ack50"] if rate == 50 else ""))
    for rate in rates:
        cells = [_triple(((r.get("loads") or {}).get(str(rate)) or {}).get("reply_lag_ms"), ("p50", "p99"))
                 for _, r in servers]
        lines.append(_row(f"reply lag p50/p99 ms @{rate}/s", cells, TARGETS["lag50"] if rate == 50 else ""))
    for rate in rates:
        cells = []
        for _, r in servers:
            load = (r.get("loads") or {}).get(str(rate)) or {}
            cells.append(f"{_num(load.get('achieved_per_s'))}/s, {load.get('errors', '-')} err, "
                         f"{load.get('replies_missing', '-')} miss" if load else "-")
        lines.append(_row(f"achieved @{rate}/s, errors, missing", cells))
    lines.append(_row("RSS per web worker (MB)",
                      [" / ".join(_num(x, 1) for x in r.get("rss_mb_per_worker", [])) or "-" for _, r in servers],
                      TARGETS["rss"]))
    return lines


def other_tables(results: dict) -> list[str]:
    lines: list[str] = []
    worker = (results.get("worker") or {}).get("postgresql")
    if worker:
        cells = ", ".join(f"{w['workers']} worker{'s' if w['workers'] > 1 else ''}: {_num(w['pushes_per_s'])}/s "
                          f"({w['delivered']}/{w['pushes']} delivered, {w['duplicated']} duplicated)" for w in worker)
        lines.append(f"{'worker pushes (PG)':<34}{cells}   {TARGETS['worker']}")
    availability = (results.get("availability") or {}).get("offices") or {}
    for office, calls in availability.items():
        cells = ", ".join(f"{what} p50 {c['p50_ms']:.2f} / p99 {c['p99_ms']:.2f} ms ({c['slots']} slots)"
                          for what, c in calls.items())
        lines.append(f"{'availability 8 weeks: ' + office:<34}{cells}   {TARGETS['availability']}")
    broadcast = results.get("broadcast") or {}
    if "calls" in broadcast:
        lines.append(f"{'terms broadcast (multicast)':<34}{broadcast['followers']} followers: {broadcast['calls']} "
                     f"calls, {broadcast['recipients']} recipients ({broadcast['distinct_recipients']} distinct), "
                     f"max {broadcast['max_per_call']}/call, {_num(broadcast['calls_per_s'], 1)} calls/s, "
                     f"{broadcast['seconds']} s   {TARGETS['broadcast']}")
    scale = results.get("scale") or {}
    offices = scale.get("offices")
    if offices:
        parts = [f"{key}: {v['offices']} offices, create_app {v['create_app_s']} s, RSS {v['rss_after_mb']} MB"
                 for key, v in offices.items() if isinstance(v, dict)]
        lines.append(f"{'offices (fresh process)':<34}" + "; ".join(parts))
        lines.append(f"{'':<34}per extra office: {offices['per_office_ms']} ms, {offices['per_office_kb']} KB")
    users = (scale.get("users") or {}).get("postgresql")
    if users:
        parts = [f"{key}: mean {v['mean_ms']} / p95 {v['p95_ms']} ms" for key, v in users.items()]
        lines.append(f"{'per event in-process (PG)':<34}" + "; ".join(parts))
    return lines


def render(results: dict) -> str:
    meta = results.get("meta", {})
    head = (f"madoguchi benchmark ({meta.get('run')} run, {meta.get('cpus')} CPUs, Python {meta.get('python')}, "
            f"commit {meta.get('commit')}, {meta.get('seconds')} s)")
    load = meta.get("load_average_before")
    lines = [head]
    if load:
        lines.append(f"machine load average before the run: {load[0]} (1 min), {load[1]} (5 min); "
                     "other work on the machine slows every column alike")
    lines.append("")
    if "webhook" in results:
        lines.extend(webhook_table(results["webhook"]))
        lines.append("")
    lines.extend(other_tables(results))
    return "\n".join(lines)


def markdown(results: dict) -> str:
    """The README's table: the same figures as `render`, as Markdown."""
    meta = results.get("meta", {})
    webhook = results.get("webhook") or {}
    servers = _servers(webhook)
    floor = (servers[0][1].get("saturated") or {}).get("events_per_s")
    head = "| | " + " | ".join(label for label, _ in servers) + " | target |"
    lines = [f"{meta.get('run')} run, {meta.get('at')}, {meta.get('cpus')} CPUs (load average "
             f"{(meta.get('load_average_before') or ['?'])[0]} before), commit {meta.get('commit')}", "",
             head, "|---" * (len(servers) + 2) + "|"]

    def row(label: str, cells: list[str], target: str = "") -> None:
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {target} |")

    row("saturated throughput (events/s)", _throughput(servers, "×"), "PG ≥ 0.5× floor")
    row("… lowest–highest round", _floor_spans(servers, "×"))
    row("… against the durable floor", _against_durable(servers, "×"))
    row("CPU per event, ms (web + db)", [
        "-" if not (c := (r.get("saturated") or {}).get("cpu_ms_per_event")) else
        _num(c.get("web"), 2) + (f" + {_num(c['database'], 2)}" if c.get("database") is not None else "")
        for _, r in servers])
    rates = sorted({int(rate) for _, r in servers for rate in (r.get("loads") or {})})
    for rate in rates:
        row(f"ack p50 / p95 / p99 ms at {rate}/s",
            [_triple(((r.get("loads") or {}).get(str(rate)) or {}).get("ack_ms"), ("p50", "p95", "p99"))
             for _, r in servers], "PG p99 < 100 ms" if rate == 50 else "")
    for rate in rates:
        row(f"reply lag p50 / p99 ms at {rate}/s",
            [_triple(((r.get("loads") or {}).get(str(rate)) or {}).get("reply_lag_ms"), ("p50", "p99"))
             for _, r in servers], "PG p99 < 1000 ms" if rate == 50 else "")
    row("RSS per web worker (MB)",
        [" / ".join(_num(x, 1) for x in r.get("rss_mb_per_worker", [])) or "-" for _, r in servers], "< 150 MB")
    lines.append("")
    lines.extend(f"    {line}" for line in other_tables(results))
    return "\n".join(lines)
