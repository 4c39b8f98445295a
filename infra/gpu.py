"""The GPU variant: a SageMaker endpoint serving the same app from the GPU image.

Asynchronous by default: requests and results travel through S3, SNS announces each result,
and the endpoint scales to zero instances when there is no backlog (a real-time endpoint
cannot). `maas:gpuMode=realtime` makes it a real-time endpoint with at least one instance.
"""

from __future__ import annotations

from aws_cdk import ArnFormat, Duration, Names, Stack
from aws_cdk import aws_applicationautoscaling as autoscaling
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk import aws_sns as sns
from constructs import Construct

from .bundling import ROOT
from .config import MaasConfig
from .container import CONTEXT_EXCLUDE
from .grants import read_prefix, write_prefix
from .telemetry import log_group, powertools

VARIANT = "AllTraffic"
ASYNC_PREFIX = "gpu"
# Target tracking keeps about this many queued requests per instance (asynchronous mode).
BACKLOG_PER_INSTANCE = 5


class GpuEndpoint(Construct):
    """Owns the image, model, endpoint config, endpoint, topics and scaling."""

    def __init__(
        self, scope: Construct, id: str, *, config: MaasConfig, models: s3.IBucket, io: s3.IBucket
    ) -> None:
        super().__init__(scope, id)
        self.mode = config.gpu_mode
        self.image = ecr_assets.DockerImageAsset(
            self,
            "Image",
            directory=str(ROOT),
            file="functions/container/Dockerfile.gpu",
            platform=ecr_assets.Platform.LINUX_AMD64,  # SageMaker GPU instances are x86_64
            exclude=CONTEXT_EXCLUDE,
        )
        self.role = iam.Role(
            self, "Role", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com")
        )
        self.image.repository.grant_pull(self.role)
        read_prefix(self.role, models, "models/")
        # Named at synth, in lower case: SageMaker's endpoint ARNs are lower case and IAM compares
        # ARNs case-sensitively, so the invoke grant can name this one endpoint exactly.
        self.name = Names.unique_resource_name(
            self, max_length=63, separator="-", allowed_special_characters="-"
        ).lower()
        # SageMaker logs to /aws/sagemaker/Endpoints/<name>; created here so it has a retention
        # (SageMaker would create it without one) and the role writes to this group only.
        logs_name = f"/aws/sagemaker/Endpoints/{self.name}"
        self.logs = log_group(self, "Logs", config=config, log_group_name=logs_name)
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[
                    Stack.of(self).format_arn(
                        service="logs",
                        resource="log-group",
                        resource_name=logs_name,
                        arn_format=ArnFormat.COLON_RESOURCE_NAME,
                    ),
                    self.logs.log_group_arn,  # the group's streams (its ARN ends in :*)
                ],
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(actions=["ecr:GetAuthorizationToken"], resources=["*"])
        )
        self.key = kms.Key(
            self, "Key", enable_key_rotation=True, description="serverless-maas GPU endpoint data"
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey"],
                resources=[self.key.key_arn],
            )
        )
        model = sagemaker.CfnModel(
            self,
            "Model",
            execution_role_arn=self.role.role_arn,
            primary_container=sagemaker.CfnModel.ContainerDefinitionProperty(
                image=self.image.image_uri,
                # No X-Ray daemon runs beside a SageMaker container: its tracer stays off.
                environment={
                    "MAAS_STORE": f"s3://{models.bucket_name}",
                    "MAAS_DEVICE": "cuda",
                    **powertools("maas-gpu", config=config, tracing=False),
                },
            ),
        )
        model.node.add_dependency(self.role)
        async_config = None
        self.success_topic: sns.Topic | None = None
        self.error_topic: sns.Topic | None = None
        self.async_input = f"s3://{io.bucket_name}/{ASYNC_PREFIX}/inputs"
        if self.mode == "async":
            self.success_topic = sns.Topic(self, "Succeeded", master_key=self.key, enforce_ssl=True)
            self.error_topic = sns.Topic(self, "Failed", master_key=self.key, enforce_ssl=True)
            self.role.add_to_policy(
                iam.PolicyStatement(
                    actions=["sns:Publish"],
                    resources=[self.success_topic.topic_arn, self.error_topic.topic_arn],
                )
            )
            read_prefix(self.role, io, f"{ASYNC_PREFIX}/inputs/")
            write_prefix(self.role, io, f"{ASYNC_PREFIX}/outputs/")
            write_prefix(self.role, io, f"{ASYNC_PREFIX}/errors/")
            async_config = sagemaker.CfnEndpointConfig.AsyncInferenceConfigProperty(
                output_config=sagemaker.CfnEndpointConfig.AsyncInferenceOutputConfigProperty(
                    s3_output_path=f"s3://{io.bucket_name}/{ASYNC_PREFIX}/outputs/",
                    s3_failure_path=f"s3://{io.bucket_name}/{ASYNC_PREFIX}/errors/",
                    kms_key_id=self.key.key_arn,
                    notification_config=sagemaker.CfnEndpointConfig.AsyncInferenceNotificationConfigProperty(
                        success_topic=self.success_topic.topic_arn,
                        error_topic=self.error_topic.topic_arn,
                    ),
                ),
                client_config=sagemaker.CfnEndpointConfig.AsyncInferenceClientConfigProperty(
                    max_concurrent_invocations_per_instance=4
                ),
            )
        endpoint_config = sagemaker.CfnEndpointConfig(
            self,
            "Config",
            kms_key_id=self.key.key_arn,
            production_variants=[
                sagemaker.CfnEndpointConfig.ProductionVariantProperty(
                    variant_name=VARIANT,
                    model_name=model.attr_model_name,
                    instance_type=config.gpu_instance_type,
                    initial_instance_count=1,
                )
            ],
            async_inference_config=async_config,
        )
        self.endpoint = sagemaker.CfnEndpoint(
            self,
            "Endpoint",
            endpoint_name=self.name,
            endpoint_config_name=endpoint_config.attr_endpoint_config_name,
        )
        self.endpoint.node.add_dependency(self.logs)
        self._scale(config)

    @property
    def endpoint_name(self) -> str:
        """The endpoint's name (a token until deploy)."""
        return self.endpoint.attr_endpoint_name

    @property
    def endpoint_arn(self) -> str:
        """The endpoint's ARN, for invoke permissions."""
        return Stack.of(self).format_arn(
            service="sagemaker", resource="endpoint", resource_name=self.name
        )

    def metric(
        self,
        name: str,
        *,
        statistic: str = "Average",
        minutes: int = 1,
        variant: bool = False,
    ) -> cloudwatch.Metric:
        """An AWS/SageMaker metric of this endpoint (of its variant, for per-variant metrics)."""
        dimensions = {"EndpointName": self.endpoint_name}
        if variant:
            dimensions["VariantName"] = VARIANT
        return cloudwatch.Metric(
            namespace="AWS/SageMaker",
            metric_name=name,
            dimensions_map=dimensions,
            statistic=statistic,
            period=Duration.minutes(minutes),
        )

    def _scale(self, config: MaasConfig) -> None:
        minimum = 0 if self.mode == "async" else 1  # only asynchronous endpoints reach zero
        target = autoscaling.ScalableTarget(
            self,
            "Scaling",
            service_namespace=autoscaling.ServiceNamespace.SAGEMAKER,
            resource_id=f"endpoint/{self.endpoint_name}/variant/{VARIANT}",
            scalable_dimension="sagemaker:variant:DesiredInstanceCount",
            min_capacity=minimum,
            max_capacity=config.gpu_max_instances,
        )
        if self.mode == "realtime":
            target.scale_to_track_metric(
                "Invocations",
                target_value=100,
                predefined_metric=autoscaling.PredefinedMetric.SAGEMAKER_VARIANT_INVOCATIONS_PER_INSTANCE,
            )
            return
        target.scale_to_track_metric(
            "Backlog",
            target_value=BACKLOG_PER_INSTANCE,
            custom_metric=self.metric("ApproximateBacklogSizePerInstance"),
            scale_in_cooldown=Duration.minutes(10),
            scale_out_cooldown=Duration.minutes(2),
        )
        # Target tracking cannot leave zero instances (no instances, no per-instance backlog):
        # a step policy on HasBacklogWithoutCapacity starts the first one.
        # https://docs.aws.amazon.com/sagemaker/latest/dg/async-inference-autoscale.html
        target.scale_on_metric(
            "FromZero",
            metric=self.metric("HasBacklogWithoutCapacity"),
            scaling_steps=[
                autoscaling.ScalingInterval(upper=0.5, change=0),
                autoscaling.ScalingInterval(lower=0.5, change=1),
            ],
            adjustment_type=autoscaling.AdjustmentType.CHANGE_IN_CAPACITY,
            cooldown=Duration.minutes(2),
        )
