"""The batch pipeline: inputs/ uploads -> SQS (with a DLQ) -> the batch function."""

from __future__ import annotations

from aws_cdk import Duration, Size
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as notifications
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from .config import MaasConfig
from .functions import python_function
from .grants import read_prefix, write_prefix

MAX_RECEIVE_COUNT = 3
# AWS: set the queue's visibility timeout to at least six times the function timeout.
# https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html
VISIBILITY_FACTOR = 6


class BatchPipeline(Construct):
    """Owns the queue, DLQ, batch function and DLQ alarm; exposes them as attributes."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        code: lambda_.Code,
        config: MaasConfig,
        bucket: s3.Bucket,
        models: s3.IBucket,
    ) -> None:
        super().__init__(scope, id)
        self.dead_letters = sqs.Queue(
            self,
            "DeadLetters",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        self.queue = sqs.Queue(
            self,
            "Inputs",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            visibility_timeout=Duration.seconds(VISIBILITY_FACTOR * config.batch_timeout_seconds),
            dead_letter_queue=sqs.DeadLetterQueue(
                queue=self.dead_letters, max_receive_count=MAX_RECEIVE_COUNT
            ),
        )
        bucket.add_event_notification(
            s3.EventType.OBJECT_CREATED,
            notifications.SqsDestination(self.queue),
            s3.NotificationKeyFilter(prefix="inputs/"),
        )
        self.function = python_function(
            self,
            handler="functions.batch.handler.handler",
            code=code,
            config=config,
            service="maas-batch",
            memory_mb=config.batch_memory_mb,
            timeout_seconds=config.batch_timeout_seconds,
            # .npz inputs are staged on local disk (zip archives need to seek).
            ephemeral_storage_size=Size.mebibytes(config.batch_ephemeral_mb),
            environment={
                "MAAS_STORE": f"s3://{models.bucket_name}",
                "MAAS_BATCH_CHUNK_ROWS": str(config.batch_chunk_rows),
                "MAAS_BATCH_MAX_INPUT_BYTES": str(config.batch_ephemeral_mb * 1024 * 1024 // 2),
            },
            description="serverless-maas batch: scores files uploaded under inputs/",
        )
        self.function.add_event_source(
            sources.SqsEventSource(self.queue, batch_size=10, report_batch_item_failures=True)
        )
        # Least privilege: read inputs/ and receipts, write outputs/ and errors/, read models/.
        read_prefix(self.function, bucket, "inputs/")
        read_prefix(self.function, bucket, "outputs/_receipts/")
        write_prefix(self.function, bucket, "outputs/")
        write_prefix(self.function, bucket, "errors/")
        read_prefix(self.function, models, "models/")
        self.alarm = cloudwatch.Alarm(
            self,
            "DeadLetterAlarm",
            alarm_description="Batch inputs failed after retries and wait in the dead-letter queue",
            metric=self.dead_letters.metric_approximate_number_of_messages_visible(
                period=Duration.minutes(5), statistic="Maximum"
            ),
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
