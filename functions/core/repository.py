"""The model repository on top of a store: versions, manifests, aliases and publishing."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from pathlib import Path

import orjson

from .errors import ManifestError, ModelNotFound, ObjectExists, ObjectNotFound, VersionNotFound
from .manifest import Manifest
from .names import LATEST, check_alias, check_name, check_version, parse_ref
from .store import Store, alias_key, artifact_key, manifest_key, model_prefix

_MANIFEST_KEY = re.compile(r"^models/([^/]+)/([1-9][0-9]*)/manifest\.json$")
_ALIAS_KEY = re.compile(r"^models/([^/]+)/aliases/([^/]+)$")


class Repository:
    """Published models in a store, addressed by name and version or alias."""

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
        """Every alias of `name` and the version it points to."""
        result: dict[str, int] = {}
        for key in self.store.list(model_prefix(name) + "aliases/"):
            if m := _ALIAS_KEY.match(key):
                try:
                    result[m.group(2)] = int(self.store.read(key).decode().strip())
                except (ObjectNotFound, ValueError):
                    continue
        return dict(sorted(result.items()))

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
            return check_version(int(raw.decode().strip()))
        except (ValueError, UnicodeDecodeError):
            raise ManifestError(f"alias '{parsed}' of model '{name}' is malformed") from None

    def manifest(self, name: str, version: int) -> Manifest:
        """Read and validate a version's manifest."""
        try:
            raw = self.store.read(manifest_key(name, version))
        except ObjectNotFound:
            if not self.versions(name):
                raise ModelNotFound(f"model '{name}' is not published") from None
            raise VersionNotFound(f"model '{name}' has no version {version}") from None
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

    def set_alias(self, name: str, alias: str, version: int) -> None:
        """Point `alias` at an existing `version` (promote or roll back)."""
        self.manifest(name, check_version(version))
        self.store.write(alias_key(name, check_alias(alias)), f"{version}\n".encode())

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
