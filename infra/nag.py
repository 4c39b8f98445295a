"""cdk-nag acknowledgements: each names the finding and says why it is accepted."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Acknowledgment, Stack, Validations
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_stepfunctions as sfn
from constructs import IConstruct

PREFIX = (
    "Each function or role reads or writes only its own prefix of the bucket: a key wildcard "
    "under that prefix, never the whole bucket."
)
BASIC_EXECUTION = (
    "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
    "AWSLambdaBasicExecutionRole]"
)
STAR = "AwsSolutions-IAM5[Resource::*]"
REASONS: dict[str, str] = {
    BASIC_EXECUTION: (
        "AWSLambdaBasicExecutionRole only allows writing the function's own CloudWatch Logs."
    ),
    "AwsSolutions-S1": (
        "The access-log bucket receives the other buckets' server access logs; logging it to "
        "itself would loop."
    ),
    "AwsSolutions-L1": (
        "Python 3.12 is chosen on purpose: the asset's wheels are built for cp312 and the "
        "design fixes this runtime; moving on is a deliberate change, not an automatic one."
    ),
}
# These two are acknowledged on the construct that holds the statement, not stack-wide, so that
# neither reason covers the other's '*'.
GPU_ROLE_REASON = (
    "ecr:GetAuthorizationToken supports no resource-level permission; the image pull itself "
    "is granted on the one repository "
    "(https://docs.aws.amazon.com/AmazonECR/latest/userguide/security-iam-awsmanpol.html)."
)
TRACING_REASON = (
    "Active tracing: xray:PutTraceSegments and xray:PutTelemetryRecords support no "
    "resource-level permission, so Lambda's own tracing grant names '*' "
    "(https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsx-ray.html)."
)
SNAPSTART_REASONS: dict[str, str] = {
    "Annotation::@aws-cdk/aws-lambda:snapStartRequirePublish": (
        "The 'live' alias publishes a version on every change; the HTTP API invokes that alias."
    ),
}
# Which bucket prefixes are granted with a key wildcard (IAM5 names each one).
PREFIXES: dict[str, tuple[str, ...]] = {
    "models": ("models/*", "models/*/aliases/*"),
    "batch": (
        "inputs/*",
        "outputs/*",
        "outputs/_receipts/*",
        "outputs/_shards/*",
        "errors/*",
        "gpu/inputs/*",
        "gpu/outputs/*",
        "gpu/errors/*",
    ),
}


def acknowledge_shards(
    stack: Stack,
    machine: sfn.StateMachine,
    shard: lambda_.Function,
    batch: s3.Bucket,
    *,
    traced: bool,
) -> None:
    """The shard state machine's role: the grants CDK's Distributed Map and tasks give it."""
    ids = {
        name: stack.get_logical_id(c.node.default_child)  # type: ignore[arg-type]
        for name, c in (("machine", machine), ("shard", shard), ("batch", batch))
    }
    execution = (
        'arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:{"Fn::Select":'
        f'[6,{{"Fn::Split":[":",{{"Ref":"{ids["machine"]}"}}]}}]}}'
    )
    reasons = {
        f"arn:<AWS::Partition>:s3:::<{ids['batch']}>/*": (
            "The Distributed Map's S3 item reader is granted GetObject on the batch bucket's "
            "keys by CDK (the items object's key is known only at run time); executions are "
            "started only by the batch function, with keys under outputs/_shards/."
        ),
        f"<{ids['shard']}.Arn>:*": (
            "CDK's LambdaInvoke grant covers the shard function's versions and aliases."
        ),
        "*": (
            "Step Functions logging: its log delivery actions (logs:CreateLogDelivery and the "
            "rest) support no resource-level permission, nor, with maas:tracing, X-Ray's "
            "(https://docs.aws.amazon.com/step-functions/latest/dg/cw-logs.html)."
        ),
        f"{execution}:*": "Distributed Map describes and stops its own child executions.",
        f"{execution}/*:*": "Distributed Map describes and stops its own child executions.",
    }
    for resource, reason in reasons.items():
        _acknowledge(machine, f"AwsSolutions::AwsSolutions-IAM5[Resource::{resource}]", reason)
    if not traced:
        _acknowledge(
            machine,
            "AwsSolutions::AwsSolutions-SF2",
            "X-Ray tracing follows maas:tracing, off by default like the functions' tracing.",
        )


def acknowledge(
    stack: Stack,
    buckets: dict[str, s3.Bucket],
    *,
    gpu_role: IConstruct | None = None,
    traced: Sequence[IConstruct] = (),
    snap_start: bool = False,
) -> None:
    """Record every accepted finding, with its reason, on the narrowest scope that has it."""
    reasons = dict(REASONS)
    for name, bucket in buckets.items():
        logical_id = stack.get_logical_id(bucket.node.default_child)  # type: ignore[arg-type]
        for prefix in PREFIXES[name]:
            reasons[f"AwsSolutions-IAM5[Resource::<{logical_id}.Arn>/{prefix}]"] = PREFIX
    for rule, reason in reasons.items():
        _acknowledge(stack, f"AwsSolutions::{rule}", reason)
    if gpu_role is not None:
        _acknowledge(gpu_role, f"AwsSolutions::{STAR}", GPU_ROLE_REASON)
    for function in traced:
        _acknowledge(function, f"AwsSolutions::{STAR}", TRACING_REASON)
    if snap_start:
        for rule, reason in SNAPSTART_REASONS.items():
            _acknowledge(stack, rule, reason)


def _acknowledge(scope: IConstruct, id: str, reason: str) -> None:
    Validations.of(scope).acknowledge(Acknowledgment(id=id, reason=reason))
