"""Captured requests: a sampled share of prediction requests, written as JSON Lines.

Opt-in (``MODELSHIP_CAPTURE_RATE`` above 0). Whether a request is captured is decided
when it has been answered (``random() < rate``); the request only appends a reference to
its parsed inputs and the model's outputs to a bounded in-memory queue, and a background
thread, waking a few times a second, turns what has gathered into lines and writes them
(no wake-up, lock or system call per request). A full queue drops the record
(``modelship_capture_dropped_total``); a request never waits on the disk.

One line per captured request, with no key, no headers and no client address::

    {"v": 1, "t": 1765000000.123, "route": "/predict", "n": 3,
     "columns": ["tenure_months", "plan", "age"], "rows": [[12, "basic", 34], ...],
     "predictions": [0, 1, 0]}

A tensor model (no named columns) writes ``"columns": null`` and ``"shape"`` instead of
``rows``. Each worker process writes its own files, ``capture-<pid>-<seq>.jsonl``; a
file is closed at a quarter of that worker's share of ``MODELSHIP_CAPTURE_MAX_MB``, and
then the oldest closed files in the folder are removed so that the folder, the files
still being written included, stays under the bound.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import re
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np
import orjson

log = logging.getLogger("modelship.serving")
_OPT = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS
FILE_RE = re.compile(r"^capture-(\d+)-(\d+)\.jsonl$")
QUEUE_SIZE = 1024  # records waiting for the writer; beyond: dropped and counted
WRITE_INTERVAL_S = 0.2  # how often the writer wakes to write what has gathered


def capture_files(directory: Path) -> list[Path]:
    """The capture files in ``directory``, oldest first (by time written, then name)."""
    out: list[tuple[float, int, int, Path]] = []
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return []
    for e in entries:
        m = FILE_RE.match(e.name)
        if not m:
            continue
        try:
            mtime = e.stat().st_mtime
        except OSError:
            continue
        out.append((mtime, int(m.group(1)), int(m.group(2)), Path(e.path)))
    out.sort(key=lambda x: (x[0], x[1], x[2]))
    return [p for *_, p in out]


def read_lines(directory: Path, since: float | None = None) -> bytes:
    """All workers' captured lines, newest files last; with ``since`` only lines whose
    ``t`` is later. A broken line (one still being written) is left out."""
    chunks: list[bytes] = []
    for path in capture_files(directory):
        try:
            data = path.read_bytes()
        except OSError:  # removed by a worker's rotation meanwhile
            continue
        # a line is whole once its newline is written: the text after the last one is not
        for line in data.split(b"\n")[:-1]:
            if not line.strip():
                continue
            if since is not None:
                try:
                    t = orjson.loads(line).get("t")
                except (orjson.JSONDecodeError, AttributeError):
                    continue
                if not isinstance(t, int | float) or t <= since:
                    continue
            chunks.append(line + b"\n")
    return b"".join(chunks)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


class Capture:
    """One worker's sampler, queue and writer thread."""

    def __init__(
        self,
        directory: Path,
        rate: float,
        max_mb: float,
        workers: int = 1,
        *,
        queue_size: int = QUEUE_SIZE,
    ) -> None:
        self.directory = Path(directory)
        self.rate = max(0.0, min(1.0, rate))
        self.max_bytes = int(max_mb * 1024 * 1024)
        self.workers = max(1, workers)
        # a file is closed at a quarter of this worker's share of the bound
        self.file_limit = max(1, self.max_bytes // (4 * self.workers))
        self.records = 0  # lines written
        self.dropped = 0  # sampled but not written (queue full, line too big, disk error)
        self._queue_size = queue_size
        # deque.append and popleft are atomic: the request side takes no lock
        self._queue: deque[tuple[Any, ...]] = deque()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._seq = 0
        self._file: Any = None
        self._path: Path | None = None
        self._size = 0

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def start(self) -> None:
        """Start the writer thread (in the worker process: after any fork)."""
        if not self.enabled or self._thread is not None:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        self._pid = os.getpid()
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="modelship-capture", daemon=True)
        self._thread.start()

    def offer(self, route: str, runtime: Any, feeds: dict[str, Any], n: int, outputs: Any) -> None:
        """Called after a successful answer: maybe queue it. Never blocks."""
        if self.rate <= 0 or (self.rate < 1 and random.random() >= self.rate):
            return
        if self._thread is None:
            self.start()
        if len(self._queue) >= self._queue_size:
            self.dropped += 1
            return
        self._queue.append((time.time(), route, runtime, feeds, n, outputs))

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued, then stop the thread and close the file."""
        thread = self._thread
        if thread is None:
            return
        self._stop.set()
        thread.join(timeout)
        self._thread = None

    # ---- the writer thread ------------------------------------------------------
    def _loop(self) -> None:
        try:
            while True:
                stopping = self._stop.wait(WRITE_INTERVAL_S)
                self._drain()
                if stopping:
                    break
        finally:
            self._close_file()

    def _drain(self) -> None:
        """Write every record gathered so far, then hand the lines to the disk once."""
        while self._queue:
            item = self._queue.popleft()
            try:
                self._write(record_line(*item))
            except Exception as exc:  # never let one record stop the writer
                self.dropped += 1
                log.warning("a captured request could not be written: %s", exc)
        if self._file is not None:
            try:
                self._file.flush()
            except OSError as exc:
                log.warning("captured requests could not be written: %s", exc)

    def _write(self, line: bytes) -> None:
        if len(line) > self.file_limit:
            self.dropped += 1  # one line larger than a file: kept nowhere
            return
        if self._file is None or self._size + len(line) > self.file_limit:
            self._rotate()
        self._file.write(line)
        self._size += len(line)
        self.records += 1

    def _close_file(self) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
            self._file = None

    def _rotate(self) -> None:
        self._close_file()
        self.directory.mkdir(parents=True, exist_ok=True)
        if self._seq == 0:  # a restarted worker may have the pid of an earlier one
            mine = [FILE_RE.match(p.name) for p in self.directory.glob(f"capture-{self._pid}-*")]
            self._seq = max((int(m.group(2)) for m in mine if m), default=0)
        self._seq += 1
        self._path = self.directory / f"capture-{self._pid}-{self._seq:06d}.jsonl"
        self._file = open(self._path, "ab")  # noqa: SIM115 -- kept open between lines
        self._size = 0
        self._trim()

    def _trim(self) -> None:
        """Remove the oldest closed files until the folder, with room for every worker's
        open file to fill, is under the bound. Files being written are the newest of each
        live worker; those of workers that are gone count as closed."""
        files = capture_files(self.directory)
        newest: dict[int, Path] = {}
        for p in files:
            m = FILE_RE.match(p.name)
            if m:
                newest[int(m.group(1))] = p
        open_files = {p for pid, p in newest.items() if pid == self._pid or _alive(pid)}
        closed: list[tuple[Path, int]] = []
        for p in files:
            if p in open_files or p == self._path:
                continue
            try:
                closed.append((p, p.stat().st_size))
            except OSError:
                continue
        room = self.max_bytes - max(len(open_files), self.workers) * self.file_limit
        total = sum(size for _, size in closed)
        for p, size in closed:
            if total <= room:
                break
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
            total -= size


def record_line(
    t: float, route: str, runtime: Any, feeds: dict[str, Any], n: int, outputs: Any
) -> bytes:
    """One JSON line: the caller's parsed values and the answered predictions."""
    rec: dict[str, Any] = {"v": 1, "t": round(t, 3), "route": route, "n": n}
    rows = _rows(runtime, feeds, n)
    if rows is None:
        rec["columns"] = None
        first = next(iter(feeds.values()), None)
        rec["shape"] = list(first.shape) if isinstance(first, np.ndarray) else [n]
    else:
        rec["columns"] = list(runtime.column_names)
        rec["rows"] = rows
    pred = runtime.predictions(outputs)[0]
    if isinstance(pred, np.ndarray) and pred.dtype == object:
        pred = pred.tolist()
    rec["predictions"] = pred
    return orjson.dumps(rec, option=_OPT) + b"\n"


