"""The `maas` CLI: publish any ONNX model, list, alias, invoke, serve, demo, and clear errors."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import orjson
import pytest
from typer.testing import CliRunner

from functions.core.repository import Repository
from functions.stores import LocalStore
from model_build.cli import app
from tests import models
from tests.conftest import EVENTS, ROOT, free_port

runner = CliRunner()


def maas(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run the real `maas` entry point in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "model_build", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture
def onnx_file(tmp_path: Path) -> Path:
    path = tmp_path / "multi.onnx"
    path.write_bytes(models.multi_io())
    return path


def test_publish_list_alias(onnx_file: Path, tmp_path: Path) -> None:
    store = str(tmp_path / "store")
    first = runner.invoke(
        app, ["publish", str(onnx_file), "--name", "multi", "--store", store, "--alias", "prod"]
    )
    assert first.exit_code == 0, first.output
    assert first.stdout.strip() == "1"
    second = runner.invoke(
        app, ["publish", str(onnx_file), "--name", "multi", "--store", store, "--label", "team=ml"]
    )
    assert second.stdout.strip() == "2"
    promoted = runner.invoke(app, ["alias", "multi", "prod", "2", "--store", store])
    assert promoted.stdout.strip() == "multi:prod -> 2 (was 1)"
    rolled_back = runner.invoke(app, ["alias", "multi", "prod", "1", "--store", store])
    assert rolled_back.stdout.strip() == "multi:prod -> 1 (was 2)"
    listing = runner.invoke(app, ["list", "--store", store], terminal_width=200)
    assert listing.exit_code == 0
    rows = [line for line in listing.stdout.splitlines() if "multi" in line and "│" in line]
    assert len(rows) == 2
    assert "prod" in rows[0] and "none" in rows[0]


def test_a_canary_promoted_and_rolled_back(onnx_file: Path, tmp_path: Path) -> None:
    store = str(tmp_path / "store")
    for _ in range(2):
        runner.invoke(app, ["publish", str(onnx_file), "--name", "multi", "--store", store])

    def alias(*args: str) -> str:
        result = runner.invoke(app, ["alias", "multi", "prod", *args, "--store", store])
        assert result.exit_code == 0, result.output
        return result.stdout.strip()

    assert alias("1") == "multi:prod -> 1"
    assert alias("1", "--canary", "2=10%") == "multi:prod -> 1, canary 2 at 10% (was 1)"
    listing = runner.invoke(app, ["list", "--store", store], env={"COLUMNS": "250"}).stdout
    assert "prod (canary 10%)" in next(r for r in listing.splitlines() if "│ 2 " in r)
    assert alias("--rollback", "--reason", "p99 up") == "multi:prod -> 1 (canary 2 rolled back)"
    repo = Repository(LocalStore(Path(store)))
    assert repo.alias_doc("multi", "prod")["ended"]["reason"] == "p99 up"
    assert repo.route("multi", "prod") == (1, None, 0.0)
    assert alias("1", "--canary", "2=0.25") == "multi:prod -> 1, canary 2 at 25% (was 1)"
    assert alias("--promote") == "multi:prod -> 2 (canary 2 promoted)"
    assert repo.route("multi", "prod") == (2, None, 0.0)
    refused = maas("alias", "multi", "prod", "--promote", "--store", store)
    assert refused.returncode == 1
    assert refused.stderr.strip() == "error: multi:prod has no canary to end"
    bad = runner.invoke(
        app, ["alias", "multi", "prod", "1", "--canary", "2=150%", "--store", store]
    )
    assert bad.exit_code != 0 and "expected VERSION=PERCENT" in bad.output


def test_store_from_the_environment(onnx_file: Path, tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        ["publish", str(onnx_file), "--name", "envmodel"],
        env={"MAAS_STORE": str(tmp_path / "s")},
    )
    assert result.exit_code == 0
    assert (tmp_path / "s" / "models" / "envmodel" / "1" / "manifest.json").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["publish", "missing.onnx", "--name", "m"],
            "error: cannot read missing.onnx: No such file or directory",
        ),
        (["publish", "pyproject.toml", "--name", "m"], "error: not a valid ONNX model"),
        (["publish", "{onnx}", "--name", "../m"], "error: invalid model name '../m'"),
        (["alias", "multi", "prod", "9"], "error: model 'multi' is not published"),
        (["invoke", "missing.json"], "error: cannot read missing.json: No such file or directory"),
        (["list", "--store", "http://x"], "error: unsupported store URI 'http://x'"),
    ],
)
def test_errors_are_one_line_and_exit_nonzero(
    args: list[str], message: str, onnx_file: Path, tmp_path: Path
) -> None:
    args = [str(onnx_file) if a == "{onnx}" else a for a in args]
    if "--store" not in args:
        args += ["--store", str(tmp_path / "store")]
    result = maas(*args)
    assert result.returncode == 1
    assert result.stderr.strip().replace("\n", " ").startswith(message), result.stderr
    assert "Traceback" not in result.stderr


def test_publish_refuses_and_writes_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07garbage")
    result = maas("publish", str(bad), "--name", "m", "--store", str(tmp_path / "store"))
    assert result.returncode == 1
    assert not (tmp_path / "store").exists()


@pytest.mark.parametrize("command", ["publish", "list", "alias", "serve", "invoke", "demo"])
def test_every_command_has_help(command: str) -> None:
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0
    assert "Usage" in result.stdout


def test_invoke_runs_the_lambda_handler_on_an_event(served_store: Path, tmp_path: Path) -> None:
    env = {"MAAS_CACHE_DIR": str(tmp_path / "cache")}
    ok = maas("invoke", str(EVENTS / "apigw-v2-infer.json"), "--store", str(served_store), env=env)
    assert ok.returncode == 0, ok.stderr
    response = orjson.loads(ok.stdout)
    assert response["statusCode"] == 200
    assert orjson.loads(response["body"])["outputs"][0]["data"] == [0, 1, 2]
    # stdout is the response alone; the handler's JSON log lines go to stderr, the request's
    # carrying its EMF metrics
    logs = [orjson.loads(line) for line in ok.stderr.splitlines()]
    assert [line["message"] for line in logs] == ["cold start", "model loaded", "request"]
    request = logs[-1]
    assert (request["model"], request["version"], request["status"]) == ("digits", "1", 200)
    assert request["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "serverless-maas"
    empty = maas(
        "invoke", str(EVENTS / "apigw-v2-infer.json"), "--store", str(tmp_path / "empty"), env=env
    )
    assert empty.returncode == 1
    assert orjson.loads(empty.stdout)["statusCode"] == 404


def test_serve_answers_over_http(served_store: Path, tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "model_build",
            "serve",
            "--store",
            str(served_store),
            "--port",
            str(port),
        ],
        cwd=ROOT,
        env={**os.environ, "MAAS_CACHE_DIR": str(tmp_path / "cache")},
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                response = httpx.get(
                    f"http://127.0.0.1:{port}/v2/models/digits/versions/prod/ready", timeout=2
                )
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "maas serve did not start"
                time.sleep(0.2)
        assert response.json() == {
            "name": "digits",
            "version": "1",
            "ready": True,
            "execution_provider": "CPUExecutionProvider",
        }
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def test_demo_runs_end_to_end(tmp_path: Path) -> None:
    result = maas(
        "demo",
        "--store",
        str(tmp_path / "store"),
        env={"MAAS_CACHE_DIR": str(tmp_path / "cache"), "COLUMNS": "120"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "accuracy over HTTP on 360 held-out digits: 0.9" in result.stdout
    assert "apigw-v1-predict.json (dataset rows 0-2, true 0 1 2): labels [0, 1, 2]" in result.stdout


def test_version_names_the_project_and_what_it_serves_with() -> None:
    from importlib.metadata import version

    from functions import __version__

    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0] == f"serverless-maas {__version__}"
    assert f"  onnxruntime {version('onnxruntime')}" in lines
    assert f"  numpy {version('numpy')}" in lines
