"""Thread sizing from affinity, cgroup quota and Lambda memory; the setting overrides it."""

from __future__ import annotations

from pathlib import Path

import pytest

from functions.settings import Settings
from functions.threads import CpuBudget, cgroup_quota, lambda_vcpus
from tests.conftest import runtime_for


@pytest.mark.parametrize(
    ("memory", "vcpus"),
    [(None, None), ("128", 1), ("1769", 1), ("3538", 2), ("10240", 5), ("not-a-number", None)],
)
def test_lambda_memory_to_vcpus(memory: str | None, vcpus: int | None) -> None:
    assert lambda_vcpus(memory) == vcpus


def test_cgroup_v2_and_v1_quotas(tmp_path: Path) -> None:
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert cgroup_quota(tmp_path) == 1.5
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert cgroup_quota(tmp_path) is None
    v1 = tmp_path / "v1"
    (v1 / "cpu").mkdir(parents=True)
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("50000\n")
    (v1 / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert cgroup_quota(v1) == 0.5
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    assert cgroup_quota(v1) is None
    assert cgroup_quota(tmp_path / "absent") is None


@pytest.mark.parametrize(
    ("budget", "threads"),
    [
        (CpuBudget(affinity=16, cgroup=None, lambda_vcpus=None), 16),
        (CpuBudget(affinity=16, cgroup=1.5, lambda_vcpus=None), 2),
        (CpuBudget(affinity=16, cgroup=None, lambda_vcpus=1), 1),
        (CpuBudget(affinity=2, cgroup=4.0, lambda_vcpus=6), 2),
        (CpuBudget(affinity=8, cgroup=0.25, lambda_vcpus=None), 1),
    ],
)
def test_the_smallest_bound_wins(budget: CpuBudget, threads: int) -> None:
    assert budget.threads == threads


def test_sessions_use_the_budget_or_the_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024")
    registry = runtime_for(Settings(store=str(tmp_path), cache_dir=tmp_path / "c")).registry  # type: ignore[call-arg]
    assert registry.session_factory.intra_op_threads == 1  # type: ignore[attr-defined]
    override = runtime_for(
        Settings(store=str(tmp_path), cache_dir=tmp_path / "c", intra_op_threads=3)  # type: ignore[call-arg]
    ).registry
    assert override.session_factory.intra_op_threads == 3  # type: ignore[attr-defined]
