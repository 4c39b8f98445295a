"""MLServer custom runtime: one ONNX model through onnxruntime, for `python -m bench.peers`.

Runs in MLServer's own virtual environment (.maas/peers/mlserver), never the project's. Not a
package (no __init__.py): the project never imports it; its mypy still checks it, mlserver's names
being Any there. model-settings.json names it (`implementation: mlserver_onnx.OnnxRuntime`, found
on PYTHONPATH) and passes the model file as `parameters.uri`, the intra-op threads as
`parameters.extra.threads`.
"""

# mypy: allow-subclassing-any
# (mlserver and kserve live in the peers' own venvs only: to the project's mypy they are Any)
from __future__ import annotations

import onnxruntime as ort
from mlserver import MLModel  # type: ignore[import-not-found]
from mlserver.codecs import NumpyCodec  # type: ignore[import-not-found]
from mlserver.types import InferenceRequest, InferenceResponse  # type: ignore[import-not-found]


class OnnxRuntime(MLModel):
    """v2 infer: every input decoded by NumpyCodec, every output encoded by it."""

    async def load(self) -> bool:
        parameters = self.settings.parameters
        assert parameters is not None and parameters.uri is not None
        options = ort.SessionOptions()
        options.intra_op_num_threads = int((parameters.extra or {})["threads"])
        self._session = ort.InferenceSession(
            parameters.uri, options, providers=["CPUExecutionProvider"]
        )
        self._outputs = [meta.name for meta in self._session.get_outputs()]
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        feed = {tensor.name: NumpyCodec.decode_input(tensor) for tensor in payload.inputs}
        values = self._session.run(None, feed)
        return InferenceResponse(
            id=payload.id,
            model_name=self.name,
            outputs=[
                NumpyCodec.encode_output(name, value)
                for name, value in zip(self._outputs, values, strict=True)
            ],
        )
