"""Storage: the models bucket, the batch bucket, and the bucket their access logs go to."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_s3 as s3
from constructs import Construct


def _bucket(scope: Construct, id: str, **props: object) -> s3.Bucket:
    """Secure defaults: SSE-S3, TLS only, no public access, owner-enforced objects."""
    return s3.Bucket(
        scope,
        id,
        encryption=s3.BucketEncryption.S3_MANAGED,
        enforce_ssl=True,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        removal_policy=RemovalPolicy.RETAIN,
        **props,  # type: ignore[arg-type]
    )


class Storage(Construct):
    """Owns the buckets; exposes them as `models`, `batch` and `access_logs`."""

    def __init__(self, scope: Construct, id: str, *, log_retention_days: int) -> None:
        super().__init__(scope, id)
        self.access_logs = _bucket(
            self,
            "AccessLogs",
            lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(log_retention_days))],
        )
        self.models = _bucket(
            self,
            "Models",
            versioned=True,  # artifacts are never overwritten; versioning guards against mistakes
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix="models/",
            lifecycle_rules=[
                s3.LifecycleRule(noncurrent_version_expiration=Duration.days(90)),
                s3.LifecycleRule(abort_incomplete_multipart_upload_after=Duration.days(7)),
            ],
        )
        self.batch = _bucket(
            self,
            "Batch",
            versioned=True,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix="batch/",
            lifecycle_rules=[
                s3.LifecycleRule(prefix="inputs/", expiration=Duration.days(30)),
                s3.LifecycleRule(prefix="outputs/", expiration=Duration.days(90)),
                s3.LifecycleRule(prefix="errors/", expiration=Duration.days(90)),
                s3.LifecycleRule(noncurrent_version_expiration=Duration.days(7)),
                s3.LifecycleRule(abort_incomplete_multipart_upload_after=Duration.days(1)),
            ],
        )
