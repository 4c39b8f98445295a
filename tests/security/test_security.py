"""Security properties, each proven: code, artifacts, aliases, logs, and the IAM in the templates."""

from __future__ import annotations

import ast
import hashlib
import io
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import onnx
import orjson
import pytest
from onnx import TensorProto, helper

from functions.core.cache import ArtifactCache
from functions.core.errors import ModelUnavailable
from functions.core.registry import Registry
from functions.core.repository import Repository
from functions.core.sessions import OrtSessionFactory
from functions.stores import LocalStore
from model_build.inspect_onnx import ArtifactError, manifest_for
from tests.conftest import ROOT, LiveServer, publish, runtime_for, settings_for
from tests.infra.conftest import VARIANTS, synth
from tests.models import multi_io

FORBIDDEN_MODULES = {"pickle", "cPickle", "dill", "marshal", "shelve", "cloudpickle"}
FORBIDDEN_CALLS = {"eval", "exec", "compile", "__import__"}


def findings(tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.split(".")[0] in FORBIDDEN_MODULES]
        elif (
            isinstance(node, ast.ImportFrom)
            and (node.module or "").split(".")[0] in FORBIDDEN_MODULES
        ):
            found.append(str(node.module))
        elif isinstance(node, ast.Call):
            if isinstance(node.func, ast.Name) and node.func.id in FORBIDDEN_CALLS:
                found.append(node.func.id)
            for keyword in node.keywords:
                if keyword.arg == "allow_pickle" and not (
                    isinstance(keyword.value, ast.Constant) and keyword.value.value is False
                ):
                    found.append("allow_pickle")
    return found


def test_no_pickle_eval_or_exec_in_the_functions() -> None:
    files = list((ROOT / "functions").rglob("*.py"))
    assert len(files) > 30
    for path in files:
        assert findings(ast.parse(path.read_text())) == [], path


def test_the_walker_finds_what_it_forbids() -> None:
    code = "import pickle\nfrom dill import loads\neval('1')\nexec('x=1')\nnp.load(f, allow_pickle=True)"
    assert findings(ast.parse(code)) == ["pickle", "dill", "eval", "exec", "allow_pickle"]


def escaping_model() -> bytes:
    """A valid graph whose weight lives in an external file at ../../etc/passwd."""
    weight = helper.make_tensor("w", TensorProto.FLOAT, [4], [1.0, 2.0, 3.0, 4.0])
    weight.ClearField("float_data")
    weight.data_location = TensorProto.EXTERNAL
    for key, value in (("location", "../../etc/passwd"), ("offset", "0"), ("length", "16")):
        entry = weight.external_data.add()
        entry.key, entry.value = key, value
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "w"], ["y"])], "escape", [x], [y], [weight]
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


def test_external_data_that_leaves_the_model_is_refused_at_publish() -> None:
    with pytest.raises(ArtifactError) as caught:
        manifest_for(escaping_model(), name="escape")
    message = str(caught.value)
    assert "keeps tensors in external data files" in message


def test_external_data_that_leaves_the_model_is_refused_at_load(tmp_path: Path) -> None:
    # Given such bytes published behind the CLI's back, with a correct sha256
    repo = Repository(LocalStore(tmp_path / "store"))
    artifact = escaping_model()
    manifest = replace(
        manifest_for(multi_io(), name="escape")[0],
        sha256=hashlib.sha256(artifact).hexdigest(),
        size_bytes=len(artifact),
        graph_blake3=None,  # verified by its sha256, as a hand-made manifest might list it
    )
    repo.publish(manifest, artifact)
    registry = Registry(
        repository=repo,
        cache=ArtifactCache(tmp_path / "cache"),
        session_factory=OrtSessionFactory(intra_op_threads=1),
    )
    # Then loading refuses it: the session is made from the artifact's folder, and onnxruntime will
    # not follow a location out of it
    with pytest.raises(
        ModelUnavailable, match="model 'escape' version 1 cannot be loaded.*escapes"
    ):
        registry.runner("escape", "1")


def test_an_alias_naming_a_missing_version_is_a_503_with_the_reason(
    tmp_path: Path, artifacts: dict[str, bytes]
) -> None:
    repo = Repository(LocalStore(tmp_path / "store"))
    publish(repo, "multi", artifacts["multi"])
    publish(repo, "digits", artifacts["digits"], alias="prod")
    repo.store.write("models/multi/aliases/prod", b"9\n")  # a hand-edited alias
    settings = settings_for(str(tmp_path / "store"), tmp_path / "cache")
    with (
        LiveServer(runtime_for(settings)) as server,
        httpx.Client(base_url=server.url) as client,
    ):
        response = client.get("/v2/models/multi/versions/prod")
        assert response.status_code == 503
        assert response.json() == {
            "error": "model 'multi': alias 'prod' of model 'multi' points to version 9, which is not published"
        }
        assert client.get("/v2/models/digits/versions/prod").status_code == 200


