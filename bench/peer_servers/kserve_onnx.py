"""KServe's Python ModelServer over one ONNX model through onnxruntime, for `python -m bench.peers`.

`python kserve_onnx.py MODEL.onnx NAME PORT THREADS GRPC_PORT` with KServe's own virtual
environment (.maas/peers/kserve), never the project's. Not a package (no __init__.py): the project
never imports it; its mypy still checks it, kserve's names being Any there. Positional arguments
only: kserve parses sys.argv's options itself when imported. KServe 0.21 binds its REST server to
0.0.0.0 unconditionally; the benchmark keeps every server on loopback, so uvicorn's Config is
pinned to 127.0.0.1 here. Per-request logging is off (latency log lines, uvicorn's access log).
"""

# mypy: allow-subclassing-any
# (mlserver and kserve live in the peers' own venvs only: to the project's mypy they are Any)
from __future__ import annotations

import logging
import sys
from typing import Any

import kserve  # type: ignore[import-not-found]
import onnxruntime as ort
import uvicorn
from kserve import InferOutput, InferRequest, InferResponse
from kserve.model_server import ModelServer  # type: ignore[import-not-found]
from kserve.utils.numpy_codec import from_np_dtype  # type: ignore[import-not-found]
from kserve.utils.utils import generate_uuid  # type: ignore[import-not-found]

_Config = uvicorn.Config


class _LoopbackConfig(_Config):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["host"] = "127.0.0.1"
        super().__init__(*args, **kwargs)


class OnnxModel(kserve.Model):
    """v2 infer: inputs as numpy, outputs back in JSON or binary as the request asks."""

    def __init__(self, name: str, path: str, threads: int) -> None:
        super().__init__(name)
        self.path, self.threads = path, threads
        self.load()

    def load(self) -> bool:
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        self.session = ort.InferenceSession(self.path, options, providers=["CPUExecutionProvider"])
        self.outputs = [meta.name for meta in self.session.get_outputs()]
        self.ready = True
        return True

    def predict(
        self,
        payload: InferRequest,
        headers: dict[str, str] | None = None,
        response_headers: dict[str, str] | None = None,
    ) -> InferResponse:
        feed = {tensor.name: tensor.as_numpy() for tensor in payload.inputs}
        binary = payload.use_binary_outputs
        outputs = []
        for name, value in zip(self.outputs, self.session.run(None, feed), strict=True):
            output = InferOutput(
                name=name, shape=list(value.shape), datatype=from_np_dtype(value.dtype)
            )
            output.set_data_from_numpy(value, binary_data=binary)
            outputs.append(output)
        return InferResponse(
            response_id=payload.id or generate_uuid(),  # as KServe's own runtimes
            model_name=self.name,
            infer_outputs=outputs,
            use_binary_outputs=binary,
        )


def main() -> None:
    path, name, port, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    uvicorn.Config = _LoopbackConfig  # type: ignore[misc]  # read by kserve's RESTServer when it starts
    server = ModelServer(
        http_port=port,
        grpc_port=int(sys.argv[5]),
        enable_grpc=False,
        workers=1,
        enable_latency_logging=False,
    )
    for logger in ("uvicorn.access", "kserve", "kserve.trace"):
        logging.getLogger(logger).setLevel(logging.WARNING)
    server.start([OnnxModel(name, path, threads)])


if __name__ == "__main__":
    main()
