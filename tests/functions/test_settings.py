"""Settings read from the environment: types, bounds, defaults, and the README's table."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

import pytest

from functions.settings import Settings, SettingsError
from tests.conftest import ROOT


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("MAAS_") or name.startswith("AWS_LAMBDA_"):
            monkeypatch.delenv(name)


def test_defaults_without_an_environment() -> None:
    settings = Settings()
    assert settings.store == "file://./.maas/store"
    assert settings.cache_dir == Path(".maas/cache")
    assert settings.max_models == 8 and settings.alias_ttl_seconds == 30.0
    assert settings.serve_batching is True and settings.ort_spinning is None
    assert settings.intra_op_threads is None and settings.device == "cpu"


def test_values_come_from_maas_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAAS_STORE", "s3://bucket/models")
    monkeypatch.setenv("MAAS_CACHE_DIR", "/var/cache/maas")
    monkeypatch.setenv("MAAS_MAX_MODELS", " 3 ")
    monkeypatch.setenv("MAAS_ALIAS_TTL_SECONDS", "0.5")
    monkeypatch.setenv("MAAS_SERVE_BATCHING", "Off")
    monkeypatch.setenv("MAAS_ORT_SPINNING", "yes")
    monkeypatch.setenv("MAAS_INTRA_OP_THREADS", "")  # empty: unset, for an optional setting
    monkeypatch.setenv("MAAS_GPU_MODE", "realtime")
    monkeypatch.setenv("MAAS_NOT_A_SETTING", "ignored")
    settings = Settings()
    assert settings.store == "s3://bucket/models"
    assert settings.cache_dir == Path("/var/cache/maas")
    assert settings.max_models == 3 and settings.alias_ttl_seconds == 0.5
    assert settings.serve_batching is False and settings.ort_spinning is True
    assert settings.intra_op_threads is None and settings.gpu_mode == "realtime"


def test_values_given_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAAS_STORE", "s3://bucket/models")
    monkeypatch.setenv("MAAS_MAX_MODELS", "3")
    settings = Settings(store="file:///srv/store", cache_dir="/c", alias_ttl_seconds=2)  # type: ignore[arg-type]
    assert settings.store == "file:///srv/store" and settings.max_models == 3
    assert settings.cache_dir == Path("/c") and settings.alias_ttl_seconds == 2.0


def test_lambda_caches_in_tmp(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "maas-api")
    assert Settings().cache_dir == Path("/tmp/maas-cache")


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("MAAS_MAX_MODELS", "0", "MAAS_MAX_MODELS=0: must be greater than 0"),
        ("MAAS_MAX_MODELS", "eight", "MAAS_MAX_MODELS='eight': expected an integer"),
        ("MAAS_ALIAS_TTL_SECONDS", "-1", "MAAS_ALIAS_TTL_SECONDS=-1.0: must be at least 0"),
        (
            "MAAS_SERVE_BATCH_DELAY_MS",
            "2000",
            "MAAS_SERVE_BATCH_DELAY_MS=2000.0: must be at most 1000",
        ),
        (
            "MAAS_MAX_INFERENCE_SECONDS",
            "soon",
            "MAAS_MAX_INFERENCE_SECONDS='soon': expected a number",
        ),
        ("MAAS_SERVE_BATCHING", "maybe", "MAAS_SERVE_BATCHING='maybe': expected true or false"),
        ("MAAS_DEVICE", "tpu", "MAAS_DEVICE='tpu': expected one of cpu, cuda"),
        ("MAAS_S3_PART_MB", "4", "MAAS_S3_PART_MB=4: must be at least 5"),
        ("MAAS_MAX_BATCH", "", "MAAS_MAX_BATCH='': expected an integer"),
    ],
)
def test_a_bad_value_names_its_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as raised:
        Settings()
    assert str(raised.value).startswith(message)


def test_a_bad_value_given_in_code_is_refused_too() -> None:
    with pytest.raises(SettingsError, match="MAAS_MAX_MODELS=0: must be greater than 0"):
        Settings(max_models=0)
    with pytest.raises(SettingsError, match="MAAS_MAX_MODELS: expected int, got 2.5"):
        Settings(max_models=2.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="no_such_setting"):
        Settings(no_such_setting=1)  # type: ignore[call-arg]


def test_the_readme_lists_every_setting() -> None:
    readme = (ROOT / "README.md").read_text()
    listed = set(re.findall(r"`(MAAS_[A-Z0-9_]+)`", readme))
    missing = {f"MAAS_{f.name.upper()}" for f in fields(Settings)} - listed
    assert not missing, f"settings the README does not list: {sorted(missing)}"
