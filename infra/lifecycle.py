"""The canary rollback: an alarm named `maas-canary-*` going into ALARM rolls its canary back."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from constructs import Construct

from functions.lifecycle.rollback import ALARM_PREFIX

from .config import MaasConfig
from .grants import read_prefix


class CanaryRollback(Construct):
    """Owns the rollback function and the EventBridge rule that feeds it: `function`, `rule`."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        code: lambda_.Code,
        config: MaasConfig,
        models: s3.IBucket,
    ) -> None:
        super().__init__(scope, id)
        from .functions import python_function

        self.function = python_function(
            self,
            handler="functions.lifecycle.rollback.handler",
            code=code,
            config=config,
            service="maas-rollback",
            memory_mb=256,
            timeout_seconds=60,
            environment={"MAAS_STORE": f"s3://{models.bucket_name}"},
            description="serverless-maas: rolls a canary back when its alarm fires",
        )
        # Reads manifests and aliases; writes aliases only.
        read_prefix(self.function, models, "models/")
        iam.Grant.add_to_principal(
            grantee=self.function,
            actions=["s3:PutObject"],
            resource_arns=[models.arn_for_objects("models/*/aliases/*")],
        )
        self.rule = events.Rule(
            self,
            "CanaryAlarm",
            description="A maas-canary-* alarm went into ALARM: roll its canary back",
            event_pattern=events.EventPattern(
                source=["aws.cloudwatch"],
                detail_type=["CloudWatch Alarm State Change"],
                detail={
                    "alarmName": events.Match.prefix(ALARM_PREFIX),
                    "state": {"value": ["ALARM"]},
                },
            ),
        )
        self.rule.add_target(
            targets.LambdaFunction(self.function, retry_attempts=4, max_event_age=Duration.hours(1))
        )
