"""The batch pipeline: inputs/ uploads -> SQS (with a DLQ) -> the batch function; inputs too
large for one invocation -> a Step Functions Distributed Map over their shards."""

from __future__ import annotations

from aws_cdk import Duration, Size
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as notifications
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from .config import MaasConfig
from .functions import python_function
from .grants import read_prefix, write_prefix
from .telemetry import log_group

MAX_RECEIVE_COUNT = 3
# AWS: set the queue's visibility timeout to at least six times the function timeout.
# https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html
VISIBILITY_FACTOR = 6
SHARD_RETRIES = 3  # a shard's attempts after its first, with backoff, before its failure is kept


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
        environment = {
            "MAAS_STORE": f"s3://{models.bucket_name}",
            "MAAS_BATCH_CHUNK_ROWS": str(config.batch_chunk_rows),
            "MAAS_BATCH_SHARD_ABOVE_BYTES": str(config.batch_shard_above_mb * 1024 * 1024),
            "MAAS_BATCH_SHARD_BYTES": str(config.batch_shard_mb * 1024 * 1024),
        }

        def batch_function(
            scope: Construct, handler: str, service: str, env: dict[str, str], description: str
        ) -> lambda_.Function:
            """The batch functions' memory, time and /tmp (.npz inputs are staged there:
            zip archives need to seek; shards' parts and the combined output too)."""
            return python_function(
                scope,
                handler=handler,
                code=code,
                config=config,
                service=service,
                memory_mb=config.batch_memory_mb,
                timeout_seconds=config.batch_timeout_seconds,
                ephemeral_storage_size=Size.mebibytes(config.batch_ephemeral_mb),
                environment=env,
                description=f"serverless-maas batch: {description}",
            )

        self.shard_function = batch_function(
            Construct(self, "Shard"),
            "functions.batch.shard_handler.handler",
            "maas-batch-shard",
            environment,
            "scores one shard of a large input, or combines the shards",
        )
        # Reads its shard of the input and the plan; writes parts, outputs, receipts, errors.
        read_prefix(self.shard_function, bucket, "inputs/")
        read_prefix(self.shard_function, bucket, "outputs/_shards/")
        write_prefix(self.shard_function, bucket, "outputs/")
        write_prefix(self.shard_function, bucket, "errors/")
        read_prefix(self.shard_function, models, "models/")
        self.shards = self._state_machine(config, bucket)
        self.function = batch_function(
            self,
            "functions.batch.handler.handler",
            "maas-batch",
            environment
            | {
                "MAAS_BATCH_MAX_INPUT_BYTES": str(config.batch_ephemeral_mb * 1024 * 1024 // 2),
                "MAAS_BATCH_STATE_MACHINE": self.shards.state_machine_arn,
            },
            "scores files uploaded under inputs/",
        )
        self.shards.grant_start_execution(self.function)
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

        self.shards_alarm = cloudwatch.Alarm(
            self,
            "ShardExecutionsFailedAlarm",
            alarm_description="A large batch input's shard execution failed: it has no output "
            "or error record (see the execution's history)",
            metric=self.shards.metric_failed(period=Duration.minutes(5), statistic="Sum"),
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )

    def _state_machine(self, config: MaasConfig, bucket: s3.Bucket) -> sfn.StateMachine:
        """A Distributed Map over the plan's items: each shard scored by the shard function
        (retried; past its retries its failure recorded), then one step that combines."""
        shard = self.shard_function
        score = tasks.LambdaInvoke(
            self,
            "ScoreShard",
            lambda_function=shard,
            payload_response_only=True,
            retry_on_service_exceptions=False,
        )
        score.add_retry(
            errors=[sfn.Errors.ALL],
            max_attempts=SHARD_RETRIES,
            interval=Duration.seconds(10),
            backoff_rate=2,
        )
        failed = tasks.LambdaInvoke(
            self,
            "RecordFailedShard",
            lambda_function=shard,
            payload=sfn.TaskInput.from_object(
                {
                    "action": "shard-failed",
                    "job": sfn.JsonPath.object_at("$.job"),
                    "shard": sfn.JsonPath.object_at("$.shard"),
                    "error": sfn.JsonPath.object_at("$.error"),
                }
            ),
            payload_response_only=True,
        )
        failed.add_retry(errors=[sfn.Errors.ALL], max_attempts=SHARD_RETRIES)
        # Each child ends with an empty output: the map gathers every child's output, and
        # Step Functions caps what passes between states at 256 KiB (results live on S3)
        done = sfn.Pass(self, "ShardDone", result=sfn.Result.from_object({}))
        score.add_catch(failed.next(done), errors=[sfn.Errors.ALL], result_path="$.error")
        shards = sfn.DistributedMap(
            self,
            "ScoreShards",
            item_reader=sfn.S3JsonItemReader(bucket=bucket, key=sfn.JsonPath.string_at("$.items")),
            item_selector={
                "action": "shard",
                "job": sfn.JsonPath.object_at("$"),
                "shard": sfn.JsonPath.object_at("$$.Map.Item.Value"),
            },
            max_concurrency=config.batch_max_concurrency,
            tolerated_failure_percentage=config.batch_tolerated_failure_percent,
            map_execution_type=sfn.StateMachineType.STANDARD,
            result_path=sfn.JsonPath.DISCARD,
        )
        shards.item_processor(score.next(done))
        finish = tasks.LambdaInvoke(
            self,
            "CombineShards",
            lambda_function=shard,
            payload=sfn.TaskInput.from_object(
                {"action": "finish", "job": sfn.JsonPath.object_at("$")}
            ),
            payload_response_only=True,
        )
        finish.add_retry(errors=[sfn.Errors.ALL], max_attempts=SHARD_RETRIES)
        # A map that fails (past the tolerated failures) still ends in the combining step,
        # which writes the input's error record: nothing is left without an outcome.
        shards.add_catch(finish, errors=[sfn.Errors.ALL], result_path=sfn.JsonPath.DISCARD)
        logs = log_group(self, "ShardLogs", config=config)
        machine = sfn.StateMachine(
            self,
            "Shards",
            definition_body=sfn.DefinitionBody.from_chainable(shards.next(finish)),
            state_machine_type=sfn.StateMachineType.STANDARD,
            tracing_enabled=config.tracing,
            logs=sfn.LogOptions(destination=logs, level=sfn.LogLevel.ALL),
        )
        read_prefix(machine, bucket, "outputs/_shards/")  # the item reader
        return machine
