"""Named numpy arrays plus a JSON header in one byte string: the body of an array snapshot.

Layout (all of it read with ``json.loads`` and ``np.frombuffer``, nothing that can run code)::

    b"DFAR" | version (1 byte) | header length (4 bytes, little-endian) | header (UTF-8 JSON)
    | zero padding to a multiple of 8 | array bytes, each starting at a multiple of 8

The header is ``{"meta": {...}, "arrays": [[name, dtype, shape, offset], ...]}``. Only
little-endian float64, int64 and uint64 arrays are written or read; offsets must follow each
other exactly, so every byte of the body is accounted for. Anything else raises
``CheckpointError``. Uncompressed on purpose: restoring is a copy, not a decode.
"""
from __future__ import annotations

import json
import struct
from typing import Any

import numpy as np

from pipelines.checkpoints.envelope import CheckpointError

MAGIC = b"DFAR"
VERSION = 1
DTYPES = {"<f8": np.float64, "<i8": np.int64, "<u8": np.uint64}
_PREFIX = len(MAGIC) + 1 + 4
_ALIGN = 8
MAX_HEADER_BYTES = 1 << 22   # 4 MiB of JSON: far above any model's (a few KiB), bounds a bad blob


def _aligned(n: int) -> int:
    return -(-n // _ALIGN) * _ALIGN


def pack_arrays(meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> bytes:
    """``meta`` (JSON-able) and ``arrays`` (float64 / int64 / uint64) as one byte string."""
    entries, offset = [], 0
    for name, a in arrays.items():
        dtype = np.dtype(a.dtype).newbyteorder("<").str
        if dtype not in DTYPES:
            raise TypeError(f"array {name!r} has dtype {a.dtype}; snapshots hold {sorted(DTYPES)}")
        entries.append([name, dtype, list(a.shape), offset])
        offset = _aligned(offset + a.nbytes)
    header = json.dumps({"meta": meta, "arrays": entries}, sort_keys=True,
                        separators=(",", ":")).encode()
    start = _aligned(_PREFIX + len(header))
    out = np.zeros(start + offset, dtype=np.uint8)
    out[:_PREFIX] = np.frombuffer(MAGIC + bytes([VERSION]) + struct.pack("<I", len(header)),
                                  np.uint8)
    out[_PREFIX:_PREFIX + len(header)] = np.frombuffer(header, np.uint8)
    for (_, dtype, _, at), a in zip(entries, arrays.values()):
        raw = np.ascontiguousarray(a, dtype=dtype).reshape(-1).view(np.uint8)
        out[start + at:start + at + raw.size] = raw
    return out.tobytes()


def unpack_arrays(body: bytes) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """``(meta, arrays)`` from :func:`pack_arrays` output; arrays are writable copies.
    CheckpointError on anything that is not exactly such a body."""
    if len(body) < _PREFIX or body[:4] != MAGIC:
        raise CheckpointError("snapshot body is not an array snapshot (bad magic bytes)")
    if body[4] != VERSION:
        raise CheckpointError(f"array snapshot version {body[4]} is not supported "
                              f"(this driftflow reads {VERSION})")
    (size,) = struct.unpack("<I", body[5:_PREFIX])
    if size > MAX_HEADER_BYTES or _PREFIX + size > len(body):
        raise CheckpointError("array snapshot header length is out of range")
    try:
        header = json.loads(body[_PREFIX:_PREFIX + size])
        meta, entries = header["meta"], header["arrays"]
        if not isinstance(meta, dict) or not isinstance(entries, list) or set(header) != {
                "meta", "arrays"}:
            raise ValueError("header must be {meta: {...}, arrays: [...]}")
    except (ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"array snapshot header is malformed: {exc}") from None
    start = _aligned(_PREFIX + size)
    data = bytearray(body[start:])   # one copy: every array below is a writable view of it
    arrays: dict[str, np.ndarray] = {}
    expected = 0
    for entry in entries:
        name, dtype, shape, offset = _entry(entry)
        if name in arrays:
            raise CheckpointError(f"array {name!r} appears twice in the snapshot")
        if offset != expected:
            raise CheckpointError(f"array {name!r} is not where the previous one ends")
        count = int(np.prod(shape, dtype=np.int64)) if shape else 1
        nbytes = count * 8
        if offset + nbytes > len(data):
            raise CheckpointError(f"array {name!r} runs past the end of the snapshot (truncated)")
        arrays[name] = np.frombuffer(data, dtype=DTYPES[dtype], count=count,
                                     offset=offset).reshape(shape)
        expected = _aligned(offset + nbytes)
    if expected != len(data):
        raise CheckpointError("array snapshot has bytes no array accounts for")
    return meta, arrays


def _entry(entry: Any) -> tuple[str, str, tuple[int, ...], int]:
    """One ``[name, dtype, shape, offset]`` header entry, checked."""
    if not (isinstance(entry, list) and len(entry) == 4):
        raise CheckpointError(f"array entry {str(entry)[:80]!r} is not [name, dtype, shape, offset]")
    name, dtype, shape, offset = entry
    if not isinstance(name, str) or dtype not in DTYPES:
        raise CheckpointError(f"array entry {str(entry)[:80]!r}: name must be a string and dtype "
                              f"one of {sorted(DTYPES)}")
    if not (isinstance(shape, list) and len(shape) <= 8 and all(
            type(n) is int and 0 <= n < 2**40 for n in shape)):
        raise CheckpointError(f"array {name!r}: shape {str(shape)[:80]} is not a list of sizes")
    if type(offset) is not int or offset < 0:
        raise CheckpointError(f"array {name!r}: offset {offset!r} is not a byte offset")
    return name, dtype, tuple(shape), offset
