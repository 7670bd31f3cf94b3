"""Checkpoint storage through ``pyarrow.fs`` (local paths, ``s3://``, ``gs://``, ``hdfs://``).

A write goes to a temporary name and is then moved over the target. On a local or HDFS
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
    with fs.open_output_stream(tmp) as stream:
        stream.write(blob)
    fs.move(tmp, path)


def read_bytes(uri: str) -> bytes | None:
    """The bytes at ``uri``, or None when there is no such file."""
    fs, path = resolve_filesystem(uri)
    if fs.get_file_info(path).type == pafs.FileType.NotFound:
        return None
    with fs.open_input_stream(path) as stream:
        return stream.read()
