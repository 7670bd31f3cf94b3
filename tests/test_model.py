"""AdaptiveModel: River compatibility, the signed snapshot envelope, drift handling."""
from __future__ import annotations

import json

import pytest
from river import evaluate, metrics

from pipelines import CheckpointError, make_model, open_source
from pipelines.checkpoints.envelope import unseal
from pipelines.models import AdaptiveModel


def _stream(n: int, name: str = "SEAa", seed: int = 1):
    return [(r.x, r.y) for r in open_source(f"synthetic:{name}", limit=n, seed=seed)]


@pytest.mark.parametrize("name", ["adaptive", "driftmoe-data"])
def test_river_progressive_val_score_accepts_the_model(name):
    score = evaluate.progressive_val_score(_stream(3000), make_model(name, seed=0),
                                           metrics.Accuracy())
    assert score.get() > 0.75


def test_snapshot_restore_predicts_identically_and_is_signed():
    stream = _stream(3000)
    model = make_model("adaptive", seed=2)
    for x, y in stream[:2000]:
        model.learn_one(x, y)
    blob = model.snapshot(key="secret")
    restored = AdaptiveModel.restore(blob, key="secret")
    for x, y in stream[2000:]:
        assert restored.predict_proba_one(x) == model.predict_proba_one(x)
        model.learn_one(x, y)
        restored.learn_one(x, y)
    with pytest.raises(CheckpointError, match="unsigned"):
        AdaptiveModel.restore(model.snapshot(), key="secret")
    tampered = bytearray(blob)
    tampered[-10] ^= 0xFF
    with pytest.raises(CheckpointError, match="digest"):
        AdaptiveModel.restore(bytes(tampered), key="secret")
    with pytest.raises(CheckpointError, match="signature"):
        AdaptiveModel.restore(blob, key="another")


@pytest.mark.parametrize("name", ["adaptive"])
def test_a_restored_model_snapshots_to_the_same_bytes_as_an_uninterrupted_one(name):
    """Restore mid-stream, learn on: the state serialises to exactly the bytes of a model that
    was never interrupted (records JSON-decoded each time, as from Kafka, on LED's 24 features)."""
    rows = [json.loads(json.dumps({"x": x, "y": y})) for x, y in _stream(1200, "LEDa")]
    plain, resumed = make_model(name, seed=3), make_model(name, seed=3)
    for i, r in enumerate(rows):
        if i == 600:
            resumed = AdaptiveModel.restore(resumed.snapshot())
        for model in (plain, resumed):
            model.predict_one(r["x"])
            model.learn_one(r["x"], r["y"])
    assert unseal(resumed.snapshot())[1] == unseal(plain.snapshot())[1]


def test_adaptive_grows_on_abrupt_drift_and_stays_within_budget():
    model = make_model("adaptive", seed=0, max_experts=5)
    kinds = []
    for x, y in _stream(20_000):
        model.predict_one(x)
        model.learn_one(x, y)
        kinds += [e["kind"] for e in model.events()]
        assert model.n_experts <= 5
    assert kinds.count("grow") + kinds.count("revive") >= 2


def test_capped_trees_stop_growing():
    """``tree_max_nodes`` caps every compiled tree: a full tree keeps learning its leaves and
    stops splitting; the cap holds after a restore too."""
    model = make_model("adaptive", seed=2, tree_max_nodes=9)
    X, y = zip(*_stream(8000))
    model.learn_predict_many(list(X[:4000]), list(y[:4000]))
    model = AdaptiveModel.restore(model.snapshot())
    model.learn_predict_many(list(X[4000:]), list(y[4000:]))
    nodes = model.trees.sizes[:, 0]
    assert nodes.max() == 9 and (nodes <= 9).all()


def test_unknown_model_is_a_value_error():
    with pytest.raises(ValueError, match="unknown model"):
        make_model("nope")
