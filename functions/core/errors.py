"""Domain errors. They carry no HTTP codes: `functions.api.errors` maps them to responses."""

from __future__ import annotations


class MaasError(Exception):
    """Base class of every error the service reports to a caller."""


class InvalidInput(MaasError):
    """The request is malformed or does not match the model's inputs."""


class InvalidName(InvalidInput):
    """A model name, version or alias is not a plain name."""


class PayloadTooLarge(MaasError):
    """The request is bigger than a configured limit."""


class DeadlineExceeded(MaasError):
    """Inference would outlive the time the request may take; the run was stopped."""


class ModelNotFound(MaasError):
    """No model of that name is published."""


class VersionNotFound(MaasError):
    """The model exists but has no such version or alias."""


class InferenceNotFound(MaasError):
    """No asynchronous inference of that id was sent for that model."""


class ModelUnavailable(MaasError):
    """The model exists but cannot be served now (store down, broken artifact)."""


class SignatureError(ModelUnavailable):
    """A manifest whose signature is missing, does not match, or is not the configured key's."""


class IntegrityError(ModelUnavailable):
    """An artifact's bytes do not match the sha256 its manifest records."""


class ManifestError(MaasError):
    """A manifest is malformed or inconsistent."""


class ArtifactPathError(ManifestError):
    """An artifact file's location is absolute, leaves the model's folder or is reserved."""


class StoreError(MaasError):
    """Base class of store failures."""


class ObjectNotFound(StoreError):
    """The store has no object under that key."""


class ObjectExists(StoreError):
    """A create-only write found the key already taken."""


class StoreUnavailable(StoreError):
    """The store could not be reached or refused the call (transient)."""