def _rows(runtime: Any, feeds: dict[str, Any], n: int) -> Any:
    """Rows in the signature's column order, from the input tensors; None for a model
    without named columns (or tensors that do not carry them)."""
    columns = getattr(runtime, "columns", None)
    if not columns:
        return None
    # the common case, one [n, k] numeric tensor holding the columns in order: orjson
    # writes it as it is (float32 values in their own precision, NaN as null)
    first = feeds.get(columns[0].input)
    if (
        isinstance(first, np.ndarray)
        and first.ndim == 2
        and first.shape == (n, len(columns))
        and first.dtype.kind in "fiub"
        and all(c.input == columns[0].input and c.index == i for i, c in enumerate(columns))
    ):
        return first
    cols: list[list[Any]] = []
    for c in columns:
        arr = feeds.get(c.input)
        if not isinstance(arr, np.ndarray) or arr.shape[:1] != (n,):
            return None
        if arr.ndim == 2:
            if c.index >= arr.shape[1]:
                return None
            arr = arr[:, c.index]
        elif arr.ndim != 1:
            return None
        if arr.dtype == object:
            cols.append(arr.tolist())
        elif arr.dtype.kind == "f":
            # NaN (a missing value) as null; float32 values in their own precision
            cols.append([None if v != v else v for v in arr])
        else:
            cols.append(arr.tolist())
    return [list(r) for r in zip(*cols, strict=True)]


__all__ = ["Capture", "capture_files", "read_lines", "record_line"]
