"""Signed manifests with a KMS key (moto's KMS): valid, tampered manifest, tampered file, wrong
key, unsigned, malformed; refused before any file is read, warm disk cache or not."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import boto3
import orjson
import pytest
from typer.testing import CliRunner

from functions.core.cache import ArtifactCache
from functions.core.errors import IntegrityError, SignatureError
from functions.core.registry import Registry
from functions.core.repository import Repository
from functions.core.sessions import OrtSessionFactory
from functions.runtime import build_runtime
from functions.settings import Settings, SettingsError
from functions.signing import KmsVerifier, kms_signer
from functions.stores import LocalStore
from functions.telemetry import Telemetry
from model_build.cli import app
from model_build.lambda_local import LocalContext, api_event
from tests import models
from tests.api.test_handler import handler_over
from tests.conftest import MotoServer, publish


@pytest.fixture
def keys(moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, str]]:
    """Two ECC_NIST_P256 signing keys on moto's KMS: the trusted one and another."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_KMS", moto_server.url)
    kms = boto3.client("kms")
    made = [
        kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["Arn"]
        for _ in range(2)
    ]
    yield made[0], made[1]


@pytest.fixture
def repo(tmp_path: Path) -> Repository:
    repo = Repository(LocalStore(tmp_path / "store"))
    publish(repo, "multi", models.multi_io())
    return repo


def registry(repo: Repository, cache: Path, key: str) -> Registry:
    return Registry(
        repository=repo,
        cache=ArtifactCache(cache),
        session_factory=OrtSessionFactory(intra_op_threads=1),
        verifier=KmsVerifier(key),
    )


def version_dir(tmp_path: Path) -> Path:
    return tmp_path / "store" / "models" / "multi" / "1"


def test_a_version_signed_by_the_key_is_served(
    repo: Repository, keys: tuple[str, str], tmp_path: Path
) -> None:
    trusted, _ = keys
    signature = orjson.loads(repo.sign("multi", 1, kms_signer(trusted)))
    assert signature["format"] == "maas-kms-v1" and signature["key_id"] == trusted
    runner = registry(repo, tmp_path / "cache", trusted).runner("multi", "1")
    assert runner.manifest.version == 1
    assert [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]  # a load leaves a record


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("unsigned", "model 'multi' version 1 is not signed, and signatures are required here"),
        ("other key", "model 'multi' version 1: the signature is not the key "),
        (
            "tampered manifest",
            "model 'multi' version 1: the manifest has changed since it was signed",
        ),
        ("re-hashed", "model 'multi' version 1: the signature is not the key "),
        ("malformed", "model 'multi' version 1: its signature object is malformed"),
    ],
)
def test_a_bad_signature_is_refused_before_any_file_is_read(
    repo: Repository, keys: tuple[str, str], tmp_path: Path, case: str, message: str
) -> None:
    trusted, other = keys
    folder = version_dir(tmp_path)
    if case != "unsigned":
        repo.sign("multi", 1, kms_signer(other if case == "other key" else trusted))
    if case in ("tampered manifest", "re-hashed"):
        manifest = orjson.loads((folder / "manifest.json").read_bytes())
        manifest["labels"] = {"team": "mallory"}
        (folder / "manifest.json").write_bytes(orjson.dumps(manifest))
    if case == "re-hashed":  # the signature object's digest edited to match: KMS still says no
        import hashlib

        doc = orjson.loads((folder / "manifest.sig").read_bytes())
        doc["sha256"] = hashlib.sha256((folder / "manifest.json").read_bytes()).hexdigest()
        (folder / "manifest.sig").write_bytes(orjson.dumps(doc))
    if case == "malformed":
        (folder / "manifest.sig").write_bytes(b'{"sha256": 1}')
    with pytest.raises(SignatureError) as refused:
        registry(repo, tmp_path / "cache", trusted).runner("multi", "1")
    assert str(refused.value).startswith(message), str(refused.value)
    # refused before the version's files were read: nothing verified, copied or recorded
    assert not [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]


