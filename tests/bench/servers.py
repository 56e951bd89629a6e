"""Processes the benchmark runs: gunicorn (2 sync workers, as the Procfile), the worker, a scratch database."""
from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.fernet import Fernet

PROJECT_ROOT = Path(__file__).resolve().parents[2]
# The local server the benchmark creates its scratch databases on (TEST_DATABASE_URL's server when set).
PG_ADMIN_URL = (os.environ.get("BENCH_PG_URL") or os.environ.get("TEST_DATABASE_URL")
                or "postgresql://postgres@127.0.0.1:5432/postgres").replace("postgres://", "postgresql://", 1)
OFFICES = ("sakata", "otaru")
WEB_WORKERS = 2


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def channel_secret(office: str) -> str:
    return f"bench-channel-secret-{office}"


def channel_env(offices: tuple[str, ...] = OFFICES) -> dict[str, str]:
    env: dict[str, str] = {}
    for office in offices:
        env[f"LINE_CHANNEL_SECRET_{office.upper()}"] = channel_secret(office)
        env[f"LINE_CHANNEL_ACCESS_TOKEN_{office.upper()}"] = f"bench-token-{office}"
    return env


def all_day_profiles(directory: Path) -> Path:
    """The shipped office profiles with pushes allowed at any hour, in `directory`.

    The benchmark measures how fast the worker delivers and a broadcast goes, whatever the hour it is run at; the
    shipped `push_hours` (08:00-21:00) would hold its pushes and refuse its broadcast at night."""
    from bot.config import DEFAULT_OFFICES_DIR

    directory.mkdir(parents=True, exist_ok=True)
    for profile in sorted(DEFAULT_OFFICES_DIR.glob("*.yaml")):
        text, found = re.subn(r'^push_hours:\n  start: "\d\d:\d\d"\n  end: "\d\d:\d\d"\n',
                              'push_hours:\n  start: "00:00"\n  end: "24:00"\n  staff_cards_on_closed_days: true\n', profile.read_text(encoding="utf-8"),
                              flags=re.M)
        if found != 1:
            raise RuntimeError(f"{profile.name}: no push_hours block to open for the benchmark")
        (directory / profile.name).write_text(text, encoding="utf-8")
    return directory


def app_env(database_url: str, line_url: str, instance: Path, offices: tuple[str, ...] = OFFICES) -> dict[str, str]:
    """madoguchi's production environment, pointed at the fake and a scratch database, pushes open all day."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LINE_", "APP_", "DATABASE_URL"))}
    env.update({
        "APP_ENV": "production",
        "DATABASE_URL": database_url,
        "LINE_API_BASE_URL": line_url,
        "LINE_API_DATA_BASE_URL": line_url,
        "PUBLIC_BASE_URL": "https://madoguchi.bench.invalid",
        "SECRET_KEY": "bench-" + uuid.uuid4().hex,
        "DATA_ENCRYPTION_KEY": Fernet.generate_key().decode(),
        "INSTANCE_PATH": str(instance),
        "OFFICES_DIR": str(all_day_profiles(instance / "offices")),
        "PYTHONWARNINGS": "ignore",
        **channel_env(offices),
    })
    return env


def flask(args: list[str], env: dict[str, str], log: Path | None = None,
          input_text: str | None = None) -> subprocess.CompletedProcess:
    """`flask --app app …` as the release/worker processes run it."""
    out = open(log, "ab") if log else subprocess.DEVNULL
    try:
        return subprocess.run([sys.executable, "-m", "flask", "--app", "app", *args], cwd=PROJECT_ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=out, input=input_text, text=True, check=True)
    finally:
        if log:
            out.close()


def start_flask(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    with open(log, "ab") as out:
        return subprocess.Popen([sys.executable, "-m", "flask", "--app", "app", *args], cwd=PROJECT_ROOT, env=env,
                                stdout=out, stderr=subprocess.STDOUT)


def stop(process: subprocess.Popen, timeout: float = 10) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class Gunicorn:
    """One gunicorn master with sync workers on a free loopback port."""

    target: str
    env: dict[str, str]
    log: Path
    workers: int = WEB_WORKERS
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, ready_path: str = "/healthz", timeout: float = 60) -> "Gunicorn":
        command = [sys.executable, "-m", "gunicorn", "--workers", str(self.workers), "--bind",
                   f"127.0.0.1:{self.port}", "--timeout", "30", self.target]  # as the Procfile
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=self.env, stdout=out,
                                            stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn {self.target} exited; see {self.log}")
            if _answers(self.url + ready_path) and len(self.worker_pids()) >= self.workers:
                return self
            time.sleep(0.1)
        raise RuntimeError(f"gunicorn {self.target} did not answer within {timeout} s; see {self.log}")

    def worker_pids(self) -> list[int]:
        return children(self.process.pid) if self.process else []

    def worker_rss_mb(self) -> list[float]:
        return [rss_mb(pid) for pid in self.worker_pids()]

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def children(pid: int) -> list[int]:
    """Direct children of a process (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == pid:
            found.append(int(entry.name))
    return sorted(found)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def postgres_backends(database: str) -> list[int]:
    """Server processes serving connections to one database (their title names it)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
        except OSError:
            continue
        if title.startswith("postgres: ") and f" {database} " in title:
            found.append(int(entry.name))
    return found


class CpuMeter:
    """CPU used by a changing set of processes between `start()` and `stop()`."""

    def __init__(self, pids_now):
        self._pids_now = pids_now
        self._start: dict[int, float] = {}

    def start(self) -> None:
        self._start = {pid: cpu_seconds(pid) for pid in self._pids_now()}

    def stop(self) -> float:
        return sum(cpu_seconds(pid) - self._start.get(pid, 0.0) for pid in self._pids_now())


def rss_mb(pid: int) -> float:
    """Resident set size (VmRSS) of a process in MiB; 0 when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


@contextlib.contextmanager
def postgres_database(admin_url: str = PG_ADMIN_URL) -> Iterator[str]:
    """A fresh database on the local server, dropped afterwards; yields its (driverless) URL."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    driver_url = admin_url.replace("postgresql://", "postgresql+psycopg://", 1)
    engine = create_engine(driver_url, isolation_level="AUTOCOMMIT")
    name = f"madoguchi_bench_{uuid.uuid4().hex[:10]}"
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()


def postgres_available(admin_url: str = PG_ADMIN_URL) -> bool:
    from sqlalchemy import create_engine, text

    engine = create_engine(admin_url.replace("postgresql://", "postgresql+psycopg://", 1),
                           connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return True
    except Exception:  # noqa: BLE001 - any failure means: no PostgreSQL for this run
        return False
    finally:
        engine.dispose()
