"""A performance regression guard: the Lambda handler's per-request cost as a multiple of a raw
`session.run` (MLP batch 1, JSON; interleaved blocks, median), against a generous threshold.

`make bench` reports the figure (docs/benchmarks.md: 2.8-3.4x raw on this 2-vCPU machine, up to
about 4x when it is busy). The threshold sits above that noise and below what a change that
doubles the handler's overhead gives, such as a thread started per request (the regression this
guard was written for: 8.3x raw here, measured with one put back).
"""

from __future__ import annotations

from bench.guard import handler_ratio, serve_ratio

THRESHOLD = 5.5
SERVE_THRESHOLD = 6.5


def test_the_handler_costs_at_most_a_few_raw_runs() -> None:
    ratio = handler_ratio(blocks=9, calls=100)
    assert ratio.median < THRESHOLD, (
        f"the Lambda handler costs {ratio.median:.2f}x a raw session.run (blocks {ratio.blocks}; "
        f"handler {ratio.handler_us:.1f} us, raw {ratio.raw_us:.1f} us), over the guard's "
        f"{THRESHOLD}x: something now runs per request that did not"
    )


def test_maas_serve_costs_at_most_a_few_raw_runs() -> None:
    """`maas serve`'s app (the middleware, the batcher, the one entry point) the same way."""
    ratio = serve_ratio(blocks=9, calls=100)
    assert ratio.median < SERVE_THRESHOLD, (
        f"maas serve's app costs {ratio.median:.2f}x a raw session.run (blocks {ratio.blocks}; "
        f"it {ratio.handler_us:.1f} us, raw {ratio.raw_us:.1f} us), over the guard's "
        f"{SERVE_THRESHOLD}x: something now runs per request that did not"
    )