def test_a_tampered_file_under_a_valid_signature_is_refused(
    repo: Repository, keys: tuple[str, str], tmp_path: Path
) -> None:
    trusted, _ = keys
    repo.sign("multi", 1, kms_signer(trusted))
    graph = version_dir(tmp_path) / "model.onnx"
    graph.write_bytes(graph.read_bytes()[:-1] + b"\x00")
    with pytest.raises(IntegrityError):
        registry(repo, tmp_path / "cache", trusted).runner("multi", "1")


def test_never_served_from_a_warm_cache_once_the_manifest_fails(
    repo: Repository, keys: tuple[str, str], tmp_path: Path
) -> None:
    trusted, _ = keys
    repo.sign("multi", 1, kms_signer(trusted))
    registry(repo, tmp_path / "cache", trusted).runner("multi", "1")  # verified and cached
    manifest = orjson.loads((version_dir(tmp_path) / "manifest.json").read_bytes())
    manifest["labels"] = {"changed": "after signing"}
    (version_dir(tmp_path) / "manifest.json").write_bytes(orjson.dumps(manifest))
    # a new container with the same /tmp cache: the manifest is checked before the cache is used
    with pytest.raises(SignatureError, match="has changed since it was signed"):
        registry(repo, tmp_path / "cache", trusted).runner("multi", "1")


def test_the_api_answers_503_naming_the_reason(
    keys: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    trusted, _ = keys
    repo = Repository(LocalStore(tmp_path / "store"))
    publish(repo, "multi", models.multi_io())
    publish(repo, "multi", models.multi_io())
    repo.sign("multi", 2, kms_signer(trusted))
    settings = Settings(
        store=str(tmp_path / "store"),
        cache_dir=tmp_path / "cache",
        require_signature=True,
        signing_key=trusted,
    )
    handler = handler_over(build_runtime(settings, telemetry=Telemetry(stream=io.StringIO())))
    body = orjson.dumps(
        {
            "inputs": [
                {"name": "features", "shape": [1, 4], "datatype": "FP32", "data": [0, 1, 2, 3]},
                {"name": "ids", "shape": [1], "datatype": "INT64", "data": [7]},
            ]
        }
    )
    unsigned = handler(api_event("/v2/models/multi/versions/1/infer", body), LocalContext())
    assert unsigned["statusCode"] == 503
    assert orjson.loads(unsigned["body"]) == {
        "error": "model 'multi' version 1 is not signed, and signatures are required here"
    }
    signed = handler(api_event("/v2/models/multi/versions/2/infer", body), LocalContext())
    assert signed["statusCode"] == 200, signed["body"]
    assert orjson.loads(signed["body"])["model_version"] == "2"


def test_requiring_signatures_needs_a_key(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="MAAS_SIGNING_KEY names no key"):
        build_runtime(
            Settings(store=str(tmp_path), cache_dir=tmp_path / "c", require_signature=True)
        )


def test_maas_publish_sign_and_maas_sign(
    keys: tuple[str, str], tmp_path: Path, repo: Repository
) -> None:
    trusted, _ = keys
    model = tmp_path / "multi.onnx"
    model.write_bytes(models.multi_io())
    store = str(tmp_path / "store")
    runner = CliRunner()
    published = runner.invoke(
        app, ["publish", str(model), "--name", "multi", "--store", store, "--sign", trusted]
    )
    assert published.exit_code == 0, (published.output, published.exception)
    assert f"signed multi version 2 with {trusted}" in " ".join(published.stderr.split())
    signed = runner.invoke(app, ["sign", "multi", "1", "--key", trusted, "--store", store])
    assert signed.exit_code == 0, (signed.output, signed.exception)
    check = KmsVerifier(trusted)
    for version in (1, 2):
        Repository(LocalStore(Path(store))).manifest("multi", version, verify=check)
