"""Local bundling of the function asset without Docker: pip for Lambda's platform + functions/."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Final

import jsii
from aws_cdk import AssetHashType, BundlingOptions, DockerImage, ILocalBundling
from aws_cdk import aws_lambda as lambda_

ROOT: Final = Path(__file__).resolve().parent.parent
FUNCTIONS: Final = ROOT / "functions"
REQUIREMENTS: Final = FUNCTIONS / "requirements.txt"
LAMBDA_PYTHON: Final = "3.12"
PLATFORMS: Final = {
    # onnxruntime publishes manylinux_2_28 wheels (x86_64 also tagged 2_27); numpy and friends 2014.
    "x86_64": ("manylinux2014_x86_64", "manylinux_2_28_x86_64"),
    "arm64": ("manylinux2014_aarch64", "manylinux_2_28_aarch64"),
}
# Never imported by the functions: stripped from the asset.
STRIP: Final = (
    "bin",
    "numpy/f2py",
    "onnxruntime/transformers",
    "onnxruntime/quantization",
    "onnxruntime/tools",
    "onnxruntime/datasets",
    "onnxruntime/backend",
    # pysimdjson ships its C++ sources beside the compiled extension
    "simdjson/simdjson.cpp",
    "simdjson/simdjson.h",
    "simdjson/util.cpp",
    "simdjson/csimdjson.pyx",
)
# Lambda's Python runtime provides these (boto3 and its dependencies); pip installs them beside
# aws-xray-sdk, which needs botocore. The runtime's copies are the ones imported.
# https://docs.aws.amazon.com/lambda/latest/dg/lambda-python.html
RUNTIME_PROVIDED: Final = ("boto3", "botocore", "s3transfer", "urllib3", "dateutil", "six")
LAMBDA_UNZIPPED_LIMIT: Final = 250 * 1024 * 1024


def asset_size(path: Path) -> int:
    """Bytes of every file under `path` (the unzipped size Lambda counts)."""
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def copy_functions(out: Path) -> None:
    """The handlers' code, without caches, tests or the container sources."""
    shutil.copytree(
        FUNCTIONS,
        out / "functions",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "container", "requirements.txt"),
        dirs_exist_ok=True,
    )


def install_requirements(out: Path, architecture: str) -> None:
    """pip-install the runtime requirements built for Lambda's Python and CPU, then strip."""
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    command += ["--target", str(out), "--requirement", str(REQUIREMENTS)]
    for platform in PLATFORMS[architecture]:
        command += ["--platform", platform]
    command += ["--implementation", "cp", "--python-version", LAMBDA_PYTHON]
    command += [
        "--abi",
        "cp" + LAMBDA_PYTHON.replace(".", ""),
        "--only-binary=:all:",
        "--no-compile",
    ]
    subprocess.run(command, check=True)
    for relative in STRIP:
        target = out / relative
        if target.is_dir():
            shutil.rmtree(target, ignore_errors=True)
        else:
            target.unlink(missing_ok=True)
    for package in RUNTIME_PROVIDED:
        shutil.rmtree(out / package, ignore_errors=True)
        (out / f"{package}.py").unlink(missing_ok=True)
        for info in out.glob(f"{package.replace('-', '_')}-*.dist-info"):
            shutil.rmtree(info, ignore_errors=True)
    for info in out.glob("python_dateutil-*.dist-info"):
        shutil.rmtree(info, ignore_errors=True)
    for tests in [p for p in out.rglob("tests") if p.is_dir()]:
        shutil.rmtree(tests, ignore_errors=True)
    for cache in [p for p in out.rglob("__pycache__") if p.is_dir()]:
        shutil.rmtree(cache, ignore_errors=True)


@jsii.implements(ILocalBundling)
class LocalPipBundling:
    """Builds the asset on this machine; `install=False` (tests) copies only functions/."""

    def __init__(self, *, architecture: str, install: bool) -> None:
        self.architecture = architecture
        self.install = install

    def try_bundle(self, output_dir: str, *args: Any, **kwargs: Any) -> bool:
        """Called by the CDK during synth; True means no Docker is needed."""
        out = Path(output_dir)
        if self.install:
            install_requirements(out, self.architecture)
        copy_functions(out)
        size = asset_size(out)
        what = "bundled" if self.install else "functions only (bundling off)"
        print(f"maas: function asset {what}: {size / 1e6:.1f} MB unzipped", file=sys.stderr)
        if size > LAMBDA_UNZIPPED_LIMIT:
            raise RuntimeError(f"the function asset is {size} bytes unzipped, over Lambda's 250 MB")
        return True


def function_code(*, architecture: str, install: bool) -> lambda_.Code:
    """The zip asset shared by the API and batch functions."""
    return lambda_.Code.from_asset(
        str(FUNCTIONS),
        # Hash what was built, not the sources: the platform and pip's choices are part of it.
        asset_hash_type=AssetHashType.OUTPUT,
        bundling=BundlingOptions(
            # Only used if local bundling declined; it never does.
            image=DockerImage.from_registry(f"public.ecr.aws/sam/build-python{LAMBDA_PYTHON}"),
            local=LocalPipBundling(architecture=architecture, install=install),
            command=["bash", "-c", "echo local bundling is required && exit 1"],
        ),
    )
