"""Targets: the objects jobs work on, and how to tell their current version (docs/contract.md §1).

A resolver turns a target name into its current version, or None when the target is gone. Kinds beyond
`file` and `record` are registered in code with `TargetKinds.register`; a resolver may also tell a step the
target's `attributes`.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from jobctl.scheduler.errors import Invalid
from jobctl.scheduler.store import targets as record_targets

if TYPE_CHECKING:
    from sqlalchemy.orm import Session


class Resolver(Protocol):
    kind: str

    def validate(self, name: str) -> None:
        """Raise `Invalid` if `name` can never be a target of this kind."""

    def version(self, session: Session, project_id: int, name: str) -> str | None:
        """The target's current version, or None if it no longer exists."""


@dataclass
class FileResolver:
    """`file` targets: paths relative to the file root; version = size and mtime."""

    root: Path
    kind: str = "file"

    def path(self, name: str) -> Path:
        """The absolute path of `name`, refusing anything that leaves the root (also through symlinks)."""
        if not name or "\x00" in name or len(name) > 512:
            raise Invalid(f"file target {name!r} is not a valid path")
        relative = Path(name)
        if relative.is_absolute() or ".." in relative.parts:
            raise Invalid(f"file target {name!r} must be a path inside the file root, without '..'")
        if any(len(os.fsencode(part)) > 255 for part in relative.parts):  # NAME_MAX: stat would fail
            raise Invalid(f"file target {name!r} is not a valid path (a component is longer than 255 bytes)")
        root = self.root.resolve()
        try:
            resolved = (root / relative).resolve()
        except (OSError, RuntimeError):  # a symlink loop
            raise Invalid(f"file target {name!r} is not a valid path") from None
        if resolved != root and root not in resolved.parents:
            raise Invalid(f"file target {name!r} leaves the file root")
        return resolved

    def validate(self, name: str) -> None:
        self.path(name)

    def version(self, session: Session, project_id: int, name: str) -> str | None:
        try:
            st = os.stat(self.path(name))
        except (FileNotFoundError, NotADirectoryError, Invalid):
            return None
        except OSError as exc:  # a symlink loop, a name too long for this file system: no such file
            if exc.errno in (errno.ELOOP, errno.ENAMETOOLONG):
                return None
            raise
        return f"{st.st_size}:{st.st_mtime_ns}"

    def attributes(self, session: Session, project_id: int, name: str) -> dict[str, Any]:
        """`path`: the file's absolute path."""
        return {"path": str(self.path(name))}


@dataclass
class RecordResolver:
    """`record` targets: rows registered through the API; version = their change counter."""

    kind: str = "record"

    def validate(self, name: str) -> None:
        if not name or len(name) > 512 or "/" in name or "\x00" in name:
            raise Invalid(f"record target name {name!r} must be 1-512 characters without '/'")

    def version(self, session: Session, project_id: int, name: str) -> str | None:
        version = record_targets.version(session, project_id, self.kind, name)
        return None if version is None else str(version)

    def attributes(self, session: Session, project_id: int, name: str) -> dict[str, Any]:
        """The attributes stored with the record (empty if it is gone)."""
        return record_targets.attributes(session, project_id, self.kind, name)


class TargetKinds:
    """The registered target kinds."""

    def __init__(self, file_root: Path) -> None:
        self._kinds: dict[str, Resolver] = {}
        self.register(FileResolver(file_root))
        self.register(RecordResolver())

    def register(self, resolver: Resolver) -> None:
        self._kinds[resolver.kind] = resolver

    def get(self, kind: str) -> Resolver:
        """The resolver of `kind`; `Invalid` if no such kind is registered."""
        try:
            return self._kinds[kind]
        except KeyError:
            raise Invalid(f"unknown target kind {kind!r}; known: {', '.join(sorted(self._kinds))}") from None

    def attributes(self, session: Session, project_id: int, kind: str, name: str) -> dict[str, Any]:
        """What a step sees of the target (`ctx.target.attributes`); a kind whose resolver has no
        `attributes(session, project_id, name)` method shows none."""
        read = getattr(self.get(kind), "attributes", None)
        return dict(read(session, project_id, name)) if read is not None else {}

    def check(self, session: Session, project_id: int, kind: str, name: str, version: str | None) -> str | None:
        """None if the target is still the one the job was submitted against, else why it is not."""
        return mismatch(kind, name, version, self.get(kind).version(session, project_id, name))


def mismatch(kind: str, name: str, pinned: str | None, current: str | None) -> str | None:
    """Why a job pinned to version `pinned` can no longer run on the target now at `current`, if it can't."""
    if current is None:
        return f"target {kind} {name!r} no longer exists"
    if current != pinned:
        return f"target {kind} {name!r} changed (version {pinned} -> {current})"
    return None
