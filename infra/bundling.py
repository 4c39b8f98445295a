"""Local bundling of the function asset without Docker: the runtime packages exactly as uv.lock
pins them, built for Lambda's platform, plus functions/."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Final

import jsii
from aws_cdk import AssetHashType, BundlingOptions, DockerImage, ILocalBundling
from aws_cdk import aws_lambda as lambda_

ROOT: Final = Path(__file__).resolve().parent.parent
FUNCTIONS: Final = ROOT / "functions"
LAMBDA_PYTHON: Final = "3.12"
# Lambda's Python 3.12 runs on Amazon Linux 2023 (glibc 2.34); onnxruntime's wheels are 2_28.
PLATFORMS: Final = {"x86_64": "x86_64-manylinux_2_28", "arm64": "aarch64-manylinux_2_28"}
# Lambda's Python runtime provides these (boto3 and its dependencies): left out of the export,
# so the runtime's copies are the ones imported (aws-xray-sdk needs botocore).
# https://docs.aws.amazon.com/lambda/latest/dg/lambda-python.html
RUNTIME_PROVIDED: Final = ("boto3", "botocore", "s3transfer", "urllib3", "python-dateutil", "six")
# Never loaded by the functions: stripped from the asset (globs; docs/deploy.md says why).
STRIP: Final = (
    "bin",
    # onnxruntime's C API library: its Python module carries the whole runtime itself (it does
    # not link this one); only C programs and plugin execution providers load it (34.8 MB)
    "onnxruntime/capi/libonnxruntime.so*",
    "onnxruntime/transformers",
    "onnxruntime/quantization",
    "onnxruntime/tools",
    "onnxruntime/datasets",
    "onnxruntime/backend",
    "numpy/f2py",
    # C headers and static libraries for building extensions against numpy
    "numpy/_core/include",
    "numpy/_core/lib",
    # pysimdjson ships its C++ sources beside the compiled extension
    "simdjson/simdjson.cpp",
    "simdjson/simdjson.h",
    "simdjson/util.cpp",
    "simdjson/csimdjson.pyx",
    # Powertools' Swagger UI for its own event handler (the functions serve FastAPI's)
    "aws_lambda_powertools/event_handler/openapi/swagger_ui",
    # pyarrow (the batch functions' asset): Parquet files are read and written, nothing else;
    # its library links neither Flight nor S3 (readelf -d), which pyarrow.fs imports only if there
    "pyarrow/libarrow_flight.so*",
    "pyarrow/libarrow_python_flight.so*",
    "pyarrow/_flight*.so",
    "pyarrow/libarrow_s3.so*",
    "pyarrow/_s3fs*.so",
    "pyarrow/_gcsfs*.so",
    "pyarrow/_azurefs*.so",
    "pyarrow/_hdfs*.so",
    "pyarrow/_orc*.so",
    "pyarrow/_pyarrow_cpp_tests*",
    # the wheel's copies of each library under its other names (the loader asks for one)
    "pyarrow/libarrow_python*.so",
    "pyarrow/libarrow_python*.so.*.*.*",
    # C++ headers and Cython sources, for building against pyarrow
    "pyarrow/include",
    "pyarrow/includes",
    "pyarrow/src",
    "pyarrow/**/*.pyx",
    "pyarrow/**/*.pxd",
    "pyarrow/**/*.pxi",
    # type stubs are for type checkers
    "**/*.pyi",
    "**/tests",
    "**/__pycache__",
)
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


def uv() -> str:
    """The uv that the lock pins (installed with the infra extra)."""
    from uv import find_uv_bin

    return str(find_uv_bin())


def export_runtime(*, hashes: bool = True, extras: tuple[str, ...] = ()) -> str:
    """uv.lock's runtime packages (the project's own dependencies, and `extras`), less what the
    Lambda runtime provides, as a requirements file (with their hashes by default)."""
    command = [uv(), "export", "--frozen", "--no-emit-project", "--format", "requirements.txt"]
    # never colored: the CDK CLI sets FORCE_COLOR for the app, and uv would color the comments
    command += ["--quiet", "--no-header", "--color", "never"]
    for extra in extras:
        command += ["--extra", extra]
    for package in RUNTIME_PROVIDED:
        command += ["--no-emit-package", package]
    if not hashes:
        command += ["--no-hashes"]
    done = subprocess.run(command, cwd=ROOT, check=True, capture_output=True, text=True)
    return done.stdout


def install_requirements(out: Path, architecture: str, extras: tuple[str, ...] = ()) -> None:
    """Install the locked runtime packages (and `extras`), built for Lambda's Python and CPU,
    then strip."""
    with tempfile.TemporaryDirectory() as tmp:
        requirements = Path(tmp) / "requirements.txt"
        requirements.write_text(export_runtime(extras=extras))
        command = [uv(), "pip", "install", "--quiet", "--color", "never", "--target", str(out)]
        command += ["--python-platform", PLATFORMS[architecture], "--python-version", LAMBDA_PYTHON]
        # exactly the exported files: no resolution, every wheel checked against the lock's hash
        command += ["--no-deps", "--require-hashes", "--only-binary", ":all:"]
        command += ["--link-mode", "copy", "--requirements", str(requirements)]
        subprocess.run(command, cwd=ROOT, check=True)
    for pattern in STRIP:
        for target in sorted(out.glob(pattern), reverse=True):
            if target.is_dir():
                shutil.rmtree(target, ignore_errors=True)
            else:
                target.unlink(missing_ok=True)


@jsii.implements(ILocalBundling)
class LocalBundling:
    """Builds the asset on this machine; `install=False` (tests) copies only functions/."""

    def __init__(self, *, architecture: str, install: bool, extras: tuple[str, ...]) -> None:
        self.architecture = architecture
        self.install = install
        self.extras = extras

    def try_bundle(self, output_dir: str, *args: Any, **kwargs: Any) -> bool:
        """Called by the CDK during synth; True means no Docker is needed."""
        out = Path(output_dir)
        if self.install:
            install_requirements(out, self.architecture, self.extras)
        copy_functions(out)
        size = asset_size(out)
        what = "bundled" if self.install else "functions only (bundling off)"
        name = "function asset" + "".join(f" +{e}" for e in self.extras)
        print(f"maas: {name} {what}: {size / 1e6:.1f} MB unzipped", file=sys.stderr)
        if size > LAMBDA_UNZIPPED_LIMIT:
            raise RuntimeError(f"the function asset is {size} bytes unzipped, over Lambda's 250 MB")
        return True


def function_code(
    *, architecture: str, install: bool, extras: tuple[str, ...] = ()
) -> lambda_.Code:
    """A zip asset of the functions: the runtime packages (the API's and the rollback
    function's), with `extras` for the batch functions' (`parquet`: pyarrow)."""
    return lambda_.Code.from_asset(
        str(FUNCTIONS),
        # Hash what was built, not the sources: the lock's packages for the platform are part of it.
        asset_hash_type=AssetHashType.OUTPUT,
        bundling=BundlingOptions(
            # Only used if local bundling declined; it never does.
            image=DockerImage.from_registry(f"public.ecr.aws/sam/build-python{LAMBDA_PYTHON}"),
            local=LocalBundling(architecture=architecture, install=install, extras=extras),
            command=["bash", "-c", "echo local bundling is required && exit 1"],
            # part of the asset's identity: assets with other extras are staged apart
            environment={"MAAS_EXTRAS": ",".join(extras)},
        ),
    )


REQUIREMENTS_HEADER: Final = """\
# What the functions import at run time, exactly as uv.lock pins it, for the container images.
# Written by `make lock` (python -m infra.bundling) from uv.lock: do not edit. The zip asset
# installs from the lock itself, with hashes (infra/bundling.py). Lambda's runtime provides boto3.
"""


def main() -> None:
    """`python -m infra.bundling` (run by `make lock`): functions/requirements.txt from uv.lock."""
    (FUNCTIONS / "requirements.txt").write_text(REQUIREMENTS_HEADER + export_runtime(hashes=False))


if __name__ == "__main__":
    main()
