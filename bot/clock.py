"""The clock the whole app reads: Asia/Tokyo, real time unless development shifts it."""
from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

TOKYO = ZoneInfo("Asia/Tokyo")


def parse_instant(text: str) -> datetime:
    """ISO 8601; a value without an offset is Asia/Tokyo."""
    value = datetime.fromisoformat(text.strip())
    if value.tzinfo is None:
        value = value.replace(tzinfo=TOKYO)
    return value.astimezone(TOKYO)


class Clock:
    """Real time plus an offset shared through the database (development only).

    The offset lives in the `app_settings` row `clock_offset`, so the web processes and the
    worker all see the same moved clock. `freeze()` pins this process only (tests, `--now`).
    """

    CACHE_SECONDS = 1.0

    def __init__(self, read_offset=None):
        self._read_offset = read_offset  # callable -> float seconds, or None in production
        self._frozen: datetime | None = None
        self._offset = 0.0
        self._read_at = -1e9
        self._lock = threading.Lock()

    def now(self) -> datetime:
        if self._frozen is not None:
            return self._frozen
        return datetime.now(TOKYO) + timedelta(seconds=self._current_offset())

    def device_now(self) -> datetime:
        """The time on a person's own device, which an authenticator app's one-time codes follow: real time,
        without the development offset (the simulator's clock, APP_FAKE_NOW); a frozen clock (tests) pins it."""
        if self._frozen is not None:
            return self._frozen
        return datetime.now(TOKYO)

    def freeze(self, at: datetime | None) -> None:
        self._frozen = at.astimezone(TOKYO) if at is not None else None

    def advance(self, **delta) -> None:
        if self._frozen is None:
            raise RuntimeError("advance() needs a frozen clock")
        self._frozen = self._frozen + timedelta(**delta)

    def forget(self) -> None:
        """Drop the cached offset (after this process changed it)."""
        self._read_at = -1e9

    def _current_offset(self) -> float:
        if self._read_offset is None:
            return 0.0
        mono = time.monotonic()
        if mono - self._read_at > self.CACHE_SECONDS:
            with self._lock:
                try:
                    self._offset = float(self._read_offset() or 0.0)
                except Exception:  # noqa: BLE001 - a clock must never take the app down
                    pass
                self._read_at = mono
        return self._offset
