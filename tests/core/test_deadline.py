"""The watchdog: one thread per process stops late runs; arming a budget starts no thread."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from functions.core.deadline import Watchdog
from functions.core.errors import DeadlineExceeded
from functions.core.runner import Runner
from functions.core.sessions import make_session
from model_build.inspect_onnx import manifest_for
from tests.models import multi_io, slow_model


class Options:
    """Stands in for onnxruntime's RunOptions: only `terminate` matters here."""

    terminate = False


def wait_until(condition: object, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return True
        time.sleep(0.005)
    return False


def test_a_budget_that_falls_due_is_stopped() -> None:
    watchdog = Watchdog(options=Options)
    budget = watchdog.arm(0.05)
    assert not budget.expired
    assert wait_until(lambda: budget.expired)
    assert budget.options.terminate is True
    watchdog.release(budget)
    assert watchdog.pending == 0


def test_a_released_budget_is_never_stopped() -> None:
    watchdog = Watchdog(options=Options)
    budget = watchdog.arm(0.05)
    watchdog.release(budget)
    time.sleep(0.15)
    assert not budget.expired and budget.options.terminate is False


def test_an_earlier_budget_wakes_the_watchdog() -> None:
    # Given the watchdog asleep until a far budget falls due
    watchdog = Watchdog(options=Options)
    far = watchdog.arm(60)
    # When a nearer one is armed, it is stopped on time, not after the far one
    near = watchdog.arm(0.05)
    assert wait_until(lambda: near.expired, seconds=2)
    assert not far.expired
    watchdog.release(near)
    watchdog.release(far)


def test_released_budgets_do_not_pile_up() -> None:
    watchdog = Watchdog(options=Options)
    for _ in range(10_000):
        watchdog.release(watchdog.arm(30))
    assert watchdog.pending == 0
    assert len(watchdog._heap) <= 2 * 64  # compacted as it goes: bounded, not 10,000


def test_arming_starts_no_thread_per_run(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a runner whose runs have a time budget, the watchdog already running
    artifact = multi_io()
    manifest, _ = manifest_for(artifact, name="multi")
    runner = Runner(manifest, make_session(artifact, 1), watchdog=Watchdog())
    inputs = [("features", np.ones((1, 4), np.float32)), ("ids", np.array([1], np.int64))]
    runner.run(inputs, timeout=5.0)
    # When it serves many requests
    started: list[threading.Thread] = []
    original = threading.Thread.start

    def counting(self: threading.Thread) -> None:
        started.append(self)
        original(self)

    monkeypatch.setattr(threading.Thread, "start", counting)
    for _ in range(200):
        runner.run(inputs, timeout=5.0)
    # Then not one thread was started for them
    assert started == []
    assert runner.watchdog.pending == 0


def test_a_late_run_is_stopped_with_the_same_message() -> None:
    artifact = slow_model()
    manifest, _ = manifest_for(artifact, name="slow")
    runner = Runner(manifest, make_session(artifact, 1), watchdog=Watchdog())
    x = [("x", np.ones((1, 1024), np.float32))]
    start = time.perf_counter()
    runner.run(x)
    whole = time.perf_counter() - start
    start = time.perf_counter()
    with pytest.raises(DeadlineExceeded) as caught:
        runner.run(x, timeout=0.1)
    assert time.perf_counter() - start < whole  # stopped, not waited out
    assert str(caught.value) == (
        "model 'slow' did not finish within its time budget of 0.10 s (MAAS_MAX_INFERENCE_SECONDS, "
        "or the Lambda's remaining time); the run was stopped"
    )
