"""Pydantic models that document the wire format in OpenAPI (bodies are decoded without them)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from functions.core.datatypes import DATATYPES

if TYPE_CHECKING:
    Datatype = str
else:
    # The core table's names as a Literal (a tuple subscript is Literal's several arguments), so
    # OpenAPI lists them as an enum; a type checker cannot read a Literal built at run time.
    Datatype = Literal[DATATYPES]
Data = list[Any] | float | int | bool | str


class ErrorResponse(BaseModel):
    """Every error: a message that says what was wrong."""

    error: str


class ServerMetadata(BaseModel):
    """`GET /v2`."""

    name: str
    version: str
    extensions: list[str]


class Health(BaseModel):
    """`GET /v2/health/live` and `/v2/health/ready`."""

    live: bool | None = None
    ready: bool | None = None


class TensorMetadata(BaseModel):
    """A model input or output: `-1` marks a dynamic dimension."""

    name: str
    datatype: Datatype
    shape: list[int]


class ModelParameters(BaseModel):
    """Extra metadata: where the model is meant to run and on which provider it runs here."""

    target: Literal["cpu", "gpu"]
    quantization: str
    execution_provider: str


class ModelMetadata(BaseModel):
    """`GET /v2/models/{name}[/versions/{version}]`."""

    name: str
    versions: list[str]
    platform: str
    inputs: list[TensorMetadata]
    outputs: list[TensorMetadata]
    parameters: ModelParameters


class ModelReady(BaseModel):
    """`GET .../ready`."""

    name: str
    version: str
    ready: bool
    execution_provider: str


class RequestInput(BaseModel):
    """An input tensor; `data` is flat or nested row-major, or binary after the JSON header."""

    name: str
    shape: list[int] = Field(examples=[[1, 4]])
    datatype: Datatype
    parameters: dict[str, Any] | None = Field(
        None, description="`binary_data_size`: the tensor's bytes follow the JSON header"
    )
    data: Data | None = Field(None, examples=[[5.1, 3.5, 1.4, 0.2]])


class RequestOutput(BaseModel):
    """An output to compute; `parameters.binary_data` asks for it in binary."""

    name: str
    parameters: dict[str, Any] | None = None


class InferenceRequest(BaseModel):
    """`POST .../infer` (JSON; Triton's binary tensor extension is also accepted)."""

    id: str | None = None
    parameters: dict[str, Any] | None = None
    inputs: list[RequestInput] = Field(min_length=1)
    outputs: list[RequestOutput] | None = None


class ResponseOutput(BaseModel):
    """An output tensor."""

    name: str
    shape: list[int]
    datatype: Datatype
    parameters: dict[str, Any] | None = None
    data: Data | None = None


class InferenceResponse(BaseModel):
    """The result of `POST .../infer`."""

    model_name: str
    model_version: str | None = None
    id: str | None = None
    parameters: dict[str, Any] | None = None
    outputs: list[ResponseOutput]


class RepositoryIndexRequest(BaseModel):
    """`POST /v2/repository/index`: `ready: true` lists only models loaded here."""

    ready: bool | None = None


class RepositoryIndexEntry(BaseModel):
    """One published model version."""

    name: str
    version: str
    state: str
    reason: str


class PredictRequest(BaseModel):
    """`POST /v1/models/{name}:predict`: one instance per row (objects if several inputs)."""

    instances: list[Any] = Field(min_length=1, examples=[[[5.1, 3.5, 1.4, 0.2]]])


class PredictResponse(BaseModel):
    """One prediction per instance."""

    predictions: list[Any] | dict[str, Any]


REQUEST_MODELS: tuple[type[BaseModel], ...] = (
    InferenceRequest,
    PredictRequest,
    RepositoryIndexRequest,
)
