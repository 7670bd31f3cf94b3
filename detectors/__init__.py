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

``make(name)`` builds one from the registry. Adding a detector: one module here plus one
``REGISTRY`` line.
"""
from __future__ import annotations

from collections.abc import Callable

from ._base import Detector, InputKind
from ._bocpd import BOCPD, BernoulliModel, GaussianModel
from ._chi2_window import ChiSquareWindow
from ._correlation import CorrelationShift
from ._ks_window import KSWindow, KSWindowBank
from ._nodrift import NoDrift
from ._rbocpd import MultinomialRBOCPD, RBOCPD
from ._river import RiverDetector, adwin, ddm, eddm, hddm_a, hddm_w, kswin, page_hinkley

__all__ = [
    "BOCPD",
    "BernoulliModel",
    "ChiSquareWindow",
    "CorrelationShift",
    "Detector",
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


def make(name: str) -> Detector:
    """A fresh detector from ``REGISTRY``; ``KeyError`` listing the known names otherwise."""
    try:
        factory = REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(REGISTRY))
        raise KeyError(f"unknown detector {name!r}; known: {known}") from None
    return factory()
