"""The data plane: every protocol operation, independent of HTTP framework and transport."""

from __future__ import annotations

import re
from collections.abc import Generator, Sequence
from typing import Any, NamedTuple, TypeVar

from .codec import Array
from .errors import InferenceNotFound, InvalidInput, StoreUnavailable
from .forwarding import Forwarded, Forwarder
from .names import check_name
from .oip import (
    NO_LIMITS,
    Limits,
    encode_infer_response,
    encode_predict_response,
    parse_infer,
    parse_predict,
)
from .registry import Registry
from .runner import Runner

SERVER_NAME = "serverless-maas"
PLATFORM = "onnxruntime_onnx"


class Answer(NamedTuple):
    """An inference's response body, its JSON header length if binary, and the version run."""

    body: bytes
    header_length: int | None
    version: int


class RunCall(NamedTuple):
    """A model run an operation needs: its caller runs it (now, or batched with others) and
    sends the outputs back (`Steps`)."""

    runner: Runner
    inputs: Sequence[tuple[str, Array]]
    outputs: Sequence[str] | None
    timeout: float | None

    def run(self) -> dict[str, Array]:
        """Run it alone, now."""
        return self.runner.run(self.inputs, self.outputs, timeout=self.timeout)


T = TypeVar("T")
Steps = Generator[RunCall, dict[str, Array], T]
"""An operation as steps: it yields the run it needs and is sent that run's outputs (or thrown
its error), so one code path serves callers that run at once and callers that batch runs."""


def run_steps(steps: Steps[T]) -> T:
    """Drive `steps`, running each run it asks for at once, in this thread."""
    try:
        call = next(steps)
        while True:
            try:
                outputs = call.run()
            except Exception as exc:
                call = steps.throw(exc)
            else:
                call = steps.send(outputs)
    except StopIteration as done:
        result: T = done.value
        return result


_INFERENCE_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


