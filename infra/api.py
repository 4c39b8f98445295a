"""The API: the serving function behind an HTTP API (IAM or JWT auth, throttled, logged)."""

from __future__ import annotations

import json
from dataclasses import dataclass

import jsii
from aws_cdk import Size
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_apigatewayv2_authorizers as authorizers
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from .config import MaasConfig
from .functions import cache_mb, python_function
from .grants import read_prefix
from .telemetry import log_group

ACCESS_LOG_FORMAT = json.dumps(
    {
        "requestId": "$context.requestId",
        "ip": "$context.identity.sourceIp",
        "caller": "$context.identity.caller",
        "requestTime": "$context.requestTime",
        "method": "$context.httpMethod",
        "routeKey": "$context.routeKey",
        "path": "$context.path",
        "status": "$context.status",
        "protocol": "$context.protocol",
        "responseLength": "$context.responseLength",
        "latencyMs": "$context.responseLatency",
        "integrationError": "$context.integrationErrorMessage",
        "authorizerError": "$context.authorizer.error",
    }
)


@jsii.implements(apigwv2.IAccessLogSettings)
class _AccessLogs:
    """JSON access logs into a log group."""

    def __init__(self, group: logs.ILogGroup) -> None:
        self._destination = apigwv2.LogGroupLogDestination(group)

    @property
    def destination(self) -> apigwv2.IAccessLogDestination:
        return self._destination

    @property
    def format(self) -> apigw.AccessLogFormat:
        return apigw.AccessLogFormat.custom(ACCESS_LOG_FORMAT)


@dataclass(frozen=True)
class GpuForwarding:
    """Where the API function forwards requests for models published with `--target gpu`."""

    endpoint_name: str
    mode: str
    async_input: str  # s3://bucket/prefix for asynchronous request bodies


class ModelApi(Construct):
    """Owns the API function, its alias and HTTP API: `function`, `target`, `http_api`, `stage`."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        code: lambda_.Code,
        config: MaasConfig,
        models: s3.IBucket,
        gpu: GpuForwarding | None = None,
    ) -> None:
        super().__init__(scope, id)
        environment = {
            "MAAS_STORE": f"s3://{models.bucket_name}",
            "MAAS_PRELOAD": ",".join(config.preload),
            "MAAS_CACHE_MAX_MB": str(cache_mb(config.api_ephemeral)),
        }
        if gpu is not None:
            environment |= {
                "MAAS_GPU_ENDPOINT": gpu.endpoint_name,
                "MAAS_GPU_MODE": gpu.mode,
                "MAAS_GPU_ASYNC_INPUT": gpu.async_input,
            }
        self.function = python_function(
            self,
            handler="functions.api.handler.handler",
            code=code,
            config=config,
            service="maas-api",
            memory_mb=config.api_memory_mb,
            timeout_seconds=config.api_timeout_seconds,
            environment=environment,
            description="serverless-maas API: Open Inference Protocol v2 and v1 predict",
            reserved_concurrent_executions=config.reserved_concurrency,
            ephemeral_storage_size=Size.mebibytes(config.api_ephemeral),
            snap_start=lambda_.SnapStartConf.ON_PUBLISHED_VERSIONS if config.snap_start else None,
        )
        # Read-only on models/: the API never writes the model store.
        read_prefix(self.function, models, "models/")
        self.target: lambda_.IFunction = self.function
        if config.provisioned_concurrency or config.snap_start:
            self.target = lambda_.Alias(
                self,
                "Live",
                alias_name="live",
                version=self.function.current_version,
                provisioned_concurrent_executions=config.provisioned_concurrency or None,
            )
        if config.auth == "jwt":
            assert config.jwt_issuer and config.jwt_audience
            authorizer: apigwv2.IHttpRouteAuthorizer = authorizers.HttpJwtAuthorizer(
                "Jwt", config.jwt_issuer, jwt_audience=[config.jwt_audience]
            )
        else:
            authorizer = authorizers.HttpIamAuthorizer()
        self.http_api = apigwv2.HttpApi(
            self,
            "Http",
            description="serverless-maas: OIP v2 and v1 predict",
            create_default_stage=False,
            default_authorizer=authorizer,
            default_integration=integrations.HttpLambdaIntegration("Serve", self.target),
        )
        self.access_logs = log_group(self, "AccessLogs", config=config)
        self.stage = apigwv2.HttpStage(
            self,
            "Stage",
            http_api=self.http_api,
            stage_name="$default",
            auto_deploy=True,
            throttle=apigwv2.ThrottleSettings(
                rate_limit=config.throttle_rate, burst_limit=config.throttle_burst
            ),
            access_log_settings=_AccessLogs(self.access_logs),
        )
