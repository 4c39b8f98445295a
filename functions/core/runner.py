"""The runner: check inputs against the manifest, run the session, return named outputs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from .codec import Array
from .datatypes import numpy_dtype, oip_datatype
from .deadline import Watchdog, default_watchdog
from .errors import DeadlineExceeded, InvalidInput, ModelUnavailable
from .manifest import Manifest, TensorSpec


class Session(Protocol):
    """What the runner needs of an inference session (onnxruntime's InferenceSession fits)."""

    def run(
        self, output_names: Sequence[str] | None, input_feed: dict[str, Any], run_options: Any = ...
    ) -> list[Any]:
        """Run the graph for `output_names` on `input_feed` (options: onnxruntime's RunOptions)."""
        ...


class Runner:
    """One loaded model version: its manifest and its session."""

    def __init__(
        self,
        manifest: Manifest,
        session: Session,
        *,
        provider: str = "CPU",
        watchdog: Watchdog | None = None,
    ) -> None:
        self.manifest = manifest
        self.session = session
        self.provider = provider
        self.watchdog = watchdog or default_watchdog()
        self._inputs = {spec.name: spec for spec in manifest.inputs}
        self._outputs = [spec.name for spec in manifest.outputs]
        # The common request: a one-input model given an array of its dtype (not BYTES: strings
        # are converted to text on the way).
        self._dtypes = {
            spec.name: numpy_dtype(spec.datatype)
            for spec in manifest.inputs
            if spec.datatype != "BYTES"
        }
        # Every input and output has a dynamic dimension 0: requests can be run as one batch.
        self.batchable = all(
            spec.shape[:1] == (-1,) for spec in (*manifest.inputs, *manifest.outputs)
        )
        self._fixed = {
            spec.name: (len(spec.shape), [(a, d) for a, d in enumerate(spec.shape) if d != -1])
            for spec in manifest.inputs
        }

    def check_inputs(self, inputs: Sequence[tuple[str, Array]]) -> dict[str, Array]:
        """Return the feed for `inputs`, or raise InvalidInput naming the first mismatch."""
        if len(inputs) == 1 and len(self._inputs) == 1:
            name, array = inputs[0]
            dtype = self._dtypes.get(name)  # None for an unknown name, or BYTES
            if dtype is not None and array.dtype == dtype and self._fits(name, array.shape):
                return {name: array}
        feed: dict[str, Array] = {}
        for name, array in inputs:
            spec = self._inputs.get(name)
            if spec is None:
                raise InvalidInput(
                    f"unexpected input '{name}'; model '{self.manifest.name}' takes "
                    f"{_names(self.manifest.inputs)}"
                )
            if name in feed:
                raise InvalidInput(f"input '{name}' is given more than once")
            feed[name] = check_input(spec, array)
        missing = [n for n in self._inputs if n not in feed]
        if missing:
            raise InvalidInput(f"missing input {', '.join(repr(n) for n in missing)}")
        return feed

    def _fits(self, name: str, shape: tuple[int, ...]) -> bool:
        """Rank and every fixed dimension match (what `check_input` checks, without words)."""
        rank, fixed = self._fixed[name]
        if len(shape) != rank:
            return False
        for axis, want in fixed:
            if shape[axis] != want:
                return False
        return True

    def output_names(self, requested: Sequence[str] | None) -> list[str]:
        """Return the outputs to compute: all of them, or the requested ones if known."""
        if not requested:
            return list(self._outputs)
        seen: set[str] = set()
        for name in requested:
            if name not in self._outputs:
                raise InvalidInput(
                    f"unknown output '{name}'; model '{self.manifest.name}' produces "
                    f"{_names(self.manifest.outputs)}"
                )
            if name in seen:
                raise InvalidInput(f"output '{name}' is requested more than once")
            seen.add(name)
        return list(requested)

    def run(
        self,
        inputs: Sequence[tuple[str, Array]],
        outputs: Sequence[str] | None = None,
        *,
        timeout: float | None = None,
    ) -> dict[str, Array]:
        """Check inputs, run the session (stopped after `timeout` s) and return the outputs."""
        feed = self.check_inputs(inputs)
        names = self.output_names(outputs)
        if timeout is None:
            try:
                results = self.session.run(names, feed)
            except Exception as exc:  # onnxruntime raises its own types: input faults
                raise InvalidInput(
                    f"model '{self.manifest.name}' rejected the inputs: {exc}"
                ) from None
        else:
            results = self._run_within(names, feed, timeout)
        if len(results) != len(names):
            raise ModelUnavailable("the session returned an unexpected number of outputs")
        return dict(zip(names, results, strict=True))

    def _run_within(self, names: list[str], feed: dict[str, Array], timeout: float) -> list[Any]:
        """Run under the process watchdog; a run it stops is DeadlineExceeded."""
        if timeout <= 0:
            raise DeadlineExceeded(self._late(timeout))
        budget = self.watchdog.arm(timeout)
        try:
            return self.session.run(names, feed, budget.options)
        except Exception as exc:  # onnxruntime raises its own types: input faults, or our stop
            if budget.expired:
                raise DeadlineExceeded(self._late(timeout)) from None
            raise InvalidInput(f"model '{self.manifest.name}' rejected the inputs: {exc}") from None
        finally:
            self.watchdog.release(budget)

    def _late(self, timeout: float) -> str:
        return (
            f"model '{self.manifest.name}' did not finish within its time budget of "
            f"{max(timeout, 0):.2f} s (MAAS_MAX_INFERENCE_SECONDS, or the Lambda's remaining "
            "time); the run was stopped"
        )


def _names(specs: Sequence[TensorSpec]) -> str:
    return ", ".join(f"'{s.name}'" for s in specs)


def _as_text(name: str, array: Array) -> Array:
    """ONNX string tensors take Python `str`: onnxruntime would turn b"a" into "b'a'"."""
    text = np.empty(array.shape, dtype=object)
    try:
        text.flat[:] = [v.decode() if isinstance(v, bytes) else str(v) for v in array.flat]
    except UnicodeDecodeError:
        raise InvalidInput(f"input '{name}': BYTES elements must be UTF-8 text") from None
    return text


def check_input(spec: TensorSpec, array: Array) -> Array:
    """Return `array` (strings as text) if it fits `spec`, else raise InvalidInput saying why."""
    expected = numpy_dtype(spec.datatype)
    if spec.datatype == "BYTES":
        if array.dtype.kind not in "OUS":
            raise InvalidInput(f"input '{spec.name}' must be BYTES")
        array = _as_text(spec.name, array)
    elif array.dtype != expected:
        got = oip_datatype(array.dtype)
        raise InvalidInput(f"input '{spec.name}' has datatype {got}, expected {spec.datatype}")
    if array.ndim != len(spec.shape):
        raise InvalidInput(
            f"input '{spec.name}' has shape {list(array.shape)} (rank {array.ndim}), expected "
            f"rank {len(spec.shape)} {list(spec.shape)}"
        )
    for axis, (got, want) in enumerate(zip(array.shape, spec.shape, strict=True)):
        if want != -1 and got != want:
            raise InvalidInput(
                f"input '{spec.name}' has shape {list(array.shape)}, expected {list(spec.shape)} "
                f"(dimension {axis} must be {want})"
            )
    return array
