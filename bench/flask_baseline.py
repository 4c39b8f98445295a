"""A naive Flask app serving one ONNX model: the baseline the benchmark compares against.

What a hand-rolled service typically looks like: stdlib JSON through `request.get_json()`,
`np.array` on the nested lists, `.tolist()` back, Werkzeug's threaded server.
"""

from __future__ import annotations

import argparse

import numpy as np
import onnxruntime as ort
from flask import Flask, jsonify, request


def create(model_path: str, threads: int) -> Flask:
    """The app: POST /v2/models/<name>/infer with one JSON tensor in, every output out."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads  # the benchmark's, as every layer compared uses
    session = ort.InferenceSession(model_path, options, providers=["CPUExecutionProvider"])
    app = Flask("baseline")

    @app.get("/health")
    def health():  # type: ignore[no-untyped-def]
        return "ok"

    @app.post("/v2/models/<name>/infer")
    def infer(name: str):  # type: ignore[no-untyped-def]
        tensor = request.get_json()["inputs"][0]
        array = np.array(tensor["data"], dtype=np.float32).reshape(tensor["shape"])
        outputs = session.run(None, {tensor["name"]: array})
        return jsonify(
            {
                "model_name": name,
                "outputs": [
                    {
                        "name": meta.name,
                        "datatype": "FP32",
                        "shape": list(out.shape),
                        "data": out.ravel().tolist(),
                    }
                    for meta, out in zip(session.get_outputs(), outputs, strict=True)
                ],
            }
        )

    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--threads", type=int, required=True)
    args = parser.parse_args()
    create(args.model, args.threads).run(host="127.0.0.1", port=args.port, threaded=True)


if __name__ == "__main__":
    main()
