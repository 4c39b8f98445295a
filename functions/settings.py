"""Settings from the environment (prefix MAAS_), read once through `get_settings()`."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from functions.stores import DEFAULT_STORE


def _default_cache() -> Path:
    """Lambda's only writable disk is /tmp, elsewhere the cache sits beside the default store."""
    import os

    # /tmp is the function's own sandbox, and every artifact is verified against its sha256
    # before a session is created, so a file planted there is never served.
    lambda_cache = Path("/tmp/maas-cache")  # nosec B108
    return lambda_cache if "AWS_LAMBDA_FUNCTION_NAME" in os.environ else Path(".maas/cache")


class Settings(BaseSettings):
    """Serving settings; each one is an environment variable `MAAS_<NAME>`."""

    model_config = SettingsConfigDict(env_prefix="MAAS_", extra="ignore")

    store: str = Field(
        DEFAULT_STORE, description="Model store URI: file:///path or s3://bucket/prefix"
    )
    cache_dir: Path = Field(default_factory=_default_cache, description="Local artifact cache")
    max_body_bytes: int = Field(6 * 1024 * 1024, gt=0, description="Largest request body accepted")
    max_models: int = Field(8, gt=0, description="Sessions kept per container (LRU)")
    alias_ttl_seconds: float = Field(
        30.0, ge=0, description="How long an alias resolution is reused"
    )
    max_tensor_elements: int = Field(
        50_000_000, gt=0, description="Largest input tensor accepted (elements)"
    )
    max_batch: int = Field(4096, gt=0, description="Most rows (or instances) per request")
    max_inference_seconds: float = Field(
        25.0, gt=0, description="A run taking longer is stopped: 504"
    )
    serve_concurrency: int = Field(64, gt=0, description="Requests in flight in maas serve")
    ort_spinning: bool | None = Field(
        None,
        description="onnxruntime's threads spin between runs; default: yes in the Lambda "
        "functions, no in maas serve and the GPU container",
    )
    serve_batching: bool = Field(
        True, description="maas serve: run concurrent requests for one model as one batch"
    )
    serve_batch_max_rows: int = Field(64, gt=0, description="Most rows in one batched run")
    serve_batch_delay_ms: float = Field(
        0.0, ge=0, le=1000, description="Longest a request waits for others to batch with"
    )
    batch_chunk_rows: int = Field(4096, gt=0, description="Rows per chunk in batch jobs")
    batch_max_input_bytes: int = Field(
        2 * 1024**3, gt=0, description="Largest batch input file scored in one invocation"
    )
    batch_shard_above_bytes: int = Field(
        512 * 1024**2, gt=0, description="Larger inputs are scored in shards (a state machine)"
    )
    batch_shard_bytes: int = Field(
        128 * 1024**2, ge=1024, description="About how many bytes of input one shard reads"
    )
    batch_state_machine: str | None = Field(
        None, description="ARN of the state machine that scores shards (none: inline only)"
    )
    preload: str = Field("", description="Models loaded at start: name:ref,name:ref")
    api_base_path: str = Field("/", description="Path prefix API Gateway routes to this function")
    device: str = Field(
        "cpu", pattern="^(cpu|cuda)$", description="cuda: CUDA provider, CPU fallback"
    )
    gpu_endpoint: str | None = Field(
        None, description="SageMaker endpoint for models with target gpu"
    )
    gpu_mode: str = Field("async", pattern="^(async|realtime)$", description="How it is invoked")
    gpu_async_input: str | None = Field(None, description="s3://bucket/prefix for async requests")
    intra_op_threads: int | None = Field(
        None, gt=0, description="onnxruntime threads; default: usable CPUs"
    )
    s3_part_mb: int = Field(
        8,
        ge=5,
        le=512,
        description="Ranged GETs and multipart parts of large artifacts on S3, MB (8 at a time)",
    )
    memory_mb: int | None = Field(
        None,
        gt=0,
        description="Memory a model may use, MB; default: the Lambda function's, else unchecked",
    )
    cache_max_mb: int | None = Field(
        None,
        gt=0,
        description="Disk the artifact cache may use, MB (the function's ephemeral storage); "
        "default: the free space of cache_dir",
    )

    def memory_limit_bytes(self) -> int | None:
        """The memory models must fit in: the setting, else Lambda's, else None (unchecked)."""
        mb = self.memory_mb or _int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE"))
        return None if mb is None else mb * 1024 * 1024


def _int(text: str | None) -> int | None:
    return int(text) if text and text.isdigit() else None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read from the environment once."""
    return Settings()
