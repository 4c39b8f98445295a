"""cdk-nag (no open findings, every acknowledgement reasoned), cfn-lint, bundling, the CLI, config."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from infra.bundling import (
    STRIP,
    asset_size,
    copy_functions,
    export_runtime,
    install_requirements,
)
from infra.config import ConfigError
from tests.conftest import ROOT
from tests.infra.conftest import VARIANTS, synth


@pytest.mark.parametrize("variant", VARIANTS)
def test_cdk_nag_has_no_open_findings(variant: str) -> None:
    # Synthesis itself fails on an open finding (cdk-nag runs as a validation plugin).
    report = json.loads((synth(**VARIANTS[variant]).outdir / "validation-report.json").read_text())
    [nag] = report["pluginReports"]
    assert (nag["pluginName"], nag["conclusion"], nag["violations"]) == (
        "AwsSolutions",
        "success",
        [],
    )
    for suppressed in nag["suppressedViolations"]:
        assert len(suppressed["reason"]) > 40, suppressed


@pytest.mark.parametrize("variant", VARIANTS)
def test_cfn_lint_reports_no_errors(variant: str) -> None:
    template = synth(**VARIANTS[variant]).outdir / "Maas.template.json"
    result = subprocess.run(
        [str(Path(sys.executable).parent / "cfn-lint"), str(template)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    # Exit status is a bit mask: 2 = errors, 4 = warnings, 8 = informational.
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(("architecture", "machine"), [("x86_64", "x86_64"), ("arm64", "aarch64")])
def test_the_asset_is_built_for_lambdas_platform(
    tmp_path: Path, architecture: str, machine: str
) -> None:
    install_requirements(tmp_path, architecture)
    copy_functions(tmp_path)
    # Built for Lambda's Python 3.12 and CPU, not this machine's Python
    assert (
        tmp_path
        / "onnxruntime"
        / "capi"
        / f"onnxruntime_pybind11_state.cpython-312-{machine}-linux-gnu.so"
    ).exists()
    assert list(
        (tmp_path / "numpy" / "_core").glob(f"_multiarray_umath.cpython-312-{machine}-linux-gnu.so")
    )
    for package in ("fastapi", "mangum", "pydantic", "orjson", "aws_lambda_powertools"):
        assert (tmp_path / package).is_dir(), package
    assert (tmp_path / "functions" / "api" / "handler.py").exists()
    assert not (tmp_path / "functions" / "container").exists()
    assert not any(list(tmp_path.glob(s)) for s in STRIP)
    assert not list(tmp_path.rglob("tests"))
    assert not (tmp_path / "boto3").exists()  # the Lambda runtime provides it
    assert not (tmp_path / "botocore").exists()
    # Exactly the lock's versions for Lambda's Python (numpy differs from 3.11's: a fork)
    pinned = {
        name.lower().replace("_", "-"): version
        for line in export_runtime(hashes=False).splitlines()
        if "==" in line and not line.startswith(" ")
        for name, version in [line.split(" ;")[0].split("==")]
        if "python_full_version < '3.12'" not in line
    }
    stems = [info.name.removesuffix(".dist-info") for info in tmp_path.glob("*.dist-info")]
    installed = {
        name.lower().replace("_", "-"): version
        for name, version in (stem.rsplit("-", 1) for stem in stems)
    }
    assert installed == pinned
    # The budget: 110 MB unzipped, onnxruntime-extensions' custom-op library counted apart
    custom_ops = asset_size(tmp_path / "onnxruntime_extensions")
    assert 5e6 < custom_ops < 10e6
    assert asset_size(tmp_path) - custom_ops <= 110e6


def test_the_batch_functions_asset_adds_pyarrow_within_lambdas_limit(tmp_path: Path) -> None:
    """.parquet batch files need pyarrow: the batch functions' asset has it, stripped to what
    reads and writes Parquet, and stays under Lambda's 250 MB; the API's asset never has it."""
    install_requirements(tmp_path, "x86_64", ("parquet",))
    copy_functions(tmp_path)
    pyarrow = tmp_path / "pyarrow"
    assert (pyarrow / "lib.cpython-312-x86_64-linux-gnu.so").exists()
    assert (pyarrow / "_parquet.cpython-312-x86_64-linux-gnu.so").exists()
    assert (pyarrow / "libparquet.so.2600").exists() or list(pyarrow.glob("libparquet.so.*"))
    assert not list(pyarrow.glob("libarrow_flight*")) and not list(pyarrow.glob("*.pyx"))
    assert len(list(pyarrow.glob("libarrow_python.so*"))) == 1  # one copy of each library
    assert 200e6 < asset_size(tmp_path) <= 250 * 1024 * 1024
    assert "pyarrow" not in export_runtime(hashes=False)


def test_the_export_is_plain_text_when_the_cdk_cli_asks_for_colors(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`npx cdk synth` runs the app with FORCE_COLOR set; uv then colored its comments, and the
    requirements file it wrote could not be read back."""
    monkeypatch.setenv("FORCE_COLOR", "1")
    assert "\x1b" not in export_runtime() and "\x1b" not in export_runtime(hashes=False)


