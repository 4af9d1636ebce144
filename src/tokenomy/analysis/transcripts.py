"""Finding Claude Code transcript files, telling them apart, and reading only what is new.

Where (``anthropic-api.md`` §10.1): ``~/.config/claude/projects`` and ``~/.claude/projects``,
or the folders listed (comma-separated) in ``CLAUDE_CONFIG_DIR``, each either a Claude config
directory holding ``projects/`` or a ``projects/`` directory itself. Under ``projects/``:

- ``<project>/<session>.jsonl`` — a session;
- ``<project>/<session>/subagents/agent-<id>.jsonl`` — a sub-agent (newer layout), with an
  optional ``agent-<id>.meta.json`` beside it;
- ``<project>/agent-<id>.jsonl`` — a sub-agent (older layout; its session is in its lines);
- any other ``.jsonl`` under a session folder — read as part of that session.

A file's **identity** is its device and inode; its **head** is a hash of its first 4 KiB. A
file seen before with the same identity and head, at least as long as what was read, is read
from the saved offset; anything else (rotated, rewritten, truncated) is read again from 0.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

__all__ = [
    "FileIdentity",
    "Layout",
    "TranscriptFile",
    "default_roots",
    "discover",
    "file_identity",
    "head_hash",
    "read_lines",
]

Layout = Literal["session", "subagent", "legacy-subagent", "nested"]
HEAD_BYTES = 4096
_BLOCK = 4 << 20  # bytes read at a time: memory stays bounded whatever the file's size


@dataclass(frozen=True, slots=True)
class TranscriptFile:
    """One transcript file and what its place in the tree says about it."""

    path: Path
    project_dir: str
    layout: Layout
    session_id: str | None  # from the path; None for the older sub-agent layout
    agent_id: str | None

    @property
    def is_subagent(self) -> bool:
        return self.layout in ("subagent", "legacy-subagent")


@dataclass(frozen=True, slots=True)
class FileIdentity:
    device: int
    inode: int
    size: int
    mtime_ns: int
    head_hash: str


def default_roots(*, home: Path, config_dirs: str | None) -> list[Path]:
    """The folders to search: ``CLAUDE_CONFIG_DIR``'s list when set, else the two defaults."""
    if config_dirs and config_dirs.strip():
        return [Path(p.strip()).expanduser() for p in config_dirs.split(",") if p.strip()]
    return [home / ".config" / "claude", home / ".claude"]


def projects_dir(root: Path) -> Path | None:
    """``root/projects`` for a config dir, ``root`` itself if it is a ``projects`` dir."""
    if (root / "projects").is_dir():
        return root / "projects"
    if root.name == "projects" and root.is_dir():
        return root
    return None


def discover(roots: Sequence[Path]) -> tuple[list[TranscriptFile], list[Path]]:
    """Every transcript file under ``roots`` (sessions first), and the roots that had none.

    A root may also be a single ``.jsonl`` file or a project folder: what the user points at
    is read.
    """
    found: dict[Path, TranscriptFile] = {}
    missing: list[Path] = []
    for root in roots:
        before = len(found)
        if root.is_file() and root.suffix == ".jsonl":
            tf = _classify_loose(root)
            found.setdefault(tf.path, tf)
        else:
            projects = projects_dir(root)
            if projects is not None:
                for tf in _walk(projects):
                    found.setdefault(tf.path, tf)
            elif root.is_dir():
                # A project folder (or any folder of transcripts) given directly.
                for tf in _walk(root.parent, only=root.name):
                    found.setdefault(tf.path, tf)
        if len(found) == before:
            missing.append(root)
    files = sorted(found.values(), key=lambda f: (f.is_subagent, str(f.path)))
    return files, missing


def _walk(projects: Path, *, only: str | None = None) -> Iterator[TranscriptFile]:
    try:
        entries = sorted(os.scandir(projects), key=lambda e: e.name)
    except OSError:
        return
    for project in entries:
        if only is not None and project.name != only:
            continue
        if not project.is_dir(follow_symlinks=False):
            continue
        for dirpath, dirnames, filenames in os.walk(project.path):
            dirnames.sort()
            rel = Path(dirpath).relative_to(project.path).parts
            for name in sorted(filenames):
                if name.endswith(".jsonl"):
                    yield _classify(Path(dirpath) / name, project.name, rel, name)


def _classify(path: Path, project: str, rel: tuple[str, ...], name: str) -> TranscriptFile:
    stem = name[: -len(".jsonl")]
    agent = stem[len("agent-") :] if stem.startswith("agent-") else None
    if not rel:
        if agent is not None:
            return TranscriptFile(path, project, "legacy-subagent", None, agent)
        return TranscriptFile(path, project, "session", stem, None)
    if len(rel) >= 2 and rel[-1] == "subagents":
        return TranscriptFile(path, project, "subagent", rel[-2], agent or stem)
    return TranscriptFile(path, project, "nested", rel[0], agent)


def _classify_loose(path: Path) -> TranscriptFile:
    parts = path.parts
    if "projects" in parts:
        i = len(parts) - 1 - parts[::-1].index("projects")
        if i + 2 < len(parts):
            return _classify(path, parts[i + 1], tuple(parts[i + 2 : -1]), path.name)
    return _classify(path, path.parent.name, (), path.name)


def head_hash(path: Path, length: int) -> str:
    """SHA-256 of the file's first ``min(length, 4 KiB)`` bytes. Raises OSError."""
    with path.open("rb") as f:
        return hashlib.sha256(f.read(min(length, HEAD_BYTES))).hexdigest()


def file_identity(path: Path, *, head_bytes: int | None = None) -> FileIdentity:
    """Device, inode, size, mtime and the hash of the first ``head_bytes`` (at most 4 KiB).

    Without ``head_bytes`` the hash is empty: a file whose stat says it did not change is not
    opened at all, which keeps a repeated import of thousands of files near-instant. The hash
    covers only bytes already read before, so appending never changes it; rewriting does.
    Raises OSError.
    """
    st = path.stat()
    digest = head_hash(path, head_bytes) if head_bytes is not None else ""
    return FileIdentity(
        device=st.st_dev,
        inode=st.st_ino,
        size=st.st_size,
        mtime_ns=st.st_mtime_ns,
        head_hash=digest,
    )


def read_lines(path: Path, offset: int) -> Iterator[tuple[int, bytes, bool]]:
    """``(offset after the line, line without its newline, complete)`` from ``offset`` on.

    A last line with no newline is yielded with ``complete=False``: it may be being written
    right now. Memory is bounded by the longest line plus one block, whatever the file's size.
    """
    with open(path, "rb", buffering=0) as f:
        f.seek(offset)
        pos = offset
        rest = b""
        # Read what the file holds, not a whole block, when it is smaller: a fresh block-sized
        # buffer per file costs page faults (most transcripts are a few hundred KB). The size
        # is a hint only; the file may grow while it is read.
        left = os.fstat(f.fileno()).st_size - offset
        while True:
            block = f.read(min(_BLOCK, left + 1) if left >= 0 else _BLOCK)
            left -= len(block)
            if not block:
                break
            data = rest + block if rest else block
            start = 0
            find = data.find
            while True:
                nl = find(b"\n", start)
                if nl < 0:
                    break
                end = nl - 1 if nl > start and data[nl - 1] == 13 else nl  # \r\n
                yield pos + nl + 1, data[start:end], True
                start = nl + 1
            pos += start
            rest = data[start:]
        if rest.strip():
            yield pos, rest, False  # not consumed: the offset stays before it
