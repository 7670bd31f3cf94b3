"""Canonical pickling: equal model states give equal bytes, whatever object identity or string
hash seed made them (see the comment above ``_PINNED_RNG``)."""
from __future__ import annotations

import copyreg
import io
import pickle
import random
import sys
from collections import deque
from typing import Any

import numpy as np
from river.proba.base import Distribution

Features = dict[str, Any]


# Three things make equal model states pickle to different bytes, and a snapshot pins them:
# - River's distributions (e.g. a tree leaf's per-class Gaussians) draw an unseeded
#   ``random.Random`` each, seeded from OS entropy and used only by ``sample()``, which no learner
#   here calls: pinned to one fixed generator;
# - pickle shares equal strings only when they are the same object, and a restored model's
#   strings are other objects than a fresh one's: the names and string values in every object's
#   state are interned, so sharing follows the values; likewise a restored numpy
#   array carries a dtype object of its own, so arrays are written by dtype name, shape and bytes;
# - a set pickles in iteration order, for strings the process's hash seed's: sets in an
#   object's state are written sorted.
_PINNED_RNG = random.Random(0)


def _array(dtype: str, shape: tuple[int, ...], data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype=dtype).reshape(shape).copy()


class _SetInOrder:
    """Pickles as the set (or frozenset) of ``items``, written in that (sorted) order: a set
    pickles in iteration order, which for strings follows the process's hash seed."""

    def __init__(self, kind: type, items: list[Any]) -> None:
        self.kind, self.items = kind, items

    def __reduce__(self) -> tuple[type, tuple[list[Any]]]:
        return self.kind, (self.items,)


def _interned(value: Any) -> Any:
    """``value`` (an object's pickled state) with the strings in it and in its nested dicts,
    lists and tuples interned, and its sets written in sorted order."""
    kind = type(value)
    if kind is str:
        return sys.intern(value)
    if kind is dict:
        return {_interned(k): _interned(v) for k, v in value.items()}
    if kind is list or kind is tuple:
        return kind(_interned(v) for v in value)
    if kind is set or kind is frozenset:
        return _SetInOrder(kind, sorted((_interned(v) for v in value),
                                        key=lambda v: (type(v).__name__, repr(v))))
    return value


class _CanonicalPickler(pickle.Pickler):
    def reducer_override(self, obj: Any) -> Any:
        cls = type(obj)
        if cls is np.ndarray and not obj.dtype.hasobject:
            return _array, (obj.dtype.str, obj.shape, obj.tobytes())
        if cls is deque:
            return deque, (_interned(list(obj)), obj.maxlen)
        if isinstance(obj, type) or cls in copyreg.dispatch_table:
            return NotImplemented
        try:
            reduced = obj.__reduce_ex__(5)
        except TypeError:
            return NotImplemented
        if not (isinstance(reduced, tuple) and len(reduced) > 2
                and isinstance(reduced[2], (dict, tuple))):
            return NotImplemented
        state = _interned(reduced[2])
        if isinstance(obj, Distribution) and obj.seed is None and "_rng" in state:
            state["_rng"] = _PINNED_RNG
        return (*reduced[:2], state, *reduced[3:])


def canonical_pickle(obj: Any) -> bytes:
    """``pickle.dumps(obj, protocol=5)`` made independent of object identity (see the comment
    above ``_PINNED_RNG``): equal states give equal bytes."""
    buffer = io.BytesIO()
    _CanonicalPickler(buffer, protocol=5).dump(obj)
    return buffer.getvalue()

