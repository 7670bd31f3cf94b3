"""Checkpoint storage through ``pyarrow.fs`` (local paths, ``s3://``, ``gs://``, ``hdfs://``).

A write goes to a temporary name and is then moved over the target; a write or move that fails
removes the temporary file before the error goes on. On a local or HDFS
filesystem the move is a rename, so a reader sees the old file or the new one, never a part. On
object stores (S3, GCS) pyarrow's move is copy-then-delete: a reader still never sees a partial
object (an object appears whole when its upload completes), but a crash between the copy and
the delete can leave the temporary object behind.
"""
from __future__ import annotations

import uuid

import pyarrow.fs as pafs

from pipelines.sources.files import resolve_filesystem


def write_atomic(uri: str, blob: bytes) -> None:
    """Write ``blob`` to ``uri`` so a reader sees the old file or the new one, never a part."""
    fs, path = resolve_filesystem(uri)
    parent = path.rsplit("/", 1)[0]
    if parent:
        fs.create_dir(parent, recursive=True)
    tmp = f"{path}.tmp-{uuid.uuid4().hex}"
    try:
        with fs.open_output_stream(tmp) as stream:
            stream.write(blob)
        fs.move(tmp, path)
    except BaseException:   # a full disk, a refused move, an interrupt: leave no temp behind
        _remove_quietly(fs, tmp)
        raise


def _remove_quietly(fs: pafs.FileSystem, path: str) -> None:
    """Delete ``path`` if it exists; a failure here must not hide the error being raised."""
    try:
        if fs.get_file_info(path).type != pafs.FileType.NotFound:
            fs.delete_file(path)
    except OSError:
        pass


def read_bytes(uri: str) -> bytes | None:
    """The bytes at ``uri``, or None when there is no such file."""
    fs, path = resolve_filesystem(uri)
    if fs.get_file_info(path).type == pafs.FileType.NotFound:
        return None
    with fs.open_input_stream(path) as stream:
        return stream.read()
