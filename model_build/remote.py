"""The CLI against a deployed stack: its outputs, and inference calls signed as its API wants.

The stack's API authorizes with IAM (SigV4 for `execute-api`) by default, or a JWT authorizer
(a bearer token); `maas infer` signs or carries the token, sends JSON or Triton's binary tensors,
and decodes the answer either way. Only the standard library's HTTP client and botocore (for
SigV4 and CloudFormation) are used.
"""

from __future__ import annotations

import os
import re
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from functions.core.codec import decode_binary, encode_binary, encode_json_data
from functions.core.datatypes import oip_datatype
from functions.core.errors import MaasError
from functions.core.oip import HEADER_LENGTH

AUTHS = ("iam", "jwt", "none")
_EXECUTE_API = re.compile(r"\.execute-api\.([a-z0-9-]+)\.amazonaws\.com")


class RemoteError(MaasError):
    """The stack or its API cannot be reached, or refused the call."""


def use_aws(region: str | None, profile: str | None) -> None:
    """Make every AWS client this process builds use `region` and `profile` (the store's too)."""
    if profile:
        os.environ["AWS_PROFILE"] = profile
    if region:
        os.environ["AWS_REGION"] = os.environ["AWS_DEFAULT_REGION"] = region


def stack_outputs(name: str) -> dict[str, str]:
    """The CloudFormation outputs of stack `name` (ModelStore, BatchBucket, ApiUrl, ...)."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        stacks = boto3.client("cloudformation").describe_stacks(StackName=name)["Stacks"]
    except ClientError as exc:
        raise RemoteError(f"stack '{name}': {exc.response['Error'].get('Message', exc)}") from None
    except BotoCoreError as exc:
        raise RemoteError(f"stack '{name}' cannot be read: {exc}") from None
    return {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}


def stack_output(name: str, key: str) -> str:
    """One output of the stack, or an error naming what it has."""
    outputs = stack_outputs(name)
    if key not in outputs:
        have = ", ".join(sorted(outputs)) or "none"
        raise RemoteError(f"stack '{name}' has no output {key} (it has: {have})")
    return outputs[key]


@dataclass(frozen=True)
class Caller:
    """How to call the API: its base URL and the authorization it wants."""

    url: str
    auth: str = "iam"
    token: str | None = None
    region: str | None = None

    def send(
        self, method: str, path: str, body: bytes = b"", headers: Mapping[str, str] = {}
    ) -> tuple[int, dict[str, str], bytes]:
        """One HTTP call; (status, lower-case headers, body)."""
        url = self.url.rstrip("/") + path
        if not url.startswith(("https://", "http://")):
            raise RemoteError(f"--url {self.url!r}: expected an http(s):// URL")
        sent = {"content-type": "application/json", **headers}
        if self.auth == "jwt":
            if not self.token:
                raise RemoteError("--auth jwt needs a token (--token or MAAS_TOKEN)")
            sent["authorization"] = f"Bearer {self.token}"
        elif self.auth == "iam":
            sent = self._signed(method, url, body, sent)
        request = urllib.request.Request(url, data=body or None, method=method, headers=sent)
        try:
            with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310  # nosec B310
                return response.status, _lower(response.headers), response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, _lower(exc.headers), exc.read()
        except (urllib.error.URLError, OSError) as exc:
            raise RemoteError(f"{url} cannot be reached: {exc}") from None

    def _signed(
        self, method: str, url: str, body: bytes, headers: dict[str, str]
    ) -> dict[str, str]:
        import boto3
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        session = boto3.Session()
        credentials = session.get_credentials()
        if credentials is None:
            raise RemoteError("--auth iam needs AWS credentials (a profile, or the environment's)")
        found = _EXECUTE_API.search(url)
        region = self.region or (found.group(1) if found else None) or session.region_name
        if not region:
            raise RemoteError("--auth iam needs a region (--region, or the API's own URL)")
        request = AWSRequest(method=method, url=url, data=body, headers=headers)
        SigV4Auth(credentials.get_frozen_credentials(), "execute-api", region).add_auth(request)
        return dict(request.headers.items())


def _lower(headers: Any) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


def load_inputs(path: Path, caller: Caller, model_path: str) -> dict[str, np.ndarray] | bytes:
    """The request's tensors from FILE: a .json request is sent as it is (bytes); a .npz gives
    tensors by name; a .npy is the model's one input (its name read from the model's metadata)."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".json":
            return path.read_bytes()
        if suffix == ".npz":
            with np.load(path, allow_pickle=False) as archive:
                return {name: archive[name] for name in archive.files}
        if suffix == ".npy":
            array = np.load(path, allow_pickle=False)
        else:
            raise RemoteError(f"{path}: expected a .json request, a .npz or a .npy file")
    except (OSError, ValueError) as exc:
        raise RemoteError(f"cannot read {path}: {exc}") from None
    status, _, body = caller.send("GET", model_path)
    if status != 200:
        raise RemoteError(f"model metadata: {status} {body.decode(errors='replace')}")
    inputs = orjson.loads(body).get("inputs") or []
    if len(inputs) != 1:
        names = ", ".join(repr(i.get("name")) for i in inputs)
        raise RemoteError(f"a .npy file feeds one input; this model takes {names}: use .npz")
    return {inputs[0]["name"]: array}


