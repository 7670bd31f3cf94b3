"""The generic check suite (tests/checks.py) over every registered component. A new detector,
expert, router or model is checked by adding it to its registry; nothing here changes."""
from __future__ import annotations

import functools

import pytest

import detectors
import experts
import router
from pipelines.models import MODELS, make_model
from tests import checks

# Settings that keep the models' checks fast without changing what they exercise: the router
# steps every 32 records instead of 256 so co-training happens inside a 1,200-record stream.
_FAST_MODEL = {
    "adaptive": {},
    "driftmoe-data": {"batch_size": 32, "hidden": (32, 16)},
    "driftmoe-task": {"hidden": (32, 16)},
}

LEARNERS = {f"expert:{name}": functools.partial(factory, seed=1)
            for name, factory in experts.REGISTRY.items()}
LEARNERS.update({f"model:{name}": functools.partial(make_model, name, 1, **_FAST_MODEL[name])
                 for name in MODELS})
ROUTERS = {name: functools.partial(factory, n_experts=3, seed=1)
           for name, factory in router.REGISTRY.items()}


def _ids(checks_: list) -> list[str]:
    return [c.__name__.removeprefix("check_") for c in checks_]


@pytest.mark.parametrize("check", checks.LEARNER_CHECKS, ids=_ids(checks.LEARNER_CHECKS))
@pytest.mark.parametrize("name", sorted(LEARNERS))
def test_learner(name, check):
    check(LEARNERS[name])


@pytest.mark.parametrize("check", checks.ROUTER_CHECKS, ids=_ids(checks.ROUTER_CHECKS))
@pytest.mark.parametrize("name", sorted(ROUTERS))
def test_router(name, check):
    check(ROUTERS[name])


@pytest.mark.parametrize("check", checks.DETECTOR_CHECKS, ids=_ids(checks.DETECTOR_CHECKS))
@pytest.mark.parametrize("name", sorted(detectors.REGISTRY))
def test_detector(name, check):
    check(detectors.REGISTRY[name])
