"""The transformer example end to end: tokenizer in the graph, int8 gate, served as text."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import onnx
import orjson
import pytest
from typer.testing import CliRunner

from functions.api.handler import handle
from functions.core import sessions
from functions.core.errors import ManifestError
from functions.core.manifest import Manifest
from functions.core.repository import Repository
from functions.stores import LocalStore
from model_build.cli import app
from model_build.compress import BuildError
from model_build.examples.base import Trained
from model_build.examples.transformer import MAX_LENGTH, encode, train_tokenizer
from model_build.lambda_local import LocalContext, api_event
from model_build.textgraph import tokenizer_graph, wordpiece
from tests.conftest import LiveServer, publish, raw_outputs, runtime_for, settings_for

TRICKY = [
    "Café crème, naïve façade: où est ma facture?!",  # Latin-1 accents, punctuation
    "my PARCEL never arrived... tracking #A-1234 says 'delivered' (it wasn't)",
    "zxqv unknownword qwertyuiop",  # words the vocabulary has never seen
    "refund " * 80,  # longer than the position table: truncated to MAX_LENGTH
    "x",
]


def texts_of(trained: Trained, count: int) -> list[str]:
    return [str(t) for t in trained.eval_inputs["text"][:count]]


def test_the_graph_tokenizes_as_the_tokenizers_library_does(transformer: Trained) -> None:
    # Given the example's tokenizer, trained with `tokenizers`, and the same one as ONNX
    texts = [str(t) for t in transformer.calibration["text"]]
    tokenizer = train_tokenizer(texts)
    graph = tokenizer_graph(
        wordpiece(orjson.loads(tokenizer.to_str())),
        max_length=MAX_LENGTH,
        outputs=("input_ids", "attention_mask", "token_type_ids"),
        opset=18,
        ir_version=10,
    )
    sample = [*texts_of(transformer, 40), *TRICKY]
    # When both tokenize a batch (the graph pads to the batch's longest row, as `tokenizers` does)
    ids = raw_outputs(graph.SerializeToString(), {"text": np.asarray(sample, dtype=object)})
    expected = encode(tokenizer, sample)
    # Then every id, mask and type is the same
    for name, values in expected.items():
        assert ids[name].shape == values.shape
        assert np.array_equal(ids[name], values), name
    assert ids["input_ids"].shape[1] == MAX_LENGTH  # the long one was cut at the position table


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, transformer: Trained) -> Path:
    """The transformer published through the pipeline, fp32 parent and int8 child."""
    from model_build.gate import Thresholds
    from model_build.pipeline import build

    store = tmp_path_factory.mktemp("transformer-store")
    build(
        transformer,
        repo=Repository(LocalStore(store)),
        name="transformer",
        mode="int8-dynamic",
        thresholds=Thresholds(force=True),  # quick training: the gate's verdict is recorded
        latency_seconds=0.4,
    )
    return store


def test_int8_is_judged_recorded_and_listed(built: Path) -> None:
    repo = Repository(LocalStore(built))
    fp32, int8 = repo.manifest("transformer", 1), repo.manifest("transformer", 2)
    assert (fp32.quantization, int8.quantization) == ("none", "int8-dynamic")
    assert fp32.custom_ops == int8.custom_ops == ("onnxruntime-extensions",)
    assert [(t.name, t.datatype, t.shape) for t in int8.inputs] == [("text", "BYTES", (-1,))]
    assert {t.name: t.datatype for t in int8.outputs} == {"label": "BYTES", "probabilities": "FP32"}
    metrics = int8.metrics
    # the embedding table is int8 too: the artifact is about a quarter of fp32's
    assert metrics["size_ratio"] <= 0.35
    for key in ("agreement", "accuracy", "latency_ratio", "latency_ratio_batch1"):
        assert key in metrics
    assert metrics["latency_threads"] == 1
    assert {"Gather", "MatMul"} <= set(int8.source["quantization"]["op_types"])
    listing = CliRunner().invoke(
        app, ["list", "transformer", "--store", str(built)], env={"COLUMNS": "300"}
    )
    assert listing.exit_code == 0, listing.output
    assert "latency_ratio_batch1=" in listing.stdout and "size_ratio=" in listing.stdout


def test_v2_v1_and_the_lambda_handler_answer_as_raw_onnxruntime(
    built: Path, transformer: Trained, tmp_path: Path
) -> None:
    texts = [*texts_of(transformer, 12), *TRICKY]
    artifact = (built / "models" / "transformer" / "2" / "model.onnx").read_bytes()
    expected = raw_outputs(artifact, {"text": np.asarray(texts, dtype=object)})
    runtime = runtime_for(settings_for(str(built), tmp_path / "cache"))
    body = {"inputs": [{"name": "text", "shape": [len(texts)], "datatype": "BYTES", "data": texts}]}
    with LiveServer(runtime) as server, httpx.Client(base_url=server.url) as client:
        v2 = client.post("/v2/models/transformer/infer", json=body)
        v1 = client.post("/v1/models/transformer:predict", json={"instances": texts})
    assert v2.status_code == 200, v2.text
    outputs = {o["name"]: o for o in v2.json()["outputs"]}
    assert outputs["label"]["data"] == expected["label"].tolist()
    assert np.array_equal(
        np.asarray(outputs["probabilities"]["data"], np.float32).reshape(len(texts), -1),
        expected["probabilities"],
    )
    assert v1.status_code == 200, v1.text
    predictions = v1.json()["predictions"]
    assert [p["label"] for p in predictions] == expected["label"].tolist()
    # And through the Lambda handler, from a real-shaped API Gateway event
    event: Any = api_event("/v2/models/transformer/infer", orjson.dumps(body))
    response = handle(runtime, event, LocalContext())
    assert response["statusCode"] == 200, response["body"]
    raw_body = response["body"]
    doc = orjson.loads(base64.b64decode(raw_body) if response.get("isBase64Encoded") else raw_body)
    assert {o["name"]: o["data"] for o in doc["outputs"]}["label"] == expected["label"].tolist()


def test_an_empty_batch_gets_empty_answers(built: Path) -> None:
    artifact = (built / "models" / "transformer" / "2" / "model.onnx").read_bytes()
    out = raw_outputs(artifact, {"text": np.asarray([], dtype=object)})
    assert out["label"].shape == (0,) and out["probabilities"].shape == (0, 4)


def test_the_custom_op_library_is_registered_only_for_models_that_name_it(
    built: Path, artifacts: dict[str, bytes], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    publish(Repository(LocalStore(built)), "digits", artifacts["digits"])
    asked: list[str] = []
    library = sessions.custom_op_library

    def recording(name: str) -> str:
        asked.append(name)
        return library(name)

    monkeypatch.setattr(sessions, "custom_op_library", recording)
    registry = runtime_for(settings_for(str(built), tmp_path / "cache")).registry
    registry.runner("digits", "latest")
    assert asked == []
    registry.runner("transformer", "2")
    assert asked == ["onnxruntime-extensions"]


def test_a_manifest_naming_an_unknown_library_is_refused() -> None:
    doc = {
        "schema_version": 1,
        "name": "m",
        "version": 1,
        "sha256": "0" * 64,
        "size_bytes": 1,
        "opset": 18,
        "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1]}],
        "outputs": [{"name": "y", "datatype": "FP32", "shape": [-1]}],
        "created_at": "2026-12-03T00:00:00+00:00",
        "custom_ops": ["libevil"],
    }
    with pytest.raises(ManifestError, match="unknown custom-op library 'libevil'"):
        Manifest.from_dict(doc)
    assert Manifest.from_dict({**doc, "custom_ops": []}).custom_ops == ()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"model": {"type": "BPE"}}, "only a WordPiece .* this one is BPE"),
        ({"pre_tokenizer": {"type": "Whitespace"}}, "pre-tokenizer must be BertPreTokenizer"),
        ({"normalizer": {"type": "NFKC"}}, "normalizer must be BertNormalizer"),
        ({"post_processor": None}, r"must wrap a sentence as \[CLS\] sentence \[SEP\]"),
    ],
)
def test_a_tokenizer_the_graph_cannot_reproduce_is_refused(
    transformer: Trained, change: dict[str, Any], message: str
) -> None:
    document = orjson.loads(train_tokenizer(texts_of(transformer, 30)).to_str())
    with pytest.raises(BuildError, match=message):
        wordpiece({**document, **change})


def test_an_onnx_graph_with_the_tokenizer_is_a_valid_model(built: Path) -> None:
    model = onnx.load(str(built / "models" / "transformer" / "1" / "model.onnx"))
    onnx.checker.check_model(model)
    assert {(o.domain, o.version) for o in model.opset_import} >= {("ai.onnx.contrib", 1)}
    assert len({o.domain for o in model.opset_import}) == len(model.opset_import)


def test_bring_your_own_encoder_and_tokenizer_json(
    tmp_path: Path, transformer: Trained, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    from model_build.examples.transformer import export_encoder

    # Given an encoder exported elsewhere (here: a small BERT, random weights) and its tokenizer
    texts = texts_of(transformer, 24)
    tokenizer = train_tokenizer(texts, vocabulary=300)
    (tmp_path / "tokenizer.json").write_text(tokenizer.to_str())
    torch.manual_seed(1)
    config = BertConfig(
        vocab_size=tokenizer.get_vocab_size(),
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=MAX_LENGTH,
        num_labels=3,
    )
    model = BertForSequenceClassification(config).eval()
    (tmp_path / "encoder.onnx").write_bytes(export_encoder(model, encode(tokenizer, texts[:2])))
    np.savez(tmp_path / "cal.npz", text=np.asarray(texts[:16]))
    np.savez(tmp_path / "eval.npz", text=np.asarray(texts), labels=np.arange(len(texts)) % 3)
    store = tmp_path / "store"
    # When it is built with the CLI, the tokenizer put in front
    monkeypatch.setenv("COLUMNS", "200")
    args = ["build", "--from-onnx", str(tmp_path / "encoder.onnx"), "--name", "byo"]
    args += ["--tokenizer", str(tmp_path / "tokenizer.json"), "--classes", "red,green,blue"]
    args += ["--max-length", str(MAX_LENGTH), "--calibration", str(tmp_path / "cal.npz")]
    args += ["--eval", str(tmp_path / "eval.npz"), "--store", str(store)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    # Then the artifact takes text and answers as the encoder does on `tokenizers`' ids
    manifest = Repository(LocalStore(store)).manifest("byo", 1)
    assert manifest.custom_ops == ("onnxruntime-extensions",)
    assert manifest.source["classes"] == ["red", "green", "blue"]
    artifact = (store / "models" / "byo" / "1" / "model.onnx").read_bytes()
    served = raw_outputs(artifact, {"text": np.asarray(texts, dtype=object)})
    with torch.no_grad():
        ids = {k: torch.from_numpy(v) for k, v in encode(tokenizer, texts).items()}
        probabilities = torch.softmax(model(**ids).logits, dim=-1).numpy()
    np.testing.assert_allclose(served["probabilities"], probabilities, rtol=1e-4, atol=1e-5)
    names = np.asarray(["red", "green", "blue"])[probabilities.argmax(axis=1)]
    assert served["label"].tolist() == names.tolist()
    # And a tokenizer without its class names is a clear refusal
    refused = CliRunner().invoke(app, args[:6] + args[8:])
    assert isinstance(refused.exception, BuildError)  # `maas` prints it as one line, exit 1
    assert "--tokenizer needs --classes NAME,NAME" in str(refused.exception)


def _tiny_encoder(opset: int, logits: str = "logits") -> bytes:
    """input_ids -> mean of a 2-wide embedding: [batch, 2] logits (no torch needed)."""
    from onnx import TensorProto
    from onnx import helper as oh

    table = oh.make_tensor("table", TensorProto.FLOAT, [1000, 2], [0.01 * i for i in range(2000)])
    nodes = [
        oh.make_node("Gather", ["table", "input_ids"], ["rows"]),
        oh.make_node("ReduceMean", ["rows"], [logits], axes=[1], keepdims=0),
    ]
    graph = oh.make_graph(
        nodes,
        "tiny",
        [oh.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "sequence"])],
        [oh.make_tensor_value_info(logits, TensorProto.FLOAT, ["batch", 2])],
        [table],
    )
    model = oh.make_model(graph, opset_imports=[oh.make_opsetid("", opset)], ir_version=8)
    return bytes(model.SerializeToString())


def test_encoders_the_text_model_cannot_wrap_are_refused_and_max_length_follows_the_tokenizer(
    transformer: Trained,
) -> None:
    from model_build.textgraph import text_classifier

    document = orjson.loads(train_tokenizer(texts_of(transformer, 30)).to_str())
    with pytest.raises(BuildError, match="the encoder is opset 12; the tokenizer graph needs 13"):
        text_classifier(_tiny_encoder(12), document, ["a", "b"])
    with pytest.raises(BuildError, match="the encoder already uses probabilities"):
        text_classifier(_tiny_encoder(17, logits="probabilities"), document, ["a", "b"])
    # No --max-length: the tokenizer's own truncation (the example's 64), not 512
    model = onnx.load_model_from_string(text_classifier(_tiny_encoder(17), document, ["a", "b"]))
    loop = next(n for n in model.graph.node if n.op_type == "Loop")
    body = next(a.g for a in loop.attribute if a.name == "body")
    tokenizer = next(n for n in body.node if n.op_type == "BertTokenizer")
    assert onnx.helper.get_node_attr_value(tokenizer, "max_length") == MAX_LENGTH
    out = raw_outputs(
        onnx.ModelProto.SerializeToString(model), {"text": np.asarray(["refund " * 200], object)}
    )
    assert out["probabilities"].shape == (1, 2)