def test_the_functions_requirements_are_the_locks_export() -> None:
    """functions/requirements.txt (for the container images) is uv.lock's runtime group, as
    `make lock` writes it; every direct runtime dependency is pinned there."""
    import tomllib

    from infra.bundling import REQUIREMENTS_HEADER, RUNTIME_PROVIDED

    written = (ROOT / "functions" / "requirements.txt").read_text()
    assert written == REQUIREMENTS_HEADER + export_runtime(hashes=False), "run `make lock`"
    pins = {line.split("==")[0] for line in written.splitlines() if "==" in line}
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    direct = {d.split(">")[0].split("=")[0].split("[")[0].strip().lower() for d in declared}
    assert direct - set(RUNTIME_PROVIDED) <= pins
    assert not {"boto3", "botocore", "torch", "typer", "onnx"} & pins


def test_the_pinned_cli_synthesizes_from_the_repo_root(tmp_path: Path) -> None:
    npx = shutil.which("npx")
    assert npx and (ROOT / "node_modules" / ".bin" / "cdk").exists(), (
        "run `make test` (npm ci) first"
    )
    version = subprocess.run(
        [npx, "cdk", "--version"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert version.stdout.startswith("2.1148."), version.stdout
    # As a platform team runs it: the CLI runs the app (with FORCE_COLOR set), which bundles
    # both assets from the lock (uv's own cache, so the wheels are not fetched again)
    from infra.bundling import uv

    uv_cache = subprocess.run(
        [uv(), "cache", "dir"], capture_output=True, text=True, check=True
    ).stdout.strip()
    result = subprocess.run(
        [npx, "cdk", "synth", "--quiet", "-o", str(tmp_path / "out")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env=os.environ
        | {
            "PATH": f"{ROOT / '.venv' / 'bin'}:/usr/local/bin:/usr/bin:/bin",
            "HOME": str(tmp_path),
            "UV_CACHE_DIR": uv_cache,
            "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
            "CDK_DISABLE_VERSION_CHECK": "1",
        },
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "out" / "Maas.template.json").exists()
    assets = sorted(asset_size(a) for a in (tmp_path / "out").glob("asset.*") if a.is_dir())
    assert len(assets) == 2 and assets[0] <= 120e6 < 200e6 < assets[1], assets
    shutil.rmtree(tmp_path / "out")


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({"architecture": "sparc"}, "maas:architecture must be one of x86_64, arm64, got 'sparc'"),
        ({"auth": "jwt"}, "maas:auth=jwt needs maas:jwtIssuer and maas:jwtAudience"),
        (
            {"apiTimeoutSeconds": "60"},
            "maas:apiTimeoutSeconds must be 1-29 (API Gateway waits at most 30 s)",
        ),
        ({"apiMemoryMb": "lots"}, "context maas:apiMemoryMb='lots' is not a valid int"),
        ({"gpu": "maybe"}, "context maas:gpu='maybe' is not a valid bool"),
        (
            {"snapStart": "true", "provisionedConcurrency": "1"},
            "choose maas:snapStart or maas:provisionedConcurrency, not both",
        ),
        (
            {"logRetentionDays": "100"},
            "maas:logRetentionDays must be a CloudWatch Logs retention period (1, 3, 5, 7, 14, "
            "30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, "
            "3653), got 100",
        ),
        (
            {"logLevel": "VERBOSE"},
            "maas:logLevel must be one of DEBUG, INFO, got 'VERBOSE'",
        ),
        (
            {"logLevel": "WARN"},
            "maas:logLevel=WARN would make Lambda drop the INFO request lines, and the metrics "
            "they carry (each is an EMF document): use DEBUG or INFO",
        ),
        ({"tracing": "sometimes"}, "context maas:tracing='sometimes' is not a valid bool"),
        ({"alarm5xxPercent": "0"}, "maas:alarm5xxPercent must be above 0 and at most 100"),
        ({"alarm5xxPercent": "many"}, "context maas:alarm5xxPercent='many' is not a valid float"),
        (
            {"alarmP99LatencyMs": "60000"},
            "maas:alarmP99LatencyMs must be 1-30000 (API Gateway waits at most 30 s)",
        ),
        ({"alarmEmail": "oncall"}, "maas:alarmEmail must be an e-mail address, got 'oncall'"),
        (
            {"snapStart": "true", "apiEphemeralMb": "2048"},
            "maas:apiEphemeralMb=2048 with maas:snapStart: SnapStart allows at most 512 MB of "
            "ephemeral storage",
        ),
        (
            {"apiEphemeralMb": "20000"},
            "maas:apiEphemeralMb must be 512-10240 (Lambda's ephemeral storage, MB)",
        ),
    ],
)
def test_bad_context_is_a_clear_error(context: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        synth(**context)
    assert str(caught.value) == message


def test_synth_in_a_fresh_clone_says_what_to_run(tmp_path: Path) -> None:
    """`npx cdk synth` before `make`: cdk.json's app refuses in one line naming `make synth`."""
    app = json.loads((ROOT / "cdk.json").read_text())["app"]
    shutil.copytree(
        ROOT / "infra", tmp_path / "infra", ignore=shutil.ignore_patterns("__pycache__")
    )
    result = subprocess.run(
        app, shell=True, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )  # noqa: S602
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "serverless-maas: no environment here yet: run 'make synth' (it creates .venv and synthesizes)"
    ]


def test_two_synths_of_a_commit_give_byte_identical_asset_hashes(tmp_path: Path) -> None:
    """The asset is hashed from what was built (AssetHashType.OUTPUT): the lock's wheels,
    installed for Lambda, stripped, plus functions/. Two synths, each bundling afresh into its
    own directory, give the same hash; a synth without the packages hashes differently."""
    from aws_cdk import AssetStaging

    from infra.app import build_app
    from tests.infra.conftest import CDK_CONTEXT

    def asset_hashes(bundling: str, name: str) -> set[str]:
        AssetStaging.clear_asset_hash_cache()
        outdir = tmp_path / name
        context = {**CDK_CONTEXT, "maas:bundling": bundling}
        stack = build_app(context=context, outdir=str(outdir)).synth().get_stack_by_name("Maas")
        keys = {
            r["Properties"]["Code"]["S3Key"].removesuffix(".zip")
            for r in stack.template["Resources"].values()
            if r["Type"] == "AWS::Lambda::Function" and "S3Key" in r["Properties"].get("Code", {})
        }
        staged = {h: asset_size(outdir / f"asset.{h}") for h in keys}
        shutil.rmtree(outdir)
        assert all(staged.values()), staged  # built here, this time
        if bundling == "true":  # the API's (~113 MB) and the batch functions' (+pyarrow)
            assert len(keys) == 2 and 90e6 < min(staged.values()) <= 120e6
            assert 200e6 < max(staged.values()) <= 250 * 1024 * 1024
        else:  # the same functions/ alone for both
            assert len(keys) == 1
        return keys

    first, second = asset_hashes("true", "first"), asset_hashes("true", "second")
    assert first == second
    assert first.isdisjoint(asset_hashes("false", "functions-only"))
