"""A performance regression guard: the Lambda handler's per-request cost as a multiple of a raw
`session.run` (MLP batch 1, JSON; interleaved blocks, median), against a generous threshold.

`make bench` reports the figure (docs/benchmarks.md: about 2x raw here). The threshold sits well
above run-to-run noise and well below what a change that doubles the handler's overhead gives,
such as a thread started per request (the regression this guard was written for: 8x raw).
"""

from __future__ import annotations

from bench.guard import handler_ratio

THRESHOLD = 4.0


def test_the_handler_costs_at_most_a_few_raw_runs() -> None:
    ratio = handler_ratio(blocks=9, calls=100)
    assert ratio.median < THRESHOLD, (
        f"the Lambda handler costs {ratio.median:.2f}x a raw session.run (blocks {ratio.blocks}; "
        f"handler {ratio.handler_us:.1f} us, raw {ratio.raw_us:.1f} us), over the guard's "
        f"{THRESHOLD}x: something now runs per request that did not"
    )
