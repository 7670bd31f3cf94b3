"""AdaptiveModel: the base of driftflow's models (event log, snapshot and restore, River's
classifier face), and the helpers every composition shares."""
from __future__ import annotations

from typing import Any, ClassVar, Hashable

import numpy as np
from river import base

from experts import top_class as _argmax  # the one argmax over a class dict
from pipelines.checkpoints.arrays import unpack_arrays
from pipelines.checkpoints.envelope import CheckpointError, seal, unseal

SNAPSHOT_SCHEMA = "driftflow.model/2"   # 2: named arrays + JSON (1 was a pickle)

Features = dict[str, Any]


def correctness_mask(probas: list[dict[Hashable, float] | None], y: Hashable) -> np.ndarray:
    """DriftMoE's multi-hot router target: 1 for every expert whose argmax is ``y``; if none is
    right, 1 for the single expert giving ``y`` the highest probability (the first on ties).
    ``None`` marks an expert not asked about this record: it is never marked."""
    mask = np.fromiter((p is not None and _argmax(p) == y for p in probas), dtype=np.float64,
                       count=len(probas))
    if not mask.any() and any(p is not None for p in probas):
        mask[int(np.argmax([-np.inf if p is None else p.get(y, 0.0) for p in probas]))] = 1.0
    return mask


class _SameRecordCache:
    """Keeps what ``predict_*`` computed for a record so the ``learn_one`` that follows on the
    same features (test-then-train) does not compute it again. Matches on identity and equality
    so a reused or mutated dict never hits."""

    __slots__ = ("_x", "_copy", "value")

    def __init__(self) -> None:
        self._x: Features | None = None
        self._copy: Features | None = None
        self.value: Any = None

    def get(self, x: Features) -> Any:
        return self.value if (x is self._x and x == self._copy) else None

    def put(self, x: Features, value: Any) -> Any:
        self._x, self._copy, self.value = x, dict(x), value
        return value

    def clear(self) -> None:
        """Forget the cached record: learning changed the model, so the values are stale."""
        self._x = self._copy = self.value = None

    def __getstate__(self) -> dict:
        return {}   # a cache is not state: snapshots stay small and deterministic

    def __setstate__(self, state: dict) -> None:
        self.__init__()


class AdaptiveModel(base.Classifier):
    """Base of driftflow's models: event log, snapshot and restore, River's classifier face."""

    name: ClassVar[str] = ""
    _multiclass = True   # River: any number of classes (else River treats a model as binary)

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self._n_learned = 0
        self._pending_events: list[dict[str, Any]] = []
        self._cache = _SameRecordCache()

    # -- events --------------------------------------------------------------------------------
    def _emit(self, kind: str, **fields: Any) -> None:
        self._pending_events.append({"position": self._n_learned, "kind": kind, **fields})

    def events(self) -> list[dict[str, Any]]:
        """Drift, grow, prune, revive and new-class events since the last call (then cleared).
        ``position`` is the 0-based index of the learned record that caused the event."""
        out, self._pending_events = self._pending_events, []
        return out

    # -- River face ----------------------------------------------------------------------------
    def predict_one(self, x: Features, **kwargs: Any) -> Hashable | None:
        return _argmax(self.predict_proba_one(x))

    @property
    def n_experts(self) -> int:
        raise NotImplementedError

    @property
    def n_learned(self) -> int:
        return self._n_learned

    # -- snapshot ------------------------------------------------------------------------------
    def snapshot_body(self) -> tuple[dict[str, Any], bytes]:
        """``(envelope meta, body)``: the state as named arrays and a JSON header (see
        :mod:`pipelines.checkpoints.arrays`). Models on the compiled core provide it."""
        raise NotImplementedError(f"{self.name} has no array snapshot")

    def snapshot(self, key: bytes | str | None = None) -> bytes:
        """The whole model state in the versioned (and, with a key, signed) envelope: arrays
        and JSON, never a pickle."""
        meta, body = self.snapshot_body()
        return seal(body, schema=SNAPSHOT_SCHEMA, key=key, meta=meta)

    @classmethod
    def restore(cls, blob: bytes, key: bytes | str | None = None) -> AdaptiveModel:
        """Rebuild a model from :meth:`snapshot`; refuses an unsigned or altered one when a key
        is given or configured, and anything that is not exactly a model's arrays
        (CheckpointError). Nothing in the blob is executed: it is parsed as JSON and arrays."""
        from pipelines.models import MODELS  # the registry imports this module

        _, body = unseal(blob, key=key, schema=SNAPSHOT_SCHEMA)
        meta, arrays = unpack_arrays(body)
        model_cls = MODELS.get(meta.get("model")) if isinstance(meta.get("model"), str) else None
        if model_cls is None or not issubclass(model_cls, cls) or not hasattr(
                model_cls, "_from_snapshot"):
            raise CheckpointError(f"snapshot holds model {str(meta.get('model'))[:40]!r}, "
                                  f"not one {cls.__name__}.restore can rebuild")
        return model_cls._from_snapshot(meta, arrays)
