"""Least-privilege S3 grants: exact actions on one prefix (the grant_* helpers use wildcards)."""

from __future__ import annotations

from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3


def read_objects(grantee: iam.IGrantable, bucket: s3.IBucket, prefix: str) -> None:
    """GetObject under `prefix`, no listing: keys known from elsewhere (an id, a ticket)."""
    iam.Grant.add_to_principal(
        grantee=grantee,
        actions=["s3:GetObject"],
        resource_arns=[bucket.arn_for_objects(f"{prefix}*")],
    )


def read_prefix(grantee: iam.IGrantable, bucket: s3.IBucket, prefix: str) -> None:
    """GetObject under `prefix`, and ListBucket limited to keys under it."""
    iam.Grant.add_to_principal(
        grantee=grantee,
        actions=["s3:GetObject"],
        resource_arns=[bucket.arn_for_objects(f"{prefix}*")],
    )
    grantee.grant_principal.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["s3:ListBucket"],
            resources=[bucket.bucket_arn],
            conditions={"StringLike": {"s3:prefix": [f"{prefix}*"]}},
        )
    )


def write_prefix(grantee: iam.IGrantable, bucket: s3.IBucket, prefix: str) -> None:
    """PutObject (multipart included) under `prefix`; nothing else."""
    iam.Grant.add_to_principal(
        grantee=grantee,
        actions=["s3:PutObject", "s3:AbortMultipartUpload"],
        resource_arns=[bucket.arn_for_objects(f"{prefix}*")],
    )
