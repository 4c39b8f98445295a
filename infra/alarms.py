"""Alarms: what calls for a person, each notifying one encrypted topic."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aws_cdk import ArnFormat, Duration, Stack
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from .config import MaasConfig
from .gpu import BACKLOG_PER_INSTANCE, GpuEndpoint

PERIOD = Duration.minutes(5)
# Fewer requests than this in a period make a 5xx rate noise (one error in two is 50 %).
MIN_REQUESTS = 10
_AT_LEAST = cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD
_ABOVE = cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD


class Alarms(Construct):
    """Owns the alarm topic (`topic`) and the alarms; each one in `alarms` notifies the topic."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: MaasConfig,
        stage: apigwv2.HttpStage,
        functions: Mapping[str, lambda_.IFunction],
        gpu: GpuEndpoint | None = None,
        existing: Sequence[cloudwatch.Alarm] = (),
    ) -> None:
        super().__init__(scope, id)
        self.topic = self._topic(config.alarm_email)
        self.alarms: list[cloudwatch.Alarm] = [*existing, *self._api(config, stage)]
        for service, function in functions.items():
            self.alarms += self._function(service, function)
        if gpu is not None:
            self.alarms.append(self._gpu(config, gpu))
        action = actions.SnsAction(self.topic)
        for alarm in self.alarms:
            alarm.add_alarm_action(action)
            alarm.add_ok_action(action)

    def _topic(self, email: str | None) -> sns.Topic:
        key = kms.Key(
            self, "Key", enable_key_rotation=True, description="serverless-maas alarm topic"
        )
        # CloudWatch needs the topic's key to publish to it (an AWS managed key cannot grant that).
        # https://repost.aws/knowledge-center/cloudwatch-receive-sns-for-alarm-trigger
        key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],  # in a key policy, "*" is this key
            )
        )
        topic = sns.Topic(
            self, "Topic", display_name="serverless-maas alarms", master_key=key, enforce_ssl=True
        )
        stack = Stack.of(self)
        topic.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[topic.topic_arn],
                # Only this account's alarms (the confused-deputy guard CloudWatch documents).
                conditions={
                    "ArnLike": {
                        "aws:SourceArn": stack.format_arn(
                            service="cloudwatch",
                            resource="alarm",
                            resource_name="*",
                            arn_format=ArnFormat.COLON_RESOURCE_NAME,
                        )
                    },
                    "StringEquals": {"aws:SourceAccount": stack.account},
                },
            )
        )
        if email is not None:
            topic.add_subscription(subscriptions.EmailSubscription(email))
        return topic

    def _api(self, config: MaasConfig, stage: apigwv2.HttpStage) -> list[cloudwatch.Alarm]:
        rate = cloudwatch.MathExpression(
            expression=f"IF(requests >= {MIN_REQUESTS}, 100 * FILL(errors, 0) / requests, 0)",
            using_metrics={
                "requests": stage.metric_count(statistic="Sum", period=PERIOD),
                "errors": stage.metric_server_error(statistic="Sum", period=PERIOD),
            },
            label="5xx responses (% of requests)",
            period=PERIOD,
        )
        latency = stage.metric_latency(statistic="p99", period=PERIOD)
        return [
            self._alarm(
                "Api5xxRate",
                rate,
                threshold=config.alarm_5xx_percent,
                periods=2,
                comparison=_ABOVE,
                description=(
                    f"API: more than {config.alarm_5xx_percent:g} % of requests answered 5xx "
                    "for 10 minutes (an input mistake is never a 5xx: the service is failing)"
                ),
            ),
            self._alarm(
                "ApiLatencyP99",
                latency,
                threshold=config.alarm_p99_latency_ms,
                periods=3,
                comparison=_ABOVE,
                description=(
                    f"API: p99 latency above {config.alarm_p99_latency_ms} ms for 15 minutes"
                ),
            ),
        ]

    def _function(self, service: str, function: lambda_.IFunction) -> list[cloudwatch.Alarm]:
        return [
            self._alarm(
                f"{service}-errors",
                function.metric_errors(statistic="Sum", period=PERIOD),
                threshold=1,
                description=(
                    f"{service}: the function failed (an unhandled error, a timeout or out of "
                    "memory; answered errors are not counted here)"
                ),
            ),
            self._alarm(
                f"{service}-throttles",
                function.metric_throttles(statistic="Sum", period=PERIOD),
                threshold=1,
                description=f"{service}: invocations were throttled (concurrency exhausted)",
            ),
        ]

    def _gpu(self, config: MaasConfig, gpu: GpuEndpoint) -> cloudwatch.Alarm:
        if gpu.mode == "async":
            # Twice what the fleet at its maximum size is scaled to hold: scaling cannot keep up.
            limit = 2 * BACKLOG_PER_INSTANCE * config.gpu_max_instances
            return self._alarm(
                "GpuBacklog",
                gpu.metric("ApproximateBacklogSize", minutes=5),
                threshold=limit,
                periods=3,
                comparison=_ABOVE,
                description=f"GPU: more than {limit} requests queued for 15 minutes",
            )
        return self._alarm(
            "Gpu5xx",
            gpu.metric("Invocation5XXErrors", statistic="Sum", minutes=5, variant=True),
            threshold=1,
            description="GPU: the endpoint's container answered 5xx",
        )

    def _alarm(
        self,
        id: str,
        metric: cloudwatch.IMetric,
        *,
        threshold: float,
        description: str,
        periods: int = 1,
        comparison: cloudwatch.ComparisonOperator = _AT_LEAST,
    ) -> cloudwatch.Alarm:
        """Breaching on every one of `periods` periods; no data (no traffic) is not breaching."""
        return cloudwatch.Alarm(
            self,
            id,
            metric=metric,
            threshold=threshold,
            evaluation_periods=periods,
            comparison_operator=comparison,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            alarm_description=description,
        )
