"""SnapStart, as far as this machine can go: init with a preloaded model, the runtime's restore
hook, and the first request after the restore, in a fresh interpreter as Lambda runs it.

Lambda's Python runtime provides `snapshot_restore_py`; a stand-in with the same two functions
records the hooks, and the test calls them where Lambda would resume the snapshot.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import orjson

from functions.core.repository import Repository
from functions.stores import LocalStore
from model_build.examples.large import write_embedding_model
from model_build.inspect_onnx import artifact_from_file
from tests.conftest import ROOT

STAND_IN = """
hooks = {"before": [], "after": []}
def register_before_snapshot(func, *args, **kwargs):
    hooks["before"].append((func, args, kwargs)); return func
def register_after_restore(func, *args, **kwargs):
    hooks["after"].append((func, args, kwargs)); return func
"""

SCRIPT = """
import json, sys
import snapshot_restore_py as hooks
from functions.api import handler                  # the init phase: runtime built, model preloaded
store = handler.get_runtime().registry.repository.store
before = handler.get_runtime().registry.loaded()
assert len(hooks.hooks["after"]) == 1, hooks.hooks
for func, args, kwargs in hooks.hooks["after"]:    # Lambda resumes the snapshot
    func(*args, **kwargs)
event = json.loads(open(sys.argv[1]).read())
from model_build.lambda_local import LocalContext
response = handler.handler(event, LocalContext())
sys.stderr.write(json.dumps({"status": response["statusCode"], "before": before,
                             "after": handler.get_runtime().registry.loaded()}) + "\\n")
"""


def test_a_preloaded_external_data_model_survives_the_restore_path(tmp_path: Path) -> None:
    graph = write_embedding_model(tmp_path / "model", table_bytes=1 << 20)
    artifact = artifact_from_file(graph, name="emb")
    Repository(LocalStore(tmp_path / "store")).publish(
        artifact.manifest, artifact.graph, artifact.data
    )
    (tmp_path / "hooks").mkdir()
    (tmp_path / "hooks" / "snapshot_restore_py.py").write_text(STAND_IN)
    from model_build.lambda_local import api_event

    body = orjson.dumps(
        {"inputs": [{"name": "ids", "shape": [1, 4], "datatype": "INT64", "data": [1, 2, 3, 4]}]}
    )
    event = tmp_path / "event.json"
    event.write_bytes(orjson.dumps(api_event("/v2/models/emb/infer", body)))
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tmp_path / "hooks"), str(ROOT)]),
        "AWS_LAMBDA_INITIALIZATION_TYPE": "snap-start",
        "MAAS_STORE": str(tmp_path / "store"),
        "MAAS_CACHE_DIR": str(tmp_path / "cache"),
        "MAAS_PRELOAD": "emb:latest",
    }
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(SCRIPT), str(event)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    answer = orjson.loads(result.stderr.strip().splitlines()[-1])
    # The model was loaded during init and served after the restore without loading again
    assert answer == {"status": 200, "before": [["emb", 1]], "after": [["emb", 1]]}
    messages = [orjson.loads(line)["message"] for line in result.stdout.splitlines()]
    assert messages.count("model loaded") == 1
    assert messages.index("model loaded") < messages.index("snapshot restored")
    assert messages.index("snapshot restored") < messages.index("request")
