"""How many CPUs this process may really use: affinity, cgroup quota, Lambda's memory setting.

onnxruntime sizes its intra-op pool from the host's cores by default; in a container or a Lambda
function that over-subscribes the CPU time the process is given and slows every run.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

from functions.core.sessions import usable_cpus

# Lambda allocates CPU in proportion to memory: one vCPU at 1,769 MB, six at 10,240 MB.
# https://docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html
LAMBDA_MB_PER_VCPU = 1769
LAMBDA_MAX_VCPUS = 6


@dataclass(frozen=True)
class CpuBudget:
    """Each bound that applies, and the threads they allow."""

    affinity: int
    cgroup: float | None
    lambda_vcpus: int | None

    @property
    def threads(self) -> int:
        """The smallest bound, rounded up for fractional quotas, at least one."""
        bounds: list[float] = [self.affinity]
        if self.cgroup is not None:
            bounds.append(self.cgroup)
        if self.lambda_vcpus is not None:
            bounds.append(self.lambda_vcpus)
        return max(1, math.ceil(min(bounds)))


def cgroup_quota(root: Path = Path("/sys/fs/cgroup")) -> float | None:
    """CPUs allowed by the cgroup's CFS quota (v2 cpu.max, or v1), None when unlimited."""
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota_us = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period_us = int((root / "cpu" / "cpu.cfs_period_us").read_text())
        return None if quota_us <= 0 else quota_us / period_us
    except (OSError, ValueError):
        return None


def lambda_vcpus(memory_mb: str | None) -> int | None:
    """vCPUs a Lambda function of this memory size gets, None outside Lambda."""
    if not memory_mb or not memory_mb.isdigit():
        return None
    return max(1, min(LAMBDA_MAX_VCPUS, int(memory_mb) // LAMBDA_MB_PER_VCPU))


def cpu_budget() -> CpuBudget:
    """The bounds of this process, read now."""
    return CpuBudget(
        affinity=usable_cpus(),
        cgroup=cgroup_quota(),
        lambda_vcpus=lambda_vcpus(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")),
    )
