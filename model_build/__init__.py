"""Offline side: examples, ONNX export and inspection, publishing, and the `maas` CLI."""
