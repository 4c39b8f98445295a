"""The dashboard: per-model figures from the functions' EMF metrics beside AWS's own."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aws_cdk import Duration, Stack
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from .gpu import GpuEndpoint
from .telemetry import DIMENSIONS, NAMESPACE

PERIOD = Duration.minutes(5)
# One line per model version and service, named by the metric's own dimension values.
MODEL_LABEL = "${PROP('Dim.model')} v${PROP('Dim.version')} (${PROP('Dim.service')})"
GraphMetrics = Sequence[cloudwatch.IMetric]


def search(
    metric: str,
    statistic: str,
    *,
    label: str = MODEL_LABEL,
    service: str | None = None,
    dimensions: Sequence[str] = DIMENSIONS,
) -> cloudwatch.MathExpression:
    """Every series of an EMF metric, whatever models exist (their names are unknown at synth)."""
    schema = ",".join([f'"{NAMESPACE}"', *dimensions])
    where = f'MetricName="{metric}"' + (f' service="{service}"' if service else "")
    return cloudwatch.MathExpression(
        expression=f"SEARCH('{{{schema}}} {where}', '{statistic}', {PERIOD.to_seconds()})",
        label=label,
        period=PERIOD,
    )


def _graph(
    title: str, left: GraphMetrics, right: GraphMetrics = (), width: int = 8
) -> cloudwatch.GraphWidget:
    return cloudwatch.GraphWidget(
        title=title, left=list(left), right=list(right), width=width, height=6, period=PERIOD
    )


class ServiceDashboard(Construct):
    """Owns the CloudWatch dashboard (`dashboard`)."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        stage: apigwv2.HttpStage,
        functions: Mapping[str, lambda_.IFunction],
        inputs: sqs.IQueue,
        dead_letters: sqs.IQueue,
        alarms: Sequence[cloudwatch.IAlarm],
        gpu: GpuEndpoint | None = None,
    ) -> None:
        super().__init__(scope, id)
        self.dashboard = cloudwatch.Dashboard(
            self,
            "Dashboard",
            dashboard_name=Stack.of(self).stack_name,
            default_interval=Duration.hours(3),
        )
        self.dashboard.add_widgets(
            cloudwatch.AlarmStatusWidget(title="Alarms", alarms=list(alarms), width=24, height=4)
        )
        self.dashboard.add_widgets(*self._models())
        self.dashboard.add_widgets(*self._api(stage))
        self.dashboard.add_widgets(*self._functions(functions))
        self.dashboard.add_widgets(*self._batch(inputs, dead_letters))
        if gpu is not None:
            self.dashboard.add_widgets(*self._gpu(gpu))

    @staticmethod
    def _models() -> list[cloudwatch.IWidget]:
        cold = "${PROP('Dim.service')}"
        return [
            _graph("Latency per model, p50 (ms)", [search("Latency", "p50")], width=12),
            _graph("Latency per model, p99 (ms)", [search("Latency", "p99")], width=12),
            _graph("Requests per model", [search("Requests", "Sum")]),
            _graph(
                "Errors per model (4xx, 5xx)",
                [
                    search("ClientErrors", "Sum", label=f"4xx {MODEL_LABEL}"),
                    search("ServerErrors", "Sum", label=f"5xx {MODEL_LABEL}"),
                ],
            ),
            _graph(
                "Cold starts",
                [search("ColdStart", "Sum", label=cold, dimensions=("service",))],
            ),
            _graph(
                "Model load time (ms, max)",
                [search("ModelLoadTime", "Maximum")],
                width=12,
            ),
            _graph(
                "Model loads and load failures",
                [
                    search("ModelLoads", "Sum", label=f"loads {MODEL_LABEL}"),
                    search("ModelLoadFailures", "Sum", label=f"failures {MODEL_LABEL}"),
                ],
                width=12,
            ),
        ]

    @staticmethod
    def _api(stage: apigwv2.HttpStage) -> list[cloudwatch.IWidget]:
        def count(metric: cloudwatch.Metric, label: str) -> cloudwatch.Metric:
            return metric.with_(statistic="Sum", label=label, period=PERIOD)

        return [
            _graph(
                "API requests and errors",
                [
                    count(stage.metric_count(), "requests"),
                    count(stage.metric_client_error(), "4xx"),
                    count(stage.metric_server_error(), "5xx"),
                ],
                width=12,
            ),
            _graph(
                "API latency (ms)",
                [
                    stage.metric_latency(statistic="p50", label="p50", period=PERIOD),
                    stage.metric_latency(statistic="p99", label="p99", period=PERIOD),
                    stage.metric_integration_latency(
                        statistic="p99", label="integration p99", period=PERIOD
                    ),
                ],
                width=12,
            ),
        ]

    @staticmethod
    def _functions(functions: Mapping[str, lambda_.IFunction]) -> list[cloudwatch.IWidget]:
        def each(name: str, statistic: str) -> list[cloudwatch.IMetric]:
            return [
                fn.metric(name, statistic=statistic, label=service, period=PERIOD)
                for service, fn in functions.items()
            ]

        return [
            _graph("Lambda errors", each("Errors", "Sum"), width=6),
            _graph("Lambda throttles", each("Throttles", "Sum"), width=6),
            _graph("Lambda duration, p99 (ms)", each("Duration", "p99"), width=6),
            _graph(
                "Lambda concurrent executions", each("ConcurrentExecutions", "Maximum"), width=6
            ),
        ]

    @staticmethod
    def _batch(inputs: sqs.IQueue, dead_letters: sqs.IQueue) -> list[cloudwatch.IWidget]:
        batch = "maas-batch"
        return [
            _graph(
                "Batch rows per second",
                [search("BatchRowsPerSecond", "Average", service=batch)],
            ),
            _graph(
                "Batch objects, rows and error records",
                [
                    search("BatchObjects", "Sum", service=batch, label=f"objects {MODEL_LABEL}"),
                    search("BatchErrors", "Sum", service=batch, label=f"errors {MODEL_LABEL}"),
                ],
                [search("BatchRows", "Sum", service=batch, label=f"rows {MODEL_LABEL}")],
            ),
            _graph(
                "Queues",
                [
                    dead_letters.metric_approximate_number_of_messages_visible(
                        statistic="Maximum", label="dead letters", period=PERIOD
                    ),
                    inputs.metric_approximate_number_of_messages_visible(
                        statistic="Maximum", label="waiting inputs", period=PERIOD
                    ),
                ],
                [
                    inputs.metric_approximate_age_of_oldest_message(
                        statistic="Maximum", label="oldest input (s)", period=PERIOD
                    )
                ],
            ),
        ]

    @staticmethod
    def _gpu(gpu: GpuEndpoint) -> list[cloudwatch.IWidget]:
        if gpu.mode == "async":
            return [
                _graph(
                    "GPU backlog",
                    [
                        gpu.metric("ApproximateBacklogSize", minutes=5),
                        gpu.metric("HasBacklogWithoutCapacity", statistic="Maximum", minutes=5),
                    ],
                    [gpu.metric("ApproximateAgeOfOldestRequest", statistic="Maximum", minutes=5)],
                    width=24,
                )
            ]
        return [
            _graph(
                "GPU invocations and 5xx",
                [
                    gpu.metric("Invocations", statistic="Sum", minutes=5, variant=True),
                    gpu.metric("Invocation5XXErrors", statistic="Sum", minutes=5, variant=True),
                ],
                [gpu.metric("ModelLatency", statistic="p99", minutes=5, variant=True)],
                width=24,
            )
        ]
