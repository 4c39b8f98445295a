"""Time budgets for runs: one long-lived watchdog thread per process stops the late ones.

onnxruntime stops a run between kernels when its RunOptions' `terminate` flag is set. A timer
thread per run costs more than a small model's whole run (measured: docs/benchmarks.md), so one
daemon thread keeps every budget in a heap and sleeps until the earliest one falls due; arming
and releasing a budget is a heap push and a flag under an uncontended lock.
"""

from __future__ import annotations

import heapq
import itertools
import os
import threading
import time
from collections.abc import Callable
from typing import Any

# Released budgets stay in the heap until they fall due; rebuild it once they dominate.
_COMPACT_SLACK = 64


class Budget:
    """One armed run: its RunOptions, when it falls due, and whether it was stopped."""

    __slots__ = ("options", "due", "expired", "done")

    def __init__(self, options: Any, due: float) -> None:
        self.options = options
        self.due = due
        self.expired = False
        self.done = False


class Watchdog:
    """Sets `terminate` on the RunOptions of runs that outlive their budget."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        options: Callable[[], Any] | None = None,
    ) -> None:
        self._clock = clock
        self._options = options or _run_options
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)  # for the thread's waits and wake-ups
        self._heap: list[tuple[float, int, Budget]] = []
        self._compact_at = _COMPACT_SLACK
        self._next = float("inf")  # when the thread will look next; earlier budgets wake it
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None

    def arm(self, seconds: float) -> Budget:
        """A budget of `seconds` from now; pass `budget.options` to `session.run`."""
        budget = Budget(self._options(), self._clock() + seconds)
        with self._lock:  # the Condition's own lock, without its Python-level wrapper
            heap = self._heap
            while heap and heap[0][2].done:  # one request at a time: the last one, released
                heapq.heappop(heap)
            heapq.heappush(heap, (budget.due, next(self._seq), budget))
            if len(heap) > self._compact_at:  # released out of order (concurrent requests)
                self._compact()
            if self._thread is None:
                self._start()
            if budget.due < self._next:
                self._cond.notify()
        return budget

    @staticmethod
    def release(budget: Budget) -> None:
        """The run finished (or failed): its budget no longer matters (one flag, no lock).

        The watchdog sets `terminate` only on budgets not yet released when it looks; a flag
        set on a finished run's own RunOptions is harmless: they are never reused.
        """
        budget.done = True

    @property
    def pending(self) -> int:
        """Budgets armed and not yet released (for tests and diagnostics)."""
        with self._lock:
            return sum(1 for entry in self._heap if not entry[2].done)

    def _compact(self) -> None:
        """Drop released budgets that have not fallen due yet (called under the lock)."""
        self._heap = [entry for entry in self._heap if not entry[2].done]
        heapq.heapify(self._heap)
        self._compact_at = 2 * len(self._heap) + _COMPACT_SLACK

    def _start(self) -> None:
        self._thread = threading.Thread(target=self._watch, name="maas-watchdog", daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        with self._cond:
            while True:
                now = self._clock()
                while self._heap and (self._heap[0][2].done or self._heap[0][0] <= now):
                    _, _, budget = heapq.heappop(self._heap)
                    if not budget.done:
                        budget.expired = True
                        budget.options.terminate = True  # onnxruntime stops between kernels
                self._next = self._heap[0][0] if self._heap else float("inf")
                self._cond.wait(None if not self._heap else max(0.0, self._next - now))

    def _after_fork(self) -> None:
        """A forked child has no watchdog thread: start afresh (the parent's runs are not ours)."""
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)  # for the thread's waits and wake-ups
        self._heap, self._next, self._thread = [], float("inf"), None
        self._compact_at = _COMPACT_SLACK


_RunOptions: Any = None


def _run_options() -> Any:
    """A fresh onnxruntime RunOptions (onnxruntime imported on first use)."""
    global _RunOptions
    if _RunOptions is None:
        from onnxruntime import RunOptions

        _RunOptions = RunOptions
    return _RunOptions()


_default: Watchdog | None = None


def default_watchdog() -> Watchdog:
    """The process's watchdog (its thread starts when the first budget is armed)."""
    global _default
    if _default is None:
        _default = Watchdog()
        os.register_at_fork(after_in_child=_default._after_fork)
    return _default
