"""The DriftMoE MLP router."""
from __future__ import annotations

import pickle

import numpy as np
import pytest

from router import DriftMoERouter, Router


def records(n: int, seed: int) -> list[dict[str, float]]:
    rng = np.random.default_rng(seed)
    return [{"x1": float(a), "x2": float(b)} for a, b in rng.uniform(0.0, 10.0, (n, 2))]


def right_expert(x: dict[str, float]) -> np.ndarray:
    """Two fake experts: 0 is right when x1 < 5, 1 otherwise."""
    return np.array([1.0, 0.0]) if x["x1"] < 5.0 else np.array([0.0, 1.0])


def test_router_follows_the_protocol():
    r = DriftMoERouter(n_experts=3, seed=1)
    assert isinstance(r, Router) and r.n_experts == 3
    w = r.weights({"a": 1.0})
    assert w.shape == (3,) and abs(w.sum() - 1.0) < 1e-12


def test_driftmoe_learns_to_route():
    # Paper settings (raw features, batch 256, lr 2e-3); 20,000 records = 78 Adam steps.
    r = DriftMoERouter(n_experts=2, seed=0)
    for x in records(20_000, seed=1):
        r.learn(x, right_expert(x))
    held_out = [x for x in records(400, seed=2) if abs(x["x1"] - 5.0) > 1.0]
    right = [r.weights(x)[int(right_expert(x)[1])] for x in held_out]
    assert min(right) > 0.7


def test_batch_step_happens_exactly_at_batch_size():
    r = DriftMoERouter(n_experts=3, seed=0)
    xs = records(256, seed=3)
    probe = xs[0]
    r.learn(xs[0], np.array([1.0, 0.0, 0.0]))
    before = r.logits(probe)
    for x in xs[1:255]:
        r.learn(x, np.array([1.0, 0.0, 0.0]))
    assert r.n_steps == 0 and np.array_equal(r.logits(probe), before)
    r.learn(xs[255], np.array([1.0, 0.0, 0.0]))
    assert r.n_steps == 1 and not np.array_equal(r.logits(probe), before)
    with pytest.raises(ValueError):
        r.learn(probe, np.zeros(2))


def test_batch_size_one_steps_every_record():
    r = DriftMoERouter(n_experts=2, batch_size=1, seed=0)
    for x in records(5, seed=4):
        r.learn(x, right_expert(x))
    assert r.n_steps == 5


def test_add_and_remove_keep_other_logits():
    r = DriftMoERouter(n_experts=3, batch_size=64, seed=0)
    xs = records(300, seed=5)
    for x in xs[:200]:
        r.learn(x, np.array([1.0, 0.0, float(x["x1"] > 3)]))
    probe = xs[-1]
    before = r.logits(probe)
    r.add_expert()
    after = r.logits(probe)
    assert r.n_experts == 4 and np.array_equal(after[:3], before)
    r.remove_expert(1)
    assert np.array_equal(r.logits(probe), np.delete(after, 1))
    for x in xs[200:]:                           # buffered masks were resized: steps still work
        r.learn(x, np.array([1.0, 0.0, 0.0]))
    r.remove_expert(0)
    assert r.weights(probe).shape == (2,)
    with pytest.raises(IndexError):
        r.remove_expert(5)


def test_new_feature_leaves_logits_unchanged():
    r = DriftMoERouter(n_experts=2, batch_size=8, seed=0)
    xs = records(64, seed=6)
    for x in xs:
        r.learn(x, right_expert(x))
    before = r.logits(xs[0])
    r.learn({**xs[1], "colour": "red", "x3": 4.0}, np.array([0.0, 1.0]))
    assert np.array_equal(r.logits(xs[0]), before)
    assert r.logits({"x3": 2.0, "colour": "blue"}).shape == (2,)


@pytest.mark.parametrize("standardize", [False, True])
def test_seeded_and_pickle_round_trip_is_exact(standardize):
    xs = records(600, seed=7)
    a = DriftMoERouter(n_experts=2, batch_size=50, standardize=standardize, seed=9)
    b = DriftMoERouter(n_experts=2, batch_size=50, standardize=standardize, seed=9)
    for x in xs[:230]:
        a.learn(x, right_expert(x))
        b.learn(x, right_expert(x))
    c = pickle.loads(pickle.dumps(a))
    for x in xs[230:]:                           # crosses several steps (dropout draws)
        assert np.array_equal(a.weights(x), c.weights(x))
        assert np.array_equal(a.weights(x), b.weights(x))
        for r in (a, b, c):
            r.learn(x, right_expert(x))


def test_driftmoe_unobserved_outputs_do_not_train():
    """With ``observed``, the mask entries of experts not asked are ignored: any value there
    gives bit-identical weights, and all-observed equals the default (the paper's full mask)."""
    xs = records(300, seed=4)
    a, b, full, default = (DriftMoERouter(n_experts=2, hidden=(8,), batch_size=32, seed=3)
                           for _ in range(4))
    for x in xs:
        a.learn(x, np.array([1.0, 0.0]), observed=np.array([1.0, 0.0]))
        b.learn(x, np.array([1.0, 1.0]), observed=np.array([1.0, 0.0]))
        full.learn(x, right_expert(x), observed=np.ones(2))
        default.learn(x, right_expert(x))
    probe = {"x1": 2.0, "x2": 7.0}
    assert a.weights(probe).tolist() == b.weights(probe).tolist()
    assert full.weights(probe).tolist() == default.weights(probe).tolist()
    with pytest.raises(ValueError, match="observed shape"):
        a.learn(probe, np.zeros(2), observed=np.ones(3))
