"""`python -m bench.compression`: each compressed artifact of an example (the CNN by default,
`--example transformer` for the text transformer) against fp32, in one run.

Size, held-out accuracy and agreement, and onnxruntime time per `session.run` relative to the
fp32 reference at several batch sizes. Timings are interleaved (every artifact measured in turn,
several rounds) so that drift on a shared machine affects all of them alike.
"""

from __future__ import annotations

import argparse
import platform
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import orjson
from rich.console import Console
from rich.table import Table

from bench.timing import measure
from functions.core.sessions import make_session, usable_cpus
from model_build.compress import BuildError, optimize, quantize
from model_build.examples import EXAMPLES
from model_build.gate import predictions
from model_build.inspect_onnx import custom_ops_of

ROOT = Path(__file__).resolve().parent.parent
MODES = ("none", "fp16", "int8-dynamic", "int8-static")


def _timer(session: ort.InferenceSession, feed: dict[str, np.ndarray]) -> Callable[[], object]:
    return lambda: session.run(None, feed)


def run(
    *,
    quick: bool,
    seconds: float,
    rounds: int,
    batches: list[int],
    threads: list[int],
    example: str = "cnn",
) -> list[dict[str, Any]]:
    """Build every artifact of `example` and measure it; return one row per mode and batch."""
    console = Console()
    with console.status(f"training {example}..."):
        trained = EXAMPLES[example].train(quick, None)
    reference = optimize(trained.onnx_bytes)
    labels = trained.eval_labels
    artifacts: dict[str, bytes] = {}
    for mode in MODES:
        try:
            artifacts[mode] = quantize(reference, mode, trained.calibration)[0]
        except BuildError as exc:
            console.print(f"{mode}: not built: {exc}")
    rows: list[dict[str, Any]] = []
    for count in threads:
        sessions = {
            mode: make_session(model, count, custom_ops=custom_ops_of(model))
            for mode, model in artifacts.items()
        }
        rows += _measure(
            sessions,
            artifacts,
            reference,
            trained.eval_inputs,
            trained.score_output,
            labels,
            batches,
            count,
            seconds,
            rounds,
        )
    _print(console, rows, example, len(labels) if labels is not None else 0)
    return rows


def _measure(
    sessions: dict[str, ort.InferenceSession],
    artifacts: dict[str, bytes],
    reference: bytes,
    inputs: dict[str, np.ndarray],
    score: str,
    labels: Any,
    batches: list[int],
    threads: int,
    seconds: float,
    rounds: int,
) -> list[dict[str, Any]]:
    ref_top1 = predictions(sessions["none"].run([score], inputs)[0])
    rows: list[dict[str, Any]] = []
    for batch in batches:
        feed = {name: np.ascontiguousarray(array[:batch]) for name, array in inputs.items()}
        samples: dict[str, list[float]] = {mode: [] for mode in sessions}
        for _ in range(rounds):
            for mode, session in sessions.items():
                samples[mode].append(measure(_timer(session, feed), seconds=seconds).p50_us)
        base = float(np.median(samples["none"]))
        for mode, session in sessions.items():
            top1 = predictions(session.run([score], inputs)[0])
            p50 = float(np.median(samples[mode]))
            rows.append(
                {
                    "mode": mode,
                    "threads": threads,
                    "batch": batch,
                    "size_bytes": len(artifacts[mode]),
                    "size_ratio": round(len(artifacts[mode]) / len(reference), 4),
                    "accuracy": round(float(np.mean(top1 == labels)), 4),
                    "agreement": round(float(np.mean(top1 == ref_top1)), 4),
                    "p50_us": round(p50, 1),
                    "latency_ratio": round(p50 / base, 3),
                }
            )
    return rows


def _print(console: Console, rows: list[dict[str, Any]], example: str, held_out: int) -> None:
    table = Table(title=f"{example} artifacts vs fp32 ({held_out} held-out rows)")
    columns = ("mode", "threads", "batch", "size", "size vs fp32", "accuracy", "agreement")
    for column in (*columns, "p50 µs", "time vs fp32"):
        table.add_column(column, justify="left" if column == "mode" else "right")
    for r in rows:
        table.add_row(
            r["mode"],
            str(r["threads"]),
            str(r["batch"]),
            f"{r['size_bytes'] / 1024:.0f} KiB",
            f"{r['size_ratio']:.1%}",
            f"{r['accuracy']:.4f}",
            f"{r['agreement']:.4f}",
            f"{r['p50_us']:.1f}",
            f"{r['latency_ratio']:.2f}x",
        )
    console.print(table)


def main() -> None:
    """Parse options, run, write JSON."""
    parser = argparse.ArgumentParser(prog="python -m bench.compression", description=__doc__)
    parser.add_argument("--example", default="cnn", choices=["cnn", "transformer"])
    parser.add_argument("--quick", action="store_true", help="train briefly (tests)")
    parser.add_argument("--seconds", type=float, default=0.5, help="sampling time per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per batch")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 32, 360])
    parser.add_argument("--threads", type=int, nargs="+", default=sorted({1, usable_cpus()}))
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    name = "compression" if args.example == "cnn" else f"compression-{args.example}"
    args.out = args.out or ROOT / "bench" / "results" / f"{name}.json"
    rows = run(
        example=args.example,
        quick=args.quick,
        seconds=args.seconds,
        rounds=args.rounds,
        batches=args.batches,
        threads=args.threads,
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "python": platform.python_version(),
        "onnxruntime": ort.__version__,
        "cpus": usable_cpus(),
    }
    args.out.write_bytes(orjson.dumps({"meta": meta, "rows": rows}, option=orjson.OPT_INDENT_2))
    Console().print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
