"""Checkpoint envelope.

A snapshot is wrapped in a versioned envelope so a reader knows what it holds and can prove it
was not altered::

    b"DFCK" | header length (4 bytes, big-endian) | header (UTF-8 JSON) | body

The header carries the format version, a schema name, the creation time, the body's SHA-256 and,
when a key is set, an HMAC-SHA256 of the body. The body is a pickle, so with a key configured an
unsigned or tampered checkpoint is refused before anything is unpickled. The key comes from the
``key`` argument or the ``DRIFTFLOW_CHECKPOINT_KEY`` environment variable.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import hmac
import json
import os
import struct
from typing import Any

MAGIC = b"DFCK"
FORMAT_VERSION = 1
KEY_ENV = "DRIFTFLOW_CHECKPOINT_KEY"


class CheckpointError(ValueError):
    """A checkpoint that cannot be trusted or read (bad magic, version, digest or signature)."""


def _resolve_key(key: bytes | str | None) -> bytes | None:
    key = key if key is not None else os.environ.get(KEY_ENV) or None
    return key.encode() if isinstance(key, str) else key


def seal(body: bytes, *, schema: str, key: bytes | str | None = None,
         meta: dict[str, Any] | None = None) -> bytes:
    """Wrap ``body`` in the envelope; sign it when a key is given or configured."""
    key = _resolve_key(key)
    header = {
        "format_version": FORMAT_VERSION,
        "schema": schema,
        "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(),
        "body_sha256": hashlib.sha256(body).hexdigest(),
        "hmac_sha256": hmac.new(key, body, hashlib.sha256).hexdigest() if key else None,
        "meta": meta or {},
    }
    raw = json.dumps(header, sort_keys=True).encode()
    return MAGIC + struct.pack(">I", len(raw)) + raw + body


def unseal(blob: bytes, *, key: bytes | str | None = None,
           schema: str | None = None) -> tuple[dict[str, Any], bytes]:
    """Check the envelope and return ``(header, body)``; raise CheckpointError when it fails."""
    key = _resolve_key(key)
    if len(blob) < 8 or blob[:4] != MAGIC:
        raise CheckpointError("not a driftflow checkpoint (bad magic bytes)")
    (size,) = struct.unpack(">I", blob[4:8])
    try:
        header = json.loads(blob[8:8 + size])
    except ValueError as exc:
        raise CheckpointError(f"checkpoint header is not valid JSON: {exc}") from None
    body = blob[8 + size:]
    if header.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"checkpoint format version {header.get('format_version')!r} is not supported "
            f"(this driftflow reads version {FORMAT_VERSION})")
    if schema is not None and header.get("schema") != schema:
        raise CheckpointError(f"checkpoint holds {header.get('schema')!r}, expected {schema!r}")
    if not hmac.compare_digest(hashlib.sha256(body).hexdigest(), header.get("body_sha256", "")):
        raise CheckpointError("checkpoint body does not match its digest (corrupt or altered)")
    if key is not None:
        signature = header.get("hmac_sha256")
        if not signature:
            raise CheckpointError("unsigned checkpoint refused: a checkpoint key is configured")
        expected = hmac.new(key, body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature):
            raise CheckpointError("checkpoint signature does not match (tampered, or another key)")
    return header, body
