"""Synthesize the app as `cdk synth` would (cdk.json's context loaded explicitly), bundling off."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from aws_cdk.assertions import Template  # noqa: E402

from infra.app import build_app  # noqa: E402
from tests.conftest import ROOT  # noqa: E402

# `python -m infra.app` outside the CLI does not read cdk.json, so its feature flags are loaded here.
CDK_CONTEXT: dict[str, Any] = json.loads((ROOT / "cdk.json").read_text())["context"]


@dataclass(frozen=True)
class Synth:
    """One synthesized variant."""

    template: Template
    doc: dict[str, Any]
    outdir: Path

    def resources(self, kind: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.doc["Resources"].items() if v["Type"] == kind}

    def one(self, kind: str, **match: Any) -> dict[str, Any]:
        found = [
            v["Properties"]
            for v in self.resources(kind).values()
            if all(v.get("Properties", {}).get(k) == want for k, want in match.items())
        ]
        assert len(found) == 1, (kind, match, len(found))
        return found[0]


@cache
def _synth(items: tuple[tuple[str, str], ...]) -> Synth:
    outdir = Path(tempfile.mkdtemp(prefix="maas-synth-"))
    context = {**CDK_CONTEXT, "maas:bundling": "false", **dict(items)}
    assembly = build_app(context=context, outdir=str(outdir)).synth()
    stack = assembly.get_stack_by_name("Maas")
    doc = stack.template
    return Synth(Template.from_json(doc), doc, outdir)


def synth(**context: str) -> Synth:
    """The stack for these `maas:*` context values (keys without the prefix, camelCase)."""
    return _synth(tuple(sorted((f"maas:{k}", v) for k, v in context.items())))


VARIANTS: dict[str, dict[str, str]] = {
    "default": {},
    "gpu-async": {"gpu": "true"},
    "gpu-realtime-snapstart": {"gpu": "true", "gpuMode": "realtime", "snapStart": "true"},
    "heavy-arm64-jwt": {
        "heavyCpu": "true",
        "architecture": "arm64",
        "auth": "jwt",
        "jwtIssuer": "https://id.example.com",
        "jwtAudience": "maas",
    },
    "provisioned": {"provisionedConcurrency": "2", "reservedConcurrency": "10"},
    "signed": {"signingKey": "create", "heavyCpu": "true"},
    # Every observability key off its default, with the heavy-CPU and GPU variants to observe.
    "observed": {
        "tracing": "true",
        "heavyCpu": "true",
        "gpu": "true",
        "logLevel": "DEBUG",
        "logRetentionDays": "365",
        "alarmEmail": "oncall@example.com",
        "alarm5xxPercent": "2.5",
        "alarmP99LatencyMs": "1500",
        "gpuMaxInstances": "3",
    },
}
