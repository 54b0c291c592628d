"""Micro-batching: concurrent requests share one ``session.run``.

Per row, one call over 64 rows costs a fraction of 64 calls over one row (tree
ensembles and matrix products vectorise), so under load the server gathers the rows
of requests that arrive while the model is busy and runs them together.

Rules:
* nothing running and nothing queued: run at once (no added wait at concurrency 1);
* while a run is in flight, arrivals queue; the next run takes up to ``max_batch``
  rows as soon as a slot frees. With more than one slot, a partial batch waits at
  most ``max_wait`` for company before it takes a free slot;
* the run happens in a worker thread, so the event loop keeps accepting and parsing;
* every caller gets exactly its own rows back; if a shared run fails, each request
  is re-run alone so one caller's bad input cannot fail the others.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

Feeds = dict[str, np.ndarray]


class _Item:
    __slots__ = ("feeds", "future", "rows", "t0")

    def __init__(self, feeds: Feeds, rows: int, future: asyncio.Future) -> None:
        self.feeds = feeds
        self.rows = rows
        self.future = future
        self.t0 = time.monotonic()


class Batcher:
    def __init__(
        self,
        run: Callable[[Feeds], list[Any]],
        *,
        enabled: bool,
        max_batch: int = 64,
        max_wait_s: float = 0.002,
        slots: int = 1,
        on_batch: Callable[[int], None] | None = None,
        inline_below_s: float = 0.0,
    ) -> None:
        self._run = run
        self.enabled = enabled
        self.max_batch = max(1, max_batch)
        self.max_wait_s = max_wait_s
        self.slots = max(1, slots)
        self._queue: collections.deque[_Item] = collections.deque()
        self._queued_rows = 0
        self._inflight = 0
        self._timer: asyncio.TimerHandle | None = None
        self._executor = ThreadPoolExecutor(max_workers=self.slots, thread_name_prefix="ort-run")
        self._on_batch = on_batch or (lambda n: None)
        self._closed = False
        self._scheduled = False
        # runs expected to take less than this run on the event loop itself (0 = never)
        self.inline_below_s = inline_below_s
        self._per_row_s = 1.0  # pessimistic until the first run is measured
        self._runs = 0

    @property
    def busy(self) -> int:
        """Requests accepted and not yet answered by the model."""
        return self._inflight + len(self._queue)

    async def submit(self, feeds: Feeds, rows: int) -> list[Any]:
        loop = asyncio.get_running_loop()
        if self._closed:
            from app.serving.model import RequestError

            raise RequestError(503, "The server is shutting down; send the request again.")
        item = _Item(feeds, rows, loop.create_future())
        self._queue.append(item)
        self._queued_rows += rows
        if not self._scheduled:
            # Dispatch after the callbacks already due in this loop iteration: requests that
            # arrived together are parsed first and share the run. At concurrency 1 this
            # costs one loop turn (microseconds), not a timed wait.
            self._scheduled = True
            loop.call_soon(self._dispatch_soon, loop)
        return await item.future

    def _dispatch_soon(self, loop: asyncio.AbstractEventLoop) -> None:
        self._scheduled = False
        self._dispatch(loop)

    # ---- scheduling (event loop thread only) --------------------------------
    def _dispatch(self, loop: asyncio.AbstractEventLoop) -> None:
        while self._queue and self._inflight < self.slots:
            if (
                self._inflight
                and self.enabled
                and self._queued_rows < self.max_batch
                and self.max_wait_s > 0
            ):
                # a slot is free but another run is busy: give the batch a moment to fill
                due = self._queue[0].t0 + self.max_wait_s
                if time.monotonic() < due:
                    if self._timer is None:
                        self._timer = loop.call_at(
                            loop.time() + max(0.0, due - time.monotonic()), self._on_timer, loop
                        )
                    return
            self._start(loop, self._take())

    def _on_timer(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer = None
        self._dispatch(loop)

    def _take(self) -> list[_Item]:
        first = self._queue.popleft()
        items, rows = [first], first.rows
        if self.enabled:
            while self._queue and rows + self._queue[0].rows <= self.max_batch:
                nxt = self._queue.popleft()
                items.append(nxt)
                rows += nxt.rows
        self._queued_rows -= rows
        return items

    def _start(self, loop: asyncio.AbstractEventLoop, items: list[_Item]) -> None:
        rows = sum(it.rows for it in items)
        if (
            len(items) == 1
            and self._inflight == 0
            and self.inline_below_s > 0
            and self._per_row_s * rows < self.inline_below_s
        ):
            # A lone request on a cheap model (the concurrency-1 case): the thread hand-off
            # costs more than the run, and the loop is blocked only that long. Under load
            # batches hold several requests and go to the thread, so the loop keeps parsing.
            self._deliver(items, self._run_items(items))
            return
        self._inflight += 1
        fut = loop.run_in_executor(self._executor, self._run_items, items)
        fut.add_done_callback(lambda f: self._finished(loop, items, f))

    def _finished(self, loop: asyncio.AbstractEventLoop, items: list[_Item], f: Any) -> None:
        self._inflight -= 1
        try:
            results = f.result()
        except BaseException as exc:  # the executor itself failed (e.g. shut down)
            results = [exc] * len(items)
        self._deliver(items, results)
        self._dispatch(loop)

    @staticmethod
    def _deliver(items: list[_Item], results: list[Any]) -> None:
        for item, res in zip(items, results, strict=True):
            if item.future.done():  # the caller went away
                continue
            if isinstance(res, BaseException):
                item.future.set_exception(res)
            else:
                item.future.set_result(res)

    # ---- the run (worker thread) ---------------------------------------------
    def _run_items(self, items: list[_Item]) -> list[Any]:
        t0 = time.perf_counter()
        try:
            return self._run_items_timed(items)
        finally:
            rows = sum(it.rows for it in items)
            per_row = (time.perf_counter() - t0) / max(1, rows)
            if self._runs == 0:
                self._per_row_s = per_row
            else:
                self._per_row_s = 0.8 * self._per_row_s + 0.2 * per_row
            self._runs += 1

    def _run_items_timed(self, items: list[_Item]) -> list[Any]:
        if len(items) == 1:
            try:
                self._on_batch(items[0].rows)
                return [self._run(items[0].feeds)]
            except Exception as exc:
                return [exc]
        names = list(items[0].feeds)
        feeds = {n: np.concatenate([it.feeds[n] for it in items], axis=0) for n in names}
        total = sum(it.rows for it in items)
        try:
            self._on_batch(total)
            outs = self._run(feeds)
            bounds = np.cumsum([0] + [it.rows for it in items])
            results: list[Any] = []
            for i in range(len(items)):
                a, b = int(bounds[i]), int(bounds[i + 1])
                results.append([_rows(o, a, b, total) for o in outs])
            return results
        except Exception:
            # one caller's input broke the shared run: answer each alone
            results = []
            for it in items:
                try:
                    results.append(self._run(it.feeds))
                except Exception as exc:
                    results.append(exc)
            return results

    async def close(self) -> None:
        """Finish what is queued and in flight, then stop the thread."""
        self._closed = True
        while self._queue or self._inflight:
            await asyncio.sleep(0.01)
        self._executor.shutdown(wait=True)


def _rows(output: Any, a: int, b: int, total: int) -> Any:
    if len(output) != total:
        raise ValueError(f"output has {len(output)} rows for a batch of {total}")
    return output[a:b]
