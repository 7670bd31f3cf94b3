"""Checkpoint envelope.

A snapshot is wrapped in a versioned envelope so a reader knows what it holds and can prove it
was not altered::

    b"DFCK" | header length (4 bytes, big-endian) | header (UTF-8 JSON) | body

The header carries the format version, a schema name, the creation time, free ``meta`` (record
counts, offsets), the body's SHA-256 and, when a key is set, ``hmac_sha256``: an HMAC-SHA256 of
the header's canonical bytes (sorted keys, without the signature itself) followed by the body,
so neither the body nor the header's schema, version or counts can be changed without the key.
The key comes from the ``key`` argument or the ``DRIFTFLOW_CHECKPOINT_KEY`` environment
variable; an empty key is an error (it would sign with nothing). Bodies hold no pickle (JSON and
numpy arrays), so even an unsigned checkpoint cannot run code; the signature proves origin.

`unseal` raises `CheckpointError` and nothing else for any input bytes whatsoever.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import hmac
import json
import os
import re
import struct
from typing import Any

MAGIC = b"DFCK"
# Version 2: the signature covers the header too (version 1 signed the body only; its bodies
# were pickles, which this version never reads).
FORMAT_VERSION = 2
KEY_ENV = "DRIFTFLOW_CHECKPOINT_KEY"
# A header is a few hundred bytes; anything near this is not ours (and is not parsed).
MAX_HEADER_BYTES = 1 << 20
_PREFIX = len(MAGIC) + 4
_HEX_DIGEST = re.compile(r"[0-9a-f]{64}")
_SIGNATURE = "hmac_sha256"


class CheckpointError(ValueError):
    """A checkpoint that cannot be trusted or read (bad magic, version, digest or signature)."""


def _resolve_key(key: bytes | str | None) -> bytes | None:
    """The signing key: ``key``, else ``DRIFTFLOW_CHECKPOINT_KEY``, else None (unsigned).
    An empty key, given or configured, raises `CheckpointError`."""
    if key is None:
        key = os.environ.get(KEY_ENV)
        source = f"the {KEY_ENV} environment variable"
    else:
        source = "the checkpoint key"
    if key is None:
        return None
    if not isinstance(key, bytes | str):
        raise CheckpointError(f"{source} must be text or bytes, not {type(key).__name__}")
    if not key:
        raise CheckpointError(f"{source} is empty: set a secret, or unset it for unsigned "
                              "checkpoints")
    return key.encode() if isinstance(key, str) else key


def _canonical(header: dict[str, Any]) -> bytes:
    """The header's bytes as signed: sorted keys, no whitespace, without the signature."""
    unsigned = {k: v for k, v in header.items() if k != _SIGNATURE}
    return json.dumps(unsigned, sort_keys=True, separators=(",", ":")).encode()


def _signature(key: bytes, header: dict[str, Any], body: bytes) -> str:
    canonical = _canonical(header)
    mac = hmac.new(key, struct.pack(">Q", len(canonical)) + canonical, hashlib.sha256)
    mac.update(body)
    return mac.hexdigest()


def seal(body: bytes, *, schema: str, key: bytes | str | None = None,
         meta: dict[str, Any] | None = None) -> bytes:
    """Wrap ``body`` in the envelope; sign header and body when a key is given or configured.
    ``meta`` must be JSON-able (it is signed with the rest)."""
    key = _resolve_key(key)
    header: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "schema": schema,
        "created_at": _dt.datetime.now(_dt.UTC).isoformat(),
        "body_sha256": hashlib.sha256(body).hexdigest(),
        "meta": meta or {},
    }
    header[_SIGNATURE] = _signature(key, header, body) if key else None
    raw = json.dumps(header, sort_keys=True, allow_nan=False).encode()
    return b"".join((MAGIC, struct.pack(">I", len(raw)), raw, body))   # the body's one copy


def unseal(blob: bytes, *, key: bytes | str | None = None,
           schema: str | None = None) -> tuple[dict[str, Any], bytes]:
    """Check the envelope and return ``(header, body)``; raise CheckpointError when it fails.
    With a key given or configured, an unsigned or wrongly signed checkpoint is refused."""
    key = _resolve_key(key)
    header, body = _split(blob)
    version = header.get("format_version")
    if type(version) is not int or version != FORMAT_VERSION:
        raise CheckpointError(
            f"checkpoint format version {_short(version)} is not supported "
            f"(this driftflow reads version {FORMAT_VERSION})")
    for name, kind in (("schema", str), ("body_sha256", str), ("meta", dict)):
        if not isinstance(header.get(name), kind):
            raise CheckpointError(f"checkpoint header field {name!r} is missing or not a "
                                  f"{kind.__name__}")
    signature = header.get(_SIGNATURE)
    if signature is not None and not _is_hex_digest(signature):
        raise CheckpointError(f"checkpoint header field {_SIGNATURE!r} is not a hex digest")
    if schema is not None and header["schema"] != schema:
        raise CheckpointError(f"checkpoint holds {_short(header['schema'])}, expected {schema!r}")
    if not _is_hex_digest(header["body_sha256"]) or not hmac.compare_digest(
            hashlib.sha256(body).hexdigest(), header["body_sha256"]):
        raise CheckpointError("checkpoint body does not match its digest (corrupt or altered)")
    if key is not None:
        if signature is None:
            raise CheckpointError("unsigned checkpoint refused: a checkpoint key is configured")
        if not hmac.compare_digest(_signature(key, header, body), signature):
            raise CheckpointError("checkpoint signature does not match (tampered, or another key)")
    return header, body


def _split(blob: bytes) -> tuple[dict[str, Any], bytes]:
    """The parsed header (a JSON object) and the body; CheckpointError for anything else.
    Read through a view, so the body is copied once (into the returned bytes), not first
    the whole blob and then the body."""
    if not isinstance(blob, bytes | bytearray | memoryview):
        raise CheckpointError(f"a checkpoint is bytes, not {type(blob).__name__}")
    try:
        view = memoryview(blob).cast("B")
    except TypeError:   # a view of a non-contiguous buffer
        raise CheckpointError("a checkpoint is one contiguous run of bytes") from None
    if len(view) < _PREFIX or view[:len(MAGIC)] != MAGIC:
        raise CheckpointError("not a driftflow checkpoint (bad magic bytes)")
    (size,) = struct.unpack(">I", view[len(MAGIC):_PREFIX])
    if size > MAX_HEADER_BYTES:
        raise CheckpointError(f"checkpoint header claims {size:,} bytes (at most "
                              f"{MAX_HEADER_BYTES:,}): not a driftflow checkpoint")
    if _PREFIX + size > len(view):
        raise CheckpointError(f"checkpoint is truncated: its header claims {size:,} bytes, "
                              f"{len(view) - _PREFIX:,} follow")
    try:
        header = json.loads(bytes(view[_PREFIX:_PREFIX + size]))
    except (ValueError, RecursionError) as exc:   # also UnicodeDecodeError
        raise CheckpointError("checkpoint header is not valid JSON: "
                              f"{type(exc).__name__}") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"checkpoint header is a JSON {type(header).__name__}, "
                              "not an object")
    return header, bytes(view[_PREFIX + size:])


def _is_hex_digest(value: Any) -> bool:
    return isinstance(value, str) and _HEX_DIGEST.fullmatch(value) is not None


def _short(value: Any) -> str:
    """A header value for a message: repr (escapes control characters), at most 60 chars."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
