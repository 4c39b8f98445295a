"""The stack: wires the constructs, grants what crosses them, and outputs what users need."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, RemovalPolicy, Stack
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from .alarms import Alarms
from .api import GpuForwarding, ModelApi
from .batch import BatchPipeline
from .bundling import function_code
from .config import MaasConfig
from .container import HeavyCpuFunction
from .dashboard import ServiceDashboard
from .gpu import ASYNC_PREFIX, GpuEndpoint
from .grants import read_objects, write_prefix
from .lifecycle import CanaryRollback
from .nag import acknowledge, acknowledge_shards
from .storage import Storage
from .telemetry import keep_handler_logs


class MaasStack(Stack):
    """Storage, API, batch pipeline, and the optional heavy-CPU and GPU variants."""

    def __init__(self, scope: Construct, id: str, *, config: MaasConfig, **kwargs: Any) -> None:
        super().__init__(
            scope, id, description="serverless-maas: ONNX models as a service", **kwargs
        )
        self.config = config
        storage = Storage(self, "Storage", log_retention_days=config.log_retention_days)
        code = function_code(architecture=config.architecture, install=config.bundling)
        # The batch functions read and write .parquet: their own asset carries pyarrow, which
        # would put the API's over its size budget (docs/deploy.md)
        batch_code = function_code(
            architecture=config.architecture, install=config.bundling, extras=("parquet",)
        )
        self.gpu = (
            GpuEndpoint(self, "Gpu", config=config, models=storage.models, io=storage.batch)
            if config.gpu
            else None
        )
        forwarding = None
        if self.gpu is not None:
            forwarding = GpuForwarding(self.gpu.endpoint_name, self.gpu.mode, self.gpu.async_input)
        self.api = ModelApi(
            self, "Api", code=code, config=config, models=storage.models, gpu=forwarding
        )
        self.batch = BatchPipeline(
            self,
            "Batch",
            code=batch_code,
            config=config,
            bucket=storage.batch,
            models=storage.models,
        )
        if self.gpu is not None:
            self.api.function.add_to_role_policy(
                iam.PolicyStatement(
                    actions=["sagemaker:InvokeEndpoint", "sagemaker:InvokeEndpointAsync"],
                    resources=[self.gpu.endpoint_arn],
                )
            )
            write_prefix(self.api.function, storage.batch, f"{ASYNC_PREFIX}/inputs/")
            if self.gpu.mode == "async":
                # GET /v2/models/{name}/async/{id}: the API reads the request's ticket and the
                # endpoint's answer (encrypted with the endpoint's key) for the client.
                for prefix in ("inputs/", "outputs/", "errors/"):
                    read_objects(self.api.function, storage.batch, f"{ASYNC_PREFIX}/{prefix}")
                self.gpu.key.grant_decrypt(self.api.function)
        self.rollback = CanaryRollback(
            self, "Rollback", code=code, config=config, models=storage.models
        )
        self.heavy = None
        if config.heavy_cpu:
            self.heavy = HeavyCpuFunction(self, "Heavy", config=config, models=storage.models)
            self.api.http_api.add_routes(
                path=f"{HeavyCpuFunction.BASE_PATH}/{{proxy+}}",
                methods=[apigwv2.HttpMethod.ANY],
                integration=integrations.HttpLambdaIntegration("HeavyServe", self.heavy.function),
            )
        self.storage = storage
        self.signing_key = self._require_signatures()
        self._observe()
        CfnOutput(
            self,
            "ApiUrl",
            value=self.api.http_api.api_endpoint,
            description="HTTPS endpoint (IAM/SigV4 or JWT)",
        )
        CfnOutput(
            self,
            "ModelStore",
            value=f"s3://{storage.models.bucket_name}",
            description="MAAS_STORE for `maas publish`",
        )
        CfnOutput(
            self,
            "BatchBucket",
            value=storage.batch.bucket_name,
            description="upload under inputs/{model}/{version}/",
        )
        CfnOutput(self, "DeadLetterQueue", value=self.batch.dead_letters.queue_url)
        if self.gpu is not None:
            CfnOutput(self, "GpuEndpoint", value=self.gpu.endpoint_name)
        CfnOutput(
            self,
            "AlarmTopic",
            value=self.alarms.topic.topic_arn,
            description="every alarm notifies this SNS topic (subscribe with maas:alarmEmail)",
        )
        CfnOutput(self, "DashboardName", value=self.dashboard.dashboard.dashboard_name)
        acknowledge(
            self,
            {"models": storage.models, "batch": storage.batch},
            gpu_role=self.gpu.role if self.gpu is not None else None,
            traced=list(self.functions.values()) if config.tracing else (),
            snap_start=config.snap_start,
        )
        acknowledge_shards(
            self,
            self.batch.shards,
            self.batch.shard_function,
            storage.batch,
            traced=config.tracing,
        )

    def _require_signatures(self) -> kms.IKey | None:
        """maas:signingKey: the functions serve only versions whose manifest this key signed;
        they may verify with it, nothing else."""
        if self.config.signing_key is None:
            return None
        if self.config.signing_key == "create":
            key: kms.IKey = kms.Key(
                self,
                "SigningKey",
                description="serverless-maas: signs model manifests (maas publish --sign)",
                key_spec=kms.KeySpec.ECC_NIST_P256,
                key_usage=kms.KeyUsage.SIGN_VERIFY,
                removal_policy=RemovalPolicy.RETAIN,
            )
        else:
            key = kms.Key.from_key_arn(self, "SigningKey", self.config.signing_key)
        serving = [self.api.function, self.batch.function, self.batch.shard_function]
        if self.heavy is not None:
            serving.append(self.heavy.function)
        for function in serving:
            function.add_environment("MAAS_REQUIRE_SIGNATURE", "true")
            function.add_environment("MAAS_SIGNING_KEY", key.key_arn)
            key.grant(function, "kms:Verify")
        CfnOutput(self, "SigningKeyArn", value=key.key_arn, description="maas publish --sign KEY")
        return key

    def _observe(self) -> None:
        """`functions` by service name, the alarms on them and the rest, and the dashboard."""
        functions: dict[str, lambda_.Function] = {
            "maas-api": self.api.function,
            "maas-batch": self.batch.function,
            "maas-batch-shard": self.batch.shard_function,
            "maas-rollback": self.rollback.function,
        }
        if self.heavy is not None:
            functions["maas-heavy"] = self.heavy.function
        self.functions = functions
        keep_handler_logs(self, config=self.config)
        self.alarms = Alarms(
            self,
            "Alarms",
            config=self.config,
            stage=self.api.stage,
            functions=functions,
            gpu=self.gpu,
            existing=[self.batch.alarm, self.batch.shards_alarm],
        )
        self.dashboard = ServiceDashboard(
            self,
            "Dashboard",
            stage=self.api.stage,
            functions=functions,
            inputs=self.batch.queue,
            dead_letters=self.batch.dead_letters,
            alarms=self.alarms.alarms,
            gpu=self.gpu,
        )
