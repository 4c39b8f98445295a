"""schemathesis against the live server's own /openapi.json: no 5xx, responses as documented.

The CLI is used (its pytest plugin does not support pytest 9). Every check runs except
`positive_data_acceptance`: OpenAPI cannot express the rules a request must also meet here
(data filling its shape, a model's own input names, size limits), so schema-valid requests
answered 400 or 413 are correct, not failures.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT, LiveServer, runtime_for, settings_for


@pytest.fixture(scope="module")
def fuzz_server(
    served_store: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    config = settings_for(
        str(served_store), tmp_path_factory.mktemp("fuzz"), max_body_bytes=1 << 20
    )
    with LiveServer(runtime_for(config)) as server:
        yield server


def test_at_least_1000_generated_requests_and_no_failure(
    fuzz_server: LiveServer, tmp_path: Path
) -> None:
    command = [
        str(Path(sys.executable).parent / "schemathesis"),
        "--config-file",
        str(Path(__file__).with_name("schemathesis.toml")),
        "run",
        f"{fuzz_server.url}/openapi.json",
        "--checks",
        "all",
        "--exclude-checks",
        "positive_data_acceptance",
        "--max-examples",
        "100",
        "--seed",
        "1",
        "--workers",
        "1",
        "--report-dir",
        str(tmp_path),
    ]
    result = subprocess.run(
        command,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=420,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "NO_COLOR": "1"},
    )
    summary = re.search(r"(\d+) generated, (\d+) passed", result.stdout)
    assert result.returncode == 0, result.stdout[-4000:]
    assert summary is not None, result.stdout[-2000:]
    generated, passed = int(summary[1]), int(summary[2])
    assert generated >= 1000 and passed == generated
    assert "Selected: 13/13" in result.stdout  # every endpoint of the OpenAPI description
