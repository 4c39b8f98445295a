"""The model repository on top of a store: versions, manifests, aliases and publishing."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

import orjson

from .errors import (
    InvalidInput,
    ManifestError,
    ModelNotFound,
    ObjectExists,
    ObjectNotFound,
    VersionNotFound,
)
from .manifest import Manifest
from .names import LATEST, check_alias, check_name, check_version, parse_ref
from .store import Store, alias_key, artifact_key, manifest_key, model_prefix, signature_key

_MANIFEST_KEY = re.compile(r"^models/([^/]+)/([1-9][0-9]*)/manifest\.json$")
_ALIAS_KEY = re.compile(r"^models/([^/]+)/aliases/([^/]+)$")


ManifestCheck = Callable[[str, int, bytes, "bytes | None"], None]


class AliasRoute(NamedTuple):
    """Where an alias sends requests: `version`, or `canary` for a `weight` share of them."""

    version: int
    canary: int | None = None
    weight: float = 0.0


class Repository:
    """Published models in a store, addressed by name and version or alias.

    An alias object holds its version as text (`3`), or, while a canary runs or after one
    ended, a JSON object: `{"version": 3, "canary": {"version": 4, "weight": 0.1}}`, with the
    last canary's outcome under `"ended"` (promoted or rolled back, when and why).
    """

    def __init__(self, store: Store) -> None:
        self.store = store

    def models(self) -> list[str]:
        """Names of every model with at least one published version."""
        names = {
            m.group(1) for key in self.store.list("models/") if (m := _MANIFEST_KEY.match(key))
        }
        return sorted(names)

    def versions(self, name: str) -> list[int]:
        """Published versions of `name`, ascending (a version counts once its manifest exists)."""
        found = [
            int(m.group(2))
            for key in self.store.list(model_prefix(name))
            if (m := _MANIFEST_KEY.match(key))
        ]
        return sorted(found)

    def aliases(self, name: str) -> dict[str, int]:
        """Every alias of `name` and the version it points to (a canary's stable version)."""
        return {alias: route.version for alias, route in self.alias_routes(name).items()}

    def alias_routes(self, name: str) -> dict[str, AliasRoute]:
        """Every alias of `name` and where it sends requests."""
        result: dict[str, AliasRoute] = {}
        for key in self.store.list(model_prefix(name) + "aliases/"):
            if m := _ALIAS_KEY.match(key):
                try:
                    result[m.group(2)] = _route(_alias_doc(self.store.read(key)))
                except (ObjectNotFound, ManifestError):
                    continue
        return dict(sorted(result.items()))

    def alias_doc(self, name: str, alias: str) -> dict[str, Any]:
        """The alias object as a dict (`{"version": n}` for a plain one)."""
        try:
            raw = self.store.read(alias_key(check_name(name), check_alias(alias)))
        except ObjectNotFound:
            raise VersionNotFound(f"model '{name}' has no alias '{alias}'") from None
        try:
            return _alias_doc(raw)
        except ManifestError:
            raise ManifestError(f"alias '{alias}' of model '{name}' is malformed") from None

    def route(self, name: str, ref: str) -> AliasRoute:
        """Where `ref` (a version, `latest` or an alias) sends requests."""
        parsed = parse_ref(ref)
        if isinstance(parsed, str) and parsed != LATEST:
            check_name(name)
            try:
                raw = self.store.read(alias_key(name, parsed))
            except ObjectNotFound:
                pass  # resolve() names what is missing
            else:
                try:
                    return _route(_alias_doc(raw))
                except ManifestError:
                    raise ManifestError(
                        f"alias '{parsed}' of model '{name}' is malformed"
                    ) from None
        return AliasRoute(self.resolve(name, ref))

    def resolve(self, name: str, ref: str) -> int:
        """Resolve a version number, `latest` or an alias to a version number."""
        check_name(name)
        parsed = parse_ref(ref)
        if isinstance(parsed, int):
            return parsed
        if parsed == LATEST:
            versions = self.versions(name)
            if not versions:
                raise ModelNotFound(f"model '{name}' is not published")
            return versions[-1]
        try:
            raw = self.store.read(alias_key(name, parsed))
        except ObjectNotFound:
            if not self.versions(name):
                raise ModelNotFound(f"model '{name}' is not published") from None
            raise VersionNotFound(f"model '{name}' has no version or alias '{parsed}'") from None
        try:
            return _route(_alias_doc(raw)).version
        except ManifestError:
            raise ManifestError(f"alias '{parsed}' of model '{name}' is malformed") from None

    def manifest(self, name: str, version: int, *, verify: ManifestCheck | None = None) -> Manifest:
        """Read and validate a version's manifest; `verify` sees its exact bytes (and its
        signature, if any) before they are parsed or anything else is read."""
        try:
            raw = self.store.read(manifest_key(name, version))
        except ObjectNotFound:
            if not self.versions(name):
                raise ModelNotFound(f"model '{name}' is not published") from None
            raise VersionNotFound(f"model '{name}' has no version {version}") from None
        if verify is not None:
            try:
                signature: bytes | None = self.store.read(signature_key(name, version))
            except ObjectNotFound:
                signature = None
            verify(name, version, raw, signature)
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise ManifestError(
                f"manifest of '{name}' version {version} is not JSON: {exc}"
            ) from None
        manifest = Manifest.from_dict(doc)
        if (manifest.name, manifest.version) != (name, version):
            raise ManifestError(
                f"manifest at '{name}' version {version} describes '{manifest.name}' "
                f"version {manifest.version}"
            )
        return manifest

    def set_alias(
        self,
        name: str,
        alias: str,
        version: int,
        *,
        canary: tuple[int, float] | None = None,
        ended: Mapping[str, Any] | None = None,
    ) -> None:
        """Point `alias` at an existing `version`; with `canary` (version, weight in (0, 1)),
        send that share of requests to the canary version. `ended` records how the last
        canary ended."""
        self.manifest(name, check_version(version))
        check_alias(alias)
        if canary is None and ended is None:
            self.store.write(alias_key(name, alias), f"{version}\n".encode())
            return
        doc: dict[str, Any] = {"version": version}
        if canary is not None:
            canary_version, weight = canary
            if not 0 < weight < 1:
                raise InvalidInput(f"a canary's weight must be between 0 and 1, got {weight}")
            if check_version(canary_version) == version:
                raise InvalidInput(f"the canary is version {version}, which the alias serves")
            self.manifest(name, canary_version)
            doc["canary"] = {"version": canary_version, "weight": weight}
        if ended is not None:
            doc["ended"] = dict(ended) | {"at": datetime.now(UTC).isoformat(timespec="seconds")}
        self.store.write(alias_key(name, alias), orjson.dumps(doc, option=orjson.OPT_INDENT_2))

    def sign(self, name: str, version: int, signer: Callable[[bytes], bytes]) -> bytes:
        """Sign a published version's manifest (its exact stored bytes) with `signer`, which
        returns the signature object; store it beside the manifest and return it."""
        raw = self.store.read(manifest_key(check_name(name), version))
        signature = signer(raw)
        self.store.write(signature_key(name, version), signature)
        return signature

    def end_canary(
        self, name: str, alias: str, *, promote: bool, reason: str = "", by: str = "maas alias"
    ) -> tuple[int, int]:
        """Promote the alias's canary, or roll it back; record how, why and by whom in the
        alias object. Returns (the version the alias now serves, the canary's)."""
        doc = self.alias_doc(name, alias)
        running = doc.get("canary")
        if running is None:
            raise InvalidInput(f"{name}:{alias} has no canary to end")
        stable, trial = int(doc["version"]), int(running["version"])
        kept = trial if promote else stable
        outcome = "promoted" if promote else "rolled back"
        ended = {"outcome": outcome, "canary": trial, "from": stable, "reason": reason, "by": by}
        self.set_alias(name, alias, kept, ended=ended)
        return kept, trial

    def publish(
        self, manifest: Manifest, artifact: bytes, data: Mapping[str, Path] | None = None
    ) -> Manifest:
        """Store `artifact` (the graph) and its external `data` files (location -> local file)
        as the next version of `manifest.name`; return the final manifest.

        The graph's create-only write claims the version number; the data files follow, and the
        manifest comes last: a version counts once its manifest exists, never half-written.
        """
        digest = hashlib.sha256(artifact).hexdigest()
        if digest != manifest.sha256 or len(artifact) != manifest.size_bytes:
            raise ManifestError("the manifest's sha256 or size does not match the artifact")
        data = dict(data or {})
        if sorted(data) != sorted(f.path for f in manifest.data_files):
            raise ManifestError("the manifest's external data files are not the ones given")
        name = check_name(manifest.name)
        taken = set(self.versions(name))
        version = max(taken, default=0) + 1
        while True:
            try:
                self.store.create(artifact_key(name, version), artifact)
                break
            except ObjectExists:  # a concurrent or half-finished publish holds it: take the next
                version += 1
        for each in manifest.data_files:
            self.store.upload(artifact_key(name, version, each.path), data[each.path])
        final = manifest.with_version(version)
        self.store.create(
            manifest_key(name, version), orjson.dumps(final.to_dict(), option=orjson.OPT_INDENT_2)
        )
        return final


def _alias_doc(raw: bytes) -> dict[str, Any]:
    """An alias object's contents; ManifestError if it is neither a version nor its JSON."""
    text = raw.strip()
    try:
        if not text.startswith(b"{"):
            return {"version": check_version(int(text.decode()))}
        doc = orjson.loads(text)
        _route(doc)
    except (ValueError, UnicodeDecodeError, TypeError, KeyError, InvalidInput):
        raise ManifestError("malformed alias") from None
    if not isinstance(doc, dict):
        raise ManifestError("malformed alias")
    return doc


def _route(doc: dict[str, Any]) -> AliasRoute:
    version = check_version(doc["version"])
    canary = doc.get("canary")
    if canary is None:
        return AliasRoute(version)
    weight = canary["weight"]
    if isinstance(weight, bool) or not isinstance(weight, int | float) or not 0 < weight < 1:
        raise ValueError("weight")
    return AliasRoute(version, check_version(canary["version"]), float(weight))
