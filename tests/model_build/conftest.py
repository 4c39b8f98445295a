"""Examples trained once per session at small settings."""

from __future__ import annotations

import pytest

from model_build.examples import EXAMPLES, Trained


@pytest.fixture(scope="session")
def cnn() -> Trained:
    return EXAMPLES["cnn"].train(True, None)


@pytest.fixture(scope="session")
def text() -> Trained:
    return EXAMPLES["text"].train(True, None)


@pytest.fixture(scope="session")
def tabular() -> Trained:
    return EXAMPLES["tabular"].train(True, None)