def infer_body(tensors: Mapping[str, np.ndarray], binary: bool) -> tuple[bytes, dict[str, str]]:
    """An OIP v2 request for `tensors`: JSON, or a JSON header and the tensors' bytes."""
    inputs: list[dict[str, Any]] = []
    parts: list[bytes] = []
    for name, array in tensors.items():
        item: dict[str, Any] = {
            "name": name,
            "shape": list(array.shape),
            "datatype": oip_datatype(array.dtype),
        }
        if binary:
            raw = encode_binary(array)
            item["parameters"] = {"binary_data_size": len(raw)}
            parts.append(raw)
        else:
            item["data"] = encode_json_data(array)
        inputs.append(item)
    if not binary:
        return orjson.dumps({"inputs": inputs}), {}
    header = orjson.dumps({"inputs": inputs, "parameters": {"binary_data_output": True}})
    headers = {"content-type": "application/octet-stream", HEADER_LENGTH: str(len(header))}
    return header + b"".join(parts), headers


def decode_response(headers: Mapping[str, str], body: bytes) -> dict[str, Any]:
    """The answer as JSON, binary outputs decoded into lists."""
    length = headers.get(HEADER_LENGTH.lower())
    if length is None:
        doc: dict[str, Any] = orjson.loads(body)
        return doc
    split = int(length)
    doc = orjson.loads(body[:split])
    offset = split
    for output in doc.get("outputs", []):
        size = (output.get("parameters") or {}).pop("binary_data_size", None)
        if size is None:
            continue
        array = decode_binary(
            output["name"], output["datatype"], output["shape"], body[offset : offset + size]
        )
        offset += size
        output["data"] = encode_json_data(array)
        if not output["parameters"]:
            del output["parameters"]
    return doc


def batch_on_stack(
    file: Path,
    *,
    stack: str,
    model: str,
    version: str,
    out: Path | None,
    wait_seconds: float,
    poll_seconds: float = 2.0,
    status: Any = None,
) -> dict[str, Any]:
    """Upload FILE under the stack's `inputs/{model}/{version}/`, wait for the batch function's
    receipt for this very upload (its ETag), then download the output and return its summary;
    an error record is raised as a RemoteError with its message."""
    import time

    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    from functions.batch.bucket import BatchBucket
    from functions.batch.keys import parse_input_key

    bucket = stack_output(stack, "BatchBucket")
    parsed = parse_input_key(f"inputs/{model}/{version}/{file.name}")
    s3 = boto3.client("s3")
    objects = BatchBucket(s3)
    try:
        s3.upload_file(str(file), bucket, parsed.key)  # multipart when large
        etag = str(s3.head_object(Bucket=bucket, Key=parsed.key)["ETag"]).strip('"')
        deadline = time.monotonic() + wait_seconds
        while True:
            receipt = objects.read_json(bucket, parsed.receipt())
            if receipt is not None and str(receipt.get("etag", "")).strip('"') == etag:
                break
            if time.monotonic() > deadline:
                raise RemoteError(
                    f"s3://{bucket}/{parsed.key}: no result after {wait_seconds:.0f} s (it may "
                    f"still come: outputs/{model}/ and errors/{model}/ in the bucket)"
                )
            if status is not None:
                status(f"waiting for s3://{bucket}/{parsed.key} to be scored")
            time.sleep(poll_seconds)
        result = str(receipt["result"])
        if result.startswith("errors/"):
            record = objects.read_json(bucket, result) or {}
            raise RemoteError(f"the batch function refused {file.name}: {record.get('error')}")
        target = out or file.with_name(f"{file.stem}.predictions{Path(result).suffix}")
        s3.download_file(bucket, result, str(target))
        answered = int(result.split("/")[2])  # outputs/{model}/{version}/...
        summary = objects.read_json(bucket, parsed.summary(answered))
    except (BotoCoreError, ClientError) as exc:
        raise RemoteError(f"s3://{bucket}: {exc}") from None
    return (summary or {}) | {
        "input": f"s3://{bucket}/{parsed.key}",
        "result": f"s3://{bucket}/{result}",
        "output": str(target),
    }
