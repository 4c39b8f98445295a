"""Logs, metrics and traces of one process, with Powertools for AWS Lambda.

Every event is one JSON line that is both a structured log record and, where it has figures, a
CloudWatch Embedded Metric Format document (CloudWatch extracts the metrics from the `_aws` key
of any log line): requests, model loads, cold starts and batch objects. Namespace, service,
log level and tracing follow Powertools' own environment variables (`POWERTOOLS_*`).

Events are written by Powertools' Logger with their metrics serialized by Powertools' Metrics,
except the per-request line: Logger.info costs ~55 us and a Metrics flush ~45 us here, twice a
small model's whole run, so the request line is written in the same shape with orjson, from an
EMF template Powertools serialized once per model version (docs/observability.md).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import IO, Any

import orjson
from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from functions.core.observe import ModelLoad

DEFAULT_SERVICE = "maas"
DEFAULT_NAMESPACE = "serverless-maas"
UNRESOLVED = "-"  # the dimension value of requests that never resolved to a model version
REQUEST_METRICS = (
    ("Requests", MetricUnit.Count),
    ("Latency", MetricUnit.Milliseconds),
    ("ClientErrors", MetricUnit.Count),
    ("ServerErrors", MetricUnit.Count),
)

# The request being served on this thread or task, for events it causes (a model load, an error).
current_request: ContextVar[str | None] = ContextVar("maas_request_id", default=None)


class Telemetry:
    """The process's Logger, metrics and optional Tracer, and the events the service reports."""

    def __init__(
        self,
        *,
        service: str | None = None,
        namespace: str | None = None,
        stream: IO[str] | None = None,
        tracing: bool | None = None,
        metrics: bool | None = None,
    ) -> None:
        env = os.environ
        self.service = service or env.get("POWERTOOLS_SERVICE_NAME") or DEFAULT_SERVICE
        self.namespace = namespace or env.get("POWERTOOLS_METRICS_NAMESPACE") or DEFAULT_NAMESPACE
        disabled = _off("POWERTOOLS_METRICS_DISABLED") is True
        self.metrics = not disabled if metrics is None else metrics
        self.stream: IO[str] = stream or sys.stdout
        # RFC 3339 timestamps: Lambda's JSON log filter reads the level only with a valid one.
        self.logger = Logger(service=self.service, stream=self.stream, utc=True, use_rfc3339=True)
        # One logging.Logger per service name: a later Telemetry (a test) takes the stream over.
        handler = self.logger.registered_handler
        if isinstance(handler, logging.StreamHandler):
            with handler.lock or threading.Lock():  # not setStream: it flushes the old stream,
                handler.stream = self.stream  # which may be closed (a CLI test's, say)
        self._write_lock = threading.Lock()
        self._fd = _descriptor(self.stream)
        self._templates: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self._lines: dict[tuple[str, str, str, int, int, bool], str] = {}
        self._stamp: tuple[int, str] = (-1, "")
        self._cold = True  # until the first request line
        self._announced = False  # the cold start event, written once
        self._started = time.perf_counter()
        self._lambda_keys: dict[str, Any] = {}
        self._invocation: str | None = None  # Lambda's request id for this invocation
        self.build_seconds = 0.0  # set by whoever builds the runtime: reported at cold start
        enabled = tracing if tracing is not None else _off("POWERTOOLS_TRACE_DISABLED") is False
        self.tracer = _tracer(self.service) if enabled else None

    # -- the request line (the hot path: one string formatting, one write) ---------------------

    def request(
        self,
        *,
        protocol: str,
        name: str,
        ref: str,
        version: int | None,
        status: int,
        seconds: float,
        request_id: str | None,
        error: str | None = None,
    ) -> None:
        """One inference request: a log line that is also its EMF metrics document."""
        now = time.time()
        latency = seconds * 1000
        if error is None and version is not None and not self._cold:
            # The common case: the line's constant parts were serialized once for this route;
            # only its values are written in (Logger.info and a Metrics flush cost ~100 us).
            key = (protocol, name, ref, version, status, self._invocation is not None)
            template = self._lines.get(key) or self._line_template(key)
            millis = int(now * 1000)
            second, stamp = self._stamp
            if millis // 1000 != second:
                second, stamp = self._second(millis // 1000)
            shown = f"{latency:.3f}"
            rid = "null" if request_id is None else orjson.dumps(request_id).decode()
            values: tuple[str, ...] = (f'"{stamp}.{millis % 1000:03d}+00:00"', rid, shown)
            if self._invocation is not None:
                values += (orjson.dumps(self._invocation).decode(),)
            if self.metrics:
                values += (str(millis), shown)
            self._emit(template % values)
            return
        doc = self._document(
            key=(protocol, name, ref, version, status),
            timestamp=self._timestamp(now),
            request_id=request_id,
            latency_ms=round(latency, 3),
            invocation=self._invocation,
            millis=int(now * 1000),
            latency=round(latency, 3),
        )
        if error is not None:
            doc["error"] = error
        if self._cold:
            self._cold = False
            self._cold_start()
        self._write(doc)

    def _document(
        self,
        *,
        key: tuple[str, str, str, int | None, int],
        timestamp: str,
        request_id: str | None,
        latency_ms: float | str,
        invocation: str | None,
        millis: int | str,
        latency: float | str,
    ) -> dict[str, Any]:
        """The request line as a document: the one definition of its keys and metrics."""
        protocol, name, ref, version, status = key
        model, shown = (name, str(version)) if version is not None else (UNRESOLVED, UNRESOLVED)
        doc: dict[str, Any] = {
            "level": "ERROR" if status >= 500 else "INFO",
            "location": "serve_inference",
            "message": "request",
            "timestamp": timestamp,
            "service": self.service,
            "cold_start": self._cold,
            **self._lambda_keys,
            "request_id": request_id,
            "protocol": protocol,
            "model": model,
            "version": shown,
            "ref": ref,
            "status": status,
            "latency_ms": latency_ms,
        }
        if invocation is not None:
            doc["function_request_id"] = invocation
        if version is None:
            doc["requested_model"] = name
        if self.metrics:
            doc["_aws"] = {"Timestamp": millis, "CloudWatchMetrics": self._template(model, shown)}
            doc["Requests"] = 1
            doc["Latency"] = latency
            doc["ClientErrors"] = 1 if 400 <= status < 500 else 0
            doc["ServerErrors"] = 1 if status >= 500 else 0
        return doc

    def _line_template(self, key: tuple[str, str, str, int, int, bool]) -> str:
        """The request line with `%s` where its values go, serialized from `_document` once."""
        *route, invoked = key
        doc = self._document(
            key=tuple(route),  # type: ignore[arg-type]
            timestamp=_MARK.format("ts"),
            request_id=_MARK.format("rid"),
            latency_ms=_MARK.format("lat"),
            invocation=_MARK.format("fid") if invoked else None,
            millis=_MARK.format("ms"),
            latency=_MARK.format("latv"),
        )
        text = orjson.dumps(doc).decode().replace("%", "%%") + "\n"
        for mark in ("ts", "rid", "lat", "fid", "ms", "latv"):  # in the document's order
            text = text.replace(f'"{_MARK.format(mark)}"', "%s")
        if len(self._lines) > 1024:  # bounded: only routes that resolved get one
            self._lines.clear()
        self._lines[key] = text
        return text

    def _template(self, model: str, version: str) -> list[dict[str, Any]]:
        """The EMF metadata of request metrics for this model version, serialized by Powertools."""
        key = (model, version)
        cached = self._templates.get(key)
        if cached is not None:
            return cached
        metrics = self._metrics(model, version)
        for metric, unit in REQUEST_METRICS:
            metrics.add_metric(name=metric, unit=unit, value=0)
        emf = self._emf(metrics, always=True)
        template: list[dict[str, Any]] = emf["_aws"]["CloudWatchMetrics"]
        if len(self._templates) > 1024:  # bounded: only versions that resolved get one
            self._templates.clear()
        self._templates[key] = template
        return template

    def _timestamp(self, now: float) -> str:
        """RFC 3339 in UTC as Powertools writes it (`2026-12-03T12:00:00.123+00:00`), the
        seconds formatted once a second."""
        millis = int(now * 1000)
        second, stamp = self._stamp
        if millis // 1000 != second:
            second, stamp = self._second(millis // 1000)
        return f"{stamp}.{millis % 1000:03d}+00:00"

    def _second(self, second: int) -> tuple[int, str]:
        """Format a new second (once a second), and keep it."""
        self._stamp = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
        return self._stamp

    def _write(self, doc: dict[str, Any]) -> None:
        self._emit(orjson.dumps(doc, default=str).decode() + "\n")

    def _emit(self, line: str) -> None:
        """One line, in one write: straight to the file descriptor when the stream has one."""
        if self._fd is not None and len(line) < _ATOMIC:
            os.write(self._fd, line.encode())
            return
        with self._write_lock:
            self.stream.write(line)
            self.stream.flush()

    # -- events (rare: Powertools' Logger and Metrics) -----------------------------------------

    def lambda_context(self, context: Any) -> None:
        """An invocation begins: the function named in every line (Powertools' keys)."""
        if context is None:
            return
        if not self._lambda_keys:
            self._lambda_keys = {
                "function_name": getattr(context, "function_name", None),
                "function_memory_size": getattr(context, "memory_limit_in_mb", None),
                "function_arn": getattr(context, "invoked_function_arn", None),
            }
            self.logger.append_keys(**self._lambda_keys)
            self._lines.clear()  # templates serialized before now lack these keys
            self._cold_start()
        self._invocation = getattr(context, "aws_request_id", None)

    def access(
        self, *, method: str, path: str, status: int, seconds: float, request_id: str | None
    ) -> None:
        """A request other than inference (metadata, health, readiness...): a log line."""
        self._cold_start()
        cold, self._cold = self._cold, False
        self._write(
            {
                "level": "ERROR" if status >= 500 else "INFO",
                "location": "access",
                "message": "request",
                "timestamp": self._timestamp(time.time()),
                "service": self.service,
                "cold_start": cold,
                **self._lambda_keys,
                "request_id": request_id,
                "method": method,
                "path": path,
                "status": status,
                "latency_ms": round(seconds * 1000, 3),
            }
        )

    def _cold_start(self) -> None:
        """The first request of this process: an event with the time since the runtime began."""
        if self._announced:
            return
        self._announced = True
        metrics = EphemeralMetrics(namespace=self.namespace, service=self.service)
        metrics.add_metric(name="ColdStart", unit=MetricUnit.Count, value=1)
        fields = {
            "runtime_build_ms": round(self.build_seconds * 1000, 3),
            "runtime_age_ms": round((time.perf_counter() - self._started) * 1000, 3),
        }
        self.logger.info("cold start", extra={**fields, **self._emf(metrics)})

    @contextmanager
    def loading(self, load: ModelLoad) -> Iterator[ModelLoad]:
        """A model load (`functions.core.observe.LoadObserver`): traced, logged and measured."""
        fields = {
            "model": load.name,
            "version": str(load.version),
            "request_id": current_request.get(),
        }
        try:
            if self.tracer is None:
                yield load
            else:
                with self.tracer.provider.in_subsegment("## model load") as segment:
                    segment.put_annotation("model", load.name)
                    segment.put_annotation("version", load.version)
                    yield load
        except Exception as exc:
            metrics = self._metrics(load.name, str(load.version))
            metrics.add_metric(name="ModelLoadFailures", unit=MetricUnit.Count, value=1)
            self.logger.warning(
                "model load failed", extra={**fields, "error": str(exc), **self._emf(metrics)}
            )
            raise
        metrics = self._metrics(load.name, str(load.version))
        metrics.add_metric(name="ModelLoads", unit=MetricUnit.Count, value=1)
        for metric, seconds in (
            ("ModelLoadTime", load.seconds),
            ("DownloadTime", load.download_seconds),
            ("VerifyTime", load.verify_seconds),
            ("SessionTime", load.session_seconds),
        ):
            metrics.add_metric(name=metric, unit=MetricUnit.Milliseconds, value=seconds * 1000)
        self.logger.info(
            "model loaded",
            extra={
                **fields,
                "provider": load.provider,
                "size_bytes": load.size_bytes,
                "cached": load.cached,
                "in_place": load.in_place,
                "download_ms": round(load.download_seconds * 1000, 3),
                "verify_ms": round(load.verify_seconds * 1000, 3),
                "session_ms": round(load.session_seconds * 1000, 3),
                "load_ms": round(load.seconds * 1000, 3),
                **self._emf(metrics),
            },
        )

    def batch_object(
        self,
        *,
        key: str,
        outcome: str,
        model: str | None,
        version: int | None,
        rows: int = 0,
        seconds: float = 0.0,
        error: str | None = None,
    ) -> None:
        """One batch input processed: its outcome, rows and throughput."""
        dims = (model or UNRESOLVED, str(version) if version is not None else UNRESOLVED)
        metrics = self._metrics(*dims)
        metrics.add_metric(name="BatchObjects", unit=MetricUnit.Count, value=1)
        metrics.add_metric(name="BatchErrors", unit=MetricUnit.Count, value=outcome == "error")
        rate = rows / seconds if seconds > 0 else 0.0
        if rows:
            metrics.add_metric(name="BatchRows", unit=MetricUnit.Count, value=rows)
            metrics.add_metric(
                name="BatchRowsPerSecond", unit=MetricUnit.CountPerSecond, value=rate
            )
        fields: dict[str, Any] = {"key": key, "outcome": outcome, "rows": rows}
        fields |= {"seconds": round(seconds, 3), "rows_per_second": round(rate, 1)}
        if error is not None:
            fields["error"] = error
        log = self.logger.warning if outcome == "error" else self.logger.info
        log("batch object", extra={**fields, **self._emf(metrics)})

    def warning(self, message: str, **fields: Any) -> None:
        """Something worth a look that did not fail a request (a preload that failed...)."""
        self.logger.warning(message, extra=fields)

    def unexpected(self, exc: BaseException, **fields: Any) -> None:
        """An exception nothing expected (a 500): logged with its traceback."""
        self.logger.error(
            "unexpected error",
            exc_info=(type(exc), exc, exc.__traceback__),
            extra={**fields, "request_id": current_request.get()},
        )

    @contextmanager
    def span(self, name: str, **annotations: str | int) -> Iterator[Any]:
        """An X-Ray subsegment (annotated) when tracing is on; None otherwise."""
        if self.tracer is None:
            yield None
            return
        with self.tracer.provider.in_subsegment(name) as segment:
            for key, value in annotations.items():
                segment.put_annotation(key, value)
            yield segment

    def _metrics(self, model: str, version: str) -> EphemeralMetrics:
        metrics = EphemeralMetrics(namespace=self.namespace, service=self.service)
        metrics.add_dimension(name="model", value=model)
        metrics.add_dimension(name="version", value=version)
        return metrics

    def _emf(self, metrics: EphemeralMetrics, *, always: bool = False) -> dict[str, Any]:
        """The metrics as the keys of the log line that carries them (none when disabled)."""
        if not (self.metrics or always):
            return {}
        doc: dict[str, Any] = dict(metrics.serialize_metric_set())
        return doc


# A write to a pipe up to PIPE_BUF bytes is never interleaved with another (POSIX).
_ATOMIC = 4096
_MARK = "@@maas-{}@@"  # where a value goes in a serialized line (no JSON value looks like it)


def _descriptor(stream: IO[str]) -> int | None:
    """The stream's file descriptor, flushed, if it has one (else None: write through it)."""
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):  # StringIO and friends
        return None
    stream.flush()
    return fd


def _json(value: str | None) -> str:
    """A string (or null) as JSON."""
    return "null" if value is None else orjson.dumps(value).decode()


def _off(variable: str) -> bool | None:
    """A Powertools switch: True/False when set, None when not."""
    value = os.environ.get(variable)
    if value is None:
        return None
    return value.strip().lower() in ("1", "true", "yes", "on")


def _tracer(service: str) -> Any:
    """Powertools' Tracer (imports the X-Ray SDK, so only when tracing is on)."""
    from aws_lambda_powertools import Tracer

    return Tracer(service=service)
