"""The benchmark: every serving layer as a ratio to a bare onnxruntime `session.run`."""
