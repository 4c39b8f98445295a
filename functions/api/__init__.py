"""The HTTP API: FastAPI app (OIP v2 + v1 predict) and its Lambda handler."""
