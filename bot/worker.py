"""The worker: delivers the outbox and runs due jobs, pass after pass."""
from __future__ import annotations

import logging
import signal
import threading
import time

from bot import jobs, keycheck
from sqlalchemy.exc import DBAPIError

from bot.db import connect_problem, describe_error

log = logging.getLogger(__name__)
POLL_SECONDS = 0.5        # a due row leaves within about this long after its commit
JOBS_EVERY_SECONDS = 5.0


class Worker:
    def __init__(self, runtime):
        self.rt = runtime
        self.sender = runtime.sender()
        self._stop = False
        self._wake = threading.Event()
        self._last_jobs = -JOBS_EVERY_SECONDS

    def run_once(self) -> dict[str, int]:
        """One pass: recover interrupted rows, run due jobs, send everything due."""
        self.sender.recover_stale()
        figures = jobs.run_due(self.rt)
        while self.sender.send_due() > 0:
            pass
        return {**self.sender.stats, **figures}

    def run_forever(self) -> None:
        if threading.current_thread() is threading.main_thread():
            # The process's own worker: stop cleanly between passes on SIGTERM/SIGINT.
            signal.signal(signal.SIGTERM, lambda *_: self.stop())
            signal.signal(signal.SIGINT, lambda *_: self.stop())
        log.info("worker started")
        keycheck.warn_if_keys_open_nothing(self.rt)   # the retention jobs erase nothing they cannot open
        while not self._stop:
            try:
                self.sender.recover_stale()
                if time.monotonic() - self._last_jobs >= JOBS_EVERY_SECONDS:
                    jobs.run_due(self.rt)
                    self._last_jobs = time.monotonic()
                sent = self.sender.send_due(stopping=lambda: self._stop)
            except Exception as exc:  # noqa: BLE001 - keep the worker alive; the rows stay queued
                # Not connecting says why (no such database, a refused password, nothing listening) and names
                # DATABASE_URL; any other failure is described without its message, which may quote a row.
                unreachable = connect_problem(exc, self.rt.config.database_url) if isinstance(exc, DBAPIError) \
                    else None
                log.error("worker pass failed: %s", unreachable or describe_error(exc))
                sent = 0
            if not sent:
                self._wake.wait(POLL_SECONDS)
        log.info("worker stopped")

    def stop(self) -> None:
        self._stop = True
        self._wake.set()
