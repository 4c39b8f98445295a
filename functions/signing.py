"""Signed manifests: an AWS KMS asymmetric key (ECC_NIST_P256, ECDSA_SHA_256) signs the SHA-256
of a version's manifest, which holds every file's sha256 and BLAKE3; the functions verify it
before anything else of that version is read.

Why KMS and not the OpenSSF `model-signing` library: the functions have no network for
Sigstore's keyless flow; a key-based model-signing bundle would put the private key in a file a
team must guard, and its verifier (sigstore-python and its dependencies) in every function's
bundle. A KMS key never leaves KMS, its use is logged by CloudTrail, the stack grants the
functions `kms:Verify` only, and botocore (in the Lambda runtime already) is the whole client.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable
from typing import Any

import orjson

from functions.core.errors import ModelUnavailable, SignatureError

FORMAT = "maas-kms-v1"
ALGORITHM = "ECDSA_SHA_256"


def _kms(client: Any) -> Any:
    if client is not None:
        return client
    from functions.stores.s3 import make_client

    return make_client("kms")


def kms_signer(key_id: str, client: Any = None) -> Callable[[bytes], bytes]:
    """A signer for `Repository.sign`: the signature object of a manifest's exact bytes."""
    kms = _kms(client)

    def sign(manifest: bytes) -> bytes:
        digest = hashlib.sha256(manifest).digest()
        signed = kms.sign(
            KeyId=key_id, Message=digest, MessageType="DIGEST", SigningAlgorithm=ALGORITHM
        )
        doc = {
            "format": FORMAT,
            "key_id": signed["KeyId"],
            "algorithm": ALGORITHM,
            "sha256": digest.hex(),
            "signature": base64.b64encode(signed["Signature"]).decode(),
        }
        return orjson.dumps(doc, option=orjson.OPT_INDENT_2)

    return sign


class KmsVerifier:
    """Checks a manifest against its signature object and the configured key (a `ManifestCheck`)."""

    def __init__(self, key_id: str, client: Any = None) -> None:
        self.key_id = key_id
        self._client = client

    def __call__(self, name: str, version: int, manifest: bytes, signature: bytes | None) -> None:
        where = f"model '{name}' version {version}"
        if signature is None:
            raise SignatureError(f"{where} is not signed, and signatures are required here")
        try:
            doc = orjson.loads(signature)
            claimed, sig = str(doc["sha256"]), base64.b64decode(doc["signature"], validate=True)
            algorithm = str(doc.get("algorithm", ALGORITHM))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, binascii.Error):
            raise SignatureError(f"{where}: its signature object is malformed") from None
        digest = hashlib.sha256(manifest).digest()
        if claimed != digest.hex():
            raise SignatureError(f"{where}: the manifest has changed since it was signed")
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            valid = _kms(self._client).verify(
                KeyId=self.key_id,
                Message=digest,
                MessageType="DIGEST",
                Signature=sig,
                SigningAlgorithm=algorithm,
            )["SignatureValid"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "KMSInvalidSignatureException":
                raise ModelUnavailable(f"{where}: its signature cannot be checked: {exc}") from None
            valid = False
        except BotoCoreError as exc:
            raise ModelUnavailable(f"{where}: its signature cannot be checked: {exc}") from None
        if not valid:
            raise SignatureError(
                f"{where}: the signature is not the key {self.key_id}'s "
                f"(it names {doc.get('key_id', 'no key')})"
            )
