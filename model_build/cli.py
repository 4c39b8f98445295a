"""The `maas` command line: publish, list, alias, serve, invoke, demo."""

from __future__ import annotations

import sys
import tempfile
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.table import Table

from functions.core.errors import MaasError
from functions.core.repository import Repository
from functions.runtime import Runtime
from functions.stores import DEFAULT_STORE

if TYPE_CHECKING:
    from functions.batch.job import JobStats
    from functions.core.runner import Runner
    from functions.settings import Settings

app = typer.Typer(
    name="maas",
    help="Serve ONNX models as a service: publish, promote, serve and invoke them.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
out = Console()
err = Console(stderr=True)

StoreOpt = Annotated[
    str,
    typer.Option(
        "--store", envvar="MAAS_STORE", help="Model store: file:///path or s3://bucket/prefix"
    ),
]


StackOpt = Annotated[
    str | None,
    typer.Option(
        "--stack",
        envvar="MAAS_STACK",
        help="A deployed stack: its ModelStore output is the store (overrides --store)",
    ),
]


VERSIONED = ("onnxruntime", "numpy", "onnx", "fastapi", "boto3", "onnxruntime-extensions")


def _version(shown: bool) -> None:
    """`maas --version`: the project's version and the installed versions it serves with."""
    if not shown:
        return
    from importlib.metadata import PackageNotFoundError, version

    from functions import __version__

    def installed(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "not installed"

    out.print(f"serverless-maas {__version__}", highlight=False)
    for name in VERSIONED:
        out.print(f"  {name} {installed(name)}", highlight=False)
    raise typer.Exit()


@app.callback()
def aws_session(
    show_version: Annotated[
        bool,
        typer.Option("--version", is_eager=True, callback=_version, help="Show versions and exit"),
    ] = False,
    region: Annotated[
        str | None, typer.Option(help="AWS region for the stack, its buckets and its API")
    ] = None,
    profile: Annotated[str | None, typer.Option(help="AWS profile (credentials) to use")] = None,
) -> None:
    """Serve ONNX models as a service: publish, promote, serve and invoke them."""
    if region or profile:
        from model_build.remote import use_aws

        use_aws(region, profile)


def _store(store: str, stack: str | None) -> str:
    """The store to use: the stack's ModelStore output when a stack is named."""
    if stack is None:
        return store
    from model_build.remote import stack_output

    return stack_output(stack, "ModelStore")


class HandlerKind(StrEnum):
    """Which Lambda handler `maas invoke` runs."""

    api = "api"
    batch = "batch"


def _runtime(store: str, *, logs_to_stdout: bool = False, server: bool = False) -> Runtime:
    """The process's runtime for `store`: the one every entry point uses, built from the CLI's
    options. Its log lines go to stderr, so stdout carries only the command's result, except
    for `maas serve`, whose request lines are its output."""
    from functions.runtime import build_runtime, set_runtime
    from functions.settings import Settings
    from functions.telemetry import Telemetry

    stream = sys.stdout if logs_to_stdout else sys.stderr
    runtime = build_runtime(
        Settings(store=store), telemetry=Telemetry(stream=stream), server=server
    )
    set_runtime(runtime)
    return runtime


def _repo(store: str) -> Repository:
    return _runtime(store).registry.repository


@app.command()
def publish(
    model: Annotated[
        Path, typer.Argument(help="The ONNX file to publish (its external data files beside it)")
    ],
    name: Annotated[str, typer.Option("--name", help="Model name, e.g. 'digits'")],
    store: StoreOpt = DEFAULT_STORE,
    stack: StackOpt = None,
    sign: Annotated[
        str | None,
        typer.Option(
            envvar="MAAS_SIGNING_KEY",
            help="Sign the manifest with this AWS KMS key (id, ARN or alias)",
        ),
    ] = None,
    alias: Annotated[
        list[str] | None, typer.Option("--alias", help="Point this alias at it")
    ] = None,
    label: Annotated[
        list[str] | None, typer.Option("--label", help="KEY=VALUE, repeatable")
    ] = None,
    target: Annotated[
        str, typer.Option(help="cpu (the Lambda functions) or gpu (the GPU endpoint)")
    ] = "cpu",
    external_data: Annotated[
        str | None,
        typer.Option(
            "--external-data",
            help="Move tensors of at least this size (e.g. 1MB) of a single-file model into "
            "model.onnx.data, which the service memory-maps",
        ),
    ] = None,
) -> None:
    """Publish MODEL as the next version of NAME and print the version."""
    from model_build.inspect_onnx import artifact_from_file

    labels = dict(_pair(item) for item in label or [])
    threshold = None if external_data is None else _bytes(external_data)
    with tempfile.TemporaryDirectory(prefix="maas-publish-") as work:
        artifact = artifact_from_file(
            model,
            name=name,
            labels=labels,
            target=target,
            external_data_from=threshold,
            workdir=Path(work),
        )
        for warning in artifact.warnings:
            err.print(f"[yellow]warning:[/] {warning}")
        repo = _repo(_store(store, stack))
        final = repo.publish(artifact.manifest, artifact.graph, artifact.data)
    if sign:  # before any alias points at it: a service requiring signatures never sees it bare
        _sign(repo, name, final.version, sign)
    for each in alias or []:
        repo.set_alias(name, each, final.version)
    suffix = f" (alias {', '.join(alias)})" if alias else ""
    files = len(final.files)
    err.print(
        f"published {name} version {final.version} to {repo.store.uri}{suffix}: "
        f"{_size(final.total_bytes)} in {files} file{'s' if files > 1 else ''}"
    )
    out.print(final.version)


def _sign(repo: Repository, name: str, version: int, key: str) -> None:
    from functions.signing import kms_signer

    signature = orjson.loads(repo.sign(name, version, kms_signer(key)))
    err.print(f"signed {name} version {version} with {signature['key_id']}")


@app.command("sign")
def sign_version(
    name: Annotated[str, typer.Argument(help="Model name")],
    version: Annotated[int, typer.Argument(help="The published version to sign")],
    key: Annotated[
        str, typer.Option(envvar="MAAS_SIGNING_KEY", help="AWS KMS key (id, ARN or alias)")
    ],
    store: StoreOpt = DEFAULT_STORE,
    stack: StackOpt = None,
) -> None:
    """Sign a published version's manifest with an AWS KMS key (ECC_NIST_P256)."""
    _sign(_repo(_store(store, stack)), name, version, key)


_UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "KIB": 2**10, "MIB": 2**20}


def _bytes(text: str) -> int:
    """`1MB`, `512KiB`, `1048576`: a size in bytes."""
    upper = text.strip().upper()
    for unit in sorted(_UNITS, key=len, reverse=True):
        if unit and upper.endswith(unit):
            digits = upper[: -len(unit)].strip()
            break
    else:
        unit, digits = "", upper
    try:
        return int(float(digits) * _UNITS[unit])
    except ValueError:
        raise typer.BadParameter(
            f"a size is a number with an optional unit (1MB, 512KiB), got {text!r}"
        ) from None


def _pair(item: str) -> tuple[str, str]:
    key, sep, value = item.partition("=")
    if not sep or not key:
        raise typer.BadParameter(f"labels are KEY=VALUE, got {item!r}")
    return key, value


@app.command("build")
def build_command(
    example: Annotated[
        str | None,
        typer.Argument(help="cnn, digits, tabular, text or transformer (or use --from-onnx)"),
    ] = None,
    quantize: Annotated[
        str, typer.Option(help="none, fp16, int8-dynamic or int8-static (calibrated)")
    ] = "none",
    store: StoreOpt = DEFAULT_STORE,
    alias: Annotated[
        list[str] | None, typer.Option("--alias", help="Point this alias at it")
    ] = None,
    name: Annotated[str | None, typer.Option(help="Publish under this name")] = None,
    from_onnx: Annotated[
        Path | None, typer.Option("--from-onnx", help="Compress this ONNX model instead")
    ] = None,
    calibration: Annotated[
        Path | None, typer.Option(help=".npz of real inputs by input name (with --from-onnx)")
    ] = None,
    eval_data: Annotated[
        Path | None,
        typer.Option(
            "--eval", help=".npz of held-out inputs, optional 'labels' (with --from-onnx)"
        ),
    ] = None,
    min_agreement: Annotated[float, typer.Option(help="Top-1 agreement the gate demands")] = 0.99,
    max_accuracy_drop: Annotated[
        float, typer.Option(help="Accuracy drop the gate allows (0.01 = 1 point)")
    ] = 0.01,
    force: Annotated[
        bool, typer.Option(help="Publish even if the gate refuses (recorded)")
    ] = False,
    quick: Annotated[bool, typer.Option(help="Train briefly (for tests and trials)")] = False,
    target: Annotated[
        str, typer.Option(help="cpu (the Lambda functions) or gpu (the GPU endpoint)")
    ] = "cpu",
    tokenizer: Annotated[
        Path | None,
        typer.Option(
            help="tokenizer.json (WordPiece) to put in front of the --from-onnx encoder: "
            "the model then takes text"
        ),
    ] = None,
    classes: Annotated[
        str | None, typer.Option(help="Class names in logit order, comma-separated (--tokenizer)")
    ] = None,
    max_length: Annotated[
        int | None,
        typer.Option(
            help="Word pieces per sentence, [CLS] and [SEP] included (--tokenizer); default: "
            "where tokenizer.json truncates, else 512"
        ),
    ] = None,
) -> None:
    """Train (or load), optimize, quantize, validate against fp32 and publish a model."""
    from model_build.build_cli import run_build
    from model_build.byo import TextFront
    from model_build.compress import BuildError
    from model_build.gate import Thresholds

    text = None
    if tokenizer is not None:
        if not classes:
            raise BuildError("--tokenizer needs --classes NAME,NAME,... (one per logit, in order)")
        text = TextFront(tokenizer, [c.strip() for c in classes.split(",")], max_length)

    result = run_build(
        example=example,
        from_onnx_path=from_onnx,
        calibration=calibration,
        evaluation=eval_data,
        name=name,
        mode=quantize,
        repo=_repo(store),
        alias=alias or [],
        thresholds=Thresholds(min_agreement, max_accuracy_drop, force),
        quick=quick,
        console=err,
        target=target,
        text=text,
    )
    out.print(result.candidate.version)


@app.command("list")
def list_models(
    name: Annotated[str | None, typer.Argument(help="Only this model")] = None,
    store: StoreOpt = DEFAULT_STORE,
    stack: StackOpt = None,
) -> None:
    """List published models: versions, quantization, size, metrics and aliases."""
    repo = _repo(_store(store, stack))
    names = [name] if name else repo.models()
    table = Table(title=f"models in {repo.store.uri}")
    for column in (
        "name",
        "version",
        "aliases",
        "quantization",
        "parent",
        "size",
        "sha256",
        "metrics",
    ):
        table.add_column(column)
    for each in names:
        routes = repo.alias_routes(each)
        for version in repo.versions(each):
            m = repo.manifest(each, version)
            tags = ", ".join(
                a if r.version == version else f"{a} (canary {r.weight:.0%})"
                for a, r in routes.items()
                if version in (r.version, r.canary)
            )
            metrics = ", ".join(f"{k}={_fmt(m.metrics[k])}" for k in SHOWN if k in m.metrics)
            if m.metrics.get("gate", {}).get("forced"):
                metrics += ", gate FORCED"
            parent = m.source.get("parent_version")
            table.add_row(
                each,
                str(version),
                tags,
                m.quantization,
                "-" if parent is None else str(parent),
                _size(m.total_bytes),
                m.sha256[:12],
                metrics,
            )
    if not table.row_count:
        err.print("no models published" + (f" under the name '{name}'" if name else ""))
        return
    out.print(table)


SHOWN = ("accuracy", "agreement", "size_ratio", "latency_ratio", "latency_ratio_batch1")


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _size(size: int) -> str:
    if size < 1 << 20:
        return f"{size / 1024:.1f} KiB"
    return f"{size / (1 << 20):.1f} MiB" if size < 1 << 30 else f"{size / (1 << 30):.2f} GiB"


@app.command()
def alias(
    name: Annotated[str, typer.Argument(help="Model name")],
    alias_name: Annotated[str, typer.Argument(metavar="ALIAS", help="Alias, e.g. 'prod'")],
    version: Annotated[
        int | None,
        typer.Argument(help="The version it should point to (not with --promote/--rollback)"),
    ] = None,
    canary: Annotated[
        str | None,
        typer.Option(help="VERSION=PERCENT: send that share of requests to VERSION, e.g. 4=10%"),
    ] = None,
    promote: Annotated[bool, typer.Option(help="The canary becomes the alias's version")] = False,
    rollback: Annotated[
        bool, typer.Option(help="End the canary; the alias keeps its version")
    ] = False,
    reason: Annotated[str, typer.Option(help="Why, recorded with --promote/--rollback")] = "",
    alarm_errors: Annotated[
        float | None,
        typer.Option(
            help="With --canary: roll back when its server errors pass this % (1 min x 2)"
        ),
    ] = None,
    alarm_p99_ms: Annotated[
        float | None,
        typer.Option(help="With --canary: roll back when its p99 latency passes this (1 min x 2)"),
    ] = None,
    store: StoreOpt = DEFAULT_STORE,
    stack: StackOpt = None,
) -> None:
    """Point ALIAS of NAME at VERSION (promote or roll back), optionally with a canary."""
    from model_build import canary_alarms

    store = _store(store, stack)
    repo = _repo(store)
    deployed = store.startswith("s3://")
    if promote or rollback:
        if promote and rollback or version is not None or canary is not None:
            raise typer.BadParameter("--promote or --rollback alone, with no VERSION or --canary")
        kept, trial = repo.end_canary(name, alias_name, promote=promote, reason=reason)
        outcome = "promoted" if promote else "rolled back"
        out.print(f"{name}:{alias_name} -> {kept} (canary {trial} {outcome})")
        if deployed:
            for gone in canary_alarms.delete_canary_alarms(_cloudwatch(), name, alias_name):
                out.print(f"alarm {gone} deleted")
        return
    if version is None:
        raise typer.BadParameter("give the VERSION the alias should point to")
    alarms = alarm_errors is not None or alarm_p99_ms is not None
    if alarms and (canary is None or not deployed):
        raise typer.BadParameter(
            "--alarm-errors and --alarm-p99-ms watch a canary's metrics on a deployed stack: "
            "use them with --canary and an s3:// store"
        )
    before = repo.aliases(name).get(alias_name)
    split = _canary(canary) if canary is not None else None
    repo.set_alias(name, alias_name, version, canary=split)
    was = f" (was {before})" if before is not None else ""
    share = f", canary {split[0]} at {split[1]:.0%}" if split else ""
    out.print(f"{name}:{alias_name} -> {version}{share}{was}")
    if split is not None and alarms:
        created = canary_alarms.put_canary_alarms(
            _cloudwatch(),
            name,
            alias_name,
            split[0],
            errors_percent=alarm_errors,
            p99_ms=alarm_p99_ms,
        )
        for each in created:
            out.print(f"alarm {each}: in ALARM it rolls the canary back")


def _cloudwatch() -> Any:
    import boto3

    return boto3.client("cloudwatch")


def _canary(text: str) -> tuple[int, float]:
    """`4=10%` (or `4=0.1`) -> (4, 0.1)."""
    version, sep, share = text.partition("=")
    try:
        weight = float(share.rstrip("%")) / (100 if share.endswith("%") else 1)
        if not sep or not version.isdigit() or not 0 < weight < 1:
            raise ValueError
    except ValueError:
        raise typer.BadParameter(
            f"--canary {text!r}: expected VERSION=PERCENT, e.g. 4=10%, the share between 0 and 100%"
        ) from None
    return int(version), weight


@app.command()
def infer(
    name: Annotated[str, typer.Argument(help="Model name")],
    file: Annotated[
        Path,
        typer.Argument(help="A .json v2 request (sent as is), a .npz (inputs by name) or a .npy"),
    ],
    version: Annotated[str, typer.Option(help="Version number or alias")] = "latest",
    url: Annotated[
        str | None, typer.Option(help="The API's base URL (default: the stack's ApiUrl)")
    ] = None,
    stack: StackOpt = None,
    auth: Annotated[str, typer.Option(help="iam (SigV4), jwt (bearer token) or none")] = "iam",
    token: Annotated[
        str | None, typer.Option(envvar="MAAS_TOKEN", help="The bearer token for --auth jwt")
    ] = None,
    binary: Annotated[
        bool, typer.Option(help="Send and receive tensors as Triton binary data")
    ] = False,
) -> None:
    """Call a deployed API (or any OIP v2 server) with FILE's tensors; print the answer as JSON."""
    from model_build import remote

    if auth not in remote.AUTHS:
        raise typer.BadParameter(f"--auth {auth!r}: expected one of {', '.join(remote.AUTHS)}")
    if url is None:
        if stack is None:
            raise typer.BadParameter("give --url, or --stack to use the stack's ApiUrl")
        url = remote.stack_output(stack, "ApiUrl")
    caller = remote.Caller(url, auth=auth, token=token)
    model_path = f"/v2/models/{name}" + ("" if version == "latest" else f"/versions/{version}")
    tensors = remote.load_inputs(file, caller, model_path)
    headers: dict[str, str] = {}
    if isinstance(tensors, bytes):
        body = tensors
    else:
        body, headers = remote.infer_body(tensors, binary)
    status, answered, reply = caller.send("POST", f"{model_path}/infer", body, headers)
    if status != 200:
        raise remote.RemoteError(f"{status} from {url}: {reply.decode(errors='replace')[:500]}")
    doc = remote.decode_response(answered, reply)
    sys.stdout.write(orjson.dumps(doc).decode() + "\n")


@app.command()
def serve(
    store: StoreOpt = DEFAULT_STORE,
    host: Annotated[str, typer.Option(help="Interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8080,
) -> None:
    """Serve the API under uvicorn: the same app the Lambda handler runs (a JSON line a request)."""
    import uvicorn

    from functions.api.asgi import create_server_app

    application = create_server_app(_runtime(store, logs_to_stdout=True, server=True))
    uvicorn.run(application, host=host, port=port, log_level="warning", lifespan="off")


@app.command()
def invoke(
    event: Annotated[Path, typer.Argument(help="A Lambda event JSON file (see events/)")],
    handler: Annotated[HandlerKind, typer.Option(help="Which handler runs it")] = HandlerKind.api,
    store: StoreOpt = DEFAULT_STORE,
) -> None:
    """Run a Lambda handler in-process on EVENT and print its response."""
    from model_build.lambda_local import invoke_api, invoke_batch

    try:
        payload = orjson.loads(event.read_bytes())
    except OSError as exc:
        raise MaasError(f"cannot read {event}: {exc.strerror or exc}") from None
    except orjson.JSONDecodeError as exc:
        raise MaasError(f"{event} is not JSON: {exc}") from None
    _runtime(store)  # the handler below takes it as the process's runtime
    if handler is HandlerKind.batch:
        from functions.batch.faults import TransientFault

        try:
            response = invoke_batch(payload)
        except TransientFault as exc:
            raise MaasError(f"transient failure (Lambda would retry): {exc}") from None
        out.print_json(orjson.dumps(response).decode())
        if response.get("batchItemFailures"):
            raise typer.Exit(1)
        return
    response = invoke_api(payload)
    out.print_json(orjson.dumps(response).decode())
    if int(response.get("statusCode", 500)) >= 400:
        raise typer.Exit(1)


@app.command()
def batch(
    file: Annotated[Path, typer.Argument(help="A .npy, .npz, .jsonl or .csv file")],
    model: Annotated[str, typer.Option(help="Model name")],
    version: Annotated[str, typer.Option(help="Version number or alias")] = "latest",
    out_path: Annotated[
        Path | None, typer.Option("--out", help="Result file (default: FILE.predictions.npz|jsonl)")
    ] = None,
    store: StoreOpt = DEFAULT_STORE,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="Score in shards on this many processes (the plan and worker code of the "
            "state machine that scores large files on AWS)",
        ),
    ] = 1,
    stack: Annotated[
        str | None,
        typer.Option(
            envvar="MAAS_STACK",
            help="Score on this deployed stack instead: upload to its batch bucket, wait, "
            "download the result",
        ),
    ] = None,
    wait: Annotated[
        float, typer.Option(help="With --stack: seconds to wait for the result")
    ] = 900.0,
) -> None:
    """Score a file in bounded chunks: the batch function's code, on your machine (or with
    --stack, the deployed batch function on the stack's bucket)."""
    from functions.batch.formats import FORMATS, output_suffix
    from functions.batch.job import run_job

    suffix = file.suffix.lower()
    if suffix not in FORMATS:
        raise MaasError(
            f"unsupported file type {suffix or '(none)'!r}; use one of {', '.join(FORMATS)}"
        )
    if stack is not None:
        from model_build.remote import batch_on_stack

        if workers > 1:
            raise typer.BadParameter("--workers is for local runs; the stack shards by itself")
        with err.status("uploading") as shown:
            remote = batch_on_stack(
                file,
                stack=stack,
                model=model,
                version=version,
                out=out_path,
                wait_seconds=wait,
                status=shown.update,
            )
        out.print_json(orjson.dumps(remote).decode())
        return
    runtime = _runtime(store)
    settings, registry = runtime.settings, runtime.registry
    resolved = registry.resolve(model, version, str(file))  # a canary takes whole files
    runner = registry.runner(model, str(resolved))
    fmt = output_suffix(suffix, runner.manifest.outputs)
    target = out_path or file.with_name(f"{file.stem}.predictions{fmt}")
    shards: dict[str, float] = {}
    try:
        if workers > 1:
            stats, peak_mb = _batch_in_shards(file, runner, store, workers, target, fmt, settings)
            shards = {"shards": stats.chunks, "workers": workers, "peak_rss_mb": peak_mb}
        else:
            with file.open("rb") as stream:
                stats = run_job(
                    stream,
                    suffix=suffix,
                    runner=runner,
                    out=target,
                    chunk_rows=settings.batch_chunk_rows,
                )
    except OSError as exc:
        raise MaasError(f"cannot read {file}: {exc.strerror or exc}") from None
    runtime.telemetry.batch_object(
        key=str(file),
        outcome="output",
        model=model,
        version=resolved,
        rows=stats.rows,
        seconds=stats.seconds,
    )
    summary = {
        "input": str(file),
        "model": model,
        "version": resolved,
        "artifact_sha256": runner.manifest.sha256,
        "rows": stats.rows,
        "chunks": stats.chunks,
        **shards,
        "output": str(target),
        "format": stats.output_format.lstrip("."),
        "duration_seconds": round(stats.seconds, 3),
    }
    out.print_json(orjson.dumps(summary).decode())


def _batch_in_shards(
    file: Path,
    runner: Runner,
    store: str,
    workers: int,
    target: Path,
    fmt: str,
    settings: Settings,
) -> tuple[JobStats, float]:
    """`maas batch --workers N`: the shard plan on local processes, with a progress bar; the
    stats and the largest peak RSS of a worker (MB)."""
    import time

    from rich.progress import Progress

    from functions.batch.fanout import score_locally
    from functions.batch.job import JobStats

    started = time.perf_counter()
    with Progress(console=err, transient=True) as bar:
        task = bar.add_task(f"scoring {file.name} on {workers} workers", total=None)
        plan, results, rows = score_locally(
            file,
            runner=runner,
            store=store,
            workers=workers,
            out=target,
            chunk_rows=settings.batch_chunk_rows,
            shard_bytes=settings.batch_shard_bytes,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    seconds = time.perf_counter() - started
    stats = JobStats(rows=rows, chunks=len(plan.shards), output_format=fmt, seconds=seconds)
    return stats, round(max((float(r.get("peak_rss_mb", 0)) for r in results), default=0), 1)


@app.command()
def demo(
    store: StoreOpt = DEFAULT_STORE,
    port: Annotated[int, typer.Option(help="Port for the demo server; 0 picks a free one")] = 0,
) -> None:
    """Train, publish, serve and call a real model end to end, then print the accuracy."""
    from model_build.demo import run_demo

    run_demo(store=store, port=port, console=out)


def main() -> None:
    """Entry point: clear one-line errors and a nonzero exit instead of tracebacks."""
    try:
        app()
    except MaasError as exc:
        err.print(f"[red]error:[/] {exc}")
        sys.exit(1)
