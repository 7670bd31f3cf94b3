"""One generic check suite, in the spirit of ``river/checks``, run over every detector, expert,
router and model in the registries (see ``test_checks.py``). Each check takes a factory that
builds a fresh, unfitted component and raises AssertionError with a reason when it fails."""
from __future__ import annotations

import copy
import pickle
import random
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

Stream = list[tuple[dict[str, Any], int]]


def drifting_stream(n: int = 1200, seed: int = 7) -> Stream:
    """Three numeric features, two classes; at n/2 the concept changes from a + b > 10 to
    a > 5 (they agree on three records in four, so even a learner without drift handling
    stays above chance)."""
    rng = random.Random(seed)
    out = []
    for t in range(n):
        x = {"a": rng.uniform(0, 10), "b": rng.uniform(0, 10), "c": rng.uniform(0, 10)}
        out.append((x, int(x["a"] > 5) if t >= n // 2 else int(x["a"] + x["b"] > 10)))
    return out


def _mask(y: int, n: int, t: int) -> np.ndarray:
    m = np.zeros(n)
    m[(y + t) % n] = 1.0
    return m


# -- learners: experts and models (predict_proba_one / learn_one) -------------------------------
def _predictions(learner: Any, stream: Stream) -> list[dict]:
    return [learner.predict_proba_one(x) for x, _ in stream]


def _learn(learner: Any, stream: Stream) -> None:
    for x, y in stream:
        learner.predict_proba_one(x)
        learner.learn_one(x, y)


def check_learner_learns_drifting_stream(make: Callable[[], Any]) -> None:
    learner, stream = make(), drifting_stream()
    hits = 0
    for x, y in stream:
        proba = learner.predict_proba_one(x)
        hits += bool(proba) and max(proba, key=proba.get) == y
        learner.learn_one(x, y)
    assert hits / len(stream) > 0.6, f"prequential accuracy {hits / len(stream):.2f} <= 0.6"


def check_learner_predicts_before_learning(make: Callable[[], Any]) -> None:
    """Before any learning no class is known: River's convention is an empty distribution (and
    ``predict_one`` None), not a made-up class or a crash."""
    learner = make()
    proba = learner.predict_proba_one({"a": 1.0, "b": 2.0, "c": 3.0})
    assert proba == {}, f"predict_proba_one before learning returned {proba!r}, not {{}}"
    assert learner.predict_one({"a": 1.0}) is None, "predict_one named a class it never saw"


def check_learner_leaves_input_untouched(make: Callable[[], Any]) -> None:
    learner = make()
    for x, y in drifting_stream(300):
        before = copy.deepcopy(x)
        learner.predict_proba_one(x)
        learner.learn_one(x, y)
        assert x == before, "learn_one or predict_proba_one modified its input"


def check_learner_snapshot_restore_identical(make: Callable[[], Any]) -> None:
    stream = drifting_stream()
    learner = make()
    _learn(learner, stream[:700])
    restored = pickle.loads(pickle.dumps(learner))
    _learn(learner, stream[700:1000])
    _learn(restored, stream[700:1000])
    assert _predictions(learner, stream[1000:]) == _predictions(restored, stream[1000:]), \
        "a restored copy predicts differently after the same learning"


def check_learner_seed_deterministic(make: Callable[[], Any]) -> None:
    stream = drifting_stream(600)
    a, b = make(), make()
    _learn(a, stream[:500])
    _learn(b, stream[:500])
    assert _predictions(a, stream[500:]) == _predictions(b, stream[500:]), \
        "two learners built the same way diverge"


def check_learner_clone_independent(make: Callable[[], Any]) -> None:
    learner = make()
    stream = drifting_stream(400)
    fresh = make()
    _learn(learner, stream)
    clone = learner.clone()
    assert _predictions(clone, stream[:50]) == _predictions(fresh, stream[:50]), \
        "clone() carried learned state over"
    _learn(clone, stream[:100])
    after = _predictions(learner, stream[:50])
    _learn(clone, stream[100:200])
    assert _predictions(learner, stream[:50]) == after, "learning on a clone changed the original"


def check_learner_new_class(make: Callable[[], Any]) -> None:
    """200 records of classes 0/1, then 500 of a new class 2 only: on 100 further records the
    learner must name class 2 at least 90 times. Class 2 is then 5 of every 7 records seen, so
    even a learner without drift handling gets there by learning it; one that cannot take a new
    class scores 0, one guessing among the three ~33."""
    learner, stream = make(), drifting_stream(800)
    _learn(learner, stream[:200])
    for x, _ in stream[200:700]:
        learner.predict_proba_one(x)
        learner.learn_one(x, 2)      # from now on every record is the new class 2
    hits = 0
    for x, _ in stream[700:]:        # held out: predicted, never learned
        proba = learner.predict_proba_one(x)
        hits += bool(proba) and max(proba, key=proba.get) == 2
    assert hits >= 90, f"did not learn the new class (right {hits} of 100)"


def check_learner_missing_and_constant_features(make: Callable[[], Any]) -> None:
    learner = make()
    for t, (x, y) in enumerate(drifting_stream(400)):
        x = {**x, "const": 1.0}
        if t % 3 == 0:
            del x["c"]                      # a feature that comes and goes
        proba = learner.predict_proba_one(x)
        assert all(np.isfinite(p) for p in proba.values()), "non-finite probability"
        learner.learn_one(x, y)


LEARNER_CHECKS = [
    check_learner_learns_drifting_stream, check_learner_predicts_before_learning,
    check_learner_leaves_input_untouched, check_learner_snapshot_restore_identical,
    check_learner_seed_deterministic, check_learner_clone_independent, check_learner_new_class,
    check_learner_missing_and_constant_features,
]


# -- routers -------------------------------------------------------------------------------------
def _router_outputs(router: Any, stream: Stream) -> list[list[float]]:
    return [router.weights(x).tolist() for x, _ in stream]


def _router_learn(router: Any, stream: Stream) -> None:
    for t, (x, y) in enumerate(stream):
        router.weights(x)
        router.learn(x, _mask(y, router.n_experts, 0))


def check_router_weights_are_a_distribution(make: Callable[[], Any]) -> None:
    router = make()
    _router_learn(router, drifting_stream(600))
    for w in _router_outputs(router, drifting_stream(50, seed=3)):
        assert len(w) == router.n_experts and abs(sum(w) - 1) < 1e-9 and min(w) >= 0, w


def check_router_snapshot_restore_identical(make: Callable[[], Any]) -> None:
    stream = drifting_stream()
    router = make()
    _router_learn(router, stream[:700])
    restored = pickle.loads(pickle.dumps(router))
    _router_learn(router, stream[700:1000])
    _router_learn(restored, stream[700:1000])
    assert _router_outputs(router, stream[1000:]) == _router_outputs(restored, stream[1000:])


def check_router_resizes(make: Callable[[], Any]) -> None:
    router = make()
    n = router.n_experts
    _router_learn(router, drifting_stream(600))
    router.add_expert()
    assert router.n_experts == n + 1 and len(router.weights({"a": 1.0})) == n + 1
    _router_learn(router, drifting_stream(300))
    router.remove_expert(0)
    assert router.n_experts == n and len(router.weights({"a": 1.0})) == n


def check_router_routes_to_the_right_expert(make: Callable[[], Any]) -> None:
    """Expert (y % n) is always the right one: the router must learn to prefer it on records it
    has not learned. A router blind to the input can only learn the class frequencies: with two
    classes that is about 0.5 on the right expert; the floor is 0.6."""
    router = make()
    stream = drifting_stream(4000)[:2000]     # first concept only
    train, held_out = stream[:1800], stream[1800:]
    for _ in range(2):
        _router_learn(router, train)
    right = [w[y % router.n_experts] for (x, y), w in
             zip(held_out, _router_outputs(router, held_out))]
    assert np.mean(right) >= 0.6, f"mean weight on the right expert {np.mean(right):.2f} < 0.6"


ROUTER_CHECKS = [
    check_router_weights_are_a_distribution, check_router_snapshot_restore_identical,
    check_router_resizes, check_router_routes_to_the_right_expert,
]


# -- detectors -----------------------------------------------------------------------------------
def _detector_inputs(kind: str, n: int, seed: int, shift_at: int | None) -> Iterator[Any]:
    """A stream of one input kind that changes at ``shift_at``, by an amount every detector of
    that kind should see: 0/1 errors at rate 0.1 -> 0.5; N(0, 1) -> N(3, 1); classes
    (.6, .3, .1) -> (.1, .1, .8); three N(0, 1) features, the second then following the first
    (correlation 0 -> 0.96)."""
    rng = np.random.default_rng(seed)
    for t in range(n):
        after = shift_at is not None and t >= shift_at
        if kind == "binary":
            yield float(rng.random() < (0.5 if after else 0.1))
        elif kind == "real":
            yield float(rng.normal(3.0 if after else 0.0, 1.0))
        elif kind == "vector":
            v = rng.normal(0.0, 1.0, 3)
            if after:
                v[1] = v[0] + 0.3 * v[1]
            yield v.tolist()
        else:
            yield int(rng.choice(3, p=[0.1, 0.1, 0.8] if after else [0.6, 0.3, 0.1]))


def _firings(detector: Any, values: list[Any]) -> list[int]:
    out = []
    for t, v in enumerate(values):
        detector.update(v)
        if detector.drift_detected:
            out.append(t)
    return out


def check_detector_snapshot_restore_identical(make: Callable[[], Any]) -> None:
    for kind in make().input_kinds:
        values = list(_detector_inputs(kind, 3000, 1, 1500))
        detector = make()
        _firings(detector, values[:1000])
        restored = pickle.loads(pickle.dumps(detector))
        assert _firings(detector, values[1000:]) == _firings(restored, values[1000:])


def check_detector_clone_and_reset_are_fresh(make: Callable[[], Any]) -> None:
    for kind in make().input_kinds:
        values = list(_detector_inputs(kind, 3000, 2, 1500))
        expected = _firings(make(), values)
        used = make()
        _firings(used, values[:1200])
        assert _firings(used.clone(), values) == expected, "clone() is not fresh"
        used.reset()
        assert _firings(used, values) == expected, "reset() did not forget"


def check_detector_quiet_on_constant_stream(make: Callable[[], Any]) -> None:
    for kind in make().input_kinds:
        value = {"binary": 0.0, "real": 1.5, "categorical": 1, "vector": [1.5, 1.5, 1.5]}[kind]
        assert _firings(make(), [value] * 5000) == [], f"fired on a constant {kind} stream"


def check_detector_memory_bounded(make: Callable[[], Any]) -> None:
    for kind in make().input_kinds:
        detector = make()
        values = list(_detector_inputs(kind, 8000, 3, None))
        _firings(detector, values[:2000])
        size_early = len(pickle.dumps(detector))
        _firings(detector, values[2000:])
        assert len(pickle.dumps(detector)) < 2 * size_early + 4096, "state grows with the stream"


def check_detector_detection_quality(make: Callable[[], Any], expected: Any) -> None:
    """The detector keeps its registered promise (``detectors.EXPECTED``): on every input kind it
    consumes, seeds 0-2, a change at record 2,000 of 3,000 is detected within ``expected.delay``
    records, with at most ``expected.false_alarms`` detections before it. ``expected`` None is
    the never-fire baseline: it must not fire at all."""
    change, n = 2000, 3000
    for kind in make().input_kinds:
        for seed in range(3):
            hits = _firings(make(), list(_detector_inputs(kind, n, seed, change)))
            if expected is None:
                assert hits == [], f"the never-fire baseline fired at {hits[:5]} ({kind})"
                continue
            early = [t for t in hits if t < change]
            assert len(early) <= expected.false_alarms, \
                f"{len(early)} false alarms > {expected.false_alarms} ({kind}, seed {seed})"
            late = [t for t in hits if t >= change]
            assert late, f"missed the {kind} change (seed {seed})"
            delay = late[0] - change + 1
            assert delay <= expected.delay, \
                f"delay {delay} > {expected.delay} records ({kind}, seed {seed})"


DETECTOR_CHECKS = [
    check_detector_snapshot_restore_identical, check_detector_clone_and_reset_are_fresh,
    check_detector_quiet_on_constant_stream, check_detector_memory_bounded,
]
