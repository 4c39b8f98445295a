"""The app's configuration: CDK context keys `maas:*`, typed, defaulted and validated."""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from typing import Any, Final

from constructs import Node

ARCHITECTURES: Final = ("x86_64", "arm64")
AUTH: Final = ("iam", "jwt")
GPU_MODES: Final = ("async", "realtime")
# Lambda's application log levels, less TRACE (Python's logging has none) and FATAL.
# Not WARN or ERROR: Lambda's log-level filter would drop the INFO request lines, and with them
# the metrics they carry (each request line is also its EMF document).
LOG_LEVELS: Final = ("DEBUG", "INFO")
# The only values CloudWatch Logs accepts for a log group's retention.
# https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_PutRetentionPolicy.html
RETENTION_DAYS: Final = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
)  # fmt: skip
# SnapStart functions may have at most this much ephemeral storage.
SNAPSTART_EPHEMERAL_MB: Final = 512
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class ConfigError(ValueError):
    """A context value that cannot be used."""


@dataclass(frozen=True)
class MaasConfig:
    """Every knob of the stack. Each field is the context key `maas:<camelCase name>`."""

    architecture: str = "x86_64"
    api_memory_mb: int = 2048
    # /tmp of the API function, the artifact cache: 2,048 MB, or 512 with SnapStart (its limit)
    api_ephemeral_mb: int | None = None
    api_timeout_seconds: int = 29
    batch_memory_mb: int = 3008
    batch_timeout_seconds: int = 900
    batch_ephemeral_mb: int = 4096
    batch_chunk_rows: int = 4096
    # Inputs over this many MB are scored in shards of about batch_shard_mb by a state machine.
    batch_shard_above_mb: int = 512
    batch_shard_mb: int = 128
    batch_max_concurrency: int = 100  # shards scored at once (Distributed Map: up to 10,000)
    batch_tolerated_failure_percent: int = 0
    reserved_concurrency: int | None = None
    provisioned_concurrency: int = 0
    snap_start: bool = False
    auth: str = "iam"
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    throttle_rate: int = 100
    throttle_burst: int = 200
    preload_models: str = ""
    heavy_cpu: bool = False
    heavy_cpu_memory_mb: int = 10240
    heavy_cpu_ephemeral_mb: int = 10240
    gpu: bool = False
    gpu_mode: str = "async"
    gpu_instance_type: str = "ml.g5.xlarge"
    gpu_max_instances: int = 2
    log_retention_days: int = 90
    log_level: str = "INFO"
    tracing: bool = False
    alarm_email: str | None = None
    alarm_5xx_percent: float = 1.0
    alarm_p99_latency_ms: int = 5000
    bundling: bool = True
    # "create": the stack makes an ECC_NIST_P256 signing key; an ARN: that key. Either way the
    # functions serve only versions it signed (maas publish --sign).
    signing_key: str | None = None

    @property
    def api_ephemeral(self) -> int:
        """The API function's /tmp in MB: the context's, else the default for its options."""
        if self.api_ephemeral_mb is not None:
            return self.api_ephemeral_mb
        return SNAPSTART_EPHEMERAL_MB if self.snap_start else 2048

    @classmethod
    def from_context(cls, node: Node) -> MaasConfig:
        """Read `maas:*` context (cdk.json, `-c key=value`), converting the CLI's strings."""
        values: dict[str, Any] = {}
        for f in fields(cls):
            key = "maas:" + _camel(f.name)
            raw = node.try_get_context(key)
            if raw is not None:
                values[f.name] = _convert(key, raw, f.type)
        config = cls(**values)
        config.validate()
        return config

    def validate(self) -> None:
        """Raise ConfigError naming the first unusable value."""
        _choice("maas:architecture", self.architecture, ARCHITECTURES)
        _choice("maas:auth", self.auth, AUTH)
        _choice("maas:gpuMode", self.gpu_mode, GPU_MODES)
        if self.log_level in ("WARN", "ERROR"):
            raise ConfigError(
                f"maas:logLevel={self.log_level} would make Lambda drop the INFO request lines, "
                "and the metrics they carry (each is an EMF document): use DEBUG or INFO"
            )
        _choice("maas:logLevel", self.log_level, LOG_LEVELS)
        if self.signing_key not in (None, "create") and not str(self.signing_key).startswith(
            "arn:aws"
        ):
            raise ConfigError(
                f"maas:signingKey={self.signing_key}: expected 'create' or a KMS key ARN"
            )
        if self.auth == "jwt" and not (self.jwt_issuer and self.jwt_audience):
            raise ConfigError("maas:auth=jwt needs maas:jwtIssuer and maas:jwtAudience")
        if not 128 <= self.api_memory_mb <= 10240 or not 128 <= self.batch_memory_mb <= 10240:
            raise ConfigError("Lambda memory must be between 128 and 10240 MB")
        if not 1 <= self.api_timeout_seconds <= 29:
            raise ConfigError(
                "maas:apiTimeoutSeconds must be 1-29 (API Gateway waits at most 30 s)"
            )
        if not 1 <= self.batch_timeout_seconds <= 900:
            raise ConfigError("maas:batchTimeoutSeconds must be 1-900")
        if self.snap_start and self.api_ephemeral > SNAPSTART_EPHEMERAL_MB:
            raise ConfigError(
                f"maas:apiEphemeralMb={self.api_ephemeral_mb} with maas:snapStart: SnapStart "
                f"allows at most {SNAPSTART_EPHEMERAL_MB} MB of ephemeral storage"
            )
        for key, value in (
            ("maas:batchEphemeralMb", self.batch_ephemeral_mb),
            ("maas:apiEphemeralMb", self.api_ephemeral),
            ("maas:heavyCpuEphemeralMb", self.heavy_cpu_ephemeral_mb),
        ):
            if not 512 <= value <= 10240:
                raise ConfigError(f"{key} must be 512-10240 (Lambda's ephemeral storage, MB)")
        if not 1 <= self.batch_max_concurrency <= 10000:
            raise ConfigError("maas:batchMaxConcurrency must be 1-10000 (Distributed Map's limit)")
        if not 0 <= self.batch_tolerated_failure_percent <= 100:
            raise ConfigError("maas:batchToleratedFailurePercent must be 0-100")
        if not 1 <= self.batch_shard_mb <= self.batch_shard_above_mb:
            raise ConfigError("maas:batchShardMb must be at least 1 and at most batchShardAboveMb")
        if self.snap_start and self.provisioned_concurrency:
            raise ConfigError("choose maas:snapStart or maas:provisionedConcurrency, not both")
        if self.provisioned_concurrency < 0 or self.gpu_max_instances < 1:
            raise ConfigError("concurrency and instance counts must be positive")
        self._validate_observability()

    def _validate_observability(self) -> None:
        if self.log_retention_days not in RETENTION_DAYS:
            raise ConfigError(
                "maas:logRetentionDays must be a CloudWatch Logs retention period "
                f"({', '.join(map(str, RETENTION_DAYS))}), got {self.log_retention_days}"
            )
        if not 0 < self.alarm_5xx_percent <= 100:
            raise ConfigError("maas:alarm5xxPercent must be above 0 and at most 100")
        if not 1 <= self.alarm_p99_latency_ms <= 30000:
            raise ConfigError(
                "maas:alarmP99LatencyMs must be 1-30000 (API Gateway waits at most 30 s)"
            )
        if self.alarm_email is not None and not _EMAIL.match(self.alarm_email):
            raise ConfigError(
                f"maas:alarmEmail must be an e-mail address, got {self.alarm_email!r}"
            )

    @property
    def preload(self) -> list[str]:
        """Models the API function loads while it initializes (`name:ref`, comma-separated)."""
        return [m.strip() for m in self.preload_models.split(",") if m.strip()]


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    special = {"mb": "Mb", "gpu": "Gpu", "jwt": "Jwt", "cpu": "Cpu"}
    return head + "".join(special.get(p, p.capitalize()) for p in rest)


def _choice(key: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{key} must be one of {', '.join(choices)}, got {value!r}")


def _convert(key: str, raw: Any, kind: Any) -> Any:
    text = str(kind)
    try:
        if "bool" in text:
            if isinstance(raw, bool):
                return raw
            if str(raw).lower() in ("true", "1", "yes", "on"):
                return True
            if str(raw).lower() in ("false", "0", "no", "off"):
                return False
            raise ValueError(raw)
        if "float" in text:
            return float(raw)
        if "int" in text:
            return int(raw)
        return str(raw)
    except (TypeError, ValueError):
        raise ConfigError(
            f"context {key}={raw!r} is not a valid {text.replace(' | None', '')}"
        ) from None
