"""Change-point detectors behind one small protocol (see ``_base.Detector``).

Feed one observation with ``update(value)``; read ``drift_detected`` (true only right after the
update that detected a change) and ``warning_detected``. ``reset()`` forgets what was learned and
keeps the settings; ``clone()`` gives a fresh detector with the same settings. Every detector
is deterministic, picklable and deep-copyable; a restored copy continues exactly as the original.
Wrong-typed values raise ``TypeError``; out-of-domain ones (2 on a 0/1 stream, NaN) ``ValueError``.

=====================  ==============================  =======================================
registry name          class / factory                 consumes (``input_kinds``)
=====================  ==============================  =======================================
``adwin``              ``RiverDetector(ADWIN)``        binary, real (errors or losses)
``page-hinkley``       ``RiverDetector(PageHinkley)``  binary, real
``kswin``              ``RiverDetector(KSWIN)``        binary, real (seeded: deterministic)
``ddm``                ``RiverDetector(DDM)``          binary 0/1 errors; has a warning zone
``eddm``               ``RiverDetector(EDDM)``         binary; has a warning zone
``hddm-a``             ``RiverDetector(HDDM_A)``       binary; has a warning zone
``hddm-w``             ``RiverDetector(HDDM_W)``       binary; has a warning zone
``bocpd-gaussian``     ``BOCPD(GaussianModel())``      real (Normal-Gamma, Student-t)
``bocpd-bernoulli``    ``BOCPD(BernoulliModel())``     binary (Beta-Bernoulli)
``rbocpd``             ``RBOCPD()``                    binary 0/1 errors (restarted BOCPD)
``rbocpd-multinomial`` ``MultinomialRBOCPD()``         categorical labels (label shift)
``ks-window``          ``KSWindow()``                  real (input feature values; two windows)
``chi2-window``        ``ChiSquareWindow()``           categorical (nominal feature values)
``correlation-shift``  ``CorrelationShift()``          vector (real features; pair correlations)
``none``               ``NoDrift()``                   anything; never fires
=====================  ==============================  =======================================

``make(name)`` builds one from the registry. Adding a detector: one module here, one
``REGISTRY`` line and one ``EXPECTED`` line (its promised detection delay and false alarms).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import experts._jit_cache  # noqa: F401 - before any compiled kernel is defined

from ._base import Detector, InputKind
from ._bocpd import BOCPD, BernoulliModel, GaussianModel
from ._chi2_window import ChiSquareWindow
from ._correlation import CorrelationShift
from ._ks_window import KSWindow, KSWindowBank
from ._nodrift import NoDrift
from ._rbocpd import RBOCPD, MultinomialRBOCPD
from ._river import RiverDetector, adwin, ddm, eddm, hddm_a, hddm_w, kswin, page_hinkley

__all__ = [
    "BOCPD",
    "BernoulliModel",
    "ChiSquareWindow",
    "CorrelationShift",
    "Detector",
    "EXPECTED",
    "Expected",
    "GaussianModel",
    "InputKind",
    "KSWindow",
    "KSWindowBank",
    "MultinomialRBOCPD",
    "NoDrift",
    "RBOCPD",
    "REGISTRY",
    "RiverDetector",
    "make",
]


def _bocpd_gaussian() -> BOCPD:
    return BOCPD(GaussianModel())


def _bocpd_bernoulli() -> BOCPD:
    return BOCPD(BernoulliModel())


#: Short name -> factory with driftflow's defaults.
REGISTRY: dict[str, Callable[[], Detector]] = {
    "adwin": adwin,
    "page-hinkley": page_hinkley,
    "kswin": kswin,
    "ddm": ddm,
    "eddm": eddm,
    "hddm-a": hddm_a,
    "hddm-w": hddm_w,
    "bocpd-gaussian": _bocpd_gaussian,
    "bocpd-bernoulli": _bocpd_bernoulli,
    "rbocpd": RBOCPD,
    "rbocpd-multinomial": MultinomialRBOCPD,
    "ks-window": KSWindow,
    "chi2-window": ChiSquareWindow,
    "correlation-shift": CorrelationShift,
    "none": NoDrift,
}


@dataclass(frozen=True)
class Expected:
    """The detection quality a registered detector promises, checked by the generic suite
    (``tests/checks.py``, ``check_detector_detection_quality``) on every input kind it consumes:
    seeds 0-2, 3,000 records with a change at record 2,000 of a size every detector of that kind
    should see. ``delay``: most records from the change to the first detection (detected on the
    change's own record = 1); ``false_alarms``: most detections before the change in one run."""

    delay: int
    false_alarms: int


#: Each REGISTRY entry's promise (measured worst case in brackets: delay, false alarms). A new
#: detector declares its own here, or the generic check fails for it. ``None`` only for ``none``:
#: the never-fire baseline, whose check is that it never fires.
EXPECTED: dict[str, Expected | None] = {
    "adwin": Expected(delay=120, false_alarms=0),                # [80, 0]
    "page-hinkley": Expected(delay=150, false_alarms=2),         # [100, 1]
    "kswin": Expected(delay=150, false_alarms=0),                # [98, 0]
    "ddm": Expected(delay=70, false_alarms=3),                   # [45, 2]
    "eddm": Expected(delay=80, false_alarms=8),                  # [53, 6]: over-fires at 10 %
    "hddm-a": Expected(delay=160, false_alarms=0),               # [108, 0]
    "hddm-w": Expected(delay=100, false_alarms=0),               # [64, 0]
    "bocpd-gaussian": Expected(delay=10, false_alarms=0),        # [6, 0]
    "bocpd-bernoulli": Expected(delay=30, false_alarms=0),       # [18, 0]
    "rbocpd": Expected(delay=115, false_alarms=0),               # [76, 0]
    "rbocpd-multinomial": Expected(delay=45, false_alarms=0),    # [28, 0]
    "ks-window": Expected(delay=225, false_alarms=0),            # [150, 0]
    "chi2-window": Expected(delay=225, false_alarms=0),          # [150, 0]
    "correlation-shift": Expected(delay=375, false_alarms=0),    # [250, 0]
    "none": None,
}


def make(name: str) -> Detector:
    """A fresh detector from ``REGISTRY``; ``KeyError`` listing the known names otherwise."""
    try:
        factory = REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(REGISTRY))
        raise KeyError(f"unknown detector {name!r}; known: {known}") from None
    return factory()
