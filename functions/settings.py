"""Settings from the environment (prefix MAAS_), read once through `get_settings()`.

A typed dataclass and a small reader, not pydantic-settings (STYLE.md names it): importing
pydantic-settings and building its model took 90-100 ms and 17-21 MB of every function's cold
start (docs/benchmarks.md, cold start), half of the Lambda handler's import, for what these
fields need: a name, a type, a default and a bound.
"""

from __future__ import annotations

import os
import types
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from functools import cache, lru_cache
from pathlib import Path
from typing import Any, NamedTuple, get_type_hints

from functions.stores import DEFAULT_STORE

PREFIX = "MAAS_"
_UNSET: Any = object()
_TRUE = {"1", "true", "yes", "on", "y", "t"}
_FALSE = {"0", "false", "no", "off", "n", "f"}


class SettingsError(ValueError):
    """A setting whose value is not of its type or outside its bounds."""


class Spec(NamedTuple):
    """What a setting accepts and where its default comes from."""

    default: Any
    factory: Callable[[], Any] | None
    description: str
    gt: float | None
    ge: float | None
    le: float | None
    choices: tuple[str, ...] | None


def setting(
    default: Any = None,
    *,
    factory: Callable[[], Any] | None = None,
    description: str,
    gt: float | None = None,
    ge: float | None = None,
    le: float | None = None,
    choices: tuple[str, ...] | None = None,
) -> Any:
    """A field of `Settings`: given, else `MAAS_<NAME>` from the environment, else the default."""
    spec = Spec(default, factory, description, gt, ge, le, choices)
    return field(default=_UNSET, metadata={"setting": spec})


def _default_cache() -> Path:
    """Lambda's only writable disk is /tmp, elsewhere the cache sits beside the default store."""
    # /tmp is the function's own sandbox, and every artifact is verified against its sha256
    # before a session is created, so a file planted there is never served.
    lambda_cache = Path("/tmp/maas-cache")  # nosec B108
    return lambda_cache if "AWS_LAMBDA_FUNCTION_NAME" in os.environ else Path(".maas/cache")


@dataclass(frozen=True)
class Settings:
    """Serving settings; each one is an environment variable `MAAS_<NAME>`.

    `Settings(store=...)` takes the values given and reads the rest from the environment."""

    store: str = setting(
        DEFAULT_STORE, description="Model store URI: file:///path or s3://bucket/prefix"
    )
    cache_dir: Path = setting(factory=_default_cache, description="Local artifact cache")
    max_body_bytes: int = setting(
        6 * 1024 * 1024, gt=0, description="Largest request body accepted"
    )
    max_models: int = setting(8, gt=0, description="Sessions kept per container (LRU)")
    alias_ttl_seconds: float = setting(
        30.0, ge=0, description="How long an alias resolution is reused"
    )
    max_tensor_elements: int = setting(
        50_000_000, gt=0, description="Largest input tensor accepted (elements)"
    )
    max_batch: int = setting(4096, gt=0, description="Most rows (or instances) per request")
    max_inference_seconds: float = setting(
        25.0, gt=0, description="A run taking longer is stopped: 504"
    )
    serve_concurrency: int = setting(64, gt=0, description="Requests in flight in maas serve")
    ort_spinning: bool | None = setting(
        None,
        description="onnxruntime's threads spin between runs; default: yes in the Lambda "
        "functions, no in maas serve and the GPU container",
    )
    serve_batching: bool = setting(
        True, description="maas serve: run concurrent requests for one model as one batch"
    )
    serve_batch_max_rows: int = setting(64, gt=0, description="Most rows in one batched run")
    serve_batch_delay_ms: float = setting(
        0.0, ge=0, le=1000, description="Longest a request waits for others to batch with"
    )
    batch_chunk_rows: int = setting(4096, gt=0, description="Rows per chunk in batch jobs")
    batch_max_input_bytes: int = setting(
        2 * 1024**3, gt=0, description="Largest batch input file scored in one invocation"
    )
    batch_shard_above_bytes: int = setting(
        512 * 1024**2, gt=0, description="Larger inputs are scored in shards (a state machine)"
    )
    batch_shard_bytes: int = setting(
        128 * 1024**2, ge=1024, description="About how many bytes of input one shard reads"
    )
    batch_state_machine: str | None = setting(
        None, description="ARN of the state machine that scores shards (none: inline only)"
    )
    preload: str = setting("", description="Models loaded at start: name:ref,name:ref")
    api_base_path: str = setting("/", description="Path prefix API Gateway routes to this function")
    device: str = setting(
        "cpu", choices=("cpu", "cuda"), description="cuda: CUDA provider, CPU fallback"
    )
    gpu_endpoint: str | None = setting(
        None, description="SageMaker endpoint for models with target gpu"
    )
    gpu_mode: str = setting("async", choices=("async", "realtime"), description="How it is invoked")
    gpu_async_input: str | None = setting(None, description="s3://bucket/prefix for async requests")
    intra_op_threads: int | None = setting(
        None, gt=0, description="onnxruntime threads; default: usable CPUs"
    )
    s3_part_mb: int = setting(
        8,
        ge=5,
        le=512,
        description="Ranged GETs and multipart parts of large artifacts on S3, MB (8 at a time)",
    )
    memory_mb: int | None = setting(
        None,
        gt=0,
        description="Memory a model may use, MB; default: the Lambda function's, else unchecked",
    )
    cache_max_mb: int | None = setting(
        None,
        gt=0,
        description="Disk the artifact cache may use, MB (the function's ephemeral storage); "
        "default: the free space of cache_dir",
    )

    require_signature: bool = setting(
        False,
        description="Serve only versions whose manifest MAAS_SIGNING_KEY signed",
    )
    signing_key: str | None = setting(
        None, description="The AWS KMS key (id, ARN or alias) whose signatures are required"
    )

    def __post_init__(self) -> None:
        environ = os.environ
        for name, (kind, optional, spec) in _fields().items():
            value = getattr(self, name)
            variable = PREFIX + name.upper()
            if value is _UNSET:
                text = environ.get(variable)
                if text is None:
                    value = spec.factory() if spec.factory else spec.default
                else:
                    value = _parse(variable, text, kind, optional)
            else:
                value = _coerce(variable, value, kind, optional)
            _check(variable, value, spec)
            object.__setattr__(self, name, value)

    def memory_limit_bytes(self) -> int | None:
        """The memory models must fit in: the setting, else Lambda's, else None (unchecked)."""
        mb = self.memory_mb or _int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE"))
        return None if mb is None else mb * 1024 * 1024


