"""The generic check suite (tests/checks.py) and River's own `check_estimator` over every
registered component. A new detector, expert or model is checked by adding it to its registry
(a detector with its ``detectors.EXPECTED`` promise); nothing here changes.

Models are built with River's test convention, ``cls._unit_test_params()`` (a model may yield
smaller settings there so its checks stay fast); experts from their ``experts.REGISTRY`` factory.
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import pytest
from river import checks as river_checks

import detectors
import experts
from pipelines.models import MODELS
from router import DriftMoERouter
from tests import checks


def _model(cls: type, seed: int = 1) -> Any:
    return cls(**{**next(iter(cls._unit_test_params())), "seed": seed})


LEARNERS: dict[str, Callable[[], Any]] = {
    f"expert:{name}": functools.partial(factory, seed=1)
    for name, factory in experts.REGISTRY.items()}
LEARNERS.update({f"model:{name}": functools.partial(_model, cls) for name, cls in MODELS.items()})
# The router every model uses (the models build it themselves; there is no router choice).
ROUTERS = {"driftmoe": functools.partial(DriftMoERouter, n_experts=3, seed=1)}

# River checks a learner fails, with the reason; strict: the test fails once it passes, so the
# entry is removed with the fix.
RIVER_KNOWN_FAILURES = {
    # FeatureVectorizer allots input slots in first-seen order, so the same features in another
    # order start the MLP from permuted weights (the fix, sorted allotment, changes every MLP's
    # predictions and lands with the compiled core's input layer)
    ("expert:mlp", "check_shuffle_features_no_impact"): "input slots in first-seen order",
}


def _ids(checks_: list) -> list[str]:
    return [c.__name__.removeprefix("check_") for c in checks_]


@pytest.mark.parametrize("check", checks.LEARNER_CHECKS, ids=_ids(checks.LEARNER_CHECKS))
@pytest.mark.parametrize("name", sorted(LEARNERS))
def test_learner(name, check):
    check(LEARNERS[name])


def _river_cases() -> list[Any]:
    """(learner, River check) pairs, as `river.checks.check_estimator` runs them (its dataset
    checks once per dataset: Phishing, Phishing with numpy bools, ImageSegments if multiclass)."""
    cases = []
    for name in sorted(LEARNERS):
        learner = LEARNERS[name]()
        seen: dict[str, int] = {}
        for check in river_checks.yield_checks(learner):
            if check.__name__ in learner._unit_test_skips():
                continue
            n = seen[check.__name__] = seen.get(check.__name__, -1) + 1
            reason = RIVER_KNOWN_FAILURES.get((name, check.__name__))
            marks = [pytest.mark.xfail(reason=reason, strict=True)] if reason else []
            cases.append(pytest.param(name, check, marks=marks,
                                      id=f"{name}:{check.__name__.removeprefix('check_')}:{n}"))
    return cases


@pytest.mark.parametrize("name, check", _river_cases())
def test_river_check_estimator(name, check):
    """River's own estimator checks (River's `check_estimator`, one check per test)."""
    check(LEARNERS[name]().clone())


def test_every_learner_is_a_multiclass_river_classifier():
    """River treats a classifier without ``_multiclass`` as binary: its checks then demand
    {False, True} probabilities and never feed the multi-class dataset."""
    for name, make in LEARNERS.items():
        learner = make()
        names = {c.__name__ for c in river_checks.yield_checks(learner)}
        assert learner._multiclass is True, name
        assert "check_predict_proba_one_binary" not in names, name


@pytest.mark.parametrize("check", checks.ROUTER_CHECKS, ids=_ids(checks.ROUTER_CHECKS))
@pytest.mark.parametrize("name", sorted(ROUTERS))
def test_router(name, check):
    check(ROUTERS[name])


@pytest.mark.parametrize("check", checks.DETECTOR_CHECKS, ids=_ids(checks.DETECTOR_CHECKS))
@pytest.mark.parametrize("name", sorted(detectors.REGISTRY))
def test_detector(name, check):
    check(detectors.REGISTRY[name])


@pytest.mark.parametrize("name", sorted(detectors.REGISTRY))
def test_detector_detection_quality(name):
    """Every registered detector keeps the promise declared beside its REGISTRY entry."""
    if name not in detectors.EXPECTED:
        pytest.fail(f"detector {name!r} declares no detection quality: add its line to "
                    f"detectors.EXPECTED beside its REGISTRY entry")
    expected = detectors.EXPECTED[name]
    assert expected is not None or name == "none", "only the never-fire baseline is exempt"
    checks.check_detector_detection_quality(detectors.REGISTRY[name], expected)
