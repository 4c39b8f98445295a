"""The heavy-CPU function: the same handlers in a Lambda container image (up to 10 GB)."""

from __future__ import annotations

from aws_cdk import Duration, Size
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from constructs import Construct

from .bundling import ROOT
from .config import MaasConfig
from .functions import architecture, cache_mb
from .grants import read_prefix
from .telemetry import function_props

# What the image builds never need (kept out of the Docker build context and the asset hash).
CONTEXT_EXCLUDE = [
    ".git",
    ".venv",
    "node_modules",
    "cdk.out",
    ".maas",
    ".hypothesis",
    ".mypy_cache",
    ".pytest_cache",
    ".ruff_cache",
    "**/__pycache__",
    "tests",
    "bench",
    "docs",
    "model_build",
]


def image_platform(name: str) -> ecr_assets.Platform:
    """The Docker platform for a context architecture."""
    return ecr_assets.Platform.LINUX_ARM64 if name == "arm64" else ecr_assets.Platform.LINUX_AMD64


class HeavyCpuFunction(Construct):
    """Owns the container function; requests reach it under /heavy on the HTTP API."""

    BASE_PATH = "/heavy"

    def __init__(
        self, scope: Construct, id: str, *, config: MaasConfig, models: s3.IBucket
    ) -> None:
        super().__init__(scope, id)
        self.function = lambda_.DockerImageFunction(
            self,
            "Function",
            code=lambda_.DockerImageCode.from_image_asset(
                str(ROOT),
                file="functions/container/Dockerfile",
                platform=image_platform(config.architecture),
                exclude=CONTEXT_EXCLUDE,
            ),
            architecture=architecture(config.architecture),
            memory_size=config.heavy_cpu_memory_mb,
            ephemeral_storage_size=Size.mebibytes(config.heavy_cpu_ephemeral_mb),
            timeout=Duration.seconds(config.api_timeout_seconds),
            description="serverless-maas heavy-CPU API: the same app in a container image",
            **function_props(
                self,
                service="maas-heavy",
                config=config,
                environment={
                    "MAAS_STORE": f"s3://{models.bucket_name}",
                    "MAAS_API_BASE_PATH": self.BASE_PATH,
                    "MAAS_CACHE_MAX_MB": str(cache_mb(config.heavy_cpu_ephemeral_mb)),
                },
            ),
        )
        read_prefix(self.function, models, "models/")
