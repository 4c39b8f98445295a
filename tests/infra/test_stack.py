"""Assertions on the synthesized template: properties, never logical IDs."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.infra.conftest import Synth, synth


@pytest.fixture(scope="module")
def default() -> Synth:
    return synth()


def test_buckets_are_encrypted_tls_only_private_and_logged(default: Synth) -> None:
    buckets = default.resources("AWS::S3::Bucket")
    assert len(buckets) == 3  # models, batch, access logs
    for bucket in buckets.values():
        props = bucket["Properties"]
        rule = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
        assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }
    logged = [b for b in buckets.values() if "LoggingConfiguration" in b["Properties"]]
    assert len(logged) == 2
    versioned = [
        b
        for b in buckets.values()
        if b["Properties"].get("VersioningConfiguration", {}).get("Status") == "Enabled"
    ]
    assert len(versioned) == 2
    policies = default.resources("AWS::S3::BucketPolicy")
    tls_only = [
        p
        for p in policies.values()
        if any(
            s["Effect"] == "Deny"
            and s.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") == "false"
            for s in p["Properties"]["PolicyDocument"]["Statement"]
        )
    ]
    assert len(tls_only) == 3


def test_batch_bucket_prefixes_have_lifecycle_rules(default: Synth) -> None:
    rules = [
        r
        for b in default.resources("AWS::S3::Bucket").values()
        for r in b["Properties"].get("LifecycleConfiguration", {}).get("Rules", [])
    ]
    prefixes = {r.get("Prefix") for r in rules}
    assert {"inputs/", "outputs/", "errors/"} <= prefixes


def functions(s: Synth) -> dict[str, dict[str, Any]]:
    return {
        p["Properties"].get("Handler", "image"): p["Properties"]
        for p in s.resources("AWS::Lambda::Function").values()
        if "Handler" in p["Properties"] or p["Properties"].get("PackageType") == "Image"
    }


def test_api_function_defaults(default: Synth) -> None:
    api = functions(default)["functions.api.handler.handler"]
    assert api["Runtime"] == "python3.12"
    assert api["Architectures"] == ["x86_64"]
    assert (api["MemorySize"], api["Timeout"]) == (2048, 29)
    store = api["Environment"]["Variables"]["MAAS_STORE"]["Fn::Join"]
    assert store[0] == "" and store[1][0] == "s3://"
    bucket = default.doc["Resources"][store[1][1]["Ref"]]
    assert bucket["Type"] == "AWS::S3::Bucket"
    assert bucket["Properties"]["VersioningConfiguration"]["Status"] == "Enabled"
    assert "ReservedConcurrentExecutions" not in api
    assert "SnapStart" not in api
    # /tmp holds the artifact cache, which is told how much of it is its own
    assert api["EphemeralStorage"] == {"Size": 2048}
    assert api["Environment"]["Variables"]["MAAS_CACHE_MAX_MB"] == str(2048 - 256)


def test_context_sets_memory_architecture_and_concurrency() -> None:
    s = synth(
        architecture="arm64",
        apiMemoryMb="4096",
        apiEphemeralMb="10240",
        apiTimeoutSeconds="20",
        reservedConcurrency="10",
        provisionedConcurrency="2",
    )
    api = functions(s)["functions.api.handler.handler"]
    assert (
        api["Architectures"],
        api["MemorySize"],
        api["Timeout"],
        api["ReservedConcurrentExecutions"],
    ) == (["arm64"], 4096, 20, 10)
    assert api["EphemeralStorage"] == {"Size": 10240}
    assert api["Environment"]["Variables"]["MAAS_CACHE_MAX_MB"] == str(10240 - 256)
    alias = s.one("AWS::Lambda::Alias")
    assert alias["ProvisionedConcurrencyConfig"] == {"ProvisionedConcurrentExecutions": 2}
    assert functions(s)["functions.batch.handler.handler"]["Architectures"] == ["arm64"]


def test_snapstart_publishes_a_version_behind_an_alias() -> None:
    s = synth(snapStart="true")
    api = functions(s)["functions.api.handler.handler"]
    assert api["SnapStart"] == {"ApplyOn": "PublishedVersions"}
    assert api["EphemeralStorage"] == {"Size": 512}  # SnapStart's most
    assert s.one("AWS::Lambda::Alias")["Name"] == "live"
    integration = s.one("AWS::ApiGatewayV2::Integration")
    assert "Live" in str(integration["IntegrationUri"])


def test_http_api_is_iam_authorized_throttled_and_logged(default: Synth) -> None:
    routes = default.resources("AWS::ApiGatewayV2::Route")
    assert routes and all(
        r["Properties"]["AuthorizationType"] == "AWS_IAM" for r in routes.values()
    )
    stage = default.one("AWS::ApiGatewayV2::Stage")
    assert stage["StageName"] == "$default" and stage["AutoDeploy"] is True
    assert stage["DefaultRouteSettings"] == {
        "ThrottlingBurstLimit": 200,
        "ThrottlingRateLimit": 100,
    }
    assert "$context.requestId" in stage["AccessLogSettings"]["Format"]


def test_jwt_authorizer_by_context() -> None:
    s = synth(auth="jwt", jwtIssuer="https://id.example.com", jwtAudience="maas")
    authorizer = s.one("AWS::ApiGatewayV2::Authorizer")
    assert authorizer["AuthorizerType"] == "JWT"
    assert authorizer["JwtConfiguration"] == {
        "Audience": ["maas"],
        "Issuer": "https://id.example.com",
    }
    assert all(
        r["Properties"]["AuthorizationType"] == "JWT"
        for r in s.resources("AWS::ApiGatewayV2::Route").values()
    )


def test_batch_pipeline(default: Synth) -> None:
    batch = functions(default)["functions.batch.handler.handler"]
    queues = default.resources("AWS::SQS::Queue")
    main = next(q["Properties"] for q in queues.values() if "RedrivePolicy" in q["Properties"])
    assert main["RedrivePolicy"]["maxReceiveCount"] == 3
    assert main["VisibilityTimeout"] >= 6 * batch["Timeout"]
    assert all(q["Properties"]["SqsManagedSseEnabled"] for q in queues.values())
    mapping = default.one("AWS::Lambda::EventSourceMapping")
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    notification = default.one("Custom::S3BucketNotifications")["NotificationConfiguration"]
    config = notification["QueueConfigurations"][0]
    assert config["Events"] == ["s3:ObjectCreated:*"]
    assert config["Filter"]["Key"]["FilterRules"] == [{"Name": "prefix", "Value": "inputs/"}]
    alarm = default.one("AWS::CloudWatch::Alarm", MetricName="ApproximateNumberOfMessagesVisible")
    assert alarm["Threshold"] == 1
    assert batch["EphemeralStorage"] == {"Size": 4096}


def _statements(s: Synth, handler: str) -> list[dict[str, Any]]:
    """Every IAM statement attached to the role of the function with `handler`."""
    fn = next(
        v
        for v in s.resources("AWS::Lambda::Function").values()
        if v["Properties"].get("Handler") == handler
    )
    role = fn["Properties"]["Role"]["Fn::GetAtt"][0]
    return [
        st
        for p in s.resources("AWS::IAM::Policy").values()
        if {"Ref": role} in p["Properties"]["Roles"]
        for st in p["Properties"]["PolicyDocument"]["Statement"]
    ]


def _actions(st: dict[str, Any]) -> list[str]:
    return st["Action"] if isinstance(st["Action"], list) else [st["Action"]]


def _models_bucket(s: Synth) -> str:
    api = functions(s)["functions.api.handler.handler"]
    return str(api["Environment"]["Variables"]["MAAS_STORE"]["Fn::Join"][1][1]["Ref"])


@pytest.mark.parametrize(
    "handler", ["functions.api.handler.handler", "functions.batch.handler.handler"]
)
def test_functions_cannot_write_models(default: Synth, handler: str) -> None:
    models = _models_bucket(default)
    for st in _statements(default, handler):
        writes = [
            a
            for a in _actions(st)
            if a.startswith("s3:") and not a.startswith(("s3:Get", "s3:List"))
        ]
        if writes:
            assert models not in str(st["Resource"]), (handler, st)
    for st in _statements(default, handler):
        assert "s3:*" not in _actions(st) and st.get("Resource") != "*", st


def test_batch_writes_only_outputs_and_errors(default: Synth) -> None:
    written = [
        str(r)
        for st in _statements(default, "functions.batch.handler.handler")
        if "s3:PutObject" in _actions(st)
        for r in (st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]])
    ]
    assert len(written) == 2
    assert any("/outputs/*" in r for r in written) and any("/errors/*" in r for r in written)


def test_gpu_off_has_no_gpu_resources(default: Synth) -> None:
    kinds = {v["Type"] for v in default.doc["Resources"].values()}
    assert not {
        k
        for k in kinds
        if k.startswith("AWS::SageMaker") or k.startswith("AWS::ApplicationAutoScaling")
    }
    assert (
        "MAAS_GPU_ENDPOINT"
        not in functions(default)["functions.api.handler.handler"]["Environment"]["Variables"]
    )


def _gpu_topics(s: Synth) -> list[dict[str, Any]]:
    """The SNS topics other than the alarm topic."""
    return [
        t
        for t in s.resources("AWS::SNS::Topic").values()
        if t["Properties"].get("DisplayName") != "serverless-maas alarms"
    ]


def test_gpu_async_endpoint_scales_to_zero() -> None:
    s = synth(gpu="true")
    config = s.one("AWS::SageMaker::EndpointConfig")
    assert config["ProductionVariants"][0]["InstanceType"] == "ml.g5.xlarge"
    output = config["AsyncInferenceConfig"]["OutputConfig"]
    assert set(output["NotificationConfig"]) == {"SuccessTopic", "ErrorTopic"}
    assert "KmsKeyId" in config
    assert s.one("AWS::ApplicationAutoScaling::ScalableTarget")["MinCapacity"] == 0
    policies = [
        p["Properties"] for p in s.resources("AWS::ApplicationAutoScaling::ScalingPolicy").values()
    ]
    assert {p["PolicyType"] for p in policies} == {"TargetTrackingScaling", "StepScaling"}
    alarms = [
        a["Properties"].get("MetricName") for a in s.resources("AWS::CloudWatch::Alarm").values()
    ]
    assert "HasBacklogWithoutCapacity" in alarms
    env = functions(s)["functions.api.handler.handler"]["Environment"]["Variables"]
    assert env["MAAS_GPU_MODE"] == "async" and "MAAS_GPU_ENDPOINT" in env
    invoke = [
        st
        for st in _statements(s, "functions.api.handler.handler")
        if "sagemaker:InvokeEndpointAsync" in _actions(st)
    ]
    assert len(invoke) == 1 and invoke[0]["Resource"] != "*"
    # the grant names this endpoint exactly: its lower-case name, no unresolved token
    name = s.one("AWS::SageMaker::Endpoint")["EndpointName"]
    assert name == name.lower() and "${" not in name
    arn = invoke[0]["Resource"]["Fn::Join"][1]
    assert "token" not in str(arn).lower()
    assert arn[-1] == f":endpoint/{name}"
    assert len(_gpu_topics(s)) == 2
    # GET /v2/models/{name}/async/{id}: the API reads tickets, answers and failures (no listing)
    # and decrypts what the endpoint encrypted with its key
    api = _statements(s, "functions.api.handler.handler")
    reads = [json.dumps(st["Resource"]) for st in api if _actions(st) == ["s3:GetObject"]]
    for prefix in ("inputs", "outputs", "errors"):
        assert any(f"/gpu/{prefix}/*" in r for r in reads), prefix
    decrypt = [st for st in api if "kms:Decrypt" in _actions(st)]
    assert decrypt and all(st["Resource"] != "*" for st in decrypt)


def test_gpu_realtime_by_context() -> None:
    s = synth(gpu="true", gpuMode="realtime", gpuInstanceType="ml.g4dn.xlarge")
    config = s.one("AWS::SageMaker::EndpointConfig")
    assert "AsyncInferenceConfig" not in config
    assert config["ProductionVariants"][0]["InstanceType"] == "ml.g4dn.xlarge"
    assert s.one("AWS::ApplicationAutoScaling::ScalableTarget")["MinCapacity"] == 1
    assert not _gpu_topics(s)


def test_heavy_cpu_container_function_by_context() -> None:
    s = synth(heavyCpu="true")
    image = [
        v["Properties"]
        for v in s.resources("AWS::Lambda::Function").values()
        if v["Properties"].get("PackageType") == "Image"
    ]
    assert len(image) == 1 and image[0]["MemorySize"] == 10240
    assert image[0]["EphemeralStorage"] == {"Size": 10240}
    assert image[0]["Environment"]["Variables"]["MAAS_CACHE_MAX_MB"] == str(10240 - 256)
    assert image[0]["Environment"]["Variables"]["MAAS_API_BASE_PATH"] == "/heavy"
    keys = {r["Properties"]["RouteKey"] for r in s.resources("AWS::ApiGatewayV2::Route").values()}
    assert "ANY /heavy/{proxy+}" in keys
    assert not synth().resources("AWS::ECR::Repository")


def test_outputs(default: Synth) -> None:
    assert {"ApiUrl", "ModelStore", "BatchBucket", "DeadLetterQueue"} <= set(default.doc["Outputs"])


def _definition(s: Synth) -> dict[str, Any]:
    machine = s.one("AWS::StepFunctions::StateMachine")
    parts = machine["DefinitionString"]["Fn::Join"][1]
    return dict(json.loads("".join(p if isinstance(p, str) else "0" for p in parts)))


def test_large_inputs_fan_out_on_a_distributed_map(default: Synth) -> None:
    definition = _definition(default)
    assert definition["StartAt"] == "ScoreShards"
    shards = definition["States"]["ScoreShards"]
    assert shards["ItemProcessor"]["ProcessorConfig"] == {
        "Mode": "DISTRIBUTED",
        "ExecutionType": "STANDARD",
    }
    assert shards["ItemReader"]["Resource"].endswith(":states:::s3:getObject")
    assert shards["ItemReader"]["ReaderConfig"] == {"InputType": "JSON"}
    assert shards["ItemReader"]["Parameters"]["Key.$"] == "$.items"
    assert shards["ItemSelector"] == {
        "action": "shard",
        "job.$": "$",
        "shard.$": "$$.Map.Item.Value",
    }
    assert (shards["MaxConcurrency"], shards.get("ToleratedFailurePercentage", 0)) == (100, 0)
    assert shards["ResultPath"] is None and shards["Next"] == "CombineShards"
    assert shards["Catch"] == [
        {"ErrorEquals": ["States.ALL"], "ResultPath": None, "Next": "CombineShards"}
    ]
    score = shards["ItemProcessor"]["States"]["ScoreShard"]
    assert score["Retry"][0]["ErrorEquals"] == ["States.ALL"]
    assert score["Retry"][0]["MaxAttempts"] == 3
    assert score["Catch"][0]["Next"] == "RecordFailedShard"
    assert score["Next"] == "ShardDone"
    assert shards["ItemProcessor"]["States"]["RecordFailedShard"]["Next"] == "ShardDone"
    done = shards["ItemProcessor"]["States"]["ShardDone"]
    assert (done["Type"], done["Result"], done["End"]) == ("Pass", {}, True)  # tiny outputs
    failed = shards["ItemProcessor"]["States"]["RecordFailedShard"]["Parameters"]
    assert failed == {
        "action": "shard-failed",
        "job.$": "$.job",
        "shard.$": "$.shard",
        "error.$": "$.error",
    }
    finish = definition["States"]["CombineShards"]
    assert finish["Parameters"] == {"action": "finish", "job.$": "$"}
    assert finish["End"] is True
    # The batch function starts it, knows when to, and nothing else may
    batch = default.one("AWS::Lambda::Function", Handler="functions.batch.handler.handler")
    env = batch["Environment"]["Variables"]
    assert env["MAAS_BATCH_SHARD_ABOVE_BYTES"] == str(512 * 1024 * 1024)
    assert env["MAAS_BATCH_SHARD_BYTES"] == str(128 * 1024 * 1024)
    assert "Ref" in env["MAAS_BATCH_STATE_MACHINE"]
    starts = [
        p["Properties"]["Roles"][0]["Ref"]
        for p in default.resources("AWS::IAM::Policy").values()
        for st in p["Properties"]["PolicyDocument"]["Statement"]
        if st["Action"] == "states:StartExecution"
    ]
    # the batch function, and the machine itself (a Distributed Map starts child executions)
    assert sorted(r.split("Role")[0] for r in starts) == ["BatchFunctionService", "BatchShards"]
    # Failed executions page
    alarm = default.one("AWS::CloudWatch::Alarm", MetricName="ExecutionsFailed")
    assert (alarm["Statistic"], alarm["Threshold"]) == ("Sum", 1)
    machine = default.one("AWS::StepFunctions::StateMachine")
    assert machine["LoggingConfiguration"]["Level"] == "ALL"


def test_shard_concurrency_and_tolerated_failures_by_context() -> None:
    s = synth(batchMaxConcurrency="1000", batchToleratedFailurePercent="5")
    shards = _definition(s)["States"]["ScoreShards"]
    assert (shards["MaxConcurrency"], shards["ToleratedFailurePercentage"]) == (1000, 5)


def test_canary_alarms_reach_the_rollback_function() -> None:
    s = synth()
    rule = s.one("AWS::Events::Rule")
    assert rule["EventPattern"] == {
        "source": ["aws.cloudwatch"],
        "detail-type": ["CloudWatch Alarm State Change"],
        "detail": {"alarmName": [{"prefix": "maas-canary-"}], "state": {"value": ["ALARM"]}},
    }
    (target,) = rule["Targets"]
    assert target["RetryPolicy"] == {"MaximumEventAgeInSeconds": 3600, "MaximumRetryAttempts": 4}
    handler = "functions.lifecycle.rollback.handler"
    env = functions(s)[handler]["Environment"]["Variables"]
    assert "s3://" in json.dumps(env["MAAS_STORE"])
    # least privilege: reads the models bucket's models/, writes only alias objects
    writes = [st for st in _statements(s, handler) if "s3:PutObject" in _actions(st)]
    assert len(writes) == 1 and _actions(writes[0]) == ["s3:PutObject"]
    assert json.dumps(writes[0]["Resource"]).endswith('"/models/*/aliases/*"]]}')
    assert not [st for st in _statements(s, handler) if "s3:DeleteObject" in _actions(st)]


@pytest.mark.parametrize("key", ["create", "arn:aws:kms:us-east-1:123456789012:key/1234abcd"])
def test_a_signing_key_makes_every_serving_function_require_signatures(key: str) -> None:
    s = synth(signingKey=key, heavyCpu="true")
    keys = s.resources("AWS::KMS::Key")
    made = [k["Properties"] for k in keys.values() if k["Properties"].get("KeyUsage")]
    if key == "create":
        assert made == [made[0]] and made[0]["KeySpec"] == "ECC_NIST_P256"
        assert made[0]["KeyUsage"] == "SIGN_VERIFY"
    else:
        assert made == []
    for handler in (
        "functions.api.handler.handler",
        "functions.batch.handler.handler",
        "functions.batch.shard_handler.handler",
    ):
        env = functions(s)[handler]["Environment"]["Variables"]
        assert env["MAAS_REQUIRE_SIGNATURE"] == "true" and env["MAAS_SIGNING_KEY"]
        verify = [st for st in _statements(s, handler) if "kms:Verify" in _actions(st)]
        assert len(verify) == 1 and _actions(verify[0]) == ["kms:Verify"]
        assert verify[0]["Resource"] != "*"
        assert not [st for st in _statements(s, handler) if "kms:Sign" in _actions(st)]
    assert "SigningKeyArn" in s.doc["Outputs"]


def test_no_signing_key_no_requirement() -> None:
    env = functions(synth())["functions.api.handler.handler"]["Environment"]["Variables"]
    assert "MAAS_REQUIRE_SIGNATURE" not in env
