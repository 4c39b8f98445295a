"""`maas serve`'s model runs on its event loop, batched across requests when that is on.

The request path is the Lambda handler's: `inference_steps` parses, checks and encodes on the
event loop, with no hop to a thread pool (a hop, and the GIL handoffs that come with it, cost
more than a small model's run). Only the run itself goes through `Batcher.run`:

- **adaptive batching** (`MAAS_SERVE_BATCHING`): runs of one model version whose inputs share
  the batch axis (every input and output dimension 0 is -1 in the manifest, and the other
  dimensions and datatypes agree) wait at most `MAAS_SERVE_BATCH_DELAY_MS` for others and run
  as one, up to `MAAS_SERVE_BATCH_MAX_ROWS` rows; each request gets its own rows back. Inputs
  are checked per request before they join a batch, so a bad request fails alone; if the
  batched run fails all the same, its requests run one by one, each getting its own answer.
- **slow runs off the loop**: a model whose last run took longer than `SLOW_RUN_SECONDS` runs
  on one worker thread, so the loop keeps answering health checks and reading other requests
  meanwhile (one thread: concurrent runs only compete for the same cores).
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from functions.core.codec import Array
from functions.core.dataplane import RunCall, Steps, T
from functions.core.errors import DeadlineExceeded
from functions.core.runner import Runner

SLOW_RUN_SECONDS = 0.01
Outputs = dict[str, Array]


@dataclass
class _Waiting:
    """One request's part of a batch (the leader's has no future: it runs the batch)."""

    feed: dict[str, Array]
    rows: int
    timeout: float | None
    future: asyncio.Future[Outputs] | None


@dataclass
class _Batch:
    runner: Runner
    names: list[str]
    waiting: list[_Waiting]
    rows: int
    sealed: asyncio.Future[None]


class Batcher:
    """Runs the model runs of `maas serve`'s requests: batched or alone, inline or on a thread."""

    def __init__(self, *, enabled: bool, max_rows: int, delay_seconds: float) -> None:
        self.enabled = enabled
        self.max_rows = max_rows
        self.delay = delay_seconds
        self._open: dict[tuple[Any, ...], _Batch] = {}
        self._slow: weakref.WeakSet[Runner] = weakref.WeakSet()
        self._thread: ThreadPoolExecutor | None = None
        self.batches = 0  # runs of more than one request, for tests and the benchmark

    async def serve(self, steps: Steps[T]) -> T:
        """Drive `steps` on the loop, its model run through `run`."""
        try:
            call = next(steps)
            while True:
                try:
                    outputs = await self.run(call)
                except Exception as exc:
                    call = steps.throw(exc)
                else:
                    call = steps.send(outputs)
        except StopIteration as done:
            result: T = done.value
            return result

    async def run(self, call: RunCall) -> Outputs:
        """The outputs of `call`: run alone, or as rows of a batch.

        The first request for an open batch leads it: it waits (the delay, or one pass of the
        loop: the requests already read), then runs the batch and hands the others their rows.
        """
        runner = call.runner
        if not self.enabled or not runner.batchable:
            return await self._execute(runner, call.run)
        feed = runner.check_inputs(call.inputs)  # a bad request fails here, alone
        names = runner.output_names(call.outputs)
        rows = _rows(feed)
        if rows is None or rows >= self.max_rows:
            return await self._execute(runner, lambda: runner.run(list(feed.items()), names))
        key = (runner, tuple(names), *((n, a.shape[1:], a.dtype) for n, a in feed.items()))
        batch = self._open.get(key)
        if batch is not None and batch.rows + rows > self.max_rows:
            self._seal(key, batch)
            batch = None
        if batch is None:
            return await self._lead(key, runner, names, _Waiting(feed, rows, call.timeout, None))
        future: asyncio.Future[Outputs] = asyncio.get_running_loop().create_future()
        batch.waiting.append(_Waiting(feed, rows, call.timeout, future))
        batch.rows += rows
        if batch.rows >= self.max_rows:
            self._seal(key, batch)
        return await future

    async def _lead(
        self, key: tuple[Any, ...], runner: Runner, names: list[str], own: _Waiting
    ) -> Outputs:
        loop = asyncio.get_running_loop()
        batch = self._open[key] = _Batch(runner, names, [own], own.rows, loop.create_future())
        try:
            if self.delay > 0:
                timer = loop.call_later(self.delay, self._seal, key, batch)
                await batch.sealed
                timer.cancel()
            else:
                await asyncio.sleep(0)
        except asyncio.CancelledError:  # the others still get their answers
            self._seal(key, batch)
            batch.waiting.remove(own)
            if batch.waiting:
                task = asyncio.ensure_future(self._run_batch(batch))
                task.add_done_callback(_retrieve)
            raise
        self._seal(key, batch)
        return await self._run_batch(batch)

    def _seal(self, key: tuple[Any, ...], batch: _Batch) -> None:
        """`batch` takes no more requests; its leader runs it."""
        if self._open.get(key) is batch:
            del self._open[key]
        if not batch.sealed.done():
            batch.sealed.set_result(None)

    async def _run_batch(self, batch: _Batch) -> Outputs:
        """Run `batch`; hand each follower its rows (or its error); return the leader's."""
        runner, names, waiting = batch.runner, batch.names, batch.waiting
        if len(waiting) > 1:
            self.batches += 1
            feed = {
                name: np.concatenate([w.feed[name] for w in waiting]) for name in waiting[0].feed
            }
            rows = sum(w.rows for w in waiting)
            timeouts = [w.timeout for w in waiting if w.timeout is not None]
            timeout = min(timeouts) if timeouts else None
            try:
                outputs = await self._execute(
                    runner, lambda: runner.run(list(feed.items()), names, timeout=timeout)
                )
            except DeadlineExceeded as exc:  # one by one, each would be as late
                return _settle_all(waiting, exc)
            except Exception:  # noqa: S110 -- isolated below: each request runs alone
                pass
            else:
                if all(out.shape[:1] == (rows,) for out in outputs.values()):
                    parts, start = [], 0
                    for w in waiting:
                        parts.append({n: out[start : start + w.rows] for n, out in outputs.items()})
                        start += w.rows
                    return _settle_all(waiting, *parts)
        # Alone: one request, or a batch that failed or lost its rows.
        results: list[Outputs | Exception] = []
        for w in waiting:
            try:
                result = await self._execute(
                    runner,
                    lambda w=w: runner.run(list(w.feed.items()), names, timeout=w.timeout),  # type: ignore[misc]
                )
            except Exception as exc:
                results.append(exc)
            else:
                results.append(result)
        return _settle_all(waiting, *results)

    async def _execute(self, runner: Runner, run: Callable[[], Outputs]) -> Outputs:
        """`run()` on the loop, or on the worker thread for a runner whose runs are slow."""
        slow = runner in self._slow
        started = time.perf_counter()
        if slow:
            if self._thread is None:
                self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="maas-run")
            result = await asyncio.get_running_loop().run_in_executor(self._thread, run)
        else:
            result = run()
        if (time.perf_counter() - started > SLOW_RUN_SECONDS) != slow:
            if slow:
                self._slow.discard(runner)
            else:
                self._slow.add(runner)
        return result

    def close(self) -> None:
        """Stop the worker thread, if one was started."""
        if self._thread is not None:
            self._thread.shutdown(wait=False)


def _rows(feed: dict[str, Array]) -> int | None:
    """The rows every input has, None when they differ (or an input has no axis)."""
    counts = {a.shape[0] if a.ndim else None for a in feed.values()}
    rows = counts.pop() if len(counts) == 1 else None
    return rows if rows else None


def _settle_all(waiting: list[_Waiting], *outcomes: Outputs | Exception) -> Outputs:
    """Give each follower its outcome (one outcome: the same for all); return the leader's
    (none when the leader left: its batch ran for the others alone)."""
    if len(outcomes) == 1:
        outcomes *= len(waiting)
    own: Outputs | Exception = {}
    for w, outcome in zip(waiting, outcomes, strict=True):
        if w.future is None:
            own = outcome
        elif not w.future.done():  # done: its request was cancelled
            if isinstance(outcome, Exception):
                w.future.set_exception(outcome)
            else:
                w.future.set_result(outcome)
    if isinstance(own, Exception):
        raise own
    return own


def _retrieve(task: asyncio.Future[Outputs]) -> None:
    """A batch run for followers whose leader left: its errors are already theirs."""
    if not task.cancelled():
        task.exception()
