"""The benchmark runs end to end and reports every layer as a ratio to raw (no timing asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson

from tests.conftest import ROOT


def test_bench_runs_and_reports_ratios(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--seconds", "0.01", "--batches", "1", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    rows = orjson.loads(out.read_bytes())["rows"]
    layers = {row["layer"] for row in rows}
    assert layers == {
        "raw session.run",
        "runner",
        "lambda handler (JSON)",
        "lambda handler (binary)",
        "HTTP maas serve (JSON)",
    }
    assert {row["model"] for row in rows} == {"digits", "mlp"}
    assert all(row["ratio_to_raw"] > 0 and row["calls"] >= 30 for row in rows)
    assert all(row["ratio_to_raw"] == 1.0 for row in rows if row["layer"] == "raw session.run")