@cache
def _fields() -> dict[str, tuple[type, bool, Spec]]:
    """Each setting's name: its type, whether it may be None, and its spec."""
    hints = get_type_hints(Settings)
    found = {}
    for f in fields(Settings):
        kind, optional = hints[f.name], False
        if isinstance(kind, types.UnionType):
            kind, optional = next(a for a in kind.__args__ if a is not type(None)), True
        found[f.name] = (kind, optional, f.metadata["setting"])
    return found


def _parse(variable: str, text: str, kind: type, optional: bool) -> Any:
    """A value from its environment variable's text."""
    text = text.strip() if kind is not str else text
    if optional and text == "":
        return None
    if kind is bool:
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise SettingsError(f"{variable}={text!r}: expected true or false (1/0, yes/no, on/off)")
    try:
        return kind(text)
    except ValueError:
        noun = {int: "an integer", float: "a number"}.get(kind, kind.__name__)
        raise SettingsError(f"{variable}={text!r}: expected {noun}") from None


def _coerce(variable: str, value: Any, kind: type, optional: bool) -> Any:
    """A value given in code: of the setting's type, or text read as the environment's would be."""
    if value is None and optional:
        return None
    if isinstance(value, str) and kind is not str:
        return _parse(variable, value, kind, optional)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind is Path and isinstance(value, os.PathLike):
        return Path(value)
    if type(value) is not kind:
        raise SettingsError(f"{variable}: expected {kind.__name__}, got {value!r}")
    return value


def _check(variable: str, value: Any, spec: Spec) -> None:
    """Refuse a value outside the setting's bounds or choices, naming the variable."""
    if value is None:
        return
    if spec.gt is not None and not value > spec.gt:
        raise SettingsError(f"{variable}={value!r}: must be greater than {spec.gt:g}")
    if spec.ge is not None and not value >= spec.ge:
        raise SettingsError(f"{variable}={value!r}: must be at least {spec.ge:g}")
    if spec.le is not None and not value <= spec.le:
        raise SettingsError(f"{variable}={value!r}: must be at most {spec.le:g}")
    if spec.choices is not None and value not in spec.choices:
        raise SettingsError(f"{variable}={value!r}: expected one of {', '.join(spec.choices)}")


def _int(text: str | None) -> int | None:
    return int(text) if text and text.isdigit() else None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read from the environment once."""
    return Settings()
