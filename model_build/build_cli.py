"""`maas build`: the pipeline behind the command line, with progress and a summary table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from functions.core.repository import Repository

from .byo import TextFront, from_onnx
from .compress import BuildError, check_mode
from .examples import EXAMPLES, Trained
from .gate import Thresholds
from .pipeline import BuildResult, build


def run_build(
    *,
    example: str | None,
    from_onnx_path: Path | None,
    calibration: Path | None,
    evaluation: Path | None,
    name: str | None,
    mode: str,
    repo: Repository,
    alias: list[str],
    thresholds: Thresholds,
    quick: bool,
    console: Console,
    target: str = "cpu",
    text: TextFront | None = None,
) -> BuildResult:
    """Train (or load), build, gate and publish; print progress and the summary."""
    check_mode(mode)
    if text is not None and from_onnx_path is None:
        raise BuildError("--tokenizer goes with --from-onnx ENCODER.onnx")
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        trained = _obtain(
            example, from_onnx_path, calibration, evaluation, name, quick, progress, text
        )
        task = progress.add_task("build", total=None)
        result = build(
            trained,
            repo=repo,
            name=name or trained.name,
            mode=mode,
            thresholds=thresholds,
            alias=alias,
            latency_seconds=0.4 if quick else 2.0,
            target=target,
            step=lambda text: progress.update(task, description=text),
        )
        progress.update(task, description="done", total=1, completed=1)
    console.print(summary(result))
    if result.verdict.reasons:
        console.print(
            f"[yellow]published despite the gate (--force):[/] {'; '.join(result.verdict.reasons)}"
        )
    return result


def _obtain(
    example: str | None,
    model: Path | None,
    calibration: Path | None,
    evaluation: Path | None,
    name: str | None,
    quick: bool,
    progress: Progress,
    text: TextFront | None = None,
) -> Trained:
    if (example is None) == (model is None):
        raise BuildError(
            f"give an EXAMPLE ({', '.join(EXAMPLES)}) or --from-onnx MODEL.onnx, not both"
        )
    if model is not None:
        if calibration is None:
            raise BuildError(
                "--from-onnx needs --calibration DATA.npz (real inputs, by input name)"
            )
        if not name:
            raise BuildError("--from-onnx needs --name NAME")
        progress.add_task(f"loading {model.name} and its data", total=None)
        return from_onnx(model, calibration, evaluation, name=name, text=text)
    assert example is not None
    if example not in EXAMPLES:
        raise BuildError(f"unknown example {example!r}; choose one of {', '.join(EXAMPLES)}")
    task = progress.add_task(f"training {example}", total=None)

    def advance(done: int, total: int) -> None:
        progress.update(
            task, completed=done, total=total, description=f"training {example} ({done}/{total})"
        )

    return EXAMPLES[example].train(quick, advance)


def _size(size: int) -> str:
    return f"{size / 1024:.1f} KiB" if size < 1 << 20 else f"{size / (1 << 20):.2f} MiB"


def _num(metrics: dict[str, Any], key: str, fmt: str = "{:.4f}") -> str:
    value = metrics.get(key)
    return "-" if value is None else fmt.format(value)


def summary(result: BuildResult) -> Table:
    """The table printed after a build: size, accuracy, agreement, latency against fp32."""
    m = result.verdict.metrics
    table = Table(title=f"built {result.candidate.name}")
    for column in (
        "artifact",
        "version",
        "size",
        "accuracy",
        "agreement",
        "max |diff|",
        f"latency vs fp32, batch {m['latency_batch']} / 1",
    ):
        table.add_column(column, justify="left" if column == "artifact" else "right")
    if result.reference is not None:
        note = "published" if result.reference_published else "already published"
        table.add_row(
            f"fp32 reference ({note})",
            str(result.reference.version),
            _size(result.reference.size_bytes),
            _num(m, "reference_accuracy"),
            "1.0000",
            "0",
            "1.00x / 1.00x",
        )
    candidate = result.candidate
    table.add_row(
        f"{candidate.quantization}"
        + (f" (parent {result.reference.version})" if result.reference else ""),
        str(candidate.version),
        f"{_size(candidate.size_bytes)} ({m['size_ratio']:.0%})",
        _num(m, "accuracy"),
        _num(m, "agreement"),
        _num(m, "max_abs_diff", "{:.3g}"),
        f"{m['latency_ratio']:.2f}x / {m.get('latency_ratio_batch1', 0):.2f}x",
    )
    return table