class DataPlane:
    """Open Inference Protocol v2 and v1 operations over a registry."""

    def __init__(
        self,
        registry: Registry,
        *,
        version: str,
        forwarder: Forwarder | None = None,
        limits: Limits = NO_LIMITS,
        max_seconds: float | None = None,
    ) -> None:
        self.registry = registry
        self.version = version
        self.forwarder = forwarder
        self.limits = limits
        self.max_seconds = max_seconds

    def _budget(self, budget: float | None) -> float | None:
        """The time a run may take: the smaller of the request's budget and the setting."""
        if budget is None:
            return self.max_seconds
        return budget if self.max_seconds is None else min(budget, self.max_seconds)

    def forward(
        self,
        name: str,
        ref: str,
        body: bytes,
        header_length: int | None,
        *,
        protocol: str = "v2",
        route_key: str | None = None,
    ) -> tuple[Forwarded, int] | None:
        """Send the request to the GPU endpoint if the model targets it; None to serve here."""
        if self.forwarder is None:
            return None
        manifest = self.registry.manifest(name, ref, route_key)
        if manifest.target != "gpu":
            return None
        forwarded = self.forwarder.forward(
            manifest, protocol=protocol, body=body, header_length=header_length
        )
        return forwarded, manifest.version

    def async_result(self, name: str, inference_id: str) -> Forwarded:
        """`GET /v2/models/{name}/async/{inference_id}`: an asynchronous GPU inference's answer."""
        check_name(name)
        if not _INFERENCE_ID.fullmatch(inference_id):
            raise InvalidInput(
                f"inference id {inference_id!r} is not one this service gives out (a UUID)"
            )
        if self.forwarder is None:
            raise InferenceNotFound(
                f"model '{name}' has no asynchronous inference '{inference_id}': no GPU "
                "endpoint is configured here"
            )
        return self.forwarder.result(name, inference_id)

    def server_metadata(self) -> dict[str, Any]:
        """`GET /v2`."""
        return {
            "name": SERVER_NAME,
            "version": self.version,
            "extensions": ["model_repository", "binary_tensor_data"],
        }

    def server_ready(self) -> tuple[bool, str]:
        """Ready when the model store answers."""
        try:
            next(iter(self.registry.repository.store.list("models/")), None)
        except StoreUnavailable as exc:
            return False, f"the model store is unavailable: {exc}"
        return True, "ready"

    def model_metadata(self, name: str, ref: str) -> dict[str, Any]:
        """`GET /v2/models/{name}[/versions/{ref}]` from the manifest (no session needed)."""
        manifest = self.registry.manifest(name, ref)
        doc: dict[str, Any] = {
            "name": manifest.name,
            "versions": [str(manifest.version)],
            "platform": PLATFORM,
            "inputs": [t.to_dict() for t in manifest.inputs],
            "outputs": [t.to_dict() for t in manifest.outputs],
        }
        runner = self.registry.loaded_runner(manifest.name, manifest.version)
        doc["parameters"] = {
            "target": manifest.target,
            "quantization": manifest.quantization,
            # The provider sessions are created on; once loaded, the one onnxruntime really uses.
            "execution_provider": runner.provider if runner else self.registry.planned_provider(),
        }
        return doc

    def model_ready(self, name: str, ref: str) -> dict[str, Any]:
        """`GET .../ready`: loads the model; errors say why it cannot be."""
        runner = self.registry.runner(name, ref)
        return {
            "name": runner.manifest.name,
            "version": str(runner.manifest.version),
            "ready": True,
            "execution_provider": runner.provider,
        }

    def infer(
        self,
        name: str,
        ref: str,
        body: bytes,
        header_length: int | None,
        *,
        budget: float | None = None,
    ) -> Answer:
        """`POST .../infer`: the response body, its JSON header length if binary, the version."""
        return run_steps(self.infer_steps(name, ref, body, header_length, budget=budget))

    def infer_steps(
        self,
        name: str,
        ref: str,
        body: bytes,
        header_length: int | None,
        *,
        budget: float | None = None,
        route_key: str | None = None,
    ) -> Steps[Answer]:
        """`infer` as steps (`Steps`); `route_key` picks an alias's canary share."""
        check_name(name)  # first, so a bad name is named before any body error (both paths agree)
        request = parse_infer(body, header_length, self.limits)
        runner = self.registry.runner(name, ref, route_key)
        outputs = yield RunCall(runner, request.inputs, request.outputs, self._budget(budget))
        version = runner.manifest.version
        content, length = encode_infer_response(
            model_name=runner.manifest.name,
            model_version=str(version),
            outputs=outputs,
            request=request,
        )
        return Answer(content, length, version)

    def predict(self, name: str, ref: str, body: bytes, *, budget: float | None = None) -> Answer:
        """`POST /v1/models/{name}[/versions/{ref}]:predict`."""
        return run_steps(self.predict_steps(name, ref, body, budget=budget))

    def predict_steps(
        self,
        name: str,
        ref: str,
        body: bytes,
        *,
        budget: float | None = None,
        route_key: str | None = None,
    ) -> Steps[Answer]:
        """`predict` as steps (`Steps`)."""
        runner = self.registry.runner(name, ref, route_key)
        inputs = parse_predict(body, runner.manifest.inputs, self.limits)
        outputs = yield RunCall(runner, inputs, None, self._budget(budget))
        return Answer(encode_predict_response(outputs), None, runner.manifest.version)

    def repository_index(self, *, ready_only: bool = False) -> list[dict[str, Any]]:
        """`POST /v2/repository/index`: every published version and whether it is loaded here."""
        loaded = set(self.registry.loaded())
        repo = self.registry.repository
        entries: list[dict[str, Any]] = []
        for name in repo.models():
            for version in repo.versions(name):
                ready = (name, version) in loaded
                if ready_only and not ready:
                    continue
                entry: dict[str, Any] = {"name": name, "version": str(version)}
                entry["state"] = "READY" if ready else "UNAVAILABLE"
                entry["reason"] = (
                    "" if ready else "not loaded in this container; loads on first use"
                )
                entries.append(entry)
        return entries
