"""The core imports no adapter and reads no environment."""

from __future__ import annotations

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parents[2] / "functions" / "core"
FORBIDDEN = {
    "boto3",
    "botocore",
    "fastapi",
    "starlette",
    "mangum",
    "aws_cdk",
    "pydantic",
    "uvicorn",
    "aws_lambda_powertools",  # telemetry is an adapter too (functions/telemetry.py)
}


def imported_modules(tree: ast.AST) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def environment_reads(tree: ast.AST) -> list[str]:
    reads = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv", "environb"):
            reads.append(node.attr)
        if isinstance(node, ast.Name) and node.id in ("environ", "getenv"):
            reads.append(node.id)
    return reads


def test_core_files_exist() -> None:
    assert len(list(CORE.glob("*.py"))) >= 10


def test_core_imports_no_adapter() -> None:
    for path in CORE.glob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        assert not imported_modules(tree) & FORBIDDEN, path.name


def test_core_reads_no_environment() -> None:
    for path in CORE.glob("*.py"):
        assert environment_reads(ast.parse(path.read_text())) == [], path.name


def test_the_walker_sees_what_it_forbids() -> None:
    tree = ast.parse(
        "import boto3.session\nfrom fastapi import X\nimport os\nos.environ['A']\nos.getenv('B')"
    )
    assert imported_modules(tree) >= {"boto3", "fastapi"}
    assert environment_reads(tree) == ["environ", "getenv"]
