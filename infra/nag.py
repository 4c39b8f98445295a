"""cdk-nag acknowledgements: each names the finding and says why it is accepted."""

from __future__ import annotations

from aws_cdk import Acknowledgment, Stack, Validations
from aws_cdk import aws_s3 as s3

PREFIX = (
    "Each function or role reads or writes only its own prefix of the bucket: a key wildcard "
    "under that prefix, never the whole bucket."
)
BASIC_EXECUTION = (
    "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
    "AWSLambdaBasicExecutionRole]"
)
SAGEMAKER_LOGS = (
    "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:"
    "log-group:/aws/sagemaker/Endpoints/*]"
)
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
GPU_REASONS: dict[str, str] = {
    "AwsSolutions-IAM5[Resource::*]": (
        "ecr:GetAuthorizationToken supports no resource-level permission; the image pull itself "
        "is granted on the one repository "
        "(https://docs.aws.amazon.com/AmazonECR/latest/userguide/security-iam-awsmanpol.html)."
    ),
    SAGEMAKER_LOGS: (
        "SageMaker writes the endpoint's logs under /aws/sagemaker/Endpoints/<name>; the name is "
        "only known at deploy, and naming it here would make the role depend on the endpoint."
    ),
}
SNAPSTART_REASONS: dict[str, str] = {
    "Annotation::@aws-cdk/aws-lambda:snapStartRequirePublish": (
        "The 'live' alias publishes a version on every change; the HTTP API invokes that alias."
    ),
}
# Which bucket prefixes are granted with a key wildcard (IAM5 names each one).
PREFIXES: dict[str, tuple[str, ...]] = {
    "models": ("models/*",),
    "batch": (
        "inputs/*",
        "outputs/*",
        "outputs/_receipts/*",
        "errors/*",
        "gpu/inputs/*",
        "gpu/outputs/*",
        "gpu/errors/*",
    ),
}


def acknowledge(
    stack: Stack, buckets: dict[str, s3.Bucket], *, gpu: bool = False, snap_start: bool = False
) -> None:
    """Record every accepted finding on the stack, with its reason."""
    reasons = dict(REASONS) | (GPU_REASONS if gpu else {})
    for name, bucket in buckets.items():
        logical_id = stack.get_logical_id(bucket.node.default_child)  # type: ignore[arg-type]
        for prefix in PREFIXES[name]:
            reasons[f"AwsSolutions-IAM5[Resource::<{logical_id}.Arn>/{prefix}]"] = PREFIX
    for rule, reason in reasons.items():
        Validations.of(stack).acknowledge(Acknowledgment(id=f"AwsSolutions::{rule}", reason=reason))
    if snap_start:
        for rule, reason in SNAPSTART_REASONS.items():
            Validations.of(stack).acknowledge(Acknowledgment(id=rule, reason=reason))
