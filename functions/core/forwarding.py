"""Forwarding: models whose manifest targets another runtime (the GPU endpoint) are sent there."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from .manifest import Manifest

PROTOCOLS = ("v2", "v1")


@dataclass(frozen=True)
class Forwarded:
    """The response the remote runtime gave (or 202 with where it will be, for async)."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


class Forwarder(Protocol):
    """Sends a request for `manifest`'s model to where it runs."""

    def forward(
        self, manifest: Manifest, *, protocol: str, body: bytes, header_length: int | None
    ) -> Forwarded:
        """Forward one request body; raise ModelUnavailable if the target cannot be reached."""
        ...

    def result(self, name: str, inference_id: str) -> Forwarded:
        """An asynchronous inference's answer: 202 while pending, the stored response when
        done, the error when failed; InferenceNotFound if `name` sent no such inference."""
        ...


def custom_attributes(manifest: Manifest, protocol: str, header_length: int | None) -> str:
    """SageMaker CustomAttributes naming the model, version, protocol and binary header."""
    parts = [f"model={manifest.name}", f"version={manifest.version}", f"protocol={protocol}"]
    if header_length is not None:
        parts.append(f"header-length={header_length}")
    return ";".join(parts)


def parse_attributes(value: str | None) -> dict[str, str]:
    """`k=v;k=v` -> dict (blank and malformed parts ignored)."""
    pairs = (part.split("=", 1) for part in (value or "").split(";") if "=" in part)
    return {k.strip(): v.strip() for k, v in pairs}
