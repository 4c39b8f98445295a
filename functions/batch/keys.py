"""The batch bucket's keys: inputs/{model}/{version-or-alias}/{path} and what derives from it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath

from functions.core.errors import InvalidInput
from functions.core.names import check_name, parse_ref

from .formats import FORMATS


@dataclass(frozen=True)
class InputKey:
    """A parsed input key."""

    key: str
    model: str
    ref: str
    path: str

    @property
    def suffix(self) -> str:
        """The file type, lower case (`.csv`)."""
        return PurePosixPath(self.path).suffix.lower()

    def check_format(self) -> None:
        """Raise InvalidInput unless the file type is one the batch function reads."""
        if self.suffix not in FORMATS:
            kind = self.suffix or "(none)"
            raise InvalidInput(
                f"unsupported file type {kind!r} for {self.key!r}; use one of {', '.join(FORMATS)}"
            )

    def output(self, version: int, suffix: str) -> str:
        """`outputs/{model}/{version}/{path}` with the output file type."""
        stem = str(PurePosixPath(self.path).with_suffix(suffix))
        return f"outputs/{self.model}/{version}/{stem}"

    def summary(self, version: int) -> str:
        """`outputs/{model}/{version}/{path}.summary.json`."""
        return f"outputs/{self.model}/{version}/{self.path}.summary.json"

    def error(self) -> str:
        """`errors/{model}/{version-or-alias}/{path}.error.json`."""
        return f"errors/{self.model}/{self.ref}/{self.path}.error.json"

    def shards(self, etag: str) -> str:
        """The folder of this input's shard plan, parts and shard results (one per ETag)."""
        return f"outputs/_shards/{self.model}/{self.ref}/{self.path}/{etag.strip(chr(34))}/"

    def receipt(self) -> str:
        """Where the outcome for this input is recorded (idempotency across duplicate events)."""
        return f"outputs/_receipts/{self.model}/{self.ref}/{self.path}.json"


def parse_input_key(key: str) -> InputKey:
    """Parse and validate; raise InvalidInput naming the expected layout."""
    parts = key.split("/", 3)
    if len(parts) != 4 or parts[0] != "inputs" or not parts[3]:
        raise InvalidInput(f"key {key!r} is not inputs/{{model}}/{{version-or-alias}}/{{path}}")
    _, model, ref, path = parts
    check_name(model)
    parse_ref(ref)
    if any(p in ("", ".", "..") for p in path.split("/")):
        raise InvalidInput(f"key {key!r} has an empty, '.' or '..' path segment")
    return InputKey(key=key, model=model, ref=ref, path=path)


def error_key_for_unparsed(key: str) -> str:
    """An error record for a key that is not even inputs/{model}/{ref}/{path}."""
    rest = key.removeprefix("inputs/").strip("/") or "_"
    safe = "/".join(p if p not in ("", ".", "..") else "_" for p in rest.split("/"))
    return f"errors/_unparsed/{safe}.error.json"