def test_logs_never_contain_tensor_payloads(
    tmp_path: Path, artifacts: dict[str, bytes], caplog: pytest.LogCaptureFixture
) -> None:
    repo = Repository(LocalStore(tmp_path / "store"))
    publish(repo, "multi", artifacts["multi"])
    publish(repo, "broken", artifacts["fixed"])  # other bytes: the sha256 cache cannot help
    repo.store.write("models/broken/1/model.onnx", b"corrupted")  # its load fails: a warning
    settings = settings_for(str(tmp_path / "store"), tmp_path / "cache")
    marker = 98765.4321
    good = {
        "inputs": [
            {"name": "features", "shape": [1, 4], "datatype": "FP32", "data": [marker] * 4},
            {"name": "ids", "shape": [1], "datatype": "INT64", "data": [424242]},
        ]
    }
    bad = {
        "inputs": [{"name": "features", "shape": [2, 4], "datatype": "FP32", "data": [marker] * 4}]
    }
    caplog.set_level(logging.DEBUG)
    stream = io.StringIO()
    with (
        LiveServer(runtime_for(settings, stream)) as server,
        httpx.Client(base_url=server.url) as client,
    ):
        assert client.post("/v2/models/multi/infer", json=good).status_code == 200
        assert client.post("/v2/models/multi/infer", json=bad).status_code == 400
        assert client.post("/v2/models/nope/infer", json=good).status_code == 404
        broken = {
            "inputs": [{"name": "x", "shape": [2, 3], "datatype": "FP32", "data": [marker] * 6}]
        }
        assert client.post("/v2/models/broken/infer", json=broken).status_code == 503  # logged
    lines = [orjson.loads(line) for line in stream.getvalue().splitlines()]
    failure = next(line for line in lines if line["message"] == "model load failed")
    assert failure["model"] == "broken"
    assert "model 'broken' version 1" in failure["error"]  # the failure is logged, with its reason
    assert [line["status"] for line in lines if line["message"] == "request"] == [
        200,
        400,
        404,
        503,
    ]
    # and no tensor value ever is, in the JSON lines or anything else that was logged
    text = stream.getvalue() + "\n".join(r.getMessage() for r in caplog.records)
    assert "98765" not in text and "424242" not in text


@pytest.mark.parametrize("variant", VARIANTS)
def test_templates_grant_no_s3_star_no_needless_star_and_authorize_every_route(
    variant: str,
) -> None:
    doc = synth(**VARIANTS[variant]).doc
    for logical, resource in doc["Resources"].items():
        if resource["Type"] == "AWS::ApiGatewayV2::Route":
            assert resource["Properties"]["AuthorizationType"] in ("AWS_IAM", "JWT"), logical
        if resource["Type"] != "AWS::IAM::Policy":
            continue
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
            actions: list[Any] = (
                statement["Action"]
                if isinstance(statement["Action"], list)
                else [statement["Action"]]
            )
            assert "s3:*" not in actions and "*" not in actions, (logical, statement)
            if statement.get("Resource") == "*":
                # Actions AWS defines without resource-level permissions: the GPU image pull's
                # token, the shard state machine's log delivery, and X-Ray's, only where
                # maas:tracing turns active tracing on (the state machine's with sampling).
                allowed = [["ecr:GetAuthorizationToken"], LOG_DELIVERY]
                if VARIANTS[variant].get("tracing") == "true":
                    allowed.append(XRAY)
                    allowed.append(sorted(LOG_DELIVERY + XRAY_SAMPLING + XRAY))
                assert sorted(actions) in allowed, (logical, statement)


XRAY = ["xray:PutTelemetryRecords", "xray:PutTraceSegments"]
XRAY_SAMPLING = ["xray:GetSamplingRules", "xray:GetSamplingTargets"]
LOG_DELIVERY = [
    f"logs:{action}"
    for action in (
        "CreateLogDelivery",
        "DeleteLogDelivery",
        "DescribeLogGroups",
        "DescribeResourcePolicies",
        "GetLogDelivery",
        "ListLogDeliveries",
        "PutResourcePolicy",
        "UpdateLogDelivery",
    )
]


def test_onnx_is_not_imported_by_the_functions() -> None:
    # The functions never parse ONNX themselves: onnxruntime loads the verified bytes.
    for path in (ROOT / "functions").rglob("*.py"):
        tree = ast.parse(path.read_text())
        imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        assert "onnx" not in imported, path
    assert onnx.__name__ == "onnx"
