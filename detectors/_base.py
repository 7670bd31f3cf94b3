"""The detector protocol: what every change-point detector in driftflow offers.

Shaped like River's ``river.drift`` detectors so River users know it already: feed one
observation with ``update`` and read ``drift_detected`` / ``warning_detected`` afterwards.
"""
from __future__ import annotations

from typing import Hashable, Literal, Protocol, runtime_checkable

#: What a detector consumes: ``"binary"`` 0/1 errors, ``"real"`` floats (losses, values),
#: ``"categorical"`` class labels or nominal values, ``"vector"`` a record's real features
#: (multivariate input drift).
InputKind = Literal["binary", "real", "categorical", "vector"]


@runtime_checkable
class Detector(Protocol):
    """A change-point detector over a univariate stream.

    ``input_kinds`` lists the kinds of observation it accepts. ``drift_detected`` is true only
    right after the ``update`` that detected the change; state is plain numbers and numpy
    arrays, so ``copy.deepcopy`` and ``pickle`` snapshot it exactly.
    """

    input_kinds: tuple[InputKind, ...]

    def update(self, value: float | Hashable) -> None: ...

    @property
    def drift_detected(self) -> bool: ...

    @property
    def warning_detected(self) -> bool: ...

    def reset(self) -> None: ...

    def clone(self) -> "Detector": ...
