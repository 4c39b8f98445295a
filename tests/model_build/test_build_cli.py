"""`maas build` from the command line: bring your own model, and every bad input refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson
import pytest

from functions.core.repository import Repository
from functions.stores import LocalStore
from model_build.examples import Trained
from tests.model_build.test_cli import maas


@pytest.fixture
def files(cnn: Trained, tmp_path: Path) -> dict[str, Path]:
    """The CNN as a user would bring it: an ONNX file and .npz data."""
    model = tmp_path / "cnn.onnx"
    model.write_bytes(cnn.onnx_bytes)
    paths = {"model": model, "cal": tmp_path / "cal.npz", "eval": tmp_path / "eval.npz"}
    np.savez(paths["cal"], image=cnn.calibration["image"])
    np.savez(paths["eval"], image=cnn.eval_inputs["image"], labels=cnn.eval_labels)
    return paths


def build_int8(model: Path, files: dict[str, Path], store: Path) -> list[str]:
    """`maas build` arguments: MODEL compressed to int8 with the CNN's data, as 'mycnn'."""
    return [
        "build", "--from-onnx", str(model), "--calibration", str(files["cal"]),
        "--eval", str(files["eval"]), "--name", "mycnn", "--quantize", "int8-static",
        "--store", str(store), "--quick",
    ]  # fmt: skip


def test_bring_your_own_model(files: dict[str, Path], tmp_path: Path) -> None:
    store = tmp_path / "store"
    result = maas(*build_int8(files["model"], files, store), "--alias", "prod")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "2"
    assert "built mycnn" in result.stderr
    manifest = orjson.loads((store / "models" / "mycnn" / "2" / "manifest.json").read_bytes())
    assert manifest["source"]["parent_version"] == 1
    assert manifest["source"]["evaluated_on"] == "eval data"
    assert manifest["metrics"]["agreement"] >= 0.99
    assert "accuracy" in manifest["metrics"]
    assert Repository(LocalStore(store)).aliases("mycnn") == {"prod": 2}


def test_bring_your_own_model_with_external_data(files: dict[str, Path], tmp_path: Path) -> None:
    import onnx

    # Given the CNN saved as exporters save big models: its weights beside it, in a subfolder
    folder = tmp_path / "exported"
    (folder / "weights").mkdir(parents=True)
    onnx.save_model(
        onnx.load(str(files["model"])),
        str(folder / "cnn.onnx"),
        save_as_external_data=True,
        location="weights/cnn.data",
        size_threshold=0,
    )
    store = tmp_path / "store"
    result = maas(*build_int8(folder / "cnn.onnx", files, store))
    # Then it is read with its external data, compressed and published like any other
    assert result.returncode == 0, result.stderr
    manifest = orjson.loads((store / "models" / "mycnn" / "2" / "manifest.json").read_bytes())
    assert manifest["metrics"]["agreement"] >= 0.99
    # And a location that leaves the folder is refused, naming it
    model = onnx.load(str(folder / "cnn.onnx"), load_external_data=False)
    for tensor in model.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = "../cnn.data"
    (folder / "cnn.onnx").write_bytes(model.SerializeToString())
    refused = maas(
        "build", "--from-onnx", str(folder / "cnn.onnx"), "--calibration", str(files["cal"]),
        "--name", "mycnn", "--store", str(store), "--quick",
    )  # fmt: skip
    assert refused.returncode == 1
    assert "'../cnn.data'" in refused.stderr and "leaves" in refused.stderr


def test_example_build_prints_a_summary(tmp_path: Path) -> None:
    result = maas(
        "build", "text", "--store", str(tmp_path / "store"), "--quick", env={"COLUMNS": "160"}
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "1"
    for column in ("size", "accuracy", "agreement", "latency vs fp32"):
        assert column in result.stderr


def save(tmp_path: Path, name: str, **arrays: np.ndarray) -> str:
    path = tmp_path / name
    np.savez(path, **arrays)  # type: ignore[arg-type]
    return str(path)


def cases(cnn: Trained, files: dict[str, Path], tmp_path: Path) -> list[tuple[list[str], str]]:
    model, cal = str(files["model"]), str(files["cal"])
    image = cnn.calibration["image"]
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(files["model"].read_bytes()[:500])
    text = tmp_path / "notes.npz"
    text.write_text("not a zip")
    byo = ["build", "--from-onnx", model, "--name", "m", "--calibration"]
    return [
        (
            ["build", "--from-onnx", "missing.onnx", "--name", "m", "--calibration", cal],
            "error: cannot read missing.onnx: No such file or directory",
        ),
        (
            ["build", "--from-onnx", str(broken), "--name", "m", "--calibration", cal],
            "error: not a valid ONNX model",
        ),
        (
            [*byo, save(tmp_path, "names.npz", pixels=image)],
            "error: calibration data does not match the model's inputs (missing 'image'; unexpected 'pixels'); the model takes 'image' (and an optional 'labels' array)",
        ),
        (
            [*byo, save(tmp_path, "dtype.npz", image=image.astype(np.float64))],
            "error: calibration data: input 'image' has datatype FP64, expected FP32",
        ),
        (
            [*byo, save(tmp_path, "shape.npz", image=image.reshape(-1, 64))],
            "error: calibration data: input 'image' has shape [128, 64] (rank 2), expected rank 4 [-1, 1, 8, 8]",
        ),
        (
            [*byo, save(tmp_path, "empty.npz", image=image[:0])],
            "error: the calibration set is empty",
        ),
        ([*byo, str(text)], f"error: cannot read calibration file {text} as .npz"),
        (
            [*byo, str(tmp_path / "none.npz")],
            f"error: calibration file {tmp_path / 'none.npz'} does not exist",
        ),
        (
            ["build", "--from-onnx", model, "--name", "m"],
            "error: --from-onnx needs --calibration DATA.npz",
        ),
        (
            ["build", "resnet"],
            "error: unknown example 'resnet'; choose one of cnn, digits, tabular, text, transformer",
        ),
        (
            ["build", "cnn", "--from-onnx", model],
            "error: give an EXAMPLE (cnn, digits, tabular, text, transformer) or --from-onnx "
            "MODEL.onnx, not both",
        ),
        (
            ["build", "text", "--quantize", "int4"],
            "error: unknown quantization 'int4'; choose one of none, fp16, int8-dynamic, int8-static",
        ),
        (
            ["build", "text", "--quantize", "int8-static", "--quick"],
            "error: nothing to quantize: the model has no Conv",
        ),
    ]


def test_bad_input_is_a_clear_error_and_publishes_nothing(
    cnn: Trained, files: dict[str, Path], tmp_path: Path
) -> None:
    store = tmp_path / "store"
    for args, message in cases(cnn, files, tmp_path):
        result = maas(*args, "--store", str(store), env={"COLUMNS": "400"})
        assert result.returncode == 1, (args, result.stderr)
        last = result.stderr.strip().splitlines()[-1]
        assert last.startswith(message), (args, result.stderr)
        assert "Traceback" not in result.stderr
        assert not store.exists(), args
