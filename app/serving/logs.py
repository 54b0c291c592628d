"""One log line per kind of problem per interval, instead of one (with a traceback) per client.

A flood of bad or slow clients must not flood the log: 1,100 half-sent requests once
wrote 54,482 tracebacks in 6 s. :class:`RateLimitFilter` lets the first record of each
kind (logger + message template) through per interval, drops the rest and says on the
next line how many it dropped. Records about a client's mistake (uvicorn's invalid
requests, our timeouts and refusals, asyncio's accept() running out of file
descriptors) lose their traceback: it names the server's code, not the client's fault.
"""

from __future__ import annotations

import logging
import threading
import time

DEFAULT_INTERVAL_S = 10.0
# loggers whose warnings and errors can be caused by clients
CLIENT_LOGGERS = ("uvicorn.error", "uvicorn", "asyncio", "modelship.serving")
_CLIENT_MESSAGES = (
    "Invalid HTTP request",
    "socket.accept() out of system resource",
    "Exceeded concurrency limit",
    "too many open connections",
    "took over",
    "request head over",
    "Unsupported upgrade request",
)


class RateLimitFilter(logging.Filter):
    """Pass one record per (logger, template) per ``interval_s``; count the others."""

    def __init__(self, interval_s: float = DEFAULT_INTERVAL_S) -> None:
        super().__init__()
        self.interval_s = interval_s
        self._last: dict[tuple[str, str], float] = {}
        self._dropped: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        template = str(record.msg)
        key = (record.name, template)
        now = time.monotonic()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self.interval_s:
                self._dropped[key] = self._dropped.get(key, 0) + 1
                return False
            self._last[key] = now
            dropped = self._dropped.pop(key, 0)
        if any(m in template for m in _CLIENT_MESSAGES):
            record.exc_info = None
            record.exc_text = None
        if dropped:
            record.msg = f"{template} [and {dropped} more like it in the last {self.interval_s:g}s]"
        return True


def install(interval_s: float = DEFAULT_INTERVAL_S) -> RateLimitFilter:
    """Attach one shared filter to every logger clients can make speak (idempotent)."""
    flt = RateLimitFilter(interval_s)
    for name in CLIENT_LOGGERS:
        logger = logging.getLogger(name)
        for old in [f for f in logger.filters if isinstance(f, RateLimitFilter)]:
            logger.removeFilter(old)
        logger.addFilter(flt)
    return flt
