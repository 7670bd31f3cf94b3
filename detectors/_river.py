"""River's detectors behind the driftflow protocol: one generic wrapper, not one class each.

River 0.23 puts ADWIN, PageHinkley and KSWIN in ``river.drift`` (they take any real value) and
DDM, EDDM, HDDM_A, HDDM_W in ``river.drift.binary`` (0/1 errors only). Their ``update`` returns
``None`` and they reset themselves on the update after a drift. The wrapper keeps the template
untouched and works on ``template.clone()``, so ``reset()`` and ``clone()`` start from scratch.
"""
from __future__ import annotations

from collections.abc import Hashable

from river import drift
from river.base import BinaryDriftDetector
from river.drift import binary

from ._base import InputKind
from ._checks import as_binary, as_real
from ._mixin import DetectorMixin

__all__ = ["RiverDetector", "adwin", "page_hinkley", "kswin", "ddm", "eddm", "hddm_a", "hddm_w"]


class RiverDetector(DetectorMixin):
    """Wraps any River drift detector (the ``template``, never updated itself).

    ``input_kinds`` is ``("binary",)`` for River's ``BinaryDriftDetector`` subclasses and
    ``("binary", "real")`` for the others. ``warning_detected`` is ``False`` for detectors that
    have no warning zone (ADWIN, PageHinkley, KSWIN). A template with a ``seed`` setting (KSWIN)
    must be seeded, so runs are reproducible.
    """

    def __init__(self, template: drift.ADWIN | BinaryDriftDetector | object) -> None:
        if not hasattr(template, "update") or not hasattr(template, "clone"):
            raise TypeError(f"template must be a River drift detector; got {template!r}")
        if hasattr(template, "seed") and getattr(template, "seed") is None:
            raise ValueError(
                f"{type(template).__name__} samples at random: give it a seed (e.g. seed=42) "
                "so detection is deterministic"
            )
        self.template = template
        self._binary_only = isinstance(template, BinaryDriftDetector)
        self.input_kinds: tuple[InputKind, ...] = (
            ("binary",) if self._binary_only else ("binary", "real")
        )
        self._who = f"RiverDetector({type(template).__name__})"
        self.reset()

    def reset(self) -> None:
        """Back to the untrained template; settings kept."""
        self._detector = self.template.clone()  # type: ignore[attr-defined]
        self._has_warning = hasattr(self._detector, "warning_detected")
        self._n_seen = 0
        self._n_detections = 0

    def update(self, value: float | Hashable) -> None:
        """Feed one observation: a 0/1 error for binary detectors, a real value otherwise."""
        if self._binary_only:
            x: float = as_binary(value, self._who)
        else:
            x = as_real(value, self._who)
        self._detector.update(x)
        self._n_seen += 1
        if self._detector.drift_detected:
            self._n_detections += 1

    @property
    def drift_detected(self) -> bool:
        """True right after the update that detected a drift."""
        return bool(self._detector.drift_detected)

    @property
    def warning_detected(self) -> bool:
        """River's warning zone; always False for detectors that have none."""
        return bool(self._detector.warning_detected) if self._has_warning else False

    def __repr__(self) -> str:
        params = self.template._get_params()  # type: ignore[attr-defined]
        args = ", ".join(f"{k}={v!r}" for k, v in params.items() if k != "window")
        return f"RiverDetector({type(self.template).__name__}({args}))"


# Factories with the defaults driftflow uses. River's own defaults are kept except where noted.


def adwin(delta: float = 0.002) -> RiverDetector:
    """ADWIN on errors or losses (River defaults)."""
    return RiverDetector(drift.ADWIN(delta=delta))


def page_hinkley(threshold: float = 50.0, delta: float = 0.005) -> RiverDetector:
    """Page-Hinkley (River defaults; ``mode="both"`` catches rises and falls)."""
    return RiverDetector(drift.PageHinkley(threshold=threshold, delta=delta))


def kswin(seed: int = 42) -> RiverDetector:
    """KSWIN, seeded. alpha 1e-4 rather than River's 5e-3: River's default tests a 30-record
    sample against a 70-record reference on every record, which false-alarms every few hundred
    records on a stationary stream; window 300 / stat 100 gives the test enough records."""
    return RiverDetector(drift.KSWIN(alpha=1e-4, window_size=300, stat_size=100, seed=seed))


def ddm() -> RiverDetector:
    """DDM on 0/1 errors (River defaults)."""
    return RiverDetector(binary.DDM())


def eddm() -> RiverDetector:
    """EDDM on 0/1 errors (River defaults)."""
    return RiverDetector(binary.EDDM())


def hddm_a() -> RiverDetector:
    """HDDM_A on 0/1 errors (River defaults)."""
    return RiverDetector(binary.HDDM_A())


def hddm_w() -> RiverDetector:
    """HDDM_W on 0/1 errors (River defaults)."""
    return RiverDetector(binary.HDDM_W())
