"""Atomic file writes: a reader sees the old file or the whole new one, never half of one."""

import contextlib
import functools
import gzip
import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yields a temporary path beside `path`; renames it onto `path` only if the block succeeds.

    Example::

        with atomic_path(Path("model.keras")) as temporary:
            model.save(temporary)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = partial_path(path)
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        if temporary.exists():
            temporary.unlink()


def partial_path(path: Path) -> Path:
    """Where a file (or folder) is written before it is complete: a hidden name beside `path`."""
    return path.with_name(f".{path.stem}.partial{path.suffix}")


def write_bytes_atomic(path: Path, data: bytes) -> Path:
    with atomic_path(path) as temporary:
        temporary.write_bytes(data)
    return path


def write_text_atomic(path: Path, text: str) -> Path:
    return write_bytes_atomic(path, text.encode())


def write_json_atomic(path: Path, value: object) -> Path:
    return write_text_atomic(path, json.dumps(value, indent=2, sort_keys=False) + "\n")


def files_fingerprint(paths: Iterable[str | Path]) -> str:
    """A hash of each file's path and content (folders: every file inside): what changes when a user
    edits, adds or removes a file, and what does not when the same files are copied or extracted
    again with new modification times (a dataset restored from an archive or a cache keeps its runs).
    Reads every byte once per process: 0.55 s for CamVid's 37 MB on a busy 2-core CPU."""
    digest = hashlib.sha256()
    for path in sorted(Path(p) for p in paths):
        files = sorted(f for f in path.rglob("*") if f.is_file()) if path.is_dir() else [path]
        for file in files:
            try:
                stat = file.stat()
                content = _content_digest(str(file), stat.st_size, stat.st_mtime_ns)
            except OSError:  # a file that vanished counts as a change, not an error
                content = "missing"
            digest.update(f"{file}:{content}\n".encode())
    return digest.hexdigest()[:16]


@functools.cache
def _content_digest(file: str, size: int, modified_ns: int) -> str:
    """The file's content hash. Size and modification time are part of the cache key only, so that
    within one process (a search's trials, a benchmark's arms) an unchanged file is read once."""
    with open(file, "rb") as handle:
        return hashlib.file_digest(handle, "blake2b").hexdigest()


def file_sizes(path: Path) -> dict:
    """Raw and gzip-compressed size of a file in bytes; see `content_sizes`."""
    return content_sizes(Path(path).read_bytes())


def content_sizes(data: bytes) -> dict:
    """Raw and gzip-compressed size in bytes: gzip shows what pruning and clustering buy in a download."""
    return {"bytes": len(data), "gzip_bytes": len(gzip.compress(data, compresslevel=9, mtime=0))}
